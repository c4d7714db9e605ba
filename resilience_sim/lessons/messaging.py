"""14 Messages instead of HTTP: send the command as a message, let the other system handle it when it
is available, and make end-user retries harmless.

The story is a shop's **checkout**, which must tell **shipping** to ship each order. Shipping does
``WORK`` seconds of work per order (exponential) and writes a shipment row to its own database, which
is down during ``OUTAGE``.

* Over HTTP (``design="http"``), checkout calls shipping through a synchronous
  :class:`~resilience_sim.sim.client.Client` and answers the user once shipping has answered: when
  shipping's database is down, checkout fails although checkout itself is fine.
* With a message (``design="message"``), checkout publishes "ship order n" to a durable
  :class:`~resilience_sim.sim.broker.Broker` and answers at once; ``workers``
  :class:`~resilience_sim.sim.consumer.Consumer` processes ship the orders when they can. The queue
  grows during the outage and catches up after it in about backlog / (service rate - arrival rate).

:func:`story_run` builds and runs either one (``fault="database"`` or ``"workers"``: shipping's
workers crashed); :class:`StoryRun` reads availability, queue depth, catch-up and shipping delays.
:func:`one_message` follows a single message through redeliveries (a crash mid-message, processing
longer than the visibility timeout, dead letters, a heartbeat that extends the timeout);
:func:`crash_run`, :func:`worst_instant` and :func:`find_counterexample` show duplicates without an
idempotent consumer, with dedupe in a separate transaction, and with dedupe in the effect's
transaction. :func:`order_run` is the end-user side: a POST retried after a timeout, with and without
an ``Idempotency-Key`` (:func:`place_order_handler`, over
:class:`~resilience_sim.policies.IdempotencyKeys`). Times are simulated seconds.
"""
from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from matplotlib.ticker import MaxNLocator

from ..core import validate
from ..core.distributions import Exponential, Fixed
from ..core.reasons import Outcome
from ..metrics import Results
from ..metrics.windows import quality_series
from ..policies import ExponentialBackoff, IdempotencyKeys, MessageQueue, RetryPolicy
from ..policies.idempotency import CONFLICT, IN_FLIGHT, REPLAY
from ..sim.broker import Broker
from ..sim.client import Client
from ..sim.consumer import EFFECTS, Consumer
from ..sim.database import Database
from ..sim.faults import LatencySpike, Outage
from ..sim.service import Service, ServiceError
from ..sim.workload import OpenLoop
from ..sim.world import World
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import RunMemo, Table

# --- the story ---------------------------------------------------------------------------------------
#: Orders a second (Poisson) and how long they arrive; the run goes on ``TAIL`` seconds more.
RATE = 0.5
DURATION = 1200.0
TAIL = 60.0
#: Mean seconds of shipping's work per order (exponential): book a carrier, print a label.
WORK = 1.0
#: Shipping's workers consuming the queue (each ships one order at a time).
WORKERS = 1
#: Shipping's database (or its workers) is down for five minutes.
OUTAGE = (120.0, 420.0)
#: The queue of the story: SQS's default visibility timeout, and a redrive policy after 10 receives.
VISIBILITY = 30.0
MAX_RECEIVES = 10
#: An idle consumer asks the broker again after this many seconds (a short poll).
POLL = 1.0
#: Over HTTP: shipping's slots (requests at once) and checkout's timeout on it.
HTTP_SLOTS = 4
HTTP_TIMEOUT = 10.0
#: checkout's own work per request (validate, publish or call, answer).
FRONT_WORK = 0.005
#: Seconds between two samples of the queue's depth.
PROBE_EVERY = 1.0
#: The queue counts as caught up when no more than this many messages wait (visible or in flight).
CAUGHT_UP = 1
#: Seconds of broker and database calls a consumer spends per message on top of its work: receive
#: (2 ms + 0.5 ms reply), the commit (2 ms + 0.5 ms) and the acknowledgement (2 ms + 0.5 ms).
OVERHEAD = 3 * (0.002 + 0.0005)
DESIGNS = ("http", "message")
FAULTS = ("database", "workers")
#: Shipping's table of shipments over HTTP (a consumer writes "effects", see sim/consumer.py).
SHIPMENTS = "shipments"


def service_rate(workers: int = WORKERS, *, work: float = WORK) -> float:
    """Messages a second the consumers process: each spends ``work`` + :data:`OVERHEAD` per message."""
    workers = validate.integer("workers", workers, low=1, high=1000)
    return workers / (validate.positive("work", work) + OVERHEAD)


def catch_up_time(backlog: float, service: float, arrivals: float) -> float:
    """Seconds to clear ``backlog`` messages at ``service`` a second while new ones keep arriving at
    ``arrivals`` a second: backlog / (service - arrivals); infinite when service <= arrivals."""
    backlog = validate.non_negative("backlog", backlog)
    service = validate.positive("service", service)
    arrivals = validate.non_negative("arrivals", arrivals)
    return math.inf if service <= arrivals else backlog / (service - arrivals)


def catch_up_sd(backlog: float, service: float, arrivals: float) -> float:
    """The standard deviation of the catch-up around :func:`catch_up_time` when service times are
    exponential and the consumers stay busy: ``backlog`` independent M/M/1 busy periods, each of
    variance (1 + rho) / (service**2 (1 - rho)**3) with rho = arrivals / service."""
    mean = catch_up_time(backlog, service, arrivals)
    if math.isinf(mean):
        return math.inf
    rho = arrivals / service
    return math.sqrt(backlog * (1 + rho) / (service ** 2 * (1 - rho) ** 3))


@dataclass
class StoryRun:
    """One run of the shop: the checkout's results (route "checkout"), and with a message the queue,
    the consumers and the depth sampled every ``probe_every`` seconds (:func:`story_run`)."""
    results: Results = field(repr=False)
    design: str
    fault: str
    outage: tuple
    rate: float
    workers: int
    duration: float
    work: float = WORK
    queue: MessageQueue | None = field(default=None, repr=False)
    consumers: list = field(default_factory=list, repr=False)
    depth_times: np.ndarray = field(default=None, repr=False)
    depth: np.ndarray = field(default=None, repr=False)
    published: dict = field(default_factory=dict, repr=False)     # order id -> when checkout published it
    shipped: dict = field(default_factory=dict, repr=False)       # order id -> when shipping shipped it

    def _message(self, what: str):
        if self.design != "message":
            raise ValueError(f"design must be 'message' for {what}; this run called shipping over HTTP")

    @property
    def outage_length(self) -> float:
        return self.outage[1] - self.outage[0]

    def availability(self, window=None) -> float:
        """Share of the checkout requests (that started in ``window``, default all) that were answered."""
        seen = self.results.only("checkout")
        if window is not None:
            try:
                seen = seen.between(*window)
            except ValueError:
                raise ValueError(f"window must lie inside the run [0, {seen.until:g}] s, got {window!r}") from None
        return seen.request_availability()

    def failed(self) -> int:
        """Checkout requests that got an error."""
        seen = self.results.only("checkout")
        return len(seen) - int(round(seen.request_availability() * len(seen)))

    def orders(self) -> int:
        return len(self.results.only("checkout"))

    def depth_at(self, t: float) -> int:
        """Messages waiting (visible or in flight) in the last sample at or before ``t``."""
        self._message("a queue")
        i = int(np.searchsorted(self.depth_times, t, side="right")) - 1
        return int(self.depth[max(i, 0)])

    def backlog(self) -> int:
        """Messages waiting when shipping came back (the end of the outage)."""
        return self.depth_at(self.outage[1])

    def caught_up_at(self) -> float:
        """When the queue was first back to at most :data:`CAUGHT_UP` messages after the outage (NaN if never)."""
        self._message("a queue")
        after = (self.depth_times >= self.outage[1]) & (self.depth <= CAUGHT_UP)
        return float(self.depth_times[after][0]) if after.any() else math.nan

    def catch_up(self) -> float:
        """Seconds from the end of the outage until the queue had caught up (NaN if it never did)."""
        return self.caught_up_at() - self.outage[1]

    def service_rate(self) -> float:
        """Messages a second this run's consumers process (:func:`service_rate`)."""
        return service_rate(self.workers, work=self.work)

    def predicted_catch_up(self) -> float:
        """:func:`catch_up_time` for the backlog at the end of the outage and this run's rates."""
        return catch_up_time(self.backlog(), self.service_rate(), self.rate)

    def catch_up_sd(self) -> float:
        return catch_up_sd(self.backlog(), self.service_rate(), self.rate)

    def ship_delays(self) -> np.ndarray:
        """Seconds from checkout's answer to the shipment, per shipped order (publish order)."""
        self._message("shipping delays")
        return np.array([self.shipped[i] - t for i, t in self.published.items() if i in self.shipped])

    def unshipped(self) -> int:
        """Orders checkout confirmed that shipping never shipped (dead letters or still waiting)."""
        self._message("shipments")
        return sum(1 for i in self.published if i not in self.shipped)

    def counts(self) -> dict:
        """What the broker and the consumers did: sent, delivered, redelivered, acked, copies skipped by
        the idempotent consumer, dead letters, dropped, still waiting."""
        self._message("a queue")
        q = self.queue
        return {"sent": q.sent, "delivered": q.received, "redelivered": q.redelivered, "acked": q.acked,
                "duplicates skipped": sum(c.duplicates_skipped for c in self.consumers),
                "dead letters": len(q.dead_letters), "dropped": q.dropped, "waiting": q.waiting}


def _probe(world, queue, every: float, until: float):
    times, depth = [], []

    def run():
        env, k = world.env, 0
        while k * every <= until:
            if k * every > env.now:
                yield env.timeout(k * every - env.now)
            times.append(env.now)
            depth.append(queue.waiting)
            k += 1
    world.env.process(run())
    return times, depth


def story_run(seed: int, *, design: str = "message", fault: str = "database", outage=OUTAGE,
              duration: float = DURATION, rate: float = RATE, workers: int = WORKERS, work: float = WORK,
              visibility_timeout: float = VISIBILITY, max_receives: int | None = MAX_RECEIVES,
              dead_letter: bool = True, tail: float = TAIL, probe_every: float = PROBE_EVERY,
              poll: float = POLL) -> StoryRun:
    """The shop for ``duration`` seconds of ``rate`` orders a second, shipping unable to ship during
    ``outage``: its database down (``fault="database"``) or its workers crashed and restarted at the
    end (``fault="workers"``; over HTTP the shipping service is down). Runs ``tail`` seconds more.

    ``design="http"``: checkout calls shipping (``HTTP_SLOTS`` slots) through a client with a
    ``HTTP_TIMEOUT`` timeout. ``design="message"``: checkout publishes to a broker whose queue has
    ``visibility_timeout``, ``max_receives`` and ``dead_letter``; ``workers`` consumers ship the orders,
    deduplicating in the effect's transaction and asking the broker again ``poll`` s after finding
    nothing (or failing); the queue's depth is sampled every ``probe_every`` s."""
    design = validate.choice("design", design, DESIGNS)
    fault = validate.choice("fault", fault, FAULTS)
    lo, hi = validate.windows("outage", [outage])[0]
    duration = validate.positive("duration", duration)
    rate = validate.positive("rate", rate)
    workers = validate.integer("workers", workers, low=1, high=64)
    work = validate.positive("work", work)
    tail = validate.non_negative("tail", tail)
    until = duration + tail
    queue = MessageQueue(visibility_timeout=visibility_timeout, max_receives=max_receives, dead_letter=dead_letter)
    probe_every = validate.positive("probe_every", probe_every)
    poll = validate.positive("poll", poll)
    if hi > until:
        raise ValueError(f"outage must end inside the run (duration + tail = {until:g} s), got {outage!r}")
    world = World(seed)
    db = Database(world, "shipping_db")
    if fault == "database":
        Outage(db.service, [(lo, hi)])
    if design == "http":
        def ship(svc, req):                              # shipping's endpoint: write the shipment
            tx = db.transaction()
            tx.insert(SHIPMENTS, req.key, {"at": svc.env.now})
            yield from tx.commit(req)
        shipping = Service(world, "shipping", capacity=HTTP_SLOTS, latency=Exponential(work), handler=ship)
        if fault == "workers":
            Outage(shipping, [(lo, hi)])
        to_shipping = Client(world, shipping, name="checkout->shipping", timeout=HTTP_TIMEOUT)
        front = Service(world, "checkout", capacity=10_000, latency=Fixed(FRONT_WORK), dependencies=[to_shipping],
                        handler=lambda svc, req: (yield from svc.ask("shipping", req)))
        OpenLoop(world, front, rate, duration=duration, name="checkout", key=_counter())
        results = world.run(until)
        return StoryRun(results, design, fault, (lo, hi), rate, workers, duration, work)
    broker = Broker(world, queue)
    published = {}

    def publish(svc, req):                               # "ship order n", then answer the user
        yield from broker.publish(req, req.key, {"order": req.key})
        published[req.key] = svc.env.now

    front = Service(world, "checkout", capacity=10_000, latency=Fixed(FRONT_WORK), handler=publish)
    crashes = [lo] if fault == "workers" else []
    consumers = [Consumer(world, broker, db, name=f"shipping-{i + 1}", dedupe="transaction", work=Exponential(work),
                          poll_interval=poll, crashes=crashes, restart_after=hi - lo) for i in range(workers)]
    times, depth = _probe(world, queue, probe_every, until)
    OpenLoop(world, front, rate, duration=duration, name="checkout", key=_counter())
    results = world.run(until)
    shipped = {}
    for c in consumers:
        for t, mid, what in c.events:
            if what == "applied":
                shipped[mid] = t
    return StoryRun(results, design, fault, (lo, hi), rate, workers, duration, work, queue, consumers,
                    np.array(times), np.array(depth), published, shipped)


def _counter():
    ids = itertools.count(1)
    return lambda rng: next(ids)


def faults_table(seed: int) -> Table:
    """Both faults (shipping's database down, shipping's workers crashed) over HTTP and with a message:
    checkout answered, and with the message the backlog, the catch-up, redeliveries, the longest wait
    from checkout to shipment and the orders never shipped. ``data[(fault, design)]`` keeps the numbers."""
    rows, data = [], {}
    for fault in FAULTS:
        for design in DESIGNS:
            run = story_run(seed, design=design, fault=fault)
            if design == "http":
                data[fault, design] = {"answered": run.availability(), "failed": run.failed()}
                rows.append([_FAULT_NAMES[fault], "HTTP call", f"{run.availability():.1%}", "", "", "", "",
                             f"{run.failed()} checkouts failed"])
                continue
            numbers = {"answered": run.availability(), "backlog": run.backlog(), "catch_up": run.catch_up(),
                       "redelivered": run.queue.redelivered, "longest_wait": float(run.ship_delays().max()),
                       "unshipped": run.unshipped()}
            data[fault, design] = numbers
            rows.append([_FAULT_NAMES[fault], "message", f"{run.availability():.1%}", numbers["backlog"],
                         f"{numbers['catch_up']:.0f} s", numbers["redelivered"], f"{numbers['longest_wait']:.0f} s",
                         numbers["unshipped"]])
    return Table(["shipping's fault", "checkout → shipping", "checkout answered", "backlog", "caught up after",
                  "redelivered", "longest wait to ship", "orders not shipped"], rows, data)


_FAULT_NAMES = {"database": "database down", "workers": "workers crashed"}


# --- one message through its deliveries ----------------------------------------------------------------
class HeartbeatConsumer(Consumer):
    """A consumer that keeps its delivery invisible while it works: every ``heartbeat`` seconds it
    extends the visibility timeout by the queue's timeout (SQS's ChangeMessageVisibility), and stops
    when the message is handled, or when the consumer crashes (a crashed consumer sends no heartbeat).
    A heartbeat that comes after the timeout has passed is refused and counted in ``late_heartbeats``
    (so keep ``heartbeat`` well under the timeout); ``extensions`` counts the accepted ones."""

    def __init__(self, world, broker, db, *, heartbeat: float, **kwargs):
        self.heartbeat = validate.positive("heartbeat", heartbeat)
        self.extensions = self.late_heartbeats = 0
        super().__init__(world, broker, db, **kwargs)

    # WORKAROUND: Consumer offers no hook around the handling of one delivery, and Broker no extend();
    # this wraps Consumer._handle and calls broker.queue.extend directly (see the report's proposal).
    def _handle(self, delivery):
        beat = self.env.process(self._beat(delivery.receipt))
        try:
            yield from super()._handle(delivery)
        finally:
            if beat.is_alive:
                beat.interrupt()

    def _beat(self, receipt):
        env, queue = self.env, self.broker.queue
        while True:
            try:
                yield env.timeout(self.heartbeat)
            except Exception:       # interrupted: the message is handled, or the consumer crashed
                return
            try:
                queue.extend(receipt, env.now, queue.visibility_timeout)
            except ValueError:      # too late (heartbeat >= timeout): the message may be out again
                self.late_heartbeats += 1
                return
            self.extensions += 1


@dataclass
class MessageRun:
    """One message's life: the queue, the consumer (its ``events``), the effects applied, and the
    dead-letter queue's depth sampled every second (``dlq_times``, ``dlq``)."""
    queue: MessageQueue = field(repr=False)
    consumer: Consumer = field(repr=False)
    effects: int
    until: float
    dlq_times: np.ndarray = field(default=None, repr=False)
    dlq: np.ndarray = field(default=None, repr=False)

    def times(self, what: str) -> list:
        """When the consumer noted ``what`` ("received", "applied", "acked", "ack refused"...)."""
        return [t for t, _, w in self.consumer.events if w == what]

    @property
    def deliveries(self) -> int:
        return self.queue.received

    def dlq_alarm_at(self) -> float:
        """When an alarm on "dead-letter queue depth > 0" (checked every second) would fire; NaN if never."""
        hit = np.flatnonzero(self.dlq > 0)
        return float(self.dlq_times[hit[0]]) if len(hit) else math.nan


def one_message(*, work: float, visibility_timeout: float = VISIBILITY, max_receives: int | None = None,
                dead_letter: bool = True, dedupe: str = "none", crashes=(), restart_after: float = 1.0,
                heartbeat: float | None = None, until: float = 1000.0, seed: int = 1) -> MessageRun:
    """One message ("order-1") published at time 0 and one consumer (``POLL`` s between polls) that works
    ``work`` seconds on it (fixed), crashing at ``crashes``; with ``heartbeat`` it extends the
    visibility timeout every ``heartbeat`` seconds while it works (:class:`HeartbeatConsumer`)."""
    work = validate.positive("work", work)
    until = validate.positive("until", until)
    world = World(seed)
    db = Database(world, "shipping_db")
    queue = MessageQueue(visibility_timeout=visibility_timeout, max_receives=max_receives, dead_letter=dead_letter)
    broker = Broker(world, queue)

    def publish():
        yield from broker.publish(None, "order-1", {"order": 1})
    world.env.process(publish())
    options = dict(name="shipping", dedupe=dedupe, work=Fixed(work), poll_interval=POLL, crashes=crashes,
                   restart_after=restart_after)
    consumer = (Consumer(world, broker, db, **options) if heartbeat is None else
                HeartbeatConsumer(world, broker, db, heartbeat=heartbeat, **options))
    times, dlq = [], []

    def watch():
        k = 0
        while k <= until:
            if k > world.env.now:
                yield world.env.timeout(k - world.env.now)
            times.append(world.env.now)
            dlq.append(len(queue.dead_letters))
            k += 1
    world.env.process(watch())
    world.run(until)
    return MessageRun(queue, consumer, len(db.rows(EFFECTS)), until, np.array(times), np.array(dlq))


# --- duplicates under crashes ---------------------------------------------------------------------------
#: The crash scene: this many messages, each ``CRASH_WORK`` seconds of work, a short visibility timeout.
CRASH_MESSAGES = 20
CRASH_WORK = 0.05
CRASH_VISIBILITY = 5.0
CRASH_RESTART = 0.5
CRASH_UNTIL = 30.0
#: An idle consumer of the crash scene polls this often.
CRASH_POLL = 1.0
#: How long after an effect commits :func:`worst_instant` crashes the consumer: inside the reply of the
#: commit and the next call (the acknowledgement, or the separate "processed" commit), 2.5 ms long.
AIM = 0.001
DEDUPES = ("none", "separate", "transaction")


@dataclass(frozen=True)
class CrashRun:
    """Effects per message after a run with consumer crashes at ``crashes``."""
    dedupe: str
    crashes: tuple
    messages: int
    effects: int
    duplicated: dict           # message id -> effects, for those applied more than once
    deliveries: int
    waiting: int               # messages not yet acknowledged at the end (0: the run quiesced)

    @property
    def extra(self) -> int:
        """Effects beyond one per message (extra parcels shipped)."""
        return sum(n - 1 for n in self.duplicated.values())


def crash_run(dedupe: str, crashes=(), *, messages: int = CRASH_MESSAGES, seed: int = 1) -> CrashRun:
    """``messages`` messages in the queue at time 0, one consumer (``CRASH_WORK`` s each, dedupe
    ``dedupe``) crashing at ``crashes`` and restarting ``CRASH_RESTART`` s later; visibility timeout
    ``CRASH_VISIBILITY`` s. Runs until every message is acknowledged (``CRASH_UNTIL`` s)."""
    dedupe = validate.choice("dedupe", dedupe, DEDUPES)
    messages = validate.integer("messages", messages, low=1, high=10_000)
    if isinstance(crashes, (str, bytes)) or not hasattr(crashes, "__iter__"):
        raise validate.WrongType(f"crashes must be a list of times in seconds, got {validate.show(crashes)}")
    crashes = tuple(sorted(validate.number("crashes", t, low=0.0, high=CRASH_UNTIL) for t in crashes))
    world = World(seed)
    db = Database(world, "shipping_db")
    queue = MessageQueue(visibility_timeout=CRASH_VISIBILITY)
    for i in range(messages):
        queue.send(f"order-{i + 1}", {"order": i + 1}, 0.0)
    broker = Broker(world, queue)
    consumer = Consumer(world, broker, db, name="shipping", dedupe=dedupe, work=Fixed(CRASH_WORK),
                        poll_interval=CRASH_POLL, crashes=crashes, restart_after=CRASH_RESTART)
    world.run(CRASH_UNTIL)
    counts = Counter(consumer.effect_ids())
    return CrashRun(dedupe, crashes, messages, sum(counts.values()), {k: n for k, n in counts.items() if n > 1},
                    queue.received, queue.waiting)


def worst_instant(seed: int = 1) -> float:
    """The worst time to crash the consumer: :data:`AIM` seconds after the first effect commits (the
    same instant whatever the dedupe: every design runs alike until then)."""
    world = World(seed)
    db = Database(world, "shipping_db")
    queue = MessageQueue(visibility_timeout=CRASH_VISIBILITY)
    queue.send("order-1", {"order": 1}, 0.0)
    consumer = Consumer(world, Broker(world, queue), db, name="shipping", dedupe="none", work=Fixed(CRASH_WORK),
                        poll_interval=CRASH_POLL)
    world.run(1.0)
    applied = next(t for t, _, what in consumer.events if what == "applied")
    return round(applied + AIM, 6)


def duplicate_window(seed: int = 1) -> tuple:
    """(window, per_message) of the crash scene without faults: the time from an effect's commit to
    its acknowledgement (a crash in there duplicates without dedupe) and the time one message takes,
    receive to next receive. A crash at a random instant lands in the window with chance
    window / per_message."""
    world = World(validate.integer("seed", seed, low=0))
    queue = MessageQueue(visibility_timeout=CRASH_VISIBILITY)
    for i in range(2):
        queue.send(f"order-{i + 1}", {"order": i + 1}, 0.0)
    consumer = Consumer(world, Broker(world, queue), Database(world, "shipping_db"), name="shipping",
                        dedupe="none", work=Fixed(CRASH_WORK), poll_interval=CRASH_POLL)
    world.run(1.0)
    times = {(order, what): t for t, order, what in consumer.events}
    window = times["order-1", "acked"] - times["order-1", "applied"]
    return round(window, 6), round(times["order-2", "received"] - times["order-1", "received"], 6)


@dataclass(frozen=True)
class Counterexample:
    """A random search for crash schedules that duplicate: ``found`` of ``tries`` schedules did; the
    first one (``first``) shrunk greedily to ``shrunk`` (fewest crashes that still duplicate)."""
    dedupe: str
    tries: int
    found: int
    first: tuple | None
    shrunk: tuple | None


def find_counterexample(dedupe: str, *, tries: int = 150, crashes: int = 3, seed: int = 1) -> Counterexample:
    """Try ``tries`` schedules of ``crashes`` crash times drawn uniformly over the first second and a half
    (while the queue is being worked through), seeded; shrink the first that duplicates by dropping
    crashes one at a time while it still duplicates."""
    dedupe = validate.choice("dedupe", dedupe, DEDUPES)
    tries = validate.integer("tries", tries, low=1, high=10_000)
    crashes = validate.integer("crashes", crashes, low=1, high=20)
    rng = random.Random(seed)
    found, first = 0, None
    busy = CRASH_MESSAGES * (CRASH_WORK + OVERHEAD) * 1.2
    for _ in range(tries):
        schedule = tuple(sorted(round(rng.uniform(0.0, busy), 4) for _ in range(crashes)))
        if crash_run(dedupe, schedule).duplicated:
            found += 1
            first = first or schedule
    shrunk = None
    if first is not None:
        shrunk = list(first)
        for t in list(shrunk):
            trial = [u for u in shrunk if u != t]
            if trial and crash_run(dedupe, trial).duplicated:
                shrunk = trial
        shrunk = tuple(shrunk)
    return Counterexample(dedupe, tries, found, first, shrunk)


# --- end-user retries with idempotency keys -----------------------------------------------------------
#: The order endpoint's story: orders a second for ``ORDER_DURATION`` s; the orders database is slow
#: (``SLOW_EXTRA`` s more per commit) during ``SLOW``.
ORDER_RATE = 0.5
ORDER_DURATION = 600.0
SLOW = (200.0, 260.0)
SLOW_EXTRA = 3.0
#: The user's browser: a 1 s timeout on the POST, 4 tries in all, 1, 2, 4 s apart.
USER_TIMEOUT = 1.0
USER_ATTEMPTS = 4
USER_BACKOFF = 0.5
#: Reasons a user retries on: the POST timed out, or 409 (the first one is still running).
RETRY_ON = frozenset({"timeout", "conflict"})


def place_order_handler(db, broker, keys: IdempotencyKeys | None, ids, *, params=lambda req: ("cart", req.key)):
    """The handler of ``POST /orders`` (a simpy generator function ``handler(svc, req)``): ``req.key`` is
    the user's ``Idempotency-Key``. Without ``keys`` every request places a new order (a row in
    "orders" with a fresh id from ``ids``, then a message "ship it" with that id). With ``keys`` it asks
    ``keys.begin`` first: NEW runs and stores the response (the order id), REPLAY returns the stored one,
    IN_FLIGHT answers 409 ("conflict"), CONFLICT (other parameters) 422 ("bad request"); a failure before
    the order committed abandons the key, so a retry may run it again."""
    if keys is not None and not isinstance(keys, IdempotencyKeys):
        raise validate.WrongType(f"keys must be IdempotencyKeys or None, got {validate.show(keys)}")
    if not isinstance(db, Database):
        raise validate.WrongType(f"db must be a Database, got {validate.show(db)}")
    if not isinstance(broker, Broker):
        raise validate.WrongType(f"broker must be a Broker, got {validate.show(broker)}")
    validate.function("params", params)

    def handler(svc, req):
        env = svc.env
        if keys is not None:
            decision, stored = keys.begin(req.key, params(req), env.now)
            if decision == REPLAY:
                req.answered_by = "idempotency keys"
                return stored
            if decision == IN_FLIGHT:
                raise ServiceError(svc.name, "conflict")          # 409: safe to retry
            if decision == CONFLICT:
                raise ServiceError(svc.name, "bad request")       # 422
        order = next(ids)
        tx = db.transaction()
        tx.insert("orders", order, {"key": req.key, "at": env.now})
        try:
            yield from tx.commit(req)
        except ServiceError:
            if keys is not None:
                keys.abandon(req.key, env.now)
            raise
        if keys is not None:
            keys.finish(req.key, order, env.now)
        yield from broker.publish(req, order, {"order": order})   # ship it (the outbox, notebook 13, makes this safe)
        return order
    return handler


@dataclass
class OrderRun:
    """The order endpoint's run: users' requests (route "orders"), the orders placed, parcels shipped."""
    results: Results = field(repr=False)
    keys: IdempotencyKeys | None = field(repr=False)
    orders: list = field(repr=False)          # (order id, key) of every order row
    shipments: int
    slow: tuple

    @property
    def users(self) -> int:
        return len(self.results.only("orders"))

    @property
    def placed(self) -> int:
        return len(self.orders)

    def duplicates(self) -> int:
        """Orders beyond one per user (a key ordered twice counts once extra)."""
        return self.placed - len({key for _, key in self.orders})

    def orders_per_user(self) -> Counter:
        """How many orders each user's key placed (users whose every try failed before the commit: absent)."""
        return Counter(key for _, key in self.orders)

    def users_with_duplicates(self) -> int:
        return sum(1 for n in self.orders_per_user().values() if n > 1)

    def failed_users(self) -> set:
        """The keys of the users who got no answer (an error or a timeout after their last try)."""
        seen = self.results.only("orders")
        return {k for k, ok in zip(seen.key_values, seen.outcome <= Outcome.DEGRADED) if not ok}

    def availability(self, window=None) -> float:
        """Share of the users (whose first try started in ``window``, default all) who got an answer."""
        seen = self.results.only("orders")
        if window is not None:
            try:
                seen = seen.between(*window)
            except ValueError:
                raise ValueError(f"window must lie inside the run [0, {seen.until:g}] s, got {window!r}") from None
        return seen.request_availability()


def order_run(seed: int, *, keys: bool, duration: float = ORDER_DURATION, rate: float = ORDER_RATE,
              slow=SLOW, extra: float = SLOW_EXTRA, retention: float = 86400.0) -> OrderRun:
    """Users POST orders (each with its own key) through a browser that times out after ``USER_TIMEOUT``
    and tries ``USER_ATTEMPTS`` times in all on a timeout or a 409; the orders database is ``extra``
    seconds slower during ``slow``. ``keys``: the handler dedupes with :class:`IdempotencyKeys`."""
    validate.boolean("keys", keys)
    lo, hi = validate.windows("slow", [slow])[0]
    world = World(seed)
    orders_db, shipping_db = Database(world, "orders_db"), Database(world, "shipping_db")
    LatencySpike(orders_db.service, [(lo, hi)], extra=validate.non_negative("extra", extra))
    broker = Broker(world, MessageQueue(visibility_timeout=VISIBILITY))
    Consumer(world, broker, shipping_db, name="shipping", dedupe="transaction", work=0.05, poll_interval=POLL)
    store = IdempotencyKeys(retention=retention) if keys else None
    front = Service(world, "checkout", capacity=10_000, latency=Fixed(FRONT_WORK),
                    handler=place_order_handler(orders_db, broker, store, itertools.count(1)))
    browser = Client(world, front, name="browser", timeout=USER_TIMEOUT,
                     retry=RetryPolicy(USER_ATTEMPTS, ExponentialBackoff(USER_BACKOFF, cap=8.0), retry_on=RETRY_ON))
    OpenLoop(world, browser, validate.positive("rate", rate), duration=validate.positive("duration", duration),
             name="orders", key=_counter())
    results = world.run(duration + 60.0)
    return OrderRun(results, store, [(i, row["key"]) for i, row in orders_db.rows("orders")],
                    len(shipping_db.rows(EFFECTS)), (lo, hi))


# --- pictures -------------------------------------------------------------------------------------------
HTTP_COLOR, MESSAGE_COLOR = "tab:red", "tab:blue"


def shade_outage(ax, run, *, label: str | None = "shipping down") -> None:
    ax.axvspan(*run.outage, color="tab:red", alpha=0.12, lw=0, label=label)


def draw_availability(ax, runs, *, bin_width: float = 30.0, legend: bool = True) -> None:
    """Checkout requests answered per ``bin_width`` s, for each run (HTTP dashed red, message blue)."""
    shade_outage(ax, runs[0], label="shipping down" if legend else None)
    for run in sorted(runs, key=lambda r: r.design == "http"):     # HTTP on top: its dip must show
        q = quality_series(run.results.only("checkout").between(0.0, run.duration), bin_width)
        http = run.design == "http"
        ax.step(q["t"], 100 * q["answered"], where="post", color=HTTP_COLOR if http else MESSAGE_COLOR, lw=2,
                ls="--" if http else "-", label="HTTP call" if http else "message")
    ax.set_xlim(0, runs[0].results.until)
    ax.set_ylim(-3, 105)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("checkout answered (%)")
    if legend:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)


def draw_depth(ax, run: StoryRun, *, predicted: bool = True, label: str | None = "messages waiting") -> None:
    """The queue's depth (visible or in flight) over time; ``predicted``: the catch-up B / (μ − λ) predicts."""
    shade_outage(ax, run, label=None)
    ax.step(run.depth_times, run.depth, where="post", color=MESSAGE_COLOR, lw=1.5, label=label)
    end = run.outage[1] + run.predicted_catch_up()
    if predicted and end < run.results.until:
        ax.axvline(end, color="k", ls=":", lw=1.2, label="caught up, predicted: B / (μ − λ)" if label else None)
    ax.set_xlim(0, run.results.until)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("messages in the queue")


def draw_timeline(ax, run: MessageRun, *, crashes=(), title: str | None = None) -> None:
    """One message's life, a row per kind of event the consumer noted (received, applied, acked, ack
    refused, duplicate skipped), each receive followed by its visibility timeout (shaded), crashes dashed
    and the moment it was dead-lettered (purple)."""
    marks = {"received": ("o", "tab:blue"), "applied": ("s", "tab:green"), "acked": ("^", "k"),
             "ack refused": ("x", "tab:red"), "duplicate skipped": ("D", "tab:orange")}
    rows = [what for what in marks if run.times(what)]
    timeout = run.queue.visibility_timeout
    for j, t in enumerate(run.times("received")):
        ax.broken_barh([(t, timeout)], (-0.25, 0.5), color="tab:blue", alpha=0.15, lw=0,
                       label="invisible: the visibility timeout" if j == 0 else None)
    for i, what in enumerate(rows):
        ts = run.times(what)
        ax.plot(ts, [i] * len(ts), ls="none", marker=marks[what][0], color=marks[what][1], ms=7)
    for j, t in enumerate(crashes):
        ax.axvline(t, color="tab:red", ls="--", lw=1, label="crash" if j == 0 else None)
    dead = run.dlq_alarm_at()
    if not math.isnan(dead):
        ax.axvline(dead, color="tab:purple", lw=2, label="dead-lettered")
    last = max([t for t, _, _ in run.consumer.events] + [dead if not math.isnan(dead) else 0.0] + [1.0])
    ax.set_xlim(-0.02 * last, last * 1.08)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("time (s)")
    if title:
        ax.set_title(title)


# --- the dashboard ----------------------------------------------------------------------------------------
#: The dashboard's run: shipping's database goes down at DASH_START; orders for DASH_DURATION seconds.
DASH_START, DASH_DURATION, DASH_SEED = 30.0, 720.0, 14
DASH_PROBE = 2.0
DASH_TAIL = 30.0
_DASH_RUNS = RunMemo(keep=48)
_DASH_FONT = 8
_BARS = ("redelivered", "duplicates skipped", "dead letters")
_BAR_NAMES = ("redelivered", "copies skipped (idempotent consumer)", "dead letters")


def _dash_pair(outage_s: float, workers: int, visibility_s: float):
    """The HTTP run (which depends on the outage only, so moving the other sliders reuses it) and the
    message run of these settings."""
    common = dict(outage=(DASH_START, DASH_START + float(outage_s)), duration=DASH_DURATION, tail=DASH_TAIL)
    http = _DASH_RUNS.get(("http", float(outage_s)), lambda: story_run(DASH_SEED, design="http", **common))
    message = _DASH_RUNS.get(("message", float(outage_s), int(workers), float(visibility_s)),
                             lambda: story_run(DASH_SEED, design="message", workers=int(workers),
                                               visibility_timeout=float(visibility_s), probe_every=DASH_PROBE,
                                               **common))
    return http, message


def _dash_compute(outage_s, workers, visibility_s, *, panel: str):
    return panel, _dash_pair(outage_s, workers, visibility_s)


def _dash_draw(ax, result) -> None:
    panel, (http, message) = result
    until = message.results.until
    if panel == "users":
        shade_outage(ax, message, label=None)
        for run, color, ls in ((message, MESSAGE_COLOR, "-"), (http, HTTP_COLOR, "--")):
            q = quality_series(run.results.only("checkout").between(0.0, run.duration), 30.0)
            ax.step(q["t"], 100 * q["answered"], where="post", color=color, lw=2, ls=ls)
        ax.set_ylim(-3, 105)
        ax.set_yticks([0, 50, 100])
    elif panel == "queue":
        shade_outage(ax, message, label=None)
        ax.step(message.depth_times, message.depth, where="post", color=MESSAGE_COLOR, lw=1.5)
        end = message.outage[1] + message.predicted_catch_up()
        if end < until:
            ax.axvline(end, color="k", ls=":", lw=1.2)
        ax.set_ylim(0, max(10, int(message.depth.max() * 1.1)))
        ax.yaxis.set_major_locator(MaxNLocator(3, integer=True))
    else:
        counts = message.counts()
        values = [counts[b] for b in _BARS]
        top = max(10, max(values) * 1.15)
        ax.barh(range(len(_BARS)), values, height=0.45, color=["tab:gray", "tab:orange", "tab:purple"])
        for i, (name, value) in enumerate(zip(_BAR_NAMES, values)):     # labels inside: no room on the left
            ax.text(0.02 * top, i + 0.28, f"{name}: {value}", fontsize=_DASH_FONT, va="bottom")
        ax.set_yticks([])              # the numbers are in the labels: no ticks (text is most of a redraw)
        ax.set_xticks([])
        ax.set_ylim(-0.5, len(_BARS) - 0.1)
        ax.set_xlim(0, top)
        ax.title.set_fontsize(_DASH_FONT + 1)
        return
    ax.set_xlim(0, until)
    ax.set_xticks([0, 250, 500, 750])
    ax.set_xlabel("time (s)", fontsize=_DASH_FONT)
    ax.tick_params(labelsize=_DASH_FONT)
    ax.title.set_fontsize(_DASH_FONT + 1)


def _dash_summary(result) -> str:
    panel, (http, message) = result
    if panel == "users":
        return f"answered: HTTP {http.availability():.0%}, message {message.availability():.0%}"
    if panel == "queue":
        up = message.catch_up()
        return (f"caught up {up:.0f} s after the outage" if math.isfinite(up)
                else f"not caught up: {message.queue.waiting} still waiting")
    c = message.counts()
    return f"{c['waiting']} orders still queued at the end, {c['dead letters']} dead letters, {c['dropped']} dropped"


@dashboard("14_messages/outage")
def outage_dashboard() -> Dashboard:
    """Outage length, shipping's workers and the visibility timeout; checkout answered over HTTP and with
    a message, the queue's depth, and redeliveries, copies skipped and dead letters."""
    return Dashboard(
        _dash_compute, _dash_draw,
        [Slider("outage_s", "shipping's database down for", "s", 60, 600, 300, step=30),
         Slider("workers", "shipping workers", "", 1, 4, WORKERS, integer=True),
         Slider("visibility_s", "visibility timeout", "s", 5, 300, VISIBILITY, step=5)],
        variants={"checkout answered (%)": {"panel": "users"},
                  "messages in the queue": {"panel": "queue"},
                  "deliveries": {"panel": "letters"}},
        summary=_dash_summary, figsize=(11.0, 3.2), dpi=72, sharey=False,
        title=f"Orders at {RATE:g}/s; each shipment takes {WORK:g} s of work; maxReceiveCount {MAX_RECEIVES}. "
              "Left: checkout answered, HTTP call (red dashed) and message (blue). Middle: messages waiting; "
              "dotted: the predicted catch-up. Right: redeliveries, copies the idempotent consumer skipped, "
              "dead letters")
