"""Notebook 12 (deferred answers): its scenarios are seeded, its key claims hold, its dashboard reacts,
and bad input is refused with a message naming the parameter."""
import math
import random

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from resilience_sim import JobQueue
from resilience_sim.lessons import all_dashboards
from resilience_sim.lessons import deferred as dj
from resilience_sim.policies import ConstantBackoff

matplotlib.use("Agg")
SEED = 1212
SHORT = dict(outage=(30.0, 150.0), duration=400.0)      # a small story for the quick checks


@pytest.fixture(scope="module")
def story():
    """The notebook's section 2 runs: without and with deferral."""
    return dj.export_run(SEED, defer=False), dj.export_run(SEED)


# --- formulas --------------------------------------------------------------------------------------
def test_service_rate_is_limited_by_workers_and_by_the_builders_slots():
    assert dj.service_rate(2) == 0.5
    assert dj.service_rate(4) == dj.service_rate(8) == 1.0
    assert dj.service_rate(3, slots=10, build=1.5) == 2.0


def test_drain_time_is_backlog_over_the_spare_rate_and_infinite_without_one():
    assert dj.drain_time(158, 0.5, 0.25) == 632.0
    assert dj.drain_time(0, 1.0, 0.5) == 0.0
    assert math.isinf(dj.drain_time(10, 0.25, 0.25)) and math.isinf(dj.drain_time(10, 0.2, 0.3))
    # M/M/1 busy period: variance (1 + rho) / (mu^2 (1 - rho)^3) per job of the backlog
    assert math.isclose(dj.drain_sd(1, 1.0, 0.5), math.sqrt(1.5 / 0.125))
    assert math.isclose(dj.drain_sd(100, 1.0, 0.5), 10 * dj.drain_sd(1, 1.0, 0.5))
    assert math.isinf(dj.drain_sd(5, 0.5, 0.5))


def test_total_backoff_and_attempts_follow_the_capped_schedule():
    assert dj.total_backoff(1) == 0 and dj.total_backoff(2) == 2 and dj.total_backoff(8) == 182
    assert dj.outage_survived(8) == 182
    exp = lambda n: min(60.0, 2.0 ** n)
    assert dj.attempts_while_down(0, exp) == 1                 # the first attempt fails, then it is back
    assert dj.attempts_while_down(2.0, exp) == 1 and dj.attempts_while_down(2.5, exp) == 2
    assert dj.attempts_while_down(182.5, exp) == 8
    assert dj.attempts_while_down(10.0, lambda n: 2.0) == 5    # at 0, 2, 4, 6, 8


# --- section 1: one job through its life, with plain numbers -------------------------------------
def test_one_job_queued_running_queued_done():
    q = JobQueue()
    q.submit("j", 0.0)
    assert q.status("j") == "queued" and q.take(0.0) == "j" and q.status("j") == "running"
    ready = q.retry_later("j", 0.5, random.Random(1))
    assert ready == 2.5 and q.status("j") == "queued" and q.take(1.0) is None
    assert q.take(ready) == "j" and q.complete("j", 6.5) == 6.5 and q.status("j") == "done"
    assert set(dj.HTTP_STATUS) == {"queued", "running", "done", "dead"}
    assert dj.HTTP_STATUS["dead"].startswith("4xx")          # the error persisted at the status URL


def test_submit_once_returns_the_existing_job_for_a_retried_key():
    q, seen = JobQueue(capacity=1), {}
    assert dj.submit_once(q, seen, "k1", 0.0) == ("k1", True)
    assert dj.submit_once(q, seen, "k1", 1.0) == ("k1", False) and q.accepted == 1
    assert dj.submit_once(q, seen, "k2", 1.0) == (None, False) and q.refused == 1     # full: 503
    with pytest.raises(ValueError, match="already in the queue"):
        q.submit("k1", 2.0)                    # the queue itself refuses a duplicate id


# --- section 2: the story ----------------------------------------------------------------------------
def test_export_run_is_seeded():
    a, b, c = dj.export_run(7, **SHORT), dj.export_run(7, **SHORT), dj.export_run(8, **SHORT)
    assert np.array_equal(a.results.start, b.results.start) and a.jobs.attempts == b.jobs.attempts
    assert np.array_equal(a.jobs.notified_at, b.jobs.notified_at)
    assert not np.array_equal(a.results.start, c.results.start)


def test_without_deferral_the_outage_fails_every_request(story):
    without, _ = story
    assert without.availability(without.outage) == 0.0 and without.failed() == 158
    assert without.results.reasons() == {"down": 158}
    assert round(without.availability(), 2) == 0.65
    with pytest.raises(ValueError, match="defer must be True"):
        without.jobs


def test_with_deferral_every_request_is_accepted_and_no_job_lost(story):
    _, deferred = story
    jobs = deferred.jobs
    assert deferred.availability() == 1.0 and deferred.results.reasons() == {"deferred": jobs.accepted}
    assert jobs.lost == 0 and jobs.accepted == jobs.completed == len(deferred.results.only("export"))
    assert jobs.queued == jobs.running == jobs.dead == 0
    assert {deferred.queue.status(job) for job, _, _ in deferred.queue.done} == {"done"}
    assert deferred.results.only("export").latency.max() == pytest.approx(dj.FRONT_WORK)   # 202 at once


def test_queue_grows_by_the_arrival_rate_and_drains_near_the_prediction(story):
    _, deferred = story
    backlog = deferred.depth_at(deferred.outage[1])
    assert backlog == 158 and abs(backlog - dj.RATE * 600) < 4 * math.sqrt(dj.RATE * 600)
    assert deferred.peak()[1] >= backlog and deferred.depth_at(0.0) == 0
    assert deferred.predicted_drain() == 632.0
    spread = dj.drain_sd(backlog, dj.service_rate(), dj.RATE)
    assert abs(deferred.drain() - deferred.predicted_drain()) < 3 * spread
    assert round(deferred.drain()) == 512


def test_time_to_notification_outlasts_the_outage_but_stays_bounded(story):
    _, deferred = story
    longest = deferred.jobs.time_to_notify.max()
    backlog = deferred.depth_at(deferred.outage[1])
    assert deferred.outage_length < longest < deferred.outage_length + backlog / dj.service_rate() + dj.BACKOFF_CAP
    after = deferred.notify_percentiles((50, 100), window=(deferred.drained_at(), deferred.duration))
    assert after[50] < 2 * dj.BUILD and after[100] < 8 * dj.BUILD
    with pytest.raises(ValueError, match="window"):
        deferred.notify_percentiles(window=(5000.0, 6000.0))


def test_a_crash_of_export_loses_the_jobs_in_its_memory_and_none_of_the_durable_queue():
    durable = dj.export_run(SEED, front_crash=dj.FRONT_CRASH)
    memory = dj.export_run(SEED, front_crash=dj.FRONT_CRASH, durable=False)
    kept, gone = durable.promises(), memory.promises()
    assert kept.lost == 0 and kept.emailed == kept.accepted == durable.jobs.accepted
    in_memory = len(memory.results.only("export").between(dj.OUTAGE[0], dj.FRONT_CRASH[0]))
    assert gone.lost == in_memory > 50 and gone.emailed + gone.lost == gone.accepted and gone.waiting == 0
    for run in (durable, memory):                             # export down: new POSTs fail "down"
        assert run.failed(dj.FRONT_CRASH) > 0 and run.results.reasons()["down"] == run.failed()
    assert memory.memory.life.crashes == 1 and memory.memory.life.starts == 2
    with pytest.raises(ValueError, match="durable must be True"):
        memory.jobs


def test_jobs_in_memory_without_a_crash_are_built_like_durable_ones():
    run = dj.export_run(SEED, durable=False, **SHORT)
    p = run.promises()
    assert p.lost == 0 and p.emailed == p.accepted == len(run.results.only("export"))


# --- section 3: drain and backoff -------------------------------------------------------------------
def test_workers_table_one_worker_never_drains_and_eight_are_no_better_than_four():
    table = dj.workers_table(SEED, (1, 4, 8))
    data = table.data
    assert math.isinf(data[1][1]) and math.isnan(data[1][2]) and data[1][3] > 100
    assert data[4][2] == data[8][2] and data[4][0] == data[8][0] == 1.0
    assert "never" in str(table) and "workers" in table._repr_html_()


def test_backoff_schedules_predict_the_failed_attempts_exactly(story):
    _, deferred = story
    hammer = dj.export_run(SEED, backoff=ConstantBackoff(2.0))
    lo, hi = deferred.outage
    for run, delay in ((deferred, lambda n: min(60.0, 2.0 ** n)), (hammer, lambda n: 2.0)):
        expected = sum(dj.attempts_while_down(hi - a, delay) for a in run.jobs.accepted_at if lo <= a < hi)
        assert run.jobs.attempts - run.jobs.completed == expected
        assert run.builder_calls() == run.jobs.attempts
    assert hammer.jobs.attempts > 10 * deferred.jobs.attempts
    assert abs(hammer.drain() - deferred.drain()) < 5 and hammer.jobs.lost == 0


# --- section 4: limits -----------------------------------------------------------------------------
def test_a_bounded_queue_refuses_with_overload_and_loses_nothing():
    run = dj.export_run(SEED, capacity=60)
    j = run.jobs
    assert j.refused == run.results.reasons()["overload"] == 98
    assert j.accepted + j.refused == len(run.results.only("export")) and j.lost == 0 and j.completed == j.accepted
    assert run.depth_at(run.outage[1]) == 60 and run.predicted_drain() == 240.0
    assert run.jobs.depth.max() <= 60 + dj.WORKERS


def test_max_attempts_parks_the_jobs_older_than_the_backoffs_span():
    run = dj.export_run(SEED, max_attempts=8)
    j, parked = run.jobs, run.queue.parked
    accepted = np.r_[j.accepted_at, [a for _, a, _ in parked]]
    lo, hi = run.outage
    assert j.dead == len(parked) == int(np.sum((accepted >= lo) & (accepted < hi - 182)))
    assert j.lost == 0 and j.accepted == j.completed + j.dead
    assert {run.queue.status(job) for job, _, _ in parked} == {"dead"}
    assert all(math.isclose(died - acc, 182.0) for _, acc, died in parked)    # every attempt failed at once


def test_an_idempotency_key_builds_one_report_per_user():
    twice = dj.export_run(SEED, retry_rate=0.05, **SHORT)
    once = dj.export_run(SEED, retry_rate=0.05, idempotent=True, **SHORT)
    users, retries = len(once.results.only("export")), len(once.results.only("retry"))
    assert retries > 0 and twice.jobs.completed == users + retries
    assert once.jobs.completed == once.jobs.accepted == users and once.results.request_availability() == 1.0
    assert len(set(once.job_ids.values())) == users


# --- pictures -----------------------------------------------------------------------------------------
def test_draw_functions_draw_lines_and_shading(story):
    without, deferred = story
    ax = Figure().subplots()
    dj.draw_users(ax, (without, deferred))
    assert len(ax.lines) == 2 and ax.get_ylabel() == "requests answered (%)"
    ax = Figure().subplots()
    dj.draw_depth(ax, deferred)
    assert len(ax.lines) == 2 and len(ax.patches) == 1           # depth + predicted drain; the outage
    ax = Figure().subplots()
    dj.draw_notify(ax, deferred)
    assert ax.get_xscale() == "log" and len(ax.lines) == 2
    ax = Figure().subplots()
    dj.draw_notify_share(ax, deferred)
    assert ax.lines[0].get_ydata()[-1] == pytest.approx(100.0)


# --- the dashboard ---------------------------------------------------------------------------------------
def test_dashboard_is_registered():
    assert "12_deferred/outage" in all_dashboards()


def test_outage_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["12_deferred/outage"]()
    (_, (without, with_)), *_ = dash.results.values()
    assert not without.defer and with_.defer
    assert without.results.until == with_.results.until == dj.DASH_DURATION + dj.TAIL     # both have the tail
    assert without.availability() < 1.0 == with_.availability()
    assert with_.outage == (dj.DASH_START, dj.DASH_START + 600) and with_.jobs.lost == 0
    assert "drained" in dash.text.value and "lost 0" in dash.text.value
    picture = dash.picture.value

    dash.set(outage_s=120)
    assert dash.picture.value != picture
    (_, (without, with_)), *_ = dash.results.values()
    assert with_.outage == (dj.DASH_START, dj.DASH_START + 120)
    assert without.availability() > 0.9
    assert dj.dash_window(with_) < 600 and dash._axes[0].get_xlim() == (0.0, dj.dash_window(with_))   # zoomed in

    dash.set(outage_s=600, workers=1)                           # 1 worker = the arrival rate: never drains
    assert "never drained" in dash.text.value
    (_, (_, with_)), *_ = dash.results.values()
    assert with_.workers == 1 and with_.jobs.queued > 50

    dash.set(workers=8)
    (_, (_, eight)), *_ = dash.results.values()
    assert eight.workers == 8 and eight.drain() < 400

    dash.set(workers=2, rate=0.5)                               # mu = lambda again
    (_, (without, with_)), *_ = dash.results.values()
    assert with_.rate == 0.5 and "never drained" in dash.text.value
    dash.set(rate=0.05)
    assert "Could not run" not in dash.text.value and "drained" in dash.text.value


def test_dashboard_runs_are_shared_by_the_panels_and_cached_by_parameters():
    dash = all_dashboards()["12_deferred/outage"]()
    pairs = [pair for _, pair in dash.results.values()]
    assert all(p is pairs[0] for p in pairs)                    # three panels, one pair of runs
    dash.rerun()
    assert [pair for _, pair in dash.results.values()][0] is pairs[0]


# --- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, word", [
    (dict(rate=0), "rate"), (dict(rate=-1), "rate"), (dict(workers=0), "workers"),
    (dict(outage=(200, 100)), "outage"), (dict(duration=0), "duration"), (dict(retry_rate=-0.1), "retry_rate"),
    (dict(capacity=0), "capacity"), (dict(max_attempts=0), "max_attempts"), (dict(backoff="fast"), "backoff"),
    (dict(defer="yes"), "defer"), (dict(tail=-1), "tail"), (dict(slots=0), "capacity"),
    (dict(backoff=ConstantBackoff(0.0)), "backoff must wait more than 0 s"),
    (dict(defer=False, durable=False), "durable=False needs defer=True"), (dict(front_crash=(50, 10)), "front_crash"),
    (dict(durable=False, idempotent=True), "durable=False keeps"),
])
def test_export_run_names_the_bad_parameter(kwargs, word):
    with pytest.raises((ValueError, TypeError), match=word):
        dj.export_run(SEED, **kwargs)


@pytest.mark.parametrize("call, word", [
    (lambda: dj.drain_time(-1, 1, 0.5), "backlog"), (lambda: dj.drain_time(1, 0, 0.5), "service"),
    (lambda: dj.drain_time(1, 1, -0.5), "arrivals"), (lambda: dj.service_rate(0), "workers"),
    (lambda: dj.service_rate(1, build=0), "build"), (lambda: dj.total_backoff(0), "max_attempts"),
    (lambda: dj.attempts_while_down(-1, lambda n: 1.0), "wait"),
    (lambda: dj.attempts_while_down(5, lambda n: 0.0), "delay"),
    (lambda: dj.attempts_while_down(5, 3), "delay"),
    (lambda: dj.submit_once("queue", {}, "k", 0.0), "queue"),
    (lambda: dj.submit_once(JobQueue(), [], "k", 0.0), "seen"),
])
def test_helpers_name_the_bad_parameter(call, word):
    with pytest.raises((ValueError, TypeError), match=word):
        call()


def test_run_views_refuse_a_window_outside_the_run(story):
    _, deferred = story
    with pytest.raises(ValueError, match="window"):
        deferred.availability((5000.0, 6000.0))
