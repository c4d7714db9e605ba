"""Timeouts and deadlines: how long one attempt may take, and how long the whole request may take.

A :class:`Deadline` is the budget of a whole user request; :meth:`Deadline.start` turns it into a
:class:`Countdown` (an absolute expiry time) that every layer below reads. What holds:

* a per-attempt timeout never exceeds what is left of the deadline (``attempt_timeout``);
* a dependency is given what is left, minus a reserve for the caller's own work (``child``), so a
  callee never works on an answer its caller has already given up on.

Times are floats in seconds (simulated, or ``time.monotonic()``); nothing here sleeps. Every ``now``
is finite and never goes back, for each object (a countdown's clock starts at its start), else a
``ValueError``; a ``start`` is a finite time. Infinite means none: ``Timeout(math.inf)`` never
expires, ``Deadline(math.inf)`` never runs out (and so do a client's ``timeout=``/``deadline=``).
``Timeout`` and ``Deadline`` belong to one run (:func:`~._state.claim`) and have ``reset()``; a
:class:`Countdown` is one request's, made fresh for each.

Logs (``Timeout.timeouts``, ``Countdown.attempts``) are bounded :mod:`~resilience_sim.core.eventlog`
logs (the newest ``log_limit`` entries, 10,000 by default; ``None``: all), their totals exact
(``timeouts.total``). ``on_event(kind, entry)`` gets every entry, in order; a :class:`Deadline`
hands its ``log_limit`` and ``on_event`` to every countdown it starts, and a countdown to its children.
"""
from __future__ import annotations

from ..core import validate
from ..core.eventlog import DEFAULT_LIMIT, policy_log
from ._state import Stateful, duration, finite, flag


class Timeout(Stateful):
    """A fixed limit on one attempt: the attempt started at ``start`` is abandoned at ``start + per_attempt``.

    ``per_attempt`` may be ``math.inf`` (no timeout: the baseline). ``record`` keeps counts for plots.
    """

    def __init__(self, per_attempt: float, *, log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        self.per_attempt = validate.positive("per_attempt", per_attempt, allow_inf=True)
        self._logging(log_limit, on_event)
        self.reset()

    def reset(self) -> None:
        """Counts zero, an empty log, no clock, no owner."""
        self._forget()
        self.attempts = 0
        self.timeouts = self._log("timeouts")   # times at which an attempt timed out

    def expires_at(self, start: float) -> float:
        return finite("start", start) + self.per_attempt

    def expired(self, start: float, now: float) -> bool:
        """Whether an attempt started at ``start`` has run out of time at ``now``."""
        return self._tick(now) - finite("start", start) >= self.per_attempt

    def record(self, now: float, timed_out: bool) -> None:
        """Log one finished attempt (``timed_out``: it was abandoned at its limit)."""
        self._tick(now)
        self.attempts += 1
        if timed_out is not False and flag("timed_out", timed_out):
            self.timeouts.append(now)

    def __repr__(self) -> str:
        return f"Timeout({self.per_attempt:g})"


class Deadline(Stateful):
    """The time budget of a whole request; ``start(now)`` gives the running :class:`Countdown`."""

    def __init__(self, budget: float, *, log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        self.budget = validate.positive("budget", budget, allow_inf=True)
        self._logging(log_limit, on_event)                 # refused here, not at start()
        self.reset()

    def reset(self) -> None:
        """None started, no clock, no owner."""
        self._forget()
        self.started = 0

    def start(self, now: float) -> Countdown:
        self.started += 1
        now = self._tick(now)
        return Countdown(now, now + self.budget, log_limit=self._log_args[0], on_event=self._log_args[1])

    def __repr__(self) -> str:
        return f"Deadline({self.budget:g})"


class Countdown:
    """A started deadline: it expires at ``at`` and never moves.

    ``attempts`` logs ``(now, timeout given)`` for every :meth:`attempt_timeout` call, so a plot can
    show the timeouts of successive retries shrinking as the deadline nears.
    """
    __slots__ = ("started", "at", "attempts", "_log_args", "_now")

    def __init__(self, started: float, at: float, *, log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        self.started = self._now = finite("started", started)
        self.at = validate.number("at", at, low=self.started, allow_inf=True)
        self.attempts = policy_log("attempts", log_limit, on_event)   # (now, timeout given)
        self._log_args = (log_limit, on_event)

    _tick = Stateful._tick
    _time_error = Stateful._time_error

    def remaining(self, now: float) -> float:
        """Time left, never negative."""
        return max(0.0, self.at - self._tick(now))

    def expired(self, now: float) -> bool:
        return self._tick(now) >= self.at

    def attempt_timeout(self, now: float, per_attempt: float | Timeout) -> float:
        """The timeout for an attempt starting now: ``min(per_attempt, remaining)``.

        A retry loop that uses this can never run past the deadline.
        """
        limit = (per_attempt.per_attempt if isinstance(per_attempt, Timeout) else
                 validate.positive("per_attempt", per_attempt, allow_inf=True))
        timeout = min(limit, self.remaining(now))
        self.attempts.append((now, timeout))
        return timeout

    def child(self, now: float, reserve: float = 0.0) -> Countdown:
        """The deadline to hand to a dependency: what is left minus ``reserve`` (the caller's own
        remaining work), never below zero. Send ``child.remaining(now)`` over the wire (a duration,
        not a clock reading, since clocks differ between machines).
        """
        reserve = duration("reserve", reserve)
        self._tick(now)
        return Countdown(now, max(now, self.at - reserve), log_limit=self._log_args[0], on_event=self._log_args[1])

    def __repr__(self) -> str:
        return f"Countdown(started={self.started:g}, at={self.at:g})"


__all__ = ["Timeout", "Deadline", "Countdown"]
