"""Notebook 05 (retries, backoff and jitter): its scenarios agree with theory, are seeded, and its
dashboards react to every slider."""
import math
import random
import statistics

import numpy as np
import pytest

from resilience_sim import Fixed, Outcome, Service, World
from resilience_sim import theory
from resilience_sim.lessons import all_dashboards, clear_run_caches
from resilience_sim.lessons import retries as rt
from resilience_sim.policies import ConstantBackoff, FullJitter, RetryBudget
from resilience_sim.sim.probes import CallLog
from resilience_sim.sim.service import Request, ServiceError
from resilience_sim.sim.workload import serve


# --- dashboards ----------------------------------------------------------------------------------------
def test_dashboards_are_registered():
    keys = all_dashboards()
    assert "05_retries/budget" in keys and "05_retries/jitter" in keys


def test_budget_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["05_retries/budget"]()
    without, with_ = dash.results.values()
    assert not without.budget and with_.budget
    assert without.outage_amplification == pytest.approx(3.0, abs=0.02)
    assert 1.1 < with_.outage_amplification < 1.25
    assert "during the outage" in dash.text.value
    picture, text = dash.picture.value, dash.text.value

    dash.set(outage=0)                    # no outage, 5% errors: the budget never refuses
    assert dash.picture.value != picture and dash.text.value != text
    calm_without, calm_with = dash.results.values()
    assert math.isnan(calm_with.outage_amplification) and "during the outage" not in dash.text.value
    assert calm_with.denied == 0 and calm_with.availability == calm_without.availability

    dash.set(error_pct=40)                # retries are now 40% + 16% of requests: the budget bites
    noisy_without, noisy_with = dash.results.values()
    assert noisy_with.denied > 0 and noisy_with.availability < noisy_without.availability
    assert noisy_with.calls_per_request < noisy_without.calls_per_request

    dash.set(max_attempts=1)              # no retries at all: both panels are the same run
    one_without, one_with = dash.results.values()
    assert one_without.calls_per_request == one_with.calls_per_request == 1.0
    assert one_without.availability == one_with.availability
    assert "Could not run" not in dash.text.value


def test_jitter_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["05_retries/jitter"]()
    plain, jittered = dash.results.values()
    assert plain.label == "exponential" and jittered.label == "full jitter"
    assert plain.peak_after_outage() == 300 and jittered.peak_after_outage() < jittered.capacity_per_bin
    picture = dash.picture.value

    dash.set(clients=100)
    assert dash.picture.value != picture
    assert all(r.clients == 100 and len(r.results) == 100 for r in dash.results.values())
    assert dash.results["exponential backoff, no jitter"].peak_after_outage() == 100

    dash.set(outage=3.0)
    assert all(r.outage == 3.0 for r in dash.results.values())
    picture = dash.picture.value
    dash.set(delay_ms=200)
    assert dash.picture.value != picture
    plain, _ = dash.results.values()
    t, counts = plain.per_bin()
    assert counts[(t > 0.15) & (t < 0.25)].sum() == 100   # the first retry wave, 0.2 s after the start
    assert "Could not run" not in dash.text.value


# --- theory --------------------------------------------------------------------------------------------
def test_retry_formulas():
    assert theory.retry_availability(0.2, 3) == pytest.approx(0.992)
    assert theory.expected_attempts(0.2, 3) == pytest.approx(1.24)
    assert theory.expected_attempts(0.0, 5) == 1.0 and theory.retry_availability(1.0, 4) == 0.0
    with pytest.raises(ValueError, match="attempts"):
        theory.retry_availability(0.1, 0)
    with pytest.raises(ValueError, match="p"):
        theory.expected_attempts(1.5, 2)


@pytest.mark.parametrize("p, k", [(0.2, 1), (0.3, 3), (0.5, 2)])
def test_transient_errors_match_theory(p, k):
    run = rt.transient_run(p, k, requests=3000, seed=7)
    a = theory.retry_availability(p, k)
    assert abs(run.request_availability() - a) < 4 * theory.share_sd(a, len(run))
    calls = run.calls_per_request("pricing")
    assert abs(calls - theory.expected_attempts(p, k)) <= 4 * math.sqrt(theory.attempts_variance(p, k) / len(run))
    assert run.client("shop->pricing").amplification == pytest.approx(calls)


def test_transient_table_and_seeding():
    one, two = rt.transient_run(0.2, 3, requests=300, seed=3), rt.transient_run(0.2, 3, requests=300, seed=3)
    assert np.array_equal(one.outcome, two.outcome) and np.array_equal(one.end, two.end)
    other = rt.transient_run(0.2, 3, requests=300, seed=4)
    assert not np.array_equal(one.end, other.end)
    table = rt.transient_table(0.2, {3: one})
    assert "99.2%" in str(table) and "<table>" in table._repr_html_()


# --- amplification across layers ---------------------------------------------------------------------
@pytest.mark.parametrize("attempts", [(3, 3, 3), (2, 3, 4), (1, 1, 1), (3, 1, 1), (1, 1, 3)])
def test_calls_multiply_across_layers(attempts):
    res = rt.layers_run(attempts, requests=50, seed=5)
    a, b, c = attempts
    assert res.calls_per_request("frontend") == a
    assert res.calls_per_request("backend") == a * b
    assert res.calls_per_request("db") == a * b * c
    assert set(res.outcome) == {Outcome.FAILED}


def test_layers_run_rejects_bad_input():
    with pytest.raises(ValueError, match="three numbers"):
        rt.layers_run((3, 3))
    with pytest.raises(ValueError, match="attempts"):
        rt.layers_run((3, 0, 3))



def test_the_jitter_dashboard_runs_each_panel_once_per_setting(monkeypatch):
    """The panels share their x range, so each draw looks up the other panel's run: from the memo, not
    a second simulation."""
    runs = []
    waves_run = rt.waves_run
    monkeypatch.setattr(rt, "waves_run", lambda kind, **kw: runs.append(kind) or waves_run(kind, **kw))
    clear_run_caches()                            # no run kept from an earlier test
    dash = all_dashboards()["05_retries/jitter"]()
    assert sorted(runs) == ["exponential", "full jitter"]
    dash.set(clients=150)
    assert sorted(runs) == ["exponential", "exponential", "full jitter", "full jitter"]


def test_draw_waves_outlines_every_bin_with_one_step_per_run_of_equal_bins():
    from matplotlib.figure import Figure
    res = rt.waves_run("exponential", clients=100)
    ax = Figure().subplots()
    rt.draw_waves(ax, res)
    (patch,) = ax.patches[:1]
    values, edges = patch.get_data().values, patch.get_data().edges
    assert np.all(np.diff(values) != 0)                       # no two steps in a row of the same height
    t, counts = res.per_bin()
    assert np.array_equal(values[np.searchsorted(edges, t + rt.BIN / 2) - 1], counts)   # each bin its count
    assert edges[0] == 0.0 and math.isclose(edges[-1], t[-1] + rt.BIN)

# --- synchronized retries -----------------------------------------------------------------------------
def test_without_jitter_the_fleet_moves_in_waves():
    const = rt.waves_run("constant", clients=200, outage=1.0, delay=0.4, seed=3)
    t, counts = const.per_bin()
    busy = t[counts > 0]
    # every call falls in a 100 ms bin right after a multiple of the 0.4 s wait
    assert np.all(np.isclose(busy % 0.4, 0.0, atol=0.11) | np.isclose(busy % 0.4, 0.4, atol=0.11))
    assert const.peak_after_outage() == 200
    assert const.served == 200 and math.isfinite(const.finished)
    full = rt.waves_run("full jitter", clients=200, outage=1.0, delay=0.4, seed=3)
    assert full.peak_after_outage() < full.capacity_per_bin and full.calls < const.calls


def test_waves_are_seeded_and_validated():
    one, two = rt.waves_run("full jitter", seed=9), rt.waves_run("full jitter", seed=9)
    assert np.array_equal(one.times, two.times)
    assert not np.array_equal(one.times, rt.waves_run("full jitter", seed=10).times)
    with pytest.raises(ValueError, match="kind"):
        rt.waves_run("linear")
    with pytest.raises(ValueError, match="delay"):
        rt.waves_run(delay=0)
    assert "gave up unserved" in rt.waves_summary(rt.waves_run("constant", clients=300, max_attempts=2, seed=1))


def test_burst_starts_every_request_within_the_spread():
    world = World(seed=1)
    svc = Service(world, "svc", capacity=1000, latency=0.001)
    rt.burst(world, svc, 50, 0.05)
    res = world.run(until=1.0)
    assert len(res) == 50 and res.start.max() < 0.05
    with pytest.raises(ValueError, match="n"):
        rt.burst(world, svc, 0, 0.05)


# --- contention ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["constant", "exponential"])
def test_without_jitter_one_writer_wins_per_round(schedule):
    for n in (1, 7, 30):
        res = rt.contention_run(schedule, n, seed=11)
        assert res.calls == n * (n + 1) // 2
        assert res == rt.contention_run(schedule, n, seed=12)       # no randomness involved


def test_constant_round_length():
    res = rt.contention_run("constant", 10)
    # ten rounds of a 10 ms write, with a 10 ms wait between rounds
    assert res.finished == pytest.approx(10 * 0.01 + 9 * 0.01)


def test_jitter_cuts_the_work_and_is_seeded():
    n = 40
    plain = rt.contention_run("exponential", n).calls
    for name in rt.JITTERED:
        runs = [rt.contention_run(name, n, seed=s) for s in range(5)]
        assert statistics.mean(r.calls for r in runs) < plain / 3
        assert runs[0] == rt.contention_run(name, n, seed=0)
        assert len({r.calls for r in runs}) > 1


def test_contention_sweep_shapes_and_ranking():
    sweep = rt.contention_sweep((5, 20), seeds=4, schedules=("exponential", "full jitter"))
    assert sweep.writers == (5, 20) and sweep.seeds == 4
    assert list(sweep.calls["exponential"]) == [15, 210]
    assert np.all(sweep.calls_se["exponential"] == 0) and np.all(sweep.calls_se["full jitter"] > 0)
    assert np.all(sweep.finished["exponential"] > sweep.finished["full jitter"])
    from matplotlib.figure import Figure
    axes = Figure().subplots(1, 2)
    rt.draw_contention(axes, sweep)
    assert "calls" in axes[0].get_ylabel() and "(s)" in axes[1].get_ylabel()


def test_contention_run_accepts_a_backoff_object_and_rejects_junk():
    res = rt.contention_run(FullJitter(0.01, 1.0), 10, seed=1)
    assert res == rt.contention_run("full jitter", 10, seed=1)
    with pytest.raises(ValueError, match="schedule"):
        rt.contention_run(0.1, 10)
    with pytest.raises(ValueError, match="schedule"):
        rt.contention_run("fibonacci", 10)


def test_optimistic_store_commits_only_without_interference():
    world = World(seed=1)
    store = rt.OptimisticStore(world, latency=0.01)
    outcomes = []

    def write(delay):
        yield world.env.timeout(delay)
        try:
            yield from store.call(Request(world.env.now))
            outcomes.append("ok")
        except ServiceError as err:
            outcomes.append(err.reason)

    for delay in (0.0, 0.005, 0.02):   # the second overlaps the first; the third comes after both
        world.env.process(write(delay))
    world.env.run(until=1.0)
    assert outcomes == ["ok", "conflict", "ok"] and store.version == 2 and store.conflicts == 1


# --- retry budgets ---------------------------------------------------------------------------------------
def test_budget_caps_amplification_during_an_outage():
    no = rt.budget_run(outage=40, duration=60, budget=False, seed=21)
    yes = rt.budget_run(outage=40, duration=60, budget=True, seed=21)
    assert no.outage_amplification == pytest.approx(3.0, abs=0.01)
    steady = 1 + 0.1 + 0.5 / rt.BUDGET_RATE
    assert steady - 0.005 < yes.outage_amplification < steady + 0.04
    assert yes.denied > 0 and no.denied == 0
    lost = round((no.availability - yes.availability) * len(no.results))
    assert 0 <= lost <= 5          # only retries refused at the very end of the outage could have succeeded


def test_budget_run_takes_a_budget_object():
    budget = RetryBudget(ratio=0.5, window=10.0, min_per_second=0.0)
    res = rt.budget_run(outage=20, budget=budget, seed=2)
    assert res.budget and budget.requests == len(res.results) and budget.retries > 0
    assert 1.4 < res.outage_amplification < 1.6          # 1 + 50%


def test_budget_run_is_seeded_and_draws():
    one, two = rt.budget_run(seed=4), rt.budget_run(seed=4)
    assert np.array_equal(one.times, two.times) and one.availability == two.availability
    from matplotlib.figure import Figure
    ax = Figure().subplots()
    rt.draw_budget(ax, one)
    assert ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "per second"
    assert ax.get_xlim() == (0, rt.BUDGET_DURATION)


def test_call_log_records_every_call():
    world = World(seed=1)
    svc = Service(world, "svc", capacity=10, latency=0.01)
    log = CallLog(svc)
    for _ in range(3):
        world.env.process(serve(world, log, "users"))
    world.run(until=1.0)
    assert log.times == [0.0, 0.0, 0.0] and svc.calls == 3
    with pytest.raises(ValueError, match="target"):
        CallLog(object())


# --- idempotency ---------------------------------------------------------------------------------------
def test_blind_retries_duplicate_writes_and_keys_prevent_them():
    bare = rt.idempotency_run("retry, no key", requests=3000, seed=8)
    never = rt.idempotency_run("no retry", requests=3000, seed=8)
    keyed = rt.idempotency_run("retry with key", requests=3000, seed=8)
    mean, tol = rt.duplicates_bound(rt.PAY_SLOW_SHARE, 3, 3000)
    assert abs(bare.duplicates / bare.requests - mean) < tol
    assert never.duplicates == keyed.duplicates == 0 and keyed.deduplicated == bare.duplicates
    q = rt.PAY_SLOW_SHARE
    assert abs(never.charged_but_failed / 3000 - q) < 4 * math.sqrt(q * (1 - q) / 3000)
    assert keyed.answered == bare.answered > never.answered
    assert bare.charged == never.charged == keyed.charged == 3000    # every payment was written at least once
    table = rt.idempotency_table([bare, never, keyed])
    assert "duplicate payments" in str(table)


def test_duplicates_bound():
    mean, tol = rt.duplicates_bound(0.1, 3, 2000)
    assert mean == pytest.approx(0.11) and 0 < tol < 0.05
    assert rt.duplicates_bound(0.1, 1, 100)[0] == 0.0


def test_ledger_writes_once_per_key_only_with_dedup():
    for dedup, writes in ((False, 2), (True, 1)):
        world = World(seed=1)
        ledger = rt.Ledger(world, latency=Fixed(0.01), dedup=dedup)
        req = Request(0.0, "pay", key="order-1")

        def twice():
            yield from ledger.call(req)
            yield from ledger.call(req)         # the same logical request, sent again

        world.env.process(twice())
        world.env.run(until=1.0)
        assert ledger.writes == writes and ledger.calls == 2 and ledger.duplicates == writes - 1


def test_idempotency_run_validates_its_mode():
    with pytest.raises(ValueError, match="mode"):
        rt.idempotency_run("retry twice")


def test_backoff_schedules_table_values():
    rng = random.Random(1)
    for name, make in rt.SCHEDULES.items():
        schedule = make(0.1, 2.0)
        waits = [schedule.delay(n, rng) for n in range(1, 8)]
        assert all(0 <= w <= 2.0 for w in waits), name
    assert [rt.SCHEDULES["exponential"](0.1, 2.0).delay(n) for n in (1, 2, 5)] == [0.2, 0.4, 2.0]
    assert isinstance(rt.SCHEDULES["constant"](0.1, 2.0), ConstantBackoff)


def test_a_store_with_few_slots_makes_failed_writes_cost_time_and_constant_waits_finish_last():
    free = {name: rt.contention_run(name, 40, seed=2) for name in ("constant", "full jitter")}
    slots = {name: rt.contention_run(name, 80, seed=2, capacity=4) for name in ("constant", "full jitter")}
    assert free["constant"].finished < free["full jitter"].finished         # calls cost no time without a limit
    assert slots["constant"].finished > 1.5 * slots["full jitter"].finished
    assert slots["constant"].finished >= slots["constant"].calls * rt.CONTENTION_LATENCY / 4 - 1e-9  # 4 at a time


def test_a_store_refuses_a_capacity_below_one():
    from resilience_sim import World
    with pytest.raises(ValueError, match="capacity"):
        rt.OptimisticStore(World(seed=1), capacity=0)
