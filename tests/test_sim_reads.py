"""Part III in the simulator: a cache in front of a source, fallback chains, deferred jobs."""
import math

import numpy as np

import pytest

from resilience_sim import (Cache, CachedRead, Client, Constant, DeferredJobs, Exponential, FallbackChain, JobQueue,
                            OpenLoop, Outage, Service, Static, World, with_fallbacks)
from resilience_sim.core import theory
from resilience_sim.policies import Bulkhead, FullJitter
from resilience_sim.sim.service import Request


def catalog(seed=1, *, rate=50.0, keys=1, db_latency=0.0, db_capacity=100, outage=None, until=1000.0,
            clear=(), **cache_options):
    world = World(seed=seed)
    db = Service(world, "db", capacity=db_capacity, latency=db_latency)
    if outage:
        Outage(db, [outage])
    layer = CachedRead(world, Cache(**cache_options))
    if clear:
        layer.clear_at(*clear)
    front = Service(world, "catalog", capacity=10_000, dependencies=["db"],
                    handler=lambda svc, req: layer.read(req, lambda sub: svc.ask("db", sub)))
    OpenLoop(world, front, Constant(rate), duration=until, key=lambda rng: rng.randrange(keys))
    return world.run(until + 10)


@pytest.mark.parametrize("lam, ttl", [(1.0, 1.0), (1.0, 9.0), (5.0, 0.5), (0.2, 20.0)])
def test_ttl_hit_ratio_matches_poisson_theory(lam, ttl):
    """H = lam*T / (1 + lam*T) for Poisson requests on one key and an expire-after-write TTL."""
    results = catalog(seed=7, rate=lam, ttl=ttl, until=40_000 / lam)
    stats = results.cache("cache")
    expected = theory.ttl_hit_ratio(lam, ttl)
    n = stats.lookups
    assert abs(stats.hit_ratio - expected) < 4 * math.sqrt(expected * (1 - expected) / n) + 0.005
    assert stats.fetches == stats.misses == round(results.calls_per_request("db") * len(results))


def test_cached_answers_carry_their_age_and_who_answered():
    results = catalog(rate=10, ttl=5, until=100)
    ages = results.ages()
    assert 0 < ages.max() <= 5 and results.answered_by()["cache"] == results.cache("cache").hits
    assert results.full_quality_availability() == 1.0


def test_the_hot_key_model_of_stale_if_error():
    assert theory.stale_if_error_failing_time(60, 300, 240) == 0.0                # D <= H - S
    assert theory.stale_if_error_failing_time(60, 300, 420) == pytest.approx(150)  # D - H + S/2
    assert theory.stale_if_error_failing_time(60, 300, 270) == pytest.approx(30 ** 2 / 120)
    assert theory.ttl_hit_ratio(1, 1) == 0.5 and theory.ttl_hit_ratio(1, 9) == pytest.approx(0.9)


def test_stale_if_error_rides_out_an_outage_within_the_hard_ttl():
    """A hot key refreshed every soft TTL S: nothing fails if the outage D <= H - S."""
    common = dict(rate=20, keys=1, outage=(300.0, 400.0), until=600, ttl=30)
    plain, stale = catalog(**common), catalog(**common, hard_ttl=140)
    during = (300, 400)
    assert plain.between(*during).request_availability() < 0.4
    assert stale.between(*during).request_availability() == 1.0
    assert stale.quality()["stale"] > 0.1
    assert stale.staleness_percentiles((100,))[100] <= 140
    too_long = catalog(**{**common, "outage": (300.0, 500.0)}, hard_ttl=140)
    assert too_long.between(300, 500).request_availability() < 1.0
    assert too_long.staleness_percentiles((100,))[100] <= 140


def test_coalescing_stops_the_herd_after_a_cold_restart():
    common = dict(rate=200, keys=1, db_latency=0.5, ttl=10, until=100, clear=(50.0,))
    herd, calm = catalog(**common, coalesce=False), catalog(**common)
    calls = lambda r: r.between(50, 51).calls_per_request("db") * len(r.between(50, 51))
    assert calls(calm) == 1 and calls(herd) > 50
    assert calm.cache("cache").coalesced > 50


class OwnRules(Cache):
    """A cache of one's own that follows the course's rules: the layer checks its promises as it
    does for any cache that is not the course's Cache itself."""


def test_the_course_cache_and_a_cache_of_ones_own_with_its_rules_answer_alike():
    def herd(cache_class, outage=None):
        world = World(seed=3)
        db = Service(world, "db", capacity=100, latency=0.5)
        if outage:
            Outage(db, [outage])
        layer = CachedRead(world, cache_class(10, hard_ttl=30), source=db)
        layer.clear_at(50.0)
        OpenLoop(world, layer, Constant(100), duration=100, key=lambda rng: rng.randrange(3))
        return world.run(110)
    for outage in (None, (52.0, 90.0)):
        course, own = herd(Cache, outage), herd(OwnRules, outage)
        assert len(course) == len(own) and course.cache("cache") == own.cache("cache")
        assert np.array_equal(course.outcome, own.outcome) and np.array_equal(course.end, own.end)
        assert np.array_equal(course.ages(), own.ages())
    assert course.cache("cache").coalesced > 100 and course.request_availability() < 1.0


def test_waiters_share_a_failed_fetch_and_get_its_error():
    results = catalog(rate=200, keys=1, db_latency=0.5, ttl=10, until=20, outage=(0.0, 100.0))
    assert results.request_availability() == 0.0
    assert results.reasons(unanswered_only=True) == {"down": len(results)}
    assert results.failed_by() == {"db": len(results)}


def test_stale_while_revalidate_keeps_answers_instant_with_one_refresh():
    common = dict(rate=100, keys=1, db_latency=0.2, ttl=10, until=200)
    blocking, swr = catalog(**common), catalog(**common, stale_while_revalidate=5)
    assert blocking.latency_percentiles((100,))[100] >= 0.2
    warm = swr.between(1, 200)                       # after the first, cold fetch
    assert warm.latency.max() < 0.2 and swr.quality()["stale"] > 0
    assert swr.cache("cache").fetches <= 200 / 10 + 2


def test_negative_caching_spares_the_source():
    common = dict(rate=50, keys=1, until=100, outage=(0.0, 200.0), ttl=10)
    plain, negative = catalog(**common), catalog(**common, negative_ttl=5)
    assert plain.calls_per_request("db") == 1.0
    assert negative.calls_per_request("db") < 0.01
    assert negative.request_availability() == 0.0


def test_a_cancelled_fetch_wakes_its_waiters():
    world = World(seed=1)
    Service(world, "db", capacity=10, latency=5.0)
    layer = CachedRead(world, Cache(10))
    front = Service(world, "front", capacity=100, dependencies=["db"],
                    handler=lambda svc, req: layer.read(req, lambda sub: svc.ask("db", sub)))
    client = Client(world, front, timeout=1.0)
    OpenLoop(world, client, Constant(10), duration=3, key=lambda rng: "hot")
    results = world.run(20)
    assert results.in_flight == 0 and results.outcome_counts()["ok"] + results.outcome_counts()["timed_out"] == len(results)


def test_a_cache_of_ones_own_plugs_in():
    class Forgetful:
        coalesce = False

        def lookup(self, key, now):
            from resilience_sim.policies import Lookup
            return Lookup("miss")

        def fill(self, key, value, now):
            from resilience_sim.policies import Lookup
            return Lookup("fresh", value)

        def fail(self, key, reason, now):
            from resilience_sim.policies import Lookup
            return Lookup("error", reason=reason)

    world = World(seed=1)
    Service(world, "db")
    layer = CachedRead(world, Forgetful())
    front = Service(world, "front", dependencies=["db"], capacity=10,
                    handler=lambda svc, req: layer.read(req, lambda sub: svc.ask("db", sub)))
    OpenLoop(world, front, Constant(1), duration=10)
    results = world.run(11)
    assert results.cache("cache").lookups == 0 and results.calls_per_request("db") == 1.0


def test_cached_read_refuses_nonsense():
    world = World(seed=1)
    with pytest.raises(ValueError, match="cache must be a Cache"):
        CachedRead(world, {"ttl": 60})
    CachedRead(world, Cache(10))
    with pytest.raises(ValueError, match="unique among caches"):
        CachedRead(world, Cache(10))
    with pytest.raises(ValueError, match="another World"):
        shared = Cache(5)
        CachedRead(world, shared, name="c2")
        CachedRead(World(seed=2), shared)


# --- fallback chains ------------------------------------------------------------------------------
def recommendations(chain_steps, *, outage=(100.0, 200.0), until=300.0, popular_error=0.0, **chain_options):
    world = World(seed=2)
    recommender = Service(world, "recommender", capacity=20, latency=0.05)
    Service(world, "popular_in_city", capacity=20, latency=0.01, error_rate=popular_error)
    Service(world, "popular_in_country", capacity=20, latency=0.01, error_rate=popular_error)
    Outage(recommender, [outage])
    chain = FallbackChain(chain_steps, **chain_options)
    deps = [s for s in chain_steps if isinstance(s, str)]
    page = Service(world, "page", capacity=100, dependencies=deps,
                   handler=lambda svc, req: with_fallbacks(svc, req, chain))
    OpenLoop(world, page, Constant(20), duration=until)
    return world.run(until + 1), chain


def test_a_fallback_chain_trades_quality_for_availability():
    results, chain = recommendations(["recommender", "popular_in_city", "popular_in_country",
                                      Static("bestsellers")], popular_error=0.3,
                                     labels={"popular_in_city": "popular in your city"})
    quality = results.quality()
    assert results.request_availability() == 1.0
    assert quality["full"] == pytest.approx(2 / 3, abs=0.02)
    assert quality["popular in your city"] > quality["popular_in_country"] > quality["bestsellers"] > 0
    assert chain.answered[0] == results.outcome_counts()["ok"] and chain.failed[0] > 0


def test_a_reason_outside_on_is_passed_on_without_falling_back():
    results, chain = recommendations(["recommender", "popular_in_city"], on={"timeout"})
    assert results.reasons(unanswered_only=True)["down"] > 0 and sum(chain.answered[1:]) == 0


def test_each_step_is_tried_once_and_the_last_error_comes_out():
    results, chain = recommendations(["recommender", "popular_in_city"], popular_error=1.0)
    during = results.between(100, 200)
    assert during.request_availability() == 0.0
    assert chain.failed[1] >= len(during) and during.reasons() == {"error": len(during)}


def test_a_bulkhead_protects_the_slower_system():
    def run(bulkhead):
        world = World(seed=3)
        search = Service(world, "search", capacity=100, latency=0.01)
        sql = Service(world, "sql", capacity=4, latency=0.2, queue_limit=20)
        Outage(search, [(50.0, 150.0)])
        to_sql = Client(world, sql, name="to_sql", bulkhead=bulkhead)
        chain = FallbackChain(["search", "sql"])
        front = Service(world, "front", capacity=1000, dependencies={"search": "search", "sql": to_sql},
                        handler=lambda svc, req: with_fallbacks(svc, req, chain))
        checkout = Service(world, "checkout", capacity=1000, dependencies=["sql"],
                           handler=lambda svc, req: svc.ask("sql", req))
        OpenLoop(world, front, Constant(100), duration=200, name="search")
        OpenLoop(world, checkout, Constant(5), duration=200, name="checkout")
        return world.run(201)
    bare, guarded = run(None), run(Bulkhead(max_concurrent=2))
    window = (60, 150)
    assert bare.only("checkout").between(*window).request_availability() < 0.6
    assert guarded.only("checkout").between(*window).request_availability() > 0.95


@pytest.mark.parametrize("steps, match", [
    (["only"], "at least one fallback"),
    ("recommender", "must be a list"),
    ([], "at least one fallback"),
    (["a", "a"], "must not repeat"),
    ([Static("x"), "a"], "primary must be a dependency"),
    (["a", 3], "dependency names"),
])
def test_chains_that_make_no_sense_are_refused(steps, match):
    with pytest.raises(ValueError, match=match):
        FallbackChain(steps)


def test_a_level_that_does_not_exist_is_refused():
    chain = FallbackChain(["a", "b"])
    with pytest.raises(ValueError, match="one of the chain's steps"):
        chain.level("c")
    with pytest.raises(ValueError, match="labels name 'c', which is not a fallback"):
        FallbackChain(["a", "b"], labels={"c": "x"})
    with pytest.raises(ValueError, match="index must be"):
        chain.record(2)


# --- deferred jobs --------------------------------------------------------------------------------
def exports(*, deferred, outage=(50.0, 250.0), until=300.0, workers=2, capacity=None, drain=800.0):
    world = World(seed=4)
    builder = Service(world, "builder", capacity=2, latency=0.5)
    Outage(builder, [outage])
    if deferred:
        jobs = DeferredJobs(world, JobQueue(capacity=capacity, backoff=FullJitter(base=1, cap=20)),
                            target=builder, workers=workers)
        handler = lambda svc, req: jobs.submit(req)
        front = Service(world, "export", capacity=100, handler=handler)
    else:
        front = Service(world, "export", capacity=100, dependencies=["builder"],
                        handler=lambda svc, req: svc.ask("builder", req))
    OpenLoop(world, front, Constant(1), duration=until)
    return world.run(drain)


def test_deferred_jobs_lose_nothing_and_notify_after_the_outage():
    failing, deferred = exports(deferred=False), exports(deferred=True)
    assert failing.between(50, 250).request_availability() < 0.01
    assert deferred.request_availability() == 1.0 and deferred.quality() == {"full": 0.0, "deferred": 1.0,
                                                                              "unanswered": 0.0}
    jobs = deferred.jobs("jobs")
    assert jobs.lost == 0 and jobs.accepted == jobs.completed == len(deferred)
    assert 200 - 25 < jobs.time_to_notify.max() < 200 + 60
    assert jobs.depth.max() >= 150


def test_a_full_queue_refuses_and_a_parked_job_is_not_lost():
    full = exports(deferred=True, capacity=50)
    jobs = full.jobs("jobs")
    assert jobs.refused > 0 and full.reasons(unanswered_only=True) == {"overload": jobs.refused}
    assert jobs.lost == 0

    queue = JobQueue(max_attempts=2)
    queue.submit("j", 0.0)
    import random
    rng = random.Random(1)
    assert queue.take(0.0) == "j" and queue.retry_later("j", 0.0, rng) is not None
    later = queue.next_ready()
    assert queue.take(later) == "j" and queue.retry_later("j", later, rng) is None
    assert (queue.dead, queue.status("j"), queue.accepted) == (1, "dead", 1)


def test_job_queue_states_and_refusals():
    queue = JobQueue()
    queue.submit(1, 0.0)
    assert queue.status(1) == "queued" and queue.take(0.0) == 1 and queue.status(1) == "running"
    assert queue.take(0.0) is None
    assert queue.complete(1, 3.0) == 3.0 and queue.status(1) == "done"
    with pytest.raises(ValueError, match="already in the queue"):
        queue.submit(1, 4.0)
    with pytest.raises(ValueError, match="not running"):
        queue.complete(1, 4.0)
    with pytest.raises(ValueError, match="never accepted|one this queue accepted"):
        queue.status(99)
    with pytest.raises(ValueError, match="capacity must be"):
        JobQueue(capacity=0)
    with pytest.raises(ValueError, match="backoff must be a Backoff"):
        JobQueue(backoff=1.0)
    with pytest.raises(ValueError, match="workers must be"):
        world = World(seed=1)
        DeferredJobs(world, JobQueue(), target=Service(world, "x"), workers=0)


# --- quality over time ----------------------------------------------------------------------------
def test_quality_shares_series_sum_to_one_and_show_the_outage():
    from resilience_sim.metrics.windows import quality_shares_series
    results, _ = recommendations(["recommender", "popular_in_city", Static("bestsellers")], popular_error=0.5)
    series = quality_shares_series(results, 10.0)
    keys = list(series)
    assert keys[:2] == ["t", "full"] and keys[-1] == "unanswered"
    assert set(keys[2:4]) == {"popular_in_city", "bestsellers"}
    total = sum(series[k] for k in series if k != "t")
    assert np.allclose(total[:30], 1.0)
    inside = (series["t"] >= 100) & (series["t"] < 200)
    assert np.all(series["full"][inside] == 0) and np.all(series["full"][series["t"] < 90] == 1)
    assert series["bestsellers"][inside].mean() == pytest.approx(0.5, abs=0.1)


def test_quality_over_time_draws_one_band_per_kind_of_answer():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from resilience_sim.views import plots
    results, _ = recommendations(["recommender", "popular_in_city", Static("bestsellers")], popular_error=0.5)
    ax = plots.quality_over_time(results, bin_width=10.0)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "full" and set(labels[1:3]) == {"popular_in_city", "bestsellers"}
    assert labels[3:] == ["unanswered", "outage"]
    plt.close(ax.figure)


def test_a_zero_backoff_against_a_dead_target_stops_with_a_clear_error():
    from resilience_sim.policies import ConstantBackoff
    world = World(seed=1)
    builder = Service(world, "builder")
    Outage(builder, [(0.0, 100.0)])
    jobs = DeferredJobs(world, JobQueue(backoff=ConstantBackoff(0.0)), target=builder)
    front = Service(world, "export", handler=lambda svc, req: jobs.submit(req))
    OpenLoop(world, front, Constant(1), duration=2)
    with pytest.raises(RuntimeError, match="no wait between tries"):
        world.run(50)


def test_idempotency_keys_give_a_retried_request_its_existing_job():
    world = World(seed=1)
    builder = Service(world, "builder", capacity=4, latency=1.0)
    jobs = DeferredJobs(world, JobQueue(), target=builder, workers=4, idempotency_key=lambda req: req.key)
    front = Service(world, "export", capacity=10, handler=lambda svc, req: jobs.submit(req))
    OpenLoop(world, front, Constant(4), duration=20, key=lambda rng: rng.randrange(10))   # many retries of 10 keys
    results = world.run(60)
    stats = results.jobs("jobs")
    assert stats.accepted == 10 == stats.completed and len(results) > 50
    assert jobs.status(1) == "done"
