"""The policies package as a whole: exports, the documented composition order, the rules every
policy keeps (no sleeping, no simpy, no threads, no global random; logs bounded, counts exact), and one
composed request loop."""
import ast
import pathlib
import random

import pytest

import resilience_sim.policies as policies
from resilience_sim.core.eventlog import DEFAULT_LIMIT
from resilience_sim.policies import (AdaptiveThrottle, Bulkhead, CircuitBreaker, Deadline,
                                     FullJitter, RetryBudget, RetryPolicy, Timeout)

SOURCES = sorted(pathlib.Path(policies.__file__).parent.glob("*.py"))


def test_exports_resolve():
    for name in policies.__all__:
        assert getattr(policies, name) is not None


def test_docstring_gives_the_composition_order_outside_in():
    doc = policies.__doc__.lower()
    layers = ["deadline", "retry", "adaptive throttle", "circuit breaker", "bulkhead",
              "per-attempt timeout", "hedging"]
    positions = [doc.index(f"**{layer}") for layer in layers]
    assert positions == sorted(positions)
    assert "resilience4j" in doc


def test_policies_never_sleep_import_simpy_threads_or_use_global_random():
    banned_modules = {"simpy", "threading", "asyncio", "time", "random"}
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & banned_modules, path.name
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] not in banned_modules, path.name


def attempt_outcome(now, down_until):
    """A dependency that fails until `down_until`, then answers in 0.01 s."""
    return (now >= down_until), 0.01


def run_requests(n, down_until, seed=1):
    """Drive the layers in the documented order, with plain numbers and a fake outcome."""
    rng = random.Random(seed)
    throttle, budget = AdaptiveThrottle(window=10.0), RetryBudget(ratio=0.1, window=10.0, min_per_second=0.2)
    retry = RetryPolicy(4, FullJitter(0.05, cap=1.0))
    breaker = CircuitBreaker(consecutive_failures=5, open_for=2.0)
    bulkhead, timeout, deadline = Bulkhead(10), Timeout(0.2), Deadline(1.0)
    calls, outcomes, now = 0, [], 0.0
    for i in range(n):
        now = max(now, i * 0.1)          # one clock: a request starts when it arrives or the last one ended
        countdown, attempt, previous = deadline.start(now), 0, None
        while True:
            attempt += 1
            if not throttle.allow(now, rng):              # every attempt is a request to the throttle
                reason = "throttled"
            elif not (permit := breaker.allow(now)):
                throttle.cancel(now)                      # a local refusal is no backend verdict
                reason = "circuit open"
            elif not bulkhead.try_acquire(now):
                breaker.cancel(now, permit=permit)
                throttle.cancel(now)
                reason = "bulkhead full"
            else:
                if attempt == 1:
                    budget.record_request(now)
                calls += 1
                limit = countdown.attempt_timeout(now, timeout)
                ok, took = attempt_outcome(now, down_until)
                took = min(took, limit)
                now += took
                bulkhead.release(now)
                breaker.record(now, ok, took, permit=permit)
                throttle.record(now, ok)
                reason = None if ok else "error"
            if reason is None:
                outcomes.append("ok")
                break
            delay = retry.decide(now, attempt, reason, rng, previous=previous,
                                 remaining=countdown.remaining(now))
            if delay is None or not budget.can_retry(now):
                outcomes.append(reason)
                break
            budget.record_retry(now)
            now, previous = now + delay, delay
    return calls, outcomes, breaker, budget, retry


def test_composed_loop_recovers_and_keeps_amplification_bounded():
    calls, outcomes, breaker, budget, retry = run_requests(1000, down_until=10.0, seed=2)
    assert outcomes[-200:] == ["ok"] * 200                               # recovered after the outage
    assert outcomes[:100].count("ok") == 0 and "throttled" in outcomes[:100]
    assert breaker.state(1e9) == "closed"
    assert [s for _, s in breaker.history][:3] == ["closed", "open", "half-open"]
    assert budget.retries <= 0.1 * budget.requests + 0.2 * 10 * 11      # budget held over the run
    assert calls < 1000 * 1.2                                           # far below 4 attempts each
    assert "circuit open" in outcomes
    assert "not retryable" in retry.refused                            # open breaker: no blind retry


# --- every policy's logs are bounded, counted exactly and exported -----------------------------------
class _AlwaysZero:
    """An rng whose every draw is 0.0: a throttle with any p > 0 rejects."""
    def random(self):
        return 0.0


def _held_bulkhead(**log):
    b = policies.Bulkhead(1, max_wait=1.0, **log)
    assert b.try_acquire(0.0)
    return b


def _held_full_bulkhead(**log):
    b = policies.Bulkhead(1, **log)
    assert b.try_acquire(0.0)
    return b


def _open_breaker(**log):
    b = CircuitBreaker(consecutive_failures=1, open_for=1e9, **log)
    assert b.allow(0.0)
    b.record(0.0, False)
    return b


def _empty_bucket(**log):
    b = policies.TokenBucket(1e-9, 1.0, **log)
    assert b.try_take(0.0)
    return b


def _hand_over(b, i):
    b.enqueue(float(i))
    assert b.release(i + 0.5)


def _throttle_rejects(t, i):
    t.record(float(i), False)
    assert not t.allow(float(i), _AlwaysZero())


# (what the policy is, how to build it with log settings, one step that logs one entry, the log's name)
LOGGED = [
    ("backoff", lambda **log: policies.Constant(0.1, **log), lambda p, i: p.delay(1), "given"),
    ("full jitter", lambda **log: policies.FullJitter(0.1, 1.0, **log),
     lambda p, i: p.delay(1, random.Random(i)), "given"),
    ("breaker history", lambda **log: CircuitBreaker(consecutive_failures=1, open_for=1.0, **log),
     lambda p, i: (p.allow(float(i)), p.record(float(i), False)), "history"),
    ("breaker trips", lambda **log: CircuitBreaker(consecutive_failures=1, open_for=1.0, **log),
     lambda p, i: (p.allow(float(i)), p.record(float(i), False)), "trips"),
    ("breaker rejections", _open_breaker, lambda p, i: p.allow(1.0 + i), "rejections"),
    ("retries", lambda **log: RetryPolicy(3, policies.Constant(0), **log),
     lambda p, i: p.should_retry(1, "error", now=float(i)), "retries"),
    ("refusals", lambda **log: RetryPolicy(3, policies.Constant(0), **log),
     lambda p, i: p.should_retry(3, "error", now=float(i)), "refusals"),
    ("budget", lambda **log: RetryBudget(ratio=0.0, window=1.0, min_per_second=0.0, **log),
     lambda p, i: p.can_retry(float(i)), "denied"),
    ("throttle", lambda **log: AdaptiveThrottle(window=1.0, **log), _throttle_rejects, "rejected"),
    ("bulkhead full", _held_full_bulkhead, lambda p, i: p.try_acquire(float(i)), "rejections"),
    ("bulkhead waits", _held_bulkhead, _hand_over, "waits"),
    ("token bucket", _empty_bucket, lambda p, i: p.try_take(float(i)), "rejections"),
    ("load shedder", lambda **log: policies.LoadShedder(max_queue=0, **log),
     lambda p, i: p.should_shed(float(i), 0), "sheds"),
    ("hedging", lambda **log: policies.HedgePolicy(0.1, **log), lambda p, i: p.record_hedge(float(i)), "hedge_times"),
    ("timeout", lambda **log: Timeout(1.0, **log), lambda p, i: p.record(float(i), True), "timeouts"),
    ("countdown", lambda **log: Deadline(1e9, **log).start(0.0),
     lambda p, i: p.attempt_timeout(float(i), 1.0), "attempts"),
    ("child countdown", lambda **log: Deadline(1e9, **log).start(0.0).child(0.0),
     lambda p, i: p.attempt_timeout(float(i), 1.0), "attempts"),
]


@pytest.mark.parametrize("make, step, name", [row[1:] for row in LOGGED], ids=[row[0] for row in LOGGED])
def test_every_policy_log_is_bounded_counted_exactly_and_exported_in_order(make, step, name):
    seen = []
    p = make(log_limit=7, on_event=lambda kind, entry: seen.append((kind, entry)))
    log = getattr(p, name)
    before = log.total                                   # the breaker's history starts with an entry
    for i in range(500):
        step(p, i)
    assert log.total - before >= 500 and len(log) == 7 and log.dropped == log.total - 7
    mine = [entry for kind, entry in seen if kind == name]
    assert len(mine) == log.total and mine[-7:] == list(log)          # every entry, in order
    assert getattr(make(), name).limit == DEFAULT_LIMIT                # the default
    assert getattr(make(log_limit=None), name).limit is None


def test_counters_that_existed_stay_exact_past_the_limit():
    full = _held_full_bulkhead(log_limit=3)
    shedder = policies.LoadShedder(max_queue=0, max_queue_delay=1.0, log_limit=3)
    for i in range(100):
        full.try_acquire(float(i))
        shedder.should_shed(float(i), 0)
    assert full.rejected == 100 and len(full.rejections) == 3 and full.rejections.counts == {"full": 100}
    assert shedder.sheds.total == 100 and shedder.sheds.counts == {"queue full": 100}


@pytest.mark.parametrize("make", [lambda **kw: policies.Constant(0.1, **kw), lambda **kw: Timeout(1.0, **kw),
                                  lambda **kw: Deadline(1.0, **kw), lambda **kw: Bulkhead(1, **kw),
                                  lambda **kw: policies.TokenBucket(1.0, 1.0, **kw),
                                  lambda **kw: policies.HedgePolicy.from_latencies([0.1, 0.2], **kw)])
def test_bad_log_settings_are_refused_at_construction(make):
    with pytest.raises(ValueError, match=r"log_limit must be a whole number >= 0 .*or None.*got -1"):
        make(log_limit=-1)
    with pytest.raises(ValueError, match=r"on_event must be a function \(kind, entry\) or None, got 'x'"):
        make(on_event="x")
