"""Workloads: open-loop arrivals (a rate profile over time) and closed-loop users with think time.

The target is anything with a ``call(request)`` simpy generator: a :class:`Service`, or a client that
wraps one in resilience policies. Every finished user request becomes one row in ``world.recorder``.
"""
from __future__ import annotations

import numbers

from ..core import validate
from ..core.distributions import as_distribution
from ..core.profiles import PROFILES, Constant
from ..core.reasons import Outcome
from . import guard
from .service import Request, ServiceError
from .world import check_world

#: Closed-loop users in one workload at most (each is a simpy process).
MAX_USERS = 100_000


# --- running one user request -----------------------------------------------------------------
def serve(world, target, route: str, key=None):
    """Send one user request for ``route`` (and ``key``) to ``target`` and record how it ended (a
    simpy generator)."""
    env, recorder = world.env, world.recorder
    req = Request._unchecked(env.now, route, key)
    recorder.pending[req] = None
    try:
        yield from target.call(req)
    except ServiceError as err:
        recorder.add(req, env.now, err.outcome, err.reason, err.service)
    else:
        if req.degraded:
            recorder.add(req, env.now, Outcome.DEGRADED, req.degraded, req.answered_by)
        else:
            recorder.add(req, env.now, Outcome.OK, "", req.answered_by)
    finally:
        del recorder.pending[req]


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
        world.env.process(self._arrivals())

    def _arrivals(self):
        env, world, target, rng, route, key = (self.world.env, self.world, self.target, self.rng,
                                               self.route, self._key)
        profile, peak = self.profile, self.profile.peak
        constant = isinstance(profile, Constant)
        limit = self.requests if self.requests is not None else float("inf")
        end = self.duration
        process = env.process
        while self.sent < limit:
            gap = rng.expovariate(peak)
            if env.now + gap >= end:
                return
            yield env.timeout(gap)
            # thinning: keep an arrival at time t with probability rate(t) / peak
            if not constant and rng.random() * peak >= profile(env.now):
                continue
            self.sent += 1
            process(serve(world, target, route, key()))


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
