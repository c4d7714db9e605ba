"""Part IV's pure parts with plain numbers: the message queue, idempotency keys; and the simulated
database's transactions."""
import math

import pytest

from resilience_sim import World
from resilience_sim.policies import IdempotencyKeys, MessageQueue
from resilience_sim.policies.idempotency import CONFLICT, IN_FLIGHT, NEW, REPLAY
from resilience_sim.sim.database import Database
from resilience_sim.sim.service import ServiceError


def conserved(q: MessageQueue) -> bool:
    return q.sent == q.waiting + q.acked + len(q.dead_letters) + q.dropped


# --- the message queue ----------------------------------------------------------------------------
def test_a_message_is_invisible_while_in_flight_and_back_after_the_timeout():
    q = MessageQueue(visibility_timeout=30)
    q.send("m1", "body", 0.0)
    first = q.receive(1.0)
    assert (first.message_id, first.receive_count, first.visible_at) == ("m1", 1, 31.0)
    assert q.receive(30.9) is None and q.in_flight == 1
    again = q.receive(31.0)
    assert again.receive_count == 2 and q.redelivered == 1
    assert q.ack(first.receipt, 31.5) is False or pytest.fail("a stale receipt must not delete")


def test_an_ack_in_time_deletes_and_a_late_one_is_refused():
    q = MessageQueue(visibility_timeout=5)
    q.send("a", None, 0.0)
    q.send("b", None, 0.0)
    a, b = q.receive(0.0), q.receive(0.0)
    assert q.ack(a.receipt, 5.0) is True
    assert q.ack(b.receipt, 5.01) is False        # processing outlasted the timeout: b comes again
    assert q.receive(5.01).message_id == "b" and q.acked == 1 and conserved(q)


def test_dead_letters_after_max_receives_and_the_trap_without_them():
    for dead_letter, dropped in ((True, 0), (False, 1)):
        q = MessageQueue(visibility_timeout=1, max_receives=3, dead_letter=dead_letter)
        q.send("m", "x", 0.0)
        counts = [q.receive(float(t)).receive_count for t in range(3)]
        assert counts == [1, 2, 3] and q.receive(10.0) is None
        assert (len(q.dead_letters), q.dropped) == (1 - dropped, dropped) and conserved(q)


def test_extend_keeps_a_slow_delivery_invisible():
    q = MessageQueue(visibility_timeout=2)
    q.send("m", None, 0.0)
    d = q.receive(0.0)
    assert q.extend(d.receipt, 1.5, 10) == 11.5
    assert q.receive(5.0) is None and q.ack(d.receipt, 11.0)


def test_oldest_visible_first_and_the_broker_does_not_dedupe():
    q = MessageQueue()
    for i, mid in enumerate(["a", "b", "a"]):
        q.send(mid, i, float(i))
    assert [q.receive(5.0).body for _ in range(3)] == [0, 1, 2] and q.sent == 3


@pytest.mark.parametrize("kwargs, match", [({"visibility_timeout": -1}, "visibility_timeout must be"),
                                           ({"max_receives": 0}, "max_receives must be"),
                                           ({"visibility_timeout": 13 * 3600}, "visibility_timeout must be"),
                                           ({"dead_letter": 1}, "dead_letter must be True or False")])
def test_queue_settings_that_make_no_sense_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MessageQueue(**kwargs)


def test_acknowledging_twice_or_without_a_receive_is_refused():
    q = MessageQueue()
    q.send("m", None, 0.0)
    d = q.receive(0.0)
    q.ack(d.receipt, 1.0)
    with pytest.raises(ValueError, match="not yet acknowledged"):
        q.ack(d.receipt, 2.0)
    with pytest.raises(ValueError, match="receipt must be one this queue gave"):
        q.ack(("m", 999), 2.0)
    with pytest.raises(ValueError, match="receipt must be a receipt"):
        q.ack(["m"], 2.0)


# --- idempotency keys -----------------------------------------------------------------------------
def test_the_first_response_is_replayed_and_other_params_conflict():
    keys = IdempotencyKeys(retention=100)
    assert keys.begin("k", {"amount": 10}, 0.0) == (NEW, None)
    assert keys.begin("k", {"amount": 10}, 1.0) == (IN_FLIGHT, None)      # still running: safe to retry
    keys.finish("k", (500, "boom"), 2.0)
    assert keys.begin("k", {"amount": 10}, 3.0) == (REPLAY, (500, "boom"))   # errors are replayed too
    assert keys.begin("k", {"amount": 99}, 4.0) == (CONFLICT, None)
    assert (keys.new, keys.replayed, keys.conflicts, keys.in_flight_refusals) == (1, 1, 1, 1)


def test_keys_expire_after_retention_and_abandoned_ones_store_nothing():
    keys = IdempotencyKeys(retention=10)
    keys.begin("k", 1, 0.0)
    keys.finish("k", "ok", 1.0)
    assert keys.begin("k", 1, 10.0)[0] == REPLAY and keys.begin("k", 1, 10.5)[0] == NEW
    keys.abandon("k", 11.0)
    assert keys.begin("k", 2, 12.0)[0] == NEW


def test_idempotency_misuse_is_refused():
    keys = IdempotencyKeys()
    with pytest.raises(ValueError, match="key must not be None"):
        keys.begin(None, 1, 0.0)
    with pytest.raises(ValueError, match="retention must be"):
        IdempotencyKeys(retention=0)
    with pytest.raises(ValueError, match="begin\\(\\) answered NEW"):
        keys.finish("never", "x", 1.0)


# --- transactions ---------------------------------------------------------------------------------
def run(world, gen):
    out = {}

    def proc():
        try:
            out["value"] = yield from gen
        except ServiceError as err:
            out["error"] = err.reason
    world.env.process(proc())
    world.env.run()
    return out


def test_a_transaction_commits_everything_at_once_or_nothing():
    world = World(1)
    db = Database(world, "db", latency=1.0)
    tx = db.transaction()
    tx.insert("orders", 1, {"total": 5})
    tx.insert("outbox", 1, {"status": "new"})
    assert run(world, tx.commit()) == {"value": set()} and len(db.rows("orders")) == len(db.rows("outbox")) == 1
    db.service.go_down()
    tx = db.transaction()
    tx.insert("orders", 2, {})
    assert run(world, tx.commit()) == {"error": "down"} and db.get("orders", 2) is None
    db.service.go_up()
    tx = db.transaction()
    tx.insert("orders", 3, {})
    tx.insert("orders", 1, {})                  # exists: the whole transaction fails
    assert run(world, tx.commit()) == {"error": "conflict"} and db.get("orders", 3) is None


def test_a_crash_before_the_commit_point_applies_nothing():
    world = World(1)
    db = Database(world, "db", latency=1.0)
    tx = db.transaction()
    tx.insert("orders", 1, {})

    def crash():
        yield world.env.timeout(0.5)
        db.service.go_down()
    world.env.process(crash())
    assert run(world, tx.commit()) == {"error": "crashed"} and db.rows("orders") == []


def test_conditional_updates_are_checked_at_the_commit_point():
    world = World(1)
    db = Database(world, "db")
    seed = db.transaction()
    seed.insert("outbox", 1, {"lease_until": 0.0})
    run(world, seed.commit())
    claims = []
    for owner in ("a", "b"):
        tx = db.transaction()
        tx.update("outbox", 1, {"owner": owner, "lease_until": 10.0}, where=lambda r: r["lease_until"] <= 1.0)
        claims.append(tx)
    assert run(world, claims[0].commit())["value"] == {("outbox", 1)}
    assert run(world, claims[1].commit())["value"] == set() and db.get("outbox", 1)["owner"] == "a"


def test_a_used_transaction_is_refused():
    world = World(1)
    db = Database(world, "db")
    tx = db.transaction()
    tx.insert("t", 1, {})
    run(world, tx.commit())
    with pytest.raises(ValueError, match="this transaction is committed"):
        tx.insert("t", 2, {})
    with pytest.raises(ValueError, match="cannot commit again"):
        next(tx.commit())
    other = db.transaction()
    other.rollback()
    with pytest.raises(ValueError, match="rolled back"):
        other.update("t", 1, {})
    with pytest.raises(ValueError, match="row must be a dict"):
        db.transaction().insert("t", 3, [1, 2])


# --- alert rules ----------------------------------------------------------------------------------
from resilience_sim.policies.alerts import WORKBOOK_PAIRS, BurnRateRule, ThresholdRule, budget_spent, time_to_fire  # noqa: E402


def first_firing(rule, error_ratio, *, before=7200, during=1800, after=3600, rate=10):
    """Seconds from the start of errors to the first firing, and from their end to the reset."""
    import random
    rng = random.Random(1)
    fired = reset = None
    for t in range(before + during + after):
        p = error_ratio if before <= t < before + during else 0.0
        bad = sum(rng.random() < p for _ in range(rate))
        rule.record_counts(float(t), rate - bad, bad)
        on = rule.firing(float(t))
        if on and fired is None:
            fired = t - before
        if fired is not None and not on and reset is None:
            reset = t - before - during
    return fired, reset


def test_the_workbook_numbers():
    assert time_to_fire(0.999, 14.4, 3600, 1.0) == pytest.approx(51.84)
    assert budget_spent(14.4, 3600) == pytest.approx(0.02) and budget_spent(6, 6 * 3600) == pytest.approx(0.05)
    assert time_to_fire(0.999, 14.4, 3600, 0.01) == math.inf


def test_a_total_outage_pages_in_52_seconds_and_resets_within_the_short_window():
    fired, reset = first_firing(BurnRateRule(0.999, WORKBOOK_PAIRS[:1], resolution=1.0), 1.0)
    assert 50 <= fired <= 53 and reset <= 300


def test_fifteen_percent_errors_page_after_about_six_minutes():
    fired, reset = first_firing(BurnRateRule(0.999, WORKBOOK_PAIRS[:1], resolution=1.0), 0.15)
    assert 5 * 60 <= fired <= 6.5 * 60 and reset <= 300


def test_a_threshold_with_for_waits_before_firing():
    plain, held = ThresholdRule(0.5, 60, resolution=1.0), ThresholdRule(0.5, 60, for_=120, resolution=1.0)
    assert 29 <= first_firing(plain, 1.0)[0] <= 31          # half of the 60 s window must be errors
    assert 149 <= first_firing(held, 1.0)[0] <= 151         # then held 120 s more


@pytest.mark.parametrize("make, match", [
    (lambda: BurnRateRule(0.999, [(300, 3600, 14.4)]), "short window .* must not be longer"),
    (lambda: BurnRateRule(1.0), "slo must be < 1"),
    (lambda: BurnRateRule(0.999, []), "at least one"),
    (lambda: ThresholdRule(0, 60), "threshold must be"),
    (lambda: ThresholdRule(0.1, 86400 * 30, resolution=1.0), "resolution must be at least"),
])
def test_alert_rules_that_make_no_sense_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --- the operator and the quality of a rule -------------------------------------------------------
def test_an_operator_paged_by_a_burn_rate_rule_repairs_and_the_rule_is_scored():
    from resilience_sim import Constant, OpenLoop, Service
    from resilience_sim.metrics.alerting import alert_quality, firing_spans
    from resilience_sim.sim.operator import Operator
    world = World(1)
    api = Service(world, "api", capacity=100, latency=0.01, error_rate=0.0005)
    rule = BurnRateRule(0.999, WORKBOOK_PAIRS[:1], resolution=10)
    op = Operator(world, rule, response=120, repair=300, every=10)
    op.incident(api, 7200)
    op.incident(api, 20000)
    OpenLoop(world, api, Constant(2), duration=30000)
    results = world.run(30001)
    assert op.pages == 2 and op.false_alarms == 0
    assert op.times() == {"mttd": 60.0, "mttr": 480.0}         # 52 s to fire, seen at the next 10 s scrape
    spans = firing_spans(results, BurnRateRule(0.999, WORKBOOK_PAIRS[:1], resolution=10), every=10)
    quality = alert_quality(spans, [(start, end) for start, _, end in op.incidents])
    assert (quality.precision, quality.recall, quality.detection_times) == (1.0, 1.0, (60.0, 60.0))
    assert all(0 < r <= 330 for r in quality.reset_times)      # the 5 min short window, plus a scrape


def test_a_too_sensitive_rule_has_false_alarms():
    from resilience_sim.metrics.alerting import alert_quality
    quality = alert_quality([(10, 20), (100, 110), (500, 520)], [(95, 300)])
    assert (quality.precision, quality.recall, quality.detection_times, quality.reset_times) == (1 / 3, 1.0, (5.0,), (0.0,))
    with pytest.raises(ValueError, match="end after it starts"):
        alert_quality([(5, 5)], [])


def test_a_restartable_crash_is_told_apart_from_other_interrupts():
    import simpy
    from resilience_sim.sim.crashes import Restartable, is_crash
    world, seen = World(1), []

    def body():
        try:
            yield world.env.timeout(10)
        except simpy.Interrupt as stop:
            seen.append(is_crash(stop))
            raise
    Restartable(world, "p", body, crashes=[1.0], restart_after=100.0)
    world.env.run(2)
    assert seen == [True] and not is_crash(simpy.Interrupt("a service's own"))
