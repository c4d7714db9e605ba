"""A simulator that cannot be fooled: random small scenarios keep the books straight.

Hypothesis draws a scenario as plain data (so a failing one prints as something to read and rebuild):
1 to 4 services with random capacity, latency, error rate and queue limit, whose handlers call the
services declared after them (in turn or all at once, degrading or failing when one fails), directly or
through a client with policies; faults (Outage, LatencySpike, ErrorBurst, GrayFailure, Partition,
FailureRepair); workloads (OpenLoop with Constant, Ramp, Step or Spike; ClosedLoop); and in front a
Client (sometimes around another client) with any of timeout, deadline, retry with a backoff, retry
budget, adaptive throttle, circuit breaker, bulkhead (sometimes one shared by every client) and hedging.
Every run must keep these invariants:

* every request ends exactly once: one row per request the workloads sent, "unfinished" ones included;
* the outcome counts add up to the rows; availability is in [0, 1]; every latency is >= 0; every
  request starts in [0, until) and ends by ``until``; every row made at least one attempt; a failed,
  timed-out or rejected row's outcome is the one its reason stands for, and an answered one has a
  component that answered;
* the same seed gives byte-identical columns (the scenario is built and run twice);
* ``between`` splits the rows into the windows on either side of any instant, and ``only`` into routes;
* a run ends by itself (no frozen clock, no exception, no hang).
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

import resilience_sim as rs
import resilience_sim.policies as pol
from resilience_sim.core.reasons import Outcome, outcome_for

import fuzz_table as ft

#: A run (built and run once) that takes longer than this counts as a hang.
RUN_SECONDS = 10.0


# --- scenarios as data ----------------------------------------------------------------------------
def latency():
    scale = st.floats(0.002, 0.15)
    return st.one_of(st.tuples(st.just("fixed"), scale), st.tuples(st.just("exponential"), scale),
                     st.tuples(st.just("lognormal"), scale, st.floats(0.1, 1.5)),
                     st.tuples(st.just("uniform"), scale, st.floats(0.0, 0.1)))


def window(until):
    return st.tuples(st.floats(0.0, until), st.floats(0.05, until)).map(lambda w: (w[0], w[0] + w[1]))


def policies(depth):
    """The policies of one client (all optional); ``depth`` 0 is the front client."""
    backoff = st.one_of(st.tuples(st.just("constant"), st.floats(0.001, 0.2)),
                        *[st.tuples(st.just(kind), st.floats(0.001, 0.1), st.floats(0.1, 1.0))
                          for kind in ("exponential", "full", "equal", "decorrelated")])
    return st.fixed_dictionaries({}, optional={
        "timeout": st.floats(0.01, 1.0),
        "deadline": st.floats(0.05, 3.0),
        "retry": st.tuples(st.integers(1, 4), backoff),
        "budget": st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 5.0)),
        "throttle": st.floats(1.0, 3.0),
        "breaker": st.one_of(st.tuples(st.just("consecutive"), st.integers(1, 5), st.floats(0.05, 2.0)),
                             st.tuples(st.just("rate"), st.floats(0.1, 1.0), st.floats(0.05, 2.0))),
        "bulkhead": st.tuples(st.integers(1, 3), st.sampled_from([0.0, 0.05, 0.5])),
        "hedge": st.tuples(st.floats(0.005, 0.2), st.integers(1, 2)),
        "idempotent": st.booleans(),
    })


@st.composite
def scenarios(draw):
    until = draw(st.floats(1.0, 5.0))
    n = draw(st.integers(1, 4))
    services = []
    for i in range(n):
        later = [f"s{j}" for j in range(i + 1, n)]
        deps = draw(st.lists(st.sampled_from(later), unique=True, max_size=2)) if later else []
        services.append({
            "name": f"s{i}", "capacity": draw(st.integers(1, 3)), "latency": draw(latency()),
            "error_rate": draw(st.sampled_from([0.0, 0.0, 0.05, 0.3])),
            "queue_limit": draw(st.sampled_from([None, None, 0, 2, 5])),
            "deps": [(d, draw(st.none() | policies(1))) for d in deps],
            "fanout": draw(st.booleans()), "degrade": draw(st.booleans()),
        })
    names = [s["name"] for s in services]
    fault = st.one_of(
        st.tuples(st.just("outage"), st.sampled_from(names), window(until)),
        st.tuples(st.just("spike"), st.sampled_from(names), window(until), st.floats(0.0, 0.3), st.floats(1.0, 5.0)),
        st.tuples(st.just("burst"), st.sampled_from(names), window(until), st.floats(0.1, 1.0)),
        st.tuples(st.just("gray"), st.sampled_from(names), window(until), st.floats(1.5, 5.0), st.floats(0.0, 0.5)),
        st.tuples(st.just("repair"), st.sampled_from(names), st.floats(0.3, 5.0), st.floats(0.05, 1.0)),
        *([st.tuples(st.just("partition"), st.permutations(names).map(lambda p: tuple(p[:2])), window(until),
                     st.sampled_from([0.0, 0.05]))] if n > 1 else []))
    profile = st.one_of(
        st.tuples(st.just("constant"), st.floats(1.0, 30.0)),
        st.tuples(st.just("ramp"), st.floats(0.0, 20.0), st.floats(1.0, 30.0), st.floats(0.1, until)),
        st.tuples(st.just("step"), st.floats(0.0, 20.0), st.floats(1.0, 30.0), st.floats(0.0, until)),
        st.tuples(st.just("spike"), st.floats(0.0, 10.0), st.floats(11.0, 40.0), st.floats(0.0, until),
                  st.floats(0.1, 1.0)))
    workload = st.one_of(
        st.tuples(st.just("open"), profile, st.floats(0.5, until * 1.5), st.none() | st.integers(1, 60),
                  st.booleans()),
        st.tuples(st.just("closed"), st.integers(1, 5), st.floats(0.01, 0.5), st.floats(0.5, until * 1.5)))
    return {
        "seed": draw(st.integers(0, 2 ** 32)), "until": until, "services": services,
        "faults": draw(st.lists(fault, max_size=3)),
        "front": draw(st.none() | policies(0)),
        "inner": draw(st.none() | policies(1)),          # a client between the front one and s0
        "share_bulkhead": draw(st.booleans()),           # every client with a bulkhead shares the first one
        "workloads": draw(st.lists(workload, min_size=1, max_size=2)),
    }


# --- building and running one --------------------------------------------------------------------
def make_latency(spec):
    kind, scale, *more = spec
    if kind == "fixed":
        return rs.Fixed(scale)
    if kind == "exponential":
        return rs.Exponential(scale)
    if kind == "lognormal":
        return rs.LogNormal(scale, more[0])
    return rs.Uniform(scale, scale + more[0])


def make_backoff(spec):
    kind, base, *cap = spec
    if kind == "constant":
        return pol.Constant(base)
    cls = {"exponential": pol.Exponential, "full": pol.FullJitter, "equal": pol.EqualJitter,
           "decorrelated": pol.DecorrelatedJitter}[kind]
    return cls(base, max(cap[0], base))


def make_client(world, target, name, spec, shared=None):
    kw = {}
    if "timeout" in spec:
        kw["timeout"] = spec["timeout"]
    if "deadline" in spec:
        kw["deadline"] = spec["deadline"]
    if "retry" in spec:
        attempts, backoff = spec["retry"]
        kw["retry"] = pol.RetryPolicy(attempts, make_backoff(backoff))
    if "budget" in spec:
        kw["budget"] = pol.RetryBudget(ratio=spec["budget"][0], min_per_second=spec["budget"][1])
    if "throttle" in spec:
        kw["throttle"] = pol.AdaptiveThrottle(k=spec["throttle"])
    if "breaker" in spec:
        kind, x, open_for = spec["breaker"]
        kw["breaker"] = (pol.CircuitBreaker(consecutive_failures=x, open_for=open_for) if kind == "consecutive"
                         else pol.CircuitBreaker(failure_rate=x, window=10, min_calls=3, open_for=open_for))
    if "bulkhead" in spec:
        if shared is not None and "bulkhead" in shared:
            kw["bulkhead"] = shared["bulkhead"]
        else:
            kw["bulkhead"] = pol.Bulkhead(spec["bulkhead"][0], max_wait=spec["bulkhead"][1])
            if shared is not None:
                shared["bulkhead"] = kw["bulkhead"]
    if "hedge" in spec:
        kw["hedge"] = pol.HedgePolicy(spec["hedge"][0], spec["hedge"][1])
    if "idempotent" in spec:
        kw["idempotent"] = spec["idempotent"]
    return rs.Client(world, target, name=name, **kw)


def make_handler(deps, fanout, degrade):
    """Call every dependency, in turn or all at once; a failure degrades the answer or fails the call."""
    def handler(svc, req):
        if fanout:
            outcomes = yield from svc.ask_all(deps, req)
            errors = [err for ok, err in outcomes if not ok]
            if errors:
                if not degrade:
                    raise errors[0]
                req.degraded = "partial answer"
            return None
        for dep in deps:
            try:
                yield from svc.ask(dep, req)
            except rs.ServiceError:
                if not degrade:
                    raise
                req.degraded = f"without {dep}"
        return None
    return handler


def make_profile(spec):
    kind, *a = spec
    if kind == "constant":
        return rs.Constant(a[0])
    if kind == "ramp":
        return rs.Ramp(a[0], a[1], a[2])
    if kind == "step":
        return rs.Step(a[0], a[1], a[2])
    return rs.Spike(a[0], a[1], a[2], a[3])


def build(spec):
    """The World of a scenario, ready to run."""
    world = rs.World(spec["seed"])
    services = {}
    shared = {} if spec.get("share_bulkhead") else None
    for s in reversed(spec["services"]):              # dependencies first: a client needs its target
        deps = []
        for dep, client in s["deps"]:
            deps.append(dep if client is None else
                        make_client(world, services[dep], f"{s['name']}->{dep}", client, shared))
        handler = make_handler([d for d, _ in s["deps"]], s["fanout"], s["degrade"]) if s["deps"] else None
        services[s["name"]] = rs.Service(world, s["name"], capacity=s["capacity"], latency=make_latency(s["latency"]),
                                         error_rate=s["error_rate"], queue_limit=s["queue_limit"],
                                         dependencies=deps, handler=handler)
    for f in spec["faults"]:
        kind = f[0]
        if kind == "outage":
            rs.Outage(services[f[1]], [f[2]])
        elif kind == "spike":
            rs.LatencySpike(services[f[1]], [f[2]], extra=f[3], factor=max(f[4], 1.0 if f[3] > 0 else 1.5))
        elif kind == "burst":
            rs.ErrorBurst(services[f[1]], [f[2]], error_rate=f[3])
        elif kind == "gray":
            rs.GrayFailure(services[f[1]], [f[2]], slowdown=f[3], error_rate=f[4])
        elif kind == "repair":
            rs.FailureRepair(services[f[1]], mttf=f[2], mttr=f[3])
        else:
            a, b = f[1]
            rs.Partition(services[a], services[b], [f[2]], hang=f[3])
    target = services["s0"]
    if spec.get("inner") is not None:
        target = make_client(world, target, "inner", spec["inner"], shared)
    if spec["front"] is not None:
        target = make_client(world, target, "front", spec["front"], shared)
    for i, w in enumerate(spec["workloads"]):
        if w[0] == "open":
            _, profile, duration, requests, keyed = w
            rs.OpenLoop(world, target, make_profile(profile), duration=duration, requests=requests,
                        name=f"w{i}", key=(lambda rng: rng.randrange(5)) if keyed else None)
        else:
            _, users, think, duration = w
            rs.ClosedLoop(world, target, users=users, think=think, duration=duration, name=f"w{i}")
    return world


def run(spec):
    """(results, requests the workloads sent, the world) of one run of ``spec``."""
    world = build(spec)
    results = world.run(spec["until"])
    return results, sum(w.sent for w in world.workloads.values()), world


def columns(results) -> dict:
    """Every per-request column, with codes read as the names they stand for."""
    names = results.names
    return {"start": results.start.tobytes(), "end": results.end.tobytes(), "outcome": results.outcome.tobytes(),
            "attempts": results.attempts.tobytes(),
            "reason": [names[c] for c in results._reason], "answered_by": [names[c] for c in results._answered_by],
            "route": [names[c] for c in results._route], "key": [results.keys[c] for c in results._key]}


#: The changes a circuit breaker may make (module docstring of policies/breaker.py).
BREAKER_MOVES = {("closed", "open"), ("open", "half-open"), ("half-open", "closed"), ("half-open", "open")}


def broken_books(spec, world) -> list[str]:
    """What the run's own objects must still agree on at the end: slots, queues, breaker histories."""
    bad = []
    for svc in world.services.values():
        if not (0 <= svc.busy <= svc.capacity) or svc.failures > svc.calls:
            bad.append(f"service {svc.name}: busy {svc.busy} of {svc.capacity}, {svc.failures} failures "
                       f"of {svc.calls} calls")
    for c in world.clients.values():
        if c.bulkhead is not None and not (0 <= c.bulkhead.in_use <= c.bulkhead.max_concurrent
                                           and c.bulkhead.peak <= c.bulkhead.max_concurrent):
            bad.append(f"client {c.name}: bulkhead in use {c.bulkhead.in_use}, peak {c.bulkhead.peak}, "
                       f"of {c.bulkhead.max_concurrent}")
        if c.throttle is not None and c.throttle.allowed < 0:
            bad.append(f"client {c.name}: the throttle counts {c.throttle.allowed} requests allowed")
        if c.breaker is not None:
            history = list(c.breaker.history)
            times = [t for t, _ in history]
            moves = [(a, b) for (_, a), (_, b) in zip(history, history[1:])]
            if times != sorted(times) or any(m not in BREAKER_MOVES for m in moves):
                bad.append(f"client {c.name}: breaker history out of order or an impossible move: {history[:8]}")
            if any(t > spec["until"] for t in times):
                bad.append(f"client {c.name}: breaker history runs past until: {history[-3:]}")
    return bad


def broken_invariants(spec, results, sent, again) -> list[str]:
    """Every invariant the run breaks, as a sentence each (empty: all hold)."""
    bad = []
    until, n = spec["until"], len(results)
    if n != sent:
        bad.append(f"rows {n} != requests sent {sent} (every request must end exactly once)")
    unfinished = int(np.count_nonzero([results.names[c] == "unfinished" for c in results._reason]))
    if unfinished != results.in_flight:
        bad.append(f"{unfinished} rows are 'unfinished' but in_flight is {results.in_flight}")
    counts = results.outcome_counts()
    if sum(counts.values()) != n:
        bad.append(f"outcome counts {counts} add up to {sum(counts.values())}, not the {n} rows")
    if n:
        a, full = results.request_availability(), results.full_quality_availability()
        if not (0.0 <= full <= a <= 1.0):
            bad.append(f"availability {a!r} (full quality {full!r}) is not 0 <= full <= availability <= 1")
    lat = results.latency
    if n and not (np.all(np.isfinite(lat)) and lat.min() >= 0):
        bad.append(f"latencies must be finite and >= 0, min {lat.min()!r}")
    if n and not (results.start.min() >= 0 and results.start.max() < until and results.end.max() <= until):
        bad.append(f"starts must be in [0, {until}) and ends <= until: starts [{results.start.min()}, "
                   f"{results.start.max()}], latest end {results.end.max()}")
    if n and results.attempts.min() < 1:
        bad.append(f"a row made {results.attempts.min()} attempts")
    outer = spec["front"] if spec["front"] is not None else (spec.get("inner") or {})   # the client users call
    most = outer["retry"][0] if "retry" in outer else 1
    if n and results.attempts.max() > most:
        bad.append(f"a row made {results.attempts.max()} attempts; the front client allows {most}")
    for i in range(n):
        outcome, reason = Outcome(int(results.outcome[i])), results.reason(i)
        if outcome == Outcome.OK and reason:
            bad.append(f"row {i} is OK with a reason {reason!r}")
        elif outcome >= Outcome.FAILED and outcome_for(reason) != outcome:
            bad.append(f"row {i} is {outcome.name} with reason {reason!r}, which stands for {outcome_for(reason).name}")
        elif outcome <= Outcome.DEGRADED and not results.names[results._answered_by[i]]:
            bad.append(f"row {i} is {outcome.name} but nobody answered it")
        elif reason == "unfinished" and results.end[i] != until:
            bad.append(f"row {i} is unfinished but ends at {results.end[i]}, not at until={until}")
        if len(bad) > 12:
            break
    for t in (until / 3, until / 2, until * 0.999):
        left, right = results.between(0.0, t), results.between(t, until)
        if len(left) + len(right) != n:
            bad.append(f"between(0, {t:g}) and between({t:g}, until) hold {len(left)} + {len(right)} rows, not {n}")
        elif not np.array_equal(np.sort(np.concatenate([left.start, right.start])), np.sort(results.start)):
            bad.append(f"between(0, {t:g}) and between({t:g}, until) are not a split of the rows")
    if len(results.between(0.0, until)) != n:
        bad.append("between(0, until) does not hold every row")
    routes = [r for r in results.routes if r]
    if routes:
        parts = [results.only(r) for r in routes]
        if sum(len(p) for p in parts) != n:
            bad.append(f"only() over routes {routes} holds {[len(p) for p in parts]}, not {n} rows in all")
        if len(results.only(*routes)) != n:
            bad.append(f"only(*{routes}) does not hold every row")
    first, second = columns(results), columns(again)
    differ = [name for name in first if first[name] != second[name]]
    if differ:
        bad.append(f"the same seed gave different columns: {differ}")
    return bad


def check(spec) -> list[str]:
    """Run ``spec`` twice (each under a time limit) and list what is broken."""
    outcome = []
    for _ in range(2):
        what, out = ft.guarded(lambda: run(spec), RUN_SECONDS)
        if what == "hang":
            return [f"the run did not end within {RUN_SECONDS:g} s"]
        if what == "raised":
            return [f"the run raised {type(out).__name__}: {out}"]
        outcome.append(out)
    (results, sent, world), (again, _, _) = outcome
    return broken_invariants(spec, results, sent, again) + broken_books(spec, world)


#: Found by this fuzz, kept so it runs every time: users call s0 directly, s0 calls s1 through a client
#: that retries; each row must show the one attempt the user made, not the client's retries below.
DEPENDENCY_RETRIES = {
    "seed": 1, "until": 3.0, "front": None, "inner": None, "share_bulkhead": False, "faults": [],
    "services": [{"name": "s0", "capacity": 1, "latency": ("fixed", 0.01), "error_rate": 0.0, "queue_limit": None,
                  "deps": [("s1", {"retry": (4, ("constant", 0.01))})], "fanout": False, "degrade": True},
                 {"name": "s1", "capacity": 1, "latency": ("fixed", 0.01), "error_rate": 0.5, "queue_limit": None,
                  "deps": [], "fanout": False, "degrade": False}],
    "workloads": [("open", ("constant", 5.0), 2.0, None, False)]}


@settings(max_examples=50, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec=scenarios())
def test_random_scenarios_keep_every_invariant(spec):
    note(f"scenario: {spec!r}")
    broken = check(spec)
    assert not broken, "invariants broken:\n  " + "\n  ".join(broken) + f"\nscenario: {spec!r}"


def test_a_row_counts_the_attempts_of_the_users_request_not_those_of_a_dependency_client():
    """A case the fuzz found, pinned (a separate test, so that the random search goes on meanwhile)."""
    broken = check(DEPENDENCY_RETRIES)
    assert not broken, "invariants broken:\n  " + "\n  ".join(broken)


def test_a_scenario_with_every_layer_keeps_every_invariant():
    """One fixed scenario with every fault, workload and policy at once (the fuzz draws only some)."""
    every = {"timeout": 0.3, "deadline": 1.0, "retry": (3, ("full", 0.01, 0.2)), "budget": (0.2, 1.0),
             "throttle": 2.0, "breaker": ("consecutive", 3, 0.5), "bulkhead": (2, 0.05), "hedge": (0.05, 1),
             "idempotent": True}
    spec = {"seed": 7, "until": 4.0,
            "services": [{"name": "s0", "capacity": 2, "latency": ("exponential", 0.02), "error_rate": 0.05,
                          "queue_limit": 5, "deps": [("s1", every), ("s2", None)], "fanout": True, "degrade": True},
                         {"name": "s1", "capacity": 1, "latency": ("lognormal", 0.02, 0.8), "error_rate": 0.1,
                          "queue_limit": None, "deps": [("s2", {"timeout": 0.1})], "fanout": False, "degrade": False},
                         {"name": "s2", "capacity": 3, "latency": ("uniform", 0.01, 0.05), "error_rate": 0.0,
                          "queue_limit": 2, "deps": [], "fanout": False, "degrade": False}],
            "faults": [("outage", "s2", (1.0, 1.5)), ("spike", "s1", (0.5, 1.0), 0.2, 2.0),
                       ("burst", "s0", (2.0, 2.5), 0.5), ("gray", "s2", (2.5, 3.0), 3.0, 0.2),
                       ("repair", "s1", 1.0, 0.2), ("partition", ("s0", "s2"), (3.0, 3.5), 0.05)],
            "front": every, "inner": {"timeout": 0.5, "retry": (2, ("constant", 0.01))}, "share_bulkhead": True,
            "workloads": [("open", ("spike", 5.0, 30.0, 1.0, 0.5), 5.0, None, True),
                          ("closed", 3, 0.05, 3.0)]}
    broken = check(spec)
    assert not broken, "invariants broken:\n  " + "\n  ".join(broken)
    assert math.isfinite(run(spec)[0].calls_per_request())
