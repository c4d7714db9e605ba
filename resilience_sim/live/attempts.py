"""What the live clients decide, in one place: the story of one request as a generator that yields
its I/O, so the sync and the async client are thin drivers around the same :class:`Decisions`.

Layers, from the outside in, as :mod:`resilience_sim.policies` documents them and
:class:`resilience_sim.sim.client.Client` drives them in simulated time: deadline → retry (with
backoff and budget) → throttle (asked per attempt) → breaker → rate limit → bulkhead → per-attempt
timeout → the HTTP call → on failure, the fallback. Each step reads ``now = clock()`` inside one lock
per client, so the policies (not thread-safe, and refusing a ``now`` that goes back) see one ordered
clock; the lock is held around decisions only, never during I/O or a wait.

What holds, as in the simulator: the throttle is asked before every attempt and told what became of
each (accepted, refused for overload, or withdrawn with ``cancel`` when the breaker, the rate limit or
the bulkhead refused it unsent); every breaker permit is resolved once (``record`` with the attempt's
outcome, ``cancel`` for an attempt never sent or abandoned); the budget earns on each request's first
attempt and is asked before each retry; the wait before a retry comes from ``RetryPolicy.decide``
(never shorter than the server's ``Retry-After``, never outlasting the deadline); a bulkhead slot is
released once, handed to the oldest waiter first; local refusals are counted in ``rejected`` like the
simulated client's ("throttled", "circuit open", "rate limited", "bulkhead full", "deadline").

The flow yields commands a driver carries out and answers: ``("send", method, url, options, limit,
bound)`` → a :class:`Sent`; ``("sleep", seconds)``; ``("wait", event, seconds)`` (a bulkhead queue);
``("call", function, request, reason)`` → the fallback function's value.

The fast path (most requests: one attempt, answered): :meth:`Decisions.begin` starts the request and
admits its first attempt; a driver sends a ``ready`` one itself and :meth:`Decisions.first` ends the
request if it answered OK; anything else goes on in :meth:`Decisions.flow` from that attempt (and a
send that raised ends in :meth:`Decisions.failed`). Either way every decision is made here, the same.
"""
from __future__ import annotations

import email.utils
import json
import math
import random
import threading
import time
from collections import Counter, deque

import httpx

from ..core import validate
from ..core.reasons import OVERLOAD, Outcome, outcome_for
from ..metrics.results import ClientStats
from ..policies import (AdaptiveThrottle, Bulkhead, CircuitBreaker, Deadline, FallbackChain, Permit,
                        RetryBudget, RetryPolicy, Static, Timeout, TokenBucket, claim)
from ..policies.fallback import FALL_BACK_ON

#: Methods that do the same however often they are sent (RFC 9110 §9.2.2): retried freely.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
METHODS = IDEMPOTENT | {"POST", "PATCH"}
_STATUS = {400: "bad request", 401: "unauthorized", 403: "unauthorized", 404: "not found",
           409: "conflict", 429: "too many requests", 503: "unavailable"}


# --- HTTP in the course's vocabulary ------------------------------------------------------------
def reason_for_status(status: int) -> str:
    """The reason an HTTP status stands for, "" for success (below 400): 5xx "error" (503
    "unavailable"), 429 "too many requests", 401/403 "unauthorized", 404 "not found", 409 "conflict",
    400 and any other 4xx "bad request"."""
    if status < 400:
        return ""
    return _STATUS.get(status) or ("error" if status >= 500 else "bad request")


def reason_for_error(err: BaseException) -> str:
    """The reason an httpx failure stands for: a timeout of any phase "timeout", a refused or failed
    connection "down", anything else on the wire (a reset, a broken body: ``ReadError``,
    ``RemoteProtocolError``, ``WriteError``) "error"."""
    if isinstance(err, httpx.TimeoutException):
        return "timeout"
    if isinstance(err, httpx.ConnectError):
        return "down"
    return "error"


def retry_after(value: str | None, now_wall: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds (fractions accepted) or an
    HTTP-date; None when absent or unreadable (a bad hint is ignored, not obeyed)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        return max(0.0, when - (time.time() if now_wall is None else now_wall))
    return seconds if 0.0 <= seconds < math.inf else None


class Reply:
    """What a live request returns, whatever became of it (failures the policies handle are not raised).

    ``outcome`` (:class:`~resilience_sim.core.reasons.Outcome`: OK, DEGRADED, FAILED, TIMED_OUT,
    REJECTED); ``reason``: "" for a full answer, else the failure reason or, when DEGRADED, the
    fallback's label; ``status``, ``headers`` and ``content`` of the response that decided it (None,
    None and b"" when none came, or when a Static or function fallback answered); ``value``: that
    fallback's value; ``attempts`` made (refused ones included); ``elapsed`` seconds; ``answered_by``:
    the target, the fallback step, or this client's name when one of its own layers refused or gave
    up. ``ok``: an answer came (OK or DEGRADED); ``degraded``: the fallback's label or "";
    ``json()``: the body parsed, or the fallback's value.
    """
    __slots__ = ("outcome", "reason", "status", "headers", "content", "value", "attempts", "elapsed",
                 "answered_by")

    def __init__(self, outcome, reason, status=None, headers=None, content=b"", value=None, attempts=1,
                 elapsed=0.0, answered_by=""):
        self.outcome, self.reason, self.status, self.headers = outcome, reason, status, headers
        self.content, self.value, self.attempts = content, value, attempts
        self.elapsed, self.answered_by = elapsed, answered_by

    @property
    def ok(self) -> bool:
        return self.outcome <= Outcome.DEGRADED

    @property
    def degraded(self) -> str:
        return self.reason if self.outcome == Outcome.DEGRADED else ""

    def json(self):
        if self.value is not None or not self.content:
            return self.value
        return json.loads(self.content)

    def __repr__(self):
        why = f", {self.reason!r}" if self.reason else ""
        return (f"Reply({self.outcome.name.lower()}{why}, status={self.status}, attempts={self.attempts}, "
                f"elapsed={self.elapsed * 1e3:.1f} ms)")


class Sent:
    """One HTTP exchange as a driver saw it: ``reason`` "" on success; ``own``: our own bound (the
    attempt's timeout or the deadline) ended it, not the server."""
    __slots__ = ("reason", "status", "headers", "content", "own")

    def __init__(self, reason, status=None, headers=None, content=b"", own=False):
        self.reason, self.status, self.headers, self.content, self.own = reason, status, headers, content, own


class Request:
    """One logical request: what to send, and where it stands (attempt number, last wait, deadline)."""
    __slots__ = ("method", "path", "url", "options", "route", "key", "idempotency_key", "started",
                 "deadline_at", "attempt", "previous", "pending")

    def __init__(self, method, path, url, options, route, key, idempotency_key):
        self.method, self.path, self.url, self.options = method, path, url, options
        self.route, self.key, self.idempotency_key = route, key, idempotency_key
        self.attempt, self.previous, self.started, self.deadline_at = 1, None, 0.0, math.inf
        self.pending = None                # its row in the recording, from Decisions.begin

    def __repr__(self):
        return f"Request({self.method} {self.path}, route={self.route!r}, key={self.key!r})"


class Attempt:
    """One attempt's admission: ``refused`` (a local refusal: never sent; ``final``, it ends the
    request with no retry decision), or the permit and slot it holds and its time ``limit`` with the
    ``bound`` that sets it ("timeout" or "deadline"); ``waiter`` while queued at the bulkhead;
    ``ready``: it holds what it needs (neither refused nor queued), to be sent now."""
    __slots__ = ("permit", "asked", "slot", "refused", "final", "started", "limit", "bound", "waiter", "ready")

    def __init__(self):
        self.permit, self.asked, self.slot, self.refused, self.final = None, False, False, "", False
        self.started, self.limit, self.bound, self.waiter, self.ready = 0.0, math.inf, "timeout", None, False


class Waiter:
    """A place in the bulkhead's queue: ``state`` "waiting", "handed" (it holds a slot now) or
    "expired" (``max_wait`` passed); ``event`` wakes its driver."""
    __slots__ = ("enqueued", "give_up_at", "event", "state")

    def __init__(self, enqueued, give_up_at, event):
        self.enqueued, self.give_up_at, self.event, self.state = enqueued, give_up_at, event, "waiting"


def _optional(name, value, kind, methods=()):
    if value is None or isinstance(value, kind):
        return value
    if methods and all(callable(getattr(value, m, None)) for m in methods):
        return value                      # a learner's own breaker, say
    extra = f" or an object with methods {', '.join(methods)}" if methods else ""
    raise validate.WrongType(f"{name} must be a {kind.__name__}{extra}, or None; got {validate.show(value)}")


def _limit(name, value, kind):
    if value is None or isinstance(value, kind):
        return value
    return kind(validate.positive(name, value, allow_inf=True))


def _check_fallback(fallback):
    if fallback is None or callable(fallback) and not isinstance(fallback, FallbackChain):
        return fallback
    if not isinstance(fallback, FallbackChain):
        raise validate.WrongType(f"fallback must be a FallbackChain of paths and Static steps, a function "
                                 f"(request, reason) -> value, or None; got {validate.show(fallback)}")
    for step in fallback.steps[1:]:
        if isinstance(step, str) and not step.startswith(("/", "http://", "https://")):
            raise ValueError(f"fallback steps must be paths ('/popular'), URLs or Static answers; got {step!r}")
    return fallback


class Decisions:
    """The policies of one client, its counters, and every decision (see the module docstring)."""

    def __init__(self, owner, *, name, target, base_url, deadline, timeout, retry, budget, throttle, breaker,
                 rate_limit, bulkhead, fallback, seed, clock, recording, make_event):
        self.name, self.target, self.base_url, self.clock = name, target, base_url, clock
        self.recording, self.make_event = recording, make_event
        self.deadline = _limit("deadline", deadline, Deadline)
        self.timeout = _limit("timeout", timeout, Timeout)
        self.retry = _optional("retry", retry, RetryPolicy)
        self.budget = _optional("budget", budget, RetryBudget)
        self.throttle = _optional("throttle", throttle, AdaptiveThrottle)
        self.breaker = _optional("breaker", breaker, CircuitBreaker, ("allow", "record"))
        self._permits = isinstance(self.breaker, CircuitBreaker)   # else: allow() -> bool
        self.rate_limit = _optional("rate_limit", rate_limit, TokenBucket)
        self.bulkhead = _optional("bulkhead", bulkhead, Bulkhead)
        self.fallback = _check_fallback(fallback)
        self._chained = isinstance(self.fallback, FallbackChain)
        seed = validate.integer("seed", seed, low=0)
        claim(owner, deadline=self.deadline, timeout=self.timeout, retry=self.retry, budget=self.budget,
              throttle=self.throttle, breaker=self.breaker, rate_limit=self.rate_limit, bulkhead=self.bulkhead)
        self.rng = random.Random(seed)                              # retry jitter
        self._throttle_rng = random.Random(f"{seed}/throttle")     # its own: a throttle leaves jitter alone
        self.lock = threading.Lock()
        self._waiters: deque = deque()                              # bulkhead waiters, oldest first
        self.requests = self.attempts = self.budget_denied = self.retries = 0
        self.backoff_time = 0.0
        self.rejected: Counter = Counter()

    # --- the story of one request ---------------------------------------------------------------
    def begin(self, req: Request) -> Attempt:
        """The request starts: its row pending in the recording, its first attempt admitted. A driver
        sends it at once when it is ``ready`` (the fast path: :meth:`first`), else hands it to :meth:`flow`."""
        req.pending = self.recording.start(req.route, req.key)
        return self.admit(req)

    def first(self, att: Attempt, req: Request, sent: Sent) -> Reply | None:
        """The fast path's end: the Reply of a request whose first attempt, sent as admitted, answered
        OK (as :meth:`flow` would end it); None for any other ``sent``: the driver goes on with
        ``flow(req, att, sent)``."""
        if sent.reason:
            return None
        self.after(att, req, sent, None)
        reply = self._reply(att, sent, req)
        if self._chained:
            self._chain(0, None)
        reply.elapsed = self.clock() - req.started
        self.recording.finish(req.pending, Outcome.OK, "", reply.answered_by, attempts=1)
        return reply

    def flow(self, req: Request, att: Attempt, sent: Sent | None = None):
        """A generator from :meth:`begin`'s attempt ``att`` (and its ``sent``, if the driver made it):
        yields I/O commands (module docstring), returns the :class:`Reply`."""
        reply, ended = None, "cancelled"
        try:
            while True:
                if sent is None and not att.refused:
                    try:
                        while att.waiter is not None:
                            yield ("wait", att.waiter.event, self._wait_for(att, req))
                            self.settle(att, req)
                        if not att.refused:
                            sent = yield ("send", req.method, req.url, req.options, att.limit, att.bound)
                    except BaseException:
                        self.abandon(att)
                        raise
                hint = None if sent is None or sent.reason == "" or sent.headers is None else \
                    retry_after(sent.headers.get("retry-after"))
                wait = self.after(att, req, sent, hint)
                if wait is None:
                    break
                yield ("sleep", wait)
                att, sent = self.admit(req), None
            reply = self._reply(att, sent, req)
            if reply.outcome != Outcome.OK and self.fallback is not None:
                reply = yield from self._fall_back(req, reply)
            elif self._chained:
                self._chain(0, None)
            reply.elapsed = self.clock() - req.started
            return reply
        except Exception:                      # a fallback function raised: it goes on to the caller
            ended = "error"
            raise
        finally:
            if reply is None:                  # cancelled, or raised: no answer reached the caller
                reply = Reply(Outcome.FAILED, ended, attempts=req.attempt, answered_by=self.name)
            self.recording.finish(req.pending, reply.outcome, reply.reason, reply.answered_by, attempts=req.attempt)

    def failed(self, att: Attempt, req: Request, error: BaseException) -> None:
        """The driver raised ``error`` (or was cancelled) while sending the fast path's attempt ``att``:
        as :meth:`flow` ends then, the attempt is abandoned and the row is FAILED, "error" for an
        Exception, "cancelled" for any other (a cancelled task, Ctrl-C); the driver re-raises."""
        self.abandon(att)
        self.recording.finish(req.pending, Outcome.FAILED, "error" if isinstance(error, Exception) else "cancelled",
                              self.name, attempts=req.attempt)

    def _reply(self, att, sent, req) -> Reply:
        if sent is None:
            return Reply(outcome_for(att.refused), att.refused, attempts=req.attempt, answered_by=self.name)
        reason = sent.reason
        return Reply(Outcome.OK if not reason else outcome_for(reason), reason, sent.status, sent.headers,
                     sent.content, attempts=req.attempt, answered_by=self.name if sent.own else self.target)

    def _fall_back(self, req, reply):
        """The first answer of the fallback (a generator); ``reply`` unchanged if none answers."""
        chain = self.fallback
        if not isinstance(chain, FallbackChain):
            if reply.reason not in FALL_BACK_ON:
                return reply
            value = yield ("call", chain, req, reply.reason)
            return Reply(Outcome.DEGRADED, "fallback", value=value, attempts=req.attempt, answered_by="fallback")
        index = self._chain(0, reply.reason)
        while index is not None:
            step, label = chain.steps[index], chain.labels[index]
            if isinstance(step, Static):
                self._chain(index, None)
                return Reply(Outcome.DEGRADED, label, value=step.value, attempts=req.attempt, answered_by=step.name)
            limit, bound = self._fallback_limit(req)
            url = step if step.startswith(("http://", "https://")) else self.base_url + step
            sent = Sent(bound, own=True) if limit <= 0 else (yield ("send", "GET", url, {}, limit, bound))
            if not sent.reason:
                self._chain(index, None)
                return Reply(Outcome.DEGRADED, label, sent.status, sent.headers, sent.content,
                             attempts=req.attempt, answered_by=step)
            index = self._chain(index, sent.reason)
        return reply

    # --- the decisions, each under the lock -------------------------------------------------------
    def admit(self, req: Request) -> Attempt:
        """Ask deadline, throttle, (budget on a first attempt), breaker, rate limit, bulkhead, in order."""
        att = Attempt()
        with self.lock:
            now = self.clock()
            if req.attempt == 1:                # the request starts: its deadline with it
                self.requests += 1
                req.started = now
                if self.deadline is not None:
                    req.deadline_at = now + self.deadline.budget
            elif now >= req.deadline_at:
                return self._refuse(att, "deadline", final=True)
            if self.throttle is not None:
                if not self.throttle.allow(now, self._throttle_rng):
                    return self._refuse(att, "throttled", final=True)
                att.asked = True
            if req.attempt == 1 and self.budget is not None:
                self.budget.record_request(now)
            if self.breaker is not None:
                att.permit = permit = self.breaker.allow(now)
                if permit.__class__ is not Permit and not permit:
                    att.permit = None
                    return self._refuse(att, "circuit open")
            if self.rate_limit is not None and not self.rate_limit.try_take(now):
                self._give_permit_back(att, now)
                return self._refuse(att, "rate limited")
            if self.bulkhead is not None:
                self._expire(now)
                if not self.bulkhead.try_acquire(now):
                    if not self.bulkhead.can_wait():
                        self._give_permit_back(att, now)
                        return self._refuse(att, "bulkhead full")
                    att.waiter = Waiter(now, self.bulkhead.enqueue(now), self.make_event())
                    self._waiters.append(att.waiter)
                    return att
                att.slot = True
            return self._start(att, req, now)

    def settle(self, att: Attempt, req: Request) -> None:
        """After a wait at the bulkhead: ``att`` holds a slot, or is refused ("bulkhead full" once
        ``max_wait`` passed, "deadline" if that came first), or (``att.waiter`` still set) waits on."""
        with self.lock:
            now = self.clock()
            self._expire(now)
            waiter = att.waiter
            if waiter.state == "handed":
                att.waiter, att.slot = None, True
                self._start(att, req, now)
            elif waiter.state == "expired":
                att.waiter = None
                self._give_permit_back(att, now)
                self._refuse(att, "bulkhead full")
            elif now >= req.deadline_at:
                self._waiters.remove(waiter)
                self.bulkhead.leave(waiter.enqueued)
                att.waiter = None
                self._give_permit_back(att, now)
                self._refuse(att, "deadline")

    def after(self, att: Attempt, req: Request, sent: Sent | None, hint: float | None) -> float | None:
        """The attempt ended (``sent`` None: refused unsent): tell bulkhead, breaker, timeout and
        throttle; the wait before the next attempt, or None to stop."""
        with self.lock:
            now = self.clock()
            ok = sent is not None and not sent.reason
            reason = att.refused if sent is None else sent.reason
            if sent is not None:
                if att.slot:
                    self._release(now)
                    att.slot = False
                if self._permits:
                    self.breaker.record(now, ok, now - att.started, permit=att.permit)
                elif self.breaker is not None:
                    self.breaker.record(now, ok, now - att.started)
                att.permit = None
                if self.timeout is not None:
                    self.timeout.record(now, reason == "timeout")
            if att.asked:
                att.asked = False
                if sent is None:
                    self.throttle.cancel(now)
                else:
                    self.throttle.record(now, ok or (not sent.own and reason not in OVERLOAD))
            if ok or att.final:
                return None
            return self._retry_wait(req, now, reason, hint)

    def abandon(self, att: Attempt) -> None:
        """The driver was cancelled (or raised) mid-attempt: leave the queue or free the slot, give the
        breaker permit and the throttle's request back; no outcome is recorded at either."""
        with self.lock:
            now = self.clock()
            waiter = att.waiter
            if waiter is not None and waiter.state == "waiting":
                self._waiters.remove(waiter)
                self.bulkhead.leave(waiter.enqueued)
            elif waiter is not None and waiter.state == "handed" or att.slot:
                self._release(now)
            att.waiter, att.slot = None, False
            self._give_permit_back(att, now)
            if att.asked:
                att.asked = False
                self.throttle.cancel(now)

    def stats(self, zero: float) -> ClientStats:
        """Counters in the simulated client's shape; breaker times as seconds since ``zero``."""
        def shift(log):
            return tuple((max(0.0, t - zero), what) for t, what in (log or ()))
        with self.lock:
            return ClientStats(self.name, self.requests, self.attempts, self.backoff_time, dict(self.rejected),
                               self.budget_denied, 0, shift(getattr(self.breaker, "history", None)),
                               shift(getattr(self.breaker, "trips", None)), self.retries)

    # --- internals --------------------------------------------------------------------------------
    def _start(self, att, req, now):
        self.attempts += 1                     # sent from here on, as the simulator counts it
        if req.attempt > 1:
            self.retries += 1
        att.started = now
        left = req.deadline_at - now
        per = self.timeout.per_attempt if self.timeout is not None else math.inf
        att.limit, att.bound = (left, "deadline") if left < per else (per, "timeout")
        att.ready = True
        return att

    def _wait_for(self, att, req) -> float:
        return max(0.0, min(att.waiter.give_up_at, req.deadline_at) - self.clock())

    def _refuse(self, att, reason, final=False):
        self.rejected[reason] += 1
        att.refused, att.final = reason, final
        return att

    def _give_permit_back(self, att, now):
        if att.permit is None:
            return
        if self._permits:
            self.breaker.cancel(now, permit=att.permit)
        elif callable(getattr(self.breaker, "cancel", None)):
            self.breaker.cancel(now)
        att.permit = None

    def _release(self, now):
        self._expire(now)
        if self.bulkhead.release(now):          # handed to the oldest waiter: wake it
            waiter = self._waiters.popleft()
            waiter.state = "handed"
            waiter.event.set()

    def _expire(self, now):
        """Waiters whose ``max_wait`` has passed leave, oldest first, rejected: FIFO, as the bulkhead's
        books need, whichever thread happens to wake first."""
        waiters = self._waiters
        while waiters and waiters[0].give_up_at <= now:
            waiter = waiters.popleft()
            self.bulkhead.give_up(now)
            waiter.state = "expired"
            waiter.event.set()

    def _retry_wait(self, req, now, reason, hint):
        if self.retry is None:
            return None
        remaining = None if math.isinf(req.deadline_at) else req.deadline_at - now
        wait = self.retry.decide(now, req.attempt, reason, self.rng, previous=req.previous,
                                 idempotent=req.method in IDEMPOTENT, idempotency_key=req.idempotency_key,
                                 retry_after=hint, remaining=remaining)
        if wait is not None and self.budget is not None:
            if not self.budget.can_retry(now):
                self.budget_denied += 1
                return None
            self.budget.record_retry(now)
        if wait is not None:
            self.backoff_time += wait
            req.previous, req.attempt = wait, req.attempt + 1
        return wait

    def _chain(self, index, reason):
        with self.lock:
            return self.fallback.record(index, reason)

    def _fallback_limit(self, req):
        """What a fallback call may take: what is left of the deadline, at most one attempt's timeout."""
        left = req.deadline_at - self.clock()
        per = self.timeout.per_attempt if self.timeout is not None else math.inf
        return (left, "deadline") if left < per else (per, "timeout")


__all__ = ["Decisions", "Reply", "Sent", "Request", "reason_for_status", "reason_for_error", "retry_after",
           "IDEMPOTENT", "METHODS"]
