"""A sweep's progress bar in a notebook: an ipywidgets bar with the runs done, the time spent and the
time left, shown when it is made and updated as runs finish (at most ten redraws a second).

The box carries the DOM class ``rs-progress``. :mod:`resilience_sim.sweeps` imports this module only
when a bar is shown.
"""
from __future__ import annotations

import time

import ipywidgets as widgets

#: Fewest seconds between two redraws (each one is a message to the browser).
REDRAW_EVERY = 0.1


class ProgressBar:
    """``update(state)`` after each run, ``close(state, complete)`` at the end; ``state`` is a
    :class:`resilience_sim.sweeps.SweepProgress` (done, total, elapsed, remaining)."""

    def __init__(self, total: int, *, label: str = "sweep", display: bool = True):
        self.bar = widgets.IntProgress(value=0, min=0, max=max(1, int(total)), description=label,
                                       bar_style="info")
        self.text = widgets.HTML(value=f"0/{int(total):,} runs")
        self.box = widgets.HBox([self.bar, self.text])
        self.box.add_class("rs-progress")
        self._last = -1.0
        if display:
            from IPython.display import display as show
            show(self.box)

    def update(self, state) -> None:
        now = time.monotonic()
        if now - self._last < REDRAW_EVERY and state.done < state.total:
            return
        self._last = now
        self.bar.value = state.done
        self.text.value = str(state)

    def close(self, state, complete: bool) -> None:
        self.bar.value = state.done
        if complete:
            self.bar.bar_style = "success"
            self.text.value = f"{state.done:,} runs in {_seconds(state.elapsed)}"
        else:
            self.bar.bar_style = "warning"
            self.text.value = (f"stopped: {state.done:,} of {state.total:,} runs kept "
                               f"(the table's complete is False)")


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 90 else f"{s / 60:.1f} min"
