"""A fallback chain's decisions: which step answers next when the one before fails.

``FallbackChain(["recommender", "popular_in_city", "popular_in_country", Static("bestsellers")])``
tries the primary (step 0, full quality) and then each fallback level in order. A step is the name
of a dependency (in the simulator a service, or a client with its own timeout, breaker or bulkhead
around it; live, an httpx call) or a :class:`Static` answer that needs no call (Hystrix's "static
fallback"). What holds: every step is tried at most once per request, in order; a failure whose
reason is not in ``on`` is passed on at once (a "bad request" is the caller's own fault, and no
fallback fixes it); an answer from step ``i > 0`` is degraded, with the step's ``label`` as reason.
Counters: ``answered[i]`` and ``failed[i]`` per step.
"""
from __future__ import annotations

from ..core import validate
from ..core.reasons import REASONS, check_reason, check_reasons

#: Failures a chain falls back on by default: every failure reason but the caller's own mistakes.
FALL_BACK_ON = REASONS - {"bad request", "unauthorized", "not found", "conflict"}


class Static:
    """A step that answers ``value`` at once, with no call (say, a list of bestsellers)."""
    __slots__ = ("name", "value")

    def __init__(self, name: str, value=None):
        self.name = validate.text("name", name, empty=False)
        self.value = value

    def __repr__(self) -> str:
        return f"Static({self.name!r})"


class FallbackChain:
    """``steps``: the primary first, then the fallbacks (dependency names or :class:`Static`);
    ``labels``: the degradation reason of each fallback (default: its name); ``on``: the failure
    reasons that move on to the next step."""

    def __init__(self, steps, *, labels: dict | None = None, on=FALL_BACK_ON):
        if isinstance(steps, (str, Static)):
            raise ValueError(f"steps must be a list: the primary, then its fallbacks; got {steps!r} "
                             f"(write [{steps!r}, ...])")
        try:
            steps = list(steps)
        except TypeError:
            raise validate.WrongType(f"steps must be a list of dependency names or Static steps, "
                                     f"got {validate.show(steps)}") from None
        if len(steps) < 2:
            raise ValueError(f"steps must name the primary and at least one fallback, got {steps!r}")
        names = []
        for step in steps:
            if isinstance(step, str) and step:
                names.append(step)
            elif isinstance(step, Static):
                names.append(step.name)
            else:
                raise validate.WrongType(f"steps must be dependency names (non-empty strings) or Static steps, "
                                         f"got {validate.show(step)}")
        if len(set(names)) != len(names):
            raise ValueError(f"steps must not repeat a step (a fallback that calls the failed dependency "
                             f"again only fails again): {names}")
        if isinstance(steps[0], Static):
            raise ValueError(f"steps: the primary must be a dependency, not {steps[0]!r}")
        self.steps = tuple(steps)
        self.names = tuple(names)
        labels = {} if labels is None else labels
        if not isinstance(labels, dict):
            raise validate.WrongType(f"labels must be None or a dict {{step name: label}}, got {validate.show(labels)}")
        for name, label in labels.items():
            if name not in names[1:]:
                raise ValueError(f"labels name {name!r}, which is not a fallback of this chain; fallbacks: {names[1:]}")
            validate.text("labels", label, empty=False)
        self.labels = tuple(labels.get(name, name) for name in names)
        self.on = check_reasons("on", on)
        self.answered = [0] * len(steps)
        self.failed = [0] * len(steps)

    def level(self, name: str) -> int:
        """The index of the step called ``name`` (0: the primary)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"name must be one of the chain's steps {list(self.names)}, got {name!r}") from None

    def record(self, index: int, reason: str | None = None) -> int | None:
        """Step ``index`` answered (``reason`` None) or failed with ``reason``: the index of the next
        step to try, or None (answered, out of steps, or a reason not in ``on``)."""
        if index.__class__ is not int or not 0 <= index < len(self.steps):      # checked on the slow path only
            index = validate.integer("index", index, low=0, high=len(self.steps) - 1)
        if reason is None:
            self.answered[index] += 1
            return None
        check_reason("reason", reason)
        self.failed[index] += 1
        if reason not in self.on or index + 1 == len(self.steps):
            return None
        return index + 1

    def reset(self) -> None:
        """Counters back to zero."""
        self.answered = [0] * len(self.steps)
        self.failed = [0] * len(self.steps)

    def __repr__(self) -> str:
        return f"FallbackChain({list(self.steps)!r})"


__all__ = ["FallbackChain", "Static", "FALL_BACK_ON"]
