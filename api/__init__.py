"""trainwatch's Python API: the engine of the `trainwatch` command, inside a script or notebook.

    import trainwatch

    diagnosis = trainwatch.explain("crash.log")        # a saved log, or the text of one
    diagnosis = trainwatch.diagnose(exc)               # an exception caught in this process
    with trainwatch.watch():                           # a block: progress, memory, its exception
        train()

Every name is loaded on first use (PEP 562): `import trainwatch` imports neither torch nor typer
nor rich, and costs a few milliseconds. docs/api.md documents each function.
"""

from __future__ import annotations

import importlib

from trainwatch.diagnostics import __version__

# `typing` costs ~8 ms to import: the constant type checkers recognise by name stands in for it.
TYPE_CHECKING = False
if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads them
    from typing import Any

    from trainwatch.analysis import diagnose, explain
    from trainwatch.diagnostics.verdict import Diagnosis, Verdict
    from trainwatch.display import render, show
    from trainwatch.watching import Watch, watch

# Each public name and the module that defines it.
_HOMES = {
    "explain": "trainwatch.analysis",
    "diagnose": "trainwatch.analysis",
    "watch": "trainwatch.watching",
    "Watch": "trainwatch.watching",
    "show": "trainwatch.display",
    "render": "trainwatch.display",
    "Diagnosis": "trainwatch.diagnostics.verdict",
    "Verdict": "trainwatch.diagnostics.verdict",
}

__all__ = [
    "Diagnosis",
    "Verdict",
    "Watch",
    "__version__",
    "diagnose",
    "explain",
    "render",
    "show",
    "watch",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'trainwatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
