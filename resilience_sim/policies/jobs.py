"""A durable queue of deferred jobs: "202 Accepted, we will email you the result when it is ready".

A request that cannot be answered now becomes a job: :meth:`JobQueue.submit` accepts it (or refuses
it when ``capacity`` jobs are already waiting), workers :meth:`~JobQueue.take` the oldest ready job,
and report :meth:`~JobQueue.complete` (the user is notified) or :meth:`~JobQueue.retry_later` (the
job waits ``backoff`` before it is ready again). What holds: a job accepted is never lost: at every
moment ``accepted == completed + queued + running + dead``; jobs are taken oldest-ready first; a job
is ``dead`` (parked for an operator) only after ``max_attempts`` attempts, and never when that is None.
"""
from __future__ import annotations

import heapq
import math

from ..core import validate
from .backoff import Backoff, Exponential
from ._state import Stateful


class JobQueue(Stateful):
    """Counters: ``accepted``, ``refused``, ``completed``, ``dead``, ``attempts``; ``queued`` and
    ``running`` are the jobs waiting and being worked on now. ``done`` lists ``(job, accepted_at,
    notified_at)`` per completed job, in order."""

    def __init__(self, *, capacity: int | None = None, backoff: Backoff | None = None,
                 max_attempts: int | None = None):
        self.capacity = None if capacity is None else validate.integer("capacity", capacity, low=1)
        if backoff is not None and not isinstance(backoff, Backoff):
            raise validate.WrongType(f"backoff must be a Backoff (FullJitter(base=1, cap=60)) or None, "
                                     f"got {validate.show(backoff)}")
        self.backoff = Exponential(base=1.0, cap=60.0) if backoff is None else backoff
        self.max_attempts = None if max_attempts is None else validate.integer("max_attempts", max_attempts, low=1)
        self.reset()

    def reset(self) -> None:
        """Empty, counters zero, no clock, no owner."""
        self._forget()
        self._ready: list = []          # heap of (ready_at, order, job)
        self._jobs: dict = {}           # job -> [accepted_at, attempts]; waiting or running
        self._running: set = set()
        self._order = 0
        self.accepted = self.refused = self.completed = self.dead = self.attempts = 0
        self.done: list = []
        self.parked: list = []          # dead jobs, for an operator
        self._ended: dict = {}          # job -> "done" or "dead"

    @property
    def queued(self) -> int:
        return len(self._jobs) - len(self._running)

    @property
    def running(self) -> int:
        return len(self._running)

    def _known(self, job):
        """``job`` if it is hashable (an id), else a WrongType naming ``job``."""
        try:
            hash(job)
        except TypeError:
            raise validate.WrongType(f"job must be a hashable id (a number, a string), got {validate.show(job)}") from None
        return job

    def status(self, job) -> str:
        """What a user polling the job's status URL sees: "queued", "running", "done" or "dead"
        (a ValueError for a job this queue never accepted)."""
        if self._known(job) in self._running:
            return "running"
        if job in self._jobs:
            return "queued"
        if job in self._ended:
            return self._ended[job]
        raise ValueError(f"job must be one this queue accepted, got {job!r}")

    def submit(self, job, now: float) -> bool:
        """Accept ``job`` (any hashable id, new to this queue) at ``now``, or refuse it (False) when
        ``capacity`` jobs are waiting already."""
        now = self._tick(now)
        if self._known(job) in self._jobs or job in self._ended:
            raise ValueError(f"job {job!r} is already in the queue: give each job its own id (an "
                             f"idempotency key says which submissions are the same job)")
        if self.capacity is not None and self.queued >= self.capacity:
            self.refused += 1
            return False
        self.accepted += 1
        self._jobs[job] = [now, 0]
        self._push(job, now)
        return True

    def _push(self, job, ready_at: float) -> None:
        self._order += 1
        heapq.heappush(self._ready, (ready_at, self._order, job))

    def next_ready(self) -> float:
        """When the next waiting job is ready (``math.inf`` when none waits)."""
        return self._ready[0][0] if self._ready else math.inf

    def take(self, now: float):
        """The oldest ready job, now running (None when no job is ready at ``now``)."""
        now = self._tick(now)
        if not self._ready or self._ready[0][0] > now:
            return None
        job = heapq.heappop(self._ready)[2]
        self._running.add(job)
        self._jobs[job][1] += 1
        self.attempts += 1
        return job

    def _finish(self, job, what: str) -> list:
        if self._known(job) not in self._running:
            raise ValueError(f"job {job!r} is not running: {what} only a job that take() returned, once")
        self._running.discard(job)
        return self._jobs[job]

    def complete(self, job, now: float) -> float:
        """``job`` is done at ``now`` (the user is notified): the seconds since it was accepted."""
        now = self._tick(now)
        accepted_at, _ = self._finish(job, "complete")
        del self._jobs[job]
        self._ended[job] = "done"
        self.completed += 1
        self.done.append((job, accepted_at, now))
        return now - accepted_at

    def retry_later(self, job, now: float, rng) -> float | None:
        """``job``'s attempt failed at ``now``: when it is ready again (its backoff drawn with ``rng``),
        or None when it has used ``max_attempts`` and is parked as dead."""
        now = self._tick(now)
        if not callable(getattr(rng, "random", None)):
            raise validate.WrongType(f"rng must be a random.Random (the backoff's jitter), got {validate.show(rng)}")
        entry = self._finish(job, "retry_later")
        if self.max_attempts is not None and entry[1] >= self.max_attempts:
            del self._jobs[job]
            self._ended[job] = "dead"
            self.dead += 1
            self.parked.append((job, entry[0], now))
            return None
        ready_at = now + self.backoff.delay(entry[1], rng)
        self._push(job, ready_at)
        return ready_at

    def __repr__(self) -> str:
        return (f"JobQueue(capacity={self.capacity}, queued={self.queued}, running={self.running}, "
                f"completed={self.completed})")


__all__ = ["JobQueue"]
