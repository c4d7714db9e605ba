"""What the lab tests share: the solution notebook as a namespace, and a check that must fail."""
from __future__ import annotations

import contextlib
import io
import json
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
