"""`make bench`: the speed and size targets. Prints each figure and exits non-zero if one is missed.

* resilience_sim's M/M/1 (200,000 requests) is at most as slow as a minimal hand-written simpy model,
  with and without a cache in front that every request misses (the cache's decisions on every request),
  shown beside the floor (a bare heapq event loop) and Ciw (if installed), with each engine's events
  per request; every engine's mean response time is within 5% of the theory, 1/(mu - lambda);
* each dashboard's re-run and redraw has a median under 100 ms at its defaults and under 150 ms with
  each control at each of its ends (one control at a time, the others at their defaults), in every
  notebook;
* a 1,000,000-request run's records stay compact (peak memory reported);
* the live part (``live_proxy.py``, ``live_client.py``): the Toxiproxy-compatible proxy adds at most
  1 ms to the median of a small loopback request, the policies of ``ResilientClient`` at most 5%, and
  the load generator holds its offered rate within 5% up to the rate it reports as its limit;
* the capstone (``capstone.py``): one 24-hour chaos day of the reference shop runs and is scored in at
  most 15 s.

Each notebook's dashboards are timed in a fresh Python process of their own (``run.py --dashboards
10_caching``), as a learner meets them: one notebook per kernel. In one process for all, every dashboard
timed later carries the earlier ones' objects: ipywidgets keeps every widget alive, so every
dashboard's figure too, and a full garbage collection over that heap (150,000 objects by notebook
06, 220,000 by 16) takes 90-150 ms whenever one falls inside a timed re-run; a dashboard's figures
then depended on the order the others ran in. Most of a re-run is the simulation and matplotlib's
drawing, which the machine's load slows in either way: on a 2-core machine shared with other work,
run the bench when it is quiet (``uptime``) and read the figures with the load beside them.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import capstone  # noqa: E402  (bench/ is not a package)
import live_client  # noqa: E402
import live_proxy  # noqa: E402
import mm1  # noqa: E402
import sweeps  # noqa: E402

MAX_RATIO = 1.0
MAX_MEAN_ERROR = 0.05                  # relative, against M/M/1 theory
MAX_DASHBOARD_MS = 200.0
#: From this notebook on, the tighter targets below hold: every notebook (issue 9 asked it of Parts I-II too).
STRICT_FROM = 0
MAX_DEFAULT_MS, MAX_EXTREME_MS = 100.0, 150.0
MAX_MEMORY_GROWTH_MB = 300.0


def bench_simulator(n: int = 200_000) -> bool:
    rows = mm1.compare(n=n, rounds=3)
    print(mm1.table(rows, n))
    seconds = {r.engine: r.seconds for r in rows}
    fast = True
    for engine in ("resilience_sim", "+ cache"):
        ratio = seconds[engine] / seconds["plain simpy"]
        fast &= ratio <= MAX_RATIO
        print(f"{engine} / plain simpy: {ratio:.2f} (target <= {MAX_RATIO}) {'ok' if ratio <= MAX_RATIO else 'MISSED'}")
    errors = {r.engine: r.mean / mm1.THEORY_MEAN - 1 for r in rows}
    agree = all(abs(e) <= MAX_MEAN_ERROR for e in errors.values())
    print(f"mean response vs theory: {', '.join(f'{name} {e:+.1%}' for name, e in errors.items())} "
          f"(target within {MAX_MEAN_ERROR:.0%}) {'ok' if agree else 'MISSED'}")
    return fast and agree


def _median_rerun_ms(dash, repeats: int) -> float:
    from resilience_sim.lessons import clear_run_caches
    times = []
    for _ in range(repeats):
        clear_run_caches()                    # the lessons' own memo too: a setting never seen before
        t0 = time.perf_counter()
        dash.rerun()
        times.append((time.perf_counter() - t0) * 1000)
    if "Could not run" in dash.text.value:
        raise RuntimeError(f"the dashboard refused its settings {dash.params}: {dash.text.value}")
    return statistics.median(times)


def _ends(spec):
    """The settings a learner can push a control to: a slider's two ends, each option of a choice."""
    if hasattr(spec, "low"):
        return [("min", spec.low), ("max", spec.high)]
    return [(text, value) for text, value in spec.options if value != spec.default]


def time_notebook(notebook: str, repeats: int = 9, end_repeats: int = 5) -> dict:
    """In this process: ``{key: {"median": ms, "ends": [[control, end, repr(value), ms], ...]}}`` for
    every dashboard of ``notebook`` (a key's part before the slash, e.g. "10_caching")."""
    from resilience_sim.lessons import all_dashboards
    timed = {}
    for key, factory in all_dashboards().items():
        if key.split("/")[0] != notebook:
            continue
        dash = factory()                      # builds and draws once: the cold start is not timed
        ends = []
        median = _median_rerun_ms(dash, repeats)
        for spec in dash.sliders_spec:
            for end, value in _ends(spec):
                dash.set(**{spec.name: value})
                ends.append([spec.name, end, repr(value), _median_rerun_ms(dash, end_repeats)])
            dash.set(**{spec.name: spec.default})
        timed[key] = {"median": median, "ends": ends}
    return timed


def _in_fresh_process(notebook: str) -> dict:
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--dashboards", notebook],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"timing {notebook}'s dashboards failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])     # the last line: whatever a lesson printed before


def bench_dashboards() -> bool:
    from resilience_sim.lessons import all_dashboards
    ok = True
    keys = list(all_dashboards())
    if not keys:
        print("dashboards: none registered")
        return False
    for notebook in dict.fromkeys(key.split("/")[0] for key in keys):
        for key, timed in _in_fresh_process(notebook).items():
            strict = int(key[:2]) >= STRICT_FROM
            median, target = timed["median"], MAX_DEFAULT_MS if strict else MAX_DASHBOARD_MS
            hit = median < target
            ok &= hit
            print(f"dashboard {key}: median re-run and redraw {median:.0f} ms "
                  f"(target < {target:.0f}) {'ok' if hit else 'MISSED'}")
            worst = (0.0, "")
            for name, end, value, ms in timed["ends"]:
                worst = max(worst, (ms, f"{name} {end}"))
                if strict and ms >= MAX_EXTREME_MS:
                    ok = False
                    print(f"  {name} at {end} ({value}): {ms:.0f} ms (target < {MAX_EXTREME_MS:.0f}) MISSED")
            verdict = ("ok" if worst[0] < MAX_EXTREME_MS else "MISSED") if strict else "reported"
            print(f"  slowest end: {worst[1]} {worst[0]:.0f} ms (target < {MAX_EXTREME_MS:.0f}) {verdict}")
    return ok


def bench_memory(n: int = 1_000_000) -> bool:
    out = subprocess.run([sys.executable, str(HERE / "memory.py"), str(n)], check=True,
                         capture_output=True, text=True).stdout.split()
    count, records_mb, before_mb, peak_mb = int(out[0]), float(out[1]), float(out[2]), float(out[3])
    growth = peak_mb - before_mb
    ok = growth <= MAX_MEMORY_GROWTH_MB
    print(f"{count:,} requests: records {records_mb:.1f} MB, peak RSS {peak_mb:.0f} MB "
          f"({growth:.0f} MB over the {before_mb:.0f} MB at start; target <= {MAX_MEMORY_GROWTH_MB:.0f}) "
          f"{'ok' if ok else 'MISSED'}")
    return ok


def main() -> int:
    results = [bench_simulator(), bench_dashboards(), bench_memory(), sweeps.main(),
               live_proxy.main() == 0, live_client.main() == 0, capstone.main()]
    if all(results):
        print("all targets met")
        return 0
    print("some targets MISSED")
    return 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--dashboards"] and len(sys.argv) == 3:
        print(json.dumps(time_notebook(sys.argv[2])))
    else:
        raise SystemExit(main())
