"""Backoff schedules: how long to wait before each retry.

Every schedule answers ``delay(attempt, rng=None, previous=None) -> float`` and nothing else changes
its answers (a shared schedule can serve every request of a run). ``given`` logs ``(attempt, delay)``
for plots in a bounded :class:`~resilience_sim.core.eventlog.EventLog`: the newest ``log_limit``
entries (10,000 by default, ``None``: all), ``given.total`` exact; ``on_event("given", entry)`` is
called for each, in order. Since that log is the run's, a schedule belongs to one run like every
policy (:func:`~._state.claim`, through its :class:`~.retry.RetryPolicy`); ``reset()`` empties it.

Indexing, the same in all: ``attempt`` counts *retries* from 1, so ``delay(1)`` is the wait before
the second call. The exponential ceiling of retry ``n`` is ``min(cap, base * 2**n)``, the formula of
the AWS Architecture Blog article "Exponential Backoff And Jitter" (Marc Brooker, 2015) taken
literally: the first retry's ceiling is ``2 * base``.

Decorrelated jitter needs the previous delay. The schedule stays stateless: the caller passes
``previous`` (the delay it waited last time, ``None`` before the first retry, meaning ``base``). Each
call draws fresh numbers from ``rng``, so two retries, or two requests, never share a draw.
"""
from __future__ import annotations

from ..core import validate
from ..core.eventlog import DEFAULT_LIMIT
from ._state import Stateful, duration


class Backoff(Stateful):
    """Base class: subclasses implement :meth:`_delay`."""

    def __init__(self, *, log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        self._logging(log_limit, on_event)
        self.reset()

    def reset(self) -> None:
        """An empty log, no owner."""
        self._forget()
        self.given = self._log("given")    # (attempt, delay) for every delay handed out

    def delay(self, attempt: int, rng=None, previous: float | None = None) -> float:
        """The wait in seconds before retry number ``attempt`` (1 = first retry); ``previous``, the
        last wait, is a number of seconds >= 0 or None."""
        if attempt.__class__ is not int or attempt < 1:
            attempt = validate.integer("attempt", attempt, low=1)
        if previous is not None:
            previous = duration("previous", previous)
        d = self._delay(attempt, rng, previous)
        self.given.append((attempt, d))
        return d

    def _delay(self, attempt, rng, previous) -> float:
        raise NotImplementedError


def _needs(rng):
    if rng is None or not hasattr(rng, "uniform"):
        raise ValueError(f"rng must be a random.Random (jitter needs random draws), got {rng!r}")
    return rng


class Constant(Backoff):
    """The same wait before every retry."""

    def __init__(self, base: float, *, log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        super().__init__(log_limit=log_limit, on_event=on_event)
        self.base = validate.non_negative("base", base)

    def _delay(self, attempt, rng, previous):
        return self.base

    def __repr__(self):
        return f"Constant({self.base:g})"


class Exponential(Backoff):
    """``min(cap, base * multiplier**attempt)``: no jitter, and always capped (``cap`` is required
    and finite: an uncapped exponential reaches hours within a few dozen retries)."""

    def __init__(self, base: float, cap: float, multiplier: float = 2.0, *,
                 log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        super().__init__(log_limit=log_limit, on_event=on_event)
        self.base = validate.positive("base", base)
        self.cap = validate.number("cap", cap, low=self.base)
        self.multiplier = validate.number("multiplier", multiplier, low=1.0)

    def ceiling(self, attempt: int) -> float:
        """The capped exponential value of retry ``attempt`` (a whole number >= 1; safe for huge ones)."""
        if attempt.__class__ is not int or attempt < 1:
            attempt = validate.integer("attempt", attempt, low=1)
        try:
            return min(self.cap, self.base * self.multiplier ** attempt)
        except OverflowError:
            return self.cap

    def _delay(self, attempt, rng, previous):
        return self.ceiling(attempt)

    def __repr__(self):
        return f"{type(self).__name__}(base={self.base:g}, cap={self.cap:g})"


class FullJitter(Exponential):
    """AWS "Full Jitter": ``random_between(0, min(cap, base * 2**attempt))``."""

    def __init__(self, base: float, cap: float, *, log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        super().__init__(base, cap, 2.0, log_limit=log_limit, on_event=on_event)

    def _delay(self, attempt, rng, previous):
        return _needs(rng).uniform(0.0, self.ceiling(attempt))


class EqualJitter(Exponential):
    """AWS "Equal Jitter": with ``temp = min(cap, base * 2**attempt)``, ``temp/2 + random_between(0, temp/2)``:
    never less than half the exponential value."""

    def __init__(self, base: float, cap: float, *, log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        super().__init__(base, cap, 2.0, log_limit=log_limit, on_event=on_event)

    def _delay(self, attempt, rng, previous):
        half = self.ceiling(attempt) / 2
        return half + _needs(rng).uniform(0.0, half)


class DecorrelatedJitter(Exponential):
    """AWS "Decorrelated Jitter": ``min(cap, random_between(base, previous * 3))``, ``previous`` being the
    delay waited before the last retry (``None`` = ``base`` for the first retry). Depends on
    ``previous``, not on ``attempt`` (still validated, for one interface)."""

    def __init__(self, base: float, cap: float, *, log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        super().__init__(base, cap, 2.0, log_limit=log_limit, on_event=on_event)

    def _delay(self, attempt, rng, previous):
        prev = self.base if previous is None else previous
        return min(self.cap, _needs(rng).uniform(self.base, prev * 3))


__all__ = ["Backoff", "Constant", "Exponential", "FullJitter", "EqualJitter", "DecorrelatedJitter"]
