"""A client that calls a target through resilience policies, in simulated time.

The policies (:mod:`resilience_sim.policies`) are the same objects the live httpx client drives in
wall-clock time; here simpy supplies ``now`` and does the waiting. Layers, from the outside in, follow
the composition order documented in :mod:`resilience_sim.policies`:

deadline → retry (with backoff and budget) → throttle (asked per attempt) → breaker → rate limit →
bulkhead → per-attempt timeout → hedging → the target.

The client claims every policy it is given for its world (:func:`~resilience_sim.policies.claim`): a
policy that another world has driven is refused (make a new one per run, or ``reset()`` it), while
clients of one world may share one (a shared bulkhead, say). Each attempt asks the throttle and
is recorded there once: accepted, refused for overload, or withdrawn (``cancel``) when the breaker or
the bulkhead refused it before it was sent. A :class:`~resilience_sim.policies.CircuitBreaker` gets its
permit back with the outcome (``record(..., permit=p)``); any other object with ``allow(now)`` and
``record(now, success, duration)`` (a learner's breaker) is driven the old way.

A timed-out attempt's work is not undone: the target keeps serving it (as a real server does when
its client hangs up), which is what turns retries into extra load; that holds for the copies of a
hedged attempt that times out too. A hedged copy that loses the race is cancelled (interrupted): it
leaves the queue or frees its slot at once. A client cancelled by its own caller (a client above that
hedges) cancels what it has in flight, leaves its bulkhead and gives its breaker permit back.
"""
from __future__ import annotations

import math
from collections import Counter

import simpy

from ..core import validate
from ..core.reasons import OVERLOAD
from ..policies import (AdaptiveThrottle, Bulkhead, CircuitBreaker, Deadline, HedgePolicy, RetryBudget,
                       RetryPolicy, Timeout, TokenBucket, claim)
from .service import ServiceError
from .world import check_world

#: Refusals by this client's own layers before anything was sent: no verdict for the throttle.
_UNSENT = frozenset({"circuit open", "rate limited", "bulkhead full", "deadline"})

def _optional(name, value, kind, methods=()):
    """``value`` if it is None, a ``kind``, or (for ``methods``) any object that has them all: so a
    learner's own breaker from a lab plugs in too."""
    if value is None or isinstance(value, kind):
        return value
    if methods and all(callable(getattr(value, m, None)) for m in methods):
        return value
    extra = f" or an object with methods {', '.join(methods)}" if methods else ""
    raise ValueError(f"{name} must be a {kind.__name__}{extra}, or None; got {value!r}")


class Client:
    """Calls ``target`` (a :class:`~resilience_sim.sim.service.Service` or another client) with policies.

    ``rate_limit`` (a :class:`~resilience_sim.policies.TokenBucket`) caps the attempts this client
    sends (a limit on one caller's traffic, where a service's own ``rate_limit`` counts every caller);
    a refused attempt is not sent ("rate limited"). ``timeout`` (seconds or a :class:`Timeout`) bounds each attempt; ``deadline`` (seconds or a
    :class:`Deadline`) bounds the whole request and is handed down through ``request.deadline``, so
    nested clients never wait past it. Either may be ``math.inf``: no limit, the same as ``None``
    and as ``Timeout(math.inf)``. ``idempotent=False`` forbids retries unless ``idempotency_key``;
    both are True or False (a string such as "no" would be truthy: refused).

    A client declared as a dependency of a service (``Service(..., dependencies=[client])``) calls
    on that service's behalf (its ``owner``), so partitions between the two apply even when a
    handler calls ``client.call(req)`` directly; one client serves one caller.

    What it counts: ``requests`` (calls to :meth:`call`), ``attempts`` (calls sent to the target,
    hedge copies included), ``retries`` (attempts sent after a request's first one: refused ones and hedge
    copies are not counted),
    ``backoff_time`` (seconds spent waiting between attempts), ``rejected`` (a Counter of local
    refusals: "throttled", "circuit open", "rate limited", "bulkhead full", "deadline"), ``budget_denied`` and
    ``hedges`` (copies sent). A request's recorded ``attempts`` are those of the client it was sent
    to; a client calling on a service's behalf (a dependency) leaves them alone.
    """

    def __init__(self, world, target, *, name: str = "client", timeout=None, deadline=None,
                 retry: RetryPolicy | None = None, budget: RetryBudget | None = None,
                 throttle: AdaptiveThrottle | None = None, breaker: CircuitBreaker | None = None,
                 bulkhead: Bulkhead | None = None, hedge: HedgePolicy | None = None,
                 idempotent: bool = True, idempotency_key: bool = False, rate_limit: TokenBucket | None = None):
        check_world(world)
        if not callable(getattr(target, "call", None)):
            raise ValueError(f"target must have a call(request) generator method, got {target!r}")
        if hasattr(target, "world"):                          # a Service or Client: of this run
            world.owns("target", target)
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.world, self.env, self.target, self.name = world, world.env, target, name
        self.timeout = None if timeout is None else (timeout if isinstance(timeout, Timeout) else
                                                     Timeout(validate.positive("timeout", timeout, allow_inf=True)))
        self.deadline = None if deadline is None else (deadline if isinstance(deadline, Deadline) else
                                                       Deadline(validate.positive("deadline", deadline, allow_inf=True)))
        self.retry = _optional("retry", retry, RetryPolicy)
        self.budget = _optional("budget", budget, RetryBudget)
        self.throttle = _optional("throttle", throttle, AdaptiveThrottle)
        self.breaker = _optional("breaker", breaker, CircuitBreaker, ("allow", "record"))
        self._permits = isinstance(self.breaker, CircuitBreaker)    # else: a breaker with allow() -> bool
        self.bulkhead = _optional("bulkhead", bulkhead, Bulkhead)
        self.rate_limit = _optional("rate_limit", rate_limit, TokenBucket)
        self.hedge = _optional("hedge", hedge, HedgePolicy)
        self.idempotent = validate.boolean("idempotent", idempotent)
        self.idempotency_key = validate.boolean("idempotency_key", idempotency_key)
        claim(world, timeout=self.timeout, deadline=self.deadline, retry=self.retry, budget=self.budget,
              throttle=self.throttle, breaker=self.breaker, bulkhead=self.bulkhead, hedge=self.hedge,
              rate_limit=self.rate_limit)
        self.rng = world.rng(f"client/{name}")                       # retry jitter
        self._throttle_rng = world.rng(f"client/{name}/throttle")    # its own: a throttle leaves jitter alone
        self.owner = None          # the service this client calls for (set when one declares it)
        self.requests = self.attempts = self.hedges = self.budget_denied = self.retries = 0
        self.backoff_time = 0.0
        self.rejected: Counter = Counter()
        # bulkhead waiters' wake-up events, oldest first: one list per Bulkhead, shared with any other
        # client given the same Bulkhead (a release hands the slot to its oldest waiter, whoever's it is)
        self._waiters: list = next((c._waiters for c in world.clients.values()
                                    if self.bulkhead is not None and c.bulkhead is self.bulkhead), [])
        world.add_client(self)

    # --- one logical request ------------------------------------------------------------------
    def call(self, req, caller=None):
        """Serve one request through the policies (``value = yield from client.call(req)``)."""
        env, throttle = self.env, self.throttle
        caller = caller or self.owner
        self.requests += 1
        deadline = req.deadline
        if self.deadline is not None:
            deadline = min(deadline, env.now + self.deadline.budget)
        sub = req.child(deadline)     # what the layers below see: this call's deadline, not the caller's
        attempt, previous, asked = 1, None, False
        try:
            while True:
                if env.now >= deadline:
                    raise self._refuse("deadline")
                if throttle is not None and not throttle.allow(env.now, self._throttle_rng):
                    raise self._refuse("throttled")
                if attempt == 1 and self.budget is not None:
                    self.budget.record_request(env.now)
                asked = throttle is not None
                ok, value = yield from self._attempt(sub, caller)
                asked = False
                if attempt > 1 and (ok or value.service != self.name or value.reason not in _UNSENT):
                    self.retries += 1
                if throttle is not None:
                    self._verdict(ok, value)
                if ok:
                    req.adopt(sub)
                    return value
                wait = self._retry_wait(attempt, value, previous, deadline)
                if wait is None:
                    raise value
                self.backoff_time += wait
                if wait > 0:
                    yield env.timeout(wait)
                previous, attempt = wait, attempt + 1
        except simpy.Interrupt:   # cancelled by a caller above during an attempt the throttle allowed
            if asked:
                throttle.cancel(env.now)
            raise
        finally:
            if caller is None:    # the user's own request; a dependency's attempts are not the user's
                req.attempts = attempt

    def _verdict(self, ok, err):
        """Tell the throttle what became of an attempt it let through: accepted (the backend answered,
        and not "overloaded"), refused, or never sent."""
        if not ok and err.service == self.name and err.reason in _UNSENT:
            self.throttle.cancel(self.env.now)
        else:
            self.throttle.record(self.env.now, ok or (err.service != self.name and err.reason not in OVERLOAD))

    def _retry_wait(self, attempt, err, previous, deadline):
        if self.retry is None:
            return None
        remaining = None if math.isinf(deadline) else deadline - self.env.now
        wait = self.retry.decide(self.env.now, attempt, err.reason, self.rng, previous=previous,
                                 idempotent=self.idempotent, idempotency_key=self.idempotency_key or None,
                                 remaining=remaining)
        if wait is not None and self.budget is not None:
            if not self.budget.can_retry(self.env.now):
                self.budget_denied += 1
                return None
            self.budget.record_retry(self.env.now)
        return wait

    def _refuse(self, reason: str) -> ServiceError:
        self.rejected[reason] += 1
        return ServiceError(self.name, reason)

    # --- one attempt: breaker, bulkhead, timeout, hedging ---------------------------------------
    def _attempt(self, req, caller):
        """Returns ``(True, value)`` or ``(False, ServiceError)``; never raises for the target's failures."""
        env, breaker, permit = self.env, self.breaker, None
        if breaker is not None:
            permit = breaker.allow(env.now)
            if not permit:
                return False, self._refuse("circuit open")
        if self.rate_limit is not None and not self.rate_limit.try_take(env.now):   # our own limit: not sent
            self._give_permit_back(permit)
            return False, self._refuse("rate limited")
        try:
            if self.bulkhead is not None:
                refusal = yield from self._enter_bulkhead(req.deadline)
                if refusal:
                    self._give_permit_back(permit)
                    return False, self._refuse(refusal)
            start = env.now
            limit = req.deadline - start
            if self.timeout is not None:
                limit = min(limit, self.timeout.per_attempt)
            try:
                if self.hedge is not None:
                    ok, value = yield from self._hedged(req, caller, limit)
                else:
                    ok, value = yield from self._bounded(req, caller, limit)
            finally:
                if self.bulkhead is not None:
                    self._release_slot()
        except simpy.Interrupt:   # a caller above cancelled this call (say its hedge won): no outcome
            self._give_permit_back(permit)
            raise
        if self._permits:
            breaker.record(env.now, ok, env.now - start, permit=permit)
        elif breaker is not None:
            breaker.record(env.now, ok, env.now - start)
        if self.timeout is not None:
            self.timeout.record(env.now, not ok and value.reason == "timeout")
        return ok, value

    def _give_permit_back(self, permit):
        """The breaker allowed a call that was never made or never finished: no outcome to record."""
        if self._permits:
            self.breaker.cancel(self.env.now, permit=permit)
        elif self.breaker is not None and hasattr(self.breaker, "cancel"):
            self.breaker.cancel(self.env.now)

    def _release_slot(self):
        if self.bulkhead.release(self.env.now):  # handed to the oldest waiter: wake it
            self._waiters.pop(0).succeed()

    def _enter_bulkhead(self, deadline):
        """Take a bulkhead slot, waiting at most ``max_wait`` and never past ``deadline``. Returns
        ``None`` once the slot is held, or why not: "bulkhead full" or "deadline"."""
        env, bulkhead = self.env, self.bulkhead
        if bulkhead.try_acquire(env.now):
            return None
        if not bulkhead.can_wait():
            return "bulkhead full"
        enqueued = env.now
        give_up_at = bulkhead.enqueue(enqueued)
        handed = env.event()
        self._waiters.append(handed)
        try:
            yield handed | env.timeout(max(0.0, min(give_up_at, deadline) - enqueued))
        except simpy.Interrupt:   # cancelled while waiting: leave the queue, or pass on a slot just handed over
            if handed.triggered:
                self._release_slot()
            else:
                self._waiters.remove(handed)
                bulkhead.leave(enqueued)
            raise
        if handed.triggered:
            return None
        self._waiters.remove(handed)
        if env.now < give_up_at:   # the deadline came first
            bulkhead.leave(enqueued)
            return "deadline"
        bulkhead.give_up(env.now)
        return "bulkhead full"

    def _guarded(self, req, caller, *, inline=False):
        """The target's call, returning its outcome instead of failing. Run as this client's own process,
        an interrupt is this client cancelling it ("cancelled"); run ``inline`` in the caller's process,
        an interrupt comes from a caller above and goes on up."""
        try:
            self.attempts += 1
            return True, (yield from self.target.call(req, caller=caller))
        except ServiceError as err:
            return False, err
        except simpy.Interrupt:
            if inline:
                raise
            return False, ServiceError(self.name, "cancelled")

    def _bounded(self, req, caller, limit):
        if math.isinf(limit):
            return (yield from self._guarded(req, caller, inline=True))
        if limit <= 0:
            return False, ServiceError(self.name, "timeout")
        call = self.env.process(self._guarded(req, caller))
        try:
            yield call | self.env.timeout(limit)
        except simpy.Interrupt:   # our caller cancelled us: cancel the call too
            self._cancel([call])
            raise
        if call.triggered:
            return call.value
        return False, ServiceError(self.name, "timeout")

    def _hedged(self, req, caller, limit):
        """Send the primary, then copies at the hedge policy's times; the first success wins and
        the others are cancelled. Fails when every copy sent has failed or the time limit passes
        (then, as for any timed-out attempt, the copies still running go on at the target)."""
        env, hedge = self.env, self.hedge
        if limit <= 0:
            return False, ServiceError(self.name, "timeout")
        start, ends_at = env.now, env.now + limit
        copies = [env.process(self._guarded(req, caller))]
        last_error = None
        while True:
            pending = [c for c in copies if not c.triggered]
            wake = min(hedge.hedge_at(start, len(copies) - 1), ends_at)
            if pending and wake > env.now:
                timer = [] if math.isinf(wake) else [env.timeout(wake - env.now)]
                try:
                    yield simpy.AnyOf(env, pending + timer)
                except simpy.Interrupt:   # our caller cancelled us: cancel every copy
                    self._cancel(copies)
                    raise
            for i, c in enumerate(copies):
                if c.triggered and c.value[0]:
                    hedge.record_winner(env.now, hedge=i > 0)
                    self._cancel(copies)
                    return c.value
                if c.triggered:
                    last_error = c.value[1]
            if env.now >= ends_at:
                return False, ServiceError(self.name, "timeout")
            if hedge.should_hedge(start, env.now, len(copies) - 1):
                hedge.record_hedge(env.now)
                self.hedges += 1
                copies.append(env.process(self._guarded(req, caller)))
            elif not any(not c.triggered for c in copies):
                return False, last_error

    @staticmethod
    def _cancel(copies):
        for c in copies:
            if not c.triggered and c.is_alive:
                c.interrupt("cancelled")

    def __repr__(self):
        return f"Client({self.name!r} -> {getattr(self.target, 'name', self.target)!r})"
