"""Every report of one diagnosis, written once the run is over: files, the terminal report, then
CI's outputs.

All of them go through `redact_diagnosis()` (diagnostics/redaction.py) first, so no writer can
leak what another one hides. `run` and `explain` both end here.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from trainwatch.diagnostics.errors import UsageError


@dataclass(frozen=True)
class ReportTargets:
    """Where the reports of one diagnosis go, and the exit policy."""

    json_path: str | None = None  # "-" for stdout
    junit_path: str | None = None
    html_path: str | None = None
    quiet: bool = False
    fail_on: frozenset[str] = frozenset()


def writable(name: str | None) -> str | None:
    """Check an output path before anything runs: a report that cannot be written is a usage
    error.
    """
    if name is None or name == "-":
        return name
    path = Path(name)
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: no directory {parent}")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {path}: permission denied")
    return str(path)


def deliver(diagnosis, targets: ReportTargets) -> int:
    """Write every report asked for and return the status trainwatch exits with (see cli/ci.py)."""
    from trainwatch.diagnostics.redaction import redact_diagnosis

    from .ci import EXIT_FAIL_ON, final_status, publish_github

    diagnosis = redact_diagnosis(diagnosis)
    status = final_status(diagnosis, targets.fail_on)
    write_json(diagnosis, targets.json_path)
    if targets.junit_path:
        from .junit import write_junit

        write_junit(diagnosis, targets.junit_path, status)
    if targets.html_path:
        from .html import write_html

        write_html(diagnosis, targets.html_path, status)
    from .terminal import print_report

    print_report(diagnosis, quiet=targets.quiet)
    if status == EXIT_FAIL_ON and (diagnosis.exit is None or diagnosis.exit.status == 0):
        v = diagnosis.verdict
        sys.stderr.write(
            f"trainwatch: --fail-on: the verdict is {v.subtype or v.category}; exiting {status}\n"
        )
        sys.stderr.flush()
    publish_github(diagnosis, status)
    return status


def write_json(diagnosis, path: str | None) -> None:
    """The JSON report (docs/report.md) to a file, atomically, or to stdout for `-`."""
    if path is None:
        return
    import json

    from trainwatch.diagnostics.redaction import redact_report

    report = redact_report(diagnosis.to_dict())
    text = json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_file(path, text, "the JSON report")


def write_file(path: str, text: str, what: str) -> None:
    """Write a report atomically (a reader never sees half of it); a failure is one line on stderr,
    never raised: the run's own status matters more than a report that could not be saved.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        from .terminal import print_error

        print_error(f"cannot write {what} to {path}: {exc.strerror or exc}")
