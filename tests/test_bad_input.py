"""Every public constructor and function rejects bad input with a ValueError naming the parameter
and the allowed range."""
import math

import pytest

from resilience_sim import (ClosedLoop, Constant, ErrorBurst, Exponential, FailureRepair, Fixed,
                            GrayFailure, LatencySpike, LogNormal, Mixture, OpenLoop, Outage, Partition,
                            Ramp, RepairCrew, Service, Spike, Step, Uniform, Weibull, World, theory)
from resilience_sim.dashboard import Slider

NAN, INF = math.nan, math.inf


def world():
    return World(1)


def svc(w=None, name="s"):
    return Service(w or world(), name)


def world_and_service():
    w = world()
    return w, Service(w, "s")


def two_services():
    w = world()
    return Service(w, "a"), Service(w, "b")


CASES = [
    # (call, words the message must contain)
    (lambda: World(-1), ["seed", ">= 0"]),
    (lambda: World(1.5), ["seed", "whole number"]),
    (lambda: Fixed(-1), ["value", ">= 0"]),
    (lambda: Exponential(0), ["mean", "> 0"]),
    (lambda: Exponential(NAN), ["mean", "> 0"]),
    (lambda: Exponential(INF), ["mean", "finite"]),
    (lambda: Uniform(2, 1), ["high", ">= 2"]),
    (lambda: LogNormal(0.01, -1), ["sigma", "> 0"]),
    (lambda: LogNormal.from_percentiles(0.1, 0.05), ["p99", "> 0.1"]),
    (lambda: Weibull(1, 0), ["shape", "> 0"]),
    (lambda: Mixture([]), ["parts", "at least one"]),
    (lambda: Mixture([(1, 0.5)]), ["parts[0]", "Distribution"]),
    (lambda: Mixture([(-1, Fixed(1))]), ["parts[0] weight", ">= 0"]),
    (lambda: Mixture.slow_tail(0.01, 1, 1.5), ["p_slow", "[0, 1]"]),
    (lambda: Service(world(), ""), ["name", "non-empty"]),
    (lambda: Service(world(), "a", capacity=0), ["capacity", ">= 1"]),
    (lambda: Service(world(), "a", error_rate=1.2), ["error_rate", "[0, 1]"]),
    (lambda: Service(world(), "a", error_rate=NAN), ["error_rate", "[0, 1]"]),
    (lambda: Service(world(), "a", latency=-0.1), ["latency", ">= 0"]),
    (lambda: Service(world(), "a", queue_limit=-1), ["queue_limit", ">= 0"]),
    (lambda: Service(world(), "a", dependencies=[3]), ["dependencies", "names"]),
    (lambda: Service(world(), "a", handler=5), ["handler", "callable"]),
    (lambda: [Service(w, "a") for w in [world()] for _ in range(2)], ["name", "unique"]),
    (lambda: world().service("nope"), ["name", "one of"]),
    (lambda: FailureRepair(svc(), mttf=-5, mttr=1), ["mttf", "> 0"]),
    (lambda: FailureRepair(svc(), mttf=5, mttr=0), ["mttr", "> 0"]),
    (lambda: FailureRepair(svc(), mttf=5), ["mttr", "recover"]),
    (lambda: FailureRepair(svc(), mttf=5, mttr=1, detect=1), ["mttr", "detect/recover"]),
    (lambda: FailureRepair(svc(), mttf=5, recover=1, detect=-1), ["detect", "> 0"]),
    (lambda: FailureRepair(svc(), mttf=5, mttr=1, crew=2), ["crew", "RepairCrew"]),
    (lambda: FailureRepair("db", mttf=5, mttr=1), ["service", "Service"]),
    (lambda: RepairCrew(world(), 0), ["size", ">= 1"]),
    (lambda: Outage(svc(), []), ["windows", "at least one"]),
    (lambda: Outage(svc(), [(5, 5)]), ["windows[0] end", "> 5"]),
    (lambda: Outage(svc(), [(-1, 5)]), ["windows[0] start", ">= 0"]),
    (lambda: Outage(svc(), [(0, 5), (4, 8)]), ["windows[1]", "previous window"]),
    (lambda: Outage(svc(), [(1, 2, 3)]), ["windows[0]", "pair"]),
    (lambda: LatencySpike(svc(), [(0, 1)]), ["extra", "factor"]),
    (lambda: LatencySpike(svc(), [(0, 1)], factor=0.5), ["factor", ">= 1"]),
    (lambda: ErrorBurst(svc(), [(0, 1)], error_rate=2), ["error_rate", "[0, 1]"]),
    (lambda: GrayFailure(svc(), [(0, 1)]), ["slowdown", "error_rate"]),
    (lambda: Partition(*[svc(w, "x") for w in [world()]] * 2, [(0, 1)]), ["b", "different"]),
    (lambda: Partition(*two_services(), [(0, 1)], hang=-1), ["hang", ">= 0"]),
    (lambda: Partition(svc(), svc(), [(0, 1)]), ["b belongs to another World"]),
    (lambda: Constant(0), ["rate", "> 0"]),
    (lambda: Ramp(0, 0, 10), ["start or end", "> 0"]),
    (lambda: Ramp(1, 5, 0), ["duration", "> 0"]),
    (lambda: Step(-1, 5, 10), ["before", ">= 0"]),
    (lambda: Spike(10, 5, 1, 1), ["peak_rate", "> 10"]),
    (lambda: OpenLoop(*world_and_service(), 10), ["duration or requests"]),
    (lambda: OpenLoop(*world_and_service(), "fast", duration=1), ["profile", "requests per second"]),
    (lambda: OpenLoop(world(), "api", 10, duration=1), ["target", "call"]),
    (lambda: OpenLoop(*world_and_service(), 10, requests=0), ["requests", ">= 1"]),
    (lambda: ClosedLoop(*world_and_service(), users=0, duration=10), ["users", "[1, 100000]"]),
    (lambda: ClosedLoop(*world_and_service(), users=1, think=-2, duration=10), ["think", "> 0"]),
    (lambda: world().run(until=0), ["until", "> 0"]),
    (lambda: theory.availability(0, 1), ["mttf", "> 0"]),
    (lambda: theory.series(), ["availabilities", "at least one"]),
    (lambda: theory.series(0.9, 1.1), ["availabilities[1]", "[0, 1]"]),
    (lambda: theory.parallel(-0.1), ["availabilities[0]", "[0, 1]"]),
    (lambda: theory.downtime(0.99, "fortnight"), ["period", "one of"]),
    (lambda: theory.fanout_slow_share(0.01, 0), ["n", ">= 1"]),
    (lambda: theory.mm1_response_time(10, 5), ["arrival_rate", "< service_rate"]),
    (lambda: theory.erlang_c(2, 3, 1), ["arrival_rate", "servers * service_rate"]),
    (lambda: theory.replicas_availability(2, 10, 1, crews=0), ["crews", ">= 1"]),
    (lambda: Slider("not valid", "x", "s", 0, 1, 0.5), ["name", "identifier"]),
    (lambda: Slider("x", "x", "s", 1, 0, 0.5), ["high", "> 1"]),
    (lambda: Slider("x", "x", "s", 0, 1, 2), ["default", "[0, 1]"]),
    # regressions: these used to raise AttributeError/TypeError, or to pass silently
    (lambda: LatencySpike("db", [(0, 1)], extra=1.0), ["service", "Service"]),
    (lambda: ErrorBurst("db", [(0, 1)], error_rate=0.5), ["service", "Service"]),
    (lambda: GrayFailure("db", [(0, 1)], slowdown=2), ["service", "Service"]),
    (lambda: Service(world(), "a", dependencies="db"), ["dependencies", "list of services, clients or service names"]),
    (lambda: Mixture([5]), ["parts[0]", "pair"]),
    (lambda: LogNormal(0.1, 0.5).quantile(1.0), ["q", "(0, 1)"]),
    (lambda: Slider("n", "n", "", 0.5, 10, 2.5, integer=True), ["low", "whole number"]),
    (lambda: Slider("n", "n", "", 1, 10, 2, step=0.5, integer=True), ["step", "whole number"]),
]


@pytest.mark.parametrize("call, words", CASES, ids=[", ".join(w) for _, w in CASES])
def test_bad_input_is_rejected_with_a_clear_message(call, words):
    with pytest.raises((ValueError, TypeError)) as err:     # TypeError: the wrong kind of thing
        call()
    for word in words:
        assert word in str(err.value), f"{word!r} not in {err.value!s}"


def test_metrics_reject_bad_arguments():
    w = World(1)
    s = Service(w, "api", latency=0.001)
    OpenLoop(w, s, 10, duration=10)
    results = w.run(until=10)
    for call, word in [(lambda: results.time_availability("nope"), "service must be one of"),
                       (lambda: results.time_availability(), "services must name"),
                       (lambda: results.time_availability("api", need="most"), "need must be one of"),
                       (lambda: results.latency_percentiles((0,)), "ps"),
                       (lambda: results.timeseries(0), "bin_width"),
                       (lambda: results.between(5, 11), "t1"),
                       (lambda: results.between(-1, 5), "t0"),
                       (lambda: results.between(5, 5), "t1"),
                       (lambda: results.between(2, 4).between(1, 3), "t0")]:
        with pytest.raises(ValueError, match=word):
            call()


def test_an_empty_view_says_it_is_empty_instead_of_dividing_by_zero():
    w = World(1)
    s = Service(w, "api", latency=0.001)
    OpenLoop(w, s, 10, duration=5)
    results = w.run(until=10)
    empty = results.between(6, 10)
    for call in (empty.request_availability, empty.full_quality_availability, empty.calls_per_request,
                 empty.attempts_per_request, empty.summary, empty.mean_latency):
        with pytest.raises(ValueError, match="no .*requests in Results"):
            call()
    assert empty.throughput() == 0.0 and empty.arrival_rate() == 0.0
    for ps in (99, ()):
        with pytest.raises(ValueError, match="ps must"):
            results.latency_percentiles(ps)


def test_numpy_numbers_are_accepted_like_python_numbers():
    """np.int64 and np.float32 (from np.arange, np.linspace, arrays) used to be refused as "not a number"."""
    import numpy as np
    from resilience_sim.policies import Bulkhead
    w = World(np.int64(3))
    api = Service(w, "api", capacity=np.int64(4), latency=Fixed(np.float32(0.01)))
    Outage(api, np.array([[1, 2]]))
    OpenLoop(w, api, np.int64(10), duration=np.int64(5))
    assert Bulkhead(np.int64(2)).max_concurrent == 2
    assert len(w.run(until=np.int64(6))) > 0
    for bad in (np.bool_(True), np.float64("nan")):
        with pytest.raises(ValueError, match="capacity"):
            Service(World(1), "x", capacity=bad)
