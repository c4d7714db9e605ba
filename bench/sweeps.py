"""`make bench` (or `python bench/sweeps.py`): one sweep of 200 runs (notebook 08's edge scenario over
load and trigger, 10 seeds a point) timed in this process, on a 2-worker process pool and on a
2-worker local Dask cluster, in the same run, interleaved round by round (the best round counts),
so that whatever else loads the machine loads all three alike.

Targets: on 2 cores, the process pool and Dask are each at least 1.6x faster than in this process,
and all three give the same rows. Reported too: the overhead per run, the wall time each worker
spends beyond the runs' own work, (seconds x workers - the runs' seconds) / runs, and the one-off
cost of starting the pool or the cluster (not part of the sweep's time).
"""
from __future__ import annotations

import importlib
import logging
import os
import sys
import time

#: The sweep: 4 loads x 5 triggers x 10 seeds = 200 runs of ~20-80 ms each.
GRID = {"load": [0.5, 0.6, 0.65, 0.7], "trigger": [1.0, 2.0, 3.0, 4.0, 6.0]}
SEEDS, WORKERS, MIN_SPEEDUP = 10, 2, 1.6
SCENARIO_MODULE = "resilience_sim.lessons.metastable"


def _time(executor, workers: int):
    from resilience_sim.lessons.metastable import edge_run
    from resilience_sim.sweeps import sweep
    t0 = time.perf_counter()
    table = sweep(edge_run, GRID, seeds=SEEDS, executor=executor, progress=False)
    seconds = time.perf_counter() - t0
    return seconds, table, (seconds * workers - table.run_seconds) / len(table)


def compare(rounds: int = 3) -> list[dict]:
    """Time the sweep ``rounds`` times on each executor; rows: name, seconds (best round), overhead
    per run (s), start-up (s), and whether its table equals the in-process one."""
    import distributed
    from resilience_sim.sweeps import process_pool
    importlib.import_module(SCENARIO_MODULE)

    t0 = time.perf_counter()
    pool = process_pool(WORKERS)
    list(pool.map(exec, [f"import {SCENARIO_MODULE}"] * WORKERS))           # workers up and warm
    pool_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    client = distributed.Client(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None,
                                silence_logs=logging.ERROR)
    client.run(exec, f"import {SCENARIO_MODULE}")
    dask_start = time.perf_counter() - t0
    runs = {"in-process": (None, 1, 0.0), f"process pool ({WORKERS})": (pool, WORKERS, pool_start),
            f"Dask local cluster ({WORKERS})": (client.get_executor(), WORKERS, dask_start)}
    best: dict = {}
    try:
        for _ in range(rounds):
            for name, (executor, workers, _) in runs.items():
                seconds, table, overhead = _time(executor, workers)
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, table, overhead)
    finally:
        pool.shutdown()
        client.close()
    reference = best["in-process"][1]
    return [dict(name=name, seconds=best[name][0], overhead=best[name][2], start=start,
                 same=best[name][1] == reference, runs=len(best[name][1]))
            for name, (_, _, start) in runs.items()]


def main() -> bool:
    cores = os.cpu_count() or 1
    rows = compare()
    base = rows[0]["seconds"]
    print(f"sweep of {rows[0]['runs']} runs (notebook 08's edge run, {len(GRID['load'])} loads x "
          f"{len(GRID['trigger'])} triggers x {SEEDS} seeds) on {cores} cores:")
    ok = True
    for row in rows:
        speedup = base / row["seconds"]
        line = (f"  {row['name']:26s} {row['seconds']:6.2f} s  x{speedup:4.2f}  overhead "
                f"{row['overhead'] * 1000:5.1f} ms/run")
        if row is not rows[0]:
            hit = speedup >= MIN_SPEEDUP and row["same"]
            ok &= hit
            line += (f"  (start-up {row['start']:.1f} s, not timed; target >= x{MIN_SPEEDUP}, same rows: "
                     f"{'yes' if row['same'] else 'NO'}) {'ok' if hit else 'MISSED'}")
        print(line)
    if cores < WORKERS:
        print(f"  only {cores} core(s): the speed-up target needs {WORKERS}; reported, not judged")
        return all(r["same"] for r in rows)
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
