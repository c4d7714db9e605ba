"""Lab 04's checks accept the reference solution and reject each typical mistake with a message that
names it. The reference class, page and settings come from the solution notebook itself (its code cells
run here in order), so the notebook stays the single source of truth. Each mistake is written the way a
learner would write it, switched on by a keyword."""
from __future__ import annotations

import re
import time
from pathlib import Path
from time import monotonic

import pytest
from lab_support import fails, run_child, solution_namespace

from resilience_sim import Cache, CachedRead, Client, FallbackChain, Service, ServiceError, with_fallbacks
from resilience_sim.labs import cache as check
from resilience_sim.policies import Bulkhead, ConstantBackoff, Lookup, RetryPolicy
from resilience_sim.policies.cache import ERROR, FRESH, MISS, STALE, WAIT

ROOT = Path(__file__).resolve().parents[1]
CLASS_CHECKS = ["ttl", "hard_ttl", "coalescing"]


@pytest.fixture(scope="module")
def ref() -> dict:
    """The namespace left by running every code cell of the solution notebook."""
    return solution_namespace("04_cache_and_fallback.ipynb")


# --- the reference solution passes every check ---------------------------------------------------
@pytest.mark.parametrize("name", CLASS_CHECKS)
def test_check_accepts_the_solution(ref, name, capsys):
    getattr(check, name)(ref["RecCache"])
    out = capsys.readouterr().out
    assert out.startswith("✔ ") and out.count("\n") == 1


def test_page_check_accepts_the_solution(ref, capsys):
    check.page(ref["recommendations_page"])
    assert capsys.readouterr().out.startswith("✔ ")


def test_targets_accept_the_solution_and_report_every_run(ref, capsys):
    check.targets(ref["RecCache"], ref["recommendations_page"], ref["TTL"], ref["HARD_TTL"], ref["DB_SLOTS"])
    out = capsys.readouterr().out
    for name, _ in check._RUNS:
        assert name in out
    assert "popular_db answered 121 views in time (it can do about 120), 0 too late" in out
    assert out.strip().splitlines()[-1].startswith("✔ ")


def test_the_solutions_demo_numbers(ref):
    assert abs(ref["hits"] - 0.9) < 0.02                       # λT / (1 + λT) with λ = 1/s, T = 9 s
    assert ref["together"] == 5 and ref["alone"] > 50           # one fetch per segment, or a herd
    assert 80 <= ref["first"] <= 95 and ref["oldest"] <= 120    # stale for 90-120 s, never past hard_ttl
    assert ref["answered"] < 0.995                              # no stale-if-error: the target is missed


def test_the_solution_agrees_with_the_course_cache_on_more_random_sequences(ref):
    for seed in range(100, 400):
        check._random_sequence(ref["RecCache"], seed)


def test_other_good_settings_pass_too(ref, capsys):
    """The targets leave room: a shorter TTL, a hard TTL that covers the longest outage, 3 slots."""
    check.targets(ref["RecCache"], ref["recommendations_page"], 10, 200, 3)
    assert "✔" in capsys.readouterr().out


# --- a cache with one deliberate mistake switched on -----------------------------------------------
MISTAKES = {"strict_ttl", "hard_as_ttl", "stale_in_lookup", "never_expires", "ms_ages", "ms_age_field",
            "ttl_minutes", "shared_state", "wall_clock", "imported_clock", "ignore_ttl", "ignore_hard",
            "ignore_coalesce", "no_coalesce", "global_coalesce", "fail_keeps_fetching", "fill_keeps_fetching",
            "restamp_on_fail", "stale_forever", "delete_expired", "strict_hard", "error_reason",
            "hard_default_300", "no_coalesce_attr", "coalesce_attr_always_true", "bucket_keys", "str_keys",
            "one_slot", "busy_wait", "returns_value", "returns_none", "upper_kind", "age_zero",
            "stale_while_fetching", "fail_only_clears_when_stale", "fill_returns_none", "no_stale_reason",
            "hard_none_crash", "fresh_on_fail", "keep_old_value", "keyerror_on_fail", "no_defaults",
            "coalesce_only_cold", "numpy_bool_coalesce",
            # found by the learner review
            "shared_lookup", "mutated_lookup", "fill_age_now", "coalesce_default_false", "remove_fetching",
            "age_minus_ttl", "positional_reason", "shared_fetching_only", "negative_lookup", "lookup_typo",
            "init_bug", "default_arg_entries", "lookup_in_entry",
            "shared_miss_wait"}     # not a mistake: one MISS and one WAIT for all, never changed
_SHARED_ERROR = Lookup(ERROR)           # "one ERROR answer will do": shared_lookup changes its reason
_SHARED_MISS, _SHARED_WAIT = Lookup(MISS), Lookup(WAIT)     # never changed: as the course's Cache does


def cache_class(**mistakes):
    """The solution's cache, rewritten here so that each keyword switches on one typical mistake."""
    unknown = set(mistakes) - MISTAKES
    assert not unknown, unknown
    m = mistakes.get

    def clock(now):
        if m("wall_clock"):
            return time.monotonic()
        if m("imported_clock"):
            return monotonic()
        return now

    class RecCache:
        shared_entries: dict = {}
        shared_fetching: set = set()
        fetching_for_all: set = set()

        def __init__(self, ttl, hard_ttl=None, coalesce=True):
            self.ttl = 60.0 if m("ignore_ttl") else ttl * 60 if m("ttl_minutes") else ttl
            if m("hard_none_crash"):
                self.hard_ttl = hard_ttl
            elif m("hard_default_300") and hard_ttl is None:
                self.hard_ttl = 300.0
            else:
                self.hard_ttl = ttl if hard_ttl is None else hard_ttl
            if m("ignore_hard"):
                self.hard_ttl = 300.0
            if not m("no_coalesce_attr"):
                self.coalesce = True if m("coalesce_attr_always_true") else coalesce
            if m("numpy_bool_coalesce"):
                import numpy as np
                self.coalesce = np.bool_(coalesce)
            self._coalesce = False if m("no_coalesce") else True if m("ignore_coalesce") else coalesce
            if m("shared_state"):
                self.entries, self.fetching = RecCache.shared_entries, RecCache.shared_fetching
            else:
                self.entries, self.fetching = {}, set()
            if m("shared_fetching_only"):
                self.fetching = RecCache.fetching_for_all
            if m("init_bug"):
                self.fetching = set(1, 2)                     # "a set of keys"
            if m("negative_lookup"):
                self.errors = {}
            self.slot = None

        def _key(self, key):
            if m("bucket_keys"):
                return hash(key) % 64
            if m("str_keys"):
                return str(key)
            return key

        def _get(self, key):
            return self.slot if m("one_slot") else self.entries.get(self._key(key))

        def _age(self, entry, now):
            age = clock(now) - entry[1]
            return age * 1000 if m("ms_ages") else age

        def lookup(self, key, now):
            if m("negative_lookup") and key in self.errors:     # "remember the failure"
                return Lookup(ERROR, reason=self.errors.pop(key))
            if m("busy_wait"):
                while self._coalesce and key in self.fetching:     # "wait for the other fetch"
                    pass
            entry = self._get(key)
            if entry is not None:
                age = self._age(entry, now)
                limit = self.hard_ttl if m("hard_as_ttl") else self.ttl
                fresh = True if m("never_expires") else (age < limit) if m("strict_ttl") else (age <= limit)
                if fresh:
                    shown = age * 1000 if m("ms_age_field") else 0.0 if m("age_zero") else age
                    if m("returns_value"):
                        return entry[0]
                    return Lookup("FRESH" if m("upper_kind") else FRESH, entry[0], shown)
                if m("stale_in_lookup") and age <= self.hard_ttl:
                    return Lookup(STALE, entry[0], age)
                if m("delete_expired"):
                    del self.entries[self._key(key)]
                if m("coalesce_only_cold"):
                    self.fetching.add(self._key(key))
                    return Lookup(MISS)
            if m("stale_while_fetching") and entry is not None and self._key(key) in self.fetching:
                return Lookup(STALE, entry[0], self._age(entry, now), reason="stale-if-error")
            busy = bool(self.fetching) if m("global_coalesce") else self._key(key) in self.fetching
            if self._coalesce and busy:
                return _SHARED_WAIT if m("shared_miss_wait") else Lookup(WAIT)
            if m("returns_none"):
                return None
            self.fetching.add(self._key(key))
            return _SHARED_MISS if m("shared_miss_wait") else Lookup(MISS)

        def fill(self, key, value, now):
            if m("remove_fetching"):
                self.fetching.remove(self._key(key))
            elif not m("fill_keeps_fetching"):
                self.fetching.discard(self._key(key))
            if m("one_slot"):
                self.slot = (value, clock(now))
            elif not (m("keep_old_value") and self._key(key) in self.entries):
                self.entries[self._key(key)] = (value, clock(now))
            if m("fill_age_now"):
                return Lookup(FRESH, value, now)
            return None if m("fill_returns_none") else Lookup(FRESH, value, 0.0)

        def fail(self, key, reason, now):
            if m("keyerror_on_fail"):
                self.entries[self._key(key)]
            entry = self._get(key)
            if m("remove_fetching"):
                self.fetching.remove(self._key(key))
            elif not m("fail_keeps_fetching") and not m("fail_only_clears_when_stale"):
                self.fetching.discard(self._key(key))
            if entry is not None:
                age = self._age(entry, now)
                within = True if m("stale_forever") else (age < self.hard_ttl) if m("strict_hard") else (
                    age <= self.hard_ttl)
                if within:
                    if m("fail_only_clears_when_stale"):
                        self.fetching.discard(self._key(key))
                    if m("restamp_on_fail"):
                        self.entries[self._key(key)] = (entry[0], clock(now))
                        age = 0.0
                    if m("fresh_on_fail"):
                        return Lookup(FRESH, entry[0], age)
                    if m("age_minus_ttl"):
                        return Lookup(STALE, entry[0], age - self.ttl, reason="stale-if-error")
                    if m("positional_reason"):
                        return Lookup(STALE, entry[0], age, "stale-if-error")
                    if m("lookup_typo"):
                        return Lookup(STALE, entry[0], age, reasons="stale-if-error")
                    return Lookup(STALE, entry[0], age, reason="" if m("no_stale_reason") else "stale-if-error")
            if m("negative_lookup"):
                self.errors[key] = reason
            if m("shared_lookup"):
                _SHARED_ERROR.reason = reason
                return _SHARED_ERROR
            return Lookup(ERROR, reason="error" if m("error_reason") else reason)

    if m("no_defaults"):
        class RecCache(RecCache):   # noqa: F811 - the same cache with the task's defaults dropped
            def __init__(self, ttl, hard_ttl, coalesce):
                super().__init__(ttl, hard_ttl, coalesce)
    if m("coalesce_default_false"):
        class RecCache(RecCache):   # noqa: F811 - "coalescing is for task 3: off until then"
            def __init__(self, ttl, hard_ttl=None, coalesce=False):
                super().__init__(ttl, hard_ttl, coalesce)
    if m("default_arg_entries"):
        class RecCache(RecCache):   # noqa: F811 - the entries given as a default argument, made once
            def __init__(self, ttl, hard_ttl=None, coalesce=True, entries={}):   # noqa: B006 - the mistake
                super().__init__(ttl, hard_ttl, coalesce)
                self.entries = entries
    if m("lookup_in_entry"):
        class RecCache(RecCache):   # noqa: F811 - "keep the answer with the entry, update its age"
            def fill(self, key, value, now):
                look = super().fill(key, value, now)
                self.entries[key] = (value, now, look)
                return look

            def lookup(self, key, now):
                entry = self.entries.get(key)
                if entry is not None and now - entry[1] <= self.ttl:
                    look = entry[2]
                    look.age = now - entry[1]
                    return look
                return super().lookup(key, now)
    if m("mutated_lookup"):
        class RecCache(RecCache):   # noqa: F811 - "one answer object per cache, filled in anew each time"
            def _one(self, look):
                out = self.__dict__.setdefault("_out", Lookup(MISS))
                out.kind, out.value, out.age, out.reason = look.kind, look.value, look.age, look.reason
                return out

            def lookup(self, key, now):
                return self._one(super().lookup(key, now))

            def fill(self, key, value, now):
                return self._one(super().fill(key, value, now))

            def fail(self, key, reason, now):
                return self._one(super().fail(key, reason, now))
    return RecCache


def test_the_test_cache_without_mistakes_passes_everything(capsys):
    for name in CLASS_CHECKS:
        getattr(check, name)(cache_class())
    assert capsys.readouterr().out.count("✔") == len(CLASS_CHECKS)


def test_shared_answers_that_never_change_are_accepted(capsys):
    """One MISS and one WAIT object for every caller, as the course's Cache does: they carry nothing,
    so sharing them is fine; only a Lookup changed after it was returned is a mistake."""
    for name in CLASS_CHECKS:
        getattr(check, name)(cache_class(shared_miss_wait=True))
    assert capsys.readouterr().out.count("✔") == len(CLASS_CHECKS)


def test_a_numpy_bool_coalesce_is_accepted(capsys):
    for name in CLASS_CHECKS:
        getattr(check, name)(cache_class(numpy_bool_coalesce=True))
    assert capsys.readouterr().out.count("✔") == len(CLASS_CHECKS)


def _first_failure(cls) -> str:
    """The message of the first class check that fails, as the learner meets them in order."""
    for name in CLASS_CHECKS:
        try:
            getattr(check, name)(cls)
        except AssertionError as err:
            return f"{name}: {err}"
    raise AssertionError("every check passed")


@pytest.mark.parametrize("mistake, where, match", [
    # the mistakes
    ("stale_forever", "hard_ttl", r"Unbounded staleness: c\.fail\('a', 'down', 300\.5\) .*past hard_ttl=300"),
    ("restamp_on_fail", "hard_ttl", r"Does fail store it again with `now`\?.*unbounded staleness"),
    ("stale_in_lookup", "hard_ttl", r"a cache that never expires while the source is healthy"),
    ("never_expires", "ttl", r"lookup\('a', 61\.0\) after c\.fill\('a', 'A1', 0\.0\) with ttl=60\.0 returned "
                             r"FRESH; an entry older than ttl must not be fresh"),
    ("hard_as_ttl", "hard_ttl", r"hard_ttl=300\.0 does not make it fresh"),
    ("fail_keeps_fetching", "coalescing", r"Coalescing that loses its waiters when the fetch fails: fail must "
                                          r"end the fetch"),
    ("fail_only_clears_when_stale", "coalescing", r"Coalescing that loses its waiters when the fetch fails"),
    ("bucket_keys", "ttl", r"That value was filled for key .*, not .*: your cache is keyed on something other "
                           r"than the request's key"),
    ("str_keys", "ttl", r"filled for key 1, not '1': your cache is keyed on something other than"),
    ("one_slot", "ttl", r"filled for key 'a', not 'b': your cache is keyed on something other than"),
    # the boundaries, units, clocks and state
    ("strict_ttl", "ttl", r"Off by one: .*ttl=60\.0 returned MISS\. An entry exactly ttl old is still fresh"),
    ("strict_hard", "hard_ttl", r"Off by one: c\.fail\('a', 'down', 300\.0\).*compare with <="),
    ("ms_ages", "ttl", r"1000 times too soon: ages in milliseconds"),
    ("ms_age_field", "ttl", r"\(age 30000\).*its age is in milliseconds"),
    ("ttl_minutes", "ttl", r"60 times too long: is the ttl taken as minutes\?"),
    ("shared_state", "ttl", r"never filled in this new cache.*class body, at module level or as a default argument "
                            r"\(def __init__\(\.\.\., entries=\{\}\)\) is one for all instances"),
    ("default_arg_entries", "ttl", r"never filled in this new cache.*as a default argument \(def __init__\(\.\.\., "
                                   r"entries=\{\}\)\)"),
    ("wall_clock", "ttl", r"reads the wall clock"),
    ("imported_clock", "ttl", r"reads the wall clock"),
    # parameters ignored, defaults missing
    ("ignore_ttl", "ttl", r"answers the same whatever its ttl \(tried 5 and 500\): a parameter ignored"),
    ("ignore_hard", "hard_ttl", r"answers the same whatever its hard_ttl"),
    ("ignore_coalesce", "ttl", r"With coalesce=False every caller fetches for itself: .*Honour the coalesce"),
    ("no_defaults", "ttl", r"later cells build RecCache without hard_ttl or coalesce.*yours has none for hard_ttl "
                           r"and coalesce"),
    ("hard_default_300", "hard_ttl", r"With hard_ttl=None there are no stale answers"),
    ("no_coalesce_attr", "coalescing", r"has no attribute coalesce: keep the argument, self\.coalesce"),
    ("coalesce_attr_always_true", "ttl", r"coalesce=False\)\.coalesce is True: keep the argument as it is given"),
    # coalescing
    ("no_coalesce", "coalescing", r"A fetch of 'a' is under way \(the MISS at 0\.0\), and coalesce=True: "
                                  r"this caller must WAIT"),
    ("global_coalesce", "coalescing", r"A fetch of 'a' is under way, not of 'b': coalesce per key"),
    ("fill_keeps_fetching", "hard_ttl", r"fill must end the fetch"),
    ("coalesce_only_cold", "coalescing", r"returned MISS, where it should be WAIT"),
    ("stale_while_fetching", "ttl", r"Nothing has failed: lookup never answers STALE"),
    # stale-if-error
    ("delete_expired", "hard_ttl", r"stale-if-error: the fetch failed.*Keep an entry past ttl"),
    ("error_reason", "hard_ttl", r"Pass on the reason of the failed fetch as it is.*'down'"),
    ("fresh_on_fail", "hard_ttl", r"A failed fetch brings nothing new: never FRESH"),
    ("no_stale_reason", "hard_ttl", r"reason 'stale-if-error'"),
    ("hard_none_crash", "hard_ttl", r"raised TypeError: .*hard_ttl may be None"),
    ("keyerror_on_fail", "hard_ttl", r"c\.fail\('z', 'error', 5\.0\) raised KeyError.*dict\.get"),
    # what the methods return
    ("returns_value", "ttl", r"returned 'A1' \(str\): return a Lookup"),
    ("returns_none", "ttl", r"c\.lookup\('a', 0\.0\) returned None: did you forget `return`\?"),
    ("fill_returns_none", "ttl", r"c\.fill\('a', 'A1', 0\.0\) returned None"),
    ("upper_kind", "ttl", r"kind 'FRESH': use the constants .*lowercase"),
    ("age_zero", "ttl", r"\(age 0\), where it should be FRESH 'A1' \(age 30\): its age is now minus"),
    ("keep_old_value", "ttl", r"Does fill replace the entry\?"),
    # found by the learner review
    ("shared_lookup", "hard_ttl", r"The Lookup returned by c\.fail\('a', 'down', 1\.0\) \(ERROR \(reason 'down'\)\) "
                                  r"changed when you answered c\.fail\('b', 'timeout', 1\.0\): it now says ERROR "
                                  r"\(reason 'timeout'\).*return a new Lookup each time.*Replay:.*"
                                  r"c\.fail\('b', 'timeout', 1\.0\) +# -> ERROR \(reason 'timeout'\)"),
    ("mutated_lookup", "ttl", r"The Lookup returned by c\.lookup\('a', 0\.0\) \(MISS\) changed when you answered "
                              r"c\.fill\('a', 'A1', 0\.0\): it now says FRESH 'A1' \(age 0\).*return a new Lookup"),
    ("lookup_in_entry", "ttl", r"The Lookup returned by c\.fill\('a', 'A1', 0\.0\) \(FRESH 'A1' \(age 0\)\) changed "
                               r"when you answered c\.lookup\('a', 30\.0\): it now says FRESH 'A1' \(age 30\)"),
    ("fill_age_now", "ttl", r"c\.fill\('a', 'A2', 61\.5\) returned FRESH 'A2' \(age 61\.5\), where it should be FRESH "
                            r"'A2' \(age 0\): fill answers age 0.*\(you returned 61\.5, i\.e\. now\)"),
    ("coalesce_default_false", "hard_ttl", r"RecCache\(ttl=10\.0\)\.coalesce is False: .*the default must be "
                                           r"coalesce=True in your def line.*; yours says coalesce=False\."),
    ("remove_fetching", "ttl", r"In the simulator \(RecCache\(ttl=15\.0, hard_ttl=None, coalesce=False\), 20 keys, "
                               r"10 requests/s\), c\.fill\(\d+, .*\) raised KeyError: \d+\. With coalesce=False two "
                               r"fetches of \d+ may be under way at once.*self\.fetching\.discard\(key\).*"
                               r"pop\(key, None\).*Replay:.*# -> raised KeyError"),
    ("age_minus_ttl", "hard_ttl", r"where it should be STALE 'A1' \(age 90, .*you returned 30, its age minus "
                                  r"ttl=60\.0\. The age counts from the fill, not from expiry"),
    ("positional_reason", "hard_ttl", r"'stale-if-error' landed in the Lookup's refresh, not its reason: Lookup's "
                                      r"4th positional argument is refresh.*Write reason='stale-if-error'"),
    ("shared_fetching_only", "coalescing", r"c1's fetch of 'k' \(the MISS at 0\.0\) made c2 wait: the set of keys "
                                           r"being fetched is shared by your caches.*create it in __init__"),
    ("negative_lookup", "hard_ttl", r"c\.lookup\('a', 301\.0\) returned ERROR \(reason 'down'\), where it should be "
                                    r"MISS\. lookup answers FRESH, WAIT or MISS, never ERROR: this cache does not "
                                    r"remember failures"),
    ("lookup_typo", "hard_ttl", r"raised TypeError: .*unexpected keyword argument 'reasons'\. It comes from your line "
                                r"`return Lookup\(STALE, entry\[0\], age, reasons=\"stale-if-error\"\)`: Lookup "
                                r"takes \(kind, value=None, age=0\.0, refresh=False, reason=''\)\."),
    ("init_bug", "ttl", r"RecCache\(ttl=9\.0\) raised TypeError: set expected at most 1 argument, got 2\. It comes "
                        r"from your line `self\.fetching = set\(1, 2\)`\.$"),
])
def test_each_mistake_is_named(mistake, where, match):
    message = _first_failure(cache_class(**{mistake: True}))
    assert message.startswith(f"{where}: "), message
    assert re.search(match, message, re.S), message


@pytest.mark.parametrize("mistake", ["stale_forever", "restamp_on_fail", "stale_in_lookup", "fail_keeps_fetching",
                                     "strict_ttl", "strict_hard", "no_coalesce", "global_coalesce",
                                     "ms_ages", "hard_as_ttl", "delete_expired", "keep_old_value"])
def test_the_random_sequences_catch_the_behavioural_mistakes_too(mistake):
    cls = cache_class(**{mistake: True})
    with pytest.raises(AssertionError, match="should be|Replay"):
        for seed in range(300):
            check._random_sequence(cls, seed)


def test_replays_show_the_calls_that_lead_to_the_mistake():
    message = fails(check.coalescing, cache_class(fail_keeps_fetching=True), match="loses its waiters")
    assert "c = RecCache(ttl=30.0, hard_ttl=120.0, coalesce=True)" in message
    assert "c.fail('c', 'timeout', 2.0)" in message and "# -> WAIT   <- should be MISS" in message


def test_simulator_messages_say_where_they_come_from():
    message = fails(check.ttl, cache_class(stale_while_fetching=True), match="In the simulator")
    assert "RecCache(ttl=15.0, hard_ttl=None, coalesce=False), 20 keys, 10 requests/s" in message


def test_wall_clock_diagnosis_leaves_the_clocks_alone():
    before = time.monotonic
    fails(check.ttl, cache_class(wall_clock=True), match="wall clock")
    assert time.monotonic is before and monotonic is before and time.monotonic() > 0


# --- calling mistakes and unwritten code ---------------------------------------------------------
def unwritten(*methods):
    base = cache_class()

    class RecCache(base):
        pass

    def stub(self, *args, **kwargs):
        raise NotImplementedError("Your code here")
    for name in methods:
        setattr(RecCache, name, stub)
    return RecCache


def test_unwritten_class_says_so():
    fails(check.ttl, unwritten("__init__"), match=r"RecCache\.__init__ is not written yet")
    fails(check.ttl, unwritten("lookup"), match=r"RecCache\.lookup is not written yet")


def test_later_cells_say_which_task_to_write_first(ref):
    fails(check.hard_ttl, unwritten("__init__"), match=r"^Write task 1 first: RecCache\.__init__ is not written")
    fails(check.coalescing, unwritten("fail"), match=r"^Write task 2 first: RecCache\.fail is not written yet")
    fails(lambda cls: check.one_key(cls, ttl=9, rate=1.0, seed=1), unwritten("lookup"), match="Write task 1 first")
    fails(lambda cls: check.outage_run(cls, ttl=30, hard_ttl=120, outage=(300, 600), seed=1), unwritten("fail"),
          match="Write task 2 first")
    fails(lambda cls: check.herd(cls, coalesce=True, seed=1), cache_class(no_coalesce=True),
          match=r"^check\.coalescing\(RecCache\) of task 3 no longer passes with your class as it is now")

    def page(world, cache, db_slots):
        raise NotImplementedError("Your code here")
    fails(lambda f: check.page_run(ref["RecCache"], f, ttl=30, hard_ttl=300, db_slots=4), page,
          match=r"^Write task 4 first: recommendations_page is not written yet")
    fails(check.targets, ref["RecCache"], page, 30, 300, 3, match="Write task 4 first")
    fails(check.targets, unwritten("lookup"), ref["recommendations_page"], 30, 300, 3, match="Write task 1 first")


def test_wrong_signature_says_which_arguments():
    class RecCache:
        def __init__(self, max_age):
            pass
    fails(check.ttl, RecCache, match=r"TypeError.*takes \(ttl, hard_ttl=None, coalesce=True\), by these names")


def test_a_method_with_the_wrong_def_line_gets_the_signature_hint_and_a_bug_inside_gets_its_line():
    base = cache_class()

    class NoNow(base):
        def lookup(self, key):                       # forgot `now`
            return super().lookup(key, 0.0)
    message = fails(check.ttl, NoNow, match=r"c\.lookup\('a', 0\.0\) raised TypeError: .*The methods are "
                                            r"lookup\(key, now\), fill\(key, value, now\)")
    assert "It comes from your line" not in message

    message = fails(check.ttl, cache_class(init_bug=True), match=r"It comes from your line `self\.fetching = set")
    assert "later cells build" not in message and "def __init__(self, ttl, hard_ttl=None" not in message


def test_an_instance_instead_of_the_class():
    fails(check.ttl, cache_class()(ttl=1.0), match="pass the class itself")


def test_learner_exception_in_a_run_names_the_call():
    base = cache_class()

    class RecCache(base):
        def fill(self, key, value, now):
            if now > 50:
                raise ValueError("oops")
            return super().fill(key, value, now)
    message = fails(check.ttl, RecCache, match=r"In the simulator|raised ValueError: oops")
    assert "c.fill(" in message and "raised ValueError: oops" in message


# --- task 4: the page --------------------------------------------------------------------------------
PAGE_MISTAKES = {"unprotected", "timeout_only", "fixed_slots_4", "fixed_slots_2", "retry_recommender", "ask_again",
                 "chain_again", "unmarked", "no_return", "capacity_1", "own_cache", "fallback_inside_fetch",
                 "no_fallback", "popular_first", "endless_loop", "long_wait", "global_bulkhead", "with_fallbacks",
                 "returns_none_value", "layer_in_handler", "both_always",
                 # found by the learner review
                 "degrade_all", "catch_all", "bare_except", "typo_catch_all", "static_popular", "client_by_name",
                 "client_without_world"}
_SHARED_BULKHEAD = Bulkhead(4)


def page_fn(**mistakes):
    """The solution's page, rewritten here so that each keyword switches on one typical mistake."""
    unknown = set(mistakes) - PAGE_MISTAKES
    assert not unknown, unknown
    m = mistakes.get

    if m("with_fallbacks") or m("chain_again"):
        def recommendations_page(world, cache, db_slots):
            layer = CachedRead(world, cache)
            recs = Service(world, "cached_recs", capacity=1000, dependencies=["recommender"],
                           handler=lambda svc, req: layer.read(req, lambda sub: svc.ask("recommender", sub)))
            popular = Client(world, world.service("popular_db"), name="page->popular_db",
                             bulkhead=Bulkhead(db_slots))
            # "if the cache fails, try the recommender directly"
            steps = ["cached_recs", "recommender", "popular_db"] if m("chain_again") else ["cached_recs", "popular_db"]
            chain = FallbackChain(steps, labels={"popular_db": "popular"})
            deps = [recs, popular] + (["recommender"] if m("chain_again") else [])
            return Service(world, "page", capacity=1000, dependencies=deps,
                           handler=lambda svc, req: with_fallbacks(svc, req, chain))
        return recommendations_page

    def recommendations_page(world, cache, db_slots):
        if m("own_cache"):
            cache = Cache(30.0, hard_ttl=300.0)
        layer = None if m("layer_in_handler") else CachedRead(world, cache)
        size = 4 if m("fixed_slots_4") else 2 if m("fixed_slots_2") else db_slots
        if m("unprotected"):
            popular = "popular_db"
        elif m("client_by_name"):
            popular = Client(world, "popular_db", name="page->popular_db", bulkhead=Bulkhead(size))
        elif m("client_without_world"):
            popular = Client(world.service("popular_db"), name="page->popular_db", bulkhead=Bulkhead(size))
        elif m("timeout_only"):
            popular = Client(world, world.service("popular_db"), name="page->popular_db", timeout=1.0)
        elif m("global_bulkhead"):
            popular = Client(world, world.service("popular_db"), name="page->popular_db", bulkhead=_SHARED_BULKHEAD)
        else:
            popular = Client(world, world.service("popular_db"), name="page->popular_db",
                             bulkhead=Bulkhead(size, max_wait=5.0 if m("long_wait") else 0.0))
        recommender = "recommender"
        if m("retry_recommender"):
            recommender = Client(world, world.service("recommender"), name="page->recommender",
                                 retry=RetryPolicy(3, ConstantBackoff(0.1)))

        def fetch_popular(svc, req):
            if m("static_popular"):                   # "the popular list does not change much"
                req.degraded = "popular"
                return ("popular", svc.env.now)
            value = yield from svc.ask("popular_db", req)
            if not m("unmarked"):
                req.degraded = "popular"
            return value

        caught = BaseException if m("bare_except") else Exception if m("catch_all") or m("typo_catch_all") \
            else ServiceError
        source = "recommendr" if m("typo_catch_all") else "recommender"

        def page(svc, req):
            read = layer or CachedRead(world, cache)
            if m("degrade_all"):
                req.degraded = "popular"                 # "the page is degraded while anything is down"
            if m("endless_loop"):
                steps, i = ["recommender", "popular_db"], 0
                while True:
                    try:
                        return (yield from svc.ask(steps[i], req))
                    except ServiceError:
                        continue                      # forgot i += 1
            if m("popular_first"):
                try:
                    return (yield from svc.ask("popular_db", req))
                except ServiceError:
                    pass
            if m("fallback_inside_fetch"):
                def fetch(sub):
                    try:
                        return (yield from svc.ask("recommender", sub))
                    except ServiceError:
                        return (yield from fetch_popular(svc, sub))
                return (yield from read.read(req, fetch))
            if m("both_always"):
                yield from svc.ask("popular_db", req)
            try:
                value = yield from read.read(req, lambda sub: svc.ask(source, sub))
                return None if m("returns_none_value") else value
            except caught:
                if m("no_fallback"):
                    raise
            if m("ask_again"):
                try:
                    return (yield from svc.ask("recommender", req))
                except ServiceError:
                    pass
            return (yield from fetch_popular(svc, req))

        made = Service(world, "page", capacity=1 if m("capacity_1") else 1000,
                       dependencies=[recommender, popular], handler=page)
        return None if m("no_return") else made
    return recommendations_page


def test_the_test_page_without_mistakes_passes_and_so_does_a_fallback_chain(capsys):
    check.page(page_fn())
    check.page(page_fn(with_fallbacks=True))
    assert capsys.readouterr().out.count("✔") == 2


@pytest.mark.parametrize("mistake, match", [
    # the mistakes
    ("ask_again", r"called the recommender twice.*A fallback that calls the failed dependency again"),
    ("chain_again", r"called the recommender twice.*no second step that is the recommender"),
    ("retry_recommender", r"called the recommender twice.*no retry"),
    ("unprotected", r"popular_db had \d+ calls at once.*No protection for the slower system.*Bulkhead\(db_slots\)"),
    ("timeout_only", r"No protection for the slower system.*a timeout alone does not protect it"),
    # a parameter ignored
    ("fixed_slots_4", r"db_slots=2: popular_db had 4 calls at once.*Use it as the bulkhead's size"),
    ("fixed_slots_2", r"With db_slots=3 .* never had more than 2 calls at once.*yours ignores it"),
    ("own_cache", r"the cache you were given was never asked"),
    # the fallback itself
    ("unmarked", r"got the popular list as a full-quality answer.*req\.degraded = 'popular'"),
    ("fallback_inside_fetch", r"got the popular list from the cache.*the fallback ran inside the cache's fetch"),
    ("no_fallback", r"failed with 'down', although popular_db was there"),
    ("popular_first", r"popular list as a full-quality answer"),
    ("both_always", r"called popular_db \d+ times for the \d+ views made while the recommender was up"),
    ("long_wait", r"came after the visitor had left.*max_wait"),
    # the page as a whole
    ("no_return", r"returned None: did you forget `return`\? It returns the page"),
    ("capacity_1", r"Your page serves 1 request at a time \(capacity=1, the default\)"),
    ("returns_none_value", r"the page answered None for segment"),
    ("layer_in_handler", r"unique among caches.*Create the CachedRead once, in recommendations_page"),
    ("global_bulkhead", r"another World.*build the Bulkhead .* inside recommendations_page"),
    # found by the learner review
    ("degrade_all", r"the recommender's answer for segment \d+ at t = [\d.]+ s, before the outage, was marked "
                    r"degraded \(req\.degraded = 'popular'; \d+ such answers\): set req\.degraded only after the "
                    r"cache read raised ServiceError"),
    ("catch_all", r"cache's lookup raising RuntimeError\('check: a bug'\) once, for the view of segment \d+ at t = "
                  r"[\d.]+ s: your page answered that view with the popular list: it caught the RuntimeError from the "
                  r"cache read and fell back\. Catch ServiceError only"),
    ("bare_except", r"your page answered that view with the popular list: it caught the RuntimeError"),
    ("typo_catch_all", r"called popular_db \d+ times for the \d+ views made while the recommender was up, and the "
                       r"recommender 0 times: the cache read failed with something other than a ServiceError "
                       r"\(ValueError: dependency must be one of .* got 'recommendr', from your line "
                       r"`value = yield from read\.read\(req, lambda sub: svc\.ask\(source, sub\)\)`\), and your "
                       r"page caught it and fell back"),
    ("static_popular", r"^With the recommender down and the cache cold, your page never called popular_db"),
    ("client_by_name", r"raised ValueError: target must have a call.*It comes from your line `popular = Client\(world, "
                       r"\"popular_db\".*`: a Client takes the world and the service it calls, Client\(world, "
                       r"world\.service\('popular_db'\)"),
    ("client_without_world", r"raised TypeError: .*missing 1 required positional argument: 'target'\. It comes from "
                             r"your line `popular = Client\(world\.service\(\"popular_db\"\).*`: a Client takes the "
                             r"world and the service it calls"),
])
def test_each_page_mistake_is_named(mistake, match):
    fails(check.page, page_fn(**{mistake: True}), match=match)


def test_page_check_refuses_what_is_not_a_function():
    fails(check.page, "recommendations_page", match="pass the function itself")


def test_page_with_the_wrong_signature():
    def recommendations_page(world, cache):
        pass
    fails(check.page, recommendations_page, match=r"TypeError.*\(world, cache, db_slots\)")


# --- task 5: the settings ------------------------------------------------------------------------
@pytest.mark.parametrize("settings, match", [
    ((60.0, 300.0, 3), r"a full-quality answer was .* past the 30 s a full-quality answer may be.*TTL <= 30"),
    ((30000.0, 300000.0, 3), r"Keep TTL <= 30\. Milliseconds\?"),
    ((30.0, 600.0, 3), r"an answer was .* past the 300 s bound.*HARD_TTL <= 300"),
    ((30.0, 300000.0, 3), r"HARD_TTL <= 300\. Milliseconds\?"),
    ((30.0, 30.0, 3), r"In the stated outage.*only 9\d\.\d\d% of the views were answered.*'bulkhead full'.*Cover "
                      r"the longest outage plus the TTL"),
    ((30.0, 5.0, 3), r"HARD_TTL = 5.0 is below TTL"),
    ((0.5, 5.0, 3), r"Cover the longest outage plus the TTL.*Minutes\?"),
    ((30.0, 300.0, 1), r"In flatter popularity .*Your bulkhead of DB_SLOTS = 1 refused \d+ views \('bulkhead full'\)"
                       r".*a slot or two more"),
    ((30.0, 300.0, 4), r"of popular_db's \d+ answers came after the visitor had left.*DB_SLOTS = 4 lets calls queue"),
    ((30.0, 300.0, 2), r"popular_db answered only 107 views in a minute, where its 2 connections can answer about 120 "
                       r"\(the target is 93% of that\): DB_SLOTS = 2 leaves connections idle.*With as many slots as "
                       r"connections.*one slot more than the connections"),
    ((30.0, 300.0, 20), r"DB_SLOTS = 20 lets calls queue there longer than a visitor waits.*Lower DB_SLOTS"),
    ((30.0, 300.0, 4.5), r"DB_SLOTS should be a whole number"),
    ((30.0, 300.0, 0), r"at least 1 slot"),
    ((-1.0, 300.0, 3), r"TTL = -1.0: a TTL is a positive number"),
    ((..., 300.0, 3), r"TTL is not written yet"),
    ((30.0, 300.0, ...), r"DB_SLOTS is not written yet"),
    ((30.0, "300", 3), r"HARD_TTL should be a number"),
])
def test_each_settings_mistake_is_named(ref, settings, match):
    message = fails(check.targets, ref["RecCache"], ref["recommendations_page"], *settings, match=match)
    if "%" in match or "DB_SLOTS = " in match:
        assert "answered" in message and "oldest full" in message      # the table of every run comes along


def test_settings_tuned_to_the_stated_run_fail_on_the_others(ref):
    """HARD_TTL = 100 s covers the stated 90 s outage, but not a 2-minute one: the stated run alone
    would pass it, the check does not."""
    _, stated = check.page_run(ref["RecCache"], ref["recommendations_page"], ttl=30, hard_ttl=100, db_slots=3)
    assert stated["answered"] >= check.TARGET_ANSWERED
    fails(check.targets, ref["RecCache"], ref["recommendations_page"], 30, 100, 3,
          match=r"In a 2-minute outage, only .* answered.*HARD_TTL = 100.0 gives up on it before the end")


def test_a_demo_run_with_the_settings_unwritten_says_so(ref):
    fails(lambda: check.page_run(ref["RecCache"], ref["recommendations_page"], ttl=..., hard_ttl=..., db_slots=...,
                                 seed=2024), match=r"^TTL is not written yet: in its cell")
    fails(lambda: check.page_run(ref["RecCache"], ref["recommendations_page"], ttl=30, hard_ttl=300, db_slots=...),
          match=r"^DB_SLOTS is not written yet")


def test_targets_point_at_the_page_when_every_answer_is_degraded(ref):
    message = fails(check.targets, ref["RecCache"], page_fn(degrade_all=True), 30, 300, 3,
                    match=r"In the stated outage \(90 s\), only 0\.00% of the views got a full-quality answer "
                          r"\(target 90%\): \d+ answers were the recommender's recommendations, at most TTL = 30\.0 s "
                          r"old, and yet marked degraded\. That is your page: set req\.degraded only after the cache "
                          r"read raised ServiceError.*Run check\.page\(recommendations_page\) again")
    assert "check.coalescing" not in message


def test_targets_refuse_a_page_that_catches_every_exception(ref):
    fails(check.targets, ref["RecCache"], page_fn(catch_all=True), 30, 300, 3,
          match=r"it caught the RuntimeError from the cache read and fell back.*Run "
                r"check\.page\(recommendations_page\) first\.$")


def test_targets_name_a_page_mistake_found_on_the_way(ref):
    fails(check.targets, ref["RecCache"], page_fn(unmarked=True), 30, 300, 3,
          match=r"popular list as a full-quality answer.*run check\.page\(recommendations_page\) first")


def test_targets_catch_a_cache_whose_stale_answers_never_expire_while_healthy():
    """A cache that serves STALE from lookup while healthy fails task 2's check; the targets' runs would
    count its answers as degraded, but "write task 2 first" comes before that."""
    fails(check.targets, cache_class(stale_in_lookup=True), page_fn(), 30, 300, 3,
          match=r"^check\.hard_ttl\(RecCache\) of task 2 no longer passes.*never expires while the source is healthy")


# --- learner code that never returns ----------------------------------------------------------------
STUCK = '''
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_lab04_cache import cache_class, page_fn
    from resilience_sim.labs import cache as check

    base = cache_class()

    class Sleepy(base):
        def fill(self, key, value, now):
            time.sleep(60)                # "give the source time"
            return super().fill(key, value, now)

    for label, run in [("busy", lambda: check.coalescing(cache_class(busy_wait=True))),
                       ("loop", lambda: check.page(page_fn(endless_loop=True))),
                       ("sleepy", lambda: check._sim_check(Sleepy, dict(ttl=15.0), seed=1, outage=None, keys=5,
                                                           rate=5.0, duration=60.0))]:
        try:
            run()
        except AssertionError as exc:
            print(label, type(exc).__name__, exc)
'''


def test_code_that_never_returns_is_stopped_and_the_call_named(tmp_path):
    out, took = run_child(tmp_path, STUCK.format(tests=str(ROOT / "tests")))
    assert ("busy TimedOut c.lookup('a', 0.125) did not return within 2 s: a loop with no end, or a wait? A cache "
            "answers at once") in out, out
    assert "(It was stopped at `while self._coalesce and key in self.fetching:`.)" in out, out
    assert ("loop TimedOut your page's handler (at t = 300 s of the simulation) did not return within 5 s: a loop "
            "with no end in your page's handler?") in out, out
    assert re.search(r"\(It was stopped at `(return \(yield from svc\.ask\(steps\[i\], req\)\)|continue)`\.\)",
                     out), out        # the alarm lands on one line of the loop or the other
    assert "sleepy TimedOut In the simulator (Sleepy(ttl=15.0), 5 keys, 5 requests/s), c.fill(" in out, out
    assert "did not return within 5 s" in out, out
    assert "(It was stopped at `time.sleep(60)`.)" in out, out
    assert took < 40
