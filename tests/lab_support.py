"""What the lab tests share: the solution notebook as a namespace, and a check that must fail."""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SOLUTIONS = Path(__file__).resolve().parents[1] / "labs" / "solutions"
sys.path.insert(0, str(SOLUTIONS.parents[1] / "tools"))
import generate_labs as gen  # noqa: E402  (tools/ is not a package)


def solution_namespace(notebook: str) -> dict:
    """The namespace left by running every code cell of ``labs/solutions/<notebook>`` in order, so the
    solution notebook stays the single source of the reference answers."""
    path = SOLUTIONS / notebook
    nb = json.loads(path.read_text(encoding="utf-8"))
    namespace: dict = {"__name__": path.stem + "_solution"}
    with contextlib.redirect_stdout(io.StringIO()):
        for index, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), f"{path.name}[{index}]", "exec"), namespace)
    return namespace


def fails(check_fn, *args, match: str) -> str:
    """Run a check that must fail, and return its message (which must match ``match``)."""
    with pytest.raises(AssertionError, match=match) as info:
        check_fn(*args)
    return str(info.value)


def run_child(tmp_path, code: str) -> tuple[str, float]:
    """Run ``code`` in a child Python (bounded: the test fails rather than hang), from a file so that the
    message can show its lines; return what it printed and how long it took."""
    script = tmp_path / "learner.py"
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    started = time.monotonic()
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=root)
    return done.stdout + done.stderr, time.monotonic() - started


def walk(notebook: str, *, stub=(), then=None) -> dict:
    """Every code cell of the solution ``labs/solutions/<notebook>`` run in order in one namespace, as "Run
    all" does with each failing cell skipped, with the cells whose ids are in ``stub`` as in the learner's
    copy (their solutions replaced by the stub line) and, after the cell with id ``k`` has run, the names of
    ``then[k]`` (a dict) set in the namespace: {cell id: the exception the cell raised} for the failing cells."""
    notebook_path = SOLUTIONS / notebook
    cells = json.loads(notebook_path.read_text(encoding="utf-8"))["cells"]
    namespace: dict = {"__name__": "__main__"}
    failed = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for index, cell in enumerate(cells):
            if cell["cell_type"] != "code":
                continue
            if cell["id"] in stub:
                cell = gen.learner_notebook({"cells": [cell]})["cells"][0]
            try:
                exec(compile("".join(cell["source"]), f"<{notebook} cell {index}>", "exec"), namespace)
            except Exception as exc:  # noqa: BLE001 - what the cell raised is what we look at
                failed[cell["id"]] = exc
            namespace.update((then or {}).get(cell["id"], {}))
    return failed


def says_which_task_first(failed: dict, task: int, own, later, above=(), named=()) -> None:
    """After task ``task`` was left undone: its ``own`` cells fail with their own message (or the stub's
    NotImplementedError), the ``later`` cells, and only they, say to write it first (or that it is not done),
    or, in cells of that task itself, to write one of the ``named`` functions first, the cells ``above`` say
    that what they read comes from the cell above, which stopped, and nothing fails with an error from
    inside the learner's code."""
    first = (f"Write task {task} first: ", f"Task {task} is not done yet: ",
             *(f"Write {name} first: " for name in named), *(f"{name} is not done yet: " for name in named))
    shown = {cid: f"{type(exc).__name__}: {exc}" for cid, exc in failed.items()}
    assert all("comes from the cell above, which stopped" in str(failed.get(cid)) for cid in above), shown
    said = {cid: str(exc) for cid, exc in failed.items() if str(exc).startswith(first) and cid not in above}
    assert sorted(said) == sorted(later), shown
    others = {cid: exc for cid, exc in failed.items() if cid not in said and cid not in above}
    assert sorted(others) == sorted(own), others
    assert all(isinstance(exc, (AssertionError, NotImplementedError)) for exc in others.values()), others
    for cid in [*later, *above]:
        assert isinstance(failed[cid], AssertionError) and failed[cid]._render_traceback_() == \
            [f"AssertionError: {failed[cid]}"], cid        # in a notebook: the message alone, no traceback
