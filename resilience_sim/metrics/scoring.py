"""A shop's score for one chaos day, computed from its records: SLOs per endpoint with the error budget
left, orders lost or duplicated, what the day cost, and where each SLO miss came from.

Everything here reads plain data (a :class:`~resilience_sim.metrics.results.Results`, lists and dicts);
it never sees a World. What holds:

* a request is **good** when it got an answer (full or degraded) within its endpoint's ``patience``;
  an endpoint meets its SLO when good / requests >= ``target`` over the requests that started in the
  scored window. ``budget_left`` is 1 - bad / (requests x (1 - target)): 1 untouched, 0 spent, below
  0 overspent;
* an order intent is **lost** when the user was told it was accepted, or was charged, and it has no
  confirmed order with a receipt at the end; **duplicated** when it was charged more than once or got
  more than one receipt (each counts once);
* the cost is the sum of the named prices below, each in dollars with its unit in the name.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..core import validate
from ..core.reasons import Outcome
from .results import as_results

# --- prices (dollars; a simulated request or order stands for many real ones, and is priced so) ------
#: One replica of a service (or one job worker) for an hour.
REPLICA_PER_HOUR = 1.00
#: A thousand cache entries of memory for an hour.
CACHE_PER_1000_ENTRIES_HOUR = 1.00
#: One extra simulated call (a retry, a hedge, a job's second try): the load it stands for.
EXTRA_CALL = 0.002
#: One page to the on-call engineer (their night, their next day).
PAGE = 150.0
#: An incident (users failing) that no page caught: customers found it first.
UNDETECTED_INCIDENT = 1000.0
#: One simulated order lost, or charged or fulfilled twice: refunds, support, trust.
LOST_ORDER = 2000.0
DUPLICATED_ORDER = 2000.0
#: An incident: a bin of :data:`INCIDENT_BIN` seconds in which an endpoint's good share is below this.
INCIDENT_LEVEL, INCIDENT_BIN = 0.9, 600.0
#: Bins in which :func:`explain_misses` looks for the bad requests of a missed SLO.
MISS_BIN = 300.0


@dataclass(frozen=True)
class Slo:
    """An endpoint's objective: the share ``target`` of its requests answered within ``patience`` s."""
    route: str
    target: float
    patience: float

    def __post_init__(self):
        validate.text("route", self.route, empty=False)
        validate.number("target", self.target, low=0.0, high=1.0, low_open=True)
        if self.target == 1.0:
            raise ValueError("target must be < 1: an SLO of 100% has no error budget")
        validate.positive("patience", self.patience)


def good(results, slo: Slo) -> np.ndarray:
    """Per request of ``results``, whether it was good for ``slo`` (answered within its patience)."""
    results = as_results(results)
    return (results.outcome <= Outcome.DEGRADED) & (results.latency <= slo.patience)


@dataclass(frozen=True)
class EndpointScore:
    route: str
    target: float
    requests: int
    bad: int

    @property
    def availability(self) -> float:
        return 1.0 - self.bad / self.requests if self.requests else float("nan")

    @property
    def met(self) -> bool:
        return self.requests > 0 and self.availability >= self.target

    @property
    def budget_left(self) -> float:
        """The share of the error budget left (negative: overspent)."""
        allowed = self.requests * (1.0 - self.target)
        return 1.0 - self.bad / allowed if allowed else float("nan")


def endpoint_score(results, slo: Slo) -> EndpointScore:
    """``slo``'s score over ``results`` (a view of the scored window)."""
    view = as_results(results).only(slo.route) if slo.route in results.routes else None
    if view is None or not len(view):
        return EndpointScore(slo.route, slo.target, 0, 0)
    ok = good(view, slo)
    return EndpointScore(slo.route, slo.target, int(ok.size), int(ok.size - np.count_nonzero(ok)))


@dataclass(frozen=True)
class OrderCheck:
    """Intents accepted (the user heard "done" or "accepted"), and those lost or duplicated."""
    accepted: int
    lost: tuple
    duplicated: tuple

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated


def check_orders(accepted, statuses: dict, charges: dict, receipts: dict) -> OrderCheck:
    """``accepted``: intents the users were told were accepted; ``statuses``: intent -> its orders'
    statuses; ``charges``: intent -> payments still charged; ``receipts``: intent -> receipts sent."""
    for name, value in (("statuses", statuses), ("charges", charges), ("receipts", receipts)):
        if not isinstance(value, dict):
            raise validate.WrongType(f"{name} must be a dict keyed by order intent, got {validate.show(value)}")
    if isinstance(accepted, (str, bytes)) or not hasattr(accepted, "__iter__"):
        raise validate.WrongType(f"accepted must be a list of order intents, got {validate.show(accepted)}")
    accepted = set(accepted)
    fulfilled = {i for i, s in statuses.items() if "CONFIRMED" in s and receipts.get(i, 0) > 0}
    owed = accepted | {i for i, n in charges.items() if n > 0}
    lost = tuple(sorted(owed - fulfilled))
    duplicated = tuple(sorted({i for i, n in charges.items() if n > 1} | {i for i, n in receipts.items() if n > 1}))
    return OrderCheck(len(accepted), lost, duplicated)


def slo_series(results, slo: Slo, bin_width: float) -> dict:
    """Per ``bin_width`` bin (by start time) of ``slo``'s requests: ``t`` (bin start), ``good`` (the
    good share; NaN where none started) and ``budget_spent`` (the share of the whole window's error
    budget spent by the end of the bin: 1 at the end means exactly spent)."""
    results = as_results(results)
    bin_width = validate.positive("bin_width", bin_width)
    n = max(1, int(np.ceil(results.duration / bin_width)))
    t = results.since + np.arange(n) * bin_width
    if slo.route not in results.routes:
        return {"t": t, "good": np.full(n, np.nan), "budget_spent": np.zeros(n)}
    view = results.only(slo.route)
    idx = np.minimum(((view.start - results.since) / bin_width).astype(np.int64), n - 1)
    total = np.bincount(idx, minlength=n)
    fine = np.bincount(idx, weights=good(view, slo), minlength=n)
    allowed = max(len(view) * (1.0 - slo.target), 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, fine / np.maximum(total, 1), np.nan)
    return {"t": t, "good": share, "budget_spent": np.cumsum(total - fine) / allowed}


def incidents(results, slos, *, level: float = INCIDENT_LEVEL, bin_width: float = INCIDENT_BIN) -> list:
    """Spans ``[(start, end)]`` in which some endpoint's good share, bin by bin, was below ``level``."""
    results = as_results(results)
    level = validate.probability("level", level)
    bin_width = validate.positive("bin_width", bin_width)
    n = max(1, int(np.ceil(results.duration / bin_width)))
    bad = np.zeros(n, dtype=bool)
    for slo in slos:
        if slo.route not in results.routes:
            continue
        view = results.only(slo.route)
        idx = np.minimum(((view.start - results.since) / bin_width).astype(np.int64), n - 1)
        total = np.bincount(idx, minlength=n)
        fine = np.bincount(idx, weights=good(view, slo), minlength=n)
        bad |= (total > 0) & (fine < level * total)
    spans = []
    for i in np.flatnonzero(bad):
        lo = results.since + i * bin_width
        if spans and spans[-1][1] >= lo:
            spans[-1][1] = lo + bin_width
        else:
            spans.append([lo, lo + bin_width])
    return [(lo, min(hi, results.until)) for lo, hi in spans]


@dataclass(frozen=True)
class Cost:
    """What a day cost, item by item (dollars): ``items`` maps a name to its amount."""
    items: dict

    @property
    def total(self) -> float:
        return float(sum(self.items.values()))

    def biggest(self) -> list:
        """``[(item, dollars)]`` from the most expensive."""
        return sorted(self.items.items(), key=lambda kv: -kv[1])


def day_cost(*, hours: float, replicas: dict, cache_entries: int, extra_calls: int, pages: int,
             undetected: int, lost: int, duplicated: int) -> Cost:
    """The day's bill from its counts (see the prices above); ``replicas`` maps a service to its count."""
    hours = validate.positive("hours", hours)
    if not isinstance(replicas, dict):
        raise validate.WrongType(f"replicas must be a dict of service name to count, got {validate.show(replicas)}")
    for name, n in replicas.items():
        validate.integer(f"replicas[{name!r}]", n, low=0)
    for name, n in (("cache_entries", cache_entries), ("extra_calls", extra_calls), ("pages", pages),
                    ("undetected", undetected), ("lost", lost), ("duplicated", duplicated)):
        validate.integer(name, n, low=0)
    items = {f"replicas of {name}": n * REPLICA_PER_HOUR * hours for name, n in replicas.items()}
    items["cache memory"] = cache_entries / 1000 * CACHE_PER_1000_ENTRIES_HOUR * hours
    items["extra calls"] = extra_calls * EXTRA_CALL
    items["pages"] = pages * PAGE
    items["undetected incidents"] = undetected * UNDETECTED_INCIDENT
    items["lost orders"] = lost * LOST_ORDER
    items["duplicated orders"] = duplicated * DUPLICATED_ORDER
    return Cost(items)


@dataclass(frozen=True)
class Miss:
    """Why an endpoint missed its SLO, from the records: the worst span of bad requests (``start``,
    ``end``, ``bad`` of them), the faults active then (labels), and who failed them and why
    (``(component, reason)`` counts; "too slow" for answers past the patience)."""
    route: str
    start: float
    end: float
    bad: int
    faults: tuple
    causes: tuple


def explain_misses(results, slo: Slo, *, top: int = 3, bin_width: float = MISS_BIN) -> list:
    """Up to ``top`` spans of ``slo``'s bad requests, the worst first: each a run of adjacent
    ``bin_width`` bins with bad requests around the worst bin left, with the faults overlapping it
    and the causes recorded (a :class:`Miss` each); empty when nothing was bad."""
    results = as_results(results)
    top = validate.integer("top", top, low=1, high=100)
    bin_width = validate.positive("bin_width", bin_width)
    if slo.route not in results.routes:
        return []
    view = results.only(slo.route)
    bad = ~good(view, slo)
    n = max(1, int(np.ceil(results.duration / bin_width)))
    idx = np.minimum(((view.start - results.since) / bin_width).astype(np.int64), n - 1)
    per_bin = np.bincount(idx[bad], minlength=n)
    misses = []
    while len(misses) < top and per_bin.any():
        lo = hi = int(np.argmax(per_bin))
        while lo > 0 and per_bin[lo - 1]:
            lo -= 1
        while hi + 1 < n and per_bin[hi + 1]:
            hi += 1
        per_bin[lo:hi + 1] = 0
        t0, t1 = results.since + lo * bin_width, min(results.since + (hi + 1) * bin_width, results.until)
        misses.append(_miss(view, bad & (idx >= lo) & (idx <= hi), slo.route, t0, t1, results.faults))
    return misses


def _miss(view, inside: np.ndarray, route: str, t0: float, t1: float, faults) -> Miss:
    causes = Counter()
    answered = view.outcome <= Outcome.DEGRADED
    for i in np.flatnonzero(inside):
        who = view.names[view._answered_by[i]]
        causes[(who, "too slow") if answered[i] else (who, view.names[view._reason[i]])] += 1
    active = tuple(f.label for f in faults if any(s < t1 and e > t0 for s, e in f.spans))
    return Miss(route, t0, t1, int(np.count_nonzero(inside)), active, tuple(causes.most_common()))


__all__ = ["slo_series", "Slo", "EndpointScore", "OrderCheck", "Cost", "Miss", "good", "endpoint_score", "check_orders",
           "incidents", "day_cost", "explain_misses", "REPLICA_PER_HOUR", "CACHE_PER_1000_ENTRIES_HOUR",
           "EXTRA_CALL", "PAGE", "UNDETECTED_INCIDENT", "LOST_ORDER", "DUPLICATED_ORDER", "INCIDENT_LEVEL",
           "INCIDENT_BIN", "MISS_BIN"]
