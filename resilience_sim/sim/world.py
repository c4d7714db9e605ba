"""The simulated world: a simpy clock, named random streams, and the components living in it."""
from __future__ import annotations

import random

import numpy as np
import simpy
from simpy.events import NORMAL, Timeout

from ..core import validate
from ..core.records import Recorder
from ..core.seeds import stream_seed
from ..metrics import CacheStats, ClientStats, FaultSpan, JobStats, Results, ServiceStats
from . import guard


_new = object.__new__


def timeout(env: simpy.Environment, delay: float) -> Timeout:
    """``Timeout(env, delay)`` for a ``delay`` known to be >= 0, without the class call and its check:
    the same event, scheduled the same way (``env.schedule``), for the hot path of every request."""
    event = _new(Timeout)
    event.env = env
    event.callbacks = []
    event._value = None
    event._delay = delay
    event._ok = True
    env.schedule(event, NORMAL, delay)
    return event


def check_world(value) -> "World":
    """``value`` if it is a World, else a ``TypeError`` that says what to pass."""
    if not isinstance(value, World):
        raise validate.WrongType(f"world must be a World (world = World(seed=1)), got {value!r}")
    return value


class World:
    """A simpy ``Environment`` with a seed, independent random streams and a registry of services.

    ``world.rng("service/db/latency")`` is always the same stream for the same seed and name,
    so changing one component's parameters never reshuffles another component's draws.
    """

    def __init__(self, seed: int = 0):
        self.seed = validate.integer("seed", seed, low=0)
        self.env = simpy.Environment()
        self.services: dict = {}
        self.clients: dict = {}
        self.workloads: dict = {}
        self.caches: dict = {}
        self.job_queues: dict = {}
        self.recorder = Recorder()
        self.faults: list = []
        self._streams: dict[str, random.Random] = {}
        self._partitions: dict[frozenset, list[float]] = {}   # pair -> hangs of its active partitions

    @property
    def now(self) -> float:
        return self.env.now

    def rng(self, name: str) -> random.Random:
        """The random stream called ``name`` (created on first use)."""
        stream = self._streams.get(validate.text("name", name, empty=False))
        if stream is None:
            stream = self._streams[name] = random.Random(stream_seed(self.seed, name))
        return stream

    def owns(self, name: str, component) -> None:
        """Refuse ``component`` (a service, client or crew) unless it belongs to this world."""
        if getattr(component, "world", None) is not self:
            raise ValueError(f"{name} belongs to another World than the world given ({component!r}); "
                             f"build every part of a scenario in the same World")

    def add_service(self, service) -> None:
        if service.name in self.services:
            raise ValueError(f"name must be unique in the world; a service called {service.name!r} exists")
        self.services[service.name] = service

    def add_client(self, client) -> None:
        if client.name in self.clients or client.name in self.services:
            raise ValueError(f"name must be unique in the world; {client.name!r} is taken")
        self.clients[client.name] = client

    def add_cache(self, cache) -> None:
        if cache.name in self.caches:
            raise ValueError(f"name must be unique among caches; one called {cache.name!r} exists")
        self.caches[cache.name] = cache

    def add_job_queue(self, jobs) -> None:
        if jobs.name in self.job_queues:
            raise ValueError(f"name must be unique among job queues; one called {jobs.name!r} exists")
        self.job_queues[jobs.name] = jobs

    def add_workload(self, workload) -> None:
        if not isinstance(workload.name, str) or not workload.name:
            raise ValueError(f"name must be a non-empty string, got {workload.name!r}")
        if workload.name in self.workloads:
            raise ValueError(f"name must be unique among workloads; one called {workload.name!r} exists "
                             f"(give each workload its own name, e.g. name=\"checkout\")")
        self.workloads[workload.name] = workload

    def service(self, name: str):
        """The service called ``name``."""
        validate.text("name", name)
        try:
            return self.services[name]
        except KeyError:
            raise ValueError(f"name must be one of {sorted(self.services)}, got {name!r}") from None

    def partition_hang(self, a: str, b: str) -> float | None:
        """If ``a`` and ``b`` are cut off from each other now, how long a call waits before failing
        (the longest hang of the partitions active between them)."""
        hangs = self._partitions.get(frozenset((a, b))) if self._partitions else None
        return max(hangs) if hangs else None

    def run(self, until: float) -> Results:
        """Check the wiring (every declared dependency exists), run the simulation until ``until``
        seconds and return its :class:`~resilience_sim.metrics.results.Results`."""
        until = validate.positive("until", until)
        if until <= self.env.now:
            raise ValueError(f"until must be > the current time {self.env.now:g}, got {until:g}")
        self._wire()
        for fault in self.faults:
            fault.check_budget(until)
        guard.advance(self.env, until, self._likely_causes)
        return self._results(until)

    def _likely_causes(self) -> list[str]:
        """What in this world can make events at one instant for ever (for a frozen clock's message)."""
        found = []
        for w in self.workloads.values():
            if getattr(w, "think", None) is not None and w.think.mean == 0:
                found.append(f"a zero think time (workload {w.name!r}) against a service that answers at once")
        for f in self.faults:
            if getattr(f, "ttf", None) is not None and (f.ttf.mean == 0 or f.mttr == 0):
                found.append(f"zero times to failure or repair ({f.label})")
        for c in self.clients.values():
            if c.retry is not None and getattr(c.retry.backoff, "base", 1.0) == 0:
                found.append(f"retries with no wait between them (client {c.name!r}, {c.retry!r})")
            if c.hedge is not None and c.hedge.delay == 0:
                found.append(f"hedges sent with no delay (client {c.name!r})")
        for j in self.job_queues.values():
            if getattr(j.queue.backoff, "base", 1.0) == 0:
                found.append(f"jobs retried with no wait between tries (job queue {j.name!r}, {j.queue.backoff!r})")
        return found

    def _wire(self) -> None:
        for service in self.services.values():
            service.check_dependencies()
            for dep in service._deps.values():
                if hasattr(dep, "owner"):             # a client: it calls on this service's behalf
                    if dep.owner not in (None, service):
                        raise ValueError(f"dependencies: client {dep.name!r} is declared by both "
                                         f"{dep.owner.name!r} and {service.name!r}; give each caller its own client")
                    dep.owner = service

    def _results(self, until: float) -> Results:
        """What the run produced up to ``until`` (copies: the world may run on and append); ``until``
        is the time the run reached."""
        rec = self.recorder
        finished, unfinished = rec.columns(), rec.unfinished_rows(until)
        columns = {name: np.concatenate([finished[name], unfinished[name]]) for name in finished}
        services = [ServiceStats(name, s.calls, s.failures, s.timeline, dict(s.failure_reasons),
                                 np.array(s.call_start), np.array(s.call_route, dtype=np.uint16))
                    for name, s in self.services.items()]
        clients = [ClientStats(name, c.requests, c.attempts, c.backoff_time, dict(c.rejected),
                               c.budget_denied, c.hedges, tuple(getattr(c.breaker, "history", ())),
                               tuple(getattr(c.breaker, "trips", ())), c.retries)
                   for name, c in self.clients.items()]
        faults = [FaultSpan(f.label, f.kind, tuple(f.spans(until))) for f in self.faults]
        caches = [c.stats() for c in self.caches.values()]
        jobs = [j.stats() for j in self.job_queues.values()]
        return Results(columns, seed=self.seed, until=until, names=rec.names, keys=rec.keys,
                       services=services, clients=clients, faults=faults,
                       routes=[w.route for w in self.workloads.values()],
                       in_flight=len(unfinished["start"]), record_bytes=rec.nbytes, caches=caches, jobs=jobs)
