"""Lab 08's checks (the capstone) fail the baseline with the right words, pass the reference on every task,
fail a configuration tuned to the visible day on the hidden days, and name each typical mistake; the solution
notebook runs clean and its learner copy says which task to write first.

Each day is a bounded simulation of a few seconds: runs are memoised by configuration inside the checks
(module-level caches), so the tests below share them; the hidden days run on a 2-process pool."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lab_support import fails, says_which_task_first, walk

from resilience_sim.labs import capstone as check
from resilience_sim.lessons.capstone import BASELINE, HIDDEN_SEEDS, REFERENCE, Replicas
from resilience_sim.sweeps import process_pool

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "08_capstone.ipynb"
#: Tuned to the visible day (no failover, no slow catalog there): the reference without its cache.
BRITTLE = REFERENCE.with_(cache=None, name="brittle")
#: The solution's task 6: the reference with one job worker.
LEAN = REFERENCE.with_(replicas={"workers": 1}, name="lean")


@pytest.fixture(scope="module")
def pool():
    with process_pool(2) as executor:
        yield executor


# --- the baseline fails, with the feedback that names the fix ----------------------------------------------
def test_the_baseline_loses_orders_and_charges_twice_and_the_check_names_both_settings():
    message = fails(check.writes, BASELINE, match=r"29 orders lost, 15 duplicated")
    assert "outbox=True" in message and "idempotency_key=True" in message and "broker was down" in message


def test_the_baseline_misses_browse_and_the_check_says_which_fault_and_what_covers_it():
    message = fails(check.browse, BASELINE, match=r"browse answered 96\.246% .* below its SLO of 99\.90%")
    assert "recommendations slow" in message and "partition" in message
    assert "recommendations.timeout" in message and "recommendations_fallback=True" in message


# --- the reference passes tasks 1 to 5, and task 6 needs work ------------------------------------------------
def test_the_reference_passes_tasks_1_to_5_and_says_tasks_2_to_4_judged_the_visible_day_only(pool, capsys):
    for task in (check.writes, check.browse, check.search, check.checkout):
        task(REFERENCE)
    check.hidden(REFERENCE, executor=pool, progress=False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all(line.startswith("✔ ") for line in lines), lines
    assert all(line.endswith("(the visible day only; hidden days: task 5)") for line in lines[1:4]), lines
    assert "visible day only" not in lines[0] + lines[4] and "all 5 hidden days" in lines[4]


def test_the_reference_fails_the_cost_bar_with_its_items_biggest_first_and_a_way_to_look(pool):
    message = fails(lambda c: check.cost(c, executor=pool, progress=False), REFERENCE,
                    match=r"lean costs \$202 on the visible day, above the bar of \$190")
    assert message.index("replicas of job workers $48") < message.index("replicas of frontend $24") \
        < message.index("cache memory $10")
    assert "one fewer of the costliest replicas or job workers" in message and "$24 each a day" in message
    assert '"workers": 1' not in message and "workers=1" not in message      # a way to look, not the answer


def test_the_lean_configuration_passes_the_cost_bar(pool, capsys):
    check.cost(LEAN, executor=pool, progress=False)
    line = capsys.readouterr().out.strip()
    assert line.startswith("✔ lean: every day passed at $178 on the visible day (the bar $190)"), line


def test_the_cost_bar_lies_between_the_lean_cost_and_the_measured_reference_cost():
    assert round(check.visible_day(REFERENCE).cost.total) == check.REFERENCE_COST == 202
    assert round(check.visible_day(LEAN).cost.total) == 178 < check.COST_BAR == 190 < check.REFERENCE_COST


# --- a configuration tuned to the visible day fails the hidden days ---------------------------------------------
def test_the_brittle_configuration_passes_the_visible_day_and_fails_the_hidden_days(pool, capsys):
    for task in (check.writes, check.browse, check.search, check.checkout):
        task(BRITTLE)
    assert capsys.readouterr().out.count("✔") == 4
    message = fails(lambda c: check.hidden(c, executor=pool, progress=False), BRITTLE,
                    match=r"passes the visible day but fails 5 of 5 hidden days .* on hidden day 11")
    assert "catalog cache" in message
    table, replay = check.hidden_verdict(BRITTLE)
    assert table.failed_days() == list(HIDDEN_SEEDS) and replay.seed == HIDDEN_SEEDS[0]


# --- typical mistakes, each named ---------------------------------------------------------------------------
@pytest.mark.parametrize("dedupe", ["none", "separate"])
def test_the_outbox_without_an_idempotent_consumer_is_refused_for_duplicated_receipts(dedupe):
    config = BASELINE.with_(outbox=True, idempotency_key=True, dedupe=dedupe)
    message = fails(check.writes, config, match=r"outbox without an idempotent consumer")
    assert "duplicated receipts" in message and "dedupe='transaction'" in message and repr(dedupe) in message


def test_no_idempotency_key_is_refused_for_cards_charged_twice():
    config = BASELINE.with_(outbox=True, dedupe="transaction")
    message = fails(check.writes, config, match=r"0 orders lost, 15 duplicated")
    assert "15 orders charged twice" in message and "idempotency_key=True" in message


@pytest.mark.parametrize("name", ["writes", "browse", "search", "checkout", "hidden", "cost"])
def test_a_dict_instead_of_a_shop_config_is_refused_by_name(name):
    message = fails(getattr(check, name), {"outbox": True}, match=r"must be a ShopConfig")
    assert "BASELINE.with_(**settings)" in message


@pytest.mark.parametrize("name", ["writes", "browse", "search", "checkout", "hidden", "cost"])
def test_an_unset_answer_says_it_is_not_written_yet(name):
    fails(getattr(check, name), ..., match=r"is not written yet")


def test_a_piece_that_undoes_an_earlier_task_is_named():
    """Search settings on top of the writes alone: search meets its SLO, browse (task 2) is lost."""
    config = BASELINE.with_(outbox=True, dedupe="transaction", idempotency_key=True, search=REFERENCE.search,
                            sql_search=REFERENCE.sql_search, search_fallback=True)
    fails(check.search, config, match=r"lost what task 2 \(browse\) won: .*browse answered")


def test_ten_replicas_of_everything_pass_the_days_but_fail_the_cost_bar_with_the_items_named(pool):
    rich = REFERENCE.with_(replicas=Replicas(*[10] * 7), name="rich")
    message = fails(lambda c: check.cost(c, executor=pool, progress=False), rich,
                    match=r"above the bar of \$190")
    assert "replicas of frontend $240" in message and "replicas.catalog=10 buys little" in message


def test_the_checks_refuse_to_run_non_configs_in_the_public_helpers():
    with pytest.raises(TypeError, match="config must be a ShopConfig"):
        check.visible_day({"outbox": True})
    with pytest.raises(TypeError, match="config must be a ShopConfig"):
        check.hidden_verdict("reference")


def test_runs_are_memoised_by_configuration():
    assert check.visible_day(REFERENCE) is check.visible_day(REFERENCE.with_())
    assert check.hidden_verdict(BRITTLE) is check.hidden_verdict(REFERENCE.with_(cache=None, name="brittle"))


# --- the notebook ------------------------------------------------------------------------------------------
SOLUTION_ONLY = ("lab08-24", "lab08-39")     # asserts on the solution's own configurations


def test_the_solution_notebook_runs_clean():
    assert walk(NOTEBOOK) == {}


def test_the_learner_copy_is_generated_and_not_stale():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "generate_labs.py"), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert "08_capstone" not in done.stdout + done.stderr, done.stdout + done.stderr
    learner = (ROOT / "labs" / NOTEBOOK).read_text(encoding="utf-8")
    assert learner.count('raise NotImplementedError(\\"Your code here\\")') == 6
    assert 'idempotency_key=True, name=\\"writes\\"' not in learner and 'replicas={\\"workers\\": 1}' not in learner


def _without_solution_only(failed: dict) -> dict:
    return {cid: exc for cid, exc in failed.items() if cid not in SOLUTION_ONLY}


@pytest.mark.parametrize("stub, then, task, own, later", [
    (["lab08-11"], None, 1, ["lab08-11", "lab08-12"], ["lab08-15", "lab08-16", "lab08-18", "lab08-19", "lab08-22", "lab08-23",
                                           "lab08-32", "lab08-36", "lab08-37"]),
    (["lab08-15"], None, 2, ["lab08-15", "lab08-16"], ["lab08-18", "lab08-19", "lab08-22", "lab08-23", "lab08-32", "lab08-36",
                                           "lab08-37"]),
    (["lab08-22"], None, 4, ["lab08-22", "lab08-23"], ["lab08-32", "lab08-36", "lab08-37"]),
    ([], {"lab08-22": {"shop": BRITTLE}}, 5, ["lab08-32"], ["lab08-36", "lab08-37"]),
    (["lab08-36"], None, 6, ["lab08-36", "lab08-37"], []),
], ids=["1", "2", "4", "5-brittle", "6"])
def test_a_learner_who_skips_a_task_is_told_to_write_it_first(stub, then, task, own, later):
    failed = _without_solution_only(walk(NOTEBOOK, stub=stub, then=then))
    says_which_task_first(failed, task, own, later)
