"""Retry budget and adaptive throttle (Google SRE book, "Handling Overload")."""
import math
import random

import pytest

from resilience_sim.policies import AdaptiveThrottle, RetryBudget


def test_budget_allows_ratio_of_first_attempts_plus_the_minimum():
    b = RetryBudget(ratio=0.1, window=10.0, min_per_second=0.0)
    for i in range(100):
        b.record_request(i * 0.05)              # 100 first attempts within 5 s
    granted = 0
    while b.can_retry(5.0):
        b.record_retry(5.0)
        granted += 1
    assert granted == 10                         # 10% of 100
    assert b.denied == [5.0]


def test_budget_counts_only_retries_not_first_attempts():
    b = RetryBudget(ratio=0.1, window=10.0, min_per_second=0.0)
    for _ in range(1000):
        b.record_request(1.0)                    # first attempts never spend the budget
    assert b.can_retry(1.0)
    assert b.allowance(1.0) == pytest.approx(100)


def test_minimum_allowance_lets_a_quiet_client_retry():
    b = RetryBudget(ratio=0.1, window=10.0, min_per_second=0.5)   # 5 retries per window
    assert b.allowance(0.0) == 5
    for _ in range(5):
        assert b.can_retry(0.0)
        b.record_retry(0.0)
    assert not b.can_retry(0.0)


def test_budget_window_slides():
    b = RetryBudget(ratio=0.5, window=10.0, min_per_second=0.0)
    b.record_request(0.0); b.record_request(0.0)
    b.record_retry(1.0)
    assert not b.can_retry(1.0)                  # 1 retry of 0.5 * 2 = 1 allowed
    b.record_request(10.5)                       # the first two requests leave at t = 10
    assert b.allowance(10.5) == 0.5
    assert not b.can_retry(10.5)                 # the retry at t=1 still counts until t=11
    b.record_request(10.6)
    assert b.can_retry(11.0)                     # retry gone; 2 requests earn 1


@pytest.mark.parametrize("requests, accepts, expected", [
    (0, 0, 0.0),
    (10, 10, 0.0),                 # healthy: 10 - 20 < 0
    (10, 5, 0.0),                  # exactly K: (10 - 10) / 11
    (10, 4, 2 / 11),
    (100, 0, 100 / 101),           # backend refuses everything
    (100, 25, 50 / 101),
])
def test_throttle_probability_formula(requests, accepts, expected):
    t = AdaptiveThrottle(k=2.0, window=120.0)
    for i in range(requests):
        t.record(1.0, accepted=i < accepts)
    assert t.rejection_probability(1.0) == pytest.approx(expected)


def test_throttle_k_changes_aggressiveness():
    t = AdaptiveThrottle(k=1.0)
    for i in range(10):
        t.record(0.0, accepted=i < 5)
    assert t.rejection_probability(0.0) == pytest.approx(5 / 11)


def test_throttle_rejects_at_about_the_probability_and_counts_local_rejections():
    t, r = AdaptiveThrottle(k=2.0, window=1e9), random.Random(5)
    for _ in range(200):
        t.record(0.0, accepted=False)
    p0 = t.rejection_probability(0.0)
    allowed = sum(t.allow(0.0, r) for _ in range(100))
    assert len(t.rejected) == 100 - allowed and t.allowed == allowed
    assert 100 - allowed > 80 and p0 > 0.99
    # local rejections count as requests that were not accepted: p stays high
    assert t.rejection_probability(0.0) > 0.99


def test_throttle_allows_everything_when_healthy_without_drawing():
    t = AdaptiveThrottle()
    t.record(0.0, True)

    class NoDraws(random.Random):
        def random(self):
            raise AssertionError("drew a number although p == 0")
    assert all(t.allow(0.0, NoDraws()) for _ in range(10))


def test_throttle_window_forgets_old_history():
    t = AdaptiveThrottle(k=2.0, window=120.0)
    for _ in range(50):
        t.record(0.0, False)
    assert t.rejection_probability(119.0) > 0.9
    assert t.rejection_probability(120.0) == 0.0


def test_a_client_that_never_retries_keeps_only_one_window_of_requests():
    b = RetryBudget(ratio=0.1, window=10.0)
    for i in range(100_000):                     # a day of healthy traffic: can_retry is never asked
        b.record_request(i * 1.0)
        b.record_retry(i * 1.0)
    assert b.requests == b.retries == 100_000    # the counts stay exact
    assert len(b._requests.events) == len(b._retries.events) == 10     # (now - 10, now]
    assert b.allowance(99_999.0) == pytest.approx(0.1 * 10 + 10)


def test_throttle_window_stays_bounded_while_every_request_is_accepted():
    t = AdaptiveThrottle(window=5.0)
    for i in range(10_000):
        t.record(i * 1.0, True)
    assert len(t._events.events) == 5 and t.rejection_probability(9_999.0) == 0.0


@pytest.mark.parametrize("call, words", [
    (lambda: RetryBudget(ratio=-0.1), ["ratio", "[0, 1]"]),
    (lambda: RetryBudget(ratio=1.5), ["ratio", "[0, 1]"]),
    (lambda: RetryBudget(ratio=math.nan), ["ratio"]),
    (lambda: RetryBudget(window=0), ["window", "> 0"]),
    (lambda: RetryBudget(window=-5), ["window", "> 0"]),
    (lambda: RetryBudget(min_per_second=-1), ["min_per_second", ">= 0"]),
    (lambda: AdaptiveThrottle(k=0.5), ["k", ">= 1"]),
    (lambda: AdaptiveThrottle(k=math.nan), ["k"]),
    (lambda: AdaptiveThrottle(window=0), ["window", "> 0"]),
])
def test_bad_input(call, words):
    with pytest.raises(ValueError) as e:
        call()
    for w in words:
        assert w in str(e.value)
