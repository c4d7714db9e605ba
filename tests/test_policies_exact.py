"""Exact values on small hand-checked cases for the backoff schedules, the retry policy, the circuit
breaker, the retry budget and the adaptive throttle: every parameter varied away from its usual value,
both sides of every boundary, every branch (issue 15). Draws go through :class:`Draws`, a stand-in for
``random.Random`` that records what it was asked, so a jittered wait is a known number."""
import math
from fractions import Fraction

import numpy as np
import pytest

from resilience_sim.policies import (AdaptiveThrottle, CircuitBreaker, Constant, DecorrelatedJitter,
                                     EqualJitter, Exponential, FullJitter, RetryBudget, RetryPolicy, claim)


class Draws:
    """A ``random.Random`` stand-in: ``uniform(a, b)`` answers ``a + (b - a) * u`` and ``random()``
    answers ``u``, where ``u`` is the next of ``us`` (the last one repeats); every call is kept."""

    def __init__(self, *us):
        self.us, self.calls = list(us), []

    def _next(self):
        return self.us.pop(0) if len(self.us) > 1 else self.us[0]

    def uniform(self, a, b):
        self.calls.append(("uniform", a, b))
        u = self._next()
        return a + (b - a) * u

    def random(self):
        self.calls.append(("random",))
        return self._next()


class Owner:
    """Something to claim a policy for (a World stand-in)."""


# --- backoff ----------------------------------------------------------------------------------------
def test_constant_gives_its_base_and_logs_attempt_and_wait():
    b = Constant(0.25)
    assert [b.delay(1), b.delay(7)] == [0.25, 0.25]
    assert list(b.given) == [(1, 0.25), (7, 0.25)]
    assert Constant(0).delay(1) == 0                          # base 0 is allowed
    assert repr(b) == "Constant(0.25)"


def test_exponential_ceiling_with_a_multiplier_of_three_and_a_cap_that_binds():
    b = Exponential(0.5, cap=10.0, multiplier=3.0)
    assert [b.ceiling(n) for n in (1, 2, 3)] == [1.5, 4.5, 10.0]        # 13.5 capped at 10
    assert b.delay(2) == 4.5 and list(b.given) == [(2, 4.5)]
    assert Exponential(0.5, cap=4.5, multiplier=3.0).ceiling(2) == 4.5   # exactly the cap
    assert Exponential(0.5, cap=0.5).ceiling(1) == 0.5                  # cap == base is allowed
    assert Exponential(0.5, cap=9.0, multiplier=1.0).ceiling(5) == 0.5  # multiplier 1: constant
    assert b.ceiling(10 ** 6) == 10.0                                    # 3 ** 1e6 overflows: the cap
    assert repr(b) == "Exponential(base=0.5, cap=10)"
    assert repr(FullJitter(0.5, 3.0)) == "FullJitter(base=0.5, cap=3)"


@pytest.mark.parametrize("call, words", [
    (lambda: Exponential(0.5, cap=0.4), ["cap", ">= 0.5"]),
    (lambda: Exponential(0.5, cap=1.0, multiplier=0.99), ["multiplier", ">= 1"]),
    (lambda: Exponential(0.5, cap=1.0).ceiling(0), ["attempt", ">= 1"]),
    (lambda: Exponential(0.5, cap=1.0).ceiling(1.5), ["attempt", "whole number"]),
    (lambda: Constant(0.1).delay(True), ["attempt"]),
    (lambda: FullJitter(0.1, 1.0).delay(1, object()), ["rng", "random.Random"]),
])
def test_backoff_bad_input_names_the_parameter(call, words):
    with pytest.raises(ValueError) as e:
        call()
    assert all(w in str(e.value) for w in words)


def test_full_jitter_draws_between_zero_and_the_capped_ceiling():
    r = Draws(1.0)
    b = FullJitter(0.25, cap=0.75)
    assert [b.delay(1, r), b.delay(2, r)] == [0.5, 0.75]                # 2 * 0.25, then 1.0 capped
    assert r.calls == [("uniform", 0.0, 0.5), ("uniform", 0.0, 0.75)]
    assert FullJitter(0.25, cap=0.75).delay(1, Draws(0.5)) == 0.25


def test_equal_jitter_is_half_the_capped_ceiling_plus_a_draw_up_to_the_other_half():
    r = Draws(0.0, 1.0, 0.5)
    b = EqualJitter(0.25, cap=0.75)
    assert b.delay(1, r) == 0.25                                         # half of 0.5, draw 0
    assert b.delay(1, r) == 0.5                                          # half plus the whole half
    assert b.delay(3, r) == 0.5625                                       # cap 0.75: 0.375 + 0.1875
    assert r.calls == [("uniform", 0.0, 0.25), ("uniform", 0.0, 0.25), ("uniform", 0.0, 0.375)]


def test_decorrelated_jitter_draws_from_base_to_three_times_the_previous_wait_then_caps():
    r = Draws(1.0)
    b = DecorrelatedJitter(0.25, cap=2.0)
    assert b.delay(1, r) == 0.75                                         # previous None: base * 3
    assert b.delay(1, r, previous=0.5) == 1.5
    assert b.delay(9, r, previous=1.0) == 2.0                            # 3.0 capped at 2
    assert r.calls == [("uniform", 0.25, 0.75), ("uniform", 0.25, 1.5), ("uniform", 0.25, 3.0)]
    assert DecorrelatedJitter(0.25, cap=2.0).delay(1, Draws(0.0), previous=1.0) == 0.25
    assert list(b.given) == [(1, 0.75), (1, 1.5), (9, 2.0)]


@pytest.mark.parametrize("make", [FullJitter, EqualJitter, DecorrelatedJitter])
def test_every_jitter_doubles_keeps_its_log_limit_and_calls_on_event(make):
    seen = []
    b = make(0.25, cap=10.0, log_limit=1, on_event=lambda kind, entry: seen.append((kind, entry)))
    assert [b.ceiling(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]           # multiplier 2
    first, second = b.delay(1, Draws(0.0)), b.delay(2, Draws(0.0))
    assert list(b.given) == [(2, second)] and b.given.limit == 1
    assert seen == [("given", (1, first)), ("given", (2, second))]


def test_a_backoff_reset_empties_its_log_and_forgets_its_owner():
    b = Constant(0.1, log_limit=2)
    for n in (1, 2, 3):
        b.delay(n)
    assert list(b.given) == [(2, 0.1), (3, 0.1)] and b.given.total == 3
    claim(Owner(), b=b)
    b.reset()
    assert list(b.given) == [] and b.given.total == 0 and b.given.limit == 2
    claim(Owner(), b=b)                                                  # no owner left: a new one may


# --- retry policy ------------------------------------------------------------------------------------
def test_retry_stops_exactly_at_max_attempts():
    p = RetryPolicy(4, Constant(0.1))
    assert [p.should_retry(n, "error") for n in (1, 3, 4, 5)] == [True, True, False, False]
    assert p.refused == {"max attempts": 2}


def test_decide_refuses_a_wait_that_would_use_up_the_deadline_and_grants_one_just_shorter():
    p = RetryPolicy(5, Constant(0.5))
    assert p.decide(1.0, 1, "error", remaining=0.5) is None              # 0.5 >= 0.5: refused
    assert p.decide(1.0, 1, "error", remaining=0.5000001) == 0.5
    assert p.decide(1.0, 1, "error", remaining=math.inf) == 0.5
    assert p.decide(1.0, 1, "error") == 0.5                              # no deadline
    assert p.decide(2.0, 1, "error", remaining=-1.0) is None             # already past
    assert list(p.refusals) == [(1.0, 1, "error", "deadline"), (2.0, 1, "error", "deadline")]
    assert list(p.retries) == [(1.0, 1, "error")] * 3


@pytest.mark.parametrize("remaining, expected", [
    (np.float64(np.inf), 0.5), (np.float64(0.75), 0.5), (Fraction(1, 2), None), (-math.inf, None), (1, 0.5),
])
def test_remaining_may_be_any_real_number_infinities_included(remaining, expected):
    assert RetryPolicy(3, Constant(0.5)).decide(0.0, 1, "error", remaining=remaining) == expected


@pytest.mark.parametrize("remaining", [math.nan, np.float64(np.nan), "1", True])
def test_remaining_that_is_not_a_number_is_refused_by_name(remaining):
    with pytest.raises(ValueError, match="^remaining must be a number"):
        RetryPolicy(3, Constant(0.5)).decide(0.0, 1, "error", remaining=remaining)


def test_decide_hands_previous_to_the_backoff_and_honours_retry_after():
    r = Draws(1.0)
    p = RetryPolicy(5, DecorrelatedJitter(0.25, cap=10.0))
    assert p.decide(0.0, 2, "timeout", r, previous=2.0) == 6.0          # uniform(0.25, 3 * 2.0)
    assert r.calls == [("uniform", 0.25, 6.0)]
    q = RetryPolicy(5, Constant(0.1))
    assert q.decide(0.0, 1, "overload", retry_after=2.0) == 2.0         # the server's floor
    assert q.decide(0.0, 1, "overload", retry_after=0.05) == 0.1        # a lower hint changes nothing
    assert q.decide(0.0, 1, "overload", retry_after=2.0, remaining=2.0) is None    # the floor hits the deadline
    assert q.decide(0.0, 1, "overload", retry_after=2.0, remaining=2.5) == 2.0
    assert q.refused == {"deadline": 1}


def test_decide_refuses_for_each_reason_and_never_asks_the_backoff_then():
    p = RetryPolicy(2, Constant(0.1))
    assert p.decide(0.0, 2, "error") is None
    assert p.decide(0.0, 1, "not found") is None
    assert p.decide(0.0, 1, "error", idempotent=False) is None
    assert p.decide(0.0, 1, "error", idempotent=False, idempotency_key="k") == 0.1
    assert [w for *_, w in p.refusals] == ["max attempts", "not retryable", "not idempotent"]
    assert list(p.backoff.given) == [(1, 0.1)]                          # one wait handed out


def test_should_retry_with_now_moves_the_clock_and_decide_needs_it():
    p = RetryPolicy(3, Constant(0.1))
    assert p.should_retry(1, "error", now=5.0)
    with pytest.raises(ValueError, match="now must not go back"):
        p.should_retry(1, "error", now=4.0)
    assert p.should_retry(1, "error")                                    # without now: no clock
    assert list(p.retries) == [(5.0, 1, "error"), (None, 1, "error")]
    with pytest.raises(ValueError, match="now must not go back"):
        p.decide(4.0, 1, "error")


def test_a_retry_policy_claims_and_resets_its_backoff_too():
    backoff = Constant(0.1)
    p = RetryPolicy(3, backoff)
    first, second = Owner(), Owner()
    claim(first, retry=p)
    with pytest.raises(ValueError, match="retry"):
        claim(second, retry=p)
    with pytest.raises(ValueError, match="^b: this Constant"):
        claim(second, b=backoff)                     # the backoff went with it
    p.decide(1.0, 1, "error")
    p.decide(1.0, 3, "error")
    p.reset()
    assert list(p.retries) == list(p.refusals) == list(backoff.given) == [] and p.refused == {}
    claim(second, retry=p)                           # both forgot their owner
    p.decide(0.0, 1, "error")                        # and the clock
    assert repr(p) == "RetryPolicy(max_attempts=3, backoff=Constant(0.1))"


def test_a_second_owner_is_refused_for_the_backoff_alone_too():
    backoff = Constant(0.1)
    p = RetryPolicy(3, backoff)
    claim(Owner(), b=backoff)
    with pytest.raises(ValueError, match="retry.backoff"):
        claim(Owner(), retry=p)


def test_claiming_a_retry_policy_again_for_its_owner_is_fine():
    p = RetryPolicy(3, Constant(0.1))
    owner = Owner()
    claim(owner, retry=p)
    claim(owner, retry=p)
    claim(owner, b=p.backoff)                                            # the backoff is the owner's too
    p.claim(owner)


# --- circuit breaker ---------------------------------------------------------------------------------
def calls(b, now, outcomes, duration=0.0):
    """Allow and record one call per outcome (True: success) at ``now``."""
    for success in outcomes:
        p = b.allow(now)
        assert p
        b.record(now, success, duration, permit=p)


def test_slow_calls_roll_out_of_a_count_window():
    b = CircuitBreaker(slow_call_rate=0.6, slow_call_duration=1.0, window=2, min_calls=2)
    calls(b, 0.0, [True], duration=2.0)
    calls(b, 0.0, [True], duration=0.5)
    assert b.rates(0.0) == (2, 0.0, 0.5) and b.state(0.0) == "closed"
    calls(b, 0.0, [True], duration=0.5)                        # the slow one leaves
    assert b.rates(0.0) == (2, 0.0, 0.0)
    calls(b, 0.0, [True], duration=2.0)
    assert b.rates(0.0) == (2, 0.0, 0.5) and b.state(0.0) == "closed"   # 1 of 2, not 2 of 3
    calls(b, 0.0, [True], duration=2.0)
    assert b.state(0.0) == "open" and list(b.trips) == [(0.0, "slow-call rate")]


def test_failures_roll_out_of_a_count_window_at_the_exact_size():
    b = CircuitBreaker(failure_rate=0.5, window=3, min_calls=3)
    calls(b, 0.0, [False, True, True])
    assert b.rates(0.0) == (3, pytest.approx(1 / 3), 0.0)
    calls(b, 0.0, [True])
    assert b.rates(0.0) == (3, 0.0, 0.0)
    calls(b, 0.0, [False])
    assert b.rates(0.0) == (3, pytest.approx(1 / 3), 0.0) and b.state(0.0) == "closed"
    calls(b, 0.0, [False])
    assert b.state(0.0) == "open" and b.trips[-1] == (0.0, "failure rate")


def test_min_calls_is_reached_at_equality_for_the_slow_rule_too():
    b = CircuitBreaker(slow_call_rate=1.0, slow_call_duration=1.0, window=5, min_calls=3)
    calls(b, 0.0, [True, True], duration=1.5)
    assert b.state(0.0) == "closed"
    calls(b, 0.0, [True], duration=1.5)
    assert b.state(0.0) == "open"


def test_slow_means_strictly_longer_than_the_slow_call_duration():
    b = CircuitBreaker(slow_call_rate=1.0, slow_call_duration=0.5, window=1, min_calls=1)
    calls(b, 0.0, [True], duration=0.5)
    assert b.rates(0.0) == (1, 0.0, 0.0)
    calls(b, 0.0, [True], duration=0.5000001)
    assert b.state(0.0) == "open"


def test_a_fast_probe_under_the_slow_call_rule_closes_it():
    b = CircuitBreaker(slow_call_rate=0.5, slow_call_duration=1.0, window=2, min_calls=2, open_for=5.0)
    calls(b, 0.0, [True, True], duration=2.0)
    assert b.state(0.0) == "open"
    p = b.allow(5.0)
    assert p and p.probe
    b.record(5.5, True, 0.5, permit=p)
    assert b.state(5.5) == "closed" and [t for t, _ in b.trips] == [0.0]


def test_a_slow_successful_probe_closes_it_without_the_slow_rule():
    b = CircuitBreaker(failure_rate=0.5, window=2, min_calls=2, open_for=5.0)
    calls(b, 0.0, [False, False])
    p = b.allow(5.0)
    b.record(100.0, True, 99.0, permit=p)                     # slow, but no slow rule to break
    assert b.state(100.0) == "closed"


def test_a_time_window_trips_on_the_slow_rule_with_old_calls_gone():
    b = CircuitBreaker(slow_call_rate=0.5, slow_call_duration=1.0, window=10.0, window_type="time",
                       min_calls=2)
    calls(b, 0.0, [True], duration=0.1)
    calls(b, 0.0, [True], duration=0.1)
    calls(b, 10.0, [True], duration=5.0)                       # the two fast ones leave at 10
    assert b.rates(10.0) == (1, 0.0, 1.0) and b.state(10.0) == "closed"    # 1 call < min_calls
    calls(b, 19.9, [True], duration=0.1)
    assert b.state(19.9) == "open" and b.trips[-1] == (19.9, "slow-call rate")


def test_cancel_with_two_half_open_probes_gives_back_one_probe_at_a_time():
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0, half_open_probes=2)
    calls(b, 0.0, [False])
    p1, p2 = b.allow(1.0), b.allow(1.0)
    assert p1 and p2 and not b.allow(1.0)
    b.cancel(1.0, permit=p1)
    p3 = b.allow(1.0)
    assert p3 and not b.allow(1.0)                              # one back, not two
    b.record(1.1, True, permit=p2)
    assert b.state(1.1) == "half-open"
    b.record(1.2, True, permit=p3)
    assert b.state(1.2) == "closed"
    assert b.rejected == 2


def test_cancel_without_a_permit_gives_back_the_newest_probe():
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0, half_open_probes=2)
    calls(b, 0.0, [False])
    assert b.allow(1.0) and b.allow(1.0)
    b.cancel(1.0)
    b.cancel(1.0)
    assert b.allow(1.0) and b.allow(1.0) and not b.allow(1.0)


def test_cancel_without_a_permit_takes_the_probe_not_a_call_from_an_earlier_period():
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0, half_open_probes=1)
    assert b.allow(0.0)                                          # still out when it trips
    calls(b, 0.0, [False])
    assert b.allow(1.0) and not b.allow(1.0)
    b.cancel(1.0)                                                # the newest: the probe
    assert b.allow(1.0)
    b.record(1.5, True)                                          # the oldest: the call of period 0
    assert b.late == 1 and b.state(1.5) == "half-open"


def test_cancelling_a_call_allowed_while_closed_frees_no_probe():
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0, half_open_probes=1)
    old = b.allow(0.0)                                           # in flight while it trips
    calls(b, 0.0, [False])
    probe = b.allow(1.0)
    assert probe and not b.allow(1.0)
    b.cancel(1.0, permit=old)                                    # an earlier period's permit
    assert not b.allow(1.0)                                      # the probe slot stays taken
    b.record(1.5, True, permit=probe)
    assert b.state(1.5) == "closed"


def test_cancel_while_closed_records_nothing():
    b = CircuitBreaker(consecutive_failures=2, open_for=1.0)
    calls(b, 0.0, [False])
    p = b.allow(0.5)
    b.cancel(0.5, permit=p)
    calls(b, 0.6, [True])
    calls(b, 0.7, [False])
    assert b.state(0.7) == "closed" and b.late == 0              # the success broke the run of 2


def test_a_result_without_any_permit_outstanding():
    closed = CircuitBreaker(consecutive_failures=1, open_for=1.0)
    closed.record(0.0, False)                                    # counts as a call allowed just now
    assert closed.state(0.0) == "open" and closed.late == 0
    half = CircuitBreaker(consecutive_failures=1, open_for=1.0)
    half.record(0.0, False)
    half.record(1.0, True)                                       # half-open, no probe out: late
    assert half.late == 1 and half.state(1.0) == "half-open"
    half.record(1.0, False)
    assert half.late == 2 and half.state(1.0) == "half-open"


def test_a_late_result_neither_trips_nor_counts():
    b = CircuitBreaker(consecutive_failures=2, failure_rate=1.0, window=2, min_calls=1, open_for=1.0)
    old = b.allow(0.0)
    calls(b, 0.0, [False])                                       # failure rate 1 of 1: open
    p = b.allow(1.0)
    b.record(1.0, True, permit=p)                                # closed again
    b.record(1.5, False, permit=old)                             # from the first period: late
    assert b.late == 1 and b.state(1.5) == "closed" and b.rates(1.5) == (0, 0.0, 0.0)


def test_consecutive_failures_trip_exactly_at_the_count():
    b = CircuitBreaker(consecutive_failures=3, open_for=1.0)
    calls(b, 0.0, [False, False])
    assert b.state(0.0) == "closed"
    calls(b, 0.0, [False])
    assert b.state(0.0) == "open" and b.trips[-1] == (0.0, "consecutive failures")


def test_open_lasts_exactly_open_for_from_the_trip():
    b = CircuitBreaker(consecutive_failures=1, open_for=2.5, start=3.0)
    calls(b, 4.0, [False])
    assert b.state(6.49) == "open"
    assert not b.allow(6.49) and b.rejected == 1 and list(b.rejections) == [6.49]
    assert b.state(6.5) == "half-open"
    assert list(b.history) == [(3.0, "closed"), (4.0, "open"), (6.5, "half-open")]
    assert repr(b) == "CircuitBreaker(state='half-open', open_for=2.5)"


def test_a_failed_probe_reopens_and_a_slow_failed_probe_says_failed():
    b = CircuitBreaker(slow_call_rate=0.5, slow_call_duration=1.0, failure_rate=0.5, window=2,
                       min_calls=2, open_for=1.0)
    calls(b, 0.0, [False, False])
    p = b.allow(1.0)
    b.record(3.0, False, 2.0, permit=p)
    assert b.trips[-1] == (3.0, "probe failed") and b.state(3.9) == "open" and b.state(4.0) == "half-open"


def test_rates_count_only_the_closed_window():
    b = CircuitBreaker(failure_rate=0.5, window=4, min_calls=4)
    calls(b, 0.0, [False, True, True])
    assert b.rates(0.0) == (3, pytest.approx(1 / 3), 0.0)
    calls(b, 0.0, [False])
    assert b.state(0.0) == "open" and b.rates(0.0) == (0, 0.0, 0.0)


def test_reset_returns_it_to_closed_at_its_start():
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0, start=2.0)
    calls(b, 3.0, [False])
    b.allow(3.5)
    b.reset()
    assert b.state(2.0) == "closed" and list(b.history) == [(2.0, "closed")]
    assert list(b.trips) == [] and b.rejected == 0 and b.late == 0 and list(b.rejections) == []
    with pytest.raises(ValueError, match="now must not go back"):
        b.state(1.0)


def test_a_record_checks_success_and_duration():
    b = CircuitBreaker(consecutive_failures=1)
    with pytest.raises(ValueError, match="success"):
        b.record(0.0, "no")
    with pytest.raises(ValueError, match="duration"):
        b.record(0.0, True, -1.0)
    with pytest.raises(ValueError, match="success"):
        b.record(0.0, 1)                                         # 1 is not True
    assert b.late == 0 and b.state(0.0) == "closed"


# --- the breaker's books of permits (which period a result belongs to) -------------------------------
def test_a_result_whose_place_was_taken_is_late_even_while_open():
    b = CircuitBreaker(consecutive_failures=1, open_for=10.0)
    p1, p2 = b.allow(0.0), b.allow(0.0)
    b.record(0.0, False)                                  # no permit: resolves one of p1, p2; trips
    b.record(0.5, True, permit=p1)
    b.record(0.5, True, permit=p2)                        # its place was taken: late, not a probe
    assert b.late == 2 and b.state(0.5) == "open"


def test_late_results_clear_their_periods_so_a_later_result_without_a_permit_counts():
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0)
    a1, a2, z = b.allow(0.0), b.allow(0.0), b.allow(0.0)
    b.record(0.0, False, permit=z)                        # trips with two calls still out
    b.record(0.5, True, permit=a1)
    b.record(0.5, True, permit=a2)
    assert b.late == 2
    assert b.allow(1.0)
    b.record(1.0, True)                                   # no permit: the probe's, nothing older is out
    assert b.state(1.0) == "closed" and b.late == 2


def test_an_older_half_open_period_is_cleared_by_its_own_permit():
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0, half_open_probes=2)
    calls(b, 0.0, [False])
    q1, q2 = b.allow(1.0), b.allow(1.0)
    b.record(1.0, False, permit=q1)                       # reopens with q2 out
    b.record(1.5, True, permit=q2)                        # late
    assert b.late == 1 and b.allow(2.0) and b.allow(2.0)
    b.record(2.0, True)
    b.record(2.0, True)                                   # both without permits: this period's probes
    assert b.state(2.0) == "closed" and b.late == 1


def test_a_cancel_without_a_permit_with_only_an_older_call_out_changes_nothing_now():
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0)
    old = b.allow(0.0)
    calls(b, 0.0, [False])
    b.cancel(0.5)                                         # nothing current: the older call's place
    b.record(0.6, True, permit=old)
    assert b.late == 1 and b.state(0.6) == "open"
    assert b.allow(1.0) and not b.allow(1.0)              # the probe is untouched


def test_permits_say_whether_they_are_probes():
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0)
    p = b.allow(0.0)
    assert p.probe is False and p.period == 0 and p.at == 0.0
    b.record(0.0, False, permit=p)
    q = b.allow(1.0)
    assert q.probe is True and q.period == 2 and q.at == 1.0


def test_the_breaker_defaults_min_calls_10_open_for_30_and_duration_0():
    b = CircuitBreaker(failure_rate=1.0)
    calls(b, 0.0, [False] * 9)
    assert b.state(0.0) == "closed"
    calls(b, 0.0, [False])
    assert b.state(29.99) == "open" and b.state(30.0) == "half-open"
    slow = CircuitBreaker(slow_call_rate=1.0, slow_call_duration=0.5, window=1, min_calls=1)
    p = slow.allow(0.0)
    slow.record(0.0, True, permit=p)                      # no duration given: 0, not slow
    assert slow.state(0.0) == "closed"
    with pytest.raises(ValueError, match="^consecutive_failures must"):
        CircuitBreaker(consecutive_failures=0)


@pytest.mark.parametrize("kw, message", [
    ({"failure_rate": 0.0}, "^failure_rate must be in"),
    ({"slow_call_rate": 1.5, "slow_call_duration": 1.0}, "^slow_call_rate must be in"),
    ({"slow_call_rate": 0.5, "slow_call_duration": 0.0}, "^slow_call_duration must be > 0"),
    ({"failure_rate": 0.5, "window_type": "calls"}, "^window_type must be one of"),
    ({"failure_rate": 0.5, "window": 0}, "^window must be a whole number"),
    ({"failure_rate": 0.5, "window": 5, "min_calls": 6}, r"^min_calls must be a whole number in \[1, 5\]"),
    ({"failure_rate": 0.5, "window": 0.0, "window_type": "time"}, "^window must be > 0"),
    ({"failure_rate": 0.5, "window": 5.0, "window_type": "time", "min_calls": 0}, "^min_calls must"),
    ({"failure_rate": 0.5, "open_for": 0.0}, "^open_for must"),
    ({"failure_rate": 0.5, "half_open_probes": 0}, "^half_open_probes must"),
    ({"failure_rate": 0.5, "start": math.nan}, "^start must"),
])
def test_breaker_settings_are_refused_by_name(kw, message):
    with pytest.raises(ValueError, match=message):
        CircuitBreaker(**kw)


# --- retry budget ------------------------------------------------------------------------------------
def test_budget_allowance_is_ratio_times_requests_plus_the_minimum_over_the_window():
    b = RetryBudget(ratio=0.25, window=4.0, min_per_second=0.5)
    assert b.allowance(0.0) == 2.0                               # 0.5 / s over 4 s
    for t in (0.0, 1.0, 2.0, 3.0):
        b.record_request(t)
    assert b.allowance(3.0) == 3.0 and b.requests == 4
    assert b.allowance(4.0) == 2.75                              # the request at 0 left at 4
    assert repr(b) == "RetryBudget(ratio=0.25, window=4, min_per_second=0.5)"


def test_budget_grants_while_retries_are_below_the_allowance_and_logs_each_denial():
    b = RetryBudget(ratio=0.5, window=10.0, min_per_second=0.0)
    for _ in range(4):
        b.record_request(0.0)                                    # allowance 2
    assert b.can_retry(0.0)
    b.record_retry(0.0)
    assert b.can_retry(0.5)
    b.record_retry(0.5)
    assert not b.can_retry(1.0) and not b.can_retry(2.0)         # 2 of 2 used
    assert list(b.denied) == [1.0, 2.0] and b.retries == 2
    assert not b.can_retry(9.9)
    assert b.allowance(10.0) == 0.0                              # the requests left at exactly 10
    assert not b.can_retry(10.0)
    b.record_request(10.2)
    assert b.allowance(10.5) == 0.5                              # one request in the window earns 0.5
    assert b.can_retry(10.5)                                     # both retries have left: 0 < 0.5


def test_budget_reset_forgets_everything():
    b = RetryBudget(ratio=1.0, window=1.0, min_per_second=0.0)
    b.record_request(5.0)
    b.record_retry(5.0)
    b.can_retry(5.0)
    b.reset()
    assert b.requests == b.retries == 0 and list(b.denied) == [] and b.allowance(0.0) == 0.0


# --- adaptive throttle -------------------------------------------------------------------------------
def test_accepted_requests_age_out_of_the_throttle_window():
    t = AdaptiveThrottle(k=2.0, window=10.0)
    for _ in range(5):
        t.record(0.0, True)
    for _ in range(10):
        t.record(5.0, False)
    assert t.rejection_probability(5.0) == pytest.approx(5 / 16)   # (15 - 2 * 5) / 16
    assert t.rejection_probability(9.99) == pytest.approx(5 / 16)
    assert t.rejection_probability(10.0) == pytest.approx(10 / 11)  # the accepts left at 10
    assert t.rejection_probability(15.0) == 0.0                      # everything left


def test_the_throttle_rejects_when_the_draw_is_below_p_and_only_then():
    t = AdaptiveThrottle(k=2.0, window=100.0)
    t.record(0.0, False)                                        # p = (1 - 0) / 2
    assert t.rejection_probability(0.0) == 0.5
    r = Draws(0.5, 0.49)
    assert t.allow(1.0, r)                                      # 0.5 is not < 0.5: sent
    assert t.allowed == 1 and list(t.rejected) == []
    assert not t.allow(2.0, r)                                  # 0.49 < 0.5: rejected locally
    assert list(t.rejected) == [2.0] and t.allowed == 1
    assert t.rejection_probability(2.0) == pytest.approx(2 / 3)   # the rejection is a request too
    assert r.calls == [("random",), ("random",)]


def test_the_throttle_draws_nothing_while_p_is_zero():
    t = AdaptiveThrottle(k=2.0, window=100.0)
    t.record(0.0, True)
    t.record(0.0, False)
    t.record(0.0, False)                                        # 3 - 2 * 1 = 1 > 0: p = 1/4
    assert t.rejection_probability(0.0) == 0.25
    t2 = AdaptiveThrottle(k=3.0, window=100.0)                  # the same with K = 3: p = 0
    for accepted in (True, False, False):
        t2.record(0.0, accepted)
    assert t2.rejection_probability(0.0) == 0.0
    r = Draws(0.0)
    assert t2.allow(0.0, r) and r.calls == [] and t2.allowed == 1
    assert t2.allow(0.0, None)                                  # no draw: no rng needed


def test_throttle_cancel_withdraws_an_allowed_request_and_keeps_the_clock():
    t = AdaptiveThrottle(k=2.0, window=10.0)
    assert t.allow(1.0, Draws(0.0)) and t.allow(1.0, Draws(0.0))
    t.cancel(2.0)
    assert t.allowed == 1 and t.rejection_probability(2.0) == 0.0
    with pytest.raises(ValueError, match="now must not go back"):
        t.cancel(1.5)
    with pytest.raises(ValueError, match="now must not go back"):
        t.record(1.5, True)
    with pytest.raises(ValueError, match="accepted"):
        t.record(3.0, "yes")


def test_throttle_bad_rng_and_reset():
    t = AdaptiveThrottle(k=1.0, window=5.0)
    t.record(0.0, False)
    with pytest.raises(ValueError, match="rng"):
        t.allow(0.0, object())
    assert not t.allow(0.0, Draws(0.0))
    t.reset()
    assert t.allowed == 0 and list(t.rejected) == [] and t.rejection_probability(0.0) == 0.0
    assert repr(t) == "AdaptiveThrottle(k=1, window=5)"
    with pytest.raises(ValueError, match="k"):
        AdaptiveThrottle(k=0.99)


def test_the_defaults_of_the_budget_and_the_throttle():
    assert RetryBudget().allowance(0.0) == 10.0                          # 1 / s over 10 s
    b = RetryBudget()
    for _ in range(10):
        b.record_request(0.0)
    assert b.allowance(0.0) == 11.0 and b.allowance(9.99) == 11.0 and b.allowance(10.0) == 10.0
    t = AdaptiveThrottle()
    assert (t.k, t.window) == (2.0, 120.0)
    t.record(0.0, True)
    for _ in range(3):
        t.record(0.0, False)
    assert t.rejection_probability(119.9) == pytest.approx(2 / 5)       # (4 - 2) / 5, K = 2
    assert t.rejection_probability(120.0) == 0.0


def test_a_local_rejection_is_a_request_at_its_own_time():
    t = AdaptiveThrottle(k=2.0, window=1.0)
    t.record(10.0, False)
    assert not t.allow(10.5, Draws(0.0))                              # p = 1/2
    assert t.rejection_probability(10.9) == pytest.approx(2 / 3)
    assert t.rejection_probability(11.0) == pytest.approx(1 / 2)      # the refusal at 10 left
    assert t.rejection_probability(11.5) == 0.0                       # and the rejection at 10.5


@pytest.mark.parametrize("call, message", [
    (lambda: RetryBudget(ratio=1.5), "^ratio must be in"),
    (lambda: RetryBudget(window=0.0), "^window must"),
    (lambda: RetryBudget(min_per_second=-1.0), "^min_per_second must"),
    (lambda: AdaptiveThrottle(k=0.5), "^k must"),
    (lambda: AdaptiveThrottle(window=0.0), "^window must"),
])
def test_budget_and_throttle_settings_are_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()
