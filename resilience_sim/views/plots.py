"""Matplotlib pictures of a run's results. Each takes an ``ax`` (made if missing) and returns it."""
from __future__ import annotations

import numpy as np

from ..core import validate

FAULT_COLORS = {"outage": "tab:red", "failure": "tab:red", "latency spike": "tab:orange",
                "error burst": "tab:purple", "gray failure": "tab:gray", "partition": "tab:brown"}


#: Most histogram bars :func:`latency_distribution` draws.
MAX_BARS = 10_000


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=(8, 3))
        return ax
    from matplotlib.axes import Axes
    if not isinstance(ax, Axes):
        hint = ""
        if isinstance(ax, np.ndarray) or isinstance(ax, (list, tuple)):
            hint = f" (plt.subplots(...) gave {len(ax)} of them: pass one, e.g. axes[0])"
        raise validate.WrongType(f"ax must be a matplotlib Axes or None (a new figure){hint}, got {validate.show(ax)}")
    return ax


def step_bins(ax, starts, values, bin_width: float, **style):
    """Per-bin ``values`` as steps, every bin drawn its full ``bin_width`` (the last one too: a plain
    ``step(where="post")`` would end at the last bin's start). Returns the line."""
    edges = np.append(starts, starts[-1] + bin_width) if len(starts) else starts
    values = np.append(values, values[-1]) if len(values) else values
    return ax.step(edges, values, where="post", **style)[0]


def _results(results):
    """``results`` if it is a run's Results, else a WrongType that says where Results come from."""
    from ..metrics.results import as_results
    return as_results(results)


def _label(name: str, value):
    return None if value is None else validate.text(name, value)


def _color(name: str, value):
    from matplotlib.colors import is_color_like
    if value is not None and not is_color_like(value):
        raise ValueError(f"{name} must be a matplotlib colour (e.g. 'tab:blue', '#1f77b4') or None, "
                         f"got {validate.show(value)}")
    return value


def shade_faults(ax, results, *, kinds=None, alpha: float = 0.18):
    """Shade the spans when faults were active, one colour per fault kind, labelled once each.
    ``kinds``: a list of the kinds to shade (default all), e.g. ``["outage"]``."""
    ax, results = _axes(ax), _results(results)
    alpha = validate.probability("alpha", alpha)
    if kinds is not None:
        known = sorted(set(FAULT_COLORS) | {fault.kind for fault in results.faults})
        if isinstance(kinds, str) or not hasattr(kinds, "__iter__"):
            raise validate.WrongType(f"kinds must be a list of fault kinds, e.g. ['outage'], or None for all; "
                                     f"got {validate.show(kinds)}")
        kinds = list(kinds)
        for i, kind in enumerate(kinds):
            validate.choice(f"kinds[{i}]", kind, known)
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
    """Request availability per time bin (default: a sixtieth of the window), with fault windows shaded."""
    ax, results = _axes(ax), _results(results)
    label, color, shade = _label("label", label), _color("color", color), validate.boolean("shade", shade)
    bin_width = results.duration / 60 if bin_width is None else validate.positive("bin_width", bin_width)
    series = results.timeseries(bin_width)
    step_bins(ax, series["t"], series["availability"] * 100, bin_width, label=label, color=color)
    if shade:
        shade_faults(ax, results)
    ax.set_xlim(results.since, results.until)
    ax.set_ylim(-2, 102)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("requests answered (%)")
    return ax


#: Colours of the kinds of answer in :func:`quality_over_time` (others take the next free colour).
QUALITY_COLORS = {"full": "tab:green", "stale": "tab:olive", "deferred": "tab:blue", "unanswered": "tab:red"}
_MORE_COLORS = ("tab:cyan", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:gray")


def quality_over_time(results, *, bin_width: float | None = None, ax=None, shade: bool = True, legend: bool = True):
    """What users got over time: the shares of full answers, of each kind of degraded answer (stale,
    each fallback level, deferred) and of unanswered requests, stacked per bin (default: a sixtieth
    of the window), with fault windows shaded."""
    from ..metrics.windows import quality_shares_series
    ax, results = _axes(ax), _results(results)
    shade, legend = validate.boolean("shade", shade), validate.boolean("legend", legend)
    bin_width = results.duration / 60 if bin_width is None else validate.positive("bin_width", bin_width)
    series = quality_shares_series(results, bin_width)
    t = series.pop("t")
    spare = iter(_MORE_COLORS)
    colors = [QUALITY_COLORS.get(name) or next(spare, None) for name in series]
    edges = np.append(t, t[-1] + bin_width)
    shares = [np.append(v, v[-1]) * 100 for v in series.values()]
    ax.stackplot(edges, *[np.nan_to_num(v) for v in shares], labels=list(series), colors=colors, step="post",
                 alpha=0.85)
    if shade:
        shade_faults(ax, results, alpha=0.12)
    ax.set_xlim(results.since, results.until)
    ax.set_ylim(0, 100)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("share of requests (%)")
    if legend:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)   # outside: all is data
    return ax


def latency_distribution(results, *, ax=None, percentiles=(50, 99), label: str | None = None, bins: int = 60,
                         color=None):
    """Histogram of answered requests' latency on a log axis, in ``bins`` bars, with a marker at each
    of ``percentiles`` (none with ``()``)."""
    from ..metrics.results import percentile_list
    ax, results = _axes(ax), _results(results)
    label, color = _label("label", label), _color("color", color)
    bins = validate.integer("bins", bins, low=1, high=MAX_BARS)
    if isinstance(percentiles, (list, tuple)) and not percentiles:
        percentiles = []
    else:
        percentiles = percentile_list("percentiles", percentiles)
    lat = results.latencies()
    lat = lat[lat > 0]
    if lat.size == 0:
        ax.text(0.5, 0.5, "no answered requests", ha="center", va="center", transform=ax.transAxes)
        return ax
    edges = np.logspace(np.log10(lat.min()), np.log10(lat.max()) + 1e-9, bins + 1)   # bins bars
    ax.hist(lat * 1000, bins=edges * 1000, histtype="stepfilled", alpha=0.5, label=label, color=color)
    for p, v in (results.latency_percentiles(percentiles).items() if percentiles else ()):
        ax.axvline(v * 1000, color="k", ls="--", lw=0.8)
        ax.annotate(f"p{p:g}", (v * 1000, 1), xycoords=("data", "axes fraction"),
                    ha="left", va="top", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("requests")
    return ax


def service_timeline(results, services=None, *, ax=None):
    """Each service's up (green) and down (red) periods as horizontal bars; ``services``: a list of
    names (default all), first at the bottom."""
    ax, results = _axes(ax), _results(results)
    if services is None:
        names = list(results.services)
    elif isinstance(services, str) or not hasattr(services, "__iter__"):
        example = next(iter(results.services), "db")
        raise validate.WrongType(f"services must be a list of service names, e.g. [{example!r}], "
                                 f"or None for all; got {validate.show(services)}")
    else:
        names = list(services)
        if not names:
            raise ValueError(f"services must name at least one of {sorted(results.services)}, got an empty list")
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


# --- axes ---------------------------------------------------------------------------------------------
def time_axis(ax, unit: str = "day", *, span: float | None = None):
    """Label a seconds x axis in ``unit`` (a key of :data:`~resilience_sim.core.theory.TIME_UNITS`:
    minute, hour, day, week, month, year) with round tick steps, about ten at most over ``span``
    seconds (default: the axis' current limits)."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator
    from ..core.theory import TIME_UNITS
    validate.choice("unit", unit, TIME_UNITS)
    scale = TIME_UNITS[unit]
    low, high = ax.get_xlim() if span is None else (0.0, span)
    extent = (high - low) / scale
    step = next((s for s in (1, 2, 5, 10, 20, 30, 50, 100, 200, 500, 1000) if extent / s <= 10), 2000)
    ax.xaxis.set_major_locator(MultipleLocator(step * scale))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x / scale:g}"))
    ax.set_xlabel(f"time ({unit}s)")
    return ax


def fixed_ticks(axis, ticks) -> None:
    """Put major ticks on ``axis`` (``ax.xaxis`` or ``ax.yaxis``) exactly at ``ticks``, labelled as
    plain numbers, and no minor ticks (on a log axis they cost about 40% of a redraw)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    axis.set_major_locator(FixedLocator(list(ticks)))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _first_column(ax) -> bool:
    spec = ax.get_subplotspec()
    return spec is None or spec.colspan.start == 0


# --- spans along a time axis ---------------------------------------------------------------------
def spans(ax, row: float, windows, color, *, unit: float = 1.0, height: float = 0.7) -> None:
    """Draw (start, end) ``windows`` (seconds) as one bar row centred on ``row``, x in ``unit`` seconds."""
    if windows:
        ax.broken_barh([(s / unit, (e - s) / unit) for s, e in windows], (row - height / 2, height),
                       facecolor=color, edgecolor=color, linewidth=1.0)


def timeline_rows(ax, rows, until: float, *, unit: float = 1.0):
    """One row per ``(label, [(windows, color), ...])``, first row on top: a pale green bar over
    ``[0, until)`` (up) with each list of windows drawn over it in its colour, x in ``unit`` seconds."""
    rows = list(rows)
    for row, (_, layers) in enumerate(rows):
        ax.broken_barh([(0, until / unit)], (row - 0.35, 0.7), color="tab:green", alpha=0.35)
        for windows, color in layers:
            spans(ax, row, windows, color, unit=unit)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.set_ylim(len(rows) - 0.4, -0.6)
    ax.set_xlim(0, until / unit)
    return ax


def state_band(ax, history, until: float, colors: dict, *, y: float = 0.0, height: float = 1.0):
    """A ``((time, state), ...)`` history (say, a circuit breaker's) as coloured spans along
    ``[0, until)``, one colour per state from ``colors``."""
    runs = {state: [] for state in colors}
    for (t, state), nxt in zip(history, list(history[1:]) + [(until, None)]):
        end = min(nxt[0], until)
        if end > t:
            runs[state].append((t, end - t))
    for state, bars in runs.items():
        if bars:
            ax.broken_barh(bars, (y, height), facecolor=colors[state], edgecolor="none")
    return ax


# --- every request, and latency tails --------------------------------------------------------------
OUTCOME_STYLE = {"ok": ("tab:green", "answered"), "degraded": ("tab:olive", "degraded"),
                 "failed": ("tab:red", "failed"), "timed_out": ("tab:orange", "timed out"),
                 "rejected": ("tab:purple", "rejected")}


def request_dots(results, *, ax=None, legend: bool = True, title: str | None = None):
    """Every request as a dot: when it started (s) and how long it took (ms, log scale), coloured by
    outcome (:data:`OUTCOME_STYLE`); fault windows shaded."""
    from ..core.reasons import Outcome
    ax = _axes(ax)
    shade_faults(ax, results, alpha=0.15)
    lat_ms = np.maximum(results.latency, 1e-4) * 1000
    for name, (color, label) in OUTCOME_STYLE.items():
        sel = results.outcome == Outcome[name.upper()]
        if sel.any():
            ax.plot(results.start[sel], lat_ms[sel], ls="", marker=".", ms=2.5, color=color, label=label)
    ax.set_yscale("log")
    ax.set_ylim(0.5, 5000)
    fixed_ticks(ax.yaxis, [1, 10, 100, 1000])
    ax.set_xlim(0, results.until)
    ax.set_xlabel("request start (s)")
    if _first_column(ax):
        ax.set_ylabel("latency (ms)")
    if title:
        ax.set_title(title, fontsize=9)
    if legend:
        ax.legend(loc="upper left", fontsize=7, markerscale=2.5, ncols=3, frameon=False)
    return ax


def survival_curve(latencies) -> tuple:
    """Sorted latencies (ms) and the share of requests slower than each: a tail on a log-log plot."""
    x = np.sort(np.asarray(latencies)) / 1e-3
    return x, 1.0 - np.arange(1, x.size + 1) / x.size


TAIL_XTICKS = (10, 100, 1000, 10000)


def latency_tails(curves: dict, *, ax=None, xlim=(3, 20000), ylabel: bool = True):
    """Share of requests slower than t, against t (ms), both on log scales, for each
    ``{label: (latencies in seconds, color)}``. Dashed lines at 50%, 1% and 0.1%: a curve crosses
    them at its p50, p99 and p99.9. A curve in grey ("0.6") is drawn thinner, as a backdrop."""
    ax = _axes(ax)
    for label, (latencies, color) in curves.items():
        x, y = survival_curve(latencies)
        ax.step(x[:-1], y[:-1], where="post", color=color, lw=1.5 if color != "0.6" else 1, label=label)
    for share in (0.5, 0.01, 0.001):
        ax.axhline(share, color="0.8", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [t for t in TAIL_XTICKS if xlim[0] <= t <= xlim[1]]
    ax.set_xticks(ticks, [f"{t:,}".replace(",", " ") for t in ticks])
    ax.set_yticks([1, 0.5, 0.1, 0.01, 0.001, 0.0001], ["100%", "50%", "10%", "1%", "0.1%", "0.01%"])
    ax.minorticks_off()          # log axes' minor ticks cost more to draw than the whole curve
    ax.set_xlim(*xlim)
    ax.set_ylim(min(5e-4, 0.5 / max(len(lat) for lat, _ in curves.values())), 1.2)
    ax.set_xlabel("latency t (ms)")
    if ylabel:
        ax.set_ylabel("share of requests slower than t")
    if len(curves) > 1:
        ax.legend(loc="lower left", fontsize=8)
    return ax
