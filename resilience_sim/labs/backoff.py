"""Checks for lab 02, backoff, jitter and a retry budget.

Each check takes the learner's function (or class), tries it on cases whose right answers come from
the course's own policies (:mod:`resilience_sim.policies`), and either prints one ✔ line or raises
``AssertionError`` with a message that says which case failed, what was expected and, when the
learner's answers match a typical mistake, what that mistake probably is and how to fix it.

Conventions the lab states and the checks hold the learner to (the same as the policies'):

* times are seconds (not milliseconds);
* ``attempt`` in a backoff counts *retries* from 1: the wait before retry ``n`` is
  ``min(cap, base * 2**n)`` (the AWS article's formula, so the first retry waits up to ``2 * base``);
* in ``should_retry``, ``attempt`` is the number of the attempt that just failed (1 = the first call)
  and ``max_attempts`` counts the first call;
* a retry budget allows a retry at ``now`` while the retries granted in the window
  ``(now - window, now]`` are fewer than ``min_retries + ratio * first attempts in that window``.

Each check first runs the earlier tasks' checks it needs, and :func:`uses` opens a cell that runs the
learner's code: a task left undone reads "Write task N first" (see :mod:`.availability`).

It also has the adapters that put the learner's pieces into the simulator: :func:`as_backoff` and
:func:`as_budget`.
"""
from __future__ import annotations

import inspect
import math
import random
from collections import deque

from ..core.reasons import check_reasons
from ..policies import RETRYABLE, Backoff, RetryBudget as _PolicyBudget
from . import feedback as fb
from .breaker import _Clock

__all__ = ["exponential_delay", "full_jitter", "retry_budget", "should_retry", "as_backoff", "as_budget",
           "uses", "NOT_RETRYABLE", "UNLISTED"]

_TASKS = fb.Tasks()
uses = _TASKS.uses


# --- task 1: capped exponential backoff ----------------------------------------------------------
def _exp(attempt, base, cap):
    return min(cap, base * 2 ** attempt)


_EXP_CASES = [(1, 0.1, 10.0), (2, 0.1, 10.0), (3, 0.1, 10.0), (6, 0.1, 10.0), (7, 0.1, 10.0), (20, 0.1, 10.0),
              (1, 1.0, 30.0), (4, 1.0, 30.0), (5, 1.0, 30.0), (40, 0.05, 2.0),
              (8, 0.01, 60.0), (12, 0.001, 60.0)]     # late attempts still below the cap

_EXP_MISTAKES = [
    (lambda a, b, c: b * 2 ** a, "Your delay has no cap: after 20 retries of 0.1 s it reaches 29 hours. "
     "Return min(cap, base * 2 ** attempt)."),
    (lambda a, b, c: _exp(a - 1, b, c), "Off by one in the attempt numbering: your delays are half the "
     "expected ones. Here attempt 1 is the first retry and waits base * 2**1, so use 2 ** attempt, "
     "not 2 ** (attempt - 1)."),
    (lambda a, b, c: b * 2 ** (a - 1), "Two mistakes: no cap (wrap it in min(cap, ...)) and an off-by-one "
     "(attempt 1 waits base * 2**1: use 2 ** attempt)."),
    (lambda a, b, c: _exp(a + 1, b, c), "Off by one in the attempt numbering: your delays are double the "
     "expected ones. Attempt 1 (the first retry) waits base * 2**1: use 2 ** attempt."),
    (lambda a, b, c: 1000 * _exp(a, b, c), "Your delays are 1000 times too large: milliseconds? base, cap "
     "and the delay are all in seconds here, as everywhere in the simulator."),
    (lambda a, b, c: max(c, b * 2 ** a), "max(cap, ...) makes the cap the *shortest* wait; the cap is the "
     "longest one: min(cap, base * 2 ** attempt)."),
    (lambda a, b, c: min(c, b * a), "Your delays grow linearly (base * attempt); backoff doubles at every "
     "retry: base * 2 ** attempt."),
    (lambda a, b, c: min(c, 2 * b * a), "Your delays grow linearly (2 * base * attempt); backoff doubles at "
     "every retry: base * 2 ** attempt."),
    (lambda a, b, c: min(c, b ** a), "base ** attempt raises the base to a power; the multiplier is 2: "
     "base * 2 ** attempt."),
    (lambda a, b, c: min(c, 2 ** a), "Your delays ignore base: multiply, base * 2 ** attempt."),
    (lambda a, b, c: min(c, b * 2 * a), "Your delays grow linearly (base * 2 * attempt): write the power, "
     "base * 2 ** attempt."),
    (lambda a, b, c: min(b, c * 2 ** a), "base and cap look swapped: your delays never grow past base. The "
     "function is exponential_delay(attempt, base, cap): double base, and cap the result, "
     "min(cap, base * 2 ** attempt)."),
]


@_TASKS.check(1, "exponential_delay")
def exponential_delay(fn) -> None:
    """Check ``exponential_delay(attempt, base, cap)``: ``min(cap, base * 2**attempt)`` seconds."""
    name = "exponential_delay"
    got = [fb.real(fb.call(fn, name, *c), fb.show(name, c)) for c in _EXP_CASES]
    again = [fb.real(fb.call(fn, name, *c), fb.show(name, c)) for c in _EXP_CASES]
    if got != again:
        raise AssertionError(f"{name} gave different delays for the same attempt when called twice: task 1 "
                             f"has no jitter (that is task 2), so the same attempt always waits the same.")
    for args, g in zip(_EXP_CASES, got):
        want = _exp(*args)
        if not fb.close(g, want, 1e-9):
            a, b, c = args
            message = (f"{fb.show(name, args)} should be {fb.fmt(want)} s (min({fb.fmt(c)}, {fb.fmt(b)} * 2**{a})), "
                       f"yours gave {fb.fmt(g)}.")
            hint = next((h for f, h in _EXP_MISTAKES
                         if all(fb.close(x, f(*case), 1e-9) for case, x in zip(_EXP_CASES, got))), None)
            if hint is None and fb.close(g, c, 1e-9) and want < c:
                hint = (f"You returned the cap at attempt {a}, where {fb.fmt(b)} * 2**{a} = {fb.fmt(want)} s is "
                        f"still below it: when the cap is reached depends on base and cap, not on a fixed "
                        f"attempt (the table's 7th retry holds for base 0.1 s and cap 10 s only). Let min() "
                        f"decide: min(cap, base * 2 ** attempt).")
            raise AssertionError(message + (f" {hint}" if hint else ""))
    fb.ok(f"{name}: base 0.1 s and cap 10 s wait 0.2, 0.4, 0.8 … s and never more than 10 s "
        f"(from the 7th retry on)")


# --- task 2: full jitter --------------------------------------------------------------------------
#: (attempt, base, cap): two uncapped ceilings and one capped one
_JITTER_CASES = [(1, 0.1, 10.0), (3, 0.1, 10.0), (10, 0.1, 5.0)]
_JITTER_DRAWS = 4000


def _jitter_hint(exc) -> str:
    """Advice for an exception in full_jitter: a float where rng belongs means the parameters are in
    another order than (attempt, rng, base, cap)."""
    text = str(exc)
    if (isinstance(exc, AttributeError) and ("uniform" in text or "random" in text)) or \
            (isinstance(exc, TypeError) and "Random" in text):
        return (". The check calls full_jitter(attempt, rng, base, cap), in that order, as the simulator "
                "does: is your `def` line in the same order?")
    return fb.signature_hint("full_jitter")(exc)


def _jitter_call(fn, name, attempt, rng, base, cap):
    with fb.learner_code(name, fb.show(name, (attempt, rng, base, cap)), _jitter_hint):
        return fn(attempt, rng, base, cap)


def _draws(fn, name, args, rng, n):
    attempt, base, cap = args
    return [fb.real(_jitter_call(fn, name, attempt, rng, base, cap), fb.show(name, (attempt, rng, base, cap)))
            for _ in range(n)]


#: Wrong ranges people write, each as the interval its draws cover: (lo, hi) from (attempt, base, cap).
_JITTER_RANGES = [
    (lambda a, b, c: (0.0, 1000 * _exp(a, b, c)), "Your waits are 1000 times too long: milliseconds? Everything "
     "here is in seconds."),
    (lambda a, b, c: (0.0, b * 2 ** a), "Your waits have no cap: the ceiling is min(cap, base * 2 ** attempt)."),
    (lambda a, b, c: (0.0, _exp(a - 1, b, c)), "Your waits never exceed half the ceiling: off by one in the "
     "attempt numbering (use 2 ** attempt, as in task 1) or a stray / 2."),
    (lambda a, b, c: (0.0, _exp(a + 1, b, c)), "Your waits reach twice the ceiling: off by one in the attempt "
     "numbering (use 2 ** attempt, as in task 1)."),
    (lambda a, b, c: (_exp(a, b, c) / 2, _exp(a, b, c)), "Your waits never go below half the ceiling: that is "
     "\"equal jitter\". Full jitter draws from the whole range: rng.uniform(0, ceiling)."),
    (lambda a, b, c: (b, _exp(a, b, c)), "Your waits never go below base: full jitter starts at 0, "
     "rng.uniform(0, ceiling)."),
    (lambda a, b, c: (_exp(a, b, c), 2 * _exp(a, b, c)), "You added the jitter on top of the ceiling "
     "(ceiling + random): waits go past the cap and clients stay bunched. Draw the whole wait: "
     "rng.uniform(0, ceiling)."),
    (lambda a, b, c: (0.0, c), "Your waits ignore the attempt: they are drawn below cap every time. The "
     "ceiling grows with the attempt: min(cap, base * 2 ** attempt)."),
    (lambda a, b, c: (0.0, b), "Your waits never exceed base: the ceiling grows with the attempt, "
     "min(cap, base * 2 ** attempt). If you wrote min(base, cap * 2 ** attempt), base and cap are swapped: "
     "the function is full_jitter(attempt, rng, base, cap)."),
    (lambda a, b, c: (-_exp(a, b, c), _exp(a, b, c)), "Some of your waits are negative (you drew between "
     "-ceiling and +ceiling): draw rng.uniform(0, ceiling)."),
    (lambda a, b, c: (0.0, 1.0), "Your waits are between 0 and 1 whatever the attempt: you returned the "
     "random fraction itself; multiply it by the ceiling (or use rng.uniform(0, ceiling))."),
]


def _reseeds(fn, name) -> bool:
    """Whether one call leaves two differently seeded generators in the same state (``rng.seed(...)``)."""
    first, second = random.Random(7), random.Random(8)
    _jitter_call(fn, name, 3, first, 0.1, 10.0)
    _jitter_call(fn, name, 3, second, 0.1, 10.0)
    return first.getstate() == second.getstate()


#: (attempt, base, cap) with a 0.02 s ceiling, the first one of the lab's contention run (base 0.01 s)
_FINE_CASE, _FINE_DRAWS, _FINE_VALUES = (1, 0.01, 10.0), 400, 10


def _not_rounded(fn, name) -> None:
    """A wait rounded to a few decimals leaves a short ceiling only a handful of values: the clients it
    should spread out keep colliding."""
    rng = random.Random(13)
    xs = _draws(fn, name, _FINE_CASE, rng, _FINE_DRAWS)
    values = sorted(set(xs))
    if len(values) < _FINE_VALUES:
        shown = f"{name}({_FINE_CASE[0]}, rng, {fb.fmt(_FINE_CASE[1])}, {fb.fmt(_FINE_CASE[2])})"
        raise AssertionError(
            f"{shown}, whose ceiling is 0.02 s, gave only {len(values)} different waits in {_FINE_DRAWS} draws "
            f"({', '.join(fb.fmt(v) for v in values[:5])}{' …' if len(values) > 5 else ''}): did you round the "
            f"wait? With short ceilings (the lab's contention run starts at base 0.01 s) rounding puts many "
            f"clients on the same wait, and they collide again. Return the draw as it is.")


def _covers(lo, hi, interval) -> bool:
    """Whether draws spanning [lo, hi] look like a uniform draw over ``interval`` (4000 draws reach
    within about 0.1% of each end; 1.5% of the width is generous)."""
    a, b = interval
    slack = 0.015 * (b - a) + 1e-12
    return abs(lo - a) <= slack and abs(hi - b) <= slack


@_TASKS.check(2, "full_jitter", uses=("exponential_delay",))
def full_jitter(fn) -> None:
    """Check ``full_jitter(attempt, rng, base, cap)``: ``rng.uniform(0, min(cap, base * 2**attempt))``,
    a fresh draw from ``rng`` on every call."""
    name = "full_jitter"
    if not callable(fn):
        fb.call(fn, name)                     # says to pass the function itself
    first = _jitter_call(fn, name, 1, random.Random(1), 0.1, 10.0)
    fb.real(first, f"{name}(1, rng, 0.1, 10)")
    attempts = list(range(1, 9))

    def sequence(seed):
        rng = random.Random(seed)
        return [fb.real(_jitter_call(fn, name, a, rng, 0.1, 10.0), f"{name}({a}, rng, 0.1, 10)") for a in attempts]

    one, same, other = sequence(7), sequence(7), sequence(8)
    if one == other and _reseeds(fn, name):
        raise AssertionError(
            f"{name} reseeds the generator it is given: after one call, rng is in the same state whatever its "
            f"seed was, so every client draws the same waits ({', '.join(fb.fmt(x) for x in one[:3])} …) and "
            f"they retry together again. Never call rng.seed(...) (nor make a new generator from the "
            f"attempt): draw from rng as it is, rng.uniform(0, ceiling).")
    if one != same:
        raise AssertionError(
            f"{name} is not reproducible: two generators made with the same seed gave different waits "
            f"({fb.fmt(one[0])} and {fb.fmt(same[0])} for attempt 1). Draw from the rng you are given "
            f"(rng.uniform(...)), not from the random module's functions or a new random.Random(): a "
            f"seeded simulation must give the same run twice.")
    if one == other:
        raise AssertionError(
            f"{name} gave the same waits ({', '.join(fb.fmt(x) for x in one[:3])} …) with two differently "
            f"seeded generators: the jitter is not drawn from rng. It looks drawn once and reused (a "
            f"default argument, a global, or a random.Random with a fixed seed), so every client would "
            f"wait exactly as long as the others and retry together again. Draw a fresh number from rng "
            f"on every call.")
    rng = random.Random(9)
    repeats = [fb.real(_jitter_call(fn, name, 3, rng, 0.1, 10.0), f"{name}(3, rng, 0.1, 10)") for _ in range(50)]
    if len(set(repeats)) == 1:
        raise AssertionError(
            f"{name}(3, rng, 0.1, 10) gave {fb.fmt(repeats[0])} on 50 calls in a row with the same rng: the "
            f"jitter is drawn once and reused. Draw a fresh number from rng inside the function, on "
            f"every call.")
    _not_rounded(fn, name)
    rng = random.Random(11)
    for args in _JITTER_CASES:
        ceiling = _exp(*args)
        xs = sorted(_draws(fn, name, args, rng, _JITTER_DRAWS))
        lo, hi = xs[0], xs[-1]
        shown = f"{name}({args[0]}, rng, {fb.fmt(args[1])}, {fb.fmt(args[2])})"
        if _covers(lo, hi, (0.0, ceiling)):
            mean = sum(xs) / len(xs)
            quartiles = [xs[len(xs) * q // 4] for q in (1, 2, 3)]
            se = ceiling / math.sqrt(12 * len(xs))
            at_cap = sum(x == args[2] for x in xs)
            if ceiling == args[2] and at_cap > len(xs) // 4:
                raise AssertionError(
                    f"{shown} gave exactly the cap, {fb.fmt(ceiling)} s, in {at_cap} of {len(xs)} draws: you "
                    f"drew below the uncapped base * 2 ** attempt and capped the draw afterwards, so once the "
                    f"backoff passes the cap nearly every client waits exactly cap and they retry together "
                    f"again. Cap the ceiling first, then draw: rng.uniform(0, min(cap, base * 2 ** attempt)).")
            if abs(mean - ceiling / 2) > 5 * se or any(abs(x - q * ceiling / 4) > 0.04 * ceiling
                                                       for q, x in zip((1, 2, 3), quartiles)):
                raise AssertionError(
                    f"{shown} stays between 0 and {fb.fmt(ceiling)} as it should, but its draws are not "
                    f"spread evenly: mean {fb.fmt(mean)} (expected {fb.fmt(ceiling / 2)}), quartiles "
                    f"{', '.join(fb.fmt(q) for q in quartiles)} (expected {fb.fmt(ceiling / 4)}, "
                    f"{fb.fmt(ceiling / 2)}, {fb.fmt(3 * ceiling / 4)}). Use one uniform draw: "
                    f"rng.uniform(0, ceiling).")
            continue
        message = (f"{shown} should be a uniform draw between 0 and {fb.fmt(ceiling)} s, but over "
                   f"{_JITTER_DRAWS} calls yours ranged from {fb.fmt(lo)} to {fb.fmt(hi)}.")
        observed = {}
        for case in _JITTER_CASES:
            ys = _draws(fn, name, case, random.Random(12), 1000)
            observed[case] = (min(ys), max(ys))
        hint = next((h for f, h in _JITTER_RANGES
                     if all(_covers(*observed[c], f(*c)) for c in _JITTER_CASES)), None)
        if hint is None and lo < 0:
            hint = "A wait cannot be negative: draw rng.uniform(0, ceiling)."
        if hint is None and hi > ceiling:
            hint = "Waits above the ceiling min(cap, base * 2 ** attempt) break the cap."
        raise AssertionError(message + (f" {hint}" if hint else ""))
    fb.ok(f"{name}: fresh, reproducible draws from rng, spread evenly between 0 and min(cap, base·2^attempt)")


# --- task 3: the retry budget -----------------------------------------------------------------------
class _Budget:
    """The reference: ``min_retries + ratio * first attempts`` retries per sliding window."""

    def __init__(self, ratio=0.1, window=10.0, min_retries=5):
        self.ratio, self.window, self.min_retries = ratio, window, min_retries
        self.requests, self.retries = deque(), deque()

    def _evict(self, now):
        for times in (self.requests, self.retries):
            while times and times[0] <= now - self.window:
                times.popleft()

    def record_request(self, now):
        self.requests.append(now)

    def try_retry(self, now):
        self._evict(now)
        if len(self.retries) < self.min_retries + self.ratio * len(self.requests):
            self.retries.append(now)
            return True
        return False


class _FirstAttemptsSpend(_Budget):
    def record_request(self, now):
        super().record_request(now)
        self.retries.append(now)


class _NoMinimum(_Budget):
    def try_retry(self, now):
        self._evict(now)
        if len(self.retries) < self.ratio * len(self.requests):
            self.retries.append(now)
            return True
        return False


class _RetriesEarn(_Budget):
    def try_retry(self, now):
        granted = super().try_retry(now)
        if granted:
            self.requests.append(now)
        return granted


class _LessOrEqual(_Budget):
    def try_retry(self, now):
        self._evict(now)
        if len(self.retries) <= self.min_retries + self.ratio * len(self.requests):
            self.retries.append(now)
            return True
        return False


class _DeniedSpend(_Budget):
    def try_retry(self, now):
        self._evict(now)
        allowed = len(self.retries) < self.min_retries + self.ratio * len(self.requests)
        self.retries.append(now)
        return allowed


class _DeniedSpendAppendFirst(_Budget):
    def try_retry(self, now):
        self._evict(now)
        self.retries.append(now)
        return len(self.retries) <= self.min_retries + self.ratio * len(self.requests)


class _NeverSpends(_Budget):
    def try_retry(self, now):
        self._evict(now)
        return len(self.retries) < self.min_retries + self.ratio * len(self.requests)


class _NoWindow(_Budget):
    def _evict(self, now):
        pass


class _ForgetsOnlyRetries(_Budget):
    def _evict(self, now):
        while self.retries and self.retries[0] <= now - self.window:
            self.retries.popleft()


class _ForgetsOnlyRequests(_Budget):
    def _evict(self, now):
        while self.requests and self.requests[0] <= now - self.window:
            self.requests.popleft()


class _KeepsTheEdge(_Budget):
    def _evict(self, now):
        for times in (self.requests, self.retries):
            while times and times[0] < now - self.window:
                times.popleft()


class _KeepsRetriesAtTheEdge(_Budget):
    def _evict(self, now):
        while self.requests and self.requests[0] <= now - self.window:
            self.requests.popleft()
        while self.retries and self.retries[0] < now - self.window:
            self.retries.popleft()


class _EvictsOnlyOnRequests(_Budget):
    def record_request(self, now):
        self._evict(now)
        super().record_request(now)

    def try_retry(self, now):
        if len(self.retries) < self.min_retries + self.ratio * len(self.requests):
            self.retries.append(now)
            return True
        return False


class _RoundsDown(_Budget):
    def try_retry(self, now):
        self._evict(now)
        if len(self.retries) < self.min_retries + math.floor(self.ratio * len(self.requests)):
            self.retries.append(now)
            return True
        return False


class _RoundsToNearest(_Budget):
    def try_retry(self, now):
        self._evict(now)
        if len(self.retries) < self.min_retries + round(self.ratio * len(self.requests)):
            self.retries.append(now)
            return True
        return False


class _RatioPercent(_Budget):
    def __init__(self, ratio=0.1, window=10.0, min_retries=5):
        super().__init__(ratio / 100, window, min_retries)


class _WindowMilliseconds(_Budget):
    def __init__(self, ratio=0.1, window=10.0, min_retries=5):
        super().__init__(ratio, window / 1000, min_retries)


class _MaxNotSum(_Budget):
    def try_retry(self, now):
        self._evict(now)
        if len(self.retries) < max(self.min_retries, self.ratio * len(self.requests)):
            self.retries.append(now)
            return True
        return False


class _FixedRatio(_Budget):
    def __init__(self, ratio=0.1, window=10.0, min_retries=5):
        super().__init__(0.1, window, min_retries)


class _FixedWindow(_Budget):
    def __init__(self, ratio=0.1, window=10.0, min_retries=5):
        super().__init__(ratio, 10.0, min_retries)


class _FixedMinimum(_Budget):
    def __init__(self, ratio=0.1, window=10.0, min_retries=5):
        super().__init__(ratio, window, 5 if min_retries else 0)


_DENIED_SPEND = ("Your budget counts refused retries as spent: once it says no, it keeps saying no even after new "
                 "requests earn more room. Record a retry only when you return True.")
_BUDGET_MISTAKES = [
    (_FixedRatio, "Your budget gives 10% whatever ratio it is given: use self.ratio (the ratio passed to "
     "__init__), not the number 0.1."),
    (_FixedWindow, "Your budget keeps 10 s whatever window it is given: drop the times at or before "
     "now - self.window, with the window passed to __init__."),
    (_FixedMinimum, "Your budget allows 5 minimum retries whatever min_retries it is given: use "
     "self.min_retries."),
    (_FirstAttemptsSpend, "Your budget counts first attempts as retries: a busy client that never retried "
     "found its budget already spent. Only retries spend the budget (try_retry); first attempts "
     "(record_request) earn it."),
    (_DeniedSpend, _DENIED_SPEND),
    (_DeniedSpendAppendFirst, _DENIED_SPEND),
    (_NeverSpends, "Your budget never runs out: a granted retry must be recorded (it spends the budget), "
     "otherwise a retry storm goes through unchecked."),
    (_NoMinimum, "Your budget has no minimum: a quiet client with no recent requests may never retry. "
     "Allow min_retries + ratio * (first attempts in the window)."),
    (_LessOrEqual, "Off by one: your budget allows one retry too many (<= instead of <). With min_retries=5 "
     "and no traffic, exactly 5 retries fit."),
    (_RetriesEarn, "Your retries earn budget: the budget grows with the very retries it should limit (did you "
     "count them as requests, or compare with ratio * (requests + retries)?). Only first attempts, "
     "recorded by record_request, earn room: min_retries + ratio * first attempts."),
    (_NoWindow, "Your budget never forgets: events older than the window must stop counting, both first "
     "attempts and retries (drop those at or before now - window)."),
    (_ForgetsOnlyRetries, "Your budget forgets old retries but not old first attempts: requests from long "
     "ago keep paying for retries now. Drop requests older than the window too."),
    (_ForgetsOnlyRequests, "Your budget forgets old first attempts but not old retries: after a burst of "
     "retries it never recovers. Drop retries older than the window too."),
    (_MaxNotSum, "You took the larger of min_retries and ratio * requests; this lab's budget adds them: "
     "min_retries + ratio * requests (a busy client gets its 10% on top of the minimum)."),
    (_KeepsTheEdge, "Your window keeps events exactly `window` seconds old: it covers [now - window, now]. "
     "The window is (now - window, now]: drop the times at or before now - window (t <= now - window), "
     "keep those after it (t > now - window)."),
    (_KeepsRetriesAtTheEdge, "Your window keeps retries exactly `window` seconds old (t >= now - window for "
     "retries), while it drops first attempts that old: the window is (now - window, now] for both, so drop "
     "the retries at or before now - window too (keep t > now - window)."),
    (_RoundsDown, "Your budget stops at the whole number below the limit: with 14 first attempts the limit is "
     "5 + 1.4 = 6.4, so a 7th retry fits (6 granted < 6.4). Either you rounded ratio * first attempts (int(), "
     "round(), math.floor), or you appended the retry first and then compared len(retries) <= limit, which "
     "gives the same answers: compare the retries granted before this one, len(retries) < limit, with the "
     "sum itself, then append."),
    (_RoundsToNearest, "You rounded ratio * first attempts to the nearest whole number (round()): with 14 "
     "first attempts the limit is 5 + 1.4 = 6.4, so a 7th retry fits (6 < 6.4). Compare with the sum itself, "
     "no rounding."),
    (_EvictsOnlyOnRequests, "Your budget forgets old times only when a first attempt arrives (in "
     "record_request): with no new traffic, old retries and requests keep counting for ever. Drop the old "
     "times in try_retry too, before counting."),
    (_RatioPercent, "Your busy client gets almost nothing on top of the minimum, as if ratio were a "
     "percentage divided by 100: ratio is already a fraction (0.1 means 10%), so the room is "
     "min_retries + ratio * first attempts, with ratio as it is given."),
    (_WindowMilliseconds, "Your window is 1000 times too short, as if window were in milliseconds (window / "
     "1000): times and the window are both in seconds, so a window of 10.0 keeps the last 10 s; use it as "
     "it is given."),
]


_BUDGET_STUCK = ("a loop with no end? A `while` loop that drops old times must drop one at every turn "
                 "(pop(0), or popleft() on a deque) and stop once the oldest is inside the window: "
                 "`while times and times[0] <= now - self.window: times.pop(0)`. A list comprehension, "
                 "[t for t in times if t > now - self.window], cannot get stuck.")


#: While a check replays a budget with the clocks following ``now`` (to spot one that reads the wall clock).
_following: list = []


def _budget_method(obj, method, name, *args):
    for clock in _following:
        clock.now = args[0]
    fn = getattr(obj, method, None)
    if not callable(fn):
        raise AssertionError(f"{name} has no method {method}(now): the task asks for record_request(now) and "
                             f"try_retry(now)")
    with fb.learner_code(f"{name}.{method}", fb.show(f"{name}.{method}", args), stuck=_BUDGET_STUCK):
        return fn(*args)


def _tries(budget, name, now, n) -> int:
    granted = 0
    for _ in range(n):
        answer = _budget_method(budget, "try_retry", name, now)
        if answer is None:
            raise AssertionError(f"{name}.try_retry({fb.fmt(now)}) returned None: it ended without reaching a "
                                 f"`return` (a missing `return`, or an `if` with no `else` that falls off the "
                                 f"end). It returns True (retry, and it is spent) or False.")
        if not fb.is_bool(answer):
            raise AssertionError(f"{name}.try_retry({fb.fmt(now)}) returned {answer!r}: return True or False")
        granted += bool(answer)
    return granted


def _requests(budget, name, times):
    for t in times:
        _budget_method(budget, "record_request", name, t)


def _make(cls, name, *args):
    with fb.learner_code(f"{name}.__init__", fb.show(name, args),
                         lambda exc: ". The class takes (ratio, window, min_retries)."
                         if isinstance(exc, TypeError) else ""):
        return cls(*args)


_BUSY = [i * 0.1 + 0.05 for i in range(100)]            # 100 first attempts in (0, 10)


def _quiet(cls, n):
    return _tries(_make(cls, n, 0.1, 10.0, 5), n, 1.0, 20)


def _quiet_no_minimum(cls, n):
    return _tries(_make(cls, n, 0.1, 10.0, 0), n, 1.0, 5)


def _busy(cls, n):
    b = _make(cls, n, 0.1, 10.0, 5)
    _requests(b, n, _BUSY)
    return b, _tries(b, n, 9.99, 30)


def _refused_then_earned(cls, n):
    b = _make(cls, n, 0.1, 10.0, 5)
    _tries(b, n, 1.0, 20)
    _requests(b, n, [1.0 + 0.05 * (i + 1) for i in range(100)])
    return _tries(b, n, 6.0, 30)


def _forgets(cls, n):
    b, _ = _busy(cls, n)
    return _tries(b, n, 30.0, 30)


def _old_requests(cls, n):
    b = _make(cls, n, 0.1, 10.0, 5)
    _requests(b, n, _BUSY)
    return _tries(b, n, 25.0, 30)


def _edge(cls, n):
    b = _make(cls, n, 0.1, 10.0, 0)
    _requests(b, n, [0.0] * 10 + [5.0] * 10)
    return _tries(b, n, 10.0, 5)


def _fraction(cls, n):
    b = _make(cls, n, 0.1, 10.0, 5)
    _requests(b, n, [1.0 + 0.1 * i for i in range(14)])
    return _tries(b, n, 3.0, 20)


def _other_ratio(cls, n):
    b = _make(cls, n, 0.5, 10.0, 0)
    _requests(b, n, [1.0 + 0.1 * i for i in range(10)])
    return _tries(b, n, 3.0, 10)


def _other_minimum(cls, n):
    return _tries(_make(cls, n, 0.1, 10.0, 2), n, 1.0, 10)


def _short_window(cls, n):
    b = _make(cls, n, 0.1, 2.0, 0)
    _requests(b, n, [0.1 * i for i in range(40)])        # t = 0 .. 3.9 s
    return _tries(b, n, 4.0, 10)


def _retry_on_the_edge(cls, n):
    b = _make(cls, n, 0.1, 10.0, 1)
    _tries(b, n, 0.0, 1)
    return _tries(b, n, 10.0, 1)


def _short_window_forgets(cls, n):
    b = _make(cls, n, 0.1, 3.0, 1)
    _requests(b, n, [0.1 * i for i in range(50)])        # t = 0 .. 4.9 s
    return _tries(b, n, 20.0, 10)


#: (what happens and how many retries fit, a function (cls, name) -> retries granted at the end)
_SCENARIOS = [
    ("a quiet client (no requests) with min_retries=5 tries 20 retries at t=1 s: the 5 minimum retries fit",
     _quiet),
    ("a quiet client with min_retries=0 tries 5 retries at t=1 s: none fit", _quiet_no_minimum),
    ("a busy client: 100 first attempts between t=0 and t=10 s, then 30 retries tried at t=9.99 s: "
     "5 + 10% of 100 = 15 fit", lambda cls, n: _busy(cls, n)[1]),
    ("20 retries tried at t=1 s (5 fit), then 100 first attempts between t=1 and t=6 s, then 30 retries "
     "tried at t=6 s: 5 + 10 - 5 = 10 more fit", _refused_then_earned),
    ("the busy client of case 3 tries again at t=30 s, with no new traffic: everything has left the 10 s "
     "window, so the 5 minimum retries fit again", _forgets),
    ("100 first attempts between t=0 and t=10 s, then 30 retries tried at t=25 s: those requests have left "
     "the 10 s window, so only the 5 minimum retries fit", _old_requests),
    ("min_retries=0, 10 first attempts at t=0 s and 10 at t=5 s, then 5 retries tried at t=10 s: the window "
     "is (0, 10], so those at t=0 no longer count and 10% of 10 = 1 retry fits", _edge),
    ("14 first attempts between t=1 and t=2.3 s, then 20 retries tried at t=3 s: the limit is 5 + 10% of 14 "
     "= 6.4, so 7 retries fit (the 7th because 6 < 6.4)", _fraction),
    ("RetryBudget(0.5, 10.0, 0): 10 first attempts between t=1 and t=1.9 s, then 10 retries tried at t=3 s: "
     "50% of 10 = 5 fit", _other_ratio),
    ("RetryBudget(0.1, 10.0, 2): a quiet client tries 10 retries at t=1 s: its 2 minimum retries fit",
     _other_minimum),
    ("RetryBudget(0.1, 2.0, 0): 40 first attempts between t=0 and t=3.9 s, then 10 retries tried at t=4 s: "
     "the 2 s window (2, 4] holds 19 of them, so 10% of 19 = 1.9 and 2 retries fit", _short_window),
    ("RetryBudget(0.1, 3.0, 1): 50 first attempts between t=0 and t=4.9 s, then 10 retries tried at t=20 s: "
     "every one has left the 3 s window, so only the 1 minimum retry fits", _short_window_forgets),
    ("RetryBudget(0.1, 10.0, 1): a retry granted at t=0 s, then 1 retry tried at t=10 s: the window (0, 10] no "
     "longer holds the first, so the 1 minimum retry fits again", _retry_on_the_edge),
]


def _signature(cls, name):
    return [run(cls, name) for _, run in _SCENARIOS]


def _reads_the_clock(cls, name, want) -> bool:
    """Whether ``cls`` passes every scenario once time.time(), time.monotonic()... follow ``now``."""
    clock = _Clock()
    try:
        with clock.active(cls):
            _following.append(clock)
            try:
                return _signature(cls, name) == want
            finally:
                _following.remove(clock)
    except AssertionError:
        return False


_BUDGET_DEFAULTS = {"ratio": 0.1, "window": 10.0, "min_retries": 5}


def _no_defaults(fn, defaults: dict) -> list[str]:
    """The parameters of ``fn`` among ``defaults`` that have no default value (by its signature)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return []
    return [p for p in defaults if p in params and params[p].default is inspect.Parameter.empty]


def _names(names) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _budget_defaults(cls, name) -> None:
    """The lab builds ``RetryBudget()`` with no arguments (the cell with call_with_retries): the class
    must keep the task's defaults, and they must be the task's values."""
    wanted = ", ".join(f"{k}={v!r}" for k, v in _BUDGET_DEFAULTS.items())

    def hint(exc) -> str:
        if not isinstance(exc, TypeError):
            return ""
        missing = _no_defaults(cls, _BUDGET_DEFAULTS)
        which = f"; yours has none for {_names(missing)}" if missing else ""
        return (f". The lab builds {name}() with no arguments (budget = {name}(), before call_with_retries), so "
                f"__init__ needs the task's defaults: def __init__(self, {wanted}){which}.")
    with fb.learner_code(f"{name}.__init__", f"{name}()", hint, stuck=_BUDGET_STUCK):
        budget = cls()
    _requests(budget, name, _BUSY)
    granted = _tries(budget, name, 9.99, 30)
    if granted != 15:
        try:
            params = inspect.signature(cls).parameters
        except (TypeError, ValueError):
            params = {}
        off = [f"{k}={params[k].default!r}" for k, v in _BUDGET_DEFAULTS.items()
               if k in params and params[k].default is not inspect.Parameter.empty and params[k].default != v]
        which = f" (yours: {', '.join(off)})" if off else ""
        raise AssertionError(f"{name}() with no arguments allowed {granted} retries to the busy client of case 3, "
                             f"where {name}(0.1, 10.0, 5) allows 15: the lab builds {name}() and counts on the "
                             f"task's defaults, {wanted}{which}.")


@_TASKS.check(3, "RetryBudget")
def retry_budget(cls) -> None:
    """Check a ``RetryBudget(ratio, window, min_retries)`` class with ``record_request(now)`` and
    ``try_retry(now) -> bool``, on the scenarios of :data:`_SCENARIOS` (times in seconds)."""
    name = getattr(cls, "__name__", "RetryBudget")
    if not isinstance(cls, type):
        raise AssertionError(f"pass the class itself to the check, e.g. check.retry_budget(RetryBudget); got "
                             f"{cls!r}")
    one, two = _make(cls, name, 0.1, 10.0, 5), _make(cls, name, 0.1, 10.0, 5)
    first, second = _tries(one, name, 1.0, 20), _tries(two, name, 1.0, 20)
    if 0 < first and second < first:
        raise AssertionError(
            f"Two budgets share their counts: after a first {name} granted {first} retries, a second, new "
            f"one granted only {second}. The lists (or counters) live in the class body; create them in "
            f"__init__ (self.requests = [] ...), so that each client has its own budget.")
    want = _signature(_Budget, "reference")
    got = _signature(cls, name)
    if got == want:
        _budget_defaults(cls, name)
        fb.ok(f"{name}: 5 minimum retries for a quiet client, 5 + 10% for a busy one; only retries spend it, "
            f"refusals cost nothing, and the window forgets")
        return
    index = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
    message = f"Case {index + 1}, {_SCENARIOS[index][0]}; yours allowed {got[index]}."
    if _reads_the_clock(cls, name, want):
        raise AssertionError(f"{message} Your budget reads the wall clock (time.time(), time.monotonic()...) "
                             f"instead of the `now` it is given: when we make the clock follow `now`, every case "
                             f"passes. Use only `now`: simulated seconds in the simulator, time.monotonic() in a "
                             f"live client, plain numbers in tests.")
    hint = next((h for mistake, h in _BUDGET_MISTAKES if _signature(mistake, "mistake") == got), None)
    if hint is None:                            # no known mistake gives these answers: say where else it differs
        others = [f"case {i + 1} ({g} where {w} fit)" for i, (g, w) in enumerate(zip(got, want))
                  if g != w and i != index]
        hint = (f"It also differs in {', '.join(others)}: compare what these cases have in common." if others
                else "Every other case passes: work this one through by hand, retry by retry.")
    raise AssertionError(f"{message} {hint}")


# --- task 4: which failures to retry ---------------------------------------------------------------
#: Reasons never worth retrying: the request itself is wrong, or our own protection refused it.
NOT_RETRYABLE = ("bad request", "not found", "unauthorized", "circuit open", "bulkhead full", "throttled",
                 "deadline")
check_reasons("NOT_RETRYABLE", NOT_RETRYABLE)     # the core's vocabulary: a typo here fails at import
#: A reason in neither list: an allowlist refuses it, a list of reasons to skip retries it.
UNLISTED = "conflict"
check_reasons("UNLISTED", (UNLISTED,))
_LOCAL = {"circuit open": "our own circuit breaker refused the call: retrying at once only burns an attempt",
          "bulkhead full": "our own bulkhead is full: retrying at once only adds to the queue",
          "throttled": "our own throttle refused it to protect an overloaded backend",
          "deadline": "the request's deadline has passed: nobody is waiting for the answer any more"}
_NOT_429 = (" 'throttled' is not 'too many requests': 'too many requests' (HTTP 429) is the server asking to "
            "slow down, worth a retry after a wait; 'throttled' is our own client refusing the call before "
            "sending it, and a retry at once goes around the throttle.")


def _should(attempt, reason, idempotent, key, max_attempts=3):
    return attempt < max_attempts and reason in RETRYABLE and (idempotent or key is not None)


@_TASKS.check(4, "should_retry")
def should_retry(fn) -> None:
    """Check ``should_retry(attempt, reason, idempotent, key, max_attempts=3) -> bool``."""
    name = "should_retry"
    reasons = sorted(RETRYABLE) + list(NOT_RETRYABLE) + [UNLISTED]
    cases = [(a, r, i, k, m) for m in (1, 3, 5) for a in range(1, m + 2) for r in reasons
             for i in (True, False) for k in (None, "order-42")]
    answers = [(case, fb.call(fn, name, *case)) for case in cases]
    if all(got is None for _, got in answers):
        raise AssertionError(f"{fb.show(name, answers[0][0])} returned None: did you forget `return`?")
    wrong = []
    nones = [case for case, got in answers if got is None]
    from_an_expression = all(not i and k is None for _, _, i, k, _ in nones)      # `idempotent or key` gives None
    for case, got in answers:
        if got is None and not from_an_expression:
            raise AssertionError(f"{fb.show(name, case)} returned None, should be {_should(*case)}: no `return` "
                                 f"was reached for this case. Does every path through your function end in "
                                 f"`return True` or `return False` (an `if` with no `else` falls off the end)?")
        if not fb.is_bool(got):
            raise AssertionError(f"{fb.show(name, case)} returned {got!r} ({type(got).__name__}): return True or "
                                 f"False. An expression like `idempotent or key` gives None or the key "
                                 f"itself: write `key is not None`, or wrap the whole in bool(...).")
        got = bool(got)
        if got != _should(*case):
            wrong.append((case, got))
    if not wrong:
        _should_retry_default(fn, name, [c for c in cases if c[4] == 3])
        fb.ok(f"{name}: retries only transient failures, only idempotent calls or those with a key, and at "
            f"most max_attempts calls in all")
        return

    def first(test):
        return next(((c, g) for c, g in wrong if test(c, g)), None)

    def say(case, got, why):
        return (f"{fb.show(name, case)} returned {got}, should be {not got}: {why}")

    found = first(lambda c, g: g and c[1] not in RETRYABLE)
    if found:
        case, got = found
        reason = case[1]
        if reason in _LOCAL:
            why = f"{_LOCAL[reason]}."
        elif reason == UNLISTED:
            why = (f"{reason!r} is in neither list: a failure you know nothing about is not retried blindly. "
                   f"Retry only the reasons in RETRYABLE (an allowlist): a list of reasons to skip lets through "
                   f"every reason it does not name.")
        else:
            article = "an" if reason[0] in "aeiou" else "a"
            why = f"{article} {reason!r} answer will come back the same however often you send the same request."
        if not first(lambda c, g: g and c[1] == UNLISTED):
            extra = sorted({c[1] for c, g in wrong if g and c[1] not in RETRYABLE})
            why += (f" You retry {_names([repr(r) for r in extra])}, which RETRYABLE does not hold, yet not "
                    f"{UNLISTED!r}: did you add {'them' if len(extra) > 1 else 'it'} to your own list of "
                    f"reasons to retry (or to RETRYABLE)? Test reason in RETRYABLE, unchanged.")
            if "throttled" in extra:
                why += _NOT_429
        elif first(lambda c, g: g and c[1] in NOT_RETRYABLE) and \
                any(not first(lambda c, g, r=r: g and c[1] == r) for r in NOT_RETRYABLE):   # some skipped
            why += (" You seem to skip a list of known bad reasons and retry everything else: retry only the "
                    "reasons in RETRYABLE (an allowlist), so an unknown failure is not retried blindly.")
        elif reason != UNLISTED:
            why += " Retry only when reason is in RETRYABLE."
        raise AssertionError(say(case, got, why))
    refused = {c[1] for c, g in wrong if not g}
    if refused and refused < set(RETRYABLE):
        case, got = first(lambda c, g: not g)
        missing = ", ".join(repr(r) for r in sorted(refused))
        raise AssertionError(say(case, got, f"{missing} {'is' if len(refused) == 1 else 'are'} in RETRYABLE: "
                                            f"failures that may not happen again, worth another try. "
                                            f"Test reason in RETRYABLE rather than a list of your own."))
    found = first(lambda c, g: g and not c[2] and c[3] is None)
    if found:
        case, got = found
        raise AssertionError(say(case, got, "the call is not idempotent and carries no idempotency key: the "
                                            "failed attempt may have been done by the server (a timeout does "
                                            "not undo it), so a retry could charge twice. Retry only if "
                                            "idempotent or key is not None."))
    found = first(lambda c, g: not g and not c[2] and c[3] is not None)
    if found and not first(lambda c, g: c[2]):
        case, got = found
        raise AssertionError(say(case, got, "the call carries an idempotency key, so the server can recognise "
                                            "a repeat and answer it without doing it twice: retrying is safe."))
    if all(not g and c[0] < c[4] and c[1] in RETRYABLE and (c[2] != (c[3] is not None)) for c, g in wrong):
        no_key = first(lambda c, g: c[2] and c[3] is None)      # idempotent, no key: refused
        if no_key:
            case, got = no_key
            why = ("the call is idempotent: doing it twice does no harm, so it may be retried without an "
                   "idempotency key.")
            if first(lambda c, g: not c[2]):
                why += (" And a call that is not idempotent but carries a key may be retried too: either one "
                        "is enough, so retry if idempotent or key is not None (or, not and).")
            else:
                why += " The key is only needed when the call is not idempotent: idempotent or key is not None."
            raise AssertionError(say(case, got, why))
    if all(c[4] != 3 for c, _ in wrong):
        case, got = wrong[0]
        raise AssertionError(say(case, got, f"with max_attempts={case[4]} your answers go wrong, while they are "
                                            f"right for 3: use the max_attempts argument rather than a fixed "
                                            f"number."))
    found = first(lambda c, g: g and c[0] >= c[4])
    if found:
        case, got = found
        raise AssertionError(say(case, got, f"attempt {case[0]} was the last of max_attempts={case[4]} (the "
                                            f"first call counts), so no call is left: retry only while "
                                            f"attempt < max_attempts."))
    found = first(lambda c, g: not g and c[0] < c[4])
    if found:
        case, got = found
        raise AssertionError(say(case, got, f"after attempt {case[0]} of max_attempts={case[4]} there is still "
                                            f"a call left: retry while attempt < max_attempts (attempt 1 is "
                                            f"the first call, not the first retry)."))
    case, got = wrong[0]
    raise AssertionError(say(case, got, "compare with the three rules of the task."))


def _should_retry_default(fn, name, cases) -> None:
    """call_with_retries calls ``should_retry(attempt, reason, idempotent, key)``, with 4 arguments: the
    learner's function must keep the default ``max_attempts=3``."""
    def hint(exc) -> str:
        if not isinstance(exc, TypeError):
            return ""
        missing = _no_defaults(fn, {"max_attempts": 3})
        which = " (yours has none)" if missing else ""
        return (f". call_with_retries calls {name}(attempt, reason, idempotent, key), with 4 arguments, so "
                f"max_attempts needs its default{which}: def {name}(attempt, reason, idempotent, key, "
                f"max_attempts=3).")
    for case in cases:
        four = case[:4]
        got = fb.call(fn, name, *four, hint=hint)
        if not fb.is_bool(got) or bool(got) != _should(*case):
            raise AssertionError(f"{fb.show(name, four)} returned {got!r}, should be {_should(*case)} (as "
                                 f"{fb.show(name, case)} is): call_with_retries calls {name} with 4 arguments "
                                 f"and counts on the default max_attempts=3. Keep it: def {name}(attempt, "
                                 f"reason, idempotent, key, max_attempts=3).")


# --- adapters: the learner's pieces in the simulator ----------------------------------------------
class _LearnerBackoff(Backoff):
    def __init__(self, fn, base, cap):
        super().__init__()
        self.fn, self.base, self.cap = fn, base, cap

    def _delay(self, attempt, rng, previous):
        return self.fn(attempt, rng, self.base, self.cap)

    def __repr__(self):
        return f"{getattr(self.fn, '__name__', 'backoff')}(base={self.base:g}, cap={self.cap:g})"


def as_backoff(fn, base: float, cap: float) -> Backoff:
    """A backoff schedule for the simulator's client that waits ``fn(attempt, rng, base, cap)``."""
    if not callable(fn):
        raise ValueError(f"fn must be a function (attempt, rng, base, cap) -> seconds, got {fn!r}")
    return _LearnerBackoff(fn, base, cap)


class _LearnerBudget(_PolicyBudget):
    """The policies' RetryBudget interface (can_retry, then record_retry) around a learner's budget whose
    ``try_retry`` decides and spends in one call."""

    def __init__(self, budget):
        super().__init__()
        self.inner = budget

    def record_request(self, now):
        self.requests += 1
        self.inner.record_request(now)

    def can_retry(self, now):
        if self.inner.try_retry(now):
            return True
        self.denied.append(now)
        return False

    def record_retry(self, now):
        self.retries += 1

    def __repr__(self):
        return f"learner's {type(self.inner).__name__}"


def as_budget(budget) -> _PolicyBudget:
    """Something the simulator's client accepts as ``budget=``, driving the learner's budget object."""
    for method in ("record_request", "try_retry"):
        if not callable(getattr(budget, method, None)):
            raise ValueError(f"budget must have record_request(now) and try_retry(now), got {budget!r}")
    return _LearnerBudget(budget)
