"""Bulkhead: concurrency cap, FIFO hand-over, bounded waits, logs."""
import math

import pytest

from resilience_sim.policies import Bulkhead


def test_caps_concurrency_and_rejects_without_waiting():
    b = Bulkhead(2)
    assert b.try_acquire(0.0) and b.try_acquire(0.0)
    assert not b.try_acquire(0.1)
    assert b.rejections == [(0.1, "full")] and b.rejected == 1
    assert not b.can_wait()
    assert b.release(0.2) is False          # nobody waiting: the slot is simply freed
    assert b.try_acquire(0.3)
    assert b.peak == 2 and b.acquired == 3 and b.in_use == 2


def test_waiters_get_slots_first_come_first_served():
    b = Bulkhead(1, max_wait=1.0)
    assert b.try_acquire(0.0)
    assert not b.try_acquire(0.1) and b.rejected == 0     # may wait: not a rejection yet
    assert b.can_wait()
    assert b.enqueue(0.1) == pytest.approx(1.1)           # give up at 1.1
    b.enqueue(0.2)
    assert not b.try_acquire(0.3)                          # a newcomer does not overtake the queue
    b.enqueue(0.3)
    assert b.release(0.5) is True                          # handed to the oldest waiter
    assert b.in_use == 1 and b.waiting == 2
    assert b.waits == [pytest.approx(0.4)]


def test_a_waiter_that_runs_out_of_time_is_rejected():
    b = Bulkhead(1, max_wait=0.5)
    b.try_acquire(0.0)
    b.try_acquire(0.1)
    until = b.enqueue(0.1)
    b.give_up(until)
    assert b.rejections == [(0.6, "wait expired")] and b.waiting == 0
    assert b.release(1.0) is False and b.in_use == 0


def test_in_use_never_exceeds_the_limit_under_churn():
    b = Bulkhead(3, max_wait=1.0)
    for i in range(50):
        if not b.try_acquire(i):
            b.enqueue(i)
        if i % 3 == 0:
            b.release(i)
        assert b.in_use <= 3
    assert b.peak == 3


def test_misuse_is_an_error():
    with pytest.raises(RuntimeError, match="release"):
        Bulkhead(1).release(0.0)
    with pytest.raises(RuntimeError, match="max_wait"):
        Bulkhead(1).enqueue(0.0)
    with pytest.raises(RuntimeError, match="give_up"):
        Bulkhead(1, max_wait=1).give_up(0.0)


@pytest.mark.parametrize("call, words", [
    (lambda: Bulkhead(0), ["max_concurrent", ">= 1"]),
    (lambda: Bulkhead(1.5), ["max_concurrent", "whole number"]),
    (lambda: Bulkhead(2, max_wait=-1), ["max_wait", ">= 0"]),
    (lambda: Bulkhead(2, max_wait=math.nan), ["max_wait"]),
])
def test_bad_input(call, words):
    with pytest.raises(ValueError) as e:
        call()
    for w in words:
        assert w in str(e.value)


def test_a_waiter_can_leave_before_its_max_wait_without_counting_as_rejected():
    b = Bulkhead(1, max_wait=5.0)
    assert b.try_acquire(0.0)
    b.enqueue(1.0)
    b.enqueue(2.0)
    b.leave(1.0)                             # its caller gave up (cancelled, or its deadline came)
    assert b.waiting == 1 and b.rejections == []
    assert b.release(3.0) is True and b.waits == [1.0]   # the slot goes to the one still waiting
    with pytest.raises(ValueError, match=r"enqueued_at must be .* \(leave\(\) without"):
        b.leave(1.0)
