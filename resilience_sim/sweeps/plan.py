"""What a sweep will run: the grid's points, and for each a number of runs with their seeds.

A run's seed is derived from the base seed, the point's parameters and the replicate's number with
a stable hash (blake2b, as :func:`resilience_sim.core.seeds.stream_seed` derives a world's streams),
never from a worker or the order runs finish in. So a sweep gives the same rows in this process, on
a process pool or on a Dask cluster of any size; adding a point to the grid changes no other point's
seeds; and asking for more seeds keeps the first ones.
"""
from __future__ import annotations

import hashlib
import keyword
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..core import validate

#: Most runs a sweep takes unless told otherwise (``max_runs=``): about an hour at 40 ms a run on
#: two cores, and a table of a few megabytes.
MAX_RUNS = 100_000
#: Names a grid cannot use: they are the table's own columns, and ``seed`` is the scenario's keyword.
RESERVED = ("seed", "replicate")
#: Largest seed (explicit seeds included): 63 bits, so a seed column fits numpy's and pandas' int64.
SEED_LIMIT = 2 ** 63 - 1


@dataclass(frozen=True)
class Run:
    """One run: its place in the table (``index``), its point, its replicate and its seed."""
    index: int
    point: int
    replicate: int
    params: dict
    seed: int


@dataclass(frozen=True)
class Plan:
    params: tuple
    points: list
    runs: list
    seeds_per_point: int
    derived: bool                       # seeds derived per run (else the same given seeds at every point)


def _plain(name: str, value):
    """A grid value as a plain Python value (numpy scalars unwrapped): it names the point in the
    table and, through its repr, derives the point's seeds, so it must print the same everywhere."""
    if isinstance(value, (bool, str)) or value is None:
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
        if isinstance(value, bool):
            return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            raise ValueError(f"{name} must be a number, a string, True/False or None, got nan")
        return value
    if isinstance(value, tuple):
        return tuple(_plain(f"{name}[{i}]", v) for i, v in enumerate(value))
    raise validate.WrongType(f"{name} must be a plain value (a number, a string, True/False, None or a tuple "
                             f"of these: it names the point and derives its seeds), got {validate.show(value)}; "
                             "pass a name and look the object up inside the scenario")


def _name(name) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"a grid's parameter names must be Python identifiers (each is passed to the "
                         f"scenario as a keyword), got {validate.show(name)}")
    if name in RESERVED:
        raise ValueError(f"a grid cannot have a parameter called {name!r}: the sweep passes seed= itself "
                         f"and the table has its own {name!r} column; rename it (e.g. {name}_value)")
    return name


def points_of(grid) -> tuple[tuple, list]:
    """``(parameter names, points)`` of ``grid``: a dict of lists (every combination, the first name
    varying slowest), a list of dicts (those points, as given) or None (one point, no parameters)."""
    if grid is None:
        return (), [{}]
    if isinstance(grid, Mapping):
        if not grid:
            raise ValueError("grid must name at least one parameter with its values, e.g. "
                             "{'load': [0.5, 0.6]}, got {}; to repeat one scenario over seeds only, "
                             "leave grid out (grid=None)")
        names, axes = [], []
        for name, values in grid.items():
            names.append(_name(name))
            if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
                raise validate.WrongType(f"grid[{name!r}] must be a list of values, got {validate.show(values)}"
                                         + (f" (for one value write [{values!r}])" if not isinstance(values, Mapping) else ""))
            values = [_plain(f"grid[{name!r}][{i}]", v) for i, v in enumerate(values)]
            if not values:
                raise ValueError(f"grid[{name!r}] must list at least one value, got none")
            _no_repeats(f"grid[{name!r}]", values)
            axes.append(values)
        points = [{}]
        for name, values in zip(names, axes):
            points = [{**p, name: v} for p in points for v in values]
        return tuple(names), points
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Iterable):
        raise validate.WrongType(f"grid must be a dict of lists ({{'load': [0.5, 0.6]}}), a list of dicts "
                                 f"([{{'load': 0.5}}, ...]) or None, got {validate.show(grid)}")
    points = list(grid)
    if not points:
        raise ValueError("grid must hold at least one point, got an empty list; for seeds only, grid=None")
    names = None
    out = []
    for i, point in enumerate(points):
        if not isinstance(point, Mapping):
            raise validate.WrongType(f"grid[{i}] must be a dict of parameter values, got {validate.show(point)}")
        keys = tuple(_name(k) for k in point)
        if names is None:
            names = keys
        elif set(keys) != set(names):
            raise ValueError(f"every point must name the same parameters: grid[0] names {sorted(names)}, "
                             f"grid[{i}] names {sorted(keys)}")
        out.append({k: _plain(f"grid[{i}][{k!r}]", point[k]) for k in names})
    _no_repeats("grid", out)
    return tuple(names), out


def _no_repeats(name: str, values: list) -> None:
    seen = set()
    for v in values:
        key = _key(v)
        if key in seen:
            raise ValueError(f"{name} lists {v!r} twice; each point is run once with all its seeds")
        seen.add(key)


def _key(value) -> str:
    """A text that stands for a value, the same on every platform and Python: repr of plain values,
    with their types (so 1, 1.0 and True are three different points), dicts by sorted name."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={_key(value[k])}" for k in sorted(value)) + "}"
    return f"{type(value).__name__}:{value!r}"


def seed_for(base_seed: int, params: Mapping, replicate: int) -> int:
    """The seed of replicate ``replicate`` at the point ``params``: a 63-bit blake2b hash of the three,
    the same on every machine, executor and Python version."""
    base_seed = validate.integer("base_seed", base_seed, low=0)
    replicate = validate.integer("replicate", replicate, low=0)
    point = {k: _plain(f"params[{k!r}]", v) for k, v in params.items()}
    digest = hashlib.blake2b(f"sweep/{base_seed}/{_key(point)}/{replicate}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def _seeds(seeds) -> tuple[int, list | None]:
    """``(runs per point, explicit seeds or None)``."""
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be a whole number >= 1 (runs per point) or a list of seeds, got {seeds}")
        return int(seeds), None
    if isinstance(seeds, (str, bytes, bool)) or not isinstance(seeds, Iterable):
        raise validate.WrongType(f"seeds must be a whole number >= 1 (runs per point, seeds derived for each) "
                                 f"or a list of seeds (the same at every point), got {validate.show(seeds)}")
    given = [validate.integer(f"seeds[{i}]", s, low=0, high=SEED_LIMIT) for i, s in enumerate(seeds)]
    if not given:
        raise ValueError("seeds must list at least one seed, got none (or give a number of runs per point)")
    if len(set(given)) != len(given):
        raise ValueError(f"seeds must be different from one another, got {given[:10]}")
    return len(given), given


def make_plan(grid, seeds, base_seed: int, max_runs: int) -> Plan:
    """Every run of a sweep, point by point and replicate by replicate; refuses one over ``max_runs``."""
    max_runs = validate.integer("max_runs", max_runs, low=1)
    base_seed = validate.integer("base_seed", base_seed, low=0, high=SEED_LIMIT)
    names, points = points_of(grid)
    per_point, given = _seeds(seeds)
    total = len(points) * per_point
    if total > max_runs:
        raise ValueError(f"a sweep of {len(points):,} point{'s' * (len(points) != 1)} x {per_point:,} seeds = "
                         f"{total:,} runs is more than max_runs={max_runs:,}: lower seeds= or the grid, or raise "
                         "max_runs= if you mean it (and give it an executor with many workers)")
    runs = [Run(i * per_point + r, i, r, point,
                given[r] if given is not None else seed_for(base_seed, point, r))
            for i, point in enumerate(points) for r in range(per_point)]
    return Plan(names, points, runs, per_point, given is None)
