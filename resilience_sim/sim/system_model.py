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
  :data:`PATTERNS` by name: ``timeouts`` (a call waits at most :meth:`SystemModel.call_timeout`), ``retries``
  (3 attempts, full jitter, a 10% budget), ``breaker`` (5 failures open it 10 s), ``cache`` (a share
  ``cache_hit`` of a component's keys answered by its callers' cache, also while it is down) and
  ``fallback`` (a failed call asks :attr:`Component.fallback`, another component or "static").
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core import validate

#: The patterns :func:`build` can switch on, by name.
PATTERNS = ("timeouts", "retries", "breaker", "cache", "fallback")
#: Keys of a request (0..KEYS-1): a component's ``cache_hit`` share of them is in its callers' cache.
KEYS = 100


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
            for kind, d in _edges(c):
                if d not in known:
                    raise ValueError(f"{c.name}.{kind} must name components of {sorted(known)}, got {d!r}")
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

    def response_time(self, name: str) -> float:
        """The mean time a call to ``name`` takes when all is up: its latency plus its dependencies'
        response times (it calls them in turn)."""
        c = self.component(name)
        return c.latency + sum(self.response_time(d) for d in c.depends_on)

    def call_timeout(self, name: str) -> float:
        """What a call to ``name`` waits with "timeouts" on: its ``timeout``, or ten of its mean
        response times (:meth:`response_time`, its dependencies included), at least 50 ms."""
        c = self.component(name)
        return c.timeout if c.timeout is not None else max(0.05, 10 * self.response_time(name))

    def with_(self, name: str, **changes) -> "SystemModel":
        """A copy with component ``name`` changed (``model.with_("db", mttf=7200)``), checked again."""
        from dataclasses import replace
        self.component(name)
        comps = tuple(replace(c, **changes) if c.name == name else c for c in self.components)
        return SystemModel(comps, self.endpoints, self.name)

    def _check_cycles(self) -> None:
        state: dict = {}

        def visit(name, path, kind):
            if state.get(name) == "done":
                return
            if state.get(name) == "open":
                raise ValueError(f"{path[-1]}.{kind} must not form a cycle, got {' -> '.join(path + [name])}")
            state[name] = "open"
            for edge, d in _edges(self.component(name)):
                visit(d, path + [name], edge)
            state[name] = "done"
        for c in self.components:
            visit(c.name, [], "depends_on")


def _edges(c: Component) -> list:
    """``(field, name)`` for each component ``c`` names: its dependencies, then its fallback."""
    return [("depends_on", d) for d in c.depends_on] + \
        ([("fallback", c.fallback)] if c.fallback not in (None, "static") else [])


def check_patterns(patterns, model: SystemModel | None = None) -> tuple:
    """``patterns`` as a tuple of names from :data:`PATTERNS` (an error names a wrong one); with a
    ``model``, "fallback" and "cache" are refused when no component declares one to act on."""
    if isinstance(patterns, str) or not hasattr(patterns, "__iter__"):
        raise validate.WrongType(f"patterns must be a tuple of names from {PATTERNS}, got {validate.show(patterns)}")
    patterns = tuple(validate.choice("patterns", p, PATTERNS) for p in patterns)
    if model is not None:
        for p, field, declared in (("fallback", "fallback", lambda c: c.fallback is not None),
                                   ("cache", "cache_hit", lambda c: c.cache_hit > 0)):
            if p in patterns and not any(declared(c) for c in model.components):
                raise ValueError(f"patterns must name only patterns the model uses, got {p!r} but no component "
                                 f"declares a {field} (set Component.{field} on one)")
    return patterns


def __getattr__(name: str):
    """``build`` and ``Built`` live in :mod:`.system_build` (split off for length), offered here too."""
    if name in ("build", "Built"):
        from . import system_build
        return getattr(system_build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["PATTERNS", "KEYS", "Component", "Endpoint", "SystemModel", "Built", "build", "check_patterns"]
