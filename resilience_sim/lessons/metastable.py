"""08 Retry storms and metastable failure: retries that keep a healthy server down.

* **Metastable failure** (:func:`metastable_run`): clients retry timed-out calls at once; a short
  latency spike pushes queueing delay past the timeout, retries triple the load and the service stays
  failed after the spike ends; a :class:`~resilience_sim.policies.RetryBudget` or an
  :class:`~resilience_sim.policies.AdaptiveThrottle` lets it recover, backoff with jitter does not.
* **The edge** (:func:`edge_run`, a sweep's scenario): how often a run stays failed, against the
  trigger's length and the base load, over many seeds (:func:`resilience_sim.sweeps.sweep`), drawn
  with its confidence band (:func:`draw_edge_band`) or as a heat map (:func:`draw_edge_map`);
  :func:`edge_curve` sweeps one knob with the same seeds at every value.

The api (``CAPACITY``, ``TIMEOUT``...) is the one notebook 07 overloads; it lives in :mod:`.common`.
Every run is small (a few thousand requests) so that the dashboard redraws in well under 200 ms.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from matplotlib.ticker import MultipleLocator

from ..core import theory, validate
from ..metrics import Results
from ..metrics.sweeps import Summary
from ..metrics.windows import availability_between
from ..policies import AdaptiveThrottle, ConstantBackoff, FullJitter, RetryBudget, RetryPolicy
from ..sim.client import Client
from ..sim.faults import LatencySpike
from ..sim.probes import ServiceProbe
from ..sim.world import World
from ..sim.workload import ClosedLoop, OpenLoop
from ..sweeps import sweep
from ..views import plots
from ..views import sweeps as sweep_plots
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import (API_WORK, API_WORKERS, BAD, CAPACITY, GOOD, PROBE_EVERY, TIMEOUT,  # noqa: F401
                     draw_queue, overload_api)      # (the notebook's names for the shared api)


# --- 1. metastable failure ---------------------------------------------------------------------------
#: Base load as a share of capacity, and the trigger: every request takes three times as long for 4 s.
META_LOAD, TRIGGER, TRIGGER_FACTOR = 0.65, 4.0, 3.0
#: Attempts per request (the first counts), and the retry budget's share of requests.
ATTEMPTS, BUDGET_RATIO = 3, 0.1
#: The adaptive throttle: K (the SRE book's 2) and its memory, short to match this fast service.
THROTTLE_K, THROTTLE_WINDOW = 2.0, 5.0
#: The notebook's main run: trigger at 10 s, 90 s in all, "well after" = from 60 s on.
MAIN = dict(start=10.0, duration=90.0, window=(60.0, 90.0))
#: The sweeps' shorter run: trigger at 3 s, 22 s in all, judged from 14 s on (5 s after the longest
#: trigger they try, 6 s, has ended).
SHORT = dict(start=3.0, duration=22.0, window=(14.0, 22.0))
#: The dashboard's run, shorter still so that it redraws at once: trigger at 2 s, 16 s in all, judged
#: over its last 5 s, from 11 s on (5 s after its default trigger, 4 s, has ended; 3 s after its longest, 6 s).
DASH = dict(start=2.0, duration=16.0, window=(11.0, 16.0))


@dataclass
class MetastableResult:
    """A run of the metastable scenario and what it says about the time after the trigger."""
    results: Results = field(repr=False)
    queue: ServiceProbe = field(repr=False)
    trigger: tuple
    window: tuple
    load: float
    label: str
    client: Client = field(repr=False)
    factor: float = TRIGGER_FACTOR            # the trigger: every request this many times slower

    @property
    def after(self) -> float:
        """Request availability in ``window``, well after the trigger ended."""
        return availability_between(self.results, *self.window)

    @property
    def amplification(self) -> float:
        """Attempts sent per request, over the whole run."""
        return self.results.client("users->api").amplification

    def amplification_in(self, lo: float, hi: float) -> float:
        """Attempts per request, for the requests that started in ``[lo, hi)``."""
        return self.results.between(lo, hi).attempts_per_request()

    def recovery_time(self, bin_width: float = 1.0, level: float = 0.9) -> float | None:
        """Seconds from the trigger's end until availability stays at or above ``level`` in every
        ``bin_width`` bin up to the end of ``window``; None if it never does."""
        lo, hi = self.trigger[1], self.window[1]
        edges = np.arange(lo, hi, bin_width)
        good = [availability_between(self.results, a, a + bin_width) >= level for a in edges]
        if not good[-1]:
            return None
        last_bad = max((i for i, g in enumerate(good) if not g), default=-1)
        return float(edges[last_bad + 1] - lo) if last_bad + 1 < len(edges) else None


#: The backoff of section 3: full jitter from 0.1 s, capped at 2 s (base, cap).
JITTER = (0.1, 2.0)


def think_time(users: int, load: float = META_LOAD) -> float:
    """The mean think time that makes ``users`` closed-loop users offer ``load`` of the capacity while the
    api is healthy: each cycle is a think plus the M/M/2 response time, and users / cycle = the rate."""
    users = validate.integer("users", users, low=1)
    rate = validate.positive("load", load) * CAPACITY
    response = theory.mmc_response_time(API_WORKERS, rate, 1 / API_WORK)
    think = users / rate - response
    if think <= 0:
        raise ValueError(f"users must be more than {rate * response:.1f} to offer {load:.0%} of capacity, got {users}")
    return think


def storm_rate(users: int, think: float, *, attempts: int = ATTEMPTS, timeout: float = TIMEOUT,
               backoff=None) -> float:
    """Attempts a second that ``users`` closed-loop users send when every attempt times out: each request
    then takes ``attempts`` timeouts plus the backoff's mean waits (full jitter: half of each ceiling),
    then a think; open-loop arrivals have no such bound."""
    waits = 0.0
    if backoff is not None:
        base, cap = backoff
        waits = sum(min(cap, base * 2 ** n) / 2 for n in range(1, attempts))
    return attempts * users / (attempts * timeout + waits + think)


def metastable_run(load: float = META_LOAD, trigger: float = TRIGGER, timeout: float = TIMEOUT, *,
                   attempts: int = ATTEMPTS, jitter: bool = False, budget: bool = False, throttle: bool = False,
                   throttle_window: float = THROTTLE_WINDOW, factor: float = TRIGGER_FACTOR,
                   start: float = MAIN["start"], duration: float = MAIN["duration"], window=MAIN["window"],
                   users: int | None = None, backoff=JITTER, seed: int = 1) -> MetastableResult:
    """The api (40 req/s) at ``load`` of its capacity; clients wait ``timeout`` seconds per attempt and
    make up to ``attempts`` attempts, at once (or after full-jitter backoff with ``jitter``, ``backoff``
    = (base, cap)); the queue is unbounded and timed-out work is still done. For ``trigger`` seconds
    from ``start`` every request takes ``factor`` times longer. Protection: a 10% :class:`RetryBudget`
    (``budget``) and/or an :class:`AdaptiveThrottle` (``throttle``) that remembers ``throttle_window``
    seconds. Arrivals are open-loop (Poisson), or with ``users`` a closed loop: each user waits for its
    answer, thinks (:func:`think_time`, exponential) and sends the next request."""
    load = validate.positive("load", load)
    trigger = validate.non_negative("trigger", trigger)
    world = World(seed=seed)
    api = overload_api(world)
    # nothing reads the policies' logs of each retry, wait and refusal here (the counts stay exact):
    # kept empty, they leave the garbage collector fewer objects to sweep in a storm's thousands of attempts
    quiet = dict(log_limit=0)
    backoff = FullJitter(*backoff, **quiet) if jitter else ConstantBackoff(0.0, **quiet)
    client = Client(world, api, name="users->api", timeout=timeout,
                    retry=RetryPolicy(attempts, backoff, **quiet) if attempts > 1 else None,
                    budget=RetryBudget(ratio=BUDGET_RATIO, **quiet) if budget else None,
                    throttle=AdaptiveThrottle(k=THROTTLE_K, window=throttle_window, **quiet) if throttle else None)
    if trigger > 0:
        LatencySpike(api, [(start, start + trigger)], factor=factor)
    probe = ServiceProbe(world, api, PROBE_EVERY)
    if users is None:
        OpenLoop(world, client, load * CAPACITY, duration=duration)
    else:
        ClosedLoop(world, client, users=users, think=think_time(users, load), duration=duration)
    label = ("adaptive throttle" if throttle else "retry budget" if budget else
             "no retries" if attempts == 1 else "retries with backoff" if jitter else "retries, no budget")
    if users is not None:
        label += f", {users} users"
    # run on until every request sent has had all its attempts, so none is left unfinished
    drain = attempts * timeout + (attempts - 1) * (backoff.cap if jitter else 0.0)
    return MetastableResult(world.run(until=duration + drain), probe, (start, start + trigger), tuple(window),
                            load, label, client, factor)


def timeout_backlog(factor: float = 1.0) -> float:
    """Requests ahead of an attempt that make its wait outlast the timeout: a timeout's worth of work
    at the api's rate, which a trigger that makes every request ``factor`` times slower divides."""
    return TIMEOUT * CAPACITY / validate.positive("factor", factor)


#: Requests ahead of an attempt that make its wait outlast the timeout, once the api is healthy.
TIMEOUT_BACKLOG = timeout_backlog()


def backlog_estimate(load: float, trigger: float = TRIGGER, factor: float = TRIGGER_FACTOR) -> float:
    """Requests the trigger leaves queued (a fluid estimate, no retries): arrivals minus what the slowed
    api serves (a ``factor``-th of its capacity), over ``trigger`` seconds."""
    return max(0.0, load * CAPACITY - CAPACITY / factor) * trigger


def peak_backlog(load: float, trigger: float = TRIGGER, *, seed: int) -> int:
    """The most requests at the api during the trigger, in the sweeps' short run without retries
    (one attempt each): the backlog the trigger itself builds, before any retry adds to it."""
    res = metastable_run(load, trigger, attempts=1, seed=seed, **SHORT)
    t, q = np.asarray(res.queue.times), res.queue.in_system
    lo, hi = res.trigger
    return int(q[(t >= lo) & (t <= hi + PROBE_EVERY)].max())


def name_trigger(ax, res: MetastableResult):
    """Relabel ``ax``'s shaded latency spike for what it is here, the trigger (not the fault's kind)."""
    for patch in ax.patches:
        if patch.get_label() == "latency spike":
            patch.set_label(f"trigger: work {res.factor:g}x slower")
    return ax


def draw_availability(ax, res: MetastableResult, *, bin_width: float = 1.0, color=None, label=None,
                      shade: bool = True):
    """Availability over time (by request start), the trigger shaded and the judged window bracketed."""
    plots.availability_over_time(res.results, bin_width=bin_width, ax=ax, shade=shade, color=color,
                                 label=label or res.label)
    name_trigger(ax, res)
    ax.set_xlim(0, res.window[1])                 # the requests sent; after that the run only drains
    if shade:
        lo, hi = res.window
        # the arrow's heads on the window's very ends (unshrunk: no path to cut, a tenth of a redraw less)
        ax.annotate("", (lo, 50), (hi, 50),
                    arrowprops=dict(arrowstyle="<->", color="gray", lw=1, shrinkA=0, shrinkB=0))
        ax.text((lo + hi) / 2, 53, "judged here", ha="center", va="bottom", fontsize=8, color="gray")
    ax.set_ylabel("requests answered (%)")
    return ax


def _metastable_compute(load_pct, trigger, timeout, budget, *, seed):
    return metastable_run(load_pct / 100, trigger, timeout, budget=budget, seed=seed, **DASH)


def _metastable_draw(ax, res: MetastableResult):
    draw_availability(ax, res, color=GOOD if res.after > 0.95 else BAD, label="answered")
    ax.xaxis.set_major_locator(MultipleLocator(5))      # few tick labels: text is what a redraw costs
    ax.yaxis.set_major_locator(MultipleLocator(25))
    if not ax.get_subplotspec().colspan.start:
        # in the band the lines leave empty (between the trigger's fall and the judged window's 100%)
        ax.legend(loc="center left", bbox_to_anchor=(0.35, 0.7), fontsize=8)
    else:
        ax.set_ylabel("")


def _metastable_summary(res: MetastableResult) -> str:
    lo, hi = res.window
    state = "recovered" if res.after > 0.95 else "still failed" if res.after < 0.05 else "partly"
    return (f"{lo:g}-{hi:g} s: {res.after:.0%} answered ({state}), "
            f"{res.amplification_in(lo, hi):.2f} attempts/request")


@dashboard("08_metastable/metastable")
def metastable_dashboard(seed: int = 7) -> Dashboard:
    """Base load, trigger length and timeout; without / with a 10% retry budget."""
    return Dashboard(
        lambda load_pct, trigger, timeout, budget: _metastable_compute(load_pct, trigger, timeout, budget,
                                                                       seed=seed),
        _metastable_draw,
        [Slider("load_pct", "base load", "% of capacity", 30, 90, META_LOAD * 100, step=5),
         Slider("trigger", "trigger: 3x slower for", "s", 0.0, 6.0, TRIGGER, step=0.5),
         Slider("timeout", "timeout per attempt", "s", 0.2, 2.0, TIMEOUT, step=0.1)],
        variants={"3 attempts, no budget": {"budget": False},
                  f"3 attempts, {BUDGET_RATIO:.0%} retry budget": {"budget": True}},
        summary=_metastable_summary, figsize=(9.0, 3.0),
        title=f"Metastable failure: {CAPACITY:.0f} req/s service, trigger from {DASH['start']:g} s")


# --- 2. where the edge is: sweeps over seeds ---------------------------------------------------------
def edge_run(load: float = META_LOAD, trigger: float = TRIGGER, *, seed: int, budget: bool = False,
             timeout: float = TIMEOUT, long: bool = False) -> dict:
    """The short run (:data:`SHORT`; with ``long``, the notebook's 90-s main run) as a sweep's summary
    (:func:`resilience_sim.sweeps.sweep`): availability well after the trigger (``after``), and
    whether the run stayed failed (under 5% answered) or recovered (over 95%)."""
    after = metastable_run(load, trigger, timeout, budget=budget, seed=seed, **(MAIN if long else SHORT)).after
    return {"after": float(after), "failed": bool(after < 0.05), "recovered": bool(after > 0.95)}


@dataclass
class EdgeCurve:
    """How often the service stayed failed, for each value of one knob (``trigger`` or ``load``),
    over several seeds of the short run (:data:`SHORT`)."""
    knob: str
    values: np.ndarray
    after: np.ndarray          # (seeds, values): availability well after the trigger
    budget: bool
    seeds: tuple

    @property
    def failed_share(self) -> np.ndarray:
        """For each value, the share of seeds still failed (< 5% answered) well after the trigger."""
        return (self.after < 0.05).mean(axis=0)

    @property
    def recovered_share(self) -> np.ndarray:
        """For each value, the share of seeds back to normal (> 95% answered) well after the trigger."""
        return (self.after > 0.95).mean(axis=0)

    def never_tipped(self) -> float:
        """The largest value at and below which no seed stayed failed."""
        tipped = np.flatnonzero(self.failed_share > 0)
        return float(self.values[tipped[0] - 1]) if tipped.size else float(self.values[-1])

    def always_tipped(self) -> float | None:
        """The smallest value at and above which every seed stayed failed (None if there is none)."""
        failed = self.failed_share == 1.0
        for i in range(len(self.values)):
            if failed[i:].all():
                return float(self.values[i])
        return None


def edge_curve(knob: str, values, *, seeds, budget: bool = False, load: float = META_LOAD,
               trigger: float = TRIGGER, timeout: float = TIMEOUT) -> EdgeCurve:
    """Run the short scenario (:data:`SHORT`) for each value of ``knob`` ("trigger" in seconds or "load"
    as a share of capacity), the other one fixed, once per seed: the same ``seeds`` at every value
    (common random numbers), so a seed's row reads as one system under a growing trigger."""
    validate.choice("knob", knob, ("trigger", "load"))
    values, seeds = np.asarray(values, dtype=float), tuple(seeds)
    fixed = {"load": load, "trigger": trigger, "budget": budget, "timeout": timeout}
    del fixed[knob]
    table = sweep(edge_run, [{knob: float(v), **fixed} for v in values], seeds=seeds, progress=False)
    after = table.column("after").reshape(len(values), len(seeds)).T          # (seeds, values)
    return EdgeCurve(knob, values, after, budget, seeds)


def draw_edge_band(ax, failed: Summary, *, color=BAD, label: str = "3 attempts, no budget"):
    """The share of runs still failed well after the trigger (``table.summary("failed")``), against
    the trigger's length, with its Wilson 95% band."""
    sweep_plots.band(failed, "trigger", ax=ax, scale=100, color=color, label=label)
    ax.set_ylim(-5, 105)
    ax.set_xlabel("trigger: 3x slower for (s)")
    ax.set_ylabel(f"runs still failed (% of {failed.n.max()} a length)")
    return ax


def draw_edge_map(ax, failed: Summary):
    """The share of runs still failed (``table.summary("failed")`` of a load x trigger sweep) as a heat
    map: base load across, trigger length up."""
    sweep_plots.heat_map(failed, "load", "trigger", ax=ax, xfmt=lambda v: f"{v:.0%}", yfmt=lambda v: f"{v:g} s",
                         colorbar=f"runs still failed (% of {failed.n.max()})")
    ax.set_xlabel("base load (% of capacity)")
    ax.set_ylabel("trigger: 3x slower for")
    return ax


def draw_edge(ax, without: EdgeCurve, with_budget: EdgeCurve | None = None):
    """The share of runs still failed well after the trigger, against the swept knob."""
    scale = 100 if without.knob == "load" else 1
    for curve, color, label in ((without, BAD, "3 attempts, no budget"),
                                (with_budget, GOOD, f"3 attempts, {BUDGET_RATIO:.0%} retry budget")):
        if curve is not None:
            ax.plot(curve.values * scale, curve.failed_share * 100, "o-", color=color, label=label, ms=7)
    ax.set_ylim(-5, 105)
    ax.set_xlabel("trigger length (s)" if without.knob == "trigger" else "base load (% of capacity)")
    ax.set_ylabel(f"runs still failed (% of {len(without.seeds)})")
    return ax
