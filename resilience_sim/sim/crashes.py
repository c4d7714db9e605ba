"""Processes that crash and restart: a relay, a consumer, an orchestrator, an application.

``Restartable(world, "relay", body, crashes=[12.5, 40.0], restart_after=2.0)`` runs the simpy
generator ``body()`` as a process; at each crash time it interrupts it wherever it is (waiting for a
call, between two writes, before an acknowledgement), loses everything the process held in memory,
and after ``restart_after`` seconds starts ``body()`` afresh. What survives a crash is what the process
had written to durable parts (a Database, a broker's queue); that is the point.
"""
from __future__ import annotations

import simpy

from ..core import validate
from .world import check_world

_CRASH = object()
#: The most crash times one process may be given.
MAX_CRASHES = 100_000


def is_crash(interrupt) -> bool:
    """Whether a ``simpy.Interrupt`` is a :class:`Restartable` crash (and not, say, a service's own
    interrupt of a call in flight)."""
    return getattr(interrupt, "cause", None) is _CRASH


class Restartable:
    """``body``: a function returning a simpy generator (the process's life from a fresh start).
    Counters: ``starts`` and ``crashes`` (crashes that found it running)."""

    def __init__(self, world, name: str, body, *, crashes=(), restart_after: float = 1.0):
        self.world = check_world(world)
        self.env, self.name = world.env, validate.text("name", name, empty=False)
        self.body = validate.function("body", body)
        if isinstance(crashes, (str, bytes)) or not hasattr(crashes, "__iter__"):
            raise validate.WrongType(f"crashes must be a list of times in seconds, got {validate.show(crashes)}")
        times = sorted(validate.number("crashes", t, low=self.env.now) for t in crashes)
        if len(times) > MAX_CRASHES:
            raise ValueError(f"crashes must hold at most {MAX_CRASHES:,} times, got {len(times):,}")
        self.crash_times = tuple(times)
        self.restart_after = validate.positive("restart_after", restart_after)
        self.starts = self.crashes = 0
        self.running = False
        self._process = None
        self.env.process(self._life())

    def _life(self):
        env = self.env
        pending = list(self.crash_times)
        while True:
            self.starts += 1
            self.running = True
            self._process = env.process(self._run())
            if not pending:
                yield self._process
                return
            at = pending.pop(0)
            if at > env.now:
                yield env.any_of([self._process, env.timeout(at - env.now)])
            if not self._process.is_alive:       # the body ended by itself: nothing left to crash
                return
            self._process.interrupt(_CRASH)
            self.crashes += 1
            self.running = False
            while pending and pending[0] <= env.now + self.restart_after:    # crashes while it is down
                pending.pop(0)
            yield env.timeout(self.restart_after)

    def _run(self):
        work = self.body()
        if not hasattr(work, "send"):
            raise validate.WrongType(f"body of {self.name!r} must return a simpy generator (a function that uses yield)")
        try:
            yield from work
        except simpy.Interrupt as stop:
            if stop.cause is not _CRASH:
                raise
        finally:
            self.running = False

    def __repr__(self) -> str:
        return f"Restartable({self.name!r}, crashes={len(self.crash_times)})"


__all__ = ["Restartable", "is_crash"]
