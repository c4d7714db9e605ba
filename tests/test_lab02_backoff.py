"""Lab 02's checks accept the reference solution and reject each typical mistake with a message that
names it. The reference functions come from the solution notebook itself (its code cells run here in
order), so the notebook stays the single source of truth. Each mistake is written the way a learner
would write it."""
from __future__ import annotations

import random
import re
import time

import pytest
from lab_support import fails, run_child, says_which_task_first, solution_namespace, walk

from resilience_sim.labs import backoff as check
from resilience_sim.lessons import retries as rt
from resilience_sim.core.reasons import REASONS
from resilience_sim.policies import RETRYABLE, Constant, RetryPolicy
from resilience_sim.policies import RetryBudget as PolicyBudget


@pytest.fixture(scope="module")
def ref() -> dict:
    """The namespace left by running every code cell of the solution notebook."""
    return solution_namespace("02_backoff_and_budget.ipynb")


# --- the reference solution passes every check ---------------------------------------------------
@pytest.mark.parametrize("name, check_name", [("exponential_delay", "exponential_delay"),
                                              ("full_jitter", "full_jitter"),
                                              ("RetryBudget", "retry_budget"),
                                              ("should_retry", "should_retry")])
def test_check_accepts_the_solution(ref, name, check_name, capsys):
    getattr(check, check_name)(ref[name])
    out = capsys.readouterr().out
    assert out.startswith("✔ ") and out.count("\n") == 1


def test_solution_in_the_simulator_matches_the_course_policies(ref):
    """The solution's jitter draws exactly what FullJitter draws; its budget decides as RetryBudget."""
    mine = rt.contention_run(check.as_backoff(ref["full_jitter"], 0.01, 1.0), 30, seed=3)
    assert mine == rt.contention_run("full jitter", 30, seed=3)
    budget = check.as_budget(ref["RetryBudget"](0.1, 10.0, 5))
    yours = rt.budget_run(outage=20, budget=budget, seed=4)
    course = rt.budget_run(outage=20, budget=PolicyBudget(0.1, 10.0, 0.5), seed=4)
    assert yours.outage_amplification == course.outage_amplification
    assert yours.denied == course.denied == len(budget.denied) > 0
    assert budget.requests == len(yours.results) and budget.retries > 0
    assert "learner's RetryBudget" in repr(budget) and "full_jitter" in repr(check.as_backoff(ref["full_jitter"], 1, 2))


def test_adapters_reject_junk():
    with pytest.raises(ValueError, match="fn must be a function"):
        check.as_backoff(0.1, 0.1, 1.0)
    with pytest.raises(ValueError, match="record_request"):
        check.as_budget(object())


# --- not written yet, and other ways of not answering -------------------------------------------------
def _stub(*args, **kwargs):
    raise NotImplementedError("Your code here")


@pytest.mark.parametrize("check_name", ["exponential_delay", "full_jitter", "should_retry"])
def test_unwritten_function_says_so(check_name):
    fails(getattr(check, check_name), _stub, match="not written yet")


def test_unwritten_budget_says_so():
    class RetryBudget:
        def __init__(self, ratio=0.1, window=10.0, min_retries=5):
            self.ratio, self.window, self.min_retries = ratio, window, min_retries
            raise NotImplementedError("Your code here")
    fails(check.retry_budget, RetryBudget, match=r"__init__ is not written yet")

    class HalfDone:
        def __init__(self, ratio=0.1, window=10.0, min_retries=5):
            self.requests = []

        def record_request(self, now):
            self.requests.append(now)

        def try_retry(self, now):
            raise NotImplementedError("Your code here")
    fails(check.retry_budget, HalfDone, match=r"HalfDone.try_retry is not written yet")


def test_passing_something_else():
    fails(check.exponential_delay, 0.2, match="pass the function itself")
    fails(check.retry_budget, "RetryBudget", match="pass the class itself")


def test_forgotten_return_and_wrong_types():
    def exponential_delay(attempt, base, cap):
        min(cap, base * 2 ** attempt)
    fails(check.exponential_delay, exponential_delay, match="forget `return`")
    fails(check.exponential_delay, lambda a, b, c: "0.2", match="should return a number")
    fails(check.full_jitter, lambda a, rng, b, c: None, match="forget `return`")


def test_learner_exception_is_reported_with_its_call():
    fails(check.exponential_delay, lambda a, b, c: b / (a - 1), match=r"exponential_delay\(1, 0\.1, 10\) raised "
                                                                    r"ZeroDivisionError")


# --- task 1: capped exponential backoff ----------------------------------------------------------------
@pytest.mark.parametrize("wrong, match", [
    (lambda a, b, c: b * 2 ** a, "no cap"),
    (lambda a, b, c: min(c, b * 2 ** (a - 1)), r"Off by one.*half.*2 \*\* attempt"),
    (lambda a, b, c: min(c, b * 2 ** (a + 1)), r"Off by one.*double"),
    (lambda a, b, c: b * 2 ** (a - 1), "Two mistakes: no cap"),
    (lambda a, b, c: 1000 * min(c, b * 2 ** a), "milliseconds"),
    (lambda a, b, c: max(c, b * 2 ** a), r"max\(cap, \.\.\.\)"),
    (lambda a, b, c: min(c, b * a), "linearly"),
    (lambda a, b, c: min(c, b ** a), r"base \*\* attempt"),
    (lambda a, b, c: min(c, 2 ** a), "ignore base"),
    (lambda a, b, c: min(c, b * 2 ** a) + 0.001, r"exponential_delay\(1, 0\.1, 10\) should be 0\.2 s"),
    (lambda a, b, c: min(b, c * 2 ** a), r"yours gave 0\.1\. base and cap look swapped.*"
                                         r"min\(cap, base \* 2 \*\* attempt\)"),
    # found by the second learner review (rev9a): the cap read off the table, or an overflow guard
    (lambda a, b, c: c if a >= 7 else min(c, b * 2 ** a), r"exponential_delay\(8, 0\.01, 60\) should be 2\.56 s.*"
                                                          r"yours gave 60\. You returned the cap at attempt 8"),
    (lambda a, b, c: c if a > 10 else min(c, b * 2 ** a), r"exponential_delay\(12, 0\.001, 60\) should be 4\.096 s.*"
                                                          r"not on a fixed attempt"),
])
def test_exponential_delay_mistakes(wrong, match):
    fails(check.exponential_delay, wrong, match=match)


def test_exponential_delay_with_jitter_is_not_task_1():
    rng = random.Random(1)
    fails(check.exponential_delay, lambda a, b, c: rng.uniform(0, min(c, b * 2 ** a)), match="no jitter")


def test_exponential_delay_message_shows_the_formula():
    message = fails(check.exponential_delay, lambda a, b, c: b * 2 ** a, match="no cap")
    assert "exponential_delay(7, 0.1, 10) should be 10 s (min(10, 0.1 * 2**7)), yours gave 12.8." in message


# --- task 2: full jitter -----------------------------------------------------------------------------------
def ceiling(a, b, c):
    return min(c, b * 2 ** a)


def drawn_at_definition(a, rng, b, c, _u=random.random()):   # the jitter is drawn once, when def runs
    return _u * ceiling(a, b, c)


def fresh_seeded_generator(a, rng, b, c):                     # a new generator with a fixed seed each call
    return random.Random(42).uniform(0, ceiling(a, b, c))


def global_random(a, rng, b, c):                              # not the rng it was given
    return random.uniform(0, ceiling(a, b, c))


_CACHE: dict = {}


def reseeds_by_attempt(a, rng, b, c):                         # "reproducible": the same seed for the same retry
    rng.seed(a)
    return rng.uniform(0, ceiling(a, b, c))


def cached_per_client(a, rng, b, c):                          # one draw per generator, reused every retry
    u = _CACHE.setdefault(id(rng), rng.random())
    return u * ceiling(a, b, c)


@pytest.mark.parametrize("wrong, match", [
    (drawn_at_definition, "drawn once and reused"),
    (fresh_seeded_generator, "drawn once and reused"),
    (global_random, "not reproducible"),
    (cached_per_client, r"drawn once and reused"),
    (reseeds_by_attempt, r"^full_jitter reseeds the generator it is given.*rng\.seed"),
])
def test_full_jitter_reused_or_foreign_randomness(wrong, match):
    fails(check.full_jitter, wrong, match=match)


@pytest.mark.parametrize("wrong, match", [
    (lambda a, rng, b, c: rng.uniform(0, b * 2 ** a), "no cap"),
    (lambda a, rng, b, c: rng.uniform(ceiling(a, b, c) / 2, ceiling(a, b, c)), "equal jitter"),
    (lambda a, rng, b, c: ceiling(a, b, c) / 2 + rng.uniform(0, ceiling(a, b, c) / 2), "equal jitter"),
    (lambda a, rng, b, c: rng.uniform(b, ceiling(a, b, c)), "never go below base"),
    (lambda a, rng, b, c: ceiling(a, b, c) + rng.uniform(0, ceiling(a, b, c)), "on top of the ceiling"),
    (lambda a, rng, b, c: 1000 * rng.uniform(0, ceiling(a, b, c)), "1000 times"),
    (lambda a, rng, b, c: rng.uniform(0, ceiling(a - 1, b, c)), "half the ceiling.*off by one"),
    (lambda a, rng, b, c: rng.uniform(0, ceiling(a + 1, b, c)), "twice the ceiling.*off by one"),
    (lambda a, rng, b, c: rng.uniform(0, c), "ignore the attempt"),
    (lambda a, rng, b, c: rng.uniform(0, b), "never exceed base"),
    (lambda a, rng, b, c: rng.uniform(0, min(b, c * 2 ** a)), "never exceed base.*base and cap are swapped"),
    (lambda a, rng, b, c: rng.uniform(-ceiling(a, b, c), ceiling(a, b, c)), "negative"),
    (lambda a, rng, b, c: rng.random(), "random fraction itself"),
    (lambda a, rng, b, c: rng.random() ** 2 * ceiling(a, b, c), "not spread evenly"),
    # found by the second learner review (rev9a)
    (lambda a, rng, b, c: round(rng.uniform(0, ceiling(a, b, c)), 2),
     r"full_jitter\(1, rng, 0\.01, 10\), whose ceiling is 0\.02 s, gave only 3 different waits.*did you round"),
])
def test_full_jitter_wrong_range_or_shape(wrong, match):
    fails(check.full_jitter, wrong, match=match)


def capped_after_drawing(a, rng, b, c):                      # the draw is capped, not the ceiling
    return min(c, rng.uniform(0, b * 2 ** a))


def arguments_in_another_order(attempt, base, cap, rng):
    return rng.uniform(0, min(cap, base * 2 ** attempt))


def rng_first(rng, attempt, base, cap):
    return rng.uniform(0, min(cap, base * 2 ** attempt))


@pytest.mark.parametrize("wrong, match", [
    (capped_after_drawing, r"full_jitter\(10, rng, 0\.1, 5\) gave exactly the cap.*capped the draw afterwards"),
    (arguments_in_another_order, r"full_jitter\(1, rng, 0\.1, 10\) raised AttributeError.*in that order"),
    (rng_first, r"raised AttributeError.*\(attempt, rng, base, cap\), in that order"),
])
def test_full_jitter_capping_and_argument_order(wrong, match):
    message = fails(check.full_jitter, wrong, match=match)
    assert "<random.Random" not in message


def test_full_jitter_message_names_the_call_and_range():
    message = fails(check.full_jitter, lambda a, rng, b, c: rng.uniform(0, b * 2 ** a), match="no cap")
    assert "full_jitter(10, rng, 0.1, 5) should be a uniform draw between 0 and 5 s" in message


def test_full_jitter_accepts_other_correct_forms(capsys):
    check.full_jitter(lambda a, rng, b, c: rng.random() * min(c, b * 2 ** a))
    check.full_jitter(lambda a, rng, b, c: (1 - rng.random()) * min(c, b * 2 ** a))
    assert capsys.readouterr().out.count("✔") == 2


# --- task 3: the retry budget ------------------------------------------------------------------------------
class Budget:
    """A correct budget, written with counters pruned from lists, as a base for the mistakes below."""

    def __init__(self, ratio=0.1, window=10.0, min_retries=5):
        self.ratio, self.window, self.min_retries = ratio, window, min_retries
        self.requests, self.retries = [], []

    def forget(self, now):
        self.requests = [t for t in self.requests if t > now - self.window]
        self.retries = [t for t in self.retries if t > now - self.window]

    def record_request(self, now):
        self.requests.append(now)

    def allowed(self):
        return self.min_retries + self.ratio * len(self.requests)

    def try_retry(self, now):
        self.forget(now)
        if len(self.retries) < self.allowed():
            self.retries.append(now)
            return True
        return False


class FirstAttemptsAreRetries(Budget):
    def record_request(self, now):
        self.requests.append(now)
        self.retries.append(now)          # "every call is an attempt"


class NoMinimum(Budget):
    def allowed(self):
        return self.ratio * len(self.requests)


class LessOrEqual(Budget):
    def try_retry(self, now):
        self.forget(now)
        if len(self.retries) <= self.allowed():
            self.retries.append(now)
            return True
        return False


class CountsRefusals(Budget):
    def try_retry(self, now):
        self.forget(now)
        self.retries.append(now)          # counted before deciding
        return len(self.retries) <= self.allowed()


class NeverSpends(Budget):
    def try_retry(self, now):
        self.forget(now)
        return len(self.retries) < self.allowed()


class NeverForgets(Budget):
    def forget(self, now):
        pass


class ForgetsOnlyRetries(Budget):
    def forget(self, now):
        self.retries = [t for t in self.retries if t > now - self.window]


class ForgetsOnlyRequests(Budget):
    def forget(self, now):
        self.requests = [t for t in self.requests if t > now - self.window]


class LargerOfTheTwo(Budget):
    def allowed(self):
        return max(self.min_retries, self.ratio * len(self.requests))


class RetriesAreRequestsToo(Budget):
    def try_retry(self, now):
        granted = super().try_retry(now)
        if granted:
            self.record_request(now)      # "a retry is a request as well"
        return granted


class ShareOfAllCalls(Budget):
    def allowed(self):
        return self.min_retries + self.ratio * (len(self.requests) + len(self.retries))


class KeepsTheEdge(Budget):
    def forget(self, now):                # keeps an event exactly `window` seconds old
        self.requests = [t for t in self.requests if now - t <= self.window]
        self.retries = [t for t in self.retries if now - t <= self.window]


class RoundsDown(Budget):
    def allowed(self):
        return self.min_retries + int(self.ratio * len(self.requests))   # "no half retries"


class RoundsToNearest(Budget):
    def allowed(self):
        return self.min_retries + round(self.ratio * len(self.requests))


class SharedLists:
    requests = []                         # class attributes: shared by every budget
    retries = []

    def __init__(self, ratio=0.1, window=10.0, min_retries=5):
        self.ratio, self.window, self.min_retries = ratio, window, min_retries

    def record_request(self, now):
        self.requests.append(now)

    def try_retry(self, now):
        while self.retries and self.retries[0] <= now - self.window:
            self.retries.pop(0)
        while self.requests and self.requests[0] <= now - self.window:
            self.requests.pop(0)
        if len(self.retries) < self.min_retries + self.ratio * len(self.requests):
            self.retries.append(now)
            return True
        return False


class RatioAsPercent(Budget):
    def allowed(self):
        return self.min_retries + self.ratio / 100 * len(self.requests)     # "ratio is a percentage"


class WindowInMilliseconds(Budget):
    def forget(self, now):
        edge = now - self.window / 1000                                     # "the window is in ms"
        self.requests = [t for t in self.requests if t > edge]
        self.retries = [t for t in self.retries if t > edge]


class AppendsThenComparesLessOrEqual(Budget):
    def try_retry(self, now):
        self.forget(now)
        self.retries.append(now)
        if len(self.retries) <= self.allowed():
            return True
        self.retries.pop()
        return False


class KeepsRetriesAtTheEdge(Budget):
    def forget(self, now):
        self.requests = [t for t in self.requests if t > now - self.window]
        self.retries = [t for t in self.retries if t >= now - self.window]


class ForgetsOnlyOnRequests(Budget):
    def record_request(self, now):
        self.forget(now)
        self.requests.append(now)

    def try_retry(self, now):
        if len(self.retries) < self.allowed():
            self.retries.append(now)
            return True
        return False


class MinimumPerSecond(Budget):
    def allowed(self):
        return self.min_retries * self.window + self.ratio * len(self.requests)


@pytest.mark.parametrize("wrong, match", [
    (RatioAsPercent, r"Case 3, a busy client.*yours allowed 6\. .*as if ratio were a percentage divided by 100"),
    (WindowInMilliseconds, r"Case 3, a busy client.*yours allowed 5\. Your window is 1000 times too short.*"
                           r"milliseconds"),
    (FirstAttemptsAreRetries, r"Case 3, a busy client.*yours allowed 0\. .*counts first attempts as retries"),
    (NoMinimum, r"Case 1, a quiet client.*yours allowed 0\. .*no minimum"),
    (LessOrEqual, r"Case 1.*yours allowed 6\. Off by one.*<= instead of <"),
    (CountsRefusals, "counts refused retries as spent"),
    (NeverSpends, "never runs out"),
    (NeverForgets, r"Case 5.*never forgets"),
    (ForgetsOnlyRetries, "forgets old retries but not old first attempts"),
    (ForgetsOnlyRequests, "forgets old first attempts but not old retries"),
    (LargerOfTheTwo, "larger of min_retries and ratio"),
    (RetriesAreRequestsToo, "retries earn budget"),
    (ShareOfAllCalls, r"retries earn budget.*requests \+ retries"),
    (SharedLists, "Two budgets share their counts.*__init__"),
    (KeepsTheEdge, r"Case 7, min_retries=0.*\(0, 10\].*yours allowed 2\. Your window keeps events exactly"),
    (RoundsDown, r"Case 8, 14 first attempts.*7 retries fit.*yours allowed 6\. .*Either you rounded"),
    (RoundsToNearest, r"Case 8.*You rounded ratio \* first attempts to the nearest whole number"),
    # found by the second learner review (rev9a)
    (AppendsThenComparesLessOrEqual, r"Case 8.*or you appended the retry first and then compared len\(retries\) <= "
                                     r"limit"),
    (KeepsRetriesAtTheEdge, r"Case 13, RetryBudget\(0\.1, 10\.0, 1\): a retry granted at t=0 s.*yours allowed 0\. "
                            r"Your window keeps retries exactly `window` seconds old"),
    (ForgetsOnlyOnRequests, r"Case 5.*yours allowed 0\. Your budget forgets old times only when a first attempt "
                            r"arrives"),
    (MinimumPerSecond, r"Case 1.*yours allowed 20\. It also differs in case 3 \(30 where 15 fit\)"),
])
def test_retry_budget_mistakes(wrong, match):
    fails(check.retry_budget, wrong, match=match)


@pytest.mark.parametrize("wrong, misleading", [
    (AppendsThenComparesLessOrEqual, "(int() or round())"),
    (MinimumPerSecond, "never runs out"),
    (ForgetsOnlyOnRequests, "never forgets"),
])
def test_retry_budget_hints_only_on_a_full_match(wrong, misleading):
    assert misleading not in fails(check.retry_budget, wrong, match="Case")


def test_retry_budget_answers_must_be_booleans():
    class Silent(Budget):
        def try_retry(self, now):
            super().try_retry(now)

    class Wordy(Budget):
        def try_retry(self, now):
            return "yes" if super().try_retry(now) else "no"
    fails(check.retry_budget, Silent, match=r"try_retry\(1\) returned None: it ended without reaching a `return`")
    fails(check.retry_budget, Wordy, match="returned 'yes': return True or False")


def test_retry_budget_other_signatures_and_errors():
    class TwoArgs(Budget):
        def __init__(self, ratio, window):
            super().__init__(ratio, window)
    fails(check.retry_budget, TwoArgs, match=r"takes \(ratio, window, min_retries\)")

    class NoTryRetry:
        def __init__(self, *args):
            pass

        def record_request(self, now):
            pass
    fails(check.retry_budget, NoTryRetry, match="has no method try_retry")

    class Crashes(Budget):
        def try_retry(self, now):
            return self.retries[-1] > 0
    fails(check.retry_budget, Crashes, match=r"Crashes.try_retry\(1\) raised IndexError")


def test_retry_budget_needs_the_defaults_the_lab_uses():
    """The lab's later cell builds RetryBudget() with no arguments."""
    class RetryBudget(Budget):
        def __init__(self, ratio, window, min_retries):
            super().__init__(ratio, window, min_retries)
    message = fails(check.retry_budget, RetryBudget, match=r"^RetryBudget\(\) raised TypeError")
    assert "The lab builds RetryBudget() with no arguments" in message
    assert "def __init__(self, ratio=0.1, window=10.0, min_retries=5); yours has none for ratio, window and " \
           "min_retries." in message

    class SomeDefaults(Budget):
        def __init__(self, ratio, window=10.0, min_retries=5):
            super().__init__(ratio, window, min_retries)
    fails(check.retry_budget, SomeDefaults, match=r"yours has none for ratio\.$")

    class OtherDefaults(Budget):
        def __init__(self, ratio=0.2, window=10.0, min_retries=5):
            super().__init__(ratio, window, min_retries)
    fails(check.retry_budget, OtherDefaults, match=r"OtherDefaults\(\) with no arguments allowed 25 retries.*"
                                                   r"OtherDefaults\(0\.1, 10\.0, 5\) allows 15.*\(yours: ratio=0\.2\)")


def test_retry_budget_accepts_other_correct_forms(capsys):
    import math

    import numpy as np

    class Ceiling(Budget):                # with a strict <, rounding the allowance up changes nothing
        def allowed(self):
            return self.min_retries + math.ceil(self.ratio * len(self.requests))

    class NumpyAnswer(Budget):
        def try_retry(self, now):
            return np.bool_(super().try_retry(now))

    class ExtraOption(Budget):
        def __init__(self, ratio=0.1, window=10.0, min_retries=5, name="db"):
            super().__init__(ratio, window, min_retries)
    for cls in (Ceiling, NumpyAnswer, ExtraOption):
        check.retry_budget(cls)
    assert capsys.readouterr().out.count("✔") == 3


def test_retry_budget_accepts_a_deque_based_solution(capsys):
    from collections import deque

    class DequeBudget:
        def __init__(self, ratio=0.1, window=10.0, min_retries=5):
            self.ratio, self.window, self.min_retries = ratio, window, min_retries
            self.requests, self.retries = deque(), deque()

        def record_request(self, now):
            self.requests.append(now)

        def try_retry(self, now):
            for q in (self.requests, self.retries):
                while q and q[0] <= now - self.window:
                    q.popleft()
            ok = len(self.retries) < self.min_retries + self.ratio * len(self.requests)
            if ok:
                self.retries.append(now)
            return ok
    check.retry_budget(DequeBudget)
    assert "✔" in capsys.readouterr().out


# --- task 4: which failures to retry ---------------------------------------------------------------------
def rule(attempt, reason, idempotent, key, max_attempts=3):
    return attempt < max_attempts and reason in RETRYABLE and (idempotent or key is not None)


def test_every_reason_the_lab_asks_about_is_in_the_core_vocabulary():
    assert set(RETRYABLE) <= REASONS and set(check.NOT_RETRYABLE) <= REASONS
    assert not set(RETRYABLE) & set(check.NOT_RETRYABLE)


def test_the_labs_rule_is_the_course_retry_policy():
    """What the lab checks a learner against is what RetryPolicy decides, on every case it asks."""
    for m in (1, 3, 5):
        policy = RetryPolicy(m, Constant(0))
        for reason in sorted(RETRYABLE) + list(check.NOT_RETRYABLE) + [check.UNLISTED]:
            for a in range(1, m + 2):
                for i in (True, False):
                    for k in (None, "order-42"):
                        assert policy.should_retry(a, reason, i, k) == rule(a, reason, i, k, m), (a, reason, i, k, m)


@pytest.mark.parametrize("wrong, match", [
    (lambda a, r, i, k, m=3: a < m and (i or k is not None), r"'bad request'.*same.*RETRYABLE"),
    (lambda a, r, i, k, m=3: a < m and r not in ("bad request", "not found") and (i or k is not None),
     r"allowlist"),
    (lambda a, r, i, k, m=3: a < m and (r in RETRYABLE or r == "circuit open") and (i or k is not None),
     r"'circuit open'.*our own circuit breaker"),
    (lambda a, r, i, k, m=3: a < m and (r in RETRYABLE or r == "deadline") and (i or k is not None),
     r"deadline has passed"),
    (lambda a, r, i, k, m=3: a < m and r in ("error", "timeout") and (i or k is not None),
     r"'crashed', 'down'.*are in RETRYABLE"),
    (lambda a, r, i, k, m=3: a < m and r in RETRYABLE, r"not idempotent and carries no idempotency key"),
    (lambda a, r, i, k, m=3: a < m and r in RETRYABLE and i, r"carries an idempotency key"),
    (lambda a, r, i, k, m=3: a <= m and r in RETRYABLE and (i or k is not None), r"was the last of max_attempts"),
    (lambda a, r, i, k, m=3: a + 1 < m and r in RETRYABLE and (i or k is not None), r"still a call left"),
    (lambda a, r, i, k, m=3: a < 3 and r in RETRYABLE and (i or k is not None), r"max_attempts argument"),
    # found by the second learner review (rev9a): an allowlist with a reason added is not a skip list
    (lambda a, r, i, k, m=3: a < m and (r in RETRYABLE or r == "throttled") and (i or k is not None),
     r"'throttled'.*You retry 'throttled', which RETRYABLE does not hold, yet not 'conflict'.*'throttled' is not "
     r"'too many requests'"),
    (lambda a, r, i, k, m=3: a < m and r not in check.NOT_RETRYABLE and (i or k is not None),
     r"should_retry\(1, 'conflict', True, None, 3\) returned True.*in neither list.*an allowlist\): a list of "
     r"reasons to skip lets through"),
])
def test_should_retry_mistakes(wrong, match):
    fails(check.should_retry, wrong, match=match)


@pytest.mark.parametrize("wrong, match", [
    (lambda a, r, i, k, m=3: a < m and r in RETRYABLE and i and k is not None,
     r"\(1, 'crashed', True, None, 3\) returned False.*idempotent.*either one is enough"),
    (lambda a, r, i, k, m=3: a < m and r in RETRYABLE and k is not None,
     r"\(1, 'crashed', True, None, 3\) returned False.*idempotent: doing it twice does no harm"),
])
def test_should_retry_idempotent_calls_need_no_key(wrong, match):
    message = fails(check.should_retry, wrong, match=match)
    assert "still a call left" not in message


def test_should_retry_accepts_a_numpy_bool(capsys):
    import numpy as np
    check.should_retry(lambda a, r, i, k, m=3: np.bool_(rule(a, r, i, k, m)))
    assert "✔" in capsys.readouterr().out


def test_should_retry_must_return_a_bool():
    fails(check.should_retry, lambda a, r, i, k, m=3: a < m and r in RETRYABLE and (i or k),
          match=r"returned None \(NoneType\): return True or False.*key is not None")
    fails(check.should_retry, lambda a, r, i, k, m=3: a < m and r in RETRYABLE and (k or i),
          match=r"returned 'order-42' \(str\): return True or False.*bool")
    fails(check.should_retry, lambda a, r, i, k, m=3: None, match="forget `return`")
    fails(check.should_retry, lambda a, r, i, k, m=3: int(rule(a, r, i, k, m)), match="return True or False")


def test_should_retry_message_names_the_call():
    message = fails(check.should_retry, lambda a, r, i, k, m=3: a < m and r in RETRYABLE, match="idempotency")
    assert "should_retry(1, 'crashed', False, None, 1)" not in message      # attempt 1 of 1: no retry anyway
    assert message.startswith("should_retry(1, 'crashed', False, None, 3) returned True, should be False")


def test_should_retry_needs_the_default_call_with_retries_uses():
    """call_with_retries calls should_retry with 4 arguments."""
    def should_retry(attempt, reason, idempotent, key, max_attempts):
        return rule(attempt, reason, idempotent, key, max_attempts)
    message = fails(check.should_retry, should_retry,
                    match=r"^should_retry\(1, 'crashed', True, None\) raised TypeError")
    assert "call_with_retries calls should_retry(attempt, reason, idempotent, key), with 4 arguments, so " \
           "max_attempts needs its default (yours has none): def should_retry(attempt, reason, idempotent, key, " \
           "max_attempts=3)." in message

    def other_default(attempt, reason, idempotent, key, max_attempts=5):
        return rule(attempt, reason, idempotent, key, max_attempts)
    fails(check.should_retry, other_default,
          match=r"should_retry\(3, 'crashed', True, None\) returned True, should be False.*default max_attempts=3")


def test_should_retry_accepts_other_correct_forms(capsys):
    def verbose(attempt, reason, idempotent, key, max_attempts=3):
        if attempt >= max_attempts or reason not in RETRYABLE:
            return False
        if not idempotent and key is None:
            return False
        return True
    check.should_retry(verbose)
    check.should_retry(lambda a, r, i, k, m=3: bool(rule(a, r, i, k, m)))
    assert capsys.readouterr().out.count("✔") == 2


# --- learner code that never returns ----------------------------------------------------------------------
def test_retry_budget_whose_trimming_loop_never_advances_is_stopped(tmp_path):
    out, took = run_child(tmp_path, '''
        from resilience_sim.labs import backoff as check

        class RetryBudget:
            def __init__(self, ratio=0.1, window=10.0, min_retries=5):
                self.ratio, self.window, self.min_retries = ratio, window, min_retries
                self.requests, self.retries = [], []

            def record_request(self, now):
                self.requests.append(now)

            def try_retry(self, now):
                i = 0
                while i < len(self.requests):           # meant to skip the old ones, never moves past them
                    if self.requests[i] <= now - self.window:
                        continue
                    i += 1
                self.requests = self.requests[i:]
                if len(self.retries) < self.min_retries + self.ratio * len(self.requests):
                    self.retries.append(now)
                    return True
                return False

        try:
            check.retry_budget(RetryBudget)
        except AssertionError as exc:
            print(exc)
    ''')
    assert took < 20
    assert "RetryBudget.try_retry(25) did not return within 2 s: a loop with no end? A `while` loop that drops " \
           "old times must drop one at every turn" in out, out
    assert "(It was stopped at `" in out           # at one of the loop's lines


# --- found by the learner review: parameters every case held at one value, the wall clock, falling off ---
def budget_with(**fixed):
    """The reference budget, but holding some of ratio, window and min_retries at the task's defaults."""
    class RetryBudget:
        def __init__(self, ratio=0.1, window=10.0, min_retries=5):
            self.ratio = fixed.get("ratio", ratio)
            self.window = fixed.get("window", window)
            self.min_retries = fixed.get("min_retries", min_retries) if min_retries else 0
            self.requests, self.retries = [], []

        def record_request(self, now):
            self.requests.append(now)

        def try_retry(self, now):
            edge = now - self.window
            self.requests = [t for t in self.requests if t > edge]
            self.retries = [t for t in self.retries if t > edge]
            if len(self.retries) < self.min_retries + self.ratio * len(self.requests):
                self.retries.append(now)
                return True
            return False
    return RetryBudget


@pytest.mark.parametrize("fixed, match", [
    (dict(ratio=0.1), r"Case 9, RetryBudget\(0.5, 10.0, 0\).*yours allowed 1\. .*use self.ratio"),
    (dict(window=10.0), r"Case 11, RetryBudget\(0.1, 2.0, 0\).*yours allowed 4\. .*now - self.window"),
    (dict(min_retries=5), r"Case 10, RetryBudget\(0.1, 10.0, 2\).*yours allowed 5\. .*self.min_retries"),
])
def test_a_budget_that_ignores_a_parameter_is_rejected_by_name(fixed, match):
    fails(check.retry_budget, budget_with(**fixed), match=match)


def test_a_budget_that_reads_the_wall_clock_is_told_so_not_that_it_never_forgets():
    base = budget_with()

    class RetryBudget(base):
        def record_request(self, now):
            super().record_request(time.monotonic())

        def try_retry(self, now):
            return super().try_retry(time.monotonic())
    message = fails(check.retry_budget, RetryBudget, match=r"yours allowed \d+\. Your budget reads the wall clock")
    assert "never forgets" not in message


def test_should_retry_that_falls_off_the_end_is_told_no_return_was_reached():
    def should_retry(attempt, reason, idempotent, key, max_attempts=3):
        if attempt < max_attempts and reason in RETRYABLE:
            if idempotent or key is not None:
                return True
        elif attempt >= max_attempts:
            return False
    message = fails(check.should_retry, should_retry, match=r"returned None, should be False: no `return` was reached")
    assert "forget" not in message


# --- the learner's copy as a learner runs it, skipping a task: later cells say which task to write first ----
def no_cap(attempt, base, cap):
    return base * 2 ** attempt


def no_default(attempt, reason, idempotent, key, max_attempts):
    return attempt < max_attempts and reason in RETRYABLE and (idempotent or key is not None)


EXPONENTIAL, JITTER, BUDGET, SHOULD = "a2a8009e", "3026b2a9", "c8a1c9bd", "ae993fdc"     # the tasks' cells


@pytest.mark.parametrize("stub, then, task, own, later", [
    # task 1 not written: its table, task 2's check and run, and the closing loop
    ([EXPONENTIAL], None, 1, ["97c94330"], ["154d55e6", "3b5b6ad2", "b7e781d5", "9be13b7b"]),
    ([], {EXPONENTIAL: {"exponential_delay": no_cap}}, 1, ["97c94330"],
     ["154d55e6", "3b5b6ad2", "b7e781d5", "9be13b7b"]),
    ([JITTER], None, 2, ["3b5b6ad2"], ["b7e781d5", "9be13b7b"]),
    ([BUDGET], None, 3, ["48b7968e"], ["7b34d015", "9be13b7b"]),
    ([], {BUDGET: {"RetryBudget": budget_with(ratio=0.1)}}, 3, ["48b7968e"], ["7b34d015", "9be13b7b"]),
    ([SHOULD], None, 4, ["99e1e2ca"], ["9be13b7b"]),
    # no default for max_attempts: task 4's check says so, and the loop that calls it with 4 arguments too
    ([], {SHOULD: {"should_retry": no_default}}, 4, ["99e1e2ca"], ["9be13b7b"]),
], ids=["1", "1-no-cap", "2", "3", "3-fixed-ratio", "4", "4-no-default"])
def test_a_learner_who_skips_a_task_is_told_to_write_it_first(stub, then, task, own, later):
    says_which_task_first(walk("02_backoff_and_budget.ipynb", stub=stub, then=then), task, own, later)


def test_the_loop_after_task_4_quotes_its_check():
    failed = walk("02_backoff_and_budget.ipynb", then={SHOULD: {"should_retry": no_default}})
    assert re.match(r"Task 4 is not done yet: check\.should_retry\(should_retry\) does not pass\. It says: "
                    r"should_retry\(1, '[a-z ]+', True, None\) raised TypeError", str(failed["9be13b7b"]))
    with pytest.raises(AssertionError, match=r"^Write task 1 first: exponential_delay is not written yet"):
        exec("check.full_jitter(full_jitter)", {"check": check, "exponential_delay": _stub,
                                                "full_jitter": lambda a, rng, b, c: rng.uniform(0, min(c, b * 2 ** a))})
