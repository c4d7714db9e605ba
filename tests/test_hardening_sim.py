"""The simulator cannot be fooled: a run that would never end stops itself with an error naming the
likely cause, what cannot fit is refused up front, parts of two worlds do not mix, and mistakes are
reported where they are made, in our words rather than simpy's or numpy's.

A run that used to hang runs in a subprocess with a time limit, so a regression fails instead of
hanging the suite."""
import subprocess
import sys
import textwrap

import pytest

from resilience_sim import ClosedLoop, FailureRepair, OpenLoop, Outage, Partition, RepairCrew, Service, World


def ends_with(code: str, limit: float = 60.0) -> str:
    """Run ``code`` in a fresh interpreter; return what it printed to stderr (it must fail)."""
    done = subprocess.run([sys.executable, "-c", "from resilience_sim import *\n" + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=limit)
    assert done.returncode != 0, "the run ended without an error"
    return done.stderr


@pytest.mark.parametrize("code, cause", [
    ("""
     w = World(1); s = Service(w, "s")
     ClosedLoop(w, s, users=1, think=Fixed(0), duration=10); w.run(until=10)""",
     "a zero think time (workload 'users') against a service that answers at once"),
    ("""
     w = World(1); s = Service(w, "s")
     FailureRepair(s, mttf=Fixed(0), mttr=Fixed(0)); w.run(until=10)""",
     "zero times to failure or repair (failures of s)"),
], ids=["zero think time", "zero mttf and mttr"])
def test_a_run_whose_clock_stops_moving_stops_itself_and_names_the_cause(code, cause):
    err = ends_with(code)
    assert "FrozenClock" in err and "events at t = 0 without time moving" in err and cause in err


def test_a_frozen_clock_is_caught_at_any_time_not_only_at_zero():
    err = ends_with("""
        w = World(1); s = Service(w, "s", latency=1.0)
        def stuck(svc, req):
            while True:
                yield w.env.timeout(0)
        ClosedLoop(w, Service(w, "api", dependencies=[s], handler=stuck), users=1, think=3.5, duration=10)
        w.run(until=10)""")
    assert "without time moving" in err and "FrozenClock" in err


def test_what_cannot_fit_in_a_run_is_refused_before_it_starts():
    w = World(1)
    s = Service(w, "s")
    with pytest.raises(ValueError, match=r"1e\+09 requests per second for 10 s is about 1e\+10 requests, more "
                                         r"than the 10,000,000"):
        OpenLoop(w, s, 1e9, duration=10)
    with pytest.raises(ValueError, match="requests=20000000 is about 2e"):
        OpenLoop(w, s, 1, requests=20_000_000)
    with pytest.raises(ValueError, match=r"users must be a whole number in \[1, 100000\]"):
        ClosedLoop(w, s, users=10**7, duration=10)
    with pytest.raises(ValueError, match="about 1e\\+09 requests"):
        ClosedLoop(w, s, users=1000, think=0.01, duration=10_000)
    FailureRepair(s, mttf=1e-9, mttr=1e-9)
    with pytest.raises(ValueError, match=r"failures of s: .* about 5e\+17 failures by until=1e\+09"):
        w.run(until=1e9)
    assert w.now == 0


def test_parts_of_two_worlds_do_not_mix():
    w1, w2 = World(1), World(2)
    other = Service(w2, "s")
    with pytest.raises(ValueError, match="target belongs to another World"):
        OpenLoop(w1, other, 1, duration=5)
    with pytest.raises(ValueError, match="target belongs to another World"):
        ClosedLoop(w1, other, users=1, duration=5)
    with pytest.raises(ValueError, match="b belongs to another World"):
        Partition(Service(w1, "a"), other, [(0, 1)])
    with pytest.raises(ValueError, match="crew belongs to another World"):
        FailureRepair(other, mttf=10, mttr=1, crew=RepairCrew(w1))


@pytest.mark.parametrize("make", [
    lambda: Service("w", "a"), lambda: OpenLoop("w", None, 1, duration=1),
    lambda: ClosedLoop(None, None, users=1, duration=1), lambda: RepairCrew("w"),
])
def test_a_world_that_is_not_a_world_is_named(make):
    with pytest.raises(TypeError, match="world must be a World"):
        make()


def test_a_fault_window_in_the_past_is_refused_where_it_is_made():
    w = World(1)
    s = Service(w, "s")
    w.run(until=10)
    with pytest.raises(ValueError, match="windows must start at or after the current time 10"):
        Outage(s, [(1, 2)])


def test_a_handler_that_returns_no_generator_says_what_a_handler_is():
    w = World(1)
    s = Service(w, "s", handler=lambda svc, req: 5)
    OpenLoop(w, s, 1, requests=1)
    with pytest.raises(TypeError, match="handler of 's' must return a simpy generator .* got 5"):
        w.run(until=10)


def test_a_shed_request_keeps_its_rate_limit_token():
    from resilience_sim.policies import LoadShedder, TokenBucket
    w = World(1)
    bucket = TokenBucket(rate=1, burst=5)
    s = Service(w, "s", capacity=1, latency=100.0, shedder=LoadShedder(max_queue=0), rate_limit=bucket)
    OpenLoop(w, s, 1000, requests=5)         # the first takes the slot, four are shed at once
    results = w.run(until=1)
    assert results.reasons() == {"shed": 4, "unfinished": 1}
    assert bucket.try_take(1.0) and bucket.try_take(1.0) and bucket.try_take(1.0)   # 4 of 5 left (+1 refill)


def test_retries_and_hedges_that_cannot_end_are_refused_and_the_largest_allowed_end_quickly():
    from resilience_sim import Client
    from resilience_sim.policies import ConstantBackoff, HedgePolicy, RetryPolicy
    with pytest.raises(ValueError, match=r"max_attempts must be a whole number in \[1, 10000\], got 1000000000"):
        RetryPolicy(10**9, ConstantBackoff(0))
    with pytest.raises(ValueError, match=r"max_attempts must be a whole number in \[1, 10000\], got 70000"):
        RetryPolicy(70_000, ConstantBackoff(0))          # would overflow the 16-bit attempts column
    with pytest.raises(ValueError, match=r"max_hedges must be a whole number in \[0, 100\]"):
        HedgePolicy(0, 10**6)
    w = World(1)
    failing = Service(w, "failing", error_rate=1.0)
    slow = Service(w, "slow", capacity=200, latency=1.0)
    OpenLoop(w, Client(w, failing, name="retries", retry=RetryPolicy(10_000, ConstantBackoff(0))), 1,
             requests=3, name="a")
    OpenLoop(w, Client(w, slow, name="hedges", hedge=HedgePolicy(0, 100)), 1, requests=3, name="b")
    results = w.run(until=20)
    assert results.only("a").attempts_per_request() == 10_000
    assert results.only("b").request_availability() == 1.0
