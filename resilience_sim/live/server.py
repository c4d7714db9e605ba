"""A loopback HTTP server that starts in milliseconds and stops leaving nothing behind.

:class:`LoopbackServer` runs a standard-library ``ThreadingHTTPServer`` on ``127.0.0.1`` and a free
port (or the one given) in a background thread. What holds:

* it binds 127.0.0.1 only; ``port=0`` asks the OS for a free port and :attr:`port` reports it;
* :attr:`accepted` counts the TCP connections accepted (a client that reuses its connection pool
  opens one per concurrent request, not one per request);
* at most ``max_connections`` connections are served at once; one more is answered ``503`` with a
  ``Connection: close`` and closed, so a flood of connections cannot exhaust threads;
* :meth:`stop` (also on leaving the ``with`` block) stops accepting, shuts every open connection
  down (a handler blocked on its socket wakes with an error), sets :attr:`stopping` (handlers that
  wait, a "hang" fault say, wait on it) and joins the serving thread and every handler thread,
  each for at most ``join_timeout`` seconds; afterwards no thread, socket or descriptor of it
  remains (``tests/test_live_server.py`` counts them);
* starting twice, or stopping a server never started, is an error that says so; stopping twice is
  harmless.

Handlers are ``BaseHTTPRequestHandler`` subclasses; :class:`Handler` is one with keep-alive
(HTTP/1.1), Nagle off, no logging to stderr, and ``self.server`` giving the LoopbackServer's
``stopping`` event and ``app`` (whatever the owner hands in: a service's state, say).
"""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..core import validate

HOST = "127.0.0.1"


class Handler(BaseHTTPRequestHandler):
    """Keep-alive (HTTP/1.1), Nagle off, quiet; read ``self.server.app`` for the owner's state."""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format, *args):   # noqa: A002 - the stdlib's name
        pass

    def send_json(self, status: int, body: bytes, headers: dict | None = None) -> None:
        """A complete response with a JSON ``body`` (bytes) and its length."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self) -> bytes:
        """The request body (by ``Content-Length``; empty without one)."""
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise ValueError(f"Content-Length must be a whole number, got {length!r}") from None
        return self.rfile.read(n) if n > 0 else b""


class _Server(ThreadingHTTPServer):
    daemon_threads = True          # a stuck handler never blocks interpreter exit; stop() joins them
    block_on_close = False         # we join handler threads ourselves, with a bound
    allow_reuse_address = True
    # the stdlib's 5 overflows under a burst of new connections: the kernel drops the SYNs and the
    # clients retry after 1 s (a p99 of a second that no server is slow enough to explain)
    request_queue_size = 1024

    def __init__(self, address, handler, owner):
        self.owner = owner
        super().__init__(address, handler)

    @property
    def app(self):
        return self.owner.app

    @property
    def stopping(self) -> threading.Event:
        return self.owner.stopping

    def process_request(self, request, client_address):
        owner = self.owner
        with owner._lock:
            owner.accepted += 1
            full = len(owner._connections) >= owner.max_connections or owner.stopping.is_set()
            if not full:
                owner._connections.add(request)
        if full:
            owner.refused += 1
            _refuse(request)
            return
        thread = threading.Thread(target=self._serve, args=(request, client_address), daemon=True,
                                  name=f"{owner.name}-handler")
        with owner._lock:
            owner._threads.add(thread)
        thread.start()

    def _serve(self, request, client_address):
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self.owner._lock:
                self.owner._connections.discard(request)
                self.owner._threads.discard(threading.current_thread())

    def handle_error(self, request, client_address):
        pass                       # a client that vanished mid-response is not our error


def _refuse(sock: socket.socket) -> None:
    try:
        sock.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 59\r\nConnection: close\r\n\r\n"
                     b'{"error":"too many connections to this server","status":503}')
    except OSError:
        pass
    finally:
        _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class LoopbackServer:
    """An HTTP server on 127.0.0.1 in a background thread (see the module docstring for what holds).

    ``with LoopbackServer(MyHandler) as server: httpx.get(server.url + "/path")``
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, port: int = 0, app=None,
                 name: str = "server", max_connections: int = 64, join_timeout: float = 2.0):
        if not (isinstance(handler, type) and issubclass(handler, BaseHTTPRequestHandler)):
            raise ValueError(f"handler must be a BaseHTTPRequestHandler subclass, got {handler!r}")
        self.handler = handler
        self.requested_port = validate.integer("port", port, low=0, high=65535)
        self.app, self.name = app, name
        self.max_connections = validate.integer("max_connections", max_connections, low=1)
        self.join_timeout = validate.positive("join_timeout", join_timeout)
        self.stopping = threading.Event()
        self.accepted = 0              # TCP connections accepted (a client reusing its pool opens few)
        self.refused = 0               # connections answered 503 because max_connections were open
        self._lock = threading.Lock()
        self._connections: set = set()
        self._threads: set = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running: call start() first")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> "LoopbackServer":
        if self._server is not None:
            raise RuntimeError(f"{self.name} is already running on port {self.port}")
        self.stopping.clear()
        self._server = _Server((HOST, self.requested_port), self.handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True, name=f"{self.name}-accept")
        self._thread.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.server_close()
        self._thread.join(self.join_timeout)
        with self._lock:
            connections, threads = list(self._connections), list(self._threads)
        for sock in connections:
            _close(sock)
        for thread in threads:
            thread.join(self.join_timeout)
        self._server = self._thread = None

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def __enter__(self) -> "LoopbackServer":
        return self.start() if self._server is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.url}" if self.running else "stopped"
        return f"LoopbackServer({self.name!r}, {where})"
