"""A checker for writes that must take effect once, in the style of Jepsen's set and queue checkers.

After a run has quiesced (every queue drained), :func:`check_writes` classifies each write by what the
client knew (``attempted``, ``acknowledged``), what the source of truth holds (``committed``: the
business rows) and what happened downstream (``effects``: one entry per effect, so a message applied
twice appears twice):

* **lost**: committed (or acknowledged) and no effect;
* **unexpected**: an effect of a write that never committed;
* **duplicated**: more than one effect;
* **recovered**: attempted, never acknowledged (the client saw an error or nothing), yet committed
  with an effect: an indeterminate result that took effect.

A run is **valid** when nothing is lost or unexpected; duplicates are reported apart (at-least-once
delivery makes them; an idempotent consumer removes them).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class WriteCheck:
    """The classes of writes (sorted lists of ids; ``duplicated``: id -> number of effects)."""
    attempted: int
    acknowledged: int
    committed: int
    effects: int
    lost: tuple
    unexpected: tuple
    duplicated: dict
    recovered: tuple

    @property
    def valid(self) -> bool:
        """Nothing lost, nothing unexpected."""
        return not self.lost and not self.unexpected

    @property
    def exactly_once(self) -> bool:
        """Valid, and no write took effect twice."""
        return self.valid and not self.duplicated

    def __str__(self) -> str:
        return (f"{self.attempted} attempted, {self.acknowledged} acknowledged, {self.committed} committed, "
                f"{self.effects} effects: {len(self.lost)} lost, {len(self.unexpected)} unexpected, "
                f"{len(self.duplicated)} duplicated, {len(self.recovered)} recovered")


def _ids(name: str, values) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of write ids, got {values!r}")
    return list(values)


def check_writes(*, attempted, acknowledged, committed, effects) -> WriteCheck:
    """Classify every write (see :mod:`resilience_sim.metrics.checker`); each argument is a list of ids
    (``effects`` with one entry per effect)."""
    attempted, acknowledged = set(_ids("attempted", attempted)), set(_ids("acknowledged", acknowledged))
    committed, counts = set(_ids("committed", committed)), Counter(_ids("effects", effects))
    if not acknowledged <= attempted:
        raise ValueError(f"acknowledged must be among the attempted writes; not attempted: "
                         f"{sorted(acknowledged - attempted, key=repr)[:5]}")
    return WriteCheck(
        attempted=len(attempted), acknowledged=len(acknowledged), committed=len(committed),
        effects=sum(counts.values()),
        lost=tuple(sorted((committed | acknowledged) - set(counts), key=repr)),
        unexpected=tuple(sorted(set(counts) - committed, key=repr)),
        duplicated={i: n for i, n in sorted(counts.items(), key=lambda kv: repr(kv[0])) if n > 1},
        recovered=tuple(sorted((attempted - acknowledged) & committed & set(counts), key=repr)))


__all__ = ["WriteCheck", "check_writes"]
