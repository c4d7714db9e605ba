"""The vocabulary of outcomes and reasons that services, clients, policies and metrics share.

Every request ends with one :class:`Outcome`. A request that got no full answer has a reason:

* a **failure reason** (why no answer came) is one of :data:`REASONS`, and its outcome follows from
  it (:func:`outcome_for`): a rejection ("circuit open"), a timeout ("deadline") or a failure ("error");
* a **degradation reason** (why the answer was of lower quality: "stale", "popular in your country")
  is free text, since it describes the answer rather than classifying an error.

Any set of reasons a caller configures (``RetryPolicy(retry_on=...)`` and the like) is checked
against :data:`REASONS` with :func:`check_reasons`, so a typo is an error, not a silent no-op.
"""
from __future__ import annotations

from enum import IntEnum


class Outcome(IntEnum):
    """How a user request ended."""
    OK = 0          # full-quality answer
    DEGRADED = 1    # an answer, but of lower quality (stale, fallback...), with a reason
    FAILED = 2      # an error reached the user
    TIMED_OUT = 3   # the caller gave up waiting
    REJECTED = 4    # refused without being tried (overload, open breaker, shed...)


#: Refused without being tried.
REJECTIONS = frozenset({"overload", "rejected", "shed", "rate limited", "circuit open", "bulkhead full",
                        "throttled"})
#: The caller stopped waiting ("unfinished": the run ended first).
TIMEOUTS = frozenset({"timeout", "deadline", "unfinished"})
#: Tried, and no answer came: server-side faults, and the errors an HTTP service answers with.
FAILURES = frozenset({"error", "down", "crashed", "partition", "cancelled", "conflict",
                      "bad request", "unauthorized", "not found", "unavailable", "too many requests"})
#: Every failure reason there is.
REASONS = REJECTIONS | TIMEOUTS | FAILURES
#: The backend refused work because it was overloaded (what an adaptive throttle counts as not accepted).
OVERLOAD = frozenset({"overload", "shed", "rate limited", "rejected", "too many requests"})
#: Retried by default: failures that may not happen again on the next try, HTTP's 503 ("unavailable")
#: and 429 ("too many requests", best retried after its Retry-After) among them. Local refusals ("circuit
#: open", "bulkhead full", "throttled", "deadline") are left out: retrying them at once only burns attempts.
TRANSIENT = frozenset({"error", "timeout", "rejected", "overload", "shed", "down", "crashed", "partition",
                       "unavailable", "too many requests"})


def outcome_for(reason: str) -> Outcome:
    """The outcome a failure ``reason`` stands for."""
    if reason in TIMEOUTS:
        return Outcome.TIMED_OUT
    return Outcome.REJECTED if reason in REJECTIONS else Outcome.FAILED


def check_reason(name: str, reason) -> str:
    """``reason`` if it is a known failure reason, else a ``ValueError`` that lists the known ones."""
    if not isinstance(reason, str) or reason not in REASONS:
        raise ValueError(f"{name} must be a known reason, one of {sorted(REASONS)}; got {reason!r}")
    return reason


def check_reasons(name: str, reasons) -> frozenset:
    """A set of known failure reasons (a lone string is refused: write ``{"error"}``)."""
    if isinstance(reasons, str):
        raise ValueError(f"{name} must be a set of reasons, got the string {reasons!r} "
                         f"(write {{{reasons!r}}})")
    try:
        items = list(reasons)
    except TypeError:
        raise ValueError(f"{name} must be a set of reasons, got {reasons!r}") from None
    return frozenset(check_reason(name, r) for r in items)
