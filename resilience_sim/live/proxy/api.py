"""Toxiproxy's HTTP API on a :class:`~resilience_sim.live.server.LoopbackServer`, and the server that owns it.

Every endpoint of Toxiproxy 2.12 (spec §4) answers as Toxiproxy does: the same JSON shapes with the
same field order (compact, no trailing newline, ``application/json``), the same status codes, errors
as ``{"error":"<message>","status":<code>}`` plus a newline in ``text/plain; charset=utf-8`` with its
messages, ``/version`` byte for byte, a request id header (``X-Toxiproxy-Request-Id``) on routed
requests, 403 ``User agent not allowed`` for a ``User-Agent`` starting with ``Mozilla/``, 405 with an
empty body for a known path and the wrong method, ``404 page not found`` for an unknown path (these
two before the browser guard, as with gorilla/mux). Bodies are read as Go's decoder reads them: the
first JSON value counts, keys match case-insensitively, a null keeps the default, and a value of the
wrong kind is a 400 ``bad request body: json: cannot unmarshal ...``. ``/metrics`` is not offered
(404, as Toxiproxy without ``-proxy-metrics``).
"""
from __future__ import annotations

import itertools
import json
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from ...core import validate
from ..server import Handler, LoopbackServer
from . import errors
from .errors import ApiError, bad_body, cannot_unmarshal, json_kind
from .proxies import PopulateError, ProxyCollection
from .toxics import STREAMS, TYPES, Toxic, check_toxicity, decode_attributes

VERSION = "2.12.0"
MAX_BODY = 1 << 20                    # a larger request body is refused (Toxiproxy reads any size)
_NAME = object()                      # a path segment that names a proxy or a toxic


class Reply(NamedTuple):
    """What a route answers: the status, the body and its content type (None: no body)."""
    status: int
    body: bytes
    content_type: str | None


NO_CONTENT = Reply(204, b"", None)


def _json(status: int, value) -> Reply:
    return Reply(status, go_json(value), "application/json")

ROUTES = (
    (("proxies",), {"GET": "list_proxies", "POST": "create_proxy"}),
    (("populate",), {"POST": "populate"}),
    (("proxies", _NAME), {"GET": "get_proxy", "POST": "update_proxy", "PATCH": "update_proxy",
                          "DELETE": "delete_proxy"}),
    (("proxies", _NAME, "toxics"), {"GET": "list_toxics", "POST": "create_toxic"}),
    (("proxies", _NAME, "toxics", _NAME), {"GET": "get_toxic", "POST": "update_toxic",
                                           "PATCH": "update_toxic", "DELETE": "delete_toxic"}),
    (("reset",), {"POST": "reset"}),
    (("version",), {"GET": "version"}),
)


def route(path: str):
    """``(methods, names)`` for a request path, or ``(None, None)`` when no route matches."""
    segments = unquote(urlsplit(path).path).split("/")
    if segments[0] != "":
        return None, None
    segments = segments[1:]
    for pattern, methods in ROUTES:
        if len(pattern) == len(segments) and all(
                (p is _NAME and s) or p == s for p, s in zip(pattern, segments)):
            return methods, [s for p, s in zip(pattern, segments) if p is _NAME]
    return None, None


def go_json(value) -> bytes:
    """Compact JSON as Go's encoder writes it: UTF-8, with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text.encode("utf-8", "replace")


def _refuse_constant(name: str):
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def decode(body: bytes):
    """The first JSON value of ``body``, or a 400 ``bad request body: ...`` (``EOF`` when empty)."""
    try:
        text = body.decode("utf-8").lstrip(" \t\r\n")
    except UnicodeDecodeError as err:
        raise bad_body(f"invalid UTF-8 at byte {err.start}") from None
    if not text:
        raise bad_body("EOF")
    try:
        return _DECODER.raw_decode(text)[0]
    except ValueError as err:
        raise bad_body(str(err)) from None
    except RecursionError:
        raise bad_body("exceeded max depth") from None


class Fields:
    """A JSON object read the way Go decodes it into a struct (see the module docstring)."""

    def __init__(self, value, struct: str, go_type: str):
        value = {} if value is None else value          # null into a struct changes nothing
        if not isinstance(value, dict):
            raise bad_body(f"json: cannot unmarshal {json_kind(value)} into Go value of type {go_type}")
        self.struct = struct
        self.values = {key.lower(): item for key, item in reversed(value.items())}
        self.values.update({key: item for key, item in value.items() if key.islower()})

    def raw(self, key: str):
        return self.values.get(key)

    def _typed(self, key: str, default, kinds, go_type: str):
        value = self.values.get(key)
        if value is None:
            return default
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            raise cannot_unmarshal(value, self.struct, key, go_type)
        return value

    def string(self, key: str, default: str | None = ""):
        return self._typed(key, default, (str,), "string")

    def boolean(self, key: str, default: bool | None):
        return self._typed(key, default, (bool,), "bool")


def _proxy_fields(value, defaults: dict) -> dict:
    fields = Fields(value, "Proxy", "toxiproxy.Proxy")
    return {"name": fields.string("name", defaults["name"]),
            "listen": fields.string("listen", defaults["listen"]),
            "upstream": fields.string("upstream", defaults["upstream"]),
            "enabled": fields.boolean("enabled", defaults["enabled"])}


class ApiHandler(Handler):
    """Toxiproxy's routes (see the module docstring); ``self.server.app`` is the :class:`ToxiproxyServer`."""
    timeout = 15                      # Toxiproxy's read timeout: a stalled client is dropped

    def __getattr__(self, name: str):
        if name.startswith("do_"):    # every method is routed, so a wrong one gets 405, not 501
            return self._dispatch
        raise AttributeError(name)

    # --- the request -------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        try:
            body = self._body()
        except ApiError as err:
            self.close_connection = True
            return self._error(err)
        methods, names = route(self.path)
        if methods is None:
            return self._send(404, b"404 page not found\n", "text/plain; charset=utf-8", routed=False,
                              extra=(("X-Content-Type-Options", "nosniff"),))
        action = methods.get(self.command)
        if action is None:
            return self._send(405, b"", None, routed=False)
        if self.headers.get("User-Agent", "").startswith("Mozilla/"):
            return self._send(403, b"User agent not allowed\n", "text/plain; charset=utf-8")
        try:
            reply = getattr(self, action)(self.server.app.proxies, *names, body)
        except PopulateError as err:
            applied = [p.to_json() for p in err.applied] if err.applied else None
            payload = {"error": err.error.message, "status": err.error.status, "proxies": applied}
            reply = Reply(err.error.status, go_json(payload) + b"\n", "application/json")
        except ApiError as err:
            return self._error(err)
        except Exception as err:      # a bug answers 500 with its text rather than a dropped connection
            return self._error(ApiError(f"internal error: {err!r}", 500))
        self._send(*reply)

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise bad_body(f"Content-Length must be a whole number, got {self.headers['Content-Length']!r}") from None
        if length > MAX_BODY or length < 0:
            raise bad_body(f"http: request body too large (at most {MAX_BODY} bytes), got {length}")
        return self.rfile.read(length) if length else b""

    def _chunked(self) -> bytes:
        body = b""
        while True:
            line = self.rfile.readline(100).split(b";")[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise bad_body(f"malformed chunked encoding ({line[:20]!r} is no chunk size)") from None
            if len(body) + size > MAX_BODY:
                raise bad_body(f"http: request body too large (at most {MAX_BODY} bytes)")
            if size == 0:
                while self.rfile.readline(1000).strip():
                    pass                                  # trailers
                return body
            body += self.rfile.read(size)
            self.rfile.readline(10)

    # --- the response ------------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str | None, *, routed: bool = True,
              extra: tuple = ()) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in extra:
            self.send_header(name, value)
        if routed:
            self.send_header("X-Toxiproxy-Request-Id", self.server.app.next_request_id())
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, err: ApiError) -> None:
        body = go_json({"error": err.message, "status": err.status}) + b"\n"
        self._send(err.status, body, "text/plain; charset=utf-8", extra=(("X-Content-Type-Options", "nosniff"),))

    # --- the routes --------------------------------------------------------------------------------------
    def list_proxies(self, proxies: ProxyCollection, body: bytes) -> Reply:
        with proxies.lock:
            return _json(200, {name: proxies.get(name).to_json() for name in proxies.names()})

    def create_proxy(self, proxies: ProxyCollection, body: bytes) -> Reply:
        f = _proxy_fields(decode(body), {"name": "", "listen": "", "upstream": "", "enabled": True})
        proxy = proxies.create(f["name"], f["upstream"], f["listen"], f["enabled"])
        return _json(201, proxy.to_json())

    def populate(self, proxies: ProxyCollection, body: bytes) -> Reply:
        try:
            value = decode(body)
            value = [] if value is None else value
            if not isinstance(value, list):
                raise bad_body(f"json: cannot unmarshal {json_kind(value)} into Go value of type []toxiproxy.Proxy")
            entries = [_proxy_fields(item, {"name": "", "listen": "", "upstream": "", "enabled": True})
                       for item in value]
        except ApiError as err:
            raise PopulateError(err, None) from None
        applied = proxies.populate(entries)
        return _json(201, {"proxies": [p.to_json() for p in applied] or None})

    def get_proxy(self, proxies: ProxyCollection, name: str, body: bytes) -> Reply:
        return _json(200, proxies.get(name).to_json())

    def update_proxy(self, proxies: ProxyCollection, name: str, body: bytes) -> Reply:
        with proxies.lock:
            proxy = proxies.get(name)
            f = _proxy_fields(decode(body), {"name": None, "listen": None, "upstream": None, "enabled": None})
            proxies.update(proxy, f["listen"], f["upstream"], f["enabled"])
            return _json(200, proxy.to_json())

    def delete_proxy(self, proxies: ProxyCollection, name: str, body: bytes) -> Reply:
        proxies.delete(name)
        return NO_CONTENT

    def list_toxics(self, proxies: ProxyCollection, name: str, body: bytes) -> Reply:
        return _json(200, [t.to_json() for t in proxies.get(name).all_toxics()])

    def create_toxic(self, proxies: ProxyCollection, name: str, body: bytes) -> Reply:
        with proxies.lock:
            proxy = proxies.get(name)
            f = Fields(decode(body), "ToxicWrapper", "toxics.ToxicWrapper")
            toxic_name, type_name = f.string("name"), f.string("type")
            stream = f.string("stream") or "downstream"
            toxicity = f.raw("toxicity")
            if toxicity is not None and (isinstance(toxicity, bool) or not isinstance(toxicity, (int, float))):
                raise cannot_unmarshal(toxicity, "ToxicWrapper", "toxicity", "float32")
            if stream.lower() not in STREAMS:
                raise ApiError(errors.INVALID_STREAM, 400)
            toxic_name = toxic_name or f"{type_name}_{stream}"
            kind = TYPES.get(type_name)
            if kind is None:
                raise ApiError(errors.INVALID_TOXIC_TYPE, 400)
            if proxy.find_toxic(toxic_name) is not None:
                raise ApiError(errors.TOXIC_EXISTS, 409)
            attributes = decode_attributes(kind, f.raw("attributes"), dict.fromkeys(kind.attributes, 0))
            if "/" in toxic_name:
                raise ApiError(f"name must not contain '/' (it is a path segment of "
                               f"/proxies/{{proxy}}/toxics/{{name}}), got {toxic_name!r}", 400)
            toxicity = check_toxicity(1.0 if toxicity is None else toxicity)
            kind.check(attributes)
            toxic = Toxic(toxic_name, kind, stream, toxicity, attributes)
            proxy.add_toxic(toxic)
            return _json(200, toxic.to_json())

    def _toxic(self, proxies: ProxyCollection, name: str, toxic_name: str):
        proxy = proxies.get(name)
        toxic = proxy.find_toxic(toxic_name)
        if toxic is None:
            raise ApiError(errors.TOXIC_NOT_FOUND, 404)
        return proxy, toxic

    def get_toxic(self, proxies: ProxyCollection, name: str, toxic_name: str, body: bytes) -> Reply:
        return _json(200, self._toxic(proxies, name, toxic_name)[1].to_json())

    def update_toxic(self, proxies: ProxyCollection, name: str, toxic_name: str, body: bytes) -> Reply:
        with proxies.lock:
            proxy, toxic = self._toxic(proxies, name, toxic_name)
            f = Fields(decode(body), "ToxicWrapper", "toxics.ToxicWrapper")
            attributes = decode_attributes(toxic.kind, f.raw("attributes"), toxic.attributes)
            toxicity = f.raw("toxicity")
            toxicity = toxic.toxicity if toxicity is None else check_toxicity(toxicity)
            toxic.kind.check(attributes)
            proxy.update_toxic(toxic, attributes, toxicity)
            return _json(200, toxic.to_json())

    def delete_toxic(self, proxies: ProxyCollection, name: str, toxic_name: str, body: bytes) -> Reply:
        with proxies.lock:
            proxy, toxic = self._toxic(proxies, name, toxic_name)
            proxy.remove_toxic(toxic)
        return NO_CONTENT

    def reset(self, proxies: ProxyCollection, body: bytes) -> Reply:
        proxies.reset()
        return NO_CONTENT

    def version(self, proxies: ProxyCollection, body: bytes) -> Reply:
        text = f'{{"version": "{self.server.app.version}"}}\n'.encode()
        return Reply(200, text, "application/json;charset=utf-8")


class ToxiproxyServer:
    """A Toxiproxy-compatible server: its HTTP API on 127.0.0.1 and the proxies it manages.

    ``with ToxiproxyServer() as toxiproxy: ToxiproxyClient(toxiproxy.api_url)``. What holds:

    * the API binds 127.0.0.1 only (``port=0``: a free port; :attr:`api_url` says which); proxies
      listen on 127.0.0.1 only: any other ``listen`` host is refused with a 400;
    * ``seed`` seeds every random draw (toxicity, jitter, slicer cuts): each proxy draws from its own
      stream, derived from the seed and its name, so a run is reproducible (Toxiproxy's ``-seed`` is
      not; an extension its spec allows, §7);
    * each proxy keeps at most ``max_connections`` connections open; one more is closed at once;
    * :meth:`stop` (or leaving the ``with`` block) stops the API, then every proxy: listeners and
      connections closed, every thread joined; nothing of it remains.
    """

    def __init__(self, port: int = 0, seed: int = 0, *, max_connections: int = 256, version: str = VERSION):
        self.seed = validate.integer("seed", seed, low=-(2 ** 63), high=2 ** 64)
        self.version = validate.text("version", version, empty=False)
        self.max_connections = validate.integer("max_connections", max_connections, low=1)
        self._http = LoopbackServer(ApiHandler, port=port, app=self, name="toxiproxy-api")
        self.proxies = ProxyCollection(self.seed, self.max_connections)
        self._request_ids = itertools.count(1)

    def next_request_id(self) -> str:
        return f"{next(self._request_ids):020d}"

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def api_url(self) -> str:
        return self._http.url

    @property
    def running(self) -> bool:
        return self._http.running

    def start(self) -> "ToxiproxyServer":
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()
        self.proxies.close()

    def __enter__(self) -> "ToxiproxyServer":
        return self.start() if not self.running else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ToxiproxyServer({self.api_url if self.running else 'stopped'}, seed={self.seed})"
