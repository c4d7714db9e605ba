"""Lab 05's checks accept the reference solution and reject each typical mistake with a message that
names it. The reference relay and consumer come from the solution notebook itself (its code cells run
here in order), so the notebook stays the single source of truth. Each mistake is written the way a
learner would write it, switched on by a keyword."""
from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest
from lab_support import fails, run_child, solution_namespace

from resilience_sim import ServiceError
from resilience_sim.labs import outbox as check

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ref() -> dict:
    """The namespace left by running every code cell of the solution notebook."""
    return solution_namespace("05_outbox_relay.ipynb")


# --- the reference solution passes every check ---------------------------------------------------
def test_the_solution_passes_every_check(ref, capsys):
    check.claim(ref["Relay"])
    check.send(ref["Relay"])
    check.handle(ref["handle"])
    check.exactly_once(ref["Relay"], ref["handle"])
    out = capsys.readouterr().out
    assert out.count("✔ ") == 4 and out.count("\n") == 4, out


def test_the_solutions_demo_numbers(ref):
    ids = [message for _, _, message in ref["story"]["published"]]
    assert ids == [7, 7] and ref["story"]["effects"] == 1 and ref["story"]["skipped"] == 1
    assert ref["yours"] == {"runs": 40, "lost": 0, "duplicated": 0, "exactly_once": 40}
    assert 1 <= ref["plain"]["duplicated"] <= 6 and ref["plain"]["lost"] == 0


def test_the_solution_holds_on_more_generated_schedules(ref):
    check.exactly_once(ref["Relay"], ref["handle"], runs=300, seed=11)


# --- a relay with one deliberate mistake switched on -----------------------------------------------
RELAY_MISTAKES = {"sort_by_id", "unsorted", "swallow_mark", 
    # claim
    "no_reclaim", "claims_leased", "strict_lease", "no_where", "ignore_batch", "ignore_lease", "lease_is_duration",
    "returns_old_rows", "returns_ids", "claim_returns_none", "claim_not_generator", "claims_sent", "shared_state",
    "keeps_claimed", "no_defaults", "newest_first", "claim_spins", "class_config",
    # send
    "mark_before", "fresh_id", "fresh_id_on_retry", "give_up_mark", "give_up_early", "no_wait", "ignore_backoff",
    "backoff_off_by_one", "backoff_from_zero", "past_lease", "strict_until", "no_mark", "send_returns_none",
    "whole_row_body", "real_sleep", "mark_all", "returns_false_when_sent"}


def relay_class(**mistakes):
    """The solution's relay, rewritten here so that each keyword switches on one typical mistake."""
    unknown = set(mistakes) - RELAY_MISTAKES
    assert not unknown, unknown
    m = mistakes.get

    class Relay:
        held = []                       # used by "shared_state" only

        def __init__(self, ctx, lease=10.0, batch=20):
            if m("class_config"):                 # settings kept on the class: one for all relays
                self.ctx = ctx
                type(self).lease, type(self).batch = lease, batch
            else:
                self.ctx, self.lease, self.batch = ctx, lease, batch
            self.mine = []

        def claim(self):
            ctx = self.ctx
            now = ctx.now
            if m("claim_spins"):
                while True:                     # "wait until there is something to claim"
                    rows = yield from ctx.db.select(ctx.req, "outbox", where=lambda r: r["status"] == "new")
                    if any(r["lease_until"] <= ctx.now for _, r in rows):
                        break
            unsent = yield from ctx.db.select(ctx.req, "outbox",
                                              where=None if m("claims_sent") else lambda r: r["status"] == "new")
            if m("no_reclaim"):
                free = [(i, r) for i, r in unsent if r["lease_owner"] is None]
            elif m("claims_leased"):
                free = list(unsent)
            elif m("strict_lease"):
                free = [(i, r) for i, r in unsent if r["lease_until"] < now]
            else:
                free = [(i, r) for i, r in unsent if r["lease_until"] <= now]
            if m("sort_by_id"):
                free.sort(key=lambda item: item[0])
            elif not m("unsorted"):
                free.sort(key=lambda item: item[1]["seq"], reverse=bool(m("newest_first")))
            if not m("ignore_batch"):
                free = free[:self.batch]
            until = self.lease if m("lease_is_duration") else now + (10.0 if m("ignore_lease") else self.lease)
            tx = ctx.db.transaction()
            for row_id, _ in free:
                where = None if (m("no_where") or m("claims_leased")) else (
                    (lambda r: r["status"] == "new" and r["lease_until"] < now) if m("strict_lease") else
                    (lambda r: r["lease_owner"] is None) if m("no_reclaim") else
                    (lambda r: r["status"] == "new" and r["lease_until"] <= now))
                if m("claims_sent"):
                    where = lambda r: r["lease_until"] <= now   # noqa: E731
                tx.update("outbox", row_id, {"lease_owner": ctx.owner, "lease_until": until}, where=where)
            applied = yield from tx.commit(ctx.req)
            if m("returns_old_rows"):
                return [(i, r) for i, r in free if ("outbox", i) in applied]
            got = [(i, {**r, "lease_owner": ctx.owner, "lease_until": until}) for i, r in free
                   if ("outbox", i) in applied]
            if m("returns_ids"):
                return [i for i, _ in got]
            if m("claim_returns_none"):
                return None
            if m("shared_state"):           # "the rows I hold", in the class body: one list for all relays
                self.held.extend(got)
                return list(self.held)
            if m("keeps_claimed"):
                self.mine.extend(got)
                return list(self.mine)
            return got

        def _claim_now(self):
            ctx = self.ctx
            rows = [(i, r) for i, r in ctx.db.rows("outbox") if r["status"] == "new" and r["lease_until"] <= ctx.now]
            return rows[:self.batch]

        def send(self, row_id, row):
            ctx, retry = self.ctx, 0
            if m("mark_before") or m("mark_all"):
                tx = ctx.db.transaction()
                if m("mark_all"):
                    for i, _ in ctx.db.rows("outbox"):
                        tx.update("outbox", i, {"status": "sent"})
                else:
                    tx.update("outbox", row_id, {"status": "sent"})
                yield from tx.commit(ctx.req)
            while True:
                if m("fresh_id"):
                    message_id = uuid.uuid4().hex[:8]
                elif m("fresh_id_on_retry"):
                    message_id = row_id if retry == 0 else f"{row_id}-{retry}"
                else:
                    message_id = row_id
                body = row if m("whole_row_body") else row["payload"]
                try:
                    yield from ctx.broker.publish(ctx.req, message_id, body)
                    break
                except ServiceError:
                    retry += 1
                    if m("no_wait"):
                        continue
                    if (m("give_up_mark") or m("give_up_early")) and retry >= 3:
                        if m("give_up_early"):
                            return False
                        break
                    wait = 1.0 if m("ignore_backoff") else ctx.backoff(retry + 1) if m("backoff_off_by_one") else (
                        ctx.backoff(retry - 1) if m("backoff_from_zero") else ctx.backoff(retry))
                    if not m("past_lease") and not m("give_up_mark") and not m("give_up_early"):
                        end = row["lease_until"]
                        if (ctx.now + wait > end) if m("strict_until") else (ctx.now + wait >= end):
                            return False
                    if m("real_sleep"):
                        time.sleep(5)
                    yield ctx.sleep(wait)
            if not (m("mark_before") or m("mark_all") or m("no_mark")):
                tx = ctx.db.transaction()
                tx.update("outbox", row_id, {"status": "sent"})
                try:
                    yield from tx.commit(ctx.req)
                except ServiceError:
                    if not m("swallow_mark"):
                        raise
            if m("send_returns_none"):
                return None
            return not m("returns_false_when_sent")

    if m("shared_state"):
        send = Relay.send

        def send_and_forget(self, row_id, row):
            done = yield from send(self, row_id, row)
            self.held[:] = [(i, r) for i, r in self.held if i != row_id]
            return done
        Relay.send = send_and_forget
    if m("claim_not_generator"):
        Relay.claim = Relay._claim_now
    if m("no_defaults"):
        class Relay(Relay):   # noqa: F811 - the same relay with the task's defaults dropped
            def __init__(self, ctx, lease, batch):
                super().__init__(ctx, lease, batch)
    return Relay


HANDLE_MISTAKES = {"no_dedupe", "separate", "processed_after", "memory_global", "memory_default", "swallow_all",
                   "raise_conflict", "not_generator", "no_processed_row", "dedupe_global_flag", "retry_spins",
                   "effect_twice", "check_effects"}
_SEEN: set = set()


def handle_fn(**mistakes):
    """The solution's handle, rewritten here so that each keyword switches on one typical mistake."""
    unknown = set(mistakes) - HANDLE_MISTAKES
    assert not unknown, unknown
    m = mistakes.get

    def handle(ctx, delivery, seen=set()):      # noqa: B006 - the "memory_default" mistake needs it
        mid = delivery.message_id
        if m("memory_global") and mid in _SEEN:
            return
        if m("memory_default") and mid in seen:
            return
        if m("dedupe_global_flag") and ctx.db.rows("processed"):      # "processed anything yet? then skip"
            return
        if m("separate") and ctx.db.get("processed", mid) is not None:
            return
        if m("check_effects") and ctx.db.rows("effects", where=lambda r: r["message_id"] == mid):
            return
        tx = ctx.db.transaction()
        ctx.effect(tx, delivery)
        if m("effect_twice"):
            ctx.effect(tx, delivery)
        together = not (m("no_dedupe") or m("separate") or m("processed_after") or m("memory_global")
                        or m("memory_default") or m("no_processed_row") or m("check_effects"))
        if together or m("dedupe_global_flag"):
            tx.insert("processed", mid, {"at": ctx.now})
        if m("raise_conflict"):
            yield from tx.commit(ctx.req)
        elif m("retry_spins"):
            while True:
                try:
                    yield from tx.commit(ctx.req)
                    break
                except ServiceError as err:
                    if err.reason == "conflict":
                        return
                    tx = ctx.db.transaction()
                    ctx.effect(tx, delivery)
                    tx.insert("processed", mid, {"at": ctx.now})
        else:
            try:
                yield from tx.commit(ctx.req)
            except ServiceError as err:
                if m("swallow_all"):
                    return
                if err.reason != "conflict":
                    raise
                return
        if m("separate") or m("processed_after"):
            mark = ctx.db.transaction()
            mark.insert("processed", mid, {"at": ctx.now})
            yield from mark.commit(ctx.req)
        _SEEN.add(mid) if m("memory_global") else None
        seen.add(mid) if m("memory_default") else None

    if m("not_generator"):
        def handle(ctx, delivery):   # noqa: F811 - no yield: a plain function
            tx = ctx.db.transaction()
            ctx.effect(tx, delivery)
            tx.insert("processed", delivery.message_id, {"at": ctx.now})
            tx.commit(ctx.req)
    return handle


def test_the_test_relay_and_handle_without_mistakes_pass_everything(capsys):
    check.claim(relay_class())
    check.send(relay_class())
    check.handle(handle_fn())
    check.exactly_once(relay_class(), handle_fn())
    assert capsys.readouterr().out.count("✔") == 4


def _first_failure(relay=None, handle=None) -> str:
    """The message of the first check that fails, as the learner meets them in order."""
    relay, handle = relay or relay_class(), handle or handle_fn()
    for name, run in (("claim", lambda: check.claim(relay)), ("send", lambda: check.send(relay)),
                      ("handle", lambda: check.handle(handle)), ("exactly_once", lambda: check.exactly_once(relay, handle))):
        try:
            run()
        except AssertionError as err:
            return f"{name}: {err}"
    raise AssertionError("every check passed")


@pytest.mark.parametrize("mistake, where, match", [
    # the mistakes
    ("mark_before", "send", r"marked row 3 sent before publishing it.*Publish first, then mark"),
    ("fresh_id", "send", r"published it as message '[0-9a-f]+'; expected message id 3, the row's id"),
    ("fresh_id_on_retry", "send", r"Try 2 published it as message '3-1': every try must use the row's id"),
    ("give_up_mark", "send", r"gave up after 3 tries and marked row 3 sent without having published it: the order "
                             r"is lost, and no dead letter says so"),
    ("no_reclaim", "claim", r"Row 2 was leased to 'relay9#1' until 5, which has passed.*never reclaims an expired "
                            r"lease"),
    # claim
    ("claims_leased", "claim", r"Row 0 was leased to 'relay0#1' until 11, after now, and your claim took it anyway"),
    ("claims_sent", "claim", r"Row 0 is 'sent' already: claim only unsent rows"),
    ("strict_lease", "claim", r"Off by one: row 4's lease ran until 6, exactly now.*lease_until <= now, not <"),
    ("no_where", "claim", r"Both claimed row 0.*conditional update.*checks at the commit point"),
    ("ignore_batch", "claim", r"batch=2: claim at most batch rows at a time; yours took 7\. A parameter ignored"),
    ("ignore_lease", "claim", r"set row 2's lease_until to 16; expected now \+ lease = 6 \+ 3 = 9\. That is now \+ 10: "
                              r"lease=3 was ignored"),
    ("lease_is_duration", "claim", r"lease_until to 10; expected now \+ lease = 1 \+ 10 = 11\. That is the lease alone"),
    ("returns_old_rows", "claim", r"return each row as it is now, with your lease"),
    ("returns_ids", "claim", r"returned \[0, 1, 2, 3, 4\]: each item must be a pair.*a list of ids"),
    ("claim_returns_none", "claim", r"returned None: did you forget `return`\?"),
    ("claim_not_generator", "claim", r"relay\.claim\(\) returned \[\(0, .* at once.*must be a simpy generator"),
    ("newest_first", "claim", r"Claim the oldest rows first \(smallest seq\)"),
    ("sort_by_id", "claim", r"Claim the oldest rows first \(smallest seq\)"),
    ("unsorted", "claim", r"Claim the oldest rows first \(smallest seq\)"),
    ("swallow_mark", "send", r"app_db down \(from 0\.5 to 5 s\) when it marks the row sent, returned True; expected "
                             r"the ServiceError\('down'\) of the mark to go up"),
    ("keeps_claimed", "claim", r"This call did not claim row 0.*a list that grows"),
    ("shared_state", "claim", r"This call did not claim row 0.*class attribute, one list for all relays"),
    ("class_config", "claim", r"batch=2 allows 2 rows here; yours took 1\. Is batch kept in a class attribute"),
    ("no_defaults", "claim", r"Relay\(ctx\) raised TypeError.*needs the task's defaults.*none for lease and batch"),
    # send
    ("give_up_early", "send", r"gave up after 3 tries, at 4 s, while the lease lasts until 11 s: a fixed number of "
                              r"tries\?"),
    ("ignore_backoff", "send", r"Before retry 2 you waited 1 s; ctx\.backoff\(2\) = 2 s.*a parameter ignored"),
    ("backoff_off_by_one", "send", r"Off by one: before retry 1 you waited 2 s = ctx\.backoff\(2\)"),
    ("backoff_from_zero", "send", r"raised ValueError: ctx\.backoff\(n\) takes the number of the retry.*got 0"),
    ("past_lease", "send", r"kept trying after the lease ran out at 11 s \(a try at 12 s\)"),
    ("strict_until", "send", r"Off by one: your try at 12 s starts when the lease ends.*>=, not >"),
    ("no_mark", "send", r"returned True, but the row is still 'new': mark it sent"),
    ("mark_all", "send", r"marked row 3 sent before publishing it"),
    ("send_returns_none", "send", r"returned None: send returns True once.*Did you forget `return`\?"),
    ("returns_false_when_sent", "send", r"published the row, then returned False; expected True"),
    ("whole_row_body", "send", r"published the body \{'key': 3, 'payload'.*expected the row's payload"),
])
def test_each_relay_mistake_is_named(mistake, where, match):
    message = _first_failure(relay=relay_class(**{mistake: True}))
    assert message.startswith(f"{where}: "), message
    assert re.search(match, message, re.S), message


@pytest.mark.parametrize("mistake, match", [
    # the mistakes
    ("no_dedupe", r"a second copy of message 5 \(a redelivery\) took effect again.*No dedupe"),
    ("separate", r"committed the effect of message 5 and its processed id in 2 separate transactions\. Dedupe "
                 r"outside the effect's transaction is not enough"),
    ("processed_after", r"records the id in processed, but not in the effect's transaction.*Dedupe outside the "
                        r"effect's transaction"),
    # the consumer's other mistakes
    ("memory_global", r"In a fresh run .* did not apply message 5.*Python memory \(a global set, a default argument, "
                      r"a class attribute\)"),
    ("memory_default", r"In a fresh run .* did not apply message 5.*Python memory"),
    ("swallow_all", r"with consumer_db down \(from 3 to 4 s\), returned normally.*\(lost\)"),
    ("raise_conflict", r"raised ServiceError\('conflict'\) for a second copy of message 5.*catch it"),
    ("not_generator", r"handle\(ctx, <message 5, receive 1>\) returned None at once.*simpy generator"),
    ("no_processed_row", r"took effect again.*No dedupe"),
    ("check_effects", r"table processed has no row 5: record the message id there"),
    ("effect_twice", r"left 2 effects of message 5 in consumer_db; expected 1"),
    ("dedupe_global_flag", r"handle\(ctx, <message 0, receive 1>\) at t = 1\.5 left 0 effects of message 0"),
])
def test_each_consumer_mistake_is_named(mistake, match):
    message = _first_failure(handle=handle_fn(**{mistake: True}))
    assert message.startswith("handle: "), message
    assert re.search(match, message, re.S), message


# --- the stories the simulator tells: each mistake under its targeted crash -------------------------------
@pytest.mark.parametrize("case, relay, handle, match", [
    ("publish_mark", dict(fresh_id=True), {},
     r"After a relay crash between publish and mark \(relay0 crashed at 1\.0507 s.*order 7 reached the consumer twice "
     r"with different ids.*Publish with the row's id \(row_id\), not a fresh one"),
    ("publish_mark", dict(mark_before=True), {},
     r"relay0#1 marked row 7 sent at 1\.0505 s before publishing it, and relay0 crashed at 1\.0507 s.*\(lost\)"),
    ("broker_outage", dict(give_up_mark=True), {},
     r"The broker was down from 0\.3 s to 5 s.*then marked it sent .* without having published it.*Giving up after a "
     r"fixed number of tries drops the message"),
    ("takeover", dict(no_reclaim=True), {},
     r"relay0 crashed at 0\.0043 s, right after claiming.*its lease expired at 4 s, and no relay claimed the row "
     r"again.*never reclaims an expired lease"),
    ("consumer_crash", {}, dict(no_dedupe=True),
     r"The consumer crashed at 1\.0472 s, right after committing the effect of order 4: order 4 took effect twice.*No "
     r"dedupe"),
    ("consumer_crash", {}, dict(separate=True),
     r"order 4 took effect twice \(the consumer crashed at 1\.0572 s\): your handle committed the effect and the "
     r"processed id in two transactions"),
    ("consumer_crash", {}, dict(raise_conflict=True), r"never acknowledged: your handle raised "
                                                      r"ServiceError\('conflict'\) each time"),
    ("consumer_db_outage", {}, dict(swallow_all=True),
     r"consumer_db was down from 0\.5 s to 1\.6 s: the consumer received order \d+ .* your handle returned normally "
     r"although its commit had failed.*\(lost\)"),
])
def test_targeted_crashes_tell_what_happened(case, relay, handle, match):
    cases = {"publish_mark": check._publish_mark_case, "broker_outage": check._broker_outage_case,
             "takeover": check._takeover_case, "consumer_crash": check._consumer_crash_case,
             "consumer_db_outage": check._consumer_db_outage_case}
    message = fails(cases[case], relay_class(**relay), handle_fn(**handle), match=match)
    assert "What happened to order" in message and " s  " in message       # the story comes along


def test_memory_dedupe_loses_orders_in_a_later_run():
    _SEEN.clear()
    fails(check._consumer_crash_case, relay_class(), handle_fn(memory_global=True),
          match=r"handle returned normally for order 0 .* this run's consumer_db had no record of it.*Python memory")


def test_generated_schedules_catch_what_the_targeted_cases_miss_and_shrink_it():
    """A relay whose retries use fresh ids passes the targeted crashes (they hit no retry); generated outages
    do, and the failing schedule is shrunk to a few faults."""
    relay = relay_class(fresh_id_on_retry=True)
    message = fails(lambda: check._generated(relay, handle_fn(), 100, 2024), match=r"Generated fault schedule \d+")
    schedule = re.search(r"shrunk to (Schedule\(.*?\)), with", message).group(1)
    assert schedule.count("(") <= 4, schedule                  # at most two outage windows left
    assert "reached the consumer twice with different ids" in message


# --- calling mistakes and unwritten code ---------------------------------------------------------
def unwritten(*methods):
    base = relay_class()

    class Relay(base):
        pass

    def stub(self, *args, **kwargs):
        raise NotImplementedError("Your code here")
    for name in methods:
        setattr(Relay, name, stub)
    return Relay


def test_unwritten_code_says_so_and_later_checks_say_which_task_first(ref):
    fails(check.claim, unwritten("__init__"), match=r"Relay\.__init__ is not written yet")
    fails(check.claim, unwritten("claim"), match=r"Relay\.claim is not written yet")
    fails(check.send, unwritten("send"), match=r"Relay\.send is not written yet")
    fails(check.send, unwritten("claim"), match=r"^Write task 1 first: Relay\.claim is not written yet")

    def handle(ctx, delivery):
        raise NotImplementedError("Your code here")
    fails(check.handle, handle, match=r"^handle is not written yet")
    fails(check.exactly_once, ref["Relay"], handle, match=r"^Write task 3 first: handle is not written yet")
    fails(check.exactly_once, relay_class(mark_before=True), ref["handle"],
          match=r"^Task 2 is not done yet: check\.send\(Relay\) does not pass\. It says: .*marked row 3 sent before")
    fails(check.takeover, unwritten("send"), match="Write task 2 first")


def test_claim_checks_claim_alone_with_the_course_send():
    """Task 1 comes before send is written: the simulated case uses the course's send."""
    check.claim(unwritten("send"))


def test_wrong_arguments_to_the_checks():
    fails(check.claim, relay_class()(None), match="pass the class itself")
    fails(check.handle, "handle", match="pass the function itself")
    fails(check.exactly_once, relay_class(), relay_class(), match="pass the function itself")

    class Relay:
        def __init__(self, context, lease_seconds=10.0, batch=20):
            pass
    fails(check.claim, Relay, match=r"your Relay has no method claim\(\): the task asks for claim\(\) and send")

    class Relay(relay_class()):
        def __init__(self, ctx, lease_seconds=10.0, batch=20):
            super().__init__(ctx, lease_seconds, batch)
    fails(check.claim, Relay, match=r"Relay\(ctx, lease=3\) raised TypeError.*Relay takes \(ctx, lease=10\.0, "
                                    r"batch=20\), by these names")


def test_census_and_takeover_refuse_bad_input():
    with pytest.raises(ValueError, match="one of"):
        check.census(relay_class(), "no such consumer")
    fails(check.census, relay_class(), 3, match="pass the function itself")


def test_the_context_has_no_room_for_state():
    def handle(ctx, delivery):
        ctx.seen = {delivery.message_id}
        yield from ()
    fails(check.handle, handle, match=r"raised AttributeError.*context has a fixed set of attributes")


def test_a_learner_exception_in_a_run_names_the_call_in_flight():
    class Relay(relay_class()):
        def send(self, row_id, row):
            if self.ctx.now > 0.5:
                raise KeyError("lease")
            return (yield from super().send(row_id, row))
    message = fails(lambda r: check._publish_mark_case(r, check._ref_handle), Relay, match=r"raised KeyError")
    assert re.search(r"relay0#\d's relay\.send\(\d+, row\) \(at t = [\d.]+ s of the simulation\) raised KeyError: "
                     r"'lease'\. A row of the outbox has the columns", message), message


# --- learner code that never returns ----------------------------------------------------------------
STUCK = '''
    import sys
    sys.path.insert(0, {tests!r})
    from test_lab05_outbox import relay_class, handle_fn
    from resilience_sim.labs import outbox as check

    for label, run in [("spin", lambda: check.send(relay_class(no_wait=True))),
                       ("sleep", lambda: check.send(relay_class(real_sleep=True))),
                       ("claim", lambda: check.claim(relay_class(claim_spins=True))),
                       ("handle", lambda: check.handle(handle_fn(retry_spins=True))),
                       ("run", lambda: check._broker_outage_case(relay_class(no_wait=True), check._ref_handle))]:
        try:
            run()
        except AssertionError as exc:
            print(label, type(exc).__name__, exc)
'''


def test_code_that_never_returns_is_stopped_and_the_call_named(tmp_path):
    out, took = run_child(tmp_path, STUCK.format(tests=str(ROOT / "tests")))
    assert ("spin TimedOut relay.send(3, row) (at t = 1 s) did not return within 2 s: a loop with no end in send? "
            "While the broker is down, a publish fails at once") in out, out
    assert "sleep TimedOut relay.send(3, row) (at t = 1 s) did not return within 2 s" in out, out
    assert "(It was stopped at `time.sleep(5)`.)" in out, out
    assert "claim TimedOut relay.claim() (at t = 2 s) did not return within 2 s" in out, out
    assert "handle TimedOut handle(ctx, <message 8, receive 1>) (at t = 3.5 s) did not return within 2 s" in out, out
    assert re.search(r"run TimedOut relay0#1's relay\.send\(\d+, row\) \(at t = [\d.]+ s of the simulation\) did not "
                     r"return within 3 s: a loop with no end in send\?", out), out
    assert took < 30, took
