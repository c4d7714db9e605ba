"""Compact per-request records: one row per user request, stored column-wise in typed arrays.

A row costs 25 bytes (two float64 times, a uint8 outcome, uint16 codes for the reason, the number of
attempts, who answered and the workload that sent it), so a million requests take about 25 MB.
"""
from __future__ import annotations

from array import array
from enum import IntEnum

import numpy as np


class Outcome(IntEnum):
    """How a user request ended."""
    OK = 0          # full-quality answer
    DEGRADED = 1    # an answer, but of lower quality (stale, fallback...), with a reason
    FAILED = 2      # an error reached the user
    TIMED_OUT = 3   # the caller gave up waiting
    REJECTED = 4    # refused without being tried (overload, open breaker, shed...)


class Recorder:
    """Appends request rows; strings (reasons, component names) are stored as small integer codes."""

    def __init__(self):
        self.start = array("d")
        self.end = array("d")
        self.outcome = array("B")
        self.reason = array("H")
        self.attempts = array("H")
        self.answered_by = array("H")
        self.source = array("H")
        self.pending: dict = {}      # requests sent and not yet ended (a row is added when each one ends)
                                     # -> the workload that sent them
        self.names: list[str] = [""]
        self._codes: dict[str, int] = {"": 0}

    def code(self, name: str) -> int:
        """The code of a reason or component name (added on first use)."""
        code = self._codes.get(name)
        if code is None:
            code = self._codes[name] = len(self.names)
            self.names.append(name)
        return code

    def add(self, start: float, end: float, outcome: int, reason: str, attempts: int, answered_by: str,
            source: str) -> None:
        codes = self._codes
        self.start.append(start)
        self.end.append(end)
        self.outcome.append(outcome)
        self.reason.append(codes[reason] if reason in codes else self.code(reason))
        self.attempts.append(attempts)
        self.answered_by.append(codes[answered_by] if answered_by in codes else self.code(answered_by))
        self.source.append(codes[source] if source in codes else self.code(source))

    def __len__(self) -> int:
        return len(self.start)

    @property
    def nbytes(self) -> int:
        cols = (self.start, self.end, self.outcome, self.reason, self.attempts, self.answered_by, self.source)
        return sum(c.itemsize * len(c) for c in cols)

    def unfinished_rows(self, until: float) -> dict[str, np.ndarray]:
        """The requests still pending at ``until`` as rows that end then, TIMED_OUT with reason
        "unfinished": the user never got an answer while the run lasted."""
        pending = list(self.pending.items())
        return {
            "start": np.array([req.start for req, _ in pending], dtype=np.float64),
            "end": np.full(len(pending), until, dtype=np.float64),
            "outcome": np.full(len(pending), Outcome.TIMED_OUT, dtype=np.uint8),
            "reason": np.full(len(pending), self.code("unfinished"), dtype=np.uint16),
            "attempts": np.array([req.attempts for req, _ in pending], dtype=np.uint16),
            "answered_by": np.zeros(len(pending), dtype=np.uint16),
            "source": np.array([self.code(source) for _, source in pending], dtype=np.uint16),
        }

    def columns(self) -> dict[str, np.ndarray]:
        """The columns as numpy arrays that share memory with the records (no copy)."""
        def view(col, dtype):
            return np.frombuffer(col, dtype=dtype) if len(col) else np.empty(0, dtype=dtype)
        return {
            "start": view(self.start, np.float64), "end": view(self.end, np.float64),
            "outcome": view(self.outcome, np.uint8), "reason": view(self.reason, np.uint16),
            "attempts": view(self.attempts, np.uint16), "answered_by": view(self.answered_by, np.uint16),
            "source": view(self.source, np.uint16),
        }
