"""Checks for lab 05, the outbox relay and the idempotent consumer.

The application (the course's :class:`~resilience_sim.sim.outbox.OrderApp`, outbox design) writes each
order and its outbox row in one transaction. The learner writes the rest of the write path:

1. ``Relay(ctx, lease=10.0, batch=20)``, a class whose two methods are simpy generators:

   * ``claim()``: select the outbox rows that are unsent (``status == "new"``) and free (``lease_until
     <= now``: never leased, or leased by a relay whose lease has run out), the ``batch`` oldest (by
     ``seq``), and take them with **one conditional update** (``where`` checked at the commit point:
     still new, still free), setting ``lease_owner = ctx.owner`` and ``lease_until = now + lease``;
     return the rows whose update applied, ``[(row_id, row), ...]``, each row with the new lease;
   * ``send(row_id, row)``: publish the row's payload **with the row's id as the message id**, retrying
     after ``ctx.backoff(n)`` seconds (n = 1 before the first retry) while the next try would start
     before ``row["lease_until"]``; **then** mark the row sent and return True; when the lease would
     run out, return False and leave the row unsent (the next claim takes it again).

2. ``handle(ctx, delivery)``, a simpy generator: the effect (``ctx.effect(tx, delivery)``) and the
   message id in table ``processed``, **in one transaction**; a commit refused with "conflict" means
   processed already: return (the message is acknowledged); any other failure goes up (it is not
   acknowledged and comes back).

The lab wires them as the course's relay and consumer are wired (:mod:`resilience_sim.sim.outbox`,
:mod:`resilience_sim.sim.consumer`): each relay and the consumer run in a
:class:`~resilience_sim.sim.crashes.Restartable` that builds a **new** context (and a new ``Relay``)
at every start, so a crash loses everything held in memory; a crash stops the learner's code on the
spot. Every commit, publish and delivery is logged, so a failure is told as a story: what the code did,
what it should have done, and why.

Checks: :func:`claim`, :func:`send` and :func:`handle` with plain states first (a database and a broker
that answer at once, so every time in a message is exact), then targeted crashes in the simulator
(a crash is placed right after the step that matters: found in a first run, then replayed, the
simulation being deterministic); :func:`exactly_once` replays targeted cases and generated fault
schedules against all three pieces and classifies each run with
:func:`~resilience_sim.metrics.checker.check_writes`; a failing schedule is shrunk before it is shown.
"""
from __future__ import annotations

import functools
import inspect
import itertools
import math
import numbers
import random

import simpy

from ..metrics.checker import check_writes
from ..policies import Constant, Exponential, MessageQueue
from ..policies.messaging import Delivery
from ..sim.broker import Broker
from ..sim import crashes as _crashes
from ..sim.crashes import Restartable
from ..sim.database import Database, Transaction
from ..sim.faults import Outage
from ..sim.guard import FrozenClock
from ..sim.outbox import OUTBOX, OrderApp, outbox_row
from ..sim.service import Request, ServiceError
from ..sim.world import World
from ..sim.write_path import Schedule
from . import feedback as fb
from .feedback import Lazy as _Lazy, message_only as _message_only, needs, original_exception as _original

__all__ = ["claim", "send", "handle", "exactly_once", "takeover", "census", "needs", "RelayContext",
           "ConsumerContext", "Schedule", "RUN_LIMIT_S"]

#: Seconds one simulated run of the learner's code may take (a run takes a few hundredths).
RUN_LIMIT_S = 3.0
#: How long after the step that matters a targeted crash comes: inside the reply's latency
#: (0.5 ms), before the code can take its next step.
CRASH_AFTER = 0.00025
EFFECTS, PROCESSED = "effects", "processed"


# --- showing values ---------------------------------------------------------------------------------
def _t(x) -> str:
    """A time as the messages show it: up to 4 decimals, no trailing zeros."""
    if isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x):
        text = f"{float(x):.4f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"
    return repr(x)


def _v(x) -> str:
    return _t(x) if isinstance(x, float) else repr(x)


def _kwargs(kw: dict) -> str:
    return "".join(f", {k}={_v(v)}" for k, v in kw.items())


def _ids(rows) -> str:
    return "[" + ", ".join(repr(i) for i in rows) + "]"


# --- a log of everything durable: commits, publishes, deliveries --------------------------------------
class _Log:
    """Events ``(time, who, kind, row, info)``: ``row`` is the order (outbox row) the event is about."""

    def __init__(self):
        self.events: list = []

    def add(self, time, who, kind, row=None, info=None) -> None:
        self.events.append((time, who, kind, row, info))

    def of(self, *kinds, row=_Lazy, who=None) -> list:
        return [e for e in self.events if e[2] in kinds and (row is _Lazy or e[3] == row)
                and (who is None or e[1] == who)]


def _command_of(body):
    """The order a message body is about (the outbox payload carries it as "command")."""
    if isinstance(body, dict) and "command" in body:
        return body["command"]
    return None


class _Db(Database):
    """A Database that logs every commit at its commit point (and every commit refused on a conflict),
    with the caller (the request's route: the owner of the code that committed)."""

    def __init__(self, world, name: str, log: _Log, **kw):
        super().__init__(world, name, **kw)
        self.log = log
        self._who: dict = {}
        self.commit_log: list = []          # (time, who, tx number, writes) of every commit applied

    def transaction(self) -> "Transaction":
        return _Tx(self, next(self._ids))

    def _apply(self, writes) -> set:
        who, number = self._who.pop(id(writes), ("", 0))
        now = self.env.now
        try:
            applied = super()._apply(writes)
        except ServiceError:
            rows = [_command_of(d.get("body")) if isinstance(d, dict) else None for op, t, i, d, _ in writes
                    if op == "insert" and t == EFFECTS]
            ids = [i for op, t, i, d, _ in writes if op == "insert" and t == PROCESSED]
            self.log.add(now, who, "conflict", rows[0] if rows else (ids[0] if ids else None),
                         {"tx": number, "processed": ids, "db": self.name})
            raise
        self.commit_log.append((now, who, number, list(writes)))
        for op, table, row_id, data, _ in writes:
            if table == OUTBOX and op == "insert":
                self.log.add(now, who, "committed", row_id, None)
            elif table == OUTBOX and op == "update":
                done = (OUTBOX, row_id) in applied
                if "lease_owner" in data or "lease_until" in data:
                    if done:
                        self.log.add(now, who, "claimed", row_id, {"until": data.get("lease_until"),
                                                                   "owner": data.get("lease_owner"), "tx": number})
                elif "status" in data:
                    self.log.add(now, who, "marked" if done else "mark refused", row_id,
                                 {"status": data["status"], "tx": number})
            elif table == EFFECTS and op == "insert":
                body = data.get("body") if isinstance(data, dict) else None
                self.log.add(now, who, "effect", _command_of(body),
                             {"tx": number, "message": data.get("message_id") if isinstance(data, dict) else None})
            elif table == PROCESSED and op == "insert":
                self.log.add(now, who, "processed", None, {"tx": number, "id": row_id})
        return applied


class _Tx(Transaction):
    def commit(self, req: Request | None = None):
        self.db._who[id(self._writes)] = (getattr(req, "route", "") or "", self.number)
        try:
            return (yield from super().commit(req))
        finally:
            self.db._who.pop(id(self._writes), None)


class _Broker(Broker):
    """A Broker that logs every publish (and every publish that failed) with its message id."""

    def __init__(self, world, queue: MessageQueue, log: _Log, **kw):
        super().__init__(world, queue, **kw)
        self.log = log

    def publish(self, req, message_id, body=None):
        who = getattr(req, "route", "") or ""
        try:
            hash(message_id)
        except TypeError:
            raise AssertionError(f"{who}: ctx.broker.publish(ctx.req, {message_id!r}, ...): a message id must be "
                                 f"hashable (a number, a string): publish with the row's id, row_id") from None
        try:
            yield from self._call(req)
        except ServiceError as err:
            self.log.add(self.env.now, who, "publish failed", _command_of(body), {"id": message_id,
                                                                                   "reason": err.reason})
            raise
        self.queue.send(message_id, body, self.env.now)
        self.log.add(self.env.now, who, "published", _command_of(body), {"id": message_id, "body": body})
        yield from self._reply()


# --- what the learner's code is given ----------------------------------------------------------------
class RelayContext:
    """What a relay's code may use; a new one at every start of the relay process.

    ``db`` (the application's Database), ``broker``, ``owner`` (this run of the relay, e.g.
    ``"relay0#2"``: write it as the lease owner), ``now`` (simulated seconds), ``req`` (a new request
    to pass to each call), ``sleep(seconds)`` (an event to ``yield``), ``backoff(n)`` (seconds to wait
    before retry ``n``; 1 = the first retry)."""
    __slots__ = ("db", "broker", "owner", "_env", "_backoff", "_rng")

    def __init__(self, env, db, broker, owner: str, backoff, rng):
        self.db, self.broker, self.owner = db, broker, owner
        self._env, self._backoff, self._rng = env, backoff, rng

    @property
    def now(self) -> float:
        return self._env.now

    @property
    def req(self) -> Request:
        return Request._unchecked(self._env.now, self.owner, None)

    def sleep(self, seconds):
        return _sleep(self._env, seconds)

    def backoff(self, n) -> float:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"ctx.backoff(n) takes the number of the retry, 1 before the first retry (the "
                             f"second try), 2 before the second...; got {n!r}")
        return self._backoff.delay(int(n), self._rng)

    def __repr__(self) -> str:
        return f"RelayContext(owner={self.owner!r}, now={_t(self.now)})"


class ConsumerContext:
    """What the consumer's code may use; a new one at every start of the consumer process.

    ``db`` (the consumer's own Database), ``name``, ``now``, ``req``, and ``effect(tx, delivery)``,
    which adds the message's effect (the order's row in table ``effects``) to the transaction ``tx``."""
    __slots__ = ("db", "name", "_env", "_ids")

    def __init__(self, env, db, name: str, ids):
        self.db, self.name, self._env, self._ids = db, name, env, ids

    @property
    def now(self) -> float:
        return self._env.now

    @property
    def req(self) -> Request:
        return Request._unchecked(self._env.now, self.name, None)

    def sleep(self, seconds):
        return _sleep(self._env, seconds)

    def effect(self, tx, delivery) -> None:
        if not isinstance(tx, Transaction) or tx.db is not self.db:
            raise AssertionError(f"ctx.effect(tx, delivery) takes a transaction of the consumer's database, "
                                 f"tx = ctx.db.transaction(); got {tx!r}")
        if not isinstance(delivery, Delivery):
            raise AssertionError(f"ctx.effect(tx, delivery) takes the delivery handle was given; got {delivery!r}")
        tx.insert(EFFECTS, (self.name, next(self._ids)), {"message_id": delivery.message_id, "body": delivery.body})

    def __repr__(self) -> str:
        return f"ConsumerContext({self.name!r}, now={_t(self.now)})"


def _sleep(env, seconds):
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not math.isfinite(seconds) \
            or seconds < 0:
        raise AssertionError(f"ctx.sleep({seconds!r}): a wait is a number of seconds, 0 or more")
    return env.timeout(float(seconds))


def _is_generator(obj) -> bool:
    return inspect.isgenerator(obj)


def _not_generator(text: str, got) -> AssertionError:
    if got is None or isinstance(got, (list, tuple, bool)):
        what = f"returned {_short(got, 80)}"
    else:
        what = f"returned {_short(got, 80)} ({type(got).__name__})"
    return AssertionError(f"{text} {what} at once, without waiting for anything: it must be a simpy generator, "
                          f"a function that waits for the database and the broker with `yield from` (e.g. "
                          f"`rows = yield from ctx.db.select(ctx.req, 'outbox', where=...)`), then returns its "
                          f"answer with `return`.")


class _Runner:
    """Runs the learner's generators inside simpy processes, as ``yield from`` would, noting the call in
    flight (for the time limit's message); a crash (an Interrupt) stops the learner's code on the spot,
    without running its ``except`` clauses."""

    def __init__(self):
        self.current = None                 # (function name, call text, who, env)

    def note(self, name: str, text: str, who: str, env) -> None:
        self.current = (name, text, who, env)

    def name(self) -> str:
        return self.current[0] if self.current else "your code"

    def text(self) -> str:
        if not self.current:
            return "the simulation"
        name, text, who, env = self.current
        return f"{who}'s {text} (at t = {_t(env.now)} s of the simulation)"

    def run(self, name: str, text: str, who: str, env, make):
        """``yield from self.run(...)``: the value of the learner's generator ``make()``."""
        self.note(name, text, who, env)
        gen = make()
        if not _is_generator(gen):
            raise _not_generator(text, gen)
        send, throw = gen.send, gen.throw
        value, error = None, None
        while True:
            self.note(name, text, who, env)
            try:
                event = throw(error) if error is not None else send(value)
            except StopIteration as stop:
                self.current = None
                return stop.value
            self.current = None
            error = None
            if not isinstance(event, simpy.Event):
                gen.close()
                raise AssertionError(f"{text} yielded {event!r}: yield only ctx.sleep(seconds), and call the "
                                     f"database and the broker with `yield from` (`yield from ctx.db.select(...)`, "
                                     f"`yield from tx.commit(ctx.req)`, `yield from ctx.broker.publish(...)`).")
            try:
                value = yield event
            except simpy.Interrupt as stop:
                if not _crashes.is_crash(stop):     # a service's own interrupt, for its call in flight
                    error = stop
                    continue
                try:
                    gen.close()                 # the process crashed: no more of the learner's code runs
                except RuntimeError:
                    pass
                raise
            except BaseException as exc:  # noqa: B036 - handed on to the learner's code, as yield from does
                error = exc


def _hint(exc) -> str:
    text = str(exc)
    if isinstance(exc, TypeError) and "not iterable" in text and "NoneType" in text:
        return (". Did a function of yours forget `return`? claim returns a list of (row_id, row), send returns "
                "True or False.")
    if isinstance(exc, TypeError) and "argument" in text:
        return (". The task's signatures are Relay(ctx, lease=10.0, batch=20), relay.claim(), relay.send(row_id, "
                "row) and handle(ctx, delivery): compare your def lines with them.")
    if isinstance(exc, KeyError):
        return (". A row of the outbox has the columns key, payload, seq, status, lease_owner and lease_until; "
                "a delivery has message_id, body and receive_count (attributes).")
    if isinstance(exc, AttributeError) and ("Context" in text):
        return (". The context has a fixed set of attributes (db, broker, owner, now, req, sleep, backoff; the "
                "consumer's: db, name, now, req, sleep, effect). Keep your own state in self, or better in the "
                "database: the context is new at every start.")
    if isinstance(exc, ValueError) and "transaction is" in text:
        return ". A transaction commits once: make a new one, tx = ctx.db.transaction(), for each commit."
    return "."


# --- the reference pieces (the solution's), for the checks that test one piece at a time -------------
class _RefRelay:
    def __init__(self, ctx, lease=10.0, batch=20):
        self.ctx, self.lease, self.batch = ctx, lease, batch

    def claim(self):
        ctx = self.ctx
        now = ctx.now
        unsent = yield from ctx.db.select(ctx.req, OUTBOX, where=lambda r: r["status"] == "new")
        free = sorted(((i, r) for i, r in unsent if r["lease_until"] <= now), key=lambda item: item[1]["seq"])
        free = free[:self.batch]
        if not free:
            return []
        until = now + self.lease
        tx = ctx.db.transaction()
        for row_id, _ in free:
            tx.update(OUTBOX, row_id, {"lease_owner": ctx.owner, "lease_until": until},
                      where=lambda r: r["status"] == "new" and r["lease_until"] <= now)
        applied = yield from tx.commit(ctx.req)
        return [(i, {**r, "lease_owner": ctx.owner, "lease_until": until}) for i, r in free if (OUTBOX, i) in applied]

    def send(self, row_id, row):
        return _ref_send(self.ctx, row_id, row)


def _ref_send(ctx, row_id, row):
    retry = 0
    while True:
        try:
            yield from ctx.broker.publish(ctx.req, row_id, row["payload"])
            break
        except ServiceError:
            retry += 1
            wait = ctx.backoff(retry)
            if ctx.now + wait >= row["lease_until"]:
                return False
            yield ctx.sleep(wait)
    tx = ctx.db.transaction()
    tx.update(OUTBOX, row_id, {"status": "sent"})
    yield from tx.commit(ctx.req)
    return True


def _ref_handle(ctx, delivery):
    tx = ctx.db.transaction()
    ctx.effect(tx, delivery)
    tx.insert(PROCESSED, delivery.message_id, {"at": ctx.now})
    try:
        yield from tx.commit(ctx.req)
    except ServiceError as err:
        if err.reason != "conflict":
            raise


def _no_dedupe_handle(ctx, delivery):
    tx = ctx.db.transaction()
    ctx.effect(tx, delivery)
    yield from tx.commit(ctx.req)


def _separate_handle(ctx, delivery):
    if ctx.db.get(PROCESSED, delivery.message_id) is not None:
        return
    tx = ctx.db.transaction()
    ctx.effect(tx, delivery)
    yield from tx.commit(ctx.req)
    mark = ctx.db.transaction()
    mark.insert(PROCESSED, delivery.message_id, {"at": ctx.now})
    yield from mark.commit(ctx.req)


# --- one write path in the simulator --------------------------------------------------------------------
def _check_class(cls, check_name: str) -> None:
    if not isinstance(cls, type):
        raise AssertionError(f"pass the class itself to the check, e.g. check.{check_name}(Relay); got {cls!r}")


def _check_function(fn, check_name: str, what: str = "handle") -> None:
    if isinstance(fn, type) or not callable(fn):
        raise AssertionError(f"pass the function itself to the check, e.g. check.{check_name}({what}); got {fn!r}")


def _rows_of(got, text: str):
    """The learner's claim's answer as a list of (row_id, row), or a message."""
    if got is None:
        raise AssertionError(f"{text} returned None: did you forget `return`? claim returns the rows it claimed, "
                             f"a list of (row_id, row) pairs ([] when there are none).")
    if isinstance(got, (str, bytes, dict)) or not hasattr(got, "__iter__"):
        raise AssertionError(f"{text} returned {got!r}: claim returns a list of (row_id, row) pairs, the rows it "
                             f"claimed ([] when there are none).")
    rows = list(got)
    for item in rows:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], dict)):
            hint = (" It looks like a list of ids: return the rows too, [(row_id, row), ...]."
                    if not isinstance(item, (tuple, list, dict)) else "")
            raise AssertionError(f"{text} returned {_short(rows)}: each item must be a pair (row_id, row), the row "
                                 f"a dict of its columns with your lease.{hint}")
    return rows


def _short(x, limit: int = 120) -> str:
    text = repr(x)
    return text if len(text) <= limit else text[:limit - 5] + " ...]"


def _bool_of(got, text: str, what: str) -> bool:
    if fb.is_bool(got):
        return bool(got)
    hint = " Did you forget `return`?" if got is None else ""
    raise AssertionError(f"{text} returned {got!r}: {what}.{hint}")


_SEND_RETURNS = ("send returns True once the row is published and marked sent, False when the lease would run "
                 "out (the row left unsent for the next claim)")


class _Path:
    """One write path: the course's application (outbox design), ``relays`` relays running
    ``relay_cls`` and one consumer running ``handle``, under ``schedule``; every part logged."""

    def __init__(self, relay_cls, handle, schedule: Schedule = Schedule(), *, relay_kw=None, seed: int = 1,
                 commands: int = 30, every: float = 0.1, keys: int = 5, visibility_timeout: float = 5.0,
                 max_receives: int = 50, backoff=None, until: float = 60.0, restart_after: float = 1.0,
                 relay_poll: float = 1.0, consumer_poll: float = 0.2, runner: _Runner | None = None):
        self.relay_cls, self.handle_fn = relay_cls, handle
        self.schedule, self.relay_kw, self.until = schedule, dict(relay_kw or {}), until
        self.seed, self.visibility_timeout = seed, visibility_timeout
        self.runner = runner or _Runner()
        self.log = _Log()
        world = self.world = World(seed)
        self.env = world.env
        self.db = _Db(world, "app_db", self.log)
        self.cdb = _Db(world, "consumer_db", self.log)
        self.broker = _Broker(world, MessageQueue(visibility_timeout=visibility_timeout, max_receives=max_receives),
                              self.log)
        for part, windows in ((self.db.service, schedule.db), (self.broker.service, schedule.broker),
                              (self.cdb.service, schedule.consumer_db)):
            if windows:
                Outage(part, list(windows))
        self.backoff = backoff if backoff is not None else Exponential(0.1, cap=5.0)
        self.relay_poll, self.consumer_poll = relay_poll, consumer_poll
        self.app = OrderApp(world, self.db, self.broker, "outbox", range(commands), every=every,
                            crashes=schedule.app, keys=lambda c: c % keys)
        self._effect_ids = itertools.count(1)
        self.relays = [Restartable(world, f"relay{i}", functools.partial(self._relay_life, i), crashes=crashes,
                                   restart_after=restart_after) for i, crashes in enumerate(schedule.relays)]
        self.consumer = Restartable(world, "consumer", self._consumer_life, crashes=schedule.consumer,
                                    restart_after=restart_after)

    # --- the processes ---------------------------------------------------------------------------
    def _relay_life(self, i: int):
        env, run = self.env, self.runner
        owner = f"relay{i}#{self.relays[i].starts}"
        self.log.add(env.now, owner, "started")
        ctx = RelayContext(env, self.db, self.broker, owner, self.backoff, self.world.rng(f"lab05/{owner}"))
        made = f"Relay(ctx{_kwargs(self.relay_kw)})"
        run.note(f"{self.relay_cls.__name__}.__init__", made, owner, env)
        relay = self.relay_cls(ctx, **self.relay_kw)
        claim_fn, send_fn = _method(relay, "claim"), _method(relay, "send")
        while True:
            try:
                got = yield from run.run(f"{self.relay_cls.__name__}.claim", "relay.claim()", owner, env, claim_fn)
                rows = _rows_of(got, f"{owner}'s relay.claim() (at t = {_t(env.now)} s)")
                for row_id, row in rows:
                    text = f"relay.send({row_id!r}, row)"
                    ok = yield from run.run(f"{self.relay_cls.__name__}.send", text, owner, env,
                                            lambda: send_fn(row_id, row))
                    if not _bool_of(ok, f"{owner}'s {text} (at t = {_t(env.now)} s)", _SEND_RETURNS):
                        break
            except ServiceError:
                rows = ()
            if not rows:
                yield env.timeout(self.relay_poll)

    def _consumer_life(self):
        env, run, broker = self.env, self.runner, self.broker
        who = f"consumer#{self.consumer.starts}"
        self.log.add(env.now, who, "started")
        ctx = ConsumerContext(env, self.cdb, who, self._effect_ids)
        while True:
            try:
                delivery = yield from broker.receive(ctx.req)
                if delivery is None:
                    yield env.timeout(self.consumer_poll)
                    continue
                row = _command_of(delivery.body)
                self.log.add(env.now, who, "received", row, {"id": delivery.message_id,
                                                             "count": delivery.receive_count})
                text = f"handle(ctx, {_delivery(delivery)})"
                try:
                    yield from run.run(getattr(self.handle_fn, "__name__", "handle"), text, who, env,
                                       lambda: self.handle_fn(ctx, delivery))
                except ServiceError as err:
                    self.log.add(env.now, who, "handle raised", row, {"id": delivery.message_id, "reason": err.reason})
                    raise
                self.log.add(env.now, who, "handled", row, {"id": delivery.message_id})
                done = yield from broker.ack(ctx.req, delivery.receipt)
                self.log.add(env.now, who, "acked" if done else "ack refused", row, {"id": delivery.message_id})
            except ServiceError:
                yield env.timeout(self.consumer_poll)

    # --- running and judging ------------------------------------------------------------------------
    def run(self) -> "_Path":
        run = self.runner

        def hint(exc) -> str:
            if isinstance(exc, FrozenClock):
                return (". Your code loops without simulated time passing (a wait of 0 s, or none, between two "
                        "tries?): wait ctx.backoff(n) seconds between tries, and give up when the lease would run "
                        "out.")
            return _hint(exc)
        with fb.learner_code(_Lazy(run.name), _Lazy(run.text), hint, stuck=_Lazy(self._stuck), limit=RUN_LIMIT_S):
            try:
                stop = 0.0
                while stop < self.until:        # in steps, to stop early once everything has settled
                    stop = min(self.until, stop + 5.0 if stop < 20.0 else stop + 10.0)
                    self.world.run(stop)
                    if self.quiet():
                        break
            except BaseException as exc:  # noqa: B036 - the time limit's stop too
                raise _original(exc) from None
        return self

    def quiet(self) -> bool:
        """Nothing left to happen: the app is done, every outbox row is sent, no message waits."""
        return (len(self.app.attempted) >= len(self.app.commands) and self.broker.queue.waiting == 0
                and all(r["status"] == "sent" for _, r in self.db.rows(OUTBOX)))

    def _stuck(self) -> str:
        name = self.runner.name()
        if "send" in name:
            return ("a loop with no end in send? A publish that fails fails at once while the broker is down: "
                    "wait ctx.backoff(n) seconds between tries (yield ctx.sleep(wait)), and stop when the next try "
                    "would start at or after row['lease_until'].")
        if "claim" in name:
            return "a loop with no end in claim? Select once, update once, commit once, return the rows."
        return ("a loop with no end in your handle? Commit once: a conflict means processed already (return), any "
                "other failure goes up (raise).")

    @functools.cached_property
    def verdict(self):
        effects = [_command_of(row.get("body")) for _, row in self.cdb.rows(EFFECTS)]
        return check_writes(attempted=self.app.attempted, acknowledged=self.app.acknowledged,
                            committed=[i for i, _ in self.db.rows("orders")], effects=effects)

    @property
    def unsent(self) -> list:
        return [i for i, r in self.db.rows(OUTBOX) if r["status"] != "sent"]

    @property
    def dropped(self) -> int:
        q = self.broker.queue
        return q.dropped + q.waiting + len(q.dead_letters)

    @property
    def ok(self) -> bool:
        v = self.verdict
        return v.exactly_once and not self.unsent and not self.dropped

    def crashes(self) -> list:
        """(time, process) of every scheduled crash."""
        out = [(t, "app") for t in self.schedule.app] + [(t, "consumer") for t in self.schedule.consumer]
        for i, times in enumerate(self.schedule.relays):
            out += [(t, f"relay{i}") for t in times]
        return sorted(out)

    # --- telling what happened -------------------------------------------------------------------
    def story(self, row, last: int = 24) -> str:
        """The events of one order, with the faults, in time order."""
        lines = []
        for t, who, kind, r, info in self.log.events:
            if r != row and not (kind == "processed" and info and _same_id(info.get("id"), row)):
                if kind != "started":
                    continue
            text = _event_text(who, kind, r, info)
            if text:
                lines.append((t, text))
        for t, part in self.crashes():
            lines.append((t, f"{part} crashed"))
        for name, windows in (("app_db", self.schedule.db), ("broker", self.schedule.broker),
                              ("consumer_db", self.schedule.consumer_db)):
            for start, end in windows:
                lines.append((start, f"{name} down until {_t(end)} s"))
        lines.sort(key=lambda item: item[0])
        shown = [f"{_t(t):>8} s  {text}" for t, text in lines]
        if len(shown) > last:
            head = last // 2 - 1
            shown = shown[:head] + [f"    ... {len(shown) - last + 1} more ..."] + shown[-(last - head - 1):]
        return f"What happened to order {row!r} (with the crashes and outages):\n    " + "\n    ".join(shown)

    def diagnose(self) -> tuple:
        """(what went wrong, the order to tell the story of), or (None, None) when the run is right."""
        v, log = self.verdict, self.log
        published = log.of("published")
        fresh = [e for e in published if e[3] is not None and e[4]["id"] != e[3]]
        if fresh:
            rows = [e[3] for e in fresh]
            row = next((r for r in rows if r in v.duplicated), rows[0])
            mine = [e for e in published if e[3] == row]
            ids = sorted({e[4]["id"] for e in mine}, key=repr)
            told = ", ".join(f"{who} at {_t(t)} s as {info['id']!r}" for t, who, _, _, info in mine)
            if row in v.duplicated:
                head = (f"order {row!r} reached the consumer {_times_word(v.duplicated[row])} with different ids "
                        f"({', '.join(repr(i) for i in ids)}): row {row!r} was published by {told}, and the consumer "
                        f"took each copy for a new message. ")
            else:
                head = f"row {row!r} was published by {told}, not as message {row!r}. "
            return (head + "Publish with the row's id (row_id), not a fresh one: the consumer dedupes by message "
                    "id, and a row published twice (after a crash between publish and mark, or a lease taken over) "
                    "must carry the same id both times."), row
        for row in v.lost:
            why = self._why_lost(row)
            if why:
                return why, row
        for row, n in v.duplicated.items():
            return self._why_duplicated(row, n), row
        if v.unexpected:
            row = v.unexpected[0]
            return (f"Order {row!r} took effect although it was never committed: publish only the outbox's rows, "
                    f"with their payload."), row
        if self.unsent:
            row = self.unsent[0]
            sends = len(log.of("published", row=row))
            state = self.db.get(OUTBOX, row)
            return (f"At the end (t = {_t(self.until)} s), row {row!r} of the outbox is still "
                    f"{state['status']!r}, although it was published {sends} time{'s' * (sends != 1)}: send must "
                    f"mark the row sent after publishing it (tx.update('outbox', row_id, {{'status': 'sent'}}) "
                    f"and commit), or every claim publishes it again."), row
        if self.dropped:
            q = self.broker.queue
            dead = [m for m, _, _ in q.dead_letters]
            row = _command_of(q.dead_letters[0][1]) if q.dead_letters else None
            raised = log.of("handle raised")
            if raised:
                t, who, _, r, info = raised[-1]
                row = r if row is None else row
                return (f"{len(dead) or q.waiting} message(s) were never acknowledged: your handle raised "
                        f"ServiceError({info['reason']!r}) each time, so the broker delivered them again and again"
                        + (", then put them in its dead letters" if dead else "")
                        + (". A conflict means processed already: catch it and return, so that the copy is "
                           "acknowledged." if info["reason"] == "conflict" else ".")), row
            return (f"{q.waiting} message(s) were still waiting at the end, never acknowledged; "
                    f"{len(dead)} dead-lettered."), row
        return None, None

    def _why_lost(self, row):
        log = self.log
        marks = [e for e in log.of("marked", row=row) if e[4]["status"] == "sent"]
        pubs, fails = log.of("published", row=row), log.of("publish failed", row=row)
        claims = log.of("claimed", row=row)
        if marks and (not pubs or pubs[0][0] > marks[0][0]):
            t, who = marks[0][0], marks[0][1]
            tried = [e for e in fails if e[1] == who and e[0] <= t]
            if tried:
                return (f"{who} tried to publish row {row!r} {len(tried)} time{'s' * (len(tried) > 1)} (from "
                        f"{_t(tried[0][0])} s to {_t(tried[-1][0])} s, the broker down), then marked it sent at "
                        f"{_t(t)} s without having published it: order {row!r} never reached the consumer (lost), "
                        f"and no dead letter says so. Giving up after a fixed number of tries drops the message: "
                        f"retry while the lease lasts, then return False and leave the row unsent, so that the "
                        f"next claim takes it again.")
            crash = [c for c, part in self.crashes() if part == who.split("#")[0] and c >= t]
            after = f", and {who.split('#')[0]} crashed at {_t(crash[0])} s before publishing it" if crash else ""
            return (f"{who} marked row {row!r} sent at {_t(t)} s before publishing it{after}: nobody ever "
                    f"published it, and order {row!r} never reached the consumer (lost). Publish first, then mark: "
                    f"a crash between the two then publishes it twice (the consumer dedupes), never zero times.")
        if not pubs:
            if claims:
                t, who, _, _, info = claims[-1]
                until = info["until"]
                if isinstance(until, numbers.Real) and until < self.until:
                    return (f"{who} claimed row {row!r} at {_t(t)} s (lease until {_t(until)} s), and never "
                            f"published it (it crashed, or gave up); its lease expired at {_t(until)} s, and no "
                            f"relay claimed the row again, so order {row!r} never reached the consumer (lost). A "
                            f"relay that never reclaims an expired lease loses the rows of a relay that crashed: "
                            f"claim the rows whose lease has run out (lease_until <= now), not only the rows "
                            f"nobody ever leased.")
                return (f"{who} claimed row {row!r} at {_t(t)} s with a lease until {_v(until)}, which never "
                        f"ran out before the end: set lease_until = now + lease (seconds).")
            return (f"No relay ever claimed row {row!r} (committed by the app), so order {row!r} never reached "
                    f"the consumer (lost): claim every unsent row whose lease has run out, oldest first.")
        got = log.of("handled", row=row)
        if got:
            t, who = got[0][0], got[0][1]
            down = [w for w in self.schedule.consumer_db if w[0] <= t <= w[1]]
            if down:
                return (f"The consumer received order {row!r} at {_t(t)} s, while consumer_db was down (from "
                        f"{_t(down[0][0])} s to {_t(down[0][1])} s), and your handle returned normally although "
                        f"its commit had failed; the message was acknowledged, and its effect never applied (lost). "
                        f"Only a 'conflict' means processed already: let any other ServiceError go up (raise), so "
                        f"that the message is not acknowledged and comes back.")
            return (f"{who}'s handle returned normally for order {row!r} at {_t(t)} s without committing its effect, "
                    f"although this run's consumer_db had no record of it; the message was acknowledged, and its "
                    f"effect never applied (lost). Does your dedupe remember ids in Python memory (a global, a default "
                    f"argument, a class attribute)? That memory outlives a run and is lost in a real crash: record "
                    f"the message id in table processed, in the effect's transaction.")
        return None

    def _why_duplicated(self, row, n):
        log = self.log
        effects = log.of("effect", row=row)
        ids = {e[4]["message"] for e in effects}
        mid = effects[0][4]["message"] if effects else row
        processed = [e for e in log.of("processed") if _same_id(e[4]["id"], mid)]
        crashes = [c for c, part in self.crashes() if part == "consumer"]
        after = [c for c in crashes if effects and c >= effects[0][0]]
        crash = f" (the consumer crashed at {_t(after[0])} s)" if after else ""
        if len(ids) > 1:
            return (f"Order {row!r} took effect {n} times, as messages {', '.join(repr(i) for i in sorted(ids, key=repr))}: "
                    f"publish with the row's id.")
        if not processed:
            return (f"Order {row!r} took effect {_times_word(n)}: message {mid!r} was delivered "
                    f"{_times_word(len(log.of('received', row=row)))}{crash}, and your handle applied it each time; table processed never got its id. No "
                    f"dedupe: delivery is at least once, so insert the message id into processed in the effect's "
                    f"transaction; a second copy's commit then fails with 'conflict'.")
        same = {e[4]["tx"] for e in effects} & {e[4]["tx"] for e in processed}
        if not same:
            return (f"Order {row!r} took effect {_times_word(n)}{crash}: your handle committed the effect and the processed "
                    f"id in two transactions, and the copy delivered after the crash between the two took effect "
                    f"again. Dedupe outside the effect's transaction is not enough: insert both in one transaction, "
                    f"one commit.")
        return f"Order {row!r} took effect {n} times{crash}."


def _times_word(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _same_id(a, b) -> bool:
    try:
        return a == b
    except Exception:  # noqa: BLE001
        return False


def _delivery(d) -> str:
    return f"<message {d.message_id!r}, receive {d.receive_count}>"


def _event_text(who, kind, row, info) -> str:
    if kind == "committed":
        return f"app committed order {row!r} and its outbox row"
    if kind == "claimed":
        return f"{who} claimed row {row!r} (lease until {_v(info['until'])} s)"
    if kind == "marked":
        return f"{who} marked row {row!r} {info['status']!r}"
    if kind == "published":
        return f"{who} published row {row!r} as message {info['id']!r}"
    if kind == "publish failed":
        return f"{who} tried to publish row {row!r} ({info['reason']})"
    if kind == "received":
        return f"{who} received message {info['id']!r} (receive {info['count']})"
    if kind == "effect":
        return f"{who} committed the effect of message {info['message']!r} (transaction {info['tx']})"
    if kind == "processed":
        return f"{who} committed processed id {info['id']!r} (transaction {info['tx']})"
    if kind == "conflict":
        return f"{who}'s commit refused: 'conflict' (processed already)"
    if kind == "handled":
        return f"{who}'s handle returned"
    if kind == "handle raised":
        return f"{who}'s handle raised ServiceError({info['reason']!r})"
    if kind in ("acked", "ack refused"):
        return f"{who} {kind} message {info['id']!r}"
    if kind == "started":
        return f"{who} started" if "#1" not in who else ""
    return ""


def _first(path: _Path, kinds, row, who_prefix: str):
    for t, who, kind, r, info in path.log.events:
        if kind in kinds and r == row and who.startswith(who_prefix):
            return t
    return None


def _targeted(relay_cls, handle_fn, *, after, row, who: str, process: str, base: Schedule = Schedule(),
              **kw) -> tuple:
    """Run once to find when ``who`` first does one of ``after`` for ``row``; then run again with a crash of
    ``process`` right after it. Returns (the second run, the crash time) or (the first run, None) when the
    step never happened."""
    first = _Path(relay_cls, handle_fn, base, **kw).run()
    at = _first(first, after, row, who)
    if at is None:
        return first, None
    crash = at + CRASH_AFTER
    relays = base.relays
    app, consumer = list(base.app), list(base.consumer)
    if process == "consumer":
        consumer.append(crash)
    else:
        index = int(process[len("relay"):])
        relays = tuple(tuple(r) + ((crash,) if i == index else ()) for i, r in enumerate(relays))
    schedule = Schedule(app=app, relays=relays, consumer=consumer, db=base.db, broker=base.broker,
                        consumer_db=base.consumer_db)
    return _Path(relay_cls, handle_fn, schedule, **kw).run(), crash


def _fail_run(path: _Path, head: str) -> None:
    why, row = path.diagnose()
    if why is None:
        v = path.verdict
        why, row = f"the checker says: {v}.", (v.lost or v.unexpected or list(v.duplicated) or [None])[0]
    if len(why) > 1 and why[0].isupper() and why[1].islower():
        why = why[0].lower() + why[1:]
    raise AssertionError(f"{head}: {why}\n{path.story(row) if row is not None else ''}".rstrip())


# --- plain states: a database and a broker that answer at once ---------------------------------------
class _Bench:
    """A world for plain cases: an app database, a broker and a consumer database with no latency, so
    that every time in a message is exact."""

    def __init__(self, *, backoff=None, broker_down=(), cdb_down=(), latency: float = 0.0):
        self.world = World(seed=5)
        self.env = self.world.env
        self.log = _Log()
        self.db = _Db(self.world, "app_db", self.log, latency=latency, reply_latency=0.0)
        self.cdb = _Db(self.world, "consumer_db", self.log, latency=0.0, reply_latency=0.0)
        self.broker = _Broker(self.world, MessageQueue(visibility_timeout=30.0), self.log, latency=0.0,
                              reply_latency=0.0)
        if broker_down:
            Outage(self.broker.service, list(broker_down))
        if cdb_down:
            Outage(self.cdb.service, list(cdb_down))
        self.backoff = backoff if backoff is not None else Exponential(0.5, cap=4.0)
        self.starts: dict = {}
        self.effect_ids = itertools.count(1)
        self.runner = _Runner()

    def relay_ctx(self, name: str = "relay0") -> RelayContext:
        n = self.starts[name] = self.starts.get(name, 0) + 1
        return RelayContext(self.env, self.db, self.broker, f"{name}#{n}", self.backoff, random.Random(0))

    def consumer_ctx(self) -> ConsumerContext:
        n = self.starts["consumer"] = self.starts.get("consumer", 0) + 1
        return ConsumerContext(self.env, self.cdb, f"consumer#{n}", self.effect_ids)

    def put(self, rows: dict) -> None:
        """Commit outbox rows (row id -> changes to a new row) now."""
        def setup():
            tx = self.db.transaction()
            for i, (row_id, changes) in enumerate(rows.items()):
                tx.insert(OUTBOX, row_id, {**outbox_row(row_id % 5, {"key": row_id % 5, "seq": i + 1,
                                                                       "command": row_id}, i + 1), **changes})
            yield from tx.commit(None)
        self.env.run(until=self.env.process(setup()))

    def go(self, at: float, calls, *, hint=_hint, stuck: str = "") -> list:
        """Start each of ``calls`` ((name, text, who, make)) at time ``at``, each in its own process, and run
        until they are all done; their values, in order."""
        if at > self.env.now:
            self.env.run(until=at)
        values: list = [None] * len(calls)

        def one(k, name, text, who, make):
            values[k] = yield from self.runner.run(name, text, who, self.env, make)
        procs = [self.env.process(one(k, *call)) for k, call in enumerate(calls)]
        run = self.runner
        with fb.learner_code(_Lazy(run.name), _Lazy(lambda: f"{run.current[1]} (at t = {_t(self.env.now)} s)"
                                                     if run.current else "your code"),
                             hint, stuck=stuck or _STUCK_PLAIN):
            try:
                self.env.run(until=self.env.all_of(procs))
            except BaseException as exc:  # noqa: B036 - the time limit's stop too
                raise _original(exc) from None
        return values

    def outbox(self) -> dict:
        return dict(self.db.rows(OUTBOX))

    def effects(self) -> list:
        return [row["message_id"] for _, row in self.cdb.rows(EFFECTS)]


_STUCK_PLAIN = ("a loop with no end, or a wait? Each call does a few database or broker calls and returns: "
                "no loop waiting for time to pass, no time.sleep (wait with `yield ctx.sleep(seconds)`).")


def _table(rows: dict, now: float) -> str:
    lines = []
    for row_id, r in rows.items():
        free = "free" if r["lease_until"] <= now else "leased"
        lines.append(f"row {row_id!r}: seq {r['seq']}, status {r['status']!r}, lease_owner {r['lease_owner']!r}, "
                     f"lease_until {_v(r['lease_until'])} ({free if r['status'] == 'new' else 'sent'})")
    return "    " + "\n    ".join(lines)


def _make_relay(cls, ctx, kw: dict):
    made = f"Relay(ctx{_kwargs(kw)})"

    def hint(exc) -> str:
        if isinstance(exc, TypeError):
            try:
                params = inspect.signature(cls).parameters
            except (TypeError, ValueError):
                params = {}
            missing = [p for p in ("lease", "batch") if p in params and
                       params[p].default is inspect.Parameter.empty]
            if not kw and missing:
                return (f". The lab builds Relay(ctx) with the context alone (the cells below this check do), so "
                        f"__init__ needs the task's defaults: def __init__(self, ctx, lease=10.0, batch=20); yours "
                        f"has none for {' and '.join(missing)}.")
            return (". Relay takes (ctx, lease=10.0, batch=20), by these names: compare your def line with the "
                    "task's.")
        return _hint(exc)
    with fb.learner_code(f"{cls.__name__}.__init__", made, hint):
        return cls(ctx, **kw)


# --- task 1: claim ------------------------------------------------------------------------------------
def _method(relay, name: str):
    fn = getattr(relay, name, None)
    if not callable(fn):
        raise AssertionError(f"your {type(relay).__name__} has no method {name}(): the task asks for claim() and "
                             f"send(row_id, row)")
    return fn


def _claim_call(relay, ctx):
    return (f"{type(relay).__name__}.claim", "relay.claim()", ctx.owner, _method(relay, "claim"))


def _expect_claim(bench, relay, ctx, kw, at, want, *, before: dict):
    """Run one claim at ``at`` and compare with ``want`` (the row ids it must take)."""
    lease = kw.get("lease", 10.0)
    text = f"relay.claim() at t = {_t(at)}, with Relay(ctx{_kwargs(kw)}) (owner {ctx.owner!r})"
    got = bench.go(at, [_claim_call(relay, ctx)])[0]
    rows = _rows_of(got, text)
    ids = [i for i, _ in rows]
    after = bench.outbox()
    shown = f"\nThe outbox before the call:\n{_table(before, at)}"
    batch = kw.get("batch", 20)
    if sorted(ids, key=repr) != sorted(want, key=repr) or len(set(map(repr, ids))) != len(ids):
        extra = [i for i in ids if i not in want]
        missing = [i for i in want if i not in ids]
        said = f"{text} returned rows {_ids(ids)}; expected {_ids(want)}."
        if len(set(map(repr, ids))) != len(ids):
            raise AssertionError(f"{said} It returned a row twice: return each claimed row once.{shown}")
        for i in extra:
            r = before.get(i)
            if r is None:
                raise AssertionError(f"{said} There is no row {i!r} in the outbox.{shown}")
            if r["status"] != "new":
                raise AssertionError(f"{said} Row {i!r} is {r['status']!r} already: claim only unsent rows "
                                     f"(status 'new').{shown}")
            if r["lease_until"] > at:
                changed = (after[i]["lease_owner"], after[i]["lease_until"]) != (r["lease_owner"], r["lease_until"])
                if changed:
                    raise AssertionError(f"{said} Row {i!r} was leased to {r['lease_owner']!r} until "
                                         f"{_v(r['lease_until'])}, after now, and your claim took it anyway: a relay "
                                         f"holds it. Claim only the rows whose lease has run out (lease_until <= "
                                         f"now), in the select and in the update's where.{shown}")
                mine = (" Do you keep the claimed rows in a list that grows (or in a class attribute, one list for "
                        "all relays)? Return the rows this call claimed, and only those." if r["lease_owner"] ==
                        ctx.owner else "")
                raise AssertionError(f"{said} This call did not claim row {i!r}: it is leased to "
                                     f"{r['lease_owner']!r} until {_v(r['lease_until'])}, as before the call. Return "
                                     f"only the rows whose update applied in this claim.{mine}{shown}")
        if len(ids) > batch:
            raise AssertionError(f"{said} batch={batch}: claim at most batch rows at a time; yours took {len(ids)}. "
                                 f"A parameter ignored? Use self.batch.{shown}")
        r = before[missing[0]]
        if r["lease_owner"] is not None and _close(r["lease_until"], at):
            raise AssertionError(f"{said} Off by one: row {missing[0]!r}'s lease ran until {_v(r['lease_until'])}, "
                                 f"exactly now, so it has run out: a lease frees the row from lease_until on "
                                 f"(lease_until <= now, not <).{shown}")
        if r["lease_owner"] is not None and r["lease_until"] < at:
            raise AssertionError(f"{said} Row {missing[0]!r} was leased to {r['lease_owner']!r} until "
                                 f"{_v(r['lease_until'])}, which has passed: that relay crashed or gave up, and the "
                                 f"row is free again. A relay that never reclaims an expired lease loses every row a "
                                 f"crashed relay held: claim the rows whose lease has run out (lease_until <= now), "
                                 f"not only the rows nobody ever leased.{shown}")
        if len(ids) < min(batch, len(want) + len(extra)):
            raise AssertionError(f"{said} batch={batch} allows {min(batch, len(want))} rows here; yours took "
                                 f"{len(ids)}. Is batch kept in a class attribute (Relay.batch = ...), shared by every "
                                 f"relay, which a Relay(ctx, batch=1) made since has changed? Keep it in self.{shown}")
        newer = [i for i in ids if before[i]["seq"] > r["seq"]]
        if newer:
            raise AssertionError(f"{said} Claim the oldest rows first (smallest seq): row {missing[0]!r} has seq "
                                 f"{r['seq']}, row {newer[0]!r} seq {before[newer[0]]['seq']}.{shown}")
        raise AssertionError(f"{said} Row {missing[0]!r} is unsent and free: claim it.{shown}")
    for i, row in rows:
        committed = after[i]
        if committed["lease_owner"] != ctx.owner:
            raise AssertionError(f"{text} returned row {i!r}, but in the database it is leased to "
                                 f"{committed['lease_owner']!r}, not to {ctx.owner!r}: write your lease into the row "
                                 f"(tx.update('outbox', row_id, {{'lease_owner': ctx.owner, 'lease_until': ...}}) and "
                                 f"commit).{shown}")
        want_until = at + lease
        if not _close(committed["lease_until"], want_until):
            got_until = committed["lease_until"]
            why = ""
            if isinstance(got_until, numbers.Real) and _close(got_until - at, 10.0) and lease != 10.0:
                why = f" That is now + 10: lease={_v(lease)} was ignored; use self.lease."
            elif isinstance(got_until, numbers.Real) and _close(got_until, lease):
                why = " That is the lease alone: lease_until is a time, now + lease."
            raise AssertionError(f"{text} set row {i!r}'s lease_until to {_v(got_until)}; expected now + lease = "
                                 f"{_t(at)} + {_v(lease)} = {_v(want_until)}.{why}{shown}")
        if row.get("lease_owner") != ctx.owner or not _close(row.get("lease_until"), want_until):
            raise AssertionError(f"{text} returned row {i!r} as {_short(row)}: return each row as it is now, with "
                                 f"your lease (lease_owner {ctx.owner!r}, lease_until {_v(want_until)}): send reads "
                                 f"row['lease_until'] to know when to give up.{shown}")
    for i, r in after.items():
        if i not in ids and (r["lease_owner"] != before[i]["lease_owner"] or r["lease_until"] != before[i]["lease_until"]):
            raise AssertionError(f"{text} changed the lease of row {i!r} (now {r['lease_owner']!r} until "
                                 f"{_v(r['lease_until'])}) but did not return it: take the lease only of the rows you "
                                 f"claim, and return them all.{shown}")
    return rows


def _close(a, b) -> bool:
    return (isinstance(a, numbers.Real) and not isinstance(a, bool) and isinstance(b, numbers.Real)
            and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9))


def _claim_defaults(cls):
    bench = _Bench()
    bench.put({i: {} for i in range(5)})
    ctx = bench.relay_ctx()
    relay = _make_relay(cls, ctx, {})
    before = bench.outbox()
    _expect_claim(bench, relay, ctx, {}, 1.0, list(range(5)), before=before)
    before = bench.outbox()
    _expect_claim(bench, relay, ctx, {}, 2.0, [], before=before)


def _claim_states(cls):
    bench = _Bench()
    bench.put({0: {"status": "sent", "lease_owner": "relay9#1", "lease_until": 2.0},
               1: {"lease_owner": "relay9#1", "lease_until": 50.0},
               2: {"lease_owner": "relay9#1", "lease_until": 5.0},
               3: {},
               4: {"lease_owner": "relay8#3", "lease_until": 6.0},
               5: {"status": "sent"}})
    kw = dict(lease=3.0)
    ctx = bench.relay_ctx()
    relay = _make_relay(cls, ctx, kw)
    _expect_claim(bench, relay, ctx, kw, 6.0, [2, 3, 4], before=bench.outbox())


def _claim_batch(cls):
    bench = _Bench()
    # seq order (16, 15, 13, 11, 10, 14, 12) is neither the row ids' order nor the order the rows were inserted in
    bench.put({13: {"seq": 3}, 10: {"seq": 5}, 16: {"seq": 1}, 11: {"seq": 4}, 15: {"seq": 2}, 12: {"seq": 7},
               14: {"seq": 6}})
    kw, kw1 = dict(lease=25.0, batch=2), dict(lease=25.0, batch=1)
    ctx, other = bench.relay_ctx(), bench.relay_ctx("relay1")
    relay = _make_relay(cls, ctx, kw)
    one = _make_relay(cls, other, kw1)            # made before the first relay claims: its settings are its own
    _expect_claim(bench, relay, ctx, kw, 2.0, [16, 15], before=bench.outbox())
    _expect_claim(bench, relay, ctx, kw, 3.0, [13, 11], before=bench.outbox())
    _expect_claim(bench, one, other, kw1, 4.0, [10], before=bench.outbox())


def _claim_race(cls):
    """Two relays claim the same rows at the same instant: a row goes to one of them only (the database
    takes 1 ms a call here, so that the two claims overlap)."""
    bench = _Bench(latency=0.001)
    bench.put({i: {} for i in range(6)})
    kw = dict(lease=10.0, batch=20)
    a, b = bench.relay_ctx("relay0"), bench.relay_ctx("relay1")
    ra, rb = _make_relay(cls, a, kw), _make_relay(cls, b, kw)
    before = bench.outbox()
    got = bench.go(1.0, [_claim_call(ra, a), _claim_call(rb, b)])
    rows_a = _rows_of(got[0], "relay0's relay.claim() at t = 1")
    rows_b = _rows_of(got[1], "relay1's relay.claim() at t = 1")
    after = bench.outbox()
    ids_a, ids_b = [i for i, _ in rows_a], [i for i, _ in rows_b]
    both = [i for i in ids_a if i in ids_b]
    head = (f"Two relays, relay0 (owner {a.owner!r}) and relay1 (owner {b.owner!r}), called relay.claim() at the same "
            f"instant, t = 1, on 6 free rows: relay0's returned rows {_ids(ids_a)}, relay1's {_ids(ids_b)}.")
    if both:
        shared = (" Or do your relays share state through a class attribute? A list or dict written in the class "
                  "body is one for all instances: set it in __init__ (self....).")
        raise AssertionError(f"{head} Both claimed row {both[0]!r}: two relays would publish it side by side. Take the "
                             f"lease with a conditional update, where=lambda r: r['status'] == 'new' and "
                             f"r['lease_until'] <= now, which the database checks at the commit point: of two relays "
                             f"claiming at once, the second finds the row leased and its update does not apply; "
                             f"return only the rows whose update applied (the set tx.commit returns)." + shared)
    for owner, ids in ((a.owner, ids_a), (b.owner, ids_b)):
        for i in ids:
            if after[i]["lease_owner"] != owner:
                raise AssertionError(f"{head} {owner} returned row {i!r}, but the database says "
                                     f"{after[i]['lease_owner']!r} holds it: return only the rows whose conditional "
                                     f"update applied (the set tx.commit returns).")
    if sorted(ids_a + ids_b) != list(range(6)):
        missing = sorted(set(range(6)) - set(ids_a + ids_b))
        raise AssertionError(f"{head} Nobody claimed row {missing[0]!r}, which was free.\nThe outbox before:\n"
                             f"{_table(before, 1.0)}")


def _claim_cases(cls) -> None:
    _check_class(cls, "claim")
    for case in (_claim_defaults, _claim_states, _claim_batch, _claim_race):
        case(cls)


def _takeover_case(relay_cls, handle_fn) -> tuple:
    """The relay crashes right after its first claim; restarted, it (or the other relay) must take the rows
    over once the lease has run out."""
    kw = dict(relay_kw=dict(lease=4.0, batch=20), commands=12, until=40.0)
    path, crash = _targeted(relay_cls, handle_fn, after=("claimed",), row=0, who="relay0", process="relay0", **kw)
    if crash is None:
        _fail_run(path, "With no fault at all, nothing claimed row 0")
    if not path.ok:
        _fail_run(path, f"relay0 crashed at {_t(crash)} s, right after claiming rows with Relay(ctx, lease=4.0, "
                        f"batch=20)")
    return path, crash


@_message_only
def claim(cls) -> None:
    """Task 1: ``claim`` takes the unsent rows whose lease has run out (the oldest ``batch``) with one
    conditional update and returns them with the new lease; two relays at once never get the same row; in
    the simulator, the rows of a relay that crashed after claiming are taken over when the lease runs out."""
    _claim_cases(cls)
    path, crash = _takeover_case(_with_course_send(cls), _ref_handle)
    takers = {e[1] for e in path.log.of("claimed") if e[0] > crash}
    fb.ok(f"claim: unsent rows whose lease has run out, oldest first, up to batch, each to one relay only; in the "
          f"simulator, the rows of relay0 (crashed at {_t(crash)} s holding their lease) were claimed again by "
          f"{', '.join(sorted(takers))} once the lease ran out, and every order took effect once")


def _with_course_send(cls):
    """The learner's class with the course's send: task 1 checks claim alone."""
    class Relay(cls):
        def __init__(self, ctx, *args, **kw):
            super().__init__(ctx, *args, **kw)
            self._lab_ctx = ctx

        def send(self, row_id, row):
            return _ref_send(self._lab_ctx, row_id, row)
    Relay.__name__ = Relay.__qualname__ = cls.__name__
    return Relay


# --- task 2: send ---------------------------------------------------------------------------------------
def _send_case(cls, *, at: float, until: float, down, backoff, kw: dict, row_id=3):
    bench = _Bench(backoff=backoff, broker_down=down)
    bench.put({i: ({"lease_owner": "relay0#1", "lease_until": until} if i == row_id else {})
               for i in sorted(set(range(5)) | {row_id})})
    ctx = bench.relay_ctx()
    relay = _make_relay(cls, ctx, kw)
    row = bench.db.get(OUTBOX, row_id)
    text = f"relay.send({row_id!r}, row) at t = {_t(at)}, row['lease_until'] = {_v(until)}"
    send_fn = _method(relay, "send")
    got = bench.go(at, [(f"{cls.__name__}.send", f"relay.send({row_id!r}, row)", ctx.owner,
                         lambda: send_fn(row_id, row))], stuck=_STUCK_SEND)[0]
    ok = _bool_of(got, text, _SEND_RETURNS)
    return bench, ctx, row, text, ok


_STUCK_SEND = ("a loop with no end in send? While the broker is down, a publish fails at once: wait ctx.backoff(n) "
               "seconds between tries (yield ctx.sleep(wait)), and stop when the next try would start at or after "
               "row['lease_until'].")


def _tries(bench, row_id) -> list:
    return [(t, kind, info) for t, who, kind, r, info in bench.log.events if kind in ("published", "publish failed")
            and (r == row_id or r is None and info["id"] == row_id)]


def _marks(bench, row_id) -> list:
    return [(t, info) for t, who, kind, r, info in bench.log.events if kind == "marked" and r == row_id]


def _send_up(cls):
    """The broker is up: one publish with the row's id and payload, then the mark; True."""
    for row_id, kw in ((3, dict(lease=10.0)), (17, {})):
        bench, ctx, row, text, ok = _send_case(cls, at=1.0, until=11.0, down=(), backoff=None, kw=kw,
                                               row_id=row_id)
        tries, marks = _tries(bench, row_id), _marks(bench, row_id)
        events = [e for e in bench.log.events if e[2] in ("published", "marked", "publish failed")]
        order = [e[2] for e in events]
        if marks and (not tries or marks[0][0] <= tries[0][0]) and order.index("marked") < (
                order.index("published") if "published" in order else len(order)):
            raise AssertionError(f"{text} marked row {row_id!r} sent before publishing it. A relay crash between "
                                 f"the two leaves a row marked sent that nobody ever published: the order is lost. "
                                 f"Publish first, then mark: a crash between them then publishes it twice (the "
                                 f"consumer dedupes), never zero times.")
        if not tries:
            raise AssertionError(f"{text} returned {ok} without publishing anything: publish the row, yield from "
                                 f"ctx.broker.publish(ctx.req, row_id, row['payload']).")
        good = [x for x in tries if x[1] == "published"]
        if len(good) != 1:
            raise AssertionError(f"{text} published row {row_id!r} {len(good)} times, with the broker up: publish "
                                 f"once, and retry only when a publish fails.")
        mid, body = good[0][2]["id"], good[0][2]["body"]
        if mid != row_id:
            raise AssertionError(f"{text} published it as message {mid!r}; expected message id {row_id!r}, the row's "
                                 f"id. The consumer dedupes by message id: a fresh id (a uuid, a counter, the id with "
                                 f"the attempt) makes every publish of the row a new message, and a second publish "
                                 f"after a crash takes effect twice.")
        if body != row["payload"]:
            raise AssertionError(f"{text} published the body {_short(body)}; expected the row's payload, "
                                 f"row['payload'] = {row['payload']!r}.")
        if not ok:
            raise AssertionError(f"{text} published the row, then returned False; expected True: the row is "
                                 f"published and marked.")
        state = bench.db.get(OUTBOX, row_id)
        if state["status"] != "sent":
            raise AssertionError(f"{text} published the row and returned True, but the row is still "
                                 f"{state['status']!r}: mark it sent after publishing (tx = ctx.db.transaction(); "
                                 f"tx.update('outbox', row_id, {{'status': 'sent'}}); yield from tx.commit(ctx.req)), "
                                 f"or every claim publishes it again.")
        others = [i for i, r in bench.outbox().items() if i != row_id and r["status"] != "new"]
        if others:
            raise AssertionError(f"{text} also changed row {others[0]!r}: mark only the row you sent.")


def _expected_tries(at, until, down, backoff, rng=None):
    """The times of the tries a right send makes, and whether it publishes."""
    times, t, n = [], at, 0
    rng = rng or random.Random(0)
    while True:
        times.append(t)
        if not any(s <= t < e for s, e in down):
            return times, True
        n += 1
        wait = backoff.delay(n, rng)
        if t + wait >= until:
            return times, False
        t += wait


def _send_retry_case(cls, *, at, until, down, backoff, kw, label):
    bench, ctx, row, text, ok = _send_case(cls, at=at, until=until, down=down, backoff=backoff, kw=kw)
    want, publishes = _expected_tries(at, until, down, backoff)
    tries = _tries(bench, 3)
    got = [t for t, _, _ in tries]
    marks = _marks(bench, 3)
    state = bench.db.get(OUTBOX, 3)["status"]
    window = ", ".join(f"from {_t(s)} to {_t(e)} s" for s, e in down)
    said = (f"{text}, the broker down {window}, ctx.backoff = {label}: your send tried to publish at "
            f"{_times(got)} and returned {ok}; expected tries at {_times(want)}"
            + (", then True." if publishes else ", then False (the next try would start at or after the lease's end)."))
    waits = [b - a for a, b in zip(got, got[1:])]
    fresh = [(k, x[2]["id"]) for k, x in enumerate(tries) if x[2]["id"] != 3]
    if fresh:
        k, mid = fresh[0]
        raise AssertionError(f"{said} Try {k + 1} published it as message {mid!r}: every try must use the row's "
                             f"id, 3. The consumer dedupes by message id; a retry with a fresh id that gets through "
                             f"after an earlier try did too (its reply lost) takes effect twice.")
    if state == "sent" and not any(x[1] == "published" for x in tries):
        n = len(tries)
        raise AssertionError(f"{said} Your send gave up after {n} tr{'ies' if n > 1 else 'y'} and marked row 3 sent "
                             f"without having published it: the order is lost, and no dead letter says so. Giving "
                             f"up after a fixed number of tries drops the message: retry while the lease lasts, then "
                             f"return False and leave the row unsent; the next claim takes it again.")
    if got == want and ok == publishes:
        if publishes and state != "sent":
            raise AssertionError(f"{said} The row is still {state!r}: mark it sent once it is published.")
        if not publishes and marks:
            raise AssertionError(f"{said} But it changed the row's status to {marks[0][1]['status']!r}: leave it "
                                 f"unsent.")
        return
    if len(got) > 1 and any(w == 0 for w in waits):
        raise AssertionError(f"{said} It tried again without waiting: wait ctx.backoff(n) seconds before retry n "
                             f"(yield ctx.sleep(ctx.backoff(n))).")
    rng = random.Random(0)
    delays = [backoff.delay(n, rng) for n in range(1, 12)]
    for k, w in enumerate(waits):
        if k < len(delays) and not _close(w, delays[k]):
            if k + 1 < len(delays) and _close(w, delays[k + 1]):
                raise AssertionError(f"{said} Off by one: before retry {k + 1} you waited {_t(w)} s = ctx.backoff("
                                     f"{k + 2}); ctx.backoff({k + 1}) = {_t(delays[k])} s is the wait before retry "
                                     f"{k + 1} (the second try is retry 1).")
            raise AssertionError(f"{said} Before retry {k + 1} you waited {_t(w)} s; ctx.backoff({k + 1}) = "
                                 f"{_t(delays[k])} s. Wait what the backoff says (a parameter ignored?).")
    late = [t for t in got if t >= until]
    if late:
        if _close(late[0], until):
            raise AssertionError(f"{said} Off by one: your try at {_t(late[0])} s starts when the lease ends "
                                 f"(lease_until = {_v(until)}), when another relay may claim the row: give up when "
                                 f"now + wait >= row['lease_until'] (>=, not >).")
        raise AssertionError(f"{said} Your send kept trying after the lease ran out at {_v(until)} s (a try at "
                             f"{_t(late[0])} s): by then another relay may hold the row and publish it too. Before "
                             f"each wait, give up (return False) when now + wait >= row['lease_until'].")
    if not ok and len(got) < len(want):
        raise AssertionError(f"{said} Your send gave up after {len(got)} tries, at {_t(got[-1])} s, while the lease "
                             f"lasts until {_v(until)} s: a fixed number of tries? Retry while the next try would "
                             f"start before row['lease_until']; the rows after this one wait meanwhile.")
    raise AssertionError(said)


def _times(ts) -> str:
    return "[" + ", ".join(_t(t) for t in ts) + "]"


def _send_retries(cls):
    _send_retry_case(cls, at=1.0, until=11.0, down=[(0.5, 4.5)], backoff=Exponential(0.5, cap=4.0), kw={},
                     label="Exponential(0.5, cap=4) (waits 1, 2, 4, 4... s)")
    _send_retry_case(cls, at=1.0, until=11.0, down=[(0.5, 30.0)], backoff=Exponential(0.5, cap=4.0),
                     kw=dict(lease=10.0), label="Exponential(0.5, cap=4) (waits 1, 2, 4, 4... s)")
    _send_retry_case(cls, at=1.0, until=12.0, down=[(0.5, 30.0)], backoff=Exponential(0.5, cap=4.0),
                     kw=dict(lease=10.0), label="Exponential(0.5, cap=4) (waits 1, 2, 4, 4... s)")
    _send_retry_case(cls, at=2.0, until=5.0, down=[(1.0, 3.2)], backoff=Constant(0.5), kw=dict(lease=3.0),
                     label="Constant(0.5) (0.5 s before every retry)")
    _send_retry_case(cls, at=2.0, until=4.0, down=[(1.0, 60.0)], backoff=Constant(0.75), kw=dict(lease=2.0),
                     label="Constant(0.75) (0.75 s before every retry)")


def _send_mark_fails(cls):
    """The broker is up, app_db is down when send marks the row: the ServiceError goes up."""
    bench = _Bench()
    bench.put({i: ({"lease_owner": "relay0#1", "lease_until": 11.0} if i == 3 else {}) for i in range(5)})
    Outage(bench.db.service, [(0.5, 5.0)])
    ctx = bench.relay_ctx()
    relay = _make_relay(cls, ctx, dict(lease=10.0))
    row = bench.db.get(OUTBOX, 3)
    send_fn, caught = _method(relay, "send"), []

    def catching():
        try:
            return (yield from send_fn(3, row))
        except ServiceError as err:
            caught.append(err)
    got = bench.go(1.0, [(f"{cls.__name__}.send", "relay.send(3, row)", ctx.owner, catching)],
                   stuck=_STUCK_SEND)[0]
    if not caught and _tries(bench, 3):
        raise AssertionError(f"relay.send(3, row) at t = 1, the broker up and app_db down (from 0.5 to 5 s) when it "
                             f"marks the row sent, returned {got!r}; expected the ServiceError('down') of the mark to "
                             f"go up (raise). The row stays unsent, and the relay's loop must hear that the mark "
                             f"failed: do not catch the mark's failure in send.")


def _send_cases(cls) -> None:
    _check_class(cls, "send")
    for case in (_send_up, _send_retries, _send_mark_fails):
        case(cls)


def _crash_between_publish_and_mark(relay_cls, handle_fn, row: int = 7, seed: int = 1, **kw):
    base = dict(relay_kw=dict(lease=5.0), commands=12, until=40.0, seed=seed)
    base.update(kw)
    return _targeted(relay_cls, handle_fn, after=("published", "marked"), row=row, who="relay0",
                     process="relay0", **base)


def _publish_mark_case(relay_cls, handle_fn) -> tuple:
    path, crash = _crash_between_publish_and_mark(relay_cls, handle_fn)
    if crash is None:
        _fail_run(path, "With no fault at all, row 7 was never published")
    if not path.ok:
        _fail_run(path, f"After a relay crash between publish and mark (relay0 crashed at {_t(crash)} s, right after "
                        f"its first step for row 7)")
    return path, crash


def _broker_outage_case(relay_cls, handle_fn):
    path = _Path(relay_cls, handle_fn, Schedule(broker=[(0.3, 5.0)]), relay_kw=dict(lease=8.0), commands=12,
                 until=40.0).run()
    if not path.ok:
        _fail_run(path, "The broker was down from 0.3 s to 5 s (relay: Relay(ctx, lease=8.0))")


@_message_only
def send(cls) -> None:
    """Task 2: ``send`` publishes the row's payload with the row's id, retries after ``ctx.backoff(n)``
    while the lease lasts, marks the row sent after publishing it, and gives up (False, the row left
    unsent) when the lease would run out; in the simulator, a relay crash between publish and mark, and a
    long broker outage, lose nothing and duplicate nothing (the course's consumer dedupes)."""
    _needs(cls, None, 1)
    _send_cases(cls)
    path, crash = _publish_mark_case(cls, _ref_handle)
    ids = sorted({e[4]["id"] for e in path.log.of("published", row=7)}, key=repr)
    _broker_outage_case(cls, _ref_handle)
    fb.ok(f"send: the row's id, retries after ctx.backoff while the lease lasts, publish then mark; after a crash "
          f"between publish and mark (at {_t(crash)} s) row 7 went out {_times_word(len(path.log.of('published', row=7)))}, "
          f"as message {', '.join(map(repr, ids))}, and took effect once; a 4.7 s broker outage lost nothing")


# --- task 3: handle -----------------------------------------------------------------------------------
def _delivery_of(row_id, count: int = 1, body=None) -> Delivery:
    body = body if body is not None else {"key": row_id % 5, "seq": row_id + 1, "command": row_id}
    return Delivery(("receipt", row_id, count), row_id, body, count, 0.0)


def _handle_once(fn, bench, ctx, delivery, at, *, expect_raise=False):
    text = f"handle(ctx, {_delivery(delivery)}) at t = {_t(at)}"
    name = getattr(fn, "__name__", "handle")

    def hint(exc) -> str:
        if isinstance(exc, ServiceError):
            return ""
        return _hint(exc)
    try:
        bench.go(at, [(name, f"handle(ctx, {_delivery(delivery)})", ctx.name, lambda: fn(ctx, delivery))],
                 hint=hint, stuck=_STUCK_HANDLE)
    except AssertionError as err:
        cause = err.__cause__
        if isinstance(cause, ServiceError):
            return text, cause
        raise
    return text, None


_STUCK_HANDLE = ("a loop with no end in handle? Commit once: a 'conflict' means processed already (return), any "
                 "other failure goes up (raise); never retry in a loop: the broker delivers again.")


def _raised(text, err) -> str:
    return f"{text} raised ServiceError({err.reason!r})"


def _handle_basic(fn):
    bench = _Bench()
    for mid, at in ((5, 1.0), (0, 1.5), (17, 2.0)):
        ctx = bench.consumer_ctx()
        before = len(bench.effects())
        text, err = _handle_once(fn, bench, ctx, _delivery_of(mid), at)
        if err is not None:
            raise AssertionError(f"{_raised(text, err)}: the first delivery of message {mid!r} must take effect, "
                                 f"and consumer_db is up.")
        effects = bench.effects()
        got = effects.count(mid)
        if got != 1:
            raise AssertionError(f"{text} left {got} effects of message {mid!r} in consumer_db; expected 1. "
                                 + ("Add the effect to your transaction, ctx.effect(tx, delivery), and commit it."
                                    if got == 0 else "Apply it once."))
        if len(effects) != before + 1:
            raise AssertionError(f"{text} changed the effects of other messages: apply only this one.")


def _handle_records(fn):
    """The processed id goes into table processed, in the effect's own transaction."""
    bench = _Bench()
    ctx = bench.consumer_ctx()
    mid = 5
    text, _ = _handle_once(fn, bench, ctx, _delivery_of(mid), 1.0)
    if bench.cdb.get(PROCESSED, mid) is None:
        ids = [i for i, _ in bench.cdb.rows(PROCESSED)]
        hint = f" (table processed holds {_ids(ids)})" if ids else ""
        raise AssertionError(f"{text} applied message {mid!r}, but table processed has no row {mid!r}{hint}: record "
                             f"the message id there, tx.insert('processed', delivery.message_id, {{...}}), in the "
                             f"effect's transaction. That row is how a second copy is recognised, by the database "
                             f"itself, at the commit point.")
    commits = [c for c in bench.cdb.commit_log if any(
        (w[1] == PROCESSED and w[2] == mid) or (w[1] == EFFECTS and isinstance(w[3], dict)
                                                and w[3].get("message_id") == mid) for w in c[3])]
    if not any({w[1] for w in c[3]} >= {EFFECTS, PROCESSED} for c in commits):
        raise AssertionError(f"{text} committed the effect of message {mid!r} and its processed id in "
                             f"{len(commits)} separate transactions. Dedupe outside the effect's transaction is not "
                             f"enough: a crash between the two commits leaves the effect applied and the id "
                             f"unrecorded, and the copy the broker delivers again takes effect twice. Insert both in "
                             f"one transaction: one commit.")


def _handle_duplicates(fn):
    bench = _Bench()
    ctx = bench.consumer_ctx()
    _handle_once(fn, bench, ctx, _delivery_of(5), 1.0)
    for count, at, fresh, what in ((2, 2.0, False, "a second copy of message 5 (a redelivery)"),
                                   (3, 40.0, True, "a third copy of message 5, after the consumer restarted "
                                                   "(a new ctx)")):
        if fresh:
            ctx = bench.consumer_ctx()
        text, err = _handle_once(fn, bench, ctx, _delivery_of(5, count), at)
        effects = bench.effects().count(5)
        if effects > 1:
            if bench.cdb.get(PROCESSED, 5) is not None:
                raise AssertionError(f"{text}: {what} took effect again; message 5 now has {effects} effects, "
                                     f"expected 1. Your handle records the id in processed, but not in the effect's "
                                     f"transaction, so the effect's commit cannot be refused. Dedupe outside the "
                                     f"effect's transaction is not enough: insert both in one transaction, and a "
                                     f"copy's commit fails with 'conflict', effect included.")
            memory = (" Your dedupe seems to live in memory, which a crash loses: record processed ids in "
                      "consumer_db, in the effect's transaction." if fresh else
                      " No dedupe: delivery is at least once, so a message comes twice now and then. Insert the "
                      "message id into processed in the effect's transaction: a second copy's commit then fails "
                      "with 'conflict', and you return without applying it.")
            raise AssertionError(f"{text}: {what} took effect again; message 5 now has {effects} effects, expected 1."
                                 + memory)
        if err is not None and err.reason == "conflict":
            raise AssertionError(f"{_raised(text, err)} for {what}, processed already: the message is then never "
                                 f"acknowledged, and comes back again and again until the broker dead-letters it. A "
                                 f"conflict means processed already: catch it (except ServiceError as err: if "
                                 f"err.reason != 'conflict': raise) and return, so that the copy is acknowledged.")
        if err is not None:
            raise AssertionError(f"{_raised(text, err)} for {what}; expected it to return (consumer_db is up).")
        if effects != 1:
            raise AssertionError(f"{text}: message 5 now has {effects} effects, expected 1: a copy must leave the "
                                 f"first effect as it is.")
    text, err = _handle_once(fn, bench, ctx, _delivery_of(6), 41.0)
    if bench.effects().count(6) != 1:
        raise AssertionError(f"{text} did not apply message 6 (never seen before){'' if err is None else ', and ' + _raised('it', err)}: "
                             f"dedupe by message id, one id at a time.")


def _handle_fresh_run(fn):
    """New worlds (other runs, the same ids): nothing of an earlier run may leak into them."""
    for run in range(2):
        bench = _Bench()
        ctx = bench.consumer_ctx()
        text, err = _handle_once(fn, bench, ctx, _delivery_of(5), 1.0)
        if bench.effects().count(5) != 1:
            raise AssertionError(f"In a fresh run (a new consumer_db, never used), {text} did not apply message 5"
                                 + ("" if err is None else f" (it raised ServiceError({err.reason!r}))")
                                 + ", which this consumer_db has never seen. Does your dedupe remember ids in "
                                   "Python memory (a global set, a default argument, a class attribute)? That memory "
                                   "outlives a run, and a real crash loses it: record the message id in table "
                                   "processed, in the effect's transaction.")


def _handle_down(fn):
    bench = _Bench(cdb_down=[(3.0, 4.0)])
    ctx = bench.consumer_ctx()
    text, err = _handle_once(fn, bench, ctx, _delivery_of(8), 3.5)
    if err is None:
        raise AssertionError(f"{text}, with consumer_db down (from 3 to 4 s), returned normally; expected it to raise "
                             f"the ServiceError('down') of its commit. The wiring acknowledges the message when handle "
                             f"returns: this one would be gone, its effect never applied (lost). Only a 'conflict' "
                             f"means processed already: let any other failure go up (raise), so that the message is "
                             f"not acknowledged and comes back.")
    if bench.effects():
        raise AssertionError(f"{text} applied something although consumer_db was down.")
    text, err = _handle_once(fn, bench, ctx, _delivery_of(8, 2), 10.0)
    if err is not None or bench.effects().count(8) != 1:
        raise AssertionError(f"{text}, consumer_db up again, must apply message 8 once"
                             + ("" if err is None else f"; it raised ServiceError({err.reason!r})") + ".")


def _handle_cases(fn) -> None:
    _check_function(fn, "handle")
    for case in (_handle_basic, _handle_fresh_run, _handle_duplicates, _handle_records, _handle_down):
        case(fn)


def _consumer_crash_case(relay_cls, handle_fn, row: int = 4):
    kw = dict(commands=10, until=40.0)
    path, crash = _targeted(relay_cls, handle_fn, after=("effect",), row=row, who="consumer", process="consumer",
                            **kw)
    if crash is None:
        _fail_run(path, f"With no fault at all, order {row} never took effect")
    if not path.ok:
        _fail_run(path, f"The consumer crashed at {_t(crash)} s, right after committing the effect of order {row}")
    return path, crash


def _consumer_db_outage_case(relay_cls, handle_fn):
    path = _Path(relay_cls, handle_fn, Schedule(consumer_db=[(0.5, 1.6)]), commands=12, until=40.0).run()
    if not path.ok:
        _fail_run(path, "consumer_db was down from 0.5 s to 1.6 s")
    return path


@_message_only
def handle(fn) -> None:
    """Task 3: ``handle`` applies each message once: the effect and the processed id in one transaction;
    a conflict (processed already) returns, any other failure goes up; then in the simulator a consumer
    crash right after the effect's commit, and a consumer_db outage."""
    _handle_cases(fn)
    path, crash = _consumer_crash_case(_RefRelay, fn)
    skipped = len(path.log.of("conflict", row=4))
    _consumer_db_outage_case(_RefRelay, fn)
    fb.ok(f"handle: the effect and the processed id in one transaction, a copy processed already is acknowledged, a "
          f"failure goes up; after a crash right after the effect's commit (at {_t(crash)} s), the copy delivered "
          f"again was refused {skipped} time{'s' * (skipped != 1)} as processed already, and a consumer_db outage "
          f"lost nothing")


# --- task 4: everything, under generated fault schedules ----------------------------------------------
def _random_schedule(rng: random.Random, relays: int = 2) -> Schedule:
    def crashes():
        return [round(rng.uniform(0.0, 4.0), 4) for _ in range(rng.choice((0, 0, 1, 1, 2, 3)))]

    def windows():
        out = []
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
            start = round(rng.uniform(0.0, 4.0), 3)
            out.append((start, round(start + rng.uniform(0.05, 3.0), 3)))
        return out
    return Schedule(app=crashes(), relays=tuple(crashes() for _ in range(relays)), consumer=crashes(),
                    db=windows(), broker=windows(), consumer_db=windows())


#: The relay settings and visibility timeouts the generated runs cycle through.
_VARIANTS = [dict(relay_kw={}, visibility_timeout=5.0), dict(relay_kw=dict(lease=3.0, batch=5), visibility_timeout=2.0),
             dict(relay_kw=dict(lease=6.0, batch=1), visibility_timeout=5.0),
             dict(relay_kw=dict(lease=15.0, batch=8), visibility_timeout=3.0)]


def _faults(s: Schedule) -> list:
    """The schedule's faults, one by one: (field, index in relays or None, value)."""
    out = [("app", None, t) for t in s.app] + [("consumer", None, t) for t in s.consumer]
    for i, times in enumerate(s.relays):
        out += [("relays", i, t) for t in times]
    for name in ("db", "broker", "consumer_db"):
        out += [(name, None, w) for w in getattr(s, name)]
    return out


def _without(s: Schedule, fault) -> Schedule:
    name, index, value = fault
    fields = {"app": list(s.app), "consumer": list(s.consumer), "relays": [list(r) for r in s.relays],
              "db": list(s.db), "broker": list(s.broker), "consumer_db": list(s.consumer_db)}
    if name == "relays":
        fields["relays"][index].remove(value)
    else:
        fields[name].remove(value)
    fields["relays"] = tuple(tuple(r) for r in fields["relays"])
    return Schedule(**fields)


def _shrink(run, schedule: Schedule, budget: int = 40) -> Schedule:
    """Remove faults one at a time while the run still fails (a greedy shrink, as hypothesis does)."""
    tries = 0
    changed = True
    while changed and tries < budget:
        changed = False
        for fault in _faults(schedule):
            tries += 1
            smaller = _without(schedule, fault)
            if not run(smaller).ok:
                schedule, changed = smaller, True
                break
            if tries >= budget:
                break
    return schedule


def _show_schedule(s: Schedule) -> str:
    parts = []
    for name in ("app", "consumer"):
        if getattr(s, name):
            parts.append(f"{name}={[round(t, 4) for t in getattr(s, name)]}")
    if any(s.relays):
        parts.append(f"relays={[[round(t, 4) for t in r] for r in s.relays]}")
    for name in ("db", "broker", "consumer_db"):
        if getattr(s, name):
            parts.append(f"{name}={[tuple(round(x, 3) for x in w) for w in getattr(s, name)]}")
    return f"Schedule({', '.join(parts)})"


def _generated(relay_cls, handle_fn, runs: int, seed: int):
    rng = random.Random(seed)
    stats = dict(runs=0, crashes=0, outages=0, duplicates_skipped=0, republished=0)
    for n in range(runs):
        schedule = _random_schedule(rng)
        variant = _VARIANTS[n % len(_VARIANTS)]

        def run(s, variant=variant, n=n):
            return _Path(relay_cls, handle_fn, s, seed=seed + n, **variant).run()
        path = run(schedule)
        stats["runs"] += 1
        stats["crashes"] += len(schedule.app) + len(schedule.consumer) + sum(map(len, schedule.relays))
        stats["outages"] += len(schedule.db) + len(schedule.broker) + len(schedule.consumer_db)
        stats["duplicates_skipped"] += len(path.log.of("conflict"))
        rows = [e[3] for e in path.log.of("published")]
        stats["republished"] += len(rows) - len(set(rows))
        if not path.ok:
            small = _shrink(run, schedule)
            path = run(small)
            settings = f"Relay(ctx{_kwargs(variant['relay_kw'])}), visibility timeout {_t(variant['visibility_timeout'])} s"
            _fail_run(path, f"Generated fault schedule {n} (seed {seed}), shrunk to {_show_schedule(small)}, with "
                            f"{settings}, two relays")
    return stats


@_message_only
def exactly_once(relay_cls, handle_fn, *, runs: int = 100, seed: int = 2024) -> None:
    """Task 4: the learner's relay and consumer together: targeted crashes (between publish and mark, after a
    claim, after the effect's commit), a long broker outage and a consumer_db outage, then ``runs`` generated
    fault schedules (crashes of the application, two relays and the consumer at any instant; outages of the
    three services), with several relay settings: every order takes effect exactly once, nothing is left
    unsent, nothing is left in the queue."""
    _check_class(relay_cls, "exactly_once")
    _check_function(handle_fn, "exactly_once", "handle")
    _needs(relay_cls, handle_fn, 3)
    _publish_mark_case(relay_cls, handle_fn)
    _takeover_case(relay_cls, handle_fn)
    _consumer_crash_case(relay_cls, handle_fn)
    _broker_outage_case(relay_cls, handle_fn)
    _consumer_db_outage_case(relay_cls, handle_fn)
    stats = _generated(relay_cls, handle_fn, runs, seed)
    fb.ok(f"exactly once: 5 targeted cases and {stats['runs']} generated fault schedules ({stats['crashes']} crashes, "
          f"{stats['outages']} outages, 4 relay settings): every order took effect once; rows published again "
          f"{stats['republished']} times, copies refused as processed already {stats['duplicates_skipped']} times")


def _handle_gate(handle_fn) -> None:
    fb.earlier_task(3, "handle(handle)", lambda: _handle_cases(handle_fn))


def _needs(relay_cls, handle_fn, upto: int) -> None:
    """Tasks 1..``upto`` must pass (plain cases only, quietly) before what needs them: "write task N first"."""
    steps = [(1, "claim", lambda: _claim_cases(relay_cls), "Relay"), (2, "send", lambda: _send_cases(relay_cls), "Relay"),
             (3, "handle", lambda: _handle_cases(handle_fn), "handle")]
    for number, name, cases, arg in steps[:upto]:
        if arg != "handle" or handle_fn is not None:
            fb.earlier_task(number, f"{name}({arg})", cases)


# --- demonstrations for the lab's cells ---------------------------------------------------------------
def takeover(relay_cls, *, row: int = 7, seed: int = 1) -> dict:
    """The story of one order when the relay crashes right after publishing it (the course's consumer
    downstream): ``{"crash": time, "published": [(time, owner, message id)], "effects": n, "skipped": n,
    "story": text}``."""
    _check_class(relay_cls, "takeover")
    _needs(relay_cls, None, 2)
    path, crash = _crash_between_publish_and_mark(relay_cls, _ref_handle, row=row, seed=seed)
    published = [(t, who, info["id"]) for t, who, _, r, info in path.log.of("published", row=row)]
    effects = [_command_of(r.get("body")) for _, r in path.cdb.rows(EFFECTS)].count(row)
    return {"crash": crash, "published": published, "effects": effects,
            "skipped": len(path.log.of("conflict", row=row)), "story": path.story(row), "ok": path.ok}


#: The consumers :func:`census` can compare with the learner's.
CONSUMERS = {"no dedupe": _no_dedupe_handle, "dedupe in a separate transaction": _separate_handle}


def census(relay_cls, handle_fn, *, runs: int = 50, seed: int = 7) -> dict:
    """Generated fault schedules, counted: ``{"runs", "lost", "duplicated", "exactly_once"}`` (runs with at
    least one order lost, at least one duplicated, neither). ``relay_cls`` may be ``"course"`` (the course's
    relay) and ``handle_fn`` one of :data:`CONSUMERS`' names."""
    course_relay = isinstance(relay_cls, str)
    if course_relay:
        if relay_cls != "course":
            raise ValueError(f"relay_cls must be a class or 'course', got {relay_cls!r}")
        relay_cls = _RefRelay
    _check_class(relay_cls, "census")
    course_handle = isinstance(handle_fn, str)
    if course_handle:
        if handle_fn not in CONSUMERS:
            raise ValueError(f"handle_fn must be a function or one of {sorted(CONSUMERS)}, got {handle_fn!r}")
        handle_fn = CONSUMERS[handle_fn]
    _check_function(handle_fn, "census", "handle")
    if not course_relay:
        _needs(relay_cls, None, 2)
    if not course_handle:
        _handle_gate(handle_fn)
    rng = random.Random(seed)
    counts = dict(runs=0, lost=0, duplicated=0, exactly_once=0)
    for n in range(runs):
        path = _Path(relay_cls, handle_fn, _random_schedule(rng), seed=seed + n).run()
        v = path.verdict
        counts["runs"] += 1
        counts["lost"] += bool(v.lost)
        counts["duplicated"] += bool(v.duplicated)
        counts["exactly_once"] += v.exactly_once
    return counts
