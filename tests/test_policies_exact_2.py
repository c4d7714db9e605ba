"""Exact values on small hand-checked cases for the bulkhead, the token bucket and the load shedder,
hedging, timeouts and deadlines, and the permits and clock every policy shares: both sides of every
boundary, every branch (issue 15)."""
import math
from fractions import Fraction

import pytest

from resilience_sim import Client, OpenLoop, Request, Service, World
from resilience_sim.policies import (AdaptiveThrottle, Bulkhead, CircuitBreaker, Countdown, Deadline,
                                     HedgePolicy, LoadShedder, Timeout, TokenBucket, claim,
                                     delay_from_percentile)


class Owner:
    """Something to claim a policy for (a World stand-in)."""


# --- bulkhead ----------------------------------------------------------------------------------------
def test_a_bulkhead_fills_to_exactly_max_concurrent():
    b = Bulkhead(3)
    assert [b.try_acquire(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.in_use == 3 and b.peak == 3 and b.acquired == 3 and b.rejected == 1
    assert list(b.rejections) == [(0.0, "full")]
    assert b.release(1.0) is False and b.in_use == 2 and b.peak == 3
    assert repr(b) == "Bulkhead(max_concurrent=3, max_wait=0, in_use=2)"


def test_a_waiting_bulkhead_hands_over_slots_in_order_and_times_each_wait():
    b = Bulkhead(1, max_wait=2.5)
    assert b.try_acquire(0.0)
    assert not b.try_acquire(1.0) and b.rejected == 0            # may wait: no rejection
    assert b.enqueue(1.0) == 3.5
    assert not b.try_acquire(1.5)
    assert b.enqueue(1.5) == 4.0 and b.waiting == 2
    assert b.release(2.0) is True and b.in_use == 1 and b.acquired == 2
    assert b.release(2.75) is True and list(b.waits) == [1.0, 1.25]
    assert b.release(3.0) is False and b.in_use == 0 and b.waiting == 0
    assert b.peak == 1


def test_give_up_takes_the_oldest_waiter_and_leave_a_named_one():
    b = Bulkhead(1, max_wait=1.0)
    b.try_acquire(0.0)
    for t in (0.1, 0.2, 0.3):
        b.try_acquire(t)
        b.enqueue(t)
    b.leave(0.2)
    assert b.waiting == 2 and b.rejected == 0
    b.give_up(1.1)
    assert list(b.rejections) == [(1.1, "wait expired")] and b.waiting == 1
    assert b.release(1.2) is True and list(b.waits) == [pytest.approx(0.9)]   # the one from 0.3
    with pytest.raises(ValueError, match="enqueued_at"):
        b.leave(0.3)
    with pytest.raises(RuntimeError, match="give_up"):
        b.give_up(1.3)


def test_bulkhead_misuse_and_reset():
    b = Bulkhead(1)
    with pytest.raises(RuntimeError, match="release"):
        b.release(0.0)
    with pytest.raises(RuntimeError, match="max_wait"):
        b.enqueue(0.0)
    b.try_acquire(0.0)
    b.try_acquire(0.0)
    b.reset()
    assert (b.in_use, b.waiting, b.acquired, b.peak, b.rejected) == (0, 0, 0, 0, 0)
    b.try_acquire(0.0)                                           # the clock was forgotten too


# --- token bucket and load shedder -------------------------------------------------------------------
def test_a_bucket_refills_at_its_rate_up_to_its_burst():
    b = TokenBucket(rate=2.0, burst=3.0)
    assert b.available(10.0) == 3.0
    assert b.try_take(10.0) and b.try_take(10.0) and b.try_take(10.0)
    assert not b.try_take(10.0) and list(b.rejections) == [10.0] and b.taken == 3
    assert b.available(10.25) == 0.5
    assert b.available(11.0) == 2.0
    assert b.available(20.0) == 3.0                              # never above the burst
    assert repr(b) == "TokenBucket(rate=2, burst=3)"


def test_taking_several_tokens_and_the_wait_for_them():
    b = TokenBucket(rate=4.0, burst=2.0)
    assert b.try_take(0.0, 1.5) and b.available(0.0) == 0.5
    assert b.wait_time(0.0, 1.5) == 0.25
    assert not b.try_take(0.0, 1.5) and b.available(0.0) == 0.5  # all or nothing
    assert b.try_take(0.25, 1.5) and b.available(0.25) == 0.0
    assert b.wait_time(0.5) == 0.0 and b.wait_time(0.5, 2.0) == 0.25
    assert b.try_take(0.5, 1) and b.taken == 3
    assert b.try_take(10.0, 2.0)                                 # the whole burst at once


def test_a_take_just_short_by_less_than_the_tolerance_is_granted():
    b = TokenBucket(rate=1.0, burst=1.0)
    assert b.try_take(0.0)
    assert b.try_take(1.0 - 1e-10)                               # short by 1e-10 < 1e-9
    assert b.available(1.0 - 1e-10) == 0.0                       # never below zero
    c = TokenBucket(rate=1.0, burst=1.0)
    assert c.try_take(0.0) and not c.try_take(1.0 - 1e-8)
    edge = TokenBucket(rate=1.0, burst=1.0)
    assert edge.try_take(0.0) and edge.try_take(1.0 - 1e-9)      # short by exactly the tolerance


@pytest.mark.parametrize("make, word", [
    (lambda: TokenBucket(rate=0.0, burst=1.0), "rate"), (lambda: TokenBucket(rate=1.0, burst=0.5), "burst"),
    (lambda: LoadShedder(max_queue=-1), "max_queue"),
    (lambda: LoadShedder(max_queue_delay=-1.0), "max_queue_delay"),
    (lambda: Bulkhead(0), "max_concurrent"), (lambda: Bulkhead(1, max_wait=-1.0), "max_wait"),
    (lambda: HedgePolicy(-1.0), "delay"), (lambda: HedgePolicy(1.0, max_hedges=101), "max_hedges"),
    (lambda: Timeout(0.0), "per_attempt"), (lambda: Deadline(0.0), "budget"),
])
def test_settings_out_of_range_are_refused_by_name(make, word):
    with pytest.raises(ValueError, match=f"^{word} must"):
        make()


@pytest.mark.parametrize("tokens", [0, -1, 2.5, math.nan])
def test_a_bucket_refuses_token_counts_outside_zero_to_burst(tokens):
    with pytest.raises(ValueError, match="^tokens must"):
        TokenBucket(rate=1.0, burst=2.0).try_take(0.0, tokens)


def test_the_shedder_sheds_at_the_queue_limit_and_past_the_delay_limit():
    s = LoadShedder(max_queue=2, max_queue_delay=0.5)
    assert not s.should_shed(0.0, 1, 0.5)                        # 1 < 2 waiting, 0.5 not > 0.5
    assert s.should_shed(0.1, 2, 0.0)
    assert s.should_shed(0.2, 0, 0.5000001)
    assert list(s.sheds) == [(0.1, "queue full"), (0.2, "queue delay")] and s.admitted == 1
    zero = LoadShedder(max_queue=0)
    assert zero.should_shed(0.0, 0) and zero.sheds.counts["queue full"] == 1
    assert not LoadShedder().should_shed(0.0, 10 ** 6, 1e9)
    strict = LoadShedder(max_queue_delay=0.0)
    assert not strict.should_shed(0.0, 5) and not strict.should_shed(0.0, 5)   # no oldest_wait: 0
    assert strict.admitted == 2
    assert repr(s) == "LoadShedder(max_queue=2, max_queue_delay=0.5)"
    s.reset()
    assert s.admitted == 0 and list(s.sheds) == []


@pytest.mark.parametrize("call, words", [
    (lambda s: s.should_shed(0.0, -1), ["queue_length", ">= 0"]),
    (lambda s: s.should_shed(0.0, 1.5), ["queue_length"]),
    (lambda s: s.should_shed(0.0, 1, -0.1), ["oldest_wait", ">= 0"]),
])
def test_the_shedder_checks_what_it_is_given(call, words):
    with pytest.raises(ValueError) as e:
        call(LoadShedder(max_queue=1))
    assert all(w in str(e.value) for w in words)


# --- hedging ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p, expected", [
    (0, 1.0), (50, 3.0), (90, 6.8), (100, 8.0), (25, 1.75), (10, 1.3),
])
def test_the_percentile_interpolates_between_order_statistics(p, expected):
    # [1, 2, 4, 8]: position (4 - 1) * p / 100; 50 -> 1.5, between 2 and 4; 90 -> 2.7, 4 + 0.7 * 4
    assert delay_from_percentile([8.0, 2.0, 1.0, 4.0], p) == pytest.approx(expected)


def test_the_percentile_defaults_to_the_95th_and_names_a_bad_p():
    assert delay_from_percentile([1.0, 2.0, 4.0, 8.0]) == pytest.approx(7.4)      # 4 + 0.85 * 4
    with pytest.raises(ValueError, match="^p must be"):
        delay_from_percentile([1.0], -1)
    assert HedgePolicy.from_latencies([1.0]).max_hedges == 1


def test_hedge_times_are_start_plus_k_delays_up_to_max_hedges():
    h = HedgePolicy(0.25, max_hedges=2)
    assert [h.hedge_at(1.0, k) for k in (0, 1, 2, 3)] == [1.25, 1.5, math.inf, math.inf]
    assert not h.should_hedge(1.0, 1.2499, 0) and h.should_hedge(1.0, 1.25, 0)
    assert not h.should_hedge(1.0, 1.4999, 1) and h.should_hedge(1.0, 1.5, 1)
    assert not h.should_hedge(1.0, 100.0, 2)
    assert repr(h) == "HedgePolicy(delay=0.25, max_hedges=2)"


def test_hedge_counters_and_extra_load():
    h = HedgePolicy(0.1, max_hedges=3)
    assert h.extra_load == 0.0
    h.record_hedge(0.1)
    h.record_hedge(0.2)
    h.record_winner(0.3, hedge=False)
    h.record_hedge(0.4)
    h.record_winner(0.5, hedge=True)
    assert (h.hedges_sent, h.finished, h.hedges_won, list(h.hedge_times)) == (3, 2, 1, [0.1, 0.2, 0.4])
    assert h.extra_load == 1.5
    with pytest.raises(ValueError, match="hedge"):
        h.record_winner(0.6, hedge="yes")
    with pytest.raises(ValueError, match="now must not go back"):
        h.record_hedge(0.0)
    h.reset()
    assert (h.hedges_sent, h.finished, h.hedges_won, list(h.hedge_times)) == (0, 0, 0, [])


def test_from_latencies_uses_the_percentile_and_passes_the_settings_on():
    seen = []
    h = HedgePolicy.from_latencies([1.0, 2.0, 4.0, 8.0], p=50, max_hedges=3, log_limit=1,
                                   on_event=lambda kind, entry: seen.append((kind, entry)))
    assert h.delay == 3.0 and h.max_hedges == 3
    h.record_hedge(1.0)
    h.record_hedge(2.0)
    assert list(h.hedge_times) == [2.0] and seen == [("hedge_times", 1.0), ("hedge_times", 2.0)]
    assert HedgePolicy.from_latencies([1.0, 2.0, 4.0, 8.0]).delay == pytest.approx(7.4)   # p = 95


# --- timeouts and deadlines --------------------------------------------------------------------------
def test_a_timeout_expires_at_exactly_its_limit():
    t = Timeout(0.5)
    assert t.expires_at(2.0) == 2.5
    assert not t.expired(2.0, 2.4999) and t.expired(2.0, 2.5)
    t.record(3.0, False)
    t.record(3.5, True)
    assert t.attempts == 2 and list(t.timeouts) == [3.5]
    with pytest.raises(ValueError, match="timed_out"):
        t.record(4.0, "yes")
    t.reset()
    assert t.attempts == 0 and list(t.timeouts) == []
    assert repr(t) == "Timeout(0.5)"


def test_a_deadline_starts_countdowns_that_expire_at_start_plus_budget():
    seen = []
    d = Deadline(2.0, log_limit=1, on_event=lambda kind, entry: seen.append(entry))
    c = d.start(3.0)
    assert (c.started, c.at, d.started) == (3.0, 5.0, 1)
    assert c.remaining(4.5) == 0.5 and not c.expired(4.9999) and c.expired(5.0)
    assert c.remaining(6.0) == 0.0
    c2 = d.start(3.5)
    assert d.started == 2 and c2.at == 5.5
    c2.attempt_timeout(3.5, 1.0)
    c2.attempt_timeout(4.0, 1.0)
    assert list(c2.attempts) == [(4.0, 1.0)] and seen == [(3.5, 1.0), (4.0, 1.0)]   # log_limit 1
    d.reset()
    assert d.started == 0
    d.start(0.0)                                                   # the clock was forgotten
    assert repr(d) == "Deadline(2)" and repr(c) == "Countdown(started=3, at=5)"


def test_an_attempt_timeout_is_the_smaller_of_the_limit_and_what_is_left():
    c = Countdown(0.0, 1.0)
    assert c.attempt_timeout(0.0, 0.75) == 0.75
    assert c.attempt_timeout(0.5, 0.75) == 0.5
    assert c.attempt_timeout(0.6, Timeout(0.25)) == 0.25
    assert c.attempt_timeout(0.8, Timeout(math.inf)) == pytest.approx(0.2)
    assert c.attempt_timeout(2.0, 0.75) == 0.0
    assert [t for _, t in c.attempts][:3] == [0.75, 0.5, 0.25]
    with pytest.raises(ValueError, match="^per_attempt must"):
        c.attempt_timeout(2.0, 0.0)
    assert Countdown(0.0, 3.0).attempt_timeout(1.0, math.inf) == 2.0        # inf: no per-attempt limit


def test_a_child_gets_what_is_left_minus_the_reserve_never_below_now():
    c = Countdown(0.0, 10.0)
    child = c.child(2.0, reserve=3.0)
    assert (child.started, child.at) == (2.0, 7.0)
    assert c.child(2.0).at == 10.0
    late = c.child(9.0, reserve=3.0)
    assert (late.started, late.at) == (9.0, 9.0) and late.expired(9.0)
    with pytest.raises(ValueError, match="now must not go back"):
        c.child(8.0)
    with pytest.raises(ValueError, match="reserve"):
        c.child(9.5, reserve=-1.0)
    with pytest.raises(ValueError, match="now must not go back"):
        child.remaining(1.0)                                     # a child's clock starts at its start


def test_a_countdown_refuses_an_expiry_before_its_start():
    with pytest.raises(ValueError, match="^at must be >= 5"):
        Countdown(5.0, 4.0)
    with pytest.raises(ValueError, match="^started must"):
        Countdown(math.nan, 4.0)
    assert Countdown(5.0, 5.0).expired(5.0)
    assert Countdown(5.0, math.inf).remaining(1e300) == math.inf


# --- the clock and the owner every policy shares -----------------------------------------------------
def test_the_clock_takes_numpy_style_and_fraction_times_and_refuses_going_back():
    t = Timeout(1.0)
    assert t.expired(Fraction(0), Fraction(3, 2))                 # not a float: the slow path
    with pytest.raises(ValueError, match="now must not go back"):
        t.expired(0.0, 1.4999)                                    # the clock read it as 1.5
    assert not t.expired(1.0, 1.5)                                # equal to the latest: fine
    for bad in (math.nan, math.inf, "1", True, None, 10 ** 400):
        with pytest.raises(ValueError, match="now must"):
            t.expired(0.0, bad)


def test_claim_binds_all_or_none_and_skips_what_is_not_a_policy():
    first, second = Owner(), Owner()
    a, b = Timeout(1.0), Timeout(2.0)
    claim(first, a=a, other=object(), nothing=None)
    with pytest.raises(ValueError, match="^a: this Timeout"):
        claim(second, b=b, a=a)
    claim(first, b=b)                                             # b was not bound by the refusal
    claim(first, a=a, b=b)                                        # the same owner again: fine
    a.claim(first)
    with pytest.raises(ValueError, match="^mine: "):
        a.claim(second, name="mine")
    with pytest.raises(ValueError, match="^Timeout: "):
        a.claim(second)
    with pytest.raises(ValueError, match="name"):
        a.claim(first, name="")


def test_a_time_error_says_what_the_policy_was_given_last():
    t = Timeout(1.0)
    with pytest.raises(ValueError) as e:
        t.expired(0.0, math.nan)
    assert str(e.value) == "now must be a finite time in seconds, got now=nan; this Timeout was given no time yet"
    t.expired(0.0, 2.0)
    with pytest.raises(ValueError) as e:
        t.expired(0.0, "3")
    assert str(e.value) == ("now must be a time in seconds (a finite number), got '3'; this Timeout was "
                            "given now=2.0 last")
    with pytest.raises(ValueError) as e:
        t.expired(0.0, -1.7976931348623157e308)                   # the lowest finite time: going back
    assert str(e.value).startswith("now must not go back: this Timeout was given now=2.0 last, then now=-1.79")
    assert str(e.value).endswith("for a new run make a new Timeout, or call reset()")
    with pytest.raises(ValueError) as e:
        Countdown(5.0, 6.0).remaining(4.0)                        # no reset() to offer
    assert str(e.value).endswith("for a new run make a new Countdown")


# --- permits -------------------------------------------------------------------------------------------
def test_a_permit_equals_true_and_itself_only_and_hashes_as_true():
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0)
    p, q = b.allow(0.5), b.allow(0.5)
    assert p == True and p == p and not (p == q) and not (p == 1) and not (p == False)   # noqa: E712
    assert not (p != True) and not (p != p) and p != q and p != 1 and p != False          # noqa: E712
    assert hash(p) == hash(True) and len({p, True}) == 1
    assert repr(p) == "Permit(closed, at=0.5)"
    b.record(0.5, False, permit=p)
    assert repr(b.allow(1.5)) == "Permit(probe, at=1.5)"


# --- the client's use of the throttle and of hedging (the policies in a run) ---------------------------
def test_a_clients_throttle_counts_errors_as_accepted_and_never_throttles_them():
    world = World(1)
    db = Service(world, "db", capacity=100, latency=0.001, error_rate=1.0)   # answers, with an error
    throttle = AdaptiveThrottle(k=2.0, window=1000.0)
    Client(world, db, throttle=throttle)
    OpenLoop(world, world.clients["client"], 20, requests=200)
    results = world.run(until=100)
    assert len(results) == 200 and results.services["db"].calls == 200
    assert results.client("client").rejected.get("throttled", 0) == 0 and throttle.rejected.total == 0
    assert throttle.allowed == 200 and throttle.rejection_probability(100.0) == 0.0


def test_a_clients_throttle_against_a_backend_refusing_for_overload_matches_the_policy_by_hand():
    world = World(1)
    db = Service(world, "db", capacity=1, latency=10_000.0, queue_limit=0)  # one slot, held all run
    throttle = AdaptiveThrottle(k=2.0, window=1000.0)
    Client(world, db, throttle=throttle)
    OpenLoop(world, world.clients["client"], 20, requests=200)
    results = world.run(until=100)
    # by hand: the first request takes the slot (no verdict within the run), every one sent after it is
    # refused for overload, each draw from the client's own stream; the window holds the whole run
    rng, mine, throttled = World(1).rng("client/client/throttle"), AdaptiveThrottle(k=2.0, window=1000.0), 0
    assert mine.allow(0.0, rng)
    for _ in range(199):
        if mine.allow(0.0, rng):
            mine.record(0.0, False)
        else:
            throttled += 1
    assert results.client("client").rejected["throttled"] == throttled == throttle.rejected.total
    assert results.services["db"].calls == 200 - throttled and throttled > 150


def test_a_hedge_that_loses_gives_its_slot_back_at_once():
    world = World(1)
    leaf = Service(world, "leaf", capacity=2, latency=1.0)
    Client(world, leaf, hedge=HedgePolicy(delay=0.5))
    log = {}

    def request():
        yield from world.clients["client"].call(Request(world.now))
        log["done"] = world.now
    world.env.process(request())
    world.run(until=1.25)
    assert log == {"done": 1.0}                       # the primary won at 1.0 ...
    assert leaf.busy == 0                             # ... and the copy sent at 0.5 was cancelled then
