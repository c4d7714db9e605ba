"""A consumer of a broker's messages, in simulated time: receive, apply the effect, acknowledge.

Each message's effect is a row in the consumer's own database (table ``effects``), so a checker can
count how often each message took effect. How duplicates (redeliveries, messages published twice)
are met (``dedupe``):

* ``"transaction"``, the idempotent consumer: the message id goes into table ``processed`` **in the
  same transaction** as the effect; a second copy's commit fails ("conflict") and is only acknowledged.
  Every message takes effect exactly once, whatever crashes.
* ``"separate"``, a classic mistake: look the id up, apply the effect, then record the id in a second
  transaction; a crash between the two applies the effect twice.
* ``"none"``: every delivery takes effect (at-least-once delivery shows as duplicates).

A consumer that crashes mid-message never acknowledges it; the message is delivered again after the
visibility timeout. Processing (``work`` seconds) that outlasts the visibility timeout finds its
acknowledgement refused, and the message is delivered again.
"""
from __future__ import annotations

import itertools

from ..core import validate
from ..core.distributions import as_distribution
from .crashes import Restartable
from .service import Request, ServiceError

EFFECTS, PROCESSED = "effects", "processed"
DEDUPES = ("transaction", "separate", "none")


class Consumer:
    """Counters: ``deliveries``, ``effects``, ``duplicates_skipped``, ``late_acks`` (acks refused
    because the visibility timeout had passed). ``events`` lists ``(time, message id, what)``:
    "received", "applied", "duplicate skipped", "acked", "ack refused"."""

    def __init__(self, world, broker, db, *, name: str = "consumer", dedupe: str = "transaction", work=0.01,
                 poll_interval: float = 0.2, crashes=(), restart_after: float = 1.0):
        self.world, self.env, self.broker, self.db = world, world.env, broker, db
        self.name = validate.text("name", name, empty=False)
        self.dedupe = validate.choice("dedupe", dedupe, DEDUPES)
        self.work = as_distribution("work", work, number_means="fixed")
        self.poll_interval = validate.positive("poll_interval", poll_interval)
        self._rng = world.rng(f"consumer/{name}/work")
        self._effect_ids = itertools.count(1)        # unique ids, like UUIDs: not state a crash loses
        self.deliveries = self.effects = self.duplicates_skipped = self.late_acks = 0
        self.events: list = []
        self.process = Restartable(world, name, self._life, crashes=crashes, restart_after=restart_after)

    def _req(self) -> Request:
        return Request._unchecked(self.env.now, self.name, None)

    def _life(self):
        env = self.env
        while True:
            try:
                delivery = yield from self.broker.receive(self._req())
                if delivery is None:
                    yield env.timeout(self.poll_interval)
                    continue
                self.deliveries += 1
                self._note(delivery.message_id, "received")
                yield from self._handle(delivery)
                if (yield from self.broker.ack(self._req(), delivery.receipt)):
                    self._note(delivery.message_id, "acked")
                else:
                    self.late_acks += 1
                    self._note(delivery.message_id, "ack refused")
            except ServiceError:
                yield env.timeout(self.poll_interval)

    def _handle(self, delivery):
        env, db, mid = self.env, self.db, delivery.message_id
        if self.dedupe == "separate" and db.get(PROCESSED, mid) is not None:
            self.duplicates_skipped += 1
            self._note(mid, "duplicate skipped")
            return
        work = self.work.sample(self._rng)
        if work > 0:
            yield env.timeout(work)
        tx = db.transaction()
        tx.insert(EFFECTS, (self.name, next(self._effect_ids)), {"message_id": mid, "body": delivery.body})
        if self.dedupe == "transaction":
            tx.insert(PROCESSED, mid, {"at": env.now})
        try:
            yield from tx.commit(self._req())
        except ServiceError as err:
            if err.reason != "conflict":
                raise
            self.duplicates_skipped += 1           # processed already: only acknowledge
            self._note(mid, "duplicate skipped")
            return
        self.effects += 1
        self._note(mid, "applied")
        if self.dedupe == "separate":
            mark = db.transaction()
            mark.insert(PROCESSED, mid, {"at": env.now})
            yield from mark.commit(self._req())

    def _note(self, message_id, what: str) -> None:
        self.events.append((self.env.now, message_id, what))

    def effect_ids(self) -> list:
        """The message id of every effect committed in the consumer's database, in commit order."""
        return [row["message_id"] for _, row in self.db.rows(EFFECTS)]

    def __repr__(self) -> str:
        return f"Consumer({self.name!r}, dedupe={self.dedupe!r})"


__all__ = ["Consumer", "EFFECTS", "PROCESSED", "DEDUPES"]
