"""Notebook 15 (detection and alarms): its scenarios are seeded, its key claims hold, the dashboard's
fast replay agrees with the rule objects, the dashboard reacts, and bad input is refused with a message
naming the parameter."""
import itertools
import math

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from resilience_sim.lessons import alarms as al
from resilience_sim.lessons import all_dashboards
from resilience_sim.metrics.alerting import alert_quality, firing_spans
from resilience_sim.policies import BurnRateRule, MessageQueue, Saga, SagaStep, ThresholdRule
from resilience_sim.policies.alerts import WORKBOOK_PAIRS

matplotlib.use("Agg")
SEED = 15
H, MIN = 3600.0, 60.0


@pytest.fixture(scope="module")
def night():
    """Section 1: the 02:00 failure, logged and paged."""
    return al.write_run(SEED, alarm="log"), al.write_run(SEED, alarm="page")


@pytest.fixture(scope="module")
def days():
    """Section 2: four noisy days with three incidents, and the rules' table."""
    results = al.noisy_run(SEED)
    return results, al.compare_rules(results)


# --- section 1 -------------------------------------------------------------------------------------
def test_a_logged_error_waits_for_the_morning_check_and_a_page_comes_in_a_minute(night):
    logged, paged = night
    assert logged.incident == (al.NIGHT_INCIDENT, al.DAY + al.REVIEW_AT, al.DAY + al.REVIEW_AT + 900)
    assert (logged.detection, logged.downtime) == (7 * H, 7 * H + 900)
    assert (paged.detection, paged.downtime) == (60.0, 960.0)
    assert (logged.failed_writes, paged.failed_writes) == (5203, 193)
    assert len(logged.log) == logged.failed_writes and all("ERROR" in line for _, line in logged.log)
    assert logged.operator.pages == paged.operator.pages == 1 and logged.operator.false_alarms == 0


def test_write_run_is_seeded():
    a = al.write_run(3, alarm="log", at=2 * H, duration=4 * H)
    b = al.write_run(3, alarm="log", at=2 * H, duration=4 * H)
    c = al.write_run(4, alarm="log", at=2 * H, duration=4 * H)
    assert np.array_equal(a.results.start, b.results.start) and a.log == b.log
    assert not np.array_equal(a.results.start, c.results.start)
    assert math.isnan(a.detection) and a.downtime == a.results.until - 2 * H    # no 09:00 check in the run


def test_morning_log_check_fires_once_a_day_only_on_recent_errors():
    check = al.MorningLogCheck(at=9 * H, lookback=H)
    check.record_counts(3 * H, 10, 2)                  # errors at 03:00: too old for a 1 h look back
    assert not check.firing(8 * H) and not check.firing(9 * H)
    check.record_counts(al.DAY + 8.5 * H, 10, 1)
    assert check.firing(al.DAY + 9 * H) and not check.firing(al.DAY + 9 * H + 10)   # once, at the check
    assert (check.reviews, check.fired) == (2, 1)


# --- section 2 -------------------------------------------------------------------------------------
def test_the_noise_stays_under_the_budget(days):
    results, _ = days
    assert len(results) == 69347 and al.quiet_errors(results) == (10, 65457)


def test_each_rule_shows_its_weakness(days):
    _, table = days
    q = {name: score.quality for name, score in table.data.items()}
    sensitive, slow, held, burn = (q[n] for n in table.data)
    assert (sensitive.alerts, table.data["10 min > 0.1%"].false_alarms, sensitive.recall) == (17, 10, 1.0)
    assert slow.alerts == 1 and slow.detection_times == (5940.0, 0.0, 0.0) and slow.reset_times[0] > 2 * al.DAY
    assert held.recall == pytest.approx(1 / 3) and table.data["10 min > 0.1%, for: 1h"].false_alarms == 1
    assert table.data["10 min > 0.1%, for: 1h"].spans[-1][0] == al.INCIDENTS[2][1] + 60    # after it ended
    assert table.data["10 min > 0.1%, for: 1h"].detection == (3960.0, None, None)
    assert (burn.precision, burn.recall, burn.detection_times) == (1.0, 1.0, (2760.0, 60.0, 180.0))
    assert burn.reset_times == (1260.0, 1860.0, 1800.0)
    assert "missed" in str(table) and "precision" in table._repr_html_()


def test_a_missed_incident_is_named_in_its_place(days):
    results, _ = days
    table = al.compare_rules(results, rules={"1 h > 5%": ThresholdRule(0.05, 3600)})
    score = table.data["1 h > 5%"]
    assert score.detection[0] is None and score.reset[0] is None and None not in score.detection[1:]
    assert "missed, 4 min, 17 min" in str(table)       # the 2% errors never reach 5%


def test_the_workbook_rule_scores_the_same_at_its_default_resolution(days):
    results, table = days
    spans = firing_spans(results, BurnRateRule(0.999, WORKBOOK_PAIRS[:2]), every=60)
    quality = alert_quality(spans, [(s, e) for s, e, _, _ in al.INCIDENTS])
    assert quality == table.data["burn rate (Workbook)"].quality


# --- section 3 -------------------------------------------------------------------------------------
def test_the_workbook_numbers():
    n = al.workbook_table().data
    assert n["page, 14.4x over 1 h: a total outage fires after"] == pytest.approx(51.84)
    assert n["page, 14.4x over 1 h: budget spent when it fires"] == pytest.approx(0.02)
    assert n["page, 6x over 6 h: budget spent when it fires"] == pytest.approx(0.05)
    assert n["ticket, 1x over 3 days: budget spent when it fires"] == pytest.approx(0.10)
    assert n["page, 14.4x over 1 h: 15% errors fire after"] == pytest.approx(345.6)
    assert n["bare 10 min window: a total outage fires after"] == pytest.approx(0.6)
    assert n["bare 10 min window: alerts a day, at most"] == 144
    assert n["36 h window: a total outage fires after"] == pytest.approx(129.6)
    assert n["36x over 1 h: still firing after the errors stop"] == pytest.approx(3600 - 129.6)
    assert n["for: 1h: budget a total outage spends first"] == pytest.approx(3600 / 2592)      # ~140%
    assert math.isinf(n["36x over 1 h: a 35x burn fires after"])
    assert n["35x burn: the whole budget is gone in"] / H == pytest.approx(20.571, abs=1e-3)
    assert n["10 requests an hour: the burn rate of one failure"] == pytest.approx(100)       # not 1,000
    assert n["10 requests an hour: budget one failure spends"] == pytest.approx(1 / 7.2)


def test_simulated_detection_agrees_with_the_formula_within_chance():
    pair = lambda: BurnRateRule(0.999, WORKBOOK_PAIRS[:1], resolution=60)    # noqa: E731
    outage, errors15 = al.burst_check(SEED, pair(), 1.0), al.burst_check(SEED, pair(), 0.15)
    assert abs(outage.detection - 51.84) < 3 * al.detection_sd(1.0, 2.0, 14.4, H) and outage.detection == 55
    assert abs(errors15.detection - 345.6) < 3 * al.detection_sd(0.15, 2.0, 14.4, H) and errors15.detection == 400
    assert outage.reset == errors15.reset == 300.0
    assert outage.budget_spent() == pytest.approx(0.02, abs=0.002)


def test_for_one_hour_spends_140_percent_and_36x_resets_after_58_minutes():
    held = al.burst_check(SEED, ThresholdRule(0.001, 600, for_=3600), 1.0, during=5400, after=600)
    fast = al.burst_check(SEED, ThresholdRule(0.036, 3600, resolution=60), 1.0, during=600, after=5400)
    assert held.detection == 3603 and held.budget_spent() == pytest.approx(1.389, abs=0.02)
    assert abs(fast.detection - 129.6) < 3 * al.detection_sd(1.0, 2.0, 36, H) and round(fast.reset / 60) == 58


def test_detection_sd_is_the_gamma_spread_of_the_kth_error():
    # k = 14.4 * 0.001 * 2 * 3600 = 103.68 errors at 2 x share a second
    assert al.detection_sd(1.0, 2.0, 14.4, H) == pytest.approx(math.sqrt(103.68) / 2)
    assert al.detection_sd(0.15, 2.0, 14.4, H) == pytest.approx(math.sqrt(103.68) / 0.3)


# --- section 4 -------------------------------------------------------------------------------------
def test_the_formula_predicts_availability_from_mttd_and_mttr():
    fast = al.repeated_run(SEED)
    assert len(fast.done) == 40 and round(fast.mttd) == 91 and fast.mttr == pytest.approx(fast.mttd + 900)
    assert abs(fast.predicted - fast.measured) < 0.002 < fast.tolerance
    assert fast.operator.false_alarms == 0 and fast.measured_mttf == pytest.approx(11.57 * H, rel=0.01)


def test_a_log_instead_of_a_page_makes_detection_the_incident():
    run = al.repeated_run(SEED, alarm="log", days=10)
    assert run.mttd > 5 * H and run.mttr - run.mttd == pytest.approx(900)
    assert abs(run.predicted - run.measured) < run.tolerance and run.measured < 0.8
    table = al.operators_table({"the log": run})
    assert table.data["the log"].label == "the log" and "the log" in str(table)


def test_draw_mttr_and_draw_alerts_draw_their_bars(days):
    results, table = days
    ax = Figure().subplots()
    al.draw_alerts(ax, [(n, s.spans) for n, s in table.data.items()], [(s, e) for s, e, _, _ in al.INCIDENTS],
                   results.until)
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["incidents", "10 min > 0.1%"]
    run = al.repeated_run(SEED, days=2)
    ax = Figure().subplots()
    al.draw_mttr(ax, [run])
    assert len(ax.patches) == 3


# --- section 5 -------------------------------------------------------------------------------------
def test_dead_letters_and_drops_raise_alarms():
    q = MessageQueue(visibility_timeout=30, max_receives=3)
    q.send("m1", "body", 0.0)
    for now in (0.0, 30.0, 60.0, 90.0):
        q.receive(now)
    alarms = al.manual_triggers(90.0, queue=q)
    assert [a.trigger for a in alarms] == ["DLQ depth > 0"] and "m1" in str(alarms[0])
    trap = MessageQueue(visibility_timeout=30, max_receives=1, dead_letter=False)
    trap.send("m2", "body", 0.0)
    trap.receive(0.0), trap.receive(30.0)
    assert [a.trigger for a in al.manual_triggers(30.0, queue=trap)] == ["messages dropped"]
    assert al.manual_triggers(0.0, queue=MessageQueue()) == []


def test_a_failing_or_stuck_compensation_raises_alarms():
    saga = Saga([SagaStep("reserve stock"), SagaStep("charge card", "pivot")])
    state = saga.record(saga.start(), True)
    for _ in range(3):
        state = saga.record(state, False, "error")
    assert al.manual_triggers(100.0, sagas={"s": (state, 0.0)}) == []        # compensating, not yet long
    for _ in range(3):
        state = saga.record(state, False, "down")
    triggers = [a.trigger for a in al.manual_triggers(1200.0, sagas={"s": (state, 0.0)})]
    assert triggers == ["compensation failed", "saga stuck compensating"]
    done = saga.record(state, True)
    assert done["status"] == "compensated" and al.manual_triggers(1e6, sagas={"s": (done, 0.0)}) == []


# --- section 6: the replay and the dashboard ----------------------------------------------------------
def test_the_prefix_sum_replay_equals_the_rule_objects_bin_by_bin():
    bins = al.dash_bins()
    for window, threshold, response in itertools.product((1, 10, 60, 360), (0.1, 1.0, 5.0, 20.0), (1, 5, 60)):
        make = lambda: ThresholdRule(threshold / 100, window * MIN, resolution=al.BIN)    # noqa: E731
        slow = al.replay(bins, make(), response=response * MIN, method="rule")
        fast = al.replay(bins, make(), response=response * MIN, method="sums")
        assert (slow.spans, slow.incidents) == (fast.spans, fast.incidents), (window, threshold, response)
    for response in (1, 5, 30, 60):
        slow = al.replay(bins, al.page_rule(resolution=al.BIN), response=response * MIN, method="rule")
        fast = al.replay(bins, al.page_rule(resolution=al.BIN), response=response * MIN, method="sums")
        assert (slow.spans, slow.incidents) == (fast.spans, fast.incidents), response


def test_the_replay_matches_the_operator_on_the_same_day():
    """The bin replay is the Operator's logic on counts: on a day of total outages (what
    ``op.incident`` makes), the Operator paged by the same rule, scraping every bin, finds and
    repairs each incident within a bin of the replay."""
    from resilience_sim.sim.operator import Operator
    from resilience_sim.sim.workload import OpenLoop
    from resilience_sim.sim.world import World
    outages = ((3 * H, 1.0, "a"), (10 * H, 1.0, "b"), (18 * H, 1.0, "c"))
    bins = al.dash_bins(al.DASH_SEED, incidents=outages)
    world = World(al.DASH_SEED)
    front, db = al._shop(world, baseline=al.BASELINE)
    op = Operator(world, al.page_rule(resolution=al.BIN), response=al.RESPONSE, repair=al.REPAIR, every=al.BIN)
    for start in bins.starts:
        op.incident(db, start)
    OpenLoop(world, front, al.RATE, duration=al.DAY, name=al.ROUTE)
    world.run(until=al.DAY)
    replayed = al.replay(bins, al.page_rule(resolution=al.BIN))
    for (start, paged, repaired), (s, detected, fixed, by_page) in zip(op.incidents, replayed.incidents):
        assert start == s and by_page and abs(paged - detected) <= al.BIN and abs(repaired - fixed) <= al.BIN


def test_a_missed_incident_is_reported_by_the_complaint():
    bins = al.dash_bins()
    run = al.replay(bins, ThresholdRule(0.5, 600, resolution=al.BIN))   # half the requests: only the outage
    (_, _, _, p0), (s1, d1, r1, p1), (s2, d2, r2, p2) = run.incidents
    assert p0 and not p1 and not p2 and d1 - s1 == al.COMPLAINT and r2 - s2 == al.COMPLAINT + 900
    assert run.quality.recall == pytest.approx(1 / 3) and run.mttd > al.COMPLAINT / 2


def test_dashboard_is_registered_and_reacts_to_every_slider():
    assert "15_alarms/rules" in all_dashboards()
    dash = all_dashboards()["15_alarms/rules"]()
    (threshold, _), (burn, _) = dash.results.values()
    assert threshold.false_alarms == 6 and threshold.quality.recall == 1.0
    assert burn.false_alarms == 0 and burn.quality.precision == 1.0
    assert "precision 33%" in dash.text.value and "precision 100%" in dash.text.value
    assert "still firing after 22 min (mean)" in dash.text.value
    picture = dash.picture.value

    dash.set(threshold_pct=5.0)                                 # no more noise alarms
    (threshold, _), _ = dash.results.values()
    assert threshold.false_alarms == 0 and dash.picture.value != picture

    dash.set(threshold_pct=20.0)                                # the 2% errors are missed
    (threshold, _), _ = dash.results.values()
    assert not threshold.incidents[2][3] and threshold.quality.recall < 1.0

    dash.set(threshold_pct=0.1, window_min=360)                 # a long window: no noise, long resets
    (threshold, _), _ = dash.results.values()
    assert threshold.false_alarms == 0 and max(threshold.quality.reset_times) > 3 * H

    dash.set(response_min=60)                                   # longer incidents for both rules
    (threshold, _), (burn, _) = dash.results.values()
    assert burn.downtime > 3 * H and "Could not run" not in dash.text.value


def test_dashboard_compute_is_cheap():
    import time
    bins = al.dash_bins()
    start = time.perf_counter()
    for _ in range(10):
        al._dash_compute(10, 0.1, 5, rule="burn")
        al._dash_compute(360, 0.1, 60, rule="threshold")
    assert bins is al.dash_bins() and (time.perf_counter() - start) / 10 < 0.05


# --- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, word", [
    (lambda: al.write_run(SEED, alarm="email"), "alarm"),
    (lambda: al.write_run(SEED, rate=0), "rate"),
    (lambda: al.write_run(SEED, at=-1), "at"),
    (lambda: al.write_run(SEED, duration=100, at=200), "at"),
    (lambda: al.noisy_run(SEED, days=0), "days"),
    (lambda: al.noisy_run(SEED, days=1), "incidents must end"),
    (lambda: al.noisy_run(SEED, incidents=[(10, 5, 0.1, "x")]), "incidents"),
    (lambda: al.noisy_run(SEED, incidents=[(1, 5, 0.0, "x")]), "share"),
    (lambda: al.noisy_run(SEED, incidents=[(1, 5)]), "incidents"),
    (lambda: al.noisy_run(SEED, baseline=2), "baseline"),
    (lambda: al.compare_rules(None), "results"),
    (lambda: al.burst_check(SEED, ThresholdRule(0.1, 60), 0.0), "share"),
    (lambda: al.burst_check(SEED, ThresholdRule(0.1, 60), 0.5, rate=-1), "rate"),
    (lambda: al.repeated_run(SEED, mttf=0), "mttf"),
    (lambda: al.repeated_run(SEED, alarm=3), "alarm"),
    (lambda: al.operators_table(["run"]), "runs"),
    (lambda: al.manual_triggers(-1), "now"),
    (lambda: al.manual_triggers(0, queue="dlq"), "queue"),
    (lambda: al.manual_triggers(0, sagas=[1]), "sagas"),
    (lambda: al.manual_triggers(0, sagas={"s": 1}), "sagas"),
    (lambda: al.manual_triggers(0, max_tries=0), "max_tries"),
    (lambda: al.detection_sd(0, 1, 1, 1), "share"),
    (lambda: al.MorningLogCheck(at=-1), "at"),
    (lambda: al.clock(-5), "seconds"),
    (lambda: al.replay("bins", ThresholdRule(0.1, 60)), "bins"),
    (lambda: al.replay(al.dash_bins(), "rule"), "rule"),
    (lambda: al.replay(al.dash_bins(), ThresholdRule(0.1, 60), response=-1), "response"),
    (lambda: al.replay(al.dash_bins(), ThresholdRule(0.1, 60), method="fast"), "method"),
    (lambda: al.replay(al.dash_bins(), ThresholdRule(0.1, 600, for_=60, resolution=60), method="sums"), "sums"),
])
def test_bad_input_names_the_parameter(call, word):
    with pytest.raises((ValueError, TypeError), match=word):
        call()
