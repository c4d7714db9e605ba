"""Pictures of a sweep: a metric against one parameter with its confidence band (:func:`band`), and
a metric (often the share of runs that failed) against two parameters as a heat map (:func:`heat_map`).
Both read a :class:`~resilience_sim.metrics.sweeps.Summary` (``table.summary(...)``, ``table.share(...)``),
take an ``ax`` (made if missing) and return it."""
from __future__ import annotations

import numpy as np

from ..core import validate
from ..metrics.sweeps import Summary
from .plots import _axes, _color, _label


def _summary(summary) -> Summary:
    if not isinstance(summary, Summary):
        raise validate.WrongType(f"summary must be a sweep's Summary (table.summary('metric') or "
                                 f"table.share('metric', below=...)), got {validate.show(summary)}")
    return summary


def _fixed_others(summary: Summary, keep) -> None:
    for other in [p for p in summary.params if p not in keep]:
        values = {repr(v) for v in summary.values(other)}
        if len(values) > 1:
            raise ValueError(f"this picture draws {' and '.join(map(repr, keep))} only, but the summary also varies "
                             f"{other!r} ({', '.join(sorted(values))}): select one value first, e.g. "
                             f"table.where({other}=...).summary(...)")


def band(summary, x: str | None = None, *, ax=None, label: str | None = None, color=None, scale: float = 1.0,
         truth: float | None = None, truth_label: str = "theory", marker: str = "o"):
    """The mean at each value of parameter ``x`` (the summary's only parameter by default), joined by a
    line, with its confidence interval shaded; ``scale`` multiplies every value (100 for percent),
    ``truth`` draws a known answer as a dashed line. Points without a run are left out."""
    ax, summary = _axes(ax), _summary(summary)
    if x is None:
        if len(summary.params) != 1:
            raise ValueError(f"x must name the parameter to draw along, one of {list(summary.params)}")
        x = summary.params[0]
    validate.choice("x", x, summary.params)
    _fixed_others(summary, [x])
    label, color = _label("label", label), _color("color", color)
    scale = validate.number("scale", scale)
    xs = summary.values(x)
    if xs.dtype == object:
        raise validate.WrongType(f"band() needs numbers along x; {x!r} takes {list(xs)[:5]}: use a heat map or a bar chart")
    order = np.argsort(xs, kind="stable")
    xs, mean = xs[order], summary.mean[order] * scale
    low, high = summary.low[order] * scale, summary.high[order] * scale
    line, = ax.plot(xs, mean, marker=marker, ms=5, color=color, label=label or summary.label)
    ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, lw=0,
                    label=f"{summary.level:.0%} interval ({summary.method})")
    if truth is not None:
        ax.axhline(validate.number("truth", truth) * scale, color="k", ls="--", lw=1, label=truth_label)
    if not ax.get_xlabel():
        ax.set_xlabel(x)
    if not ax.get_ylabel():
        ax.set_ylabel(summary.label)
    return ax


def heat_map(summary, x: str, y: str, *, ax=None, scale: float = 100.0, cmap: str = "Reds",
             vmin: float = 0.0, vmax: float | None = 100.0, annotate: bool = True, fmt: str = "{:.0f}",
             colorbar: str | None = "runs failed (%)", xfmt=None, yfmt=None):
    """The mean at each point (times ``scale``: percent by default, for a share) as a coloured cell,
    parameter ``x`` across and ``y`` up, written in each cell with ``fmt`` (``annotate``); cells
    without a run are blank. ``xfmt``/``yfmt`` turn a parameter's value into its tick label."""
    ax, summary = _axes(ax), _summary(summary)
    validate.choice("x", x, summary.params)
    validate.choice("y", y, summary.params)
    _fixed_others(summary, [x, y])
    scale = validate.number("scale", scale)
    validate.boolean("annotate", annotate)
    ys, xs, grid = summary.pivot(y, x)
    _, _, counts = summary.pivot(y, x, "n")
    values = grid * scale
    image = ax.imshow(np.ma.masked_invalid(values), origin="lower", aspect="auto", cmap=cmap, vmin=vmin,
                      vmax=vmax, interpolation="nearest")
    ax.set_xticks(range(len(xs)), [xfmt(v) if xfmt else f"{v:g}" if isinstance(v, float) else str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [yfmt(v) if yfmt else f"{v:g}" if isinstance(v, float) else str(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if annotate:
        top = np.nanmax(values) if np.isfinite(values).any() else 1.0
        limit = vmax if vmax is not None else top
        for i in range(len(ys)):
            for j in range(len(xs)):
                if counts[i, j] > 0 and np.isfinite(values[i, j]):
                    dark = values[i, j] > 0.6 * limit
                    ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if dark else "black")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label=validate.text("colorbar", colorbar))
    return ax
