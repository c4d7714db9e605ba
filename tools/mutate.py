"""``make mutate``: mutation testing of the code every number depends on, with mutmut 3.8.1 (dev-only).

``python tools/mutate.py [--group core|policies|metrics|sim ...] [--max-children N] [--reuse] [--report]`` runs
``mutmut run`` over the groups below (all four unless ``--group`` names some) against the fast unit
tests, then prints a table per module and a line per group with its target, and writes the diffs of
the surviving mutants to ``mutants-survivors.txt``. It exits with status 1 when a group misses its
target (or a list of equivalent mutants is malformed), 0 otherwise. ``--report`` runs nothing and
reports what the last run left in ``mutants/``.

What mutmut runs is set in ``[tool.mutmut]`` of pyproject.toml, the one place that says which files
are mutated (``only_mutate``: the groups' files, checked here against :data:`GROUPS`; raise statements
and ``warn()`` calls are left alone by ``do_not_mutate_patterns``: all they hold is a message) and which
tests run (``pytest_add_cli_args_test_selection``: the fast unit tests, never notebooks, labs, live or e2e).

How a mutant is counted, per module:

* **equivalent**: its name is listed in ``tools/equivalent_mutants/<group>.txt`` (one a line,
  ``<name>  # <why it cannot change behaviour>``); a listed name that no longer exists, or that the
  tests kill, is reported;
* **message-text**: every difference between the original and the mutated function lies in the text
  of string literals (plain ones, or the literal parts of f-strings) inside the arguments of an
  exception being built or raised (a call in a ``raise`` statement, or a call of a name ending in
  ``Error``, ``Exception`` or ``Warning``) or of ``warn()``. The exception's type, its condition and
  the control flow are the same: only what the message says changes. A mutant that drops a message
  (``ValueError(None)``) or changes a value shown in it is not message-text;
* otherwise as mutmut found it: **killed** (a test failed, or the test process crashed), **timed
  out** (the tests ran past mutmut's limit: the mutant loops or crawls, so it is detected, and counts
  as killed), or **survived** (every test passed, or no selected test reaches the mutant; a mutant
  a cut-short run never checked is counted here too, and reported).

Score = (killed + timed out) / (generated - message-text - equivalent). A group is ok when each of its
modules reaches the group's target.

Every run starts afresh (``mutants/`` removed) unless ``--reuse``: mutmut keeps its verdicts and its map
of which tests reach which function across runs, and an edited test (same name) would not be seen.
The mutmut version is pinned: this script reads its result files (``mutants/**/*.meta``) and its diffs.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT_VERSION = "3.8.1"
#: group -> (target score in percent, the modules and packages it mutates)
GROUPS = {
    "core": (90.0, ("resilience_sim.core", "resilience_sim.theory")),
    "policies": (90.0, ("resilience_sim.policies",)),
    "metrics": (85.0, ("resilience_sim.metrics",)),
    "sim": (85.0, ("resilience_sim.sim.service", "resilience_sim.sim.client")),
}
EQUIVALENTS = ROOT / "tools" / "equivalent_mutants"
SURVIVORS = ROOT / "mutants-survivors.txt"
KILLED = {"killed", "segfault", "caught by type check"}      # mutmut's names for a detected mutant
_LISTED = re.compile(r"^(\S+)\s+#\s*(\S.*)$")


# --- which files ----------------------------------------------------------------------------------
def _is_package(name: str) -> bool:
    return (ROOT / name.replace(".", "/")).is_dir()


def only_mutate(groups=GROUPS) -> list[str]:
    """The ``only_mutate`` globs of mutmut's config that mutate exactly the groups' files."""
    out = []
    for _, names in groups.values():
        for name in names:
            path = name.replace(".", "/")
            out.append(f"{path}/*" if _is_package(name) else f"{path}.py")
    return out


def source_files(group: str) -> list[Path]:
    """The group's source files, relative to the project's root."""
    files = []
    for name in GROUPS[group][1]:
        path = ROOT / name.replace(".", "/")
        found = sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
        files += [f.relative_to(ROOT) for f in found]
    return files


def group_of(mutant: str) -> str | None:
    """The group whose modules hold ``mutant`` (a mutmut name, ``package.module.x_function__mutmut_3``)."""
    for group, (_, names) in GROUPS.items():
        if any(mutant.startswith(name + ".") for name in names):
            return group
    return None


def check_config() -> None:
    """Refuse to run when pyproject's ``[tool.mutmut] only_mutate`` is not the groups' files."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    expected = only_mutate()
    if sorted(config.get("only_mutate", [])) != sorted(expected):
        raise SystemExit(f"pyproject.toml [tool.mutmut] only_mutate must be {expected} (the files of "
                         f"tools/mutate.py's GROUPS), got {config.get('only_mutate')}")


# --- equivalent mutants ----------------------------------------------------------------------------
def read_equivalents(folder: Path = EQUIVALENTS) -> dict[str, str]:
    """``{mutant name: reason}`` from ``<group>.txt`` files; a ``ValueError`` for a line without a
    reason, a file named after no group, or a name listed in another group's file."""
    listed = {}
    for path in sorted(folder.glob("*.txt")):
        if path.stem not in GROUPS:
            raise ValueError(f"{path.name}: equivalent mutants are listed per group, one of {list(GROUPS)}")
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            match = _LISTED.match(line.strip())
            if not match:
                raise ValueError(f"{path.name}:{number}: write '<mutant name>  # <why it cannot change "
                                 f"behaviour>', got {line!r}")
            name, reason = match.groups()
            if group_of(name) != path.stem:
                raise ValueError(f"{path.name}:{number}: {name} is not a mutant of the {path.stem} group")
            listed[name] = reason
    return listed


# --- message-text mutants ---------------------------------------------------------------------------
def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _builds_message(call: ast.Call) -> bool:
    name = _called_name(call)
    return name == "warn" or name.endswith(("Error", "Exception", "Warning"))


class _BlankMessages(ast.NodeTransformer):
    """Empties every string literal inside the arguments of a raised or built exception, or of warn()."""

    def visit_Raise(self, node: ast.Raise):
        if isinstance(node.exc, ast.Call):
            self._blank(node.exc)
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call):
        if _builds_message(node):
            self._blank(node)
        return self.generic_visit(node)

    @staticmethod
    def _blank(call: ast.Call) -> None:
        for arg in [*call.args, *(k.value for k in call.keywords)]:
            for node in ast.walk(arg):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    node.value = ""


def is_message_text(original: str, mutated: str) -> bool:
    """Whether two versions of a function differ only in the text of their exceptions' messages."""
    trees = [ast.parse(original), ast.parse(mutated)]
    if ast.dump(trees[0]) == ast.dump(trees[1]):
        return False
    blank = [ast.dump(_BlankMessages().visit(tree)) for tree in trees]
    return blank[0] == blank[1]


def function_sources(mutant: str, path: Path) -> tuple[str, str]:
    """The original and the mutated function of ``mutant``, as mutmut's ``show`` reads them."""
    import libcst as cst
    from mutmut.mutation import diff_apply
    functions = diff_apply.read_functions_from_index(mutant, path)
    if functions is None:
        module = diff_apply.read_mutants_module(path)
        functions = (diff_apply.read_original_function(module, mutant),
                     diff_apply.read_mutant_function(module, mutant))
    original, mutated = (cst.Module([f]).code.strip() for f in functions)
    return original, mutated


def diff(path: Path, sources: tuple[str, str]) -> str:
    """The unified diff of the original and the mutated function, as ``mutmut show`` prints it."""
    lines = difflib.unified_diff(sources[0].split("\n"), sources[1].split("\n"), fromfile=str(path),
                                 tofile=str(path), lineterm="")
    return "\n".join(lines)


# --- counting ------------------------------------------------------------------------------------------
@dataclass
class Module:
    """One module's mutants, counted as the docstring says."""
    path: Path
    group: str
    counts: dict = field(default_factory=lambda: dict.fromkeys(
        ("generated", "killed", "timed out", "survived", "message-text", "equivalent"), 0))
    survivors: list = field(default_factory=list)        # (name, mutmut's status, diff)

    @property
    def scored(self) -> int:
        return self.counts["generated"] - self.counts["message-text"] - self.counts["equivalent"]

    @property
    def caught(self) -> int:
        return self.counts["killed"] + self.counts["timed out"]

    @property
    def score(self) -> float | None:
        return 100.0 * self.caught / self.scored if self.scored else None


def mutmut_status(exit_code) -> str:
    from mutmut.stats import status_by_exit_code
    return status_by_exit_code[exit_code]


def count_module(path: Path, group: str, equivalents: dict, notes: list) -> Module:
    """Read ``mutants/<path>.meta`` (mutmut's verdict per mutant) and count its mutants."""
    module = Module(path, group)
    meta = ROOT / "mutants" / f"{path}.meta"
    verdicts = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    for name, exit_code in sorted(verdicts.items(), key=lambda item: _natural(item[0])):
        status = mutmut_status(exit_code)
        module.counts["generated"] += 1
        if name in equivalents:
            module.counts["equivalent"] += 1
            if status in KILLED or status == "timeout":
                notes.append(f"{name} is listed as equivalent but the tests kill it: remove it from the list")
            continue
        sources = function_sources(name, path)
        if is_message_text(*sources):
            module.counts["message-text"] += 1
        elif status in KILLED:
            module.counts["killed"] += 1
        elif status == "timeout":
            module.counts["timed out"] += 1
        else:
            module.counts["survived"] += 1
            module.survivors.append((name, status, diff(path, sources)))
    unchecked = sum(status == "not checked" for _, status, _ in module.survivors)
    if unchecked:
        notes.append(f"{path}: {unchecked} mutants not checked (the run was cut short), counted as survived")
    return module


def _natural(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


# --- report ------------------------------------------------------------------------------------------
COLUMNS = ("generated", "killed", "timed out", "survived", "message-text", "equivalent")


def _percent(score: float | None) -> str:
    return "-" if score is None else f"{score:.1f}%"


def table(modules: list[Module]) -> str:
    width = max([len("module")] + [len(str(m.path)) for m in modules])
    head = f"{'module':<{width}}  " + "  ".join(f"{c:>{max(len(c), 6)}}" for c in COLUMNS) + "   score"
    rows = [head, "-" * len(head)]
    for m in modules:
        cells = "  ".join(f"{m.counts[c]:>{max(len(c), 6)}}" for c in COLUMNS)
        rows.append(f"{str(m.path):<{width}}  {cells}  {_percent(m.score):>6}")
    return "\n".join(rows)


def group_line(group: str, modules: list[Module]) -> tuple[str, bool]:
    """The group's line (its score over all its modules, its target, ok or MISSED) and whether it is ok:
    ok when each module with a scored mutant reaches the target."""
    target = GROUPS[group][0]
    scored = sum(m.scored for m in modules)
    total = 100.0 * sum(m.caught for m in modules) / scored if scored else None
    low = [f"{m.path} {_percent(m.score)}" for m in modules if m.score is not None and m.score < target]
    ok = not low
    verdict = "ok" if ok else "MISSED (below the target: " + ", ".join(low) + ")"
    generated = sum(m.counts["generated"] for m in modules)
    return (f"{group}: {generated} mutants, score {_percent(total)}, target {target:g}% per module: "
            f"{verdict}"), ok


def write_survivors(modules: list[Module], groups: list[str]) -> int:
    survivors = [s for m in modules for s in m.survivors]
    lines = [f"# Surviving mutants of `make mutate` (groups: {', '.join(groups)}): {len(survivors)}.",
             "# Message-text and listed equivalent mutants are left out. Kill each with a test, or list it",
             "# in tools/equivalent_mutants/<group>.txt with the reason it cannot change behaviour.", ""]
    for name, status, text in survivors:
        lines += [f"## {name} ({status})", text, ""]
    SURVIVORS.write_text("\n".join(lines))
    return len(survivors)


# --- running mutmut -----------------------------------------------------------------------------------
def run_mutmut(groups: list[str], max_children: int, reuse: bool) -> float:
    """``mutmut run`` over the mutants of ``groups`` (named by glob: mutmut then tests each afresh);
    the seconds it took."""
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        raise SystemExit(f"mutmut is not installed beside {sys.executable}: run `make mutate`")
    if not reuse:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    names = [f"{name}.*" for group in groups for name in GROUPS[group][1]]
    start = time.monotonic()
    done = subprocess.run([str(mutmut), "run", "--max-children", str(max_children), *names], cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"mutmut run failed (exit status {done.returncode}): see its output above")
    return time.monotonic() - start


def check_mutmut() -> None:
    try:
        version = metadata.version("mutmut")
    except metadata.PackageNotFoundError:
        version = None
    if version != MUTMUT_VERSION:
        raise SystemExit(f"mutmut {MUTMUT_VERSION} is needed (this script reads its result files), found "
                         f"{version}: run `make mutate`, which installs the version constraints.txt pins")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", action="append", choices=list(GROUPS),
                        help="mutate only this group (repeatable); all four by default")
    parser.add_argument("--max-children", type=int, default=2,
                        help="mutants tested at once (default 2, one per core of a 2-core machine)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep mutants/ and mutmut's map of tests from the last run (faster; after "
                             "editing an existing test, run without it)")
    parser.add_argument("--report", action="store_true",
                        help="run nothing: report the results mutmut left in mutants/")
    args = parser.parse_args(argv)
    if args.max_children < 1:
        parser.error(f"--max-children must be a whole number >= 1, got {args.max_children}")
    args.group = [g for g in GROUPS if g in (args.group or GROUPS)]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    check_mutmut()
    check_config()
    try:
        equivalents = read_equivalents()
    except ValueError as err:
        raise SystemExit(f"tools/equivalent_mutants/{err}") from None
    os.chdir(ROOT)                       # mutmut's readers take paths relative to the project's root
    seconds = None if args.report else run_mutmut(args.group, args.max_children, args.reuse)
    notes, modules, lines, all_ok = [], [], [], True
    for group in args.group:
        mine = [count_module(path, group, equivalents, notes) for path in source_files(group)]
        modules += mine
        line, ok = group_line(group, mine)
        lines.append(line)
        all_ok &= ok
        known = _known_mutants(mine)
        notes += [f"{name} is listed in {group}.txt but is no longer a mutant: remove it"
                  for name in equivalents if group_of(name) == group and name not in known]
    took = "" if seconds is None else f", {seconds / 60:.1f} min with {args.max_children} worker(s)"
    print(f"\nmutmut {MUTMUT_VERSION}{took}; timed-out mutants count as killed\n")
    print(table(modules))
    print()
    print("\n".join(lines))
    print("\n".join(notes))
    print(f"{write_survivors(modules, args.group)} surviving mutants' diffs: {SURVIVORS.name}")
    return 0 if all_ok else 1


def _known_mutants(modules: list[Module]) -> set[str]:
    names = set()
    for m in modules:
        meta = ROOT / "mutants" / f"{m.path}.meta"
        if meta.exists():
            names |= set(json.loads(meta.read_text())["exit_code_by_key"])
    return names


# --- a pytest plugin, loaded in mutmut's test runs (pytest_add_cli_args: -p tools.mutate) --------------
def pytest_configure(config) -> None:
    """Keep mutmut's call-depth record out of ``contextvars``.

    While it maps tests to functions, mutmut 3.8.1 keeps the caller of each call in a ContextVar; on
    Python 3.11 our simulator's runs (generators closed by the garbage collector) make that variable
    read back a stale object (an EventLog where a name was stored), and the mapping run fails with
    ``unhashable type`` or ``can only concatenate tuple``. With ``track_dependencies = false`` (set in
    pyproject) the caller is never used, so a constant stands in for it."""
    try:
        from mutmut.core import MutmutCallStack
    except ImportError:                  # a plain pytest run that loaded this plugin by hand
        return
    MutmutCallStack.get = classmethod(lambda cls: (None, 0))
    MutmutCallStack.set = classmethod(lambda cls, value: None)
    MutmutCallStack.reset = classmethod(lambda cls, token: None)


if __name__ == "__main__":
    sys.exit(main())
