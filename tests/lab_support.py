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
