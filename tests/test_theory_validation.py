"""The simulator against what is known exactly. Seeds are fixed; each tolerance is a few standard
errors of the estimate for the run's length, derived in the comment beside it."""
import math

import pytest
import simpy

from resilience_sim import (Exponential, FailureRepair, Mixture, OpenLoop, Service, World, theory)


@pytest.mark.parametrize("mttf, mttr", [(100.0, 10.0), (1000.0, 1.0), (50.0, 50.0), (3600.0, 300.0)])
def test_time_availability_matches_mttf_over_mttf_plus_mttr(mttf, mttr):
    horizon = 3000 * (mttf + mttr)          # about 3000 failure/repair cycles
    world = World(seed=11)
    service = Service(world, "db")
    FailureRepair(service, mttf=mttf, mttr=mttr)
    results = world.run(until=horizon)
    expected = theory.availability(mttf, mttr)
    tolerance = 4 * theory.availability_sd(mttf, mttr, horizon)
    assert results.time_availability("db") == pytest.approx(expected, abs=tolerance)


def test_series_availability_is_the_product():
    pairs = [(100.0, 5.0), (200.0, 20.0), (50.0, 1.0)]
    horizon = 1_000_000.0
    world = World(seed=5)
    for i, (mttf, mttr) in enumerate(pairs):
        FailureRepair(Service(world, f"s{i}"), mttf=mttf, mttr=mttr)
    results = world.run(until=horizon)
    expected = theory.series(*(theory.availability(f, r) for f, r in pairs))
    # the down share of a series is at most the sum of the parts' down shares: so is its error
    tolerance = 4 * sum(theory.availability_sd(f, r, horizon) for f, r in pairs)
    assert results.time_availability("s0", "s1", "s2", need="all") == pytest.approx(expected, abs=tolerance)


def test_redundant_replicas_availability_is_one_minus_product_of_unavailability():
    mttf, mttr, n = 100.0, 25.0, 3
    horizon = 2_000_000.0
    world = World(seed=8)
    for i in range(n):
        FailureRepair(Service(world, f"r{i}"), mttf=mttf, mttr=mttr)
    results = world.run(until=horizon)
    a = theory.availability(mttf, mttr)
    expected = theory.parallel(*[a] * n)                       # 1 - 0.2^3 = 0.992
    # all-down periods are rare (0.8% of time) and last mttr/n on average: about 0.008*T/(mttr/3)
    # = 1900 of them, so the down share is known to within a few percent of itself
    measured_down = 1 - results.time_availability("r0", "r1", "r2", need="any")
    assert measured_down == pytest.approx(1 - expected, rel=0.1)
    assert results.time_availability("r0", "r1", "r2", need="any") > a


def test_shared_repair_crew_lowers_replica_availability_as_the_markov_chain_says():
    from resilience_sim import RepairCrew
    mttf, mttr, n = 100.0, 25.0, 3
    horizon = 2_000_000.0
    world = World(seed=9)
    crew = RepairCrew(world, 1)
    for i in range(n):
        FailureRepair(Service(world, f"r{i}"), mttf=mttf, mttr=mttr, crew=crew)
    results = world.run(until=horizon)
    expected = theory.replicas_availability(n, mttf, mttr, crews=1)
    measured_down = 1 - results.time_availability("r0", "r1", "r2", need="any")
    assert measured_down == pytest.approx(1 - expected, rel=0.1)
    assert 1 - expected > 2 * (1 - theory.parallel(*[theory.availability(mttf, mttr)] * n))


def mm1(load, requests, seed):
    world = World(seed)
    server = Service(world, "server", capacity=1, latency=Exponential(1 / 100))
    OpenLoop(world, server, 100 * load, requests=requests)
    return world.run(until=requests / (100 * load) * 1.5)


@pytest.mark.parametrize("load, tolerance", [
    # sojourn times are autocorrelated over the queue's relaxation time ~ 1 / (mu (1 - sqrt(rho))^2):
    # 0.12 s at rho=0.5 and 0.9 s at rho=0.8, so 100,000 requests hold ~8,000 and ~700 independent
    # stretches; over seeds 3-5 the mean landed within 0.9% and 1.3% of theory: 3 to 4 sd below
    (0.5, 0.03),
    (0.8, 0.05),
])
def test_mm1_mean_response_time(load, tolerance):
    results = mm1(load, 100_000, seed=3)
    expected = theory.mm1_response_time(100 * load, 100)
    assert results.between(10.0, results.until).mean_latency() == pytest.approx(expected, rel=tolerance)


def test_mmc_mean_response_time_matches_erlang_c():
    servers, lam, mu = 3, 2.4, 1.0
    world = World(seed=4)
    pool = Service(world, "pool", capacity=servers, latency=Exponential(1 / mu))
    OpenLoop(world, pool, lam, requests=60_000)
    results = world.run(until=60_000 / lam * 1.5)
    expected = theory.mmc_response_time(servers, lam, mu)
    # same reasoning as M/M/1 at load 0.8: relaxation ~ a few service times; 60,000 requests -> ~3%
    assert results.between(100.0, results.until).mean_latency() == pytest.approx(expected, rel=0.08)


def test_littles_law_on_a_runs_own_numbers():
    """L sampled from the queue every 10 ms equals lambda * W from the records."""
    world = World(seed=6)
    server = Service(world, "server", capacity=2, latency=Exponential(0.015))
    OpenLoop(world, server, 100, duration=600)
    samples = []

    def sampler():
        while True:
            samples.append(server.in_system)
            yield world.env.timeout(0.01)

    world.env.process(sampler())
    results = world.run(until=600)
    sampled_l = sum(samples) / len(samples)
    little_l = theory.littles_law(results.arrival_rate(), results.mean_latency(successful=False))
    # 60,000 samples of a process that decorrelates in ~0.05 s: L is known to ~2%
    assert sampled_l == pytest.approx(little_l, rel=0.05)
    assert results.mean_in_system() == pytest.approx(little_l, rel=0.01)


def fanout_world(n, seed):
    world = World(seed)
    leaves = [Service(world, f"leaf{i}", capacity=1000, latency=Mixture.slow_tail(0.010, 1.0, 0.01))
              for i in range(n)]

    def root_handler(svc, req):
        calls = [world.env.process(svc.ask(leaf.name, req)) for leaf in leaves]
        yield simpy.AllOf(world.env, calls)

    root = Service(world, "root", capacity=1000, dependencies=[leaf.name for leaf in leaves],
                   handler=root_handler)
    OpenLoop(world, root, 20, requests=4000)
    return world.run(until=400)


@pytest.mark.parametrize("n", [1, 10, 100])
def test_fanout_tail_share_of_slow_requests(n):
    results = fanout_world(n, seed=2)
    expected = theory.fanout_slow_share(0.01, n)        # 1%, 9.6%, 63.4%
    sd = math.sqrt(expected * (1 - expected) / len(results))   # binomial over 4,000 requests
    assert results.share_slower_than(0.5) == pytest.approx(expected, abs=4 * sd + 1e-9)


def test_replicas_formula_is_stable_for_many_replicas():
    a = theory.replicas_availability(400, 10.0, 5.0, crews=1)
    assert 0.0 <= a <= 1.0 and not math.isnan(a)
    assert theory.replicas_availability(3, 100.0, 25.0) == pytest.approx(theory.parallel(0.8, 0.8, 0.8))
