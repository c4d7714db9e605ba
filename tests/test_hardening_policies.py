"""A simulator that cannot be fooled, the policies' part: every misuse of a policy is a clear error,
never a hang or a silent wrong answer. One section per claim: reused objects, bad hot-path input,
truthy strings as booleans, the adaptive throttle with retries, breaker permits, infinite timeouts."""
import gc
import math
import random
from collections import deque

import numpy as np
import pytest

from resilience_sim import Client, OpenLoop, Outage, Request, Service, ServiceError, World
from resilience_sim.core.eventlog import EventLog
from resilience_sim.policies import (AdaptiveThrottle, Bulkhead, CircuitBreaker, Constant, ConstantBackoff,
                                     Deadline, DecorrelatedJitter, FullJitter, HedgePolicy, LoadShedder,
                                     RetryBudget, RetryPolicy, Timeout, TokenBucket, claim)

NAN, INF = math.nan, math.inf


# --- 1. reused policy objects -------------------------------------------------------------------------
def breaker_scenario(breaker):
    """An api down from 10 s to 20 s, called 50 times a second through ``breaker``."""
    world = World(1)
    api = Service(world, "api", capacity=100, latency=0.01)
    Outage(api, [(10, 20)])
    Client(world, api, breaker=breaker)
    OpenLoop(world, world.clients["client"], 50, duration=30)
    return world.run(until=31).request_availability()


def bucket_scenario(bucket):
    """A service limited by ``bucket``, offered 20 requests a second."""
    world = World(1)
    limited = Service(world, "limited", capacity=100, latency=0.001, rate_limit=bucket)
    OpenLoop(world, limited, 20, duration=30)
    return world.run(until=31).request_availability()


def test_rerunning_a_scenario_with_the_same_breaker_is_refused_and_after_reset_gives_the_same_answer():
    breaker = CircuitBreaker(consecutive_failures=5, open_for=2.0)
    first = breaker_scenario(breaker)
    assert 0.5 < first < 0.9
    with pytest.raises(ValueError, match=r"breaker: this CircuitBreaker is already driven by another World.*"
                                         r"make a new CircuitBreaker per run, or call reset\(\)"):
        breaker_scenario(breaker)
    breaker.reset()
    assert breaker_scenario(breaker) == first
    assert breaker_scenario(CircuitBreaker(consecutive_failures=5, open_for=2.0)) == first


def test_rerunning_a_scenario_with_the_same_token_bucket_is_refused_and_after_reset_gives_the_same_answer():
    bucket = TokenBucket(rate=5, burst=5)
    first = bucket_scenario(bucket)
    assert 0.2 < first < 0.4
    # refused when the service claims it (the claim call), or else at its first call (time going back)
    with pytest.raises(ValueError, match=r"make a new TokenBucket.*or call reset\(\)"):
        bucket_scenario(bucket)
    bucket.reset()
    assert bucket_scenario(bucket) == first


def test_one_nan_time_is_refused_and_cannot_leave_a_breaker_open_for_ever():
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0)
    with pytest.raises(ValueError, match=r"now must be a finite time in seconds, got now=nan"):
        b.allow(NAN)
    with pytest.raises(ValueError, match=r"now must be a finite time"):
        b.record(NAN, False)
    assert b.state(0.0) == "closed" and b.trips == []        # nothing happened
    assert b.allow(0.0)
    b.record(0.0, False)
    assert b.state(1e6) == "half-open"


def test_a_bucket_refuses_nan_and_earlier_times_and_keeps_refilling():
    b = TokenBucket(rate=1.0, burst=2)
    assert b.try_take(10.0, tokens=2)
    for bad in (NAN, 5.0):
        with pytest.raises(ValueError, match="now"):
            b.try_take(bad)
    assert b.available(11.0) == pytest.approx(1.0)       # refills from 10 s, as if nothing happened


def primed(make, now=10.0):
    """A policy that has seen time ``now`` (so that an earlier time goes back)."""
    def build():
        p = make()
        PRIME[type(p)](p, now)
        return p
    return build


PRIME = {
    CircuitBreaker: lambda p, t: p.state(t), TokenBucket: lambda p, t: p.available(t),
    LoadShedder: lambda p, t: p.should_shed(t, 0),
    Bulkhead: lambda p, t: [p.try_acquire(t) for _ in range(3)] + [p.enqueue(t) for _ in range(3)],
    RetryBudget: lambda p, t: p.allowance(t), AdaptiveThrottle: lambda p, t: p.rejection_probability(t),
    RetryPolicy: lambda p, t: p.should_retry(1, "error", now=t), HedgePolicy: lambda p, t: p.record_hedge(t),
    Timeout: lambda p, t: p.record(t, False), Deadline: lambda p, t: p.start(t),
}

# (label, a policy that has seen t = 10, a call with the time in it)
TIMED = [
    ("breaker.state", primed(lambda: CircuitBreaker(consecutive_failures=3)), lambda p, t: p.state(t)),
    ("breaker.allow", primed(lambda: CircuitBreaker(consecutive_failures=3)), lambda p, t: p.allow(t)),
    ("breaker.record", primed(lambda: CircuitBreaker(consecutive_failures=3)), lambda p, t: p.record(t, True)),
    ("breaker.cancel", primed(lambda: CircuitBreaker(consecutive_failures=3)), lambda p, t: p.cancel(t)),
    ("breaker.rates", primed(lambda: CircuitBreaker(consecutive_failures=3)), lambda p, t: p.rates(t)),
    ("bucket.available", primed(lambda: TokenBucket(1, 2)), lambda p, t: p.available(t)),
    ("bucket.try_take", primed(lambda: TokenBucket(1, 2)), lambda p, t: p.try_take(t)),
    ("bucket.wait_time", primed(lambda: TokenBucket(1, 2)), lambda p, t: p.wait_time(t)),
    ("shedder.should_shed", primed(lambda: LoadShedder(max_queue=3)), lambda p, t: p.should_shed(t, 0)),
    ("bulkhead.try_acquire", primed(lambda: Bulkhead(3, max_wait=1.0)), lambda p, t: p.try_acquire(t)),
    ("bulkhead.enqueue", primed(lambda: Bulkhead(3, max_wait=1.0)), lambda p, t: p.enqueue(t)),
    ("bulkhead.release", primed(lambda: Bulkhead(3, max_wait=1.0)), lambda p, t: p.release(t)),
    ("bulkhead.give_up", primed(lambda: Bulkhead(3, max_wait=1.0)), lambda p, t: p.give_up(t)),
    ("budget.record_request", primed(RetryBudget), lambda p, t: p.record_request(t)),
    ("budget.record_retry", primed(RetryBudget), lambda p, t: p.record_retry(t)),
    ("budget.allowance", primed(RetryBudget), lambda p, t: p.allowance(t)),
    ("budget.can_retry", primed(RetryBudget), lambda p, t: p.can_retry(t)),
    ("throttle.rejection_probability", primed(AdaptiveThrottle), lambda p, t: p.rejection_probability(t)),
    ("throttle.allow", primed(AdaptiveThrottle), lambda p, t: p.allow(t, random.Random(1))),
    ("throttle.record", primed(AdaptiveThrottle), lambda p, t: p.record(t, True)),
    ("throttle.cancel", primed(AdaptiveThrottle), lambda p, t: p.cancel(t)),
    ("retry.should_retry", primed(lambda: RetryPolicy(3, Constant(0.1))),
     lambda p, t: p.should_retry(1, "error", now=t)),
    ("retry.decide", primed(lambda: RetryPolicy(3, Constant(0.1))), lambda p, t: p.decide(t, 1, "error")),
    ("hedge.should_hedge", primed(lambda: HedgePolicy(0.1)), lambda p, t: p.should_hedge(0.0, t, 0)),
    ("hedge.record_hedge", primed(lambda: HedgePolicy(0.1)), lambda p, t: p.record_hedge(t)),
    ("hedge.record_winner", primed(lambda: HedgePolicy(0.1)), lambda p, t: p.record_winner(t, False)),
    ("timeout.expired", primed(lambda: Timeout(1.0)), lambda p, t: p.expired(0.0, t)),
    ("timeout.record", primed(lambda: Timeout(1.0)), lambda p, t: p.record(t, False)),
    ("deadline.start", primed(lambda: Deadline(1.0)), lambda p, t: p.start(t)),
    ("countdown.remaining", lambda: Deadline(1.0).start(10.0), lambda p, t: p.remaining(t)),
    ("countdown.expired", lambda: Deadline(1.0).start(10.0), lambda p, t: p.expired(t)),
    ("countdown.attempt_timeout", lambda: Deadline(1.0).start(10.0), lambda p, t: p.attempt_timeout(t, 0.5)),
    ("countdown.child", lambda: Deadline(1.0).start(10.0), lambda p, t: p.child(t)),
]
BAD_TIMES = [NAN, INF, -INF, 5.0, "12", None, True, [11.0]]


TIME_CASES = [(label, make, call, bad) for label, make, call in TIMED for bad in BAD_TIMES
              if not (bad is None and label == "retry.should_retry")]     # there now=None means "not given"


@pytest.mark.parametrize("make, call, bad", [c[1:] for c in TIME_CASES], ids=[f"{c[0]}({c[3]!r})" for c in TIME_CASES])
def test_every_policy_that_takes_now_refuses_non_finite_times_and_times_that_go_back(make, call, bad):
    p = make()
    with pytest.raises(ValueError) as err:
        call(p, bad)
    message = str(err.value)
    assert message.startswith("now must") and repr(bad) in message
    if bad == 5.0:                                   # went back: both times are named, and the way out
        assert "now=10.0" in message and "now=5.0" in message
        assert ("reset()" in message) == callable(getattr(p, "reset", None)), message   # only where there is one


@pytest.mark.parametrize("make, call", [row[1:] for row in TIMED], ids=[row[0] for row in TIMED])
def test_a_refused_time_changes_nothing_and_the_same_clock_goes_on(make, call):
    p = make()
    with pytest.raises(ValueError):
        call(p, NAN)
    call(p, 10.0)                                    # the latest time again is fine
    call(p, np.float64(11.5))                        # numpy numbers are numbers


def test_a_policy_claimed_by_one_world_is_refused_by_another_naming_the_parameter():
    w1, w2 = World(1), World(1)
    pool, budget = Bulkhead(2), RetryBudget()
    Client(w1, Service(w1, "db"), bulkhead=pool, budget=budget)
    with pytest.raises(ValueError, match=r"^bulkhead: this Bulkhead is already driven by another World"):
        Client(w2, Service(w2, "db"), bulkhead=pool)
    with pytest.raises(ValueError, match=r"^budget: this RetryBudget"):
        Client(w2, Service(w2, "db2"), budget=budget)


def test_clients_of_one_world_may_share_a_policy():
    world = World(1)
    db = Service(world, "db", capacity=10, latency=0.1)
    pool, breaker = Bulkhead(2), CircuitBreaker(consecutive_failures=3)
    a = Client(world, db, name="a", bulkhead=pool, breaker=breaker)
    b = Client(world, db, name="b", bulkhead=pool, breaker=breaker)
    assert a.bulkhead is b.bulkhead is pool
    claim(world, pool=pool, breaker=breaker)           # the same owner again: fine


def test_claim_binds_all_or_none():
    w1, w2 = World(1), World(2)
    held, fresh = TokenBucket(1, 1), LoadShedder(max_queue=1)
    claim(w1, rate_limit=held)
    with pytest.raises(ValueError, match="^rate_limit: this TokenBucket"):
        claim(w2, shedder=fresh, rate_limit=held)
    claim(w1, shedder=fresh)                            # fresh was not bound to w2
    claim(w1, breaker=None, other=object())             # None and foreign objects are skipped


def test_a_policy_stays_claimed_after_its_world_is_gone():
    breaker = CircuitBreaker(consecutive_failures=5, open_for=2.0)
    breaker_scenario(breaker)
    gc.collect()                                        # the first world is gone; its state is not
    with pytest.raises(ValueError, match="already driven by another World"):
        breaker_scenario(breaker)


def test_a_retry_policy_claims_and_resets_its_backoff():
    backoff = FullJitter(0.01, 1.0)
    w1 = World(1)
    Client(w1, Service(w1, "db"), retry=RetryPolicy(3, backoff))
    w2 = World(1)
    with pytest.raises(ValueError, match=r"retry\.backoff: this FullJitter"):
        Client(w2, Service(w2, "db"), retry=RetryPolicy(3, backoff))
    policy = RetryPolicy(3, FullJitter(0.01, 1.0))
    policy.decide(1.0, 1, "error", random.Random(1))
    policy.reset()
    assert len(policy.backoff.given) == 0 and policy.retries == [] and policy.refused == {}


def _snapshot(value):
    """A policy's state as plain data, to compare with a fresh one's."""
    if isinstance(value, EventLog):
        return ("log", list(value), value.total, dict(value.counts), value.limit)
    if isinstance(value, deque):
        return ("deque", [_snapshot(v) for v in value])
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_snapshot(v) for v in value)
    if hasattr(value, "__slots__") and not isinstance(value, (int, float, str)):
        return (type(value).__name__, [_snapshot(getattr(value, s, None)) for s in value.__slots__])
    if hasattr(value, "__dict__") and type(value).__module__.startswith("resilience_sim"):
        return {k: _snapshot(v) for k, v in vars(value).items() if k != "_owner" and not callable(v)}
    return value


def _drive_breaker(b):
    for t in range(1, 6):
        if b.allow(float(t)):
            b.record(float(t), False)
    b.allow(3000.0)


def _drive_bulkhead(b):
    b.try_acquire(1.0), b.try_acquire(1.0), b.enqueue(1.5), b.release(2.0)


RESETTABLE = [
    ("breaker", lambda: CircuitBreaker(consecutive_failures=2, open_for=1.0, start=0.5), _drive_breaker),
    ("bucket", lambda: TokenBucket(1, 3), lambda b: [b.try_take(float(t)) for t in range(6)]),
    ("shedder", lambda: LoadShedder(max_queue=1), lambda s: [s.should_shed(float(t), t % 3) for t in range(6)]),
    ("bulkhead", lambda: Bulkhead(1, max_wait=1.0), _drive_bulkhead),
    ("budget", lambda: RetryBudget(window=5.0),
     lambda b: [(b.record_request(float(t)), b.can_retry(float(t)), b.record_retry(float(t))) for t in range(9)]),
    ("throttle", lambda: AdaptiveThrottle(window=5.0),
     lambda p: [(p.allow(float(t), random.Random(t)), p.record(float(t), t % 3 == 0)) for t in range(20)]),
    ("retry", lambda: RetryPolicy(3, DecorrelatedJitter(0.1, 1.0)),
     lambda p: [p.decide(float(t), 1 + t % 3, "error", random.Random(t)) for t in range(6)]),
    ("backoff", lambda: Constant(0.1), lambda b: [b.delay(k) for k in range(1, 5)]),
    ("hedge", lambda: HedgePolicy(0.1), lambda h: (h.record_hedge(1.0), h.record_winner(1.2, True))),
    ("timeout", lambda: Timeout(1.0), lambda t: (t.record(1.0, True), t.record(2.0, False))),
    ("deadline", lambda: Deadline(1.0), lambda d: d.start(3.0)),
]


@pytest.mark.parametrize("make, drive", [row[1:] for row in RESETTABLE], ids=[row[0] for row in RESETTABLE])
def test_reset_returns_every_stateful_policy_to_its_just_constructed_state(make, drive):
    fresh, used = make(), make()
    world = World(1)
    claim(world, p=used)
    drive(used)
    assert _snapshot(used) != _snapshot(fresh)
    used.reset()
    assert _snapshot(used) == _snapshot(fresh)
    claim(World(2), p=used)                             # no owner any more
    drive(used)                                         # and its clock starts again


def test_reset_keeps_the_log_settings_and_exports_the_fresh_start():
    seen = []
    b = CircuitBreaker(consecutive_failures=1, open_for=1.0, start=2.0, log_limit=3,
                       on_event=lambda kind, entry: seen.append((kind, entry)))
    b.reset()
    assert b.history.limit == 3 and seen == [("history", (2.0, "closed"))] * 2


# --- 2. hot-path methods refuse bad durations, counts and booleans --------------------------------------
BAD_DURATIONS = [-1.0, NAN, INF, "0.5", None, True]
BAD_COUNTS = [-1, 1.5, "2", None, True, NAN]
BAD_BOOLS = ["no", "", 1, 0, None, 1.0]
BAD_STARTS = [NAN, INF, "1", None, True]

# (label, build, call with the bad value, the parameter's name, the bad values)
ARGUMENTS = [
    ("breaker.record duration", lambda: CircuitBreaker(consecutive_failures=3),
     lambda p, v: p.record(1.0, True, v), "duration", BAD_DURATIONS),
    ("breaker.record success", lambda: CircuitBreaker(consecutive_failures=3),
     lambda p, v: p.record(1.0, v), "success", BAD_BOOLS),
    ("bucket.try_take tokens", lambda: TokenBucket(1, 2), lambda p, v: p.try_take(1.0, v), "tokens",
     [0, -1, 3, NAN, "1", None, True]),
    ("shedder queue_length", lambda: LoadShedder(max_queue=3), lambda p, v: p.should_shed(1.0, v),
     "queue_length", BAD_COUNTS),
    ("shedder oldest_wait", lambda: LoadShedder(max_queue_delay=1.0), lambda p, v: p.should_shed(1.0, 0, v),
     "oldest_wait", BAD_DURATIONS),
    ("bulkhead.leave enqueued_at", lambda: Bulkhead(1, max_wait=1.0), lambda p, v: p.leave(v),
     "enqueued_at", BAD_STARTS),
    ("throttle.record accepted", AdaptiveThrottle, lambda p, v: p.record(1.0, v), "accepted", BAD_BOOLS),
    ("retry attempt", lambda: RetryPolicy(3, Constant(0.1)), lambda p, v: p.should_retry(v, "error"),
     "attempt", [0, -1, 1.5, "2", None, True, NAN]),
    ("retry idempotent", lambda: RetryPolicy(3, Constant(0.1)),
     lambda p, v: p.should_retry(1, "error", idempotent=v), "idempotent", BAD_BOOLS),
    ("retry.decide idempotent", lambda: RetryPolicy(3, Constant(0.1)),
     lambda p, v: p.decide(1.0, 1, "error", idempotent=v), "idempotent", BAD_BOOLS),
    ("retry.decide remaining", lambda: RetryPolicy(3, Constant(0.1)),
     lambda p, v: p.decide(1.0, 1, "error", remaining=v), "remaining", [NAN, "1", True]),
    ("retry.decide previous", lambda: RetryPolicy(3, Constant(0.1)),
     lambda p, v: p.decide(1.0, 1, "error", previous=v), "previous", BAD_DURATIONS[:2] + BAD_DURATIONS[2:4] + [True]),
    ("retry.next_delay retry_after", lambda: RetryPolicy(3, Constant(0.1)),
     lambda p, v: p.next_delay(1, retry_after=v), "retry_after", [-1.0, NAN, INF, "1", True]),
    ("backoff previous", lambda: Constant(0.1), lambda p, v: p.delay(1, previous=v), "previous",
     [-1.0, NAN, INF, "0.5", True]),
    ("hedge sent", lambda: HedgePolicy(0.1), lambda p, v: p.should_hedge(0.0, 1.0, v), "sent", BAD_COUNTS),
    ("hedge.hedge_at start", lambda: HedgePolicy(0.1), lambda p, v: p.hedge_at(v), "start", BAD_STARTS),
    ("hedge.record_winner hedge", lambda: HedgePolicy(0.1), lambda p, v: p.record_winner(1.0, v), "hedge",
     BAD_BOOLS),
    ("timeout.record timed_out", lambda: Timeout(1.0), lambda p, v: p.record(1.0, v), "timed_out", BAD_BOOLS),
    ("timeout.expires_at start", lambda: Timeout(1.0), lambda p, v: p.expires_at(v), "start", BAD_STARTS),
    ("timeout.expired start", lambda: Timeout(1.0), lambda p, v: p.expired(v, 1.0), "start", BAD_STARTS),
    ("countdown.child reserve", lambda: Deadline(1.0).start(0.0), lambda p, v: p.child(0.5, v), "reserve",
     BAD_DURATIONS),
    ("countdown.attempt_timeout per_attempt", lambda: Deadline(1.0).start(0.0),
     lambda p, v: p.attempt_timeout(0.5, v), "per_attempt", [0.0, -1.0, NAN, "1", None, True]),
]
ARGUMENT_CASES = [(label, make, call, name, bad) for label, make, call, name, values in ARGUMENTS
                  for bad in values]


@pytest.mark.parametrize("make, call, name, bad", [c[1:] for c in ARGUMENT_CASES],
                         ids=[f"{c[0]}={c[4]!r}" for c in ARGUMENT_CASES])
def test_hot_path_methods_refuse_bad_durations_counts_and_booleans_naming_the_parameter(make, call, name, bad):
    with pytest.raises(ValueError) as err:
        call(make(), bad)
    assert str(err.value).startswith(f"{name} must"), str(err.value)


def test_the_checks_pass_numpy_numbers_and_booleans():
    b = CircuitBreaker(consecutive_failures=2)
    permit = b.allow(np.float64(1.0))
    b.record(np.float64(1.5), np.bool_(True), np.float64(0.5), permit=permit)
    s = LoadShedder(max_queue=3)
    assert not s.should_shed(1.0, np.int64(2), np.float64(0.1))
    h = HedgePolicy(0.1, max_hedges=2)
    assert h.should_hedge(0.0, 0.25, np.int64(1)) and h.hedge_at(np.float32(1.0), 1) == pytest.approx(1.2)
    assert RetryPolicy(3, Constant(0.1)).should_retry(np.int64(1), "error", np.bool_(False), "key")


# --- 3. truthy strings are not booleans ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["idempotent", "idempotency_key"])
@pytest.mark.parametrize("bad", ["no", "False", 1, None])
def test_the_client_takes_only_true_or_false_for_its_booleans(name, bad):
    world = World(1)
    with pytest.raises(ValueError, match=rf"^{name} must be True or False, got {bad!r}"):
        Client(world, Service(world, "db"), **{name: bad})


def test_a_write_marked_not_idempotent_is_sent_once():
    world = World(1)
    db = Service(world, "db", capacity=10, latency=0.01, error_rate=1.0)
    Client(world, db, retry=RetryPolicy(3, ConstantBackoff(0.0)), idempotent=False)
    OpenLoop(world, world.clients["client"], 10, duration=10)
    results = world.run(until=11)
    assert db.calls == len(results)                   # "no" used to count as idempotent: 3 calls each


# --- 4. the adaptive throttle with retries --------------------------------------------------------------
def throttled_backend(attempts, seed=1):
    """A backend that accepts 100 requests/s (10 workers, 0.1 s each, no queue: "overload" beyond),
    offered 500 requests/s by a client with adaptive throttling (K = 2) and up to ``attempts`` attempts."""
    world = World(seed)
    db = Service(world, "db", capacity=10, latency=0.1, queue_limit=0)
    retry = RetryPolicy(attempts, ConstantBackoff(0.0)) if attempts > 1 else None
    client = Client(world, db, throttle=AdaptiveThrottle(k=2.0, window=10.0), retry=retry)
    OpenLoop(world, client, 500, duration=60)
    world.run(until=61)
    accepted = db.calls - db.failure_reasons["overload"]
    return db.calls, accepted, client


@pytest.mark.parametrize("attempts", [1, 3])
def test_with_or_without_retries_the_backend_sees_about_k_times_what_it_accepts(attempts):
    sent, accepted, client = throttled_backend(attempts)
    assert accepted > 0.8 * 100 * 60                   # the backend stays busy
    assert sent / accepted == pytest.approx(2.0, abs=0.1)    # 2.9 when only first attempts asked
    assert client.rejected["throttled"] > 0.5 * client.requests


def test_every_attempt_asks_the_throttle_and_is_recorded_once():
    throttle = AdaptiveThrottle(k=2.0, window=1000.0)
    world = World(1)
    db = Service(world, "db", capacity=1, latency=0.01, error_rate=1.0)     # fails, but not for overload
    client = Client(world, db, throttle=throttle, retry=RetryPolicy(3, ConstantBackoff(0.0)))
    OpenLoop(world, client, 1, requests=20)
    world.run(until=100)
    assert throttle.allowed == db.calls == client.attempts == 60
    assert throttle._events.marked == 60 and throttle.rejected.total == 0   # errors are accepts


def test_an_attempt_the_breaker_refuses_is_withdrawn_from_the_throttle():
    throttle = AdaptiveThrottle(k=2.0, window=1000.0)
    world = World(1)
    db = Service(world, "db", capacity=10, latency=0.01)
    breaker = CircuitBreaker(consecutive_failures=1, open_for=1e6)
    breaker.record(0.0, False)                                                # open for good
    client = Client(world, db, throttle=throttle, breaker=breaker)
    OpenLoop(world, client, 10, requests=100)
    world.run(until=100)
    assert client.rejected["circuit open"] == 100 and db.calls == 0
    assert throttle.allowed == 0 and len(throttle._events.events) == 0        # no verdict, no request
    assert throttle.rejection_probability(100.0) == 0.0                       # not poisoned by our breaker


# --- 5. breaker permits ---------------------------------------------------------------------------------
def test_a_late_result_from_a_call_allowed_while_closed_does_not_resolve_the_half_open_probe():
    b = CircuitBreaker(consecutive_failures=2, open_for=1.0)
    slow = b.allow(0.0)                             # a slow call, allowed while closed
    for t in (0.1, 0.2):
        b.record(t, False, permit=b.allow(t))       # trips at 0.2
    probe = b.allow(1.5)                            # half-open: the probe
    b.record(2.0, True, permit=slow)                # the slow call's success arrives now
    assert b.state(2.0) == "half-open" and b.late == 1
    assert not b.allow(2.0)                         # the probe is still out
    b.record(2.5, False, permit=probe)              # only the probe's own result counts
    assert b.state(2.5) == "open" and b.trips[-1] == (2.5, "probe failed")


class Scripted:
    """A target whose calls take the given (seconds, ok) in turn."""

    def __init__(self, world, script):
        self.env, self.name, self.script, self.calls = world.env, "db", iter(script), 0

    def call(self, req, caller=None):
        seconds, ok = next(self.script)
        self.calls += 1
        yield self.env.timeout(seconds)
        if not ok:
            raise ServiceError("db", "error")
        return "answer"


def call_at(world, target, at, log):
    def run():
        yield world.env.timeout(at)
        try:
            yield from target.call(Request(world.now))
            log[at] = ("ok", world.now)
        except ServiceError as err:
            log[at] = (err.reason, world.now)
    world.env.process(run())


def test_in_the_simulator_a_slow_call_that_ends_while_half_open_is_late_not_the_probe():
    world = World(1)
    db = Scripted(world, [(5.0, True), (0.0, False), (0.0, False), (10.0, False)])
    breaker = CircuitBreaker(consecutive_failures=2, open_for=1.0)
    client = Client(world, db, breaker=breaker)
    log = {}
    for t in (0.0, 0.1, 0.2, 2.0):                  # slow ok, fail, fail (trips), the probe (10 s, fails)
        call_at(world, client, t, log)
    world.run(until=6)
    assert breaker.state(6.0) == "half-open" and breaker.late == 1   # used to close on the slow success
    world.run(until=20)
    assert [s for _, s in breaker.history] == ["closed", "open", "half-open", "open"]
    assert log[0.0] == ("ok", 5.0) and log[2.0] == ("error", 12.0)


def test_code_written_for_allow_returning_a_bool_still_works():
    b = CircuitBreaker(consecutive_failures=3, open_for=10.0)
    for t in (1.0, 1.1, 1.2):
        if b.allow(t):
            b.record(t, success=False)
    states = [b.state(1.2), b.allow(5.0), b.state(11.2), b.allow(11.2), b.allow(11.3)]
    assert states == ["open", False, "half-open", True, False]     # a permit equals True
    assert b.allow(11.4) is False and bool(b.allow(11.4)) is False


def test_without_a_permit_a_result_resolves_the_oldest_outstanding_call_and_a_cancel_the_newest():
    b = CircuitBreaker(consecutive_failures=2, open_for=1.0, half_open_probes=1)
    assert b.allow(0.0)                             # a slow call, allowed while closed
    for t in (0.1, 0.2):
        assert b.allow(t)
        b.record(t, False)                          # closed-period results: they count; trips at 0.2
    assert b.state(0.2) == "open"                   # one closed-period permit is still out
    assert b.allow(1.3)                             # the probe
    b.record(1.4, True)                             # the oldest outstanding is from the closed period: late
    assert b.state(1.4) == "half-open" and b.late == 1
    assert not b.allow(1.5)                         # the probe is still out
    b.cancel(1.6)                                   # the newest outstanding, the probe's permit, comes back
    assert b.allow(1.7)
    b.record(1.8, True)
    assert b.state(1.8) == "closed"


def test_a_permit_is_resolved_once_and_only_by_its_own_breaker():
    a, b = CircuitBreaker(consecutive_failures=2), CircuitBreaker(consecutive_failures=2)
    permit = a.allow(0.0)
    with pytest.raises(ValueError, match="permit must be what this breaker's allow"):
        b.record(0.1, True, permit=permit)
    a.record(0.1, True, permit=permit)
    with pytest.raises(ValueError, match="already recorded or cancelled"):
        a.cancel(0.2, permit=permit)
    with pytest.raises(ValueError, match="permit must be"):
        a.record(0.3, True, permit=True)
    a.reset()
    with pytest.raises(ValueError, match="permit must be"):       # permits from before a reset
        a.record(0.0, True, permit=permit)


def test_a_learners_breaker_with_allow_returning_a_bool_is_driven_the_old_way():
    class Mine:
        def __init__(self):
            self.calls = []

        def allow(self, now):
            return True

        def record(self, now, success, duration=0.0):
            self.calls.append((now, success))

    mine, world = Mine(), World(1)
    Client(world, Service(world, "db", latency=0.01), breaker=mine)
    OpenLoop(world, world.clients["client"], 10, requests=5)
    world.run(until=10)
    assert len(mine.calls) == 5 and all(ok is True for _, ok in mine.calls)


# --- 6. one rule for an infinite timeout ----------------------------------------------------------------
def slow_run(**kw):
    world = World(1)
    db = Service(world, "db", capacity=100, latency=2.0)
    Client(world, db, **kw)
    OpenLoop(world, world.clients["client"], 5, duration=10)
    results = world.run(until=20)
    return list(results.outcome), list(results.latency)


@pytest.mark.parametrize("kw", [{"timeout": INF}, {"timeout": Timeout(INF)}, {"deadline": INF},
                                {"deadline": Deadline(INF)}], ids=repr)
def test_an_infinite_timeout_or_deadline_means_none_for_the_client_as_for_the_policies(kw):
    assert slow_run(**kw) == slow_run()
    assert slow_run(timeout=1.0) != slow_run()


@pytest.mark.parametrize("kw, name", [({"timeout": 0}, "timeout"), ({"timeout": NAN}, "timeout"),
                                      ({"deadline": -INF}, "deadline"), ({"deadline": "1"}, "deadline")])
def test_zero_negative_nan_or_non_numbers_are_still_refused(kw, name):
    world = World(1)
    with pytest.raises(ValueError, match=f"^{name} must be"):
        Client(world, Service(world, "db"), **kw)


# --- the client's own arguments -------------------------------------------------------------------------
def test_a_request_row_counts_the_attempts_of_its_own_client_not_those_of_a_dependency_client():
    world = World(1)
    leaf = Service(world, "leaf", capacity=10, latency=0.01, error_rate=1.0)
    to_leaf = Client(world, leaf, name="mid->leaf", retry=RetryPolicy(4, ConstantBackoff(0.0)))

    def handler(svc, req):
        return (yield from svc.ask("leaf", req))

    mid = Service(world, "mid", capacity=10, handler=handler, dependencies=[to_leaf])
    OpenLoop(world, mid, 5, requests=20)
    results = world.run(until=20)
    assert leaf.calls == 4 * 20 and set(results.attempts) == {1}     # used to be 4: the dependency's


@pytest.mark.parametrize("world", ["x", None, 1], ids=repr)
def test_the_client_refuses_what_is_not_a_world(world):
    with pytest.raises(TypeError, match="^world must be a World"):
        Client(world, Service(World(1), "db"))


def test_the_client_refuses_a_target_of_another_world():
    with pytest.raises(ValueError, match="^target belongs to another World than the world given"):
        Client(World(1), Service(World(2), "db"))
