"""The policies package as a whole: exports, the documented composition order, the rules every
policy keeps (no sleeping, no simpy, no threads, no global random), and one composed request loop."""
import ast
import pathlib
import random

import resilience_sim.policies as policies
from resilience_sim.policies import (AdaptiveThrottle, Bulkhead, CircuitBreaker, Deadline,
                                     FullJitter, RetryBudget, RetryPolicy, Timeout)

SOURCES = sorted(pathlib.Path(policies.__file__).parent.glob("*.py"))


def test_exports_resolve():
    for name in policies.__all__:
        assert getattr(policies, name) is not None


def test_docstring_gives_the_composition_order_outside_in():
    doc = policies.__doc__.lower()
    layers = ["adaptive throttle", "deadline", "retry", "circuit breaker", "bulkhead",
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
    calls, outcomes = 0, []
    for i in range(n):
        now = i * 0.1
        if not throttle.allow(now, rng):
            outcomes.append("throttled")
            continue
        countdown, attempt, previous = deadline.start(now), 0, None
        budget.record_request(now)
        while True:
            attempt += 1
            if not breaker.allow(now):
                reason = "circuit open"
            elif not bulkhead.try_acquire(now):
                breaker.cancel(now)
                reason = "bulkhead full"
            else:
                calls += 1
                limit = countdown.attempt_timeout(now, timeout)
                ok, took = attempt_outcome(now, down_until)
                took = min(took, limit)
                now += took
                bulkhead.release(now)
                breaker.record(now, ok, took)
                reason = None if ok else "error"
            if reason is None:
                throttle.record(now, True)
                outcomes.append("ok")
                break
            delay = retry.decide(now, attempt, reason, rng, previous=previous,
                                 remaining=countdown.remaining(now))
            if delay is None or not budget.can_retry(now):
                if reason != "circuit open":              # a local refusal is no backend verdict
                    throttle.record(now, False)
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
