"""Checks for lab 04, a cache and a fallback chain for a recommendations page.

The learner writes three things.

1. ``RecCache(ttl, hard_ttl=None, coalesce=True)``, a cache policy driven by ``now`` (seconds), whose
   methods answer :class:`~resilience_sim.policies.Lookup` objects with the kinds of
   :mod:`resilience_sim.policies.cache`:

   * ``lookup(key, now)``: ``FRESH`` (the value, its age) while the entry of ``key`` is at most ``ttl``
     old, its age being ``now`` minus the ``now`` of the fill that stored it; else ``WAIT`` when
     ``coalesce`` and a fetch of ``key`` is under way; else ``MISS``, and from then on a fetch of
     ``key`` is under way;
   * ``fill(key, value, now)``: that fetch is over and gave ``value``: the entry is ``(value, now)``;
     answers ``FRESH`` (the value, age 0);
   * ``fail(key, reason, now)``: that fetch is over and failed: ``STALE`` (the stored value, its age,
     reason "stale-if-error") while the entry is at most ``hard_ttl`` old, else ``ERROR`` with
     ``reason``; ``hard_ttl=None`` means ``ttl`` (no stale answers); an entry keeps the time it was
     fetched.

   That is the course's :class:`~resilience_sim.policies.Cache` without stale-while-revalidate,
   negative caching or a capacity, so the checks drive both with the same calls and name the first
   answer where they part (:class:`_Pair`), with plain numbers first, then in the simulator.
2. ``recommendations_page(world, cache, db_slots)``: the page, a service that reads the recommender
   through ``CachedRead(world, cache)`` and, when that read raises ``ServiceError`` (and only then: a
   bug in the read must show), falls back to the popular lists of ``popular_db`` through a client with
   a ``Bulkhead(db_slots)``, marked degraded, never calling the recommender twice (:func:`page`).
3. ``TTL``, ``HARD_TTL`` and ``DB_SLOTS``, which must meet the page's targets on the stated scenario and
   on variants of it: other days, a longer outage, flatter popularity, a cold cache (:func:`targets`).

Learner code runs under a time limit: each call with plain numbers under ``fb.CALL_LIMIT_S``, each
simulated run under :data:`RUN_LIMIT_S`, and a stopped run names the call that was in flight.
"""
from __future__ import annotations

import bisect
import contextlib
import inspect
import itertools
import linecache
import math
import numbers
import operator
import os
import sys
from collections import deque

import simpy

from ..core.distributions import Uniform
from ..core.profiles import Constant
from ..policies import Lookup
from ..policies.cache import ERROR, FRESH, MISS, NEGATIVE, STALE, WAIT, Cache
from ..sim.cache import CachedRead
from ..sim.client import Client
from ..sim.faults import ErrorBurst, Outage
from ..sim.probes import ServiceProbe
from ..sim.service import Service, ServiceError
from ..sim.workload import OpenLoop
from ..sim.world import World
from . import feedback as fb
from .breaker import _Clock    # the fake clock that tells a wall-clock reader (proposed: move it to feedback)
from .feedback import Lazy as _Lazy, message_only as _message_only, original_exception as _original

__all__ = ["ttl", "hard_ttl", "coalescing", "page", "targets", "one_key", "outage_run", "herd", "page_run",
           "STATED", "RUN_LIMIT_S"]

#: Seconds a whole simulated run of the learner's code may take (a run takes well under one).
RUN_LIMIT_S = 5.0

# --- the recommendations page's world (the lab states these numbers) -----------------------------
RATE = 4.0                  # page views per second
DURATION = 1500.0           # 25 minutes
SEGMENTS, ZIPF = 200, 1.0   # keys: taste segments, Zipf popularity
USER_TIMEOUT = 2.0          # a visitor leaves after 2 s
FLOOD_RATE = 8.0            # page views per second when every one falls back (4 times what popular_db can take)
REC_SLOTS, REC_LATENCY = 4, (0.1, 0.3)
DB_CONNECTIONS, DB_LATENCY = 2, (0.8, 1.2)
FRESH_LIMIT = 30.0          # a full-quality answer is at most this old
STALE_LIMIT = 300.0         # no answer is older than this
LATE_LIMIT = 0.10           # in a flood, the most of popular_db's answers that may come after the visitor left
# ... and the least of its capacity (2 connections, 1 s a query) it must answer in time: above what 2 slots (its
# connections alone) give, 102 to 110 views of 120 on flood seeds 1-40, below what 3 give, 113 to 122
BUSY_LIMIT = 0.93
TARGET_ANSWERED, TARGET_FULL = 0.995, 0.90
LONGEST_OUTAGE = 120.0      # the configuration must hold through outages up to this long
#: The stated scenario: seed, the recommender's outage, the keys' popularity.
STATED = dict(seed=2024, outage=(700.0, 790.0), segments=SEGMENTS, zipf=ZIPF)

_NAMES = {FRESH: "FRESH", STALE: "STALE", WAIT: "WAIT", MISS: "MISS", ERROR: "ERROR", NEGATIVE: "NEGATIVE"}
_KINDS = (FRESH, STALE, WAIT, MISS, ERROR)


# --- showing values and calls ---------------------------------------------------------------------
def _num(x) -> str:
    if isinstance(x, float) and math.isfinite(x):
        text = f"{x:.6f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    return repr(x)


def _arg(x) -> str:
    return _num(x) if isinstance(x, float) else repr(x)


def _age(x) -> str:
    return f"{x:.6g}" if isinstance(x, numbers.Real) and not isinstance(x, bool) else repr(x)


def _kwargs(kw: dict) -> str:
    return ", ".join(f"{k}={_arg(v)}" for k, v in kw.items())


def _show(look) -> str:
    """A Lookup as the replays show it: ``FRESH 'A1' (age 30)``."""
    kind = _NAMES.get(look.kind, repr(look.kind))
    if look.kind in (FRESH, STALE):
        why = f", reason {look.reason!r}" if look.reason else ""
        return f"{kind} {look.value!r} (age {_age(look.age)}{why})"
    if look.kind in (ERROR, NEGATIVE):
        return f"{kind} (reason {look.reason!r})"
    return kind


# --- the learner's cache beside the course's ------------------------------------------------------
_STUCK = ("a loop with no end, or a wait? A cache answers at once, from what it holds and `now`: to "
          "coalesce, lookup returns WAIT and the caller does the waiting; never loop or sleep in lookup "
          "until another fetch ends.")


_SIMPY = os.path.dirname(os.path.abspath(simpy.__file__)) + os.sep
_LOOKUP_ARGS = ": Lookup takes (kind, value=None, age=0.0, refresh=False, reason='')"
_CLIENT_ARGS = (": a Client takes the world and the service it calls, Client(world, world.service('popular_db'), "
                "name='page->popular_db', bulkhead=Bulkhead(db_slots))")


def _your_line(exc) -> str:
    """The line of the learner's code an exception came from (the innermost frame outside the course's
    package and simpy), or "" when none of the learner's lines ran: the call itself did not fit the
    def line (Python checks the arguments before the function starts)."""
    tb, line = exc.__traceback__, ""
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        path = os.path.abspath(name)
        if not path.startswith(fb._PACKAGE + os.sep) and not path.startswith(_SIMPY):
            line = fb._without_comment(linecache.getline(name, tb.tb_lineno).strip()) or line
        tb = tb.tb_next
    return line


def _at_your_line(exc, extra: str = "") -> str:
    """The end of a "raised ..." message for an error inside the learner's code: the line, and ``extra``."""
    where = _your_line(exc)
    return f". It comes from your line `{where}`{extra}." if where else f"{extra}."


def _hint(exc) -> str:
    text = str(exc)
    if isinstance(exc, TypeError) and "NoneType" in text and ("<" in text or ">" in text or "+" in text):
        return (". hard_ttl may be None, which means no stale answers (the same as hard_ttl = ttl): in "
                "__init__, keep self.hard_ttl = ttl when hard_ttl is None.")
    if isinstance(exc, KeyError):
        return (". A key the cache does not hold (yet, or any more) is normal: lookup says MISS, and fail "
                "answers ERROR when there is nothing to serve (dict.get, or `key in ...`, avoid the KeyError).")
    if isinstance(exc, TypeError) and "argument" in text:
        if _your_line(exc):           # the method ran, and something inside it was called wrongly
            return _at_your_line(exc, _LOOKUP_ARGS if "Lookup" in text else "")
        return (". The methods are lookup(key, now), fill(key, value, now) and fail(key, reason, now): compare "
                "your def lines with the task's.")
    if isinstance(exc, RuntimeError) and "changed size during iteration" in text:
        return (". You removed entries from a dict while looping over it: loop over a copy "
                "(for key in list(self.entries)), or skip the clean-up: an old entry does no harm.")
    return _at_your_line(exc)


_SAID = operator.attrgetter("kind", "value", "age", "reason", "refresh")    # what a Lookup says


class _Book:
    """What the caches of one scenario were given: every value filled, by whom, for which key, and
    when; and the replay lines of all their calls."""

    def __init__(self):
        self.lines: list = []           # (key or None, text)
        self.values: dict = {}          # value -> (cache name, key, time filled)
        self.pairs: list = []           # the _Pairs of this scenario, in the order made

    def replay(self, key=None, last: int = 14) -> str:
        lines = [t for k, t in self.lines if key is None or k is None or k == key]
        if len(lines) > last + 1:
            lines = lines[:1] + [f"# ... {len(lines) - last - 1} calls ..."] + lines[-last:]
        return "Replay:\n    " + "\n    ".join(lines)


class _Pair:
    """The learner's cache (``mine``) and the course's (``ref``, the same spec) given the same calls;
    the first answer where they part raises an ``AssertionError`` that says what the learner's did,
    what it should have done, why, and the calls for that key. ``reference=False``: the learner's
    cache alone, its answers only checked to be Lookups. ``timed``: a time limit per call (with
    plain numbers); otherwise the call in flight is kept in ``current`` for the run's time limit.
    Counts what it answered, for ``results.cache``."""

    def __init__(self, cls, kwargs: dict, *, book: _Book | None = None, clock=None, name: str = "c",
                 timed: bool = True, reference: bool = True, where: str = ""):
        if not isinstance(cls, type):
            raise AssertionError(f"pass the class itself to the check, e.g. check.ttl(RecCache); got {cls!r}")
        self.cls, self.clock, self.name, self.timed = cls, clock, name, timed
        self.where = where                          # "In the simulator (...), " for a run's messages
        self.book = book if book is not None else _Book()
        self.ttl = kwargs["ttl"]
        self.hard = kwargs.get("hard_ttl")
        self.hard_value = self.ttl if self.hard is None else self.hard
        self.coalesce_given = kwargs.get("coalesce", True)
        self.current = None
        self.hits = self.stale = self.negative = self.coalesced = self.misses = 0
        self.fetches = self.evictions = self.stale_if_error = 0
        made = f"{cls.__name__}({_kwargs(kwargs)})"
        self.book.lines.append((None, f"{name} = {made}"))

        def hint(exc) -> str:
            if isinstance(exc, TypeError) and ("argument" in str(exc) or "positional" in str(exc)) and \
                    not _your_line(exc):
                return (f". {cls.__name__} takes (ttl, hard_ttl=None, coalesce=True): compare your def line with "
                        f"the task's.")
            return _hint(exc)
        with fb.learner_code(f"{cls.__name__}.__init__", made, hint, stuck=_STUCK):
            self.mine = cls(**kwargs)
        flag = getattr(self.mine, "coalesce", _MISSING)
        if flag is not _MISSING and (not fb.is_bool(flag) or bool(flag) != self.coalesce_given):
            if "coalesce" not in kwargs and fb.is_bool(flag):
                raise AssertionError(f"{made}.coalesce is {flag!r}: {made} leaves coalesce to its default, and the "
                                     f"default must be coalesce=True in your def line: def __init__(self, ttl, "
                                     f"hard_ttl=None, coalesce=True){_default_said(cls, 'coalesce')}. The page "
                                     f"builds its cache that way and relies on coalescing.")
            raise AssertionError(f"{made}.coalesce is {flag!r}: keep the argument as it is given (self.coalesce = "
                                 f"coalesce). The simulator's CachedRead reads it to know whether callers may WAIT "
                                 f"for another's fetch.")
        self.book.pairs.append(self)
        self.ref = Cache(self.ttl, hard_ttl=self.hard, coalesce=self.coalesce_given,
                         capacity=10 ** 7) if reference else None
        self.filled: dict = {}          # key -> (value, time) of this cache's last fill
        self.fills: dict = {}           # key -> every (value, time) filled
        self.ended: dict = {}           # key -> ("fill" or "fail", time): how its last fetch ended
        self.fetching: dict = {}        # key -> time of the MISS whose fetch is under way (the course's view)
        self.pending: dict = {}         # key -> times of the MISSes whose fetches are under way, oldest first
        # the learner's last answers, each with what it said then: a Lookup once returned must not change
        self.kept = deque(maxlen=6) if reference else None

    def _text(self, method, args) -> str:
        return f"{self.name}.{method}({', '.join(_arg(a) for a in args)})"

    def in_flight(self):
        """(the method, the call) running now in a run, as text, or None."""
        if self.current is None:
            return None
        method, args = self.current
        return f"{self.cls.__name__}.{method}", f"{self.where}{self._text(method, args)}"

    @property
    def coalesce(self):
        """What CachedRead reads to know whether callers may wait."""
        return getattr(self.mine, "coalesce", False)

    # --- the three methods ------------------------------------------------------------------------
    def lookup(self, key, now):
        return self._step("lookup", key, (key, now), now)

    def fill(self, key, value, now):
        if self.ref is not None:
            self.book.values.setdefault(_hashable(value), (self.name, key, now))
        return self._step("fill", key, (key, value, now), now)

    def fail(self, key, reason, now):
        return self._step("fail", key, (key, reason, now), now)

    def _step(self, method, key, args, now):
        fn = getattr(self.mine, method, None)
        if not callable(fn):
            raise AssertionError(f"{self.cls.__name__} has no method {method}: the task asks for lookup(key, now), "
                                 f"fill(key, value, now) and fail(key, reason, now)")
        if self.clock is not None:
            self.clock.now = now
        text = None
        if self.timed:
            text = self._text(method, args)
            with fb.learner_code(f"{self.cls.__name__}.{method}", text, lambda exc: self.raised(method, args, exc),
                                 stuck=_STUCK):
                got = fn(*args)
        else:                                   # in a run: the call is written out only if needed
            self.current = (method, args)
            got = fn(*args)
            self.current = None
        if got.__class__ is not Lookup or got.kind not in _KINDS:
            self._valid(self._text(method, args), got)
        if self.kept is not None:
            self._unchanged(key, method, args, got)
        self._count(method, got)
        if self.ref is None:
            return got
        text = text or self._text(method, args)
        want = getattr(self.ref, method)(*args)
        line = f"{text:<34} # -> {_show(got)}"
        same = _same(want, got)
        self.book.lines.append((key, line if same else f"{line}   <- should be {_show(want)}"))
        if not same:
            why, shown = self._explain(method, key, args, now, want, got)
            raise AssertionError(f"{self.where}{why}\n{self.book.replay(shown)}")
        if method == "lookup" and want.kind == MISS:
            self.fetching[key] = now
            self.pending.setdefault(key, []).append(now)
        elif method in ("fill", "fail"):
            self.fetching.pop(key, None)
            if self.pending.get(key):
                self.pending[key].pop(0)
            self.ended[key] = (method, now)
            if method == "fill":
                self.filled[key] = (args[1], now)
                self.fills.setdefault(key, []).append((args[1], now))
        return got

    def _unchanged(self, key, method, args, got) -> None:
        """Each of the learner's last answers still says what it said when it was returned: a Lookup kept
        and changed later (one shared object, or one per entry) changes what its holders were told."""
        for look, said, text in self.kept:
            try:
                same = _SAID(look) == said
            except Exception:  # noqa: BLE001 - a value that cannot compare is not the same value
                same = False
            if not same:
                now_text = self._text(method, args)
                self.book.lines.append((key, f"{now_text:<34} # -> {_show(got)}"))
                before = Lookup(said[0], said[1], said[2], refresh=said[4], reason=said[3])
                raise AssertionError(
                    f"{self.where}The Lookup returned by {self._text(*text)} ({_show(before)}) changed when you "
                    f"answered {now_text}: it now says {_show(look)}. Whoever was given an answer relies on it "
                    f"(CachedRead hands one to every caller waiting for the fetch): return a new Lookup each time, "
                    f"Lookup(KIND, ...), and never change one you returned (no Lookup kept at module level, in "
                    f"the class or in an entry, and then changed).\n{self.book.replay()}")
        self.kept.append((got, _SAID(got), (method, args)))

    def raised(self, method, args, exc) -> str:
        """What follows "c.fill(...) raised ...": the likely cause, and the calls that led there."""
        key = args[0]
        text = _hint(exc)
        ended, pending = self.ended.get(key), self.pending.get(key)
        if isinstance(exc, KeyError) and method in ("fill", "fail") and not self.coalesce_given and ended and \
                pending and ended[1] >= pending[0]:
            text = (f". With coalesce=False two fetches of {key!r} may be under way at once: the one of the MISS at "
                    f"{_num(pending[0])} was still under way when the {ended[0]} at {_num(ended[1])} ended the "
                    f"other, and then your {method} no longer found {key!r} among the keys being fetched. End a "
                    f"fetch without assuming its key is still there: self.fetching.discard(key) for a set, "
                    f"self.fetching.pop(key, None) for a dict.")
        if self.ref is not None:
            self.book.lines.append((key, f"{self._text(method, args):<34} # -> raised {type(exc).__name__}"))
            text += "\n" + self.book.replay(key)
        return text

    def _count(self, method, got) -> None:
        kind = got.kind
        if method == "lookup":
            if kind == FRESH:
                self.hits += 1
            elif kind == WAIT:
                self.coalesced += 1
            elif kind == MISS:
                self.misses += 1
                self.fetches += 1
            elif kind == STALE:
                self.stale += 1
        elif method == "fail" and kind == STALE:
            self.stale_if_error += 1

    def _valid(self, text: str, got) -> None:
        if got is None:
            raise AssertionError(f"{self.where}{text} returned None: did you forget `return`? Each method returns a "
                                 f"Lookup, e.g. return Lookup(MISS) or return Lookup(FRESH, value, age).")
        if not isinstance(got, Lookup):
            if isinstance(got, str) and got.lower() in _KINDS:
                fix = f"Lookup({got.upper()}, ...)"
            else:
                fix = "Lookup(FRESH, value, age) or Lookup(MISS)"
            raise AssertionError(f"{self.where}{text} returned {got!r} ({type(got).__name__}): return a Lookup "
                                 f"(from resilience_sim.policies), such as {fix}, which says what kind of answer it "
                                 f"is and carries the value and its age.")
        if got.kind == NEGATIVE:
            raise AssertionError(f"{self.where}{text} returned NEGATIVE: that is for a cache that stores errors "
                                 f"(negative_ttl), which this one does not. Use FRESH, WAIT or MISS in lookup; "
                                 f"STALE or ERROR in fail.")
        if got.kind not in _KINDS:
            if isinstance(got.kind, str) and got.kind.lower() in _KINDS:
                raise AssertionError(f"{self.where}{text} returned a Lookup of kind {got.kind!r}: use the "
                                     f"constants FRESH, STALE, WAIT, MISS, ERROR (from "
                                     f"resilience_sim.policies.cache), whose values are lowercase "
                                     f"({got.kind.lower()!r}).")
            raise AssertionError(f"{self.where}{text} returned a Lookup of kind {got.kind!r}: the kind is one of "
                                 f"FRESH, STALE, WAIT, MISS, ERROR (from resilience_sim.policies.cache).")

    # --- why an answer is wrong -----------------------------------------------------------------
    def _explain(self, method, key, args, now, want, got) -> tuple:
        """(why, the key whose calls the replay shows, or None for all of them)."""
        call = f"{self.name}.{method}({', '.join(_arg(a) for a in args)})"
        said = f"{call} returned {_show(got)}, where it should be {_show(want)}"
        last = self.filled.get(key)
        age = None if last is None else now - last[1]
        ttl, hard = self.ttl, self.hard_value
        since = (f" after {self.name}.fill({key!r}, {last[0]!r}, {_num(last[1])})" if last else "")
        gk, wk = got.kind, want.kind
        if method == "fill" and gk == wk == FRESH:
            if not _equal(got.value, args[1]):
                return (f"{said}. fill answers with the value just fetched, {args[1]!r}: return Lookup(FRESH, value, "
                        f"0.0) (the callers waiting for this fetch get it too)."), key
            you = _age(got.age) + (", i.e. now" if isinstance(got.age, numbers.Real) and got.age == now != 0 else "")
            return (f"{said}: fill answers age 0, as the value was fetched just now (you returned {you}): return "
                    f"Lookup(FRESH, value, 0.0). The age is now minus the time of the fill, and the fill is now."), key
        if gk in (FRESH, STALE) and (last is None or not _equal(got.value, last[0])):
            return said + ". " + self._whose(key, got.value), None
        if method == "lookup" and gk == ERROR:
            return (f"{said}. lookup answers FRESH, WAIT or MISS, never ERROR: this cache does not remember "
                    f"failures (that would be negative caching, which it does not do), so after a failed fetch "
                    f"the next lookup fetches again (MISS). Only fail answers ERROR, to the fetch that failed."), key
        if gk != wk and method == "lookup":
            if wk == MISS and gk == FRESH:
                text = (f"{call}{since} with ttl={_arg(ttl)} returned FRESH; an entry older than ttl must not be "
                        f"fresh (it is {_age(age)} s old). Past ttl, lookup says MISS, so that the caller fetches "
                        f"a fresh value.")
                if self.hard is not None and age <= hard:
                    text += (f" hard_ttl={_arg(hard)} does not make it fresh: it only says how long an old value "
                             f"may stand in when a fetch fails (in fail).")
                elif self._unit() == "minutes":
                    text += " Your cache keeps entries 60 times too long: is the ttl taken as minutes? It is seconds."
                elif self._ignores("ttl"):
                    text += (" Your cache answers the same whatever its ttl (tried 5 and 500): a parameter ignored. "
                             "Use the ttl it was given (self.ttl), not a number of your own.")
                return text, key
            if wk == MISS and gk == STALE:
                return (f"{said}. Nothing has failed: lookup never answers STALE. Past ttl it says MISS, so that "
                        f"the caller fetches a fresh value; the old value is only for when that fetch fails "
                        f"(fail). A lookup that serves it stale never fetches again: a cache that never expires "
                        f"while the source is healthy."), key
            if wk == MISS and gk == WAIT:
                return said + ". " + self._why_not_wait(key), None
            if wk == FRESH and gk == MISS:
                if age == ttl:
                    return (f"Off by one: {call}{since} with ttl={_arg(ttl)} returned MISS. An entry exactly ttl "
                            f"old is still fresh: compare with <= (age <= ttl), not <."), key
                text = (f"{call}{since} returned MISS, but the entry is {_age(age)} s old, within ttl="
                        f"{_arg(ttl)}: it must be FRESH.")
                earlier = self.fills.get(key, [])[:-1]
                if earlier and now - earlier[-1][1] > ttl:
                    text += (f" Does fill replace the entry? After the fill at {_num(last[1])}, the entry is "
                             f"{last[0]!r}, fetched then; the one fetched at {_num(earlier[-1][1])} is gone.")
                elif self._unit() == "ms":
                    text += (" Your cache forgets entries 1000 times too soon: ages in milliseconds "
                             "((now - t) * 1000), or the ttl divided by 1000? Times and TTLs are all seconds.")
                else:
                    text += (" Did fill store (value, now) under this very key, and does lookup look there? Does "
                             "lookup drop entries it should keep?")
                return text, key
            if wk == FRESH:
                return (f"{said}: the entry is {_age(age)} s old, within ttl={_arg(ttl)}: serve it."), key
            if wk == WAIT and gk == MISS:
                started = self.fetching.get(key)
                at = f" (the MISS at {_num(started)})" if started is not None else ""
                return (f"{said}. A fetch of {key!r} is under way{at}, and coalesce=True: this caller must WAIT "
                        f"for it, not fetch too. One fetch per key at a time: note the key on a MISS, and forget "
                        f"it in fill and fail."), key
            if wk == WAIT and gk == FRESH:
                return (f"{said}: the entry is {_age(age)} s old, past ttl={_arg(ttl)}, so it is not fresh; and a "
                        f"fetch of {key!r} is under way, so this caller waits for it."), key
            if wk == WAIT and gk == STALE:
                return (f"{said}. While another caller fetches {key!r}, lookup says WAIT: that caller gets the "
                        f"fetch's outcome, fresh or, if it fails, stale."), key
        if gk != wk and method == "fill":
            return (f"{said}. fill answers with the value just fetched: return Lookup(FRESH, value, 0.0) (the "
                    f"callers waiting for this fetch get it too)."), key
        if method == "fail" and (gk != wk or wk == ERROR):
            reason = args[1]
            if wk == STALE and gk == ERROR:
                if age == hard:
                    return (f"Off by one: {call}{since} with hard_ttl={_arg(hard)} returned ERROR. A value "
                            f"exactly hard_ttl old may still be served stale: compare with <=."), key
                return (f"{said}. stale-if-error: the fetch failed, and the stored value ({_age(age)} s old) is "
                        f"within hard_ttl={_arg(hard)}, so serve it: Lookup(STALE, value, age, "
                        f"reason='stale-if-error'). (Keep an entry past ttl: fail needs it until hard_ttl.)"), key
            if wk == ERROR and gk == STALE:
                if self.hard is None:
                    text = (f"{said}. With hard_ttl=None there are no stale answers (hard_ttl is then ttl): the "
                            f"value is {_age(age)} s old, past ttl={_arg(ttl)}, so pass the error on.")
                    if self._ignores("hard_ttl"):
                        text += (" Your cache answers the same whatever its hard_ttl (tried 20 and 2000): use the "
                                 "hard_ttl it was given, and ttl when it is None.")
                    return text, key
                text = (f"Unbounded staleness: {call}{since} served a value {_age(age)} s old, past hard_ttl="
                        f"{_arg(hard)}. hard_ttl bounds the age of anything served: past it, pass the error on, "
                        f"Lookup(ERROR, reason=reason).")
                if self._ignores("hard_ttl"):
                    text += (" Your cache answers the same whatever its hard_ttl (tried 20 and 2000): a parameter "
                             "ignored. Use the hard_ttl it was given.")
                return text, key
            if wk == ERROR and gk == ERROR:
                if not got.reason and (_equal(got.value, reason) or _equal(got.refresh, reason)):
                    nth = "2nd" if _equal(got.value, reason) else "4th"
                    field = "value" if nth == "2nd" else "refresh"
                    return (f"{said}: the reason landed in the Lookup's {field}, its {nth} positional argument. "
                            f"Lookup takes (kind, value=None, age=0.0, refresh=False, reason=''): write "
                            f"Lookup(ERROR, reason=reason)."), key
                return (f"{said}. Pass on the reason of the failed fetch as it is: Lookup(ERROR, "
                        f"reason=reason), here {reason!r}."), key
            if gk == FRESH:
                return (f"{said}. A failed fetch brings nothing new: never FRESH. Serve the stored value STALE "
                        f"while it is at most hard_ttl old, else ERROR."), key
            return f"{said}. fail answers STALE (the stored value, within hard_ttl) or ERROR.", key
        if gk == wk and gk in (FRESH, STALE) and not (isinstance(got.age, numbers.Real) and
                                                      math.isclose(got.age, want.age, rel_tol=1e-9, abs_tol=1e-9)):
            if not isinstance(got.age, numbers.Real) or isinstance(got.age, bool):
                return f"{said}: the age is a number of seconds, now minus the time of the fill.", key
            if want.age > 0 and math.isclose(got.age, want.age * 1000, rel_tol=1e-6):
                return (f"{said}: its age is in milliseconds. Ages are seconds, now minus the time of the fill: "
                        f"now - t."), key
            if gk == STALE and math.isclose(got.age, want.age - ttl, rel_tol=1e-9, abs_tol=1e-9):
                return (f"{said}: the value was fetched at {_num(last[1])}, so it is {_age(want.age)} s old; you "
                        f"returned {_age(got.age)}, its age minus ttl={_arg(ttl)}. The age counts from the fill, "
                        f"not from expiry: now - the time of the fill ({_num(now)} - {_num(last[1])}), the same "
                        f"age hard_ttl bounds."), key
            if gk == STALE and got.age < want.age:
                return (f"{said}: the value was fetched at {_num(last[1])}, so it is {_age(want.age)} s old. Does "
                        f"fail store it again with `now`? A stale value keeps the time it was fetched; restamped, "
                        f"it looks young and would be served for ever: unbounded staleness."), key
            return (f"{said}: its age is now minus the `now` of the fill that stored the value "
                    f"({_num(now)} - {_num(last[1])} = {_age(want.age)})."), key
        if gk == wk == STALE and got.reason != "stale-if-error":
            if _equal(got.refresh, "stale-if-error"):
                return (f"{said}: 'stale-if-error' landed in the Lookup's refresh, not its reason: Lookup's 4th "
                        f"positional argument is refresh (Lookup takes (kind, value=None, age=0.0, refresh=False, "
                        f"reason='')). Write reason='stale-if-error'."), key
            return f"{said}: a stale answer to a failed fetch has reason 'stale-if-error'.", key
        return said + ".", key

    def _unit(self) -> str | None:
        """Whether a new cache of the learner's keeps an entry 60 times too long ("minutes") or forgets it
        1000 times too soon ("ms"), tried on a fresh instance; None when neither, or when it cannot tell."""
        try:
            with fb.learner_code("", "", stuck=_STUCK):
                def fresh_at(age):
                    c = self.cls(ttl=60.0, hard_ttl=None, coalesce=False)
                    c.lookup("u", 0.0)
                    c.fill("u", "U", 0.0)
                    return getattr(c.lookup("u", age), "kind", None) == FRESH
                if fresh_at(3599.0) and not fresh_at(3601.0):
                    return "minutes"
                if fresh_at(0.0599) and not fresh_at(0.0601):
                    return "ms"
        except AssertionError:
            pass
        return None

    def _ignores(self, param: str) -> bool:
        """Whether a new cache of the learner's answers the same for two very different values of ``param``
        ("ttl": fresh at age 50 with ttl 5 and 500; "hard_ttl": stale at age 100 with hard_ttl 20 and 2000)."""
        def kind(value):
            if param == "ttl":
                c = self.cls(ttl=value, hard_ttl=None, coalesce=False)
                c.lookup("u", 0.0)
                c.fill("u", "U", 0.0)
                return getattr(c.lookup("u", 50.0), "kind", None)
            c = self.cls(ttl=10.0, hard_ttl=value, coalesce=False)
            c.lookup("u", 0.0)
            c.fill("u", "U", 0.0)
            c.lookup("u", 100.0)
            return getattr(c.fail("u", "down", 100.0), "kind", None)
        try:
            with fb.learner_code("", "", stuck=_STUCK):
                small, big = (5.0, 500.0) if param == "ttl" else (20.0, 2000.0)
                return kind(small) == kind(big)
        except AssertionError:
            return False

    def _whose(self, key, value) -> str:
        """Where a value served for ``key`` came from: another key, another cache, an older fill."""
        seen = self.book.values.get(_hashable(value))
        if seen is None:
            if not self.filled:
                return (f"{value!r} was never filled in this new cache: it must start empty. Does it share its "
                        f"entries with the caches made before it? A dict (or set) written in the class body, at "
                        f"module level or as a default argument (def __init__(..., entries={{}})) is one for all "
                        f"instances; create it in __init__ (self.entries = {{}}), so that each cache has its own.")
            return f"Nobody filled {value!r} in this cache: serve the value fill stored for this key."
        owner, other, at = seen
        if owner != self.name:
            return (f"{value!r} was filled in another cache, {owner} (at {_num(at)}): your caches share their "
                    f"entries. A dict (or set) written in the class body, at module level or as a default argument "
                    f"(def __init__(..., entries={{}})) is one for all instances; create it in __init__ "
                    f"(self.entries = {{}}), so that each cache has its own.")
        if other != key:
            return (f"That value was filled for key {other!r}, not {key!r}: your cache is keyed on something "
                    f"other than the request's key (a hash bucket, str(key), one slot for all?). Store and find "
                    f"entries by the key itself: self.entries[key].")
        return (f"That is an older value of {key!r} (filled at {_num(at)}): fill must replace the entry with the "
                f"new value and its time.")

    def _why_not_wait(self, key) -> str:
        other = next((c for c in self.book.pairs if c is not self and key in c.fetching), None)
        if other is not None and key not in self.fetching:
            return (f"{other.name}'s fetch of {key!r} (the MISS at {_num(other.fetching[key])}) made {self.name} "
                    f"wait: the set of keys being fetched is shared by your caches. A set (or dict) written in the "
                    f"class body, at module level or as a default argument is one for all instances; create it in "
                    f"__init__ (self.fetching = set()), so that each cache has its own.")
        if not self.coalesce_given:
            return ("With coalesce=False every caller fetches for itself: lookup never says WAIT. Honour the "
                    "coalesce argument.")
        ended = self.ended.get(key)
        if ended is not None and key not in self.fetching:
            how, at = ended
            if how == "fail":
                return (f"The fetch of {key!r} failed (fail at {_num(at)}), so nobody is fetching it now: this "
                        f"caller would wait for ever, as would every caller after it. Coalescing that loses its "
                        f"waiters when the fetch fails: fail must end the fetch, as fill does.")
            return (f"The fetch of {key!r} ended (fill at {_num(at)}): nobody is fetching it now, so this caller "
                    f"must fetch (MISS). fill must end the fetch.")
        others = [k for k in self.fetching if k != key]
        if others:
            return (f"A fetch of {others[0]!r} is under way, not of {key!r}: coalesce per key (one fetch per key "
                    f"at a time), so that a fetch of one key never holds up another.")
        if key not in self.ended:
            return (f"Nobody is fetching {key!r}: this caller must fetch (MISS). And this cache never fetched {key!r} "
                    f"before: does it share the keys being fetched with the caches made before it? A set written in "
                    f"the class body, at module level or as a default argument is one for all instances; create it "
                    f"in __init__ (self.fetching = set()).")
        return f"Nobody is fetching {key!r}: this caller must fetch (MISS)."


def _hashable(value):
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)


def _equal(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - a value that cannot compare is not the same value
        return False


def _same(want, got) -> bool:
    if got.kind != want.kind:
        return False
    if want.kind in (FRESH, STALE):
        if not _equal(got.value, want.value) or not isinstance(got.age, numbers.Real) or \
                not math.isclose(got.age, want.age, rel_tol=1e-9, abs_tol=1e-9):
            return False
        return want.kind == FRESH or got.reason == "stale-if-error"
    if want.kind == ERROR:
        return got.reason == want.reason
    return True


def _with_clock(cls, scenario) -> None:
    """Run ``scenario(cls, clock)``; if it fails, but passes when the clocks follow ``now``, the learner's
    cache reads the wall clock."""
    try:
        scenario(cls, None)
    except fb.TimedOut:
        raise
    except AssertionError as first:
        try:
            clock = _Clock()
            with clock.active(cls):
                scenario(cls, clock)
        except Exception:  # noqa: BLE001 - the first message is the one to show
            raise first from None
        raise AssertionError(
            "Your cache reads the wall clock (time.time(), time.monotonic()...) instead of the `now` it is given: "
            "with plain numbers it misbehaves, and when we make the clock follow `now` it works. Use only `now`, "
            "in lookup, fill and fail: it is simulated seconds in the simulator, time.monotonic() in a live "
            "service, plain numbers in tests.\n" + str(first).split("\n", 1)[-1]) from None


# --- task 1: the TTL ------------------------------------------------------------------------------
def _ttl_basic(cls, clock):
    c = _Pair(cls, dict(ttl=60.0, hard_ttl=None, coalesce=False), clock=clock)
    c.lookup("a", 0.0)
    c.fill("a", "A1", 0.0)
    c.lookup("a", 30.0)
    c.lookup("a", 60.0)
    c.lookup("a", 61.0)
    c.fill("a", "A2", 61.5)
    c.lookup("a", 62.0)
    c.lookup("a", 121.5)
    c.lookup("a", 122.0)


_KEYS = ["a", "b", 1, "1", 11, 65, 101, ("user", 1)]


def _ttl_keys(cls, clock):
    c = _Pair(cls, dict(ttl=5.0, hard_ttl=None, coalesce=False), clock=clock)
    for i, key in enumerate(_KEYS):
        c.lookup(key, i * 0.5)
        c.fill(key, f"V{i}", i * 0.5)
    for key in _KEYS:
        c.lookup(key, 4.5)
    for key in _KEYS:              # the first ones are past 5 s now, the others not yet
        c.lookup(key, 6.25)


def _ttl_all_expired(cls, clock):
    c = _Pair(cls, dict(ttl=0.5, hard_ttl=None, coalesce=False), clock=clock)
    for i, key in enumerate(("x", "y", "z")):
        c.lookup(key, i * 0.25)
        c.fill(key, f"{key.upper()}1", i * 0.25)
    for key in ("x", "y", "z"):
        c.lookup(key, 10.0)        # every entry has expired
    for key in ("x", "y", "z"):
        c.fill(key, f"{key.upper()}2", 10.5)
    for key in ("z", "x", "y"):
        c.lookup(key, 10.75)


def _ttl_long(cls, clock):
    c = _Pair(cls, dict(ttl=300.0, hard_ttl=None, coalesce=False), clock=clock)
    c.lookup(7, 1000.0)
    c.fill(7, "S1", 1000.25)
    c.lookup(7, 1299.75)
    c.lookup(7, 1300.25)
    c.lookup(7, 1300.5)


def _ttl_two_caches(cls, clock):
    book = _Book()
    one = _Pair(cls, dict(ttl=60.0, hard_ttl=None, coalesce=False), clock=clock, book=book, name="c1")
    one.lookup("a", 0.0)
    one.fill("a", "A1", 0.0)
    two = _Pair(cls, dict(ttl=60.0, hard_ttl=None, coalesce=False), clock=clock, book=book, name="c2")
    two.lookup("a", 1.0)


def _defaults(cls) -> object:
    """``cls(ttl=...)`` alone, as later cells build it."""
    name = cls.__name__

    def hint(exc) -> str:
        if not isinstance(exc, TypeError) or _your_line(exc):     # raised inside __init__, not by the call
            return _hint(exc)
        try:
            params = inspect.signature(cls).parameters
        except (TypeError, ValueError):
            params = {}
        if params and not all(p in params for p in ("ttl", "hard_ttl", "coalesce")):
            return (f". {name} takes (ttl, hard_ttl=None, coalesce=True), by these names: compare your def line "
                    f"with the task's, def __init__(self, ttl, hard_ttl=None, coalesce=True).")
        missing = [p for p in ("hard_ttl", "coalesce") if p in params and params[p].default is inspect.Parameter.empty]
        which = f"; yours has none for {' and '.join(missing)}" if missing else ""
        return (f". The lab's later cells build {name} without hard_ttl or coalesce (the demo after task 1, task "
                f"5's check), so __init__ needs the task's defaults: def __init__(self, ttl, hard_ttl=None, "
                f"coalesce=True){which}.")
    with fb.learner_code(f"{name}.__init__", f"{name}(ttl=9.0)", hint, stuck=_STUCK):
        return cls(ttl=9.0)


def _default_said(cls, param: str) -> str:
    """"; yours says coalesce=False" when the learner's def line gives ``param`` another default, else ""."""
    try:
        default = inspect.signature(cls).parameters[param].default
    except (TypeError, ValueError, KeyError):
        return ""
    if default is inspect.Parameter.empty:
        return ""
    return f"; yours says {param}={default!r}"


def _ttl_cases(cls) -> None:
    if not isinstance(cls, type):
        raise AssertionError(f"pass the class itself to the check, e.g. check.ttl(RecCache); got {cls!r}")
    _defaults(cls)
    for scenario in (_ttl_basic, _ttl_keys, _ttl_all_expired, _ttl_long, _ttl_two_caches):
        _with_clock(cls, scenario)


@_message_only
def ttl(cls) -> None:
    """Task 1: ``lookup`` and ``fill`` honour ``ttl`` (fresh while age <= ttl, per key, per cache); then
    the same in the simulator, next to the course's Cache."""
    _ttl_cases(cls)
    cache = _sim_check(cls, dict(ttl=15.0, hard_ttl=None, coalesce=False), seed=41, outage=None, keys=20,
                       rate=10.0, duration=600.0)
    fb.ok(f"ttl: fresh while at most ttl old, then fetched again, key by key; in the simulator "
          f"(20 keys, ttl 15 s) {cache.hits / max(cache.hits + cache.misses, 1):.0%} of lookups were hits, "
          f"each answer at most 15 s old")


# --- task 2: the hard TTL -------------------------------------------------------------------------
def _hard_basic(cls, clock):
    c = _Pair(cls, dict(ttl=60.0, hard_ttl=300.0, coalesce=False), clock=clock)
    c.lookup("a", 0.0)
    c.fill("a", "A1", 0.0)
    c.lookup("a", 90.0)
    c.fail("a", "down", 90.0)
    c.lookup("a", 200.0)
    c.fail("a", "timeout", 200.0)
    c.lookup("a", 300.0)
    c.fail("a", "down", 300.0)
    c.lookup("a", 300.5)
    c.fail("a", "down", 300.5)
    c.lookup("a", 301.0)
    c.fill("a", "A2", 301.0)
    c.lookup("a", 302.0)


def _hard_nothing_stored(cls, clock):
    c = _Pair(cls, dict(ttl=60.0, hard_ttl=300.0, coalesce=False), clock=clock)
    c.lookup("z", 5.0)
    c.fail("z", "error", 5.0)
    c.lookup("z", 6.0)
    c.fill("z", "Z1", 6.5)
    c.lookup("z", 7.0)


def _hard_two_failures(cls, clock):
    """Two fetches failing one after the other: each answer keeps its own reason."""
    c = _Pair(cls, dict(ttl=10.0, hard_ttl=None, coalesce=False), clock=clock)
    c.lookup("a", 0.0)
    c.lookup("b", 0.0)
    c.fail("a", "down", 1.0)
    c.fail("b", "timeout", 1.0)
    c.lookup("a", 2.0)
    c.fill("a", "A1", 2.5)
    c.lookup("a", 3.0)
    c.lookup("b", 3.0)
    c.fill("b", "B1", 3.5)
    c.lookup("a", 4.0)


def _hard_none(cls, clock):
    c = _Pair(cls, dict(ttl=10.0, hard_ttl=None, coalesce=False), clock=clock)
    c.lookup("a", 0.0)
    c.fill("a", "A1", 0.0)
    c.lookup("a", 10.5)
    c.fail("a", "down", 10.5)


def _hard_keys(cls, clock):
    c = _Pair(cls, dict(ttl=5.0, hard_ttl=1000.0, coalesce=False), clock=clock)
    for i, key in enumerate(("a", "b", 1, "1")):
        c.lookup(key, float(i))
        c.fill(key, f"V{i}", float(i))
    for key in ("b", "1", "a", 1):
        c.lookup(key, 500.0)
        c.fail(key, "down", 500.0)


def _hard_long_outage(cls, clock):
    c = _Pair(cls, dict(ttl=10.0, hard_ttl=60.0, coalesce=False), clock=clock)
    c.lookup("a", 0.0)
    c.fill("a", "A1", 0.0)
    for k in range(2, 30):          # the source is down from 10 s on: every 5 s a fetch fails
        c.lookup("a", 5.0 * k + 0.5)
        c.fail("a", "down", 5.0 * k + 0.5)


def _hard_defaults(cls, clock):
    with fb.learner_code(f"{cls.__name__}.__init__", f"{cls.__name__}(ttl=10.0)", _hint, stuck=_STUCK):
        cls(ttl=10.0)
    book = _Book()
    book.lines.append((None, f"# {cls.__name__}(ttl=10.0): the defaults, hard_ttl=None and coalesce=True"))
    c = _Pair(cls, dict(ttl=10.0), clock=clock, book=book)
    c.lookup("a", 0.0)
    c.fill("a", "A1", 0.0)
    c.lookup("a", 11.0)
    c.fail("a", "down", 11.0)


def _hard_cases(cls) -> None:
    if not isinstance(cls, type):
        raise AssertionError(f"pass the class itself to the check, e.g. check.hard_ttl(RecCache); got {cls!r}")
    for scenario in (_hard_basic, _hard_nothing_stored, _hard_two_failures, _hard_none, _hard_keys, _hard_long_outage,
                     _hard_defaults):
        _with_clock(cls, scenario)


@_message_only
def hard_ttl(cls) -> None:
    """Task 2: ``fail`` serves the stored value stale while it is at most ``hard_ttl`` old, never
    older, and passes the error on after that; then an outage in the simulator."""
    _needs(cls, 1)
    _hard_cases(cls)
    _sim_check(cls, dict(ttl=10.0, hard_ttl=45.0, coalesce=False), seed=42, outage=(200.0, 320.0), keys=10,
               rate=8.0, duration=400.0)
    fb.ok("hard_ttl: while the source fails, the stored value is served stale up to hard_ttl old, never "
          "older; past it the error goes through; in the simulator, through a 2-minute outage, no answer "
          "was older than 45 s")


# --- task 3: coalescing ---------------------------------------------------------------------------
def _coalesce_attribute(cls, clock):
    for flag in (True, False):
        made = f"{cls.__name__}(ttl=30.0, coalesce={flag})"
        with fb.learner_code(f"{cls.__name__}.__init__", made, _hint, stuck=_STUCK):
            obj = cls(ttl=30.0, coalesce=flag)
        value = getattr(obj, "coalesce", _MISSING)
        if value is _MISSING:
            raise AssertionError(f"{made} has no attribute coalesce: keep the argument, self.coalesce = coalesce, "
                                 f"in __init__. The simulator's CachedRead reads it to know whether callers may "
                                 f"WAIT for another caller's fetch.")
        if not fb.is_bool(value) or bool(value) != flag:
            raise AssertionError(f"{made}.coalesce is {value!r}: keep the argument as it is given "
                                 f"(self.coalesce = coalesce); the simulator's CachedRead reads it.")
    obj = _defaults(cls)
    flag = getattr(obj, "coalesce", None)
    if not fb.is_bool(flag) or not flag:
        raise AssertionError(f"{cls.__name__}(ttl=9.0).coalesce is {flag!r}: coalescing is on by default, so the "
                             f"default must be coalesce=True in your def line{_default_said(cls, 'coalesce')}; the "
                             f"page relies on it.")


_MISSING = object()


def _coalesce_one_fetch(cls, clock):
    c = _Pair(cls, dict(ttl=30.0, hard_ttl=None, coalesce=True), clock=clock)
    c.lookup("a", 0.0)
    c.lookup("a", 0.125)
    c.lookup("a", 0.25)
    c.lookup("b", 0.25)
    c.fill("a", "A1", 0.5)
    c.lookup("a", 0.75)
    c.lookup("b", 0.75)
    c.fill("b", "B1", 1.0)
    c.lookup("b", 1.25)


def _coalesce_failed_fetch(cls, clock):
    c = _Pair(cls, dict(ttl=30.0, hard_ttl=120.0, coalesce=True), clock=clock)
    c.lookup("c", 1.0)
    c.lookup("c", 1.25)
    c.fail("c", "timeout", 2.0)
    c.lookup("c", 2.5)
    c.fill("c", "C1", 3.0)
    c.lookup("c", 40.0)
    c.lookup("c", 40.25)
    c.fail("c", "down", 41.0)
    c.lookup("c", 42.0)
    c.lookup("c", 42.5)
    c.fill("c", "C2", 43.0)
    c.lookup("c", 43.5)


def _coalesce_off(cls, clock):
    c = _Pair(cls, dict(ttl=30.0, hard_ttl=60.0, coalesce=False), clock=clock)
    c.lookup("a", 0.0)
    c.lookup("a", 0.25)
    c.fill("a", "A1", 0.5)
    c.fill("a", "A2", 0.75)
    c.lookup("a", 1.0)


def _coalesce_two_caches(cls, clock):
    book = _Book()
    one = _Pair(cls, dict(ttl=30.0, hard_ttl=None, coalesce=True), clock=clock, book=book, name="c1")
    two = _Pair(cls, dict(ttl=30.0, hard_ttl=None, coalesce=True), clock=clock, book=book, name="c2")
    one.lookup("k", 0.0)
    two.lookup("k", 0.25)


def _random_sequence(cls, seed: int, clock=None) -> None:
    """Random calls that keep the protocol (a fill or a fail per MISS), against the course's Cache."""
    import random
    rng = random.Random(seed)
    ttl_ = float(rng.choice((1, 5, 10, 60)))
    hard = rng.choice((None, ttl_ * 2, ttl_ * 10))
    kw = dict(ttl=ttl_, hard_ttl=hard, coalesce=rng.random() < 0.6)
    book = _Book()
    book.lines.append((None, f"# random sequence {seed}"))
    c = _Pair(cls, kw, clock=clock, book=book)
    keys = rng.sample(["a", "b", "c", 1, 2, ("u", 3)], rng.randint(1, 4))
    pending: list = []                 # keys whose fetch is under way, one entry per MISS
    now = 0.0
    for _ in range(60):
        now += rng.choice((0.25, 0.5, 1.0, 2.0, ttl_ / 2, ttl_))
        if pending and rng.random() < 0.45:
            key = pending.pop(rng.randrange(len(pending)))
            if rng.random() < 0.5:
                c.fill(key, f"{key}@{_num(now)}", now)
            else:
                c.fail(key, rng.choice(("down", "timeout", "error")), now)
            continue
        key = rng.choice(keys)
        if c.lookup(key, now).kind == MISS:
            pending.append(key)


def _coalesce_cases(cls, runs: int = 100) -> None:
    if not isinstance(cls, type):
        raise AssertionError(f"pass the class itself to the check, e.g. check.coalescing(RecCache); got {cls!r}")
    for scenario in (_coalesce_attribute, _coalesce_one_fetch, _coalesce_failed_fetch, _coalesce_off,
                     _coalesce_two_caches):
        _with_clock(cls, scenario)
    for seed in range(runs):
        _with_clock(cls, lambda c, clock, s=seed: _random_sequence(c, s, clock))


@_message_only
def coalescing(cls) -> None:
    """Task 3: one fetch per key at a time (others WAIT), ended by fill or fail alike; the whole class
    against the course's Cache on random call sequences; then a herd and failing fetches in the simulator."""
    _needs(cls, 2)
    _coalesce_cases(cls)
    calls = _sim_herd_check(cls)
    fb.ok(f"coalescing: one fetch per key at a time, the others wait and get its outcome, failures included; "
          f"100 random call sequences agree with the course's Cache; in the simulator 2000 requests on 5 cold "
          f"keys, whose first fetches failed, made {calls} fetches")


def _needs(cls, upto: int) -> None:
    """Tasks 1..``upto`` must pass (plain numbers only, quietly) before what needs them runs: "write task N first"."""
    steps = [(1, "ttl", _ttl_cases), (2, "hard_ttl", _hard_cases), (3, "coalescing", _coalesce_cases)]
    for number, name, cases in steps[:upto]:
        run = (lambda: cases(cls, runs=20)) if number == 3 else (lambda: cases(cls))
        fb.earlier_task(number, name, run, broken=f"check.{name}({cls.__name__}) of task {number} no longer passes "
                                                  f"with your class as it is now (did a later change break it?)")


# --- runs in the simulator ------------------------------------------------------------------------
def _recommend(svc, req):
    """The recommender's answer: recommendations for this segment, stamped with when they were made."""
    return ("recs", req.key, svc.env.now)
    yield  # noqa: B901 - a handler is a generator


def _popular(svc, req):
    return ("popular", svc.env.now)
    yield  # noqa: B901 - a handler is a generator


def _zipf(segments: int, s: float):
    weights = [1.0 / (k + 1) ** s for k in range(segments)]
    cum = list(itertools.accumulate(weights))
    total = cum[-1]
    return lambda rng: min(bisect.bisect(cum, rng.random() * total), segments - 1)


def _run(world, until: float, cache, *, what: str, stuck: str = _STUCK):
    """``world.run(until)`` under :data:`RUN_LIMIT_S`; a failure names the learner's call in flight."""
    def current(i):
        def text():
            inflight = cache.in_flight() if hasattr(cache, "in_flight") else None
            if inflight:
                return inflight[i]
            return f"{what} (at t = {world.now:.6g} s of the simulation)"
        return _Lazy(text)

    def hint(exc) -> str:
        text = str(exc)
        if isinstance(exc, ValueError) and "said WAIT" in text:
            if getattr(getattr(cache, "mine", cache), "coalesce", _MISSING) is _MISSING:
                return (". The simulator's CachedRead reads your cache's `coalesce` attribute to know whether a "
                        "caller may wait for another's fetch; yours has none: keep self.coalesce = coalesce in "
                        "__init__.")
            return (". lookup may say WAIT only while another caller's fetch of that key is under way (after its "
                    "MISS, until its fill or fail).")
        if isinstance(exc, ValueError) and "unique among caches" in text:
            return (". Create the CachedRead once, in recommendations_page, not in the handler: one made per "
                    "request would be a new, empty cache each time.")
        if isinstance(exc, ValueError) and "another World" in text:
            return (". Each run is a new World: build the policies (a Bulkhead, a Cache) inside "
                    "recommendations_page, not once outside it.")
        if getattr(cache, "current", None):
            return cache.raised(*cache.current, exc)
        return _at_your_line(exc)
    with fb.learner_code(current(0), current(1), hint, stuck=stuck, limit=RUN_LIMIT_S):
        try:
            return world.run(until)
        except BaseException as exc:     # noqa: B036 - the time limit's stop too
            raise _original(exc) from None


def _source_world(seed: int, outage, *, latency=(0.02, 0.08), capacity=50):
    world = World(seed=seed)
    source = Service(world, "source", capacity=capacity, latency=Uniform(*latency), handler=_recommend)
    if outage is not None:
        Outage(source, [outage])
    return world, source


def _read_through(world, cache, *, rate: float, duration: float, keys, name="reads"):
    layer = CachedRead(world, cache)
    front = Service(world, "front", capacity=100_000, dependencies=["source"],
                    handler=lambda svc, req: layer.read(req, lambda sub: svc.ask("source", sub)))
    key = keys if callable(keys) else (lambda rng, n=keys: rng.randrange(n))
    OpenLoop(world, front, Constant(rate), duration=duration, name=name, key=key)
    return layer


def _sim_check(cls, kw: dict, *, seed: int, outage, keys: int, rate: float, duration: float):
    """A run with the learner's cache in CachedRead, beside the course's: every answer must agree, and
    no answer may be older than what the settings allow."""
    where = (f"In the simulator ({cls.__name__}({_kwargs(kw)}), {keys} keys, {rate:g} requests/s"
             + (f", the source down from {outage[0]:g} to {outage[1]:g} s" if outage else "") + "), ")
    cache = _Pair(cls, kw, timed=False, where=where)
    world, _ = _source_world(seed, outage)
    _read_through(world, cache, rate=rate, duration=duration, keys=keys)
    results = _run(world, duration + 5.0, cache, what="the simulation")
    oldest = float(results.ages().max()) if len(results.ages()) else 0.0
    bound = cache.hard_value
    if oldest > bound + 1e-6:
        raise AssertionError(f"{where}an answer was {oldest:.6g} s old, past what your settings allow "
                             f"({_arg(bound)} s): unbounded staleness.")
    return cache


def _sim_herd_check(cls) -> int:
    """Coalescing in the simulator: a herd on cold keys whose first fetches fail: every waiter gets the
    failed fetch's outcome (nobody is left waiting), then one fetch per key. Returns the source's calls."""
    kw = dict(ttl=20.0, hard_ttl=60.0, coalesce=True)
    where = (f"In the simulator ({cls.__name__}({_kwargs(kw)}), a cold start: 200 requests/s on 5 keys, a "
             f"source that takes 0.3 to 0.5 s and fails every call until 1.5 s), ")
    cache = _Pair(cls, kw, timed=False, where=where)
    world, source = _source_world(43, None, latency=(0.3, 0.5))
    ErrorBurst(source, [(0.0, 1.5)], error_rate=1.0)
    _read_through(world, cache, rate=200.0, duration=10.0, keys=5)
    results = _run(world, 12.0, cache, what="the simulation")
    if results.in_flight:
        raise AssertionError(f"{where}{results.in_flight} requests were still waiting at the end: waiters lost.")
    return results.services["source"].calls


# --- the demos between the tasks --------------------------------------------------------------------
@_message_only
def one_key(cls, *, ttl: float, rate: float, seed: int, duration: float = 2000.0) -> float:
    """One key asked ``rate`` times a second through ``cls(ttl=ttl, coalesce=False)`` (task 3 may not be done
    yet): the share of lookups that hit."""
    _needs(cls, 1)
    cache = _Pair(cls, dict(ttl=ttl, coalesce=False), timed=False, reference=False)
    world, _ = _source_world(seed, None, latency=(0.01, 0.03))
    _read_through(world, cache, rate=rate, duration=duration, keys=lambda rng: "hot")
    _run(world, duration + 1.0, cache, what="the simulation")
    return cache.hits / max(cache.hits + cache.misses + cache.coalesced, 1)


@_message_only
def outage_run(cls, *, ttl: float, hard_ttl: float, outage, seed: int, duration: float = 900.0, keys: int = 20,
               rate: float = 5.0):
    """``keys`` keys read through ``cls(ttl, hard_ttl=...)`` while the source is down in ``outage``: the Results."""
    _needs(cls, 2)
    cache = _Pair(cls, dict(ttl=ttl, hard_ttl=hard_ttl, coalesce=False), timed=False, reference=False)
    world, _ = _source_world(seed, outage)
    _read_through(world, cache, rate=rate, duration=duration, keys=keys)
    return _run(world, duration + 1.0, cache, what="the simulation")


@_message_only
def herd(cls, *, coalesce: bool, seed: int) -> int:
    """A cold cache meets 200 requests/s on 5 keys, the source taking 0.3-0.5 s: the calls that
    reached the source in the first second."""
    _needs(cls, 3 if coalesce else 2)
    cache = _Pair(cls, dict(ttl=20.0, coalesce=coalesce), timed=False, reference=False)
    world, _ = _source_world(seed, None, latency=(0.3, 0.5))
    _read_through(world, cache, rate=200.0, duration=1.0, keys=5)
    results = _run(world, 3.0, cache, what="the simulation")
    return results.services["source"].calls


# --- task 4: the page -------------------------------------------------------------------------------
class _Browser:
    """The visitors' side of the page: asks it, checks each answer's value, and notes how old the data
    really was (from the recommender's stamp, whatever the cache says)."""

    def __init__(self, page, world):
        self.page, self.name, self._world = page, "browser", world
        self.answers: list = []      # (start, full, true age, delivered in time, value kind, key, req.degraded)
        self.problems: dict = {}     # what -> [count, first example]

    @property
    def world(self):
        return self._world

    def call(self, req, caller=None):
        value = yield from self.page.call(req, caller)
        self._note(req, value)
        return value

    def _problem(self, what: str, example: str) -> None:
        entry = self.problems.setdefault(what, [0, example])
        entry[0] += 1

    def _note(self, req, value) -> None:
        now = self._world.now
        full = not req.degraded
        kind = value[0] if isinstance(value, tuple) and value and value[0] in ("recs", "popular") else None
        if kind is None:
            self._problem("value", f"the page answered {value!r} for segment {req.key!r}")
            return
        if kind == "recs" and value[1] != req.key:
            self._problem("key", f"a request for segment {req.key!r} got the recommendations of segment "
                                 f"{value[1]!r}")
        if kind == "popular" and req.answered_by in self._world.caches:
            self._problem("cached", f"the request for segment {req.key!r} at t = {req.start:.1f} s got the popular "
                                    f"list from the cache")
        elif kind == "popular" and full:
            self._problem("unmarked", f"the request for segment {req.key!r} at t = {req.start:.1f} s got the "
                                      f"popular list as a full-quality answer")
        self.answers.append((req.start, full, now - value[-1], now - req.start <= USER_TIMEOUT, kind, req.key,
                             req.degraded))


_PAGE_STUCK = ("a loop with no end in your page's handler? Each step of the fallback chain is tried once, in "
               "order: after a failure move on to the next (or use FallbackChain and with_fallbacks).")


def _page_world(seed: int, outage=None):
    world = World(seed=seed)
    recommender = Service(world, "recommender", capacity=REC_SLOTS, latency=Uniform(*REC_LATENCY),
                          handler=_recommend)
    Service(world, "popular_db", capacity=DB_CONNECTIONS, latency=Uniform(*DB_LATENCY), handler=_popular)
    if outage is not None:
        Outage(recommender, [outage])
    return world


def _build_page(fn, world, cache, db_slots: int, cache_text: str):
    if not callable(fn):
        raise AssertionError(f"pass the function itself to the check, e.g. check.page(recommendations_page); "
                             f"got {fn!r}")
    call = f"recommendations_page(world, {cache_text}, db_slots={db_slots})"

    def hint(exc) -> str:
        text = str(exc)
        if isinstance(exc, TypeError) and "argument" in text:
            if _your_line(exc):             # the page ran, and something inside it was called wrongly
                return _at_your_line(exc, _CLIENT_ARGS if "Client" in text else "")
            return ". It takes (world, cache, db_slots): compare your def line with the task's."
        if isinstance(exc, ValueError) and "target must have a call" in text:
            return _at_your_line(exc, _CLIENT_ARGS)
        if isinstance(exc, ValueError) and "another World" in str(exc):
            return (". Each run is a new World: build the Bulkhead (and any other policy) inside "
                    "recommendations_page, one per page, not once outside it.")
        if isinstance(exc, ValueError) and "name must be unique" in str(exc):
            return (". Each name is used once in a world: the check's visitors use 'visitor' and 'browser'; "
                    "name your client, for instance, 'page->popular_db'.")
        return _at_your_line(exc)
    with fb.learner_code("recommendations_page", call, hint, stuck=_PAGE_STUCK):
        page = fn(world, cache, db_slots)
    if page is None:
        raise AssertionError(f"{call} returned None: did you forget `return`? It returns the page, the Service "
                             f"you built.")
    if not callable(getattr(page, "call", None)) or getattr(page, "world", None) is not world:
        raise AssertionError(f"{call} returned {page!r}: return the page, the Service(world, ...) you built "
                             f"in this world.")
    capacity = getattr(page, "capacity", None)
    if isinstance(capacity, int) and capacity < 100:
        raise AssertionError(f"Your page serves {capacity} request{'s' * (capacity != 1)} at a time (capacity="
                             f"{capacity}{', the default' if capacity == 1 else ''}): while one waits for the "
                             f"recommender or the database, every other visitor queues behind it. The page itself "
                             f"is not the bottleneck here: give it capacity=1000.")
    return page


def _page_run(fn, cache, *, seed: int, db_slots: int, outage, rate=RATE, duration=600.0, segments=SEGMENTS,
              zipf=ZIPF, cache_text: str = "cache", probe_every: float | None = None):
    """A run of the learner's page: (results, browser, probe of popular_db or None, the world)."""
    world = _page_world(seed, outage)
    page = _build_page(fn, world, cache, db_slots, cache_text)
    browser = _Browser(page, world)
    visitor = Client(world, browser, name="visitor", timeout=USER_TIMEOUT)
    OpenLoop(world, visitor, Constant(rate), duration=duration, name="page views", key=_zipf(segments, zipf))
    probe = ServiceProbe(world, world.services["popular_db"], probe_every) if probe_every else None
    results = _run(world, duration + 5.0, cache, what="your page's handler", stuck=_PAGE_STUCK)
    return results, browser, probe, world


def _in_outage(start, outage) -> bool:
    return outage[0] <= start < outage[1]


def _double_calls(world) -> int:
    """Page requests that called the recommender more than once (each call notes its request's start)."""
    starts = world.services["recommender"].call_start
    seen, twice = set(), set()
    for s in starts:
        if s in seen:
            twice.add(s)
        seen.add(s)
    return len(twice)


class _WatchedCache(Cache):
    """The course's Cache, noting the first exception other than a ServiceError that ended a fetch
    (CachedRead tells the cache such a fetch failed with reason "cancelled"): a bug in the page's read,
    which a page that catches every exception hides behind its fallback."""

    swallowed = None

    def fail(self, key, reason, now):
        if reason == "cancelled" and self.swallowed is None:
            exc = sys.exc_info()[1]
            if isinstance(exc, Exception) and not isinstance(exc, (ServiceError, simpy.Interrupt)):
                self.swallowed = exc
        return super().fail(key, reason, now)


class _PlantedBug(RuntimeError):
    """What the check's cache raises once, from lookup: a bug in the read, which must not be caught."""


class _BuggyCache(Cache):
    """The course's Cache, whose ``at``-th lookup raises RuntimeError("check: a bug")."""

    def __init__(self, ttl, *, hard_ttl, at: int):
        super().__init__(ttl, hard_ttl=hard_ttl)
        self.at, self.calls, self.raised = at, 0, None

    def lookup(self, key, now):
        self.calls += 1
        if self.calls == self.at:
            self.raised = (key, now)
            raise _PlantedBug("check: a bug")
        return super().lookup(key, now)


def _catch_all_case(fn) -> None:
    """A short run with the recommender up, in which the cache's lookup raises a RuntimeError once: the
    page must let it through (it is a bug, not the recommender failing), not answer from popular_db."""
    cache = _BuggyCache(20.0, hard_ttl=150.0, at=3)
    try:
        _, browser, _, _ = _page_run(fn, cache, seed=15, db_slots=4, outage=None, duration=10.0,
                                     cache_text="Cache(ttl=20, hard_ttl=150)")
    except AssertionError as err:
        if isinstance(err.__cause__, _PlantedBug):
            return                              # the bug showed, as it should
        raise
    if cache.raised is None:
        return
    key, at = cache.raised
    where = (f"With the recommender up, and the cache's lookup raising RuntimeError('check: a bug') once, for the "
             f"view of segment {key!r} at t = {at:.1f} s: ")
    why = ("Catch ServiceError only (except ServiceError:): the fallback is for the recommender failing, and a bug "
           "in the read (a typo in a name, a wrong argument) must show as an error, not hide behind the popular list "
           "(a bare `except:` even catches the check's time limit).")
    if any(a[4] == "popular" and a[5] == key and 0 <= at - a[0] <= USER_TIMEOUT for a in browser.answers):
        raise AssertionError(f"{where}your page answered that view with the popular list: it caught the RuntimeError "
                             f"from the cache read and fell back. {why}")
    raise AssertionError(f"{where}the run went on without that error: your page caught the RuntimeError from the "
                         f"cache read. {why}")


def _page_outage_case(fn) -> None:
    outage = (300.0, 390.0)
    cache = _WatchedCache(20.0, hard_ttl=150.0)
    text = "Cache(ttl=20, hard_ttl=150)"
    results, browser, _, world = _page_run(fn, cache, seed=11, db_slots=4, outage=outage, cache_text=text)
    where = (f"With {text}, db_slots=4 and the recommender down from 300 to 390 s (a 10-minute run, "
             f"{RATE:g} views/s): ")
    for what in ("value", "key", "cached", "unmarked"):
        if what in browser.problems:
            count, example = browser.problems[what]
            advice = {
                "value": "The page returns the value it got: the recommender's (through the cache) or popular_db's "
                         "(`return (yield from ...)`).",
                "key": "The page must answer each request with the recommendations of its own key: read through "
                       "CachedRead, which keys the cache on req.key, with the recommender as the fetch; and never "
                       "cache a fallback's answer under the request's key.",
                "cached": "The popular list was stored in the cache under the segment's key, as if it were the "
                          "recommender's answer, and then served for ttl as this segment's recommendations: the "
                          "fallback ran inside the cache's fetch. Fetch only from the recommender in "
                          "layer.read(req, fetch), and fall back outside it, when the read raises ServiceError.",
                "unmarked": "An answer from a fallback is degraded: set req.degraded = 'popular' (with_fallbacks "
                            "does it for you), or the page counts a popular list as full quality."}[what]
            raise AssertionError(f"{where}{example} ({count} such answers). {advice}")
    # views answered before the outage began (started a visitor's patience before it): nothing failed for them
    marked = [a for a in browser.answers if a[0] < outage[0] - USER_TIMEOUT and a[4] == "recs" and not a[1]]
    if marked:
        first = marked[0]
        raise AssertionError(f"{where}the recommender's answer for segment {first[5]!r} at t = {first[0]:.1f} s, "
                             f"before the outage, was marked degraded (req.degraded = {first[6]!r}; {len(marked)} "
                             f"such answers): set req.degraded only after the cache read raised ServiceError, when "
                             f"you answer from popular_db. The recommender's answer, fresh from it or from the cache, "
                             f"is full quality (the cache marks a stale one itself).")
    lookups = cache.hits + cache.stale + cache.coalesced + cache.misses
    if lookups == 0:
        raise AssertionError(f"{where}the cache you were given was never asked: build the page's "
                             f"CachedRead(world, cache) with the `cache` argument (the check, and later the lab, "
                             f"hand it yours or the course's).")
    twice = _double_calls(world)
    if twice:
        raise AssertionError(f"{where}{twice} page requests called the recommender twice: its first call "
                             f"failed (or the cache had nothing young enough), and then the page called it again. A "
                             f"fallback that calls the failed dependency again only fails again, and adds load "
                             f"to it when it is weakest. After the cache read fails, ask popular_db; no retry, no "
                             f"second step that is the recommender.")
    healthy = [a for a in browser.answers if a[0] < outage[0] or a[0] > outage[1] + 30]
    db_calls = sum(1 for t in world.services["popular_db"].call_start if t < outage[0] or t > outage[1] + 30)
    rec_calls = sum(1 for t in world.services["recommender"].call_start if t < outage[0] or t > outage[1] + 30)
    if healthy and db_calls > 0.01 * len(healthy) and rec_calls <= 0.01 * len(healthy):
        bug, what = cache.swallowed, ""
        if bug is not None:
            line = _your_line(bug)
            what = f" ({type(bug).__name__}: {bug}{f', from your line `{line}`' if line else ''})"
        raise AssertionError(f"{where}your page called popular_db {db_calls} times for the {len(healthy)} views "
                             f"made while the recommender was up, and the recommender {rec_calls} times: the cache "
                             f"read failed with something other than a ServiceError{what}, and your page caught it "
                             f"and fell back. Catch ServiceError only (except ServiceError:), so that a bug in the "
                             f"read shows as an error instead of hiding behind the fallback.")
    if healthy and db_calls > 0.01 * len(healthy):
        raise AssertionError(f"{where}your page called popular_db {db_calls} times for the {len(healthy)} views "
                             f"made while the recommender was up: call popular_db only when the cache read "
                             f"failed. A fallback that runs all the time loads the slower system for nothing, and "
                             f"when the recommender does fail it has no room left.")
    outage_views = results.between(*outage)
    failed = outage_views.reasons(unanswered_only=True)
    down = failed.get("down", 0)
    if down:
        raise AssertionError(f"{where}{down} views during the outage failed with 'down', although popular_db was "
                             f"there: when the cache read raises ServiceError, fall back to popular_db "
                             f"(try/except ServiceError around the read, or a FallbackChain).")
    stale = sum(1 for a in browser.answers if _in_outage(a[0], outage) and a[4] == "recs" and not a[1])
    if stale == 0:
        raise AssertionError(f"{where}no view during the outage got a stale answer from the cache: read the "
                             f"recommender through CachedRead(world, cache) (fetch = lambda sub: "
                             f"svc.ask('recommender', sub)), so that its stale-if-error can answer.")


def _flood_case(fn, db_slots: int, seed: int) -> tuple:
    """The recommender down and the cache cold: every view goes to popular_db. Returns (peak calls at
    popular_db, browser, results, world)."""
    cache = Cache(5.0, hard_ttl=30.0)
    results, browser, probe, world = _page_run(fn, cache, seed=seed, db_slots=db_slots, outage=(0.0, 60.0),
                                               rate=FLOOD_RATE, duration=60.0, cache_text="Cache(ttl=5, hard_ttl=30)",
                                               probe_every=0.01)
    return max(probe.in_system), browser, results, world


def _protection(fn, db_slots: int, seed: int, peak_seen: dict) -> None:
    peak, browser, results, world = _flood_case(fn, db_slots, seed)
    peak_seen[db_slots] = peak
    where = (f"With the recommender down and the cache cold for a minute ({FLOOD_RATE:g} views/s, 4 times what "
             f"popular_db can take: {DB_CONNECTIONS} connections, 0.8 to 1.2 s a query) and db_slots={db_slots}: ")
    if peak > max(10, 3 * db_slots):
        clients = [c for c in world.clients.values() if getattr(c.target, "name", None) == "popular_db"]
        if clients and all(c.bulkhead is None for c in clients):
            why = (" Your client has no bulkhead: a timeout alone does not protect it, because the query goes on "
                   "in the database after the page gives up.")
        else:
            why = ""
        raise AssertionError(f"{where}popular_db had {peak} calls at once, queueing behind its {DB_CONNECTIONS} "
                             f"connections, and the views waiting for it timed out. No protection for the slower "
                             f"system: call it through Client(world, world.service('popular_db'), "
                             f"name='page->popular_db', bulkhead=Bulkhead(db_slots)), so that what it cannot take "
                             f"fails at once instead of piling up.{why}")
    if peak > db_slots:
        raise AssertionError(f"{where}popular_db had {peak} calls at once: db_slots is the most calls the page may "
                             f"have there at once. Use it as the bulkhead's size, Bulkhead(db_slots), not a number "
                             f"of your own.")
    delivered = [a for a in browser.answers if a[4] == "popular"]
    late = sum(1 for a in delivered if not a[3])
    if delivered and late > 0.2 * len(delivered):
        raise AssertionError(f"{where}{late} of the {len(delivered)} popular lists came after the visitor had left "
                             f"({USER_TIMEOUT:g} s): does the bulkhead let calls wait (max_wait) longer than a "
                             f"visitor waits? A call it cannot take should fail at once.")


@_message_only
def page(fn) -> None:
    """Task 4: ``recommendations_page(world, cache, db_slots)``: the right answer for each key, stale
    answers from the cache during an outage, a degraded fallback to popular_db that never calls the
    recommender again, and popular_db protected by a bulkhead of ``db_slots``."""
    _page_outage_case(fn)
    _catch_all_case(fn)
    peaks: dict = {}
    for db_slots, seed in ((2, 12), (3, 13)):
        _protection(fn, db_slots, seed, peaks)
    if max(peaks.values()) == 0:
        raise AssertionError("With the recommender down and the cache cold, your page never called popular_db: its "
                             "popular lists came from somewhere else (a list of your own?). The fallback asks "
                             "popular_db, through the client with the bulkhead: svc.ask('popular_db', req), or a "
                             "FallbackChain step 'popular_db'.")
    if peaks[3] <= 2:
        raise AssertionError(f"With db_slots=3 and the database flooded, popular_db never had more than {peaks[3]} "
                             f"calls at once: db_slots is the size of the bulkhead, Bulkhead(db_slots); yours "
                             f"ignores it (a number of your own?).")
    fb.ok("page: each view gets its own segment's recommendations, stale ones during an outage, else the popular "
          "list (degraded); the recommender is never called twice; popular_db never has more than db_slots calls")


@_message_only
def page_run(cls, fn, *, ttl: float, hard_ttl: float, db_slots: int, seed: int = STATED["seed"],
             outage=STATED["outage"], segments: int = SEGMENTS, zipf: float = ZIPF):
    """The page (``fn``, with ``cls(ttl, hard_ttl=...)``) through one 25-minute scenario: ``(results,
    figures)``, figures being answered, full, oldest_full and oldest (seconds), from the visitors' side."""
    ttl, hard_ttl, db_slots = _config(ttl, hard_ttl, db_slots)
    _needs(cls, 3)
    cache = _Pair(cls, dict(ttl=ttl, hard_ttl=hard_ttl), timed=False, reference=False)
    text = f"{cls.__name__}(ttl={_arg(ttl)}, hard_ttl={_arg(hard_ttl)})"
    with _needs_page():
        results, browser, _, _ = _page_run(fn, cache, seed=seed, db_slots=db_slots, outage=outage,
                                           duration=DURATION, segments=segments, zipf=zipf, cache_text=text)
    return results, _figures(results, browser, ttl)


@contextlib.contextmanager
def _needs_page():
    """An unwritten page is "write task 4 first" where a later cell needs it."""
    try:
        yield
    except AssertionError as err:
        if str(err).startswith("recommendations_page is not written yet"):
            raise AssertionError(f"Write task 4 first: {err}") from None
        raise


def _figures(results, browser, ttl: float) -> dict:
    seen = [a for a in browser.answers if a[3]]
    full = [a[2] for a in seen if a[1]]
    # the recommender's recommendations marked degraded though no older than ttl (a stale answer is older)
    young = sum(1 for a in seen if a[4] == "recs" and not a[1] and a[2] <= ttl)
    return dict(answered=results.request_availability(), full=results.full_quality_availability(),
                oldest_full=max(full, default=0.0), oldest=max((a[2] for a in seen), default=0.0),
                degraded_young=young,
                problems=dict(browser.problems),
                unanswered=dict(results.reasons(unanswered_only=True)))


# --- task 5: the configuration ------------------------------------------------------------------
#: The runs of :func:`targets`: what each is, and how it differs from the stated scenario.
_RUNS = [
    ("the stated outage (90 s)", dict()),
    ("another day (seed 7)", dict(seed=7)),
    ("a 2-minute outage", dict(seed=9, outage=(600.0, 720.0))),
    ("flatter popularity (1000 segments)", dict(seed=10, segments=1000, zipf=0.8)),
]


def _config(TTL, HARD_TTL, DB_SLOTS):
    ttl_ = fb.number(TTL, "TTL")
    hard = fb.number(HARD_TTL, "HARD_TTL")
    slots = fb.answer(DB_SLOTS, "DB_SLOTS")
    if isinstance(slots, bool) or not isinstance(slots, numbers.Integral):
        if isinstance(slots, numbers.Real) and float(slots).is_integer():
            slots = int(slots)
        else:
            raise AssertionError(f"DB_SLOTS should be a whole number of calls, got {slots!r}")
    if ttl_ <= 0:
        raise AssertionError(f"TTL = {_num(ttl_)}: a TTL is a positive number of seconds.")
    if slots < 1:
        raise AssertionError(f"DB_SLOTS = {slots}: the bulkhead needs at least 1 slot (0 would never call "
                             f"popular_db).")
    if hard < ttl_:
        raise AssertionError(f"HARD_TTL = {_num(hard)} is below TTL = {_num(ttl_)}: an answer goes stale only past "
                             f"the TTL, so the hard TTL, the oldest it may be served, is at least the TTL.")
    return ttl_, hard, int(slots)


def _ms(x: float, limit: float) -> str:
    return " Milliseconds? Times are seconds here." if x >= 100 * limit else ""


def _verdict(name: str, fig: dict, cfg) -> str | None:
    """What is wrong in one run's figures, and the likely cause; None when it meets the targets."""
    ttl_, hard, slots = cfg
    if fig["oldest_full"] > FRESH_LIMIT + 1e-6:
        return (f"In {name}, a full-quality answer was {fig['oldest_full']:.1f} s old, past the {FRESH_LIMIT:g} s "
                f"a full-quality answer may be: TTL = {_num(ttl_)} lets an entry be served fresh that long. "
                f"Keep TTL <= {FRESH_LIMIT:g}.{_ms(ttl_, FRESH_LIMIT)}")
    if fig["oldest"] > STALE_LIMIT + 1e-6:
        return (f"In {name}, an answer was {fig['oldest']:.1f} s old, past the {STALE_LIMIT:g} s bound: HARD_TTL = "
                f"{_num(hard)} serves stale data that long. Keep HARD_TTL <= {STALE_LIMIT:g}.{_ms(hard, STALE_LIMIT)}")
    if fig["answered"] < TARGET_ANSWERED:
        refused = fig["unanswered"].get("bulkhead full", 0)
        timed_out = fig["unanswered"].get("timeout", 0)
        text = (f"In {name}, only {fig['answered']:.2%} of the views were answered (target "
                f"{TARGET_ANSWERED:.1%}); unanswered: "
                + ", ".join(f"{n} {r!r}" for r, n in sorted(fig["unanswered"].items(), key=lambda x: -x[1])) + ".")
        if hard < LONGEST_OUTAGE + ttl_:
            text += (f" An entry fetched just before an outage may already be up to TTL = {_num(ttl_)} s old; "
                     f"through a {LONGEST_OUTAGE:g} s outage it reaches {LONGEST_OUTAGE + ttl_:g} s, and HARD_TTL = "
                     f"{_num(hard)} gives up on it before the end: every view of it then goes to popular_db, which "
                     f"cannot take them all. Cover the longest outage plus the TTL, within the {STALE_LIMIT:g} s "
                     f"bound.{' Minutes? Times are seconds here.' if hard < 10 else ''}")
        elif refused >= timed_out:
            text += (f" Your bulkhead of DB_SLOTS = {slots} refused {refused} views ('bulkhead full'): the views "
                     f"that fall back come in bursts, and {slots} slot{'s' * (slots > 1)} cannot absorb them. "
                     f"popular_db has {DB_CONNECTIONS} connections and a query takes about 1 s, so a call may "
                     f"wait its turn briefly and still answer within the visitor's {USER_TIMEOUT:g} s: give the "
                     f"bulkhead a slot or two more.")
        elif timed_out > refused:
            text += (" Views timed out: something was slower than the visitors' 2 s (popular_db queueing behind "
                     "too large a bulkhead?).")
        return text
    if fig["full"] < TARGET_FULL and fig.get("degraded_young"):
        return (f"In {name}, only {fig['full']:.2%} of the views got a full-quality answer (target "
                f"{TARGET_FULL:.0%}): {fig['degraded_young']} answers were the recommender's recommendations, at "
                f"most TTL = {_num(ttl_)} s old, and yet marked degraded. That is your page: set req.degraded only "
                f"after the cache read raised ServiceError, when you answer from popular_db. Run "
                f"check.page(recommendations_page) again.")
    if fig["full"] < TARGET_FULL:
        return (f"In {name}, only {fig['full']:.2%} of the views got a full-quality answer (target "
                f"{TARGET_FULL:.0%}): with the recommender up, views should be fresh hits or fresh fetches. Run "
                f"check.coalescing(RecCache) and check.page(recommendations_page) again.")
    return None


def _table(rows) -> str:
    head = f"{'run':<36}{'answered':>9}{'full':>8}{'oldest full':>13}{'oldest':>9}"
    lines = [head]
    for name, fig in rows:
        lines.append(f"{name:<36}{fig['answered']:>9.2%}{fig['full']:>8.1%}{fig['oldest_full']:>11.1f} s"
                     f"{fig['oldest']:>7.0f} s")
    return "\n".join(lines)


@_message_only
def targets(cls, fn, TTL, HARD_TTL, DB_SLOTS) -> None:
    """Task 5: the page with ``cls(TTL, hard_ttl=HARD_TTL)`` and ``DB_SLOTS`` meets the targets on the
    stated scenario, on other days, through a 2-minute outage and with flatter popularity; and keeps
    popular_db within what it can finish before a visitor leaves when the cache is cold."""
    cfg = _config(TTL, HARD_TTL, DB_SLOTS)
    ttl_, hard, slots = cfg
    _needs(cls, 3)
    if not callable(fn):
        raise AssertionError(f"pass the function itself, e.g. check.targets(RecCache, recommendations_page, TTL, "
                             f"HARD_TTL, DB_SLOTS); got {fn!r}")
    rows, problem = [], None
    for name, change in _RUNS:
        kw = {**STATED, **change}
        _, fig = page_run(cls, fn, ttl=ttl_, hard_ttl=hard, db_slots=slots, **kw)
        if fig["problems"]:
            what, (count, example) = next(iter(fig["problems"].items()))
            raise AssertionError(f"In {name}, {example} ({count} such answers): run check.page("
                                 f"recommendations_page) first.")
        rows.append((name, fig))
        problem = problem or _verdict(name, fig, cfg)
    with _needs_page():
        try:
            _catch_all_case(fn)
        except AssertionError as err:
            raise AssertionError(f"{err} Run check.page(recommendations_page) first.") from None
    with _needs_page():
        _, browser, _, _ = _flood_case(fn, slots, seed=14)
    popular = [a for a in browser.answers if a[4] == "popular"]
    late = sum(1 for a in popular if not a[3])
    capacity = round(DB_CONNECTIONS / (sum(DB_LATENCY) / 2) * 60.0)
    timely = len(popular) - late
    table = _table(rows) + (f"\ncold cache, recommender down for a minute: popular_db answered {timely} views in time "
                            f"(it can do about {capacity}), {late} too late")
    if problem is None and late > LATE_LIMIT * max(len(popular), 1):
        problem = (f"With the cache cold and the recommender down, {late} of popular_db's {len(popular)} answers came "
                   f"after the visitor had left ({USER_TIMEOUT:g} s): DB_SLOTS = {slots} lets calls queue there "
                   f"longer than a visitor waits. It has {DB_CONNECTIONS} connections and a query takes about 1 s: "
                   f"a call may wait for one query to end, not for two. That work is done for nobody, and it delays "
                   f"the calls behind it. Lower DB_SLOTS.")
    if problem is None and timely < BUSY_LIMIT * capacity:
        problem = (f"With the cache cold and the recommender down, popular_db answered only {timely} views in a "
                   f"minute, where its {DB_CONNECTIONS} connections can answer about {capacity} (the target is "
                   f"{BUSY_LIMIT:.0%} of that): DB_SLOTS = {slots} leaves connections idle while the bulkhead turns "
                   f"views away. ")
        if slots == DB_CONNECTIONS:
            problem += (f"With as many slots as connections, each time a query ends its connection waits idle for "
                        f"the next view, while the views that came when all were busy were turned away. Let a call "
                        f"wait for the next free connection: a query takes about 1 s, within the visitor's "
                        f"{USER_TIMEOUT:g} s, so one slot more than the connections.")
        elif slots < DB_CONNECTIONS:
            problem += f"Give it at least its {DB_CONNECTIONS} connections."
    if problem:
        raise AssertionError(f"{problem}\n{table}")
    print(table)
    fb.ok(f"TTL = {_num(ttl_)} s, HARD_TTL = {_num(hard)} s, DB_SLOTS = {slots}: at least {TARGET_ANSWERED:.1%} "
          f"answered and {TARGET_FULL:.0%} full quality in every run, nothing older than {STALE_LIMIT:g} s")
