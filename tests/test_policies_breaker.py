"""Circuit breaker: both trip rules, open -> half-open -> closed, probes, resets, bounded logs, bad input."""
import math

import pytest

from resilience_sim.policies import CircuitBreaker


def fail(b, now, n=1, duration=0.0):
    for _ in range(n):
        assert b.allow(now)
        b.record(now, success=False, duration=duration)


def ok(b, now, n=1, duration=0.0):
    for _ in range(n):
        assert b.allow(now)
        b.record(now, success=True, duration=duration)


def test_consecutive_failures_trip_it():
    b = CircuitBreaker(consecutive_failures=3, open_for=10.0)
    fail(b, 1.0, 2)
    ok(b, 1.5)                      # a success resets the run
    fail(b, 2.0, 2)
    assert b.state(2.0) == "closed"
    fail(b, 2.5)
    assert b.state(2.5) == "open"
    assert b.trips == [(2.5, "consecutive failures")]
    assert not b.allow(3.0) and b.rejected == 1 and b.rejections == [3.0]


def test_failure_rate_needs_the_minimum_number_of_calls():
    b = CircuitBreaker(failure_rate=0.5, window=10, min_calls=5)
    fail(b, 0.0, 4)                 # 100% failures, but only 4 calls
    assert b.state(0.0) == "closed"
    ok(b, 0.0)                      # 5 calls, 80% failed
    assert b.state(0.0) == "open" and b.trips[-1][1] == "failure rate"


def test_failure_rate_threshold_is_reached_at_equality():
    b = CircuitBreaker(failure_rate=0.3, window=10, min_calls=10)
    ok(b, 0.0, 7)
    fail(b, 0.0, 2)
    assert b.state(0.0) == "closed"
    fail(b, 0.0, 1)                 # 3 of 10 = 0.3
    assert b.state(0.0) == "open"


def test_count_window_forgets_the_oldest_calls():
    b = CircuitBreaker(failure_rate=0.5, window=4, min_calls=4)
    fail(b, 0.0, 1)
    ok(b, 0.0, 3)                   # 1 of 4
    ok(b, 0.0, 1)                   # the failure slides out
    fail(b, 0.0, 1)                 # 1 of 4 again, not 2 of 5
    assert b.rates(0.0) == (4, 0.25, 0.0)
    fail(b, 0.0, 1)                 # 2 of 4
    assert b.state(0.0) == "open"


def test_time_window_forgets_old_calls():
    b = CircuitBreaker(failure_rate=0.5, window=10.0, window_type="time", min_calls=4)
    fail(b, 0.0, 2)
    ok(b, 5.0, 1)
    assert b.rates(5.0) == (3, pytest.approx(2 / 3), 0.0)
    assert b.rates(10.0) == (1, 0.0, 0.0)    # the calls at t=0 left at t=10
    ok(b, 10.0, 3)
    assert b.state(10.0) == "closed"


def test_time_window_min_calls_counts_only_recent_calls():
    b = CircuitBreaker(failure_rate=0.5, window=10.0, window_type="time", min_calls=3)
    fail(b, 0.0, 2)
    fail(b, 10.0, 1)                # the two at t=0 have left: 1 call in the window
    assert b.state(10.0) == "closed"
    fail(b, 11.0, 1)
    ok(b, 12.0, 1)                  # 2 failures of 3
    assert b.state(12.0) == "open"


def test_slow_call_rate_trips_it():
    b = CircuitBreaker(slow_call_rate=0.5, slow_call_duration=1.0, window=4, min_calls=4)
    ok(b, 0.0, 2, duration=0.2)
    ok(b, 0.0, 1, duration=1.0)     # exactly the threshold is not slow
    assert b.state(0.0) == "closed"
    ok(b, 0.0, 1, duration=1.5)     # slow, although it succeeded
    assert b.state(0.0) == "closed" # 1 of 4 slow
    ok(b, 0.0, 1, duration=3.0)     # 2 of the last 4 are slow
    assert b.state(0.0) == "open" and b.trips[-1][1] == "slow-call rate"


def test_never_stuck_open_goes_half_open_after_open_for():
    b = CircuitBreaker(consecutive_failures=1, open_for=30.0)
    fail(b, 100.0)
    assert b.state(129.9) == "open"
    assert b.state(130.0) == "half-open"
    assert b.history == [(0.0, "closed"), (100.0, "open"), (130.0, "half-open")]


def test_half_open_is_noted_at_the_moment_it_happened_even_if_asked_later():
    b = CircuitBreaker(consecutive_failures=1, open_for=5.0)
    fail(b, 10.0)
    assert b.allow(1000.0)          # nobody asked for a long time
    assert b.history[-1] == (15.0, "half-open")


def test_half_open_limits_probes_and_closes_after_all_succeed():
    b = CircuitBreaker(consecutive_failures=1, open_for=10.0, half_open_probes=2)
    fail(b, 0.0)
    assert b.allow(10.0) and b.allow(10.0)
    assert not b.allow(10.0)        # a third probe is refused
    b.record(10.5, True)
    assert b.state(10.5) == "half-open" and not b.allow(10.5)
    b.record(11.0, True)
    assert b.state(11.0) == "closed"
    assert [s for _, s in b.history] == ["closed", "open", "half-open", "closed"]


def test_a_failed_probe_reopens_it_for_another_open_for():
    b = CircuitBreaker(consecutive_failures=1, open_for=10.0, half_open_probes=3)
    fail(b, 0.0)
    assert b.allow(10.0)
    b.record(10.2, False)
    assert b.state(10.2) == "open" and b.trips[-1] == (10.2, "probe failed")
    assert b.state(20.1) == "open"
    assert b.state(20.2) == "half-open"


def test_slow_probe_counts_as_failed_with_the_slow_rule():
    b = CircuitBreaker(slow_call_rate=0.5, slow_call_duration=1.0, window=2, min_calls=2, open_for=5.0)
    ok(b, 0.0, 2, duration=2.0)
    assert b.state(0.0) == "open"
    assert b.allow(5.0)
    b.record(7.0, True, duration=2.0)
    assert b.state(7.0) == "open" and b.trips[-1][1] == "probe slow"


def test_counts_reset_when_it_closes():
    b = CircuitBreaker(consecutive_failures=3, failure_rate=0.5, window=10, min_calls=4, open_for=1.0)
    ok(b, 0.0, 1)
    fail(b, 0.0, 3)                  # trips on 3 in a row
    assert b.state(0.0) == "open"
    assert b.allow(1.0)
    b.record(1.0, True)
    assert b.state(1.0) == "closed"
    assert b.rates(1.0) == (0, 0.0, 0.0)
    fail(b, 2.0, 2)                 # old failures forgotten: 2 in a row, 2 calls < min_calls
    assert b.state(2.0) == "closed"


def test_cancel_returns_a_probe_permit():
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0, half_open_probes=1)
    fail(b, 0.0)
    assert b.allow(1.0)
    b.cancel(1.0)                    # e.g. the bulkhead refused the call
    assert b.allow(1.0)              # the permit is back, not lost forever
    b.record(1.1, True)
    assert b.state(1.1) == "closed"


def test_results_of_calls_made_before_it_opened_do_not_count_as_probes():
    b = CircuitBreaker(consecutive_failures=2, open_for=1.0)
    assert b.allow(0.0)              # a slow call in flight
    fail(b, 0.1, 2)                  # trips
    b.record(0.5, True)              # the slow one ends while open: ignored
    assert b.late == 1 and b.state(0.5) == "open"
    b.record(1.5, True)              # ends in half-open, but no probe was sent: ignored
    assert b.late == 2 and b.state(1.5) == "half-open"


def test_rules_combine():
    b = CircuitBreaker(consecutive_failures=100, failure_rate=0.5, window=10, min_calls=4)
    ok(b, 0.0, 2)
    fail(b, 0.0, 2)
    assert b.state(0.0) == "open" and b.trips[0][1] == "failure rate"


@pytest.mark.parametrize("call, words", [
    (lambda: CircuitBreaker(), ["at least one trip rule"]),
    (lambda: CircuitBreaker(consecutive_failures=0), ["consecutive_failures", ">= 1"]),
    (lambda: CircuitBreaker(failure_rate=0.0), ["failure_rate", "(0, 1]"]),
    (lambda: CircuitBreaker(failure_rate=1.5), ["failure_rate", "(0, 1]"]),
    (lambda: CircuitBreaker(failure_rate=math.nan), ["failure_rate"]),
    (lambda: CircuitBreaker(failure_rate=50), ["failure_rate", "(0, 1]"]),   # not a percentage
    (lambda: CircuitBreaker(slow_call_rate=0.5), ["slow_call_duration", "with slow_call_rate"]),
    (lambda: CircuitBreaker(failure_rate=0.5, slow_call_duration=1.0), ["slow_call_duration"]),
    (lambda: CircuitBreaker(slow_call_rate=0.5, slow_call_duration=-1), ["slow_call_duration", "> 0"]),
    (lambda: CircuitBreaker(failure_rate=0.5, window=0), ["window", ">= 1"]),
    (lambda: CircuitBreaker(failure_rate=0.5, window=2.5), ["window", "whole number"]),
    (lambda: CircuitBreaker(failure_rate=0.5, window=0, window_type="time"), ["window", "> 0"]),
    (lambda: CircuitBreaker(failure_rate=0.5, window_type="calls"), ["window_type", "count"]),
    (lambda: CircuitBreaker(failure_rate=0.5, window=5, min_calls=6), ["min_calls", "[1, 5]"]),
    (lambda: CircuitBreaker(failure_rate=0.5, min_calls=0), ["min_calls", "[1, 100]"]),
    (lambda: CircuitBreaker(failure_rate=0.5, window=5, window_type="time", min_calls=0), ["min_calls", ">= 1"]),
    (lambda: CircuitBreaker(consecutive_failures=1, open_for=0), ["open_for", "> 0"]),
    (lambda: CircuitBreaker(consecutive_failures=1, open_for=math.inf), ["open_for", "finite"]),
    (lambda: CircuitBreaker(consecutive_failures=1, half_open_probes=0), ["half_open_probes", ">= 1"]),
    (lambda: CircuitBreaker(consecutive_failures=1, start=math.nan), ["start"]),
    (lambda: CircuitBreaker(consecutive_failures=1, log_limit=-5), ["log_limit", ">= 0", "None"]),
    (lambda: CircuitBreaker(consecutive_failures=1, on_event="print"), ["on_event", "function"]),
])
def test_bad_input(call, words):
    with pytest.raises(ValueError) as e:
        call()
    for w in words:
        assert w in str(e.value)


# --- bounded logs ---------------------------------------------------------------------------------------
def trip_forever(b, n):
    """Trip ``b`` (consecutive_failures=1, open_for=1) ``n`` times: once from closed, then by failed
    probes; one call is rejected while each opening lasts."""
    for i in range(n):
        assert b.allow(float(i))
        b.record(float(i), success=False)
        assert not b.allow(i + 0.5)


def test_100_000_trips_keep_at_most_the_limit_of_entries_and_exact_counts():
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0)
    trip_forever(b, 100_000)
    for log in (b.history, b.trips, b.rejections):
        assert len(log) == 10_000 and log.limit == 10_000
    assert b.trips.total == 100_000 and b.trips.dropped == 90_000
    assert b.trips.counts == {"consecutive failures": 1, "probe failed": 99_999}
    assert b.history.total == 1 + 2 * 100_000 - 1        # the start, then open and half-open each cycle
    assert b.history.counts["open"] == 100_000 and b.history.counts["closed"] == 1
    assert b.rejected == b.rejections.total == 100_000
    assert b.trips[-1] == (99_999.0, "probe failed") and b.trips[0] == (90_000.0, "probe failed")
    assert b.history[-1] == (99_999.0, "open") and b.rejections[-1] == 99_999.5
    assert b.state(100_000.0) == "half-open"              # the machine itself is unaffected


def test_log_limit_is_settable_and_none_keeps_everything():
    small, every = (CircuitBreaker(consecutive_failures=1, open_for=1.0, log_limit=limit) for limit in (5, None))
    trip_forever(small, 1000)
    trip_forever(every, 1000)
    assert len(small.trips) == 5 and small.trips.total == 1000
    assert len(every.trips) == 1000 and every.trips.dropped == 0 and every.history.limit is None
    assert list(small.trips) == list(every.trips)[-5:]


def test_on_event_receives_every_event_in_order_after_the_state_changed():
    seen, mismatched, breaker = [], [], []

    def export(kind, entry):
        seen.append((kind, entry))
        if kind == "history" and breaker and breaker[0].state(entry[0]) != entry[1]:
            mismatched.append(entry)                         # the callback saw an old state

    b = CircuitBreaker(consecutive_failures=1, open_for=1.0, log_limit=3, on_event=export)
    breaker.append(b)
    assert seen == [("history", (0.0, "closed"))]            # the first entry is exported too
    trip_forever(b, 1000)
    assert [e for k, e in seen if k == "trips"] == [(0.0, "consecutive failures")] + \
        [(float(i), "probe failed") for i in range(1, 1000)]
    assert [e for k, e in seen if k == "rejections"] == [i + 0.5 for i in range(1000)]
    assert [e for k, e in seen if k == "history"][-3:] == list(b.history)
    assert len(seen) == b.history.total + b.trips.total + b.rejections.total
    assert seen[1:4] == [("history", (0.0, "open")), ("trips", (0.0, "consecutive failures")),
                         ("rejections", 0.5)]                  # state change first, then why
    assert mismatched == []
