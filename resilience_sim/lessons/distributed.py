"""01 What makes a system distributed: hidden dependencies, the product rule for chains, and fan-out.

* :func:`hidden_dependency` runs checkout -> payments -> fraud-check -> ledger (a
  :func:`~resilience_sim.sim.topologies.chain`, each link calling the next with
  :func:`~resilience_sim.sim.topologies.forward`) with the deepest one down for a minute.
* :func:`chain_run` puts failure/repair on every service of a chain (timelines only, no traffic) to
  check the product rule; :func:`chain_prefix_availability` measures every shorter chain of the run.
* :func:`fanout_run` sends requests to a root that calls ``n`` leaves at once and waits for all of
  them (:func:`~resilience_sim.sim.topologies.wait_for_all`), and logs every leaf call's latency, so
  that one run shows every fan-out width.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from matplotlib.colors import ListedColormap

from ..core import theory, validate
from ..core.distributions import Fixed, Mixture
from ..core.timeline import combine
from ..metrics import Results
from ..sim.faults import FailureRepair, Outage
from ..sim.probes import CallLog
from ..sim.topologies import chain, fanout, forward, wait_for_all  # noqa: F401  (the notebook reads them)
from ..sim.workload import OpenLoop
from ..sim.world import World
from ..views import plots
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import HOUR, YEAR

#: The story: the checkout team knows payments; nobody on it has heard of the ledger.
STORY = ("checkout", "payments", "fraud-check", "ledger")
#: Names for longer chains (the story first).
CHAIN_NAMES = STORY + ("accounts", "auth", "inventory", "pricing", "tax", "currency", "shipping",
                       "address", "email", "feature-flags", "config", "dns", "db-primary", "cache",
                       "queue", "audit-log")


# --- a chain of services --------------------------------------------------------------------------
def hidden_dependency(seed: int, *, outage=(100.0, 160.0), rate: float = 10.0, duration: float = 300.0):
    """Checkout -> payments -> fraud-check -> ledger under ``rate`` requests per second for ``duration``
    seconds, with the ledger down during ``outage``. Checkout itself never fails."""
    world = World(seed)
    services = chain(world, STORY, latency=Fixed(0.005), capacity=64)
    Outage(services[-1], [outage])
    OpenLoop(world, services[0], rate, duration=duration)
    return world.run(until=duration + 1.0)


# --- the product rule -----------------------------------------------------------------------------
def chain_run(seed: int, n: int, availability: float, *, mttr: float = HOUR, cycles: int = 1000):
    """A chain of ``n`` services, each failing and being repaired independently so that it is up a
    share ``availability`` of the time (repairs take ``mttr`` on average). The run lasts ``cycles``
    mean failure/repair cycles of one service: timelines only, no traffic."""
    n = validate.integer("n", n, low=1, high=len(CHAIN_NAMES))
    cycles = validate.integer("cycles", cycles, low=1)
    mttf = theory.mttf_for(availability, mttr)
    world = World(seed)
    for service in chain(world, CHAIN_NAMES[:n], latency=Fixed(0.005), capacity=64):
        FailureRepair(service, mttf=mttf, mttr=mttr)
    return world.run(until=cycles * (mttf + mttr))


def chain_prefix_availability(results, names) -> np.ndarray:
    """Measured availability of the first k services of ``names`` together (all up), for k = 1..len."""
    names = list(names)
    return np.array([results.time_availability(*names[:k], need="all") for k in range(1, len(names) + 1)])


def draw_chain(ax, results, names, *, span: float = YEAR, top_label: str = "whole chain") -> None:
    """One row per service and a top row for the whole chain (down when any service is down), over the
    first ``span`` seconds; each outage is drawn as a tick, so that a one-hour outage stays visible."""
    names = list(names)
    timelines = [results.services[name].timeline for name in names]
    until = min(span, results.until)
    top = len(names)                                # the chain's row; services below, the first one highest
    downs = [tl.down_windows(until) for tl in timelines] + [combine(timelines, until, need="all")]
    rows = [top - 1 - i for i in range(len(names))] + [top]
    ax.barh(rows, until, left=0, height=0.8, color="tab:green", alpha=0.3)
    ax.barh([top], until, left=0, height=0.8, color="tab:green", alpha=0.4)
    xs = [s for down in downs for s, _ in down]
    ys = np.repeat(rows, [len(down) for down in downs])
    ax.vlines(xs, ys - 0.4, ys + 0.4, color="tab:red", lw=0.9)
    fontsize = 8 if len(rows) <= 12 else 6
    gutter = 0.13 * until                           # labels sit left of time 0, clear of the ticks
    for row, name in zip(rows, names + [top_label]):
        ax.text(-0.01 * until, row, name, va="center", ha="right", fontsize=fontsize,
                fontweight="bold" if row == top else "normal")
    ax.axhline(top - 0.5, color="k", lw=0.6)
    ax.set_yticks([])
    ax.set_ylim(-0.6, top + 0.6)
    ax.set_xlim(-gutter, until)
    plots.time_axis(ax, "day", span=until)


# --- fan-out --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FanoutRun:
    """A fan-out run: the user requests' results and every leaf call's latency (requests x leaves,
    one row per request in the order they ended; NaN for a call that never ended)."""
    results: Results
    leaf_latency: np.ndarray
    n: int
    p_slow: float

    def leaf_slow_share(self, threshold: float = 0.5) -> float:
        """The share of single leaf calls slower than ``threshold`` seconds."""
        return float(np.mean(self.leaf_latency > threshold))

    def prefix_slow_share(self, threshold: float = 0.5) -> np.ndarray:
        """For k = 1..n: the share of requests that would have been slow had they waited for only the
        first k leaves (one run answers every fan-out width up to n)."""
        slow = self.leaf_latency > threshold
        return np.logical_or.accumulate(slow, axis=1).mean(axis=0)


def fanout_run(seed: int, n: int = 100, p_slow: float = 0.01, *, requests: int = 400, fast: float = 0.010,
               slow: float = 1.0, rate: float = 20.0, handler=wait_for_all) -> FanoutRun:
    """``requests`` user requests (Poisson, ``rate`` per second, keys 0, 1, 2...) to a root that fans
    out to ``n`` leaves, each taking ``fast`` seconds except a share ``p_slow`` of calls that take
    ``slow``. ``handler`` is the root's handler (see :func:`~resilience_sim.sim.topologies.fanout`)."""
    p_slow = validate.probability("p_slow", p_slow)
    world = World(seed)
    logs: list[CallLog] = []

    def logged(leaf):
        logs.append(CallLog(leaf, durations=True))
        return logs[-1]

    root = fanout(world, n, Mixture.slow_tail(fast, slow, p_slow), wrap=logged, handler=handler)
    numbers = itertools.count()
    OpenLoop(world, root, rate, requests=requests, key=lambda _rng: next(numbers))
    # arrivals end near requests / rate; the last request may wait for one slow leaf
    results = world.run(until=requests / rate * 3 + (n + 10) * slow + 1)   # room for one-by-one calls too
    return FanoutRun(results, _leaf_grid(results, logs), n, p_slow)


def _leaf_grid(results, logs) -> np.ndarray:
    """Leaf call latencies as a (requests x leaves) grid, rows in the order of the results' rows."""
    row_of = {results.key(i): i for i in range(len(results))}
    grid = np.full((len(results), len(logs)), np.nan)
    for column, log in enumerate(logs):
        rows = [row_of[key] for key in log.keys]
        grid[rows, column] = log.durations
    return grid


# --- dashboards -----------------------------------------------------------------------------------
def _chain_compute(services: int, availability_pct: float, *, seed: int, cycles: int) -> dict:
    a = availability_pct / 100
    results = chain_run(seed, services, a, cycles=cycles)
    names = list(CHAIN_NAMES[:services])
    measured = results.time_availability(*names, need="all")
    formula = theory.series(*[a] * services)
    return {"results": results, "names": names, "measured": measured, "formula": formula,
            "one": a, "down_hours_year": theory.downtime(formula, "year") / HOUR}


def _chain_draw(ax, result) -> None:
    draw_chain(ax, result["results"], result["names"], span=YEAR)
    ax.set_title("first simulated year: each red tick is one outage (about an hour)", fontsize=9)


def _chain_summary(result) -> str:
    n = len(result["names"])
    return (f"{n} service{'s' if n > 1 else ''} at {result['one']:.3%} each &nbsp;·&nbsp; chain: "
            f"measured <b>{result['measured']:.3%}</b>, product {result['formula']:.3%} "
            f"&nbsp;·&nbsp; about {result['down_hours_year']:.0f} h down a year")


@dashboard("01_distributed/chain")
def chain_dashboard(seed: int = 1987, cycles: int = 200) -> Dashboard:
    """How many services in the chain, and how available each one is: the chain's outages and availability."""
    def compute(services, availability_pct):
        return _chain_compute(services, availability_pct, seed=seed, cycles=cycles)

    return Dashboard(compute, _chain_draw,
                     [Slider("services", "services in the chain", "", 1, len(CHAIN_NAMES), 10, integer=True),
                      Slider("availability_pct", "availability of each", "%", 99.0, 99.995, 99.9, step=0.005)],
                     summary=_chain_summary, figsize=(9.0, 3.4),
                     title="A request that needs every service in a chain (repairs take an hour on average)")


FANOUT_COLORS = ListedColormap(["#d9ead3", "#cc0000"])


def _fanout_compute(width: int, slow_pct: float, *, seed: int, requests: int) -> dict:
    run = fanout_run(seed, width, slow_pct / 100, requests=requests)
    return {"run": run, "measured": run.results.share_slower_than(0.5),
            "formula": theory.fanout_slow_share(slow_pct / 100, width)}


def _fanout_draw(ax, result) -> None:
    run = result["run"]
    slow = (run.leaf_latency > 0.5).astype(float)
    any_slow = slow.max(axis=1, keepdims=True)
    gap = np.full((slow.shape[0], max(1, run.n // 25)), np.nan)
    picture = np.hstack([slow, gap, any_slow, any_slow])   # leaves | gap | the request
    ax.imshow(picture, aspect="auto", cmap=FANOUT_COLORS, vmin=0, vmax=1, interpolation="nearest",
              extent=(0.5, picture.shape[1] + 0.5, slow.shape[0] + 0.5, 0.5))
    ax.axvline(run.n + gap.shape[1] + 0.5, color="k", lw=0.5)
    ax.set_xlabel(f"leaf calls 1..{run.n}   |   the request (red if any leaf was slow)")
    ax.set_ylabel("request")
    ax.set_title(f"{int(any_slow.sum())} of {slow.shape[0]} requests waited for a slow leaf", fontsize=9)


def _fanout_summary(result) -> str:
    run = result["run"]
    return (f"each leaf call slow {run.p_slow:.1%} &nbsp;·&nbsp; requests slower than 0.5 s: measured "
            f"<b>{result['measured']:.0%}</b> of {len(run.results)}, formula 1-(1-p)<sup>n</sup> "
            f"{result['formula']:.1%}")


@dashboard("01_distributed/fanout")
def fanout_dashboard(seed: int = 2013, requests: int = 24) -> Dashboard:
    """Fan-out width and the slow share of each leaf: which requests wait for a slow leaf."""
    def compute(width, slow_pct):
        return _fanout_compute(width, slow_pct, seed=seed, requests=requests)

    return Dashboard(compute, _fanout_draw,
                     [Slider("width", "fan-out width (leaves)", "", 1, 100, 100, integer=True),
                      Slider("slow_pct", "slow calls at each leaf", "%", 0.1, 10.0, 1.0, step=0.1)],
                     summary=_fanout_summary, figsize=(9.0, 3.2),
                     title="A root waits for all of its leaves: each leaf is 10 ms, but some calls take 1 s")
