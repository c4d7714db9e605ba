"""Lessons 00 (welcome) and 01 (distributed): scenario functions and dashboards, headless."""
import math

import numpy as np
import pytest

from resilience_sim import theory
from resilience_sim.lessons import DASHBOARDS
from resilience_sim.lessons import distributed as dist
from resilience_sim.lessons import welcome
from resilience_sim.lessons.welcome import HOUR, MINUTE, WEEK, YEAR
from resilience_sim.sim.topologies import fanout

KEYS = ["00_welcome/mttr", "01_distributed/chain", "01_distributed/fanout"]


# --- dashboards ---------------------------------------------------------------------------------
@pytest.mark.parametrize("key", KEYS)
def test_dashboard_is_registered_and_builds(key):
    dash = DASHBOARDS[key]()
    assert bytes(dash.picture.value).startswith(b"\x89PNG")
    assert dash.text.value and "Could not run" not in dash.text.value
    assert dash.widget._dom_classes and "rs-dashboard" in dash.widget._dom_classes
    for slider in dash.sliders.values():
        assert slider.continuous_update is False


def test_welcome_dashboard_slower_repair_means_less_availability():
    dash = DASHBOARDS["00_welcome/mttr"]()
    before, picture, text = dash.results[""], bytes(dash.picture.value), dash.text.value
    assert math.isclose(before["formula"], 0.96)
    dash.set(mttr_minutes=120)
    after = dash.results[""]
    assert bytes(dash.picture.value) != picture and dash.text.value != text
    assert math.isclose(after["formula"], 12 / 14)
    assert after["measured"] < before["measured"] - 0.05
    assert abs(after["measured"] - after["formula"]) < 4 * theory.availability_sd(12 * HOUR, 2 * HOUR, YEAR)


def test_chain_dashboard_longer_chain_is_less_available():
    dash = DASHBOARDS["01_distributed/chain"]()
    ten = dash.results[""]
    assert len(ten["names"]) == 10 and math.isclose(ten["formula"], 0.999 ** 10)
    picture = bytes(dash.picture.value)
    dash.set(services=20)
    twenty = dash.results[""]
    assert bytes(dash.picture.value) != picture
    assert len(twenty["names"]) == 20 and twenty["measured"] < ten["measured"]
    dash.set(availability_pct=99.99)
    assert dash.results[""]["measured"] > twenty["measured"]
    assert math.isclose(dash.results[""]["formula"], 0.9999 ** 20)


def test_fanout_dashboard_width_moves_the_slow_share():
    dash = DASHBOARDS["01_distributed/fanout"]()
    wide = dash.results[""]
    assert wide["run"].leaf_latency.shape == (24, 100)
    picture = bytes(dash.picture.value)
    dash.set(width=1)
    narrow = dash.results[""]
    assert bytes(dash.picture.value) != picture
    assert narrow["run"].leaf_latency.shape == (24, 1)
    assert narrow["measured"] < wide["measured"]
    assert math.isclose(narrow["formula"], 0.01)


# --- welcome scenarios --------------------------------------------------------------------------
def test_first_service_is_seeded():
    a = welcome.first_service(3)
    b = welcome.first_service(3)
    c = welcome.first_service(4)
    windows = a.services["checkout"].timeline.down_windows(WEEK)
    assert windows == b.services["checkout"].timeline.down_windows(WEEK)
    assert windows != c.services["checkout"].timeline.down_windows(WEEK)


def test_first_service_matches_the_formula_over_a_year():
    year = welcome.first_service(11, until=YEAR)
    formula = theory.availability(12 * HOUR, 30 * MINUTE)
    assert abs(year.time_availability("checkout") - formula) < 4 * theory.availability_sd(
        12 * HOUR, 30 * MINUTE, YEAR)


def test_availability_wobble_matches_many_seeds():
    # 40 one-year runs: their spread should be near the formula's wobble (within 30%: the spread of 40
    # samples' standard deviation is about 11%).
    values = [welcome.first_service(s, until=YEAR).time_availability("checkout") for s in range(40)]
    predicted = theory.availability_sd(12 * HOUR, 30 * MINUTE, YEAR)
    assert 0.7 * predicted < np.std(values, ddof=1) < 1.3 * predicted


def test_availability_so_far_ends_at_the_measured_value():
    year = welcome.first_service(5, until=YEAR)
    running = welcome.availability_so_far(year, "checkout", [WEEK, YEAR])
    assert math.isclose(running[-1], year.time_availability("checkout"))
    with pytest.raises(ValueError, match="name must be one of"):
        welcome.availability_so_far(year, "nope", [WEEK])


# --- distributed scenarios ----------------------------------------------------------------------
def test_hidden_dependency_fails_checkout_through_the_ledger():
    run = dist.hidden_dependency(1987)
    again = dist.hidden_dependency(1987)
    assert np.array_equal(run.start, again.start) and np.array_equal(run.outcome, again.outcome)
    assert run.time_availability("checkout") == 1.0
    assert set(run.failed_by()) == {"ledger"}
    assert run.reasons() == {"down": sum(run.failed_by().values())}
    assert abs((1 - run.request_availability()) - 0.2) < 0.03


def test_chain_matches_the_product_rule_and_its_prefixes():
    run = dist.chain_run(7, 5, 0.999, cycles=400)
    names = list(dist.CHAIN_NAMES[:5])
    prefix = dist.chain_prefix_availability(run, names)
    for k in range(1, 6):
        assert math.isclose(prefix[k - 1], run.time_availability(*names[:k], need="all"))
        assert abs(prefix[k - 1] - 0.999 ** k) < 4 * theory.chain_availability_sd(k, 0.999, 400)
    assert np.array_equal(prefix, dist.chain_prefix_availability(dist.chain_run(7, 5, 0.999, cycles=400), names))


def test_fanout_records_every_leaf_and_is_seeded():
    run = dist.fanout_run(3, n=20, p_slow=0.05, requests=120)
    again = dist.fanout_run(3, n=20, p_slow=0.05, requests=120)
    assert run.leaf_latency.shape == (120, 20)
    assert np.array_equal(run.leaf_latency, again.leaf_latency)
    slow_rows = (run.leaf_latency > 0.5).any(axis=1).mean()
    assert math.isclose(run.results.share_slower_than(0.5), slow_rows)
    assert math.isclose(run.prefix_slow_share()[-1], slow_rows)
    formula = theory.fanout_slow_share(0.05, 20)
    assert abs(slow_rows - formula) < 4 * math.sqrt(formula * (1 - formula) / 120)


def test_fanout_fails_when_a_leaf_fails_without_crashing_the_simulation():
    from resilience_sim import Outage, OpenLoop, World
    world = World(1)
    root = fanout(world, 5, 0.01)
    Outage(world.service("leaf-3"), [(0.0, 100.0)])
    OpenLoop(world, root, 10, requests=20)
    results = world.run(until=100)
    assert results.outcome_counts()["failed"] == 20
    assert results.failed_by() == {"leaf-3": 20}


def test_fanout_accepts_a_sequential_handler():
    def one_by_one(svc, req):
        for leaf in svc.dependencies:
            yield from svc.ask(leaf, req)

    run = dist.fanout_run(2, n=10, p_slow=0.0, requests=20, handler=one_by_one)
    assert run.leaf_latency.shape == (20, 10) and np.allclose(run.leaf_latency, 0.01)   # every call logged
    assert run.results.latency_percentiles((50,))[50] == pytest.approx(0.1)   # ten 10 ms calls in a row
