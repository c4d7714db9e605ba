"""The transactional outbox on real parts: an application's SQLite file, a relay thread publishing over
HTTP to a :class:`~resilience_sim.live.consumer.Consumer`, and crashes at chosen points.

The names are those of :mod:`resilience_sim.sim.outbox`. An application turns each order into a
business row (table ``orders``) and a message. Three designs (:data:`DESIGNS`), by :func:`write_command`:

* ``"commit, then publish"``: a crash between the two **loses** the message (committed, never sent);
* ``"publish, then commit"``: a crash between the two **invents** one (sent, never committed);
* ``"outbox"`` (:meth:`AppDatabase.place_order`): the order and an outbox row in **one transaction**
  (``BEGIN IMMEDIATE`` ... ``COMMIT``): both rows or neither. A message goes out iff its row committed.

:class:`OutboxRelay` is a thread that polls for unsent rows, claims them with a lease (``claimed_by``,
``lease_until`` in the table, written in one write transaction, so two relays never hold one key),
POSTs each with **the row's id as the message id** (the ``Idempotency-Key``; never a fresh one, which
would defeat dedupe), retrying with backoff (a :class:`~resilience_sim.policies.retry.RetryPolicy`),
then marks it sent. Row ids are ``AUTOINCREMENT``: never reused, so an id names one message forever.

What holds:

* **nothing lost**: a relay that dies holding a claim loses nothing: its lease expires and another
  relay (or its own restart, which holds none of its old claims) takes the rows over; so a row can be
  published twice, and the consumer dedupes by message id;
* **per-key order**: relays claim whole keys (no relay claims a key while another's live lease is on
  an unsent row of it) and publish a key's rows in id (commit) order, stopping at the first that
  fails; an attempt starts only if it ends (answered or timed out) before the lease does. So the
  first copies of a key's messages arrive in commit order; after a takeover a copy already sent may
  arrive again (a duplicate, not a reordering of first copies);
* **no routine copies**: several relays at once publish each row once unless one dies or runs out of
  lease (a lease is not a lock: a paused relay can still send after its lease ran out, one reason the
  consumer must dedupe).

Crashes are process kills (:class:`~resilience_sim.live.consumer.CrashPoint`): the thread stops at
once, the database connection and the HTTP client are dropped, nothing is marked and no lease is
released. The relay's points (:data:`RELAY_CRASH_POINTS`): ``"after claim"`` (rows leased, nothing
sent), ``"before publish"`` (a row about to be sent), ``"after publish"`` (the consumer has it, the row
is not marked: it will be sent again) and ``"after mark"`` (the rest of the batch still leased). The
application's (:data:`APP_CRASH_POINTS`): ``"between writes"`` (between its design's two writes) and
``"before answer"`` (all written, the user never told).

:func:`~resilience_sim.live.write_path.run_crash_story` runs the whole story and returns the Part IV
checker's verdict.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import sqlite3
import threading
import time
from operator import itemgetter

import httpx

from ..core import validate
from ..core.eventlog import EventLog
from ..policies import FullJitter, RetryPolicy, claim
from .attempts import reason_for_error, reason_for_status
from .consumer import Crash, CrashPoint, Crashes, directory_path, open_database, rows

DESIGNS = ("commit, then publish", "publish, then commit", "outbox")
ORDERS, OUTBOX = "orders", "outbox"
APP_CRASH_POINTS = ("between writes", "before answer")
RELAY_CRASH_POINTS = ("after claim", "before publish", "after publish", "after mark")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {ORDERS} (
    id PRIMARY KEY,                          -- the order id: the write id the checker counts
    customer TEXT NOT NULL,
    amount REAL NOT NULL,
    placed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS {OUTBOX} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,    -- the message id; never reused
    key TEXT NOT NULL,                       -- messages of one key leave in id order
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    claimed_by TEXT,
    lease_until REAL NOT NULL DEFAULT 0,     -- time.time() seconds: every process on the file agrees
    sent_at REAL);
CREATE INDEX IF NOT EXISTS outbox_unsent ON {OUTBOX} (key, id) WHERE sent_at IS NULL;
"""


class PublishError(Exception):
    """A message the consumer did not take, after every retry allowed."""


def _order_id(order_id):
    if isinstance(order_id, bool) or not isinstance(order_id, (int, str)) or order_id == "":
        raise validate.WrongType(f"order_id must be an int or a non-empty string, got {validate.show(order_id)}")
    return order_id


class AppDatabase:
    """The application's SQLite file (``directory/db_name``): tables ``orders`` and ``outbox``.

    One connection, used by one thread at a time. A crash (:class:`Crash` out of
    :func:`write_command`) closes it uncommitted, as a kill would; open a new AppDatabase on the same
    directory to restart. ``close()`` (or leaving ``with``) closes it."""

    def __init__(self, directory, *, db_name: str = "app.db"):
        self.path = os.path.join(directory_path("directory", directory), validate.text("db_name", db_name, empty=False))
        self._conn: sqlite3.Connection | None = open_database(self.path, SCHEMA)
        self._lock = threading.Lock()
        self.crashed = False

    def place_order(self, order_id, *, customer: str = "c0", amount: float = 1.0, crash: str | None = None) -> int:
        """The order and its outbox row in one transaction; the outbox row's id (the message id)."""
        return write_command("outbox", self, order_id, customer=customer, amount=amount, crash=crash)

    def connection(self) -> sqlite3.Connection:
        if self._conn is None:
            why = "crashed: open a new AppDatabase on the same directory (a restart)" if self.crashed else "is closed"
            raise RuntimeError(f"this AppDatabase ({self.path}) {why}")
        return self._conn

    def orders(self) -> list:
        """Every committed order's id, in the order placed (read on a connection of its own)."""
        return [i for (i,) in rows(self.path, f"SELECT id FROM {ORDERS} ORDER BY rowid")]

    def pending(self) -> int:
        """Outbox rows not yet marked sent."""
        return rows(self.path, f"SELECT count(*) FROM {OUTBOX} WHERE sent_at IS NULL")[0][0]

    def outbox(self) -> list[dict]:
        """Every outbox row as a dict (payload decoded), in id order."""
        names = ("id", "key", "payload", "created_at", "claimed_by", "lease_until", "sent_at")
        found = rows(self.path, f"SELECT {', '.join(names)} FROM {OUTBOX} ORDER BY id")
        return [{**dict(zip(names, r)), "payload": json.loads(r[2])} for r in found]

    def _die(self) -> None:
        conn, self._conn = self._conn, None
        self.crashed = True
        if conn is not None:
            conn.close()                      # an open transaction is discarded, as by a kill

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> "AppDatabase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AppDatabase({self.path!r}{', crashed' if self.crashed else ''})"


def write_command(design: str, db: AppDatabase, order_id, *, customer: str = "c0", amount: float = 1.0,
                  publisher: "Publisher | None" = None, crash: str | None = None):
    """Write one order the way ``design`` does; the outbox row's id for ``"outbox"``, else the message id.

    The dual writes publish with ``publisher`` (message id ``"order-<id>"``) and raise
    :class:`PublishError` when it gives up. ``crash`` (one of :data:`APP_CRASH_POINTS`) kills the
    application there: :class:`Crash` propagates and ``db`` is left crashed."""
    design = validate.choice("design", design, DESIGNS)
    if crash is not None:
        validate.choice("crash", crash, APP_CRASH_POINTS)
    if design != "outbox" and not isinstance(publisher, Publisher):
        raise validate.WrongType(f"publisher must be a Publisher for design {design!r}, got {validate.show(publisher)}")
    order = {"order_id": _order_id(order_id), "customer": validate.text("customer", customer, empty=False),
             "amount": validate.number("amount", amount)}
    conn = db.connection()
    with db._lock:
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(f"INSERT INTO {ORDERS} (id, customer, amount, placed_at) VALUES (?, ?, ?, ?)",
                             (order_id, customer, order["amount"], time.time()))
            except sqlite3.IntegrityError:
                raise ValueError(f"order_id {order_id!r} is placed already") from None
            if design == "outbox":
                if crash == "between writes":
                    raise Crash("crashed between writes")
                cur = conn.execute(f"INSERT INTO {OUTBOX} (key, payload, created_at) VALUES (?, ?, ?)",
                                   (customer, json.dumps(order), time.time()))
                result = cur.lastrowid
                conn.execute("COMMIT")
            else:
                result = f"order-{order_id}"
                if design == "commit, then publish":
                    conn.execute("COMMIT")
                    if crash == "between writes":
                        raise Crash("crashed between writes")     # committed, never sent: lost
                    _published(publisher, result, order)
                else:
                    _published(publisher, result, order)
                    if crash == "between writes":
                        raise Crash("crashed between writes")     # sent, never committed: invented
                    conn.execute("COMMIT")
            if crash == "before answer":
                raise Crash("crashed before answer")
            return result
        except Crash:
            db._die()
            raise
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _published(publisher: "Publisher", message_id: str, body: dict) -> None:
    outcome = publisher.publish(message_id, body)
    if outcome != "sent":
        raise PublishError(f"message {message_id!r} was not published: {outcome} ({publisher.last_reason})")


class Publisher:
    """POSTs a message to ``url + "/messages"`` with its id as the ``Idempotency-Key``, retrying as
    ``retry`` says (jitter drawn from ``rng``), on one httpx client (one keep-alive pool): 200 is sent.

    :meth:`publish` answers "sent", "lease" (the next attempt would not end before ``until``),
    "stopped" (``stop`` was set while waiting) or "gave up" (the retry policy said no: the last
    failure's reason is in ``last_reason``). Counters: ``attempts``, ``failures``."""

    def __init__(self, url: str, *, retry: RetryPolicy, rng: random.Random, timeout: float = 0.25):
        self.url = _url("url", url) + "/messages"
        if not isinstance(retry, RetryPolicy):
            raise validate.WrongType(f"retry must be a RetryPolicy, got {validate.show(retry)}")
        self.retry, self.rng = retry, rng
        self.timeout = validate.positive("timeout", timeout)
        self.client = httpx.Client(timeout=self.timeout)
        self.attempts = self.failures = 0
        self.last_reason: str | None = None

    def publish(self, message_id: str, body: dict, *, until: float | None = None,
                stop: threading.Event | None = None) -> str:
        previous = None
        for attempt in itertools.count(1):
            if until is not None and time.time() + self.timeout >= until:
                return "lease"
            self.attempts += 1
            response = error = None
            try:
                response = self.client.post(self.url, json=body, headers={"Idempotency-Key": message_id})
            except httpx.HTTPError as err:
                error = err
            if response is not None and response.status_code == 200:
                return "sent"
            self.failures += 1
            self.last_reason = reason_for_error(error) if error is not None else reason_for_status(response.status_code)
            remaining = None if until is None else until - time.time() - self.timeout
            wait = self.retry.decide(time.monotonic(), attempt, self.last_reason, self.rng, previous=previous,
                                     remaining=remaining)
            if wait is None:
                return "gave up"
            previous = wait
            if stop is None:
                time.sleep(wait)
            elif stop.wait(wait):
                return "stopped"

    def close(self) -> None:
        self.client.close()


def _url(name: str, url) -> str:
    url = validate.text(name, url, empty=False)
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{name} must be an http:// or https:// URL, got {url!r}")
    return url.rstrip("/")


def default_retry() -> RetryPolicy:
    """The relay's retries unless told otherwise: 5 attempts, full jitter from 10 ms, capped at 200 ms."""
    return RetryPolicy(5, FullJitter(0.01, cap=0.2))


class OutboxRelay:
    """A thread publishing an :class:`AppDatabase`'s outbox rows (see :mod:`resilience_sim.live.outbox`).

    ``OutboxRelay(db.path, consumer.url, lease=0.2, crash_at=CrashPoint("after publish", nth=3))``;
    ``start()``/``stop()`` or ``with``. ``stop()`` finishes the row in hand, releases the rest of its
    claims and joins the thread within ``join_timeout`` (else a RuntimeError). A crash ends the thread
    (``crashed`` is set); with ``restart_after`` a new incarnation (``claimed_by`` = ``name#starts``,
    holding none of the old claims) starts that many seconds later. Each HTTP attempt is bounded by
    ``timeout``, which must be shorter than ``lease``.

    Counters (of this object's life, as in the simulated relay): ``published`` (duplicates included),
    ``attempts``, ``marked``, ``claims`` (rows claimed), ``lost_leases`` (rows given up because the
    lease would run out, or whose mark found another relay's claim), ``gave_up`` (rows the retry
    policy gave up on), ``starts``, ``crashes``, ``db_errors``. ``events`` logs ``(time.monotonic(),
    row id, what)``: "claimed", "published", "marked sent", "released", "crashed <point>" (row id None
    for the last two)."""

    def __init__(self, db_path, consumer_url: str, *, batch: int = 20, poll_interval: float = 0.02,
                 lease: float = 1.0, timeout: float = 0.25, retry: RetryPolicy | None = None, seed: int = 0,
                 name: str = "relay", crash_at=None, restart_after: float | None = None,
                 join_timeout: float = 5.0):
        path = db_path.path if isinstance(db_path, AppDatabase) else db_path
        if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
            raise ValueError(f"db_path must be the path of an existing AppDatabase file, got {validate.show(db_path)}")
        self.db_path = os.fspath(path)
        self.consumer_url = _url("consumer_url", consumer_url)
        self.batch = validate.integer("batch", batch, low=1, high=10_000)
        self.poll_interval = validate.positive("poll_interval", poll_interval)
        self.lease = validate.positive("lease", lease)
        self.timeout = validate.number("timeout", timeout, low=0.0, high=self.lease, low_open=True)
        if self.timeout == self.lease:
            raise ValueError(f"timeout must be shorter than lease={self.lease:g} (an attempt must end within "
                             f"the lease), got {self.timeout:g}")
        self.retry = default_retry() if retry is None else retry
        if not isinstance(self.retry, RetryPolicy):
            raise validate.WrongType(f"retry must be a RetryPolicy or None, got {validate.show(retry)}")
        claim(self, retry=self.retry)
        self.seed = validate.integer("seed", seed, low=0)
        self.name = validate.text("name", name, empty=False)
        self._crashes = Crashes(crash_at, RELAY_CRASH_POINTS)
        self.restart_after = None if restart_after is None else validate.non_negative("restart_after", restart_after)
        self.join_timeout = validate.positive("join_timeout", join_timeout)
        self._rng = random.Random(f"{self.seed}/relay/{self.name}")
        self._publisher: Publisher | None = None
        self._attempts_before = 0
        self.published = self.marked = self.claims = self.lost_leases = self.gave_up = 0
        self.starts = self.crashes = self.db_errors = 0
        self.crashed = threading.Event()
        self.events = EventLog(key=itemgetter(2))
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def attempts(self) -> int:
        """HTTP attempts made so far (every incarnation's)."""
        publisher = self._publisher
        return self._attempts_before + (publisher.attempts if publisher is not None else 0)

    @property
    def owner(self) -> str:
        """What the current (or last) incarnation writes in ``claimed_by``."""
        return f"{self.name}#{self.starts}"

    def start(self) -> "OutboxRelay":
        if self._thread is not None:
            raise RuntimeError(f"{self.name} was started already: make a new OutboxRelay to start another")
        self._thread = threading.Thread(target=self._life, name=f"{self.name}-thread", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and join (see the class docstring); harmless when stopped or crashed."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(self.join_timeout)
            if thread.is_alive():
                raise RuntimeError(f"{self.name} did not stop within join_timeout={self.join_timeout:g} s")

    def __enter__(self) -> "OutboxRelay":
        return self.start() if self._thread is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _life(self) -> None:
        while True:
            self.starts += 1
            try:
                self._incarnation(self.owner)
                return                                   # stopped cleanly
            except Crash as crash:
                self.crashes += 1
                self._note(None, str(crash))
                self.crashed.set()
            if self.restart_after is None or self._stopping.wait(self.restart_after):
                return

    def _incarnation(self, owner: str) -> None:
        conn = open_database(self.db_path, SCHEMA)
        publisher = self._publisher = Publisher(self.consumer_url, retry=self.retry, rng=self._rng,
                                                timeout=self.timeout)
        try:                                             # a kill drops both: the finally stands for the OS
            while not self._stopping.is_set():
                try:
                    batch = self._claim(conn, owner)
                    done = self._send(conn, publisher, owner, batch) if batch else False
                    if batch and not done:
                        self._release(conn, owner)
                except sqlite3.Error:
                    self.db_errors += 1
                    done = False
                if not done:
                    self._stopping.wait(self.poll_interval)
        finally:
            self._attempts_before += publisher.attempts
            self._publisher = None
            publisher.close()
            conn.close()

    # --- one batch ---------------------------------------------------------------------------------
    def _claim(self, conn: sqlite3.Connection, owner: str) -> list:
        """Lease the oldest unsent rows (up to ``batch``) of keys no other live lease holds; in id order."""
        now = time.time()
        until = now + self.lease
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = conn.execute(
                f"SELECT id, payload FROM {OUTBOX} WHERE sent_at IS NULL AND key NOT IN ("
                f"  SELECT key FROM {OUTBOX} WHERE sent_at IS NULL AND lease_until > ? AND claimed_by IS NOT ?)"
                f" ORDER BY id LIMIT ?", (now, owner, self.batch)).fetchall()
            conn.executemany(f"UPDATE {OUTBOX} SET claimed_by = ?, lease_until = ? WHERE id = ?",
                             [(owner, until, row_id) for row_id, _ in found])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.claims += len(found)
        for row_id, _ in found:
            self._note(row_id, "claimed")
        if found:
            self._crashes.reached("after claim")
        return [(row_id, json.loads(payload), until) for row_id, payload in found]

    def _send(self, conn, publisher: Publisher, owner: str, batch: list) -> bool:
        """Publish and mark each row in order; False at the first one left unsent (or on stop)."""
        for row_id, payload, until in batch:
            if self._stopping.is_set():
                return False
            self._crashes.reached("before publish")
            outcome = publisher.publish(str(row_id), payload, until=until, stop=self._stopping)
            if outcome != "sent":
                if outcome == "lease":
                    self.lost_leases += 1
                elif outcome == "gave up":
                    self.gave_up += 1
                return False
            self.published += 1
            self._note(row_id, "published")
            self._crashes.reached("after publish")
            if not self._mark(conn, owner, row_id):
                self.lost_leases += 1                    # another relay took the key over
                return False
            self._crashes.reached("after mark")
        return True

    def _mark(self, conn, owner: str, row_id: int) -> bool:
        cur = conn.execute(f"UPDATE {OUTBOX} SET sent_at = ? WHERE id = ? AND claimed_by = ? AND sent_at IS NULL",
                           (time.time(), row_id, owner))
        if cur.rowcount == 1:
            self.marked += 1
            self._note(row_id, "marked sent")
            return True
        return False

    def _release(self, conn, owner: str) -> None:
        conn.execute(f"UPDATE {OUTBOX} SET claimed_by = NULL, lease_until = 0 WHERE claimed_by = ? AND sent_at IS NULL",
                     (owner,))
        self._note(None, "released")

    def _note(self, row_id, what: str) -> None:
        self.events.append((time.monotonic(), row_id, what))

    def stats(self) -> dict:
        names = ("starts", "crashes", "claims", "published", "marked", "lost_leases", "gave_up", "db_errors")
        return {n: getattr(self, n) for n in names}

    def __repr__(self) -> str:
        return f"OutboxRelay({self.name!r}, lease={self.lease:g}, poll_interval={self.poll_interval:g})"


__all__ = ["DESIGNS", "ORDERS", "OUTBOX", "APP_CRASH_POINTS", "RELAY_CRASH_POINTS", "AppDatabase", "write_command",
           "Publisher", "PublishError", "OutboxRelay", "default_retry", "CrashPoint", "Crash"]
