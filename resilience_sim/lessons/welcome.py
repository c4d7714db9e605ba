"""00 Welcome: a first service that fails and is repaired, and the course's first dashboard.

The time units (``MINUTE`` ... ``YEAR``) come from :mod:`resilience_sim.lessons.common`, the axis in
days from :func:`resilience_sim.views.plots.time_axis`.
"""
from __future__ import annotations

import numpy as np

from ..core import theory
from ..sim.faults import FailureRepair
from ..sim.service import Service
from ..sim.world import World
from ..views import plots
from ..views.dashboard import Dashboard, Slider
from . import dashboard
from .common import DAY, HOUR, MINUTE, WEEK, YEAR  # noqa: F401  (the notebook's units)

#: The story of notebook 00: checkout fails about twice a day and takes half an hour to fix.
CHECKOUT_MTTF = 12 * HOUR
CHECKOUT_MTTR = 30 * MINUTE


def first_service(seed: int, *, mttf: float = CHECKOUT_MTTF, mttr: float = CHECKOUT_MTTR,
                  until: float = WEEK, name: str = "checkout"):
    """One service that fails after exponential times to failure (mean ``mttf`` seconds) and is
    repaired after exponential times to repair (mean ``mttr``); no traffic, only its up/down timeline."""
    world = World(seed)
    service = Service(world, name)
    FailureRepair(service, mttf=mttf, mttr=mttr)
    return world.run(until=until)


def availability_so_far(results, name: str, times) -> np.ndarray:
    """The time availability of ``name`` measured from 0 up to each of ``times`` (a running average)."""
    if name not in results.services:
        raise ValueError(f"name must be one of {sorted(results.services)}, got {name!r}")
    timeline = results.services[name].timeline
    return np.array([timeline.availability(float(t)) for t in times])


def draw_timeline(ax, results, services=None, *, span: float = WEEK, unit: str = "day"):
    """Up/down bars of ``services`` over the first ``span`` seconds, with the axis in ``unit``."""
    plots.service_timeline(results, services, ax=ax)
    ax.set_xlim(0, min(span, results.until))
    plots.time_axis(ax, unit)
    return ax


# --- the dashboard --------------------------------------------------------------------------------
def _mttr_compute(mttr_minutes: float, *, mttf: float, seed: int) -> dict:
    mttr = mttr_minutes * MINUTE
    results = first_service(seed, mttf=mttf, mttr=mttr, until=YEAR)
    formula = theory.availability(mttf, mttr)
    return {"results": results, "measured": results.time_availability("checkout"), "formula": formula,
            "mttr": mttr, "mttf": mttf,
            "week_down_hours": theory.downtime(formula, "week") / HOUR}


def _mttr_draw(ax, result) -> None:
    draw_timeline(ax, result["results"], ["checkout"], span=WEEK, unit="day")
    ax.set_yticks([])
    ax.set_title("checkout over the first week (green: up, red: down)", fontsize=10)


def _mttr_summary(result) -> str:
    return (f"measured over a simulated year: <b>{result['measured']:.2%}</b> up &nbsp;·&nbsp; "
            f"formula MTTF/(MTTF+MTTR): {result['formula']:.2%} &nbsp;·&nbsp; "
            f"about {result['week_down_hours']:.1f} h down a week")


@dashboard("00_welcome/mttr")
def mttr_dashboard(seed: int = 2025, mttf: float = CHECKOUT_MTTF) -> Dashboard:
    """One slider, the time to repair in minutes: checkout's first week and its availability over a year."""
    def compute(mttr_minutes):
        return _mttr_compute(mttr_minutes, mttf=mttf, seed=seed)

    return Dashboard(compute, _mttr_draw,
                     [Slider("mttr_minutes", "time to repair, MTTR", "minutes", 1, 180,
                             CHECKOUT_MTTR / MINUTE, step=1, integer=True)],
                     summary=_mttr_summary, figsize=(9.0, 2.8),
                     title=f"A service up {mttf / HOUR:g} h on average before each failure (MTTF): how long may a repair take?")
