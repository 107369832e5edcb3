"""The house rules on imports: diagnostics/ stays a plain library, the probe stays stdlib-only."""

from __future__ import annotations

import ast
import functools
import os
import sys
from pathlib import Path

import pytest

from conftest import ROOT

# Both walks read the same sources: on one worker, each file is parsed once (`_imports`).
pytestmark = pytest.mark.xdist_group("layering")


@functools.cache
def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_diagnostics_never_imports_the_terminal_side():
    offenders = {}
    for path in (ROOT / "diagnostics").rglob("*.py"):
        bad = {
            n
            for n in _imports(path)
            if n.split(".")[0] in ("typer", "rich", "click") or n.startswith("trainwatch.cli")
        }
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


def test_nothing_imports_click_directly():
    offenders = [
        str(p.relative_to(ROOT))
        for top in ("cli", "diagnostics")
        for p in (ROOT / top).rglob("*.py")
        if any(n.split(".")[0] == "click" for n in _imports(p))
    ]
    assert offenders == []


def test_the_probe_imports_only_the_standard_library():
    probe = ROOT / "diagnostics" / "watch" / "probe" / "sitecustomize.py"
    tops = {n.split(".")[0] for n in _imports(probe)}
    assert tops, "the probe imports something, surely"
    assert tops <= set(sys.stdlib_module_names), tops - set(sys.stdlib_module_names)


def test_no_module_is_called_utils():
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        # not into the virtual environment (tens of thousands of files) or other hidden folders
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        found += [os.path.join(folder, name) for name in files if name == "utils.py"]
    assert not found
