"""16 Sagas: an order across inventory, payment and shipping, with no distributed transaction.

The shop takes an order in three steps done by three participants, each with its own database:
**inventory** reserves one item (compensatable: the reservation can be released), **payment** charges
``AMOUNT`` euros (the pivot: once charged, the order goes ahead) and **shipping** books one parcel
(retriable: retried until it succeeds). That is Richardson's order: compensatable, pivot, retriable.

* :func:`naive_run`: the three calls in a row, no saga: a failure in the middle leaves stock reserved
  for no order, or a customer charged with no parcel booked.
* :func:`shop_run`: the same shop as a saga (:class:`~resilience_sim.policies.Saga` driven by an
  :class:`~resilience_sim.sim.saga.Orchestrator` that persists its state after every step), under
  outages, error bursts, orchestrator crashes and, optionally, a **supervisor** (a
  :class:`~resilience_sim.policies.ThresholdRule` over step failures) that refuses new orders while
  errors are too frequent. :class:`ShopRun` reads the spans of every step and undo (a
  :class:`Traced` participant records them), the orders' statuses and the participants' totals.
* :func:`story_run`: section 2's six orders through a decline, an inventory outage and a payment
  outage; :func:`applied_then_failed`: a step that applied but looks failed (a crash before the save).
* :func:`crash_after`, :func:`targeted_crashes`: the time just after a step of a saga committed, before
  the orchestrator persisted it (the crash that makes a re-run step, and an idempotent participant,
  matter); ``shop_run(idempotent=False)`` makes payment a :class:`Forgetful` participant that charges again.
* :func:`burst_pair`: the shop through a burst of payment errors without and with the supervisor;
  :func:`burst_table` and :func:`recovery` read what it cost and how the shop reopened.
* :func:`random_schedule`, :func:`check_schedule`, :func:`search`, :func:`shrink`: many seeded random
  fault schedules, the invariants (every order ends CONFIRMED or CANCELLED; money and stock
  conserved), and a small random search with a greedy shrink that finds counterexamples for broken
  orchestrator designs (:class:`GiveUpSaga` stops retrying a failing compensation;
  :class:`NoUndoOfFailedStep` does not undo the step that failed). No hypothesis: plain seeded draws.

Times are simulated seconds; money in euros.
"""
from __future__ import annotations

import random
from collections import Counter, namedtuple
from dataclasses import dataclass, field, replace

import numpy as np

from ..core import validate
from ..metrics import Results
from ..policies import Exponential as ExponentialBackoff
from ..policies import ThresholdRule
from ..policies.saga import COMPENSATE, COMPENSATED, END, RUN, Saga, SagaStep
from ..sim.database import Database
from ..sim.faults import ErrorBurst, Outage
from ..sim.saga import ORDERS, SAGAS, Orchestrator, Participant
from ..sim.service import Request, ServiceError
from ..sim.world import World
from ..views import plots
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import Table

#: The participants, in the saga's order, and what one order costs each: 1 item, AMOUNT euros, 1 parcel.
STEPS = ("inventory", "payment", "shipping")
AMOUNT = 10.0
PER_ORDER = {"inventory": 1.0, "payment": AMOUNT, "shipping": 1.0}
UNITS = {"inventory": "items reserved", "payment": "euros charged", "shipping": "parcels booked"}
#: Each participant's call takes 20 ms; the orders database's commits 2 ms, answered 0.5 ms later.
CALL = 0.020
ORDERS_REPLY = 0.0005
#: Tries of the payment step (the first and 3 retries) before a refusal ("error") cancels the order.
PAYMENT_RETRIES = 3
#: The orchestrator's wait before retrying a failed step: 0.1, 0.2, 0.4, 0.8 s, then 1 s.
BACKOFF_BASE, BACKOFF_CAP = 0.05, 1.0
#: Seconds the orchestrator waits before looking again for sagas to drive, when it has none.
POLL = 1.0
#: Where a span of a participant's call ends: the step applied, was already applied (an idempotent
#: replay), or failed with a reason; the same for an undo.
OK, REPLAY = "ok", "already applied"
Span = namedtuple("Span", "saga step action start end outcome")
#: Order statuses: PENDING (the semantic lock) until the saga ends CONFIRMED or CANCELLED.
PENDING, CONFIRMED, CANCELLED = "PENDING", "CONFIRMED", "CANCELLED"
#: How a customer's attempt to order ended at the door: started, refused by the supervisor
#: ("rejected"), or failed (the orders database was down).
STARTED, REFUSED = "started", "rejected"
#: The largest shop a run takes (orders) and the longest run (seconds).
MAX_ORDERS, MAX_UNTIL = 5_000, 100_000.0
COLORS = {"do": "tab:green", "failed": "tab:red", "undo": "tab:purple", "undo failed": "tab:pink", REPLAY: "tab:olive"}
OUTCOME_COLORS = {CONFIRMED: "tab:green", CANCELLED: "tab:red", REFUSED: "tab:gray"}


def order_saga(payment_retries: int = PAYMENT_RETRIES) -> Saga:
    """The shop's saga: reserve stock (compensatable), charge the card (the pivot), book the parcel
    (retriable)."""
    payment_retries = validate.integer("payment_retries", payment_retries, low=0, high=1000)
    return Saga([SagaStep("inventory", "compensatable"), SagaStep("payment", "pivot", retries=payment_retries),
                 SagaStep("shipping", "retriable")])


def story_backoff() -> ExponentialBackoff:
    """The orchestrator's backoff between tries of a step (a fresh one: a policy belongs to one run)."""
    return ExponentialBackoff(BACKOFF_BASE, cap=BACKOFF_CAP)


# --- participants that record what they did ---------------------------------------------------------
class Traced(Participant):
    """A :class:`~resilience_sim.sim.saga.Participant` that records a :class:`Span` for every call
    (in ``log``), and applies ``per_order`` (an item, a parcel) whatever the saga's amount."""

    def __init__(self, world, name: str, log: list, *, per_order: float | None = None, **kwargs):
        super().__init__(world, name, **kwargs)
        self.log, self.per_order = log, per_order

    def do(self, req, saga_id, amount: float = 1.0):
        start, replay = self.env.now, self.db.get("effects", saga_id) is not None
        amount = amount if self.per_order is None else self.per_order
        try:
            yield from super().do(req, saga_id, amount)
        except ServiceError as err:
            self.log.append(Span(saga_id, self.name, "do", start, self.env.now, err.reason))
            raise
        self.log.append(Span(saga_id, self.name, "do", start, self.env.now, REPLAY if replay else OK))

    def undo(self, req, saga_id):
        start = self.env.now
        try:
            yield from super().undo(req, saga_id)
        except ServiceError as err:
            self.log.append(Span(saga_id, self.name, "undo", start, self.env.now, err.reason))
            raise
        self.log.append(Span(saga_id, self.name, "undo", start, self.env.now, OK))


class Forgetful(Traced):
    """A participant that is **not** idempotent: every call that gets through applies again (a new
    effect row each time), as a payment API without idempotency keys would charge again."""

    def do(self, req, saga_id, amount: float = 1.0):
        start, env = self.env.now, self.env
        amount = amount if self.per_order is None else self.per_order
        if self.error_rate and self._rng.random() < self.error_rate:     # a refusal, as Participant's
            yield from self.service.call(req)
            self.log.append(Span(saga_id, self.name, "do", start, env.now, "error"))
            raise ServiceError(self.name, "error")
        tx = self.db.transaction()
        tx.insert("effects", (saga_id, start), {"amount": amount})
        try:
            yield from tx.commit(req)
        except ServiceError as err:
            self.log.append(Span(saga_id, self.name, "do", start, env.now, err.reason))
            raise
        self.applied += 1
        self.log.append(Span(saga_id, self.name, "do", start, env.now, OK))


# --- section 1: no saga ---------------------------------------------------------------------------------
#: The naive shop's story: an order every 0.5 s for 20 s; payment down from 3 to 6 s, shipping from 12 to 15 s.
NAIVE_ORDERS, NAIVE_EVERY = 40, 0.5
NAIVE_OUTAGES = {"payment": [(3.0, 6.0)], "shipping": [(12.0, 15.0)]}


@dataclass
class NaiveRun:
    """The three calls in a row, each order's outcome (``placed``: the customer was told "ordered")."""
    results: Results = field(repr=False)
    parts: dict = field(repr=False)
    outcomes: dict          # order id -> "ordered" or "failed at <step>"

    def holders(self, step: str) -> set:
        """Orders for which ``step``'s participant holds an effect (an item, a charge, a parcel)."""
        return {key for key, _ in self.parts[validate.choice("step", step, STEPS)].db.rows("effects")}

    @property
    def placed(self) -> set:
        return {i for i, o in self.outcomes.items() if o == "ordered"}

    def leaks(self) -> dict:
        """What the failures left behind: items reserved for orders the customer was told failed, and
        customers charged with no parcel booked."""
        failed = set(self.outcomes) - self.placed
        return {"stock reserved, no order": len(self.holders("inventory") & failed),
                "charged, nothing shipped": len(self.holders("payment") - self.holders("shipping"))}


def naive_run(seed: int, *, orders: int = NAIVE_ORDERS, every: float = NAIVE_EVERY, outages=None) -> NaiveRun:
    """``orders`` customers, one every ``every`` s, each calling inventory, payment, shipping in a row;
    a failure stops the order there (the customer sees an error) and nothing is undone. ``outages``:
    {participant: [(start, end)...]} (default :data:`NAIVE_OUTAGES`)."""
    orders = validate.integer("orders", orders, low=1, high=MAX_ORDERS)
    every = validate.positive("every", every)
    outages = NAIVE_OUTAGES if outages is None else _outages(outages, names=STEPS)
    world, log = World(validate.integer("seed", seed, low=0)), []
    parts = {name: Traced(world, name, log, per_order=PER_ORDER[name], latency=CALL) for name in STEPS}
    for name, windows in outages.items():
        Outage(parts[name].service, windows)
    outcomes = {}

    def checkout(i):
        req = Request(world.now, "checkout", i)
        for name in STEPS:
            try:
                yield from parts[name].do(req, i, AMOUNT)
            except ServiceError:
                outcomes[i] = f"failed at {name}"
                return
        outcomes[i] = "ordered"

    def customers():
        for i in range(orders):
            world.env.process(checkout(i))
            yield world.env.timeout(every)

    world.env.process(customers())
    results = world.run(orders * every + 1.0)
    return NaiveRun(results, parts, outcomes)


# --- the saga shop ---------------------------------------------------------------------------------------
def _outages(outages, names) -> dict:
    if not isinstance(outages, dict):
        raise validate.WrongType(f"outages must be a dict {{participant: [(start, end), ...]}}, "
                                 f"got {validate.show(outages)}")
    return {validate.choice("outages key", name, names): validate.windows(f"outages[{name!r}]", windows)
            for name, windows in outages.items()}


def _bursts(bursts) -> dict:
    if not isinstance(bursts, dict):
        raise validate.WrongType(f"bursts must be a dict {{participant: ([(start, end), ...], error rate)}}, "
                                 f"got {validate.show(bursts)}")
    out = {}
    for name, spec in bursts.items():
        validate.choice("bursts key", name, STEPS)
        if not isinstance(spec, (tuple, list)) or len(spec) != 2:
            raise ValueError(f"bursts[{name!r}] must be ([(start, end), ...], error rate), got {spec!r}")
        out[name] = (validate.windows(f"bursts[{name!r}] windows", spec[0]),
                     validate.probability(f"bursts[{name!r}] error rate", spec[1]))
    return out


@dataclass
class ShopRun:
    """One run of the saga shop: what the customers got, every step's span, the orders' statuses."""
    results: Results = field(repr=False)
    db: Database = field(repr=False)
    parts: dict = field(repr=False)
    orch: Orchestrator = field(repr=False)
    spans: list = field(repr=False)
    customers: list = field(repr=False)       # (time, order id, "started" / "rejected" / failure reason)
    snapshots: dict = field(default_factory=dict, repr=False)   # time -> {order id: (status, holders)}
    until: float = 0.0

    # --- orders -------------------------------------------------------------------------------------
    def status(self, order) -> str | None:
        row = self.db.get(ORDERS, order)
        return None if row is None else row["status"]

    def statuses(self) -> Counter:
        """Orders by status (CONFIRMED, CANCELLED, PENDING)."""
        return Counter(row["status"] for _, row in self.db.rows(ORDERS))

    def ids(self, status: str) -> set:
        return {i for i, row in self.db.rows(ORDERS) if row["status"] == status}

    @property
    def started(self) -> dict:
        """Order id -> when the customer's order was accepted (the saga started)."""
        return {i: t for t, i, what in self.customers if what == STARTED}

    @property
    def refused(self) -> list:
        """Times at which the supervisor refused a new order."""
        return [t for t, _, what in self.customers if what == REFUSED]

    def unfinished(self) -> list:
        """Sagas whose persisted state has not ended (their order is still PENDING)."""
        saga = self.orch.saga
        return [i for i, row in self.db.rows(SAGAS) if saga.next_action(row["state"])[0] != END]

    def ended_at(self) -> dict:
        """Order id -> when its saga ended: the end of its last successful shipping call (CONFIRMED) or
        of its last successful undo (CANCELLED); the state is persisted a commit (2 ms) later."""
        ends = {}
        for s in self.spans:
            if s.outcome in (OK, REPLAY) and (s.action == "undo" or s.step == STEPS[-1]):
                ends[s.saga] = s.end
        return {i: t for i, t in ends.items() if self.status(i) in (CONFIRMED, CANCELLED)}

    def in_flight_at(self, t: float) -> set:
        """Orders started at or before ``t`` whose saga had not ended by ``t``."""
        ends = self.ended_at()
        return {i for i, s in self.started.items() if s <= t and ends.get(i, np.inf) > t}

    def pending_times(self) -> np.ndarray:
        """Seconds each ended order stayed PENDING (from its start to its saga's end)."""
        started, ends = self.started, self.ended_at()
        return np.array([ends[i] - started[i] for i in ends if i in started])

    # --- participants -------------------------------------------------------------------------------
    def totals(self) -> dict:
        """Each participant's effects still applied: items reserved, euros charged, parcels booked."""
        return {name: part.total() for name, part in self.parts.items()}

    def holders(self, step: str) -> set:
        """Orders for which ``step``'s participant holds an effect now."""
        rows = self.parts[validate.choice("step", step, STEPS)].db.rows("effects")
        return {key[0] if isinstance(key, tuple) else key for key, _ in rows}

    def violations(self) -> list:
        """What breaks the saga's promises in this run (empty when all hold): an order not ended, or
        a participant's effects not exactly those of the confirmed orders (money or stock not conserved)."""
        found = [f"order {i} still {self.status(i)}" for i in self.unfinished()]
        confirmed = self.ids(CONFIRMED)
        for name, part in self.parts.items():
            held, expected = self.holders(name), confirmed
            if held != expected:
                extra, missing = sorted(held - expected), sorted(expected - held)
                found.append(f"{name}: {UNITS[name]} for {len(extra)} orders not confirmed {extra[:5]}, "
                             f"missing for {len(missing)} confirmed ones {missing[:5]}")
            elif part.total() != PER_ORDER[name] * len(confirmed):
                found.append(f"{name}: {part.total():g} {UNITS[name]} for {len(confirmed)} confirmed orders "
                             f"(expected {PER_ORDER[name] * len(confirmed):g})")
        return found

    def calls(self, step: str, *, action: str = "do", failed: bool | None = None, window=None) -> int:
        """Calls to ``step``'s participant (``action`` "do" or "undo"; only ``failed`` ones if True,
        only successful ones if False; started inside ``window`` if given)."""
        validate.choice("step", step, STEPS)
        validate.choice("action", action, ("do", "undo"))
        lo, hi = (-np.inf, np.inf) if window is None else window
        return sum(1 for s in self.spans if s.step == step and s.action == action and lo <= s.start < hi
                   and (failed is None or (s.outcome not in (OK, REPLAY)) == failed))

    def released(self) -> int:
        """Orders whose item was reserved and then released by a compensation (work done and undone)."""
        reserved = {s.saga for s in self.spans if s.step == "inventory" and s.action == "do" and s.outcome == OK}
        undone = {s.saga for s in self.spans if s.step == "inventory" and s.action == "undo" and s.outcome == OK}
        return len(reserved & undone)

    def refunded(self) -> int:
        """Customers charged and then refunded (a payment undone): none while payment is the pivot."""
        return len({s.saga for s in self.spans if s.step == "payment" and s.action == "undo" and s.outcome == OK})

    def wasted_calls(self) -> int:
        """Participant calls spent on orders that ended CANCELLED (their steps, tries and undos)."""
        cancelled = self.ids(CANCELLED)
        return sum(1 for s in self.spans if s.saga in cancelled)

    def saga_spans(self, order) -> list:
        """The spans of one order's saga, in time order."""
        return [s for s in self.spans if s.saga == order]

    def story(self, order) -> str:
        """One saga's calls as a line: T for a step, C for a compensation, x for a failed call,
        (replay) for a step its participant had applied already (answered as the first time)."""
        names = {"inventory": "inv", "payment": "pay", "shipping": "ship"}
        out = []
        for s in self.saga_spans(order):
            mark = "(replay)" if s.outcome == REPLAY else "" if s.outcome == OK else "x"
            out.append(f"{'C' if s.action == 'undo' else 'T'}:{names[s.step]}{mark}")
        return " ".join(out)

    def outcome_times(self) -> dict:
        """Sorted times of each outcome: CONFIRMED and CANCELLED (when the saga ended), REFUSED (when
        the supervisor said no at the door)."""
        ends, out = self.ended_at(), {CONFIRMED: [], CANCELLED: [], REFUSED: self.refused}
        for i, t in ends.items():
            out[self.status(i)].append(t)
        return {k: np.sort(np.asarray(v, dtype=float)) for k, v in out.items()}

    @property
    def crash_times(self) -> tuple:
        return self.orch.process.crash_times


def shop_run(seed: int, *, orders: int = 10, every: float = 1.0, poisson: bool = False, until: float | None = None,
             crashes=(), outages=None, bursts=None, errors=None, supervisor=None, saga: Saga | None = None,
             idempotent: bool = True, watch=(), restart_after: float = 1.0,
             poll_interval: float = POLL) -> ShopRun:
    """The saga shop: ``orders`` customers, one every ``every`` s (exponential gaps of that mean if
    ``poisson``), each starting a saga of ``saga`` (default :func:`order_saga`) for AMOUNT euros.

    Faults: ``crashes`` (times the orchestrator crashes; it restarts ``restart_after`` s later),
    ``outages`` ({participant or "orders_db": [(start, end)...]}), ``bursts`` ({participant:
    ([(start, end)...], error rate)}: refusals, "error"), ``errors`` ({participant: error rate}: its
    own refusals all run long). ``poll_interval``: the orchestrator's wait when idle. ``supervisor``: a
    rule (say a ThresholdRule) that refuses new orders while it fires. ``idempotent=False`` makes
    payment a :class:`Forgetful` participant. ``watch``:
    times at which to record each order's status and who holds an effect for it
    (``run.snapshots``). The run lasts ``until`` s (default: the last order + 30 s)."""
    orders = validate.integer("orders", orders, low=1, high=MAX_ORDERS)
    every = validate.positive("every", every)
    validate.boolean("poisson", poisson)
    validate.boolean("idempotent", idempotent)
    until = orders * every + 30.0 if until is None else validate.number("until", until, low=0, high=MAX_UNTIL,
                                                                           low_open=True)
    outages = _outages(outages or {}, names=STEPS + ("orders_db",))
    bursts = _bursts(bursts or {})
    if not isinstance(errors or {}, dict):
        raise validate.WrongType(f"errors must be a dict {{participant: error rate}}, got {validate.show(errors)}")
    errors = {validate.choice("errors key", k, STEPS): validate.probability(f"errors[{k!r}]", v)
              for k, v in (errors or {}).items()}
    saga = order_saga() if saga is None else saga
    if not isinstance(saga, Saga):
        raise validate.WrongType(f"saga must be a Saga (say order_saga()), got {validate.show(saga)}")
    if isinstance(watch, (str, bytes)) or not hasattr(watch, "__iter__"):
        raise validate.WrongType(f"watch must be a list of times in seconds, got {validate.show(watch)}")
    watch = sorted(validate.number("watch", t, low=0, high=until) for t in watch)
    world, log = World(validate.integer("seed", seed, low=0)), []
    db = Database(world, "orders_db", reply_latency=ORDERS_REPLY)
    parts = {}
    for name in STEPS:
        kind = Forgetful if (name == "payment" and not idempotent) else Traced
        parts[name] = kind(world, name, log, per_order=PER_ORDER[name], latency=CALL,
                           error_rate=errors.get(name, 0.0))
    for name, windows in outages.items():
        Outage(db.service if name == "orders_db" else parts[name].service, windows)
    for name, (windows, rate) in bursts.items():
        ErrorBurst(parts[name].service, windows, error_rate=rate)
    orch = Orchestrator(world, db, saga, parts, backoff=story_backoff(), crashes=crashes,
                        restart_after=restart_after, supervisor=supervisor, poll_interval=poll_interval)
    customers, snapshots = [], {}
    gaps = world.rng("customers/gaps")

    def customer():
        env = world.env
        for i in range(orders):
            try:
                yield from orch.start(Request(env.now, "order", i), i, amount=AMOUNT)
                customers.append((env.now, i, STARTED))
            except ServiceError as err:
                customers.append((env.now, i, err.reason))
            yield env.timeout(gaps.expovariate(1.0 / every) if poisson else every)

    def watcher():
        for t in watch:
            yield world.env.timeout(t - world.env.now)
            snapshots[t] = {i: (row["status"], tuple(n for n in STEPS if parts[n].db.get("effects", i) is not None))
                            for i, row in db.rows(ORDERS)}

    world.env.process(customer())
    if watch:
        world.env.process(watcher())
    results = world.run(until)
    return ShopRun(results, db, parts, orch, log, customers, snapshots, until)


#: Section 2's story: 6 orders, one every 2 s. Payment refuses every call (a decline, "error") from 2 to
#: 4 s; inventory is down from 6 to 9 s; payment is down (no answer at all) from 10 to 14 s.
STORY_ORDERS, STORY_EVERY = 6, 2.0
STORY_BURSTS = {"payment": ([(2.0, 4.0)], 1.0)}
STORY_OUTAGES = {"inventory": [(6.0, 9.0)], "payment": [(10.0, 14.0)]}


def story_run(seed: int, *, watch=()) -> ShopRun:
    """Section 2's shop: :data:`STORY_ORDERS` orders through a payment decline, an inventory outage and
    a payment outage (see :data:`STORY_BURSTS`, :data:`STORY_OUTAGES`)."""
    return shop_run(seed, orders=STORY_ORDERS, every=STORY_EVERY, bursts=STORY_BURSTS, outages=STORY_OUTAGES,
                    watch=watch)


def crash_after(seed: int, order, step: str, *, delay: float = 0.001, **kwargs) -> float:
    """The time ``delay`` s after ``step`` of ``order``'s saga first applied, in a crash-free run of
    :func:`shop_run` with the same ``seed`` and ``kwargs``: after the participant committed, before
    the orchestrator's commit of its new state (2 ms later), so a crash then re-runs the step."""
    validate.choice("step", step, STEPS)
    delay = validate.positive("delay", delay)
    run = shop_run(seed, **kwargs)
    for s in run.spans:
        if s.saga == order and s.step == step and s.action == "do" and s.outcome == OK:
            return s.end + delay
    raise ValueError(f"order {order!r} never applied {step!r} in this run; pick another order or step")


def targeted_crashes(seed: int, points, **kwargs) -> list:
    """Crash times that each hit a saga mid-way: for each ``(order, step)`` of ``points``, just after
    that step applied (:func:`crash_after`), in a run with the crashes found so far."""
    if isinstance(points, (str, bytes)) or not hasattr(points, "__iter__"):
        raise validate.WrongType(f"points must be a list of (order, step) pairs, got {validate.show(points)}")
    crashes = []
    for i, point in enumerate(points):
        if not isinstance(point, (tuple, list)) or len(point) != 2:
            raise ValueError(f"points[{i}] must be an (order, step) pair, got {point!r}")
        crashes.append(crash_after(seed, point[0], point[1], crashes=list(crashes), **kwargs))
    return crashes


def applied_then_failed(seed: int, *, saga: Saga | None = None, down_for: float = 4.0) -> ShopRun:
    """One order whose first step applied but looks failed to the orchestrator: it crashes just after
    inventory reserved the item, before persisting that; inventory goes down half a second later, for
    ``down_for`` s, so the re-run of the step after the restart fails until the saga compensates."""
    down_for = validate.positive("down_for", down_for)
    crash = crash_after(seed, 0, "inventory", orders=1)
    return shop_run(seed, orders=1, crashes=[crash], outages={"inventory": [(crash + 0.5, crash + 0.5 + down_for)]},
                    saga=saga)


# --- pictures ------------------------------------------------------------------------------------------
def draw_saga(ax, run: ShopRun, order, *, pad: float = 0.3, legend: bool = True, also=()):
    """One saga's calls as spans, a row per participant: a step that applied (green), one already
    applied (an idempotent replay, olive), a failed step (red), an undo (purple), a failed undo (pink);
    faults shaded, orchestrator crashes as dashed lines. The legend names what this panel shows, and
    the spans of the orders in ``also`` (drawn in other panels beside it)."""
    spans = run.saga_spans(order)
    if not spans:
        raise ValueError(f"order {order!r} has no calls in this run")
    rows = {name: i for i, name in enumerate(STEPS)}
    lo, hi = min(s.start for s in spans) - pad, max(s.end for s in spans) + pad
    thinnest = (hi - lo) / 250                 # a call that failed at once is still drawn
    for s in spans:
        failed = s.outcome not in (OK, REPLAY)
        color = COLORS[("undo failed" if failed else "undo") if s.action == "undo" else
                       "failed" if failed else REPLAY if s.outcome == REPLAY else "do"]
        ax.broken_barh([(s.start, max(s.end - s.start, thinnest))], (rows[s.step] - 0.3, 0.6), facecolor=color,
                       edgecolor=color)
    plots.shade_faults(ax, run.results)
    for t in run.crash_times:
        if lo <= t <= hi:
            ax.axvline(t, color="black", ls="--", lw=1.2)
    ax.set_xlim(lo, hi)
    ax.set_yticks(range(len(STEPS)), STEPS)
    ax.set_ylim(len(STEPS) - 0.4, -0.6)
    ax.set_xlabel("time (s)")
    if legend:
        from matplotlib.patches import Patch
        from matplotlib.lines import Line2D
        handles = [Patch(color=COLORS["do"], label="step applied"), Patch(color=COLORS["failed"], label="step failed"),
                   Patch(color=COLORS["undo"], label="compensation (undo)")]
        named = spans + [s for other in also for s in run.saga_spans(other)]
        if any(s.action == "undo" and s.outcome not in (OK, REPLAY) for s in named):
            handles.append(Patch(color=COLORS["undo failed"], label="compensation failed"))
        if any(s.outcome == REPLAY for s in named):
            handles.append(Patch(color=COLORS[REPLAY], label="already applied (replay)"))
        if any(lo <= t <= hi for t in run.crash_times):
            handles.append(Line2D([], [], color="black", ls="--", label="orchestrator crash"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return ax


def draw_outcomes(ax, run: ShopRun, *, legend: bool = True, burst=None):
    """Orders confirmed, cancelled and refused so far, over time (step lines); faults shaded."""
    times = run.outcome_times()
    labels = {CONFIRMED: "confirmed", CANCELLED: "cancelled (compensated)", REFUSED: "refused at the door"}
    for kind, ts in times.items():
        ax.step(np.r_[0.0, ts, run.until], np.r_[0, np.arange(1, len(ts) + 1), len(ts)], where="post",
                color=OUTCOME_COLORS[kind], label=labels[kind])
    if burst is None:
        plots.shade_faults(ax, run.results)
    else:
        ax.axvspan(*burst, color="tab:purple", alpha=0.18, lw=0)
    ax.set_xlim(0, run.until)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("orders so far")
    if legend:
        ax.legend(loc="upper left", fontsize=8)
    return ax


# --- section 5: a burst of payment errors, without and with a supervisor --------------------------------
#: About one order a second (Poisson) for 120 s; payment refuses BURST_RATE of calls from BURST_START
#: for BURST_LENGTH s, and 2% on a good day.
SHOP_ORDERS, SHOP_EVERY, SHOP_UNTIL = 120, 1.0, 130.0
BURST_START, BURST_LENGTH, BURST_RATE = 20.0, 40.0, 1.0
BASE_ERRORS = 0.02
#: The supervisor: fires while at least THRESHOLD of the step calls of the last WINDOW s failed (with
#: at least MIN_CALLS calls in the window), in buckets of RESOLUTION s.
THRESHOLD, WINDOW, MIN_CALLS, RESOLUTION = 0.5, 5.0, 5, 0.5


def supervisor(threshold: float = THRESHOLD, window: float = WINDOW, *, min_calls: int = MIN_CALLS) -> ThresholdRule:
    """A fresh supervisor rule (a rule belongs to one run)."""
    return ThresholdRule(threshold, window, min_requests=min_calls, resolution=RESOLUTION)


def burst_run(seed: int, *, supervised: bool, rate: float = BURST_RATE, length: float = BURST_LENGTH,
              threshold: float = THRESHOLD, window: float = WINDOW, start: float = BURST_START,
              orders: int = SHOP_ORDERS, until: float = SHOP_UNTIL) -> ShopRun:
    """The shop through ``length`` s of payment refusals at ``rate`` from ``start``, with a
    :func:`supervisor` of ``threshold`` over ``window`` s if ``supervised``."""
    validate.boolean("supervised", supervised)
    rate = validate.probability("rate", rate)
    length = validate.positive("length", length)
    start = validate.non_negative("start", start)
    rule = supervisor(threshold, window) if supervised else None
    if not supervised:
        validate.number("threshold", threshold, low=0.0, high=1.0, low_open=True)
        validate.positive("window", window)
    bursts = {"payment": ([(start, start + length)], rate)} if rate > 0 else {}
    return shop_run(seed, orders=orders, every=SHOP_EVERY, poisson=True, until=until, bursts=bursts,
                    errors={"payment": BASE_ERRORS}, supervisor=rule)


def burst_pair(seed: int, **kwargs) -> tuple:
    """(without, with) the supervisor, same seed and burst."""
    return burst_run(seed, supervised=False, **kwargs), burst_run(seed, supervised=True, **kwargs)


def burst_summary(run: ShopRun, window) -> dict:
    """What a run of the burst cost: orders confirmed, cancelled, refused; customers refunded; items
    reserved then released; payment calls during ``window`` and how many failed; participant calls
    spent on cancelled orders; the longest time an order stayed PENDING."""
    st = run.statuses()
    return {"confirmed": st[CONFIRMED], "cancelled": st[CANCELLED], "refused": len(run.refused),
            "refunded": run.refunded(), "released": run.released(),
            "payment calls": run.calls("payment", window=window),
            "failed payment calls": run.calls("payment", failed=True, window=window),
            "wasted calls": run.wasted_calls(), "longest pending": float(run.pending_times().max())}


#: The table's row labels: which counts cover the burst only, which the whole run.
BURST_LABELS = {"payment calls": "payment calls (during the burst)",
                "failed payment calls": "failed payment calls (during the burst)",
                "wasted calls": "calls for cancelled orders (whole run)"}


def burst_table(without: ShopRun, with_: ShopRun, window) -> Table:
    """:func:`burst_summary` of both runs side by side (``data``: the two dicts)."""
    a, b = burst_summary(without, window), burst_summary(with_, window)
    rows = [[BURST_LABELS.get(k, k), f"{a[k]:.1f} s" if k == "longest pending" else a[k],
             f"{b[k]:.1f} s" if k == "longest pending" else b[k]] for k in a]
    return Table(["", "without supervisor", "with supervisor"], rows, data=(a, b))


def recovery(run: ShopRun, burst_end: float) -> dict:
    """After the burst: the last refusal, and the first order started and confirmed after ``burst_end``."""
    refused = [t for t in run.refused if t >= burst_end]
    started = sorted(t for t in run.started.values() if t >= burst_end)
    ends = run.ended_at()
    confirmed = sorted(ends[i] for i in run.ids(CONFIRMED) if ends[i] >= burst_end)
    return {"last refusal": max(refused) if refused else None,
            "first start": started[0] if started else None,
            "first confirmed": confirmed[0] if confirmed else None}


# --- section 6: many random fault schedules --------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """One random fault schedule for a small shop: orchestrator crash times, outages ({name: [(start,
    end)]}), participants' error rates, and the seed of the rest (arrivals, errors)."""
    crashes: tuple = ()
    outages: tuple = ()          # ((name, start, end), ...)
    errors: tuple = ()           # ((participant, rate), ...)
    seed: int = 0
    orders: int = 8

    def size(self) -> int:
        """How big the schedule is, for the shrink: crashes + outages + error rates + orders."""
        return len(self.crashes) + len(self.outages) + sum(1 for _, e in self.errors if e) + self.orders

    def __str__(self) -> str:
        outages = ", ".join(f"{n} down {a:.2f}-{b:.2f} s" for n, a, b in self.outages) or "no outage"
        errors = ", ".join(f"{n} {e:.0%}" for n, e in self.errors if e) or "no errors"
        crashes = ", ".join(f"{t:.2f}" for t in self.crashes) or "none"
        return f"{self.orders} orders; orchestrator crashes at [{crashes}] s; {outages}; {errors} (seed {self.seed})"


#: Small shops for the invariants: 8 orders, one every 0.5 s, run for 40 s.
SMALL_ORDERS, SMALL_EVERY, SMALL_UNTIL = 8, 0.5, 40.0
FAULT_TARGETS = STEPS + ("orders_db",)


def random_schedule(rng: random.Random, *, orders: int = SMALL_ORDERS) -> Schedule:
    """Up to 3 orchestrator crashes in the first 12 s, up to 2 outages of 0.5-8 s (participants or
    the orders database), error rates for each participant."""
    if not isinstance(rng, random.Random):
        raise validate.WrongType(f"rng must be a random.Random, got {validate.show(rng)}")
    crashes = tuple(sorted(round(rng.uniform(0, 12), 3) for _ in range(rng.randint(0, 3))))
    outages = []
    for _ in range(rng.randint(0, 2)):
        start = round(rng.uniform(0, 10), 3)
        outages.append((rng.choice(FAULT_TARGETS), start, round(start + rng.uniform(0.5, 8), 3)))
    errors = (("inventory", rng.choice([0.0, 0.2])), ("payment", rng.choice([0.0, 0.5, 0.9])),
              ("shipping", rng.choice([0.0, 0.5])))
    return Schedule(crashes, tuple(sorted(outages, key=lambda o: o[1])), errors, rng.randrange(2 ** 31), orders)


def run_schedule(schedule: Schedule, *, saga: Saga | None = None) -> ShopRun:
    """The small shop under ``schedule``."""
    if not isinstance(schedule, Schedule):
        raise validate.WrongType(f"schedule must be a Schedule, got {validate.show(schedule)}")
    outages = {}
    for name, start, end in sorted(schedule.outages, key=lambda o: o[1]):
        windows = outages.setdefault(name, [])
        if windows and start < windows[-1][1]:          # overlapping outages of one target: one longer outage
            windows[-1] = (windows[-1][0], max(end, windows[-1][1]))
        else:
            windows.append((start, end))
    return shop_run(schedule.seed, orders=schedule.orders, every=SMALL_EVERY, until=SMALL_UNTIL,
                    crashes=schedule.crashes, outages=outages, errors=dict(schedule.errors), saga=saga)


def check_schedule(schedule: Schedule, *, saga: Saga | None = None) -> list:
    """The invariants' violations under ``schedule`` (empty: every order ended CONFIRMED or
    CANCELLED, and money and stock are conserved)."""
    return run_schedule(schedule, saga=saga).violations()


def search(n: int, seed: int, *, saga_factory=order_saga, stop: bool = True) -> tuple:
    """Check ``n`` random schedules (seeded by ``seed``) with sagas from ``saga_factory()``:
    ``(schedules checked, [(schedule, violations), ...])``, stopping at the first counterexample if ``stop``."""
    n = validate.integer("n", n, low=1, high=100_000)
    validate.function("saga_factory", saga_factory)
    rng, found, checked = random.Random(validate.integer("seed", seed, low=0)), [], 0
    for _ in range(n):
        schedule = random_schedule(rng)
        checked += 1
        problems = check_schedule(schedule, saga=saga_factory())
        if problems:
            found.append((schedule, problems))
            if stop:
                break
    return checked, found


def _smaller(s: Schedule):
    """Schedules one step smaller than ``s``: a crash, an outage or an error rate fewer, one order fewer."""
    for i in range(len(s.crashes)):
        yield replace(s, crashes=s.crashes[:i] + s.crashes[i + 1:])
    for i in range(len(s.outages)):
        yield replace(s, outages=s.outages[:i] + s.outages[i + 1:])
    for i, (name, rate) in enumerate(s.errors):
        if rate:
            yield replace(s, errors=s.errors[:i] + ((name, 0.0),) + s.errors[i + 1:])
    if s.orders > 1:
        yield replace(s, orders=s.orders - 1)


def shrink(schedule: Schedule, *, saga_factory=order_saga, budget: int = 200) -> tuple:
    """Greedy shrink: take any one-step-smaller schedule that still breaks an invariant, until none
    does (or ``budget`` runs are spent): ``(smallest schedule, its violations, runs)``."""
    validate.function("saga_factory", saga_factory)
    budget = validate.integer("budget", budget, low=1)
    problems, runs = check_schedule(schedule, saga=saga_factory()), 1
    if not problems:
        raise ValueError("schedule must break an invariant to be shrunk; this one breaks none")
    improved = True
    while improved and runs < budget:
        improved = False
        for smaller in _smaller(schedule):
            runs += 1
            found = check_schedule(smaller, saga=saga_factory())
            if found:
                schedule, problems, improved = smaller, found, True
                break
            if runs >= budget:
                break
    return schedule, problems, runs


class GiveUpSaga(Saga):
    """A broken design: a compensation that fails ``give_up`` times is taken as done (logged and
    forgotten), instead of being retried until it succeeds."""

    def __init__(self, steps, *, give_up: int = 2):
        super().__init__(steps)
        self.give_up = validate.integer("give_up", give_up, low=1)

    def record(self, state: dict, ok: bool, reason: str = "error") -> dict:
        new = super().record(state, ok, reason)
        action, subject = self.next_action(state)
        if action == COMPENSATE and not ok and new["tries"] >= self.give_up:
            new["undone"].append(subject.name)            # "it will not undo: move on"
            new["tries"] = 0
            if all(name in new["undone"] for name in new["to_undo"]):
                new["status"] = COMPENSATED
        return new


class NoUndoOfFailedStep(Saga):
    """A broken design: when a compensatable step fails for good, only the steps that completed
    are compensated, not the failed one (which may have applied before the failure was seen)."""

    def record(self, state: dict, ok: bool, reason: str = "error") -> dict:
        new = super().record(state, ok, reason)
        action, subject = self.next_action(state)
        if action == RUN and new["status"] == COMPENSATE and subject.name not in new["done"]:
            new["to_undo"] = [n for n in new["to_undo"] if n != subject.name]
            if not new["to_undo"]:
                new["status"] = COMPENSATED
        return new


def give_up_saga() -> GiveUpSaga:
    return GiveUpSaga(order_saga().steps)


def no_undo_saga() -> NoUndoOfFailedStep:
    return NoUndoOfFailedStep(order_saga().steps)


def plain_walk(saga: Saga, outcomes) -> list:
    """Feed a saga ``outcomes`` (True/False per action, False as a refusal) and return the actions taken
    as "T name" (a step) or "C name" (a compensation), with "x" for a failed one, until it ends."""
    if not isinstance(saga, Saga):
        raise validate.WrongType(f"saga must be a Saga, got {validate.show(saga)}")
    state, out = saga.start(), []
    for ok in outcomes:
        action, subject = saga.next_action(state)
        if action == END:
            break
        out.append(f"{'T' if action == RUN else 'C'} {subject.name}{'' if ok else ' x'}")
        state = saga.record(state, validate.boolean("outcomes[i]", ok))
    return out + [f"end: {saga.next_action(state)[1]}" if saga.next_action(state)[0] == END else "..."]


# --- the dashboard -----------------------------------------------------------------------------------------
DASH_SEED = 1616


def _dash_compute(rate_pct, length_s, threshold_pct, supervised):
    return burst_run(DASH_SEED, supervised=supervised, rate=rate_pct / 100, length=length_s,
                     threshold=threshold_pct / 100)


#: The dashboard's ticks, fixed (tick labels are most of a redraw's cost).
DASH_XTICKS, DASH_YTICKS = (0, 20, 40, 60, 80, 100, 120), (0, 30, 60, 90, 120)


def _dash_draw(ax, run: ShopRun):
    burst = run.results.faults[0].spans[0] if run.results.faults else None
    draw_outcomes(ax, run, legend=False, burst=burst)
    plots.fixed_ticks(ax.xaxis, DASH_XTICKS)
    plots.fixed_ticks(ax.yaxis, DASH_YTICKS)
    ax.set_ylim(-3, 123)
    if run.orch.supervisor is not None:
        ax.set_ylabel("")


def _dash_summary(run: ShopRun) -> str:
    st = run.statuses()
    burst = run.results.faults[0].spans[0] if run.results.faults else None
    return (f"confirmed {st[CONFIRMED]}, cancelled {st[CANCELLED]}, refused {len(run.refused)}; "
            f"failed payment calls during the burst {run.calls('payment', failed=True, window=burst)}")


@dashboard("16_sagas/supervisor")
def supervisor_dashboard() -> Dashboard:
    """Payment error rate, burst length and the supervisor's threshold; orders confirmed, cancelled
    and refused over time, without and with the supervisor."""
    return Dashboard(
        _dash_compute, _dash_draw,
        [Slider("rate_pct", "payment errors (503) in the burst", "%", 10, 100, BURST_RATE * 100, step=5),
         Slider("length_s", "burst length", "s", 10, 80, BURST_LENGTH, step=5),
         Slider("threshold_pct", "supervisor fires at step failures", "%", 10, 90, THRESHOLD * 100, step=5)],
        variants={"without supervisor": {"supervised": False}, "with supervisor": {"supervised": True}},
        summary=_dash_summary, figsize=(10.0, 3.2), dpi=72,
        title=f"About one order a second; payment answers calls with errors (503) during the burst (shaded), {BASE_ERRORS:.0%} "
              "on a good day. Orders so far: confirmed (green), cancelled after compensating (red), refused at the "
              "door by the supervisor (grey)")


__all__ = ["STEPS", "AMOUNT", "Span", "order_saga", "story_backoff", "Traced", "Forgetful", "NaiveRun", "naive_run",
           "ShopRun", "shop_run", "story_run", "crash_after", "targeted_crashes", "applied_then_failed", "draw_saga",
           "draw_outcomes", "supervisor", "burst_run", "burst_pair", "burst_summary", "burst_table", "recovery",
           "Schedule", "random_schedule", "run_schedule", "check_schedule", "search", "shrink", "GiveUpSaga",
           "NoUndoOfFailedStep", "give_up_saga", "no_undo_saga", "plain_walk", "supervisor_dashboard"]
