"""Results of a run, and the metrics computed from its per-request records and timelines."""
from __future__ import annotations

import copy
import math
import numbers
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..core import validate
from ..core.reasons import Outcome
from ..core.timeline import Timeline, group_availability

#: Most bins :meth:`Results.timeseries` makes (a plot shows a few hundred; 10**6 is 8 MB a series).
MAX_BINS = 10 ** 6


def _name(kind: str, value, known) -> None:
    """Refuse a ``kind`` name not in ``known``, and a list given where names go one by one."""
    if isinstance(value, str):
        if value in known:
            return
        raise ValueError(f"{kind} must be one of {sorted(known)}, got {value!r}")
    hint = ("; give the names one by one, or unpack a list with a star: (*names)"
            if isinstance(value, (list, tuple, set, frozenset)) else "")
    raise validate.WrongType(f"{kind} must be a name (a string), one of {sorted(known)}, "
                             f"got {validate.show(value)}{hint}")


@dataclass(frozen=True)
class ServiceStats:
    """What one service saw during a run. ``call_start`` and ``call_route`` hold, per call made to
    it, the start time and route code of the user request it was made for, so a view of the results
    counts the calls made for its own requests."""
    name: str
    calls: int
    failures: int
    timeline: Timeline
    failure_reasons: dict
    call_start: np.ndarray = field(repr=False)
    call_route: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class ClientStats:
    """What one client did during a run (see :class:`~resilience_sim.sim.client.Client`)."""
    name: str
    requests: int
    attempts: int
    backoff_time: float
    rejected: dict
    budget_denied: int
    hedges: int
    breaker_history: tuple     # ((time, state), ...); empty without a breaker
    breaker_trips: tuple       # ((time, why), ...): each time the breaker opened, and why
    retries: int = 0           # attempts sent after a request's first one (hedge copies not counted)

    @property
    def amplification(self) -> float:
        """Calls sent to the target per request this client was given."""
        return self.attempts / self.requests if self.requests else 0.0

    def breaker_state_at(self, times) -> np.ndarray:
        """The breaker's state at each of ``times``: 0 closed, 1 half-open, 2 open."""
        if not self.breaker_history:
            raise ValueError(f"client {self.name!r} has no circuit breaker")
        times = _times("times", times)
        if not np.all(np.isfinite(times)):     # NaN would read as the last state, silently
            raise ValueError(f"times must be finite, got {validate.show(times)}")
        code = {"closed": 0, "half-open": 1, "open": 2}
        change_times = np.array([t for t, _ in self.breaker_history])
        states = np.array([code[s] for _, s in self.breaker_history])
        idx = np.searchsorted(change_times, times, side="right") - 1
        return states[np.maximum(idx, 0)]


def _times(name: str, times) -> np.ndarray:
    """``times`` (a number, or a list or array of numbers) as a float array; a ``WrongType`` naming
    ``name`` for anything else. Text is refused, not parsed: ``np.asarray(["1"], dtype=float)`` would
    quietly read it as 1.0."""
    wrong = validate.WrongType(f"{name} must be a number or a list (or array) of numbers, in seconds, "
                               f"got {validate.show(times)}")
    if isinstance(times, (str, bytes)):
        raise wrong
    try:
        raw = np.asarray(times)
    except (TypeError, ValueError):             # a ragged list, say
        raise wrong from None
    if raw.dtype.kind in "iuf" or raw.size == 0:
        return raw.astype(float)
    if raw.dtype.kind == "O" and all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in raw.flat):
        # ints past int64 (10**30), Fractions: as floats, those past any float (10**400) as infinite
        return np.array([_float(x) for x in raw.flat]).reshape(raw.shape)
    raise wrong


def _float(x) -> float:
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


@dataclass(frozen=True)
class CacheStats:
    """What one cache did during a run (see :class:`~resilience_sim.policies.cache.Cache`): lookups
    answered fresh (``hits``), stale while revalidating (``stale``), from a cached error
    (``negative``), by waiting for another caller's fetch (``coalesced``), or not at all (``misses``:
    the caller fetched); ``stale_if_error``: fetches that failed and were answered stale instead;
    ``fetches`` reached the source (background refreshes included); ``evictions`` made room (LRU)."""
    name: str
    hits: int
    stale: int
    negative: int
    coalesced: int
    misses: int
    fetches: int
    evictions: int
    stale_if_error: int = 0

    @property
    def lookups(self) -> int:
        return self.hits + self.stale + self.negative + self.coalesced + self.misses

    @property
    def hit_ratio(self) -> float:
        """The share of lookups answered from the cache without a fetch of their own: fresh, stale,
        or a cached error (0.0 before any lookup)."""
        return (self.hits + self.stale + self.negative) / self.lookups if self.lookups else 0.0


@dataclass(frozen=True)
class JobStats:
    """What one deferred-job queue did during a run (see :class:`~resilience_sim.policies.JobQueue`):
    jobs ``accepted`` (each answered "202 Accepted") or ``refused`` (queue full); ``completed``,
    still ``queued`` or ``running`` at the end, or ``dead`` (out of attempts, parked for an operator);
    ``attempts`` made; per completed job its ``accepted_at`` and ``notified_at`` times; the queue's
    ``depth`` (jobs not yet done) after each change, at ``depth_times``; per dead job its
    ``dead_accepted_at`` and ``died_at`` (when it was parked: the moment to raise an alarm)."""
    name: str
    accepted: int
    refused: int
    completed: int
    queued: int
    running: int
    dead: int
    attempts: int
    accepted_at: np.ndarray = field(repr=False)
    notified_at: np.ndarray = field(repr=False)
    depth_times: np.ndarray = field(repr=False)
    depth: np.ndarray = field(repr=False)
    dead_accepted_at: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    died_at: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))

    @property
    def lost(self) -> int:
        """Accepted jobs that are neither done, waiting, running nor parked: 0 for a durable queue."""
        return self.accepted - self.completed - self.queued - self.running - self.dead

    @property
    def time_to_notify(self) -> np.ndarray:
        """Seconds from acceptance to the notification, per completed job."""
        return self.notified_at - self.accepted_at


@dataclass(frozen=True)
class FaultSpan:
    """A fault and the spans it was active, for shading plots."""
    label: str
    kind: str
    spans: tuple


class Results:
    """Everything a run produced: per-request columns, service and client stats, fault spans.

    A request still unanswered at the end of the run counts as TIMED_OUT with reason "unfinished"
    and ends then (``in_flight`` says how many): a hung dependency shows as lost requests, never as
    a quiet run. Times are simulated seconds.

    Views: :meth:`between` (requests that started in a window) and :meth:`only` (requests for some
    routes) give a Results closed under its own selection: every metric counts what is inside,
    rates divide by the view's own duration ``until - since``, time availability and time series
    cover the view's window, and calls per request count the calls made for the view's requests.
    """

    def __init__(self, columns: dict, *, seed: int, until: float, names, keys, services=(), clients=(),
                 faults=(), routes=(), in_flight: int = 0, record_bytes: int = 0, caches=(), jobs=()):
        self.seed, self.since, self.until = seed, 0.0, until
        self.start, self.end = columns["start"], columns["end"]
        self.outcome, self.attempts = columns["outcome"], columns["attempts"]
        self._reason, self._answered_by = columns["reason"], columns["answered_by"]
        self._route, self._key = columns["route"], columns["key"]
        self.age = columns["age"] if "age" in columns else np.zeros(len(self.start), dtype=np.float32)
        self.names, self.keys = list(names), list(keys)
        self.services = {s.name: s for s in services}
        self.clients = {c.name: c for c in clients}
        self.caches = {c.name: c for c in caches}
        self.job_queues = {j.name: j for j in jobs}
        self.faults = list(faults)
        self.routes = tuple(dict.fromkeys([*routes, *(self.names[c] for c in np.unique(self._route))]))
        self.in_flight, self.record_bytes = in_flight, record_bytes
        self._selected = None            # route codes of an only() view; None: every route

    def __len__(self) -> int:
        return len(self.start)

    def __repr__(self) -> str:
        where = f"[{self.since:g}, {self.until:g}) s"
        if self._selected is not None:
            where += f", routes {sorted(self.names[c] for c in self._selected)}"
        if not len(self):
            return f"Results(0 requests, {where})"
        return f"Results({len(self):,} requests, availability {self.request_availability():.2%}, {where})"

    # --- selection ------------------------------------------------------------------------------
    def only(self, *routes: str) -> "Results":
        """The requests for the named routes (a workload's route is its name unless it was given one)."""
        if not routes:
            raise ValueError(f"routes must name at least one of {list(self.routes)}")
        for name in routes:
            if isinstance(name, str) and name not in self.routes:
                raise ValueError(f"routes must be among {list(self.routes)}, got {name!r}")
            _name("routes", name, self.routes)
        codes = {self.names.index(name) for name in routes if name in self.names}
        if self._selected is not None:
            codes &= self._selected
        view = self._view(np.isin(self._route, sorted(codes)))
        view._selected = frozenset(codes)
        return view

    def between(self, t0: float, t1: float) -> "Results":
        """The requests that started in [t0, t1), a window inside this one (say, during a fault)."""
        t0 = validate.number("t0", t0, low=self.since, high=self.until)
        t1 = validate.number("t1", t1, low=t0, high=self.until, low_open=True)
        view = self._view((self.start >= t0) & (self.start < t1))
        view.since, view.until = t0, t1
        return view

    def _view(self, mask: np.ndarray) -> "Results":
        view = copy.copy(self)
        for attr in ("start", "end", "outcome", "attempts", "_reason", "_answered_by", "_route", "_key", "age"):
            setattr(view, attr, getattr(self, attr)[mask])
        return view

    @property
    def duration(self) -> float:
        """The length of this view's window, ``until - since``, in seconds."""
        return self.until - self.since

    @property
    def latency(self) -> np.ndarray:
        """Each request's response time in seconds (end - start), whatever its outcome."""
        return self.end - self.start

    def reason(self, i: int) -> str:
        """Why request ``i`` was not a full answer ("" when it was)."""
        return self.names[self._reason[validate.index("i", i, len(self))]]

    @property
    def key_values(self) -> np.ndarray:
        """Each request's key (an object array; None where a request had none)."""
        return np.array(self.keys, dtype=object)[self._key]

    def key(self, i: int):
        """What request ``i`` was about (its key; None when it had none)."""
        return self.keys[self._key[validate.index("i", i, len(self))]]

    def row(self, i: int) -> dict:
        """Request ``i`` as a dict: start, end, latency, outcome, reason, attempts, answered_by, route,
        key, age.
        ``i`` counts from 0 in this view (-1 is the last)."""
        i = validate.index("i", i, len(self))
        return {"start": float(self.start[i]), "end": float(self.end[i]), "latency": float(self.latency[i]),
                "outcome": Outcome(int(self.outcome[i])).name.lower(), "reason": self.reason(i),
                "attempts": int(self.attempts[i]), "answered_by": self.names[self._answered_by[i]],
                "route": self.names[self._route[i]], "key": self.key(i), "age": float(self.age[i])}

    def _nonempty(self, what: str) -> int:
        if not len(self):
            raise ValueError(f"no requests in {self!r} to {what}; run longer or widen the view")
        return len(self)

    # --- availability -------------------------------------------------------------------------
    def request_availability(self) -> float:
        """The share of requests that got an answer (full or degraded)."""
        n = self._nonempty("take availability of")
        return float(np.count_nonzero(self.outcome <= Outcome.DEGRADED) / n)

    def full_quality_availability(self) -> float:
        """The share of requests that got a full-quality answer."""
        n = self._nonempty("take availability of")
        return float(np.count_nonzero(self.outcome == Outcome.OK) / n)

    def time_availability(self, *services: str, need: str = "all") -> float:
        """The share of this view's window the named services were up: all of them (``need="all"``)
        or any (``"any"``)."""
        if not services:
            raise ValueError(f"services must name at least one of {sorted(self.services)}")
        timelines = [self._stats(name).timeline for name in services]
        return group_availability(timelines, self.until, need=need, since=self.since)

    def _stats(self, name: str) -> ServiceStats:
        _name("service", name, self.services)
        return self.services[name]

    # --- latency and load ----------------------------------------------------------------------
    def latencies(self, *, successful: bool = True) -> np.ndarray:
        """Response times of answered requests (or of all, with ``successful=False``)."""
        successful = validate.boolean("successful", successful)
        return self.latency[self.outcome <= Outcome.DEGRADED] if successful else self.latency

    def latency_percentiles(self, ps=(50, 95, 99), *, successful: bool = True) -> dict:
        """``{p: seconds}`` for each percentile p in (0, 100]."""
        ps = percentile_list("ps", ps)
        lat = self.latencies(successful=successful)
        if lat.size == 0:
            raise ValueError(f"no matching requests in {self!r} to take percentiles of; run longer or "
                             f"widen the view")
        values = np.percentile(lat, ps)
        return {p: float(v) for p, v in zip(ps, values)}

    def mean_latency(self, *, successful: bool = True) -> float:
        lat = self.latencies(successful=successful)
        if lat.size == 0:
            raise ValueError(f"no matching requests in {self!r} to average; run longer or widen the view")
        return float(lat.mean())

    def share_slower_than(self, threshold: float) -> float:
        """The share of requests (any outcome) that took longer than ``threshold`` seconds."""
        validate.non_negative("threshold", threshold)
        return float(np.count_nonzero(self.latency > threshold) / max(1, len(self)))

    def throughput(self) -> float:
        """Answered requests per second of this view's window."""
        return float(np.count_nonzero(self.outcome <= Outcome.DEGRADED) / self.duration)

    def arrival_rate(self) -> float:
        """Requests per second that started in this view's window."""
        return float(len(self) / self.duration)

    def mean_in_system(self) -> float:
        """Time-averaged number of this view's requests in flight during its window, from the
        records (the unfinished ones included, up to the end of the run)."""
        overlap = np.clip(np.minimum(self.end, self.until) - np.maximum(self.start, self.since), 0.0, None)
        return float(overlap.sum() / self.duration)

    def calls_per_request(self, *services: str) -> float:
        """Calls made to the named services (default: all) for this view's requests, per request
        (1.0 for a lone service with no retries)."""
        n = self._nonempty("count calls for")
        names = services or tuple(self.services)
        return sum(self._calls_for(self._stats(name)) for name in names) / n

    def _calls_for(self, stats: ServiceStats) -> int:
        starts = stats.call_start
        inside = (starts >= self.since) & (starts < self.until)
        if self._selected is not None:
            inside &= np.isin(stats.call_route, sorted(self._selected))
        return int(np.count_nonzero(inside))

    def client(self, name: str) -> ClientStats:
        """What the client called ``name`` did."""
        _name("client", name, self.clients)
        return self.clients[name]

    def jobs(self, name: str) -> JobStats:
        """What the deferred-job queue called ``name`` did (over the whole run)."""
        _name("job queue", name, self.job_queues)
        return self.job_queues[name]

    def cache(self, name: str) -> CacheStats:
        """What the cache called ``name`` did (over the whole run: a view does not split it)."""
        _name("cache", name, self.caches)
        return self.caches[name]

    def attempts_per_request(self) -> float:
        self._nonempty("count attempts of")
        return float(self.attempts.mean())

    # --- breakdowns -----------------------------------------------------------------------------
    def outcome_counts(self) -> dict[str, int]:
        counts = np.bincount(self.outcome, minlength=len(Outcome))
        return {o.name.lower(): int(counts[o]) for o in Outcome}

    def reasons(self, *, unanswered_only: bool = False) -> Counter:
        """How many requests ended for each reason (degraded, failed, timed out or rejected; with
        ``unanswered_only``, leaving out the degraded answers)."""
        unanswered_only = validate.boolean("unanswered_only", unanswered_only)
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

    # --- answer quality ---------------------------------------------------------------------------
    def quality(self) -> dict[str, float]:
        """The share of requests for each kind of answer: ``"full"``, each degradation reason (a
        stale value, a fallback level, "deferred"...) and ``"unanswered"``; the shares sum to 1."""
        n = self._nonempty("take the quality of")
        out = {"full": float(np.count_nonzero(self.outcome == Outcome.OK) / n)}
        degraded = self._reason[self.outcome == Outcome.DEGRADED]
        for code, count in enumerate(np.bincount(degraded)):
            if count:
                out[self.names[code]] = float(count / n)
        out["unanswered"] = float(np.count_nonzero(self.outcome > Outcome.DEGRADED) / n)
        return out

    def ages(self) -> np.ndarray:
        """The age of the data in each answer, in seconds (0 straight from the source)."""
        return self.age[self.outcome <= Outcome.DEGRADED].astype(np.float64)

    def staleness_percentiles(self, ps=(50, 99, 100)) -> dict:
        """``{p: seconds}``: percentiles of the age of the data in the answers (p in (0, 100])."""
        ps = percentile_list("ps", ps)
        ages = self.ages()
        if ages.size == 0:
            raise ValueError(f"no answered requests in {self!r} to take staleness of; run longer or widen the view")
        return {p: float(v) for p, v in zip(ps, np.percentile(ages, ps))}

    def timeseries(self, bin_width: float) -> dict[str, np.ndarray]:
        """Per-bin series over this view's window, by start time: ``t`` (bin start), ``requests``,
        ``availability`` (NaN when empty), ``throughput`` (answered per second) and ``p99`` latency
        (NaN when nothing answered). At most :data:`MAX_BINS` bins."""
        bin_width = validate.number("bin_width", bin_width, low=0.0, high=self.duration, low_open=True)
        n_bins = bin_count(self.duration, bin_width)
        idx = np.minimum(((self.start - self.since) / bin_width).astype(np.int64), n_bins - 1)
        ok = self.outcome <= Outcome.DEGRADED
        total = np.bincount(idx, minlength=n_bins)
        good = np.bincount(idx, weights=ok, minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            avail = np.where(total > 0, good / np.maximum(total, 1), np.nan)
        p99 = np.full(n_bins, np.nan)
        lat = self.latency
        order = np.argsort(idx, kind="stable")
        bounds = np.searchsorted(idx[order], np.arange(n_bins + 1))
        for b in np.flatnonzero(good):          # only bins with an answer have a p99
            sel = order[bounds[b]:bounds[b + 1]]
            sel = sel[ok[sel]]
            if sel.size:
                p99[b] = np.percentile(lat[sel], 99)
        return {"t": self.since + np.arange(n_bins) * bin_width, "requests": total, "availability": avail,
                "throughput": good / bin_width, "p99": p99}

    def summary(self) -> dict:
        """The headline numbers of this view, for printing."""
        out = {"requests": self._nonempty("summarise"), "availability": self.request_availability()}
        if self.latencies().size:
            out.update({f"p{p}": v for p, v in self.latency_percentiles().items()})
        out["calls_per_request"] = self.calls_per_request()
        return out


def bin_count(duration: float, bin_width: float, name: str = "bin_width") -> int:
    """How many ``bin_width`` bins cover ``duration`` seconds: at most :data:`MAX_BINS`, else a
    ValueError naming ``name`` and the smallest bin width that works."""
    bins = duration / bin_width                      # inf for a bin_width of 5e-324
    if bins > MAX_BINS:
        least = duration / MAX_BINS
        step = 10.0 ** (math.floor(math.log10(least)) - 2)
        least = math.ceil(least / step - 1e-6) * step            # three figures, rounded up
        while math.ceil(duration / least) > MAX_BINS:
            least += step
        many = f"{math.ceil(bins):,}" if bins < 1e18 else f"{bins:.3g}" if bins < math.inf else "more than 1.8e308"
        raise ValueError(f"{name} must give at most {MAX_BINS:,} bins: {bin_width!r} s over this "
                         f"{duration:g} s window gives {many}; use {name} >= {least:.3g}")
    return math.ceil(bins)


def as_results(results, name: str = "results") -> "Results":
    """``results`` if it is a run's :class:`Results`, else a ``WrongType`` naming ``name`` that says
    where a Results comes from."""
    if isinstance(results, Results):
        return results
    if isinstance(getattr(results, "results", None), Results):
        hint = f": this {type(results).__name__} holds one, pass its .results"
    elif hasattr(results, "run") and hasattr(results, "env"):
        hint = ": run the world first, results = world.run(until=...), and pass what it returns"
    else:
        hint = " (what world.run(until=...) returns)"
    raise validate.WrongType(f"{name} must be a Results{hint}; got {validate.show(results)}")


def percentile_list(name: str, ps) -> list:
    """A non-empty list of percentiles in (0, 100], returned as given (so ``{50: ...}`` keeps its keys)."""
    if isinstance(ps, (str, bytes)) or not hasattr(ps, "__iter__"):
        raise validate.WrongType(f"{name} must be a list of percentiles in (0, 100], e.g. (50, 99), "
                                 f"got {validate.show(ps)}")
    ps = list(ps)
    if not ps:
        raise ValueError(f"{name} must hold at least one percentile in (0, 100], got none")
    for i, p in enumerate(ps):
        validate.number(f"{name}[{i}]", p, low=0.0, high=100.0, low_open=True)
    return ps
