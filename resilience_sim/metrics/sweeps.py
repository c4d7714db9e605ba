"""Many runs as one tidy table: a row per run (its parameters, replicate, seed and each metric), and
for each point of the grid the mean of a metric with a confidence interval. Pure numpy and stdlib;
pandas only inside :meth:`SweepTable.to_pandas`.

The intervals (``method=`` of :meth:`SweepTable.summary`), each at ``level`` (95% by default):

* ``"t"`` (the default for numbers): Student's t interval for the mean, ``mean ± t(n-1) s / sqrt(n)``.
  Exact when the runs' values are normal; otherwise it leans on the central limit theorem, which is
  good when each run's value is itself an average over a long run (an availability over many
  failure/repair cycles, a share of many requests).
* ``"normal"``: ``mean ± z s / sqrt(n)``, the large-n limit of ``"t"``; too narrow below ~30 seeds.
* ``"wilson"`` (the default for True/False metrics and for :meth:`SweepTable.share`): the Wilson score
  interval for a proportion. It stays inside [0, 1] and does not collapse to a point when no run,
  or every run, failed (the normal approximation's "0 of 10 is 0% ± 0%").
* ``"bootstrap"``: the percentile bootstrap of the mean, 2,000 resamples from a fixed seed (so it is
  deterministic); for skewed metrics (a p99, a recovery time) with 20 or more seeds.

What always holds: rows are in the grid's order (point by point, replicates in order) whatever order
the runs finished in, so two tables of the same sweep are equal row for row; a table whose sweep was
interrupted says so (``complete`` is False) and summarises the runs it has.
"""
from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass

import numpy as np

from ..core import validate

METHODS = ("t", "normal", "wilson", "bootstrap")
#: Resamples, and the fixed seed, of the ``"bootstrap"`` interval.
BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED = 2000, 0
#: The columns every table has besides its parameters and metrics.
RUN_COLUMNS = ("replicate", "seed")


# --- the intervals ----------------------------------------------------------------------------------
def _level(level) -> float:
    level = validate.number("level", level, low=0.0, high=1.0, low_open=True)
    if level == 1.0:
        raise ValueError("level must be a confidence level in (0, 1), e.g. 0.95, got 1 (a 100% interval "
                         "is infinite)")
    return level


def z_quantile(level: float) -> float:
    """The two-sided normal quantile: 1.96 for ``level`` 0.95."""
    return statistics.NormalDist().inv_cdf(0.5 + _level(level) / 2)


def _t_within(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` (a whole number) degrees of freedom, exactly
    (Abramowitz and Stegun 26.7.3 and 26.7.4: finite sums of powers of cos(theta))."""
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:
        term = total = math.cos(theta) if df > 1 else 0.0
        for k in range(3, df - 1, 2):
            term *= c2 * (k - 1) / k
            total += term
        return 2 / math.pi * (theta + s * total)
    term = total = 1.0
    for k in range(2, df - 1, 2):
        term *= c2 * (k - 1) / k
        total += term
    return s * total


@functools.lru_cache(maxsize=256)
def t_quantile(level: float, df: int) -> float:
    """The two-sided Student-t quantile: 2.262 for ``level`` 0.95 and 9 degrees of freedom (10 seeds).

    Exact (to rounding) up to 200 degrees of freedom; above, the Cornish-Fisher expansion around the
    normal quantile (error below 1e-7)."""
    level = _level(level)
    df = validate.integer("df", df, low=1)
    if df > 200:
        z = z_quantile(level)
        return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
    lo, hi = 0.0, math.pi / 2                       # bisect on theta = atan(t / sqrt(df))
    for _ in range(80):
        mid = (lo + hi) / 2
        if _t_within(math.sqrt(df) * math.tan(mid), df) < level:
            lo = mid
        else:
            hi = mid
    return math.sqrt(df) * math.tan((lo + hi) / 2)


def mean_interval(values, *, level: float = 0.95, method: str = "t") -> tuple[float, float, float]:
    """``(mean, low, high)`` of ``values`` (NaN skipped) by ``method`` "t", "normal" or "bootstrap";
    NaN bounds with fewer than two values."""
    validate.choice("method", method, ("t", "normal", "bootstrap"))
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, math.nan
    if method == "bootstrap":
        return (mean, *_bootstrap(x, _level(level)))
    q = t_quantile(level, n - 1) if method == "t" else z_quantile(level)
    half = q * float(x.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def _bootstrap(x: np.ndarray, level: float) -> tuple[float, float]:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means, chunk = [], max(1, 2_000_000 // len(x))          # at most ~16 MB of indices at once
    for start in range(0, BOOTSTRAP_RESAMPLES, chunk):
        size = min(chunk, BOOTSTRAP_RESAMPLES - start)
        means.append(x[rng.integers(0, len(x), size=(size, len(x)))].mean(axis=1))
    low, high = np.quantile(np.concatenate(means), [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def wilson_interval(successes: int, n: int, *, level: float = 0.95) -> tuple[float, float, float]:
    """``(share, low, high)`` of ``successes`` in ``n`` trials: the Wilson score interval
    (Wilson 1927), which stays inside [0, 1] and is not empty at 0 or n; NaN for n = 0."""
    n = validate.integer("n", n, low=0)
    k = validate.integer("successes", successes, low=0, high=n)
    if n == 0:
        return math.nan, math.nan, math.nan
    z = z_quantile(level)
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return p, low, high


# --- per-point summaries ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PointSummary:
    """One point of the grid: ``n`` runs with a value, their ``mean`` (a share, for a True/False
    metric) and the ``level`` interval ``[low, high]`` by ``method``."""
    point: dict
    n: int
    mean: float
    low: float
    high: float
    method: str
    level: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def covers(self, value: float) -> bool:
        """Whether the interval holds ``value`` (False when there is no interval)."""
        return bool(self.low <= value <= self.high)


class Summary:
    """A metric summarised at every point of a sweep, in the grid's order: ``mean``, ``low``, ``high``
    and ``n`` as arrays, ``values(param)`` the parameter beside them, :meth:`pivot` for a heat map."""

    def __init__(self, metric: str, params: tuple, points: list, method: str, level: float, label: str = ""):
        self.metric, self.params, self.points = metric, tuple(params), list(points)
        self.method, self.level, self.label = method, level, label or metric
        self.mean = np.array([p.mean for p in self.points], dtype=float)
        self.low = np.array([p.low for p in self.points], dtype=float)
        self.high = np.array([p.high for p in self.points], dtype=float)
        self.n = np.array([p.n for p in self.points], dtype=int)

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self):
        return iter(self.points)

    def __getitem__(self, i) -> PointSummary:
        return self.points[validate.index("i", i, len(self.points))]

    def values(self, param: str) -> np.ndarray:
        """The value of ``param`` at each point (an object array unless they are all numbers)."""
        validate.choice("param", param, self.params)
        values = [p.point[param] for p in self.points]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        return np.array(values, dtype=float if numeric else object)

    def at(self, **point) -> PointSummary:
        """The summary of the one point with these parameter values."""
        found = [p for p in self.points if all(_same(p.point.get(k, _MISSING), v) for k, v in point.items())]
        if len(found) != 1:
            raise ValueError(f"at() must name exactly one point of {self.params} ({len(found)} match {point}); "
                             f"the points are {[p.point for p in self.points][:6]}")
        return found[0]

    def covers(self, truth) -> np.ndarray:
        """For each point, whether its interval holds ``truth`` (a number, or one per point)."""
        truth = np.broadcast_to(np.asarray(truth, dtype=float), self.mean.shape)
        return (self.low <= truth) & (truth <= self.high)

    def pivot(self, row: str, col: str, field: str = "mean"):
        """``(row_values, col_values, grid)``: ``field`` ("mean", "low", "high" or "n") with one row per
        value of ``row`` and one column per value of ``col``, in the grid's order (NaN where a cell has
        no point). Every other parameter must have a single value: select with ``table.where``."""
        validate.choice("row", row, self.params)
        validate.choice("col", col, self.params)
        validate.choice("field", field, ("mean", "low", "high", "n"))
        if row == col:
            raise ValueError(f"row and col must be two different parameters, got {row!r} twice")
        for other in set(self.params) - {row, col}:
            seen = _distinct(p.point[other] for p in self.points)
            if len(seen) > 1:
                raise ValueError(f"pivot({row!r}, {col!r}) needs the other parameters fixed, but {other!r} "
                                 f"takes {seen}: select one first, e.g. table.where({other}={seen[0]!r})")
        rows = _distinct(p.point[row] for p in self.points)
        cols = _distinct(p.point[col] for p in self.points)
        grid = np.full((len(rows), len(cols)), np.nan)
        source = getattr(self, field)
        for k, p in enumerate(self.points):
            grid[_index(rows, p.point[row]), _index(cols, p.point[col])] = source[k]
        return rows, cols, grid

    def __repr__(self) -> str:
        return f"Summary({self.label!r}, {len(self)} points, {self.level:.0%} {self.method} intervals)"

    def __str__(self) -> str:
        head = [*self.params, "n", self.label, f"{self.level:.0%} interval ({self.method})"]
        lines = [[*(f"{p.point[k]!r}" if isinstance(p.point[k], str) else f"{p.point[k]}" for k in self.params),
                  str(p.n), f"{p.mean:.4g}", f"[{p.low:.4g}, {p.high:.4g}]"] for p in self.points]
        widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
        return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [head, *lines])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in (*self.params, "n", self.label,
                                                   f"{self.level:.0%} interval ({self.method})"))
        body = "".join("<tr>" + "".join(f"<td>{p.point[k]}</td>" for k in self.params)
                       + f"<td>{p.n}</td><td>{p.mean:.4g}</td><td>[{p.low:.4g}, {p.high:.4g}]</td></tr>"
                       for p in self.points)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_MISSING = object()


def _same(a, b) -> bool:
    return a is b or (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool)
        and not isinstance(b, bool) and a == b)


def _distinct(values) -> list:
    out = []
    for v in values:
        if not any(_same(v, o) for o in out):
            out.append(v)
    return out


def _index(values: list, value) -> int:
    return next(i for i, v in enumerate(values) if _same(v, value))


# --- the table ----------------------------------------------------------------------------------------
class SweepTable:
    """The runs of a sweep, one row each: its parameters, ``replicate`` (0, 1, ... within its point),
    ``seed`` and each metric the scenario returned. Rows are in the grid's order.

    ``points`` lists the grid's points, ``total`` the runs planned, ``complete`` whether all of them
    finished (False after an interrupted sweep: the rows are the runs that did finish). ``elapsed`` is
    the sweep's wall time and ``run_seconds`` the time its runs took where they ran (neither is part
    of the rows, which are the same on every executor).
    """

    def __init__(self, params, points, rows, *, metrics=(), total=None, complete=True, elapsed=0.0,
                 run_seconds=0.0, executor="in-process", scenario=""):
        self.params = tuple(params)
        self.points = [dict(p) for p in points]
        self._rows = sorted(rows, key=lambda r: (r[0], r[1]))      # (point index, replicate, seed, values)
        self.metrics = tuple(metrics)
        self.total = len(self._rows) if total is None else int(total)
        self.complete, self.elapsed, self.run_seconds = bool(complete), float(elapsed), float(run_seconds)
        self.executor, self.scenario = executor, scenario
        for r in self._rows:
            if len(r[3]) != len(self.metrics):
                raise ValueError(f"every row must hold one value per metric {self.metrics}, got {r[3]!r}")

    # rows and columns
    def __len__(self) -> int:
        return len(self._rows)

    @property
    def columns(self) -> tuple:
        return (*self.params, *RUN_COLUMNS, *self.metrics)

    @property
    def rows(self) -> list[dict]:
        """Every run as a dict: ``{**parameters, "replicate": r, "seed": s, **metrics}``."""
        return [{**self.points[p], "replicate": r, "seed": s, **dict(zip(self.metrics, v))}
                for p, r, s, v in self._rows]

    def __iter__(self):
        return iter(self.rows)

    def __eq__(self, other) -> bool:
        """Same parameters, metrics and rows (how long it took, and where, is not compared)."""
        if not isinstance(other, SweepTable):
            return NotImplemented
        return (self.params, self.metrics, self.points, self._rows) == \
            (other.params, other.metrics, other.points, other._rows)

    __hash__ = None

    def column(self, name: str) -> np.ndarray:
        """One column as an array: a parameter, "replicate", "seed" or a metric."""
        validate.choice("name", name, self.columns)
        if name in self.metrics:
            values = [r[3][self.metrics.index(name)] for r in self._rows]
        elif name == "replicate":
            values = [r[1] for r in self._rows]
        elif name == "seed":
            return np.array([r[2] for r in self._rows], dtype=np.int64)
        else:
            values = [self.points[r[0]][name] for r in self._rows]
        if values and all(isinstance(v, bool) for v in values):
            return np.array(values, dtype=bool)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return np.array(values, dtype=float if any(isinstance(v, float) for v in values) else int)
        return np.array(values, dtype=object)

    def is_share(self, metric: str) -> bool:
        """Whether ``metric`` is True/False in every run (its summary is then a share, Wilson's interval)."""
        validate.choice("metric", metric, self.metrics)
        k = self.metrics.index(metric)
        return bool(self._rows) and all(isinstance(r[3][k], bool) for r in self._rows)

    def values(self, metric: str, **point) -> np.ndarray:
        """The values of ``metric`` in the runs of one point (``values("after", trigger=2)``)."""
        return self.where(**point).column(metric)

    def where(self, **fixed) -> "SweepTable":
        """The runs whose parameters have these values (a table of the matching points)."""
        for name in fixed:
            validate.choice("parameter", name, self.params)
        keep = [i for i, p in enumerate(self.points) if all(_same(p[k], v) for k, v in fixed.items())]
        if not keep:
            raise ValueError(f"no point has {fixed}; the points are {self.points[:6]}"
                             + (" ..." if len(self.points) > 6 else ""))
        new = {old: i for i, old in enumerate(keep)}
        rows = [(new[p], r, s, v) for p, r, s, v in self._rows if p in new]
        per_point = self.total // max(1, len(self.points))
        return SweepTable(self.params, [self.points[i] for i in keep], rows, metrics=self.metrics,
                          total=per_point * len(keep), complete=self.complete, elapsed=self.elapsed,
                          run_seconds=self.run_seconds, executor=self.executor, scenario=self.scenario)

    # summaries
    def summary(self, metric: str, *, level: float = 0.95, method: str | None = None) -> Summary:
        """``metric`` at every point: its mean with a ``level`` confidence interval by ``method`` ("t",
        "normal", "wilson" or "bootstrap"; by default "wilson" for a True/False metric, whose mean is
        the share of runs where it is True, and "t" for numbers). NaN values are skipped (``n`` counts
        the runs with a value), so a NaN for "never recovered" leaves a mean over the runs that did."""
        validate.choice("metric", metric, self.metrics)
        level = _level(level)
        share = self.is_share(metric)
        method = ("wilson" if share else "t") if method is None else validate.choice("method", method, METHODS)
        if method == "wilson" and self._rows and not share:      # an empty table holds no numbers
            raise ValueError(f"method 'wilson' is for True/False metrics; {metric!r} holds numbers: use "
                             f"table.share({metric!r}, below=...) for the share of runs under a threshold")
        k = self.metrics.index(metric)
        by_point: list[list] = [[] for _ in self.points]
        for p, _, _, v in self._rows:
            by_point[p].append(v[k])
        out = []
        for point, vals in zip(self.points, by_point):
            if method == "wilson":
                n = len(vals)
                mean, low, high = wilson_interval(sum(vals), n, level=level)
            else:
                n = int(np.count_nonzero(~np.isnan(np.asarray(vals, dtype=float)))) if vals else 0
                mean, low, high = mean_interval(vals, level=level, method=method)
            out.append(PointSummary(dict(point), n, mean, low, high, method, level))
        return Summary(metric, self.params, out, method, level)

    def share(self, metric: str, *, below: float | None = None, above: float | None = None,
              level: float = 0.95) -> Summary:
        """The share of runs at each point whose ``metric`` is below ``below`` (or above ``above``),
        with Wilson's interval: ``table.share("after", below=0.05)`` is the share still failed."""
        validate.choice("metric", metric, self.metrics)
        if (below is None) == (above is None):
            raise ValueError(f"share({metric!r}) needs exactly one of below= or above=, got below={below!r}, "
                             f"above={above!r}")
        bound = validate.number("below" if above is None else "above", below if above is None else above)
        k = self.metrics.index(metric)
        flag = (lambda v: v < bound) if above is None else (lambda v: v > bound)
        rows = [(p, r, s, (bool(flag(v[k])),)) for p, r, s, v in self._rows]
        name = f"{metric} {'<' if above is None else '>'} {bound:g}"
        derived = SweepTable(self.params, self.points, rows, metrics=(name,), total=self.total,
                             complete=self.complete)
        summary = derived.summary(name, level=level, method="wilson")
        return summary

    # other forms
    def to_pandas(self):
        """The rows as a pandas DataFrame (pandas is optional: an ImportError says how to get it);
        ``df.attrs`` keeps ``complete`` and ``total``."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas() needs pandas, which resilience_sim does not require: "
                              "pip install pandas (or conda install pandas); table.rows gives the same "
                              "rows as dicts, table.column(name) one column as an array") from None
        df = pd.DataFrame({name: self.column(name) for name in self.columns}, columns=list(self.columns))
        df.attrs.update(complete=self.complete, total=self.total)
        return df

    def __repr__(self) -> str:
        status = "" if self.complete else ", INTERRUPTED: partial"
        shape = f"{len(self.points)} point{'s' * (len(self.points) != 1)}"
        if self.params:
            shape += f" of {', '.join(self.params)}"
        return (f"SweepTable({len(self):,} of {self.total:,} runs, {shape}; metrics {', '.join(self.metrics) or '-'}"
                f"{status})")

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c}</th>" for c in self.columns)
        shown = self.rows[:5] + ([None] if len(self) > 10 else []) + (self.rows[-5:] if len(self) > 5 else [])
        if len(self) <= 10:
            shown = self.rows
        body = "".join("<tr>" + ("".join(f"<td>{_cell(r[c])}</td>" for c in self.columns) if r is not None
                                 else f"<td colspan={len(self.columns)}>...</td>") + "</tr>" for r in shown)
        return (f"<p>{repr(self)[len('SweepTable('):-1]}</p>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
