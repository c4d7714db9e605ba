"""Notebook 05, retries, backoff and jitter: scenarios, pictures and dashboards.

* :func:`transient_run`: a flaky dependency (a share ``p`` of calls fail at random) behind a client that
  makes up to ``k`` attempts; theory says availability ``1 - p**k`` and ``(1 - p**k) / (1 - p)`` calls.
* :func:`layers_run`: three services in a line, each calling the next through a retrying client; the
  database at the bottom is down, so every layer retries, and the calls multiply.
* :func:`waves_run`: a fleet of clients that start together while their dependency restarts; a
  :class:`~resilience_sim.sim.probes.CallLog` records when every call reaches the dependency, to count
  arrivals per 100 ms.
* :func:`contention_run` and :func:`contention_sweep`: writers racing for one record in an
  optimistic-concurrency store (:class:`OptimisticStore`), the setting of the simulation in the AWS
  Architecture Blog article "Exponential Backoff And Jitter", for each backoff schedule.
* :func:`budget_run`: a client with or without a retry budget through an outage.
* :func:`idempotency_run`: a payment write retried after timeouts; :class:`Ledger` is the payment
  service, which deduplicates by the request's key (its idempotency key) when asked to.

The theory of independent retries (``1 - p**k`` answered, ``1 + p + ... + p**(k-1)`` attempts) is
:func:`~resilience_sim.core.theory.retry_availability` and :func:`~resilience_sim.core.theory.expected_attempts`.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ..core import theory, validate
from ..core.distributions import Exponential, Fixed, Mixture
from ..core.reasons import Outcome
from ..metrics import Results
from ..policies import (Backoff, ConstantBackoff, DecorrelatedJitter, EqualJitter, ExponentialBackoff,
                        FullJitter, RetryBudget, RetryPolicy)
from ..policies.retry import MAX_ATTEMPTS
from ..sim.client import Client
from ..sim.faults import Outage
from ..sim.probes import CallLog
from ..sim.service import Service, ServiceError
from ..sim.topologies import forward
from ..sim.workload import OpenLoop, serve
from ..sim.world import World
from ..views import plots
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import RunMemo, Table, percent

# --- small targets a Client can call ----------------------------------------------------------------
class OptimisticStore:
    """One record updated with optimistic concurrency control: a write reads the version when it
    arrives, works for ``latency`` seconds, and commits only if nobody committed in between; otherwise
    it fails with reason "conflict" (HTTP 409). With ``capacity=None`` calls have no limit and
    contention is the only failure; with a number, at most that many writes work at once and the
    others wait in line (FIFO) with the version they read, so a failed write costs a slot's time too."""

    def __init__(self, world, name: str = "store", latency: float = 0.01, capacity: int | None = None):
        self.world, self.env, self.name = world, world.env, name
        self.latency = validate.positive("latency", latency)
        self.capacity = None if capacity is None else validate.integer("capacity", capacity, low=1)
        # the slots and their line are a Service's: it does the write's work, this class the versions
        self._slots = None if capacity is None else Service(world, name, capacity=self.capacity,
                                                            latency=Fixed(self.latency))
        self.version = 0
        self.calls = 0
        self.conflicts = 0

    def call(self, req, caller=None):
        self.calls += 1
        seen = self.version
        if self._slots is None:
            yield self.env.timeout(self.latency)
        else:
            yield from self._slots.call(req)
        if self.version != seen:
            self.conflicts += 1
            raise ServiceError(self.name, "conflict")
        self.version += 1
        req.answered_by = self.name
        return self.version


class Ledger:
    """A payment service: every call that completes its work writes one payment, even when the caller
    has stopped waiting (a timeout does not undo the work). With ``dedup=True`` it keeps, per
    idempotency key (the request's ``key``), the payment already written and answers a repeat with
    it instead of writing again (a unique key constraint checked at commit).

    Every attempt of one call carries the same key, which is what a client-generated idempotency key
    achieves over HTTP.
    """

    def __init__(self, world, name: str = "payments", latency=None, *, dedup: bool = False):
        self.world, self.env, self.name = world, world.env, name
        self.latency = Mixture.slow_tail(0.02, 0.5, 0.1) if latency is None else latency
        self.dedup = bool(dedup)
        self.rng = world.rng(f"ledger/{name}/latency")
        self.calls = 0
        self.writes = 0
        self.deduplicated = 0
        self.per_key: Counter = Counter()     # key -> payments written

    def call(self, req, caller=None):
        if req.key is None:
            raise ValueError("req.key must be the payment's idempotency key, got None (give the workload a key)")
        self.calls += 1
        yield self.env.timeout(self.latency.sample(self.rng))
        if self.dedup and self.per_key[req.key]:
            self.deduplicated += 1            # the payment exists: answer with it, write nothing
        else:
            self.writes += 1
            self.per_key[req.key] += 1
        req.answered_by = self.name
        return req.key

    @property
    def duplicates(self) -> int:
        """Payments written beyond the first for the same logical request."""
        return self.writes - len(self.per_key)


def burst(world, target, n: int, spread: float, *, name: str = "fleet") -> None:
    """``n`` user requests that all start within the first ``spread`` seconds (uniformly at random)."""
    n = validate.integer("n", n, low=1)
    spread = validate.non_negative("spread", spread)
    rng = world.rng(f"burst/{name}")
    starts = sorted(rng.uniform(0.0, spread) for _ in range(n))
    env = world.env

    def starter():
        for t in starts:
            if t > env.now:
                yield env.timeout(t - env.now)
            env.process(serve(world, target, name))
    env.process(starter())


# --- 1. retries rescue transient errors -----------------------------------------------------------
def transient_run(error_rate: float = 0.2, max_attempts: int = 3, *, requests: int = 2000,
                  rate: float = 50.0, seed: int = 1) -> Results:
    """``requests`` calls to a service ("pricing") whose calls fail at random with ``error_rate``,
    through a client that makes up to ``max_attempts`` attempts with full-jitter backoff."""
    world = World(seed=seed)
    db = Service(world, "pricing", capacity=100, latency=Exponential(0.01), error_rate=error_rate)
    client = Client(world, db, name="shop->pricing", retry=RetryPolicy(max_attempts, FullJitter(0.01, 1.0)))
    OpenLoop(world, client, rate, requests=requests)
    return world.run(until=requests / rate * 2 + 30)


def transient_table(error_rate: float, runs: dict) -> Table:
    """Measured against theory, one row per ``{max_attempts: results}`` of :func:`transient_run`."""
    rows = [[k, percent(round(theory.retry_availability(error_rate, k), 6)), f"{r.request_availability():.2%}",
             f"{theory.expected_attempts(error_rate, k):.3f}", f"{r.calls_per_request('pricing'):.3f}"]
            for k, r in runs.items()]
    return Table(["attempts (k)", "availability 1 − p^k", "measured", "calls per request (theory)",
                  "measured"], rows)


# --- 2. amplification across layers --------------------------------------------------------------
LAYERS = ("frontend", "backend", "db")


def layers_run(attempts=(3, 3, 3), *, requests: int = 100, rate: float = 10.0, seed: int = 1) -> Results:
    """users -> frontend -> backend -> db, each arrow a client making ``attempts[i]`` attempts (1 = no
    retries); the db is down the whole time, so every request fails after all the retries below it."""
    attempts = [validate.integer("attempts", a, low=1) for a in attempts]
    if len(attempts) != 3:
        raise ValueError(f"attempts must give three numbers (users->frontend, frontend->backend, "
                         f"backend->db), got {attempts!r}")
    world = World(seed=seed)
    db = Service(world, "db", capacity=1000, latency=0.001)
    Outage(db, [(0.0, 1e9)])

    def policy(k):
        return RetryPolicy(k, ConstantBackoff(0.01)) if k > 1 else None

    to_db = Client(world, db, name="backend->db", retry=policy(attempts[2]))
    backend = Service(world, "backend", capacity=1000, latency=0.001, dependencies=[to_db], handler=forward)
    to_backend = Client(world, backend, name="frontend->backend", retry=policy(attempts[1]))
    frontend = Service(world, "frontend", capacity=1000, latency=0.001, dependencies=[to_backend],
                       handler=forward)
    users = Client(world, frontend, name="users->frontend", retry=policy(attempts[0]))
    OpenLoop(world, users, rate, requests=requests)
    return world.run(until=requests / rate * 2 + 60)


# --- 3. synchronized retries after an outage -------------------------------------------------------
CONFIG_CAPACITY, CONFIG_LATENCY, CONFIG_QUEUE = 10, 0.02, 20
BIN = 0.1           # seconds: arrivals are counted per 100 ms


@dataclass
class WavesResult:
    """A fleet starting together against a restarting config service; every call's arrival time."""
    label: str
    clients: int
    outage: float
    results: Results = field(repr=False)
    times: np.ndarray = field(repr=False)
    delay: float = 0.5                    # the first retry's ceiling (s)

    @property
    def calls(self) -> int:
        return len(self.times)

    @property
    def served(self) -> int:
        return int(np.count_nonzero(self.results.outcome == Outcome.OK))

    @property
    def finished(self) -> float:
        """When the last client got its config (inf if some never did)."""
        ok = self.results.outcome == Outcome.OK
        return float(self.results.end[ok].max()) if ok.all() else math.inf

    def per_bin(self, until: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(bin starts, calls in each 100 ms bin)."""
        top = self.times.max() if until is None else until
        edges = np.arange(0.0, top + BIN + 1e-9, BIN)
        counts, _ = np.histogram(self.times, bins=edges)
        return edges[:-1], counts

    def peak_after_outage(self) -> int:
        """The most calls in one 100 ms bin once the service is back up."""
        t, counts = self.per_bin()
        after = counts[t >= self.outage - 1e-9]
        return int(after.max()) if after.size else 0

    @property
    def capacity_per_bin(self) -> float:
        """Calls the config service completes per 100 ms when busy."""
        return CONFIG_CAPACITY / CONFIG_LATENCY * BIN


WAVE_KINDS = ("constant", "exponential", "full jitter")
#: Attempts a restarting app server makes before it gives up (the jitter dashboard says so).
WAVES_ATTEMPTS = 12


def waves_run(kind: str = "constant", *, clients: int = 300, outage: float = 1.5, delay: float = 0.5,
              spread: float = 0.05, max_attempts: int = WAVES_ATTEMPTS, seed: int = 1) -> WavesResult:
    """``clients`` app servers start within ``spread`` seconds, each fetching its config once; the
    config service is down for the first ``outage`` seconds. Retry waits: "constant" (``delay``
    every time), "exponential" (ceilings ``delay``, 2·``delay``, ... capped at 8·``delay``) or
    "full jitter" (a uniform draw below those same ceilings)."""
    validate.choice("kind", kind, WAVE_KINDS)
    base = validate.positive("delay", delay) / 2          # the first retry's ceiling is 2 * base = delay
    # nothing reads the policies' logs of each retry and wait here: kept empty, they leave the garbage
    # collector a fifth of the objects to sweep after a run (most of a big fleet's re-run, else)
    quiet = dict(log_limit=0)
    backoff = {"constant": lambda: ConstantBackoff(delay, **quiet),
               "exponential": lambda: ExponentialBackoff(base, 8 * delay, **quiet),
               "full jitter": lambda: FullJitter(base, 8 * delay, **quiet)}[kind]()
    world = World(seed=seed)
    config = Service(world, "config", capacity=CONFIG_CAPACITY, latency=CONFIG_LATENCY, queue_limit=CONFIG_QUEUE)
    Outage(config, [(0.0, validate.positive("outage", outage))])
    log = CallLog(config)
    client = Client(world, log, name="app->config", retry=RetryPolicy(max_attempts, backoff, **quiet))
    burst(world, client, clients, spread, name="apps")
    results = world.run(until=outage + max_attempts * 8 * delay + 5)
    return WavesResult(kind, clients, outage, results, np.array(log.times), delay)


def draw_waves(ax, res: WavesResult, *, until: float | None = None):
    """Calls reaching the config service per 100 ms bin; the outage shaded, its capacity dashed."""
    t, counts = res.per_bin(until)
    # one step per run of equal bins (the very same outline, a tenth of its corners to draw)
    changes = np.flatnonzero(np.diff(counts)) + 1
    starts = np.concatenate(([0], changes))
    ax.stairs(counts[starts], np.append(t[starts], t[-1] + BIN), fill=True, color="tab:blue",
              label="calls reaching config")
    ax.axvspan(0, res.outage, color="tab:red", alpha=0.15, lw=0, label="config down")
    ax.axhline(res.capacity_per_bin, color="k", ls="--", lw=1, label="what config serves per 100 ms")
    ax.set_xlim(-3 * BIN, t[-1] + BIN)                # from just before 0: the first wave clear of the y axis
    spec = ax.get_subplotspec()
    if spec.is_last_row():
        ax.set_xlabel("time (s)")
    if spec.is_first_col():
        ax.set_ylabel("calls per 100 ms")
    return ax


def waves_summary(res: WavesResult) -> str:
    done = f"all served by {res.finished:.1f} s" if math.isfinite(res.finished) else \
        f"{res.clients - res.served} gave up unserved"
    return f"{res.calls} calls, peak {res.peak_after_outage()} per 100 ms after the outage, {done}"


def shared_until(*runs: WavesResult) -> float:
    """An x range that shows every run to its end: the last call of any of them, plus a bin."""
    return max(float(r.times.max()) if r.calls else r.outage for r in runs) + 2 * BIN


_WAVES_MEMO = RunMemo()


def _waves_compute(clients, outage, delay_ms, kind):
    """The jitter dashboard's run, kept by its settings as plain numbers: the other panel's draw finds
    it there instead of running it again."""
    key = (int(clients), float(outage), float(delay_ms), kind)
    return _WAVES_MEMO.get(key, lambda: waves_run(kind, clients=int(clients), outage=float(outage),
                                                  delay=float(delay_ms) / 1000))


def _waves_draw(ax, res: WavesResult):
    """One panel of the jitter dashboard, on the x range of both panels (the other run is in the memo)."""
    delay_ms = res.delay * 1000
    others = [_waves_compute(res.clients, res.outage, delay_ms, kind) for kind in ("exponential", "full jitter")]
    draw_waves(ax, res, until=shared_until(*others))


@dashboard("05_retries/jitter")
def jitter_dashboard() -> Dashboard:
    """A fleet restarting together; exponential backoff without / with full jitter."""
    return Dashboard(
        _waves_compute, _waves_draw,
        [Slider("clients", "app servers starting", "", 50, 500, 300, step=50, integer=True),
         Slider("outage", "config down for", "s", 0.5, 4.0, 1.5, step=0.1),
         Slider("delay_ms", "first retry waits up to", "ms", 100, 1000, 500, step=50)],
        variants={"exponential backoff, no jitter": {"kind": "exponential"},
                  "exponential backoff, full jitter": {"kind": "full jitter"}},
        summary=waves_summary, figsize=(9.0, 3.0),
        title=f"Synchronized retries: calls reaching config per 100 ms (red: down; "
              f"a server tries {WAVES_ATTEMPTS} times)")


# --- 4. the backoff schedules under contention -------------------------------------------------------
SCHEDULES = {
    "constant": lambda base, cap: ConstantBackoff(base),
    "exponential": lambda base, cap: ExponentialBackoff(base, cap),
    "full jitter": lambda base, cap: FullJitter(base, cap),
    "equal jitter": lambda base, cap: EqualJitter(base, cap),
    "decorrelated jitter": lambda base, cap: DecorrelatedJitter(base, cap),
}
#: The schedules that draw random numbers; the others give the same run for every seed.
JITTERED = ("full jitter", "equal jitter", "decorrelated jitter")
CONTENTION_BASE, CONTENTION_CAP, CONTENTION_LATENCY = 0.01, 1.0, 0.01


@dataclass(frozen=True)
class ContentionResult:
    writers: int
    calls: int
    finished: float      # seconds until the last writer committed


def contention_run(schedule, writers: int, *, seed: int = 1, base: float = CONTENTION_BASE,
                   cap: float = CONTENTION_CAP, latency: float = CONTENTION_LATENCY,
                   capacity: int | None = None) -> ContentionResult:
    """``writers`` clients start at the same instant, each needing one committed write to an
    :class:`OptimisticStore` (``capacity`` writes at a time, or no limit); a conflict is retried (no
    limit) after the schedule's wait.

    ``schedule`` is a name in :data:`SCHEDULES` (built with ``base`` and ``cap``) or a backoff object.
    """
    if isinstance(schedule, str):
        backoff = SCHEDULES[validate.choice("schedule", schedule, SCHEDULES)](base, cap)
    elif isinstance(schedule, Backoff):
        backoff = schedule
    else:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)} or a backoff object, got {schedule!r}")
    writers = validate.integer("writers", writers, low=1)
    world = World(seed=seed)
    store = OptimisticStore(world, latency=latency, capacity=capacity)
    no_limit = RetryPolicy(MAX_ATTEMPTS, backoff, retry_on={"conflict"})    # the most a policy allows
    client = Client(world, store, name="writers", retry=no_limit)
    for _ in range(writers):
        world.env.process(serve(world, client, "writers"))
    results = world.run(until=1e7)
    if len(results) != writers or np.any(results.outcome != Outcome.OK):
        raise RuntimeError(f"some writers never committed ({len(results)} of {writers} finished)")
    return ContentionResult(writers, store.calls, float(results.end.max()))


@dataclass
class ContentionSweep:
    """Mean calls per writer and time to finish, with standard errors, per schedule and crowd size."""
    writers: tuple
    seeds: int
    calls: dict          # schedule -> array of mean total calls, one per crowd size
    calls_se: dict
    finished: dict       # schedule -> array of mean seconds to finish
    finished_se: dict


def contention_sweep(writers=(5, 10, 20, 40, 80), *, seeds: int = 20, schedules=tuple(SCHEDULES),
                     first_seed: int = 1, capacity: int | None = None) -> ContentionSweep:
    """:func:`contention_run` for each schedule and crowd size, averaged over ``seeds`` seeded runs
    (one run for the schedules without jitter, which do not depend on the seed), against a store of
    ``capacity`` slots (None: no limit)."""
    seeds = validate.integer("seeds", seeds, low=2)
    calls, calls_se, fin, fin_se = {}, {}, {}, {}
    for name in schedules:
        reps = seeds if name in JITTERED else 1
        c = np.empty((len(writers), reps))
        f = np.empty((len(writers), reps))
        for i, n in enumerate(writers):
            for j in range(reps):
                r = contention_run(name, n, seed=first_seed + j, capacity=capacity)
                c[i, j], f[i, j] = r.calls, r.finished
        calls[name], fin[name] = c.mean(axis=1), f.mean(axis=1)
        sd = (lambda a: a.std(axis=1, ddof=1) / math.sqrt(reps)) if reps > 1 else (lambda a: np.zeros(len(a)))
        calls_se[name], fin_se[name] = sd(c), sd(f)
    return ContentionSweep(tuple(writers), seeds, calls, calls_se, fin, fin_se)


SCHEDULE_STYLE = {"constant": dict(color="tab:gray", ls="--", marker="s"),
                  "exponential": dict(color="k", ls="--", marker="o"),
                  "full jitter": dict(color="tab:blue", marker="o"),
                  "equal jitter": dict(color="tab:orange", marker="^"),
                  "decorrelated jitter": dict(color="tab:green", marker="v")}


def draw_contention(axes, sweep: ContentionSweep, *, legend: bool = True):
    """Two panels: calls per writer and seconds to finish, against the number of writers (log y), and
    with ``legend`` one legend for both, under the left panel."""
    ax_calls, ax_time = axes
    n = np.array(sweep.writers)
    order = [n for n in ("exponential", "constant") if n in sweep.calls] + \
        [n for n in sweep.calls if n not in ("exponential", "constant")]
    for name in order:            # constant after exponential: same calls, its squares stay visible
        style = SCHEDULE_STYLE.get(name, {})
        label = name if name in JITTERED else f"{name}, no jitter"
        ax_calls.errorbar(n, sweep.calls[name] / n, yerr=2 * sweep.calls_se[name] / n, label=label, ms=4,
                          capsize=2, **style)
        ax_time.errorbar(n, sweep.finished[name], yerr=2 * sweep.finished_se[name], label=label, ms=4,
                         capsize=2, **style)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(n, [str(v) for v in n])
        ax.minorticks_off()
        ax.set_xlabel("writers racing for the record")
        ax.grid(True, which="major", alpha=0.3)
    if "constant" in sweep.calls and "exponential" in sweep.calls:
        ax_calls.annotate("constant and exponential:\nthe same calls", (n[len(n) // 2], sweep.calls["constant"][
            len(n) // 2] / n[len(n) // 2]), xytext=(-12, 12), textcoords="offset points", ha="right", fontsize=8)
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200) if t <= max(
        float(np.max(v / n)) for v in sweep.calls.values()) * 1.5]
    ax_calls.set_yticks(ticks, [str(t) for t in ticks])
    ax_calls.set_ylabel("calls per writer")
    ax_time.set_ylabel("time until all committed (s)")
    if legend:                                    # one legend for both panels, below them
        handles, labels = ax_calls.get_legend_handles_labels()
        ax_calls.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.0, -0.18), ncols=len(labels),
                        fontsize=8, frameon=False)
    return axes


# --- 5. retry budgets -------------------------------------------------------------------------------
BUDGET_RATE, BUDGET_DURATION, BUDGET_OUTAGE_START = 30.0, 40.0, 10.0
DASHBOARD_RATE = 20.0       # the dashboard's traffic: fewer requests, to redraw quickly


@dataclass
class BudgetResult:
    """A client calling a flaky db through an outage, with or without a retry budget."""
    budget: bool
    outage: tuple
    duration: float
    results: Results = field(repr=False)
    times: np.ndarray = field(repr=False)      # every call reaching the db

    @property
    def availability(self) -> float:
        return self.results.request_availability()

    @property
    def calls_per_request(self) -> float:
        return self.results.calls_per_request("db")

    @property
    def denied(self) -> int:
        """Retries the budget refused."""
        return self.results.client("api->db").budget_denied

    @property
    def outage_amplification(self) -> float:
        """Calls reaching the db during the outage per request started during it (nan without one)."""
        lo, hi = self.outage
        if hi <= lo:
            return math.nan
        started = np.count_nonzero((self.results.start >= lo) & (self.results.start < hi))
        calls = np.count_nonzero((self.times >= lo) & (self.times < hi))
        return calls / started if started else math.nan


def budget_run(error_rate: float = 0.05, max_attempts: int = 3, outage: float = 15.0, *, budget=False,
               rate: float = BUDGET_RATE, duration: float = BUDGET_DURATION, start: float = BUDGET_OUTAGE_START,
               ratio: float = 0.1, window: float = 10.0, min_per_second: float = 0.5,
               seed: int = 1) -> BudgetResult:
    """Open-loop traffic at ``rate`` for ``duration`` seconds to a db whose calls fail at random with
    ``error_rate`` and which is down for ``outage`` seconds from ``start``. The client makes up to
    ``max_attempts`` attempts; with ``budget=True``, retries also need room in a
    ``RetryBudget(ratio, window, min_per_second)`` (or in ``budget`` itself, when it is a RetryBudget)."""
    if isinstance(budget, RetryBudget):
        policy_budget = budget
    else:
        policy_budget = RetryBudget(ratio, window, min_per_second) if budget else None
    world = World(seed=seed)
    db = Service(world, "db", capacity=100, latency=Exponential(0.01), error_rate=error_rate)
    window_ = (start, start + validate.non_negative("outage", outage))
    if outage > 0:
        Outage(db, [window_])
    log = CallLog(db)
    client = Client(world, log, name="api->db",
                    retry=RetryPolicy(max_attempts, FullJitter(0.01, 1.0)),
                    budget=policy_budget)
    OpenLoop(world, client, rate, duration=duration)
    results = world.run(until=duration + 5)
    return BudgetResult(policy_budget is not None, window_, duration, results, np.array(log.times))


def draw_budget(ax, res: BudgetResult, *, legend: bool = True):
    """Calls reaching the db and user requests, per second; the outage shaded (legend on the first panel)."""
    edges = np.arange(0.0, res.duration + 1e-9, 1.0)
    calls, _ = np.histogram(res.times, bins=edges)
    users, _ = np.histogram(res.results.start, bins=edges)
    ax.step(edges[:-1], calls, where="post", color="tab:blue", label="calls reaching the db")
    ax.step(edges[:-1], users, where="post", color="k", ls="--", lw=1, label="user requests")
    plots.shade_faults(ax, res.results)
    ax.set_xlim(0, res.duration)
    ax.set_ylim(0, max(ax.get_ylim()[1], calls.max() * 1.4))
    ax.set_xlabel("time (s)")
    if ax.get_subplotspec().is_first_col():
        ax.set_ylabel("per second")
        if legend:
            ax.legend(loc="upper left", fontsize=8, ncols=3, frameon=False)
    return ax


def budget_summary(res: BudgetResult) -> str:
    text = f"{res.availability:.1%} answered, {res.calls_per_request:.2f} calls per request"
    if res.outage[1] > res.outage[0]:
        text += f" ({res.outage_amplification:.2f} during the outage)"
    return text


def _budget_compute(error_pct, max_attempts, outage, budget):
    return budget_run(error_pct / 100, max_attempts, outage, budget=budget, rate=DASHBOARD_RATE)


@dashboard("05_retries/budget")
def budget_dashboard() -> Dashboard:
    """Error rate, attempts and outage length; without / with a retry budget (10% of requests)."""
    return Dashboard(
        _budget_compute, partial(draw_budget, legend=False),    # the title says what the lines are
        [Slider("error_pct", "calls failing at random", "%", 0, 50, 5, step=1),
         Slider("max_attempts", "max attempts (first included)", "", 1, 6, 3, integer=True),
         Slider("outage", "db outage from t = 10 s, lasting", "s", 0, 25, 15, step=1)],
        variants={"without a retry budget": {"budget": False}, "with a 10% retry budget": {"budget": True}},
        summary=budget_summary, figsize=(9.0, 3.2),
        title=f"Retries during an outage: calls reaching the db per second (blue) against user requests "
              f"(dashed, {DASHBOARD_RATE:g} a second); red: the db is down")


# --- 6. idempotency -------------------------------------------------------------------------------
IDEMPOTENCY_MODES = ("retry, no key", "no retry", "retry with key")
PAY_TIMEOUT, PAY_SLOW, PAY_SLOW_SHARE = 0.2, 0.5, 0.1


@dataclass
class IdempotencyResult:
    mode: str
    requests: int
    answered: int
    writes: int
    duplicates: int
    deduplicated: int
    charged: int          # logical requests with at least one payment written

    @property
    def availability(self) -> float:
        return self.answered / self.requests

    @property
    def charged_but_failed(self) -> int:
        """Users told "it failed" although their payment was written."""
        return self.charged - self.answered


def idempotency_run(mode: str = "retry, no key", *, requests: int = 2000, rate: float = 20.0,
                    seed: int = 1) -> IdempotencyResult:
    """Payments through a client with a 200 ms timeout and up to 3 attempts; 10% of payments take
    500 ms (and are written anyway). Modes: "retry, no key" (the write is retried as if it were
    idempotent, the service cannot tell a retry from a new payment), "no retry" (non-idempotent,
    never retried) and "retry with key" (retried with an idempotency key the service deduplicates)."""
    validate.choice("mode", mode, IDEMPOTENCY_MODES)
    world = World(seed=seed)
    payments = itertools.count(1)                  # each user's payment has its own idempotency key
    ledger = Ledger(world, latency=Mixture.slow_tail(0.02, PAY_SLOW, PAY_SLOW_SHARE),
                    dedup=mode == "retry with key")
    client = Client(world, ledger, name="checkout->payments", timeout=PAY_TIMEOUT,
                    retry=RetryPolicy(3, FullJitter(0.05, 1.0)),
                    idempotent=mode == "retry, no key", idempotency_key=mode == "retry with key")
    OpenLoop(world, client, rate, requests=requests, key=lambda _rng: next(payments))
    results = world.run(until=requests / rate * 2 + 30)
    answered = int(np.count_nonzero(results.outcome == Outcome.OK))
    return IdempotencyResult(mode, len(results), answered, ledger.writes, ledger.duplicates,
                             ledger.deduplicated, len(ledger.per_key))


def duplicates_bound(q: float = PAY_SLOW_SHARE, attempts: int = 3, requests: int = 2000) -> tuple[float, float]:
    """Expected duplicates per request when every timed-out attempt is retried and still written
    (``q + q**2`` for 3 attempts), and four standard deviations of its mean over ``requests``."""
    # extra writes = attempts - 1, attempts counted as for independent failures with probability q
    mean = theory.expected_attempts(q, attempts) - 1
    return mean, 4 * math.sqrt(theory.attempts_variance(q, attempts) / requests)


def idempotency_table(runs) -> Table:
    rows = [[r.mode, f"{r.availability:.1%}", r.writes, r.duplicates, r.charged_but_failed] for r in runs]
    return Table(["client", "told 'paid'", "payments written", "duplicate payments",
                  "charged but told 'failed'"], rows)
