"""Token bucket and load shedder."""
import math

import pytest

from resilience_sim.policies import LoadShedder, TokenBucket


def test_bucket_starts_full_and_allows_a_burst():
    b = TokenBucket(rate=2.0, burst=5)
    assert sum(b.try_take(0.0) for _ in range(8)) == 5
    assert b.taken == 5 and b.rejections == [0.0, 0.0, 0.0]


def test_bucket_refills_at_rate_up_to_burst():
    b = TokenBucket(rate=2.0, burst=5)
    for _ in range(5):
        b.try_take(0.0)
    assert b.available(0.0) == 0
    assert b.available(1.0) == pytest.approx(2.0)
    assert b.available(100.0) == 5              # never above burst


def test_wait_time_is_enough_to_get_a_token():
    b = TokenBucket(rate=10.0, burst=1)
    assert b.try_take(0.0)
    w = b.wait_time(0.0)
    assert w == pytest.approx(0.1)
    assert not b.try_take(0.05)
    assert b.try_take(0.0 + w)                  # waiting exactly wait_time() suffices
    assert b.wait_time(5.0) == 0.0


def test_long_run_rate_is_bounded():
    b, t, taken = TokenBucket(rate=5.0, burst=3), 0.0, 0
    while t < 100.0:
        taken += b.try_take(t)
        t += 0.01                               # 100 attempts a second
    assert taken <= 3 + 5.0 * 100.0 + 1
    assert taken >= 5.0 * 99.0


def test_taking_several_tokens_is_all_or_nothing():
    b = TokenBucket(rate=1.0, burst=3)
    assert b.try_take(0.0, tokens=2)
    assert not b.try_take(0.0, tokens=2)
    assert b.available(0.0) == pytest.approx(1.0)
    assert b.wait_time(0.0, tokens=3) == pytest.approx(2.0)


def test_time_going_backwards_is_refused_and_adds_no_tokens():
    b = TokenBucket(rate=1.0, burst=2)
    b.try_take(10.0), b.try_take(10.0)
    with pytest.raises(ValueError, match=r"now must not go back: .*now=10.0 last, then now=5.0"):
        b.available(5.0)
    assert b.available(10.0) == 0


def test_shedder_limits_queue_length():
    s = LoadShedder(max_queue=3)
    assert not s.should_shed(0.0, queue_length=2)
    assert s.should_shed(0.0, queue_length=3)
    assert s.sheds == [(0.0, "queue full")] and s.admitted == 1
    assert LoadShedder(max_queue=0).should_shed(0.0, 0)   # no queueing at all


def test_shedder_limits_queue_delay():
    s = LoadShedder(max_queue_delay=0.5)
    assert not s.should_shed(1.0, queue_length=100, oldest_wait=0.5)
    assert s.should_shed(1.0, queue_length=1, oldest_wait=0.6)
    assert s.sheds == [(1.0, "queue delay")]


def test_shedder_without_limits_never_sheds():
    s = LoadShedder()
    assert not any(s.should_shed(0.0, 10**6, 1e6) for _ in range(3))


@pytest.mark.parametrize("call, words", [
    (lambda: TokenBucket(0, 1), ["rate", "> 0"]),
    (lambda: TokenBucket(-1, 1), ["rate", "> 0"]),
    (lambda: TokenBucket(math.nan, 1), ["rate"]),
    (lambda: TokenBucket(1, 0.5), ["burst", ">= 1"]),
    (lambda: TokenBucket(1, math.inf), ["burst", "finite"]),
    (lambda: TokenBucket(1, 2).try_take(0, tokens=3), ["tokens", "(0, 2]"]),
    (lambda: TokenBucket(1, 2).try_take(0, tokens=0), ["tokens", "(0, 2]"]),
    (lambda: TokenBucket(1, 2).wait_time(0, tokens=-1), ["tokens"]),
    (lambda: LoadShedder(max_queue=-1), ["max_queue", ">= 0"]),
    (lambda: LoadShedder(max_queue=1.5), ["max_queue", "whole number"]),
    (lambda: LoadShedder(max_queue_delay=-0.1), ["max_queue_delay", ">= 0"]),
    (lambda: LoadShedder(max_queue_delay=math.nan), ["max_queue_delay"]),
])
def test_bad_input(call, words):
    with pytest.raises(ValueError) as e:
        call()
    for w in words:
        assert w in str(e.value)
