"""The modules a live run could not import that the program has as its own files.

Read once the run has ended, from the probe's exceptions: `No module named 'utils'` raised by the
program's own import, and a `utils.py` or a `utils/` folder of Python files in the working
directory or a folder up to ABOVE levels over the importing file (not that file's own folder,
where Python would have found it). judge/imports.py turns it into a verdict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from trainwatch.diagnostics.evidence import ExceptionChain, OwnModule

MISSING_MODULE = re.compile(r"^No module named '([A-Za-z_]\w*)")
# folders above the importing file that are looked at: a script in `tools/` or `scripts/train/`
ABOVE = 3


def own_modules(chains: Iterable[ExceptionChain], cwd: Path) -> tuple[OwnModule, ...]:
    """Each missing module of these chains that the program has itself, with where it is."""
    found: list[OwnModule] = []
    for chain in chains:
        exception = chain.final
        missing = MISSING_MODULE.match(exception.message)
        frame = exception.deepest_user_frame()
        if missing is None or frame is None or not Path(frame.file).is_absolute():
            continue
        importer = Path(frame.file).parent
        where = _own_module(missing.group(1), importer, cwd)
        if where is not None:
            found.append(OwnModule(missing.group(1), str(where), str(importer)))
    return tuple(found)


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
