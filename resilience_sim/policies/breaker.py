"""Circuit breaker: stop calling a dependency that keeps failing, then probe it before trusting it again.

States and what holds:

* **closed**: every call is allowed. Outcomes go into a sliding window (the last ``window`` calls,
  or the calls of the last ``window`` seconds with ``window_type="time"``). It trips to *open* when
  ``consecutive_failures`` calls in a row failed, or, once the window holds at least ``min_calls``
  calls, when the share of failures reaches ``failure_rate`` or the share of calls slower than
  ``slow_call_duration`` reaches ``slow_call_rate``. Give at least one of these rules.
* **open**: every call is rejected, for exactly ``open_for`` seconds; then it is *half-open*. Never
  stuck: the change is read from ``now`` (finite, never going back), the history records it at the
  moment it happened (``opened + open_for``), not when someone next asked.
* **half-open**: at most ``half_open_probes`` calls are allowed (the rest are rejected). A failed
  (or, with the slow rule, slow) probe reopens it at once; when all probes succeed it closes.
* Every change of state clears the counts (window, consecutive failures, probes) and starts a new
  *period*: a result from a call allowed in an earlier period is late, counted in ``late``, ignored.

Contract: ``allow(now)`` returns a :class:`Permit` (truthy, equal to True) or False. Call ``record(now,
success, duration, permit=p)`` once when that call ends (a timeout is a failure), or ``cancel(now,
permit=p)`` if it was never made (say the bulkhead refused it). Only a probe's own permit resolves the
probe: a slow call allowed while closed that ends while half-open is late. Without ``permit=`` (code
written for ``allow() -> bool``) a result resolves the oldest outstanding permit and a cancel the newest
(:mod:`._permits`); a result with none outstanding counts as a call allowed now. To look, use ``state``.

Logs: ``history`` [(time, state)], starting with ``(start, "closed")``; ``trips`` [(time, why)];
``rejected`` (count) and ``rejections`` (times); ``late`` (count). The three lists are bounded
:mod:`~resilience_sim.core.eventlog` logs: the newest ``log_limit`` entries (10,000 by default;
``None``: all), counts exact (``trips.total``, ``history.counts["open"]``). ``on_event(kind, entry)``
gets every entry in order, after the state changed: a trip is ``("history", (t, "open"))``, then
``("trips", (t, why))``. ``reset()`` returns it to its just-constructed state (see ``_state``).

Where this differs from Resilience4j's CircuitBreaker (resilience4j.readme.io, "CircuitBreaker"):
rates are fractions in [0, 1], not percentages; Resilience4j has no consecutive-failures rule;
its time-based window aggregates per-second buckets where ours keeps exact call times; its
half-open state lets ``permittedNumberOfCallsInHalfOpenState`` calls through and then compares their
failure rate with the threshold, where ours reopens on the first failed probe and closes only when
all succeed; it goes from open to half-open on the next call after ``waitDurationInOpenState``
(unless the automatic transition is enabled), ours at exactly ``open_for``; and it has no
disabled, forced-open or metrics-only states and no ignored exceptions (the caller decides success).
"""
from __future__ import annotations

import math
from collections import deque
from operator import itemgetter

from ..core import validate
from ..core.eventlog import DEFAULT_LIMIT
from ._permits import Ledger, Permit
from ._state import Stateful, flag
from ._state import duration as _duration

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker(Stateful):
    """A breaker with the rules described in the module docstring, e.g.
    ``CircuitBreaker(consecutive_failures=5, open_for=30.0)`` or
    ``CircuitBreaker(failure_rate=0.5, window=20, min_calls=10, open_for=30.0, half_open_probes=3)``.
    ``window`` is a number of calls (``window_type="count"``) or seconds (``"time"``); ``start`` is
    the time of the first history entry (pass ``time.monotonic()`` when driven live)."""

    def __init__(self, *, consecutive_failures: int | None = None, failure_rate: float | None = None,
                 slow_call_rate: float | None = None, slow_call_duration: float | None = None,
                 window: float = 100, window_type: str = "count", min_calls: int = 10,
                 open_for: float = 30.0, half_open_probes: int = 1, start: float = 0.0,
                 log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        if consecutive_failures is None and failure_rate is None and slow_call_rate is None:
            raise ValueError("consecutive_failures, failure_rate or slow_call_rate: give at least one "
                             "trip rule, got none")
        self.consecutive_failures = (None if consecutive_failures is None else
                                     validate.integer("consecutive_failures", consecutive_failures, low=1))
        self.failure_rate = None if failure_rate is None else _rate("failure_rate", failure_rate)
        self.slow_call_rate = None if slow_call_rate is None else _rate("slow_call_rate", slow_call_rate)
        if (slow_call_rate is None) != (slow_call_duration is None):
            raise ValueError(f"slow_call_duration must be a number > 0 given together with slow_call_rate, "
                             f"got slow_call_duration={slow_call_duration!r}, slow_call_rate={slow_call_rate!r}")
        self.slow_call_duration = (math.inf if slow_call_duration is None else
                                   validate.positive("slow_call_duration", slow_call_duration))
        self.window_type = validate.choice("window_type", window_type, ("count", "time"))
        if window_type == "count":
            self.window = validate.integer("window", window, low=1)
            try:
                self.min_calls = validate.integer("min_calls", min_calls, low=1, high=self.window)
            except ValueError as err:
                raise ValueError(f"{err} (the window holds window={self.window} calls)") from None
        else:
            self.window = validate.positive("window", window)
            self.min_calls = validate.integer("min_calls", min_calls, low=1)
        self.open_for = validate.positive("open_for", open_for)
        self.half_open_probes = validate.integer("half_open_probes", half_open_probes, low=1)
        self.start = validate.number("start", start)
        self._logging(log_limit, on_event)
        self.reset()

    def reset(self) -> None:
        """Back to the just-constructed state: closed at ``start``, no counts, empty logs, no owner."""
        self._forget(self.start)
        self._state, self._opened_at = CLOSED, self.start
        self._permits = Ledger()          # permits outstanding, per period (a period ends at each change)
        self._calls: deque = deque()      # (time, failed, slow) in the closed state's window
        self._failed = self._slow = self._consecutive = 0
        self._probes_sent = self._probes_ok = 0
        self.history = self._log("history", key=itemgetter(1))   # (time, state)
        self.trips = self._log("trips", key=itemgetter(1))       # (time, why)
        self.rejections = self._log("rejections")                # times
        self.rejected = self.late = 0
        self.history.append((self.start, CLOSED))

    # --- the decisions -------------------------------------------------------------------------
    def state(self, now: float) -> str:
        """The state at ``now``: "closed", "open" or "half-open"."""
        self._advance(now)
        return self._state

    def allow(self, now: float) -> Permit | bool:
        """A :class:`Permit` if a call may go ahead now; False: fail fast, the call is rejected."""
        self._advance(now)
        state = self._state
        if state == CLOSED:
            return self._permits.issue(False, now)
        if state == HALF_OPEN and self._probes_sent < self.half_open_probes:
            self._probes_sent += 1
            return self._permits.issue(True, now)
        self.rejected += 1
        self.rejections.append(now)
        return False

    def record(self, now: float, success: bool, duration: float = 0.0, *, permit: Permit | None = None) -> None:
        """The outcome of an allowed call that ended at ``now`` after ``duration`` seconds."""
        self._advance(now)
        if success is not True and success is not False:
            success = flag("success", success)
        slow = _duration("duration", duration) > self.slow_call_duration
        permits = self._permits
        period = permits.resolve(permit, oldest=True)
        if period is None and self._state == CLOSED:
            period = permits.period            # no allow() outstanding: a call allowed just now
        if period != permits.period:
            self.late += 1
        elif self._state == CLOSED:
            self._add(now, not success, slow)
            why = self._trip_reason(now)
            if why:
                self._open(now, why)
        else:                                  # half-open, and this period's permit: a probe
            if not success or (slow and self.slow_call_rate is not None):
                self._open(now, "probe failed" if not success else "probe slow")
            else:
                self._probes_ok += 1
                if self._probes_ok >= self.half_open_probes:
                    self._to(now, CLOSED)

    def cancel(self, now: float, *, permit: Permit | None = None) -> None:
        """An allowed call was never made: give its permit back, record no outcome."""
        self._advance(now)
        if self._permits.resolve(permit, oldest=False) == self._permits.period and self._state == HALF_OPEN:
            self._probes_sent -= 1

    def rates(self, now: float) -> tuple[int, float, float]:
        """(calls in the window, failure share, slow share), for plots; zeros unless closed."""
        self._advance(now)
        n = self._evict(now)
        return (n, self._failed / n, self._slow / n) if n else (0, 0.0, 0.0)

    # --- internals -----------------------------------------------------------------------------
    def _advance(self, now):
        """Move the clock to ``now`` (finite, never back), and go half-open once ``open_for`` has passed."""
        now = self._tick(now)
        if self._state == OPEN and now >= self._opened_at + self.open_for:
            self._to(self._opened_at + self.open_for, HALF_OPEN)

    def _add(self, now, failed, slow):
        if self.window_type == "count" and len(self._calls) == self.window:
            self._drop()
        self._calls.append((now, failed, slow))
        self._failed += failed
        self._slow += slow
        self._consecutive = self._consecutive + 1 if failed else 0

    def _drop(self):
        _, failed, slow = self._calls.popleft()
        self._failed -= failed
        self._slow -= slow

    def _evict(self, now) -> int:
        if self.window_type == "time":
            edge = now - self.window
            while self._calls and self._calls[0][0] <= edge:
                self._drop()
        return len(self._calls)

    def _trip_reason(self, now) -> str:
        if self.consecutive_failures is not None and self._consecutive >= self.consecutive_failures:
            return "consecutive failures"
        n = self._evict(now)
        if n >= self.min_calls:
            if self.failure_rate is not None and self._failed / n >= self.failure_rate:
                return "failure rate"
            if self.slow_call_rate is not None and self._slow / n >= self.slow_call_rate:
                return "slow-call rate"
        return ""

    def _open(self, now, why):
        self._opened_at = now
        self._to(now, OPEN)
        self.trips.append((now, why))

    def _to(self, when, state):
        self._state = state
        self._permits.next_period()
        self._calls.clear()
        self._failed = self._slow = self._consecutive = 0
        self._probes_sent = self._probes_ok = 0
        self.history.append((when, state))     # last: a callback sees the new state

    def __repr__(self):
        return f"CircuitBreaker(state={self._state!r}, open_for={self.open_for:g})"


def _rate(name, value):
    return validate.number(name, value, low=0.0, high=1.0, low_open=True)


__all__ = ["CircuitBreaker", "Permit", "CLOSED", "OPEN", "HALF_OPEN"]
