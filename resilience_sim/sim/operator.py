"""Manual intervention in simulated time: incidents that last until someone repairs them, an alert rule
that pages, and an on-call operator who responds and repairs.

``op = Operator(world, BurnRateRule(0.999), response=300, repair=600)`` evaluates its rule every
``every`` seconds on the user requests that ended since (all routes, or ``route``), as a monitoring
system would. ``op.incident(service, at=3600)`` takes ``service`` down at ``at`` until the operator
has been paged, has responded (``response`` s: to notice, get to a laptop, find the cause) and has
repaired it (``repair`` s). So an incident lasts detection + response + repair: what MTTD and MTTR
are made of. A page while no incident is in progress (begun and not yet repaired) is a false alarm
(counted, and answered by nobody); a rule that flaps during an incident pages again, but truly.
"""
from __future__ import annotations

from ..core import validate
from ..core.distributions import as_distribution
from ..core.reasons import Outcome
from ..policies import claim
from .world import check_world


class Operator:
    """Counters: ``pages`` (times the rule started firing), ``false_alarms``; ``incidents`` lists
    ``[start, paged, repaired]`` per incident (None until it happens)."""

    def __init__(self, world, rule, *, response=300.0, repair=600.0, every: float = 10.0, route: str | None = None,
                 name: str = "on-call"):
        self.world = check_world(world)
        if not callable(getattr(rule, "record_counts", None)) or not callable(getattr(rule, "firing", None)):
            raise validate.WrongType(f"rule must be an alert rule (ThresholdRule, BurnRateRule), got {validate.show(rule)}")
        claim(world, rule=rule)
        self.env, self.rule, self.name = world.env, rule, validate.text("name", name, empty=False)
        self.response = as_distribution("response", response, number_means="fixed")
        self.repair = as_distribution("repair", repair, number_means="fixed")
        self.every = validate.positive("every", every)
        self.route = None if route is None else validate.text("route", route, empty=False)
        self._rng = world.rng(f"operator/{name}")
        self.pages = self.false_alarms = 0
        self.page_times: list = []
        self.incidents: list = []
        self._open: list = []             # [incident record, service] not yet being handled
        self._seen = 0                    # rows of the recorder read so far
        self.env.process(self._watch())

    def incident(self, service, at: float) -> None:
        """Take ``service`` down at ``at`` until this operator repairs it."""
        self.world.owns("service", service)
        at = validate.number("at", at, low=self.env.now)
        record = [at, None, None]
        self.incidents.append(record)

        def begin():
            yield self.env.timeout(at - self.env.now)
            service.go_down()
            self._open.append((record, service))
        self.env.process(begin())

    def _watch(self):
        env, rec, firing_before = self.env, self.world.recorder, False
        code = None
        while True:
            yield env.timeout(self.every)
            outcome, route = rec.outcome, rec.route
            new = range(self._seen, len(outcome))
            self._seen = len(outcome)
            if self.route is not None and code is None and self.route in rec.names:
                code = rec.names.index(self.route)
            rows = [i for i in new if self.route is None or route[i] == code]
            good = sum(1 for i in rows if outcome[i] <= Outcome.DEGRADED)
            self.rule.record_counts(env.now, good, len(rows) - good)
            firing = self.rule.firing(env.now)
            if firing and not firing_before:
                self.pages += 1
                self.page_times.append(env.now)
                if self._open:
                    handling, self._open = self._open, []
                    for record, service in handling:
                        record[1] = env.now
                        env.process(self._fix(record, service))
                elif not any(r[0] <= env.now and r[2] is None for r in self.incidents):
                    self.false_alarms += 1             # nothing wrong: no incident begun and not yet repaired
            elif firing and self._open:          # still firing: a new incident joins the page in hand
                handling, self._open = self._open, []
                for record, service in handling:
                    record[1] = env.now
                    env.process(self._fix(record, service))
            firing_before = firing

    def _fix(self, record, service):
        yield self.env.timeout(self.response.sample(self._rng) + self.repair.sample(self._rng))
        service.go_up()
        record[2] = self.env.now

    def times(self) -> dict:
        """Mean time to detect (start to page) and to repair (start to repaired) over the incidents
        that ended, in seconds (NaN when none has)."""
        done = [r for r in self.incidents if r[2] is not None]
        if not done:
            return {"mttd": float("nan"), "mttr": float("nan")}
        return {"mttd": sum(r[1] - r[0] for r in done) / len(done), "mttr": sum(r[2] - r[0] for r in done) / len(done)}

    def __repr__(self) -> str:
        return f"Operator({self.name!r}, {self.rule!r})"


__all__ = ["Operator"]
