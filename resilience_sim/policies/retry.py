"""Retry policy: whether to try again after a failed attempt, and how long to wait first.

What holds:

* at most ``max_attempts`` calls in all (the first one counts): after attempt ``n`` fails,
  ``should_retry(n, ...)`` is False once ``n >= max_attempts``;
* only outcomes whose reason is in ``retry_on`` are retried; ``retry_on`` and every ``reason`` are
  reasons of :mod:`resilience_sim.core.reasons` (a typo such as "timout" is a ``ValueError`` that
  lists the known reasons, never a silent "not retryable");
* a non-idempotent call is never retried unless it carries an idempotency key (a retry after a
  timeout may repeat a write the server already did).

Indexing matches :mod:`.backoff`: after attempt ``n`` (1 = the first call) fails, the wait before the
next one is ``backoff.delay(n)``, since that next call is retry number ``n``.

The default ``retry_on`` is :data:`RETRYABLE`, the core's ``TRANSIENT`` reasons. Local refusals
("circuit open", "bulkhead full", "throttled", "deadline") are left out on purpose: retrying at once
against your own open breaker only burns attempts.

Inputs are checked where they come in: ``now`` finite seconds that never go back (``should_retry``
may go without), ``attempt`` a whole number >= 1, ``idempotent`` True or False (a string such as "no" is
truthy, and would let a write be retried), ``remaining`` a number (<= 0: the deadline has passed) or
None. A policy and its backoff belong to one run (:func:`~._state.claim`); ``reset()`` empties both.

Logs ``retries`` and ``refusals`` are bounded :mod:`~resilience_sim.core.eventlog` logs (the newest
``log_limit`` entries, 10,000 by default; ``None``: all); the Counter ``refused`` stays exact.
``on_event(kind, entry)`` gets every entry, in order, ``kind`` being "retries" or "refusals".
"""
from __future__ import annotations

from operator import itemgetter

from ..core import validate
from ..core.eventlog import DEFAULT_LIMIT
from ..core.reasons import TRANSIENT, check_reason, check_reasons
from ._state import Stateful, flag, real
from .backoff import Backoff

#: Reasons retried by default: failures that may not happen again on the next try (the core's TRANSIENT).
RETRYABLE = TRANSIENT


#: Attempts a request may make at most: far beyond any sane policy, and what a record can count.
MAX_ATTEMPTS = 10_000


class RetryPolicy(Stateful):
    """Decides on retries and gives the wait before each; logs every decision.

    ``retries``: ``(now, attempt, reason)`` per retry granted; ``refusals``: ``(now, attempt, reason,
    why)`` with ``why`` one of "max attempts", "not retryable", "not idempotent", "deadline";
    ``refused``: a Counter of those ``why`` (exact, whatever the logs dropped). ``now`` is ``None``
    when the caller did not pass it.
    """

    def __init__(self, max_attempts: int, backoff: Backoff, retry_on=RETRYABLE, *,
                 log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        self.max_attempts = validate.integer("max_attempts", max_attempts, low=1, high=MAX_ATTEMPTS)
        if not isinstance(backoff, Backoff):
            raise ValueError(f"backoff must be a backoff schedule (Constant, Exponential, FullJitter, "
                             f"EqualJitter, DecorrelatedJitter), got {backoff!r}")
        self.backoff = backoff
        self.retry_on = check_reasons("retry_on", retry_on)
        self._logging(log_limit, on_event)
        self._reset_own()

    def _reset_own(self) -> None:
        self._forget()
        self.retries = self._log("retries")                          # (now, attempt, reason)
        self.refusals = self._log("refusals", key=itemgetter(3))     # (.., reason, why)
        self.refused = self.refusals.counts     # Counter of why, over every refusal

    def reset(self) -> None:
        """Empty logs, no clock, no owner; its backoff's too."""
        self._reset_own()
        self.backoff.reset()

    def _check_owner(self, owner, name):
        super()._check_owner(owner, name)
        self.backoff._check_owner(owner, f"{name}.backoff")

    def _set_owner(self, owner):
        super()._set_owner(owner)
        self.backoff._set_owner(owner)

    def _why_not(self, now, attempt, reason, idempotent, idempotency_key) -> str | None:
        if now is not None:
            self._tick(now)
        if attempt.__class__ is not int or attempt < 1:
            attempt = validate.integer("attempt", attempt, low=1)
        check_reason("reason", reason)
        idempotent = flag("idempotent", idempotent)
        if attempt >= self.max_attempts:
            return "max attempts"
        if reason not in self.retry_on:
            return "not retryable"
        if not idempotent and not idempotency_key:
            return "not idempotent"
        return None

    def _note(self, now, attempt, reason, why) -> bool:
        if why is None:
            self.retries.append((now, attempt, reason))
            return True
        self.refusals.append((now, attempt, reason, why))     # counts it in refused too
        return False

    def should_retry(self, attempt: int, reason: str, idempotent: bool = True,
                     idempotency_key: str | None = None, *, now: float | None = None) -> bool:
        """Whether to make another call after attempt number ``attempt`` failed with ``reason``."""
        return self._note(now, attempt, reason, self._why_not(now, attempt, reason, idempotent, idempotency_key))

    def next_delay(self, attempt: int, rng=None, previous: float | None = None,
                   retry_after: float | None = None) -> float:
        """The wait after attempt ``attempt`` failed: ``backoff.delay(attempt)``, but never less than
        a server's ``retry_after`` hint (HTTP Retry-After) when one was given."""
        d = self.backoff.delay(attempt, rng, previous)
        if retry_after is not None:
            d = max(d, validate.non_negative("retry_after", retry_after))
        return d

    def decide(self, now: float, attempt: int, reason: str, rng=None, *, previous: float | None = None,
               idempotent: bool = True, idempotency_key: str | None = None,
               retry_after: float | None = None, remaining: float | None = None) -> float | None:
        """One call for a retry loop: the wait before the next attempt, or ``None`` to stop.

        ``remaining`` is what is left of the request's deadline: a retry whose wait would use it all
        up is refused ("deadline"). ``previous`` is the last wait (for decorrelated jitter).
        """
        why = self._why_not(self._tick(now), attempt, reason, idempotent, idempotency_key)
        if remaining is not None:
            remaining = real("remaining", remaining)
        d = None
        if why is None:
            d = self.next_delay(attempt, rng, previous, retry_after)
            if remaining is not None and d >= remaining:
                why = "deadline"
        return d if self._note(now, attempt, reason, why) else None

    def __repr__(self):
        return f"RetryPolicy(max_attempts={self.max_attempts}, backoff={self.backoff!r})"


__all__ = ["RetryPolicy", "RETRYABLE"]
