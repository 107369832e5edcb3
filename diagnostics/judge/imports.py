"""A module the program could not import: one it has itself (the import path, not the install),
or a package to install, under its name on PyPI.

`No module named 'utils'` reads as a package to install, and from a log alone nothing tells it
apart. In a live run the reader (watch/own_modules.py) looked for the program's own file of that
name: Python looks for a script's imports from the script's own folder, so a project module in the
working directory or a folder above the script (`python tools/train.py` importing the root's
`models/`) is not found there, and installing a package of that name would be wrong advice.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import replace
from pathlib import Path

from trainwatch.diagnostics.evidence import Evidence
from trainwatch.diagnostics.verdict import Verdict
from trainwatch.diagnostics.watch.own_modules import LACKING_NAME, MISSING_MODULE


def own_module_off_the_path(verdict: Verdict | None, evidence: Evidence) -> Verdict | None:
    """The verdict, or, for a missing module the program has as its own file or package, a code
    verdict that says where it is."""
    if verdict is None or verdict.category != "library" or verdict.exception is None:
        return verdict
    missing = MISSING_MODULE.match(verdict.exception.message)
    own = next((m for m in evidence.own_modules if missing and m.name == missing.group(1)), None)
    if own is None:
        return verdict
    return replace(
        verdict,
        category="code",
        subtype="code/missing-local-module",
        confidence=0.85,
        signature=None,
        summary=(
            f"The program could not import `{own.name}`, which it has itself ({own.path}): Python "
            f"looks for a script's imports from the script's folder ({own.importer}), so the "
            "project's own module is not on the import path when the script is started so."
        ),
        advice=(
            "Start it from the project's root as a module (`python -m tools.train` for "
            "`tools/train.py`), or put the root on the path "
            "(`PYTHONPATH=. python tools/train.py`).",
            "Or install the project in the environment (`pip install -e .`); do not install a "
            f"package named `{own.name}` from PyPI: it is another project.",
        ),
        doc_url=None,
    )


def own_module_shadowing(verdict: Verdict | None, evidence: Evidence) -> Verdict | None:
    """The verdict, or, for a module found without a name asked of it where the program has a file
    of that module's name beside the script (or in the working directory), a code verdict that
    names the file: it shadows the installed package (a real run's scratch `numpy.py` broke
    `import torch`, read as versions that do not fit)."""
    if verdict is None or verdict.exception is None or verdict.category not in ("library", "code"):
        return verdict
    lacking = LACKING_NAME.match(verdict.exception.message)
    name = (lacking.group(1) or lacking.group(2)) if lacking is not None else None
    own = next((m for m in evidence.own_modules if m.shadows and m.name == name), None)
    if own is None:
        return verdict
    return replace(
        verdict,
        category="code",
        subtype="code/module-shadowed",
        confidence=0.88,
        signature=None,
        summary=(
            f"`import {own.name}` found the program's own {own.path} (Python looks in "
            f"{own.importer} first), and the name asked of it is not there "
            f"({verdict.exception.message}): a file named like an installed package shadows it."
        ),
        advice=(
            f"Rename {own.path} (and delete the `__pycache__` entry beside it), then run again; "
            f"`python -c 'import {own.name}; print({own.name}.__file__)'` shows which file an "
            "import finds.",
            "If the module is meant to be your own, define the name the code asks for in it.",
        ),
        doc_url=None,
    )


PACKAGES_FILE = Path(__file__).resolve().parent.parent / "knowledge" / "packages.toml"


def with_install_command(verdict: Verdict | None) -> Verdict | None:
    """A missing module's verdict, its advice led by the command that installs it where the
    package's name on PyPI differs from the module's (knowledge/packages.toml)."""
    if verdict is None or verdict.subtype != "library/missing-package" or verdict.exception is None:
        return verdict
    missing = MISSING_MODULE.match(verdict.exception.message)
    if missing is None:
        return verdict
    module = missing.group(1)
    package = _distributions().get(module)
    if package is None:
        return verdict  # most packages are named as their module: the advice's command fits
    said = (
        f"Install it: `python -m pip install {package}` (the package on PyPI that provides "
        f"`{module}`; `pip install {module}` is not it), in the environment that runs the job."
    )
    return replace(verdict, advice=(said, *verdict.advice))


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, str]:
    with PACKAGES_FILE.open("rb") as fh:
        return dict(tomllib.load(fh)["distributions"])
