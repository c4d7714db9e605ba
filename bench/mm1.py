"""M/M/1 speed: resilience_sim against a minimal hand-written simpy model of the same workload."""
from __future__ import annotations

import random
import time

import simpy

from resilience_sim import Exponential, OpenLoop, Service, World

ARRIVAL_RATE, SERVICE_RATE = 80.0, 100.0


def plain_simpy(n: int, seed: int = 1) -> float:
    """The same M/M/1 queue in plain simpy; returns the mean response time."""
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)
    arrivals, work = random.Random(seed), random.Random(seed + 1)
    times: list[float] = []

    def customer():
        t0 = env.now
        with server.request() as slot:
            yield slot
            yield env.timeout(work.expovariate(SERVICE_RATE))
        times.append(env.now - t0)

    def source():
        for _ in range(n):
            yield env.timeout(arrivals.expovariate(ARRIVAL_RATE))
            env.process(customer())

    env.process(source())
    env.run()
    return sum(times) / len(times)


def with_resilience_sim(n: int, seed: int = 1) -> float:
    """The M/M/1 queue built from resilience_sim's World, Service and OpenLoop; returns the mean response time."""
    world = World(seed)
    server = Service(world, "server", capacity=1, latency=Exponential(1 / SERVICE_RATE))
    OpenLoop(world, server, ARRIVAL_RATE, requests=n)
    results = world.run(until=n / ARRIVAL_RATE * 2)
    assert len(results) == n
    return results.mean_latency()


def timed(fn, n: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    value = fn(n)
    return time.perf_counter() - t0, value


def compare(n: int = 200_000, rounds: int = 3) -> tuple[float, float]:
    """Best-of-``rounds`` seconds for plain simpy and for resilience_sim, interleaved."""
    plain, ours = [], []
    for _ in range(rounds):
        plain.append(timed(plain_simpy, n)[0])
        ours.append(timed(with_resilience_sim, n)[0])
    return min(plain), min(ours)


if __name__ == "__main__":
    p, o = compare(50_000, 2)
    print(f"plain {p:.3f}s ours {o:.3f}s ratio {o / p:.2f}")
