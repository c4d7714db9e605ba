"""The simulator's service and client on small worlds with fixed latencies: each call's end time and
outcome worked out by hand, every refusal at both sides of its boundary, and what each policy was told.
Mutants these cannot kill, and why they cannot change behaviour: tools/equivalent_mutants/sim.txt."""
import math
import random

import numpy as np
import pytest
import simpy

from resilience_sim import Client, Service, ServiceError, World
from resilience_sim.core import validate
from resilience_sim.core.distributions import Exponential, Fixed
from resilience_sim.core.reasons import Outcome
from resilience_sim.policies import (AdaptiveThrottle, Bulkhead, CircuitBreaker, ConstantBackoff, Deadline,
                                     FullJitter, HedgePolicy, LoadShedder, RetryBudget, RetryPolicy, Timeout,
                                     TokenBucket)
from resilience_sim.sim.faults import Partition
from resilience_sim.sim.service import Condition, Request, outcome_of


def send(world, target, at=0.0, log=None, tag=None, *, deadline=None, route="r", key=None, caller=None):
    """Call ``target`` at time ``at`` with a fresh request; log ``(tag, end time, "ok" or the reason, value
    or the failing component)``. Returns the request."""
    log = [] if log is None else log
    req = Request(at, route, key)
    if deadline is not None:
        req.deadline = deadline

    def run():
        if at > world.now:
            yield world.env.timeout(at - world.now)
        try:
            call = target.call(req) if caller is None else target.call(req, caller=caller)
            value = yield from call
            log.append((tag, world.now, "ok", value))
        except ServiceError as err:
            log.append((tag, world.now, err.reason, err.service))
    world.env.process(run())
    return req


def calls(world, target, times, **kw):
    """Send one request at each of ``times`` (tags 0, 1, ...); run; return the log, sorted by tag."""
    log = []
    for i, t in enumerate(times):
        send(world, target, t, log, i, **kw)
    world.env.run()
    return sorted(log, key=lambda row: row[0])


# --- errors, requests, conditions ------------------------------------------------------------------------------
def test_a_service_error_names_the_service_and_a_known_reason():
    err = ServiceError("db", "timeout")
    assert (str(err), err.service, err.reason, err.outcome) == ("db: timeout", "db", "timeout", Outcome.TIMED_OUT)
    assert ServiceError("db", "overload").outcome == Outcome.REJECTED
    assert ServiceError("db", "error").outcome == Outcome.FAILED
    with pytest.raises(ValueError, match="^service must be"):
        ServiceError("", "error")
    with pytest.raises(ValueError, match="^reason must be a known reason"):
        ServiceError("db", "oops")


def test_a_request_starts_with_one_attempt_no_answer_and_no_deadline():
    req = Request(2.5, "read", ("user", 7))
    assert (req.start, req.route, req.key, req.attempts, req.answered_by, req.degraded, req.deadline, req.age) == \
        (2.5, "read", ("user", 7), 1, "", "", math.inf, 0.0)
    assert repr(req) == "Request('read', key=('user', 7), start=2.5)"
    assert repr(Request(0)) == "Request('', start=0)"
    assert Request(0).key is None and Request(0).route == ""
    with pytest.raises(ValueError, match="^start must be"):
        Request(-1.0)
    with pytest.raises(validate.WrongType, match="^route must be"):
        Request(0, 5)
    with pytest.raises(validate.WrongType, match=r"^key must be None or a hashable value \(a number, a string, a "
                                                 r"tuple\), got \[1, 2\]$"):
        Request(0, "r", [1, 2])


def test_a_child_request_has_its_own_deadline_and_the_parent_adopts_what_it_learned():
    parent = Request(1.0, "read", "k")
    parent.attempts, parent.answered_by, parent.age = 3, "api", 2.0
    sub = parent.child(4.0)
    assert (sub.start, sub.route, sub.key, sub.deadline, sub.attempts, sub.answered_by, sub.age) == \
        (1.0, "read", "k", 4.0, 1, "", 0.0)
    assert parent.child(5).deadline == 5.0 and parent.child(5).deadline.__class__ is float
    assert parent.child(np.float64(2.5)).deadline == 2.5 and parent.child(math.inf).deadline == math.inf
    assert parent.child(np.float64(math.inf)).deadline == math.inf and parent.child(10 ** 400).deadline == math.inf
    with pytest.raises(ValueError, match="^deadline must be"):
        parent.child(math.nan)
    with pytest.raises(validate.WrongType, match="^deadline must be"):
        parent.child("4")
    parent.adopt(sub)                                  # the child learned nothing: the parent keeps its own
    assert (parent.answered_by, parent.degraded, parent.age) == ("api", "", 2.0)
    sub.answered_by, sub.degraded, sub.age = "cache", "stale", 1.0
    parent.adopt(sub)
    assert (parent.answered_by, parent.degraded, parent.age) == ("cache", "stale", 2.0)   # the older age stays
    sub.age = 7.0
    parent.adopt(sub)
    assert parent.age == 7.0
    with pytest.raises(validate.WrongType, match=r"^sub must be a Request \(one made by child\(\)\), got 'sub'$"):
        parent.adopt("sub")


def test_a_condition_checks_its_factor_and_error_rate():
    c = Condition()
    assert (c.latency_factor, c.extra_latency, c.error_rate, c.extra_rng) == (1.0, None, 0.0, None)
    assert Condition(latency_factor=0.0).latency_factor == 0.0
    with pytest.raises(ValueError, match="^latency_factor must be"):
        Condition(latency_factor=-0.5)
    with pytest.raises(ValueError, match="^error_rate must be"):
        Condition(error_rate=1.5)


# --- building a service ---------------------------------------------------------------------------------------
def test_a_service_refuses_bad_settings():
    world = World(1)
    for kw, match in [({"capacity": 0}, "^capacity must be"), ({"queue_limit": -1}, "^queue_limit must be"),
                      ({"error_rate": -0.1}, "^error_rate must be"), ({"latency": -1.0}, "^latency"),
                      ({"handler": 5}, "^handler must be a callable"),
                      ({"shedder": TokenBucket(1, 1)}, "^shedder must be a LoadShedder or None"),
                      ({"rate_limit": LoadShedder(1)}, "^rate_limit must be a TokenBucket or None")]:
        with pytest.raises(ValueError, match=match):
            Service(world, "s", **kw)
    for name in ("", 5, None):
        with pytest.raises(ValueError, match="^name must be a non-empty string"):
            Service(world, name)
    with pytest.raises(validate.WrongType, match="^world must be a World"):
        Service("world", "s")
    svc = Service(world, "s", capacity=1, queue_limit=0)
    assert (svc.capacity, svc.queue_limit, svc.error_rate, svc.handler, svc.shedder, svc.rate_limit) == \
        (1, 0, 0.0, None, None, None)
    assert repr(svc) == "Service('s', capacity=1, up=True)"
    assert Service(world, "t").queue_limit is None and Service(world, "u").timeline.name == "u"
    with pytest.raises(ValueError, match="^name must be unique in the world"):
        Service(world, "s")


def test_dependencies_are_named_by_name_service_client_or_dict_key():
    world = World(1)
    db = Service(world, "db")
    cache = Service(world, "cache")
    inner = Client(world, cache, name="inner")
    outer = Client(world, inner, name="outer")
    api = Service(world, "api", dependencies=["search", db, outer])
    assert api.dependencies == ("search", "db", "cache")
    assert Service(world, "api2", dependencies={"primary": db, "x": "db"}).dependencies == ("primary", "x")
    assert Service(world, "api3").dependencies == ()


@pytest.mark.parametrize("deps, match", [
    ("db", r"^dependencies must be a list of services, clients or service names, got the string 'db' "
           r"\(write \['db'\]\)$"),
    (5, r"^dependencies must be a list of services, clients or service names, got 5$"),
    ([5], r"^dependencies must be service names, services or clients, got 5$"),
    ({"": "db"}, r"^dependencies must be named by non-empty strings, got ''$"),
    ({3: "db"}, r"^dependencies must be named by non-empty strings, got 3$"),
    ([""], r"^dependencies must be named by non-empty strings, got ''$"),
    (["db", "db"], r"^dependencies of 'api' name 'db' twice$"),
])
def test_dependencies_refuse_what_cannot_be_named(deps, match):
    with pytest.raises(ValueError, match=match):
        Service(World(1), "api", dependencies=deps)


def test_a_dependency_that_ends_at_no_service_must_be_named():
    class Anything:
        def call(self, req, caller=None):
            yield from ()

    with pytest.raises(ValueError, match=r"^dependencies: cannot tell which service .* calls; give a dict"):
        Service(World(1), "api", dependencies=[Anything()])
    world = World(1)
    assert Service(world, "api", dependencies={"thing": Anything()}).dependencies == ("thing",)


# --- the path of one call: free slot, queue, limits -------------------------------------------------------------
def test_calls_take_free_slots_then_wait_first_come_first_served():
    world = World(1)
    db = Service(world, "db", capacity=2, latency=0.5)
    log = calls(world, db, [0.0, 0.0, 0.0, 0.2])
    assert log == [(0, 0.5, "ok", None), (1, 0.5, "ok", None), (2, 1.0, "ok", None), (3, 1.0, "ok", None)]
    assert (db.calls, db.failures, db.busy, db.waiting, db.in_system) == (4, 0, 0, 0, 0)


def test_busy_waiting_and_in_system_while_calls_are_served():
    world = World(1)
    db = Service(world, "db", capacity=2, latency=1.0)
    for _ in range(5):
        send(world, db)
    world.env.run(until=0.5)
    assert (db.busy, db.waiting, db.in_system) == (2, 3, 5)
    world.env.run(until=1.5)
    assert (db.busy, db.waiting, db.in_system) == (2, 1, 3)


def test_the_answer_is_by_the_service_unless_a_dependency_answered():
    world = World(1)
    leaf = Service(world, "leaf", latency=0.25)

    def via_leaf(svc, req):
        yield from svc.ask("leaf", req)
        return "from leaf"

    def named(svc, req):
        yield svc.env.timeout(0.5)
        req.answered_by = "someone"
        return 42

    def plain(svc, req):
        yield svc.env.timeout(0.5)
        return 7

    apis = [Service(world, f"api{i}", dependencies=["leaf"], handler=h) for i, h in enumerate([via_leaf, named, plain])]
    reqs = [send(world, api, 0.0) for api in [leaf, *apis]]
    world.env.run()
    assert [r.answered_by for r in reqs] == ["leaf", "leaf", "someone", "api2"]


def test_a_queue_limit_refuses_a_call_that_would_wait_behind_a_full_queue():
    for limit, outcomes in [(0, ["ok", "overload", "overload"]), (1, ["ok", "ok", "overload"]),
                            (2, ["ok", "ok", "ok"])]:
        world = World(1)
        db = Service(world, "db", capacity=1, latency=1.0, queue_limit=limit)
        log = calls(world, db, [0.0, 0.0, 0.0])
        assert [row[2] for row in log] == outcomes
        refused = outcomes.count("overload")
        assert [row[1] for row in log if row[2] == "overload"] == [0.0] * refused      # refused at once
        assert (db.calls, db.failures, dict(db.failure_reasons)) == (3, refused, {"overload": refused} if refused else {})


def test_a_shedder_is_asked_only_by_a_call_that_would_wait():
    world = World(1)
    shedder = LoadShedder(max_queue=0)
    db = Service(world, "db", capacity=2, latency=1.0, shedder=shedder)
    log = calls(world, db, [0.0, 0.0, 0.0, 1.5])
    assert [row[2] for row in log] == ["ok", "ok", "shed", "ok"]
    assert shedder.admitted == 0 and len(shedder.sheds) == 1          # asked once, by the third


def test_a_shedder_sees_the_queue_length_and_the_oldest_wait():
    world = World(1)
    shedder = LoadShedder(max_queue=1)
    db = Service(world, "db", capacity=1, latency=1.0, shedder=shedder)
    log = calls(world, db, [0.0, 0.0, 0.0])
    assert [row[2] for row in log] == ["ok", "ok", "shed"] and shedder.admitted == 1
    # by wait: the oldest waiter came at 0.1; at 0.5 it has waited 0.4 (kept), at 0.7 0.6 (> 0.5: shed)
    world = World(1)
    shedder = LoadShedder(max_queue_delay=0.5)
    db = Service(world, "db", capacity=1, latency=2.0, shedder=shedder)
    log = calls(world, db, [0.0, 0.1, 0.5, 0.7])
    assert [row[2] for row in log] == ["ok", "ok", "ok", "shed"]
    assert log[3][1] == 0.7 and shedder.admitted == 2


def test_a_rate_limit_is_asked_after_the_shedder_so_a_shed_call_keeps_its_token():
    world = World(1)
    bucket = TokenBucket(rate=1e-9, burst=2)
    db = Service(world, "db", capacity=1, latency=1.0, shedder=LoadShedder(max_queue=0), rate_limit=bucket)
    log = calls(world, db, [0.0, 0.0, 1.5, 3.0])
    assert [row[2] for row in log] == ["ok", "shed", "ok", "rate limited"]
    assert log[3][1] == 3.0 and dict(db.failure_reasons) == {"shed": 1, "rate limited": 1}


def test_a_call_whose_deadline_has_come_when_it_gets_a_slot_is_not_worked_on():
    world = World(1)
    db = Service(world, "db", capacity=1, latency=1.0)
    log = []
    send(world, db, 0.0, log, "first")
    send(world, db, 0.0, log, "at its deadline", deadline=1.0)
    send(world, db, 0.0, log, "before it", deadline=1.5)
    send(world, db, 0.0, log, "already past", deadline=0.0)
    world.env.run()
    assert sorted(log) == sorted([("first", 1.0, "ok", None), ("at its deadline", 1.0, "deadline", "db"),
                                  ("before it", 2.0, "ok", None), ("already past", 2.0, "deadline", "db")])


def test_a_down_service_refuses_at_once_and_counts_the_call():
    world = World(1)
    db = Service(world, "db", latency=1.0)
    db.go_down()
    assert not db.up
    log = calls(world, db, [0.0, 2.0])
    assert log == [(0, 0.0, "down", "db"), (1, 2.0, "down", "db")]
    assert (db.calls, db.failures, dict(db.failure_reasons)) == (2, 2, {"down": 2})


def test_downs_nest_and_the_timeline_marks_only_the_first_down_and_the_last_up():
    world = World(1)
    db = Service(world, "db", latency=0.1)

    def faults():
        for t, act in [(1, db.go_down), (2, db.go_down), (3, db.go_up), (4, db.go_up)]:
            yield world.env.timeout(t - world.now)
            act()
    world.env.process(faults())
    log = calls(world, db, [0.5, 1.5, 3.5, 4.5])
    assert [row[2] for row in log] == ["ok", "down", "down", "ok"]
    assert db.timeline.down_windows(10.0) == [(1, 4)] and db.timeline.changes == [(1, False), (4, True)] and db.up
    with pytest.raises(RuntimeError, match="^db is already up$"):
        db.go_up()


def test_a_crash_fails_the_call_at_work_now_and_the_waiting_one_when_its_turn_comes():
    world = World(1)
    db = Service(world, "db", capacity=1, latency=1.0)

    def crash():
        yield world.env.timeout(0.5)
        db.go_down()
        yield world.env.timeout(0.1)
        db.go_up()
    world.env.process(crash())
    log = calls(world, db, [0.0, 0.0, 0.55, 0.7])
    assert log == [(0, 0.5, "crashed", "db"), (1, 0.5, "crashed", "db"), (2, 0.55, "down", "db"),
                   (3, 1.7, "ok", None)]
    assert dict(db.failure_reasons) == {"crashed": 2, "down": 1} and db.busy == 0


def test_every_crash_fails_the_calls_that_waited_through_it():
    world = World(1)
    db = Service(world, "db", capacity=1, latency=1.0)

    def crashes():
        for down, up in [(0.5, 0.6), (1.5, 1.6)]:
            yield world.env.timeout(down - world.now)
            db.go_down()
            yield world.env.timeout(up - down)
            db.go_up()
    world.env.process(crashes())
    log = calls(world, db, [0.0, 0.7, 1.2, 1.7])
    assert log == [(0, 0.5, "crashed", "db"), (1, 1.5, "crashed", "db"), (2, 1.5, "crashed", "db"),
                   (3, 2.7, "ok", None)]


def test_a_call_that_needs_no_time_ends_at_once_before_anything_else_at_that_instant():
    world = World(1)
    free = Service(world, "free", latency=0.0)
    db = Service(world, "db", latency=0.25)

    def handler(svc, req):
        return (yield from svc.ask("db", req))

    api = Service(world, "api", handler=handler, dependencies=["db"])
    Partition(api, db, [(0.0, 5.0)])                 # no hang: the partition fails the ask at once
    order = []
    for name, target in [("free", free), ("partitioned", api)]:
        def one(name=name, target=target):
            yield world.env.timeout(1.0)
            try:
                yield from target.call(Request(world.now))
                order.append((name, world.now, "ok"))
            except ServiceError as err:
                order.append((name, world.now, err.reason))

        def other(name=name):
            yield world.env.timeout(1.0)
            order.append((f"after {name}", world.now, "-"))
        world.env.process(one())
        world.env.process(other())
    world.env.run()
    assert order == [("free", 1.0, "ok"), ("after free", 1.0, "-"), ("partitioned", 1.0, "partition"),
                     ("after partitioned", 1.0, "-")]


def test_a_latency_distribution_draws_from_the_services_own_stream():
    world = World(4)
    db = Service(world, "db", capacity=5, latency=Exponential(0.5))
    log = calls(world, db, [0.0, 0.0])
    stream = World(4).rng("service/db/latency")
    assert [row[1] for row in log] == pytest.approx([Exponential(0.5).sample(stream) for _ in range(2)], abs=1e-12)


def test_the_policies_of_a_service_belong_to_its_world():
    shedder, bucket = LoadShedder(max_queue=1), TokenBucket(1, 1)
    Service(World(1), "db", shedder=shedder, rate_limit=bucket)
    for kw in ({"shedder": shedder}, {"rate_limit": bucket}):
        with pytest.raises(ValueError, match="already driven by another World"):
            Service(World(2), "db", **kw)
    world = World(3)
    shared = LoadShedder(max_queue=1)
    Service(world, "a", shedder=shared)
    assert Service(world, "b", shedder=shared).shedder is shared      # one world may share one


def test_route_codes_beyond_a_signed_short_are_recorded():
    from resilience_sim.sim.workload import serve
    world = World(1)
    db = Service(world, "db", latency=0.1)
    for i in range(40_000):                   # names and routes get codes as they are first seen
        world.recorder.code(f"route {i}")
    world.env.process(serve(world, db, "route 39999"))
    results = world.run(until=1.0)
    assert [results.names[c] for c in results.services["db"].call_route] == ["route 39999"]
    assert results.only("route 39999").calls_per_request() == 1.0


def test_a_crash_while_the_handler_runs_fails_the_call_when_the_handler_returns():
    world = World(1)

    def slow(svc, req):
        yield svc.env.timeout(1.0)
        return "done"

    api = Service(world, "api", handler=slow)

    def crash():
        yield world.env.timeout(0.5)
        api.go_down()
        yield world.env.timeout(0.1)
        api.go_up()
    world.env.process(crash())
    # the second came after the crash and waited for the slot: it is served
    assert calls(world, api, [0.0, 0.7]) == [(0, 1.0, "crashed", "api"), (1, 2.0, "ok", "done")]


def test_an_interrupt_that_is_not_a_crash_goes_on_up_and_frees_the_slot():
    world = World(1)
    db = Service(world, "db", capacity=1, latency=1.0)
    seen = []

    def victim():
        try:
            yield from db.call(Request(0.0, "r"))
        except simpy.Interrupt as stop:
            seen.append((world.now, stop.cause))
    proc = world.env.process(victim())

    def cancel():
        yield world.env.timeout(0.25)
        proc.interrupt("cancelled")
    world.env.process(cancel())
    log = calls(world, db, [0.1])
    assert seen == [(0.25, "cancelled")] and log == [(0, 1.25, "ok", None)]
    assert (db.failures, db.busy) == (0, 0)


def test_errors_come_after_the_work():
    world = World(1)
    db = Service(world, "db", capacity=5, latency=0.5, error_rate=1.0)
    assert calls(world, db, [0.0, 1.0]) == [(0, 0.5, "error", "db"), (1, 1.5, "error", "db")]
    assert dict(db.failure_reasons) == {"error": 2}


def test_conditions_multiply_the_latency_add_extra_and_combine_error_rates():
    world = World(1)
    db = Service(world, "db", capacity=10, latency=0.5)
    slow, slower = Condition(latency_factor=2.0), Condition(latency_factor=3.0, extra_latency=Fixed(0.25))
    db.add_condition(slow)
    log = calls(world, db, [0.0])
    db.add_condition(slower)
    log += calls(world, db, [10.0])
    db.remove_condition(slow)
    log += calls(world, db, [20.0])
    db.remove_condition(slower)
    log += calls(world, db, [30.0])
    assert [row[1] for row in log] == [1.0, 13.25, 21.75, 30.5]      # 0.5 x 2; x 6 + 0.25; x 3 + 0.25; 0.5
    failing = Condition(error_rate=1.0)
    db.add_condition(failing)
    assert calls(world, db, [40.0]) == [(0, 40.5, "error", "db")]
    db.remove_condition(failing)
    assert calls(world, db, [50.0]) == [(0, 50.5, "ok", None)]


def test_errors_of_the_service_and_its_conditions_combine_as_independent_chances():
    # 1 - (1 - 0.5)(1 - 0.5) = 0.75 of 2,000 calls (a standard deviation of 19)
    world = World(1)
    db = Service(world, "db", capacity=10_000, latency=0.0, error_rate=0.5)
    db.add_condition(Condition(error_rate=0.5))
    log = calls(world, db, [0.0] * 2000)
    assert abs(sum(row[2] == "error" for row in log) - 1500) < 80


def test_a_faults_extra_latency_draws_from_its_own_stream_or_else_the_services():
    world = World(3)
    db = Service(world, "db", capacity=10, latency=0.5)
    db.add_condition(Condition(extra_latency=Exponential(0.3), extra_rng=random.Random(5)))
    log = calls(world, db, [0.0])
    assert log[0][1] == pytest.approx(0.5 + Exponential(0.3).sample(random.Random(5)), abs=1e-12)
    world = World(3)
    db = Service(world, "db", capacity=10, latency=0.5)
    db.add_condition(Condition(extra_latency=Exponential(0.3)))
    log = calls(world, db, [0.0])
    expected = 0.5 + Exponential(0.3).sample(World(3).rng("service/db/latency"))
    assert log[0][1] == pytest.approx(expected, abs=1e-12)


def test_a_handler_must_return_a_generator_and_its_slot_comes_back_when_it_fails():
    world = World(1)

    def not_a_generator(svc, req):
        return 5

    api = Service(world, "api", capacity=1, handler=not_a_generator)
    send(world, api)
    with pytest.raises(validate.WrongType, match=r"^handler of 'api' must return a simpy generator"):
        world.env.run()
    assert api.busy == 0

    def refuses(svc, req):
        yield svc.env.timeout(0.5)
        raise ServiceError("api", "conflict")

    world = World(1)
    api = Service(world, "api", capacity=1, handler=refuses)
    assert calls(world, api, [0.0, 0.0]) == [(0, 0.5, "conflict", "api"), (1, 1.0, "conflict", "api")]
    assert api.busy == 0


# --- asking dependencies ---------------------------------------------------------------------------------------
def test_ask_calls_a_declared_dependency_on_behalf_of_the_service():
    world = World(1)
    db = Service(world, "db", latency=0.25)

    def handler(svc, req):
        return (yield from svc.ask("db", req))

    api = Service(world, "api", handler=handler, dependencies=["db"])
    api_by_object = Service(world, "api2", handler=handler, dependencies=[db])
    log = calls(world, api, [0.0]) + calls(world, api_by_object, [1.0])
    assert log == [(0, 0.25, "ok", None), (0, 1.25, "ok", None)] and db.calls == 2


def test_ask_refuses_an_undeclared_dependency():
    world = World(1)
    Service(world, "db")
    api = Service(world, "api", dependencies=["db"])
    for bad in ("cache", 5, None, ["db"]):
        with pytest.raises(ValueError, match=r"^dependency must be one of \['db'\] for 'api', got "):
            api.ask(bad, Request(0.0))


def test_a_partition_fails_asks_across_it_after_the_hang_and_leaves_direct_calls_alone():
    world = World(1)
    db = Service(world, "db", latency=0.25)

    def handler(svc, req):
        return (yield from svc.ask("db", req))

    api = Service(world, "api", handler=handler, dependencies=["db"], capacity=10)
    other = Service(world, "other", handler=handler, dependencies=["db"], capacity=10)
    Partition(api, db, [(1.0, 2.0)], hang=0.5)
    Partition(other, db, [(1.0, 2.0)])
    log = calls(world, api, [0.0, 1.0, 3.0])
    assert log == [(0, 0.25, "ok", None), (1, 1.5, "partition", "db"), (2, 3.25, "ok", None)]
    world2_log = calls(world, other, [4.0])
    assert world2_log == [(0, 4.25, "ok", None)]
    world = World(1)
    db = Service(world, "db", latency=0.25)
    api = Service(world, "api", handler=handler, dependencies=["db"])
    Partition(api, db, [(0.0, 2.0)])
    log = []
    send(world, api, 0.5, log, "asked")
    send(world, db, 1.0, log, "direct")                                        # no caller: no partition
    world.env.run()
    assert sorted(log) == [("asked", 0.5, "partition", "db"), ("direct", 1.25, "ok", None)]
    assert (db.calls, dict(db.failure_reasons)) == (2, {"partition": 1})


def test_ask_all_waits_for_every_call_and_returns_their_outcomes_in_order():
    world = World(1)
    Service(world, "fast", latency=0.25)
    Service(world, "slow", latency=1.0)
    Service(world, "broken", latency=0.5, error_rate=1.0)
    out = []

    def handler(svc, req):
        results = yield from svc.ask_all(["slow", "broken", "fast"], req)
        out.append((svc.env.now, [(ok, v if ok else (v.service, v.reason)) for ok, v in results]))
        return len(results)

    api = Service(world, "api", handler=handler, dependencies=["fast", "slow", "broken"])
    assert calls(world, api, [0.0]) == [(0, 1.0, "ok", 3)]
    assert out == [(1.0, [(True, None), (False, ("broken", "error")), (True, None)])]

    def none(svc, req):
        return (yield from svc.ask_all([], req))

    empty = Service(world, "empty", handler=none)
    send(world, empty, 2.0)
    with pytest.raises(ValueError, match="^dependencies must name at least one dependency, got none$"):
        world.env.run()


def test_outcome_of_turns_a_failed_call_into_a_value():
    world = World(1)
    ok, broken = Service(world, "ok", latency=0.5), Service(world, "broken", error_rate=1.0)
    got = []

    def run():
        got.append((yield from outcome_of(ok.call(Request(0.0)))))
        flag, err = yield from outcome_of(broken.call(Request(0.0)))
        got.append((flag, err.reason))
    world.env.process(run())
    world.env.run()
    assert got == [(True, None), (False, "error")]


def test_the_wiring_refuses_a_dependency_missing_or_from_another_world():
    world = World(1)
    Service(world, "api", dependencies=["nowhere"])
    with pytest.raises(ValueError, match=r"^dependencies of 'api' name 'nowhere', which is not a service of this "
                                         r"world; services: \['api'\]$"):
        world.run(until=1.0)
    world, elsewhere = World(1), World(2)
    Service(world, "api", dependencies=[Service(elsewhere, "db")])
    with pytest.raises(ValueError, match=r"^dependencies of 'api': 'db' belongs to another World$"):
        world.run(until=1.0)
    fine = World(1)
    Service(fine, "db")
    Service(fine, "api", dependencies={"db": "db", "probe": Probe(fine)})
    assert len(fine.run(until=1.0)) == 0                     # a dependency with no world of its own is fine


def test_each_call_records_the_start_and_route_of_the_user_request_it_serves():
    from resilience_sim.sim.workload import serve
    world = World(1)
    db = Service(world, "db", capacity=5, latency=0.5, error_rate=1.0)
    client = Client(world, db, retry=RetryPolicy(3, ConstantBackoff(0.25)))

    def at(t, route):
        yield world.env.timeout(t)
        yield from serve(world, client, route)
    world.env.process(at(1.0, "read"))
    world.env.process(at(2.0, "write"))
    results = world.run(until=10.0)
    # calls at 1, 1.75, 2.5 for the first request and 2, 2.75, 3.5 for the second
    stats = results.services["db"]
    assert list(stats.call_start) == [1.0, 1.0, 2.0, 1.0, 2.0, 2.0]
    assert [results.names[c] for c in stats.call_route] == ["read", "read", "write", "read", "write", "write"]
    assert results.only("read").calls_per_request() == 3.0 and list(results.attempts) == [3, 3]


# --- the client -------------------------------------------------------------------------------------------------
class Probe:
    """A target that serves each call as the next of ``script``'s ``(latency, reason)`` says (reason None:
    an answer, the latency as its value), and notes each call's ``(time, deadline, caller)`` and each
    cancellation's time."""
    name = "probe"

    def __init__(self, world, *script):
        self.env, self.script, self.seen, self.cancelled = world.env, list(script), [], []

    def call(self, req, caller=None):
        latency, reason = self.script.pop(0)
        self.seen.append((self.env.now, req.deadline, caller))
        try:
            yield self.env.timeout(latency)
        except simpy.Interrupt:
            self.cancelled.append(self.env.now)
            raise
        if reason:
            raise ServiceError("probe", reason)
        req.answered_by = "probe"
        return latency


class SpyThrottle(AdaptiveThrottle):
    """Allows as ``answers`` say (then always), and notes what it was told."""

    def __init__(self, *answers):
        super().__init__()
        self.answers, self.told = list(answers), []

    def allow(self, now, rng):
        ok = self.answers.pop(0) if self.answers else True
        self.told.append(("allow", now) if ok else ("refuse", now))
        return ok

    def record(self, now, accepted):
        self.told.append(("record", now, accepted))

    def cancel(self, now):
        self.told.append(("cancel", now))


class SpyBudget(RetryBudget):
    def __init__(self, *answers):
        super().__init__()
        self.answers, self.told = list(answers), []

    def record_request(self, now):
        self.told.append(("request", now))

    def can_retry(self, now):
        ok = self.answers.pop(0) if self.answers else True
        self.told.append(("can retry", now, ok))
        return ok

    def record_retry(self, now):
        self.told.append(("retry", now))


class SpyRetry(RetryPolicy):
    """A RetryPolicy that notes the arguments of each decision and its answer."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.asked = []

    def decide(self, now, attempt, reason, rng=None, **kw):
        wait = super().decide(now, attempt, reason, rng, **kw)
        self.asked.append((now, attempt, reason, kw["previous"], kw["idempotent"], kw["idempotency_key"],
                           kw["remaining"], wait))
        return wait


class LearnerBreaker:
    """A breaker of a learner's own: ``allow`` says yes or no, no permits."""

    def __init__(self, *answers):
        self.answers, self.told = list(answers), []

    def allow(self, now):
        ok = self.answers.pop(0) if self.answers else True
        self.told.append(("allow", now, ok))
        return ok

    def record(self, now, success, duration):
        self.told.append(("record", now, success, duration))


class LearnerBreakerWithCancel(LearnerBreaker):
    def cancel(self, now):
        self.told.append(("cancel", now))


class SpyBreaker(CircuitBreaker):
    """A CircuitBreaker that notes each record and cancel with the permit it was given."""

    def __init__(self):
        super().__init__(consecutive_failures=100)
        self.told, self.permits = [], []

    def allow(self, now):
        permit = super().allow(now)
        self.permits.append(permit)
        return permit

    def which(self, permit):
        """The number of the allow() that gave ``permit`` (None: not one of them)."""
        return next((i for i, p in enumerate(self.permits) if p is permit), None)

    def record(self, now, success, duration=0.0, *, permit=None):
        self.told.append(("record", now, success, duration, self.which(permit)))
        super().record(now, success, duration, permit=permit)

    def cancel(self, now, *, permit=None):
        self.told.append(("cancel", now, self.which(permit)))
        super().cancel(now, permit=permit)


def run_client(world, client, *times, **kw):
    return calls(world, client, list(times), **kw)


def test_a_client_refuses_bad_settings():
    world, other = World(1), World(2)
    db = Service(world, "db")
    for target, match in [(5, r"^target must have a call\(request\) generator method, got 5$"),
                          (Service(other, "x"), "^target belongs to another World")]:
        with pytest.raises(ValueError, match=match):
            Client(world, target)
    for name in ("", 5):
        with pytest.raises(ValueError, match="^name must be a non-empty string"):
            Client(world, db, name=name)
    for kw, match in [({"timeout": 0}, "^timeout must be"), ({"deadline": -1}, "^deadline must be"),
                      ({"retry": 3}, r"^retry must be a RetryPolicy, or None; got 3$"),
                      ({"budget": 3}, "^budget must be a RetryBudget"), ({"throttle": 3}, "^throttle must be"),
                      ({"bulkhead": 3}, "^bulkhead must be"), ({"hedge": 3}, "^hedge must be"),
                      ({"rate_limit": 3}, "^rate_limit must be a TokenBucket"),
                      ({"breaker": object()}, r"^breaker must be a CircuitBreaker or an object with methods "
                                              r"allow, record, or None; got")]:
        with pytest.raises(ValueError, match=match):
            Client(world, db, **kw)
    half = type("Half", (), {"allow": lambda self, now: True, "record": 5})()
    with pytest.raises(ValueError, match="^breaker must be"):
        Client(world, db, breaker=half)
    with pytest.raises(validate.WrongType, match="^world must be a World"):
        Client("world", db)
    for name in ("idempotent", "idempotency_key"):
        with pytest.raises((ValueError, TypeError), match=f"^{name} must be"):
            Client(world, db, **{name: "no"})


def test_a_client_keeps_the_policies_it_was_given_and_makes_the_ones_given_as_seconds():
    world = World(1)
    db = Service(world, "db")
    t, d = Timeout(2.0), Deadline(5.0)
    c = Client(world, db, timeout=t, deadline=d, name="a")
    assert (c.timeout, c.deadline) == (t, d)
    c = Client(world, db, timeout=1.5, deadline=math.inf, name="b")
    assert (c.timeout.per_attempt, c.deadline.budget) == (1.5, math.inf)
    assert Client(world, db, timeout=math.inf, name="b2").timeout.per_attempt == math.inf
    c = Client(world, db, name="c")
    assert (c.timeout, c.deadline, c.retry, c.breaker, c.owner) == (None, None, None, None, None)
    assert (c.requests, c.attempts, c.hedges, c.budget_denied, c.backoff_time, dict(c.rejected)) == (0, 0, 0, 0, 0.0, {})
    assert repr(c) == "Client('c' -> 'db')"
    assert repr(Client(world, Probe(world), name="d")) == "Client('d' -> 'probe')"

    class Nameless:
        def call(self, req, caller=None):
            yield from ()

        def __repr__(self):
            return "Nameless()"
    assert repr(Client(world, Nameless(), name="f")) == "Client('f' -> Nameless())"
    with pytest.raises(ValueError, match="^name must be unique in the world"):
        Client(world, db, name="db")
    learner = LearnerBreaker()
    assert Client(world, db, name="e", breaker=learner).breaker is learner


def test_retries_wait_between_attempts_and_the_request_records_its_attempts():
    world = World(1)
    db = Service(world, "db", capacity=5, latency=0.5, error_rate=1.0)
    client = Client(world, db, retry=RetryPolicy(3, ConstantBackoff(0.25)))
    req = send(world, client, 0.0, log := [])
    world.env.run()
    assert log == [(None, 2.0, "error", "db")]                         # attempts at 0, 0.75, 1.5
    assert (req.attempts, client.requests, client.attempts, client.backoff_time) == (3, 1, 3, 0.5)
    assert list(db.call_start) == [0.0, 0.0, 0.0]


def test_a_client_without_retries_makes_one_attempt():
    world = World(1)
    probe = Probe(world, (0.5, "error"))
    client = Client(world, probe)
    req = send(world, client, 1.0, log := [])
    world.env.run()
    assert log == [(None, 1.5, "error", "probe")] and (req.attempts, client.attempts) == (1, 1)
    assert probe.seen == [(1.0, math.inf, None)]


def test_the_retry_policy_is_told_the_previous_wait_and_what_is_left_of_the_deadline():
    world = World(1)
    retry = SpyRetry(3, ConstantBackoff(0.25))
    client = Client(world, Probe(world, (0.5, "error"), (0.5, "error"), (0.5, "error")), retry=retry,
                    deadline=10.0, idempotent=False, idempotency_key=True)
    run_client(world, client, 0.0)
    assert retry.asked == [(0.5, 1, "error", None, False, True, 9.5, 0.25),
                           (1.25, 2, "error", 0.25, False, True, 8.75, 0.25),
                           (2.0, 3, "error", 0.25, False, True, 8.0, None)]
    world = World(1)
    retry = SpyRetry(2, ConstantBackoff(0.25))
    client = Client(world, Probe(world, (0.5, "error"), (0.5, None)), retry=retry)
    assert run_client(world, client, 0.0) == [(0, 1.25, "ok", 0.5)]
    assert retry.asked == [(0.5, 1, "error", None, True, None, None, 0.25)]


def test_a_non_idempotent_request_is_not_retried():
    world = World(1)
    probe = Probe(world, (0.5, "error"), (0.5, None))
    client = Client(world, probe, retry=RetryPolicy(3, ConstantBackoff(0.25)), idempotent=False)
    assert run_client(world, client, 0.0) == [(0, 0.5, "error", "probe")]
    assert client.retry.refused == {"not idempotent": 1}


def test_a_deadline_bounds_the_whole_request_and_is_handed_down():
    world = World(1)
    probe = Probe(world, (0.3, "error"), (0.3, "error"), (0.3, "error"))
    client = Client(world, probe, deadline=1.0, retry=RetryPolicy(10, ConstantBackoff(0.1)))
    # attempts at 0, 0.4 and 0.8; the third is cut off at the deadline, and no retry fits after it
    assert run_client(world, client, 0.0) == [(0, 1.0, "timeout", "client")]
    assert [s[0] for s in probe.seen] == pytest.approx([0.0, 0.4, 0.8]) and {s[1] for s in probe.seen} == {1.0}
    assert client.retry.refused == {"deadline": 1}
    world = World(1)
    probe = Probe(world, (0.3, None))
    client = Client(world, probe, deadline=1.0)
    assert run_client(world, client, 2.0, deadline=2.5) == [(0, 2.3, "ok", 0.3)]
    assert probe.seen[0][1] == 2.5                                    # the caller's, which is sooner
    world = World(1)
    probe = Probe(world, (0.3, None))
    client = Client(world, probe, deadline=1.0)
    assert run_client(world, client, 2.0, deadline=4.0) == [(0, 2.3, "ok", 0.3)]
    assert probe.seen[0][1] == 3.0                                    # its own


def test_a_request_whose_deadline_has_come_is_refused_before_any_attempt():
    for deadline in (0.5, 1.0):
        world = World(1)
        probe = Probe(world, (0.3, None))
        client = Client(world, probe)
        assert run_client(world, client, 1.0, deadline=deadline) == [(0, 1.0, "deadline", "client")]
        assert (probe.seen, client.attempts, dict(client.rejected)) == ([], 0, {"deadline": 1})
    world = World(1)
    client = Client(world, Probe(world, (0.3, None)))
    assert run_client(world, client, 1.0, deadline=1.3) == [(0, 1.3, "ok", 0.3)]


def test_each_attempt_asks_the_throttle_and_tells_it_the_backends_verdict():
    world = World(1)
    throttle = SpyThrottle()
    probe = Probe(world, (0.5, "overload"), (0.5, "error"), (0.5, None))
    client = Client(world, probe, throttle=throttle, retry=RetryPolicy(3, ConstantBackoff(0.25)))
    assert run_client(world, client, 0.0) == [(0, 2.0, "ok", 0.5)]
    # refused for overload: not accepted; an error is an answer, so accepted
    assert throttle.told == [("allow", 0.0), ("record", 0.5, False), ("allow", 0.75), ("record", 1.25, True),
                             ("allow", 1.5), ("record", 2.0, True)]


def test_a_throttle_refusal_ends_the_request_without_an_attempt():
    world = World(1)
    throttle = SpyThrottle(True, False)
    probe = Probe(world, (0.5, "error"))
    client = Client(world, probe, throttle=throttle, retry=RetryPolicy(3, ConstantBackoff(0.25)))
    assert run_client(world, client, 0.0) == [(0, 0.75, "throttled", "client")]
    assert throttle.told == [("allow", 0.0), ("record", 0.5, True), ("refuse", 0.75)]
    assert (client.attempts, dict(client.rejected)) == (1, {"throttled": 1})


def test_the_throttle_is_told_to_withdraw_an_attempt_that_was_never_sent():
    world = World(1)
    throttle = SpyThrottle()
    client = Client(world, Probe(world, (0.5, None)), throttle=throttle, breaker=LearnerBreaker(False))
    assert run_client(world, client, 0.0) == [(0, 0.0, "circuit open", "client")]
    assert throttle.told == [("allow", 0.0), ("cancel", 0.0)]
    # a timeout of this client's own is a verdict: the backend did not answer in time
    world = World(1)
    throttle = SpyThrottle()
    client = Client(world, Probe(world, (1.0, None)), throttle=throttle, timeout=0.5)
    assert run_client(world, client, 0.0) == [(0, 0.5, "timeout", "client")]
    assert throttle.told == [("allow", 0.0), ("record", 0.5, False)]


def test_an_error_from_a_component_named_like_the_client_is_still_the_backends():
    world = World(1)
    throttle = SpyThrottle()
    probe = Probe(world, (0.5, "error"))
    client = Client(world, probe, name="probe", throttle=throttle)
    assert run_client(world, client, 0.0) == [(0, 0.5, "error", "probe")]
    assert throttle.told == [("allow", 0.0), ("record", 0.5, False)]      # its own name: not accepted


def test_a_budget_earns_on_first_attempts_and_spends_on_retries():
    world = World(1)
    budget = SpyBudget(True, False)
    probe = Probe(world, (0.5, "error"), (0.5, "error"), (0.5, "error"))
    client = Client(world, probe, budget=budget, retry=RetryPolicy(5, ConstantBackoff(0.25)))
    assert run_client(world, client, 0.0) == [(0, 1.25, "error", "probe")]
    assert budget.told == [("request", 0.0), ("can retry", 0.5, True), ("retry", 0.5), ("can retry", 1.25, False)]
    assert (client.budget_denied, client.attempts, client.backoff_time) == (1, 2, 0.25)
    world = World(1)
    client = Client(world, Probe(world, *[(0.5, "error")] * 4), budget=SpyBudget(False, False),
                    retry=RetryPolicy(5, ConstantBackoff(0.25)))
    run_client(world, client, 0.0, 1.0)
    assert (client.budget_denied, client.requests) == (2, 2)
    world = World(1)
    budget = SpyBudget()
    client = Client(world, Probe(world, (0.5, "error")), budget=budget, retry=RetryPolicy(1, ConstantBackoff(0.25)))
    run_client(world, client, 0.0)
    assert budget.told == [("request", 0.0)]                          # no retry asked for: none asked


def test_a_learners_breaker_is_told_each_outcome_and_its_duration():
    world = World(1)
    breaker = LearnerBreaker(True, False, False)
    probe = Probe(world, (0.5, "error"))
    client = Client(world, probe, breaker=breaker, retry=RetryPolicy(3, ConstantBackoff(0.25)))
    # the retry at 1.75 is refused by the breaker, and "circuit open" is not retried
    assert run_client(world, client, 1.0, 3.0) == [(0, 1.75, "circuit open", "client"), (1, 3.0, "circuit open", "client")]
    assert breaker.told == [("allow", 1.0, True), ("record", 1.5, False, 0.5), ("allow", 1.75, False),
                            ("allow", 3.0, False)]
    assert (client.attempts, client.requests, dict(client.rejected)) == (1, 2, {"circuit open": 2})


def test_a_permit_breaker_gets_its_permit_back_with_the_outcome():
    world = World(1)
    breaker = SpyBreaker()
    probe = Probe(world, (0.5, "error"), (0.25, None))
    client = Client(world, probe, breaker=breaker, retry=RetryPolicy(3, ConstantBackoff(0.25)))
    assert run_client(world, client, 0.0) == [(0, 1.0, "ok", 0.25)]
    assert breaker.told == [("record", 0.5, False, 0.5, 0), ("record", 1.0, True, 0.25, 1)]


def test_a_refusal_by_the_clients_own_rate_limit_gives_the_breaker_permit_back():
    world = World(1)
    breaker = SpyBreaker()
    client = Client(world, Probe(world, (0.5, None)), breaker=breaker, rate_limit=TokenBucket(rate=1e-9, burst=1))
    assert run_client(world, client, 0.0, 0.1) == [(0, 0.5, "ok", 0.5), (1, 0.1, "rate limited", "client")]
    assert breaker.told == [("cancel", 0.1, 1), ("record", 0.5, True, 0.5, 0)]
    assert dict(client.rejected) == {"rate limited": 1} and client.attempts == 1
    for learner, told in [(LearnerBreakerWithCancel(), [("allow", 0.0, True), ("allow", 0.1, True), ("cancel", 0.1)]),
                          (LearnerBreaker(), [("allow", 0.0, True), ("allow", 0.1, True)])]:
        world = World(1)
        client = Client(world, Probe(world, (0.5, None)), breaker=learner, rate_limit=TokenBucket(rate=1e-9, burst=1))
        run_client(world, client, 0.0, 0.1)
        assert learner.told[:len(told)] == told and learner.told[len(told):] == [("record", 0.5, True, 0.5)]


def test_the_timeout_policy_is_told_which_attempts_timed_out():
    world = World(1)
    timeout = Timeout(0.5)
    client = Client(world, Probe(world, (1.0, None), (0.25, None), (0.25, "error"), (0.25, "error")),
                    timeout=timeout, retry=RetryPolicy(2, ConstantBackoff(0.25)))
    assert run_client(world, client, 0.0, 2.0) == [(0, 1.0, "ok", 0.25), (1, 2.75, "error", "probe")]
    assert timeout.attempts == 4 and list(timeout.timeouts) == [0.5]


def test_a_per_attempt_timeout_abandons_the_attempt_but_the_target_goes_on():
    world = World(1)
    db = Service(world, "db", capacity=5, latency=1.0)
    client = Client(world, db, timeout=0.4)
    assert run_client(world, client, 0.0) == [(0, 0.4, "timeout", "client")]
    assert world.now == 1.0 and db.busy == 0 and db.calls == 1        # the work ran to its end
    world = World(1)
    client = Client(world, Service(world, "db", latency=1.0), timeout=1.0)
    assert run_client(world, client, 0.0) == [(0, 1.0, "ok", None)]    # an answer at the limit comes first


def test_a_bulkhead_refuses_at_once_when_it_cannot_queue():
    world = World(1)
    bulkhead = Bulkhead(1)
    probe = Probe(world, (0.5, None), (0.5, None))
    client = Client(world, probe, bulkhead=bulkhead)
    assert run_client(world, client, 0.0, 0.1, 0.6) == [(0, 0.5, "ok", 0.5), (1, 0.1, "bulkhead full", "client"),
                                                        (2, 1.1, "ok", 0.5)]
    assert (bulkhead.in_use, bulkhead.rejected, dict(client.rejected)) == (0, 1, {"bulkhead full": 1})


def test_a_bulkhead_queue_hands_the_slot_on_and_gives_up_after_max_wait():
    world = World(1)
    bulkhead = Bulkhead(1, max_wait=0.5)
    breaker = SpyBreaker()
    probe = Probe(world, (0.3, None), (0.25, None), (1.0, None), (0.1, None))
    client = Client(world, probe, bulkhead=bulkhead, breaker=breaker)
    log = run_client(world, client, 0.0, 0.1, 1.0, 1.2)
    # the second waits 0.2 for the slot; the fourth waits from 1.2 and gives up at 1.7
    assert log == [(0, 0.3, "ok", 0.3), (1, 0.55, "ok", 0.25), (2, 2.0, "ok", 1.0), (3, 1.7, "bulkhead full", "client")]
    assert [t for t, *_ in probe.seen] == [0.0, 0.3, 1.0]
    # the second is timed from its slot at 0.3, not from its arrival; the fourth gives its permit back
    assert breaker.told == [("record", 0.3, True, 0.3, 0), ("record", 0.55, True, pytest.approx(0.25), 1),
                            ("cancel", 1.7, 3), ("record", 2.0, True, 1.0, 2)]
    assert list(bulkhead.waits) == [pytest.approx(0.2)] and bulkhead.rejected == 1
    assert (bulkhead.in_use, bulkhead.waiting) == (0, 0)


def test_a_deadline_that_comes_first_takes_the_caller_out_of_the_bulkhead_queue():
    world = World(1)
    bulkhead = Bulkhead(1, max_wait=5.0)
    client = Client(world, Probe(world, (1.0, None), (0.5, None)), bulkhead=bulkhead)
    log = []
    send(world, client, 0.0, log, 0)
    send(world, client, 0.0, log, 1, deadline=0.2)
    world.env.run()
    assert sorted(log) == [(0, 1.0, "ok", 1.0), (1, 0.2, "deadline", "client")]
    assert bulkhead.rejected == 0 and (bulkhead.in_use, bulkhead.waiting) == (0, 0)
    assert dict(client.rejected) == {"deadline": 1}


def test_a_slot_handed_over_at_the_deadline_leaves_no_time_for_the_attempt():
    world = World(1)
    probe = Probe(world, (0.5, None), (0.5, None))
    bulkhead = Bulkhead(1, max_wait=5.0)
    client = Client(world, probe, bulkhead=bulkhead)
    log = []
    send(world, client, 0.0, log, 0)
    send(world, client, 0.0, log, 1, deadline=0.5)
    world.env.run()
    assert sorted(log) == [(0, 0.5, "ok", 0.5), (1, 0.5, "timeout", "client")]
    assert len(probe.seen) == 1 and client.attempts == 1 and (bulkhead.in_use, bulkhead.waiting) == (0, 0)


def test_clients_that_share_a_bulkhead_hand_slots_to_each_others_waiters():
    world = World(1)
    shared = Bulkhead(1, max_wait=2.0)
    a = Client(world, Probe(world, (0.5, None)), name="a", bulkhead=shared)
    b = Client(world, Probe(world, (0.5, None)), name="b", bulkhead=shared)
    log = []
    send(world, a, 0.0, log, "a")
    send(world, b, 0.1, log, "b")
    world.env.run()
    assert sorted(log) == [("a", 0.5, "ok", 0.5), ("b", 1.0, "ok", 0.5)]


def test_clients_with_bulkheads_of_their_own_wake_only_their_own_waiters():
    world = World(1)
    first, second = Bulkhead(1, max_wait=5.0), Bulkhead(1, max_wait=5.0)
    one = Client(world, Probe(world, (1.0, None), (0.25, None)), name="one", bulkhead=first)
    two = Client(world, Probe(world, (0.5, None), (0.25, None)), name="two", bulkhead=second)
    log = []
    for client, at, tag in [(one, 0.0, "one"), (one, 0.1, "one waits"), (two, 0.0, "two"), (two, 0.2, "two waits")]:
        send(world, client, at, log, tag)
    world.env.run()
    assert sorted(log) == [("one", 1.0, "ok", 1.0), ("one waits", 1.25, "ok", 0.25), ("two", 0.5, "ok", 0.5),
                           ("two waits", 0.75, "ok", 0.25)]


def test_hedging_sends_a_copy_after_the_delay_and_the_first_answer_wins():
    world = World(1)
    hedge = HedgePolicy(0.2)
    probe = Probe(world, (1.0, None), (0.1, None))
    client = Client(world, probe, hedge=hedge)
    assert run_client(world, client, 0.0) == [(0, pytest.approx(0.3), "ok", 0.1)]
    assert [t for t, *_ in probe.seen] == [0.0, 0.2] and probe.cancelled == [pytest.approx(0.3)]
    assert (client.hedges, client.attempts, hedge.hedges_sent, hedge.hedges_won, hedge.finished) == (1, 2, 1, 1, 1)


def test_a_primary_that_answers_before_the_delay_needs_no_copy():
    world = World(1)
    hedge = HedgePolicy(0.2)
    probe = Probe(world, (0.1, None))
    client = Client(world, probe, hedge=hedge)
    assert run_client(world, client, 0.0) == [(0, 0.1, "ok", 0.1)]
    assert (client.hedges, hedge.hedges_won, hedge.finished, probe.cancelled) == (0, 0, 1, [])
    world = World(1)
    hedge = HedgePolicy(0.2)
    probe = Probe(world, (0.3, None), (0.5, None))
    client = Client(world, probe, hedge=hedge)
    assert run_client(world, client, 0.0) == [(0, 0.3, "ok", 0.3)]    # the primary wins over its copy
    assert (hedge.hedges_won, probe.cancelled) == (0, [0.3])


def test_a_hedged_attempt_fails_when_every_copy_failed():
    world = World(1)
    probe = Probe(world, (0.3, "error"), (0.3, "overload"))
    client = Client(world, probe, hedge=HedgePolicy(0.2))
    assert run_client(world, client, 0.0) == [(0, 0.5, "overload", "probe")]   # the last error
    world = World(1)
    probe = Probe(world, (0.1, "error"))
    client = Client(world, probe, hedge=HedgePolicy(0.2))
    assert run_client(world, client, 0.0) == [(0, 0.1, "error", "probe")]      # failed before any copy
    assert client.hedges == 0


def test_a_hedged_attempt_keeps_sending_copies_up_to_max_hedges_and_then_waits():
    world = World(1)
    probe = Probe(world, (2.0, None), (2.0, None), (0.5, None))
    client = Client(world, probe, hedge=HedgePolicy(0.2, max_hedges=2))
    assert run_client(world, client, 0.0) == [(0, pytest.approx(0.9), "ok", 0.5)]
    assert [t for t, *_ in probe.seen] == pytest.approx([0.0, 0.2, 0.4]) and client.hedges == 2
    world = World(1)
    probe = Probe(world, (2.0, None), (1.0, None))
    client = Client(world, probe, hedge=HedgePolicy(0.2, max_hedges=1))
    assert run_client(world, client, 0.0) == [(0, pytest.approx(1.2), "ok", 1.0)]
    assert world.now == 2.0           # the cancelled primary's timer is the last event: no wait was left behind


def test_a_hedged_attempt_times_out_and_leaves_its_copies_running():
    world = World(1)
    db = Service(world, "db", capacity=5, latency=1.0)
    client = Client(world, db, hedge=HedgePolicy(0.2), timeout=0.5)
    assert run_client(world, client, 0.0) == [(0, 0.5, "timeout", "client")]
    assert db.calls == 2 and world.now == 1.2 and db.busy == 0


def test_a_hedged_copy_that_loses_frees_its_slot_at_the_target():
    world = World(1)
    db = Service(world, "db", capacity=1, latency=1.0)
    hedged = Client(world, db, hedge=HedgePolicy(0.2), name="hedged")
    log = []
    send(world, hedged, 0.0, log, "hedged")          # its copy, sent at 0.2, waits behind the primary
    send(world, db, 1.05, log, "next")                # served at once: the losing copy has left
    world.env.run()
    assert sorted(log) == [("hedged", 1.0, "ok", None), ("next", 2.05, "ok", None)]
    assert (db.calls, db.busy, db.waiting) == (3, 0, 0)


def test_a_client_cancelled_by_its_caller_withdraws_everything_it_held():
    world = World(1)
    throttle, breaker, bulkhead = SpyThrottle(), SpyBreaker(), Bulkhead(1)
    probe = Probe(world, (5.0, None))
    inner = Client(world, probe, name="inner", throttle=throttle, breaker=breaker, bulkhead=bulkhead, timeout=10.0)
    racer = Probe(world, (0.1, None))
    outer = Client(world, Router(inner, racer), name="outer", hedge=HedgePolicy(0.2))
    assert run_client(world, outer, 0.0) == [(0, pytest.approx(0.3), "ok", 0.1)]
    assert probe.cancelled == [pytest.approx(0.3)]
    assert throttle.told == [("allow", 0.0), ("cancel", pytest.approx(0.3))]
    assert breaker.told == [("cancel", pytest.approx(0.3), 0)] and bulkhead.in_use == 0


class Router:
    """Sends the first call to ``first`` and every later one to ``later``."""
    name = "router"

    def __init__(self, first, later):
        self.first, self.later, self.n = first, later, 0

    def call(self, req, caller=None):
        self.n += 1
        return (self.first if self.n == 1 else self.later).call(req, caller=caller)


def test_a_client_cancelled_while_waiting_for_a_bulkhead_slot_leaves_the_queue():
    world = World(1)
    bulkhead, throttle = Bulkhead(1, max_wait=5.0), SpyThrottle()
    inner = Client(world, Probe(world, (1.0, None), (0.5, None)), name="inner", bulkhead=bulkhead, throttle=throttle)
    log = []
    send(world, inner, 0.0, log, "occupant")
    racer = Probe(world, (0.1, None))
    outer = Client(world, Router(inner, racer), name="outer", hedge=HedgePolicy(0.2))
    send(world, outer, 0.1, log, "outer")            # its primary waits for the slot; its copy wins at 0.4
    send(world, inner, 1.5, log, "later")
    world.env.run(until=0.45)
    assert (bulkhead.waiting, bulkhead.in_use) == (0, 1)
    world.env.run()
    assert sorted(log) == [("later", 2.0, "ok", 0.5), ("occupant", 1.0, "ok", 1.0),
                           ("outer", pytest.approx(0.4), "ok", 0.1)]
    assert bulkhead.rejected == 0 and (bulkhead.in_use, bulkhead.waiting) == (0, 0)
    assert ("cancel", pytest.approx(0.4)) in throttle.told


def test_a_client_cancelled_as_its_bulkhead_slot_is_handed_over_passes_the_slot_on():
    world = World(1)
    bulkhead = Bulkhead(1, max_wait=5.0)
    client = Client(world, Probe(world, (0.3, None), (0.5, None)), bulkhead=bulkhead)
    log, stopped = [], []
    send(world, client, 0.0, log, "occupant")

    def victim():
        try:
            yield from client.call(Request(0.0))
        except simpy.Interrupt:
            stopped.append(world.now)
    proc = world.env.process(victim())

    def canceller():                 # wakes at 0.3 just after the occupant hands its slot to the victim
        yield world.env.timeout(0.3)
        proc.interrupt("cancelled")
    world.env.process(canceller())
    send(world, client, 0.5, log, "next")
    world.env.run()
    assert stopped == [0.3] and sorted(log) == [("next", 1.0, "ok", 0.5), ("occupant", 0.3, "ok", 0.3)]
    assert (bulkhead.in_use, bulkhead.waiting, bulkhead.rejected) == (0, 0, 0)


def test_a_client_without_a_time_limit_cancelled_from_above_cancels_its_call():
    world = World(1)
    breaker = SpyBreaker()
    probe = Probe(world, (5.0, None))
    inner = Client(world, probe, name="inner", breaker=breaker)
    outer = Client(world, Router(inner, Probe(world, (0.1, None))), name="outer", hedge=HedgePolicy(0.2))
    assert run_client(world, outer, 0.0) == [(0, pytest.approx(0.3), "ok", 0.1)]
    assert probe.cancelled == [pytest.approx(0.3)] and breaker.told == [("cancel", pytest.approx(0.3), 0)]
    assert (inner.requests, inner.attempts, outer.attempts, outer.hedges) == (1, 1, 2, 1)


def test_a_hedging_client_cancelled_from_above_cancels_every_copy():
    world = World(1)
    probe = Probe(world, (5.0, None), (5.0, None))
    inner = Client(world, probe, name="inner", hedge=HedgePolicy(0.1))
    outer = Client(world, Router(inner, Probe(world, (0.1, None))), name="outer", hedge=HedgePolicy(0.3))
    assert run_client(world, outer, 0.0) == [(0, pytest.approx(0.4), "ok", 0.1)]
    assert probe.cancelled == [pytest.approx(0.4)] * 2 and inner.hedges == 1


def test_a_client_declared_as_a_dependency_calls_on_the_services_behalf():
    from resilience_sim.sim.workload import serve
    world = World(1)
    leaf = Service(world, "leaf", capacity=10, latency=0.1, error_rate=1.0)
    to_leaf = Client(world, leaf, name="to_leaf", retry=RetryPolicy(3, ConstantBackoff(0.1)))

    def handler(svc, req):
        return (yield from to_leaf.call(req))             # no caller given: the client knows its owner

    api = Service(world, "api", capacity=10, dependencies=[to_leaf], handler=handler)
    Partition(api, leaf, [(5.0, 10.0)])
    world.env.process(serve(world, api, "r"))

    def later():
        yield world.env.timeout(6.0)
        yield from serve(world, api, "r")
    world.env.process(later())
    results = world.run(until=20.0)
    assert to_leaf.owner is api
    assert list(results.attempts) == [1, 1]                   # a dependency's attempts are not the user's
    assert [results.reason(i) for i in range(2)] == ["error", "partition"]
    assert results.services["leaf"].calls == 6 and to_leaf.attempts == 6


def test_retry_jitter_draws_from_the_clients_own_stream():
    world = World(5)
    client = Client(world, Probe(world, (0.5, "error"), (0.5, None)), name="api",
                    retry=RetryPolicy(2, FullJitter(0.1, 10.0)))
    log = run_client(world, client, 0.0)
    wait = FullJitter(0.1, 10.0).delay(1, World(5).rng("client/api"))
    assert client.backoff_time == pytest.approx(wait, abs=1e-12) and log[0][1] == pytest.approx(1.0 + wait)


def test_a_throttle_draws_from_its_own_stream_and_leaves_the_jitter_alone():
    def run(jitter):
        world = World(2)
        throttle = AdaptiveThrottle(k=1.0, window=100.0)
        retry = RetryPolicy(2, FullJitter(0.1, 1.0) if jitter else ConstantBackoff(0.1))
        client = Client(world, Probe(world, *[(0.1, "overload"), (0.1, None), (0.1, None)] * 40), throttle=throttle,
                        retry=retry)
        log = run_client(world, client, *[float(t) for t in range(40)])
        return [row[2] for row in log]
    plain, jittered = run(False), run(True)
    assert plain == jittered and 0 < plain.count("throttled") < len(plain)      # 0 < p < 1: it did draw


def test_a_zero_wait_retries_at_once_ahead_of_whatever_else_happens_at_that_instant():
    world = World(1)
    db = Service(world, "db", capacity=1, latency=1.0, error_rate=1.0)
    client = Client(world, db, retry=RetryPolicy(2, ConstantBackoff(0.0)))
    log = []
    send(world, client, 0.0, log, "retried")
    send(world, db, 1.0, log, "newcomer")           # comes at 1.0, when the first attempt fails
    world.env.run()
    assert sorted(log) == [("newcomer", 3.0, "error", "db"), ("retried", 2.0, "error", "db")]


def test_a_policy_driven_by_another_world_is_refused():
    def fresh():
        return {"timeout": Timeout(1.0), "deadline": Deadline(5.0), "retry": RetryPolicy(2, ConstantBackoff(0.1)),
                "budget": RetryBudget(), "throttle": AdaptiveThrottle(), "breaker": CircuitBreaker(consecutive_failures=3),
                "bulkhead": Bulkhead(2), "hedge": HedgePolicy(0.5), "rate_limit": TokenBucket(1, 1)}
    policies = fresh()
    first = World(1)
    Client(first, Service(first, "db"), **policies)
    for name, policy in policies.items():
        second = World(2)
        with pytest.raises(ValueError, match=f"^{name}: this .* is already driven by another World"):
            Client(second, Service(second, "db"), **{name: policy})
    world = World(3)
    db = Service(world, "db")
    shared = fresh()
    Client(world, db, name="a", **shared)
    assert Client(world, db, name="b", **shared).bulkhead is shared["bulkhead"]     # one world may share


def test_each_kind_of_attempt_calls_the_target_on_behalf_of_the_caller():
    world = World(1)
    owner = Service(world, "owner")
    probes = [Probe(world, (0.1, None)), Probe(world, (0.1, None)), Probe(world, (0.5, None), (0.1, None))]
    clients = [Client(world, probes[0], name="inline"), Client(world, probes[1], name="bounded", timeout=1.0),
               Client(world, probes[2], name="hedged", hedge=HedgePolicy(0.2))]
    for c in clients:
        send(world, c, 0.0, caller=owner)
    world.env.run()
    assert [[seen[2] for seen in p.seen] for p in probes] == [[owner], [owner], [owner, owner]]


def test_a_client_cancelled_during_its_backoff_has_nothing_to_withdraw_from_the_throttle():
    world = World(1)
    throttle = SpyThrottle()
    inner = Client(world, Probe(world, (0.5, "error"), (0.5, None)), name="inner", throttle=throttle,
                   retry=RetryPolicy(2, ConstantBackoff(1.0)))
    outer = Client(world, Router(inner, Probe(world, (0.1, None))), name="outer", hedge=HedgePolicy(0.7))
    assert run_client(world, outer, 0.0) == [(0, pytest.approx(0.8), "ok", 0.1)]
    assert throttle.told == [("allow", 0.0), ("record", 0.5, True)]      # cancelled at 0.8, while waiting
    assert inner.backoff_time == 1.0


def test_a_slot_handed_over_at_the_deadline_leaves_no_time_for_a_hedged_attempt():
    world = World(1)
    shared = Bulkhead(1, max_wait=5.0)
    occupant = Client(world, Probe(world, (0.5, None)), name="occupant", bulkhead=shared)
    probe = Probe(world, (0.5, None))
    hedged = Client(world, probe, name="hedged", bulkhead=shared, hedge=HedgePolicy(0.1))
    log = []
    send(world, occupant, 0.0, log, "occupant")
    send(world, hedged, 0.0, log, "hedged", deadline=0.5)
    world.env.run()
    assert sorted(log) == [("hedged", 0.5, "timeout", "hedged"), ("occupant", 0.5, "ok", 0.5)]
    assert (probe.seen, hedged.attempts, hedged.hedges, shared.in_use) == ([], 0, 0, 0)


def test_a_waiter_cancelled_as_its_slot_is_handed_over_frees_the_slot_or_passes_it_on():
    for waiting_behind, expected in [(False, [("later", 2.5, "ok", None)]),
                                     (True, [("behind", 2.0, "ok", None), ("later", 3.0, "ok", None)])]:
        world = World(1)
        db = Service(world, "db", capacity=1, latency=1.0)
        log, stopped = [], []
        send(world, db, 0.0, log, "first")

        def victim():
            try:
                yield from db.call(Request(0.0))
            except simpy.Interrupt:
                stopped.append(world.now)
        proc = world.env.process(victim())
        if waiting_behind:
            send(world, db, 0.0, log, "behind")

        def canceller():             # wakes at 1.0 just after the first call hands its slot to the victim
            yield world.env.timeout(1.0)
            proc.interrupt("cancelled")
        world.env.process(canceller())
        send(world, db, 1.5, log, "later")
        world.env.run()
        assert stopped == [1.0] and sorted(r for r in log if r[0] != "first") == expected
        assert (db.busy, db.waiting) == (0, 0)


def test_a_waiter_cancelled_before_its_turn_leaves_the_queue():
    world = World(1)
    db = Service(world, "db", capacity=1, latency=1.0)
    log = []
    send(world, db, 0.0, log, "first")
    stopped, waiting = [], []

    def victim():
        try:
            yield from db.call(Request(0.0))
        except simpy.Interrupt:
            stopped.append(world.now)
    proc = world.env.process(victim())
    send(world, db, 0.0, log, "third")

    def cancel():
        yield world.env.timeout(0.5)
        proc.interrupt("cancelled")
        yield world.env.timeout(0.1)
        waiting.append(db.waiting)
    world.env.process(cancel())
    world.env.run()
    assert stopped == [0.5] and waiting == [1]
    assert sorted(log) == [("first", 1.0, "ok", None), ("third", 2.0, "ok", None)] and (db.busy, db.waiting) == (0, 0)
