"""Notebook 02 (availability): its scenarios agree with theory, are seeded, and its dashboards react."""
import math

import numpy as np
import pytest

from resilience_sim import theory
from resilience_sim.lessons import all_dashboards
from resilience_sim.lessons import availability as av
from resilience_sim.lessons.availability import HOUR, MINUTE, MONTH, WEEK


# --- dashboards ----------------------------------------------------------------------------------------
def test_dashboards_are_registered():
    keys = all_dashboards()
    assert "02_availability/detect_recover" in keys
    assert "02_availability/replicas" in keys


def test_detect_recover_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["02_availability/detect_recover"]()
    slow, fast = dash.results.values()
    assert fast.detect == av.FAST_DETECT and slow.detect == av.CHECKOUT_DETECT
    assert fast.availability > slow.availability
    assert "nines" in dash.text.value and "down a month" in dash.text.value
    picture, text = dash.picture.value, dash.text.value

    dash.set(mttf_h=48)
    assert dash.picture.value != picture and dash.text.value != text
    assert all(r.mttf == 48 * HOUR for r in dash.results.values())
    assert all(r.availability < fast.availability for r in dash.results.values())

    dash.set(recover_min=90)
    assert all(r.recover == 90 * MINUTE for r in dash.results.values())

    dash.set(detect_min=0)   # nothing left for a faster detector to win: both panels are the same run
    slow0, fast0 = dash.results.values()
    assert slow0.detect == fast0.detect == 0.0
    assert slow0.availability == fast0.availability
    assert "Could not run" not in dash.text.value


def test_replicas_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["02_availability/replicas"]()
    indep, crew = dash.results.values()
    assert indep.crews is None and crew.crews == 1 and indep.n == crew.n == 2
    assert crew.availability < indep.availability
    assert "naive independent" in dash.text.value
    picture = dash.picture.value

    dash.set(n=3)
    assert dash.picture.value != picture
    assert all(r.n == 3 and len(r.names) == 3 for r in dash.results.values())

    dash.set(mttr_h=40)
    assert all(r.mttr == 40 * HOUR for r in dash.results.values())
    dash.set(mttf_h=200)
    assert all(r.mttf == 200 * HOUR for r in dash.results.values())

    dash.set(n=1)            # one replica: a crew of one changes nothing, draw for draw
    indep1, crew1 = dash.results.values()
    assert indep1.availability == crew1.availability
    assert "naive" not in dash.text.value
    assert "Could not run" not in dash.text.value


# --- scenarios ------------------------------------------------------------------------------------------
def test_failure_repair_run_is_seeded():
    specs = {"a": dict(mttf=100.0, mttr=5.0), "b": dict(mttf=50.0, mttr=5.0)}
    one = av.failure_repair_run(specs, horizon=5000, seed=1)
    two = av.failure_repair_run(specs, horizon=5000, seed=1)
    other = av.failure_repair_run(specs, horizon=5000, seed=2)
    assert one.services["a"].timeline.changes == two.services["a"].timeline.changes
    assert one.services["a"].timeline.changes != other.services["a"].timeline.changes
    with pytest.raises(ValueError, match="specs"):
        av.failure_repair_run({}, horizon=10, seed=1)


def test_single_service_matches_formula_within_tolerance():
    mttf, mttr, horizon = av.CHECKOUT_MTTF, av.CHECKOUT_MTTR, 3000 * WEEK
    run = av.failure_repair_run({"checkout": dict(mttf=mttf, mttr=mttr)}, horizon=horizon, seed=11)
    assert abs(run.time_availability("checkout") - theory.availability(mttf, mttr)) < av.tolerance(mttf, mttr, horizon)
    stats = av.outage_stats(run, "checkout")
    assert stats.outages > 2500 and abs(stats.mean_minutes - 60) < 4 * 60 / math.sqrt(stats.outages)
    assert math.isclose(stats.downtime_per_month, (1 - stats.availability) * MONTH)


def test_tolerance_shrinks_with_the_run_length():
    short = av.tolerance(100.0, 1.0, 1e4)
    long = av.tolerance(100.0, 1.0, 1e6)
    assert math.isclose(short / long, 10.0)


def test_detect_recover_run_agrees_with_theory_and_splits_the_downtime():
    res = av.detect_recover_run(cycles=3000, seed=5)
    assert abs(res.availability - res.formula) < av.tolerance(res.mttf, res.detect + res.recover, res.horizon)
    assert math.isclose(res.formula, theory.availability(av.CHECKOUT_MTTF, av.CHECKOUT_MTTR))
    # the monthly bars add up to the downtime of the first simulated year
    again = av.detect_recover_run(cycles=3000, seed=5)
    assert np.array_equal(res.monthly, again.monthly)
    assert res.monthly[:, 0].sum() > res.monthly[:, 1].sum()   # 40 min detecting > 20 min recovering, over a year
    no_detect = av.detect_recover_run(detect=0.0, cycles=500, seed=5)
    assert no_detect.monthly[:, 0].sum() == 0.0


def test_monthly_bars_match_the_timeline():
    # rebuild the same world to read its timeline, and compare with the bars
    res = av.detect_recover_run(cycles=200, seed=9)
    from resilience_sim import FailureRepair, Service, World
    from resilience_sim.core.distributions import Exponential
    world = World(seed=9)
    FailureRepair(Service(world, "checkout"), mttf=res.mttf, detect=Exponential(res.detect),
                  recover=Exponential(res.recover))
    results = world.run(until=res.horizon)
    year_down = (1 - results.services["checkout"].timeline.availability(12 * MONTH)) * 12 * MONTH
    assert math.isclose(res.monthly.sum(), year_down, rel_tol=1e-9)


def test_replicas_match_the_exact_formulas():
    for crews in (None, 1):
        res = av.replicas_run(2, crews=crews, cycles=6000, seed=13)
        a, se = av.batch_means(res.results, *res.names, need="any")
        assert a == pytest.approx(res.availability)
        assert abs(a - res.exact) < 4 * se
    assert abs(a - res.naive) > 4 * se          # with one crew the naive formula is rejected


def test_replicas_waits_only_with_a_shared_crew():
    indep = av.replicas_run(2, crews=None, cycles=300, seed=3, window_cycles=300)
    crew = av.replicas_run(2, crews=1, cycles=300, seed=3, window_cycles=300)
    assert all(r == s for rows in indep.waits.values() for s, r, _ in rows)
    waited = [r - s for rows in crew.waits.values() for s, r, _ in rows]
    assert max(waited) > 0
    assert all(s <= r <= e for rows in crew.waits.values() for s, r, e in rows)


def test_crew_comparison_table():
    table = av.crew_comparison((1, 2), cycles=1500, seed=4)
    assert [row["n"] for row in table.data] == [1, 2]
    assert table.data[0]["ratio"] == pytest.approx(1.0)
    assert table.data[1]["ratio"] == pytest.approx(2 * 1.1 ** 2 / 1.22)
    assert "<table>" in table._repr_html_() and "replicas" in str(table)


def test_incident_spends_the_budget_as_expected():
    res = av.incident_run(seed=21)
    expected = 2.0 * 25 * MINUTE
    failed = res.outcome_counts()["failed"]
    assert abs(failed - expected) < 4 * math.sqrt(expected) and failed == len(res) - res.outcome_counts()["ok"]
    assert failed < theory.error_budget(0.999, round(2.0 * MONTH)) == 5259
    assert av.incident_run(seed=21).outcome_counts() == res.outcome_counts()


def test_batch_error_of_a_steady_service_is_zero():
    run = av.failure_repair_run({"a": dict(mttf=1e9, mttr=1.0)}, horizon=1000, seed=1)   # never fails
    assert av.batch_means(run, "a") == (1.0, 0.0)


def test_tables_and_formatting():
    table = av.nines_table()
    assert [row[0] for row in table.rows] == ["90%", "99%", "99.9%", "99.99%", "99.999%"]
    assert table.rows[2][3] == "43.8 min" and table.rows[1][3] == "7.31 h"
    assert av.format_duration(3 * 86400) == "3 days"
    assert av.format_duration(90) == "1.5 min"
    assert av.format_duration(6.05) == "6.05 s"
    assert av.percent(0.9999) == "99.99%"


def test_recorded_distribution_keeps_its_draws():
    import random
    dist = av.Recorded(av.Exponential(2.0))
    rng = random.Random(1)
    values = [dist.sample(rng) for _ in range(3)]
    assert dist.draws == values and dist.mean == 2.0


def test_drawing_helpers_label_their_axes():
    from matplotlib.figure import Figure
    ax = Figure().subplots()
    run = av.failure_repair_run({"checkout": dict(mttf=av.CHECKOUT_MTTF, mttr=av.CHECKOUT_MTTR)},
                                horizon=10 * WEEK, seed=1)
    av.draw_timelines(ax, run, ["checkout"], until=4 * WEEK)
    assert ax.get_xlabel() == "time (days)" and ax.get_xlim() == (0, 28)
    ax = Figure().subplots()
    av.draw_budget(ax, av.incident_run(seed=1), 5259)
    assert "budget" in ax.get_ylabel() and "minutes" in ax.get_xlabel()


# --- how long a run must be: the convergence sweep ------------------------------------------------------
def test_availability_sample_is_a_seeded_summary_of_one_run():
    one = av.availability_sample(50, seed=3)
    assert one == av.availability_sample(50, seed=3) and set(one) == {"availability", "down_at_end"}
    run = av.failure_repair_run({"service": dict(mttf=av.CHECKOUT_MTTF, mttr=av.CHECKOUT_MTTR)},
                                horizon=50 * (av.CHECKOUT_MTTF + av.CHECKOUT_MTTR), seed=3)
    assert one["availability"] == run.time_availability("service")
    end = run.until
    assert one["down_at_end"] == (not run.services["service"].timeline.up_at([end])[0])
    with pytest.raises(ValueError, match="cycles"):
        av.availability_sample(0, seed=1)


def test_down_at_the_end_happens_one_time_in_two_when_mttf_equals_mttr():
    downs = [av.availability_sample(5, mttf=1.0, mttr=1.0, seed=s)["down_at_end"] for s in range(400)]
    assert abs(np.mean(downs) - 0.5) < 4 * math.sqrt(0.25 / 400)


def test_the_convergence_sweep_says_what_the_notebook_says():
    from resilience_sim.sweeps import sweep
    table = sweep(av.availability_sample, {"cycles": list(av.CONVERGENCE_CYCLES)}, seeds=av.CONVERGENCE_SEEDS,
                  base_seed=2024, progress=False)
    converge = table.summary("availability")
    a = theory.availability(av.CHECKOUT_MTTF, av.CHECKOUT_MTTR)
    assert converge.method == "t" and converge.covers(a).all()
    weeks10, weeks1000 = (table.values("availability", cycles=c) for c in (10, 1000))
    assert (round(weeks10.min(), 3), round(weeks10.max(), 3)) == (0.990, 0.998)
    assert abs(weeks1000 - a).max() < 0.001
    assert 7 < converge.at(cycles=10).half_width / converge.at(cycles=1000).half_width < 13
    for p in converge:
        assert 0.5 < p.half_width / av.expected_half_width(p.point["cycles"], p.n) < 1.5


def test_expected_half_width_is_t_times_the_sd_over_the_root_of_the_seeds():
    horizon = 100 * (av.CHECKOUT_MTTF + av.CHECKOUT_MTTR)
    sd = theory.availability_sd(av.CHECKOUT_MTTF, av.CHECKOUT_MTTR, horizon)
    assert av.expected_half_width(100, 20) == pytest.approx(2.0930 * sd / math.sqrt(20), rel=1e-4)
    assert av.expected_half_width(400, 20) == pytest.approx(av.expected_half_width(100, 20) / 2)


def test_the_nines_table_counts_either_calendar():
    average, sre = av.nines_table(), av.nines_table(calendar="sre")
    assert average.rows[2][3] == "43.8 min" and sre.rows[2][3] == "43.2 min"       # 99.9% a month
    assert average.rows[2][2] == "8.77 h" and sre.rows[2][2] == "8.76 h"           # and a year


def test_sd_spread_is_one_over_root_two_n_minus_one():
    assert av.sd_spread(3) == 0.5 and av.sd_spread(21) == pytest.approx(1 / math.sqrt(40))
    with pytest.raises(ValueError, match="n"):
        av.sd_spread(1)


def test_within_poisson_error_holds_inside_sds_root_expected_and_not_outside():
    assert av.within_poisson_error(107.9, 100.0, sds=0.8) and not av.within_poisson_error(108.1, 100.0, sds=0.8)
    assert av.within_poisson_error(60.5, 100.0) and not av.within_poisson_error(60.0, 100.0)   # 4 sd = 40
    with pytest.raises(ValueError, match="expected"):
        av.within_poisson_error(1, 0)


def test_downtimes_differing_names_only_the_stated_downtimes_theory_does_not_give():
    month = theory.downtime(0.999, "month", calendar="sre")
    assert av.downtimes_differing({(0.999, "month", "sre"): month}) == {}
    wrong = av.downtimes_differing({(0.999, "month", "sre"): month + 1, (0.99, "year", "sre"):
                                    theory.downtime(0.99, "year", calendar="sre")})
    assert list(wrong) == [(0.999, "month", "sre")]
