"""The resilient httpx client: the simulator's policy objects protecting real HTTP calls on loopback,
against small scripted handlers (fail N times then answer, 429 with Retry-After, trickle, reset, hang)."""
import asyncio
import socket
import struct
import threading
import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from live_support import no_leaks
from resilience_sim.core.reasons import Outcome
from resilience_sim.live.attempts import reason_for_error, reason_for_status, retry_after
from resilience_sim.live.client import AsyncResilientClient, ResilientClient
from resilience_sim.live.recording import LiveRecording
from resilience_sim.live.server import Handler, LoopbackServer
from resilience_sim.metrics.results import ClientStats, Results
from resilience_sim.policies import (AdaptiveThrottle, Bulkhead, CircuitBreaker, Constant, FallbackChain,
                                     RetryBudget, RetryPolicy, Static, TokenBucket)


class Script:
    """What the server saw: calls per path (query included), arrival times, client ports, keys."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = Counter()
        self.seen = []
        self.ports = set()
        self.keys = []

    def arrive(self, handler) -> int:
        with self.lock:
            self.calls[handler.path] += 1
            self.seen.append((handler.path, time.monotonic()))
            self.ports.add(handler.client_address[1])
            self.keys.append(handler.headers.get("Idempotency-Key"))
            return self.calls[handler.path]


class Scripted(Handler):
    def do_GET(self):
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        n = self.server.app.arrive(self)
        stopping = self.server.stopping
        if url.path == "/fail" and n <= int(q.get("n", 1)):
            headers = {"Retry-After": q["after"]} if "after" in q else {}
            return self.send_json(int(q.get("status", 500)), b'{"error":"scripted"}', headers)
        if url.path == "/status":
            return self.send_json(int(q["code"]), b'{"error":"scripted"}')
        if url.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", q.get("bytes", "30"))
            self.end_headers()
            for _ in range(int(q.get("bytes", 30))):
                if stopping.wait(float(q.get("gap", 0.08))):
                    return
                self.wfile.write(b"x")
            return
        if url.path == "/reset" and n <= int(q.get("n", 1)):
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if url.path == "/hang" and stopping.wait(10):
            return
        if url.path == "/slow":
            stopping.wait(float(q.get("s", 0.2)))
        self.send_json(200, b'{"ok":true}')

    def do_POST(self):
        self.read_body()
        n = self.server.app.arrive(self)
        if n <= 1:
            return self.send_json(503, b'{"error":"scripted"}')
        self.send_json(201, b'{"created":true}')


@pytest.fixture
def server():
    with no_leaks():
        with LoopbackServer(Scripted, app=Script()) as s:
            yield s


def retries(n=3, wait=0.01):
    return RetryPolicy(n, Constant(wait))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the reason mapping ------------------------------------------------------------------------
def test_http_statuses_and_httpx_errors_map_to_the_courses_reasons():
    assert [reason_for_status(s) for s in (200, 302, 400, 401, 403, 404, 409, 418, 429, 500, 502, 503)] == [
        "", "", "bad request", "unauthorized", "unauthorized", "not found", "conflict", "bad request",
        "too many requests", "error", "error", "unavailable"]
    req = httpx.Request("GET", "http://127.0.0.1/")
    assert reason_for_error(httpx.ConnectError("x", request=req)) == "down"
    assert reason_for_error(httpx.ReadTimeout("x", request=req)) == "timeout"
    assert reason_for_error(httpx.ConnectTimeout("x", request=req)) == "timeout"
    assert reason_for_error(httpx.ReadError("x", request=req)) == "error"
    assert reason_for_error(httpx.RemoteProtocolError("x", request=req)) == "error"


def test_retry_after_reads_fractional_seconds_and_dates_and_ignores_nonsense():
    assert retry_after("0.25") == 0.25 and retry_after("3") == 3.0
    assert retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now_wall=1445412480.0) == 10.0
    assert retry_after(None) is None and retry_after("soon") is None and retry_after("-1") is None


# --- retries --------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 503, 429])
def test_5xx_and_429_are_retried_until_the_answer_comes(server, status):
    with ResilientClient(server.url, retry=retries()) as client:
        reply = client.get(f"/fail?n=2&status={status}")
    assert reply.outcome == Outcome.OK and reply.attempts == 3 and reply.json() == {"ok": True}
    assert server.app.calls[f"/fail?n=2&status={status}"] == 3
    assert (client.stats().attempts, client.stats().retries) == (3, 2)


def test_a_refused_connection_is_down_and_retried():
    with no_leaks(), ResilientClient(f"http://127.0.0.1:{free_port()}", retry=retries(3)) as client:
        reply = client.get("/ok")
    assert (reply.outcome, reply.reason, reply.attempts) == (Outcome.FAILED, "down", 3)
    assert reply.answered_by.startswith("127.0.0.1:")


@pytest.mark.parametrize("code, reason", [(404, "not found"), (400, "bad request"), (401, "unauthorized"),
                                          (409, "conflict"), (422, "bad request")])
def test_other_4xx_are_never_retried(server, code, reason):
    with ResilientClient(server.url, retry=retries(5)) as client:
        reply = client.get(f"/status?code={code}")
    assert (reply.outcome, reply.reason, reply.status, reply.attempts) == (Outcome.FAILED, reason, code, 1)
    assert server.app.calls[f"/status?code={code}"] == 1


def test_retry_after_is_honoured_the_gap_between_attempts_is_at_least_it(server):
    with ResilientClient(server.url, retry=retries(3, wait=0.01)) as client:
        reply = client.get("/fail?n=1&status=429&after=0.3")
    assert reply.ok and reply.attempts == 2
    (_, first), (_, second) = server.app.seen
    assert second - first >= 0.3
    assert client.stats().backoff_time == pytest.approx(0.3)


def test_a_post_without_an_idempotency_key_is_never_retried(server):
    with ResilientClient(server.url, retry=retries(3)) as client:
        reply = client.post("/orders", json={"item": 1})
    assert (reply.reason, reply.attempts) == ("unavailable", 1) and server.app.calls["/orders"] == 1
    assert client.retry.refused["not idempotent"] == 1


def test_a_post_with_an_idempotency_key_is_retried_and_sends_it_on_every_attempt(server):
    with ResilientClient(server.url, retry=retries(3)) as client:
        reply = client.post("/orders", json={"item": 1}, idempotency_key="order-42")
    assert (reply.outcome, reply.status, reply.attempts) == (Outcome.OK, 201, 2)
    assert server.app.keys == ["order-42", "order-42"]


def test_a_reset_mid_body_is_an_error_and_is_retried(server):
    with ResilientClient(server.url, retry=retries(3)) as client:
        reply = client.get("/reset?n=1")
        broken = ResilientClient(server.url, http=client.http).get("/reset?n=5")
    assert reply.ok and reply.attempts == 2
    assert (broken.outcome, broken.reason) == (Outcome.FAILED, "error")


def test_one_connection_pool_serves_every_request(server):
    with ResilientClient(server.url, retry=retries()) as client:
        replies = [client.get("/ok") for _ in range(20)]
        replies.append(client.get("/fail?n=1"))                 # a 500 keeps the connection too
    assert all(r.ok for r in replies)
    assert server.accepted == 1 and len(server.app.ports) == 1


# --- the deadline -----------------------------------------------------------------------------------
def test_a_trickle_runs_far_past_plain_httpx_timeouts_but_not_past_our_deadline(server):
    """30 bytes, one every 80 ms: plain httpx with timeout=0.5 waits for all of it (about 2.4 s), as
    each read is quick; ours gives up at its 0.5 s deadline, overrunning by at most one gap."""
    started = time.monotonic()
    assert httpx.get(server.url + "/trickle", timeout=0.5).status_code == 200
    plain = time.monotonic() - started
    with ResilientClient(server.url, deadline=0.5) as client:
        started = time.monotonic()
        reply = client.get("/trickle")
        ours = time.monotonic() - started
    assert plain > 2.0
    assert (reply.outcome, reply.reason, reply.answered_by) == (Outcome.TIMED_OUT, "deadline", "client")
    assert 0.5 <= ours < 0.5 + 0.4           # plain: more than 2 s


def test_the_per_attempt_timeout_cuts_a_hang_and_the_deadline_bounds_the_retries(server):
    with ResilientClient(server.url, timeout=0.15, deadline=0.5, retry=retries(10, wait=0.01)) as client:
        started = time.monotonic()
        reply = client.get("/hang")
        elapsed = time.monotonic() - started
    assert reply.outcome == Outcome.TIMED_OUT and reply.reason in ("timeout", "deadline")
    assert 3 <= reply.attempts <= 4 and elapsed < 0.5 + 0.3
    assert client.timeout.timeouts.total >= 3


def test_the_sync_client_overruns_by_at_most_one_gap_and_the_async_one_not_at_all(server):
    """A byte every 0.45 s against a 0.5 s deadline: the sync client sees the time is up after the
    second byte (0.9 s), the async client is cut at 0.5 s by asyncio.timeout."""
    with ResilientClient(server.url, deadline=0.5) as client:
        sync = client.get("/trickle?gap=0.45")

    async def main():
        async with AsyncResilientClient(server.url, deadline=0.5) as client:
            return await client.get("/trickle?gap=0.45")
    hard = asyncio.run(main())
    assert sync.reason == hard.reason == "deadline"
    assert 0.85 <= sync.elapsed < 0.5 + 0.45 + 0.25
    assert 0.5 <= hard.elapsed < 0.5 + 0.25


# --- breaker, budget, throttle, rate limit, bulkhead ---------------------------------------------------
def test_the_breaker_opens_then_fails_fast_then_probes(server):
    breaker = CircuitBreaker(consecutive_failures=3, open_for=0.3)
    with ResilientClient(server.url, breaker=breaker) as client:
        failed = [client.get("/status?code=500").reason for _ in range(3)]
        fast = client.get("/status?code=500")
        time.sleep(0.35)
        probe = client.get("/ok")
    assert failed == ["error"] * 3 and server.app.calls["/status?code=500"] == 3
    assert (fast.outcome, fast.reason, fast.answered_by) == (Outcome.REJECTED, "circuit open", "client")
    assert fast.elapsed < 0.1 and probe.ok and breaker.state(time.monotonic()) == "closed"
    stats = client.stats()
    assert [s for _, s in stats.breaker_history] == ["closed", "open", "half-open", "closed"]
    assert [why for _, why in stats.breaker_trips] == ["consecutive failures"]
    assert stats.rejected == {"circuit open": 1}


def test_the_budget_limits_retries_under_a_total_outage(server):
    def outage(budget):
        with ResilientClient(server.url, retry=retries(5, wait=0.0), budget=budget) as client:
            replies = [client.get("/status?code=503") for _ in range(30)]
        assert not any(r.ok for r in replies)
        return client.stats()
    free = outage(None)
    budgeted = outage(RetryBudget(ratio=0.1, window=10.0, min_per_second=0.0))
    assert free.attempts == 150
    assert budgeted.attempts <= 30 + 4 and budgeted.budget_denied >= 25


def test_the_throttle_rejects_locally_when_the_backend_keeps_refusing(server):
    with ResilientClient(server.url, throttle=AdaptiveThrottle(k=1.1, window=10.0)) as client:
        replies = [client.get("/status?code=429") for _ in range(40)]
    throttled = sum(r.reason == "throttled" for r in replies)
    assert throttled > 10 and server.app.calls["/status?code=429"] == 40 - throttled
    assert client.throttle.allowed == 40 - throttled


def test_the_rate_limit_refuses_unsent_and_leaves_the_breaker_alone(server):
    breaker = CircuitBreaker(consecutive_failures=1, open_for=10.0)
    with ResilientClient(server.url, rate_limit=TokenBucket(rate=1.0, burst=3), breaker=breaker) as client:
        reasons = [client.get("/ok").reason for _ in range(5)]
    assert reasons == ["", "", "", "rate limited", "rate limited"] and server.app.calls["/ok"] == 3
    assert breaker.state(time.monotonic()) == "closed" and client.stats().rejected == {"rate limited": 2}


def _together(client, paths):
    replies = [None] * len(paths)
    def one(i, path):
        if i:
            time.sleep(0.05 * i)
        replies[i] = client.get(path)
    threads = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(paths)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    return replies


@pytest.mark.parametrize("max_wait, second", [(0.0, "bulkhead full"), (0.05, "bulkhead full"), (2.0, "")])
def test_a_full_bulkhead_refuses_or_queues_threads(server, max_wait, second):
    bulkhead = Bulkhead(1, max_wait=max_wait)
    with ResilientClient(server.url, bulkhead=bulkhead) as client:
        first, other = _together(client, ["/slow?s=0.3", "/ok"])
    assert first.ok and other.reason == second
    assert bulkhead.in_use == 0 and bulkhead.waiting == 0
    if second:
        assert other.outcome == Outcome.REJECTED and server.app.calls["/ok"] == 0
    else:
        assert other.elapsed >= 0.2 and bulkhead.waits.total == 1


def test_a_bulkhead_wait_never_outlasts_the_deadline(server):
    bulkhead = Bulkhead(1, max_wait=5.0)
    with ResilientClient(server.url, bulkhead=bulkhead, deadline=0.2) as client:
        assert bulkhead.try_acquire(time.monotonic())         # another caller holds the only slot
        reply = client.get("/ok")
        assert bulkhead.waiting == 0                          # it left the queue at its deadline
        bulkhead.release(time.monotonic())
    assert (reply.outcome, reply.reason, reply.attempts) == (Outcome.TIMED_OUT, "deadline", 1)
    assert 0.2 <= reply.elapsed < 0.2 + 0.25 and server.app.calls["/ok"] == 0
    assert bulkhead.rejected == 0 and client.stats().rejected == {"deadline": 1}


def test_many_threads_share_one_client_and_the_books_balance(server):
    breaker = CircuitBreaker(failure_rate=0.9, window=50, min_calls=20)
    bulkhead = Bulkhead(4, max_wait=1.0)
    with ResilientClient(server.url, deadline=2.0, retry=retries(), budget=RetryBudget(), breaker=breaker,
                         bulkhead=bulkhead) as client:
        def worker():
            for i in range(20):
                client.get("/ok" if i % 4 else "/fail?n=1")
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    stats = client.stats()
    results = client.recording.results()
    assert stats.requests == len(results) == 160 and results.in_flight == 0
    assert results.request_availability() == 1.0 and bulkhead.in_use == 0 and bulkhead.peak <= 4
    assert breaker._permits.current == 0 and not breaker._permits.older     # every permit resolved once


# --- fallback ----------------------------------------------------------------------------------------
def test_a_fallback_chain_answers_degraded_with_its_steps_label(server):
    chain = FallbackChain(["primary", "/status?code=500", "/ok", Static("bestsellers", ["a", "b"])],
                          labels={"/ok": "popular"})
    with ResilientClient(server.url, fallback=chain) as client:
        reply = client.get("/status?code=503")
        missing = client.get("/status?code=404")
    assert (reply.outcome, reply.reason, reply.degraded, reply.answered_by) == (
        Outcome.DEGRADED, "popular", "popular", "/ok")
    assert reply.json() == {"ok": True} and chain.answered == [0, 0, 1, 0] and chain.failed == [2, 1, 0, 0]
    assert (missing.outcome, missing.reason) == (Outcome.FAILED, "not found")     # the caller's own mistake
    row = client.recording.results().row(0)
    assert (row["outcome"], row["reason"], row["answered_by"]) == ("degraded", "popular", "/ok")


def test_a_static_step_answers_even_after_the_deadline(server):
    chain = FallbackChain(["primary", "/slow?s=0.5", Static("bestsellers", ["a"])])
    with ResilientClient(server.url, fallback=chain, deadline=0.2) as client:
        reply = client.get("/hang")
    assert (reply.outcome, reply.reason, reply.json(), reply.answered_by) == (
        Outcome.DEGRADED, "bestsellers", ["a"], "bestsellers")
    assert reply.elapsed < 0.2 + 0.3


def test_a_fallback_function_gets_the_request_and_the_reason(server):
    seen = []
    def popular(request, reason):
        seen.append((request.path, request.key, reason))
        return ["popular"]
    with ResilientClient(server.url, fallback=popular) as client:
        reply = client.get("/status?code=500", key=7)
    assert (reply.outcome, reply.reason, reply.json()) == (Outcome.DEGRADED, "fallback", ["popular"])
    assert seen == [("/status?code=500", 7, "error")]
    assert client.recording.results().quality()["fallback"] == 1.0


def test_a_fallback_function_that_raises_reaches_the_caller_and_its_row_is_an_error(server):
    def broken(request, reason):
        raise KeyError("a bug in the fallback")
    with ResilientClient(server.url, fallback=broken) as client:
        with pytest.raises(KeyError):
            client.get("/status?code=500")
    assert client.recording.results().reasons() == Counter({"error": 1})


# --- stats and results ---------------------------------------------------------------------------
def test_stats_are_client_stats_and_a_recording_gives_results_the_metrics_read(server):
    recording = LiveRecording()
    with ResilientClient(server.url, retry=retries(), name="shop", recording=recording) as client:
        for i in range(10):
            client.get("/ok", route="items", key=i % 3)
        client.get("/status?code=404", route="items")
    stats = client.stats()
    assert isinstance(stats, ClientStats) and (stats.name, stats.requests, stats.attempts, stats.hedges) == (
        "shop", 11, 11, 0)
    results = recording.results()
    assert isinstance(results, Results) and len(results) == 11 and results.routes == ("items",)
    assert results.request_availability() == pytest.approx(10 / 11)
    assert 0 < results.latency_percentiles()[50] < 0.1 and results.client("shop").requests == 11
    assert results.reasons() == Counter({"not found": 1}) and results.key(1) == 1
    assert results.timeseries(results.duration / 2)["requests"].sum() == 11


def test_a_request_in_flight_is_unfinished_in_a_snapshot(server):
    with ResilientClient(server.url, timeout=1.0) as client:
        t = threading.Thread(target=client.get, args=("/slow?s=0.3",))
        t.start()
        time.sleep(0.1)
        snapshot = client.recording.results()
        t.join(5)
    assert snapshot.in_flight == 1 and snapshot.reasons() == Counter({"unfinished": 1})
    assert client.recording.results().request_availability() == 1.0


# --- async -----------------------------------------------------------------------------------------
def test_the_async_client_retries_5xx_honours_retry_after_and_never_retries_404(server):
    async def main():
        async with AsyncResilientClient(server.url, retry=retries(3)) as client:
            return (await client.get("/fail?n=2"), await client.get("/status?code=404"),
                    await client.get("/fail?n=1&status=429&after=0.2"), client)
    flaky, missing, limited, client = asyncio.run(main())
    assert flaky.ok and flaky.attempts == 3 and (missing.reason, missing.attempts) == ("not found", 1)
    times = [t for path, t in server.app.seen if "429" in path]
    assert limited.ok and times[1] - times[0] >= 0.2
    assert client.stats().requests == 3


def test_the_async_bulkhead_queues_tasks_and_a_cancelled_task_gives_everything_back(server):
    breaker = CircuitBreaker(consecutive_failures=1, open_for=10.0)
    bulkhead = Bulkhead(1, max_wait=2.0)

    async def main():
        async with AsyncResilientClient(server.url, bulkhead=bulkhead, breaker=breaker) as client:
            slow = asyncio.create_task(client.get("/slow?s=0.2"))
            await asyncio.sleep(0.05)
            queued = await client.get("/ok")
            await slow
            hung = asyncio.create_task(client.get("/hang"))
            await asyncio.sleep(0.1)
            hung.cancel()
            with pytest.raises(asyncio.CancelledError):
                await hung
            return queued, await client.get("/ok"), client
    queued, after, client = asyncio.run(main())
    assert queued.ok and queued.elapsed >= 0.1 and after.ok
    assert bulkhead.in_use == 0 and breaker.state(time.monotonic()) == "closed"
    assert client.recording.results().reasons() == Counter({"cancelled": 1})


# --- the fast path: one attempt, sent at once -----------------------------------------------------
def _mock(handler, **kwargs):
    return httpx.Client(transport=httpx.MockTransport(handler), **kwargs)


def test_each_attempt_carries_the_pools_phase_timeouts_clamped_to_its_limit_and_never_lengthened():
    seen = []

    def handler(request):
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={"ok": True})
    with no_leaks(), _mock(handler, timeout=httpx.Timeout(5.0, connect=0.1)) as http:
        ResilientClient("http://127.0.0.1:1", http=http, timeout=0.3).get("/a")
        ResilientClient("http://127.0.0.1:1", http=http, deadline=0.2, timeout=0.3).get("/a")
        plain = ResilientClient("http://127.0.0.1:1", http=http)
        plain.get("/a")
        http.timeout = httpx.Timeout(0.05)               # the pool's own, read afresh
        plain.get("/a")
        ResilientClient("http://127.0.0.1:1", http=http, timeout=0.3).get("/a")
    assert seen[0] == {"connect": 0.1, "read": 0.3, "write": 0.3, "pool": 0.3}
    left = seen[1]["read"]                               # what is left of the deadline: under the timeout
    assert left == pytest.approx(0.2, abs=0.01) and seen[1] == {"connect": 0.1, "read": left, "write": left,
                                                                 "pool": left}
    assert seen[2] == {"connect": 0.1, "read": 5.0, "write": 5.0, "pool": 5.0}
    assert seen[3] == seen[4] == {"connect": 0.05, "read": 0.05, "write": 0.05, "pool": 0.05}


@pytest.mark.parametrize("error, reason", [(RuntimeError, "error"), (KeyboardInterrupt, "cancelled")])
def test_a_first_send_that_raises_gives_back_what_it_holds_and_leaves_a_failed_row(error, reason):
    def handler(request):
        if request.url.path == "/boom":
            raise error("in the transport")
        return httpx.Response(200, json={"ok": True})
    bulkhead, breaker = Bulkhead(1), CircuitBreaker(consecutive_failures=1)
    with no_leaks(), _mock(handler) as http:
        client = ResilientClient("http://127.0.0.1:1", http=http, bulkhead=bulkhead, breaker=breaker)
        with pytest.raises(error):
            client.get("/boom")
        after = client.get("/ok")
    assert after.ok and bulkhead.in_use == 0 and breaker.state(time.monotonic()) == "closed"
    assert breaker._permits.current == 0                # the permit was cancelled, not left outstanding
    assert client.recording.results().reasons() == Counter({reason: 1})


def test_a_path_httpx_cannot_parse_raises_as_the_send_does_and_its_row_is_an_error():
    with no_leaks(), _mock(lambda request: httpx.Response(200)) as http:
        client = ResilientClient("http://127.0.0.1:1", http=http)
        for _ in range(2):
            with pytest.raises(httpx.InvalidURL):
                client.get("/a\x00b")
    assert client.recording.results().reasons() == Counter({"error": 2})


def test_rows_finished_from_many_threads_across_batches_are_all_kept_each_threads_in_its_order():
    from resilience_sim.live.recording import BATCH
    recording, threads, each = LiveRecording(), 4, BATCH // 2 + 100   # two batches and a rest

    def finish_rows(t):
        for i in range(each):
            recording.finish(recording.start(f"t{t}", key=i), Outcome.OK, "", "x")
    with no_leaks():
        workers = [threading.Thread(target=finish_rows, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(30)
    results = recording.results()
    assert len(recording) == len(results) == threads * each and recording.in_flight == 0
    for t in range(threads):
        assert list(results.only(f"t{t}").key_values) == list(range(each))


# --- misuse ----------------------------------------------------------------------------------------
def test_a_policy_driven_by_another_client_is_refused(server):
    breaker = CircuitBreaker(consecutive_failures=3)
    with ResilientClient(server.url, breaker=breaker):
        with pytest.raises(ValueError, match="breaker"):
            ResilientClient(server.url, breaker=breaker)


@pytest.mark.parametrize("kwargs, name", [
    ({"base_url": "127.0.0.1:80"}, "base_url"), ({"deadline": -1}, "deadline"), ({"timeout": 0}, "timeout"),
    ({"retry": 3}, "retry"), ({"breaker": object()}, "breaker"), ({"budget": 0.1}, "budget"),
    ({"bulkhead": 4}, "bulkhead"), ({"fallback": 3}, "fallback"), ({"seed": -1}, "seed"),
    ({"http": httpx.AsyncClient}, "http"), ({"name": ""}, "name"), ({"clock": 3}, "clock"),
    ({"fallback": FallbackChain(["p", "popular"])}, "fallback"), ({"recording": []}, "recording"),
])
def test_bad_parameters_are_refused_by_name(kwargs, name):
    kwargs = {"base_url": "http://127.0.0.1:1", **kwargs}
    with pytest.raises(ValueError, match=name):
        ResilientClient(**kwargs)


def test_bad_requests_are_refused_by_name_and_a_closed_client_says_so():
    with no_leaks():
        client = ResilientClient("http://127.0.0.1:1")
        for call, name in [(lambda: client.request("FETCH", "/"), "method"), (lambda: client.get("items"), "path"),
                           (lambda: client.post("/o", json={}, content=b"x"), "json and content"),
                           (lambda: client.post("/o", idempotency_key=""), "idempotency_key"),
                           (lambda: client.get("/", route=""), "route"), (lambda: client.get("/", key=[1]), "key")]:
            with pytest.raises(ValueError, match=name):
                call()
        client.close()
        with pytest.raises(RuntimeError, match="closed"):
            client.get("/")
        client.close()
