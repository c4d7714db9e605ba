"""Notebook 13 (transactional outbox): its searches and scenarios are seeded, its key claims hold, its
dashboard reacts, and bad input is refused with a message naming the parameter."""
import math
import random

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from resilience_sim.lessons import all_dashboards
from resilience_sim.lessons import outbox as ox
from resilience_sim.sim.write_path import Schedule, write_path

matplotlib.use("Agg")
SEED = 1313


@pytest.fixture(scope="module")
def counterexamples():
    """The notebook's section 1 searches."""
    return (ox.find_counterexample("commit, then publish", "lost", seed=SEED),
            ox.find_counterexample("publish, then commit", "unexpected", seed=SEED))


# --- schedules ----------------------------------------------------------------------------------------
def test_random_schedules_are_seeded_and_stay_in_their_bounds():
    a, b = ox.draw_schedules(40, seed=5, outages=True, relays=2), ox.draw_schedules(40, seed=5, outages=True, relays=2)
    assert a == b and a != ox.draw_schedules(40, seed=6, outages=True, relays=2)
    for s in a:
        assert len(s.relays) == 2 and len(s.app) <= ox.MAX_CRASHES and all(0 <= t < ox.SPAN for t in s.app)
        for part in ("db", "broker", "consumer_db"):
            assert all(ox.WINDOW[0] <= e - st for st, e in getattr(s, part))
    assert all(not (s.db or s.broker or s.consumer_db) for s in ox.draw_schedules(40, seed=5))
    assert all(s.relays == ((),) for s in ox.draw_schedules(40, seed=5, relays=0))     # a dual write has no relay


def test_faults_and_schedule_of_round_trip():
    s = Schedule(app=[1.0], relays=[[2.0], [], [3.0]], consumer=[0.5], db=[(1, 2)], broker=[(3, 4)])
    items = ox.faults(s)
    assert len(items) == 6 and ox.schedule_of(items, relays=3) == s
    assert str(items[1]) == "relay0 crash at 2.0000 s" and str(items[-1]) == "broker down 3.000-4.000 s"
    assert ox.schedule_of([], relays=2) == Schedule(relays=[[], []])


# --- section 1: the dual write ------------------------------------------------------------------------
def test_a_fault_free_dual_write_ships_every_order_once():
    for design in ox.DUAL:
        assert write_path(design, seed=SEED).check.exactly_once


def test_search_finds_and_shrinks_the_dual_write_to_one_app_crash(counterexamples):
    lost, invented = counterexamples
    assert (lost.tried, len(ox.faults(lost.found))) == (58, 4)
    (crash,) = lost.faults
    assert crash.part == "app" and round(crash.at, 4) == 1.5772
    assert lost.victims == (15,) and invented.victims == (15,) and invented.schedule == lost.schedule
    assert lost.run.app.db.get("orders", 15) is not None and 15 not in ox.effects(lost.run)
    assert invented.run.app.db.get("orders", 15) is None and 15 in ox.effects(invented.run)
    assert "shrunk to app crash at 1.5772 s" in str(lost)


def test_shrink_reaims_crashes_so_that_dropping_one_keeps_the_failure():
    two = Schedule(app=(0.2233, 3.9559))       # the first crash shifts the second onto an order's write
    assert ox.fails("commit, then publish", "lost", two)
    assert not ox.fails("commit, then publish", "lost", Schedule(app=(3.9559,)))
    small, runs = ox.shrink("commit, then publish", "lost", two)
    assert len(ox.faults(small)) == 1 and runs > 2 and ox.fails("commit, then publish", "lost", small)
    with pytest.raises(ValueError, match="schedule must make"):
        ox.shrink("outbox", "lost", two)


def test_a_search_that_finds_nothing_says_so():
    with pytest.raises(LookupError, match="tries"):
        ox.find_counterexample("outbox", "lost", seed=SEED, tries=20)


def test_dual_writes_census_crashes_rarely_outages_often():
    crash_only, outages = ox.draw_schedules(120, seed=SEED), ox.draw_schedules(120, seed=SEED, outages=True)
    cp, pc = ox.census("commit, then publish", crash_only), ox.census("publish, then commit", crash_only)
    assert (cp.lost, pc.unexpected, cp.unexpected, pc.lost) == (1, 1, 0, 0)
    cp, pc = ox.census("commit, then publish", outages), ox.census("publish, then commit", outages)
    assert (cp.lost, cp.lost_writes, pc.unexpected, pc.unexpected_writes) == (60, 512, 67, 584)
    assert cp.share("lost") == 0.5
    table = ox.census_table({"cp": cp, "pc": pc})
    assert table.data["cp"] is cp and "invented" in table._repr_html_()


# --- section 2: the outbox ----------------------------------------------------------------------------
def test_outbox_never_loses_or_invents_and_the_idempotent_consumer_removes_copies():
    for outages in (False, True):
        schedules = ox.draw_schedules(120, seed=SEED, outages=outages)
        raw, dedup = ox.census("outbox", schedules, dedupe="none"), ox.census("outbox", schedules)
        assert raw.lost == raw.unexpected == dedup.lost == dedup.unexpected == 0
        assert raw.duplicated > 0 and raw.with_extra_copies > 0 and dedup.exactly_once == dedup.runs == 120
    assert (raw.duplicated, raw.with_extra_copies) == (17, 7)


def test_census_runs_are_settled_and_the_short_runs_agree_with_the_long():
    schedules = ox.draw_schedules(25, seed=3, outages=True, relays=2)
    assert str(ox.census("outbox", schedules)) == str(ox.census("outbox", schedules, until=60.0))
    assert all(ox.settled(write_path("outbox", s, until=ox.CENSUS_UNTIL)) for s in schedules)
    assert not ox.settled(write_path("outbox", until=1.0))


def test_relay_crash_mid_batch_is_taken_over_after_the_lease():
    story = ox.relay_crash_run(seed=SEED, lease=3.0, relays=2)
    assert story.row == 12 and len(story.batch.rows) == 9 and {r % ox.KEYS for r in story.batch.rows} == set(range(5))
    wait = story.taken_over - story.batch.start
    assert 3.0 <= wait <= 4.05 and round(wait, 2) == 3.02
    assert ox.extra_copies(story.run) == 1 and story.run.consumer.duplicates_skipped == 1
    assert story.run.check.exactly_once
    quiet = [e for r in story.run.relays for e in r.events if story.crash < e[0] < story.taken_over]
    assert quiet == []                              # every key was leased by the dead relay


# --- section 3: lag ----------------------------------------------------------------------------------
def test_lag_is_half_the_poll_interval_plus_the_work_and_at_worst_the_interval():
    table = ox.lag_table((0.5, 2.0), seed=SEED)
    for p, d in table.data.items():
        assert abs(d["mean"] - (p / 2 + d["work"])) < 0.03
        assert 0.95 * p < d["p99"] <= p + 0.05 and d["max"] <= p + 0.05
    assert "poll/2 + work" in str(table)


def test_lag_after_a_crash_is_the_lease():
    table = ox.lease_table((0.5, 5.0, 10.0), seed=SEED)
    for lease, story in table.data.items():
        taken = story.taken_over - story.batch.start
        assert lease <= taken <= max(lease, 1.0) + 1.05 and story.lags.max() <= taken + 1.0
        assert story.run.check.exactly_once and ox.extra_copies(story.run) == 1
    assert round(table.data[10.0].lags.max(), 2) == 10.72


# --- section 4: relays, order, mistakes -----------------------------------------------------------------
def test_a_lease_prevents_copies_and_one_shorter_than_the_work_does_not():
    table = ox.copies_table(seed=SEED)
    assert all(table.data[(n, 10.0)][0] == 0 for n in (1, 2, 3))
    assert (table.data[(2, 0.001)][0], table.data[(3, 0.001)][0]) == (17, 240) and table.data[(1, 0.001)][0] == 0


def test_first_copies_leave_in_commit_order_per_key_but_effects_need_not():
    for relays in (2, 3):
        c = ox.census("outbox", ox.draw_schedules(60, seed=SEED, outages=True, relays=relays))
        assert c.out_of_order == 0 and c.exactly_once == 60 and c.applied_out_of_order > 0


def test_first_copies_and_effects_order_helpers():
    run = write_path("outbox", Schedule(relays=((), ())), seed=SEED)
    order = ox.first_copies(run)
    assert sorted(order) == list(range(ox.KEYS)) and order[0] == [0, 5, 10, 15, 20, 25]
    assert ox.in_commit_order(run) and ox.effects_in_order(run) and ox.extra_copies(run) == 0
    assert sorted(ox.effects(run)) == list(range(30)) and len(ox.commit_times(run)) == 30


def test_classic_mistakes_fail_under_one_relay_crash():
    fresh = ox.find_counterexample("outbox", "duplicated", seed=SEED, relay_options={"message_ids": "fresh"})
    before = ox.find_counterexample("outbox", "lost", seed=SEED, relay_options={"mark": "before"})
    assert [str(f) for f in fresh.faults] == [str(f) for f in before.faults] == ["relay0 crash at 3.1615 s"]
    assert fresh.run.check.duplicated == {26: 2} and before.victims == (26,)
    assert write_path("outbox", fresh.schedule).check.exactly_once


# --- aimed crashes --------------------------------------------------------------------------------------
def test_mid_write_crashes_strike_while_an_order_is_written():
    for design in ox.DESIGNS:
        times = ox.mid_write_crashes(design, 4, seed=7)
        assert times[:3] == ox.mid_write_crashes(design, 4, seed=7)[:3]
        assert set(ox.mid_write_crashes(design, 2, seed=7)) <= set(times)    # one more keeps the others
        run = write_path(design, Schedule(app=times))
        assert run.app.process.crashes == 4
        for at in times:
            last = [e for e in run.app.events if e[0] <= at][-1]
            assert last[2] == "started"                   # in the middle of an order's write
    assert ox.mid_write_crashes("outbox", 0, seed=7) == ()


def test_aimed_relay_crashes_land_in_batches():
    schedule, run = ox.aimed_relay_run(2, seed=3, relays=2)
    crashes = sorted(t for times in schedule.relays for t in times)
    assert len(crashes) == 2 and run.check.exactly_once
    batches = ox.relay_batches(run)
    for at in crashes:
        assert any(b.start <= at <= b.end + 0.003 for b in batches)
    short, _ = ox.aimed_relay_run(2, seed=3, relays=2, horizon=15.0)
    assert short == schedule


# --- pictures --------------------------------------------------------------------------------------------
def test_draw_timeline_draws_rows_crashes_and_notes(counterexamples):
    lost, _ = counterexamples
    ax = Figure().subplots()
    ox.draw_timeline(ax, lost.run, lost.schedule, mark=lost.victims, notes=[(1.0, 1, "here")])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["app", "shipping (consumer)"]
    assert {t.get_text() for t in ax.texts} >= {"order 15", "here"} and ax.get_legend() is not None
    story = ox.relay_crash_run(seed=SEED, lease=3.0)
    ax = Figure().subplots()
    ox.draw_timeline(ax, story.run, Schedule(broker=[(2.5, 3.0)], relays=story.schedule.relays), window=(1.6, 6.0))
    assert len(ax.get_yticklabels()) == 4 and ax.get_xlim() == (1.6, 6.0)
    ax = Figure().subplots()
    ox.draw_lags(ax, ox.lag_table((0.5, 1.0), seed=SEED))
    assert len(ax.lines) == 5


# --- the dashboard ---------------------------------------------------------------------------------------
def test_dashboard_is_registered():
    assert "13_outbox/writes" in all_dashboards()


def test_writes_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["13_outbox/writes"]()
    (_, runs), *_ = dash.results.values()
    assert (runs.crashes, runs.poll_interval, runs.relays) == (2, 1.0, 2)
    assert [len(r.check.lost) + len(r.check.unexpected) for r in runs.dual.values()] == [1, 1]
    assert runs.outbox.check.exactly_once and ox.extra_copies(runs.outbox) == 2
    assert "0 lost, 0 invented" in dash.text.value and "lag p50" in dash.text.value
    picture = dash.picture.value

    dash.set(crashes=0)
    (_, runs), *_ = dash.results.values()
    assert dash.picture.value != picture and all(r.check.exactly_once for r in runs.dual.values())
    assert ox.relay_lags(runs.outbox).max() < 1.0

    dash.set(crashes=4)
    (_, runs), *_ = dash.results.values()
    assert sum(len(r.check.lost) for r in runs.dual.values()) == 3 and runs.outbox.check.exactly_once

    dash.set(crashes=0, poll_interval=5.0)
    (_, runs), *_ = dash.results.values()
    assert 4.0 < ox.relay_lags(runs.outbox).max() <= 5.05
    dash.set(poll_interval=0.1)
    (_, runs), *_ = dash.results.values()
    assert len(runs.outbox.relays) == 2 and ox.relay_lags(runs.outbox).max() < 0.2
    dash.set(crashes=2, poll_interval=1.0, lease=1.0)           # the lease sets the tail after a relay crash
    (_, runs), *_ = dash.results.values()
    short = ox.relay_lags(runs.outbox).max()
    dash.set(lease=20.0)
    (_, runs), *_ = dash.results.values()
    assert runs.lease == 20.0 and short < 3.0 and 20.0 <= ox.relay_lags(runs.outbox).max() < 2 * 20.0 + 3.0   # two crashes, a lease each
    assert "Could not run" not in dash.text.value


def test_dashboard_outbox_is_exactly_once_at_every_slider_end():
    for crashes in (0, 2, ox.DASH_CRASHES_MAX):
        for poll in (0.1, 1.0, 5.0):
            for lease in (1.0, 20.0):
                runs = ox.writes_runs(crashes, poll, lease=lease)
                assert runs.outbox.check.exactly_once and ox.settled(runs.outbox), (crashes, poll, lease)
                assert ox.in_commit_order(runs.outbox)


def test_dashboard_runs_are_shared_by_the_panels_and_cached():
    dash = all_dashboards()["13_outbox/writes"]()
    runs = [r for _, r in dash.results.values()]
    assert all(r.outbox is runs[0].outbox for r in runs)
    dash.rerun()
    assert [r for _, r in dash.results.values()][0].outbox is runs[0].outbox


# --- bad input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, word", [
    (lambda: ox.random_schedule(3), "rng"), (lambda: ox.random_schedule(random.Random(1), relays=-1), "relays"),
    (lambda: ox.draw_schedules(0, seed=1), "n"), (lambda: ox.draw_schedules(5, seed=-1), "seed"),
    (lambda: ox.faults("app"), "schedule"), (lambda: ox.schedule_of(["x"]), "fault_list"),
    (lambda: ox.fails("outbox", "late", Schedule()), "kind"),
    (lambda: ox.fails("two-phase", "lost", Schedule()), "design"),
    (lambda: ox.find_counterexample("outbox", "lost", seed=1, tries=0), "tries"),
    (lambda: ox.census("outbox", Schedule()), "schedules"), (lambda: ox.census("outbox", []), "schedules"),
    (lambda: ox.census_table([1]), "censuses"), (lambda: ox.mid_write_crashes("outbox", 31, seed=1), "crashes"),
    (lambda: ox.mid_write_crashes("outbox", -1, seed=1), "crashes"),
    (lambda: ox.aimed_relay_run(-1, seed=1), "relay_crashes"),
    (lambda: ox.aimed_relay_run(1, seed=1, horizon=0), "horizon"),
    (lambda: ox.between_publish_and_mark("batch"), "batch"), (lambda: ox.lag_run(0, seed=1), "poll_interval"),
    (lambda: ox.lag_run(1.0, seed=1, lease=0), "lease"), (lambda: ox.relay_crash_run(seed=1, lease=-1), "lease"),
    (lambda: ox.relay_crash_run(seed=1, at=100.0), "at"), (lambda: ox.copies_table(seed=1, relays=(0,)), "relays"),
    (lambda: ox.writes_runs(9, 1.0, 2), "crashes"), (lambda: ox.writes_runs(1, 0.0, 2), "poll_interval"),
    (lambda: ox.writes_runs(1, 1.0, lease=0.0), "lease"),
    (lambda: ox.Census("outbox", runs=1).share("bogus"), "what"),
])
def test_lesson_functions_name_the_bad_parameter(call, word):
    with pytest.raises((ValueError, TypeError), match=word):
        call()


def test_relay_lags_refuses_a_dual_write():
    with pytest.raises(ValueError, match="outbox run"):
        ox.relay_lags(write_path("commit, then publish"))
    assert math.isfinite(float(np.mean(ox.relay_lags(write_path("outbox")))))
