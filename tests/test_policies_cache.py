"""The cache policy with plain numbers: TTLs, stale modes, coalescing, negative caching, LRU, bad input."""
import math

import pytest
from hypothesis import given, settings, strategies as st

from resilience_sim.policies import Cache
from resilience_sim.policies.cache import ERROR, FRESH, MISS, NEGATIVE, STALE, WAIT


def filled(cache, key="a", value="v", at=0.0):
    assert cache.lookup(key, at).kind == MISS
    cache.fill(key, value, at)
    return cache


@pytest.mark.parametrize("ttl", [0.5, 60.0, 3600.0])
def test_fresh_up_to_the_ttl_inclusive_then_a_miss(ttl):
    cache = filled(Cache(ttl))
    hit = cache.lookup("a", ttl)
    assert (hit.kind, hit.value, hit.age) == (FRESH, "v", ttl)
    assert cache.lookup("a", ttl * 1.001).kind == MISS
    assert (cache.hits, cache.misses, cache.fetches) == (1, 2, 2)


def test_entries_are_per_key():
    cache = filled(Cache(10), "a", "A")
    assert cache.lookup("b", 1.0).kind == MISS
    cache.fill("b", "B", 1.0)
    assert cache.lookup("a", 2.0).value == "A" and cache.lookup("b", 2.0).value == "B"


@pytest.mark.parametrize("ttl, hard", [(10.0, 10.5), (10.0, 25.0), (60.0, 600.0)])
def test_stale_if_error_serves_up_to_the_hard_ttl_and_never_older(ttl, hard):
    cache = filled(Cache(ttl, hard_ttl=hard))
    assert cache.lookup("a", hard).kind == MISS
    served = cache.fail("a", "down", hard)
    assert (served.kind, served.value, served.age, served.reason) == (STALE, "v", hard, "stale-if-error")
    assert cache.lookup("a", hard + 0.5).kind == MISS
    assert cache.fail("a", "down", hard + 0.5).kind == ERROR
    assert cache.stale_if_error == 1


def test_without_a_hard_ttl_nothing_is_served_stale():
    cache = filled(Cache(10))
    cache.lookup("a", 10.1)
    assert cache.fail("a", "down", 10.1).kind == ERROR


def test_a_failure_before_anything_was_cached_passes_the_error_on():
    cache = Cache(10, hard_ttl=100)
    cache.lookup("a", 0.0)
    out = cache.fail("a", "timeout", 0.0)
    assert (out.kind, out.reason) == (ERROR, "timeout")


def test_stale_while_revalidate_serves_stale_and_asks_one_caller_to_refresh():
    cache = filled(Cache(10, stale_while_revalidate=5))
    first, second = cache.lookup("a", 12.0), cache.lookup("a", 13.0)
    assert (first.kind, first.refresh, second.kind, second.refresh) == (STALE, True, STALE, False)
    cache.fill("a", "v2", 14.0)               # the refresh lands
    assert cache.lookup("a", 15.0).value == "v2" and cache.lookup("a", 15.0).kind == FRESH
    assert cache.lookup("a", 29.5).kind == MISS     # 15.5 s old: past ttl + swr, the next caller blocks
    assert cache.stale == 2 and cache.fetches == 3


def test_coalescing_one_fetch_per_key_and_waiters_get_told():
    cache = Cache(10)
    assert [cache.lookup("a", 0.0).kind for _ in range(4)] == [MISS, WAIT, WAIT, WAIT]
    assert cache.lookup("b", 0.0).kind == MISS
    assert (cache.coalesced, cache.fetches) == (3, 2)
    cache.fail("a", "error", 1.0)
    assert cache.lookup("a", 1.0).kind == MISS     # the failed fetch is no longer outstanding


def test_a_store_is_a_fill_without_its_answer():
    stored, filled_ = Cache(10, capacity=2), Cache(10, capacity=2)
    for key, at in (("a", 0.0), ("b", 1.0), ("c", 2.0)):       # the third evicts "a" from both
        for cache in (stored, filled_):
            assert cache.lookup(key, at).kind == MISS
        assert stored.store(key, f"v{key}", at) is None
        assert filled_.fill(key, f"v{key}", at).kind == FRESH
    for cache in (stored, filled_):
        assert [cache.lookup(k, 3.0).kind for k in "bc"] == [FRESH, FRESH] and cache.lookup("c", 3.0).age == 1.0
    counters = ("hits", "misses", "fetches", "evictions")
    assert [getattr(stored, c) for c in counters] == [getattr(filled_, c) for c in counters] == [3, 3, 3, 1]
    with pytest.raises(ValueError, match="no fetch outstanding"):
        stored.store("z", 1, 4.0)
    with pytest.raises(ValueError, match="now must not go back"):
        stored.store("b", 1, 0.5)


def test_without_coalescing_every_miss_fetches():
    cache = Cache(10, coalesce=False)
    assert {cache.lookup("a", 0.0).kind for _ in range(5)} == {MISS}
    assert cache.fetches == 5


def test_negative_caching_answers_the_cached_error_for_its_ttl():
    cache = Cache(10, negative_ttl=2)
    cache.lookup("missing", 0.0)
    cache.fail("missing", "not found", 0.0)
    neg = cache.lookup("missing", 2.0)
    assert (neg.kind, neg.reason) == (NEGATIVE, "not found")
    assert cache.lookup("missing", 2.01).kind == MISS
    assert cache.negative == 1


def test_lru_eviction_keeps_capacity_and_drops_the_least_recently_used():
    cache = Cache(100, capacity=2)
    for t, key in enumerate("ab"):
        filled(cache, key, key.upper(), float(t))
    cache.lookup("a", 2.0)                     # "a" is now the most recent
    filled(cache, "c", "C", 3.0)
    assert len(cache) == 2 and cache.evictions == 1
    assert cache.lookup("b", 4.0).kind == MISS and cache.lookup("a", 4.0).kind == FRESH


def test_invalidate_and_clear():
    cache = filled(Cache(100))
    assert cache.invalidate("a") and not cache.invalidate("a")
    filled(cache, at=1.0)
    cache.clear()
    assert len(cache) == 0 and cache.lookup("a", 2.0).kind == MISS


def test_no_ttl_keeps_entries_until_evicted():
    cache = filled(Cache(None))
    assert cache.lookup("a", 1e9).kind == FRESH and cache.max_staleness == math.inf


def test_from_cache_control_maps_rfc_5861():
    cache = Cache.from_cache_control("max-age=600, stale-while-revalidate=30, stale-if-error=1200")
    assert (cache.ttl, cache.stale_while_revalidate, cache.hard_ttl) == (600, 30, 1800)
    assert cache.max_staleness == 1800
    with pytest.raises(ValueError, match="max-age"):
        Cache.from_cache_control("stale-if-error=5")
    with pytest.raises(ValueError, match="whole number"):
        Cache.from_cache_control("max-age=abc")


@pytest.mark.parametrize("kwargs, match", [
    ({"ttl": -1}, "ttl must be"),
    ({"ttl": 0}, "ttl must be"),
    ({"ttl": 60, "hard_ttl": 30}, "hard_ttl must be"),
    ({"ttl": 60, "capacity": 0}, "capacity must be"),
    ({"ttl": None, "hard_ttl": 60}, "hard_ttl needs a ttl"),
    ({"ttl": None, "stale_while_revalidate": 5}, "stale_while_revalidate needs a ttl"),
    ({"ttl": 60, "negative_ttl": -1}, "negative_ttl must be"),
    ({"ttl": 60, "coalesce": "yes"}, "coalesce must be True or False"),
])
def test_nonsense_is_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Cache(**kwargs)


def test_bad_calls_are_refused():
    cache = Cache(10)
    with pytest.raises(ValueError, match="key must be hashable"):
        cache.lookup(["a"], 0.0)
    with pytest.raises(ValueError, match="no fetch outstanding"):
        cache.fill("a", 1, 0.0)
    cache.lookup("a", 5.0)
    with pytest.raises(ValueError, match="now must not go back"):
        cache.lookup("a", 4.0)
    with pytest.raises(ValueError, match="reason must be a known reason"):
        cache.fail("a", "oops", 6.0)


# --- bounded staleness, whatever happens ----------------------------------------------------------
steps = st.lists(st.tuples(st.floats(0, 30), st.sampled_from("ab"), st.sampled_from(["ok", "fail", "none"])),
                 max_size=60)


@settings(max_examples=200, deadline=None)
@given(steps=steps, ttl=st.floats(0.5, 20), extra=st.floats(0, 20), swr=st.floats(0, 20),
       neg=st.floats(0, 5), coalesce=st.booleans())
def test_no_answer_is_older_than_the_bound(steps, ttl, extra, swr, neg, coalesce):
    cache = Cache(ttl, hard_ttl=ttl + extra, stale_while_revalidate=swr, negative_ttl=neg, coalesce=coalesce)
    now, outstanding = 0.0, []
    for gap, key, outcome in steps:
        now += gap
        look = cache.lookup(key, now)
        if look.served:
            assert look.age <= cache.max_staleness
            assert look.kind == STALE or look.age <= ttl
        if look.kind == MISS or look.refresh:
            outstanding.append(key)
        if outstanding and outcome != "none":
            done = outstanding.pop(0)
            if outcome == "ok":
                cache.fill(done, now, now)
            else:
                out = cache.fail(done, "error", now)
                assert not out.served or out.age <= cache.hard_ttl
    assert cache.hits + cache.stale + cache.negative + cache.coalesced + cache.misses == len(steps)


def test_stale_if_error_covers_the_sources_failures_not_a_not_found():
    cache = filled(Cache(60, hard_ttl=360, negative_ttl=10))
    cache.lookup("a", 100.0)
    gone = cache.fail("a", "not found", 100.0)
    assert (gone.kind, gone.reason) == (ERROR, "not found")
    assert cache.lookup("a", 101.0).kind == NEGATIVE                  # the 404 is cached, not the old value
    assert cache.lookup("a", 111.0).kind == MISS
    assert cache.fail("a", "down", 111.0).kind == ERROR               # the old value was dropped by the 404
    custom = filled(Cache(60, hard_ttl=360, stale_on={"timeout"}))
    custom.lookup("a", 100.0)
    assert custom.fail("a", "down", 100.0).kind == ERROR
    with pytest.raises(ValueError, match="stale_on must be"):
        Cache(60, stale_on="down")
