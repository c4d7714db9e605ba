"""Every registered dashboard, as the browser test drives it: one keyboard step on its first slider
must change the picture (a slider that shows nothing at its default is a dead end for a learner)."""
import pytest

from resilience_sim.lessons import all_dashboards

DASHBOARDS = all_dashboards()


def test_every_notebook_up_to_the_last_has_a_dashboard():
    notebooks = {key.split("/")[0][:2] for key in DASHBOARDS}
    assert notebooks >= {f"{n:02d}" for n in range(10)}


@pytest.mark.parametrize("key", sorted(DASHBOARDS))
def test_one_step_of_the_first_slider_changes_the_picture(key):
    dash = DASHBOARDS[key]()
    name, slider = next(iter(dash.sliders.items()))
    before = bytes(dash.picture.value)
    step = slider.step if slider.value + slider.step <= slider.max else -slider.step
    slider.value = slider.value + step
    assert bytes(dash.picture.value) != before, f"{key}: moving {name} one step changed nothing"
    assert "Could not run" not in dash.text.value


@pytest.mark.parametrize("key", sorted(DASHBOARDS))
def test_a_reused_figure_draws_exactly_what_a_fresh_one_draws(key):
    """Redraws reuse the figure (it is cheaper); moving each slider must give the same pixels as a
    figure built anew."""
    dash = DASHBOARDS[key]()
    assert bytes(dash.picture.value) == dash.render(fresh=True)
    for name, slider in dash.sliders.items():
        options = getattr(slider, "options", None)
        if options:                                   # a Choice: pick another option
            values = [v for _, v in options] if isinstance(options[0], tuple) else list(options)
            slider.value = next(v for v in values if v != slider.value)
        else:
            step = slider.step if slider.value + slider.step <= slider.max else -slider.step
            slider.value = slider.value + step * 3 if slider.min <= slider.value + step * 3 <= slider.max \
                else slider.value + step
        assert bytes(dash.picture.value) == dash.render(fresh=True), f"{key}: after moving {name}"


def test_a_lesson_module_can_be_reloaded_and_keys_stay_unique_across_lessons():
    import importlib

    import resilience_sim.lessons.welcome as welcome
    from resilience_sim.lessons import DASHBOARDS as registry, dashboard
    before = {k for k in registry if k.startswith("00_")}
    importlib.reload(welcome)                     # %autoreload does this: no "registered already"
    assert {k for k in registry if k.startswith("00_")} == before
    key = sorted(before)[0]
    with pytest.raises(ValueError, match="registered already by resilience_sim.lessons.welcome"):
        dashboard(key)(lambda: None)


def _titled(canvas_class, case: str):
    """Two titled panels; ``case`` puts something in a title's way (or not)."""
    import numpy as np
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5.0, 2.5), dpi=72)
    canvas_class(fig)
    left, right = fig.subplots(1, 2, sharey=True)
    left.plot([0, 1, 2], [1e6 + 1, 1e6 + 3, 1e6 + 2] if case == "offset text" else [1, 3, 2])
    right.plot([0, 1, 2], [2, 1, 3])
    big = dict(fontsize=30, pad=0) if case == "big title, no pad" else {}    # its descent reaches below the top
    for ax, title in ((left, "without"), (right, "with a long title, right")):
        ax.set_title(title, **big)
        ax.set_title("left", loc="left", fontsize=7)
    if case == "ticks on top":
        right.xaxis.tick_top()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy(), fig


@pytest.mark.parametrize("case", ["plain", "offset text", "ticks on top", "big title, no pad"])
def test_titles_placed_without_matplotlibs_search_give_agg_s_pixels_and_the_search_comes_back(case):
    """RedrawCanvas places titles at the top without the search where it cannot move them; where an
    offset text, top ticks or a title's own descent is in the way it draws with the search: Agg's pixels."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from resilience_sim.views.canvas import RedrawCanvas
    want, _ = _titled(FigureCanvasAgg, case)
    got, fig = _titled(RedrawCanvas, case)
    assert np.array_equal(got, want)
    assert all(ax._autotitlepos for ax in fig.axes)            # the search is back on for the next draw
    fig.canvas.draw()
    assert np.array_equal(np.asarray(fig.canvas.buffer_rgba()), want)


@pytest.mark.parametrize("facecolor", ["white", (1.0, 1.0, 1.0, 0.0)])
def test_the_picture_is_agg_s_pixels_as_rgb_when_opaque_and_rgba_when_not(facecolor):
    import io

    import numpy as np
    from PIL import Image

    from resilience_sim.views.dashboard import Dashboard, Slider

    def draw(ax, r):
        ax.plot([0, 1], [0, r])
        ax.set_title("a title")
    dash = Dashboard(lambda x: x, draw, [Slider("x", "x", "", 0, 1, 0.5)], figsize=(3.0, 2.0))
    dash._figure.set_facecolor(facecolor)
    png = dash.render()
    image = Image.open(io.BytesIO(png))
    assert image.mode == ("RGB" if facecolor == "white" else "RGBA")
    want = np.asarray(dash._figure.canvas.buffer_rgba())
    assert np.array_equal(np.asarray(image.convert("RGBA")), want)
