"""19 Model your own system: describe it in a few lines (:mod:`resilience_sim.sim.system_model`), and ask.

* :func:`exact_availability`: per endpoint, the share of time every component it needs has at least
  one replica up, from each component's MTTF/MTTR (:func:`~resilience_sim.core.theory.replicas_availability`,
  :func:`~resilience_sim.core.theory.series`; with fallbacks on, the structure function summed over
  the components' states).
* :func:`availability_table`: that exact number beside the simulated one, per endpoint, with a 95%
  interval over seeds (a :func:`~resilience_sim.sweeps.sweep` of :func:`availability_run`, on any executor):
  time availability (the same structure function on the run's timelines) and the good share of
  requests (answered within the endpoint's patience, as the capstone scores them).
* :func:`weakest_link`: for each component that fails, the gain in rate-weighted availability from
  doubling its MTTF and from halving its MTTR, exact and simulated with common seeds, ranked.
* :func:`what_if`: patterns switched on one by one, cumulatively: the good share per endpoint.
* :func:`shop_model` is the capstone's shop in this language, and :func:`shop_validation` runs the
  capstone's engine and the model through the same day (same traffic, same fault window).
"""
from __future__ import annotations

import functools
import itertools
import math

from ..core import theory, validate
from ..metrics.scoring import Slo, good
from ..metrics.sweeps import mean_interval
from ..sim.chaos import ChaosDay
from ..sim.shop import PATIENCE, PEAK, SLOTS, WORK
from ..sim.shop_config import ShopConfig
from ..sim.shop_day import run_day
from ..sim.system_build import build
from ..sim.system_model import KEYS, PATTERNS, Component, Endpoint, SystemModel, check_patterns
from ..sim.world import World
from ..sweeps import sweep

#: Components with failures at most this many for the exact sum over states (2^n states).
MAX_EXACT = 16


def _model(model) -> SystemModel:
    if not isinstance(model, SystemModel):
        raise validate.WrongType(f"model must be a SystemModel (sim.system_model), got {validate.show(model)}")
    return model


def _up(model: SystemModel, endpoint: Endpoint, is_up, fallbacks: bool, skip=frozenset()) -> bool:
    """The structure function: is ``endpoint`` up when ``is_up(component)`` says which are up?
    ``skip``: the dependencies its callers answer from their cache (for this request's key)."""
    def ok(name, entry=False):
        if not is_up(name):
            return False
        for d in model.calls(name, endpoint if entry else None):
            if d in skip:
                continue
            if not ok(d):
                alt = model.component(d).fallback if fallbacks else None
                if alt is None or (alt != "static" and not ok(alt)):
                    return False
        return True
    return ok(endpoint.entry, True)


def _involved(model: SystemModel, endpoint: Endpoint, fallbacks: bool, skip=frozenset()) -> list:
    names, todo = [], [endpoint.entry]
    while todo:
        name = todo.pop()
        if name in names:
            continue
        names.append(name)
        c = model.component(name)
        todo += [d for d in model.calls(name, endpoint if name == endpoint.entry else None) if d not in skip]
        if fallbacks and c.fallback not in (None, "static"):
            todo.append(c.fallback)
    return names


def component_availability(c: Component) -> float:
    """The share of time at least one of ``c``'s replicas is up (1 if it never fails)."""
    return 1.0 if not c.fails else theory.replicas_availability(c.replicas, c.mttf, c.mttr)


def _key_groups(model: SystemModel, patterns: tuple) -> list:
    """``(share of keys, the dependencies cached for them)``: one group without "cache"; with it, a
    key ``k`` skips each component whose ``cache_hit * KEYS`` exceeds ``k`` (as the callers' cache does)."""
    if "cache" not in patterns:
        return [(1.0, frozenset())]
    groups: dict = {}
    for k in range(KEYS):
        skip = frozenset(c.name for c in model.components if k < c.cache_hit * KEYS)
        groups[skip] = groups.get(skip, 0) + 1 / KEYS
    return [(w, skip) for skip, w in groups.items()]


def _exact_one(model: SystemModel, e: Endpoint, fallbacks: bool, skip: frozenset) -> float:
    names = [n for n in _involved(model, e, fallbacks, skip) if model.component(n).fails]
    a = {n: component_availability(model.component(n)) for n in names}
    if not fallbacks or all(model.component(n).fallback is None for n in _involved(model, e, True, skip)):
        return theory.series(*a.values()) if a else 1.0
    if len(names) > MAX_EXACT:
        raise ValueError(f"model must have at most {MAX_EXACT} failing components under {e.name!r} for the "
                         f"exact sum with fallbacks, got {len(names)}")
    total = 0.0
    for states in itertools.product((True, False), repeat=len(names)):
        up = dict(zip(names, states))
        if _up(model, e, lambda n: up.get(n, True), True, skip):
            total += math.prod(a[n] if s else 1 - a[n] for n, s in up.items())
    return total


def exact_availability(model: SystemModel, *, patterns=()) -> dict:
    """Per endpoint, the long-run share of time it is up (see the module docstring). "fallback"
    changes it (a failed dependency with a fallback that is up is covered) and so does "cache" (a
    request whose key is cached skips that dependency: the share is averaged over the keys)."""
    model = _model(model)
    patterns = check_patterns(patterns, model)
    fallbacks = "fallback" in patterns
    return {e.name: sum(w * _exact_one(model, e, fallbacks, skip) for w, skip in _key_groups(model, patterns))
            for e in model.endpoints}


def time_availability(results, built, endpoint: str, *, patterns=(), since: float = 0.0, until=None) -> float:
    """The share of ``[since, until)`` the structure function says ``endpoint`` was up, from the
    replicas' timelines of a run of ``built`` (what :func:`~resilience_sim.sim.system_model.build` returned)."""
    model, until = built.model, results.until if until is None else until
    patterns = check_patterns(patterns, model)
    fallbacks, groups = "fallback" in patterns, _key_groups(model, patterns)
    e = model.endpoint(endpoint)
    downs = {r: results.services[r].timeline.down_windows(until)
             for n in _involved(model, e, fallbacks) for r in built.replicas[n]}
    cuts = sorted({since, until, *(t for w in downs.values() for s in w for t in s if since < t < until)})
    up_time = 0.0
    for lo, hi in zip(cuts, cuts[1:]):
        mid = (lo + hi) / 2
        down = {r for r, w in downs.items() if any(a <= mid < b for a, b in w)}
        up_time += (hi - lo) * sum(w for w, skip in groups if _up(
            model, e, lambda n: any(r not in down for r in built.replicas[n]), fallbacks, skip))
    return up_time / (until - since)


def availability_run(model: SystemModel, *, duration: float, patterns=(), traffic: bool = True,
                     changes=(), seed: int) -> dict:
    """One seeded run (a sweep's scenario): per endpoint ``<name>_time`` (time availability) and,
    with ``traffic``, ``<name>_good`` (the share of requests answered within its patience).
    ``changes``: ``((component, field, value), ...)`` applied to the model first."""
    for name, key, value in changes:
        model = model.with_(name, **{key: value})
    world = World(seed)
    built = build(model, world, duration=duration, patterns=patterns, traffic=traffic)
    results = world.run(duration + (max(e.patience for e in model.endpoints) * 4 if traffic else 0.0))
    out = {}
    for e in model.endpoints:
        out[f"{e.name}_time"] = time_availability(results, built, e.name, patterns=patterns, until=duration)
        if traffic:
            view = results.only(e.name)
            out[f"{e.name}_good"] = float(good(view, Slo(e.name, 0.5, e.patience)).mean()) if len(view) else math.nan
    return out


def _weighted(model: SystemModel, per_endpoint: dict) -> float:
    rates = {e.name: e.rate for e in model.endpoints}
    return sum(rates[n] * a for n, a in per_endpoint.items()) / sum(rates.values())


def availability_table(model: SystemModel, *, duration: float, seeds=8, base_seed: int = 0, patterns=(),
                       traffic: bool = True, executor=None, progress=False) -> list:
    """Per endpoint: exact availability, simulated time availability and good share (mean, 95% low, high)."""
    model = _model(model)
    run = functools.partial(availability_run, model, duration=validate.positive("duration", duration),
                            patterns=check_patterns(patterns, model), traffic=validate.boolean("traffic", traffic))
    table = sweep(run, None, seeds=seeds, base_seed=base_seed, executor=executor, progress=progress)
    exact = exact_availability(model, patterns=patterns)
    rows = []
    for e in model.endpoints:
        row = {"endpoint": e.name, "exact": exact[e.name]}
        for what in ("time", "good") if traffic else ("time",):
            s = table.summary(f"{e.name}_{what}")[0]
            row.update({what: s.mean, f"{what}_low": s.low, f"{what}_high": s.high})
        rows.append(row)
    return rows


def weakest_link(model: SystemModel, *, duration: float, seeds=6, base_seed: int = 0, executor=None,
                 progress=False) -> list:
    """For each component that fails: the rate-weighted availability gained by doubling its MTTF
    and by halving its MTTR, exact and simulated (time availability, common seeds: the mean of the
    per-seed gains with its 95% interval, ``sim mttf x2 low``/``high``), best first."""
    model = _model(model)
    duration = validate.positive("duration", duration)
    seeds = list(range(base_seed, base_seed + validate.integer("seeds", seeds, low=1, high=1000)))
    base = _weighted(model, exact_availability(model))
    changes = {"none": ()}
    for c in model.components:
        if c.fails:
            changes[f"{c.name}:mttf"] = ((c.name, "mttf", c.mttf * 2),)
            changes[f"{c.name}:mttr"] = ((c.name, "mttr", c.mttr / 2),)
    table = sweep(functools.partial(_changed_run, model, duration=duration), {"change": list(changes)},
                  seeds=seeds, executor=executor, progress=progress)
    # per seed (the table's runs of a point are in replicate order, the same seeds at every point)
    per_seed = {ch: _weighted(model, {e.name: table.values(f"{e.name}_time", change=ch) for e in model.endpoints})
                for ch in changes}
    rows = []
    for c in model.components:
        if not c.fails:
            continue
        row = {"component": c.name}
        for what, field, value in (("mttf x2", "mttf", c.mttf * 2), ("mttr /2", "mttr", c.mttr / 2)):
            row[f"exact {what}"] = _weighted(model, exact_availability(model.with_(c.name, **{field: value}))) - base
            diffs = per_seed[f"{c.name}:{field}"] - per_seed["none"]
            row[f"sim {what}"], row[f"sim {what} low"], row[f"sim {what} high"] = (
                (float(diffs[0]),) * 3 if len(diffs) < 2 else mean_interval(diffs))
        row["best"] = max(row["exact mttf x2"], row["exact mttr /2"])
        rows.append(row)
    return sorted(rows, key=lambda r: -r["best"])


def _changed_run(model, *, change: str, duration: float, seed: int) -> dict:
    c = None if change == "none" else change.split(":")
    changes = () if c is None else ((c[0], c[1], getattr(model.component(c[0]), c[1]) * (2 if c[1] == "mttf" else 0.5)),)
    return availability_run(model, duration=duration, traffic=False, changes=changes, seed=seed)


def what_if(model: SystemModel, patterns=PATTERNS, *, duration: float, seeds=4, base_seed: int = 0,
            executor=None, progress=False) -> list:
    """Patterns switched on one by one (cumulative, in the order given): per step, the patterns on,
    each endpoint's good share and the run's own time availability (``<name> time``), means over
    common seeds, and the rate-weighted exact availability. The steps share their seeds, so the
    differences between steps are sharper than the levels of any one step."""
    model = _model(model)
    patterns = check_patterns(patterns, model)
    seeds = list(range(base_seed, base_seed + validate.integer("seeds", seeds, low=1, high=1000)))
    table = sweep(functools.partial(_step_run, model, patterns=patterns, duration=validate.positive("duration", duration)),
                  {"step": list(range(len(patterns) + 1))}, seeds=seeds, executor=executor, progress=progress)
    rows = []
    for step in range(len(patterns) + 1):
        on = patterns[:step]
        row = {"step": step, "patterns": " + ".join(on) or "none"}
        for e in model.endpoints:
            row[e.name] = float(table.values(f"{e.name}_good", step=step).mean())
            row[f"{e.name} time"] = float(table.values(f"{e.name}_time", step=step).mean())
        row["exact"] = _weighted(model, exact_availability(model, patterns=on))
        rows.append(row)
    return rows


def _step_run(model, *, patterns: tuple, step: int, duration: float, seed: int) -> dict:
    return availability_run(model, duration=duration, patterns=patterns[:step], seed=seed)


# --- the capstone's shop in this language ------------------------------------------------------------
#: The shop's database and the saga's participants (sim/shop.py builds them with these numbers).
SHOP_DB = {"slots": 20, "latency": 0.003}
SHOP_PARTICIPANTS = {"inventory": 0.01, "payment": 0.05, "shipping": 0.01}


def shop_model(*, mttf: dict | None = None, mttr: dict | None = None) -> SystemModel:
    """The capstone's shop (BASELINE: one replica each, no patterns) from ``sim/shop.py``'s SLOTS,
    WORK, PEAK and PATIENCE; ``mttf``/``mttr``: failures per component name (none by default)."""
    mttf, mttr = dict(mttf or {}), dict(mttr or {})
    deps = {"frontend": ("catalog", "recommendations", "search", "orders"), "catalog": ("db",),
            "orders": ("db", "inventory", "payment", "shipping")}
    fallback = {"recommendations": "static", "search": "sql_search"}

    def comp(name, slots, latency):
        return Component(name, slots=slots, latency=latency, depends_on=deps.get(name, ()), mttf=mttf.get(name),
                         mttr=mttr.get(name), fallback=fallback.get(name))
    comps = [comp(n, SLOTS[n], WORK[n]) for n in SLOTS] + [comp("db", SHOP_DB["slots"], SHOP_DB["latency"])]
    comps += [comp(n, 20, latency) for n, latency in SHOP_PARTICIPANTS.items()]
    uses = {"browse": ("catalog", "recommendations"), "search": ("search",), "checkout": ("orders",)}
    endpoints = [Endpoint(r, "frontend", PEAK[r], PATIENCE[r], uses[r]) for r in PEAK]
    return SystemModel(comps, endpoints, name="the capstone's shop")


def day_availability(model: SystemModel, day: ChaosDay, *, patterns=()) -> dict:
    """Per endpoint, ``(good, requests)`` of ``model`` through ``day`` (its profile scaled to each
    endpoint's rate, its faults), scored over the day as the capstone scores it."""
    model = _model(model)
    if not isinstance(day, ChaosDay):
        raise validate.WrongType(f"day must be a ChaosDay, got {validate.show(day)}")
    world = World(day.seed)
    build(model, world, duration=day.duration, patterns=patterns, failures=False, day=day)
    window = world.run(day.duration + 60.0).between(0.0, day.duration)
    return {e.name: _counts(window, e.name, e.patience) for e in model.endpoints}


def _counts(window, route: str, patience: float) -> tuple:
    view = window.only(route)
    return int(good(view, Slo(route, 0.5, patience)).sum()), len(view)


def shop_validation(day: ChaosDay, *, sds: float = 4.0, model: SystemModel | None = None) -> list:
    """The capstone's engine (``run_day(BASELINE, day)``) beside :func:`shop_model` through the same
    ``day``: per endpoint both good shares, their difference and the tolerance, ``sds`` standard
    errors of a difference of two shares (the share floored at 1/n: a share of 1 has an error too).
    ``model``: another description to hold against the capstone (default :func:`shop_model`)."""
    sds = validate.positive("sds", sds)
    run = run_day(ShopConfig(name="baseline"), day)
    window = run.results.between(0.0, day.duration)
    mine = day_availability(shop_model() if model is None else _model(model), day)
    rows = []
    for route in PEAK:
        g1, n1 = _counts(window, route, PATIENCE[route])
        g2, n2 = mine[route]
        a1, a2 = g1 / n1, g2 / n2
        p = min(max((g1 + g2) / (n1 + n2), 1 / (n1 + n2)), 1 - 1 / (n1 + n2))
        tol = sds * math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
        rows.append({"endpoint": route, "capstone": a1, "model": a2, "requests": n1, "difference": a2 - a1,
                     "tolerance": tol, "agree": abs(a2 - a1) <= tol})
    return rows


# --- a textbook case with an exact answer -------------------------------------------------------------
#: The textbook case's (MTTF, MTTR) in seconds: a frontend -> two replicas of an api -> one db.
TEXTBOOK = {"frontend": (20_000.0, 200.0), "api": (1_000.0, 250.0), "db": (5_000.0, 250.0)}


def textbook(api_replicas: int = 2) -> SystemModel:
    """The textbook case: a frontend -> ``api_replicas`` replicas of an api -> one db (:data:`TEXTBOOK`)."""
    (ff, fr), (af, ar), (df, dr) = TEXTBOOK.values()
    return SystemModel(
        [Component("frontend", slots=40, latency=0.001, depends_on=("api",), mttf=ff, mttr=fr),
         Component("api", slots=8, latency=0.01, depends_on=("db",), mttf=af, mttr=ar, replicas=api_replicas),
         Component("db", slots=20, latency=0.003, mttf=df, mttr=dr)],
        [Endpoint("page", entry="frontend", rate=5.0, patience=2.0)], name="the textbook case")


def textbook_check(*, duration: float = 400_000.0, seeds=12, base_seed: int = 3, sds: float = 4.0) -> dict:
    """The textbook case's simulated time availability against its exact answer: the tolerance is
    ``sds`` standard errors (the components' ``theory.availability_sd`` in quadrature over the square
    root of the seeds). ``wrong`` is the exact answer of a wrong model (one api replica): the check
    must reject it (``rejects_wrong``)."""
    sds = validate.positive("sds", sds)
    n = validate.integer("seeds", seeds, low=1, high=1000)
    row, = availability_table(textbook(), duration=duration, seeds=n, base_seed=base_seed, traffic=False)
    sd = math.sqrt(sum(theory.availability_sd(f, r, duration) ** 2 for f, r in TEXTBOOK.values()))
    tol = sds * sd / math.sqrt(n)
    wrong = exact_availability(textbook(api_replicas=1))["page"]
    return {"exact": row["exact"], "simulated": row["time"], "tolerance": tol, "wrong": wrong,
            "agree": abs(row["time"] - row["exact"]) <= tol, "rejects_wrong": abs(row["time"] - wrong) > tol}


__all__ = ["MAX_EXACT", "component_availability", "exact_availability", "time_availability", "availability_run",
           "availability_table", "weakest_link", "what_if", "shop_model", "day_availability", "shop_validation", "TEXTBOOK", "textbook", "textbook_check"]
