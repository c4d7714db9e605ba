"""Timeouts and deadlines, driven with plain numbers."""
import math

import pytest

from resilience_sim.policies import Countdown, Deadline, Timeout


def test_timeout_expires_at_its_limit():
    t = Timeout(0.5)
    assert t.expires_at(10.0) == 10.5
    assert not t.expired(10.0, 10.49)
    assert t.expired(10.0, 10.5)


def test_timeout_records_attempts_and_timeouts():
    t = Timeout(1.0)
    t.record(1.0, timed_out=False)
    t.record(3.0, timed_out=True)
    assert t.attempts == 2 and t.timeouts == [3.0]


def test_infinite_timeout_is_the_baseline():
    assert not Timeout(math.inf).expired(0.0, 1e12)


def test_deadline_counts_down_and_expires():
    d = Deadline(2.0).start(100.0)
    assert isinstance(d, Countdown)
    assert d.remaining(100.5) == pytest.approx(1.5)
    assert not d.expired(101.99)
    assert d.expired(102.0)
    assert d.remaining(150.0) == 0.0          # never negative


def test_attempt_timeout_never_exceeds_the_deadline():
    d = Deadline(1.0).start(0.0)
    assert d.attempt_timeout(0.0, 0.3) == 0.3          # per-attempt limit binds
    assert d.attempt_timeout(0.8, 0.3) == pytest.approx(0.2)   # the deadline binds
    assert d.attempt_timeout(1.5, Timeout(0.3)) == 0.0
    assert [t for _, t in d.attempts] == pytest.approx([0.3, 0.2, 0.0])


def test_a_retry_loop_bounded_by_attempt_timeout_cannot_outlast_the_deadline():
    d, now, in_attempts = Deadline(1.0).start(0.0), 0.0, 0.0
    while not d.expired(now):           # every attempt times out, then waits 0.05 s
        t = d.attempt_timeout(now, 0.3)
        in_attempts += t
        now += t + 0.05
    assert now <= 1.0 + 1e-12 + 0.05    # at most the last wait goes past the deadline
    assert in_attempts < 1.0


def test_child_deadline_is_what_is_left_minus_the_reserve():
    d = Deadline(1.0).start(0.0)
    child = d.child(0.4, reserve=0.1)
    assert child.remaining(0.4) == pytest.approx(0.5)
    assert d.child(0.4).remaining(0.4) == pytest.approx(0.6)
    assert d.child(0.95, reserve=0.1).remaining(0.95) == 0.0   # nothing left: never negative
    grandchild = child.child(0.5, reserve=0.1)                  # propagation nests
    assert grandchild.remaining(0.5) == pytest.approx(0.3)


@pytest.mark.parametrize("call, words", [
    (lambda: Timeout(0), ["per_attempt", "> 0"]),
    (lambda: Timeout(-1), ["per_attempt", "> 0"]),
    (lambda: Timeout(math.nan), ["per_attempt"]),
    (lambda: Timeout("1"), ["per_attempt", "number"]),
    (lambda: Deadline(0), ["budget", "> 0"]),
    (lambda: Deadline(math.nan), ["budget"]),
    (lambda: Deadline(1).start(0).child(0, reserve=-0.1), ["reserve", ">= 0"]),
])
def test_bad_input(call, words):
    with pytest.raises(ValueError) as e:
        call()
    for w in words:
        assert w in str(e.value)
