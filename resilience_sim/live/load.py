"""A bounded open-loop load generator whose rows go into the simulator's own ``Results``.

``report = run_load(lambda: client.get("/items"), Constant(50), duration=5, max_requests=1000)``
sends requests at the times of a Poisson process whose rate follows a
:mod:`resilience_sim.core.profiles` profile (Constant, Ramp, Step, Spike: a Spike is a spike test),
drawn as the simulator's ``OpenLoop`` draws them (exponential gaps at the profile's peak rate, each
arrival kept with probability ``rate(t) / peak``), from ``random.Random(seed)``. Open loop: arrivals
keep coming whatever the target does, so a slow target meets a growing crowd, as real users are.

What holds:

* **bounded**: at most ``max_requests`` arrivals, none at or after ``duration`` seconds; run_load
  returns at most ``grace`` seconds after the last arrival (after ``duration`` at the latest), by
  itself. A call still running then is recorded TIMED_OUT "unfinished" in the report (as ``Results``
  does for a simulated run cut off); its worker thread ends when the call does, so give ``call`` a
  bound (a client with a deadline) and nothing outlives the run for long;
* **a bounded pool**: ``workers`` threads make the calls; an arrival that finds every worker busy
  is not queued (a queue would make the load closed-loop and hide the overload): the generator
  records it REJECTED with reason "overload", answered by "load", and counts it in ``overload``;
* **one row per arrival**, from its scheduled time (so time lost waiting for a worker counts in its
  latency, no coordinated omission) to the call's return: a :class:`~.attempts.Reply` gives its own
  outcome, reason, attempts and answered_by; an ``httpx.Response`` its status as a reason; any other
  value is a full answer; an exception is a failure ("timeout", "down", "error" for httpx's, "error"
  for any other);
* ``call()`` takes no argument, or ``call(key)`` when ``key`` is given: one value for all, or
  ``key(rng)`` drawn per arrival from the generator's own seeded stream (the row records it too).

:class:`LoadReport` gives ``results`` (a :class:`~resilience_sim.metrics.results.Results`, with the
``clients``' stats), ``planned`` (arrivals drawn), ``started``, ``overload``, ``unfinished``,
``window`` (seconds the arrivals span), ``offered_rate`` (planned / window), ``achieved_rate``
(calls started / the time it took to start them, never less than the window) and ``lag`` (how late
calls started after their scheduled time: p50, p99, max).
"""
from __future__ import annotations

import numbers
import queue
import random
import threading
import time
from dataclasses import dataclass

import httpx
import numpy as np

from ..core import validate
from ..core.profiles import PROFILES, Constant
from ..core.reasons import Outcome, outcome_for
from ..metrics.results import Results
from .attempts import Reply, reason_for_error, reason_for_status
from .recording import LiveRecording

#: Bounds a live run must stay inside (a notebook cell, a test, a bench).
MAX_DURATION = 3600.0
MAX_REQUESTS = 1_000_000
MAX_WORKERS = 512
#: Candidate arrivals drawn at most (the peak rate times the duration), thinned ones included.
MAX_CANDIDATES = 10_000_000


def arrival_times(profile, *, duration: float, max_requests: int, rng: random.Random) -> list[float]:
    """Poisson arrival times in [0, duration) whose rate follows ``profile``, at most ``max_requests``:
    gaps drawn at the peak rate, each arrival kept with probability rate(t) / peak (the simulator's
    ``OpenLoop``)."""
    peak, constant = profile.peak, isinstance(profile, Constant)
    times, now = [], 0.0
    while len(times) < max_requests:
        now += rng.expovariate(peak)
        if now >= duration:
            break
        if constant or rng.random() * peak < profile(now):
            times.append(now)
    return times


@dataclass(frozen=True)
class LoadReport:
    """What one load run did (see the module docstring)."""
    results: Results
    planned: int
    started: int
    overload: int
    unfinished: int
    window: float
    last_start: float
    lag: dict

    @property
    def offered_rate(self) -> float:
        """Arrivals drawn per second of the arrival window."""
        return self.planned / self.window

    @property
    def achieved_rate(self) -> float:
        """Calls started per second of the time it took to start them (never less than the window)."""
        return self.started / max(self.window, self.last_start)

    def __repr__(self):
        return (f"LoadReport(offered {self.offered_rate:.1f}/s, achieved {self.achieved_rate:.1f}/s, "
                f"{self.overload} overload, {self.unfinished} unfinished, lag p99 {self.lag['p99'] * 1e3:.1f} ms)")


def _profile(profile):
    if isinstance(profile, numbers.Real) and not isinstance(profile, bool):
        return Constant(validate.positive("profile", profile))
    if not isinstance(profile, PROFILES):
        raise validate.WrongType(f"profile must be a rate in requests per second or one of "
                                 f"{[p.__name__ for p in PROFILES]}, got {validate.show(profile)}")
    return profile


def _keys(key):
    """A function of the key stream giving each arrival's key, or None (no key)."""
    if key is None:
        return None
    if callable(key):
        return key
    try:
        hash(key)
    except TypeError:
        raise validate.WrongType(f"key must be None, a hashable value or a function of a random.Random, "
                                 f"got {validate.show(key)}") from None
    return lambda _rng: key


def row_of(value) -> tuple:
    """``(outcome, reason, attempts, answered_by)`` of what a call returned."""
    if isinstance(value, Reply):
        return value.outcome, value.reason, value.attempts, value.answered_by
    if isinstance(value, httpx.Response):
        reason = reason_for_status(value.status_code)
        return (outcome_for(reason) if reason else Outcome.OK), reason, 1, value.url.netloc.decode()
    return Outcome.OK, "", 1, ""


def _row_of_error(err: BaseException) -> tuple:
    reason = reason_for_error(err) if isinstance(err, httpx.HTTPError) else "error"
    return outcome_for(reason), reason, 1, ""


def run_load(call, profile, *, duration: float, max_requests: int, seed: int = 0, workers: int = 16,
             grace: float = 1.0, route: str = "load", key=None, recording: LiveRecording | None = None,
             clients=(), on_start=None) -> LoadReport:
    """Run ``call`` at the arrivals of ``profile`` (see the module docstring for what holds).

    ``recording``: where the rows go (default: a new one whose zero is the moment the arrivals
    start, once the workers are up, so a row's times count from the first arrival's clock); a given
    recording keeps its own zero. ``on_start()``, if given, is called at that same moment (say, to
    start a fault's clock, so that its windows line up with the rows). ``clients``: ResilientClients
    whose stats the results report."""
    call = validate.function("call", call)
    profile = _profile(profile)
    duration = validate.number("duration", duration, low=0.0, high=MAX_DURATION, low_open=True)
    max_requests = validate.integer("max_requests", max_requests, low=1, high=MAX_REQUESTS)
    seed = validate.integer("seed", seed, low=0)
    workers = validate.integer("workers", workers, low=1, high=MAX_WORKERS)
    grace = validate.number("grace", grace, low=0.0, high=MAX_DURATION)
    route = validate.text("route", route, empty=False)
    if profile.peak * duration > MAX_CANDIDATES:
        raise ValueError(f"profile and duration must draw at most {MAX_CANDIDATES:,} candidate arrivals "
                         f"(peak {profile.peak:g}/s for {duration:g} s draws {profile.peak * duration:,.0f}); "
                         f"shorten duration or lower the peak")
    on_start = validate.function("on_start", on_start, optional=True)
    own = recording is None
    if own:
        recording = LiveRecording()
    elif not isinstance(recording, LiveRecording):
        raise validate.WrongType(f"recording must be a LiveRecording or None, got {validate.show(recording)}")
    elif recording.writers:
        raise ValueError(f"recording: client {recording.writers[0].name!r} already writes a row per request "
                         f"there, and run_load writes one per arrival; give run_load a recording of its own "
                         f"(or none) and pass the client in clients=")
    for client in clients:
        recording.include(client)
    draw, key_rng = _keys(key), random.Random(f"{seed}/keys")     # its own stream: keys leave arrivals alone
    times = arrival_times(profile, duration=duration, max_requests=max_requests, rng=random.Random(seed))
    window = duration if len(times) < max_requests else max(times[-1], 1e-9)

    clock = recording.clock
    tasks: queue.SimpleQueue = queue.SimpleQueue()
    idle = threading.Semaphore(workers)
    lags: list = []
    starts: list = []

    def work():
        while True:
            task = tasks.get()
            if task is None:
                return
            pending, at, k = task
            started = clock()
            lags.append(started - t0 - at)
            starts.append(started - t0)
            try:
                value = call() if draw is None else call(k)
            except Exception as err:            # a failure of the call, recorded; never our crash
                row = _row_of_error(err)
            else:
                row = row_of(value)
            recording.finish(pending, row[0], row[1], row[3], attempts=row[2])
            idle.release()

    pool = [threading.Thread(target=work, name=f"load-worker-{i}", daemon=True) for i in range(workers)]
    for thread in pool:
        thread.start()
    t0 = clock()
    if own:
        recording.zero = t0
    origin, overload = t0 - recording.zero, 0
    try:
        if on_start is not None:
            on_start()
        for at in times:
            k = None if draw is None else draw(key_rng)
            delay = t0 + at - clock()
            if delay > 0:
                time.sleep(delay)
            if not idle.acquire(blocking=False):
                overload += 1
                recording.add(route, Outcome.REJECTED, "overload", "load", start=origin + at, key=k)
                continue
            tasks.put((recording.start(route, k, at=origin + at), at, k))
    finally:
        for _ in pool:
            tasks.put(None)
        stop_by = t0 + (times[-1] if times else 0.0) + grace
        for thread in pool:
            thread.join(max(0.0, stop_by - clock()))
    until = recording.now()
    results = recording.results(until=until, seed=seed)
    started = len(starts)
    lag = np.array(lags) if lags else np.zeros(1)
    return LoadReport(results=results, planned=len(times), started=started, overload=overload,
                      unfinished=results.in_flight, window=window, last_start=max(starts, default=0.0),
                      lag={"p50": float(np.percentile(lag, 50)), "p99": float(np.percentile(lag, 99)),
                           "max": float(lag.max())})


__all__ = ["run_load", "LoadReport", "arrival_times", "row_of"]
