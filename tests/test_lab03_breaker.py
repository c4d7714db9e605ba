"""Lab 03's checks accept the reference solution and reject each typical mistake with a message that
names it. The reference class and function come from the solution notebook itself (its code cells run
here in order), so the notebook stays the single source of truth."""
from __future__ import annotations

import inspect
import time
from collections import deque
from pathlib import Path
from time import monotonic

import pytest
from lab_support import fails, run_child, says_which_task_first, solution_namespace, walk

from resilience_sim.labs import breaker as check

CLASS_CHECKS = ["closed_rules", "open_state", "half_open", "reset_on_close", "against_reference"]
#: task 5's comparison with the course's breaker alone, without the earlier tasks' checks it runs first
COMPARISON = inspect.unwrap(check.against_reference)


@pytest.fixture(scope="module")
def ref() -> dict:
    """The namespace left by running every code cell of the solution notebook."""
    return solution_namespace("03_circuit_breaker.ipynb")


# --- the reference solution passes every check ---------------------------------------------------
@pytest.mark.parametrize("name", CLASS_CHECKS)
def test_check_accepts_the_solution(ref, name, capsys):
    getattr(check, name)(ref["CircuitBreaker"])
    out = capsys.readouterr().out
    assert out.startswith("✔ ") and out.count("\n") == 1


def test_run_calls_accepts_the_solution(ref, capsys):
    check.run_calls(ref["run_calls"])
    assert capsys.readouterr().out.startswith("✔ ")


def test_solution_story_numbers(ref):
    """The lab's closing cell: the learner's breaker agrees with the course's on the outage story."""
    assert ref["yours"] == ref["course"] == (612, 16, 588)
    assert ref["plain"] == (1200, 600, 0)


# --- a breaker with one deliberate mistake switched on ----------------------------------------------
SHARED = deque(maxlen=20)      # the window of "shared_window": one for every breaker, as a class attribute would be


def breaker(**mistakes):
    """The solution's breaker, rewritten here so each keyword switches on one typical mistake."""
    unknown = set(mistakes) - {"rate_over_window", "min_calls_gates_both", "judges_at_min_calls_only",
                               "failures_over_successes", "numpy_bool",
        "stuck_open", "unlimited_probes", "no_reset_on_close", "keep_window_on_close", "too_few_calls",
        "half_open_failure_stays", "timer_from_last_failure", "wall_clock", "imported_clock",
        "timer_from_refusal", "total_failures", "no_window", "window_is_min_calls", "rate_strict",
        "consecutive_strict", "min_calls_strict", "closes_after_first_probe", "open_allows",
        "boundary_strict", "late_results_count", "probes_not_reset", "reopen_old_timer",
        "allow_does_not_advance", "one_probe", "failed_probe_closes", "probes_in_flight",
        "state_name", "allow_returns_none", "successes_not_reset", "rate_opens_at_zero", "window_unbounded_after_close",
        "shared_window", "closes_on_allowed_probes", "open_for_ms", "rate_floor_div", "min_calls_on_failures",
        "probes_off_by_one", "slow_refusal", "no_probes_yet"}
    assert not unknown, unknown
    m = mistakes.get

    def clock(now):
        if m("wall_clock"):
            return time.monotonic()
        if m("imported_clock"):
            return monotonic()
        return now

    class CircuitBreaker:
        def __init__(self, consecutive_failures=5, failure_rate=0.5, window=20, min_calls=10, open_for=30.0,
                     half_open_probes=3):
            self.consecutive_failures, self.failure_rate = consecutive_failures, failure_rate
            self.window, self.min_calls = window, min_calls
            self.open_for, self.half_open_probes = open_for, half_open_probes
            self._state, self._opened_at = "closed", 0.0
            maxlen = min_calls if m("window_is_min_calls") else (None if m("no_window") else window)
            self._failed = SHARED if m("shared_window") else deque(maxlen=maxlen)
            self._in_a_row = self._total = 0
            self._probes = self._probes_ok = 0

        def _open(self, now):
            self._state, self._opened_at = "open", clock(now)

        def _advance(self, now):
            if self._state == "open" and not m("stuck_open"):
                t = clock(now)
                due = self._opened_at + self.open_for / (1000 if m("open_for_ms") else 1)
                if (t > due) if m("boundary_strict") else (t >= due):
                    self._state = "half-open"
                    if not m("probes_not_reset"):
                        self._probes = 0
                        if not m("successes_not_reset"):
                            self._probes_ok = 0

        def state(self, now):
            self._advance(now)
            if m("state_name") and self._state == "half-open":
                return "half_open"
            return self._state

        def allow(self, now):
            if not m("allow_does_not_advance"):
                self._advance(now)
            if m("allow_returns_none"):
                return None
            if m("numpy_bool"):
                import numpy as np
                return np.bool_(self._allow(now))
            return self._allow(now)

        def _allow(self, now):
            if self._state == "closed":
                return True
            if m("slow_refusal"):
                time.sleep(0.5)
            if self._state == "open":
                if m("timer_from_refusal"):
                    self._opened_at = clock(now)
                return bool(m("open_allows"))
            if m("no_probes_yet"):                      # a class written up to task 2: probes are task 3
                return False
            limit = 1 if m("one_probe") else self.half_open_probes
            if m("unlimited_probes") or (self._probes <= limit if m("probes_off_by_one") else self._probes < limit):
                self._probes += 1
                return True
            return False

        def record(self, now, success):
            self._advance(now)
            if self._state == "open":
                if m("timer_from_last_failure") and not success:
                    self._opened_at = clock(now)
                if m("late_results_count") and success:
                    self._state = "closed"
                return
            if self._state == "half-open":
                if not success:
                    if m("failed_probe_closes"):
                        self._state = "closed"
                    elif m("reopen_old_timer"):
                        self._state = "open"
                    elif not m("half_open_failure_stays"):
                        self._open(now)
                    return
                self._probes_ok += 1
                if m("probes_in_flight"):
                    self._probes -= 1
                closes = self._probes_ok >= self._probes if m("closes_on_allowed_probes") else (
                    self._probes_ok == self.half_open_probes)
                if m("closes_after_first_probe") or closes:
                    self._state = "closed"
                    if not m("no_reset_on_close"):
                        self._in_a_row = self._total = 0
                        if m("window_unbounded_after_close"):
                            self._failed = deque()
                        elif not m("keep_window_on_close"):
                            self._failed.clear()
                return
            self._failed.append(not success)
            self._in_a_row = 0 if success else self._in_a_row + 1
            self._total += not success
            run = self._total if m("total_failures") else self._in_a_row
            n, failed = len(self._failed), sum(self._failed)
            kept = sum(self._failed) if m("min_calls_on_failures") else n
            enough = True if m("too_few_calls") else ((kept > self.min_calls) if m("min_calls_strict")
                                                       else (kept == self.min_calls) if m("judges_at_min_calls_only")
                                                       else (kept >= self.min_calls))
            share = failed / (self.window if m("rate_over_window") else n)
            if m("rate_floor_div"):
                share = failed // n
            if m("failures_over_successes"):
                share = failed / (n - failed) if n > failed else 1.0
            rate_hit = (share > self.failure_rate) if m("rate_strict") else (share >= self.failure_rate)
            run_hit = (run > self.consecutive_failures) if m("consecutive_strict") else (
                run >= self.consecutive_failures)
            if m("min_calls_gates_both"):
                run_hit = run_hit and enough
            if run_hit:
                self._open(now)
            elif enough and rate_hit:
                if m("rate_opens_at_zero"):
                    self._state = "open"                # opened_at left as it was
                else:
                    self._open(now)

    return CircuitBreaker


def test_the_test_breaker_without_mistakes_passes_everything(capsys):
    for name in CLASS_CHECKS:
        getattr(check, name)(breaker())
    assert capsys.readouterr().out.count("✔") == len(CLASS_CHECKS)


# --- the mistakes the issue names, and others ---------------------------------------------------------
@pytest.mark.parametrize("mistake, name, match", [
    # never going half-open
    ("stuck_open", "open_state", "Stuck open: your breaker never goes half-open"),
    # unlimited probes in half-open
    ("unlimited_probes", "half_open", "Unlimited probes"),
    # not resetting counts on close: the run of failures, or the window
    ("no_reset_on_close", "reset_on_close", "Counts not reset on close: one failure after closing"),
    ("keep_window_on_close", "reset_on_close", "Counts not reset on close: .*empty the window"),
    # opening on too few calls
    ("too_few_calls", "closed_rules", "Opening on too few calls: your breaker opened after only 1 call "),
    # a half-open failure not reopening it
    ("half_open_failure_stays", "half_open", "a half-open failure must reopen"),
    ("failed_probe_closes", "half_open", "A failed probe closed your breaker"),
    # the open timer measured from the last failure, or restarted by refusals, rather than the opening
    ("timer_from_last_failure", "open_state", r"runs from the last failure \(101"),
    ("timer_from_refusal", "open_state", "Every refused call restarted your open timer"),
    # wall-clock time instead of `now`
    ("wall_clock", "open_state", "reads the wall clock"),
    ("imported_clock", "open_state", "reads the wall clock"),
    # the closed state's rules
    ("total_failures", "closed_rules", r"counts all failures, not failures \*in a row\*"),
    ("no_window", "closed_rules", "count all 41 calls since it closed"),
    ("window_is_min_calls", "closed_rules", "is your window the right length"),
    ("rate_strict", "closed_rules", r"at or above the threshold \(>=, not only >\)"),
    ("consecutive_strict", "closed_rules", "Off by one: it must open on the 3rd failure in a row"),
    ("min_calls_strict", "closed_rules", "Off by one: with min_calls=10"),
    # open and half-open
    ("open_allows", "open_state", "let a call through while open"),
    ("boundary_strict", "open_state", "compare with >=, not >"),
    ("late_results_count", "open_state", "A late success closed"),
    ("allow_does_not_advance", "open_state", "allow must notice by itself that open_for has passed"),
    ("closes_after_first_probe", "half_open", "closed after the first successful probe"),
    ("one_probe", "half_open", "let only 1 probe through"),
    ("reopen_old_timer", "half_open", "the new open period starts at the failed probe"),
    ("probes_not_reset", "half_open", "reset the probe count"),
    # a probe that succeeds frees a place for another
    ("probes_in_flight", "half_open", r"A 4th probe got through.*limits the probes still out"),
    # found by the learner review: each in its own task, with a message that names it
    ("successes_not_reset", "half_open", r"second half-open period: the 2 successes of the first period still"),
    ("closes_on_allowed_probes", "half_open", r"closed after 1 successful probe of half_open_probes=3"),
    ("rate_opens_at_zero", "closed_rules", r"Opened by the failure-rate rule.*set opened_at = now"),
    ("window_unbounded_after_close", "reset_on_close", r"no longer keeps only the last window=10 calls"),
    ("shared_window", "closed_rules", r"Two breakers share their state"),
    # the states' names and return values
    ("state_name", "open_state", "Spell the states exactly"),
    ("allow_returns_none", "closed_rules", "forget `return`"),
    # the failure-rate rule: its share, and when it may judge
    ("rate_over_window", "closed_rules", r"did not open \(not even at 6 failures in 10\).*failures / len"),
    ("min_calls_gates_both", "closed_rules", "min_calls .* gates only the failure-rate rule"),
    ("judges_at_min_calls_only", "closed_rules", r"judge only when exactly min_calls=6.*at least min_calls"),
    ("failures_over_successes", "closed_rules", r"divide the failures by the successes"),
    # found by the second learner review (rev9a): probed before named
    ("open_for_ms", "closed_rules", r"half-open 0\.5 s after it opened too: open_for is in seconds"),
    ("rate_floor_div", "closed_rules", r"Is it integer division\? failures // len"),
    ("min_calls_on_failures", "closed_rules", r"Yours waits for min_calls failures: min_calls counts the outcomes"),
    ("rate_over_window", "closed_rules", r"Dividing by window=20 instead gives 25%"),
    ("probes_off_by_one", "half_open", r"One probe too many: your breaker let 4 calls through.*<, not <="),
    ("slow_refusal", "open_state", r"b\.allow\(101\.0\) took 0\.5 s: a breaker answers at once"),
])
def test_each_mistake_is_named(mistake, name, match):
    message = fails(getattr(check, name), breaker(**{mistake: True}), match=match)
    assert "Replay:" in message and "b = CircuitBreaker(" in message


def test_the_new_rate_mistakes_do_not_get_the_old_misleading_hints():
    assert ">=, not only >" not in fails(check.closed_rules, breaker(rate_over_window=True), match="window=20")
    assert "count all" not in fails(check.closed_rules, breaker(judges_at_min_calls_only=True), match="exactly")
    assert "right length" not in fails(check.closed_rules, breaker(failures_over_successes=True), match="successes")
    for mistake in ("rate_floor_div", "min_calls_on_failures"):
        assert "Dividing by window" not in fails(check.closed_rules, breaker(**{mistake: True}), match="5 / 10")
    assert "set opened_at = now" not in fails(check.closed_rules, breaker(open_for_ms=True), match="in seconds")
    assert "Unlimited" not in fails(check.half_open, breaker(probes_off_by_one=True), match="One probe too many")


def test_a_class_written_up_to_task_2_passes_task_2_and_task_3_names_the_probes(capsys):
    """allow(130) refusing while the breaker is half-open is a missing probe, task 3's: task 2 passes."""
    stage2 = breaker(no_probes_yet=True)
    for name in ("closed_rules", "open_state"):
        inspect.unwrap(getattr(check, name))(stage2)
    assert capsys.readouterr().out.count("✔") == 2
    fails(check.half_open, stage2, match=r"^Half-open with half_open_probes=3, your breaker let only 0 probes through")


def test_a_numpy_bool_from_allow_is_accepted(capsys):
    for name in CLASS_CHECKS:
        getattr(check, name)(breaker(numpy_bool=True))
    assert capsys.readouterr().out.count("✔") == len(CLASS_CHECKS)


@pytest.mark.parametrize("mistake", ["rate_over_window", "judges_at_min_calls_only", "failures_over_successes"])
def test_the_reference_comparison_catches_the_rate_mistakes_too(mistake):
    fails(COMPARISON, breaker(**{mistake: True}), match="should be")


@pytest.mark.parametrize("mistake", ["stuck_open", "unlimited_probes", "no_reset_on_close", "too_few_calls",
                                     "half_open_failure_stays", "wall_clock", "timer_from_refusal",
                                     "probes_in_flight", "reopen_old_timer", "no_window"])
def test_the_reference_comparison_catches_the_behavioural_mistakes_too(mistake):
    fails(COMPARISON, breaker(**{mistake: True}), match="should be|wall clock|Replay")


def test_replay_shows_the_calls_that_lead_to_the_mistake():
    message = fails(check.half_open, breaker(unlimited_probes=True), match="Unlimited probes")
    assert "b = CircuitBreaker(consecutive_failures=2, failure_rate=1.0, window=20, min_calls=20, " \
           "open_for=10.0, half_open_probes=3)" in message
    assert "b.record(100.0, False)" in message and "b.allow(110.04)" in message and "# -> True" in message


def test_replay_is_cut_when_long():
    message = fails(check.closed_rules, breaker(no_window=True), match="count all")
    assert "# ... " in message and message.count("\n") < 25


def test_wall_clock_diagnosis_leaves_the_clocks_alone():
    before = time.monotonic
    fails(check.open_state, breaker(wall_clock=True), match="wall clock")
    assert time.monotonic is before and monotonic is before and time.monotonic() > 0


# --- calling mistakes -----------------------------------------------------------------------------------
def test_unwritten_class_says_so():
    class CircuitBreaker:
        def __init__(self, **kw):
            raise NotImplementedError("Your code here")
    fails(check.closed_rules, CircuitBreaker, match=r"^CircuitBreaker\.__init__ is not written yet")
    for name in CLASS_CHECKS[1:]:          # the later tasks' checks first run task 1's
        fails(getattr(check, name), CircuitBreaker, match=r"^Write task 1 first: CircuitBreaker\.__init__ is not written")


def test_unwritten_method_says_so():
    base = breaker()

    class CircuitBreaker(base):
        def allow(self, now):
            raise NotImplementedError("Your code here")
    fails(check.closed_rules, CircuitBreaker, match=r"CircuitBreaker.allow is not written yet")


def test_wrong_signature_says_which_keywords():
    class CircuitBreaker:
        def __init__(self, threshold=5, open_for=30.0):
            pass
    fails(check.closed_rules, CircuitBreaker, match="TypeError.*consecutive_failures, failure_rate, window")


def test_an_instance_instead_of_the_class():
    fails(check.closed_rules, breaker()(), match="pass the class itself")


def test_learner_exception_is_reported_with_the_call():
    base = breaker()

    class CircuitBreaker(base):
        def record(self, now, success):
            raise KeyError("oops")
    fails(check.closed_rules, CircuitBreaker, match=r"b.record\(1.0, False\) raised KeyError")


# --- task 6: run_calls -----------------------------------------------------------------------------------
def calls(*, record_refused=False, ask_when_refused=False, no_none=False, no_record=False, no_return=False,
          refused_as_failed=False, skip_allow=False, refused_as_sent=False, as_list=False, order=None,
          pops_times=False, record_later=False, break_on_refusal=False, allow_twice=False):
    def run_calls(breaker, times, is_up):
        sent = failed = refused = 0
        for t in (times.pop(0) for _ in range(len(times))) if pops_times else times:
            allowed = True if (no_none or breaker is not None) and skip_allow else (
                breaker.allow(t) if (no_none or breaker is not None) else True)
            if allowed and allow_twice and breaker is not None:
                allowed = breaker.allow(t)
            if not allowed:
                if break_on_refusal:
                    break
                refused += 1
                failed += refused_as_failed
                sent += refused_as_sent
                if ask_when_refused:
                    is_up(t)
                if record_refused:
                    breaker.record(t, False)
                continue
            sent += 1
            ok = is_up(t)
            failed += not ok
            if breaker is not None and not no_record:
                breaker.record(t + 0.1 if record_later else t, ok)
        if no_return:
            return None
        if order:
            return tuple({"sent": sent, "failed": failed, "refused": refused}[k] for k in order)
        return [sent, failed, refused] if as_list else (sent, failed, refused)
    return run_calls


def test_run_calls_style_variants_pass(capsys):
    check.run_calls(calls())
    check.run_calls(calls(as_list=True))
    assert capsys.readouterr().out.count("✔") == 2


@pytest.mark.parametrize("mistake, match", [
    ({"record_refused": True}, "Record only the calls the breaker let through"),
    ({"ask_when_refused": True}, "fail fast: don't call it"),
    ({"no_none": True}, "`breaker` is None"),
    ({"no_record": True}, "never recorded"),
    ({"no_return": True}, "forget `return"),
    ({"refused_as_failed": True}, r"\(sent, failed, refused\) should be.*counted the refused calls as failed"),
    ({"refused_as_sent": True}, r"counted the refused calls as sent"),
    ({"order": ("sent", "refused", "failed")}, r"another order: return \(sent, failed, refused\)"),
    ({"skip_allow": True}, "ask breaker.allow"),
    # found by the second learner review (rev9a)
    ({"pops_times": True}, r"^With no breaker, your run_calls changed `times` \(it held 600 times, 0 after your call"),
    ({"record_later": True}, r"record\(0\.1, True\) for the call let through at 0\.0: record each result with the t"),
    ({"break_on_refusal": True}, r"yours asked 106 times for 600 calls\. Yours stopped at the first refused call "
                                 r"\(allow\(10\.5\) was False\): a `break`\? .*`continue`"),
    ({"allow_twice": True}, r"asked allow\(0\.0\) 2 times for one call"),
])
def test_run_calls_mistakes(mistake, match):
    fails(check.run_calls, calls(**mistake), match=match)
    assert "now must not go back" not in fails(check.run_calls, calls(**mistake), match=r"\S")


def test_one_unrecorded_call_is_told_in_the_singular():
    class FirstNotRecorded:
        def __init__(self, inner):
            self.inner, self.allow = inner, inner.allow

        def record(self, now, success):
            if now != 0.0:                               # the first call's result is dropped
                self.inner.record(now, success)

    def run_calls(breaker, times, is_up):
        return calls()(breaker and FirstNotRecorded(breaker), times, is_up)
    fails(check.run_calls, run_calls, match=r"^With CircuitBreaker\(.*\), 1 call was let through but its result was "
                                            r"never recorded")


def record_the_opposite(breaker, times, is_up):
    sent = failed = refused = 0
    for t in times:
        if breaker is not None and not breaker.allow(t):
            refused += 1
            continue
        sent += 1
        ok = is_up(t)
        failed += not ok
        if breaker is not None:
            breaker.record(t, not ok)         # "record whether it failed"
    return sent, failed, refused


def ask_twice(breaker, times, is_up):
    sent = failed = refused = 0
    for t in times:
        if breaker is not None and not breaker.allow(t):
            refused += 1
            continue
        sent += 1
        failed += not is_up(t)
        ok = is_up(t)
        if breaker is not None:
            breaker.record(t, ok)
    return sent, failed, refused


def count_the_opposite(breaker, times, is_up):
    sent = failed = refused = 0
    for t in times:
        if breaker is not None and not breaker.allow(t):
            refused += 1
            continue
        sent += 1
        ok = is_up(t)
        failed += ok
        if breaker is not None:
            breaker.record(t, ok)
    return sent, failed, refused


@pytest.mark.parametrize("wrong, match", [
    (record_the_opposite, r"With CircuitBreaker\(consecutive_failures=5, open_for=5\.0\), your run_calls recorded "
                          r"record\(0\.0, False\), but is_up\(0\.0\) returned True.*did you record the opposite of "
                          r"the result\?"),
    (ask_twice, r"With no breaker, your run_calls called is_up\(0\.0\) 2 times\. is_up\(t\) is the call: call it once "
                r"per time and keep its result"),
    (count_the_opposite, r"should be \(600, 200, 0\), yours gave \(600, 400, 0\).*count the opposite of the result"),
])
def test_run_calls_result_mistakes_get_their_own_hints(wrong, match):
    message = fails(check.run_calls, wrong, match=match)
    assert "allow(t) is False" not in message and "fail fast" not in message


def test_run_calls_written_for_a_bool_allow_works_with_the_check(capsys):
    """The check's breaker is the course's, whose allow gives a Permit; the task's allow gives True or False,
    and the check hands run_calls exactly that."""
    def run_calls(breaker, times, is_up):
        sent = failed = refused = 0
        for t in times:
            if breaker is not None and breaker.allow(t) is not True:
                refused += 1
                continue
            sent += 1
            ok = is_up(t)
            failed += not ok
            if breaker is not None:
                breaker.record(t, ok)
        return sent, failed, refused
    check.run_calls(run_calls)
    assert "✔" in capsys.readouterr().out


def test_the_reference_comparison_shows_true_or_false_not_a_permit(capsys):
    """The course's breaker returns a Permit from allow; the messages show what the task's allow returns."""
    message = fails(COMPARISON, breaker(one_probe=True), match=r"allow\(.*\) should be True here")
    assert "Permit" not in message and "(course: True)" in message and "yours gave False" in message
    seed = int(message.split("random sequence ")[1].split(":")[0])
    check.show_sequence(breaker(one_probe=True), seed)
    out = capsys.readouterr().out
    assert "Permit" not in out and "(course: True)" in out


def test_run_calls_unwritten():
    def run_calls(breaker, times, is_up):
        raise NotImplementedError("Your code here")
    fails(check.run_calls, run_calls, match="run_calls is not written yet")


def test_show_sequence_prints_the_whole_sequence(ref, capsys):
    message = fails(COMPARISON, breaker(probes_in_flight=True), match="random sequence")
    seed = int(message.split("random sequence ")[1].split(":")[0])
    check.show_sequence(breaker(probes_in_flight=True), seed)
    out = capsys.readouterr().out
    assert out.startswith("b = CircuitBreaker(") and "(course: False)" in out and "# ... " not in out
    assert out.strip().splitlines()[-1].startswith("# allow(")
    check.show_sequence(ref["CircuitBreaker"], seed)
    assert "agree at every step" in capsys.readouterr().out


# --- learner code that never returns ----------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]



SLEEPING_BREAKER = '''
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_lab03_breaker import breaker
    from resilience_sim.labs import breaker as check

    class CircuitBreaker(breaker()):
        def allow(self, now):
            if self.state(now) == "open":
                time.sleep(self.open_for)         # "wait until it may be half-open"
            return super().allow(now)

    for name in ("open_state", "against_reference"):
        try:
            getattr(check, name)(CircuitBreaker)
        except AssertionError as exc:
            print(type(exc).__name__, exc)
'''


def test_a_breaker_that_sleeps_in_allow_is_stopped(tmp_path):
    out, took = run_child(tmp_path, SLEEPING_BREAKER.format(tests=str(ROOT / "tests")))
    assert "TimedOut b.allow(100.5) did not return within 2 s: does it sleep, or wait in a loop? A breaker answers " \
           "at once, from `now` alone: no time.sleep" in out, out
    assert out.count("did not return within 2 s") == 2 and out.count("Replay:") == 1
    assert "AssertionError Task 2 is not done yet: check.open_state(CircuitBreaker) does not pass. It says: " \
           "b.allow(100.5) did not return within 2 s" in out, out    # task 5 first runs task 2, which stops it
    assert "(It was stopped at `time.sleep(self.open_for)`.)" in out
    assert "reads the wall clock" not in out           # stuck is stuck: no second try with a fake clock
    assert took < 20                                   # two checks, one wait each


def test_run_calls_that_waits_for_a_refused_call_is_stopped(tmp_path):
    out, _ = run_child(tmp_path, '''
        from resilience_sim.labs import breaker as check

        def run_calls(breaker, times, is_up):
            sent = failed = refused = 0
            i = 0
            while i < len(times):
                t = times[i]
                if breaker is not None and not breaker.allow(t):
                    continue                      # "try again": the same t, for ever
                sent += 1
                ok = is_up(t)
                failed += not ok
                if breaker is not None:
                    breaker.record(t, ok)
                i += 1
            return sent, failed, refused

        try:
            check.run_calls(run_calls)
        except AssertionError as exc:
            print(exc)
    ''')
    assert "run_calls(CircuitBreaker(consecutive_failures=5, open_for=5.0), ...) did not return within 2 s: a loop " \
           "with no end, or a wait? Go through `times` once" in out, out


def test_a_breaker_without_the_spec_defaults_task_6_relies_on_is_named_in_task_5():
    base = breaker()

    class CircuitBreaker(base):
        def __init__(self, consecutive_failures=5, failure_rate=0.5, window=10, min_calls=10, open_for=30.0,
                     half_open_probes=3):
            super().__init__(consecutive_failures, failure_rate, window, min_calls, open_for, half_open_probes)
    fails(check.against_reference, CircuitBreaker, match=r"does not keep the spec's defaults: window=20 \(yours: 10\)")


# --- the learner's copy as a learner runs it, task by task: later cells say which task to write first ---------
CLASS, RUN_CALLS = "46958d20", "1660f765"                      # the cells of the class and of task 6
LATER = ["2852b918", "20f46e78", "8ebd8566", "500891b4", "bcad8cc9"]   # tasks 2 to 5's checks, then the run
ABOVE = ["161b1702"]                                           # reads what the run made


def defaults_of_its_own():
    class CircuitBreaker(breaker()):
        def __init__(self, consecutive_failures=5, failure_rate=0.5, window=10, min_calls=10, open_for=30.0,
                     half_open_probes=3):
            super().__init__(consecutive_failures, failure_rate, window, min_calls, open_for, half_open_probes)
    return CircuitBreaker


@pytest.mark.parametrize("stub, then, task, own, later", [
    ([CLASS], None, 1, ["7245f5aa"], LATER),
    # a class written up to task N - 1: task N's check names what is missing, the later cells that task N is not done
    ([], {CLASS: {"CircuitBreaker": breaker(stuck_open=True)}}, 2, ["2852b918"], LATER[1:]),
    ([], {CLASS: {"CircuitBreaker": breaker(unlimited_probes=True)}}, 3, ["20f46e78"], LATER[2:]),
    ([], {CLASS: {"CircuitBreaker": breaker(no_reset_on_close=True)}}, 4, ["8ebd8566"], LATER[3:]),
    ([], {CLASS: {"CircuitBreaker": defaults_of_its_own()}}, 5, ["500891b4"], LATER[4:]),
    ([RUN_CALLS], None, 6, ["2608acad"], LATER[4:]),
], ids=["1", "2", "3", "4", "5-defaults", "6"])
def test_a_learner_who_skips_a_task_is_told_to_write_it_first(stub, then, task, own, later):
    failed = walk("03_circuit_breaker.ipynb", stub=stub, then=then)
    says_which_task_first(failed, task, own, later, ABOVE)


def test_a_class_written_for_task_1_only_passes_task_1_and_is_told_task_2_is_next():
    """Task 1 asks for the closed state alone: a breaker that never leaves "open" passes it (a learner writes
    the class one task at a time), and task 2's check is the first to fail, naming the missing half-open."""
    stuck = breaker(stuck_open=True)
    inspect.unwrap(check.closed_rules)(stuck)
    fails(check.open_state, stuck, match=r"^Stuck open: your breaker never goes half-open")
    fails(check.half_open, stuck, match=r"^Task 2 is not done yet: check\.open_state\(CircuitBreaker\) does not pass\. "
                                        r"It says: Stuck open")
    fails(check.against_reference, breaker(no_reset_on_close=True),
          match=r"^Task 4 is not done yet: check\.reset_on_close\(CircuitBreaker\) does not pass\. It says: Counts not "
                r"reset on close")


def test_the_run_says_to_write_task_6_first_when_the_breaker_is_done():
    def run_calls(breaker, times, is_up):
        raise NotImplementedError("Your code here")
    with pytest.raises(AssertionError, match=r"^Write task 6 first: run_calls is not written yet"):
        exec("check.uses('CircuitBreaker', 'run_calls')", {"check": check, "CircuitBreaker": breaker(),
                                                            "run_calls": run_calls})
