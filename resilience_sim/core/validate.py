"""Input checks shared by every public constructor: each names the parameter and the allowed range.

Every check raises a ``ValueError`` whose message reads ``"{name} must be <what is allowed>, got
<the value given>"``. A value of the wrong type raises :class:`WrongType`, which is both a
``TypeError`` and a ``ValueError``; an index out of range raises :class:`OutOfRange`, both an
``IndexError`` and a ``ValueError``. So ``except ValueError`` catches every refusal made here.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable


class WrongType(TypeError, ValueError):
    """A value of the wrong type (a string where a number goes, a bare number where a list goes).

    It is a ``TypeError``, as Python's own checks are, and also a ``ValueError``, so code that
    catches the ValueError every check here raises catches this one too."""


class OutOfRange(IndexError, ValueError):
    """An index past either end of what it indexes: an ``IndexError`` and also a ``ValueError``."""


def boolean(name: str, value) -> bool:
    """``value`` if it is True or False (a numpy bool too), as a Python bool; else a ``WrongType``
    naming ``name``. Truthy stand-ins (1, "yes", None, a list) are refused: ``retry=0`` or
    ``shade="no"`` would otherwise mean the opposite of what they look like."""
    if isinstance(value, bool):
        return value
    if _is_bool(value):
        return bool(value)
    hint = " (any non-empty string is truthy: write True or False)" if isinstance(value, str) else ""
    raise WrongType(f"{name} must be True or False, got {show(value)}{hint}")


def _is_bool(value) -> bool:
    """True or False, a Python or a numpy bool."""
    return isinstance(value, bool) or (type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"))


def show(value) -> str:
    """``repr(value)``, cut to about 80 characters (a 400-digit number or a long list reads badly)."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def number(name: str, value, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, allow_inf: bool = False) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` naming ``name`` and the allowed range.

    Any real number is welcome (int, float, numpy scalars, Fraction); bools, strings, None and
    arrays are not (a ``WrongType``). NaN is always refused, infinity unless ``allow_inf``. An
    integer too large for a float counts as infinite."""
    allowed = _describe(low, high, low_open, allow_inf)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):   # numpy scalars are welcome
        raise WrongType(f"{name} must be a number {allowed}, got {show(value)}")
    try:
        converted = float(value)
    except OverflowError:            # an int (or Fraction) beyond 1.8e308
        converted = math.inf if value > 0 else -math.inf
    if math.isnan(converted) or (math.isinf(converted) and not allow_inf):
        raise ValueError(f"{name} must be a number {allowed}, got {show(value)}")
    if low is not None and (converted < low or (low_open and converted == low)):
        raise ValueError(f"{name} must be {allowed}, got {converted!r}")
    if high is not None and converted > high:
        raise ValueError(f"{name} must be {allowed}, got {converted!r}")
    return converted


def _describe(low, high, low_open, allow_inf) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{_g(low)}, {_g(high)}]"
    if low is not None:
        bound = f"> {_g(low)}" if low_open else f">= {_g(low)}"
        return bound + ("" if allow_inf else " and finite")
    if high is not None:
        return f"<= {_g(high)}" + ("" if allow_inf else " and finite")
    return "(finite)" if not allow_inf else "(not NaN)"


def _g(bound) -> str:
    """A bound as ``:g`` shows it, whatever real number it is: ``Fraction(3, 2)`` (whose ``__format__``
    knows no ``g``) reads 1.5, numpy scalars read as floats; one too large for a float as it is."""
    try:
        return f"{float(bound):g}"
    except (OverflowError, TypeError, ValueError):
        return show(bound)


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
    """A whole number in [low, high], as an int. A float that is whole (``3.0``) is welcome, as are
    numpy integers; bools, NaN, infinity and fractions are not."""
    rng = f"in [{low}, {high}]" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise WrongType(f"{name} must be a whole number {rng}, got {show(value)}")
    if not isinstance(value, numbers.Integral):
        try:
            whole = math.isfinite(value) and float(value).is_integer()
        except OverflowError:        # a Fraction too large for a float
            whole = int(value) == value
        if not whole:
            raise ValueError(f"{name} must be a whole number {rng}, got {show(value)}")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be a whole number {rng}, got {show(value)}")
    return value


def index(name: str, value, length: int) -> int:
    """A position in a sequence of ``length`` items, as an int in [0, length): ``-1`` is the last,
    as in Python. A ``WrongType`` for anything but a whole number (``"1"``, ``1.0``, ``True``), an
    :class:`OutOfRange` past either end."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise WrongType(f"{name} must be a whole number (an int) in [0, {length}) or a negative one "
                        f"counting from the end, got {show(value)}")
    value = int(value)
    if not length:
        raise OutOfRange(f"{name} cannot index an empty sequence (there are no items), got {value}")
    if not -length <= value < length:
        raise OutOfRange(f"{name} must be in [-{length}, {length - 1}], got {value} (there are {length:,} items)")
    return value % length


def text(name: str, value, *, empty: bool = True) -> str:
    """A ``str`` (non-empty unless ``empty``)."""
    if not isinstance(value, str):
        raise WrongType(f"{name} must be a string, got {show(value)}")
    if not empty and not value:
        raise ValueError(f"{name} must be a non-empty string, got ''")
    return value


def function(name: str, value, *, optional: bool = False):
    """A callable (or None, with ``optional``)."""
    if value is None and optional:
        return None
    if not callable(value):
        what = "a function (or None)" if optional else "a function"
        raise WrongType(f"{name} must be {what}, got {show(value)}")
    return value


def choice(name: str, value, allowed: Iterable):
    """One of ``allowed``. A bool is not a number here: ``True`` does not stand for an option ``1``
    (Python has ``True == 1``), nor ``1`` for an option ``True``; ``2.0`` does stand for ``2``."""
    allowed = list(allowed)
    flag = _is_bool(value)
    try:
        found = any(value is a or (flag == _is_bool(a) and bool(value == a)) for a in allowed)
    except (TypeError, ValueError):  # a numpy array compared element-wise, say
        found = False
    if not found:
        raise ValueError(f"{name} must be one of {allowed}, got {show(value)}")
    return value


def windows(name: str, spans) -> tuple[tuple[float, float], ...]:
    """A non-empty list of (start, end) pairs with 0 <= start < end, sorted by start, not overlapping."""
    if isinstance(spans, (str, bytes)):
        raise WrongType(f"{name} must be a list of (start, end) pairs, got {show(spans)}")
    try:
        pairs = [tuple(w) for w in spans]
    except TypeError:
        raise WrongType(f"{name} must be a list of (start, end) pairs, got {show(spans)}") from None
    if not pairs:
        raise ValueError(f"{name} must hold at least one (start, end) window, got an empty list")
    out = []
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"{name}[{i}] must be a (start, end) pair, got {show(pair)}")
        start = non_negative(f"{name}[{i}] start", pair[0])
        end = number(f"{name}[{i}] end", pair[1], low=start, low_open=True)
        if out and start < out[-1][1]:
            raise ValueError(f"{name}[{i}] must start at or after the previous window's end "
                             f"({out[-1][1]:g}), got start {start:g}")
        out.append((start, end))
    return tuple(out)
