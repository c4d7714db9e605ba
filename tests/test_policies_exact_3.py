"""Exact values on small hand-checked cases for the policies that keep data: the cache, the fallback
chain, the job queue, the message queue, idempotency keys, sagas and alert rules: both sides of every
boundary, every branch, every counter (issue 15)."""
import math
import random

import pytest

from resilience_sim.policies import (BurnRateRule, Cache, Constant, Exponential, FallbackChain,
                                     IdempotencyKeys, JobQueue, MessageQueue, Saga, SagaStep, Static,
                                     ThresholdRule)
from resilience_sim.policies.alerts import budget_spent, time_to_fire
from resilience_sim.policies.cache import ERROR, FRESH, MISS, NEGATIVE, STALE, WAIT, Lookup
from resilience_sim.policies.idempotency import CONFLICT, IN_FLIGHT, NEW, REPLAY


def kinds(cache, key, times):
    return [cache.lookup(key, t).kind for t in times]


# --- cache --------------------------------------------------------------------------------------------
def test_fresh_up_to_the_ttl_then_stale_up_to_ttl_plus_swr_then_a_miss():
    c = Cache(10.0, stale_while_revalidate=5.0)
    assert c.lookup("k", 0.0).kind == MISS
    hit = c.fill("k", "v", 1.0)
    assert (hit.kind, hit.value, hit.age) == (FRESH, "v", 0.0)
    fresh = c.lookup("k", 11.0)
    assert (fresh.kind, fresh.value, fresh.age, fresh.served) == (FRESH, "v", 10.0, True)
    stale = c.lookup("k", 11.5)
    assert (stale.kind, stale.value, stale.age, stale.refresh) == (STALE, "v", 10.5, True)
    again = c.lookup("k", 16.0)                                   # age 15 = ttl + swr: still stale
    assert (again.kind, again.refresh) == (STALE, False)          # one refresh at a time
    assert c.fetches == 2                                         # the miss and the refresh
    c.fill("k", "w", 16.0)                                        # the refresh ends
    assert c.lookup("k", 26.5).refresh is True                    # the next stale one refreshes again
    assert c.lookup("k", 31.01).kind == MISS and len(c) == 0      # past ttl + swr: dropped
    assert (c.hits, c.stale, c.misses, c.negative, c.coalesced) == (1, 3, 2, 0, 0)


def test_a_stale_value_is_not_refreshed_while_a_fetch_of_its_key_is_out():
    c = Cache(1.0, stale_while_revalidate=10.0, coalesce=False)
    c.lookup("k", 0.0)
    c.fill("k", 1, 0.0)
    assert c.lookup("k", 2.0).refresh is True
    c.fill("k", 2, 2.0)
    c.invalidate("k")
    assert c.lookup("k", 2.5).kind == MISS                         # a fetch is out now
    c.store("k", 3, 2.5)
    c.lookup("k", 4.0)                                             # stale: refreshing
    assert c.lookup("k", 4.0).refresh is False


def test_stale_if_error_serves_the_stored_value_up_to_the_hard_ttl():
    c = Cache(10.0, hard_ttl=30.0)
    assert c.max_staleness == 30.0
    c.lookup("k", 0.0)
    c.fill("k", "v", 0.0)
    assert c.lookup("k", 20.0).kind == MISS and len(c) == 1       # past ttl, kept for stale-if-error
    served = c.fail("k", "timeout", 20.0)
    assert (served.kind, served.value, served.age, served.reason) == (STALE, "v", 20.0, "stale-if-error")
    c.lookup("k", 30.0)
    assert c.fail("k", "error", 30.0).kind == STALE                # age 30 = hard_ttl: still served
    assert c.stale_if_error == 2
    assert c.lookup("k", 30.5).kind == MISS and len(c) == 0        # past max staleness: dropped
    err = c.fail("k", "error", 30.5)
    assert (err.kind, err.reason, err.served) == (ERROR, "error", False)


def test_stale_if_error_stops_at_the_hard_ttl_when_the_entry_is_still_kept():
    c = Cache(10.0, hard_ttl=20.0, stale_while_revalidate=15.0)
    assert c.max_staleness == 25.0
    c.lookup("k", 0.0)
    c.fill("k", "v", 0.0)
    c.lookup("k", 20.5)                                            # stale, refreshing
    assert c.fail("k", "down", 20.5).kind == ERROR                 # 20.5 > hard_ttl 20
    assert len(c) == 1                                             # a source failure keeps it


def test_an_answer_of_the_caller_drops_the_stored_value_and_is_never_covered():
    c = Cache(10.0, hard_ttl=100.0)
    c.lookup("k", 0.0)
    c.fill("k", "v", 0.0)
    c.lookup("k", 20.0)
    assert c.fail("k", "not found", 20.0).kind == ERROR and len(c) == 0
    d = Cache(10.0, hard_ttl=100.0, stale_on={"timeout"})
    d.lookup("k", 0.0)
    d.fill("k", "v", 0.0)
    d.lookup("k", 20.0)
    assert d.fail("k", "error", 20.0).kind == ERROR and len(d) == 0   # not in stale_on


def test_a_negative_entry_answers_its_reason_until_negative_ttl():
    c = Cache(10.0, negative_ttl=2.0)
    c.lookup("k", 0.0)
    assert c.fail("k", "down", 1.0).kind == ERROR
    neg = c.lookup("k", 3.0)                                        # age 2 = negative_ttl
    assert (neg.kind, neg.reason, neg.age, neg.served) == (NEGATIVE, "down", 2.0, False)
    assert c.lookup("k", 3.01).kind == MISS and c.negative == 1
    c.fill("k", "v", 4.0)
    assert c.lookup("k", 4.0).kind == FRESH                         # the value replaced the error
    plain = Cache(10.0)
    plain.lookup("k", 0.0)
    plain.fail("k", "down", 0.0)
    assert len(plain) == 0 and plain.lookup("k", 0.0).kind == MISS  # negative_ttl 0: not cached


def test_coalescing_makes_one_fetch_and_the_others_wait():
    c = Cache(10.0)
    assert kinds(c, "k", [0.0, 0.1, 0.2]) == [MISS, WAIT, WAIT]
    assert (c.misses, c.coalesced, c.fetches) == (1, 2, 1)
    c.fill("k", 1, 0.3)
    with pytest.raises(ValueError, match="no fetch outstanding"):
        c.fill("k", 1, 0.4)
    apart = Cache(10.0, coalesce=False)
    assert kinds(apart, "k", [0.0, 0.1]) == [MISS, MISS]
    apart.fill("k", 1, 0.2)
    apart.fail("k", "timeout", 0.3)                                 # the second fetch ends too
    with pytest.raises(ValueError, match="no fetch outstanding"):
        apart.fail("k", "timeout", 0.4)
    assert apart.fetches == 2 and apart.coalesced == 0


def test_capacity_evicts_the_least_recently_used():
    c = Cache(None, capacity=2)
    for key in "ab":
        c.lookup(key, 0.0)
        c.fill(key, key.upper(), 0.0)
    assert c.lookup("a", 1.0).kind == FRESH                        # a is now the most recent
    c.lookup("c", 2.0)
    c.fill("c", "C", 2.0)
    assert (len(c), c.evictions) == (2, 1)
    assert c.lookup("b", 3.0).kind == MISS and c.lookup("a", 3.0).kind == FRESH
    c.store("b", "B", 3.0)                                         # c is now the least recent
    assert c.evictions == 2 and c.lookup("a", 3.0).value == "A" and c.lookup("b", 3.0).value == "B"
    assert c.lookup("c", 3.0).kind == MISS


def test_a_negative_entry_counts_towards_capacity_too():
    c = Cache(10.0, negative_ttl=5.0, capacity=1)
    c.lookup("a", 0.0)
    c.fill("a", 1, 0.0)
    c.lookup("b", 0.0)
    c.fail("b", "down", 0.0)
    assert c.evictions == 1 and c.lookup("a", 0.0).kind == MISS and c.lookup("b", 0.0).kind == NEGATIVE


def test_invalidate_clear_and_reset():
    c = Cache(10.0)
    c.lookup("k", 0.0)
    c.fill("k", 1, 0.0)
    assert c.invalidate("k") is True and c.invalidate("k") is False
    c.lookup("k", 1.0)
    c.fill("k", 1, 1.0)
    c.clear()
    assert len(c) == 0 and c.misses == 2
    c.reset()
    assert (c.hits, c.misses, c.fetches, c.evictions, len(c)) == (0, 0, 0, 0, 0)
    assert c.lookup("k", 0.0).kind == MISS                          # clock forgotten too
    with pytest.raises(ValueError, match=r"^key must be hashable .*got \['unhashable'\]$"):
        c.lookup(["unhashable"], 0.0)
    with pytest.raises(ValueError, match=r"^key must be hashable .*got \['unhashable'\]$"):
        c.invalidate(["unhashable"])


def test_from_cache_control_reads_max_age_swr_and_stale_if_error():
    c = Cache.from_cache_control("public, max-age=600, stale-while-revalidate=30, stale-if-error=1200")
    assert (c.ttl, c.stale_while_revalidate, c.hard_ttl) == (600, 30, 1800)
    d = Cache.from_cache_control("max-age=60", capacity=5)
    assert (d.ttl, d.stale_while_revalidate, d.hard_ttl, d.capacity) == (60, 0, 60, 5)
    for bad, word in [("max-age=0", "max-age"), ("no-store", "max-age"), ("max-age=1.5", "whole number"),
                      ("max-age=10, stale-if-error=x", "stale-if-error"), ("", "^header must be a non-empty"),
                      ("max-age=60, stale-if-error=5=5", "^header: stale-if-error must be a whole number")]:
        with pytest.raises(ValueError, match=word):
            Cache.from_cache_control(bad)


@pytest.mark.parametrize("kw, word", [
    ({"ttl": 10.0, "hard_ttl": 5.0}, "hard_ttl"),
    ({"ttl": None, "hard_ttl": 5.0}, "hard_ttl needs a ttl"),
    ({"ttl": None, "stale_while_revalidate": 1.0}, "stale_while_revalidate needs a ttl"),
    ({"ttl": 0.0}, "ttl"),
    ({"ttl": 1.0, "capacity": 0}, "capacity"),
    ({"ttl": 1.0, "coalesce": 1}, "coalesce"),
])
def test_cache_settings_that_make_no_sense_are_refused(kw, word):
    with pytest.raises(ValueError, match=word):
        Cache(**kw)


def test_cache_settings_at_their_bounds_and_the_repr():
    assert Cache(None, stale_while_revalidate=0.0).max_staleness == math.inf
    c = Cache(5.0, hard_ttl=5.0, stale_while_revalidate=2.0, negative_ttl=1.0, capacity=3, coalesce=False)
    assert c.max_staleness == 7.0
    assert repr(c) == ("Cache(ttl=5, hard_ttl=5, stale_while_revalidate=2, negative_ttl=1, capacity=3, "
                       "coalesce=False)")
    assert repr(Lookup(NEGATIVE, age=1.5, reason="down")) == "Lookup(negative, age=1.5, reason='down')"
    assert repr(Lookup(FRESH, 1, 0.5)) == "Lookup(fresh, age=0.5)"


# --- fallback chain -----------------------------------------------------------------------------------
def test_a_chain_moves_on_only_for_reasons_in_on_and_stops_at_the_last_step():
    chain = FallbackChain(["primary", "second", Static("last", [1])], labels={"second": "degraded"})
    assert chain.names == ("primary", "second", "last") and chain.labels == ("primary", "degraded", "last")
    assert chain.level("second") == 1 and chain.steps[2].value == [1]
    assert chain.record(0, "timeout") == 1
    assert chain.record(1, "down") == 2
    assert chain.record(2, "error") is None                        # out of steps
    assert chain.record(0, "bad request") is None                   # the caller's own fault
    assert chain.record(1) is None
    assert chain.answered == [0, 1, 0] and chain.failed == [2, 1, 1]
    chain.reset()
    assert chain.answered == [0, 0, 0] and chain.failed == [0, 0, 0]
    assert FallbackChain(["a", "b"], on={"timeout"}).record(0, "error") is None
    assert repr(FallbackChain(["a", Static("b")])) == "FallbackChain(['a', Static('b')])"


@pytest.mark.parametrize("call, word", [
    (lambda: FallbackChain("primary"), "must be a list"),
    (lambda: FallbackChain(Static("s")), "must be a list"),
    (lambda: FallbackChain(5), "steps"),
    (lambda: FallbackChain(["only"]), "at least one fallback"),
    (lambda: FallbackChain(["a", "a"]), "repeat"),
    (lambda: FallbackChain(["a", Static("a")]), "repeat"),
    (lambda: FallbackChain([Static("s"), "a"]), "primary must be a dependency"),
    (lambda: FallbackChain(["a", ""]), "non-empty"),
    (lambda: FallbackChain(["a", 3]), "non-empty"),
    (lambda: FallbackChain(["a", "b"], labels={"a": "x"}), "not a fallback"),
    (lambda: FallbackChain(["a", "b"], labels={"b": ""}), "labels"),
    (lambda: FallbackChain(["a", "b"], labels=["b"]), "labels"),
    (lambda: FallbackChain(["a", "b"]).record(2), "index"),
    (lambda: FallbackChain(["a", "b"]).record(-1), "index"),
    (lambda: FallbackChain(["a", "b"]).record(0, "oops"), "reason"),
    (lambda: FallbackChain(["a", "b"]).level("c"), "name"),
    (lambda: Static(""), "name"),
])
def test_fallback_misuse_is_refused(call, word):
    with pytest.raises(ValueError, match=word):
        call()


# --- job queue ----------------------------------------------------------------------------------------
def test_jobs_are_taken_oldest_ready_first_and_retried_after_their_backoff():
    q = JobQueue(backoff=Constant(2.0), max_attempts=2)
    assert q.submit("a", 0.0) and q.next_ready() == 0.0
    assert q.take(0.5) == "a" and q.status("a") == "running"
    assert q.take(0.5) is None and q.next_ready() == math.inf
    assert q.submit("b", 1.0) and q.take(1.0) == "b"
    assert q.retry_later("a", 1.5, random.Random(1)) == 3.5
    assert (q.queued, q.running, q.status("a"), q.next_ready()) == (1, 1, "queued", 3.5)
    assert q.complete("b", 2.0) == 1.0 and q.status("b") == "done"
    assert q.take(3.4) is None and q.take(3.5) == "a"
    assert q.retry_later("a", 5.0, random.Random(1)) is None       # 2 attempts made: dead
    assert q.status("a") == "dead" and q.parked == [("a", 0.0, 5.0)]
    assert (q.accepted, q.completed, q.dead, q.attempts, q.queued, q.running) == (2, 1, 1, 3, 0, 0)
    assert q.done == [("b", 1.0, 2.0)] and q.next_ready() == math.inf
    assert repr(q) == "JobQueue(capacity=None, queued=0, running=0, completed=1)"


def test_job_capacity_counts_waiting_jobs_not_running_ones():
    q = JobQueue(capacity=1)
    assert q.submit(1, 0.0) and not q.submit(2, 0.0) and q.refused == 1
    q.take(0.0)
    assert q.submit(3, 0.0)                                        # 1 running, 0 waiting
    assert not q.submit(4, 0.0) and q.refused == 2


def test_equal_ready_times_go_in_submission_order_and_the_default_backoff_doubles():
    q = JobQueue()
    for job in ("z", "x", "y"):
        q.submit(job, 0.0)
    assert [q.take(0.0) for _ in range(3)] == ["z", "x", "y"]
    assert q.retry_later("x", 1.0, random.Random(0)) == 3.0        # Exponential(1, 60).delay(1) = 2
    q.take(3.0)
    assert q.retry_later("x", 4.0, random.Random(0)) == 8.0        # delay(2) = 4: never dead


@pytest.mark.parametrize("call, word", [
    (lambda q: (q.submit("a", 0.0), q.submit("a", 0.0)), "already in the queue"),
    (lambda q: q.complete("a", 0.0), "not running"),
    (lambda q: q.status("nope"), "accepted"),
    (lambda q: q.submit(["a"], 0.0), "hashable"),
    (lambda q: (q.submit("a", 0.0), q.take(0.0), q.retry_later("a", 0.0, None)), "rng"),
])
def test_job_misuse_is_refused(call, word):
    with pytest.raises(ValueError, match=word):
        call(JobQueue())


def test_a_finished_job_id_cannot_be_submitted_again_and_settings_are_checked():
    q = JobQueue()
    q.submit("a", 0.0)
    q.take(0.0)
    q.complete("a", 1.0)
    with pytest.raises(ValueError, match="already"):
        q.submit("a", 2.0)
    for kw, word in [({"capacity": 0}, "capacity"), ({"backoff": 1.0}, "backoff"),
                     ({"max_attempts": 0}, "max_attempts")]:
        with pytest.raises(ValueError, match=f"^{word} must"):
            JobQueue(**kw)
    q.reset()
    assert (q.accepted, q.completed, q.done, q.parked) == (0, 0, [], [])
    assert q.submit("a", 0.0)                                      # reset forgot it


# --- message queue ------------------------------------------------------------------------------------
def test_a_message_comes_back_exactly_at_its_visibility_timeout():
    q = MessageQueue(visibility_timeout=5.0)
    q.send("m", "body", 1.0)
    d = q.receive(2.0)
    assert (d.message_id, d.body, d.receive_count, d.visible_at) == ("m", "body", 1, 7.0)
    assert q.in_flight == 1 and q.receive(6.9) is None and q.next_visible() == 7.0
    again = q.receive(7.0)
    assert again.receive_count == 2 and q.redelivered == 1 and q.received == 2
    assert q.ack(d.receipt, 7.0) is False                           # superseded by the redelivery
    assert q.ack(again.receipt, 12.0) is True                       # at visible_at: still in time
    assert (q.sent, q.acked, q.waiting, q.in_flight) == (1, 1, 0, 0)
    assert q.next_visible() == math.inf


def test_an_ack_after_the_timeout_is_refused_before_anyone_receives_it_again():
    q = MessageQueue(visibility_timeout=1.0)
    q.send("m", None, 0.0)
    d = q.receive(0.0)
    assert q.ack(d.receipt, 1.0001) is False and q.waiting == 1 and q.in_flight == 0
    with pytest.raises(ValueError, match="receipt"):
        q.ack(("m", 999), 2.0)


def test_extend_moves_the_time_a_delivery_becomes_visible():
    q = MessageQueue(visibility_timeout=1.0)
    q.send("m", None, 0.0)
    d = q.receive(0.0)
    assert q.extend(d.receipt, 0.5, 3.0) == 3.5
    assert q.receive(1.0) is None and q.next_visible() == 3.5
    assert q.ack(d.receipt, 3.5) is True
    with pytest.raises(ValueError, match="still in flight"):
        q.extend(d.receipt, 4.0, 1.0)


def test_dead_letters_after_max_receives_or_dropped_without_a_dead_letter_queue():
    for dead_letter in (True, False):
        q = MessageQueue(visibility_timeout=1.0, max_receives=2, dead_letter=dead_letter)
        q.send("m", "b", 0.0)
        assert q.receive(0.0).receive_count == 1
        assert q.receive(1.0).receive_count == 2                    # visible again at 1.0
        q.send("n", "c", 2.0)                                       # visible at 2.0, after m
        assert q.receive(2.0).message_id == "n"                     # m's third receive: gone instead
        assert q.receive(2.0) is None
        assert q.sent == 2 and q.waiting == 1
        if dead_letter:
            assert q.dead_letters == [("m", "b", 2)] and q.dropped == 0
        else:
            assert q.dead_letters == [] and q.dropped == 1


def test_messages_are_delivered_oldest_visible_first_and_one_id_twice_is_two_messages():
    q = MessageQueue(visibility_timeout=10.0)
    q.send("a", 1, 0.0)
    q.send("a", 2, 0.0)
    q.send("b", 3, 0.1)
    assert [q.receive(1.0).body for _ in range(3)] == [1, 2, 3]
    assert q.receive(1.0) is None and q.in_flight == 3
    assert repr(q) == "MessageQueue(visibility_timeout=10, max_receives=None, dead_letter=True)"


@pytest.mark.parametrize("kw, word", [
    ({"visibility_timeout": -1.0}, "visibility_timeout"),
    ({"visibility_timeout": 12 * 3600.0 + 1}, "visibility_timeout"),
    ({"max_receives": 0}, "max_receives"),
    ({"max_receives": 1001}, "max_receives"),
    ({"dead_letter": "no"}, "dead_letter"),
])
def test_message_queue_settings_are_checked(kw, word):
    with pytest.raises(ValueError, match=word):
        MessageQueue(**kw)


# --- idempotency keys ---------------------------------------------------------------------------------
def test_a_key_runs_once_then_replays_and_conflicts_and_refuses_while_in_flight():
    keys = IdempotencyKeys(retention=10.0)
    assert keys.begin("k", {"amount": 5}, 0.0) == (NEW, None)
    assert keys.begin("k", {"amount": 5}, 1.0) == (IN_FLIGHT, None)
    keys.finish("k", "receipt", 2.0)
    assert keys.begin("k", {"amount": 5}, 3.0) == (REPLAY, "receipt")
    assert keys.begin("k", {"amount": 6}, 4.0) == (CONFLICT, None)
    assert (keys.new, keys.replayed, keys.conflicts, keys.in_flight_refusals, len(keys)) == (1, 1, 1, 1, 1)
    assert keys.begin("k", {"amount": 5}, 10.0) == (REPLAY, "receipt")    # exactly retention: kept
    assert keys.begin("k", {"amount": 7}, 10.01) == (NEW, None)           # then forgotten
    assert repr(keys) == "IdempotencyKeys(retention=10, keys=1)"


def test_abandon_stores_nothing_and_misuse_is_refused():
    keys = IdempotencyKeys()
    keys.begin("k", 1, 0.0)
    keys.abandon("k", 1.0)
    assert len(keys) == 0 and keys.begin("k", 2, 2.0) == (NEW, None)
    keys.finish("k", None, 3.0)
    for call in (lambda: keys.finish("k", 1, 4.0), lambda: keys.abandon("k", 4.0),
                 lambda: keys.finish("other", 1, 4.0)):
        with pytest.raises(ValueError, match="key must be one begin"):
            call()
    with pytest.raises(ValueError, match="None"):
        keys.begin(None, 1, 5.0)
    with pytest.raises(ValueError, match="hashable"):
        keys.begin(["k"], 1, 5.0)
    for bad in (0.0, 30 * 86400.0 + 1):
        with pytest.raises(ValueError, match="retention"):
            IdempotencyKeys(bad)
    keys.reset()
    assert (keys.new, len(keys)) == (0, 0)


# --- sagas --------------------------------------------------------------------------------------------
def saga():
    return Saga([SagaStep("reserve", retries=1), SagaStep("hold"), SagaStep("charge", "pivot", retries=0),
                 SagaStep("ship", "retriable", retries=0)])


def drive(s, outcomes):
    """Record each outcome ((ok, reason)) in turn; return the actions asked for and the last state."""
    state, asked = s.start(), []
    for ok, reason in outcomes:
        action, subject = s.next_action(state)
        asked.append((action, subject.name))
        state = s.record(state, ok, reason)
    return asked, state


def test_a_compensatable_step_is_retried_up_to_its_retries_then_everything_done_is_undone():
    s = saga()
    asked, state = drive(s, [(True, ""), (False, "error"), (False, "error"), (False, "error"),
                             (False, "timeout"), (True, ""), (True, "")])
    assert asked == [("run", "reserve"), ("run", "hold"), ("run", "hold"), ("run", "hold"),
                     ("compensate", "hold"), ("compensate", "hold"), ("compensate", "reserve")]
    assert state["status"] == "compensated" and state["undone"] == ["hold", "reserve"]
    assert s.next_action(state) == ("end", "compensated")


def test_the_pivot_compensates_on_a_refusal_and_is_retried_without_an_answer():
    s = saga()
    _, state = drive(s, [(True, ""), (True, ""), (False, "timeout"), (False, "down")])
    assert state["status"] == "run" and state["tries"] == 2 and s.next_action(state)[1].name == "charge"
    state = s.record(state, False, "error")                         # a refusal: retries 0, compensate
    assert state["status"] == "compensate" and state["to_undo"] == ["reserve", "hold"]
    assert state["tries"] == 0 and s.next_action(state)[1].name == "hold"


def test_a_retriable_step_is_retried_for_ever_and_the_saga_commits():
    s = saga()
    _, state = drive(s, [(True, "")] * 3 + [(False, "error")] * 5 + [(True, "")])
    assert state["status"] == "committed" and state["done"] == ["reserve", "hold", "charge", "ship"]
    with pytest.raises(ValueError, match="ended"):
        s.record(state, True)


def test_a_failed_first_step_is_undone_alone_and_a_saga_with_nothing_to_undo_ends_compensated():
    s = Saga([SagaStep("a", retries=0), SagaStep("b", "pivot", retries=0)])
    state = s.record(s.start(), False, "error")
    assert state["status"] == "compensate" and state["to_undo"] == ["a"]
    state = s.record(state, False, "timeout")                       # an undo that fails is retried
    assert state["tries"] == 1 and state["status"] == "compensate"
    state = s.record(state, True)
    assert state["status"] == "compensated" and state["tries"] == 0
    pivot_first = Saga([SagaStep("p", "pivot", retries=0), SagaStep("r", "retriable")])
    assert pivot_first.record(pivot_first.start(), False, "error")["status"] == "compensated"


def test_record_leaves_the_old_state_as_it_was():
    s = saga()
    state = s.start()
    new = s.record(state, True)
    assert state == s.start() and new["done"] == ["reserve"] and new["step"] == 1


@pytest.mark.parametrize("call, word", [
    (lambda: Saga([]), "at least one"),
    (lambda: Saga(SagaStep("a")), "list of SagaStep"),
    (lambda: Saga(["a"]), r"steps\[0\]"),
    (lambda: Saga([SagaStep("a", "pivot"), SagaStep("b")]), "compensatable steps, then"),
    (lambda: Saga([SagaStep("a", "pivot"), SagaStep("b", "pivot")]), "at most one pivot"),
    (lambda: Saga([SagaStep("a"), SagaStep("a")]), "distinct"),
    (lambda: saga().next_action({}), "saga state"),
    (lambda: saga().record(saga().start(), False, "oops"), "reason"),
    (lambda: saga().record(saga().start(), 1), "ok"),
    (lambda: SagaStep("a", retries=-1), "retries"),
    (lambda: SagaStep("a", "maybe"), "kind"),
])
def test_saga_misuse_is_refused(call, word):
    with pytest.raises(ValueError, match=word):
        call()


# --- alert rules --------------------------------------------------------------------------------------
def test_a_threshold_rule_fires_at_the_ratio_with_enough_requests_after_for():
    rule = ThresholdRule(0.5, 60.0, for_=10.0, min_requests=4, resolution=1.0)
    rule.record_counts(0.0, 1, 1)
    assert rule.error_ratio(0.0, 60.0) == (0.5, 2) and not rule.firing(0.0)     # 2 < 4 requests
    rule.record_counts(1.0, 1, 1)
    assert not rule.firing(1.0)                                     # holds from 1.0
    assert not rule.firing(10.9)
    assert rule.firing(11.0) and rule.fired == 1
    assert rule.firing(12.0) and rule.fired == 1                    # still the same firing
    rule.record(13.0, True)                                         # 2 of 5: below
    assert not rule.firing(13.0)
    rule.record(14.0, False)
    assert not rule.firing(14.0)                                    # 3 of 6 again: the hold restarts
    assert rule.firing(24.0) and rule.fired == 2
    assert rule.recorded == 6
    assert repr(rule) == "ThresholdRule(threshold=0.5, window=60, for_=10)"


def test_buckets_leave_the_window_whole():
    rule = ThresholdRule(0.5, 10.0, resolution=2.0)
    rule.record(1.0, False)                                         # bucket 0: [0, 2)
    rule.record(3.0, True)                                          # bucket 1
    assert rule.error_ratio(10.0, 10.0) == (0.5, 2)                 # first bucket floor(0 / 2) = 0
    assert rule.error_ratio(11.9, 10.0) == (0.5, 2)                 # floor(1.9 / 2) = 0: still in
    assert rule.error_ratio(12.0, 10.0) == (0.0, 1)                 # floor(2 / 2) = 1: bucket 0 out
    assert rule.error_ratio(12.0, 2.0) == (0.0, 0)
    rule.record(13.0, False)                                        # bucket 6; bucket 0 evicted
    assert rule.error_ratio(13.0, 10.0) == (0.5, 2)
    assert rule.error_ratio(14.0, 10.0) == (1.0, 1)                 # floor(4 / 2) = 2: bucket 1 out


def test_the_default_resolution_is_a_sixtieth_and_windows_are_bounded():
    rule = ThresholdRule(0.1, 120.0)
    assert rule.resolution == 2.0
    with pytest.raises(ValueError, match="window must be at most 120"):
        rule.error_ratio(0.0, 121.0)
    with pytest.raises(ValueError, match="resolution must be at least"):
        ThresholdRule(0.1, 10.0 ** 6, resolution=0.5)
    ThresholdRule(0.1, 10.0 ** 6, resolution=1.0)                   # exactly a million buckets
    assert BurnRateRule(0.999).resolution == 5.0                    # the 300 s short window / 60


def test_a_burn_rate_rule_needs_both_windows_of_a_pair_over_the_limit():
    rule = BurnRateRule(0.9, pairs=[(100.0, 10.0, 2.0)], resolution=1.0)   # limit 2 * 0.1 = 0.2
    for t in range(0, 90):
        rule.record(float(t), True)
    for t in range(90, 100):
        rule.record(float(t), t % 2 == 0)                           # short window: 5 of 10 bad
    assert rule.error_ratio(99.0, 100.0) == (0.05, 100) and not rule.firing(99.0)   # long: 0.05
    for t in range(100, 120):
        rule.record(float(t), False)                                # long 25 bad of 100 at t = 119
    assert rule.error_ratio(119.0, 100.0) == (25 / 101, 101) and rule.error_ratio(119.0, 10.0) == (1.0, 11)
    assert rule.firing(119.0)
    for t in range(120, 131):
        rule.record(float(t), True)                                 # the short window recovers
    assert not rule.firing(130.0)
    assert repr(rule) == "BurnRateRule(slo=0.9, pairs=[(100.0, 10.0, 2.0)])"


def test_any_pair_fires_the_rule():
    rule = BurnRateRule(0.9, pairs=[(10.0, 5.0, 9.0), (20.0, 10.0, 5.0)], resolution=1.0)
    for t in range(20):
        rule.record(float(t), t >= 10 and t % 2 == 0)               # last 10 s: 50% bad; first 10 all bad
    assert rule.firing(19.0)                                        # the second pair: 0.75 and 0.5 >= 0.5
    only_first = BurnRateRule(0.9, pairs=[(10.0, 5.0, 9.0)], resolution=1.0)
    for t in range(20):
        only_first.record(float(t), t >= 10 and t % 2 == 0)
    assert not only_first.firing(19.0)                              # needs 0.9


@pytest.mark.parametrize("call, word", [
    (lambda: BurnRateRule(1.0), "no error budget"),
    (lambda: BurnRateRule(0.0), "slo"),
    (lambda: BurnRateRule(0.99, pairs="abc"), "pairs"),
    (lambda: BurnRateRule(0.99, pairs=5), "pairs"),
    (lambda: BurnRateRule(0.99, pairs=[]), "at least one"),
    (lambda: BurnRateRule(0.99, pairs=[(1.0, 2.0)]), r"pairs\[0\]"),
    (lambda: BurnRateRule(0.99, pairs=[(1.0, 2.0, 3.0)]), "must not be longer"),
    (lambda: BurnRateRule(0.99, pairs=[(2.0, 1.0, 0.0)]), "burn rate"),
    (lambda: ThresholdRule(0.0, 10.0), "threshold"),
    (lambda: ThresholdRule(0.5, 10.0, min_requests=0), "min_requests"),
    (lambda: ThresholdRule(0.5, 10.0).record(0.0, "bad"), "ok"),
    (lambda: ThresholdRule(0.5, 10.0).record_counts(0.0, -1, 0), "^good must"),
    (lambda: ThresholdRule(0.5, 10.0).record_counts(0.0, 0, 1.5), "^bad must"),
    (lambda: ThresholdRule(0.5, 10.0, resolution=0.0), "^resolution must"),
    (lambda: ThresholdRule(0.5, 10.0).error_ratio(0.0, 0.0), "^window must"),
    (lambda: BurnRateRule(1.5), "^slo must be in"),
    (lambda: time_to_fire(1.5, 1.0, 1.0, 0.5), "^slo must be in"),
    (lambda: BurnRateRule(0.99, pairs=5), "got 5$"),
    (lambda: BurnRateRule(0.99, pairs=[(2.0, 1.0)]), r"^pairs\[0\] must be \(long window"),
    (lambda: BurnRateRule(0.99, pairs=[(0.0, 1.0, 1.0)]), r"^pairs\[0\] long window must be > 0"),
    (lambda: BurnRateRule(0.99, pairs=[(1.0, 0.0, 1.0)]), r"^pairs\[0\] short window must be > 0"),
    (lambda: BurnRateRule(0.99, for_=-1.0), "^for_ must"),
])
def test_alert_misuse_is_refused(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_time_to_fire_and_budget_spent_match_the_workbook_arithmetic():
    assert time_to_fire(0.999, 14.4, 3600.0, 1.0) == pytest.approx(51.84)
    assert time_to_fire(0.5, 1.0, 60.0, 0.5) == 60.0                                # exactly the limit
    assert time_to_fire(0.5, 1.0, 60.0, 0.4999) == math.inf
    assert time_to_fire(0.99, 2.0, 100.0, 0.5) == pytest.approx(4.0)               # 0.01 / 0.5 * 2 * 100
    assert budget_spent(14.4, 3600.0) == pytest.approx(0.02)
    assert budget_spent(2.0, 50.0, period=1000.0) == 0.1
    with pytest.raises(ValueError, match="error_ratio"):
        time_to_fire(0.99, 1.0, 1.0, 1.5)
    with pytest.raises(ValueError, match="period"):
        budget_spent(1.0, 1.0, period=0.0)


# --- names in errors, defaults, counters past one -----------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda: time_to_fire(0.99, 0.0, 1.0, 0.5), "^burn must"),
    (lambda: time_to_fire(0.99, 1.0, 0.0, 0.5), "^window must"),
    (lambda: time_to_fire(0.99, 1.0, 1.0, -0.1), "^error_ratio must be in"),
    (lambda: budget_spent(0.0, 1.0), "^burn must"),
    (lambda: budget_spent(1.0, 0.0), "^window must"),
    (lambda: budget_spent(1.0, 1.0, period=-1.0), "^period must"),
    (lambda: ThresholdRule(0.5, 10.0).record(0.0, None), "^ok must be True or False"),
    (lambda: SagaStep(""), "^name must be a non-empty"),
    (lambda: SagaStep(None), "^name must be a string"),
    (lambda: SagaStep("a", "maybe"), "^kind must be one of"),
    (lambda: SagaStep("a", retries=10_001), r"^retries must be a whole number in \[0, 10000\]"),
    (lambda: Saga(5), "^steps must be a list of SagaStep, got 5$"),
    (lambda: Saga([SagaStep("a"), "b"]), r"^steps\[1\] must be a SagaStep, got 'b'$"),
    (lambda: IdempotencyKeys().begin(["k"], 1, 0.0), r"^key must be hashable .*got \['k'\]$"),
    (lambda: MessageQueue().extend(("m", 1), 0.0, -1.0), "^timeout must be in"),
    (lambda: MessageQueue().extend(("m", 1), 0.0, 12 * 3600.0 + 1), "^timeout must be in"),
])
def test_a_refusal_names_its_parameter_first(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_saga_step_settings_at_their_bounds():
    assert SagaStep("a", retries=10_000).retries == 10_000 and SagaStep("a").retries == 2
    assert repr(Saga([SagaStep("a"), SagaStep("b", "pivot")])) == \
        "Saga([SagaStep('a', 'compensatable'), SagaStep('b', 'pivot')])"


def test_idempotency_counters_count_past_one_and_retention_counts_from_first_use():
    keys = IdempotencyKeys(retention=0.5)                          # any retention > 0
    assert IdempotencyKeys().retention == 86400.0
    for key in ("a", "b"):
        keys.begin(key, 1, 5.0)
        keys.begin(key, 1, 5.0)                                    # in flight
        keys.begin(key, 2, 5.0)                                    # conflict
        keys.finish(key, "ok", 5.0)
    for key in ("a", "b"):
        assert keys.begin(key, 1, 5.5) == (REPLAY, "ok")           # 0.5 after its first use
    assert (keys.new, keys.in_flight_refusals, keys.conflicts, keys.replayed) == (2, 2, 2, 2)
    assert keys.begin("a", 1, 5.51) == (NEW, None)                 # 0.51 > 0.5 after its first use


def test_idempotency_and_job_misuse_says_what_to_do():
    keys = IdempotencyKeys()
    with pytest.raises(ValueError, match=r"\(finish it once, after begin\)$"):
        keys.finish("k", 1, 0.0)
    with pytest.raises(ValueError, match=r"\(abandon it once, after begin\)$"):
        keys.abandon("k", 0.0)
    with pytest.raises(ValueError, match="complete only a job that take"):
        JobQueue().complete("j", 0.0)


def test_extend_is_allowed_up_to_the_moment_the_delivery_becomes_visible():
    q = MessageQueue(visibility_timeout=1.0)
    q.send("m", None, 0.0)
    d = q.receive(0.0)
    assert q.extend(d.receipt, 1.0, 0.0) == 1.0                    # at visible_at: still in flight
    assert q.extend(d.receipt, 1.0, 12 * 3600.0) == 1.0 + 12 * 3600.0


def test_a_threshold_rule_by_default_fires_at_once_on_one_bad_request():
    rule = ThresholdRule(1.0, 60.0)
    rule.record(0.0, False)
    assert rule.firing(0.0)
    with pytest.raises(ValueError, match="^threshold must be in"):
        ThresholdRule(1.5, 60.0)


@pytest.mark.parametrize("kw, message", [
    ({"window": 0.0}, "^window must"), ({"for_": -1.0}, "^for_ must"), ({"min_requests": 0}, "^min_requests must"),
])
def test_threshold_settings_are_refused_by_name(kw, message):
    with pytest.raises(ValueError, match=message):
        ThresholdRule(**{"threshold": 0.5, "window": 10.0, **kw})


def test_the_cache_holds_ten_thousand_entries_by_default():
    assert Cache(1.0).capacity == 10_000


def test_a_refresh_of_one_key_leaves_the_fetch_of_another_to_its_own_books():
    c = Cache(1.0, stale_while_revalidate=10.0)
    c.lookup("a", 0.0)
    c.fill("a", 1, 0.0)
    assert c.lookup("a", 2.0).refresh is True                   # a's refresh is running
    assert c.lookup("b", 2.0).kind == MISS
    c.fill("b", 2, 2.0)                                         # b's fetch ends: not a's refresh
    c.invalidate("b")
    assert c.lookup("b", 2.0).kind == MISS                      # no fetch of b left outstanding
    c.fill("b", 2, 2.0)
    c.fill("a", 3, 2.5)                                         # a's refresh ends
    assert c.lookup("a", 2.5).value == 3
    with pytest.raises(ValueError, match=r"^key must be hashable .*got \[1\]$"):
        c.fill([1], 0, 3.0)


def test_negative_entries_fill_the_cache_to_capacity_and_count_each_eviction():
    c = Cache(10.0, negative_ttl=0.5, capacity=2)
    c.lookup("a", 0.0)
    c.fill("a", 1, 0.0)
    c.lookup("b", 0.0)
    c.fail("b", "down", 0.0)                                    # negative_ttl 0.5 > 0: cached
    assert len(c) == 2 and c.evictions == 0
    for key in "cd":
        c.lookup(key, 0.0)
        c.fail(key, "down", 0.0)
    assert len(c) == 2 and c.evictions == 2


def test_a_bool_is_not_a_time_for_the_cache():
    c = Cache(10.0)
    with pytest.raises(ValueError, match="^now must be a time"):
        c.lookup("k", True)
    c.lookup("k", 0.0)
    with pytest.raises(ValueError, match="^now must be a time"):
        c.store("k", 1, True)


@pytest.mark.parametrize("call, message", [
    (lambda: FallbackChain(5), "got 5$"),
    (lambda: FallbackChain(["a", 3]), "got 3$"),
    (lambda: FallbackChain([Static("s"), "a"]), r"^steps: the primary must be a dependency, not Static\('s'\)$"),
    (lambda: FallbackChain(["a", "b"], labels=["b"]), r"got \['b'\]$"),
    (lambda: FallbackChain(["a", "b", "c"], labels={"a": "x"}), r"fallbacks: \['b', 'c'\]$"),
    (lambda: FallbackChain(["a", "b"], labels={"b": ""}), "^labels must be a non-empty"),
    (lambda: FallbackChain(["a", "b"], on={"oops"}), "^on"),
    (lambda: FallbackChain(["a", "b"]).record(0, "oops"), "^reason"),
    (lambda: FallbackChain(["a", "b"]).record(True), "^index must"),
    (lambda: FallbackChain(["a", "b"]).record(2.0), "^index must"),
    (lambda: Static(3), "^name must be a string"),
])
def test_fallback_refusals_name_the_parameter_and_show_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_whole_float_index_is_a_step_of_the_chain():
    chain = FallbackChain(["a", "b"])
    assert chain.record(0.0, "timeout") == 1
    assert chain.record(1.0) is None
    assert chain.answered == [0, 1] and chain.failed == [1, 0]


def test_a_miss_and_an_error_carry_age_zero_and_the_cache_settings_name_themselves():
    c = Cache(1.0)
    miss = c.lookup("k", 5.0)
    assert (miss.kind, miss.age, miss.value, miss.refresh, miss.reason) == (MISS, 0.0, None, False, "")
    err = c.fail("k", "down", 6.0)
    assert (err.kind, err.age) == (ERROR, 0.0)
    assert Cache(1.0, capacity=10 ** 7).capacity == 10 ** 7
    with pytest.raises(ValueError, match=r"^capacity must be a whole number in \[1, 10000000\]"):
        Cache(1.0, capacity=10 ** 7 + 1)
    with pytest.raises(ValueError, match="^stale_while_revalidate must"):
        Cache(1.0, stale_while_revalidate=-1.0)


def test_outcomes_in_one_bucket_add_up():
    rule = ThresholdRule(0.5, 10.0, resolution=1.0)
    rule.record_counts(0.0, 2, 1)
    rule.record_counts(0.5, 3, 4)                                 # the same bucket
    assert rule.error_ratio(0.5, 10.0) == (0.5, 10) and rule.recorded == 10


def test_a_new_rule_counts_its_first_firing_and_a_burn_rate_fires_at_exactly_the_limit():
    rule = ThresholdRule(0.5, 10.0)
    rule.record(0.0, False)
    assert rule.firing(0.0) and rule.fired == 1
    burn = BurnRateRule(0.5, pairs=[(10.0, 10.0, 1.0)], resolution=2.0)   # limit 1 * 0.5; equal windows
    burn.record(0.0, True)
    burn.record(0.0, False)
    assert burn.error_ratio(0.0, 10.0) == (0.5, 2) and burn.firing(0.0) and burn.fired == 1
    assert burn.resolution == 2.0 and burn.pairs == ((10.0, 10.0, 1.0),)


def test_the_default_job_backoff_is_capped_at_a_minute_and_one_attempt_may_be_all():
    q = JobQueue()
    q.submit("j", 0.0)
    now = 0.0
    for _ in range(6):
        q.take(now)
        now = q.retry_later("j", now, random.Random(0))
    assert now == 2 + 4 + 8 + 16 + 32 + 60                     # 2 ** 6 = 64, capped at 60
    once = JobQueue(max_attempts=1)
    for job in ("a", "b"):
        once.submit(job, 0.0)
        once.take(0.0)
        assert once.retry_later(job, 0.0, random.Random(0)) is None
    assert once.dead == 2 and [j for j, *_ in once.parked] == ["a", "b"]


@pytest.mark.parametrize("call, message", [
    (lambda: JobQueue(backoff=1.0), "got 1.0$"),
    (lambda: JobQueue().submit(["a"], 0.0), r"got \['a'\]$"),
    (lambda: (lambda q: (q.submit("a", 0.0), q.take(0.0), q.retry_later("a", 0.0, 5)))(JobQueue()), "got 5$"),
    (lambda: JobQueue().retry_later("a", 0.0, random.Random(0)), "retry_later only a job that take"),
    (lambda: saga().next_action({}), "got {}$"),
    (lambda: saga().record(saga().start(), 1), "^ok must be True or False"),
    (lambda: saga().record(saga().start(), False, "oops"), "^reason"),
    (lambda: ThresholdRule(0.1, 10.0 ** 6, resolution=0.5),
     r"^resolution must be at least 1 s for a 1e\+06 s window \(at most 1,000,000 buckets\), got 0.5$"),
    (lambda: Constant(-1.0), "^base must"),
])
def test_more_refusals_name_the_parameter_and_show_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_new_saga_state_is_at_its_first_step_with_no_tries():
    assert saga().start() == {"status": "run", "step": 0, "tries": 0, "done": [], "to_undo": [], "undone": []}


def test_saga_record_returns_a_new_state_with_the_same_keys_and_leaves_the_old_one_as_it_was():
    import copy

    from resilience_sim.policies import Saga, SagaStep
    saga = Saga([SagaStep("reserve"), SagaStep("hold"), SagaStep("charge", "pivot", retries=0)])
    state = saga.start()
    keys = set(state)
    # run ok, run ok, "charge" refused (a pivot refused is compensated), then each undo ok
    for ok, reason in [(True, "error"), (True, "error"), (False, "bad request"), (True, "error"), (True, "error")]:
        before = copy.deepcopy(state)
        new = saga.record(state, ok, reason)
        assert state == before and new is not state and set(new) == keys
        for name in ("done", "to_undo", "undone"):
            assert new[name] is not state[name]
        state = new
    assert state["status"] == "compensated" and state["undone"] == ["hold", "reserve"]
