"""Views of Results are closed under their own window and selection: every metric counts what is
inside, and rates divide by the view's own duration. Each test states a number the old views got
wrong (a whole-run denominator, a whole-run count, a window ignored)."""
import numpy as np
import pytest

from resilience_sim import ClosedLoop, Exponential, OpenLoop, Outage, Service, World


def checkout_handler(svc, req):
    if req.route == "checkout":
        return (yield from svc.ask("db", req))
    return None


@pytest.fixture(scope="module")
def results():
    world = World(1)
    db = Service(world, "db", capacity=50, latency=0.01)
    api = Service(world, "api", capacity=50, latency=0.001, dependencies=[db], handler=checkout_handler)
    Outage(db, [(200, 300)])
    OpenLoop(world, api, 50, duration=600, name="page")
    OpenLoop(world, api, 10, duration=600, name="checkout")
    return world.run(until=600)


def test_a_windows_throughput_divides_by_the_windows_length(results):
    # the old view divided 100 s of answers by the whole 600 s run: 8.3/s for a 50/s load
    assert results.only("page").between(0, 100).throughput() == pytest.approx(50, rel=0.05)
    assert results.between(0, 100).arrival_rate() == pytest.approx(60, rel=0.05)
    assert results.between(0, 100).duration == 100


def test_calls_per_request_counts_the_calls_made_for_the_views_requests(results):
    # page requests never call the db: the old view divided all db calls by page requests
    assert results.only("page").calls_per_request("db") == 0.0
    assert results.only("checkout").calls_per_request("db") == 1.0
    assert results.only("checkout").calls_per_request() == 2.0
    share = len(results.only("checkout")) / len(results)
    assert results.calls_per_request("db") == pytest.approx(share)
    assert results.between(0, 100).calls_per_request("api") == 1.0


def test_time_availability_and_timeseries_cover_the_views_window(results):
    assert results.time_availability("db") == pytest.approx(5 / 6)
    assert results.between(200, 300).time_availability("db") == 0.0
    assert results.between(250, 400).time_availability("db") == pytest.approx(100 / 150)
    series = results.between(100, 300).only("checkout").timeseries(50)
    assert list(series["t"]) == [100, 150, 200, 250]
    assert list(series["availability"][:2]) == [1.0, 1.0] and list(series["availability"][2:]) == [0.0, 0.0]
    assert series["requests"].sum() == len(results.between(100, 300).only("checkout"))


def test_a_views_summary_speaks_of_the_view(results):
    during = results.only("checkout").between(200, 300)
    assert during.summary()["availability"] == 0.0 and during.summary()["requests"] == len(during)
    assert during.summary()["calls_per_request"] == pytest.approx(2.0)
    assert results.summary()["availability"] == pytest.approx(1 - len(during) / len(results))


def test_views_compose_and_refuse_windows_outside_themselves(results):
    view = results.between(100, 400).only("page")
    assert view.between(150, 160).since == 150 and view.between(150, 160).only("page").until == 160
    assert len(view.only("checkout")) == 0
    with pytest.raises(ValueError, match="t0"):
        view.between(50, 160)
    with pytest.raises(ValueError, match="t1"):
        view.between(150, 500)


def test_results_say_what_they_hold(results):
    assert repr(results).startswith(f"Results({len(results):,} requests, availability ")
    assert "[200, 300) s" in repr(results.between(200, 300))
    assert "routes ['checkout']" in repr(results.only("checkout"))


def test_mean_in_system_of_a_window_follows_littles_law():
    world = World(3)
    svc = Service(world, "api", capacity=1, latency=Exponential(0.01))
    OpenLoop(world, svc, 50, duration=2000)
    view = world.run(until=2000).between(500, 1500)
    assert view.mean_in_system() == pytest.approx(view.arrival_rate() * view.mean_latency(), rel=0.02)


def test_route_and_key_are_recorded_per_row():
    world = World(2)
    svc = Service(world, "catalog", capacity=5, latency=0.01)
    OpenLoop(world, svc, 20, duration=50, name="browsers", route="item", key=lambda rng: rng.randrange(3))
    ClosedLoop(world, svc, users=2, think=1.0, duration=50, name="admins", key="all")
    results = world.run(until=60)
    assert set(results.routes) == {"item", "admins"}
    items = results.only("item")
    assert {items.key(i) for i in range(len(items))} == {0, 1, 2}
    admins = results.only("admins")
    assert admins.row(0)["route"] == "admins" and admins.row(0)["key"] == "all"
    assert len(items) + len(admins) == len(results)


def test_a_keyless_request_has_key_none_and_keys_must_be_hashable():
    world = World(2)
    svc = Service(world, "catalog")
    OpenLoop(world, svc, 5, duration=5)
    assert world.run(until=10).row(0)["key"] is None
    with pytest.raises(ValueError, match="key must be"):
        OpenLoop(world, svc, 5, duration=5, name="listed", key=[1, 2])
    with pytest.raises(ValueError, match="route must be"):
        OpenLoop(world, svc, 5, duration=5, name="other", route="")


def test_the_same_seed_gives_the_same_rows():
    def run(seed):
        world = World(seed)
        svc = Service(world, "catalog", capacity=2, latency=Exponential(0.05))
        OpenLoop(world, svc, 30, duration=30, key=lambda rng: rng.randrange(100))
        r = world.run(until=30)
        return r.start, r.end, [r.key(i) for i in range(len(r))]
    a, b = run(7), run(7)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
