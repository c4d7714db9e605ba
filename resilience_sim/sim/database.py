"""A database with transactions, in simulated time: rows commit atomically or not at all.

``db = Database(world, "orders_db")`` keeps named tables of committed rows (``db.rows("orders")``).
A transaction collects writes and commits them in one call::

    tx = db.transaction()
    tx.insert("orders", order_id, {"total": 30})
    tx.insert("outbox", order_id, {"key": customer, "payload": ...})
    yield from tx.commit(req)             # all of it, or (ServiceError) none of it

What holds:

* **atomic**: a commit applies every write at one instant, the **commit point**, at the end of the
  database's work for it; a crash (or outage) before that point applies none of them ("crashed",
  "down"), and nothing committed is ever lost. A crash of the *caller* after the commit point leaves
  the rows committed although the caller never heard (the reply takes ``reply_latency`` seconds):
  the indeterminate result a checker calls "recovered" when it took effect.
* **conditional updates** (``tx.update(table, id, changes, where=...)``) are checked at the commit
  point, so ``where`` works as a compare-and-set: a claim with a lease, a fenced "mark as sent".
  An insert of an id that exists then fails the whole transaction ("conflict").
* a transaction is used once: writing to it, or committing it, after it committed, failed or was
  rolled back is refused with a ValueError.

The database is a :class:`~resilience_sim.sim.service.Service` underneath (``db.service``), so the
faults of the simulator (Outage, FailureRepair...) apply to it unchanged.
"""
from __future__ import annotations

import itertools

from ..core import validate
from .service import Request, Service, ServiceError

#: The most writes one transaction may hold.
MAX_WRITES = 100_000


class Database:
    """Tables of committed rows behind a service (``capacity`` commits at once, each taking ``latency``)."""

    def __init__(self, world, name: str, *, capacity: int = 10, latency=0.002, reply_latency: float = 0.0005):
        self.service = Service(world, name, capacity=capacity, latency=latency)
        self.world, self.env, self.name = world, world.env, name
        self.reply_latency = validate.non_negative("reply_latency", reply_latency)
        self._tables: dict = {}
        self._ids = itertools.count(1)
        self.commits = self.aborts = 0

    # --- reading (committed state, as of now) --------------------------------------------------
    def rows(self, table: str, where=None) -> list:
        """``[(row id, row)]`` of ``table``'s committed rows in the order they were inserted (copies),
        those for which ``where(row)`` is true when it is given."""
        rows = self._tables.get(validate.text("table", table, empty=False), {})
        if where is not None:
            validate.function("where", where)
        return [(row_id, dict(row)) for row_id, row in rows.items() if where is None or where(row)]

    def get(self, table: str, row_id):
        """The committed row ``row_id`` of ``table`` (a copy), or None."""
        row = self._tables.get(validate.text("table", table, empty=False), {}).get(row_id)
        return None if row is None else dict(row)

    def select(self, req: Request, table: str, where=None):
        """:meth:`rows` as a query that costs a call to the database (a simpy generator): the rows as
        committed when the query is answered; raises ServiceError when the database is down or crashes."""
        yield from self.service.call(req)
        return self.rows(table, where)

    def transaction(self) -> "Transaction":
        return Transaction(self, next(self._ids))

    def _apply(self, writes) -> set:
        """Apply ``writes`` at once (the commit point): the ids of the conditional updates applied."""
        tables = self._tables
        for op, table, row_id, data, _ in writes:
            if op == "insert" and row_id in tables.get(table, ()):
                raise ServiceError(self.name, "conflict")
        applied = set()
        for op, table, row_id, data, where in writes:
            rows = tables.setdefault(table, {})
            if op == "insert":
                rows[row_id] = dict(data)
            elif op == "delete":
                rows.pop(row_id, None)
            else:
                row = rows.get(row_id)
                if row is not None and (where is None or where(row)):
                    row.update(data)
                    applied.add((table, row_id))
        return applied

    def __repr__(self) -> str:
        return f"Database({self.name!r}, tables={sorted(self._tables)})"


class Transaction:
    """Writes to commit together (see :mod:`resilience_sim.sim.database`)."""

    def __init__(self, db: Database, number: int):
        self.db, self.number = db, number
        self.state = "open"          # then "committed", "failed" or "rolled back"
        self._writes: list = []

    def _add(self, op: str, table: str, row_id, data, where) -> None:
        if self.state != "open":
            raise ValueError(f"this transaction is {self.state}: write through a new one (db.transaction())")
        validate.text("table", table, empty=False)
        try:
            hash(row_id)
        except TypeError:
            raise validate.WrongType(f"row_id must be hashable (a number, a string), got {validate.show(row_id)}") from None
        if data is not None and not isinstance(data, dict):
            raise validate.WrongType(f"row must be a dict of columns, got {validate.show(data)}")
        if where is not None:
            validate.function("where", where)
        if len(self._writes) >= MAX_WRITES:
            raise ValueError(f"a transaction holds at most {MAX_WRITES:,} writes; commit and start another")
        self._writes.append((op, table, row_id, data, where))

    def insert(self, table: str, row_id, row: dict) -> None:
        """Insert ``row`` as ``row_id`` (the commit fails with "conflict" if that id exists then)."""
        self._add("insert", table, row_id, row, None)

    def update(self, table: str, row_id, changes: dict, where=None) -> None:
        """Change columns of ``row_id`` at commit, if it exists and ``where(row)`` is true then."""
        self._add("update", table, row_id, changes, where)

    def delete(self, table: str, row_id) -> None:
        self._add("delete", table, row_id, None, None)

    def commit(self, req: Request | None = None):
        """Commit every write at once (a simpy generator): the set of ``(table, id)`` conditional
        updates that applied; ServiceError ("down", "crashed", "conflict") and nothing applied if
        the commit point was not reached."""
        if self.state != "open":
            raise ValueError(f"this transaction is {self.state}: it cannot commit again")
        db = self.db
        req = req or Request._unchecked(db.env.now, "", None)
        try:
            yield from db.service.call(req)
            applied = db._apply(self._writes)       # the commit point
        except BaseException:
            self.state = "failed"
            db.aborts += 1
            raise
        self.state = "committed"
        db.commits += 1
        if db.reply_latency > 0:
            yield db.env.timeout(db.reply_latency)     # the caller hears later: it may crash before
        return applied

    def rollback(self) -> None:
        if self.state != "open":
            raise ValueError(f"this transaction is {self.state}: nothing to roll back")
        self.state = "rolled back"

    def __repr__(self) -> str:
        return f"Transaction({self.db.name!r} #{self.number}, {self.state}, {len(self._writes)} writes)"


__all__ = ["Database", "Transaction"]
