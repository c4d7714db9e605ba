"""Checks for lab 03, a circuit breaker state machine.

The learner writes a class ``CircuitBreaker(consecutive_failures=5, failure_rate=0.5, window=20,
min_calls=10, open_for=30.0, half_open_probes=3)`` with three methods, ``state(now)``,
``allow(now)`` and ``record(now, success)``. The spec (the lab states it too):

* **closed**: ``allow`` returns True. ``record`` keeps the outcomes of the last ``window`` calls and
  the number of failures in a row (a success resets it). The breaker opens, at that ``now``, when
  ``consecutive_failures`` calls in a row have failed, or when at least ``min_calls`` outcomes are
  kept and the share of failures among them is at least ``failure_rate``.
* **open**: ``allow`` returns False. From ``opened_at + open_for`` on (inclusive), where
  ``opened_at`` is the ``now`` of the ``record`` that opened it, the breaker is half-open. Results
  recorded while it is open (of calls let through before it opened) are ignored.
* **half-open**: ``allow`` returns True for the first ``half_open_probes`` calls and False after.
  A failed probe opens it again at once (a new open period from that ``now``); when
  ``half_open_probes`` probes have succeeded it closes.
* Whenever it closes, it starts counting afresh: no outcomes kept, no failures in a row.
* Time is only ever the ``now`` passed in: never a clock.

Each check drives the learner's class with plain numbers (no sleeping), prints one ✔ line or raises
``AssertionError`` with a message that names the mistake and a replay: the calls that lead to it, to
paste into a cell. :func:`against_reference` compares the class with the course's
:class:`resilience_sim.policies.CircuitBreaker` (the same spec) on random call sequences.

Each check first runs the earlier tasks' checks it needs, and :func:`uses` opens a cell that runs the
learner's code: a task left undone reads "Write task N first" (see :mod:`.availability`).
"""
from __future__ import annotations

import contextlib
import inspect
import random
from collections import Counter
import sys
import time as _time

from ..policies import CircuitBreaker as _Reference
from . import feedback as fb
from .feedback import needs

__all__ = ["closed_rules", "open_state", "half_open", "reset_on_close", "against_reference",
           "show_sequence", "run_calls", "uses", "needs"]

_TASKS = fb.Tasks()
uses = _TASKS.uses

STATES = ("closed", "open", "half-open")
_CLOCKS = ("time", "monotonic", "perf_counter", "time_ns", "monotonic_ns", "perf_counter_ns")


def _fmt(x) -> str:
    if isinstance(x, float):
        text = f"{x:.6f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    return repr(x)


def _kwargs(kw: dict) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in kw.items())


# --- a fake clock, to tell a wall-clock breaker from a stuck one ------------------------------------
class _Clock:
    """While active, time.time(), time.monotonic()... (and copies of them imported into the learner's
    module) return the last ``now`` the check passed to the breaker."""

    def __init__(self):
        self.now = 0.0

    def _fake(self, name):
        if name.endswith("_ns"):
            return lambda: int(self.now * 1e9)
        return lambda: self.now

    @contextlib.contextmanager
    def active(self, cls):
        originals = {name: getattr(_time, name) for name in _CLOCKS}
        fakes = {name: self._fake(name) for name in _CLOCKS}
        module = sys.modules.get(getattr(cls, "__module__", ""), None)
        patched = []
        try:
            for name in _CLOCKS:
                setattr(_time, name, fakes[name])
            if module is not None:
                for key, value in list(vars(module).items()):
                    for name, original in originals.items():
                        if value is original:
                            patched.append((key, value))
                            setattr(module, key, fakes[name])
            yield self
        finally:
            for name, original in originals.items():
                setattr(_time, name, original)
            for key, value in patched:
                setattr(module, key, value)


#: Seconds a call of the learner's breaker may take: the second slower call of a scenario is a message.
SLOW_CALL_S = 0.25
_STUCK = ("does it sleep, or wait in a loop? A breaker answers at once, from `now` alone: no time.sleep, no "
          "loop waiting for time to pass. Open means allow(now) returns False until now >= opened_at + "
          "open_for; then state(now) says 'half-open'.")


class _Driver:
    """Drives the learner's breaker and keeps a replay of every call made."""

    def __init__(self, cls, kwargs: dict, clock: _Clock | None = None):
        if not isinstance(cls, type):
            raise AssertionError("pass the class itself to the check, e.g. check.closed_rules(CircuitBreaker); "
                                 f"got {cls!r}")
        self.kwargs, self.clock, self.slow = dict(kwargs), clock, 0
        self.lines = [f"b = CircuitBreaker({_kwargs(kwargs)})"]
        with fb.learner_code("CircuitBreaker.__init__", f"CircuitBreaker({_kwargs(kwargs)})",
                             lambda exc: ". Does __init__ take the keywords of the task: consecutive_failures, "
                             "failure_rate, window, min_calls, open_for, half_open_probes?"
                             if isinstance(exc, TypeError) else "", stuck=_STUCK):
            self.b = cls(**kwargs)

    def _call(self, method: str, text: str, *args):
        if self.clock is not None:
            self.clock.now = args[0]
        fn = getattr(self.b, method, None)
        if not callable(fn):
            raise AssertionError(f"your CircuitBreaker has no method {method}(); the task asks for state(now), "
                                 f"allow(now) and record(now, success)")
        started = fb._monotonic()
        with fb.learner_code(f"CircuitBreaker.{method}", text, lambda exc: "\n" + self.replay(),
                             stuck=lambda: f"{_STUCK}\n{self.replay()}"):
            got = fn(*args)
        took = fb._monotonic() - started
        self.slow += took > SLOW_CALL_S
        if self.slow > 1:                       # twice: not a first import or a busy machine
            self.lines.append(text)
            raise fb.TimedOut(f"{text} took {took:.1f} s: a breaker answers at once, from `now` alone (no "
                              f"time.sleep, no waiting for time to pass).\n{self.replay()}")
        return got

    def state(self, now) -> str:
        text = f"b.state({_fmt(now)})"
        got = self._call("state", text, now)
        if got not in STATES:
            hint = " Did you forget `return`?" if got is None else ""
            if isinstance(got, str) and got.lower().replace("_", "-").replace(" ", "-") in STATES:
                hint = " Spell the states exactly 'closed', 'open' and 'half-open' (lower case, with a hyphen)."
            self.lines.append(text)
            raise AssertionError(f"state(now) must return 'closed', 'open' or 'half-open', yours returned "
                                 f"{got!r}.{hint}\n{self.replay()}")
        self.lines.append(f"{text:24s} # -> {got!r}")
        return got

    def allow(self, now) -> bool:
        text = f"b.allow({_fmt(now)})"
        got = self._call("allow", text, now)
        if fb.is_bool(got):
            got = bool(got)
        else:
            hint = " Did you forget `return`?" if got is None else ""
            self.lines.append(text)
            raise AssertionError(f"allow(now) must return True or False, yours returned {got!r}.{hint}\n"
                                 f"{self.replay()}")
        self.lines.append(f"{text:24s} # -> {got}")
        return got

    def record(self, now, success: bool) -> None:
        text = f"b.record({_fmt(now)}, {success})"
        self._call("record", text, now, success)
        self.lines.append(text)

    def call(self, now, success: bool) -> bool:
        """A call as a client makes it: ask, and report the result if allowed."""
        allowed = self.allow(now)
        if allowed:
            self.record(now, success)
        return allowed

    def replay(self, last: int = 14) -> str:
        lines = self.lines if len(self.lines) <= last + 1 else (
            self.lines[:1] + [f"# ... {len(self.lines) - last - 1} calls ..."] + self.lines[-last:])
        return "Replay:\n    " + "\n    ".join(lines)

    def expect(self, what: str, got, want, message: str) -> None:
        if got != want:
            raise AssertionError(f"{what} should be {want!r} after the calls below, yours gave {got!r}. "
                                 f"{message}\n{self.replay()}")


def _with_clock_diagnosis(cls, scenario) -> None:
    """Run ``scenario(cls, clock)``; if it fails, but passes when the clocks follow ``now``, the
    learner's breaker reads the wall clock."""
    try:
        scenario(cls, None)
    except fb.TimedOut:
        raise                                   # stuck, whatever the clock says: no second wait
    except AssertionError as first:
        try:
            clock = _Clock()
            with clock.active(cls):
                scenario(cls, clock)
        except Exception:  # noqa: BLE001 - the first message is the one to show
            raise first from None
        raise AssertionError(
            "Your breaker reads the wall clock (time.time(), time.monotonic()...) instead of the `now` it is "
            "given: with plain numbers it misbehaves, and when we make the clock follow `now` it works. "
            "Use only `now`: it is simulated seconds in the simulator, time.monotonic() in a live client, "
            "and plain numbers in tests.\n" + str(first).split("\n", 1)[-1]) from None


def _own_state(cls) -> None:
    """Two breakers must not share their counts (state kept in class attributes, a mutable default...)."""
    kw = dict(consecutive_failures=2, failure_rate=0.5, window=4, min_calls=4, open_for=30.0, half_open_probes=1)
    calls = ((3.0, False), (4.0, True), (5.0, True))        # alone: 1 failure in a row, 1 failure of 3 calls

    def after(driver):
        for t, ok in calls:
            driver.call(t, ok)
        return driver.state(5.0)
    try:
        alone = after(_Driver(cls, kw))
        first, second = _Driver(cls, kw), _Driver(cls, kw)
        first.call(1.0, False)
        first.call(2.0, False)
        shared = after(second)
    except fb.TimedOut:
        raise
    except AssertionError:                      # any other trouble: the task's own scenarios will name it
        return
    if shared != alone:
        raise AssertionError(
            f"Two breakers share their state: a new breaker given 1 failure and 2 successes is {alone!r} when it "
            f"is the only one, but {shared!r} after another breaker has had 2 failures. Your counts (or the "
            f"state) live in the class body, shared by every breaker; create them in __init__ "
            f"(self._failed = deque(maxlen=window), ...) so that each breaker has its own.\n"
            "Replay:\n    # another breaker\n    " + "\n    ".join(first.lines) +
            "\n    # the new one\n    " + "\n    ".join(second.lines))


# --- task 1: closed, and when to open -----------------------------------------------------------
def _closed_min_calls(cls, clock):
    kw = dict(consecutive_failures=100, failure_rate=0.5, window=20, min_calls=10, open_for=30.0,
              half_open_probes=1)
    d = _Driver(cls, kw, clock)
    for i in range(1, 10):
        d.call(float(i), False)
        if d.state(float(i)) != "closed":
            raise AssertionError(
                f"Opening on too few calls: your breaker opened after only {i} call{'s' * (i > 1)} (all failed). "
                f"The failure-rate rule may judge only once min_calls={kw['min_calls']} outcomes are counted; "
                f"before that, even 100% failures must not open it.\n{d.replay()}")
    d.call(10.0, False)
    if d.state(10.0) != "open":
        d.call(11.0, False)
        if d.state(11.0) == "open":
            raise AssertionError("Off by one: with min_calls=10 the rate rule may judge from the 10th call on "
                                 "(at least min_calls, >=); yours waited for the 11th.\n" + d.replay())
        raise AssertionError("10 calls of 10 failed (100% >= failure_rate=0.5) and min_calls=10 are counted, "
                             "yet your breaker did not open: check the failure-rate rule.\n" + d.replay())


def _opens_after(cls, clock, kw: dict, outcomes) -> bool:
    """Whether a fresh breaker is open after these outcomes (a probe that tells two mistakes apart)."""
    probe = _Driver(cls, kw, clock)
    for i, ok in enumerate(outcomes, start=1):
        probe.call(float(i), ok)
    return probe.state(float(len(outcomes))) == "open"


def _closed_rate_equal(cls, clock):
    kw = dict(consecutive_failures=100, failure_rate=0.5, window=20, min_calls=10, open_for=30.0,
              half_open_probes=1)
    d = _Driver(cls, kw, clock)
    for i, ok in enumerate([True] * 5 + [False] * 4, start=1):
        d.call(float(i), ok)
    d.expect("state(9.0)", d.state(9.0), "closed", "4 failures in 9 calls (44%) is below failure_rate=0.5.")
    d.call(10.0, False)
    if d.state(10.0) != "open":
        if _opens_after(cls, clock, kw, [True] * 4 + [False] * 6):
            raise AssertionError("5 failures in 10 calls is exactly failure_rate=0.5: the breaker must open at "
                                 "or above the threshold (>=, not only >).\n" + d.replay())
        raise AssertionError("5 failures in 10 calls is 50% >= failure_rate=0.5, yet your breaker did not open "
                             "(not even at 6 failures in 10). The share is over the outcomes kept so far: "
                             f"failures / len(outcomes), here 5 / 10.{_rate_cause(cls, clock)}\n" + d.replay())


def _rate_cause(cls, clock) -> str:
    """Which slip makes a breaker miss 5 failures in 10 calls, told apart by fresh breakers given 2 failures in 4
    calls: with a full window (window=4), and with window=10 and min_calls 2 or 3; then 1 failure in 2."""
    kw = dict(consecutive_failures=100, failure_rate=0.5, window=4, min_calls=4, open_for=30.0, half_open_probes=1)
    full = [True, True, False, False]
    if _opens_after(cls, clock, kw, full):
        return " Dividing by window=20 instead gives 25%: yours opens once the window is full."
    if (_opens_after(cls, clock, dict(kw, window=10, min_calls=2), full)
            and not _opens_after(cls, clock, dict(kw, window=10, min_calls=3), full)):
        return (" Yours waits for min_calls failures: min_calls counts the outcomes kept (len(outcomes) >= "
                "min_calls), failures or not.")
    if not _opens_after(cls, clock, dict(kw, window=10, min_calls=2), [False, True, True]):
        return (" Is it integer division? failures // len(outcomes) is 0 until every call has failed: "
                "use / for the share.")
    return ""


def _closed_window(cls, clock):
    kw = dict(consecutive_failures=100, failure_rate=0.5, window=12, min_calls=6, open_for=30.0,
              half_open_probes=1)
    d = _Driver(cls, kw, clock)
    outcomes = [True] * 30 + [False, True] * 5 + [False]          # the 11th new call makes 6 of the last 12
    for i, ok in enumerate(outcomes, start=1):
        d.call(float(i), ok)
        last = outcomes[max(0, i - kw["window"]):i]
        failed = last.count(False)
        should_open = i >= kw["min_calls"] and failed / len(last) >= kw["failure_rate"]
        state = d.state(float(i))
        if state == "open" and not should_open:
            if _opens_after(cls, clock, kw, [True, True, False] * 2):
                raise AssertionError(
                    f"Your breaker opened when {failed} of the last {len(last)} calls had failed "
                    f"({failed / len(last):.0%} < failure_rate=0.5); a fresh one opens after only 2 failures "
                    f"in 6 calls (33%). It looks like you divide the failures by the successes (2 / 4 = 50%); "
                    f"the failure rate is failures / all outcomes kept.\n{d.replay()}")
            raise AssertionError(
                f"Your breaker opened when {failed} of the last {len(last)} calls had failed "
                f"({failed / len(last):.0%} < failure_rate=0.5). The rate is counted over the last window=12 "
                f"calls (collections.deque(maxlen=window) keeps exactly those): is your window the right "
                f"length?\n{d.replay()}")
        if should_open and state != "open":
            if not _opens_after(cls, clock, kw, [True] * 6 + [False] * 6):
                raise AssertionError(
                    f"{failed} of the last 12 calls failed (50%), so the breaker must open; yours is still "
                    f"{state!r}, and a fresh one stays closed after 6 successes then 6 failures too. Your rate "
                    f"rule seems to judge only when exactly min_calls=6 outcomes are kept: it applies whenever "
                    f"at least min_calls are kept (len(outcomes) >= min_calls).\n{d.replay()}")
            total = outcomes[:i].count(False)
            raise AssertionError(
                f"{failed} of the last 12 calls failed (50%), so the breaker must open; yours is still "
                f"{state!r}. It looks like you count all {i} calls since it closed ({total} failed, "
                f"{total / i:.0%}): keep only the last `window` calls (collections.deque(maxlen=window) drops "
                f"the oldest by itself).\n{d.replay()}")
        if should_open:
            return


def _closed_consecutive(cls, clock):
    kw = dict(consecutive_failures=3, failure_rate=1.0, window=20, min_calls=20, open_for=30.0,
              half_open_probes=1)
    d = _Driver(cls, kw, clock)
    for t in (1.0, 2.0):
        d.call(t, False)
    if d.state(2.0) != "closed":
        raise AssertionError("Your breaker opened after 2 failures in a row, but consecutive_failures=3.\n"
                             + d.replay())
    d.call(3.0, True)
    for t in (4.0, 5.0):
        d.call(t, False)
    if d.state(5.0) != "closed":
        raise AssertionError("4 failures so far, but never 3 in a row (a success came between): your breaker "
                             "counts all failures, not failures *in a row*. A success must reset the count to "
                             "zero.\n" + d.replay())
    d.call(6.0, False)
    if d.state(6.0) != "open":
        d.call(7.0, False)
        if d.state(7.0) == "open":
            raise AssertionError("Off by one: it must open on the 3rd failure in a row "
                                 "(failures in a row >= consecutive_failures), yours waited for the 4th.\n"
                                 + d.replay())
        raise AssertionError("3 failures in a row and consecutive_failures=3, yet your breaker is not open. "
                             "min_calls (20 here) gates only the failure-rate rule: the failures-in-a-row rule "
                             "opens the breaker however few calls were made.\n" + d.replay())


def _half_open_soon(cls, clock) -> bool:
    """Whether a fresh breaker opened at 100 by 2 failures in a row (open_for=30) is half-open at 100.5."""
    probe = _Driver(cls, dict(_OPEN_KW), clock)
    probe.call(99.0, False)
    probe.call(100.0, False)
    return probe.state(100.5) == "half-open"


def _closed_rate_opens_now(cls, clock) -> _Driver:
    """10 failures in 10 calls, at 1000 to 1009: the failure-rate rule opens the breaker at 1009."""
    kw = dict(consecutive_failures=100, failure_rate=0.5, window=10, min_calls=10, open_for=30.0,
              half_open_probes=1)
    d = _Driver(cls, kw, clock)
    for i in range(10):
        d.call(1000.0 + i, False)
    state = d.state(1009.5)
    if state == "half-open" and _half_open_soon(cls, clock):
        raise AssertionError("Opened at 1009 with open_for=30, your breaker is half-open at 1009.5, and one "
                             "opened by failures in a row is half-open 0.5 s after it opened too: open_for is in "
                             "seconds, like `now` (no / 1000).\n" + d.replay())
    if state == "half-open":
        raise AssertionError("Opened by the failure-rate rule at 1009, your breaker is half-open at 1009.5, as "
                             "if it had opened long ago: when the rate rule opens it, set opened_at = now too "
                             "(both rules open the breaker the same way).\n" + d.replay())
    d.expect("state(1009.5)", state, "open", "10 failures in 10 calls open the breaker (failure_rate=0.5).")
    return d


@_TASKS.check(1, "CircuitBreaker")
def closed_rules(cls) -> None:
    """Task 1: the closed state's two rules, min_calls, the window, and >=."""
    _own_state(cls)
    for scenario in (_closed_min_calls, _closed_rate_opens_now, _closed_rate_equal, _closed_consecutive,
                     _closed_window):
        _with_clock_diagnosis(cls, scenario)
    fb.ok("closed: opens on consecutive_failures failures in a row, or when at least failure_rate of the last "
          "`window` calls failed once min_calls are counted, and not before")


# --- task 2: open, then half-open ---------------------------------------------------------------
_OPEN_KW = dict(consecutive_failures=2, failure_rate=1.0, window=20, min_calls=20, open_for=30.0,
                half_open_probes=1)


def _opened_at_100(cls, clock, kw=None):
    d = _Driver(cls, kw or _OPEN_KW, clock)
    d.call(99.0, False)
    d.call(100.0, False)
    if d.state(100.0) != "open":
        raise AssertionError("Two failures in a row with consecutive_failures=2 should open the breaker "
                             "(check.closed_rules first).\n" + d.replay())
    return d


def _open_timer(cls, clock):
    d = _opened_at_100(cls, clock)
    if d.allow(100.5):
        raise AssertionError("Your breaker let a call through while open: allow(now) must return False while "
                             "it is open, so callers fail fast.\n" + d.replay())
    for t in range(101, 130):
        if d.state(float(t)) != "open":
            raise AssertionError(f"Your breaker left the open state after only {t - 100} s; open_for=30 s, so "
                                 f"it stays open until 130.\n{d.replay()}")
        if d.allow(float(t)):
            raise AssertionError("Your breaker let a call through while open.\n" + d.replay())
    state = d.state(130.0)
    if state == "half-open":
        return
    # what went wrong? look at a fresh breaker left alone while open
    fresh = _opened_at_100(cls, clock)
    if fresh.state(130.0) == "half-open":
        raise AssertionError(
            "Every refused call restarted your open timer: left alone, your breaker is half-open at 130, but "
            "after calls refused at 101, 102... 129 it is still open. open_for counts from the moment it "
            "opened (the record that opened it), not from the last refused call: under steady traffic "
            "yours would never go half-open.\n" + d.replay())
    if fresh.state(130.000001) == "half-open":
        raise AssertionError("At exactly opened_at + open_for (100 + 30 = 130) the breaker is half-open: "
                             "compare with >=, not >.\n" + fresh.replay())
    if fresh.state(100_000.0) == "open":
        raise AssertionError("Stuck open: your breaker never goes half-open, even 100 000 s after it opened. "
                             "From opened_at + open_for on, state(now) must say 'half-open' (work it out from "
                             "`now`, no timer needed).\n" + fresh.replay())
    raise AssertionError(f"At 130 (opened at 100, open_for=30) the breaker must be half-open, yours says "
                         f"{state!r}.\n{d.replay()}")


def _open_late_results(cls, clock):
    d = _Driver(cls, _OPEN_KW, clock)
    d.call(99.0, False)                  # fails at once
    d.allow(99.5)                        # two slow calls, let through while closed
    d.allow(99.7)
    d.call(100.0, False)                 # opens it
    d.record(101.0, False)               # a slow call's failure arrives while open
    if d.state(101.0) != "open":
        raise AssertionError("A result that arrives while the breaker is open (from a call let through before "
                             "it opened) must be ignored.\n" + d.replay())
    d.record(102.0, True)                # the other slow call's success
    if d.state(102.0) != "open":
        raise AssertionError("A late success closed (or changed) your open breaker: results that arrive "
                             "while it is open must be ignored; only probes in half-open can close it.\n"
                             + d.replay())
    state = d.state(130.0)
    if state != "half-open":
        if d.state(131.0) == "half-open":
            raise AssertionError("Your open timer runs from the last failure (101, a late result) instead of "
                                 "the moment the breaker opened (100): it must be half-open at 130.\n"
                                 + d.replay())
        raise AssertionError(f"Opened at 100 with open_for=30, the breaker must be half-open at 130 even "
                             f"when late results arrived while it was open; yours says {state!r}.\n"
                             f"{d.replay()}")


def _open_after_the_rate_rule(cls, clock):
    d = _closed_rate_opens_now(cls, clock)
    d.expect("state(1038.9)", d.state(1038.9), "open", "Opened by the failure-rate rule at 1009, with open_for=30.")
    d.expect("state(1039.0)", d.state(1039.0), "half-open", "Opened by the failure-rate rule at 1009, with "
             "open_for=30: half-open from 1039 on, as when the failures-in-a-row rule opens it.")


def _open_allow_moves(cls, clock):
    """allow(130), with nobody calling state() first, must see that the breaker is half-open: letting the
    probe through is task 3's, so a refusal passes here when the breaker is half-open all the same and
    still refuses once state() has been asked (a class written up to task 2)."""
    d = _opened_at_100(cls, clock)
    if d.allow(130.0) or d.state(130.0) != "half-open" or not d.allow(130.0):
        return
    raise AssertionError("allow(130) (opened at 100, open_for=30) refused the call, yet once state(130) was "
                         "asked, allow(130) let a probe through: allow must notice by itself that open_for has "
                         "passed, even when nobody called state() first.\n" + d.replay())


@_TASKS.check(2, "CircuitBreaker")
def open_state(cls) -> None:
    """Task 2: fail fast while open; half-open from exactly opened_at + open_for, measured from the
    opening; late results ignored; only ``now`` counts."""
    _own_state(cls)
    for scenario in (_open_timer, _open_allow_moves, _open_late_results, _open_after_the_rate_rule):
        _with_clock_diagnosis(cls, scenario)
    fb.ok("open: refuses every call, and is half-open exactly open_for after it opened, whatever came in between")


# --- task 3: half-open probes ---------------------------------------------------------------------
_HALF_KW = dict(consecutive_failures=2, failure_rate=1.0, window=20, min_calls=20, open_for=10.0,
                half_open_probes=3)


def _half_open_at_110(cls, clock):
    d = _opened_at_100(cls, clock, _HALF_KW)
    for k in range(1, 4):
        if not d.allow(110.0 + k / 100):
            raise AssertionError(
                f"Half-open with half_open_probes=3, your breaker let only {k - 1} probe{'s' * (k != 2)} through; "
                f"the first 3 calls must be allowed.\n{d.replay()}")
    return d


def _half_probes_limited(cls, clock):
    d = _half_open_at_110(cls, clock)
    for t in (110.04, 110.05, 111.0, 115.0):
        if d.allow(t):
            if t == 110.04 and not d.allow(110.05):
                raise AssertionError(
                    "One probe too many: your breaker let 4 calls through in half-open, with half_open_probes=3, "
                    "then refused: compare the probes let through with <, not <=.\n" + d.replay())
            raise AssertionError(
                "Unlimited probes: your breaker let a 4th call through in half-open, with half_open_probes=3. "
                "Count the calls allowed since it became half-open and refuse the rest, or a recovering "
                "dependency gets the full load at once.\n" + d.replay())
    d.expect("state(115.0)", d.state(115.0), "half-open",
             "With probes still out and no result yet, the breaker stays half-open.")


def _half_all_succeed(cls, clock):
    d = _half_open_at_110(cls, clock)
    d.record(110.2, True)
    if d.state(110.2) == "closed":
        raise AssertionError("Your breaker closed after the first successful probe; with half_open_probes=3 "
                             "it closes only when all 3 probes have succeeded.\n" + d.replay())
    d.record(110.3, True)
    d.expect("state(110.3)", d.state(110.3), "half-open", "Two of three probes have succeeded.")
    d.record(110.4, True)
    if d.state(110.4) != "closed":
        raise AssertionError("All 3 probes succeeded (half_open_probes=3): the breaker must close.\n"
                             + d.replay())


def _half_failure_reopens(cls, clock):
    d = _half_open_at_110(cls, clock)
    d.record(110.5, False)
    state = d.state(110.5)
    if state == "half-open":
        if d.allow(110.5):
            raise AssertionError("A failed probe reopened your breaker with its old timer (opened at 100, "
                                 "open_for=10), so it is half-open again at once and lets new probes through: "
                                 "the new open period starts at the failed probe (110.5).\n" + d.replay())
        raise AssertionError("A failed probe left your breaker half-open: a half-open failure must reopen "
                             "it at once (the dependency is still sick).\n" + d.replay())
    if state == "closed":
        raise AssertionError("A failed probe closed your breaker: it must open it again.\n" + d.replay())
    d.record(110.6, True)               # the other two probes come back while open: ignored
    d.record(110.7, True)
    d.expect("state(110.7)", d.state(110.7), "open",
             "Results that arrive while open (here the other probes) must be ignored.")
    if d.state(120.4) != "open":
        raise AssertionError("Reopened at 110.5 by a failed probe, the breaker must stay open until "
                             "110.5 + open_for = 120.5; yours is half-open already: the new open period starts "
                             "at the failed probe, not at the first opening (100).\n" + d.replay())
    if d.state(120.5) != "half-open":
        raise AssertionError("Reopened at 110.5 with open_for=10, the breaker must be half-open again at "
                             "120.5.\n" + d.replay())
    for k in range(3):
        if not d.allow(120.5 + k / 100):
            raise AssertionError("Half-open again, your breaker refused a probe: it must allow "
                                 "half_open_probes=3 new probes each time it becomes half-open (reset the "
                                 "probe count).\n" + d.replay())
    if d.allow(120.6):
        raise AssertionError("Unlimited probes: a 4th call got through in the second half-open period.\n"
                             + d.replay())


def _half_one_success_of_three(cls, clock):
    d = _opened_at_100(cls, clock, _HALF_KW)
    d.allow(110.0)
    d.record(110.1, True)                   # the first probe came back before the others were sent
    if d.state(110.1) == "closed":
        raise AssertionError("Your breaker closed after 1 successful probe of half_open_probes=3, because the "
                             "only probe let through so far had succeeded: close when half_open_probes probes "
                             "have succeeded, however many are still out.\n" + d.replay())
    d.expect("state(110.1)", d.state(110.1), "half-open", "1 probe of 3 has succeeded.")
    d.allow(110.2)
    d.allow(110.3)                          # probes 2 and 3: all 3 have been let through
    if d.allow(110.4):
        raise AssertionError("A 4th probe got through with half_open_probes=3: your breaker limits the probes "
                             "still out (a success freed a place), not the probes let through since it became "
                             "half-open. Count every probe allowed, and refuse once half_open_probes have "
                             "been.\n" + d.replay())


def _half_successes_afresh(cls, clock):
    d = _half_open_at_110(cls, clock)
    d.record(110.1, True)
    d.record(110.2, True)
    d.record(110.3, False)                  # two probes succeeded, the third failed: open again at 110.3
    d.expect("state(110.3)", d.state(110.3), "open", "A failed probe opens the breaker again.")
    d.allow(120.3)                          # half-open again: 3 new probes are needed
    d.record(120.4, True)
    if d.state(120.4) == "closed":
        raise AssertionError("Your breaker closed after 1 successful probe in its second half-open period: the "
                             "2 successes of the first period still counted. Each time it becomes half-open, "
                             "count its probes and their successes from zero.\n" + d.replay())
    d.expect("state(120.4)", d.state(120.4), "half-open", "1 probe of 3 has succeeded since it became half-open.")


@_TASKS.check(3, "CircuitBreaker")
def half_open(cls) -> None:
    """Task 3: a limited number of probes; all succeed -> closed; one fails -> open again, afresh."""
    _own_state(cls)
    for scenario in (_half_probes_limited, _half_all_succeed, _half_one_success_of_three, _half_failure_reopens,
                     _half_successes_afresh):
        _with_clock_diagnosis(cls, scenario)
    fb.ok("half-open: 3 probes at most; closes when all 3 succeed, reopens (with a new timer) when one fails")


# --- task 4: starting afresh when it closes --------------------------------------------------------
def _reset_consecutive(cls, clock):
    kw = dict(consecutive_failures=3, failure_rate=1.0, window=20, min_calls=20, open_for=10.0,
              half_open_probes=1)
    d = _Driver(cls, kw, clock)
    for t in (1.0, 2.0, 3.0):
        d.call(t, False)
    d.expect("state(3.0)", d.state(3.0), "open", "3 failures in a row (check.closed_rules first).")
    d.call(13.0, True)                      # the probe succeeds
    d.expect("state(13.0)", d.state(13.0), "closed", "The only probe succeeded (check.half_open first).")
    d.call(14.0, False)
    if d.state(14.0) != "closed":
        raise AssertionError("Counts not reset on close: one failure after closing opened your breaker again, "
                             "because the 3 failures from before still counted. When it closes, start "
                             "afresh: no failures in a row, an empty window.\n" + d.replay())
    d.call(15.0, False)
    d.expect("state(15.0)", d.state(15.0), "closed", "Only 2 failures in a row since it closed.")
    d.call(16.0, False)
    d.expect("state(16.0)", d.state(16.0), "open", "3 failures in a row since it closed.")


def _reset_window(cls, clock):
    kw = dict(consecutive_failures=100, failure_rate=0.5, window=10, min_calls=10, open_for=10.0,
              half_open_probes=1)
    d = _Driver(cls, kw, clock)
    for i in range(1, 11):
        d.call(float(i), False)
    d.expect("state(10.0)", d.state(10.0), "open", "10 failures in 10 calls (check.closed_rules first).")
    d.call(20.0, True)
    d.expect("state(20.0)", d.state(20.0), "closed", "The only probe succeeded (check.half_open first).")
    d.call(21.0, False)
    if d.state(21.0) != "closed":
        raise AssertionError("Counts not reset on close: your breaker opened on the first failure after "
                             "closing, judging the 10 old failures still in its window. When it closes, empty "
                             "the window: the rate rule waits again for min_calls new calls.\n" + d.replay())
    for i in range(22, 30):
        d.call(float(i), True)
    d.expect("state(29.0)", d.state(29.0), "closed", "1 failure in 9 calls since it closed.")
    for i in range(30, 35):
        d.call(float(i), False)
    if d.state(34.0) != "open":
        raise AssertionError("After closing, your window no longer keeps only the last window=10 calls: 5 of the "
                             "last 10 failed (50%), yet it judged all 14 since it closed. Empty the window in "
                             "place (self._failed.clear()); a new deque() without maxlen=window grows for "
                             "ever.\n" + d.replay())


@_TASKS.check(4, "CircuitBreaker")
def reset_on_close(cls) -> None:
    """Task 4: closing clears the failures in a row and the window."""
    _own_state(cls)
    for scenario in (_reset_consecutive, _reset_window):
        _with_clock_diagnosis(cls, scenario)
    fb.ok("closing starts afresh: old failures neither count in a row nor in the window")


# --- task 5: the whole machine against the course's breaker -----------------------------------------
def _random_config(rng: random.Random) -> dict:
    window = rng.randint(3, 12)
    return dict(consecutive_failures=rng.randint(2, 6), failure_rate=rng.choice((0.3, 0.5, 0.6, 1.0)),
                window=window, min_calls=rng.randint(2, window), open_for=float(rng.choice((5, 10, 30))),
                half_open_probes=rng.randint(1, 3))


def _compare(cls, seed: int, clock: _Clock | None = None, steps: int = 80, holder: list | None = None) -> None:
    """Random sequence number ``seed``, step by step against the course's breaker (the learner's driver
    goes into ``holder``, for :func:`show_sequence`)."""
    rng = random.Random(seed)
    kw = _random_config(rng)
    mine, ref = _Driver(cls, kw, clock), _Reference(**kw)
    if holder is not None:
        holder.append(mine)
    now, p_fail = 0.0, rng.choice((0.1, 0.5, 0.9))

    def differ(text, want, got):
        mine.lines[-1] += f"  (course: {want!r})"
        raise AssertionError(
            f"{text} should be {want!r} here (the course's breaker says so), yours gave {got!r}. "
            f"This is random sequence {seed}: check.show_sequence(CircuitBreaker, {seed}) prints all its calls "
            f"with both breakers' answers.\n{mine.replay()}")

    for _ in range(steps):
        now = round(now + rng.choice((0.5, 1.0, 2.0, 4.0, 8.0)), 3)
        if rng.random() < 0.1:
            p_fail = rng.choice((0.05, 0.5, 0.95))
        burst = rng.choice((1, 1, 1, 2, 3))               # calls sent at once, answered a moment later
        allowed = []
        for k in range(burst):
            at = round(now + k * 0.01, 3)
            want, got = bool(ref.allow(at)), mine.allow(at)     # the course's gives a Permit: truthy
            if got != want:
                differ(f"allow({_fmt(at)})", want, got)
            if got:
                allowed.append(rng.random() >= p_fail)
        for k, success in enumerate(allowed):
            at = round(now + 0.1 + k * 0.01, 3)
            ref.record(at, success)
            mine.record(at, success)
            want, got = ref.state(at), mine.state(at)
            if got != want:
                differ(f"state({_fmt(at)})", want, got)


#: The spec's defaults: the lab's task 6 builds CircuitBreaker(consecutive_failures=5, open_for=5.0,
#: half_open_probes=1) and counts on the others.
SPEC_DEFAULTS = dict(consecutive_failures=5, failure_rate=0.5, window=20, min_calls=10, open_for=30.0,
                     half_open_probes=3)


def _spec_defaults(cls) -> None:
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    off = [f"{name}={want!r} (yours: {'none' if name not in params or params[name].default is inspect.Parameter.empty else repr(params[name].default)})"
           for name, want in SPEC_DEFAULTS.items()
           if name not in params or params[name].default is inspect.Parameter.empty or params[name].default != want]
    if off:
        raise AssertionError("Your breaker's __init__ does not keep the spec's defaults: " + ", ".join(off) +
                             ". The lab's task 6 builds CircuitBreaker(consecutive_failures=5, open_for=5.0, "
                             "half_open_probes=1) and counts on the rest: keep the defaults of the class line "
                             "you were given.")


@_TASKS.check(5, "CircuitBreaker", quick={"runs": 40})
def against_reference(cls, *, runs: int = 200) -> None:
    """Task 5: random call sequences (random settings, error rates, bursts of calls), compared step by
    step with :class:`resilience_sim.policies.CircuitBreaker`, which follows the same spec; then the
    spec's defaults, which task 6 relies on."""
    _own_state(cls)
    for seed in range(runs):
        _with_clock_diagnosis(cls, lambda c, clock, s=seed: _compare(c, s, clock))
    _spec_defaults(cls)
    fb.ok(f"{runs} random call sequences: your breaker agrees with the course's at every step")


def show_sequence(cls, seed: int) -> None:
    """Print every call of random sequence ``seed`` of :func:`against_reference`, up to the first answer
    where the learner's breaker and the course's differ (marked with the course's answer)."""
    holder: list = []
    try:
        _compare(cls, seed, holder=holder)
        verdict = f"sequence {seed}: your breaker and the course's agree at every step"
    except AssertionError as err:
        verdict = str(err).split("\n", 1)[0]
    if holder:
        print("\n".join(holder[0].lines))
    print(f"# {verdict}")


# --- task 6: a breaker at work, with plain numbers -------------------------------------------------
def _reference_run_calls(breaker, times, is_up):
    sent = failed = refused = 0
    for t in times:
        if breaker is not None and not breaker.allow(t):
            refused += 1
            continue
        sent += 1
        ok = is_up(t)
        failed += not ok
        if breaker is not None:
            breaker.record(t, ok)
    return sent, failed, refused


class _Spy:
    """A breaker (the course's) that notes how it is used, to check the calling protocol."""

    def __init__(self, up, **kw):
        self.inner, self.up = _Reference(**kw), up
        self.errors: list[str] = []
        self.pending: set = set()
        self.allows = self.records = 0
        self.refused_last = None            # the now of the last allow, when it refused
        self.asked: Counter = Counter()     # allow(now) calls, by now
        self.opposite: list = []            # (now, success) recorded the other way round from is_up(now)

    def state(self, now):
        return self.inner.state(now)

    def allow(self, now):
        self.allows += 1
        ok = bool(self.inner.allow(now))    # the task's allow gives True or False, not the course's Permit
        if ok:
            self.pending.add(now)
        self.refused_last = None if ok else now
        self.asked[now] += 1
        return ok

    def record(self, now, success):
        self.records += 1
        if now not in self.pending:
            if self.pending:                # a call is out, recorded at another time: not passed on
                self.errors.append(f"record({_fmt(now)}, {success}) for the call let through at "
                                   f"{_fmt(max(self.pending))}: record each result with the t of its call, "
                                   f"breaker.record(t, ok)")
                return
            self.errors.append(f"record({_fmt(now)}, {success}) for a call that allow({_fmt(now)}) refused "
                               f"(or was never asked)")
        self.pending.discard(now)
        if fb.is_bool(success) and bool(success) != self.up(now):
            self.opposite.append((now, bool(success)))
        self.inner.record(now, success)


@_TASKS.check(6, "run_calls")
def run_calls(fn) -> None:
    """Task 6: ``run_calls(breaker, times, is_up) -> (sent, failed, refused)``."""
    if not callable(fn):
        raise AssertionError(f"pass the function itself, e.g. check.run_calls(run_calls); got {fn!r}")
    times = [i / 10 for i in range(600)]

    def down_window(lo, hi):
        return lambda t: not lo <= t < hi

    cases = [(None, down_window(10, 30)), (dict(consecutive_failures=5, open_for=5.0), down_window(10, 30)),
             (dict(consecutive_failures=3, open_for=2.0, half_open_probes=2), down_window(5, 50)),
             (dict(failure_rate=0.5, window=10, min_calls=10, open_for=3.0), lambda t: int(t * 10) % 3 != 0)]
    for kw, up in cases:
        asked = []

        def is_up(t, up=up):
            asked.append(t)
            return up(t)
        spy = None if kw is None else _Spy(up, **kw)
        label = "no breaker" if kw is None else f"CircuitBreaker({_kwargs(kw)})"
        want = _reference_run_calls(None if kw is None else _Reference(**kw), times, up)
        given = list(times)
        with fb.learner_code("run_calls", f"run_calls({label}, ...)",
                             lambda exc: ". With no breaker, `breaker` is None: call the dependency every time."
                             if kw is None and isinstance(exc, AttributeError) else ".",
                             stuck="a loop with no end, or a wait? Go through `times` once, in order: a refused "
                                   "call is counted and skipped, not retried or waited for."):
            got = fn(spy, given, is_up)
        if given != times:
            how = (f"it held {len(times)} times, {len(given)} after your call: pop, remove?"
                   if len(given) != len(times) else "the same times in another order: sort, reverse?")
            raise AssertionError(f"With {label}, your run_calls changed `times` ({how}): loop over it, "
                                 f"`for t in times:`, and leave the caller's list as it was.")
        if got is None:
            raise AssertionError("run_calls returned None: did you forget `return sent, failed, refused`?")
        twice = sorted(t for t, n in Counter(asked).items() if n > 1)
        if twice:
            raise AssertionError(f"With {label}, your run_calls called is_up({_fmt(twice[0])}) "
                                 f"{asked.count(twice[0])} times. is_up(t) is the call: call it once per time "
                                 f"and keep its result, ok = is_up(t), then use that ok to count (and record) "
                                 f"it. Calling it again sends the request again, and may not give the same "
                                 f"answer.")
        if spy is not None and spy.opposite and len(spy.opposite) == spy.records:
            at, success = spy.opposite[0]
            raise AssertionError(f"With {label}, your run_calls recorded record({_fmt(at)}, {success}), but "
                                 f"is_up({_fmt(at)}) returned {not success}, and every result you recorded is "
                                 f"the other way round: did you record the opposite of the result? "
                                 f"record(t, success) takes success, True when the call worked: "
                                 f"breaker.record(t, ok) with ok = is_up(t).")
        if spy is not None:
            if spy.allows < len(times):
                stopped = "" if spy.refused_last is None else (
                    f" Yours stopped at the first refused call (allow({_fmt(spy.refused_last)}) was False): a "
                    f"`break`? Count the refusal and go on with the next t (`continue`).")
                raise AssertionError(f"With {label}, ask breaker.allow(t) before every call: yours asked "
                                     f"{spy.allows} times for {len(times)} calls.{stopped}")
            twice = sorted(t for t, n in spy.asked.items() if n > 1)
            if twice:
                raise AssertionError(f"With {label}, your run_calls asked allow({_fmt(twice[0])}) "
                                     f"{spy.asked[twice[0]]} times for one call. Each allow that returns True lets "
                                     f"a call through (in half-open, it spends a probe): ask once per call and "
                                     f"keep the answer.")
            if spy.errors:
                why = ("" if "with the t of its call" in spy.errors[0] else
                       " Record only the calls the breaker let through; a refused call never reached the "
                       "dependency, so it has no result (recording it as a failure keeps a half-open breaker "
                       "from ever closing).")
                raise AssertionError(f"With {label}: {spy.errors[0]}.{why}")
            if spy.pending:
                n = len(spy.pending)
                raise AssertionError(f"With {label}, {n} call{'s were' if n > 1 else ' was'} let through but "
                                     f"{'their results were' if n > 1 else 'its result was'} never recorded: call "
                                     f"breaker.record(t, ok) after each one.")
        if len(asked) != want[0]:
            if spy is not None and spy.opposite:
                at, success = spy.opposite[0]
                why = (f" Some results were recorded the other way round (record({_fmt(at)}, {success}) where "
                       f"is_up({_fmt(at)}) returned {not success}): did you record the opposite of the result? "
                       f"breaker.record(t, ok), with ok = is_up(t).")
            elif len(asked) > want[0] and spy is not None:
                why = " When allow(t) is False, fail fast: don't call it."
            elif spy is None:
                why = " With no breaker, every call is made: call is_up(t) once for each t in times."
            else:
                why = " When allow(t) is True, make the call: ok = is_up(t)."
            raise AssertionError(f"With {label}, the dependency should be called {want[0]} times, yours called "
                                 f"it {len(asked)} times.{why}")
        try:
            got = tuple(got)
        except TypeError:
            raise AssertionError(f"run_calls should return a tuple (sent, failed, refused), got {got!r}") from None
        if got != want:
            hint = ""
            if len(got) == 3 and got[0] == want[0] and got[2] == want[2] and got[1] == want[1] + want[2]:
                hint = (" You counted the refused calls as failed too: `failed` counts the calls that were made "
                        "and failed; refused calls have their own count, and they never reached the dependency.")
            elif len(got) == 3 and got[0] == want[0] + want[2] and got[1:] == want[1:]:
                hint = " You counted the refused calls as sent too: `sent` counts only the calls actually made."
            elif len(got) == 3 and got[0] == want[0] and got[2] == want[2] and got[1] == want[0] - want[1]:
                hint = (" You counted the calls that worked as failed: did you count the opposite of the result? "
                        "failed += not ok.")
            elif len(got) == 3 and sorted(got) == sorted(want):
                hint = " The right numbers in another order: return (sent, failed, refused)."
            raise AssertionError(f"With {label}, (sent, failed, refused) should be {want}, yours gave {got}.{hint}")
    fb.ok("run_calls: asks the breaker before each call, fails fast when refused, records every result")
