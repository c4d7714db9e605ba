"""Probes that watch a simulation while it runs, for what the records do not keep: how busy a
service was at each moment, and when each call reached a target.

* :class:`ServiceProbe` samples a service's busy slots and waiting queue on a fixed grid of times.
* :class:`CallLog` wraps a target and notes the time of every call that passes through it (and,
  with ``durations=True``, how long each one took and which request it served).

Neither changes what it watches: a probe is one process of its own that only reads, a log adds no
event to a call.
"""
from __future__ import annotations

import numpy as np

from ..core import validate


class ServiceProbe:
    """Samples ``service`` at times 0, ``every``, 2 ``every``... (exactly ``k * every``, without
    adding up rounding errors) before ``until`` (None: for as long as the world runs).

    ``times``, ``busy`` (slots in use) and ``waiting`` (requests waiting for a slot) are lists
    filled while the world runs; :attr:`in_system` is busy plus waiting, and :meth:`at` reads the
    last sample taken at or before a time.
    """

    def __init__(self, world, service, every: float, until: float | None = None):
        self.service = service
        self.every = validate.positive("every", every)
        self.until = float("inf") if until is None else validate.positive("until", until)
        self.times: list[float] = []
        self.busy: list[int] = []
        self.waiting: list[int] = []
        world.env.process(self._run(world.env))

    def _run(self, env):
        k, every = 0, self.every
        while k * every < self.until:
            if k * every > env.now:
                yield env.timeout(k * every - env.now)
            self.times.append(env.now)
            self.busy.append(self.service.busy)
            self.waiting.append(self.service.waiting)
            k += 1

    @property
    def in_system(self) -> np.ndarray:
        """Requests at the service at each sample: being served plus waiting."""
        return np.array(self.busy) + np.array(self.waiting)

    def at(self, t: float) -> int:
        """Requests at the service (busy + waiting) in the last sample taken at or before ``t``."""
        i = max(int(np.searchsorted(self.times, t, side="right")) - 1, 0)
        return self.busy[i] + self.waiting[i]


class CallLog:
    """A target that passes every call on to ``target`` and notes when it arrived (``times``).

    Put it between a client and a service to count the calls that reach the service, retries and
    hedged copies included. With ``durations=True`` it also notes, per call, how long it took
    (``durations``, seconds, failed calls included) and the key of the request it served (``keys``),
    each list in the order the calls arrived, so ``times[i]``, ``keys[i]`` and ``durations[i]`` are
    the same call's.
    """

    def __init__(self, target, *, durations: bool = False):
        if not callable(getattr(target, "call", None)):
            raise ValueError(f"target must have a call(request) generator method, got {target!r}")
        self.target, self.name, self.env = target, target.name, target.env
        self.times: list[float] = []
        self.durations: list[float] | None = [] if durations else None
        self.keys: list = [] if durations else None

    @property
    def world(self):
        return self.target.world

    def call(self, req, caller=None):
        """Pass the call on; ``times``, ``keys`` and ``durations`` hold one entry per call in the order
        the calls arrived (a call still running has a duration of NaN)."""
        start = self.env.now
        self.times.append(start)
        if self.durations is None:
            return (yield from self.target.call(req, caller=caller))
        slot = len(self.durations)
        self.keys.append(req.key)
        self.durations.append(float("nan"))
        try:
            return (yield from self.target.call(req, caller=caller))
        finally:
            self.durations[slot] = self.env.now - start

    def between(self, lo: float, hi: float) -> int:
        """How many calls arrived in ``[lo, hi)``."""
        times = np.asarray(self.times)
        return int(np.count_nonzero((times >= lo) & (times < hi)))

    def __repr__(self) -> str:
        return f"CallLog({self.name!r}, {len(self.times)} calls)"
