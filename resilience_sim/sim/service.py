"""Services: capacity, a latency distribution, an error rate, dependencies and an optional handler.

A call is a simpy generator used with ``yield from``, so a handler reads as plain Python::

    def search(svc, req):
        try:
            return (yield from svc.ask("search_engine", req))
        except ServiceError:
            req.degraded = "slower SQL search"
            return (yield from svc.ask("sql", req))

A service keeps its own slots and FIFO queue (no simpy ``Resource``, no process of its own): a call
that finds a free slot takes it without an event, a call that must wait waits on one event, and a
release hands the slot straight to the oldest waiter. So a call costs one work timeout, plus one
event when it waits.
"""
from __future__ import annotations

from array import array
from collections import Counter, deque

import simpy
from simpy.events import Event

from ..core import validate
from ..core.distributions import Distribution, as_distribution
from ..core.reasons import check_reason, outcome_for
from ..core.timeline import Timeline
from ..policies import LoadShedder, TokenBucket, claim
from .world import check_world, timeout

_CRASH = object()       # the cause of the interrupt a crash sends to the calls at work
_INF = float("inf")
_new = object.__new__


class ServiceError(Exception):
    """A call failed: ``reason`` (one of :data:`resilience_sim.core.reasons.REASONS`) says why."""

    def __init__(self, service: str, reason: str):
        super().__init__(f"{service}: {reason}")
        self.service = validate.text("service", service, empty=False)
        self.reason = check_reason("reason", reason)

    @property
    def outcome(self):
        return outcome_for(self.reason)


class Request:
    """One user request as it travels: when it started, which endpoint (``route``) it is for, what it
    is about (``key``, any hashable value or None), attempts made, who answered, any degradation, and
    the ``age`` of the data in its answer (seconds; 0 unless a cache answered with an older value).
    ``route`` and ``key`` are set by the workload; a handler may change them, and what they are when
    the request ends is recorded."""
    __slots__ = ("start", "route", "key", "attempts", "answered_by", "degraded", "deadline", "age")

    def __init__(self, start: float, route: str = "", key=None):
        self.start = validate.non_negative("start", start)
        self.route = validate.text("route", route)
        self.key = _hashable("key", key)
        self.attempts = 1
        self.answered_by = ""
        self.degraded = ""          # non-empty: the answer is degraded, and this is why
        self.deadline = float("inf")
        self.age = 0.0

    @classmethod
    def _unchecked(cls, start: float, route: str, key) -> "Request":
        """A request from values already checked (by a workload): the hot path skips the checks."""
        req = _new(cls)
        req.start = start
        req.route = route
        req.key = key
        req.attempts = 1
        req.answered_by = req.degraded = ""
        req.deadline = _INF
        req.age = 0.0
        return req

    def child(self, deadline: float) -> "Request":
        """The same request as seen below a layer with its own ``deadline`` (an absolute time)."""
        if deadline.__class__ is not float or deadline != deadline:     # the checks only off the hot path
            deadline = validate.number("deadline", deadline, allow_inf=True)
        sub = Request._unchecked(self.start, self.route, self.key)
        sub.deadline = deadline
        return sub

    def adopt(self, sub: "Request") -> None:
        """Take over what a child learned on its way: who answered, any degradation, the data's age."""
        if not isinstance(sub, Request):
            raise validate.WrongType(f"sub must be a Request (one made by child()), got {validate.show(sub)}")
        self.answered_by = sub.answered_by or self.answered_by
        self.degraded = sub.degraded or self.degraded
        self.age = max(self.age, sub.age)

    def __repr__(self) -> str:
        key = "" if self.key is None else f", key={self.key!r}"
        return f"Request({self.route!r}{key}, start={self.start:g})"


class Condition:
    """A fault's effect on a service while it lasts: slower and/or more errors. ``extra_rng`` is the
    fault's own stream for drawing ``extra_latency`` (None: the service's latency stream)."""
    __slots__ = ("latency_factor", "extra_latency", "error_rate", "extra_rng")

    def __init__(self, latency_factor: float = 1.0, extra_latency: Distribution | None = None,
                 error_rate: float = 0.0, extra_rng=None):
        self.latency_factor = validate.number("latency_factor", latency_factor, low=0.0)
        self.extra_latency = extra_latency
        self.error_rate = validate.probability("error_rate", error_rate)
        self.extra_rng = extra_rng


class Service:
    """A service in a world.

    * ``capacity``: requests served at once; the rest wait in a FIFO queue of at most ``queue_limit``
      (``None``: unbounded); a request that finds the queue full is rejected with reason "overload".
    * ``latency``: the work time of one call (a number means fixed seconds).
    * ``error_rate``: the share of calls that fail with reason "error" after doing their work.
    * ``dependencies``: what the handler may call with :meth:`ask`: service names, services, or
      clients around them (then ``ask`` goes through the client's policies); a dict names each one
      itself. A list names a service by its name and a client by the service it ends at. Every
      name must be a service of the world when the world runs, and asking for an undeclared one is
      an error. Partitions between this service and a dependency apply to every ``ask``.
    * ``handler(service, request)``: an optional simpy generator run while holding a slot, which
      calls ``dependencies`` with :meth:`ask`; its return value is the call's value.
    * A request whose deadline (``request.deadline``, set by a client) has passed when it gets a slot
      is refused with "deadline" instead of being worked on; one that was waiting when the service
      crashed fails with "crashed" when it gets its slot, without doing the work.
    * ``shedder`` (a :class:`~resilience_sim.policies.LoadShedder`) refuses arrivals that would have to
      wait with "shed" when the queue or its oldest wait passes a bound (one that finds a free slot is
      served: ``max_queue=0`` means "never wait"); ``rate_limit`` (a
      :class:`~resilience_sim.policies.TokenBucket`) refuses arrivals beyond its rate with "rate limited".
    """

    def __init__(self, world, name: str, *, capacity: int = 1, latency=0.0, error_rate: float = 0.0,
                 dependencies=(), handler=None, queue_limit: int | None = None, shedder=None,
                 rate_limit=None):
        self.world = check_world(world)
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.env = world.env
        self.name = name
        self.capacity = validate.integer("capacity", capacity, low=1)
        self.latency = as_distribution("latency", latency, number_means="fixed")
        self.error_rate = validate.probability("error_rate", error_rate)
        self.queue_limit = None if queue_limit is None else validate.integer("queue_limit", queue_limit, low=0)
        self._deps = _dependencies(name, dependencies)
        self.dependencies = tuple(self._deps)
        if handler is not None and not callable(handler):
            raise ValueError(f"handler must be a callable returning a simpy generator, got {handler!r}")
        self.handler = handler
        if shedder is not None and not isinstance(shedder, LoadShedder):
            raise ValueError(f"shedder must be a LoadShedder or None, got {shedder!r}")
        if rate_limit is not None and not isinstance(rate_limit, TokenBucket):
            raise ValueError(f"rate_limit must be a TokenBucket or None, got {rate_limit!r}")
        claim(world, shedder=shedder, rate_limit=rate_limit)
        self.shedder, self.rate_limit = shedder, rate_limit
        self.failure_reasons: Counter = Counter()
        self.timeline = Timeline(name)
        self.calls = 0
        self.failures = 0
        self.call_start = array("d")     # per call: the start time of the user request it serves
        self.call_route = array("H")     # per call: that request's route code (world.recorder)
        self.busy = 0                    # slots in use
        self._waiting: deque = deque()   # (event, arrival time) of calls waiting for a slot, oldest first
        self._at_work: dict = {}         # processes of the calls doing their work now (a crash interrupts them)
        self._route_codes = world.recorder._codes    # route -> code, read on every call
        self._latency_rng = world.rng(f"service/{name}/latency")
        self._error_rng = world.rng(f"service/{name}/errors")
        self._down = 0           # how many faults hold the service down now
        self._epoch = 0          # bumped at every crash, to fail the requests in flight
        self._conditions: list[Condition] = []
        self._factor, self._extras, self._errors = 1.0, (), self.error_rate
        world.add_service(self)

    # --- state driven by faults -------------------------------------------------------------
    @property
    def up(self) -> bool:
        return self._down == 0

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot."""
        return len(self._waiting)

    @property
    def in_system(self) -> int:
        """Requests being served plus those waiting."""
        return self.busy + len(self._waiting)

    def go_down(self) -> None:
        """Crash: calls at work fail "crashed" now, waiting ones when their turn comes, new ones "down"."""
        self._down += 1
        if self._down == 1:
            self._epoch += 1
            self.timeline.mark(self.env.now, False)
            for process in list(self._at_work):
                process.interrupt(_CRASH)

    def go_up(self) -> None:
        if self._down == 0:
            raise RuntimeError(f"{self.name} is already up")
        self._down -= 1
        if self._down == 0:
            self.timeline.mark(self.env.now, True)

    def add_condition(self, condition: Condition) -> None:
        self._conditions.append(condition)
        self._refresh()

    def remove_condition(self, condition: Condition) -> None:
        self._conditions.remove(condition)
        self._refresh()

    def _refresh(self) -> None:
        factor, extras, ok = 1.0, [], 1.0 - self.error_rate
        for c in self._conditions:
            factor *= c.latency_factor
            if c.extra_latency is not None:
                extras.append((c.extra_latency, c.extra_rng))
            ok *= 1.0 - c.error_rate
        self._factor, self._extras, self._errors = factor, tuple(extras), 1.0 - ok

    # --- calls --------------------------------------------------------------------------------
    def call(self, req: Request, caller: "Service | None" = None):
        """Serve one call (a simpy generator: ``value = yield from service.call(req)``).

        Raises :class:`ServiceError` when the service is down, unreachable, overloaded, crashes
        while serving, or fails.
        """
        env = self.env
        self.calls += 1
        self.call_start.append(req.start)
        route, codes = req.route, self._route_codes
        self.call_route.append(codes[route] if route in codes else self.world.recorder.code(route))
        if self._down:
            raise self._fail("down")
        if caller is not None and self.world._partitions:
            hang = self.world.partition_hang(caller.name, self.name)
            if hang is not None:
                if hang > 0:
                    yield env.timeout(hang)
                raise self._fail("partition")
        full = self.busy >= self.capacity
        if full and self.queue_limit is not None and len(self._waiting) >= self.queue_limit:
            raise self._fail("overload")
        if full and self.shedder is not None:   # only a newcomer who would wait
            oldest_wait = env.now - self._waiting[0][1] if self._waiting else 0.0
            if self.shedder.should_shed(env.now, len(self._waiting), oldest_wait):
                raise self._fail("shed")
        if self.rate_limit is not None and not self.rate_limit.try_take(env.now):   # shed calls keep their token
            raise self._fail("rate limited")
        epoch = self._epoch
        if full:        # wait, FIFO, until a release hands this call its slot
            handed = _new(Event)               # Event(env), inline (its _value is PENDING: the class's)
            handed.env, handed.callbacks = env, []
            entry = (handed, env._now)
            self._waiting.append(entry)
            try:
                yield handed
            except BaseException:   # cancelled (interrupted): leave the queue, or pass on a slot just handed
                if handed.triggered:
                    self._release()
                else:
                    self._waiting.remove(entry)
                raise
        else:
            self.busy += 1
        try:
            if epoch != self._epoch:           # crashed while this call waited: its queue was lost
                raise self._fail("crashed")
            if env._now >= req.deadline:       # the caller has given up: don't start the work
                raise self._fail("deadline")
            rng = self._latency_rng
            work = self.latency.sample(rng)
            if self._conditions:
                work *= self._factor
                for extra, extra_rng in self._extras:
                    work += extra.sample(extra_rng or rng)
            if work > 0:                       # at work: a crash interrupts it (see go_down)
                process = env._active_proc
                self._at_work[process] = None
                try:
                    yield timeout(env, work)
                except simpy.Interrupt as stop:
                    if stop.cause is not _CRASH:
                        raise
                    raise self._fail("crashed") from None
                finally:
                    del self._at_work[process]
            if epoch != self._epoch:
                raise self._fail("crashed")
            if self._errors and self._error_rng.random() < self._errors:
                raise self._fail("error")
            if self.handler is None:
                req.answered_by = self.name
                return None
            work = self.handler(self, req)
            if not hasattr(work, "send"):
                raise validate.WrongType(f"handler of {self.name!r} must return a simpy generator (a function that "
                                f"uses yield, e.g. `return (yield from svc.ask(\"db\", req))`), got {work!r}")
            result = yield from work
            if epoch != self._epoch:
                raise self._fail("crashed")
            if not req.answered_by:
                req.answered_by = self.name
            return result
        finally:                               # self._release(), inline (handed.succeed() too):
            if self._waiting:                  # the slot passes to the oldest waiter
                handed = self._waiting.popleft()[0]
                handed._ok, handed._value = True, None
                env.schedule(handed)
            else:
                self.busy -= 1

    def _release(self) -> None:
        if self._waiting:
            self._waiting.popleft()[0].succeed()    # the slot passes to the oldest waiter
        else:
            self.busy -= 1

    def _fail(self, reason: str) -> ServiceError:
        self.failures += 1
        self.failure_reasons[reason] += 1
        return ServiceError(self.name, reason)

    # --- dependencies -------------------------------------------------------------------------
    def ask(self, dependency: str, req: Request):
        """Call one of this service's declared dependencies (``yield from svc.ask("db", req)``),
        through its client's policies when it was declared with one."""
        target = self._deps.get(dependency) if isinstance(dependency, str) else None
        if target is None:
            raise ValueError(f"dependency must be one of {list(self.dependencies)} for {self.name!r}, "
                             f"got {dependency!r}")
        if isinstance(target, str):
            target = self._deps[dependency] = self.world.service(target)
        return target.call(req, caller=self)

    def ask_all(self, dependencies, req: Request):
        """Call several dependencies at once and wait for all (fan-out); returns, in order, each
        call's ``(True, value)`` or ``(False, ServiceError)``, so one failure never cuts the others short."""
        env = self.env
        calls = [env.process(outcome_of(self.ask(dep, req))) for dep in dependencies]
        if not calls:
            raise ValueError("dependencies must name at least one dependency, got none")
        yield env.all_of(calls)
        return [call.value for call in calls]

    def check_dependencies(self) -> None:
        """Refuse, before the run starts, a dependency named but absent from the world, or one that
        is in another world."""
        for name, target in self._deps.items():
            if isinstance(target, str):
                if target not in self.world.services:
                    raise ValueError(f"dependencies of {self.name!r} name {target!r}, which is not a service "
                                     f"of this world; services: {sorted(self.world.services)}")
            elif getattr(target, "world", self.world) is not self.world:
                raise ValueError(f"dependencies of {self.name!r}: {name!r} belongs to another World")

    def __repr__(self) -> str:
        return f"Service({self.name!r}, capacity={self.capacity}, up={self.up})"


def _dependencies(owner: str, deps) -> dict:
    """``{name: service name, Service or client}`` from a list (or a dict) of dependencies."""
    if isinstance(deps, str):
        raise ValueError(f"dependencies must be a list of services, clients or service names, got the "
                         f"string {deps!r} (write [{deps!r}])")
    try:
        items = list(deps.items() if isinstance(deps, dict) else ((None, d) for d in deps))
    except TypeError:
        raise ValueError(f"dependencies must be a list of services, clients or service names, "
                         f"got {deps!r}") from None
    out: dict = {}
    for name, dep in items:
        if not isinstance(dep, str) and not callable(getattr(dep, "call", None)):
            raise ValueError(f"dependencies must be service names, services or clients, got {dep!r}")
        name = _name_of(dep) if name is None else name
        if not isinstance(name, str) or not name:
            raise ValueError(f"dependencies must be named by non-empty strings, got {name!r}")
        if name in out:
            raise ValueError(f"dependencies of {owner!r} name {name!r} twice")
        out[name] = dep
    return out


def _name_of(dep) -> str:
    """The name ``ask`` knows a dependency by: a name is itself, a service its name, a client (or a
    chain of clients) the name of the service it ends at."""
    seen = dep
    while not isinstance(seen, (str, Service)):
        seen = getattr(seen, "target", None)
        if seen is None:
            raise ValueError(f"dependencies: cannot tell which service {dep!r} calls; give a dict "
                             f"such as {{'db': {dep!r}}}")
    return seen if isinstance(seen, str) else seen.name


def _hashable(name: str, value):
    try:
        hash(value)
    except TypeError:
        raise validate.WrongType(f"{name} must be None or a hashable value (a number, a string, a tuple), "
                                 f"got {validate.show(value)}") from None
    return value


def outcome_of(call):
    """Run a call to its end and return ``(True, value)`` or ``(False, ServiceError)``: a simpy
    generator that never raises for a failed call, so it can run as a process nobody waits for."""
    try:
        return True, (yield from call)
    except ServiceError as err:
        return False, err
