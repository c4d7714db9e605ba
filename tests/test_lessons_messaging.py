"""Notebook 14 (messages instead of HTTP): its scenarios are seeded, its key claims hold, its dashboard
reacts, and bad input is refused with a message naming the parameter."""
import itertools
import math

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from resilience_sim import Outage, Service, World
from resilience_sim.lessons import all_dashboards
from resilience_sim.lessons import messaging as ms
from resilience_sim.policies import IdempotencyKeys, MessageQueue
from resilience_sim.sim.broker import Broker
from resilience_sim.sim.database import Database
from resilience_sim.sim.service import Request, ServiceError

matplotlib.use("Agg")
SEED = 14
SHORT = dict(outage=(30.0, 150.0), duration=400.0)      # a small story for the quick checks


@pytest.fixture(scope="module")
def story():
    """The notebook's sections 1 and 2: over HTTP and with a message."""
    return ms.story_run(SEED, design="http"), ms.story_run(SEED)


# --- formulas --------------------------------------------------------------------------------------------
def test_service_rate_counts_the_work_and_the_calls_of_each_message():
    assert ms.OVERHEAD == pytest.approx(0.0075)
    assert ms.service_rate(1) == pytest.approx(1 / 1.0075)
    assert ms.service_rate(4, work=0.5) == pytest.approx(4 / 0.5075)


def test_catch_up_is_backlog_over_the_spare_rate_and_infinite_without_one():
    assert ms.catch_up_time(150, 1.0, 0.5) == 300.0 and ms.catch_up_time(0, 1.0, 0.5) == 0.0
    assert math.isinf(ms.catch_up_time(10, 0.5, 0.5)) and math.isinf(ms.catch_up_sd(10, 0.4, 0.5))
    assert math.isclose(ms.catch_up_sd(1, 1.0, 0.5), math.sqrt(1.5 / 0.125))
    assert math.isclose(ms.catch_up_sd(100, 1.0, 0.5), 10 * ms.catch_up_sd(1, 1.0, 0.5))


# --- sections 1 and 2: the story ---------------------------------------------------------------------------
def test_story_run_is_seeded():
    a, b, c = (ms.story_run(s, **SHORT) for s in (7, 7, 8))
    assert np.array_equal(a.results.start, b.results.start) and np.array_equal(a.depth, b.depth)
    assert a.shipped == b.shipped and not np.array_equal(a.results.start, c.results.start)


def test_over_http_the_outage_of_shipping_fails_every_checkout(story):
    http, _ = story
    assert http.availability(http.outage) == 0.0 and http.failed() == 160
    assert http.results.only("checkout").reasons() == {"down": 160}
    assert round(http.availability(), 3) == 0.748
    with pytest.raises(ValueError, match="design must be 'message'"):
        http.backlog()


def test_with_a_message_checkout_stays_up_and_every_order_ships_once(story):
    _, message = story
    assert message.availability() == 1.0 and message.unshipped() == 0
    assert message.results.only("checkout").latency.max() == pytest.approx(0.0075)
    c = message.counts()
    assert c["sent"] == c["acked"] == message.orders() == len(message.shipped)
    assert c["dead letters"] == c["dropped"] == c["waiting"] == 0 and c["redelivered"] == 148
    q = message.queue
    assert q.sent == q.acked + len(q.dead_letters) + q.dropped + q.waiting


def test_the_queue_catches_up_near_backlog_over_the_spare_rate(story):
    _, message = story
    assert message.backlog() == 164 and message.catch_up() == 332.0
    assert round(message.predicted_catch_up()) == 333 and round(message.catch_up_sd()) == 45
    assert abs(message.catch_up() - message.predicted_catch_up()) < 2 * message.catch_up_sd()
    assert message.depth_at(0.0) == 0 and message.depth.max() >= message.backlog()
    delays = message.ship_delays()
    assert round(delays.max()) == 467 and delays.max() < message.outage_length + message.catch_up()


def test_more_workers_catch_up_sooner_as_predicted():
    two = ms.story_run(SEED, workers=2)
    assert two.catch_up() == 105.0 and abs(two.catch_up() - two.predicted_catch_up()) < 2 * two.catch_up_sd()
    assert two.predicted_catch_up() == pytest.approx(ms.catch_up_time(two.backlog(), ms.service_rate(2), ms.RATE))


def test_faults_table_both_faults_fail_http_and_lose_nothing_with_a_message():
    table = ms.faults_table(SEED)
    d = table.data
    assert d["database", "http"]["failed"] == d["workers", "http"]["failed"] == 160
    for fault in ms.FAULTS:
        assert d[fault, "message"]["answered"] == 1.0 and d[fault, "message"]["unshipped"] == 0
    assert (d["database", "message"]["redelivered"], d["workers", "message"]["redelivered"]) == (148, 1)
    assert round(d["workers", "message"]["longest_wait"]) == 313
    assert "workers crashed" in str(table) and "backlog" in table._repr_html_()


def test_a_low_max_receive_count_dead_letters_healthy_orders_during_an_outage(story):
    strict = ms.story_run(SEED, max_receives=3)
    assert strict.counts()["dead letters"] == strict.unshipped() == 19
    assert story[1].counts()["dead letters"] == 0


def test_a_queue_without_dead_letters_drops_after_the_limit():
    run = ms.story_run(SEED, max_receives=2, dead_letter=False, **SHORT)
    q = run.queue
    assert q.dropped > 0 and not q.dead_letters and run.unshipped() == q.dropped


# --- section 3: one message ----------------------------------------------------------------------------------
def test_a_crash_mid_message_redelivers_after_the_visibility_timeout():
    run = ms.one_message(work=2.0, crashes=[1.0], dedupe="transaction", until=120)
    first, again = run.times("received")
    assert ms.VISIBILITY <= again - first < ms.VISIBILITY + ms.POLL
    assert run.effects == 1 and run.queue.acked == 1 and run.queue.redelivered == 1


@pytest.mark.parametrize("limit", [1, 3, 5, 7])
def test_work_longer_than_the_timeout_delivers_exactly_max_receives_times_then_dead_letters(limit):
    run = ms.one_message(work=45.0, visibility_timeout=30, max_receives=limit, until=45.0 * (limit + 1) + 60)
    assert run.deliveries == run.effects == len(run.times("ack refused")) == limit
    assert run.queue.acked == 0 and [m for m, _, _ in run.queue.dead_letters] == ["order-1"]
    assert run.dlq_alarm_at() == pytest.approx(math.ceil(45.0 * limit + 0.01), abs=1.0)


def test_a_longer_timeout_or_a_heartbeat_delivers_once_and_dedupe_alone_does_not():
    longer = ms.one_message(work=45.0, visibility_timeout=60, max_receives=5)
    beat = ms.one_message(work=45.0, visibility_timeout=30, max_receives=5, heartbeat=10.0)
    dedup = ms.one_message(work=45.0, visibility_timeout=30, max_receives=5, dedupe="transaction")
    assert (longer.deliveries, longer.effects, longer.queue.acked) == (1, 1, 1)
    assert (beat.deliveries, beat.effects, beat.queue.acked, beat.consumer.extensions) == (1, 1, 1, 4)
    assert dedup.effects == 1 and dedup.deliveries == 5 and dedup.consumer.duplicates_skipped == 4
    assert len(dedup.queue.dead_letters) == 1


def test_a_heartbeat_slower_than_the_timeout_is_refused_and_counted():
    late = ms.one_message(work=45.0, visibility_timeout=30, max_receives=5, heartbeat=40.0)
    assert late.consumer.late_heartbeats == 5 and late.consumer.extensions == 0 and late.deliveries == 5


def test_a_crashed_consumer_sends_no_heartbeat():
    run = ms.one_message(work=45.0, visibility_timeout=30, heartbeat=10.0, crashes=[25.0], until=200)
    first, again = run.times("received")[:2]
    assert first < 1 and 50.0 <= again < 50.0 + ms.POLL + 0.1      # its last beat, at 20 s, kept it hidden until 50 s
    assert run.effects == 1 and run.queue.acked == 1


def test_the_rabbitmq_trap_drops_the_message_and_no_dlq_alarm_fires():
    sqs = ms.one_message(work=45.0, visibility_timeout=30, max_receives=20)
    rabbit = ms.one_message(work=45.0, visibility_timeout=30, max_receives=20, dead_letter=False)
    assert sqs.deliveries == rabbit.deliveries == 20 and sqs.dlq_alarm_at() == 901.0
    assert rabbit.queue.dropped == 1 and not rabbit.queue.dead_letters and math.isnan(rabbit.dlq_alarm_at())


# --- section 3: duplicates ------------------------------------------------------------------------------------
def test_an_aimed_crash_duplicates_without_dedupe_and_with_a_separate_dedupe_only():
    at = ms.worst_instant()
    assert at == pytest.approx(0.056)
    runs = {d: ms.crash_run(d, [at]) for d in ms.DEDUPES}
    assert runs["none"].duplicated == runs["separate"].duplicated == {"order-1": 2}
    assert runs["none"].extra == 1 and runs["transaction"].effects == 20 and not runs["transaction"].duplicated
    assert all(not ms.crash_run(d).duplicated for d in ms.DEDUPES)          # no crash, no copy
    assert all(run.waiting == 0 for run in runs.values())                   # every message acknowledged


def test_the_random_search_finds_and_shrinks_duplicates_but_none_in_the_transaction():
    search = {d: ms.find_counterexample(d, tries=150, seed=SEED) for d in ms.DEDUPES}
    assert (search["none"].found, search["separate"].found, search["transaction"].found) == (9, 9, 0)
    for d in ("none", "separate"):
        assert len(search[d].shrunk) == 1 and set(search[d].shrunk) <= set(search[d].first)
        assert ms.crash_run(d, search[d].shrunk).duplicated
    assert search["transaction"].first is None and search["transaction"].shrunk is None


def test_the_idempotent_consumer_never_duplicates_under_many_crashes():
    rng = np.random.default_rng(SEED)
    for _ in range(40):
        crashes = sorted(rng.uniform(0.0, 1.5, size=6).round(4))
        run = ms.crash_run("transaction", crashes)
        assert not run.duplicated and run.effects == ms.CRASH_MESSAGES and run.waiting == 0, crashes


# --- section 4: idempotency keys ---------------------------------------------------------------------------------
def test_without_keys_retried_posts_place_and_ship_orders_four_times():
    run = ms.order_run(SEED, keys=False)
    per_user = run.orders_per_user()
    assert (run.users, run.placed, run.shipments, run.duplicates()) == (290, 362, 362, 72)
    assert sorted(set(per_user.values())) == [1, 4] and run.users_with_duplicates() == 24
    twice = {k for k, n in per_user.items() if n > 1}
    assert len(run.failed_users()) == 21 and run.failed_users() <= twice


def test_with_keys_each_user_gets_one_order_and_an_answer():
    run = ms.order_run(SEED, keys=True)
    assert run.placed == run.shipments == run.users == 290 and run.duplicates() == 0
    assert run.availability() == 1.0 and run.availability(run.slow) == 1.0 and not run.failed_users()
    assert (run.keys.new, run.keys.in_flight_refusals, run.keys.replayed, run.keys.conflicts) == (290, 24, 24, 0)


def test_keys_forgotten_too_soon_let_duplicates_back():
    run = ms.order_run(SEED, keys=True, retention=2.0)
    assert run.duplicates() > 0 and run.keys.replayed == 0


def _call(world, svc, route, key, at, out):
    def go():
        yield world.env.timeout(at)
        try:
            out.append((route, (yield from svc.call(Request(world.env.now, route, key)))))
        except ServiceError as err:
            out.append((route, err.reason))
    world.env.process(go())


def test_the_handler_answers_replay_409_and_422_from_the_keys():
    world = World(SEED)
    db = Database(world, "orders_db", latency=1.0)
    broker = Broker(world, MessageQueue())
    keys = IdempotencyKeys()
    handler = ms.place_order_handler(db, broker, keys, itertools.count(1), params=lambda req: req.route[0])
    svc = Service(world, "checkout", capacity=10, handler=handler)
    out = []
    for route, at in (("a-first", 0.0), ("a-while-running", 0.5), ("a-after", 2.0), ("b-other-cart", 3.0)):
        _call(world, svc, route, "key-1", at, out)
    world.run(10.0)
    assert dict(out) == {"a-first": 1, "a-while-running": "conflict", "a-after": 1, "b-other-cart": "bad request"}
    assert len(db.rows("orders")) == 1 and broker.queue.sent == 1
    assert (keys.new, keys.in_flight_refusals, keys.replayed, keys.conflicts) == (1, 1, 1, 1)


def test_the_handler_abandons_the_key_when_the_order_did_not_commit():
    world = World(SEED)
    db = Database(world, "orders_db", latency=1.0)
    Outage(db.service, [(0.0, 1.5)])
    keys = IdempotencyKeys()
    svc = Service(world, "checkout", capacity=10,
                  handler=ms.place_order_handler(db, Broker(world, MessageQueue()), keys, itertools.count(1)))
    out = []
    _call(world, svc, "first", "key-1", 0.0, out)
    _call(world, svc, "retry", "key-1", 2.0, out)
    world.run(10.0)
    assert dict(out) == {"first": "down", "retry": 2} and len(keys) == 1 and keys.new == 2     # id 1 never committed
    assert [row["key"] for _, row in db.rows("orders")] == ["key-1"]


# --- pictures ----------------------------------------------------------------------------------------------------
def test_draw_functions_draw_lines_and_shading(story):
    http, message = story
    ax = Figure().subplots()
    ms.draw_availability(ax, [http, message])
    assert len(ax.lines) == 2 and len(ax.patches) == 1 and ax.get_ylabel() == "checkout answered (%)"
    ax = Figure().subplots()
    ms.draw_depth(ax, message)
    assert len(ax.lines) == 2 and len(ax.patches) == 1            # depth + predicted catch-up; the outage
    ax = Figure().subplots()
    slow = ms.one_message(work=45.0, visibility_timeout=30, max_receives=2, until=200)
    ms.draw_timeline(ax, slow, crashes=[10.0], title="t")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["received", "applied", "ack refused"] and ax.get_title() == "t"
    assert len(ax.collections) == 2                                 # one visibility window per receive


# --- the dashboard -------------------------------------------------------------------------------------------------
def test_dashboard_is_registered():
    assert "14_messages/outage" in all_dashboards()


def _pair(dash):
    (_, pair), *_ = dash.results.values()
    return pair


def test_outage_dashboard_reacts_to_every_slider():
    dash = all_dashboards()["14_messages/outage"]()
    http, message = _pair(dash)
    assert http.design == "http" and message.design == "message"
    assert http.availability() < 1.0 == message.availability()
    assert message.outage == (ms.DASH_START, ms.DASH_START + 300) and message.unshipped() == 0
    assert "caught up" in dash.text.value and "0 orders still queued at the end, 0 dead letters" in dash.text.value
    picture = dash.picture.value

    dash.set(outage_s=600)                                      # not caught up by the end of the run
    assert dash.picture.value != picture and "not caught up" in dash.text.value
    http, message = _pair(dash)
    assert http.availability() < 0.2 and message.unshipped() > 100
    assert f"{message.unshipped()} orders still queued at the end, 0 dead letters" in dash.text.value

    dash.set(outage_s=300, workers=4, visibility_s=5)           # healthy orders dead-lettered
    _, message = _pair(dash)
    assert message.workers == 4 and message.counts()["dead letters"] > 10
    assert message.queue.visibility_timeout == 5.0

    dash.set(workers=1, visibility_s=300)                       # hidden messages hold the catch-up back
    _, message = _pair(dash)
    assert message.catch_up() >= 290 and message.counts()["dead letters"] == 0
    dash.set(visibility_s=5)
    _, message = _pair(dash)
    assert message.counts()["duplicates skipped"] > 0 and "Could not run" not in dash.text.value


def test_dashboard_runs_are_shared_by_the_panels_and_cached_by_parameters():
    dash = all_dashboards()["14_messages/outage"]()
    pairs = [pair for _, pair in dash.results.values()]
    assert all(p[0] is pairs[0][0] and p[1] is pairs[0][1] for p in pairs)     # three panels, one pair of runs
    dash.rerun()
    assert all(a is b for a, b in zip(_pair(dash), pairs[0]))
    http = pairs[0][0]
    dash.set(workers=3, visibility_s=60)                       # the HTTP run depends on the outage only
    assert _pair(dash)[0] is http and _pair(dash)[1] is not pairs[0][1]


# --- bad input ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, word", [
    (dict(design="grpc"), "design"), (dict(fault="network"), "fault"), (dict(rate=0), "rate"),
    (dict(workers=0), "workers"), (dict(outage=(200, 100)), "outage"), (dict(outage=(100, 5000)), "outage"),
    (dict(duration=0), "duration"), (dict(work=0), "work"), (dict(tail=-1), "tail"),
    (dict(visibility_timeout=-1), "visibility_timeout"), (dict(visibility_timeout=50_000), "visibility_timeout"),
    (dict(max_receives=0), "max_receives"), (dict(dead_letter="no"), "dead_letter"),
    (dict(probe_every=0), "probe_every"), (dict(poll=0), "poll"),
    (dict(design="http", max_receives=0), "max_receives"),
])
def test_story_run_names_the_bad_parameter(kwargs, word):
    with pytest.raises((ValueError, TypeError), match=word):
        ms.story_run(SEED, **kwargs)


@pytest.mark.parametrize("call, word", [
    (lambda: ms.catch_up_time(-1, 1, 0.5), "backlog"), (lambda: ms.catch_up_time(1, 0, 0.5), "service"),
    (lambda: ms.catch_up_time(1, 1, -0.5), "arrivals"), (lambda: ms.service_rate(0), "workers"),
    (lambda: ms.service_rate(1, work=0), "work"),
    (lambda: ms.one_message(work=0), "work"), (lambda: ms.one_message(work=1, until=0), "until"),
    (lambda: ms.one_message(work=1, heartbeat=0), "heartbeat"),
    (lambda: ms.one_message(work=1, dedupe="maybe"), "dedupe"),
    (lambda: ms.one_message(work=1, crashes=5), "crashes"),
    (lambda: ms.one_message(work=1, max_receives=0), "max_receives"),
    (lambda: ms.crash_run("maybe"), "dedupe"), (lambda: ms.crash_run("none", 5), "crashes"),
    (lambda: ms.crash_run("none", [-1]), "crashes"), (lambda: ms.crash_run("none", messages=0), "messages"),
    (lambda: ms.find_counterexample("none", tries=0), "tries"), (lambda: ms.find_counterexample("x"), "dedupe"),
    (lambda: ms.find_counterexample("none", crashes=0), "crashes"),
    (lambda: ms.order_run(SEED, keys="yes"), "keys"), (lambda: ms.order_run(SEED, keys=True, slow=(5, 1)), "slow"),
    (lambda: ms.order_run(SEED, keys=True, extra=-1), "extra"), (lambda: ms.order_run(SEED, keys=True, rate=0), "rate"),
    (lambda: ms.order_run(SEED, keys=True, retention=0), "retention"),
    (lambda: ms.place_order_handler(None, None, "keys", itertools.count()), "keys"),
])
def test_helpers_name_the_bad_parameter(call, word):
    with pytest.raises((ValueError, TypeError), match=word):
        call()


def test_windows_outside_the_run_are_refused(story):
    http, _ = story
    with pytest.raises(ValueError, match="window"):
        http.availability((5000.0, 6000.0))


def test_duplicate_window_is_2_5_ms_of_each_57_5_ms_message():
    assert ms.duplicate_window() == (0.0025, 0.0575)
