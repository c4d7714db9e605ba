"""The course's scenarios and dashboards, one module per notebook.

Each dashboard factory is registered with :func:`dashboard` under "<notebook>/<name>", so that the
benchmark (``make bench``) and the tests can build every dashboard the notebooks show.
"""
from __future__ import annotations

import importlib
import pkgutil

DASHBOARDS: dict = {}


def dashboard(key: str):
    """Register a zero-argument factory that builds a :class:`~resilience_sim.dashboard.Dashboard`.

    Keys are unique across lessons; the same factory registered again (its module reloaded, with
    ``importlib.reload`` or ``%autoreload``) replaces its old self."""
    def register(factory):
        old = DASHBOARDS.get(key)
        if old is not None and _origin(old) != _origin(factory):
            raise ValueError(f"key must be unique; a dashboard {key!r} is registered already by "
                             f"{'.'.join(_origin(old))}")
        DASHBOARDS[key] = factory
        return factory
    return register


def _origin(factory) -> tuple[str, str]:
    return getattr(factory, "__module__", ""), getattr(factory, "__qualname__", repr(factory))


def clear_run_caches() -> None:
    """Forget the runs lessons keep between dashboard refreshes (``functools`` caches and every
    :class:`~resilience_sim.lessons.common.RunMemo`), so a benchmark times what a learner meets at a
    setting not seen before: the simulation and the picture."""
    import sys

    from .common import RunMemo
    for name, module in list(sys.modules.items()):
        if not name.startswith(f"{__name__}.") or module is None:
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
    RunMemo.forget_all()


def all_dashboards() -> dict:
    """Every registered dashboard factory, after importing every lesson module."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return dict(sorted(DASHBOARDS.items()))
