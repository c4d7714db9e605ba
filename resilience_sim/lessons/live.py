"""Notebook 17: the same patterns on real sockets.

A catalog service on 127.0.0.1 behind the course's Toxiproxy-compatible proxy (:class:`Stack`), called
by plain httpx and by :class:`~resilience_sim.live.client.ResilientClient` with the policies added one
at a time (:data:`LADDER`); the breaker's state through an outage; a load test and a spike test; a
resilience test shaped as a chaos experiment; one scenario run in the simulator and live side by side
(:func:`bridge_sim`, :func:`bridge_live`); the SQLite outbox surviving crashes (:func:`outbox_stories`).

Every live run is bounded: a fixed number of arrivals within ``DURATION`` seconds, a client deadline,
and servers that stop with the stack. Live numbers vary a little from run to run (threads and the OS
schedule the requests); the notebook states bounds and asserts them, where the simulator's numbers
are exact for a seed.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass

import httpx
import numpy as np

from ..core.distributions import LogNormal
from ..core.profiles import Constant, Spike
from ..live.client import ResilientClient
from ..live.consumer import CrashPoint
from ..live.experiment import Action, Experiment, Probe
from ..live.load import run_load
from ..live.write_path import run_crash_story
from ..live.proxy import ToxiproxyClient, ToxiproxyServer
from ..live.services import Catalog
from ..metrics.windows import quality_shares_series
from ..policies import (CLOSED, HALF_OPEN, OPEN, CircuitBreaker, FullJitter, RetryBudget,
                        RetryPolicy)
from ..sim.faults import Outage
from ..sim.service import Service
from ..sim.workload import OpenLoop
from ..sim.world import World
from ..views import plots
from ..views.dashboard import Choice, Dashboard, Slider
from . import dashboard
from .common import RunMemo, Table

SEED = 17
#: Requests per second and seconds of every ladder run: about 120 requests, 1.2 s of wall-clock time.
RATE, DURATION = 100.0, 1.2
#: Threads the load generator calls with (an arrival finding all busy is refused "overload").
WORKERS = 64
#: Items the users ask for (a uniform key).
ITEMS = 1000
#: The fault mix of the ladder, at the catalog (HTTP level) and at the proxy (TCP level).
ERRORS, RETRY_AFTER = 0.10, 0.05           # 10% answered 503 with Retry-After: 0.05 s
SLOW, SLOW_BY = 0.05, 0.30                 # 5% take 300 ms longer
TRICKLE, TRICKLE_CHUNK, TRICKLE_EVERY = 0.02, 8, 0.05  # 2% dribble 8 bytes every 50 ms
NETWORK_MS, NETWORK_JITTER_MS = 3, 2        # the proxy's latency toxic on responses
#: The SLO of the resilience test: answered share and p99 over a run.
SLO_ANSWERED, SLO_P99 = 0.97, 0.500

STATE_COLORS = {CLOSED: "tab:green", HALF_OPEN: "tab:orange", OPEN: "tab:red"}


# --- the stack: a catalog behind the proxy -------------------------------------------------------------
class Stack:
    """The catalog on 127.0.0.1 and, in front of it, a proxy made through the Toxiproxy API.

    ``stack.url`` is the proxy's address (what clients call), ``stack.catalog`` the service with its
    HTTP faults (``stack.catalog.faults``), ``stack.proxy`` the proxy handle (toxics, ``down()``),
    ``stack.toxiproxy`` the API client. ``api_url`` points it at a running Toxiproxy (a real one, say
    ``http://127.0.0.1:8474``) instead of starting ours; nothing else changes, except that a real
    Toxiproxy's draws cannot be seeded. :meth:`stop` (or leaving a ``with`` block) stops everything."""

    def __init__(self, seed: int = SEED, *, api_url: str | None = None):
        self.catalog = Catalog(seed=seed)
        self.server = ToxiproxyServer(seed=seed) if api_url is None else None
        self.toxiproxy = self.proxy = None
        try:
            self.catalog.start()
            if self.server is not None:
                self.server.start()
                api_url = self.server.api_url
            self.toxiproxy = ToxiproxyClient(api_url)
            self.proxy = self.toxiproxy.create("catalog", upstream=f"127.0.0.1:{self.catalog.port}")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    def inject(self) -> None:
        """The ladder's fault mix: 503s, a slow tail, trickling bodies at the catalog; network latency
        at the proxy."""
        (self.catalog.faults.fail(503, rate=ERRORS, retry_after=RETRY_AFTER)
         .slow(SLOW_BY, rate=SLOW).trickle(chunk=TRICKLE_CHUNK, interval=TRICKLE_EVERY, rate=TRICKLE))
        self.proxy.add_toxic("latency", name="network", latency=NETWORK_MS, jitter=NETWORK_JITTER_MS)

    def calm(self) -> None:
        """No fault anywhere (Toxiproxy's ``/reset`` and the catalog's ``clear()``)."""
        self.catalog.faults.clear()
        self.toxiproxy.reset()

    def stop(self) -> None:
        if self.toxiproxy is not None:
            if self.server is None and self.proxy is not None:   # a Toxiproxy of yours: leave it as found
                self.proxy.delete()
            self.toxiproxy.close()
        if self.server is not None:
            self.server.stop()
        self.catalog.stop()

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(seed: int = SEED, *, api_url: str | None = None) -> Stack:
    return Stack(seed, api_url=api_url)


# --- the ladder: each policy added in turn -------------------------------------------------------------
#: Each step's client: None is plain httpx (its default 5 s timeouts per phase, no retries).
LADDER = {
    "plain httpx": None,
    "+ deadline 400 ms, timeout 100 ms": dict(deadline=0.4, timeout=0.1),
    "+ retries (full jitter, Retry-After)": dict(deadline=0.4, timeout=0.1,
                                                 retry=lambda: RetryPolicy(4, FullJitter(0.01, 0.1))),
    "+ retry budget 30%": dict(deadline=0.4, timeout=0.1, retry=lambda: RetryPolicy(4, FullJitter(0.01, 0.1)),
                               budget=lambda: RetryBudget(0.3)),
}


def client_for(stack: Stack, step: str, **extra) -> ResilientClient | None:
    """A new ResilientClient with the policies of ladder ``step`` (fresh policy objects), or None for
    plain httpx."""
    spec = LADDER[step]
    if spec is None:
        return None
    made = {k: (v() if callable(v) else v) for k, v in spec.items()}
    return ResilientClient(stack.url, name="catalog client", **made, **extra)


@dataclass
class LiveRun:
    """One bounded live run: its name, the load report (``results``: the simulator's Results) and the
    client's stats (None for plain httpx)."""
    name: str
    report: object
    client: object = None

    @property
    def results(self):
        return self.report.results

    def answered(self) -> float:
        return self.results.request_availability()

    def p99(self, *, answered_only: bool = False) -> float:
        """The p99 latency of every request (failures count with the time they took), or of the
        answered ones only (which leaves out exactly the requests a timeout cut)."""
        return self.results.latency_percentiles((99,), successful=answered_only)[99]

    def attempts_per_request(self) -> float:
        return float(np.mean(self.results.attempts)) if len(self.results) else 0.0


def _load(call, *, seed, clients=(), profile=None, duration=DURATION, on_start=None):
    return run_load(call, profile or Constant(RATE), duration=duration, max_requests=10_000, seed=seed,
                    workers=WORKERS, key=lambda rng: rng.randrange(1, ITEMS + 1), route="item", clients=clients,
                    grace=0.5, on_start=on_start)


def ladder_run(stack: Stack, step: str, *, seed: int = SEED, profile=None) -> LiveRun:
    """``step``'s client against the stack for ``DURATION`` seconds at ``RATE`` (or ``profile``)."""
    client = client_for(stack, step)
    if client is None:
        with httpx.Client() as http:
            report = _load(lambda key: http.get(f"{stack.url}/items/{key}"), seed=seed, profile=profile)
        return LiveRun(step, report)
    with client:
        report = _load(lambda key: client.get(f"/items/{key}", route="item", key=key), seed=seed,
                       clients=[client], profile=profile)
    return LiveRun(step, report, client.stats())


def ladder_table(runs) -> Table:
    rows, data = [], {}
    for run in runs:
        r = run.results
        rows.append([run.name, len(r), f"{run.answered():.1%}", f"{run.p99() * 1000:.0f} ms",
                     f"{run.p99(answered_only=True) * 1000:.0f} ms", f"{run.attempts_per_request():.2f}",
                     ", ".join(f"{k} {v}" for k, v in r.reasons().items()) or "none"])
        data[run.name] = dict(requests=len(r), answered=run.answered(), p99=run.p99(),
                              p99_answered=run.p99(answered_only=True), attempts=run.attempts_per_request(),
                              reasons=dict(r.reasons()),
                              budget_denied=run.client.budget_denied if run.client else 0)
    return Table(["client", "requests", "answered", "p99 (all)", "p99 (answered)", "attempts / request",
                  "failures"], rows, data)


def plain_trickle(stack: Stack, *, read_timeout: float = 1.0) -> tuple[float, float]:
    """Seconds one trickling answer takes with plain httpx (``timeout=read_timeout``) and with a
    ResilientClient whose deadline is ``read_timeout``: httpx's timeout bounds each read, not the call."""
    stack.catalog.faults.clear().trickle(chunk=4, interval=0.2)
    try:
        with httpx.Client(timeout=read_timeout) as http:
            t0 = time.monotonic()
            http.get(f"{stack.url}/items/7")
            plain = time.monotonic() - t0
        with ResilientClient(stack.url, deadline=read_timeout) as client:
            t0 = time.monotonic()
            client.get("/items/7")
            ours = time.monotonic() - t0
    finally:
        stack.catalog.faults.clear()
    return plain, ours


# --- the breaker through an outage ------------------------------------------------------------------
#: The catalog answers 503 to everything from 0.4 s to 1.0 s of a 1.5 s run.
OUTAGE, OUTAGE_RUN = (0.4, 1.0), 1.5


#: The breaker of the outage run: 5 consecutive failures open it for 0.2 s, then one probe.
TRIP_AFTER, OPEN_FOR = 5, 0.2


def outage_run(stack: Stack, *, breaker: bool, seed: int = SEED) -> LiveRun:
    """The catalog answers 503 to everything in ``OUTAGE`` of an ``OUTAGE_RUN`` run; a client with a
    deadline and retries, and with or without a breaker (``TRIP_AFTER`` consecutive failures open it
    for ``OPEN_FOR`` seconds)."""
    stack.catalog.faults.clear().fail(503, during=OUTAGE)
    stack.catalog.reset_stats()
    kwargs = dict(deadline=0.3, timeout=0.1, retry=RetryPolicy(3, FullJitter(0.01, 0.05)))
    if breaker:
        kwargs["breaker"] = CircuitBreaker(consecutive_failures=TRIP_AFTER, open_for=OPEN_FOR)
    client = ResilientClient(stack.url, name="catalog client", **kwargs)
    try:
        with client:
            report = _load(lambda key: client.get(f"/items/{key}", route="item", key=key), seed=seed,
                           clients=[client], on_start=stack.catalog.faults.restart_clock, duration=OUTAGE_RUN)
    finally:
        stack.catalog.faults.clear()
    run = LiveRun("with a breaker" if breaker else "no breaker", report, client.stats())
    run.served = stack.catalog.stats()["requests"]
    return run


def draw_outage(axes, run: LiveRun, other: LiveRun | None = None, *, bin_width: float = 0.1) -> None:
    """The breaker's states of ``run`` on top (as in notebook 06); below, the share answered per
    ``bin_width`` of ``run`` and of ``other`` (the client without a breaker)."""
    band, main = axes
    until = run.results.until
    if run.client is not None and run.client.breaker_history:
        plots.state_band(band, run.client.breaker_history, until, STATE_COLORS)
        handles = [band.bar(0, 0, color=c, label=s) for s, c in STATE_COLORS.items()]
        band.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.3), fontsize=8, frameon=False)
    band.set_yticks([])
    band.set_ylabel("breaker", rotation=0, ha="right", va="center")
    band.set_xlim(0, until)
    main.axvspan(*OUTAGE, color="tab:red", alpha=0.12, lw=0, label="catalog answers 503")
    for r, color, style in ((other, "0.45", "--"), (run, "tab:blue", "-")):
        if r is not None:
            series = quality_shares_series(r.results, bin_width)
            main.step(series["t"], 100 * (1 - series["unanswered"]), where="post", color=color, ls=style, lw=2,
                      label=f"answered, {r.name}")
    main.set_xlim(0, until)
    main.set_ylim(-3, 103)
    main.set_xlabel("time since the run began (s)")
    main.set_ylabel("answered (%)")
    main.legend(loc="lower left", fontsize=8)


# --- a spike test -----------------------------------------------------------------------------------
#: 40 requests/s, then 200/s for 0.3 s from 0.4 s: five times the load, at once.
SPIKE = Spike(base=40.0, peak_rate=200.0, at=0.4, duration=0.3)
SPIKE_DURATION = 1.2
#: The protected client of the spike test (and of the resilience test).
PROTECTED = "+ retry budget 30%"


def spike_run(stack: Stack, step: str = PROTECTED, *, seed: int = SEED) -> LiveRun:
    """A spike test: ``SPIKE`` against the catalog under the fault mix, with ``step``'s client."""
    client = client_for(stack, step)
    with client:
        report = _load(lambda key: client.get(f"/items/{key}", route="item", key=key), seed=seed,
                       clients=[client], profile=SPIKE, duration=SPIKE_DURATION)
    return LiveRun(f"spike, {step}", report, client.stats())


def during_spike(run: LiveRun):
    """The results of the requests that arrived during the spike."""
    return run.results.between(SPIKE.at, SPIKE.at + SPIKE.duration)


def draw_spike(axes, run: LiveRun, *, bin_width: float = 0.1) -> None:
    """Arrivals per second on top, the p99 latency of the requests started in each bin below."""
    top, bottom = axes
    r = run.results
    edges = np.arange(0.0, SPIKE_DURATION + bin_width / 2, bin_width)
    counts, _ = np.histogram(r.start, edges)
    for ax in axes:
        ax.axvspan(SPIKE.at, SPIKE.at + SPIKE.duration, color="0.88", lw=0)
    top.step(edges[:-1], counts / bin_width, where="post", color="tab:purple", lw=2, label="arrivals")
    top.step(edges[:-1], [SPIKE(t) for t in edges[:-1]], where="post", color="k", ls=":", lw=1,
             label="profile")
    top.set_ylabel("requests / s")
    top.legend(loc="upper right", fontsize=8)
    lat = (r.end - r.start) * 1000
    p99 = [np.percentile(lat[(r.start >= a) & (r.start < b)], 99) if ((r.start >= a) & (r.start < b)).any()
           else np.nan for a, b in zip(edges[:-1], edges[1:])]
    bottom.step(edges[:-1], p99, where="post", color="tab:blue", lw=2, label="p99 of the requests started (all)")
    bottom.axhline(SLO_P99 * 1000, color="tab:red", ls="--", lw=1, label="SLO p99")
    bottom.set_ylim(0, 1.15 * max(np.nanmax(p99), SLO_P99 * 1000))
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("time since the run began (s)")
    bottom.set_xlim(0, SPIKE_DURATION)
    bottom.legend(loc="upper right", fontsize=8)


# --- the resilience test -----------------------------------------------------------------------------
def slo_probe(stack: Stack, step: str, *, seed: int = SEED) -> Probe:
    """"answered >= 97% and p99 (all requests) <= 500 ms over one ladder run" for ``step``'s client."""
    def measure():
        run = ladder_run(stack, step, seed=seed)
        return (round(run.answered(), 4), round(run.p99(), 3))
    return Probe(f"{step}: answered, p99 (s)", measure,
                 lambda v: v[0] >= SLO_ANSWERED and v[1] <= SLO_P99,
                 f"{step}: answered >= {SLO_ANSWERED:.0%} and p99 <= {SLO_P99 * 1000:.0f} ms")


def resilience_test(stack: Stack, step: str = PROTECTED, *, seed: int = SEED):
    """Steady state before (no faults), the fault mix injected, the SLO checked under it, rolled back."""
    return Experiment(f"hypothesis: the {step} client keeps its SLO under the fault mix",
                      steady_state=[slo_probe(stack, step, seed=seed)],
                      method=[Action("inject the fault mix", stack.inject)],
                      rollbacks=[Action("remove every fault", stack.calm)], check_recovery=False).run()


# --- the bridge: one scenario in the simulator and live -----------------------------------------------
#: The dependency: log-normal latency (median 4 ms), 5% of calls failing, an outage in the run.
BRIDGE_LATENCY = LogNormal(median=0.004, sigma=0.5)
BRIDGE_ERRORS, BRIDGE_OUTAGE = 0.05, (0.9, 1.5)
BRIDGE_RATE, BRIDGE_DURATION = 100.0, 3.0
#: Simulated seeds the live run is compared against.
BRIDGE_SEEDS = 40
#: What a real HTTP round trip on loopback, in one Python process with the service's threads, may add
#: to a call's tail (seconds), allowed on top of the simulated p99 (the simulated service has no sockets).
HTTP_ALLOWANCE = 0.015
#: A live run whose arrivals started more than this late (p99 of the generator's lag, seconds) was
#: disturbed by something else on the machine (another process took the CPU): it is run again, at
#: most ``BRIDGE_TRIES`` times in all, and the report says how many it took.
UNDISTURBED_LAG, BRIDGE_TRIES = 0.010, 3


def bridge_sim(seed: int, *, error_rate: float = BRIDGE_ERRORS, outage=BRIDGE_OUTAGE,
               rate: float = BRIDGE_RATE, duration: float = BRIDGE_DURATION):
    """The scenario in the simulator: a service with that latency and error rate, down in ``outage``."""
    world = World(seed)
    service = Service(world, "catalog", capacity=64, latency=BRIDGE_LATENCY, error_rate=error_rate)
    if outage is not None and outage[1] > outage[0]:
        Outage(service, [outage])
    OpenLoop(world, service, Constant(rate), duration=duration, name="item")
    return world.run(until=duration + 1.0)


def bridge_sims(seeds: int = BRIDGE_SEEDS, *, base_seed: int = SEED, **scenario) -> list:
    return [bridge_sim(base_seed + i, **scenario) for i in range(seeds)]


@dataclass
class BridgeRun:
    """The live run of the bridge: its results, the generator's lag, and how many runs it took to get
    one the rest of the machine did not disturb."""
    results: object
    lag: dict
    tries: int


def bridge_live(*, seed: int = SEED, error_rate: float = BRIDGE_ERRORS, outage=BRIDGE_OUTAGE,
                rate: float = BRIDGE_RATE, duration: float = BRIDGE_DURATION) -> BridgeRun:
    """The same scenario on loopback: the catalog with that latency and ``error_rate`` answered 500,
    every connection reset mid-answer during ``outage`` (a crash), called by plain httpx from the
    load generator (no proxy, no policies: the dependency alone)."""
    for tries in range(1, BRIDGE_TRIES + 1):
        with Catalog(seed=seed, latency=BRIDGE_LATENCY) as catalog, httpx.Client() as http:
            if error_rate > 0:
                catalog.faults.fail(500, rate=error_rate)
            if outage is not None and outage[1] > outage[0]:
                catalog.faults.reset(after_bytes=0, during=outage)
            report = run_load(lambda key: http.get(f"{catalog.url}/items/{key}"), Constant(rate),
                              duration=duration, max_requests=10_000, seed=seed, workers=WORKERS,
                              key=lambda rng: rng.randrange(1, ITEMS + 1), route="item", grace=0.5,
                              on_start=catalog.faults.restart_clock)
        if report.lag["p99"] <= UNDISTURBED_LAG:
            break
    return BridgeRun(report.results, report.lag, tries)


def bridge_table(sims, live: BridgeRun) -> Table:
    """The simulated seeds' range of the share answered and of the answered requests' p99, beside the
    live run's."""
    answered = np.array([r.request_availability() for r in sims])
    p99 = np.array([r.latency_percentiles((99,))[99] for r in sims])
    lo_a, hi_a = answered.min(), answered.max()
    lo_p, hi_p = p99.min(), p99.max()
    results = live.results
    live_a, live_p = results.request_availability(), results.latency_percentiles((99,))[99]
    rows = [["answered", f"{lo_a:.1%} to {hi_a:.1%}", f"{live_a:.1%}"],
            ["p99 of the answered", f"{lo_p * 1000:.1f} to {hi_p * 1000:.1f} ms", f"{live_p * 1000:.1f} ms"]]
    data = dict(answered=(lo_a, hi_a, live_a), p99=(lo_p, hi_p, live_p),
                requests=(int(np.mean([len(r) for r in sims])), len(results)))
    return Table(["", f"simulator, {len(sims)} seeds (range)", "live, one run"], rows, data)


# --- the outbox on SQLite ---------------------------------------------------------------------------
STORIES = {
    "outbox, idempotent consumer": dict(design="outbox", dedupe="transaction"),
    "outbox, consumer without dedupe": dict(design="outbox", dedupe="none"),
    "commit, then publish": dict(design="commit, then publish", dedupe="transaction"),
    "publish, then commit": dict(design="publish, then commit", dedupe="transaction"),
}


#: Where each part crashes once (then restarts): the application between its two writes of the 10th
#: order, the relay after its 20th publish (before marking it sent), the consumer after its 30th effect
#: (before replying).
APP_CRASH = CrashPoint("between writes", nth=10)
RELAY_CRASH = CrashPoint("after publish", nth=20)
CONSUMER_CRASH = CrashPoint("before reply", nth=30)


def outbox_stories(*, orders: int = 50, seed: int = SEED) -> Table:
    """Each design's crash story on real SQLite files (a temporary directory, removed after), checked by
    the Part IV checker."""
    rows, data = [], {}
    for name, kw in STORIES.items():
        with tempfile.TemporaryDirectory() as directory:
            story = run_crash_story(directory, orders=orders, seed=seed, app_crash=APP_CRASH,
                                    relay_crash=RELAY_CRASH, consumer_crash=CONSUMER_CRASH, **kw)
        c = story.check
        rows.append([name, c.attempted, c.committed, c.effects, len(c.lost), len(c.unexpected),
                     sum(n - 1 for n in c.duplicated.values())])
        data[name] = c
    return Table(["design", "orders tried", "committed", "effects", "lost", "invented", "extra copies"],
                 rows, data)


# --- the dashboard: the bridge scenario in the simulator -----------------------------------------------
_DASH = RunMemo()
DASH_SEED = SEED


def _dash_compute(error_pct, outage_s, attempts, *, retry: bool):
    key = (float(error_pct), float(outage_s), int(attempts), bool(retry))
    return _DASH.get(key, lambda: _dash_run(error_pct / 100, outage_s, int(attempts) if retry else 1))


def _dash_run(error_rate, outage_s, attempts):
    from ..sim.client import Client
    world = World(DASH_SEED)
    service = Service(world, "catalog", capacity=64, latency=BRIDGE_LATENCY, error_rate=error_rate)
    if outage_s > 0:
        Outage(service, [(BRIDGE_OUTAGE[0], BRIDGE_OUTAGE[0] + outage_s)])
    target = service
    if attempts > 1:
        target = Client(world, service, name="client", deadline=0.3, timeout=0.1,
                        retry=RetryPolicy(attempts, FullJitter(0.01, 0.1)))
    OpenLoop(world, target, Constant(BRIDGE_RATE), duration=BRIDGE_DURATION, name="item")
    return world.run(until=BRIDGE_DURATION + 1.0)


def _dash_draw(ax, results) -> None:
    plots.availability_over_time(results, bin_width=0.1, ax=ax)
    plots.shade_faults(ax, results)
    ax.set_ylim(-3, 103)
    ax.set_xlim(0, BRIDGE_DURATION)


def _dash_summary(results) -> str:
    p99 = results.latency_percentiles((99,))[99]
    return (f"answered <b>{results.request_availability():.1%}</b> · p99 {p99 * 1000:.0f} ms · "
            f"calls per request {results.calls_per_request():.2f}")


@dashboard("17_real_http/bridge")
def bridge_dashboard() -> Dashboard:
    """The bridge scenario in the simulator: error rate, outage length and attempts; without / with
    retries side by side. Run the live cell again with the same numbers to compare."""
    return Dashboard(
        _dash_compute, _dash_draw,
        [Slider("error_pct", "errors", "%", 0, 30, 5, step=1),
         Slider("outage_s", "outage", "s", 0.0, 1.8, 0.6, step=0.1),
         Choice("attempts", "attempts with retries", (("2", 2), ("3", 3), ("5", 5)), 3)],
        variants={"without retries": {"retry": False}, "with retries": {"retry": True}},
        summary=_dash_summary, figsize=(9.0, 3.2),
        title=f"The catalog in the simulator: {BRIDGE_RATE:g} requests/s for {BRIDGE_DURATION:g} s, "
              f"latency log-normal (median 4 ms)")
