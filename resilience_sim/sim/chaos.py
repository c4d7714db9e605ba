"""A chaos day: a day/night traffic profile with a flash sale, and a seeded schedule of faults across a
shop, as plain data that can be printed, plotted and applied to a world.

``day = chaos_day(seed=7)`` draws one day (24 simulated hours unless ``hours`` says otherwise): a
:class:`DayProfile` (hourly rates of a day/night curve, and a flash sale at a random busy hour) and a
tuple of :class:`ChaosFault` (kind, target, start, end, and the fault's own numbers). Each kind of
fault in :data:`FAULT_KINDS` happens on a day with probability :data:`FAULT_CHANCE`, at a random
time, so some days miss some faults: tuning to one day does not cover the others. The same seed
always gives the same day (one ``random.Random`` from the seed, drawn in a fixed order).

:func:`apply_chaos` turns each fault into the simulator's own faults (:class:`~.faults.Outage`,
:class:`~.faults.LatencySpike`, :class:`~.faults.Partition`) on the services a mapping names, and a
503 window (:class:`Unavailable`) on an object with an ``unavailable_until`` time (a payment provider
that answers 503 with Retry-After); every fault shows in ``results.faults`` with its spans.

:class:`DayTraffic` sends open-loop Poisson arrivals that follow a :class:`DayProfile`, exactly: the
profile is constant piece by piece (an hour, the sale), and each piece draws its gaps at its own rate.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from ..core import validate
from ..core.seeds import stream_seed
from . import guard
from .faults import Fault, LatencySpike, Outage, Partition
from .workload import serve
from .world import check_world

HOUR = 3600.0
#: Each kind of fault a chaos day can hold, and what it does (the ``target`` names a service).
FAULT_KINDS = {
    "db failover": "the database is down while its standby takes over",
    "search down": "the search engine is down",
    "recommendations slow": "every call to recommendations takes seconds longer",
    "broker crash": "the message broker is down",
    "payment 503": "the payment provider answers 503 with Retry-After",
    "partition": "two services cannot reach each other (a call hangs, then fails)",
    "latency trigger": "the catalog turns several times slower for minutes (retries can turn it into a storm)",
}
#: The chance that a day holds each kind of fault.
FAULT_CHANCE = 0.75
#: The pairs a partition can cut (the frontend and one of its dependencies).
PARTITION_PAIRS = (("frontend", "catalog"), ("frontend", "search"), ("frontend", "recommendations"))
#: Seconds a call across a partition hangs before it fails (a connect timeout).
PARTITION_HANG = 3.0
#: Relative traffic per hour of the day (0 = midnight): low at night, peaks around 13:00 and 20:00.
DAY_SHAPE = (0.15, 0.1, 0.08, 0.08, 0.1, 0.15, 0.25, 0.4, 0.55, 0.7, 0.8, 0.9,
             0.95, 1.0, 0.9, 0.85, 0.85, 0.9, 0.95, 1.0, 0.95, 0.75, 0.5, 0.3)


@dataclass(frozen=True)
class ChaosFault:
    """One fault of a chaos day: ``kind`` (one of :data:`FAULT_KINDS`), the service(s) it hits
    (``target``, ``other`` for a partition's second side), its window in seconds, and ``size``: the
    extra seconds a call takes ("recommendations slow"), the factor ("latency trigger"), the hang of
    a partitioned call, or the Retry-After in seconds ("payment 503"); 0 where it means nothing."""
    kind: str
    target: str
    start: float
    end: float
    size: float = 0.0
    other: str = ""

    def __post_init__(self):
        validate.choice("kind", self.kind, FAULT_KINDS)
        validate.text("target", self.target, empty=False)
        validate.non_negative("start", self.start)
        validate.number("end", self.end, low=self.start, low_open=True)
        validate.non_negative("size", self.size)
        validate.text("other", self.other)
        if (self.kind == "partition") != bool(self.other):
            raise ValueError(f"other must name the partition's second service for a partition, and only then; "
                             f"got kind={self.kind!r}, other={self.other!r}")

    @property
    def label(self) -> str:
        """How the fault reads in a table or a legend."""
        where = f"{self.other} | {self.target}" if self.other else self.target
        return f"{self.kind} ({where})"


@dataclass(frozen=True)
class DayProfile:
    """Arrivals per second over a day: ``peak_rate`` times :data:`DAY_SHAPE` hour by hour (the shape
    stretched over ``hours``), times ``sale_factor`` during the flash sale ``[sale_start, sale_end)``."""
    peak_rate: float
    hours: float = 24.0
    sale_start: float = 0.0
    sale_end: float = 0.0
    sale_factor: float = 1.0

    def __post_init__(self):
        validate.positive("peak_rate", self.peak_rate)
        validate.positive("hours", self.hours)
        validate.non_negative("sale_start", self.sale_start)
        validate.number("sale_end", self.sale_end, low=self.sale_start)
        validate.number("sale_factor", self.sale_factor, low=1.0)

    @property
    def duration(self) -> float:
        return self.hours * HOUR

    @property
    def peak(self) -> float:
        """The highest rate the profile reaches."""
        return self.peak_rate * self.sale_factor

    def __call__(self, t: float) -> float:
        hour = int(t / self.duration * 24) % 24
        rate = self.peak_rate * DAY_SHAPE[hour]
        return rate * self.sale_factor if self.sale_start <= t < self.sale_end else rate

    def pieces(self) -> list:
        """``[(start, end, rate)]``: the profile as pieces of constant rate, in time order."""
        step = self.duration / 24
        edges = sorted({*(h * step for h in range(25)), *(t for t in (self.sale_start, self.sale_end)
                                                          if 0 < t < self.duration)})
        return [(lo, hi, self((lo + hi) / 2)) for lo, hi in zip(edges, edges[1:]) if hi > lo]

    def scaled(self, peak_rate: float) -> "DayProfile":
        """The same day with another ``peak_rate`` (one endpoint's share of the traffic)."""
        return DayProfile(peak_rate, self.hours, self.sale_start, self.sale_end, self.sale_factor)

    def expected(self) -> float:
        """Arrivals expected over the day."""
        return sum((hi - lo) * rate for lo, hi, rate in self.pieces())


@dataclass(frozen=True)
class ChaosDay:
    """One day: its ``seed``, its traffic ``profile`` (relative: peak 1.0) and its ``faults`` in time order."""
    seed: int
    profile: DayProfile
    faults: tuple

    def __post_init__(self):
        validate.integer("seed", self.seed, low=0)
        if not isinstance(self.profile, DayProfile):
            raise validate.WrongType(f"profile must be a DayProfile, got {validate.show(self.profile)}")
        if isinstance(self.faults, (str, bytes)) or not hasattr(self.faults, "__iter__"):
            raise validate.WrongType(f"faults must be a tuple of ChaosFault, got {validate.show(self.faults)}")
        faults = tuple(self.faults)
        for i, f in enumerate(faults):
            if not isinstance(f, ChaosFault):
                raise validate.WrongType(f"faults[{i}] must be a ChaosFault, got {validate.show(f)}")
            if f.end > self.profile.duration:
                raise ValueError(f"faults[{i}] must end by the end of the day ({self.profile.duration:g} s), "
                                 f"got end={f.end:g}")
        object.__setattr__(self, "faults", tuple(sorted(faults, key=lambda f: f.start)))

    @property
    def duration(self) -> float:
        return self.profile.duration

    def kinds(self) -> tuple:
        """The kinds of fault this day holds."""
        return tuple(dict.fromkeys(f.kind for f in self.faults))

    def rows(self) -> list:
        """A row per fault: (kind, where, start h, end h, size), for a table."""
        return [(f.kind, f.label, f.start / HOUR, f.end / HOUR, f.size) for f in self.faults]

    def __str__(self) -> str:
        p = self.profile
        lines = [f"chaos day {self.seed}: {p.hours:g} h, flash sale x{p.sale_factor:g} "
                 f"{p.sale_start / HOUR:.2f}-{p.sale_end / HOUR:.2f} h"]
        lines += [f"  {f.start / HOUR:6.2f}-{f.end / HOUR:6.2f} h  {f.label}" + (f"  ({f.size:g})" if f.size else "")
                  for f in self.faults]
        return "\n".join(lines)


def chaos_day(seed: int, *, hours: float = 24.0, chance: float = FAULT_CHANCE, sale_factor: float = 4.0) -> ChaosDay:
    """The chaos day of ``seed`` (see :mod:`resilience_sim.sim.chaos`). Durations are those of a
    24-hour day scaled by ``hours / 24``, so a short day for a test is the same day in miniature."""
    seed = validate.integer("seed", seed, low=0)
    hours = validate.number("hours", hours, low=0.1, high=24 * 7)
    chance = validate.probability("chance", chance)
    rng = random.Random(stream_seed(seed, "chaos-day"))
    k = hours / 24.0                      # a day's durations, scaled
    sale_at = rng.uniform(10, 20) * HOUR * k
    profile = DayProfile(1.0, hours, sale_at, sale_at + 0.5 * HOUR * k, sale_factor)

    def window(lo_h, hi_h, lo_len, hi_len):
        start = rng.uniform(lo_h, hi_h) * HOUR * k
        return start, start + rng.uniform(lo_len, hi_len) * k

    drawn = []
    for kind in FAULT_KINDS:              # always the same draws in the same order, whatever happens
        happens = rng.random() < chance
        if kind == "db failover":
            f = ChaosFault(kind, "db", *window(1, 23, 30, 90))
        elif kind == "search down":
            f = ChaosFault(kind, "search", *window(1, 23, 20 * 60, 60 * 60))
        elif kind == "recommendations slow":
            f = ChaosFault(kind, "recommendations", *window(1, 23, 20 * 60, 40 * 60), size=rng.uniform(2, 4))
        elif kind == "broker crash":
            f = ChaosFault(kind, "broker", *window(1, 23, 5 * 60, 15 * 60))
        elif kind == "payment 503":
            start, _ = window(1, 23, 0, 0)
            f = ChaosFault(kind, "payment", start, start + 600 * k, size=600 * k)
        elif kind == "partition":
            a, b = PARTITION_PAIRS[rng.randrange(len(PARTITION_PAIRS))]
            f = ChaosFault(kind, b, *window(1, 23, 5 * 60, 15 * 60), size=PARTITION_HANG, other=a)
        else:
            f = ChaosFault(kind, "catalog", *window(9, 21, 2 * 60, 5 * 60), size=rng.uniform(8, 12))
        if happens:
            drawn.append(f)
    return ChaosDay(seed, profile, tuple(sorted(drawn, key=lambda f: f.start)))


# --- applying a day to a world -------------------------------------------------------------------------
class Unavailable(Fault):
    """Inside ``window``, ``provider.unavailable_until`` holds the window's end (0 outside): a provider
    that checks it answers 503 ("unavailable") with Retry-After = that end minus now."""
    kind = "unavailable"

    def __init__(self, world, provider, window, *, label: str):
        if not hasattr(provider, "unavailable_until"):
            raise validate.WrongType(f"provider must have an 'unavailable_until' attribute, got {validate.show(provider)}")
        super().__init__(world, label)
        self.windows = validate.windows("window", [window])
        self.provider = provider
        self.env.process(self._run())

    def _run(self):
        (start, end), = self.windows
        yield self.env.timeout(start - self.env.now)
        self.provider.unavailable_until = end
        yield self.env.timeout(end - start)
        self.provider.unavailable_until = 0.0


def apply_chaos(world, day: ChaosDay, services: dict, *, providers: dict | None = None) -> list:
    """Attach ``day``'s faults to ``world``: ``services`` maps each fault's target name to its
    Service, ``providers`` maps "payment" to an object with an ``unavailable_until`` time. The faults made."""
    check_world(world)
    if not isinstance(day, ChaosDay):
        raise validate.WrongType(f"day must be a ChaosDay (chaos_day(seed=1)), got {validate.show(day)}")
    providers = providers or {}
    made = []
    for f in day.faults:
        if f.kind == "payment 503":
            if f.target not in providers:
                raise ValueError(f"providers must name {f.target!r} for a payment 503, got {sorted(providers)}")
            made.append(Unavailable(world, providers[f.target], (f.start, f.end), label=f.label))
            continue
        for name in (f.target, f.other) if f.other else (f.target,):
            if name not in services:
                raise ValueError(f"services must name {name!r} (the target of {f.label}), got {sorted(services)}")
        svc, span = services[f.target], [(f.start, f.end)]
        if f.kind == "partition":
            fault = Partition(services[f.other], svc, span, hang=f.size)
        elif f.kind == "recommendations slow":
            fault = LatencySpike(svc, span, extra=f.size)
        elif f.kind == "latency trigger":
            fault = LatencySpike(svc, span, factor=f.size)
        else:
            fault = Outage(svc, span)
        fault.label = f.label
        made.append(fault)
    return made


class DayTraffic:
    """Poisson arrivals for ``route`` following ``profile`` (a :class:`DayProfile`) until its end;
    ``key()`` (no argument) gives each request's key. Registered as a workload of the world."""

    def __init__(self, world, target, profile: DayProfile, *, route: str, key=None):
        self.world = check_world(world)
        if not isinstance(profile, DayProfile):
            raise validate.WrongType(f"profile must be a DayProfile, got {validate.show(profile)}")
        self.target, self.profile = target, profile
        self.name = self.route = validate.text("route", route, empty=False)
        self._key = validate.function("key", key, optional=True) or (lambda: None)
        guard.check_requests("DayTraffic", profile.expected(), f"{route} over {profile.hours:g} h")
        self.rng = world.rng(f"workload/{route}/arrivals")
        self.sent = 0
        world.add_workload(self)
        world.env.process(self._arrivals())

    def _arrivals(self):
        """Exact Poisson arrivals of a piecewise-constant rate: in each piece, gaps at its own rate
        (memoryless, so starting afresh at each boundary changes nothing)."""
        env, world, target, rng, route, key = (self.world.env, self.world, self.target, self.rng,
                                               self.route, self._key)
        for lo, hi, rate in self.profile.pieces():
            if rate <= 0:
                continue
            t = max(lo, env.now)
            while True:
                t += rng.expovariate(rate)
                if t >= hi:
                    break
                yield env.timeout(t - env.now)
                self.sent += 1
                env.process(serve(world, target, route, key()))
            if hi > env.now:
                yield env.timeout(hi - env.now)


__all__ = ["HOUR", "FAULT_KINDS", "FAULT_CHANCE", "PARTITION_PAIRS", "PARTITION_HANG", "DAY_SHAPE", "ChaosFault", "DayProfile",
           "ChaosDay", "chaos_day", "Unavailable", "apply_chaos", "DayTraffic"]
