"""A resilience test shaped the way chaos-engineering tools shape one (Chaos Toolkit's experiment).

An :class:`Experiment` has a **steady-state hypothesis** (probes, each a measurement and the
condition it must meet), a **method** (actions that inject faults, and the load that meets them) and
**rollbacks** (actions that undo the method). :meth:`Experiment.run` does, in order:

1. check the hypothesis **before**: if it does not hold, the system is not in a steady state and the
   method is not run (the report says "not steady before"); the rollbacks still run;
2. run the method's actions in order, keeping what each returns;
3. check the hypothesis **after** the method, with its faults still in place: this is the
   resilience claim ("with this fault, the SLO still holds");
4. run every rollback, always (also when a probe or action raised: the error is re-raised after);
5. optionally check the hypothesis once more, **recovered**: the system is back in its steady state.

What holds: rollbacks run exactly once per :meth:`run`, whatever happened before them; a probe that
raises counts as not holding and its error is kept in the report; nothing here sleeps or starts a
thread, so an experiment is as bounded as the probes and actions it is given.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..core import validate


@dataclass(frozen=True)
class Probe:
    """``measure()`` gives a value (say, availability over a short load); ``holds(value)`` says
    whether the hypothesis is met; ``describe`` is the claim in words ("availability >= 99%")."""
    name: str
    measure: Callable[[], Any]
    holds: Callable[[Any], bool]
    describe: str = ""

    def __post_init__(self):
        validate.text("name", self.name, empty=False)
        validate.function("measure", self.measure)
        validate.function("holds", self.holds)


@dataclass(frozen=True)
class Action:
    """``run()`` injects or removes a fault, or drives load; what it returns goes in the report."""
    name: str
    run: Callable[[], Any]

    def __post_init__(self):
        validate.text("name", self.name, empty=False)
        validate.function("run", self.run)


@dataclass(frozen=True)
class Check:
    """One probe's result at one phase."""
    probe: str
    value: Any
    held: bool
    error: str = ""

    def __str__(self) -> str:
        shown = self.error or (f"{self.value:.4g}" if isinstance(self.value, float) else repr(self.value))
        return f"{'held' if self.held else 'FAILED'}: {self.probe} = {shown}"


@dataclass
class Report:
    """What an experiment run found, phase by phase."""
    title: str
    before: list = field(default_factory=list)
    method: dict = field(default_factory=dict)
    after: list = field(default_factory=list)
    rolled_back: list = field(default_factory=list)
    recovered: list = field(default_factory=list)

    @property
    def steady_before(self) -> bool:
        return bool(self.before) and all(c.held for c in self.before)

    @property
    def hypothesis_held(self) -> bool:
        """The steady state held before and after the method (the resilience claim)."""
        return self.steady_before and bool(self.after) and all(c.held for c in self.after)

    @property
    def status(self) -> str:
        if not self.steady_before:
            return "not steady before: method not run"
        return "hypothesis held" if self.hypothesis_held else "deviated: the hypothesis failed under the fault"

    def __str__(self) -> str:
        lines = [f"{self.title}: {self.status}"]
        for phase in ("before", "after", "recovered"):
            for check in getattr(self, phase):
                lines.append(f"  {phase:>9}  {check}")
        if self.rolled_back:
            lines.append(f"  rolled back: {', '.join(self.rolled_back)}")
        return "\n".join(lines)


class Experiment:
    """A steady-state hypothesis, a method, rollbacks; :meth:`run` returns a :class:`Report`."""

    def __init__(self, title: str, *, steady_state, method, rollbacks=(), check_recovery: bool = False):
        self.title = validate.text("title", title, empty=False)
        self.steady_state = _items("steady_state", steady_state, Probe, at_least_one=True)
        self.method = _items("method", method, Action, at_least_one=True)
        self.rollbacks = _items("rollbacks", rollbacks, Action)
        self.check_recovery = validate.boolean("check_recovery", check_recovery)

    def run(self) -> Report:
        report = Report(self.title)
        try:
            report.before = self._check()
            if report.steady_before:
                for action in self.method:
                    report.method[action.name] = action.run()
                report.after = self._check()
        finally:
            for action in self.rollbacks:
                action.run()
                report.rolled_back.append(action.name)
        if self.check_recovery and report.steady_before:
            report.recovered = self._check()
        return report

    def _check(self) -> list:
        checks = []
        for probe in self.steady_state:
            try:
                value = probe.measure()
                checks.append(Check(probe.describe or probe.name, value, bool(probe.holds(value))))
            except Exception as err:     # a probe that cannot measure: the hypothesis is not met
                checks.append(Check(probe.describe or probe.name, None, False, f"{type(err).__name__}: {err}"))
        return checks


def _items(name, items, kind, at_least_one=False) -> tuple:
    items = tuple([items] if isinstance(items, kind) else items)
    if at_least_one and not items:
        raise ValueError(f"{name} needs at least one {kind.__name__}")
    for item in items:
        if not isinstance(item, kind):
            raise ValueError(f"{name} must hold {kind.__name__} objects, got {item!r}")
    return items
