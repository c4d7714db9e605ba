"""EventLog: bounded, counts exact, reads like a list, callback once per entry in order, bad settings refused."""
import copy
import pickle

import numpy as np
import pytest

from resilience_sim.core.eventlog import DEFAULT_LIMIT, EventLog, policy_log


def filled(n, limit=DEFAULT_LIMIT, **kw):
    log = EventLog(limit, **kw)
    for i in range(n):
        log.append((float(i), "even" if i % 2 == 0 else "odd"))
    return log


def test_it_keeps_the_newest_limit_entries_and_counts_them_all():
    log = filled(25, 10, key=lambda e: e[1])
    assert len(log) == 10 and log.limit == 10
    assert log[0] == (15.0, "odd") and log[-1] == (24.0, "even")
    assert log.total == 25 and log.dropped == 15 and log.total == len(log) + log.dropped
    assert log.counts == {"even": 13, "odd": 12}                 # over all 25, not the 10 kept


def test_the_default_limit_is_ten_thousand_and_none_keeps_everything():
    assert DEFAULT_LIMIT == 10_000 and EventLog().limit == DEFAULT_LIMIT
    assert len(filled(DEFAULT_LIMIT + 1)) == DEFAULT_LIMIT
    every = filled(DEFAULT_LIMIT + 1, None)
    assert len(every) == DEFAULT_LIMIT + 1 and every.dropped == 0 and every.limit is None


def test_a_limit_of_zero_keeps_nothing_but_still_counts_and_calls_back():
    seen = []
    log = filled(5, 0, on_event=seen.append, key=lambda e: e[1])
    assert len(log) == 0 and list(log) == [] and not log
    assert log.total == log.dropped == 5 and log.counts["even"] == 3 and len(seen) == 5


def test_it_reads_like_the_list_it_replaced():
    log = filled(4)
    as_list = [(0.0, "even"), (1.0, "odd"), (2.0, "even"), (3.0, "odd")]
    assert log == as_list and as_list == log and log == tuple(as_list) and tuple(log) == tuple(as_list)
    assert log != as_list[:3] and log != [] and log != "not a list"
    assert list(log) == as_list and list(reversed(log)) == as_list[::-1]
    assert log[1] == as_list[1] and log[-1] == as_list[-1] and log[1:3] == as_list[1:3]
    assert log[::-1] == as_list[::-1] and isinstance(log[1:], list)
    assert (2.0, "even") in log and (9.0, "odd") not in log
    assert [t for t, why in log if why == "odd"] == [1.0, 3.0]
    assert log.count((1.0, "odd")) == 1 and log.index((2.0, "even")) == 2
    assert bool(log) and not EventLog()
    assert EventLog() == [] and filled(4) == log
    with pytest.raises(IndexError):
        log[4]
    with pytest.raises(TypeError):
        hash(log)


def test_numpy_and_copies_read_it_too():
    log = EventLog()
    for t in (0.5, 1.5, 2.5):
        log.append(t)
    assert np.array_equal(np.asarray(log) * 2, [1.0, 3.0, 5.0])
    again = pickle.loads(pickle.dumps(filled(30, 10, key=len)))
    assert again == filled(30, 10) and again.total == 30 and again.limit == 10 and again.counts == {2: 30}
    deep = copy.deepcopy(log)
    deep.append(3.5)
    assert len(log) == 3 and len(deep) == 4


def test_the_callback_gets_every_entry_once_in_order_after_it_is_stored():
    seen = []
    log = EventLog(3)

    def export(entry):
        assert log[-1] == entry and log.total == len(seen) + 1     # stored and counted first
        seen.append(entry)

    log.on_event = export
    for i in range(100):
        log.append(i)
    assert seen == list(range(100)) and list(log) == [97, 98, 99]


def test_a_callback_that_raises_is_not_swallowed_and_the_entry_stays():
    def broken(entry):
        raise RuntimeError("exporter down")

    log = EventLog(on_event=broken)
    with pytest.raises(RuntimeError, match="exporter down"):
        log.append(1)
    assert list(log) == [1] and log.total == 1


def test_policy_log_passes_the_kind_to_the_callback():
    seen = []
    log = policy_log("trips", 2, lambda kind, entry: seen.append((kind, entry)))
    log.append((1.0, "failure rate"))
    assert seen == [("trips", (1.0, "failure rate"))] and log.limit == 2
    assert policy_log("trips").limit == DEFAULT_LIMIT and policy_log("trips", None).limit is None


def test_repr_shows_the_newest_entries_and_the_counts():
    text = repr(filled(25, 10))
    assert "(24.0, 'even')" in text and "limit=10" in text and "total=25" in text and "dropped=15" in text


@pytest.mark.parametrize("make, words", [
    (lambda: EventLog(-1), ["limit", ">= 0", "None", "-1"]),
    (lambda: EventLog(2.5), ["limit", "whole number", "2.5"]),
    (lambda: EventLog("10"), ["limit", "whole number"]),
    (lambda: EventLog(True), ["limit", "whole number"]),
    (lambda: EventLog(on_event=42), ["on_event", "function", "42"]),
    (lambda: EventLog(key="why"), ["key", "function"]),
    (lambda: policy_log("trips", -1), ["log_limit", ">= 0", "None"]),
    (lambda: policy_log("trips", on_event=[]), ["on_event", "(kind, entry)"]),
])
def test_bad_settings_are_refused_naming_the_parameter(make, words):
    with pytest.raises(ValueError) as e:
        make()
    for w in words:
        assert w in str(e.value)
