"""Notebook 02, availability: scenarios, helpers and dashboards.

Everything here simulates failure/repair events only (no requests), except the error-budget incident,
so runs over thousands of failures stay cheap. Times are simulated seconds; the constants below
turn them into hours, days and months for people.
"""
from __future__ import annotations

import decimal
import math
from dataclasses import dataclass, field

import numpy as np

from ..core import theory, validate
from ..core.reasons import Outcome
from ..core.distributions import Distribution, Exponential, as_distribution
from ..core.timeline import combine
from ..metrics import Results
from ..metrics.sweeps import t_quantile
from ..metrics.windows import batch_means
from ..sim.faults import FailureRepair, Outage, RepairCrew
from ..sim.service import Service
from ..sim.workload import OpenLoop
from ..sim.world import World
from ..views import plots
from ..views import sweeps as sweep_plots
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import DAY, HOUR, MINUTE, MONTH, WEEK, YEAR, Table, format_duration, percent  # noqa: F401

#: The checkout service of the story: down about one hour a week.
CHECKOUT_MTTF = 167 * HOUR
CHECKOUT_MTTR = 1 * HOUR
#: Its hour of repair, split: 40 minutes until someone notices, 20 minutes to roll back.
CHECKOUT_DETECT = 40 * MINUTE
CHECKOUT_RECOVER = 20 * MINUTE
#: An automated health-check alert notices a failure in about two minutes.
FAST_DETECT = 2 * MINUTE
#: The availability every user-facing service in this course must clear.
COURSE_BAR = 0.99
#: Replicas of a worker whose machine dies every five days or so and takes half a day to replace.
REPLICA_MTTF = 120 * HOUR
REPLICA_MTTR = 12 * HOUR


# --- running failure/repair timelines ------------------------------------------------------------
class Recorded(Distribution):
    """A distribution that remembers every draw (to split a down window into its parts)."""

    def __init__(self, inner: Distribution):
        self.inner = inner
        self.draws: list[float] = []

    @property
    def mean(self) -> float:
        return self.inner.mean

    def sample(self, rng) -> float:
        value = self.inner.sample(rng)
        self.draws.append(value)
        return value


def failure_repair_run(specs: dict, *, horizon: float, seed: int, crews: int | None = None) -> Results:
    """Run services that only fail and get repaired, for ``horizon`` seconds.

    ``specs`` maps a service name to the keywords of its :class:`FailureRepair` (``mttf`` and ``mttr``,
    or ``detect``/``recover``). With ``crews``, every repair waits for one of that many shared people.
    """
    if not specs:
        raise ValueError("specs must name at least one service, got none")
    world = World(seed=seed)
    crew = None if crews is None else RepairCrew(world, crews)
    for name, kwargs in specs.items():
        FailureRepair(Service(world, name), crew=crew, **kwargs)
    return world.run(until=horizon)


def tolerance(mttf: float, mttr: float, horizon: float, *, sigmas: float = 4.0) -> float:
    """How far a measured time availability may stray from MTTF/(MTTF+MTTR) after ``horizon`` seconds.

    Over N = horizon/(MTTF+MTTR) failure/repair cycles with exponential times, the measured
    availability has a standard deviation of about sqrt(2/N) * A * (1-A) (a ratio of sums: each up
    and down time has a spread equal to its mean). A repair time made of detect + recover spreads
    less than an exponential of the same mean, so the bound is then conservative.
    """
    return sigmas * theory.availability_sd(mttf, mttr, horizon)


# --- how long a run must be: many runs of growing length -------------------------------------------
#: Run lengths of the convergence sweep, in failure/repair cycles (weeks, for checkout), and runs per length.
CONVERGENCE_CYCLES = (10, 30, 100, 300, 1000, 3000)
CONVERGENCE_SEEDS = 20


def availability_sample(cycles: float, *, seed: int, mttf: float = CHECKOUT_MTTF,
                        mttr: float = CHECKOUT_MTTR) -> dict:
    """One run of a service failing and being repaired (exponential times with these means) for
    ``cycles`` mean cycles (a horizon of ``cycles * (mttf + mttr)``), as a sweep's summary
    (:func:`resilience_sim.sweeps.sweep`): its measured time ``availability``, and whether it was
    down at the end (``down_at_end``: true with probability 1 - A once the run is long)."""
    cycles = validate.positive("cycles", cycles)
    horizon = cycles * (mttf + mttr)
    results = failure_repair_run({"service": dict(mttf=mttf, mttr=mttr)}, horizon=horizon, seed=seed)
    changes = results.services["service"].timeline.changes           # (time, is_up), from up at 0
    up_at_end = next((up for t, up in reversed(changes) if t <= horizon), True)
    return {"availability": results.time_availability("service"), "down_at_end": not up_at_end}


def expected_half_width(cycles: float, seeds: int = CONVERGENCE_SEEDS, *, mttf: float = CHECKOUT_MTTF,
                        mttr: float = CHECKOUT_MTTR, level: float = 0.95) -> float:
    """The half-width theory expects of the convergence band: t(seeds - 1) x the standard deviation
    of one run's availability (:func:`~resilience_sim.core.theory.availability_sd`) / sqrt(seeds)."""
    seeds = validate.integer("seeds", seeds, low=2)
    horizon = validate.positive("cycles", cycles) * (mttf + mttr)
    return t_quantile(level, seeds - 1) * theory.availability_sd(mttf, mttr, horizon) / math.sqrt(seeds)


def draw_convergence(ax, table, *, mttf: float = CHECKOUT_MTTF, mttr: float = CHECKOUT_MTTR):
    """Each run's measured availability (dots) against its length in cycles (log scale), the mean of
    the runs with its confidence band, and MTTF/(MTTF+MTTR) dashed."""
    cycles, measured = table.column("cycles"), table.column("availability")
    ax.plot(cycles, measured * 100, ".", color="tab:gray", alpha=0.5, ms=5, label="one run")
    summary = table.summary("availability")
    sweep_plots.band(summary, "cycles", ax=ax, scale=100, color="tab:blue", label=f"mean of {summary.n.max()} runs",
                     truth=theory.availability(mttf, mttr), truth_label="MTTF/(MTTF+MTTR)")
    ax.set_xscale("log")
    lengths = sorted(set(cycles.tolist()))
    ax.set_xticks(lengths, [f"{c:g}" for c in lengths])
    ax.minorticks_off()
    ax.set_xlabel("length of each run (failure/repair cycles, log scale)")
    ax.set_ylabel("measured availability (%)")
    ax.legend(loc="lower right", fontsize=8)
    return ax


@dataclass(frozen=True)
class OutageStats:
    """How a service's downtime was made: how many outages, how long, how much per month."""
    availability: float
    outages: int
    per_year: float
    mean_minutes: float
    longest_minutes: float
    downtime_per_month: float   # seconds


def outage_stats(results: Results, name: str) -> OutageStats:
    """Count and size the outages of ``name`` in a run."""
    spans = results.services[name].timeline.down_windows(results.until)
    lengths = np.array([e - s for s, e in spans]) if spans else np.zeros(1)
    a = results.time_availability(name)
    return OutageStats(availability=a, outages=len(spans), per_year=len(spans) / results.until * YEAR,
                       mean_minutes=float(lengths.mean() / MINUTE), longest_minutes=float(lengths.max() / MINUTE),
                       downtime_per_month=(1.0 - a) * MONTH)


def disagreements(stats: OutageStats, *, mttf: float, mttr: float, horizon: float, sigmas: float = 4.0) -> list:
    """What in ``stats`` strays from the formulas further than chance allows (an empty list: nothing):
    availability beyond :func:`tolerance`; outages a year beyond ``sigmas`` Poisson standard deviations
    of YEAR / (MTTF + MTTR); the mean outage beyond ``sigmas`` standard errors of n exponential repairs."""
    problems = []
    if abs(stats.availability - theory.availability(mttf, mttr)) >= tolerance(mttf, mttr, horizon, sigmas=sigmas):
        problems.append(f"availability {stats.availability:.3%}, formula {theory.availability(mttf, mttr):.3%}")
    per_year, years = YEAR / (mttf + mttr), horizon / YEAR
    if abs(stats.per_year - per_year) >= sigmas * math.sqrt(per_year / years):
        problems.append(f"{stats.per_year:.1f} outages a year, formula {per_year:.1f}")
    n = max(stats.per_year * years, 1.0)
    if abs(stats.mean_minutes - mttr / MINUTE) >= sigmas * mttr / MINUTE / math.sqrt(n):
        problems.append(f"outages of {stats.mean_minutes:.0f} min on average, MTTR {mttr / MINUTE:.0f} min")
    return problems


def band_width_ratios(summary, *, mttf: float = CHECKOUT_MTTF, mttr: float = CHECKOUT_MTTR) -> dict:
    """Each convergence band's half-width over what theory expects (:func:`expected_half_width`), by
    run length: about 1, within the spread of a standard deviation measured from the band's runs
    (:func:`sd_spread`)."""
    return {p.point["cycles"]: p.half_width / expected_half_width(p.point["cycles"], p.n, mttf=mttf, mttr=mttr)
            for p in summary}


def sd_spread(n: int) -> float:
    """How far a standard deviation measured from ``n`` samples scatters around the true one, as a share
    of it: about 1 / sqrt(2 (n - 1)) (16% for 20 samples; normal samples, as means of long runs are)."""
    return 1.0 / math.sqrt(2 * (validate.integer("n", n, low=2) - 1))


def bands_as_wide_as_theory(summary, *, sds: float = 3.0, mttf: float = CHECKOUT_MTTF,
                            mttr: float = CHECKOUT_MTTR) -> bool:
    """Whether every convergence band is as wide as theory says (:func:`band_width_ratios`), within
    ``sds`` of the spreads of its runs' standard deviation (:func:`sd_spread`): the 1/sqrt(N) law, band by band."""
    sds = validate.positive("sds", sds)
    ratios = band_width_ratios(summary, mttf=mttf, mttr=mttr)
    return all(abs(ratio - 1) < sds * sd_spread(p.n) for p, ratio in zip(summary, ratios.values()))


def within_poisson_error(count: float, expected: float, *, sds: float = 4.0) -> bool:
    """Whether ``count`` events lie within ``sds`` Poisson standard deviations, sqrt(``expected``), of the
    ``expected`` number: at 4 of them chance alone fails it about once in 16,000 checks."""
    expected = validate.positive("expected", expected)
    return abs(count - expected) < validate.positive("sds", sds) * math.sqrt(expected)


# --- pictures and tables ------------------------------------------------------------------------------
def draw_timelines(ax, results: Results, names, *, until: float | None = None, unit: float = DAY,
                   labels=None):
    """Up (green) and down (red) periods of each named service, over ``[0, until)``, x in days."""
    until = results.until if until is None else min(until, results.until)
    names = list(names)
    labels = names if labels is None else list(labels)
    rows = [(label, [(results.services[name].timeline.down_windows(until), "tab:red")])
            for name, label in zip(names, labels)]
    plots.timeline_rows(ax, rows, until, unit=unit)
    ax.set_xlabel("time (days)" if unit == DAY else "time")
    return ax


NINES = (0.9, 0.99, 0.999, 0.9999, 0.99999)


def nines_table(levels=NINES, calendar: str = "average") -> Table:
    """Downtime allowed per year, month and week at each availability level, the periods counted by
    ``calendar`` (see :data:`theory.CALENDARS`)."""
    rows = [[percent(a), f"{theory.nines(a):.0f}"]
            + [format_duration(theory.downtime(a, p, calendar)) for p in ("year", "month", "week")] for a in levels]
    return Table(["availability", "nines", "down per year", "per month", "per week"], rows)


# --- the SRE book's availability table, cell for cell ---------------------------------------------
#: Appendix A of the SRE book (Beyer et al., 2016), as printed: the downtime each level allows per period.
SRE_PERIODS = ("year", "quarter", "month", "week", "day", "hour")
SRE_TABLE = {
    0.9: ("36.5 days", "9 days", "3 days", "16.8 hours", "2.4 hours", "6 minutes"),
    0.95: ("18.25 days", "4.5 days", "1.5 days", "8.4 hours", "1.2 hours", "3 minutes"),
    0.99: ("3.65 days", "21.6 hours", "7.2 hours", "1.68 hours", "14.4 minutes", "36 seconds"),
    0.995: ("1.83 days", "10.8 hours", "3.6 hours", "50.4 minutes", "7.20 minutes", "18 seconds"),
    0.999: ("8.76 hours", "2.16 hours", "43.2 minutes", "10.1 minutes", "1.44 minutes", "3.6 seconds"),
    0.9995: ("4.38 hours", "1.08 hours", "21.6 minutes", "5.04 minutes", "43.2 seconds", "1.8 seconds"),
    0.9999: ("52.6 minutes", "12.96 minutes", "4.32 minutes", "60.5 seconds", "8.64 seconds", "0.36 seconds"),
    0.99999: ("5.26 minutes", "1.30 minutes", "25.9 seconds", "6.05 seconds", "0.87 seconds", "0.04 seconds"),
}
_UNIT_SECONDS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


def as_printed(a: float, period: str, cell: str, calendar: str = "sre") -> str:
    """``theory.downtime(a, period, calendar)`` written in the unit and with the decimals of ``cell``
    (a printed cell such as "7.20 minutes"), rounded half up on the exact decimal value."""
    number, unit = cell.split()
    places = len(number.partition(".")[2])
    seconds = (1 - decimal.Decimal(repr(a))) * decimal.Decimal(repr(theory.CALENDARS[calendar][period]))
    value = (seconds / _UNIT_SECONDS[unit]).quantize(decimal.Decimal(1).scaleb(-places), decimal.ROUND_HALF_UP)
    return f"{value} {unit}"


@dataclass
class SreTableCheck:
    """Each cell of :data:`SRE_TABLE` against ``theory.downtime`` with one ``calendar``."""
    calendar: str
    cells: list        # (availability, period, the book's cell, ours written like it)

    @property
    def matches(self) -> int:
        return sum(book == ours for _, _, book, ours in self.cells)

    @property
    def differences(self) -> list:
        """The cells where ours differs: (availability, period, the book's, ours, ours exactly in seconds)."""
        return [(a, p, book, ours, theory.downtime(a, p, self.calendar))
                for a, p, book, ours in self.cells if book != ours]

    def table(self) -> Table:
        """The book's table, each cell as ours, with a * where the book prints another (see :attr:`differences`)."""
        rows = [[percent(a)] + [ours if ours == book else f"{ours} *"
                                for _, _, book, ours in self.cells[i * 6:(i + 1) * 6]]
                for i, a in enumerate(SRE_TABLE)]
        return Table(["availability"] + [f"per {p}" for p in SRE_PERIODS], rows)


def downtimes_differing(stated: dict) -> dict:
    """The downtimes of ``stated`` ({(availability, period, calendar): seconds, as the text states them})
    that ``theory.downtime`` does not give, each with the one it gives (written for people): {} when all hold."""
    return {key: format_duration(theory.downtime(*key)) for key, seconds in stated.items()
            if not math.isclose(theory.downtime(*key), seconds)}


def sre_table_check(calendar: str = "sre") -> SreTableCheck:
    """Compute every cell of the SRE book's availability table with ``theory.downtime(..., calendar)``."""
    cells = [(a, p, cell, as_printed(a, p, cell, calendar))
             for a, row in SRE_TABLE.items() for p, cell in zip(SRE_PERIODS, row)]
    return SreTableCheck(calendar, cells)


# --- MTTR = time to detect + time to recover ------------------------------------------------------
@dataclass
class DetectRecoverResult:
    """A long run of one service whose repairs are detect + recover, and its first year month by month."""
    mttf: float
    detect: float
    recover: float
    availability: float
    formula: float
    monthly: np.ndarray = field(repr=False)   # (12, 2): seconds down per month, detecting and recovering
    horizon: float = 0.0

    @property
    def downtime_per_month(self) -> float:
        return (1.0 - self.availability) * MONTH

    @property
    def nines(self) -> float:
        return theory.nines(self.availability)


def detect_recover_run(mttf: float = CHECKOUT_MTTF, detect: float = CHECKOUT_DETECT,
                       recover: float = CHECKOUT_RECOVER, *, cycles: int = 1200, seed: int = 2) -> DetectRecoverResult:
    """Simulate ``cycles`` failures of a service (exponential times with these means; ``detect`` may be 0)."""
    recover_dist = as_distribution("recover", recover, number_means="exponential")
    detect_dist = Recorded(Exponential(detect)) if detect > 0 else None
    horizon = cycles * (mttf + detect + recover)
    world = World(seed=seed)
    service = Service(world, "checkout")
    fault = FailureRepair(service, mttf=mttf, detect=detect_dist, recover=recover_dist)
    results = world.run(until=horizon)
    monthly = np.zeros((12, 2))
    lo, hi = np.arange(12) * MONTH, np.arange(1, 13) * MONTH
    draws = detect_dist.draws if detect_dist else []
    for k, (start, end) in enumerate(fault.spans(horizon)):
        if start >= 12 * MONTH:
            break
        mid = min(end, start + draws[k]) if detect_dist else start
        monthly[:, 0] += np.clip(np.minimum(mid, hi) - np.maximum(start, lo), 0.0, None)
        monthly[:, 1] += np.clip(np.minimum(end, hi) - np.maximum(mid, lo), 0.0, None)
    return DetectRecoverResult(mttf, detect, recover, results.time_availability("checkout"),
                               theory.availability(mttf, detect + recover), monthly, horizon)


def draw_monthly_downtime(ax, res: DetectRecoverResult):
    """Stacked bars of downtime per month (hours): detecting, then recovering; the 99% budget dashed.

    Bars are thick vertical lines (one artist per colour): a picture of 24 rectangles costs more to draw.
    """
    months = np.arange(1, 13)
    det, rec = res.monthly[:, 0] / HOUR, res.monthly[:, 1] / HOUR
    ax.vlines(months, 0, det, lw=12, color="tab:orange", label="detecting")
    ax.vlines(months, det, det + rec, lw=12, color="tab:red", label="recovering")
    budget = theory.downtime(COURSE_BAR, "month") / HOUR
    ax.axhline(budget, color="k", ls="--", lw=1, label=f"{COURSE_BAR:.0%} budget ({budget:.1f} h)")
    # panels share the y axis: only ever raise the top, so the other panel's bars stay in view
    top = max((det + rec).max(), budget) * 1.3
    ax.set_ylim(0, max(top, ax.get_ylim()[1]) if ax.get_subplotspec().colspan.start else top)
    ax.set_xlim(0.4, 12.6)
    ax.set_xlabel("month of the first simulated year")
    if not ax.get_subplotspec().colspan.start:
        ax.set_ylabel("downtime (hours)")
        ax.legend(loc="upper center", ncols=3, fontsize=8, frameon=False)
    return ax


def detect_recover_summary(res: DetectRecoverResult) -> str:
    return (f"{res.availability:.2%} up (formula {res.formula:.2%}), "
            f"{format_duration(res.downtime_per_month)} down a month, {res.nines:.1f} nines")


def _detect_recover_compute(mttf_h, detect_min, recover_min, fast_detector=False):
    detect = detect_min * MINUTE
    if fast_detector:
        detect = min(detect, FAST_DETECT)
    return detect_recover_run(mttf_h * HOUR, detect, recover_min * MINUTE)


@dashboard("02_availability/detect_recover")
def detect_recover_dashboard() -> Dashboard:
    """MTTF, time to detect and time to recover; without / with a detector that notices in 2 minutes."""
    return Dashboard(
        _detect_recover_compute, draw_monthly_downtime,
        [Slider("mttf_h", "time to failure, MTTF", "hours", 24, 720, CHECKOUT_MTTF / HOUR, step=1),
         Slider("detect_min", "time to detect", "minutes", 0, 120, CHECKOUT_DETECT / MINUTE, step=1),
         Slider("recover_min", "time to recover", "minutes", 1, 180, CHECKOUT_RECOVER / MINUTE, step=1)],
        variants={"without a faster detector": {"fast_detector": False},
                  f"with a {FAST_DETECT / MINUTE:.0f}-minute detector": {"fast_detector": True}},
        summary=detect_recover_summary,
        title="MTTR = time to detect + time to recover (each bar: one month of a simulated year)")


# --- redundancy and a shared repair crew -----------------------------------------------------------
@dataclass
class ReplicasResult:
    """A long run of ``n`` replicas; the service is up while any replica is."""
    n: int
    mttf: float
    mttr: float
    crews: int | None
    results: Results = field(repr=False)
    names: list
    waits: dict = field(repr=False)     # name -> [(start, repair_start, end)] (repair_start = start without a crew)
    availability: float = 0.0
    exact: float = 0.0                  # with the crews as given
    naive: float = 0.0                  # 1 - (1 - A)^n, as if every replica had its own repairer
    window: float = 0.0                 # the stretch drawn

    @property
    def downtime_per_month(self) -> float:
        return (1.0 - self.availability) * MONTH


def replicas_run(n: int = 2, mttf: float = REPLICA_MTTF, mttr: float = REPLICA_MTTR, *, crews: int | None = None,
                 cycles: int = 1000, seed: int = 3, window_cycles: int = 15) -> ReplicasResult:
    """``n`` replicas failing and repaired independently (``crews=None``) or by ``crews`` shared people,
    for ``cycles`` failure/repair cycles of one replica."""
    n = validate.integer("n", n, low=1)
    horizon = cycles * (mttf + mttr)
    world = World(seed=seed)
    crew = None if crews is None else RepairCrew(world, crews)
    names, faults = [f"replica {i + 1}" for i in range(n)], {}
    for name in names:
        dist = Recorded(Exponential(mttr))
        faults[name] = (FailureRepair(Service(world, name), mttf=mttf, mttr=dist, crew=crew), dist)
    results = world.run(until=horizon)
    window = min(horizon, window_cycles * (mttf + mttr))
    waits = {}
    for name, (fault, dist) in faults.items():
        rows = []
        for k, (start, end) in enumerate(fault.spans(horizon)):
            if start >= window:
                break
            repair_start = end - dist.draws[k] if k < len(dist.draws) else end
            if repair_start - start < 1e-6:   # no wait (up to rounding): repaired from the start
                repair_start = start
            rows.append((start, min(repair_start, window), min(end, window)))
        waits[name] = rows
    a_one = theory.availability(mttf, mttr)
    return ReplicasResult(n, mttf, mttr, crews, results, names, waits,
                          availability=results.time_availability(*names, need="any"),
                          exact=theory.replicas_availability(n, mttf, mttr, crews=crews),
                          naive=theory.parallel(*[a_one] * n), window=window)


def draw_replicas(ax, res: ReplicasResult):
    """Each replica's outages (orange: waiting for the crew, red: being repaired) and the service's."""
    rows = [(name, [([(s, r) for s, r, _ in res.waits[name] if r > s], "tab:orange"),
                    ([(r, e) for _, r, e in res.waits[name]], "tab:red")]) for name in res.names]
    both = combine([res.results.services[n].timeline for n in res.names], res.window, need="any")
    plots.timeline_rows(ax, rows + [("service", [(both, "black")])], res.window, unit=DAY)
    ax.set_xlabel("time (days)")
    return ax


def replicas_summary(res: ReplicasResult) -> str:
    text = f"{res.availability:.2%} up, {format_duration(res.downtime_per_month)} down a month (formula {res.exact:.2%}"
    if res.crews is not None and res.crews < res.n:
        text += f"; naive independent {res.naive:.2%}"
    return text + ")"


def _replicas_compute(n, mttf_h, mttr_h, crews=None):
    # seed 8 draws a first half-year typical of the long run (both-down time about doubles with one crew)
    return replicas_run(n, mttf_h * HOUR, mttr_h * HOUR, crews=crews, cycles=1200 // n, seed=8, window_cycles=30)


@dashboard("02_availability/replicas")
def replicas_dashboard() -> Dashboard:
    """Replicas behind one service; without / with a single shared repair crew."""
    return Dashboard(
        _replicas_compute, draw_replicas,
        [Slider("n", "replicas", "", 1, 3, 2, integer=True),
         Slider("mttf_h", "time to failure, MTTF", "hours", 12, 480, REPLICA_MTTF / HOUR, step=1),
         Slider("mttr_h", "time to repair", "hours", 1, 48, REPLICA_MTTR / HOUR, step=1)],
        variants={"a repairer per replica": {"crews": None}, "one shared repair crew": {"crews": 1}},
        summary=replicas_summary, figsize=(9.0, 3.0),
        title="Redundant replicas: the service (bottom row) is down only when every replica is. "
              "Red: a replica being repaired; orange: waiting for the crew; black: all down")


# --- SLOs and error budgets -------------------------------------------------------------------------
def incident_run(*, rate: float = 2.0, outage=(30 * MINUTE, 55 * MINUTE), window: float = 2 * HOUR,
                 seed: int = 4) -> Results:
    """A checkout service taking ``rate`` requests per second for ``window`` seconds, down during ``outage``."""
    world = World(seed=seed)
    checkout = Service(world, "checkout", capacity=16, latency=Exponential(0.05))
    Outage(checkout, [outage])
    OpenLoop(world, checkout, rate, duration=window)
    return world.run(until=window + 10.0)


def draw_budget(ax, results: Results, budget: int):
    """What is left of an error ``budget`` (%), request by request as they end, x in minutes; the
    outage shaded."""
    order = np.argsort(results.end)
    bad = np.cumsum(results.outcome[order] > Outcome.DEGRADED)
    ax.plot(results.end[order] / MINUTE, 100 * (budget - bad) / budget, color="tab:blue")
    for fault in results.faults:
        for start, end in fault.spans:
            ax.axvspan(start / MINUTE, end / MINUTE, color="tab:red", alpha=0.18, lw=0, label="outage")
    ax.set_ylim(0, 105)
    ax.set_xlim(0, results.until / MINUTE)
    ax.set_xlabel("time (minutes)")
    ax.set_ylabel("month's error budget left (%)")
    ax.legend(loc="lower left")
    return ax


def crew_comparison(ns=(1, 2, 3), mttf: float = REPLICA_MTTF, mttr: float = REPLICA_MTTR, *,
                    cycles: int = 4000, seed: int = 3) -> Table:
    """For each number of replicas, one shared repair crew: simulated availability (with its standard
    error), the exact formula, and the naive independent formula. ``table.data`` keeps the numbers."""
    rows, data = [], []
    for n in ns:
        res = replicas_run(n, mttf, mttr, crews=1, cycles=cycles, seed=seed)
        a, se = batch_means(res.results, *res.names, need="any")
        ratio = (1.0 - res.exact) / (1.0 - res.naive)
        data.append({"n": n, "simulated": a, "stderr": se, "exact": res.exact, "naive": res.naive,
                     "ratio": ratio})
        rows.append([n, f"{a:.3%} ± {se:.3%}", f"{res.exact:.3%}", f"{res.naive:.3%}",
                     format_duration(theory.downtime(res.exact, "month")),
                     format_duration(theory.downtime(res.naive, "month")), f"{ratio:.2f}×"])
    return Table(["replicas", "simulated, one crew", "exact, one crew", "naive independent",
                  "down a month (one crew)", "(naive)", "downtime ratio"], rows, data)
