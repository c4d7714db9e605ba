"""No legend in the figures of notebooks 00-09 covers what it explains: every code cell of a notebook runs
here in order (headless), and after each one every legend of every open figure is checked against the
lines, markers and bars drawn in its axes."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0[0-9]_*.ipynb"))
#: Pixels a legend may graze a line by (its frame's own padding).
GRAZE = 2.0


def _within(points: np.ndarray, box, pad: float = 0.0) -> np.ndarray:
    return ((points[:, 0] > box.x0 + pad) & (points[:, 0] < box.x1 - pad)
            & (points[:, 1] > box.y0 + pad) & (points[:, 1] < box.y1 - pad))


def _inside(points: np.ndarray, box, axes_box) -> int:
    """How many of ``points`` (display coordinates) are drawn (inside the axes, not clipped) and under ``box``."""
    return int((_within(points, box, GRAZE) & _within(points, axes_box)).sum())


def _dense(xy: np.ndarray, per_segment: int = 25) -> np.ndarray:
    """The points along a polyline, so that a segment crossing the box counts even with no vertex in it."""
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) < 2:
        return xy
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[None, :, None]
    starts, ends = xy[:-1, None, :], xy[1:, None, :]
    return np.concatenate([(starts + t * (ends - starts)).reshape(-1, 2), xy[-1:]])


def covered(ax, legend) -> list[str]:
    """What of ``ax``'s data lies under ``legend``: "label: n points" for each line, marker set or bar."""
    renderer = ax.figure.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    found = []
    for line in ax.lines:
        if not line.get_visible() or len(line.get_xydata()) == 0:
            continue
        points = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
        n = _inside(_dense(points) if line.get_linestyle() not in ("None", "") else points, box, ax.bbox)
        if n:
            found.append(f"line {line.get_label()!r}: {n} points")
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and coll.get_visible() and len(coll.get_offsets()):
            n = _inside(coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), dtype=float)), box, ax.bbox)
            if n:
                found.append(f"markers {coll.get_label()!r}: {n}")
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_visible() and patch.get_width() and patch.get_height():
            corners = patch.get_window_extent(renderer)
            if corners.width >= ax.bbox.width * 0.9 or corners.height >= ax.bbox.height * 0.9:
                continue                        # a shaded span (a fault window, a phase): background
            common = corners.intersection(corners, box)
            if common is not None and common.width > GRAZE and common.height > GRAZE:
                found.append(f"bar {patch.get_label()!r}")
    return found


def check_open_figures(where: str) -> list[str]:
    problems = []
    for number in plt.get_fignums():
        fig = plt.figure(number)
        fig.canvas.draw()
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is not None and legend.get_visible():
                problems += [f"{where}, axes {ax.get_title()!r}: legend covers {what}" for what in covered(ax, legend)]
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_legend_covers_the_data_it_explains(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "__main__", "display": lambda *a, **k: None}
    problems = []
    plt.close("all")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for index, cell in enumerate(nb["cells"]):
                source = "".join(cell["source"])
                if cell["cell_type"] != "code" or "NBVAL_SKIP" in source:
                    continue
                exec(compile(source, f"{path.name}[{index}]", "exec"), namespace)
                problems += check_open_figures(f"{path.name} cell {index}")
                plt.close("all")
    finally:
        plt.close("all")
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_legend_that_covers_a_line_and_one_that_does_not():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0.95, 0.95], label="along the top")
    ax.plot([0, 1], [0.05, 0.05], label="along the bottom")
    ax.set_ylim(0, 1)
    fig.canvas.draw()
    found = covered(ax, ax.legend(loc="upper right"))
    assert len(found) == 1 and found[0].startswith("line 'along the top': ")
    assert covered(ax, ax.legend(loc="center")) == []
    plt.close(fig)
