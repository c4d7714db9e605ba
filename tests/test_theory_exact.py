"""theory on small cases worked by hand: exact values, both sides of every boundary, every branch.

Each expected value is computed in the comment beside it (or by a formula written differently from
theory's own), so a changed operator, bound or constant in theory fails here."""
import decimal
import math
import sys
from fractions import Fraction

import numpy as np
import pytest

from resilience_sim import theory
from resilience_sim.core.distributions import Exponential, Fixed, LogNormal, Mixture, Uniform, Weibull
from resilience_sim.core.validate import WrongType

E = math.e


# --- availability ---------------------------------------------------------------------------------
def test_availability_is_mttf_over_mttf_plus_mttr_and_a_zero_mttr_is_always_up():
    assert theory.availability(3, 1) == 0.75
    assert theory.availability(1, 0) == 1.0
    # the sum overflows: 1 / (1 + 1e308 / 1.5e308) = 1 / (1 + 2/3) = 0.6
    assert theory.availability(1.5e308, 1e308) == pytest.approx(0.6, rel=1e-15)


def test_availability_sd_is_the_two_state_formula():
    # sqrt(2 (3 * 1)^2 / ((3 + 1)^3 * 8)) = sqrt(18 / 512) = 3 / 16
    assert theory.availability_sd(3, 1, 8) == 0.1875
    assert theory.availability_sd(1, 3, 8) == 0.1875        # symmetric in mttf and mttr
    assert theory.availability_sd(3, 1, 32) == 0.09375      # four times the horizon: half the spread


@pytest.mark.parametrize("scale", [1e200, 1e-200])
def test_availability_sd_in_logs_when_the_powers_overflow_or_underflow(scale):
    # mttf = 4s, mttr = s, horizon = s: sqrt(2 (4 s^2)^2 / ((5 s)^3 s)) = 4 sqrt(2 / 125), whatever s
    assert theory.availability_sd(4 * scale, scale, scale) == pytest.approx(4 * math.sqrt(2 / 125), rel=1e-12)
    assert theory.availability_sd(scale, 4 * scale, scale) == pytest.approx(4 * math.sqrt(2 / 125), rel=1e-12)
    # a horizon 100 times longer: a tenth of the spread
    assert theory.availability_sd(4 * scale, scale, 100 * scale) == pytest.approx(0.4 * math.sqrt(2 / 125))


def test_availability_sd_beyond_the_largest_float_is_refused_naming_the_horizon():
    # mttf = mttr = 1e308 over 5e-324 s: sqrt(1e308 / (4 * 5e-324)) is about 7e315
    with pytest.raises(ValueError, match="horizon must be long"):
        theory.availability_sd(1e308, 1e308, 5e-324)
    # 1e308 over 1e-300 s: sqrt(1e308 / 4e-300) = 5e303 still fits
    assert theory.availability_sd(1e308, 1e308, 1e-300) == pytest.approx(5e303, rel=1e-12)


def test_series_and_parallel_multiply_availabilities_and_unavailabilities():
    assert theory.series(0.9, 0.5) == 0.45
    assert theory.series(0.9) == 0.9
    assert theory.parallel(0.9, 0.5) == pytest.approx(0.95)     # 1 - 0.1 * 0.5
    assert theory.parallel(0.5, 0.5, 0.5) == 0.875              # 1 - 0.5^3
    with pytest.raises(ValueError, match=r"availabilities\[1\]"):
        theory.series(0.9, 1.5)
    with pytest.raises(ValueError, match="at least one"):
        theory.parallel()


@pytest.mark.parametrize("n, crews, expected", [
    # lam = 1/3, mu = 1; weights of k failed: w_{k+1} = w_k (n - k) lam / (min(k + 1, crews) mu)
    (2, 1, Fraction(15, 17)),        # w = 1, 2/3, 2/9: down share (2/9) / (17/9) = 2/17
    (2, None, Fraction(15, 16)),     # w = 1, 2/3, 1/9: 1 - (1/4)^2
    (2, 2, Fraction(15, 16)),
    (3, 2, Fraction(42, 43)),        # w = 1, 1, 1/3, 1/18: down share (1/18) / (43/18)
    (3, 1, Fraction(12, 13)),        # w = 1, 1, 2/3, 2/9: down share (2/9) / (26/9)
    (1, None, Fraction(3, 4)),
])
def test_replicas_availability_sums_the_birth_death_chain(n, crews, expected):
    assert theory.replicas_availability(n, 3.0, 1.0, crews=crews) == pytest.approx(float(expected), rel=1e-12)
    # the same ratio in times a float cannot invert (1 / 3e-310 is inf): the chain is built in logs
    assert theory.replicas_availability(n, 3e-310, 1e-310, crews=crews) == pytest.approx(float(expected), rel=1e-9)
    assert theory.replicas_availability(n, 3e-301, 1e-301, crews=crews) == pytest.approx(float(expected), rel=1e-9)


def test_replicas_availability_past_a_million_replicas_is_the_closed_form():
    n = 10 ** 6 + 1
    # 1 - (mttr / (mttf + mttr))^n, written with a plain log of the ratio
    assert theory.replicas_availability(n, 1.0, 1e7) == pytest.approx(1 - math.exp(n * math.log(1e7 / (1e7 + 1))),
                                                                       rel=1e-9)
    assert theory.replicas_availability(n, 5e-324, 1e10) == 0.0          # mttf / mttr is 0 in floats
    assert theory.replicas_availability(10 ** 400, 1.0, 1e7) == 1.0
    # the chain, one state a replica, at exactly 10^6 (the limit admits its own value: kills n >= MAX_STATES),
    # with 10^6 - 1 crews: only the last step changes, w_n gains n / (n - 1), so the all-down share of the
    # independent chain, pi = (mttr / (mttf + mttr))^n, becomes pi n / (n - 1) / (1 + pi / (n - 1))
    m, pi = 10 ** 6, math.exp(10 ** 6 * math.log(1e7 / (1e7 + 1)))
    assert theory.replicas_availability(m, 1.0, 1e7, crews=m - 1) == pytest.approx(
        1 - pi * m / (m - 1) / (1 + pi / (m - 1)), rel=1e-9)
    with pytest.raises(ValueError, match="n must be <= 1,000,000"):
        theory.replicas_availability(n, 1.0, 1.0, crews=10 ** 6)
    assert theory.replicas_availability(n, 1.0, 1.0, crews=n) == 1.0


# --- nines, downtime, error budgets ------------------------------------------------------------------
def test_nines_counts_the_nines_and_one_is_infinitely_many():
    assert theory.nines(0.999) == pytest.approx(3.0)
    assert theory.nines(0.9) == pytest.approx(1.0)
    assert theory.nines(0.0) == 0.0
    assert theory.nines(1.0) == math.inf
    assert theory.nines(1 - 1e-9) == pytest.approx(9.0, rel=1e-6)
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError, match=r"a must be in \[0, 1\]"):
            theory.nines(bad)


@pytest.mark.parametrize("period, average, sre", [
    ("year", 31557.6, 31536.0),      # 0.001 of 365.25 and of 365 days
    ("quarter", 7889.4, 7776.0),     # of 91.3125 and of 90 days
    ("month", 2629.8, 2592.0),       # of 30.4375 and of 30 days
    ("week", 604.8, 604.8),
    ("day", 86.4, 86.4),
    ("hour", 3.6, 3.6),
])
def test_downtime_at_three_nines_in_both_calendars(period, average, sre):
    assert theory.downtime(0.999, period) == pytest.approx(average, rel=1e-12)
    assert theory.downtime(0.999, period, calendar="average") == pytest.approx(average, rel=1e-12)
    assert theory.downtime(0.999, period, "sre") == pytest.approx(sre, rel=1e-12)


def test_downtime_defaults_to_a_year_of_the_average_calendar():
    assert theory.downtime(0.5) == 0.5 * 365.25 * 86400
    assert theory.downtime(1.0) == 0.0 and theory.downtime(0.0, "day") == 86400.0
    with pytest.raises(ValueError, match="period"):
        theory.downtime(0.9, "fortnight")
    with pytest.raises(ValueError, match="calendar"):
        theory.downtime(0.9, "year", "julian")


@pytest.mark.parametrize("slo, requests, budget", [
    (0.999, 10_000, 10), (0.9, 10, 1), (0.99, 150, 1),   # 1.5 failures allowed: 1
    (0.99, 199, 1), (0.99, 200, 2), (1.0, 5, 0), (0.0, 5, 5), (0.9, 0, 0),
])
def test_error_budget_is_the_whole_number_of_failures_the_slo_allows(slo, requests, budget):
    assert theory.error_budget(slo, requests) == budget
    assert isinstance(theory.error_budget(slo, requests), int)


def test_error_budget_refuses_a_negative_count():
    with pytest.raises(ValueError, match="requests"):
        theory.error_budget(0.9, -1)


# --- fan-out, queues --------------------------------------------------------------------------------
def test_fanout_slow_share_is_one_minus_the_chance_every_leaf_is_fast():
    assert theory.fanout_slow_share(0.1, 2) == pytest.approx(0.19)          # 1 - 0.9^2
    assert theory.fanout_slow_share(0.5, 3) == pytest.approx(0.875)
    assert theory.fanout_slow_share(0.1, 1) == pytest.approx(0.1)
    # more leaves than a float counts: n p = 10**309 * 1e-310 = 0.1, so 1 - e^-0.1
    assert theory.fanout_slow_share(1e-310, 10 ** 309) == pytest.approx(1 - math.exp(-0.1), rel=1e-9)
    assert theory.fanout_slow_share(0.0, 10 ** 400) == 0.0
    assert theory.fanout_slow_share(1.0, 10 ** 400) == 1.0


def test_mm1_response_time_is_one_over_mu_minus_lambda_below_saturation_only():
    assert theory.mm1_response_time(1, 3) == 0.5
    assert theory.mm1_response_time(2.5, 3) == 2.0
    with pytest.raises(ValueError, match="stable queue"):
        theory.mm1_response_time(3, 3)
    assert theory.mm1_response_time(3 - 2 ** -51, 3) == pytest.approx(2 ** 51, rel=1e-12)
    with pytest.raises(ValueError, match="further below"):
        theory.mm1_response_time(5e-324, 1e-323)      # 1 / 5e-324 is beyond the largest float


@pytest.mark.parametrize("c, lam, mu, expected", [
    (1, 1.0, 2.0, 0.5),                  # one server: the utilisation
    (2, 3.0, 2.0, 9 / 14),               # load 1.5: top (1.5^2/2)(2/0.5) = 4.5 over 1 + 1.5 + 4.5
    (3, 4.0, 2.0, 4 / 9),                # load 2: top (8/6)(3/1) = 4 over 1 + 2 + 2 + 4
    (2, 1.0, 1.0, 1 / 3),                # load 1: top (1/2)(2/1) = 1 over 1 + 1 + 1
    (4, 4.0, 2.0, 4 / 23),               # load 2: top (16/24)(4/2) = 4/3 over 1 + 2 + 2 + 4/3 + 4/3
])
def test_erlang_c_of_small_queues_with_mu_not_one(c, lam, mu, expected):
    assert theory.erlang_c(c, lam, mu) == pytest.approx(expected, rel=1e-12)


def test_erlang_c_refuses_a_load_of_servers_or_more():
    with pytest.raises(ValueError, match=r"servers \* service_rate \(4\)"):
        theory.erlang_c(2, 4.0, 2.0)                 # load 2 on 2 servers
    assert theory.erlang_c(2, 4.0 - 1e-9, 2.0) == pytest.approx(1.0, abs=1e-6)


def test_erlang_c_rescales_its_sum_past_1e200_without_changing_the_answer():
    # load 500 on 600 servers: 500^k / k! passes 1e200 long before k = 600
    assert theory.erlang_c(600, 500.0, 1.0) == pytest.approx(_erlang_c_by_b(600, 500.0), rel=1e-9)
    assert theory.erlang_c(600, 1000.0, 2.0) == pytest.approx(_erlang_c_by_b(600, 500.0), rel=1e-9)


def _erlang_c_by_b(c, load):
    """Erlang C from the Erlang B recursion, B(k) = a B(k-1) / (k + a B(k-1))."""
    b = 1.0
    for k in range(1, c + 1):
        b = load * b / (k + load * b)
    return c * b / (c - load * (1 - b))


def test_mmc_response_time_is_the_wait_plus_the_service():
    assert theory.mmc_response_time(2, 3.0, 2.0) == pytest.approx(9 / 14 / (4 - 3) + 0.5, rel=1e-12)   # 8/7
    assert theory.mmc_response_time(1, 1.0, 2.0) == pytest.approx(1.0, rel=1e-12)                     # 1 / (2 - 1)
    assert theory.mmc_response_time(3, 4.0, 2.0) == pytest.approx(4 / 9 / 2 + 0.5, rel=1e-12)


def test_mmc_response_time_beyond_the_largest_float_is_refused():
    with pytest.raises(ValueError, match="further below"):
        theory.mmc_response_time(1, 5e-324, 1e-323)


def test_littles_law_multiplies_and_refuses_an_infinite_product():
    assert theory.littles_law(2, 3) == 6
    assert theory.littles_law(0, 5) == 0.0 and theory.littles_law(5, 0) == 0.0
    with pytest.raises(ValueError, match="beyond 1.8e308"):
        theory.littles_law(1e200, 1e200)


def test_mmc_tail_is_the_exponential_of_one_server_and_erlangs_mix_of_several():
    # M/M/1 with lam 1, mu 2: the time in system is exponential with rate 1
    for t in (0.0, 0.5, 1.0, 3.0):
        assert theory.mmc_tail(t, 1, 1.0, 2.0) == pytest.approx(math.exp(-t), rel=1e-12)
    # c = 2, lam = mu = 1: c mu - lam = mu, so the tail is e^-t (1 + C t) with C = 1/3
    assert theory.mmc_tail(3.0, 2, 1.0, 1.0) == pytest.approx(math.exp(-3) * 2, rel=1e-12)
    # c = 2, lam 3, mu 2: C = 9/14, r = 1: e^-2t + C mu / (r - mu) (e^-2t - e^-t) at t = 1
    assert theory.mmc_tail(1.0, 2, 3.0, 2.0) == pytest.approx(-2 / 7 * E ** -2 + 9 / 7 * E ** -1, rel=1e-12)


def test_mmc_quantile_inverts_the_tail():
    assert theory.mmc_quantile(0.5, 1, 1.0, 2.0) == pytest.approx(math.log(2), rel=1e-12)
    assert theory.mmc_quantile(0.9, 1, 1.0, 2.0) == pytest.approx(math.log(10), rel=1e-12)
    t = theory.mmc_quantile(0.75, 2, 3.0, 2.0)
    assert theory.mmc_tail(t, 2, 3.0, 2.0) == pytest.approx(0.25, rel=1e-12)
    with pytest.raises(ValueError, match="q must be in"):
        theory.mmc_quantile(1.0, 1, 1.0, 2.0)
    with pytest.raises(ValueError, match="q must be in"):
        theory.mmc_quantile(0.0, 1, 1.0, 2.0)


# --- inverses and spreads -----------------------------------------------------------------------------
def test_mttf_for_inverts_availability_and_refuses_one():
    assert theory.mttf_for(0.75, 1) == 3.0
    assert theory.mttf_for(0.5, 2) == 2.0
    with pytest.raises(ValueError, match="availability must be < 1"):
        theory.mttf_for(1.0, 1)
    with pytest.raises(ValueError, match="availability"):
        theory.mttf_for(0.0, 1)


def test_chain_availability_sd_is_root_n_times_one_services_spread():
    assert theory.chain_availability_sd(4, 0.5, 2) == 0.5            # 2 * 0.25 * sqrt(1)
    assert theory.chain_availability_sd(1, 0.5, 8) == 0.125          # 0.25 * sqrt(1/4)
    assert theory.chain_availability_sd(9, 1.0, 2) == 0.0
    # n past any float: sqrt(10**400) * 0.25 = 2.5e199
    assert theory.chain_availability_sd(10 ** 400, 0.5, 2) == pytest.approx(2.5e199, rel=1e-12)
    assert theory.chain_availability_sd(10 ** 400, 1.0, 2) == 0.0
    with pytest.raises(ValueError, match="n must be smaller"):
        theory.chain_availability_sd(10 ** 700, 0.5, 2)           # sqrt is 2.5e349


def test_share_sd_is_the_binomial_spread_also_past_any_float():
    assert theory.share_sd(0.5, 4) == 0.25
    assert theory.share_sd(0.2, 1) == pytest.approx(0.4)
    assert theory.share_sd(0.5, 10 ** 400) == pytest.approx(5e-201, rel=1e-12)    # 0.5 / 10**200
    assert theory.share_sd(0.0, 10 ** 400) == 0.0


def test_within_sampling_error_holds_up_to_its_bound_inclusive():
    # n = 64, expected 0.5: one sd is sqrt(0.25 / 64) = 1/16; four of them (the default) 0.25
    assert theory.within_sampling_error(0.75, 0.5, 64)
    assert theory.within_sampling_error(0.25, 0.5, 64)
    assert not theory.within_sampling_error(0.7500001, 0.5, 64)
    assert not theory.within_sampling_error(0.2499999, 0.5, 64)
    assert theory.within_sampling_error(0.625, 0.5, 64, sds=2)
    assert not theory.within_sampling_error(0.625, 0.5, 64, sds=1.99)


def test_quantile_sd_is_the_share_spread_over_the_density():
    assert theory.quantile_sd(0.5, 4, 2.0) == 0.125
    with pytest.raises(ValueError, match="density"):
        theory.quantile_sd(0.5, 4, 0.0)


# --- binomial tails, runs, retries -----------------------------------------------------------------------
@pytest.mark.parametrize("n, p, k, expected", [
    (3, 0.5, 2, 0.5), (3, 0.5, 3, 0.125), (3, 0.5, 0, 1.0), (3, 0.5, 4, 0.0), (0, 0.5, 0, 1.0),
    (2, 0.25, 1, 1 - 0.75 ** 2), (4, 0.1, 2, 1 - 0.9 ** 4 - 4 * 0.1 * 0.9 ** 3),
])
def test_binomial_tail_of_a_few_trials(n, p, k, expected):
    assert theory.binomial_tail(n, p, k) == pytest.approx(expected, rel=1e-12)


def _exact_tail(n, p, k):
    """The sum in exact fractions (p is a float with a short binary fraction: 1/2, 1/4, 7/8)."""
    q = Fraction(p)
    return float(sum(math.comb(n, i) * q ** i * (1 - q) ** (n - i) for i in range(k, n + 1)))


@pytest.mark.parametrize("n, p, k", [
    (1001, 0.5, 500), (1001, 0.5, 501), (1001, 0.5, 1), (1001, 0.5, 1001), (1500, 0.25, 375),
    (1500, 0.25, 330), (1500, 0.25, 420), (1500, 0.25, 376), (1200, 0.875, 1100), (1200, 0.875, 1040),
])
def test_binomial_tail_past_a_thousand_trials_is_the_exact_sum(n, p, k):
    assert theory.binomial_tail(n, p, k) == pytest.approx(_exact_tail(n, p, k), rel=1e-9, abs=1e-300)


def test_binomial_tail_past_a_thousand_trials_at_the_ends():
    assert theory.binomial_tail(2000, 1.0, 5) == 1.0
    assert theory.binomial_tail(2000, 0.0, 5) == 0.0
    assert theory.binomial_tail(2000, 0.3, 0) == 1.0
    assert theory.binomial_tail(2000, 0.3, 2001) == 0.0
    # far from the mode (more than 10,000 outcomes away): the log-gamma route
    assert theory.binomial_tail(10 ** 6, 0.5, 600_000) == 0.0
    assert theory.binomial_tail(10 ** 6, 0.5, 400_000) == 1.0
    with pytest.raises(ValueError, match="n must be <= 1,000,000"):
        theory.binomial_tail(10 ** 6 + 1, 0.5, 1)


@pytest.mark.parametrize("p, k, wait", [
    (0.5, 2, 6.0),          # (1 - 1/4) / (1/2 * 1/4)
    (0.5, 1, 2.0),          # (1 - 1/2) / (1/2 * 1/2)
    (0.25, 2, 20.0),        # (1 - 1/16) / (3/4 * 1/16)
    (1.0, 3, 3.0), (1.0, 1, 1.0),
])
def test_trials_until_run(p, k, wait):
    assert theory.trials_until_run(p, k) == pytest.approx(wait, rel=1e-12)


def test_trials_until_run_beyond_the_largest_float_names_the_longest_run_that_fits():
    # 0.5^2000 underflows: in logs the wait is 2^2001, beyond 1.8e308; the longest run that fits is
    # floor((709.78 - 1 + log 0.5) / log 2) = 1021
    with pytest.raises(ValueError, match="k must be <= 1,021"):
        theory.trials_until_run(0.5, 2000)
    assert theory.trials_until_run(0.5, 1021) == pytest.approx(2.0 ** 1022 - 2, rel=1e-12)
    with pytest.raises(ValueError, match="k must be at most 1.8e308"):
        theory.trials_until_run(1.0, 10 ** 400)


@pytest.mark.parametrize("p, attempts, available, mean, variance", [
    (0.5, 1, 0.5, 1.0, 0.0),
    (0.5, 2, 0.75, 1.5, 0.25),          # N is 1 or 2, half each
    (0.5, 3, 0.875, 1.75, 0.6875),      # N = 1, 2, 3 with 1/2, 1/4, 1/4: E[N^2] = 3.75
    (0.0, 4, 1.0, 1.0, 0.0), (1.0, 4, 0.0, 4.0, 0.0),
])
def test_retry_formulas_of_a_few_attempts(p, attempts, available, mean, variance):
    assert theory.retry_availability(p, attempts) == pytest.approx(available, rel=1e-12)
    assert theory.expected_attempts(p, attempts) == pytest.approx(mean, rel=1e-12)
    assert theory.attempts_variance(p, attempts) == pytest.approx(variance, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("attempts", [10_000, 10_001, 20_000])
def test_retry_formulas_on_both_sides_of_ten_thousand_attempts(attempts):
    p = 0.9995
    mean = (1 - p ** attempts) / (1 - p)
    second = sum((2 * i + 1) * p ** i for i in range(attempts))
    assert theory.expected_attempts(p, attempts) == pytest.approx(mean, rel=1e-9)
    assert theory.attempts_variance(p, attempts) == pytest.approx(second - mean ** 2, rel=1e-6)


def test_retry_formulas_of_more_attempts_than_a_float_counts():
    assert theory.retry_availability(1.0, 10 ** 400) == 0.0
    assert theory.retry_availability(0.5, 10 ** 400) == 1.0
    assert theory.expected_attempts(0.5, 10 ** 400) == 2.0
    assert theory.expected_attempts(0.0, 10 ** 400) == 1.0
    assert theory.expected_attempts(1.0, 20_000) == 20_000.0
    with pytest.raises(ValueError, match="attempts must be at most 1.8e308"):
        theory.expected_attempts(1.0, 10 ** 400)
    assert theory.attempts_variance(0.5, 10 ** 400) == pytest.approx(2.0, rel=1e-12)     # p / (1 - p)^2
    assert theory.attempts_variance(0.0, 20_000) == 0.0 and theory.attempts_variance(1.0, 20_000) == 0.0


# --- latency distributions ------------------------------------------------------------------------------
@pytest.mark.parametrize("dist, t, expected", [
    (Fixed(2.0), 1.999, 1.0), (Fixed(2.0), 2.0, 0.0), (Fixed(2.0), -1.0, 1.0),
    (Exponential(2.0), 2.0, E ** -1), (Exponential(2.0), 0.0, 1.0), (Exponential(2.0), math.inf, 0.0),
    (Uniform(1.0, 3.0), 0.5, 1.0), (Uniform(1.0, 3.0), 2.0, 0.5), (Uniform(1.0, 3.0), 2.5, 0.25),
    (Uniform(1.0, 3.0), 3.0, 0.0), (Uniform(1.0, 3.0), 4.0, 0.0),
    (LogNormal(1.0, 1.0), 1.0, 0.5), (LogNormal(1.0, 1.0), E, 0.15865525393145707),
    (LogNormal(2.0, 0.5), 2.0 * E, 1 - 0.9772498680518208),     # one log-unit is two sigmas
    (LogNormal(1.0, 1.0), 0.0, 1.0),
    (Mixture([(0.25, Fixed(1.0)), (0.75, Fixed(3.0))]), 2.0, 0.75),
])
def test_survival_of_each_distribution(dist, t, expected):
    assert theory.survival(dist, t) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dist, limit, expected", [
    (Fixed(2.0), 1.0, 1.0), (Fixed(2.0), 3.0, 2.0), (Fixed(2.0), math.inf, 2.0),
    (Exponential(2.0), 2.0, 2 * (1 - E ** -1)), (Exponential(2.0), 0.0, 0.0),
    (LogNormal(1.0, 1.0), 1.0, E ** 0.5 * 0.15865525393145707 + 0.5),   # mean Phi(-1) + 1 (1 - Phi(0))
    (LogNormal(1.0, 1.0), 0.0, 0.0), (LogNormal(1.0, 1.0), math.inf, E ** 0.5),
    (Mixture([(0.5, Fixed(1.0)), (0.5, Fixed(3.0))]), 2.0, 1.5),
])
def test_capped_mean_of_each_distribution(dist, limit, expected):
    assert theory.capped_mean(dist, limit) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_hedged_survival_needs_both_the_primary_and_the_copy_slow():
    dist = Exponential(1.0)
    assert theory.hedged_survival(dist, 1.0, 2.0) == pytest.approx(E ** -3, rel=1e-12)    # e^-2 e^-(2 - 1)
    assert theory.hedged_survival(dist, 1.0, 0.5) == pytest.approx(E ** -0.5, rel=1e-12)  # before the copy
    assert theory.hedged_survival(dist, math.inf, 2.0) == pytest.approx(E ** -2, rel=1e-12)
    assert theory.hedged_survival(Fixed(1.0), 0.5, 0.75) == 1.0 and theory.hedged_survival(Fixed(1.0), 0.5, 1.0) == 0.0


def test_quantiles_are_the_exact_percentiles():
    assert theory.quantile(Exponential(1.0), 50) == pytest.approx(math.log(2), rel=1e-12)
    assert theory.quantile(Exponential(3.0), 90) == pytest.approx(3 * math.log(10), rel=1e-12)
    assert theory.quantile(Fixed(5.0), 50) == pytest.approx(5.0, rel=1e-12)
    assert theory.quantile(Uniform(1.0, 3.0), 25) == pytest.approx(1.5, rel=1e-12)
    assert theory.hedged_quantile(Exponential(1.0), math.inf, 50) == pytest.approx(math.log(2), rel=1e-12)
    # a copy sent at once: the faster of two exponential draws, rate 2
    assert theory.hedged_quantile(Exponential(1.0), 0.0, 50) == pytest.approx(math.log(2) / 2, rel=1e-12)
    for bad in (0, 100):
        with pytest.raises(ValueError, match=r"p must be in \(0, 100"):
            theory.quantile(Exponential(1.0), bad)


# --- caches -----------------------------------------------------------------------------------------------
def test_ttl_hit_ratio_is_lambda_t_over_one_plus_lambda_t():
    assert theory.ttl_hit_ratio(2.0, 1.5) == 0.75
    assert theory.ttl_hit_ratio(1.0, 1.0) == 0.5


@pytest.mark.parametrize("outage, failing", [
    (2.0, 0.0), (3.0, 0.0),          # D <= H - S = 3: served stale throughout
    (3.5, 0.0625),                   # x = D - H = -1.5: (x + S)^2 / 2S = 0.25 / 4
    (4.0, 0.25),                     # x = -1: 1 / 4
    (5.0, 1.0),                      # x = 0: x + S / 2
    (7.0, 3.0),                      # x = 2: 2 + 1
])
def test_stale_if_error_failing_time_with_a_soft_ttl_of_two_and_a_hard_of_five(outage, failing):
    assert theory.stale_if_error_failing_time(2.0, 5.0, outage) == pytest.approx(failing, rel=1e-12, abs=0)


def test_the_formulas_name_the_distributions_they_are_exact_for():
    with pytest.raises(WrongType, match=r"^dist must be a Fixed, Exponential, Uniform or LogNormal "
                                                    r"distribution, or a Mixture of them \(for survival\), got 'x'$"):
        theory.survival("x", 1.0)
    with pytest.raises(ValueError, match=r"^dist must be a Fixed, Exponential or LogNormal distribution, or a "
                                         r"Mixture of them: a capped mean has no exact formula here for a Uniform;"):
        theory.capped_mean(Uniform(1.0, 2.0), 1.0)
    with pytest.raises(ValueError, match="for a Weibull"):
        theory.quantile(Mixture([(0.5, Fixed(1.0)), (0.5, Weibull(1.0, 2.0))]), 50)
    with pytest.raises(ValueError, match="delay"):
        theory.hedged_quantile(Fixed(1.0), -1.0, 50)


# --- every parameter's refusal names it and its range ------------------------------------------------------
PERIODS = "['year', 'quarter', 'month', 'week', 'day', 'hour']"
REFUSALS = [
    (lambda: theory.availability(0, 1), "mttf must be > 0 and finite, got 0.0"),
    (lambda: theory.availability(1, -1), "mttr must be >= 0 and finite, got -1.0"),
    (lambda: theory.availability_sd(0, 1, 1), "mttf must be > 0 and finite, got 0.0"),
    (lambda: theory.availability_sd(1, 0, 1), "mttr must be > 0 and finite, got 0.0"),
    (lambda: theory.availability_sd(1, 1, 0), "horizon must be > 0 and finite, got 0.0"),
    (lambda: theory.series(1.5), "availabilities[0] must be in [0, 1], got 1.5"),
    (lambda: theory.parallel(0.5, -0.5), "availabilities[1] must be in [0, 1], got -0.5"),
    (lambda: theory.replicas_availability(0, 1, 1), "n must be a whole number >= 1, got 0"),
    (lambda: theory.replicas_availability(1, 0, 1), "mttf must be > 0 and finite, got 0.0"),
    (lambda: theory.replicas_availability(1, 1, 0), "mttr must be > 0 and finite, got 0.0"),
    (lambda: theory.replicas_availability(2, 1, 1, crews=0), "crews must be a whole number >= 1, got 0"),
    (lambda: theory.nines(-0.1), "a must be in [0, 1], got -0.1"),
    (lambda: theory.nines(1.1), "a must be in [0, 1], got 1.1"),
    (lambda: theory.downtime(1.1), "a must be in [0, 1], got 1.1"),
    (lambda: theory.downtime(0.9, "fortnight"), f"period must be one of {PERIODS}, got 'fortnight'"),
    (lambda: theory.downtime(0.9, "year", "julian"), "calendar must be one of ['average', 'sre'], got 'julian'"),
    (lambda: theory.error_budget(1.5, 1), "slo must be in [0, 1], got 1.5"),
    (lambda: theory.error_budget(0.9, -1), "requests must be a whole number >= 0, got -1"),
    (lambda: theory.fanout_slow_share(1.5, 1), "p_slow must be in [0, 1], got 1.5"),
    (lambda: theory.fanout_slow_share(0.5, 0), "n must be a whole number >= 1, got 0"),
    (lambda: theory.mm1_response_time(0, 1), "arrival_rate must be > 0 and finite, got 0.0"),
    (lambda: theory.mm1_response_time(1, 0), "service_rate must be > 0 and finite, got 0.0"),
    (lambda: theory.mm1_response_time(3, 2), "arrival_rate must be < service_rate (2) for a stable queue, got 3"),
    (lambda: theory.erlang_c(0, 1, 1), "servers must be a whole number in [1, 1000000], got 0"),
    (lambda: theory.erlang_c(10 ** 6 + 1, 1, 1), "servers must be a whole number in [1, 1000000], got 1000001"),
    (lambda: theory.erlang_c(1, 0, 1), "arrival_rate must be > 0 and finite, got 0.0"),
    (lambda: theory.erlang_c(1, 1, 0), "service_rate must be > 0 and finite, got 0.0"),
    (lambda: theory.erlang_c(2, 5, 2), "arrival_rate must be < servers * service_rate (4), got 5"),
    (lambda: theory.mmc_response_time(2, 5, 2), "arrival_rate must be < servers * service_rate (4), got 5"),
    (lambda: theory.littles_law(-1, 1), "arrival_rate must be >= 0 and finite, got -1.0"),
    (lambda: theory.littles_law(1, -1), "mean_time must be >= 0 and finite, got -1.0"),
    (lambda: theory.littles_law(1e200, 1e200), "arrival_rate * mean_time must be a float, got 1e+200 * 1e+200, "
                                               "beyond 1.8e308"),
    (lambda: theory.mttf_for(0.0, 1), "availability must be in (0, 1], got 0.0"),
    (lambda: theory.mttf_for(1.5, 1), "availability must be in (0, 1], got 1.5"),
    (lambda: theory.mttf_for(0.5, 0), "mttr must be > 0 and finite, got 0.0"),
    (lambda: theory.chain_availability_sd(0, 0.5, 1), "n must be a whole number >= 1, got 0"),
    (lambda: theory.chain_availability_sd(1, 1.5, 1), "availability must be in [0, 1], got 1.5"),
    (lambda: theory.chain_availability_sd(1, 0.5, 0), "cycles must be a whole number >= 1, got 0"),
    (lambda: theory.share_sd(1.5, 1), "p must be in [0, 1], got 1.5"),
    (lambda: theory.share_sd(0.5, 0), "n must be a whole number >= 1, got 0"),
    (lambda: theory.within_sampling_error(1.5, 0.5, 4), "measured must be in [0, 1], got 1.5"),
    (lambda: theory.within_sampling_error(0.5, 1.5, 4), "expected must be in [0, 1], got 1.5"),
    (lambda: theory.within_sampling_error(0.5, 0.5, 4, sds=0), "sds must be > 0 and finite, got 0.0"),
    (lambda: theory.within_sampling_error(0.5, 0.5, 0), "n must be a whole number >= 1, got 0"),
    (lambda: theory.quantile_sd(0.5, 4, 0), "density must be > 0 and finite, got 0.0"),
    (lambda: theory.binomial_tail(-1, 0.5, 0), "n must be a whole number >= 0, got -1"),
    (lambda: theory.binomial_tail(1, 1.5, 0), "p must be in [0, 1], got 1.5"),
    (lambda: theory.binomial_tail(1, 0.5, -1), "k must be a whole number >= 0, got -1"),
    (lambda: theory.trials_until_run(0, 1), "p must be in (0, 1], got 0.0"),
    (lambda: theory.trials_until_run(1.5, 1), "p must be in (0, 1], got 1.5"),
    (lambda: theory.trials_until_run(0.5, 0), "k must be a whole number >= 1, got 0"),
    (lambda: theory.mmc_tail(-1, 1, 1, 2), "t must be >= 0 and finite, got -1.0"),
    (lambda: theory.mmc_quantile(0, 1, 1, 2), "q must be in (0, 1], got 0.0"),
    (lambda: theory.mmc_quantile(1.5, 1, 1, 2), "q must be in (0, 1], got 1.5"),
    (lambda: theory.mmc_quantile(1.0, 1, 1, 2), "q must be in (0, 1) (the 1-quantile of a time in system is "
                                                "infinite), got 1.0"),
    (lambda: theory.survival(Fixed(1.0), math.nan), "t must be a number (not NaN), got nan"),
    (lambda: theory.capped_mean(Fixed(1.0), -1), "limit must be >= 0, got -1.0"),
    (lambda: theory.hedged_survival(Fixed(1.0), -1, 1), "delay must be >= 0, got -1.0"),
    (lambda: theory.hedged_survival(Fixed(1.0), 1, math.nan), "t must be a number (not NaN), got nan"),
    (lambda: theory.quantile(Exponential(1.0), 0), "p must be in (0, 100], got 0.0"),
    (lambda: theory.quantile(Exponential(1.0), 101), "p must be in (0, 100], got 101.0"),
    (lambda: theory.quantile(Exponential(1.0), 100), "p must be in (0, 100), got 100.0"),
    (lambda: theory.hedged_quantile(Exponential(1.0), -1, 50), "delay must be >= 0, got -1.0"),
    (lambda: theory.hedged_quantile(Exponential(1.0), 1, 100), "p must be in (0, 100), got 100.0"),
    (lambda: theory.ttl_hit_ratio(0, 1), "rate must be > 0 and finite, got 0.0"),
    (lambda: theory.ttl_hit_ratio(1, 0), "ttl must be > 0 and finite, got 0.0"),
    (lambda: theory.stale_if_error_failing_time(0, 1, 1), "ttl must be > 0 and finite, got 0.0"),
    (lambda: theory.stale_if_error_failing_time(2, 1, 1), "hard_ttl must be >= 2 and finite, got 1.0"),
    (lambda: theory.stale_if_error_failing_time(2, 5, -1), "outage_s must be >= 0 and finite, got -1.0"),
]
for _name in ("retry_availability", "expected_attempts", "attempts_variance"):
    REFUSALS += [(lambda f=getattr(theory, _name): f(1.5, 1), "p must be in [0, 1], got 1.5"),
                 (lambda f=getattr(theory, _name): f(0.5, 0), "attempts must be a whole number >= 1, got 0")]


@pytest.mark.parametrize("call, text", REFUSALS)
def test_a_refusal_names_the_parameter_and_its_range(call, text):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == text


def test_every_bound_admits_its_own_value():
    assert theory.availability(1e-300, 0) == 1.0
    assert theory.replicas_availability(2, 1, 1, crews=1) > 0 and theory.erlang_c(10 ** 6, 1, 1) == 0.0
    assert theory.mttf_for(1e-300, 1) == pytest.approx(1e-300)
    assert theory.trials_until_run(1e-300, 1) == pytest.approx(1e300)
    assert theory.stale_if_error_failing_time(2, 2, 0) == 0.0
    assert theory.mmc_tail(0, 1, 1, 2) == 1.0 and theory.littles_law(0, 0) == 0.0
    assert theory.mmc_quantile(1e-12, 1, 1.0, 2.0) == pytest.approx(1e-12, rel=1e-3)
    assert theory.quantile(Exponential(1.0), 1e-9) == pytest.approx(1e-11, rel=1e-6)


def test_up_to_ten_thousand_attempts_the_retry_formulas_are_the_sums_as_written():
    # the docstrings: summed term by term up to 10,000 attempts, closed forms beyond
    p, a = 0.9, 10_000
    mean = sum(p ** i for i in range(a))
    assert theory.expected_attempts(p, a) == mean
    assert theory.attempts_variance(p, a) == max(sum((2 * i + 1) * p ** i for i in range(a)) - mean ** 2, 0.0)


def test_the_largest_float_itself_is_a_count_of_attempts_or_of_failures():
    largest = int(sys.float_info.max)
    assert theory.expected_attempts(1.0, largest) == sys.float_info.max
    assert theory.trials_until_run(1.0, largest) == sys.float_info.max
    with pytest.raises(ValueError, match="attempts must be at most 1.8e308"):
        theory.expected_attempts(1.0, largest + 1)
    with pytest.raises(ValueError, match="k must be at most 1.8e308"):
        theory.trials_until_run(1.0, largest + 1)


# --- the boundaries and branches the fast mutation run reaches with small inputs --------------------------
def test_availability_sd_goes_to_logs_when_the_square_underflows_or_the_quotient_overflows():
    # kills availability_sd 0.0 <= sd (an underflowed 0 returned) and sd <= inf (an overflowed inf returned)
    # mttf = mttr = 1e-100, horizon 1e200: (1e-200)^2 underflows to 0; sqrt(2e-400 / (8e-300 * 1e200)) = 5e-151
    assert theory.availability_sd(1e-100, 1e-100, 1e200) == pytest.approx(5e-151, rel=1e-12, abs=0)
    # mttf = mttr = 1e77, horizon 1: 2 (1e154)^2 = 2e308 is inf; sqrt(2e308 / 8e231) = sqrt(2.5e76)
    assert theory.availability_sd(1e77, 1e77, 1) == pytest.approx(math.sqrt(2.5e76), rel=1e-12)


def test_chain_availability_sd_past_any_float_names_the_chains_standard_deviation():
    # kills the mutants of the `what` text: n = 10^700, x = 0.25 (a = 1/2, cycles 2): e^(700 ln 10 / 2 + ln 0.25)
    # = e^(805.9 - 1.386) = e^804.5
    with pytest.raises(ValueError, match=r"^n must be smaller: the chain's standard deviation is e\^804.5, "):
        theory.chain_availability_sd(10 ** 700, 0.5, 2)


def test_mmc_tail_when_c_mu_minus_lambda_equals_mu_with_mu_not_one():
    # kills C / mu * t: c = 2, lambda = mu = 2, so c mu - lambda = mu; load 1: the sum 1 + 1, and
    # load^c / c! * c / (c - load) = 1/2 * 2 = 1, so C = 1 / (2 + 1) = 1/3;
    # P(T > 1) = e^-2 (1 + C mu t) = e^-2 (1 + 2/3)
    assert theory.erlang_c(2, 2.0, 2.0) == pytest.approx(1 / 3, rel=1e-15)
    assert theory.mmc_tail(1, 2, 2.0, 2.0) == pytest.approx(5 / 3 * math.exp(-2), rel=1e-15)


def test_binomial_tail_of_a_thousand_trials_is_the_exact_sum_and_p_one_sums_to_one():
    # kills n < 1000 (1000 trials to the log route, a few ulps off) and range(k, n + 2) (a term (1 - p)^-1)
    assert theory.binomial_tail(1000, 0.5, 1000) == 2.0 ** -1000     # C(1000, 1000) 2^-1000, exact
    assert theory.binomial_tail(3, 1.0, 2) == 1.0                    # 1^3: every trial succeeds
    assert theory.binomial_tail(1000, 1.0, 1000) == 1.0


def test_expected_attempts_past_ten_thousand_with_p_zero_is_one_attempt():
    # kills `if p == 1.0` in place of `p == 0.0` (log(0) would be asked for)
    assert theory.expected_attempts(0.0, 10_001) == 1.0
    assert theory.attempts_variance(0.0, 10_001) == 0.0


def test_fanout_slow_share_past_any_float_just_below_e_710_is_one():
    # kills log_x < 710.0: n = 3 * 2^1023, p = 1/2: log_x = ln(1.5 * 2^1024) + ln(ln 2) = 710.19 - 0.367 = 709.82,
    # past e^709.78 (the largest float): the answer is 1 - 2^-n = 1.0 without ever forming e^log_x
    assert theory.fanout_slow_share(0.5, 3 * 2 ** 1023) == 1.0


def test_stale_if_error_failing_time_at_and_just_past_an_outage_of_the_hard_ttl():
    # soft TTL 0.1, hard 5, outage 5: x = D - H = 0, so x + S/2 = 0.05 exactly ((x + S)^2 / 2S is 0.05000000000000001)
    assert theory.stale_if_error_failing_time(0.1, 5, 5) == 0.05
    # soft TTL 2, hard 5, outage 5.5: x = 0.5 >= 0, so x + S/2 = 1.5 (kills x >= 1: (2.5)^2 / 4 = 1.5625)
    assert theory.stale_if_error_failing_time(2, 5, 5.5) == 1.5


def test_trials_until_run_at_the_largest_float_is_answered_in_logs():
    # p = 1/2, k = 1023: the wait is 2^1024 - 2, within an ulp of the largest float; (1 - p^k) / ((1 - p) p^k)
    # is inf in floats, the logs give exactly ln(1.8e308) (kills log_wait < max, log_pk = -inf, exp(None))
    assert theory.trials_until_run(0.5, 1023) == pytest.approx(sys.float_info.max, rel=1e-12)   # 2^1024 (1 - 2^-53)


@pytest.mark.parametrize("p, k, text", [
    # 2000 failures at p = 1/2: ln(2^2001 - 2) = 2001 ln 2 = 1387.0 (kills + log1p(-p), log1p(+p), about=None)
    (0.5, 2000, r"is e\^1387 trials, beyond the largest float \(1.8e308 = e\^709.8\); at this p, k must be <= 1,021$"),
    # k the largest float itself: k ln 2 = 1.246e308 (kills k < float max, which reads it as infinitely many)
    (0.5, int(sys.float_info.max), r"is e\^1.246e\+308 trials"),
    # k past any float: "more than" (kills the mutants of that text and of log_wait < inf)
    (0.5, 10 ** 400, r"at p=0.5 is more than e\^1.8e308 trials, beyond"),
    # p = 1e-217: floor((709.78 - 1) / 499.66) = 1 run fits (kills longest > 1 and longest >= 2)
    (1e-217, 2, r"is e\^999.3 trials, beyond the largest float \(1.8e308 = e\^709.8\); at this p, k must be <= 1$"),
    # p = 1e-309: not even one failure fits (1/p = 1e309)
    (1e-309, 1, r"; at this p even a single failure takes 1/p trials on average, beyond 1.8e308 too: use a larger p$"),
])
def test_trials_until_run_beyond_the_largest_float_says_how_far_and_what_fits(p, k, text):
    with pytest.raises(ValueError, match=text):
        theory.trials_until_run(p, k)


def test_survival_at_zero_and_of_a_uniform_of_no_width():
    # kills t <= 0 (-> 1.0): P(Fixed(0) > 0) = 0, P(0 or 2, evenly > 0) = 1/2
    assert theory.survival(Fixed(0.0), 0) == 0.0
    assert theory.survival(Mixture([(0.5, Fixed(0.0)), (0.5, Fixed(2.0))]), 0) == 0.5
    # Uniform(1, 1) is always 1: P(X > 1) = 0 (kills t <= low -> 1.0, and t > high -> 0 / 0)
    assert theory.survival(Uniform(1.0, 1.0), 1.0) == 0.0
    assert theory.survival(Uniform(1.0, 1.0), 0.5) == 1.0


def test_hedged_survival_at_the_delay_and_at_an_infinite_delay_and_time():
    # primary 0 or 2 evenly, copy at delay 1: slower than 1 needs the primary at 2 (1/2) and the copy, sent at
    # 1, slower than 0 more (1/2): 1/4 (kills t <= delay, which drops the copy's factor)
    assert theory.hedged_survival(Mixture([(0.5, Fixed(0.0)), (0.5, Fixed(2.0))]), 1, 1) == 0.25
    # never hedged: P(X > inf) = 0 (kills `isinf(delay) and t < delay`: e^-inf * e^-(inf - inf) is nan)
    assert theory.hedged_survival(Exponential(1.0), math.inf, math.inf) == 0.0


@pytest.mark.parametrize("call, what", [
    (lambda d: theory.quantile(d, 50), "a quantile"),
    (lambda d: theory.hedged_quantile(d, 1, 50), "a hedged quantile"),
    (lambda d: theory.hedged_survival(d, 1, 1), "a hedged survival"),
])
@pytest.mark.parametrize("dist", [Weibull(1.0, 1.0), Mixture([(0.5, Fixed(1.0)), (0.5, Weibull(1.0, 1.0))])])
def test_a_distribution_without_a_formula_is_refused_naming_what_was_asked(call, what, dist):
    # kills the mutants of each `what` text, and a Mixture's part checked with what=None
    with pytest.raises(ValueError, match=f": {what} has no exact formula here for a Weibull;"):
        call(dist)


def test_quantile_bisects_80_times_from_0_to_1_and_answers_the_upper_end():
    # a fixed 2^-90 s is below the resolution of 80 halvings of [0, 1]: the last bracket is [0, 2^-80]
    # (kills 81 steps -> 2^-81, a start at [0, 2] -> 2^-79, the middle -> 2^-81)
    assert theory.quantile(Fixed(2.0 ** -90), 50) == 2.0 ** -80
    assert theory.quantile(Fixed(2.0 ** -80), 50) == 2.0 ** -80
    # 2^-90 or 3, evenly: P(X > 1) = 1/2 is not above 1/2, so [0, 1] already brackets the median 2^-90
    # (kills doubling while sf(hi) >= target: [0, 4], and 2^-78)
    assert theory.quantile(Mixture([(0.5, Fixed(2.0 ** -90)), (0.5, Fixed(3.0))]), 50) == 2.0 ** -80
    # 1 or 3, evenly: the median is the least t with P(X > t) <= 1/2, which is 1 (kills sf(mid) >= target -> 3)
    assert theory.quantile(Mixture([(0.5, Fixed(1.0)), (0.5, Fixed(3.0))]), 50) == 1.0


def test_mmc_quantile_bisects_60_times_and_answers_the_middle_of_the_last_bracket():
    # mu = 1e30: the median, ln 2 / 1e30, is below 60 halvings of [0, 1]: the last bracket is [0, 2^-60]
    # and its middle 2^-61 (kills 61 or 80 steps, and the upper end 2^-60)
    assert theory.mmc_quantile(0.5, 1, 1.0, 1e30) == 2.0 ** -61


def test_erlang_c_rescaled_a_few_terms_before_the_end_is_the_exact_fraction():
    # 462 servers at a load of 461.5: the sum passes 1e200 at k = 454 and is rescaled to 1 there, 7 terms
    # before the end (kills a rescaled total of 2: 0.951 for 0.971); the exact value in fractions
    c, load = 462, Fraction(923, 2)
    term, total = Fraction(1), Fraction(1)
    for k in range(1, c):
        term *= load / k
        total += term
    top = term * load / c * c / (c - load)
    assert theory.erlang_c(c, 923.0, 2.0) == pytest.approx(float(top / (total + top)), rel=1e-12)


def _exact_binomial_tail(n, a, b, k):
    """P(at least k of n) at p = a / (a + b), in integers: the terms C(n, i) a^i b^(n - i) from i = k up, until
    one is below 1e-25 of their sum, over (a + b)^n."""
    i, term = k, math.comb(n, k) * a ** k * b ** (n - k)
    total = term
    while i < n and term * 10 ** 25 >= total:
        term = term * (n - i) * a // ((i + 1) * b)       # C(n, i + 1) a^(i + 1) b^(n - i - 1), exact
        i += 1
        total += term
    return Fraction(total, (a + b) ** n)


def _binomial_tail_by_log_sums(n, p, k):
    """The same tail in floats, for n too large for the integers: log C(n, k) as an fsum of log((n - i) / (i + 1)),
    then the terms from k up by their ratios (n - i) / (i + 1) * p / (1 - p); about 1e-10 relative."""
    i = np.arange(k, dtype=float)
    log_term = math.fsum(np.log((n - i) / (i + 1)).tolist()) + k * math.log(p) + (n - k) * math.log1p(-p)
    total, ratio, i = 0.0, 1.0, k
    while ratio > 1e-20:
        total += ratio
        ratio *= (n - i) / (i + 1) * p / (1 - p)
        i += 1
    return math.exp(log_term) * total


def test_binomial_tail_past_a_thousand_trials_steps_out_from_the_mode_when_k_plus_mode_passes_10_000():
    # 10,002 trials at 1/2: mode 5001, k = 5100 is 99 outcomes above it (k + mode = 10,101); stepping is exact
    # to a few ulps (kills abs(j + mode) <= 10,000, which takes the log-gamma route: 1e-11 off)
    expected = float(_exact_binomial_tail(10_002, 1, 1, 5100))
    assert theory.binomial_tail(10_002, 0.5, 5100) == pytest.approx(expected, rel=1e-13, abs=0)


def test_binomial_tail_of_a_million_trials_10_000_and_10_500_outcomes_above_the_mode():
    # 10^6 trials at 1/4: mode floor(1,000,001 / 4) = 250,000
    n = 10 ** 6
    # k = 260,000, 10,000 above the mode: still stepped, 1e-11 (kills abs(j - mode) < 10,000: 1.5e-9 off)
    assert theory.binomial_tail(n, 0.25, 260_000) == pytest.approx(_binomial_tail_by_log_sums(n, 0.25, 260_000),
                                                                   rel=2e-10, abs=0)
    # k = 260,500, 10,500 above it: by log-gamma, about 1e-9 (5.106e-129; kills each changed term of that route,
    # which moves the answer by a factor of e or more)
    assert theory.binomial_tail(n, 0.25, 260_500) == pytest.approx(_binomial_tail_by_log_sums(n, 0.25, 260_500),
                                                                   rel=1e-8, abs=0)


def test_binomial_tail_past_a_thousand_trials_around_the_mode_is_correctly_rounded():
    # 1001 fair trials: at least 501 successes is exactly 1/2 (the outcomes pair off, i with 1001 - i); k = 501
    # is the mode (floor(1002 / 2)), so 1 - P(X <= 500) (kills k >= mode and a mode of floor(1000 / 2): 0.49999999999999994)
    assert theory.binomial_tail(1001, 0.5, 501) == 0.5
    # 1002 fair trials, k = 485: the exact fraction, rounded once (kills a mode of floor(1004 / 2): one ulp below)
    assert theory.binomial_tail(1002, 0.5, 485) == float(_exact_binomial_tail(1002, 1, 1, 485))


def _replicas_exact(n, mttf, mttr, crews=None):
    """replicas_availability in fractions of the floats given: the weights w_{k+1} = w_k (n - k) lam / (min(k + 1, crews) mu)."""
    lam, mu, crews = 1 / Fraction(mttf), 1 / Fraction(mttr), n if crews is None else crews
    weights = [Fraction(1)]
    for k in range(n):
        weights.append(weights[-1] * (n - k) * lam / (min(k + 1, crews) * mu))
    return float(1 - weights[-1] / sum(weights))


@pytest.mark.parametrize("n, mttf, mttr, crews", [
    # rates a float divides (lam = 1/3, mu = 1/0.7): the chain by the rates' ratio, correctly rounded; in logs
    # (log 0.7 - log 3) it is an ulp off (kills normal = None, and 1.0 < lam / mu in place of 1e-290)
    (4, 3.0, 0.7, 1),
    # lam = 2^-1022 is the smallest normal float itself: still divided directly (kills min < lam): 1 - 1/4
    (1, 2.0 ** 1022, 2.0 ** 1022 / 3, None),
    # lam mu = 1/7e400 underflows, lam / mu = 7 does not: divided directly (kills lam * mu): 1/8
    (1, 1e200, 7e200, None),
])
def test_replicas_availability_of_rates_a_float_divides_is_the_chain_correctly_rounded(n, mttf, mttr, crews):
    assert theory.replicas_availability(n, mttf, mttr, crews=crews) == _replicas_exact(n, mttf, mttr, crews)


def test_replicas_availability_of_rates_near_the_largest_float_is_built_in_logs():
    # lam = 1e308 and mu = 5e307 are floats, but (n - k) lam = 2e308 is not: in logs, 1 - (2/3)^2 = 5/9
    # (kills `all(...) or ratio in range`, which divides directly and gets inf / inf)
    assert theory.replicas_availability(2, 1e-308, 2e-308) == pytest.approx(5 / 9, rel=1e-12)


def test_a_spread_of_exactly_the_largest_float_in_logs_is_answered_not_refused():
    # availability_sd(1e308, 1e308, h): sqrt(2e1232 / (8e924 h)) is 1.8e308 at h = 7.7358651184578e-310, where
    # the log of the spread is exactly ln(1.8e308) (kills log_sd >= max)
    assert theory.availability_sd(1e308, 1e308, 7.7358651184578e-310) == pytest.approx(sys.float_info.max, rel=1e-12)
    # chain_availability_sd(n, 1/2, 2) = sqrt(n) / 4, past any float: at n = e^(2 (ln 1.8e308 - ln 1/4)) (to 80
    # digits) ln(n) / 2 + ln(1/4) is exactly ln(1.8e308) (kills log_value >= max in _root_n_times)
    with decimal.localcontext() as ctx:
        ctx.prec = 80
        n = int((2 * (decimal.Decimal(math.log(sys.float_info.max)) - decimal.Decimal(math.log(0.25)))).exp())
    assert theory.chain_availability_sd(n, 0.5, 2) == pytest.approx(sys.float_info.max, rel=1e-12)

