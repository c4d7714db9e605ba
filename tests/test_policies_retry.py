"""Retry policy: attempts, retryable reasons, idempotency, delays, the deadline."""
import random

import pytest

from resilience_sim.core.reasons import REASONS, TRANSIENT
from resilience_sim.policies import RETRYABLE, Constant, Exponential, FullJitter, RetryPolicy


def policy(max_attempts=3, **kw):
    return RetryPolicy(max_attempts, Exponential(0.1, cap=1.0), **kw)


def test_max_attempts_counts_the_first_call():
    p = policy(3)
    assert p.should_retry(1, "error")        # after the 1st call: a 2nd
    assert p.should_retry(2, "error")        # after the 2nd: a 3rd
    assert not p.should_retry(3, "error")    # 3 calls in all
    assert not RetryPolicy(1, Constant(0)).should_retry(1, "error")   # 1 = never retry


def test_only_retryable_reasons_are_retried():
    p = policy()
    for reason in ("error", "timeout", "rejected", "overload", "down"):
        assert p.should_retry(1, reason)
    for reason in ("circuit open", "bulkhead full", "not found", "bad request"):
        assert not p.should_retry(1, reason)
    assert "circuit open" not in RETRYABLE


def test_custom_retry_on():
    p = policy(retry_on={"timeout"})
    assert p.should_retry(1, "timeout") and not p.should_retry(1, "error")
    assert not policy(retry_on=()).should_retry(1, "error")   # empty: never retry


def test_non_idempotent_calls_need_an_idempotency_key():
    p = policy()
    assert not p.should_retry(1, "timeout", idempotent=False)
    assert not p.should_retry(1, "timeout", idempotent=False, idempotency_key="")
    assert p.should_retry(1, "timeout", idempotent=False, idempotency_key="order-42")
    assert p.should_retry(1, "timeout", idempotent=True)


def test_decisions_are_logged_with_reasons():
    p = policy(2)
    p.should_retry(1, "error", now=1.0)
    p.should_retry(2, "error", now=2.0)
    p.should_retry(1, "bad request", now=3.0)
    p.should_retry(1, "error", idempotent=False, now=4.0)
    assert p.retries == [(1.0, 1, "error")]
    assert [r[3] for r in p.refusals] == ["max attempts", "not retryable", "not idempotent"]
    assert p.refused == {"max attempts": 1, "not retryable": 1, "not idempotent": 1}


def test_next_delay_after_attempt_n_is_backoff_delay_n():
    p = policy(5)
    assert [p.next_delay(n) for n in (1, 2, 3)] == pytest.approx([0.2, 0.4, 0.8])


def test_retry_after_is_a_floor_on_the_wait():
    p = policy()
    assert p.next_delay(1, retry_after=3.0) == 3.0
    assert p.next_delay(3, retry_after=0.1) == pytest.approx(0.8)


def test_decide_returns_the_wait_or_none():
    p, r = RetryPolicy(4, FullJitter(0.1, cap=1.0)), random.Random(1)
    d = p.decide(0.0, 1, "error", r)
    assert 0.0 <= d <= 0.2
    assert p.decide(0.5, 4, "error", r) is None                        # out of attempts
    assert p.decide(0.5, 1, "bad request", r) is None                  # not retryable
    assert p.decide(0.5, 1, "error", r, remaining=0.0001) is None      # would outlast the deadline
    assert p.refused["deadline"] == 1 and len(p.retries) == 1


def test_a_whole_retry_loop_makes_at_most_max_attempts_calls():
    p, r, calls, delay = RetryPolicy(4, FullJitter(0.05, cap=1.0)), random.Random(2), 0, None
    while True:
        calls += 1                                   # the call always fails
        delay = p.decide(0.0, calls, "error", r, previous=delay)
        if delay is None:
            break
    assert calls == 4 and len(p.retries) == 3


@pytest.mark.parametrize("call, words", [
    (lambda: RetryPolicy(0, Constant(0)), ["max_attempts", "[1, 10000]"]),
    (lambda: RetryPolicy(2.5, Constant(0)), ["max_attempts", "whole number"]),
    (lambda: RetryPolicy(3, 0.1), ["backoff", "schedule"]),
    (lambda: RetryPolicy(3, Constant(0), retry_on="error"), ["retry_on", "set of reasons", "{'error'}"]),
    (lambda: RetryPolicy(3, Constant(0), retry_on={1}), ["retry_on"]),
    (lambda: policy().should_retry(0, "error"), ["attempt", ">= 1"]),
    (lambda: policy().next_delay(1, retry_after=-1), ["retry_after", ">= 0"]),
])
def test_bad_input(call, words):
    with pytest.raises(ValueError) as e:
        call()
    for w in words:
        assert w in str(e.value)


# --- one vocabulary of reasons ------------------------------------------------------------------------
def test_retryable_is_the_cores_transient_reasons():
    assert RETRYABLE is TRANSIENT and policy().retry_on == TRANSIENT


def test_a_typo_in_retry_on_is_refused_naming_the_parameter_and_the_known_reasons():
    with pytest.raises(ValueError) as e:
        policy(retry_on={"timout"})
    message = str(e.value)
    assert message.startswith("retry_on") and "'timout'" in message
    assert all(repr(r) in message for r in REASONS)


@pytest.mark.parametrize("ask", [
    lambda p: p.should_retry(1, "timout"),
    lambda p: p.decide(0.0, 1, "timout", random.Random(1)),
    lambda p: p.should_retry(1, None),
])
def test_a_typo_in_reason_is_refused_naming_the_parameter_and_the_known_reasons(ask):
    p = policy()
    with pytest.raises(ValueError) as e:
        ask(p)
    message = str(e.value)
    assert message.startswith("reason") and all(repr(r) in message for r in REASONS)
    assert len(p.retries) == len(p.refusals) == 0          # nothing logged for a refused question


def test_every_known_reason_is_accepted_in_retry_on_and_as_a_reason():
    p = policy(retry_on=REASONS)
    assert all(p.should_retry(1, r) for r in sorted(REASONS))


# --- bounded logs -------------------------------------------------------------------------------------
def test_logs_are_bounded_while_refused_stays_exact():
    p = policy(2, log_limit=10)
    for i in range(1000):
        p.should_retry(1, "error", now=float(i))           # granted
        p.should_retry(2, "error", now=float(i))           # max attempts
        p.should_retry(1, "bad request", now=float(i))     # not retryable
    assert len(p.retries) == 10 and p.retries.total == 1000 and p.retries[0] == (990.0, 1, "error")
    assert len(p.refusals) == 10 and p.refusals.dropped == 1990
    assert p.refused == {"max attempts": 1000, "not retryable": 1000}


def test_on_event_gets_every_decision_in_order():
    seen = []
    p = policy(2, on_event=lambda kind, entry: seen.append((kind, entry)))
    p.should_retry(1, "error", now=1.0)
    p.should_retry(2, "error", now=2.0)
    assert seen == [("retries", (1.0, 1, "error")), ("refusals", (2.0, 2, "error", "max attempts"))]


@pytest.mark.parametrize("kw, words", [
    ({"log_limit": -1}, ["log_limit", ">= 0", "None", "-1"]),
    ({"log_limit": 2.5}, ["log_limit", "whole number"]),
    ({"on_event": 3}, ["on_event", "function", "3"]),
])
def test_bad_log_settings_are_refused(kw, words):
    with pytest.raises(ValueError) as e:
        policy(**kw)
    assert all(w in str(e.value) for w in words)
