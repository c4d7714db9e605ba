"""Client-side overload controls from the Google SRE book, chapter "Handling Overload".

* :class:`RetryBudget`: retries are limited to a fraction of the requests seen over a sliding time
  window, plus a small fixed allowance so a quiet client can still retry.
* :class:`AdaptiveThrottle`: the client rejects requests locally with probability
  ``max(0, (requests - K * accepts) / (requests + 1))`` over a sliding window.

Windows are half-open, ``(now - window, now]``: an event exactly ``window`` seconds old has left.
What holds: ``now`` is finite seconds that never go back (a ``ValueError`` otherwise), so a window
never holds events from its future; memory is bounded by one window of traffic (old events leave at
every add, not only when a decision is asked for); the counters (``requests``, ``retries``,
``allowed``) are exact; the logs ``denied`` and ``rejected`` are bounded
:mod:`~resilience_sim.core.eventlog` logs (the newest ``log_limit`` entries, 10,000 by default;
``None``: all) with exact totals (``denied.total``); ``on_event(kind, entry)`` gets every log entry,
in order. Each belongs to one run (:func:`~._state.claim`); ``reset()`` empties it.
"""
from __future__ import annotations

from collections import deque

from ..core import validate
from ..core.eventlog import DEFAULT_LIMIT
from ._state import Stateful, flag


class _Window:
    """Times of events in a sliding window, with a running count of those marked."""
    __slots__ = ("span", "events", "marked")

    def __init__(self, span: float):
        self.span = span
        self.events: deque = deque()   # (time, marked)
        self.marked = 0

    def add(self, now: float, marked: bool = False) -> None:
        self.evict(now)
        self.events.append((now, marked))
        self.marked += marked

    def evict(self, now: float) -> int:
        """Drop events older than the window; return how many remain."""
        events, edge = self.events, now - self.span
        while events and events[0][0] <= edge:
            self.marked -= events.popleft()[1]
        return len(events)


class RetryBudget(Stateful):
    """Retries allowed in the window: ``ratio * first_attempts + min_per_second * window``.

    Only retries spend the budget; first attempts (``record_request``) earn it. A retry loop asks
    ``can_retry(now)`` before each retry (a False answer is logged in ``denied``) and calls
    ``record_retry(now)`` when it does retry. Share one budget across all requests of a client.
    """

    def __init__(self, ratio: float = 0.1, window: float = 10.0, min_per_second: float = 1.0, *,
                 log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        self.ratio = validate.probability("ratio", ratio)
        self.window = validate.positive("window", window)
        self.min_per_second = validate.non_negative("min_per_second", min_per_second)
        self._logging(log_limit, on_event)
        self.reset()

    def reset(self) -> None:
        """No requests or retries seen, empty logs, no clock, no owner."""
        self._forget()
        self._requests = _Window(self.window)
        self._retries = _Window(self.window)
        self.requests = 0
        self.retries = 0
        self.denied = self._log("denied")     # times of retries refused

    def record_request(self, now: float) -> None:
        """A first attempt was sent (never call this for a retry)."""
        self._requests.add(self._tick(now))
        self.requests += 1

    def record_retry(self, now: float) -> None:
        """A retry was sent."""
        self._retries.add(self._tick(now))
        self.retries += 1

    def allowance(self, now: float) -> float:
        """How many retries the current window allows."""
        return self.ratio * self._requests.evict(self._tick(now)) + self.min_per_second * self.window

    def can_retry(self, now: float) -> bool:
        """Whether one more retry fits in the budget now."""
        if self._retries.evict(self._tick(now)) < self.allowance(now):
            return True
        self.denied.append(now)
        return False

    def __repr__(self):
        return f"RetryBudget(ratio={self.ratio:g}, window={self.window:g}, min_per_second={self.min_per_second:g})"


class AdaptiveThrottle(Stateful):
    """Client-side adaptive throttling: reject locally before the backend has to.

    Every request counts once in ``requests``: either :meth:`allow` rejected it locally, or
    :meth:`record` logs the backend's verdict for it (``accepted``: the backend did not refuse it for
    overload), or :meth:`cancel` withdraws it (allowed, but a layer below refused it before it was
    sent: no verdict, so it counts nowhere). ``K`` (``k``) is how many requests per accept the client
    tolerates before throttling: 2 in the book; lower is more aggressive. Logs: ``allowed`` (count of
    requests let through and not withdrawn), ``rejected`` (times; its exact count is ``rejected.total``).

    **Every attempt is a request.** The book counts "requests attempted by the application layer"
    and "requests accepted by the backend"; a retry is one more request the backend must handle, so a
    retry loop asks :meth:`allow` before *every* attempt and records every attempt it sent. Then the
    guarantee holds with retries too: at steady state ``sent = requests * (1 - p) = requests * (K *
    accepts + 1) / (requests + 1)``, so the backend sees about K times what it accepts. (Asked once
    per request but recorded per attempt, the retries came on top: with K = 2 and 3 attempts the
    backend saw 2.9 times what it accepted; ``tests/test_hardening_policies.py`` runs that case.)

    As the book counts them, local rejections are requests too, so after a total outage recovery is
    gradual: once the backend accepts again, the share let through roughly doubles every window.
    """

    def __init__(self, k: float = 2.0, window: float = 120.0, *,
                 log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        self.k = validate.number("k", k, low=1.0)
        self.window = validate.positive("window", window)
        self._logging(log_limit, on_event)
        self.reset()

    def reset(self) -> None:
        """No requests seen, empty logs, no clock, no owner."""
        self._forget()
        self._events = _Window(self.window)   # marked = accepted
        self.allowed = 0
        self.rejected = self._log("rejected")   # times (rejected.total: count)

    def rejection_probability(self, now: float) -> float:
        requests = self._events.evict(self._tick(now))
        return max(0.0, (requests - self.k * self._events.marked) / (requests + 1))

    def allow(self, now: float, rng) -> bool:
        """Whether to send a request now (draws one number from ``rng`` only when p > 0)."""
        p = self.rejection_probability(now)
        if p > 0.0 and _draw(rng) < p:
            self._events.add(now, False)
            self.rejected.append(now)
            return False
        self.allowed += 1
        return True

    def record(self, now: float, accepted: bool) -> None:
        """The backend answered a request sent after :meth:`allow`: accepted it or refused it."""
        self._events.add(self._tick(now), flag("accepted", accepted))

    def cancel(self, now: float) -> None:
        """A request :meth:`allow` let through was never sent (say the circuit breaker or the bulkhead
        below refused it): the backend gave no verdict, so it counts nowhere."""
        self._tick(now)
        self.allowed -= 1

    def __repr__(self):
        return f"AdaptiveThrottle(k={self.k:g}, window={self.window:g})"


def _draw(rng) -> float:
    try:
        return rng.random()
    except AttributeError:
        raise ValueError(f"rng must be a random.Random (the throttle draws from it), got {rng!r}") from None


__all__ = ["RetryBudget", "AdaptiveThrottle"]
