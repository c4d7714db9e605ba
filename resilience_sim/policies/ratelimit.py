"""Rate limits on the way in.

* :class:`TokenBucket`: ``rate`` tokens a second flow into a bucket of ``burst``; a request takes a
  token or is refused. What holds: over any interval of length ``t`` at most ``burst + rate * t``
  tokens are taken. The bucket starts full.
* :class:`LoadShedder`: a server refuses new work when its queue is too long or too old, so the
  work it does accept is answered while the caller still waits for it.

Both read ``now`` as finite seconds that never go back (a ``ValueError`` otherwise: a time from an
earlier run would stop a bucket refilling), belong to one run (:func:`~._state.claim`) and go back
to their just-constructed state with ``reset()``. Logs (``rejections``, ``sheds``) are bounded
:mod:`~resilience_sim.core.eventlog` logs (the newest ``log_limit`` entries, 10,000 by default;
``None``: all); counts stay exact (``rejections.total``, ``sheds.counts["queue full"]``).
``on_event(kind, entry)`` gets every entry, in order.
"""
from __future__ import annotations

from operator import itemgetter

from ..core import validate
from ..core.eventlog import DEFAULT_LIMIT
from ._state import Stateful, count, duration

_EPS = 1e-9   # tolerance on token counts: waiting exactly wait_time() must be enough


class TokenBucket(Stateful):
    """Logs: ``taken`` (count of granted takes) and ``rejections`` (times)."""

    def __init__(self, rate: float, burst: float, *, log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        self.rate = validate.positive("rate", rate)
        self.burst = validate.number("burst", burst, low=1.0)
        self._logging(log_limit, on_event)
        self.reset()

    def reset(self) -> None:
        """Full again, nothing taken, empty logs, no clock, no owner."""
        self._forget()
        self._tokens = self.burst
        self.taken = 0
        self.rejections = self._log("rejections")   # times

    def available(self, now: float) -> float:
        """Tokens in the bucket at ``now`` (after refilling)."""
        last = self._now
        if self._tick(now) > last:            # first call: last is -inf, and the bucket is full anyway
            self._tokens = min(self.burst, self._tokens + (now - last) * self.rate)
        return self._tokens

    def _check(self, tokens):
        if tokens.__class__ in (int, float) and tokens == 1:
            return 1
        return validate.number("tokens", tokens, low=0.0, high=self.burst, low_open=True)

    def try_take(self, now: float, tokens: float = 1) -> bool:
        """Take ``tokens`` if the bucket holds them (all or nothing)."""
        tokens = self._check(tokens)
        have = self.available(now)
        if have + _EPS >= tokens:
            self._tokens = max(0.0, have - tokens)
            self.taken += 1
            return True
        self.rejections.append(now)
        return False

    def wait_time(self, now: float, tokens: float = 1) -> float:
        """Seconds until ``tokens`` will be available (0 if they are now)."""
        tokens = self._check(tokens)
        return max(0.0, (tokens - self.available(now)) / self.rate)

    def __repr__(self):
        return f"TokenBucket(rate={self.rate:g}, burst={self.burst:g})"


class LoadShedder(Stateful):
    """Shed when ``queue_length`` (requests already waiting, not counting the newcomer: a whole number
    >= 0) has reached ``max_queue``, or when the oldest waiting request has waited more than
    ``max_queue_delay`` seconds (``oldest_wait``, >= 0). ``None`` turns a limit off. Logs:
    ``admitted`` (count), ``sheds`` [(time, why)]."""

    def __init__(self, max_queue: int | None = None, max_queue_delay: float | None = None, *,
                 log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        self.max_queue = None if max_queue is None else validate.integer("max_queue", max_queue, low=0)
        self.max_queue_delay = (None if max_queue_delay is None else
                                validate.non_negative("max_queue_delay", max_queue_delay))
        self._logging(log_limit, on_event)
        self.reset()

    def reset(self) -> None:
        """Nothing admitted or shed, empty logs, no clock, no owner."""
        self._forget()
        self.admitted = 0
        self.sheds = self._log("sheds", key=itemgetter(1))   # (time, why)

    def should_shed(self, now: float, queue_length: int, oldest_wait: float = 0.0) -> bool:
        self._tick(now)
        queue_length = count("queue_length", queue_length)
        oldest_wait = duration("oldest_wait", oldest_wait)
        if self.max_queue is not None and queue_length >= self.max_queue:
            self.sheds.append((now, "queue full"))
            return True
        if self.max_queue_delay is not None and oldest_wait > self.max_queue_delay:
            self.sheds.append((now, "queue delay"))
            return True
        self.admitted += 1
        return False

    def __repr__(self):
        return f"LoadShedder(max_queue={self.max_queue}, max_queue_delay={self.max_queue_delay})"


__all__ = ["TokenBucket", "LoadShedder"]
