"""An idempotent consumer on real parts: an HTTP service that applies each message once, in SQLite.

``POST /messages`` with a JSON object body and an ``Idempotency-Key`` header (the message id) applies
the message's effect: a row in table ``effects`` of the consumer's own SQLite file. How a second copy
of a message is met (``dedupe``, the names of :mod:`resilience_sim.sim.consumer`):

* ``"transaction"``, the idempotent consumer: the message id goes into table ``processed`` **in the same
  transaction** as the effect; a copy whose id is there already is only answered. Every message takes
  effect exactly once, whatever crashes;
* ``"none"``: every delivery takes effect (at-least-once delivery shows as duplicated effects).

Answers: ``200 {"status": "applied"}`` for a new message and ``200 {"status": "duplicate"}`` for a
replay (the sender must not retry either), ``400`` for a request without a key or a JSON object body,
``404`` elsewhere.

Crashes are process kills, at chosen points (:class:`CrashPoint`, :data:`CRASH_POINTS`):

* ``"before commit"``: the effect (and the dedupe row) are written, uncommitted; the crash loses them;
* ``"before reply"``: the effect is committed, the reply never sent; the sender retries, and only
  dedupe stops a second effect.

A crash drops the request's connection without an answer, closes the database connection without
committing and stops the server, as a killed process would; with ``restart_after`` a supervisor starts
it again that many seconds later, on the same port and the same file, which keep what was committed.

What the live processes on SQLite share is defined here too: :class:`Crash` (a kill),
:class:`CrashPoint` and :func:`open_database`.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter

from ..core import validate
from ..core.eventlog import EventLog
from .server import Handler, LoopbackServer

DEDUPES = ("transaction", "none")
CRASH_POINTS = ("before commit", "before reply")
EFFECTS, PROCESSED = "effects", "processed"
#: Seconds a connection waits for another's write lock before SQLite answers "database is locked".
BUSY_TIMEOUT = 2.0


class Crash(BaseException):
    """A process kill at a crash point. A ``BaseException``, so that no ``except Exception`` on the way
    catches it, as nothing catches a SIGKILL."""


@dataclass(frozen=True)
class CrashPoint:
    """Kill the process the ``nth`` time (1 = the first) it reaches ``point``; once per object's life
    (its count is kept by the test harness, outside the process, so a restart does not reset it)."""
    point: str
    nth: int = 1

    def __post_init__(self):
        validate.text("point", self.point, empty=False)
        object.__setattr__(self, "nth", validate.integer("nth", self.nth, low=1))


class Crashes:
    """The crash points armed in one component: ``reached(point)`` raises :class:`Crash` at the right
    time. ``crash_at`` is a CrashPoint, a list of them, or None; each point must be one of ``allowed``."""

    def __init__(self, crash_at, allowed: tuple, name: str = "crash_at"):
        if crash_at is None:
            points = []
        elif isinstance(crash_at, CrashPoint):
            points = [crash_at]
        elif isinstance(crash_at, Iterable) and not isinstance(crash_at, (str, bytes)):
            points = list(crash_at)
        else:
            raise validate.WrongType(f"{name} must be a CrashPoint, a list of them or None, "
                                     f"got {validate.show(crash_at)}")
        for p in points:
            if not isinstance(p, CrashPoint):
                raise validate.WrongType(f"{name} must hold CrashPoints, got {validate.show(p)}")
            validate.choice(f"{name} point", p.point, allowed)
        self.armed = {(p.point, p.nth) for p in points}
        self.seen: dict = {}
        self.fired: list = []

    def reached(self, point: str) -> None:
        n = self.seen[point] = self.seen.get(point, 0) + 1
        if (point, n) in self.armed:
            self.armed.discard((point, n))
            self.fired.append((point, n))
            raise Crash(f"crashed {point}")


def open_database(path, schema: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit: ``BEGIN IMMEDIATE`` ... ``COMMIT``),
    write-ahead log, ``synchronous=NORMAL`` (a commit survives a process kill, the crash shown here,
    though not a power cut), with ``schema`` created if missing. Close it when done."""
    conn = sqlite3.connect(os.fspath(path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(schema)
    except BaseException:
        conn.close()
        raise
    return conn


def rows(path, sql: str, params=()) -> list:
    """The rows of one query, on a connection opened and closed for it (works while nobody runs)."""
    conn = sqlite3.connect(os.fspath(path), timeout=BUSY_TIMEOUT)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def directory_path(name: str, directory) -> str:
    """``directory`` if it is an existing directory (a str or a path), else an error naming ``name``."""
    if not isinstance(directory, (str, os.PathLike)):
        raise validate.WrongType(f"{name} must be a directory path, got {validate.show(directory)}")
    path = os.fspath(directory)
    if not os.path.isdir(path):
        raise ValueError(f"{name} must be an existing directory, got {path!r}")
    return path


SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {EFFECTS} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- commit order
    message_id TEXT NOT NULL,
    write_id,                                -- the body's "order_id": the write this is an effect of
    body TEXT NOT NULL,
    at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS {PROCESSED} (message_id TEXT PRIMARY KEY, at REAL NOT NULL);
"""


class _MessageHandler(Handler):
    def do_POST(self):                                   # noqa: N802 - the stdlib's name
        if self.path != "/messages":
            return self._answer(404, {"error": f"no such path {self.path!r}: POST /messages"})
        key = self.headers.get("Idempotency-Key")
        try:
            body = json.loads(self.read_body() or b"null")
        except ValueError:
            body = None
        if not key:
            return self._answer(400, {"error": "an Idempotency-Key header (the message id) is required"})
        if not isinstance(body, dict):
            return self._answer(400, {"error": "the body must be a JSON object"})
        try:
            status = self.server.app._handle(key, body)
        except Crash:
            self._drop()
            return
        except sqlite3.Error as err:
            return self._answer(503, {"error": f"the consumer's database failed: {err}"})
        self._answer(200, {"status": status, "message_id": key})

    def _answer(self, status: int, payload: dict) -> None:
        self.send_json(status, json.dumps(payload).encode())

    def _drop(self) -> None:
        """A killed process answers nothing: shut the connection without a byte."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Consumer:
    """The consumer service (see :mod:`resilience_sim.live.consumer`), on 127.0.0.1.

    ``Consumer(directory, dedupe="transaction", crash_at=CrashPoint("before reply", nth=3),
    restart_after=0.05)``; ``start()``/``stop()``/``restart()`` or ``with``. The first start picks a free
    port (or takes ``port``); every restart keeps it, so senders keep one URL. Counters (of this
    object's life): ``starts``, ``crashes``, ``received`` (messages handled), ``applied``, ``replays``
    (copies answered "duplicate"); ``crashed`` is set at the first crash. ``events`` logs
    ``(time.monotonic(), message id, what)``, what one of "applied", "duplicate", "crashed <point>".
    """

    def __init__(self, directory, *, dedupe: str = "transaction", port: int = 0, crash_at=None,
                 restart_after: float | None = None, name: str = "consumer", db_name: str = "consumer.db",
                 max_connections: int = 16, join_timeout: float = 2.0):
        self.path = os.path.join(directory_path("directory", directory), validate.text("db_name", db_name, empty=False))
        self.dedupe = validate.choice("dedupe", dedupe, DEDUPES)
        self.port_wanted = validate.integer("port", port, low=0, high=65535)
        self._crashes = Crashes(crash_at, CRASH_POINTS)
        self.restart_after = None if restart_after is None else validate.non_negative("restart_after", restart_after)
        self.name = validate.text("name", name, empty=False)
        self.max_connections = validate.integer("max_connections", max_connections, low=1)
        self.join_timeout = validate.positive("join_timeout", join_timeout)
        self.starts = self.crashes = self.received = self.applied = self.replays = 0
        self.crashed = threading.Event()
        self.events = EventLog(key=itemgetter(2))
        self._lock = threading.Lock()            # one message at a time on the connection
        self._life = threading.Lock()            # start, stop and the supervisor's restart
        self._stopping = threading.Event()
        self._conn: sqlite3.Connection | None = None
        self._server: LoopbackServer | None = None
        self._supervisor: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether its server is up (a crashed one is down once its supervisor has stopped it)."""
        return self._server is not None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running: call start() first")
        return self._server.url

    @property
    def port(self) -> int:
        """The port it listens on (kept across restarts once chosen)."""
        return self._server.port if self._server is not None else self.port_wanted

    def start(self) -> "Consumer":
        with self._life:
            if self._server is not None:
                raise RuntimeError(f"{self.name} is already running on port {self.port}")
            self._stopping.clear()
            self._start()
        return self

    def _start(self) -> None:
        conn = open_database(self.path, SCHEMA)
        server = LoopbackServer(_MessageHandler, port=self.port_wanted, app=self, name=self.name,
                                max_connections=self.max_connections, join_timeout=self.join_timeout)
        try:
            server.start()
        except BaseException:
            conn.close()
            raise
        self.port_wanted = server.port
        self._conn, self._server = conn, server
        self.starts += 1

    def stop(self) -> None:
        """Stop serving (a clean shutdown: the message in hand finishes); harmless when stopped.
        Joins the supervisor too (before and after: a crash may happen while stopping)."""
        self._stopping.set()
        self._join_supervisor()
        with self._life:
            self._halt()
        self._join_supervisor()

    def _join_supervisor(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.join(self.join_timeout + 1.0)

    def restart(self) -> "Consumer":
        """Stop (if running) and start again, on the same port and the same file."""
        self.stop()
        return self.start()

    def _halt(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _die(self, point: str, message_id: str) -> None:
        """Called with ``_lock`` held, at a crash: drop the connection uncommitted, then have the
        supervisor thread stop the server (a handler cannot join itself) and maybe restart it."""
        conn, self._conn = self._conn, None
        conn.close()                                 # the open transaction is discarded, as by a kill
        self.crashes += 1
        self.events.append((time.monotonic(), message_id, f"crashed {point}"))
        self.crashed.set()
        self._supervisor = threading.Thread(target=self._supervise, name=f"{self.name}-supervisor", daemon=True)
        self._supervisor.start()

    def _supervise(self) -> None:
        with self._life:
            self._halt()
        if self.restart_after is None or self._stopping.wait(self.restart_after):
            return
        with self._life:
            if not self._stopping.is_set() and self._server is None:
                self._start()

    def __enter__(self) -> "Consumer":
        return self.start() if self._server is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- one message -------------------------------------------------------------------------------
    def _handle(self, message_id: str, body: dict) -> str:
        """Apply one message: "applied" or "duplicate"; raises Crash at an armed crash point."""
        with self._lock:
            conn = self._conn
            if conn is None:                         # killed meanwhile: a dead process answers nothing
                raise Crash("the consumer is down")
            self.received += 1
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            try:
                if self.dedupe == "transaction":
                    try:
                        conn.execute(f"INSERT INTO {PROCESSED} (message_id, at) VALUES (?, ?)", (message_id, now))
                    except sqlite3.IntegrityError:
                        conn.execute("ROLLBACK")
                        self.replays += 1
                        self.events.append((time.monotonic(), message_id, "duplicate"))
                        return "duplicate"
                conn.execute(f"INSERT INTO {EFFECTS} (message_id, write_id, body, at) VALUES (?, ?, ?, ?)",
                             (message_id, _write_id(body), json.dumps(body), now))
                self._crash("before commit", message_id)
                conn.execute("COMMIT")
            except Crash:
                raise
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self.applied += 1
            self.events.append((time.monotonic(), message_id, "applied"))
            self._crash("before reply", message_id)
            return "applied"

    def _crash(self, point: str, message_id: str) -> None:
        try:
            self._crashes.reached(point)
        except Crash:
            self._die(point, message_id)
            raise

    # --- what it did, for the checker ----------------------------------------------------------------
    def effects(self) -> list:
        """The write id (the body's ``order_id``) of every effect committed, in commit order: one entry
        per effect, as :func:`~resilience_sim.metrics.checker.check_writes` takes them."""
        return [w for (w,) in self._query(f"SELECT write_id FROM {EFFECTS} ORDER BY seq")]

    def effect_messages(self) -> list:
        """``(message id, body)`` of every effect committed, in commit order."""
        return [(m, json.loads(b)) for m, b in self._query(f"SELECT message_id, body FROM {EFFECTS} ORDER BY seq")]

    def _query(self, sql: str) -> list:
        if not os.path.exists(self.path):
            return []
        return rows(self.path, sql)

    def stats(self) -> dict:
        return {"starts": self.starts, "crashes": self.crashes, "received": self.received,
                "applied": self.applied, "replays": self.replays, "dedupe": self.dedupe}

    def __repr__(self) -> str:
        where = self._server.url if self._server is not None else "stopped"
        return f"Consumer({self.name!r}, dedupe={self.dedupe!r}, {where})"


def _write_id(body: dict):
    w = body.get("order_id")
    return w if isinstance(w, (int, str)) and not isinstance(w, bool) else None


__all__ = ["Consumer", "DEDUPES", "CRASH_POINTS", "EFFECTS", "PROCESSED", "Crash", "CrashPoint",
           "open_database"]
