"""Live client speed: what the policies add to a loopback call, and how closely the load generator
holds its offered rate.

* :func:`policy_overhead`: the median of a small loopback GET with plain httpx, and through a
  ResilientClient with deadline, retry, budget, breaker and per-attempt timeout over the same httpx
  client (one reused connection). Target: the policies add at most 5% to the median, judged on the
  difference of the two medians over interleaved runs: request by request, plain and resilient
  alternate (so a change in the machine's load falls on both alike), in many rounds, which of the two
  goes first swapping from round to round (on a busy machine the position in a pair matters). Beside
  it: the median of the paired differences, and the median and range of the rounds' own overheads.
* :func:`load_accuracy`: offered against achieved rate at increasing rates, for the generator alone
  (each call waits 2 ms, off the CPU, as a call waiting on a remote server does) and for a loopback
  GET served by a child process (which shares the two cores with the generator). The
  limit is the highest rate held within 5%: "the load generator holds its offered rate within 5% up
  to the rate the bench reports as its limit".

``python bench/live_client.py`` prints both with verdicts (exit status 1 if a target is missed).
"""
from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402

from resilience_sim.core.profiles import Constant  # noqa: E402
from resilience_sim.live.client import ResilientClient  # noqa: E402
from resilience_sim.live.load import run_load  # noqa: E402
from resilience_sim.live.server import Handler, LoopbackServer  # noqa: E402
from resilience_sim.policies import (CircuitBreaker, FullJitter, RetryBudget,  # noqa: E402
                                     RetryPolicy)

MAX_OVERHEAD = 0.05          # policies add at most 5% to the median
RATE_TOLERANCE = 0.05        # achieved within 5% of offered
MIN_GENERATOR_LIMIT = 500.0  # requests per second the generator alone must hold, at the least


class Small(Handler):
    """``/ok`` a small JSON answer; ``/accepted`` how many TCP connections the server has accepted."""
    def do_GET(self):
        if self.path == "/accepted":
            return self.send_json(200, str(self.server.owner.accepted).encode())
        self.send_json(200, b'{"ok":true}')


_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from live_client import Small
from resilience_sim.live.server import LoopbackServer
with LoopbackServer(Small, max_connections=256) as server:
    print(server.port, flush=True)
    sys.stdin.read()                     # until the parent closes our stdin
"""


@contextlib.contextmanager
def served(in_process: bool):
    """The small server's URL: in this process (its threads share our GIL) or in a child process (as
    a real service is); the child stops when we close its stdin, and is killed if it does not."""
    if in_process:
        with LoopbackServer(Small, max_connections=256) as server:
            yield server.url
        return
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(HERE)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        yield f"http://127.0.0.1:{int(child.stdout.readline())}"
    finally:
        child.stdin.close()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)
        child.stdout.close()


def _timed(get) -> float:
    t0 = time.perf_counter()
    get()
    return time.perf_counter() - t0


def policy_overhead(requests: int = 4000, *, rounds: int = 20, in_process: bool = False) -> dict:
    """Median seconds of a small loopback GET, plain and through the policies, over one connection:
    ``requests`` pairs in ``rounds`` rounds, interleaved (see the module docstring). ``overhead``
    (the target's measure): the difference of the medians over the plain median; ``paired``: the
    median of the pairs' differences, in seconds; ``rounds_overhead``: (median, lowest, highest) of
    the rounds' own overheads."""
    per_round = max(1, requests // rounds)
    with served(in_process) as base, httpx.Client(timeout=5.0) as http:
        url = base + "/ok"
        client = ResilientClient(base, http=http, deadline=2.0, timeout=1.0,
                                 retry=RetryPolicy(3, FullJitter(0.01, 0.5)), budget=RetryBudget(0.1),
                                 breaker=CircuitBreaker(consecutive_failures=5, open_for=5.0))

        def plain():
            http.get(url)

        def resilient():
            client.get("/ok")

        for _ in range(200):                            # warm both paths up
            plain(), resilient()
        plain_times, ours, round_overheads = [], [], []
        for n in range(rounds):
            first, second = (plain, resilient) if n % 2 == 0 else (resilient, plain)
            a, b = [], []
            for _ in range(per_round):
                a.append(_timed(first))
                b.append(_timed(second))
            p_round, r_round = (a, b) if first is plain else (b, a)
            plain_times += p_round
            ours += r_round
            round_overheads.append(statistics.median(r_round) / statistics.median(p_round) - 1)
        assert client.stats().attempts == rounds * per_round + 200
        accepted = http.get(base + "/accepted").json()
        assert accepted == 1, f"one reused connection expected, the server accepted {accepted}"
    p, r = statistics.median(plain_times), statistics.median(ours)
    paired = statistics.median(b - a for a, b in zip(plain_times, ours))
    return {"plain": p, "resilient": r, "overhead": r / p - 1, "paired": paired,
            "rounds_overhead": (statistics.median(round_overheads), min(round_overheads), max(round_overheads)),
            "requests": rounds * per_round, "rounds": rounds}


def _accuracy(call, rates, duration, workers) -> list[dict]:
    rows = []
    for rate in rates:
        report = run_load(call, Constant(rate), duration=duration, max_requests=int(rate * duration * 3),
                          workers=workers, seed=1, grace=2.0)
        error = report.achieved_rate / report.offered_rate - 1
        rows.append({"rate": rate, "offered": report.offered_rate, "achieved": report.achieved_rate,
                     "error": error, "overload": report.overload, "lag_p99": report.lag["p99"]})
    return rows


def load_accuracy(rates=(250, 500, 1000, 2000, 4000, 8000, 16000), duration: float = 2.0) -> dict:
    """Offered against achieved rate at each of ``rates``: the generator alone, and a loopback GET."""
    alone = _accuracy(lambda: time.sleep(0.002), rates, duration, workers=64)
    with served(in_process=False) as base, \
            httpx.Client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)) as http:
        url = base + "/ok"
        loopback = _accuracy(lambda: http.get(url), rates, duration, workers=64)

    def limit(rows):
        held = [r["rate"] for r in rows if abs(r["error"]) <= RATE_TOLERANCE]
        best = 0.0
        for r in rows:                                  # the highest rate below which every rate held
            if r["rate"] not in held:
                break
            best = r["rate"]
        return best
    return {"alone": alone, "loopback": loopback, "limit_alone": limit(alone), "limit_loopback": limit(loopback)}


def _table(title, rows) -> str:
    lines = [title, f"{'rate/s':>8} {'offered':>9} {'achieved':>9} {'error':>7} {'overload':>8} {'lag p99':>9}"]
    for r in rows:
        lines.append(f"{r['rate']:>8g} {r['offered']:>9.1f} {r['achieved']:>9.1f} {r['error']:>+7.1%} "
                     f"{r['overload']:>8} {r['lag_p99'] * 1e3:>7.1f}ms")
    return "\n".join(lines)


def main() -> int:
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.2f} at start")
    fast = True
    for in_process in (False, True):
        o = policy_overhead(in_process=in_process)
        where = "server in this process (shares the GIL)" if in_process else "server in its own process"
        ok = o["overhead"] <= MAX_OVERHEAD
        if not in_process:
            fast = ok                                   # the target: a service is another process
        mid, low, high = o["rounds_overhead"]
        print(f"loopback GET, {where}, {o['requests']} interleaved pairs in {o['rounds']} rounds: median "
              f"plain httpx {o['plain'] * 1e6:.0f} us, ResilientClient (deadline, retry, budget, breaker, "
              f"timeout) {o['resilient'] * 1e6:.0f} us; difference of the medians {o['overhead']:+.1%} "
              f"(the target's measure: <= {MAX_OVERHEAD:.0%}) {'ok' if ok else 'MISSED'}"
              f"{'' if not in_process else ' (for comparison)'}; median of the paired differences "
              f"{o['paired'] * 1e6:+.0f} us ({o['paired'] / o['plain']:+.1%}); rounds' overheads: median "
              f"{mid:+.1%}, from {low:+.1%} to {high:+.1%}")
    a = load_accuracy()
    print(_table("generator alone (each call waits 2 ms):", a["alone"]))
    print(_table("loopback GET, server in its own process:", a["loopback"]))
    held = a["limit_alone"] >= MIN_GENERATOR_LIMIT
    print(f"the load generator holds its offered rate within {RATE_TOLERANCE:.0%} up to {a['limit_alone']:g}/s "
          f"alone (target >= {MIN_GENERATOR_LIMIT:g}/s) {'ok' if held else 'MISSED'}; "
          f"up to {a['limit_loopback']:g}/s against a loopback server (the server's limit on 2 cores)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0 if fast and held else 1


if __name__ == "__main__":
    sys.exit(main())
