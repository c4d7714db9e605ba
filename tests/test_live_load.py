"""The open-loop load generator: the simulator's profiles and arrivals, bounded in count and time, one
row per arrival in the same Results the simulator produces."""
import random
import threading
import time
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest

from live_support import no_leaks
from resilience_sim.core.profiles import Constant, Ramp, Spike, Step
from resilience_sim.core.reasons import Outcome
from resilience_sim.live.client import ResilientClient
from resilience_sim.live.load import arrival_times, run_load
from resilience_sim.live.recording import LiveRecording
from resilience_sim.live.server import Handler, LoopbackServer
from resilience_sim.policies import RetryPolicy, Constant as ConstantBackoff


class Service(Handler):
    def do_GET(self):
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/hang" and self.server.stopping.wait(10):
            return
        if url.path == "/slow":
            self.server.stopping.wait(float(q.get("s", 0.2)))
        if url.path == "/status":
            return self.send_json(int(q["code"]), b'{"error":"scripted"}')
        self.send_json(200, b'{"ok":true}')


@pytest.fixture
def server():
    with no_leaks():
        with LoopbackServer(Service) as s:
            yield s


# --- arrivals -----------------------------------------------------------------------------------
@pytest.mark.parametrize("profile, expected", [
    (Constant(100), 100 * 100), (Ramp(0, 200, 100), 100 * 100), (Step(50, 150, at=50), 100 * 100),
    (Spike(50, 550, at=40, duration=20), 50 * 80 + 550 * 20)])
def test_arrivals_follow_the_profile_as_the_simulators_do(profile, expected):
    times = arrival_times(profile, duration=100.0, max_requests=10**6, rng=random.Random(1))
    assert abs(len(times) - expected) < 4 * expected ** 0.5
    assert times == sorted(times) and 0 < times[0] and times[-1] < 100


def test_arrivals_are_seeded_and_bounded_in_count():
    draw = lambda seed: arrival_times(Constant(50), duration=10.0, max_requests=100, rng=random.Random(seed))
    assert draw(3) == draw(3) != draw(4) and len(draw(3)) == 100


def test_a_spike_shows_in_the_arrivals_of_its_window():
    profile = Spike(20, 400, at=2.0, duration=1.0)
    times = np.array(arrival_times(profile, duration=5.0, max_requests=10**5, rng=random.Random(2)))
    during = np.count_nonzero((times >= 2) & (times < 3))
    before = np.count_nonzero(times < 2) / 2
    assert during > 10 * before


# --- a run ----------------------------------------------------------------------------------------
def test_the_generator_holds_a_modest_rate_and_every_arrival_is_a_row(server):
    with ResilientClient(server.url, deadline=1.0) as client:
        report = run_load(lambda: client.get("/ok"), Constant(100), duration=2.0, max_requests=1000, seed=1,
                          workers=32, clients=[client])
    assert 150 < report.planned < 250 and report.unfinished == 0
    assert report.overload <= 5                        # a loaded machine may stall every worker briefly
    assert report.achieved_rate == pytest.approx(report.offered_rate, rel=0.10)
    results = report.results
    assert len(results) == report.planned == report.started + report.overload
    assert results.request_availability() == pytest.approx(1.0, abs=0.03)
    assert results.client("client").requests == report.started and results.routes == ("load",)
    assert results.arrival_rate() == pytest.approx(report.planned / results.duration)
    assert report.lag["p50"] < 0.02


def test_it_stops_at_max_requests(server):
    with httpx.Client() as http:
        started = time.monotonic()
        report = run_load(lambda: http.get(server.url + "/ok"), 200, duration=30.0, max_requests=20)
        elapsed = time.monotonic() - started
    assert report.planned == report.started == len(report.results) == 20 and elapsed < 2.0
    assert report.results.answered_by() == Counter({server.url.split("://")[1]: 20})


def test_it_stops_at_duration_and_calls_still_running_are_unfinished(server):
    with httpx.Client(timeout=10) as http:
        started = time.monotonic()
        report = run_load(lambda: http.get(server.url + "/hang"), Constant(20), duration=0.5, max_requests=100,
                          workers=4, grace=0.2)
        elapsed = time.monotonic() - started
        server.stop()                                   # wakes the hung handlers: the workers end
    assert elapsed < 0.5 + 0.2 + 0.3
    assert report.unfinished == report.started == 4 and report.overload == report.planned - 4
    assert report.results.reasons() == Counter({"unfinished": 4, "overload": report.planned - 4})


def test_a_busy_pool_records_arrivals_as_overload_rejections(server):
    with httpx.Client() as http:
        report = run_load(lambda: http.get(server.url + "/slow?s=0.3"), Constant(40), duration=1.0,
                          max_requests=200, workers=2, grace=1.0)
    results = report.results
    assert report.overload > 10 and results.outcome_counts()["rejected"] == report.overload
    assert results.failed_by() == Counter({"load": report.overload})
    assert report.started + report.overload == report.planned


def test_a_spike_test_overloads_only_during_the_spike(server):
    with ResilientClient(server.url, deadline=1.0) as client:
        report = run_load(lambda: client.get("/slow?s=0.05"), Spike(10, 300, at=0.5, duration=0.4), duration=1.5,
                          max_requests=1000, workers=4, seed=3)
    rows = [report.results.row(i) for i in range(len(report.results))]
    overloaded = [r["start"] for r in rows if r["reason"] == "overload"]
    assert len(overloaded) > 20 and all(0.5 <= t < 0.9 + 0.06 for t in overloaded)


def test_rows_read_plain_responses_and_errors_and_keys_come_from_their_own_stream(server):
    seen = []
    with httpx.Client() as http:
        def call(key):
            seen.append(key)
            if key == 0:
                raise httpx.ConnectError("refused")
            if key == 1:
                raise RuntimeError("a bug in the call")
            return http.get(server.url + ("/status?code=503" if key == 2 else "/ok"))
        report = run_load(call, Constant(50), duration=1.0, max_requests=30, key=lambda rng: rng.randrange(4),
                          workers=4, seed=5)
    rows = [report.results.row(i) for i in range(len(report.results))]
    called = [r for r in rows if r["reason"] != "overload"]
    expected = {0: "down", 1: "error", 2: "unavailable", 3: ""}
    assert len(set(seen)) == 4 and sorted(r["key"] for r in called) == sorted(seen)
    assert all(r["reason"] == expected[r["key"]] for r in called)
    assert {r["outcome"] for r in called if r["key"] < 3} == {"failed"}


def test_a_reply_gives_its_own_outcome_attempts_and_answerer(server):
    with ResilientClient(server.url, retry=RetryPolicy(3, ConstantBackoff(0.0))) as client:
        report = run_load(lambda: client.get("/status?code=500"), Constant(50), duration=0.5, max_requests=5)
    row = report.results.row(0)
    assert (row["outcome"], row["reason"], row["attempts"]) == ("failed", "error", 3)
    assert row["answered_by"] == server.url.split("://")[1]


# --- misuse -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, name", [
    ({"duration": 0}, "duration"), ({"duration": 10**6}, "duration"), ({"max_requests": 0}, "max_requests"),
    ({"workers": 0}, "workers"), ({"profile": "fast"}, "profile"), ({"call": 3}, "call"), ({"seed": -1}, "seed"),
    ({"grace": -1}, "grace"), ({"route": ""}, "route"), ({"key": [1]}, "key"), ({"recording": {}}, "recording"),
    ({"profile": Constant(10**5), "duration": 3600}, "profile and duration"),
])
def test_bad_parameters_are_refused_by_name(kwargs, name):
    kwargs = {"call": lambda: None, "profile": Constant(10), "duration": 1.0, "max_requests": 10, **kwargs}
    with pytest.raises(ValueError, match=name):
        run_load(kwargs.pop("call"), kwargs.pop("profile"), **kwargs)


def test_a_recording_a_client_writes_to_is_refused_so_no_row_is_counted_twice():
    with no_leaks():
        with ResilientClient("http://127.0.0.1:1", name="shop") as client:
            with pytest.raises(ValueError, match="shop.*of its own"):
                run_load(lambda: None, Constant(10), duration=0.1, max_requests=1, recording=client.recording)
