"""Peak memory of a 1,000,000-request run (run in a fresh process so the reading is its own)."""
from __future__ import annotations

import resource
import sys

from resilience_sim import Exponential, OpenLoop, Service, World


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB.

    Linux's VmHWM starts afresh with this program; ru_maxrss would carry over the peak of the
    benchmark process that started it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux, bytes on macOS


def main(n: int) -> None:
    before = rss_mb()
    world = World(seed=1)
    server = Service(world, "server", capacity=1, latency=Exponential(0.005))
    OpenLoop(world, server, 100, requests=n)
    results = world.run(until=n / 100 * 2)
    assert len(results) == n
    print(f"{len(results)} {results.record_bytes / 1e6:.1f} {before:.1f} {rss_mb():.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]))
