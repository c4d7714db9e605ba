"""A saga's decisions: which step to run or compensate next, from a state that can be persisted.

``Saga([SagaStep("reserve stock", "compensatable"), SagaStep("charge card", "pivot"), SagaStep("ship", "retriable")])``
orders the steps **compensatable → pivot → retriable** (Richardson): compensatable steps can be
undone; the pivot is the point of no return; retriable steps must eventually succeed, so they are
retried, never compensated. The saga's progress is a plain dict (``saga.start()``), which an
orchestrator persists after every decision, so a crash resumes where it stopped.

``saga.next_action(state)`` answers ``("run", step)``, ``("compensate", step)`` or ``("end", status)``;
the orchestrator does it and reports ``saga.record(state, ok, reason)``. What holds:

* a failed step is retried (idempotently, by the orchestrator) up to its ``retries``, and then a
  compensatable step starts the compensation. The **pivot** compensates only when its participant
  answered with a refusal (a reason in :data:`REFUSALS`, such as "error": a card declined); when no
  answer came ("down", "timeout", "crashed"...: an earlier try may have applied) it is retried until
  an answer comes, since nothing after the pivot can be undone; a retriable step is
  retried for ever (it must succeed; an alarm is the orchestrator's business);
* compensation covers every compensatable step that completed **and the one that failed** (it may
  have applied before the failure was seen: a crash, a lost reply), in reverse order; so an undo must
  be an idempotent no-op when there is nothing to undo. Compensations are retried until they succeed;
* every saga ends ``"committed"`` (every step done) or ``"compensated"`` (every completed
  compensatable step undone, the pivot never passed).
"""
from __future__ import annotations

from ..core import validate
from ..core.reasons import check_reason

KINDS = ("compensatable", "pivot", "retriable")
RUN, COMPENSATE, END = "run", "compensate", "end"
COMMITTED, COMPENSATED = "committed", "compensated"
#: Failures that are an answer: the participant refused (nothing applied). Any other failure means no
#: answer came, and a pivot is retried rather than compensated.
REFUSALS = frozenset({"error", "bad request", "unauthorized", "not found", "conflict"})
#: The most retries one step may be given (retriable steps retry without bound).
MAX_RETRIES = 10_000


class SagaStep:
    """A step: ``name``, ``kind`` (one of :data:`KINDS`), ``retries`` before compensating."""
    __slots__ = ("name", "kind", "retries")

    def __init__(self, name: str, kind: str = "compensatable", *, retries: int = 2):
        self.name = validate.text("name", name, empty=False)
        self.kind = validate.choice("kind", kind, KINDS)
        self.retries = validate.integer("retries", retries, low=0, high=MAX_RETRIES)

    def __repr__(self) -> str:
        return f"SagaStep({self.name!r}, {self.kind!r})"


class Saga:
    """The steps of one saga type (see :mod:`resilience_sim.policies.saga`)."""

    def __init__(self, steps):
        if isinstance(steps, SagaStep) or not hasattr(steps, "__iter__"):
            raise validate.WrongType(f"steps must be a list of SagaStep, got {validate.show(steps)}")
        steps = list(steps)
        if not steps:
            raise ValueError("steps must hold at least one SagaStep")
        for i, step in enumerate(steps):
            if not isinstance(step, SagaStep):
                raise validate.WrongType(f"steps[{i}] must be a SagaStep, got {validate.show(step)}")
        order = [KINDS.index(s.kind) for s in steps]
        if order != sorted(order) or sum(s.kind == "pivot" for s in steps) > 1:
            raise ValueError(f"steps must run compensatable steps, then at most one pivot, then retriable steps; "
                             f"got {[f'{s.name} ({s.kind})' for s in steps]}")
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"steps must have distinct names, got {names}")
        self.steps = tuple(steps)

    def start(self) -> dict:
        """A new saga's state (persist it with the business data)."""
        return {"status": RUN, "step": 0, "tries": 0, "done": [], "to_undo": [], "undone": []}

    def _check(self, state) -> dict:
        if not isinstance(state, dict) or not {"status", "step", "tries", "done", "to_undo", "undone"} <= set(state):
            raise validate.WrongType(f"state must be a saga state from start(), got {validate.show(state)}")
        return state

    def next_action(self, state: dict) -> tuple:
        """What to do next: ``("run", step)``, ``("compensate", step)`` or ``("end", status)``."""
        state = self._check(state)
        if state["status"] in (COMMITTED, COMPENSATED):
            return END, state["status"]
        if state["status"] == RUN:
            return RUN, self.steps[state["step"]]
        pending = [name for name in reversed(state["to_undo"]) if name not in state["undone"]]
        return COMPENSATE, self._step(pending[0])

    def _step(self, name: str) -> SagaStep:
        return next(s for s in self.steps if s.name == name)

    def record(self, state: dict, ok: bool, reason: str = "error") -> dict:
        """The state after the action ``next_action(state)`` named succeeded (``ok``) or failed with
        ``reason`` (a failure reason); a new dict (the old one is left as it was, as a persisted row
        would be)."""
        state = self._check(state)
        ok = validate.boolean("ok", ok)
        if not ok:
            check_reason("reason", reason)
        action, subject = self.next_action(state)
        if action == END:
            raise ValueError(f"state is {subject}: the saga has ended, nothing to record")
        new = {**state, "done": list(state["done"]), "to_undo": list(state["to_undo"]),
               "undone": list(state["undone"])}
        if action == COMPENSATE:
            if ok:
                new["undone"].append(subject.name)
                if all(name in new["undone"] for name in new["to_undo"]):
                    new["status"] = COMPENSATED
            new["tries"] = 0 if ok else state["tries"] + 1
            return new
        if ok:
            new["done"].append(subject.name)
            new["step"], new["tries"] = state["step"] + 1, 0
            if new["step"] == len(self.steps):
                new["status"] = COMMITTED
            return new
        new["tries"] = state["tries"] + 1
        if subject.kind == "retriable" or (subject.kind == "pivot" and reason not in REFUSALS) \
                or new["tries"] <= subject.retries:
            return new                                     # retry the same step
        undo = [n for n in new["done"] if self._step(n).kind == "compensatable"]
        if subject.kind == "compensatable":
            undo.append(subject.name)                      # it may have applied: its undo is a no-op if not
        new["to_undo"] = undo
        new["status"], new["tries"] = (COMPENSATE if undo else COMPENSATED), 0
        return new

    def __repr__(self) -> str:
        return f"Saga({list(self.steps)!r})"


__all__ = ["Saga", "SagaStep", "REFUSALS", "KINDS", "RUN", "COMPENSATE", "END", "COMMITTED", "COMPENSATED"]
