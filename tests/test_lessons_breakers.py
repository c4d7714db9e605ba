"""Notebook 06 (circuit breakers): its scenarios are seeded, its key claims hold, and its dashboard reacts."""
import math

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from resilience_sim import Outcome, theory
from resilience_sim.lessons import all_dashboards
from resilience_sim.lessons import breakers as bk
from resilience_sim.policies import CircuitBreaker

matplotlib.use("Agg")
SEED = 2024


@pytest.fixture(scope="module")
def story():
    """The notebook's section 1 runs: without and with the story's breaker."""
    return bk.shop_run(SEED), bk.shop_run(SEED, breaker=bk.story_breaker())


# --- the dashboard ---------------------------------------------------------------------------------------
def test_dashboard_is_registered():
    assert "06_circuit_breakers/outage" in all_dashboards()


def test_outage_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["06_circuit_breakers/outage"]()
    without, with_ = dash.results.values()
    assert without.breaker is None and with_.breaker is not None
    assert with_.stats("checkout", with_.outage).availability == 1.0
    assert without.stats("checkout", without.outage).availability < 1.0
    assert with_.calls_during_outage() < without.calls_during_outage() / 5
    assert "calls to recs" in dash.text.value and "closed" in dash.text.value
    picture, text = dash.picture.value, dash.text.value

    dash.set(outage_s=10)
    assert dash.picture.value != picture and dash.text.value != text
    assert all(r.outage == (bk.DASH_START, bk.DASH_START + 10) for r in dash.results.values())

    before = dash.results["with a breaker"].history
    dash.set(open_for_s=12)
    assert dash.results["with a breaker"].breaker.open_for == 12.0
    assert dash.results["with a breaker"].history != before
    opens = [t for t, s in dash.results["with a breaker"].history if s == "open"]
    halves = [t for t, s in dash.results["with a breaker"].history if s == "half-open"]
    assert all(math.isclose(h - o, 12.0) for o, h in zip(opens, halves))

    dash.set(threshold=20)
    assert dash.results["with a breaker"].breaker.consecutive_failures == 20
    few = dash.results["with a breaker"].calls_during_outage()
    dash.set(threshold=2)
    assert dash.results["with a breaker"].calls_during_outage() < few        # trips sooner, fewer calls
    assert "Could not run" not in dash.text.value



def test_moving_the_breakers_sliders_runs_only_the_panel_with_a_breaker(monkeypatch):
    from resilience_sim.lessons import clear_run_caches
    runs = []
    shop_run = bk.shop_run
    monkeypatch.setattr(bk, "shop_run", lambda seed, **kw: runs.append(kw.get("breaker")) or shop_run(seed, **kw))
    clear_run_caches()
    dash = all_dashboards()["06_circuit_breakers/outage"]()
    dash.set(open_for_s=9, threshold=3)
    assert [b is None for b in runs] == [True, False, False, False]
    dash.set(outage_s=12)
    assert [b is None for b in runs[4:]] == [True, False]

# --- section 1: failing fast ------------------------------------------------------------------------
def test_shop_run_is_seeded():
    one, two = bk.shop_run(7, duration=40, outage=(10, 20)), bk.shop_run(7, duration=40, outage=(10, 20))
    other = bk.shop_run(8, duration=40, outage=(10, 20))
    page = [run.results.only("page").start for run in (one, two, other)]
    assert np.array_equal(page[0], page[1]) and np.array_equal(one.recs_calls, two.recs_calls)
    assert not np.array_equal(page[0], page[2])
    with pytest.raises(ValueError, match="breaker"):
        bk.shop_run(7, breaker="yes")


def test_a_hung_dependency_starves_checkout_without_a_breaker(story):
    without, with_ = story
    assert theory.littles_law(bk.PAGE_RATE, bk.TIMEOUT) > bk.API_WORKERS
    lost = 1 - without.stats("checkout", without.outage).availability
    formula = 1 - bk.saturated_throughput() / (bk.PAGE_RATE + bk.CHECKOUT_RATE)
    assert 0.5 * formula < lost < formula + 0.1
    assert without.results.services["api"].failure_reasons["overload"] > 0
    assert with_.stats("checkout", with_.outage).availability == 1.0
    assert with_.results.services["api"].failure_reasons.get("overload", 0) == 0


def test_the_breaker_fails_fast_and_spares_the_dependency(story):
    without, with_ = story
    assert without.stats("page", without.outage).p50 >= bk.TIMEOUT
    assert math.isclose(with_.stats("page", with_.outage).p50, bk.API_WORK)
    assert with_.calls_during_outage() <= bk.calls_bound() < without.calls_during_outage() / 10
    assert with_.results.client("api->recs").rejected["circuit open"] > 0


def test_healthy_shop_is_the_same_with_or_without_a_breaker():
    quiet = dict(outage=(50.0, 50.5), duration=40.0)     # the outage starts after the traffic stops
    a, b = bk.shop_run(3, **quiet), bk.shop_run(3, breaker=bk.story_breaker(), **quiet)
    pages = [run.results.only("page").outcome for run in (a, b)]
    assert np.array_equal(*pages) and (pages[0] == Outcome.OK).all()
    assert b.history == ((0.0, "closed"),)


# --- section 3: the timeline --------------------------------------------------------------------------
def test_timeline_trip_cycles_and_recovery(story):
    _, run = story
    trip = next(t for t, s in run.history if s == "open")
    fifth = run.recs_calls[run.recs_calls >= bk.OUTAGE[0]][4]
    assert math.isclose(trip, fifth + bk.TIMEOUT)
    opens = [t for t, s in run.history if s == "open"]
    halves = [t for t, s in run.history if s == "half-open"]
    assert len(halves) == len(opens) and all(math.isclose(h - o, bk.OPEN_FOR) for o, h in zip(opens, halves))
    assert 0 < run.recovery_time() <= bk.OPEN_FOR + bk.TIMEOUT + 1.0
    shares = [run.state_share(s) for s in ("closed", "open", "half-open")]
    assert math.isclose(sum(shares), 1.0) and shares[1] > 0.7
    assert math.isnan(bk.shop_run(SEED, duration=20).recovery_time())    # no breaker: nothing to recover


def test_draw_state_and_availability_draws_bands_and_lines(story):
    _, run = story
    fig = Figure()
    band, main = fig.subplots(2, 1, sharex=True)
    bk.draw_state_and_availability((band, main), run)
    assert len(band.collections) == 3                  # one broken_barh per state
    assert len(main.lines) == 2 and main.get_ylabel() == "requests answered (%)"
    ax = Figure().subplots()
    bk.draw_availability(ax, bk.shop_run(SEED, fallback=True, breaker=bk.story_breaker(), duration=40,
                                         outage=(10, 20)))
    assert [line.get_label() for line in ax.lines] == ["page: answered", "page: full quality", "checkout: answered"]


# --- section 4: the two rules -------------------------------------------------------------------------
def test_rules_consecutive_trips_rarely_rate_never_both_at_60_percent():
    run = bk.rules_run(SEED)
    calm, storm = (0, run.change_at), (run.change_at, run.duration)
    consecutive, rate = run.breakers
    assert len(run.trips(rate, calm)) == 0
    assert 1 <= len(run.trips(consecutive, calm)) <= 6
    first_c, first_r = run.trips(consecutive, storm)[0], run.trips(rate, storm)[0]
    assert first_c[1] == "consecutive failures" and first_r[1] == "failure rate"
    assert first_c[0] < first_r[0] < run.change_at + 100 / run.rate
    assert all(run.open_share(name, storm) > 0.7 for name in run.breakers)
    fig = Figure()
    bk.draw_rules(fig.subplots(), run, window=(590, 650))


def test_run_theory_and_the_plain_number_driver():
    assert math.isclose(theory.trials_until_run(0.5, 1), 2.0)          # k = 1: 1/p
    assert math.isclose(theory.trials_until_run(0.5, 2), 6.0)          # two heads in a row: 6 tosses
    assert math.isclose(theory.binomial_tail(10, 0.3, 0), 1.0)
    assert math.isclose(theory.binomial_tail(2, 0.5, 2), 0.25)
    closed, trips = bk.closed_calls_per_trip(CircuitBreaker(consecutive_failures=2, open_for=1.0), 0.5,
                                             calls=20_000, seed=1)
    expected = closed / 6.0
    assert abs(trips - expected) < 4 * math.sqrt(expected)


def test_trips_by_error_rate_agrees_with_the_formula_at_every_rate_and_draws_each_rate_from_its_own_stream():
    table = bk.trips_by_error_rate(((0.5, 20_000), (0.4, 20_000)), seed=3, run_of=3, open_for=1.0)
    for row in table.data:
        assert math.isclose(row["wait"], theory.trials_until_run(row["p"], 3))
        assert abs(row["trips"] - row["expected"]) < 4 * row["sd"] and row["closed_calls"] < row["calls"]
    alone = bk.trips_by_error_rate(((0.4, 20_000),), seed=3, run_of=3, open_for=1.0)
    assert alone.data[0]["trips"] == table.data[1]["trips"]          # the other rate does not shift its stream
    assert len(table.rows) == 2 and table.headers[0] == "errors"


# --- section 5: probes --------------------------------------------------------------------------------
def test_five_probes_cost_five_times_the_failed_calls_and_close_a_little_later():
    one, five = bk.probes_run(SEED, probes=1), bk.probes_run(SEED, probes=5)
    cycles = sum(1 for t, s in one.history if s == "half-open" and bk.OUTAGE[0] < t < bk.OUTAGE[1])
    assert bk.failed_probes(one) == cycles and bk.failed_probes(five) == 5 * cycles
    assert 0 < five.recovery_time() - one.recovery_time() < 1.0


# --- section 6: fallback --------------------------------------------------------------------------------
def test_breaker_plus_fallback_answers_every_page_at_once():
    both = bk.shop_run(SEED, breaker=bk.story_breaker(), fallback=True)
    page = both.stats("page", both.outage)
    assert page.availability == 1.0 and page.full_quality == 0.0 and math.isclose(page.p50, bk.API_WORK)
    assert both.results.reasons()[bk.FALLBACK] == both.results.outcome_counts()["degraded"] > 0
    alone = bk.shop_run(SEED, fallback=True)
    assert alone.stats("page", alone.outage).p50 > bk.TIMEOUT
    assert alone.stats("checkout", alone.outage).availability < 1.0


def test_endpoint_stats_reject_an_empty_window(story):
    with pytest.raises(ValueError, match="window"):
        story[0].stats("page", (500.0, 600.0))
