"""The functions whose call failed to fit their signature that the program defines itself.

`train_step() missing 1 required positional argument: 'batch'` reads, from a log alone, as code
written for another release of a library (knowledge: `call-signature-mismatch`), which it most often
is. In a live run the program's files are at hand: the function defined in one of the files of the
traceback's own frames makes the mistake the program's own call (forty-fourth session: a real run
calling its own `train_step` with an argument too few was told to compare library versions).
Read once the run has ended, from the probe's exceptions; judge/own_calls.py turns it into a
verdict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from trainwatch.diagnostics.evidence import ExceptionChain, OwnFunction

# Python's words for a call that does not fit, after the function's name: `Net.step()` (its
# qualified name since Python 3.10), `outer.<locals>.inner()`, `step()`
CALLED = re.compile(
    r"^(?:(?P<owner>[\w.<>]+)\.)?(?P<name>\w+)\(\) (?:got an unexpected keyword argument|"
    r"got multiple values for|takes |missing \d+ required)"
)
MAX_SOURCE_BYTES = 4 << 20  # a generated file this large is no hand-written training script


def own_functions(chains: Iterable[ExceptionChain]) -> tuple[OwnFunction, ...]:
    """Each function of these chains' call-signature TypeErrors that the program defines, with
    where."""
    found: list[OwnFunction] = []
    for chain in chains:
        exception = chain.final
        called = CALLED.match(exception.message) if exception.short_type == "TypeError" else None
        if called is None:
            continue
        files = dict.fromkeys(
            f.file for f in reversed(exception.frames) if f.user and Path(f.file).is_absolute()
        )
        for file in files:
            line = _defined_at(Path(file), called.group("owner"), called.group("name"))
            if line is not None:
                found.append(OwnFunction(called.group("name"), file, line))
                break
    return tuple(found)


def _defined_at(path: Path, owner: str | None, name: str) -> int | None:
    """The line where `path` defines the function: a method with its class (`Net.step`), a nested
    function anywhere (`outer.<locals>.inner`), a bare name only at the module's top level (before
    Python 3.10 a method's name came bare too, and `step` of the program's own is no
    `optimizer.step`)."""
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            return None
        source = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if owner is None:
        definition = rf"^(?:async[ \t]+)?def[ \t]+{name}[ \t]*\("
    else:
        definition = rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{name}[ \t]*\("
        cls = owner.rsplit(".", 1)[-1]
        if "<locals>" not in owner and not re.search(rf"^[ \t]*class[ \t]+{cls}\b", source, re.M):
            return None
    found = re.search(definition, source, re.M)
    return None if found is None else source.count("\n", 0, found.start()) + 1
