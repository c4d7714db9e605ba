"""A resilient httpx client driven by the very policy objects the simulator uses, in wall-clock time.

::

    with ResilientClient(server.url, deadline=1.0, timeout=0.3,
                         retry=RetryPolicy(3, FullJitter(0.05, 1.0)), budget=RetryBudget(0.1),
                         breaker=CircuitBreaker(consecutive_failures=5, open_for=5.0)) as client:
        reply = client.get("/items/42")
        reply.ok, reply.status, reply.json(), reply.reason, reply.attempts
    client.recording.results().request_availability()

The policies are composed in the documented order (deadline → retry and budget → throttle → breaker
→ rate limit → bulkhead → per-attempt timeout → the call → fallback) by one :class:`~.attempts.Decisions`;
:class:`ResilientClient` (threads) and :class:`AsyncResilientClient` (asyncio) only carry out its I/O.

**A request never raises for a failure the policies handle**: it returns a :class:`~.attempts.Reply`
(``outcome``, ``reason``, ``status``, ``headers``, ``content``, ``json()``, ``value``, ``attempts``,
``elapsed``, ``answered_by``, ``ok``, ``degraded``). Only misuse (a bad argument, a closed client)
raises, as do a cancelled task and an exception from your own fallback function.

HTTP in the course's reasons (:func:`~.attempts.reason_for_status`, :func:`~.attempts.reason_for_error`):
5xx "error" (503 "unavailable"), 429 "too many requests", 400 "bad request", 401/403 "unauthorized",
404 "not found", 409 "conflict", other 4xx "bad request"; ``ConnectError`` "down"; a timeout of any
httpx phase "timeout"; an attempt cut by the per-attempt timeout "timeout", by the deadline
"deadline"; a reset or broken body ("ReadError", "RemoteProtocolError") "error". A RetryPolicy's
default ``retry_on`` (the core's TRANSIENT) takes in "error", "unavailable", "too many requests",
"timeout" and "down", and no other 4xx; a ``Retry-After`` (seconds, fractions accepted, or an
HTTP-date) is the least wait before the retry.
GET, HEAD, OPTIONS, PUT and DELETE are idempotent; POST and PATCH are retried only with an
``idempotency_key``, sent on every attempt as the ``Idempotency-Key`` header.

**The overall deadline.** httpx's timeouts are per phase and per read, so a response that trickles a
byte at a time runs far past them. Here each attempt's phase timeouts are clamped to its limit (what
is left of the deadline, at most the per-attempt timeout), the response is streamed, and the time is
checked after the headers and after every chunk: the attempt gives up ("deadline" or "timeout") once
its limit has passed. The sync client's overrun is at most one inter-chunk gap (and never more than
the clamped read timeout); the async client bounds the whole exchange hard with ``asyncio.timeout``.

**Connections**: one ``httpx.Client`` (its connection pool) serves every request, made once or passed
in ``http=`` (then it is yours to close; its own timeouts are clamped, never lengthened). Policies are
claimed by the client (:func:`~resilience_sim.policies.claim`): one driven by a World or by another
client is refused (make new ones, or ``reset()`` them).

**Bulkhead**: a full bulkhead with ``max_wait=0`` refuses at once ("bulkhead full"); with ``max_wait
> 0`` a caller waits (a thread on an Event, a task on an asyncio Event), first come first served, at
most ``max_wait`` and never past the deadline.

**Fallback**: a function ``(request, reason) -> value`` (``request.method``, ``.path``, ``.route``,
``.key``; the async client awaits a coroutine), called for the failures a
:class:`~resilience_sim.policies.FallbackChain` falls back on by default (not "bad request",
"unauthorized", "not found", "conflict"), answering DEGRADED with reason "fallback"; or a
``FallbackChain`` whose first step names the primary and whose further steps are paths (or URLs),
each fetched once with GET within what is left of the deadline (outside the primary's breaker and
retries, which protect the primary), or :class:`~resilience_sim.policies.Static` answers: the first
that answers is DEGRADED with the step's label as reason.

**Records**: every request becomes one row of ``client.recording`` (a
:class:`~.recording.LiveRecording`, its own or the one passed in), so ``recording.results()`` gives a
:class:`~resilience_sim.metrics.results.Results`; :meth:`stats` gives the simulated client's
:class:`~resilience_sim.metrics.results.ClientStats` (hedges always 0).
"""
from __future__ import annotations

import asyncio
import inspect
import math
import threading
import time

import httpx

from ..core import validate
from .attempts import METHODS, Decisions, Reply, Request, Sent, reason_for_error, reason_for_status
from .recording import LiveRecording

#: Longest idempotency key sent (Stripe's limit, and the IETF draft's advice).
MAX_KEY = 255
#: Parsed URLs kept per client (one per path: a client calls few); all forgotten when it is full.
URL_CACHE = 1024
_NO_OPTIONS: dict = {}          # a request with nothing but method and URL (never written to)


def _phases(configured: httpx.Timeout, limit: float) -> dict | None:
    """``configured`` with every phase clamped to ``limit`` seconds (no phase ever lengthened), as
    the ``timeout`` extension httpx reads; None when no phase is longer than ``limit`` (nothing to clamp)."""
    phases = configured.as_dict()
    if all(t is not None and t <= limit for t in phases.values()):
        return None
    return {phase: limit if t is None else min(t, limit) for phase, t in phases.items()}


class _Client:
    """What both drivers share: arguments, the request's shape, stats, closing."""

    _http_type = httpx.Client

    def __init__(self, base_url: str, *, deadline=None, timeout=None, retry=None, budget=None, throttle=None,
                 breaker=None, rate_limit=None, bulkhead=None, fallback=None, name: str = "client", seed: int = 0,
                 http=None, clock=time.monotonic, target: str | None = None,
                 recording: LiveRecording | None = None):
        base_url = validate.text("base_url", base_url, empty=False)
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.name = validate.text("name", name, empty=False)
        self.clock = validate.function("clock", clock)
        self.target = self.base_url.split("://", 1)[1] if target is None else validate.text("target", target, empty=False)
        if recording is None:
            recording = LiveRecording(clock=clock)
        elif not isinstance(recording, LiveRecording):
            raise validate.WrongType(f"recording must be a LiveRecording or None, got {validate.show(recording)}")
        if http is not None and not isinstance(http, self._http_type):
            raise validate.WrongType(f"http must be an {self._http_type.__module__}.{self._http_type.__name__} "
                                     f"(one reused connection pool) or None, got {validate.show(http)}")
        self._core = Decisions(self, name=self.name, target=self.target, base_url=self.base_url, deadline=deadline,
                               timeout=timeout, retry=retry, budget=budget, throttle=throttle, breaker=breaker,
                               rate_limit=rate_limit, bulkhead=bulkhead, fallback=fallback, seed=seed, clock=clock,
                               recording=recording, make_event=self._event)
        recording.include(self, writes=True)
        self.recording = recording
        self._owns_http = http is None
        self._http = self._http_type() if http is None else http
        self._closed = False
        self._clamped = (None, None, None)     # (limit, the pool's httpx.Timeout, its clamped phases)
        self._urls: dict = {}                  # path -> httpx.URL, parsed once

    # the policies, for a look at their state
    deadline = property(lambda self: self._core.deadline)
    timeout = property(lambda self: self._core.timeout)
    retry = property(lambda self: self._core.retry)
    budget = property(lambda self: self._core.budget)
    throttle = property(lambda self: self._core.throttle)
    breaker = property(lambda self: self._core.breaker)
    rate_limit = property(lambda self: self._core.rate_limit)
    bulkhead = property(lambda self: self._core.bulkhead)
    fallback = property(lambda self: self._core.fallback)

    @property
    def http(self):
        """The one httpx client (connection pool) every request goes through."""
        return self._http

    def _request(self, method, path, params, json, content, headers, route, key, idempotency_key) -> Request:
        if self._closed:
            raise RuntimeError(f"client {self.name!r} is closed: make a new one (one per notebook)")
        if method not in METHODS:
            method = validate.choice("method", method.upper() if isinstance(method, str) else method, sorted(METHODS))
        if path.__class__ is not str or not path.startswith("/"):
            raise ValueError(f"path must be a string starting with '/', got {validate.show(path)}")
        if params is None and json is None and content is None and headers is None and idempotency_key is None:
            options = _NO_OPTIONS
        else:
            options = self._options(params, json, content, headers, idempotency_key)
        if route is None:
            route = path if "?" not in path else path.split("?", 1)[0]
        elif route.__class__ is not str or not route:
            raise ValueError(f"route must be a non-empty string or None (the path), got {validate.show(route)}")
        if key is not None:
            try:
                hash(key)
            except TypeError:
                raise validate.WrongType(f"key must be hashable (a number, a string, a tuple) or None, "
                                         f"got {validate.show(key)}") from None
        url = self._urls.get(path)
        if url is None:
            url = self._url(path)
        return Request(method, path, url, options, route, key, idempotency_key)

    @staticmethod
    def _options(params, json, content, headers, idempotency_key) -> dict:
        """httpx's keyword arguments for what a request carries besides method and URL."""
        if json is not None and content is not None:
            raise ValueError("json and content: give one body, not both")
        options = {}
        if params is not None:
            options["params"] = params
        if json is not None:
            options["json"] = json
        if content is not None:
            options["content"] = content
        if idempotency_key is not None:
            if idempotency_key.__class__ is not str or not 0 < len(idempotency_key) <= MAX_KEY:
                raise ValueError(f"idempotency_key must be a string of 1 to {MAX_KEY} characters or None, "
                                 f"got {validate.show(idempotency_key)}")
            headers = {**(headers or {}), "Idempotency-Key": idempotency_key}
        if headers is not None:
            options["headers"] = headers
        return options

    def _url(self, path: str) -> httpx.URL:
        """``base_url + path`` parsed, kept for the next request to the same path (one httpx cannot
        parse stays a string: sending it fails as it would have)."""
        try:
            url = httpx.URL(self.base_url + path)
        except httpx.InvalidURL:
            return self.base_url + path
        urls = self._urls
        if len(urls) >= URL_CACHE:
            urls.clear()
        urls[path] = url
        return url

    def _build(self, method, url, options, limit) -> httpx.Request:
        """The httpx request of an attempt limited to ``limit`` seconds: the pool's phase timeouts
        clamped to it (the last clamp kept: an attempt bounded by the per-attempt timeout asks for
        the same one every time; none when no phase is longer than ``limit``)."""
        http = self._http
        configured, last = http.timeout, self._clamped
        if last[0] == limit and last[1] is configured:
            phases = last[2]
        else:
            phases = None if math.isinf(limit) else _phases(configured, limit)
            self._clamped = (limit, configured, phases)
        if phases is None:
            return http.build_request(method, url, **options)
        return http.build_request(method, url, extensions={"timeout": phases}, **options)

    def stats(self, *, zero: float | None = None):
        """The simulated client's :class:`~resilience_sim.metrics.results.ClientStats`: requests,
        attempts (sent), backoff_time, rejected (local refusals), budget_denied, hedges (0), and the
        breaker's history and trips in seconds since ``zero`` (default: the recording's zero)."""
        return self._core.stats(self.recording.zero if zero is None else validate.number("zero", zero))

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r} -> {self.base_url}{', closed' if self._closed else ''})"


class ResilientClient(_Client):
    """The sync client: thread-safe, one httpx.Client; see the module docstring for what it returns."""

    @staticmethod
    def _event():
        return threading.Event()

    def request(self, method: str, path: str, *, params=None, json=None, content=None, headers=None,
                route: str | None = None, key=None, idempotency_key: str | None = None) -> Reply:
        """One logical request through every policy; ``route`` (default: the path) and ``key`` go
        into its row."""
        req = self._request(method, path, params, json, content, headers, route, key, idempotency_key)
        core = self._core
        att = core.begin(req)
        if att.ready:                            # the fast path: one attempt, sent at once
            try:
                sent = self._send(req.method, req.url, req.options, att.limit, att.bound)
            except BaseException as err:
                core.failed(att, req, err)
                raise
            reply = core.first(att, req, sent)
            if reply is not None:
                return reply
            flow = core.flow(req, att, sent)
        else:
            flow = core.flow(req, att)
        try:
            command = next(flow)
            while True:
                try:
                    result = self._do(command)
                except BaseException as err:     # the flow gives back what it holds, then re-raises
                    command = flow.throw(err)
                    continue
                command = flow.send(result)
        except StopIteration as done:
            return done.value

    def get(self, path: str, *, params=None, headers=None, route=None, key=None) -> Reply:
        return self.request("GET", path, params=params, headers=headers, route=route, key=key)

    def post(self, path: str, *, json=None, content=None, headers=None, idempotency_key=None, route=None,
             key=None) -> Reply:
        return self.request("POST", path, json=json, content=content, headers=headers,
                            idempotency_key=idempotency_key, route=route, key=key)

    def _do(self, command):
        kind = command[0]
        if kind == "send":
            return self._send(*command[1:])
        if kind == "sleep":
            time.sleep(command[1])
        elif kind == "wait":
            command[1].wait(command[2])
        else:
            return command[1](command[2], command[3])
        return None

    def _send(self, method, url, options, limit, bound) -> Sent:
        """One HTTP exchange, streamed, given up once ``limit`` seconds have passed (see the module
        docstring: the overrun is at most one inter-chunk gap)."""
        clock = self.clock
        ends = clock() + limit
        request = self._build(method, url, options, limit)
        try:
            response = self._http.send(request, stream=True)
        except httpx.TimeoutException:
            return Sent(bound if clock() >= ends else "timeout", own=True)
        except httpx.RequestError as err:
            return Sent(reason_for_error(err))
        try:
            status, headers = response.status_code, response.headers
            if clock() >= ends:
                return Sent(bound, status, headers, own=True)
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if clock() >= ends:
                    return Sent(bound, status, headers, own=True)
        except httpx.TimeoutException:
            return Sent(bound if clock() >= ends else "timeout", status, headers, own=True)
        except httpx.RequestError as err:
            return Sent(reason_for_error(err), status, headers)
        finally:
            response.close()
        return Sent(reason_for_status(status), status, headers, b"".join(chunks))

    def close(self) -> None:
        """Close the connection pool (if this client made it). Closing twice is harmless."""
        if not self._closed and self._owns_http:
            self._http.close()
        self._closed = True

    def __enter__(self) -> "ResilientClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncResilientClient(_Client):
    """The asyncio client: the same decisions, an ``httpx.AsyncClient``, each attempt bounded hard by
    ``asyncio.timeout``. Use it from one event loop."""

    _http_type = httpx.AsyncClient

    @staticmethod
    def _event():
        return asyncio.Event()

    async def request(self, method: str, path: str, *, params=None, json=None, content=None, headers=None,
                      route: str | None = None, key=None, idempotency_key: str | None = None) -> Reply:
        """As :meth:`ResilientClient.request`, awaited."""
        req = self._request(method, path, params, json, content, headers, route, key, idempotency_key)
        core = self._core
        att = core.begin(req)
        if att.ready:                            # the fast path: one attempt, sent at once
            try:
                sent = await self._send(req.method, req.url, req.options, att.limit, att.bound)
            except BaseException as err:         # cancelled: give back what the attempt holds
                core.failed(att, req, err)
                raise
            reply = core.first(att, req, sent)
            if reply is not None:
                return reply
            flow = core.flow(req, att, sent)
        else:
            flow = core.flow(req, att)
        try:
            command = next(flow)
            while True:
                try:
                    result = await self._do(command)
                except BaseException as err:     # cancelled: the flow gives back what it holds
                    command = flow.throw(err)
                    continue
                command = flow.send(result)
        except StopIteration as done:
            return done.value

    async def get(self, path: str, *, params=None, headers=None, route=None, key=None) -> Reply:
        return await self.request("GET", path, params=params, headers=headers, route=route, key=key)

    async def post(self, path: str, *, json=None, content=None, headers=None, idempotency_key=None, route=None,
                   key=None) -> Reply:
        return await self.request("POST", path, json=json, content=content, headers=headers,
                                  idempotency_key=idempotency_key, route=route, key=key)

    async def _do(self, command):
        kind = command[0]
        if kind == "send":
            return await self._send(*command[1:])
        if kind == "sleep":
            await asyncio.sleep(command[1])
        elif kind == "wait":
            try:
                await asyncio.wait_for(command[1].wait(), command[2])
            except TimeoutError:
                pass
        else:
            value = command[1](command[2], command[3])
            return (await value) if inspect.isawaitable(value) else value
        return None

    async def _send(self, method, url, options, limit, bound) -> Sent:
        """One HTTP exchange, streamed, cut at ``limit`` seconds by ``asyncio.timeout``."""
        http, status, headers = self._http, None, None
        ends = self.clock() + limit
        request = self._build(method, url, options, limit)
        try:
            async with asyncio.timeout(None if math.isinf(limit) else limit):
                response = await http.send(request, stream=True)
                try:
                    status, headers = response.status_code, response.headers
                    content = b"".join([chunk async for chunk in response.aiter_bytes()])
                finally:
                    await response.aclose()
        except TimeoutError:                      # asyncio.timeout: our own limit
            return Sent(bound, status, headers, own=True)
        except httpx.TimeoutException:           # a phase timeout: ours when it came at the limit
            return Sent(bound if self.clock() >= ends else "timeout", status, headers, own=True)
        except httpx.RequestError as err:
            return Sent(reason_for_error(err), status, headers)
        return Sent(reason_for_status(status), status, headers, content)

    async def aclose(self) -> None:
        """Close the connection pool (if this client made it). Closing twice is harmless."""
        if not self._closed and self._owns_http:
            await self._http.aclose()
        self._closed = True

    async def __aenter__(self) -> "AsyncResilientClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


__all__ = ["ResilientClient", "AsyncResilientClient", "Reply"]
