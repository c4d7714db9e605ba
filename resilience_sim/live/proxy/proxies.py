"""Proxies: a listener on 127.0.0.1, its accept thread, its connections and its toxics; and the collection.

A :class:`TcpProxy` is *enabled* exactly while it has a listener. What holds:

* **accepting**: one thread per enabled proxy accepts a client, then dials the upstream (bounded by
  :data:`DIAL_TIMEOUT`); if the dial fails the client is closed at once, so it sees a successful
  connect followed by EOF, as with Toxiproxy. Beyond ``max_connections`` open connections a new
  client is closed at once too (and counted in :attr:`TcpProxy.refused`);
* **toxics**: an upstream chain and a downstream chain, each in insertion order. Adding, updating or
  removing a toxic changes every live connection at once, under the proxy's lock, so a connection
  accepted meanwhile sees either the old chain or the new one, never half (Toxiproxy's issue #148
  does not happen here);
* **toxicity** is drawn, on each (re)start that the spec lists, from the proxy's own
  ``random.Random`` stream, derived from the server's seed and the proxy's name; each link's jitter
  and slicer cuts draw from a stream of its own, seeded from the proxy's when the connection opens.
  So the same seed and the same sequence of API calls and connections give the same draws;
* **stopping** (disable, delete, a changed address, the server's stop) closes the listener, joins
  the accept thread, closes every connection and joins its threads: new clients are refused (there
  is no listener), existing ones see their connection closed.

:class:`ProxyCollection` holds the proxies by name and implements the API's operations with
Toxiproxy's checks, in Toxiproxy's order, raising :class:`~.errors.ApiError` with its messages.
"""
from __future__ import annotations


import random
import socket
import threading
import time

from ...core.seeds import stream_seed
from . import errors
from .errors import ApiError
from .links import Connection, shutdown
from .toxics import STREAMS, Toxic

HOST = "127.0.0.1"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
DIAL_TIMEOUT = 2.0
JOIN_TIMEOUT = 2.0


def check_listen_host(listen: str) -> None:
    """400 unless ``listen`` is on 127.0.0.1 or localhost: this proxy is loopback-only (Toxiproxy binds
    wherever it is told; this is a deliberate difference)."""
    host = listen.rpartition(":")[0] if ":" in listen else listen
    if host not in LOOPBACK_HOSTS:
        raise ApiError(f"listen must be on 127.0.0.1 or localhost, as in 127.0.0.1:0 (this proxy is "
                       f"loopback-only), got {listen!r}", 400)


def listen_port(listen: str) -> int:
    """The port of ``listen``; a 500 in the socket layer's words when there is none (as Toxiproxy)."""
    host, colon, port = listen.rpartition(":")
    hint = "listen must be 127.0.0.1:PORT or localhost:PORT, PORT in [0, 65535]"
    if not colon:
        raise ApiError(f"listen tcp: address {listen}: missing port in address ({hint})", 500)
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ApiError(f"listen tcp: address {listen}: invalid port ({hint})", 500)
    return int(port)


def resolved(listen: str) -> str:
    """``listen`` as the address it names: ``localhost:5000`` is ``127.0.0.1:5000``."""
    return f"{HOST}:{listen_port(listen)}"


def _dial(upstream: str) -> socket.socket:
    """A connection to ``upstream`` (host:port); OSError or ValueError when there is none to make."""
    host, _, port = upstream.rpartition(":")
    number = int(port)
    if not 0 < number <= 65535:
        raise ValueError(f"upstream port must be in [1, 65535], got {number}")
    sock = socket.create_connection((host.strip("[]"), number), timeout=DIAL_TIMEOUT)
    sock.settimeout(None)
    return sock


def _discard(sock: socket.socket) -> None:
    shutdown(sock)
    sock.close()


class TcpProxy:
    """One proxy (see the module docstring). ``listen`` is the listener's real address while it runs;
    for a proxy never enabled it is the string given."""

    def __init__(self, name: str, listen: str, upstream: str, rng: random.Random, max_connections: int):
        self.name, self.listen, self.upstream = name, listen, upstream
        self.rng, self.max_connections = rng, max_connections
        self.toxics: dict[str, list[Toxic]] = {stream: [] for stream in STREAMS}
        self.connections: dict[Connection, None] = {}      # insertion-ordered: draws in a fixed order
        self.refused = 0
        self.lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accepter: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self._listener is not None

    def to_json(self) -> dict:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream,
                "enabled": self.enabled, "toxics": [t.to_json() for t in self.all_toxics()]}

    def all_toxics(self) -> list[Toxic]:
        """Upstream chain first, then downstream, each in insertion order (as Toxiproxy lists them)."""
        return self.toxics["upstream"] + self.toxics["downstream"]

    def find_toxic(self, name: str) -> Toxic | None:
        return next((t for t in self.all_toxics() if t.name == name), None)

    # --- listening -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Bind ``listen`` and accept; a 500 with the OS's words if the bind fails (left disabled)."""
        if self.enabled:
            return
        port = listen_port(self.listen)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((HOST, port))
            listener.listen(128)
        except OSError as err:
            listener.close()
            raise ApiError(f"listen tcp {HOST}:{port}: bind: {(err.strerror or str(err)).lower()}", 500) from None
        self.listen = f"{HOST}:{listener.getsockname()[1]}"
        with self.lock:
            self._listener = listener
            self._accepter = threading.Thread(target=self._accept, args=(listener,), daemon=True,
                                              name=f"proxy-{self.name}-accept")
        self._accepter.start()

    def stop(self) -> None:
        """Close the listener and every connection; join their threads (each for a bounded time)."""
        with self.lock:
            listener, accepter = self._listener, self._accepter
            self._listener = self._accepter = None
        if listener is not None:
            shutdown(listener)                  # wakes the accept thread
            accepter.join(JOIN_TIMEOUT)
            listener.close()
        with self.lock:
            connections = list(self.connections)
        for connection in connections:
            connection.stop()
        for connection in connections:
            connection.join(JOIN_TIMEOUT)

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except OSError:
                if self._listener is not listener:
                    return
                time.sleep(0.01)                # out of descriptors, say: try again shortly
                continue
            self._open(client, listener)

    def _open(self, client: socket.socket, listener: socket.socket) -> None:
        with self.lock:
            full = len(self.connections) >= self.max_connections
            self.refused += full
        if full:
            return _discard(client)
        try:
            upstream = _dial(self.upstream)
        except (OSError, ValueError):           # refused, unresolvable, no port: connect, then EOF
            return _discard(client)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.lock:
            if self._listener is not listener:  # stopped while dialling
                _discard(client)
                return _discard(upstream)
            seeds = (self.rng.getrandbits(64), self.rng.getrandbits(64))
            connection = Connection(self.name, client, upstream, seeds, self._forget)
            for stream in STREAMS:
                connection.links[stream].begin(self.toxics[stream], self.rng.random)
            self.connections[connection] = None
            connection.start()

    def _forget(self, connection: Connection) -> None:
        with self.lock:
            self.connections.pop(connection, None)

    @property
    def open_connections(self) -> int:
        with self.lock:
            return len(self.connections)

    # --- toxics on live connections -----------------------------------------------------------------
    def add_toxic(self, toxic: Toxic) -> None:
        with self.lock:
            self.toxics[toxic.direction].append(toxic)
            for connection in self.connections:
                connection.links[toxic.direction].attach(toxic, self.rng.random)

    def update_toxic(self, toxic: Toxic, attributes: dict, toxicity: float) -> None:
        with self.lock:
            toxic.attributes, toxic.toxicity = attributes, toxicity
            for connection in self.connections:
                connection.links[toxic.direction].restart(toxic, self.rng.random)

    def remove_toxic(self, toxic: Toxic) -> None:
        with self.lock:
            self.toxics[toxic.direction].remove(toxic)
            for connection in list(self.connections):
                connection.links[toxic.direction].detach(toxic, self.rng.random)

    def __repr__(self) -> str:
        return f"TcpProxy({self.name!r}, {self.listen} -> {self.upstream}, enabled={self.enabled})"


class ProxyCollection:
    """The proxies by name, and the API's operations on them (checks in Toxiproxy's order)."""

    def __init__(self, seed: int, max_connections: int):
        self.seed, self.max_connections = seed, max_connections
        self.lock = threading.RLock()
        self._proxies: dict[str, TcpProxy] = {}

    def names(self) -> list[str]:
        with self.lock:
            return sorted(self._proxies)

    def get(self, name: str) -> TcpProxy:
        with self.lock:
            proxy = self._proxies.get(name)
        if proxy is None:
            raise ApiError(errors.PROXY_NOT_FOUND, 404)
        return proxy

    def _new(self, name: str, listen: str, upstream: str) -> TcpProxy:
        rng = random.Random(stream_seed(self.seed, f"proxy/{name}"))
        return TcpProxy(name, listen, upstream, rng, self.max_connections)

    @staticmethod
    def check(name: str, upstream: str, listen: str | None = None) -> None:
        """The checks that need no state, in Toxiproxy's order: 400s for a missing name, a name with
        '/', a missing upstream and (if given) a ``listen`` that is not loopback."""
        if not name:
            raise ApiError(errors.MISSING_NAME, 400)
        if "/" in name:
            raise ApiError(f"name must not contain '/' (it is a path segment of /proxies/{{name}}), "
                           f"got {name!r}", 400)
        if not upstream:
            raise ApiError(errors.MISSING_UPSTREAM, 400)
        if listen is not None:
            check_listen_host(listen)

    def create(self, name: str, upstream: str, listen: str, enabled: bool) -> TcpProxy:
        """A new proxy, bound at once if ``enabled``: 400 on a bad field, 409 on a taken name, 500 if
        the bind fails (then nothing is stored)."""
        with self.lock:
            self.check(name, upstream)
            if name in self._proxies:
                raise ApiError(errors.PROXY_EXISTS, 409)
            check_listen_host(listen)
            listen_port(listen)
            proxy = self._new(name, listen, upstream)
            if enabled:
                proxy.start()
            self._proxies[name] = proxy
            return proxy

    def update(self, proxy: TcpProxy, listen: str | None, upstream: str | None, enabled: bool | None) -> None:
        """Omitted fields keep their values. A changed address or upstream stops the proxy (its
        connections close; its toxics stay); then it is started or stopped as ``enabled`` (by default
        its state before the call) asks. A failed bind leaves it disabled, the new address stored."""
        with self.lock:
            listen = proxy.listen if listen is None else listen
            upstream = proxy.upstream if upstream is None else upstream
            if not upstream:
                raise ApiError(errors.MISSING_UPSTREAM, 400)
            check_listen_host(listen)
            wanted = proxy.enabled if enabled is None else enabled
            if resolved(listen) != resolved(proxy.listen) or upstream != proxy.upstream:
                proxy.stop()
                proxy.listen, proxy.upstream = resolved(listen), upstream
            if wanted:
                proxy.start()
            else:
                proxy.stop()

    def delete(self, name: str) -> None:
        with self.lock:
            proxy = self.get(name)
            del self._proxies[name]
            proxy.stop()

    def populate(self, entries: list[dict]) -> list[TcpProxy]:
        """Toxiproxy's ``/populate``: every entry checked first (an error names the entry, from 1,
        and changes nothing); then each applied in order: an entry whose name exists with the same
        address and upstream keeps that proxy untouched, any other replaces it. A failure mid-way
        stops there and keeps what was applied: :class:`PopulateError` carries it."""
        with self.lock:
            for n, entry in enumerate(entries, 1):
                try:
                    self.check(entry["name"], entry["upstream"], entry["listen"])
                except ApiError as err:
                    raise PopulateError(err.at_proxy(n), None) from None
            applied: list[TcpProxy] = []
            for entry in entries:
                try:
                    applied.append(self._apply(entry))
                except ApiError as err:
                    raise PopulateError(err, applied) from None
            return applied

    def _apply(self, entry: dict) -> TcpProxy:
        name, listen, upstream = entry["name"], entry["listen"], entry["upstream"]
        existing = self._proxies.get(name)
        if existing is not None:
            if resolved(existing.listen) == resolved(listen) and existing.upstream == upstream:
                return existing
            existing.stop()                     # stopped; replaced below unless the new one fails to bind
        listen_port(listen)
        proxy = self._new(name, listen, upstream)
        if entry["enabled"]:
            proxy.start()
        self._proxies[name] = proxy
        return proxy

    def reset(self) -> None:
        """Every proxy enabled (a failed bind stops there, a 500) and stripped of its toxics."""
        with self.lock:
            for name in sorted(self._proxies):
                proxy = self._proxies[name]
                proxy.start()
                for toxic in proxy.all_toxics():
                    proxy.remove_toxic(toxic)

    def close(self) -> None:
        """Stop every proxy and forget them all (the server's stop)."""
        with self.lock:
            proxies, self._proxies = list(self._proxies.values()), {}
        for proxy in proxies:
            proxy.stop()


class PopulateError(Exception):
    """A ``/populate`` that failed: the error, and the proxies applied before it (None when the
    checks failed and nothing changed)."""

    def __init__(self, error: ApiError, applied: list[TcpProxy] | None):
        super().__init__(error.message)
        self.error, self.applied = error, applied
