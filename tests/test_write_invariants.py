"""Part IV invariants under random fault schedules (hypothesis), checked Jepsen-style after quiescence.

Each invariant is tried on 1,000 generated schedules (derandomized: the same ones on every run):
crashes of the application, the relays and the consumer at any instant, outages of the application's
database, the broker and the consumer's database. ``python tests/test_write_invariants.py`` prints
how many schedules were tried and how many violations each design showed.
"""
import time

import pytest
from hypothesis import HealthCheck, find, given, settings, strategies as st

from resilience_sim.sim.write_path import Schedule, write_path

SCHEDULES = 1000
RUN = settings(max_examples=SCHEDULES, deadline=None, derandomize=True, database=None,
               suppress_health_check=[HealthCheck.too_slow])

crash_times = st.lists(st.floats(0.0, 4.0, allow_nan=False), max_size=3)
window = st.tuples(st.floats(0.0, 4.0), st.floats(0.05, 3.0)).map(lambda w: (w[0], w[0] + w[1]))
windows = st.lists(window, max_size=2)


@st.composite
def schedules(draw, relays=1):
    return Schedule(app=draw(crash_times), relays=tuple(draw(crash_times) for _ in range(relays)),
                    consumer=draw(crash_times), db=draw(windows), broker=draw(windows),
                    consumer_db=draw(windows))


@RUN
@given(schedules(relays=2))
def test_outbox_with_an_idempotent_consumer_takes_every_write_exactly_once(schedule):
    run = write_path("outbox", schedule)
    assert run.check.exactly_once, (schedule, run.check)
    assert run.silently_dropped == 0 and not run.queue.dead_letters


@RUN
@given(schedules())
def test_outbox_without_dedupe_loses_nothing_but_may_duplicate(schedule):
    run = write_path("outbox", schedule, dedupe="none")
    assert run.check.valid, (schedule, run.check)
    assert run.silently_dropped == 0


def test_outbox_without_dedupe_does_duplicate():
    schedule = find(schedules(), lambda s: bool(write_path("outbox", s, dedupe="none").check.duplicated),
                    settings=settings(max_examples=SCHEDULES, deadline=None, derandomize=True, database=None))
    assert write_path("outbox", schedule, dedupe="none").check.duplicated


@pytest.mark.parametrize("design, kind", [("commit, then publish", "lost"), ("publish, then commit", "unexpected")])
def test_the_dual_write_has_a_small_counterexample(design, kind):
    schedule = find(schedules(), lambda s: bool(getattr(write_path(design, s).check, kind)),
                    settings=settings(max_examples=SCHEDULES, deadline=None, derandomize=True, database=None))
    check = write_path(design, schedule).check
    assert getattr(check, kind)
    faults = len(schedule.app) + len(schedule.consumer) + sum(map(len, schedule.relays)) + \
        len(schedule.db) + len(schedule.broker) + len(schedule.consumer_db)
    assert faults == 1, schedule         # shrunk to one fault the notebook can show


@RUN
@given(schedules())
def test_dedupe_outside_the_effects_transaction_is_not_enough(schedule):
    run = write_path("outbox", schedule, dedupe="separate")
    assert run.check.valid, (schedule, run.check)


def test_dedupe_outside_the_effects_transaction_duplicates_somewhere():
    schedule = find(schedules(), lambda s: bool(write_path("outbox", s, dedupe="separate").check.duplicated),
                    settings=settings(max_examples=SCHEDULES, deadline=None, derandomize=True, database=None))
    assert write_path("outbox", schedule, dedupe="separate").check.duplicated


def test_fresh_message_ids_defeat_the_idempotent_consumer():
    schedule = find(schedules(), lambda s: bool(write_path("outbox", s, relay_options={"message_ids": "fresh"})
                                                .check.duplicated),
                    settings=settings(max_examples=SCHEDULES, deadline=None, derandomize=True, database=None))
    assert write_path("outbox", schedule, relay_options={"message_ids": "fresh"}).check.duplicated


def test_marking_sent_before_publishing_loses_writes():
    schedule = find(schedules(), lambda s: bool(write_path("outbox", s, relay_options={"mark": "before"}).check.lost),
                    settings=settings(max_examples=SCHEDULES, deadline=None, derandomize=True, database=None))
    assert write_path("outbox", schedule, relay_options={"mark": "before"}).check.lost


def test_processing_longer_than_the_visibility_timeout_redelivers_and_dead_letters():
    slow = write_path("outbox", dedupe="none", commands=3, work=2.0, visibility_timeout=1.0, max_receives=3)
    assert len(slow.queue.dead_letters) == 3 and slow.check.duplicated
    assert slow.silently_dropped == 0
    trap = write_path("outbox", dedupe="none", commands=3, work=2.0, visibility_timeout=1.0, max_receives=3,
                      dead_letter=False)
    assert trap.queue.dropped == 3 and trap.silently_dropped == 3


def census() -> None:
    """Schedules tried and violations found per design (``python tests/test_write_invariants.py``)."""
    import random
    rng = random.Random(1)
    designs = {"outbox + idempotent consumer": dict(design="outbox"),
               "outbox, no dedupe": dict(design="outbox", dedupe="none"),
               "outbox, dedupe in a separate transaction": dict(design="outbox", dedupe="separate"),
               "commit, then publish": dict(design="commit, then publish"),
               "publish, then commit": dict(design="publish, then commit")}
    t0 = time.perf_counter()
    for name, options in designs.items():
        counts = dict(lost=0, unexpected=0, duplicated=0)
        for _ in range(SCHEDULES):
            schedule = _random_schedule(rng)
            check = write_path(schedule=schedule, **options).check
            for kind in counts:
                counts[kind] += bool(getattr(check, kind))
        print(f"{name}: {SCHEDULES} schedules; runs with lost {counts['lost']}, unexpected {counts['unexpected']}, "
              f"duplicated {counts['duplicated']}")
    print(f"{time.perf_counter() - t0:.1f} s")


def _random_schedule(rng):
    crashes = lambda: [rng.uniform(0, 4) for _ in range(rng.randint(0, 3))]   # noqa: E731
    wins = lambda: [(s, s + rng.uniform(0.05, 3)) for s in (rng.uniform(0, 4) for _ in range(rng.randint(0, 2)))]  # noqa: E731
    return Schedule(app=crashes(), relays=(crashes(),), consumer=crashes(), db=wins(), broker=wins(),
                    consumer_db=wins())


if __name__ == "__main__":
    census()
