"""One chaos day of the shop: users arrive along the day's profile, the day's faults strike, and the
world runs on :data:`~resilience_sim.sim.shop.DRAIN` seconds after the day (no traffic) so that
queues, relays, sagas and jobs can finish; what the databases hold then is the orders' truth.

Users are the frontend's callers: a browse or search user calls it directly (an answer slower than
the user's patience counts as failed in the score), a checkout user through a client that gives up
after :data:`~resilience_sim.sim.shop.PATIENCE` and tries once more :data:`~resilience_sim.sim.shop.USER_RETRY`
seconds later (people do), so a checkout without an idempotency key can place, and charge, an order twice.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from ..core import validate
from ..metrics import Results
from ..policies import Constant, RetryPolicy
from .chaos import ChaosDay, DayTraffic, apply_chaos, chaos_day
from .client import Client
from .consumer import EFFECTS
from .saga import ORDERS
from .shop import DRAIN, PATIENCE, PEAK, PRODUCTS, USER_RETRY, Shop, build_shop
from .shop_config import ShopConfig
from .world import World


@dataclass
class DayRun:
    """What one chaos day produced: the day, the shop, the records (the day and its drain) and the
    orders as the databases hold them at the end."""
    day: ChaosDay
    shop: Shop
    results: Results
    orders: dict

    @property
    def config(self) -> ShopConfig:
        return self.shop.config


def _user(world, frontend, route: str):
    """What a user of ``route`` calls: the frontend itself (an answer slower than the user's
    patience counts as failed in the score), or for checkout a client that gives up and tries again."""
    if route != "checkout":
        return frontend
    return Client(world, frontend, name="users/checkout", timeout=PATIENCE[route],
                  retry=RetryPolicy(2, Constant(USER_RETRY)))


def run_day(config: ShopConfig, day: ChaosDay | int, *, traffic: float = 1.0) -> DayRun:
    """Run the shop of ``config`` through ``day`` (a ChaosDay, or a seed for :func:`chaos_day`);
    ``traffic`` scales every endpoint's rate (a test's lighter day)."""
    if not isinstance(day, ChaosDay):
        day = chaos_day(validate.integer("day", day, low=0))
    traffic = validate.positive("traffic", traffic)
    world = World(day.seed)
    shop = build_shop(world, config)
    apply_chaos(world, day, shop.services, providers={"payment": shop.payment})
    frontend = shop.services["frontend"]
    products = world.rng("workload/browse/products")
    intents = itertools.count(1)
    keys = {"browse": lambda: min(int(products.expovariate(1 / 40)), PRODUCTS - 1),
            "search": None, "checkout": lambda: next(intents)}
    for route, peak in PEAK.items():
        DayTraffic(world, _user(world, frontend, route), day.profile.scaled(peak * traffic), route=route,
                   key=keys[route])
    results = world.run(day.duration + DRAIN)
    return DayRun(day, shop, results, _orders_at_end(shop))


def _orders_at_end(shop: Shop) -> dict:
    """Per intent, from the databases: the statuses of its orders, the payments still charged, and
    the receipts emailed (the consumer's effects)."""
    statuses: dict = {}
    for saga_id, row in shop.db.rows(ORDERS):
        statuses.setdefault(saga_id[0], []).append(row["status"])
    charges: dict = {}
    for saga_id, _ in shop.payment.db.rows("effects"):
        charges[saga_id[0]] = charges.get(saga_id[0], 0) + 1
    receipts: dict = {}
    for _, row in shop.consumer.db.rows(EFFECTS):
        intent = row["body"]["intent"]
        receipts[intent] = receipts.get(intent, 0) + 1
    return {"statuses": statuses, "charges": charges, "receipts": receipts, "lost_events": shop.lost_events}


__all__ = ["DayRun", "run_day"]
