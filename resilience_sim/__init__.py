"""resilience_sim: a discrete-event simulator (on simpy) of services, faults, workloads and the
resilience patterns that keep them up, with metrics, plots and dashboards for the course.

Layers, each a sub-package; imports point one way only, and ``tests/test_layers.py`` checks in a
fresh interpreter that each layer loads nothing it must not:

* ``core``: numbers only (validation, outcomes and reasons, distributions, load profiles, records,
  timelines, theory); imports nothing of ours, nor simpy, matplotlib or ipywidgets.
* ``policies``: pure state machines driven by ``now``; import ``core``.
* ``metrics``: results computed from records, never from a World; import ``core``.
* ``sim``: the only importer of simpy (world, services, clients, faults, workloads); imports
  ``core``, ``policies`` and ``metrics``.
* ``views``: plots and dashboards, the only importers of matplotlib and ipywidgets; import ``core``
  and ``metrics``.
* ``sweeps``: many runs of a scenario over a grid and seeds, on any executor, with confidence
  intervals; imports ``core``, ``metrics`` and (for its progress widget, lazily) ``views``; never simpy.
* ``lessons`` (one scenario module per notebook, plus ``lessons.common``) and ``labs`` use all of these.

This module is lazy (PEP 562): ``import resilience_sim.policies`` loads the policies and core only,
and a name below is imported the first time it is used.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "World": "sim.world", "Service": "sim.service", "Request": "sim.service", "ServiceError": "sim.service",
    "Client": "sim.client",
    "FailureRepair": "sim.faults", "RepairCrew": "sim.faults", "Outage": "sim.faults",
    "LatencySpike": "sim.faults", "ErrorBurst": "sim.faults", "GrayFailure": "sim.faults",
    "Partition": "sim.faults",
    "CachedRead": "sim.cache", "with_fallbacks": "sim.fallback", "DeferredJobs": "sim.jobs",
    "Cache": "policies.cache", "FallbackChain": "policies.fallback", "Static": "policies.fallback",
    "JobQueue": "policies.jobs",
    "OpenLoop": "sim.workload", "ClosedLoop": "sim.workload",
    "Constant": "core.profiles", "Ramp": "core.profiles", "Step": "core.profiles", "Spike": "core.profiles",
    "Distribution": "core.distributions", "Fixed": "core.distributions", "Exponential": "core.distributions",
    "LogNormal": "core.distributions", "Uniform": "core.distributions", "Weibull": "core.distributions",
    "Mixture": "core.distributions",
    "Outcome": "core.reasons", "Results": "metrics.results",
}

#: Sub-packages and modules offered as attributes too (``rs.theory``, ``rs.policies``...).
_SUBMODULES = ("core", "policies", "metrics", "sim", "views", "sweeps", "lessons", "labs", "theory", "plots",
               "dashboard")

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value          # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
