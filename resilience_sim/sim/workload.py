"""Workloads: open-loop arrivals (a rate profile over time) and closed-loop users with think time.

The target is anything with a ``call(request)`` simpy generator: a :class:`Service`, or a client that
wraps one in resilience policies. Every finished user request becomes one row in ``world.recorder``.

An open-loop request costs one event of its own, its arrival: the arrivals are a chain of timeouts
whose callback sends each request (no process for them), and a request's process starts in that
callback and ends without an event (:class:`_RequestProcess`). What the target does costs the rest
(a service: its work timeout, and one event when the call waits for a slot).
"""
from __future__ import annotations

import numbers

import simpy
import simpy.events
from simpy.core import URGENT
from simpy.events import Timeout

from ..core import validate
from ..core.distributions import as_distribution
from ..core.profiles import PROFILES, Constant
from ..core.reasons import Outcome
from . import guard
from .service import Request, ServiceError
from .world import check_world, timeout

#: Closed-loop users in one workload at most (each is a simpy process).
MAX_USERS = 100_000

_request = Request._unchecked
_OK, _DEGRADED = int(Outcome.OK), int(Outcome.DEGRADED)
_HASHABLE = frozenset({int, str})       # exact types whose values always hash
_describe_frame = getattr(simpy.events, "_describe_frame", None)    # simpy's words for a bad yield's place


# --- running one user request -----------------------------------------------------------------
def serve(world, target, route: str, key=None):
    """Send one user request for ``route`` (and ``key``) to ``target`` and record how it ended (a
    simpy generator)."""
    env, recorder = world.env, world.recorder
    req = _request(env._now, route, key)
    pending = recorder.pending
    pending[req] = None
    try:
        yield from target.call(req)
    except ServiceError as err:
        recorder.add(req, env._now, err.outcome, err.reason, err.service)
    else:
        degraded = req.degraded          # "" (the reason of a full answer) unless degraded
        recorder.add(req, env._now, _DEGRADED if degraded else _OK, degraded, req.answered_by)
    finally:
        del pending[req]


class _Go:
    """What starts a generator: an event that succeeded with None (all a process's resume reads)."""
    _ok, _value = True, None


class _RequestProcess(simpy.Process):
    """The process of one open-loop request, two events lighter than ``env.process(serve(...))``:

    * it starts at once, in the step of the arrival that makes it, instead of at an ``Initialize``
      event of its own;
    * nothing waits for it (the workload keeps no handle on it), so ending well schedules no event:
      it is marked processed at once. Ending in an exception schedules the failed event, which stops
      the run with that exception, as simpy does.

    ``_resume`` is simpy's ``Process._resume`` (simpy 4.1) with that one change."""

    def __init__(self, env, generator):
        self.env = env
        self.callbacks = []
        self._generator = generator
        self._resume(_Go)

    def _resume(self, event) -> None:
        env = self.env
        env._active_proc = self
        while True:
            try:
                if event._ok:
                    event = self._generator.send(event._value)
                else:                   # a failed event: throw a copy of its exception in
                    event._defused = True
                    exc = type(event._value)(*event._value.args)
                    exc.__cause__ = event._value
                    event = self._generator.throw(exc)
            except StopIteration as stop:
                event = None
                self._ok, self._value = True, stop.value
                if self.callbacks:
                    env.schedule(self)
                else:
                    self.callbacks = None          # processed: there is nobody to resume
                break
            except BaseException as err:
                event = None
                self._ok, self._value = False, err
                err.__traceback__ = err.__traceback__.tb_next
                env.schedule(self)
                break
            try:
                if event.callbacks is not None:    # not yet processed: wait for it
                    event.callbacks.append(self._resume)
                    break
            except AttributeError:
                if hasattr(event, "callbacks"):
                    raise
                where = _describe_frame(self._generator.gi_frame) if _describe_frame else ""
                raise RuntimeError(f'\n{where}Invalid yield value "{event}"') from None
        self._target = event
        env._active_proc = None


def _keys(world, name: str, key):
    """A function of no argument giving each request's key: ``key`` is None (no key), a callable
    that draws one from the workload's own random stream (``key(rng)``; what it draws must be
    hashable), or one value for all."""
    if key is None:
        return lambda: None
    if callable(key):
        rng = world.rng(f"workload/{name}/keys")

        def draw():
            value = key(rng)
            if value.__class__ in _HASHABLE:     # the usual keys: no check needed
                return value
            try:
                hash(value)
            except TypeError:
                raise ValueError(f"key of workload {name!r} must return a hashable value (a number, a "
                                 f"string, a tuple), got {value!r}") from None
            return value
        return draw
    try:
        hash(key)
    except TypeError:
        raise ValueError(f"key must be None, a hashable value or a function of a random.Random, "
                         f"got {key!r}") from None
    return lambda: key


def _route(name: str, route) -> str:
    route = name if route is None else route
    if not isinstance(route, str) or not route:
        raise ValueError(f"route must be a non-empty string (the endpoint), got {route!r}")
    return route


def _check_target(world, target):
    if not callable(getattr(target, "call", None)):
        raise validate.WrongType(f"target must have a call(request) generator method (a Service or a client), "
                        f"got {target!r}")
    if hasattr(target, "world"):
        world.owns("target", target)
    return target


class OpenLoop:
    """Poisson arrivals whose rate follows ``profile``; they keep coming whatever the target does.

    Stops after ``duration`` seconds or ``requests`` arrivals, whichever comes first (at least one
    must be given). A number as ``profile`` means ``Constant(number)``. Each request is for ``route``
    (default: the workload's ``name``) and carries a ``key``: None, one value, or ``key(rng)`` drawn
    per request from the workload's own stream (say ``lambda rng: rng.randrange(1000)``).
    """

    def __init__(self, world, target, profile, *, duration: float | None = None, requests: int | None = None,
                 name: str = "users", route: str | None = None, key=None):
        self.world = check_world(world)
        self.target = _check_target(world, target)
        if isinstance(profile, numbers.Real) and not isinstance(profile, bool):
            profile = Constant(validate.positive("profile", profile))
        if not isinstance(profile, PROFILES):
            raise ValueError(f"profile must be a rate in requests per second or one of "
                             f"{[p.__name__ for p in PROFILES]}, got {profile!r}")
        self.profile = profile
        if duration is None and requests is None:
            raise ValueError("duration or requests must be given, so that the workload stops by itself")
        self.duration = float("inf") if duration is None else validate.positive("duration", duration)
        self.requests = None if requests is None else validate.integer("requests", requests, low=1)
        by_rate = profile.peak * self.duration
        if self.requests is not None and self.requests <= by_rate:
            guard.check_requests("OpenLoop", self.requests, f"requests={self.requests}")
        else:
            guard.check_requests("OpenLoop", by_rate, f"{profile.peak:g} requests per second for "
                                                      f"{self.duration:g} s")
        self.name = name
        world.add_workload(self)
        self.route, self._key = _route(name, route), _keys(world, name, key)
        self.rng = world.rng(f"workload/{name}/arrivals")
        self.sent = 0
        self._constant, self._peak = isinstance(profile, Constant), profile.peak
        self._limit = float("inf") if self.requests is None else self.requests
        start = simpy.Event(world.env)        # the first arrival is drawn when the run starts, as a process's
        start._ok, start._value = True, None   # first step would be (an urgent event now)
        self._on_arrival = self._arrive        # one bound method for every arrival's timeout
        start.callbacks.append(self._on_arrival)
        world.env.schedule(start, URGENT)

    def _arrive(self, event) -> None:
        """The callback of each arrival's timeout (and of the start): send the request due now, unless
        thinning drops it, then draw the next arrival. Each request runs as a process of its own,
        started at once (:class:`_RequestProcess`); the arrivals themselves need no process."""
        env, rng = self.world.env, self.rng
        now = env._now
        # an arrival (not the start), kept by thinning with probability rate(now) / peak
        send = event.__class__ is Timeout and (self._constant or rng.random() * self._peak < self.profile(now))
        if send:
            self.sent += 1
            key = self._key()
        if self.sent < self._limit:
            gap = rng.expovariate(self._peak)
            if now + gap < self.duration:
                timeout(env, gap).callbacks.append(self._on_arrival)
        if send:
            _RequestProcess(env, serve(self.world, self.target, self.route, key))


class ClosedLoop:
    """``users`` users who each send a request, wait for its end, think, and repeat, for ``duration`` seconds.

    ``think`` is a number (mean of an exponential) or a Distribution; ``route`` and ``key`` as for
    :class:`OpenLoop`.
    """

    def __init__(self, world, target, *, users: int, think=1.0, duration: float, name: str = "users",
                 route: str | None = None, key=None):
        self.world = check_world(world)
        self.target = _check_target(world, target)
        self.users = validate.integer("users", users, low=1, high=MAX_USERS)
        self.think = as_distribution("think", think, number_means="exponential")
        self.duration = validate.positive("duration", duration)
        if self.think.mean > 0:          # (a zero think time is bounded by the frozen-clock guard)
            guard.check_requests("ClosedLoop", self.users * self.duration / self.think.mean,
                                 f"{self.users} users thinking {self.think.mean:g} s for {self.duration:g} s")
        self.name = name
        world.add_workload(self)
        self.route, self._key = _route(name, route), _keys(world, name, key)
        self.sent = 0
        for i in range(self.users):
            world.env.process(self._user(world.rng(f"workload/{name}/user-{i}")))

    def _user(self, rng):
        env = self.world.env
        while True:
            pause = self.think.sample(rng)
            if env.now + pause >= self.duration:
                return
            yield env.timeout(pause)
            self.sent += 1
            yield from serve(self.world, self.target, self.route, self._key())
