"""Compact per-request records: one row per user request, stored column-wise in typed arrays.

A row costs 33 bytes: two float64 times (start, end), a uint8 outcome, uint16 codes for the reason,
the number of attempts, who answered and the route (the endpoint), a uint32 code for the key
(what the request was about; code 0 is "no key") and a float32 ``age``: how old the data in the answer
was (0 when it came straight from its source, the cache entry's age when a cache answered).
A million requests take about 33 MB.

What holds: a row is added exactly once per user request, when it ends; a request still pending
when a run is cut off is reported by :meth:`Recorder.unfinished_rows` (as TIMED_OUT, "unfinished").
"""
from __future__ import annotations

from array import array

import numpy as np

from .reasons import Outcome

COLUMNS = ("start", "end", "outcome", "reason", "attempts", "answered_by", "route", "key", "age")


class Recorder:
    """Appends request rows; strings (reasons, names, routes) and keys are stored as small codes."""

    def __init__(self):
        self.start = array("d")
        self.end = array("d")
        self.outcome = array("B")
        self.reason = array("H")
        self.attempts = array("H")
        self.answered_by = array("H")
        self.route = array("H")
        self.key = array("I")
        self.age = array("f")
        self.pending: dict = {}            # requests sent and not yet ended, in the order sent (as keys)
        self.names: list[str] = [""]
        self._codes: dict[str, int] = {"": 0}
        self.keys: list = [None]
        self._key_codes: dict = {None: 0}

    def code(self, name: str) -> int:
        """The code of a reason, component name or route (added on first use)."""
        code = self._codes.get(name)
        if code is None:
            code = self._codes[name] = len(self.names)
            self.names.append(name)
        return code

    def key_code(self, key) -> int:
        """The code of a request key (any hashable value; added on first use)."""
        code = self._key_codes.get(key)
        if code is None:
            code = self._key_codes[key] = len(self.keys)
            self.keys.append(key)
        return code

    def add(self, req, end: float, outcome: int, reason: str, answered_by: str) -> None:
        """The row of request ``req`` (its start, attempts, route, key and age), ended at ``end``."""
        codes = self._codes
        self.start.append(req.start)
        self.end.append(end)
        self.outcome.append(outcome)
        self.reason.append(codes[reason] if reason in codes else self.code(reason))
        self.attempts.append(req.attempts)
        self.answered_by.append(codes[answered_by] if answered_by in codes else self.code(answered_by))
        route = req.route
        self.route.append(codes[route] if route in codes else self.code(route))
        keys = self.keys                     # self.key_code(req.key), inline: one look-up (None's code is 0)
        code = self._key_codes.setdefault(req.key, len(keys))
        if code == len(keys):
            keys.append(req.key)
        self.key.append(code)
        self.age.append(req.age)

    def __len__(self) -> int:
        return len(self.start)

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, c).itemsize * len(getattr(self, c)) for c in COLUMNS)

    def unfinished_rows(self, until: float) -> dict[str, np.ndarray]:
        """The requests still pending at ``until`` as rows that end then, TIMED_OUT with reason
        "unfinished": the user never got an answer while the run lasted."""
        pending = list(self.pending)
        n = len(pending)
        return {
            "start": np.array([req.start for req in pending], dtype=np.float64),
            "end": np.full(n, until, dtype=np.float64),
            "outcome": np.full(n, Outcome.TIMED_OUT, dtype=np.uint8),
            "reason": np.full(n, self.code("unfinished"), dtype=np.uint16),
            "attempts": np.array([req.attempts for req in pending], dtype=np.uint16),
            "answered_by": np.zeros(n, dtype=np.uint16),
            "route": np.array([self.code(req.route) for req in pending], dtype=np.uint16),
            "key": np.array([0 if req.key is None else self.key_code(req.key) for req in pending],
                            dtype=np.uint32),
            "age": np.array([req.age for req in pending], dtype=np.float32),
        }

    def columns(self) -> dict[str, np.ndarray]:
        """The columns as numpy arrays that share memory with the records (no copy)."""
        def view(col):
            dtype = np.dtype(col.typecode)
            return np.frombuffer(col, dtype=dtype) if len(col) else np.empty(0, dtype=dtype)
        return {name: view(getattr(self, name)) for name in COLUMNS}
