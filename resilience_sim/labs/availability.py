"""Checks for lab 01, availability and redundancy.

Each check takes the learner's function (or answer), tries it on cases whose right answers come from
:mod:`resilience_sim.theory` (or from the birth-death chain of a shared repair crew), and either
prints one ✔ line or raises ``AssertionError`` with a message that says which case failed, what the
right answer is and, when the wrong answers match a typical mistake on every case, what that
mistake probably was and how to fix it. A check first runs, quietly, the checks of the earlier tasks that the
learner's code builds on (:class:`feedback.Tasks`), and :func:`uses` does the same at the top of a cell that runs
the learner's code: a task left undone reads "Write task N first: ...", not an error from inside it.

Conventions the checks hold the learner to (the lab states them too):

* availability is a fraction in [0, 1], not a percentage;
* MTTR runs from the failure until the service works again, so it includes the time to detect;
* a month is either of :data:`theory.CALENDARS`' months, used the same way on every case: the average
  one (a twelfth of a 365.25-day year, 30.4375 days) or the SRE book's 30 days; a month within a
  quarter of a percent of one of them (365 / 12 days, 30.44 days) is accepted with a note.
"""
from __future__ import annotations

import math
import numbers

from ..core import theory
from . import feedback as fb
from .feedback import needs

__all__ = ["availability", "checkout", "series", "parallel", "downtime_per_month", "min_replicas",
           "max_mttr", "measured_availability", "shared_crew_verdict", "min_replicas_shared_crew",
           "uses", "needs", "CHECKOUT", "TARGET", "REPLICA_MTTF_H", "DESIGN_MTTR_H"]


_TASKS = fb.Tasks()
uses = _TASKS.uses

# The numbers the lab's story uses, kept here so the notebook and its checks agree.
CHECKOUT = {"mttf_h": 504.0, "detect_min": 12.0, "restart_min": 18.0}
TARGET = 0.9995
REPLICA_MTTF_H = 200.0
DESIGN_MTTR_H = 4.0                                   # the design: 2 replicas, repaired within 4 h
MONTH_MIN = theory.CALENDARS["average"]["month"] / 60   # 43 830 minutes
SRE_MONTH_MIN = theory.CALENDARS["sre"]["month"] / 60   # 43 200 minutes


# --- helpers ------------------------------------------------------------------------------------
_PERCENT = ("More than 1 for a share of time: that looks like a percentage (rounded or not); return a "
            "fraction between 0 and 1 (0.99, not 99).")


def _ignored(param: str, value, name: str = "") -> str:
    """The hint for answers that are right for ``param=value`` on every case: the argument is not used."""
    instead = f" ({name})" if name else ""
    return (f"Your answers are right for {param}={fb.fmt(value)}{instead} on every case, whatever `{param}` is "
            f"given: does your function use its `{param}` argument, rather than a global or a number of your "
            f"own?")

def _diagnose(cases, got, mistakes, rel: float = 1e-6) -> str | None:
    """The hint of the first mistake whose answers match the learner's on every case."""
    for compute, hint in mistakes:
        try:
            if all(fb.close(g, compute(*args), rel) for args, g in zip(cases, got)):
                return hint
        except (ArithmeticError, ValueError):
            continue
    return None


def _check_function(fn, name, cases, expected, mistakes, *, rel=1e-9, explain=""):
    """Run ``fn`` on every case; fail on the first wrong answer, naming a recognised mistake."""
    got = [fb.real(fb.call(fn, name, *args), fb.show(name, args)) for args in cases]
    for args, g, want in zip(cases, got, expected):
        if not fb.close(g, want, rel):
            hint = _diagnose(cases, got, mistakes)
            message = f"{fb.show(name, args)} should be {fb.fmt(want)}, yours gave {fb.fmt(g)}."
            if hint:
                message += f" {hint}"
            elif g > 1 >= want:
                message += f" {_PERCENT}"
            elif all(fb.close(gi, wi, 1e-3) for gi, wi in zip(got, expected)):
                message += (" Close on every case but not exact: did you round? Return the value as it "
                            "comes out (round only when you print it).")
            elif explain:
                message += f" {explain}"
            raise AssertionError(message)
    return got


# --- task 1: availability from MTTF and MTTR ----------------------------------------------------
_AVAILABILITY_CASES = [(99.0, 1.0), (1000.0, 10.0), (10.0, 5.0), (200.0, 0.5), (3.0, 1.0)]


@_TASKS.check(1, "availability")
def availability(fn) -> None:
    """Check ``availability(mttf, mttr)``: MTTF / (MTTF + MTTR)."""
    cases = _AVAILABILITY_CASES
    expected = [theory.availability(*c) for c in cases]
    mistakes = [
        (lambda f, r: r / (f + r), "That is the share of time spent down (1 − availability): MTTF and "
         "MTTR look swapped. Availability is time up over the whole cycle: MTTF / (MTTF + MTTR)."),
        (lambda f, r: 100 * f / (f + r), "That looks like a percentage; return a fraction between 0 and 1 "
         "(0.99, not 99)."),
        (lambda f, r: f / r, "MTTF / MTTR compares up time with down time; divide by the whole cycle "
         "instead: MTTF / (MTTF + MTTR)."),
        (lambda f, r: r / f, "MTTR / MTTF is a ratio of down to up time, not a share of time up; "
         "availability is MTTF / (MTTF + MTTR)."),
        (lambda f, r: 1 - r / f, "1 − MTTR/MTTF is only an approximation for MTTR much smaller than "
         "MTTF (with MTTF 10 and MTTR 5 it gives 0.5 instead of 0.667); use MTTF / (MTTF + MTTR)."),
    ]
    _check_function(fn, "availability", cases, expected, mistakes,
                    explain="Availability is the share of each failure-and-repair cycle spent up: "
                            "MTTF / (MTTF + MTTR).")
    fb.ok("availability(mttf, mttr) = MTTF / (MTTF + MTTR): 99 h up and 1 h down give 0.99")


# --- task 2: the checkout service (MTTR includes detection) ------------------------------------
@_TASKS.check(2, "checkout_mttr", "checkout_availability", uses=("availability",))
def checkout(mttr_h, availability_value) -> None:
    """Check the checkout answers: MTTR in hours (detect + restart) and the availability it gives."""
    mttf = CHECKOUT["mttf_h"]
    detect, restart = CHECKOUT["detect_min"], CHECKOUT["restart_min"]
    want_mttr = (detect + restart) / 60
    mttr_h = fb.number(mttr_h, "checkout_mttr")
    if not fb.close(mttr_h, want_mttr, 1e-9):
        known = {
            restart / 60: f"MTTR counts from the moment the service breaks until it works again, so the "
                          f"{detect:g} minutes before anyone notices are part of it: detect + restart.",
            detect / 60: f"That is only the time to detect; add the {restart:g} minutes of restart.",
            detect + restart: f"That is in minutes, but MTTF is in hours: use one unit for both "
                              f"({detect + restart:g} min = {want_mttr:g} h).",
            restart: f"That is the restart alone, in minutes: add the {detect:g} minutes of detection "
                     f"and convert to hours, like MTTF.",
            (detect + restart) * 60: "That is in seconds, but MTTF is in hours: use one unit for both.",
        }
        hint = next((h for v, h in known.items() if fb.close(mttr_h, v, 1e-6)), "")
        raise AssertionError(f"checkout_mttr should be {want_mttr:g} h, yours is {fb.fmt(mttr_h)}. {hint}".strip())
    want = theory.availability(mttf, want_mttr)
    got = fb.number(availability_value, "checkout_availability")
    if not fb.close(got, want, 1e-9):
        known = {
            100 * want: "That looks like a percentage; give a fraction between 0 and 1.",
            theory.availability(mttf + want_mttr, want_mttr): f"That takes {mttf:g} h for the MTBF and adds MTTR "
            f"again (availability({mttf:g} + {want_mttr:g}, {want_mttr:g})): the 3 weeks a failure takes to come "
            f"are the MTTF, the time up, so availability({mttf:g}, {want_mttr:g}).",
            theory.availability(mttf - want_mttr, want_mttr): f"That is 1 − MTTR/MTTF, which is also "
            f"availability({mttf:g} − {want_mttr:g}, {want_mttr:g}): either the approximation, or {mttf:g} h taken "
            f"for the MTBF (the whole cycle) with MTTR subtracted. The 3 weeks a failure takes to come are the "
            f"MTTF, the time up: availability({mttf:g}, {want_mttr:g}), exactly.",
            theory.availability(mttf, restart / 60): "That leaves the detection time out of MTTR.",
            theory.availability(mttf, detect + restart): "That mixes hours (MTTF) and minutes (MTTR).",
            want_mttr / (mttf + want_mttr): "That is the share of time down: MTTF and MTTR swapped.",
        }
        mtbf = {v: known.pop(v) for v in (theory.availability(mttf + want_mttr, want_mttr),
                                          theory.availability(mttf - want_mttr, want_mttr))}
        hint = next((h for v, h in mtbf.items() if fb.close(got, v, 1e-9)), "") or \
            next((h for v, h in known.items() if fb.close(got, v, 1e-6)), "")
        if not hint and got > 1:
            hint = _PERCENT
        if not hint and abs(got - want) < 1e-4:
            hint = ("Close, but not exact: did you round, or use an approximation? Compute it with your "
                    "availability function.")
        raise AssertionError(f"checkout_availability should be availability({mttf:g}, {want_mttr:g}) = "
                             f"{want:.6f}, yours is {fb.fmt(got)}. {hint}".strip())
    fb.ok(f"checkout: MTTR = {detect:g} + {restart:g} min = {want_mttr:g} h, availability {want:.4%} "
        f"({theory.nines(want):.2f} nines)")


# --- task 3: series and parallel ----------------------------------------------------------------
_COMPOSITION_CASES = [(0.99, 0.99), (0.9, 0.8, 0.5), (0.999,), (0.5, 0.5), (0.95, 0.9), (0.8, 0.99, 0.9)]

_FIRST_ONLY = ("Your answer is the first availability alone, whatever the others are: is your `return` "
               "inside the for loop? Return after the loop, once every part is counted.")


@_TASKS.check(3, "series")
def series(fn) -> None:
    """Check ``series(*avail)``: the product."""
    cases = _COMPOSITION_CASES
    expected = [theory.series(*c) for c in cases]
    mistakes = [
        (lambda *a: sum(a), "Did you add them? A chain is up only when every part is up, so the "
         "availabilities multiply: 0.99 × 0.99 = 0.9801."),
        (lambda *a: min(a), "A chain is not as good as its weakest part, it is worse: every part must be "
         "up at once, so multiply the availabilities."),
        (lambda *a: sum(a) / len(a), "The average is not it: every part must be up at once, so multiply "
         "the availabilities."),
        (lambda *a: theory.parallel(*a), "That is the parallel formula (one part up is enough); in series "
         "every part must be up: multiply the availabilities."),
        (lambda *a: math.prod(1 - x for x in a), "That multiplies the unavailabilities; in series multiply "
         "the availabilities themselves."),
        (lambda *a: 1 - sum(1 - x for x in a), "1 − Σ(1 − a) is the approximation for parts that are almost "
         "always up (it goes to 0 for two 50% parts, the truth is 25%); multiply the availabilities."),
        (lambda *a: 100 * math.prod(a), "That looks like a percentage; return a fraction between 0 and 1."),
        (lambda *a: 0.0, "Yours gives 0 for every chain: does your product start at 0? Anything times 0 "
         "stays 0; start it at 1 (or use math.prod)."),
        (lambda *a: a[0], _FIRST_ONLY),
    ]
    _check_function(fn, "series", cases, expected, mistakes,
                    explain="In series every part must be up: multiply the availabilities.")
    ten = theory.series(*[0.999] * 10)
    fb.ok(f"series multiplies: ten 99.9% services in a chain give {ten:.2%}")


@_TASKS.check(3, "parallel")
def parallel(fn) -> None:
    """Check ``parallel(*avail)``: 1 − Π(1 − a)."""
    cases = _COMPOSITION_CASES
    expected = [theory.parallel(*c) for c in cases]
    mistakes = [
        (lambda *a: max(a), "Replicas are better than the best one alone: the system is down only when all "
         "replicas are down at once, so availability is 1 − Π(1 − a); 0.99 and 0.99 give 0.9999."),
        (lambda *a: sum(a), "Did you add them? Adding gives more than 1. The system is down only when all "
         "replicas are down: 1 − Π(1 − a)."),
        (lambda *a: min(1.0, sum(a)), "Adding and capping at 1 is not it: the system is down only when all "
         "replicas are down at once: 1 − Π(1 − a)."),
        (lambda *a: math.prod(a), "That is the series formula (every part must be up); in parallel one "
         "replica up is enough: 1 − Π(1 − a)."),
        (lambda *a: math.prod(1 - x for x in a), "That is the chance that all replicas are down at once "
         "(the unavailability); availability is 1 minus it."),
        (lambda *a: 1 - math.prod(a), "Multiply the unavailabilities (1 − a), not the availabilities: "
         "1 − Π(1 − a)."),
        (lambda *a: sum(a) / len(a), "The average is not it: the system is down only when all replicas "
         "are down at once: 1 − Π(1 − a)."),
        (lambda *a: 100 * theory.parallel(*a), "That looks like a percentage; return a fraction between "
         "0 and 1."),
        (lambda *a: 1.0, "Yours gives 1 for every set of replicas: does the product of the unavailabilities "
         "start at 0? Anything times 0 stays 0; start it at 1 (or use math.prod)."),
        (lambda *a: a[0], _FIRST_ONLY),
    ]
    _check_function(fn, "parallel", cases, expected, mistakes,
                    explain="Parallel: the system is down only when all replicas are down: 1 − Π(1 − a).")
    fb.ok(f"parallel: two 99% replicas give {theory.parallel(0.99, 0.99):.2%}, if they fail independently")


# --- task 4: downtime budget per month ----------------------------------------------------------
_DOWNTIME_CASES = [(0.999,), (0.99,), (0.9995,), (0.99999,), (0.5,)]
#: The two months the lab accepts, in minutes (theory.CALENDARS), and how far a month may be from one.
_MONTHS = {"average": (MONTH_MIN, "the average month, a twelfth of a 365.25-day year (30.4375 days), "
                                  "theory.downtime(a, 'month')"),
           "sre": (SRE_MONTH_MIN, "the SRE book's 30-day month, theory.downtime(a, 'month', 'sre')")}
_MONTH_TOL = 0.0025                                   # a quarter of a percent: about 1.8 hours a month


def _days(minutes: float) -> str:
    return f"{minutes / 1440:.6g} days"


@_TASKS.check(4, "downtime_per_month")
def downtime_per_month(fn) -> None:
    """Check ``downtime_per_month(a)`` in minutes, with either month (the average one or the SRE book's
    30 days) used the same way on every case."""
    cases = _DOWNTIME_CASES
    name = "downtime_per_month"
    got = [fb.real(fb.call(fn, name, *args), fb.show(name, args)) for args in cases]
    months = [g / (1 - a) for (a,), g in zip(cases, got)]          # the month each answer implies, in minutes
    same = all(fb.close(m, months[0], 1e-6) for m in months)
    for calendar, (minutes, words) in _MONTHS.items():
        if same and abs(months[0] / minutes - 1) <= _MONTH_TOL:
            exact = fb.close(months[0], minutes, 1e-9)
            how = "" if exact else (f" Your month is {_days(months[0])}, {abs(months[0] / minutes - 1):.2%} from "
                                    f"it: accepted, but a budget is clearer with the exact figure.")
            other = "sre" if calendar == "average" else "average"
            fb.ok(f"{name}: 99.9% allows {(1 - 0.999) * months[0]:.1f} minutes a month with {words}.{how} "
                  f"(With {_MONTHS[other][1].split(',')[0]}: {(1 - 0.999) * _MONTHS[other][0]:.1f} minutes; "
                  f"say which one you count.)")
            return
    day = 1440
    mistakes = [
        (lambda a: (1 - a) * 31 * day, "You used a 31-day month; use the average month (365.25 / 12 = 30.4375 "
         "days) or the SRE book's 30-day month."),
        (lambda a: (1 - a) * 28 * day, "You used four weeks (28 days); use the average month (30.4375 days) or "
         "the SRE book's 30 days."),
        (lambda a: a * MONTH_MIN, "That is the time *up*; downtime is the share of time down, 1 − a."),
        (lambda a: a * SRE_MONTH_MIN, "That is the time *up*; downtime is the share of time down, 1 − a."),
        (lambda a: (1 - a / 100) * MONTH_MIN, "a is a fraction (0.999), not a percentage (99.9)."),
        (lambda a: (1 - a / 100) * SRE_MONTH_MIN, "a is a fraction (0.999), not a percentage (99.9)."),
    ]
    for minutes in (MONTH_MIN, SRE_MONTH_MIN):
        mistakes += [
            (lambda a, m=minutes: (1 - a) * m * 60, "That is in seconds; the task asks for minutes."),
            (lambda a, m=minutes: (1 - a) * m / 60, "That is in hours; the task asks for minutes."),
            (lambda a, m=minutes: (1 - a) * m / day, "That is in days; the task asks for minutes."),
            (lambda a, m=minutes: (1 - a) * m * 12, "That is per year; the task asks per month."),
        ]
    for calendar, (minutes, words) in _MONTHS.items():
        off = max(abs(g - (1 - a) * minutes) for (a,), g in zip(cases, got))
        if off <= 0.5 + 1e-9:
            (a,), g = cases[0], got[0]
            raise AssertionError(
                f"{fb.show(name, (a,))} should be {(1 - a) * minutes:.4f} minutes with {words.split(',')[0]}; "
                f"yours gave {fb.fmt(g)}. Every answer of yours is within {off:.2g} minutes of that month's: did "
                f"you round (round(), int(), a format)? Return the value as it comes out; round only when you "
                f"print it.")
    if same:
        (a,), g = cases[0], got[0]
        message = (f"{fb.show(name, (a,))} should be {(1 - a) * MONTH_MIN:.4f} minutes (average month) or "
                   f"{(1 - a) * SRE_MONTH_MIN:.4f} (30-day month); yours gave {fb.fmt(g)}, which is 1 − a "
                   f"times a month of {_days(months[0])}.")
    else:
        odd = next(i for i, m in enumerate(months) if not fb.close(m, months[0], 1e-6))
        message = (f"Your answers are not 1 − a times one month: {fb.show(name, cases[0])} gave {fb.fmt(got[0])}, "
                   f"a month of {_days(months[0])}, but {fb.show(name, cases[odd])} gave {fb.fmt(got[odd])}, "
                   f"a month of {_days(months[odd])}. Use one month, the same for every a.")
    hint = _diagnose(cases, got, mistakes) or ("Downtime is the share of time down, 1 − a, times the minutes "
                                               "in a month: 365.25 × 1440 / 12, or 30 × 1440 with 30-day months.")
    raise AssertionError(f"{message} {hint}")


# --- task 5: design with independent replicas ---------------------------------------------------
_MIN_REPLICAS_CASES = [(0.9995, 200.0, 4.0), (0.99, 100.0, 1.0), (0.99999, 200.0, 4.0),
                       (0.999999, 10.0, 5.0), (0.9999, 50.0, 1.0), (0.75, 1.0, 1.0)]


def _fewest(target, meets) -> int:
    n = 1
    while not meets(n):
        n += 1
    return n


def _replicas_needed(target, mttf, mttr) -> int:
    a = theory.availability(mttf, mttr)
    return _fewest(target, lambda n: theory.parallel(*[a] * n) >= target)


def _replicas_needed_fast(target, mttf, mttr) -> int:
    """The same by the closed form, for mistakes that need hundreds of replicas."""
    u = mttr / (mttf + mttr)
    return _fewest(target, lambda n: 1 - u ** n >= target)


def _as_count(value, call: str) -> int | None:
    if value is None:
        raise AssertionError(f"{call} returned None: it ended without reaching a `return` (a loop that ran out "
                             f"before its `return n`, or no `return` at all)")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AssertionError(f"{call} should return a whole number of replicas, got {value!r}")
    if not float(value).is_integer():
        raise AssertionError(f"{call} returned {fb.fmt(value)}, but replicas come whole: round *up* "
                             f"(math.ceil), since fewer replicas would miss the target")
    return int(value)


_MIN_REPLICAS_STUCK = ("a loop with no end? Make n grow at every turn (n += 1) and test the availability of "
                       "n replicas in parallel, so the loop stops once it meets the target (with series, each "
                       "replica you add lowers the availability, so the target is never met).")


@_TASKS.check(5, "min_replicas", uses=("availability", "parallel"))
def min_replicas(fn) -> None:
    """Check ``min_replicas(target, mttf, mttr)``: fewest independent replicas meeting ``target``."""
    name = "min_replicas"
    cases = _MIN_REPLICAS_CASES
    got = [_as_count(fb.call(fn, name, *c, stuck=_MIN_REPLICAS_STUCK), fb.show(name, c)) for c in cases]

    def ratio(t, f, r):                       # the real-valued n where 1 − u^n = target
        return math.log(1 - t) / math.log(r / (f + r))

    mistakes = [
        (lambda t, f, r: _fewest(t, lambda n: theory.parallel(*[theory.availability(f, r)] * n) > t),
         "Meeting the target exactly counts: compare with >=, not >."),
        (lambda t, f, r: math.floor(ratio(t, f, r)), "You rounded down; a fraction of a replica still "
         "needs a whole one: round up (math.ceil)."),
        (lambda t, f, r: round(ratio(t, f, r)), "You rounded to the nearest whole number; round up "
         "(math.ceil), or fewer replicas than needed may come out."),
        (lambda t, f, r: _replicas_needed(t, f, r) + 1, "One replica too many: the answer is the first n "
         "that meets the target, so stop (or return) as soon as it does."),
        (lambda t, f, r: _replicas_needed(t, f, r) - 1, "One replica short: count the replicas you have "
         "when the availability meets the target, not the ones before."),
        (lambda t, f, r: _replicas_needed_fast(t, r, f), "MTTF and MTTR look swapped in the availability of "
         "one replica."),
        (lambda t, f, r: _replicas_needed(TARGET, f, r), _ignored("target", TARGET, "the lab's TARGET")),
        (lambda t, f, r: _replicas_needed(t, REPLICA_MTTF_H, r), _ignored("mttf", REPLICA_MTTF_H)),
        (lambda t, f, r: _replicas_needed(t, f, DESIGN_MTTR_H), _ignored("mttr", DESIGN_MTTR_H)),
    ]
    for args, g in zip(cases, got):
        want = _replicas_needed(*args)
        if g != want:
            t, mttf, mttr = args
            a = theory.availability(mttf, mttr)
            yours = theory.parallel(*[a] * g) if g >= 1 else 0.0
            message = (f"{fb.show(name, args)} should be {want}: each replica is up {a:.6f} of the time, "
                       f"{want} replicas give {theory.parallel(*[a] * want):.7f}")
            if want > 1:
                fewer = want - 1
                message += (f" and {fewer} give{'s' if fewer == 1 else ''} "
                            f"{theory.parallel(*[a] * fewer):.7f}")
            message += f" against the target {fb.fmt(t)}. Yours gave {g}"
            message += f" ({yours:.7f})." if g >= 1 else "."
            hint = _diagnose(cases, got, mistakes, rel=0)
            raise AssertionError(message + (f" {hint}" if hint else ""))
    fb.ok(f"{name}: a {TARGET:.2%} target with MTTF {REPLICA_MTTF_H:g} h and MTTR {DESIGN_MTTR_H:g} h needs "
        f"{_replicas_needed(TARGET, REPLICA_MTTF_H, DESIGN_MTTR_H)} independent replicas")


_MAX_MTTR_CASES = [(0.9995, 200.0, 1), (0.9995, 200.0, 2), (0.9995, 200.0, 3), (0.99, 100.0, 1),
                   (0.999, 10.0, 2)]


def _max_mttr(target, mttf, n) -> float:
    u = (1 - target) ** (1 / n)               # the share of time each replica may be down
    return mttf * u / (1 - u)


@_TASKS.check(5, "max_mttr")
def max_mttr(fn) -> None:
    """Check ``max_mttr(target, mttf, n)``: the longest MTTR with which ``n`` replicas meet ``target``."""
    name = "max_mttr"
    cases = _MAX_MTTR_CASES
    expected = [_max_mttr(*c) for c in cases]

    def per_replica_u(t, n):
        return (1 - t) ** (1 / n)

    mistakes = [
        (lambda t, f, n: _max_mttr(t, f, 1), "You ignored n: that is the answer for a single replica. With n "
         "replicas all must be down at once, so each may be down u = (1 − target)^(1/n) of the time."),
        (lambda t, f, n: f * per_replica_u(t, n), "MTTR ≈ u·MTTF is the approximation for small u; solve "
         "MTTR / (MTTF + MTTR) = u exactly: MTTR = MTTF·u / (1 − u)."),
        (lambda t, f, n: f * (1 - per_replica_u(t, n)) / per_replica_u(t, n), "Upside down: from "
         "u = MTTR / (MTTF + MTTR) you get MTTR = MTTF·u / (1 − u)."),
        (lambda t, f, n: _max_mttr(1 - (1 - t) / n, f, 1), "Unavailabilities of replicas multiply, they do "
         "not split: each replica may be down u = (1 − target)^(1/n), not (1 − target)/n."),
        (lambda t, f, n: _max_mttr(t ** (1 / n), f, 1), "That is the budget for n parts in series (each "
         "needs availability target^(1/n)); replicas are in parallel: u = (1 − target)^(1/n)."),
        (lambda t, f, n: 1 - per_replica_u(t, n), "You returned the availability each replica needs; turn "
         "it into an MTTR: MTTR = MTTF·u / (1 − u) with u = 1 − that availability."),
        (lambda t, f, n: per_replica_u(t, n), "You returned the share of time each replica may be down; "
         "turn it into an MTTR: MTTR = MTTF·u / (1 − u)."),
        (lambda t, f, n: f * (1 - t) ** n / (1 - (1 - t) ** n), "You raised (1 − target) to the power n: "
         "that is how often n replicas are all down when each is down (1 − target) of the time. Go the other "
         "way: each replica may be down the n-th root, u = (1 − target)^(1/n)."),
        (lambda t, f, n: _max_mttr(TARGET, f, n), _ignored("target", TARGET, "the lab's TARGET")),
        (lambda t, f, n: _max_mttr(t, REPLICA_MTTF_H, n), _ignored("mttf", REPLICA_MTTF_H)),
    ]
    got = [fb.real(fb.call(fn, name, *c), fb.show(name, c)) for c in cases]
    for args, g, want in zip(cases, got, expected):
        if not fb.close(g, want, 1e-4):
            t, mttf, n = args
            hint = _diagnose(cases, got, mistakes, rel=1e-4)
            message = f"{fb.show(name, args)} should be {want:.6g}, yours gave {fb.fmt(g)}"
            if g > 0:
                reached = theory.parallel(*[theory.availability(mttf, g)] * n)
                verdict = "misses" if reached < t else "beats (so a longer MTTR would still do)"
                message += (f": with it, {n} replica{'s reach' if n > 1 else ' reaches'} {reached:.7f}, "
                            f"which {verdict} the target {fb.fmt(t)}")
            message += "."
            if hint:
                message += f" {hint}"
            raise AssertionError(message)
    one, two, three = (_max_mttr(TARGET, REPLICA_MTTF_H, n) for n in (1, 2, 3))
    fb.ok(f"{name}: for {TARGET:.2%} with MTTF {REPLICA_MTTF_H:g} h, one replica must be back in "
        f"{one * 60:.0f} min, two in {two:.1f} h, three in {three:.1f} h")


# --- task 6: a shared repair crew ---------------------------------------------------------------
def _chain(n, mttf, mttr, crews):
    """Stationary distribution of the number of failed replicas when ``crews`` repair one each."""
    lam, mu = 1 / mttf, 1 / mttr
    crews = n if crews is None else crews
    weights, w = [1.0], 1.0
    for k in range(n):
        w *= (n - k) * lam / (min(k + 1, crews) * mu)
        weights.append(w)
    total = sum(weights)
    return [x / total for x in weights]


def _any_up(n, f, r, c):
    return 1 - _chain(n, f, r, c)[-1]


def _all_up(n, f, r, c):
    return _chain(n, f, r, c)[0]


def _one_up(n, f, r, c):
    p = _chain(n, f, r, c)
    return 1 - sum(k * pk for k, pk in enumerate(p)) / n


# (n, mttf, mttr, crews): short runs where the crew changes the answer far beyond the noise
_CREW_CASES = [(2, 10.0, 5.0, 1), (3, 10.0, 5.0, 1), (2, 10.0, 5.0, 2), (2, 10.0, 5.0, None)]
_CREW_UNTIL = 50_000.0
_CREW_SEED = 11
_CREW_TOL = 0.03                               # about 5 standard deviations of a run this long
_RUN_LIMIT_S = 10.0                            # a run takes about 0.1 s; a slow machine gets room
_RUN_STUCK = ("a run with no end? Run the world up to `until` (world.run(until=until)), once, with the "
              "times as they are given (no unit conversion).")


@_TASKS.check(6, "measured_availability")
def measured_availability(fn) -> None:
    """Check ``measured_availability(n, mttf, mttr, crews, until, seed)`` against the exact chain."""
    name = "measured_availability"
    cases = _CREW_CASES
    calls = [(*c, _CREW_UNTIL, _CREW_SEED) for c in cases]

    def run(*args):
        return fb.call(fn, name, *args, stuck=_RUN_STUCK, limit=_RUN_LIMIT_S)
    got = [fb.real(run(*args), fb.show(name, args)) for args in calls]
    expected = [theory.replicas_availability(n, f, r, crews=c) for n, f, r, c in cases]
    mistakes = [
        (lambda n, f, r, c: _any_up(n, f, r, None), "Your replicas are repaired independently, as if each "
         "had its own repairer. Create ONE RepairCrew(world, crews) before the loop and pass that same "
         "object as crew=... to every FailureRepair (and crew=None when crews is None)."),
        (lambda n, f, r, c: _any_up(n, f, r, None if c is None else 1), "The crew has one person whatever "
         "crews says: build it with RepairCrew(world, crews)."),
        (lambda n, f, r, c: _all_up(n, f, r, c), "That is the share of time ALL replicas are up "
         "(need=\"all\", series); a replicated service is up while ANY replica is: need=\"any\"."),
        (lambda n, f, r, c: _all_up(n, f, r, None), "That is the share of time all replicas are up, with "
         "independent repairs: use need=\"any\", and give every replica the same crew."),
        (lambda n, f, r, c: _one_up(n, f, r, c), "That is one replica's availability: pass every replica's "
         "name to time_availability(*names, need=\"any\")."),
        (lambda n, f, r, c: _one_up(n, f, r, None), "That is one replica's availability: pass every "
         "replica's name to time_availability(*names, need=\"any\")."),
        (lambda n, f, r, c: _any_up(n, r, f, c), "MTTF and MTTR look swapped in FailureRepair."),
        (lambda n, f, r, c: _any_up(n, f, r, 1), "The crew has one person whatever crews says, even with "
         "crews=None: build it with RepairCrew(world, crews) when crews is a number, and give no crew "
         "(crew=None) when crews is None."),
        (lambda n, f, r, c: _any_up(2, f, r, c), _ignored("n", 2) + " Make n replicas (a loop over range(n)), "
         "each with its own name."),
    ]
    for args, g in zip(calls, got):
        if not 0 <= g <= 1:
            raise AssertionError(f"{fb.show(name, args)} measured {fb.fmt(g)}, outside [0, 1]: a percentage? "
                                 f"Return the fraction that time_availability gives.")
    for case, args, g, want in zip(cases, calls, got, expected):
        if abs(g - want) > _CREW_TOL:
            hint = next((h for compute, h in mistakes
                         if all(abs(gi - compute(*ci)) <= _CREW_TOL for ci, gi in zip(cases, got))), "")
            if not hint and all(gi > 0.99 for gi in got):
                hint = ("Your replicas hardly ever fail in the run, as if the run were far shorter than "
                        "their MTTF: did you convert mttf or mttr (to seconds, say) but not until? The "
                        "three times arrive in one unit; pass them on as they are.")
            crews = "a repairer per replica" if case[3] is None else f"a shared crew of {case[3]}"
            raise AssertionError(
                f"{fb.show(name, args)} measured {fb.fmt(g)}, but {case[0]} replicas with MTTF {case[1]:g}, "
                f"MTTR {case[2]:g} and {crews} are up (any of them) {want:.3f} of the time in theory "
                f"(a run this long lands within ±{_CREW_TOL:g} of it). {hint}".strip())
    short = (*cases[0], 5_000.0)
    first, again = (fb.real(run(*short, 3), name) for _ in range(2))
    if first != again:
        raise AssertionError(f"{name} gave {fb.fmt(first)} and then {fb.fmt(again)} for the same seed: build the "
                             f"world with World(seed=seed) and take no other randomness, so a run repeats.")
    if fb.real(run(*short, 4), name) == first:
        raise AssertionError(f"{name} gave the same answer for seeds 3 and 4: pass the seed on, "
                             f"World(seed=seed).")
    fb.ok(f"{name}: two replicas (MTTF 10, MTTR 5) measured {got[0]:.3f} with one shared crew against "
        f"{got[3]:.3f} with independent repairs (theory {expected[0]:.3f} and {expected[3]:.3f})")


@_TASKS.check(6, "meets_target", uses=("measured_availability",))
def shared_crew_verdict(meets_target, measured=None) -> None:
    """Check the verdict on the design (2 replicas, MTTF 200 h, MTTR 4 h) when they share one crew; with
    ``measured`` (the learner's run), check that run too and judge the verdict against it."""
    mttr = DESIGN_MTTR_H
    theory_one = theory.replicas_availability(2, REPLICA_MTTF_H, mttr, crews=1)
    theory_free = theory.replicas_availability(2, REPLICA_MTTF_H, mttr)
    meets_target = fb.answer(meets_target, "meets_target")
    if measured is None:
        if not fb.is_bool(meets_target):
            raise AssertionError(f"meets_target should be True or False, got {meets_target!r}")
        if bool(meets_target):
            raise AssertionError(f"meets_target is True, but two replicas sharing one engineer are up about "
                                 f"{theory_one:.5f} of the time (your run above measured it), below the "
                                 f"target {TARGET}: compare the two (measured >= TARGET).")
        fb.ok(f"verdict: with one shared crew the design reaches about {theory_one:.4%}, not {TARGET:.2%}: "
              f"a replica that fails during the other's repair waits for the engineer")
        return
    measured = fb.real(measured, "measured")
    if abs(measured - theory_free) < abs(measured - theory_one):
        raise AssertionError(f"measured is {fb.fmt(measured)}, close to {theory_free:.5f}, what two "
                             f"independently repaired replicas give: the run does not seem to share one "
                             f"crew (RepairCrew(world, 1) given to both replicas).")
    if abs(measured - theory_one) > 2e-4:             # about 5 standard deviations at 2e6 h
        raise AssertionError(f"measured is {fb.fmt(measured)}, but two replicas sharing one crew give "
                             f"{theory_one:.5f} in theory; run measured_availability(2, MTTF, MTTR, 1, "
                             f"until, seed) with MTTF {REPLICA_MTTF_H:g} h, MTTR {mttr:g} h and until "
                             f"2 000 000 h (all in seconds), then read the verdict from it.")
    if not fb.is_bool(meets_target):
        raise AssertionError(f"meets_target should be True or False, got {meets_target!r}")
    if bool(meets_target) != (measured >= TARGET):
        raise AssertionError(f"meets_target is {bool(meets_target)}, but the run measured {measured:.5f} "
                             f"against the target {TARGET}: compare the two (measured >= TARGET).")
    fb.ok(f"verdict: with one shared crew the design reaches about {theory_one:.4%}, not {TARGET:.2%}: "
        f"a replica that fails during the other's repair waits for the engineer")


#: (target, mttf, mttr, crews). Two replicas with MTTF 2, MTTR 1 and one crew are up exactly 0.8 of the
#: time (1 − 2ρ²/(1 + 2ρ + 2ρ²) with ρ = 1/2, exact in floating point): meeting the target exactly counts.
#: With one crew, MTTF 10 and MTTR 5 no number of replicas reaches 0.9: the answer is None. One replica
#: with MTTF 100 and MTTR 1 is up 100/101 > 0.99 of the time: a search must start at one.
_SHARED_CASES = [(TARGET, REPLICA_MTTF_H, DESIGN_MTTR_H, 1), (TARGET, REPLICA_MTTF_H, DESIGN_MTTR_H, 2),
                 (0.99999, 200.0, 4.0, 1), (0.9999, 100.0, 10.0, 1), (0.999, 50.0, 5.0, 1), (0.8, 2.0, 1.0, 1),
                 (0.9, 10.0, 5.0, 1), (0.99, 100.0, 1.0, 1)]
_SHARED_STUCK = "a loop with no end? Stop at `limit` and return None."


def _shared_needed(target, mttf, mttr, crews, limit=50):
    for n in range(1, limit + 1):
        if theory.replicas_availability(n, mttf, mttr, crews=crews) >= target:
            return n
    return None


#: (target, mttf, mttr, crews, limit): the design needs 3 replicas with one crew
_SHARED_LIMIT_CASES = [(TARGET, REPLICA_MTTF_H, DESIGN_MTTR_H, 1, 3), (TARGET, REPLICA_MTTF_H, DESIGN_MTTR_H, 1, 2)]


@_TASKS.check(6, "min_replicas_shared_crew")
def min_replicas_shared_crew(fn) -> None:
    """Check ``min_replicas_shared_crew(target, mttf, mttr, crews, limit=50)``: fewest replicas, or None
    when ``limit`` replicas (included) are not enough."""
    name = "min_replicas_shared_crew"
    cases = _SHARED_CASES
    if not callable(fn):
        fb.call(fn, name)                     # says to pass the function itself

    def hint(exc) -> str:
        if isinstance(exc, ValueError) and "n must be" in str(exc):
            return ". Count replicas from 1: n = 1, 2, ..., limit (range(1, limit + 1))."
        return fb.signature_hint(name)(exc)

    def ask(*args, **kwargs):
        shown = fb.show(name, args)
        if kwargs:
            shown = f"{shown[:-1]}, {', '.join(f'{k}={fb.fmt(v)}' for k, v in kwargs.items())})"
        with fb.learner_code(name, shown, hint, stuck=_SHARED_STUCK):
            value = fn(*args, **kwargs)
        return shown, (None if value is None else _as_count(value, shown))

    got = [ask(*c)[1] for c in cases]
    for args, g in zip(cases, got):
        want = _shared_needed(*args)
        if g == want:
            continue
        target, mttf, mttr, crews = args
        if want is None:
            ceiling = 1 - math.exp(-mttf / mttr)
            raise AssertionError(
                f"{fb.show(name, args)} should be None: with one crew, MTTF {mttf:g} and MTTR {mttr:g}, the crew is "
                f"the bottleneck and no number of replicas gets above {ceiling:.4f} (1 − e^(−MTTF/MTTR)); "
                f"yours gave {g}. Stop at `limit` replicas and return None.")
        message = f"{fb.show(name, args)} should be {want}, yours gave {g}."
        independent = _replicas_needed(target, mttf, mttr)
        if g == independent and all(gi == _replicas_needed(t, f, r) for (t, f, r, _), gi in zip(cases, got)
                                    if gi is not None):
            message += (" That is the answer for independent repairs; use "
                        "theory.replicas_availability(n, mttf, mttr, crews=crews), which knows about the "
                        "shared crew.")
        elif all(gi == _shared_needed(t, f, r, 1) for (t, f, r, _), gi in zip(cases, got)):
            message += (f" Your answers are those for crews=1 on every case: pass the `crews` argument on, "
                        f"theory.replicas_availability(n, mttf, mttr, crews=crews); with {crews} crews the "
                        f"replicas wait less for repairs.")
        elif g is not None and want is not None and g == want + 1 and \
                theory.replicas_availability(want, mttf, mttr, crews=crews) == target:
            message += (f" With {want} replicas availability is exactly {fb.fmt(target)}, the target: meeting "
                        f"the target exactly counts, compare with >=, not >.")
        elif g is not None and want is not None and g == want + 1:
            message += " One too many: return the first n that meets the target (>=)."
        elif g is not None and want is not None and g == want - 1:
            reached = theory.replicas_availability(g, mttf, mttr, crews=crews)
            message += f" With {g} replicas availability is only {reached:.6f}."
        raise AssertionError(message)
    for args in _SHARED_LIMIT_CASES:
        *rest, limit = args
        shown, g = ask(*rest, limit=limit)
        want = _shared_needed(*args)
        if g == want:
            continue
        if want is None:
            needed = _shared_needed(*rest)
            raise AssertionError(f"{shown} should be None: {needed} replicas are needed, more than "
                                 f"limit={limit}; yours gave {g}. Try n = 1, 2, ... up to limit and no further, "
                                 f"using the `limit` argument rather than a number of your own.")
        raise AssertionError(f"{shown} should be {want}: {want} replicas meet the target and limit={limit} "
                             f"allows them; yours gave {g}. limit itself counts: try n = 1, 2, ..., limit "
                             f"(range(1, limit + 1)), using the `limit` argument.")
    fb.ok(f"{name}: with one shared crew the design needs {_shared_needed(TARGET, REPLICA_MTTF_H, DESIGN_MTTR_H, 1)} "
        f"replicas, not {_replicas_needed(TARGET, REPLICA_MTTF_H, DESIGN_MTTR_H)}; or give the two replicas two crews")
