"""One write path, built and run from a fault schedule: an application, its database, a broker, relays
and a consumer with its own database; then the checker's verdict.

``write_path("outbox", Schedule(app=[2.1], relays=[[3.0]], consumer=[4.2], db=[(5, 6)]))`` writes
``commands`` orders one every ``every`` seconds, runs until ``until`` (long enough for every queue to
drain once the faults are over) and returns a :class:`WriteRun`: the
:class:`~resilience_sim.metrics.checker.WriteCheck` and the parts, for plots and counters.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core import validate
from ..metrics.checker import WriteCheck, check_writes
from ..policies import MessageQueue
from .broker import Broker
from .consumer import EFFECTS, Consumer
from .database import Database
from .faults import Outage
from .outbox import OrderApp, OutboxRelay
from .world import World


@dataclass(frozen=True)
class Schedule:
    """When things fail: crash times of the app, of each relay and of the consumer, and outage windows
    ``(start, end)`` of the app's database, the broker and the consumer's database."""
    app: tuple = ()
    relays: tuple = ((),)
    consumer: tuple = ()
    db: tuple = ()
    broker: tuple = ()
    consumer_db: tuple = ()

    def __post_init__(self):
        for name in ("app", "consumer"):
            object.__setattr__(self, name, tuple(sorted(getattr(self, name))))
        object.__setattr__(self, "relays", tuple(tuple(sorted(r)) for r in self.relays) or ((),))
        for name in ("db", "broker", "consumer_db"):
            object.__setattr__(self, name, _windows(name, getattr(self, name)))


def _windows(name: str, windows) -> tuple:
    """Merge overlapping windows (a schedule drawn at random may overlap them)."""
    merged = []
    for start, end in sorted((float(s), float(e)) for s, e in windows):
        if end <= start:
            raise ValueError(f"{name} windows must end after they start, got ({start:g}, {end:g})")
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple(map(tuple, merged))


@dataclass
class WriteRun:
    check: WriteCheck
    queue: MessageQueue
    app: OrderApp
    relays: list = field(default_factory=list)
    consumer: Consumer | None = None

    @property
    def silently_dropped(self) -> int:
        """Messages neither processed nor dead-lettered: dropped, or still waiting at the end."""
        return self.queue.dropped + self.queue.waiting


def write_path(design: str, schedule: Schedule = Schedule(), *, dedupe: str = "transaction", commands: int = 30,
               every: float = 0.1, keys: int = 5, until: float = 60.0, seed: int = 1,
               visibility_timeout: float = 5.0, max_receives: int = 50, dead_letter: bool = True,
               work: float = 0.01, relay_options: dict | None = None) -> WriteRun:
    """Run one write path under ``schedule`` and check it (see :mod:`resilience_sim.sim.write_path`)."""
    if not isinstance(schedule, Schedule):
        raise validate.WrongType(f"schedule must be a Schedule, got {validate.show(schedule)}")
    commands = validate.integer("commands", commands, low=1, high=1_000_000)
    keys = validate.integer("keys", keys, low=1)
    world = World(seed)
    db, consumer_db = Database(world, "app_db"), Database(world, "consumer_db")
    broker = Broker(world, MessageQueue(visibility_timeout=visibility_timeout, max_receives=max_receives,
                                        dead_letter=dead_letter))
    for part, windows in ((db.service, schedule.db), (broker.service, schedule.broker),
                          (consumer_db.service, schedule.consumer_db)):
        if windows:
            Outage(part, list(windows))
    app = OrderApp(world, db, broker, design, range(commands), every=every, crashes=schedule.app,
                   keys=lambda command: command % keys)
    relays = []
    if design == "outbox":
        relays = [OutboxRelay(world, db, broker, name=f"relay{i}", crashes=crashes, **(relay_options or {}))
                  for i, crashes in enumerate(schedule.relays)]
    consumer = Consumer(world, broker, consumer_db, dedupe=dedupe, work=work, crashes=schedule.consumer)
    world.run(validate.positive("until", until))
    effects = [row["body"]["command"] for _, row in consumer_db.rows(EFFECTS)]     # the write each effect is of
    check = check_writes(attempted=app.attempted, acknowledged=app.acknowledged,
                         committed=[row_id for row_id, _ in db.rows("orders")], effects=effects)
    return WriteRun(check, broker.queue, app, relays, consumer)


__all__ = ["Schedule", "WriteRun", "write_path"]
