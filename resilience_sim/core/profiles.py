"""Load profiles: an arrival rate in requests per second as a function of simulated time.

Each has a ``peak`` (the highest rate it reaches), which open-loop arrivals thin from."""
from __future__ import annotations

from dataclasses import dataclass

from . import validate


@dataclass(frozen=True)
class Constant:
    """``rate`` requests per second, always."""
    rate: float

    def __post_init__(self):
        validate.positive("rate", self.rate)

    @property
    def peak(self) -> float:
        return self.rate

    def __call__(self, t: float) -> float:
        return self.rate


@dataclass(frozen=True)
class Ramp:
    """From ``start`` to ``end`` requests per second, linearly over ``duration`` seconds, then flat."""
    start: float
    end: float
    duration: float

    def __post_init__(self):
        validate.non_negative("start", self.start)
        validate.non_negative("end", self.end)
        validate.positive("duration", self.duration)
        if self.start == self.end == 0:
            raise ValueError("start or end must be > 0 requests per second, got both 0")

    @property
    def peak(self) -> float:
        return max(self.start, self.end)

    def __call__(self, t: float) -> float:
        return self.end if t >= self.duration else self.start + (self.end - self.start) * t / self.duration


@dataclass(frozen=True)
class Step:
    """``before`` requests per second until ``at`` seconds, ``after`` from then on."""
    before: float
    after: float
    at: float

    def __post_init__(self):
        validate.non_negative("before", self.before)
        validate.non_negative("after", self.after)
        validate.non_negative("at", self.at)
        if self.before == self.after == 0:
            raise ValueError("before or after must be > 0 requests per second, got both 0")

    @property
    def peak(self) -> float:
        return max(self.before, self.after)

    def __call__(self, t: float) -> float:
        return self.after if t >= self.at else self.before


@dataclass(frozen=True)
class Spike:
    """``base`` requests per second, with ``peak_rate`` for ``duration`` seconds from ``at``."""
    base: float
    peak_rate: float
    at: float
    duration: float

    def __post_init__(self):
        validate.non_negative("base", self.base)
        validate.number("peak_rate", self.peak_rate, low=self.base, low_open=True)
        validate.non_negative("at", self.at)
        validate.positive("duration", self.duration)

    @property
    def peak(self) -> float:
        return self.peak_rate

    def __call__(self, t: float) -> float:
        return self.peak_rate if self.at <= t < self.at + self.duration else self.base


PROFILES = (Constant, Ramp, Step, Spike)
