"""Local HTTP services with switchable faults: a catalog, a recommender and a search, on 127.0.0.1.

``with start_services("catalog", "search", seed=1) as svc: httpx.get(svc["catalog"].url + "/items/7")``

A :class:`LiveService` is a set of routes on a :class:`~.server.LoopbackServer`, with a base
service time (``latency``: seconds, or a Distribution drawn from the service's own seeded stream)
and an :class:`~.faults.HttpFaults` (``service.faults``), switchable while requests are in flight.
The story of one request, each step a line of ``_ServiceHandler.serve``:

    read the request (400 if malformed, 413 if its body is over 1 MB) -> base latency -> the faults'
    added latency -> hang (no answer) or an error status, else the route (404 for an unknown path,
    405 for a known path with another method, 500 if the route raised) -> deliver the answer
    (trickled in chunks, cut by a reset, or whole)

What holds:

* every answer is JSON with a correct Content-Length; errors read ``{"error": ..., "status": ...}``;
* with no latency and no fault, nothing waits: a plain request costs well under a millisecond of
  server time (about 0.13 ms a round trip on loopback from a raw socket, 0.8 ms from httpx);
* the faults' plan for a request is drawn after its base latency, and fixed from then on;
* a client that vanishes mid-answer is counted in ``stats()["vanished"]``, never raised; a waiting
  step (latency, trickle, hang) ends at once when the service stops;
* :meth:`LiveService.stop` leaves no thread, socket or descriptor behind (the server's guarantee),
  and a service can be started again after it;
* ``stats()`` counts requests by status (the status line sent) and by route (its template, so
  ``/items/1`` and ``/items/2`` are one row), the faults this service applied, vanished clients and
  connections refused beyond ``max_connections``; ``reset_stats()`` zeroes them.

The three services' content is small and deterministic (derived from the ids, never random).
"""
from __future__ import annotations

import contextlib
import json
import math
import random
import re
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from typing import Callable
from urllib.parse import parse_qsl, unquote

from ..core import validate
from ..core.distributions import Distribution, Fixed, as_distribution
from ..policies.idempotency import CONFLICT, IN_FLIGHT, REPLAY, IdempotencyKeys
from ..core.seeds import stream_seed
from .faults import HttpFaults, retry_after_header
from .server import Handler, LoopbackServer

#: largest request body read; a longer one is refused with 413
MAX_BODY = 1 << 20
#: seconds an idle kept-alive connection is held before the server closes it
IDLE_TIMEOUT = 60.0
_LINGER_RESET = struct.pack("ii", 1, 0)      # SO_LINGER on, 0 s: close() sends a TCP reset


class HttpError(Exception):
    """Raised by a route to answer an error: ``HttpError(404, "no item 'x'")``."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass(frozen=True)
class Route:
    """``handler(request)`` answers ``method`` requests whose path matches ``template``
    (``"/items/{id}"``: each ``{name}`` is one path segment, found in ``request.params``). It returns
    ``(status, payload)`` or ``(status, payload, headers)``; payload is JSON-ready, or bytes."""
    method: str
    template: str
    handler: Callable

    def __post_init__(self):
        validate.choice("method", self.method, ("GET", "POST", "PUT", "PATCH", "DELETE"))
        validate.text("template", self.template)
        if not self.template.startswith("/"):
            raise ValueError(f"template must start with '/', e.g. '/items/{{id}}', got {self.template!r}")
        validate.function("handler", self.handler)
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        object.__setattr__(self, "_regex", re.compile(pattern + r"\Z"))


class Request:
    """What a route sees: ``method``, ``path``, ``params`` (from the template), ``query`` (a dict,
    parsed on first use), ``headers``, ``body`` (bytes) and :meth:`json`."""
    __slots__ = ("method", "path", "params", "headers", "body", "_query_string", "_query")

    def __init__(self, method, path, params, headers, body, query_string):
        self.method, self.path, self.params, self.headers, self.body = method, path, params, headers, body
        self._query_string, self._query = query_string, None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = dict(parse_qsl(self._query_string, keep_blank_values=True))
        return self._query

    def json(self):
        """The body parsed as JSON; ``HttpError(400)`` if it is not."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as err:
            raise HttpError(400, f"the body must be JSON: {err}") from None


def _encode(payload) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()


def _error(status: int, message: str) -> bytes:
    return _encode({"error": message, "status": status})


class _ServiceHandler(Handler):
    """Serves one connection of a :class:`LiveService` (``self.server.app``)."""
    timeout = IDLE_TIMEOUT

    def do_GET(self):
        self.serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def serve(self) -> None:
        """One request, top to bottom (the module docstring tells the story)."""
        service = self.server.app
        body = self._request_body()
        if body is None:                                      # refused, and already answered
            return
        path, _, query = self.path.partition("?")
        route, params, key = service._match(self.command, path)
        if not self._waited(service._service_time()):
            return
        plan = service.faults.plan(path)
        if not self._waited(plan.delay):
            return
        if plan.hang is not None:
            self.server.stopping.wait(None if plan.hang == math.inf else plan.hang)
            service._count(key, None, plan.kinds)
            return self._abandon()
        if plan.status is not None:
            status, payload, headers = _injected_error(plan)
        else:
            status, payload, headers = service._answer(route, params, Request(
                self.command, path, params, self.headers, body, query))
        service._count(key, status, plan.kinds)
        self._deliver(status, payload, headers, plan)

    def _waited(self, seconds: float) -> bool:
        """Waited ``seconds`` (at once if 0); False, the connection abandoned, if the server stopped."""
        if seconds and self.server.stopping.wait(seconds):
            self._abandon()
            return False
        return True

    def _request_body(self) -> bytes | None:
        """The request's body, or None after answering why the request cannot be served."""
        if self.request_version == "HTTP/0.9":
            self.send_error(400, "HTTP/0.9 requests are not supported: send HTTP/1.0 or 1.1")
            return None
        if "Transfer-Encoding" in self.headers:
            self.send_error(411, "send a Content-Length: chunked request bodies are not supported")
            return None
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.isdigit():
            self.send_error(400, f"Content-Length must be a whole number of bytes, got {length!r}")
            return None
        if int(length) > MAX_BODY:
            self.send_error(413, f"the body must be at most {MAX_BODY} bytes, Content-Length says {length}")
            return None
        body = self.rfile.read(int(length))
        if len(body) < int(length):                 # the client went away before sending it all
            self.server.app._gone()
            self._abandon()
            return None
        return body

    def _deliver(self, status: int, payload: bytes, headers: dict, plan) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if plan.trickle is None and plan.reset_after is None:
                self.wfile.write(payload)
                return
            cut = len(payload)
            if plan.reset_after is not None:
                cut = len(payload) // 2 if plan.reset_after < 0 else min(plan.reset_after, len(payload))
            chunk, interval = plan.trickle or (max(cut, 1), 0.0)
            stopping = self.server.stopping
            for start in range(0, cut, chunk):
                if interval and stopping.wait(interval):
                    return self._abandon()
                self.wfile.write(payload[start:min(start + chunk, cut)])
            if plan.reset_after is not None:
                self._reset_connection()
        except (ConnectionError, TimeoutError):          # the client vanished (or stopped reading)
            self.server.app._gone()
            self._abandon()

    def _reset_connection(self) -> None:
        """Close with SO_LINGER (1, 0): the kernel sends a TCP reset, not a FIN."""
        sock = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self.rfile.close()              # the reader holds a reference that would keep the socket open
        sock.close()
        self.close_connection = True

    def _abandon(self) -> None:
        self.close_connection = True

    def send_error(self, code, message=None, explain=None):
        """Every error the standard library answers itself (a malformed request line, a header too
        long, a method no route has) as JSON, with a status line, closing the connection."""
        if self.request_version in ("HTTP/0.9", ""):
            self.request_version = "HTTP/1.1"     # answer with a status line the client can read
        self.close_connection = True
        self.server.app._count("(malformed)", code, ())
        try:
            self.send_response(code)
            body = _error(code, message or _phrase(code))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except (ConnectionError, TimeoutError):
            pass


_PHRASES = {s.value: s.phrase for s in HTTPStatus}


def _phrase(status: int) -> str:
    return _PHRASES.get(status, f"status {status}")


def _injected_error(plan) -> tuple[int, bytes, dict]:
    headers = {} if plan.retry_after is None else {"Retry-After": retry_after_header(plan.retry_after)}
    return plan.status, _error(plan.status, f"fault injected: {_phrase(plan.status)}"), headers


class LiveService:
    """Routes on a loopback server, with a base ``latency`` and switchable ``faults`` (see the module
    docstring). ``LiveService("echo", Route("GET", "/echo/{word}", lambda r: (200, r.params)))``.

    ``seed`` seeds the latency stream (and the faults', when ``faults`` is not given), each derived
    from the seed and ``name``; ``faults`` may be an :class:`HttpFaults` of your own (shared, say)."""

    def __init__(self, name: str, *routes: Route, latency=0.0, seed: int = 0, faults: HttpFaults | None = None,
                 max_connections: int = 64, port: int = 0):
        self.name = validate.text("name", name, empty=False)
        if not routes:
            raise ValueError("routes must hold at least one Route (a service that answers nothing is a 404 server)")
        for i, route in enumerate(routes):
            if not isinstance(route, Route):
                raise validate.WrongType(f"routes[{i}] must be a Route(method, template, handler), "
                                         f"got {validate.show(route)}")
        self.routes = routes
        self.seed = validate.integer("seed", seed, low=0)
        if faults is None:
            faults = HttpFaults(seed=stream_seed(self.seed, f"{name}/faults"))
        elif not isinstance(faults, HttpFaults):
            raise validate.WrongType(f"faults must be an HttpFaults (or None for a new one), "
                                     f"got {validate.show(faults)}")
        self.faults = faults
        self._latency_rng = random.Random(stream_seed(self.seed, f"{name}/latency"))
        self._lock = threading.Lock()
        self.latency = latency
        self._server = LoopbackServer(_ServiceHandler, port=port, app=self, name=name,
                                      max_connections=max_connections)
        self.reset_stats()

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> "LiveService":
        """Listen on 127.0.0.1 (a free port unless one was given); restarts the faults' clock."""
        self.faults.restart_clock()
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving: waiting requests end at once; no thread, socket or descriptor remains."""
        self._server.stop()

    def __enter__(self) -> "LiveService":
        return self.start() if not self.running else self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server.running

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def max_connections(self) -> int:
        return self._server.max_connections

    @property
    def open_connections(self) -> int:
        """Connections being served now (kept-alive ones included)."""
        return self._server.open_connections

    @property
    def accepted(self) -> int:
        """TCP connections accepted since start (a client reusing its pool opens few)."""
        return self._server.accepted

    # -- base latency -------------------------------------------------------------------------------

    @property
    def latency(self) -> Distribution:
        """The base service time of every request (a Distribution; set seconds or a Distribution)."""
        return self._latency

    @latency.setter
    def latency(self, value) -> None:
        latency = as_distribution("latency", value, number_means="fixed")
        self._latency = latency
        self._fixed_latency = latency.value if isinstance(latency, Fixed) else None

    def _service_time(self) -> float:
        fixed = self._fixed_latency
        if fixed is not None:
            return fixed
        with self._lock:
            return self._latency.sample(self._latency_rng)

    # -- routing ------------------------------------------------------------------------------------

    def _match(self, method: str, path: str):
        """``(route, params, stats key)``; route None with key "(unknown)" or "(method)"."""
        allowed = None
        for route in self.routes:
            found = route._regex.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}, route.template
            allowed = (allowed or []) + [route.method]
        return None, allowed, "(unknown)" if allowed is None else "(method not allowed)"

    def _answer(self, route, params, request: Request) -> tuple[int, bytes, dict]:
        if route is None:
            if params is None:
                return 404, _error(404, f"no route for {request.path!r} on {self.name}"), {}
            return 405, _error(405, f"{request.method} is not allowed on {request.path!r}"), \
                {"Allow": ", ".join(params)}
        try:
            answer = route.handler(request)
        except HttpError as err:
            return err.status, _error(err.status, err.message), err.headers
        except Exception as err:          # a bug in a route: answered 500 and counted, never a dropped connection
            with self._lock:
                self._errors += 1
            return 500, _error(500, f"internal error in {self.name}: {type(err).__name__}: {err}"), {}
        status, payload, *rest = answer
        return status, _encode(payload), (rest[0] if rest else {})

    # -- stats --------------------------------------------------------------------------------------

    def _count(self, key: str, status: int | None, kinds) -> None:
        with self._lock:
            self._requests += 1
            self._by_path[key] += 1
            if status is None:
                self._unanswered += 1
            else:
                self._by_status[status] += 1
            for kind in kinds:
                self._faults[kind] += 1

    def _gone(self) -> None:
        with self._lock:
            self._vanished += 1

    def stats(self) -> dict:
        """Requests (``requests``; ``by_status``: the status line sent; ``unanswered``: hung, never
        answered; ``by_path``: route template), ``faults`` applied by kind, ``vanished`` clients,
        ``refused`` connections (beyond ``max_connections``), ``errors`` (routes that raised), since
        the last :meth:`reset_stats`."""
        with self._lock:
            return {"name": self.name, "requests": self._requests, "by_status": dict(self._by_status),
                    "unanswered": self._unanswered,
                    "by_path": dict(self._by_path), "faults": dict(self._faults), "vanished": self._vanished,
                    "refused": self._server.refused - self._refused_before, "errors": self._errors}

    def reset_stats(self) -> None:
        with self._lock:
            self._requests = self._unanswered = self._vanished = self._errors = 0
            self._by_status, self._by_path, self._faults = Counter(), Counter(), Counter()
            self._refused_before = self._server.refused

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        on = [rule["kind"] for rule in self.faults.active()]
        return f"{type(self).__name__}({self.name!r}, {where}, faults on: {on})"


# -- the three services ----------------------------------------------------------------------------------

def _number(text: str) -> int:
    """A stable number derived from ``text`` (the same on every run and platform)."""
    return zlib.crc32(text.encode())


def _distinct(h: int, n: int, size: int) -> list[int]:
    """``n`` different ids in 1..``size`` picked by ``h`` (steps of 7919, a prime, apart; n <= 5)."""
    return [1 + (h + k * 7919) % size for k in range(n)]


class Catalog(LiveService):
    """``GET /items/{id}`` (ids 1..``items``; another id is a 404) and ``POST /orders``.

    ``POST /orders`` takes ``{"order": "<the client's order id>", ...}``. Without an
    ``Idempotency-Key`` header every POST creates an order (so a retried POST whose answer was lost
    creates it twice: ``stats()["duplicate_orders"]`` counts the creations beyond the first for a
    client order id). With a key, the first answer is stored and replayed for the same key and body
    (header ``Idempotent-Replayed: true``); the same key with another body is refused with 422, and a
    key whose first request is still running with 409 (the IETF draft's codes). Keys are kept
    ``retention`` seconds (:class:`~resilience_sim.policies.idempotency.IdempotencyKeys`)."""

    def __init__(self, *, name: str = "catalog", items: int = 1000, retention: float = 86400.0, latency=0.0,
                 seed: int = 0, faults: HttpFaults | None = None, max_connections: int = 64, port: int = 0):
        self.items = validate.integer("items", items, low=1)
        self._keys = IdempotencyKeys(retention)
        self._orders_lock = threading.Lock()
        self._next_order = 1
        super().__init__(name, Route("GET", "/items/{id}", self._item), Route("POST", "/orders", self._order),
                         latency=latency, seed=seed, faults=faults, max_connections=max_connections, port=port)

    def _item(self, request: Request):
        raw = request.params["id"]
        if not (raw.isdigit() and 1 <= int(raw) <= self.items):
            raise HttpError(404, f"no item {raw!r}: items are 1..{self.items}")
        n = int(raw)
        h = _number(f"item/{n}")
        return 200, {"id": n, "name": f"item {n}", "price": round(1 + h % 10000 / 100, 2), "stock": h % 50}

    def _order(self, request: Request):
        data = request.json()
        if not isinstance(data, dict) or not isinstance(data.get("order"), str) or not data["order"]:
            raise HttpError(400, 'the body must be a JSON object with "order": "<your order id>"')
        key = request.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= 255:
            raise HttpError(400, f"Idempotency-Key must be 1 to 255 characters, got {len(key)}")
        with self._orders_lock:
            if key is None:
                return self._create(data)
            decision, stored = self._keys.begin(key, data, time.monotonic())
            if decision == REPLAY:
                self._replayed += 1
                return stored[0], stored[1], {"Idempotent-Replayed": "true"}
            if decision == CONFLICT:
                self._conflicts += 1
                raise HttpError(422, f"Idempotency-Key {key!r} was first used with another body")
            if decision == IN_FLIGHT:
                raise HttpError(409, f"the first request with Idempotency-Key {key!r} is still running: "
                                     f"retry later")
            answer = self._create(data)
            self._keys.finish(key, answer, time.monotonic())
            return answer

    def _create(self, data: dict):
        client_id = data["order"]
        order_id = f"o-{self._next_order:06d}"
        self._next_order += 1
        self._orders_created += 1
        if self._created[client_id]:
            self._duplicates += 1
        self._created[client_id] += 1
        return 201, {"id": order_id, "order": client_id, "status": "created"}

    def stats(self) -> dict:
        """:meth:`LiveService.stats` plus ``orders_created``, ``duplicate_orders``, ``replayed``
        (answers replayed for a key) and ``conflicts`` (a key reused with another body)."""
        out = super().stats()
        with self._orders_lock:
            out.update(orders_created=self._orders_created, duplicate_orders=self._duplicates,
                       replayed=self._replayed, conflicts=self._conflicts)
        return out

    def reset_stats(self) -> None:
        """Zero the counters, orders counted included (stored idempotency keys stay: they are data)."""
        super().reset_stats()
        with self._orders_lock:
            self._orders_created = self._duplicates = self._replayed = self._conflicts = 0
            self._created = Counter()


class Recommender(LiveService):
    """``GET /recommendations/{user}``: five items for that user (``"source": "personal"``);
    ``GET /popular?country=XX``: the five most popular in a country, the lower-quality answer a
    fallback gives (``"source": "popular"``)."""

    def __init__(self, *, name: str = "recommender", latency=0.0, seed: int = 0, faults: HttpFaults | None = None,
                 max_connections: int = 64, port: int = 0):
        super().__init__(name, Route("GET", "/recommendations/{user}", self._personal),
                         Route("GET", "/popular", self._popular),
                         latency=latency, seed=seed, faults=faults, max_connections=max_connections, port=port)

    @staticmethod
    def _personal(request: Request):
        user = request.params["user"]
        h = _number(f"user/{user}")
        return 200, {"user": user, "items": _distinct(h, 5, 1000), "source": "personal"}

    @staticmethod
    def _popular(request: Request):
        country = request.query.get("country", "")
        if not (len(country) == 2 and country.isascii() and country.isalpha()):
            raise HttpError(400, f"country must be two letters (?country=SE), got {country!r}")
        country = country.upper()
        h = _number(f"country/{country}")
        return 200, {"country": country, "items": _distinct(h, 5, 100), "source": "popular"}


class Search(LiveService):
    """``GET /search?q=...``: three results. ``kind="engine"`` is the search engine; ``kind="sql"``
    the slower fallback (a LIKE query on the database), whose default base latency is
    ``DEFAULT_LATENCY["sql"]`` (20 ms) against the engine's 0."""

    DEFAULT_LATENCY = {"engine": 0.0, "sql": 0.020}

    def __init__(self, kind: str = "engine", *, name: str | None = None, latency=None, seed: int = 0,
                 faults: HttpFaults | None = None, max_connections: int = 64, port: int = 0):
        self.kind = validate.choice("kind", kind, tuple(self.DEFAULT_LATENCY))
        super().__init__(name or ("search" if kind == "engine" else "search_sql"),
                         Route("GET", "/search", self._search),
                         latency=self.DEFAULT_LATENCY[kind] if latency is None else latency,
                         seed=seed, faults=faults, max_connections=max_connections, port=port)

    def _search(self, request: Request):
        q = request.query.get("q", "")
        if not q:
            raise HttpError(400, "q must be a non-empty search string (?q=shoes)")
        h = _number(f"search/{q}")
        results = [{"id": n, "title": f"{q} #{j + 1}"} for j, n in enumerate(_distinct(h, 3, 1000))]
        return 200, {"q": q, "kind": self.kind, "results": results}


#: the services :func:`start_services` knows by name
SERVICES: dict[str, Callable[..., LiveService]] = {
    "catalog": Catalog,
    "recommender": Recommender,
    "search": lambda **options: Search("engine", **options),
    "search_sql": lambda **options: Search("sql", **options),
}


@contextlib.contextmanager
def start_services(*names, seed: int = 0):
    """Start the named services (every one in :data:`SERVICES` if none is named; a LiveService of
    your own may stand among the names, as it is: ``seed`` seeds only those built here) on free
    ports; yields ``{name: service}``; stops them all on leaving, also when one of them failed to
    start (the error is raised after)."""
    wanted = names or tuple(SERVICES)
    for i, item in enumerate(wanted):
        if not isinstance(item, LiveService):
            validate.choice(f"names[{i}]", item, tuple(SERVICES))
    validate.integer("seed", seed, low=0)
    with contextlib.ExitStack() as stack:
        running: dict[str, LiveService] = {}
        for item in wanted:
            service = item if isinstance(item, LiveService) else SERVICES[item](seed=seed)
            if service.name in running:
                raise ValueError(f"names must name each service once, got {service.name!r} twice")
            service.start()
            stack.callback(service.stop)
            running[service.name] = service
        yield running


__all__ = ["LiveService", "Route", "Request", "HttpError", "Catalog", "Recommender", "Search", "SERVICES",
           "start_services", "MAX_BODY"]
