"""13 The transactional outbox: an order service that must also tell shipping.

The story: an order service writes each order to its own database and sends a message (through a
broker) to the shipping service, which ships the order. :func:`~resilience_sim.sim.write_path.write_path`
builds that path and checks it (Jepsen-style: lost, unexpected, duplicated writes). This module adds
what the notebook shows on top of it:

* **fault schedules** drawn at random (:func:`random_schedule`, :func:`draw_schedules`), a seeded
  search for a counterexample and a greedy shrink to a few faults (:func:`find_counterexample`,
  :func:`shrink`; no hypothesis, which is a test dependency only), and a census of many schedules
  (:func:`census`);
* what a run's **events** say: the relay lag from commit to first publish (:func:`relay_lags`), the
  order in which each key's first copies left (:func:`first_copies`, :func:`in_commit_order`), the
  order the effects were applied in (:func:`effects_in_order`), extra copies (:func:`extra_copies`);
* **crashes aimed at work**: a crash at a random idle moment does almost nothing, so the dashboard and
  the relay stories crash a process while it works: the app in the middle of writing an order
  (:func:`mid_write_crashes`), a relay in the middle of a batch (:func:`relay_batches`,
  :func:`aimed_relay_run`);
* tables of lag against the poll interval and against the lease after a crash (:func:`lag_table`,
  :func:`lease_table`), the timeline picture (:func:`draw_timeline`) and the dashboard "dual write /
  outbox" (:func:`writes_dashboard`).

Times are simulated seconds. Orders are the write path's commands: ``COMMANDS`` orders one every
``EVERY`` s, order ``i`` has key ``i % KEYS`` (a customer, say), and the row id, the message id and
the command id are the same number.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np
from matplotlib.ticker import MaxNLocator

from ..core import validate
from ..sim.outbox import DESIGNS
from ..sim.write_path import Schedule, WriteRun, write_path
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import RunMemo, Table

#: The two dual writes and the outbox.
DUAL = DESIGNS[:2]
OUTBOX = DESIGNS[2]
#: Orders written (one every EVERY seconds) and keys (order i has key i % KEYS): write_path's defaults.
COMMANDS, EVERY, KEYS = 30, 0.1, 5
#: Faults are drawn in [0, SPAN) s: the orders are written in the first ~3 s.
SPAN = 4.0
#: At most this many crashes per process and outage windows per part, in a random schedule; an
#: outage lasts between WINDOW[0] and WINDOW[1] s.
MAX_CRASHES, MAX_WINDOWS = 3, 2
WINDOW = (0.05, 3.0)
#: What the checker can find wrong (``WriteCheck`` attributes); "unexpected" is an invented message.
KINDS = ("lost", "unexpected", "duplicated")
#: The parts of a schedule that have outages, with the names the notebook uses.
OUTAGES = {"db": "order database", "broker": "broker", "consumer_db": "shipping database"}
#: The most schedules a search or a census may try.
MAX_TRIES = 100_000


# --- fault schedules --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    """One fault of a schedule: a crash of ``part`` ("app", "relays" with ``index``, "consumer") at
    ``at`` seconds, or an outage of ``part`` ("db", "broker", "consumer_db") over ``at`` = (start, end)."""
    part: str
    index: int
    at: object

    def __str__(self) -> str:
        if self.part in OUTAGES:
            return f"{OUTAGES[self.part]} down {self.at[0]:.3f}-{self.at[1]:.3f} s"
        who = f"relay{self.index}" if self.part == "relays" else self.part
        return f"{who} crash at {self.at:.4f} s"


def random_schedule(rng: random.Random, *, relays: int = 1, outages: bool = False, span: float = SPAN) -> Schedule:
    """A fault schedule drawn from ``rng``: 0 to MAX_CRASHES crashes of the app, of each of ``relays``
    relays (0 for a dual write, which has none) and of the consumer, at uniform times in [0, ``span``);
    with ``outages``, also 0 to MAX_WINDOWS outages of the order database, the broker and the shipping
    database (each WINDOW long)."""
    if not isinstance(rng, random.Random):
        raise validate.WrongType(f"rng must be a random.Random (random.Random(seed)), got {validate.show(rng)}")
    relays = validate.integer("relays", relays, low=0, high=10)
    validate.boolean("outages", outages)
    span = validate.positive("span", span)

    def crashes():
        return [rng.uniform(0, span) for _ in range(rng.randint(0, MAX_CRASHES))]

    def windows():
        if not outages:
            return []
        starts = [rng.uniform(0, span) for _ in range(rng.randint(0, MAX_WINDOWS))]
        return [(s, s + rng.uniform(*WINDOW)) for s in starts]

    return Schedule(app=crashes(), relays=tuple(crashes() for _ in range(relays)) or ((),), consumer=crashes(),
                    db=windows(), broker=windows(), consumer_db=windows())


def draw_schedules(n: int, *, seed: int, relays: int = 1, outages: bool = False) -> list:
    """``n`` random schedules (:func:`random_schedule`), the same ones for the same seed."""
    n = validate.integer("n", n, low=1, high=MAX_TRIES)
    rng = random.Random(validate.integer("seed", seed, low=0))
    return [random_schedule(rng, relays=relays, outages=outages) for _ in range(n)]


def _schedule(value) -> Schedule:
    if not isinstance(value, Schedule):
        raise validate.WrongType(f"schedule must be a Schedule (from resilience_sim.sim.write_path), "
                                 f"got {validate.show(value)}")
    return value


def faults(schedule: Schedule) -> list:
    """Every fault of ``schedule``, as :class:`Fault` s (crashes first, then outages)."""
    s = _schedule(schedule)
    out = [Fault("app", 0, t) for t in s.app]
    out += [Fault("relays", i, t) for i, times in enumerate(s.relays) for t in times]
    out += [Fault("consumer", 0, t) for t in s.consumer]
    out += [Fault(part, 0, w) for part in OUTAGES for w in getattr(s, part)]
    return out


def schedule_of(fault_list, *, relays: int = 1) -> Schedule:
    """The schedule made of ``fault_list`` (:class:`Fault` s), with ``relays`` relays at least."""
    if isinstance(fault_list, (str, bytes)) or not hasattr(fault_list, "__iter__"):
        raise validate.WrongType(f"fault_list must be a list of Fault s, got {validate.show(fault_list)}")
    fault_list = list(fault_list)
    for f in fault_list:
        if not isinstance(f, Fault):
            raise validate.WrongType(f"fault_list must hold Fault s (from faults(schedule)), got {validate.show(f)}")
    parts = {"app": [], "consumer": [], **{p: [] for p in OUTAGES}}
    count = max([validate.integer("relays", relays, low=1)] + [f.index + 1 for f in fault_list if f.part == "relays"])
    crashes = [[] for _ in range(count)]
    for f in fault_list:
        (crashes[f.index] if f.part == "relays" else parts[f.part]).append(f.at)
    return Schedule(relays=tuple(crashes), **parts)


def _check_kind(kind: str) -> str:
    return validate.choice("kind", kind, KINDS)


def fails(design: str, kind: str, schedule: Schedule, **options) -> bool:
    """Whether ``design`` under ``schedule`` has at least one write of ``kind`` ("lost", "unexpected",
    "duplicated"); ``options`` go to write_path."""
    return bool(getattr(write_path(design, _schedule(schedule), **options).check, _check_kind(kind)))


def _events(run: WriteRun, fault: Fault) -> list:
    if fault.part == "app":
        return run.app.events
    if fault.part == "consumer":
        return run.consumer.events
    return run.relays[fault.index].events if fault.index < len(run.relays) else []


def reaim(design: str, schedule: Schedule, before: WriteRun, **options) -> tuple:
    """``schedule`` (a changed schedule, say with one fault dropped) with each crash moved so that it
    strikes the same piece of work as it did in ``before`` (the run of the schedule it came from): by
    as much as the last event of that process before the crash (an order started, a row published...)
    moved. Crashes are placed in time order, each from a run of the outages and the crashes already
    placed. Returns (the new schedule, runs made)."""
    items = faults(_schedule(schedule))
    placed = [f for f in items if f.part in OUTAGES]
    relays, runs = len(schedule.relays), 0
    for f in sorted((f for f in items if f.part not in OUTAGES), key=lambda f: f.at):
        old = [e for e in _events(before, f) if e[0] <= f.at]
        if old:
            t, ident, what = old[-1]
            runs += 1
            now = write_path(design, schedule_of(placed, relays=relays), **options)
            new = next((e[0] for e in _events(now, f) if e[1] == ident and e[2] == what), None)
            if new is not None:
                f = Fault(f.part, f.index, max(0.0, f.at + new - t))
        placed.append(f)
    return schedule_of(placed, relays=relays), runs


def shrink(design: str, kind: str, schedule: Schedule, **options) -> tuple:
    """Greedy shrinking of a schedule under which ``design`` has a write of ``kind``: drop one fault at a
    time; when the failure goes with it, try once more with the other crashes re-aimed at the work
    they struck (:func:`reaim`: dropping a crash shifts everything after it). Keep the first change
    that still fails and start again, until no fault can go. Returns (the smaller schedule, runs made)."""
    design = validate.choice("design", design, DESIGNS)
    kind = _check_kind(kind)
    current = _schedule(schedule)
    current_run = write_path(design, current, **options)
    if not getattr(current_run.check, kind):
        raise ValueError(f"schedule must make {design!r} fail with a {kind} write; it does not")
    relays, runs, shrunk = len(current.relays), 1, True
    while shrunk:
        shrunk = False
        items = faults(current)
        for i in range(len(items)):
            candidate = schedule_of(items[:i] + items[i + 1:], relays=relays)
            run = write_path(design, candidate, **options)
            runs += 1
            if not getattr(run.check, kind):
                candidate, extra = reaim(design, candidate, current_run, **options)
                run = write_path(design, candidate, **options)
                runs += extra + 1
            if getattr(run.check, kind):
                current, current_run, shrunk = candidate, run, True
                break
    return current, runs


@dataclass
class Counterexample:
    """A schedule under which ``design`` has a write of ``kind``: as found after ``tried`` random
    schedules, and shrunk (in ``shrink_runs`` more runs) to ``schedule``; ``run`` is its run."""
    design: str
    kind: str
    found: Schedule
    schedule: Schedule
    tried: int
    shrink_runs: int
    run: WriteRun = field(repr=False)

    @property
    def faults(self) -> list:
        return faults(self.schedule)

    @property
    def victims(self) -> tuple:
        """The writes of ``kind`` (order ids)."""
        return tuple(getattr(self.run.check, self.kind))

    def __str__(self) -> str:
        return (f"{self.design}: {self.kind} {list(self.victims)} after {self.tried} schedules "
                f"({len(faults(self.found))} faults), shrunk to " + "; ".join(map(str, self.faults)))


def find_counterexample(design: str, kind: str, *, seed: int, tries: int = 2000, relays: int | None = None,
                        outages: bool = False, **options) -> Counterexample:
    """Try random schedules (:func:`random_schedule`, seeded; ``relays`` crashing relays, by default
    none for a dual write and one for the outbox) until ``design`` has a write of ``kind``, then
    :func:`shrink` it. ``options`` go to write_path (``dedupe=``, ``relay_options=``...). A LookupError
    if none of ``tries`` schedules fails."""
    design = validate.choice("design", design, DESIGNS)
    kind = _check_kind(kind)
    relays = (0 if design in DUAL else 1) if relays is None else relays
    tries = validate.integer("tries", tries, low=1, high=MAX_TRIES)
    rng = random.Random(validate.integer("seed", seed, low=0))
    for tried in range(1, tries + 1):
        schedule = random_schedule(rng, relays=relays, outages=outages)
        if fails(design, kind, schedule, **options):
            small, runs = shrink(design, kind, schedule, **options)
            return Counterexample(design, kind, schedule, small, tried, runs, write_path(design, small, **options))
    raise LookupError(f"tries: none of {tries} schedules gave {design!r} a {kind} write; "
                      f"try more tries, outages=True or another seed")


# --- what a run's events say --------------------------------------------------------------------------
def commit_times(run: WriteRun) -> dict:
    """Order id -> when it committed, for the acknowledged orders (the app heard of the commit
    ``reply_latency`` after its commit point)."""
    reply = run.app.db.reply_latency
    return {c: t - reply for t, c, what in run.app.events if what == "acknowledged"}


def first_publishes(run: WriteRun) -> dict:
    """Row id -> when its first copy was published, over every relay (empty for a dual write)."""
    first: dict = {}
    for relay in run.relays:
        for t, row, what in relay.events:
            if what == "published" and (row not in first or t < first[row]):
                first[row] = t
    return first


def relay_lags(run: WriteRun) -> np.ndarray:
    """Seconds from commit to first publish, per acknowledged order that was published (outbox runs)."""
    if not run.relays:
        raise ValueError("run must be an outbox run (it has relays); a dual write publishes in the request")
    first = first_publishes(run)
    return np.array([first[c] - t for c, t in commit_times(run).items() if c in first])


def extra_copies(run: WriteRun) -> int:
    """Copies the relays published beyond one per row (0 for a dual write): what the consumer must dedupe."""
    published = [row for relay in run.relays for _, row, what in relay.events if what == "published"]
    return len(published) - len(set(published))


def first_copies(run: WriteRun, keys: int = KEYS) -> dict:
    """Key -> the row ids of that key in the order their first copies were published."""
    keys = validate.integer("keys", keys, low=1)
    order: dict = {}
    for row, _ in sorted(first_publishes(run).items(), key=lambda item: item[1]):
        order.setdefault(row % keys, []).append(row)
    return order


def in_commit_order(run: WriteRun, keys: int = KEYS) -> bool:
    """Whether, for every key, the first copies left in commit order (the app commits orders in id order)."""
    return all(rows == sorted(rows) for rows in first_copies(run, keys).values())


def effects(run: WriteRun) -> list:
    """The order ids of the shipping service's effects, in the order they were applied."""
    return [row["body"]["command"] for _, row in run.consumer.db.rows("effects")]


def effects_in_order(run: WriteRun, keys: int = KEYS) -> bool:
    """Whether, for every key, shipping first applied the orders in commit order."""
    keys = validate.integer("keys", keys, low=1)
    seen, order = set(), {}
    for c in effects(run):
        if c not in seen:
            seen.add(c)
            order.setdefault(c % keys, []).append(c)
    return all(rows == sorted(rows) for rows in order.values())


def events_of(run: WriteRun, order) -> list:
    """Every event about ``order`` (an id), sorted by time: (time, who, what)."""
    out = [(t, "app", what) for t, c, what in run.app.events if c == order]
    for i, relay in enumerate(run.relays):
        out += [(t, f"relay{i}", what) for t, row, what in relay.events if row == order]
    out += [(t, "consumer", what) for t, mid, what in run.consumer.events
            if (mid[0] if isinstance(mid, tuple) else mid) == order]
    return sorted(out, key=lambda e: e[0])


# --- many schedules ---------------------------------------------------------------------------------
@dataclass
class Census:
    """How ``design`` fared over ``runs`` schedules: runs with at least one lost, unexpected
    (invented) or duplicated write, runs taking every write exactly once, runs with extra copies
    published, runs whose first copies of a key left out of commit order, runs whose effects of a
    key were applied out of commit order; and the totals of writes of each kind."""
    design: str
    runs: int = 0
    lost: int = 0
    unexpected: int = 0
    duplicated: int = 0
    exactly_once: int = 0
    with_extra_copies: int = 0
    out_of_order: int = 0
    applied_out_of_order: int = 0
    lost_writes: int = 0
    unexpected_writes: int = 0
    duplicated_writes: int = 0
    copies: int = 0

    def share(self, what: str) -> float:
        """Share of the runs counted in ``what`` (a count field, e.g. "lost")."""
        validate.choice("what", what, ("lost", "unexpected", "duplicated", "exactly_once", "with_extra_copies",
                                      "out_of_order", "applied_out_of_order"))
        return getattr(self, what) / self.runs

    def __str__(self) -> str:
        return (f"{self.design}: {self.runs} schedules; runs with lost {self.lost}, invented {self.unexpected}, "
                f"duplicated {self.duplicated}; exactly once {self.exactly_once}; extra copies in "
                f"{self.with_extra_copies} ({self.copies} copies)")


#: How long a census runs each schedule: random schedules' faults end by ~7 s and the last message of
#: any of them is out by ~15 s (a relay crash costs a 10 s lease); a run that has not settled by then
#: (:func:`settled`) is run again for write_path's default 60 s.
CENSUS_UNTIL = 30.0


def settled(run: WriteRun) -> bool:
    """Whether a run ended quiet: every order attempted, no message waiting at the broker, no outbox
    row left unsent (the checker's verdict needs a drained run)."""
    unsent = run.app.db.rows("outbox", where=lambda r: r["status"] == "new")
    return len(run.app.attempted) == len(run.app.commands) and run.queue.waiting == 0 and not unsent


def census(design: str, schedules, **options) -> Census:
    """Run ``design`` under every schedule of ``schedules`` (``options`` go to write_path; ``until``
    defaults to CENSUS_UNTIL, with a rerun at 60 s for a run that has not settled) and count."""
    design = validate.choice("design", design, DESIGNS)
    if isinstance(schedules, Schedule) or not hasattr(schedules, "__iter__"):
        raise validate.WrongType(f"schedules must be a list of Schedule s (draw_schedules(n, seed=...)), "
                                 f"got {validate.show(schedules)}")
    out = Census(design)
    short = "until" not in options
    for schedule in schedules:
        run = write_path(design, _schedule(schedule), **({"until": CENSUS_UNTIL} if short else {}), **options)
        if short and not settled(run):
            run = write_path(design, schedule, **options)
        check = run.check
        out.runs += 1
        out.lost += bool(check.lost)
        out.unexpected += bool(check.unexpected)
        out.duplicated += bool(check.duplicated)
        out.exactly_once += check.exactly_once
        out.lost_writes += len(check.lost)
        out.unexpected_writes += len(check.unexpected)
        out.duplicated_writes += len(check.duplicated)
        extra = extra_copies(run)
        out.copies += extra
        out.with_extra_copies += extra > 0
        out.out_of_order += not in_commit_order(run)
        out.applied_out_of_order += not effects_in_order(run)
    if not out.runs:
        raise ValueError("schedules must hold at least one Schedule, got none")
    return out


def census_table(censuses: dict) -> Table:
    """A row per census (``{label: Census}``): runs with an order lost, invented, shipped twice, taken
    exactly once, with extra copies published (and how many). ``data`` is the dict itself."""
    if not isinstance(censuses, dict) or not all(isinstance(c, Census) for c in censuses.values()):
        raise validate.WrongType(f"censuses must be a dict of label -> Census, got {validate.show(censuses)}")
    rows = [[label, c.runs, c.lost, c.unexpected, c.duplicated, c.exactly_once, f"{c.with_extra_copies} ({c.copies})"]
            for label, c in censuses.items()]
    return Table(["design, faults", "schedules", "runs with an order lost", "invented", "shipped twice",
                  "exactly once", "extra copies: runs (copies)"], rows, censuses)


def copies_table(*, seed: int, relays=(1, 2, 3), leases=(10.0, 0.001)) -> Table:
    """Fault-free outbox runs with 1, 2, 3 relays and each lease: copies published beyond one per row.
    A lease shorter than the relay's work on a batch is no claim at all. ``data`` maps (relays, lease)
    to (extra copies, publishes)."""
    rows, data = [], {}
    for n in relays:
        n = validate.integer("relays", n, low=1, high=10)
        row = [n]
        for lease in leases:
            run = write_path(OUTBOX, Schedule(relays=((),) * n), seed=seed,
                             relay_options={"lease": validate.positive("lease", lease)})
            data[(n, lease)] = (extra_copies(run), sum(r.published for r in run.relays))
            row.append(f"{data[(n, lease)][0]} extra copies of {run.check.committed} orders")
        rows.append(row)
    return Table(["relays"] + [f"lease {lease:g} s" for lease in leases], rows, data)


# --- crashes aimed at work ----------------------------------------------------------------------------
_BASELINES: dict = {}


def _baseline(design: str) -> WriteRun:
    """The fault-free run of ``design`` (cached: the app's timeline does not depend on the relays)."""
    if design not in _BASELINES:
        _BASELINES[design] = write_path(design, until=COMMANDS * EVERY + 2.0)
    return _BASELINES[design]


def mid_write_crashes(design: str, crashes: int, *, seed: int) -> tuple:
    """Times for ``crashes`` app crashes, each at a random moment *while the app writes an order*
    (between the order's start and its acknowledgement), for ``design``. The orders hit and the
    moments within their writes come from ``seed`` alone, so every design gets the same ones, and
    asking for one crash more keeps the others.

    The app writes its orders one after another and restarts ``restart_after`` seconds after a crash
    with the next order, so the fault-free run's timeline, shifted after each crash, says when each
    order is written."""
    design = validate.choice("design", design, DESIGNS)
    crashes = validate.integer("crashes", crashes, low=0, high=COMMANDS)
    rng = random.Random(validate.integer("seed", seed, low=0))
    draws = [(order, rng.random()) for order in rng.sample(range(COMMANDS), COMMANDS)]
    hit, within = zip(*sorted(draws[:crashes])) if crashes else ((), ())    # one more crash adds one more
    base = _baseline(design)
    starts = {c: t for t, c, what in base.app.events if what == "started"}
    ends = {c: t for t, c, what in base.app.events if what == "acknowledged"}
    restart = base.app.process.restart_after
    times, shift = [], 0.0
    for order, u in zip(hit, within):
        start = starts[order] + shift
        at = start + u * (ends[order] - starts[order])
        times.append(at)
        if order + 1 < COMMANDS:
            shift = at + restart - starts[order + 1]
    return tuple(times)


@dataclass(frozen=True)
class Batch:
    """Rows one relay claimed at once, from the claim to its last event before the next claim."""
    relay: int
    start: float
    end: float
    rows: tuple
    published: tuple     # (time, row) of the batch's publishes


def relay_batches(run: WriteRun) -> list:
    """Every relay's batches, sorted by start."""
    out = []
    for i, relay in enumerate(run.relays):
        current = None
        for t, row, what in relay.events:
            if what == "claimed" and (current is None or current["last"] != "claimed" or t != current["start"]):
                if current is not None:
                    out.append(current)
                current = {"relay": i, "start": t, "end": t, "rows": [], "published": [], "last": what}
            if current is None:
                continue
            if what == "claimed":
                current["rows"].append(row)
            elif what == "published":
                current["published"].append((t, row))
            current["end"], current["last"] = t, what
        if current is not None:
            out.append(current)
    return sorted((Batch(b["relay"], b["start"], b["end"], tuple(b["rows"]), tuple(b["published"])) for b in out),
                  key=lambda b: (b.start, b.relay))


def between_publish_and_mark(batch: Batch, nth: int = 0) -> float:
    """A moment after the batch's ``nth`` publish and before that row's mark commits (the mark's
    commit point comes a database latency after the publish's reply): a crash there leaves a row
    published but unmarked."""
    if not isinstance(batch, Batch):
        raise validate.WrongType(f"batch must be a Batch (from relay_batches(run)), got {validate.show(batch)}")
    nth = validate.index("nth", nth, len(batch.published))
    return batch.published[nth][0] + 0.0005


def aimed_relay_run(relay_crashes: int, *, seed: int, app_crashes=(), relays: int = 1, start: float = 0.5,
                    horizon: float | None = None, **options):
    """An outbox run whose relays crash ``relay_crashes`` times, each at a random moment (from
    ``seed``) of the first batch that starts after ``start`` s (for the first crash) or after the
    previous crash's restart; the app crashes at ``app_crashes``. One run per crash finds the next
    batch (the timeline changes after each crash); with ``horizon``, those runs stop ``horizon`` s
    after the moment they search from (the last run goes on to ``until``). ``options`` go to
    write_path. Returns (schedule, run)."""
    relay_crashes = validate.integer("relay_crashes", relay_crashes, low=0, high=50)
    relays = validate.integer("relays", relays, low=1, high=10)
    rng = random.Random(validate.integer("seed", seed, low=0))
    after = validate.non_negative("start", start)
    if horizon is not None:
        horizon = validate.positive("horizon", horizon)
    crashes = [[] for _ in range(relays)]
    schedule = Schedule(app=tuple(app_crashes), relays=tuple(crashes))
    for i in range(relay_crashes + 1):
        last = i == relay_crashes
        until = options.get("until", 60.0)
        run = write_path(OUTBOX, schedule, **{**options, "until": until if last or horizon is None
                                                      else min(until, after + horizon)})
        if last:
            break
        batch = next((b for b in relay_batches(run) if b.start >= after), None)
        if batch is None:                        # nothing left to crash in: the rest of the crashes never come
            run = write_path(OUTBOX, schedule, **options)
            break
        at = batch.start + rng.random() * (batch.end - batch.start)
        crashes[batch.relay].append(at)
        after = at + run.relays[batch.relay].process.restart_after
        schedule = Schedule(app=tuple(app_crashes), relays=tuple(map(tuple, crashes)))
    return schedule, run


# --- relay lag ---------------------------------------------------------------------------------------
#: Orders of the lag runs (spread over many poll intervals, so commits fall at every phase of the poll).
LAG_COMMANDS = 200


def lag_run(poll_interval: float, *, seed: int, commands: int = LAG_COMMANDS, relays: int = 1,
            schedule: Schedule = Schedule(), **relay_options) -> WriteRun:
    """An outbox run of ``commands`` orders with ``relays`` relays (or as many as ``schedule`` crashes)
    polling every ``poll_interval`` s."""
    poll_interval = validate.positive("poll_interval", poll_interval)
    commands = validate.integer("commands", commands, low=1, high=100_000)
    relays = validate.integer("relays", relays, low=1, high=10)
    schedule = _schedule(schedule)
    if len(schedule.relays) < relays:
        schedule = schedule_of(faults(schedule), relays=relays)
    lease = relay_options.get("lease", 10.0)
    until = commands * EVERY + poll_interval + 2 * validate.positive("lease", lease) + 5.0
    return write_path(OUTBOX, schedule, commands=commands, seed=seed, until=until,
                      relay_options={"poll_interval": poll_interval, **relay_options})


def lag_table(poll_intervals=(0.25, 0.5, 1.0, 2.0, 4.0), *, seed: int) -> Table:
    """Relay lag (commit to first publish) against the poll interval, no faults. ``data`` maps each
    interval to a dict: mean, p50, p99, max, and work (the mean seconds from a row's claim to its
    publish: the relay's own work)."""
    rows, data = [], {}
    for p in poll_intervals:
        run = lag_run(p, seed=seed)
        lags = relay_lags(run)
        claimed = {}
        for relay in run.relays:
            for t, row, what in relay.events:
                if what == "claimed":
                    claimed.setdefault(row, t)
        first = first_publishes(run)
        work = float(np.mean([first[r] - claimed[r] for r in first]))
        p50, p99 = np.percentile(lags, [50, 99])
        data[p] = {"mean": float(lags.mean()), "p50": float(p50), "p99": float(p99), "max": float(lags.max()),
                   "work": work}
        rows.append([f"{p:g} s", f"{lags.mean():.3f} s", f"{p / 2 + work:.3f} s", f"{p50:.3f} s", f"{p99:.3f} s",
                     f"{lags.max():.3f} s"])
    return Table(["poll interval", "mean lag", "poll/2 + work", "p50", "p99", "max"], rows, data)


@dataclass
class RelayCrash:
    """An outbox run in which relay0 crashed between publishing row ``row`` and marking it sent, in a
    batch claimed at ``batch.start``; ``taken_over``: when a relay next claimed the batch's rows."""
    schedule: Schedule
    run: WriteRun = field(repr=False)
    batch: Batch
    crash: float
    row: int
    lease: float

    @property
    def taken_over(self) -> float:
        again = [t for relay in self.run.relays for t, row, what in relay.events
                 if what == "claimed" and row == self.row and t > self.crash]
        return min(again) if again else math.nan

    @property
    def lags(self) -> np.ndarray:
        return relay_lags(self.run)


def relay_crash_run(*, seed: int, lease: float = 10.0, relays: int = 2, at: float = 1.0, nth: int = 1) -> RelayCrash:
    """relay0 crashes just after the ``nth`` publish (0 = first) of its first batch of 3 rows or more
    that starts after ``at`` s, before that row is marked sent; the same moment for every lease (the
    lease changes nothing before a crash). Polls every second; ``relays`` relays."""
    relays = validate.integer("relays", relays, low=1, high=10)
    lease = validate.positive("lease", lease)
    base = lag_run(1.0, seed=seed, commands=COMMANDS, relays=relays)
    batch = next((b for b in relay_batches(base) if b.start >= at and len(b.rows) >= 3 and b.relay == 0), None)
    if batch is None:
        raise ValueError(f"at must leave relay0 a batch of 3 rows or more after it, got {at!r}")
    crash = between_publish_and_mark(batch, nth)
    schedule = Schedule(relays=tuple((crash,) if i == 0 else () for i in range(relays)))
    run = lag_run(1.0, seed=seed, commands=COMMANDS, relays=relays, schedule=schedule, lease=lease)
    return RelayCrash(schedule, run, batch, crash, batch.published[nth][1], lease)


def lease_table(leases=(0.5, 1.0, 2.0, 5.0, 10.0, 20.0), *, seed: int, relays: int = 2, at: float = 1.0) -> Table:
    """Relay lag after one relay crash (:func:`relay_crash_run`) against the lease. ``data`` maps each
    lease to its :class:`RelayCrash`."""
    rows, data = [], {}
    for lease in leases:
        story = relay_crash_run(seed=seed, lease=lease, relays=relays, at=at)
        lags = story.lags
        data[lease] = story
        rows.append([f"{lease:g} s", f"{story.taken_over - story.batch.start:.2f} s", f"{lags.max():.2f} s",
                     f"{np.percentile(lags, 99):.2f} s", extra_copies(story.run),
                     "yes" if story.run.check.exactly_once else "NO"])
    return Table(["lease", "claim to takeover", "max lag", "p99 lag", "extra copies", "exactly once"], rows, data)


# --- pictures ---------------------------------------------------------------------------------------
#: Marker and colour of each event, per kind of process; None: not drawn (too dense to help).
APP_STYLE = {"started": ("|", "0.45"), "acknowledged": ("o", "tab:green"), "failed": ("x", "tab:red")}
RELAY_STYLE = {"claimed": ("4", "0.2"), "published": ("^", "tab:blue"), "publish failed": ("x", "tab:red"),
               "marked sent": ("s", "tab:green")}
CONSUMER_STYLE = {"received": ("+", "0.45"), "applied": ("o", "tab:green"),
                  "duplicate skipped": ("D", "tab:orange"), "acked": None, "ack refused": ("x", "tab:red")}
CRASH_COLOR, OUTAGE_COLOR = "tab:red", "tab:purple"


def _ids(mid):
    return mid[0] if isinstance(mid, tuple) else mid     # a "fresh" message id is (row, attempt)


def draw_timeline(ax, run: WriteRun, schedule: Schedule = None, *, window=None, mark=(), notes=(), bands=(),
                  legend: bool = True):
    """The app's, each relay's and the consumer's events as rows of markers (first row on top), crashes
    as a red X and the time the process was down shaded on its row, outages of the schedule shaded
    across; the events of the orders in ``mark`` drawn large, the first labelled. ``notes``: (time, row
    number, text) written on the picture; ``bands``: (start, end, row number, label) drawn as a hatched
    bar on that row (a lease, say). ``window``: (t0, t1) seconds."""
    rows = [("app", run.app.events, APP_STYLE, run.app.process)]
    rows += [(f"relay{i}", r.events, RELAY_STYLE, r.process) for i, r in enumerate(run.relays)]
    rows += [("shipping (consumer)", run.consumer.events, CONSUMER_STYLE, run.consumer.process)]
    mark = set(mark)
    last = max(t for _, events, _, _ in rows for t, _, _ in events[-1:])
    t0, t1 = window if window is not None else (0.0, last + 0.2)
    seen = set()
    for y, (name, events, style, process) in enumerate(rows):
        for what, look in style.items():
            if look is None:
                continue
            marker, color = look
            pts = [(t, _ids(i)) for t, i, w in events if w == what and t0 <= t <= t1]
            if not pts:
                continue
            label = what if what not in seen else None
            seen.add(what)
            ax.scatter([t for t, _ in pts], [y] * len(pts), marker=marker, color=color, s=28, lw=1.2,
                       label=label, zorder=3)
            big = [(t, i) for t, i in pts if i in mark]
            if big:
                ax.scatter([t for t, _ in big], [y] * len(big), marker=marker, color=color, s=140, lw=2,
                           edgecolors="k" if marker not in "|x4+" else None, zorder=4)
        for at in process.crash_times:
            if t0 - process.restart_after <= at <= t1:
                ax.broken_barh([(at, process.restart_after)], (y - 0.3, 0.6), color=CRASH_COLOR, alpha=0.15)
                ax.scatter([at], [y], marker="X", color=CRASH_COLOR, s=160, zorder=5,
                           label="crash (down while shaded)" if "crash" not in seen else None)
                seen.add("crash")
    for start, end, y, label in bands:
        ax.broken_barh([(start, end - start)], (y - 0.22, 0.44), facecolor="none", edgecolor="0.3", hatch="///",
                       lw=0.8, label=label)
    if schedule is not None:
        for part, name in OUTAGES.items():
            for start, end in getattr(_schedule(schedule), part):
                ax.axvspan(start, end, color=OUTAGE_COLOR, alpha=0.12, lw=0,
                           label=f"{name} down" if name not in seen else None)
                seen.add(name)
    for order in sorted(mark):
        first = [t for t, c, w in run.app.events if c == order and t0 <= t <= t1][:1]
        if first:
            ax.annotate(f"order {order}", (first[0], 0), xytext=(0, 12), textcoords="offset points",
                        ha="center", fontsize=8)
    for t, y, text in notes:
        ax.annotate(text, (t, y), xytext=(0, -16), textcoords="offset points", ha="center", fontsize=8,
                    color="k")
    ax.set_yticks(range(len(rows)), [name for name, *_ in rows])
    ax.set_ylim(len(rows) - 0.4, -0.7)
    ax.set_xlim(t0, t1)
    ax.set_xlabel("time (s)")
    if legend:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return ax


def draw_lags(ax, table: Table) -> None:
    """Mean, p50 and p99 lag against the poll interval (from :func:`lag_table`), with poll/2 dotted."""
    ps = sorted(table.data)
    ax.plot(ps, ps, color="0.6", lw=0.8, label="poll interval", zorder=1)
    ax.plot(ps, [p / 2 for p in ps], "k:", label="poll interval / 2", zorder=1)
    for what, style, face in (("p99", "v-", None), ("p50", "s-", None), ("mean", "o--", "none")):
        ax.plot(ps, [table.data[p][what] for p in ps], style, mfc=face, ms=7 if face else 5, label=what, zorder=3)
    ax.set_xlabel("poll interval (s)")
    ax.set_ylabel("lag from commit to publish (s)")
    ax.legend(fontsize=8)


# --- the dashboard ------------------------------------------------------------------------------------
#: The dashboard's seed and its largest crash count.
DASH_SEED, DASH_CRASHES_MAX = 13, 4
#: The relays' lease (their default) and the dashboard's relays.
LEASE, DASH_RELAYS = 10.0, 2


def dash_until(crashes: int, poll_interval: float, lease: float = LEASE) -> float:
    """How long a dashboard run lasts: the orders (~3 s) and the consumer's drain, a restart per app
    crash, and per relay crash a restart and a lease (its rows wait for it), plus two polls."""
    return 8.0 + crashes * (lease + 2.0 + poll_interval) + 2 * poll_interval


#: The dual writes' runs (which do not depend on the relays) and the outbox's, kept by their settings.
_DASH_DUAL, _DASH_OUTBOX = RunMemo(keep=48), RunMemo(keep=48)


@dataclass
class WritesRuns:
    """The dashboard's runs at one setting: each dual write and the outbox under the same aimed crashes."""
    crashes: int
    poll_interval: float
    relays: int
    lease: float
    dual: dict
    outbox: WriteRun
    schedule: Schedule


def writes_runs(crashes: int, poll_interval: float, relays: int = DASH_RELAYS, *, lease: float = LEASE,
                seed: int = DASH_SEED) -> WritesRuns:
    """``crashes`` app crashes mid-write (:func:`mid_write_crashes`) for each design, and for the outbox
    as many relay crashes mid-batch (:func:`aimed_relay_run`); ``relays`` relays polling every
    ``poll_interval`` s with a ``lease`` s lease. Runs are cached by their parameters."""
    crashes = validate.integer("crashes", crashes, low=0, high=DASH_CRASHES_MAX)
    poll_interval = validate.positive("poll_interval", poll_interval)
    relays = validate.integer("relays", relays, low=1, high=10)
    lease = validate.number("lease", lease, low=0.1, high=60.0)

    def dual():
        return {d: write_path(d, Schedule(app=mid_write_crashes(d, crashes, seed=seed)), seed=seed,
                              until=8.0 + 2 * crashes) for d in DUAL}

    def outbox():
        return aimed_relay_run(crashes, seed=seed, app_crashes=mid_write_crashes(OUTBOX, crashes, seed=seed),
                               relays=relays, until=dash_until(crashes, poll_interval, lease),
                               horizon=lease + 2 * poll_interval + 2.0,
                               relay_options={"poll_interval": poll_interval, "lease": lease})

    runs = _DASH_DUAL.get((crashes, seed), dual)
    schedule, run = _DASH_OUTBOX.get((crashes, float(poll_interval), relays, float(lease), seed), outbox)
    return WritesRuns(crashes, poll_interval, relays, lease, runs, run, schedule)


def _dash_compute(crashes, poll_interval, lease, *, panel: str):
    return panel, writes_runs(int(crashes), poll_interval, lease=lease)


#: Text is most of a redraw's cost: few ticks, short labels, small type and no legend (the title and
#: the line above the picture say what the bars are).
_DASH_FONT = 8
_BARS = ("lost", "invented", "shipped\ntwice")
_DUAL_COLORS = ("tab:red", "tab:orange")
_OUTBOX_COLORS = ("tab:red", "tab:orange", "tab:purple", "tab:blue")


def _counts(run: WriteRun) -> list:
    c = run.check
    return [len(c.lost), len(c.unexpected), len(c.duplicated)]


def _dash_draw(ax, result) -> None:
    panel, runs = result
    if panel == "lag":
        lags = np.sort(relay_lags(runs.outbox))
        share = 100 * np.arange(1, len(lags) + 1) / len(lags)
        right = max(2 * runs.poll_interval, lags[-1] * 1.05)
        ax.step(np.r_[0.0, lags, right], np.r_[0.0, share, 100.0], where="post", color="tab:blue", lw=2)
        ax.axvline(runs.poll_interval, color="k", ls=":", lw=1.2)
        ax.text(runs.poll_interval, 4, " poll", fontsize=_DASH_FONT)
        if runs.crashes:
            ax.axvline(runs.lease, color="0.5", ls="--", lw=1.0)
            ax.text(runs.lease, 50, " lease", fontsize=_DASH_FONT)
        ax.set_xlim(0, right)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_ylim(-3, 105)
        ax.set_yticks([0, 50, 100])
        ax.set_xlabel("t: seconds from commit to publish", fontsize=_DASH_FONT)
        ax.set_ylabel("orders published (%)", fontsize=_DASH_FONT)
    else:
        top = max(4, *(max(_counts(r)) for r in runs.dual.values()), *_counts(runs.outbox), extra_copies(runs.outbox))
        if panel == "dual":
            x = np.arange(len(_BARS))
            for j, run in enumerate(runs.dual.values()):
                ax.bar(x + (j - 0.5) * 0.4, _counts(run), 0.4, color=_DUAL_COLORS[j])
            ax.set_xticks(x, _BARS)
        else:
            ax.bar(np.arange(4), _counts(runs.outbox) + [extra_copies(runs.outbox)], 0.6, color=_OUTBOX_COLORS)
            ax.set_xticks(np.arange(4), list(_BARS) + ["extra\ncopies"])
        ax.set_ylim(0, top * 1.15)
        ax.set_ylabel("orders", fontsize=_DASH_FONT)
        ax.yaxis.set_major_locator(MaxNLocator(3, integer=True))
    ax.tick_params(labelsize=_DASH_FONT)


def _dash_summary(result) -> str:
    panel, runs = result
    if panel == "dual":
        return ", ".join(f"{d.split(',')[0]} first: {len(r.check.lost)} lost, {len(r.check.unexpected)} invented"
                         for d, r in runs.dual.items())
    if panel == "outbox":
        c = runs.outbox.check
        return (f"{len(c.lost)} lost, {len(c.unexpected)} invented, {extra_copies(runs.outbox)} extra copies, "
                f"{len(c.duplicated)} shipped twice")
    lags = relay_lags(runs.outbox)
    p50, p99 = np.percentile(lags, [50, 99])
    return f"lag p50 {p50:.2f} s, p99 {p99:.1f} s, max {lags.max():.1f} s"


@dashboard("13_outbox/writes")
def writes_dashboard() -> Dashboard:
    """Crashes, poll interval and lease; lost / invented / duplicated orders of the dual writes and of
    the outbox, and the outbox's relay lag."""
    return Dashboard(
        _dash_compute, _dash_draw,
        [Slider("crashes", "crashes (app and relays)", "each", 0, DASH_CRASHES_MAX, 2, integer=True),
         Slider("poll_interval", "relay poll interval", "s", 0.1, 5.0, 1.0, step=0.1),
         Slider("lease", "relay lease", "s", 1.0, 20.0, LEASE, step=1.0)],
        variants={"without: dual write": {"panel": "dual"}, "with: outbox": {"panel": "outbox"},
                  "outbox: relay lag": {"panel": "lag"}},
        summary=_dash_summary, figsize=(11.0, 3.2), dpi=72, sharey=False,
        title=f"{COMMANDS} orders, {DASH_RELAYS} relays; each app crash strikes while an order is written, each relay crash while a "
              "relay publishes a batch. Left: commit, then publish (red) and publish, then commit (orange); "
              "middle: the outbox; orders lost, invented (shipped, never committed), shipped twice, and extra "
              "copies the idempotent consumer removed. Right: the share of orders published within t of their "
              "commit; dotted: the poll interval; dashed: the lease (a crashed relay's rows wait for it)")


__all__ = ["DUAL", "OUTBOX", "COMMANDS", "EVERY", "KEYS", "SPAN", "KINDS", "Fault", "random_schedule",
           "draw_schedules", "faults", "schedule_of", "fails", "reaim", "shrink", "Counterexample",
           "find_counterexample", "commit_times", "first_publishes", "relay_lags", "extra_copies", "first_copies",
           "in_commit_order", "effects", "effects_in_order", "events_of", "Census", "settled", "census",
           "census_table", "copies_table", "mid_write_crashes", "Batch", "relay_batches", "between_publish_and_mark",
           "aimed_relay_run", "lag_run", "lag_table", "RelayCrash", "relay_crash_run", "lease_table", "draw_timeline",
           "draw_lags", "WritesRuns", "writes_runs", "dash_until", "writes_dashboard"]
