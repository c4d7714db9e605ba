"""Results of a run, and the metrics computed from its per-request records and timelines."""
from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass

import numpy as np

from . import validate
from .records import Outcome
from .timeline import Timeline, group_availability


@dataclass(frozen=True)
class ServiceStats:
    """What one service saw during a run."""
    name: str
    calls: int
    failures: int
    timeline: Timeline
    failure_reasons: dict


@dataclass(frozen=True)
class ClientStats:
    """What one client did during a run (see :class:`~resilience_sim.client.Client`)."""
    name: str
    requests: int
    attempts: int
    backoff_time: float
    rejected: dict
    budget_denied: int
    hedges: int
    breaker_history: tuple     # ((time, state), ...); empty without a breaker
    breaker_trips: tuple       # ((time, why), ...): each time the breaker opened, and why

    @property
    def amplification(self) -> float:
        """Calls sent to the target per request this client was given."""
        return self.attempts / self.requests if self.requests else 0.0

    def breaker_state_at(self, times) -> np.ndarray:
        """The breaker's state at each of ``times``: 0 closed, 1 half-open, 2 open."""
        if not self.breaker_history:
            raise ValueError(f"client {self.name!r} has no circuit breaker")
        code = {"closed": 0, "half-open": 1, "open": 2}
        change_times = np.array([t for t, _ in self.breaker_history])
        states = np.array([code[s] for _, s in self.breaker_history])
        idx = np.searchsorted(change_times, np.asarray(times, dtype=float), side="right") - 1
        return states[np.maximum(idx, 0)]


@dataclass(frozen=True)
class FaultSpan:
    """A fault and the spans it was active, for shading plots."""
    label: str
    kind: str
    spans: tuple


class Results:
    """Everything a run produced: per-request columns, service stats and fault spans.

    Metrics that take ``since`` count only the requests that started at or after ``since`` (to skip
    a warm-up); times are simulated seconds. A request still unanswered at ``until`` counts as
    TIMED_OUT with reason "unfinished" and ends at ``until`` (``in_flight`` says how many): a hung
    dependency shows as lost requests, never as a quiet run.
    """

    def __init__(self, world, until: float):
        self.seed = world.seed
        self.until = until
        # copies: the world may run on after this (world.run(until=later)), appending to its records
        finished, unfinished = world.recorder.columns(), world.recorder.unfinished_rows(until)
        cols = {name: np.concatenate([finished[name], unfinished[name]]) for name in finished}
        self.in_flight = len(unfinished["start"])
        self.start, self.end = cols["start"], cols["end"]
        self.outcome, self.attempts = cols["outcome"], cols["attempts"]
        self._reason, self._answered_by, self._source = cols["reason"], cols["answered_by"], cols["source"]
        self.workloads = tuple(world.workloads)
        self.names = list(world.recorder.names)
        self.record_bytes = world.recorder.nbytes
        self.services = {name: ServiceStats(name, s.calls, s.failures, s.timeline, dict(s.failure_reasons))
                         for name, s in world.services.items()}
        self.faults = [FaultSpan(f.label, f.kind, tuple(f.spans(until))) for f in world.faults]
        self.clients = {name: ClientStats(name, c.requests, c.attempts, c.backoff_time, dict(c.rejected),
                                          c.budget_denied, c.hedges,
                                          tuple(getattr(c.breaker, "history", ())),
                                          tuple(getattr(c.breaker, "trips", ())))
                        for name, c in world.clients.items()}

    def __len__(self) -> int:
        return len(self.start)

    # --- selection ------------------------------------------------------------------------------
    def only(self, *workloads: str) -> "Results":
        """The same run seen through the requests the named workloads sent (say, one endpoint).
        Request metrics then count those requests only; service, client and fault stats stay whole-run."""
        if not workloads:
            raise ValueError(f"workloads must name at least one of {list(self.workloads)}")
        for name in workloads:
            if name not in self.workloads:
                raise ValueError(f"workloads must be among {list(self.workloads)}, got {name!r}")
        codes = [self.names.index(name) for name in workloads if name in self.names]
        return self._view(np.isin(self._source, codes))

    def between(self, t0: float, t1: float) -> "Results":
        """The same run seen through the requests that started in [t0, t1) (say, during a fault)."""
        t0 = validate.number("t0", t0, low=0.0, high=self.until)
        t1 = validate.number("t1", t1, low=t0, high=self.until, low_open=True)
        return self._view((self.start >= t0) & (self.start < t1))

    def _view(self, mask: np.ndarray) -> "Results":
        view = copy.copy(self)
        for attr in ("start", "end", "outcome", "attempts", "_reason", "_answered_by", "_source"):
            setattr(view, attr, getattr(self, attr)[mask])
        return view

    def _since_value(self, since: float) -> float:
        since = validate.number("since", since, low=0.0)
        if since >= self.until:
            raise ValueError(f"since must be in [0, {self.until:g}) (before the end of the run), got {since:g}")
        return since

    def _since(self, since: float) -> np.ndarray:
        return self.start >= self._since_value(since)

    @property
    def latency(self) -> np.ndarray:
        """Each request's response time in seconds (end - start), whatever its outcome."""
        return self.end - self.start

    def reason(self, i: int) -> str:
        """Why request ``i`` was not a full answer ("" when it was)."""
        return self.names[self._reason[i]]

    def row(self, i: int) -> dict:
        """Request ``i`` as a dict: start, end, latency, outcome, reason, attempts, answered_by, workload."""
        return {"start": float(self.start[i]), "end": float(self.end[i]), "latency": float(self.latency[i]),
                "outcome": Outcome(int(self.outcome[i])).name.lower(), "reason": self.reason(i),
                "attempts": int(self.attempts[i]), "answered_by": self.names[self._answered_by[i]],
                "workload": self.names[self._source[i]]}

    # --- availability -------------------------------------------------------------------------
    def request_availability(self, since: float = 0.0) -> float:
        """The share of requests that got an answer (full or degraded)."""
        mask = self._since(since)
        n = int(mask.sum())
        if n == 0:
            raise ValueError(f"no requests finished after since={since:g}; run longer or lower since")
        return float(np.count_nonzero(self.outcome[mask] <= Outcome.DEGRADED) / n)

    def full_quality_availability(self, since: float = 0.0) -> float:
        """The share of requests that got a full-quality answer."""
        mask = self._since(since)
        n = int(mask.sum())
        if n == 0:
            raise ValueError(f"no requests finished after since={since:g}; run longer or lower since")
        return float(np.count_nonzero(self.outcome[mask] == Outcome.OK) / n)

    def time_availability(self, *services: str, need: str = "all", since: float = 0.0) -> float:
        """The share of time the named services were up: all of them (``need="all"``) or any (``"any"``)."""
        if not services:
            raise ValueError(f"services must name at least one of {sorted(self.services)}")
        timelines = [self._stats(name).timeline for name in services]
        since = self._since_value(since)
        return group_availability(timelines, self.until, need=need, since=since)

    def _stats(self, name: str) -> ServiceStats:
        try:
            return self.services[name]
        except KeyError:
            raise ValueError(f"service must be one of {sorted(self.services)}, got {name!r}") from None

    # --- latency and load ----------------------------------------------------------------------
    def latencies(self, *, successful: bool = True, since: float = 0.0) -> np.ndarray:
        """Response times of answered requests (or of all, with ``successful=False``)."""
        mask = self._since(since)
        if successful:
            mask &= self.outcome <= Outcome.DEGRADED
        return self.latency[mask]

    def latency_percentiles(self, ps=(50, 95, 99), *, successful: bool = True, since: float = 0.0) -> dict:
        """``{p: seconds}`` for each percentile p in (0, 100]."""
        try:
            ps = list(ps)
        except TypeError:
            raise ValueError(f"ps must be a list of percentiles in (0, 100], e.g. (50, 99), got {ps!r}") from None
        if not ps:
            raise ValueError("ps must hold at least one percentile in (0, 100], got none")
        for p in ps:
            validate.number("ps", p, low=0.0, high=100.0, low_open=True)
        lat = self.latencies(successful=successful, since=since)
        if lat.size == 0:
            raise ValueError("no matching requests to take percentiles of; run longer or lower since")
        values = np.percentile(lat, list(ps))
        return {p: float(v) for p, v in zip(ps, values)}

    def mean_latency(self, *, successful: bool = True, since: float = 0.0) -> float:
        lat = self.latencies(successful=successful, since=since)
        if lat.size == 0:
            raise ValueError("no matching requests to average; run longer or lower since")
        return float(lat.mean())

    def share_slower_than(self, threshold: float, *, since: float = 0.0) -> float:
        """The share of requests (any outcome) that took longer than ``threshold`` seconds."""
        validate.non_negative("threshold", threshold)
        lat = self.latency[self._since(since)]
        return float(np.count_nonzero(lat > threshold) / max(1, lat.size))

    def throughput(self, since: float = 0.0) -> float:
        """Answered requests per second over [since, until)."""
        since = self._since_value(since)
        mask = self._since(since) & (self.outcome <= Outcome.DEGRADED)
        return float(np.count_nonzero(mask) / (self.until - since))

    def arrival_rate(self, since: float = 0.0) -> float:
        """Finished requests per second that started in [since, until)."""
        since = self._since_value(since)
        return float(np.count_nonzero(self._since(since)) / (self.until - since))

    def mean_in_system(self, since: float = 0.0) -> float:
        """Time-averaged number of requests in flight over [since, until), from the records (the
        unfinished ones included, up to ``until``)."""
        since = self._since_value(since)
        overlap = np.clip(np.minimum(self.end, self.until) - np.maximum(self.start, since), 0.0, None)
        return float(overlap.sum() / (self.until - since))

    def calls_per_request(self, *services: str) -> float:
        """Calls made to the named services (default: all), per user request (1.0 for a lone service
        with no retries)."""
        if len(self) == 0:
            raise ValueError("no requests finished; run longer")
        names = services or tuple(self.services)
        return sum(self._stats(name).calls for name in names) / len(self)

    def client(self, name: str) -> ClientStats:
        """What the client called ``name`` did."""
        try:
            return self.clients[name]
        except KeyError:
            raise ValueError(f"client must be one of {sorted(self.clients)}, got {name!r}") from None

    def attempts_per_request(self) -> float:
        if len(self) == 0:
            raise ValueError("no requests finished; run longer")
        return float(self.attempts.mean())

    # --- breakdowns -----------------------------------------------------------------------------
    def outcome_counts(self) -> dict[str, int]:
        counts = np.bincount(self.outcome, minlength=len(Outcome))
        return {o.name.lower(): int(counts[o]) for o in Outcome}

    def reasons(self, *, unanswered_only: bool = False) -> Counter:
        """How many requests ended for each reason (degraded, failed, timed out or rejected; with
        ``unanswered_only``, leaving out the degraded answers)."""
        codes = self._reason[self.outcome > Outcome.DEGRADED if unanswered_only else self.outcome != Outcome.OK]
        return Counter({self.names[c]: int(n) for c, n in enumerate(np.bincount(codes)) if n})

    def failed_by(self) -> Counter:
        """How many unanswered requests each component failed (the one that raised the error)."""
        codes = self._answered_by[self.outcome > Outcome.DEGRADED]
        return Counter({self.names[c]: int(n) for c, n in enumerate(np.bincount(codes)) if n})

    def answered_by(self) -> Counter:
        """How many answered requests each component answered."""
        codes = self._answered_by[self.outcome <= Outcome.DEGRADED]
        return Counter({self.names[c]: int(n) for c, n in enumerate(np.bincount(codes)) if n})

    def timeseries(self, bin_width: float) -> dict[str, np.ndarray]:
        """Per-bin series by start time: ``t`` (bin start), ``requests``, ``availability`` (NaN when
        empty), ``throughput`` (answered per second) and ``p99`` latency (NaN when nothing answered)."""
        bin_width = validate.number("bin_width", bin_width, low=0.0, high=self.until, low_open=True)
        n_bins = int(np.ceil(self.until / bin_width))
        idx = np.minimum((self.start / bin_width).astype(np.int64), n_bins - 1)
        ok = self.outcome <= Outcome.DEGRADED
        total = np.bincount(idx, minlength=n_bins)
        good = np.bincount(idx, weights=ok, minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            avail = np.where(total > 0, good / np.maximum(total, 1), np.nan)
        p99 = np.full(n_bins, np.nan)
        lat = self.latency
        order = np.argsort(idx, kind="stable")
        bounds = np.searchsorted(idx[order], np.arange(n_bins + 1))
        for b in range(n_bins):
            sel = order[bounds[b]:bounds[b + 1]]
            sel = sel[ok[sel]]
            if sel.size:
                p99[b] = np.percentile(lat[sel], 99)
        return {"t": np.arange(n_bins) * bin_width, "requests": total, "availability": avail,
                "throughput": good / bin_width, "p99": p99}

    def summary(self) -> dict:
        """The headline numbers, for printing."""
        out = {"requests": len(self), "availability": self.request_availability()}
        lat = self.latencies()
        if lat.size:
            out.update({f"p{p}": v for p, v in self.latency_percentiles().items()})
        out["calls_per_request"] = self.calls_per_request()
        return out
