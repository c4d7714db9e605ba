"""Alert rules over windows of request outcomes: when to page a human.

Each rule is fed outcomes (``rule.record(now, ok)``, or counts with ``record_counts``) and asked
``rule.firing(now)``. Outcomes are kept in buckets of ``resolution`` seconds, so a window's error
ratio is exact up to one bucket at its old end.

* :class:`ThresholdRule`: the error ratio over ``window`` is at least ``threshold`` (with at least
  ``min_requests`` in the window), held for ``for_`` seconds before firing (Prometheus's ``for:``).
* :class:`BurnRateRule`: the SRE Workbook's multi-window, multi-burn-rate rule. For an SLO of
  ``slo`` the error budget is ``1 - slo``; a pair ``(long, short, burn)`` fires when the error ratio
  is at least ``burn * (1 - slo)`` over **both** windows; the rule fires when **any** pair does.
  :data:`WORKBOOK_PAIRS` are the book's page and ticket pairs.

What holds: a rule fires only from outcomes recorded at or before ``now``; a rule with ``for_ = 0``
fires as soon as its condition holds, and stops as soon as it no longer does.
"""
from __future__ import annotations

import math
from collections import deque

from ..core import validate
from ._state import Stateful, flag

#: (long window, short window, burn rate) of the SRE Workbook's alerting chapter: two pages, a ticket.
WORKBOOK_PAIRS = ((3600.0, 300.0, 14.4), (6 * 3600.0, 1800.0, 6.0), (3 * 86400.0, 6 * 3600.0, 1.0))
#: The most buckets a rule keeps (its longest window over its resolution).
MAX_BUCKETS = 10 ** 6


class _Windows(Stateful):
    """Outcome counts in buckets of ``resolution`` s, kept for ``horizon`` s."""

    def _setup(self, horizon: float, resolution: float) -> None:
        self.resolution = validate.positive("resolution", resolution)
        if horizon / self.resolution > MAX_BUCKETS:
            raise ValueError(f"resolution must be at least {horizon / MAX_BUCKETS:g} s for a {horizon:g} s window "
                             f"(at most {MAX_BUCKETS:,} buckets), got {resolution:g}")
        self._horizon = horizon
        self.reset()

    def reset(self) -> None:
        """No outcomes, nothing firing, no clock, no owner."""
        self._forget()
        self._buckets: deque = deque()      # [bucket index, good, bad]
        self.recorded = 0
        self.fired = 0                      # times the rule started firing
        self._was_firing = False
        self._held_since = None

    def record(self, now: float, ok: bool) -> None:
        """One outcome at ``now``: a success (``ok``) or an error that counts against the SLO."""
        ok = flag("ok", ok)
        self.record_counts(now, 1 if ok else 0, 0 if ok else 1)

    def record_counts(self, now: float, good: int, bad: int) -> None:
        """``good`` successes and ``bad`` errors at ``now``."""
        now = self._tick(now)
        good, bad = validate.integer("good", good, low=0), validate.integer("bad", bad, low=0)
        index = math.floor(now / self.resolution)
        buckets = self._buckets
        if buckets and buckets[-1][0] == index:
            buckets[-1][1] += good
            buckets[-1][2] += bad
        else:
            buckets.append([index, good, bad])
        oldest = math.floor((now - self._horizon) / self.resolution)
        while buckets and buckets[0][0] < oldest:
            buckets.popleft()
        self.recorded += good + bad

    def error_ratio(self, now: float, window: float) -> tuple[float, int]:
        """``(errors / requests, requests)`` over the last ``window`` seconds (ratio 0 with none)."""
        now = self._tick(now)
        window = validate.positive("window", window)
        if window > self._horizon:
            raise ValueError(f"window must be at most {self._horizon:g} s, the longest this rule keeps, got {window:g}")
        first = math.floor((now - window) / self.resolution)
        good = bad = 0
        for index, g, b in reversed(self._buckets):
            if index < first:
                break
            good, bad = good + g, bad + b
        total = good + bad
        return (bad / total if total else 0.0), total

    def _condition(self, now: float) -> bool:
        raise NotImplementedError

    def firing(self, now: float) -> bool:
        """Whether the rule fires at ``now`` (its condition has held for ``for_`` seconds)."""
        now = self._tick(now)
        if self._condition(now):
            if self._held_since is None:
                self._held_since = now
            firing = now - self._held_since >= self.for_
        else:
            self._held_since = None
            firing = False
        self.fired += firing and not self._was_firing
        self._was_firing = firing
        return firing


class ThresholdRule(_Windows):
    """Fires when the error ratio over ``window`` s is >= ``threshold`` for ``for_`` s."""

    def __init__(self, threshold: float, window: float, *, for_: float = 0.0, min_requests: int = 1,
                 resolution: float | None = None):
        self.threshold = validate.number("threshold", threshold, low=0.0, high=1.0, low_open=True)
        self.window = validate.positive("window", window)
        self.for_ = validate.non_negative("for_", for_)
        self.min_requests = validate.integer("min_requests", min_requests, low=1)
        self._setup(self.window, self.window / 60 if resolution is None else resolution)

    def _condition(self, now: float) -> bool:
        ratio, n = self.error_ratio(now, self.window)
        return n >= self.min_requests and ratio >= self.threshold

    def __repr__(self) -> str:
        return f"ThresholdRule(threshold={self.threshold:g}, window={self.window:g}, for_={self.for_:g})"


class BurnRateRule(_Windows):
    """The multi-window, multi-burn-rate rule for ``slo`` (say 0.999) with ``pairs`` of (long, short,
    burn rate); ``for_`` is 0 as the Workbook advises (the short window does the reset)."""

    def __init__(self, slo: float, pairs=WORKBOOK_PAIRS[:2], *, resolution: float | None = None, for_: float = 0.0):
        self.slo = _slo(slo)
        if isinstance(pairs, (str, bytes)) or not hasattr(pairs, "__iter__"):
            raise validate.WrongType(f"pairs must be a list of (long window, short window, burn rate), got "
                                     f"{validate.show(pairs)}")
        checked = []
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 3:
                raise ValueError(f"pairs[{i}] must be (long window, short window, burn rate), got {pair!r}")
            long_w = validate.positive(f"pairs[{i}] long window", pair[0])
            short_w = validate.positive(f"pairs[{i}] short window", pair[1])
            if short_w > long_w:
                raise ValueError(f"pairs[{i}]: the short window ({short_w:g} s) must not be longer than the long "
                                 f"one ({long_w:g} s)")
            burn = validate.positive(f"pairs[{i}] burn rate", pair[2])
            checked.append((long_w, short_w, burn))
        if not checked:
            raise ValueError("pairs must hold at least one (long window, short window, burn rate)")
        self.pairs = tuple(checked)
        self.for_ = validate.non_negative("for_", for_)
        horizon = max(p[0] for p in checked)
        self._setup(horizon, min(p[1] for p in checked) / 60 if resolution is None else resolution)

    def _condition(self, now: float) -> bool:
        budget = 1.0 - self.slo
        for long_w, short_w, burn in self.pairs:
            limit = burn * budget
            if self.error_ratio(now, long_w)[0] >= limit and self.error_ratio(now, short_w)[0] >= limit:
                return True
        return False

    def __repr__(self) -> str:
        return f"BurnRateRule(slo={self.slo:g}, pairs={list(self.pairs)})"


def _slo(value) -> float:
    slo = validate.number("slo", value, low=0.0, high=1.0, low_open=True)
    if slo == 1.0:
        raise ValueError("slo must be < 1: an SLO of 100% has no error budget to burn")
    return slo


def time_to_fire(slo: float, burn: float, window: float, error_ratio: float) -> float:
    """Seconds a burn-rate alert over ``window`` takes to fire at a steady ``error_ratio`` (the Workbook's
    (1 - SLO) / error ratio x burn x window); ``math.inf`` when the errors never reach the threshold."""
    slo = _slo(slo)
    burn, window = validate.positive("burn", burn), validate.positive("window", window)
    error_ratio = validate.number("error_ratio", error_ratio, low=0.0, high=1.0)
    if error_ratio < burn * (1 - slo):
        return math.inf
    return (1 - slo) / error_ratio * burn * window


def budget_spent(burn: float, window: float, period: float = 30 * 86400.0) -> float:
    """The share of a ``period``'s error budget spent when a burn-rate alert fires: burn x window / period."""
    return validate.positive("burn", burn) * validate.positive("window", window) / validate.positive("period", period)


__all__ = ["ThresholdRule", "BurnRateRule", "WORKBOOK_PAIRS", "time_to_fire", "budget_spent"]
