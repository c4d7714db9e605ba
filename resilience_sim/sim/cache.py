"""A cache in front of a source, in simulated time: the :class:`~resilience_sim.policies.Cache`
policy decides, this module fetches, waits and answers.

In a handler::

    catalog_cache = CachedRead(world, Cache(ttl=60, hard_ttl=600))

    def catalog(svc, req):
        return (yield from catalog_cache.read(req, lambda sub: svc.ask("db", sub)))

``fetch(req)`` is a simpy generator that asks the source for the request. Given a
``source`` (a service or a client), the cache is a target itself: a workload, a client or a service's
dependencies can call it (``layer.call(req)`` reads through to ``source.call``). A value
from the cache is answered by the cache (``answered_by``) with its age (``req.age``); a stale one is
degraded with reason "stale". Coalesced callers wait on one event per key and all get the leader's
outcome, failures included. A stale-while-revalidate refresh runs as a process of its own, which
nobody waits for.

A miss costs one generator of the cache's own around the source's call (``call`` hands the request
to ``source.call`` directly, with no function in between) and the policy's ``lookup`` and ``store``;
with the course's :class:`~resilience_sim.policies.Cache`, coalescing costs nothing more until a
second caller waits for the key.
"""
from __future__ import annotations

import inspect

from ..core import validate
from ..metrics import CacheStats
from ..policies import claim
from ..policies.cache import ERROR, FRESH, MISS, NEGATIVE, STALE, WAIT, Cache, Lookup
from .service import Request, ServiceError
from .world import check_world

#: The degradation reason of an answer served past its TTL.
STALE_REASON = "stale"


#: What a cache of one's own (a lab's) needs to plug in: it answers with :class:`~resilience_sim.policies.Lookup`.
CACHE_METHODS = ("lookup", "fill", "fail")


class CachedRead:
    """Reads through ``cache`` (a :class:`~resilience_sim.policies.Cache`, or any object with
    ``lookup``, ``fill`` and ``fail`` answering Lookups, and a ``coalesce`` flag) to a source;
    counted in the results as ``results.cache(name)``."""

    def __init__(self, world, cache: Cache, *, name: str = "cache", source=None):
        self.world = check_world(world)
        if not isinstance(cache, Cache) and not all(callable(getattr(cache, m, None)) for m in CACHE_METHODS):
            raise validate.WrongType(f"cache must be a Cache (Cache(ttl=60)) or an object with methods "
                                     f"{', '.join(CACHE_METHODS)}; got {validate.show(cache)}")
        self.name = validate.text("name", name, empty=False)
        claim(world, cache=cache)
        if source is not None:
            if not callable(getattr(source, "call", None)):
                raise validate.WrongType(f"source must be a service or a client (or None), got {validate.show(source)}")
            world.owns("source", source)
        self.env, self.cache, self.source = world.env, cache, source
        # a source whose call is a generator function (a Service's, a Client's) needs no check per call
        self._source_gives_generators = inspect.isgeneratorfunction(getattr(getattr(source, "call", None),
                                                                            "__func__", None))
        self._waiting: dict = {}      # key -> the event its coalesced callers wait on (None: no waiter yet)
        # The course's Cache keeps its promises (WAIT only while a MISS of that key is fetched, one fetch
        # per key when coalescing, a fill answered FRESH with the value given): for it, the checks of
        # those promises and the building of that answer are skipped. Any other cache is held to them.
        self._own = type(cache) is Cache
        world.add_cache(self)

    def read(self, req: Request, fetch):
        """The value for ``req.key`` (a simpy generator: ``value = yield from layer.read(req, fetch)``);
        raises :class:`ServiceError` when neither the cache nor the source can answer."""
        return self.call(req, None, fetch)

    def call(self, req: Request, caller=None, _fetch=None):
        """Read ``req.key`` through to ``source`` (a simpy generator), as a target of workloads and clients.
        (:meth:`read` passes its ``fetch`` as ``_fetch``, which then asks instead of the source.)"""
        env, cache, key = self.env, self.cache, req.key
        if _fetch is None and self.source is None:
            raise ValueError(f"cache {self.name!r} has no source to call: give CachedRead(..., source=service), "
                             f"or use read(req, fetch) in a handler")
        look = cache.lookup(key, env._now)
        kind = look.kind
        if kind != MISS:
            if kind == FRESH:
                return self._serve(req, look)
            if kind == STALE:
                if look.refresh:
                    env.process(self._refresh(req, _fetch, caller))
                return self._serve(req, look)
            if kind == NEGATIVE:
                raise ServiceError(self.name, look.reason)
            if kind == WAIT:
                event = self._waiting.get(key)
                if event is None:                   # the first waiter makes the event (none: no event at all)
                    if not self._own and key not in self._waiting:
                        raise ValueError(f"the cache said WAIT for key {key!r}, but no fetch of it is outstanding "
                                         f"(WAIT only while another caller's MISS is being fetched)")
                    event = self._waiting[key] = env.event()
                look, source = yield event
                return self._answer(req, look, source)
        own, waiting = self._own, self._waiting         # a MISS: this caller fetches
        coalesced = cache.coalesce if own else getattr(cache, "coalesce", False)
        if coalesced and not own:
            if key in waiting:
                raise ValueError(f"the cache answered MISS for key {key!r} while a fetch of it is outstanding; "
                                 f"a cache with coalesce=True answers WAIT then (one fetch per key)")
            waiting[key] = None
        source = self.name
        try:
            # the request itself: the source answers it (answered_by)
            work = self.source.call(req, caller) if _fetch is None else _fetch(req)
            if (_fetch is not None or not self._source_gives_generators) and not hasattr(work, "send"):
                raise _not_a_generator(work)
            value = yield from work
        except ServiceError as err:
            look, source = cache.fail(key, err.reason, env.now), err.service
        except BaseException:             # cancelled by the caller: the waiters must not hang
            look = cache.fail(key, "cancelled", env.now)
            if coalesced:
                self._wake(key, look, self.name)
            raise
        else:
            if own:                                  # stored; the answer is FRESH with the value, for any waiter
                cache.store(key, value, env._now)
                event = waiting.pop(key, None) if waiting else None
                if event is not None:
                    event.succeed((Lookup(FRESH, value, 0.0), source))
                return value
            look = cache.fill(key, value, env.now)
        if coalesced:
            self._wake(key, look, source)
        if look.kind == FRESH:
            return value
        return self._answer(req, look, source)

    def _wake(self, key, look, source) -> None:
        event = self._waiting.pop(key, None)
        if event is not None:
            event.succeed((look, source))

    def _answer(self, req: Request, look, source: str):
        if look.kind == ERROR:
            raise ServiceError(source, look.reason)
        return self._serve(req, look)

    def _serve(self, req: Request, look):
        req.age = look.age
        req.answered_by = self.name
        if look.kind == STALE:
            req.degraded = STALE_REASON
        return look.value

    def _refresh(self, req: Request, fetch, caller):
        """A stale-while-revalidate refresh: fetch for a copy of ``req`` that nobody waits for."""
        env, cache = self.env, self.cache
        sub = Request._unchecked(env.now, req.route, req.key)
        try:
            value = yield from _run(fetch or (lambda r: self.source.call(r, caller)), sub)
        except ServiceError as err:
            cache.fail(req.key, err.reason, env.now)
        else:
            cache.fill(req.key, value, env.now)

    def clear_at(self, *times: float) -> None:
        """Empty the cache at each of ``times`` (a cache node restarting cold)."""
        env = self.env
        if not callable(getattr(self.cache, "clear", None)):
            raise validate.WrongType(f"clear_at needs a cache with a clear() method; {validate.show(self.cache)} has none")
        for t in times:
            t = validate.number("times", t, low=env.now)

            def clear(delay=t - env.now):
                yield env.timeout(delay)
                self.cache.clear()
            env.process(clear())

    def stats(self) -> CacheStats:
        """The cache's counters (those a cache of one's own lacks count 0)."""
        return CacheStats(self.name, *(getattr(self.cache, f, 0) for f in
                                       ("hits", "stale", "negative", "coalesced", "misses", "fetches",
                                        "evictions", "stale_if_error")))

    def __repr__(self) -> str:
        return f"CachedRead({self.name!r}, {self.cache!r})"


def _not_a_generator(work) -> validate.WrongType:
    return validate.WrongType(f"fetch must be a function of a request returning a simpy generator, such as "
                              f"lambda sub: svc.ask('db', sub); it returned {validate.show(work)}")


def _run(fetch, sub):
    """``fetch(sub)`` as a generator, or a clear error saying what fetch must be."""
    work = fetch(sub)
    if not hasattr(work, "send"):
        raise _not_a_generator(work)
    return (yield from work)


__all__ = ["CachedRead", "STALE_REASON", "CACHE_METHODS"]
