"""Notebook housekeeping: ``python tools/notebook_tools.py strip FILE...`` removes outputs.

A cell tagged ``keep-output`` keeps its outputs (for pictures deliberately committed).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def strip(path: Path) -> bool:
    """Remove outputs and execution counts in place; return whether the file changed."""
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        if "keep-output" not in cell.get("metadata", {}).get("tags", []):
            cell["outputs"] = []
        cell["execution_count"] = None
    nb.get("metadata", {}).pop("widgets", None)
    new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "strip":
        print("usage: python tools/notebook_tools.py strip NOTEBOOK.ipynb...", file=sys.stderr)
        return 2
    for name in argv[1:]:
        if strip(Path(name)):
            print(f"stripped {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
