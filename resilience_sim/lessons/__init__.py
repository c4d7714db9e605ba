"""The course's scenarios and dashboards, one module per notebook.

Each dashboard factory is registered with :func:`dashboard` under "<notebook>/<name>", so that the
benchmark (``make bench``) and the tests can build every dashboard the notebooks show.
"""
from __future__ import annotations

import importlib
import pkgutil

DASHBOARDS: dict = {}


def dashboard(key: str):
    """Register a zero-argument factory that builds a :class:`~resilience_sim.dashboard.Dashboard`."""
    def register(factory):
        if key in DASHBOARDS:
            raise ValueError(f"key must be unique; a dashboard {key!r} is registered already")
        DASHBOARDS[key] = factory
        return factory
    return register


def all_dashboards() -> dict:
    """Every registered dashboard factory, after importing every lesson module."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(DASHBOARDS.items()))
