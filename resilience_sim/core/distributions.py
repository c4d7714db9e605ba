"""Distributions of durations (latencies, times to failure, times to repair).

Each draws from a ``random.Random`` stream the caller passes in, so the caller owns the randomness.

Every distribution's mean is a finite float: parameters whose mean is too large for a float (a
log-normal with sigma 40, a Weibull with shape 0.001) are refused at construction, with the limit.
A single draw beyond the largest float (1.8e308 s, in a far tail) is ``inf``, as an exponential's is.
"""
from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass

from . import validate

#: log of the largest float: e**_LOG_MAX is 1.8e308, the longest duration a float can hold
_LOG_MAX = math.log(sys.float_info.max)
#: most draws :meth:`Distribution.samples` makes in one call (10**7 take a few seconds)
MAX_SAMPLES = 10 ** 7


def _limit(x: float, *, up: bool) -> str:
    """``x`` to four figures, rounded the safe way (``up`` for a lower bound), so the bound a message
    gives is one that works."""
    shown = float(f"{x:.4g}")
    step = 10.0 ** (math.floor(math.log10(x)) - 3)
    if up and shown < x:
        shown += step
    elif not up and shown > x:
        shown -= step
    return f"{shown:.4g}"


def _not_an_rng(rng, error: Exception) -> Exception:
    """What :meth:`Distribution.sample` raises when its ``rng`` cannot draw: a ``WrongType`` naming
    ``rng``, or the original error if ``rng`` is a ``random.Random`` after all (a fault elsewhere).

    ``sample`` is the simulator's hot path (one call per request), so it checks nothing before the
    draw: the draw itself fails on a wrong ``rng`` (no ``.random()``...), and only then is it explained."""
    if isinstance(rng, random.Random):
        return error
    return validate.WrongType(f"rng must be a random.Random (world.rng('name'), or random.Random(seed)), "
                              f"got {validate.show(rng)}")


def _too_large(what: str, log_mean: float, fix: str) -> ValueError:
    return ValueError(f"{what} has a mean of e^{log_mean:.4g} seconds, beyond the largest float "
                      f"(1.8e308 = e^709.8), so no run could use it: {fix}")


class Distribution:
    """A distribution of non-negative durations in seconds."""

    mean: float

    def sample(self, rng) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def samples(self, rng, n: int) -> list[float]:
        """``n`` draws (at most :data:`MAX_SAMPLES`), in order, from ``rng`` (a ``random.Random``)."""
        if not isinstance(rng, random.Random):
            raise validate.WrongType(f"rng must be a random.Random (world.rng('name'), or random.Random(seed)), "
                                     f"got {validate.show(rng)}")
        n = validate.integer("n", n, low=0, high=MAX_SAMPLES)
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
        try:
            return rng.expovariate(self._rate)
        except (AttributeError, TypeError) as err:
            raise _not_an_rng(rng, err) from None


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
        mean = (self.low + self.high) / 2
        return mean if mean != math.inf else self.low / 2 + self.high / 2   # the sum overflows past 9e307

    def sample(self, rng) -> float:
        try:
            return rng.uniform(self.low, self.high)
        except (AttributeError, TypeError) as err:
            raise _not_an_rng(rng, err) from None


@dataclass(frozen=True)
class LogNormal(Distribution):
    """Right-skewed latencies: ``median`` seconds, with spread ``sigma`` (of the log)."""
    median: float
    sigma: float

    def __post_init__(self):
        median = validate.positive("median", self.median)
        sigma = validate.positive("sigma", self.sigma)
        mu = math.log(median)
        log_mean = mu + sigma * sigma / 2                  # log of median * exp(sigma^2 / 2)
        if log_mean > _LOG_MAX:
            raise _too_large(f"LogNormal(median={median:g}, sigma={sigma:g})", log_mean,
                             f"sigma must be <= {_limit(math.sqrt(2 * (_LOG_MAX - mu)), up=False)} for this median "
                             f"(a latency's sigma is rarely above 3)")
        object.__setattr__(self, "_mu", mu)
        object.__setattr__(self, "_log_mean", log_mean)

    @classmethod
    def from_percentiles(cls, median: float, p99: float) -> "LogNormal":
        """The log-normal whose median and 99th percentile are the given ones."""
        median = validate.positive("median", median)
        p99 = validate.number("p99", p99, low=median, low_open=True)
        ratio = p99 / median
        spread = math.log(ratio) if ratio != math.inf else math.log(p99) - math.log(median)
        try:
            return cls(median, spread / 2.3263478740408408)
        except ValueError as err:      # the spread is absurd: say so in terms of the p99 given
            raise ValueError(f"p99 must be closer to median: a p99 {p99:g} for a median {median:g} "
                             f"means {err}") from None

    @property
    def mean(self) -> float:
        half = self.sigma ** 2 / 2
        if half < _LOG_MAX:
            mean = self.median * math.exp(half)
            if mean != math.inf:
                return mean
        return math.exp(self._log_mean)       # a tiny median times a huge factor: finite, checked at construction

    def quantile(self, q: float) -> float:
        """The ``q``-quantile, for q in (0, 1)."""
        from statistics import NormalDist
        q = validate.number("q", q, low=0.0, high=1.0, low_open=True)
        if q == 1.0:
            raise ValueError("q must be in (0, 1) (the 1-quantile of a log-normal is infinite), got 1.0")
        spread = self.sigma * NormalDist().inv_cdf(q)
        if spread < _LOG_MAX:
            value = self.median * math.exp(spread)
            if value != math.inf:
                return value
        log_value = self._mu + spread
        if log_value > _LOG_MAX:
            raise ValueError(f"q must give a quantile a float can hold: the {q!r}-quantile of {self!r} is "
                             f"e^{log_value:.4g} seconds, beyond 1.8e308; use a smaller q")
        return math.exp(log_value)

    def sample(self, rng) -> float:
        try:
            x = rng.normalvariate(self._mu, self.sigma)   # what rng.lognormvariate does, without its overflow
        except (AttributeError, TypeError) as err:
            raise _not_an_rng(rng, err) from None
        return math.exp(x) if x <= _LOG_MAX else math.inf   # e**_LOG_MAX itself is a float


@dataclass(frozen=True)
class Weibull(Distribution):
    """Times to failure that wear out (shape > 1) or die young (shape < 1); ``scale`` in seconds."""
    scale: float
    shape: float

    def __post_init__(self):
        scale = validate.positive("scale", self.scale)
        shape = validate.positive("shape", self.shape)
        log_mean = math.log(scale) + math.lgamma(1 + 1 / shape)   # log of scale * Gamma(1 + 1/shape)
        if log_mean > _LOG_MAX:
            raise _too_large(f"Weibull(scale={scale:g}, shape={shape:g})", log_mean,
                             f"shape must be >= {_limit(_weibull_min_shape(scale), up=True)} for this scale "
                             f"(times to failure rarely have a shape below 0.3)")
        object.__setattr__(self, "_log_scale", math.log(scale))
        object.__setattr__(self, "_log_mean", log_mean)
        object.__setattr__(self, "_inv_shape", 1.0 / shape)

    @property
    def mean(self) -> float:
        try:
            mean = self.scale * math.gamma(1 + 1 / self.shape)
        except OverflowError:                    # Gamma past 1.8e308, the scale small enough to bring it back
            mean = math.inf
        return mean if mean != math.inf else math.exp(self._log_mean)

    def sample(self, rng) -> float:
        try:
            u = 1.0 - rng.random()               # what rng.weibullvariate does, without its overflow
        except (AttributeError, TypeError) as err:
            raise _not_an_rng(rng, err) from None
        x = -math.log(u)
        try:
            return self.scale * x ** self._inv_shape
        except OverflowError:                    # x ** (1/shape) past 1.8e308: work in logs
            log_value = self._log_scale + math.log(x) * self._inv_shape
            return math.exp(log_value) if log_value < _LOG_MAX else math.inf


def _weibull_min_shape(scale: float) -> float:
    """The smallest shape whose Weibull mean, scale * Gamma(1 + 1/shape), a float can hold."""
    target = _LOG_MAX - math.log(scale)
    lo, hi = 1.0, 2.0                             # on k = 1/shape; lgamma(1 + k) grows for k >= 1
    while math.lgamma(1 + hi) <= target:
        lo, hi = hi, hi * 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if math.lgamma(1 + mid) <= target else (lo, mid)
    return 1 / lo


class Mixture(Distribution):
    """Draws from one of several distributions, chosen by weight.

    ``Mixture.slow_tail(0.010, 1.0, 0.01)`` is "10 ms, but 1% take 1 s".
    """

    def __init__(self, parts):
        example = "e.g. Mixture([(0.99, Fixed(0.01)), (0.01, Fixed(1.0))])"
        if isinstance(parts, (str, bytes, Distribution)):
            raise validate.WrongType(f"parts must be a list of (weight, Distribution) pairs, {example}, "
                                     f"got {validate.show(parts)}")
        try:
            parts = list(parts)
        except TypeError:
            raise validate.WrongType(f"parts must be a list of (weight, Distribution) pairs, {example}, "
                                     f"got {validate.show(parts)}") from None
        if not parts:
            raise ValueError("parts must hold at least one (weight, distribution) pair, got none")
        weights = []
        for i, part in enumerate(parts):
            if not isinstance(part, (tuple, list)) or len(part) != 2 or not isinstance(part[1], Distribution):
                raise validate.WrongType(f"parts[{i}] must be a (weight, Distribution) pair, {example}, "
                                         f"got {validate.show(part)}")
            weights.append(validate.non_negative(f"parts[{i}] weight", part[0]))
        total = sum(weights)
        if total <= 0:
            raise ValueError("parts weights must sum to a number > 0, got 0")
        if total == math.inf:                     # weights near 1.8e308 overflow the sum: scale them first
            top = max(weights)
            weights = [w / top for w in weights]
            total = sum(weights)
        self.parts = tuple((w / total, d) for w, (_, d) in zip(weights, parts))
        cumulative, acc = [], 0.0
        for w, _ in self.parts:
            acc += w
            cumulative.append(acc)
        cumulative[-1] = 1.0
        self._cumulative = tuple(cumulative)

    @classmethod
    def slow_tail(cls, fast: float, slow: float, p_slow: float) -> "Mixture":
        """``fast`` seconds, except a share ``p_slow`` of calls that take ``slow`` seconds."""
        validate.non_negative("fast", fast)
        validate.non_negative("slow", slow)
        validate.probability("p_slow", p_slow)
        return cls([(1 - p_slow, Fixed(fast)), (p_slow, Fixed(slow))])

    @property
    def mean(self) -> float:
        mean = sum(w * d.mean for w, d in self.parts)
        if mean != math.inf:
            return mean
        top = max(d.mean for _, d in self.parts)   # parts' means near 1.8e308: a weighted average of them
        return top * sum(w * (d.mean / top) for w, d in self.parts)

    def sample(self, rng) -> float:
        try:
            u = rng.random()
        except (AttributeError, TypeError) as err:
            raise _not_an_rng(rng, err) from None
        for bound, (_, dist) in zip(self._cumulative, self.parts):
            if u < bound:
                return dist.sample(rng)
        return self.parts[-1][1].sample(rng)

    def __repr__(self) -> str:
        return f"Mixture({list(self.parts)!r})"


def as_distribution(name: str, value, *, number_means: str) -> Distribution:
    """Accept a Distribution, or a plain number read as ``Fixed`` or ``Exponential`` (by ``number_means``).
    ``name`` is the parameter the value was given as (``"latency"``): the one a refusal names."""
    validate.text("name", name, empty=False)
    validate.choice("number_means", number_means, ("fixed", "exponential"))
    if isinstance(value, Distribution):
        return value
    if number_means == "fixed":
        return Fixed(validate.non_negative(name, value))
    return Exponential(validate.positive(name, value))
