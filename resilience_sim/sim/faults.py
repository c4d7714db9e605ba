"""Faults attached to services on a schedule.

Each fault starts its own simpy process when created and draws from its own named random stream.
Windows are (start, end) pairs in simulated seconds.
"""
from __future__ import annotations

import simpy

from ..core import validate
from ..core.distributions import as_distribution
from . import guard
from .service import Condition, Service
from .world import check_world


def _service(name: str, value) -> Service:
    if not isinstance(value, Service):
        raise validate.WrongType(f"{name} must be a Service, got {value!r}")
    return value


class Fault:
    """Base: a named fault with the windows (or down times) it produced, for plots."""
    kind = "fault"

    def __init__(self, world, label: str):
        self.world = world
        self.env = world.env
        self.label = label
        world.faults.append(self)

    def spans(self, until: float) -> list[tuple[float, float]]:
        """The (start, end) spans the fault was active before ``until``."""
        until = validate.non_negative("until", until)
        return [(s, min(e, until)) for s, e in self.windows if s < until]

    def check_budget(self, until: float) -> None:
        """Refuse a run that this fault would fill with more events than it can hold (none here)."""


class _Windowed(Fault):
    """A fault that is on inside fixed windows."""

    def __init__(self, world, label: str, windows):
        super().__init__(world, label)
        self.windows = validate.windows("windows", windows)
        if self.windows[0][0] < self.env.now:
            raise ValueError(f"windows must start at or after the current time {self.env.now:g} (the world "
                             f"has run that far), got a window starting at {self.windows[0][0]:g}")
        self.env.process(self._schedule())

    def _schedule(self):
        for start, end in self.windows:
            yield self.env.timeout(start - self.env.now)
            self._begin()
            yield self.env.timeout(end - start)
            self._end()


class Outage(_Windowed):
    """The service is down (calls fail with "down", calls in flight with "crashed") inside each window."""
    kind = "outage"

    def __init__(self, service: Service, windows):
        self.service = _service("service", service)
        super().__init__(service.world, f"outage of {service.name}", windows)

    def _begin(self):
        self.service.go_down()

    def _end(self):
        self.service.go_up()


class _ConditionFault(_Windowed):
    def __init__(self, service: Service, windows, label: str, condition: Condition):
        self.service = _service("service", service)
        self.condition = condition
        super().__init__(service.world, label, windows)

    def _begin(self):
        self.service.add_condition(self.condition)

    def _end(self):
        self.service.remove_condition(self.condition)


class LatencySpike(_ConditionFault):
    """Calls take ``factor`` times longer plus ``extra`` seconds (a number or a Distribution) inside each window."""
    kind = "latency spike"

    def __init__(self, service: Service, windows, *, extra=0.0, factor: float = 1.0):
        service = _service("service", service)
        extra = as_distribution("extra", extra, number_means="fixed")
        factor = validate.number("factor", factor, low=1.0)
        if factor == 1.0 and extra.mean == 0.0:
            raise ValueError("extra must be > 0 seconds or factor > 1; this spike would change nothing")
        # the extra latency is drawn from the spike's own stream, so the service's own latency draws
        # are the same with or without the spike (k: this service's k-th spike, in creation order)
        k = sum(isinstance(f, LatencySpike) and f.service is service for f in service.world.faults)
        rng = service.world.rng(f"fault/{service.name}/latency-spike-{k}/extra")
        super().__init__(service, windows, f"latency spike on {service.name}",
                         Condition(latency_factor=factor, extra_latency=extra, extra_rng=rng))


class ErrorBurst(_ConditionFault):
    """A share ``error_rate`` of calls fail inside each window (on top of the service's own errors)."""
    kind = "error burst"

    def __init__(self, service: Service, windows, *, error_rate: float):
        service = _service("service", service)
        error_rate = validate.probability("error_rate", error_rate)
        super().__init__(service, windows, f"error burst on {service.name}", Condition(error_rate=error_rate))


class GrayFailure(_ConditionFault):
    """Alive but sick: every call ``slowdown`` times slower and a share ``error_rate`` failing,
    while health checks (``service.up``) still say all is well."""
    kind = "gray failure"

    def __init__(self, service: Service, windows, *, slowdown: float = 1.0, error_rate: float = 0.0):
        service = _service("service", service)
        slowdown = validate.number("slowdown", slowdown, low=1.0)
        error_rate = validate.probability("error_rate", error_rate)
        if slowdown == 1.0 and error_rate == 0.0:
            raise ValueError("slowdown must be > 1 or error_rate > 0; this gray failure would change nothing")
        super().__init__(service, windows, f"gray failure of {service.name}",
                         Condition(latency_factor=slowdown, error_rate=error_rate))


class Partition(_Windowed):
    """Services ``a`` and ``b`` cannot reach each other inside each window: a call between them waits
    ``hang`` seconds (a connect timeout; 0 fails at once) and fails with reason "partition"."""
    kind = "partition"

    def __init__(self, a: Service, b: Service, windows, *, hang: float = 0.0):
        self.a, self.b = _service("a", a), _service("b", b)
        a.world.owns("b", b)
        if a is b:
            raise ValueError("b must be a different service from a, got the same service twice")
        self.hang = validate.non_negative("hang", hang)
        self._pair = frozenset((a.name, b.name))
        super().__init__(a.world, f"partition {a.name} | {b.name}", windows)

    def _begin(self):   # partitions of the same pair may overlap: the pair is cut while any is active
        self.world._partitions.setdefault(self._pair, []).append(self.hang)

    def _end(self):
        hangs = self.world._partitions[self._pair]
        hangs.remove(self.hang)
        if not hangs:
            del self.world._partitions[self._pair]


class RepairCrew:
    """A limited number of people who repair failed services one at a time each."""

    def __init__(self, world, size: int = 1):
        self.world = check_world(world)
        self.size = validate.integer("size", size, low=1)
        self.resource = simpy.Resource(world.env, capacity=self.size)


class FailureRepair(Fault):
    """The service fails after a time to failure (mean ``mttf``) and is repaired after a time to repair.

    Repair time is either ``mttr`` or ``detect`` + ``recover`` (time to notice, then time to fix).
    A number means an exponential distribution with that mean; any :class:`Distribution` is accepted.
    With a ``crew``, the recovery part waits for a free member of that shared crew.
    """
    kind = "failure"

    def __init__(self, service: Service, *, mttf, mttr=None, detect=None, recover=None,
                 crew: RepairCrew | None = None):
        self.service = _service("service", service)
        self.ttf = as_distribution("mttf", mttf, number_means="exponential")
        if mttr is not None:
            if detect is not None or recover is not None:
                raise ValueError("mttr must not be given together with detect/recover; give one or the other")
            self.detect, self.recover = None, as_distribution("mttr", mttr, number_means="exponential")
        elif recover is not None:
            self.detect = None if detect is None else as_distribution("detect", detect, number_means="exponential")
            self.recover = as_distribution("recover", recover, number_means="exponential")
        else:
            raise ValueError("mttr (or recover, with an optional detect) must be given as a number > 0 "
                             "or a Distribution")
        if crew is not None and not isinstance(crew, RepairCrew):
            raise validate.WrongType(f"crew must be a RepairCrew or None, got {crew!r}")
        if crew is not None:
            service.world.owns("crew", crew)
        self.crew = crew
        super().__init__(service.world, f"failures of {service.name}")
        stream = f"fault/{service.name}/failure-repair"
        self._ttf_rng = self.world.rng(stream + "/ttf")
        self._detect_rng = self.world.rng(stream + "/detect")
        self._recover_rng = self.world.rng(stream + "/recover")
        self.windows: list[tuple[float, float]] = []
        self._down_since: float | None = None
        self.env.process(self._run())

    @property
    def mttr(self) -> float:
        """The mean time to repair, detection included."""
        return (self.detect.mean if self.detect else 0.0) + self.recover.mean

    def check_budget(self, until: float) -> None:
        cycle = self.ttf.mean + self.mttr
        if cycle > 0:
            guard.check_failures(self.label, (until - self.env.now) / cycle, until, cycle)

    def _run(self):
        env = self.env
        while True:
            yield env.timeout(self.ttf.sample(self._ttf_rng))
            self._down_since = env.now
            self.service.go_down()
            if self.detect is not None:
                yield env.timeout(self.detect.sample(self._detect_rng))
            if self.crew is None:
                yield env.timeout(self.recover.sample(self._recover_rng))
            else:
                with self.crew.resource.request() as member:
                    yield member
                    yield env.timeout(self.recover.sample(self._recover_rng))
            self.service.go_up()
            self.windows.append((self._down_since, env.now))
            self._down_since = None

    def spans(self, until: float) -> list[tuple[float, float]]:
        spans = super().spans(until)
        if self._down_since is not None and self._down_since < until:
            spans.append((self._down_since, until))
        return spans
