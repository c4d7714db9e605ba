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
