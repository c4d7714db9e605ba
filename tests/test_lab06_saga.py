"""Lab 06's checks accept the reference solution and reject each typical mistake with a message that
names it. The reference saga and undo come from the solution notebook itself (its code cells run here
in order), so the notebook stays the single source of truth. Each mistake is written the way a learner
would write it, switched on by a keyword."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from lab_support import fails, run_child, solution_namespace

from resilience_sim import ServiceError
from resilience_sim.labs import saga as check
from resilience_sim.policies.saga import REFUSALS

ROOT = Path(__file__).resolve().parents[1]
SAGA_CHECKS = ["forward", "retry_or_compensate", "compensation", "against_reference"]


@pytest.fixture(scope="module")
def ref() -> dict:
    """The namespace left by running every code cell of the solution notebook."""
    return solution_namespace("06_saga.ipynb")


# --- the reference solution passes every check ---------------------------------------------------
def test_the_solution_passes_every_check(ref, capsys):
    for name in SAGA_CHECKS:
        getattr(check, name)(ref["OrderSaga"])
    check.undo(ref["undo"])
    check.shop(ref["OrderSaga"], ref["undo"])
    out = capsys.readouterr().out
    assert out.count("✔ ") == 6 and out.count("\n") == 6, out


def test_the_solution_agrees_with_the_course_saga_on_more_random_sequences(ref):
    for seed in range(200, 1200):
        check._random_sequence(ref["OrderSaga"], seed)


def test_the_solution_holds_on_more_generated_shops(ref):
    check.shop(ref["OrderSaga"], ref["undo"], runs=150, seed=5)


# --- a saga with one deliberate mistake switched on -------------------------------------------------
SAGA_MISTAKES = {
    "never_commits", "never_compensated", "mutates", "tries_in_self", "class_cache", "off_by_one_retries",
    "one_extra_try", "ignore_retries", "compensate_first_failure", "pivot_always_compensates",
    "pivot_retries_forever", "retriable_compensates", "no_tries_reset", "forward_order", "compensate_all",
    "skip_failed", "undo_pivot", "skip_failed_undo", "give_up_undo", "nothing_to_undo_pending", "name_not_step",
    "no_default_reason", "loop_forever", "returns_none", "compensate_again", "done_in_self"}


def saga_class(**mistakes):
    """The solution's saga, rewritten here so that each keyword switches on one typical mistake."""
    unknown = set(mistakes) - SAGA_MISTAKES
    assert not unknown, unknown
    m = mistakes.get

    class OrderSaga:
        names: dict = {}                   # "class_cache": a lookup table in the class body, one for all sagas

        def __init__(self, steps):
            self.steps = list(steps)
            self.tries = 0

        def start(self):
            return {"status": "run", "step": 0, "tries": 0, "done": [], "to_undo": [], "undone": []}

        def _step(self, name):
            if m("class_cache"):
                if not self.names:
                    self.names.update({s.name: s for s in self.steps})
                return self.names[name]
            return next(s for s in self.steps if s.name == name)

        def next_action(self, state):
            if state["status"] in ("committed", "compensated"):
                return "end", state["status"]
            if state["status"] == "run":
                step = self.steps[state["step"]]
                return ("run", step.name) if m("name_not_step") else ("run", step)
            if m("loop_forever"):
                i = len(state["to_undo"]) - 1
                while state["to_undo"][i] in state["undone"]:
                    pass                                    # forgot i -= 1
                return "compensate", self._step(state["to_undo"][i])
            order = state["to_undo"] if m("forward_order") else list(reversed(state["to_undo"]))
            pending = order if m("compensate_again") else [n for n in order if n not in state["undone"]]
            return "compensate", self._step(pending[0])

        def record(self, state, ok, reason="error"):
            if m("returns_none"):
                return None
            action, step = self.next_action(state)
            step = self._step(step) if isinstance(step, str) else step
            if m("mutates"):
                new = state
            else:
                new = {**state, "done": list(state["done"]), "to_undo": list(state["to_undo"]),
                       "undone": list(state["undone"])}
            if action == "compensate":
                if not ok and not m("skip_failed_undo"):
                    if m("give_up_undo"):
                        new["status"] = "compensated"
                        return new
                    new["tries"] += 1
                    return new
                new["undone"].append(step.name)
                new["tries"] = 0
                if len(new["undone"]) == len(new["to_undo"]) and not m("never_compensated"):
                    new["status"] = "compensated"
                return new
            if ok:
                new["done"].append(step.name)
                if m("done_in_self"):                   # one list in the object, for every order
                    self.done = getattr(self, "done", []) + [step.name]
                    new["done"] = list(self.done)
                new["step"] += 1
                if not m("no_tries_reset"):
                    new["tries"] = 0
                self.tries = 0
                if new["step"] == len(self.steps) and not m("never_commits"):
                    new["status"] = "committed"
                return new
            new["tries"] += 1
            self.tries += 1
            tries = self.tries if m("tries_in_self") else new["tries"]
            retries = 2 if m("ignore_retries") else 0 if m("compensate_first_failure") else step.retries
            within = (tries < retries) if m("off_by_one_retries") else (tries <= retries + 1) if m("one_extra_try") \
                else (tries <= retries)
            no_answer = reason not in REFUSALS
            if m("pivot_always_compensates"):
                no_answer = False
            if m("pivot_retries_forever"):
                no_answer = True
            if (step.kind == "retriable" and not m("retriable_compensates")) or (step.kind == "pivot" and no_answer) \
                    or within:
                return new
            if m("compensate_all"):
                new["to_undo"] = [s.name for s in self.steps if s.kind == "compensatable"]
            elif m("skip_failed"):
                new["to_undo"] = list(new["done"])
            elif m("undo_pivot"):
                new["to_undo"] = new["done"] + [step.name] if step.kind != "retriable" else list(new["done"])
            else:
                new["to_undo"] = new["done"] + ([step.name] if step.kind == "compensatable" else [])
            if m("retriable_compensates") and step.kind == "retriable":
                new["to_undo"] = [n for n in new["done"] if self._step(n).kind == "compensatable"]
            new["status"] = "compensate" if (new["to_undo"] or m("nothing_to_undo_pending")) else "compensated"
            new["tries"] = 0
            return new

    if m("no_default_reason"):
        class OrderSaga(OrderSaga):   # noqa: F811 - the same saga with the task's default dropped
            def record(self, state, ok, reason):
                return super().record(state, ok, reason)
    if m("tries_in_self"):
        record = OrderSaga.record

        def record_with_tries(self, state, ok, reason="error"):
            new = record(self, state, ok, reason)
            if not ok and new is not None and new.get("status") == "run":
                new["tries"] = self.tries             # counted in the object, copied into the state
            return new
        OrderSaga.record = record_with_tries
    return OrderSaga


UNDO_MISTAKES = {"not_idempotent", "refund_never_applied", "fixed_amount", "adds_amount", "raise_conflict",
                 "swallow_all", "memory_global", "not_generator", "delete_do", "retry_spins", "touches_others",
                 "get_then_insert", "swallow_commit"}
_UNDONE: set = set()


def undo_fn(**mistakes):
    """The solution's undo, rewritten here so that each keyword switches on one typical mistake."""
    unknown = set(mistakes) - UNDO_MISTAKES
    assert not unknown, unknown
    m = mistakes.get

    def undo(ledger, req, saga_id):
        if m("memory_global"):
            if saga_id in _UNDONE:
                return
        if m("swallow_all") or m("retry_spins"):           # free reads: only the commit meets an outage
            rows = {i: r for i, r in ledger.db.rows("entries") if r["saga"] == saga_id}
        else:
            rows = dict((yield from ledger.db.select(req, "entries", where=lambda r: r["saga"] == saga_id)))
        if m("touches_others"):
            rows = dict(ledger.db.rows("entries"))
        done = rows.get((saga_id, "do"))
        if m("delete_do"):
            tx = ledger.db.transaction()
            tx.delete("entries", (saga_id, "do"))
            yield from tx.commit(req)
            return
        if done is None and not m("refund_never_applied"):
            return
        if (saga_id, "undo") in rows and not (m("not_idempotent") or m("raise_conflict") or m("retry_spins")):
            return
        amount = 10.0 if m("fixed_amount") else done["amount"]
        tx = ledger.db.transaction()
        key = (saga_id, "undo", len(rows)) if m("not_idempotent") else (saga_id, "undo")
        tx.insert("entries", key, {"saga": saga_id, "amount": amount if m("adds_amount") else -amount})
        if m("touches_others"):
            for other in rows:
                if other[0] != saga_id and other[1] == "do":
                    tx.delete("entries", other)
        if m("raise_conflict"):
            yield from tx.commit(req)
        elif m("retry_spins"):
            while True:
                try:
                    yield from tx.commit(req)
                    break
                except ServiceError as err:
                    if err.reason == "conflict":
                        break
                    tx = ledger.db.transaction()
                    tx.insert("entries", key, {"saga": saga_id, "amount": -amount})
        else:
            try:
                yield from tx.commit(req)
            except ServiceError as err:
                if m("swallow_all") or m("swallow_commit"):
                    return
                if err.reason != "conflict":
                    raise
        if m("memory_global"):
            _UNDONE.add(saga_id)

    if m("not_generator"):
        def undo(ledger, req, saga_id):   # noqa: F811 - no yield: a plain function
            done = ledger.db.get("entries", (saga_id, "do"))
            if done is not None:
                tx = ledger.db.transaction()
                tx.insert("entries", (saga_id, "undo"), {"saga": saga_id, "amount": -done["amount"]})
                tx.commit(req)
    if m("get_then_insert"):
        def undo(ledger, req, saga_id):   # noqa: F811 - free reads, then one insert: right
            done = ledger.db.get("entries", (saga_id, "do"))
            if done is None or ledger.db.get("entries", (saga_id, "undo")) is not None:
                return
            tx = ledger.db.transaction()
            tx.insert("entries", (saga_id, "undo"), {"saga": saga_id, "amount": -done["amount"]})
            try:
                yield from tx.commit(req)
            except ServiceError as err:
                if err.reason != "conflict":
                    raise
    return undo


def test_the_test_saga_and_undo_without_mistakes_pass_everything(capsys):
    for name in SAGA_CHECKS:
        getattr(check, name)(saga_class())
    check.undo(undo_fn())
    check.shop(saga_class(), undo_fn())
    assert capsys.readouterr().out.count("✔") == 6


@pytest.mark.parametrize("variant", ["delete_do", "get_then_insert"])
def test_other_right_undos_pass_too(variant, capsys):
    check.undo(undo_fn(**{variant: True}))
    check.shop(saga_class(), undo_fn(**{variant: True}), runs=20)
    assert capsys.readouterr().out.count("✔") == 2


def test_the_solutions_demo_numbers(ref):
    assert ref["actions"][-3:] == [("compensate", "hold payment"), ("compensate", "reserve stock"),
                                   ("end", "compensated")]
    assert ref["yours"]["undos"] == ref["careless"]["undos"] == 2
    assert ref["yours"]["total"] == 0 and ref["careless"]["total"] == -12


def _first_failure(cls) -> str:
    """The message of the first saga check that fails, as the learner meets them in order."""
    for name in SAGA_CHECKS:
        try:
            getattr(check, name)(cls)
        except AssertionError as err:
            return f"{name}: {err}"
    raise AssertionError("every check passed")


@pytest.mark.parametrize("mistake, where, match", [
    # the mistakes
    ("compensate_all", "compensation", r"returned \('compensate', 'c'\); expected \('compensate', 'b'\)\. Compensating "
                                       r"a step that never ran: 'c' was never run \(the saga failed at 'b'\)"),
    ("forward_order", "retry_or_compensate", r"Wrong order: compensate in reverse order, the last step done first"),
    ("pivot_always_compensates", "retry_or_compensate", r"Compensating where a retry was right: the pivot 'pay' got no "
                                                        r"answer \('timeout'\)"),
    ("retriable_compensates", "retry_or_compensate", r"Compensating where a retry was right: 'ship' is retriable"),
    ("compensate_first_failure", "retry_or_compensate", r"Compensating where a retry was right: 'reserve' has failed 1 "
                                                        r"time.*compensates at the first failure"),
    ("never_commits", "forward", r"raised IndexError.*expected \('end', 'committed'\)\. A saga that leaves the order "
                                 r"PENDING"),
    ("never_compensated", "retry_or_compensate", r"raised IndexError.*expected \('end', 'compensated'\)\. A saga that "
                                                 r"leaves the order PENDING"),
    ("nothing_to_undo_pending", "compensation", r"A saga that leaves the order PENDING: the pivot was refused and no "
                                                r"compensatable step had run"),
    # retries: off by one, a parameter ignored
    ("off_by_one_retries", "retry_or_compensate", r"Off by one: with retries=3 your saga gives up after 3 failures"),
    ("one_extra_try", "retry_or_compensate", r"compensate now\. Off by one: with retries=3 your saga gives up after 5 "
                                             r"failures, one try too many"),
    ("ignore_retries", "retry_or_compensate", r"gives up after 3 failures whatever the step's retries.*a parameter "
                                              r"ignored"),
    ("pivot_retries_forever", "retry_or_compensate", r"The pivot 'pay' was refused \('error'\) 2 times.*retries a "
                                                     r"refused pivot for ever"),
    ("no_tries_reset", "retry_or_compensate", r"After saga\.record\(state, True\), state\['tries'\] is 1; expected 0"),
    # compensation
    ("skip_failed", "retry_or_compensate", r"The failed step 'reserve' is compensated too, and first"),
    ("undo_pivot", "retry_or_compensate", r"The pivot 'pay' is never compensated"),
    ("skip_failed_undo", "retry_or_compensate", r"A compensation that failed is retried until it succeeds"),
    ("give_up_undo", "retry_or_compensate", r"returned \('end', 'compensated'\); expected \('compensate', 'reserve'\)\. "
                                            r"A compensation that failed is retried"),
    ("compensate_again", "retry_or_compensate", r"'b' is compensated already \(its undo succeeded\): move on"),
    # state: mutated, kept in the object, shared through the class
    ("mutates", "forward", r"record\(state, True\) changed the state it was given.*return a new dict"),
    ("tries_in_self", "retry_or_compensate", r"order2\['tries'\] is 2; expected 1\. With two orders in flight.*keep "
                                             r"all of one order's progress in its state dict"),
    ("done_in_self", "forward", r"order2\['done'\] is \['reserve stock', 'reserve stock'\]; expected \['reserve stock'\]\. "
                                r"With two orders in flight"),
    ("class_cache", "retry_or_compensate", r"a step that is not one of this saga's steps.*class attribute"),
    # what the methods return, defaults, loops
    ("name_not_step", "forward", r"return the step itself, a SagaStep of self\.steps"),
    ("returns_none", "forward", r"record\(state, True\) returned None: did you forget `return`\?"),
    ("no_default_reason", "forward", r"raised TypeError.*keep the task's default, def record\(self, state, ok, "
                                     r"reason='error'\)"),
])
def test_each_saga_mistake_is_named(mistake, where, match):
    message = _first_failure(saga_class(**{mistake: True}))
    assert message.startswith(f"{where}: "), message
    assert re.search(match, message, re.S), message
    assert "Replay:" in message or "replay" not in match


@pytest.mark.parametrize("mistake", ["forward_order", "compensate_all", "skip_failed", "undo_pivot", "off_by_one_retries",
                                     "one_extra_try", "pivot_always_compensates", "pivot_retries_forever",
                                     "retriable_compensates", "skip_failed_undo", "no_tries_reset"])
def test_the_random_sequences_catch_the_decision_mistakes_too(mistake):
    with pytest.raises(AssertionError, match="expected|tries"):
        check._reference_cases(saga_class(**{mistake: True}), runs=200)


def test_replays_show_the_calls_that_lead_to_the_mistake():
    message = fails(check.compensation, saga_class(compensate_all=True), match="never ran")
    assert "saga = OrderSaga([SagaStep('a', 'compensatable', retries=0)" in message
    assert "state = saga.record(state, False, 'error')" in message
    assert "# -> ('compensate', 'c')   <- should be ('compensate', 'b')" in message


def test_show_sequence_prints_the_calls(capsys):
    check.show_sequence(saga_class(forward_order=True), 3)
    out = capsys.readouterr().out
    assert out.startswith("# random sequence 3") and out.strip().splitlines()[-1].startswith("# ")


@pytest.mark.parametrize("mistake, match", [
    # the issue's: not idempotent, not a no-op for a step that never applied
    ("not_idempotent", r"at t = 2 again \(the orchestrator crashed before it persisted the first undo\): the ledger holds "
                       r"-12 for saga 3; expected 0\. A compensation that is not idempotent and runs twice"),
    ("refund_never_applied", r"undo\(payments, req, 7\) at t = 1 raised TypeError.*when there is nothing to undo, "
                             r"return at once"),
    ("raise_conflict", r"again .* raised ServiceError\('conflict'\).*catch the conflict and return"),
    ("swallow_all", r"with the ledger down \(from 0\.5 to 5 s\), returned normally.*Let the failure go up"),
    ("swallow_commit", r"undo\(stock, req, 3\) at t = 1: its read of the entries worked, its commit failed with "
                       r"ServiceError\('crashed'\), yet it returned normally.*Catch only the conflict"),
    ("memory_global", r"In a fresh run .* did not undo saga 3.*Python memory"),
    ("fixed_amount", r"holds 2 for saga 3; expected 0.*It took 10 off, not the amount of the do entry \(a parameter "
                     r"ignored\?\)"),
    ("adds_amount", r"holds 24 for saga 3.*undo writes minus the amount"),
    ("not_generator", r"returned None at once: undo must be a simpy generator"),
    ("touches_others", r"changed the entries of saga 12.*undo only the saga it is given"),
])
def test_each_undo_mistake_is_named(mistake, match):
    _UNDONE.clear()
    fails(check.undo, undo_fn(**{mistake: True}), match=match)


# --- the shop's stories: each mistake under its targeted case ---------------------------------------
@pytest.mark.parametrize("case, saga, undo, match", [
    ("undo_crash", {}, dict(not_idempotent=True),
     r"crashed at 1\.9852 s, right after the undo of its payment hold committed: order 2 is CANCELLED, and the ledger "
     r"'hold payment' holds -12 for it.*a compensation that is not idempotent and runs twice"),
    ("undo_crash", {}, dict(raise_conflict=True),
     r"order 2 is still PENDING at the end.*failed with 'conflict' \d+ times.*catch the conflict"),
    ("pivot_no_answer", dict(pivot_always_compensates=True), {},
     r"right after order 1's charge committed.*order 1 is CANCELLED, and the ledger 'charge card' holds 11 for it.*"
     r"Compensating where a retry was right: when the pivot gets no answer, retry it"),
    ("declines", dict(retriable_compensates=True), {},
     r"The card was charged, then 'ship' failed \(down\), and your saga compensated.*'ship' is retriable"),
    ("declines", dict(forward_order=True), {},
     r"order 1 was compensated in the wrong order: \['reserve stock', 'hold payment'\]"),
    ("declines", {}, dict(refund_never_applied=True),
     r"undo\(hold payment, req, 3\) \(at t = [\d.]+ s of the simulation\) raised TypeError.*nothing to undo"),
    ("failed_step_applied", dict(skip_failed=True), {},
     r"order 2 is CANCELLED, and the ledger 'hold payment' holds 12 for it.*never compensated 'hold payment'.*the "
     r"failed one, which may have applied"),
    ("declines", dict(never_compensated=True), {},
     r"raised IndexError.*Every step in to_undo is undone: record sets status 'compensated'"),
])
def test_targeted_shop_cases_tell_what_happened(case, saga, undo, match):
    cases = {"undo_crash": check._undo_crash_case, "pivot_no_answer": check._pivot_no_answer_case,
             "declines": check._declines_case, "failed_step_applied": check._failed_step_applied_case}
    fails(cases[case], saga_class(**saga), undo_fn(**undo), match=match)


def test_generated_shops_find_and_shrink_a_swallowed_failure():
    message = fails(lambda: check._generated(saga_class(), undo_fn(swallow_all=True), 60, 2024),
                    match=r"Generated fault schedule \d+ \(seed 2024\), shrunk to: ")
    assert "Your undo returned normally at" in message and "Let the ledger's failure go up" in message
    assert "What happened to order" in message


def test_shop_run_and_census_sum_up_a_run(ref):
    run = check.shop_run(ref["OrderSaga"], ref["undo"], declines={"charge card": {1}})
    assert run["ok"] and run["statuses"][1] == "CANCELLED" and run["totals"]["charge card"] == run["expected"]
    assert "What happened to order 1 (CANCELLED)" in run["story"](1)
    counts = check.census(ref["OrderSaga"], ref["undo"], runs=10)
    assert counts == {"runs": 10, "pending": 0, "not_conserved": 0, "right": 10}


# --- calling mistakes and unwritten code ---------------------------------------------------------
def unwritten(*methods):
    base = saga_class()

    class OrderSaga(base):
        pass

    def stub(self, *args, **kwargs):
        raise NotImplementedError("Your code here")
    for name in methods:
        setattr(OrderSaga, name, stub)
    return OrderSaga


def test_unwritten_code_says_so_and_later_checks_say_which_task_first(ref):
    fails(check.forward, unwritten("next_action"), match=r"OrderSaga\.next_action is not written yet")
    fails(check.forward, unwritten("record"), match=r"OrderSaga\.record is not written yet")
    fails(check.compensation, unwritten("record"), match=r"^Write task 1 first: OrderSaga\.record is not written yet")
    fails(check.against_reference, saga_class(forward_order=True),
          match=r"^Task 2 is not done yet: check\.retry_or_compensate\(OrderSaga\) does not pass\. It says: .*Wrong order")

    def undo(ledger, req, saga_id):
        raise NotImplementedError("Your code here")
    fails(check.undo, undo, match=r"^undo is not written yet")
    fails(check.shop, ref["OrderSaga"], undo, match=r"^Write task 5 first: undo is not written yet")
    fails(check.shop, unwritten("next_action"), ref["undo"], match=r"^Write task 1 first")


def test_wrong_arguments_to_the_checks(ref):
    fails(check.forward, saga_class()([]), match="pass the class itself")
    fails(check.undo, "undo", match="pass the function itself")
    fails(check.shop, ref["OrderSaga"], ref["OrderSaga"], match="pass the function itself")

    class OrderSaga(saga_class()):
        def record(self, state, success):
            return super().record(state, success)
    fails(check.retry_or_compensate, OrderSaga, match=r"raised TypeError.*takes")


def test_a_learner_exception_in_a_shop_names_the_call_in_flight(ref):
    def undo(ledger, req, saga_id):
        yield from ()
        raise KeyError("amount")
    message = fails(check._declines_case, ref["OrderSaga"], undo, match=r"raised KeyError")
    assert re.search(r"undo\(hold payment, req, \d+\) \(at t = [\d.]+ s of the simulation\) raised KeyError: "
                     r"'amount'\. The state holds", message) or "raised KeyError: 'amount'" in message, message


# --- learner code that never returns ----------------------------------------------------------------
STUCK = '''
    import sys
    sys.path.insert(0, {tests!r})
    from test_lab06_saga import saga_class, undo_fn
    from resilience_sim.labs import saga as check

    for label, run in [("loop", lambda: check.retry_or_compensate(saga_class(loop_forever=True))),
                       ("undo", lambda: check.undo(undo_fn(retry_spins=True))),
                       ("shop", lambda: check._declines_case(saga_class(loop_forever=True), undo_fn()))]:
        try:
            run()
        except AssertionError as exc:
            print(label, type(exc).__name__, exc)
'''


def test_code_that_never_returns_is_stopped_and_the_call_named(tmp_path):
    out, took = run_child(tmp_path, STUCK.format(tests=str(ROOT / "tests")))
    assert "loop TimedOut saga.next_action(state) did not return within 2 s: a loop with no end?" in out, out
    assert '(It was stopped at `while state["to_undo"][i] in state["undone"]:`.)' in out, out
    assert "undo TimedOut undo(stock, req, 3) at t = 1 did not return within 2 s: a loop with no end in undo?" in out, out
    assert re.search(r"shop TimedOut saga\.next_action\(\{'status': 'compensate'.*\) \(at t = [\d.]+ s of the "
                     r"simulation\) did not return within 3 s", out), out
    assert took < 30, took
