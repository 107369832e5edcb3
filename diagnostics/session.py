"""One live run from start to diagnosis: launch the child, collect evidence while it runs, judge it at the end."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from dataclasses import dataclass

from . import __version__
from .classify import classify
from .evidence import Evidence, LogLine
from .launch import Child, LaunchRequest, LaunchResult
from .verdict import Diagnosis


@dataclass(frozen=True)
class RunRequest:
    """Everything `trainwatch run` was asked to do, parsed and resolved."""

    argv: tuple[str, ...]  # what to execute
    env: dict[str, str]
    log_path: str | None = None
    probe: bool = True
    keep_artifacts: bool = False
    sample_interval: float = 0.5
    signature_files: tuple[str, ...] = ()


def run_session(request: RunRequest, on_started: Callable[[], None] | None = None) -> Diagnosis:
    """Run the child to its end and diagnose it. Raises OSError when it cannot be started.

    `on_started` runs in a background thread once the child runs: the CLI uses it to import its report renderer
    while the child works rather than after it ends.
    """
    observers = []
    child = Child(LaunchRequest(argv=request.argv, env=request.env, log_path=request.log_path), observers)
    child.start()
    if on_started is not None:
        threading.Thread(target=on_started, name="trainwatch-warmup", daemon=True).start()
    result = child.wait()
    evidence = Evidence(
        source="run",
        command=request.argv,
        exit=result.exit,
        log=_parse_tail(result),
        forwarded_signals=result.forwarded_signals,
    )
    return Diagnosis(
        trainwatch_version=__version__,
        command=request.argv,
        started_at=_iso(result.started_at),
        duration_s=result.duration_s,
        exit=result.exit,
        verdict=classify(evidence),
        evidence=evidence,
    )


def _parse_tail(result: LaunchResult):
    """The log facts of the captured output (the log parser is optional until it lands)."""
    try:
        from .logparse import LogParser
    except ImportError:
        return None
    parser = LogParser()
    numbers = {"stdout": 0, "stderr": 0}
    for stream, chunk in result.tail:
        for text in chunk.decode("utf-8", "replace").splitlines():
            numbers[stream] += 1
            parser.feed(LogLine(numbers[stream], text, stream))
    return parser.finish()


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat(timespec="seconds")
