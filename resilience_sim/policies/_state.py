"""What every stateful policy shares: a clock that never goes back, one owner, and ``reset()``.

What holds, for every :class:`Stateful` policy:

* **time only moves forward**: each method that takes ``now`` refuses a time that is not a finite
  number, or that is earlier than the latest time the policy has been given (a ``ValueError`` naming
  ``now``, that latest time and the value given). One NaN would otherwise freeze a breaker open, and a
  time from an earlier run would stop a bucket refilling: both silent.
* **one owner**: :func:`claim` binds a policy to an owner (the simulator's ``World``; any object,
  compared by identity, held weakly). A second, different owner is refused: a breaker or a bucket
  carries its state and its clock from one run into the next. Several clients of the *same* world
  may share one policy (a shared bulkhead is a feature).
* **reset()** returns a policy to its just-constructed state: counters zero, logs new and empty
  (built with the same ``log_limit`` and ``on_event``), clock and owner forgotten.

The checks on the hot path are comparisons only; the slow path (building the message) runs only for
bad input.
"""
from __future__ import annotations

import math
import numbers
import weakref

from ..core import validate
from ..core.eventlog import check_callback, check_limit, policy_log

INF = math.inf
BIG = 1.7976931348623157e308       # the largest float: a "finite" int above it cannot be a float
_PLAIN = (float, int)              # checked by comparisons alone; others (numpy, Fraction) by validate


def flag(name: str, value) -> bool:
    """``value`` if it is True or False (numpy's too); else ``validate.boolean``'s error naming ``name``."""
    if value is True or value is False:
        return value
    return validate.boolean(name, value)


def _number(name, value, **rule) -> float:
    """The slow path: ``validate.number``, with a huge int refused by name too (not an OverflowError)."""
    try:
        return validate.number(name, value, **rule)
    except OverflowError:
        raise ValueError(f"{name} must be a number that fits a float (at most {BIG:g}), got {value!r}") from None


def duration(name: str, value) -> float:
    """A finite number of seconds >= 0 (cheap when it is a plain one)."""
    if value.__class__ in _PLAIN and 0.0 <= value <= BIG:
        return value
    return _number(name, value, low=0.0)


def count(name: str, value, low: int = 0) -> int:
    """A whole number >= ``low`` (cheap when it is a plain int)."""
    if value.__class__ is int and value >= low:
        return value
    return validate.integer(name, value, low=low)


def real(name: str, value) -> float:
    """A number, infinities allowed, NaN not (cheap when it is a plain one)."""
    if value.__class__ in _PLAIN and -INF <= value <= INF:
        return value
    return _number(name, value, allow_inf=True)


def finite(name: str, value) -> float:
    """A finite number (a time such as a start, not checked against the clock)."""
    if value.__class__ in _PLAIN and -BIG <= value <= BIG:
        return value
    return _number(name, value)


class Stateful:
    """Base of the policies that keep state: the clock (``_tick``), the owner (``claim``) and the logs."""

    _owner = None          # None, or a weak reference to the owner (a callable returning it)
    _now = -INF            # the latest time given

    def _logging(self, log_limit, on_event) -> None:
        """Check the log settings once, at construction (a bad one is refused there, not at reset)."""
        self._log_args = (check_limit("log_limit", log_limit),
                          check_callback("on_event", on_event, "(kind, entry)"))

    def _log(self, kind: str, key=None):
        return policy_log(kind, *self._log_args, key=key)

    def _forget(self, now: float = -INF) -> None:
        """For reset(): no owner, and the clock back at ``now``."""
        self._owner = None
        self._now = now

    def _tick(self, now):
        """``now`` if it is a finite time no earlier than the latest one seen (which it becomes)."""
        if now.__class__ in _PLAIN and self._now <= now <= BIG:
            self._now = now
            return now
        if isinstance(now, numbers.Real) and now.__class__ is not bool:     # numpy, Fraction...
            try:
                t = float(now)
            except OverflowError:
                t = INF
            if self._now <= t <= BIG:
                self._now = t
                return t
        raise ValueError(self._time_error(now))

    def _time_error(self, now) -> str:
        what, last = type(self).__name__, self._now
        seen = "no time yet" if last == -INF else f"now={last!r} last"
        if now.__class__ is bool or not isinstance(now, numbers.Real):
            return f"now must be a time in seconds (a finite number), got {now!r}; this {what} was given {seen}"
        if not -BIG <= now <= BIG:
            return f"now must be a finite time in seconds, got now={now!r}; this {what} was given {seen}"
        again = f"make a new {what}, or call reset()" if callable(getattr(self, "reset", None)) else f"make a new {what}"
        return (f"now must not go back: this {what} was given now={last!r} last, then now={now!r}. "
                f"Drive it with one clock (take now afresh before each call); for a new run {again}")

    # --- owners ---------------------------------------------------------------------------------
    def _check_owner(self, owner, name: str) -> None:
        held = self._owner
        if held is None or held() is owner:
            return
        what = type(self).__name__
        raise ValueError(f"{name}: this {what} is already driven by another World or client (it keeps that "
                         f"run's state and clock); make a new {what} per run, or call reset() on it first")

    def _set_owner(self, owner) -> None:
        if self._owner is None:
            try:
                self._owner = weakref.ref(owner)
            except TypeError:                   # not weakly referable: hold it
                self._owner = lambda: owner

    def claim(self, owner, name: str | None = None) -> None:
        """Bind this policy to ``owner``; refused if another owner holds it (see :func:`claim`);
        ``name`` is the parameter the refusal names (default: the class)."""
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"name must be a non-empty string or None, got {name!r}")
        claim(owner, **{name or type(self).__name__: self})

    def reset(self) -> None:                      # each policy builds its state here
        raise NotImplementedError


def claim(owner, **policies) -> None:
    """Claim every policy given (by parameter name) for ``owner``, all or none: each one already held
    by another owner is refused with a ``ValueError`` naming its parameter, before any is bound.
    ``None`` and objects that are not the course's policies (a learner's breaker) are skipped.

    The simulator calls ``claim(world, breaker=..., bulkhead=...)`` for every client and service."""
    found = [(name, p) for name, p in policies.items() if isinstance(p, Stateful)]
    for name, p in found:
        p._check_owner(owner, name)
    for _, p in found:
        p._set_owner(owner)


__all__ = ["Stateful", "claim", "flag", "duration", "count", "finite", "real"]
