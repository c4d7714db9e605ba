"""Distributions of durations (latencies, times to failure, times to repair).

Each draws from a ``random.Random`` stream the caller passes in, so the caller owns the randomness.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import validate


class Distribution:
    """A distribution of non-negative durations in seconds."""

    mean: float

    def sample(self, rng) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def samples(self, rng, n: int) -> list[float]:
        """``n`` draws, in order."""
        return [self.sample(rng) for _ in range(n)]


@dataclass(frozen=True)
class Fixed(Distribution):
    """Always ``value`` seconds."""
    value: float

    def __post_init__(self):
        validate.non_negative("value", self.value)

    @property
    def mean(self) -> float:
        return self.value

    def sample(self, rng) -> float:
        return self.value


@dataclass(frozen=True)
class Exponential(Distribution):
    """Memoryless durations with the given mean (a Poisson process's gaps)."""
    mean: float

    def __post_init__(self):
        validate.positive("mean", self.mean)
        object.__setattr__(self, "_rate", 1.0 / self.mean)

    def sample(self, rng) -> float:
        return rng.expovariate(self._rate)


@dataclass(frozen=True)
class Uniform(Distribution):
    """Evenly spread between ``low`` and ``high``."""
    low: float
    high: float

    def __post_init__(self):
        validate.non_negative("low", self.low)
        validate.number("high", self.high, low=self.low)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def sample(self, rng) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class LogNormal(Distribution):
    """Right-skewed latencies: ``median`` seconds, with spread ``sigma`` (of the log)."""
    median: float
    sigma: float

    def __post_init__(self):
        validate.positive("median", self.median)
        validate.positive("sigma", self.sigma)
        object.__setattr__(self, "_mu", math.log(self.median))

    @classmethod
    def from_percentiles(cls, median: float, p99: float) -> "LogNormal":
        """The log-normal whose median and 99th percentile are the given ones."""
        validate.positive("median", median)
        validate.number("p99", p99, low=median, low_open=True)
        return cls(median, math.log(p99 / median) / 2.3263478740408408)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma ** 2 / 2)

    def quantile(self, q: float) -> float:
        """The ``q``-quantile, for q in (0, 1)."""
        from statistics import NormalDist
        q = validate.number("q", q, low=0.0, high=1.0, low_open=True)
        if q == 1.0:
            raise ValueError("q must be in (0, 1) (the 1-quantile of a log-normal is infinite), got 1.0")
        return self.median * math.exp(self.sigma * NormalDist().inv_cdf(q))

    def sample(self, rng) -> float:
        return rng.lognormvariate(self._mu, self.sigma)


@dataclass(frozen=True)
class Weibull(Distribution):
    """Times to failure that wear out (shape > 1) or die young (shape < 1); ``scale`` in seconds."""
    scale: float
    shape: float

    def __post_init__(self):
        validate.positive("scale", self.scale)
        validate.positive("shape", self.shape)

    @property
    def mean(self) -> float:
        return self.scale * math.gamma(1 + 1 / self.shape)

    def sample(self, rng) -> float:
        return rng.weibullvariate(self.scale, self.shape)


class Mixture(Distribution):
    """Draws from one of several distributions, chosen by weight.

    ``Mixture.slow_tail(0.010, 1.0, 0.01)`` is "10 ms, but 1% take 1 s".
    """

    def __init__(self, parts):
        parts = list(parts)
        if not parts:
            raise ValueError("parts must hold at least one (weight, distribution) pair, got none")
        total = 0.0
        for i, part in enumerate(parts):
            if not isinstance(part, (tuple, list)) or len(part) != 2 or not isinstance(part[1], Distribution):
                raise ValueError(f"parts[{i}] must be a (weight, Distribution) pair, got {part!r}")
            total += validate.non_negative(f"parts[{i}] weight", part[0])
        if total <= 0:
            raise ValueError("parts weights must sum to a number > 0, got 0")
        self.parts = tuple((w / total, d) for w, d in parts)
        cumulative, acc = [], 0.0
        for w, _ in self.parts:
            acc += w
            cumulative.append(acc)
        cumulative[-1] = 1.0
        self._cumulative = tuple(cumulative)

    @classmethod
    def slow_tail(cls, fast: float, slow: float, p_slow: float) -> "Mixture":
        """``fast`` seconds, except a share ``p_slow`` of calls that take ``slow`` seconds."""
        validate.probability("p_slow", p_slow)
        return cls([(1 - p_slow, Fixed(fast)), (p_slow, Fixed(slow))])

    @property
    def mean(self) -> float:
        return sum(w * d.mean for w, d in self.parts)

    def sample(self, rng) -> float:
        u = rng.random()
        for bound, (_, dist) in zip(self._cumulative, self.parts):
            if u < bound:
                return dist.sample(rng)
        return self.parts[-1][1].sample(rng)

    def __repr__(self) -> str:
        return f"Mixture({list(self.parts)!r})"


def as_distribution(name: str, value, *, number_means: str) -> Distribution:
    """Accept a Distribution, or a plain number read as ``Fixed`` or ``Exponential`` (by ``number_means``)."""
    if isinstance(value, Distribution):
        return value
    if number_means == "fixed":
        return Fixed(validate.non_negative(name, value))
    return Exponential(validate.positive(name, value))
