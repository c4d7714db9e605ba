"""Matplotlib pictures of a run's results. Each takes an ``ax`` (made if missing) and returns it."""
from __future__ import annotations

import numpy as np

from ..core import validate

FAULT_COLORS = {"outage": "tab:red", "failure": "tab:red", "latency spike": "tab:orange",
                "error burst": "tab:purple", "gray failure": "tab:gray", "partition": "tab:brown"}


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=(8, 3))
    return ax


def shade_faults(ax, results, *, kinds=None, alpha: float = 0.18):
    """Shade the spans when faults were active, one colour per fault kind, labelled once each."""
    seen = set()
    for fault in results.faults:
        if kinds is not None and fault.kind not in kinds:
            continue
        color = FAULT_COLORS.get(fault.kind, "tab:red")
        for start, end in fault.spans:
            label = fault.kind if fault.kind not in seen else None
            seen.add(fault.kind)
            ax.axvspan(start, end, color=color, alpha=alpha, lw=0, label=label)
    return ax


def availability_over_time(results, *, bin_width: float | None = None, ax=None, label: str | None = None,
                           shade: bool = True, color=None):
    """Request availability per time bin, with fault windows shaded."""
    ax = _axes(ax)
    bin_width = results.until / 60 if bin_width is None else validate.positive("bin_width", bin_width)
    series = results.timeseries(bin_width)
    ax.step(series["t"], series["availability"] * 100, where="post", label=label, color=color)
    if shade:
        shade_faults(ax, results)
    ax.set_xlim(0, results.until)
    ax.set_ylim(-2, 102)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("requests answered (%)")
    return ax


def latency_distribution(results, *, ax=None, percentiles=(50, 99), label: str | None = None, bins: int = 60,
                         color=None):
    """Histogram of answered requests' latency on a log axis, with percentile markers."""
    ax = _axes(ax)
    lat = results.latencies()
    lat = lat[lat > 0]
    if lat.size == 0:
        ax.text(0.5, 0.5, "no answered requests", ha="center", va="center", transform=ax.transAxes)
        return ax
    edges = np.logspace(np.log10(lat.min()), np.log10(lat.max()) + 1e-9, bins)
    ax.hist(lat * 1000, bins=edges * 1000, histtype="stepfilled", alpha=0.5, label=label, color=color)
    for p, v in results.latency_percentiles(percentiles).items():
        ax.axvline(v * 1000, color="k", ls="--", lw=0.8)
        ax.annotate(f"p{p:g}", (v * 1000, 1), xycoords=("data", "axes fraction"),
                    ha="left", va="top", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("requests")
    return ax


def service_timeline(results, services=None, *, ax=None):
    """Each service's up (green) and down (red) periods as horizontal bars."""
    ax = _axes(ax)
    names = list(results.services) if services is None else list(services)
    for row, name in enumerate(names):
        stats = results._stats(name)
        ax.broken_barh([(0, results.until)], (row - 0.35, 0.7), color="tab:green", alpha=0.6)
        down = [(s, e - s) for s, e in stats.timeline.down_windows(results.until)]
        if down:
            ax.broken_barh(down, (row - 0.35, 0.7), color="tab:red")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlim(0, results.until)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlabel("time (s)")
    return ax
