"""The write path's whole story on real parts, checked: orders placed while the relay and the consumer
crash at chosen points and restart, then the Part IV checker's verdict (the live twin of
:mod:`resilience_sim.sim.write_path`)."""
from __future__ import annotations

import contextlib
import random
import time
from typing import NamedTuple

from ..core import validate
from ..metrics.checker import WriteCheck, check_writes
from ..policies import FullJitter, RetryPolicy
from .consumer import CRASH_POINTS as CONSUMER_CRASH_POINTS
from .consumer import DEDUPES, Consumer, Crash, CrashPoint, Crashes
from .outbox import (APP_CRASH_POINTS, DESIGNS, RELAY_CRASH_POINTS, AppDatabase, OutboxRelay, Publisher,
                     PublishError, write_command)


class Story(NamedTuple):
    """What :func:`run_crash_story` returns: the checker's verdict and what happened."""
    check: WriteCheck
    details: dict


def run_crash_story(directory, *, design: str = "outbox", dedupe: str = "transaction", orders: int = 50,
                    keys: int = 5, app_crash: CrashPoint | None = CrashPoint("between writes", nth=10),
                    relay_crash: CrashPoint | None = CrashPoint("after publish", nth=20),
                    consumer_crash: CrashPoint | None = CrashPoint("before reply", nth=30), seed: int = 0,
                    lease: float = 0.2, poll_interval: float = 0.02, restart_after: float | None = 0.02,
                    time_limit: float = 10.0) -> Story:
    """Place ``orders`` with ``design`` while the relay (the outbox design only) and a consumer
    (``dedupe``) run; each component crashes once at its point and a supervisor restarts it after
    ``restart_after`` seconds (None: never). Then wait until the outbox is drained (a TimeoutError
    after ``time_limit`` seconds) and check: ``attempted`` the orders tried, ``acknowledged`` those
    whose write returned, ``committed`` the orders in the database, ``effects`` the consumer's.

    Every part is stopped and every file closed before it returns (or raises)."""
    design = validate.choice("design", design, DESIGNS)
    orders = validate.integer("orders", orders, low=1, high=10_000)
    keys = validate.integer("keys", keys, low=1)
    seed = validate.integer("seed", seed, low=0)
    time_limit = validate.positive("time_limit", time_limit)
    if app_crash is not None and not isinstance(app_crash, CrashPoint):
        raise validate.WrongType(f"app_crash must be a CrashPoint or None, got {validate.show(app_crash)}")
    Crashes(app_crash, APP_CRASH_POINTS, "app_crash")
    Crashes(relay_crash, RELAY_CRASH_POINTS, "relay_crash")
    Crashes(consumer_crash, CONSUMER_CRASH_POINTS, "consumer_crash")
    validate.choice("dedupe", dedupe, DEDUPES)
    lease = validate.positive("lease", lease)
    rng = random.Random(f"{seed}/orders")
    started = time.monotonic()
    attempted, acknowledged, app_crashes, unpublished = [], [], 0, 0
    consumer = Consumer(directory, dedupe=dedupe, crash_at=consumer_crash, restart_after=restart_after)
    relay = publisher = None
    with contextlib.ExitStack() as stack:
        db = stack.enter_context(AppDatabase(directory))
        stack.enter_context(consumer)
        if design == "outbox":
            relay = OutboxRelay(db.path, consumer.url, lease=lease, timeout=lease / 2, poll_interval=poll_interval,
                                crash_at=relay_crash, restart_after=restart_after, seed=seed)
            stack.enter_context(relay)
        else:
            publisher = Publisher(consumer.url, retry=RetryPolicy(6, FullJitter(0.005, cap=0.1)),
                                  rng=random.Random(f"{seed}/app"), timeout=lease / 2)
            stack.callback(publisher.close)
        for i in range(orders):
            attempted.append(i)
            crash = app_crash.point if app_crash is not None and app_crash.nth == i + 1 else None
            try:
                write_command(design, db, i, customer=f"c{i % keys}", amount=rng.randint(1, 100),
                              publisher=publisher, crash=crash)
                acknowledged.append(i)
            except Crash:
                app_crashes += 1
                db = stack.enter_context(AppDatabase(directory))      # the application restarts
            except PublishError:
                unpublished += 1                                     # its user saw an error
        while (left := db.pending()) and time.monotonic() - started < time_limit:
            time.sleep(0.005)
        if left:
            raise TimeoutError(f"the outbox was not drained within time_limit={time_limit:g} s: {left} of "
                               f"{len(db.outbox())} rows unsent (relay {relay.stats() if relay else None}, "
                               f"consumer {consumer.stats()})")
    check = check_writes(attempted=attempted, acknowledged=acknowledged, committed=db.orders(),
                         effects=consumer.effects())
    details = {"design": design, "dedupe": dedupe, "seconds": time.monotonic() - started,
               "app_crashes": app_crashes, "unpublished": unpublished,
               "relay": relay.stats() if relay else None, "consumer": consumer.stats()}
    return Story(check, details)



__all__ = ["Story", "run_crash_story"]
