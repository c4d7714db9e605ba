"""environment.yml (conda) and pyproject.toml (pip) list the same packages, each commented in the yml."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENT = re.compile(r"^\s*-\s*([A-Za-z0-9_.\-]+)\s*([<>=!~][^#\s]*)?\s*(#.*)?$")


def names(requirements):
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def conda_dependencies():
    deps, in_deps = {}, False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        pip_entry = line.startswith("      - ") and not line.strip().startswith("- -e ")
        if in_deps and (line.startswith("  - ") or pip_entry) and not line.strip().startswith("- pip"):
            match = REQUIREMENT.match(line)
            assert match, f"cannot read environment.yml line {line!r}"
            deps[match.group(1).lower()] = (match.group(2), match.group(3))
    return deps


def test_conda_and_pip_list_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip = names(project["dependencies"]) | names(project["optional-dependencies"]["test"])
    conda = set(conda_dependencies()) - {"python"}
    assert conda == pip, f"only in environment.yml: {conda - pip}; only in pyproject.toml: {pip - conda}"


def test_versions_agree_and_each_dependency_says_what_it_is_for():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {re.split(r"[<>=!~]", r, maxsplit=1)[0].lower(): r[len(re.split(r"[<>=!~]", r, maxsplit=1)[0]):]
            for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    for name, (version, comment) in conda_dependencies().items():
        assert comment and len(comment) > 10, f"{name} in environment.yml needs a comment on what it is for"
        if name != "python":
            assert version == pins[name], f"{name}: environment.yml says {version}, pyproject.toml {pins[name]}"


def test_python_floor_agrees():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == conda_dependencies()["python"][0]
