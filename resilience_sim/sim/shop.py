"""The capstone's shop, built from the course's parts in one world (:func:`build_shop`); a day of it
runs in :mod:`resilience_sim.sim.shop_day`.

Endpoints (one workload each, arrivals following the day's :class:`~resilience_sim.sim.chaos.DayProfile`):

* ``browse``: the frontend reads a product from the catalog (behind a :class:`~resilience_sim.sim.cache.CachedRead`
  when the config has a cache; the catalog reads the database) and asks recommendations (with a
  fallback to a static list of popular products when the config says so);
* ``search``: the search engine, falling back to a slow SQL search with its own small capacity;
* ``checkout``: the orders service runs a saga (inventory, then payment as the pivot, then shipping:
  :class:`~resilience_sim.sim.saga.Orchestrator` and :class:`~resilience_sim.sim.saga.Participant`),
  whose confirmation emits an order event, through an outbox and a relay or by a dual write, to a
  broker whose consumer emails the receipt; with ``deferred_checkout`` the frontend answers at once
  ("we will email your receipt") and a :class:`~resilience_sim.sim.jobs.DeferredJobs` queue places
  the order.

**How the traffic is sized.** A simulated request stands for :data:`SCALE` real ones: the shop's
real daily peak of about 350 requests a second is simulated as :data:`PEAK` (1.15 a second; four
times that in the flash sale), about 64,000 simulated requests over a day, and every capacity is
sized in the same units (a simulated replica serves the share of traffic a real replica would).
Rates and shares (availability, error budgets) are the same at any scale; counts (orders lost,
extra calls) are of simulated requests, and the costs in :mod:`resilience_sim.metrics.scoring` price
them per simulated request. This keeps one chaos day at a few seconds of CPU (``bench/capstone.py``
times it: about 2 s for the baseline, 4 s for the reference).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from ..core import validate
from ..core.distributions import Exponential
from ..policies import (Bulkhead, CircuitBreaker, FallbackChain, FullJitter, JobQueue, MessageQueue,
                        RetryBudget, RetryPolicy, Saga, SagaStep, Static)
from ..policies import Cache as CachePolicy
from ..policies import Exponential as ExponentialBackoff
from ..policies.saga import COMMITTED, END
from .broker import Broker
from .cache import CachedRead
from .client import Client
from .consumer import Consumer
from .database import Database
from .fallback import with_fallbacks
from .jobs import DeferredJobs
from .outbox import OUTBOX, OutboxRelay, outbox_row
from .saga import ORDERS, SAGAS, Orchestrator, Participant
from .service import Service, ServiceError
from .shop_config import DEPENDENCIES, ShopConfig
from .world import World

#: One simulated request stands for this many real ones (see the module docstring).
SCALE = 300
#: Simulated requests a second per endpoint at the day's peak (before the flash sale multiplies it).
PEAK = {"browse": 0.8, "search": 0.25, "checkout": 0.1}
#: Seconds a user waits for an answer before giving up.
PATIENCE = {"browse": 2.0, "search": 3.0, "checkout": 10.0}
#: Seconds a checkout user waits before trying again once (only checkout users retry).
USER_RETRY = 5.0
#: Slots of one replica, and mean seconds of work a call (exponential), per service.
SLOTS = {"frontend": 40, "catalog": 2, "recommendations": 4, "search": 4, "sql_search": 1, "orders": 40}
WORK = {"frontend": 0.001, "catalog": 0.1, "recommendations": 0.04, "search": 0.03, "sql_search": 0.4,
        "orders": 0.002}
#: Products in the catalog (browse keys: a few are popular, most are not).
PRODUCTS = 400
#: Seconds the world runs after the day, without traffic, for queues and sagas to finish.
DRAIN = 3600.0
#: Seconds between two polls of the outbox relay and of the receipt consumer when idle.
POLL = 5.0
#: A popular list answers when recommendations cannot (a static fallback).
POPULAR = "popular products"
#: The services a chaos day's faults hit, by the names the schedule uses.
TARGETS = ("db", "catalog", "search", "recommendations", "broker", "frontend")


@dataclass
class Shop:
    """The parts of one shop in one world (for the run, its checks and its pictures)."""
    world: World
    config: ShopConfig
    services: dict
    clients: dict
    db: Database
    orchestrator: Orchestrator
    payment: Participant
    broker: Broker
    consumer: Consumer
    cache: CachedRead | None
    jobs: DeferredJobs | None
    relay: OutboxRelay | None
    lost_events: int = 0


class Payment(Participant):
    """The payment provider: a participant that answers 503 ("unavailable") while a chaos fault sets
    ``unavailable_until``, with Retry-After (:meth:`retry_after`) the seconds left until then."""

    def __init__(self, world, name: str = "payment", **kwargs):
        super().__init__(world, name, **kwargs)
        self.unavailable_until = 0.0

    def retry_after(self) -> float:
        """The Retry-After it answers now: seconds until it takes payments again (0 when it does)."""
        return max(0.0, self.unavailable_until - self.env.now)

    def do(self, req, saga_id, amount: float = 1.0):
        if self.unavailable_until:
            yield from self.service.call(req)
            raise ServiceError(self.name, "unavailable")
        yield from super().do(req, saga_id, amount)


class RetryAfterBackoff(ExponentialBackoff):
    """Exponential waits between a saga's step retries, never shorter than ``hint()`` (a provider's
    Retry-After in seconds; 0 when it gave none): retries that honour the 503's hint."""

    def __init__(self, base: float, cap: float, hint):
        super().__init__(base, cap)
        self._hint = validate.function("hint", hint)

    def _delay(self, attempt, rng, previous):
        return max(super()._delay(attempt, rng, previous), self._hint())


class ShopOrchestrator(Orchestrator):
    """The orchestrator with one process per saga: :meth:`place` starts a saga and drives it to its
    end (the base class's poll of every saga row does not scale to a day's orders). On confirmation
    the order event goes into the outbox in the same transaction, or (no outbox) is published after
    the commit, and lost if the broker fails then."""

    def __init__(self, world, db, saga, participants, *, shop_events, **kwargs):
        self._events = shop_events          # (outbox?, publish(req, saga_id, payload) or None)
        super().__init__(world, db, saga, participants, **kwargs)

    def _life(self):
        yield self.env.event()              # sagas are driven by place(); nothing to poll

    def place(self, req, saga_id, amount: float = 1.0):
        """Start the saga and drive it to its end (a simpy generator): "committed" or "compensated"."""
        yield from self.start(req, saga_id, amount)
        while True:
            row = self.db.get(SAGAS, saga_id)
            action, status = self.saga.next_action(row["state"])
            if action == END:
                return status
            yield from self._drive(saga_id, row["state"], row["amount"])

    def _persist(self, saga_id, state: dict):
        outbox, publish = self._events
        action, status = self.saga.next_action(state)
        confirmed = action == END and status == COMMITTED
        payload = {"intent": saga_id[0], "saga": saga_id}
        tx = self.db.transaction()
        tx.update(SAGAS, saga_id, {"state": state})
        if action == END:
            tx.update(ORDERS, saga_id, {"status": "CONFIRMED" if confirmed else "CANCELLED"})
        if confirmed and outbox:
            tx.insert(OUTBOX, saga_id, outbox_row(saga_id[0], payload, saga_id[1]))
        yield from tx.commit(self._req(saga_id))
        if confirmed and not outbox:
            yield from publish(self._req(saga_id), saga_id, payload)


class ShopRelay(OutboxRelay):
    """The outbox relay, deleting each row once marked sent (so each poll reads only unsent rows)."""

    def _mark(self, owner: str, row_id):
        before = self.marked
        yield from super()._mark(owner, row_id)
        if self.marked > before:
            tx = self.db.transaction()
            tx.delete(OUTBOX, row_id)
            yield from tx.commit(self._req())


def _client(world, name: str, target, dep) -> Client:
    """A client of the frontend's around ``target`` with the patterns ``dep`` switches on."""
    retry = (RetryPolicy(dep.retries + 1, FullJitter(dep.backoff, cap=max(1.0, dep.backoff)))
             if dep.retries else None)
    return Client(world, target, name=name, timeout=dep.timeout, retry=retry,
                  budget=RetryBudget(dep.budget, window=10.0) if retry and dep.budget else None,
                  breaker=CircuitBreaker(consecutive_failures=dep.breaker, open_for=dep.open_for)
                  if dep.breaker else None,
                  bulkhead=Bulkhead(dep.bulkhead) if dep.bulkhead else None)


def _service(world, name: str, replicas: int, **kwargs) -> Service:
    return Service(world, name, capacity=SLOTS[name] * replicas, latency=Exponential(WORK[name]), **kwargs)


def build_shop(world: World, config: ShopConfig) -> Shop:
    """Every part of the shop for ``config`` in ``world`` (no traffic and no faults yet)."""
    if not isinstance(config, ShopConfig):
        raise validate.WrongType(f"config must be a ShopConfig (BASELINE, REFERENCE or your own), got "
                                 f"{validate.show(config)}")
    r = config.replicas
    db = Database(world, "db", capacity=20, latency=Exponential(0.003))
    services = {"db": db.service}
    services["catalog"] = _service(world, "catalog", r.catalog, dependencies=["db"], handler=_catalog)
    for name in ("recommendations", "search", "sql_search"):
        services[name] = _service(world, name, getattr(r, name))
    broker = Broker(world, MessageQueue(visibility_timeout=30.0), name="broker")
    services["broker"] = broker.service
    participants = {"inventory": Participant(world, "inventory", latency=Exponential(0.01)),
                    "payment": Payment(world, latency=Exponential(0.05)),
                    "shipping": Participant(world, "shipping", latency=Exponential(0.01))}
    saga = Saga([SagaStep("inventory", "compensatable"), SagaStep("payment", "pivot"),
                 SagaStep("shipping", "retriable")])
    shop = Shop(world, config, services, {}, db, None, participants["payment"], broker, None, None, None, None)

    def publish(req, saga_id, payload):      # the dual write's second half: lost if the broker fails
        try:
            yield from broker.publish(req, saga_id, payload)
        except ServiceError:
            shop.lost_events += 1
    payment = participants["payment"]
    backoff = (RetryAfterBackoff(0.5, 10.0, payment.retry_after) if config.honour_retry_after
               else ExponentialBackoff(0.5, cap=10.0))
    shop.orchestrator = ShopOrchestrator(world, db, saga, participants, shop_events=(config.outbox, publish),
                                         backoff=backoff)
    services["orders"] = _service(world, "orders", r.orders, handler=_orders(shop))
    shop.clients = {dep: _client(world, f"to {dep}", services[dep], getattr(config, dep)) for dep in DEPENDENCIES}
    if config.cache is not None:
        c = config.cache
        shop.cache = CachedRead(world, CachePolicy(c.ttl, hard_ttl=c.ttl + c.stale, capacity=c.capacity),
                                name="catalog cache")
    if config.deferred_checkout:
        shop.jobs = DeferredJobs(world, JobQueue(backoff=ExponentialBackoff(5.0, cap=60.0)),
                                 target=shop.clients["orders"], workers=r.workers, name="receipts")
    services["frontend"] = _service(world, "frontend", r.frontend, dependencies=shop.clients,
                                    handler=_frontend(shop))
    if config.outbox:
        shop.relay = ShopRelay(world, db, broker, poll_interval=POLL, lease=30.0)
    shop.consumer = Consumer(world, broker, Database(world, "mail_db"), dedupe=config.dedupe, poll_interval=POLL)
    return shop


# --- handlers -------------------------------------------------------------------------------------------
def _catalog(svc, req):
    return (yield from svc.ask("db", req))


def _frontend(shop: Shop):
    config = shop.config
    recs = FallbackChain(["recommendations", Static(POPULAR)]) if config.recommendations_fallback else None
    search = FallbackChain(["search", "sql_search"], labels={"sql_search": "slow SQL search"}) \
        if config.search_fallback else None
    cache, jobs = shop.cache, shop.jobs

    def frontend(svc, req):
        route = req.route
        if route == "browse":
            if cache is not None:
                yield from cache.read(req, lambda sub: svc.ask("catalog", sub))
            else:
                yield from svc.ask("catalog", req)
            if recs is not None:
                yield from with_fallbacks(svc, req, recs)
            else:
                yield from svc.ask("recommendations", req)
        elif route == "search":
            if search is not None:
                yield from with_fallbacks(svc, req, search)
            else:
                yield from svc.ask("search", req)
        elif jobs is not None:
            yield from jobs.submit(req)            # 202: "we will email your receipt"
        else:
            yield from svc.ask("orders", req)
    return frontend


def _orders(shop: Shop):
    """The orders service's handler: place the order of intent ``req.key`` through the saga. With an
    idempotency key a retry finds the intent's order (waits for it while it runs); without, every
    attempt is a new order."""
    orchestrator, env = shop.orchestrator, shop.world.env
    fresh = itertools.count(1)
    generation: dict = {}          # intent -> its current order's number (a new one after a cancellation)
    running: dict = {}             # saga id -> event that fires when its placing ends

    def orders(svc, req):
        intent = req.key
        if not shop.config.idempotency_key:
            saga_id = (intent, next(fresh))
        else:
            saga_id = (intent, generation.setdefault(intent, 0))
            if saga_id in running:
                yield running[saga_id]
            row = orchestrator.db.get(ORDERS, saga_id)
            if row is not None and row["status"] == "CONFIRMED":
                return
            if row is not None and row["status"] == "CANCELLED":
                generation[intent] += 1
                saga_id = (intent, generation[intent])
            elif row is not None:                     # started, not driven: a crash took its placer
                raise ServiceError(svc.name, "conflict")
        done = running[saga_id] = env.event()
        try:
            status = yield from orchestrator.place(req, saga_id)
        finally:
            del running[saga_id]
            done.succeed()
        if status != COMMITTED:
            raise ServiceError(svc.name, "unavailable")
    return orders


__all__ = ["SCALE", "PEAK", "PATIENCE", "USER_RETRY", "SLOTS", "WORK", "PRODUCTS", "DRAIN", "POLL", "Shop",
           "Payment", "RetryAfterBackoff", "ShopOrchestrator", "ShopRelay", "build_shop"]
