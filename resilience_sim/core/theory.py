"""What is known exactly: the formulas the simulator is validated against and the course teaches."""
from __future__ import annotations

import decimal
import math
import sys
from fractions import Fraction
from statistics import NormalDist

from . import validate

_DAY = 86400.0
#: Two ways to count a calendar, by name (seconds in each period). ``"average"``, the default, is the
#: average calendar: a 365.25-day year (leap years included), its quarter and its month a quarter and a
#: twelfth of it (91.3125 and 30.4375 days). ``"sre"`` is the one the SRE book's availability table
#: (appendix A) and most SLO tools count: a 365-day year, a 90-day quarter, a 30-day month.
CALENDARS = {
    "average": {"year": 365.25 * _DAY, "quarter": 365.25 * _DAY / 4, "month": 365.25 * _DAY / 12,
                "week": 7 * _DAY, "day": _DAY, "hour": 3600.0},
    "sre": {"year": 365 * _DAY, "quarter": 90 * _DAY, "month": 30 * _DAY,
            "week": 7 * _DAY, "day": _DAY, "hour": 3600.0},
}
#: Seconds in each period of the default (average) calendar.
SECONDS_PER = CALENDARS["average"]

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


def downtime(a: float, period: str = "year", calendar: str = "average") -> float:
    """Seconds of downtime per ``period`` ("year", "quarter", "month", "week", "day", "hour") at
    availability ``a``, the periods counted by ``calendar`` (a name in :data:`CALENDARS`): "average"
    (a 365.25-day year, a 30.4375-day month) or "sre" (365 days, 90 and 30, as the SRE book's table)."""
    a = validate.probability("a", a)
    periods = CALENDARS[validate.choice("calendar", calendar, CALENDARS)]
    validate.choice("period", period, periods)
    return (1.0 - a) * periods[period]


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
#: Seconds in each unit people read times in (the average calendar: a month is a twelfth of a Julian year).
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
    try:
        return math.sqrt(n) * a * (1 - a) * math.sqrt(2 / cycles)
    except OverflowError:                      # n beyond 1.8e308: its root, in logs
        return _root_n_times("n", n, a * (1 - a) * math.sqrt(2 / cycles), "the chain's standard deviation")


def _root_n_times(name: str, n: int, x: float, what: str) -> float:
    """sqrt(n) * x for an int ``n`` too large for a float (x >= 0), or a ValueError naming ``name``
    when the product is beyond the largest float too."""
    if x == 0.0:
        return 0.0
    log_value = math.log(n) / 2 + math.log(x)
    if log_value > _LOG_MAX:
        raise ValueError(f"{name} must be smaller: {what} is e^{log_value:.4g}, beyond the largest float "
                         f"(1.8e308 = e^709.8), got {name}={validate.show(n)}")
    return math.exp(log_value)


# --- counting independent trials --------------------------------------------------------------
def share_sd(p: float, n: int) -> float:
    """Standard deviation of a share measured over ``n`` independent trials whose true value is
    ``p``: sqrt(p (1 - p) / n) (binomial)."""
    p = validate.probability("p", p)
    n = validate.integer("n", n, low=1)
    try:
        return math.sqrt(p * (1 - p) / n)
    except OverflowError:                      # n beyond 1.8e308: sqrt(p (1 - p)) / sqrt(n), in logs
        spread = p * (1 - p)
        return math.exp((math.log(spread) - math.log(n)) / 2) if spread else 0.0


def within_sampling_error(measured: float, expected: float, n: int, *, sds: float = 4.0) -> bool:
    """Whether a share ``measured`` over ``n`` independent trials lies within ``sds`` binomial standard
    deviations (:func:`share_sd`) of the true share ``expected``: at 4 sds chance alone fails it about
    once in 16,000 checks (normal approximation), so a failure points at a bias, not at luck."""
    measured = validate.probability("measured", measured)
    expected = validate.probability("expected", expected)
    sds = validate.positive("sds", sds)
    return abs(measured - expected) <= sds * share_sd(expected, n)


def quantile_sd(p: float, n: int, density: float) -> float:
    """Standard deviation of the ``p``-quantile measured over ``n`` samples, where the distribution's
    density at that quantile is ``density``: sqrt(p (1 - p) / n) / density (the asymptotic formula)."""
    return share_sd(p, n) / validate.positive("density", density)


#: Up to this many trials :func:`binomial_tail` sums its terms as the formula reads (C(n, i) is a float
#: up to n = 1029); beyond, it works from the ratios of neighbouring terms, in logs.
_EXACT_TRIALS = 1000


def binomial_tail(n: int, p: float, k: int) -> float:
    """P(at least ``k`` successes among ``n`` independent trials, each a success with probability ``p``),
    for ``n`` up to :data:`MAX_STATES`.

    Up to 1,000 trials the terms C(n, i) p^i (1 - p)^(n - i) are summed as written; beyond (C(n, i)
    is past the largest float from n = 1030), from the ratios of neighbouring terms, summing only
    those that count: outward from the largest, until they fall below 4e-18 of it."""
    n = validate.integer("n", n, low=0)
    if n > MAX_STATES:
        raise ValueError(f"n must be <= {MAX_STATES:,} (the tail is summed one outcome at a time; for "
                         f"more trials use the normal approximation), got {validate.show(n)}")
    p = validate.probability("p", p)
    k = validate.integer("k", k, low=0)
    if k > n:
        return 0.0
    if n <= _EXACT_TRIALS:
        return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))
    if k == 0 or p == 1.0:
        return 1.0
    if p == 0.0:
        return 0.0
    return _binomial_tail_in_logs(n, p, k)


def _binomial_tail_in_logs(n: int, p: float, k: int) -> float:
    """:func:`binomial_tail` for 0 < p < 1 and 1 <= k <= n, without ever forming C(n, i).

    Terms are read as ratios to the mode's: term(i + 1) / term(i) = (n - i) / (i + 1) * p / (1 - p).
    The mode's own term is 1 / (the sum of all the ratios), since all the terms sum to 1. A tail above
    the mode is summed outward from ``k``; one that holds the mode is 1 minus the tail below ``k``."""
    log_odds = math.log(p) - math.log1p(-p)                   # log(p / (1 - p))
    mode = min(n, math.floor((n + 1) * p))

    def log_step(i: int, up: bool) -> float:                  # log(term(i +/- 1) / term(i))
        return math.log((n - i) / (i + 1)) + log_odds if up else math.log(i / (n - i + 1)) - log_odds

    def mass_from(j: int, up: bool) -> float:                 # sum of term(i) / term(j), i from j outward
        total, log_ratio, i = 0.0, 0.0, j
        while log_ratio > -40.0:                              # e^-40 is 4e-18: the rest cannot move the sum
            total += math.exp(log_ratio)
            if i == (n if up else 0):
                break
            log_ratio += log_step(i, up)
            i += 1 if up else -1
        return total

    def log_ratio_to_mode(j: int) -> float:                   # log(term(j) / term(mode))
        if abs(j - mode) <= 10_000:                           # step by step: exact to a few ulps
            up, total = j > mode, 0.0
            for i in (range(mode, j) if up else range(mode, j, -1)):
                total += log_step(i, up)
            return total
        # far out (the tail is below e^-200 there): by log-gamma, to about 1e-9
        return (math.lgamma(mode + 1) + math.lgamma(n - mode + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
                + (j - mode) * log_odds)

    log_mode = -math.log(mass_from(mode, True) + mass_from(mode, False) - 1.0)
    if k > mode:
        return min(1.0, math.exp(log_mode + log_ratio_to_mode(k) + math.log(mass_from(k, True))))
    below = math.exp(log_mode + log_ratio_to_mode(k - 1) + math.log(mass_from(k - 1, False)))
    return min(1.0, max(0.0, 1.0 - below))


def trials_until_run(p: float, k: int) -> float:
    """Expected trials until ``k`` failures in a row, each trial failing with probability ``p``,
    from a fresh start: (1 - p^k) / ((1 - p) p^k), the classic waiting time for a run."""
    p = validate.number("p", p, low=0.0, high=1.0, low_open=True)
    k = validate.integer("k", k, low=1)
    if p == 1.0:                               # every trial fails: the run ends at trial k
        if k > sys.float_info.max:
            raise ValueError(f"k must be at most 1.8e308 (a float), got {validate.show(k)}")
        return float(k)
    try:
        wait = (1 - p ** k) / ((1 - p) * p ** k)
        if wait != math.inf:
            return wait
    except (OverflowError, ZeroDivisionError):  # p^k underflowed to 0, or k is past any float
        pass
    # the same in logs: log(wait) = -k log p + log(1 - p^k) - log(1 - p)
    log_p = math.log(p)
    log_pk = k * log_p if k <= sys.float_info.max else -math.inf
    log_wait = -log_pk + math.log(-math.expm1(log_pk)) - math.log1p(-p)
    if log_wait <= _LOG_MAX:
        return math.exp(log_wait)
    longest = math.floor((_LOG_MAX - 1.0 + math.log1p(-p)) / -log_p)   # the longest run whose wait fits
    about = f"e^{log_wait:.4g}" if log_wait < math.inf else "more than e^1.8e308"
    fix = (f"at this p, k must be <= {longest:,}" if longest >= 1 else
           "at this p even a single failure takes 1/p trials on average, beyond 1.8e308 too: use a larger p")
    raise ValueError(f"k must be smaller or p larger: the expected wait for {validate.show(k)} failures in a "
                     f"row at p={p!r} is {about} trials, beyond the largest float (1.8e308 = e^709.8); {fix}")


# --- retries --------------------------------------------------------------------------------------
def retry_availability(p: float, attempts: int) -> float:
    """The share of requests answered when each attempt fails independently with probability ``p``
    and a request makes up to ``attempts`` attempts: 1 - p^attempts."""
    p = validate.probability("p", p)
    attempts = validate.integer("attempts", attempts, low=1)
    try:
        return 1.0 - p ** attempts
    except OverflowError:                      # attempts beyond 1.8e308: p^attempts is 0 unless p is 1
        return 0.0 if p == 1.0 else 1.0


#: Up to this many attempts the retry formulas are summed term by term, as they read; beyond, they
#: use their closed forms (a sum over 10**30 attempts would never end).
_SUMMED_ATTEMPTS = 10_000


def expected_attempts(p: float, attempts: int) -> float:
    """Mean attempts per request in the same setting: 1 + p + ... + p^(attempts - 1), which is
    (1 - p^attempts) / (1 - p) (the closed form, used past 10,000 attempts)."""
    p = validate.probability("p", p)
    attempts = validate.integer("attempts", attempts, low=1)
    if attempts <= _SUMMED_ATTEMPTS:
        return sum(p ** i for i in range(attempts))
    if p == 1.0:                               # every attempt fails: all of them are made
        if attempts > sys.float_info.max:
            raise ValueError(f"attempts must be at most 1.8e308 (a float) when p is 1 (every attempt is "
                             f"made), got {validate.show(attempts)}")
        return float(attempts)
    if p == 0.0:
        return 1.0
    log_all = attempts * math.log(p) if attempts <= sys.float_info.max else -math.inf   # log p^attempts
    return -math.expm1(log_all) / (1.0 - p)


def attempts_variance(p: float, attempts: int) -> float:
    """Variance of the attempts per request in the same setting (a geometric count cut at
    ``attempts``): E[N^2] - E[N]^2 with E[N^2] = sum over i < attempts of (2i + 1) p^i.

    Past 10,000 attempts, the closed form (p - (2a - 1)(1 - p) p^a - p^(2a)) / (1 - p)^2, for a =
    attempts, computed with 80 significant digits (its terms nearly cancel when p is close to 1)."""
    p = validate.probability("p", p)
    attempts = validate.integer("attempts", attempts, low=1)
    if attempts <= _SUMMED_ATTEMPTS:
        mean = expected_attempts(p, attempts)
        second = sum((2 * i + 1) * p ** i for i in range(attempts))
        return max(second - mean ** 2, 0.0)
    if p in (0.0, 1.0):                        # always one attempt, or always all of them
        return 0.0
    with decimal.localcontext() as ctx:
        ctx.prec, ctx.Emax, ctx.Emin = 80, decimal.MAX_EMAX, decimal.MIN_EMIN
        ctx.traps[decimal.Underflow] = ctx.traps[decimal.Subnormal] = False   # a tiny p^a is 0
        fail, a = decimal.Decimal(p), decimal.Decimal(attempts)
        ok = 1 - fail
        every = fail ** a                                     # p^a
        variance = (fail - (2 * a - 1) * ok * every - every * every) / (ok * ok)
    return max(float(variance), 0.0)


# --- queues ------------------------------------------------------------------------------------------
def mmc_tail(t: float, servers: int, arrival_rate: float, service_rate: float) -> float:
    """P(time in system > ``t``) in an M/M/c queue served first come, first served.

    The time in system is a wait (0 with probability 1 - C, otherwise exponential with rate
    c mu - lambda; C is :func:`erlang_c`) plus an exponential service with rate mu.
    """
    t = validate.non_negative("t", t)
    return _mmc_tail(t, *_mmc(servers, arrival_rate, service_rate))


def _mmc(servers, arrival_rate, service_rate) -> tuple:
    """``(c, lambda, mu, C)``: the three checked (by :func:`erlang_c`) and the Erlang C probability."""
    C = erlang_c(servers, arrival_rate, service_rate)
    return int(servers), float(arrival_rate), float(service_rate), C


def _mmc_tail(t: float, c: int, lam: float, mu: float, C: float) -> float:
    """P(time in system > t) given C, the probability of waiting."""
    r = c * mu - lam
    if math.isclose(r, mu):
        return math.exp(-mu * t) * (1 + C * mu * t)
    return math.exp(-mu * t) + C * mu / (r - mu) * (math.exp(-mu * t) - math.exp(-r * t))


def mmc_quantile(q: float, servers: int, arrival_rate: float, service_rate: float) -> float:
    """The ``q``-quantile (0 < q < 1) of the time in an M/M/c system, by bisection on :func:`mmc_tail`."""
    q = validate.number("q", q, low=0.0, high=1.0, low_open=True)
    if q == 1.0:
        raise ValueError("q must be in (0, 1) (the 1-quantile of a time in system is infinite), got 1.0")
    queue = _mmc(servers, arrival_rate, service_rate)       # C once, not at every step (10**6 servers: 0.1 s)
    return _invert(lambda t: _mmc_tail(t, *queue), 1 - q, steps=60, upper=False)


# --- latency distributions -----------------------------------------------------------------------
def _closed_form(dist, kinds: tuple, what: str) -> None:
    """Refuse a ``dist`` (or a part of a Mixture) that is not one of ``kinds``: the formulas here are
    exact for those only."""
    from .distributions import Distribution, Mixture
    names = ", ".join(k.__name__ for k in kinds[:-1]) + f" or {kinds[-1].__name__}"
    if not isinstance(dist, Distribution):
        raise validate.WrongType(f"dist must be a {names} distribution, or a Mixture of them (for {what}), "
                                 f"got {validate.show(dist)}")
    if isinstance(dist, Mixture):
        for _, part in dist.parts:
            _closed_form(part, kinds, what)
    elif not isinstance(dist, kinds):
        raise ValueError(f"dist must be a {names} distribution, or a Mixture of them: {what} has no exact "
                         f"formula here for a {type(dist).__name__}; estimate it from a sample instead "
                         f"(dist.samples(random.Random(1), 100_000)); got {validate.show(dist)}")


def _survival_kinds() -> tuple:
    from .distributions import Exponential, Fixed, LogNormal, Uniform
    return (Fixed, Exponential, Uniform, LogNormal)


def survival(dist, t: float) -> float:
    """P(X > ``t``) for a Fixed, Exponential, Uniform or LogNormal duration X, or a Mixture of them.
    ``t`` is any number of seconds, infinite too (P(X > t) is 1 for t < 0, and 0 for t = inf)."""
    _closed_form(dist, _survival_kinds(), "survival")
    return _survival(dist, validate.number("t", t, allow_inf=True))


def _survival(dist, t: float) -> float:
    """:func:`survival` of a checked ``dist`` at a checked ``t`` (what the bisections call)."""
    from .distributions import Exponential, Fixed, LogNormal, Mixture
    if t < 0:
        return 1.0
    if isinstance(dist, Mixture):
        return sum(w * _survival(d, t) for w, d in dist.parts)
    if isinstance(dist, LogNormal):
        return 1.0 - _NORMAL.cdf(math.log(t / dist.median) / dist.sigma) if t > 0 else 1.0
    if isinstance(dist, Exponential):
        return math.exp(-t / dist.mean)
    if isinstance(dist, Fixed):
        return 1.0 if t < dist.value else 0.0
    return 1.0 if t < dist.low else 0.0 if t >= dist.high else (dist.high - t) / (dist.high - dist.low)


def capped_mean(dist, limit: float) -> float:
    """E[min(X, ``limit``)] for a Fixed, Exponential or LogNormal duration X, or a Mixture of them:
    the mean time a call holds its caller when the caller stops waiting at ``limit`` (a timeout)."""
    from .distributions import Exponential, Fixed, LogNormal
    _closed_form(dist, (Fixed, Exponential, LogNormal), "a capped mean")
    limit = validate.number("limit", limit, low=0.0, allow_inf=True)
    return _capped_mean(dist, limit)


def _capped_mean(dist, limit: float) -> float:
    from .distributions import Exponential, LogNormal, Mixture
    if math.isinf(limit):
        return dist.mean
    if isinstance(dist, Mixture):
        return sum(w * _capped_mean(d, limit) for w, d in dist.parts)
    if isinstance(dist, LogNormal):
        mu, s = math.log(dist.median), dist.sigma
        z = (math.log(limit) - mu) / s if limit > 0 else -math.inf
        return dist.mean * _NORMAL.cdf(z - s) + limit * (1 - _NORMAL.cdf(z))
    if isinstance(dist, Exponential):
        return dist.mean * -math.expm1(-limit / dist.mean)
    return min(dist.value, limit)


def hedged_survival(dist, delay: float, t: float) -> float:
    """P(hedged latency > ``t``): a copy, sent ``delay`` seconds after the primary if no answer came,
    is an independent draw from ``dist`` and the first answer wins (ample capacity: nobody queues).
    So a hedged call is slower than t only if the primary is slower than t *and* the copy slower
    than t - delay. ``t`` is any number of seconds, infinite too."""
    _closed_form(dist, _survival_kinds(), "a hedged survival")
    delay = validate.number("delay", delay, low=0.0, allow_inf=True)
    return _hedged_survival(dist, delay, validate.number("t", t, allow_inf=True))


def _hedged_survival(dist, delay: float, t: float) -> float:
    if math.isinf(delay) or t < delay:
        return _survival(dist, t)
    return _survival(dist, t) * _survival(dist, t - delay)


def quantile(dist, p: float) -> float:
    """The exact ``p``-th percentile (0 < p < 100) of a duration distribution, in seconds (by
    bisection on :func:`survival`)."""
    _closed_form(dist, _survival_kinds(), "a quantile")
    return _invert(lambda t: _survival(dist, t), 1.0 - _percent("p", p) / 100)


def hedged_quantile(dist, delay: float, p: float) -> float:
    """The exact ``p``-th percentile (0 < p < 100) of the latency of a call hedged after ``delay`` seconds."""
    _closed_form(dist, _survival_kinds(), "a hedged quantile")
    delay = validate.number("delay", delay, low=0.0, allow_inf=True)
    return _invert(lambda t: _hedged_survival(dist, delay, t), 1.0 - _percent("p", p) / 100)


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


# --- caches (Part III) -----------------------------------------------------------------------------
def ttl_hit_ratio(rate: float, ttl: float) -> float:
    """The hit ratio of an expire-after-write TTL cache for one key asked at Poisson ``rate``:
    λT / (1 + λT). Each miss opens a window of ``ttl`` seconds in which the λT requests expected all hit."""
    x = validate.positive("rate", rate) * validate.positive("ttl", ttl)
    return x / (1 + x)


def stale_if_error_failing_time(ttl: float, hard_ttl: float, outage_s: float) -> float:
    """Expected seconds a hot key fails during an outage of ``outage_s`` seconds, with a soft TTL S
    (``ttl``) and a hard TTL H (``hard_ttl``, >= S). The key is refreshed every S, so its age at the
    outage's start is a ~ U(0, S); it is served stale until its age reaches H, then fails until the
    end: E[max(0, D - (H - a))]. Nothing fails when D <= H - S."""
    s = validate.positive("ttl", ttl)
    h = validate.number("hard_ttl", hard_ttl, low=s)
    d = validate.non_negative("outage_s", outage_s)
    x = d - h
    if x + s <= 0:
        return 0.0
    if x >= 0:
        return x + s / 2
    return (x + s) ** 2 / (2 * s)
