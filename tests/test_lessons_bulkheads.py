"""Notebook 07 (bulkheads, rate limits and load shedding): its claims hold over several seeds, runs
are seeded, and its dashboards react to every slider."""
import math

import numpy as np
import pytest

from resilience_sim import World, Service, Client, OpenLoop
from resilience_sim.lessons import all_dashboards, common
from resilience_sim.lessons import bulkheads as bh
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


def test_the_overloaded_api_is_the_one_the_lessons_share():
    assert (bh.CAPACITY, bh.TIMEOUT, bh.API_WORKERS, bh.API_WORK) == (common.CAPACITY, common.TIMEOUT, 2, 0.05)
    assert bh.CAPACITY == 40 and bh.draw_queue is common.draw_queue
    res = bh.overload_run(0.5, duration=2.0, seed=1)
    assert (res.service.name, res.service.capacity) == ("api", common.API_WORKERS)


# --- 1-2: bulkheads --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 7])
def test_a_bulkhead_keeps_the_product_page_up(seed):
    shared = bh.shop_run(None, seed=seed)
    walled = bh.shop_run(bh.REVIEWS_BULKHEAD, seed=seed)
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
    a, b = bh.shop_run(4, seed=5), bh.shop_run(4, seed=5)
    assert np.array_equal(a.results.start, b.results.start) and np.array_equal(a.results.end, b.results.end)
    assert np.array_equal(a.results.only("reviews").outcome, b.results.only("reviews").outcome)
    assert not np.array_equal(a.results.start, bh.shop_run(4, seed=6).results.start)


# --- 3-4: overload, shedding, token bucket ---------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 7])
def test_overload_collapses_without_shedding_and_not_with_it(seed):
    flooded = bh.overload_run(1.5, seed=seed)
    shedding = bh.overload_run(1.5, max_queue_delay=bh.MAX_QUEUE_DELAY, seed=seed)
    assert flooded.goodput() < 0.05 * bh.CAPACITY
    growth = (flooded.rate - bh.CAPACITY) * 30
    assert abs(flooded.queue.at(30) - growth) < 4 * math.sqrt((flooded.rate + bh.CAPACITY) * 30)
    assert shedding.goodput() > 0.85 * bh.CAPACITY and shedding.p99() < bh.TIMEOUT / 2
    assert shedding.share("shed") > 0.30 and shedding.queue.at(30) < 30


@pytest.mark.parametrize("seed", [1, 7])
def test_a_token_bucket_holds_its_rate_but_not_through_a_slowdown(seed):
    bucket = bh.overload_run(1.5, bucket_rate=36, seed=seed)
    taken = bucket.service.rate_limit.taken
    assert 0.97 * 36 * 30 < taken <= 10 + 36 * 30
    assert abs(bucket.goodput() - 36) < 0.05 * 36
    slow_bucket = bh.overload_run(1.5, bucket_rate=36, slowdown=2, seed=seed)
    slow_shed = bh.overload_run(1.5, max_queue_delay=bh.MAX_QUEUE_DELAY, slowdown=2, seed=seed)
    assert slow_bucket.goodput(20, 30) < 0.05 * bh.CAPACITY / 2
    assert slow_shed.goodput(20, 30) > 0.75 * bh.CAPACITY / 2


def test_a_light_load_needs_no_protection():
    calm = bh.overload_run(0.5, seed=3)
    assert calm.goodput() == pytest.approx(20, rel=0.1) and calm.share("timeout") < 0.01


# --- dashboards ------------------------------------------------------------------------------------
def test_dashboards_are_registered():
    keys = all_dashboards()
    for name in ("bulkhead", "shedding"):
        assert f"07_bulkheads/{name}" in keys
    assert not any(k.startswith("07_overload/") for k in keys)


def test_bulkhead_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["07_bulkheads/bulkhead"]()
    shared, walled = dash.results.values()
    assert shared.bulkhead is None and walled.bulkhead == bh.REVIEWS_BULKHEAD
    lo, hi = walled.during
    assert shared.availability("product", lo, hi) < 0.1 and walled.availability("product", lo, hi) > 0.99
    picture, text = dash.picture.value, dash.text.value

    dash.set(slots=bh.SHOP_WORKERS)                 # a bulkhead as big as the pool walls nothing off
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
    dash = all_dashboards()["07_bulkheads/shedding"]()
    flooded, shedding = dash.results.values()
    assert flooded.goodput() < 2 and shedding.goodput() > 0.85 * bh.CAPACITY
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


def test_the_shedding_dashboard_runs_its_own_short_run_and_the_notebooks_low_load_check_holds():
    dash = all_dashboards()["07_bulkheads/shedding"]()
    assert all(r.duration == bh.SHEDDING_DURATION == 10.0 for r in dash.results.values())
    # the run goes on until the users give up: no request of the goodput window is left unfinished
    assert all(r.results.until == 10.0 + bh.TIMEOUT and "unfinished" not in r.results.reasons()
               for r in dash.results.values())
    low = bh.overload_run(load=0.8, max_queue_delay=bh.MAX_QUEUE_DELAY, duration=bh.SHEDDING_DURATION, seed=7)
    assert round(low.share("shed"), 1) == 0.1                       # "about one in ten", notebook 07


def test_the_protections_keep_no_logs_and_their_counts_stay_exact():
    shed = bh.overload_run(2.0, max_queue_delay=bh.MAX_QUEUE_DELAY, duration=5.0, seed=3)
    sheds = shed.service.shedder.sheds
    assert len(sheds) == 0 and sheds.limit == 0 and sheds.total == shed.results.reasons()["shed"] > 0
    bucket = bh.overload_run(2.0, bucket_rate=30, duration=5.0, seed=3).service.rate_limit
    assert len(bucket.rejections) == 0 and bucket.rejections.total > 0
    walled = bh.shop_run(2, slow=1.0, spike=(1.0, 4.0), duration=5.0, seed=3)
    refusals = walled.results.reasons()["bulkhead full"]
    assert refusals > 0


def test_the_goodput_picture_draws_every_bin_its_full_width_and_offered_at_capacity_once():
    import matplotlib.pyplot as plt
    res = bh.overload_run(1.0, duration=bh.SHEDDING_DURATION, seed=7)
    fig, ax = plt.subplots()
    bh.draw_goodput(ax, res)
    steps = ax.lines[0]
    assert steps.get_xdata()[-1] == bh.SHEDDING_DURATION                 # the 9-10 s bin ends at 10 s
    assert steps.get_ydata()[-1] == steps.get_ydata()[-2]
    assert [line.get_label() for line in ax.lines[1:]] == ["offered = capacity (40/s)"]
    plt.close(fig)
