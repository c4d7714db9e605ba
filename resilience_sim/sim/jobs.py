"""Deferred answers in simulated time: a :class:`~resilience_sim.policies.JobQueue` with workers.

In the front service's handler::

    reports = DeferredJobs(world, JobQueue(), target=report_builder, workers=2)

    def export(svc, req):
        return (yield from reports.submit(req))    # "202 Accepted": degraded with reason "deferred"

The queue is durable (a crash of the front service or of the target loses no job); ``workers``
processes take ready jobs oldest first and call ``target`` (a service or a client) for each, as a
request of the job's own that keeps the user's route and key; a failed attempt goes back to the
queue after the queue's backoff, and a done job notifies its user (``results.jobs(name)``).
"""
from __future__ import annotations

from array import array

import numpy as np

from ..core import validate
from ..metrics import JobStats
from ..policies import JobQueue, claim
from .service import Request, ServiceError
from .world import check_world

#: The degradation reason of an accepted, deferred request.
DEFERRED_REASON = "deferred"
#: The most workers one queue may have.
MAX_WORKERS = 10_000


class DeferredJobs:
    """Jobs of ``queue`` worked on by ``workers`` processes calling ``target``."""

    def __init__(self, world, queue: JobQueue, *, target, workers: int = 1, name: str = "jobs",
                 idempotency_key=None):
        self.world = check_world(world)
        if not isinstance(queue, JobQueue):
            raise validate.WrongType(f"queue must be a JobQueue (JobQueue(capacity=1000)), got {validate.show(queue)}")
        if not callable(getattr(target, "call", None)):
            raise validate.WrongType(f"target must be a service or a client, got {validate.show(target)}")
        if hasattr(target, "world"):
            world.owns("target", target)
        self.name = validate.text("name", name, empty=False)
        self.workers = validate.integer("workers", workers, low=1, high=MAX_WORKERS)
        claim(world, queue=queue, backoff=queue.backoff)
        self.env, self.queue, self.target = world.env, queue, target
        self.idempotency_key = None if idempotency_key is None else validate.function("idempotency_key", idempotency_key)
        self._rng = world.rng(f"jobs/{name}/backoff")
        self._idle: list = []                  # the wake-up events of idle workers: one is woken per ready job
        self._ids = 0
        self._by_key: dict = {}                # idempotency key -> job id
        self._depth_times, self._depth = array("d"), array("I")
        self._requests: dict = {}              # job id -> the Request its worker sends
        world.add_job_queue(self)
        for _ in range(self.workers):
            self.env.process(self._worker())

    def submit(self, req: Request):
        """Accept ``req`` as a job (a simpy generator, answering at once): its id ("202 Accepted",
        the id being the status URL); a ServiceError "overload" when the queue is full. With an
        ``idempotency_key(req)``, a request whose key was seen before gets the existing job's id."""
        env = self.env
        key = None if self.idempotency_key is None else self.idempotency_key(req)
        if key is not None and key in self._by_key:
            job = self._by_key[key]
        else:
            self._ids += 1
            job = self._ids
            if not self.queue.submit(job, env.now):
                raise ServiceError(self.name, "overload")
            if key is not None:
                self._by_key[key] = job
            self._requests[job] = Request._unchecked(env.now, req.route, req.key)
            self._note_depth()
            self._wake_one()
        req.degraded = DEFERRED_REASON
        req.answered_by = self.name
        return job
        yield                                  # a generator, for ``yield from``

    def status(self, job) -> str:
        """What the job's status URL answers: "queued", "running", "done" or "dead"."""
        return self.queue.status(job)

    def _wake_one(self, _event=None) -> None:
        if self._idle:
            self._idle.pop().succeed()

    def _worker(self):
        env, queue = self.env, self.queue
        while True:
            job = queue.take(env.now)
            if job is None:                    # idle until a job is submitted or a retried one is due
                wake = env.event()
                self._idle.append(wake)
                yield wake
                continue
            req = self._requests[job]
            try:
                yield from self.target.call(req)
            except ServiceError:
                ready_at = queue.retry_later(job, env.now, self._rng)
                if ready_at is None:           # out of attempts: parked
                    del self._requests[job]
                    self._note_depth()
                else:                          # due later: an alarm wakes a worker then
                    env.timeout(ready_at - env.now).callbacks.append(self._wake_one)
                    yield env.timeout(0)       # one event per failed try, so a zero backoff cannot spin unseen
            else:
                queue.complete(job, env.now)
                del self._requests[job]
                self._note_depth()

    def _note_depth(self) -> None:
        self._depth_times.append(self.env.now)
        self._depth.append(self.queue.queued + self.queue.running)

    def stats(self) -> JobStats:
        q = self.queue
        done = q.done
        return JobStats(self.name, q.accepted, q.refused, q.completed, q.queued, q.running, q.dead, q.attempts,
                        np.array([d[1] for d in done]), np.array([d[2] for d in done]),
                        np.array(self._depth_times), np.array(self._depth, dtype=np.int64),
                        np.array([d[1] for d in q.parked]), np.array([d[2] for d in q.parked]))

    def __repr__(self) -> str:
        return f"DeferredJobs({self.name!r}, workers={self.workers}, {self.queue!r})"


__all__ = ["DeferredJobs", "DEFERRED_REASON"]
