"""The capstone's scoreboard picture: one chaos day of a shop in four panels, drawn from the plain
data of :func:`resilience_sim.lessons.capstone.scoreboard` (a dict; this module never sees a run).

* **faults**: a row per fault of the day, its window as a bar (one colour per kind), and a row of
  the pages to the on-call;
* **good**: per endpoint the share of good requests bin by bin (%), its SLO as a dashed line, the
  faults shaded, on a *nines* scale (90, 99, 99.9, 99.99% equally spaced; a bin at 100% is drawn
  at the top, 99.99%), so that SLOs of 99.5% to 99.95% stand apart even on a day that fell to 0%;
* **budget**: per endpoint the share of the day's error budget spent by the end of each bin (%):
  100% is all of it, above that overspent;
* **cost**: where the money went, item by item (dollars), the most expensive on top; zero items left out.

``draw(board)`` fills a figure (or a subfigure) and returns its axes by panel name;
``compare({"baseline": board, "reference": board})`` puts boards side by side, a column each. The
endpoints' legend sits outside every panel, below them, so it covers no data. Before a day is run,
:func:`traffic` and :func:`fault_timeline` draw its plan from plain tuples (rates, fault windows).
"""
from __future__ import annotations

import numpy as np

from ..core import validate
from ..core.theory import TIME_UNITS
from .plots import _axes, fixed_ticks, spans

#: The keys a scoreboard dict holds (see :func:`resilience_sim.lessons.capstone.scoreboard`).
BOARD_KEYS = ("t", "good", "budget_spent", "faults", "pages", "cost")
#: A colour per kind of chaos fault (the part of a fault's label before " ("); others are grey.
FAULT_COLORS = {"db failover": "tab:red", "search down": "tab:purple", "recommendations slow": "tab:orange",
                "broker crash": "tab:brown", "payment 503": "tab:pink", "partition": "tab:olive",
                "latency trigger": "tab:cyan"}
#: A colour per endpoint (none of them a fault's, so a line never melts into a shading); others take
#: the next free one.
ROUTE_COLORS = {"browse": "tab:blue", "search": "black", "checkout": "tab:green"}
_MORE_COLORS = ("tab:gray", "navy", "darkgreen", "tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
#: Colour of the pages' row.
PAGE_COLOR = "black"
HOUR = TIME_UNITS["hour"]
#: How opaque a fault's shading is, and the least width it is drawn with (a share of the panel's
#: span), so that a two-minute fault on a 24-hour panel is still a visible band.
SHADE_ALPHA = 0.25
SHADE_MIN_WIDTH = 0.006
#: The good-share panel's nines scale: shares above ``1 - 10**-NINES_TOP`` are drawn at the top.
NINES_TOP = 4


def check_board(board) -> dict:
    """``board`` if it is a scoreboard dict with every key and at least two bins, else a clear error."""
    if not isinstance(board, dict):
        raise validate.WrongType(f"board must be the dict of capstone.scoreboard(score), got {validate.show(board)}")
    missing = [k for k in BOARD_KEYS if k not in board]
    if missing:
        raise ValueError(f"board must hold the keys {list(BOARD_KEYS)} (capstone.scoreboard(score)); missing {missing}")
    if len(board["t"]) < 2:
        raise ValueError(f"board['t'] must hold at least 2 bins (a bin_width shorter than the day), got {len(board['t'])}")
    return board


def _until(board) -> float:
    t = np.asarray(board["t"], dtype=float)
    return float(t[-1] + (t[1] - t[0]))


def fault_color(label: str) -> str:
    """The colour of a fault from its label ("search down (search)" -> the colour of "search down")."""
    return FAULT_COLORS.get(label.partition(" (")[0], "tab:gray")


def route_colors(routes) -> dict:
    spare = iter(_MORE_COLORS)
    return {r: ROUTE_COLORS.get(r) or next(spare, "tab:gray") for r in routes}


def shade(ax, faults, *, alpha: float = SHADE_ALPHA, min_width: float = 0.0) -> None:
    """Shade each ``(label, start, end)`` fault's window (x in hours) in its kind's colour: the
    background of a time panel; a window shorter than ``min_width`` seconds is drawn that wide from
    its start (a short fault stays visible; its start, where the drop is, stays exact)."""
    for label, start, end in faults:
        end = max(end, start + min_width)
        ax.axvspan(start / HOUR, end / HOUR, color=fault_color(label), alpha=alpha, lw=0)


def _min_width(low: float, high: float) -> float:
    return SHADE_MIN_WIDTH * (high - low)


def money(amount: float) -> str:
    """Dollars as the prose writes them: cents under $100 unless whole ($9.60, $0.62, $48), whole
    dollars from $100 up ($58,000)."""
    amount = float(amount)
    if abs(amount) < 100 and round(amount, 2) != round(amount):
        return f"${amount:,.2f}"
    return f"${amount:,.0f}"


def _nines(share):
    """Percent -> nines (90% -> 1, 99% -> 2); 100% (or more) as 2 nines above NINES_TOP, out of sight."""
    share = np.asarray(share, dtype=float)
    return -np.log10(np.clip(1.0 - share / 100.0, 10.0 ** -(NINES_TOP + 2), None))


def _percent(nines):
    return 100.0 * (1.0 - 10.0 ** -np.asarray(nines, dtype=float))


def _time_panel(ax, low: float, high: float, ylabel: str) -> None:
    """x in hours over ``[low, high)`` seconds, a tick every 1, 2, 3, 6 or 12 hours (at most nine)."""
    low, high = low / HOUR, high / HOUR
    step = next((s for s in (1, 2, 3, 6, 12) if (high - low) / s <= 9), 24)
    ax.set_xlim(low, high)
    fixed_ticks(ax.xaxis, np.arange(np.ceil(low / step) * step, high + 1e-9, step))
    ax.set_xlabel("time of day (h)")
    ax.set_ylabel(ylabel)


def _day(board) -> tuple:
    return float(board["t"][0]), _until(board)


def _faults(faults) -> list:
    if isinstance(faults, (str, bytes)) or not hasattr(faults, "__iter__"):
        raise validate.WrongType(f"faults must be a list of (label, start, end), got {validate.show(faults)}")
    out = []
    for i, f in enumerate(faults):
        if not (isinstance(f, (tuple, list)) and len(f) == 3 and isinstance(f[0], str)):
            raise validate.WrongType(f"faults[{i}] must be (label, start s, end s), got {validate.show(f)}")
        out.append((f[0], float(f[1]), float(f[2])))
    return out


def fault_timeline(faults, until: float, *, pages=(), ax=None):
    """``faults`` (``(label, start, end)``, seconds) a row each, first on top, in their kinds' colours,
    and ``pages`` (``(start, end)``) in a last row; x in hours over ``[0, until)``."""
    ax = _axes(ax)
    faults, until = _faults(faults), validate.positive("until", until)
    labels = []
    for row, (label, start, end) in enumerate(faults):
        spans(ax, row, [(start, end)], fault_color(label), unit=HOUR)
        labels.append(label)
    pages = [tuple(p) for p in pages]
    spans(ax, len(labels), pages, PAGE_COLOR, unit=HOUR, height=0.4)
    labels.append(f"pages ({len(pages)})")
    ax.set_yticks(range(len(labels)), labels, fontsize="small")
    ax.set_ylim(len(labels) - 0.4, -0.6)
    _time_panel(ax, 0.0, until, "")
    ax.set_title("faults of the day, and pages", fontsize="medium")
    return ax


def fault_rows(board, *, ax=None):
    """The board's faults, a row each (first on top), and its pages to the on-call in the last row."""
    board = check_board(board)
    ax = fault_timeline(board["faults"], _until(board), pages=board["pages"], ax=ax)
    ax.set_xlim(_day(board)[0] / HOUR, _until(board) / HOUR)
    return ax


def traffic(pieces, *, faults=(), scale: float = 1.0, ax=None):
    """A day's arrival rate, ``pieces`` of constant rate ``(start, end, rate)`` (seconds, per second)
    times ``scale``, as a step line over hours, with ``faults`` shaded."""
    ax = _axes(ax)
    scale = validate.positive("scale", scale)
    if isinstance(pieces, (str, bytes)) or not hasattr(pieces, "__iter__"):
        raise validate.WrongType(f"pieces must be a list of (start, end, rate), got {validate.show(pieces)}")
    pieces = list(pieces)
    for i, piece in enumerate(pieces):
        if not (isinstance(piece, (tuple, list)) and len(piece) == 3):
            raise validate.WrongType(f"pieces[{i}] must be (start s, end s, rate per s), got {validate.show(piece)}")
    pieces = [(float(a), float(b), float(r)) for a, b, r in pieces]
    if not pieces:
        raise ValueError("pieces must hold at least one (start, end, rate), got none")
    edges0 = [float(a) for a, _, _ in pieces[:1]] + [pieces[-1][1]]
    shade(ax, _faults(faults), min_width=_min_width(*edges0))
    edges = np.array([a for a, _, _ in pieces] + [pieces[-1][1]])
    rates = np.array([r for *_, r in pieces]) * scale
    ax.stairs(rates, edges / HOUR, color="tab:blue", lw=1.5)
    ax.set_ylim(0, rates.max() * 1.1)
    _time_panel(ax, edges[0], edges[-1], "requests a second")
    return ax


def good_share(board, *, ax=None, targets=None):
    """Per endpoint its good share bin by bin (%), with its SLO from ``targets`` (route -> share) dashed."""
    ax = _axes(ax)
    board = check_board(board)
    targets = {} if targets is None else targets
    if not isinstance(targets, dict):
        raise validate.WrongType(f"targets must be a dict of route to SLO share (e.g. {{'browse': 0.999}}) or None, "
                                 f"got {validate.show(targets)}")
    t = np.asarray(board["t"], dtype=float) / HOUR
    colors = route_colors(board["good"])
    shade(ax, board["faults"], min_width=_min_width(*_day(board)))
    ax.set_yscale("function", functions=(_nines, _percent))
    for route, share in board["good"].items():
        shown = np.minimum(np.asarray(share, dtype=float) * 100, _percent(NINES_TOP))   # 100% drawn at the top
        ax.step(t, shown, where="post", color=colors[route], label=route, lw=1.2)
        if route in targets:
            ax.axhline(validate.probability(f"targets[{route!r}]", targets[route]) * 100, color=colors[route],
                       ls="--", lw=0.9)
    low = np.nanmin([np.nanmin(np.asarray(s, dtype=float)) for s in board["good"].values()] + [1.0])
    floor = next(n for n in range(NINES_TOP - 2, -1, -1) if n == 0 or _percent(n) <= low * 100)  # whole nines
    ticks = np.arange(floor, NINES_TOP + 1)
    fixed_ticks(ax.yaxis, _percent(ticks))
    ax.set_yticklabels(["0" if n == 0 else f"{_percent(n):.{max(0, n - 2)}f}" for n in ticks])
    ax.set_ylim(_percent(floor), _percent(NINES_TOP + 0.25))
    _time_panel(ax, *_day(board), "good requests (%, nines scale)")
    ax.set_title(f"good share per endpoint (dashed: SLO; {_percent(NINES_TOP):g}%+ at the top)", fontsize="medium")
    return ax


def budget_burn(board, *, ax=None):
    """Per endpoint the share of the day's error budget spent by the end of each bin (%), 100% marked."""
    ax = _axes(ax)
    board = check_board(board)
    edges = np.append(np.asarray(board["t"], dtype=float), _until(board)) / HOUR
    colors = route_colors(board["budget_spent"])
    shade(ax, board["faults"], min_width=_min_width(*_day(board)))
    ax.axhline(100, color="0.3", lw=0.8, ls=":")
    top = 100.0
    for route, spent in board["budget_spent"].items():
        spent = np.asarray(spent, dtype=float) * 100
        ax.plot(edges, np.append(0.0, spent), color=colors[route], label=route, lw=1.2)
        top = max(top, float(np.nanmax(spent)) if spent.size else 0.0)
    ax.set_ylim(0, top * 1.08)
    _time_panel(ax, *_day(board), "error budget spent (%)")
    ax.set_title("error budget burn (dotted: all of it)", fontsize="medium")
    return ax


def cost_bars(board, *, ax=None, items=None, labels: bool = True):
    """Where the money went: a bar per item that cost anything, the most expensive on top, each with
    its amount; ``items`` (names) fixes the rows instead (to compare days), ``labels`` names them."""
    ax = _axes(ax)
    board = check_board(board)
    amounts = dict(board["cost"])
    names = [n for n, v in sorted(amounts.items(), key=lambda kv: -kv[1]) if v > 0] if items is None else list(items)
    if not names:
        ax.text(0.5, 0.5, "nothing spent", ha="center", va="center", transform=ax.transAxes)
        return ax
    values = [float(amounts.get(n, 0.0)) for n in names]
    rows = np.arange(len(names))
    ax.barh(rows, values, color="tab:gray")
    high = max(max(values), 1e-9)
    for row, amount in zip(rows, values):
        ax.text(amount + high * 0.02, row, money(amount), va="center", fontsize="small")
    ax.set_yticks(rows, names if labels else [""] * len(names), fontsize="small")
    ax.set_ylim(len(names) - 0.4, -0.6)
    ax.set_xlim(0, high * 1.45)
    ax.set_xlabel("dollars over the day")
    ax.set_title(f"cost: {money(sum(amounts.values()))}", fontsize="medium")
    return ax


def _figure(fig, size):
    if fig is None:
        import matplotlib.pyplot as plt
        return plt.figure(figsize=size, layout="constrained")
    from matplotlib.figure import FigureBase
    if not isinstance(fig, FigureBase):
        raise validate.WrongType(f"fig must be a matplotlib Figure or SubFigure or None (a new figure), "
                                 f"got {validate.show(fig)}")
    return fig


def _legend(fig, ax) -> None:
    """The endpoints' legend, once, outside every panel (below them): it covers no data."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=max(1, len(labels)), frameon=False)


def draw(board, *, fig=None, targets=None, title: str | None = None) -> dict:
    """The four panels of ``board`` in ``fig`` (a Figure or SubFigure; None: a new figure), the time
    panels on the left sharing the hours, the cost on the right; the axes by panel name."""
    board = check_board(board)
    fig = _figure(fig, (11, 7))
    grid = fig.add_gridspec(3, 2, width_ratios=(2.2, 1), height_ratios=(1, 1.3, 1.3))
    axes = {"faults": fig.add_subplot(grid[0, 0])}
    axes["good"] = fig.add_subplot(grid[1, 0], sharex=axes["faults"])
    axes["budget"] = fig.add_subplot(grid[2, 0], sharex=axes["faults"])
    axes["cost"] = fig.add_subplot(grid[:, 1])
    fault_rows(board, ax=axes["faults"])
    good_share(board, ax=axes["good"], targets=targets)
    budget_burn(board, ax=axes["budget"])
    cost_bars(board, ax=axes["cost"])
    for name in ("faults", "good"):
        axes[name].set_xlabel("")
    _legend(fig, axes["good"])
    if title is not None:
        fig.suptitle(validate.text("title", title))
    return axes


def compare(boards: dict, *, fig=None, targets=None) -> dict:
    """Several scoreboards (``{"baseline": board, "reference": board}``) side by side: a column each,
    the four panels as rows, the cost items in the same order in every column (names on the left
    only; so are the fault rows, which are the same when the boards are of one day); the axes by
    ``(panel, name)``."""
    if not isinstance(boards, dict) or not boards:
        raise validate.WrongType(f"boards must be a non-empty dict of name to scoreboard dict, got {validate.show(boards)}")
    for board in boards.values():
        check_board(board)
    fig = _figure(fig, (5.5 * len(boards) + 2, 10))
    totals: dict = {}
    for board in boards.values():
        for item, amount in board["cost"]:
            totals[item] = totals.get(item, 0.0) + float(amount)
    items = [n for n, v in sorted(totals.items(), key=lambda kv: -kv[1]) if v > 0]
    grid = fig.add_gridspec(4, len(boards), height_ratios=(1, 1.3, 1.3, 1.6))
    axes = {}
    for col, (name, board) in enumerate(boards.items()):
        first = col == 0
        for row, panel in enumerate(("faults", "good", "budget", "cost")):
            axes[(panel, name)] = fig.add_subplot(grid[row, col])
        fault_rows(board, ax=axes[("faults", name)])
        good_share(board, ax=axes[("good", name)], targets=targets)
        budget_burn(board, ax=axes[("budget", name)])
        cost_bars(board, ax=axes[("cost", name)], items=items, labels=first)
        if not first:
            axes[("faults", name)].set_yticklabels([])
        for panel in ("faults", "good"):
            axes[(panel, name)].set_xlabel("")
        axes[("faults", name)].set_title(f"{name}: faults of the day, and pages", fontsize="medium")
    _legend(fig, axes[("good", next(iter(boards)))])
    return axes


__all__ = ["BOARD_KEYS", "FAULT_COLORS", "ROUTE_COLORS", "check_board", "fault_color", "route_colors", "shade", "money",
           "fault_timeline", "traffic", "fault_rows", "good_share", "budget_burn", "cost_bars", "draw", "compare"]
