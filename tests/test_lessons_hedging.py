"""Notebook 09 (hedged requests): the exact theory, the scenarios and their key claims, the dashboard,
and the reusable picture of the policy composition order."""
import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import resilience_sim.sim.client
import resilience_sim.policies
from resilience_sim import Client, Fixed, LogNormal, Mixture, Service, Uniform, World, theory
from resilience_sim.core.distributions import Exponential
from resilience_sim.lessons import all_dashboards
from resilience_sim.lessons import hedging as h
from resilience_sim.policies import HedgePolicy, delay_from_percentile
from resilience_sim.sim.workload import serve

KEY = "09_hedged_requests/hedging"
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "09_hedged_requests.ipynb"


# --- the composition order --------------------------------------------------------------------------
def _docstring_items():
    """The numbered items of the composition order in the policies package docstring."""
    doc = resilience_sim.policies.__doc__
    section = doc[doc.index("Composition order"):]
    section = section[:section.index("\n\n", section.index("\n1. "))]
    return [item for item in re.split(r"\n(?=\d+\. )", section) if re.match(r"\d+\. ", item)]


def test_composition_order_follows_the_policies_docstring():
    items = _docstring_items()
    assert len(items) == len(h.COMPOSITION_ORDER) == 9
    for k, (item, (name, why)) in enumerate(zip(items, h.COMPOSITION_ORDER), start=1):
        assert item.startswith(f"{k}. ")
        bold = re.findall(r"\*\*(.+?)\*\*", item)
        assert bold, item
        for term in bold:        # every layer the item names, in the layer of the same rank
            assert term.lower() in name.lower(), (k, term, name)
        assert why and len(why) < 100
    assert "call" in h.COMPOSITION_ORDER[-1][0].lower() and items[-1].startswith("9. The call")


def test_composition_order_follows_the_client_docstring():
    doc = resilience_sim.sim.client.__doc__
    chain = doc[doc.index("deadline →"):doc.index("the target.")]
    layers = [part.strip().split()[0] for part in chain.split("→") if part.strip()]
    assert len(layers) == len(h.COMPOSITION_ORDER) - 1     # the target is the last box
    for word, (name, _) in zip(layers, h.COMPOSITION_ORDER):
        assert word.lower() in name.lower(), (word, name)


def test_composition_order_mermaid():
    text = h.composition_order_mermaid()
    assert text.startswith("```mermaid\n") and "\nflowchart TD\n" in text and text.endswith("\n```")
    positions = [text.index(f"{k}. {name}") for k, (name, _) in enumerate(h.COMPOSITION_ORDER, start=1)]
    assert positions == sorted(positions)
    assert [f"L{k} --> L{k + 1}" in text for k in range(1, 8)] == [True] * 7
    assert "style" not in text
    marked = h.composition_order_mermaid(highlight="hedging")
    assert marked.count("style ") == 1 and "style L8 " in marked
    assert "style L4 " in h.composition_order_mermaid(highlight="Circuit")
    with pytest.raises(ValueError, match="highlight"):
        h.composition_order_mermaid(highlight="Cache")
    with pytest.raises(ValueError, match="highlight"):
        h.composition_order_mermaid(highlight="")     # matches every layer: ambiguous


def test_notebook_shows_the_same_picture():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    assert h.composition_order_mermaid(highlight="Hedging") in sources


# --- the exact theory ---------------------------------------------------------------------------
def test_survival_of_each_distribution():
    assert theory.survival(Fixed(1.0), 0.5) == 1.0 and theory.survival(Fixed(1.0), 1.0) == 0.0
    assert math.isclose(theory.survival(Exponential(2.0), 2.0), math.exp(-1))
    assert math.isclose(theory.survival(Uniform(1.0, 3.0), 2.5), 0.25)
    assert theory.survival(LogNormal(0.01, 0.5), 0.01) == pytest.approx(0.5)
    assert theory.survival(Mixture.slow_tail(0.01, 1.0, 0.02), 0.5) == pytest.approx(0.02)
    assert theory.survival(LogNormal(0.01, 0.5), -1.0) == 1.0
    with pytest.raises(ValueError, match="dist"):
        theory.survival(object(), 1.0)


def test_survival_matches_samples():
    rng = random.Random(1)
    xs = np.array(h.LATENCY.samples(rng, 40000))
    for t in (0.005, 0.0175, 0.05, 0.15, 0.3):
        s = theory.survival(h.LATENCY, t)
        assert abs(np.mean(xs > t) - s) < 4 * theory.share_sd(s, xs.size)


def test_quantiles():
    dist = LogNormal(0.02, 0.7)
    for p in (1, 50, 95, 99.9):
        assert theory.quantile(dist, p) == pytest.approx(dist.quantile(p / 100), rel=1e-9)
    assert theory.quantile(h.LATENCY, 99) == pytest.approx(0.150, rel=1e-6)     # the hiccups' median
    for p in (0, 100, 150):
        with pytest.raises(ValueError, match="p must be"):
            theory.quantile(dist, p)


def test_hedged_survival_and_quantile():
    d = theory.quantile(h.LATENCY, 95)
    assert theory.hedged_survival(h.LATENCY, math.inf, 0.2) == theory.survival(h.LATENCY, 0.2)
    assert theory.hedged_survival(h.LATENCY, d, d / 2) == theory.survival(h.LATENCY, d / 2)   # before the copy
    assert math.isclose(theory.hedged_survival(h.LATENCY, d, 0.1),
                        theory.survival(h.LATENCY, 0.1) * theory.survival(h.LATENCY, 0.1 - d))
    assert theory.hedged_quantile(h.LATENCY, d, 50) == theory.quantile(h.LATENCY, 50)   # the median is untouched
    assert theory.hedged_quantile(h.LATENCY, d, 99) < theory.quantile(h.LATENCY, 99) / 5
    # two copies that are both slow: Mixture.slow_tail makes it plain arithmetic
    tail = Mixture.slow_tail(0.01, 1.0, 0.1)
    assert theory.hedged_survival(tail, 0.02, 0.5) == pytest.approx(0.01)


def test_theory_tradeoff_is_monotone():
    curve = h.theory_tradeoff(ps=[50, 75, 90, 95, 99])
    assert np.all(np.diff(curve["extra_load"]) < 0)
    assert np.all(np.diff(curve["p99"]) >= 0)       # a later hedge: a cheaper one, and a slower tail
    assert curve["p99"][-1] == pytest.approx(theory.quantile(h.LATENCY, 99))


def test_binomial_tolerance():
    assert math.isclose(4 * theory.share_sd(0.05, 10000), 4 * math.sqrt(0.05 * 0.95 / 10000))
    with pytest.raises(ValueError, match="n must be"):
        4 * theory.share_sd(0.05, 0)


# --- the scenarios and their claims ----------------------------------------------------------------
def test_run_is_seeded():
    one, two = h.run(0.02, requests=500, seed=4), h.run(0.02, requests=500, seed=4)
    assert np.array_equal(one.latencies(), two.latencies()) and h.extra_load(one) == h.extra_load(two)
    assert not np.array_equal(one.latencies(), h.run(0.02, requests=500, seed=5).latencies())
    assert h.extra_load(h.run(None, requests=500, seed=4)) == 0


@pytest.mark.parametrize("seed", [11, 12])
def test_hedging_at_the_p95_costs_five_percent_and_cuts_the_p99(seed):
    n_cal, n = 20000, 10000
    delay = delay_from_percentile(h.run(None, requests=n_cal, seed=seed).latencies(), 95)
    plain, hedged = h.run(None, requests=n, seed=seed + 100), h.run(delay, requests=n, seed=seed + 100)
    assert abs(h.extra_load(hedged) - 0.05) < 4 * math.sqrt(0.05 * 0.95 * (1 / n + 1 / n_cal))
    assert hedged.latency_percentiles((99,))[99] < plain.latency_percentiles((99,))[99] / 4
    exact = theory.hedged_quantile(h.LATENCY, delay, 99)
    assert abs(hedged.share_slower_than(exact) - 0.01) < 4 * theory.share_sd(0.01, n)
    assert math.isclose(hedged.calls_per_request("dependency"), 1 + h.extra_load(hedged))


def test_two_copies_follow_the_product_of_three():
    d = theory.quantile(h.LATENCY, 95)
    r = h.run(d, requests=8000, max_hedges=2, seed=3)
    t = 2 * d + 0.008
    exact = theory.survival(h.LATENCY, t) * theory.survival(h.LATENCY, t - d) * theory.survival(h.LATENCY, t - 2 * d)
    assert abs(r.share_slower_than(t) - exact) < 4 * theory.share_sd(max(exact, 1e-3), 8000)
    # first copies: primary unanswered at d; second copies: primary unanswered at 2 d and copy at d
    s1, s2 = theory.survival(h.LATENCY, d), theory.survival(h.LATENCY, 2 * d)
    assert abs(h.extra_load(r) - (s1 + s2 * s1)) < 4 * theory.share_sd(0.05, 8000)


def test_delay_sweep_extra_load_and_tail():
    measured = h.run(None, requests=10000, seed=21).latencies()
    points = h.delay_sweep(measured, (50, 95, 99), requests=3000, seed=22)
    for pt in points:
        assert pt.delay == delay_from_percentile(measured, pt.p)
        share = 1 - pt.p / 100
        assert abs(pt.extra_load - share) < 4 * math.sqrt(share * (1 - share) * (1 / 3000 + 1 / 10000))
    assert points[0].p99 < points[1].p99 < points[2].p99


def test_fanout_hedging_rescues_the_requests():
    d = theory.quantile(h.LATENCY, 95)
    plain, hedged = h.fanout_run(10, None, requests=600, seed=5), h.fanout_run(10, d, requests=600, seed=5)
    slow = theory.fanout_slow_share(theory.survival(h.LATENCY, 0.05), 10)
    slow_hedged = theory.fanout_slow_share(theory.hedged_survival(h.LATENCY, d, 0.05), 10)
    assert abs(plain.share_slower_than(0.05) - slow) < 4 * theory.share_sd(slow, 600)
    assert abs(hedged.share_slower_than(0.05) - slow_hedged) < 4 * theory.share_sd(slow_hedged, 600)
    assert hedged.calls_per_request() > plain.calls_per_request()   # root + leaves + copies


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_server_that_keeps_working_collapses_above_half_load(seed):
    busy = h.load_comparison(0.7, requests=2500, seed=seed)
    plain, cancelled, kept = (busy[v] for v in h.VARIANTS)
    p99 = {name: r.latency_percentiles((99,))[99] for name, r in busy.items()}
    assert p99[h.VARIANTS[2]] > 4 * p99[h.VARIANTS[0]] and h.extra_load(kept) > 0.5
    assert p99[h.VARIANTS[1]] < p99[h.VARIANTS[0]] and h.extra_load(cancelled) < 0.08
    calm = h.load_comparison(0.4, requests=2500, seed=seed)   # 2 x 40% < 100%: even doubled work drains
    assert calm[h.VARIANTS[2]].latency_percentiles((99,))[99] < 1.5 * calm[h.VARIANTS[1]].latency_percentiles((99,))[99]


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_just_above_half_load_a_trigger_tips_it_for_good(seed):
    rate = h.rate_for(0.55)
    plain = h.run(None, requests=6000, rate=rate, capacity=h.POOL, seed=seed)
    delay = delay_from_percentile(plain.latencies(), 95)
    kept = h.run(delay, requests=6000, rate=rate, capacity=h.POOL, seed=seed, cancel=False)
    per_second = kept.timeseries(1.0)["p99"][:int(6000 / rate)]    # full seconds of arrivals
    assert per_second[0] < 0.05                                           # healthy at first...
    assert per_second[-1] > 4 * plain.latency_percentiles((99,))[99]              # ...failed at the end
    assert np.all(per_second[np.argmax(per_second > 0.2):] > 0.2)         # and never recovered


def test_keeps_working_holds_the_slot_of_a_cancelled_copy():
    def busy_slots(cancel):
        world = World(1)
        dep = Service(world, "dep", capacity=2, latency=Fixed(1.0))
        target = dep if cancel else h.KeepsWorking(world, dep)
        Client(world, target, name="c", hedge=HedgePolicy(0.5))
        world.env.process(serve(world, world.clients["c"], "u"))   # at 0: primary; at 0.5: the copy
        world.run(until=1.2)                                      # the primary won at 1.0
        return dep.busy

    assert busy_slots(cancel=True) == 0
    assert busy_slots(cancel=False) == 1     # the copy works on until 1.5


def test_rate_for_and_bad_input():
    assert math.isclose(h.rate_for(0.5), 0.5 * h.POOL / h.LATENCY.mean)
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match="load must be"):
            h.rate_for(bad)


# --- pictures ------------------------------------------------------------------------------------
def test_draw_helpers_label_their_axes():
    measured = h.run(None, requests=800, seed=1)
    points = h.delay_sweep(measured.latencies(), (90, 99), requests=400, seed=2)
    ax = Figure().subplots()
    h.draw_tradeoff(ax, points, plain=measured, theory=h.theory_tradeoff(ps=[90, 95, 99]))
    assert "extra load" in ax.get_xlabel() and "(ms)" in ax.get_ylabel()
    ax = Figure().subplots()
    h.draw_p99_over_time(ax, h.load_comparison(0.3, requests=300, seed=1))
    assert "(s)" in ax.get_xlabel() and "(ms)" in ax.get_ylabel()
    assert len(ax.get_legend().get_texts()) == 3
    table = h.percentile_table({"without": measured})
    assert "p99 (ms)" in str(table) and table.data["without"]["extra_load"] == 0.0


# --- the dashboard -------------------------------------------------------------------------------
def test_dashboard_is_registered_and_builds():
    dash = all_dashboards()[KEY]()
    assert bytes(dash.picture.value).startswith(b"\x89PNG")
    assert "rs-dashboard" in dash.widget._dom_classes
    assert all(getattr(s, "continuous_update", False) is False for s in dash.sliders.values())
    plain, hedged = dash.results.values()
    assert not plain.hedge and hedged.hedge
    assert np.array_equal(hedged.plain_latencies, plain.run.latencies())   # the delay's measurement
    assert h.extra_load(plain.run) == 0 and 0.02 < h.extra_load(hedged.run) < 0.08
    assert hedged.run.latency_percentiles((99,))[99] < plain.run.latency_percentiles((99,))[99] / 3
    assert "extra load" in dash.text.value and "Could not run" not in dash.text.value


def test_dashboard_reacts_to_every_slider():
    dash = all_dashboards()[KEY]()
    picture, text = bytes(dash.picture.value), dash.text.value
    dash.set(load_pct=50)
    assert bytes(dash.picture.value) != picture and dash.text.value != text
    assert all(len(r.run) / r.run.start.max() == pytest.approx(h.rate_for(0.5), rel=0.1)    # arrivals at 50%
               for r in dash.results.values())
    at_95 = h.extra_load(dash.results["with hedging"].run)
    dash.set(p_delay=99)
    assert h.extra_load(dash.results["with hedging"].run) < at_95 / 2
    dash.set(p_delay=95, load_pct=70, cancel=0)                 # a server that cannot drop the loser
    plain, kept = (r.run for r in dash.results.values())
    assert kept.latency_percentiles((99,))[99] > 4 * plain.latency_percentiles((99,))[99] and h.extra_load(kept) > 0.5
    assert "Could not run" not in dash.text.value




# --- section 6: a trigger at half capacity, tied requests, a hedge budget -------------------------------
def test_at_half_capacity_a_trigger_tips_hedging_for_good_and_below_half_it_is_absorbed():
    absorbed = h.trigger_run(0.45, h.HEDGE_TRIGGER, requests=4000, seed=2013)
    calm = h.trigger_run(0.5, None, requests=4000, seed=2013)
    tipped = h.trigger_run(0.5, h.HEDGE_TRIGGER, requests=4000, seed=2013)
    assert absorbed.late_p99 < 0.05 and calm.late_p99 < 0.06
    assert tipped.late_p99 > 0.5 and tipped.late_extra_load > 0.9


def test_tied_requests_cut_queueing_at_no_extra_work_and_drop_the_twin_before_it_starts():
    runs = h.tied_comparison(0.7, requests=2000, seed=5)
    one, tied = runs.values()
    assert tied.work == 1.0 and tied.both_started == 0 and one.work == 1.0
    assert tied.percentiles()[90] < one.percentiles()[90] / 2
    table = h.guard_table(runs)
    assert table.headers[-1] == "work per request" and [r[0] for r in table.rows] == list(h.TIED_VARIANTS)


def test_a_tied_request_queued_behind_a_busy_replica_is_served_once_by_the_free_one():
    world = World(seed=1)
    tied = h.Tied(world, 1, latency=Fixed(0.01))                 # one slot each: the second request must wait
    for _ in range(3):
        world.env.process(serve(world, tied, "r"))
    results = world.run(until=1.0)
    assert tied.works == 3 and tied.both_started == 0 and results.request_availability() == 1.0


def test_a_hedge_budget_caps_copies_and_keeps_a_busy_pool_from_collapsing():
    runs = h.budget_comparison(0.7, requests=2000, seed=5)
    plain, free, capped = runs.values()
    assert free.work > 1.4 and free.percentiles()[99] > 5 * plain.percentiles()[99]
    assert capped.work < 1.08 and capped.percentiles()[99] < plain.percentiles()[99]


def test_a_budgeted_hedge_refuses_a_copy_once_and_never_retries_it_for_that_request():
    from resilience_sim.policies import RetryBudget
    policy = h.BudgetedHedge(0.01, RetryBudget(ratio=0.0, window=1.0, min_per_second=0.0))
    assert policy.hedge_at(0.0) == 0.01
    assert not policy.should_hedge(0.0, 0.02, 0)                  # no budget at all: refused
    assert policy.hedge_at(0.0) == math.inf and policy.hedge_at(0.5) == 0.51
