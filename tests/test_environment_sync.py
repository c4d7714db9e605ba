"""environment.yml (conda), pyproject.toml (pip) and constraints.txt (the lock) list the same packages;
the yml pins the locked versions (and an exact Python, for Binder), each with a comment."""
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


def lock():
    """``{name: version}`` of constraints.txt (names lower case, ``_`` as ``-``)."""
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            out[name.strip().lower().replace("_", "-")] = version.strip()
    return out


def floors():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {re.split(r"[<>=!~]", r, maxsplit=1)[0].lower(): r for r in reqs}


def version_tuple(v: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def test_the_lock_pins_every_dependency_at_a_version_its_floor_allows():
    pinned = lock()
    for name, requirement in floors().items():
        assert name in pinned, f"{name} is a dependency in pyproject.toml but not in constraints.txt: run make lock"
        floor = requirement.split(">=")[1]
        assert version_tuple(pinned[name]) >= version_tuple(floor), (
            f"constraints.txt pins {name}=={pinned[name]}, below pyproject.toml's {requirement}")


def test_environment_yml_pins_the_locked_versions_and_says_what_each_is_for():
    pinned = lock()
    for name, (version, comment) in conda_dependencies().items():
        assert comment and len(comment) > 10, f"{name} in environment.yml needs a comment on what it is for"
        if name == "python":
            continue
        assert version == f"=={pinned[name]}", (
            f"{name}: environment.yml pins {version}, constraints.txt {pinned[name]}: write {name}=={pinned[name]}")


def test_binder_gets_an_exact_python_that_requires_python_allows():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    version = conda_dependencies()["python"][0]
    assert re.fullmatch(r"=\d+\.\d+", version), f"environment.yml must pin python=X.Y for Binder, got python{version}"
    floor = project["requires-python"].removeprefix(">=")
    assert version_tuple(version[1:]) >= version_tuple(floor), f"python{version} is below requires-python {floor}"
