"""What is known exactly: the formulas the simulator is validated against and the course teaches."""
from __future__ import annotations

import math

from . import validate

SECONDS_PER = {"year": 365.25 * 86400, "month": 365.25 * 86400 / 12, "week": 7 * 86400, "day": 86400}


def availability(mttf: float, mttr: float) -> float:
    """Steady-state availability of a failure/repair component: MTTF / (MTTF + MTTR)."""
    mttf = validate.positive("mttf", mttf)
    mttr = validate.non_negative("mttr", mttr)
    return mttf / (mttf + mttr)


def availability_sd(mttf: float, mttr: float, horizon: float) -> float:
    """Standard deviation of the availability measured over ``horizon`` seconds for exponential
    failure and repair times: sqrt(2 (MTTF MTTR)^2 / ((MTTF + MTTR)^3 horizon)) (two-state Markov
    chain, long-run limit). Use a few of these as the tolerance when comparing a run with the formula."""
    mttf = validate.positive("mttf", mttf)
    mttr = validate.positive("mttr", mttr)
    horizon = validate.positive("horizon", horizon)
    return math.sqrt(2 * (mttf * mttr) ** 2 / ((mttf + mttr) ** 3 * horizon))


def _availabilities(values) -> list[float]:
    values = list(values)
    if not values:
        raise ValueError("availabilities must hold at least one value in [0, 1], got none")
    return [validate.probability(f"availabilities[{i}]", a) for i, a in enumerate(values)]


def series(*availabilities: float) -> float:
    """A chain where every part must be up: the product of the parts' availabilities."""
    return math.prod(_availabilities(availabilities))


def parallel(*availabilities: float) -> float:
    """Redundant replicas where one up suffices (independent failures): 1 - prod(1 - a)."""
    return 1.0 - math.prod(1.0 - a for a in _availabilities(availabilities))


def replicas_availability(n: int, mttf: float, mttr: float, *, crews: int | None = None) -> float:
    """Exact share of time at least one of ``n`` replicas is up, when ``crews`` people repair one replica
    each at a time (``None``: as many as needed, which is independent replicas). Exponential times."""
    n = validate.integer("n", n, low=1)
    lam, mu = 1.0 / validate.positive("mttf", mttf), 1.0 / validate.positive("mttr", mttr)
    crews = n if crews is None else validate.integer("crews", crews, low=1)
    # birth-death chain on the number of failed replicas k; weights kept as logs (they overflow for large n)
    log_weights, log_w = [0.0], 0.0
    for k in range(n):
        log_w += math.log((n - k) * lam / (min(k + 1, crews) * mu))
        log_weights.append(log_w)
    top = max(log_weights)
    total = sum(math.exp(lw - top) for lw in log_weights)
    return 1.0 - math.exp(log_weights[-1] - top) / total


def nines(a: float) -> float:
    """How many nines: 0.999 -> 3.0."""
    a = validate.number("a", a, low=0.0, high=1.0)
    return math.inf if a == 1.0 else -math.log10(1.0 - a)


def downtime(a: float, period: str = "year") -> float:
    """Seconds of downtime per ``period`` ("year", "month", "week", "day") at availability ``a``."""
    a = validate.probability("a", a)
    validate.choice("period", period, SECONDS_PER)
    return (1.0 - a) * SECONDS_PER[period]


def error_budget(slo: float, requests: int) -> int:
    """How many of ``requests`` may fail while still meeting the ``slo`` (a share of good requests)."""
    slo = validate.probability("slo", slo)
    requests = validate.integer("requests", requests, low=0)
    return math.floor((1.0 - slo) * requests + 1e-9)


def fanout_slow_share(p_slow: float, n: int) -> float:
    """Share of requests that are slow when each waits for ``n`` leaves, each slow with ``p_slow``."""
    p_slow = validate.probability("p_slow", p_slow)
    n = validate.integer("n", n, low=1)
    return 1.0 - (1.0 - p_slow) ** n


def mm1_response_time(arrival_rate: float, service_rate: float) -> float:
    """Mean time in an M/M/1 system: 1 / (mu - lambda)."""
    lam = validate.positive("arrival_rate", arrival_rate)
    mu = validate.positive("service_rate", service_rate)
    if lam >= mu:
        raise ValueError(f"arrival_rate must be < service_rate ({mu:g}) for a stable queue, got {lam:g}")
    return 1.0 / (mu - lam)


def erlang_c(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Probability an arrival waits in an M/M/c queue (the Erlang C formula)."""
    c = validate.integer("servers", servers, low=1)
    lam = validate.positive("arrival_rate", arrival_rate)
    mu = validate.positive("service_rate", service_rate)
    load = lam / mu
    if load >= c:
        raise ValueError(f"arrival_rate must be < servers * service_rate ({c * mu:g}), got {lam:g}")
    term, total = 1.0, 1.0
    for k in range(1, c):
        term *= load / k
        total += term
    top = term * load / c * c / (c - load)
    return top / (total + top)


def mmc_response_time(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean time in an M/M/c system: C(c, a) / (c*mu - lambda) + 1/mu."""
    wait = erlang_c(servers, arrival_rate, service_rate) / (servers * service_rate - arrival_rate)
    return wait + 1.0 / service_rate


def littles_law(arrival_rate: float, mean_time: float) -> float:
    """L = lambda * W: mean number in the system."""
    return validate.non_negative("arrival_rate", arrival_rate) * validate.non_negative("mean_time", mean_time)
