"""Make the learner's copy of each lab from its solution notebook.

``python tools/generate_labs.py`` reads every ``labs/solutions/*.ipynb`` and writes
``labs/<same name>.ipynb``:

* in code cells, each region from a line ``### BEGIN SOLUTION`` to a line ``### END SOLUTION``
  (the grammar of nbgrader and otter-grader) becomes ``raise NotImplementedError("Your code here")``
  at the indentation of the BEGIN line; the lines around the region stay;
* in markdown cells, each region from ``<!-- BEGIN SOLUTION -->`` to ``<!-- END SOLUTION -->`` is
  removed (a cell left empty is dropped);
* a cell tagged ``solution`` is a solution as a whole: a code cell becomes the stub line above, a
  markdown cell is dropped; a cell tagged ``solution-only`` is dropped whatever its type;
* outputs and execution counts are stripped.

The output is deterministic: the same solution gives the same bytes. ``--check`` writes nothing and
exits with status 1, listing the learner's copies that are missing or stale.

A marker line that is unbalanced (END without BEGIN, BEGIN without END, BEGIN inside a region) or
almost right (``## BEGIN SOLUTION``, ``### BEGIN SOLUTION here``) is an error: a ``ValueError`` that
names the notebook and the cell, so a solution never leaks into the learner's copy by accident.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

STUB = 'raise NotImplementedError("Your code here")'
CODE_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
MARKDOWN_MARKERS = ("<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->")
SOLUTION_TAG = "solution"            # the whole cell is the solution
SOLUTION_ONLY_TAG = "solution-only"  # the cell is dropped from the learner's copy
_NEAR_MISS = re.compile(r"\b(BEGIN|END)[ _]SOLUTION\b", re.IGNORECASE)


def _lines(source) -> list[str]:
    text = "".join(source) if isinstance(source, list) else source
    return text.splitlines(keepends=True)


def _as_source(lines: list[str]) -> list[str]:
    """Jupyter's on-disk form: a list of lines, each ending in a newline except the last."""
    text = "".join(lines).rstrip("\n")
    return text.splitlines(keepends=True) if text else []


def _where(name: str, index: int, cell: dict) -> str:
    cell_id = cell.get("id")
    return f"{name}, cell {index}" + (f" (id {cell_id!r})" if cell_id else "")


def _replace_regions(lines: list[str], markers: tuple[str, str], where: str, *, stub: bool) -> list[str]:
    """Replace (``stub=True``) or drop each marked region; raise ``ValueError`` on a bad marker."""
    begin, end = markers
    out: list[str] = []
    open_at: int | None = None
    just_closed = False
    for number, line in enumerate(lines, start=1):
        bare = line.strip()
        if just_closed and not stub and not bare and (not out or not out[-1].strip()):
            continue  # a dropped region leaves no double blank line behind
        just_closed = False
        if bare == begin:
            if open_at is not None:
                raise ValueError(f"{where}: line {number} opens {begin!r} inside the region opened at "
                                 f"line {open_at}; close it with {end!r} first")
            open_at = number
            if stub:
                indent = line[:len(line) - len(line.lstrip())]
                out.append(f"{indent}{STUB}\n")
        elif bare == end:
            if open_at is None:
                raise ValueError(f"{where}: line {number} has {end!r} without a {begin!r} before it")
            open_at = None
            just_closed = True
        elif _NEAR_MISS.search(line):
            raise ValueError(f"{where}: line {number} looks like a solution marker but is not one: "
                             f"{bare!r}; write {begin!r} or {end!r} alone on its line")
        elif open_at is None:
            out.append(line)
    if open_at is not None:
        raise ValueError(f"{where}: {begin!r} at line {open_at} is never closed with {end!r}")
    return out


def learner_notebook(solution: dict, name: str = "<notebook>") -> dict:
    """The learner's copy of a solution notebook (a dict in nbformat 4), as a new dict."""
    cells = []
    for index, cell in enumerate(solution.get("cells", [])):
        where = _where(name, index, cell)
        kind = cell.get("cell_type")
        metadata = dict(cell.get("metadata", {}))
        tags = list(metadata.get("tags", []))
        if SOLUTION_ONLY_TAG in tags:
            continue
        lines = _lines(cell.get("source", ""))
        if kind == "code":
            lines = _replace_regions(lines, CODE_MARKERS, where, stub=True)
            if SOLUTION_TAG in tags:
                lines = [STUB + "\n"]
        elif kind == "markdown":
            lines = _replace_regions(lines, MARKDOWN_MARKERS, where, stub=False)
            if SOLUTION_TAG in tags or not "".join(lines).strip():
                continue
        else:
            _replace_regions(lines, CODE_MARKERS, where, stub=True)  # a marker here would be a mistake
        if tags:
            tags = [t for t in tags if t != SOLUTION_TAG]
            if tags:
                metadata["tags"] = tags
            else:
                del metadata["tags"]
        new = {key: value for key, value in cell.items()}
        new["metadata"] = metadata
        new["source"] = _as_source(lines)
        if kind == "code":
            new["outputs"] = []
            new["execution_count"] = None
        cells.append(new)
    notebook = {key: (cells if key == "cells" else value) for key, value in solution.items()}
    notebook.setdefault("cells", cells)
    metadata = {key: value for key, value in notebook.get("metadata", {}).items() if key != "widgets"}
    notebook["metadata"] = metadata
    return notebook


def render(notebook: dict) -> str:
    """The bytes we write (as text): the layout Jupyter and ``notebook_tools strip`` use."""
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def learner_text(solution_path: Path) -> str:
    """The learner's copy of the notebook at ``solution_path``, as the text to write."""
    try:
        solution = json.loads(solution_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{solution_path}: not a valid notebook (JSON error: {exc})") from None
    return render(learner_notebook(solution, str(solution_path)))


def _default_labs_dir() -> Path:
    here = Path("labs")
    if (here / "solutions").is_dir():
        return here
    return Path(__file__).resolve().parents[1] / "labs"


def pairs(labs_dir: Path) -> list[tuple[Path, Path]]:
    """(solution, learner copy) for every solution notebook, sorted by name."""
    solutions = sorted((labs_dir / "solutions").glob("*.ipynb"))
    return [(s, labs_dir / s.name) for s in solutions]


def stale(labs_dir: Path) -> list[str]:
    """Learner's copies that are missing or differ from what the generator would write."""
    problems = []
    for solution, copy in pairs(labs_dir):
        expected = learner_text(solution)
        if not copy.exists():
            problems.append(f"{copy} is missing")
        elif copy.read_text(encoding="utf-8") != expected:
            problems.append(f"{copy} is stale (differs from what {solution} gives)")
    return problems


def generate(labs_dir: Path) -> list[Path]:
    """Write every learner's copy that changed; return the paths written."""
    written = []
    for solution, copy in pairs(labs_dir):
        text = learner_text(solution)
        if not copy.exists() or copy.read_text(encoding="utf-8") != text:
            copy.write_bytes(text.encode("utf-8"))
            written.append(copy)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/generate_labs.py",
                                     description="Write the learner's copy of each lab from labs/solutions/.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 listing the learner's copies that are missing or stale")
    parser.add_argument("--labs-dir", type=Path, default=None,
                        help="the folder holding solutions/ (default: ./labs, else the repository's labs/)")
    args = parser.parse_args(argv)
    labs_dir = args.labs_dir or _default_labs_dir()
    if not (labs_dir / "solutions").is_dir():
        print(f"error: {labs_dir / 'solutions'} is not a folder", file=sys.stderr)
        return 2
    try:
        if args.check:
            problems = stale(labs_dir)
            for problem in problems:
                print(problem)
            if problems:
                print("run `make labs` (python tools/generate_labs.py) and commit the result")
                return 1
            print(f"{len(pairs(labs_dir))} learner's copies are up to date")
            return 0
        written = generate(labs_dir)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"{len(pairs(labs_dir))} learner's copies were up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
