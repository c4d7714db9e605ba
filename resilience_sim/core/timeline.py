"""Up/down timelines of components, and their combination in series (all up) or in parallel (any up)."""
from __future__ import annotations

import math

import numpy as np


class Timeline:
    """When a component went down and came back: a list of (time, is_up) changes starting from up at 0."""

    def __init__(self, name: str = ""):
        self.name = name
        self.changes: list[tuple[float, bool]] = []

    def mark(self, t: float, up: bool) -> None:
        if self.changes and self.changes[-1][0] == t and self.changes[-1][1] != up:
            self.changes.pop()  # a down and up at the same instant cancel out
            return
        self.changes.append((t, up))

    def down_windows(self, until: float) -> list[tuple[float, float]]:
        """The (start, end) spans spent down before ``until``; a span still open ends at ``until``."""
        spans, down_since = [], None
        for t, up in self.changes:
            if t >= until:
                break
            if not up and down_since is None:
                down_since = t
            elif up and down_since is not None:
                spans.append((down_since, t))
                down_since = None
        if down_since is not None:
            spans.append((down_since, until))
        return spans

    def availability(self, until: float, since: float = 0.0) -> float:
        """The share of [since, until) spent up."""
        return 1.0 - _covered(self.down_windows(until), since, until) / (until - since)

    def up_at(self, times) -> np.ndarray:
        """Whether the component was up at each of ``times``."""
        times = np.asarray(times, dtype=float)
        up = np.ones(times.shape, dtype=bool)
        last = float(np.max(times)) if times.size else 0.0
        for start, end in self.down_windows(math.nextafter(last, math.inf)):   # a window open at the end
            up &= ~((times >= start) & (times < end))
        return up


def _covered(spans, since, until) -> float:
    return sum(max(0.0, min(e, until) - max(s, since)) for s, e in spans)


def combine(timelines, until: float, *, need: str = "all") -> list[tuple[float, float]]:
    """Down windows of a group: ``need="all"`` (series: down when any member is down) or ``"any"``
    (redundant replicas: down only when every member is down)."""
    if need not in ("all", "any"):
        raise ValueError(f"need must be one of ['all', 'any'], got {need!r}")
    timelines = list(timelines)
    if not timelines:
        raise ValueError("timelines must hold at least one timeline, got none")
    events = []
    for tl in timelines:
        for s, e in tl.down_windows(until):
            events.append((s, 1))
            events.append((e, -1))
    events.sort(key=lambda ev: (ev[0], ev[1]))
    threshold = 1 if need == "all" else len(timelines)
    spans, down, since = [], 0, None
    for t, step in events:
        before = down >= threshold
        down += step
        after = down >= threshold
        if after and not before:
            since = t
        elif before and not after:
            if t > since:
                spans.append((since, t))
            since = None
    return spans


def group_availability(timelines, until: float, *, need: str = "all", since: float = 0.0) -> float:
    """The share of [since, until) in which the group was up (see :func:`combine`)."""
    return 1.0 - _covered(combine(timelines, until, need=need), since, until) / (until - since)
