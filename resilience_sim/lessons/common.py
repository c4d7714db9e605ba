"""What every lesson shows the same way: time units, durations and shares written for people, a
small table that shows itself in a notebook, and the memo that keeps a dashboard's runs by their
settings. The one module lessons share (no lesson imports another); anything more general lives in
the layers below (``core.theory``, ``views.plots``...).

Also the one scene two notebooks share: the small api that notebook 07 (:mod:`.bulkheads`) overloads
and notebook 08 (:mod:`.metastable`) drives into a retry storm, so that both mean the same service.
"""
from __future__ import annotations

import weakref
from collections import OrderedDict

from ..core import validate
from ..core.distributions import Exponential
from ..core.theory import TIME_UNITS
from ..sim.service import Service
from ..views import plots

#: Time units, in simulated seconds (a month is a twelfth of a Julian year).
MINUTE, HOUR, DAY, WEEK = TIME_UNITS["minute"], TIME_UNITS["hour"], TIME_UNITS["day"], TIME_UNITS["week"]
MONTH, YEAR = TIME_UNITS["month"], TIME_UNITS["year"]
#: Seconds in a millisecond, for pictures and prints in ms (``latency / MS``).
MS = 1e-3


def format_duration(seconds: float) -> str:
    """A duration in the unit people use for it: days, hours, minutes or seconds."""
    seconds = validate.non_negative("seconds", seconds)
    for unit, name in ((DAY, "days"), (HOUR, "h"), (MINUTE, "min")):
        if seconds >= unit:
            return f"{seconds / unit:.3g} {name}"
    return f"{seconds:.3g} s"


def percent(a: float) -> str:
    """0.999 -> "99.9%", 0.9 -> "90%": as many digits as the number needs (up to 5 decimals)."""
    return f"{a * 100:.5f}".rstrip("0").rstrip(".") + "%"


class RunMemo:
    """The newest runs of a dashboard, by their settings: the panels of one setting share its runs, and
    a slider moved back finds them at once.

    ``memo.get(key, make)`` is the value kept under ``key`` (then the newest), or ``make()``, kept; at
    most ``keep`` values are kept, the least recently used forgotten first. ``key`` holds the settings
    as plain numbers (``float(s)``, ``int(w)``), so that 60 and 60.0 are one setting.
    :meth:`forget_all` empties every memo of every lesson (``lessons.clear_run_caches`` calls it, so
    that the benchmark times a setting never seen before)."""

    _every: "weakref.WeakSet[RunMemo]" = weakref.WeakSet()

    def __init__(self, keep: int = 32):
        self.keep = validate.integer("keep", keep, low=1)
        self._values: OrderedDict = OrderedDict()
        RunMemo._every.add(self)

    def get(self, key, make):
        values = self._values
        if key in values:
            values.move_to_end(key)
            return values[key]
        value = values[key] = make()
        if len(values) > self.keep:
            values.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._values)

    def clear(self) -> None:
        self._values.clear()

    @classmethod
    def forget_all(cls) -> None:
        for memo in list(cls._every):
            memo.clear()


class Table:
    """A small table that shows itself as HTML in a notebook and as text when printed; ``data``
    keeps the numbers behind the cells, for the notebook's asserts."""

    def __init__(self, headers, rows, data=None):
        self.headers = list(headers)
        self.rows = [list(r) for r in rows]
        self.data = data

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __str__(self) -> str:
        cells = [self.headers] + [[str(c) for c in r] for r in self.rows]
        widths = [max(len(str(row[i])) for row in cells) for i in range(len(self.headers))]
        return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in cells)

    __repr__ = __str__


# --- the api of notebooks 07 and 08: two workers, 50 ms of work a request ---------------------------
#: Workers, and mean seconds of work a request (exponential): 2 / 0.05 = 40 requests a second.
API_WORKERS, API_WORK = 2, 0.050
CAPACITY = API_WORKERS / API_WORK
#: How long the users (the clients) wait for one attempt.
TIMEOUT = 1.0
#: Seconds between two samples of the api's queue.
PROBE_EVERY = 0.25
#: Colours of "without" and "with" the protection, in both notebooks.
GOOD, BAD = "tab:blue", "tab:red"


def overload_api(world, **kwargs) -> Service:
    """The api (``API_WORKERS`` workers, ``API_WORK`` exponential) in ``world``, named "api";
    ``kwargs`` go to :class:`~resilience_sim.sim.service.Service` (``shedder=``, ``rate_limit=``...)."""
    return Service(world, "api", capacity=API_WORKERS, latency=Exponential(API_WORK), **kwargs)


def draw_queue(ax, res, *, label: str | None = None, color=None, shade: bool = False):
    """Requests at the server (being served or waiting) over time, from ``res.queue`` (a
    :class:`~resilience_sim.sim.probes.ServiceProbe`); ``shade``: ``res.results``' faults shaded."""
    ax.plot(res.queue.times, res.queue.in_system, label=label, color=color)
    if shade:
        plots.shade_faults(ax, res.results)
    ax.set_xlim(0, res.results.until)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("requests at the server")
    return ax
