"""How a sweep reports its progress: a widget in a notebook, a line of text elsewhere, or your function.

A reporter has two methods: ``update(state)`` after each finished run (it may skip some to stay
cheap) and ``close(state, complete)`` once at the end, whether the sweep finished or was stopped.
The widget lives in :mod:`resilience_sim.views.progress` and is imported only when one is shown,
so this layer never loads ipywidgets by itself.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from ..core import validate

#: With ``progress="auto"``, a bar appears only once a sweep has run this long (seconds): short sweeps stay quiet.
SHOW_AFTER = 1.0
#: Fewest seconds between two redraws of a bar.
REDRAW_EVERY = 0.1


@dataclass(frozen=True)
class SweepProgress:
    """Where a sweep is: ``done`` of ``total`` runs after ``elapsed`` seconds."""
    done: int
    total: int
    elapsed: float

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def remaining(self) -> float | None:
        """Seconds left at the pace so far (None before the first run finishes)."""
        if not self.done:
            return None
        return self.elapsed / self.done * (self.total - self.done)

    def __str__(self) -> str:
        left = "" if self.remaining is None or self.done == self.total else f", about {duration(self.remaining)} left"
        return f"{self.done:,}/{self.total:,} runs ({self.fraction:.0%}), {duration(self.elapsed)}{left}"


def duration(seconds: float) -> str:
    """12.3 -> "12 s", 150 -> "2.5 min", 7200 -> "2 h"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class TextProgress:
    """A bar on one line of ``stream`` (stderr), redrawn in place on a terminal; elsewhere (a log, a
    captured stream) one line every tenth of the sweep."""

    def __init__(self, stream=None, label: str = "sweep"):
        self.stream = sys.stderr if stream is None else stream
        self.label = label
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last, self._tenth = -1.0, -1

    def _line(self, state: SweepProgress) -> str:
        filled = int(20 * state.fraction)
        return f"{self.label} [{'#' * filled}{'.' * (20 - filled)}] {state}"

    def update(self, state: SweepProgress) -> None:
        now = time.monotonic()
        if self.tty:
            if now - self._last >= REDRAW_EVERY or state.done == state.total:
                self._last = now
                self.stream.write("\r" + self._line(state).ljust(79))
                self.stream.flush()
        elif int(10 * state.fraction) > self._tenth:
            self._tenth = int(10 * state.fraction)
            self.stream.write(self._line(state) + "\n")
            self.stream.flush()

    def close(self, state: SweepProgress, complete: bool) -> None:
        if complete and not self.tty and self._tenth == 10:       # the last line is written already
            return
        text = self._line(state) if complete else f"{self.label} stopped: {state.done:,} of {state.total:,} runs kept"
        self.stream.write(("\r" + text.ljust(79) if self.tty else text) + "\n")
        self.stream.flush()


class CallbackProgress:
    """Calls ``function(state)`` after every finished run (a :class:`SweepProgress`)."""

    def __init__(self, function):
        self.function = function

    def update(self, state: SweepProgress) -> None:
        self.function(state)

    def close(self, state: SweepProgress, complete: bool) -> None:
        pass


class Delayed:
    """Shows nothing until the sweep has run ``after`` seconds, then the reporter ``make()`` builds."""

    def __init__(self, make, after: float = SHOW_AFTER):
        self.make, self.after, self.shown = make, after, None

    def update(self, state: SweepProgress) -> None:
        if self.shown is None and state.elapsed >= self.after and state.done < state.total:
            self.shown = self.make(state.total)
        if self.shown is not None:
            self.shown.update(state)

    def close(self, state: SweepProgress, complete: bool) -> None:
        if self.shown is not None:
            self.shown.close(state, complete)
        elif not complete:          # stopped before a bar appeared: still say what was kept
            TextProgress().close(state, complete)


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where a widget can show)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return getattr(shell, "kernel", None) is not None


def _widget(total: int):
    from ..views.progress import ProgressBar
    return ProgressBar(total)


def _best(total: int):
    return _widget(total) if in_notebook() else TextProgress()


KINDS = ("auto", True, False, None, "text", "widget")


def reporter(progress):
    """The reporter ``progress`` asks for: "auto" (a widget in a notebook, text elsewhere, once the
    sweep has run a second), True (the same at once), False or None (none), "text", "widget", or a
    function called with a :class:`SweepProgress` after each run."""
    if progress is None or progress is False:
        return None
    if progress is True:
        return Delayed(_best, after=0.0)
    if isinstance(progress, str):
        validate.choice("progress", progress, [k for k in KINDS if isinstance(k, str)])
        return {"auto": lambda: Delayed(_best), "text": lambda: TextProgress(),
                "widget": lambda: Delayed(_widget, after=0.0)}[progress]()
    if callable(progress):
        return CallbackProgress(progress)
    raise validate.WrongType(f"progress must be 'auto', True, False, 'text', 'widget' or a function called with "
                             f"a SweepProgress after each run, got {validate.show(progress)}")
