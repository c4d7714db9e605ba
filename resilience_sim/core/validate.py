"""Input checks shared by every public constructor: each names the parameter and the allowed range."""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable


def number(name: str, value, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, allow_inf: bool = False) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` naming ``name`` and the allowed range."""
    allowed = _describe(low, high, low_open, allow_inf)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):   # numpy scalars are welcome
        raise ValueError(f"{name} must be a number {allowed}, got {value!r}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be a number {allowed}, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def _describe(low, high, low_open, allow_inf) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}]"
    if low is not None:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        return bound + ("" if allow_inf else " and finite")
    return "(finite)"


def positive(name: str, value, *, allow_inf: bool = False) -> float:
    """A number strictly greater than zero."""
    return number(name, value, low=0.0, low_open=True, allow_inf=allow_inf)


def non_negative(name: str, value) -> float:
    """A finite number >= 0."""
    return number(name, value, low=0.0)


def probability(name: str, value) -> float:
    """A probability in [0, 1]."""
    return number(name, value, low=0.0, high=1.0)


def integer(name: str, value, *, low: int = 1, high: int | None = None) -> int:
    """A whole number in [low, high]."""
    rng = f"in [{low}, {high}]" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) and not (
            isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer()):
        raise ValueError(f"{name} must be a whole number {rng}, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be a whole number {rng}, got {value!r}")
    return value


def choice(name: str, value, allowed: Iterable):
    """One of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def windows(name: str, spans) -> tuple[tuple[float, float], ...]:
    """A non-empty list of (start, end) pairs with 0 <= start < end, sorted by start, not overlapping."""
    try:
        pairs = [tuple(w) for w in spans]
    except TypeError:
        raise ValueError(f"{name} must be a list of (start, end) pairs, got {spans!r}") from None
    if not pairs:
        raise ValueError(f"{name} must hold at least one (start, end) window, got an empty list")
    out = []
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"{name}[{i}] must be a (start, end) pair, got {pair!r}")
        start = non_negative(f"{name}[{i}] start", pair[0])
        end = number(f"{name}[{i}] end", pair[1], low=start, low_open=True)
        if out and start < out[-1][1]:
            raise ValueError(f"{name}[{i}] must start at or after the previous window's end "
                             f"({out[-1][1]:g}), got start {start:g}")
        out.append((start, end))
    return tuple(out)
