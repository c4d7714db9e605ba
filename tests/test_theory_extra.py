"""The formulas the lessons moved into ``core.theory`` agree with an independent computation each:
an enumeration, a linear system, a numerical integral or a seeded sample."""
import decimal
import itertools
import math
import random
import time
from fractions import Fraction

import numpy as np
import pytest

from resilience_sim import theory
from resilience_sim.core.distributions import Exponential, Fixed, LogNormal, Mixture, Uniform, Weibull


def _integral(f, top: float, n: int = 200_001) -> float:
    """∫_0^top f(t) dt by the trapezoid rule."""
    t = np.linspace(0.0, top, n)
    y = np.array([f(x) for x in t])
    return float(np.sum((y[1:] + y[:-1]) / 2) * (t[1] - t[0]))


def _sample(dist, n: int, seed: int = 1) -> np.ndarray:
    rng = random.Random(seed)
    return np.array([dist.sample(rng) for _ in range(n)])


# --- time units and availability ------------------------------------------------------------------
def test_time_units_are_the_seconds_people_count():
    units = theory.TIME_UNITS
    assert units["minute"] == 60 and units["hour"] == 60 * 60 and units["day"] == 24 * 3600
    assert units["week"] == 7 * units["day"] and math.isclose(units["year"], 365.25 * units["day"])
    assert math.isclose(units["month"] * 12, units["year"])


def test_mttf_for_inverts_the_availability_formula():
    for a, mttr in ((0.9, 3600.0), (0.999, 60.0), (0.5, 1.0)):
        assert math.isclose(theory.availability(theory.mttf_for(a, mttr), mttr), a)
    with pytest.raises(ValueError, match="availability must be < 1"):
        theory.mttf_for(1.0, 60.0)


def test_chain_availability_sd_is_root_n_times_one_services_wobble():
    a, mttr, cycles = 0.999, 3600.0, 1000
    mttf = theory.mttf_for(a, mttr)
    one = theory.availability_sd(mttf, mttr, cycles * (mttf + mttr))   # the two-state Markov chain's
    for n in (1, 4, 10):
        assert math.isclose(theory.chain_availability_sd(n, a, cycles), math.sqrt(n) * one)


# --- counting independent trials ------------------------------------------------------------------
def test_share_sd_is_the_spread_of_the_binomial_share():
    n, p = 30, 0.2
    pmf = [math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1)]
    variance = sum(w * (k / n - p) ** 2 for k, w in enumerate(pmf))
    assert math.isclose(theory.share_sd(p, n), math.sqrt(variance))


def test_binomial_tail_counts_every_outcome():
    n, p = 10, 0.3
    for k in (0, 3, 7, 10):
        brute = sum(math.prod(p if bit else 1 - p for bit in bits)
                    for bits in itertools.product((0, 1), repeat=n) if sum(bits) >= k)
        assert math.isclose(theory.binomial_tail(n, p, k), brute)
    assert theory.binomial_tail(n, p, n + 1) == 0.0


def test_trials_until_run_solves_the_markov_chain():
    for p, k in ((0.2, 5), (0.6, 5), (0.5, 1), (0.9, 3)):
        # E[j] = trials still expected after j failures in a row: E[j] = 1 + p E[j+1] + (1-p) E[0], E[k] = 0
        a = np.zeros((k, k))
        for j in range(k):
            a[j, j] += 1
            a[j, 0] -= 1 - p
            if j + 1 < k:
                a[j, j + 1] -= p
        expected = np.linalg.solve(a, np.ones(k))[0]
        assert math.isclose(theory.trials_until_run(p, k), expected, rel_tol=1e-9)


# --- retries ---------------------------------------------------------------------------------------------
def _attempts_pmf(p: float, k: int) -> dict:
    """P(N = i): each attempt fails with probability p; a request stops at its first success or at k."""
    return {i: p ** (i - 1) * ((1 - p) if i < k else 1.0) for i in range(1, k + 1)}


@pytest.mark.parametrize("p, k", [(0.2, 1), (0.2, 3), (0.05, 6), (0.5, 4), (0.0, 3), (1.0, 3)])
def test_retry_formulas_match_the_distribution_of_attempts(p, k):
    pmf = _attempts_pmf(p, k)
    mean = sum(i * w for i, w in pmf.items())
    variance = sum(i * i * w for i, w in pmf.items()) - mean ** 2
    answered = sum(p ** (i - 1) * (1 - p) for i in range(1, k + 1))   # success at attempt i
    assert math.isclose(theory.retry_availability(p, k), answered, abs_tol=1e-12)
    assert math.isclose(theory.expected_attempts(p, k), mean)
    assert math.isclose(theory.attempts_variance(p, k), variance, abs_tol=1e-12)


# --- queues ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c, lam, mu", [(1, 8.0, 10.0), (2, 1.0, 1.0), (8, 50.0, 1 / 0.06), (3, 2.0, 1.0)])
def test_mmc_tail_integrates_to_the_mean_time_in_system(c, lam, mu):
    # E[T] = ∫ P(T > t) dt; (2, 1, 1) is the case c mu - lambda = mu, which has its own formula
    top = 60 / min(mu, c * mu - lam)
    area = _integral(lambda t: theory.mmc_tail(t, c, lam, mu), top)
    assert math.isclose(area, theory.mmc_response_time(c, lam, mu), rel_tol=1e-6)
    assert theory.mmc_tail(0.0, c, lam, mu) == pytest.approx(1.0)


def test_mmc_quantile_of_one_server_is_the_exponential_quantile():
    lam, mu = 8.0, 10.0              # M/M/1: the time in system is exponential with rate mu - lambda
    for q in (0.5, 0.9, 0.99):
        assert math.isclose(theory.mmc_quantile(q, 1, lam, mu), -math.log(1 - q) / (mu - lam), rel_tol=1e-9)
    q99 = theory.mmc_quantile(0.99, 8, 50, 1 / 0.06)
    assert math.isclose(theory.mmc_tail(q99, 8, 50, 1 / 0.06), 0.01, rel_tol=1e-9)


# --- latency distributions ----------------------------------------------------------------------------
LOGNORMAL = LogNormal(0.020, 0.6)
MIX = Mixture([(0.98, LogNormal(0.010, 0.3)), (0.02, LogNormal(0.150, 0.4))])


@pytest.mark.parametrize("dist", [LOGNORMAL, Exponential(0.05), Uniform(0.05, 0.15), Fixed(0.1), MIX])
def test_survival_is_the_share_of_a_sample_above_t(dist):
    sample = _sample(dist, 100_000)
    for t in np.quantile(sample, [0.1, 0.5, 0.9, 0.99]):
        expected = theory.survival(dist, float(t))
        assert abs(np.mean(sample > t) - expected) < 4 * math.sqrt(max(expected * (1 - expected), 1e-6) / sample.size)
    assert theory.survival(dist, -1.0) == 1.0


def test_quantile_inverts_the_log_normal_exactly():
    for p in (50, 99, 99.9):
        assert math.isclose(theory.quantile(LOGNORMAL, p), LOGNORMAL.quantile(p / 100), rel_tol=1e-12)
    with pytest.raises(ValueError, match="p must be in"):
        theory.quantile(LOGNORMAL, 100)


@pytest.mark.parametrize("dist", [LOGNORMAL, Exponential(0.05), Fixed(0.03), MIX])
def test_capped_mean_is_the_mean_of_a_capped_sample(dist):
    sample = _sample(dist, 200_000, seed=2)
    for limit in (0.01, 0.05, 0.2):
        capped = np.minimum(sample, limit)
        assert abs(capped.mean() - theory.capped_mean(dist, limit)) < 4 * capped.std() / math.sqrt(sample.size) + 1e-12
    assert theory.capped_mean(dist, math.inf) == dist.mean


def test_hedged_survival_and_quantile_match_a_sampled_race():
    delay, n = 0.018, 200_000
    first, copy = _sample(MIX, n, seed=3), _sample(MIX, n, seed=4)
    hedged = np.minimum(first, np.where(first > delay, delay + copy, np.inf))
    for t in (0.005, 0.015, 0.025, 0.05, 0.2):
        expected = theory.hedged_survival(MIX, delay, t)
        assert abs(np.mean(hedged > t) - expected) < 4 * math.sqrt(max(expected * (1 - expected), 1e-6) / n)
    p99 = theory.hedged_quantile(MIX, delay, 99)
    assert math.isclose(theory.hedged_survival(MIX, delay, p99), 0.01, rel_tol=1e-6)
    assert theory.hedged_survival(MIX, math.inf, 0.05) == theory.survival(MIX, 0.05)


# --- fuzzed inputs: absurd magnitudes computed or refused with the limit, wrong types named ---------------------
def _exact_binomial_tail(n: int, p: float, k: int) -> float:
    """The tail summed with 40 significant digits, C(n, i) as exact integers."""
    with decimal.localcontext() as ctx:
        ctx.prec, ctx.Emin = 40, decimal.MIN_EMIN
        ctx.traps[decimal.Underflow] = ctx.traps[decimal.Subnormal] = False
        q, r = decimal.Decimal(p), 1 - decimal.Decimal(p)
        return float(sum(decimal.Decimal(math.comb(n, i)) * q ** i * r ** (n - i) for i in range(k, n + 1)))


@pytest.mark.parametrize("n, p, k", [(1001, 0.3, 300), (3000, 0.01, 45), (3000, 0.01, 20), (2000, 0.999, 1999),
                                     (3000, 0.5, 1500), (3000, 0.5, 1600), (3000, 1e-5, 3), (1500, 1e-300, 1),
                                     (4000, 0.5, 2400), (3000, 0.5, 2)])
def test_binomial_tail_past_a_thousand_trials_is_the_exact_sum_without_overflow(n, p, k):
    assert math.isclose(theory.binomial_tail(n, p, k), _exact_binomial_tail(n, p, k), rel_tol=1e-12)


def test_binomial_tail_of_a_million_trials_is_answered_at_once_and_more_are_refused_with_the_limit():
    started = time.perf_counter()
    centre = theory.binomial_tail(10 ** 6, 0.5, 500_000)          # 1/2 + half the central term, 1/sqrt(2 pi n/4)
    assert math.isclose(centre, 0.5 + 0.5 / math.sqrt(2 * math.pi * 10 ** 6 / 4), rel_tol=1e-6)
    assert theory.binomial_tail(10 ** 6, 0.999999, 10 ** 6) == pytest.approx(math.exp(-1), rel=1e-6)
    assert theory.binomial_tail(10 ** 6, 0.2, 10 ** 6) == 0.0 and theory.binomial_tail(10 ** 6, 0.2, 0) == 1.0
    assert time.perf_counter() - started < 1.0
    with pytest.raises(ValueError, match=r"n must be <= 1,000,000"):
        theory.binomial_tail(10 ** 30, 0.5, 3)


def test_trials_until_run_computes_waits_near_the_largest_float_and_refuses_beyond_with_the_limit():
    assert theory.trials_until_run(0.5, 1020) == 2.0 ** 1021 - 2         # (2^k - 1) / (1/2): exact in floats
    assert math.isclose(theory.trials_until_run(1e-300, 1), 1e300)
    with pytest.raises(ValueError, match=r"k must be smaller or p larger.*at this p, k must be <= 1,021"):
        theory.trials_until_run(0.5, 10 ** 30)
    with pytest.raises(ValueError, match=r"k must be smaller or p larger.*use a larger p"):
        theory.trials_until_run(5e-324, 3)
    with pytest.raises(ValueError, match="k must be"):
        theory.trials_until_run(0.5, 10 ** 400)
    with pytest.raises(ValueError, match="k must be at most 1.8e308"):
        theory.trials_until_run(1.0, 10 ** 400)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9999, 0.999999, 1 - 1e-12, 1e-9])
def test_retry_formulas_past_ten_thousand_attempts_are_the_closed_forms_of_the_sums(p):
    a = 20_000                                  # summed here, closed forms in theory
    mean = math.fsum(p ** i for i in range(a))
    with decimal.localcontext() as ctx:         # the variance's sum cancels: take it with 60 digits
        ctx.prec = 60
        ctx.traps[decimal.Underflow] = ctx.traps[decimal.Subnormal] = False
        x = decimal.Decimal(p)
        powers = [x ** i for i in range(a)]
        variance = float(sum((2 * i + 1) * w for i, w in enumerate(powers)) - sum(powers) ** 2)
    assert math.isclose(theory.expected_attempts(p, a), mean, rel_tol=1e-12)
    assert math.isclose(theory.attempts_variance(p, a), variance, rel_tol=1e-9)


def test_retry_formulas_answer_absurd_attempts_at_once():
    started = time.perf_counter()
    for attempts in (10 ** 30, 10 ** 400):
        assert theory.retry_availability(0.1, attempts) == 1.0 and theory.retry_availability(1.0, attempts) == 0.0
        assert math.isclose(theory.expected_attempts(0.1, attempts), 1 / 0.9)
        assert math.isclose(theory.attempts_variance(0.1, attempts), 0.1 / 0.9 ** 2)
        assert theory.attempts_variance(1.0, attempts) == 0.0 and theory.expected_attempts(0.0, attempts) == 1.0
    assert theory.expected_attempts(1.0, 10 ** 30) == 1e30
    with pytest.raises(ValueError, match="attempts must be at most 1.8e308"):
        theory.expected_attempts(1.0, 10 ** 400)
    assert time.perf_counter() - started < 1.0
    assert theory.attempts_variance(0.2, 3.0) == theory.attempts_variance(0.2, 3)     # a whole float is welcome
    assert theory.attempts_variance(1e-300, 20_000) == 1e-300      # p / (1 - p)^2: the sum would say 0


def test_standard_deviations_of_more_trials_than_a_float_counts_are_computed_in_logs():
    assert math.isclose(theory.share_sd(0.5, 10 ** 400), 0.5e-200)
    assert theory.share_sd(0.0, 10 ** 400) == 0.0
    assert math.isclose(theory.chain_availability_sd(10 ** 400, 0.99, 100), 1e200 * 0.99 * 0.01 * math.sqrt(0.02))
    with pytest.raises(ValueError, match="n must be smaller"):
        theory.chain_availability_sd(10 ** 700, 0.99, 100)


def test_mmc_quantile_computes_the_erlang_c_probability_once_not_at_every_step(monkeypatch):
    calls = []
    erlang_c = theory.erlang_c
    monkeypatch.setattr(theory, "erlang_c", lambda *args: calls.append(args) or erlang_c(*args))
    q99 = theory.mmc_quantile(0.99, 8, 50, 1 / 0.06)
    assert len(calls) == 1 and math.isclose(theory.mmc_tail(q99, 8, 50, 1 / 0.06), 0.01, rel_tol=1e-9)


@pytest.mark.parametrize("call", [lambda t: theory.survival(Exponential(1.0), t),
                                  lambda t: theory.hedged_survival(Exponential(1.0), 0.5, t)])
def test_survival_wants_a_number_of_seconds_and_takes_infinity_and_huge_ints(call):
    for bad in (True, False, math.nan, "1", None, [1.0], np.array([1.0]), 1j):
        with pytest.raises((TypeError, ValueError), match="t must be a number"):
            call(bad)
    assert call(math.inf) == 0.0 and call(10 ** 400) == 0.0 and call(-math.inf) == 1.0 and call(-1) == 1.0
    assert call(Fraction(1, 2)) == call(0.5)


def test_survival_and_capped_mean_say_which_distributions_they_have_formulas_for():
    weibull = Weibull(1.0, 2.0)
    for call in (lambda d: theory.survival(d, 1.0), lambda d: theory.quantile(d, 99),
                 lambda d: theory.hedged_survival(d, 0.1, 1.0), lambda d: theory.capped_mean(d, 1.0)):
        with pytest.raises(ValueError, match=r"dist must be a Fixed, Exponential.*no exact formula here for a Weibull"):
            call(weibull)
        with pytest.raises(ValueError, match="for a Weibull"):
            call(Mixture([(0.5, Fixed(0.1)), (0.5, weibull)]))
        with pytest.raises(TypeError, match="dist must be a Fixed"):
            call(None)
    with pytest.raises(ValueError, match="a capped mean has no exact formula here for a Uniform"):
        theory.capped_mean(Uniform(0.0, 1.0), 0.5)
