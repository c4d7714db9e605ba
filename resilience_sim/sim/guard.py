"""Runs that stop by themselves: what cannot fit is refused before it starts, and a run whose clock
stops moving is stopped with an error that names the likely cause.

What holds:

* a workload whose expected requests exceed :data:`MAX_REQUESTS`, or a fault whose expected
  failures before the end of the run exceed :data:`MAX_FAILURES`, is refused with the numbers;
* :func:`advance` processes exactly the events simpy's ``env.run(until)`` would (those before
  ``until``; the clock then reads ``until``), and raises :class:`FrozenClock` once more than
  :data:`MAX_EVENTS_AT_ONE_INSTANT` events (give or take 1024: it looks every 1024 events) happen at
  one simulated instant: time has stopped moving,
  and the run would otherwise never end (a learner's Ctrl-C must not be the only way out).
"""
from __future__ import annotations

import simpy
from simpy.core import URGENT, StopSimulation

#: A million requests take about 29 MB of records and some 15 s of CPU: ten million is the most a
#: run may expect (a lesson needs far fewer).
MAX_REQUESTS = 10_000_000
#: Failure/repair cycles a run may expect of one fault before it ends.
MAX_FAILURES = 1_000_000
#: Events at one simulated instant before the clock counts as frozen (a real run has a few hundred).
MAX_EVENTS_AT_ONE_INSTANT = 1_000_000


class FrozenClock(RuntimeError):
    """The simulated clock stopped moving: events keep coming at one instant."""


def check_requests(name: str, expected: float, how: str) -> None:
    """Refuse a workload expected to send more than :data:`MAX_REQUESTS` requests."""
    if expected > MAX_REQUESTS:
        raise ValueError(f"{name}: {how[:60]} is about {_approx(expected)} requests, more than the "
                         f"{MAX_REQUESTS:,} a run may hold; shorten the run or lower the rate")


def check_failures(label: str, expected: float, until: float, cycle: float) -> None:
    """Refuse a fault expected to fail more than :data:`MAX_FAILURES` times before ``until``."""
    if expected > MAX_FAILURES:
        raise ValueError(f"{label}: a failure and repair every {cycle:.3g} s on average is about "
                         f"{_approx(expected)} failures by until={until:g}, more than the {MAX_FAILURES:,} a "
                         f"run may hold; raise mttf or mttr, or shorten the run")


def _approx(n: float) -> str:
    """``n`` to three digits, even an int too large for a float."""
    return f"{float(n):.3g}" if n < 1e308 else "more than 1e308"


def advance(env: simpy.Environment, until: float, causes) -> None:
    """Run ``env`` until ``until`` like ``env.run(until)``, stopping a frozen clock with
    :class:`FrozenClock`; ``causes()`` lists the likely causes for its message."""
    stop = simpy.Event(env)
    stop._ok, stop._value = True, None
    stop.callbacks.append(StopSimulation.callback)
    env.schedule(stop, URGENT, until - env.now)
    step, chunk = env.step, range(1024)
    instant, stalled = env.now, 0
    try:
        while True:
            for _ in chunk:          # as cheap per event as simpy's own loop
                step()
            if env.now != instant:   # every 1024 events: has the clock moved since the last look?
                instant, stalled = env.now, 0
                continue
            stalled += 1024
            if stalled > MAX_EVENTS_AT_ONE_INSTANT:
                found = causes()
                raise FrozenClock(f"{stalled:,} events at t = {instant:g} without time moving, so this run would "
                                  f"never end. Likely cause: {'; or '.join(found) if found else _UNKNOWN}.")
    except StopSimulation:
        return


_UNKNOWN = "something that loops without waiting (a zero delay, a zero latency)"
