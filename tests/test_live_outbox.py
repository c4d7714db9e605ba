"""The Part IV outbox on real parts: SQLite transactions, a relay thread with leases, an idempotent
consumer over HTTP, processes killed at chosen points, and the Part IV checker's verdict."""
import random
import sqlite3
import tempfile
import time
from collections import defaultdict

import httpx
import pytest

from resilience_sim.live.consumer import CRASH_POINTS, DEDUPES, EFFECTS, PROCESSED, Consumer, Crash, CrashPoint
from resilience_sim.live.outbox import (APP_CRASH_POINTS, DESIGNS, RELAY_CRASH_POINTS, AppDatabase, OutboxRelay,
                                        Publisher, PublishError, write_command)
from resilience_sim.live.write_path import run_crash_story
from resilience_sim.policies import Constant, RetryPolicy
from live_support import no_leaks

# Short enough for quick takeovers, long enough that a loopback call (a millisecond or two) never
# times out even on a loaded machine: a timeout would add a legitimate copy and blur the counts.
FAST = {"lease": 0.3, "timeout": 0.15, "poll_interval": 0.01}


@pytest.fixture(autouse=True)
def leak_check():
    with no_leaks():
        yield


@pytest.fixture
def directory(leak_check):
    with tempfile.TemporaryDirectory() as d:
        yield d


def drained(db: AppDatabase, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while db.pending() and time.monotonic() < deadline:
        time.sleep(0.005)
    return db.pending() == 0


def in_key_order(effects, key, keys=3):
    """Whether the effects of orders of one customer (order % keys == key) came in order."""
    mine = [order for order in effects if order % keys == key]
    return mine == sorted(mine)


def place(db, n, keys=3, start=0):
    return [db.place_order(i, customer=f"c{i % keys}", amount=i) for i in range(start, start + n)]


# --- the application's transaction ------------------------------------------------------------------
def test_a_crash_between_the_two_inserts_leaves_neither_row(directory):
    db = AppDatabase(directory)
    with pytest.raises(Crash):
        db.place_order(1, crash="between writes")
    assert db.crashed
    with pytest.raises(RuntimeError, match="crashed: open a new AppDatabase"):
        db.place_order(2)
    with AppDatabase(directory) as restarted:
        assert restarted.orders() == [] and restarted.outbox() == []
        row_id = restarted.place_order(2, customer="ann", amount=5)
        assert restarted.orders() == [2]
        [row] = restarted.outbox()
        assert row["id"] == row_id and row["key"] == "ann" and row["sent_at"] is None
        assert row["payload"] == {"order_id": 2, "customer": "ann", "amount": 5.0}


def test_a_crash_before_the_answer_keeps_both_rows_though_the_user_never_heard(directory):
    db = AppDatabase(directory)
    with pytest.raises(Crash):
        db.place_order("o-1", crash="before answer")
    with AppDatabase(directory) as restarted:
        assert restarted.orders() == ["o-1"] and restarted.pending() == 1


def test_a_failed_insert_rolls_the_whole_transaction_back(directory):
    with AppDatabase(directory) as db:
        db.place_order(1)
        with pytest.raises(ValueError, match="order_id 1 is placed already"):
            db.place_order(1)
        assert db.orders() == [1] and len(db.outbox()) == 1
        db.place_order(2)                          # the connection is usable after the rollback
        assert db.orders() == [1, 2]


def test_outbox_row_ids_grow_and_are_never_reused_so_an_id_names_one_message(directory):
    with AppDatabase(directory) as db:
        ids = place(db, 3)
        assert ids == sorted(ids) and len(set(ids)) == 3
        conn = sqlite3.connect(db.path)
        conn.execute("DELETE FROM outbox WHERE id = ?", (ids[-1],))
        conn.commit()
        conn.close()
        assert db.place_order(99) > ids[-1]


# --- the consumer --------------------------------------------------------------------------------------
def test_the_consumer_applies_a_message_once_and_answers_its_replay_200_duplicate(directory):
    with Consumer(directory) as consumer, httpx.Client() as client:
        post = lambda key, body: client.post(consumer.url + "/messages", json=body,
                                             headers={"Idempotency-Key": key} if key else {})
        assert post("7", {"order_id": 3}).json()["status"] == "applied"
        replay = post("7", {"order_id": 3})
        assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
        assert post(None, {"order_id": 3}).status_code == 400
        assert post("8", [1, 2]).status_code == 400
        assert client.post(consumer.url + "/messages", content=b"{not json", headers={"Idempotency-Key": "9"}
                           ).status_code == 400
        assert client.post(consumer.url + "/elsewhere", json={}).status_code == 404
        assert consumer.effects() == [3] and consumer.effect_messages() == [("7", {"order_id": 3})]
        assert (consumer.applied, consumer.replays) == (1, 1)


def test_a_restarted_consumer_keeps_its_port_and_what_it_committed(directory):
    consumer = Consumer(directory).start()
    port = consumer.port
    httpx.post(consumer.url + "/messages", json={"order_id": 1}, headers={"Idempotency-Key": "1"})
    consumer.restart()
    try:
        assert consumer.port == port and consumer.starts == 2
        again = httpx.post(consumer.url + "/messages", json={"order_id": 1}, headers={"Idempotency-Key": "1"})
        assert again.json()["status"] == "duplicate" and consumer.effects() == [1]
    finally:
        consumer.stop()
    assert not consumer.running and consumer.effects() == [1]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_consumer_killed_at_each_point_stops_and_its_restart_applies_each_message_once(directory, point):
    consumer = Consumer(directory, crash_at=CrashPoint(point, nth=2), restart_after=0.02)
    with consumer, AppDatabase(directory) as db:
        with OutboxRelay(db, consumer.url, **FAST):
            place(db, 6)
            assert drained(db)
        assert consumer.crashed.is_set() and (consumer.crashes, consumer.starts) == (1, 2)
        effects = consumer.effects()
        assert sorted(effects) == list(range(6)) and all(in_key_order(effects, key) for key in range(3))
        # "before commit" lost the effect with the crash (its retry applied it); "before reply" kept it,
        # and the retry was answered "duplicate"
        assert consumer.replays == (1 if point == "before reply" else 0)


def test_a_killed_consumer_without_restart_stays_down_answering_nothing(directory):
    consumer = Consumer(directory, crash_at=CrashPoint("before reply"))
    with consumer:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(consumer.url + "/messages", json={"order_id": 1}, headers={"Idempotency-Key": "1"})
        assert consumer.crashed.wait(2)
        deadline = time.monotonic() + 2
        while consumer.running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not consumer.running
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"http://127.0.0.1:{consumer.port}/messages", json={}, headers={"Idempotency-Key": "2"})
    assert consumer.effects() == [1]                           # committed before the kill


# --- the relay -----------------------------------------------------------------------------------------
def test_the_relay_publishes_each_row_once_with_the_row_id_as_message_id(directory):
    with Consumer(directory) as consumer, AppDatabase(directory) as db:
        ids = place(db, 5)
        with OutboxRelay(db.path, consumer.url, **FAST) as relay:
            assert drained(db)
        assert consumer.effect_messages() == [(str(i), {"order_id": n, "customer": f"c{n % 3}", "amount": float(n)})
                                              for n, i in enumerate(ids)]
        assert (relay.published, relay.marked, consumer.replays) == (5, 5, 0)
        assert all(row["claimed_by"] == "relay#1" and row["sent_at"] for row in db.outbox())


def test_a_crashed_relays_lease_is_taken_over_only_once_it_has_expired(directory):
    with Consumer(directory) as consumer, AppDatabase(directory) as db:
        place(db, 4)
        first = OutboxRelay(db, consumer.url, name="a", crash_at=CrashPoint("after claim"), lease=0.3,
                            timeout=0.05, poll_interval=0.01).start()
        assert first.crashed.wait(2)
        first.stop()
        held = db.outbox()
        assert {r["claimed_by"] for r in held} == {"a#1"} and consumer.effects() == []
        lease_until = max(r["lease_until"] for r in held)
        with OutboxRelay(db, consumer.url, name="b", **FAST):
            assert drained(db)
        taken = db.outbox()
        assert {r["claimed_by"] for r in taken} == {"b#1"}
        assert min(r["sent_at"] for r in taken) >= lease_until     # nobody sent before the lease ran out
        assert consumer.effects() == [0, 1, 2, 3] and consumer.replays == 0


@pytest.mark.parametrize("point", RELAY_CRASH_POINTS)
def test_a_relay_killed_at_each_point_loses_nothing_and_its_restart_resends_only_unmarked_rows(directory, point):
    with Consumer(directory) as consumer, AppDatabase(directory) as db:
        place(db, 6)
        with OutboxRelay(db, consumer.url, crash_at=CrashPoint(point, nth=2), restart_after=0.0, batch=3,
                         **FAST) as relay:
            assert drained(db)
        assert (relay.crashes, relay.starts) == (1, 2) and relay.crashed.is_set()
        effects = consumer.effects()
        assert sorted(effects) == list(range(6))               # nothing lost, once each (dedupe)
        assert all(in_key_order(effects, key) for key in range(3))
        assert consumer.replays == (1 if point == "after publish" else 0)
        assert relay.published == 6 + consumer.replays and relay.marked == 6


def test_a_crashed_relay_holds_its_leases_while_a_stopped_one_releases_them(directory):
    with AppDatabase(directory) as db:
        place(db, 3)
        down = "http://127.0.0.1:9"                              # nothing listens: every attempt fails
        relay = OutboxRelay(db, down, lease=5.0, timeout=0.05, poll_interval=0.01,
                            retry=RetryPolicy(100, Constant(0.05))).start()
        deadline = time.monotonic() + 2
        while relay.attempts < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        relay.stop()
        assert time.monotonic() - started < 2 and not relay.running
        assert [r["claimed_by"] for r in db.outbox()] == [None] * 3 and db.pending() == 3
        crashing = OutboxRelay(db, down, lease=5.0, timeout=0.05, crash_at=CrashPoint("after claim")).start()
        assert crashing.crashed.wait(2)
        crashing.stop()
        assert {r["claimed_by"] for r in db.outbox()} == {"relay#1"}


def test_two_relays_at_once_send_each_row_once_and_keep_each_keys_commit_order(directory):
    with Consumer(directory) as consumer, AppDatabase(directory) as db:
        relays = [OutboxRelay(db, consumer.url, name=name, batch=4, lease=2.0, timeout=0.5, poll_interval=0.005)
                  for name in ("a", "b")]
        with relays[0], relays[1]:
            ids = place(db, 60, keys=6)
            assert drained(db)
        assert consumer.replays == 0 and consumer.received == 60
        assert sum(r.published for r in relays) == 60
        by_key = defaultdict(list)
        for message_id, body in consumer.effect_messages():
            by_key[body["customer"]].append(int(message_id))
        assert sorted(i for key in by_key.values() for i in key) == ids
        assert all(key == sorted(key) for key in by_key.values())


def test_a_relay_refuses_a_retry_policy_another_relay_holds_and_a_second_start(directory):
    with AppDatabase(directory) as db:
        shared = RetryPolicy(3, Constant(0.01))
        OutboxRelay(db, "http://127.0.0.1:9", retry=shared)
        with pytest.raises(ValueError, match="retry"):
            OutboxRelay(db, "http://127.0.0.1:9", retry=shared)
        relay = OutboxRelay(db, "http://127.0.0.1:9", lease=0.2, timeout=0.05).start()
        try:
            with pytest.raises(RuntimeError, match="started already"):
                relay.start()
        finally:
            relay.stop()


# --- the dual writes, one command at a time ---------------------------------------------------------------
def test_commit_then_publish_loses_and_publish_then_commit_invents_at_a_crash_between_writes(directory):
    with Consumer(directory) as consumer, AppDatabase(directory, db_name="a.db") as lost_db, \
            AppDatabase(directory, db_name="b.db") as invented_db:
        publisher = Publisher(consumer.url, retry=RetryPolicy(2, Constant(0.01)), rng=random.Random(0))
        try:
            with pytest.raises(Crash):
                write_command("commit, then publish", lost_db, 1, publisher=publisher, crash="between writes")
            with pytest.raises(Crash):
                write_command("publish, then commit", invented_db, 2, publisher=publisher, crash="between writes")
        finally:
            publisher.close()
        assert lost_db.orders() == [1] and invented_db.orders() == []
        assert consumer.effects() == [2]          # order 1 committed, never sent; order 2 sent, never committed


def test_a_dual_write_whose_publish_gives_up_raises_publish_error(directory):
    with AppDatabase(directory) as db:
        publisher = Publisher("http://127.0.0.1:9", retry=RetryPolicy(2, Constant(0.01)), rng=random.Random(0))
        try:
            with pytest.raises(PublishError, match="gave up"):
                write_command("publish, then commit", db, 1, publisher=publisher)
            with pytest.raises(PublishError):
                write_command("commit, then publish", db, 2, publisher=publisher)
        finally:
            publisher.close()
        assert db.orders() == [2] and publisher.attempts == 4     # rolled back; committed and lost


# --- the stories and the checker --------------------------------------------------------------------------
def test_the_outbox_story_loses_and_duplicates_nothing_through_three_crashes(directory):
    check, details = run_crash_story(directory)
    assert check.exactly_once and check.lost == () and check.duplicated == {} and check.unexpected == ()
    assert (check.attempted, check.committed) == (50, 49)         # the app's crash between inserts: neither row
    assert details["app_crashes"] == details["relay"]["crashes"] == details["consumer"]["crashes"] == 1
    assert details["seconds"] < 5


def test_an_app_killed_before_answering_leaves_a_write_the_checker_calls_recovered(directory):
    check, _ = run_crash_story(directory, app_crash=CrashPoint(APP_CRASH_POINTS[1], nth=5))
    assert check.exactly_once and check.recovered == (4,) and (check.acknowledged, check.committed) == (49, 50)


def test_the_commit_then_publish_story_loses_the_crashed_order(directory):
    check, details = run_crash_story(directory, design="commit, then publish")
    assert 9 in check.lost and not check.valid and details["relay"] is None


def test_the_publish_then_commit_story_invents_the_crashed_order(directory):
    check, _ = run_crash_story(directory, design="publish, then commit")
    assert 9 in check.unexpected and not check.valid


def test_the_outbox_story_with_a_consumer_without_dedupe_duplicates_effects(directory):
    check, details = run_crash_story(directory, dedupe="none")
    assert check.valid and check.duplicated and details["consumer"]["replays"] == 0


def test_a_story_that_cannot_drain_says_so_within_its_time_limit(directory):
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"not drained within time_limit=0.5 s: \d+ of \d+ rows unsent \(relay"):
        run_crash_story(directory, restart_after=None, time_limit=0.5)
    assert time.monotonic() - started < 3


# --- names and refusals --------------------------------------------------------------------------------
def test_the_live_names_are_the_simulated_ones():
    from resilience_sim.sim import consumer as sim_consumer, outbox as sim_outbox
    assert DESIGNS == sim_outbox.DESIGNS
    assert set(DEDUPES) < set(sim_consumer.DEDUPES)
    assert (EFFECTS, PROCESSED) == (sim_consumer.EFFECTS, sim_consumer.PROCESSED)


def test_bad_parameters_are_refused_by_name(directory):
    with AppDatabase(directory) as db:
        url = "http://127.0.0.1:9"
        for kwargs, name in [({"batch": 0}, "batch"), ({"lease": -1}, "lease"), ({"poll_interval": 0}, "poll_interval"),
                             ({"timeout": 1.0, "lease": 1.0}, "timeout"), ({"timeout": 0}, "timeout"),
                             ({"retry": "x"}, "retry"), ({"crash_at": CrashPoint("sometime")}, "crash_at"),
                             ({"crash_at": "after claim"}, "crash_at"), ({"restart_after": -1}, "restart_after"),
                             ({"name": ""}, "name"), ({"seed": -1}, "seed")]:
            with pytest.raises(ValueError, match=name):
                OutboxRelay(db, url, **kwargs)
        with pytest.raises(ValueError, match="db_path"):
            OutboxRelay(directory + "/missing.db", url)
        with pytest.raises(ValueError, match="consumer_url"):
            OutboxRelay(db, "ftp://127.0.0.1:9")
        for call, name in [(lambda: write_command("bogus", db, 1), "design"),
                           (lambda: write_command("outbox", db, 1, crash="sometime"), "crash"),
                           (lambda: write_command("commit, then publish", db, 1), "publisher"),
                           (lambda: db.place_order(True), "order_id"), (lambda: db.place_order(""), "order_id"),
                           (lambda: db.place_order(1, customer=""), "customer"),
                           (lambda: db.place_order(1, amount=float("nan")), "amount")]:
            with pytest.raises(ValueError, match=name):
                call()
        assert db.orders() == []
    for call, name in [(lambda: Consumer(directory, dedupe="separate"), "dedupe"),
                       (lambda: Consumer(directory + "/missing"), "directory"),
                       (lambda: Consumer(directory, port=70000), "port"),
                       (lambda: Consumer(directory, crash_at=CrashPoint("after reply")), "crash_at"),
                       (lambda: CrashPoint("after claim", nth=0), "nth"),
                       (lambda: AppDatabase(directory + "/missing"), "directory"),
                       (lambda: run_crash_story(directory, orders=0), "orders"),
                       (lambda: run_crash_story(directory, time_limit=0), "time_limit"),
                       (lambda: run_crash_story(directory, relay_crash=CrashPoint("before reply")), "relay_crash"),
                       (lambda: run_crash_story(directory, app_crash=CrashPoint("after publish")), "app_crash"),
                       (lambda: run_crash_story(directory, app_crash="between writes"), "app_crash"),
                       (lambda: run_crash_story(directory, consumer_crash=CrashPoint("after claim")),
                        "consumer_crash")]:
        with pytest.raises(ValueError, match=name):
            call()
