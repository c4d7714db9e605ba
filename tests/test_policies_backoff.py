"""Backoff schedules: exact ranges with a seeded rng, the cap, fresh draws per attempt."""
import math
import random

import pytest

from resilience_sim.policies import (Constant, DecorrelatedJitter, EqualJitter, Exponential,
                                     FullJitter)


def rng(seed=1):
    return random.Random(seed)


def test_constant_ignores_the_attempt():
    b = Constant(0.2)
    assert [b.delay(n) for n in (1, 2, 10)] == [0.2, 0.2, 0.2]


def test_exponential_uses_base_times_multiplier_to_the_retry_number():
    b = Exponential(0.1, cap=100.0)
    assert [b.delay(n) for n in (1, 2, 3)] == pytest.approx([0.2, 0.4, 0.8])
    assert Exponential(0.1, cap=100.0, multiplier=3).delay(2) == pytest.approx(0.9)


def test_exponential_is_capped_not_unbounded():
    b = Exponential(0.1, cap=5.0)
    uncapped = 0.1 * 2 ** 20                      # the classic mistake: 29 hours
    assert b.delay(20) == 5.0 < uncapped
    assert b.delay(10_000) == 5.0                 # no overflow for absurd attempts


def test_exponential_requires_a_finite_cap():
    with pytest.raises(TypeError):
        Exponential(0.1)                           # type: ignore[call-arg]
    with pytest.raises(ValueError, match="cap"):
        Exponential(0.1, cap=math.inf)


@pytest.mark.parametrize("attempt", [1, 2, 3, 6, 12])
def test_full_jitter_range(attempt):
    b, r = FullJitter(0.1, cap=2.0), rng(attempt)
    top = min(2.0, 0.1 * 2 ** attempt)
    draws = [b.delay(attempt, r) for _ in range(500)]
    assert all(0.0 <= d <= top for d in draws)
    assert min(draws) < 0.1 * top and max(draws) > 0.9 * top   # the whole range is used


@pytest.mark.parametrize("attempt", [1, 2, 3, 6, 12])
def test_equal_jitter_range(attempt):
    b, r = EqualJitter(0.1, cap=2.0), rng(attempt)
    temp = min(2.0, 0.1 * 2 ** attempt)
    draws = [b.delay(attempt, r) for _ in range(500)]
    assert all(temp / 2 <= d <= temp for d in draws)
    assert min(draws) < 0.55 * temp and max(draws) > 0.95 * temp


def test_decorrelated_jitter_range_and_chain():
    b, r = DecorrelatedJitter(0.1, cap=2.0), rng(3)
    first = [b.delay(1, r) for _ in range(300)]            # previous = base
    assert all(0.1 <= d <= 0.3 for d in first)
    later = [b.delay(2, r, previous=0.5) for _ in range(300)]
    assert all(0.1 <= d <= 1.5 for d in later) and max(later) > 1.3
    capped = [b.delay(5, r, previous=1.9) for _ in range(300)]
    assert max(capped) == 2.0 and all(d <= 2.0 for d in capped)
    prev, seq = None, []                                     # a retry sequence feeds previous back
    for n in range(1, 30):
        prev = b.delay(n, r, previous=prev)
        seq.append(prev)
    assert all(0.1 <= d <= 2.0 for d in seq)


@pytest.mark.parametrize("schedule", [FullJitter(0.1, 10.0), EqualJitter(0.1, 10.0),
                                      DecorrelatedJitter(0.1, 10.0)])
def test_jitter_draws_differ_between_attempts_and_between_requests(schedule):
    r = rng(7)
    # a fixed attempt: repeated calls (two requests, or a reused schedule) draw fresh numbers
    assert len({schedule.delay(3, r, previous=0.4) for _ in range(20)}) == 20
    # one request's sequence: no two retries reuse the same draw
    prev, seen = None, []
    for n in range(1, 6):
        prev = schedule.delay(n, r, previous=prev)
        seen.append(prev)
    assert len(set(seen)) == 5


def test_same_seed_same_delays():
    a = [FullJitter(0.1, 5).delay(n, rng(42)) for n in range(1, 6)]
    b = [FullJitter(0.1, 5).delay(n, rng(42)) for n in range(1, 6)]
    assert a == b


def test_schedules_log_the_delays_they_give():
    b = Exponential(0.1, cap=1.0)
    b.delay(1), b.delay(2)
    assert b.given == [(1, pytest.approx(0.2)), (2, pytest.approx(0.4))]


@pytest.mark.parametrize("call, words", [
    (lambda: Constant(-1), ["base", ">= 0"]),
    (lambda: Exponential(0, 1), ["base", "> 0"]),
    (lambda: Exponential(math.nan, 1), ["base"]),
    (lambda: Exponential(1, 0.5), ["cap", ">= 1"]),
    (lambda: Exponential(0.1, 1, multiplier=0.5), ["multiplier", ">= 1"]),
    (lambda: FullJitter(0.1, -1), ["cap", ">= 0.1"]),
    (lambda: Constant(1).delay(0), ["attempt", ">= 1"]),
    (lambda: Constant(1).delay(1.5), ["attempt", "whole number"]),
    (lambda: FullJitter(0.1, 1).delay(1), ["rng", "random.Random"]),
    (lambda: EqualJitter(0.1, 1).delay(1, None), ["rng"]),
    (lambda: DecorrelatedJitter(0.1, 1).delay(1, rng(), previous=-1), ["previous", ">= 0"]),
    (lambda: DecorrelatedJitter(0.1, 1).delay(1, rng(), previous=math.nan), ["previous"]),
])
def test_bad_input(call, words):
    with pytest.raises(ValueError) as e:
        call()
    for w in words:
        assert w in str(e.value)
