"""03 Faults and how to test for them: fault fingerprints, tests done in simulation, a chaos experiment.

* :func:`small_system` is the notebook's system: an ``api`` that calls a ``db`` (8 slots, 20 ms on
  average); :func:`inject` attaches one fault of a kind to it and :func:`fault_run` runs it under
  traffic; :func:`fingerprint` measures what the fault did inside its window.
* :func:`call_once` sends one request (for unit and end-to-end tests); :func:`load_test` ramps the
  rate up to find the knee; :func:`spike_test` measures how long a burst's backlog takes to drain;
  :func:`slo_check` is the assertion a resilience test makes.
* :func:`chaos_experiment` runs hypothesis, injection, observation on the same system.

Times are simulated seconds; pictures show milliseconds where latencies are small.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core import theory, validate
from ..core.distributions import Exponential, Fixed, Uniform
from ..core.profiles import Ramp, Spike
from ..metrics import Results
from ..metrics.windows import time_down
from ..sim.client import Client
from ..sim.faults import ErrorBurst, GrayFailure, LatencySpike, Outage, Partition
from ..sim.probes import ServiceProbe
from ..sim.service import Service, ServiceError
from ..sim.topologies import chain, forward
from ..sim.workload import OpenLoop, serve
from ..sim.world import World
from ..views import plots
from ..views.dashboard import Choice, Dashboard, Slider
from . import dashboard
from .common import Table

#: The small system: the api does 2 ms of its own work, then asks the db (8 slots, 20 ms on average).
API_WORK = 0.002
API_SLOTS = 64
DB_SLOTS = 8
DB_MEAN = 0.020
#: Traffic and the fault window of the fingerprint runs (seconds).
RATE = 50.0
DURATION = 40.0
WINDOW = (10.0, 30.0)
#: The fault kinds, in the order the notebook and the dashboard use.
KINDS = ("crash", "errors", "latency", "partition", "gray failure")
#: The SLO the tests and the chaos experiment check.
SLO_AVAILABILITY = 0.995
SLO_P99 = 0.200


# --- the system and its faults --------------------------------------------------------------------
def price_handler(svc, req):
    """The api's handler with a fallback: ask the db; if that fails, answer from a cache (degraded)."""
    try:
        return (yield from svc.ask("db", req))
    except ServiceError:
        req.degraded = "price from cache"
        return None


def price_handler_down_only(svc, req):
    """A teammate's version with a bug: it falls back only when the db is down, and lets every other
    failure (an error, a timeout, a partition) through to the user."""
    try:
        return (yield from svc.ask("db", req))
    except ServiceError as err:
        if err.reason != "down":
            raise
        req.degraded = "price from cache"
        return None


def run_tests(tests, *args) -> Table:
    """Run each test function with ``args`` and tell, as pytest would, which passed and which failed
    (with the first line of its assertion message). ``.data``: {test name: True if it passed}."""
    rows, data = [], {}
    for test in tests:
        try:
            test(*args)
        except AssertionError as err:
            data[test.__name__] = False
            rows.append([test.__name__, "FAILED", str(err).split("\n", 1)[0][:120]])
        else:
            data[test.__name__] = True
            rows.append([test.__name__, "passed", ""])
    return Table(["test", "result", "message"], rows, data)


def small_system(world, *, handler=forward, db_slots: int = DB_SLOTS, db_latency=None,
                 api_slots: int = API_SLOTS, timeout: float | None = None):
    """``api`` (2 ms of own work, then ``handler``) calling ``db`` (``db_slots`` slots, exponential
    latency with mean 20 ms unless ``db_latency`` is given), through a client with ``timeout`` when one
    is given. Returns ``(api, db)``."""
    db = Service(world, "db", capacity=db_slots, latency=Exponential(DB_MEAN) if db_latency is None else db_latency)
    to_db = db if timeout is None else Client(world, db, name="api->db", timeout=timeout)
    api = Service(world, "api", capacity=api_slots, latency=Fixed(API_WORK), dependencies=[to_db], handler=handler)
    return api, db


def fault_settings(kind: str, intensity: float) -> dict:
    """What ``intensity`` (0..1) means for each kind: the keywords of its fault, and words for people.

    crash: the db is down (intensity not used); errors: a share ``intensity`` of db calls fail;
    latency: db calls take ``intensity`` x 200 ms longer; partition: api and db cannot reach each
    other and a call hangs ``intensity`` x 1 s (a connect timeout) before failing; gray failure: db
    calls are 1 + 10 x intensity times slower and a share intensity / 10 of them fail.
    """
    validate.choice("kind", kind, KINDS)
    x = validate.probability("intensity", intensity)
    if kind == "crash":
        return {"words": "db down (a crash is all or nothing)"}
    if kind == "errors":
        return {"error_rate": x, "words": f"{x:.0%} of db calls fail"}
    if kind == "latency":
        return {"extra": 0.2 * x, "words": f"db calls take {200 * x:.0f} ms longer"}
    if kind == "partition":
        return {"hang": 1.0 * x, "words": f"api cannot reach db; a call hangs {1000 * x:.0f} ms, then fails"}
    return {"slowdown": 1 + 10 * x, "error_rate": x / 10,
            "words": f"db {1 + 10 * x:.0f}x slower, {x / 10:.0%} of calls fail, health check says up"}


def inject(kind: str, api: Service, db: Service, window, intensity: float = 0.5):
    """Attach one fault of ``kind`` (see :func:`fault_settings`) to the api → db system inside ``window``."""
    s = fault_settings(kind, intensity)
    windows = [tuple(window)]
    if kind == "crash":
        return Outage(db, windows)
    if kind == "errors":
        return ErrorBurst(db, windows, error_rate=s["error_rate"])
    if kind == "latency":
        if s["extra"] == 0:
            return None
        return LatencySpike(db, windows, extra=s["extra"])
    if kind == "partition":
        return Partition(api, db, windows, hang=s["hang"])
    if s["slowdown"] == 1 and s["error_rate"] == 0:
        return None
    return GrayFailure(db, windows, slowdown=s["slowdown"], error_rate=s["error_rate"])


def fault_run(kind: str | None, *, seed: int, intensity: float = 0.5, rate: float = RATE,
              duration: float = DURATION, window=WINDOW, handler=forward) -> Results:
    """The small system under ``rate`` requests per second for ``duration`` seconds, with one fault of
    ``kind`` inside ``window`` (``kind=None``: no fault, the baseline)."""
    world = World(seed)
    api, db = small_system(world, handler=handler)
    if kind is not None:
        inject(kind, api, db, window, intensity)
    OpenLoop(world, api, rate, duration=duration)
    return world.run(until=duration + 2.0)


@dataclass(frozen=True)
class Fingerprint:
    """What one fault did to the requests that reached the db inside its window, and what a health check saw."""
    kind: str
    requests: int
    availability: float          # share answered
    p50: float                   # seconds, answered requests (NaN if none)
    p99: float
    fastest: float               # seconds, any outcome
    slowest: float
    reasons: dict                # failure reason -> count
    health_check_down: float     # seconds the db's up/down health check said "down"


def _inside(results: Results, window) -> Results:
    """The requests that started in ``window``, which must lie inside the run."""
    try:
        return results.between(*window)
    except ValueError:
        raise ValueError(f"window must lie inside the run [0, {results.until:g}] s, got {window}") from None


def fingerprint(results: Results, window=WINDOW, kind: str = "") -> Fingerprint:
    """Measure the requests whose db call began inside ``window`` (they start the api's 2 ms earlier):
    availability, latency, failure reasons, and what the db's health check said during the window."""
    seen = _inside(results, (window[0] - API_WORK, window[1] - API_WORK))
    n = len(seen)
    if n == 0:
        raise ValueError(f"window must hold at least one request start, got {window}")
    ok_lat = seen.latencies()
    p50, p99 = (np.percentile(ok_lat, [50, 99]) if ok_lat.size else (math.nan, math.nan))
    reasons = dict(seen.reasons(unanswered_only=True))
    down = time_down(results.services["db"].timeline, *window)
    return Fingerprint(kind, n, float(ok_lat.size / n), float(p50), float(p99), float(seen.latency.min()),
                       float(seen.latency.max()), reasons, float(down))


def all_failed(fp: Fingerprint, reason: str, after: float) -> bool:
    """Whether every request of ``fp`` failed with ``reason``, each ``after`` seconds after it started."""
    return (fp.reasons == {reason: fp.requests}
            and math.isclose(fp.fastest, after, abs_tol=1e-9) and math.isclose(fp.slowest, after, abs_tol=1e-9))


def p99_near(measured: float, expected: float, n: int, tail_mean: float, *, sds: float = 4.0) -> bool:
    """Whether a p99 measured over ``n`` requests lies within ``sds`` of its standard deviations of
    ``expected``, for latencies whose tail falls off exponentially with mean ``tail_mean`` (an M/M/c
    queue's, or an exponential service time's): the density at the p99 is then 0.01 / ``tail_mean``,
    and a sample p99 spreads by :func:`theory.quantile_sd` (about 6 ms over 1,000 requests of 20 ms)."""
    spread = theory.quantile_sd(0.99, n, 0.01 / validate.positive("tail_mean", tail_mean))
    return abs(measured - expected) < validate.positive("sds", sds) * spread


def mean_near(samples, expected: float, sd: float, *, sds: float = 4.0) -> bool:
    """Whether the mean of ``samples`` lies within ``sds`` standard errors (``sd`` / sqrt(n)) of ``expected``,
    ``sd`` being the standard deviation of one sample."""
    samples = np.asarray(samples, dtype=float)
    if not samples.size:
        raise ValueError("samples must hold at least one value, got none")
    spread = validate.non_negative("sd", sd) / math.sqrt(samples.size)
    return abs(samples.mean() - expected) < validate.positive("sds", sds) * spread


def fingerprint_table(prints) -> Table:
    """One row per fault kind: availability and latency inside the window, and what the health check saw."""
    rows = [[p.kind or "no fault", f"{p.availability:.1%}",
             "–" if math.isnan(p.p50) else f"{1000 * p.p50:.0f}",
             "–" if math.isnan(p.p99) else f"{1000 * p.p99:.0f}",
             ", ".join(f"{r} ({k})" for r, k in p.reasons.items()) or "–",
             f"{p.health_check_down:.0f} s"] for p in prints]
    return Table(["fault", "answered", "p50 (ms)", "p99 (ms)", "failures (count)", "health check: db down"], rows)


def draw_fingerprints(runs: dict, *, window=WINDOW):
    """A figure with one row per run (name -> Results): requests answered (%) and every request's latency."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(runs), 2, figsize=(10, 1.7 * len(runs)), sharex=True,
                             gridspec_kw={"width_ratios": [1, 1.4]})
    axes = np.atleast_2d(axes)
    for row, (name, results) in enumerate(runs.items()):
        left, right = axes[row]
        plots.availability_over_time(results, bin_width=2.0, ax=left, color="tab:blue")
        left.set_ylabel("answered (%)", fontsize=8)
        left.set_title(name, fontsize=9, loc="left")
        plots.request_dots(results, ax=right, legend=False)
        right.set_ylabel("latency (ms)", fontsize=8)
        if row < len(runs) - 1:
            left.set_xlabel("")
            right.set_xlabel("")
    from matplotlib.lines import Line2D
    keys = [Line2D([], [], ls="", marker=".", color=plots.OUTCOME_STYLE[o][0], label=plots.OUTCOME_STYLE[o][1])
            for o in ("ok", "failed")]
    axes[0][1].legend(handles=keys, loc="upper left", fontsize=7, ncols=2, frameon=False)
    fig.tight_layout()
    return fig


# --- a dashboard: one fault, without / with ---------------------------------------------------------
DASH_RATE, DASH_DURATION = 40.0, 20.0


def _fault_compute(kind: int, length: float, intensity_pct: float, with_fault: bool = True, seed: int = 303):
    name = KINDS[int(kind) - 1]
    window = (4.0, 4.0 + length)
    results = fault_run(name if with_fault else None, seed=seed, intensity=intensity_pct / 100,
                        rate=DASH_RATE, duration=DASH_DURATION, window=window)
    words = fault_settings(name, intensity_pct / 100)["words"] if with_fault else "no fault"
    return {"results": results, "kind": name, "window": window, "words": words, "with_fault": with_fault,
            "print": fingerprint(results, window, name)}


def _fault_draw(ax, result):
    plots.request_dots(result["results"], ax=ax, legend=result["with_fault"])
    down = result["results"].services["db"].timeline.down_windows(result["results"].until)
    for s, e in down:       # what an up/down health check of the db reports, as a bar along the top
        ax.axvspan(s, e, ymin=0.96, ymax=1.0, color="tab:red", lw=0)
    ax.set_ylim(0.5, 5000)


def _fault_summary(result) -> str:
    p = result["print"]
    p99 = "none answered" if math.isnan(p.p99) else f"p99 {1000 * p.p99:.0f} ms"
    return (f"{result['words']} &nbsp;·&nbsp; in the window: answered <b>{p.availability:.0%}</b>, {p99}, "
            f"health check down {p.health_check_down:.0f} s")


@dashboard("03_faults_and_testing/faults")
def faults_dashboard() -> Dashboard:
    """Pick a fault kind, its length and intensity; every request of the run without / with the fault."""
    return Dashboard(
        _fault_compute, _fault_draw,
        [Slider("length", "fault length", "s", 1, 14, 8, step=1),
         Slider("intensity_pct", "intensity", "%", 0, 100, 50, step=5),
         Choice("kind", "fault kind", (("crash", 1), ("errors", 2), ("latency", 3), ("partition", 4),
                                       ("gray failure", 5)), 5)],
        variants={"without the fault": {"with_fault": False}, "with the fault": {"with_fault": True}},
        summary=_fault_summary, figsize=(9.0, 3.2),
        title="Pick a fault. Dots are requests (red: failed); red bar on top: the db's health check says down")


# --- tests done in simulation -----------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """How one request ended."""
    outcome: str
    reason: str
    answered_by: str
    latency: float


def call_once(world, target, *, at: float = 0.0, until: float = 60.0) -> Answer:
    """Send one request to ``target`` at time ``at`` and run ``world`` until it ends (at most ``until``)."""
    world.env.process(_later(world, target, at))
    results = world.run(until=until)
    if results.in_flight or len(results) != 1:
        raise ValueError(f"until must leave time for the request to finish; it had not by {until:g} s")
    row = results.row(0)
    return Answer(row["outcome"], row["reason"], row["answered_by"], row["latency"])


def _later(world, target, at):
    if at > 0:
        yield world.env.timeout(at)
    yield from serve(world, target, "test")


def shop(world, latencies=(0.001, 0.002, 0.005)):
    """A whole chain for an end-to-end test: gateway → api → db, each with a fixed latency (seconds)."""
    return chain(world, ["gateway", "api", "db"], latency=[Fixed(t) for t in latencies], capacity=8)[0]


@dataclass
class LoadTest:
    """A ramp from 0 to ``top`` requests per second: offered rate, throughput and p99 per time bin."""
    results: Results = field(repr=False)
    top: float
    duration: float
    offered: np.ndarray          # requests per second offered in each bin (from the ramp, at its middle)
    throughput: np.ndarray       # answered per second, by start time
    p99: np.ndarray              # seconds, by start time
    knee: float                  # offered rate of the first bin whose p99 passes the threshold (NaN: none)
    threshold: float
    capacity: float              # what the db can serve per second: slots / mean latency


def load_test(seed: int, *, top: float = 500.0, duration: float = 40.0, bin_width: float = 1.0,
              threshold: float = SLO_P99) -> LoadTest:
    """Ramp the small system's traffic from 0 to ``top`` requests per second over ``duration`` seconds;
    the knee is the offered rate at which p99 latency first passes ``threshold`` seconds."""
    world = World(seed)
    api, _ = small_system(world)
    OpenLoop(world, api, Ramp(0.0, top, duration), duration=duration)
    results = world.run(until=duration + 5.0)          # time for the last arrivals to finish
    ts = results.timeseries(bin_width)
    bins = int(round(duration / bin_width))            # the ramp's bins only
    offered = top * (ts["t"][:bins] + bin_width / 2) / duration
    p99 = ts["p99"][:bins]
    over = np.flatnonzero(p99 > threshold)
    knee = float(offered[over[0]]) if over.size else math.nan
    return LoadTest(results, top, duration, offered, ts["throughput"][:bins], p99, knee, threshold,
                    DB_SLOTS / DB_MEAN)


def load_test_knee_theory(threshold: float = SLO_P99) -> float:
    """The steady-state rate at which the small system's p99 reaches ``threshold`` (M/M/8 db + 2 ms)."""
    mu = 1 / DB_MEAN
    lo, hi = 1.0, DB_SLOTS * mu * (1 - 1e-9)
    for _ in range(60):
        mid = (lo + hi) / 2
        if API_WORK + theory.mmc_quantile(0.99, DB_SLOTS, mid, mu) > threshold:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def ramp_overshoot_bound(top: float = 500.0, duration: float = 40.0, threshold: float = SLO_P99) -> float:
    """The latest offered rate at which a ramp's p99 can pass ``threshold``, in a fluid model.

    Once the ramp passes the capacity c, the backlog grows like slope·τ²/2 (τ: seconds past c) and
    a newcomer waits backlog / c; that wait reaches ``threshold`` at τ = sqrt(2·threshold·c/slope),
    when the ramp offers c + sqrt(2·threshold·c·slope).
    """
    cap = DB_SLOTS / DB_MEAN
    slope = validate.positive("top", top) / validate.positive("duration", duration)
    return cap + math.sqrt(2 * threshold * cap * slope)


def draw_load_test(ax, lt: LoadTest):
    """p99 latency (ms, log) against the offered rate, with the threshold, the ramp's knee, the steady-state
    knee of theory (:func:`load_test_knee_theory`) and the capacity."""
    ax.plot(lt.offered, lt.p99 * 1000, color="tab:blue", marker=".", label="p99 latency (each 1 s of the ramp)")
    ax.axhline(lt.threshold * 1000, color="k", ls="--", lw=1, label=f"{lt.threshold * 1000:.0f} ms")
    steady = load_test_knee_theory(lt.threshold)
    ax.axvline(steady, color="tab:gray", ls="--", lw=1.2, label=f"steady-state knee (theory) {steady:.0f}/s")
    ax.axvline(lt.capacity, color="tab:gray", ls=":", lw=1.5, label=f"db capacity {lt.capacity:.0f}/s")
    if not math.isnan(lt.knee):
        ax.axvline(lt.knee, color="tab:red", lw=1.2, label=f"knee ≈ {lt.knee:.0f}/s")
    ax.set_yscale("log")
    plots.fixed_ticks(ax.yaxis, [50, 100, 200, 500, 1000, 2000])
    ax.set_xlabel("offered load (requests per second)")
    ax.set_ylabel("p99 latency (ms)")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return ax


@dataclass
class SpikeTest:
    """A burst above capacity and how long its backlog took to drain once it ended."""
    t: np.ndarray
    waiting: np.ndarray          # requests waiting for a slot (api queue + db queue)
    spike_end: float
    drain: float                 # seconds from the end of the spike until nothing waits (NaN: never)
    predicted: float             # the fluid estimate: backlog / spare capacity


def spike_test(seed: int, *, base: float = 200.0, peak: float = 600.0, at: float = 1.5, length: float = 2.5,
               duration: float = 8.0, every: float = 0.02) -> SpikeTest:
    """``base`` requests per second, with ``peak`` for ``length`` seconds from ``at``; the waiting
    requests are sampled every ``every`` seconds."""
    world = World(seed)
    api, db = small_system(world)
    OpenLoop(world, api, Spike(base, peak, at, length), duration=duration)
    seen_api = ServiceProbe(world, api, every, duration)
    seen_db = ServiceProbe(world, db, every, duration)
    world.run(until=duration)
    t = np.array(seen_api.times)
    waiting = np.array(seen_api.waiting) + np.array(seen_db.waiting)
    end = at + length
    after = np.flatnonzero((t >= end) & (waiting == 0))
    drain = float(t[after[0]] - end) if after.size else math.nan
    capacity = DB_SLOTS / DB_MEAN
    predicted = max(0.0, peak - capacity) * length / (capacity - base)
    return SpikeTest(t, waiting, end, drain, predicted)


def spike_drain_sd(*, base: float = 200.0, peak: float = 600.0, length: float = 2.5) -> float:
    """One standard deviation of the drain time of :func:`spike_test`, from a random-walk model.

    During the spike the backlog grows by (peak - c·mu) per second with a variance of
    (peak + c·mu) per second (Poisson arrivals and departures); it then drains at c·mu - base per
    second, and the first-passage time of such a walk from Q to 0 has a variance of
    Q (c·mu + base) / (c·mu - base)**3.
    """
    cap = DB_SLOTS / DB_MEAN
    spare = cap - base
    backlog = (peak - cap) * length
    return math.sqrt((peak + cap) * length / spare ** 2 + backlog * (cap + base) / spare ** 3)


def draw_spike(ax, st: SpikeTest, *, label: str | None = None, color=None):
    ax.plot(st.t, st.waiting, lw=0.9, label=label, color=color)
    return ax


@dataclass(frozen=True)
class SLOReport:
    """Did a run meet the SLO? ``ok`` is the verdict; the numbers say by how much."""
    ok: bool
    availability: float
    p99: float
    slo_availability: float
    slo_p99: float

    def __str__(self) -> str:
        mark = "PASS" if self.ok else "FAIL"
        return (f"{mark}: answered {self.availability:.2%} (SLO ≥ {self.slo_availability:.1%}), "
                f"p99 {1000 * self.p99:.0f} ms (SLO < {1000 * self.slo_p99:.0f} ms)")


def slo_check(results: Results, *, window=None, availability: float = SLO_AVAILABILITY,
              p99: float = SLO_P99) -> SLOReport:
    """The assertion a resilience test makes: enough requests answered, and fast enough (p99 of the
    answered ones), among the requests that started in ``window`` (default: the whole run)."""
    seen = results if window is None else _inside(results, window)
    if not len(seen):
        raise ValueError("window must hold at least one request start")
    a = seen.request_availability()
    q = seen.latency_percentiles((99,))[99] if seen.latencies().size else math.inf
    return SLOReport(a >= availability and q < p99, a, q, availability, p99)


#: How long a db call takes while the db hangs, in :func:`resilience_test` with ``fault="hang"``.
HANG = 3.0


def resilience_test(handler, *, seed: int, fault: str = "crash", outage=(20.0, 30.0), timeout: float | None = None,
                    rate: float = RATE, duration: float = 60.0) -> SLOReport:
    """Crash the db (``fault="crash"``), or make every db call hang ``HANG`` seconds (``"hang"``), during
    ``outage`` while the api (with ``handler``, calling the db with ``timeout`` if one is given) takes
    traffic; check the SLO."""
    validate.choice("fault", fault, ("crash", "hang"))
    world = World(seed)
    api, db = small_system(world, handler=handler, timeout=timeout)
    if fault == "crash":
        Outage(db, [outage])
    else:
        LatencySpike(db, [outage], extra=HANG)
    OpenLoop(world, api, rate, duration=duration)
    return slo_check(world.run(until=duration + HANG + 2.0))


# --- Toxiproxy-style latency with jitter ----------------------------------------------------------
def toxic_latency_run(seed: int, *, latency: float = 0.100, jitter: float = 0.050, window=(10.0, 30.0),
                      rate: float = RATE, duration: float = 40.0) -> Results:
    """The small system with fixed latencies (api 2 ms, db 5 ms, so every change is the toxic's),
    and a latency toxic of ``latency`` ± ``jitter`` seconds on the db during ``window``."""
    world = World(seed)
    api, db = small_system(world, db_slots=64, db_latency=Fixed(0.005))
    LatencySpike(db, [window], extra=Uniform(latency - jitter, latency + jitter))
    OpenLoop(world, api, rate, duration=duration)
    return world.run(until=duration + 1.0)


# --- a chaos experiment -----------------------------------------------------------------------------
#: Phases of the experiment (seconds): steady state, injection, recovery.
CHAOS_PHASES = {"before": (0.0, 30.0), "during": (30.0, 90.0), "after": (90.0, 120.0)}
#: The injected fault: the db turns gray, 3 times slower with 5% of calls failing.
CHAOS_SLOWDOWN, CHAOS_ERRORS = 3.0, 0.05
#: The protection tried after a first experiment: a 150 ms timeout on db calls and the cached price.
CHAOS_TIMEOUT = 0.150


@dataclass
class ChaosExperiment:
    """Hypothesis, injection, observation: the SLO checked in each phase of one run."""
    results: Results = field(repr=False)
    protected: bool
    phases: dict                 # phase name -> SLOReport
    health_check: float          # the db's time availability by its up/down health check

    @property
    def hypothesis_holds(self) -> bool:
        return all(report.ok for report in self.phases.values())


def chaos_experiment(seed: int, *, protected: bool = False, rate: float = RATE) -> ChaosExperiment:
    """Steady state for 30 s, a gray failure of the db for 60 s, then 30 s to recover.

    ``protected``: the api calls the db through a client with a 150 ms timeout and falls back to the
    cached price on any failure (what notebooks 04, 10 and 11 teach)."""
    world = World(seed)
    if protected:
        api, db = small_system(world, handler=price_handler, timeout=CHAOS_TIMEOUT)
    else:
        api, db = small_system(world)
    GrayFailure(db, [CHAOS_PHASES["during"]], slowdown=CHAOS_SLOWDOWN, error_rate=CHAOS_ERRORS)
    end = CHAOS_PHASES["after"][1]
    OpenLoop(world, api, rate, duration=end)
    results = world.run(until=end + 2.0)
    phases = {name: slo_check(results, window=w) for name, w in CHAOS_PHASES.items()}
    return ChaosExperiment(results, protected, phases, results.time_availability("db"))


def draw_chaos(ax, *experiments: ChaosExperiment, bin_width: float = 5.0):
    """p99 latency (ms) per 5 s bin of each experiment, with the SLO line and the gray failure shaded."""
    plots.shade_faults(ax, experiments[0].results)
    for exp in experiments:
        ts = exp.results.timeseries(bin_width)
        label = "api with timeout + cache" if exp.protected else "plain api"
        style = dict(color="tab:green", ls="--", lw=1.6) if exp.protected else dict(color="tab:blue", lw=2.4)
        ax.step(ts["t"], ts["p99"] * 1000, where="post", label=f"p99, {label}", **style)   # dashed over solid: both show
    ax.axhline(SLO_P99 * 1000, color="k", ls="--", lw=1, label=f"SLO: p99 < {SLO_P99 * 1000:.0f} ms")
    ax.set_xlim(0, CHAOS_PHASES["after"][1])
    ax.set_ylim(0, 500)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("p99 latency (ms)")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    return ax
