"""07 Bulkheads, rate limits and load shedding: too much work, and who gets to do it.

* **Bulkhead** (:func:`shop_run`): an api with a few workers serves two routes, a product page that
  calls a fast catalog and a reviews page that calls a reviews service; reviews turns slow, its calls
  hold the workers, and without a :class:`~resilience_sim.policies.Bulkhead` the product page fails too.
* **Overload** (:func:`overload_run`): a service offered 150% of what it can do; without shedding its
  queue grows without bound and every request times out at the client; a
  :class:`~resilience_sim.policies.LoadShedder` keeps goodput near capacity, a
  :class:`~resilience_sim.policies.TokenBucket` too, until the server slows down under it.

The overloaded api (``CAPACITY``, ``TIMEOUT``...) is the one notebook 08 drives into a retry storm; it
lives in :mod:`.common`. Every run is small (a few thousand requests) so that the dashboards redraw in
well under 200 ms.
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
from ..policies import Bulkhead, LoadShedder, TokenBucket
from ..sim.client import Client
from ..sim.faults import GrayFailure, LatencySpike
from ..sim.probes import ServiceProbe
from ..sim.service import Service
from ..sim.workload import OpenLoop
from ..sim.world import World
from ..views import plots
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import (API_WORK, API_WORKERS, BAD, CAPACITY, GOOD, PROBE_EVERY, TIMEOUT,  # noqa: F401
                     draw_queue, overload_api)      # (the notebook's names for the shared api)


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
    # the bulkhead's logs of each refusal and wait are not read here (its counts stay exact): kept empty
    to_reviews = Client(world, reviews, name="api->reviews", timeout=DEP_TIMEOUT,
                        bulkhead=None if bulkhead is None else Bulkhead(bulkhead, log_limit=0))

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
        plots.step_bins(ax, series["t"], series["availability"] * 100, bin_width, color=color, lw=width,
                        label=f"{name} page")            # product drawn wide, under reviews
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


@dashboard("07_bulkheads/bulkhead")
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
# The service of sections 3 and 4 is common.overload_api: two workers, 50 ms of work a request
# (exponential), CAPACITY = 40 req/s; its users wait TIMEOUT = 1 s.
#: The load shedder's bound on the oldest request's queueing delay.
MAX_QUEUE_DELAY = 0.1


@dataclass
class OverloadResult:
    """A run of one service offered ``rate`` requests a second for ``duration`` seconds, and the queue
    it built; the run goes on until every request has ended."""
    results: Results = field(repr=False)
    queue: ServiceProbe = field(repr=False)
    rate: float
    capacity: float
    label: str
    service: Service = field(repr=False)
    duration: float

    def goodput(self, lo: float = 5.0, hi: float | None = None) -> float:
        """Answered requests per second among those that started in ``[lo, hi)`` (default: to ``duration``)."""
        return self.results.between(lo, self.duration if hi is None else hi).throughput()

    def p99(self, lo: float = 5.0) -> float:
        """99th percentile latency of answered requests that started from ``lo`` (NaN if none was answered)."""
        lat = self.results.between(lo, self.duration).latencies()
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
    # nothing reads the logs of each refusal here (the counts stay exact): kept empty, they leave the
    # garbage collector fewer objects after an overloaded run's thousand refusals
    quiet = dict(log_limit=0)
    shedder = (LoadShedder(max_queue=max_queue, max_queue_delay=max_queue_delay, **quiet)
               if max_queue is not None or max_queue_delay is not None else None)
    bucket = None if bucket_rate is None else TokenBucket(bucket_rate, bucket_burst, **quiet)
    api = overload_api(world, shedder=shedder, rate_limit=bucket)
    users = Client(world, api, name="users->api", timeout=timeout)
    if slowdown > 1.0:
        GrayFailure(api, [(slow_from, duration)], slowdown=slowdown)
    probe = ServiceProbe(world, api, PROBE_EVERY)
    OpenLoop(world, users, load * CAPACITY, duration=duration)
    label = ("load shedder" if shedder else "token bucket" if bucket else "no protection")
    results = world.run(until=duration + timeout)       # users give up by then: every request has ended
    return OverloadResult(results, probe, load * CAPACITY, CAPACITY, label, api, duration)


def draw_goodput(ax, res: OverloadResult, *, bin_width: float = 1.0, label: str | None = None, color=None,
                 lines: bool = True):
    """Answered requests per second (by start time); with ``lines``, the offered load and the capacity
    dashed, and any gray failure shaded."""
    series = res.results.between(0.0, res.duration).timeseries(bin_width)
    plots.step_bins(ax, series["t"], series["throughput"], bin_width, label=label or res.label, color=color)
    if lines:
        if math.isclose(res.rate, res.capacity):         # one line, not one hidden under the other
            ax.axhline(res.capacity, color="k", ls="--", lw=1, label=f"offered = capacity ({res.capacity:.0f}/s)")
        else:
            ax.axhline(res.rate, color="gray", ls=":", lw=1, label=f"offered ({res.rate:.0f}/s)")
            ax.axhline(res.capacity, color="k", ls="--", lw=1, label=f"capacity ({res.capacity:.0f}/s)")
        plots.shade_faults(ax, res.results)
    ax.set_xlim(0, res.duration)
    ax.set_ylim(0, max(res.rate, res.capacity) * 1.5)    # headroom for a legend above the data
    ax.set_xlabel("time (s)")
    ax.set_ylabel("goodput (answered req/s)")
    return ax


#: Seconds of the shedding dashboard's run: a third of the story's, enough for goodput to settle (it is
#: measured from 5 s on) and short enough to redraw at once at 250% load.
SHEDDING_DURATION = 10.0


def _shedding_compute(load_pct, delay_ms, shed, *, seed):
    return overload_run(load_pct / 100, max_queue_delay=delay_ms / 1000 if shed else None,
                        duration=SHEDDING_DURATION, seed=seed)


def _shedding_draw(ax, res: OverloadResult):
    draw_goodput(ax, res, color=BAD if res.label == "no protection" else GOOD)
    ax.xaxis.set_major_locator(MultipleLocator(5))
    if not ax.get_subplotspec().colspan.start:
        ax.legend(loc="upper center", fontsize=7, ncols=3, columnspacing=1.0, handlelength=1.5)  # within the axes
    else:
        ax.set_ylabel("")


def _shedding_summary(res: OverloadResult) -> str:
    p99 = res.p99()
    p99_text = "nothing answered" if math.isnan(p99) else f"p99 {p99 * 1000:.0f} ms"
    return f"from 5 s: goodput {res.goodput():.0f}/s, {p99_text}; whole run: {res.share('shed'):.0%} shed"


@dashboard("07_bulkheads/shedding")
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
