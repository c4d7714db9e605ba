"""Checks for lab 06, a saga's decisions and its compensations.

The learner writes two things.

1. ``OrderSaga(steps)``'s decisions, the course's :class:`~resilience_sim.policies.Saga` rules: the lab
   gives ``__init__`` (``self.steps``, :class:`~resilience_sim.policies.SagaStep` objects ordered
   compensatable, pivot, retriable) and ``start()`` (the state: ``status``, ``step``, ``tries``, ``done``,
   ``to_undo``, ``undone``); the learner writes

   * ``next_action(state)``: ``("run", step)``, ``("compensate", step)`` or ``("end", "committed" |
     "compensated")``, from the state alone;
   * ``record(state, ok, reason="error")``: a **new** state (the one given left as it was, as a persisted
     row would be). A failed step is retried while ``tries <= step.retries``; a retriable step for ever;
     the pivot for ever when no answer came (``reason`` not in
     :data:`~resilience_sim.policies.saga.REFUSALS`); then compensation: the compensatable steps done
     and the failed one if compensatable, in reverse order, each retried until it succeeds; the saga
     ends "committed" or "compensated". ``tries`` counts the failed tries of the current action (the
     orchestrator waits ``backoff(tries)``).

   The checks drive it with plain states, step by step beside the course's ``Saga``, and name the first
   decision where they part (:func:`forward`, :func:`retry_or_compensate`, :func:`compensation`,
   :func:`against_reference`).

2. ``undo(ledger, req, saga_id)``, a simpy generator, the compensation of a :class:`Ledger` participant:
   the step's effect is the entry ``(saga_id, "do")`` (``{"saga", "amount"}``) in the ledger's table
   ``entries``; undo cancels it (an entry ``(saga_id, "undo")`` of minus the amount, or the entry
   deleted), **idempotently**, and is a **no-op** when the step never applied; a failure of the ledger
   goes up (the orchestrator retries) (:func:`undo`).

Then :func:`shop` runs both in the course's :class:`~resilience_sim.sim.saga.Orchestrator` (which
persists every state and resumes after crashes) over four ledgers, under targeted crashes (right after
an undo's commit, right after the pivot's commit with the payments service down) and generated fault
schedules: every order ends CONFIRMED or CANCELLED, and each ledger holds exactly the confirmed
orders' amounts (money and stock conserved).
"""
from __future__ import annotations

import copy
import inspect
import math
import numbers
import random

import simpy

from ..policies import Exponential
from ..policies.saga import COMMITTED, COMPENSATE, COMPENSATED, END, REFUSALS, RUN, Saga, SagaStep
from ..sim import crashes as _crashes
from ..sim.database import Database
from ..sim.faults import Outage
from ..sim.saga import ORDERS, SAGAS, Orchestrator
from ..sim.service import Request, ServiceError
from ..sim.world import World
from . import feedback as fb
from .feedback import Lazy as _Lazy, message_only as _message_only, needs, original_exception as _original

__all__ = ["forward", "retry_or_compensate", "compensation", "against_reference", "show_sequence", "undo", "shop",
           "walk", "shop_run", "crash_after_undo", "census", "needs", "Ledger", "SHOP", "UNDOS", "RUN_LIMIT_S"]

#: Seconds one simulated run of the learner's code may take (a run takes a few hundredths).
RUN_LIMIT_S = 3.0
CRASH_AFTER = 0.00025
ENTRIES = "entries"
STATE_KEYS = ("status", "step", "tries", "done", "to_undo", "undone")
#: The shop's saga: reserve the stock, hold the payment, charge the card (the pivot), ship.
SHOP = (SagaStep("reserve stock", "compensatable", retries=2), SagaStep("hold payment", "compensatable", retries=1),
        SagaStep("charge card", "pivot", retries=1), SagaStep("ship", "retriable"))
_NO_ANSWER = ("timeout", "down", "crashed")


def _t(x) -> str:
    if isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x):
        text = f"{float(x):.4f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"
    return repr(x)


def _money(x) -> str:
    return f"{x:g}" if isinstance(x, numbers.Real) and not isinstance(x, bool) else repr(x)


def _step_text(s: SagaStep) -> str:
    extra = f", retries={s.retries}" if s.kind != "retriable" and s.retries != 2 else ""
    return f"SagaStep({s.name!r}, {s.kind!r}{extra})"


def _hint(exc) -> str:
    text = str(exc)
    if isinstance(exc, IndexError):
        return (". Past the last step there is no step to run: when every step is done, record sets status "
                "'committed', and next_action answers ('end', 'committed').")
    if isinstance(exc, StopIteration) or (isinstance(exc, RuntimeError) and "StopIteration" in text):
        return (". Nothing left to compensate? When every step in to_undo is undone, record sets status "
                "'compensated', and next_action answers ('end', 'compensated').")
    if isinstance(exc, KeyError):
        return (". The state holds status, step, tries, done, to_undo and undone (start() shows them): keep "
                "every key in the new state (new = {**state, ...}).")
    if isinstance(exc, TypeError) and "NoneType" in text:
        return (". A step may never have applied (the saga compensates the failed step too): when there is "
                "nothing to undo, return at once. Or did a function forget `return`?")
    if isinstance(exc, TypeError) and "argument" in text:
        return (". The task's signatures are next_action(self, state), record(self, state, ok, reason='error') "
                "and undo(ledger, req, saga_id): compare your def lines with them.")
    return "."


# --- the learner's saga beside the course's, step by step ------------------------------------------
def _check_class(cls, name: str) -> None:
    if not isinstance(cls, type):
        raise AssertionError(f"pass the class itself to the check, e.g. check.{name}(OrderSaga); got {cls!r}")


def _action_text(action) -> str:
    a, x = action
    return f"({a!r}, {x!r})"


class _Driver:
    """The learner's saga (``mine``) and the course's (``ref``) given the same outcomes; every call kept as a
    replay; the first decision where they part raises a message that says why."""

    def __init__(self, cls, steps, *, name: str = "saga", book=None, label: str = "state"):
        self.cls, self.steps, self.name, self.label = cls, tuple(steps), name, label
        self.lines = book if book is not None else []
        self.ref = Saga(self.steps)
        made = f"{cls.__name__}([{', '.join(_step_text(s) for s in self.steps)}])"
        self.lines.append(f"{name} = {made}")
        with fb.learner_code(f"{cls.__name__}.__init__", made, _hint):
            self.mine = cls(list(self.steps))
        self.state = self.ref_state = None
        self.history: list = []           # (action, step name, ok, reason) of every record
        self.last_action = None
        self.override = ""                # a message that says better than _explain what is wrong

    # --- calling the learner's methods ------------------------------------------------------------
    def _call(self, method: str, text: str, *args, want=None):
        fn = getattr(self.mine, method, None)
        if not callable(fn):
            raise AssertionError(f"your {self.cls.__name__} has no method {method}(): the task asks for "
                                 f"next_action(state) and record(state, ok, reason='error')")

        def hint(exc) -> str:
            if method == "record" and isinstance(exc, TypeError) and len(args) == 2 and "reason" in str(exc):
                return (". The lab calls saga.record(state, ok) without a reason too (the cells below do): keep "
                        "the task's default, def record(self, state, ok, reason='error').")
            if want is not None and isinstance(exc, (IndexError, StopIteration, RuntimeError)):
                return (f"; expected {_action_text(want)}. {self.override or _explain(self, want, ('raised', None))}"
                        f"\n{self.replay()}")
            return _hint(exc) + "\n" + self.replay()
        with fb.learner_code(f"{self.cls.__name__}.{method}", text, hint,
                             stuck=lambda: f"{_STUCK}\n{self.replay()}"):
            return fn(*args)

    def start(self):
        text = f"{self.label} = {self.name}.start()"
        got = self._call("start", f"{self.name}.start()")
        self.lines.append(text)
        _valid_state(got, f"{self.name}.start()", self)
        self.state, self.ref_state = got, self.ref.start()
        return self

    def next(self):
        """The learner's next action, compared with the course's (then its tries); returns the course's."""
        text = f"{self.name}.next_action({self.label})"
        before = copy.deepcopy(self.state)
        want = self.ref.next_action(self.ref_state)
        want = (want[0], want[1].name if isinstance(want[1], SagaStep) else want[1])
        got = self._call("next_action", text, self.state, want=want)
        action = _normalize(got, text, self.steps, self)
        if self.state != before:
            self.lines.append(text)
            raise AssertionError(f"{text} changed the state it was given ({_diff(before, self.state)}): next_action "
                                 f"only reads the state; record makes the new one.\n{self.replay()}")
        line = f"{text:<34} # -> {_action_text(action)}"
        if action != want:
            self.lines.append(f"{line}   <- should be {_action_text(want)}")
            raise AssertionError(f"{text} returned {_action_text(action)}; expected {_action_text(want)}. "
                                 f"{self.override or _explain(self, want, action)}\n{self.replay()}")
        self.lines.append(line)
        if self.history and self.state["tries"] != self.ref_state["tries"]:
            raise AssertionError(f"After {self.last_record}, {self.label}['tries'] is "
                                 f"{self.state['tries']!r}; expected {self.ref_state['tries']}. " + (self.override or
                                 "tries counts the failed tries of the current action in a row: one more at each "
                                 "failure, 0 after a success and when compensation starts. The orchestrator waits "
                                 "backoff(tries) before trying again.") + f"\n{self.replay()}")
        self.last_action = want
        return want

    def record(self, ok: bool, reason=None):
        action = self.last_action
        args = (self.state, ok) if reason is None else (self.state, ok, reason)
        shown = f"{ok}" if reason is None else f"{ok}, {reason!r}"
        text = f"{self.name}.record({self.label}, {shown})"
        before = copy.deepcopy(self.state)
        new = self._call("record", text, *args)
        self.lines.append(f"{self.label} = {text}")
        self.last_record = text
        if self.state != before:
            raise AssertionError(f"{text} changed the state it was given ({_diff(before, self.state)}): return a new "
                                 f"dict and leave the old one as it was, new = {{**state, 'done': list(state['done']), "
                                 f"...}}. The orchestrator persists the new state only once the step's result is "
                                 f"safe; a crash resumes from the old one, which must still say what it said.\n"
                                 f"{self.replay()}")
        if new is None:
            raise AssertionError(f"{text} returned None: did you forget `return`? record returns the new state.\n"
                                 f"{self.replay()}")
        if new is self.state:
            raise AssertionError(f"{text} returned the very dict it was given: return a new one.\n{self.replay()}")
        _valid_state(new, text, self)
        self.ref_state = self.ref.record(self.ref_state, ok, reason or "error")
        self.history.append((action[0], action[1], ok, reason or "error"))
        self.state = new
        return self

    def run(self, outcomes, *, finish: bool = True):
        """Feed ``outcomes`` ((ok, reason) or ok) one per action; then check the end."""
        if self.state is None:
            self.start()
        for outcome in outcomes:
            action = self.next()
            if action[0] == END:
                return self
            ok, reason = outcome if isinstance(outcome, tuple) else (outcome, None)
            self.record(ok, reason)
        if finish:
            self.next()
        return self

    def replay(self, last: int = 16) -> str:
        lines = self.lines if len(self.lines) <= last + 1 else (
            self.lines[:2] + [f"# ... {len(self.lines) - last - 1} calls ..."] + self.lines[-(last - 1):])
        return "Replay:\n    " + "\n    ".join(lines)

    def step(self, name) -> SagaStep:
        return next(s for s in self.steps if s.name == name)


_STUCK = ("a loop with no end? next_action and record answer at once, from the state alone: look up what the "
          "state says, and return.")


def _valid_state(got, text: str, d) -> None:
    if not isinstance(got, dict):
        raise AssertionError(f"{text} returned {got!r}: a saga's state is a dict (start() shows its keys).\n"
                             f"{d.replay()}")
    missing = [k for k in STATE_KEYS if k not in got]
    if missing:
        raise AssertionError(f"{text} returned a state without {', '.join(repr(k) for k in missing)}: keep every "
                             f"key of the state (new = {{**state, ...}}).\n{d.replay()}")
    tries = got["tries"]
    if isinstance(tries, bool) or not isinstance(tries, numbers.Integral) or tries < 0:
        raise AssertionError(f"{text} returned tries = {tries!r}: tries is a whole number of failed tries, 0 or "
                             f"more.\n{d.replay()}")


def _normalize(got, text: str, steps, d):
    names = [s.name for s in steps]
    if not (isinstance(got, tuple) and len(got) == 2):
        hint = " Did you forget `return`?" if got is None else ""
        raise AssertionError(f"{text} returned {got!r}: next_action returns a pair, ('run', step), ('compensate', "
                             f"step) or ('end', status).{hint}\n{d.replay()}")
    action, subject = got
    if action not in (RUN, COMPENSATE, END):
        raise AssertionError(f"{text} returned {got!r}: the action is 'run', 'compensate' or 'end'.\n{d.replay()}")
    if action == END:
        if subject not in (COMMITTED, COMPENSATED):
            raise AssertionError(f"{text} returned {got!r}: a saga ends 'committed' or 'compensated'.\n{d.replay()}")
        return action, subject
    if isinstance(subject, SagaStep) and any(subject is s for s in steps):
        return action, subject.name
    if isinstance(subject, SagaStep):
        raise AssertionError(f"{text} returned {got!r}, a step that is not one of this saga's steps "
                             f"({names}): is something kept in a class attribute (written in the class body), one for "
                             f"all sagas? Keep it in self, or look the step up in self.steps each time.\n{d.replay()}")
    if isinstance(subject, str) and subject in names:
        raise AssertionError(f"{text} returned {got!r}: return the step itself, a SagaStep of self.steps (the "
                             f"orchestrator reads step.name and step.kind), not its name.\n{d.replay()}")
    if isinstance(subject, numbers.Integral) and not isinstance(subject, bool) and 0 <= subject < len(steps):
        raise AssertionError(f"{text} returned {got!r}: return the step itself, self.steps[i], not its index.\n"
                             f"{d.replay()}")
    raise AssertionError(f"{text} returned {got!r}: the second item is one of the saga's steps (a SagaStep of "
                         f"self.steps).\n{d.replay()}")


def _diff(before: dict, after) -> str:
    if not isinstance(after, dict):
        return "it is no longer a dict"
    keys = [k for k in before if before.get(k) != after.get(k)] + [k for k in after if k not in before]
    return ", ".join(f"{k!r} {before.get(k)!r} -> {after.get(k)!r}" for k in keys[:3])


def _explain(d: _Driver, want, got) -> str:
    """Why the course's decision is ``want`` and not ``got``."""
    wa, wx = want
    ga, gx = got
    st = d.ref_state
    last = d.history[-1] if d.history else None
    failed = last is not None and not last[2]
    done, to_undo, undone = st["done"], st["to_undo"], st["undone"]
    if wa == RUN and ga == COMPENSATE:
        if failed and last[0] == RUN and last[1] == wx:
            step, tries, reason = d.step(wx), st["tries"], last[3]
            if step.kind == "retriable":
                return (f"Compensating where a retry was right: {wx!r} is retriable, after the pivot: it must "
                        f"succeed, so it is retried for ever, however often it fails, never compensated.")
            if step.kind == "pivot" and reason not in REFUSALS:
                return (f"Compensating where a retry was right: the pivot {wx!r} got no answer ({reason!r}): it may "
                        f"have gone through (the card charged), and nothing after the pivot can be undone. Retry it "
                        f"until an answer comes; only a refusal, a reason in REFUSALS such as 'error', compensates "
                        f"the pivot.")
            return (f"Compensating where a retry was right: {wx!r} has failed {tries} time{'s' * (tries != 1)}, and "
                    f"it has retries={step.retries} ({_tries_in_all(step.retries)}): retry it while tries <= "
                    f"retries.{_retries_diagnosis(d, step)}")
        return f"{done[-1] if done else 'The last step'!r} succeeded: the saga goes on with {wx!r}."
    if wa == COMPENSATE and ga == RUN:
        if failed and last[0] == RUN and gx == last[1]:
            step, tries, reason = d.step(gx), d.ref_state["tries"], last[3]
            n = _failures_in_a_row(d, gx)
            if step.kind == "pivot" and reason in REFUSALS:
                return (f"The pivot {gx!r} was refused ({reason!r}) {n} time{'s' * (n != 1)}, and it has retries="
                        f"{step.retries} ({_tries_in_all(step.retries)}): a refusal is an answer (nothing was "
                        f"charged), so the saga compensates now.{_retries_diagnosis(d, step)}")
            return (f"{gx!r} has failed {n} time{'s' * (n != 1)}, and it has retries={step.retries} "
                    f"({_tries_in_all(step.retries)}): compensate now.{_retries_diagnosis(d, step)}")
        if failed and last[0] == COMPENSATE:
            return (f"The compensation of {last[1]!r} failed ({last[3]!r}): compensations are retried until they "
                    f"succeed; the saga never runs forward again once it compensates.")
        return f"The saga is compensating: next is {wx!r}."
    if wa == COMPENSATE and ga == COMPENSATE:
        step = d.step(gx)
        failed_step = to_undo[-1] if to_undo and to_undo[-1] not in done else None
        if failed and last[0] == COMPENSATE and last[1] == wx:
            return (f"A compensation that failed is retried until it succeeds: the undo of {wx!r} failed "
                    f"({last[3]!r}); moving on to {gx!r} leaves {wx!r}'s effect in place (stock reserved, money "
                    f"held, for an order that is cancelled).")
        if gx in undone:
            return (f"{gx!r} is compensated already (its undo succeeded): move on. Next is {wx!r}, the last step in "
                    f"to_undo not yet undone.")
        if step.kind == "pivot":
            return (f"The pivot {gx!r} is never compensated: it is the point of no return, and when it was refused "
                    f"nothing was charged. Compensate the compensatable steps done before it.")
        if step.kind == "retriable":
            return f"{gx!r} is retriable: it is never compensated."
        if gx not in to_undo:
            stop = failed_step or (done[-1] if done else "?")
            return (f"Compensating a step that never ran: {gx!r} was never run (the saga failed at {stop!r}). "
                    f"Compensate the compensatable steps done, and the failed one: {list(reversed(to_undo))}.")
        if wx == failed_step:
            return (f"The failed step {wx!r} is compensated too, and first: it may have applied before its failure "
                    f"was seen (a lost reply, a crash), and its undo is a no-op if it did not.")
        return (f"Wrong order: compensate in reverse order, the last step done first: {list(reversed(to_undo))}; "
                f"{wx!r} before {gx!r}.")
    if wa == END and ga != END:
        if ga == "raised" and wx == COMPENSATED and to_undo:
            return (f"A saga that leaves the order PENDING: every step in to_undo is undone ({undone}), so record sets "
                    f"status 'compensated', and next_action answers ('end', 'compensated') (no step left to look "
                    f"for); the orchestrator then marks the order CANCELLED.")
        if wx == COMMITTED:
            return (f"A saga that leaves the order PENDING: every step is done ({done}), so the saga has committed: "
                    f"record sets status 'committed' after the last step, and next_action answers ('end', "
                    f"'committed'); the orchestrator then marks the order CONFIRMED.")
        if not to_undo:
            return ("A saga that leaves the order PENDING: the pivot was refused and no compensatable step had "
                    "run, so there is nothing to undo: the saga ends at once, status 'compensated'.")
        return (f"A saga that leaves the order PENDING: every step in to_undo is undone ({undone}), so the saga has "
                f"compensated: status 'compensated', and next_action answers ('end', 'compensated'); the "
                f"orchestrator then marks the order CANCELLED.")
    if wa != END and ga in (END, "raised"):
        failed_step = to_undo[-1] if to_undo and to_undo[-1] not in done else None
        if failed and last[0] == COMPENSATE and last[1] == wx:
            return (f"A compensation that failed is retried until it succeeds: the undo of {wx!r} failed "
                    f"({last[3]!r}); ending the saga leaves {wx!r}'s effect in place (stock reserved, money held, for "
                    f"an order that is cancelled).")
        if wa == COMPENSATE and wx == failed_step:
            return (f"The failed step {wx!r} is compensated too, and first: it may have applied before its failure "
                    f"was seen (a lost reply, a crash), and its undo is a no-op if it did not.")
        if wa == RUN:
            return f"The saga is not over: {wx!r} is still to run ({len(done)} of {len(d.steps)} steps done)."
        return f"The saga is not over: {wx!r} is still to compensate (undone so far: {undone})."
    if wa == ga == END:
        return f"This saga ended {wx!r}, not {gx!r}."
    if wa == ga == RUN:
        if failed and last[1] == wx:
            return f"{wx!r} failed: a failed step is retried (or the saga compensates); it is never skipped."
        return f"{done[-1] if done else 'The step'!r} succeeded: run the next step, {wx!r}."
    return ""


def _gives_up_after(cls, retries: int, kind: str = "compensatable", reason: str = "error", most: int = 12):
    """How many failures in a row a fresh saga of the learner's (one step of this kind and retries, then a
    retriable one) takes before it compensates; None if it never does (or cannot tell)."""
    steps = [SagaStep("x", kind, retries=retries), SagaStep("y", "retriable")]
    if kind == "pivot":
        steps.insert(0, SagaStep("w", "compensatable", retries=0))
    try:
        with fb.learner_code("", "", stuck=_STUCK):
            saga = cls(steps)
            state = saga.start()
            if kind == "pivot":
                state = saga.record(state, True, "error")
            for n in range(1, most + 1):
                state = saga.record(state, False, reason)
                action = saga.next_action(state)
                if not (isinstance(action, tuple) and action and action[0] == RUN):
                    return n
    except Exception:  # noqa: BLE001 - a probe that cannot tell says nothing
        return None
    return None


def _retries_diagnosis(d: _Driver, step: SagaStep) -> str:
    """Which retry mistake the learner's saga makes, from fresh sagas with other retries; "" when unclear."""
    kind, reason = ("pivot", "error") if step.kind == "pivot" else ("compensatable", "error")
    got = {r: _gives_up_after(d.cls, r, kind, reason) for r in (0, 3, 5)}
    if got[3] is None and got[5] is None and kind == "pivot":
        return (" Your saga retries a refused pivot for ever; only when no answer came (a timeout, the service down) "
                "is the pivot retried for ever.")
    if got[3] == 1 and got[5] == 1:
        return " Your saga compensates at the first failure: retry first, while tries <= step.retries."
    if got[3] == got[5] and got[3] is not None:
        return (f" Your saga gives up after {got[3]} failure{'s' * (got[3] != 1)} whatever the step's retries (tried "
                f"retries=3 and retries=5): a parameter ignored. Each step has its own, step.retries.")
    if got[3] == 3 and got[5] == 5:
        return (" Off by one: with retries=3 your saga gives up after 3 failures; retries=3 means 3 retries after "
                "the first try, 4 tries in all: compensate once tries > retries (compare with <=, not <).")
    if got[3] == 5 and got[5] == 7:
        return (" Off by one: with retries=3 your saga gives up after 5 failures, one try too many: compensate once "
                "tries > retries.")
    return ""


def _tries_in_all(retries: int) -> str:
    return f"{retries + 1} tr{'y' if retries == 0 else 'ies'} in all"


def _failures_in_a_row(d: _Driver, name) -> int:
    n = 0
    for action, step, ok, _ in reversed(d.history):
        if action != RUN or step != name or ok:
            break
        n += 1
    return n


# --- task 1: forward -----------------------------------------------------------------------------
_A = SagaStep("reserve stock", "compensatable", retries=2)
_B = SagaStep("hold payment", "compensatable", retries=1)
_P = SagaStep("charge card", "pivot", retries=1)
_S = SagaStep("ship", "retriable")


def _steps(*specs):
    return [SagaStep(name, kind, retries=r) for name, kind, r in specs]


def _forward_cases(cls) -> None:
    _check_class(cls, "forward")
    for steps in ([_A], [_A, _B, _P, _S], _steps(("book", "pivot", 0)),
                  _steps(("a", "compensatable", 3), ("b", "compensatable", 0), ("c", "retriable", 2))):
        d = _Driver(cls, steps).start()
        d.next()                       # twice: next_action only reads the state
        d.run([True] * len(steps))
        d.next()
    _interleaved(cls)
    _two_sagas(cls)


def _interleaved(cls, outcomes=(True, True, True, True)) -> None:
    """Two orders in flight on one saga object, as an orchestrator drives them: their states alternate. The
    script runs alone first (its own mistakes get their own message)."""
    _Driver(cls, SHOP).run(outcomes)
    book: list = ["# one OrderSaga, two orders in flight (an orchestrator drives many at once)"]
    one = _Driver(cls, SHOP, book=book, label="order1")
    two = _Driver.__new__(_Driver)
    two.__dict__.update(one.__dict__)
    two.label, two.history, two.ref = "order2", [], Saga(SHOP)
    one.override = two.override = _MEMORY
    one.start()
    two.start()
    def same(d) -> None:               # after next(), which compares the action and tries first
        for key in ("done", "to_undo"):
            got, want = d.state.get(key), d.ref_state.get(key)
            if d.history and list(got) != list(want):
                raise AssertionError(f"After {d.last_record}, {d.label}[{key!r}] is {list(got)!r}; expected "
                                     f"{list(want)!r}. {_MEMORY}\n{d.replay()}")
    for outcome in outcomes:
        for d in (one, two):
            d.next()
            same(d)
            d.record(*(outcome if isinstance(outcome, tuple) else (outcome,)))
    for d in (one, two):
        d.next()
        same(d)


_MEMORY = ("With two orders in flight, each with its own state, your saga mixes them up: does it keep a saga's "
           "progress in the object (self.step, self.done...), or in a class attribute? One OrderSaga serves every "
           "order: keep all of one order's progress in its state dict, which the orchestrator persists.")


def _two_sagas(cls, scripts=None) -> None:
    """Two saga objects with different steps, side by side: nothing shared through the class. Each script
    runs alone first (so that its own mistakes get their own message), then both interleaved."""
    specs = [([_A, _P], [True, True]),
             (_steps(("a", "compensatable", 0), ("b", "compensatable", 0), ("c", "pivot", 0), ("d", "retriable", 0)),
              [True] * 4)] if scripts is None else scripts
    for steps, outcomes in specs:
        _Driver(cls, steps).run(outcomes)
    book: list = ["# two OrderSaga objects with different steps"]
    drivers = [_Driver(cls, steps, book=book, name=f"saga{k + 1}", label=f"s{k + 1}").start()
               for k, (steps, _) in enumerate(specs)]
    for d in drivers:
        d.override = _SHARED
    queues = [list(outcomes) for _, outcomes in specs]
    while any(queues):
        for d, queue in zip(drivers, queues):
            if not queue:
                continue
            if d.next()[0] == END:
                queue.clear()
                continue
            outcome = queue.pop(0)
            d.record(*(outcome if isinstance(outcome, tuple) else (outcome,)))
    for d in drivers:
        d.next()


_SHARED = ("Two OrderSaga objects with different steps interfere: is something kept in a class attribute (written "
           "in the class body), which is one for all instances? Keep the steps in self.steps, and an order's progress "
           "in its state.")


@_message_only
def forward(cls) -> None:
    """Task 1: steps run in order; after the last, the saga ends "committed"; next_action only reads the state,
    record returns a new one; one saga object drives many orders."""
    _forward_cases(cls)
    fb.ok("forward: each step in its turn, then ('end', 'committed'); the state says everything, and record leaves "
          "the old one as it was")


# --- task 2: retry or compensate ------------------------------------------------------------------
def _retry_cases(cls) -> None:
    _check_class(cls, "retry_or_compensate")
    for retries in (0, 1, 2, 3):
        steps = _steps(("reserve", "compensatable", retries), ("pay", "pivot", 1), ("ship", "retriable", 0))
        _Driver(cls, steps).run([(False, "error")] * retries + [True, True, True])      # the last retry works
        _Driver(cls, steps).run([(False, "down")] * (retries + 1) + [True])             # then compensate
    steps = _steps(("reserve", "compensatable", 2), ("pay", "pivot", 1), ("ship", "retriable", 0))
    _Driver(cls, steps).run([True] + [(False, "error")] * 2 + [True])                   # refused, refused: compensate
    _Driver(cls, steps).run([True, (False, "error"), True, True])                        # refused once, then charged
    for reason in _NO_ANSWER:                                                          # no answer: retry for ever
        _Driver(cls, steps).run([True] + [(False, reason)] * 12 + [True, True])
    _Driver(cls, steps).run([True, (False, "timeout"), (False, "error"), (False, "down"), True, True])
    _Driver(cls, steps).run([True, True] + [(False, r) for r in ("error", "down", "timeout") * 10] + [True])
    _interleaved(cls, [(False, "error"), (False, "down"), True, True])      # two orders, each failing twice
    steps = _steps(("a", "compensatable", 2), ("b", "compensatable", 2), ("c", "pivot", 3))
    _Driver(cls, steps).run([(False, "error"), (False, "error"), True, (False, "error"), (False, "error"), True,
                             (False, "error")] + [(False, "error")] * 3 + [True] * 3)
    _Driver(cls, steps).run([True, True] + [(False, "not found")] * 3 + [True])


@_message_only
def retry_or_compensate(cls) -> None:
    """Task 2: a failed step is retried while tries <= its retries; a retriable step for ever; the pivot for
    ever when no answer came; a refusal of the pivot compensates after its retries."""
    _needs(cls, 1)
    _retry_cases(cls)
    fb.ok("retry or compensate: each step's own retries, tries counted in a row; retriable steps, and a pivot that "
          "got no answer, retried for ever; a refused pivot compensates")


# --- task 3: compensation --------------------------------------------------------------------------
def _compensation_cases(cls) -> None:
    _check_class(cls, "compensation")
    steps = _steps(("a", "compensatable", 0), ("b", "compensatable", 0), ("c", "compensatable", 0),
                   ("p", "pivot", 0), ("s", "retriable", 0))
    _Driver(cls, steps).run([True, (False, "error"), True, True])                      # b failed: b, a
    _Driver(cls, steps).run([True, True, (False, "error"), True, True, True])          # c failed: c, b, a
    _Driver(cls, steps).run([True, True, True, (False, "error"), True, True, True])    # p refused: c, b, a
    _Driver(cls, steps).run([(False, "error"), True])                                  # a failed: a
    _Driver(cls, _steps(("p", "pivot", 0), ("s", "retriable", 0))).run([(False, "error")])   # nothing to undo
    _Driver(cls, _steps(("p", "pivot", 2), ("s", "retriable", 0))).run([(False, "error")] * 3)
    _Driver(cls, steps).run([True, True, (False, "error"), (False, "down"), (False, "timeout"), True,
                             (False, "error"), True, True])                            # failed undos are retried
    _Driver(cls, SHOP).run([True, True, (False, "error"), (False, "error"), True, True])
    _Driver(cls, SHOP).run([True, (False, "error"), (False, "error"), (False, "crashed"), True, True])
    d = _Driver(cls, SHOP).run([(False, "down")] * 3 + [True])
    d.next()                                                                           # the end stays the end
    _interleaved(cls, [True, True, (False, "error"), (False, "error"), True, True])   # two orders compensating
    _two_sagas(cls, [(SHOP, [True, True, (False, "error"), (False, "error"), True, True]),
                     (_steps(("a", "compensatable", 0), ("b", "compensatable", 0), ("c", "pivot", 0)),
                      [True, (False, "error"), True, True])])


@_message_only
def compensation(cls) -> None:
    """Task 3: compensate the compensatable steps done and the failed one, in reverse order, each retried until
    it succeeds; never the pivot, never a step that never ran; then "compensated"."""
    _needs(cls, 2)
    _compensation_cases(cls)
    fb.ok("compensation: the steps done and the failed one, last first, each until it succeeds; never the pivot, "
          "never a step that never ran; then ('end', 'compensated')")


# --- task 4: against the course's Saga ---------------------------------------------------------------
def _random_steps(rng: random.Random):
    names = iter(("reserve", "hold", "book", "charge", "notify", "ship", "invoice", "email"))
    out = [SagaStep(next(names), "compensatable", retries=rng.randint(0, 3)) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.7:
        out.append(SagaStep(next(names), "pivot", retries=rng.randint(0, 2)))
    out += [SagaStep(next(names), "retriable", retries=rng.randint(0, 2)) for _ in range(rng.randint(0, 2))]
    return out or [SagaStep("only", "compensatable", retries=rng.randint(0, 2))]


def _random_sequence(cls, seed: int, holder: list | None = None) -> None:
    rng = random.Random(seed)
    steps = _random_steps(rng)
    book = [f"# random sequence {seed}"]
    d = _Driver(cls, steps, book=book)
    if holder is not None:
        holder.append(d)
    p_fail = rng.choice((0.2, 0.5, 0.8))
    d.start()
    for _ in range(60):
        action = d.next()
        if action[0] == END:
            return
        ok = rng.random() >= p_fail
        d.record(ok, None if ok else rng.choice(("error", "timeout", "down", "crashed", "conflict", "not found")))
    d.next()


def _reference_cases(cls, runs: int = 200) -> None:
    _check_class(cls, "against_reference")
    for seed in range(runs):
        try:
            _random_sequence(cls, seed)
        except fb.TimedOut:
            raise
        except AssertionError as err:
            head, _, rest = str(err).partition("\n")
            raise AssertionError(f"{head} This is random sequence {seed}: check.show_sequence(OrderSaga, {seed}) "
                                 f"prints all its calls.\n{rest}") from None


@_message_only
def against_reference(cls, *, runs: int = 200) -> None:
    """Task 4: random sagas and random outcomes, compared step by step with the course's Saga."""
    _needs(cls, 3)
    _reference_cases(cls, runs)
    fb.ok(f"{runs} random sagas: your decisions agree with the course's Saga at every step")


def show_sequence(cls, seed: int) -> None:
    """Print every call of random sequence ``seed`` of :func:`against_reference`, up to the first decision
    where the learner's saga and the course's part."""
    holder: list = []
    try:
        _random_sequence(cls, seed, holder)
        verdict = f"sequence {seed}: your saga and the course's agree at every step"
    except AssertionError as err:
        verdict = str(err).split("\n", 1)[0]
    if holder:
        print("\n".join(holder[0].lines))
    print(f"# {verdict}")


def walk(cls, steps, outcomes) -> list:
    """The actions the learner's saga takes for ``outcomes`` (True, False or (False, reason), one per action):
    ``[(action, step name or status), ...]``, ending with the end."""
    _check_class(cls, "walk")
    _needs(cls, 4)
    with fb.learner_code(f"{cls.__name__}.__init__", f"{cls.__name__}(steps)", _hint):
        saga = cls(list(steps))
    state, actions = saga.start(), []
    for outcome in list(outcomes) + [None]:
        with fb.learner_code(f"{cls.__name__}.next_action", f"saga.next_action({state!r})", _hint, stuck=_STUCK):
            action, subject = saga.next_action(state)
        actions.append((action, subject.name if isinstance(subject, SagaStep) else subject))
        if action == END or outcome is None:
            break
        ok, reason = outcome if isinstance(outcome, tuple) else (outcome, "error")
        with fb.learner_code(f"{cls.__name__}.record", "saga.record(state, ...)", _hint, stuck=_STUCK):
            state = saga.record(state, ok, reason)
    return actions


def _needs(cls, upto: int, undo_fn=None) -> None:
    steps = [(1, "forward", _forward_cases), (2, "retry_or_compensate", _retry_cases),
             (3, "compensation", _compensation_cases), (4, "against_reference", lambda c: _reference_cases(c, 40))]
    for number, name, cases in steps[:upto]:
        fb.earlier_task(number, f"{name}({getattr(cls, '__name__', cls)})", lambda: cases(cls))
    if undo_fn is not None:
        fb.earlier_task(5, "undo(undo)", lambda: _undo_cases(undo_fn))


# --- participants: ledgers -------------------------------------------------------------------------
class _Runner:
    """Runs the learner's generators inside simpy processes as ``yield from`` would, noting the call in flight;
    a crash stops the learner's code on the spot."""

    def __init__(self):
        self.current = None

    def note(self, name: str, text: str, env) -> None:
        self.current = (name, text, env)

    def name(self) -> str:
        return self.current[0] if self.current else "your code"

    def text(self) -> str:
        if not self.current:
            return "the simulation"
        name, text, env = self.current
        return f"{text} (at t = {_t(env.now)} s of the simulation)"

    def run(self, name: str, text: str, env, make):
        self.note(name, text, env)
        gen = make()
        if not inspect.isgenerator(gen):
            raise AssertionError(f"{text} returned {gen!r} at once: undo must be a simpy generator, a function that "
                                 f"waits for the ledger's database with `yield from` (e.g. `yield from "
                                 f"tx.commit(req)`).")
        send, throw = gen.send, gen.throw
        value, error = None, None
        while True:
            self.note(name, text, env)
            try:
                event = throw(error) if error is not None else send(value)
            except StopIteration as stop:
                self.current = None
                return stop.value
            self.current = None
            error = None
            if not isinstance(event, simpy.Event):
                gen.close()
                raise AssertionError(f"{text} yielded {event!r}: call the ledger's database with `yield from` "
                                     f"(`rows = yield from ledger.db.select(req, 'entries', where=...)`, `yield from "
                                     f"tx.commit(req)`).")
            try:
                value = yield event
            except simpy.Interrupt as stop:
                if not _crashes.is_crash(stop):
                    error = stop
                    continue
                try:
                    gen.close()
                except RuntimeError:
                    pass
                raise
            except BaseException as exc:  # noqa: B036 - handed on to the learner's code, as yield from does
                error = exc


class _LedgerDb(Database):
    """A ledger's database that notes each commit at its commit point, with what the ledger was doing."""

    def __init__(self, world, name: str, ledger, **kw):
        super().__init__(world, name, **kw)
        self.ledger = ledger

    def _apply(self, writes) -> set:
        applied = super()._apply(writes)
        doing = self.ledger.doing
        self.ledger.log.append((self.env.now, self.ledger.name, doing[1] if doing else None,
                                f"{doing[0] if doing else 'commit'} committed"))
        return applied


class Ledger:
    """A saga participant that keeps a ledger: table ``entries`` of its database ``db``, one row per entry,
    ``{"saga": saga_id, "amount": x}``. ``do`` (given) writes the entry ``(saga_id, "do")``, idempotently,
    and may refuse ("error") the sagas in ``declines`` or at ``error_rate``; ``undo`` runs the learner's
    ``undo(ledger, req, saga_id)``. ``total(saga_id=None)``: the sum of the amounts (of one saga's entries)."""

    def __init__(self, world, name: str, undo_fn=None, *, latency=0.01, reply_latency: float = 0.0005,
                 declines=(), error_rate: float = 0.0, runner: _Runner | None = None, log: list | None = None):
        self.name, self.env = name, world.env
        self.doing = None
        self.db = _LedgerDb(world, name, self, latency=latency, reply_latency=reply_latency)
        self.service = self.db.service
        self.undo_fn, self.declines, self.error_rate = undo_fn, set(declines), error_rate
        self._rng = world.rng(f"lab06/{name}/errors")
        self.runner = runner or _Runner()
        self.log = log if log is not None else []     # (time, ledger, saga, what)

    def do(self, req, saga_id, amount: float = 1.0):
        env = self.env
        self.log.append((env.now, self.name, saga_id, "do"))
        self.doing = ("do", saga_id)
        try:
            if self.db.get(ENTRIES, (saga_id, "do")) is not None:
                yield from self.service.call(req)
                return
            if saga_id in self.declines or (self.error_rate and self._rng.random() < self.error_rate):
                yield from self.service.call(req)
                self.log.append((env.now, self.name, saga_id, "do refused"))
                raise ServiceError(self.name, "error")
            tx = self.db.transaction()
            tx.insert(ENTRIES, (saga_id, "do"), {"saga": saga_id, "amount": amount})
            try:
                yield from tx.commit(req)
            except ServiceError as err:
                if err.reason != "conflict":
                    raise
        except ServiceError as err:
            if err.reason != "error":
                self.log.append((env.now, self.name, saga_id, f"do failed ({err.reason})"))
            raise
        finally:
            self.doing = None

    def undo(self, req, saga_id):
        env = self.env
        self.log.append((env.now, self.name, saga_id, "undo"))
        self.doing = ("undo", saga_id)
        fn = self.undo_fn
        try:
            yield from self.runner.run(getattr(fn, "__name__", "undo"), f"undo({self.name}, req, {saga_id!r})", env,
                                       lambda: fn(self, req, saga_id))
        except ServiceError as err:
            self.log.append((env.now, self.name, saga_id, f"undo failed ({err.reason})"))
            raise
        finally:
            self.doing = None
        self.log.append((env.now, self.name, saga_id, "undo returned"))

    def total(self, saga_id=None) -> float:
        return sum(self.entries(saga_id).values()) if saga_id is not None else \
            sum(r["amount"] for _, r in self.db.rows(ENTRIES))

    def entries(self, saga_id) -> dict:
        return {i: r["amount"] for i, r in self.db.rows(ENTRIES)
                if r.get("saga") == saga_id or (isinstance(i, tuple) and i and i[0] == saga_id)}

    def __repr__(self) -> str:
        return f"Ledger({self.name!r})"


# --- task 5: undo, with plain states -----------------------------------------------------------------
class _UndoBench:
    """One ledger in a world of its own, its database answering at once."""

    def __init__(self, undo_fn, *, name: str = "stock", down=()):
        self.world = World(seed=3)
        self.env = self.world.env
        self.ledger = Ledger(self.world, name, undo_fn, latency=0.0, reply_latency=0.0)
        if down:
            Outage(self.ledger.service, list(down))

    def put(self, entries: dict) -> None:
        def setup():
            tx = self.ledger.db.transaction()
            for entry_id, amount in entries.items():
                tx.insert(ENTRIES, entry_id, {"saga": entry_id[0], "amount": amount})
            yield from tx.commit(None)
        self.env.run(until=self.env.process(setup()))

    def undo(self, saga_id, at: float):
        """The learner's undo at ``at``: (the call as text, the ServiceError it raised or None)."""
        if at > self.env.now:
            self.env.run(until=at)
        text = f"undo({self.ledger.name}, req, {saga_id!r}) at t = {_t(at)}"
        err = None
        req = Request._unchecked(self.env.now, "orchestrator", saga_id)

        def body():
            nonlocal err
            try:
                yield from self.ledger.undo(req, saga_id)
            except ServiceError as exc:
                err = exc
        proc = self.env.process(body())
        runner = self.ledger.runner
        with fb.learner_code(_Lazy(runner.name), _Lazy(lambda: text), _hint, stuck=_UNDO_STUCK):
            try:
                self.env.run(until=proc)
            except BaseException as exc:  # noqa: B036 - the time limit's stop too
                raise _original(exc) from None
        return text, err

    def shown(self) -> str:
        rows = self.ledger.db.rows(ENTRIES)
        return "{" + ", ".join(f"{i!r}: {_money(r['amount'])}" for i, r in rows) + "}"


_UNDO_STUCK = ("a loop with no end in undo? Read the entries once, commit once: a conflict means undone already "
               "(return), any other failure goes up (raise); the orchestrator retries.")


def _undo_case(undo_fn, *, saga: int, amount: float, name: str, others: dict) -> None:
    b = _UndoBench(undo_fn, name=name)
    b.put({(saga, "do"): amount, **others})
    before = b.shown()
    for k, at in enumerate((1.0, 2.0, 30.0)):
        text, err = b.undo(saga, at)
        total = b.ledger.total(saga)
        what = ("" if k == 0 else " again (the orchestrator crashed before it persisted the first undo)" if k == 1
                else ", a third time, much later")
        if err is not None:
            if k > 0 and err.reason == "conflict":
                raise AssertionError(f"{text}{what} raised ServiceError('conflict'): your undo's entry is there "
                                     f"already, so the saga {saga!r} is undone: catch the conflict and return. A "
                                     f"compensation that fails each time it runs again is retried for ever, and the "
                                     f"order stays PENDING. (Entries before: {before}; now: {b.shown()}.)")
            raise AssertionError(f"{text}{what} raised ServiceError({err.reason!r}); the ledger is up. (Entries "
                                 f"before: {before}; now: {b.shown()}.)")
        if not math.isclose(total, 0.0, abs_tol=1e-9):
            if k == 0:
                hint = ""
                if math.isclose(total, amount, abs_tol=1e-9):
                    hint = " Nothing changed: undo must cancel the do entry."
                elif math.isclose(total, 2 * amount, abs_tol=1e-9):
                    hint = " It added the amount again: undo writes minus the amount."
                elif amount != 10 and math.isclose(total, amount - 10, abs_tol=1e-9):
                    hint = " It took 10 off, not the amount of the do entry (a parameter ignored?)."
                raise AssertionError(f"{text}: the ledger holds {_money(total)} for saga {saga!r}; expected 0, the do "
                                     f"entry ({_money(amount)}) cancelled.{hint} (Entries before: {before}; now: "
                                     f"{b.shown()}.)")
            raise AssertionError(f"{text}{what}: the ledger holds {_money(total)} for saga {saga!r}; expected 0. A "
                                 f"compensation that is not idempotent and runs twice undoes twice: the orchestrator "
                                 f"runs an undo again whenever it crashed before persisting its success. Give the "
                                 f"undo entry a fixed id, (saga_id, 'undo'), so that a second insert conflicts (or "
                                 f"look for it first). (Entries before: {before}; now: {b.shown()}.)")
        for other, value in others.items():
            now = b.ledger.entries(other[0])
            if sum(now.values()) != value:
                raise AssertionError(f"{text} changed the entries of saga {other[0]!r} (now {now}): undo only the "
                                     f"saga it is given. (Entries before: {before}; now: {b.shown()}.)")


def _undo_never_applied(undo_fn) -> None:
    b = _UndoBench(undo_fn, name="payments")
    b.put({(4, "do"): 30.0})
    before = b.shown()
    text, err = b.undo(7, 1.0)
    if err is not None:
        raise AssertionError(f"{text} raised ServiceError({err.reason!r}). Saga 7's step never applied (it failed "
                             f"before, or was refused): its undo is a no-op, and returns.")
    if b.ledger.entries(7) and sum(b.ledger.entries(7).values()) != 0 or b.ledger.total() != 30.0:
        raise AssertionError(f"{text}: saga 7's step never applied, yet your undo changed the ledger (entries before: "
                             f"{before}; now: {b.shown()}). The saga compensates the failed step too, in case it "
                             f"applied: an undo must be a no-op when there is nothing to undo.")


def _undo_fresh_run(undo_fn) -> None:
    for _ in range(2):
        b = _UndoBench(undo_fn, name="stock")
        b.put({(3, "do"): 12.0})
        text, err = b.undo(3, 1.0)
        if err is None and not math.isclose(b.ledger.total(3), 0.0, abs_tol=1e-9):
            raise AssertionError(f"In a fresh run (a new ledger, never used), {text} did not undo saga 3 (the ledger "
                                 f"holds {_money(b.ledger.total(3))} for it). Does your undo remember the sagas it "
                                 f"undid in Python memory (a global set, a default argument)? That memory outlives a "
                                 f"run, and a real crash loses it: look at the ledger's own entries.")


def _undo_down(undo_fn) -> None:
    b = _UndoBench(undo_fn, name="stock", down=[(0.5, 5.0)])
    b.put({(3, "do"): 12.0})
    text, err = b.undo(3, 1.0)
    if err is None:
        raise AssertionError(f"{text}, with the ledger down (from 0.5 to 5 s), returned normally; expected it to raise "
                             f"the ServiceError('down') of its call. Returning tells the orchestrator the "
                             f"compensation is done: the order is cancelled, and its stock stays reserved for ever. "
                             f"Let the failure go up (raise): the orchestrator retries the undo.")
    text, err = b.undo(3, 6.0)
    if err is not None or not math.isclose(b.ledger.total(3), 0.0, abs_tol=1e-9):
        raise AssertionError(f"{text}, the ledger up again, must undo saga 3 (the ledger holds "
                             f"{_money(b.ledger.total(3))} for it" + ("" if err is None else
                                                                       f"; it raised ServiceError({err.reason!r})")
                             + ").")


def _undo_commit_fails(undo_fn) -> None:
    """The select works, the first commit fails ("crashed"): the error goes up; run again, the undo is done."""
    b = _UndoBench(undo_fn, name="stock")
    b.put({(3, "do"): 12.0})
    db, made = b.ledger.db, []
    plain = db.transaction

    def transaction():
        tx = plain()
        if not made:
            def commit(req=None):
                tx.state = "failed"
                raise ServiceError(b.ledger.name, "crashed")
                yield  # noqa: unreachable - a generator, as commit is
            tx.commit = commit
        made.append(tx)
        return tx
    db.transaction = transaction
    text, err = b.undo(3, 1.0)
    if made and err is None:
        raise AssertionError(f"{text}: its read of the entries worked, its commit failed with ServiceError('crashed'), "
                             f"yet it returned normally (the ledger holds {_money(b.ledger.total(3))} for saga 3). "
                             f"Returning tells the orchestrator the compensation is done, and it never runs again. "
                             f"Catch only the conflict; any other failure of the commit goes up (raise).")
    text, err = b.undo(3, 2.0)
    if err is not None or not math.isclose(b.ledger.total(3), 0.0, abs_tol=1e-9):
        raise AssertionError(f"{text}, run again after its commit failed with ServiceError('crashed'), must undo saga "
                             f"3 (the ledger holds {_money(b.ledger.total(3))} for it" + ("" if err is None else
                                                                                         f"; it raised ServiceError({err.reason!r})")
                             + ").")


def _undo_cases(undo_fn) -> None:
    if isinstance(undo_fn, type) or not callable(undo_fn):
        raise AssertionError(f"pass the function itself to the check, e.g. check.undo(undo); got {undo_fn!r}")
    _undo_case(undo_fn, saga=3, amount=12.0, name="stock", others={})
    _undo_case(undo_fn, saga=11, amount=25.5, name="payments", others={(12, "do"): 7.0, (10, "do"): 3.0})
    _undo_case(undo_fn, saga="order-9", amount=1.0, name="holds", others={("order-8", "do"): 4.0})
    _undo_never_applied(undo_fn)
    _undo_fresh_run(undo_fn)
    _undo_down(undo_fn)
    _undo_commit_fails(undo_fn)


@_message_only
def undo(undo_fn) -> None:
    """Task 5: undo cancels the step's entry, once however often it runs, is a no-op for a step that never
    applied, and lets a failure of the ledger go up; then, in the shop, the orchestrator crashes right after an
    undo's commit and runs it again."""
    _undo_cases(undo_fn)
    run, crash = _undo_crash_case(_RefSaga, undo_fn)
    again = [e for e in run.log if e[1] == "hold payment" and e[2] == 2 and e[3] == "undo"]
    fb.ok(f"undo: cancels the step once, however often it runs, a no-op when the step never applied, a failure goes "
          f"up; in the shop, the orchestrator crashed right after the undo of order 2's hold (at {_t(crash)} s) and "
          f"ran it {len(again)} times: the hold was released once")


# --- the reference saga (the solution's) ----------------------------------------------------------------
class _RefSaga:
    def __init__(self, steps):
        self.inner = Saga(steps)
        self.steps = list(steps)

    def start(self):
        return self.inner.start()

    def next_action(self, state):
        return self.inner.next_action(state)

    def record(self, state, ok, reason="error"):
        return self.inner.record(state, ok, reason)


def _ref_undo(ledger, req, saga_id):
    rows = dict((yield from ledger.db.select(req, ENTRIES, where=lambda r: r["saga"] == saga_id)))
    done = rows.get((saga_id, "do"))
    if done is None or (saga_id, "undo") in rows:
        return
    tx = ledger.db.transaction()
    tx.insert(ENTRIES, (saga_id, "undo"), {"saga": saga_id, "amount": -done["amount"]})
    try:
        yield from tx.commit(req)
    except ServiceError as err:
        if err.reason != "conflict":
            raise


# --- the shop: the orchestrator, four ledgers, faults ---------------------------------------------------
class _Adapter(Saga):
    """The learner's saga as the Orchestrator sees it (a Saga): every call checked, noted for the time limit."""

    def __init__(self, learner, steps, runner, env):
        super().__init__(steps)
        self.learner, self.runner, self.env = learner, runner, env
        self.cls = type(learner).__name__

    def _call(self, method: str, text: str, *args):
        fn = getattr(self.learner, method, None)
        if not callable(fn):
            raise AssertionError(f"your {self.cls} has no method {method}()")
        self.runner.note(f"{self.cls}.{method}", text, self.env)
        value = fn(*args)
        self.runner.current = None
        return value

    def start(self) -> dict:
        state = self._call("start", "saga.start()")
        if not isinstance(state, dict):
            raise AssertionError(f"saga.start() returned {state!r}: a state is a dict")
        return state

    def next_action(self, state):
        text = f"saga.next_action({_short(state)})"
        self.last_state = state
        got = self._call("next_action", text, state)
        if not (isinstance(got, tuple) and len(got) == 2 and got[0] in (RUN, COMPENSATE, END)):
            raise AssertionError(f"{text} returned {got!r}: ('run', step), ('compensate', step) or ('end', status)")
        if got[0] != END and not any(got[1] is s for s in self.steps):
            raise AssertionError(f"{text} returned {got!r}: the step must be one of self.steps")
        return got

    def record(self, state, ok, reason="error"):
        text = f"saga.record({_short(state)}, {ok}, {reason!r})"
        before = copy.deepcopy(state)
        new = self._call("record", text, state, ok, reason)
        if state != before:
            raise AssertionError(f"{text} changed the state it was given: return a new dict (check.forward first)")
        if not isinstance(new, dict) or not isinstance(new.get("tries"), numbers.Integral):
            raise AssertionError(f"{text} returned {new!r}: a state with every key (check.forward first)")
        return new


def _short(x, limit: int = 100) -> str:
    text = repr(x)
    return text if len(text) <= limit else text[:limit - 5] + " ...}"


class _Shop:
    """One run of the shop: ``orders`` orders, one every ``every`` s, each a saga over four ledgers."""

    def __init__(self, saga_cls, undo_fn, *, seed: int = 1, orders: int = 8, every: float = 0.5, crashes=(),
                 outages=None, declines=None, error_rates=None, until: float = 120.0, steps=SHOP):
        self.saga_cls, self.undo_fn, self.steps = saga_cls, undo_fn, tuple(steps)
        self.seed, self.orders_n, self.until = seed, orders, until
        self.crashes, self.outages = tuple(sorted(crashes)), dict(outages or {})
        self.runner = _Runner()
        self.log: list = []
        world = self.world = World(seed)
        self.env = world.env
        self.db = Database(world, "orders_db")
        declines, error_rates = declines or {}, error_rates or {}
        self.ledgers = {s.name: Ledger(world, s.name, undo_fn, declines=declines.get(s.name, ()),
                                       error_rate=error_rates.get(s.name, 0.0), runner=self.runner, log=self.log)
                        for s in self.steps}
        for name, windows in self.outages.items():
            Outage(self.db.service if name == "orders_db" else self.ledgers[name].service, list(windows))
        self.runner.note(f"{saga_cls.__name__}.__init__", f"{saga_cls.__name__}(steps)", self.env)
        learner = saga_cls(list(self.steps))
        self.saga = _Adapter(learner, self.steps, self.runner, self.env)
        self.orch = Orchestrator(world, self.db, self.saga, self.ledgers, crashes=self.crashes,
                                 backoff=Exponential(0.2, cap=2.0), restart_after=1.0)
        self.amounts = {i: 10.0 + i for i in range(orders)}
        self.env.process(self._customers(every))

    def _customers(self, every: float):
        for i in range(self.orders_n):
            try:
                yield from self.orch.start(Request._unchecked(self.env.now, "customer", i), i, self.amounts[i])
            except ServiceError:
                pass
            yield self.env.timeout(every)

    def run(self) -> "_Shop":
        run = self.runner

        def hint(exc) -> str:
            state = getattr(self.saga, "last_state", None)
            if isinstance(exc, (IndexError, StopIteration, RuntimeError)) and isinstance(state, dict) and \
                    state.get("status") == COMPENSATE and "next_action" in run.name():
                return (". Every step in to_undo is undone: record sets status 'compensated' then, and next_action "
                        "answers ('end', 'compensated') (check.compensation first).")
            return _hint(exc)
        with fb.learner_code(_Lazy(run.name), _Lazy(run.text), hint, stuck=_Lazy(self._stuck), limit=RUN_LIMIT_S):
            try:
                stop = 0.0
                while stop < self.until:
                    stop = min(self.until, stop + (10.0 if stop < 40.0 else 40.0))
                    self.world.run(stop)
                    if self.quiet():
                        break
            except BaseException as exc:  # noqa: B036 - the time limit's stop too
                raise _original(exc) from None
        return self

    def _stuck(self) -> str:
        if "undo" in self.runner.name() or (self.runner.current and "undo(" in self.runner.current[1]):
            return _UNDO_STUCK
        return _STUCK

    def quiet(self) -> bool:
        orders = self.db.rows(ORDERS)
        return self.env.now > self.orders_n * 0.5 + 1 and all(r["status"] != "PENDING" for _, r in orders)

    @property
    def statuses(self) -> dict:
        return {i: r["status"] for i, r in self.db.rows(ORDERS)}

    @property
    def ok(self) -> bool:
        return self.diagnose()[0] is None

    def story(self, order, last: int = 22) -> str:
        lines = [(t, f"{ledger}: {what}") for t, ledger, saga, what in self.log if saga == order]
        lines += [(t, "the orchestrator crashed") for t in self.crashes]
        for name, windows in self.outages.items():
            lines += [(s, f"{name} down until {_t(e)} s") for s, e in windows]
        lines.sort(key=lambda item: item[0])
        shown = [f"{_t(t):>8} s  {text}" for t, text in lines]
        if len(shown) > last:
            head = last // 2
            shown = shown[:head] + [f"    ... {len(shown) - last + 1} more ..."] + shown[-(last - head - 1):]
        status = self.statuses.get(order, "never started")
        return f"What happened to order {order!r} ({status}), with the crashes and outages:\n    " + "\n    ".join(shown)

    def diagnose(self) -> tuple:
        """(what went wrong, the order to tell the story of), or (None, None)."""
        statuses = self.statuses
        for i, status in statuses.items():
            if status == "PENDING":
                mine = [e for e in self.log if e[2] == i]
                if mine and mine[-1][3] == "undo failed (conflict)":
                    ledger = mine[-1][1]
                    n = sum(1 for e in mine if e[1] == ledger and e[3] == "undo failed (conflict)")
                    return (f"order {i!r} is still PENDING at the end ({_t(self.env.now)} s): the undo of {ledger!r} "
                            f"failed with 'conflict' {n} times, each time it ran again after the first one had "
                            f"committed (the orchestrator crashed before persisting it). An undo that has been done "
                            f"already is done: catch the conflict and return, or the compensation is retried for "
                            f"ever and the order never ends."), i
                row = self.db.get(SAGAS, i)
                state = row["state"] if row else None
                try:
                    action = self.saga.learner.next_action(state)
                    said = f"its state is {_short(state, 160)}, and next_action says {_show_action(action)}"
                except Exception:  # noqa: BLE001 - the state alone says enough
                    said = f"its state is {_short(state, 160)}"
                return (f"order {i!r} is still PENDING at the end ({_t(self.env.now)} s): {said}. A saga that leaves "
                        f"the order PENDING holds its stock and money for ever: every saga must end, ('end', "
                        f"'committed') or ('end', 'compensated') (check.compensation first)."), i
        for i, status in statuses.items():
            confirmed = status == "CONFIRMED"
            for step in self.steps:
                ledger = self.ledgers[step.name]
                total = ledger.total(i)
                want = self.amounts[i] if confirmed else 0.0
                if not math.isclose(total, want, abs_tol=1e-9):
                    return self._why_not_conserved(i, status, step, total, want), i
        for i, status in statuses.items():
            if status != "CANCELLED":
                continue
            calls = [(t, led) for t, led, saga, what in self.log if saga == i and what == "undo"]
            ran = {led for t, led, saga, what in self.log if saga == i and what == "do"}
            never = [led for _, led in calls if led not in ran]
            if never:
                return (f"order {i!r}: the saga compensated {never[0]!r}, a step that never ran (the undo was a "
                        f"no-op, luckily). Compensate only the steps done, and the one that failed."), i
            order = []
            for _, led in calls:
                if led not in order:
                    order.append(led)
            names = [s.name for s in self.steps]
            if order != sorted(order, key=names.index, reverse=True):
                return (f"order {i!r} was compensated in the wrong order: {order}; expected the reverse of the steps, "
                        f"{sorted(order, key=names.index, reverse=True)}."), i
        return None, None

    def _why_not_conserved(self, i, status, step, total, want) -> str:
        ledger = self.ledgers[step.name]
        entries = ", ".join(f"{k!r}: {_money(v)}" for k, v in ledger.entries(i).items()) or "none"
        head = (f"order {i!r} is {status}, and the ledger {step.name!r} holds {_money(total)} for it; expected "
                f"{_money(want)} (its entries: {entries}).")
        undos = [e for e in self.log if e[1] == step.name and e[2] == i and e[3] == "undo"]
        dos = [e for e in self.log if e[1] == step.name and e[2] == i and e[3] == "do committed"]
        if status == "CANCELLED" and total < 0:
            if not dos:
                return (f"{head} The step never applied for order {i!r}, yet your undo wrote to the ledger: an undo "
                        f"must be a no-op when there is nothing to undo.")
            crash = [c for c in self.crashes if undos and undos[0][0] <= c]
            during = f" (the orchestrator crashed at {_t(crash[0])} s, right after it)" if crash else ""
            return (f"{head} The undo ran {len(undos)} times{during}, and it cancelled the step each time: a "
                    f"compensation that is not idempotent and runs twice. The orchestrator runs an undo again "
                    f"whenever it crashed before persisting its success: give the undo entry a fixed id, (saga_id, "
                    f"'undo'), so that a second one conflicts (or look for it first).")
        if status == "CANCELLED" and total > 0:
            mine = [e for e in self.log if e[2] == i]
            first_undo = next((e[0] for e in mine if e[3] == "undo"), None)
            if step.kind == "pivot":
                before = [e for e in mine if first_undo is None or e[0] <= first_undo]
                last_fail = next((e for e in reversed(before) if e[3].startswith("do failed")), None)
                kind = next((s.kind for s in self.steps if last_fail and s.name == last_fail[1]), None)
                if kind == "retriable":
                    return (f"{head} The card was charged, then {last_fail[1]!r} failed {last_fail[3][len('do failed '):]}, "
                            f"and your saga compensated: a cancelled order whose card is charged. Compensating where "
                            f"a retry was right: {last_fail[1]!r} is retriable, after the pivot: it is retried until "
                            f"it succeeds, never compensated.")
                why = f" {last_fail[3][len('do failed '):]}" if last_fail else ""
                return (f"{head} The charge went through, and later tries got no answer{why}: your saga "
                        f"compensated, and cancelled an order whose card is charged. Compensating where a retry was "
                        f"right: when the pivot gets no answer, retry it until one comes (it is idempotent); only a "
                        f"refusal compensates it.")
            failed_undo = [e for e in mine if e[1] == step.name and e[3].startswith("undo failed")]
            returned = [e for e in mine if e[1] == step.name and e[3] == "undo returned"]
            if failed_undo and not [e for e in returned if e[0] > failed_undo[-1][0]]:
                return (f"{head} Its undo failed {failed_undo[-1][3][len('undo failed '):]} at "
                        f"{_t(failed_undo[-1][0])} s, and the saga ended without trying it again. A compensation that "
                        f"failed is retried until it succeeds.")
            if returned:
                t = returned[-1][0]
                down = [(a, b) for a, b in self.outages.get(step.name, []) if a <= t <= b]
                if down:
                    return (f"{head} Your undo returned normally at {_t(t)} s, while {step.name!r} was down (from "
                            f"{_t(down[0][0])} to {_t(down[0][1])} s), without undoing anything: the orchestrator took "
                            f"the compensation as done. Let the ledger's failure go up (raise): the orchestrator "
                            f"retries the undo.")
                return (f"{head} Your undo returned at {_t(t)} s without cancelling the entry ({i!r}, 'do'), which "
                        f"is there. Does it remember undone sagas in Python memory (a global set), from an earlier "
                        f"run? Look at the ledger's own entries.")
            gave_up = [e for e in mine if e[3].startswith("undo failed") and not
                       [r for r in mine if r[1] == e[1] and r[3] == "undo returned" and r[0] > e[0]]]
            if not undos and gave_up:
                e = gave_up[-1]
                return (f"{head} The undo of {e[1]!r} failed {e[3][len('undo failed '):]} at {_t(e[0])} s, and the "
                        f"saga ended without trying it again, nor compensating {step.name!r}. A compensation that "
                        f"failed is retried until it succeeds.")
            if not undos:
                return (f"{head} The saga never compensated {step.name!r}, although it {'failed' if not dos else 'ran'} "
                        f"for this order: compensate the steps done, and the failed one, which may have applied "
                        f"(its undo is a no-op if not).")
            return (f"{head} The saga called undo for it {len(undos)} time(s), and the ledger still holds the step: "
                    f"undo must cancel the entry (saga_id, 'do').")
        if status == "CONFIRMED":
            if undos:
                return (f"{head} The saga compensated {step.name!r} and then confirmed the order.")
            return f"{head} A confirmed order holds each step's amount once."
        return head


def _show_action(action) -> str:
    if isinstance(action, tuple) and len(action) == 2:
        a, x = action
        return f"({a!r}, {x.name if isinstance(x, SagaStep) else x!r})"
    return repr(action)


def _check_pair(saga_cls, undo_fn, name: str) -> None:
    _check_class(saga_cls, name)
    if isinstance(undo_fn, type) or not callable(undo_fn):
        raise AssertionError(f"pass the function itself to the check, e.g. check.{name}(OrderSaga, undo); got "
                             f"{undo_fn!r}")


def _fail_shop(run: _Shop, head: str) -> None:
    why, order = run.diagnose()
    if why is None:
        why, order = "something is wrong.", None
    raise AssertionError(f"{head}: {why}\n{run.story(order) if order is not None else ''}".rstrip())


def _first_time(run: _Shop, ledger: str, order, what: str):
    for t, led, saga, w in run.log:
        if led == ledger and saga == order and w == what:
            return t
    return None


def _undo_crash_case(saga_cls, undo_fn):
    """Order 2's charge is declined: the saga releases its hold, then its stock; the orchestrator crashes right
    after the hold's undo commits, and runs it again after its restart."""
    kw = dict(orders=4, declines={"charge card": {2}})
    first = _Shop(saga_cls, undo_fn, **kw).run()
    at = _first_time(first, "hold payment", 2, "undo committed")
    if at is None:
        if not first.ok:
            _fail_shop(first, "Order 2's card was declined (every try)")
        raise AssertionError("Order 2's card was declined, and nobody released its payment hold (its undo never "
                             "wrote anything): undo must cancel the entry (saga_id, 'do').\n" + first.story(2))
    run = _Shop(saga_cls, undo_fn, crashes=[at + CRASH_AFTER], **kw).run()
    if not run.ok:
        _fail_shop(run, f"Order 2's card was declined, and the orchestrator crashed at {_t(at + CRASH_AFTER)} s, "
                        f"right after the undo of its payment hold committed")
    return run, at + CRASH_AFTER


def _pivot_no_answer_case(saga_cls, undo_fn):
    """The orchestrator crashes right after order 1's charge commits, and the card service is down for 4 s
    from then on: the charge must be retried (it went through), never compensated."""
    first = _Shop(saga_cls, undo_fn, orders=3).run()
    at = _first_time(first, "charge card", 1, "do committed")
    if at is None:
        _fail_shop(first, "With no fault at all, order 1 was never charged")
    crash = at + CRASH_AFTER
    run = _Shop(saga_cls, undo_fn, orders=3, crashes=[crash], outages={"charge card": [(crash, crash + 4.0)]}).run()
    if not run.ok:
        _fail_shop(run, f"The orchestrator crashed at {_t(crash)} s, right after order 1's charge committed, and the "
                        f"card service was down from then until {_t(crash + 4.0)} s")
    return run


def _failed_step_applied_case(saga_cls, undo_fn):
    """The orchestrator crashes right after order 2's payment hold commits, and the hold service is down for 3 s
    from then on: the hold fails its tries, though it applied; the saga must compensate it too."""
    first = _Shop(saga_cls, undo_fn, orders=4).run()
    at = _first_time(first, "hold payment", 2, "do committed")
    if at is None:
        _fail_shop(first, "With no fault at all, order 2's payment was never held")
    crash = at + CRASH_AFTER
    run = _Shop(saga_cls, undo_fn, orders=4, crashes=[crash], outages={"hold payment": [(crash, crash + 3.0)]}).run()
    if not run.ok:
        _fail_shop(run, f"The orchestrator crashed at {_t(crash)} s, right after order 2's payment hold committed, and "
                        f"the hold service was down from then until {_t(crash + 3.0)} s")
    return run


def _declines_case(saga_cls, undo_fn):
    """Order 3's hold is declined (the failed step never applied: its undo is a no-op), order 1's charge too."""
    run = _Shop(saga_cls, undo_fn, orders=5, declines={"hold payment": {3}, "charge card": {1}},
                outages={"ship": [(0.5, 4.0)]}).run()
    if not run.ok:
        _fail_shop(run, "Order 3's payment hold and order 1's charge were declined, and shipping was down from 0.5 s "
                        "to 4 s")
    return run


def _random_shop(rng: random.Random) -> dict:
    crashes = [round(rng.uniform(0.0, 6.0), 4) for _ in range(rng.choice((0, 1, 1, 2, 3)))]
    outages = {}
    for _ in range(rng.choice((0, 1, 1, 2))):
        name = rng.choice([s.name for s in SHOP] + ["orders_db"])
        start = round(rng.uniform(0.0, 5.0), 3)
        outages.setdefault(name, []).append((start, round(start + rng.uniform(0.2, 4.0), 3)))
    for name, windows in outages.items():
        windows.sort()
        merged = []
        for s, e in windows:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        outages[name] = merged
    error_rates = {"reserve stock": rng.choice((0.0, 0.2)), "hold payment": rng.choice((0.0, 0.3)),
                   "charge card": rng.choice((0.0, 0.3, 0.6)), "ship": rng.choice((0.0, 0.3))}
    return dict(crashes=crashes, outages=outages, error_rates=error_rates)


def _shrink(make, spec: dict, budget: int = 30) -> dict:
    """Remove crashes and outages one at a time while the run still fails."""
    tries, changed = 0, True
    while changed and tries < budget:
        changed = False
        faults = [("crash", c) for c in spec["crashes"]] + [("outage", (n, w)) for n, ws in spec["outages"].items()
                                                             for w in ws]
        for kind, value in faults:
            tries += 1
            smaller = {**spec, "crashes": list(spec["crashes"]), "outages": {n: list(ws) for n, ws in
                                                                               spec["outages"].items()}}
            if kind == "crash":
                smaller["crashes"].remove(value)
            else:
                smaller["outages"][value[0]].remove(value[1])
                if not smaller["outages"][value[0]]:
                    del smaller["outages"][value[0]]
            if not make(smaller).ok:
                spec, changed = smaller, True
                break
            if tries >= budget:
                break
    return spec


def _show_spec(spec: dict) -> str:
    parts = []
    if spec["crashes"]:
        parts.append(f"orchestrator crashes at {[round(c, 4) for c in spec['crashes']]} s")
    for name, windows in spec["outages"].items():
        parts.append(f"{name} down {', '.join(f'{_t(s)}-{_t(e)} s' for s, e in windows)}")
    rates = {n: r for n, r in spec.get("error_rates", {}).items() if r}
    if rates:
        parts.append("refusals " + ", ".join(f"{n} {r:.0%}" for n, r in rates.items()))
    return "; ".join(parts) or "no faults"


def _generated(saga_cls, undo_fn, runs: int, seed: int) -> dict:
    rng = random.Random(seed)
    stats = dict(runs=0, confirmed=0, cancelled=0, crashes=0, undos=0)
    for n in range(runs):
        spec = _random_shop(rng)

        def make(s, n=n):
            return _Shop(saga_cls, undo_fn, seed=seed + n, **s).run()
        run = make(spec)
        if not run.ok:
            small = _shrink(make, spec)
            _fail_shop(make(small), f"Generated fault schedule {n} (seed {seed}), shrunk to: {_show_spec(small)}")
        statuses = list(run.statuses.values())
        stats["runs"] += 1
        stats["confirmed"] += statuses.count("CONFIRMED")
        stats["cancelled"] += statuses.count("CANCELLED")
        stats["crashes"] += len(spec["crashes"])
        stats["undos"] += sum(1 for e in run.log if e[3] == "undo")
    return stats


@_message_only
def shop(saga_cls, undo_fn, *, runs: int = 60, seed: int = 2024) -> None:
    """Task 6: the learner's saga and undo in the course's Orchestrator over four ledgers: declines, a crash right
    after an undo, a crash right after the pivot with the card service down, then ``runs`` generated fault
    schedules; every order CONFIRMED or CANCELLED, each ledger holding exactly the confirmed orders' amounts."""
    _check_pair(saga_cls, undo_fn, "shop")
    _needs(saga_cls, 4, undo_fn)
    _declines_case(saga_cls, undo_fn)
    _undo_crash_case(saga_cls, undo_fn)
    _pivot_no_answer_case(saga_cls, undo_fn)
    _failed_step_applied_case(saga_cls, undo_fn)
    stats = _generated(saga_cls, undo_fn, runs, seed)
    fb.ok(f"shop: 4 targeted cases and {stats['runs']} generated fault schedules ({stats['crashes']} orchestrator "
          f"crashes): {stats['confirmed']} orders CONFIRMED, {stats['cancelled']} CANCELLED, none PENDING; every "
          f"ledger holds exactly the confirmed orders' amounts ({stats['undos']} undos run)")


def shop_run(saga_cls, undo_fn, *, seed: int = 1, orders: int = 8, crashes=(), outages=None, declines=None,
             error_rates=None) -> dict:
    """One run of the shop, summed up: ``{"statuses": {order: status}, "totals": {ledger: total},
    "expected": total of the confirmed orders' amounts, "undos": n, "story": callable(order) -> text}``."""
    _check_pair(saga_cls, undo_fn, "shop_run")
    _needs(saga_cls, 4, undo_fn)
    run = _Shop(saga_cls, undo_fn, seed=seed, orders=orders, crashes=crashes, outages=outages,
                declines=declines, error_rates=error_rates).run()
    statuses = run.statuses
    return {"statuses": statuses, "totals": {n: led.total() for n, led in run.ledgers.items()},
            "expected": sum(run.amounts[i] for i, s in statuses.items() if s == "CONFIRMED"),
            "undos": sum(1 for e in run.log if e[3] == "undo"), "story": run.story, "ok": run.ok}


def crash_after_undo(saga_cls, undo_fn, *, order: int = 2) -> dict:
    """Order ``order``'s card is declined, so the saga releases its payment hold; the orchestrator crashes right
    after that undo commits, and runs it again after its restart. ``undo_fn`` may be a name of :data:`UNDOS`.
    Returns ``{"crash": time, "undos": runs of the hold's undo, "entries": the hold ledger's entries for the
    order, "total": their sum, "status": the order's, "story": text}``."""
    _check_class(saga_cls, "crash_after_undo")
    course = isinstance(undo_fn, str)
    if course and undo_fn not in UNDOS:
        raise ValueError(f"undo_fn must be a function or one of {sorted(UNDOS)}, got {undo_fn!r}")
    undo_fn = UNDOS[undo_fn] if course else undo_fn
    _check_pair(saga_cls, undo_fn, "crash_after_undo")
    _needs(saga_cls, 4, None if course else undo_fn)
    kw = dict(orders=order + 2, declines={"charge card": {order}})
    first = _Shop(saga_cls, undo_fn, **kw).run()
    at = _first_time(first, "hold payment", order, "undo committed")
    if at is None:
        raise AssertionError(f"order {order}'s payment hold was never released: check.undo(undo) first")
    run = _Shop(saga_cls, undo_fn, crashes=[at + CRASH_AFTER], **kw).run()
    hold = run.ledgers["hold payment"]
    return {"crash": at + CRASH_AFTER, "undos": sum(1 for e in run.log if e[1] == "hold payment" and e[2] == order
                                                    and e[3] == "undo"),
            "entries": hold.entries(order), "total": hold.total(order), "status": run.statuses.get(order),
            "story": run.story(order)}


def census(saga_cls, undo_fn, *, runs: int = 30, seed: int = 7) -> dict:
    """Generated fault schedules, counted: ``{"runs", "pending", "not_conserved", "right"}`` (runs with an order
    left PENDING, runs where a ledger does not hold exactly the confirmed orders' amounts, runs with neither)."""
    course = isinstance(undo_fn, str)
    if course and undo_fn not in UNDOS:
        raise ValueError(f"undo_fn must be a function or one of {sorted(UNDOS)}, got {undo_fn!r}")
    undo_fn = UNDOS[undo_fn] if course else undo_fn
    _check_pair(saga_cls, undo_fn, "census")
    _needs(saga_cls, 4, None if course else undo_fn)
    rng = random.Random(seed)
    counts = dict(runs=0, pending=0, not_conserved=0, right=0)
    for n in range(runs):
        run = _Shop(saga_cls, undo_fn, seed=seed + n, **_random_shop(rng)).run()
        pending = "PENDING" in run.statuses.values()
        statuses = run.statuses
        wrong = any(not math.isclose(led.total(i), run.amounts[i] if statuses[i] == "CONFIRMED" else 0.0,
                                     abs_tol=1e-9) for led in run.ledgers.values() for i in statuses)
        counts["runs"] += 1
        counts["pending"] += pending
        counts["not_conserved"] += wrong
        counts["right"] += not pending and not wrong
    return counts


#: The undos :func:`census` and :func:`shop_run` may use instead of the learner's.
UNDOS = {}


def _careless_undo(ledger, req, saga_id):
    """An undo that is not idempotent: a fresh entry each time it runs."""
    rows = dict((yield from ledger.db.select(req, ENTRIES, where=lambda r: r["saga"] == saga_id)))
    done = rows.get((saga_id, "do"))
    if done is None:
        return
    tx = ledger.db.transaction()
    tx.insert(ENTRIES, (saga_id, "undo", len(rows)), {"saga": saga_id, "amount": -done["amount"]})
    yield from tx.commit(req)


UNDOS["not idempotent"] = _careless_undo
