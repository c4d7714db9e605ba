"""Workloads: open-loop arrivals (a rate profile over time) and closed-loop users with think time.

The target is anything with a ``call(request)`` simpy generator: a :class:`Service`, or a client that
wraps one in resilience policies. Every finished user request becomes one row in ``world.recorder``.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

from . import validate
from .distributions import as_distribution
from .records import Outcome
from .service import Request, ServiceError


# --- arrival-rate profiles (requests per second as a function of time) ------------------------
@dataclass(frozen=True)
class Constant:
    """``rate`` requests per second, always."""
    rate: float

    def __post_init__(self):
        validate.positive("rate", self.rate)

    @property
    def peak(self) -> float:
        return self.rate

    def __call__(self, t: float) -> float:
        return self.rate


@dataclass(frozen=True)
class Ramp:
    """From ``start`` to ``end`` requests per second, linearly over ``duration`` seconds, then flat."""
    start: float
    end: float
    duration: float

    def __post_init__(self):
        validate.non_negative("start", self.start)
        validate.non_negative("end", self.end)
        validate.positive("duration", self.duration)
        if self.start == self.end == 0:
            raise ValueError("start or end must be > 0 requests per second, got both 0")

    @property
    def peak(self) -> float:
        return max(self.start, self.end)

    def __call__(self, t: float) -> float:
        return self.end if t >= self.duration else self.start + (self.end - self.start) * t / self.duration


@dataclass(frozen=True)
class Step:
    """``before`` requests per second until ``at`` seconds, ``after`` from then on."""
    before: float
    after: float
    at: float

    def __post_init__(self):
        validate.non_negative("before", self.before)
        validate.non_negative("after", self.after)
        validate.non_negative("at", self.at)
        if self.before == self.after == 0:
            raise ValueError("before or after must be > 0 requests per second, got both 0")

    @property
    def peak(self) -> float:
        return max(self.before, self.after)

    def __call__(self, t: float) -> float:
        return self.after if t >= self.at else self.before


@dataclass(frozen=True)
class Spike:
    """``base`` requests per second, with ``peak_rate`` for ``duration`` seconds from ``at``."""
    base: float
    peak_rate: float
    at: float
    duration: float

    def __post_init__(self):
        validate.non_negative("base", self.base)
        validate.number("peak_rate", self.peak_rate, low=self.base, low_open=True)
        validate.non_negative("at", self.at)
        validate.positive("duration", self.duration)

    @property
    def peak(self) -> float:
        return self.peak_rate

    def __call__(self, t: float) -> float:
        return self.peak_rate if self.at <= t < self.at + self.duration else self.base


PROFILES = (Constant, Ramp, Step, Spike)


# --- running one user request -----------------------------------------------------------------
def serve(world, target, name: str):
    """Send one user request to ``target`` and record how it ended (a simpy generator)."""
    env = world.env
    req = Request(env.now)
    world.recorder.pending[req] = name
    try:
        yield from target.call(req)
    except ServiceError as err:
        world.recorder.add(req.start, env.now, err.outcome, err.reason, req.attempts, err.service, name)
    else:
        if req.degraded:
            world.recorder.add(req.start, env.now, Outcome.DEGRADED, req.degraded, req.attempts, req.answered_by,
                               name)
        else:
            world.recorder.add(req.start, env.now, Outcome.OK, "", req.attempts, req.answered_by, name)
    finally:
        del world.recorder.pending[req]


def _check_target(target):
    if not callable(getattr(target, "call", None)):
        raise ValueError(f"target must have a call(request) generator method (a Service or a client), "
                         f"got {target!r}")
    return target


class OpenLoop:
    """Poisson arrivals whose rate follows ``profile``; they keep coming whatever the target does.

    Stops after ``duration`` seconds or ``requests`` arrivals, whichever comes first (at least one
    must be given). A number as ``profile`` means ``Constant(number)``.
    """

    def __init__(self, world, target, profile, *, duration: float | None = None, requests: int | None = None,
                 name: str = "users"):
        self.world = world
        self.target = _check_target(target)
        if isinstance(profile, numbers.Real) and not isinstance(profile, bool):
            profile = Constant(profile)
        if not isinstance(profile, PROFILES):
            raise ValueError(f"profile must be a rate in requests per second or one of "
                             f"{[p.__name__ for p in PROFILES]}, got {profile!r}")
        self.profile = profile
        if duration is None and requests is None:
            raise ValueError("duration or requests must be given, so that the workload stops by itself")
        self.duration = float("inf") if duration is None else validate.positive("duration", duration)
        self.requests = None if requests is None else validate.integer("requests", requests, low=1)
        self.name = name
        world.add_workload(self)
        self.rng = world.rng(f"workload/{name}/arrivals")
        self.sent = 0
        world.env.process(self._arrivals())

    def _arrivals(self):
        env, world, target, rng = self.world.env, self.world, self.target, self.rng
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
            process(serve(world, target, self.name))


class ClosedLoop:
    """``users`` users who each send a request, wait for its end, think, and repeat, for ``duration`` seconds.

    ``think`` is a number (mean of an exponential) or a Distribution.
    """

    def __init__(self, world, target, *, users: int, think=1.0, duration: float, name: str = "users"):
        self.world = world
        self.target = _check_target(target)
        self.users = validate.integer("users", users, low=1)
        self.think = as_distribution("think", think, number_means="exponential")
        self.duration = validate.positive("duration", duration)
        self.name = name
        world.add_workload(self)
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
            yield from serve(self.world, self.target, self.name)
