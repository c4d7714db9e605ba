"""Every registered dashboard, as the browser test drives it: one keyboard step on its first slider
must change the picture (a slider that shows nothing at its default is a dead end for a learner)."""
import pytest

from resilience_sim.lessons import all_dashboards

DASHBOARDS = all_dashboards()


def test_every_notebook_up_to_the_last_has_a_dashboard():
    notebooks = {key.split("/")[0][:2] for key in DASHBOARDS}
    assert notebooks >= {f"{n:02d}" for n in range(9)}


@pytest.mark.parametrize("key", sorted(DASHBOARDS))
def test_one_step_of_the_first_slider_changes_the_picture(key):
    dash = DASHBOARDS[key]()
    name, slider = next(iter(dash.sliders.items()))
    before = bytes(dash.picture.value)
    step = slider.step if slider.value + slider.step <= slider.max else -slider.step
    slider.value = slider.value + step
    assert bytes(dash.picture.value) != before, f"{key}: moving {name} one step changed nothing"
    assert "Could not run" not in dash.text.value
