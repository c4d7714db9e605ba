"""M/M/1 speed: one queue (Poisson arrivals 80/s, exponential service 100/s, one FIFO server) in four engines.

* ``heapq_loop``: the floor, a bare event loop on a heapq in pure Python;
* ``plain_simpy``: a minimal hand-written simpy model;
* ``with_ciw``: the same network in Ciw (a bench-only dependency; ``None`` when Ciw is not installed);
* ``with_resilience_sim``: World, Service and OpenLoop;
* ``with_cache_in_front``: the same, read through a :class:`~resilience_sim.CachedRead` in which every
  request misses (a new key each time, evicting the least recently used): the cache's decisions at
  their dearest, on every request.

Each engine is ``engine(n, seed=1, count=False) -> (mean response time, events or None)``: it runs ``n``
requests to the end. With ``count=True`` it also counts its events, which may cost time, so
:func:`compare` counts in a separate run after the timed ones.
"""
from __future__ import annotations

import itertools
import math
import random
import time
from collections import deque
from heapq import heappop, heappush
from typing import NamedTuple

import simpy

from resilience_sim import Cache, CachedRead, Exponential, OpenLoop, Service, World

try:
    import ciw
except ImportError:          # bench-only dependency: the table skips it
    ciw = None

ARRIVAL_RATE, SERVICE_RATE = 80.0, 100.0
THEORY_MEAN = 1 / (SERVICE_RATE - ARRIVAL_RATE)      # M/M/1 mean response time: 0.05 s


def heapq_loop(n: int, seed: int = 1, count: bool = False) -> tuple[float, int]:
    """The floor: the M/M/1 queue as a bare event loop on a heapq; returns the mean response time and
    the number of events pushed (two per request: its arrival and its departure).

    It draws from the same two streams, in the same order, as :func:`plain_simpy`, so both compute the
    same queue. The pushes are counted for free by the tie-breaking sequence number, so ``count`` changes nothing.
    """
    arrivals, work = random.Random(seed), random.Random(seed + 1)
    heap: list = []
    seq = itertools.count()          # breaks ties in time, as simpy's event ids do; also counts the pushes
    waiting: deque[float] = deque()  # arrival times of the requests in the queue
    in_service = None                # arrival time of the request being served, None when idle
    total, arrived = 0.0, 1
    heappush(heap, (arrivals.expovariate(ARRIVAL_RATE), next(seq), True))    # True: an arrival
    while heap:
        now, _, is_arrival = heappop(heap)
        if is_arrival:
            if arrived < n:
                arrived += 1
                heappush(heap, (now + arrivals.expovariate(ARRIVAL_RATE), next(seq), True))
            if in_service is None:
                in_service = now
                heappush(heap, (now + work.expovariate(SERVICE_RATE), next(seq), False))
            else:
                waiting.append(now)
        else:                        # a departure
            total += now - in_service
            if waiting:
                in_service = waiting.popleft()
                heappush(heap, (now + work.expovariate(SERVICE_RATE), next(seq), False))
            else:
                in_service = None
    return total / n, next(seq)


class EventCounter:
    """Counts the events a simpy ``Environment`` processes, by wrapping its ``step`` on the instance.

    Why ``step``: ``Environment.run`` takes every event off the queue with ``self.step()``, whether the
    event went on through ``env.schedule`` or was pushed onto ``env._queue`` directly (a known speed
    trick), so this count cannot be bypassed by a faster model; and the class itself is untouched, so
    other environments and the timed runs pay nothing. A run that drains its queue processes every
    event it scheduled, so this is also the number of events scheduled. ``simpy.Environment`` is built
    inside ``World``, hence the wrapping of an instance rather than a subclass.
    """

    def __init__(self, env: simpy.Environment):
        self.events = 0
        self._step = env.step
        env.step = self.step

    def step(self) -> None:
        self._step()                 # raises EmptySchedule or StopSimulation at the end: not an event of the model
        self.events += 1

    def check(self, n: int) -> int:
        """The count, refusing one that cannot be right (each request needs events of its own)."""
        if self.events < n:
            raise RuntimeError(f"counted {self.events} events for {n} requests: the run no longer goes "
                               f"through env.step, so bench/mm1.py must count events another way")
        return self.events


def plain_simpy(n: int, seed: int = 1, count: bool = False) -> tuple[float, int | None]:
    """The same M/M/1 queue in plain simpy; returns the mean response time and (``count``) events processed."""
    env = simpy.Environment()
    counter = EventCounter(env) if count else None
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
    return sum(times) / len(times), counter.check(n) if counter else None


def with_ciw(n: int, seed: int = 1, count: bool = False) -> tuple[float, int | None]:
    """The M/M/1 queue as a one-node Ciw network, run until ``n`` customers have left; returns the mean
    response time and (``count``) Ciw's events.

    Ciw keeps no event queue: each step it scans the nodes for the earliest next event and has that node
    carry it out (``Simulation.event_and_return_nextnode``). Its events are those steps, counted by
    wrapping that method on the instance: an arrival and a service end per customer, as in the heapq loop.
    Ciw draws from the global ``random`` module, seeded by ``ciw.seed``.
    """
    network = ciw.create_network(arrival_distributions=[ciw.dists.Exponential(rate=ARRIVAL_RATE)],
                                 service_distributions=[ciw.dists.Exponential(rate=SERVICE_RATE)],
                                 number_of_servers=[1])
    ciw.seed(seed)
    sim = ciw.Simulation(network)
    events = 0
    if count:
        step = sim.event_and_return_nextnode

        def counting_step(node):
            nonlocal events
            events += 1
            return step(node)
        sim.event_and_return_nextnode = counting_step
    sim.simulate_until_max_customers(n, method="Finish")
    records = sim.get_all_records()
    assert len(records) == n
    return sum(r.exit_date - r.arrival_date for r in records) / n, events if count else None


def with_resilience_sim(n: int, seed: int = 1, count: bool = False) -> tuple[float, int | None]:
    """The M/M/1 queue built from resilience_sim's World, Service and OpenLoop; returns the mean response
    time and (``count``) the events processed by ``world.env``."""
    world = World(seed)
    counter = EventCounter(world.env) if count else None      # before anything schedules an event
    server = Service(world, "server", capacity=1, latency=Exponential(1 / SERVICE_RATE))
    OpenLoop(world, server, ARRIVAL_RATE, requests=n)
    results = world.run(until=n / ARRIVAL_RATE * 2)
    assert len(results) == n
    return results.mean_latency(), counter.check(n) if counter else None


def with_cache_in_front(n: int, seed: int = 1, count: bool = False) -> tuple[float, int | None]:
    """:func:`with_resilience_sim` behind a cache that every request misses (its own key, a capacity of
    1,000 entries, so each fill evicts one)."""
    world = World(seed)
    counter = EventCounter(world.env) if count else None
    server = Service(world, "server", capacity=1, latency=Exponential(1 / SERVICE_RATE))
    cache = CachedRead(world, Cache(60.0, capacity=1000), source=server)
    keys = itertools.count()
    OpenLoop(world, cache, ARRIVAL_RATE, requests=n, key=lambda rng: next(keys))
    results = world.run(until=n / ARRIVAL_RATE * 2)
    assert len(results) == n and results.cache("cache").misses == n
    return results.mean_latency(), counter.check(n) if counter else None


ENGINES = {"heapq loop": heapq_loop, "plain simpy": plain_simpy, "ciw": with_ciw if ciw else None,
           "resilience_sim": with_resilience_sim, "+ cache": with_cache_in_front}


class Row(NamedTuple):
    engine: str
    seconds: float                    # best of the timed rounds
    mean: float                       # mean response time, in seconds
    events_per_request: float | None
    #: the lowest and highest of the rounds' ratios (this engine's seconds over plain simpy's in the same
    #: round): how far one round's comparison can be trusted on this machine now
    round_ratios: tuple[float, float] = (math.nan, math.nan)


def compare(n: int = 200_000, rounds: int = 3, clock=time.perf_counter) -> list[Row]:
    """Best-of-``rounds`` seconds of each installed engine by ``clock`` (wall-clock; ``time.process_time``
    counts this process's CPU only, which other work on a shared machine disturbs less), rounds
    interleaved (every engine once per round, so a slow spell of the machine hits them all), then one
    un-timed counting run each."""
    engines = {name: fn for name, fn in ENGINES.items() if fn is not None}
    timed = {name: [] for name in engines}
    means = {}
    for _ in range(rounds):
        for name, fn in engines.items():
            t0 = clock()
            means[name], _ = fn(n)
            timed[name].append(clock() - t0)
    rows = []
    for name, fn in engines.items():
        events = fn(n, count=True)[1]
        ratios = [t / s for t, s in zip(timed[name], timed["plain simpy"])]
        rows.append(Row(name, min(timed[name]), means[name], None if events is None else events / n,
                        (min(ratios), max(ratios))))
    return rows


def table(rows: list[Row], n: int) -> str:
    """The rows as a compact table; ``vs simpy`` is seconds over plain simpy's seconds (best over best),
    ``per round`` the range of the rounds' own ratios."""
    simpy_seconds = next(r.seconds for r in rows if r.engine == "plain simpy")
    lines = [f"M/M/1, {n:,} requests (lambda {ARRIVAL_RATE:g}/s, mu {SERVICE_RATE:g}/s; "
             f"theory mean {THEORY_MEAN:.4f} s)",
             f"  {'engine':<15}{'seconds':>8}{'vs simpy':>10}{'per round':>12}{'events/request':>16}"
             f"{'mean response':>15}"]
    for r in rows:
        events = "n/a" if r.events_per_request is None else f"{r.events_per_request:.1f}"
        low, high = r.round_ratios
        lines.append(f"  {r.engine:<15}{r.seconds:>8.2f}{r.seconds / simpy_seconds:>9.2f}x"
                     f"{f'{low:.2f}-{high:.2f}':>12}{events:>16}{r.mean:>13.4f} s")
    if ENGINES["ciw"] is None:
        lines.append("  ciw: not installed (pip install ciw)")
    else:
        lines.append("  (ciw's events are its steps: it keeps no event queue, it scans its nodes for the next event)")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    size, times = (int(a) for a in (sys.argv[1:3] if len(sys.argv) > 2 else (50_000, 2)))
    print(table(compare(size, times), size))
    print("by CPU time (time.process_time):")
    print(table(compare(size, times, clock=time.process_time), size))
