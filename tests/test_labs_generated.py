"""The learner's copies of the labs are generated from the solutions, are up to date and hold no
solution; the generator itself on small in-memory notebooks."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import generate_labs as gen  # noqa: E402  (tools/ is not a package)

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "labs"
PAIRS = gen.pairs(LABS)


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --- the repository's labs ------------------------------------------------------------------------
def test_there_are_labs():
    assert PAIRS, "labs/solutions/ should hold at least one solution notebook"


def test_learner_copies_are_not_stale():
    """Fails when someone edited a solution and forgot `make labs` (or edited a copy by hand)."""
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "generate_labs.py"), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("solution, learner", PAIRS, ids=[s.stem for s, _ in PAIRS])
def test_markers_are_balanced_in_every_cell(solution, learner):
    for index, cell in enumerate(_load(solution)["cells"]):
        text = _source(cell)
        for begin, end in (gen.CODE_MARKERS, gen.MARKDOWN_MARKERS):
            assert text.count(begin) == text.count(end), f"{solution.name} cell {index}: {begin} vs {end}"
    gen.learner_notebook(_load(solution), solution.name)  # raises on any misplaced marker


@pytest.mark.parametrize("solution, learner", PAIRS, ids=[s.stem for s, _ in PAIRS])
def test_learner_copy_holds_no_solution(solution, learner):
    sol, copy_ = _load(solution), _load(learner)
    copy_cells = {cell.get("id"): cell for cell in copy_["cells"]}
    regions = 0
    for cell in sol["cells"]:
        lines = _source(cell).splitlines()
        hidden, inside = [], False
        for line in lines:
            marker = line.strip()
            if marker in (gen.CODE_MARKERS[0], gen.MARKDOWN_MARKERS[0]):
                inside, regions = True, regions + 1
            elif marker in (gen.CODE_MARKERS[1], gen.MARKDOWN_MARKERS[1]):
                inside = False
            elif inside and marker and not marker.startswith("#"):
                hidden.append(marker)
        if not hidden:
            continue
        learner_text = _source(copy_cells[cell["id"]]) if cell.get("id") in copy_cells else ""
        learner_lines = {line.strip() for line in learner_text.splitlines()}
        leaked = [line for line in hidden if line in learner_lines]
        assert not leaked, f"{learner.name}, cell {cell.get('id')}: solution lines leaked: {leaked}"
    assert regions, f"{solution.name} has no solution region at all"
    whole = learner.read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in whole and "END SOLUTION" not in whole
    assert whole.count(gen.STUB.replace('"', '\\"')) >= 1


@pytest.mark.parametrize("solution, learner", PAIRS, ids=[s.stem for s, _ in PAIRS])
def test_learner_copy_has_no_outputs(solution, learner):
    for cell in _load(learner)["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("solution, learner", PAIRS, ids=[s.stem for s, _ in PAIRS])
def test_solution_is_committed_stripped(solution, learner):
    for cell in _load(solution)["cells"]:
        if cell["cell_type"] == "code" and "keep-output" not in cell.get("metadata", {}).get("tags", []):
            assert cell["outputs"] == [] and cell["execution_count"] is None, \
                f"strip it: python tools/notebook_tools.py strip {solution.relative_to(ROOT)}"


# --- the generator on tiny notebooks ------------------------------------------------------------
def notebook(*cells) -> dict:
    return {"cells": list(cells), "metadata": {"kernelspec": {"name": "python3"}, "widgets": {"state": {}}},
            "nbformat": 4, "nbformat_minor": 5}


def code(source, *, id="c", tags=None, outputs=None):
    cell = {"cell_type": "code", "execution_count": 3 if outputs else None, "id": id,
            "metadata": {"tags": tags} if tags else {}, "outputs": outputs or [], "source": source}
    return cell


def markdown(source, *, id="m", tags=None):
    return {"cell_type": "markdown", "id": id, "metadata": {"tags": tags} if tags else {}, "source": source}


FUNCTION = """\
def f(x):
    # double it
    ### BEGIN SOLUTION
    y = 2 * x
    return y
    ### END SOLUTION


value = 1
### BEGIN SOLUTION
value = f(value)
### END SOLUTION
print(value)"""


def test_code_region_becomes_a_stub_at_its_indentation():
    out = gen.learner_notebook(notebook(code(FUNCTION)))
    assert _source(out["cells"][0]) == (
        "def f(x):\n"
        "    # double it\n"
        '    raise NotImplementedError("Your code here")\n'
        "\n\n"
        "value = 1\n"
        'raise NotImplementedError("Your code here")\n'
        "print(value)")


def test_source_as_a_string_or_a_list_gives_the_same_copy():
    as_list = FUNCTION.splitlines(keepends=True)
    one = gen.learner_notebook(notebook(code(FUNCTION)))
    two = gen.learner_notebook(notebook(code(as_list)))
    assert gen.render(one) == gen.render(two)
    assert isinstance(one["cells"][0]["source"], list)


def test_outputs_counts_and_widget_state_are_stripped():
    cell = code("print(1)", outputs=[{"output_type": "stream", "name": "stdout", "text": ["1\n"]}])
    out = gen.learner_notebook(notebook(cell))
    assert out["cells"][0]["outputs"] == [] and out["cells"][0]["execution_count"] is None
    assert "widgets" not in out["metadata"] and out["metadata"]["kernelspec"] == {"name": "python3"}


def test_the_solution_dict_is_left_untouched():
    solution = notebook(code(FUNCTION, outputs=[{"output_type": "stream", "name": "stdout", "text": "2"}]))
    before = copy.deepcopy(solution)
    gen.learner_notebook(solution)
    assert solution == before


def test_markdown_region_is_removed_and_leaves_no_double_blank_line():
    text = "Intro.\n\n<!-- BEGIN SOLUTION -->\n**Answer.** 42.\n<!-- END SOLUTION -->\n\nNext step."
    out = gen.learner_notebook(notebook(markdown(text)))
    assert _source(out["cells"][0]) == "Intro.\n\nNext step."
    only = "<!-- BEGIN SOLUTION -->\n**Answer.** 42.\n<!-- END SOLUTION -->\n"
    assert gen.learner_notebook(notebook(markdown(only), code("x = 1")))["cells"][0]["cell_type"] == "code"


def test_tagged_cells():
    nb = notebook(code("answer = 42", id="a", tags=["solution", "other"]),
                  markdown("The answer is 42.", id="b", tags=["solution"]),
                  code("print(answer)", id="c", tags=["solution-only"]),
                  code("check(answer)", id="d"))
    out = gen.learner_notebook(nb)
    assert [c["id"] for c in out["cells"]] == ["a", "d"]
    assert _source(out["cells"][0]) == gen.STUB and out["cells"][0]["metadata"] == {"tags": ["other"]}


def test_output_is_deterministic_and_idempotent():
    nb = notebook(markdown("# Lab\n\nÉté ✔"), code(FUNCTION))
    first = gen.render(gen.learner_notebook(nb))
    assert first == gen.render(gen.learner_notebook(copy.deepcopy(nb)))
    assert gen.render(gen.learner_notebook(json.loads(first))) == first  # a copy of a copy is the copy
    assert "Été ✔" in first and first.endswith("}\n")


@pytest.mark.parametrize("source, match", [
    ("### BEGIN SOLUTION\nx = 1", r"lab\.ipynb, cell 0 \(id 'bad'\).*line 1 is never closed"),
    ("x = 1\n### END SOLUTION", r"cell 0 \(id 'bad'\): line 2 has '### END SOLUTION' without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", r"line 2 opens .* inside the region opened at line 1"),
    ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION", "looks like a solution marker but is not one"),
    ("### BEGIN SOLUTION here\nx = 1\n### END SOLUTION", "looks like a solution marker"),
])
def test_bad_markers_name_the_file_and_cell(source, match):
    with pytest.raises(ValueError, match=match):
        gen.learner_notebook(notebook(code(source, id="bad")), "lab.ipynb")


def test_bad_markdown_marker():
    with pytest.raises(ValueError, match=r"cell 1 .*never closed"):
        gen.learner_notebook(notebook(code("x = 1"), markdown("<!-- BEGIN SOLUTION -->\nsecret", id="m")), "lab")


def _write(path: Path, nb: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def test_main_writes_then_checks(tmp_path, capsys):
    _write(tmp_path / "solutions" / "01_x.ipynb", notebook(code(FUNCTION)))
    assert gen.main(["--check", "--labs-dir", str(tmp_path)]) == 1
    assert "01_x.ipynb is missing" in capsys.readouterr().out
    assert gen.main(["--labs-dir", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    written = (tmp_path / "01_x.ipynb").read_bytes()
    assert gen.main(["--labs-dir", str(tmp_path)]) == 0          # nothing to do the second time
    assert "up to date" in capsys.readouterr().out and (tmp_path / "01_x.ipynb").read_bytes() == written
    assert gen.main(["--check", "--labs-dir", str(tmp_path)]) == 0
    (tmp_path / "01_x.ipynb").write_text(written.decode().replace("value = 1", "value = 2"), encoding="utf-8")
    assert gen.main(["--check", "--labs-dir", str(tmp_path)]) == 1
    assert "01_x.ipynb is stale" in capsys.readouterr().out


def test_main_reports_a_bad_solution(tmp_path, capsys):
    _write(tmp_path / "solutions" / "02_bad.ipynb", notebook(code("### BEGIN SOLUTION\nx = 1", id="oops")))
    assert gen.main(["--labs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "02_bad.ipynb, cell 0 (id 'oops')" in err and not (tmp_path / "02_bad.ipynb").exists()
    (tmp_path / "solutions" / "02_bad.ipynb").write_text("{not json", encoding="utf-8")
    assert gen.main(["--check", "--labs-dir", str(tmp_path)]) == 2
    assert "not a valid notebook" in capsys.readouterr().err


def test_main_without_a_solutions_folder(tmp_path, capsys):
    assert gen.main(["--labs-dir", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


# --- the learner's copies as a learner first runs them: nothing written yet ----------------------------
NEEDY = [(s, l) for s, l in PAIRS if s.name.startswith(("05_", "06_"))]


def _run_unfilled(learner: Path) -> list[tuple[str, BaseException | None]]:
    """Every code cell of ``learner`` run in order in one namespace, as "Run all" does in a fresh kernel
    with each failing cell skipped: (source, the exception it raised or None)."""
    namespace: dict = {"__name__": "__main__"}
    ran = []
    for index, cell in enumerate(_load(learner)["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = _source(cell)
        try:
            exec(compile(source, f"<{learner.name} cell {index}>", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - the cell's failure is what we look at
            ran.append((source, exc))
        else:
            ran.append((source, None))
    return ran


@pytest.mark.parametrize("solution, learner", NEEDY, ids=[s.stem for s, _ in NEEDY])
def test_an_unfilled_copy_says_which_task_to_write_first_and_never_raises_a_name_error(solution, learner):
    ran = _run_unfilled(learner)
    names = [(source.splitlines()[0], exc) for source, exc in ran if isinstance(exc, NameError)]
    assert not names, f"{learner.name}: cells fail with a NameError: {names}"
    needy = [(source, exc) for source, exc in ran if source.startswith("check.needs(")]
    assert len(needy) == 2, f"{learner.name}: expected two cells that read a run of the learner's code"
    for source, exc in needy:
        task = source.split("task=")[1].split(")")[0]
        assert isinstance(exc, AssertionError) and str(exc).startswith(f"Write task {task} first: "), (source, exc)
        assert "comes from the cell above" in str(exc)
    assert all(isinstance(exc, AssertionError) for _, exc in ran if exc is not None), \
        [(source.splitlines()[0], repr(exc)) for source, exc in ran if not isinstance(exc, (AssertionError, type(None)))]


def test_needs_is_silent_once_the_names_exist_and_refuses_a_bad_call():
    from resilience_sim.labs import feedback
    namespace = {"needs": feedback.needs, "story": {"effects": 1}}
    exec("needs('story', task=2)", namespace)                 # the cell above ran: nothing to say
    with pytest.raises(AssertionError, match=r"^Write task 3 first: `plain` comes from the cell above.*tasks 1 to 3"):
        exec("needs('story', 'plain', task=3)", namespace)
    with pytest.raises(ValueError, match="names must be"):
        feedback.needs(task=1)
    with pytest.raises(ValueError, match="task must be"):
        feedback.needs("story", task=0)


def test_a_failed_check_shows_its_message_alone_in_a_notebook():
    from resilience_sim.labs import feedback

    @feedback.message_only
    def check():
        raise AssertionError("your breaker never opened")     # (pytest would rewrite an assert's text)

    try:
        check()
    except AssertionError as err:
        assert err._render_traceback_() == ["AssertionError: your breaker never opened"]
        assert err.__suppress_context__                 # elsewhere, no chain of frames under it either
    else:
        raise AssertionError("the check should have failed")


def test_a_check_that_needs_an_earlier_task_names_that_task_whether_unwritten_or_failing():
    import pytest
    from resilience_sim.labs import feedback

    def unwritten():
        raise AssertionError("claim is not written yet: fill in its body\nmore")

    def failing():
        raise AssertionError("row 3 was claimed twice\nmore")

    with pytest.raises(AssertionError, match=r"^Write task 1 first: claim is not written yet: fill in its body$"):
        feedback.earlier_task(1, "claim(Relay)", unwritten)
    with pytest.raises(AssertionError, match=r"^Task 2 is not done yet: check.send\(Relay\) does not pass\. "
                                             r"It says: row 3 was claimed twice$"):
        feedback.earlier_task(2, "send(Relay)", failing)
    feedback.earlier_task(3, "handle(handle)", lambda: None)          # a task that passes: nothing said
