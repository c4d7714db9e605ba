"""06 Circuit breakers: failing fast during an outage, the breaker's state over time, consecutive
against failure-rate rules, half-open probes, and a breaker with a fallback.

The story is a small shop. Its ``api`` has a few workers (``API_WORKERS``) and serves two endpoints:

* the product **page**, which asks ``recs`` (recommendations) through a client with a 1-second timeout,
  and, with ``fallback=True``, serves bestsellers instead when that call fails;
* **checkout**, which never calls ``recs`` but shares the same workers.

During the outage ``recs`` stops answering: a :class:`~resilience_sim.Partition` between ``api`` and
``recs`` whose connections hang longer than the timeout (a host that vanished without closing its
sockets), so without a breaker every page call holds a worker for the whole timeout.

:func:`shop_run` builds and runs it; the two endpoints are the routes "page" and "checkout" of one
run, so :meth:`ShopRun.stats` reads each one's requests from its results (``results.only(route)``),
and a :class:`~resilience_sim.sim.probes.CallLog` keeps the time of every call sent to ``recs``. :func:`rules_run` compares a consecutive-failures breaker with a failure-rate breaker on a
dependency whose error rate steps from 20% to 60%.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from ..core import theory, validate
from ..core.distributions import Exponential, Fixed
from ..metrics import Results
from ..metrics.windows import quality_series
from ..policies import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from ..sim.client import Client
from ..sim.faults import ErrorBurst, Partition
from ..sim.probes import CallLog
from ..sim.service import Service, ServiceError
from ..sim.workload import OpenLoop
from ..sim.world import World, stream_seed
from ..views import plots
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import RunMemo, Table

#: Product-page requests per second; each one asks recs for recommendations.
PAGE_RATE = 10.0
#: Checkout requests per second; they never call recs, but share api's workers.
CHECKOUT_RATE = 5.0
#: api's workers (requests served at once) and the requests that may wait for one.
API_WORKERS = 8
API_QUEUE = 20
#: api's own work per request (seconds).
API_WORK = 0.005
#: recs' mean response time when healthy (exponential, seconds).
RECS_LATENCY = 0.03
#: The page's per-attempt timeout on recs (seconds).
TIMEOUT = 1.0
#: How long a call to recs hangs during the outage: longer than any timeout we use.
HANG = 30.0
#: The story's outage of recs (seconds from the start) and the run's length.
OUTAGE = (30.0, 90.0)
DURATION = 120.0
#: The breaker of the story: open after 5 failures in a row, for 5 seconds.
THRESHOLD = 5
OPEN_FOR = 5.0
#: The fallback's answer, shown as the reason of a degraded request.
FALLBACK = "bestsellers instead of recommendations"

STATE_COLORS = {CLOSED: "tab:green", HALF_OPEN: "tab:orange", OPEN: "tab:red"}


# --- the shop -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EndpointStats:
    """How one endpoint fared over a stretch of time (requests that started in it)."""
    requests: int
    availability: float        # answered, fully or degraded
    full_quality: float        # answered with full quality
    p50: float                 # latency of all requests, whatever the outcome (seconds)
    p99: float


@dataclass
class ShopRun:
    """One run of the shop: its results (routes "page" and "checkout"), the calls that reached recs,
    and the breaker."""
    results: Results = field(repr=False)
    recs_calls: np.ndarray = field(repr=False)      # times of the calls sent to recs
    breaker: CircuitBreaker | None
    outage: tuple
    duration: float
    timeout: float
    fallback: bool

    def stats(self, route: str, window=None) -> EndpointStats:
        """Availability and latency of the ``route`` requests that started inside ``window`` (all by default)."""
        seen = self.results.only(route)
        if window is not None:
            try:
                seen = seen.between(*window)
            except ValueError:
                raise ValueError(f"window must lie inside the run [0, {seen.until:g}] s, got {window!r}") from None
        if not len(seen):
            raise ValueError(f"window must hold some {route} requests, got {window!r}")
        p50, p99 = np.percentile(seen.latency, [50, 99])
        return EndpointStats(len(seen), seen.request_availability(), seen.full_quality_availability(),
                             float(p50), float(p99))

    @property
    def history(self) -> tuple:
        """The breaker's ((time, state), ...), as the run's client stats keep it (empty without one)."""
        return self.results.client("api->recs").breaker_history

    def calls_during_outage(self) -> int:
        """Calls sent to recs while it was not answering: each one fails, slowly."""
        lo, hi = self.outage
        return int(np.count_nonzero((self.recs_calls >= lo) & (self.recs_calls < hi)))

    def closed_again(self) -> float:
        """When the breaker last closed after the outage began (NaN without a breaker or if it never did)."""
        closes = [t for t, s in self.history if s == CLOSED and t > self.outage[0]]
        return closes[-1] if closes else math.nan

    def recovery_time(self) -> float:
        """Seconds from the end of the outage until the breaker closed again (NaN without a breaker)."""
        return self.closed_again() - self.outage[1]

    def state_share(self, state: str, window=None) -> float:
        """Share of ``window`` (default: the outage) the breaker spent in ``state``, on a 10 ms grid."""
        lo, hi = self.outage if window is None else window
        times = np.arange(lo, hi, 0.01)
        code = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}[state]
        return float(np.mean(self.results.client("api->recs").breaker_state_at(times) == code))


def shop_run(seed: int, *, breaker: CircuitBreaker | None = None, fallback: bool = False,
             outage=OUTAGE, duration: float = DURATION, timeout: float = TIMEOUT,
             page_rate: float = PAGE_RATE, checkout_rate: float = CHECKOUT_RATE,
             workers: int = API_WORKERS) -> ShopRun:
    """The shop under steady traffic for ``duration`` seconds, recs not answering during ``outage``.

    ``breaker`` (a fresh :class:`CircuitBreaker`, or None) guards the page's calls to recs;
    ``fallback=True`` makes the page serve bestsellers (a degraded answer) when that call fails.
    """
    if breaker is not None and not isinstance(breaker, CircuitBreaker):
        raise ValueError(f"breaker must be a CircuitBreaker or None, got {breaker!r}")
    duration = validate.positive("duration", duration)
    world = World(seed)
    recs = Service(world, "recs", capacity=256, latency=Exponential(RECS_LATENCY))
    reached = CallLog(recs)
    client = Client(world, reached, name="api->recs", timeout=timeout, breaker=breaker)

    def api_handler(svc, req):
        if req.route != "page":
            return None                                 # checkout: api's own work only
        try:
            return (yield from svc.ask("recs", req))
        except ServiceError:
            if not fallback:
                raise
            req.degraded = FALLBACK                     # a lower-quality answer, at once
            return None

    api = Service(world, "api", capacity=workers, latency=Fixed(API_WORK), dependencies=[client],
                  handler=api_handler, queue_limit=API_QUEUE)
    Partition(api, recs, [tuple(outage)], hang=HANG)
    OpenLoop(world, api, page_rate, duration=duration, name="page")
    OpenLoop(world, api, checkout_rate, duration=duration, name="checkout")
    # run a little past the last arrival so that every request ends (a hung call ends at its timeout)
    results = world.run(until=duration + timeout + 2.0)
    return ShopRun(results, np.array(reached.times), breaker, tuple(outage), duration, timeout, fallback)


def saturated_throughput(*, workers: int = API_WORKERS, timeout: float = TIMEOUT,
                         page_rate: float = PAGE_RATE, checkout_rate: float = CHECKOUT_RATE) -> float:
    """Requests a second api can finish while every page call waits out its timeout.

    Each worker holds a page request for ``API_WORK + timeout`` seconds and a checkout for ``API_WORK``:
    ``workers`` divided by the mean hold time of the mix.
    """
    total = page_rate + checkout_rate
    hold = (page_rate * (API_WORK + timeout) + checkout_rate * API_WORK) / total
    return workers / hold


def story_breaker(*, threshold: int = THRESHOLD, open_for: float = OPEN_FOR, probes: int = 1) -> CircuitBreaker:
    """The breaker of the story: open after ``threshold`` failures in a row, for ``open_for`` seconds."""
    return CircuitBreaker(consecutive_failures=threshold, open_for=open_for, half_open_probes=probes)


def calls_bound(*, rate: float = PAGE_RATE, timeout: float = TIMEOUT, threshold: int = THRESHOLD,
                open_for: float = OPEN_FOR, outage: float = OUTAGE[1] - OUTAGE[0], probes: int = 1,
                sigmas: float = 4.0) -> float:
    """An upper bound on the calls a consecutive-failures breaker lets through to a dependency that hangs.

    Until the first failure comes back (one timeout after the outage starts) every call goes out:
    Poisson with mean ``rate * timeout``, bounded by ``sigmas`` standard deviations; the next
    ``threshold`` calls may still go out before the breaker has seen enough failures. After that,
    each open period of ``open_for`` seconds ends with at most ``probes`` calls that fail.
    """
    first = rate * timeout
    return first + sigmas * math.sqrt(first) + threshold + probes * math.ceil(outage / open_for)


# --- pictures -----------------------------------------------------------------------------------------
def draw_band(ax, history, until: float, *, y: float = 0.0, height: float = 1.0) -> None:
    """The breaker's states as coloured spans along ``[0, until)``: green closed, orange half-open, red open."""
    plots.state_band(ax, history, until, STATE_COLORS, y=y, height=height)


def draw_availability(ax, run: ShopRun, *, bin_width: float = 2.0, legend: bool = True) -> None:
    """% of page and checkout requests answered per ``bin_width`` seconds, the outage shaded."""
    until = run.duration
    ax.axvspan(*run.outage, color="tab:red", alpha=0.12, lw=0, label="recs not answering")
    page, checkout = (quality_series(run.results.only(route).between(0.0, until), bin_width)
                      for route in ("page", "checkout"))
    ax.step(page["t"], 100 * page["answered"], where="post", color="tab:blue", lw=2.2, label="page: answered")
    if run.fallback:
        ax.step(page["t"], 100 * page["full_quality"], where="post", color="tab:cyan", ls=":", lw=2,
                label="page: full quality")
    ax.step(checkout["t"], 100 * checkout["answered"], where="post", color="tab:purple", ls="--", lw=1.4,
            label="checkout: answered")
    ax.set_xlim(0, until)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("time (s)")
    if ax.get_subplotspec() is None or not ax.get_subplotspec().colspan.start:
        ax.set_ylabel("requests answered (%)")
    if legend:                                    # below the axes: inside, it would cover the drop to 0
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.2), ncols=2, fontsize=8, frameon=False)


def draw_state_and_availability(axes, run: ShopRun, *, bin_width: float = 2.0) -> None:
    """Two axes sharing x: the breaker's state band on top, availability over time below."""
    band, main = axes
    draw_band(band, run.history, run.duration)
    band.set_yticks([])
    band.set_ylabel("breaker", rotation=0, ha="right", va="center")
    band.set_xlim(0, run.duration)
    handles = [band.bar(0, 0, color=c, label=s) for s, c in STATE_COLORS.items()]
    band.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.3), fontsize=8, frameon=False)
    draw_availability(main, run, bin_width=bin_width)


# --- consecutive failures against a failure rate -----------------------------------------------------
#: The two rules compared: 5 failures in a row, or >= 50% of the last 100 calls once 20 are counted.
RULES = {
    "5 in a row": dict(consecutive_failures=5),
    "50% of last 100": dict(failure_rate=0.5, window=100, min_calls=20),
}
BASE_ERRORS, HIGH_ERRORS = 0.2, 0.6


@dataclass
class RulesRun:
    """Two callers of one flaky dependency, each with its own breaker; errors step up at ``change_at``."""
    results: Results = field(repr=False)
    breakers: dict
    change_at: float
    duration: float
    rate: float

    def trips(self, name: str, window=None) -> list:
        """(time, why) of each trip of breaker ``name`` inside ``window`` (default: the whole run)."""
        lo, hi = (0.0, math.inf) if window is None else window
        return [(t, why) for t, why in self.breakers[name].trips if lo <= t < hi]

    def openings(self, name: str, window=None) -> list:
        """The trips of breaker ``name`` that its rule caused (not the probes that failed)."""
        return [(t, why) for t, why in self.trips(name, window) if why != "probe failed"]

    def open_share(self, name: str, window) -> float:
        """Share of ``window`` breaker ``name`` spent not closed (open or half-open), on a 10 ms grid."""
        times = np.arange(window[0], window[1], 0.01)
        return float(np.mean(self.results.client(name).breaker_state_at(times) != 0))


def rules_run(seed: int, *, rate: float = 10.0, change_at: float = 600.0, duration: float = 700.0,
              open_for: float = OPEN_FOR, rules=None) -> RulesRun:
    """Two callers, ``rate`` calls a second each, to a dependency failing 20% of calls, then 60% from
    ``change_at`` on; each caller's breaker follows one rule of ``rules`` (default :data:`RULES`)."""
    rules = RULES if rules is None else rules
    world = World(seed)
    recs = Service(world, "recs", capacity=256, latency=Exponential(RECS_LATENCY), error_rate=BASE_ERRORS)
    # on top of the base 20%: 1 - 0.8 * (1 - 0.5) = 60% of calls fail from change_at on
    extra = 1 - (1 - HIGH_ERRORS) / (1 - BASE_ERRORS)
    ErrorBurst(recs, [(change_at, duration + 10.0)], error_rate=extra)
    breakers = {}
    for name, kw in rules.items():
        breakers[name] = CircuitBreaker(open_for=open_for, **kw)
        client = Client(world, recs, name=name, timeout=TIMEOUT, breaker=breakers[name])
        OpenLoop(world, client, rate, duration=duration, name=name)
    results = world.run(until=duration + TIMEOUT + 1.0)
    return RulesRun(results, breakers, change_at, duration, rate)


def closed_calls_per_trip(breaker: CircuitBreaker, p: float, *, calls: int, seed: int,
                          spacing: float = 0.1) -> tuple[int, int]:
    """Drive ``breaker`` with plain numbers, no simulator: ``calls`` calls ``spacing`` seconds apart, each
    failing with probability ``p``, every call ending at once. Returns (calls made while closed, trips
    from closed), the trips that a run of failures caused (not the probes that failed)."""
    rng = random.Random(seed)
    closed_calls = 0
    for i in range(validate.integer("calls", calls, low=1)):
        now = i * spacing
        was_closed = breaker.state(now) == CLOSED
        if breaker.allow(now):
            closed_calls += was_closed
            breaker.record(now, success=rng.random() >= p)
    trips = sum(1 for _, why in breaker.trips if why != "probe failed")
    return closed_calls, trips


#: Error rates and calls for :func:`trips_by_error_rate`: rarer trips get more calls.
TRIP_RATES = ((0.2, 300_000), (0.3, 100_000), (0.4, 50_000), (0.5, 30_000))


def trips_by_error_rate(cases=TRIP_RATES, *, seed: int, run_of: int = 5, open_for: float = 5.0) -> Table:
    """:func:`closed_calls_per_trip` for a breaker that opens after ``run_of`` failures in a row, at each
    (error rate, calls) of ``cases``, each from its own random stream (derived from ``seed`` and the rate,
    as the simulator's named streams are); against :func:`theory.trials_until_run`. ``data``: one dict a
    rate (p, calls, closed_calls, trips, wait, expected, sd), ``sd`` the Poisson spread of ``expected``."""
    rows, data = [], []
    for p, calls in cases:
        breaker = CircuitBreaker(consecutive_failures=run_of, open_for=open_for)
        closed, trips = closed_calls_per_trip(breaker, p, calls=calls, seed=stream_seed(seed, f"calls failing {p:g}"))
        wait = theory.trials_until_run(p, run_of)
        expected = closed / wait
        data.append(dict(p=p, calls=calls, closed_calls=closed, trips=trips, wait=wait, expected=expected,
                         sd=math.sqrt(expected)))
        rows.append([f"{p:.0%}", f"{closed:,}", f"{wait:,.0f}", f"{closed / trips:,.0f}" if trips else "-",
                     f"{expected:.0f} ± {math.sqrt(expected):.0f}", f"{trips}"])
    headers = ["errors", "calls while closed", "calls per trip: formula", "measured",
               "trips: formula ± 1 sd", "measured"]
    return Table(headers, rows, data)


def draw_rules(ax, run: RulesRun, *, window=None) -> None:
    """One band per breaker (rows) over ``window`` (default: the whole run); the error step dashed."""
    lo, hi = (0.0, run.duration) if window is None else window
    names = list(run.breakers)
    for row, name in enumerate(names):
        draw_band(ax, run.results.client(name).breaker_history, run.duration, y=row - 0.35, height=0.7)
    ax.axvline(run.change_at, color="k", ls="--", lw=1)
    ax.annotate(f"errors {BASE_ERRORS:.0%} → {HIGH_ERRORS:.0%}", (run.change_at, -0.55), xytext=(4, 0),
                textcoords="offset points", fontsize=8, va="center")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.4, -0.7)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("time (s)")


# --- half-open probes ---------------------------------------------------------------------------------
def probes_run(seed: int, probes: int, *, open_for: float = OPEN_FOR, **kw) -> ShopRun:
    """The story's outage with a breaker that lets ``probes`` calls through when half-open."""
    return shop_run(seed, breaker=story_breaker(open_for=open_for, probes=probes), **kw)


def failed_probes(run: ShopRun) -> int:
    """Calls sent to recs during the outage after the breaker first opened: failed probes."""
    lo, hi = run.outage
    first_open = next(t for t, s in run.history if s == OPEN and t >= lo)
    return int(np.count_nonzero((run.recs_calls >= first_open) & (run.recs_calls < hi)))


# --- the dashboard --------------------------------------------------------------------------------------
#: The dashboard's run: the story's shop, the outage from DASH_START, the run DASH_DURATION seconds long
#: (shorter than the story's, to redraw quickly: the longest outage, 30 s, ends 10 s before the run).
DASH_START, DASH_DURATION, DASH_SEED = 5.0, 45.0, 6


_DASH_WITHOUT = RunMemo()


def _dash_compute(outage_s, open_for_s, threshold, *, breaker: bool):
    """The dashboard's run; without a breaker it depends on the outage alone, so moving the breaker's
    sliders finds it in a memo."""
    outage = (DASH_START, DASH_START + float(outage_s))
    if not breaker:
        return _DASH_WITHOUT.get(float(outage_s), lambda: shop_run(DASH_SEED, outage=outage, duration=DASH_DURATION))
    b = story_breaker(threshold=int(threshold), open_for=open_for_s)
    return shop_run(DASH_SEED, breaker=b, outage=outage, duration=DASH_DURATION)


def _dash_draw(ax, run: ShopRun) -> None:
    draw_availability(ax, run, bin_width=2.0, legend=run.breaker is None)
    if run.breaker is not None:               # the breaker's states along the top of the panel
        draw_band(ax, run.history, run.duration, y=104.0, height=8.0)
        ax.annotate("breaker", (1, 108), fontsize=8, va="center", color="white", fontweight="bold")
    ax.set_ylim(-3, 114)


def _dash_summary(run: ShopRun) -> str:
    during = run.outage
    page, checkout = run.stats("page", during), run.stats("checkout", during)
    text = (f"during the outage: checkout {checkout.availability:.0%} answered, "
            f"page p50 {page.p50 * 1000:.0f} ms, {run.calls_during_outage()} calls to recs")
    if run.breaker is not None and not math.isnan(run.recovery_time()):
        text += f", closed {run.recovery_time():.1f} s after recs came back"
    return text


@dashboard("06_circuit_breakers/outage")
def outage_dashboard() -> Dashboard:
    """Outage length, open duration and threshold; without / with a breaker on the page's calls to recs."""
    return Dashboard(
        _dash_compute, _dash_draw,
        [Slider("outage_s", "recs not answering for", "s", 5, 30, 20, step=1),
         Slider("open_for_s", "breaker open for", "s", 1, 15, OPEN_FOR, step=1),
         Slider("threshold", "failures in a row to open", "", 1, 20, THRESHOLD, integer=True)],
        variants={"without a breaker": {"breaker": False}, "with a breaker": {"breaker": True}},
        summary=_dash_summary, figsize=(9.0, 3.4),
        title="recs stops answering (shaded); the page calls it with a 1 s timeout, checkout shares api's "
              f"{API_WORKERS} workers. Top band: the breaker (green closed, red open, orange half-open)")
