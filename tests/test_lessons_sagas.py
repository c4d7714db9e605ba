"""Notebook 16 (sagas): its scenarios are seeded, its key claims hold, its dashboard reacts, and bad
input is refused with a message naming the parameter."""
import random
from collections import Counter

import matplotlib
import pytest
from matplotlib.figure import Figure

from resilience_sim.lessons import all_dashboards
from resilience_sim.lessons import sagas as sg
from resilience_sim.policies import Saga, SagaStep, ThresholdRule

matplotlib.use("Agg")
SEED = 1616


@pytest.fixture(scope="module")
def story():
    return sg.story_run(SEED, watch=[2.5, 3.5, 12.0, 15.0])


@pytest.fixture(scope="module")
def burst():
    return sg.burst_pair(SEED)


WINDOW = (sg.BURST_START, sg.BURST_START + sg.BURST_LENGTH)


# --- section 1: no saga --------------------------------------------------------------------------
def test_the_naive_checkout_leaves_stock_reserved_and_charges_without_shipping():
    naive = sg.naive_run(SEED)
    assert Counter(naive.outcomes.values()) == {"ordered": 28, "failed at payment": 6, "failed at shipping": 6}
    assert naive.leaks() == {"stock reserved, no order": 12, "charged, nothing shipped": 6}
    assert naive.holders("inventory") == set(range(40)) and len(naive.placed) == 28


def test_the_same_faults_as_a_saga_confirm_every_order_and_leak_nothing():
    run = sg.shop_run(SEED, orders=sg.NAIVE_ORDERS, every=sg.NAIVE_EVERY, outages=sg.NAIVE_OUTAGES)
    assert run.statuses() == {"CONFIRMED": 40} and run.violations() == []
    assert run.totals() == {"inventory": 40.0, "payment": 400.0, "shipping": 40.0}


def test_runs_are_seeded():
    a, b = sg.burst_run(7, supervised=True), sg.burst_run(7, supervised=True)
    c = sg.burst_run(8, supervised=True)
    assert a.spans == b.spans and a.customers == b.customers
    assert a.customers != c.customers


# --- section 2: the saga ------------------------------------------------------------------------------
def test_a_plain_walk_compensates_in_reverse_the_failed_step_first():
    three = Saga([SagaStep("T1"), SagaStep("T2"), SagaStep("T3", retries=0)])
    walk = sg.plain_walk(three, [True, True, False, True, True, True, True])
    assert walk == ["T T1", "T T2", "T T3 x", "C T3", "C T2", "C T1", "end: compensated"]
    assert sg.plain_walk(sg.order_saga(), [True, True])[-1] == "..."          # not ended yet


def test_the_story_cancels_a_declined_order_and_an_inventory_outage_and_waits_out_a_payment_outage(story):
    assert [story.status(i) for i in range(6)] == ["CONFIRMED", "CANCELLED", "CONFIRMED", "CANCELLED",
                                                   "CONFIRMED", "CONFIRMED"]
    assert story.story(1) == "T:inv T:payx T:payx T:payx T:payx C:inv"
    assert story.story(3) == "T:invx T:invx T:invx " + "C:invx " * 5 + "C:inv"
    assert story.story(5) == "T:inv " + "T:payx " * 7 + "T:pay T:ship"
    assert {s.outcome for s in story.saga_spans(1) if s.step == "payment"} == {"error"}     # declines
    assert {s.outcome for s in story.saga_spans(5) if s.outcome != "ok"} == {"down"}        # no answer
    assert story.totals() == {"inventory": 4.0, "payment": 40.0, "shipping": 4.0} and story.violations() == []
    assert story.holders("inventory") == story.ids("CONFIRMED") == {0, 2, 4, 5}


def test_undoing_the_failed_step_releases_an_item_the_orchestrator_did_not_know_about():
    careful = sg.applied_then_failed(SEED)
    forgetful = sg.applied_then_failed(SEED, saga=sg.no_undo_saga())
    assert careful.crash_times == forgetful.crash_times and careful.orch.process.crashes == 1
    assert careful.status(0) == forgetful.status(0) == "CANCELLED"
    assert careful.totals()["inventory"] == 0 and careful.violations() == []
    assert forgetful.totals()["inventory"] == 1 and forgetful.story(0) == "T:inv T:invx T:invx T:invx"
    assert forgetful.violations() == ["inventory: items reserved for 1 orders not confirmed [0], "
                                      "missing for 0 confirmed ones []"]


# --- section 3: crashes ------------------------------------------------------------------------------
def test_a_crash_after_the_charge_re_runs_it_and_an_idempotent_payment_charges_once():
    crash = sg.crash_after(SEED, 0, "payment", orders=3)
    safe = sg.shop_run(SEED, orders=3, crashes=[crash])
    double = sg.shop_run(SEED, orders=3, crashes=[crash], idempotent=False)
    assert safe.story(0) == "T:inv T:pay T:pay(replay) T:ship" and safe.totals()["payment"] == 30.0
    assert double.story(0) == "T:inv T:pay T:pay T:ship" and double.totals()["payment"] == 40.0
    assert double.violations() == ["payment: 40 euros charged for 3 confirmed orders (expected 30)"]
    # the crash lands between the participant's commit and the orchestrator's (2 ms later)
    charge = next(s for s in sg.shop_run(SEED, orders=3).spans if s.saga == 0 and s.step == "payment")
    assert charge.end < crash < charge.end + 0.002


def test_crashes_after_each_kind_of_step_conserve_money_and_stock():
    points = [(2, "inventory"), (6, "payment"), (10, "shipping")]
    crashes = sg.targeted_crashes(SEED, points, orders=20, every=0.5)
    run = sg.shop_run(SEED, orders=20, every=0.5, crashes=crashes)
    assert run.orch.process.crashes == 3 and [i for i in range(20) if "replay" in run.story(i)] == [2, 6, 10]
    assert run.statuses() == {"CONFIRMED": 20} and run.violations() == []
    assert run.totals() == {"inventory": 20.0, "payment": 200.0, "shipping": 20.0}


def test_a_forgetful_participant_still_refuses_at_its_error_rate():
    run = sg.shop_run(SEED, orders=10, idempotent=False, errors={"payment": 0.5})
    assert run.calls("payment", failed=True) > 0 and run.violations() == []


# --- section 4: the semantic lock ---------------------------------------------------------------------
def test_a_reader_sees_pending_not_a_half_done_order(story):
    snaps = story.snapshots
    assert snaps[2.5][1] == ("PENDING", ("inventory",)) and snaps[3.5][1] == ("CANCELLED", ())
    assert snaps[12.0][5] == ("PENDING", ("inventory",)) and snaps[15.0][5] == ("CONFIRMED", sg.STEPS)
    assert 5 not in snaps[2.5]


# --- section 5: the supervisor ---------------------------------------------------------------------------
def test_the_supervisor_turns_cancellations_into_refusals(burst):
    a, b = sg.burst_table(*burst, WINDOW).data
    assert (a["confirmed"], a["cancelled"], a["refused"]) == (80, 40, 0)
    assert (b["confirmed"], b["cancelled"], b["refused"]) == (77, 14, 29)
    assert (a["failed payment calls"], b["failed payment calls"]) == (162, 59)
    assert a["refunded"] == b["refunded"] == 0 and (a["released"], b["released"]) == (40, 14)
    assert (a["wasted calls"], b["wasted calls"]) == (240, 84)
    assert round(a["longest pending"], 1) == 9.5 and round(b["longest pending"], 1) == 3.8
    assert all(run.violations() == [] for run in burst)


def test_sagas_in_flight_finish_and_the_shop_reopens_by_itself(burst):
    _, with_ = burst
    first = with_.refused[0]
    assert round(first, 1) == 24.5 and sorted(with_.in_flight_at(first)) == [19, 20, 21]
    assert {with_.status(i) for i in with_.in_flight_at(first)} == {"CANCELLED"} and with_.unfinished() == []
    back = sg.recovery(with_, WINDOW[1])
    assert back["last refusal"] is None and back["first start"] - WINDOW[1] < 1.5
    assert WINDOW[0] < first and max(with_.refused) < WINDOW[1]


def test_at_80_percent_the_supervisor_refuses_orders_that_would_have_gone_through():
    a, b = sg.burst_table(*sg.burst_pair(SEED, rate=0.8), WINDOW).data
    assert (a["confirmed"], a["cancelled"]) == (101, 19)
    assert (b["confirmed"], b["cancelled"], b["refused"]) == (84, 10, 26)


def test_no_burst_no_refusal_and_the_window_trades_firing_late_against_reopening_late():
    quiet = sg.burst_run(SEED, supervised=True, rate=0.0)
    assert quiet.refused == [] and quiet.statuses()["CANCELLED"] == 0
    runs = {w: sg.burst_run(SEED, supervised=True, window=w) for w in (2.0, 5.0, 10.0, 20.0)}
    first = {w: run.refused[0] for w, run in runs.items()}
    assert first[2.0] < first[5.0] < first[10.0] < first[20.0] and first[20.0] > WINDOW[0] + 10   # fires late
    assert sg.recovery(runs[10.0], WINDOW[1])["first start"] > WINDOW[1] + 5       # ...and may reopen late
    assert sg.recovery(runs[5.0], WINDOW[1])["first start"] < WINDOW[1] + 1.5


def test_payment_as_a_compensatable_step_refunds_customers():
    saga = Saga([SagaStep("inventory"), SagaStep("payment", retries=3), SagaStep("shipping", "pivot", retries=3)])
    run = sg.shop_run(SEED, orders=40, poisson=True, bursts={"shipping": ([(5.0, 20.0)], 1.0)}, saga=saga)
    assert run.refunded() == run.statuses()["CANCELLED"] > 0 and run.violations() == []


# --- section 6: invariants -------------------------------------------------------------------------------
def test_the_saga_keeps_its_promises_under_many_random_schedules():
    checked, broken = sg.search(600, 20_16, stop=False)
    assert checked == 600 and broken == []


def test_the_notebooks_200_schedules_hold():
    checked, broken = sg.search(200, SEED, stop=False)
    assert checked == 200 and broken == []


def test_every_schedule_ends_well_inside_the_run():
    rng = random.Random(3)
    for _ in range(150):
        run = sg.run_schedule(sg.random_schedule(rng))
        assert run.unfinished() == [] and max(run.ended_at().values(), default=0) < sg.SMALL_UNTIL - 10


def test_the_search_and_shrink_catch_a_design_that_gives_up_compensating():
    checked, found = sg.search(500, SEED, saga_factory=sg.give_up_saga)
    assert checked == 27 and len(found) == 1
    small, problems, runs = sg.shrink(found[0][0], saga_factory=sg.give_up_saga)
    assert (small.orders, small.crashes, [o[0] for o in small.outages]) == (2, (), ["inventory"])
    assert dict(small.errors) == {"inventory": 0.0, "payment": 0.9, "shipping": 0.0} and runs == 29
    assert problems[0].startswith("inventory: items reserved for 1 orders not confirmed [1]")
    victim = sg.run_schedule(small, saga=sg.give_up_saga())
    assert victim.story(1) == "T:inv " + "T:payx " * 4 + "C:invx C:invx"
    assert sg.check_schedule(small) == []                       # the course's saga survives it


def test_the_search_catches_the_design_that_does_not_undo_the_failed_step():
    checked, found = sg.search(500, SEED, saga_factory=sg.no_undo_saga)
    small, problems, _ = sg.shrink(found[0][0], saga_factory=sg.no_undo_saga)
    assert checked == 104 and sorted(o[0] for o in small.outages) == ["inventory", "orders_db"]
    victim = sg.run_schedule(small, saga=sg.no_undo_saga())
    assert victim.holders("inventory") - victim.ids("CONFIRMED") == {3}
    assert victim.story(3) == "T:inv T:invx T:invx T:invx"
    assert sg.check_schedule(small) == []


def test_schedules_print_and_merge_overlapping_outages():
    s = sg.Schedule(crashes=(1.0,), outages=(("payment", 1.0, 5.0), ("payment", 3.0, 8.0)),
                    errors=(("payment", 0.5),), seed=3, orders=2)
    assert "payment down 1.00-5.00 s" in str(s) and "crashes at [1.00]" in str(s) and s.size() == 6
    run = sg.run_schedule(s)
    assert run.results.faults[0].spans == ((1.0, 8.0),) and run.violations() == []
    assert str(sg.Schedule()).startswith("8 orders; orchestrator crashes at [none] s; no outage; no errors")
    assert sg.random_schedule(random.Random(1)) == sg.random_schedule(random.Random(1))


# --- pictures ----------------------------------------------------------------------------------------------
def test_draw_functions_draw_spans_lines_and_shading(story, burst):
    ax = Figure().subplots()
    sg.draw_saga(ax, story, 1)
    assert len(ax.collections) == len(story.saga_spans(1)) and len(ax.patches) == 3    # 6 calls; 3 faults shaded
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["step applied", "step failed", "compensation (undo)"]
    ax = Figure().subplots()
    crashed = sg.shop_run(SEED, orders=3, crashes=[sg.crash_after(SEED, 0, "payment", orders=3)])
    sg.draw_saga(ax, crashed, 0)
    assert len(ax.lines) == 1 and "orchestrator crash" in [t.get_text() for t in ax.get_legend().get_texts()]
    ax = Figure().subplots()
    sg.draw_outcomes(ax, burst[1])
    assert len(ax.lines) == 3 and ax.lines[0].get_ydata()[-1] == 77 and ax.get_ylabel() == "orders so far"


# --- the dashboard -----------------------------------------------------------------------------------------
def test_dashboard_is_registered():
    assert "16_sagas/supervisor" in all_dashboards()


def test_supervisor_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["16_sagas/supervisor"]()
    without, with_ = dash.results.values()
    assert without.orch.supervisor is None and isinstance(with_.orch.supervisor, ThresholdRule)
    assert "confirmed 80, cancelled 40, refused 0" in dash.text.value and "refused 29" in dash.text.value
    picture = dash.picture.value

    dash.set(rate_pct=10)                                       # a 10% burst: the supervisor never fires
    without, with_ = dash.results.values()
    assert dash.picture.value != picture and with_.refused == [] and "refused 0" in dash.text.value
    dash.set(rate_pct=100, length_s=80)
    without, with_ = dash.results.values()
    assert without.statuses()["CANCELLED"] > 60 and with_.statuses()["CANCELLED"] < 30
    dash.set(length_s=40, threshold_pct=90)
    _, ninety = dash.results.values()
    assert ninety.orch.supervisor.threshold == 0.9 and len(ninety.refused) < 29
    dash.set(threshold_pct=10)
    assert "Could not run" not in dash.text.value


def test_dashboard_runs_are_cached_by_parameters():
    dash = all_dashboards()["16_sagas/supervisor"]()
    runs = list(dash.results.values())
    dash.set(rate_pct=50)
    dash.set(rate_pct=100)
    assert list(dash.results.values())[0] is runs[0]
    dash.rerun()
    assert list(dash.results.values())[0] is not runs[0]


# --- bad input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, word", [
    (dict(orders=0), "orders"), (dict(orders=10 ** 6), "orders"), (dict(every=0), "every"),
    (dict(until=-1), "until"), (dict(poisson="yes"), "poisson"), (dict(idempotent=1), "idempotent"),
    (dict(outages={"bank": [(1, 2)]}), "outages key"), (dict(outages={"payment": [(2, 1)]}), "outages"),
    (dict(outages=[(1, 2)]), "outages must be a dict"), (dict(bursts={"payment": [(1, 2)]}), "bursts"),
    (dict(bursts={"payment": ([(1, 2)], 1.5)}), "error rate"), (dict(bursts="payment"), "bursts must be a dict"),
    (dict(errors={"payment": 2}), "errors"), (dict(errors=0.5), "errors must be a dict"),
    (dict(errors={"db": 0.1}), "errors key"), (dict(saga="order"), "saga must be a Saga"),
    (dict(watch=5), "watch"), (dict(watch=[-1]), "watch"), (dict(watch=[1e9]), "watch"),
    (dict(crashes=5), "crashes"), (dict(poll_interval=0), "poll_interval"), (dict(restart_after=0), "restart_after"),
])
def test_shop_run_names_the_bad_parameter(kwargs, word):
    with pytest.raises((ValueError, TypeError), match=word):
        sg.shop_run(SEED, **kwargs)


@pytest.mark.parametrize("call, word", [
    (lambda: sg.naive_run(SEED, orders=0), "orders"), (lambda: sg.naive_run(SEED, every=-1), "every"),
    (lambda: sg.naive_run(SEED, outages={"orders_db": [(1, 2)]}), "outages key"),
    (lambda: sg.naive_run(-1), "seed"),
    (lambda: sg.burst_run(SEED, supervised="yes"), "supervised"),
    (lambda: sg.burst_run(SEED, supervised=True, rate=1.5), "rate"),
    (lambda: sg.burst_run(SEED, supervised=False, length=0), "length"),
    (lambda: sg.burst_run(SEED, supervised=False, threshold=0), "threshold"),
    (lambda: sg.burst_run(SEED, supervised=True, threshold=1.5), "threshold"),
    (lambda: sg.burst_run(SEED, supervised=False, window=0), "window"),
    (lambda: sg.crash_after(SEED, 0, "billing"), "step"),
    (lambda: sg.crash_after(SEED, 99, "payment", orders=2), "never applied"),
    (lambda: sg.crash_after(SEED, 0, "payment", delay=0), "delay"),
    (lambda: sg.targeted_crashes(SEED, "payment"), "points"), (lambda: sg.targeted_crashes(SEED, [(1,)]), "points"),
    (lambda: sg.applied_then_failed(SEED, down_for=0), "down_for"),
    (lambda: sg.order_saga(-1), "payment_retries"),
    (lambda: sg.GiveUpSaga(sg.order_saga().steps, give_up=0), "give_up"),
    (lambda: sg.plain_walk("saga", [True]), "saga"), (lambda: sg.plain_walk(sg.order_saga(), ["yes"]), "outcomes"),
    (lambda: sg.random_schedule(3), "rng"), (lambda: sg.run_schedule({"crashes": []}), "schedule"),
    (lambda: sg.search(0, SEED), "n"), (lambda: sg.search(5, SEED, saga_factory="saga"), "saga_factory"),
    (lambda: sg.shrink(sg.Schedule(orders=1)), "break an invariant"),
    (lambda: sg.shrink(sg.Schedule(), budget=0), "budget"),
    (lambda: sg.supervisor(0), "threshold"), (lambda: sg.supervisor(0.5, 0), "window"),
])
def test_helpers_name_the_bad_parameter(call, word):
    with pytest.raises((ValueError, TypeError), match=word):
        call()


def test_run_views_refuse_bad_input(story):
    with pytest.raises(ValueError, match="step"):
        story.holders("billing")
    with pytest.raises(ValueError, match="action"):
        story.calls("payment", action="redo")
    with pytest.raises(ValueError, match="no calls"):
        sg.draw_saga(Figure().subplots(), story, 99)


def test_a_failed_undo_has_its_own_colour(story):
    ax = Figure().subplots()
    sg.draw_saga(ax, story, 3)
    assert "compensation failed" in [t.get_text() for t in ax.get_legend().get_texts()]
    ax5 = Figure().subplots()
    sg.draw_saga(ax5, story, 5, also=[3])                     # one legend for two panels names order 3 too
    assert "compensation failed" in [t.get_text() for t in ax5.get_legend().get_texts()]
    colours = {tuple(c.get_facecolor()[0]) for c in ax.collections}
    assert len(colours) == 3                                   # failed steps, failed undos, the last undo
