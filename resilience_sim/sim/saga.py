"""Sagas in simulated time: participants with idempotent steps, and an orchestrator that persists each
saga's progress, survives crashes and is watched by a supervisor.

* :class:`Participant`: a service that does and undoes one kind of step (charge a card, reserve
  stock, book a shipment) for a saga, **idempotently**: its effect is a row keyed by (saga, step) in
  its own database, so a retried step applies once and an undo of a step that never applied is a
  no-op. It can fail (``error_rate``, faults on ``participant.service``).
* :class:`Orchestrator`: starts a saga by writing its state and the order, ``PENDING`` (a semantic
  lock), in one transaction; then drives it step by step with the :class:`~resilience_sim.policies.Saga`
  policy, persisting the state after every step, so a crash (``crashes``) resumes every unfinished saga
  where its last committed state left it. At the end the order becomes ``CONFIRMED`` or
  ``CANCELLED``. A ``supervisor`` rule (say a :class:`~resilience_sim.policies.ThresholdRule` over step
  failures) stops new sagas while it fires (``start`` raises "rejected") and lets the ones in flight
  finish or compensate.
"""
from __future__ import annotations

from ..core import validate
from ..policies import Backoff, Exponential, claim
from ..policies.saga import COMMITTED, COMPENSATE, END, RUN, Saga
from .crashes import Restartable
from .database import Database
from .service import Request, ServiceError

SAGAS, ORDERS = "sagas", "orders"


class Participant:
    """Does and undoes one step for sagas, idempotently, in its own database (table ``effects``:
    one row per applied (saga, step), with its ``amount``)."""

    def __init__(self, world, name: str, *, latency=0.01, error_rate: float = 0.0, capacity: int = 20):
        self.db = Database(world, name, capacity=capacity, latency=latency)
        self.service = self.db.service
        self.name, self.env = name, world.env
        self.error_rate = validate.probability("error_rate", error_rate)
        self._rng = world.rng(f"participant/{name}/errors")
        self.applied = self.undone = 0

    def do(self, req, saga_id, amount: float = 1.0):
        """Apply the step for ``saga_id`` (a simpy generator): a retry of one applied already answers
        as the first did (checked before anything else, as an idempotency key is); otherwise it is
        refused with "error" at ``error_rate`` (a decline: nothing applied)."""
        if self.db.get("effects", saga_id) is not None:
            yield from self.service.call(req)
            return
        if self.error_rate and self._rng.random() < self.error_rate:
            yield from self.service.call(req)
            raise ServiceError(self.name, "error")
        tx = self.db.transaction()
        tx.insert("effects", saga_id, {"amount": amount})
        try:
            yield from tx.commit(req)
            self.applied += 1
        except ServiceError as err:
            if err.reason != "conflict":        # conflict: applied before, by an earlier try
                raise

    def undo(self, req, saga_id):
        """Undo the step for ``saga_id``; a no-op when it never applied or was undone already."""
        tx = self.db.transaction()
        tx.delete("effects", saga_id)
        yield from tx.commit(req)
        self.undone += 1

    def total(self) -> float:
        """The sum of the effects still applied (money charged, stock reserved...)."""
        return sum(row["amount"] for _, row in self.db.rows("effects"))


class Orchestrator:
    """Runs sagas of ``saga`` whose steps are done by ``participants`` (step name -> Participant)."""

    def __init__(self, world, db: Database, saga: Saga, participants: dict, *, name: str = "orchestrator",
                 backoff: Backoff | None = None, crashes=(), restart_after: float = 1.0, supervisor=None,
                 poll_interval: float = 0.5):
        if not isinstance(saga, Saga):
            raise validate.WrongType(f"saga must be a Saga, got {validate.show(saga)}")
        missing = [s.name for s in saga.steps if s.name not in participants]
        if missing:
            raise ValueError(f"participants must name who does each step; missing: {missing}")
        for step in saga.steps:
            if step.kind == "compensatable" and not callable(getattr(participants[step.name], "undo", None)):
                raise ValueError(f"step {step.name!r} is compensatable: its participant needs an undo()")
        self.world, self.env, self.db, self.saga = world, world.env, db, saga
        self.participants = dict(participants)
        self.name = validate.text("name", name, empty=False)
        self.backoff = Exponential(0.2, cap=5.0) if backoff is None else backoff
        self.supervisor = supervisor
        claim(world, backoff=self.backoff, supervisor=supervisor)
        self.poll_interval = validate.positive("poll_interval", poll_interval)
        self._rng = world.rng(f"orchestrator/{name}/backoff")
        self.started = self.refused = self.step_failures = 0
        self.process = Restartable(world, name, self._life, crashes=crashes, restart_after=restart_after)

    def _req(self, saga_id=None) -> Request:
        return Request._unchecked(self.env.now, self.name, saga_id)

    def accepting(self) -> bool:
        """False while the supervisor's rule fires: too many errors, no new sagas."""
        return self.supervisor is None or not self.supervisor.firing(self.env.now)

    def start(self, req, saga_id, amount: float = 1.0):
        """Begin a saga (a simpy generator): its state and its order (PENDING) in one transaction."""
        if not self.accepting():
            self.refused += 1
            raise ServiceError(self.name, "rejected")
        tx = self.db.transaction()
        tx.insert(SAGAS, saga_id, {"state": self.saga.start(), "amount": amount})
        tx.insert(ORDERS, saga_id, {"status": "PENDING", "amount": amount})
        yield from tx.commit(req)
        self.started += 1

    def _life(self):
        env = self.env
        while True:
            try:
                unfinished = yield from self.db.select(self._req(), SAGAS,
                                                       where=lambda r: self.saga.next_action(r["state"])[0] != END)
            except ServiceError:
                unfinished = ()
            for saga_id, row in unfinished:
                yield from self._drive(saga_id, row["state"], row["amount"])
            if not unfinished:
                yield env.timeout(self.poll_interval)

    def _drive(self, saga_id, state: dict, amount: float):
        """Run one saga to its end, persisting its state after every step."""
        env = self.env
        while True:
            action, subject = self.saga.next_action(state)
            if action == END:
                return
            participant = self.participants[subject.name]
            try:
                if action == RUN:
                    yield from participant.do(self._req(saga_id), saga_id, amount)
                else:
                    yield from participant.undo(self._req(saga_id), saga_id)
                ok = True
                reason = ""
            except ServiceError as err:
                ok, reason = False, err.reason
                self.step_failures += 1
            if self.supervisor is not None:
                self.supervisor.record(env.now, ok)
            new = self.saga.record(state, ok, reason or "error")
            try:
                yield from self._persist(saga_id, new)
            except ServiceError:                   # not persisted: the step will be tried again later
                yield env.timeout(self.poll_interval)
                return
            state = new
            if not ok:
                yield env.timeout(self.backoff.delay(max(1, state["tries"]), self._rng))

    def _persist(self, saga_id, state: dict):
        tx = self.db.transaction()
        tx.update(SAGAS, saga_id, {"state": state})
        action, status = self.saga.next_action(state)
        if action == END:
            tx.update(ORDERS, saga_id, {"status": "CONFIRMED" if status == COMMITTED else "CANCELLED"})
        yield from tx.commit(self._req(saga_id))

    def __repr__(self) -> str:
        return f"Orchestrator({self.name!r}, {self.saga!r})"


__all__ = ["Participant", "Orchestrator", "SAGAS", "ORDERS", "COMPENSATE"]
