"""Notebook 11 (fallbacks): its scenarios are seeded, its key claims hold, its dashboard reacts, and
bad input is refused with the parameter's name."""
import math

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from resilience_sim import Client, Outcome, Service, World
from resilience_sim.lessons import all_dashboards
from resilience_sim.lessons import fallbacks as fb

matplotlib.use("Agg")
SEED = 2024


@pytest.fixture(scope="module")
def chains():
    return fb.chains_table(SEED)


@pytest.fixture(scope="module")
def modes():
    return fb.modes_table(SEED)


# --- 1. recommendations ------------------------------------------------------------------------------
def test_recs_run_is_seeded_and_a_chain_never_changes_full_quality(chains):
    again = fb.recs_run(SEED)
    story = chains.data["city → country → static"]
    assert np.array_equal(again.results.outcome, story.results.outcome)
    other = fb.recs_run(SEED + 1, duration=60)
    assert not np.array_equal(other.results.start, story.results.between(0, 60).start[:len(other.results)])
    full = {name: run.results.full_quality_availability() for name, run in chains.data.items()}
    assert len(set(full.values())) == 1                       # same recs calls, same recs answers
    for name, run in chains.data.items():
        expected = run.results.full_quality_availability() if name.startswith("fail fast") else 1.0
        assert run.results.request_availability() == expected


def test_deeper_levels_answer_only_when_the_levels_above_fail(chains):
    run = chains.data["city → country → static"]
    policy = run.chain_policy
    fallbacks = policy.failed[0]                              # every recs failure moved on to the city list
    assert sum(policy.answered[1:]) == fallbacks == run.results.outcome_counts()["degraded"]
    assert policy.failed[1] == policy.answered[2] + policy.failed[2] and policy.failed[2] == policy.answered[3]
    city_errors = policy.failed[1] / fallbacks                # close to the city lists' 10% error rate
    assert abs(city_errors - 0.10) < 4 * math.sqrt(0.1 * 0.9 / fallbacks)
    shares = run.quality()
    assert math.isclose(sum(shares.values()), 1.0) and shares["unanswered"] == 0
    order = ["full", "popular in your city", "popular in your country", "bestsellers"]
    assert all(shares[a] > shares[b] > 0 for a, b in zip(order, order[1:]))


def test_the_faults_of_recs_turn_into_fallbacks_and_a_timeout_costs_its_wait():
    run = fb.recs_run(SEED, duration=260)
    assert run.quality(fb.RECS_OUTAGE)["full"] == 0
    errors = run.quality(fb.RECS_ERRORS)["full"]
    assert abs(errors - (1 - fb.RECS_ERROR_RATE)) < 0.1
    assert fb.RECS_TIMEOUT <= run.latency_p50(fb.RECS_SLOW) < fb.RECS_TIMEOUT + 0.02
    assert run.latency_p50((0, 60)) < 0.1
    calm = fb.recs_run(SEED, faults=False, duration=30)
    assert calm.results.full_quality_availability() == 1.0 and calm.results.faults == []


def test_quality_bins_sum_to_one_and_the_pictures_draw(chains):
    run = chains.data["city → country → static"]
    bins = run.quality_over_time(10.0)
    total = sum(bins[level] for level in run.levels)
    assert len(bins["t"]) == 30 and np.allclose(total, 1.0)
    ax = Figure().subplots()
    fb.draw_quality(ax, run)
    assert len(ax.collections) == len(run.levels) and [t.get_text() for t in ax.texts] == ["down", "errors", "slow"]
    ax = Figure().subplots()
    fb.draw_chains(ax, chains)
    assert [t.get_text() for t in ax.get_legend().texts][0] == "full"
    assert "0.07%" in str(chains) and chains.headers[1] == "answered"


def test_recs_run_refuses_bad_chains_and_numbers():
    with pytest.raises(ValueError, match=r"chain\[0\]"):
        fb.recs_run(SEED, chain=("popular_town",))
    with pytest.raises(ValueError, match="must come last"):
        fb.recs_run(SEED, chain=("bestsellers", "popular_city"))
    with pytest.raises(TypeError, match="chain must be a tuple"):
        fb.recs_run(SEED, chain="popular_city")
    with pytest.raises(ValueError, match="duration"):
        fb.recs_run(SEED, duration=0)
    with pytest.raises(ValueError, match="window"):
        fb.recs_run(SEED, duration=10).quality((50, 60))


# --- 2. search falling back onto SQL --------------------------------------------------------------------
def test_sql_load_is_the_offered_work_per_connection():
    assert math.isclose(fb.sql_load(), (10 * 0.5 + 5 * 0.02) / 4)
    assert fb.sql_load(6) < 1 < fb.sql_load(4)
    with pytest.raises(ValueError, match="connections"):
        fb.sql_load(0)


def test_an_unprotected_fallback_takes_checkout_down_and_a_bound_keeps_it(modes):
    none, open_, bulkhead, bucket = (modes.data[m] for m in fb.MODES)
    assert none.availability("search") == 0 and none.availability("checkout") == 1.0
    assert open_.availability("checkout") < 0.2 and open_.availability("search") < 0.2
    assert open_.peak_queue() > 50 and open_.back_after("checkout") > 5      # it recovers late
    assert open_.results.only("checkout").reasons()["timeout"] > 0
    for guarded in (bulkhead, bucket):
        assert guarded.availability("checkout") == 1.0 and guarded.back_after("checkout") == 0
        assert guarded.availability("search") > 3 * open_.availability("search")
    assert bulkhead.results.client("search->sql").rejected["bulkhead full"] > 0
    assert bucket.results.only("search").reasons()["rate limited"] > 0
    assert bulkhead.peak_queue() <= fb.SQL_CONNECTIONS
    degraded = bulkhead.results.only("search").reasons()[fb.SQL_LABEL]
    assert degraded == bulkhead.results.only("search").outcome_counts()["degraded"] > 0


def test_with_enough_connections_the_fallback_is_harmless():
    run = fb.search_run(SEED, connections=8, duration=60, outage=(10, 40))
    assert run.availability("checkout") == 1.0 and run.availability("search") > 0.95


def test_search_pictures_draw(modes):
    ax = Figure().subplots()
    fb.draw_search(ax, modes.data["bulkhead"])
    assert len(ax.lines) == 2 and ax.get_ylabel() == "requests answered (%)"
    assert ax.get_ylim()[1] > 115 and [t.get_text() for t in ax.get_legend().texts] == ["es down", "search", "checkout"]
    assert modes.data["bulkhead"].title == "fallback behind a bulkhead of 2"
    ax = Figure().subplots()
    fb.draw_sql_queue(ax, modes.data["unprotected fallback"])
    assert len(ax.lines) == 1


def test_search_run_refuses_bad_input():
    with pytest.raises(ValueError, match="mode"):
        fb.search_run(SEED, "fall back harder")
    with pytest.raises(ValueError, match="outage must end"):
        fb.search_run(SEED, outage=(10, 200), duration=100)
    with pytest.raises(ValueError, match="connections"):
        fb.search_run(SEED, connections=0)
    with pytest.raises(ValueError, match="bulkhead"):
        fb.search_run(SEED, "bulkhead", bulkhead=0)
    with pytest.raises(ValueError, match="rate"):
        fb.search_run(SEED, "rate limit", rate=-1)
    world = World(1)
    with pytest.raises(ValueError, match="rate_limit must be a TokenBucket"):
        Client(world, Service(world, "sql"), rate_limit=10)


# --- 3. failover that runs all the time -----------------------------------------------------------------
def test_a_latent_bug_shows_only_when_its_path_is_used():
    standby, always = fb.failover_run(SEED, 0.0), fb.failover_run(SEED, 0.1)
    lo, hi = fb.FAILOVER_OUTAGE
    assert standby.calls_before_outage() == 0 and always.calls_before_outage() > 200
    assert lo < standby.bug.found <= lo + fb.CHECK_EVERY and standby.bug.fixed >= hi
    assert standby.availability() == 0.0
    assert always.bug.found == fb.BUG_AT + fb.CHECK_EVERY and always.bug.fixed == always.bug.found + fb.FIX_AFTER
    assert always.availability() == 1.0 and always.results.reasons() == {}
    assert always.results.services["es-b"].failures > 0                    # seen in es-b's metrics, not by users
    assert [f.kind for f in always.results.faults] == ["outage", "latent bug"]
    ax, bars = Figure().subplots(2, 1)
    fb.draw_failover(ax, bars, standby, row_label="fallback")
    fb.draw_failover(ax, bars, always, row=1, shade=False)
    assert len(ax.lines) == 4 and len(bars.collections) == 2 and ax.get_ylim() == (-3, 103)   # the bars: below
    assert [t.get_text() for t in bars.texts] == ["fallback", "10% on es-b"]


def test_a_latent_bug_nobody_meets_is_never_found():
    world = World(1)
    quiet = Service(world, "quiet")
    bug = fb.LatentBug(quiet, 10.0, check_every=5.0)
    results = world.run(until=100.0)
    assert math.isnan(bug.found) and math.isnan(bug.fixed)
    assert results.faults[0].spans == ((10.0, 100.0),)


def test_failover_run_refuses_bad_input():
    with pytest.raises(ValueError, match="share"):
        fb.failover_run(SEED, share=1.5)
    with pytest.raises(ValueError, match="outage must end"):
        fb.failover_run(SEED, outage=(100, 600), duration=500)
    with pytest.raises(ValueError, match="check_every"):
        fb.failover_run(SEED, check_every=0)
    with pytest.raises(ValueError, match="row"):
        fb.draw_failover(*Figure().subplots(2, 1), fb.failover_run(SEED, duration=100, outage=(10, 20)), row=9)


# --- the dashboard --------------------------------------------------------------------------------------
def test_dashboard_is_registered_and_reacts_to_every_slider():
    dash = all_dashboards()["11_fallbacks/search"]()
    unprotected, protected = dash.results.values()
    assert unprotected.mode == "unprotected fallback" and protected.mode == "bulkhead"
    assert fb.DASH_START % 2 == 0 and all(ax.get_legend() is None for ax in dash._axes)   # on a bin edge; no legend
    assert protected.availability("checkout") == 1.0 > 0.5 > unprotected.availability("checkout")
    assert "checkout" in dash.text.value and "Could not run" not in dash.text.value
    picture = dash.picture.value

    dash.set(outage_s=10)
    assert dash.picture.value != picture
    assert all(r.outage == (fb.DASH_START, fb.DASH_START + 10) for r in dash.results.values())

    wide = dash.results["fallback behind a bulkhead"].availability("search")
    dash.set(bulkhead=1)
    assert dash.results["fallback behind a bulkhead"].availability("search") < wide
    assert dash.results["fallback behind a bulkhead"].results.client("search->sql").rejected["bulkhead full"] > 0

    dash.set(connections=12)                                  # SQL can take the whole search load now
    assert dash.results["fallback unprotected"].availability("checkout") == 1.0
    assert dash.results["fallback unprotected"].connections == 12
    assert "Could not run" not in dash.text.value


def test_dashboard_runs_are_small():
    dash = all_dashboards()["11_fallbacks/search"]()
    dash.set(outage_s=30)
    assert all(len(r.results) < 1000 for r in dash.results.values())


def test_outcomes_of_the_story_are_all_known_kinds(modes):
    for run in modes.data.values():
        assert set(np.unique(run.results.outcome)) <= {int(o) for o in Outcome}


def test_a_shorter_recs_run_draws_to_its_own_end():
    run = fb.recs_run(SEED, duration=100)
    ax = Figure().subplots()
    fb.draw_quality(ax, run)
    assert ax.get_xlim() == (0.0, 100.0) and len(run.quality_over_time(10.0)["t"]) == 10
    with pytest.raises(TypeError, match="service must be a Service"):
        fb.LatentBug("es-b", 10.0)
    with pytest.raises(ValueError, match="search_rate"):
        fb.search_run(SEED, search_rate=0)
