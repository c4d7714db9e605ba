"""Building a :class:`~resilience_sim.sim.system_model.SystemModel` into a
:class:`~resilience_sim.sim.world.World` (see system_model's docstring): one service per replica, a
balancer per replicated component, a FailureRepair per replica, a workload per endpoint, and the
patterns of :data:`~resilience_sim.sim.system_model.PATTERNS` switched on by name.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core import validate
from ..core.distributions import Exponential
from ..policies import CircuitBreaker, FullJitter, RetryBudget, RetryPolicy
from .chaos import ChaosDay, DayTraffic, apply_chaos
from .client import Client
from .faults import FailureRepair
from .service import Service, ServiceError
from .system_model import KEYS, Component, SystemModel, _edges, check_patterns
from .workload import OpenLoop

#: A balancer's slots: never the bottleneck (its replicas' slots are).
_LB_SLOTS = 1_000_000


@dataclass
class Built:
    """What :func:`build` made: the services by name (balancers included) and the replica names per component."""
    model: SystemModel
    services: dict
    replicas: dict


def _balancer(names: tuple):
    turn = [0]

    def handler(svc, req):
        n = len(names)
        for k in range(n):                       # the next replica that is up, round robin
            name = names[(turn[0] + k) % n]
            if svc.world.services[name].up:
                turn[0] = (turn[0] + k + 1) % n
                return (yield from svc.ask(name, req))
        return (yield from svc.ask(names[0], req))     # none up: fails "down"
    return handler


def _caller(model: SystemModel, comp: Component, patterns: tuple, endpoints: tuple):
    """The handler of ``comp``: call each dependency in turn (the endpoint's own list at an entry)."""
    by_route = {e.name: model.calls(comp.name, e) for e in endpoints if e.entry == comp.name}
    cached = {d: model.component(d).cache_hit for d in comp.depends_on} if "cache" in patterns else {}
    fallback = ({d: model.component(d).fallback for d in comp.depends_on} if "fallback" in patterns else {})

    def handler(svc, req):
        for dep in by_route.get(req.route, comp.depends_on):
            if cached.get(dep) and req.key is not None and req.key < cached[dep] * KEYS:
                continue                         # in this caller's cache
            try:
                yield from svc.ask(dep, req)
            except ServiceError:
                alt = fallback.get(dep)
                if alt is None:
                    raise
                req.degraded = f"fallback for {dep}"
                if alt != "static":
                    yield from svc.ask(alt, req)
        req.answered_by = comp.name
    return handler


def _client(world, caller: str, target, model: SystemModel, comp: Component, patterns: tuple) -> Client | Service:
    if not {"timeouts", "retries", "breaker"} & set(patterns):
        return target
    retry = RetryPolicy(3, FullJitter(0.05, cap=1.0)) if "retries" in patterns else None
    return Client(world, target, name=f"{caller}->{comp.name}",
                  timeout=model.call_timeout(comp.name) if "timeouts" in patterns else None, retry=retry,
                  budget=RetryBudget(0.1, window=10.0) if retry else None,
                  breaker=CircuitBreaker(consecutive_failures=5, open_for=10.0) if "breaker" in patterns else None)


def build(model: SystemModel, world, *, duration: float, patterns=(), failures: bool = True,
          traffic: bool = True, day: ChaosDay | None = None) -> Built:
    """Build ``model`` into ``world``: services, a FailureRepair per replica (``failures``), a
    workload per endpoint for ``duration`` s (``traffic``; with a ``day``, its profile scaled to each
    endpoint's ``rate`` and its faults on the components it names) and ``patterns`` switched on."""
    if not isinstance(model, SystemModel):
        raise validate.WrongType(f"model must be a SystemModel, got {validate.show(model)}")
    duration = validate.positive("duration", duration)
    patterns = check_patterns(patterns, model)
    services, replicas = {}, {}
    for comp in reversed(_order(model)):         # dependencies first: callers wrap them in clients
        names = comp.replica_names()
        replicas[comp.name] = names
        deps = {}
        for d in comp.depends_on + ((comp.fallback,) if "fallback" in patterns and comp.fallback not in (None, "static")
                                    else ()):
            if d not in deps:
                deps[d] = _client(world, comp.name, services[d], model, model.component(d), patterns)
        handler = _caller(model, comp, patterns, model.endpoints) if deps else None
        for name in names:                       # each replica its own clients (a client has one caller)
            mine = {d: (_client(world, name, services[d], model, model.component(d), patterns)
                        if isinstance(c, Client) else c) for d, c in deps.items()} if len(names) > 1 else deps
            services[name] = Service(world, name, capacity=comp.slots, latency=Exponential(comp.latency)
                                     if comp.latency > 0 else 0.0, dependencies=mine, handler=handler)
            if failures and comp.fails:
                FailureRepair(services[name], mttf=comp.mttf, mttr=comp.mttr)
        if len(names) > 1:
            services[comp.name] = Service(world, comp.name, capacity=_LB_SLOTS, dependencies=list(names),
                                          handler=_balancer(names))
    if day is not None:
        apply_chaos(world, day, services)
    if traffic:
        for e in model.endpoints:
            key = (lambda rng: rng.randrange(KEYS))
            if day is None:
                OpenLoop(world, services[e.entry], e.rate, duration=duration, name=e.name, key=key)
            else:
                keys = world.rng(f"workload/{e.name}/keys")
                DayTraffic(world, services[e.entry], day.profile.scaled(e.rate), route=e.name,
                           key=lambda keys=keys: keys.randrange(KEYS))
    return Built(model, services, replicas)


def _order(model: SystemModel) -> list:
    """Components, each before the ones it depends on (callers first)."""
    out: list = []

    def visit(name):
        comp = model.component(name)
        if comp in out:
            return
        for _, d in _edges(comp):
            visit(d)
        out.append(comp)
    for c in model.components:
        visit(c.name)
    return out[::-1]


__all__ = ["Built", "build"]
