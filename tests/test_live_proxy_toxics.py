"""The proxy on the wire: each toxic does what Toxiproxy's does (spec §6 and checklist item 12),
toxics change live connections, toxicity is a reproducible per-connection draw, and connections end
cleanly whatever the client does. Timing bounds are loose above (a loaded machine is slow), strict
below (a proxy can never deliver early)."""
import os
import socket
import threading
import time

import pytest

from live_support import no_leaks
from resilience_sim.live.proxy import ToxiproxyClient, ToxiproxyServer


class TcpServer:
    """A TCP server on 127.0.0.1: ``serve(sock, server)`` runs for each connection in a thread; the
    ``arrivals`` list records (time, bytes) of what ``echo`` read. Stops leaving nothing behind."""

    def __init__(self, serve):
        self.serve, self.arrivals = serve, []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.sockets, self.threads = [], []
        self.accepter = threading.Thread(target=self._accept, name="test-upstream-accept")

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(sock)
            thread = threading.Thread(target=self._run, args=(sock,), name="test-upstream-conn")
            self.threads.append(thread)
            thread.start()

    def _run(self, sock):
        try:
            self.serve(sock, self)
        except OSError:
            pass

    def __enter__(self):
        self.accepter.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.listener.shutdown(socket.SHUT_RDWR)
        self.accepter.join(5)
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self.threads:
            thread.join(5)
        for sock in self.sockets:
            sock.close()


def echo(sock, server):
    while data := sock.recv(65536):
        server.arrivals.append((time.monotonic(), data))
        sock.sendall(data)


def silent(sock, server):
    while sock.recv(65536):
        pass


def burst(pieces, gap):
    """On the first bytes received, send ``pieces`` with ``gap`` seconds between them, then close."""
    def serve(sock, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.recv(100)
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(gap)
        sock.shutdown(socket.SHUT_WR)
        silent(sock, server)
    return serve


def stream_forever(sock, server):
    sock.recv(100)
    while not server.stopping.is_set():
        sock.sendall(b"x" * 65536)


@pytest.fixture
def setup():
    """A ToxiproxyServer (seed 1), a client of its API and an echo upstream, checked for leaks."""
    with no_leaks():
        with TcpServer(echo) as upstream, ToxiproxyServer(seed=1) as server, \
                ToxiproxyClient(server.api_url) as api:
            yield server, api, upstream


def connect(proxy, timeout=5.0):
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        piece = sock.recv(n - len(data))
        if not piece:
            break
        data += piece
    return data


def recv_all(sock):
    """Everything until EOF, and how many recv calls brought data."""
    data, reads = b"", 0
    while piece := sock.recv(65536):
        data, reads = data + piece, reads + 1
    return data, reads


def wait_for(condition, seconds=3.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def round_trip(sock, payload=b"ping"):
    started = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - started


def proxy_to(api, upstream, name="p"):
    return api.create(name, upstream=f"127.0.0.1:{upstream.port}")


def test_data_passes_through_unchanged_both_ways_in_bulk(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    payload = os.urandom(1_000_000)
    with connect(proxy) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert recv_exactly(sock, len(payload)) == payload
        sender.join(5)


def test_downstream_latency_delays_responses_only(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("latency", latency=250)
    with connect(proxy) as sock:
        sent = time.monotonic()
        elapsed = round_trip(sock)
    request_travel = upstream.arrivals[0][0] - sent
    assert request_travel < 0.15 and elapsed >= 0.25


def test_upstream_latency_delays_requests(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("latency", stream="upstream", latency=250)
    with connect(proxy) as sock:
        sent = time.monotonic()
        round_trip(sock)
    assert upstream.arrivals[0][0] - sent >= 0.25


def test_latency_shifts_a_burst_once_not_once_per_chunk_and_keeps_order():
    pieces = [bytes([65 + i]) * 1000 for i in range(5)]
    with no_leaks():
        with TcpServer(burst(pieces, 0.03)) as upstream, ToxiproxyServer() as server, \
                ToxiproxyClient(server.api_url) as api:
            proxy = proxy_to(api, upstream)
            proxy.add_toxic("latency", latency=300)
            with connect(proxy) as sock:
                started = time.monotonic()
                sock.sendall(b"go")
                first = sock.recv(65536)
                first_at = time.monotonic() - started
                rest, _ = recv_all(sock)
                total = time.monotonic() - started
    assert first_at >= 0.3 and (first + rest) == b"".join(pieces)
    assert total < 0.3 * 3            # five chunks, but about one latency plus the 0.12 s of gaps


def test_jitter_keeps_each_delay_within_latency_plus_or_minus_jitter(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("latency", latency=100, jitter=60)
    with connect(proxy) as sock:
        times = [round_trip(sock) for _ in range(12)]
    assert min(times) >= 0.04 and max(times) < 0.16 + 0.5
    assert max(times) - min(times) > 0.01       # jitter spreads the delays


def test_bandwidth_limits_throughput_to_its_rate_in_kilobytes_per_second(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("bandwidth", rate=500)      # 500 KB/s: 100 KB take 0.2 s
    payload = os.urandom(100_000)
    with connect(proxy) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        started = time.monotonic()
        sender.start()
        assert recv_exactly(sock, len(payload)) == payload
        elapsed = time.monotonic() - started
        sender.join(5)
    assert 0.17 <= elapsed < 3


def test_slow_close_delays_the_close_but_not_the_data():
    with no_leaks():
        with TcpServer(burst([b"hello"], 0)) as upstream, ToxiproxyServer() as server, \
                ToxiproxyClient(server.api_url) as api:
            proxy = proxy_to(api, upstream)
            proxy.add_toxic("slow_close", delay=400)
            with connect(proxy) as sock:
                started = time.monotonic()
                sock.sendall(b"go")
                assert recv_exactly(sock, 5) == b"hello"
                data_at = time.monotonic() - started
                assert sock.recv(10) == b""
                closed_at = time.monotonic() - started
    assert data_at < 0.2 and closed_at >= 0.4


def test_timeout_drops_data_and_closes_after_its_silence_restarting_on_each_chunk(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("timeout", timeout=300)
    with connect(proxy) as sock:
        started = time.monotonic()
        for _ in range(4):                     # each echoed chunk restarts the 300 ms of silence
            sock.sendall(b"ping")
            time.sleep(0.1)
        assert sock.recv(100) == b""           # nothing came back: dropped, then closed
        closed_at = time.monotonic() - started
    assert len(upstream.arrivals) >= 1 and closed_at >= 0.3 + 0.3


def test_timeout_zero_never_closes_by_itself_and_removing_it_closes(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("timeout", timeout=0)
    with connect(proxy, timeout=0.5) as sock:
        sock.sendall(b"ping")
        with pytest.raises(socket.timeout):
            sock.recv(100)                      # still open, data dropped
        sock.settimeout(5)
        proxy.remove_toxic("timeout_downstream")
        assert sock.recv(100) == b""            # removing a timeout closes; the data does not resume


def test_timeout_fast_requests_fail_too(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("timeout", timeout=100)
    with connect(proxy) as sock:
        sock.sendall(b"ping")
        assert sock.recv(100) == b""


def test_reset_peer_resets_after_the_first_chunk_plus_its_timeout(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("reset_peer", stream="upstream", timeout=200)
    with connect(proxy) as sock:
        started = time.monotonic()
        sock.sendall(b"ping")
        with pytest.raises(ConnectionResetError):
            sock.recv(100)
        assert time.monotonic() - started >= 0.2
    assert upstream.arrivals == []             # the first chunk was dropped


def test_reset_peer_leaves_an_idle_connection_alone_and_resets_connections_opened_before_it(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    with connect(proxy, timeout=0.3) as older:
        round_trip(older)
        proxy.add_toxic("reset_peer", timeout=0)
        with connect(proxy, timeout=0.3) as idle:
            with pytest.raises(socket.timeout):
                idle.recv(10)                   # no chunk, no reset
        older.settimeout(5)
        older.sendall(b"ping")
        with pytest.raises(ConnectionResetError):
            older.recv(100)


def test_slicer_cuts_data_into_small_pieces_with_a_delay_in_microseconds():
    payload = os.urandom(3000)
    with no_leaks():
        with TcpServer(burst([payload], 0)) as upstream, ToxiproxyServer() as server, \
                ToxiproxyClient(server.api_url) as api:
            proxy = proxy_to(api, upstream)
            proxy.add_toxic("slicer", average_size=100, size_variation=20, delay=5000)
            with connect(proxy) as sock:
                started = time.monotonic()
                sock.sendall(b"go")
                data, reads = recv_all(sock)
                elapsed = time.monotonic() - started
    # about 30 slices of ~100 bytes with 5 ms after each: ~0.15 s (5000 ms each would be minutes)
    assert data == payload and reads >= 10 and 0.1 <= elapsed < 5


def test_limit_data_closes_after_exactly_its_bytes_per_connection_and_direction(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("limit_data", bytes=10)
    for _ in range(2):                          # the count is per connection
        with connect(proxy) as sock:
            sock.sendall(b"0123456789abcdefghij")
            assert recv_all(sock)[0] == b"0123456789"
    proxy.remove_toxic("limit_data_downstream")
    proxy.add_toxic("limit_data", stream="upstream", bytes=7)
    upstream.arrivals.clear()
    with connect(proxy) as sock:
        sock.sendall(b"abcdefghij")
        assert b"abcdefg".startswith(recv_all(sock)[0])     # closed (the upstream's side too)
    wait_for(lambda: upstream.arrivals)
    assert b"".join(data for _, data in upstream.arrivals) == b"abcdefg"


def test_limit_data_zero_drops_the_first_chunk_and_closes(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("limit_data", bytes=0)
    with connect(proxy) as sock:
        sock.sendall(b"ping")
        assert sock.recv(10) == b""


def test_noop_passes_everything(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("noop")
    with connect(proxy) as sock:
        assert round_trip(sock, b"x" * 5000) < 1


def _affected(seed, connections=200):
    """Which of ``connections`` sequential connections a toxicity-0.5 toxic cut (limit_data 0)."""
    with no_leaks():
        with TcpServer(echo) as upstream, ToxiproxyServer(seed=seed) as server, \
                ToxiproxyClient(server.api_url) as api:
            proxy = proxy_to(api, upstream)
            proxy.add_toxic("limit_data", bytes=0, toxicity=0.5)
            cut = []
            for _ in range(connections):
                with connect(proxy) as sock:
                    sock.sendall(b"x")
                    cut.append(sock.recv(10) == b"")
            return cut


def test_toxicity_half_cuts_about_half_of_200_connections_the_same_ones_for_the_same_seed():
    first, again, other = _affected(7), _affected(7), _affected(8)
    assert 70 <= sum(first) <= 130
    assert first == again and first != other


def test_toxicity_zero_never_applies_and_one_always_does(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("limit_data", bytes=0, toxicity=0)
    with connect(proxy) as sock:
        assert round_trip(sock) < 1
    proxy.update_toxic("limit_data_downstream", toxicity=1)
    with connect(proxy) as sock:
        sock.sendall(b"x")
        assert sock.recv(10) == b""


def test_toxics_added_and_removed_apply_to_a_live_connection(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    with connect(proxy) as sock:
        assert round_trip(sock) < 0.2
        proxy.add_toxic("latency", latency=300)
        assert round_trip(sock) >= 0.3
        proxy.add_toxic("latency", stream="upstream", latency=200)
        assert round_trip(sock) >= 0.5
        proxy.remove_toxic("latency_downstream")
        proxy.remove_toxic("latency_upstream")
        assert round_trip(sock) < 0.2
        assert round_trip(sock, os.urandom(200_000)) < 2     # back on the direct path, intact


def test_updating_a_toxic_releases_a_held_chunk_at_once(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("latency", latency=3000)
    with connect(proxy) as sock:
        started = time.monotonic()
        sock.sendall(b"ping")
        time.sleep(0.1)
        proxy.update_toxic("latency_downstream", latency=0)
        assert recv_exactly(sock, 4) == b"ping"
        assert time.monotonic() - started < 1.5
        assert round_trip(sock) < 0.5


def test_removing_a_toxic_passes_on_what_it_held(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    proxy.add_toxic("latency", latency=3000)
    with connect(proxy) as sock:
        started = time.monotonic()
        sock.sendall(b"ping")
        time.sleep(0.1)
        proxy.remove_toxic("latency_downstream")
        assert recv_exactly(sock, 4) == b"ping" and time.monotonic() - started < 1.5


@pytest.mark.parametrize("toxic", [None, "latency"])
def test_a_client_vanishing_mid_stream_frees_its_connection(toxic):
    with no_leaks():
        with TcpServer(stream_forever) as upstream, ToxiproxyServer() as server, \
                ToxiproxyClient(server.api_url) as api:
            proxy = proxy_to(api, upstream)
            if toxic:
                proxy.add_toxic(toxic, latency=1)
            sock = connect(proxy)
            sock.sendall(b"go")
            assert len(sock.recv(65536)) > 0
            sock.close()                           # gone while the upstream still streams
            wait_for(lambda: not server.proxies.get("p").open_connections)
            assert server.proxies.get("p").open_connections == 0


def test_upstream_down_or_unreachable_means_connect_then_eof(setup):
    server, api, upstream = setup
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    for upstream_address in (f"127.0.0.1:{port}", "127.0.0.1:70000", "127.0.0.1", "127.0.0.1:abc"):
        proxy = api.create(upstream_address, upstream=upstream_address)
        with connect(proxy) as sock:
            assert sock.recv(10) == b""
        with connect(proxy) as sock:           # the proxy still accepts
            assert sock.recv(10) == b""


def test_a_disabled_proxy_refuses_new_clients_closes_open_ones_and_comes_back_on_its_port(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    port = proxy.port
    with connect(proxy) as sock:
        round_trip(sock)
        with proxy.down():
            assert sock.recv(10) == b""
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2)
    assert proxy.port == port
    with connect(proxy) as sock:
        assert round_trip(sock) < 1


def test_connections_beyond_the_limit_are_closed_at_once():
    with no_leaks():
        with TcpServer(echo) as upstream, ToxiproxyServer(max_connections=2) as server, \
                ToxiproxyClient(server.api_url) as api:
            proxy = proxy_to(api, upstream)
            held = [connect(proxy) for _ in range(2)]
            for sock in held:
                round_trip(sock)
            with connect(proxy) as extra:
                assert extra.recv(10) == b""
            assert server.proxies.get("p").refused == 1
            for sock in held:
                assert round_trip(sock) < 1
                sock.close()


def test_a_half_close_tears_the_whole_connection_down(setup):
    server, api, upstream = setup
    proxy = proxy_to(api, upstream)
    with connect(proxy) as sock:
        round_trip(sock)
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(10) == b""


def test_stop_wakes_connections_held_by_toxics_and_leaves_nothing():
    with no_leaks():
        with TcpServer(echo) as upstream:
            server = ToxiproxyServer().start()
            with ToxiproxyClient(server.api_url) as api:
                proxy = proxy_to(api, upstream)
                proxy.add_toxic("latency", latency=60_000)
                proxy.add_toxic("timeout", stream="upstream", timeout=0, toxicity=0)
                socks = [connect(proxy) for _ in range(3)]
                for sock in socks:
                    sock.sendall(b"ping")
                time.sleep(0.1)
            started = time.monotonic()
            server.stop()
            assert time.monotonic() - started < 2
            for sock in socks:
                assert sock.recv(10) == b""
                sock.close()
