"""The practitioner's model in docs/ARCHITECTURE.md runs, fits in twenty lines and prints what the
page says it prints."""
import contextlib
import io
import re
from pathlib import Path

DOC = (Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)


def test_the_model_of_your_own_system_prints_what_the_page_says():
    (code,), (expected,) = blocks("python"), blocks("text")
    assert len(code.strip().splitlines()) <= 20
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "ARCHITECTURE.md", "exec"), {})
    assert out.getvalue() == expected


def test_the_page_draws_every_layer():
    (diagram,) = blocks("mermaid")
    for layer in ("core", "policies", "metrics", "sim", "views", "sweeps", "lessons", "labs"):
        assert f"{layer}[" in diagram


def test_the_page_on_modelling_your_own_system_prints_what_it_says():
    page = (Path(__file__).resolve().parents[1] / "docs" / "OWN_SYSTEM.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    (expected,) = re.findall(r"```text\n(.*?)```", page, flags=re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "OWN_SYSTEM.md", "exec"), {})
    assert out.getvalue() == expected
