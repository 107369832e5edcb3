"""Saved logs -> `Diagnosis`: the library half of `trainwatch explain` (read, parse, track progress, classify)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import BinaryIO

from . import __version__
from .classify import classify
from .errors import UsageError
from .evidence import Evidence, LogLine
from .logparse import LogFacts, LogParser
from .verdict import Diagnosis

BINARY_SNIFF = 8192  # bytes looked at to tell a text log from binary data


def read_log(stream: BinaryIO, knowledge) -> tuple[LogFacts, object | None]:
    """Parse one binary stream; progress is followed on the lines the parser looks at and on the tail."""
    tracker = _progress_tracker()
    fed = [0]

    def follow(line: LogLine) -> None:
        tracker.feed(line)
        fed[0] = line.number

    parser = LogParser(knowledge, on_candidate=follow if tracker is not None else None)
    facts = parser.parse_stream(stream)
    if tracker is None:
        return facts, None
    for line in facts.tail:  # the tail gives where the loop stood when the log ends
        if line.number > fed[0]:
            tracker.feed(line)
    return facts, tracker.finish()


def explain_logs(paths: Iterable[str], knowledge, stdin: BinaryIO | None = None) -> Diagnosis:
    """Diagnose one or more saved logs of one run (`-` reads `stdin`); raises UsageError for unusable input."""
    paths = list(paths)
    verdict_facts: list[tuple[LogFacts, object | None]] = []
    for path in paths:
        if path == "-":
            if stdin is None:
                raise UsageError("no standard input to read")
            verdict_facts.append(read_log(stdin, knowledge))
            continue
        _check_readable(path)
        with open(path, "rb") as fh:
            verdict_facts.append(read_log(fh, knowledge))
    facts, progress = _merge(verdict_facts)
    notes = []
    if facts.lines == 0:
        notes.append("the log is empty")
    if facts.report_at is not None:
        notes.append(f"a trainwatch report starts at line {facts.report_at}; it and what follows were not read")
    if facts.dropped_chains:
        notes.append(f"{facts.dropped_chains} tracebacks in the middle of the log were not kept")
    evidence = Evidence(source="log", log=facts, progress=progress, notes=tuple(notes))
    return Diagnosis(trainwatch_version=__version__, command=(), started_at=None, duration_s=None, exit=None,
                     verdict=classify(evidence, knowledge), evidence=evidence, sources=tuple(paths))


def _check_readable(path: str) -> None:
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory, not a log file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(BINARY_SNIFF)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if b"\x00" in head and head.count(b"\x00") > len(head) // 100:
        raise UsageError(f"{path}: looks like binary data, not a text log")


def _merge(parts: list[tuple[LogFacts, object | None]]) -> tuple[LogFacts, object | None]:
    """Several logs of one run (ranks, stdout and stderr): their facts side by side, the first progress found."""
    if len(parts) == 1:
        return parts[0]
    from dataclasses import replace

    first = parts[0][0]
    merged = replace(
        first,
        lines=sum(f.lines for f, _ in parts),
        chains=tuple(c for f, _ in parts for c in f.chains),
        notable=tuple(n for f, _ in parts for n in f.notable),
        tail=parts[-1][0].tail,
        exit_hints=tuple(h for f, _ in parts for h in f.exit_hints),
        child_failures=tuple(c for f, _ in parts for c in f.child_failures),
        fatal_errors=tuple(e for f, _ in parts for e in f.fatal_errors),
        dropped_chains=sum(f.dropped_chains for f, _ in parts),
    )
    progress = next((p for _, p in parts if p is not None), None)
    return merged, progress


def _progress_tracker():
    try:
        from .progress import ProgressTracker
    except ImportError:  # progress tracking is optional: the verdict works without it
        return None
    return ProgressTracker()
