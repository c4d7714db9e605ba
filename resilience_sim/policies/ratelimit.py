"""Rate limits on the way in.

* :class:`TokenBucket`: ``rate`` tokens a second flow into a bucket of ``burst``; a request takes a
  token or is refused. What holds: over any interval of length ``t`` at most ``burst + rate * t``
  tokens are taken. The bucket starts full.
* :class:`LoadShedder`: a server refuses new work when its queue is too long or too old, so the
  work it does accept is answered while the caller still waits for it.

Logs (``rejections``, ``sheds``) are bounded :mod:`~resilience_sim.core.eventlog` logs (the newest
``log_limit`` entries, 10,000 by default; ``None``: all); counts stay exact (``rejections.total``,
``sheds.counts["queue full"]``). ``on_event(kind, entry)`` gets every entry, in order.
"""
from __future__ import annotations

from operator import itemgetter

from ..core import validate
from ..core.eventlog import DEFAULT_LIMIT, policy_log

_EPS = 1e-9   # tolerance on token counts: waiting exactly wait_time() must be enough


class TokenBucket:
    """Logs: ``taken`` (count of granted takes) and ``rejections`` (times)."""

    def __init__(self, rate: float, burst: float, *, log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        self.rate = validate.positive("rate", rate)
        self.burst = validate.number("burst", burst, low=1.0)
        self._tokens = self.burst
        self._last: float | None = None
        self.taken = 0
        self.rejections = policy_log("rejections", log_limit, on_event)   # times

    def available(self, now: float) -> float:
        """Tokens in the bucket at ``now`` (after refilling)."""
        if self._last is None:
            self._last = now
        elif now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
        return self._tokens

    def _check(self, tokens):
        if tokens == 1:
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


class LoadShedder:
    """Shed when ``queue_length`` (requests already waiting, not counting the newcomer) has reached
    ``max_queue``, or when the oldest waiting request has waited more than ``max_queue_delay``
    seconds. ``None`` turns a limit off. Logs: ``admitted`` (count), ``sheds`` [(time, why)]."""

    def __init__(self, max_queue: int | None = None, max_queue_delay: float | None = None, *,
                 log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        self.max_queue = None if max_queue is None else validate.integer("max_queue", max_queue, low=0)
        self.max_queue_delay = (None if max_queue_delay is None else
                                validate.non_negative("max_queue_delay", max_queue_delay))
        self.admitted = 0
        self.sheds = policy_log("sheds", log_limit, on_event, key=itemgetter(1))   # (time, why)

    def should_shed(self, now: float, queue_length: int, oldest_wait: float = 0.0) -> bool:
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
