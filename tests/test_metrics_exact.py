"""The metrics on small hand-checkable cases: Results built straight from rows (no World), every value
worked out by hand in the comments, windows that do not start at 0, and every boundary from both sides.
Mutants these cannot kill, and why they cannot change behaviour: tools/equivalent_mutants/metrics.txt."""
import math
import re
import sys
import types
import warnings
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from resilience_sim.core import validate
from resilience_sim.core.reasons import Outcome
from resilience_sim.core.timeline import Timeline
from resilience_sim.metrics import alerting, checker, scoring, sweeps, windows
from resilience_sim.metrics.results import (MAX_BINS, CacheStats, ClientStats, FaultSpan, JobStats, Results,
                                            ServiceStats, as_results, bin_count, percentile_list)

OK, DEG, FAIL, TO, REJ = (Outcome.OK, Outcome.DEGRADED, Outcome.FAILED, Outcome.TIMED_OUT, Outcome.REJECTED)
NAMES = ["", "db", "cache", "client", "read", "write", "stale", "unfinished", "error", "circuit open", "idle"]
KEYS = [None, "k1", "k2"]
#: (start, end, outcome, reason, answered_by, route, key, attempts, age), until = 10.
ROWS = [
    (0.0, 1.0, OK, "", "db", "read", None, 1, 0.0),
    (2.0, 5.0, DEG, "stale", "cache", "read", "k1", 2, 4.0),
    (4.0, 10.0, TO, "unfinished", "", "write", "k2", 1, 0.0),
    (5.0, 6.0, FAIL, "error", "db", "write", None, 3, 0.0),
    (7.0, 7.5, OK, "", "db", "read", "k1", 1, 0.0),
    (8.0, 9.0, REJ, "circuit open", "client", "read", None, 1, 0.0),
]


def timeline(*changes):
    tl = Timeline()
    for t, up in changes:
        tl.mark(t, up)
    return tl


def service(name, tl, call_starts=(), call_routes=()):
    return ServiceStats(name, len(call_starts), 0, tl, {}, np.array(call_starts, dtype=float),
                        np.array([NAMES.index(r) for r in call_routes], dtype=np.uint16))


def make(rows=ROWS, *, until=10.0, services=None, **extra):
    """A Results of ``rows``; by default db (down [1, 3) and [7, 9), calls at 0, 2, 2, 5, 7, 8, 8) and
    cache (down [2.5, 7.5), no calls)."""
    columns = {
        "start": np.array([r[0] for r in rows], dtype=float), "end": np.array([r[1] for r in rows], dtype=float),
        "outcome": np.array([int(r[2]) for r in rows], dtype=np.uint8),
        "reason": np.array([NAMES.index(r[3]) for r in rows], dtype=np.uint16),
        "answered_by": np.array([NAMES.index(r[4]) for r in rows], dtype=np.uint16),
        "route": np.array([NAMES.index(r[5]) for r in rows], dtype=np.uint16),
        "key": np.array([KEYS.index(r[6]) for r in rows], dtype=np.uint32),
        "attempts": np.array([r[7] for r in rows], dtype=np.uint16),
        "age": np.array([r[8] for r in rows], dtype=np.float32)}
    if services is None:
        services = [service("db", timeline((1, False), (3, True), (7, False), (9, True)),
                            [0, 2, 2, 5, 7, 8, 8], ["read", "read", "read", "write", "read", "read", "read"]),
                    service("cache", timeline((2.5, False), (7.5, True)))]
    return Results(columns, seed=7, until=until, names=NAMES, keys=KEYS, services=services, **extra)


@pytest.fixture
def res():
    return make()


# --- Results: rates over a window that does not start at 0 ---------------------------------------------
def test_rates_divide_by_the_views_own_duration_until_minus_since(res):
    assert res.duration == 10.0
    assert res.throughput() == pytest.approx(3 / 10)          # rows 0, 1 (degraded), 4 answered
    assert res.arrival_rate() == pytest.approx(6 / 10)
    view = res.between(2.0, 8.0)                              # starts 2, 4, 5, 7 (8 is outside)
    assert (view.since, view.until, view.duration, len(view)) == (2.0, 8.0, 6.0, 4)
    assert view.throughput() == pytest.approx(2 / 6)
    assert view.arrival_rate() == pytest.approx(4 / 6)


def test_mean_in_system_clips_each_request_to_the_window(res):
    # whole run: latencies 1 + 3 + 6 + 1 + 0.5 + 1 = 12.5 over 10 s
    assert res.mean_in_system() == pytest.approx(1.25)
    # [2, 8): 3 (2..5) + 4 (4..8, cut at 8) + 1 + 0.5 = 8.5 over 6 s; a 0.5 s request counts 0.5
    assert res.between(2.0, 8.0).mean_in_system() == pytest.approx(8.5 / 6)


def test_between_takes_starts_in_a_half_open_window_inside_the_view(res):
    assert [r["start"] for r in map(res.between(2.0, 8.0).row, range(4))] == [2.0, 4.0, 5.0, 7.0]
    assert len(res.between(0.0, 10.0)) == 6
    assert len(res.between(0.0, 2.0)) == 1 and len(res.between(8.0, 10.0)) == 1
    view = res.between(2.0, 8.0)
    assert len(view.between(2.0, 8.0)) == 4
    for t0, t1, name in [(-0.1, 5.0, "t0"), (10.5, 11.0, "t0"), (5.0, 5.0, "t1"), (5.0, 4.0, "t1"), (5.0, 10.1, "t1")]:
        with pytest.raises(ValueError, match=f"^{name} must be"):
            res.between(t0, t1)
    for t0, t1 in [(1.9, 5.0), (3.0, 8.1)]:
        with pytest.raises(ValueError):
            view.between(t0, t1)


def test_availability_counts_degraded_answers_and_full_quality_does_not(res):
    assert res.request_availability() == pytest.approx(3 / 6)
    assert res.full_quality_availability() == pytest.approx(2 / 6)
    view = res.between(2.0, 5.0)                                 # rows 1 (degraded), 2 (unfinished)
    assert view.request_availability() == 0.5 and view.full_quality_availability() == 0.0
    empty = res.between(9.5, 10.0)
    for metric, what in [(empty.request_availability, "take availability of"),
                         (empty.full_quality_availability, "take availability of"),
                         (empty.attempts_per_request, "count attempts of"), (empty.quality, "take the quality of"),
                         (empty.summary, "summarise"), (empty.calls_per_request, "count calls for")]:
        with pytest.raises(ValueError, match=rf"^no requests in Results\(0 requests, \[9.5, 10\) s\) to {what}; "
                                             r"run longer or widen the view$"):
            metric()


def test_time_availability_covers_the_views_window(res):
    assert res.time_availability("db") == pytest.approx(0.6)             # down [1, 3) and [7, 9)
    assert res.time_availability("cache") == pytest.approx(0.5)
    assert res.time_availability("db", "cache") == pytest.approx(0.2)    # some down over [1, 9)
    assert res.time_availability("db", "cache", need="any") == pytest.approx(0.9)   # both: [2.5,3), [7,7.5)
    view = res.between(2.0, 8.0)
    assert view.time_availability("db") == pytest.approx(4 / 6)          # [2, 3) and [7, 8)
    assert view.time_availability("db", "cache", need="any") == pytest.approx(5 / 6)
    assert view.time_availability("db", "cache") == 0.0
    with pytest.raises(ValueError, match=r"services must name at least one of \['cache', 'db'\]"):
        res.time_availability()
    with pytest.raises(ValueError, match="service must be one of"):
        res.time_availability("nope")


# --- latency ---------------------------------------------------------------------------------------------
def test_latencies_and_hand_computed_percentiles(res):
    assert list(res.latency) == [1.0, 3.0, 6.0, 1.0, 0.5, 1.0]
    assert list(res.latencies()) == [1.0, 3.0, 0.5]
    assert list(res.latencies(successful=False)) == [1.0, 3.0, 6.0, 1.0, 0.5, 1.0]
    # answered, sorted 0.5, 1, 3: p95 sits at rank 1.9, 1 + 0.9 * 2
    assert res.latency_percentiles() == pytest.approx({50: 1.0, 95: 2.8, 99: 2.96})
    # all, sorted 0.5, 1, 1, 1, 3, 6: p95 at rank 4.75, 3 + 0.75 * 3
    assert res.latency_percentiles((50, 95, 100), successful=False) == pytest.approx({50: 1.0, 95: 5.25, 100: 6.0})
    assert res.mean_latency() == pytest.approx(1.5)
    assert res.mean_latency(successful=False) == pytest.approx(12.5 / 6)
    failed_only = res.between(5.0, 6.0)
    with pytest.raises(ValueError, match="no matching requests .* to take percentiles of"):
        failed_only.latency_percentiles()
    with pytest.raises(ValueError, match="no matching requests .* to average"):
        failed_only.mean_latency()
    assert failed_only.mean_latency(successful=False) == 1.0
    with pytest.raises(validate.WrongType, match="^successful must be"):
        res.latencies(successful="yes")
    with pytest.raises(validate.WrongType, match="^unanswered_only must be"):
        res.reasons(unanswered_only=1)
    with pytest.raises(ValueError, match=r"^ps\[0\] must be"):
        res.latency_percentiles([0])
    with pytest.raises(ValueError, match=r"^ps\[1\] must be"):
        res.staleness_percentiles([50, 101])


def test_share_slower_than_is_strictly_slower(res):
    assert res.share_slower_than(1.0) == pytest.approx(2 / 6)          # 3 and 6; the three 1s are not slower
    assert res.share_slower_than(0.0) == 1.0
    assert res.share_slower_than(6.0) == 0.0
    assert res.between(7.0, 8.0).share_slower_than(0.25) == 1.0        # one request, 0.5 s
    assert res.between(9.5, 10.0).share_slower_than(0.25) == 0.0       # none
    with pytest.raises(ValueError, match="^threshold must be"):
        res.share_slower_than(-1.0)


def test_calls_per_request_counts_the_calls_made_for_the_views_requests(res):
    assert res.calls_per_request() == pytest.approx(7 / 6)             # db 7, cache none
    assert res.calls_per_request("db") == pytest.approx(7 / 6)
    assert res.calls_per_request("cache") == 0.0
    assert res.between(2.0, 8.0).calls_per_request("db") == 1.0        # calls for 2, 2, 5, 7 (not 8)
    assert res.between(0.0, 2.0).calls_per_request("db") == 1.0        # the one at 0 (not 2)
    reads = res.only("read")                                           # 4 requests, 6 calls
    assert reads.calls_per_request() == pytest.approx(6 / 4)
    assert reads.between(2.0, 8.0).calls_per_request() == pytest.approx(3 / 2)
    assert res.only("write").calls_per_request() == pytest.approx(1 / 2)
    assert res.attempts_per_request() == pytest.approx(9 / 6)


# --- selection by route -------------------------------------------------------------------------------------
def test_only_keeps_the_named_routes_and_views_of_views_intersect(res):
    assert [len(res.only(*r)) for r in [("read",), ("write",), ("read", "write")]] == [4, 2, 6]
    assert len(res.only("read").only("write")) == 0
    assert len(res.only("read").only("read", "write")) == 4
    assert repr(res.only("read")) == "Results(4 requests, availability 75.00%, [0, 10) s, routes ['read'])"
    assert repr(res) == "Results(6 requests, availability 50.00%, [0, 10) s)"
    with_idle = make(routes=["idle"])
    assert with_idle.routes == ("idle", "read", "write")
    assert repr(with_idle.only("idle")) == "Results(0 requests, [0, 10) s, routes ['idle'])"
    with pytest.raises(ValueError, match=r"routes must name at least one of \['read', 'write'\]"):
        res.only()
    with pytest.raises(ValueError, match=r"routes must be among \['read', 'write'\], got 'idle'"):
        res.only("idle")
    with pytest.raises(validate.WrongType, match=r"got \['read'\]; give the names one by one, or unpack a list with "
                                                 r"a star: \(\*names\)$"):
        res.only(["read"])
    with pytest.raises(validate.WrongType, match=r"^routes must be a name \(a string\), one of \['read', 'write'\], "
                                                 r"got 3$"):
        res.only(3)


def test_rows_reasons_keys_and_breakdowns(res):
    assert res.row(1) == {"start": 2.0, "end": 5.0, "latency": 3.0, "outcome": "degraded", "reason": "stale",
                          "attempts": 2, "answered_by": "cache", "route": "read", "key": "k1", "age": 4.0}
    assert res.row(-1)["outcome"] == "rejected" and res.row(-1)["reason"] == "circuit open"
    assert (res.reason(0), res.reason(3), res.key(0), res.key(2)) == ("", "error", None, "k2")
    assert list(res.key_values) == [None, "k1", "k2", None, "k1", None]
    assert list(res.only("write").key_values) == ["k2", None]
    assert res.outcome_counts() == {"ok": 2, "degraded": 1, "failed": 1, "timed_out": 1, "rejected": 1}
    assert res.reasons() == Counter({"stale": 1, "unfinished": 1, "error": 1, "circuit open": 1})
    assert res.reasons(unanswered_only=True) == Counter({"unfinished": 1, "error": 1, "circuit open": 1})
    assert res.failed_by() == Counter({"": 1, "db": 1, "client": 1})
    assert res.answered_by() == Counter({"db": 2, "cache": 1})
    for lookup in (res.row, res.reason, res.key):
        for bad in (6, -7):
            with pytest.raises(IndexError, match=r"^i must be in \[-6, 5\], got "):
                lookup(bad)
    assert res.outcome_counts() == {"ok": 2, "degraded": 1, "failed": 1, "timed_out": 1, "rejected": 1}
    assert res.between(0.0, 2.0).outcome_counts() == {"ok": 1, "degraded": 0, "failed": 0, "timed_out": 0,
                                                      "rejected": 0}


def test_quality_shares_sum_to_one_and_ages_are_those_of_answers(res):
    assert res.quality() == pytest.approx({"full": 2 / 6, "stale": 1 / 6, "unanswered": 3 / 6})
    assert list(res.quality()) == ["full", "stale", "unanswered"]
    assert res.between(0.0, 2.0).quality() == {"full": 1.0, "unanswered": 0.0}
    assert list(res.ages()) == [0.0, 4.0, 0.0] and res.ages().dtype == np.float64
    # ages 0, 0, 4: p99 at rank 1.98, 0.98 * 4
    assert res.staleness_percentiles() == pytest.approx({50: 0.0, 99: 3.92, 100: 4.0})
    with pytest.raises(ValueError, match="to take staleness of"):
        res.between(5.0, 6.0).staleness_percentiles()
    assert make(ROWS[:1]).age.dtype == np.float32


def test_age_defaults_to_zero_when_the_columns_have_none(res):
    columns = {"start": res.start, "end": res.end, "outcome": res.outcome, "attempts": res.attempts,
               "reason": np.zeros(6, dtype=np.uint16), "answered_by": np.zeros(6, dtype=np.uint16),
               "route": np.full(6, 4, dtype=np.uint16), "key": np.zeros(6, dtype=np.uint32)}
    bare = Results(columns, seed=0, until=10.0, names=NAMES, keys=KEYS)
    assert list(bare.age) == [0.0] * 6 and bare.age.dtype == np.float32
    assert (bare.in_flight, bare.record_bytes, bare.faults, bare.services, bare.clients) == (0, 0, [], {}, {})
    assert (bare.seed, bare.since, bare.until, bare.routes) == (0, 0.0, 10.0, ("read",))


# --- time series -------------------------------------------------------------------------------------------
def test_timeseries_bins_by_start_time(res):
    ts = res.timeseries(2.5)       # bins [0, 2.5) [2.5, 5) [5, 7.5) [7.5, 10)
    assert list(ts["t"]) == [0.0, 2.5, 5.0, 7.5]
    assert list(ts["requests"]) == [2, 1, 2, 1]
    assert list(ts["availability"]) == [1.0, 0.0, 0.5, 0.0]
    assert list(ts["throughput"]) == pytest.approx([0.8, 0.0, 0.4, 0.0])
    assert ts["p99"][0] == pytest.approx(2.98) and ts["p99"][2] == 0.5      # 1 and 3; the 0.5 alone
    assert np.isnan(ts["p99"][1]) and np.isnan(ts["p99"][3])


def test_timeseries_of_a_view_starts_at_its_since_and_may_have_empty_bins(res):
    ts = res.between(2.0, 8.0).timeseries(4.0)   # bins [2, 6) and [6, 10)
    assert list(ts["t"]) == [2.0, 6.0]
    assert list(ts["requests"]) == [3, 1]
    assert list(ts["availability"]) == pytest.approx([1 / 3, 1.0])
    assert list(ts["throughput"]) == [0.25, 0.25]
    assert list(ts["p99"]) == [3.0, 0.5]
    gap = res.between(0.0, 10.0).timeseries(1.0)
    assert list(gap["requests"]) == [1, 0, 1, 0, 1, 1, 0, 1, 1, 0]
    assert np.isnan(gap["availability"][1]) and gap["availability"][0] == 1.0
    assert list(res.timeseries(10.0)["requests"]) == [6]
    for bad in (0.0, 10.5):
        with pytest.raises(ValueError, match="^bin_width must be"):
            res.timeseries(bad)


def test_a_start_that_rounds_onto_the_end_of_the_window_lands_in_the_last_bin():
    # 0.8999999999999999 / 0.3 rounds to 3.0: without the clamp it would be a fourth bin of three
    start = 0.8999999999999999
    assert int(start / 0.3) == 3 and bin_count(0.9, 0.3) == 3
    one = make([(start, 0.9, OK, "", "db", "read", None, 1, 0.0)], until=0.9)
    assert list(one.timeseries(0.3)["requests"]) == [0, 0, 1]
    answered, full = windows.quality_series(one, 0.3)["answered"], windows.quality_shares_series(one, 0.3)["full"]
    assert len(answered) == len(full) == 3 and answered[2] == full[2] == 1.0


def test_summary_gives_the_headline_numbers(res):
    assert res.summary() == pytest.approx({"requests": 6, "availability": 0.5, "p50": 1.0, "p95": 2.8,
                                           "p99": 2.96, "calls_per_request": 7 / 6})
    assert res.between(5.0, 6.0).summary() == {"requests": 1, "availability": 0.0, "calls_per_request": 1.0}


# --- bins, percentiles, results checks ------------------------------------------------------------------
def test_bin_count_rounds_up_and_stops_at_max_bins():
    assert bin_count(10.0, 3.0) == 4 and bin_count(10.0, 2.5) == 4 and bin_count(10.0, 20.0) == 1
    assert bin_count(MAX_BINS, 1.0) == MAX_BINS
    with pytest.raises(ValueError, match=r"^step must give at most 1,000,000 bins: 0\.5 s over this 1e\+06 s "
                                         r"window gives 2,000,000; use step >= 1$"):
        bin_count(1e6, 0.5, name="step")
    with pytest.raises(ValueError, match=r"gives 1,000,001; use bin_width >= 1\.01$"):
        bin_count(1_000_001.0, 1.0)
    with pytest.raises(ValueError, match=r"gives 1e\+24; use bin_width >= 1e-06$"):
        bin_count(1.0, 1e-24)
    with pytest.raises(ValueError, match=r"gives more than 1\.8e308; use bin_width >= 1e-06$"):
        bin_count(1.0, 5e-324)
    with pytest.raises(ValueError, match=r"window gives 1e\+18; use bin_width >= 1e\+12$"):
        bin_count(1e18, 1.0)                                       # 10**18 bins exactly: no longer in full
    # the least width to 3 figures, 1.0000000050, rounds to 1 (1,000,001 bins): one step more, 1.01
    with pytest.raises(ValueError, match=r"gives 2,000,001; use bin_width >= 1\.01$"):
        bin_count(1_000_000.005, 0.5)
    with pytest.raises(ValueError, match=r"gives 1,230,001; use bin_width >= 1\.24e-05$"):
        bin_count(12.30001, 1e-5)


def test_percentile_list_keeps_what_was_given_and_checks_each():
    assert percentile_list("ps", (50, 99)) == [50, 99]
    assert percentile_list("ps", {50: "x"}) == [50]
    assert percentile_list("ps", [100]) == [100] and percentile_list("ps", [0.5]) == [0.5]
    with pytest.raises(ValueError, match=r"ps must hold at least one percentile in \(0, 100\], got none"):
        percentile_list("ps", [])
    for bad in ([0], [100.5], [50, -1]):
        with pytest.raises(ValueError, match=r"ps\[\d\]"):
            percentile_list("ps", bad)
    for bad in ("50", b"5", 50):
        with pytest.raises(validate.WrongType, match=rf"^ps must be a list of percentiles in \(0, 100\], e\.g\. "
                                                     rf"\(50, 99\), got {validate.show(bad)}$"):
            percentile_list("ps", bad)


def test_as_results_says_where_a_results_comes_from(res):
    assert as_results(res) is res
    holder = types.SimpleNamespace(results=res)
    with pytest.raises(validate.WrongType, match=r"^results must be a Results: this SimpleNamespace holds one, "
                                                 r"pass its \.results; got"):
        as_results(holder)
    world = types.SimpleNamespace(run=None, env=None)
    with pytest.raises(validate.WrongType, match=r"^r must be a Results: run the world first"):
        as_results(world, "r")
    for other in (5, types.SimpleNamespace(run=None), types.SimpleNamespace(env=None)):
        with pytest.raises(validate.WrongType, match=r"^results must be a Results \(what world.run\(until=\.\.\.\) "
                                                     rf"returns\); got {re.escape(validate.show(other))}$"):
            as_results(other)


def test_lookups_by_name_refuse_unknown_names(res):
    cache = CacheStats("c", hits=1, stale=2, negative=3, coalesced=4, misses=10, fetches=0, evictions=0)
    client = ClientStats("api", 4, 6, 0.0, {}, 0, 0, (), ())
    jobs = JobStats("q", 5, 0, 3, 1, 0, 0, 4, np.array([1.0, 2.0, 4.0]), np.array([3.0, 3.0, 9.0]),
                    np.empty(0), np.empty(0))
    full = make(caches=[cache], clients=[client], jobs=[jobs])
    assert full.cache("c") is cache and full.client("api") is client and full.jobs("q") is jobs
    for lookup, kind in [(full.cache, "cache"), (full.client, "client"), (full.jobs, "job queue")]:
        with pytest.raises(ValueError, match=f"^{kind} must be one of"):
            lookup("nope")


def test_stats_properties():
    cache = CacheStats("c", hits=1, stale=2, negative=3, coalesced=4, misses=10, fetches=0, evictions=0)
    assert (cache.lookups, cache.hit_ratio, cache.stale_if_error) == (20, 6 / 20, 0)
    assert CacheStats("c", 0, 0, 0, 0, 0, 0, 0).hit_ratio == 0.0
    assert ClientStats("api", 4, 6, 0.0, {}, 0, 0, (), ()).amplification == 1.5
    assert ClientStats("api", 0, 0, 0.0, {}, 0, 0, (), ()).amplification == 0.0
    jobs = JobStats("q", 9, 0, 3, 2, 1, 1, 4, np.array([1.0, 2.0, 4.0]), np.array([3.0, 3.0, 9.0]),
                    np.empty(0), np.empty(0))
    assert jobs.lost == 9 - 3 - 2 - 1 - 1
    assert list(jobs.time_to_notify) == [2.0, 1.0, 5.0]
    assert len(JobStats("q", 0, 0, 0, 0, 0, 0, 0, *[np.empty(0)] * 4).died_at) == 0


HISTORY = ((0.0, "closed"), (3.0, "open"), (5.0, "half-open"), (5.5, "closed"))


def test_breaker_state_at_reads_the_state_in_force_at_each_time():
    client = ClientStats("api", 1, 1, 0.0, {}, 0, 0, HISTORY, ((3.0, "failure rate"),))
    times = [-1.0, 0.0, 2.9, 3.0, 4.0, 5.0, 5.2, 5.5, 100.0]
    assert list(client.breaker_state_at(times)) == [0, 0, 0, 2, 2, 1, 1, 0, 0]
    assert int(client.breaker_state_at(3.0)) == 2
    assert list(client.breaker_state_at([Fraction(7, 2), 10 ** 30])) == [2, 0]
    assert client.breaker_state_at([[Fraction(7, 2), 10 ** 30]]).tolist() == [[2, 0]]      # the shape kept
    assert list(client.breaker_state_at(np.array([5, 6], dtype=np.int64))) == [1, 0]
    assert client.breaker_state_at([]).size == 0
    late = ClientStats("api", 1, 1, 0.0, {}, 0, 0, ((1.0, "open"), (2.0, "closed")), ())
    assert list(late.breaker_state_at([0.5, 1.0])) == [2, 2]      # before its first change: its first state


def test_breaker_state_at_refuses_what_is_not_a_finite_time():
    client = ClientStats("api", 1, 1, 0.0, {}, 0, 0, HISTORY, ())
    with pytest.raises(ValueError, match="^client 'api' has no circuit breaker$"):
        ClientStats("api", 1, 1, 0.0, {}, 0, 0, (), ()).breaker_state_at([1.0])
    for bad in ([math.nan], [math.inf], [10 ** 400], [-10 ** 400]):
        with pytest.raises(ValueError, match=r"^times must be finite, got array\(\["):
            client.breaker_state_at(bad)
    for bad in ("1", b"1", ["1"], [[1.0], [1.0, 2.0]], [None], {1: 2}):
        with pytest.raises(validate.WrongType, match=r"^times must be a number or a list \(or array\) of numbers, in "
                                                     r"seconds, got \S"):
            client.breaker_state_at(bad)
    with pytest.raises(validate.WrongType, match=r"got \['1'\]$"):
        client.breaker_state_at(["1"])


# --- windows -----------------------------------------------------------------------------------------------
def test_availability_between_takes_the_requests_that_started_in_a_half_open_window(res):
    assert windows.availability_between(res, 2.0, 8.0) == 0.5         # rows 1, 4 of 1, 2, 3, 4
    assert windows.availability_between(res, 8.0, 9.0) == 0.0         # the rejection at 8
    assert math.isnan(windows.availability_between(res, 1.0, 2.0))            # none started there
    assert windows.availability_between(res, -5.0, 0.5) == 1.0        # reaches before the run
    assert math.isnan(windows.availability_between(res, 20.0, 30.0))
    assert windows.availability_between(res, 0.0, 2.0) == 1.0 and windows.availability_between(res, 1.5, 2.5) == 1.0


def test_a_window_must_be_finite_and_not_empty(res):
    with pytest.raises(ValueError, match=r"^hi must be > lo \(2\.0\): the window \[lo, hi\) would be empty, "
                                         r"got hi=2\.0$"):
        windows.availability_between(res, 2.0, 2.0)
    with pytest.raises(ValueError, match=r"hi=1\.0$"):
        windows.availability_between(res, 2.0, 1.0)
    with pytest.raises(ValueError, match=r"; for 'to the end of the run' pass results\.until$"):
        windows.availability_between(res, 0.0, math.inf)
    with pytest.raises(ValueError, match=r"; for 'from the start of the run' pass results\.since$"):
        windows.time_down(Timeline(), -math.inf, 1.0)
    with pytest.raises(ValueError, match=r"^lo must be a number \(finite\), got nan$"):
        windows.availability_between(res, math.nan, 1.0)
    with pytest.raises(ValueError, match=r"^hi must be a number \(finite\), got nan$"):
        windows.availability_between(res, 0.0, math.nan)
    with pytest.raises(ValueError, match=r"^hi must be a number \(finite\), got inf; for 'to the end"):
        windows.time_down(Timeline(), 0.0, math.inf)
    with pytest.raises(validate.WrongType):
        windows.availability_between(res, "0", 1.0)
    with pytest.raises(validate.WrongType, match="^results must be a Results"):
        windows.availability_between([], 0.0, 1.0)


def test_quality_series_gives_the_answered_and_full_shares_per_bin(res):
    qs = windows.quality_series(res, 2.5)
    assert list(qs) == ["t", "answered", "full_quality"]
    assert list(qs["t"]) == [0.0, 2.5, 5.0, 7.5]
    assert list(qs["answered"]) == [1.0, 0.0, 0.5, 0.0]
    assert list(qs["full_quality"]) == [0.5, 0.0, 0.5, 0.0]
    view = windows.quality_series(res.between(2.0, 8.0), 4.0)
    assert list(view["t"]) == [2.0, 6.0]
    assert list(view["answered"]) == pytest.approx([1 / 3, 1.0]) and list(view["full_quality"]) == [0.0, 1.0]
    gaps = windows.quality_series(res, 1.0)
    assert np.isnan(gaps["answered"][1]) and np.isnan(gaps["full_quality"][1]) and gaps["answered"][0] == 1.0
    assert list(windows.quality_series(res, 20.0)["answered"]) == [0.5]
    with pytest.raises(ValueError):
        windows.quality_series(res, 0.0)


def test_quality_shares_series_splits_each_bin_by_kind_of_answer(res):
    qs = windows.quality_shares_series(res, 2.5)
    assert list(qs) == ["t", "full", "stale", "unanswered"]
    assert list(qs["t"]) == [0.0, 2.5, 5.0, 7.5]
    assert list(qs["full"]) == [0.5, 0.0, 0.5, 0.0]
    assert list(qs["stale"]) == [0.5, 0.0, 0.0, 0.0]
    assert list(qs["unanswered"]) == [0.0, 1.0, 0.5, 1.0]
    view = windows.quality_shares_series(res.between(2.0, 8.0), 4.0)
    assert list(view["t"]) == [2.0, 6.0] and list(view["stale"]) == pytest.approx([1 / 3, 0.0])
    gaps = windows.quality_shares_series(res, 1.0)
    assert all(np.isnan(gaps[k][1]) for k in ("full", "stale", "unanswered"))
    empty = windows.quality_shares_series(res.between(9.5, 10.0), 0.25)
    assert list(empty) == ["t", "full", "unanswered"] and list(empty["t"]) == [9.5, 9.75]
    assert np.isnan(empty["full"]).all()
    with pytest.raises(ValueError):
        windows.quality_shares_series(res, -1.0)


def test_empty_windows_and_bins_give_nan_without_a_warning(res):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(windows.availability_between(res, 20.0, 30.0))
        assert np.isnan(windows.quality_series(res, 1.0)["answered"][1])
        assert np.isnan(windows.quality_shares_series(res, 1.0)["full"][1])
        assert np.isnan(res.timeseries(1.0)["availability"][1])


@pytest.mark.parametrize("series", [windows.quality_series, windows.quality_shares_series])
def test_the_series_name_a_bad_bin_width(res, series):
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="^bin_width must be"):
            series(res, bad)
    with pytest.raises(ValueError, match="^bin_width must give at most 1,000,000 bins"):
        series(res, 1e-6)


def test_quality_shares_series_gives_each_degradation_reason_its_own_share():
    rows = [(0.0, 1.0, DEG, "stale", "cache", "read", None, 1, 0.0),
            (1.0, 2.0, DEG, "error", "cache", "read", None, 1, 0.0),     # a degradation named "error"
            (2.0, 3.0, FAIL, "error", "db", "read", None, 1, 0.0),
            (3.0, 4.0, DEG, "stale", "cache", "read", None, 1, 0.0)]
    qs = windows.quality_shares_series(make(rows, until=4.0), 2.0)
    assert list(qs["stale"]) == [0.5, 0.5] and list(qs["error"]) == [0.5, 0.0]
    assert list(qs["unanswered"]) == [0.0, 0.5] and list(qs["full"]) == [0.0, 0.0]


def test_time_down_counts_the_down_time_inside_the_window():
    tl = timeline((1, False), (3, True), (7, False), (9, True))
    assert windows.time_down(tl, 2.0, 8.0) == 2.0
    assert windows.time_down(tl, 0.0, 10.0) == 4.0
    assert windows.time_down(tl, 3.0, 7.0) == 0.0               # touches both spans, inside neither
    assert windows.time_down(tl, 8.0, 20.0) == 1.0
    assert windows.time_down(tl, 1.5, 2.5) == 1.0
    assert windows.time_down(timeline((5, False)), 0.0, 8.0) == 3.0      # still down: up to hi
    assert windows.time_down(timeline((5, False)), 6.0, 7.0) == 1.0
    with pytest.raises(validate.WrongType, match=r"^timeline must be a Timeline, e.g. results.services\['db'\]"
                                                 r"\.timeline, got \[\(1, 3\)\]$"):
        windows.time_down([(1, 3)], 0.0, 1.0)


def test_batch_means_cuts_the_views_window_into_equal_slices(res):
    # db down [1, 3) and [7, 9); slices of 2 s: 0.5, 0.5, 1, 0.5, 0.5 -> sd sqrt(0.05), se 0.1
    assert windows.batch_means(res, "db", batches=5) == pytest.approx((0.6, 0.1))
    assert windows.batch_means(res, "db", batches=2) == pytest.approx((0.6, 0.0))
    # [2, 8) in slices of 2 s: 0.5, 1, 0.5 -> se 1/6
    assert windows.batch_means(res.between(2.0, 8.0), "db", batches=3) == pytest.approx((2 / 3, 1 / 6))
    # both down [2.5, 3) and [7, 7.5): slices of 2.5 s at 1, 0.8, 0.8, 1
    assert windows.batch_means(res, "db", "cache", need="any", batches=4) == pytest.approx((0.9, 0.1 / math.sqrt(3)))
    assert windows.batch_means(res, "db", "cache", batches=2)[0] == pytest.approx(0.2)
    # 20 slices by default: 8 of the 20 half-seconds down, so sd sqrt(20 / 19 * 0.4 * 0.6)
    assert windows.batch_means(res, "db") == pytest.approx((0.6, math.sqrt(0.24 / 19)))
    never = make(services=[service("s", Timeline())])
    assert windows.batch_means(never, "s") == (1.0, 0.0)


def test_batch_means_with_many_down_spans_works_in_pieces():
    # down [2k, 2k + 1) for k < 2000 over 4000 s, 10,000 slices of 0.4 s: 0, 0, 0.5, 1, 1 over and over
    changes = [c for k in range(2000) for c in ((2.0 * k, False), (2.0 * k + 1, True))]
    many = make(services=[service("s", timeline(*changes))], until=4000.0)
    mean, se = windows.batch_means(many, "s", batches=10_000)
    assert mean == pytest.approx(0.5) and se == pytest.approx(math.sqrt(2000 / 9999) / 100)


def test_batch_means_refuses_bad_settings(res):
    assert windows.batch_means(res, "db", batches=windows.MAX_BATCHES)[0] == pytest.approx(0.6)
    for bad in (1, windows.MAX_BATCHES + 1):
        with pytest.raises(ValueError, match="^batches must be"):
            windows.batch_means(res, "db", batches=bad)
    with pytest.raises(ValueError, match=r"^services must name at least one of \['cache', 'db'\]$"):
        windows.batch_means(res)
    with pytest.raises(ValueError, match="^service must be one of"):
        windows.batch_means(res, "nope")
    with pytest.raises(validate.WrongType):
        windows.batch_means(None, "db")


# --- alerting ----------------------------------------------------------------------------------------------
class FiresOnBad:
    """A rule that fires while its last evaluation saw a bad request; it keeps what it was told."""

    def __init__(self):
        self.told, self.bad, self.asked = [], 0, []

    def record_counts(self, t, good, bad):
        self.told.append((t, good, bad))
        self.bad = bad

    def firing(self, t):
        self.asked.append(t)
        return self.bad > 0


def test_firing_spans_replays_requests_by_end_time(res):
    # ends in order: 1 ok, 5 ok, 6 bad, 7.5 ok, 9 bad, 10 bad
    rule = FiresOnBad()
    assert alerting.firing_spans(res, rule, every=2.0) == [(6.0, 8.0), (10.0, 10.0)]
    assert rule.told == [(2.0, 1, 0), (4.0, 0, 0), (6.0, 1, 1), (8.0, 1, 0), (10.0, 0, 2)]
    assert rule.asked == [2.0, 4.0, 6.0, 8.0, 10.0]
    rule = FiresOnBad()
    assert alerting.firing_spans(res, rule, every=3.0) == [(6.0, 10.0)]       # still firing at the end
    assert rule.told == [(3.0, 1, 0), (6.0, 1, 1), (9.0, 1, 1), (10.0, 0, 1)]  # the last one at until
    rule = FiresOnBad()
    assert alerting.firing_spans(res.between(2.0, 8.0), rule, every=2.5) == [(7.0, 8.0)]
    assert rule.told == [(4.5, 0, 0), (7.0, 1, 1), (8.0, 1, 0)]
    rule = FiresOnBad()
    assert alerting.firing_spans(res, rule) == [(10.0, 10.0)]             # every 10 s by default
    assert rule.told == [(10.0, 3, 3)]
    rule = FiresOnBad()
    assert alerting.firing_spans(make(until=30.0), rule) == [(10.0, 20.0)]
    assert rule.told == [(10.0, 3, 3), (20.0, 0, 0), (30.0, 0, 0)]


def test_firing_spans_refuses_what_is_not_a_rule_and_too_many_evaluations(res):
    with pytest.raises(validate.WrongType, match=r"^rule must be an alert rule \(ThresholdRule, BurnRateRule\), got 5$"):
        alerting.firing_spans(res, 5)
    no_firing = types.SimpleNamespace(record_counts=lambda *a: None)
    with pytest.raises(validate.WrongType, match="^rule must be an alert rule"):
        alerting.firing_spans(res, no_firing)
    half = types.SimpleNamespace(record_counts=5, firing=lambda t: False)
    with pytest.raises(validate.WrongType, match="^rule must be an alert rule"):
        alerting.firing_spans(res, half)
    other_half = types.SimpleNamespace(record_counts=lambda *a: None, firing=True)
    with pytest.raises(validate.WrongType, match="^rule must be an alert rule"):
        alerting.firing_spans(res, other_half)
    with pytest.raises(ValueError, match=r"^every must be at least 1e-06 s for this run, got 9\.9e-07$"):
        alerting.firing_spans(res, FiresOnBad(), every=9.9e-7)
    with pytest.raises(ValueError, match="^every must be"):
        alerting.firing_spans(res, FiresOnBad(), every=0.0)


def test_alert_quality_compares_alerts_with_incidents():
    q = alerting.alert_quality([(10, 12), (6, 8)], [(5, 7), (9, 9.5), (11, 20)])
    assert (q.alerts, q.incidents, q.precision, q.recall) == (2, 3, 1.0, pytest.approx(2 / 3))
    assert q.detection_times == (1.0, 0.0) and q.reset_times == (1.0, 0.0) and q.mean_detection == 0.5
    # one incident caught by two alerts: detected by the first, reset by the last
    q = alerting.alert_quality([(6, 8), (10, 12)], [(5, 11)])
    assert (q.detection_times, q.reset_times) == ((1.0,), (1.0,))
    q = alerting.alert_quality([(1, 2), (6, 8)], [(5, 7)])
    assert (q.precision, q.recall) == (0.5, 1.0)


def test_spans_that_only_touch_do_not_overlap():
    q = alerting.alert_quality([(7, 8), (3, 5)], [(5, 7)])
    assert (q.precision, q.recall, q.detection_times) == (0.0, 0.0, ())
    assert math.isnan(q.mean_detection)
    q = alerting.alert_quality([(6.999, 8)], [(5, 7)])
    assert q.precision == 1.0 and q.detection_times == (pytest.approx(1.999),)


def test_alert_quality_without_alerts_or_incidents_is_nan():
    q = alerting.alert_quality([], [(1, 2)])
    assert math.isnan(q.precision) and q.recall == 0.0 and q.alerts == 0
    q = alerting.alert_quality([(1, 2)], [])
    assert q.precision == 0.0 and math.isnan(q.recall) and q.incidents == 0
    with pytest.raises(validate.WrongType, match=r"^alerts must be a list of \(start, end\) pairs, got \(1, 2, 3\)$"):
        alerting.alert_quality([(1, 2, 3)], [])
    with pytest.raises(validate.WrongType, match=r"^incidents must be a list of \(start, end\) pairs"):
        alerting.alert_quality([], [("a", 2)])
    with pytest.raises(ValueError, match=r"^alerts: a span must end after it starts, got \(3, 3\)$"):
        alerting.alert_quality([(3, 3)], [])
    assert alerting.alert_quality([(3, 3.5)], []).alerts == 1


# --- the write checker ---------------------------------------------------------------------------------------
def test_check_writes_classifies_every_write():
    c = checker.check_writes(attempted=[1, 2, 3, 4, 5], acknowledged=[1, 2], committed=[1, 2, 3, 4],
                             effects=[1, 1, 3, 5])
    assert (c.attempted, c.acknowledged, c.committed, c.effects) == (5, 2, 4, 4)
    assert (c.lost, c.unexpected, c.duplicated, c.recovered) == ((2, 4), (5,), {1: 2}, (3,))
    assert not c.valid and not c.exactly_once
    assert str(c) == ("5 attempted, 2 acknowledged, 4 committed, 4 effects: 2 lost, 1 unexpected, "
                      "1 duplicated, 1 recovered")


def test_valid_and_exactly_once():
    dup = checker.check_writes(attempted=[1, 2], acknowledged=[1, 2], committed=[1, 2], effects=[1, 2, 2])
    assert dup.valid and not dup.exactly_once and dup.duplicated == {2: 2}
    once = checker.check_writes(attempted=[1, 2], acknowledged=[1], committed=[1, 2], effects=[2, 1])
    assert once.valid and once.exactly_once and once.recovered == (2,)
    only_lost = checker.check_writes(attempted=[1], acknowledged=[1], committed=[], effects=[])
    assert only_lost.lost == (1,) and not only_lost.valid          # acknowledged, never committed
    only_unexpected = checker.check_writes(attempted=[], acknowledged=[], committed=[], effects=[7])
    assert only_unexpected.unexpected == (7,) and not only_unexpected.valid


def test_check_writes_sorts_ids_by_their_repr_and_refuses_bad_lists():
    c = checker.check_writes(attempted=[9, 10, "b"], acknowledged=[], committed=[9, 10, "b"],
                             effects=[9, 9, 10, 10, 10])
    assert c.lost == ("b",) and c.recovered == (10, 9) and list(c.duplicated.items()) == [(10, 3), (9, 2)]
    c = checker.check_writes(attempted=[], acknowledged=[], committed=[9, 10, 11], effects=[11, 12, 20, 3])
    assert c.lost == (10, 9) and c.unexpected == (12, 20, 3)          # "10" < "9", "20" < "3"
    with pytest.raises(ValueError, match=r"not attempted: \[10, 9\]$"):
        checker.check_writes(attempted=[], acknowledged=[9, 10], committed=[], effects=[])
    with pytest.raises(ValueError, match=r"^acknowledged must be among the attempted writes; not attempted: "
                                         r"\[1, 2, 3, 4, 5\]$"):
        checker.check_writes(attempted=[], acknowledged=range(1, 8), committed=[], effects=[])


@pytest.mark.parametrize("name", ["attempted", "acknowledged", "committed", "effects"])
def test_check_writes_names_the_list_that_is_not_a_list_of_ids(name):
    for bad in ("abc", b"ab", 5, None):
        lists = dict.fromkeys(("attempted", "acknowledged", "committed", "effects"), ())
        with pytest.raises(TypeError, match=f"^{name} must be a list of write ids, got {bad!r}$".replace("'", ".")):
            checker.check_writes(**{**lists, name: bad})


# --- sweeps: the intervals ---------------------------------------------------------------------------------
#: Two-sided Student-t quantiles (level, df) -> t, from numerical integration of the t density (the
#: printed tables: 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262).
T_TABLE = {(0.95, 1): 12.706204736171681, (0.95, 2): 4.302652729749811, (0.95, 3): 3.182446305283711,
           (0.95, 4): 2.7764451051978023, (0.95, 5): 2.570581835636167, (0.95, 6): 2.446911851144927,
           (0.95, 7): 2.3646242515927822, (0.95, 8): 2.306004135204101, (0.95, 9): 2.2621571627982133,
           (0.9, 7): 1.89457860508996, (0.99, 6): 3.707428021325221, (0.5, 3): 0.7648923284043438,
           (0.95, 200): 1.9718962236338151}


@pytest.mark.parametrize("level, df", sorted(T_TABLE))
def test_t_quantile_is_exact_up_to_200_degrees_of_freedom(level, df):
    assert sweeps.t_quantile(level, df) == pytest.approx(T_TABLE[level, df], rel=1e-10)


def test_t_quantile_for_one_degree_of_freedom_is_the_cauchy_quantile():
    assert sweeps.t_quantile(0.5, 1) == pytest.approx(1.0, rel=1e-12)          # tan(pi / 4)
    assert sweeps.t_quantile(0.2, 1) == pytest.approx(math.tan(0.1 * math.pi), rel=1e-12)


def test_t_quantile_above_200_degrees_of_freedom_is_the_cornish_fisher_expansion():
    # the exact values are 1.9718365068 (201) and 1.9623390808 (1000): the expansion is 3.2e-7 and
    # 2.6e-9 below them
    assert sweeps.t_quantile(0.95, 201) == pytest.approx(1.9718361910672622, abs=1e-12)
    assert sweeps.t_quantile(0.95, 1000) == pytest.approx(1.9623390808257812, abs=5e-9)
    assert sweeps.t_quantile(0.99, 201) == pytest.approx(2.600509919084124, abs=2e-6)
    assert sweeps.t_quantile(0.95, 10 ** 9) == pytest.approx(sweeps.z_quantile(0.95), abs=1e-8)


def test_z_quantile_and_the_level_it_accepts():
    assert sweeps.z_quantile(0.95) == pytest.approx(1.959963984540054, rel=1e-12)
    assert sweeps.z_quantile(0.5) == pytest.approx(0.6744897501960817, rel=1e-12)
    assert sweeps.z_quantile(0.999) == pytest.approx(3.2905267314919255, rel=1e-12)
    with pytest.raises(ValueError, match=r"^level must be a confidence level in \(0, 1\), e.g. 0.95, got 1 "):
        sweeps.z_quantile(1.0)
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="^level must be"):
            sweeps.z_quantile(bad)
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="^df must be"):
            sweeps.t_quantile(0.95, bad)
    with pytest.raises(ValueError, match="^level must be"):
        sweeps.t_quantile(1.0, 3)


def test_mean_interval_by_t_and_normal():
    sd = math.sqrt(5 / 3)                                      # of 1, 2, 3, 4
    mean, low, high = sweeps.mean_interval([1, 2, 3, 4])
    assert (mean, high - mean, mean - low) == pytest.approx((2.5, T_TABLE[0.95, 3] * sd / 2, T_TABLE[0.95, 3] * sd / 2))
    mean, low, high = sweeps.mean_interval([1, 2, 3, 4], method="normal")
    assert (low, high) == pytest.approx((2.5 - 1.959963984540054 * sd / 2, 2.5 + 1.959963984540054 * sd / 2))
    assert sweeps.mean_interval([4, math.nan, 1, 3, 2], level=0.9) == pytest.approx(
        (2.5, 2.5 - 2.3533634348018264 * sd / 2, 2.5 + 2.3533634348018264 * sd / 2))
    assert sweeps.mean_interval([0.5, 1.5]) == pytest.approx((1.0, 1 - T_TABLE[0.95, 1] / 2, 1 + T_TABLE[0.95, 1] / 2))
    assert sweeps.mean_interval([7, 7, 7]) == (7.0, 7.0, 7.0)


def test_mean_interval_needs_two_values_for_bounds():
    one = sweeps.mean_interval([3.0, math.nan])
    assert one[0] == 3.0 and math.isnan(one[1]) and math.isnan(one[2])
    assert all(math.isnan(v) for v in sweeps.mean_interval([]))
    assert all(math.isnan(v) for v in sweeps.mean_interval([math.nan]))
    assert sweeps.mean_interval([3.0], method="bootstrap")[0] == 3.0
    with pytest.raises(ValueError, match="^method must be one of"):
        sweeps.mean_interval([1, 2], method="wilson")
    with pytest.raises(ValueError, match="^level must be"):
        sweeps.mean_interval([1, 2], level=1.0)


def test_the_bootstrap_is_deterministic_and_brackets_the_mean():
    # 2,000 resamples from seed 0 (so these figures are fixed); the 95% percentile interval of the
    # mean of 1..10 is about 5.5 +- 1.96 * 0.91 (the resampled means' sd, 2.87 / sqrt(10))
    assert sweeps.mean_interval(range(1, 11), method="bootstrap") == (5.5, 3.7, 7.3)
    assert sweeps.mean_interval(range(1, 11), method="bootstrap", level=0.5) == (5.5, 4.9, 6.1)
    assert sweeps.mean_interval([2.0, 2.0, 2.0], method="bootstrap") == (2.0, 2.0, 2.0)
    # 2,001 values: the resamples are drawn in three pieces of at most 2,000,000 indices
    x = np.arange(2001.0) ** 0.5
    assert sweeps.mean_interval(x, method="bootstrap") == pytest.approx(
        (29.81041135694123, 29.370396844286123, 30.275537923850866), rel=1e-13)


def test_wilson_interval_on_known_cases():
    assert sweeps.wilson_interval(3, 10) == pytest.approx((0.3, 0.10779126740630104, 0.6032218525388545), rel=1e-12)
    assert sweeps.wilson_interval(3, 10, level=0.9) == pytest.approx((0.3, 0.12687658390319792, 0.5583002041301648),
                                                                     rel=1e-12)
    assert sweeps.wilson_interval(2, 3) == pytest.approx((2 / 3, 0.20765960080204782, 0.9385080552796038), rel=1e-12)
    # none and all: the bound at the edge is exactly 0 or 1, the other one is not
    assert sweeps.wilson_interval(0, 3) == (0.0, 0.0, pytest.approx(0.5614970317550454, rel=1e-12))
    assert sweeps.wilson_interval(3, 3) == (1.0, pytest.approx(1 - 0.5614970317550454, rel=1e-12), 1.0)
    assert sweeps.wilson_interval(1, 1) == (1.0, pytest.approx(0.20654931437723745, rel=1e-12), 1.0)
    assert all(math.isnan(v) for v in sweeps.wilson_interval(0, 0))
    for k, n in [(4, 3), (-1, 3), (0, -1), (1.5, 3)]:
        with pytest.raises((ValueError, TypeError)):
            sweeps.wilson_interval(k, n)


# --- sweeps: the table and its summaries --------------------------------------------------------------------
POINTS = [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
V = {0: [1.0, 2.0, 3.0], 1: [2.0, 4.0, 6.0], 2: [0.5, math.nan, 1.5], 3: [10.0, 10.0, 10.0]}
HIT = {0: [True, False, True], 1: [False] * 3, 2: [True] * 3, 3: [True, True, False]}


def table(**kw):
    """Four points of (a, b), three replicates each (seed 100 + 3 * point + replicate), given backwards."""
    rows = [(p, r, 100 + 3 * p + r, (V[p][r], HIT[p][r])) for p in range(4) for r in range(3)]
    return sweeps.SweepTable(("a", "b"), POINTS, rows[::-1], metrics=("v", "hit"), **kw)


def test_rows_come_in_the_grids_order_whatever_order_they_were_given():
    t = table()
    assert len(t) == t.total == 12 and t.complete
    assert t.columns == ("a", "b", "replicate", "seed", "v", "hit")
    assert t.rows[4] == {"a": 1, "b": "y", "replicate": 1, "seed": 104, "v": 4.0, "hit": False}
    assert [r["seed"] for r in t] == list(range(100, 112))
    assert list(t.column("replicate")) == [0, 1, 2] * 4
    seeds = t.column("seed")
    assert seeds.dtype == np.int64 and list(seeds) == list(range(100, 112))


def test_columns_keep_their_kind():
    t = table()
    a, b, v, hit = t.column("a"), t.column("b"), t.column("v"), t.column("hit")
    assert a.dtype.kind == "i" and list(a) == [1] * 6 + [2] * 6
    assert b.dtype == object and list(b[:4]) == ["x", "x", "x", "y"]
    assert v.dtype == float and np.isnan(v[7]) and v[3] == 2.0
    assert hit.dtype == bool and list(hit[:3]) == [True, False, True]
    mixed = sweeps.SweepTable(("a",), [{"a": 1}], [(0, 0, 1, (1,)), (0, 1, 2, (2.5,))], metrics=("m",))
    assert mixed.column("m").dtype == float and list(mixed.column("m")) == [1.0, 2.5]
    ints = sweeps.SweepTable(("a",), [{"a": 1}], [(0, 0, 1, (True,)), (0, 1, 2, (2,))], metrics=("m",))
    assert ints.column("m").dtype == object             # a bool beside an int is neither kind
    empty = sweeps.SweepTable(("a",), [{"a": 1}], [], metrics=("m",))
    assert empty.column("m").size == 0 and not empty.is_share("m")
    with pytest.raises(ValueError, match="^name must be one of"):
        t.column("nope")


def test_is_share_values_and_where():
    t = table()
    assert t.is_share("hit") and not t.is_share("v")
    assert list(t.values("v", a=1, b="y")) == [2.0, 4.0, 6.0]
    only_a1 = t.where(a=1)
    assert (len(only_a1), only_a1.total, only_a1.points) == (6, 6, POINTS[:2])
    assert [r["seed"] for r in only_a1] == list(range(100, 106))
    assert [r["seed"] for r in t.where(b="y")] == [103, 104, 105, 109, 110, 111]
    assert t.where(a=2.0, b="y").rows[0]["seed"] == 109       # 2.0 is the point 2
    partial = table(total=20, complete=False, elapsed=3.0, run_seconds=5.0, executor="pool", scenario="s")
    kept = partial.where(b="x")
    assert (kept.total, kept.complete, kept.elapsed, kept.run_seconds, kept.executor, kept.scenario) == \
        (10, False, 3.0, 5.0, "pool", "s")
    with pytest.raises(ValueError, match=r"^no point has \{'a': True\}; the points are"):
        t.where(a=True)
    with pytest.raises(ValueError, match="^parameter must be one of"):
        t.where(c=1)
    with pytest.raises(ValueError, match="^metric must be one of"):
        t.is_share("a")


def test_no_point_message_shows_six_points_then_an_ellipsis():
    many = sweeps.SweepTable(("a",), [{"a": i} for i in range(7)], [], metrics=("m",))
    with pytest.raises(ValueError, match=r"\{'a': 5\}\] \.\.\.$"):
        many.where(a=9)
    with pytest.raises(ValueError, match=r"\{'a': 1\}\]$"):
        sweeps.SweepTable(("a",), [{"a": 0}, {"a": 1}], [], metrics=("m",)).where(a=9)


def test_tables_are_equal_by_their_rows_not_by_how_long_they_took():
    assert table() == table(elapsed=9.0, run_seconds=4.0, executor="dask")
    other = sweeps.SweepTable(("a", "b"), POINTS, [(0, 0, 100, (1.0, True))], metrics=("v", "hit"))
    assert table() != other
    assert table() != sweeps.SweepTable(("a", "c"), POINTS, [], metrics=("v", "hit"))
    assert table() != "a table" and table().__eq__(3) is NotImplemented
    with pytest.raises(TypeError):
        hash(table())


def test_every_row_must_hold_one_value_per_metric():
    with pytest.raises(ValueError, match=r"^every row must hold one value per metric \('v', 'hit'\), got \(1\.0,\)$"):
        sweeps.SweepTable(("a", "b"), POINTS, [(0, 0, 1, (1.0,))], metrics=("v", "hit"))


def test_summary_gives_t_intervals_for_numbers_and_wilson_for_shares():
    s = table().summary("v")
    assert (s.metric, s.params, s.method, s.level, s.label) == ("v", ("a", "b"), "t", 0.95, "v")
    assert list(s.n) == [3, 3, 2, 3] and list(s.mean) == [2.0, 4.0, 1.0, 10.0]   # the NaN skipped
    half = T_TABLE[0.95, 2] / math.sqrt(3)                                       # sd 1 of 1, 2, 3
    assert s[0].low == pytest.approx(2 - half) and s[0].high == pytest.approx(2 + half)
    assert s[0].half_width == pytest.approx(half) and s[1].half_width == pytest.approx(2 * half)
    assert (s[2].low, s[2].high) == pytest.approx((1 - T_TABLE[0.95, 1] / 2, 1 + T_TABLE[0.95, 1] / 2))
    assert (s[3].low, s[3].high) == (10.0, 10.0) and s[-1] is s[3]
    shares = table().summary("hit")
    assert shares.method == "wilson" and list(shares.n) == [3, 3, 3, 3]
    assert list(shares.mean) == pytest.approx([2 / 3, 0.0, 1.0, 2 / 3])
    assert (shares[1].low, shares[2].high) == (0.0, 1.0)
    assert shares[0].low == pytest.approx(0.20765960080204782)
    normal = table().summary("v", method="normal", level=0.9)
    assert normal[0].high == pytest.approx(2 + 1.6448536269514722 / math.sqrt(3))
    assert table().summary("hit", method="t")[0].mean == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"^method 'wilson' is for True/False metrics; 'v' holds numbers"):
        table().summary("v", method="wilson")
    with pytest.raises(ValueError, match="^method must be one of"):
        table().summary("v", method="exact")
    with pytest.raises(ValueError, match="^level must be"):
        table().summary("v", level=1.0)
    with pytest.raises(ValueError, match="^metric must be one of"):
        table().summary("a")


def test_a_point_without_runs_summarises_to_nan():
    t = sweeps.SweepTable(("a",), [{"a": 1}, {"a": 2}], [(0, 0, 1, (1.0, True)), (0, 1, 2, (3.0, True))],
                          metrics=("v", "ok"))
    s = t.summary("v")
    assert list(s.n) == [2, 0] and s.mean[0] == 2.0 and np.isnan(s.mean[1])
    assert not s[1].covers(2.0) and s[0].covers(2.0)
    w = t.summary("ok")
    assert list(w.n) == [2, 0] and np.isnan(w.mean[1])


def test_share_counts_runs_strictly_below_or_above_a_bound():
    below = table().share("v", below=2.5)
    assert below.metric == "v < 2.5" and below.method == "wilson"
    assert list(below.mean) == pytest.approx([2 / 3, 1 / 3, 2 / 3, 0.0])       # NaN is not below
    assert list(table().share("v", below=2.0).mean) == pytest.approx([1 / 3, 0.0, 2 / 3, 0.0])
    above = table().share("v", above=4.0, level=0.9)
    assert above.metric == "v > 4" and above.level == 0.9
    assert list(above.mean) == pytest.approx([0.0, 1 / 3, 0.0, 1.0])
    for kw in ({}, {"below": 1, "above": 2}):
        with pytest.raises(ValueError, match=r"^share\('v'\) needs exactly one of below= or above="):
            table().share("v", **kw)
    with pytest.raises(ValueError, match="^metric must be one of"):
        table().share("nope", below=1)
    with pytest.raises(ValueError, match="^above must be"):
        table().share("v", above=math.nan)


def test_a_summary_reads_by_parameter_and_by_point():
    s = table().summary("v")
    assert len(s) == 4 and [p.point for p in s] == POINTS
    a = s.values("a")
    assert a.dtype == float and list(a) == [1.0, 1.0, 2.0, 2.0]
    assert s.values("b").dtype == object and list(s.values("b")) == ["x", "y", "x", "y"]
    assert s.at(a=1, b="y") is s[1] and s.at(a=2.0, b="x") is s[2]
    for point in ({"a": 1}, {"a": True, "b": "x"}, {"c": 1}):
        with pytest.raises(ValueError, match=r"^at\(\) must name exactly one point"):
            s.at(**point)
    assert list(s.covers(2.0)) == [True, True, True, False]
    assert list(s.covers([2.0, 9.0, -5.353, 10.0])) == [True, False, True, True]
    with pytest.raises(ValueError, match="^param must be one of"):
        s.values("v")
    with pytest.raises(IndexError):
        s[4]


def test_point_summary_covers_its_bounds_inclusive():
    p = sweeps.PointSummary({}, 3, 1.0, 0.5, 1.5, "t", 0.95)
    assert p.covers(0.5) and p.covers(1.5) and not p.covers(0.49) and not p.covers(1.51)
    assert p.half_width == 0.5


def test_pivot_lays_a_field_out_as_rows_by_columns():
    s = table().summary("v")
    rows, cols, grid = s.pivot("a", "b")
    assert (rows, cols, grid.tolist()) == ([1, 2], ["x", "y"], [[2.0, 4.0], [1.0, 10.0]])
    assert s.pivot("b", "a", "n")[2].tolist() == [[3, 2], [3, 3]]
    assert s.pivot("a", "b", "low")[2][1, 1] == 10.0 and s.pivot("a", "b", "high")[2][1, 1] == 10.0
    missing = sweeps.SweepTable(("a", "b"), POINTS[:3], [(0, 0, 1, (1.0, True))], metrics=("v", "hit"))
    grid = missing.summary("v").pivot("a", "b")[2]
    assert grid[0, 0] == 1.0 and np.isnan(grid[1, 1]) and np.isnan(grid[0, 1])
    with pytest.raises(ValueError, match=r"^row and col must be two different parameters, got 'a' twice$"):
        s.pivot("a", "a")
    with pytest.raises(ValueError, match="^field must be one of"):
        s.pivot("a", "b", "sd")
    with pytest.raises(ValueError, match="^col must be one of"):
        s.pivot("a", "v")
    three = sweeps.SweepTable(("a", "b", "c"), [{"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 2}],
                              [(0, 0, 1, (1.0,)), (1, 0, 2, (2.0,))], metrics=("m",))
    with pytest.raises(ValueError, match=r"needs the other parameters fixed, but 'c' takes \[1, 2\]: select one "
                                         r"first, e.g. table.where\(c=1\)$"):
        three.summary("m").pivot("a", "b")
    fixed = three.where(c=2).summary("m").pivot("a", "b")
    assert fixed[2].tolist() == [[2.0]]


def test_a_summary_prints_as_an_aligned_table_and_as_html():
    s = table().summary("v")
    assert repr(s) == "Summary('v', 4 points, 95% t intervals)"
    assert str(s).splitlines() == ["a    b  n   v  95% interval (t)",
                                   "1  'x'  3   2  [-0.4841, 4.484]",
                                   "1  'y'  3   4  [-0.9683, 8.968]",
                                   "2  'x'  2   1   [-5.353, 7.353]",
                                   "2  'y'  3  10          [10, 10]"]
    html = s._repr_html_()
    assert html.startswith("<table><thead><tr><th>a</th><th>b</th><th>n</th><th>v</th><th>95% interval (t)</th>"
                           "</tr></thead><tbody><tr><td>1</td><td>x</td><td>3</td><td>2</td><td>[-0.4841, 4.484]</td></tr>")
    assert html.endswith("<td>10</td><td>[10, 10]</td></tr></tbody></table>") and html.count("<tr>") == 5
    assert str(table().share("v", below=2.5)).splitlines()[0] == "a    b  n  v < 2.5  95% interval (wilson)"


def test_a_table_prints_its_shape_and_says_when_it_was_interrupted():
    assert repr(table()) == "SweepTable(12 of 12 runs, 4 points of a, b; metrics v, hit)"
    assert repr(table(total=20, complete=False)) == \
        "SweepTable(12 of 20 runs, 4 points of a, b; metrics v, hit, INTERRUPTED: partial)"
    lone = sweeps.SweepTable((), [{}], [(0, 0, 5, ())])
    assert repr(lone) == "SweepTable(1 of 1 runs, 1 point; metrics -)"
    html = table()._repr_html_()
    assert html.startswith("<p>12 of 12 runs, 4 points of a, b; metrics v, hit</p><table><thead><tr><th>a</th>")
    assert html.count("<tr>") == 1 + 5 + 1 + 5 and "<td colspan=6>...</td>" in html
    assert "<td>100</td><td>1</td><td>True</td>" in html and "<td>111</td><td>10</td><td>False</td>" in html
    assert "<td>104</td>" in html and "<td>105</td>" not in html and "<td>106</td>" not in html and "<td>107</td>" in html
    ten = sweeps.SweepTable(("a",), [{"a": 0}], [(0, r, r, (r / 3,)) for r in range(10)], metrics=("m",))
    shown = ten._repr_html_()
    assert shown.count("<tr>") == 11 and "colspan" not in shown and "<td>0.3333</td>" in shown
    six = sweeps.SweepTable(("a",), [{"a": 0}], [(0, r, r, (r,)) for r in range(6)], metrics=("m",))
    assert six._repr_html_().count("<tr>") == 7
    assert sweeps.SweepTable(("a",), [{"a": 0}], [], metrics=("m",))._repr_html_().count("<tr>") == 1


def test_to_pandas_builds_a_frame_column_by_column(monkeypatch):
    made = []

    class Frame:
        def __init__(self, data, columns):
            self.data, self.columns, self.attrs = data, columns, {}
            made.append(self)

    monkeypatch.setitem(sys.modules, "pandas", types.SimpleNamespace(DataFrame=Frame))
    df = table(total=20, complete=False).to_pandas()
    assert made == [df] and df.columns == ["a", "b", "replicate", "seed", "v", "hit"]
    assert list(df.data) == df.columns and list(df.data["seed"]) == list(range(100, 112))
    assert df.data["hit"].dtype == bool and df.attrs == {"complete": False, "total": 20}


def test_to_pandas_without_pandas_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"^to_pandas\(\) needs pandas, which resilience_sim does not require"):
        table().to_pandas()


# --- scoring --------------------------------------------------------------------------------------------------
READ_2S = scoring.Slo("read", 0.75, 2.0)          # read: 0 (1 s, good), 1 (3 s: too slow), 4 (0.5 s), 5 (refused)


def test_an_slo_checks_its_route_target_and_patience():
    assert scoring.Slo("read", 0.5, 1.0).patience == 1.0
    for kw, match in [({"route": ""}, "^route must be a non-empty string"), ({"target": 0.0}, "^target must be"),
                      ({"target": 1.5}, "^target must be"), ({"patience": 0.0}, "^patience must be"),
                      ({"target": 1.0}, "^target must be < 1: an SLO of 100% has no error budget$")]:
        with pytest.raises(ValueError, match=match):
            scoring.Slo(**{"route": "read", "target": 0.9, "patience": 1.0, **kw})


def test_a_request_is_good_when_answered_within_the_patience(res):
    assert list(scoring.good(res, READ_2S)) == [True, False, False, False, True, False]
    assert list(scoring.good(res, scoring.Slo("read", 0.75, 3.0))) == [True, True, False, False, True, False]


def test_an_endpoint_score_counts_the_bad_requests_of_its_route(res):
    s = scoring.endpoint_score(res, READ_2S)
    assert (s.route, s.target, s.requests, s.bad, s.availability, s.met, s.budget_left) == \
        ("read", 0.75, 4, 2, 0.5, False, -1.0)                  # 2 bad where 4 x 0.25 = 1 was allowed
    s = scoring.endpoint_score(res, scoring.Slo("read", 0.75, 3.0))
    assert (s.bad, s.availability, s.met, s.budget_left) == (1, 0.75, True, 0.0)      # met at the target exactly
    s = scoring.endpoint_score(res, scoring.Slo("read", 0.5, 3.0))
    assert (s.met, s.budget_left) == (True, 0.5)
    for empty in (scoring.endpoint_score(res, scoring.Slo("nope", 0.9, 1.0)),
                  scoring.endpoint_score(make(routes=["idle"]), scoring.Slo("idle", 0.9, 1.0))):
        assert (empty.requests, empty.bad, empty.met) == (0, 0, False)
        assert math.isnan(empty.availability) and math.isnan(empty.budget_left)


def test_check_orders_finds_the_lost_and_the_duplicated():
    c = scoring.check_orders([1, 2, 3], statuses={1: ["CONFIRMED"], 2: ["PENDING"], 4: ["CONFIRMED"], 5: ["CONFIRMED"]},
                             charges={1: 1, 2: 1, 4: 2, 6: 1, 8: 0}, receipts={1: 1, 4: 1, 5: 2})
    # fulfilled: 1, 4, 5 (confirmed, with a receipt); owed: accepted 1, 2, 3 and charged 4, 6
    assert (c.accepted, c.lost, c.duplicated, c.ok) == (3, (2, 3, 6), (4, 5), False)
    c = scoring.check_orders([7], statuses={7: ["CANCELLED", "CONFIRMED"]}, charges={}, receipts={7: 0})
    assert c.lost == (7,)                                          # confirmed, but no receipt was sent
    c = scoring.check_orders((7,), statuses={7: ["CONFIRMED"]}, charges={7: 1}, receipts={7: 1})
    assert c.ok and (c.lost, c.duplicated) == ((), ())
    for name in ("statuses", "charges", "receipts"):
        lists = {"statuses": {}, "charges": {}, "receipts": {}, name: [1]}
        with pytest.raises(validate.WrongType, match=rf"^{name} must be a dict keyed by order intent, got \[1\]$"):
            scoring.check_orders([], **lists)
    for bad in ("ab", b"ab", 5):
        with pytest.raises(validate.WrongType, match=rf"^accepted must be a list of order intents, got "
                                                     rf"{re.escape(validate.show(bad))}$"):
            scoring.check_orders(bad, {}, {}, {})


def test_slo_series_gives_the_good_share_and_the_budget_spent_per_bin(res):
    s = scoring.slo_series(res, READ_2S, 2.5)        # read by bin: 0 and 1; none; 4; 5
    assert list(s["t"]) == [0.0, 2.5, 5.0, 7.5]
    assert s["good"][0] == 0.5 and np.isnan(s["good"][1]) and list(s["good"][2:]) == [1.0, 0.0]
    assert list(s["budget_spent"]) == [1.0, 1.0, 1.0, 2.0]       # of the 4 x 0.25 = 1 bad request allowed
    view = scoring.slo_series(res.between(2.0, 8.0), READ_2S, 2.5)     # 1 (bad) and 4 (good); 0.5 allowed
    assert list(view["t"]) == [2.0, 4.5, 7.0] and view["good"][0] == 0.0 and view["good"][2] == 1.0
    assert list(view["budget_spent"]) == [2.0, 2.0, 2.0]
    assert list(scoring.slo_series(res, READ_2S, 20.0)["budget_spent"]) == [2.0]
    absent = scoring.slo_series(res, scoring.Slo("nope", 0.9, 1.0), 5.0)
    assert list(absent["t"]) == [0.0, 5.0] and np.isnan(absent["good"]).all() and list(absent["budget_spent"]) == [0, 0]
    strict = scoring.slo_series(res, scoring.Slo("read", 0.9999999999999999, 2.0), 10.0)
    assert list(strict["budget_spent"]) == [2.0 / 1e-12]             # an allowance too small to divide by
    with pytest.raises(ValueError, match="^bin_width must be"):
        scoring.slo_series(res, READ_2S, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scoring.slo_series(res, READ_2S, 1.0)


def test_a_start_that_rounds_onto_the_end_lands_in_the_last_bin_of_the_scores():
    one = make([(0.8999999999999999, 0.9, FAIL, "error", "db", "read", None, 1, 0.0)], until=0.9)
    slo = scoring.Slo("read", 0.5, 1.0)
    assert list(scoring.slo_series(one, slo, 0.3)["budget_spent"]) == [0.0, 0.0, 2.0]
    assert scoring.incidents(one, [slo], bin_width=0.3) == [pytest.approx((0.6, 0.9))]
    assert [(m.start, m.end) for m in scoring.explain_misses(one, slo, bin_width=0.3)] == [pytest.approx((0.6, 0.9))]


def test_incidents_are_runs_of_bins_below_the_level(res):
    read, write = READ_2S, scoring.Slo("write", 0.5, 10.0)
    # read: bins 0 (1 good of 2) and 3 (0 of 1) below 90%; write: bins 1 and 2 (none good)
    assert scoring.incidents(res, [read], bin_width=2.5) == [(0.0, 2.5), (7.5, 10.0)]
    assert scoring.incidents(res, [write], bin_width=2.5) == [(2.5, 7.5)]
    assert scoring.incidents(res, [read, write], bin_width=2.5) == [(0.0, 10.0)]
    assert scoring.incidents(res, [read], bin_width=4.0) == [(0.0, 4.0), (8.0, 10.0)]     # the last cut at until
    assert scoring.incidents(res, [read], level=0.5, bin_width=2.5) == [(7.5, 10.0)]       # 1 of 2 is not below
    assert scoring.incidents(res, [read], level=0.51, bin_width=2.5) == [(0.0, 2.5), (7.5, 10.0)]
    assert scoring.incidents(res, [read]) == [(0.0, 10.0)]               # one bin of 600 s, cut at until
    assert scoring.incidents(res, [scoring.Slo("nope", 0.9, 1.0)]) == []
    assert scoring.incidents(res.between(2.0, 8.0), [read], bin_width=2.5) == [(2.0, 4.5)]
    with pytest.raises(ValueError, match="^level must be"):
        scoring.incidents(res, [read], level=1.5)
    with pytest.raises(ValueError, match="^bin_width must be"):
        scoring.incidents(res, [read], bin_width=-1.0)


def test_day_cost_prices_each_item():
    cost = scoring.day_cost(hours=2.0, replicas={"api": 3, "db": 1}, cache_entries=5000, extra_calls=1000, pages=2,
                            undetected=1, lost=1, duplicated=2)
    assert cost.items == {"replicas of api": 6.0, "replicas of db": 2.0, "cache memory": 10.0, "extra calls": 2.0,
                          "pages": 300.0, "undetected incidents": 1000.0, "lost orders": 2000.0,
                          "duplicated orders": 4000.0}
    assert cost.total == 7320.0 and isinstance(cost.total, float)
    assert cost.biggest() == [("duplicated orders", 4000.0), ("lost orders", 2000.0), ("undetected incidents", 1000.0),
                              ("pages", 300.0), ("cache memory", 10.0), ("replicas of api", 6.0),
                              ("replicas of db", 2.0), ("extra calls", 2.0)]
    counts = dict(hours=1.0, replicas={}, cache_entries=0, extra_calls=0, pages=0, undetected=0, lost=0, duplicated=0)
    assert scoring.day_cost(**counts).total == 0.0
    for name in ("cache_entries", "extra_calls", "pages", "undetected", "lost", "duplicated"):
        with pytest.raises(ValueError, match=f"^{name} must be a whole number >= 0"):
            scoring.day_cost(**{**counts, name: -1})
    with pytest.raises(ValueError, match=r"^replicas\['db'\] must be a whole number >= 0"):
        scoring.day_cost(**{**counts, "replicas": {"db": -1}})
    with pytest.raises(validate.WrongType, match=r"^replicas must be a dict of service name to count, got \[1\]$"):
        scoring.day_cost(**{**counts, "replicas": [1]})
    with pytest.raises(ValueError, match="^hours must be"):
        scoring.day_cost(**{**counts, "hours": 0.0})


MISS_ROWS = [(0.0, 0.5, FAIL, "error", "db", "read", None, 1, 0.0),
             (1.0, 1.5, FAIL, "error", "db", "read", None, 1, 0.0),
             (1.5, 3.5, OK, "", "db", "read", None, 1, 0.0),            # answered, too slowly
             (3.0, 3.5, OK, "", "db", "read", None, 1, 0.0),
             (5.0, 5.0, REJ, "circuit open", "client", "read", None, 1, 0.0)]
SLOW_1S = scoring.Slo("read", 0.9, 1.0)


def test_explain_misses_takes_the_worst_run_of_bad_bins_first():
    results = make(MISS_ROWS, until=6.0, faults=[FaultSpan("db down", "outage", ((1.2, 1.8),)),
                                                FaultSpan("touches", "outage", ((2.0, 5.0),)),
                                                FaultSpan("late", "spike", ((5.5, 9.0),))])
    first, second = scoring.explain_misses(results, SLOW_1S, bin_width=1.0)     # bad by bin: 1, 2, 0, 0, 0, 1
    assert first == scoring.Miss("read", 0.0, 2.0, 3, ("db down",), ((("db", "error"), 2), (("db", "too slow"), 1)))
    # "touches" (2 to 5) only touches both spans: active in neither
    assert second == scoring.Miss("read", 5.0, 6.0, 1, ("late",), ((("client", "circuit open"), 1),))
    assert scoring.explain_misses(results, SLOW_1S, bin_width=1.0, top=1) == [first]
    assert [m.end for m in scoring.explain_misses(results, SLOW_1S, bin_width=4.0)] == [6.0]     # cut at until
    view = scoring.explain_misses(results.between(1.0, 6.0), SLOW_1S, bin_width=1.0)
    assert [(m.start, m.end, m.bad, m.causes) for m in view] == [
        (1.0, 2.0, 2, ((("db", "error"), 1), (("db", "too slow"), 1))), (5.0, 6.0, 1, ((("client", "circuit open"), 1),))]
    assert len(scoring.explain_misses(results, SLOW_1S)) == 1                # one bin of 300 s by default


def test_explain_misses_is_empty_when_nothing_was_bad_and_checks_its_settings():
    results = make(MISS_ROWS, until=6.0)
    assert scoring.explain_misses(results, scoring.Slo("read", 0.5, 5.0), bin_width=1.0)[0].bad == 2   # 2 s is fine
    assert scoring.explain_misses(results.between(3.0, 4.0), SLOW_1S) == []
    assert scoring.explain_misses(results, scoring.Slo("nope", 0.9, 1.0)) == []
    assert len(scoring.explain_misses(results, SLOW_1S, bin_width=1.0, top=100)) == 2
    for top in (0, 101):
        with pytest.raises(ValueError, match="^top must be"):
            scoring.explain_misses(results, SLOW_1S, top=top)
    with pytest.raises(ValueError, match="^bin_width must be"):
        scoring.explain_misses(results, SLOW_1S, bin_width=0.0)


def test_a_degraded_answer_past_the_patience_is_too_slow_and_an_early_lone_miss_is_found():
    rows = [(0.0, 3.0, DEG, "stale", "cache", "read", None, 1, 0.0),          # answered, degraded, slowly
            (3.0, 3.5, OK, "", "db", "read", None, 1, 0.0)]
    [miss] = scoring.explain_misses(make(rows, until=6.0), SLOW_1S, bin_width=1.0)    # bad only in the first bin
    assert (miss.start, miss.end, miss.causes) == (0.0, 1.0, ((("cache", "too slow"), 1),))


def bad_at(*starts, until=10.0):
    """Requests for "read" that failed at ``starts`` (good ones elsewhere do not matter to a miss)."""
    return make([(t, t, FAIL, "error", "db", "read", None, 1, 0.0) for t in starts], until=until)


def test_a_miss_grows_from_its_worst_bin_to_the_adjacent_bad_bins():
    # bad per 1 s bin: 0, 1, 2 (bins 1 and 2): from the worst (2) back to 1, not to the empty 0
    [miss] = scoring.explain_misses(bad_at(1.0, 2.0, 2.5), SLOW_1S, bin_width=1.0)
    assert (miss.start, miss.end, miss.bad) == (1.0, 3.0, 3)
    # 2, 1, 0, 1: from the worst (0) forward to 1 only; bin 3 is a miss of its own
    first, second = scoring.explain_misses(bad_at(0.0, 0.5, 1.0, 3.0, until=4.0), SLOW_1S, bin_width=1.0)
    assert [(first.start, first.end, first.bad), (second.start, second.end)] == [(0.0, 2.0, 3), (3.0, 4.0)]
    # 1, 2, 1: from the worst (1) both ways
    [miss] = scoring.explain_misses(bad_at(0.0, 1.0, 1.5, 2.0, until=4.0), SLOW_1S, bin_width=1.0)
    assert (miss.start, miss.end, miss.bad) == (0.0, 3.0, 4)
    # five separate misses: three by default
    five = bad_at(0.0, 2.0, 4.0, 6.0, 8.0)
    assert [m.start for m in scoring.explain_misses(five, SLOW_1S, bin_width=1.0)] == [0.0, 2.0, 4.0]
    assert len(scoring.explain_misses(five, SLOW_1S, bin_width=1.0, top=5)) == 5


def test_an_absent_route_names_itself_and_does_not_stop_the_others(res):
    assert scoring.endpoint_score(res, scoring.Slo("nope", 0.9, 1.0)).route == "nope"
    assert scoring.incidents(res, [scoring.Slo("nope", 0.9, 1.0), READ_2S], bin_width=2.5) == [(0.0, 2.5), (7.5, 10.0)]


def test_an_intent_confirmed_with_no_receipt_entry_is_lost():
    assert scoring.check_orders([9], statuses={9: ["CONFIRMED"]}, charges={}, receipts={}).lost == (9,)


def test_each_cost_item_is_its_count_times_its_price(monkeypatch):
    monkeypatch.setattr(scoring, "REPLICA_PER_HOUR", 2.0)
    monkeypatch.setattr(scoring, "CACHE_PER_1000_ENTRIES_HOUR", 4.0)
    cost = scoring.day_cost(hours=3.0, replicas={"api": 5}, cache_entries=2000, extra_calls=0, pages=0,
                            undetected=0, lost=0, duplicated=0)
    assert cost.items["replicas of api"] == 5 * 2.0 * 3.0 and cost.items["cache memory"] == 2 * 4.0 * 3.0


# --- sweeps: more exact cases (kill the survivors of make mutate) --------------------------------------------
def test_wilson_bounds_at_the_edges_are_exactly_0_and_1_even_where_rounding_would_miss():
    # kills wilson_interval mutants 57, 69 (the k == 0 / k == n shortcuts) and 77 (min(2.0, ...)):
    # at k = 0 the score bound centre - half is 0 in exact arithmetic, but 2.8e-17 in floats for n = 10;
    # at k = n it is 1 - 1.1e-16 for n = 13; and at k = n - 1 of n = 5e15, p rounds to 1 and
    # centre + half to 1 + 2.2e-16, which the cap at 1 keeps inside [0, 1]
    assert sweeps.wilson_interval(0, 10)[1] == 0.0
    assert sweeps.wilson_interval(13, 13)[2] == 1.0
    assert sweeps.wilson_interval(5 * 10 ** 15 - 1, 5 * 10 ** 15)[2] == 1.0


def test_wilson_interval_names_the_argument_it_refuses():
    # kills wilson_interval mutants 3, 9, 10 (name "n"), 13, 21, 22 (name "successes"), 16, 20 (high=n dropped)
    with pytest.raises(ValueError, match="^n must be"):
        sweeps.wilson_interval(0, -1)
    with pytest.raises(ValueError, match="^successes must be"):
        sweeps.wilson_interval(-1, 3)
    with pytest.raises(ValueError, match="^successes must be"):
        sweeps.wilson_interval(4, 3)


def test_mean_interval_and_summary_read_values_as_floats():
    # kills mean_interval mutants 20, 22 and SweepTable.summary 67, 69 (np.asarray without dtype=float):
    # exact fractions and None (no value, as NaN) are read as floats; mean 2, sd 1 of 1, 2, 3
    half = T_TABLE[0.95, 2] / math.sqrt(3)
    assert sweeps.mean_interval([Fraction(1), Fraction(2), Fraction(3)]) == pytest.approx((2.0, 2 - half, 2 + half))
    assert sweeps.mean_interval([1.0, None, 3.0]) == pytest.approx((2.0, 2 - T_TABLE[0.95, 1], 2 + T_TABLE[0.95, 1]))
    t = sweeps.SweepTable(("a",), [{"a": 1}], [(0, 0, 1, (1.0,)), (0, 1, 2, (None,)), (0, 2, 3, (3.0,))],
                          metrics=("m",))
    s = t.summary("m")
    assert list(s.n) == [2] and list(s.mean) == [2.0]


def test_each_point_summary_keeps_the_method_and_level_and_wilson_uses_the_level():
    # kills SweepTable.summary mutants 84, 85 (method / level None) and 57 (wilson at the default level)
    s = table().summary("v", level=0.9)
    assert (s[0].method, s[0].level) == ("t", 0.9)
    shares = table().summary("hit", level=0.9)
    assert (shares[0].method, shares[0].level) == ("wilson", 0.9)
    assert (shares[0].low, shares[0].high) == pytest.approx((0.25353386828122426, 0.9217342736662715), rel=1e-12)


def test_a_summary_holds_floats_and_whole_counts_even_from_whole_numbers_or_no_points():
    # kills Summary.__init__ mutants 9, 11, 14, 16, 19, 21 (mean/low/high without dtype=float) and
    # 24, 26 (n without dtype=int: an empty list would be float)
    s = sweeps.Summary("m", ("a",), [sweeps.PointSummary({"a": 1}, 2, 1, 0, 2, "t", 0.95)], "t", 0.95)
    assert (s.mean.dtype, s.low.dtype, s.high.dtype, s.n.dtype) == (float, float, float, int)
    none = sweeps.SweepTable((), [], [], metrics=("m",)).summary("m")
    assert len(none) == 0 and none.n.dtype == int and none.mean.dtype == float


def test_covers_reads_the_truth_as_floats():
    # kills Summary.covers mutants 7, 9: a None truth (not known at that point) is NaN, covered nowhere;
    # as an object it could not be compared with a float
    covered = table().summary("v").covers([2.0, None, 1.0, 10.0])
    assert covered.dtype == bool and list(covered) == [True, False, True, True]
    assert not table().summary("v").covers(None).any()


def test_a_summary_names_a_bad_index_and_a_bad_row():
    # kills Summary.__getitem__ mutants 1, 8, 9 (name "i") and Summary.pivot 3, 9, 10 (name "row")
    s = table().summary("v")
    with pytest.raises(validate.WrongType, match=r"^i must be a whole number"):
        s[1.5]
    with pytest.raises(validate.OutOfRange, match=r"^i must be in \[-4, 3\], got 4"):
        s[4]
    with pytest.raises(ValueError, match="^row must be one of"):
        s.pivot("v", "b")


def test_at_tells_a_missing_parameter_from_one_whose_value_is_none():
    # kills Summary.at mutants 8, 10 (get(k, None)): no point has c, so c=None matches none of them
    s = table().summary("v")
    with pytest.raises(ValueError, match=r"^at\(\) must name exactly one point of \('a', 'b'\) \(0 match"):
        s.at(a=1, b="y", c=None)
    none = sweeps.SweepTable(("a", "c"), [{"a": 1, "c": None}, {"a": 1, "c": 0}], [], metrics=("m",)).summary("m")
    assert none.at(c=None) is none[0]


def test_equal_strings_that_are_not_the_same_object_select_a_point():
    # kills _same mutants 2, 5, 7: a string built at run time is equal to the point's, not identical
    t = sweeps.SweepTable(("mode",), [{"mode": "fast"}, {"mode": "slow"}],
                          [(0, 0, 1, (1.0,)), (1, 0, 2, (2.0,))], metrics=("m",))
    slow = "".join(["sl", "ow"])
    assert slow is not t.points[1]["mode"]
    assert [r["seed"] for r in t.where(mode=slow)] == [2]
    assert t.summary("m").at(mode=slow).mean == 2.0


def test_a_parameter_prints_by_str_unless_it_is_a_string():
    # kills Summary.__str__ mutant 6 (every value by repr: Fraction(1, 2)) and Summary._repr_html_ 8
    # ("XXXX" between rows); point 1/2: 1 and 3, mean 2 +- t(1) = 12.71; point 3/4: one value, no bounds
    t = sweeps.SweepTable(("r",), [{"r": Fraction(1, 2)}, {"r": Fraction(3, 4)}],
                          [(0, 0, 1, (1.0,)), (0, 1, 2, (3.0,)), (1, 0, 3, (5.0,))], metrics=("v",))
    s = t.summary("v")
    assert str(s).splitlines() == ["  r  n  v  95% interval (t)",
                                   "1/2  2  2   [-10.71, 14.71]",
                                   "3/4  1  5        [nan, nan]"]
    assert s._repr_html_() == ("<table><thead><tr><th>r</th><th>n</th><th>v</th><th>95% interval (t)</th></tr></thead>"
                               "<tbody><tr><td>1/2</td><td>2</td><td>2</td><td>[-10.71, 14.71]</td></tr>"
                               "<tr><td>3/4</td><td>1</td><td>5</td><td>[nan, nan]</td></tr></tbody></table>")


def test_a_table_as_html_exactly():
    # kills SweepTable._repr_html_ mutants 3, 23 ("XXXX" between cells / rows), 26, 34, 35 (the row tags)
    t = sweeps.SweepTable(("a",), [{"a": 1}], [(0, 0, 5, (0.5,)), (0, 1, 6, (2,))], metrics=("m",))
    assert t._repr_html_() == ("<p>2 of 2 runs, 1 point of a; metrics m</p><table><thead><tr><th>a</th>"
                               "<th>replicate</th><th>seed</th><th>m</th></tr></thead><tbody>"
                               "<tr><td>1</td><td>0</td><td>5</td><td>0.5</td></tr>"
                               "<tr><td>1</td><td>1</td><td>6</td><td>2</td></tr></tbody></table>")


def test_a_table_of_eleven_rows_shows_five_an_ellipsis_and_five():
    # kills SweepTable._repr_html_ mutants 11 (ellipsis only above 11 rows) and 19 (all rows up to 11)
    eleven = sweeps.SweepTable(("a",), [{"a": 0}], [(0, r, r, (r,)) for r in range(11)], metrics=("m",))
    row = "<tr><td>0</td><td>{0}</td><td>{0}</td><td>{0}</td></tr>".format
    body = "".join(map(row, range(5))) + "<tr><td colspan=4>...</td></tr>" + "".join(map(row, range(6, 11)))
    assert eleven._repr_html_() == ("<p>11 of 11 runs, 1 point of a; metrics m</p><table><thead><tr><th>a</th>"
                                    "<th>replicate</th><th>seed</th><th>m</th></tr></thead><tbody>"
                                    f"{body}</tbody></table>")


def test_empty_columns_are_whole_numbers():
    # kills SweepTable.column mutants 23, 25 (seed without dtype=np.int64) and 39, 41 (no dtype=int):
    # np.array([]) alone would be float
    empty = sweeps.SweepTable(("a",), [{"a": 1}], [], metrics=("m",))
    assert empty.column("seed").dtype == np.int64 and empty.column("m").dtype == int
    assert empty.column("a").dtype == int and empty.column("replicate").dtype == int


def test_a_tables_defaults_and_row_order():
    # kills SweepTable.__init__ mutants 3, 4, 5, 6 (defaults) and 18 (sorted by seed), 13, 15 (no key:
    # two rows of one replicate would be sorted by seed, not kept in the order given)
    t = table()
    assert (t.elapsed, t.run_seconds, t.executor, t.scenario) == (0.0, 0.0, "in-process", "")
    by_replicate = sweeps.SweepTable(("a",), [{"a": 1}], [(0, 1, 5, (1.0,)), (0, 0, 9, (2.0,))], metrics=("m",))
    assert [(r["replicate"], r["seed"]) for r in by_replicate] == [(0, 9), (1, 5)]
    twice = sweeps.SweepTable(("a",), [{"a": 1}], [(0, 0, 9, (1.0,)), (0, 0, 5, (2.0,))], metrics=("m",))
    assert [r["seed"] for r in twice] == [9, 5]


def test_where_keeps_whole_runs_per_point_and_completeness():
    # kills SweepTable.where mutants 22 (total / points: 10 / 4 * 2 = 5), 27 (max(2, ...) with one point:
    # 3 // 2 = 1) and 33 (complete=None reads as False)
    assert table(total=10).where(a=1).total == 4                # 10 // 4 = 2 runs a point, 2 points
    one = sweeps.SweepTable(("a",), [{"a": 1}], [(0, r, r, (1.0,)) for r in range(3)], metrics=("m",))
    assert one.where(a=1).total == 3
    assert table().where(a=1).complete is True


def test_share_names_the_bound_it_refuses():
    # kills SweepTable.share mutants 18, 20, 21 (the name "below")
    with pytest.raises(ValueError, match="^below must be"):
        table().share("v", below=math.nan)


def test_a_share_of_a_table_with_no_runs_is_a_wilson_share_of_none():
    # kills SweepTable.share mutants 64, 67 (no method: an empty table is no True/False metric, so "t")
    empty = sweeps.SweepTable(("a",), [{"a": 1}], [], metrics=("m",))
    (point,) = empty.share("m", below=1).points
    assert point.method == "wilson" and point.n == 0 and math.isnan(point.mean)
    assert empty.summary("m", method="wilson").points[0].n == 0       # not refused as holding numbers


def test_firing_spans_takes_exactly_the_most_evaluations_allowed():
    # kills firing_spans mutant 34 (steps >= MAX_EVALUATIONS): 10**7 s every 1 s is exactly 10**7
    # evaluations, allowed; the rule stops the replay at its first one (so the test stays fast)
    class Stop(Exception):
        pass

    class StopsAtOnce(FiresOnBad):
        def record_counts(self, t, good, bad):
            raise Stop(t)

    with pytest.raises(Stop):
        alerting.firing_spans(make(until=1e7), StopsAtOnce(), every=1.0)
    with pytest.raises(ValueError, match=r"^every must be at least 1 s for this run, got 0\.5$"):
        alerting.firing_spans(make(until=1e7), StopsAtOnce(), every=0.5)
