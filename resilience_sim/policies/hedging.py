"""Hedged requests (Dean and Barroso, "The Tail at Scale", CACM 2013): if no answer has come
``delay`` seconds after a request started, send a copy, ideally to another replica; take the first
answer. Hedging at the 95th percentile of latency costs about 5% extra calls and cuts the tail.

Contract with the caller, who sends, waits and cancels (the policy only decides and counts):

* start the primary at ``start``; at ``hedge_at(start)`` (then every ``delay`` more, up to
  ``max_hedges`` copies) ask ``should_hedge(start, now, sent)``; if True, send a copy and call
  ``record_hedge(now)``;
* the first answer wins: call ``record_winner(now, hedge=...)`` once, then **cancel the others**
  (interrupt the simpy process, cancel the task or close the connection). A loser left running still
  loads the backend, which is the cost of hedging done badly;
* hedge only idempotent calls (reads): every copy may be executed.

Inputs are checked: ``now`` is finite seconds that never go back, ``start`` a finite time, ``sent``
a whole number >= 0, ``hedge`` True or False. A policy belongs to one run (:func:`~._state.claim`);
``reset()`` zeroes its counters and empties its log.

``hedge_times`` is a bounded :mod:`~resilience_sim.core.eventlog` log (the newest ``log_limit``
entries, 10,000 by default; ``None``: all); the counters stay exact. ``on_event("hedge_times", now)``
is called for every copy sent, in order.
"""
from __future__ import annotations

import math

from ..core import validate
from ..core.eventlog import DEFAULT_LIMIT
from ._state import Stateful, count, finite, flag


def delay_from_percentile(latencies, p: float = 95) -> float:
    """The ``p``-th percentile of observed ``latencies`` (linear interpolation between order
    statistics, like numpy's default): a hedge delay that hedges about (100 - p)% of requests."""
    p = validate.number("p", p, low=0.0, high=100.0)
    try:
        xs = sorted(validate.non_negative(f"latencies[{i}]", x) for i, x in enumerate(latencies))
    except TypeError:
        raise ValueError(f"latencies must be a list of durations in seconds, got {latencies!r}") from None
    if not xs:
        raise ValueError("latencies must hold at least one duration, got an empty list")
    pos = (len(xs) - 1) * p / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


#: Copies a hedged call may send at most: each one is a whole extra call.
MAX_HEDGES = 100


class HedgePolicy(Stateful):
    """Logs: ``hedges_sent``, ``finished`` (requests with a winner), ``hedges_won`` (a copy answered
    first) and ``hedge_times`` (when copies were sent). ``extra_load`` = copies per finished request."""

    def __init__(self, delay: float, max_hedges: int = 1, *,
                 log_limit: int | None = DEFAULT_LIMIT, on_event=None):
        self.delay = validate.number("delay", delay, low=0.0, allow_inf=True)
        self.max_hedges = validate.integer("max_hedges", max_hedges, low=0, high=MAX_HEDGES)
        self._logging(log_limit, on_event)
        self.reset()

    def reset(self) -> None:
        """Counters zero, an empty log, no clock, no owner."""
        self._forget()
        self.hedges_sent = 0
        self.hedges_won = 0
        self.finished = 0
        self.hedge_times = self._log("hedge_times")

    @classmethod
    def from_latencies(cls, latencies, p: float = 95, max_hedges: int = 1, *,
                       log_limit: int | None = DEFAULT_LIMIT, on_event=None) -> HedgePolicy:
        """A policy whose delay is the ``p``-th percentile of ``latencies``."""
        return cls(delay_from_percentile(latencies, p), max_hedges, log_limit=log_limit, on_event=on_event)

    def hedge_at(self, start: float, sent: int = 0) -> float:
        """When copy number ``sent + 1`` is due for a request started at ``start`` (inf: never)."""
        start, sent = finite("start", start), count("sent", sent)
        if sent >= self.max_hedges:
            return math.inf
        return start + (sent + 1) * self.delay

    def should_hedge(self, start: float, now: float, sent: int) -> bool:
        """Whether to send another copy now, ``sent`` copies having been sent, no answer yet."""
        self._tick(now)
        return now >= self.hedge_at(start, sent)

    def record_hedge(self, now: float) -> None:
        self.hedges_sent += 1
        self.hedge_times.append(self._tick(now))

    def record_winner(self, now: float, hedge: bool) -> None:
        """The first answer came (``hedge``: from a copy, not the primary)."""
        self._tick(now)
        self.finished += 1
        self.hedges_won += flag("hedge", hedge)

    @property
    def extra_load(self) -> float:
        return self.hedges_sent / self.finished if self.finished else 0.0

    def __repr__(self):
        return f"HedgePolicy(delay={self.delay:g}, max_hedges={self.max_hedges})"


__all__ = ["HedgePolicy", "delay_from_percentile"]
