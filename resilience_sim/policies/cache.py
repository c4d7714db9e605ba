"""A read-through cache's decisions, with bounded staleness: the caller fetches, the cache decides.

``Cache(ttl, hard_ttl=..., stale_while_revalidate=..., negative_ttl=..., capacity=..., coalesce=...)``
keeps one entry per key (the request's key), written at the time its value was fetched; its ``age`` is
``now - written``. Asked with :meth:`Cache.lookup`, it answers one of:

* ``FRESH``: age <= ``ttl`` (the soft TTL, RFC 5861's ``max-age``): serve the value.
* ``STALE``: ``ttl`` < age <= ``ttl + stale_while_revalidate``: serve the value now; ``refresh`` is
  True for the one caller who should refresh it in the background (one refresh per key at a time).
* ``NEGATIVE``: a cached error younger than ``negative_ttl``: fail at once with its ``reason``.
* ``WAIT``: another caller is fetching this key (coalescing): wait for its outcome.
* ``MISS``: fetch it, then report :meth:`fill` (the value) or :meth:`fail` (the reason). On a failure
  of the source (a reason in ``stale_on``: server errors, timeouts, outages, as RFC 5861 allows for
  500, 502, 503 and 504) the cache serves the stored value while its age is at most ``hard_ttl``
  (stale-if-error: ``max-age`` + ``stale-if-error``); otherwise the error passes on (and is cached for
  ``negative_ttl``). An answer that is the caller's business ("not found": the item is gone) is
  never covered by a stale value: it drops the stored one.

What holds: no answer carries data older than :attr:`Cache.max_staleness` (``max(hard_ttl, ttl +
stale_while_revalidate)``); at most ``capacity`` entries are kept (least recently used out first);
with ``coalesce`` at most one fetch per key is outstanding; the counters add up (``lookups = hits +
stale + negative + coalesced + misses``). Driven by ``now`` (finite seconds that never go back): the
simulator's clock, ``time.monotonic()``, or plain numbers in a test.

A miss, then its fill, is the path of every request to a cold or churning cache, so :meth:`Cache.lookup`
and :meth:`Cache.store` (the body of :meth:`Cache.fill`) check the clock inline (comparisons, for a
float; anything else takes the full check) rather than through a call.
"""
from __future__ import annotations

import math
from collections import OrderedDict

from ..core import validate
from ..core.reasons import REASONS, check_reason, check_reasons
from ._state import BIG, Stateful

#: Failures a stale value may cover: the source's own (errors, timeouts, outages, overload), not the
#: answers that say the request itself is wrong or the item is gone.
STALE_ON = REASONS - {"bad request", "unauthorized", "not found", "conflict"}
FRESH, STALE, NEGATIVE, WAIT, MISS, ERROR = "fresh", "stale", "negative", "wait", "miss", "error"
#: Most entries a cache may hold (a cache is bounded: say how big).
MAX_CAPACITY = 10 ** 7


class Lookup:
    """A cache's decision: ``kind`` (FRESH, STALE, NEGATIVE, WAIT, MISS or ERROR), the ``value`` to
    serve and its ``age``, ``refresh`` (STALE: this caller refreshes in the background) and ``reason``
    (NEGATIVE or ERROR: the failure to pass on; STALE after a failed fetch: "stale-if-error")."""
    __slots__ = ("kind", "value", "age", "refresh", "reason")

    def __init__(self, kind: str, value=None, age: float = 0.0, refresh: bool = False, reason: str = ""):
        self.kind, self.value, self.age, self.refresh, self.reason = kind, value, age, refresh, reason

    @property
    def served(self) -> bool:
        """True when the caller has a value to answer with (FRESH or STALE)."""
        return self.kind in (FRESH, STALE)

    def __repr__(self) -> str:
        extra = f", reason={self.reason!r}" if self.reason else ""
        return f"Lookup({self.kind}, age={self.age:g}{extra})"


_MISS, _WAIT = Lookup(MISS), Lookup(WAIT)        # they carry nothing: one of each serves every caller


class Cache(Stateful):
    """Counters: ``hits``, ``stale``, ``negative``, ``coalesced``, ``misses`` (lookups by answer),
    ``stale_if_error`` (failed fetches answered stale), ``fetches`` (fetches started: misses and
    background refreshes), ``evictions``. ``ttl=None`` keeps entries until evicted (no stale modes)."""

    def __init__(self, ttl: float | None, *, hard_ttl: float | None = None, stale_while_revalidate: float = 0.0,
                 negative_ttl: float = 0.0, capacity: int = 10_000, coalesce: bool = True, stale_on=STALE_ON):
        self.ttl = math.inf if ttl is None else validate.number("ttl", ttl, low=0.0, low_open=True)
        no_ttl = self.ttl == math.inf
        if hard_ttl is None:
            self.hard_ttl = self.ttl
        else:
            if no_ttl:
                raise ValueError(f"hard_ttl needs a ttl: a cache with no TTL never serves stale, so a stale "
                                 f"bound means nothing (give ttl=..., got hard_ttl={hard_ttl!r})")
            self.hard_ttl = validate.number("hard_ttl", hard_ttl, low=self.ttl)
        self.stale_while_revalidate = validate.non_negative("stale_while_revalidate", stale_while_revalidate)
        if no_ttl and self.stale_while_revalidate:
            raise ValueError(f"stale_while_revalidate needs a ttl: with none, nothing goes stale "
                             f"(got stale_while_revalidate={stale_while_revalidate!r})")
        self.negative_ttl = validate.non_negative("negative_ttl", negative_ttl)
        self.capacity = validate.integer("capacity", capacity, low=1, high=MAX_CAPACITY)
        self.coalesce = validate.boolean("coalesce", coalesce)
        self.stale_on = check_reasons("stale_on", stale_on)
        self.reset()

    @classmethod
    def from_cache_control(cls, header: str, **options) -> "Cache":
        """A cache set by a ``Cache-Control`` header's ``max-age``, ``stale-while-revalidate`` and
        ``stale-if-error`` (RFC 5861): ``Cache.from_cache_control("max-age=600, stale-if-error=1200")``."""
        fields = {}
        for part in validate.text("header", header, empty=False).split(","):
            name, _, value = part.strip().partition("=")
            if name in ("max-age", "stale-while-revalidate", "stale-if-error"):
                if not value.strip().isdigit():
                    raise ValueError(f"header: {name} must be a whole number of seconds, got {part.strip()!r}")
                fields[name] = int(value)
        if not fields.get("max-age"):
            raise ValueError(f"header must give a max-age (the TTL) > 0, got {header!r}")
        ttl = fields["max-age"]
        return cls(ttl, hard_ttl=ttl + fields.get("stale-if-error", 0),
                   stale_while_revalidate=fields.get("stale-while-revalidate", 0), **options)

    def reset(self) -> None:
        """Empty, counters zero, no clock, no owner."""
        self._forget()
        self._entries: OrderedDict = OrderedDict()     # key -> (value, written, error reason or "")
        self._fetching: dict = {}                      # key -> fetches outstanding
        self._refreshing: set = set()                  # keys with a background refresh running
        self.hits = self.stale = self.negative = self.coalesced = self.misses = 0
        self.stale_if_error = self.fetches = self.evictions = 0

    @property
    def max_staleness(self) -> float:
        """The oldest data any answer can carry, in seconds."""
        return max(self.hard_ttl, self.ttl + self.stale_while_revalidate)

    def __len__(self) -> int:
        return len(self._entries)

    # --- asking -------------------------------------------------------------------------------
    def lookup(self, key, now: float) -> Lookup:
        """What to do for a request about ``key`` at ``now`` (see the module's docstring)."""
        if now.__class__ is float and self._now <= now <= BIG:     # the clock's check, inline
            self._now = now
        else:
            now = self._tick(now)
        entries = self._entries
        try:
            entry = entries.get(key)
        except TypeError:
            raise _unhashable(key) from None
        if entry is not None:
            value, written, error = entry
            age = now - written
            if age > (self.negative_ttl if error else self.max_staleness):     # too old to ever serve
                del entries[key]
            else:
                entries.move_to_end(key)
                if error:
                    self.negative += 1
                    return Lookup(NEGATIVE, age=age, reason=error)
                if age <= self.ttl:
                    self.hits += 1
                    return Lookup(FRESH, value, age)
                if age <= self.ttl + self.stale_while_revalidate:
                    self.stale += 1
                    refresh = key not in self._refreshing and key not in self._fetching
                    if refresh:
                        self._refreshing.add(key)
                        self.fetches += 1
                    return Lookup(STALE, value, age, refresh=refresh)
        fetching = self._fetching
        if not self.coalesce:
            fetching[key] = fetching.get(key, 0) + 1
        elif key in fetching:
            self.coalesced += 1
            return _WAIT
        else:
            fetching[key] = 1                      # coalescing: the one fetch of this key
        self.misses += 1
        self.fetches += 1
        return _MISS

    # --- reporting a fetch ----------------------------------------------------------------------
    def fill(self, key, value, now: float) -> Lookup:
        """A fetch of ``key`` (a MISS, or a STALE lookup's refresh) returned ``value`` at ``now``: stored
        with age 0; the answer (FRESH) also goes to every caller that waited for it."""
        self.store(key, value, now)
        return Lookup(FRESH, value, 0.0)

    def store(self, key, value, now: float) -> None:
        """:meth:`fill` without its answer (which is always FRESH with ``value``), for a fetcher that has
        the value already."""
        if now.__class__ is float and self._now <= now <= BIG:     # the clock's check, inline
            self._now = now
        else:
            now = self._tick(now)
        fetching = self._fetching                  # _done, inline for the one fetch of a key with no refresh
        try:
            only = not self._refreshing and fetching.get(key) == 1
        except TypeError:
            raise _unhashable(key) from None
        if only:
            del fetching[key]
        else:
            self._done(key)
        entries = self._entries                    # _store, inline: the path of every miss
        if key in entries:
            entries.move_to_end(key)
        entries[key] = (value, now, "")
        if len(entries) > self.capacity:
            entries.popitem(last=False)
            self.evictions += 1

    def fail(self, key, reason: str, now: float) -> Lookup:
        """A fetch of ``key`` failed with ``reason`` at ``now``: STALE (reason "stale-if-error") when
        ``reason`` is in ``stale_on`` and the stored value is at most ``hard_ttl`` old, else ERROR
        with ``reason`` (cached for ``negative_ttl`` when that is > 0). The answer also goes to every
        caller that waited for it."""
        now = self._tick(now)
        reason = check_reason("reason", reason)
        self._done(key)
        entry = self._entries.get(key)
        if entry is not None and not entry[2]:
            if reason in self.stale_on and now - entry[1] <= self.hard_ttl:
                self.stale_if_error += 1
                return Lookup(STALE, entry[0], now - entry[1], reason="stale-if-error")
            if reason not in self.stale_on:
                del self._entries[key]             # the source answered: that value is no more
        if self.negative_ttl > 0:
            self._store(key, (None, now, reason))
        return Lookup(ERROR, reason=reason)

    def _done(self, key) -> None:
        refreshing, fetching = self._refreshing, self._fetching
        try:
            if refreshing and key in refreshing:
                refreshing.discard(key)
                return
            left = fetching.get(key, 0) - 1
        except TypeError:
            raise _unhashable(key) from None
        if left < 0:
            raise ValueError(f"key {key!r} has no fetch outstanding: report fill() or fail() once per MISS "
                             f"(or per STALE lookup with refresh=True)")
        if left:
            fetching[key] = left
        else:
            del fetching[key]

    def _store(self, key, entry) -> None:
        entries = self._entries
        if key in entries:
            entries.move_to_end(key)
        entries[key] = entry
        if len(entries) > self.capacity:
            entries.popitem(last=False)
            self.evictions += 1

    # --- other changes --------------------------------------------------------------------------
    def invalidate(self, key) -> bool:
        """Forget ``key`` (Cache-Aside: write the store, then delete the entry); True if it was there."""
        try:
            return self._entries.pop(key, None) is not None
        except TypeError:
            raise _unhashable(key) from None

    def clear(self) -> None:
        """Forget every entry (a restarted cache node comes back cold); counters and clock stay."""
        self._entries.clear()

    def __repr__(self) -> str:
        return (f"Cache(ttl={self.ttl:g}, hard_ttl={self.hard_ttl:g}, stale_while_revalidate="
                f"{self.stale_while_revalidate:g}, negative_ttl={self.negative_ttl:g}, "
                f"capacity={self.capacity}, coalesce={self.coalesce})")


def _unhashable(key) -> validate.WrongType:
    return validate.WrongType(f"key must be hashable (a number, a string, a tuple), got {validate.show(key)}")


__all__ = ["Cache", "Lookup", "STALE_ON", "FRESH", "STALE", "NEGATIVE", "WAIT", "MISS", "ERROR"]
