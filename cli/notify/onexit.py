"""`--on-exit CMD`: a shell command run once the run has ended and its reports are written, with
the JSON report's path and the verdict in its environment.

Its output goes to trainwatch's stderr (stdout may carry `--json -`); it gets no input; it runs at
most ON_EXIT_TIMEOUT_S in a session of its own, then its group is stopped. However it ends,
trainwatch's exit status stays the run's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

ON_EXIT_TIMEOUT_S = 300.0
STOP_GRACE_S = 5.0


def run_on_exit(
    command: str,
    delivered: Any,
    report_path: str | None,
    warn: Callable[[str], None],
    timeout: float = ON_EXIT_TIMEOUT_S,
) -> int | None:
    """Run `command` under /bin/sh; returns its status (None when it could not run or was
    stopped). Without a `--json FILE` report, a private temporary one is written for it."""
    from trainwatch.cli.reports import write_json

    scratch = None
    if report_path is None:
        scratch = tempfile.mkdtemp(prefix="trainwatch-report-")
        report_path = os.path.join(scratch, "report.json")
        write_json(delivered.diagnosis, report_path)
    verdict = delivered.diagnosis.verdict
    env = dict(
        os.environ,
        TRAINWATCH_REPORT=os.path.abspath(report_path),
        TRAINWATCH_VERDICT=delivered.outline.label,
        TRAINWATCH_CATEGORY=verdict.category,
        TRAINWATCH_CONFIDENCE=f"{verdict.confidence:.2f}",
        TRAINWATCH_SUMMARY=verdict.summary,
        TRAINWATCH_EXIT_STATUS=str(delivered.status),
    )
    try:
        out = sys.stderr.fileno()
    except (OSError, ValueError):
        out = subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    except OSError as exc:
        warn(f"--on-exit: cannot run the command: {exc.strerror or exc}")
        return None
    previous = _stop_on_ctrl_c(proc)
    try:
        status = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        warn(f"--on-exit: the command ran past {timeout:.0f} s and was stopped")
        return None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if status != 0:
        how = f"was killed by signal {-status}" if status < 0 else f"exited {status}"
        warn(f"--on-exit: the command {how}; trainwatch's exit status is the run's")
    return status


def _stop_on_ctrl_c(proc: subprocess.Popen):
    """A Ctrl-C while the command runs stops it (it runs in a session of its own, which the
    terminal's Ctrl-C does not reach), and trainwatch goes on to exit with the run's status. The
    handler it replaces, or None where handlers cannot be set (not the main thread)."""

    def interrupt(_signum: int, _frame: object) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass

    try:
        return signal.signal(signal.SIGINT, interrupt)
    except ValueError:
        return None


def _stop(proc: subprocess.Popen) -> None:
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(STOP_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue
