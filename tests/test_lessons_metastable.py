"""Notebook 08 (retry storms and metastable failure): its claims hold over several seeds, runs are
seeded, the edge sweep says what the notebook says, and its dashboard reacts to every slider."""
import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from resilience_sim.lessons import all_dashboards, common  # noqa: E402
from resilience_sim.lessons import metastable as mf  # noqa: E402
from resilience_sim import theory  # noqa: E402
from resilience_sim.sweeps import sweep  # noqa: E402


# --- small tools -----------------------------------------------------------------------------------
def test_edge_curve_rejects_an_unknown_knob():
    with pytest.raises(ValueError, match="knob"):
        mf.edge_curve("timeout", [1.0], seeds=[1])


def test_edge_curve_summaries():
    curve = mf.EdgeCurve("trigger", np.array([0.0, 1.0, 2.0, 3.0]),
                         np.array([[1.0, 1.0, 0.0, 0.0], [1.0, 0.5, 1.0, 0.0]]), False, (1, 2))
    assert list(curve.failed_share) == [0.0, 0.0, 0.5, 1.0]
    assert list(curve.recovered_share) == [1.0, 0.5, 0.5, 0.0]
    assert curve.never_tipped() == 1.0 and curve.always_tipped() == 3.0


def test_the_api_is_the_one_notebook_07_overloads():
    assert (mf.CAPACITY, mf.TIMEOUT, mf.API_WORKERS, mf.API_WORK) == (common.CAPACITY, common.TIMEOUT, 2, 0.05)
    assert mf.draw_queue is common.draw_queue


# --- 2-4: metastable failure, what ends it, the edge -----
@pytest.mark.parametrize("seed", [1, 2, 7])
def test_without_a_budget_the_trigger_leaves_the_service_failed(seed):
    stuck = mf.metastable_run(seed=seed)
    budgeted = mf.metastable_run(budget=True, seed=seed)
    throttled = mf.metastable_run(throttle=True, seed=seed)
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
    assert mf.metastable_run(jitter=True, seed=4).after < 0.05
    assert mf.metastable_run(attempts=1, seed=4).after > 0.95


def test_without_a_trigger_the_service_is_fine():
    calm = mf.metastable_run(trigger=0.0, seed=3, **mf.SHORT)
    assert calm.after > 0.99 and calm.amplification < 1.02 and calm.trigger == (3.0, 3.0)


def test_below_a_third_of_capacity_even_a_long_trigger_cannot_stick():
    # 3 attempts x 30% = 90% < 100%: even with every attempt timing out the queue drains
    res = mf.metastable_run(0.3, 6.0, seed=2, **mf.SHORT)
    assert res.after > 0.95


def test_metastable_run_is_seeded():
    a, b = mf.metastable_run(seed=9, **mf.SHORT), mf.metastable_run(seed=9, **mf.SHORT)
    assert np.array_equal(a.results.outcome, b.results.outcome) and np.array_equal(a.queue.in_system, b.queue.in_system)


def test_edge_curve_with_the_dashboards_seed_and_the_next_two_finds_edges_at_1_and_4_s():
    by_length = mf.edge_curve("trigger", [0, 1, 2, 3, 4, 6], seeds=range(7, 10))
    assert by_length.never_tipped() == 1.0 and by_length.always_tipped() == 4.0
    assert by_length.after[0, 2] > 0.95 and by_length.after[0, 3] < 0.05      # the dashboard's seed
    budget = mf.edge_curve("trigger", [6], seeds=range(7, 10), budget=True)
    assert budget.recovered_share[0] == 1.0


def test_edge_run_summarises_the_dashboards_short_run():
    run = mf.metastable_run(0.65, 3.0, seed=7, **mf.SHORT)
    assert mf.edge_run(trigger=3.0, seed=7) == {"after": run.after, "failed": True, "recovered": False}
    long = mf.edge_run(trigger=4.0, seed=7, long=True, budget=True)
    assert long["after"] == mf.metastable_run(budget=True, seed=7).after and long["recovered"]


def test_the_many_seed_sweeps_say_what_the_notebook_says():
    failed = sweep(mf.edge_run, {"trigger": [0, 1, 2, 3, 4]}, seeds=6, base_seed=7, progress=False).summary("failed")
    assert [round(p.mean * p.n) for p in failed] == [0, 1, 5, 6, 6] and failed.method == "wilson"
    assert round(failed.at(trigger=0).high, 2) == 0.39
    longer = sweep(mf.edge_run, {"long": [False, True], "trigger": [6], "budget": [True]}, seeds=6, base_seed=7,
                   progress=False)
    assert [round(p.mean * p.n) for p in longer.summary("recovered")] == [3, 6]
    assert not longer.column("failed").any()


def test_edge_pictures_draw_a_band_and_a_heat_map():
    table = sweep(mf.edge_run, {"load": [0.3, 0.7], "trigger": [0.0, 4.0]}, seeds=1, progress=False)
    fig, (ax1, ax2) = plt.subplots(1, 2)
    mf.draw_edge_band(ax1, table.where(load=0.7).summary("failed"))
    mf.draw_edge_map(ax2, table.summary("failed"))
    assert ax1.get_ylabel() == "runs still failed (% of 1 a length)"
    assert ax2.images[0].get_array()[1].tolist() == [0.0, 100.0]            # 4 s: 30% recovers, 70% does not
    assert [t.get_text() for t in ax2.get_xticklabels()] == ["30%", "70%"]
    plt.close(fig)


def test_a_longer_throttle_memory_recovers_more_slowly():
    short = mf.metastable_run(throttle=True, seed=7)
    long = mf.metastable_run(throttle=True, throttle_window=120, seed=7)
    assert short.after > 0.95 and long.after < short.after
    assert long.recovery_time() is None or long.recovery_time() > short.recovery_time()


# --- dashboards ------------------------------------------------------------------------------------
def test_dashboard_is_registered():
    keys = all_dashboards()
    assert "08_metastable/metastable" in keys
    assert not any(k.startswith("07_overload/") for k in keys)


def test_the_dashboards_run_is_its_own_and_tells_the_short_runs_story():
    """The dashboard runs DASH (16 s), not the sweeps' SHORT (22 s): the same storm at 65%, absorbed at 2 s
    and kept at 3 s in its seed, judged from 5 s after its default trigger (4 s) ends."""
    assert mf.DASH != mf.SHORT and mf.DASH["duration"] < mf.SHORT["duration"]
    assert mf.DASH["window"] == (11.0, 16.0) and mf.DASH["window"][0] - (mf.DASH["start"] + mf.TRIGGER) == 5.0
    dash = all_dashboards()["08_metastable/metastable"]()
    assert all(r.results.until >= mf.DASH["duration"] and r.window == mf.DASH["window"] for r in dash.results.values())
    after = {t: [mf.metastable_run(trigger=t, budget=b, seed=7, **mf.DASH).after for b in (False, True)]
             for t in (2.0, 3.0, 6.0)}
    assert after[2.0][0] > 0.95 and after[3.0][0] < 0.05 and after[6.0][0] < 0.05    # no budget: the edge
    assert after[3.0][1] > 0.95 and 0.05 < after[6.0][1] < 0.95                     # budget: a long one drains slowly


def test_the_runs_keep_no_policy_logs_and_their_counts_stay_exact():
    res = mf.metastable_run(budget=True, seed=7, **mf.DASH)
    retry, budget = res.client.retry, res.client.budget
    logs = (retry.retries, retry.refusals, retry.backoff.given, budget.denied)
    assert all(len(log) == 0 and log.limit == 0 for log in logs)
    assert retry.retries.total > 0 and budget.denied.total == res.client.budget_denied > 0


def test_metastable_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["08_metastable/metastable"]()
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


# --- closed-loop users, and the backlog a trigger builds --------------------------------------------
def test_think_time_makes_closed_loop_users_offer_the_load_and_refuses_too_few_users():
    think = mf.think_time(100, 0.65)
    response = theory.mmc_response_time(mf.API_WORKERS, 26.0, 1 / mf.API_WORK)
    assert math.isclose(100 / (think + response), 26.0)
    with pytest.raises(ValueError, match="users must be more than"):
        mf.think_time(1, 0.65)


def test_storm_rate_counts_timeouts_backoff_waits_and_thinking():
    assert math.isclose(mf.storm_rate(100, 4.0), 300 / 7.0)
    assert math.isclose(mf.storm_rate(100, 4.0, backoff=(1.0, 8.0)), 300 / (3 + 1 + 2 + 4.0))   # waits 1 + 2 s
    assert math.isclose(mf.storm_rate(100, 4.0, backoff=(1.0, 1.5)), 300 / (3 + 0.75 + 0.75 + 4.0))  # capped


def test_closed_loop_users_with_a_long_backoff_end_the_storm_that_open_loop_arrivals_keep():
    closed = mf.metastable_run(users=100, jitter=True, backoff=(1.0, 8.0), seed=7)
    assert closed.after > 0.95 and closed.label.endswith("100 users")
    assert mf.metastable_run(jitter=True, backoff=(1.0, 8.0), seed=7).after < 0.05       # open loop: stuck
    assert mf.metastable_run(users=100, seed=7).after < 0.05                              # no backoff: stuck


def test_the_trigger_backlog_estimate_and_the_measured_peak():
    assert mf.backlog_estimate(0.3) == 0.0 and math.isclose(mf.backlog_estimate(0.65), (26 - 40 / 3) * 4)
    assert mf.TIMEOUT_BACKLOG == mf.TIMEOUT * mf.CAPACITY == mf.timeout_backlog()
    assert mf.peak_backlog(0.4, seed=7) < mf.TIMEOUT_BACKLOG < mf.peak_backlog(0.65, seed=7)


def test_the_trigger_is_labelled_by_its_slowdown_not_the_faults_kind():
    from matplotlib.figure import Figure
    ax = Figure().subplots()
    res = mf.metastable_run(trigger=1.0, duration=20.0, window=(14.0, 20.0), seed=7)
    mf.draw_availability(ax, res)
    queue_ax = Figure().subplots()                  # the queue's panel names it the same way
    mf.name_trigger(mf.draw_queue(queue_ax, res, shade=True), res)
    for axes in (ax, queue_ax):
        labels = [p.get_label() for p in axes.patches]
        assert "trigger: work 3x slower" in labels and "latency spike" not in labels


def test_a_trigger_that_slows_every_request_threefold_lets_a_third_of_the_backlog_time_an_attempt_out():
    assert math.isclose(mf.timeout_backlog(mf.TRIGGER_FACTOR), mf.TIMEOUT_BACKLOG / 3)
    with pytest.raises(ValueError, match="factor"):
        mf.timeout_backlog(0)
