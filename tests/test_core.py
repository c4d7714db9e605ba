"""Behaviour of the simulator's parts: streams, services, faults, workloads, records and metrics."""
import numpy as np
import pytest

from resilience_sim import (ClosedLoop, Constant, ErrorBurst, Exponential, FailureRepair, Fixed,
                            GrayFailure, LatencySpike, LogNormal, Mixture, OpenLoop, Outage, Outcome,
                            Partition, Ramp, Service, ServiceError, Spike, Step, Uniform, Weibull, World)
from resilience_sim.core.timeline import Timeline, combine


def small_world(seed=1, mttr=5.0, error_rate=0.01):
    world = World(seed)
    db = Service(world, "db", capacity=2, latency=Exponential(0.01), error_rate=error_rate)
    FailureRepair(db, mttf=50, mttr=mttr)
    cache = Service(world, "cache", capacity=2, latency=LogNormal(0.002, 0.5))
    FailureRepair(cache, mttf=80, mttr=3)
    OpenLoop(world, db, 30, duration=500)
    return world, world.run(until=500)


def test_same_seed_same_results_bit_for_bit():
    _, a = small_world(seed=3)
    _, b = small_world(seed=3)
    for col in ("start", "end", "outcome", "attempts"):
        assert np.array_equal(getattr(a, col), getattr(b, col))
    assert a.services["db"].timeline.changes == b.services["db"].timeline.changes
    _, c = small_world(seed=4)
    assert not np.array_equal(a.start, c.start)


def test_changing_one_component_leaves_the_others_draws_alone():
    _, base = small_world(mttr=5.0, error_rate=0.01)
    _, other = small_world(mttr=9.0, error_rate=0.2)
    assert base.services["cache"].timeline.changes == other.services["cache"].timeline.changes
    assert np.array_equal(np.sort(base.start), np.sort(other.start))   # arrivals have their own stream
    # the db's failure times do not depend on its repair times either
    fails = lambda r: [t for t, up in r.services["db"].timeline.changes if not up][:1]
    assert fails(base) == fails(other)


def test_streams_are_named_and_stable():
    w1, w2 = World(7), World(7)
    assert w1.rng("a").random() == w2.rng("a").random()
    assert World(7).rng("a").random() != World(7).rng("b").random()
    assert w1.rng("a") is w1.rng("a")


def test_distributions_have_the_right_means():
    rng = World(1).rng("d")
    for dist in (Fixed(0.5), Exponential(0.2), Uniform(0.1, 0.3), LogNormal(0.05, 0.8), Weibull(2.0, 1.5),
                 Mixture.slow_tail(0.01, 1.0, 0.01)):
        draws = dist.samples(rng, 40_000)
        assert np.mean(draws) == pytest.approx(dist.mean, rel=0.05), dist
        assert min(draws) >= 0
    lognormal = LogNormal.from_percentiles(0.05, 0.5)
    assert lognormal.quantile(0.99) == pytest.approx(0.5)
    assert np.percentile(lognormal.samples(rng, 40_000), 99) == pytest.approx(0.5, rel=0.1)


def test_mixture_slow_tail_share():
    rng = World(2).rng("m")
    draws = np.array(Mixture.slow_tail(0.01, 1.0, 0.01).samples(rng, 100_000))
    assert np.mean(draws == 1.0) == pytest.approx(0.01, abs=0.0015)


def run_one(world, until, target, rate=10.0):
    OpenLoop(world, target, rate, duration=until)
    return world.run(until=until)


def outcomes_between(results, t0, t1):
    mask = (results.start >= t0) & (results.start < t1)
    return results.outcome[mask]


def test_outage_fails_calls_inside_the_window_only():
    world = World(1)
    svc = Service(world, "api", capacity=50, latency=0.01)
    Outage(svc, [(20, 30)])
    results = run_one(world, 50, svc)
    assert set(outcomes_between(results, 20.01, 29.99)) == {Outcome.FAILED}
    assert set(outcomes_between(results, 0, 19.9)) == {Outcome.OK}
    assert set(outcomes_between(results, 30, 50)) == {Outcome.OK}
    assert results.reasons()["down"] > 50
    assert results.time_availability("api") == pytest.approx(0.8)
    assert results.faults[0].spans == ((20.0, 30.0),)


def test_crash_fails_requests_in_flight():
    world = World(1)
    svc = Service(world, "api", capacity=50, latency=5.0)
    Outage(svc, [(10, 11)])
    results = run_one(world, 30, svc)
    assert results.reasons()["crashed"] > 0


def test_latency_spike_and_gray_failure_slow_calls_down():
    world = World(1)
    svc = Service(world, "api", capacity=100, latency=0.01)
    LatencySpike(svc, [(10, 20)], extra=0.5)
    GrayFailure(svc, [(30, 40)], slowdown=4, error_rate=0.5)
    results = run_one(world, 50, svc, rate=50)
    lat, start = results.latency, results.start
    assert np.allclose(lat[(start > 10) & (start < 20)], 0.51)
    ok_gray = (start > 30) & (start < 40) & (results.outcome == Outcome.OK)
    assert np.allclose(lat[ok_gray], 0.04)
    gray_failed = np.mean(outcomes_between(results, 30, 40) == Outcome.FAILED)
    assert gray_failed == pytest.approx(0.5, abs=0.1)
    assert np.allclose(lat[(start > 41) & (results.outcome == Outcome.OK)], 0.01)
    assert results.time_availability("api") == 1.0     # alive throughout: that is what makes it gray


def test_error_burst_raises_the_error_rate_in_its_window():
    world = World(3)
    svc = Service(world, "api", capacity=100, latency=0.001, error_rate=0.1)
    ErrorBurst(svc, [(50, 100)], error_rate=0.5)
    results = run_one(world, 100, svc, rate=100)
    before = np.mean(outcomes_between(results, 0, 50) == Outcome.FAILED)
    during = np.mean(outcomes_between(results, 50, 100) == Outcome.FAILED)
    assert before == pytest.approx(0.1, abs=0.02)
    assert during == pytest.approx(1 - 0.9 * 0.5, abs=0.03)


def test_partition_cuts_only_the_named_pair():
    world = World(1)
    db = Service(world, "db", capacity=100, latency=0.001)
    other = Service(world, "other", capacity=100, latency=0.001)

    def handler(svc, req):
        yield from svc.ask("db", req)

    api = Service(world, "api", capacity=100, dependencies=["db"], handler=handler)
    Partition(api, db, [(10, 20)], hang=0.25)
    OpenLoop(world, other, 10, duration=30, name="direct")
    results = run_one(world, 30, api)
    assert results.reasons()["partition"] > 50
    failed = results.outcome == Outcome.FAILED
    assert np.allclose(results.latency[failed], 0.25)
    assert results.answered_by()["db"] > 0 and results.answered_by()["other"] > 0


def test_handler_fallback_is_recorded_as_degraded_with_its_reason():
    world = World(1)
    Service(world, "search", capacity=10, latency=0.01)
    Service(world, "sql", capacity=10, latency=0.2)

    def handler(svc, req):
        try:
            return (yield from svc.ask("search", req))
        except ServiceError:
            req.degraded = "slower SQL search"
            return (yield from svc.ask("sql", req))

    front = Service(world, "front", capacity=50, dependencies=["search", "sql"], handler=handler)
    Outage(world.service("search"), [(10, 20)])
    results = run_one(world, 30, front)
    assert results.request_availability() == 1.0
    assert results.full_quality_availability() == pytest.approx(2 / 3, abs=0.08)
    assert results.reasons()["slower SQL search"] > 0
    assert results.answered_by()["sql"] == results.reasons()["slower SQL search"]
    assert results.calls_per_request() > 1.0


def test_queue_limit_rejects_overload():
    world = World(1)
    svc = Service(world, "api", capacity=1, latency=0.1, queue_limit=2)
    results = run_one(world, 20, svc, rate=30)
    assert results.outcome_counts()["rejected"] > 0
    assert results.reasons()["overload"] == results.outcome_counts()["rejected"]
    assert results.latency[results.outcome == Outcome.OK].max() <= 0.3 + 1e-9


def test_undeclared_dependency_is_a_clear_error():
    world = World(1)
    Service(world, "db")
    svc = Service(world, "api", dependencies=["db"])
    with pytest.raises(ValueError, match="dependency must be one of"):
        svc.ask("cache", None)


@pytest.mark.parametrize("profile, expected", [
    (Constant(50), 50 * 100),
    (Ramp(0, 100, 100), 50 * 100),
    (Step(20, 80, 50), 20 * 50 + 80 * 50),
    (Spike(10, 200, 40, 10), 10 * 90 + 200 * 10),
])
def test_open_loop_profiles_send_the_integral_of_their_rate(profile, expected):
    world = World(5)
    svc = Service(world, "api", capacity=1000, latency=0.001)
    OpenLoop(world, svc, profile, duration=100)
    results = world.run(until=101)
    assert len(results) == pytest.approx(expected, rel=4 / np.sqrt(expected))


def test_open_loop_can_stop_after_a_count():
    world = World(5)
    svc = Service(world, "api", capacity=10, latency=0.001)
    load = OpenLoop(world, svc, 100, requests=250)
    assert len(world.run(until=100)) == 250 == load.sent


def test_closed_loop_throughput_follows_the_interactive_law():
    world = World(5)
    svc = Service(world, "api", capacity=100, latency=0.5)
    ClosedLoop(world, svc, users=20, think=1.5, duration=2000)
    results = world.run(until=2000)
    assert results.throughput() == pytest.approx(20 / (1.5 + 0.5), rel=0.03)


def test_records_are_compact_and_shared_with_numpy():
    world = World(1)
    svc = Service(world, "api", capacity=10, latency=0.001)
    OpenLoop(world, svc, 100, requests=1000)
    results = world.run(until=100)
    assert results.record_bytes == 1000 * 33


def test_timeseries_bins_by_start_time():
    world = World(1)
    svc = Service(world, "api", capacity=50, latency=0.01)
    Outage(svc, [(10, 20)])
    results = run_one(world, 40, svc, rate=20)
    series = results.timeseries(10)
    assert list(series["t"]) == [0, 10, 20, 30]
    assert series["availability"][1] == pytest.approx(0.0, abs=0.02)
    assert np.nanmin(series["availability"][[0, 2, 3]]) > 0.95
    assert series["requests"].sum() == len(results)


def test_timeline_combination():
    a, b = Timeline("a"), Timeline("b")
    for t, up in [(1, False), (3, True), (6, False), (8, True)]:
        a.mark(t, up)
    for t, up in [(2, False), (7, True)]:
        b.mark(t, up)
    assert combine([a, b], 10, need="all") == [(1, 8)]
    assert combine([a, b], 10, need="any") == [(2, 3), (6, 7)]
    assert a.availability(10) == pytest.approx(0.6)
    assert list(a.up_at([0.5, 1.5, 4, 7])) == [True, False, True, False]


def test_ask_all_waits_for_every_dependency_and_returns_each_outcome():
    world = World(1)
    Service(world, "fast", capacity=10, latency=0.01)
    Service(world, "slow", capacity=10, latency=0.5)
    Service(world, "broken", capacity=10, latency=0.02, error_rate=1.0)
    seen = []

    def handler(svc, req):
        outcomes = yield from svc.ask_all(["fast", "slow", "broken"], req)
        seen.append([ok for ok, _ in outcomes])

    root = Service(world, "root", capacity=10, dependencies=["fast", "slow", "broken"], handler=handler)
    OpenLoop(world, root, 5, requests=20)
    results = world.run(until=30)
    assert seen and all(s == [True, True, False] for s in seen)
    assert results.latency.min() == pytest.approx(0.5)
    assert results.failed_by() == {}


def test_failed_by_names_the_component_that_raised():
    world = World(1)
    db = Service(world, "db", capacity=10, latency=0.01, error_rate=1.0)
    OpenLoop(world, db, 5, requests=20)
    assert world.run(until=30).failed_by() == {"db": 20}


def test_only_selects_one_workloads_requests():
    world = World(1)
    api = Service(world, "api", capacity=20, latency=0.01)
    broken = Service(world, "broken", capacity=20, latency=0.01, error_rate=1.0)
    OpenLoop(world, api, 10, duration=50, name="page")
    OpenLoop(world, broken, 5, duration=50, name="checkout")
    results = world.run(until=60)
    page, checkout = results.only("page"), results.only("checkout")
    assert len(page) + len(checkout) == len(results)
    assert page.request_availability() == 1.0 and checkout.request_availability() == 0.0
    assert results.only("page", "checkout").request_availability() == results.request_availability()
    with pytest.raises(ValueError, match="routes must be among"):
        results.only("search")


def test_workload_names_must_be_unique():
    world = World(1)
    api = Service(world, "api")
    OpenLoop(world, api, 10, duration=5)
    with pytest.raises(ValueError, match="unique among workloads"):
        OpenLoop(world, api, 10, duration=5)


def test_between_and_row_read_part_of_a_run():
    world = World(1)
    api = Service(world, "api", capacity=20, latency=0.01)
    Outage(api, [(10, 20)])
    OpenLoop(world, api, 10, duration=30, name="page")
    results = world.run(until=31)
    during = results.between(10.5, 19.5)
    assert during.request_availability() == 0.0 and results.between(0, 9.9).request_availability() == 1.0
    assert during.reasons(unanswered_only=True) == {"down": len(during)}
    row = during.row(0)
    assert row["outcome"] == "failed" and row["reason"] == "down" and row["route"] == "page"
    assert row["answered_by"] == "api" and 10.5 <= row["start"] < 19.5


def test_a_service_refuses_work_whose_deadline_has_passed():
    from resilience_sim import Client
    world = World(1)
    db = Service(world, "db", capacity=1, latency=0.5)
    Client(world, db, deadline=0.6)
    OpenLoop(world, world.clients["client"], 4, duration=20)      # twice what db can serve
    results = world.run(until=25)
    assert db.failure_reasons["deadline"] > 0                      # refused at the slot, not worked on
    assert results.latency.max() <= 0.6 + 1e-9


# --- regressions --------------------------------------------------------------------------------
def _probe(world, target, at, log, caller=None):
    """A process that calls ``target`` at time ``at`` and logs (reason or "ok", end time) under ``at``."""
    from resilience_sim import Request

    def run():
        yield world.env.timeout(at)
        try:
            yield from target.call(Request(world.now), caller)
            log[at] = ("ok", world.now)
        except ServiceError as err:
            log[at] = (err.reason, world.now)
    world.env.process(run())


def test_overlapping_partitions_of_a_pair_cut_it_until_the_last_one_ends():
    world = World(1)
    a, b = Service(world, "a"), Service(world, "b")
    Partition(a, b, [(0, 10)])
    Partition(a, b, [(5, 20)], hang=0.5)     # overlaps the first: the pair stays cut until 20
    log = {}
    for t in (3, 7, 15, 25):
        _probe(world, b, t, log, caller=a)
    world.run(until=30)
    assert log == {3: ("partition", 3), 7: ("partition", 7.5), 15: ("partition", 15.5), 25: ("ok", 25)}


def test_a_crash_fails_the_call_at_work_and_the_queued_ones_at_the_crash_instant():
    world = World(1)
    api = Service(world, "api", capacity=1, latency=1.0)
    Outage(api, [(0.5, 0.6)])
    log = {}
    for t in (0.0, 0.1, 0.2, 0.7):           # one in service and two queued at the crash; one after it
        _probe(world, api, t, log)
    world.run(until=10)
    # the slot is free at once: the request after the restart is served at 0.7, not after 1.0
    assert log == {0.0: ("crashed", 0.5), 0.1: ("crashed", 0.5), 0.2: ("crashed", 0.5), 0.7: ("ok", 1.7)}
    assert (api.busy, api.waiting) == (0, 0)


def test_a_latency_spike_draws_its_extra_from_its_own_stream():
    def run(spike):
        world = World(5)
        api = Service(world, "api", capacity=100, latency=Exponential(0.01))
        if spike:
            LatencySpike(api, [(10, 20)], extra=Exponential(0.5))
        OpenLoop(world, api, 50, duration=60)
        results = world.run(until=70)
        return results.latency[results.start > 30]

    assert np.array_equal(run(False), run(True))   # after the spike, the very same latencies


def test_a_world_runs_on_after_its_results_were_taken():
    world = World(1)
    api = Service(world, "api", capacity=100, latency=0.01)
    LatencySpike(api, [(15, 30)], extra=60.0)
    OpenLoop(world, api, 10, duration=20)
    first = world.run(until=10)
    second = world.run(until=20)               # used to fail: "cannot resize an array that is exporting buffers"
    assert 0 < len(first) < len(second)
    assert first.in_flight <= 1 and second.in_flight == pytest.approx(50, abs=20)   # hung in the spike
    hung = second.between(15, 20)
    assert set(hung.reasons()) == {"unfinished"} and hung.request_availability() == 0.0
    assert second.between(0, 14).request_availability() == 1.0


def test_requests_unanswered_when_the_run_ends_count_as_lost():
    world = World(1)
    api = Service(world, "api", capacity=1, latency=0.01)
    LatencySpike(api, [(5, 100)], extra=1000.0)      # hangs from 5 s on
    OpenLoop(world, api, 10, duration=10, name="page")
    results = world.run(until=10)
    assert results.in_flight > 40
    assert results.request_availability() == pytest.approx(1 - results.in_flight / len(results))
    assert results.reasons() == {"unfinished": results.in_flight}
    assert results.outcome_counts()["timed_out"] == results.in_flight
    assert results.row(len(results) - 1)["end"] == 10.0 and results.row(len(results) - 1)["route"] == "page"
