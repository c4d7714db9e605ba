"""07 Bulkheads, load shedding and metastable failure: too much work, and who gets to do it.

* **Bulkhead** (:func:`shop_run`): an api with a few workers serves two routes, a product page that
  calls a fast catalog and a reviews page that calls a reviews service; reviews turns slow, its calls
  hold the workers, and without a :class:`~resilience_sim.policies.Bulkhead` the product page fails too.
* **Overload** (:func:`overload_run`): a service offered 150% of what it can do; without shedding its
  queue grows without bound and every request times out at the client; a
  :class:`~resilience_sim.policies.LoadShedder` keeps goodput near capacity, a
  :class:`~resilience_sim.policies.TokenBucket` too, until the server slows down under it.
* **Metastable failure** (:func:`metastable_run`, :func:`edge_curve`): clients retry timed-out calls at
  once; a short latency spike pushes queueing delay past the timeout, retries triple the load and the
  service stays failed after the spike ends; a retry budget or adaptive throttling lets it recover.

Every run is small (a few thousand requests) so that the dashboards redraw in well under 200 ms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from matplotlib.ticker import MultipleLocator

from ..core import validate
from ..core.distributions import Exponential
from ..metrics import Results
from ..metrics.windows import availability_between
from ..policies import (AdaptiveThrottle, Bulkhead, ConstantBackoff, FullJitter, LoadShedder, RetryBudget,
                        RetryPolicy, TokenBucket)
from ..sim.client import Client
from ..sim.faults import GrayFailure, LatencySpike
from ..sim.probes import ServiceProbe
from ..sim.service import Service
from ..sim.workload import OpenLoop
from ..sim.world import World
from ..views import plots
from ..views.dashboard import Dashboard, Slider
from . import dashboard

GOOD, BAD = "tab:blue", "tab:red"
#: Seconds between two samples of a server's queue.
PROBE_EVERY = 0.25


# --- 1. one slow dependency and the bulkhead that contains it ----------------------------------------
#: The api's workers (its threads), shared by every route.
SHOP_WORKERS = 8
#: Requests per second on each route.
PRODUCT_RATE, REVIEWS_RATE = 30.0, 20.0
#: Work at each dependency: mean seconds (exponential).
CATALOG_WORK, REVIEWS_WORK = 0.010, 0.020
#: The api gives each dependency call this long; users (their browser, the load balancer) wait this long.
DEP_TIMEOUT, USER_TIMEOUT = 1.0, 2.0
#: During the incident every reviews call takes this many seconds more.
REVIEWS_SLOW = 3.0
#: Slots of the reviews bulkhead: at most this many workers may be waiting on reviews at once.
REVIEWS_BULKHEAD = 4


@dataclass
class ShopResult:
    """A run of the shop: its results, with routes "product" and "reviews"; requests arrive for
    ``duration`` seconds and the run goes on until every one has ended."""
    results: Results = field(repr=False)
    duration: float
    spike: tuple
    bulkhead: int | None
    slow: float

    def availability(self, route: str, lo: float = 0.0, hi: float | None = None) -> float:
        """The share of ``route``'s requests started in ``[lo, hi)`` (default ``hi``: the end of the
        run) that got an answer (NaN: none started)."""
        return availability_between(self.results.only(route), lo, self.results.until if hi is None else hi)

    @property
    def during(self) -> tuple:
        """The heart of the incident: the spike minus the users' timeout at each end (at first the
        workers are still filling up; requests that arrive near its end are served after it)."""
        return (self.spike[0] + USER_TIMEOUT, self.spike[1] - USER_TIMEOUT)


def shop_run(bulkhead: int | None = None, *, slow: float = REVIEWS_SLOW, spike=(10.0, 25.0),
             duration: float = 40.0, workers: int = SHOP_WORKERS, product_rate: float = PRODUCT_RATE,
             reviews_rate: float = REVIEWS_RATE, seed: int = 1) -> ShopResult:
    """The api (``workers`` slots) serves "product" (calls catalog) and "reviews" (calls reviews).
    Reviews gets ``slow`` extra seconds a call during ``spike``. ``bulkhead``: slots of a
    :class:`Bulkhead` on the api's client for reviews (None: no bulkhead)."""
    world = World(seed=seed)
    catalog = Service(world, "catalog", capacity=64, latency=Exponential(CATALOG_WORK))
    reviews = Service(world, "reviews", capacity=64, latency=Exponential(REVIEWS_WORK))
    to_catalog = Client(world, catalog, name="api->catalog", timeout=DEP_TIMEOUT)
    to_reviews = Client(world, reviews, name="api->reviews", timeout=DEP_TIMEOUT,
                        bulkhead=None if bulkhead is None else Bulkhead(bulkhead))

    def handler(svc, req):                       # runs while holding one of the api's workers
        return (yield from svc.ask("catalog" if req.route == "product" else "reviews", req))

    api = Service(world, "api", capacity=workers, latency=0.0, dependencies=[to_catalog, to_reviews],
                  handler=handler)
    users = Client(world, api, name="users->api", timeout=USER_TIMEOUT)
    if slow > 0:
        LatencySpike(reviews, [spike], extra=slow)
    OpenLoop(world, users, product_rate, duration=duration, name="product")
    OpenLoop(world, users, reviews_rate, duration=duration, name="reviews")
    results = world.run(until=duration + USER_TIMEOUT)    # users give up by then: every request has ended
    return ShopResult(results, duration, tuple(spike), bulkhead, slow)


def draw_routes(ax, res: ShopResult, *, bin_width: float = 1.0):
    """Each route's availability over time (1-second bins by request start), the spike shaded."""
    for name, color, width in (("product", GOOD, 3.5), ("reviews", "tab:orange", 1.5)):
        series = res.results.only(name).between(0.0, res.duration).timeseries(bin_width)
        ax.step(series["t"], series["availability"] * 100, where="post", color=color, lw=width,
                label=f"{name} page")                    # product drawn wide, under reviews
    if res.slow > 0:
        plots.shade_faults(ax, res.results)
    ax.set_xlim(0, res.duration)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("time (s)")
    if not ax.get_subplotspec().colspan.start:
        ax.set_ylabel("requests answered (%)")
        ax.legend(loc="lower left", fontsize=8)
    return ax


def _shop_summary(res: ShopResult) -> str:
    lo, hi = res.during
    return (f"during the spike: product {res.availability('product', lo, hi):.0%}, "
            f"reviews {res.availability('reviews', lo, hi):.0%} answered")


#: The dashboard's default slowdown: enough to swamp the shared pool, where a small step still shows.
DASHBOARD_SLOW = 0.85


@dashboard("07_overload/bulkhead")
def bulkhead_dashboard(seed: int = 7) -> Dashboard:
    """How slow reviews gets, and the bulkhead's size; without / with the bulkhead."""
    def compute(slow, slots, with_bulkhead):
        return shop_run(slots if with_bulkhead else None, slow=slow, spike=(1.0, 9.0), duration=10.0,
                        seed=seed)
    return Dashboard(
        compute, draw_routes,
        # the telling range is below the 1-s timeout: past it every reviews call times out the same way
        [Slider("slow", "reviews slower by", "s", 0.0, 1.5, DASHBOARD_SLOW, step=0.05),
         Slider("slots", "reviews bulkhead size", "workers", 1, SHOP_WORKERS, REVIEWS_BULKHEAD, integer=True)],
        variants={"without a bulkhead": {"with_bulkhead": False},
                  "with a bulkhead on reviews": {"with_bulkhead": True}},
        summary=_shop_summary, figsize=(9.0, 3.0),
        title="Slow reviews, 8 shared workers: who still gets answered? (reviews slow from 1 s to 9 s)")


# --- 2. overload: shedding and rate limiting --------------------------------------------------------
#: The service of sections 2 and 3: two workers, 50 ms of work a request (exponential): 40 req/s.
API_WORKERS, API_WORK = 2, 0.050
CAPACITY = API_WORKERS / API_WORK
#: How long the clients wait for one attempt.
TIMEOUT = 1.0
#: The load shedder's bound on the oldest request's queueing delay.
MAX_QUEUE_DELAY = 0.1


@dataclass
class OverloadResult:
    """A run of one service offered ``rate`` requests a second, and the queue it built."""
    results: Results = field(repr=False)
    queue: ServiceProbe = field(repr=False)
    rate: float
    capacity: float
    label: str
    service: Service = field(repr=False)

    def goodput(self, lo: float = 5.0, hi: float | None = None) -> float:
        """Answered requests per second among those that started in ``[lo, hi)`` (default: to the end)."""
        return self.results.between(lo, self.results.until if hi is None else hi).throughput()

    def p99(self, lo: float = 5.0) -> float:
        """99th percentile latency of answered requests (NaN if none was answered)."""
        lat = self.results.between(lo, self.results.until).latencies()
        return float(np.percentile(lat, 99)) if lat.size else math.nan

    def share(self, reason: str) -> float:
        """The share of requests that ended for ``reason`` ("shed", "rate limited", "timeout")."""
        return self.results.reasons().get(reason, 0) / max(1, len(self.results))


def overload_run(load: float = 1.5, *, max_queue_delay: float | None = None, max_queue: int | None = None,
                 bucket_rate: float | None = None, bucket_burst: float = 10.0, slowdown: float = 1.0,
                 slow_from: float = 15.0, timeout: float = TIMEOUT, duration: float = 30.0,
                 seed: int = 1) -> OverloadResult:
    """The api (40 req/s) offered ``load`` times its capacity by users who wait ``timeout`` seconds
    and do not retry. Optional server-side protection: a :class:`LoadShedder` (``max_queue_delay``,
    ``max_queue``) or a :class:`TokenBucket` (``bucket_rate``, ``bucket_burst``). With ``slowdown``
    > 1 the server turns that many times slower from ``slow_from`` on (a gray failure)."""
    load = validate.positive("load", load)
    world = World(seed=seed)
    shedder = (LoadShedder(max_queue=max_queue, max_queue_delay=max_queue_delay)
               if max_queue is not None or max_queue_delay is not None else None)
    bucket = None if bucket_rate is None else TokenBucket(bucket_rate, bucket_burst)
    api = Service(world, "api", capacity=API_WORKERS, latency=Exponential(API_WORK), shedder=shedder,
                  rate_limit=bucket)
    users = Client(world, api, name="users->api", timeout=timeout)
    if slowdown > 1.0:
        GrayFailure(api, [(slow_from, duration)], slowdown=slowdown)
    probe = ServiceProbe(world, api, PROBE_EVERY)
    OpenLoop(world, users, load * CAPACITY, duration=duration)
    label = ("load shedder" if shedder else "token bucket" if bucket else "no protection")
    return OverloadResult(world.run(until=duration), probe, load * CAPACITY, CAPACITY, label, api)


def draw_goodput(ax, res: OverloadResult, *, bin_width: float = 1.0, label: str | None = None, color=None,
                 lines: bool = True):
    """Answered requests per second (by start time); with ``lines``, the offered load and the capacity
    dashed, and any gray failure shaded."""
    series = res.results.timeseries(bin_width)
    ax.step(series["t"], series["throughput"], where="post", label=label or res.label, color=color)
    if lines:
        ax.axhline(res.rate, color="gray", ls=":", lw=1, label=f"offered ({res.rate:.0f}/s)")
        ax.axhline(res.capacity, color="k", ls="--", lw=1, label=f"capacity ({res.capacity:.0f}/s)")
        plots.shade_faults(ax, res.results)
    ax.set_xlim(0, res.results.until)
    ax.set_ylim(0, max(res.rate, res.capacity) * 1.5)    # headroom for a legend above the data
    ax.set_xlabel("time (s)")
    ax.set_ylabel("goodput (answered req/s)")
    return ax


def draw_queue(ax, res, *, label: str | None = None, color=None, shade: bool = False):
    """Requests at the server (being served or waiting) over time; ``shade``: faults shaded."""
    ax.plot(res.queue.times, res.queue.in_system, label=label, color=color)
    if shade:
        plots.shade_faults(ax, res.results)
    ax.set_xlim(0, res.results.until)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("requests at the server")
    return ax


def _shedding_compute(load_pct, delay_ms, shed, *, seed):
    return overload_run(load_pct / 100, max_queue_delay=delay_ms / 1000 if shed else None, duration=15.0,
                        seed=seed)


def _shedding_draw(ax, res: OverloadResult):
    draw_goodput(ax, res, color=BAD if res.label == "no protection" else GOOD)
    ax.xaxis.set_major_locator(MultipleLocator(5))
    if not ax.get_subplotspec().colspan.start:
        ax.legend(loc="upper center", fontsize=8, ncols=3)
    else:
        ax.set_ylabel("")


def _shedding_summary(res: OverloadResult) -> str:
    p99 = res.p99()
    p99_text = "nothing answered" if math.isnan(p99) else f"p99 {p99 * 1000:.0f} ms"
    return f"goodput {res.goodput():.0f}/s, {p99_text}, {res.share('shed'):.0%} shed"


@dashboard("07_overload/shedding")
def shedding_dashboard(seed: int = 7) -> Dashboard:
    """Offered load and the shedder's queueing-delay bound; without / with the shedder."""
    return Dashboard(
        lambda load_pct, delay_ms, shed: _shedding_compute(load_pct, delay_ms, shed, seed=seed),
        _shedding_draw,
        [Slider("load_pct", "offered load", "% of capacity", 50, 250, 150, step=5),
         Slider("delay_ms", "shed when oldest waited", "ms", 10, 1000, MAX_QUEUE_DELAY * 1000, step=10)],
        variants={"without shedding": {"shed": False}, "with a load shedder": {"shed": True}},
        summary=_shedding_summary, figsize=(9.0, 3.0),
        title=f"A service that can answer {CAPACITY:.0f} req/s; users give up after {TIMEOUT:g} s")


# --- 3. metastable failure ---------------------------------------------------------------------------
#: Base load as a share of capacity, and the trigger: every request takes three times as long for 4 s.
META_LOAD, TRIGGER, TRIGGER_FACTOR = 0.65, 4.0, 3.0
#: Attempts per request (the first counts), and the retry budget's share of requests.
ATTEMPTS, BUDGET_RATIO = 3, 0.1
#: The adaptive throttle: K (the SRE book's 2) and its memory, short to match this fast service.
THROTTLE_K, THROTTLE_WINDOW = 2.0, 5.0
#: The notebook's main run: trigger at 10 s, 90 s in all, "well after" = from 60 s on.
MAIN = dict(start=10.0, duration=90.0, window=(60.0, 90.0))
#: The dashboard's and the sweep's shorter run: trigger at 3 s, 22 s in all, judged from 14 s on
#: (5 s after the longest trigger the dashboard offers, 6 s, has ended).
SHORT = dict(start=3.0, duration=22.0, window=(14.0, 22.0))


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


def metastable_run(load: float = META_LOAD, trigger: float = TRIGGER, timeout: float = TIMEOUT, *,
                   attempts: int = ATTEMPTS, jitter: bool = False, budget: bool = False,
                   throttle: bool = False, factor: float = TRIGGER_FACTOR, start: float = MAIN["start"],
                   duration: float = MAIN["duration"], window=MAIN["window"], seed: int = 1) -> MetastableResult:
    """The api (40 req/s) at ``load`` of its capacity; clients wait ``timeout`` seconds per attempt and
    make up to ``attempts`` attempts, at once (or after full-jitter backoff with ``jitter``); the queue
    is unbounded and timed-out work is still done. For ``trigger`` seconds from ``start`` every request
    takes ``factor`` times longer. Protection: a 10% :class:`RetryBudget` (``budget``) and/or an
    :class:`AdaptiveThrottle` (``throttle``)."""
    load = validate.positive("load", load)
    trigger = validate.non_negative("trigger", trigger)
    world = World(seed=seed)
    api = Service(world, "api", capacity=API_WORKERS, latency=Exponential(API_WORK))
    backoff = FullJitter(base=0.1, cap=2.0) if jitter else ConstantBackoff(0.0)
    client = Client(world, api, name="users->api", timeout=timeout,
                    retry=RetryPolicy(attempts, backoff) if attempts > 1 else None,
                    budget=RetryBudget(ratio=BUDGET_RATIO) if budget else None,
                    throttle=AdaptiveThrottle(k=THROTTLE_K, window=THROTTLE_WINDOW) if throttle else None)
    if trigger > 0:
        LatencySpike(api, [(start, start + trigger)], factor=factor)
    probe = ServiceProbe(world, api, PROBE_EVERY)
    OpenLoop(world, client, load * CAPACITY, duration=duration)
    label = ("adaptive throttle" if throttle else "retry budget" if budget else
             "no retries" if attempts == 1 else "retries with backoff" if jitter else "retries, no budget")
    # run on until every request sent has had all its attempts, so none is left unfinished
    drain = attempts * timeout + (attempts - 1) * (backoff.cap if jitter else 0.0)
    return MetastableResult(world.run(until=duration + drain), probe, (start, start + trigger), tuple(window),
                            load, label, client)


def draw_availability(ax, res: MetastableResult, *, bin_width: float = 1.0, color=None, label=None,
                      shade: bool = True):
    """Availability over time (by request start), the trigger shaded and the judged window bracketed."""
    plots.availability_over_time(res.results, bin_width=bin_width, ax=ax, shade=shade, color=color,
                                 label=label or res.label)
    ax.set_xlim(0, res.window[1])                 # the requests sent; after that the run only drains
    if shade:
        lo, hi = res.window
        ax.annotate("", (lo, 50), (hi, 50), arrowprops=dict(arrowstyle="<->", color="gray", lw=1))
        ax.text((lo + hi) / 2, 53, "judged here", ha="center", va="bottom", fontsize=8, color="gray")
    ax.set_ylabel("requests answered (%)")
    return ax


def _metastable_compute(load_pct, trigger, timeout, budget, *, seed):
    return metastable_run(load_pct / 100, trigger, timeout, budget=budget, seed=seed, **SHORT)


def _metastable_draw(ax, res: MetastableResult):
    draw_availability(ax, res, color=GOOD if res.after > 0.95 else BAD, label="answered")
    ax.xaxis.set_major_locator(MultipleLocator(5))      # few tick labels: text is what a redraw costs
    ax.yaxis.set_major_locator(MultipleLocator(25))
    if not ax.get_subplotspec().colspan.start:
        ax.legend(loc="lower left", fontsize=8)
    else:
        ax.set_ylabel("")


def _metastable_summary(res: MetastableResult) -> str:
    lo, hi = res.window
    state = "recovered" if res.after > 0.95 else "still failed" if res.after < 0.05 else "partly"
    return (f"{lo:g}-{hi:g} s: {res.after:.0%} answered ({state}), "
            f"{res.amplification_in(lo, hi):.2f} attempts/request")


@dashboard("07_overload/metastable")
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
        title=f"Metastable failure: {CAPACITY:.0f} req/s service, trigger from {SHORT['start']:g} s")


@dataclass
class EdgeCurve:
    """How often the service stayed failed, for each value of one knob (``trigger`` or ``load``),
    over several seeds of the dashboard's short run."""
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
    """Run the dashboard's short scenario for each value of ``knob`` ("trigger" in seconds or "load"
    as a share of capacity), the other one fixed, once per seed."""
    validate.choice("knob", knob, ("trigger", "load"))
    values, seeds = np.asarray(values, dtype=float), tuple(seeds)
    after = np.empty((len(seeds), len(values)))
    for i, seed in enumerate(seeds):
        for j, v in enumerate(values):
            kw = {"load": load, "trigger": trigger, knob: float(v)}
            after[i, j] = metastable_run(kw["load"], kw["trigger"], timeout, budget=budget, seed=seed,
                                         **SHORT).after
    return EdgeCurve(knob, values, after, budget, seeds)


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
