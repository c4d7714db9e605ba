"""The one table of public parameters and what each accepts, for ``test_fuzz_inputs.py``.

Each :class:`Entry` is one public callable (a constructor, a method, a function), a way to build
fresh state for it (``setup``), and for each of its parameters a :class:`P`: the *kind* of value it
takes (its valid range) and one valid value. A call with every parameter at its valid value is the
entry's baseline; a fuzz case changes one parameter to a value its kind calls bad (must be refused
with a ``ValueError`` or ``TypeError`` whose message names the parameter) or edge (valid but extreme:
accepted, or refused by a ``ValueError``/``TypeError`` that names some parameter; never another
exception, never a hang).

Ranges that depend on another parameter are written for the baseline values and put on the later
parameter (``Uniform``: ``high`` >= ``low`` = 1), so a bad value is bad whatever order the checks run in.

:func:`public_parameters` lists every parameter of every public callable, read from the code with
``inspect.signature``; the tests check that each one is in :data:`TABLE` or in :data:`EXEMPT` with
a reason, so a new parameter cannot be forgotten.

Run ``python tests/fuzz_table.py`` (from the repository root) for a census: every catalogued bad and
edge value of every parameter, and what became of it.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import math
import numbers
import random
import re
import signal
import threading
import warnings
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
from hypothesis import strategies as st

import resilience_sim as rs
import resilience_sim.core.distributions as distributions
import resilience_sim.core.theory as theory
import resilience_sim.metrics as metrics
import resilience_sim.metrics.windows as windows
import resilience_sim.policies as pol
import resilience_sim.sim.jobs as sim_jobs
import resilience_sim.views.dashboard as dashboard
from resilience_sim.core.eventlog import DEFAULT_LIMIT
from resilience_sim.core.reasons import REASONS
from resilience_sim.core.timeline import Timeline

NAN, INF = math.nan, math.inf
#: A call that takes longer than this for one input counts as a hang.
HANG_SECONDS = 1.0


# --- values -----------------------------------------------------------------------------------
class Junk:
    """An object of no use to anybody (with a stable repr)."""

    def __repr__(self):
        return "Junk()"


class Sink:
    """A callable that takes anything and does nothing (a quiet on_event)."""

    def __call__(self, *args, **kwargs):
        return None

    def __repr__(self):
        return "Sink()"


@dataclass(frozen=True, eq=False)
class Lazy:
    """A value made from the entry's fresh state (``ctx``) at call time: a permit of *this* breaker,
    a service of *another* world."""
    label: str
    make: object

    def __repr__(self):
        return self.label


def resolve(value, ctx):
    if isinstance(value, Lazy):
        return value.make(ctx)
    if isinstance(value, VarArgs.Args):
        return tuple(resolve(v, ctx) for v in value)
    if type(value) is list:
        return [resolve(v, ctx) for v in value]
    return value


def show(value) -> str:
    if isinstance(value, VarArgs.Args):
        return "(" + ", ".join(show(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    try:
        text = repr(value)
    except Exception:                          # pragma: no cover - a repr that fails
        text = f"<{type(value).__name__}>"
    text = re.sub(r" at 0x[0-9a-f]+", "", text)
    return text if len(text) <= 70 else text[:60] + f"...({len(text)} chars)"


def _uniq(values):
    out, seen = [], []
    for v in values:
        key = (type(v), show(v))
        if key not in seen:
            seen.append(key)
            out.append(v)
    return out


#: Wrong types for a number: text, nothing, containers, booleans, bytes, complex, junk, an array.
WRONG_NUMBER = ["1", None, [1.0], True, False, b"1", 1j, Junk(), np.array([1.0])]


# --- kinds --------------------------------------------------------------------------------------
class Kind:
    """What a parameter accepts: ``bad()`` values it must refuse, ``edge()`` valid extremes, and a
    hypothesis strategy of bad values (the catalogue plus generated ones)."""
    what = "?"

    def bad(self) -> list:
        return []

    def edge(self) -> list:
        return []

    def strategy(self):
        return st.sampled_from(self.bad())

    def __repr__(self):
        return self.what


class Any(Kind):
    """Anything goes, for the reason given (shown by the census and the tests)."""

    def __init__(self, why: str):
        self.why = why
        self.what = f"any value ({why})"

    def strategy(self):
        return st.nothing()


class Num(Kind):
    """A real number in a range; NaN never, infinities only with ``allow_inf``."""

    def __init__(self, low=None, high=None, *, low_open=False, high_open=False, allow_inf=False,
                 bad=(), edge=(), only_edge=None):
        self.low, self.high, self.low_open, self.high_open, self.allow_inf = low, high, low_open, high_open, allow_inf
        self._bad, self._edge, self._only_edge = list(bad), list(edge), only_edge
        lo = "" if low is None else (f"> {low:g}" if low_open else f">= {low:g}")
        hi = "" if high is None else (f"< {high:g}" if high_open else f"<= {high:g}")
        self.what = "number " + " and ".join(x for x in (lo, hi) if x) + ("" if allow_inf else " (finite)")

    def inside(self, x) -> bool:
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
            return False
        try:
            x = float(x)
        except OverflowError:
            x = INF if x > 0 else -INF
        if math.isnan(x) or (math.isinf(x) and not self.allow_inf):
            return False
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return False
        if self.high is not None and (x > self.high or (self.high_open and x == self.high)):
            return False
        return True

    def bad(self):
        low, high = self.low, self.high
        out = list(WRONG_NUMBER) + [NAN, np.float64("nan")]
        if not self.allow_inf or high is not None:
            out += [INF, 10 ** 400]
        if not self.allow_inf or low is not None:
            out += [-INF, -10 ** 400]
        if low is not None:
            out += [math.nextafter(low, -INF), low - 1, -1e308, -10 ** 30]
            if self.low_open:
                out += [low, float(low)] + ([-0.0] if low == 0 else [])
        if high is not None:
            out += [math.nextafter(high, INF), high + 1, 1e308, 10 ** 30]
            if self.high_open:
                out += [high]
        out = [v for v in out if not self.inside(v)]
        return _uniq(out + self._bad)

    def _mid(self):
        low, high = self.low, self.high
        if low is not None and high is not None:
            return (low + high) / 2
        return low + 1.5 if low is not None else (high - 1.5 if high is not None else 0.5)

    def edge(self):
        if self._only_edge is not None:
            return list(self._only_edge)
        low, high, mid = self.low, self.high, self._mid()
        out = [np.float64(mid), Fraction(mid), np.float32(mid)]
        if low is not None:
            out.append(math.nextafter(low, INF) if self.low_open else low)
        else:
            out += [-1e308, -INF]
        if high is not None:
            out.append(math.nextafter(high, -INF) if self.high_open else high)
        else:
            out += [1e308, 10 ** 30, INF, 10 ** 400]
        out += [5e-324, 1e-300]
        return _uniq([v for v in out if self.inside(v)] + self._edge)

    def strategy(self):
        parts = [st.sampled_from(self.bad()), st.text(max_size=4), st.none(), st.booleans(),
                 st.lists(st.floats(allow_nan=False), max_size=2)]
        if self.low is not None:
            parts.append(st.floats(max_value=self.low).filter(lambda x: not self.inside(x)))
            parts.append(st.integers(max_value=math.ceil(self.low)).filter(lambda x: not self.inside(x)))
        if self.high is not None:
            parts.append(st.floats(min_value=self.high).filter(lambda x: not self.inside(x)))
            parts.append(st.integers(min_value=math.floor(self.high)).filter(lambda x: not self.inside(x)))
        if not self.allow_inf:
            parts.append(st.sampled_from([INF, -INF]))
        return st.one_of(parts)


class Int(Kind):
    """A whole number in [low, high] (a whole float such as 3.0 is welcome). ``cap``: ``high`` is a
    resource limit (10**7 draws), so it is not tried as an edge."""

    def __init__(self, low=1, high=None, *, cap=False, bad=(), edge=()):
        self.low, self.high, self.cap = low, high, cap
        self._bad, self._edge = list(bad), list(edge)
        self.what = f"whole number >= {low}" + ("" if high is None else f" and <= {high}")

    def inside(self, x) -> bool:
        if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
            return False
        if not isinstance(x, numbers.Integral) and not (math.isfinite(x) and float(x).is_integer()):
            return False
        return x >= self.low and (self.high is None or x <= self.high)

    def bad(self):
        low, high = self.low, self.high
        out = list(WRONG_NUMBER) + [NAN, INF, -INF, low + 0.5, np.float64(low + 0.5), Fraction(1, 2) + low,
                                    low - 1, -1, -10 ** 30]
        if high is not None:
            out += [high + 1, 10 ** 30, float(high) + 1.0]
        return _uniq([v for v in out if not self.inside(v)] + self._bad)

    def edge(self):
        out = [self.low, float(self.low), np.int64(self.low), self.low + 1]
        if self.high is not None and not self.cap:
            out.append(self.high)
        if self.high is None and not self.cap:
            out += [10 ** 30, 10 ** 400]
        return _uniq([v for v in out if self.inside(v)] + self._edge)

    def strategy(self):
        parts = [st.sampled_from(self.bad()), st.integers(max_value=self.low - 1), st.text(max_size=3),
                 st.none(), st.booleans(), st.floats().filter(lambda x: not (math.isfinite(x) and x.is_integer()))]
        if self.high is not None:
            parts.append(st.integers(min_value=self.high + 1))
        return st.one_of(parts)


class Bool(Kind):
    what = "True or False"

    def bad(self):
        return ["no", "yes", "", "False", "True", 0, 1, 0.0, 1.0, None, [], [True], np.int64(1), Junk()]

    def edge(self):
        return [True, False, np.bool_(True), np.bool_(False)]

    def strategy(self):
        return st.one_of(st.sampled_from(self.bad()), st.integers(), st.floats(), st.text(max_size=3), st.none())


class Text(Kind):
    def __init__(self, empty=True, bad=(), edge=()):
        self.empty, self._bad, self._edge = empty, list(bad), list(edge)
        self.what = "string" if empty else "non-empty string"

    def bad(self):
        return _uniq([None, 1, 1.5, b"x", ["x"], True, Junk()] + ([] if self.empty else [""]) + self._bad)

    def edge(self):
        return ["x" * 10_000, "é∂🙂", " "] + ([""] if self.empty else []) + self._edge

    def strategy(self):
        return st.one_of(st.sampled_from(self.bad()), st.integers(), st.floats(), st.binary(max_size=3),
                         st.lists(st.text(max_size=2), max_size=2))


class Ident(Text):
    """A Python identifier, not a keyword (a dashboard control's name)."""
    what = "Python identifier"

    def __init__(self):
        super().__init__(empty=False, bad=["1x", "a b", "class", "x-y", "None"])

    def edge(self):
        return ["x", "_", "é", "x" * 1000]


class Func(Kind):
    def __init__(self, optional=False):
        self.optional = optional
        self.what = "function" + (" or None" if optional else "")

    def bad(self):
        return ["f", 1, True, [print], Junk()] + ([] if self.optional else [None])

    def edge(self):
        return [Sink(), lambda *a, **k: None] + ([None] if self.optional else [])


class Choice(Kind):
    def __init__(self, options, bad=()):
        self.options, self._bad = list(options), list(bad)
        self.what = f"one of {self.options}"

    def bad(self):
        out = ["nope", "", None, 1, True, Junk(), [self.options[0]]]
        out += [o.upper() for o in self.options if isinstance(o, str) and o.upper() != o]
        out += [" " + o for o in self.options if isinstance(o, str)]
        return _uniq([v for v in out if not any(v is o or (type(v) is type(o) and v == o) for o in self.options)]
                     + self._bad)

    def edge(self):
        return list(self.options)

    def strategy(self):
        return st.one_of(st.sampled_from(self.bad()), st.text(max_size=4).filter(lambda s: s not in self.options),
                         st.integers())


class Obj(Kind):
    """An object of some class (``valid`` makes one from ``ctx``); ``extra`` bad values of the right
    class but the wrong world, or of a look-alike class."""

    def __init__(self, what, valid, *, optional=False, extra=(), edge=()):
        self.what, self.valid, self.optional = what + (" or None" if optional else ""), valid, optional
        self._extra, self._edge = list(extra), list(edge)

    def bad(self):
        return ["x", 1, True, Junk(), [self.valid]] + ([] if self.optional else [None]) + self._extra

    def edge(self):
        return [self.valid] + ([None] if self.optional else []) + self._edge


class Time(Kind):
    """``now`` of a stateful policy whose clock reads ``last``: finite, never before ``last``."""

    def __init__(self, last=10.0):
        self.last = last
        self.what = f"finite time >= {last:g} (the last one seen)"

    def bad(self):
        return [NAN, np.float64("nan"), INF, -INF, 10 ** 400, "12", None, True, False, [12.0], 1j, Junk(),
                self.last - 5, math.nextafter(self.last, -INF), -1.0, -1e308]

    def edge(self):
        return [self.last, np.float64(self.last + 2), Fraction(25, 2), 1e308, 10 ** 30]

    def strategy(self):
        return st.one_of(st.sampled_from(self.bad()),
                         st.floats(max_value=self.last, exclude_max=True).filter(lambda x: x < self.last),
                         st.text(max_size=3), st.none(), st.booleans())


class Optional(Kind):
    def __init__(self, inner):
        self.inner = inner
        self.what = f"{inner.what} or None"

    def bad(self):
        return [v for v in self.inner.bad() if v is not None]

    def edge(self):
        return self.inner.edge() + [None]

    def strategy(self):
        return self.inner.strategy().filter(lambda v: v is not None)


class Values(Kind):
    """A kind given by its lists of bad and edge values."""

    def __init__(self, what, bad, edge=()):
        self.what, self._bad, self._edge = what, list(bad), list(edge)

    def bad(self):
        return list(self._bad)

    def edge(self):
        return list(self._edge)


class VarArgs(Kind):
    """``*args``: the baseline is a tuple of arguments; a bad case is one bad argument, no arguments
    (``at_least_one``) or one list where the items go one by one (``list_hint``)."""

    class Args(tuple):
        pass

    def __init__(self, inner, valid, *, at_least_one=True, list_hint=False):
        self.inner, self.valid = inner, tuple(valid)
        self.at_least_one, self.list_hint = at_least_one, list_hint
        self.what = f"*{inner.what}"

    def bad(self):
        A = VarArgs.Args
        out = [A((b,)) for b in self.inner.bad()]
        out += [A((*self.valid, b)) for b in self.inner.bad()[:3]]
        if self.at_least_one:
            out.append(A(()))
        if self.list_hint:
            out.append(A((list(self.valid),)))
        return out

    def edge(self):
        A = VarArgs.Args
        return [A((e,)) for e in self.inner.edge()] + ([] if self.at_least_one else [A(())])

    def strategy(self):
        return st.one_of(st.sampled_from(self.bad()), self.inner.strategy().map(lambda b: VarArgs.Args((b,))))


# --- the kinds the package uses ------------------------------------------------------------------
def prob():
    return Num(0.0, 1.0)


def pos(**kw):
    return Num(0.0, low_open=True, **kw)


def nonneg(**kw):
    return Num(0.0, **kw)


def finite():
    return Num()


WINDOWS = Values("non-empty list of (start, end) pairs, 0 <= start < end, sorted, not overlapping", bad=[
    [], "0,1", None, 5, Junk(), [(1,)], [(2, 1)], [(1, 1)], [(-1, 1)], [(0, NAN)], [(NAN, 1)], [(0, INF)],
    [(0, 1), (0.5, 2)], [("0", 1)], [(True, 2)], [(0, 1), (3, 2)], [5], [None], [(0, 10 ** 400)],
    [(0, 1, 2)], [(0, 1), (1, 0.5)]],
    edge=[[(0, 1e308)], [(0, 1), (1, 2)], [(0, 5e-324)], ((0, 1),), np.array([[0.0, 1.0]]), [[0, 1]]])

REASONS_SET = Values("set of known reasons", bad=[
    "error", None, 5, ["timout"], [None], [1], ["ERROR"], Junk(), [["error"]]],
    edge=[[], frozenset({"error"}), ("timeout", "error"), sorted(REASONS)])

REASON = Values("a known reason", bad=["timout", "", None, 1, "ERROR", ["error"], True, Junk()],
                edge=["error", "unfinished", "circuit open"])

DURATIONS = Values("non-empty list of durations >= 0", bad=[
    [], None, "abc", 5, [-1], [NAN], [INF], ["1"], [None], [True], Junk(), [0.1, -5e-324]],
    edge=[[0], [1e308, 1e308], np.array([0.1, 0.2]), (0.1,), range(3), [5e-324]])

PERCENTILES = Values("non-empty list of percentiles in (0, 100]", bad=[
    [], "50", 50, None, [0], [101], [NAN], [None], ["50"], [True], [-1], [INF], Junk()],
    edge=[(100,), np.array([50.0]), [5e-324], (50, 50)])

TIMES = Values("times in seconds (a number or a list of finite numbers)", bad=[
    "x", None, [NAN], NAN, [INF], [-INF], INF, ["1"], Junk(), [None], [[1.0], [2.0, 3.0]]],
    edge=[[], 0, [-1e308], np.array([1.0, 2.0]), [1e308], 10 ** 30])

PARTS = Values("non-empty list of (weight >= 0, Distribution) pairs, weights summing to > 0", bad=[
    [], "ab", None, 5, rs.Fixed(1), [(1, 0.5)], [(-1, rs.Fixed(1))], [(NAN, rs.Fixed(1))],
    [(INF, rs.Fixed(1))], [(0, rs.Fixed(1))], [(1, rs.Fixed(1), 2)], [rs.Fixed(1)], [("1", rs.Fixed(1))],
    [(True, rs.Fixed(1))], Junk()],
    edge=[[(1e308, rs.Fixed(1)), (1e308, rs.Fixed(2))], [(0, rs.Fixed(1)), (1, rs.Fixed(2))],
          ((1, rs.Fixed(0)),), [[1, rs.Fixed(1)]], [(5e-324, rs.Fixed(1))]])

DEPENDENCIES = Values("list (or dict) of service names, services or clients", bad=[
    "db", None, 5, [3], [None], [""], ["a", "a"], [Junk()], {1: "x"}, {"": "x"}, Junk()],
    edge=[[], ["nope"], {"d": "x"}, ("x", "y")])

KEY = Values("None, a hashable value, or a function of a random.Random", bad=[
    [1], {"a": 1}, {1}, np.array([1])],
    edge=[None, "k", 1, (1, 2), lambda rng: rng.randrange(3), NAN])

PROFILE = Values("rate > 0 in requests per second, or Constant/Ramp/Step/Spike", bad=[
    "fast", None, True, -1, 0, NAN, INF, rs.Fixed(1), [10], Junk(), -INF, 10 ** 400],
    edge=[rs.Ramp(0, 10, 1), rs.Step(1, 5, 0.5), rs.Spike(1, 20, 0.2, 0.1), 5e-324, 1e6, np.float64(10)])

RNG_EDGE = [random.Random(1), random.SystemRandom()]
#: An rng a method draws from: a random.Random (or anything with its methods).
RNG = Values("random.Random", bad=[None, "rng", 1, True, Junk(), [random.Random(1)]], edge=RNG_EDGE)
#: What Distribution.samples insists on: a random.Random.
STRICT_RNG = Values("random.Random", bad=[None, "rng", 1, True, Junk(), random, np.random.default_rng(1)],
                    edge=RNG_EDGE)


def dist_or_number(number_means, bad=()):
    """A Distribution, or a number read as Fixed (>= 0) or Exponential (> 0)."""
    num = Num(0.0, low_open=number_means == "exponential")
    return Values(f"Distribution or {num.what}",
                  bad=num.bad() + [rs.Constant(1), "Fixed(1)", rs.Fixed] + list(bad),
                  edge=num.edge() + [rs.Fixed(0), rs.Exponential(1e308), rs.LogNormal(1, 3),
                                     rs.Mixture.slow_tail(0, 1e300, 0.5), rs.Weibull(1, 0.3)])


def supported_dist(*classes):
    examples = {rs.Fixed: [rs.Fixed(0), rs.Fixed(1)], rs.Exponential: [rs.Exponential(1), rs.Exponential(1e300)],
                rs.Uniform: [rs.Uniform(0, 1), rs.Uniform(1, 1)],
                rs.LogNormal: [rs.LogNormal(1, 0.5), rs.LogNormal(1e-300, 3)],
                rs.Mixture: [rs.Mixture.slow_tail(0.01, 1, 0.01)], rs.Weibull: [rs.Weibull(1, 2)]}
    unsupported = [x for c, xs in examples.items() if c not in classes for x in xs[:1]]
    return Values(" or ".join(c.__name__ for c in classes), bad=[None, "x", 1.0, Junk(), rs.Constant(1)] + unsupported,
                  edge=[x for c in classes for x in examples[c]])


def index(length):
    return Values(f"index into {length} items", bad=[
        "0", 0.0, 1.5, True, None, length, -length - 1, 10 ** 30, -10 ** 30, NAN, np.float64(0), [0]],
        edge=[0, -1, length - 1, -length, np.int64(0)])


# --- entries ------------------------------------------------------------------------------------
@dataclass
class P:
    """A parameter: its kind, one valid value, and another word its refusal may say instead of the
    parameter's name (``Slider.check(value)`` speaks of the slider, ``results.client(name)`` of a client)."""
    kind: Kind
    valid: object = None
    says: str | None = None


@dataclass
class Entry:
    key: str                                   # the public callable, e.g. "CircuitBreaker.record"
    get: object                                # ctx -> the callable
    params: dict                               # name -> P
    setup: object = dict                       # () -> ctx, fresh state for each call
    variant: str = ""                          # several baselines for one callable

    @property
    def id(self) -> str:
        return self.key + (f"[{self.variant}]" if self.variant else "")

    def call(self, values: dict):
        """Call with ``values`` (name -> value; Lazy ones made from fresh state)."""
        ctx = self.setup()
        fn = self.get(ctx)
        values = {name: resolve(v, ctx) for name, v in values.items()}
        args, kwargs = [], {}
        params = list(inspect.signature(fn).parameters.values())
        star = next((i for i, p in enumerate(params) if p.kind is p.VAR_POSITIONAL), None)
        for i, p in enumerate(params):
            if p.name not in values:
                if star is not None and i < star:
                    raise AssertionError(f"{self.id}: {p.name} comes before *{params[star].name}: give it")
                continue
            v = values[p.name]
            if p.kind is p.VAR_POSITIONAL:
                args.extend(v)
            elif p.kind is p.POSITIONAL_ONLY or (star is not None and i < star):
                args.append(v)
            else:
                kwargs[p.name] = v
        return fn(*args, **kwargs)

    def baseline(self) -> dict:
        return {name: p.valid for name, p in self.params.items()}


TABLE: list[Entry] = []


def entry(key, get, setup=dict, /, *, variant="", **params):
    """Add an entry: ``param=(kind, valid)`` or ``param=P(kind, valid, says=...)`` for each parameter."""
    params = {k: (v if isinstance(v, P) else P(*v)) for k, v in params.items()}
    TABLE.append(Entry(key, get, params, setup, variant))


def LOG():
    """log_limit and on_event, as every policy takes them."""
    return dict(log_limit=P(Optional(Int(0)), DEFAULT_LIMIT), on_event=P(Func(optional=True), None))


def other_world(make):
    """A policy already driven by another World."""
    def build(ctx):
        policy = make()
        pol.claim(rs.World(99), policy=policy)
        return policy
    return Lazy(f"{make().__class__.__name__} of another World", build)


# --- core: distributions -----------------------------------------------------------------------
entry("Fixed", lambda c: rs.Fixed, value=(nonneg(), 1.0))
entry("Exponential", lambda c: rs.Exponential, mean=(pos(), 1.0))
entry("LogNormal", lambda c: rs.LogNormal, median=(pos(), 1.0), sigma=(pos(), 0.5))
entry("LogNormal.from_percentiles", lambda c: rs.LogNormal.from_percentiles, median=(pos(), 1.0),
      p99=(Num(1.0, low_open=True), 3.0))
entry("LogNormal.quantile", lambda c: rs.LogNormal(1.0, 0.5).quantile,
      q=(Num(0, 1, low_open=True, high_open=True), 0.5))
entry("Uniform", lambda c: rs.Uniform, low=(nonneg(), 1.0), high=(Num(1.0), 2.0))
entry("Weibull", lambda c: rs.Weibull, scale=(pos(), 1.0), shape=(pos(), 1.5))
entry("Mixture", lambda c: rs.Mixture, parts=(PARTS, [(0.9, rs.Fixed(0.01)), (0.1, rs.Fixed(1.0))]))
entry("Mixture.slow_tail", lambda c: rs.Mixture.slow_tail, fast=(nonneg(), 0.01), slow=(nonneg(), 1.0),
      p_slow=(prob(), 0.01))
_DISTS = {"Fixed": rs.Fixed(1.0), "Exponential": rs.Exponential(1.0), "LogNormal": rs.LogNormal(1.0, 0.5),
          "Uniform": rs.Uniform(0.0, 1.0), "Weibull": rs.Weibull(1.0, 1.5),
          "Mixture": rs.Mixture([(0.5, rs.Fixed(0.1)), (0.5, rs.Exponential(1.0))])}
for _name, _d in _DISTS.items():
    entry(f"{_name}.samples", lambda c, d=_d: d.samples, rng=(STRICT_RNG, random.Random(1)),
          n=(Int(0, 10 ** 7, cap=True), 3))
    if _name != "Fixed":      # Fixed.sample never draws: exempt below
        entry(f"{_name}.sample", lambda c, d=_d: d.sample, rng=(RNG, random.Random(1)))
entry("as_distribution", lambda c: distributions.as_distribution, name=(Text(empty=False), "latency"),
      value=P(dist_or_number("fixed"), 0.5, says="latency"), number_means=(Choice(["fixed", "exponential"]), "fixed"))

# --- core: profiles -----------------------------------------------------------------------------
entry("Constant", lambda c: rs.Constant, rate=(pos(), 10.0))
entry("Ramp", lambda c: rs.Ramp, start=(nonneg(), 1.0), end=(nonneg(), 10.0), duration=(pos(), 5.0))
entry("Step", lambda c: rs.Step, before=(nonneg(), 1.0), after=(nonneg(), 10.0), at=(nonneg(), 5.0))
entry("Spike", lambda c: rs.Spike, base=(nonneg(), 1.0), peak_rate=(Num(1.0, low_open=True), 10.0),
      at=(nonneg(), 5.0), duration=(pos(), 1.0))

# --- core: theory -------------------------------------------------------------------------------
T = theory
entry("theory.availability", lambda c: T.availability, mttf=(pos(), 100.0), mttr=(nonneg(), 1.0))
entry("theory.availability_sd", lambda c: T.availability_sd, mttf=(pos(), 100.0), mttr=(pos(), 1.0),
      horizon=(pos(), 1e5))
entry("theory.series", lambda c: T.series,
      availabilities=(VarArgs(prob(), (0.9, 0.99), list_hint=True), VarArgs.Args((0.9, 0.99))))
entry("theory.parallel", lambda c: T.parallel,
      availabilities=(VarArgs(prob(), (0.9, 0.99), list_hint=True), VarArgs.Args((0.9, 0.99))))
entry("theory.replicas_availability", lambda c: T.replicas_availability, n=(Int(1), 3), mttf=(pos(), 100.0),
      mttr=(pos(), 1.0), crews=(Optional(Int(1)), None))
entry("theory.replicas_availability", lambda c: T.replicas_availability, variant="crews",
      n=(Int(1, T.MAX_STATES, cap=True), 3),
      mttf=(pos(), 100.0), mttr=(pos(), 1.0), crews=(Optional(Int(1)), 1))
entry("theory.nines", lambda c: T.nines, a=(prob(), 0.999))
entry("theory.downtime", lambda c: T.downtime, a=(prob(), 0.999),
      period=(Choice(["year", "quarter", "month", "week", "day", "hour"]), "year"),
      calendar=(Choice(list(T.CALENDARS)), "average"))
entry("theory.error_budget", lambda c: T.error_budget, slo=(prob(), 0.999), requests=(Int(0), 10 ** 6))
entry("theory.fanout_slow_share", lambda c: T.fanout_slow_share, p_slow=(prob(), 0.01), n=(Int(1), 10))
entry("theory.mm1_response_time", lambda c: T.mm1_response_time,
      arrival_rate=(Num(0.0, 2.0, low_open=True, high_open=True), 1.0), service_rate=(Num(1.0, low_open=True), 2.0))
_MMC = dict(servers=(Int(2, T.MAX_STATES), 2), arrival_rate=(Num(0.0, 2.0, low_open=True, high_open=True), 1.0),
            service_rate=(Num(0.5, low_open=True), 1.0))
entry("theory.erlang_c", lambda c: T.erlang_c, **_MMC)
entry("theory.mmc_response_time", lambda c: T.mmc_response_time, **_MMC)
entry("theory.mmc_tail", lambda c: T.mmc_tail, t=(nonneg(), 1.0), **_MMC)
entry("theory.mmc_quantile", lambda c: T.mmc_quantile, q=(Num(0, 1, low_open=True, high_open=True), 0.9), **_MMC)
entry("theory.ttl_hit_ratio", lambda c: T.ttl_hit_ratio, rate=(pos(), 1.0), ttl=(pos(), 9.0))
entry("theory.stale_if_error_failing_time", lambda c: T.stale_if_error_failing_time, ttl=(pos(), 60.0),
      hard_ttl=(Num(60.0), 300.0), outage_s=(nonneg(), 400.0))
entry("theory.littles_law", lambda c: T.littles_law, arrival_rate=(nonneg(), 10.0), mean_time=(nonneg(), 0.1))
entry("theory.mttf_for", lambda c: T.mttf_for, availability=(Num(0, 1, low_open=True, high_open=True), 0.99),
      mttr=(pos(), 1.0))
entry("theory.chain_availability_sd", lambda c: T.chain_availability_sd, n=(Int(1), 3), availability=(prob(), 0.99),
      cycles=(Int(1), 100))
entry("theory.share_sd", lambda c: T.share_sd, p=(prob(), 0.5), n=(Int(1), 100))
entry("theory.quantile_sd", lambda c: T.quantile_sd, p=(prob(), 0.99), n=(Int(1), 1000), density=(pos(), 2.0))
entry("theory.within_sampling_error", lambda c: T.within_sampling_error, measured=(prob(), 0.5),
      expected=(prob(), 0.5), n=(Int(1), 100), sds=(pos(), 4.0))
entry("theory.binomial_tail", lambda c: T.binomial_tail, n=(Int(0), 10), p=(prob(), 0.5), k=(Int(0), 3))
entry("theory.trials_until_run", lambda c: T.trials_until_run, p=(Num(0, 1, low_open=True), 0.5), k=(Int(1), 3))
for _f in ("retry_availability", "expected_attempts", "attempts_variance"):
    entry(f"theory.{_f}", lambda c, f=_f: getattr(T, f), p=(prob(), 0.1), attempts=(Int(1), 3))
_SURV = supported_dist(rs.Fixed, rs.Exponential, rs.Uniform, rs.LogNormal, rs.Mixture)
_CAPPED = supported_dist(rs.Fixed, rs.Exponential, rs.LogNormal, rs.Mixture)
entry("theory.survival", lambda c: T.survival, dist=(_SURV, rs.Exponential(1.0)), t=(Num(allow_inf=True), 1.0))
entry("theory.capped_mean", lambda c: T.capped_mean, dist=(_CAPPED, rs.Exponential(1.0)),
      limit=(nonneg(allow_inf=True), 1.0))
entry("theory.hedged_survival", lambda c: T.hedged_survival, dist=(_SURV, rs.Exponential(1.0)),
      delay=(nonneg(allow_inf=True), 0.5), t=(Num(allow_inf=True), 1.0))
entry("theory.quantile", lambda c: T.quantile, dist=(_SURV, rs.Exponential(1.0)),
      p=(Num(0, 100, low_open=True, high_open=True), 99.0))
entry("theory.hedged_quantile", lambda c: T.hedged_quantile, dist=(_SURV, rs.Exponential(1.0)),
      delay=(nonneg(allow_inf=True), 0.5), p=(Num(0, 100, low_open=True, high_open=True), 99.0))


# --- policies -----------------------------------------------------------------------------------
def at10(make, warm):
    """Fresh state: a policy from ``make()`` whose clock has been driven to 10 by ``warm(policy)``."""
    def setup():
        p = make()
        ctx = {"p": p}
        extra = warm(p)
        if isinstance(extra, dict):
            ctx.update(extra)
        return ctx
    return setup


def _tick_breaker(b):
    b.state(10.0)
    spent = b.allow(10.0)
    b.record(10.0, True, 0.0, permit=spent)
    return {"permit": b.allow(10.0), "spent": spent}


def _breaker():
    return pol.CircuitBreaker(consecutive_failures=3)


PERMIT = Values("a Permit this breaker's allow() returned, or None", bad=[
    True, 1, "p", Junk(), Lazy("a Permit of another breaker", lambda c: _breaker().allow(0.0)),
    Lazy("a Permit already recorded", lambda c: c["spent"])],
    edge=[None])

entry("Timeout", lambda c: pol.Timeout, per_attempt=(pos(allow_inf=True), 1.0), **LOG())
_timeout = at10(lambda: pol.Timeout(1.0), lambda t: t.expired(0.0, 10.0))
entry("Timeout.expires_at", lambda c: c["p"].expires_at, _timeout, start=(finite(), 10.0))
entry("Timeout.expired", lambda c: c["p"].expired, _timeout, start=(finite(), 10.0), now=(Time(), 12.0))
entry("Timeout.record", lambda c: c["p"].record, _timeout, now=(Time(), 12.0), timed_out=(Bool(), True))
entry("Deadline", lambda c: pol.Deadline, budget=(pos(allow_inf=True), 5.0), **LOG())
entry("Deadline.start", lambda c: c["p"].start, at10(lambda: pol.Deadline(5.0), lambda d: d.start(10.0)),
      now=(Time(), 12.0))
entry("Countdown", lambda c: pol.Countdown, started=(finite(), 10.0), at=(Num(10.0, allow_inf=True), 20.0), **LOG())
_countdown = at10(lambda: pol.Countdown(10.0, 20.0), lambda c: None)
entry("Countdown.remaining", lambda c: c["p"].remaining, _countdown, now=(Time(), 12.0))
entry("Countdown.expired", lambda c: c["p"].expired, _countdown, now=(Time(), 12.0))
entry("Countdown.attempt_timeout", lambda c: c["p"].attempt_timeout, _countdown, now=(Time(), 12.0),
      per_attempt=(Num(0.0, low_open=True, allow_inf=True, edge=[pol.Timeout(1.0), pol.Timeout(INF)]), 1.0))
entry("Countdown.child", lambda c: c["p"].child, _countdown, now=(Time(), 12.0), reserve=(nonneg(), 1.0))

_BACKOFFS = {
    "Backoff": (pol.Backoff, {}),
    "ConstantBackoff": (pol.Constant, dict(base=(nonneg(), 0.5))),
    "ExponentialBackoff": (pol.Exponential, dict(base=(pos(), 0.5), cap=(Num(0.5), 10.0), multiplier=(Num(1.0), 2.0))),
    "FullJitter": (pol.FullJitter, dict(base=(pos(), 0.5), cap=(Num(0.5), 10.0))),
    "EqualJitter": (pol.EqualJitter, dict(base=(pos(), 0.5), cap=(Num(0.5), 10.0))),
    "DecorrelatedJitter": (pol.DecorrelatedJitter, dict(base=(pos(), 0.5), cap=(Num(0.5), 10.0))),
}
for _name, (_cls, _params) in _BACKOFFS.items():
    entry(_name, lambda c, cls=_cls: cls, **_params, **LOG())
    if _name == "Backoff":
        continue
    _make = (lambda cls=_cls, ps=_params: cls(**{k: v[1] for k, v in ps.items()}))
    _jitter = _name in ("FullJitter", "EqualJitter", "DecorrelatedJitter")
    entry(f"{_name}.delay", lambda c, make=_make: make().delay, attempt=(Int(1), 2),
          rng=(RNG if _jitter else Any("a schedule without jitter never draws"), random.Random(1)),
          previous=(Optional(nonneg()), 0.5))
    if _name != "ConstantBackoff":
        entry(f"{_name}.ceiling", lambda c, make=_make: make().ceiling, attempt=(Int(1), 2))


def _retry_policy():
    return pol.RetryPolicy(3, pol.FullJitter(0.1, 2.0))


_retry = at10(_retry_policy, lambda r: r.should_retry(1, "error", now=10.0))
# (a backoff driven by another World is fine here: the Client that claims the policy refuses it)
BACKOFF = Obj("backoff schedule", Lazy("FullJitter(0.1, 2)", lambda c: pol.FullJitter(0.1, 2.0)),
              extra=[rs.Constant(1), pol.FullJitter, lambda n: 1.0])
entry("RetryPolicy", lambda c: pol.RetryPolicy, max_attempts=(Int(1), 3), backoff=(BACKOFF, BACKOFF.valid),
      retry_on=(REASONS_SET, {"error", "timeout"}), **LOG())
entry("RetryPolicy.should_retry", lambda c: c["p"].should_retry, _retry, attempt=(Int(1), 1), reason=(REASON, "error"),
      idempotent=(Bool(), True), now=(Optional(Time()), 12.0))
entry("RetryPolicy.next_delay", lambda c: c["p"].next_delay, _retry, attempt=(Int(1), 1), rng=(RNG, random.Random(1)),
      previous=(Optional(nonneg()), 0.5), retry_after=(Optional(nonneg()), 0.1))
entry("RetryPolicy.decide", lambda c: c["p"].decide, _retry, now=(Time(), 12.0), attempt=(Int(1), 1),
      reason=(REASON, "error"), rng=(RNG, random.Random(1)), previous=(Optional(nonneg()), 0.5),
      idempotent=(Bool(), True), retry_after=(Optional(nonneg()), 0.1),
      remaining=(Optional(Num(allow_inf=True)), 5.0))

entry("RetryBudget", lambda c: pol.RetryBudget, ratio=(prob(), 0.1), window=(pos(), 10.0),
      min_per_second=(nonneg(), 1.0), **LOG())
_budget = at10(lambda: pol.RetryBudget(), lambda b: b.record_request(10.0))
for _m in ("record_request", "record_retry", "allowance", "can_retry"):
    entry(f"RetryBudget.{_m}", lambda c, m=_m: getattr(c["p"], m), _budget, now=(Time(), 12.0))


def _refusing_throttle(t):
    for i in range(1, 11):             # ten refusals: the throttle now rejects with p = 10/11, so it draws
        t.record(float(i), False)


entry("AdaptiveThrottle", lambda c: pol.AdaptiveThrottle, k=(Num(1.0), 2.0), window=(pos(), 120.0), **LOG())
_throttle = at10(lambda: pol.AdaptiveThrottle(), _refusing_throttle)
entry("AdaptiveThrottle.allow", lambda c: c["p"].allow, _throttle, now=(Time(), 12.0), rng=(RNG, random.Random(1)))
entry("AdaptiveThrottle.record", lambda c: c["p"].record, _throttle, now=(Time(), 12.0), accepted=(Bool(), True))
entry("AdaptiveThrottle.cancel", lambda c: c["p"].cancel, _throttle, now=(Time(), 12.0))
entry("AdaptiveThrottle.rejection_probability", lambda c: c["p"].rejection_probability, _throttle, now=(Time(), 12.0))

entry("CircuitBreaker", lambda c: pol.CircuitBreaker,
      consecutive_failures=(Optional(Int(1)), 3), failure_rate=(Optional(Num(0, 1, low_open=True)), 0.5),
      slow_call_rate=(Num(0, 1, low_open=True), 0.5), slow_call_duration=(pos(), 1.0),
      window=(Int(5), 20), window_type=(Choice(["count", "time"]), "count"), min_calls=(Int(1, 20), 5),
      open_for=(pos(), 30.0), half_open_probes=(Int(1), 1), start=(finite(), 0.0), **LOG())
entry("CircuitBreaker", lambda c: pol.CircuitBreaker, variant="time window",
      failure_rate=(Num(0, 1, low_open=True), 0.5), window=(pos(), 20.0),
      window_type=(Choice(["count", "time"]), "time"),
      min_calls=(Int(1), 5))
_breaker_at10 = at10(_breaker, _tick_breaker)
for _m in ("state", "allow", "rates"):
    entry(f"CircuitBreaker.{_m}", lambda c, m=_m: getattr(c["p"], m), _breaker_at10, now=(Time(), 12.0))
entry("CircuitBreaker.record", lambda c: c["p"].record, _breaker_at10, now=(Time(), 12.0), success=(Bool(), True),
      duration=(nonneg(), 0.5), permit=(PERMIT, Lazy("its permit", lambda c: c["permit"])))
entry("CircuitBreaker.cancel", lambda c: c["p"].cancel, _breaker_at10, now=(Time(), 12.0),
      permit=(PERMIT, Lazy("its permit", lambda c: c["permit"])))

entry("Bulkhead", lambda c: pol.Bulkhead, max_concurrent=(Int(1), 2), max_wait=(nonneg(), 1.0), **LOG())


def _full_with_a_waiter(b):
    b.try_acquire(10.0)
    b.enqueue(10.0)


_bulkhead = at10(lambda: pol.Bulkhead(1, max_wait=5.0), _full_with_a_waiter)
for _m in ("try_acquire", "enqueue", "give_up", "release"):
    entry(f"Bulkhead.{_m}", lambda c, m=_m: getattr(c["p"], m), _bulkhead, now=(Time(), 12.0))
entry("Bulkhead.leave", lambda c: c["p"].leave, _bulkhead,
      # 5 and 11: no waiter was enqueued then; a valid value is the time one was enqueued at
      enqueued_at=(Num(bad=[5.0, 11.0], only_edge=[10, np.float64(10.0), Fraction(10)]), 10.0))

entry("TokenBucket", lambda c: pol.TokenBucket, rate=(pos(), 1.0), burst=(Num(1.0), 5.0), **LOG())
_bucket = at10(lambda: pol.TokenBucket(1.0, 5.0), lambda b: b.available(10.0))
for _m in ("try_take", "wait_time"):
    entry(f"TokenBucket.{_m}", lambda c, m=_m: getattr(c["p"], m), _bucket, now=(Time(), 12.0),
          tokens=(Num(0.0, 5.0, low_open=True), 1))
entry("TokenBucket.available", lambda c: c["p"].available, _bucket, now=(Time(), 12.0))

entry("LoadShedder", lambda c: pol.LoadShedder, max_queue=(Optional(Int(0)), 10),
      max_queue_delay=(Optional(nonneg()), 1.0), **LOG())
entry("LoadShedder.should_shed", lambda c: c["p"].should_shed,
      at10(lambda: pol.LoadShedder(10, 1.0), lambda s: s.should_shed(10.0, 0)),
      now=(Time(), 12.0), queue_length=(Int(0), 3), oldest_wait=(nonneg(), 0.5))

entry("HedgePolicy", lambda c: pol.HedgePolicy, delay=(nonneg(allow_inf=True), 0.1), max_hedges=(Int(0), 1), **LOG())
entry("HedgePolicy.from_latencies", lambda c: pol.HedgePolicy.from_latencies, latencies=(DURATIONS, [0.1, 0.2, 0.3]),
      p=(Num(0, 100), 95), max_hedges=(Int(0), 1), **LOG())
_hedge = at10(lambda: pol.HedgePolicy(0.1, 2), lambda h: h.should_hedge(0.0, 10.0, 0))
entry("HedgePolicy.hedge_at", lambda c: c["p"].hedge_at, _hedge, start=(finite(), 10.0), sent=(Int(0), 0))
entry("HedgePolicy.should_hedge", lambda c: c["p"].should_hedge, _hedge, start=(finite(), 10.0), now=(Time(), 12.0),
      sent=(Int(0), 0))
entry("HedgePolicy.record_hedge", lambda c: c["p"].record_hedge, _hedge, now=(Time(), 12.0))
entry("HedgePolicy.record_winner", lambda c: c["p"].record_winner, _hedge, now=(Time(), 12.0), hedge=(Bool(), True))
entry("delay_from_percentile", lambda c: pol.delay_from_percentile, latencies=(DURATIONS, [0.1, 0.2, 0.3]),
      p=(Num(0, 100), 95))

# --- policies for reads (Part III) -------------------------------------------------------------------
entry("Cache", lambda c: pol.Cache, ttl=(Optional(pos()), 60.0), hard_ttl=(Optional(Num(60.0)), 600.0),
      stale_while_revalidate=(nonneg(), 10.0), negative_ttl=(nonneg(), 5.0),
      capacity=(Int(1, pol.cache.MAX_CAPACITY), 100), coalesce=(Bool(), True), stale_on=(REASONS_SET, {"down"}))
entry("Cache.from_cache_control", lambda c: pol.Cache.from_cache_control,
      header=(Values("a Cache-Control header with max-age", bad=[
          None, 5, "", "stale-if-error=5", "max-age=x", "max-age=-1", "max-age=1.5", ["max-age=5"], Junk()],
          edge=["max-age=0, stale-if-error=5", "max-age=5", "no-cache, max-age=5", "max-age=10**400"]),
          "max-age=60, stale-if-error=600"))


def _cache_at10(cache):
    cache.lookup("a", 10.0)
    return {}


_cache = at10(lambda: pol.Cache(60.0, hard_ttl=600.0, negative_ttl=5.0), _cache_at10)
_KEY = Values("a hashable key", bad=[["a"], {"a": 1}, {1}], edge=["a", 1, None, (1, 2), NAN])
entry("Cache.lookup", lambda c: c["p"].lookup, _cache, key=(_KEY, "a"), now=(Time(), 12.0))
entry("Cache.fill", lambda c: c["p"].fill, _cache,
      key=(Values("a key with a fetch outstanding", bad=["b", ["a"]]), "a"),
      value=(Any("any value is cached as it is"), "v"), now=(Time(), 12.0))
entry("Cache.store", lambda c: c["p"].store, _cache,
      key=(Values("a key with a fetch outstanding", bad=["b", ["a"]]), "a"),
      value=(Any("any value is cached as it is"), "v"), now=(Time(), 12.0))
entry("Cache.fail", lambda c: c["p"].fail, _cache,
      key=(Values("a key with a fetch outstanding", bad=["b", ["a"]]), "a"), reason=(REASON, "error"),
      now=(Time(), 12.0))
entry("Cache.invalidate", lambda c: c["p"].invalidate, _cache, key=(Values("a hashable key", bad=[["a"]]), "a"))

_STEPS = Values("a list: a primary dependency name, then fallbacks (names or Static)", bad=[
    "recommender", None, 5, [], ["a"], ["a", "a"], ["a", 3], ["a", ""], [pol.Static("x"), "a"], Junk(), [None, "b"]],
    edge=[("a", "b"), ["a", pol.Static("x")], ["a", "b", "c", "d"]])
entry("FallbackChain", lambda c: pol.FallbackChain, steps=(_STEPS, ["a", "b", pol.Static("c")]),
      labels=(Values("None or {step name: label}", bad=[{"z": "x"}, "ab", 5, [("z", "x")]],
                     edge=[None, {}, {"b": "popular"}]), {"b": "popular"}),
      on=(REASONS_SET, {"error", "down"}))
_chain = lambda: {"p": pol.FallbackChain(["a", "b"])}   # noqa: E731
entry("FallbackChain.level", lambda c: c["p"].level, _chain, name=(Choice(["a", "b"]), "b"))
entry("FallbackChain.record", lambda c: c["p"].record, _chain, index=(Int(0, 1), 0),
      reason=(Values("None (answered) or a failure reason", bad=[5, ["error"], True, Junk()],
                     edge=[None, "error", "timout"]), "error"))
entry("Static", lambda c: pol.Static, name=(Text(empty=False), "bestsellers"),
      value=(Any("any value is the answer"), ["a"]))

entry("JobQueue", lambda c: pol.JobQueue, capacity=(Optional(Int(1)), 100),
      backoff=(Obj("Backoff", Lazy("FullJitter(1, 30)", lambda c: pol.FullJitter(1.0, 30.0)), optional=True,
                   extra=[1.0, pol.FullJitter, pol.RetryBudget()]), None),
      max_attempts=(Optional(Int(1)), 5))


def _jobs_at10(q):
    q.submit("j", 10.0)
    q.submit("k", 10.0)
    q.take(10.0)
    return {}


_jobs = at10(lambda: pol.JobQueue(capacity=10), _jobs_at10)
entry("JobQueue.submit", lambda c: c["p"].submit, _jobs,
      job=(Values("a new hashable job id", bad=["j", ["x"], {"x": 1}], edge=["new", 3, (1, 2)]), "new"),
      now=(Time(), 12.0))
entry("JobQueue.take", lambda c: c["p"].take, _jobs, now=(Time(), 12.0))
entry("JobQueue.status", lambda c: c["p"].status, _jobs,
      job=(Values("a job the queue accepted", bad=["nope", ["j"]], edge=["j", "k"]), "j"))
entry("JobQueue.complete", lambda c: c["p"].complete, _jobs,
      job=(Values("a running job", bad=["k", "nope", ["j"]]), "j"), now=(Time(), 12.0))
entry("JobQueue.retry_later", lambda c: c["p"].retry_later, _jobs,
      job=(Values("a running job", bad=["k", "nope", ["j"]]), "j"), now=(Time(), 12.0),
      rng=(RNG, random.Random(1)))

# --- policies for writes (Part IV) ---------------------------------------------------------------------
entry("MessageQueue", lambda c: pol.MessageQueue, visibility_timeout=(Num(0.0, 12 * 3600.0), 30.0),
      max_receives=(Optional(Int(1, 1000)), 5), dead_letter=(Bool(), True))


def _queue_at10(q):
    q.send("m", "body", 10.0)
    q.send("n", "body", 10.0)
    return {"receipt": q.receive(10.0).receipt}


_queue = at10(lambda: pol.MessageQueue(visibility_timeout=30.0), _queue_at10)
_RECEIPT = Values("a receipt from receive()", bad=[("m", 999), "m", ["m"], None, Junk()])
entry("MessageQueue.send", lambda c: c["p"].send, _queue, message_id=(Any("any id: the broker does not dedupe"), "x"),
      body=(Any("any body is carried as it is"), {"a": 1}), now=(Time(), 12.0))
entry("MessageQueue.receive", lambda c: c["p"].receive, _queue, now=(Time(), 12.0))
entry("MessageQueue.ack", lambda c: c["p"].ack, _queue, receipt=(_RECEIPT, Lazy("its receipt", lambda c: c["receipt"])),
      now=(Time(), 12.0))
entry("MessageQueue.extend", lambda c: c["p"].extend, _queue,
      receipt=(_RECEIPT, Lazy("its receipt", lambda c: c["receipt"])), now=(Time(), 12.0),
      timeout=(Num(0.0, 12 * 3600.0), 60.0))
entry("IdempotencyKeys", lambda c: pol.IdempotencyKeys, retention=(Num(0.0, 30 * 86400.0, low_open=True), 3600.0))


def _keys_at10(k):
    k.begin("running", {"amount": 1}, 10.0)
    return {}


_idem = at10(lambda: pol.IdempotencyKeys(), _keys_at10)
_IDEM_KEY = Values("a hashable key, not None", bad=[None, ["k"], {"k": 1}], edge=["k", "x" * 255, 7])
entry("IdempotencyKeys.begin", lambda c: c["p"].begin, _idem, key=(_IDEM_KEY, "new-key"),
      params=(Any("any parameters, compared with =="), {"amount": 1}), now=(Time(), 12.0))
entry("IdempotencyKeys.finish", lambda c: c["p"].finish, _idem,
      key=(Values("a key begun and not finished", bad=["never", None, ["k"]]), "running"),
      response=(Any("any response is stored as it is"), (200, "ok")), now=(Time(), 12.0))
entry("IdempotencyKeys.abandon", lambda c: c["p"].abandon, _idem,
      key=(Values("a key begun and not finished", bad=["never", None, ["k"]]), "running"), now=(Time(), 12.0))

_PAIRS = Values("non-empty list of (long window, short window <= long, burn rate > 0)", bad=[
    [], "pairs", None, 5, [(300, 3600, 14.4)], [(3600, 300)], [(3600, 300, 0)], [(3600, 300, -1)], [(0, 0, 1)],
    [(NAN, 300, 1)], [(3600, 300, "x")], Junk()],
    edge=[[(3600, 3600, 1)], ((3600.0, 300.0, 14.4),), [[3600, 300, 14.4]]])
entry("BurnRateRule", lambda c: pol.BurnRateRule, slo=(Num(0.0, 1.0, low_open=True, high_open=True), 0.999),
      pairs=(_PAIRS, [(3600.0, 300.0, 14.4)]), resolution=(Optional(pos()), 10.0), for_=(nonneg(), 0.0))
entry("ThresholdRule", lambda c: pol.ThresholdRule, threshold=(Num(0.0, 1.0, low_open=True), 0.05),
      window=(pos(), 300.0), for_=(nonneg(), 60.0), min_requests=(Int(1), 10), resolution=(Optional(pos()), 5.0))
_RULES = {"BurnRateRule": lambda: pol.BurnRateRule(0.999, [(3600.0, 300.0, 14.4)], resolution=10.0),
          "ThresholdRule": lambda: pol.ThresholdRule(0.05, 300.0, resolution=5.0)}
for _name, _make in _RULES.items():
    _rule = at10(_make, lambda r: r.record(10.0, False))
    entry(f"{_name}.record", lambda c: c["p"].record, _rule, now=(Time(), 12.0), ok=(Bool(), True))
    entry(f"{_name}.record_counts", lambda c: c["p"].record_counts, _rule, now=(Time(), 12.0), good=(Int(0), 3),
          bad=(Int(0), 1))
    entry(f"{_name}.firing", lambda c: c["p"].firing, _rule, now=(Time(), 12.0))
    entry(f"{_name}.error_ratio", lambda c: c["p"].error_ratio, _rule, now=(Time(), 12.0), window=(pos(), 60.0))

entry("SagaStep", lambda c: pol.SagaStep, name=(Text(empty=False), "payment"),
      kind=(Choice(["compensatable", "pivot", "retriable"]), "pivot"), retries=(Int(0, 10_000), 2))
_SAGA_STEPS = Values("non-empty list of SagaStep: compensatable, then at most one pivot, then retriable", bad=[
    [], None, "steps", pol.SagaStep("a"), [pol.SagaStep("p", "pivot"), pol.SagaStep("c")], [pol.SagaStep("a"), pol.SagaStep("a")],
    [pol.SagaStep("p", "pivot"), pol.SagaStep("q", "pivot")], ["a"], [None], Junk()],
    edge=[[pol.SagaStep("a")], (pol.SagaStep("a"), pol.SagaStep("r", "retriable")), [pol.SagaStep("p", "pivot")]])
entry("Saga", lambda c: pol.Saga, steps=(_SAGA_STEPS, [pol.SagaStep("a"), pol.SagaStep("p", "pivot")]))
_saga = lambda: {"p": pol.Saga([pol.SagaStep("a"), pol.SagaStep("p", "pivot")])}   # noqa: E731
_STATE = Values("a saga state from start()", bad=[None, {}, "state", {"status": "run"}, [1], Junk()])
entry("Saga.next_action", lambda c: c["p"].next_action, _saga, state=(_STATE, Lazy("a new state", lambda c: c["p"].start())))
entry("Saga.record", lambda c: c["p"].record, _saga, state=(_STATE, Lazy("a new state", lambda c: c["p"].start())),
      ok=(Bool(), False), reason=(REASON, "error"))

#: Every policy class that keeps state, with a valid instance (claim(name=...) is the same for all).
_STATEFUL = {"Timeout": lambda: pol.Timeout(1.0), "Deadline": lambda: pol.Deadline(1.0),
             "Backoff": pol.Backoff, "ConstantBackoff": lambda: pol.Constant(0.1),
             "ExponentialBackoff": lambda: pol.Exponential(0.1, 1.0), "FullJitter": lambda: pol.FullJitter(0.1, 1.0),
             "EqualJitter": lambda: pol.EqualJitter(0.1, 1.0),
             "DecorrelatedJitter": lambda: pol.DecorrelatedJitter(0.1, 1.0),
             "RetryPolicy": _retry_policy, "RetryBudget": pol.RetryBudget, "AdaptiveThrottle": pol.AdaptiveThrottle,
             "CircuitBreaker": _breaker, "Bulkhead": lambda: pol.Bulkhead(1),
             "TokenBucket": lambda: pol.TokenBucket(1, 1),
             "LoadShedder": pol.LoadShedder, "HedgePolicy": lambda: pol.HedgePolicy(0.1),
             "Cache": lambda: pol.Cache(60.0), "JobQueue": pol.JobQueue, "MessageQueue": pol.MessageQueue,
             "IdempotencyKeys": pol.IdempotencyKeys, "ThresholdRule": _RULES["ThresholdRule"],
             "BurnRateRule": _RULES["BurnRateRule"], "Stateful": pol.Stateful}
for _name, _make in _STATEFUL.items():
    if _name not in ("Stateful", "RetryPolicy"):     # the others inherit Stateful.claim unchanged (EXEMPT_CALLABLES)
        continue
    entry(f"{_name}.claim", lambda c, make=_make: make().claim,
          owner=(Any("any object, held by identity: that is the point of an owner"), "owner"),
          name=(Optional(Text(empty=False)), "breaker"))


# --- sim ------------------------------------------------------------------------------------------
def sim():
    """Fresh state for the simulator's constructors: a world with a service, and another world."""
    w, other = rs.World(1), rs.World(2)
    return {"world": w, "svc": rs.Service(w, "api"), "svc2": rs.Service(w, "db"),
            "other": other, "far": rs.Service(other, "far")}


WORLD = Obj("World", Lazy("world", lambda c: c["world"]), extra=[Lazy("a Service", lambda c: c["svc"])])
WORLD_OF_TARGET = Obj("World", Lazy("world", lambda c: c["world"]),
                      extra=[Lazy("a Service", lambda c: c["svc"]), Lazy("another World", lambda c: c["other"])])
SERVICE = Obj("Service", Lazy("service", lambda c: c["svc"]), extra=[Lazy("a World", lambda c: c["world"])])
TARGET = Obj("Service or client", Lazy("service", lambda c: c["svc"]),
             extra=[Lazy("a Service of another World", lambda c: c["far"]), Lazy("a World", lambda c: c["world"])])


def policy(what, make, *, extra=()):
    """An optional policy of class ``what``: bad are one driven by another World, and ``extra``
    look-alikes (each made fresh for each call, so one wrongly accepted cannot spoil the next)."""
    fresh = [Lazy(repr(x), lambda c, x=x: copy.deepcopy(x)) for x in extra]
    return Obj(what, Lazy(what, lambda c: make()), optional=True, extra=[other_world(make), *fresh])


entry("World", lambda c: rs.World, seed=(Int(0), 1))
_world_run = lambda: {"world": _small_world()}   # noqa: E731


def _small_world():
    w = rs.World(1)
    rs.OpenLoop(w, rs.Service(w, "api", latency=0.01), 10, duration=1.0)
    return w


entry("World.rng", lambda c: c["world"].rng, sim, name=(Text(), "stream"))
entry("World.service", lambda c: c["world"].service, sim, name=(Choice(["api", "db"]), "api"))
entry("World.run", lambda c: c["world"].run, _world_run, until=(pos(), 2.0))

entry("Service", lambda c: rs.Service, sim, world=(WORLD, WORLD.valid), name=(Text(empty=False, bad=["api"]), "web"),
      capacity=(Int(1), 2), latency=(dist_or_number("fixed"), 0.01), error_rate=(prob(), 0.1),
      dependencies=(DEPENDENCIES, ["api"]), handler=(Func(optional=True), None), queue_limit=(Optional(Int(0)), 10),
      shedder=(policy("LoadShedder", lambda: pol.LoadShedder(5), extra=[pol.TokenBucket(1, 1)]), None),
      rate_limit=(policy("TokenBucket", lambda: pol.TokenBucket(10, 10), extra=[pol.LoadShedder(5)]), None))
entry("Request", lambda c: rs.Request, start=(nonneg(), 0.0), route=(Text(), "pay"), key=(KEY, "order-1"))
entry("Request.child", lambda c: rs.Request(0.0, "pay").child, deadline=(Num(allow_inf=True), 5.0))
entry("Request.adopt", lambda c: rs.Request(0.0, "pay").adopt,
      sub=(Obj("Request", Lazy("a Request", lambda c: rs.Request(0.0, "pay"))),
           Lazy("a Request", lambda c: rs.Request(0.0, "pay"))))
entry("ServiceError", lambda c: rs.ServiceError, service=(Text(empty=False), "db"), reason=(REASON, "error"))

_TIMEOUT = Num(0.0, low_open=True, allow_inf=True, edge=[Lazy("Timeout(1)", lambda c: pol.Timeout(1.0))],
               bad=[other_world(lambda: pol.Timeout(1.0))])
_DEADLINE = Num(0.0, low_open=True, allow_inf=True, edge=[Lazy("Deadline(5)", lambda c: pol.Deadline(5.0))],
                bad=[other_world(lambda: pol.Deadline(5.0))])
entry("Client", lambda c: rs.Client, sim, world=(WORLD_OF_TARGET, WORLD.valid), target=(TARGET, TARGET.valid),
      name=(Text(empty=False, bad=["api"]), "c"), timeout=(Optional(_TIMEOUT), 1.0),
      deadline=(Optional(_DEADLINE), 5.0),
      retry=(policy("RetryPolicy", _retry_policy, extra=[pol.FullJitter(0.1, 1.0)]), None),
      budget=(policy("RetryBudget", pol.RetryBudget, extra=[pol.AdaptiveThrottle()]), None),
      throttle=(policy("AdaptiveThrottle", pol.AdaptiveThrottle, extra=[pol.RetryBudget()]), None),
      breaker=(policy("CircuitBreaker", _breaker, extra=[pol.Bulkhead(1), pol.TokenBucket(1, 1)]), None),
      bulkhead=(policy("Bulkhead", lambda: pol.Bulkhead(2), extra=[_breaker()]), None),
      hedge=(policy("HedgePolicy", lambda: pol.HedgePolicy(0.1), extra=[pol.Timeout(1.0)]), None),
      idempotent=(Bool(), True), idempotency_key=(Bool(), False),
      rate_limit=(policy("TokenBucket", lambda: pol.TokenBucket(10, 10), extra=[pol.LoadShedder(5)]), None))

entry("RepairCrew", lambda c: rs.RepairCrew, sim, world=(WORLD, WORLD.valid), size=(Int(1), 1))
_CREW = Obj("RepairCrew", Lazy("a RepairCrew", lambda c: rs.RepairCrew(c["world"])), optional=True,
            extra=[Lazy("a RepairCrew of another World", lambda c: rs.RepairCrew(c["other"])), 2])
entry("FailureRepair", lambda c: rs.FailureRepair, sim, service=(SERVICE, SERVICE.valid),
      mttf=(dist_or_number("exponential"), 100.0), mttr=(dist_or_number("exponential"), 1.0), crew=(_CREW, None))
entry("FailureRepair", lambda c: rs.FailureRepair, sim, variant="detect/recover", service=(SERVICE, SERVICE.valid),
      mttf=(dist_or_number("exponential"), 100.0), detect=(Optional(dist_or_number("exponential")), 0.5),
      recover=(dist_or_number("exponential"), 1.0))
_W = [(1.0, 2.0)]
entry("Outage", lambda c: rs.Outage, sim, service=(SERVICE, SERVICE.valid), windows=(WINDOWS, _W))
entry("LatencySpike", lambda c: rs.LatencySpike, sim, service=(SERVICE, SERVICE.valid), windows=(WINDOWS, _W),
      extra=(dist_or_number("fixed", bad=[0, rs.Fixed(0)]), 0.5), factor=(Num(1.0), 1.0))
entry("LatencySpike", lambda c: rs.LatencySpike, sim, variant="factor", service=(SERVICE, SERVICE.valid),
      windows=(WINDOWS, _W), extra=(dist_or_number("fixed"), 0.0), factor=(Num(1.0, low_open=True), 3.0))
entry("ErrorBurst", lambda c: rs.ErrorBurst, sim, service=(SERVICE, SERVICE.valid), windows=(WINDOWS, _W),
      error_rate=(prob(), 0.5))
entry("GrayFailure", lambda c: rs.GrayFailure, sim, service=(SERVICE, SERVICE.valid), windows=(WINDOWS, _W),
      slowdown=(Num(1.0), 2.0), error_rate=(prob(), 0.1))
entry("Partition", lambda c: rs.Partition, sim, a=(SERVICE, SERVICE.valid),
      b=(Obj("Service", Lazy("db", lambda c: c["svc2"]),
             extra=[Lazy("the same service as a", lambda c: c["svc"]),
                    Lazy("a Service of another World", lambda c: c["far"])]),
         Lazy("db", lambda c: c["svc2"])),
      windows=(WINDOWS, _W), hang=(nonneg(), 0.5))
_FAULTS = {"Outage": lambda c: rs.Outage(c["svc"], _W),
           "LatencySpike": lambda c: rs.LatencySpike(c["svc"], _W, extra=0.1),
           "ErrorBurst": lambda c: rs.ErrorBurst(c["svc"], _W, error_rate=0.5),
           "GrayFailure": lambda c: rs.GrayFailure(c["svc"], _W, slowdown=2.0),
           "Partition": lambda c: rs.Partition(c["svc"], c["svc2"], _W),
           "FailureRepair": lambda c: rs.FailureRepair(c["svc"], mttf=10.0, mttr=1.0)}
for _name, _make in _FAULTS.items():
    entry(f"{_name}.spans", lambda c, make=_make: make(c).spans, sim, until=(nonneg(), 3.0))

_WORKLOAD = dict(world=(WORLD, WORLD.valid), target=(TARGET, TARGET.valid),
                 name=(Text(empty=False), "checkout"), route=(Optional(Text(empty=False)), "pay"), key=(KEY, None))
entry("OpenLoop", lambda c: rs.OpenLoop, sim, profile=(PROFILE, 10.0), duration=(pos(), 5.0),
      requests=(Optional(Int(1)), None), **_WORKLOAD)
entry("OpenLoop", lambda c: rs.OpenLoop, sim, variant="requests", profile=(PROFILE, 10.0),
      duration=(Optional(pos()), None), requests=(Int(1), 100), **_WORKLOAD)
entry("ClosedLoop", lambda c: rs.ClosedLoop, sim, users=(Int(1, 100_000, cap=True), 3),
      think=(dist_or_number("exponential"), 1.0), duration=(pos(), 5.0), **_WORKLOAD)


CACHE = Obj("Cache", Lazy("Cache(60)", lambda c: pol.Cache(60.0)),
            extra=[other_world(lambda: pol.Cache(60.0)), pol.TokenBucket(1, 1), {"ttl": 60}])
entry("CachedRead", lambda c: rs.CachedRead, sim, world=(WORLD_OF_TARGET, WORLD.valid), cache=(CACHE, CACHE.valid),
      name=(Text(empty=False), "catalog"),
      source=(Obj("Service or client", Lazy("service", lambda c: c["svc"]), optional=True,
                  extra=[Lazy("a Service of another World", lambda c: c["far"]), Lazy("a World", lambda c: c["world"])]),
              Lazy("service", lambda c: c["svc"])))
entry("CachedRead.clear_at", lambda c: rs.CachedRead(c["world"], pol.Cache(60.0)).clear_at, sim,
      times=(VarArgs(nonneg(), (5.0,), at_least_one=False), VarArgs.Args((5.0, 10.0))))
entry("DeferredJobs", lambda c: rs.DeferredJobs, sim, world=(WORLD_OF_TARGET, WORLD.valid),
      queue=(Obj("JobQueue", Lazy("JobQueue()", lambda c: pol.JobQueue()),
                 extra=[other_world(pol.JobQueue), pol.Cache(5.0), 5]), Lazy("JobQueue()", lambda c: pol.JobQueue())),
      target=(TARGET, TARGET.valid), workers=(Int(1, sim_jobs.MAX_WORKERS, cap=True), 2),
      name=(Text(empty=False), "reports"), idempotency_key=(Func(optional=True), None))


# --- metrics --------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def results():
    """One small run's Results: routes "users" and "admin", service "api", client "c" with a breaker."""
    w = rs.World(3)
    api = rs.Service(w, "api", latency=rs.Exponential(0.02), error_rate=0.2, capacity=2)
    rs.Outage(api, [(4.0, 5.0)])
    client = rs.Client(w, api, name="c", breaker=pol.CircuitBreaker(consecutive_failures=3, open_for=1.0))
    rs.OpenLoop(w, client, 20, duration=10.0, name="users")
    rs.OpenLoop(w, api, 5, duration=10.0, name="admin")
    return w.run(12.0)


@lru_cache(maxsize=1)
def _cache_results():
    """A small run with a cache called "cache" and a job queue called "jobs"."""
    w = rs.World(3)
    rs.Service(w, "db", latency=0.01)
    layer = rs.CachedRead(w, pol.Cache(1.0))
    jobs = rs.DeferredJobs(w, pol.JobQueue(), target=w.service("db"))
    front = rs.Service(w, "front", capacity=5, dependencies=["db"],
                       handler=lambda svc, req: layer.read(req, lambda sub: svc.ask("db", sub)))
    rs.OpenLoop(w, front, 10, duration=5.0, key=lambda rng: rng.randrange(3))
    rs.OpenLoop(w, rs.Service(w, "export", handler=lambda svc, req: jobs.submit(req)), 2, duration=5.0, name="x")
    return w.run(6.0)


def _r(c):
    return results()


_N = len(results())
entry("Results.between", lambda c: _r(c).between, t0=(Num(0, 12), 2.0), t1=(Num(2, 12, low_open=True), 5.0))
entry("Results.only", lambda c: _r(c).only,
      routes=(VarArgs(Choice(["users", "admin"]), ("users",), list_hint=True), VarArgs.Args(("users",))))
entry("Results.time_availability", lambda c: _r(c).time_availability,
      services=P(VarArgs(Choice(["api"]), ("api",), list_hint=True), VarArgs.Args(("api",)), says="service"),
      need=(Choice(["all", "any"]), "all"))
entry("Results.calls_per_request", lambda c: _r(c).calls_per_request,
      services=P(VarArgs(Choice(["api"]), ("api",), at_least_one=False, list_hint=True), VarArgs.Args(("api",)),
                 says="service"))
entry("Results.client", lambda c: _r(c).client, name=P(Choice(["c"]), "c", says="client"))
for _m in ("reason", "key", "row"):
    entry(f"Results.{_m}", lambda c, m=_m: getattr(_r(c), m), i=(index(_N), 0))
for _m in ("latencies", "mean_latency"):
    entry(f"Results.{_m}", lambda c, m=_m: getattr(_r(c), m), successful=(Bool(), True))
entry("Results.latency_percentiles", lambda c: _r(c).latency_percentiles, ps=(PERCENTILES, (50, 99)),
      successful=(Bool(), True))
entry("Results.reasons", lambda c: _r(c).reasons, unanswered_only=(Bool(), False))
entry("Results.share_slower_than", lambda c: _r(c).share_slower_than, threshold=(nonneg(), 0.05))
entry("Results.timeseries", lambda c: _r(c).timeseries, bin_width=(Num(0, 12, low_open=True), 1.0))
entry("Results.staleness_percentiles", lambda c: _r(c).staleness_percentiles, ps=(PERCENTILES, (50, 100)))
entry("Results.cache", lambda c: _cache_results().cache, name=P(Choice(["cache"]), "cache", says="cache"))
entry("Results.jobs", lambda c: _cache_results().jobs, name=P(Choice(["jobs"]), "jobs", says="job queue"))
entry("ClientStats.breaker_state_at", lambda c: _r(c).client("c").breaker_state_at, times=(TIMES, [1.0, 5.0]))

RESULTS = Obj("Results", Lazy("results", _r), extra=[Lazy("a World", lambda c: rs.World(1))])
entry("windows.availability_between", lambda c: windows.availability_between, results=(RESULTS, RESULTS.valid),
      lo=(finite(), 2.0), hi=(Num(2.0, low_open=True), 5.0))
entry("windows.quality_shares_series", lambda c: windows.quality_shares_series, results=(RESULTS, RESULTS.valid),
      bin_width=(pos(), 1.0))
entry("windows.quality_series", lambda c: windows.quality_series, results=(RESULTS, RESULTS.valid),
      bin_width=(pos(), 1.0))


def _timeline():
    tl = Timeline("api")
    tl.mark(4.0, False)
    tl.mark(5.0, True)
    return tl


entry("windows.time_down", lambda c: windows.time_down,
      timeline=(Obj("Timeline", Lazy("a Timeline", lambda c: _timeline())), Lazy("a Timeline", lambda c: _timeline())),
      lo=(finite(), 2.0), hi=(Num(2.0, low_open=True), 6.0))
entry("windows.batch_means", lambda c: windows.batch_means, results=(RESULTS, RESULTS.valid),
      services=P(VarArgs(Choice(["api"]), ("api",), list_hint=True), VarArgs.Args(("api",)), says="service"),
      need=(Choice(["all", "any"]), "all"), batches=(Int(2), 4))


# --- views ----------------------------------------------------------------------------------------
entry("Slider", lambda c: dashboard.Slider, name=(Ident(), "rate"), label=(Text(), "Rate"), unit=(Text(), "rps"),
      low=(finite(), 0.0), high=(Num(0.0, low_open=True), 10.0), default=(Num(0.0, 10.0), 5.0),
      step=(Optional(Num(0.0, 10.0, low_open=True)), 0.5), integer=(Bool(), False))
entry("Slider", lambda c: dashboard.Slider, variant="integer", name=(Ident(), "n"), label=(Text(), "N"),
      unit=(Text(), ""), low=(Num(bad=[0.5]), 0), high=(Num(0.0, low_open=True, bad=[9.5]), 10),
      default=(Num(0.0, 10.0, bad=[2.5]), 5), step=(Optional(Num(0.0, 10.0, low_open=True, bad=[0.5])), 1),
      integer=(Bool(), True))
_SLIDER = dashboard.Slider("rate", "Rate", "rps", 0.0, 10.0, 5.0)
_INT_SLIDER = dashboard.Slider("n", "N", "", 0, 10, 5, integer=True)
entry("Slider.check", lambda c: _SLIDER.check, value=P(Num(0.0, 10.0), 5.0, says="rate"))
entry("Slider.check", lambda c: _INT_SLIDER.check, variant="integer", value=P(Int(0, 10), 5, says="n"))
entry("Slider.widget", lambda c: _SLIDER.widget, label_px=(Int(0, 2000), 190))
_OPTIONS = (("one", 1), ("two", 2))
entry("Choice", lambda c: dashboard.Choice, name=(Ident(), "mode"), label=(Text(), "Mode"),
      options=(Values("at least two (text, value) pairs, distinct texts and values", bad=[
          "ab", None, 5, [("a", 1)], [("a", 1), ("a", 2)], [(1, 1), (2, 2)], [("a", 1), ("b", 1)],
          [("a",), ("b",)], [("a", 1, 2), ("b", 2, 3)], [], Junk(), [("one", 1), ("uno", True)]],
          edge=[[("one", 1), ("two", 2), ("three", 3)], [["one", 1], ["two", 2]], (("one", 1), ("two", 2.0))]),
          _OPTIONS),
      default=(Values("one of the option values 1, 2", bad=[3, None, "one", True, 1.5, [1], Junk(), NAN],
                      edge=[2, 2.0, np.int64(1)]), 1))
_CHOICE = dashboard.Choice("mode", "Mode", _OPTIONS, 1)
entry("Choice.check", lambda c: _CHOICE.check,
      value=P(Values("one of the option values 1, 2", bad=[3, None, "one", True, 1.5, [1], Junk(), NAN],
                     edge=[2, 2.0, np.int64(1)]), 1, says="mode"))
entry("Choice.widget", lambda c: _CHOICE.widget, label_px=(Int(0, 2000), 190))


# --- what is not fuzzed, and why ---------------------------------------------------------------------
#: Whole callables left out, each with its reason.
EXEMPT_CALLABLES = {
    "Outcome": "an IntEnum: Outcome(n) is Python's own enum lookup, not a constructor of ours",
    "Distribution": "the abstract base; its subclasses are in the table",
    "Distribution.sample": "abstract (NotImplementedError); each subclass's sample is in the table",
    "Distribution.samples": "abstract base; each subclass's samples is in the table",
    "Backoff.delay": "abstract (NotImplementedError); each schedule's delay is in the table",
    "Permit": "issued by CircuitBreaker.allow, never built by hand; bad permits are fuzzed in record/cancel",
    "claim": "claim(owner, **policies): any owner (held by identity) and any keyword by design; "
             "non-policies are skipped",
    "Results": "built by World.run from its own records; its methods are in the table",
    "ServiceStats": "a record built by World.run",
    "ClientStats": "a record built by World.run; breaker_state_at is in the table",
    "FaultSpan": "a record built by World.run",
    "CacheStats": "a record built by World.run",
    "Delivery": "a record MessageQueue.receive builds; its receipt is fuzzed in ack and extend",
    "JobStats": "a record built by World.run",
    "Lookup": "a plain decision record: a Cache builds it (a cache of one's own too); CachedRead reads its kind",
    "World.add_cache": "plumbing: called by CachedRead() with itself",
    "World.add_job_queue": "plumbing: called by DeferredJobs() with itself",
    "CachedRead.read": "a simpy generator for handlers: runs inside a World (tests/test_sim_reads.py)",
    "CachedRead.stats": "no parameters but self",
    "CachedRead.call": "a simpy generator: runs inside a World (tests/test_sim_reads.py, bench/mm1.py)",
    "with_fallbacks": "a simpy generator for handlers: runs inside a World (tests/test_sim_reads.py)",
    "DeferredJobs.submit": "a simpy generator for handlers: runs inside a World (tests/test_sim_reads.py)",
    "DeferredJobs.status": "JobQueue.status answers it, and is in the table",
    "World.add_service": "plumbing: called by Service() with itself",
    "World.add_client": "plumbing: called by Client() with itself",
    "World.add_workload": "plumbing: called by OpenLoop()/ClosedLoop() with itself",
    "World.owns": "plumbing: called by constructors with their own arguments (which are fuzzed there)",
    "World.partition_hang": "plumbing: Service.call asks it with its own names",
    "Service.add_condition": "plumbing: called by faults with a Condition they built",
    "Service.remove_condition": "plumbing: called by faults with a Condition they added",
    "Service.call": "a simpy generator: runs inside a World (test_fuzz_scenarios.py drives it)",
    "Service.ask": "returns a simpy generator for handlers (test_fuzz_scenarios.py drives it)",
    "Service.ask_all": "a simpy generator: runs inside a World",
    "Client.call": "a simpy generator: runs inside a World (test_fuzz_scenarios.py drives it)",
    **{f"{f}.check_budget": "plumbing: World.run calls it with its own validated until" for f in
       ("Outage", "LatencySpike", "ErrorBurst", "GrayFailure", "Partition", "FailureRepair")},
    # read from the code: every policy whose claim is Stateful.claim itself, unchanged (its owner hooks
    # too), is fuzzed once as Stateful.claim; RetryPolicy overrides the hooks and is fuzzed on its own
    **{f"{name}.claim": "inherited unchanged from Stateful.claim, which is fuzzed"
       for name, make in _STATEFUL.items()
       if name != "Stateful" and type(make()).claim is pol.Stateful.claim
       and type(make())._check_owner is pol.Stateful._check_owner},
}
#: Single parameters left out, each with its reason.
EXEMPT_PARAMS = {
    ("Fixed.sample", "rng"): "Fixed never draws: its rng is ignored, whatever it is",
    ("RetryPolicy.should_retry", "idempotency_key"): "only its truthiness is read, and Client passes True "
                                                      "(the annotation says str | None): no value is wrong",
    ("RetryPolicy.decide", "idempotency_key"): "as for should_retry",
    ("Cache.from_cache_control", "options"): "**options go to Cache(), whose every parameter is in the table",
}

TABLE_PARAMS: dict = {}
for _e in TABLE:
    TABLE_PARAMS.setdefault(_e.key, set()).update(_e.params)


# --- the public callables, read from the code ---------------------------------------------------------
_ALIASES = {id(pol.Constant): "ConstantBackoff", id(pol.Exponential): "ExponentialBackoff"}


def _own(fn) -> bool:
    return getattr(fn, "__module__", "").startswith("resilience_sim")


def public_callables() -> dict:
    """``{key: callable}`` for every public constructor, method and function the fuzz must cover:
    ``resilience_sim.__all__``, ``resilience_sim.policies.__all__``, ``resilience_sim.metrics.__all__``,
    the public functions of ``core.theory``, ``core.distributions`` and ``metrics.windows``, and the
    dashboard's ``Slider`` and ``Choice``, with every public method of each class (inherited ones too)."""
    found, seen = {}, set()

    def add(name, obj):
        if not callable(obj) or id(obj) in seen:
            return
        seen.add(id(obj))
        name = _ALIASES.get(id(obj), name)
        if not inspect.isclass(obj):
            found[name] = obj
            return
        found[name] = obj
        for attr in dir(obj):
            if attr.startswith("_"):
                continue
            raw = inspect.getattr_static(obj, attr)
            fn = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
            if inspect.isfunction(fn) and _own(fn):
                found[f"{name}.{attr}"] = getattr(obj, attr)

    for n in rs.__all__:
        add(n, getattr(rs, n))
    for n in pol.__all__:
        add(n, getattr(pol, n))
    for n in metrics.__all__:
        add(n, getattr(metrics, n))
    for module, prefix in ((theory, "theory."), (distributions, ""), (windows, "windows.")):
        for n, obj in sorted(vars(module).items()):
            if not n.startswith("_") and callable(obj) and getattr(obj, "__module__", None) == module.__name__:
                add(prefix + n, obj)
    for n in ("Slider", "Choice"):
        add(n, getattr(dashboard, n))
    return found


def public_parameters() -> dict:
    """``{key: [parameter names]}`` (self and cls left out) of :func:`public_callables`."""
    out = {}
    for key, obj in public_callables().items():
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            out[key] = None
            continue
        out[key] = [p for p in sig.parameters if p not in ("self", "cls")]
    return out


# --- running one case --------------------------------------------------------------------------------
class Hang(BaseException):
    """A call ran past :data:`HANG_SECONDS` (a BaseException, so no ``except Exception`` swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`Hang` in this (main) thread after ``seconds``; elsewhere, no limit (see :func:`guarded`)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def ring(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def guarded(fn, seconds: float = HANG_SECONDS):
    """``fn()`` under a time limit: ``("returned", value)``, ``("raised", exc)`` or ``("hang", None)``.
    On the main thread a SIGALRM interrupts the call; elsewhere it runs in a worker thread that is
    abandoned (daemon) if it does not finish."""
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with time_limit(seconds):
                    value = fn()
            return "returned", value
        except Hang:
            return "hang", None
        except Exception as exc:              # noqa: BLE001 - classified by the caller
            return "raised", exc
    box = {}

    def work():
        try:
            box["out"] = ("returned", fn())
        except Exception as exc:              # noqa: BLE001
            box["out"] = ("raised", exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(seconds)
    return box.get("out", ("hang", None))


@dataclass
class Verdict:
    """What became of one case. ``kind`` is "ok" or one of :data:`KINDS`."""
    kind: str
    call: str
    detail: str = ""
    edge: bool = False

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    def __str__(self):
        return f"{self.call} -> {self.detail}"


KINDS = ("accepted silently", "wrong exception type", "message does not name the parameter", "hang")


def _names(text: str, word: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", text) is not None


def describe(entry: Entry, name: str, value) -> str:
    if isinstance(value, VarArgs.Args):
        return f"{entry.id}(*{name}={show(value)})"
    return f"{entry.id}({name}={show(value)})"


def attempt(entry: Entry, name: str, value, *, edge: bool = False, seconds: float = HANG_SECONDS) -> Verdict:
    """Call ``entry`` at its baseline with ``name`` set to ``value`` and judge the outcome: a bad
    value must be refused by a ValueError or TypeError naming the parameter; an edge value may be
    accepted, or refused by one naming some parameter; neither may raise anything else or hang."""
    values = entry.baseline()
    values[name] = value
    call = describe(entry, name, value)
    what, out = guarded(lambda: entry.call(values), seconds)
    if what == "hang":
        return Verdict("hang", call, f"no answer within {seconds:g} s", edge)
    if what == "returned":
        if edge:
            return Verdict("ok", call, "accepted", edge)
        return Verdict("accepted silently", call, f"returned {show(out)}", edge)
    exc = out
    message = str(exc)
    detail = f"{type(exc).__name__}: {message[:200]}"
    if not isinstance(exc, (ValueError, TypeError)):
        return Verdict("wrong exception type", call, detail, edge)
    p = entry.params[name]
    if edge:
        words = [n for n in entry.params] + [q.says for q in entry.params.values() if q.says]
        if not any(_names(message, w) for w in words):
            return Verdict("message does not name the parameter", call, detail, edge)
        return Verdict("ok", call, detail, edge)
    if not (_names(message, name) or (p.says and _names(message, p.says))):
        return Verdict("message does not name the parameter", call, detail, edge)
    return Verdict("ok", call, detail, edge)


def census(entries=None, *, edge: bool = False) -> list[Verdict]:
    """Every catalogued bad (or edge) value of every parameter of every entry, judged."""
    out = []
    for e in entries or TABLE:
        for name, p in e.params.items():
            for value in (p.kind.edge() if edge else p.kind.bad()):
                out.append(attempt(e, name, value, edge=edge))
    return out


def _main():                                   # pragma: no cover - a report for people
    from collections import Counter
    for edge in (False, True):
        verdicts = census(edge=edge)
        counts = Counter(v.kind for v in verdicts)
        print(f"\n=== {'edge' if edge else 'bad'} values: {len(verdicts)} cases: {dict(counts)}")
        for kind in KINDS:
            rows = [v for v in verdicts if v.kind == kind]
            if rows:
                print(f"\n--- {kind} ({len(rows)})")
                for v in rows:
                    print(f"  {v}")


if __name__ == "__main__":                     # pragma: no cover
    _main()
