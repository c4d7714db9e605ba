"""04 Timeouts and deadlines: a slow dependency ties up its caller, Little's law, sizing a timeout from
percentiles, and deadline propagation through a chain.

* :func:`slow_dependency_run`: an ``api`` with a few slots serves two kinds of requests, pages (its own
  work only) and searches (which call the ``db`` through a client); the db turns slow for a while.
  Without a timeout each search holds a slot for the db's whole latency; with one, for at most the
  timeout. :func:`littles_law_slots` predicts the slots held.
* :func:`dependency_latencies` measures the db's latency distribution; :func:`timeout_tradeoff`
  turns it into false timeouts against slots held for every candidate timeout.
* :func:`chain_run`: user → api → svc → db, each layer with its own timeout, or one deadline
  propagated from the user; counts the work done for users who had already given up.

Times are simulated seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core import theory
from ..core.distributions import LogNormal
from ..metrics import Results
from ..policies import ConstantBackoff, RetryPolicy
from ..sim.client import Client
from ..sim.faults import LatencySpike
from ..sim.probes import ServiceProbe
from ..sim.service import Service, ServiceError
from ..sim.workload import OpenLoop
from ..sim.world import World
from ..views import plots
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import Table

#: The api of section 1: 10 slots, 5 ms of its own work per request, 40 requests per second of which
#: half are searches that need the db and half are pages that never touch it.
API_SLOTS = 10
API_WORK = 0.005
RATE = 40.0
SEARCH_SHARE = 0.5
#: The db when healthy: median 20 ms, a long right tail (p99 about 81 ms).
DB_HEALTHY = LogNormal(0.020, 0.6)
DB_SLOTS = 500
#: Users give up after 2 seconds (the browser's or the load balancer's timeout).
PATIENCE = 2.0
#: The story's slow spell: the db takes an extra second per call from 5 s to 20 s of a 30 s run.
SLOW_EXTRA = 1.0
SLOW_WINDOW = (5.0, 20.0)
DURATION = 30.0
#: The timeout the api puts on db calls in the story: a round 100 ms, five times the healthy median and
#: far below the slow spell's latency (section 4 checks it against the percentiles: it is about p99.6).
TIMEOUT = 0.100
SAMPLE_EVERY = 0.1


# --- section 1: a slow dependency ties up the caller ---------------------------------------------
@dataclass
class SlowDependencyRun:
    """One run of the api and its db: user outcomes, the api's slots over time, every slot hold."""
    results: Results = field(repr=False)
    timeout: float | None
    slots: int
    extra: float
    window: tuple
    t: np.ndarray = field(repr=False)          # sampling times (s)
    busy: np.ndarray = field(repr=False)       # api slots busy at each time
    queue: np.ndarray = field(repr=False)      # requests waiting for an api slot at each time
    holds: np.ndarray = field(repr=False)      # one row per slot hold: arrived, got slot, released, is_search

    def _in(self, col: int, lo: float | None = None, hi: float | None = None) -> np.ndarray:
        lo = self.window[0] + 1.0 if lo is None else lo     # one second to settle into the slow spell
        hi = self.window[1] if hi is None else hi
        return (self.holds[:, col] >= lo) & (self.holds[:, col] < hi)

    @property
    def settled(self) -> tuple:
        """The part of the slow spell measured: from one second after it starts to its end."""
        return (self.window[0] + 1.0, self.window[1])

    def mean_busy(self) -> float:
        """Time-averaged api slots busy during the settled slow spell (from the samples)."""
        lo, hi = self.settled
        sel = (self.t >= lo) & (self.t < hi)
        return float(self.busy[sel].mean())

    def share_saturated(self) -> float:
        """Share of the settled slow spell's samples with every api slot busy."""
        lo, hi = self.settled
        sel = (self.t >= lo) & (self.t < hi)
        return float(np.mean(self.busy[sel] == self.slots))

    def queue_at(self, time: float) -> int:
        return int(self.queue[np.searchsorted(self.t, time, side="right") - 1])

    def api_throughput(self) -> float:
        """Slot holds ended per second during the settled slow spell: what the api got done."""
        lo, hi = self.settled
        return float(np.count_nonzero(self._in(2)) / (hi - lo))

    def arrival_rates(self) -> tuple[float, float]:
        """(searches, pages) per second that got a slot during the settled slow spell."""
        lo, hi = self.settled
        got = self._in(1)
        search = self.holds[:, 3] == 1
        return (float(np.count_nonzero(got & search) / (hi - lo)),
                float(np.count_nonzero(got & ~search) / (hi - lo)))

    def mean_holds(self) -> tuple[float, float]:
        """(searches, pages) mean seconds a slot was held, for holds that began in the settled spell."""
        got = self._in(1)
        search = self.holds[:, 3] == 1
        held = self.holds[:, 2] - self.holds[:, 1]
        return float(held[got & search].mean()), float(held[got & ~search].mean())

    def page_waits(self, lo: float | None = None, hi: float | None = None) -> np.ndarray:
        """Seconds pages waited for a slot, for pages that arrived in [lo, hi) (default: settled spell)."""
        arrived = self._in(0, lo, hi) & (self.holds[:, 3] == 0)
        return self.holds[arrived, 1] - self.holds[arrived, 0]

    def answered_in_spell(self) -> float:
        """Share of users whose request started in the settled slow spell and got an answer."""
        return self.results.between(*self.settled).request_availability()


def slow_dependency_run(seed: int, *, timeout: float | None = None, extra: float = SLOW_EXTRA,
                        slots: int = API_SLOTS, rate: float = RATE, window=SLOW_WINDOW,
                        duration: float = DURATION, patience: float = PATIENCE,
                        every: float = SAMPLE_EVERY) -> SlowDependencyRun:
    """The api (``slots`` slots) under ``rate`` requests per second, half of them searches that call the db
    through a client with ``timeout`` (None: no timeout); the db takes ``extra`` seconds longer inside
    ``window``. Users give up after ``patience`` seconds (the api keeps working on their requests)."""
    world = World(seed)
    env = world.env
    db = Service(world, "db", capacity=DB_SLOTS, latency=DB_HEALTHY)
    if extra > 0:
        LatencySpike(db, [tuple(window)], extra=extra)
    to_db = Client(world, db, name="api->db", timeout=timeout)
    route = world.rng("api/route")
    holds = []

    def handler(svc, req):
        got = env.now
        search = route.random() < SEARCH_SHARE
        try:
            yield env.timeout(API_WORK)
            if search:
                return (yield from svc.ask("db", req))
            return None
        finally:
            holds.append((req.start, got, env.now, 1.0 if search else 0.0))

    api = Service(world, "api", capacity=slots, dependencies=[to_db], handler=handler)
    browser = Client(world, api, name="user", timeout=patience)
    seen = ServiceProbe(world, api, every, duration)
    OpenLoop(world, browser, rate, duration=duration)
    results = world.run(until=duration)
    return SlowDependencyRun(results, timeout, slots, extra, tuple(window), np.array(seen.times),
                             np.array(seen.busy), np.array(seen.waiting),
                             np.array(holds, dtype=float).reshape(-1, 4))


def littles_law_slots(*, rate: float = RATE, search_share: float = SEARCH_SHARE, extra: float = SLOW_EXTRA,
                      timeout: float | None = None) -> float:
    """Slots the api needs, by Little's law (L = λW), while the db is slow by ``extra`` seconds:
    searches hold a slot for the api's work plus the db call (cut at ``timeout``), pages for the api's
    work only. A result above the api's slots means it cannot keep up: the queue grows."""
    limit = math.inf if timeout is None else timeout
    if extra >= limit:
        call = limit
    else:   # the db's latency is its healthy latency plus extra, cut at the timeout
        call = extra + theory.capped_mean(DB_HEALTHY, limit - extra)
    return rate * search_share * (API_WORK + call) + rate * (1 - search_share) * API_WORK


def busy_sd(*, rate: float = RATE, search_share: float = SEARCH_SHARE, hold: float, length: float) -> float:
    """One standard deviation of the time-averaged busy slots over ``length`` seconds, when they are not
    all busy: an infinite-server queue (M/G/∞) has var ≈ Σ λ_k E[S_k²] / length. Searches hold a slot
    for about ``hold`` seconds, pages for the api's 5 ms."""
    second_moment = rate * search_share * hold ** 2 + rate * (1 - search_share) * API_WORK ** 2
    return math.sqrt(second_moment / length)


def saturated_throughput(*, slots: int = API_SLOTS, search_share: float = SEARCH_SHARE,
                         extra: float = SLOW_EXTRA, length: float = 14.0) -> tuple[float, float]:
    """With every slot always busy, requests finished per second = slots / mean hold (Little's law read
    the other way round), and one standard deviation of that rate measured over ``length`` seconds.

    Each slot is then a renewal process whose holds are searches (5 ms + db) with probability
    ``search_share`` and pages (5 ms) otherwise; n renewals over T seconds have a variance of
    T·var(hold)/mean(hold)³ per slot.
    """
    search = API_WORK + extra + DB_HEALTHY.mean
    search_var = DB_HEALTHY.mean ** 2 * (math.exp(DB_HEALTHY.sigma ** 2) - 1)
    mean = search_share * search + (1 - search_share) * API_WORK
    second = search_share * (search_var + search ** 2) + (1 - search_share) * API_WORK ** 2
    var = second - mean ** 2
    return slots / mean, math.sqrt(slots * length * var / mean ** 3) / length


def draw_slots(ax, run: SlowDependencyRun, *, legend: bool = True, ymax: float = 2000):
    """The api's busy slots and its waiting queue over time, y linear up to the slots and logarithmic
    above (so 3 busy slots and 300 waiting requests both show), the slow spell shaded."""
    ax.axvspan(*run.window, color="tab:orange", alpha=0.15, lw=0, label="db slow")
    ax.fill_between(run.t, run.busy, step="post", color="tab:blue", alpha=0.45, lw=0, label="slots busy")
    ax.step(run.t, run.queue, where="post", color="tab:red", lw=1.2, label="waiting for a slot")
    ax.axhline(run.slots, color="k", ls="--", lw=0.9, label=f"{run.slots} slots")
    ax.set_yscale("symlog", linthresh=run.slots, linscale=1.5)
    plots.fixed_ticks(ax.yaxis, [0, run.slots] + [v for v in (100, 1000) if v > run.slots])
    ax.set_ylim(0, ymax)
    ax.set_xlim(0, run.results.until)
    ax.set_xlabel("time (s)")
    if ax.get_subplotspec() is None or ax.get_subplotspec().colspan.start == 0:
        ax.set_ylabel("requests at the api")
    if legend:
        ax.legend(loc="upper left", fontsize=7, frameon=False, ncols=2)
    return ax


# --- the dashboard -------------------------------------------------------------------------------
#: The dashboard's run: the db slow for 8 s from 2 s on, then 4 s in which the api's queue drains (with
#: 2 slots and no timeout it is empty again by 13.7 s; with the db 3 s slower too, it is still draining
#: at the end). Short, to redraw at once.
DASH_DURATION, DASH_WINDOW = 14.0, (2.0, 10.0)


def _slow_compute(slow_s: float, timeout_ms: float, slots: int, with_timeout: bool = True, seed: int = 404):
    return slow_dependency_run(seed, timeout=timeout_ms / 1000 if with_timeout else None, extra=slow_s,
                               slots=int(slots), window=DASH_WINDOW, duration=DASH_DURATION)


def _slow_draw(ax, run):
    draw_slots(ax, run, legend=run.timeout is None)


def _slow_summary(run) -> str:
    waits = run.page_waits()
    wait = f"{1000 * np.percentile(waits, 99):.0f} ms" if waits.size else "–"
    return (f"slow spell: answered <b>{run.answered_in_spell():.0%}</b>, api done "
            f"{run.api_throughput():.0f} req/s, slots busy {run.mean_busy():.1f} of {run.slots}, "
            f"pages waited p99 {wait}")


@dashboard("04_timeouts/slow_dependency")
def slow_dependency_dashboard() -> Dashboard:
    """The db's latency while slow, the api's timeout on db calls and its slots; without / with the timeout."""
    return Dashboard(
        _slow_compute, _slow_draw,
        [Slider("slow_s", "db latency while slow (+)", "s", 0.0, 3.0, SLOW_EXTRA, step=0.05),
         Slider("timeout_ms", "timeout on db calls", "ms", 20, 1000, TIMEOUT * 1000, step=10),
         Slider("slots", "api slots", "", 2, 40, API_SLOTS, integer=True)],
        variants={"without a timeout": {"with_timeout": False}, "with a timeout": {"with_timeout": True}},
        summary=_slow_summary, figsize=(9.0, 3.2),
        title=f"An api taking {RATE:.0f} requests/s, half of them searches calling a db that turns slow "
              f"from {DASH_WINDOW[0]:.0f} s to {DASH_WINDOW[1]:.0f} s (users give up after {PATIENCE:.0f} s)")


# --- section 4: choosing a timeout from percentiles -----------------------------------------------
def dependency_latencies(seed: int, *, calls: int = 20000, dist: LogNormal = DB_HEALTHY) -> np.ndarray:
    """Latencies (s) of ``calls`` calls to a healthy db with room for all of them (no queueing)."""
    world = World(seed)
    db = Service(world, "db", capacity=DB_SLOTS, latency=dist)
    OpenLoop(world, db, 200.0, requests=calls)
    return world.run(until=calls / 200.0 * 2 + 10).latency.copy()


@dataclass
class Tradeoff:
    """For each candidate timeout: the share of healthy calls it would cut (false timeouts) and the
    api slots held by searches when the db is healthy and when it hangs."""
    timeouts: np.ndarray
    false_timeouts: np.ndarray
    slots_healthy: np.ndarray
    slots_hung: np.ndarray
    percentiles: dict
    slots: int
    search_rate: float

    @property
    def max_timeout(self) -> float:
        """The longest timeout a hung db cannot turn into a full api: slots / search rate - api work."""
        return self.slots / self.search_rate - API_WORK


def timeout_tradeoff(latencies, timeouts=None, *, search_rate: float = RATE * SEARCH_SHARE,
                     slots: int = API_SLOTS) -> Tradeoff:
    """False timeouts and slots held (Little's law) for each timeout, from measured ``latencies``."""
    lat = np.sort(np.asarray(latencies, dtype=float))
    timeouts = np.geomspace(0.005, 2.0, 80) if timeouts is None else np.asarray(timeouts, dtype=float)
    false = 1 - np.searchsorted(lat, timeouts, side="right") / lat.size
    csum = np.concatenate([[0.0], np.cumsum(lat)])
    k = np.searchsorted(lat, timeouts, side="right")
    mean_hold = (csum[k] + timeouts * (lat.size - k)) / lat.size      # E[min(latency, timeout)]
    pct = {p: float(v) for p, v in zip((50, 99, 99.9), np.percentile(lat, [50, 99, 99.9]))}
    return Tradeoff(timeouts, false, search_rate * (API_WORK + mean_hold), search_rate * (API_WORK + timeouts),
                    pct, slots, search_rate)


def draw_tradeoff(ax, tr: Tradeoff):
    """False timeouts (%, left, log) and slots held if the db hangs (right) against the timeout (ms),
    with the sample's measured percentiles (``tr.percentiles``) as dotted lines."""
    ms = tr.timeouts * 1000
    ax.plot(ms, np.maximum(tr.false_timeouts, 1e-5) * 100, color="tab:red", lw=1.8,
            label="false timeouts (healthy calls cut)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-2, 100)
    ax.set_xlabel("timeout on db calls (ms)")
    ax.set_ylabel("false timeouts (% of healthy calls)", color="tab:red")
    for i, (p, v) in enumerate(tr.percentiles.items()):     # measured on the sample, not exact
        ax.axvline(v * 1000, color="tab:gray", ls=":", lw=1,
                   label="measured " + ", ".join(f"p{q:g}" for q in tr.percentiles) if i == 0 else None)
        ax.annotate(f"p{p:g}", (v * 1000, 1.01), xycoords=("data", "axes fraction"), fontsize=8,
                    ha="center", va="bottom", annotation_clip=False)
    right = ax.twinx()
    right.plot(ms, tr.slots_hung, color="tab:blue", lw=1.8, label="slots held if the db hangs")
    right.plot(ms, tr.slots_healthy, color="tab:blue", lw=1.2, ls="--", label="slots held, db healthy")
    right.axhline(tr.slots, color="tab:blue", ls=":", lw=1.2)      # read on the right (blue) axis
    right.annotate(f"all {tr.slots} slots (right axis)", (ms[0] * 1.1, tr.slots * 1.04), fontsize=8,
                   color="tab:blue")
    right.set_ylim(0, tr.slots * 2.5)               # the slots line at 40% of the height: no left tick there
    right.set_ylabel("api slots held by searches", color="tab:blue")
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2,
              fontsize=8, frameon=False)                # below the axes: the curves fill the whole frame
    return ax, right


def timed_out_share(seed: int, timeout: float, *, calls: int = 20000) -> float:
    """Share of ``calls`` healthy db calls that a client with ``timeout`` abandons."""
    world = World(seed)
    db = Service(world, "db", capacity=DB_SLOTS, latency=DB_HEALTHY)
    client = Client(world, db, name="api->db", timeout=timeout)
    OpenLoop(world, client, 200.0, requests=calls)
    results = world.run(until=calls / 200.0 * 2 + 10)
    return results.reasons().get("timeout", 0) / len(results)


# --- section 5: deadline propagation --------------------------------------------------------------
#: The chain's users give up after one second.
CHAIN_PATIENCE = 1.0
#: Each team's own timeouts: api waits up to 3 s for svc; svc tries the db up to 3 times, 0.8 s each.
API_SVC_TIMEOUT = 3.0
SVC_DB_TIMEOUT = 0.8
SVC_DB_ATTEMPTS = 3
#: Own work of api and svc per request (s); the db is slow today: median 0.5 s.
LAYER_WORK = 0.010
DB_SLOW = LogNormal(0.5, 0.6)
LAYERS = ("api", "svc", "db")


@dataclass
class ChainRun:
    """The chain's user outcomes and every layer's work, with what was done after the user gave up."""
    results: Results = field(repr=False)
    propagate: bool
    work: dict = field(repr=False)            # layer -> array of (user start, began, ended)
    started_late: dict                        # layer -> calls that began after the user gave up
    patience: float
    stop_work: bool = True                    # with a deadline: is work in progress stopped at it?

    def busy(self, layer: str) -> float:
        """Seconds of slot time the layer spent on all requests."""
        w = self.work[layer]
        return float((w[:, 2] - w[:, 1]).sum())

    def wasted(self, layer: str) -> float:
        """Seconds of slot time the layer spent after the user had given up."""
        w = self.work[layer]
        return float(np.clip(w[:, 2] - np.maximum(w[:, 1], w[:, 0] + self.patience), 0, None).sum())

    def calls(self, layer: str) -> int:
        return int(self.work[layer].shape[0])


def _layer(log: list, late: dict, patience: float, *, work=None, rng=None, stop_work: bool = True):
    """A handler that honours the request's deadline: it refuses to start once the deadline has passed,
    and, with ``stop_work``, stops its work in progress when the deadline passes; without a propagated
    deadline (``req.deadline`` is infinite) it never stops. A layer with a dependency does its own
    ``LAYER_WORK`` and then asks it; the last one draws its work from ``work``."""
    def handler(svc, req):
        env, name = svc.env, svc.name
        now = env.now
        if now >= req.start + patience:
            late[name] += 1
        if now >= req.deadline:
            raise ServiceError(name, "deadline")
        try:
            own = LAYER_WORK if svc.dependencies else work.sample(rng)
            stop = min(now + own, req.deadline) if stop_work else now + own
            yield env.timeout(stop - now)
            if stop < now + own:
                raise ServiceError(name, "deadline")
            if svc.dependencies:
                return (yield from svc.ask(svc.dependencies[0], req))
            return None
        finally:
            log.append((req.start, now, env.now))
    return handler


def chain_run(seed: int, *, propagate: bool, stop_work: bool = True, rate: float = 20.0, duration: float = 60.0,
              patience: float = CHAIN_PATIENCE) -> ChainRun:
    """user → api → svc → db. Without ``propagate`` the user's client has a ``timeout`` (it stops waiting
    but tells no one); with it, a ``deadline`` that travels down with the request, and every layer
    refuses to start work once it has passed; ``stop_work=False`` keeps only that check, so work already
    started runs to its end (as a handler that never looks at the clock again would)."""
    world = World(seed)
    logs = {name: [] for name in LAYERS}
    late = {name: 0 for name in LAYERS}
    db = Service(world, "db", capacity=DB_SLOTS,
                 handler=_layer(logs["db"], late, patience, work=DB_SLOW, rng=world.rng("db/work"),
                                stop_work=stop_work))
    to_db = Client(world, db, name="svc->db", timeout=SVC_DB_TIMEOUT,
                   retry=RetryPolicy(SVC_DB_ATTEMPTS, ConstantBackoff(0.001)))
    svc = Service(world, "svc", capacity=DB_SLOTS, dependencies=[to_db],
                  handler=_layer(logs["svc"], late, patience, stop_work=stop_work))
    to_svc = Client(world, svc, name="api->svc", timeout=API_SVC_TIMEOUT)
    api = Service(world, "api", capacity=DB_SLOTS, dependencies=[to_svc],
                  handler=_layer(logs["api"], late, patience, stop_work=stop_work))
    user = Client(world, api, name="user", **({"deadline": patience} if propagate else {"timeout": patience}))
    OpenLoop(world, user, rate, duration=duration)
    results = world.run(until=duration + API_SVC_TIMEOUT + 2 * SVC_DB_TIMEOUT * SVC_DB_ATTEMPTS)
    work = {name: np.array(rows, dtype=float).reshape(-1, 3) for name, rows in logs.items()}
    return ChainRun(results, propagate, work, late, patience, stop_work)


def chain_label(run: "ChainRun") -> str:
    """How the run treats the user's deadline, in words."""
    if not run.propagate:
        return "each layer's own timeout"
    return "deadline: no late start, work stopped" if run.stop_work else "deadline: no late start only"


def chain_table(runs) -> Table:
    """One column per run: users answered, calls per layer, db calls begun after the user left, and
    each layer's slot time after the user left (with its share of that layer's busy time)."""
    runs = list(runs)
    rows = [["users answered"] + [f"{r.results.request_availability():.1%}" for r in runs]]
    rows += [[f"{n} calls"] + [f"{r.calls(n)}" for r in runs] for n in LAYERS]
    rows += [["db calls begun after the user left"] + [f"{r.started_late['db']}" for r in runs]]
    rows += [[f"{n} slot time after the user left"]
             + [f"{r.wasted(n):.0f} s ({r.wasted(n) / r.busy(n):.0%} of its busy time)" for r in runs]
             for n in LAYERS]
    headers = [""] + [chain_label(r) for r in runs]
    return Table(headers, rows)


def chain_checks(own: ChainRun, start_only: ChainRun, deadline: ChainRun) -> dict:
    """What section 5 claims of its three runs (each layer's own timeout; the deadline checked before work
    only; checked before and during work), as claim -> (measured, expected, tolerance): each holds when
    ``abs(measured - expected) <= tolerance``. Counts are binomial or Poisson-like: 4 standard deviations."""
    p = theory.survival(DB_SLOW, SVC_DB_TIMEOUT)           # a db call outlasts svc's timeout
    n = len(own.results)
    a = [r.results.request_availability() for r in (own, start_only, deadline)]
    return {
        "no deadline: 1 + p + p² db calls a request": (own.results.calls_per_request("db"), 1 + p + p * p,
                                                        4 / math.sqrt(n)),
        "no deadline: p² of requests begin a db call after the user left": (own.started_late["db"], p * p * n,
                                                                            4 * math.sqrt(p * p * n)),
        "no deadline: about a fifth of the db's work is wasted": (own.wasted("db") / own.busy("db"), 0.225, 0.075),
        "with a deadline no call begins after the user left": (
            sum(r.started_late[name] for r in (start_only, deadline) for name in LAYERS), 0, 0),
        "check 1 alone: api and svc waste nothing": (start_only.wasted("api") + start_only.wasted("svc"), 0.0, 0.0),
        "both checks: no layer works after the user left": (sum(deadline.wasted(name) for name in LAYERS), 0.0, 0.0),
        "with a deadline: 1 + p db calls a request": (deadline.results.calls_per_request("db"), 1 + p,
                                                      4 / math.sqrt(n)),
        "users see the same availability in all three runs": (max(abs(a[0] - a[1]), abs(a[0] - a[2])), 0.0,
                                                              4 * math.sqrt(2 * a[0] * (1 - a[0]) / n)),
    }


def draw_chain_work(ax, runs):
    """Bars: seconds each layer spent after the user gave up, each layer's own timeout vs the deadline."""
    x = np.arange(len(LAYERS))
    width = 0.76 / len(runs)
    for i, run in enumerate(runs):
        values = [run.wasted(n) for n in LAYERS]
        color = "tab:red" if not run.propagate else "tab:green" if run.stop_work else "tab:orange"
        bars = ax.bar(x + (i - (len(runs) - 1) / 2) * width, values, width=width, label=chain_label(run),
                      color=color)
        ax.bar_label(bars, fmt="%.0f s", fontsize=8)
    ax.set_xticks(x, LAYERS)
    ax.set_ylabel("slot time after\nthe user left (s)")
    ax.margins(y=0.15)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return ax
