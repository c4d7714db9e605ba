"""Notebook 04 (timeouts and deadlines): Little's law on a caller's slots, sizing a timeout, deadline
propagation, and the dashboard."""
import math
import random

import numpy as np
import pytest
from matplotlib.figure import Figure

from resilience_sim import theory
from resilience_sim.lessons import all_dashboards
from resilience_sim.lessons import timeouts as tm


# --- dashboard -------------------------------------------------------------------------------------
def test_slow_dependency_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["04_timeouts/slow_dependency"]()
    without, with_ = dash.results.values()
    assert without.timeout is None and with_.timeout == pytest.approx(0.1)
    assert without.share_saturated() > 0.9 and with_.share_saturated() == 0.0
    assert with_.answered_in_spell() > without.answered_in_spell()
    picture, text = dash.picture.value, dash.text.value
    assert "slots busy" in text

    dash.set(timeout_ms=600)                   # 20/s x 0.605 s > 10 slots: the timeout no longer saves it
    assert dash.results["with a timeout"].timeout == pytest.approx(0.6)
    assert dash.results["with a timeout"].mean_busy() > 9
    assert dash.picture.value != picture and dash.text.value != text

    dash.set(slots=40)                         # enough slots for the slow db: nobody queues
    assert all(r.slots == 40 and r.queue.max() == 0 for r in dash.results.values())

    dash.set(slow_s=0.0, slots=10, timeout_ms=1000)    # a healthy db and a loose timeout: the same run
    a, b = dash.results.values()
    assert np.array_equal(a.results.latency, b.results.latency)
    assert "Could not run" not in dash.text.value


def test_the_dashboards_short_run_drains_before_it_ends_even_at_its_slowest_setting():
    """14 s: the db slow from 2 s to 10 s; with 2 slots and no timeout the queue is empty again by 13.7 s."""
    dash = all_dashboards()["04_timeouts/slow_dependency"]()
    assert (tm.DASH_DURATION, tm.DASH_WINDOW) == (14.0, (2.0, 10.0))
    assert all(r.results.until == tm.DASH_DURATION and r.window == tm.DASH_WINDOW for r in dash.results.values())
    dash.set(slots=2, timeout_ms=1000)              # a timeout no shorter than the extra second: no help either
    for run in dash.results.values():
        after = run.t > tm.DASH_WINDOW[1]
        assert run.queue[after].max() > 100 and run.t[after][run.queue[after] == 0][0] <= 13.7


# --- a slow dependency and Little's law ---------------------------------------------------------------
@pytest.fixture(scope="module")
def story():
    return tm.slow_dependency_run(11, timeout=None), tm.slow_dependency_run(11, timeout=tm.TIMEOUT)


def test_without_a_timeout_the_slow_db_fills_every_slot(story):
    slow, fast = story
    assert slow.share_saturated() == 1.0 and slow.queue_at(20.0) > 100
    assert np.median(slow.page_waits()) > 1.0                  # pages queue behind searches
    assert fast.share_saturated() == 0.0 and np.percentile(fast.page_waits(), 99) < 0.01
    rate, sd = tm.saturated_throughput()
    assert abs(slow.api_throughput() - rate) < 4 * sd


def test_littles_law_holds_on_the_runs_own_numbers(story):
    _, fast = story
    (ls, lp), (hs, hp) = fast.arrival_rates(), fast.mean_holds()
    sd = tm.busy_sd(hold=0.105, length=14.0)
    assert abs(fast.mean_busy() - (ls * hs + lp * hp)) < 4 * sd
    assert abs(fast.mean_busy() - tm.littles_law_slots(timeout=tm.TIMEOUT)) < 4 * sd
    assert hs == pytest.approx(tm.API_WORK + tm.TIMEOUT) and hp == pytest.approx(tm.API_WORK)


def test_littles_law_slots_formula():
    assert tm.littles_law_slots(timeout=0.1) == pytest.approx(2.2)
    assert tm.littles_law_slots(timeout=None) == pytest.approx(20 * (1.005 + tm.DB_HEALTHY.mean) + 0.1)
    assert tm.littles_law_slots(timeout=None, extra=0.0) == pytest.approx(20 * (0.005 + tm.DB_HEALTHY.mean) + 0.1)
    # a timeout above the slow latency's bulk cuts only its tail
    assert tm.littles_law_slots(timeout=1.5) < tm.littles_law_slots(timeout=None)


def test_lognormal_partial_mean_against_sampling():
    rng = random.Random(3)
    draws = np.array(tm.DB_HEALTHY.samples(rng, 200000))
    for limit in (0.01, 0.03, 0.1):
        assert theory.capped_mean(tm.DB_HEALTHY, limit) == pytest.approx(np.minimum(draws, limit).mean(), rel=0.01)
    assert theory.capped_mean(tm.DB_HEALTHY, math.inf) == tm.DB_HEALTHY.mean
    assert theory.capped_mean(tm.DB_HEALTHY, 1e-6) == pytest.approx(1e-6)


def test_slow_dependency_runs_are_seeded():
    a, b = (tm.slow_dependency_run(5, timeout=0.1, duration=8, window=(2, 5)) for _ in range(2))
    c = tm.slow_dependency_run(6, timeout=0.1, duration=8, window=(2, 5))
    assert np.array_equal(a.holds, b.holds) and np.array_equal(a.busy, b.busy)
    assert not np.array_equal(a.holds[:20], c.holds[:20])


def test_a_hung_db_saturates_the_api_only_above_the_ceiling():
    short = tm.slow_dependency_run(12, timeout=0.3, extra=10.0)
    long_ = tm.slow_dependency_run(12, timeout=0.6, extra=10.0)
    # 6.2 slots on average: the count of busy slots sometimes touches 10, so a few may wait, briefly
    assert short.queue.max() <= 10 and abs(short.mean_busy() - 6.2) < 4 * tm.busy_sd(hold=0.305, length=14)
    assert long_.mean_busy() > 9 and long_.queue_at(20.0) > 0


# --- choosing a timeout -------------------------------------------------------------------------------
def test_timeout_tradeoff_from_measured_latencies():
    lat = tm.dependency_latencies(2, calls=20000)
    tr = tm.timeout_tradeoff(lat)
    assert np.all(np.diff(tr.false_timeouts) <= 0) and np.all(np.diff(tr.slots_hung) > 0)
    assert np.all(tr.slots_healthy <= tr.slots_hung + 1e-12)
    assert tr.max_timeout == pytest.approx(0.495)
    for p in (50, 99):
        q = p / 100
        assert abs(np.mean(lat <= tm.DB_HEALTHY.quantile(q)) - q) < 4 * math.sqrt(q * (1 - q) / lat.size)
    one = tm.timeout_tradeoff(lat, [tm.DB_HEALTHY.quantile(0.99)])
    assert one.false_timeouts[0] == pytest.approx(0.01, abs=4 * math.sqrt(0.01 * 0.99 / lat.size))
    ax, right = tm.draw_tradeoff(Figure().subplots(), tr)
    assert "timeout" in ax.get_xlabel() and "slots" in right.get_ylabel()


def test_healthy_share_slower_is_the_lognormal_tail():
    for q in (0.5, 0.99, 0.999):
        assert theory.survival(tm.DB_HEALTHY, tm.DB_HEALTHY.quantile(q)) == pytest.approx(1 - q)
    assert round(theory.survival(tm.DB_HEALTHY, 0.1), 4) == 0.0037
    assert theory.survival(tm.DB_HEALTHY, 0.0) == 1.0


def test_a_client_timeout_at_the_p99_cuts_about_one_percent():
    share = tm.timed_out_share(3, tm.DB_HEALTHY.quantile(0.99), calls=10000)
    assert abs(share - 0.01) < 4 * math.sqrt(0.01 * 0.99 / 10000)


# --- deadline propagation -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chain():
    return tm.chain_run(21, propagate=False), tm.chain_run(21, propagate=True)


def test_without_a_deadline_inner_layers_work_for_users_who_left(chain):
    own, _ = chain
    p = theory.survival(tm.DB_SLOW, tm.SVC_DB_TIMEOUT)
    n = len(own.results)
    assert all(own.wasted(name) > 0 for name in tm.LAYERS)
    assert abs(own.results.calls_per_request("db") - (1 + p + p * p)) < 4 / math.sqrt(n)
    assert abs(own.started_late["db"] - p * p * n) < 4 * math.sqrt(p * p * n)


def test_a_propagated_deadline_wastes_nothing(chain):
    own, dl = chain
    assert all(dl.started_late[name] == 0 and dl.wasted(name) == 0.0 for name in tm.LAYERS)
    assert dl.busy("db") < own.busy("db")
    p = theory.survival(tm.DB_SLOW, tm.SVC_DB_TIMEOUT)
    assert abs(dl.results.calls_per_request("db") - (1 + p)) < 4 / math.sqrt(len(dl.results))
    assert dl.results.latency.max() <= tm.CHAIN_PATIENCE + 1e-9


def test_a_deadline_checked_only_before_work_starts_still_lets_the_db_work_for_users_who_left(chain):
    own, dl = chain
    start_only = tm.chain_run(21, propagate=True, stop_work=False)
    assert all(start_only.started_late[name] == 0 for name in tm.LAYERS)
    assert start_only.wasted("api") == start_only.wasted("svc") == 0.0      # their clients stop at the deadline
    assert 0.5 * own.wasted("db") < start_only.wasted("db") < own.wasted("db")
    assert start_only.results.calls_per_request("db") == dl.results.calls_per_request("db")
    assert tm.chain_label(start_only) == "deadline: no late start only"


def test_every_chain_claim_holds_on_a_seed_and_a_broken_deadline_breaks_one(chain):
    own, dl = chain
    start_only = tm.chain_run(21, propagate=True, stop_work=False)
    checks = tm.chain_checks(own, start_only, dl)
    assert len(checks) == 8 and all(abs(got - want) <= tol for got, want, tol in checks.values())
    got, want, tol = tm.chain_checks(own, start_only, own)["both checks: no layer works after the user left"]
    assert abs(got - want) > tol                  # a run without the deadline fails the claim


def test_chain_table_and_bars(chain):
    table = tm.chain_table(chain)
    assert table.headers[1:] == ["each layer's own timeout", "deadline: no late start, work stopped"]
    assert table.rows[4] == ["db calls begun after the user left", str(chain[0].started_late["db"]), "0"]
    ax = tm.draw_chain_work(Figure().subplots(), chain)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(tm.LAYERS)


def test_draw_slots_labels_its_axes(story):
    slow, _ = story
    ax = tm.draw_slots(Figure().subplots(), slow)
    assert ax.get_ylabel() == "requests at the api" and ax.get_xlabel() == "time (s)"
