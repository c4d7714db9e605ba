"""Notebook 03 (faults and how to test for them): fingerprints, tests in simulation, the chaos experiment
and the dashboard."""
import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from resilience_sim import Outage, Service, World, plots, theory
from resilience_sim.lessons import all_dashboards
from resilience_sim.lessons import faults_testing as ft
from resilience_sim.sim.probes import ServiceProbe


# --- dashboard -------------------------------------------------------------------------------------
def test_faults_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["03_faults_and_testing/faults"]()
    without, with_ = dash.results.values()
    assert without["with_fault"] is False and with_["with_fault"] is True
    assert with_["kind"] == "gray failure"
    assert without["print"].availability == 1.0 and without["results"].faults == []
    assert with_["print"].availability < 1.0 and with_["print"].health_check_down == 0.0
    assert "health check says up" in dash.text.value
    picture, text = dash.picture.value, dash.text.value

    dash.set(kind=1)                                        # crash: the health check sees the whole window
    crash = dash.results["with the fault"]
    assert crash["kind"] == "crash" and crash["print"].availability == 0.0
    assert math.isclose(crash["print"].health_check_down, 8.0)
    assert dash.picture.value != picture and dash.text.value != text

    dash.set(length=4)
    assert math.isclose(dash.results["with the fault"]["print"].health_check_down, 4.0)
    assert dash.results["with the fault"]["window"] == (4.0, 8.0)

    dash.set(kind=2, intensity_pct=100)                     # errors at 100%: nothing answered in the window
    assert dash.results["with the fault"]["print"].availability == 0.0
    dash.set(intensity_pct=0)                               # errors at 0%: same as no fault
    assert dash.results["with the fault"]["print"].availability == 1.0
    dash.set(kind=3, intensity_pct=0)                       # latency of 0 ms: no fault attached
    assert dash.results["with the fault"]["results"].faults == []
    dash.set(kind=4, intensity_pct=50)
    part = dash.results["with the fault"]["print"]
    assert part.availability == 0.0 and math.isclose(part.slowest, 0.502)
    assert "Could not run" not in dash.text.value


# --- faults and their fingerprints -------------------------------------------------------------------
def test_fault_runs_are_seeded():
    one, two, other = (ft.fault_run("gray failure", seed=s, duration=12, window=(4, 8)) for s in (5, 5, 6))
    assert np.array_equal(one.latency, two.latency) and np.array_equal(one.outcome, two.outcome)
    assert not np.array_equal(one.latency[:20], other.latency[:20])


@pytest.fixture(scope="module")
def fingerprints():
    return {kind: ft.fingerprint(ft.fault_run(kind, seed=31), ft.WINDOW, kind or "")
            for kind in (None, *ft.KINDS)}


def test_each_fault_leaves_its_fingerprint(fingerprints):
    base, crash = fingerprints[None], fingerprints["crash"]
    assert base.availability == 1.0 and base.health_check_down == 0.0
    assert crash.availability == 0.0 and set(crash.reasons) == {"down"} and crash.health_check_down == 20.0
    errs = fingerprints["errors"]
    assert abs(errs.availability - 0.5) < 4 * math.sqrt(0.25 / errs.requests)
    lat = fingerprints["latency"]
    assert lat.availability == 1.0 and lat.fastest >= 0.102 - 1e-9
    part = fingerprints["partition"]
    assert part.availability == 0.0 and math.isclose(part.fastest, 0.502) and math.isclose(part.slowest, 0.502)


def test_only_a_crash_shows_on_the_health_check(fingerprints):
    down = {kind: p.health_check_down for kind, p in fingerprints.items() if kind}
    assert down == {"crash": 20.0, "errors": 0.0, "latency": 0.0, "partition": 0.0, "gray failure": 0.0}
    gray = fingerprints["gray failure"]
    assert gray.availability < 1.0 and gray.p50 > 4 * fingerprints[None].p50


def test_fault_settings_and_bad_input():
    assert ft.fault_settings("gray failure", 0.5)["slowdown"] == 6.0
    assert ft.fault_settings("latency", 1.0)["extra"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="kind"):
        ft.fault_settings("meteor", 0.5)
    with pytest.raises(ValueError, match="intensity"):
        ft.fault_settings("errors", 1.5)
    world = World(1)
    api, db = ft.small_system(world)
    assert ft.inject("latency", api, db, (1, 2), intensity=0.0) is None
    assert ft.inject("gray failure", api, db, (1, 2), intensity=0.0) is None
    with pytest.raises(ValueError, match="window"):
        ft.fingerprint(ft.fault_run(None, seed=1, duration=5, window=(1, 2)), (100.0, 200.0))


def test_fingerprint_table_and_draw_helpers(fingerprints):
    table = ft.fingerprint_table(fingerprints.values())
    assert len(table.rows) == 6 and "<table>" in table._repr_html_() and "health check" in str(table)
    run = ft.fault_run("errors", seed=2, duration=12, window=(4, 8))
    ax = Figure().subplots()
    plots.request_dots(run, ax=ax, title="x")
    assert ax.get_ylabel() == "latency (ms)" and ax.get_xlabel() == "request start (s)"
    fig = ft.draw_fingerprints({"no fault": run, "errors": run})
    assert len(fig.axes) == 4
    import matplotlib.pyplot as plt
    plt.close(fig)


# --- tests done in simulation ------------------------------------------------------------------------
def test_unit_tests_of_the_fallback_against_fakes():
    world = World(1)
    Service(world, "db", error_rate=1.0)
    api = Service(world, "api", dependencies=["db"], handler=ft.price_handler)
    assert ft.call_once(world, api) == ft.Answer("degraded", "price from cache", "api", 0.0)
    world = World(1)
    Outage(Service(world, "db"), [(0.0, 5.0)])
    api = Service(world, "api", dependencies=["db"], handler=ft.forward)
    answer = ft.call_once(world, api, at=1.0)
    assert answer.outcome == "failed" and answer.reason == "down"


def test_end_to_end_latency_is_the_sum_of_the_chain():
    world = World(1)
    answer = ft.call_once(world, ft.shop(world, latencies=(0.001, 0.002, 0.005)))
    assert answer.outcome == "ok" and answer.answered_by == "db" and math.isclose(answer.latency, 0.008)
    world = World(1)
    with pytest.raises(ValueError, match="until"):
        ft.call_once(world, ft.shop(world, latencies=(1.0, 1.0, 1.0)), until=0.5)


def test_mmc_tail_matches_theory():
    for c, lam, mu in ((8, 50.0, 50.0), (4, 150.0, 50.0), (2, 50.0, 50.0), (1, 30.0, 50.0)):
        # the mean is the integral of the tail
        ts = np.linspace(0, 3, 30001)
        tail = np.array([theory.mmc_tail(t, c, lam, mu) for t in ts])
        assert np.sum((tail[1:] + tail[:-1]) / 2 * np.diff(ts)) == pytest.approx(theory.mmc_response_time(c, lam, mu),
                                                                               rel=1e-3)
        q = theory.mmc_quantile(0.99, c, lam, mu)
        assert theory.mmc_tail(q, c, lam, mu) == pytest.approx(0.01, rel=1e-6)
    assert theory.mmc_tail(0.0, 8, 50.0, 50.0) == pytest.approx(1.0)
    assert theory.mmc_quantile(0.99, 1, 1e-9, 50.0) == pytest.approx(math.log(100) / 50, rel=1e-3)   # empty: Exp


def test_load_test_knee_sits_between_theory_and_the_ramp_bound():
    lt = ft.load_test(7)
    assert lt.capacity == 400 and len(lt.offered) == len(lt.p99) == 40
    assert ft.load_test_knee_theory() < lt.knee <= ft.ramp_overshoot_bound()
    assert lt.p99[:20].max() < lt.threshold            # below 250/s nothing comes close
    ax = Figure().subplots()
    ft.draw_load_test(ax, lt)
    assert "offered" in ax.get_xlabel() and "p99" in ax.get_ylabel()


def test_spike_backlog_drains_as_the_fluid_model_says():
    drains = [ft.spike_test(s).drain for s in range(10, 16)]
    assert abs(np.mean(drains) - 2.5) < 4 * ft.spike_drain_sd() / math.sqrt(len(drains))
    st = ft.spike_test(10)
    assert st.waiting.max() > 300 and st.waiting[st.t < 1.5].max() < 20
    assert ft.spike_test(10, peak=300.0).predicted == 0.0        # under capacity: no backlog to speak of


def test_watch_samples_busy_slots_within_capacity():
    world = World(3)
    api, db = ft.small_system(world)
    seen = ServiceProbe(world, db, 0.1, 5.0)
    from resilience_sim import OpenLoop
    OpenLoop(world, api, 300.0, duration=5.0)
    world.run(until=5.0)
    assert len(seen.times) == 50 and max(seen.busy) <= ft.DB_SLOTS and min(seen.waiting) >= 0
    with pytest.raises(ValueError, match="every"):
        ServiceProbe(world, db, 0.0, 1.0)


def test_resilience_test_fails_without_a_fallback_and_passes_with_one():
    plain = ft.resilience_test(ft.forward, seed=4)
    fallback = ft.resilience_test(ft.price_handler, seed=4)
    assert not plain.ok and abs(plain.availability - 5 / 6) < 4 * math.sqrt(5 / 36 / 3000)
    assert fallback.ok and "PASS" in str(fallback) and "FAIL" in str(plain)
    with pytest.raises(ValueError, match="window"):
        ft.slo_check(ft.fault_run(None, seed=1, duration=5, window=(1, 2)), window=(50, 60))


def test_toxic_latency_is_uniform_within_latency_plus_or_minus_jitter():
    run = ft.toxic_latency_run(5, latency=0.2, jitter=0.1, window=(5.0, 15.0), duration=20.0)
    inside = (run.start >= 5.0) & (run.start < 14.9)
    added = run.latency[inside] - 0.007
    assert added.min() >= 0.1 - 1e-9 and added.max() <= 0.3 + 1e-9
    assert abs(added.mean() - 0.2) < 4 * 0.2 / math.sqrt(12) / math.sqrt(inside.sum())
    outside = run.start < 5.0
    assert np.allclose(run.latency[outside], 0.007)


def test_chaos_experiment_refutes_then_confirms_the_hypothesis():
    plain = ft.chaos_experiment(9)
    assert plain.phases["before"].ok and plain.phases["after"].ok and not plain.phases["during"].ok
    assert not plain.hypothesis_holds and plain.health_check == 1.0
    fixed = ft.chaos_experiment(9, protected=True)
    assert fixed.hypothesis_holds and fixed.phases["during"].p99 <= 0.152 + 1e-9
    assert fixed.results.client("api->db").requests == len(fixed.results)
    ax = Figure().subplots()
    ft.draw_chaos(ax, plain, fixed)
    assert len(ax.get_lines()) == 3 and "p99" in ax.get_ylabel()


# --- tests that fail and catch a bug ----------------------------------------------------------------
def _falls_back_on_errors(handler=ft.price_handler):
    world = World(1)
    Service(world, "db", error_rate=1.0)
    api = Service(world, "api", dependencies=["db"], handler=handler)
    assert ft.call_once(world, api).reason == "price from cache", "no fallback on an error"


def _falls_back_when_down(handler=ft.price_handler):
    world = World(1)
    Outage(Service(world, "db"), [(0.0, 10.0)])
    api = Service(world, "api", dependencies=["db"], handler=handler)
    assert ft.call_once(world, api, at=1.0).reason == "price from cache"


def test_run_tests_says_which_test_catches_the_handler_that_falls_back_only_when_down():
    tests = (_falls_back_on_errors, _falls_back_when_down)
    assert ft.run_tests(tests).data == {"_falls_back_on_errors": True, "_falls_back_when_down": True}
    table = ft.run_tests(tests, ft.price_handler_down_only)
    assert table.data == {"_falls_back_on_errors": False, "_falls_back_when_down": True}
    assert table.rows[0][1:] == ["FAILED", "no fallback on an error"]


def test_a_hang_fails_the_resilience_test_until_a_timeout_turns_it_into_a_fallback():
    hang = ft.resilience_test(ft.price_handler, fault="hang", seed=3)
    fixed = ft.resilience_test(ft.price_handler, fault="hang", timeout=0.15, seed=3)
    assert not hang.ok and hang.availability == 1.0 and hang.p99 > ft.HANG
    assert fixed.ok and fixed.p99 <= 0.15 + ft.API_WORK + 1e-9
    with pytest.raises(ValueError, match="fault must be one of"):
        ft.resilience_test(ft.price_handler, fault="flood", seed=3)


def test_all_failed_needs_every_request_failed_for_the_reason_after_the_given_time():
    Fingerprint, all_failed = ft.Fingerprint, ft.all_failed
    fp = Fingerprint("timeout", 3, 0.0, math.nan, math.nan, 2.0, 2.0, {"timeout": 3}, 0.0)
    assert all_failed(fp, "timeout", 2.0)
    assert not all_failed(fp, "timeout", 1.0) and not all_failed(fp, "error", 2.0)
    assert not all_failed(Fingerprint("timeout", 4, 0.0, math.nan, math.nan, 2.0, 2.0, {"timeout": 3}, 0.0),
                          "timeout", 2.0)


def test_mean_near_counts_standard_errors_of_the_samples():
    mean_near = ft.mean_near
    samples = [1.0, 3.0, 1.0, 3.0]                     # mean 2, n 4: a standard error of sd / 2
    assert mean_near(samples, 2.9, sd=1.0, sds=2.0) and not mean_near(samples, 3.1, sd=1.0, sds=2.0)
    with pytest.raises(ValueError, match="samples"):
        mean_near([], 0.0, sd=1.0)


def test_p99_near_scales_with_the_quantile_spread():
    p99_near = ft.p99_near
    spread = theory.quantile_sd(0.99, 1000, 0.01 / 0.02)
    assert p99_near(0.1 + 3.9 * spread, 0.1, 1000, 0.02) and not p99_near(0.1 + 4.1 * spread, 0.1, 1000, 0.02)
