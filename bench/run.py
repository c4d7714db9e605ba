"""`make bench`: the speed and size targets. Prints each figure and exits non-zero if one is missed.

* resilience_sim's M/M/1 (200,000 requests) is at most as slow as a minimal hand-written simpy model,
  shown beside the floor (a bare heapq event loop) and Ciw (if installed), with each engine's events
  per request; every engine's mean response time is within 5% of the theory, 1/(mu - lambda);
* each dashboard's re-run and redraw at its default settings has a median under 200 ms;
* a 1,000,000-request run's records stay compact (peak memory reported).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import mm1  # noqa: E402  (bench/ is not a package)

MAX_RATIO = 1.0
MAX_MEAN_ERROR = 0.05                  # relative, against M/M/1 theory
MAX_DASHBOARD_MS = 200.0
MAX_MEMORY_GROWTH_MB = 300.0


def bench_simulator(n: int = 200_000) -> bool:
    rows = mm1.compare(n=n, rounds=3)
    print(mm1.table(rows, n))
    seconds = {r.engine: r.seconds for r in rows}
    ratio = seconds["resilience_sim"] / seconds["plain simpy"]
    fast = ratio <= MAX_RATIO
    print(f"resilience_sim / plain simpy: {ratio:.2f} (target <= {MAX_RATIO}) {'ok' if fast else 'MISSED'}")
    errors = {r.engine: r.mean / mm1.THEORY_MEAN - 1 for r in rows}
    agree = all(abs(e) <= MAX_MEAN_ERROR for e in errors.values())
    print(f"mean response vs theory: {', '.join(f'{name} {e:+.1%}' for name, e in errors.items())} "
          f"(target within {MAX_MEAN_ERROR:.0%}) {'ok' if agree else 'MISSED'}")
    return fast and agree


def bench_dashboards(repeats: int = 9) -> bool:
    from resilience_sim.lessons import all_dashboards
    ok = True
    factories = all_dashboards()
    if not factories:
        print("dashboards: none registered")
        return False
    for key, factory in factories.items():
        dash = factory()                      # builds and draws once: the cold start is not timed
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            dash.rerun()
            times.append((time.perf_counter() - t0) * 1000)
        median = statistics.median(times)
        hit = median < MAX_DASHBOARD_MS
        ok &= hit
        print(f"dashboard {key}: median re-run and redraw {median:.0f} ms "
              f"(target < {MAX_DASHBOARD_MS:.0f}) {'ok' if hit else 'MISSED'}")
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
    results = [bench_simulator(), bench_dashboards(), bench_memory()]
    if all(results):
        print("all targets met")
        return 0
    print("some targets MISSED")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
