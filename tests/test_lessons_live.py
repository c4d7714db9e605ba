"""Notebook 17's lesson: the stack starts and stops leaving nothing, its fault mix is on and off as said,
the simulated bridge is exact for a seed, the outbox stories give the checker's verdicts."""
import httpx

from resilience_sim.lessons import live as lv
from live_support import no_leaks


def test_the_stack_serves_through_the_proxy_and_stops_leaving_nothing():
    with no_leaks(settle=3.0):
        with lv.start() as stack:
            assert httpx.get(f"{stack.url}/items/7").json()["id"] == 7
            stack.inject()
            kinds = [rule["kind"] for rule in stack.catalog.faults.active()]
            assert sorted(kinds) == ["fail", "slow", "trickle"]
            assert [t.type for t in stack.proxy.toxics()] == ["latency"]
            stack.calm()
            assert not stack.catalog.faults.active() and not stack.proxy.toxics()


def test_a_ladder_step_gives_one_row_per_arrival_and_the_clients_stats():
    with no_leaks(settle=3.0):
        with lv.start() as stack:
            run = lv.ladder_run(stack, "+ retries (full jitter, Retry-After)")
    assert len(run.results) == run.report.planned > 100
    assert run.client.requests == len(run.results) and run.answered() > 0.9


def test_the_simulated_bridge_is_the_same_for_a_seed_and_near_the_formula():
    a, b = lv.bridge_sim(3), lv.bridge_sim(3)
    assert a.request_availability() == b.request_availability()
    assert abs(a.request_availability() - 0.76) < 0.06


def test_the_outbox_stories_give_the_checkers_verdicts():
    with no_leaks(settle=3.0):
        table = lv.outbox_stories(orders=30)
    ok = table.data["outbox, idempotent consumer"]
    assert not ok.lost and not ok.unexpected and not ok.duplicated
    assert table.data["commit, then publish"].lost and table.data["publish, then commit"].unexpected
    assert table.data["outbox, consumer without dedupe"].duplicated


def test_the_dashboard_builds_and_reruns():
    dash = lv.bridge_dashboard()
    dash.set(error_pct=20)
    dash.rerun()
    assert "Could not run" not in dash.text.value
