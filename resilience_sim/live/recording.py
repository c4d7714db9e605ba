"""Live requests as rows: a thread-safe recording that becomes the simulator's own ``Results``.

A :class:`LiveRecording` keeps one row per logical request in a
:class:`~resilience_sim.core.records.Recorder` (the simulator's: start, end, outcome, reason,
attempts, answered_by, route, key, age), with times in seconds since the recording's ``zero`` (the
``clock()`` reading when it was made). So ``request_availability()``, ``latency_percentiles()``,
``timeseries()`` and the plots read a live run exactly as they read a simulated one.

What holds:

* a row is added once per request, when it ends (:meth:`finish`), or at once for a request refused
  before it began (:meth:`add`); a request :meth:`start`-ed and not yet finished is *pending*, and
  :meth:`results` reports it as TIMED_OUT "unfinished", ending at ``until`` (as ``Results`` does for
  a simulated run cut off): a hung call shows as a lost request, never as a quiet run;
* every method may be called from any thread (one lock, held for an append, never during I/O; the
  rows are encoded into the Recorder in batches, under a second lock, in the order they ended);
* :meth:`results` is a snapshot (copies): rows added later change a later snapshot, not this one;
  it includes the :class:`~resilience_sim.metrics.results.ClientStats` of each client that records
  here (or of those passed to it), their breaker times moved to the recording's clock.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from ..core import validate
from ..core.reasons import Outcome
from ..core.records import Recorder
from ..metrics.results import Results

#: Rows kept as they ended before they are encoded into the Recorder's columns.
BATCH = 4096


class Pending:
    """A request in flight: what a row needs besides its end (the shape ``Recorder.add`` reads)."""
    __slots__ = ("start", "route", "key", "attempts", "age")

    def __init__(self, start: float, route: str, key):
        self.start, self.route, self.key, self.attempts, self.age = start, route, key, 1, 0.0


class LiveRecording:
    """Rows of live requests, timed by ``clock`` (wall-clock seconds, ``time.monotonic`` by default)."""

    def __init__(self, *, clock=time.monotonic):
        self.clock = validate.function("clock", clock)
        self.zero = validate.number("clock()", clock())
        self._recorder = Recorder()
        self._done: list = []              # rows ended, not yet in the Recorder (at most BATCH)
        self._lock = threading.Lock()      # rows and pending requests
        self._encoding = threading.Lock()  # the Recorder's columns; taken after _lock, never before
        self._clients: list = []
        self.writers: list = []            # clients that write their own rows here

    def now(self) -> float:
        """Seconds since the recording's zero."""
        return self.clock() - self.zero

    def start(self, route: str, key=None, *, at: float | None = None) -> Pending:
        """A request for ``route`` (and ``key``) begins now, or at ``at`` seconds since zero (say, its
        scheduled arrival); it counts as pending until :meth:`finish`."""
        pending = Pending(self.now() if at is None else at, route, key)
        with self._lock:
            self._recorder.pending[pending] = None
        return pending

    def finish(self, pending: Pending, outcome: Outcome, reason: str, answered_by: str, *,
               attempts: int | None = None) -> None:
        """The request ``pending`` ended now with ``outcome`` (``reason`` "" for a full answer)."""
        end = self.now()
        if attempts is not None:
            pending.attempts = attempts
        with self._lock:
            if self._recorder.pending.pop(pending, False) is not None:
                raise ValueError(f"pending must be a request started here and not yet finished, got {pending!r}")
            done = self._done
            done.append((pending, end, outcome, reason, answered_by))
            if len(done) < BATCH:
                return
            self._done = []
            self._encoding.acquire()       # before _lock is let go: batches are encoded in the order cut
        try:
            self._encode(done)
        finally:
            self._encoding.release()

    def _encode(self, rows) -> None:
        """``rows`` into the Recorder (under ``_encoding``): encoding a row costs more than keeping
        it, so the request path only keeps it, and one request in BATCH encodes them, outside ``_lock``."""
        add = self._recorder.add
        for row in rows:
            add(*row)

    def _flush(self) -> None:
        """Every row kept into the Recorder (under both locks)."""
        self._encode(self._done)
        self._done = []

    def add(self, route: str, outcome: Outcome, reason: str, answered_by: str, *, start: float | None = None,
            key=None, attempts: int = 1) -> None:
        """A request that ended as soon as it began (refused before anything was tried), at ``start``
        seconds since zero (default: now)."""
        pending = Pending(self.now() if start is None else start, route, key)
        pending.attempts = attempts
        with self._lock:
            self._done.append((pending, pending.start, outcome, reason, answered_by))

    def include(self, client, *, writes: bool = False) -> None:
        """Report ``client``'s stats in :meth:`results`; ``writes``: it also records its requests here
        (a client recording here includes itself so)."""
        if not callable(getattr(client, "stats", None)):
            raise validate.WrongType(f"client must be a ResilientClient (with stats()), got {validate.show(client)}")
        if getattr(client, "clock", self.clock) is not self.clock:
            raise ValueError(f"client must read the same clock as this recording ({self.clock!r}), "
                             f"got one reading {client.clock!r}")
        with self._lock:
            if all(c is not client for c in self._clients):
                self._clients.append(client)
            if validate.boolean("writes", writes) and all(c is not client for c in self.writers):
                self.writers.append(client)

    def __len__(self) -> int:
        with self._lock, self._encoding:
            return len(self._recorder) + len(self._done)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._recorder.pending)

    def results(self, *, until: float | None = None, seed: int = 0, clients=None) -> Results:
        """A :class:`Results` of every row so far, the pending ones "unfinished" at ``until`` seconds
        since zero (default: now; never before a row's end). ``clients``: whose stats to report
        (default: those included)."""
        with self._lock, self._encoding:
            self._flush()
            rec = self._recorder
            last = max(rec.end) if len(rec) else 0.0
            if until is None:
                until = max(self.now(), last, 1e-9)
            else:
                until = validate.number("until", until, low=max(last, 0.0), low_open=last <= 0.0)
            finished, unfinished = rec.columns(), rec.unfinished_rows(until)
            columns = {name: np.concatenate([finished[name], unfinished[name]]) for name in finished}
            names, keys, nbytes = list(rec.names), list(rec.keys), rec.nbytes
            chosen = list(self._clients) if clients is None else list(clients)
        stats = [c.stats(zero=self.zero) for c in chosen]
        return Results(columns, seed=seed, until=until, names=names, keys=keys, clients=stats,
                       in_flight=len(unfinished["start"]), record_bytes=nbytes)

    def __repr__(self) -> str:
        return f"LiveRecording({len(self)} requests, {self.in_flight} in flight)"


__all__ = ["LiveRecording", "Pending"]
