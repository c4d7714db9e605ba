"""What every lesson shows the same way: time units, durations and shares written for people, and
a small table that shows itself in a notebook. The one module lessons share (no lesson imports
another); anything more general lives in the layers below (``core.theory``, ``views.plots``...).
"""
from __future__ import annotations

from ..core import validate
from ..core.theory import TIME_UNITS

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
