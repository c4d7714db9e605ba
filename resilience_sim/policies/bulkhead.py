"""Bulkhead: at most ``max_concurrent`` calls in flight to one dependency, so a slow dependency can
hold only its own share of the caller's threads, connections or slots.

What holds: ``in_use`` never exceeds ``max_concurrent``; waiters are served first come, first served
(a newcomer never overtakes a waiter); nobody waits longer than ``max_wait``.

The policy keeps the books; the driver does the waiting (a simpy event, an asyncio future)::

    if bulkhead.try_acquire(now):            # a free slot and nobody waiting
        ...call...; bulkhead.release(now)
    elif bulkhead.can_wait():                # max_wait > 0
        until = bulkhead.enqueue(now)        # wait for a hand-over, at most until `until`
        # a release(now) that returns True has handed its slot to the oldest waiter: wake it;
        # a waiter still waiting at `until` calls bulkhead.give_up(now) (counted as rejected);
        # one that stops waiting earlier (cancelled, deadline) calls bulkhead.leave(its enqueue time)
    else:
        ...rejected (already counted by try_acquire)...

All waiters share one ``max_wait``, so the oldest is both the next served and the next to expire:
the driver must keep its waiters in the same FIFO order. ``now`` is finite seconds that never go
back (a ``ValueError`` otherwise). One bulkhead may be shared by several callers of one run (they
share its slots and its queue), not across runs (:func:`~._state.claim`); ``reset()`` empties it.

Logs ``rejections`` and ``waits`` are bounded :mod:`~resilience_sim.core.eventlog` logs (the newest
``log_limit`` entries, 10,000 by default; ``None``: all); counts stay exact (``rejected``,
``rejections.counts["full"]``, ``waits.total``). ``on_event(kind, entry)`` gets every entry, in order.
"""
from __future__ import annotations

from collections import deque
from operator import itemgetter

from ..core import validate
from ..core.eventlog import DEFAULT_LIMIT
from ._state import Stateful, finite


class Bulkhead(Stateful):
    """Logs: ``acquired`` (count), ``rejections`` [(time, "full" | "wait expired")], ``waits``
    (seconds waited by those handed a slot), ``peak`` (most calls in flight at once), ``rejected``
    (count of all rejections, exact)."""

    def __init__(self, max_concurrent: int, max_wait: float = 0.0, *,
                 log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        self.max_concurrent = validate.integer("max_concurrent", max_concurrent, low=1)
        self.max_wait = validate.non_negative("max_wait", max_wait)
        self._logging(log_limit, on_event)
        self.reset()

    def reset(self) -> None:
        """No slot held, nobody waiting, counts zero, empty logs, no clock, no owner."""
        self._forget()
        self.in_use = 0
        self._waiters: deque = deque()     # enqueue times, oldest first
        self.acquired = 0
        self.peak = 0
        self.rejections = self._log("rejections", key=itemgetter(1))   # (time, why)
        self.waits = self._log("waits")                               # seconds

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def rejected(self) -> int:
        return self.rejections.total

    def try_acquire(self, now: float) -> bool:
        """Take a slot if one is free and nobody is waiting. On False, counts a rejection only when
        the caller cannot wait (``max_wait == 0``)."""
        self._tick(now)
        if self.in_use < self.max_concurrent and not self._waiters:
            self.in_use += 1
            self.acquired += 1
            self.peak = max(self.peak, self.in_use)
            return True
        if not self.can_wait():
            self.rejections.append((now, "full"))
        return False

    def can_wait(self) -> bool:
        """Whether a caller refused by :meth:`try_acquire` may queue."""
        return self.max_wait > 0

    def enqueue(self, now: float) -> float:
        """Start waiting; returns the time at which to give up."""
        self._tick(now)
        if not self.can_wait():
            raise RuntimeError("this bulkhead has max_wait == 0: callers cannot wait")
        self._waiters.append(now)
        return now + self.max_wait

    def give_up(self, now: float) -> None:
        """The oldest waiter reached ``max_wait`` without a slot: it leaves, rejected."""
        self._tick(now)
        if not self._waiters:
            raise RuntimeError("give_up() without a waiter")
        self._waiters.popleft()
        self.rejections.append((now, "wait expired"))

    def leave(self, enqueued_at: float) -> None:
        """A waiter enqueued at ``enqueued_at`` stops waiting before ``max_wait`` (its caller gave up
        or its deadline came): it leaves the queue, not counted as rejected by the bulkhead."""
        enqueued_at = finite("enqueued_at", enqueued_at)
        try:
            self._waiters.remove(enqueued_at)
        except ValueError:
            raise ValueError(f"enqueued_at must be the time a waiter still waiting was enqueued (leave() "
                             f"without such a waiter), got {enqueued_at!r}") from None

    def release(self, now: float) -> bool:
        """A call ended. Returns True when its slot went straight to the oldest waiter (wake it)."""
        self._tick(now)
        if self.in_use == 0:
            raise RuntimeError("release() without a matching acquire")
        if self._waiters:
            waited = now - self._waiters.popleft()
            self.acquired += 1
            self.waits.append(waited)
            return True
        self.in_use -= 1
        return False

    def __repr__(self):
        return f"Bulkhead(max_concurrent={self.max_concurrent}, max_wait={self.max_wait:g}, in_use={self.in_use})"


__all__ = ["Bulkhead"]
