"""Sweeps: the same rows on every executor (in this process, a process pool, a local Dask cluster),
an interrupt keeps the finished rows, the intervals cover the truth at their nominal rate on cases
with a known answer, and misuse is refused before anything runs."""
import concurrent.futures as cf
import io
import math
import multiprocessing
import signal
import sys
import time
from math import comb

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from resilience_sim import theory  # noqa: E402
from resilience_sim.lessons import availability as av  # noqa: E402
from resilience_sim.lessons import metastable as mf  # noqa: E402
from resilience_sim.metrics.sweeps import (SweepTable, mean_interval, t_quantile, wilson_interval,  # noqa: E402
                                           z_quantile)
from resilience_sim.sweeps import (SweepFailed, SweepInterrupted, SweepProgress, process_pool, seed_for,  # noqa: E402
                                   sweep)
from resilience_sim.sweeps.progress import TextProgress  # noqa: E402
from resilience_sim.views import sweeps as sweep_plots  # noqa: E402

#: A cheap sweep with a known answer: availability of MTTF = MTTR = 1 (A = 0.5) over 50 cycles.
HALF = dict(cycles=[50.0], mttf=[1.0], mttr=[1.0])
#: The sweep every executor must give row for row: two scenarios' worth of points, a few seeds each.
GRID = {"cycles": [20.0, 50.0], "mttf": [1.0, 3.0], "mttr": [1.0]}


def toy(a, *, seed, **others):
    """A scenario of numbers only (no simulator): the same seed gives the same summary."""
    import random
    rng = random.Random(seed)
    return {"x": a + rng.random(), "hit": rng.random() < 0.3}


# --- the same rows everywhere ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference():
    return sweep(av.availability_sample, GRID, seeds=5, base_seed=3, progress=False)


def test_a_sweep_makes_one_row_per_run_in_the_grids_order(reference):
    assert len(reference) == reference.total == 4 * 5 and reference.complete
    assert reference.columns == ("cycles", "mttf", "mttr", "replicate", "seed", "availability", "down_at_end")
    points = [(r["cycles"], r["mttf"]) for r in reference.rows]
    assert points == [(c, m) for c in (20.0, 50.0) for m in (1.0, 3.0) for _ in range(5)]
    assert list(reference.column("replicate")) == list(range(5)) * 4
    assert reference.is_share("down_at_end") and not reference.is_share("availability")
    row = reference.rows[7]
    again = av.availability_sample(row["cycles"], mttf=row["mttf"], mttr=row["mttr"], seed=row["seed"])
    assert again == {"availability": row["availability"], "down_at_end": row["down_at_end"]}


def test_the_rows_are_the_same_on_a_process_pool_with_any_batch_and_worker_count(reference):
    with cf.ProcessPoolExecutor(2) as pool:
        assert sweep(av.availability_sample, GRID, seeds=5, base_seed=3, executor=pool, progress=False) == reference
        assert sweep(av.availability_sample, GRID, seeds=5, base_seed=3, executor=pool, batch=3,
                     progress=False) == reference
    with process_pool(1) as pool:
        one = sweep(av.availability_sample, GRID, seeds=5, base_seed=3, executor=pool, progress=False)
    assert one == reference and one.rows == reference.rows and one.executor == "ProcessPoolExecutor"


def test_the_rows_are_the_same_on_a_local_dask_cluster(reference):
    distributed = pytest.importorskip("distributed", reason="Dask is a test dependency: pip install -e '.[test]'")
    before = set(multiprocessing.active_children())
    with distributed.Client(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                            silence_logs=40) as client:
        executor = client.get_executor()
        table = sweep(av.availability_sample, GRID, seeds=5, base_seed=3, executor=executor, progress=False)
        batched = sweep(av.availability_sample, GRID, seeds=5, base_seed=3, executor=executor, batch=4,
                        progress=False)
        edge = sweep(mf.edge_run, {"trigger": [0.0, 4.0]}, seeds=2, executor=executor, progress=False)
    assert table == reference and batched == reference and table.executor == "ClientExecutor"
    assert edge == sweep(mf.edge_run, {"trigger": [0.0, 4.0]}, seeds=2, progress=False)
    deadline = time.monotonic() + 10
    while set(multiprocessing.active_children()) - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not set(multiprocessing.active_children()) - before, "the Dask workers outlived the cluster"


def test_rows_follow_the_grid_not_the_order_runs_finish_in():
    def slow_first(a, *, seed):
        time.sleep(0.002 * (6 - a))
        return {"a_again": a, "seed_again": seed}
    with cf.ThreadPoolExecutor(4) as pool:
        table = sweep(slow_first, {"a": list(range(6))}, seeds=2, executor=pool, progress=False)
    assert [r["a"] for r in table.rows] == [a for a in range(6) for _ in range(2)]
    assert all(r["a"] == r["a_again"] and r["seed"] == r["seed_again"] for r in table.rows)
    assert table == sweep(slow_first, {"a": list(range(6))}, seeds=2, progress=False)


def test_a_seed_depends_on_the_base_seed_the_point_and_the_replicate_only():
    assert seed_for(0, {"load": 0.5}, 0) == 2591367994308585377     # pinned: the same on every platform
    assert seed_for(0, {"load": np.float64(0.5)}, 0) == seed_for(0, {"load": 0.5}, 0)
    assert seed_for(0, {"a": 1, "b": 2}, 0) == seed_for(0, {"b": 2, "a": 1}, 0)
    assert len({seed_for(0, {"x": 1}, 0), seed_for(0, {"x": 1.0}, 0), seed_for(0, {"x": True}, 0),
                seed_for(1, {"x": 1}, 0), seed_for(0, {"x": 1}, 1)}) == 5
    assert all(0 <= seed_for(b, {}, r) < 2 ** 63 for b in range(3) for r in range(50))
    small = sweep(toy, {"a": [1, 2]}, seeds=3, progress=False)
    bigger = sweep(toy, {"a": [0, 1, 2, 3]}, seeds=5, progress=False)
    assert small.rows == [r for r in bigger.rows if r["a"] in (1, 2) and r["replicate"] < 3]


def test_given_seeds_are_the_same_at_every_point():
    table = sweep(toy, {"a": [0, 1]}, seeds=[7, 8, 9], progress=False)
    assert list(table.column("seed")) == [7, 8, 9, 7, 8, 9]
    assert table.column("x")[3] - table.column("x")[0] == pytest.approx(1.0)     # common random numbers


# --- stopping ------------------------------------------------------------------------------------------
def stop_after(n):
    def progress(state):
        if state.done >= n:
            raise KeyboardInterrupt
    return progress


def test_an_interrupt_keeps_the_finished_rows_in_a_partial_table():
    full = sweep(toy, {"a": [0, 1, 2]}, seeds=4, progress=False)
    with pytest.warns(RuntimeWarning, match="5 of 12 runs finished"):
        partial = sweep(toy, {"a": [0, 1, 2]}, seeds=4, progress=stop_after(5))
    assert not partial.complete and len(partial) == 5 and partial.total == 12
    assert partial.rows == full.rows[:5] and "INTERRUPTED" in repr(partial)
    summary = partial.summary("x")                     # it still summarises what it has
    assert list(summary.n) == [4, 1, 0] and math.isnan(summary[2].mean)


def test_an_interrupt_in_the_scenario_can_raise_with_the_rows_kept():
    def breaks_at_two(a, *, seed):
        if a == 2:
            raise KeyboardInterrupt
        return {"a2": a * 2}
    with pytest.raises(SweepInterrupted) as stopped:
        sweep(breaks_at_two, {"a": [0, 1, 2, 3]}, seeds=2, progress=False, on_interrupt="raise")
    assert isinstance(stopped.value, KeyboardInterrupt)
    assert [r["a"] for r in stopped.value.table.rows] == [0, 0, 1, 1] and not stopped.value.table.complete


def test_an_interrupt_on_an_executor_cancels_the_runs_not_yet_started():
    started = []

    def counted(c, *, seed):
        started.append(c)
        time.sleep(0.01)
        return {"minus": -c}
    with cf.ThreadPoolExecutor(1) as pool:
        with pytest.warns(RuntimeWarning):
            table = sweep(counted, {"c": list(range(40))}, seeds=1, executor=pool, in_flight=3,
                          progress=stop_after(4))
    assert not table.complete and 4 <= len(table) <= 7
    assert len(started) <= len(table) + 3, "runs went on after the interrupt"


def test_runs_that_finished_while_stopping_are_kept_and_the_callback_is_not_asked_again():
    asked = []

    def stop_at_first(state):
        asked.append(state.done)
        if state.done:
            time.sleep(0.05)                   # meanwhile the other workers finish their runs
            raise KeyboardInterrupt

    with cf.ThreadPoolExecutor(4) as pool, pytest.warns(RuntimeWarning):
        table = sweep(toy, {"a": list(range(8))}, seeds=1, executor=pool, batch=1, in_flight=4,
                      progress=stop_at_first)
    assert asked == [0, 1] and 1 < len(table) <= 4 and not table.complete
    assert table.rows == [r for r in sweep(toy, {"a": list(range(8))}, seeds=1, progress=False).rows
                          if r["a"] in {row["a"] for row in table.rows}]


def test_a_process_pool_from_process_pool_ignores_the_interrupt_in_its_workers():
    with process_pool(2) as pool:
        assert pool.submit(signal.getsignal, signal.SIGINT).result() == signal.SIG_IGN


def test_a_failing_run_names_its_point_and_seed_and_keeps_the_finished_rows():
    with pytest.raises(SweepFailed, match=r"cycles': -1.0.*seed \d+.*cycles must be > 0.*Rerun it alone") as failed:
        sweep(av.availability_sample, {"cycles": [5.0, -1.0]}, seeds=2, progress=False)
    assert len(failed.value.table) == 2 and failed.value.run.params == {"cycles": -1.0}
    assert isinstance(failed.value.__cause__, ValueError)
    with cf.ProcessPoolExecutor(2) as pool, pytest.raises(SweepFailed, match="cycles must be > 0") as remote:
        sweep(av.availability_sample, {"cycles": [5.0, -1.0]}, seeds=2, executor=pool, progress=False)
    assert "Traceback" in str(remote.value) and remote.value.run.params == {"cycles": -1.0}


# --- the intervals -------------------------------------------------------------------------------------
def test_t_and_normal_quantiles_match_the_tables():
    for level, df, table_value in [(0.95, 1, 12.7062), (0.95, 2, 4.3027), (0.95, 9, 2.2622), (0.95, 19, 2.0930),
                                   (0.95, 30, 2.0423), (0.99, 5, 4.0321), (0.90, 10, 1.8125), (0.95, 1000, 1.9623)]:
        assert t_quantile(level, df) == pytest.approx(table_value, abs=1e-4)
    assert z_quantile(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert abs(t_quantile(0.95, 200) - t_quantile(0.95, 201)) < 1e-4       # the exact sum meets the expansion


def test_wilson_interval_stays_inside_zero_and_one_and_matches_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((1.0, 0.7225, 1.0), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.5, 0.2366, 0.7634), abs=1e-4)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    mean, low, high = mean_interval([1.0, 2.0, 3.0, 4.0], method="bootstrap")
    assert (mean, low, high) == mean_interval([1.0, 2.0, 3.0, 4.0], method="bootstrap") and low < mean < high
    assert math.isnan(mean_interval([1.0])[1]) and mean_interval([2.0, 2.0]) == (2.0, 2.0, 2.0)


def _band(rate: float, reps: int, sigmas: float = 3.5) -> tuple[float, float]:
    """Where the coverage of ``reps`` intervals of true coverage ``rate`` falls, ``sigmas`` binomial sds either side."""
    sd = math.sqrt(rate * (1 - rate) / reps)
    return rate - sigmas * sd, rate + sigmas * sd


def test_t_intervals_cover_the_true_availability_at_their_nominal_rate():
    # 200 repetitions of a 10-seed sweep; truth MTTF/(MTTF+MTTR) = 0.5. The run starts up: a bias of
    # 0.5/(2 x 100) = 0.0025, a sixth of the mean's standard error (0.05/sqrt(10)), which costs coverage
    # about half a point
    truth = theory.availability(1.0, 1.0)
    covered = [sweep(av.availability_sample, HALF, seeds=10, base_seed=rep, progress=False)
               .summary("availability").covers(truth)[0] for rep in range(200)]
    low, high = _band(0.95, 200)
    assert low < np.mean(covered) < high, f"t intervals covered the truth {np.mean(covered):.1%} of the time"


def test_wilson_intervals_cover_the_true_share_at_their_nominal_rate():
    # down at the end of a run with MTTF = MTTR = 1: probability (1 - exp(-2 x 10)) / 2, 1/2 to 1e-9.
    # Wilson's coverage with 20 runs at p = 1/2 is 95.9% (exactly, summed over the binomial); 200
    # repetitions of the 20-seed sweep
    n, p = 20, 0.5
    short = {**HALF, "cycles": [5.0]}
    exact = sum(comb(n, k) * p ** n for k in range(n + 1)
                if wilson_interval(k, n)[1] <= p <= wilson_interval(k, n)[2])
    assert exact == pytest.approx(0.9586, abs=1e-4)
    covered = [sweep(av.availability_sample, short, seeds=n, base_seed=1000 + rep, progress=False)
               .summary("down_at_end").covers(p)[0] for rep in range(200)]
    low, high = _band(0.95, 200)
    assert low < np.mean(covered) < high and _band(exact, 200)[0] < np.mean(covered)


# --- summaries and other forms ------------------------------------------------------------------------
def test_summary_is_wilson_for_true_false_metrics_and_t_for_numbers():
    table = sweep(toy, {"a": [0, 1]}, seeds=6, progress=False)
    hits, xs = table.summary("hit"), table.summary("x")
    assert hits.method == "wilson" and xs.method == "t" and table.summary("x", method="normal").method == "normal"
    assert hits[0].mean == np.mean(table.values("hit", a=0))
    assert (hits[0].low, hits[0].high) == wilson_interval(int(table.values("hit", a=0).sum()), 6)[1:]
    assert xs[1].mean == pytest.approx(np.mean(table.values("x", a=1)))
    below = table.share("x", below=1.5)
    assert below.method == "wilson" and below.at(a=0).mean == 1.0 and below.label == "x < 1.5"
    with pytest.raises(ValueError, match="wilson.*share"):
        table.summary("x", method="wilson")
    with pytest.raises(ValueError, match="exactly one of below= or above="):
        table.share("x")


def test_pivot_and_where_select_points():
    table = sweep(toy, {"a": [0, 1, 2], "b": ["p", "q"]}, seeds=2, progress=False)
    rows, cols, grid = table.summary("x").pivot("a", "b")
    assert rows == [0, 1, 2] and cols == ["p", "q"] and grid.shape == (3, 2)
    assert grid[2, 1] == pytest.approx(np.mean(table.values("x", a=2, b="q")))
    assert len(table.where(b="q")) == 6 and table.where(b="q").points == [{"a": a, "b": "q"} for a in range(3)]
    with pytest.raises(ValueError, match="no point has"):
        table.where(a=7)
    three = sweep(toy, [{"a": 0, "b": "p", "c": 1}, {"a": 0, "b": "p", "c": 2}], seeds=1, progress=False)
    with pytest.raises(ValueError, match="other parameters fixed.*'c'"):
        three.summary("x").pivot("a", "b")


def test_to_pandas_needs_pandas_and_says_so(monkeypatch):
    table = sweep(toy, {"a": [0]}, seeds=2, progress=False)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas.*table.rows"):
        table.to_pandas()


def test_to_pandas_gives_the_rows_where_pandas_is_installed():
    pytest.importorskip("pandas")
    table = sweep(toy, {"a": [0, 1]}, seeds=3, progress=False)
    df = table.to_pandas()
    assert list(df.columns) == list(table.columns) and len(df) == 6 and df.attrs["complete"]
    assert df["x"].tolist() == list(table.column("x")) and str(df["seed"].dtype) == "int64"


# --- progress --------------------------------------------------------------------------------------------
def test_the_progress_callback_sees_every_run_and_a_time_left():
    seen = []
    sweep(toy, {"a": [0, 1]}, seeds=3, progress=seen.append)
    assert [s.done for s in seen] == list(range(7)) and all(s.total == 6 for s in seen)
    assert seen[0].remaining is None and seen[3].remaining is not None and seen[-1].remaining == 0
    assert "6/6 runs (100%)" in str(seen[-1])
    assert "about 1.0 s left" in str(SweepProgress(1, 2, 1.0))


def test_text_progress_writes_lines_to_a_log_and_says_when_it_stopped():
    out = io.StringIO()
    bar = TextProgress(out)
    for done in range(11):
        bar.update(SweepProgress(done, 10, done * 0.1))
    bar.close(SweepProgress(4, 10, 1.0), False)
    lines = out.getvalue().splitlines()
    assert len(lines) == 12 and "10/10 runs" in lines[-2] and "stopped: 4 of 10 runs kept" in lines[-1]


def test_auto_progress_stays_quiet_on_a_short_sweep(capsys):
    sweep(toy, {"a": [0]}, seeds=3)
    assert capsys.readouterr().err == ""
    sweep(toy, {"a": [0]}, seeds=3, progress="text")
    assert "3/3 runs" in capsys.readouterr().err


def test_the_widget_progress_bar_counts_the_runs(monkeypatch):
    from resilience_sim.views.progress import ProgressBar
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda box: shown.append(box))
    bar = ProgressBar(5)
    for done in range(6):
        bar.update(SweepProgress(done, 5, 0.1 * done))
    bar.close(SweepProgress(5, 5, 0.5), True)
    assert shown == [bar.box] and "rs-progress" in bar.box._dom_classes
    assert bar.bar.value == 5 and bar.bar.bar_style == "success" and "5 runs" in bar.text.value
    sweep(toy, {"a": [0]}, seeds=2, progress="widget")
    assert len(shown) == 2 and shown[1].children[0].value == 2


# --- pictures --------------------------------------------------------------------------------------------
def test_band_and_heat_map_draw_a_summary():
    table = sweep(toy, {"a": [0, 1, 2], "b": [10, 20]}, seeds=3, progress=False)
    fig, (ax1, ax2) = plt.subplots(1, 2)
    sweep_plots.band(table.where(b=10).summary("x"), "a", ax=ax1, truth=1.0)
    assert len(ax1.lines) == 2 and len(ax1.collections) == 1 and ax1.get_xlabel() == "a"
    sweep_plots.heat_map(table.summary("hit"), "a", "b", ax=ax2)
    assert ax2.images[0].get_array().shape == (2, 3) and len(ax2.texts) == 6
    with pytest.raises(ValueError, match="also varies 'b'"):
        sweep_plots.band(table.summary("x"), "a", ax=ax1)
    with pytest.raises(TypeError, match="Summary"):
        sweep_plots.band(table, "a", ax=ax1)
    plt.close(fig)


# --- misuse --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("grid, message", [
    ({}, r"at least one parameter.*grid=None"),
    ([], "at least one point"),
    ({"a": []}, r"grid\['a'\] must list at least one value"),
    ({"a": 0.5}, r"must be a list of values.*\[0.5\]"),
    ({"a": "abc"}, "must be a list of values"),
    ({"seed": [1]}, "cannot have a parameter called 'seed'"),
    ({"a": [1, 1]}, "lists 1 twice"),
    ({"a": [float("nan")]}, "got nan"),
    ({"a": [object()]}, "plain value"),
    ([{"a": 1}, {"b": 2}], "same parameters"),
    ({"not a name": [1]}, "identifiers"),
])
def test_bad_grids_are_refused(grid, message):
    with pytest.raises(ValueError, match=message):
        sweep(toy, grid, seeds=1, progress=False)


@pytest.mark.parametrize("seeds, message", [
    (0, "seeds must be a whole number >= 1"), (-3, ">= 1"), (True, "seeds must be"), ([], "at least one seed"),
    ([1, 1], "different"), ([-1], r"seeds\[0\]"), ("10", "seeds must be"),
])
def test_bad_seeds_are_refused(seeds, message):
    with pytest.raises(ValueError, match=message):
        sweep(toy, {"a": [0]}, seeds=seeds, progress=False)


def test_an_absurd_sweep_is_refused_naming_the_limit():
    with pytest.raises(ValueError, match=r"3 points x 50,000 seeds = 150,000 runs is more than max_runs=100,000"):
        sweep(toy, {"a": [0, 1, 2]}, seeds=50_000, progress=False)
    assert len(sweep(toy, {"a": [0, 1, 2]}, seeds=2, max_runs=6, progress=False)) == 6


def test_an_executor_must_be_an_executor():
    class FakeClient:
        def get_executor(self):
            return None
    with pytest.raises(TypeError, match="concurrent.futures.Executor"):
        sweep(toy, {"a": [0]}, executor="processes", progress=False)
    with pytest.raises(TypeError, match=r"client.get_executor\(\)"):
        sweep(toy, {"a": [0]}, executor=FakeClient(), progress=False)


def test_a_process_pool_refuses_a_scenario_it_cannot_pickle_before_running_it():
    ran = []
    with cf.ProcessPoolExecutor(1) as pool:
        with pytest.raises(TypeError, match="picklable.*not a lambda"):
            sweep(lambda a, *, seed: ran.append(a) or {"a": a}, {"a": [0]}, executor=pool, progress=False)
    assert not ran


def test_a_scenario_must_take_the_grids_names_and_seed():
    with pytest.raises(TypeError, match=r"take the grid's parameters \(b\) and seed="):
        sweep(toy, {"b": [0]}, progress=False)
    with pytest.raises(TypeError, match="seed="):
        sweep(lambda a: {"a": a}, {"a": [0]}, progress=False)
    with pytest.raises(TypeError, match="scenario must be a function"):
        sweep("toy", {"a": [0]}, progress=False)


@pytest.mark.parametrize("summary, message", [
    (None, "small summary"), ({}, "small summary"), ({"r": [1, 2]}, "number or True/False"),
    ({"r": None}, "float\\('nan'\\)"), ({"a": 1.0}, "name of a parameter"),
])
def test_a_scenario_must_return_a_small_summary(summary, message):
    with pytest.raises((SweepFailed, ValueError), match=message):
        sweep(lambda a, *, seed: summary, {"a": [0]}, seeds=1, progress=False)


def test_every_run_must_return_the_same_metrics():
    with pytest.raises(ValueError, match="same metrics every run"):
        sweep(lambda a, *, seed: {"x": 1} if a else {"y": 1}, {"a": [0, 1]}, seeds=1, progress=False)


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch=0), "batch"), (dict(on_interrupt="ignore"), "on_interrupt"), (dict(progress="bar"), "progress"),
    (dict(progress=3), "progress"), (dict(in_flight=0), "in_flight"), (dict(base_seed=-1), "base_seed"),
    (dict(max_runs=0), "max_runs"),
])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sweep(toy, {"a": [0]}, **{"progress": False, **kwargs})


def test_a_shut_down_executor_is_reported():
    pool = cf.ThreadPoolExecutor(1)
    pool.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        sweep(toy, {"a": [0]}, executor=pool, progress=False)


def test_a_table_checks_its_rows_and_compares_by_rows_only():
    with pytest.raises(ValueError, match="one value per metric"):
        SweepTable(("a",), [{"a": 1}], [(0, 0, 1, (1.0, 2.0))], metrics=("x",))
    a = SweepTable(("a",), [{"a": 1}], [(0, 0, 1, (1.0,))], metrics=("x",), elapsed=1.0)
    b = SweepTable(("a",), [{"a": 1}], [(0, 0, 1, (1.0,))], metrics=("x",), elapsed=9.0, executor="x")
    assert a == b and "1 of 1 runs" in repr(a) and "<table>" in a._repr_html_()
