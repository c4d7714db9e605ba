"""The redraw canvas draws exactly what Agg draws, redraw after redraw, whatever the text does."""
import io

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from resilience_sim.views import canvas as canvas_module
from resilience_sim.views.canvas import RedrawCanvas, TextMemoRenderer


def _busy_figure(canvas_class, *, color="k", title="requests answered (%)") -> Figure:
    """Text of every kind: ticks, a rotated label, a title, a legend, multi-line, mathtext, an
    annotation, bold and small type, a text half outside the axes (clipped) and a transparent one."""
    fig = Figure(figsize=(6.0, 3.0), dpi=72)
    canvas_class(fig)
    left, right = fig.subplots(1, 2)
    left.plot([0, 1, 2], [3, 1, 2], label="plain TTL")
    left.plot([0, 1, 2], [1, 2, 3], label="stale-if-error")
    left.set_title(title, color=color)
    left.set_ylabel("age (s)")
    left.legend(fontsize=8)
    left.text(0.5, 2.5, "two\nlines", fontsize=7, fontweight="bold", color=color)
    left.annotate("peak", (0, 3), xytext=(10, -10), textcoords="offset points", alpha=0.5)
    right.bar(range(3), [1, 3, 2])
    right.set_xticks(range(3), ["lost", "invented", "shipped\ntwice"], rotation=30)
    right.set_xlabel(r"$\mu - \lambda$ (1/s)")
    right.text(2.6, 1.0, "clipped at the edge", clip_on=True)
    return fig


def _pixels(fig: Figure) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return np.asarray(Image.open(buf))


def test_a_redraw_gives_the_pixels_of_a_plain_agg_canvas_the_first_time_and_every_time_after():
    want = _pixels(_busy_figure(FigureCanvasAgg))
    fig = _busy_figure(RedrawCanvas)
    for _ in range(3):                               # the first draw records, the next ones replay
        assert np.array_equal(_pixels(fig), want)
    assert isinstance(fig.canvas.get_renderer(), TextMemoRenderer) and fig.canvas.get_renderer()._texts


def test_colour_and_text_changed_between_redraws_are_drawn_as_agg_draws_them():
    fig = _busy_figure(RedrawCanvas)
    _pixels(fig)
    axes = fig.axes[0]
    axes.title.set_color("tab:red")
    axes.texts[0].set_color("tab:blue")
    axes.set_title("another title")
    want = _busy_figure(FigureCanvasAgg, title="another title")
    want.axes[0].title.set_color("tab:red")
    want.axes[0].texts[0].set_color("tab:blue")
    assert np.array_equal(_pixels(fig), _pixels(want))


def test_one_renderer_serves_every_redraw_until_the_size_changes():
    fig = _busy_figure(RedrawCanvas)
    first = fig.canvas.get_renderer()
    _pixels(fig)
    assert fig.canvas.get_renderer() is first
    fig.set_size_inches(5.0, 3.0)
    assert fig.canvas.get_renderer() is not first
    assert np.array_equal(_pixels(fig), _pixels(_resized(_busy_figure(FigureCanvasAgg))))


def _resized(fig: Figure) -> Figure:
    fig.set_size_inches(5.0, 3.0)
    return fig


def test_the_memory_of_texts_stays_bounded(monkeypatch):
    monkeypatch.setattr(canvas_module, "MAX_TEXTS", 5)
    fig = Figure(figsize=(4.0, 2.0), dpi=72)
    RedrawCanvas(fig)
    ax = fig.subplots()
    for i in range(12):
        ax.text(0.1, 0.05 * i, f"text {i}")
    _pixels(fig)
    assert 0 < len(fig.canvas.get_renderer()._texts) <= 5


@pytest.mark.parametrize("size", [6, 9.5, 14])
def test_font_heights_are_matplotlibs_own(size):
    from matplotlib.font_manager import FontProperties
    renderer = TextMemoRenderer(100, 100, 72)
    ascent, descent, gap = renderer._get_font_height_metrics(FontProperties(size=size))
    assert ascent > 0 and descent > 0 and gap >= 0
    assert renderer._get_font_height_metrics(FontProperties(size=size)) == (ascent, descent, gap)
    assert renderer._get_font_height_metrics(FontProperties(size=size), "more") == (None, None, None)
