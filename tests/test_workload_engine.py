"""The open-loop workload's lighter request processes (sim/workload.py) against the simpy they mirror:
the same results as a plain ``env.process`` would give, one event of their own a request, and an error
inside a request still stopping the run."""
from __future__ import annotations

import hashlib
import inspect

import pytest
import simpy

from resilience_sim import OpenLoop, Service, World
from resilience_sim.sim import workload

#: simpy's ``Process._resume`` as _RequestProcess copies it (simpy 4.1.2). If simpy changes it, this fails:
#: compare the new code with ``workload._RequestProcess._resume`` and carry the change over.
MIRRORED_RESUME = "7c85b9fe960e6b8e"


def test_request_process_mirrors_this_simpy_resume():
    source = inspect.getsource(simpy.Process._resume)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == MIRRORED_RESUME, (
        f"simpy {simpy.__version__} changed Process._resume: check workload._RequestProcess._resume against it")


def _events(world) -> list:
    count = [0]
    step = world.env.step

    def counting():
        count[0] += 1
        step()
    world.env.step = counting
    return count


def test_an_open_loop_request_costs_one_event_beside_its_service_work():
    world = World(3)
    count = _events(world)
    server = Service(world, "server", capacity=100, latency=0.001)   # never waits for a slot
    OpenLoop(world, server, 50.0, requests=200)
    results = world.run(until=100)
    assert len(results) == 200
    assert count[0] == 2 + 200 * 2      # the start and the run's end, then per request its arrival and its work


def test_an_error_inside_a_request_stops_the_run_with_it():
    def broken(svc, req):
        yield svc.env.timeout(0.01)
        raise KeyError("a bug in a handler")
    world = World(1)
    OpenLoop(world, Service(world, "api", capacity=1, latency=0.001, handler=broken),
             10.0, requests=5)
    with pytest.raises(KeyError, match="a bug in a handler"):
        world.run(until=10)


def test_the_light_process_gives_what_a_plain_process_gives(monkeypatch):
    def run() -> list:
        world = World(7)
        server = Service(world, "server", capacity=2, latency=0.03)
        OpenLoop(world, server, 80.0, requests=300)
        r = world.run(until=60)
        return list(zip(r.start.tolist(), r.end.tolist(), r.outcome.tolist()))
    light = run()
    monkeypatch.setattr(workload, "_RequestProcess", lambda env, gen: env.process(gen))
    assert run() == light
