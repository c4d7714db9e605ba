"""What the lessons share, and what they moved down into the layers: ``lessons.common`` (units, a
table, formats), ``sim.probes`` and ``sim.topologies`` (simpy-side helpers), ``metrics.windows`` and
the drawing helpers added to ``views.plots``."""
import math

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from resilience_sim import ErrorBurst, Exponential, OpenLoop, Outage, Service, World, plots
from resilience_sim.core.timeline import Timeline
from resilience_sim.lessons import common
from resilience_sim.metrics.windows import availability_between, batch_means, quality_series, time_down
from resilience_sim.sim.probes import CallLog, ServiceProbe
from resilience_sim.sim.topologies import chain, fanout, forward, wait_for_all

matplotlib.use("Agg")


# --- lessons.common ---------------------------------------------------------------------------------
def test_units_and_formats_read_as_people_write_them():
    assert (common.MINUTE, common.HOUR, common.DAY, common.WEEK) == (60.0, 3600.0, 86400.0, 604800.0)
    assert math.isclose(12 * common.MONTH, common.YEAR) and common.MS == 0.001
    assert common.format_duration(3 * common.DAY) == "3 days" and common.format_duration(90) == "1.5 min"
    assert common.percent(0.999) == "99.9%" and common.percent(0.9) == "90%"


def test_a_table_shows_itself_as_html_and_text_and_keeps_its_numbers():
    table = common.Table(["a", "b"], [[1, "x"]], data=[{"a": 1}])
    assert "<td>x</td>" in table._repr_html_() and str(table).splitlines()[1].split() == ["1", "x"]
    assert table.data == [{"a": 1}] and common.Table(["a"], []).data is None


def test_a_run_memo_keeps_the_newest_runs_by_their_settings():
    made = []
    memo = common.RunMemo(keep=2)

    def run(n):
        return lambda: made.append(n) or f"run {n}"
    assert [memo.get(k, run(k)) for k in (1, 2, 1, 3)] == ["run 1", "run 2", "run 1", "run 3"]
    assert made == [1, 2, 3] and len(memo) == 2          # 1 was used again, so 2 went when 3 came
    assert memo.get(1, run(1)) == "run 1" and memo.get(2, run(2)) == "run 2" and made == [1, 2, 3, 2]
    with pytest.raises(ValueError, match="keep must be"):
        common.RunMemo(keep=0)


def test_clear_run_caches_forgets_every_lessons_memo():
    from resilience_sim.lessons import caching, clear_run_caches, deferred, messaging, outbox
    memos = [caching._DASH_RUNS, deferred._DASH_RUNS, messaging._DASH_RUNS, outbox._DASH_DUAL, outbox._DASH_OUTBOX]
    assert all(isinstance(m, common.RunMemo) for m in memos)
    for m in memos:
        m.get("a setting", lambda: "a run")
    clear_run_caches()
    assert [len(m) for m in memos] == [0] * len(memos)


# --- sim.topologies ---------------------------------------------------------------------------------
def test_a_chain_calls_each_link_in_turn_and_fails_with_its_deepest_link():
    world = World(1)
    services = chain(world, ["a", "b", "c"], latency=[0.001, 0.002, 0.003], capacity=4)
    assert [s.dependencies for s in services] == [("b",), ("c",), ()] and services[0].handler is forward
    Outage(services[-1], [(1.0, 2.0)])
    OpenLoop(world, services[0], 20, duration=3.0)
    results = world.run(until=4.0)
    assert set(results.failed_by()) == {"c"}
    assert results.between(0.0, 1.0).latency_percentiles((50,))[50] == pytest.approx(0.006)
    with pytest.raises(ValueError, match="latency must be one value or one per service"):
        chain(World(1), ["a", "b"], latency=[0.1], capacity=1)


def test_a_fanout_waits_for_its_slowest_leaf_and_wraps_each_leaf():
    world = World(2)
    wrapped = []
    root = fanout(world, 3, 0.01, wrap=lambda leaf: wrapped.append(CallLog(leaf)) or wrapped[-1])
    assert root.dependencies == ("leaf-1", "leaf-2", "leaf-3") and root.handler is wait_for_all
    OpenLoop(world, root, 10, requests=5)
    results = world.run(until=10.0)
    assert [len(log.times) for log in wrapped] == [5, 5, 5]
    assert np.allclose(results.latency, 0.01) and results.calls_per_request(*root.dependencies) == 3


# --- sim.probes ---------------------------------------------------------------------------------------
def test_the_probe_samples_on_an_exact_grid_and_stops_at_until():
    world = World(3)
    svc = Service(world, "svc", capacity=1, latency=0.5)
    probe = ServiceProbe(world, svc, 0.1, until=3.0)
    OpenLoop(world, svc, 4.0, duration=5.0)
    world.run(until=5.0)
    assert len(probe.times) == 30 and probe.times[7] == 7 * 0.1
    assert max(probe.busy) == 1 and probe.at(2.95) == probe.in_system[-1] and probe.in_system[-1] > 0
    with pytest.raises(ValueError, match="every"):
        ServiceProbe(world, svc, 0.0)


def test_a_call_log_notes_each_call_its_duration_and_key_without_changing_the_run():
    def run(log: bool):
        world = World(4)
        svc = Service(world, "svc", capacity=2, latency=Exponential(0.05))
        ErrorBurst(svc, [(0.0, 10.0)], error_rate=0.3)
        target = CallLog(svc, durations=True) if log else svc
        OpenLoop(world, target, 20, duration=2.0, key=lambda rng: rng.random())
        return world.run(until=5.0), target
    (plain, _), (logged, log) = run(False), run(True)
    assert np.array_equal(plain.end, logged.end) and np.array_equal(plain.outcome, logged.outcome)
    assert len(log.times) == len(logged) and log.between(0.0, 1.0) == len(logged.between(0.0, 1.0))
    by_key = dict(zip(log.keys, log.durations))
    assert all(math.isclose(by_key[logged.key(i)], logged.latency[i]) for i in range(len(logged)))


# --- metrics.windows ------------------------------------------------------------------------------------
def _run():
    world = World(5)
    svc = Service(world, "svc", capacity=4, latency=0.01)
    Outage(svc, [(2.0, 4.0)])
    OpenLoop(world, svc, 50, duration=10.0)
    return world.run(until=10.0)


def test_availability_between_is_nan_on_an_empty_window_and_matches_a_view_otherwise():
    results = _run()
    assert math.isnan(availability_between(results, 20.0, 30.0))
    assert availability_between(results, 1.0, 5.0) == results.between(1.0, 5.0).request_availability()


def test_quality_series_counts_full_and_degraded_answers_per_bin():
    results = _run()
    series = quality_series(results, 1.0)
    assert len(series["t"]) == 10 and np.all(series["answered"][2:4] == 0.0) and series["answered"][5] == 1.0
    assert np.array_equal(series["answered"], results.timeseries(1.0)["availability"], equal_nan=True)
    assert np.array_equal(series["full_quality"], series["answered"], equal_nan=True)   # nothing degraded


def test_time_down_and_batch_means_read_the_timeline():
    results = _run()
    timeline = results.services["svc"].timeline
    assert time_down(timeline, 0.0, 10.0) == 2.0 and time_down(timeline, 3.0, 7.0) == 1.0
    mean, se = batch_means(results, "svc", batches=5)
    assert math.isclose(mean, results.time_availability("svc")) and se > 0
    quiet = Timeline("x")
    assert time_down(quiet, 0.0, 5.0) == 0


# --- views.plots helpers --------------------------------------------------------------------------------
def test_time_axis_and_fixed_ticks_label_the_axes():
    ax = Figure().subplots()
    ax.set_xlim(0, 7 * 86400.0)
    plots.time_axis(ax, "day")
    assert ax.get_xlabel() == "time (days)"
    plots.fixed_ticks(ax.yaxis, [1, 10])
    assert list(ax.get_yticks()) == [1, 10]
    with pytest.raises(ValueError, match="unit"):
        plots.time_axis(ax, "fortnight")


def test_rows_bands_dots_and_tails_draw_what_they_are_given():
    results = _run()
    ax = Figure().subplots()
    plots.timeline_rows(ax, [("svc", [(results.services["svc"].timeline.down_windows(10.0), "tab:red")])], 10.0)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["svc"] and ax.get_xlim() == (0, 10.0)
    ax = Figure().subplots()
    plots.state_band(ax, ((0.0, "closed"), (4.0, "open")), 10.0, {"closed": "g", "open": "r"})
    assert len(ax.collections) == 2
    ax = plots.request_dots(results, ax=Figure().subplots(), title="t")
    assert ax.get_yscale() == "log" and {t.get_text() for t in ax.get_legend().get_texts()} == {"answered", "failed", "outage"}
    ax = plots.latency_tails({"run": (results.latencies(), "k")}, ax=Figure().subplots())
    assert ax.get_xscale() == ax.get_yscale() == "log" and ax.get_xlabel() == "latency t (ms)"
