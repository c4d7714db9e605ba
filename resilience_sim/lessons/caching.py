"""10 Caching and stale data: when the source is down, serve an older value, and know how old.

The story is a product **catalog** in front of a **db**. The catalog holds ``ITEMS`` products whose
popularity follows Zipf's law (item ``k``, counting from 0, is asked ``1/(k+1)`` times as often as
the first), so a few hot items get most of the requests and a long tail is asked rarely. Every
request reads one item (its ``req.key``) through a :class:`~resilience_sim.CachedRead` layer and the
:class:`~resilience_sim.policies.Cache` policy of the experiment; the db goes down for a few minutes.

* :func:`catalog_run`: the catalog with any cache (or none) through an outage; :func:`ttl_sweep` runs
  it for several TTLs, with and without stale-if-error.
* :func:`hot_key_outages`: one hot key through many outages, to check the soft/hard TTL model
  (:func:`expected_failing_time`, Amazon Builders' Library, "Caching challenges and strategies").
* :func:`ttl_hit_ratio`: one key, Poisson arrivals, the hit ratio of a TTL cache against
  :func:`hit_ratio_formula`, ``λT / (1 + λT)``.
* :func:`refresh_run`: a hot key expiring in front of a slow db: blocking refresh with or without
  coalescing, or stale-while-revalidate.
* :func:`restart_run`: the cache restarts cold under a hot key (a herd, with or without coalescing);
  :func:`addiction_run`: a db sized for the hit ratio meets an empty cache.
* :func:`negative_run`: a bot asks for a deleted item whose lookup costs the db a scan.

Every scenario returns a :class:`CacheRun`: the run's results, the cache, and the time (and key) of
every call that reached the db. Times are simulated seconds.
"""
from __future__ import annotations

import bisect
import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..core import theory, validate
from ..core.distributions import Distribution, LogNormal, as_distribution
from ..core.profiles import Constant, Ramp
from ..core.reasons import Outcome
from ..metrics import Results
from ..metrics.windows import quality_series
from ..policies import Cache
from ..sim.cache import CachedRead
from ..sim.client import Client
from ..sim.faults import Outage
from ..sim.probes import CallLog, ServiceProbe
from ..sim.service import Service, ServiceError
from ..sim.workload import OpenLoop
from ..sim.world import World
from ..views import plots
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import BAD, GOOD, RunMemo, Table, percent

# --- the catalog of the story -----------------------------------------------------------------------
#: Products in the catalog, and the Zipf exponent of their popularity.
ITEMS, ZIPF = 1000, 1.0
#: Catalog requests per second, and the catalog's own work per request (seconds).
RATE, CATALOG_WORK = 10.0, 0.001
#: The db: workers and latency (median 20 ms, p99 100 ms).
DB_WORKERS = 8
DB_LATENCY = LogNormal.from_percentiles(median=0.020, p99=0.100)
#: The story's run: the db is down for three minutes, from 240 s to 420 s, of a 600 s run.
OUTAGE, DURATION = (240.0, 420.0), 600.0
#: The story's cache: ``Cache-Control: max-age=60, stale-if-error=300``.
TTL, STALE_IF_ERROR = 60.0, 300.0
#: The TTLs of the sweep (seconds).
TTLS = (10.0, 30.0, 60.0, 120.0, 300.0)
#: Seconds the world runs past the last arrival, so that every request ends.
SETTLE = 5.0


def story_cache(ttl: float = TTL, stale_if_error: float = 0.0, **options) -> Cache:
    """A soft TTL ``ttl`` and, with ``stale_if_error`` > 0, a hard TTL ``ttl + stale_if_error``: the
    cache RFC 5861's ``Cache-Control: max-age=ttl, stale-if-error=stale_if_error`` asks for."""
    ttl = validate.positive("ttl", ttl)
    stale_if_error = validate.non_negative("stale_if_error", stale_if_error)
    return Cache(ttl, hard_ttl=ttl + stale_if_error, **options)


@functools.lru_cache(maxsize=16)
def _cumulative(items: int, zipf: float) -> tuple:
    return tuple(itertools.accumulate(1.0 / (k + 1) ** zipf for k in range(items)))


def popularity(items: int = ITEMS, zipf: float = ZIPF) -> np.ndarray:
    """The share of requests for each item, most popular first (Zipf's law with exponent ``zipf``)."""
    items = validate.integer("items", items, low=1, high=10 ** 6)
    zipf = validate.non_negative("zipf", zipf)
    weights = np.diff(np.array((0.0,) + _cumulative(items, zipf)))
    return weights / weights.sum()


def item_key(items: int = ITEMS, zipf: float = ZIPF):
    """A workload's key function: an item number in ``[0, items)``, drawn by popularity."""
    items = validate.integer("items", items, low=1, high=10 ** 6)
    zipf = validate.non_negative("zipf", zipf)
    cum = _cumulative(items, zipf)
    total, last, pick = cum[-1], items - 1, bisect.bisect_right

    def key(rng):
        return min(pick(cum, rng.random() * total), last)
    return key


# --- one run -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReadStats:
    """How the reads that started in a window fared."""
    requests: int
    answered: float            # any answer, fresh or stale
    full_quality: float        # fresh answers only
    age_p50: float             # age of the data in the answers (seconds); NaN with no answer
    age_max: float
    latency_p99: float         # all requests, whatever the outcome (seconds)


@dataclass
class CacheRun:
    """One run: the results, the cache (None without one), the db's outages and the cache's
    restarts, and the time and key of every call that reached the db (``db_calls``, ``db_keys``)."""
    results: Results = field(repr=False)
    cache: Cache | None
    outages: tuple
    clears: tuple
    duration: float
    db_calls: np.ndarray = field(repr=False)
    db_keys: list = field(repr=False)
    probe: ServiceProbe | None = field(default=None, repr=False)
    catalog_work: float = CATALOG_WORK

    @property
    def outage(self) -> tuple:
        """The first outage (start, end), or None."""
        return self.outages[0] if self.outages else None

    def stats(self, window=None) -> ReadStats:
        """:class:`ReadStats` of the requests that started inside ``window`` (default: the first outage)."""
        lo, hi = self._window(window)
        seen = self.results.between(lo, hi)
        if not len(seen):
            raise ValueError(f"window must hold some requests, got {(lo, hi)!r}")
        if seen.ages().size:
            age = seen.staleness_percentiles((50, 100))
            p50, top = age[50], age[100]
        else:
            p50 = top = math.nan
        return ReadStats(len(seen), seen.request_availability(), seen.full_quality_availability(), p50, top,
                         float(np.percentile(seen.latency, 99)))

    def _window(self, window) -> tuple:
        if window is None:
            if self.outage is None:
                raise ValueError("window must be given for a run without an outage")
            return self.outage
        try:
            lo, hi = window
        except (TypeError, ValueError):
            raise validate.WrongType(f"window must be a (start, end) pair in seconds, "
                                     f"got {validate.show(window)}") from None
        lo = validate.number("window start", lo, low=0.0, high=self.results.until)
        hi = validate.number("window end", hi, low=lo, high=self.results.until, low_open=True)
        return lo, hi

    def max_age(self) -> float:
        """The oldest data any answer carried, in seconds (0.0 when nothing was answered)."""
        ages = self.results.ages()
        return float(ages.max()) if ages.size else 0.0

    def db_calls_between(self, lo: float, hi: float, *, key=None) -> int:
        """Calls that reached the db in ``[lo, hi)`` (only those for ``key``, when given)."""
        mask = (self.db_calls >= lo) & (self.db_calls < hi)
        if key is not None:
            mask &= np.array([k == key for k in self.db_keys], dtype=bool)
        return int(np.count_nonzero(mask))

    def db_rate(self, bin_width: float = 1.0, window=None) -> tuple[np.ndarray, np.ndarray]:
        """(bin starts, calls per second reaching the db) over ``window`` (default: the whole run)."""
        bin_width = validate.positive("bin_width", bin_width)
        lo, hi = (0.0, self.duration) if window is None else self._window(window)
        edges = np.arange(lo, hi + bin_width / 2, bin_width)
        if len(edges) < 2:
            raise ValueError(f"bin_width must fit in the window {(lo, hi)!r}, got {bin_width:g}")
        counts, _ = np.histogram(self.db_calls, bins=edges)
        return edges[:-1], counts / bin_width

    def bursts(self, gap: float = 1.0, *, since: float = 0.0) -> list:
        """Sizes of the bursts of db calls after ``since``: calls less than ``gap`` seconds apart count as one burst."""
        times = self.db_calls[self.db_calls >= since]
        if not times.size:
            return []
        cuts = np.flatnonzero(np.diff(times) >= validate.positive("gap", gap)) + 1
        return [len(part) for part in np.split(times, cuts)]

    def hit_ratio(self, window) -> float:
        """The share of the requests started in ``window`` (a (start, end) pair) that the cache answered
        at once, without a fetch or a wait of their own. While the source is up this is
        ``CacheStats.hit_ratio`` for the window; while it fails, stale-if-error answers count too."""
        lo, hi = self._window(window)
        seen = self.results.between(lo, hi)
        if not len(seen):
            raise ValueError(f"window must hold some requests, got {(lo, hi)!r}")
        at_once = seen.latency <= self.catalog_work + 1e-9          # the catalog's own work only
        return float(np.mean(at_once & (seen.outcome <= Outcome.DEGRADED) & _answered_by(seen, "cache")))

    def stale_gaps(self, window=None) -> np.ndarray:
        """For each request of ``window`` (default: the first outage) that failed although its item had
        been answered before the window: the seconds since that item's data was last written into the
        cache (an answer's data was written at its end minus its age). Past the hard TTL, no stale value."""
        lo, hi = self._window(window)
        before, inside = self.results.between(0.0, lo), self.results.between(lo, hi)
        ok = before.outcome <= Outcome.DEGRADED
        written: dict = {}
        for key, when in zip(before.key_values[ok], (before.end - before.age)[ok]):
            written[key] = max(float(when), written.get(key, -math.inf))
        failed = inside.outcome > Outcome.DEGRADED
        return np.array([start + self.catalog_work - written[key]
                         for key, start in zip(inside.key_values[failed], inside.start[failed]) if key in written])

    def cold_share(self, window=None) -> float:
        """The share of the requests in ``window`` (default: the first outage) for items that no request
        before the window was answered for: whatever its settings, the cache has nothing to serve them."""
        lo, hi = self._window(window)
        before, inside = self.results.between(0.0, lo), self.results.between(lo, hi)
        seen = set(before.key_values[before.outcome <= Outcome.DEGRADED])
        return float(np.mean([key not in seen for key in inside.key_values]))

    def answered_by_rank(self, top: int, window=None) -> tuple[float, float]:
        """(share answered of the ``top`` most popular items, of all the others) during ``window``."""
        lo, hi = self._window(window)
        seen = self.results.between(lo, hi)
        keys = np.array([seen.key(i) for i in range(len(seen))])     # item numbers: rank 0 is the hottest
        ok = seen.outcome <= Outcome.DEGRADED
        hot = keys < validate.integer("top", top, low=1)
        return (float(ok[hot].mean()) if hot.any() else math.nan,
                float(ok[~hot].mean()) if (~hot).any() else math.nan)


def _run(seed: int, cache: Cache | None, workloads, *, duration: float, outages=(), clears=(),
         db_workers: int = DB_WORKERS, db_latency=DB_LATENCY, db_queue: int | None = None,
         timeout: float | None = None, db_handler=None, probe_every: float | None = None,
         catalog_work: float = CATALOG_WORK) -> CacheRun:
    """Build the catalog and the db, run it, and gather a :class:`CacheRun`. ``workloads``: a list of
    (name, profile, key) for the OpenLoop arrivals."""
    if cache is not None and not isinstance(cache, Cache):
        raise validate.WrongType(f"cache must be a Cache (e.g. Cache(ttl=60)) or None, got {validate.show(cache)}")
    world = World(seed)
    db = Service(world, "db", capacity=db_workers, latency=db_latency, queue_limit=db_queue, handler=db_handler)
    log = CallLog(db, durations=True)          # the time and key of every call reaching the db
    target = log if timeout is None else Client(world, log, name="catalog->db", timeout=timeout)
    if outages:
        Outage(db, outages)
    probe = ServiceProbe(world, db, probe_every) if probe_every else None
    if cache is None:
        def handler(svc, req):
            return (yield from svc.ask("db", req))
    else:
        layer = CachedRead(world, cache)
        if clears:
            layer.clear_at(*clears)

        def handler(svc, req):
            return (yield from layer.read(req, lambda sub: svc.ask("db", sub)))
    catalog = Service(world, "catalog", capacity=100_000, latency=catalog_work, dependencies={"db": target},
                      handler=handler)
    for name, profile, key in workloads:
        OpenLoop(world, catalog, profile, duration=duration, name=name, key=key)
    results = world.run(until=duration + SETTLE)
    return CacheRun(results, cache, tuple(outages), tuple(clears), duration, np.array(log.times), list(log.keys),
                    probe, catalog_work)


def _answered_by(results: Results, name: str) -> np.ndarray:
    """True for each request of ``results`` whose answer (or error) came from component ``name``."""
    codes = results._answered_by
    return codes == results.names.index(name) if name in results.names else np.zeros(len(codes), dtype=bool)


def catalog_run(seed: int, cache: Cache | None = None, *, outage=OUTAGE, duration: float = DURATION,
                rate: float = RATE, items: int = ITEMS, zipf: float = ZIPF,
                catalog_work: float = CATALOG_WORK) -> CacheRun:
    """The catalog, ``rate`` requests a second for ``duration`` seconds, the db down during ``outage``
    (a (start, end) pair, or None), reading through ``cache`` (a fresh :class:`Cache`, or None);
    ``catalog_work``: the catalog's own seconds of work per request."""
    duration = validate.positive("duration", duration)
    rate = validate.positive("rate", rate)
    outages = () if outage is None else validate.windows("outage", [outage])
    return _run(seed, cache, [("catalog", Constant(rate), item_key(items, zipf))], duration=duration,
                outages=outages, catalog_work=validate.non_negative("catalog_work", catalog_work))


def ttl_sweep(seed: int, ttls=TTLS, *, stale_if_error: float = STALE_IF_ERROR, **kw) -> Table:
    """The catalog through the story's outage for each TTL, without and with stale-if-error.

    A :class:`Table` whose ``data`` is ``{(ttl, with_sie): CacheRun}`` (``with_sie`` False or True):
    per TTL, the hit ratio and the median age served before the outage (the same with or without
    stale-if-error, which only acts on errors), then, during the outage, the share answered and the
    oldest data served, without and with stale-if-error (``plain`` and ``SIE`` in the headers)."""
    ttls = [validate.positive("ttls", t) for t in ttls]
    if not ttls:
        raise ValueError("ttls must hold at least one TTL in seconds, got none")
    data, rows = {}, []
    for ttl in ttls:
        for sie in (False, True):
            data[ttl, sie] = catalog_run(seed, story_cache(ttl, stale_if_error if sie else 0.0), **kw)
        plain, with_sie = data[ttl, False], data[ttl, True]
        window = (0.0, plain.outage[0])
        before = plain.stats(window)
        rows.append([f"{ttl:g} s", percent(round(plain.hit_ratio(window), 3)), f"{before.age_p50:.0f} s",
                     percent(round(plain.stats().answered, 3)), percent(round(with_sie.stats().answered, 3)),
                     f"{plain.stats().age_max:.0f} s", f"{with_sie.stats().age_max:.0f} s"])
    headers = ["TTL", "hit ratio before the outage", "median age before", "answered in the outage: plain TTL",
               "with stale-if-error", "oldest in the outage: plain TTL", "with stale-if-error"]
    return Table(headers, rows, data)


# --- the soft/hard TTL model -----------------------------------------------------------------------
#: The analytic models live in the theory module (tests and labs use them too).
expected_failing_time = theory.stale_if_error_failing_time


@dataclass
class HotKeyRun:
    """One hot key through many outages of the db (``run.outages``)."""
    run: CacheRun = field(repr=False)
    ttl: float
    hard_ttl: float
    outage_s: float

    def ages_at_start(self) -> np.ndarray:
        """The age of the cached value at the start of each outage, from the last request before it
        (infinite when that request failed: the cache held nothing to serve)."""
        res = self.run.results
        out = []
        for lo, _ in self.run.outages:
            i = int(np.searchsorted(res.start, lo)) - 1     # the last request that started before
            if i < 0 or res.outcome[i] > Outcome.DEGRADED:
                out.append(math.inf)
                continue
            written = res.start[i] + CATALOG_WORK - res.age[i]   # the cache is asked after the catalog's work
            out.append(lo - written)
        return np.array(out)

    def failing_times(self) -> np.ndarray:
        """Seconds from the first failed request of each outage to its end (0 when none failed)."""
        res = self.run.results
        failed = res.outcome > Outcome.DEGRADED
        out = []
        for lo, hi in self.run.outages:
            mask = failed & (res.start >= lo) & (res.start < hi)
            out.append(hi - float(res.start[mask].min()) if mask.any() else 0.0)
        return np.array(out)

    def predicted(self) -> np.ndarray:
        """max(0, D - (H - a)) for each outage, from the age a the key had when it began."""
        return np.clip(self.outage_s - (self.hard_ttl - self.ages_at_start()), 0.0, self.outage_s)


def hot_key_outages(seed: int, *, ttl: float = TTL, hard_ttl: float = TTL + STALE_IF_ERROR,
                    outage_s: float = 180.0, outages: int = 30, rate: float = 0.5) -> HotKeyRun:
    """One key asked ``rate`` times a second through ``outages`` outages of ``outage_s`` seconds each.

    Each outage starts 30 s plus a random share of one TTL after the previous one ended (time for the
    key to be fetched again), so the key's age when it begins is spread over the TTL, as the model
    assumes."""
    outage_s = validate.positive("outage_s", outage_s)
    outages = validate.integer("outages", outages, low=1, high=1000)
    rate = validate.positive("rate", rate)
    cache = Cache(validate.positive("ttl", ttl), hard_ttl=hard_ttl)
    rng = np.random.default_rng(seed)
    t, windows = 2 * cache.hard_ttl, []
    for _ in range(outages):
        t += rng.uniform(0, cache.ttl)
        windows.append((t, t + outage_s))
        t += outage_s + 30.0
    run = _run(seed, cache, [("hot key", Constant(rate), 0)], duration=t, outages=windows)
    return HotKeyRun(run, cache.ttl, cache.hard_ttl, outage_s)


# --- the TTL hit ratio ---------------------------------------------------------------------------------
hit_ratio_formula = theory.ttl_hit_ratio


def catalog_hit_ratio_formula(ttl: float, *, rate: float = RATE, items: int = ITEMS, zipf: float = ZIPF) -> float:
    """The catalog's hit ratio by :func:`hit_ratio_formula`, item by item: the sum over items of
    p_k λ_k T / (1 + λ_k T), where p_k is the item's share of the requests and λ_k = p_k ``rate``."""
    share = popularity(items, zipf)
    x = share * validate.positive("rate", rate) * validate.positive("ttl", ttl)
    return float((share * x / (1 + x)).sum())


def ttl_hit_ratio(seed: int, *, rate: float = 1.0, ttl: float, requests: int = 5000) -> float:
    """The measured hit ratio of ``Cache(ttl)`` for one key asked at Poisson ``rate`` (a db that answers
    at once, so that a miss refills the cache when it happens)."""
    rate = validate.positive("rate", rate)
    requests = validate.integer("requests", requests, low=1, high=10 ** 6)
    cache = Cache(validate.positive("ttl", ttl))
    world = World(seed)
    db = Service(world, "db", capacity=1, latency=0.0)
    layer = CachedRead(world, cache)
    catalog = Service(world, "catalog", capacity=10, latency=0.0, dependencies=[db],
                      handler=lambda svc, req: layer.read(req, lambda sub: svc.ask("db", sub)))
    OpenLoop(world, catalog, rate, requests=requests, key=0)
    world.run(until=requests / rate * 2 + 60)
    return (cache.hits + cache.stale) / (cache.hits + cache.stale + cache.misses + cache.coalesced)


# --- refreshing a hot key: herd, coalescing, stale-while-revalidate -------------------------------------
#: A slow-ish db for the hot-key scenarios: median 100 ms, p99 250 ms.
SLOW_DB = LogNormal.from_percentiles(median=0.100, p99=0.250)
#: The hot key's requests per second, and its TTL (seconds).
HOT_RATE, HOT_TTL = 200.0, 10.0
#: The three ways to refresh a value past its TTL.
REFRESH_MODES = {
    "blocking, no coalescing": dict(coalesce=False),
    "blocking, coalesced": dict(coalesce=True),
    "stale-while-revalidate": dict(coalesce=True, stale_while_revalidate=HOT_TTL),
}


def refresh_run(seed: int, mode: str, *, rate: float = HOT_RATE, ttl: float = HOT_TTL,
                duration: float = 60.0) -> CacheRun:
    """One hot key (``rate`` requests a second) whose value lives ``ttl`` seconds, in front of the slow db,
    refreshed the way ``mode`` (one of :data:`REFRESH_MODES`) says."""
    validate.choice("mode", mode, list(REFRESH_MODES))
    options = dict(REFRESH_MODES[mode])
    if "stale_while_revalidate" in options:
        options["stale_while_revalidate"] = validate.positive("ttl", ttl)
    cache = Cache(validate.positive("ttl", ttl), **options)
    return _run(seed, cache, [("hot key", Constant(validate.positive("rate", rate)), "home")],
                duration=validate.positive("duration", duration), db_workers=64, db_latency=SLOW_DB)


def waited(run: CacheRun, *, since: float = 1.0) -> np.ndarray:
    """Latencies of the requests (started after ``since``) that waited for the db: slower than the
    catalog's own work."""
    seen = run.results.between(since, run.duration)
    lat = seen.latency
    return lat[lat > 2 * CATALOG_WORK]


# --- the cache's own failure modes -------------------------------------------------------------------
#: The restart scenario: a hot home page, the catalog's items, the cache restarting at RESTART_AT.
HOME_RATE, ITEM_RATE, RESTART_AT, RESTART_DURATION = 1000.0, 50.0, 8.0, 16.0


def restart_run(seed: int, *, coalesce: bool, restart_at: float = RESTART_AT, duration: float = RESTART_DURATION,
                home_rate: float = HOME_RATE, item_rate: float = ITEM_RATE) -> CacheRun:
    """The home page (one hot key, ``home_rate`` a second) and the items (``item_rate`` a second) read through
    a long-lived cache that restarts empty at ``restart_at``; the db is the slow one (``SLOW_DB``)."""
    coalesce = validate.boolean("coalesce", coalesce)
    duration = validate.positive("duration", duration)
    restart_at = validate.number("restart_at", restart_at, low=0.0, high=duration)
    workloads = [("home", Constant(validate.positive("home_rate", home_rate)), "home"),
                 ("item", Constant(validate.positive("item_rate", item_rate)), item_key())]
    return _run(seed, Cache(600.0, coalesce=coalesce), workloads, duration=duration, clears=(restart_at,),
                db_latency=SLOW_DB)


#: Cache addiction: traffic ramps up to ADDICT_RATE over the first minute (the cache warms up on the
#: way), the cache restarts at ADDICT_RESTART; the db has ADDICT_WORKERS workers of 100 ms.
ADDICT_RATE, ADDICT_WARMUP, ADDICT_RESTART, ADDICT_DURATION = 100.0, 60.0, 90.0, 150.0
ADDICT_WORKERS, ADDICT_LATENCY, ADDICT_TTL = 2, SLOW_DB, 600.0


def db_capacity(workers: int = ADDICT_WORKERS, latency: Distribution = ADDICT_LATENCY) -> float:
    """Calls a second the db can finish: workers / mean latency."""
    latency = as_distribution("latency", latency, number_means="fixed")
    return validate.integer("workers", workers, low=1) / latency.mean


def addiction_run(seed: int, *, cache: bool = True, restart: bool = True, db_queue: int | None = None,
                  timeout: float | None = None, rate: float = ADDICT_RATE) -> CacheRun:
    """The catalog with a db sized for its hit ratio: ``ADDICT_WORKERS`` workers. Traffic ramps up to
    ``rate`` over ``ADDICT_WARMUP`` seconds; with ``restart`` the cache comes back empty at
    ``ADDICT_RESTART``. ``db_queue`` bounds the db's queue (beyond it calls are refused "overload");
    ``timeout`` makes the catalog give up on a db call after that many seconds (the db works on)."""
    profile = Ramp(5.0, validate.positive("rate", rate), ADDICT_WARMUP)
    store = Cache(ADDICT_TTL) if validate.boolean("cache", cache) else None
    clears = (ADDICT_RESTART,) if validate.boolean("restart", restart) and store is not None else ()
    return _run(seed, store, [("catalog", profile, item_key())], duration=ADDICT_DURATION, clears=clears,
                db_workers=ADDICT_WORKERS, db_latency=ADDICT_LATENCY, db_queue=db_queue, timeout=timeout,
                probe_every=1.0)


# --- negative caching ---------------------------------------------------------------------------------
#: The deleted item a bot keeps asking for, its requests a second, and the seconds of db work its
#: lookup costs (a scan that finds nothing); the catalog's own requests a second beside it.
MISSING, BOT_RATE, SCAN, NEG_CATALOG_RATE = "deleted item", 20.0, 0.3, 50.0


def _db_with_missing(svc, req):
    if req.key == MISSING:
        yield svc.env.timeout(SCAN)
        raise ServiceError(svc.name, "not found")
    return "row"


def negative_run(seed: int, *, negative_ttl: float, duration: float = 60.0) -> CacheRun:
    """The catalog (``NEG_CATALOG_RATE`` a second) and a bot asking for :data:`MISSING` ``BOT_RATE`` times a
    second; the db answers "not found" after a scan of ``SCAN`` seconds; ``negative_ttl`` caches that answer."""
    cache = Cache(TTL, negative_ttl=validate.non_negative("negative_ttl", negative_ttl))
    workloads = [("catalog", Constant(NEG_CATALOG_RATE), item_key()), ("bot", Constant(BOT_RATE), MISSING)]
    return _run(seed, cache, workloads, duration=validate.positive("duration", duration),
                db_handler=_db_with_missing)


# --- pictures -----------------------------------------------------------------------------------------
def draw_availability(ax, run: CacheRun, *, bin_width: float = 10.0, legend: bool = True) -> None:
    """% of requests answered (any answer) and answered fresh, per ``bin_width`` seconds; outages shaded."""
    series = quality_series(run.results.between(0.0, run.duration), bin_width)
    plots.shade_faults(ax, run.results)
    ax.step(series["t"], 100 * series["answered"], where="post", color=GOOD, lw=2.2, label="answered")
    ax.step(series["t"], 100 * series["full_quality"], where="post", color="tab:cyan", ls=":", lw=2,
            label="answered fresh")
    ax.set_xlim(0, run.duration)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("time (s)")
    if plots._first_column(ax):
        ax.set_ylabel(f"requests answered (%), per {bin_width:g} s")
    if legend:
        ax.legend(loc="lower left", fontsize=8, framealpha=0.9)


def draw_sweep(axes, sweep: Table) -> None:
    """Left: % answered during the outage against the TTL; right: the median age served before the
    outage and the oldest served during it."""
    left, right = axes
    ttls = sorted({ttl for ttl, _ in sweep.data})
    before = [sweep.data[t, False].stats((0.0, sweep.data[t, False].outage[0])).age_p50 for t in ttls]
    right.plot(ttls, before, "o-", color="k", label="median age before the outage (both)")
    for sie, color, name in ((False, BAD, "plain TTL"), (True, GOOD, "with stale-if-error")):
        runs = [sweep.data[t, sie] for t in ttls]
        left.plot(ttls, [100 * r.stats().answered for r in runs], "o-", color=color, label=name)
        right.plot(ttls, [r.stats().age_max for r in runs], "s--", color=color, label=f"oldest in the outage: {name}")
    left.set(xlabel="TTL (s)", ylabel="answered during the outage (%)", ylim=(-3, 103),
             title="during the outage: requests answered")
    right.set(xlabel="TTL (s)", ylabel="age of the data served (s)", title="age of the data served")
    left.legend(fontsize=8, loc="center left")                     # between the two lines: nothing there
    right.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)   # outside


def draw_hot_key(ax, hot: HotKeyRun) -> None:
    """Each outage's failing time against the key's age when it began, and the model's line."""
    a = np.linspace(0, hot.ttl * 1.05, 50)
    ax.plot(a, np.maximum(0, hot.outage_s - (hot.hard_ttl - a)), color="k", lw=1,
            label="model: max(0, D − (H − a))")
    ax.plot(hot.ages_at_start(), hot.failing_times(), "o", color=BAD, ms=4, label="measured, one per outage")
    ax.set(xlabel="age a of the cached value when the outage began (s)", ylabel="seconds failing")
    ax.legend(fontsize=8, loc="upper left")


#: Line styles for up to three runs drawn on one axes: widths and dashes differ, so that a line
#: drawn exactly over another still shows (a thick solid line under a thin dashed one).
RUN_STYLES = ({"color": BAD, "lw": 1.4, "ls": "-"}, {"color": GOOD, "lw": 3.2, "ls": "-", "alpha": 0.6},
              {"color": "tab:purple", "lw": 1.4, "ls": (0, (4, 2))})


def draw_db_rate(ax, runs: dict, *, bin_width: float = 0.1, window=None) -> None:
    """Calls reaching the db per ``bin_width`` bin, one line per run of ``runs`` ({label: CacheRun}); the
    legend in a band above the highest bin, where it covers no data."""
    top = 1.0
    for (label, run), style in zip(runs.items(), itertools.cycle(RUN_STYLES)):
        t, rate = run.db_rate(bin_width, window)
        ax.step(t, rate * bin_width, where="post", label=label, **style)
        top = max(top, float((rate * bin_width).max()))
        for c in run.clears:
            ax.axvline(c, color="k", ls="--", lw=1)
    ax.set(xlabel="time (s)", ylabel=f"db calls per {bin_width:g} s", ylim=(-0.04 * top, 1.35 * top))
    ax.legend(fontsize=8, loc="upper center", ncol=len(runs), frameon=False)


#: The cache-addiction runs' lines (bounded queue, timeout, no cache): a thick pale line under a dashed
#: one, so that the two stay visible where they are equal.
ADDICTION_STYLES = ({"color": GOOD, "lw": 3.2, "alpha": 0.6}, {"color": BAD, "lw": 1.4, "ls": (0, (4, 2))},
                    {"color": "tab:purple", "lw": 1.4})


def draw_answered(ax, runs: dict, *, bin_width: float = 5.0) -> None:
    """% of requests answered per ``bin_width`` seconds, one line per run of ``runs`` ({label: CacheRun})."""
    for (label, run), style in zip(runs.items(), itertools.cycle(ADDICTION_STYLES)):
        series = quality_series(run.results.between(0.0, run.duration), bin_width)
        ax.step(series["t"], 100 * series["answered"], where="post", label=label, **style)
        for c in run.clears:
            ax.axvline(c, color="k", ls="--", lw=1)
    ax.set(xlabel="time (s)", ylabel="requests answered (%)", ylim=(-3, 103))
    ax.legend(fontsize=8, loc="lower left")


def draw_db_queue(ax, runs: dict) -> None:
    """Calls at the db (at work or waiting), sampled each second, one line per run of ``runs``."""
    for (label, run), style in zip(runs.items(), itertools.cycle(ADDICTION_STYLES)):
        ax.plot(run.probe.times, run.probe.in_system, label=label, **style)
        for c in run.clears:
            ax.axvline(c, color="k", ls="--", lw=1)
    ax.set(xlabel="time (s)", ylabel="calls at the db", yscale="symlog")
    ax.legend(fontsize=8)


# --- the dashboard ------------------------------------------------------------------------------------
#: The dashboard's catalog: fewer items and requests than the story's, so that it redraws at once. The db
#: goes down at DASH_START (a warm-up, so the cache holds what was asked before) for the slider's
#: length, and the run goes on DASH_AFTER seconds past the outage.
DASH_ITEMS, DASH_RATE, DASH_START, DASH_AFTER, DASH_SEED, DASH_BIN = 200, 3.0, 90.0, 30.0, 10, 10.0
#: Pairs of runs (plain TTL, with stale-if-error) kept by parameters: both panels draw the same pair.
_DASH_RUNS = RunMemo(keep=32)


@dataclass
class DashRun:
    """One run of the dashboard and its cache's settings (``bound``: its max_staleness)."""
    run: CacheRun
    ttl: float
    stale_if_error: float
    with_sie: bool
    bound: float                   # the cache's max_staleness


@dataclass
class DashPair:
    """The dashboard's two runs, a plain TTL and the same TTL with stale-if-error, and the share of the
    outage's requests for items nobody had fetched before it (``cold``: no cache setting serves those)."""
    plain: DashRun
    sie: DashRun
    cold: float


def _dash_run(ttl_s, stale_if_error_s, outage_s, *, with_sie: bool) -> DashRun:
    cache = story_cache(ttl_s, stale_if_error_s if with_sie else 0.0)
    run = catalog_run(DASH_SEED, cache, outage=(DASH_START, DASH_START + outage_s),
                      duration=DASH_START + outage_s + DASH_AFTER, rate=DASH_RATE, items=DASH_ITEMS,
                      catalog_work=0.0)      # the catalog's latency is not shown: one event less a request
    return DashRun(run, ttl_s, stale_if_error_s, with_sie, cache.max_staleness)


def dash_pair(ttl_s: float, stale_if_error_s: float, outage_s: float) -> DashPair:
    """The dashboard's pair of runs for these settings (kept by parameters: the panels share it)."""
    def make():
        plain, sie = (_dash_run(ttl_s, stale_if_error_s, outage_s, with_sie=w) for w in (False, True))
        return DashPair(plain, sie, sie.run.cold_share())                 # the same arrivals in both runs
    return _DASH_RUNS.get((float(ttl_s), float(stale_if_error_s), float(outage_s)), make)


def _dash_compute(ttl_s, stale_if_error_s, outage_s, *, panel: str):
    return panel, dash_pair(ttl_s, stale_if_error_s, outage_s)


def oldest_per_bin(run: CacheRun, bin_width: float) -> tuple[np.ndarray, np.ndarray]:
    """(bin starts, the oldest data answered in each ``bin_width`` bin, in seconds; NaN where nothing was)."""
    res = run.results.between(0.0, run.duration)
    answered = res.outcome <= Outcome.DEGRADED
    n = int(math.ceil(run.duration / validate.positive("bin_width", bin_width)))
    idx = np.minimum((res.start[answered] // bin_width).astype(int), n - 1)
    oldest = np.full(n, np.nan)
    np.fmax.at(oldest, idx, res.age[answered].astype(float))
    return np.arange(n) * bin_width, oldest


def nice_ticks(top: float, count: int = 4) -> np.ndarray:
    """About ``count`` round ticks from 0 to ``top`` (steps of 1, 2 or 5 times a power of ten)."""
    raw = validate.positive("top", top) / count
    base = 10 ** math.floor(math.log10(raw))
    step = min((m * base for m in (1, 2, 5, 10)), key=lambda step: abs(top / step - count))
    return np.arange(0, top + step / 2, step)


#: The dashboard's two runs: a plain TTL dashed on top of stale-if-error's thick pale line, so that
#: both show where they are equal (before the outage).
_DASH_STYLES = {False: {"color": BAD, "lw": 1.5, "ls": (0, (4, 2)), "label": "plain TTL"},
                True: {"color": GOOD, "lw": 3.2, "alpha": 0.55, "label": "TTL + stale-if-error"}}


def _dash_draw(ax, result) -> None:
    # lean on text, which is most of a redraw: few fixed ticks, one legend, one y axis (twinx doubles it)
    panel, pair = result
    run = pair.sie.run
    lo, hi = run.outage
    ax.axvspan(lo, hi, color="tab:red", alpha=0.12, lw=0)
    if panel == "answered":
        for d in (pair.sie, pair.plain):
            series = quality_series(d.run.results.between(0.0, d.run.duration), DASH_BIN)
            ax.step(series["t"], 100 * series["answered"], where="post", **_DASH_STYLES[d.with_sie])
        ax.step(series["t"], 100 * series["full_quality"], where="post", color="k", ls=":", lw=1.3,
                label="fresh (both)")    # stale-if-error changes no fresh answer: one line for both
        ax.set_ylim(-3, 128)             # the band above 100% holds the legend: it covers no data
        plots.fixed_ticks(ax.yaxis, [0, 50, 100])
        ax.set_ylabel("requests answered (%)")
        ax.legend(loc="upper center", ncol=3, fontsize=8, frameon=False, borderaxespad=0.2)
    else:
        for d in (pair.sie, pair.plain):
            t, oldest = oldest_per_bin(d.run, DASH_BIN)
            style = _DASH_STYLES[d.with_sie]
            ax.step(t, oldest, where="post", **{k: v for k, v in style.items() if k != "label"})
            ax.axhline(d.bound, color=style["color"], ls=":", lw=1.3)
        top = max(pair.sie.bound, pair.plain.bound)
        ax.set_ylim(-0.03 * top, 1.1 * top)
        plots.fixed_ticks(ax.yaxis, nice_ticks(top))
        ax.set_ylabel("age (s)")
    ax.set_xlim(0, run.duration)
    plots.fixed_ticks(ax.xaxis, nice_ticks(run.duration))
    ax.set_xlabel("time (s)")


def _dash_summary(result) -> str:
    panel, pair = result
    if panel == "answered":
        p, s = pair.plain.run.stats(), pair.sie.run.stats()
        return (f"in the outage, answered: plain {percent(round(p.answered, 3))}, with stale-if-error "
                f"{percent(round(s.answered, 3))}; {percent(round(pair.cold, 3))} asked for items nobody had "
                f"fetched before it")
    return "; ".join(f"{'with stale-if-error' if d.with_sie else 'plain'} {d.run.max_age():.0f} s (bound {d.bound:g} s)"
                     for d in (pair.plain, pair.sie))


@dashboard("10_caching/stale_if_error")
def stale_if_error_dashboard() -> Dashboard:
    """TTL, stale-if-error and the outage's length; a plain TTL and the same TTL with stale-if-error."""
    return Dashboard(
        _dash_compute, _dash_draw,
        [Slider("ttl_s", "TTL (max-age)", "s", 5, 120, 30, step=5),
         Slider("stale_if_error_s", "stale-if-error", "s", 30, 600, 300, step=30),
         Slider("outage_s", "db down for", "s", 10, 300, 120, step=10)],
        variants={f"requests answered, per {DASH_BIN:g} s": {"panel": "answered"},
                  f"oldest data served per {DASH_BIN:g} s; dotted: the bound": {"panel": "age"}},
        summary=_dash_summary, figsize=(9.0, 3.4), sharey=False,
        title=f"The catalog ({DASH_ITEMS} items, {DASH_RATE:g} requests/s) reads through a cache; the db goes "
              f"down at {DASH_START:g} s (shaded) for the time you set, and the run ends {DASH_AFTER:g} s after. "
              "Dashed red: a plain TTL; pale blue: the same TTL plus stale-if-error (bound: TTL + stale-if-error)")
