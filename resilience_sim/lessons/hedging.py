"""Notebook 09, hedged requests (Dean and Barroso, "The Tail at Scale", CACM 2013): scenarios,
pictures and the dashboard; the exact theory of a hedged call is in :mod:`resilience_sim.core.theory`
(:func:`~resilience_sim.core.theory.hedged_survival`, :func:`~resilience_sim.core.theory.hedged_quantile`).
Also the course's reusable picture of the policy composition order (:func:`composition_order_mermaid`).

The dependency of the story answers most calls in about 10 ms, but 2% of its calls hit a hiccup (a
garbage-collection pause, a cold cache, a noisy neighbour) and take about 150 ms. Hiccups strike calls
independently, so a second copy of a slow call is very likely fast: that is what hedging exploits.
Times are simulated seconds; pictures show milliseconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core import theory, validate
from ..core.distributions import Distribution, Fixed, LogNormal, Mixture
from ..metrics import Results
from ..policies import HedgePolicy, RetryBudget, delay_from_percentile
from ..sim.client import Client
from ..sim.faults import LatencySpike
from ..sim.service import Service, ServiceError, outcome_of
from ..sim.topologies import fanout
from ..sim.workload import OpenLoop
from ..sim.world import World
from ..views import plots
from ..views.dashboard import Choice, Dashboard, Slider
from . import dashboard
from .common import MS, Table

# --- the policy composition order, as one picture for every notebook ------------------------------
#: The layers a call goes through, outside in, and why each sits where it does. The single source of
#: the picture; it follows the docstring of :mod:`resilience_sim.policies` (a test checks the order).
COMPOSITION_ORDER = [
    ("Deadline", "starts with the request; every layer below reads what is left of it"),
    ("Retry with backoff, asking the retry budget", "bounded by attempts, by the deadline and by the budget"),
    ("Adaptive throttle", "asked before every attempt: fail fast while the backend is overloaded"),
    ("Circuit breaker", "inside the retries: counts every attempt; an open circuit fails fast"),
    ("Rate limit (client side)", "inside the breaker: an attempt over this caller's quota is never sent"),
    ("Bulkhead", "inside the breaker: a rejected call never takes a slot"),
    ("Per-attempt timeout", "starts once the slot is held; never outlasts the deadline"),
    ("Hedging", "innermost: copies race within one attempt's time; the loser is cancelled"),
    ("The call (server side: token bucket, load shedder)", "admission control before the queue"),
]


def composition_order_mermaid(highlight: str | None = None) -> str:
    """The composition order as a Mermaid flowchart in a Markdown code block.

    Show it in any notebook with ``display(Markdown(composition_order_mermaid()))``; ``highlight``
    (a layer's name, or the start of it, e.g. ``"Hedging"``) colours the layer the notebook is about.
    """
    names = [name for name, _ in COMPOSITION_ORDER]
    if highlight is not None:
        matches = [i for i, name in enumerate(names) if name.lower().startswith(highlight.lower())]
        if len(matches) != 1:
            raise ValueError(f"highlight must name one of {names}, got {highlight!r}")
    # wider boxes than Mermaid's default (200 px) keep the picture short enough to read at a glance
    lines = ["```mermaid", '%%{init: {"flowchart": {"wrappingWidth": 460}}}%%', "flowchart TD",
             '    request(["a request from your code"])']
    for i, (name, why) in enumerate(COMPOSITION_ORDER, start=1):
        label = f"<b>{i}. {name}</b><br/><small>{why}</small>".replace('"', "#quot;")
        lines.append(f'    L{i}["{label}"]')
    lines.append("    request --> L1")
    lines += [f"    L{i} --> L{i + 1}" for i in range(1, len(COMPOSITION_ORDER))]
    if highlight is not None:
        lines.append(f"    style L{matches[0] + 1} fill:#ffe9a8,stroke:#b8860b,stroke-width:2px")
    lines.append("```")
    return "\n".join(lines)


# --- the dependency and the exact theory of a hedged call -----------------------------------------
#: Most calls take about 10 ms; 2% hit a hiccup of about 150 ms.
HICCUP_SHARE = 0.02
LATENCY = Mixture([(1 - HICCUP_SHARE, LogNormal(0.010, 0.3)), (HICCUP_SHARE, LogNormal(0.150, 0.4))])
#: Requests per second in the uncongested experiments, and a capacity that never makes anyone wait.
RATE = 100.0
AMPLE = 1000
# --- servers that keep working after the caller cancels -------------------------------------------
class KeepsWorking:
    """A target that goes on serving a call after its caller cancels it, as many HTTP servers do
    when a client hangs up: the hedge loser keeps its slot until its work is done."""

    def __init__(self, world, service: Service):
        self.env, self.service, self.name = world.env, service, service.name

    def call(self, req, caller=None):
        work = self.env.process(outcome_of(self.service.call(req, caller=caller)))
        ok, value = yield work      # a cancel interrupts this wait, not the work
        if not ok:
            raise value
        return value


# --- one dependency behind a client, with or without hedging --------------------------------------
def run(delay: float | None = None, *, requests: int = 4000, rate: float = RATE, capacity: int = AMPLE,
        latency: Distribution = LATENCY, cancel: bool = True, max_hedges: int = 1, seed: int = 1) -> Results:
    """Poisson calls at ``rate`` per second to a dependency of ``capacity`` slots, through a client
    ("client") that hedges after ``delay`` seconds (``None``: no client, direct calls; up to
    ``max_hedges`` copies, ``delay`` apart). ``cancel=False``: the dependency keeps working on a
    cancelled copy (:class:`KeepsWorking`). Runs until every request has finished."""
    world = World(seed=seed)
    dep = Service(world, "dependency", capacity=capacity, latency=latency)
    target = dep if cancel else KeepsWorking(world, dep)
    if delay is not None:   # without hedging, the client would add nothing but its cost: call directly
        target = Client(world, target, name="client", hedge=HedgePolicy(delay, max_hedges=max_hedges))
    OpenLoop(world, target, rate, requests=requests)
    duration = requests / rate
    until = 2 * duration + 30.0
    results = world.run(until=until)
    while len(results) < requests:            # a collapsed dependency drains slowly: wait it out
        until *= 2
        results = world.run(until=until)
    return results


def extra_load(results: Results) -> float:
    """Hedged copies sent per request of a :func:`run` (0 without hedging): the extra load on the dependency."""
    client = results.clients.get("client")
    return client.hedges / len(results) if client is not None else 0.0


def percentile_table(runs: dict, ps=(50, 99, 99.9)):
    """Latency percentiles (ms) and extra load of each named run, as a table (``.data`` keeps numbers)."""
    rows, data = [], {}
    for name, r in runs.items():
        values, extra = r.latency_percentiles(ps), extra_load(r)
        data[name] = dict(values, extra_load=extra)
        rows.append([name] + [f"{values[p] / MS:.1f}" for p in ps] + [f"+{extra:.1%}"])
    return Table([""] + [f"p{p:g} (ms)" for p in ps] + ["extra load (copies/requests)"], rows, data)


# --- the trade-off: tail latency against extra load, as the delay sweeps --------------------------
SWEEP_PERCENTILES = (50, 75, 90, 95, 99, 99.9)


@dataclass(frozen=True)
class SweepPoint:
    """One hedge delay (the ``p``-th percentile of measured latencies) and what it gave."""
    p: float
    delay: float
    extra_load: float
    p99: float
    p999: float
    run: Results = field(repr=False)


def delay_sweep(measured, percentiles=SWEEP_PERCENTILES, *, requests: int = 4000, seed: int = 1) -> list:
    """For each percentile: hedge at that percentile of the ``measured`` latencies, and run."""
    points = []
    for p in percentiles:
        delay = delay_from_percentile(measured, p)
        r = run(delay, requests=requests, seed=seed)
        tail = r.latency_percentiles((99, 99.9))
        points.append(SweepPoint(p, delay, extra_load(r), tail[99], tail[99.9], r))
    return points


def theory_tradeoff(latency: Distribution = LATENCY, ps=None) -> dict:
    """The exact trade-off: for hedge delays at percentiles ``ps`` of ``latency``, the extra load
    (1 - p/100) and the hedged p99 and p99.9 (seconds)."""
    if ps is None:        # finer where the curve turns: between the two humps of the latency mix
        ps = np.concatenate([np.linspace(50, 96, 24), np.linspace(96.1, 99.95, 40)])
    ps = np.asarray(ps, dtype=float)
    delays = [theory.quantile(latency, float(p)) for p in ps]
    return {"p": ps, "delay": np.array(delays), "extra_load": 1 - ps / 100,
            "p99": np.array([theory.hedged_quantile(latency, d, 99) for d in delays]),
            "p999": np.array([theory.hedged_quantile(latency, d, 99.9) for d in delays])}


TRADEOFF_YTICKS = (20, 30, 50, 100, 150, 200, 300)


def draw_tradeoff(ax, points, *, plain: Results | None = None, theory: dict | None = None):
    """p99 and p99.9 (ms, log scale) against the extra load (%), one point per hedge delay; the exact
    curves as lines, and the unhedged tail as dotted lines."""
    colors = {"p99": "tab:blue", "p999": "tab:red"}
    for key, label in (("p99", "p99"), ("p999", "p99.9")):
        x = [100 * pt.extra_load for pt in points]
        y = [getattr(pt, key) / MS for pt in points]
        ax.plot(x, y, "o", color=colors[key], label=f"{label}, simulated")
        if theory is not None:
            ax.plot(100 * theory["extra_load"], theory[key] / MS, "-", color=colors[key], lw=1, alpha=0.7,
                    label=f"{label}, exact")
        if plain is not None:
            tail = plain.latency_percentiles((99, 99.9))[99 if key == "p99" else 99.9]
            ax.axhline(tail / MS, color=colors[key], ls=":", lw=1)
            ax.annotate(f"{label} without hedging", (52, tail / MS), color=colors[key], fontsize=8,
                        ha="right", va="bottom")
    for pt in points:
        ax.annotate(f"delay p{pt.p:g}", (100 * pt.extra_load, pt.p999 / MS), textcoords="offset points",
                    xytext=(0, 6), ha="left" if pt.extra_load < 0.005 else "center", fontsize=8)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xticks([0, 1, 2, 5, 10, 25, 50], ["0", "1", "2", "5", "10", "25", "50"])
    ax.set_xlim(-0.1, 90)                  # room on the right for the label of the p50 point
    ax.set_yscale("log")
    ax.set_yticks(TRADEOFF_YTICKS, [f"{t:g}" for t in TRADEOFF_YTICKS])
    ax.minorticks_off()
    ax.grid(True, color="0.92", lw=0.8)
    ax.set_xlabel("extra load: copies sent per request (%)")
    ax.set_ylabel("latency (ms)")
    ax.legend(loc="center right", fontsize=8)
    return ax


# --- fan-out: hedge every leaf call ---------------------------------------------------------------
def fanout_run(leaves: int = 20, delay: float | None = None, *, requests: int = 1000, rate: float = 20.0,
               seed: int = 1) -> Results:
    """A root that calls ``leaves`` copies of the dependency at once and waits for all (notebook 01's
    fan-out), each leaf call through its own client hedging after ``delay`` seconds (``None``: not hedged)."""
    world = World(seed=seed)

    def hedged(leaf):
        return Client(world, leaf, name=f"root->{leaf.name}", hedge=HedgePolicy(delay))

    root = fanout(world, leaves, LATENCY, wrap=None if delay is None else hedged)
    OpenLoop(world, root, rate, requests=requests)
    return world.run(until=requests / rate * 2 + 30)


# --- when hedging hurts: a busy dependency whose server cannot drop the loser ---------------------
#: The busy dependency of the last section: a pool of this many slots, one shared queue.
POOL = 8
VARIANTS = ("without hedging", "hedged, loser cancelled", "hedged, loser keeps working")


def rate_for(load: float, capacity: int = POOL, latency: Distribution = LATENCY) -> float:
    """Requests per second that keep ``load`` (a share) of ``capacity`` slots busy without hedging."""
    load = validate.number("load", load, low=0.0, high=1.0, low_open=True)
    if load == 1.0:
        raise ValueError(f"load must be in (0, 1), got {load!r}")
    return load * capacity / latency.mean


def load_comparison(load: float, *, p: float = 95, requests: int = 3000, capacity: int = POOL,
                    seed: int = 1) -> dict:
    """At ``load``, the dependency without hedging, then hedged at the ``p``-th percentile of those
    very latencies, with a server that drops the loser and with one that keeps working on it."""
    rate = rate_for(load, capacity)
    plain = run(None, requests=requests, rate=rate, capacity=capacity, seed=seed)
    delay = delay_from_percentile(plain.latencies(), p)
    return {VARIANTS[0]: plain,
            VARIANTS[1]: run(delay, requests=requests, rate=rate, capacity=capacity, seed=seed),
            VARIANTS[2]: run(delay, requests=requests, rate=rate, capacity=capacity, seed=seed, cancel=False)}


# --- a trigger at half capacity: metastable hedging -------------------------------------------------
#: The trigger of the metastable experiment: every call three times slower, from 3 s to 4 s.
HEDGE_TRIGGER, HEDGE_TRIGGER_FACTOR = (3.0, 4.0), 3.0


@dataclass
class TriggerRun:
    """A hedged run against a server that keeps working on losers, with or without a short slowdown."""
    results: Results = field(repr=False)
    load: float
    trigger: tuple | None
    delay: float

    @property
    def late(self) -> Results:
        """The requests started in the last 30% of the run, long after the trigger."""
        last = float(self.results.start.max())
        return self.results.between(0.7 * last, last + 1e-9)

    @property
    def late_p99(self) -> float:
        return float(self.late.latency_percentiles((99,))[99])

    @property
    def late_extra_load(self) -> float:
        """Copies per request among the late requests (a copy counts for the request that sent it)."""
        return float(self.late.calls_per_request("dependency") - 1.0)


def trigger_run(load: float, trigger: tuple | None = HEDGE_TRIGGER, *, p: float = 95, requests: int = 8000,
                seed: int = 1) -> TriggerRun:
    """The busy pool of section 6 at ``load``, hedged at the ``p``-th percentile of its unhedged latencies,
    with a server that keeps working on losers; during ``trigger`` (a time window, or None) every call
    is ``HEDGE_TRIGGER_FACTOR`` times slower."""
    rate = rate_for(load)
    plain = run(None, requests=3000, rate=rate, capacity=POOL, seed=seed)
    delay = delay_from_percentile(plain.latencies(), p)
    world = World(seed=seed)
    dep = Service(world, "dependency", capacity=POOL, latency=LATENCY)
    if trigger is not None:
        LatencySpike(dep, [tuple(trigger)], factor=HEDGE_TRIGGER_FACTOR)
    client = Client(world, KeepsWorking(world, dep), name="client", hedge=HedgePolicy(delay))
    OpenLoop(world, client, rate, requests=requests)
    return TriggerRun(_run_out(world, requests, requests / rate), load, trigger, delay)


def _run_out(world, requests: int, duration: float) -> Results:
    until = 2 * duration + 30.0
    results = world.run(until=until)
    while len(results) < requests:            # a collapsed dependency drains slowly: wait it out
        until *= 2
        results = world.run(until=until)
    return results


# --- tied requests and a hedge budget ------------------------------------------------------------------
class Tied:
    """Tail at Scale's tied requests: a request is queued at one of two replicas and, ``gap`` seconds
    later unless it has started by then, at the other too, each copy naming its twin. When one copy
    starts (gets a slot), its twin still waiting in the other queue is dropped. Work that has started
    runs to its end: copies that start at the same instant both do the work (``both_started``).
    Each replica is a Service (``size`` slots) whose handler does the work; ``works`` counts the copies
    that did it. The gap is the paper's small delay (about two network hops) that makes both starting rare."""

    def __init__(self, world, size: int, latency: Distribution = LATENCY, gap: float = 0.001):
        self.env, self.name = world.env, "tied"
        self.latency, self.gap = latency, validate.non_negative("gap", gap)
        self._rng, self._pick = world.rng("tied/work"), world.rng("tied/replica")
        self.replicas = [Service(world, f"replica-{i}", capacity=size, latency=Fixed(0.0), handler=self._work)
                         for i in range(2)]
        self._ties: dict = {}
        self.works = self.both_started = 0

    def _work(self, svc, req):
        tie = self._ties[id(req)]
        if tie["started"]:
            self.both_started += 1             # too late to drop: this copy works too
        tie["started"].add(svc.name)
        for name, copy in tie["copies"].items():
            if name not in tie["started"] and copy.is_alive:
                copy.interrupt("tied")          # the twin is still in its queue: drop it
        yield self.env.timeout(self.latency.sample(self._rng))
        self.works += 1

    def _copy(self, replica, req):
        try:
            return True, (yield from replica.call(req))
        except Exception as exc:               # a ServiceError, or simpy's Interrupt when dropped
            return False, exc

    def call(self, req, caller=None):
        env = self.env
        first = self._pick.randrange(2)
        tie = self._ties[id(req)] = {"started": set(), "copies": {}}
        try:
            for replica in (self.replicas[first], self.replicas[1 - first]):
                if tie["started"]:
                    break                       # the first copy started within the gap: no twin
                tie["copies"][replica.name] = env.process(self._copy(replica, req))
                if len(tie["copies"]) == 1:
                    yield env.any_of([tie["copies"][replica.name], env.timeout(self.gap)])
            outcomes = yield env.all_of(list(tie["copies"].values()))
            for ok, value in outcomes.values():
                if ok:
                    return value
            raise next(value for ok, value in outcomes.values() if isinstance(value, ServiceError))
        finally:
            del self._ties[id(req)]


class BudgetedHedge(HedgePolicy):
    """A hedge policy whose copies also ask a :class:`~resilience_sim.policies.RetryBudget`: at most
    ``ratio`` of finished requests (plus its small floor) over its window may send one. A request
    refused a copy sends none later (its start is remembered for ``REMEMBER`` seconds)."""
    REMEMBER = 60.0

    def __init__(self, delay: float, budget: RetryBudget):
        super().__init__(delay)
        self.budget, self._refused = budget, {}

    def hedge_at(self, start: float, sent: int = 0) -> float:
        return math.inf if start in self._refused else super().hedge_at(start, sent)

    def should_hedge(self, start: float, now: float, sent: int) -> bool:
        if not super().should_hedge(start, now, sent):
            return False
        if self.budget.can_retry(now):
            return True
        self._refused[start] = now
        for old in [s for s, t in self._refused.items() if t < now - self.REMEMBER]:
            del self._refused[old]
        return False

    def record_hedge(self, now: float) -> None:
        super().record_hedge(now)
        self.budget.record_retry(now)

    def record_winner(self, now: float, hedge: bool) -> None:
        super().record_winner(now, hedge)
        self.budget.record_request(now)


class OneOfTwo:
    """Two replicas (Services of ``size`` slots, a queue each); each request goes to one at random."""

    def __init__(self, world, size: int, latency: Distribution = LATENCY):
        self.env, self.name = world.env, "one of two"
        self.replicas = [Service(world, f"replica-{i}", capacity=size, latency=latency) for i in range(2)]
        self._pick = world.rng("replicas/pick")

    def call(self, req, caller=None):
        return (yield from self.replicas[self._pick.randrange(2)].call(req, caller=caller))


@dataclass
class GuardRun:
    """One variant of :func:`budget_comparison` or :func:`tied_comparison`."""
    results: Results = field(repr=False)
    work: float              # calls that did their work, per request (1.0: no extra work)
    both_started: int = 0    # tied requests whose two copies both started (both did the work)

    def percentiles(self, ps=(50, 90, 99)) -> dict:
        return self.results.latency_percentiles(ps)


BUDGET_VARIANTS = (VARIANTS[0], VARIANTS[2], "hedged, 5% hedge budget")
#: The hedge budget of :func:`budget_comparison`: copies for 5% of requests over 2 s, plus 1 a second.
HEDGE_BUDGET = dict(ratio=0.05, window=2.0, min_per_second=1.0)


def budget_comparison(load: float = 0.7, *, requests: int = 3000, seed: int = 1) -> dict:
    """Section 6's busy pool at ``load``, a server that keeps working on losers: without hedging, hedged at
    the p95 of the unhedged latencies, and the same with :data:`HEDGE_BUDGET` (:class:`BudgetedHedge`)."""
    rate = rate_for(load)

    def variant(make_policy):
        world = World(seed=seed)
        dep = Service(world, "dependency", capacity=POOL, latency=LATENCY)
        target = KeepsWorking(world, dep)
        if make_policy is not None:
            target = Client(world, target, name="client", hedge=make_policy())
        OpenLoop(world, target, rate, requests=requests)
        results = _run_out(world, requests, requests / rate)
        return GuardRun(results, dep.calls / len(results))

    plain = variant(None)
    delay = delay_from_percentile(plain.results.latencies(), 95)
    return {BUDGET_VARIANTS[0]: plain,
            BUDGET_VARIANTS[1]: variant(lambda: HedgePolicy(delay)),
            BUDGET_VARIANTS[2]: variant(lambda: BudgetedHedge(delay, RetryBudget(**HEDGE_BUDGET)))}


TIED_VARIANTS = ("one replica at random", "tied requests")


def tied_comparison(load: float = 0.7, *, requests: int = 3000, seed: int = 1) -> dict:
    """Two replicas of ``POOL / 2`` slots at ``load``: each request to one at random (:class:`OneOfTwo`),
    or tied to both (:class:`Tied`)."""
    rate, out = rate_for(load), {}
    for name in TIED_VARIANTS:
        world = World(seed=seed)
        target = OneOfTwo(world, POOL // 2) if name == TIED_VARIANTS[0] else Tied(world, POOL // 2)
        OpenLoop(world, target, rate, requests=requests)
        results = _run_out(world, requests, requests / rate)
        works = target.works if isinstance(target, Tied) else sum(r.calls for r in target.replicas)
        out[name] = GuardRun(results, works / len(results), getattr(target, "both_started", 0))
    return out


def guard_table(runs: dict, ps=(50, 90, 99)) -> Table:
    """Latency percentiles (ms) and work per request of each variant."""
    rows = [[name] + [f"{v / MS:.1f}" for v in r.percentiles(ps).values()] + [f"{r.work:.3f}"]
            for name, r in runs.items()]
    return Table([""] + [f"p{p:g} (ms)" for p in ps] + ["work per request"], rows)


P99_YTICKS = (10, 30, 100, 300, 1000, 3000, 10000)


def draw_p99_over_time(ax, runs: dict, *, bin_width: float = 0.5):
    """The p99 latency (ms, log scale) of the requests started in each ``bin_width`` of the run."""
    styles = dict(zip(VARIANTS, ("k", "tab:blue", "tab:red")))
    until, low, high = 0.0, math.inf, 0.0
    for name, r in runs.items():
        start = r.start
        series = r.timeseries(bin_width)
        last = start.max() if start.size else 0.0
        keep = series["t"] + bin_width <= last          # whole bins only
        t, p99 = series["t"][keep], series["p99"][keep] / MS
        ax.step(np.append(t, t[-1] + bin_width), np.append(p99, p99[-1]), where="post", color=styles.get(name),
                label=name)
        until = max(until, t[-1] + bin_width)
        low, high = min(low, np.nanmin(p99)), max(high, np.nanmax(p99))
    ax.set_xlim(0, until)
    ax.set_yscale("log")
    top = high * 5                                     # room for the legend above the lines
    ticks = [v for v in P99_YTICKS if low / 1.5 <= v <= top]
    ax.set_yticks(ticks, [f"{v:,}".replace(",", " ") for v in ticks])
    ax.minorticks_off()
    ax.set_ylim(low / 1.5, top)
    ax.set_xlabel("time the request started (s)")
    ax.set_ylabel(f"p99 latency per {bin_width:g} s (ms)")
    ax.legend(loc="upper left", fontsize=8, ncols=len(runs), frameon=False)
    return ax


# --- the dashboard ---------------------------------------------------------------------------------
DASH_REQUESTS = 1200
DASH_SEED = 2013
_last_plain: dict = {}      # the "without" panel's run, reused by the "with" panel of the same refresh


@dataclass
class DashResult:
    run: Results
    hedge: bool
    p: float
    plain_latencies: np.ndarray | None = None   # the unhedged run, drawn faintly behind the hedged one


def _dash_compute(p_delay, load_pct, cancel, hedge):
    key = (load_pct, DASH_REQUESTS, DASH_SEED)
    rate = rate_for(load_pct / 100)
    if not hedge or key not in _last_plain:
        _last_plain.clear()
        _last_plain[key] = run(None, requests=DASH_REQUESTS, rate=rate, capacity=POOL, seed=DASH_SEED)
    plain = _last_plain[key]
    if not hedge:
        return DashResult(plain, False, p_delay)
    delay = delay_from_percentile(plain.latencies(), p_delay)
    hedged = run(delay, requests=DASH_REQUESTS, rate=rate, capacity=POOL, seed=DASH_SEED, cancel=bool(cancel))
    return DashResult(hedged, True, p_delay, plain.latencies())


def draw_tail(ax, res: DashResult):
    """The dashboard's panel: the run's tail, and behind a hedged run the tail without hedging."""
    curves = {}
    if res.plain_latencies is not None:
        curves["without hedging"] = (res.plain_latencies, "0.6")
    label = f"hedged at p{res.p:g}" if res.hedge else "without hedging"
    curves[label] = (res.run.latencies(), "tab:blue" if res.hedge else "k")
    return plots.latency_tails(curves, ax=ax, ylabel=not ax.get_subplotspec().colspan.start)


def dash_summary(res: DashResult) -> str:
    tail = res.run.latency_percentiles((50, 99, 99.9))
    text = " · ".join(f"p{p:g} {v / MS:.0f} ms" for p, v in tail.items())
    return f"{text} · extra load <b>+{extra_load(res.run):.1%}</b>"


@dashboard("09_hedged_requests/hedging")
def hedging_dashboard() -> Dashboard:
    """Hedge delay (a percentile of latencies measured without hedging), load, and whether the server
    drops the loser; without / with hedging side by side."""
    return Dashboard(
        _dash_compute, draw_tail,
        [Slider("load_pct", "load on the dependency", "% of capacity", 10, 90, 30, step=5),
         Slider("p_delay", "hedge delay at percentile", "p", 50, 99.9, 95, step=0.1),
         Choice("cancel", "the losing copy", (("is dropped", 1), ("keeps the server working", 0)), 1)],
        variants={"without hedging": {"hedge": False}, "with hedging": {"hedge": True}},
        summary=dash_summary, figsize=(9.0, 3.4),
        title=f"A dependency of {POOL} slots: 2% of calls hit a 150 ms hiccup. "
              f"{DASH_REQUESTS} requests per panel")
