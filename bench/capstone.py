"""`python bench/capstone.py`: the capstone's chaos day, timed. Target: one 24-hour day of the
reference configuration (the heaviest: cache, fallbacks, saga, outbox relay, job workers) runs and is
scored in at most 15 s on 2 cores; the baseline's day is timed beside it.

Each day runs ``ROUNDS`` times and the best round counts (whatever else loads the machine slows every
round alike); the CPU time of the process is reported too, which a busy machine does not inflate.
``main()`` returns True when the target is met, for ``bench/run.py`` to wire in.
"""
from __future__ import annotations

import sys
import time

TARGET, ROUNDS = 15.0, 2


def time_day(config, seed: int) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, score) of one chaos day of ``config``."""
    from resilience_sim.lessons.capstone import play_day
    t0, c0 = time.perf_counter(), time.process_time()
    score = play_day(config, seed)
    return time.perf_counter() - t0, time.process_time() - c0, score


def main() -> bool:
    from resilience_sim.lessons.capstone import BASELINE, REFERENCE, VISIBLE_SEED
    ok = True
    print(f"capstone chaos day (seed {VISIBLE_SEED}, 24 h), best of {ROUNDS}:")
    for config in (BASELINE, REFERENCE):
        best = min((time_day(config, VISIBLE_SEED) for _ in range(ROUNDS)), key=lambda r: r[0])
        wall, cpu, score = best
        requests = len(score.run.results)
        hit = wall <= TARGET
        ok &= hit or config is BASELINE
        print(f"  {config.name:10s} {wall:6.2f} s wall, {cpu:6.2f} s CPU, {requests:,} requests "
              f"({requests / wall:,.0f}/s); target <= {TARGET:g} s {'ok' if hit else 'MISSED'}")
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
