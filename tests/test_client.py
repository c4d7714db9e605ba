"""The simulated client: the policies driven in simulated time, composed in the documented order."""
import numpy as np
import pytest

from resilience_sim import Client, Mixture, OpenLoop, Outage, Outcome, Service, World
from resilience_sim.policies import (AdaptiveThrottle, Bulkhead, CircuitBreaker, ConstantBackoff, FullJitter,
                                     HedgePolicy, LoadShedder, RetryBudget, RetryPolicy, TokenBucket)


def retries(n, wait=0.0):
    return RetryPolicy(n, ConstantBackoff(wait) if wait else ConstantBackoff(1e-9))


def test_retries_rescue_transient_errors_at_the_cost_of_extra_calls():
    world = World(1)
    db = Service(world, "db", capacity=50, latency=0.01, error_rate=0.3)
    client = Client(world, db, retry=RetryPolicy(3, FullJitter(0.01, 1.0)))
    OpenLoop(world, client, 50, duration=400)
    results = world.run(until=410)
    assert results.request_availability() == pytest.approx(1 - 0.3 ** 3, abs=0.004)
    assert results.client("client").amplification == pytest.approx(1 + 0.3 + 0.09, abs=0.02)
    assert results.attempts_per_request() == pytest.approx(1.39, abs=0.02)
    assert client.backoff_time > 0


def test_amplification_across_layers_is_the_product_of_attempts():
    world = World(1)
    leaf = Service(world, "leaf", capacity=100, latency=0.001, error_rate=1.0)
    to_leaf = Client(world, leaf, name="mid->leaf", retry=retries(3))

    def mid_handler(svc, req):
        return (yield from to_leaf.call(req, caller=svc))

    mid = Service(world, "mid", capacity=100, handler=mid_handler)
    top = Client(world, mid, name="top->mid", retry=retries(4))
    OpenLoop(world, top, 10, requests=200)
    results = world.run(until=100)
    assert results.calls_per_request("leaf") == 3 * 4
    assert results.calls_per_request("mid") == 4
    assert set(results.outcome) == {Outcome.FAILED}


def test_timeout_bounds_each_attempt_but_the_server_keeps_working():
    world = World(1)
    slow = Service(world, "slow", capacity=100, latency=1.0)
    Client(world, slow, timeout=0.1)
    OpenLoop(world, world.clients["client"], 10, duration=20)
    results = world.run(until=30)
    assert set(results.outcome) == {Outcome.TIMED_OUT}
    assert np.allclose(results.latency, 0.1)
    assert results.services["slow"].calls == len(results)     # the work went on regardless


def test_deadline_bounds_retries_and_propagates_to_dependencies():
    world = World(1)
    leaf = Service(world, "leaf", capacity=100, latency=0.3, error_rate=1.0)
    inner = Client(world, leaf, name="inner", retry=retries(10))

    def handler(svc, req):
        return (yield from inner.call(req, caller=svc))

    mid = Service(world, "mid", capacity=100, handler=handler)
    Client(world, mid, name="outer", deadline=1.0, retry=retries(10))
    OpenLoop(world, world.clients["outer"], 5, duration=20)
    results = world.run(until=30)
    assert results.latency.max() <= 1.0 + 1e-9
    assert results.services["leaf"].calls <= 4 * len(results)   # at most ceil(1.0 / 0.3) leaf calls each
    assert results.reasons()["deadline"] + results.reasons()["timeout"] == len(results)


def test_circuit_breaker_fails_fast_during_an_outage_and_closes_after():
    world = World(1)
    api = Service(world, "api", capacity=100, latency=0.01)
    Outage(api, [(10, 20)])
    breaker = CircuitBreaker(consecutive_failures=5, open_for=2.0)
    Client(world, api, breaker=breaker)
    OpenLoop(world, world.clients["client"], 50, duration=30)
    results = world.run(until=31)
    during = (results.start > 10.5) & (results.start < 19.5)
    assert np.mean(results.outcome[during] == Outcome.REJECTED) > 0.9
    assert results.services["api"].calls < len(results) - 400
    states = [s for _, s in results.client("client").breaker_history]
    assert states[:4] == ["closed", "open", "half-open", "open"] and states[-1] == "closed"
    after = results.start > 23
    assert np.all(results.outcome[after] == Outcome.OK)
    assert results.client("client").breaker_state_at([5, 15, 29]).tolist() == [0, 2, 0] or \
        results.client("client").breaker_state_at([5, 29]).tolist() == [0, 0]


def test_bulkhead_caps_concurrency_and_can_wait_a_bounded_time():
    world = World(1)
    slow = Service(world, "slow", capacity=100, latency=1.0)
    bulkhead = Bulkhead(4, max_wait=0.5)
    Client(world, slow, bulkhead=bulkhead)
    OpenLoop(world, world.clients["client"], 10, duration=50)
    results = world.run(until=60)
    assert bulkhead.peak == 4
    assert results.reasons()["bulkhead full"] > 0
    ok = results.outcome == Outcome.OK
    assert results.latency[ok].max() <= 1.5 + 1e-9
    assert np.count_nonzero(ok) == pytest.approx(4 * 50, rel=0.05)    # four slots busy all along


def test_hedging_at_the_p95_cuts_the_tail_for_about_five_percent_more_calls():
    def run(hedge):
        world = World(3)
        leaf = Service(world, "leaf", capacity=1000, latency=Mixture.slow_tail(0.010, 1.0, 0.05))
        Client(world, leaf, hedge=hedge)
        OpenLoop(world, world.clients["client"], 100, duration=200)
        return world.run(until=210)

    plain, hedged = run(None), run(HedgePolicy(delay=0.011))
    assert plain.latency_percentiles((99,))[99] == pytest.approx(1.0)
    assert hedged.latency_percentiles((99,))[99] == pytest.approx(0.021, abs=0.002)
    assert hedged.client("client").hedges / len(hedged) == pytest.approx(0.05, abs=0.01)
    # losers are cancelled: their slots come back, so the leaf served about 1.05 calls per request
    assert hedged.calls_per_request("leaf") == pytest.approx(1.05, abs=0.01)


def test_non_idempotent_calls_are_not_retried_without_a_key():
    def run(**kw):
        world = World(1)
        db = Service(world, "db", capacity=10, latency=0.01, error_rate=0.5)
        Client(world, db, retry=retries(3), **kw)
        OpenLoop(world, world.clients["client"], 10, duration=50)
        return world.run(until=60)

    assert run(idempotent=False).client("client").amplification == 1.0
    assert run(idempotent=False, idempotency_key=True).client("client").amplification > 1.5


def test_retry_budget_caps_retries_at_a_share_of_requests():
    world = World(1)
    db = Service(world, "db", capacity=100, latency=0.001, error_rate=1.0)
    Client(world, db, retry=retries(3), budget=RetryBudget(ratio=0.1, window=10.0, min_per_second=0.0))
    OpenLoop(world, world.clients["client"], 100, duration=100)
    results = world.run(until=101)
    assert results.client("client").amplification == pytest.approx(1.1, abs=0.01)
    assert results.client("client").budget_denied > 0


def test_adaptive_throttle_rejects_locally_when_the_backend_refuses():
    world = World(1)
    db = Service(world, "db", capacity=1, latency=0.1, queue_limit=0)   # 10/s, refuses the rest
    Client(world, db, throttle=AdaptiveThrottle(k=2.0, window=10.0))
    OpenLoop(world, world.clients["client"], 100, duration=60)
    results = world.run(until=61)
    rejected = results.client("client").rejected["throttled"]
    assert rejected > 0.3 * len(results)
    assert results.services["db"].calls < 0.7 * len(results)


@pytest.mark.parametrize("shedder", [LoadShedder(max_queue=3), LoadShedder(max_queue_delay=0.3)])
def test_load_shedding_keeps_an_overloaded_queue_short(shedder):
    def run(shedder):
        world = World(1)
        Service(world, "api", capacity=1, latency=0.1, shedder=shedder)
        OpenLoop(world, world.service("api"), 20, duration=30)           # twice what it can serve
        return world.run(until=40)

    plain, shed = run(None), run(shedder)
    assert plain.latency_percentiles((50,))[50] > 5.0                  # the queue grows all along
    assert shed.latency_percentiles((50,))[50] < 1.0
    assert shed.services["api"].failure_reasons["shed"] == shed.outcome_counts()["rejected"] > 200


def test_rate_limit_refuses_what_exceeds_the_bucket():
    world = World(1)
    limited = Service(world, "limited", capacity=100, latency=0.001, rate_limit=TokenBucket(rate=5, burst=5))
    OpenLoop(world, limited, 20, duration=30)
    results = world.run(until=40)
    assert results.services["limited"].failure_reasons["rate limited"] == pytest.approx(15 * 30, rel=0.1)


def test_client_rejects_bad_input():
    world = World(1)
    svc = Service(world, "svc")
    for kwargs, words in [({"timeout": 0}, "timeout"), ({"deadline": -1}, "deadline"),
                          ({"retry": 3}, "retry must be a RetryPolicy"), ({"breaker": "x"}, "breaker"),
                          ({"name": ""}, "name")]:
        with pytest.raises(ValueError, match=words):
            Client(world, svc, **kwargs)
    with pytest.raises(ValueError, match="target"):
        Client(world, "svc")


def test_any_object_with_allow_and_record_serves_as_a_breaker():
    class AlwaysOpen:
        def allow(self, now):
            return False

        def record(self, now, success, duration=0.0):
            raise AssertionError("never called: nothing was allowed")

    world = World(1)
    api = Service(world, "api", latency=0.01)
    Client(world, api, breaker=AlwaysOpen())
    OpenLoop(world, world.clients["client"], 10, duration=5)
    results = world.run(until=6)
    assert set(results.reasons()) == {"circuit open"} and api.calls == 0
    with pytest.raises(ValueError, match="breaker must be a CircuitBreaker or an object with methods allow, record"):
        Client(world, api, name="other", breaker=object())


# --- regressions --------------------------------------------------------------------------------
def _call_at(world, target, at, log, deadline=float("inf")):
    from resilience_sim import Request, ServiceError

    def run():
        yield world.env.timeout(at)
        req = Request(world.now)
        req.deadline = deadline
        try:
            yield from target.call(req)
            log[at] = ("ok", world.now)
        except ServiceError as err:
            log[at] = (err.reason, world.now)
    world.env.process(run())


def test_a_shedder_with_max_queue_zero_serves_whoever_finds_a_free_slot():
    world = World(1)
    api = Service(world, "api", capacity=4, latency=0.01, shedder=LoadShedder(max_queue=0))
    OpenLoop(world, api, 1, duration=100)          # nobody ever has to wait: nobody is shed
    assert world.run(until=101).request_availability() == 1.0
    world = World(1)
    api = Service(world, "api", capacity=1, latency=1.0, shedder=LoadShedder(max_queue=0))
    log = {}
    for t in (0.0, 0.5, 1.5):
        _call_at(world, api, t, log)
    world.run(until=5)
    assert log == {0.0: ("ok", 1.0), 0.5: ("shed", 0.5), 1.5: ("ok", 2.5)}


def test_a_client_cancelled_by_a_hedging_client_above_returns_its_books():
    # the outer client hedges; its target is another client (documented: "a Service or another client")
    world = World(1)
    db = Service(world, "db", capacity=10, latency=1.0)
    pool = Bulkhead(1, max_wait=5.0)
    inner = Client(world, db, name="inner", bulkhead=pool)
    Client(world, inner, name="outer", hedge=HedgePolicy(delay=0.1, max_hedges=2))
    OpenLoop(world, world.clients["outer"], 0.05, requests=3)
    results = world.run(until=200)
    assert results.outcome_counts()["ok"] == 3                       # used to leak the slot: "bulkhead full"
    assert pool.in_use == 0 and pool.waiting == 0

    world = World(1)
    db = Service(world, "db", capacity=10, latency=1.0)
    breaker = CircuitBreaker(consecutive_failures=1, open_for=1.0)
    inner = Client(world, db, name="inner", breaker=breaker)
    Client(world, inner, name="outer", hedge=HedgePolicy(delay=0.1))
    OpenLoop(world, world.clients["outer"], 0.2, duration=100)
    results = world.run(until=102)            # time for the last request to end
    assert breaker.trips == [] and results.request_availability() == 1.0   # a cancel is not a failure

    world = World(1)                                # cancelled mid-attempt, with a half-open breaker
    db = Service(world, "db", capacity=10, latency=1.0)
    breaker = CircuitBreaker(consecutive_failures=1, open_for=1.0)
    breaker.record(0.0, False)                      # half-open from 1 s
    inner = Client(world, db, name="inner", breaker=breaker, timeout=5.0)
    fast = Service(world, "fast", latency=0.2)

    class Race:                                     # the primary goes to the inner client, the copy to fast
        order = iter([inner, fast])

        def call(self, req, caller=None):
            return next(self.order).call(req, caller)

    outer = Client(world, Race(), name="outer", hedge=HedgePolicy(delay=0.0))
    log = {}
    _call_at(world, outer, 2.0, log)
    world.run(until=10)
    assert log == {2.0: ("ok", 2.2)}
    assert db.busy == 0                      # the inner attempt was cancelled too, not left running
    assert breaker.allow(10.0)                      # its probe permit came back: not stuck half-open


def test_a_bulkhead_wait_never_outlasts_the_deadline():
    world = World(1)
    db = Service(world, "db", capacity=10, latency=1.0)
    pool = Bulkhead(1, max_wait=2.0)
    client = Client(world, db, name="c", bulkhead=pool)
    log = {}
    _call_at(world, client, 0.0, log)
    _call_at(world, client, 0.1, log, deadline=0.3)     # its caller gives up at 0.3
    world.run(until=10)
    assert log == {0.0: ("ok", 1.0), 0.1: ("deadline", 0.3)}
    assert client.rejected == {"deadline": 1} and pool.waiting == 0 and pool.rejections == []


def test_clients_sharing_a_bulkhead_hand_slots_to_each_others_waiters():
    world = World(1)
    db = Service(world, "db", capacity=10, latency=0.5)
    pool = Bulkhead(1, max_wait=2.0)
    a, b = Client(world, db, name="a->db", bulkhead=pool), Client(world, db, name="b->db", bulkhead=pool)
    OpenLoop(world, a, 2, duration=20, name="a")
    OpenLoop(world, b, 2, duration=20, name="b")
    results = world.run(until=40)                     # used to fail: IndexError, pop from empty list
    assert pool.in_use == 0 and pool.waiting == 0 and pool.peak == 1
    assert results.only("a").outcome_counts()["ok"] > 0 and results.only("b").outcome_counts()["ok"] > 0


def test_a_hedged_attempt_that_times_out_leaves_its_copies_working_like_any_timed_out_attempt():
    world = World(1)
    db = Service(world, "db", capacity=1, latency=1.0)
    client = Client(world, db, name="c", timeout=0.5, hedge=HedgePolicy(delay=0.1))
    log = {}
    _call_at(world, client, 0.0, log)
    _call_at(world, db, 0.6, log)        # straight to db: waits for the primary (to 1.0), then the copy (to 2.0)
    world.run(until=10)
    assert log == {0.0: ("timeout", 0.5), 0.6: ("ok", 3.0)}


def test_the_adaptive_throttle_draws_from_its_own_stream():
    world = World(1)
    api = Service(world, "api", capacity=1, latency=0.1, queue_limit=0)
    client = Client(world, api, name="c", throttle=AdaptiveThrottle(k=1.0, window=10.0))
    OpenLoop(world, client, 50, duration=20)
    results = world.run(until=21)
    assert results.client("c").rejected["throttled"] > 0          # it drew numbers...
    assert client.rng.random() == World(1).rng("client/c").random()   # ...but not from the jitter stream


def test_a_client_rate_limit_caps_its_own_attempts_and_sends_none_it_refuses():
    from resilience_sim.policies import CircuitBreaker, TokenBucket
    world = World(1)
    db = Service(world, "db", capacity=100, latency=0.01)
    breaker = CircuitBreaker(consecutive_failures=3)
    limited = Client(world, db, name="limited", rate_limit=TokenBucket(5, 5), breaker=breaker)
    OpenLoop(world, limited, 20, duration=10)
    results = world.run(11)
    sent = results.services["db"].calls
    assert 50 <= sent <= 56 and results.reasons() == {"rate limited": len(results) - sent}
    assert results.client("limited").rejected["rate limited"] == len(results) - sent
    assert breaker.state(11) == "closed"          # a local refusal is no failure of the db


def test_retries_count_the_attempts_sent_after_the_first_and_not_those_a_breaker_refused():
    world = World(1)
    db = Service(world, "db", capacity=100, latency=0.001, error_rate=1.0)
    plain = Client(world, db, name="plain", retry=retries(3))
    guarded = Client(world, db, name="guarded", retry=retries(3),
                     breaker=CircuitBreaker(consecutive_failures=4, open_for=1e6))
    OpenLoop(world, plain, 10, requests=50, name="p")
    OpenLoop(world, guarded, 10, requests=50, name="g")
    results = world.run(until=100)
    assert results.client("plain").retries == 50 * 2 == results.client("plain").attempts - 50
    # the breaker opens after 4 failures (two whole requests); every later try is refused unsent, so the
    # sent attempts are 4, the retries among them 2, and attempts - requests (4 - 50) says nothing
    g = results.client("guarded")
    assert (g.attempts, g.retries, g.requests) == (4, 2, 50)


def test_a_retry_refused_downstream_for_an_unsent_reason_was_still_sent_and_counts():
    # the first request's only attempt fails at the leaf and opens the inner breaker; the outer retry reaches
    # mid, whose inner client refuses it ("circuit open", the inner client's refusal, not the outer's): one
    # retry sent, so counted (kills Client.call mutmut_46: `or` -> `and` in the retries count)
    world = World(1)
    leaf = Service(world, "leaf", capacity=100, latency=0.01, error_rate=1.0)
    inner = Client(world, leaf, name="inner", breaker=CircuitBreaker(consecutive_failures=1, open_for=1000.0))

    def handler(svc, req):
        return (yield from inner.call(req, caller=svc))

    Service(world, "mid", capacity=100, handler=handler)
    outer = Client(world, world.services["mid"], name="outer", retry=retries(3, wait=0.01))
    OpenLoop(world, outer, 5, duration=20)
    world.run(until=30)
    assert inner.rejected["circuit open"] == outer.attempts - 1          # all but the very first attempt
    assert outer.retries == outer.attempts - outer.requests == 1
