"""The loopback server: binds 127.0.0.1 on a free port, serves keep-alive, refuses a flood beyond its
limit with a 503, and stops with every connection, thread and descriptor gone."""
import socket
import threading
import time

import httpx
import pytest

from resilience_sim.live.server import Handler, LoopbackServer
from live_support import no_leaks


class Echo(Handler):
    def do_GET(self):
        if self.path == "/hang":
            self.server.stopping.wait(10)
        self.send_json(200, b'{"ok":true}')


def test_it_binds_loopback_on_a_free_port_and_stops_leaving_nothing():
    with no_leaks():
        with LoopbackServer(Echo) as server:
            assert server.url.startswith("http://127.0.0.1:") and server.port > 0
            with httpx.Client() as client:
                assert [client.get(server.url + "/").status_code for _ in range(3)] == [200] * 3
            assert server.accepted == 1          # one kept-alive connection for three requests
        assert not server.running


def test_a_hanging_handler_is_woken_by_stop():
    with no_leaks():
        server = LoopbackServer(Echo).start()
        done = []
        def call():
            try:
                httpx.get(server.url + "/hang", timeout=5)
            except httpx.HTTPError as err:
                done.append(err)
            else:
                done.append("answered")
        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.1)
        started = time.monotonic()
        server.stop()
        t.join(5)
        assert time.monotonic() - started < 2 and done


def test_a_flood_beyond_the_limit_is_answered_503_and_closed():
    with no_leaks():
        with LoopbackServer(Echo, max_connections=2) as server:
            held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
            time.sleep(0.1)
            extra = socket.create_connection(("127.0.0.1", server.port))
            extra.settimeout(2)
            reply = extra.recv(1000)
            assert reply.startswith(b"HTTP/1.1 503") and server.refused == 1
            for s in [*held, extra]:
                s.close()


def test_misuse_is_refused_by_name():
    with pytest.raises(ValueError, match="max_connections"):
        LoopbackServer(Echo, max_connections=0)
    with pytest.raises(ValueError, match="handler"):
        LoopbackServer(object)
    server = LoopbackServer(Echo)
    with pytest.raises(RuntimeError, match="not running"):
        server.port
    with server:
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
    server.stop()
