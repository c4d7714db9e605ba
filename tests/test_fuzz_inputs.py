"""A simulator that cannot be fooled: every public constructor, method and function refuses a bad
value with a ValueError or TypeError that names the parameter, and never accepts it, never raises
anything else (AttributeError, OverflowError, ZeroDivisionError, simpy's or numpy's errors) and never
hangs.

The parameters and their valid ranges are one table, ``fuzz_table.TABLE``; the first tests read every
public signature with ``inspect`` and check that each parameter is in it (or exempt, with a reason),
so a new parameter cannot be forgotten. Then, for each parameter:

* every catalogued bad value of its kind (wrong types, NaN, infinities, out of range, huge numbers,
  truthy strings and 0/1 for booleans, times before the last one seen...) is refused by name;
* every catalogued edge value (valid but extreme: 1e308, 10**400, 5e-324, Fraction, numpy scalars)
  is accepted, or refused by a ValueError/TypeError naming a parameter: nothing else, no hang;
* hypothesis generates more bad values of the same kind (floats and integers just outside the range,
  text, lists...) and each must be refused by name.

Each call runs under a time limit (``fuzz_table.HANG_SECONDS``): a hang fails the test and names the call.
``python tests/fuzz_table.py`` prints the whole census, grouped by what went wrong.
"""
from __future__ import annotations

import time
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import fuzz_table as ft

ENTRIES = {e.id: e for e in ft.TABLE}
#: (entry, parameter) pairs hypothesis generates values for (an ``Any`` parameter has no bad values).
PAIRS = [(e.id, name) for e in ft.TABLE for name, p in e.params.items() if not isinstance(p.kind, ft.Any)]


def report(verdicts) -> str:
    """The failed cases, grouped by what went wrong, one line each: ``call(param=value) -> what happened``."""
    groups = defaultdict(list)
    for v in verdicts:
        if not v.ok:
            groups[v.kind].append(str(v))
    return "\n".join(f"{kind} ({len(rows)}):\n  " + "\n  ".join(rows) for kind, rows in groups.items())


# --- the table covers the code ---------------------------------------------------------------------
def test_every_parameter_of_every_public_callable_is_in_the_table_or_exempt_with_a_reason():
    missing = []
    for key, params in ft.public_parameters().items():
        if key in ft.EXEMPT_CALLABLES:
            continue
        assert params is not None, f"{key}: inspect.signature cannot read it; add it to EXEMPT_CALLABLES"
        missing += [f"{key}({p})" for p in params
                    if p not in ft.TABLE_PARAMS.get(key, ()) and (key, p) not in ft.EXEMPT_PARAMS]
    assert not missing, ("public parameters missing from fuzz_table.TABLE (give each a kind and a valid "
                         "value, or an exemption with its reason): " + ", ".join(missing))


def test_the_table_and_its_exemptions_name_only_callables_and_parameters_that_exist():
    public = ft.public_parameters()
    stale = [k for k in ft.EXEMPT_CALLABLES if k not in public]
    stale += [f"{k}({p})" for k, p in ft.EXEMPT_PARAMS if k not in public or p not in (public[k] or ())]
    stale += [f"{k}({p})" for k, ps in ft.TABLE_PARAMS.items() for p in ps if k not in public or p not in public[k]]
    assert not stale, f"the fuzz table names what the code no longer has: {stale}"
    reasons = list(ft.EXEMPT_CALLABLES.values()) + list(ft.EXEMPT_PARAMS.values())
    reasons += [p.kind.why for e in ft.TABLE for p in e.params.values() if isinstance(p.kind, ft.Any)]
    assert all(isinstance(r, str) and len(r) > 10 for r in reasons), "every exemption says why"


def test_every_entry_accepts_its_valid_baseline_call():
    """Otherwise a refusal in the fuzz could be the baseline's fault, not the bad value's."""
    broken = []
    for e in ft.TABLE:
        what, out = ft.guarded(lambda: e.call(e.baseline()))
        if what != "returned":
            broken.append(f"{e.id}: {what} {type(out).__name__}: {out}")
    assert not broken, "\n".join(broken)


def test_the_hang_guard_stops_a_call_that_never_returns_and_names_it():
    started = time.monotonic()

    def spin():
        while True:
            pass

    assert ft.guarded(spin, 0.2) == ("hang", None)
    assert time.monotonic() - started < 2
    assert ft.guarded(lambda: 7, 0.2) == ("returned", 7)


# --- the catalogue: every bad and edge value of every kind, deterministic --------------------------------
@pytest.mark.parametrize("entry_id", list(ENTRIES))
def test_catalogued_bad_values_are_refused_with_an_error_that_names_the_parameter(entry_id):
    verdicts = ft.census([ENTRIES[entry_id]])
    assert all(v.ok for v in verdicts), f"{entry_id}:\n{report(verdicts)}"


@pytest.mark.parametrize("entry_id", list(ENTRIES))
def test_catalogued_edge_values_are_accepted_or_refused_by_name_and_never_crash_or_hang(entry_id):
    verdicts = ft.census([ENTRIES[entry_id]], edge=True)
    assert all(v.ok for v in verdicts), f"{entry_id}:\n{report(verdicts)}"


# --- hypothesis: more bad values of each kind -----------------------------------------------------
@pytest.mark.parametrize("entry_id,param", PAIRS, ids=[f"{e}-{p}" for e, p in PAIRS])
@settings(max_examples=8, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_bad_values_are_refused_with_an_error_that_names_the_parameter(entry_id, param, data):
    e = ENTRIES[entry_id]
    value = data.draw(e.params[param].kind.strategy(), label=param)
    verdict = ft.attempt(e, param, value)
    assert verdict.ok, f"{verdict.kind}: {verdict}"
