"""Your own system in a few lines: components, endpoints and the faults your incident history shows,
checked once and built into a :class:`~resilience_sim.sim.world.World`.

::

    model = SystemModel(
        components=[Component("frontend", slots=40, latency=0.001, depends_on=("api",), mttf=86400, mttr=600),
                    Component("api", slots=8, latency=0.01, depends_on=("db",), mttf=3600, mttr=300, replicas=2),
                    Component("db", slots=20, latency=0.003, mttf=7200, mttr=120)],
        endpoints=[Endpoint("page", entry="frontend", rate=5.0, patience=2.0)])
    world, built = build(model, seed=1, duration=3600, patterns=("timeouts", "retries"))

* a :class:`Component` has ``slots`` per replica (calls served at once), a mean ``latency`` in seconds
  (exponential, as the capstone's shop), the components it calls in turn (``depends_on``), failures
  with mean times ``mttf``/``mttr`` in seconds (None: it never fails) and ``replicas``: independent
  copies, each failing on its own, behind a load balancer that sends a call to a replica that is up;
* an :class:`Endpoint` is an open-loop stream of users (``rate`` a second) entering at ``entry`` and
  waiting ``patience`` seconds; ``uses`` names the entry's dependencies this endpoint calls (default all);
* :func:`build` makes one service per replica (``api#1``, ``api#2`` and the balancer ``api``), a
  :class:`~resilience_sim.sim.faults.FailureRepair` per replica, a workload per endpoint, and switches on
  :data:`PATTERNS` by name: ``timeouts`` (a call waits at most :attr:`Component.timeout`), ``retries``
  (3 attempts, full jitter, a 10% budget), ``breaker`` (5 failures open it 10 s), ``cache`` (a share
  ``cache_hit`` of a component's keys answered by its callers' cache, also while it is down) and
  ``fallback`` (a failed call asks :attr:`Component.fallback`, another component or "static").
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core import validate
from ..core.distributions import Exponential
from ..policies import CircuitBreaker, FullJitter, RetryBudget, RetryPolicy
from .chaos import ChaosDay, DayTraffic, apply_chaos
from .client import Client
from .faults import FailureRepair
from .service import Service, ServiceError
from .workload import OpenLoop

#: The patterns :func:`build` can switch on, by name.
PATTERNS = ("timeouts", "retries", "breaker", "cache", "fallback")
#: Keys of a request (0..KEYS-1): a component's ``cache_hit`` share of them is in its callers' cache.
KEYS = 100
#: A balancer's slots: never the bottleneck (its replicas' slots are).
_LB_SLOTS = 1_000_000


def _opt(name: str, value):
    return None if value is None else validate.positive(name, value)


@dataclass(frozen=True)
class Component:
    """One service of your system (see the module docstring); times in seconds."""
    name: str
    slots: int = 1
    latency: float = 0.01
    depends_on: tuple = ()
    mttf: float | None = None
    mttr: float | None = None
    replicas: int = 1
    timeout: float | None = None
    cache_hit: float = 0.0
    fallback: str | None = None

    def __post_init__(self):
        validate.text("name", self.name, empty=False)
        if "#" in self.name:
            raise ValueError(f"name must not contain '#' (replicas are called name#1, name#2), got {self.name!r}")
        validate.integer(f"{self.name}.slots", self.slots, low=1, high=1_000_000)
        validate.non_negative(f"{self.name}.latency", self.latency)
        if isinstance(self.depends_on, str) or not isinstance(self.depends_on, (tuple, list)):
            raise validate.WrongType(f"{self.name}.depends_on must be a tuple of component names, got "
                                     f"{validate.show(self.depends_on)}")
        object.__setattr__(self, "depends_on", tuple(self.depends_on))
        for d in self.depends_on:
            validate.text(f"{self.name}.depends_on", d, empty=False)
        if len(set(self.depends_on)) != len(self.depends_on):
            raise ValueError(f"{self.name}.depends_on must not name a component twice, got {self.depends_on}")
        _opt(f"{self.name}.mttf", self.mttf)
        _opt(f"{self.name}.mttr", self.mttr)
        if (self.mttf is None) != (self.mttr is None):
            raise ValueError(f"{self.name}.mttf and {self.name}.mttr must be given together (or neither: "
                             f"it never fails), got mttf={self.mttf!r}, mttr={self.mttr!r}")
        validate.integer(f"{self.name}.replicas", self.replicas, low=1, high=100)
        _opt(f"{self.name}.timeout", self.timeout)
        validate.probability(f"{self.name}.cache_hit", self.cache_hit)
        if self.fallback is not None:
            validate.text(f"{self.name}.fallback", self.fallback, empty=False)

    @property
    def fails(self) -> bool:
        return self.mttf is not None

    @property
    def call_timeout(self) -> float:
        """What a call to it waits with "timeouts" on: ``timeout``, or 10 mean latencies (at least 50 ms)."""
        return self.timeout if self.timeout is not None else max(0.05, 10 * self.latency)

    def replica_names(self) -> tuple:
        return (self.name,) if self.replicas == 1 else tuple(f"{self.name}#{i}" for i in range(1, self.replicas + 1))


@dataclass(frozen=True)
class Endpoint:
    """Users of one endpoint: ``rate`` a second entering at ``entry``, waiting ``patience`` s;
    ``uses``: the entry's dependencies this endpoint calls (None: all of them)."""
    name: str
    entry: str
    rate: float
    patience: float = 2.0
    uses: tuple | None = None

    def __post_init__(self):
        validate.text("name", self.name, empty=False)
        validate.text(f"{self.name}.entry", self.entry, empty=False)
        validate.positive(f"{self.name}.rate", self.rate)
        validate.positive(f"{self.name}.patience", self.patience)
        if self.uses is not None:
            if isinstance(self.uses, str) or not isinstance(self.uses, (tuple, list)):
                raise validate.WrongType(f"{self.name}.uses must be a tuple of component names or None, got "
                                         f"{validate.show(self.uses)}")
            object.__setattr__(self, "uses", tuple(self.uses))


@dataclass(frozen=True)
class SystemModel:
    """Components and endpoints, checked: names unique and known, no dependency cycle, fallbacks and
    ``uses`` among the declared dependencies."""
    components: tuple
    endpoints: tuple
    name: str = field(default="my system", compare=False)

    def __post_init__(self):
        for part, kind in (("components", Component), ("endpoints", Endpoint)):
            items = getattr(self, part)
            if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
                raise validate.WrongType(f"{part} must be a list of {kind.__name__}, got {validate.show(items)}")
            items = tuple(items)
            if not items:
                raise ValueError(f"{part} must hold at least one {kind.__name__}, got none")
            for i, c in enumerate(items):
                if not isinstance(c, kind):
                    raise validate.WrongType(f"{part}[{i}] must be a {kind.__name__}, got {validate.show(c)}")
            names = [c.name for c in items]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{part} must have unique names, got {twice} more than once")
            object.__setattr__(self, part, items)
        known = self.component_names
        for c in self.components:
            for d in c.depends_on + ((c.fallback,) if c.fallback not in (None, "static") else ()):
                if d not in known:
                    raise ValueError(f"{c.name}.depends_on/fallback must name components of {sorted(known)}, got {d!r}")
        for e in self.endpoints:
            if e.entry not in known:
                raise ValueError(f"{e.name}.entry must be one of {sorted(known)}, got {e.entry!r}")
            extra = set(e.uses or ()) - set(self.component(e.entry).depends_on)
            if extra:
                raise ValueError(f"{e.name}.uses must be among {e.entry}.depends_on "
                                 f"{self.component(e.entry).depends_on}, got {sorted(extra)}")
        self._check_cycles()

    @property
    def component_names(self) -> tuple:
        return tuple(c.name for c in self.components)

    def component(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise ValueError(f"name must be one of {list(self.component_names)}, got {name!r}")

    def endpoint(self, name: str) -> Endpoint:
        for e in self.endpoints:
            if e.name == name:
                return e
        raise ValueError(f"name must be one of {[e.name for e in self.endpoints]}, got {name!r}")

    def calls(self, name: str, endpoint: Endpoint | None = None) -> tuple:
        """What ``name`` calls in turn (for the entry of ``endpoint``, only what the endpoint uses)."""
        c = self.component(name)
        if endpoint is not None and name == endpoint.entry and endpoint.uses is not None:
            return endpoint.uses
        return c.depends_on

    def needs(self, endpoint: str) -> tuple:
        """Every component a request of ``endpoint`` calls, fallbacks left out, entry first."""
        e = self.endpoint(endpoint)
        seen, todo = [], [e.entry]
        while todo:
            name = todo.pop(0)
            if name not in seen:
                seen.append(name)
                todo += list(self.calls(name, e if name == e.entry else None))
        return tuple(seen)

    def with_(self, name: str, **changes) -> "SystemModel":
        """A copy with component ``name`` changed (``model.with_("db", mttf=7200)``), checked again."""
        from dataclasses import replace
        self.component(name)
        comps = tuple(replace(c, **changes) if c.name == name else c for c in self.components)
        return SystemModel(comps, self.endpoints, self.name)

    def _check_cycles(self) -> None:
        state: dict = {}

        def visit(name, path):
            if state.get(name) == "done":
                return
            if state.get(name) == "open":
                raise ValueError(f"depends_on must not form a cycle, got {' -> '.join(path + [name])}")
            state[name] = "open"
            c = self.component(name)
            for d in c.depends_on + ((c.fallback,) if c.fallback not in (None, "static") else ()):
                visit(d, path + [name])
            state[name] = "done"
        for c in self.components:
            visit(c.name, [])


def check_patterns(patterns) -> tuple:
    """``patterns`` as a tuple of names from :data:`PATTERNS` (an error names a wrong one)."""
    if isinstance(patterns, str) or not hasattr(patterns, "__iter__"):
        raise validate.WrongType(f"patterns must be a tuple of names from {PATTERNS}, got {validate.show(patterns)}")
    return tuple(validate.choice("patterns", p, PATTERNS) for p in patterns)


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


def _client(world, caller: str, target, comp: Component, patterns: tuple) -> Client | Service:
    if not {"timeouts", "retries", "breaker"} & set(patterns):
        return target
    retry = RetryPolicy(3, FullJitter(0.05, cap=1.0)) if "retries" in patterns else None
    return Client(world, target, name=f"{caller}->{comp.name}",
                  timeout=comp.call_timeout if "timeouts" in patterns else None, retry=retry,
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
    patterns = check_patterns(patterns)
    services, replicas = {}, {}
    for comp in reversed(_order(model)):         # dependencies first: callers wrap them in clients
        names = comp.replica_names()
        replicas[comp.name] = names
        deps = {}
        for d in comp.depends_on + ((comp.fallback,) if "fallback" in patterns and comp.fallback not in (None, "static")
                                    else ()):
            if d not in deps:
                deps[d] = _client(world, comp.name, services[d], model.component(d), patterns)
        handler = _caller(model, comp, patterns, model.endpoints) if deps else None
        for name in names:                       # each replica its own clients (a client has one caller)
            mine = {d: (_client(world, name, services[d], model.component(d), patterns)
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
        for d in comp.depends_on + ((comp.fallback,) if comp.fallback not in (None, "static") else ()):
            visit(d)
        out.append(comp)
    for c in model.components:
        visit(c.name)
    return out[::-1]


__all__ = ["PATTERNS", "KEYS", "Component", "Endpoint", "SystemModel", "Built", "build", "check_patterns"]
