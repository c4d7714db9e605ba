"""A fallback chain in simulated time: try each step of a
:class:`~resilience_sim.policies.FallbackChain` in turn, from a service's handler::

    chain = FallbackChain(["recommender", "popular_in_country", Static("bestsellers")])

    def recommendations(svc, req):
        return (yield from with_fallbacks(svc, req, chain))

Each named step is one of the service's dependencies, asked with ``svc.ask`` (so a client around it
brings its own timeout, breaker or bulkhead); a :class:`~resilience_sim.policies.Static` step answers
at once. An answer from a fallback is degraded with the step's label as reason.
"""
from __future__ import annotations

from ..core import validate
from ..policies.fallback import FallbackChain, Static
from .service import ServiceError


def with_fallbacks(svc, req, chain: FallbackChain):
    """The first answer along ``chain`` (a simpy generator); the last step's error if none answers."""
    if not isinstance(chain, FallbackChain):
        raise validate.WrongType(f"chain must be a FallbackChain, got {validate.show(chain)}")
    index = 0
    while True:
        step = chain.steps[index]
        if isinstance(step, Static):
            chain.record(index)
            req.answered_by = step.name
            req.degraded = chain.labels[index]
            return step.value
        try:
            value = yield from svc.ask(step, req)
        except ServiceError as err:
            index = chain.record(index, err.reason)
            if index is None:
                raise
            continue
        chain.record(index)
        if index:
            req.degraded = chain.labels[index]
        return value


__all__ = ["with_fallbacks"]
