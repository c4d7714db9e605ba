"""Peak memory of a 1,000,000-request run (run in a fresh process so the reading is its own)."""
from __future__ import annotations

import resource
import sys

from resilience_sim import Exponential, OpenLoop, Service, World


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
