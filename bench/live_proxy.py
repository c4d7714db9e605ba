"""The proxy's overhead: what the Toxiproxy-compatible proxy adds to a small HTTP request on loopback.

An upstream :class:`~resilience_sim.live.server.LoopbackServer` answers ``GET /`` with a tiny JSON
body. Two keep-alive ``httpx.Client`` pools ask it ``requests`` times each, one directly and one
through a proxy with no toxic, alternating request by request so both see the same machine load,
after a warm-up of both. Target: the proxy adds at most 1 ms to the median.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resilience_sim.core import validate  # noqa: E402
from resilience_sim.live.proxy import ToxiproxyClient, ToxiproxyServer  # noqa: E402
from resilience_sim.live.server import Handler, LoopbackServer  # noqa: E402

TARGET_ADDED_MEDIAN_MS = 1.0
WARM_UP = 200


class Tiny(Handler):
    def do_GET(self):
        self.send_json(200, b'{"ok":true}')


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def proxy_overhead(requests: int = 2000) -> dict:
    """Median and p99 (ms) of a small GET directly and through the proxy, and the median added."""
    requests = validate.integer("requests", requests, low=10)
    direct_ms, proxied_ms = [], []
    with LoopbackServer(Tiny, name="bench-upstream") as upstream, ToxiproxyServer() as toxiproxy, \
            ToxiproxyClient(toxiproxy.api_url) as api:
        proxy = api.create("bench", upstream=f"127.0.0.1:{upstream.port}")
        urls = (f"{upstream.url}/", f"http://127.0.0.1:{proxy.port}/")
        with httpx.Client() as direct, httpx.Client() as proxied:
            pairs = ((direct, urls[0], direct_ms), (proxied, urls[1], proxied_ms))
            for _ in range(WARM_UP):
                for client, url, _times in pairs:
                    client.get(url)
            for _ in range(requests):
                for client, url, times in pairs:
                    started = time.perf_counter()
                    client.get(url).raise_for_status()
                    times.append((time.perf_counter() - started) * 1000)
    direct_median, proxied_median = statistics.median(direct_ms), statistics.median(proxied_ms)
    return {"requests": requests,
            "direct_median_ms": direct_median, "direct_p99_ms": _percentile(direct_ms, 0.99),
            "proxy_median_ms": proxied_median, "proxy_p99_ms": _percentile(proxied_ms, 0.99),
            "added_median_ms": proxied_median - direct_median}


def main() -> int:
    result = proxy_overhead()
    print(f"small GET over loopback, {result['requests']} requests each, keep-alive httpx:")
    print(f"  direct:    median {result['direct_median_ms']:.3f} ms, p99 {result['direct_p99_ms']:.3f} ms")
    print(f"  via proxy: median {result['proxy_median_ms']:.3f} ms, p99 {result['proxy_p99_ms']:.3f} ms")
    ok = result["added_median_ms"] <= TARGET_ADDED_MEDIAN_MS
    print(f"  the proxy adds {result['added_median_ms']:.3f} ms to the median "
          f"(target: at most {TARGET_ADDED_MEDIAN_MS:g} ms) {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
