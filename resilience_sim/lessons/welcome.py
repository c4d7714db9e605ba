"""00 Welcome: a first service that fails and is repaired, and the course's first dashboard.

Also home to small helpers the early notebooks share: time units, an axis in hours or days, and how
much a measured availability wobbles by chance over a finite run.
"""
from __future__ import annotations


import numpy as np
from matplotlib.ticker import FuncFormatter, MultipleLocator

from ..core import theory, validate
from ..views import plots
from ..views.dashboard import Dashboard, Slider
from ..sim.faults import FailureRepair
from ..sim.service import Service
from ..sim.world import World
from . import dashboard

# Time units, in simulated seconds.
MINUTE = 60.0
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
YEAR = theory.SECONDS_PER["year"]

UNITS = {"second": 1.0, "minute": MINUTE, "hour": HOUR, "day": DAY, "week": WEEK, "year": YEAR}

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


def availability_wobble(mttf: float, mttr: float, duration: float) -> float:
    """How much a time availability measured over ``duration`` seconds wobbles by chance (one standard
    deviation), for exponential times to failure and repair: :func:`theory.availability_sd`.

    For this two-state process the share of time up over a long run of length T has variance
    2 * MTTF**2 * MTTR**2 / ((MTTF + MTTR)**3 * T); equivalently A(1 - A) * sqrt(2 / k) with
    k = T / (MTTF + MTTR) failure/repair cycles. More cycles, less wobble.
    """
    return theory.availability_sd(mttf, mttr, duration)


def availability_so_far(results, name: str, times) -> np.ndarray:
    """The time availability of ``name`` measured from 0 up to each of ``times`` (a running average)."""
    if name not in results.services:
        raise ValueError(f"name must be one of {sorted(results.services)}, got {name!r}")
    timeline = results.services[name].timeline
    return np.array([timeline.availability(float(t)) for t in times])


def time_axis(ax, unit: str = "day", *, span: float | None = None):
    """Label a seconds x axis in ``unit`` (minute, hour, day, week, year) with round tick steps."""
    validate.choice("unit", unit, UNITS)
    scale = UNITS[unit]
    low, high = ax.get_xlim() if span is None else (0.0, span)
    extent = (high - low) / scale
    step = next((s for s in (1, 2, 5, 10, 20, 30, 50, 100, 200, 500, 1000) if extent / s <= 10), 2000)
    ax.xaxis.set_major_locator(MultipleLocator(step * scale))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x / scale:g}"))
    ax.set_xlabel(f"time ({unit}s)")
    return ax


def draw_timeline(ax, results, services=None, *, span: float = WEEK, unit: str = "day"):
    """Up/down bars of ``services`` over the first ``span`` seconds, with the axis in ``unit``."""
    plots.service_timeline(results, services, ax=ax)
    ax.set_xlim(0, min(span, results.until))
    time_axis(ax, unit)
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
                     title=f"A service that fails every {mttf / HOUR:g} h on average: how long may a repair take?")
