"""What is known exactly: the formulas the simulator is validated against and the course teaches."""
from __future__ import annotations

import math
import sys
from fractions import Fraction
from statistics import NormalDist

from . import validate

SECONDS_PER = {"year": 365.25 * 86400, "month": 365.25 * 86400 / 12, "week": 7 * 86400, "day": 86400}

#: Most states (replicas, servers) a formula here sums one by one: 10**6 take about half a second.
MAX_STATES = 10 ** 6
_LOG_MAX = math.log(sys.float_info.max)


def availability(mttf: float, mttr: float) -> float:
    """Steady-state availability of a failure/repair component: MTTF / (MTTF + MTTR)."""
    mttf = validate.positive("mttf", mttf)
    mttr = validate.non_negative("mttr", mttr)
    total = mttf + mttr
    if total != math.inf:
        return mttf / total
    return 1.0 / (1.0 + mttr / mttf)       # both near 1.8e308: their sum overflows, their ratio does not


def availability_sd(mttf: float, mttr: float, horizon: float) -> float:
    """Standard deviation of the availability measured over ``horizon`` seconds for exponential
    failure and repair times: sqrt(2 (MTTF MTTR)^2 / ((MTTF + MTTR)^3 horizon)) (two-state Markov
    chain, long-run limit). Use a few of these as the tolerance when comparing a run with the formula."""
    mttf = validate.positive("mttf", mttf)
    mttr = validate.positive("mttr", mttr)
    horizon = validate.positive("horizon", horizon)
    try:
        sd = math.sqrt(2 * (mttf * mttr) ** 2 / ((mttf + mttr) ** 3 * horizon))
    except (OverflowError, ZeroDivisionError):
        sd = math.nan
    if 0.0 < sd < math.inf:
        return sd
    # the powers overflowed or underflowed: the same formula in logs
    longer, shorter = max(mttf, mttr), min(mttf, mttr)
    log_cycle = math.log(longer) + math.log1p(shorter / longer)            # log(MTTF + MTTR)
    log_sd = (math.log(mttf) + math.log(mttr) - 1.5 * log_cycle + 0.5 * (math.log(2) - math.log(horizon)))
    if log_sd > _LOG_MAX:
        raise ValueError(f"horizon must be long against mttf + mttr for this long-run formula, got "
                         f"{horizon:g} s for cycles of {mttf:g} + {mttr:g} s")
    return math.exp(log_sd)


def _availabilities(values) -> list[float]:
    values = list(values)
    if not values:
        raise ValueError("availabilities must hold at least one value in [0, 1], got none")
    if len(values) == 1 and not isinstance(values[0], (str, bytes)) and hasattr(values[0], "__iter__"):
        raise validate.WrongType(f"availabilities must be given one by one, e.g. series(0.99, 0.999), or a list "
                                 f"unpacked with a star: series(*values); got one {type(values[0]).__name__}: "
                                 f"{validate.show(values[0])}")
    return [validate.probability(f"availabilities[{i}]", a) for i, a in enumerate(values)]


def series(*availabilities: float) -> float:
    """A chain where every part must be up: the product of the parts' availabilities."""
    return math.prod(_availabilities(availabilities))


def parallel(*availabilities: float) -> float:
    """Redundant replicas where one up suffices (independent failures): 1 - prod(1 - a)."""
    return 1.0 - math.prod(1.0 - a for a in _availabilities(availabilities))


def replicas_availability(n: int, mttf: float, mttr: float, *, crews: int | None = None) -> float:
    """Exact share of time at least one of ``n`` replicas is up, when ``crews`` people repair one replica
    each at a time (``None``: as many as needed, which is independent replicas). Exponential times.

    The chain is summed state by state, so with fewer crews than replicas ``n`` is at most
    :data:`MAX_STATES`; independent replicas have a closed form, 1 - (MTTR / (MTTF + MTTR))^n, for any n."""
    n = validate.integer("n", n, low=1)
    mttf, mttr = validate.positive("mttf", mttf), validate.positive("mttr", mttr)
    crews = n if crews is None else validate.integer("crews", crews, low=1)
    if n > MAX_STATES:
        if crews < n:
            raise ValueError(f"n must be <= {MAX_STATES:,} with fewer crews than replicas (the chain is summed "
                             f"one state per replica), got n={n:,} with crews={crews:,}")
        log_down = -math.log1p(mttf / mttr)        # log of one replica's unavailability, MTTR / (MTTF + MTTR)
        if log_down == 0.0:                        # MTTF / MTTR below 1e-308: every replica is always down
            return 0.0
        try:
            return -math.expm1(n * log_down)       # 1 - down^n, exact for tiny down^n too
        except OverflowError:                      # n beyond 1.8e308
            return 1.0
    lam, mu = 1.0 / mttf, 1.0 / mttr
    # birth-death chain on the number of failed replicas k; weights kept as logs (they overflow for large n)
    normal = all(sys.float_info.min <= x <= 1e300 for x in (lam, mu)) and 1e-290 < lam / mu < 1e290
    log_ratio = math.log(mttr) - math.log(mttf)    # log(lam / mu), for rates a float cannot divide
    log_weights, log_w = [0.0], 0.0
    for k in range(n):
        if normal:
            log_w += math.log((n - k) * lam / (min(k + 1, crews) * mu))
        else:
            log_w += math.log(n - k) + log_ratio - math.log(min(k + 1, crews))
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
    # the slo read as the decimal it was written as (0.9 is 9/10, not the float just above it), so the
    # count is exact for any number of requests: (1 - 0.9) * 10**9 in floats is 99999999.99999997
    return math.floor((1 - Fraction(repr(slo))) * requests)


def fanout_slow_share(p_slow: float, n: int) -> float:
    """Share of requests that are slow when each waits for ``n`` leaves, each slow with ``p_slow``."""
    p_slow = validate.probability("p_slow", p_slow)
    n = validate.integer("n", n, low=1)
    if p_slow == 1.0:
        return 1.0
    log_fast = math.log1p(-p_slow)               # log(1 - p): exact for a p_slow of 1e-20 too
    try:
        return -math.expm1(n * log_fast)         # 1 - (1 - p)^n
    except OverflowError:                        # n beyond 1.8e308: multiply in logs
        if not log_fast:
            return 0.0
        log_x = math.log(n) + math.log(-log_fast)
        return -math.expm1(-math.exp(log_x)) if log_x < 709.0 else 1.0


def mm1_response_time(arrival_rate: float, service_rate: float) -> float:
    """Mean time in an M/M/1 system: 1 / (mu - lambda)."""
    lam = validate.positive("arrival_rate", arrival_rate)
    mu = validate.positive("service_rate", service_rate)
    if lam >= mu:
        raise ValueError(f"arrival_rate must be < service_rate ({mu:g}) for a stable queue, got {lam:g}")
    time = 1.0 / (mu - lam)
    if time == math.inf:
        raise ValueError(f"arrival_rate must be further below service_rate ({mu!r}): the mean time, "
                         f"1 / (service_rate - arrival_rate), is beyond the largest float; got {lam!r}")
    return time


def erlang_c(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Probability an arrival waits in an M/M/c queue (the Erlang C formula), for at most
    :data:`MAX_STATES` servers (the sum has one term per server)."""
    c = validate.integer("servers", servers, low=1, high=MAX_STATES)
    lam = validate.positive("arrival_rate", arrival_rate)
    mu = validate.positive("service_rate", service_rate)
    load = lam / mu
    if load >= c:
        raise ValueError(f"arrival_rate must be < servers * service_rate ({c * mu:g}), got {lam:g}")
    term, total = 1.0, 1.0
    for k in range(1, c):
        term *= load / k
        total += term
        if total > 1e200:          # load^k / k! overflows for a load of 800: rescale (the ratio below is unchanged)
            term, total = term / total, 1.0
    top = term * load / c * c / (c - load)
    return top / (total + top)


def mmc_response_time(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean time in an M/M/c system: C(c, a) / (c*mu - lambda) + 1/mu."""
    probability = erlang_c(servers, arrival_rate, service_rate)       # checks the three
    c, lam, mu = int(servers), float(arrival_rate), float(service_rate)
    time = probability / (c * mu - lam) + 1.0 / mu
    if time == math.inf:
        raise ValueError(f"arrival_rate must be further below servers * service_rate ({c * mu!r}): the mean "
                         f"time is beyond the largest float; got {lam!r}")
    return time


def littles_law(arrival_rate: float, mean_time: float) -> float:
    """L = lambda * W: mean number in the system."""
    lam = validate.non_negative("arrival_rate", arrival_rate)
    w = validate.non_negative("mean_time", mean_time)
    if lam * w == math.inf:
        raise ValueError(f"arrival_rate * mean_time must be a float, got {lam:g} * {w:g}, beyond 1.8e308")
    return lam * w


# --- time units ---------------------------------------------------------------------------------
#: Seconds in each unit people read times in (a month is a twelfth of a Julian year).
TIME_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0,
              **{unit: float(SECONDS_PER[unit]) for unit in ("day", "week", "month", "year")}}


# --- availability, read the other way round -----------------------------------------------------
def mttf_for(availability: float, mttr: float) -> float:
    """The mean time to failure that gives ``availability`` with mean time to repair ``mttr``:
    MTTR * A / (1 - A), the inverse of :func:`availability`."""
    availability = validate.number("availability", availability, low=0.0, high=1.0, low_open=True)
    if availability == 1.0:
        raise ValueError("availability must be < 1: a service that never fails has no mean time to failure")
    return validate.positive("mttr", mttr) * availability / (1.0 - availability)


def chain_availability_sd(n: int, availability: float, cycles: int) -> float:
    """One standard deviation, from chance, of the time availability measured for a chain of ``n``
    independent exponential failure/repair services, each up a share ``availability`` and run for
    ``cycles`` mean failure/repair cycles: sqrt(n) * A (1 - A) * sqrt(2 / cycles).

    Each service's measured availability wobbles by A (1 - A) sqrt(2 / cycles) (see
    :func:`availability_sd`); the chain is down when any one is, its downtime is about the sum of
    theirs, so the variances add."""
    n = validate.integer("n", n, low=1)
    a = validate.probability("availability", availability)
    cycles = validate.integer("cycles", cycles, low=1)
    return math.sqrt(n) * a * (1 - a) * math.sqrt(2 / cycles)


# --- counting independent trials --------------------------------------------------------------
def share_sd(p: float, n: int) -> float:
    """Standard deviation of a share measured over ``n`` independent trials whose true value is
    ``p``: sqrt(p (1 - p) / n) (binomial)."""
    p = validate.probability("p", p)
    n = validate.integer("n", n, low=1)
    return math.sqrt(p * (1 - p) / n)


def binomial_tail(n: int, p: float, k: int) -> float:
    """P(at least ``k`` successes among ``n`` independent trials, each a success with probability ``p``)."""
    n = validate.integer("n", n, low=0)
    p = validate.probability("p", p)
    k = validate.integer("k", k, low=0)
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def trials_until_run(p: float, k: int) -> float:
    """Expected trials until ``k`` failures in a row, each trial failing with probability ``p``,
    from a fresh start: (1 - p^k) / ((1 - p) p^k), the classic waiting time for a run."""
    p = validate.number("p", p, low=0.0, high=1.0, low_open=True)
    k = validate.integer("k", k, low=1)
    if p == 1.0:
        return float(k)
    return (1 - p ** k) / ((1 - p) * p ** k)


# --- retries --------------------------------------------------------------------------------------
def retry_availability(p: float, attempts: int) -> float:
    """The share of requests answered when each attempt fails independently with probability ``p``
    and a request makes up to ``attempts`` attempts: 1 - p^attempts."""
    p = validate.probability("p", p)
    return 1.0 - p ** validate.integer("attempts", attempts, low=1)


def expected_attempts(p: float, attempts: int) -> float:
    """Mean attempts per request in the same setting: 1 + p + ... + p^(attempts - 1)."""
    p = validate.probability("p", p)
    return sum(p ** i for i in range(validate.integer("attempts", attempts, low=1)))


def attempts_variance(p: float, attempts: int) -> float:
    """Variance of the attempts per request in the same setting (a geometric count cut at
    ``attempts``): E[N^2] - E[N]^2 with E[N^2] = sum over i < attempts of (2i + 1) p^i."""
    mean = expected_attempts(p, attempts)
    second = sum((2 * i + 1) * p ** i for i in range(attempts))
    return max(second - mean ** 2, 0.0)


# --- queues ------------------------------------------------------------------------------------------
def mmc_tail(t: float, servers: int, arrival_rate: float, service_rate: float) -> float:
    """P(time in system > ``t``) in an M/M/c queue served first come, first served.

    The time in system is a wait (0 with probability 1 - C, otherwise exponential with rate
    c mu - lambda; C is :func:`erlang_c`) plus an exponential service with rate mu.
    """
    t = validate.non_negative("t", t)
    c, lam, mu = servers, arrival_rate, service_rate
    C = erlang_c(c, lam, mu)
    r = c * mu - lam
    if math.isclose(r, mu):
        return math.exp(-mu * t) * (1 + C * mu * t)
    return math.exp(-mu * t) + C * mu / (r - mu) * (math.exp(-mu * t) - math.exp(-r * t))


def mmc_quantile(q: float, servers: int, arrival_rate: float, service_rate: float) -> float:
    """The ``q``-quantile (0 < q < 1) of the time in an M/M/c system, by bisection on :func:`mmc_tail`."""
    q = validate.number("q", q, low=0.0, high=1.0, low_open=True)
    if q == 1.0:
        raise ValueError("q must be in (0, 1) (the 1-quantile of a time in system is infinite), got 1.0")
    return _invert(lambda t: mmc_tail(t, servers, arrival_rate, service_rate), 1 - q, steps=60, upper=False)


# --- latency distributions -----------------------------------------------------------------------
def survival(dist, t: float) -> float:
    """P(X > ``t``) for a Fixed, Exponential, Uniform or LogNormal duration X, or a Mixture of them."""
    from .distributions import Exponential, Fixed, LogNormal, Mixture, Uniform
    if t < 0:
        return 1.0
    if isinstance(dist, Mixture):
        return sum(w * survival(d, t) for w, d in dist.parts)
    if isinstance(dist, LogNormal):
        return 1.0 - _NORMAL.cdf(math.log(t / dist.median) / dist.sigma) if t > 0 else 1.0
    if isinstance(dist, Exponential):
        return math.exp(-t / dist.mean)
    if isinstance(dist, Fixed):
        return 1.0 if t < dist.value else 0.0
    if isinstance(dist, Uniform):
        return 1.0 if t < dist.low else 0.0 if t >= dist.high else (dist.high - t) / (dist.high - dist.low)
    raise ValueError(f"dist must be a Fixed, Exponential, Uniform, LogNormal or Mixture, got {dist!r}")


def capped_mean(dist, limit: float) -> float:
    """E[min(X, ``limit``)] for a Fixed, Exponential or LogNormal duration X, or a Mixture of them:
    the mean time a call holds its caller when the caller stops waiting at ``limit`` (a timeout)."""
    from .distributions import Exponential, Fixed, LogNormal, Mixture
    limit = validate.number("limit", limit, low=0.0, allow_inf=True)
    if math.isinf(limit):
        return dist.mean
    if isinstance(dist, Mixture):
        return sum(w * capped_mean(d, limit) for w, d in dist.parts)
    if isinstance(dist, LogNormal):
        mu, s = math.log(dist.median), dist.sigma
        z = (math.log(limit) - mu) / s if limit > 0 else -math.inf
        return dist.mean * _NORMAL.cdf(z - s) + limit * (1 - _NORMAL.cdf(z))
    if isinstance(dist, Exponential):
        return dist.mean * -math.expm1(-limit / dist.mean)
    if isinstance(dist, Fixed):
        return min(dist.value, limit)
    raise ValueError(f"dist must be a Fixed, Exponential, LogNormal or Mixture, got {dist!r}")


def hedged_survival(dist, delay: float, t: float) -> float:
    """P(hedged latency > ``t``): a copy, sent ``delay`` seconds after the primary if no answer came,
    is an independent draw from ``dist`` and the first answer wins (ample capacity: nobody queues).
    So a hedged call is slower than t only if the primary is slower than t *and* the copy slower
    than t - delay."""
    delay = validate.number("delay", delay, low=0.0, allow_inf=True)
    if math.isinf(delay) or t < delay:
        return survival(dist, t)
    return survival(dist, t) * survival(dist, t - delay)


def quantile(dist, p: float) -> float:
    """The exact ``p``-th percentile (0 < p < 100) of a duration distribution, in seconds (by
    bisection on :func:`survival`)."""
    return _invert(lambda t: survival(dist, t), 1.0 - _percent("p", p) / 100)


def hedged_quantile(dist, delay: float, p: float) -> float:
    """The exact ``p``-th percentile (0 < p < 100) of the latency of a call hedged after ``delay`` seconds."""
    return _invert(lambda t: hedged_survival(dist, delay, t), 1.0 - _percent("p", p) / 100)


_NORMAL = NormalDist()


def _percent(name: str, value) -> float:
    """A percentile strictly between 0 and 100."""
    value = validate.number(name, value, low=0.0, high=100.0, low_open=True)
    if value == 100.0:
        raise ValueError(f"{name} must be in (0, 100), got {value!r}")
    return value


def _invert(sf, target: float, *, steps: int = 80, upper: bool = True) -> float:
    """The t where the decreasing function ``sf`` falls to ``target``, by bisection from [0, 1]
    (doubled until it brackets); the upper end of the last bracket, or with ``upper=False`` its middle."""
    lo, hi = 0.0, 1.0
    while sf(hi) > target:
        hi *= 2
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sf(mid) > target else (lo, mid)
    return hi if upper else (lo + hi) / 2
