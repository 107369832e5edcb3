"""`trainwatch.explain` and `trainwatch.diagnose`: a saved log, or an exception of this process,
to a `Diagnosis` through the engine the command uses.

`explain` is `trainwatch explain` (diagnostics/postmortem.py). `diagnose` reads the exception the
way the probe reads an uncaught one inside a watched child (diagnostics/watch/probe): the same
record, the same `ExceptionChain`, the same `classify()`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from trainwatch.diagnostics.evidence import Evidence, ExitStatus
    from trainwatch.diagnostics.knowledge import Knowledge
    from trainwatch.diagnostics.read.logparse import LogFacts
    from trainwatch.diagnostics.read.progress import ProgressFacts
    from trainwatch.diagnostics.verdict import Diagnosis
    from trainwatch.diagnostics.watch.monitor import MemoryFacts
    from trainwatch.diagnostics.watch.probe.records import ProbeFacts

PathOrText = Union[str, os.PathLike, bytes]
# A string with no line break that names no file is still taken as a path (a typo deserves "no such
# file", not a verdict on the file's name); a string with a line break is the text of a log.


def explain(
    source: PathOrText | Sequence[str | os.PathLike], *, signatures: Sequence[str] = ()
) -> Diagnosis:
    """Diagnose a saved log: a path (a file, or a folder of one job's logs), several paths of one
    job, or the log's text (`str` with a line break, or `bytes`).

    `signatures` are extra signature files (docs/signatures.md), as `--signatures` takes them.
    Raises `trainwatch.diagnostics.errors.UsageError` for a path that cannot be read.
    """
    from trainwatch.diagnostics.postmortem import explain_logs

    knowledge = _knowledge(signatures)
    if isinstance(source, bytes) or (isinstance(source, str) and "\n" in source):
        data = source if isinstance(source, bytes) else source.encode("utf-8")
        return explain_logs(["-"], knowledge, stdin=io.BytesIO(data))
    if isinstance(source, (str, os.PathLike)):
        return explain_logs([os.fspath(source)], knowledge)
    return explain_logs([os.fspath(p) for p in source], knowledge)


def diagnose(exception: BaseException, *, signatures: Sequence[str] = ()) -> Diagnosis:
    """Diagnose an exception raised in this process (caught by the caller, or `sys.last_value`).

    The exception's whole chain (`raise ... from`, errors raised while handling another), its
    frames and which of them are the user's, and torch's device state when torch is loaded are
    recorded as the probe records an uncaught exception in a watched run.
    """
    from trainwatch.diagnostics.judge.classify import classify

    evidence = exception_evidence(exception)
    verdict = classify(evidence, _knowledge(signatures))
    return diagnosis_of(evidence, verdict)


def exception_evidence(
    exception: BaseException | None,
    *,
    exit: ExitStatus | None = None,
    log: LogFacts | None = None,
    memory: MemoryFacts | None = None,
    progress: ProgressFacts | None = None,
    command: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
) -> Evidence:
    """The evidence of this process: its exception as probe facts, with what else was watched."""
    from trainwatch.diagnostics.evidence import Evidence

    return Evidence(
        source="run",
        command=command,
        exit=exit,
        log=log,
        probe=None if exception is None else probe_facts(exception),
        memory=memory,
        progress=progress,
        notes=notes,
    )


def probe_facts(exception: BaseException) -> ProbeFacts:
    """The exception as the probe's parent side reads it from a child's `exception` record."""
    import threading

    from trainwatch.diagnostics.watch.probe import sitecustomize as probe_side
    from trainwatch.diagnostics.watch.probe.records import (
        ProbeFacts,
        chain_from,
        process_from,
        worker_failure,
    )

    main = threading.current_thread() is threading.main_thread()
    record = probe_side.exception_record(
        exception, None if main else threading.current_thread().name
    )
    process = process_from(probe_side.process_record())
    chain = chain_from(record, process)
    chains = () if chain is None else (chain,)
    workers = tuple(w for w in (worker_failure(c, [process]) for c in chains) if w is not None)
    torch = record.get("torch") if isinstance(record.get("torch"), dict) else None
    return ProbeFacts(processes=(process,), chains=chains, workers=workers, torch=torch)


def diagnosis_of(
    evidence: Evidence,
    verdict,
    *,
    started_at: str | None = None,
    duration_s: float | None = None,
) -> Diagnosis:
    """A `Diagnosis` of this process's evidence."""
    from trainwatch.diagnostics import __version__
    from trainwatch.diagnostics.verdict import Diagnosis

    return Diagnosis(
        trainwatch_version=__version__,
        command=evidence.command,
        started_at=started_at,
        duration_s=duration_s,
        exit=evidence.exit,
        verdict=verdict,
        evidence=evidence,
    )


def _knowledge(signatures: Sequence[str]) -> Knowledge:
    from trainwatch.diagnostics.knowledge import default_knowledge, load_knowledge

    if not signatures:
        return default_knowledge()
    return load_knowledge(extra_files=tuple(os.fspath(s) for s in signatures))
