"""The dashboard helper, driven headlessly as a learner would drive it."""
import pytest

from resilience_sim.dashboard import Dashboard, Slider


def make(calls, **kw):
    def compute(rate, replicas, mode="plain"):
        calls.append((rate, replicas, mode))
        return {"value": rate * replicas, "mode": mode}

    def draw(ax, result):
        ax.bar([0], [result["value"]])

    sliders = [Slider("rate", "Arrival rate", "req/s", 1, 100, 10),
               Slider("replicas", "Replicas", "", 1, 5, 2, integer=True)]
    return Dashboard(compute, draw, sliders, summary=lambda r: f"value {r['value']:g}", **kw)


def test_sliders_have_units_ranges_and_no_continuous_update():
    dash = make([])
    rate = dash.sliders["rate"]
    assert rate.description == "Arrival rate (req/s)"
    assert (rate.min, rate.max, rate.value) == (1, 100, 10)
    assert not rate.continuous_update
    assert dash.sliders["replicas"].description == "Replicas"
    assert "rs-dashboard" in dash.widget._dom_classes
    assert "rs-dashboard-output" in dash.picture._dom_classes
    assert dash.picture.layout.width == "720px" and dash.picture.layout.height == "256px"


def test_moving_a_slider_reruns_and_redraws():
    calls = []
    dash = make(calls)
    before = dash.picture.value
    dash.sliders["rate"].value = 50
    assert dash.results[""]["value"] == 100
    assert dash.text.value == "value 100"
    assert bytes(dash.picture.value) != bytes(before) and bytes(dash.picture.value).startswith(b"\x89PNG")
    assert calls[-1] == (50, 2, "plain")


def test_results_are_cached_by_parameters():
    calls = []
    dash = make(calls)
    dash.set(rate=20)
    dash.set(rate=10)
    assert len(calls) == 2          # back at the default: served from the cache
    dash.rerun()
    assert len(calls) == 3


def test_without_and_with_variants_side_by_side():
    calls = []
    dash = make(calls, variants={"without": {"mode": "plain"}, "with": {"mode": "smart"}})
    assert set(dash.results) == {"without", "with"}
    assert dash.results["with"]["mode"] == "smart"
    assert "<b>without</b>" in dash.text.value and "<b>with</b>" in dash.text.value


def test_a_failing_run_is_shown_not_swallowed():
    def compute(rate):
        if rate > 50:
            raise ValueError("rate must be <= 50 here")
        return rate

    dash = Dashboard(compute, lambda ax, r: ax.plot([r]), [Slider("rate", "Rate", "req/s", 1, 100, 10)])
    dash.set(rate=80)
    assert "rate must be &lt;= 50 here" in dash.text.value


def test_unknown_slider_name_is_rejected():
    with pytest.raises(ValueError, match="slider must be one of"):
        make([]).set(speed=3)


def test_a_choice_offers_named_options_and_passes_their_value():
    from resilience_sim.dashboard import Choice

    calls = []

    def compute(rate, mode):
        calls.append(mode)
        return rate

    dash = Dashboard(compute, lambda ax, r: ax.plot([r]),
                     [Slider("rate", "Rate", "req/s", 1, 100, 10), Choice("mode", "mode", (("fast", 1), ("safe", 0)), 1)])
    assert [o[0] for o in dash.sliders["mode"].options] == ["fast", "safe"] and calls == [1]
    dash.set(mode=0)
    assert calls == [1, 0]
    with pytest.raises(ValueError, match="default must be one of"):
        Choice("mode", "mode", (("fast", 1), ("safe", 0)), 2)
    with pytest.raises(ValueError, match="at least two"):
        Choice("mode", "mode", (("fast", 1),), 1)


def test_the_error_message_goes_once_a_run_works_again():
    def compute(rate):
        if rate > 50:
            raise ValueError("too fast")
        return rate

    dash = Dashboard(compute, lambda ax, r: ax.plot([r]), [Slider("rate", "Rate", "req/s", 1, 100, 10)])
    dash.set(rate=80)
    assert "too fast" in dash.text.value
    dash.set(rate=20)
    assert dash.text.value == ""             # used to stay on screen when there is no summary


def test_set_refuses_values_outside_a_slider_instead_of_clamping():
    calls = []
    dash = make(calls)
    with pytest.raises(ValueError, match=r"rate must be in \[1, 100\]"):
        dash.set(rate=1000)
    with pytest.raises(ValueError, match="replicas must be a whole number in \\[1, 5\\]"):
        dash.set(replicas=2.5)
    assert dash.params == {"rate": 10, "replicas": 2} and len(calls) == 1


def test_variants_must_not_set_a_sliders_keyword():
    with pytest.raises(ValueError, match="must not set a slider's keyword"):
        make([], variants={"fast": {"rate": 90}})
