"""Notebook 10 (caching and stale data): its scenarios are seeded, its key claims hold, its dashboard
reacts, and its functions refuse bad input with a message that names the parameter."""
import json
import math
import random
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from resilience_sim.lessons import all_dashboards
from resilience_sim.lessons import caching as ca
from resilience_sim.policies import Cache

matplotlib.use("Agg")
SEED = 5861          # the notebook's seed
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "10_caching_and_stale_data.ipynb"


@pytest.fixture(scope="module")
def story():
    """Section 1: the catalog through the outage without a cache, with a plain TTL, with stale-if-error."""
    return (ca.catalog_run(SEED), ca.catalog_run(SEED, Cache(ttl=60)),
            ca.catalog_run(SEED, Cache.from_cache_control("max-age=60, stale-if-error=300")))


# --- section 1: the outage ------------------------------------------------------------------------------
def test_catalog_run_is_seeded():
    kw = dict(outage=(20.0, 40.0), duration=60.0)
    one, two = ca.catalog_run(3, Cache(ttl=10), **kw), ca.catalog_run(3, Cache(ttl=10), **kw)
    other = ca.catalog_run(4, Cache(ttl=10), **kw)
    assert np.array_equal(one.results.start, two.results.start) and np.array_equal(one.db_calls, two.db_calls)
    assert not np.array_equal(one.results.start, other.results.start)


def test_without_a_cache_the_outage_fails_every_request(story):
    none, _, _ = story
    assert none.stats().answered == 0.0 and none.cache is None
    assert abs(none.results.request_availability() - 0.7) < 0.01          # the db is up 420 s of 600


def test_stale_if_error_answers_most_of_the_outage_with_the_same_fresh_hits(story):
    _, plain, sie = story
    p, s = plain.stats(), sie.stats()
    assert 0 < p.answered < 0.1 and s.answered > 0.85
    assert s.full_quality == p.full_quality
    assert p.age_max <= 60 < s.age_max <= 360
    assert sie.results.quality()["stale"] > 0.2 and "stale" not in plain.results.quality()


def test_what_stale_if_error_cannot_serve_is_the_cold_tail_and_what_is_past_the_hard_ttl(story):
    _, _, sie = story
    cold, unanswered = sie.cold_share(), 1 - sie.stats().answered
    assert 0.05 < cold <= unanswered <= cold + 0.01
    gaps = sie.stale_gaps()                                  # failed, yet fetched before the outage
    assert len(gaps) > 0 and (gaps > sie.cache.hard_ttl).all()
    assert math.isclose(cold + len(gaps) / len(sie.results.between(*ca.OUTAGE)), unanswered)
    top, rest = sie.answered_by_rank(20)
    assert top == 1.0 and rest < 0.8


def test_longer_ttl_buys_availability_only_without_stale_if_error():
    sweep = ca.ttl_sweep(SEED, ttls=(10, 300))
    plain = [sweep.data[t, False].stats().answered for t in (10, 300)]
    sie = [sweep.data[t, True].stats().answered for t in (10, 300)]
    assert plain[0] < 0.05 < 0.3 < plain[1] and min(sie) > 0.85
    assert sweep.data[10, False].stats((0, 240)) == sweep.data[10, True].stats((0, 240))   # the same before
    assert len(sweep.rows) == 2 and len(sweep.headers) == len(sweep.rows[0])
    assert sweep.headers[1] == "hit ratio before the outage" and "SIE" not in " ".join(sweep.headers)
    fig = Figure()
    ca.draw_sweep(fig.subplots(1, 2), sweep)


# --- section 2: the hit ratio ------------------------------------------------------------------------
@pytest.mark.parametrize("ttl", [0.5, 1.0, 4.0, 9.0])
def test_one_key_hit_ratio_matches_lambda_t_over_one_plus_lambda_t(ttl):
    assert abs(ca.ttl_hit_ratio(SEED, rate=1.0, ttl=ttl) - ca.hit_ratio_formula(1.0, ttl)) < 0.02


def test_the_formula_item_by_item_predicts_the_catalogs_hit_ratio():
    assert math.isclose(ca.hit_ratio_formula(1.0, 9.0), 0.9)
    shares = ca.popularity()
    assert math.isclose(shares.sum(), 1.0) and shares[0] == shares.max() and math.isclose(shares[0] / shares[9], 10)
    free = ca.catalog_run(SEED, Cache(ttl=60), outage=None)
    assert abs(ca.catalog_hit_ratio_formula(60) - free.results.cache("cache").hit_ratio) < 0.02
    # the hit ratio of a window, from the records, is the cache's own over the whole run
    assert math.isclose(free.hit_ratio((0.0, free.duration)), free.results.cache("cache").hit_ratio)


def test_item_key_draws_by_popularity():
    key, rng = ca.item_key(items=10), random.Random(1)
    draws = np.bincount([key(rng) for _ in range(20_000)], minlength=10)
    assert draws.argmax() == 0 and np.abs(draws / 20_000 - ca.popularity(10)).max() < 0.02


# --- section 4: the soft/hard TTL model --------------------------------------------------------------
def test_expected_failing_time_has_its_three_regimes():
    assert ca.expected_failing_time(60, 360, 300) == 0.0                     # D <= H - S
    assert math.isclose(ca.expected_failing_time(60, 360, 330), 30 ** 2 / 120)
    assert math.isclose(ca.expected_failing_time(60, 360, 420), 60 + 30)     # D >= H: D - H + S/2
    ages = np.random.default_rng(0).uniform(0, 60, 200_000)
    assert abs(np.maximum(0, 345 - (360 - ages)).mean() - ca.expected_failing_time(60, 360, 345)) < 0.05


@pytest.mark.parametrize("outage_s", [270, 360])
def test_hot_key_fails_as_the_model_says(outage_s):
    hot = ca.hot_key_outages(SEED, outage_s=outage_s, outages=20)
    measured, predicted = hot.failing_times(), hot.predicted()
    assert ((predicted - measured) >= 0).all() and ((predicted - measured) < 15).all()
    if outage_s <= 300:
        assert (measured == 0).all()
    else:
        se = measured.std(ddof=1) / math.sqrt(len(measured))
        assert abs(measured.mean() - ca.expected_failing_time(60, 360, outage_s)) <= 4 * se
    assert hot.run.max_age() <= hot.run.cache.max_staleness
    ca.draw_hot_key(Figure().subplots(), hot)


# --- section 5: bounded staleness ---------------------------------------------------------------------
@pytest.mark.parametrize("cache", [
    Cache(ttl=20), Cache(ttl=20, hard_ttl=50), Cache(ttl=20, stale_while_revalidate=15),
    Cache(ttl=20, hard_ttl=30, stale_while_revalidate=40)])
def test_no_answer_is_older_than_max_staleness(cache):
    run = ca.catalog_run(7, cache, outage=(30.0, 100.0), duration=150.0, rate=20.0, items=50)
    assert 0 < run.max_age() <= cache.max_staleness


# --- section 6: refreshing a hot key ------------------------------------------------------------------
def test_herd_coalescing_and_stale_while_revalidate():
    herd, coalesced, swr = (ca.refresh_run(SEED, mode, duration=30.0) for mode in ca.REFRESH_MODES)
    assert np.mean(herd.bursts(since=1.0)) > 5
    assert coalesced.bursts(since=1.0) == swr.bursts(since=1.0) == [1, 1]
    assert len(ca.waited(coalesced)) > 20 and len(ca.waited(swr)) == 0
    assert swr.results.cache("cache").stale > 0 and swr.max_age() <= swr.cache.max_staleness == 20.0


# --- section 7: the cache's own failure modes ---------------------------------------------------------
def test_a_cold_restart_sends_a_herd_unless_fetches_are_coalesced():
    herd, coalesced = (ca.restart_run(SEED, coalesce=c) for c in (False, True))
    assert herd.db_calls_between(8, 9, key="home") > 50
    assert coalesced.db_calls_between(0, 16, key="home") == 2               # the cold start and the restart
    home = coalesced.db_calls[[k == "home" for k in coalesced.db_keys]]
    assert home[0] < 0.01 and 8.0 <= home[1] < 8.01                        # times and keys line up
    item = [run.results.only("item").between(8, 10).latency_percentiles((50,))[50] for run in (herd, coalesced)]
    assert item[0] > 5 * item[1]
    ca.draw_db_rate(Figure().subplots(), {"herd": herd, "coalesced": coalesced}, window=(6, 12))


def test_cache_addiction_recovers_with_a_bounded_queue_and_not_with_a_timeout():
    bounded, timeout = ca.addiction_run(SEED, db_queue=10), ca.addiction_run(SEED, timeout=1.0)
    cacheless = ca.addiction_run(SEED, cache=False, db_queue=10)
    assert bounded.stats((60, 90)).answered == timeout.stats((60, 90)).answered == 1.0
    assert bounded.db_calls_between(60, 90) / 30 < ca.db_capacity() / 2      # the db sized for the hit ratio
    assert bounded.stats((90, 120)).answered < 0.95 and bounded.stats((120, 150)).answered == 1.0
    assert timeout.stats((120, 150)).answered < 0.4 and max(timeout.probe.in_system) > 1000
    assert abs(cacheless.stats((60, 150)).answered - ca.db_capacity() / ca.ADDICT_RATE) < 0.02
    fig = Figure()
    left, right = fig.subplots(1, 2)
    ca.draw_answered(left, {"bounded": bounded, "timeout": timeout})
    ca.draw_db_queue(right, {"bounded": bounded, "timeout": timeout})


# --- section 8: negative caching -----------------------------------------------------------------------
def test_negative_caching_spares_the_db_and_keeps_errors_errors():
    without, with_ = (ca.negative_run(SEED, negative_ttl=t, duration=30.0) for t in (0, 10))
    scans = [run.db_calls_between(0, 30, key=ca.MISSING) for run in (without, with_)]
    assert scans[0] > 10 * scans[1] and scans[1] == 3
    assert all(run.results.only("bot").quality()["unanswered"] == 1.0 for run in (without, with_))
    assert with_.results.cache("cache").negative > 0 == without.results.cache("cache").negative


# --- the dashboard --------------------------------------------------------------------------------------
def test_dashboard_is_registered_and_reacts_to_every_slider():
    dash = all_dashboards()["10_caching/stale_if_error"]()
    (_, pair), (_, same) = dash.results.values()
    assert pair is same                                      # both panels draw one pair of runs
    assert not pair.plain.with_sie and pair.sie.with_sie and pair.sie.bound == 30 + 300 and pair.plain.bound == 30
    assert pair.sie.run.stats().answered > pair.plain.run.stats().answered
    assert pair.sie.run.outage[0] == ca.DASH_START == 90.0   # after a warm-up
    assert math.isclose(pair.sie.run.stats().answered + pair.cold, 1.0, abs_tol=0.05)   # the rest: cold items
    assert "answered" in dash.text.value and "bound 330 s" in dash.text.value and "nobody had fetched" in dash.text.value
    for name, value in (("ttl_s", 60), ("stale_if_error_s", 120), ("outage_s", 200)):
        picture, text = dash.picture.value, dash.text.value
        dash.set(**{name: value})
        assert dash.picture.value != picture and dash.text.value != text, name
    (_, pair), _ = dash.results.values()
    assert pair.plain.run.outage == (ca.DASH_START, ca.DASH_START + 200) and pair.sie.bound == 60 + 120
    assert all(d.run.max_age() <= d.bound for d in (pair.plain, pair.sie))
    assert "Could not run" not in dash.text.value


def test_dashboard_draws_age_in_seconds_with_each_bound_and_a_legend_above_the_data():
    dash = all_dashboards()["10_caching/stale_if_error"]()
    left, right = dash._axes
    assert left.get_ylim()[1] > 120 and left.get_legend() is not None      # the legend sits above 100%
    bounds = sorted(line.get_ydata()[0] for line in right.lines if line.get_linestyle() == ":")
    assert bounds == [30, 330] and right.get_ylabel() == "age (s)"
    assert len(left.get_xticks()) <= 6


def test_nice_ticks_give_a_few_round_numbers():
    assert list(ca.nice_ticks(250)) == [0, 50, 100, 150, 200, 250]
    assert list(ca.nice_ticks(330)) == [0, 100, 200, 300]
    with pytest.raises(ValueError, match="top"):
        ca.nice_ticks(0)


def test_draw_availability_draws_answered_and_fresh(story):
    ax = Figure().subplots()
    ca.draw_availability(ax, story[2])
    assert [line.get_label() for line in ax.lines] == ["answered", "answered fresh"]


# --- bad input -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, name", [
    (lambda: ca.story_cache(0), "ttl"),
    (lambda: ca.story_cache(60, -1), "stale_if_error"),
    (lambda: ca.catalog_run(1, rate=0), "rate"),
    (lambda: ca.catalog_run(1, outage=(50, 10)), "outage"),
    (lambda: ca.catalog_run(1, "a cache"), "cache"),
    (lambda: ca.popularity(items=0), "items"),
    (lambda: ca.item_key(zipf=-1), "zipf"),
    (lambda: ca.hit_ratio_formula(0, 10), "rate"),
    (lambda: ca.ttl_hit_ratio(1, ttl=-1), "ttl"),
    (lambda: ca.expected_failing_time(60, 30, 100), "hard_ttl"),
    (lambda: ca.expected_failing_time(60, 360, -5), "outage_s"),
    (lambda: ca.hot_key_outages(1, outages=0), "outages"),
    (lambda: ca.refresh_run(1, "sometimes"), "mode"),
    (lambda: ca.restart_run(1, coalesce="yes"), "coalesce"),
    (lambda: ca.addiction_run(1, rate=-3), "rate"),
    (lambda: ca.negative_run(1, negative_ttl=-1), "negative_ttl"),
    (lambda: ca.ttl_sweep(1, ttls=()), "ttls"),
])
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_bad_windows_are_refused(story):
    none, _, _ = story
    with pytest.raises(ValueError, match="window"):
        none.stats((500.0, 100.0))
    with pytest.raises(ValueError, match="window"):
        none.stats("all")
    with pytest.raises(ValueError, match="bin_width"):
        none.db_rate(0)
    with pytest.raises(ValueError, match="window must be given"):
        ca.catalog_run(1, outage=None, duration=10.0).stats()


# --- the notebook --------------------------------------------------------------------------------------
def test_the_notebook_is_stripped_seeded_and_links_what_comes_next():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert 45 <= len(cells) <= 95
    assert all(not c["outputs"] and c["execution_count"] is None for c in cells if c["cell_type"] == "code")
    assert "SEED = 5861" in code[0] and text.count("**Predict:**") >= 4
    imports = {m for src in code for m in re.findall(r"^(?:from|import) (\w+)", src, flags=re.M)}
    assert imports <= {"math", "numpy", "matplotlib", "resilience_sim"}
    assert "ca.stale_if_error_dashboard()" in "".join(code)
    for name in ("11_fallbacks.ipynb", "12_deferred_answers.ipynb"):
        assert f"[`{name}`]({name})" in text
