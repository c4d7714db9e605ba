"""The formulas the lessons moved into ``core.theory`` agree with an independent computation each:
an enumeration, a linear system, a numerical integral or a seeded sample."""
import itertools
import math
import random

import numpy as np
import pytest

from resilience_sim import theory
from resilience_sim.core.distributions import Exponential, Fixed, LogNormal, Mixture, Uniform


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
