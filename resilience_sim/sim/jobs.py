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

    def __init__(self, world, queue: JobQueue, *, target, workers: int = 1, name: str = "jobs"):
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
        self._rng = world.rng(f"jobs/{name}/backoff")
        self._wake = self.env.event()          # fired when a job is submitted
        self._ids = 0
        self._depth_times, self._depth = array("d"), array("I")
        self._requests: dict = {}              # job id -> the Request its worker sends
        world.add_job_queue(self)
        for _ in range(self.workers):
            self.env.process(self._worker())

    def submit(self, req: Request):
        """Accept ``req`` as a job (a simpy generator, answering at once): its id; a ServiceError
        "overload" when the queue is full."""
        env = self.env
        self._ids += 1
        job = self._ids
        if not self.queue.submit(job, env.now):
            raise ServiceError(self.name, "overload")
        self._requests[job] = Request._unchecked(env.now, req.route, req.key)
        self._note_depth()
        req.degraded = DEFERRED_REASON
        req.answered_by = self.name
        if not self._wake.triggered:
            self._wake.succeed()
        return job
        yield                                  # a generator, for ``yield from``

    def _worker(self):
        env, queue = self.env, self.queue
        while True:
            job = queue.take(env.now)
            if job is None:
                wait = queue.next_ready() - env.now
                if self._wake.triggered:
                    self._wake = env.event()
                yield env.any_of([self._wake, env.timeout(wait)]) if wait < float("inf") else self._wake
                continue
            req = self._requests[job]
            try:
                yield from self.target.call(req)
            except ServiceError:
                if queue.retry_later(job, env.now, self._rng) is None:     # out of attempts: parked
                    del self._requests[job]
                    self._note_depth()
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
                        np.array(self._depth_times), np.array(self._depth, dtype=np.int64))

    def __repr__(self) -> str:
        return f"DeferredJobs({self.name!r}, workers={self.workers}, {self.queue!r})"


__all__ = ["DeferredJobs", "DEFERRED_REASON"]
