"""Live services and their HTTP-level faults, measured with httpx on 127.0.0.1: each fault does what it
says, faults switch while requests are in flight, the catalog's idempotency keys hold, bad input is
answered and refused by name, and nothing is left behind (every test runs inside ``no_leaks``)."""
import socket
import statistics
import threading
import time

import httpx
import pytest

from live_support import no_leaks
from resilience_sim.core.distributions import Fixed, Uniform
from resilience_sim.live.faults import NO_FAULTS, HttpFaults, retry_after_header
from resilience_sim.live.services import (Catalog, LiveService, Route, Search, SERVICES,
                                          start_services)


@pytest.fixture(autouse=True)
def _nothing_left_behind():
    with no_leaks():
        yield


@pytest.fixture
def catalog():
    with Catalog() as service, httpx.Client(base_url=service.url, timeout=5) as client:
        yield service, client


def raw_exchange(port: int, data: bytes, *, timeout: float = 2.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
        return reply


def wait_until(condition, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.01)


def in_thread(fn):
    """Run ``fn`` in a thread; the returned list gets its result or its exception."""
    out = []
    def run():
        try:
            out.append(fn())
        except Exception as err:      # noqa: BLE001 - the test looks at it
            out.append(err)
    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


# -- plain requests ---------------------------------------------------------------------------------------

def test_a_plain_request_is_answered_in_well_under_a_few_milliseconds_and_counted(catalog):
    service, client = catalog
    times = []
    for _ in range(200):
        started = time.perf_counter()
        reply = client.get("/items/7")
        times.append(time.perf_counter() - started)
        assert reply.status_code == 200
    assert reply.json() == {"id": 7, "name": "item 7", "price": reply.json()["price"], "stock": reply.json()["stock"]}
    assert statistics.median(times) < 0.010            # about 0.8 ms with httpx on an idle machine
    stats = service.stats()
    assert stats["requests"] == 200 and stats["by_status"] == {200: 200} and stats["by_path"] == {"/items/{id}": 200}
    service.reset_stats()
    assert service.stats()["requests"] == 0


def test_an_unknown_path_is_a_json_404_and_a_wrong_method_a_405_naming_the_allowed_one(catalog):
    service, client = catalog
    reply = client.get("/nowhere")
    assert reply.status_code == 404 and reply.json()["status"] == 404 and "/nowhere" in reply.json()["error"]
    assert client.get("/items/1001").status_code == 404          # the catalog holds items 1..1000
    reply = client.delete("/items/1")
    assert reply.status_code == 405 and reply.headers["Allow"] == "GET"
    assert service.stats()["by_path"] == {"(unknown)": 1, "/items/{id}": 1, "(method not allowed)": 1}


def test_a_route_that_raises_is_answered_500_and_counted_and_the_service_goes_on():
    def broken(request):
        raise KeyError("oops")
    with LiveService("broken", Route("GET", "/x", broken), Route("GET", "/ok", lambda r: (200, {"ok": True}))) as svc:
        with httpx.Client(base_url=svc.url) as client:
            reply = client.get("/x")
            assert reply.status_code == 500 and "KeyError" in reply.json()["error"]
            assert client.get("/ok").json() == {"ok": True}
        assert svc.stats()["errors"] == 1


@pytest.mark.parametrize("request_bytes, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /items/1 HTTP/9.x\r\n\r\n", 400),
    (b"GET /items/1\r\n\r\n", 400),                                   # HTTP/0.9
    (b"POST /orders HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400),
    (b"POST /orders HTTP/1.1\r\nContent-Length: -3\r\n\r\n", 400),
    (b"POST /orders HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", 413),
    (b"POST /orders HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
    (b"POST /orders HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{nope", 400),
    (b"BREW /items/1 HTTP/1.1\r\nConnection: close\r\n\r\n", 501),
])
def test_a_malformed_request_is_answered_with_a_json_error_and_the_service_goes_on(catalog, request_bytes, status):
    service, client = catalog
    reply = raw_exchange(service.port, request_bytes)
    assert reply.startswith(f"HTTP/1.1 {status} ".encode()), reply[:80]
    assert reply.endswith(b"}") and b'"status":%d' % status in reply
    assert client.get("/items/1").status_code == 200


# -- fail --------------------------------------------------------------------------------------------------

def test_fail_answers_the_status_with_retry_after_in_whole_or_fractional_seconds(catalog):
    service, client = catalog
    service.faults.fail(503, retry_after=2)
    reply = client.get("/items/1")
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "2" and reply.json()["status"] == 503
    service.faults.fail(429, retry_after=0.25)
    reply = client.get("/items/1")
    assert reply.status_code == 429 and reply.headers["Retry-After"] == "0.25"
    service.faults.fail(500)
    reply = client.get("/items/1")
    assert reply.status_code == 500 and "Retry-After" not in reply.headers
    assert service.stats()["faults"] == {"fail": 3} and service.faults.injected["fail"] == 3
    assert [retry_after_header(x) for x in (3.0, 0.5, 1e-05)] == ["3", "0.5", "0.00001"]


def test_fail_first_two_fails_exactly_the_next_two_requests_then_removes_itself(catalog):
    service, client = catalog
    service.faults.fail(500, first=2)
    assert service.faults.active()[0]["remaining"] == 2
    assert [client.get("/items/1").status_code for _ in range(5)] == [500, 500, 200, 200, 200]
    assert service.faults.active() == []


def test_a_seeded_rate_fails_the_same_requests_over_http_as_the_same_seed_plans_offline():
    twin = HttpFaults(seed=7).fail(503, rate=0.3)
    expected = [twin.plan("/items/1").status == 503 for _ in range(100)]
    assert 15 <= sum(expected) <= 45
    faults = HttpFaults(seed=7).fail(503, rate=0.3)
    with Catalog(faults=faults) as service, httpx.Client(base_url=service.url) as client:
        got = [client.get("/items/1").status_code == 503 for _ in range(100)]
    assert got == expected
    other = HttpFaults(seed=8).fail(503, rate=0.3)
    assert [other.plan("/items/1").status == 503 for _ in range(100)] != expected


def test_each_kind_draws_from_its_own_stream_so_adding_a_fault_does_not_reshuffle_another():
    alone = HttpFaults(seed=3).fail(500, rate=0.5)
    mixed = HttpFaults(seed=3).fail(500, rate=0.5).trickle(rate=0.5).slow(Uniform(0, 0.1), rate=0.5)
    fails = lambda faults: [faults.plan("/").status == 500 for _ in range(200)]
    assert fails(alone) == fails(mixed)


def test_fail_during_a_window_fails_only_inside_it_counted_from_the_clock_zero():
    now = [100.0]
    faults = HttpFaults(clock=lambda: now[0]).fail(500, during=(1.0, 2.0))
    with Catalog(faults=faults) as service, httpx.Client(base_url=service.url) as client:   # start(): zero = 100
        statuses = []
        for t in (100.5, 101.0, 101.5, 102.0, 103.0):
            now[0] = t
            statuses.append(client.get("/items/1").status_code)
    assert statuses == [200, 500, 500, 200, 200]


def test_fail_on_given_paths_leaves_the_other_paths_alone(catalog):
    service, client = catalog
    service.faults.fail(503, paths=["/orders"])
    assert client.get("/items/1").status_code == 200
    assert client.post("/orders", json={"order": "a"}).status_code == 503
    assert service.stats()["orders_created"] == 0


# -- slow, base latency -------------------------------------------------------------------------------------

def test_slow_adds_its_latency_to_every_request_and_a_distribution_is_drawn_per_request(catalog):
    service, client = catalog
    service.faults.slow(0.1)
    for _ in range(3):
        assert client.get("/items/1").elapsed.total_seconds() >= 0.095
    service.faults.slow(Uniform(0.0, 0.1))
    times = [client.get("/items/1").elapsed.total_seconds() for _ in range(10)]
    assert max(times) - min(times) > 0.02 and max(times) < 0.1 + 1.0


def test_base_latency_is_the_service_time_of_every_request_and_can_change_at_run_time():
    with Search("sql") as sql, Search("engine") as engine, httpx.Client() as client:
        assert sql.latency == Fixed(0.02) and engine.latency == Fixed(0.0)
        slow = statistics.median(client.get(sql.url + "/search?q=a").elapsed.total_seconds() for _ in range(5))
        fast = statistics.median(client.get(engine.url + "/search?q=a").elapsed.total_seconds() for _ in range(5))
        assert slow >= 0.019 and fast < slow
        sql.latency = 0.0
        assert client.get(sql.url + "/search?q=a").elapsed.total_seconds() < 0.019 * 5


# -- trickle ----------------------------------------------------------------------------------------------

def test_trickle_takes_chunks_times_interval_while_no_read_waits_longer_than_one_interval(catalog):
    service, client = catalog
    whole = client.get("/items/1").content                # 48 bytes: 6 chunks of 8
    service.faults.trickle(chunk=8, interval=0.05)
    started = time.perf_counter()
    reply = client.get("/items/1", timeout=httpx.Timeout(5.0, read=0.2))   # read timeout < the whole 0.3 s
    took = time.perf_counter() - started
    assert reply.status_code == 200 and reply.content == whole
    assert 6 * 0.05 * 0.9 <= took < 6 * 0.05 + 2.0
    with client.stream("GET", "/items/1") as streamed:
        pieces = list(streamed.iter_raw())
    assert b"".join(pieces) == whole and len(pieces) >= 2


def test_a_client_vanishing_mid_trickle_is_counted_not_raised_and_the_service_goes_on(catalog):
    service, client = catalog
    service.faults.trickle(chunk=1, interval=0.02)
    with socket.create_connection(("127.0.0.1", service.port), timeout=2) as sock:
        sock.sendall(b"GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
    wait_until(lambda: service.stats()["vanished"] == 1)
    service.faults.clear()
    assert client.get("/items/1").status_code == 200


# -- reset ------------------------------------------------------------------------------------------------

def test_reset_sends_the_headers_and_part_of_the_body_then_a_tcp_reset(catalog):
    service, client = catalog
    service.faults.reset(after_bytes=10)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        client.get("/items/1")
    with socket.create_connection(("127.0.0.1", service.port), timeout=2) as sock:
        sock.sendall(b"GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        with pytest.raises(ConnectionResetError):
            while chunk := sock.recv(4096):
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 48" in head and body == b'{"id":1,"n'
    service.faults.clear()
    assert client.get("/items/1").status_code == 200       # the pool drops the dead connection


# -- hang -------------------------------------------------------------------------------------------------

def test_hang_holds_the_request_until_stop_which_releases_it_at_once():
    service = Catalog().start()
    service.faults.hang()
    thread, out = in_thread(lambda: httpx.get(service.url + "/items/1", timeout=5))
    wait_until(lambda: service.faults.injected["hang"] == 1)
    time.sleep(0.1)
    assert thread.is_alive() and service.stats()["requests"] == 0
    started = time.monotonic()
    service.stop()
    thread.join(5)
    assert time.monotonic() - started < 2 and isinstance(out[0], httpx.HTTPError)
    assert service.stats()["unanswered"] == 1


def test_hang_with_seconds_closes_the_connection_unanswered_after_that_long(catalog):
    service, client = catalog
    service.faults.hang(seconds=0.3)
    started = time.perf_counter()
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/items/1")
    assert 0.25 <= time.perf_counter() - started < 2.5
    assert service.stats()["unanswered"] == 1 and service.stats()["by_status"] == {}


def test_a_request_that_hangs_neither_fails_nor_spends_a_first():
    faults = HttpFaults().hang(seconds=1, paths="/slow").fail(500, first=1)
    assert faults.plan("/slow").status is None
    assert faults.plan("/fast").status == 500 and faults.active()[0]["kind"] == "hang"


# -- switching at run time ----------------------------------------------------------------------------------

def test_a_switch_affects_the_requests_after_it_never_one_in_flight(catalog):
    service, client = catalog
    service.faults.slow(0.3)
    thread, out = in_thread(lambda: httpx.get(service.url + "/items/1", timeout=5).status_code)
    wait_until(lambda: service.faults.injected["slow"] == 1)      # its plan is drawn: it is in flight
    service.faults.clear().fail(503)
    assert client.get("/items/1").status_code == 503
    thread.join(5)
    assert out == [200]
    service.faults.clear()
    assert client.get("/items/1").status_code == 200


def test_faults_toggled_under_concurrent_load_give_only_their_answers_and_consistent_counts(catalog):
    service, client = catalog
    results, lock = [], threading.Lock()

    def hammer():
        with httpx.Client(base_url=service.url, timeout=5) as own:
            for _ in range(40):
                status = own.get("/items/2").status_code
                with lock:
                    results.append(status)
    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(30):
        service.faults.fail(503) if i % 2 == 0 else service.faults.clear()
        time.sleep(0.005)
    for t in threads:
        t.join(10)
    stats = service.stats()
    assert len(results) == 160 and set(results) <= {200, 503}
    assert stats["requests"] == 160
    assert stats["by_status"].get(503, 0) == results.count(503) == stats["faults"].get("fail", 0)


def test_active_describes_each_rule_in_the_order_a_request_meets_them_and_clear_removes_them():
    faults = HttpFaults().reset(after_bytes=4).fail(429, rate=0.5, retry_after=1, paths="/items").slow(0.2)
    described = faults.active()
    assert [d["kind"] for d in described] == ["slow", "fail", "reset"]
    assert described[1] == {"kind": "fail", "status": 429, "retry_after": 1.0, "rate": 0.5, "during": None,
                            "paths": ["/items"], "injected": 0}
    assert [d["kind"] for d in faults.clear("fail").active()] == ["slow", "reset"]
    assert faults.clear().active() == [] and faults.plan("/items/1") is NO_FAULTS


# -- the catalog's orders ---------------------------------------------------------------------------------

def test_an_idempotency_key_replays_the_first_answer_and_refuses_the_key_with_another_body(catalog):
    service, client = catalog
    key = {"Idempotency-Key": "k-1"}
    first = client.post("/orders", json={"order": "a"}, headers=key)
    again = client.post("/orders", json={"order": "a"}, headers=key)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    other = client.post("/orders", json={"order": "b"}, headers=key)
    assert other.status_code == 422 and "another body" in other.json()["error"]
    assert client.post("/orders", json={"items": []}).status_code == 400
    stats = service.stats()
    assert (stats["orders_created"], stats["replayed"], stats["conflicts"], stats["duplicate_orders"]) == (1, 1, 1, 0)


def test_retrying_a_post_whose_answer_was_lost_duplicates_the_order_without_a_key_and_not_with_one(catalog):
    service, client = catalog

    def post_lost_then_retried(headers):
        service.faults.reset(after_bytes=5, paths="/orders")   # the order is made, its answer lost
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.post("/orders", json={"order": "cart-9"}, headers=headers)
        service.faults.clear()
        return client.post("/orders", json={"order": "cart-9"}, headers=headers)

    assert post_lost_then_retried({}).status_code == 201
    assert (service.stats()["orders_created"], service.stats()["duplicate_orders"]) == (2, 1)
    service.reset_stats()
    retried = post_lost_then_retried({"Idempotency-Key": "cart-9-attempt"})
    assert retried.status_code == 201 and retried.headers["Idempotent-Replayed"] == "true"
    assert (service.stats()["orders_created"], service.stats()["duplicate_orders"]) == (1, 0)


# -- the other services' content ------------------------------------------------------------------------------

def test_recommender_and_search_answer_small_deterministic_json_and_refuse_a_bad_query():
    with start_services("recommender", "search", "search_sql", seed=1) as svc, httpx.Client() as client:
        rec = svc["recommender"].url
        personal = client.get(rec + "/recommendations/ann").json()
        assert personal["source"] == "personal" and len(personal["items"]) == 5
        assert client.get(rec + "/recommendations/ann").json() == personal
        popular = client.get(rec + "/popular?country=se").json()
        assert popular["source"] == "popular" and popular["country"] == "SE"
        assert client.get(rec + "/popular?country=Sweden").status_code == 400
        found = client.get(svc["search"].url + "/search?q=red%20shoes").json()
        assert found["q"] == "red shoes" and found["kind"] == "engine" and len(found["results"]) == 3
        assert client.get(svc["search_sql"].url + "/search?q=red%20shoes").json()["results"] == found["results"]
        assert client.get(svc["search"].url + "/search").status_code == 400


# -- connections, lifecycle -------------------------------------------------------------------------------------

def test_a_flood_of_connections_beyond_the_limit_is_answered_503_and_counted():
    with Catalog(max_connections=2) as service:
        held = [socket.create_connection(("127.0.0.1", service.port)) for _ in range(2)]
        wait_until(lambda: service.open_connections == 2)
        reply = raw_exchange(service.port, b"GET /items/1 HTTP/1.1\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 503") and service.stats()["refused"] == 1
        for sock in held:
            sock.close()


def test_a_service_starts_and_stops_in_milliseconds_and_starts_again():
    service = Catalog()
    for _ in range(2):
        started = time.perf_counter()
        service.start()
        assert time.perf_counter() - started < 0.5          # a few ms on an idle machine
        assert httpx.get(service.url + "/items/1").status_code == 200
        started = time.perf_counter()
        service.stop()
        assert time.perf_counter() - started < 1.0          # about 40 ms: the accept loop's poll
        assert not service.running


def test_start_services_starts_each_by_name_on_its_own_port_and_stops_them_all():
    with start_services(seed=2) as svc:
        assert set(svc) == set(SERVICES) == {"catalog", "recommender", "search", "search_sql"}
        assert len({s.port for s in svc.values()}) == 4 and all(s.running for s in svc.values())
    assert not any(s.running for s in svc.values())


def test_start_services_stops_those_started_when_a_later_one_fails_to_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        catalog = Catalog()
        with pytest.raises(OSError):
            with start_services(catalog, Search(port=taken.getsockname()[1])):
                pass
        assert not catalog.running


# -- bad parameters -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, name", [
    (lambda: HttpFaults().fail(200), "status"),
    (lambda: HttpFaults().fail(rate=1.5), "rate"),
    (lambda: HttpFaults().fail(first=0), "first"),
    (lambda: HttpFaults().fail(first=2, rate=0.5), "rate"),
    (lambda: HttpFaults().fail(500, retry_after=1), "retry_after"),
    (lambda: HttpFaults().fail(503, retry_after=-1), "retry_after"),
    (lambda: HttpFaults().fail(during=(2, 1)), "during end"),
    (lambda: HttpFaults().fail(during=(-1, 1)), "during start"),
    (lambda: HttpFaults().fail(during="soon"), "during"),
    (lambda: HttpFaults().fail(paths="orders"), "paths"),
    (lambda: HttpFaults().fail(paths=[]), "paths"),
    (lambda: HttpFaults().slow(-0.1), "latency"),
    (lambda: HttpFaults().slow("fast"), "latency"),
    (lambda: HttpFaults().trickle(chunk=0), "chunk"),
    (lambda: HttpFaults().trickle(interval=0), "interval"),
    (lambda: HttpFaults().reset(after_bytes=-1), "after_bytes"),
    (lambda: HttpFaults().reset(rate=-0.1), "rate"),
    (lambda: HttpFaults().hang(seconds=0), "seconds"),
    (lambda: HttpFaults().clear("everything"), "kind"),
    (lambda: HttpFaults(seed=-1), "seed"),
    (lambda: Catalog(latency=-1), "latency"),
    (lambda: Catalog(max_connections=0), "max_connections"),
    (lambda: Catalog(items=0), "items"),
    (lambda: Catalog(faults="on"), "faults"),
    (lambda: Search("nosql"), "kind"),
    (lambda: LiveService("x"), "routes"),
    (lambda: LiveService("x", ("GET", "/x", print)), "routes"),
    (lambda: Route("FETCH", "/x", print), "method"),
    (lambda: Route("GET", "x", print), "template"),
    (lambda: start_services("catalogue").__enter__(), "names"),
])
def test_bad_parameters_are_refused_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
