"""The layers hold at run time: importing a layer in a fresh interpreter loads none of the heavy
libraries it must not use, and no layer imports one above it (read from the files' imports too)."""
import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "resilience_sim"
HEAVY = ("simpy", "matplotlib", "ipywidgets", "httpx")

# layer -> the heavy libraries it must not load, and the layers of ours it may import
RULES = {
    "core": ((*HEAVY, "numpy.random"), ()),
    "policies": (HEAVY, ("core",)),
    "metrics": (("simpy", "matplotlib", "ipywidgets", "httpx"), ("core",)),
    "sim": (("matplotlib", "ipywidgets", "httpx"), ("core", "policies", "metrics")),
    "views": (("simpy", "httpx"), ("core", "metrics")),
    # above sim and views, below lessons: runs scenarios (which import simpy where they run), shows
    # its progress widget only when asked, so importing it loads neither
    "sweeps": (("simpy", "matplotlib", "ipywidgets", "httpx"), ("core", "metrics", "views")),
    # real sockets in wall-clock time: the policies and metrics of the simulator, never simpy
    "live": (("simpy", "matplotlib", "ipywidgets"), ("core", "policies", "metrics")),
}


def loaded_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("layer", sorted(RULES))
def test_importing_a_layer_loads_no_library_it_must_not(layer):
    banned, _ = RULES[layer]
    loaded = loaded_after_import(f"resilience_sim.{layer}")
    modules = [p.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")
               for p in (PACKAGE / layer).rglob("*.py") if p.name != "__init__.py"]
    loaded |= loaded_after_import(", ".join(modules)) if modules else set()
    assert not loaded & set(banned), f"resilience_sim.{layer} loads {sorted(loaded & set(banned))}"


def test_the_top_level_package_is_lazy():
    loaded = loaded_after_import("resilience_sim")
    assert not loaded & set(HEAVY)
    assert not any(m.startswith("resilience_sim.") for m in loaded)


def test_the_paths_notebooks_use_still_work():
    import resilience_sim
    from resilience_sim import dashboard, plots, theory
    from resilience_sim.core import theory as core_theory
    from resilience_sim.views import dashboard as views_dashboard, plots as views_plots
    assert (theory, dashboard, plots) == (core_theory, views_dashboard, views_plots)
    for name in resilience_sim.__all__:
        assert getattr(resilience_sim, name) is not None


def test_the_lazy_package_offers_its_submodules_as_attributes():
    code = ("import resilience_sim as rs; assert rs.theory.availability(9, 1) == 0.9; "
            "assert rs.policies.CircuitBreaker and rs.plots.shade_faults and 'theory' in dir(rs)")
    subprocess.run([sys.executable, "-c", code], check=True)


def _our_imports(path: pathlib.Path) -> set[str]:
    """The layers of ours that a file imports (relative imports resolved against its folder)."""
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "resilience_sim" and len(parts) > 1:
                    layers.add(parts[1])
                continue
            base = path.parent.relative_to(PACKAGE).parts
            base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
            target = list(base) + ((node.module or "").split(".") if node.module else [])
            if target:
                layers.add(target[0])
            else:
                layers.update(a.name for a in node.names)
    return layers


@pytest.mark.parametrize("layer", sorted(RULES))
def test_a_layer_imports_only_the_layers_below_it(layer):
    _, allowed = RULES[layer]
    for path in (PACKAGE / layer).rglob("*.py"):
        wrong = _our_imports(path) - set(allowed) - {layer}
        assert not wrong, f"{path.relative_to(PACKAGE)} imports {sorted(wrong)}"


def test_no_lesson_imports_another():
    lessons = {p.stem for p in (PACKAGE / "lessons").glob("*.py")} - {"__init__", "common"}
    for path in (PACKAGE / "lessons").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = {node.module} if node.module else {a.name for a in node.names}
                assert not names & (lessons - {path.stem}), f"{path.name} imports lesson {names & lessons}"
