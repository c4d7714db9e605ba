"""An experiment checks its steady state before (a gate), runs the method, checks again under the fault,
and always rolls back exactly once."""
import pytest

from resilience_sim.live.experiment import Action, Experiment, Probe


def system():
    state = {"fault": False, "log": []}
    probe = Probe("ok", lambda: 0.5 if state["fault"] else 1.0, lambda v: v >= 0.9, "availability >= 90%")
    inject = Action("inject", lambda: (state.__setitem__("fault", True), state["log"].append("inject"))[1])
    undo = Action("undo", lambda: (state.__setitem__("fault", False), state["log"].append("undo"))[1])
    return state, probe, inject, undo


def test_a_fault_that_breaks_the_slo_is_reported_as_deviated_and_rolled_back():
    state, probe, inject, undo = system()
    report = Experiment("kill it", steady_state=[probe], method=[inject], rollbacks=[undo],
                        check_recovery=True).run()
    assert report.steady_before and not report.hypothesis_held
    assert report.status.startswith("deviated") and state["log"] == ["inject", "undo"]
    assert [c.held for c in report.recovered] == [True]
    assert "FAILED: availability >= 90% = 0.5" in str(report)


def test_a_fault_the_system_absorbs_holds_the_hypothesis():
    state, probe, _, undo = system()
    harmless = Action("harmless", lambda: "nothing")
    report = Experiment("absorbed", steady_state=probe, method=harmless, rollbacks=undo).run()
    assert report.hypothesis_held and report.method == {"harmless": "nothing"}


def test_no_steady_state_before_means_the_method_is_not_run_but_rollbacks_are():
    state, probe, inject, undo = system()
    state["fault"] = True
    report = Experiment("gate", steady_state=[probe], method=[inject], rollbacks=[undo]).run()
    assert report.status.startswith("not steady") and state["log"] == ["undo"] and not report.after


def test_a_method_that_raises_still_rolls_back_then_raises():
    state, probe, _, undo = system()
    def boom():
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        Experiment("boom", steady_state=[probe], method=[Action("boom", boom)], rollbacks=[undo]).run()
    assert state["log"] == ["undo"]


def test_a_probe_that_raises_does_not_hold_and_keeps_its_error():
    probe = Probe("broken", lambda: 1 / 0, lambda v: True)
    report = Experiment("x", steady_state=[probe], method=[Action("a", lambda: None)]).run()
    assert not report.steady_before and "ZeroDivisionError" in report.before[0].error


def test_bad_experiments_are_refused_by_name():
    with pytest.raises(ValueError, match="steady_state"):
        Experiment("x", steady_state=[], method=[Action("a", lambda: None)])
    with pytest.raises(ValueError, match="method must hold Action"):
        Experiment("x", steady_state=[Probe("p", lambda: 1, bool)], method=[lambda: None])
    with pytest.raises(Exception, match="measure"):
        Probe("p", 3, bool)
