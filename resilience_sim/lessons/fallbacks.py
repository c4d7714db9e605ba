"""11 Fallbacks: a lower-quality answer, a slower system, and the case against both.

* **Recommendations** (:func:`recs_run`): a product page asks a personal recommender (``recs``)
  through a client with a timeout; recs has an outage, an error burst and a slow spell. A
  :class:`~resilience_sim.policies.FallbackChain` then answers from lists that are popular in the
  user's city, then country (small services with their own error rates), then a static list of
  bestsellers. Every level below the first is a degraded answer: request availability rises to 100%,
  full-quality availability does not move.
* **Search falling back to SQL** (:func:`search_run`): search asks Elasticsearch (``es``: fast, many
  slots); when es is down it asks the SQL database, which is slow at search and also serves the
  shop's checkout reads. Unprotected, the whole search load lands on SQL, its queue fills and
  checkout fails too (Amazon's c. 2001 outage). A :class:`~resilience_sim.policies.Bulkhead` on the
  fallback client, or a :class:`~resilience_sim.policies.TokenBucket` in front of it, lets only what
  SQL can spare through.
* **Failover that runs all the time** (:func:`failover_run`): the same two-path search with a latent
  bug in the secondary; when the secondary takes no traffic until the primary fails, the bug shows
  only during the outage, when it takes a share of every day's traffic it shows at once.

Runs are small (a few thousand requests) and seeded; the dashboard's are smaller still.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core import validate
from ..core.distributions import Exponential, LogNormal
from ..core.reasons import Outcome
from ..metrics import Results
from ..metrics.windows import quality_series, quality_shares_series
from ..policies import Bulkhead, FallbackChain, Static, TokenBucket
from ..sim.client import Client
from ..sim.fallback import with_fallbacks
from ..sim.faults import ErrorBurst, Fault, LatencySpike, Outage
from ..sim.probes import ServiceProbe
from ..sim.service import Condition, Service, ServiceError
from ..sim.workload import OpenLoop
from ..sim.world import World
from ..views import plots
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import Table

# --- 1. recommendations: a chain of lower-quality answers ------------------------------------------
#: Product-page requests per second, and the run's length (seconds).
PAGE_RATE, RECS_DURATION = 10.0, 300.0
#: The personal recommender: median 40 ms, a right tail; the page gives it 300 ms an attempt.
RECS_LATENCY = LogNormal(0.040, 0.5)
RECS_TIMEOUT = 0.3
#: What goes wrong with recs: down, then half its calls failing, then 0.5 s slower than the timeout.
RECS_OUTAGE, RECS_ERRORS, RECS_SLOW = (60.0, 120.0), (150.0, 180.0), (220.0, 250.0)
RECS_ERROR_RATE, RECS_EXTRA = 0.5, 0.5
#: The fallback levels: a dependency name (with its own error rate and mean latency) or a static list.
POPULAR = {"popular_city": (0.10, 0.005), "popular_country": (0.05, 0.003)}
STATICS = {"bestsellers": Static("bestsellers", ("bestseller 1", "bestseller 2", "bestseller 3")),
           "nothing": Static("nothing", ())}
#: The degradation reason each level's answers carry (what results.quality() reports).
LABELS = {"popular_city": "popular in your city", "popular_country": "popular in your country",
          "bestsellers": "bestsellers", "nothing": "no recommendations"}
#: The chains section 1 compares, by Hystrix's names for the kinds of fallback.
CHAINS = {
    "fail fast (no fallback)": (),
    "fail silent (empty box)": ("nothing",),
    "static (bestsellers)": ("bestsellers",),
    "country → static": ("popular_country", "bestsellers"),
    "city → country → static": ("popular_city", "popular_country", "bestsellers"),
}
FULL_CHAIN = CHAINS["city → country → static"]
#: Colours of the quality levels, best first.
QUALITY_COLORS = {"full": "tab:green", "popular in your city": "#8fd18f", "popular in your country": "#f2d16b",
                  "bestsellers": "tab:orange", "no recommendations": "#c9a26b", "unanswered": "tab:red"}


@dataclass
class RecsRun:
    """A run of the product page: its results (route "page") and the fallback steps it had."""
    results: Results = field(repr=False)
    chain: tuple
    chain_policy: FallbackChain | None = field(repr=False)
    duration: float = RECS_DURATION

    @property
    def levels(self) -> list[str]:
        """The answer kinds this run could give, best first: "full", each fallback's label, "unanswered"."""
        return ["full", *(LABELS[step] for step in self.chain), "unanswered"]

    def quality(self, window=None) -> dict:
        """``results.quality()`` of the requests that started in ``window`` (default: all), with a
        0.0 for each level of the chain that never answered."""
        seen = self.results if window is None else _window(self.results, window)
        shares = seen.quality()
        return {level: shares.get(level, 0.0) for level in self.levels}

    def quality_over_time(self, bin_width: float = 5.0) -> dict:
        """``{"t": bin starts, level: shares per bin...}`` for every level (NaN where a bin is empty)."""
        return quality_bins(self.results.between(0.0, self.duration), bin_width, self.levels)

    def latency_p50(self, window) -> float:
        """Median latency (seconds) of the page requests that started in ``window``, any outcome."""
        return float(np.median(_window(self.results, window).latency))


def _window(results: Results, window) -> Results:
    try:
        lo, hi = window
        view = results.between(lo, hi)
    except (TypeError, ValueError):
        raise ValueError(f"window must be a (start, end) pair inside the run [0, {results.until:g}] s, "
                         f"got {window!r}") from None
    if not len(view):
        raise ValueError(f"window must hold some requests, got {window!r}")
    return view


def quality_bins(results: Results, bin_width: float, levels) -> dict:
    """Per ``bin_width`` bin (by start time), the share of requests of each answer kind in ``levels``
    ("full", a degradation reason, or "unanswered"; 0 for a kind the run never gave)."""
    series = quality_shares_series(results, bin_width)
    zero = np.where(np.isnan(series["full"]), np.nan, 0.0)
    return {"t": series["t"], **{level: series.get(level, zero) for level in levels}}


def _check_chain(chain) -> tuple:
    if isinstance(chain, str):
        raise validate.WrongType(f"chain must be a tuple of fallback names, e.g. {FULL_CHAIN}, got the "
                                 f"string {chain!r} (write ({chain!r},))")
    try:
        chain = tuple(chain)
    except TypeError:
        raise validate.WrongType(f"chain must be a tuple of fallback names from {sorted(LABELS)}, "
                                 f"got {validate.show(chain)}") from None
    for i, step in enumerate(chain):
        validate.choice(f"chain[{i}]", step, list(LABELS))
        if step in STATICS and i != len(chain) - 1:
            raise ValueError(f"chain[{i}] is the static answer {step!r}, which always answers: it must come "
                             f"last (the steps after it would never be asked), got {chain}")
    return chain


def recs_run(seed: int, chain=FULL_CHAIN, *, faults: bool = True, duration: float = RECS_DURATION,
             page_rate: float = PAGE_RATE) -> RecsRun:
    """The page at ``page_rate`` requests/s for ``duration`` s, recs failing in three ways (with
    ``faults``). ``chain``: the fallbacks after recs, in order, from :data:`LABELS` (``()``: none, the
    page fails when recs does)."""
    chain = _check_chain(chain)
    duration, page_rate = validate.positive("duration", duration), validate.positive("page_rate", page_rate)
    world = World(seed)
    recs = Service(world, "recs", capacity=64, latency=RECS_LATENCY)
    to_recs = Client(world, recs, name="page->recs", timeout=RECS_TIMEOUT)
    deps = {"recs": to_recs}
    for name, (errors, mean) in POPULAR.items():
        deps[name] = Service(world, name, capacity=32, latency=Exponential(mean), error_rate=errors)
    policy = (FallbackChain(["recs", *(STATICS.get(s, s) for s in chain)],
                            labels={s: LABELS[s] for s in chain}) if chain else None)

    def page(svc, req):
        if policy is None:                          # fail fast: recs' error is the page's error
            return (yield from svc.ask("recs", req))
        return (yield from with_fallbacks(svc, req, policy))

    front = Service(world, "page", capacity=256, latency=0.002, dependencies=deps, handler=page)
    if faults:
        Outage(recs, [RECS_OUTAGE])
        ErrorBurst(recs, [RECS_ERRORS], error_rate=RECS_ERROR_RATE)
        LatencySpike(recs, [RECS_SLOW], extra=RECS_EXTRA)
    OpenLoop(world, front, page_rate, duration=duration, name="page")
    return RecsRun(world.run(until=duration + 2.0), chain, policy, duration)


def chains_table(seed: int, chains=None) -> Table:
    """One row per chain of ``chains`` (default :data:`CHAINS`): answered, full quality and the share
    of each level. ``table.data[name]`` holds each run's :class:`RecsRun`."""
    chains = CHAINS if chains is None else dict(chains)
    runs = {name: recs_run(seed, chain) for name, chain in chains.items()}
    kinds = ["popular in your city", "popular in your country", "bestsellers", "no recommendations"]
    rows = []
    for name, run in runs.items():
        q = run.results.quality()
        rows.append([name, _share(run.results.request_availability()), _share(q["full"]),
                     *(_share(q[k]) if k in q else "–" for k in kinds), _share(q["unanswered"])])
    return Table(["chain", "answered", "full quality", *kinds, "unanswered"], rows, data=runs)


def _share(x: float) -> str:
    """A share as a percentage: one decimal, two below 1% (0.07%, not 0.1%)."""
    return f"{x:.2%}" if 0 < x < 0.01 else f"{x:.1%}"


def draw_chains(ax, table: Table):
    """One horizontal bar per chain of a :func:`chains_table`: the share of page requests at each
    quality level, best on the left."""
    names = list(table.data)
    bars = {}
    for row, name in enumerate(names):
        left = 0.0
        for level, share in table.data[name].quality().items():
            bars[level] = ax.barh(row, 100 * share, left=100 * left, color=QUALITY_COLORS[level], height=0.7)
            left += share
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("page requests (%)")
    levels = [level for level in QUALITY_COLORS if level in bars]          # best first
    ax.legend([bars[level] for level in levels], levels, loc="center left", bbox_to_anchor=(1.01, 0.5),
              fontsize=8, frameon=False)
    return ax


#: Short names of recs' faults, written on the band along the top of :func:`draw_quality`.
FAULT_NAMES = {"outage": "down", "error burst": "errors", "latency spike": "slow"}


def draw_quality(ax, run: RecsRun, *, bin_width: float = 5.0, legend: bool = True):
    """The share of page requests at each quality level per ``bin_width`` bin, stacked (best at the
    bottom), with recs' faults as a grey band along the top; the legend outside, on the right."""
    series = run.quality_over_time(bin_width)
    levels = run.levels
    t = np.append(series["t"], run.duration)               # a last edge, so the final bin is drawn to the end
    ax.stackplot(t, *(100 * np.append(np.nan_to_num(series[level]), np.nan_to_num(series[level][-1:]))
                      for level in levels), step="post",
                 colors=[QUALITY_COLORS[level] for level in levels], labels=levels)
    for fault in run.results.faults:
        for lo, hi in fault.spans:
            ax.axvspan(lo, hi, ymin=101 / 112, ymax=1.0, color="0.35", lw=0)
            ax.annotate(FAULT_NAMES.get(fault.kind, fault.kind), ((lo + hi) / 2, 106.5), ha="center", va="center",
                        fontsize=8, color="white")
    ax.set_xlim(0, run.duration)
    ax.set_ylim(0, 112)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.set_xlabel("time (s)")
    spec = ax.get_subplotspec()
    if spec is None or spec.colspan.start == 0:
        ax.set_ylabel("page requests (%)")
    if legend:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return ax


# --- 2. search falls back to SQL --------------------------------------------------------------------
#: Searches and checkouts per second.
SEARCH_RATE, CHECKOUT_RATE = 10.0, 5.0
#: Elasticsearch: many slots, 20 ms a search (mean). SQL: a few connections, 20 ms a checkout read,
#: and a slow search (a LIKE scan over the products table: 0.5 s on average).
ES_SLOTS, ES_WORK = 64, 0.020
SQL_CONNECTIONS, SQL_READ, SQL_SEARCH = 4, 0.020, 0.5
#: How long callers give each attempt: search on SQL (2 s: a slow answer beats none), checkout on SQL
#: (1 s). Search asks es without a timeout of its own: es is down or quick, never slow, in this story.
SQL_SEARCH_TIMEOUT, CHECKOUT_TIMEOUT = 2.0, 1.0
#: The story's es outage and run length (s), and the protections' sizes: at most 2 searches on SQL at
#: once, or 4 searches a second (what 2 connections can do at 0.5 s each).
SEARCH_OUTAGE, SEARCH_DURATION = (30.0, 90.0), 150.0
FALLBACK_BULKHEAD, FALLBACK_RATE = 2, 4.0
SQL_LABEL = "slower SQL search"
#: The ways search may treat an es failure.
MODES = ("no fallback", "unprotected fallback", "bulkhead", "rate limit")
#: Seconds between two samples of SQL's queue.
PROBE_EVERY = 0.5


@dataclass
class SearchRun:
    """A run of the shop's search and checkout (routes "search" and "checkout") and SQL's queue."""
    results: Results = field(repr=False)
    sql_queue: ServiceProbe = field(repr=False)
    mode: str
    outage: tuple
    duration: float
    connections: int
    bulkhead: int = FALLBACK_BULKHEAD
    rate: float = FALLBACK_RATE

    @property
    def title(self) -> str:
        """The design in words, for a panel's title: "fallback behind a bulkhead of 2", say."""
        return {"no fallback": "no fallback (search fails with es)", "unprotected fallback": "fallback, unprotected",
                "bulkhead": f"fallback behind a bulkhead of {self.bulkhead}",
                "rate limit": f"fallback behind a rate limit of {self.rate:g}/s"}[self.mode]

    def _seen(self, route: str, window) -> Results:
        return _window(self.results.only(route), self.outage if window is None else window)

    def availability(self, route: str, window=None) -> float:
        """The share of ``route``'s requests started in ``window`` (default: the outage) that got an
        answer, full or degraded."""
        return self._seen(route, window).request_availability()

    def p99(self, route: str, window=None) -> float:
        """99th-percentile latency (seconds, any outcome) of ``route``'s requests started in ``window``
        (default: the outage)."""
        return float(np.percentile(self._seen(route, window).latency, 99))

    def peak_queue(self) -> int:
        """The most requests at SQL at once (being served or waiting), from the probe."""
        return int(self.sql_queue.in_system.max())

    def back_after(self, route: str) -> float:
        """Seconds from the end of the outage to the start of ``route``'s last unanswered request
        (0.0 if none failed after the outage ended): how long the route took to recover."""
        seen = self.results.only(route)
        failed = seen.start[(seen.outcome > Outcome.DEGRADED) & (seen.start >= self.outage[1])]
        return float(failed.max() - self.outage[1]) if failed.size else 0.0

    def after(self, seconds: float = 30.0) -> tuple:
        """The window of ``seconds`` just after es came back."""
        return (self.outage[1], min(self.outage[1] + seconds, self.duration))


def search_run(seed: int, mode: str = "unprotected fallback", *, outage=SEARCH_OUTAGE,
               duration: float = SEARCH_DURATION, connections: int = SQL_CONNECTIONS,
               bulkhead: int = FALLBACK_BULKHEAD, rate: float = FALLBACK_RATE,
               search_rate: float = SEARCH_RATE, checkout_rate: float = CHECKOUT_RATE) -> SearchRun:
    """Search (es, then SQL per ``mode``) and checkout (SQL) for ``duration`` s, es down during ``outage``.

    ``mode`` is one of :data:`MODES`: no fallback (search fails with es), an unprotected fallback onto
    SQL, a fallback behind a ``bulkhead`` (at most that many searches on SQL at once) or behind a
    token bucket of ``rate`` searches a second. ``connections``: SQL's connections (its slots)."""
    mode = validate.choice("mode", mode, MODES)
    duration = validate.positive("duration", duration)
    (lo, hi), = validate.windows("outage", [outage])
    if hi > duration:
        raise ValueError(f"outage must end by the end of the run ({duration:g} s), got {outage!r}")
    connections = validate.integer("connections", connections, low=1, high=1000)
    bulkhead = validate.integer("bulkhead", bulkhead, low=1, high=1000)
    rate = validate.positive("rate", rate)
    search_rate = validate.positive("search_rate", search_rate)
    checkout_rate = validate.positive("checkout_rate", checkout_rate)
    world = World(seed)
    es = Service(world, "es", capacity=ES_SLOTS, latency=Exponential(ES_WORK))
    work = world.rng("sql/work")

    def sql_query(svc, req):                       # a search is a slow scan, a checkout read is quick
        yield svc.env.timeout(work.expovariate(1.0 / (SQL_SEARCH if req.route == "search" else SQL_READ)))

    sql = Service(world, "sql", capacity=connections, handler=sql_query)   # the work: in the handler
    to_sql = Client(world, sql, name="search->sql", timeout=SQL_SEARCH_TIMEOUT,
                    bulkhead=Bulkhead(bulkhead) if mode == "bulkhead" else None,
                    rate_limit=TokenBucket(rate, burst=max(1.0, rate)) if mode == "rate limit" else None)
    chain = FallbackChain(["es", "sql"], labels={"sql": SQL_LABEL})

    def search(svc, req):
        if mode == "no fallback":
            return (yield from svc.ask("es", req))
        return (yield from with_fallbacks(svc, req, chain))

    front = Service(world, "search", capacity=512, dependencies={"es": es, "sql": to_sql}, handler=search)
    checkout = Client(world, sql, name="checkout->sql", timeout=CHECKOUT_TIMEOUT)
    Outage(es, [(lo, hi)])
    probe = ServiceProbe(world, sql, PROBE_EVERY, until=duration)
    OpenLoop(world, front, search_rate, duration=duration, name="search")
    OpenLoop(world, checkout, checkout_rate, duration=duration, name="checkout")
    results = world.run(until=duration + SQL_SEARCH_TIMEOUT + 0.5)
    return SearchRun(results, probe, mode, (lo, hi), duration, connections, bulkhead, rate)


def sql_load(connections: int = SQL_CONNECTIONS, *, search_rate: float = SEARCH_RATE,
             checkout_rate: float = CHECKOUT_RATE) -> float:
    """SQL's utilisation if every search lands on it: seconds of work offered per second, per connection."""
    connections = validate.integer("connections", connections, low=1)
    search_rate = validate.non_negative("search_rate", search_rate)
    checkout_rate = validate.non_negative("checkout_rate", checkout_rate)
    return (search_rate * SQL_SEARCH + checkout_rate * SQL_READ) / connections


def modes_table(seed: int, modes=MODES) -> Table:
    """Search and checkout during the outage (and checkout in the 30 s after it), one row per mode of
    ``modes``; ``table.data[mode]`` holds each :class:`SearchRun`."""
    runs = {mode: search_run(seed, mode) for mode in modes}
    rows = [[mode, f"{r.availability('search'):.1%}", f"{r.availability('checkout'):.1%}",
             f"{r.p99('checkout') * 1000:.0f} ms", f"{r.availability('checkout', r.after()):.1%}", r.peak_queue()]
            for mode, r in runs.items()]
    return Table(["search falls back…", "search answered", "checkout answered", "checkout p99",
                  "checkout, 30 s after", "most at SQL"], rows, data=runs)


def draw_search(ax, run: SearchRun, *, bin_width: float = 2.0, legend: bool = True):
    """Search and checkout: the share answered per ``bin_width`` bin (by start time), the outage shaded;
    with ``legend``, the legend in a band above 100%, where it covers no data."""
    ax.axvspan(*run.outage, color="tab:red", alpha=0.12, lw=0, label="es down")
    for route, color, style in (("search", "tab:blue", "-"), ("checkout", "tab:purple", "--")):
        series = quality_series(run.results.only(route).between(0.0, run.duration), bin_width)
        ax.step(series["t"], 100 * series["answered"], where="post", color=color, ls=style, lw=1.8, label=route)
    ax.set_xlim(0, run.duration)
    ax.set_ylim(-3, 122 if legend else 103)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.set_xlabel("time (s)")
    spec = ax.get_subplotspec()
    if spec is None or spec.colspan.start == 0:
        ax.set_ylabel("requests answered (%)")
    if legend:
        ax.legend(loc="upper center", ncol=3, fontsize=8, frameon=False, borderaxespad=0.2)
    return ax


def draw_sql_queue(ax, run: SearchRun, *, label: str | None = None, color=None):
    """Requests at SQL (served + waiting) over time, the outage shaded."""
    ax.axvspan(*run.outage, color="tab:red", alpha=0.12, lw=0)
    ax.plot(run.sql_queue.times, run.sql_queue.in_system, label=label or run.mode, color=color)
    ax.set_xlim(0, run.duration)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("requests at SQL")
    return ax


# --- 3. failover that runs all the time ------------------------------------------------------------
#: Searches a second, the run, the primary's outage, and the latent bug: from BUG_AT on, every call
#: to the secondary fails (a bad deploy: its index mapping no longer matches the queries).
FAILOVER_RATE, FAILOVER_DURATION = 10.0, 540.0
FAILOVER_OUTAGE, BUG_AT = (300.0, 420.0), 60.0
#: The on-call side: an alarm looks at the secondary's errors every CHECK_EVERY s; a fix (a rollback)
#: takes FIX_AFTER s once it fires.
CHECK_EVERY, FIX_AFTER = 60.0, 120.0


class LatentBug(Fault):
    """From ``start`` on every call to ``service`` fails ("error"), until somebody notices: an alarm
    checks the service's failure count every ``check_every`` seconds, and the fix lands
    ``fix_after`` seconds after the first check that saw a failure. ``found`` and ``fixed`` are the
    times (NaN until they happen)."""
    kind = "latent bug"

    def __init__(self, service: Service, start: float, *, check_every: float = CHECK_EVERY,
                 fix_after: float = FIX_AFTER):
        if not isinstance(service, Service):
            raise validate.WrongType(f"service must be a Service, got {validate.show(service)}")
        super().__init__(service.world, f"latent bug in {service.name}")
        self.service, self.start = service, validate.non_negative("start", start)
        self.check_every = validate.positive("check_every", check_every)
        self.fix_after = validate.non_negative("fix_after", fix_after)
        self.found = self.fixed = math.nan
        self.env.process(self._run())

    @property
    def windows(self):
        return [(self.start, math.inf if math.isnan(self.fixed) else self.fixed)]

    def _run(self):
        env, service = self.env, self.service
        yield env.timeout(self.start)
        bug = Condition(error_rate=1.0)
        service.add_condition(bug)
        seen = service.failures
        while service.failures == seen:
            yield env.timeout(self.check_every)
        self.found = env.now
        yield env.timeout(self.fix_after)
        service.remove_condition(bug)
        self.fixed = env.now


@dataclass
class FailoverRun:
    """A run of two-path search: its results, the bug, and the share of traffic the secondary takes."""
    results: Results = field(repr=False)
    bug: LatentBug = field(repr=False)
    share: float
    outage: tuple

    def availability(self, window=None) -> float:
        """Searches answered among those started in ``window`` (default: the outage)."""
        return _window(self.results, self.outage if window is None else window).request_availability()

    def calls_before_outage(self) -> int:
        """Calls the secondary got before the primary's outage: how much it was exercised."""
        starts = self.results.services["es-b"].call_start
        return int(np.count_nonzero(starts < self.outage[0]))


def failover_run(seed: int, share: float = 0.0, *, bug_at: float = BUG_AT, outage=FAILOVER_OUTAGE,
                 duration: float = FAILOVER_DURATION, check_every: float = CHECK_EVERY,
                 fix_after: float = FIX_AFTER, rate: float = FAILOVER_RATE) -> FailoverRun:
    """Two search clusters, es-a (primary) and es-b (secondary), each able to take all the load. A
    share ``share`` of searches go to es-b first; any search whose first cluster fails tries the other.
    es-a is down during ``outage``; es-b has a :class:`LatentBug` from ``bug_at``."""
    share = validate.probability("share", share)
    duration = validate.positive("duration", duration)
    rate, bug_at = validate.positive("rate", rate), validate.non_negative("bug_at", bug_at)
    (lo, hi), = validate.windows("outage", [outage])
    if hi > duration:
        raise ValueError(f"outage must end by the end of the run ({duration:g} s), got {outage!r}")
    world = World(seed)
    a = Service(world, "es-a", capacity=ES_SLOTS, latency=Exponential(ES_WORK))
    b = Service(world, "es-b", capacity=ES_SLOTS, latency=Exponential(ES_WORK))
    router = world.rng("search/router")

    def search(svc, req):                       # failover: both paths give full answers
        first, second = ("es-b", "es-a") if router.random() < share else ("es-a", "es-b")
        try:
            return (yield from svc.ask(first, req))
        except ServiceError:
            return (yield from svc.ask(second, req))

    front = Service(world, "search", capacity=512, dependencies=[a, b], handler=search)
    Outage(a, [(lo, hi)])
    bug = LatentBug(b, bug_at, check_every=check_every, fix_after=fix_after)
    OpenLoop(world, front, rate, duration=duration, name="search")
    return FailoverRun(world.run(until=duration + 1.0), bug, share, (lo, hi))


def draw_failover(ax, bars, run: FailoverRun, *, row: int = 0, bin_width: float = 10.0, label: str | None = None,
                  color=None, shade: bool = True, row_label: str | None = None):
    """On ``ax``, searches answered per ``bin_width`` bin, the primary's outage shaded (with ``shade``);
    on ``bars`` (an axes of its own, below), bar row ``row`` (0 on top, 1...) named ``row_label``: the
    bug's life, from the bad deploy to the fix. A dotted line on both when the alarm fired."""
    row = validate.integer("row", row, low=0, high=3)
    series = quality_series(run.results.between(0.0, run.results.until - 1.0), bin_width)
    end = run.results.until - 1.0
    for axes in ((ax, bars) if shade else ()):
        axes.axvspan(*run.outage, color="tab:red", alpha=0.12, lw=0)
    ax.step(series["t"], 100 * series["answered"], where="post", color=color, lw=3.0 - row,
            label=label or f"{run.share:.0%} of traffic on the secondary")
    fixed = run.bug.fixed if not math.isnan(run.bug.fixed) else run.results.until
    bars.broken_barh([(run.bug.start, fixed - run.bug.start)], (row - 0.3, 0.6), color=color, alpha=0.8)
    if not math.isnan(run.bug.found):
        for axes in (ax, bars):
            axes.axvline(run.bug.found, color=color, ls=":", lw=1.2)
    bars.annotate(row_label or f"{run.share:.0%} on es-b", (run.bug.start, row), xytext=(4, 0), textcoords="offset points",
                  va="center", fontsize=8, color="white")
    bars.set_yticks([])
    bars.set_ylim(max(row, 1) + 0.6, -0.6)
    bars.set_ylabel("es-b's bug", fontsize=8)
    ax.set_ylim(-3, 103)
    for axes in (ax, bars):
        axes.set_xlim(0, end)
    bars.set_xlabel("time (s)")
    ax.set_ylabel("searches answered (%)")
    return ax


# --- the dashboard ----------------------------------------------------------------------------------
#: The dashboard's run: es goes down at DASH_START for the slider's length, and the run goes on
#: DASH_AFTER seconds past the outage (long enough to see SQL's backlog drain). Small, to redraw fast.
DASH_START, DASH_AFTER, DASH_SEED = 4.0, 12.0, 11      # the outage starts on a 2 s bin's edge


def _dash_compute(outage_s, bulkhead, connections, *, protect: bool):
    return search_run(DASH_SEED, "bulkhead" if protect else "unprotected fallback",
                      outage=(DASH_START, DASH_START + outage_s), duration=DASH_START + outage_s + DASH_AFTER,
                      connections=int(connections), bulkhead=int(bulkhead))


def _dash_draw(ax, run: SearchRun) -> None:
    draw_search(ax, run, legend=False)     # the title names the lines: a legend costs a fifth of a redraw
    plots.fixed_ticks(ax.xaxis, range(0, int(run.duration) + 1, 10))     # few ticks: text is most of a redraw
    plots.fixed_ticks(ax.yaxis, (0, 50, 100))


def _dash_summary(run: SearchRun) -> str:
    return (f"during the outage: search {run.availability('search'):.0%}, checkout "
            f"{run.availability('checkout'):.0%} answered (p99 {run.p99('checkout') * 1000:.0f} ms); "
            f"at most {run.peak_queue()} at SQL")


@dashboard("11_fallbacks/search")
def search_dashboard() -> Dashboard:
    """Outage length, the fallback's bulkhead and SQL's connections; without / with the bulkhead."""
    return Dashboard(
        _dash_compute, _dash_draw,
        [Slider("outage_s", "es down for", "s", 5, 30, 15, step=1),
         Slider("bulkhead", "SQL searches at once (bulkhead)", "", 1, 8, FALLBACK_BULKHEAD, integer=True),
         Slider("connections", "SQL connections", "", 2, 12, SQL_CONNECTIONS, integer=True)],
        variants={"fallback unprotected": {"protect": False}, "fallback behind a bulkhead": {"protect": True}},
        summary=_dash_summary, figsize=(9.0, 3.2),
        title=f"es is down from {DASH_START:g} s (shaded) for the time you set, and the run goes on {DASH_AFTER:g} s "
              f"after: {SEARCH_RATE:g} searches/s fall back onto SQL, which also serves {CHECKOUT_RATE:g} checkouts/s. "
              "Per 2 s: searches answered (blue), checkouts answered (purple, dashed)")
