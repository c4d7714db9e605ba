"""Sagas: the policy's decisions with plain states, and the orchestrator under random faults."""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from resilience_sim import Outage, World
from resilience_sim.policies import ThresholdRule
from resilience_sim.policies.saga import COMMITTED, COMPENSATE, COMPENSATED, END, RUN, Saga, SagaStep
from resilience_sim.sim.database import Database
from resilience_sim.sim.saga import ORDERS, Orchestrator, Participant

ORDER = Saga([SagaStep("inventory", "compensatable"), SagaStep("payment", "pivot", retries=3),
              SagaStep("shipping", "retriable")])


def walk(saga, outcomes):
    """Feed ``outcomes`` (True/False per action) and return the actions taken and the final state."""
    state, actions = saga.start(), []
    for ok in outcomes:
        action, subject = saga.next_action(state)
        if action == END:
            break
        actions.append((action, subject.name, ok))
        state = saga.record(state, ok)
    return actions, state


def test_all_steps_succeed_and_the_saga_commits():
    actions, state = walk(ORDER, [True] * 5)
    assert [a[1] for a in actions] == ["inventory", "payment", "shipping"] and state["status"] == COMMITTED


def test_a_pivot_that_keeps_failing_is_retried_then_compensated_in_reverse():
    actions, state = walk(ORDER, [True, False, False, False, False, False, True])
    assert actions[1:5] == [(RUN, "payment", False)] * 4          # the first try and 3 retries
    assert actions[5] == (COMPENSATE, "inventory", False) and actions[6] == (COMPENSATE, "inventory", True)
    assert state["status"] == COMPENSATED and state["to_undo"] == ["inventory"]    # the pivot is never undone


def test_a_pivot_that_gets_no_answer_is_retried_not_compensated():
    state = ORDER.record(ORDER.start(), True)
    for _ in range(20):
        state = ORDER.record(state, False, "down")
    assert ORDER.next_action(state)[0] == RUN and state["tries"] == 20


def test_a_retriable_step_is_retried_never_compensated():
    actions, state = walk(ORDER, [True, True] + [False] * 50 + [True])
    assert {a[0] for a in actions[2:]} == {RUN} and state["status"] == COMMITTED


def test_only_completed_steps_are_compensated_in_reverse_order():
    saga = Saga([SagaStep("a"), SagaStep("b"), SagaStep("c", retries=0)])
    actions, state = walk(saga, [True, True, False, True, True, True])
    # c failed, but may have applied before the failure was seen: undone first (a no-op if it never applied)
    assert [(a[0], a[1]) for a in actions[3:]] == [(COMPENSATE, "c"), (COMPENSATE, "b"), (COMPENSATE, "a")]
    assert state["undone"] == ["c", "b", "a"] and state["status"] == COMPENSATED


def test_a_first_step_that_fails_is_undone_in_case_it_applied():
    actions, state = walk(Saga([SagaStep("a", retries=0), SagaStep("b")]), [False, True])
    assert actions[1][:2] == (COMPENSATE, "a") and state["status"] == COMPENSATED


@pytest.mark.parametrize("steps, match", [
    ([SagaStep("p", "pivot"), SagaStep("c", "compensatable")], "compensatable steps, then at most one pivot"),
    ([SagaStep("p", "pivot"), SagaStep("q", "pivot")], "at most one pivot"),
    ([SagaStep("a"), SagaStep("a")], "distinct names"),
    ([], "at least one"),
])
def test_sagas_out_of_order_are_refused(steps, match):
    with pytest.raises(ValueError, match=match):
        Saga(steps)


def test_a_compensatable_step_needs_an_undo():
    class NoUndo:
        def do(self, req, saga_id, amount):
            yield from ()
    world = World(1)
    with pytest.raises(ValueError, match="needs an undo"):
        Orchestrator(world, Database(world, "db"), ORDER, {"inventory": NoUndo(), "payment": NoUndo(),
                                                          "shipping": NoUndo()})


def test_recording_after_the_end_is_refused():
    _, state = walk(ORDER, [True] * 3)
    with pytest.raises(ValueError, match="has ended"):
        ORDER.record(state, True)


# --- the orchestrator under faults ------------------------------------------------------------------
def shop(*, crashes=(), outages=None, errors=(0.0, 0.0, 0.0), sagas=20, seed=1, supervisor=None, until=200.0):
    world = World(seed)
    db = Database(world, "orders_db")
    parts = {name: Participant(world, name, error_rate=e) for name, e in zip(("inventory", "payment", "shipping"), errors)}
    for name, windows in (outages or {}).items():
        Outage(parts[name].service if name in parts else db.service, windows)
    orch = Orchestrator(world, db, ORDER, parts, crashes=crashes, supervisor=supervisor)

    def customers():
        for i in range(sagas):
            try:
                yield from orch.start(None, i, amount=10.0)
            except Exception:
                pass
            yield world.env.timeout(0.5)
    world.env.process(customers())
    world.run(until)
    return db, parts, orch


def statuses(db):
    return [row["status"] for _, row in db.rows(ORDERS)]


@settings(max_examples=1000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(crashes=st.lists(st.floats(0, 12), max_size=3),
       errors=st.tuples(st.sampled_from([0.0, 0.2]), st.sampled_from([0.0, 0.5, 0.9]), st.sampled_from([0.0, 0.5])),
       outage=st.one_of(st.none(), st.tuples(st.sampled_from(["inventory", "payment", "shipping", "db"]),
                                             st.floats(0, 10), st.floats(0.5, 8))))
def test_every_saga_ends_confirmed_or_cancelled_and_money_and_stock_are_conserved(crashes, errors, outage):
    outages = None if outage is None else {outage[0]: [(outage[1], outage[1] + outage[2])]}
    db, parts, _ = shop(crashes=crashes, errors=errors, outages=outages, sagas=8, until=150.0)
    rows = dict(db.rows(ORDERS))
    assert all(r["status"] in ("CONFIRMED", "CANCELLED") for r in rows.values()), statuses(db)
    confirmed = {i for i, r in rows.items() if r["status"] == "CONFIRMED"}
    for name, part in parts.items():
        charged = {i for i, _ in part.db.rows("effects")}
        if name == "inventory":
            assert charged == confirmed, (name, charged, confirmed)       # cancelled ones were released
        else:
            assert charged == confirmed, (name, charged, confirmed)       # never past the pivot when cancelled
        assert part.total() == 10.0 * len(confirmed)


def test_an_orchestrator_crash_mid_saga_resumes_without_charging_twice():
    db, parts, orch = shop(crashes=[1.012, 3.3], sagas=10)
    assert statuses(db) == ["CONFIRMED"] * 10 and orch.process.crashes == 2
    assert parts["payment"].total() == 100.0


def test_the_supervisor_stops_new_sagas_while_errors_are_too_frequent():
    rule = ThresholdRule(0.5, 5.0, min_requests=3, resolution=0.5)
    db, parts, orch = shop(errors=(0.0, 1.0, 0.0), sagas=40, supervisor=rule, outages={})
    assert orch.refused > 0 and orch.started < 40
    assert set(statuses(db)) == {"CANCELLED"} and parts["inventory"].total() == 0
