"""Notebook 07 (bulkheads, load shedding, metastable failure): its claims hold over several seeds, runs
are seeded, and its dashboards react to every slider."""
import math

import numpy as np
import pytest

from resilience_sim import World, Service, Client, OpenLoop
from resilience_sim.lessons import all_dashboards
from resilience_sim.lessons import overload as ov
from resilience_sim.metrics.windows import availability_between
from resilience_sim.sim.probes import ServiceProbe


# --- small tools -----------------------------------------------------------------------------------
def test_the_probe_sees_the_queue_grow_and_the_route_is_recorded():
    world = World(seed=3)
    svc = Service(world, "svc", capacity=1, latency=0.5)        # 2 req/s of capacity
    probe = ServiceProbe(world, svc, every=1.0)
    OpenLoop(world, Client(world, svc, name="c", timeout=1.0), 4.0, duration=10.0, name="home")
    results = world.run(until=10.0)                            # twice the capacity
    assert probe.times[:3] == [0.0, 1.0, 2.0] and probe.at(0.5) == probe.in_system[0]
    assert probe.in_system[-1] > 10                             # the queue grows under overload
    assert results.routes == ("home",) and len(results.only("home")) == len(results)
    assert availability_between(results, 0.0, 10.0) == results.request_availability()


def test_edge_curve_rejects_an_unknown_knob():
    with pytest.raises(ValueError, match="knob"):
        ov.edge_curve("timeout", [1.0], seeds=[1])


def test_edge_curve_summaries():
    curve = ov.EdgeCurve("trigger", np.array([0.0, 1.0, 2.0, 3.0]),
                         np.array([[1.0, 1.0, 0.0, 0.0], [1.0, 0.5, 1.0, 0.0]]), False, (1, 2))
    assert list(curve.failed_share) == [0.0, 0.0, 0.5, 1.0]
    assert list(curve.recovered_share) == [1.0, 0.5, 0.5, 0.0]
    assert curve.never_tipped() == 1.0 and curve.always_tipped() == 3.0


# --- 1-2: bulkheads --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 7])
def test_a_bulkhead_keeps_the_product_page_up(seed):
    shared = ov.shop_run(None, seed=seed)
    walled = ov.shop_run(ov.REVIEWS_BULKHEAD, seed=seed)
    lo, hi = shared.during
    assert shared.availability("product", lo, hi) < 0.05
    assert walled.availability("product", lo, hi) > 0.99
    for res in (shared, walled):
        assert res.availability("reviews", lo, hi) < 0.05
        assert res.availability("product", 0, 10) > 0.99 and res.availability("reviews", 0, 10) > 0.99
        assert res.availability("product", 30, 40) > 0.99
    reasons = walled.results.reasons()
    assert abs(reasons["timeout"] - 4 * 15) < 6                  # 4 slots x 15 s / 1-s timeouts
    assert reasons["bulkhead full"] > 3 * reasons["timeout"]
    assert "bulkhead full" not in shared.results.reasons()


def test_shop_run_is_seeded():
    a, b = ov.shop_run(4, seed=5), ov.shop_run(4, seed=5)
    assert np.array_equal(a.results.start, b.results.start) and np.array_equal(a.results.end, b.results.end)
    assert np.array_equal(a.results.only("reviews").outcome, b.results.only("reviews").outcome)
    assert not np.array_equal(a.results.start, ov.shop_run(4, seed=6).results.start)


# --- 3-4: overload, shedding, token bucket ---------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 7])
def test_overload_collapses_without_shedding_and_not_with_it(seed):
    flooded = ov.overload_run(1.5, seed=seed)
    shedding = ov.overload_run(1.5, max_queue_delay=ov.MAX_QUEUE_DELAY, seed=seed)
    assert flooded.goodput() < 0.05 * ov.CAPACITY
    growth = (flooded.rate - ov.CAPACITY) * 30
    assert abs(flooded.queue.at(30) - growth) < 4 * math.sqrt((flooded.rate + ov.CAPACITY) * 30)
    assert shedding.goodput() > 0.85 * ov.CAPACITY and shedding.p99() < ov.TIMEOUT / 2
    assert shedding.share("shed") > 0.30 and shedding.queue.at(30) < 30


@pytest.mark.parametrize("seed", [1, 7])
def test_a_token_bucket_holds_its_rate_but_not_through_a_slowdown(seed):
    bucket = ov.overload_run(1.5, bucket_rate=36, seed=seed)
    taken = bucket.service.rate_limit.taken
    assert 0.97 * 36 * 30 < taken <= 10 + 36 * 30
    assert abs(bucket.goodput() - 36) < 0.05 * 36
    slow_bucket = ov.overload_run(1.5, bucket_rate=36, slowdown=2, seed=seed)
    slow_shed = ov.overload_run(1.5, max_queue_delay=ov.MAX_QUEUE_DELAY, slowdown=2, seed=seed)
    assert slow_bucket.goodput(20, 30) < 0.05 * ov.CAPACITY / 2
    assert slow_shed.goodput(20, 30) > 0.75 * ov.CAPACITY / 2


def test_a_light_load_needs_no_protection():
    calm = ov.overload_run(0.5, seed=3)
    assert calm.goodput() == pytest.approx(20, rel=0.1) and calm.share("timeout") < 0.01


# --- 5: metastable failure -------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 7])
def test_without_a_budget_the_trigger_leaves_the_service_failed(seed):
    stuck = ov.metastable_run(seed=seed)
    budgeted = ov.metastable_run(budget=True, seed=seed)
    throttled = ov.metastable_run(throttle=True, seed=seed)
    assert stuck.after < 0.05 and stuck.recovery_time() is None
    assert stuck.amplification_in(*stuck.window) > 2.9
    assert budgeted.after > 0.95 and throttled.after > 0.95
    assert budgeted.recovery_time() < throttled.recovery_time()
    assert budgeted.amplification_in(*budgeted.window) < 1.05
    t, q = np.array(stuck.queue.times), stuck.queue.in_system
    late = t >= 40
    slope = np.polyfit(t[late], q[late], 1)[0]
    assert abs(slope - 38) < 4 * math.sqrt(9 * 26 * 50 + 40 * 50) / 50


def test_backoff_does_not_help_and_no_retries_recover():
    assert ov.metastable_run(jitter=True, seed=4).after < 0.05
    assert ov.metastable_run(attempts=1, seed=4).after > 0.95


def test_without_a_trigger_the_service_is_fine():
    calm = ov.metastable_run(trigger=0.0, seed=3, **ov.SHORT)
    assert calm.after > 0.99 and calm.amplification < 1.02 and calm.trigger == (3.0, 3.0)


def test_below_a_third_of_capacity_even_a_long_trigger_cannot_stick():
    # 3 attempts x 30% = 90% < 100%: even with every attempt timing out the queue drains
    res = ov.metastable_run(0.3, 6.0, seed=2, **ov.SHORT)
    assert res.after > 0.95


def test_metastable_run_is_seeded():
    a, b = ov.metastable_run(seed=9, **ov.SHORT), ov.metastable_run(seed=9, **ov.SHORT)
    assert np.array_equal(a.results.outcome, b.results.outcome) and np.array_equal(a.queue.in_system, b.queue.in_system)


def test_edge_sweep_matches_what_the_notebook_says():
    by_length = ov.edge_curve("trigger", [0, 1, 2, 3, 4, 6], seeds=range(7, 10))
    assert by_length.never_tipped() == 1.0 and by_length.always_tipped() == 4.0
    assert by_length.after[0, 2] > 0.95 and by_length.after[0, 3] < 0.05      # the dashboard's seed
    budget = ov.edge_curve("trigger", [6], seeds=range(7, 10), budget=True)
    assert budget.recovered_share[0] == 1.0


# --- dashboards ------------------------------------------------------------------------------------
def test_dashboards_are_registered():
    keys = all_dashboards()
    for name in ("bulkhead", "shedding", "metastable"):
        assert f"07_overload/{name}" in keys


def test_bulkhead_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["07_overload/bulkhead"]()
    shared, walled = dash.results.values()
    assert shared.bulkhead is None and walled.bulkhead == ov.REVIEWS_BULKHEAD
    lo, hi = walled.during
    assert shared.availability("product", lo, hi) < 0.1 and walled.availability("product", lo, hi) > 0.99
    picture, text = dash.picture.value, dash.text.value

    dash.set(slots=ov.SHOP_WORKERS)                 # a bulkhead as big as the pool walls nothing off
    assert dash.picture.value != picture and dash.text.value != text
    assert dash.results["with a bulkhead on reviews"].availability("product", lo, hi) < 0.1

    dash.set(slow=0.0)                              # no incident: both pages answered in both panels
    for res in dash.results.values():
        assert res.slow == 0.0 and not res.results.faults
        assert res.availability("product") > 0.99 and res.availability("reviews") > 0.97

    dash.set(slots=1)                               # one slot refuses reviews on a good day
    assert dash.results["with a bulkhead on reviews"].availability("reviews") < 0.9
    assert "Could not run" not in dash.text.value


def test_shedding_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["07_overload/shedding"]()
    flooded, shedding = dash.results.values()
    assert flooded.goodput() < 2 and shedding.goodput() > 0.85 * ov.CAPACITY
    picture = dash.picture.value

    dash.set(load_pct=80)                           # below capacity: no collapse without shedding ...
    assert dash.picture.value != picture
    calm, shed = dash.results.values()
    assert calm.rate == shed.rate == pytest.approx(32) and calm.results.request_availability() > 0.97
    assert 0.0 < shed.share("shed") < 0.15          # ... and a tight 100-ms bound still sheds a little

    dash.set(load_pct=200, delay_ms=900)            # a bound near the timeout: slower answers
    flooded, loose = dash.results.values()
    dash.set(delay_ms=50)
    _, tight = dash.results.values()
    assert tight.p99() < loose.p99() and flooded.goodput() < 2
    assert "Could not run" not in dash.text.value


def test_metastable_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["07_overload/metastable"]()
    stuck, budgeted = dash.results.values()
    assert stuck.after < 0.05 and budgeted.after > 0.95
    assert "still failed" in dash.text.value and "recovered" in dash.text.value
    picture = dash.picture.value

    dash.set(trigger=2.0)                           # the dashboard seed's edge: 2 s is absorbed
    assert dash.picture.value != picture
    assert all(r.after > 0.95 for r in dash.results.values())

    dash.set(trigger=4.0, timeout=2.0)              # a longer timeout needs a longer trigger to tip
    assert all(r.after > 0.95 for r in dash.results.values())

    dash.set(timeout=1.0, load_pct=30, trigger=6.0)  # below a third of capacity nothing sticks
    assert all(r.after > 0.95 and r.load == pytest.approx(0.3) for r in dash.results.values())
    assert "Could not run" not in dash.text.value


