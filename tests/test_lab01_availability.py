"""Lab 01's checks accept the reference solution and reject each typical mistake with a message that
names it. The reference functions come from the solution notebook itself (its code cells run here
in order), so the notebook stays the single source of truth."""
from __future__ import annotations

import math
import random
import signal
import threading
import time

import pytest
from lab_support import fails, run_child, says_which_task_first, solution_namespace, walk

from resilience_sim import FailureRepair, RepairCrew, Service, World, theory
from resilience_sim.labs import availability as check


@pytest.fixture(scope="module")
def ref() -> dict:
    """The namespace left by running every code cell of the solution notebook."""
    return solution_namespace("01_availability.ipynb")


# --- the reference solution passes every check ---------------------------------------------------
FUNCTION_CHECKS = ["availability", "series", "parallel", "downtime_per_month", "min_replicas", "max_mttr",
                   "measured_availability", "min_replicas_shared_crew"]


@pytest.mark.parametrize("name", FUNCTION_CHECKS)
def test_check_accepts_the_solution(ref, name, capsys):
    getattr(check, name)(ref[name])
    out = capsys.readouterr().out
    assert out.startswith("✔ ") and out.count("\n") <= 2


def test_answer_checks_accept_the_solution(ref, capsys):
    check.checkout(ref["checkout_mttr"], ref["checkout_availability"])
    check.shared_crew_verdict(ref["meets_target"])
    check.shared_crew_verdict(ref["meets_target"], measured=ref["measured"])
    assert capsys.readouterr().out.count("✔") == 3


def test_solution_design_numbers():
    """The numbers the lab's story rests on (the prose says 'a little under the limit')."""
    assert math.isclose(check._max_mttr(check.TARGET, 200, 2), 4.5744, rel_tol=1e-4)
    assert theory.replicas_availability(2, 200, 4, crews=1) < check.TARGET < theory.replicas_availability(2, 200, 4)


@pytest.mark.parametrize("name", FUNCTION_CHECKS)
def test_unwritten_function_says_so(name):
    def stub(*args):
        raise NotImplementedError("Your code here")
    fails(getattr(check, name), stub, match="not written yet")


def test_unset_answers_say_so():
    """The learner's copy sets each answer to the placeholder ... before the stub line, so the check cell
    after an unchanged answer cell says "not written yet" instead of raising NameError."""
    right = theory.availability(504, 0.5)
    fails(check.checkout, ..., ..., match=r"checkout_mttr is not written yet.*sets checkout_mttr")
    fails(check.checkout, 0.5, ..., match=r"checkout_availability is not written yet")
    fails(check.checkout, None, right, match=r"checkout_mttr is None: set it")
    fails(check.shared_crew_verdict, ..., match=r"meets_target is not written yet")


def test_passing_something_other_than_a_function():
    fails(check.availability, 0.99, match="pass the function itself")


def test_forgotten_return():
    def availability(mttf, mttr):
        mttf / (mttf + mttr)
    fails(check.availability, availability, match="forget `return`")


def test_learner_exception_is_reported_with_its_call():
    def availability(mttf, mttr):
        return mttf / (mttr - mttr)
    fails(check.availability, availability, match=r"availability\(99, 1\) raised ZeroDivisionError")


# --- task 1: availability -------------------------------------------------------------------------
@pytest.mark.parametrize("wrong, match", [
    (lambda f, r: r / (f + r), "swapped"),
    (lambda f, r: 100 * f / (f + r), "percentage"),
    (lambda f, r: f / r, "whole cycle"),
    (lambda f, r: r / f, "ratio of down to up"),
    (lambda f, r: 1 - r / f, "approximation"),
    (lambda f, r: f / (f + r) + 0.01, r"should be 0\.99, yours gave 1\b"),
    # found by the second learner review (rev9a): a rounded percentage is a percentage too
    (lambda f, r: round(100 * f / (f + r), 2), r"yours gave 99\. More than 1 for a share of time: that looks like a "
                                               r"percentage"),
])
def test_availability_mistakes(wrong, match):
    fails(check.availability, wrong, match=match)


def test_rounded_availability_is_told_to_stop_rounding():
    fails(check.availability, lambda f, r: round(f / (f + r), 4), match=r"0\.990099, yours gave 0\.9901\. "
                                                                        r"Close on every case.*did you round")


def test_availability_accepts_numpy(capsys):
    import numpy as np
    check.availability(lambda f, r: np.float64(f) / np.add(f, r))
    assert "✔" in capsys.readouterr().out


# --- task 2: the checkout service -----------------------------------------------------------------
def test_checkout_mistakes():
    right = theory.availability(504, 0.5)
    fails(check.checkout, 0.3, theory.availability(504, 0.3), match="detect")
    fails(check.checkout, 30, theory.availability(504, 30), match="minutes, but MTTF is in hours")
    fails(check.checkout, 1800, right, match="seconds")
    fails(check.checkout, 0.2, right, match="only the time to detect")
    fails(check.checkout, 18, right, match="restart alone")
    fails(check.checkout, 0.5, 100 * right, match="percentage")
    fails(check.checkout, 0.5, theory.availability(504, 30), match="mixes hours")
    fails(check.checkout, 0.5, theory.availability(504, 0.3), match="leaves the detection time out")
    fails(check.checkout, 0.5, 1 - right, match="swapped")
    fails(check.checkout, 0.5, round(right, 5), match="round")
    fails(check.checkout, 0.5, "0.999", match="checkout_availability should be a number")
    # found by the second learner review (rev9a): the MTBF mix-ups the lab defines, a rounded percentage
    fails(check.checkout, 0.5, theory.availability(504 + 0.5, 0.5),
          match=r"yours is 0\.99901\. That takes 504 h for the MTBF and adds MTTR again")
    fails(check.checkout, 0.5, theory.availability(504 - 0.5, 0.5),
          match=r"That is 1 − MTTR/MTTF, which is also availability\(504 − 0\.5, 0\.5\)")
    fails(check.checkout, 0.5, 99.9, match=r"yours is 99\.9\. More than 1 for a share of time.*percentage")


# --- task 3: series and parallel -----------------------------------------------------------------
@pytest.mark.parametrize("wrong, match", [
    (lambda *a: sum(a), r"0\.99, 0\.99\) should be 0\.9801, yours gave 1\.98\. Did you add them\?"),
    (lambda *a: min(a), "weakest part"),
    (lambda *a: sum(a) / len(a), "average"),
    (lambda *a: 1 - math.prod(1 - x for x in a), "parallel formula"),
    (lambda *a: math.prod(1 - x for x in a), "unavailabilities"),
    (lambda *a: 1 - sum(1 - x for x in a), "approximation"),
    (lambda *a: 100 * math.prod(a), "percentage"),
])
def test_series_mistakes(wrong, match):
    fails(check.series, wrong, match=match)


def product_from_zero(*avail):
    p = 0
    for a in avail:
        p *= a
    return p


def return_inside_the_loop(*avail):
    p = 1
    for a in avail:
        p *= a
        return p


def parallel_product_from_zero(*avail):
    down = 0
    for a in avail:
        down *= 1 - a
    return 1 - down


def parallel_return_inside_the_loop(*avail):
    down = 1
    for a in avail:
        down *= 1 - a
        return 1 - down


@pytest.mark.parametrize("name, wrong, match", [
    ("series", product_from_zero, "gives 0 for every chain.*start it at 1"),
    ("series", return_inside_the_loop, "first availability alone.*`return` inside the for loop"),
    ("parallel", parallel_product_from_zero, "gives 1 for every set of replicas.*start it at 1"),
    ("parallel", parallel_return_inside_the_loop, "first availability alone.*`return` inside the for loop"),
])
def test_composition_loop_mistakes(name, wrong, match):
    fails(getattr(check, name), wrong, match=match)


def test_composition_accepts_other_correct_forms(capsys):
    import functools
    import operator

    import numpy as np
    check.series(lambda *a: functools.reduce(operator.mul, a, 1))
    check.series(lambda *a: np.prod(a))
    check.parallel(lambda *a: 1 - np.prod(1 - np.array(a)))
    check.parallel(lambda *a, independent=True: 1 - math.prod(1 - x for x in a))   # an extra optional parameter
    assert capsys.readouterr().out.count("✔") == 4


@pytest.mark.parametrize("wrong, match", [
    (lambda *a: max(a), "better than the best one alone.*1 − Π\\(1 − a\\)"),
    (lambda *a: sum(a), "Did you add them\\? Adding gives more than 1"),
    (lambda *a: min(1.0, sum(a)), "capping at 1"),
    (lambda *a: math.prod(a), "series formula"),
    (lambda *a: math.prod(1 - x for x in a), "all replicas are down at once.*1 minus it"),
    (lambda *a: 1 - math.prod(a), "Multiply the unavailabilities"),
    (lambda *a: sum(a) / len(a), "average"),
    (lambda *a: 100 * (1 - math.prod(1 - x for x in a)), "percentage"),
])
def test_parallel_mistakes(wrong, match):
    fails(check.parallel, wrong, match=match)


def test_composition_with_a_fixed_number_of_arguments():
    def series(a, b):
        return a * b
    fails(check.series, series, match=r"TypeError.*Does series take the arguments the task gives it")

    def parallel(avails):
        return 1 - math.prod(1 - a for a in avails)
    fails(check.parallel, parallel, match="TypeError")


# --- task 4: downtime per month ------------------------------------------------------------------
def test_downtime_with_the_sre_books_30_day_month_is_accepted_and_named(capsys):
    check.downtime_per_month(lambda a: (1 - a) * 30 * 24 * 60)
    out = capsys.readouterr().out
    assert out.startswith("✔") and "43.2 minutes" in out and "30-day month" in out and "43.8" in out


def test_downtime_with_the_average_month_names_the_other_convention(capsys):
    check.downtime_per_month(lambda a: (1 - a) * 365.25 * 1440 / 12)
    out = capsys.readouterr().out
    assert out.startswith("✔") and "43.8 minutes" in out and "30.4375" in out and "43.2" in out


@pytest.mark.parametrize("days", [365 / 12, 30.44, 30.42, 30.4, 30.5, 30.05])
def test_downtime_with_a_month_within_a_quarter_percent_of_a_convention_is_accepted_with_its_length(days, capsys):
    """One tolerance for every month near a convention: 365/12 days (0.068% off) and 30.42 (0.058%) alike."""
    check.downtime_per_month(lambda a: (1 - a) * days * 1440)
    out = capsys.readouterr().out
    assert out.startswith("✔") and f"{days:.6g} days" in out and "accepted" in out


@pytest.mark.parametrize("days", [30.6, 30.3, 29.9])
def test_downtime_with_a_month_further_from_both_conventions_is_rejected_with_its_length(days):
    fails(check.downtime_per_month, lambda a: (1 - a) * days * 1440, match=f"a month of {days:g} days")


def test_downtime_that_mixes_the_two_months_is_rejected_as_inconsistent():
    def mixed(a):
        return (1 - a) * (365.25 / 12 if a > 0.6 else 30) * 1440
    fails(check.downtime_per_month, mixed, match=r"not 1 − a times one month.*30.4375 days.*30 days")


@pytest.mark.parametrize("wrong, match", [
    (lambda a: (1 - a) * 31 * 1440, "31-day month"),
    (lambda a: (1 - a) * 28 * 1440, "four weeks"),
    (lambda a: (1 - a) * 365.25 * 86400 / 12, "in seconds"),
    (lambda a: (1 - a) * 30 * 86400, "in seconds"),
    (lambda a: (1 - a) * 365.25 * 24 / 12, "in hours"),
    (lambda a: (1 - a) * 30 * 24, "in hours"),
    (lambda a: (1 - a) * 365.25 / 12, "in days"),
    (lambda a: (1 - a) * 365.25 * 1440, "per year"),
    (lambda a: (1 - a) * 360 * 1440, "per year"),
    (lambda a: a * 365.25 * 1440 / 12, r"time \*up\*"),
    (lambda a: a * 30 * 1440, r"time \*up\*"),
    (lambda a: (1 - a / 100) * 365.25 * 1440 / 12, "not a percentage"),
    # found by the second learner review (rev9a): rounded answers are named as rounded
    (lambda a: round((1 - a) * 365.25 * 1440 / 12, 1), r"should be 43\.8300 minutes with the average month; yours "
                                                      r"gave 43\.8\. .*did you round"),
    (lambda a: round((1 - a) * 30 * 1440), r"with the SRE book's 30-day month; yours gave 43\. .*did you round"),
])
def test_downtime_mistakes(wrong, match):
    fails(check.downtime_per_month, wrong, match=match)


# --- task 5: design ------------------------------------------------------------------------------
def _needed(t, f, r, compare=lambda x, t: x >= t):
    a = f / (f + r)
    n = 1
    while not compare(1 - (1 - a) ** n, t):
        n += 1
    return n


def _ratio(t, f, r):
    return math.log(1 - t) / math.log(r / (f + r))


@pytest.mark.parametrize("wrong, match", [
    (lambda t, f, r: _needed(t, f, r, lambda x, t: x > t), r"0\.75, 1, 1\) should be 2.*>=, not >"),
    (lambda t, f, r: math.floor(_ratio(t, f, r)), "rounded down"),
    (lambda t, f, r: round(_ratio(t, f, r)), "nearest"),
    (lambda t, f, r: _needed(t, f, r) + 1, "One replica too many"),
    (lambda t, f, r: _needed(t, f, r) - 1, "One replica short"),
    (lambda t, f, r: _needed(t, r, f), "swapped"),
    (lambda t, f, r: _ratio(t, f, r), "replicas come whole: round \\*up\\*"),
    (lambda t, f, r: None, "ended without reaching a `return`"),
    # found by the second learner review (rev9a): a parameter ignored is named
    (lambda t, f, r: _needed(check.TARGET, f, r), r"right for target=0\.9995 \(the lab's TARGET\) on every case.*"
                                                  r"use its `target` argument"),
    (lambda t, f, r: _needed(t, f, 4.0), r"right for mttr=4 on every case.*`mttr` argument"),
    (lambda t, f, r: _needed(t, 200.0, r), r"right for mttf=200 on every case.*`mttf` argument"),
])
def test_min_replicas_mistakes(wrong, match):
    message = fails(check.min_replicas, wrong, match=match)
    assert "should be" in message or "whole" in message or "return" in message


def test_min_replicas_message_shows_the_availabilities():
    message = fails(check.min_replicas, lambda t, f, r: 1, match="should be 2")
    assert "2 replicas give 0.9996155" in message and "1 gives 0.9803922" in message


@pytest.mark.parametrize("wrong, match", [
    (lambda t, f, n: f * (1 - t) / t, "ignored n"),
    (lambda t, f, n: f * (1 - t) ** (1 / n), "approximation for small u"),
    (lambda t, f, n: f * (1 - (1 - t) ** (1 / n)) / (1 - t) ** (1 / n), "Upside down"),
    (lambda t, f, n: f * ((1 - t) / n) / (1 - (1 - t) / n), "do not split"),
    (lambda t, f, n: f * (1 - t ** (1 / n)) / t ** (1 / n), "in series"),
    (lambda t, f, n: 1 - (1 - t) ** (1 / n), "availability each replica needs"),
    (lambda t, f, n: (1 - t) ** (1 / n), "share of time each replica may be down"),
    (lambda t, f, n: f * (1 - check.TARGET) ** (1 / n) / (1 - (1 - check.TARGET) ** (1 / n)),
     r"right for target=0\.9995 \(the lab's TARGET\).*`target` argument"),
])
def test_max_mttr_mistakes(wrong, match):
    fails(check.max_mttr, wrong, match=match)


def test_max_mttr_with_the_power_instead_of_the_root():
    fails(check.max_mttr, lambda t, f, n: f * (1 - t) ** n / (1 - (1 - t) ** n), match="power n.*n-th root")


def test_min_replicas_accepts_the_closed_form(capsys):
    import numpy as np
    check.min_replicas(lambda t, f, r: math.ceil(math.log(1 - t) / math.log(r / (f + r))))
    check.min_replicas(lambda t, f, r: np.ceil(np.log(1 - t) / np.log(r / (f + r))))
    assert capsys.readouterr().out.count("✔") == 2


def test_max_mttr_says_whether_the_answer_misses_or_beats_the_target():
    message = fails(check.max_mttr, lambda t, f, n: 2 * f * (1 - t) / t, match="misses the target")
    assert "0.9995, 200, 1) should be 0.10005" in message
    fails(check.max_mttr, lambda t, f, n: 0.5 * f * (1 - t) / t, match="beats")


def test_max_mttr_accepts_a_bisection():
    def max_mttr(target, mttf, n):
        low, high = 0.0, 1e6
        for _ in range(100):
            mid = (low + high) / 2
            a = mttf / (mttf + mid)
            low, high = (mid, high) if 1 - (1 - a) ** n >= target else (low, mid)
        return low
    check.max_mttr(max_mttr)


# --- task 6: the shared crew ---------------------------------------------------------------------
def simulation(*, crew_per_replica=False, ignore_crews=False, fixed_crew=None, need="any", measure_one=False,
               swap=False, random_seed=False, fixed_seed=None, fixed_n=None, crew_of_one=False):
    """A measured_availability with one deliberate mistake switched on."""
    def measured_availability(n, mttf, mttr, crews, until, seed):
        if random_seed:
            seed = random.randrange(10**6)
        n = fixed_n or n
        world = World(seed=seed if fixed_seed is None else fixed_seed)
        size = fixed_crew or crews
        shared = None if crews is None or ignore_crews else RepairCrew(world, size)
        if crew_of_one:                                   # RepairCrew(world, 1) whatever crews is, None too
            shared = RepairCrew(world, 1)
        names = [f"r{i}" for i in range(n)]
        for name in names:
            crew = RepairCrew(world, size) if crew_per_replica and crews is not None else shared
            f, r = (mttr, mttf) if swap else (mttf, mttr)
            FailureRepair(Service(world, name), mttf=f, mttr=r, crew=crew)
        results = world.run(until=until)
        return results.time_availability(*(names[:1] if measure_one else names), need=need)
    return measured_availability


def test_solution_style_simulation_with_other_names_passes(capsys):
    check.measured_availability(simulation())
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, match", [
    ({"ignore_crews": True}, "repaired independently.*ONE RepairCrew"),
    ({"crew_per_replica": True}, "repaired independently.*ONE RepairCrew"),
    ({"fixed_crew": 1}, r"one person whatever crews says"),
    ({"need": "all"}, "ALL replicas are up"),
    ({"measure_one": True}, "one replica's availability"),
    ({"swap": True}, "swapped"),
    ({"random_seed": True}, "for the same seed"),
    ({"fixed_seed": 1}, "same answer for seeds 3 and 4"),
    # found by the second learner review (rev9a): a parameter ignored is named
    ({"fixed_n": 2}, r"right for n=2 on every case.*`n` argument.*range\(n\)"),
    ({"crew_of_one": True}, r"one person whatever crews says, even with crews=None"),
])
def test_measured_availability_mistakes(mistake, match):
    fails(check.measured_availability, simulation(**mistake), match=match)


def test_measured_availability_converting_some_times():
    """mttf and mttr turned into seconds (as if they came in hours), until left alone: nothing fails."""
    sim = simulation()
    fails(check.measured_availability, lambda n, f, r, c, until, seed: sim(n, 3600 * f, 3600 * r, c, until, seed),
          match="hardly ever fail.*pass them on as they are")


def test_measured_availability_with_the_names_as_a_list():
    def measured_availability(n, mttf, mttr, crews, until, seed):
        world = World(seed=seed)
        crew = None if crews is None else RepairCrew(world, crews)
        names = [f"r{i}" for i in range(n)]
        for name in names:
            FailureRepair(Service(world, name), mttf=mttf, mttr=mttr, crew=crew)
        return world.run(until=until).time_availability(names, need="any")
    fails(check.measured_availability, measured_availability, match=r"raised WrongType.*unpack a list with a star")


def test_measured_availability_percent():
    sim = simulation()
    fails(check.measured_availability, lambda *args: 100 * sim(*args), match="percentage")


def test_verdict_mistakes(ref):
    fails(check.shared_crew_verdict, True, match="meets_target is True.*0.99923.*below the target")
    fails(check.shared_crew_verdict, "no", match="True or False")
    measured = ref["measured"]
    fails(check.shared_crew_verdict, True, measured, match="meets_target is True")
    fails(check.shared_crew_verdict, "no", measured, match="True or False")
    independent = theory.replicas_availability(2, 200, 4)
    fails(check.shared_crew_verdict, True, independent, match="does not seem to share one crew")
    fails(check.shared_crew_verdict, False, 0.999, match="two replicas sharing one crew give 0.99923")


def test_verdict_accepts_a_numpy_bool(capsys):
    import numpy as np
    check.shared_crew_verdict(np.float64(0.9992) >= check.TARGET)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    (lambda t, f, r, c, limit=50: check._replicas_needed(t, f, r), "independent repairs.*crews=crews"),
    (lambda t, f, r, c, limit=50: (check._shared_needed(t, f, r, c) or 0) + 1, "One too many"),
    # found by the second learner review (rev9a): crews ignored is not "one too many"
    (lambda t, f, r, c, limit=50: check._shared_needed(t, f, r, 1, limit),
     r"\(0\.9995, 200, 4, 2\) should be 2, yours gave 3\. Your answers are those for crews=1 on every case"),
])
def test_min_replicas_shared_crew_mistakes(wrong, match):
    fails(check.min_replicas_shared_crew, wrong, match=match)


def shared_needed(limit_of_its_own=None, first=1, last=0):
    """min_replicas_shared_crew looping over range(first, limit + last), or over a limit of its own."""
    def min_replicas_shared_crew(target, mttf, mttr, crews, limit=50):
        top = limit if limit_of_its_own is None else limit_of_its_own
        for n in range(first, top + last):
            if theory.replicas_availability(n, mttf, mttr, crews=crews) >= target:
                return n
        return None
    return min_replicas_shared_crew


@pytest.mark.parametrize("wrong, match", [
    (shared_needed(limit_of_its_own=50, last=1), r"4, 1, limit=2\) should be None: 3 replicas are needed.*`limit` "
                                                 r"argument rather than a number of your own"),
    (shared_needed(last=0), r"4, 1, limit=3\) should be 3.*limit itself counts.*range\(1, limit \+ 1\)"),
    (shared_needed(first=0, last=1), r"raised ValueError.*Count replicas from 1"),
])
def test_min_replicas_shared_crew_must_honour_the_limit(wrong, match):
    fails(check.min_replicas_shared_crew, wrong, match=match)


def test_min_replicas_shared_crew_that_starts_at_two_replicas_is_rejected():
    """One case is met by a single replica, so a search from two cannot pass."""
    fails(check.min_replicas_shared_crew, shared_needed(first=2, last=1),
          match=r"min_replicas_shared_crew\(0\.99, 100, 1, 1\) should be 1, yours gave 2\.")


def test_min_replicas_shared_crew_without_the_limit_parameter():
    def min_replicas_shared_crew(target, mttf, mttr, crews):
        return shared_needed(last=1)(target, mttf, mttr, crews)
    fails(check.min_replicas_shared_crew, min_replicas_shared_crew, match=r"limit=3\) raised TypeError.*`def` line")


def test_min_replicas_shared_crew_accepts_a_while_loop(capsys):
    def min_replicas_shared_crew(target, mttf, mttr, crews, limit=50):
        n = 1
        while n <= limit:
            if theory.replicas_availability(n, mttf, mttr, crews=crews) >= target:
                return n
            n += 1
    check.min_replicas_shared_crew(min_replicas_shared_crew)
    assert "✔" in capsys.readouterr().out


def test_min_replicas_shared_crew_without_a_limit():
    def unbounded(target, mttf, mttr, crews, limit=50):
        n = 1
        while n < 1000 and not theory.replicas_availability(n, mttf, mttr, crews=crews) >= target:
            n += 1          # with one crew and MTTR = MTTF / 2 no n reaches 0.9
        return n
    fails(check.min_replicas_shared_crew, unbounded, match="should be None.*bottleneck.*return None")


def test_min_replicas_shared_crew_meeting_the_target_exactly_counts():
    """The case (0.8, 2, 1, 1): two replicas sharing one crew are up exactly 0.8 of the time."""
    assert theory.replicas_availability(2, 2.0, 1.0, crews=1) == 0.8
    assert theory.replicas_availability(1, 2.0, 1.0, crews=1) < 0.8

    def strict(target, mttf, mttr, crews, limit=50):
        for n in range(1, limit + 1):
            if theory.replicas_availability(n, mttf, mttr, crews=crews) > target:
                return n
        return None
    message = fails(check.min_replicas_shared_crew, strict,
                    match=r"min_replicas_shared_crew\(0\.8, 2, 1, 1\) should be 2, yours gave 3\.")
    assert "With 2 replicas availability is exactly 0.8, the target: meeting the target exactly counts, " \
           "compare with >=, not >." in message


# --- learner code that never returns: every call runs under a time limit ----------------------------

HANGING_SHARED_CREW = '''
    import time
    from resilience_sim import theory
    from resilience_sim.labs import availability as check

    def min_replicas_shared_crew(target, mttf, mttr, crews, limit=50):
        n = 1
        while theory.replicas_availability(n, mttf, mttr, crews=crews) < target:
            n += 1
        return n

    started = time.monotonic()
    try:
        check.min_replicas_shared_crew(min_replicas_shared_crew)
    except AssertionError as exc:
        print(type(exc).__name__, exc)
    print(f"took {time.monotonic() - started:.1f} s")
'''


def test_min_replicas_shared_crew_that_never_returns_is_stopped(tmp_path):
    out, took = run_child(tmp_path, HANGING_SHARED_CREW)
    assert "TimedOut min_replicas_shared_crew(0.9, 10, 5, 1) did not return within 2 s: a loop with no end? " \
           "Stop at `limit` and return None." in out, out
    assert "stopped at `while theory.replicas_availability(n, mttf, mttr, crews=crews) < target:`" in out or \
        "stopped at `n += 1`" in out
    assert took < 20


def test_a_loop_that_swallows_exceptions_is_stopped_too(tmp_path):
    out, _ = run_child(tmp_path, '''
        from resilience_sim.labs import availability as check

        def min_replicas(target, mttf, mttr):
            n = 1
            while True:
                try:
                    n += 1
                except Exception:
                    pass

        try:
            check.min_replicas(min_replicas)
        except AssertionError as exc:
            print(exc)
    ''')
    assert "did not return within 2 s: a loop with no end? Make n grow at every turn" in out, out


def test_min_replicas_with_series_instead_of_parallel_is_stopped_and_told_why(tmp_path):
    out, took = run_child(tmp_path, '''
        import math
        from resilience_sim.labs import availability as check

        def series(*avail):
            return math.prod(avail)

        def min_replicas(target, mttf, mttr):
            a = mttf / (mttf + mttr)
            n = 1
            while series(*[a] * n) < target:
                n += 1
            return n

        try:
            check.min_replicas(min_replicas)
        except AssertionError as exc:
            print(exc)
    ''')
    assert "min_replicas(0.9995, 200, 4) did not return within 2 s" in out and "with series, each replica" in out, out
    assert took < 20


def test_off_the_main_thread_a_step_budget_stops_the_loop(tmp_path):
    in_a_thread = HANGING_SHARED_CREW.replace('''    started = time.monotonic()''', '''    import threading
    def run():
        try:
            check.min_replicas_shared_crew(min_replicas_shared_crew)
        except AssertionError as exc:
            print(type(exc).__name__, exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    print("thread done" if not thread.is_alive() else "thread still running")
    started = time.monotonic()''')
    out, took = run_child(tmp_path, in_a_thread)
    assert out.count("did not return within 2 s: a loop with no end? Stop at `limit`") == 2, out
    assert "thread done" in out


def test_the_time_limit_gives_back_the_alarm_it_found(ref, capsys):
    """A SIGALRM handler and timer set before a check (say by a test runner) are there after it, with the
    time that is left."""
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        check.min_replicas_shared_crew(ref["min_replicas_shared_crew"])
        check.availability(ref["availability"])
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25 < left <= 30 and not fired
        assert signal.getsignal(signal.SIGALRM) is not previous and callable(signal.getsignal(signal.SIGALRM))
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        time.sleep(0.2)
        assert fired == [signal.SIGALRM]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert capsys.readouterr().out.count("✔") == 2


def test_no_alarm_is_left_behind(ref, capsys):
    before = signal.getsignal(signal.SIGALRM)
    check.measured_availability(ref["measured_availability"])
    fails(check.availability, lambda f, r: 1 / 0, match="ZeroDivisionError")
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before
    capsys.readouterr()


def test_a_check_runs_in_another_thread(ref):
    """Off the main thread there is no SIGALRM: the check falls back to a step budget and still passes."""
    results = []

    def run():
        try:
            check.min_replicas_shared_crew(ref["min_replicas_shared_crew"])
            results.append("ok")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(repr(exc))
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert results == ["ok"]


# --- the learner's copy as a learner runs it, skipping a task: later cells say which task to write first ----
def _percent(mttf, mttr):
    return 100 * mttf / (mttf + mttr)


@pytest.mark.parametrize("stub, then, task, own, later", [
    # task 1 not written: task 2's cell and check, task 1's table, task 5's check and the design cell
    (["lab01-05"], None, 1, ["lab01-06"], ["lab01-08", "lab01-09", "lab01-11", "lab01-27", "lab01-29"]),
    # task 1 wrong (a percentage): the same cells say task 1 is not done, and what its check says
    ([], {"lab01-05": {"availability": _percent}}, 1, ["lab01-06"],
     ["lab01-08", "lab01-09", "lab01-11", "lab01-27", "lab01-29"]),
    (["lab01-08"], None, 2, ["lab01-08", "lab01-09"], ["lab01-11"]),
    (["lab01-15"], None, 3, ["lab01-16"], ["lab01-27", "lab01-29"]),
    (["lab01-18"], None, 4, ["lab01-19"], ["lab01-21"]),
    (["lab01-24"], None, 5, ["lab01-27"], ["lab01-29"]),
    (["lab01-32"], None, 6, ["lab01-33"], ["lab01-35", "lab01-37", "lab01-38"]),        # 35, 38: named
    (["lab01-37"], None, 6, ["lab01-37", "lab01-38"], []),
    (["lab01-40"], None, 6, ["lab01-41"], ["lab01-42"]),
], ids=["1", "1-wrong", "2", "3", "4", "5", "6-run", "6-verdict", "6-crews"])
def test_a_learner_who_skips_a_task_is_told_to_write_it_first(stub, then, task, own, later):
    says_which_task_first(walk("01_availability.ipynb", stub=stub, then=then), task, own, later,
                          named=("measured_availability", "min_replicas_shared_crew"))


def test_inside_task_6_the_cells_name_the_function_to_write_not_the_task():
    failed = walk("01_availability.ipynb", stub=["lab01-32"])
    for cid in ("lab01-35", "lab01-38"):
        assert str(failed[cid]).startswith("Write measured_availability first: measured_availability is not "
                                           "written yet"), (cid, failed[cid])
    assert str(walk("01_availability.ipynb", stub=["lab01-40"])["lab01-42"]).startswith(
        "Write min_replicas_shared_crew first: ")


def test_a_type_error_from_inside_the_function_gets_no_word_on_its_def_line():
    """world.run() without `until` raises a TypeError about World.run's arguments, not the learner's."""
    def measured_availability(n, mttf, mttr, crews, until, seed):
        world = World(seed=seed)
        for i in range(n):
            FailureRepair(Service(world, f"r{i}"), mttf=mttf, mttr=mttr)
        return world.run().time_availability(*(f"r{i}" for i in range(n)), need="any")
    message = fails(check.measured_availability, measured_availability,
                    match=r"raised TypeError: World\.run\(\) missing 1 required positional argument: 'until'\.$")
    assert "def` line" not in message
    fails(check.series, lambda avails: math.prod(avails),        # the call itself: a word on the def line
          match=r"<lambda>\(\) takes 1 positional argument but 2 were given\. Does series take the arguments")


def test_the_cells_after_task_1_quote_its_check():
    failed = walk("01_availability.ipynb", then={"lab01-05": {"availability": _percent}})
    assert str(failed["lab01-11"]).startswith("Task 1 is not done yet: check.availability(availability) does not "
                                              "pass. It says: availability(99, 1) should be 0.99, yours gave 99.")
    assert str(failed["lab01-08"]) == str(failed["lab01-11"])
    assert str(walk("01_availability.ipynb", stub=["lab01-05"])["lab01-09"]).startswith(
        "Write task 1 first: availability is not written yet")


def test_a_check_runs_the_earlier_tasks_its_function_calls_from_the_notebook():
    """check.min_replicas finds the learner's availability and parallel beside min_replicas (the notebook's
    namespace): it names the task that is not done instead of blaming min_replicas."""
    def unwritten(*args):
        raise NotImplementedError("Your code here")
    notebook = {"availability": theory.availability, "parallel": unwritten, "check": check,
                "min_replicas": lambda t, f, r: 2}
    with pytest.raises(AssertionError, match=r"^Write task 3 first: parallel is not written yet"):
        exec("check.min_replicas(min_replicas)", notebook)
    with pytest.raises(AssertionError, match=r"^Task 1 is not done yet: check\.availability\(availability\)"):
        exec("check.min_replicas(min_replicas)", {**notebook, "availability": _percent})
    with pytest.raises(AssertionError, match=r"^Write task 1 first: `availability` is not defined yet: run the "
                                             r"cell of task 1"):
        exec("check.uses('availability')", {"check": check})
    with pytest.raises(ValueError, match="names must be the learner's .*got \\['avail'\\]"):
        check.uses("avail")
