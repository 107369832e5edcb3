"""A call, made by the program, of a function the program defines, that did not fit the function's
signature: the program's own mistake, not code written for another release of a library.

A log alone cannot tell `train_step() missing 1 required positional argument` from a library's
renamed argument; in a live run the reader (watch/own_functions.py) found the function's `def` in
the program's files. Only a call made from the program's own line is judged so: a framework that
calls the program's hook with other arguments (Lightning's `training_step`) may be another release.
"""

from __future__ import annotations

from dataclasses import replace

from trainwatch.diagnostics.evidence import Evidence
from trainwatch.diagnostics.read.frames import file_name
from trainwatch.diagnostics.verdict import Verdict
from trainwatch.diagnostics.watch.own_functions import CALLED


def own_function_called_wrongly(verdict: Verdict | None, evidence: Evidence) -> Verdict | None:
    """The verdict, or, for a call of the program's own function that did not fit it, a code
    verdict that names the definition."""
    exception = verdict.exception if verdict is not None else None
    if verdict is None or exception is None or verdict.category not in ("library", "code"):
        return verdict
    called = CALLED.match(exception.message)
    if called is None or not exception.frames or not exception.frames[-1].user:
        return verdict
    own = next((f for f in evidence.own_functions if f.name == called.group("name")), None)
    if own is None:
        return verdict
    where = f"{file_name(own.path)}:{own.line}"
    return replace(
        verdict,
        category="code",
        subtype="code/wrong-call-arguments",
        confidence=0.85,
        signature=None,
        summary=(
            f"The program called its own function `{own.name}()` (defined at {where}) with "
            f"arguments that do not fit its definition: {exception.message}"
        ),
        advice=(
            f"Make the call and the definition agree: pass what `def {own.name}(...)` asks for "
            "(its required arguments, keyword names spelt as defined), or change the definition.",
        ),
        doc_url=None,
    )
