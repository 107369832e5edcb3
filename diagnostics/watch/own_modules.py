"""The modules a live run could not import, or found without a name it asked, that the program has
as its own files.

Read once the run has ended, from the probe's exceptions: `No module named 'utils'` raised by the
program's own import, and a `utils.py` or a `utils/` folder of Python files in the working
directory or a folder up to ABOVE levels over the importing file (not that file's own folder,
where Python would have found it); and `module 'numpy' has no attribute 'ndarray'` where the
importing script's folder or the working directory holds a `numpy.py` of the program's, which
Python found first. judge/imports.py turns each into a verdict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from trainwatch.diagnostics.evidence import ExceptionChain, OwnModule

MISSING_MODULE = re.compile(r"^No module named '([A-Za-z_]\w*)")
# A module found, but without the name asked of it: a file of the program's named like a package
# shadows that package (a scratch `numpy.py` beside the script breaks `import torch`)
LACKING_NAME = re.compile(
    r"^(?:partially initialized )?module '([A-Za-z_]\w*)' has no attribute '\w+'"
    r"|^cannot import name '\w+' from (?:partially initialized module )?'([A-Za-z_]\w*)'"
)
# folders above the importing file that are looked at: a script in `tools/` or `scripts/train/`
ABOVE = 3


def own_modules(chains: Iterable[ExceptionChain], cwd: Path) -> tuple[OwnModule, ...]:
    """Each missing module of these chains that the program has itself, with where it is."""
    found: list[OwnModule] = []
    for chain in chains:
        exception = chain.final
        frame = exception.deepest_user_frame()
        if frame is None or not Path(frame.file).is_absolute():
            continue
        importer = Path(frame.file).parent
        missing = MISSING_MODULE.match(exception.message)
        lacking = LACKING_NAME.match(exception.message) if missing is None else None
        if missing is not None:
            where = _own_module(missing.group(1), importer, cwd)
            if where is not None:
                found.append(OwnModule(missing.group(1), str(where), str(importer)))
        elif lacking is not None:
            name = lacking.group(1) or lacking.group(2)
            where = _shadowing(name, importer, cwd)
            if where is not None:
                found.append(OwnModule(name, str(where), str(importer), shadows=True))
    return tuple(found)


def _shadowing(name: str, importer: Path, cwd: Path) -> Path | None:
    """The program's own `name.py` (or `name/` package) where Python looks first: the importing
    script's folder, or the working directory (`python -m`, a notebook)."""
    for folder in dict.fromkeys((importer, cwd)):
        module, package = folder / f"{name}.py", folder / name / "__init__.py"
        if module.is_file():
            return module
        if package.is_file():
            return package.parent
    return None


def _own_module(name: str, importer: Path, cwd: Path) -> Path | None:
    for folder in [cwd, *list(importer.parents)[:ABOVE]]:
        if folder == importer:
            continue
        module, package = folder / f"{name}.py", folder / name
        if module.is_file():
            return module
        if package.is_dir() and any(package.glob("*.py")):
            return package
    return None
