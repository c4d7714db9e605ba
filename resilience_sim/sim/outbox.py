"""Writes that must reach another system: the dual write, the transactional outbox and its relay.

An application turns each command into a business row in its own database and a message on a
broker. Three designs (:data:`DESIGNS`), written by :func:`write_command`:

* ``"commit, then publish"``: a crash between the two **loses** the message (committed, never sent);
* ``"publish, then commit"``: a crash, or a failed commit, between the two **invents** one (sent, never
  committed);
* ``"outbox"``: the business row and an outbox row in **one transaction**; an :class:`OutboxRelay`
  publishes the outbox rows later. A message goes out if and only if its row committed.

The relay polls for unsent rows, claims them with a lease (a conditional update checked at the commit
point), publishes each with retries and backoff using **the row's id as the message id**, and marks
it sent. A relay that crashes while holding a claim loses nothing: its claim expires and another
relay (or itself, restarted) takes the rows over, so a row can be published twice (consumers dedupe
by message id). Several relays claim whole keys: all the unsent rows of a key go to one relay, which
publishes them in commit order, so **a key's messages leave in commit order** while one relay holds
its lease; after a takeover, copies already sent may arrive late (duplicates, not reorderings of
first copies: the new holder starts again from the oldest unsent row).

Two classic mistakes are offered, to be caught: ``message_ids="fresh"`` (a new id per publish attempt,
which defeats dedupe) and ``mark="before"`` (marking sent before publishing, which loses the message
if the relay crashes in between).
"""
from __future__ import annotations

import itertools

from ..core import validate
from ..policies import Backoff, Exponential, claim
from .crashes import Restartable
from .service import Request, ServiceError

DESIGNS = ("commit, then publish", "publish, then commit", "outbox")
#: The outbox table and its columns.
OUTBOX = "outbox"


def outbox_row(key, payload, seq: int) -> dict:
    """The outbox row of a message (unsent, unclaimed); ``seq`` orders a key's rows."""
    return {"key": key, "payload": payload, "seq": seq, "status": "new", "lease_owner": None, "lease_until": 0.0}


def write_command(design: str, db, broker, req, command_id, row: dict, *, key=None, table: str = "orders",
                  seq: int = 0):
    """Write one command the way ``design`` does (a simpy generator); ServiceError if a step fails."""
    design = validate.choice("design", design, DESIGNS)
    message = {"key": key, "seq": seq, "command": command_id}
    if design == "outbox":
        tx = db.transaction()
        tx.insert(table, command_id, row)
        tx.insert(OUTBOX, command_id, outbox_row(key, message, seq))
        yield from tx.commit(req)
        return
    tx = db.transaction()
    tx.insert(table, command_id, row)
    if design == "commit, then publish":
        yield from tx.commit(req)
        yield from broker.publish(req, command_id, message)       # a crash before this: lost
    else:
        yield from broker.publish(req, command_id, message)       # a failure after this: invented
        yield from tx.commit(req)


class OutboxRelay:
    """Publishes a database's outbox rows to a broker (see :mod:`resilience_sim.sim.outbox`).

    Counters: ``published`` (publishes that succeeded, duplicates included), ``attempts``,
    ``marked`` (rows marked sent), ``claims`` (rows claimed), ``lost_leases`` (rows given up because
    the lease would run out). ``events`` lists ``(time, row id, what)`` with what one of "claimed",
    "published", "publish failed", "marked sent", for timelines."""

    def __init__(self, world, db, broker, *, name: str = "relay", poll_interval: float = 1.0, lease: float = 10.0,
                 batch: int = 20, backoff: Backoff | None = None, crashes=(), restart_after: float = 1.0,
                 message_ids: str = "row", mark: str = "after"):
        self.world, self.env, self.db, self.broker = world, world.env, db, broker
        self.name = validate.text("name", name, empty=False)
        self.poll_interval = validate.positive("poll_interval", poll_interval)
        self.lease = validate.positive("lease", lease)
        self.batch = validate.integer("batch", batch, low=1, high=100_000)
        if backoff is not None and not isinstance(backoff, Backoff):
            raise validate.WrongType(f"backoff must be a Backoff or None, got {validate.show(backoff)}")
        self.backoff = Exponential(0.1, cap=5.0) if backoff is None else backoff
        claim(world, backoff=self.backoff)
        self.message_ids = validate.choice("message_ids", message_ids, ("row", "fresh"))
        self.mark = validate.choice("mark", mark, ("after", "before"))
        self._rng = world.rng(f"relay/{name}/backoff")
        self._fresh = itertools.count(1)
        self.published = self.attempts = self.marked = self.claims = self.lost_leases = 0
        self.events: list = []
        self.process = Restartable(world, name, self._life, crashes=crashes, restart_after=restart_after)

    def _req(self) -> Request:
        return Request._unchecked(self.env.now, self.name, None)

    def _note(self, row_id, what: str) -> None:
        self.events.append((self.env.now, row_id, what))

    def _life(self):
        owner = f"{self.name}#{self.process.starts}"      # a restarted relay holds none of its old claims
        env = self.env
        while True:
            try:
                rows = yield from self._claim(owner)
                for row_id, row in rows:
                    until = row["lease_until"]
                    if self.mark == "before":
                        yield from self._mark(owner, row_id)
                    if not (yield from self._publish(row_id, row, until)):
                        break                           # out of lease time: leave the rest to the next claim
                    if self.mark == "after":
                        yield from self._mark(owner, row_id)
            except ServiceError:                        # the database or broker failed: try again later
                rows = ()
            if not rows:
                yield env.timeout(self.poll_interval)

    def _claim(self, owner: str):
        """Claim the unsent rows of whole keys (oldest first, up to ``batch``); the claimed rows in order."""
        now = self.env.now
        unsent = yield from self.db.select(self._req(), OUTBOX, where=lambda r: r["status"] == "new")
        busy = {r["key"] for _, r in unsent if r["lease_until"] > now}
        chosen = []
        for row_id, row in sorted(unsent, key=lambda item: item[1]["seq"]):
            if row["key"] not in busy and len(chosen) < self.batch:
                chosen.append((row_id, row))
        if not chosen:
            return []
        until = self.env.now + self.lease
        tx = self.db.transaction()
        for row_id, _ in chosen:
            tx.update(OUTBOX, row_id, {"lease_owner": owner, "lease_until": until},
                      where=lambda r, t=self.env.now: r["status"] == "new" and r["lease_until"] <= t)
        applied = yield from tx.commit(self._req())
        mine = [(row_id, {**row, "lease_until": until}) for row_id, row in chosen if (OUTBOX, row_id) in applied]
        self.claims += len(mine)
        for row_id, _ in mine:
            self._note(row_id, "claimed")
        return mine

    def _publish(self, row_id, row, until: float):
        """Publish one row, retrying with backoff while the lease lasts: True once the broker has it."""
        env, attempt = self.env, 0
        while True:
            attempt += 1
            self.attempts += 1
            message_id = row_id if self.message_ids == "row" else (row_id, next(self._fresh))
            try:
                yield from self.broker.publish(self._req(), message_id, row["payload"])
                self.published += 1
                self._note(row_id, "published")
                return True
            except ServiceError:
                self._note(row_id, "publish failed")
                wait = self.backoff.delay(attempt, self._rng)
                if env.now + wait >= until:
                    self.lost_leases += 1
                    return False
                yield env.timeout(wait)

    def _mark(self, owner: str, row_id):
        tx = self.db.transaction()
        tx.update(OUTBOX, row_id, {"status": "sent"}, where=lambda r: r["lease_owner"] == owner)
        applied = yield from tx.commit(self._req())
        if (OUTBOX, row_id) in applied:
            self.marked += 1
            self._note(row_id, "marked sent")

    def __repr__(self) -> str:
        return f"OutboxRelay({self.name!r}, poll_interval={self.poll_interval:g}, lease={self.lease:g})"


class OrderApp:
    """An application writing ``commands`` (command ids, in order) one every ``every`` seconds with
    ``design``; it crashes at ``crashes`` (losing the command in hand: its user is never answered)
    and restarts after ``restart_after`` s. ``attempted`` and ``acknowledged`` list command ids;
    ``events`` lists ``(time, command, what)``: "started", "acknowledged" or "failed" (a crash
    leaves a "started" with no end: the user never heard)."""

    def __init__(self, world, db, broker, design: str, commands, *, every: float = 0.1, keys=None,
                 crashes=(), restart_after: float = 1.0, name: str = "app"):
        self.world, self.env, self.db, self.broker = world, world.env, db, broker
        self.design = validate.choice("design", design, DESIGNS)
        self.commands = list(commands)
        self.every = validate.positive("every", every)
        self.keys = keys if keys is None else validate.function("keys", keys)
        self.attempted: list = []
        self.acknowledged: list = []
        self.events: list = []
        self._next = 0
        self.process = Restartable(world, name, self._life, crashes=crashes, restart_after=restart_after)

    def _life(self):
        env = self.env
        while self._next < len(self.commands):
            command = self.commands[self._next]
            self._next += 1                   # a crashed command is not retried: its user gave up
            self.attempted.append(command)
            self.events.append((env.now, command, "started"))
            key = None if self.keys is None else self.keys(command)
            req = Request._unchecked(env.now, "order", key)
            try:
                yield from write_command(self.design, self.db, self.broker, req, command, {"command": command},
                                         key=key, seq=self._next)
                self.acknowledged.append(command)
                self.events.append((env.now, command, "acknowledged"))
            except ServiceError:
                self.events.append((env.now, command, "failed"))
            yield env.timeout(self.every)


__all__ = ["DESIGNS", "OUTBOX", "outbox_row", "write_command", "OutboxRelay", "OrderApp"]
