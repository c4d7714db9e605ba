"""15 Detection and alarms: log an error, then raise the alarm that brings a human (manual intervention).

The story is a shop's **orders** service writing to its database, ``orders-db``, which sometimes fails
and stays failed until someone repairs it: :class:`~resilience_sim.sim.operator.Operator` takes it down
at an incident's start until the on-call is paged, responds (``RESPONSE``) and repairs (``REPAIR``).
So an incident lasts detection + response + repair.

* Section 1, :func:`write_run`: the failed writes are **logged** and read at the next morning's check
  (:class:`MorningLogCheck`), or an alert rule **pages**.
* Section 2, :func:`noisy_run` + :func:`compare_rules`: days of traffic with a small baseline error
  rate and three incidents of different severity (:data:`INCIDENTS`), scored for each rule of
  :func:`story_rules` (a plain threshold over a short window, a long window, a ``for:`` duration, the
  SRE Workbook's multi-window multi-burn-rate rule): precision, recall, detection and reset times.
* Section 3, :func:`workbook_table` + :func:`burst_check`: the Workbook's numbers from
  :func:`~resilience_sim.policies.alerts.time_to_fire` and ``budget_spent``, and a simulation for each.
* Section 4, :func:`repeated_run` + :func:`operators_table`: incidents over many days, MTTD and MTTR
  measured, fed into MTTF / (MTTF + MTTR), against the measured availability.
* Section 5, :func:`manual_triggers`: the gauges that need a human (dead letters, a failing or stuck
  compensation), as alarms that carry what the human needs.
* Section 6, the dashboard: per-minute outcome counts of one seeded day (:func:`dash_bins`), and a
  replay of the rule and the on-call on them (:func:`replay`), cheap enough to redo at every slider move.

Times are simulated seconds; the runs start at midnight.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np

from ..core import theory, validate
from ..core.reasons import Outcome
from ..metrics import Results
from ..metrics.alerting import AlertQuality, alert_quality, firing_spans
from ..policies.alerts import WORKBOOK_PAIRS, BurnRateRule, ThresholdRule, budget_spent, time_to_fire
from ..policies.messaging import MessageQueue
from ..policies.saga import COMPENSATE
from ..sim.faults import ErrorBurst, Outage
from ..sim.operator import Operator
from ..sim.service import Service, ServiceError
from ..sim.workload import OpenLoop
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import DAY, HOUR, MINUTE, MONTH, Table, format_duration, percent

#: The SLO the alerts defend: 99.9% of requests answered, over a 30-day period.
SLO = 0.999
PERIOD = 30 * DAY
#: Checkout requests a second (Poisson): low, so days of traffic run fast.
RATE = 0.2
#: The share of requests that fail on a normal day: a fifth of the error budget.
BASELINE = 0.0002
#: The on-call's defaults: 5 min to respond (notice, laptop, find the cause), 10 min to repair.
RESPONSE, REPAIR = 5 * MINUTE, 10 * MINUTE
#: How often the monitoring evaluates a rule (a scrape), seconds.
EVERY = 10.0
#: The page rule's buckets when an Operator evaluates it at every scrape: 5 minutes (a rule is exact up
#: to one bucket at a window's old end; coarser buckets make each evaluation cheaper).
OPERATOR_RESOLUTION = 300.0
#: When the error log is read (section 1): at 09:00, the morning check.
REVIEW_AT = 9 * HOUR
#: Section 1's run: a day and a half; the database fails at 02:00 on the second night (the first day
#: fills the monitoring's windows, as months of history would).
NIGHT_INCIDENT = DAY + 2 * HOUR
NIGHT_RUN = DAY + 12 * HOUR
#: The route of the users' requests.
ROUTE = "checkout"
#: The database's name (its time availability: ``results.time_availability(DB)``).
DB = "orders-db"


def clock(seconds: float) -> str:
    """A run's time as "day 1, 02:00" (day 0 is the first; the runs start at midnight)."""
    seconds = validate.non_negative("seconds", seconds)
    day, rest = divmod(int(round(seconds)), int(DAY))
    return f"day {day}, {rest // 3600:02d}:{rest % 3600 // 60:02d}"


def page_rule(*, resolution: float = 60.0) -> BurnRateRule:
    """The SRE Workbook's two page conditions at :data:`SLO`: 14.4x over 1 h and 5 min, 6x over 6 h
    and 30 min (a fresh rule: a rule belongs to one run)."""
    return BurnRateRule(SLO, WORKBOOK_PAIRS[:2], resolution=resolution)


class MorningLogCheck:
    """Someone reads the error log once a day at ``at`` seconds after midnight, looking for errors in
    its last ``lookback`` seconds (is anything failing now?): an alert rule for the
    :class:`~resilience_sim.sim.operator.Operator` that fires at the first evaluation of each day's
    check if it finds some, and is silent the rest of the day."""

    def __init__(self, at: float = REVIEW_AT, *, lookback: float = HOUR):
        self.at = validate.number("at", at, low=0.0, high=DAY)
        self.lookback = validate.positive("lookback", lookback)
        self._next = self.at
        self._last_error = -math.inf
        self.reviews = self.fired = 0

    def record_counts(self, now: float, good: int, bad: int) -> None:
        if validate.integer("bad", bad, low=0):
            self._last_error = now

    def firing(self, now: float) -> bool:
        if now < self._next:
            return False
        while self._next <= now:
            self._next += DAY
        self.reviews += 1
        found = now - self._last_error <= self.lookback
        self.fired += found
        return found

    def __repr__(self) -> str:
        return f"MorningLogCheck(at {format_duration(self.at)} after midnight)"


def _rule(alarm):
    if alarm == "log":
        return MorningLogCheck()
    if alarm == "page":
        return page_rule(resolution=OPERATOR_RESOLUTION)
    if callable(getattr(alarm, "record_counts", None)) and callable(getattr(alarm, "firing", None)):
        return alarm
    raise validate.WrongType(f"alarm must be 'log', 'page' or an alert rule (ThresholdRule, BurnRateRule), "
                             f"got {validate.show(alarm)}")


def _shop(world, *, baseline: float, log: list | None = None):
    """The orders service and its database; a failed write is logged (appended to ``log``) and raised."""
    db = Service(world, DB, capacity=100, latency=0.005, error_rate=baseline)

    def handler(svc, req):
        try:
            return (yield from svc.ask(DB, req))
        except ServiceError as err:
            if log is not None:
                log.append((svc.env.now, f"ERROR orders: write failed for order {req.key}: {err}"))
            raise
    front = Service(world, "orders", capacity=100, latency=0.002, dependencies=[db], handler=handler)
    return front, db


# --- section 1: a log is not an alarm --------------------------------------------------------------
@dataclass
class WriteRun:
    """One day of the orders service with one database incident: its results, the on-call, the log."""
    results: Results = field(repr=False)
    operator: Operator = field(repr=False)
    log: list = field(repr=False)
    alarm: str

    @property
    def incident(self) -> tuple:
        """(start, paged, repaired) of the first incident (None where it has not happened)."""
        return tuple(self.operator.incidents[0])

    @property
    def detection(self) -> float:
        start, paged, _ = self.incident
        return math.nan if paged is None else paged - start

    @property
    def downtime(self) -> float:
        start, _, repaired = self.incident
        return (self.results.until if repaired is None else repaired) - start

    @property
    def failed_writes(self) -> int:
        return int(np.count_nonzero(self.results.outcome > Outcome.DEGRADED))


def write_run(seed: int, *, alarm="log", at: float = NIGHT_INCIDENT, duration: float = NIGHT_RUN, rate: float = RATE,
              response=RESPONSE, repair=REPAIR, every: float = EVERY, baseline: float = 0.0) -> WriteRun:
    """``duration`` seconds of checkouts at ``rate`` a second; the database fails at ``at`` and stays down
    until the on-call repairs it. ``alarm``: "log" (the morning check reads the log), "page"
    (:func:`page_rule`) or any alert rule."""
    from ..sim.world import World
    duration = validate.positive("duration", duration)
    at = validate.number("at", at, low=0.0, high=duration)
    rate = validate.positive("rate", rate)
    rule = _rule(alarm)
    world = World(seed)
    log: list = []
    front, db = _shop(world, baseline=validate.probability("baseline", baseline), log=log)
    op = Operator(world, rule, response=response, repair=repair, every=every)
    op.incident(db, at)
    orders = iter(range(1, 10 ** 9))
    OpenLoop(world, front, rate, duration=duration, name=ROUTE, key=lambda rng: next(orders))
    results = world.run(until=duration + 1.0)
    return WriteRun(results, op, log, alarm if isinstance(alarm, str) else repr(alarm))


# --- section 2: rules scored against incidents ---------------------------------------------------------
#: Section 2's incidents over four days: (start, end, share of requests failing, what it is).
INCIDENTS = (
    (1 * DAY + 8 * HOUR, 1 * DAY + 12 * HOUR, 0.02, "2% errors for 4 h"),
    (2 * DAY + 3 * HOUR, 2 * DAY + 3 * HOUR + 20 * MINUTE, 1.0, "total outage, 20 min"),
    (3 * DAY + 15 * HOUR, 3 * DAY + 16 * HOUR, 0.15, "15% errors for 1 h"),
)
NOISY_DAYS = 4


def _faults(db, incidents) -> None:
    for start, end, share, _ in incidents:
        if share >= 1.0:
            Outage(db, [(start, end)])
        else:
            ErrorBurst(db, [(start, end)], error_rate=share)


def _incidents(incidents) -> tuple:
    out = []
    for i, inc in enumerate(incidents):
        if not isinstance(inc, (tuple, list)) or len(inc) != 4:
            raise validate.WrongType(f"incidents[{i}] must be (start, end, share of requests failing, label), "
                                     f"got {validate.show(inc)}")
        (start, end), = validate.windows(f"incidents[{i}]", [inc[:2]])
        share = validate.number(f"incidents[{i}] share", inc[2], low=0.0, high=1.0, low_open=True)
        out.append((start, end, share, validate.text(f"incidents[{i}] label", inc[3])))
    return tuple(out)


def noisy_run(seed: int, *, days: float = NOISY_DAYS, rate: float = RATE, baseline: float = BASELINE,
              incidents=INCIDENTS) -> Results:
    """``days`` of checkouts at ``rate`` a second; a share ``baseline`` of requests fails on any day,
    and the ``incidents`` (fixed windows: an outage for a share of 1, else an error burst) add theirs."""
    from ..sim.world import World
    days = validate.positive("days", days)
    rate = validate.positive("rate", rate)
    incidents = _incidents(incidents)
    if incidents and max(end for _, end, _, _ in incidents) > days * DAY:
        raise ValueError(f"incidents must end within the run's {days:g} days")
    world = World(seed)
    front, db = _shop(world, baseline=validate.probability("baseline", baseline))
    _faults(db, incidents)
    OpenLoop(world, front, rate, duration=days * DAY, name=ROUTE)
    return world.run(until=days * DAY + 1.0)


def quiet_errors(results: Results, incidents=INCIDENTS) -> tuple:
    """(failed requests, requests) that ended outside every incident: the normal noise."""
    incidents = _incidents(incidents)
    inside = np.zeros(len(results), dtype=bool)
    for start, end, _, _ in incidents:
        inside |= (results.end >= start) & (results.end < end)
    failed = (results.outcome > Outcome.DEGRADED) & ~inside
    return int(np.count_nonzero(failed)), int(np.count_nonzero(~inside))


def story_rules() -> dict:
    """Section 2's rules, fresh: name -> rule."""
    return {
        "10 min > 0.1%": ThresholdRule(1 - SLO, 10 * MINUTE),
        "36 h > 0.1%": ThresholdRule(1 - SLO, 36 * HOUR),
        "10 min > 0.1%, for: 1h": ThresholdRule(1 - SLO, 10 * MINUTE, for_=HOUR),
        "burn rate (Workbook)": page_rule(),
    }


@dataclass
class RuleScore:
    """One rule's firing spans and their quality against the incidents; ``detection`` and ``reset``
    per incident, in the incidents' order (None for an incident no alert overlapped)."""
    name: str
    spans: list = field(repr=False)
    quality: AlertQuality
    detection: tuple = ()
    reset: tuple = ()

    @property
    def false_alarms(self) -> int:
        return round(self.quality.alerts * (1 - self.quality.precision)) if self.quality.alerts else 0


def _per_incident(spans, incidents) -> tuple:
    """(detection times, reset times), one per incident in order, None where no alert overlapped it."""
    detection, reset = [], []
    for inc in incidents:
        q = alert_quality(spans, [inc])
        detection.append(q.detection_times[0] if q.detection_times else None)
        reset.append(q.reset_times[0] if q.reset_times else None)
    return tuple(detection), tuple(reset)


def compare_rules(results: Results, incidents=INCIDENTS, rules=None, *, every: float = 60.0) -> Table:
    """Replay ``results`` through each rule (default :func:`story_rules`) every ``every`` s and score it
    against the incidents' spans. ``data`` maps a rule's name to its :class:`RuleScore`."""
    incidents = _incidents(incidents)
    rules = story_rules() if rules is None else rules
    if not isinstance(rules, dict) or not rules:
        raise validate.WrongType(f"rules must be a dict of name -> alert rule, got {validate.show(rules)}")
    spans_of = [(s, e) for s, e, _, _ in incidents]
    data, rows = {}, []
    for name, rule in rules.items():
        spans = firing_spans(results, rule, every=every)
        score = RuleScore(name, spans, alert_quality(spans, spans_of), *_per_incident(spans, spans_of))
        data[name] = score
        q = score.quality
        rows.append([name, q.alerts, score.false_alarms, _share(q.precision), _share(q.recall),
                     _times(score.detection), _times(score.reset)])
    return Table(["rule", "alerts", "false alarms", "precision", "recall", "detection (per incident)",
                  "reset (per incident)"], rows, data)


def _share(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.0%}"


def _times(times) -> str:
    return ", ".join("missed" if t is None else format_duration(t) for t in times) if times else "–"


# --- section 3: the Workbook's numbers -----------------------------------------------------------------
def workbook_numbers(slo: float = SLO, period: float = PERIOD) -> dict:
    """The alerting chapter's worked numbers, computed with :func:`time_to_fire` and
    :func:`budget_spent`: claim -> (value, kind), kind "time" (seconds), "share" or "number"."""
    budget = 1 - slo
    total = 1 / budget                              # the burn rate of a total outage (100% errors)
    fire_36h, fire_36x = time_to_fire(slo, 1, 36 * HOUR, 1.0), time_to_fire(slo, 36, HOUR, 1.0)
    requests = 10 * period / HOUR                   # 10 requests an hour, for the period
    return {
        "bare 10 min window: a total outage fires after": (time_to_fire(slo, 1, 10 * MINUTE, 1.0), "time"),
        "bare 10 min window: alerts a day, at most": (DAY / (10 * MINUTE), "number"),
        "36 h window: a total outage fires after": (fire_36h, "time"),
        "36 h window: still firing after the errors stop": (36 * HOUR - fire_36h, "time"),
        "for: 1h: budget a total outage spends first": (budget_spent(total, HOUR, period), "share"),
        "36x over 1 h: a total outage fires after": (fire_36x, "time"),
        "36x over 1 h: still firing after the errors stop": (HOUR - fire_36x, "time"),
        "36x over 1 h: a 35x burn fires after": (time_to_fire(slo, 36, HOUR, 35 * budget), "time"),
        "35x burn: the whole budget is gone in": (period / 35, "time"),
        "page, 14.4x over 1 h: a total outage fires after": (time_to_fire(slo, 14.4, HOUR, 1.0), "time"),
        "page, 14.4x over 1 h: budget spent when it fires": (budget_spent(14.4, HOUR, period), "share"),
        "page, 14.4x over 1 h: 15% errors fire after": (time_to_fire(slo, 14.4, HOUR, 0.15), "time"),
        "page, 6x over 6 h: budget spent when it fires": (budget_spent(6, 6 * HOUR, period), "share"),
        "ticket, 1x over 3 days: budget spent when it fires": (budget_spent(1, 3 * DAY, period), "share"),
        "10 requests an hour: the burn rate of one failure": ((1 / 10) / budget, "number"),
        "10 requests an hour: budget one failure spends": (1 / (requests * budget), "share"),
    }


def workbook_table(slo: float = SLO, period: float = PERIOD) -> Table:
    """:func:`workbook_numbers` as a table, durations and shares written for people; ``data`` maps
    each claim to its value."""
    numbers = workbook_numbers(slo, period)
    rows = []
    for name, (value, kind) in numbers.items():
        if math.isinf(value):
            shown = "never"
        elif kind == "share":
            shown = percent(round(value, 3))
        elif kind == "number":
            shown = f"{value:g}"
        elif value < HOUR:
            shown = f"{format_duration(value)} ({value:,.2f} s)"
        else:
            shown = f"{value / HOUR:.2f} h"
        rows.append([name, shown])
    return Table(["the Workbook's claim (SLO 99.9%, 30 days)", "computed"], rows,
                 {name: value for name, (value, _) in numbers.items()})


@dataclass
class BurstCheck:
    """A rule against one burst of errors: when it fired and stopped, and the budget spent by then."""
    results: Results = field(repr=False)
    burst: tuple
    share: float
    spans: list
    quality: AlertQuality

    @property
    def detection(self) -> float:
        return self.quality.detection_times[0] if self.quality.detection_times else math.inf

    @property
    def reset(self) -> float:
        return self.quality.reset_times[0] if self.quality.reset_times else math.nan

    def budget_spent(self, period: float = PERIOD, slo: float = SLO) -> float:
        """Failed requests from the burst's start to the first firing, over the period's error budget
        at this run's request rate."""
        start = self.burst[0]
        seen = self.results.between(start, start + self.detection)
        failed = int(np.count_nonzero(seen.outcome > Outcome.DEGRADED))
        rate = len(self.results) / self.results.duration
        return failed / ((1 - slo) * rate * period)


def burst_check(seed: int, rule, share: float, *, during: float = 20 * MINUTE, before: float = HOUR,
                after: float = 90 * MINUTE, rate: float = 2.0, every: float = 1.0) -> BurstCheck:
    """``before`` s of good traffic at ``rate`` a second (the windows fill), then ``during`` s with a
    ``share`` of requests failing (1: an outage), then ``after`` s of good traffic; ``rule`` is
    replayed every ``every`` s."""
    from ..sim.world import World
    share = validate.number("share", share, low=0.0, high=1.0, low_open=True)
    before, during = validate.positive("before", before), validate.positive("during", during)
    after, rate = validate.non_negative("after", after), validate.positive("rate", rate)
    world = World(seed)
    front, db = _shop(world, baseline=0.0)
    burst = (before, before + during)
    _faults(db, [(*burst, share, "burst")])
    OpenLoop(world, front, rate, duration=before + during + after, name=ROUTE)
    results = world.run(until=before + during + after)
    spans = firing_spans(results, rule, every=every)
    return BurstCheck(results, burst, share, spans, alert_quality(spans, [burst]))


def detection_sd(share: float, rate: float, burn: float, window: float, slo: float = SLO) -> float:
    """About how much a simulated detection time varies around :func:`time_to_fire`: the rule needs
    k = burn x (1 - slo) x rate x window errors, and errors arrive as a Poisson stream at rate x share,
    so the k-th comes after a Gamma time of standard deviation sqrt(k) / (rate x share)."""
    share = validate.number("share", share, low=0.0, high=1.0, low_open=True)
    rate, burn = validate.positive("rate", rate), validate.positive("burn", burn)
    window = validate.positive("window", window)
    k = burn * (1 - validate.number("slo", slo, low=0.0, high=1.0, low_open=True)) * rate * window
    return math.sqrt(k) / (rate * share)


# --- section 4: MTTD, MTTR and availability over many incidents ------------------------------------------
#: Section 4's schedule: the database runs for an exponential up time of mean MTTF, then fails until
#: repaired; over LONG_DAYS days at LONG_RATE requests a second (the rule evaluated every LONG_EVERY s).
MTTF = 12 * HOUR
LONG_DAYS = 20
LONG_RATE = 0.02
LONG_EVERY = 60.0


@dataclass
class RepeatedRun:
    """Many incidents, each repaired by the on-call: MTTD, MTTR, and availability predicted and measured."""
    results: Results = field(repr=False)
    operator: Operator = field(repr=False)
    mttf: float
    label: str
    response: float = RESPONSE
    repair: float = REPAIR

    @property
    def done(self) -> list:
        return [r for r in self.operator.incidents if r[2] is not None]

    @property
    def mttd(self) -> float:
        return self.operator.times()["mttd"]

    @property
    def mttr(self) -> float:
        return self.operator.times()["mttr"]

    @property
    def measured_mttf(self) -> float:
        """Mean up time before each repaired incident (from the previous repair, or the start)."""
        ups, last = [], 0.0
        for start, _, repaired in self.done:
            ups.append(start - last)
            last = repaired
        return float(np.mean(ups)) if ups else math.nan

    @property
    def predicted(self) -> float:
        """MTTF / (MTTF + MTTR), Part I's formula, with the schedule's MTTF and the measured MTTR."""
        return theory.availability(self.mttf, self.mttr)

    @property
    def measured(self) -> float:
        """The share of the run the database was up."""
        return self.results.time_availability(DB)

    @property
    def tolerance(self) -> float:
        """Three standard deviations of a measured availability over this run (exponential up and
        repair times: an upper bound here, where the repair is nearly fixed)."""
        return 3 * theory.availability_sd(self.mttf, self.mttr, self.results.duration)


def repeated_run(seed: int, *, alarm="page", response=RESPONSE, repair=REPAIR, mttf: float = MTTF,
                 days: float = LONG_DAYS, rate: float = LONG_RATE, every: float = LONG_EVERY,
                 label: str | None = None) -> RepeatedRun:
    """``days`` of checkouts; the database fails after an exponential up time of mean ``mttf``
    (drawn from its own seeded stream) counted from the last repair, and stays down until the on-call,
    alerted by ``alarm`` ("page", "log" or a rule), has responded and repaired."""
    from ..sim.world import World
    mttf, days = validate.positive("mttf", mttf), validate.positive("days", days)
    rate, every = validate.positive("rate", rate), validate.positive("every", every)
    response, repair = validate.non_negative("response", response), validate.non_negative("repair", repair)
    world = World(seed)
    front, db = _shop(world, baseline=0.0)
    op = Operator(world, _rule(alarm), response=response, repair=repair, every=every)
    env, rng = world.env, world.rng("incidents")

    def schedule():
        last_repair = 0.0
        while True:
            up = rng.expovariate(1 / mttf)
            yield env.timeout(max(0.0, last_repair + up - env.now))
            op.incident(db, env.now)
            record = op.incidents[-1]
            while record[2] is None:
                yield env.timeout(every)
            last_repair = record[2]

    env.process(schedule())
    OpenLoop(world, front, rate, duration=days * DAY, name=ROUTE)
    results = world.run(until=days * DAY)
    return RepeatedRun(results, op, mttf, label or (alarm if isinstance(alarm, str) else repr(alarm)),
                       response, repair)


def operators_table(runs) -> Table:
    """A row per :class:`RepeatedRun` of ``runs`` (a list, or a dict label -> run): incidents, MTTD, MTTR,
    availability predicted by MTTF / (MTTF + MTTR) and measured, and downtime a month. ``data`` maps
    labels to runs."""
    if isinstance(runs, dict):
        runs = [replace(r, label=label) for label, r in runs.items()]
    rows, data = [], {}
    for run in runs:
        if not isinstance(run, RepeatedRun):
            raise validate.WrongType(f"runs must hold RepeatedRun (from repeated_run), got {validate.show(run)}")
        data[run.label] = run
        rows.append([run.label, len(run.done), format_duration(run.mttd), format_duration(run.mttr),
                     f"{run.predicted:.2%}", f"{run.measured:.2%} ± {run.tolerance:.1%}",
                     format_duration((1 - run.measured) * MONTH)])
    return Table(["on-call", "incidents", "MTTD", "MTTR", "MTTF / (MTTF + MTTR)", "measured (± 3 sd)",
                  "down a month"], rows, data)


def draw_mttr(ax, runs) -> None:
    """Each run's mean incident as stacked bars: detection (MTTD), response, repair; x in minutes."""
    runs = list(runs.values()) if isinstance(runs, dict) else list(runs)
    parts = (("detection", "tab:red"), ("response", "tab:orange"), ("repair", "tab:blue"))
    for row, run in enumerate(runs):
        left = 0.0
        for (name, color), width in zip(parts, (run.mttd, run.response, run.repair)):
            ax.barh(row, width / MINUTE, left=left / MINUTE, color=color, label=name if row == 0 else None)
            left += width
    ax.set_yticks(range(len(runs)), [r.label for r in runs])
    ax.invert_yaxis()
    ax.set_xlabel("minutes from the incident's start")
    ax.legend(loc="upper right", fontsize=8)


# --- section 5: triggers for manual intervention ------------------------------------------------------
@dataclass(frozen=True)
class Alarm:
    """What needs a human, and what they need to act (Microsoft: "as much information as possible")."""
    trigger: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"ALARM {self.trigger}: {self.subject}: {self.detail}"


def manual_triggers(now: float, *, queue: MessageQueue | None = None, sagas=None, max_tries: int = 3,
                    stuck_after: float = 10 * MINUTE) -> list:
    """The alarms due at ``now``: one per dead letter in ``queue`` (its depth > 0), and one if the queue
    has dropped messages (no dead-letter queue). For ``sagas`` (``{saga id: (state, compensating since
    or None)}``): one per saga whose compensation failed ``max_tries`` times or more, and one per saga
    compensating for longer than ``stuck_after`` seconds."""
    now = validate.non_negative("now", now)
    max_tries = validate.integer("max_tries", max_tries, low=1)
    stuck_after = validate.positive("stuck_after", stuck_after)
    alarms = []
    if queue is not None:
        if not isinstance(queue, MessageQueue):
            raise validate.WrongType(f"queue must be a MessageQueue, got {validate.show(queue)}")
        for message_id, body, count in queue.dead_letters:
            alarms.append(Alarm("DLQ depth > 0", f"message {message_id}",
                                f"dead-lettered after {count} receives; body {body!r}"))
        if queue.dropped:
            alarms.append(Alarm("messages dropped", "queue",
                                f"{queue.dropped} dropped at the delivery limit with no dead-letter queue"))
    if sagas is not None:
        if not isinstance(sagas, dict):
            raise validate.WrongType(f"sagas must be a dict {{saga id: (state, compensating since)}}, "
                                     f"got {validate.show(sagas)}")
        for saga_id, entry in sagas.items():
            try:
                state, since = entry
                status, tries = state["status"], state["tries"]
            except (TypeError, ValueError, KeyError):
                raise validate.WrongType(f"sagas[{saga_id!r}] must be (saga state, compensating since or None), "
                                         f"got {validate.show(entry)}") from None
            if status != COMPENSATE:
                continue
            undo = [s for s in state["to_undo"] if s not in state["undone"]]
            if tries >= max_tries:
                alarms.append(Alarm("compensation failed", f"saga {saga_id}",
                                    f"undo of {undo[-1] if undo else '?'} failed {tries} times; still to undo {undo}"))
            if since is not None and now - since > stuck_after:
                alarms.append(Alarm("saga stuck compensating", f"saga {saga_id}",
                                    f"compensating for {format_duration(now - since)}; still to undo {undo}"))
    return alarms


# --- section 6: the dashboard's replay on per-minute counts ------------------------------------------------
#: The dashboard's day: per-minute bins; incidents (start, share failing, what it is) that last until
#: repaired; one no alert catches is reported by a customer COMPLAINT s after it starts.
BIN = 60.0
DASH_INCIDENTS = ((3 * HOUR, 1.0, "total outage"), (10 * HOUR, 0.15, "15% errors"),
                  (18 * HOUR, 0.02, "2% errors"))
COMPLAINT = 4 * HOUR
DASH_SEED = 17
#: The longest response the dashboard offers, so each incident's window of counts covers it.
DASH_RESPONSE_MAX = 60 * MINUTE


@dataclass(frozen=True)
class Bins:
    """Per-bin outcome counts of one seeded day, twice: quiet (baseline errors only) and with each
    incident's errors on from its start for as long as an incident can last."""
    t: np.ndarray            # bin ends
    quiet: np.ndarray        # (bins, 2): good, bad
    sick: np.ndarray         # (bins, 2): good, bad while incidents are on
    starts: tuple
    labels: tuple
    width: float

    @property
    def until(self) -> float:
        return float(self.t[-1])


def _counts(results: Results, width: float, n: int) -> np.ndarray:
    idx = np.minimum((results.end // width).astype(np.int64), n - 1)
    ok = results.outcome <= Outcome.DEGRADED
    good = np.bincount(idx, weights=ok, minlength=n).astype(np.int64)
    total = np.bincount(idx, minlength=n)
    return np.stack([good, total - good], axis=1)


_BINS: OrderedDict = OrderedDict()


def dash_bins(seed: int = DASH_SEED, *, incidents=DASH_INCIDENTS, duration: float = DAY, rate: float = RATE,
              baseline: float = BASELINE, width: float = BIN, longest: float | None = None) -> Bins:
    """Run the day twice with ``seed`` (the same arrivals): quiet, and with every incident on for
    ``longest`` s (default: the complaint, the longest response and a repair); keep per-bin counts
    (by end time, as a monitoring system counts). Cached by parameters."""
    from ..sim.world import World
    longest = COMPLAINT + DASH_RESPONSE_MAX + REPAIR if longest is None else validate.positive("longest", longest)
    key = (seed, tuple(incidents), duration, rate, baseline, width, longest)
    if key in _BINS:
        return _BINS[key]
    width, duration = validate.positive("width", width), validate.positive("duration", duration)
    n = int(round(duration / width))
    windows = [(start, start + longest, share, label) for start, share, label in incidents]
    if any(a[1] > b[0] for a, b in zip(windows, windows[1:])) or windows[-1][1] > duration:
        raise ValueError(f"incidents must be at least {format_duration(longest)} apart and end within the run")
    out = []
    for faults in ((), windows):
        world = World(seed)
        front, db = _shop(world, baseline=baseline)
        _faults(db, faults)
        OpenLoop(world, front, rate, duration=duration, name=ROUTE)
        out.append(_counts(world.run(until=duration + 1.0), width, n))
    bins = Bins(width * np.arange(1, n + 1), out[0], out[1], tuple(s for s, _, _ in incidents),
                tuple(label for _, _, label in incidents), width)
    _BINS[key] = bins
    if len(_BINS) > 8:
        _BINS.popitem(last=False)
    return bins


@dataclass
class Replay:
    """A rule and an on-call replayed on :class:`Bins`: the firing spans, and the incidents as
    (start, detected, repaired, paged: True, or reported by a complaint: False)."""
    spans: list
    incidents: list
    until: float

    @property
    def quality(self) -> AlertQuality:
        return alert_quality(self.spans, [(s, r) for s, _, r, _ in self.incidents])

    @property
    def pages(self) -> int:
        """Times the rule started firing (each one pages the on-call)."""
        return len(self.spans)

    @property
    def false_alarms(self) -> int:
        """Pages that overlapped no incident."""
        q = self.quality
        return round(q.alerts * (1 - q.precision)) if q.alerts else 0

    @property
    def mttd(self) -> float:
        """Mean seconds from an incident's start to its page (or to the complaint, for one missed)."""
        return float(np.mean([d - s for s, d, _, _ in self.incidents]))

    @property
    def downtime(self) -> float:
        return float(sum(r - s for s, _, r, _ in self.incidents))


def replay(bins: Bins, rule, *, response: float = RESPONSE, repair: float = REPAIR,
           complaint: float = COMPLAINT, method: str = "auto") -> Replay:
    """Feed each bin's counts to ``rule`` (a fresh one) and evaluate it at the bin's end, as the
    :class:`~resilience_sim.sim.operator.Operator` does at every scrape: a firing rule that finds an
    incident not yet handled pages the on-call, who repairs it ``response + repair`` s later; an
    incident no page found is reported ``complaint`` s after its start. A bin inside an incident has
    the sick counts.

    ``method``: "rule" calls ``rule.record_counts`` and ``rule.firing`` bin by bin; "sums" computes the
    very same windows from prefix sums of the bins, some thirty times faster (for a ThresholdRule or
    BurnRateRule without ``for_``, with ``resolution`` = the bin width: then a window of W s holds
    W / width + 1 bins, as the rule counts it); "auto" takes "sums" when it applies."""
    response, repair = validate.non_negative("response", response), validate.non_negative("repair", repair)
    complaint = validate.positive("complaint", complaint)
    method = validate.choice("method", method, ("auto", "rule", "sums"))
    if not isinstance(bins, Bins):
        raise validate.WrongType(f"bins must be a Bins (from dash_bins), got {validate.show(bins)}")
    if not callable(getattr(rule, "record_counts", None)) or not callable(getattr(rule, "firing", None)):
        raise validate.WrongType(f"rule must be an alert rule (ThresholdRule, BurnRateRule), got {validate.show(rule)}")
    summable = _summable(rule, bins.width)
    if method == "sums" and not summable:
        raise ValueError(f"method 'sums' needs a ThresholdRule or BurnRateRule with for_=0, resolution="
                         f"{bins.width:g} (the bin width) and nothing recorded yet; got {rule!r}")
    run = _replay_sums if (method == "sums" or (method == "auto" and summable)) else _replay_rule
    return run(bins, rule, response + repair, complaint)


def _summable(rule, width: float) -> bool:
    return (isinstance(rule, (ThresholdRule, BurnRateRule)) and rule.for_ == 0 and rule.resolution == width
            and rule.recorded == 0)


def _replay_rule(bins: Bins, rule, fix: float, complaint: float) -> Replay:
    t, quiet, sick, width = bins.t, bins.quiet.tolist(), bins.sick.tolist(), bins.width
    starts = list(bins.starts)
    ends = [s + complaint + fix for s in starts]         # until a page comes
    detected = [s + complaint for s in starts]
    paged = [False] * len(starts)
    spans, on_since = [], None
    k = 0                                                # the first incident that may be on
    for b, now in enumerate(t.tolist()):
        lo = now - width
        while k < len(starts) and ends[k] <= lo:
            k += 1
        good, bad = sick[b] if (k < len(starts) and starts[k] <= lo) else quiet[b]
        rule.record_counts(now, good, bad)
        if rule.firing(now):
            on_since = now if on_since is None else on_since
            for i in range(k, len(starts)):
                if starts[i] < now < detected[i] and not paged[i]:
                    paged[i], detected[i], ends[i] = True, now, now + fix
        elif on_since is not None:
            spans.append((on_since, now))
            on_since = None
    if on_since is not None:
        spans.append((on_since, bins.until))
    return Replay(spans, _incident_rows(bins, starts, detected, ends, paged), bins.until)


def _incident_rows(bins, starts, detected, ends, paged) -> list:
    return [(s, d, min(e, bins.until), p) for s, d, e, p in zip(starts, detected, ends, paged)]


def _firing_sums(rule, good: np.ndarray, bad: np.ndarray, width: float) -> np.ndarray:
    """Whether ``rule`` fires at each bin's end, from prefix sums: the rule's own windows and tests."""
    n = len(good)
    cg, cb = np.r_[0, np.cumsum(good)], np.r_[0, np.cumsum(bad)]
    ends = np.arange(1, n + 1)                            # bin b is the rule's bucket b + 1

    def ratio(window):
        first = np.floor((ends * width - window) / width).astype(np.int64)   # the rule's oldest bucket
        lo = np.clip(first - 1, 0, n)                      # bucket i holds bin i - 1
        b, total = cb[ends] - cb[lo], (cg[ends] - cg[lo]) + (cb[ends] - cb[lo])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, b / np.maximum(total, 1), 0.0), total

    if isinstance(rule, ThresholdRule):
        r, total = ratio(rule.window)
        return (total >= rule.min_requests) & (r >= rule.threshold)
    on = np.zeros(n, dtype=bool)
    for long_w, short_w, burn in rule.pairs:
        limit = burn * (1.0 - rule.slo)
        on |= (ratio(long_w)[0] >= limit) & (ratio(short_w)[0] >= limit)
    return on


def _replay_sums(bins: Bins, rule, fix: float, complaint: float) -> Replay:
    t, width, n = bins.t, bins.width, len(bins.t)
    good, bad = bins.quiet[:, 0].copy(), bins.quiet[:, 1].copy()
    lows = t - width                                      # bin starts
    starts, detected, ends, paged = list(bins.starts), [], [], []
    for s in starts:
        longest = s + complaint + fix
        on = (lows >= s) & (lows < longest)
        good[on], bad[on] = bins.sick[on, 0], bins.sick[on, 1]
        fire = _firing_sums(rule, good, bad, width)
        hit = np.flatnonzero(fire & (t > s) & (t < s + complaint))
        if hit.size:
            d, e, p = float(t[hit[0]]), float(t[hit[0]]) + fix, True
        else:
            d, e, p = s + complaint, longest, False
        back = (lows >= e) & (lows < longest)             # repaired: quiet again
        good[back], bad[back] = bins.quiet[back, 0], bins.quiet[back, 1]
        detected.append(d), ends.append(e), paged.append(p)
    fire = _firing_sums(rule, good, bad, width)
    edges = np.flatnonzero(np.diff(np.r_[False, fire, False].astype(np.int8)))
    spans = [(float(t[a]), float(t[b]) if b < n else bins.until) for a, b in zip(edges[::2], edges[1::2])]
    return Replay(spans, _incident_rows(bins, starts, detected, ends, paged), bins.until)


INCIDENT_COLOR, ALERT_COLOR = "tab:red", "tab:orange"


def draw_alerts(ax, rows, incidents, until: float, *, unit: float = HOUR, font: int | None = None) -> None:
    """Alert spans, one row per ``(label, spans)`` of ``rows``, below a row of the ``incidents``'
    spans, which are also shaded across every row; x in ``unit`` seconds."""
    rows = [("incidents", list(incidents), INCIDENT_COLOR)] + [(label, s, ALERT_COLOR) for label, s in rows]
    for start, end in incidents:
        ax.axvspan(start / unit, end / unit, color=INCIDENT_COLOR, alpha=0.12, lw=0)
    for row, (_, spans, color) in enumerate(rows):
        if spans:
            ax.broken_barh([(s / unit, max(e - s, unit / 100) / unit) for s, e in spans], (row - 0.3, 0.6),
                           facecolor=color, edgecolor=color, lw=1)
    ax.set_yticks(range(len(rows)), [label for label, _, _ in rows], fontsize=font)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, until / unit)


#: The threshold rule's settings the dashboard starts from (the Workbook's first approach).
DASH_WINDOW_MIN, DASH_THRESHOLD_PCT = 10, 0.1
_DASH_FONT = 8


def _dash_compute(window_min, threshold_pct, response_min, *, rule: str):
    bins = dash_bins()
    if rule == "threshold":
        alert = ThresholdRule(threshold_pct / 100, window_min * MINUTE, resolution=BIN)
    else:
        alert = page_rule(resolution=BIN)          # replayed from prefix sums: the same windows, fast
    return replay(bins, alert, response=response_min * MINUTE), bins


def _dash_draw(ax, result) -> None:
    run, bins = result
    draw_alerts(ax, [("alert firing", run.spans)], [(s, r) for s, _, r, _ in run.incidents], run.until,
                font=_DASH_FONT)
    ax.set_xticks([0, 6, 12, 18, 24])
    ax.set_xlabel("time of day (h)", fontsize=_DASH_FONT)
    ax.tick_params(labelsize=_DASH_FONT)
    ax.title.set_fontsize(_DASH_FONT + 1)


def _dash_summary(result) -> str:
    run, _ = result
    q = run.quality
    reset = format_duration(float(np.mean(q.reset_times))) if q.reset_times else "-"
    return (f"precision {_share(q.precision)}, recall {_share(q.recall)}, MTTD {format_duration(run.mttd)}, "
            f"still firing after {reset} (mean); {run.pages} pages, {run.false_alarms} false; "
            f"down {format_duration(run.downtime)}")


@dashboard("15_alarms/rules")
def rules_dashboard() -> Dashboard:
    """A threshold rule (window, threshold) against the Workbook's burn-rate rule, with the on-call's
    response time: alerts against incidents over one day, precision, recall and MTTD."""
    return Dashboard(
        _dash_compute, _dash_draw,
        [Slider("window_min", "threshold rule's window", "min", 1, 360, DASH_WINDOW_MIN, step=1),
         Slider("threshold_pct", "threshold: requests failing", "%", 0.1, 20.0, DASH_THRESHOLD_PCT, step=0.1),
         Slider("response_min", "on-call responds in", "min", 1, DASH_RESPONSE_MAX / MINUTE, RESPONSE / MINUTE,
                step=1)],
        variants={"threshold rule": {"rule": "threshold"}, "burn-rate rule (Workbook)": {"rule": "burn"}},
        summary=_dash_summary, figsize=(11.0, 2.6), dpi=72,
        title=f"One day at {RATE:g} checkouts/s, {percent(BASELINE)} failing on a normal day; three incidents "
              "(red) last until the on-call repairs them (response + 10 min), or until a customer complains "
              f"{format_duration(COMPLAINT)} in. Orange: the alert firing")
