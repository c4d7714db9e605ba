"""12 Deferred answers: "we will email you the report when it is ready" (Asynchronous Request-Reply).

The story is a report **export** endpoint. Building a report is the job of a ``builder`` service
(``SLOTS`` reports at once, ``BUILD`` seconds each on average), which has a long outage.

* Without deferral, ``export`` asks the builder while the user waits: every request of the outage
  fails, and the others wait for the whole build.
* With deferral, ``export`` answers at once, "202 Accepted" (a DEGRADED answer with reason
  "deferred"): the request becomes a job in a durable :class:`~resilience_sim.policies.JobQueue`;
  ``WORKERS`` workers (:class:`~resilience_sim.sim.jobs.DeferredJobs`) build the reports, retrying a
  failed job after the queue's backoff, and a done job notifies its user (the email).

:func:`export_run` builds and runs either one; :class:`ExportRun` reads what the user got, the queue's
growth and drain, and the time to notification. :func:`drain_time` is the queueing estimate of the
drain, backlog / (service rate - arrival rate). The limits: a bounded queue (``capacity``) refuses with
"overload"; ``max_attempts`` parks jobs as dead for an operator (:func:`outage_survived`); a retried
POST with an ``Idempotency-Key`` returns the existing job (``idempotent=True``, :func:`submit_once`).
Durability: ``front_crash`` crashes export itself; ``durable=False`` keeps the jobs in export's own
memory (:class:`MemoryJobs`), which a crash loses, where the durable queue keeps every one.
Times are simulated seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core import validate
from ..core.distributions import Exponential, Fixed
from ..metrics import JobStats, Results
from ..metrics.windows import quality_series
from ..policies import Backoff, ConstantBackoff, ExponentialBackoff, JobQueue
from ..sim.crashes import Restartable
from ..sim.jobs import DEFERRED_REASON, DeferredJobs
from ..sim.faults import Outage
from ..sim.service import Service, ServiceError
from ..sim.workload import OpenLoop
from ..sim.world import World
from ..views import plots
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import RunMemo, Table

#: Export requests a second (Poisson).
RATE = 0.25
#: Mean seconds to build one report (exponential), and reports the builder works on at once.
BUILD = 4.0
SLOTS = 4
#: Workers taking jobs from the queue (each builds one report at a time).
WORKERS = 2
#: The builder's outage (seconds from the start): ten minutes.
OUTAGE = (120.0, 720.0)
#: Export requests arrive for this long; the run goes on ``TAIL`` seconds more, so the last jobs end.
DURATION = 1800.0
TAIL = 60.0
#: export's own work per request (validate, store the job, answer): 10 ms.
FRONT_WORK = 0.010
#: The queue's default backoff between attempts of a failed job: 2, 4, 8... seconds, capped at 60.
BACKOFF_BASE, BACKOFF_CAP = 1.0, 60.0
#: The most attempts :func:`attempts_while_down` counts for one job.
MAX_COUNTED_ATTEMPTS = 1_000_000
#: The job queue's name in the results (``results.jobs(JOBS)``).
JOBS = "reports"
#: A job queue counts as drained when no more than this many jobs are left (being built or waiting).
DRAINED = 1
#: What a user polling the status URL is answered, per job state (see the notebook's section 1). A
#: failed job: Microsoft's Asynchronous Request-Reply pattern persists the error at the status URL and
#: answers it with a 4xx code.
HTTP_STATUS = {
    "queued": "200 OK {status: queued} + Retry-After",
    "running": "200 OK {status: running} + Retry-After",
    "done": "303 See Other, Location: the report",
    "dead": "4xx with the error, persisted at the status URL (an operator replays the job)",
}
#: Section 2's crash of export itself: down from 400 s (mid-outage of the builder) to 430 s.
FRONT_CRASH = (400.0, 430.0)


def story_backoff() -> ExponentialBackoff:
    """The queue's backoff of the story (a fresh one: a policy belongs to one run)."""
    return ExponentialBackoff(BACKOFF_BASE, cap=BACKOFF_CAP)


def service_rate(workers: int = WORKERS, *, slots: int = SLOTS, build: float = BUILD) -> float:
    """Reports a second the workers can finish: each worker builds one at a time, and the builder
    builds at most ``slots`` at once, so min(workers, slots) / build."""
    workers = validate.integer("workers", workers, low=1)
    slots = validate.integer("slots", slots, low=1)
    return min(workers, slots) / validate.positive("build", build)


def drain_time(backlog: float, service: float, arrivals: float) -> float:
    """Seconds to clear ``backlog`` jobs at ``service`` jobs a second while new ones arrive at
    ``arrivals`` a second: backlog / (service - arrivals); infinite when service <= arrivals (the
    backlog never clears: an insurmountable queue)."""
    backlog = validate.non_negative("backlog", backlog)
    service = validate.positive("service", service)
    arrivals = validate.non_negative("arrivals", arrivals)
    if service <= arrivals:
        return math.inf
    return backlog / (service - arrivals)


def total_backoff(max_attempts: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Seconds from a job's first attempt to its last (the ``max_attempts``-th) when every attempt
    fails at once: the sum of the backoffs min(cap, base * 2**n) for n = 1 .. max_attempts - 1."""
    max_attempts = validate.integer("max_attempts", max_attempts, low=1)
    return sum(min(cap, base * 2 ** n) for n in range(1, max_attempts))


def outage_survived(max_attempts: int, **kw) -> float:
    """The longest outage a job accepted at its start rides out: its attempts span
    :func:`total_backoff` seconds, so a job accepted more than that before the end is parked dead."""
    return total_backoff(max_attempts, **kw)


def drain_sd(backlog: float, service: float, arrivals: float) -> float:
    """The standard deviation of the drain time around :func:`drain_time`, when builds take exponential
    times and every worker is busy (so reports leave as a Poisson stream at ``service`` a second, as
    from one fast server): ``backlog`` independent M/M/1 busy periods, each of variance
    (1 + rho) / (service**2 (1 - rho)**3) with rho = arrivals / service."""
    mean = drain_time(backlog, service, arrivals)
    if math.isinf(mean):
        return math.inf
    rho = arrivals / service
    return math.sqrt(backlog * (1 + rho) / (service ** 2 * (1 - rho) ** 3))


def attempts_while_down(wait: float, delay) -> int:
    """Failed attempts of a job that meets a dependency down for ``wait`` more seconds, when an
    attempt fails at once: one now, then one after each backoff ``delay(n)`` (n = 1, 2...) that still
    falls inside the ``wait``."""
    wait = validate.non_negative("wait", wait)
    validate.function("delay", delay)
    attempts, clock, n = 1, 0.0, 1
    while True:
        step = delay(n)
        if not step > 0:
            raise ValueError(f"delay must give waits > 0 s (a zero backoff retries forever at one instant), "
                             f"got delay({n}) = {step!r}")
        clock += step
        if clock >= wait:
            return attempts
        attempts, n = attempts + 1, n + 1
        if attempts > MAX_COUNTED_ATTEMPTS:
            raise ValueError(f"delay must give longer waits: over {MAX_COUNTED_ATTEMPTS:,} attempts in {wait:g} s")


# --- jobs that are not durable ----------------------------------------------------------------------
class MemoryJobs:
    """The design that is not durable: export keeps its jobs in its own memory (a :class:`JobQueue`
    object of the process) and builds them with worker tasks of the same process, as
    :class:`~resilience_sim.sim.jobs.DeferredJobs` does with a durable queue. The memory and each task
    are :class:`~resilience_sim.sim.crashes.Restartable`: at each of ``crashes`` the queue and the builds
    in progress are gone (``lost``: their users had a 202 and will never get the report); after
    ``restart_after`` seconds export starts again with an empty memory."""

    def __init__(self, world, *, target, workers: int, backoff, capacity=None, max_attempts=None,
                 crashes=(), restart_after: float = 1.0):
        self.env, self.target = world.env, target
        self._queue_args = dict(capacity=capacity, max_attempts=max_attempts)
        self._backoff = validate.function("backoff", backoff)     # a fresh backoff for each life
        self._rng = world.rng("jobs/memory/backoff")
        self.queue: JobQueue | None = None
        self.accepted = self.lost = 0
        self.done: list = []                  # (job, accepted_at, notified_at), over every life
        self._ids, self._requests, self._idle = 0, {}, []
        # the memory first: at each (re)start it is ready before the tasks that read it
        self.life = Restartable(world, "export memory", self._memory, crashes=crashes, restart_after=restart_after)
        self.tasks = [Restartable(world, f"export worker {i + 1}", self._worker, crashes=crashes,
                                  restart_after=restart_after)
                      for i in range(validate.integer("workers", workers, low=1, high=1000))]

    def submit(self, req):
        """Like DeferredJobs.submit: the job's id at once ("202 Accepted"), or ServiceError "overload"."""
        self._ids += 1
        job = self._ids
        if self.queue is None or not self.queue.submit(job, self.env.now):
            raise ServiceError("export", "overload")
        self.accepted += 1
        self._requests[job] = type(req)._unchecked(self.env.now, req.route, req.key)
        self._wake_one()
        req.degraded, req.answered_by = DEFERRED_REASON, JOBS
        return job
        yield                                  # a generator, for ``yield from``

    def _memory(self):
        """Export's memory from a fresh start: an empty queue. What the last life held is lost."""
        if self.queue is not None:
            self.lost += self.queue.queued + self.queue.running
        self.queue, self._idle = JobQueue(backoff=self._backoff(), **self._queue_args), []
        yield self.env.event()                 # held until the next crash

    def _wake_one(self, _event=None) -> None:
        if self._idle:
            self._idle.pop().succeed()

    def _worker(self):
        """One task of export: take the oldest ready job, build it, retry it after its backoff."""
        env = self.env
        while True:
            queue = self.queue
            job = queue.take(env.now)
            if job is None:                    # idle until a job is submitted or a retried one is due
                wake = env.event()
                self._idle.append(wake)
                yield wake
                continue
            try:
                yield from self.target.call(self._requests[job])
            except ServiceError:
                ready_at = queue.retry_later(job, env.now, self._rng)
                if ready_at is not None:
                    env.timeout(ready_at - env.now).callbacks.append(self._wake_one)
                yield env.timeout(0)
            else:
                queue.complete(job, env.now)
                self.done.append(queue.done[-1])

    @property
    def waiting(self) -> int:
        """Jobs in export's memory now, queued or being built."""
        return 0 if self.queue is None else self.queue.queued + self.queue.running


@dataclass(frozen=True)
class Promises:
    """What became of the 202s of a run: jobs ``accepted``, reports ``emailed``, jobs still
    ``waiting`` at the end (queued, being built, or parked dead), and ``lost``: accepted, yet nowhere."""
    accepted: int
    emailed: int
    waiting: int
    lost: int


# --- one run ---------------------------------------------------------------------------------------
@dataclass
class ExportRun:
    """One run of the export service: its results (route "export", and "retry" for retried POSTs),
    with or without deferral, and the job queue when there is one."""
    results: Results = field(repr=False)
    defer: bool
    outage: tuple
    duration: float
    rate: float
    workers: int
    queue: JobQueue | None = field(default=None, repr=False)
    job_ids: dict = field(default_factory=dict, repr=False)   # idempotency key -> job id
    memory: MemoryJobs | None = field(default=None, repr=False)   # durable=False: the jobs in export's memory
    front_crash: tuple | None = None

    @property
    def jobs(self) -> JobStats:
        """The durable job queue's stats (a ValueError without deferral, or for jobs kept in memory)."""
        if not self.defer:
            raise ValueError("defer must be True for a run to have a job queue; this run answered synchronously")
        if self.memory is not None:
            raise ValueError("durable must be True for a run to have a job queue's stats; this run kept its jobs "
                             "in export's memory: read run.promises()")
        return self.results.jobs(JOBS)

    def promises(self) -> Promises:
        """What became of the run's 202s: accepted, emailed, still waiting at the end, lost."""
        if self.memory is not None:
            m = self.memory
            return Promises(m.accepted, len(m.done), m.waiting, m.lost)
        j = self.jobs
        return Promises(j.accepted, j.completed, j.queued + j.running + j.dead, j.lost)

    @property
    def outage_length(self) -> float:
        return self.outage[1] - self.outage[0]

    def availability(self, window=None) -> float:
        """Share of the requests (that started in ``window``, default all) answered at once: with a
        report (without deferral) or with "202 Accepted" (with deferral)."""
        return self._seen(window).request_availability()

    def failed(self, window=None) -> int:
        """Requests (that started in ``window``) that got an error instead of an answer."""
        seen = self._seen(window)
        return len(seen) - int(round(seen.request_availability() * len(seen)))

    def _seen(self, window):
        seen = self.results.only("export")
        if window is None:
            return seen
        try:
            return seen.between(*window)
        except ValueError:
            raise ValueError(f"window must lie inside the run [0, {seen.until:g}] s, got {window!r}") from None

    def depth_at(self, t: float) -> int:
        """Jobs not yet done (waiting, backing off or being built) at time ``t``."""
        j = self.jobs
        i = int(np.searchsorted(j.depth_times, t, side="right")) - 1
        return int(j.depth[i]) if i >= 0 else 0

    def peak(self) -> tuple[float, int]:
        """(time, depth) of the deepest queue of the run."""
        j = self.jobs
        i = int(np.argmax(j.depth))
        return float(j.depth_times[i]), int(j.depth[i])

    def drained_at(self) -> float:
        """When the queue was first back to at most :data:`DRAINED` jobs after the outage (NaN if never)."""
        j = self.jobs
        after = (j.depth_times >= self.outage[1]) & (j.depth <= DRAINED)
        return float(j.depth_times[after][0]) if after.any() else math.nan

    def drain(self) -> float:
        """Seconds from the end of the outage until the queue was drained (NaN if it never was)."""
        return self.drained_at() - self.outage[1]

    def predicted_drain(self) -> float:
        """:func:`drain_time` for the backlog at the end of the outage and this run's rates."""
        return drain_time(self.depth_at(self.outage[1]), service_rate(self.workers), self.rate)

    def notify_percentiles(self, ps=(50, 99, 100), window=None) -> dict:
        """Percentiles of the seconds from "202 Accepted" to the email, for jobs accepted in
        ``window`` (default all) that were done by the end of the run."""
        j = self.jobs
        waits = j.time_to_notify
        if window is not None:
            lo, hi = window
            waits = waits[(j.accepted_at >= lo) & (j.accepted_at < hi)]
        if not len(waits):
            raise ValueError(f"window must hold some completed jobs, got {window!r}")
        return dict(zip(ps, (float(v) for v in np.percentile(waits, ps))))

    def builder_calls(self) -> int:
        """Calls that reached the builder: attempts of jobs, or the users' synchronous requests."""
        return self.results.services["builder"].calls


def export_run(seed: int, *, defer: bool = True, outage=OUTAGE, duration: float = DURATION,
               rate: float = RATE, workers: int = WORKERS, slots: int = SLOTS, build: float = BUILD,
               capacity: int | None = None, backoff: Backoff | None = None, max_attempts: int | None = None,
               retry_rate: float = 0.0, idempotent: bool = False, tail: float = TAIL,
               front_crash=None, durable: bool = True) -> ExportRun:
    """The export service for ``duration`` seconds of ``rate`` requests a second, the builder down
    during ``outage``; run ``tail`` seconds more so the last jobs can end.

    ``defer=False``: export asks the builder while the user waits. ``defer=True``: it answers "202
    Accepted" and a :class:`JobQueue` (``capacity``, ``backoff`` (default :func:`story_backoff`),
    ``max_attempts``) with ``workers`` workers builds the reports. ``retry_rate``: POSTs a second
    that are a user's retry of a POST made a few seconds earlier (route "retry", same key);
    ``idempotent=True`` answers those with the existing job (the ``Idempotency-Key``) instead of a new one.
    ``front_crash``: a (start, end) window in which export itself is down (it crashes at the start and
    restarts at the end); ``durable=False`` keeps the jobs in export's memory (:class:`MemoryJobs`),
    which the crash loses, instead of the durable queue, which keeps them.
    """
    validate.boolean("defer", defer)
    validate.boolean("idempotent", idempotent)
    validate.boolean("durable", durable)
    if not durable and not defer:
        raise ValueError("durable=False needs defer=True: without deferral there are no jobs to keep")
    crash = None if front_crash is None else validate.windows("front_crash", [front_crash])[0]
    lo, hi = validate.windows("outage", [outage])[0]
    duration = validate.positive("duration", duration)
    rate = validate.positive("rate", rate)
    workers = validate.integer("workers", workers, low=1, high=1000)
    retry_rate = validate.non_negative("retry_rate", retry_rate)
    tail = validate.non_negative("tail", tail)
    # a zero backoff against a builder that fails at once retries forever at one instant: the simulator
    # would stop it, but a refusal here says why and what to do
    if isinstance(backoff, ConstantBackoff) and backoff.base == 0:
        raise ValueError("backoff must wait more than 0 s between attempts (ConstantBackoff(0) retries a "
                         "down builder forever at one instant); try ConstantBackoff(1.0)")
    world = World(seed)
    builder = Service(world, "builder", capacity=slots, latency=Exponential(build))
    Outage(builder, [(lo, hi)])
    queue, ids, memory = None, {}, None
    if defer and durable:
        queue = JobQueue(capacity=capacity, backoff=story_backoff() if backoff is None else backoff,
                         max_attempts=max_attempts)
        jobs = DeferredJobs(world, queue, target=builder, workers=workers, name=JOBS,   # a retried POST with
                            idempotency_key=(lambda req: req.key) if idempotent else None)  # the same key: its job
    elif defer:
        if backoff is not None or idempotent:
            raise ValueError("durable=False keeps the story's backoff and no idempotency keys: give backoff=None "
                             "and idempotent=False")
        jobs = memory = MemoryJobs(world, target=builder, workers=workers, backoff=story_backoff, capacity=capacity,
                                   max_attempts=max_attempts, crashes=[crash[0]] if crash else [],
                                   restart_after=crash[1] - crash[0] if crash else 1.0)
    if defer:
        def handler(svc, req):                     # validate, store the job, "202 Accepted"
            job = yield from jobs.submit(req)
            ids[req.key] = job
            return job
    else:
        def handler(svc, req):                     # the user waits for the whole build
            return (yield from svc.ask("builder", req))
    front = Service(world, "export", capacity=10_000, latency=Fixed(FRONT_WORK), dependencies=[builder],
                    handler=handler)
    if crash:
        Outage(front, [crash])                     # export down: new POSTs fail "down" until it restarts
    issued = [0]

    def new_key(rng):
        issued[0] += 1
        return issued[0]

    OpenLoop(world, front, rate, duration=duration, name="export", key=new_key)
    if retry_rate > 0:   # a user whose "202" never arrived (or who clicked twice) sends the POST again
        OpenLoop(world, front, retry_rate, duration=duration, name="retry",
                 key=lambda rng: max(1, issued[0] - rng.randrange(3)))
    results = world.run(until=duration + tail)
    return ExportRun(results, defer, (lo, hi), duration, rate, workers, queue, ids, memory, crash)


def submit_once(queue: JobQueue, seen: dict, key, now: float):
    """The POST handler's core with an ``Idempotency-Key`` (the job id): ``(job, True)`` for a new job,
    ``(job, False)`` for a key a first POST already turned into a job (answer with its status URL), and
    ``(None, False)`` when the queue is full (answer 503 with Retry-After). ``seen`` maps keys to job ids."""
    if not isinstance(queue, JobQueue):
        raise validate.WrongType(f"queue must be a JobQueue, got {validate.show(queue)}")
    if not isinstance(seen, dict):
        raise validate.WrongType(f"seen must be a dict of keys to job ids ({{}} to start), got {validate.show(seen)}")
    if key in seen:
        return seen[key], False
    if not queue.submit(key, now):
        return None, False
    seen[key] = key
    return key, True


def workers_table(seed: int, workers=(1, 2, 4, 8), **kw) -> Table:
    """The story's run with each number of ``workers``: service rate, predicted drain (with its
    standard deviation) and measured drain, and the jobs still waiting at the end. ``data`` maps
    workers to (service rate, predicted, measured, left, sd); a drain that never came is NaN."""
    rows, data = [], {}
    for w in workers:
        run = export_run(seed, workers=w, **kw)
        mu, backlog = service_rate(w), run.depth_at(run.outage[1])
        predicted, sd = drain_time(backlog, mu, run.rate), drain_sd(backlog, mu, run.rate)
        left = run.jobs.queued + run.jobs.running
        data[w] = (mu, predicted, run.drain(), left, sd)
        rows.append([w, f"{mu:g}/s", "never" if math.isinf(predicted) else f"{predicted:.0f} ± {sd:.0f} s",
                     "not by the end" if math.isnan(run.drain()) else f"{run.drain():.0f} s", left])
    return Table(["workers", "service rate μ", "predicted drain", "measured drain", "jobs left at the end"],
                 rows, data)


# --- pictures --------------------------------------------------------------------------------------
WITHOUT_COLOR, WITH_COLOR = "tab:red", "tab:blue"


def shade_outage(ax, run: ExportRun, *, label: str | None = "builder down") -> None:
    ax.axvspan(*run.outage, color="tab:red", alpha=0.12, lw=0, label=label)


def draw_users(ax, runs, *, bin_width: float = 30.0, legend: bool = True) -> None:
    """% of export requests answered at once per ``bin_width`` seconds, for each run of ``runs``
    (without deferral: with the report; with: "202 Accepted"), the outage shaded."""
    shade_outage(ax, runs[0])
    for run in sorted(runs, key=lambda r: not r.defer):      # "without" on top: its dips must show
        q = quality_series(run.results.only("export").between(0.0, run.duration), bin_width)
        color, what = (WITH_COLOR, "with deferral: 202 Accepted") if run.defer else \
            (WITHOUT_COLOR, "without: report at once")
        ax.step(q["t"], 100 * q["answered"], where="post", color=color, lw=2, label=what,
                ls="-" if run.defer else "--")
    ax.set_xlim(0, runs[0].duration)
    ax.set_ylim(-3, 128 if legend else 105)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("requests answered (%)")
    if legend:                                  # in the band above 100%: it covers no data
        ax.legend(loc="upper center", ncol=3, fontsize=8, frameon=False, borderaxespad=0.2)


def draw_depth(ax, run: ExportRun, *, predicted: bool = True, label: str | None = None, color=WITH_COLOR) -> None:
    """Jobs not yet done over time, the outage shaded; ``predicted``: the drain :func:`drain_time` predicts."""
    j = run.jobs
    shade_outage(ax, run)
    ax.step(j.depth_times, j.depth, where="post", color=color, lw=1.5, label=label or "jobs not yet done")
    if predicted and math.isfinite(run.predicted_drain()):
        ax.axvline(run.outage[1] + run.predicted_drain(), color="k", ls=":", lw=1.2,
                   label="drained, predicted: B / (μ − λ)")
    ax.set_xlim(0, run.results.until)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("jobs in the queue")


def draw_notify(ax, run: ExportRun, *, bins: int = 40) -> None:
    """Histogram of the time to notification (log scale), the outage's length dashed. Two humps: jobs
    accepted while the builder was up wait a build (seconds), those of the outage its end and the
    backlog ahead (minutes)."""
    waits = run.jobs.time_to_notify
    top = max(waits.max(), run.outage_length) * 1.05
    edges = np.logspace(math.log10(max(0.1, waits.min())), math.log10(top), bins)
    ax.hist(waits, bins=edges, color=WITH_COLOR, alpha=0.8)
    ax.set_xscale("log")
    ax.axvline(run.outage_length, color="tab:red", ls="--", lw=1.2, label="the outage's length")
    ax.axvline(waits.max(), color="k", ls=":", lw=1.2, label="the longest wait")
    ax.set_xlabel("seconds from 202 Accepted to the email")
    ax.set_ylabel("jobs")


def draw_notify_share(ax, run: ExportRun, *, top: float | None = None, ylabel: bool = True) -> None:
    """The share of jobs emailed within t seconds of "202 Accepted" (an empirical CDF, one line:
    cheap to redraw), the outage's length dashed."""
    waits = np.sort(run.jobs.time_to_notify)
    share = 100 * np.arange(1, len(waits) + 1) / run.jobs.accepted      # jobs still waiting never reach 100%
    top = max(waits[-1], run.outage_length) * 1.05 if top is None else top
    ax.step(np.r_[0.0, waits, top], np.r_[0.0, share, share[-1]], where="post", color=WITH_COLOR, lw=2)
    ax.axvline(run.outage_length, color="tab:red", ls="--", lw=1.2)
    ax.set_xlim(0, top)
    ax.set_ylim(-3, 105)
    ax.set_xlabel("seconds from 202 Accepted to the email")
    if ylabel:
        ax.set_ylabel("jobs emailed (%)")


# --- the dashboard -----------------------------------------------------------------------------------
#: The dashboard's run: arrivals for DASH_DURATION seconds, the builder down from DASH_START for the
#: slider's length; both runs (without and with deferral) go on TAIL seconds after the arrivals end.
DASH_START, DASH_DURATION, DASH_SEED = 60.0, 1500.0, 12
#: The longest outage the dashboard offers (seconds).
DASH_OUTAGE_MAX = 900.0
#: Runs kept by parameters (the three panels share one pair of runs).
_DASH_RUNS = RunMemo(keep=32)


def _dash_pair(outage_s: float, workers: int, rate: float):
    outage = (DASH_START, DASH_START + outage_s)
    return _DASH_RUNS.get((float(outage_s), int(workers), float(rate)), lambda: tuple(
        export_run(DASH_SEED, defer=d, outage=outage, duration=DASH_DURATION, rate=rate, workers=int(workers),
                   tail=TAIL) for d in (False, True)))


def _dash_compute(outage_s, workers, rate, *, panel: str):
    return panel, _dash_pair(outage_s, workers, rate)


def nice_ticks(top: float, count: int = 4) -> np.ndarray:
    """About ``count`` round ticks from 0 to ``top`` (steps of 1, 2 or 5 times a power of ten)."""
    raw = validate.positive("top", top) / count
    base = 10 ** math.floor(math.log10(raw))
    step = min((m * base for m in (1, 2, 5, 10)), key=lambda step: abs(top / step - count))
    return np.arange(0, top + step / 2, step)


def dash_window(run: ExportRun) -> float:
    """Where the dashboard's time axis ends: a little after the queue drained (the whole run when it
    never did), so that a short outage is not squeezed into the first tenth of the picture."""
    until = run.results.until
    drained = run.drained_at()
    return until if math.isnan(drained) else min(until, max(drained, run.outage[1]) * 1.2 + 60.0)


def _dash_draw(ax, result) -> None:
    # text is most of a redraw: fixed round ticks, one y axis, no legend (the title names the lines)
    panel, (without, with_) = result
    if panel == "notify":
        if with_.jobs.completed:
            top = max(with_.jobs.time_to_notify.max(), with_.outage_length) * 1.1
            draw_notify_share(ax, with_, top=top, ylabel=False)
            plots.fixed_ticks(ax.xaxis, nice_ticks(top))
        ax.set_xlabel("t: seconds from 202 to the email")
        ax.set_ylabel("jobs emailed within t (%)")
        plots.fixed_ticks(ax.yaxis, [0, 50, 100])
        return
    end = dash_window(with_)
    shade_outage(ax, with_, label=None)
    if panel == "users":
        for run, color, ls in ((with_, WITH_COLOR, "-"), (without, WITHOUT_COLOR, "--")):
            q = quality_series(run.results.only("export").between(0.0, run.duration), 30.0)
            ax.step(q["t"], 100 * q["answered"], where="post", color=color, lw=2, ls=ls)
        ax.set_ylim(-3, 105)
        plots.fixed_ticks(ax.yaxis, [0, 50, 100])
        ax.set_ylabel("answered at once (%)")
    else:
        j = with_.jobs
        ax.step(j.depth_times, j.depth, where="post", color=WITH_COLOR, lw=1.5)
        predicted = with_.predicted_drain()
        if with_.outage[1] + predicted < end:
            ax.axvline(with_.outage[1] + predicted, color="k", ls=":", lw=1.2)
        top = max(10, int(j.depth.max() * 1.1))
        ax.set_ylim(0, top)
        plots.fixed_ticks(ax.yaxis, nice_ticks(top, 3))
        ax.set_ylabel("jobs not yet done")
    ax.set_xlim(0, end)
    plots.fixed_ticks(ax.xaxis, nice_ticks(end))
    ax.set_xlabel("time (s)")


def _dash_summary(result) -> str:
    panel, (without, with_) = result
    if panel == "users":
        return f"answered at once: without {without.availability():.0%}, with {with_.availability():.0%}"
    j = with_.jobs
    if panel == "queue":
        left = j.queued + j.running
        drain = with_.drain()
        return (f"drained {drain:.0f} s after the outage" if math.isfinite(drain)
                else f"never drained: {left} jobs still waiting at the end")
    if not j.completed:
        return "no job done yet"
    p = with_.notify_percentiles((50, 100))
    return f"p50 {p[50]:.0f} s, max {p[100]:.0f} s; lost {j.lost}"


@dashboard("12_deferred/outage")
def outage_dashboard() -> Dashboard:
    """Outage length, workers and arrival rate; what users got without / with deferral, the queue,
    and the time to notification."""
    return Dashboard(
        _dash_compute, _dash_draw,
        [Slider("outage_s", "builder down for", "s", 60, DASH_OUTAGE_MAX, 600, step=30),
         Slider("workers", "workers", "", 1, 8, WORKERS, integer=True),
         Slider("rate", "export requests", "per s", 0.05, 0.5, RATE, step=0.025)],
        variants={"what users got at once, per 30 s": {"panel": "users"},
                  "the queue (with deferral)": {"panel": "queue"},
                  "time to the email (with deferral)": {"panel": "notify"}},
        summary=_dash_summary, figsize=(11.0, 3.4), dpi=72, sharey=False,
        title=f"Requests arrive for {DASH_DURATION:,.0f} s and both runs go on {TAIL:g} s after. The report builder "
              f"({SLOTS} builds at once, {BUILD:g} s each) is down from {DASH_START:g} s (shaded) for the time you set. "
              "Left: answered at once, without deferral (red dashed) and with it (blue, 202 Accepted). Middle: jobs "
              "not yet done; dotted: the drain B / (μ − λ) predicts. Right: jobs emailed within t s; dashed: the "
              "outage's length. The time axes end a little after the queue drained.")
