"""Modelling your own system (sim/system_model.py, lessons/own_system.py): exact answers, the
simulation against them, the weakest link, bad input, determinism, and the capstone's shop."""
import functools
import math

import pytest

from resilience_sim.core import theory
from resilience_sim.lessons import own_system as own
from resilience_sim.sim.chaos import ChaosDay, ChaosFault, DayProfile
from resilience_sim.sim.system_model import Component, Endpoint, SystemModel, build, check_patterns
from resilience_sim.sim.world import World
from resilience_sim.sweeps import process_pool, sweep

#: The textbook case: a frontend -> two replicas of an api -> one db (own.textbook, run on notebook 19's page).
FRONT, API, DB = own.TEXTBOOK["frontend"], own.TEXTBOOK["api"], own.TEXTBOOK["db"]
textbook = own.textbook


def test_the_exact_availability_is_the_series_of_the_parallel_replicas():
    exact = own.exact_availability(textbook())["page"]
    by_hand = (20_000 / 20_200) * (1 - 0.2 ** 2) * (5_000 / 5_250)
    assert exact == pytest.approx(by_hand, rel=1e-12)
    assert exact == pytest.approx(theory.series(theory.availability(*FRONT),
                                                theory.parallel(0.8, 0.8), theory.availability(*DB)), rel=1e-12)
    # a wrong answer (one api replica) is far from it
    assert own.exact_availability(textbook(api_replicas=1))["page"] == pytest.approx(by_hand * 0.8 / 0.96)


def test_fallbacks_change_the_structure_function_exactly():
    def model(fallback):
        return SystemModel(
            [Component("web", depends_on=("recs",), mttf=900.0, mttr=100.0),
             Component("recs", mttf=400.0, mttr=100.0, fallback=fallback),
             Component("popular", mttf=300.0, mttr=100.0)],
            [Endpoint("page", "web", 1.0)])
    assert own.exact_availability(model("static"))["page"] == pytest.approx(0.9 * 0.8)
    assert own.exact_availability(model("static"), patterns=("fallback",))["page"] == pytest.approx(0.9)
    assert own.exact_availability(model("popular"), patterns=("fallback",))["page"] == \
        pytest.approx(0.9 * (1 - 0.2 * 0.25))


def test_the_simulated_time_availability_is_within_sampling_error_of_the_exact_one():
    horizon, seeds = 400_000.0, 12
    rows = own.availability_table(textbook(), duration=horizon, seeds=seeds, base_seed=3, traffic=False)
    exact, sim = rows[0]["exact"], rows[0]["time"]
    # one run's sd: the components' sds in quadrature (one api replica's sd bounds the pair's)
    sd = math.sqrt(sum(theory.availability_sd(f, r, horizon) ** 2 for f, r in (FRONT, API, DB)))
    tolerance = 4 * sd / math.sqrt(seeds)
    assert abs(sim - exact) < tolerance
    wrong = own.exact_availability(textbook(api_replicas=1))["page"]
    assert abs(sim - wrong) > tolerance             # the check rejects a wrong exact answer
    check = own.textbook_check(duration=horizon, seeds=seeds, base_seed=3)
    assert check["simulated"] == sim and check["tolerance"] == pytest.approx(tolerance)
    assert check["agree"] and check["rejects_wrong"]
    # the packaged check can fail: with a far too tight tolerance it no longer agrees
    assert not own.textbook_check(duration=horizon, seeds=seeds, base_seed=3, sds=0.001)["agree"]


def test_requests_see_the_time_availability():
    rows = own.availability_table(textbook(), duration=20_000.0, seeds=2, base_seed=1)
    assert abs(rows[0]["good"] - rows[0]["time"]) < 0.01   # requests arrive at random times (PASTA)


@pytest.fixture(scope="module")
def two_tier_links():
    """A frontend on a db that fails a hundred times as often: the weakest link is known by hand."""
    model = SystemModel(
        [Component("frontend", depends_on=("db",), mttf=100_000.0, mttr=100.0),
         Component("db", mttf=1_000.0, mttr=100.0)],
        [Endpoint("page", "frontend", 1.0)])
    return model, own.weakest_link(model, duration=200_000.0, seeds=4)


def test_the_weakest_link_is_the_component_known_by_hand(two_tier_links):
    model, rows = two_tier_links
    assert [r["component"] for r in rows] == ["db", "frontend"]
    db, frontend = rows
    # doubling the db's MTTF: 1000/1100 -> 2000/2100, times the frontend's availability
    a_f = theory.availability(100_000, 100)
    assert db["exact mttf x2"] == pytest.approx(a_f * (2000 / 2100 - 1000 / 1100))
    assert db["exact mttr /2"] == pytest.approx(db["exact mttf x2"])     # only the ratio matters
    assert db["sim mttf x2"] > frontend["sim mttf x2"] and db["sim mttr /2"] > frontend["sim mttr /2"]
    assert db["sim mttf x2"] == pytest.approx(db["exact mttf x2"], abs=0.02)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="db.slots"):
        Component("db", slots=0)
    with pytest.raises(ValueError, match="db.mttf and db.mttr"):
        Component("db", mttf=10.0)
    with pytest.raises(ValueError, match="api.replicas"):
        Component("api", replicas=0)
    with pytest.raises(ValueError, match="page.rate"):
        Endpoint("page", "web", rate=-1)
    with pytest.raises(ValueError, match=r"web\.depends_on must name components"):
        SystemModel([Component("web", depends_on=("nope",))], [Endpoint("page", "web", 1.0)])
    with pytest.raises(ValueError, match=r"web\.fallback must name components"):
        SystemModel([Component("web", fallback="nope")], [Endpoint("page", "web", 1.0)])
    with pytest.raises(ValueError, match=r"b\.depends_on must not form a cycle"):
        SystemModel([Component("a", depends_on=("b",)), Component("b", depends_on=("a",))], [Endpoint("p", "a", 1.0)])
    with pytest.raises(ValueError, match=r"b\.fallback must not form a cycle, got a -> b -> a"):
        SystemModel([Component("a", depends_on=("b",)), Component("b", fallback="a")], [Endpoint("p", "a", 1.0)])
    with pytest.raises(ValueError, match="unique names"):
        SystemModel([Component("a"), Component("a")], [Endpoint("p", "a", 1.0)])
    with pytest.raises(ValueError, match="page.entry"):
        SystemModel([Component("a")], [Endpoint("page", "b", 1.0)])
    with pytest.raises(ValueError, match="page.uses"):
        SystemModel([Component("a")], [Endpoint("page", "a", 1.0, uses=("z",))])
    with pytest.raises(ValueError, match="patterns"):
        check_patterns(("timeouts", "magic"))
    with pytest.raises(TypeError, match="model"):
        own.exact_availability("my system")
    with pytest.raises(ValueError, match="duration"):
        own.availability_table(textbook(), duration=0)


def test_same_seed_same_table_on_any_executor():
    a = own.availability_table(textbook(), duration=5_000.0, seeds=2, base_seed=7)
    assert a == own.availability_table(textbook(), duration=5_000.0, seeds=2, base_seed=7)
    assert a != own.availability_table(textbook(), duration=5_000.0, seeds=2, base_seed=8)
    run = functools.partial(own.availability_run, textbook(), duration=50_000.0, traffic=False)
    here = sweep(run, None, seeds=4, base_seed=5, progress=False)
    with process_pool(2) as pool:
        there = sweep(run, None, seeds=4, base_seed=5, executor=pool, progress=False)
    assert here.rows == there.rows


def test_patterns_switched_on_one_by_one():
    model = SystemModel(
        [Component("web", slots=20, latency=0.001, depends_on=("recs",)),
         Component("recs", slots=10, latency=0.01, mttf=300.0, mttr=100.0, fallback="static")],
        [Endpoint("page", "web", 5.0)])
    rows = own.what_if(model, ("timeouts", "fallback"), duration=1_500.0, seeds=2)
    assert [r["patterns"] for r in rows] == ["none", "timeouts", "timeouts + fallback"]
    assert rows[0]["page"] < 0.95 and rows[2]["page"] == 1.0 and rows[2]["exact"] == 1.0
    world = World(1)
    built = build(model, world, duration=100.0, patterns=("fallback",))
    assert set(built.services) == {"web", "recs"}


def test_replicas_sit_behind_a_balancer():
    world = World(2)
    built = build(textbook(), world, duration=100.0)
    assert built.replicas["api"] == ("api#1", "api#2") and "api" in built.services
    results = world.run(110.0)
    assert results.services["api#1"].calls > 0 and results.services["api#2"].calls > 0


def _day(*faults):
    return ChaosDay(3, DayProfile(1.0, hours=1.0), tuple(faults))


@pytest.mark.parametrize("faults", [(), (ChaosFault("db failover", "db", 1200.0, 1500.0),)], ids=["quiet", "db down"])
def test_the_shop_model_agrees_with_the_capstone(faults):
    rows = own.shop_validation(_day(*faults))
    assert [r["endpoint"] for r in rows] == ["browse", "search", "checkout"]
    assert all(r["agree"] for r in rows), rows
    if faults:
        browse = rows[0]
        assert browse["capstone"] < 0.95          # the fault shows, and the model sees it too
        assert abs(browse["difference"]) <= browse["tolerance"]


def test_a_wrong_shop_model_is_rejected():
    shop = own.shop_model()
    wrong = shop.with_("catalog", depends_on=())     # forgets that the catalog reads the database
    rows = own.shop_validation(_day(ChaosFault("db failover", "db", 1200.0, 1500.0)), model=wrong)
    assert not rows[0]["agree"]


def test_the_shop_model_uses_the_capstones_constants():
    from resilience_sim.sim.shop import PATIENCE, PEAK, SLOTS, WORK
    shop = own.shop_model()
    for name, slots in SLOTS.items():
        assert shop.component(name).slots == slots and shop.component(name).latency == WORK[name]
    for e in shop.endpoints:
        assert e.rate == PEAK[e.name] and e.patience == PATIENCE[e.name]
    assert shop.needs("browse") == ("frontend", "catalog", "recommendations", "db")


def test_the_default_timeout_is_ten_response_times_of_the_callee():
    model = SystemModel(
        [Component("web", latency=0.001, depends_on=("api",)),
         Component("api", latency=0.01, depends_on=("db", "recs")),
         Component("db", latency=0.003), Component("recs", latency=0.02, timeout=0.7)],
        [Endpoint("page", "web", 1.0)])
    assert model.response_time("api") == pytest.approx(0.033)
    assert model.call_timeout("api") == pytest.approx(0.33)      # not 10 x the api's own 0.01 s
    assert model.call_timeout("db") == 0.05                      # the 50 ms floor
    assert model.call_timeout("recs") == 0.7                     # a declared timeout wins


def test_patterns_with_nothing_to_act_on_are_refused():
    model = textbook()
    for pattern, field in (("fallback", "fallback"), ("cache", "cache_hit")):
        with pytest.raises(ValueError, match=f"'{pattern}' but no component declares a {field}"):
            own.exact_availability(model, patterns=(pattern,))
        with pytest.raises(ValueError, match=f"'{pattern}'"):
            build(model, World(1), duration=10.0, patterns=(pattern,))
    assert own.exact_availability(model, patterns=("timeouts", "retries")) == own.exact_availability(model)


def test_the_cache_is_honoured_by_the_exact_and_the_time_availability():
    model = SystemModel(
        [Component("web", slots=20, latency=0.001, depends_on=("recs",)),
         Component("recs", slots=10, latency=0.01, mttf=300.0, mttr=100.0, cache_hit=0.5)],
        [Endpoint("page", "web", 5.0)])
    assert own.exact_availability(model)["page"] == pytest.approx(0.75)
    exact = own.exact_availability(model, patterns=("cache",))["page"]
    assert exact == pytest.approx(0.5 * 1.0 + 0.5 * 0.75)       # half the keys never reach recs
    row, = own.availability_table(model, duration=20_000.0, seeds=4, base_seed=2, patterns=("cache",))
    assert row["time_low"] <= exact <= row["time_high"]
    assert not row["time_low"] <= 0.75 <= row["time_high"]      # the cache-blind answer is rejected
    assert abs(row["good"] - row["time"]) < 0.02                 # requests see the keyed time availability


def test_the_weakest_link_gains_have_intervals_and_the_what_if_its_time_availability(two_tier_links):
    model, rows = two_tier_links
    for r in rows:
        for what in ("mttf x2", "mttr /2"):
            assert r[f"sim {what} low"] < r[f"sim {what}"] < r[f"sim {what} high"]
    db = rows[0]
    assert db["sim mttf x2 low"] <= db["exact mttf x2"] <= db["sim mttf x2 high"]
    assert not db["sim mttf x2 low"] <= 0.0 <= db["sim mttf x2 high"]      # "no gain" is rejected
    steps = own.what_if(textbook(), ("timeouts",), duration=2_000.0, seeds=2)
    assert steps[0]["page time"] == steps[1]["page time"]                  # common seeds: same timelines
    assert abs(steps[0]["page"] - steps[0]["page time"]) < 0.05


def test_a_tight_caller_timeout_makes_retries_cost_the_fallback():
    # notebook 19's system: the api retries a down recommender before it falls back
    model = SystemModel(
        [Component("frontend", slots=40, latency=0.001, depends_on=("api",), mttf=20_000, mttr=200),
         Component("api", slots=8, latency=0.01, depends_on=("db", "recs"), mttf=1_000, mttr=250, replicas=2),
         Component("db", slots=20, latency=0.003, mttf=5_000, mttr=250),
         Component("recs", slots=4, latency=0.02, mttf=2_000, mttr=500, fallback="static")],
        [Endpoint("page", entry="frontend", rate=1.0, patience=2.0)])
    order = ("fallback", "timeouts", "retries")
    tight = own.what_if(model.with_("api", timeout=0.1), order, duration=6_000.0, seeds=2, base_seed=19)
    roomy = own.what_if(model, order, duration=6_000.0, seeds=2, base_seed=19)
    assert tight[3]["page time"] == tight[1]["page time"]       # the same outages at every step
    assert tight[3]["page"] < tight[2]["page"] - 0.005           # retries outlast the caller's 0.1 s
    assert roomy[3]["page"] >= roomy[1]["page"]                  # ten response times (0.33 s) leave room
