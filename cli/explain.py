"""`trainwatch explain`: read saved logs -> diagnostics -> the same report `run` prints (and its
JSON)."""

from __future__ import annotations

import inspect
import sys
from typing import Annotated, Any

import typer

from trainwatch.cli.options import EXPLAIN_OPTIONS, typer_command
from trainwatch.diagnostics.errors import UsageError

HELP = """Explain why a training run stopped, from its saved log.

\b
  trainwatch explain crash.log
  trainwatch explain rank0.log rank1.log     several logs of one run (or a folder of them)
  kubectl logs job/train | trainwatch explain -

The report goes to stderr; --json writes the machine-readable report (- for stdout), --junit and
--html the CI and browser ones. A saved JSON report is re-rendered with `trainwatch report`.
trainwatch explain exits 0, or 3 when --fail-on names the verdict.
"""

LOGS = inspect.Parameter(
    "logs",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    annotation=Annotated[
        list[str],
        typer.Argument(
            help="Log files of one run, a folder of them, or - for standard input.",
            metavar="LOG...",
            show_default=False,
        ),
    ],
)


def explain(logs: list[str], **values: Any) -> None:
    from trainwatch.cli.exitpolicy import parse_fail_on
    from trainwatch.cli.reports import ReportTargets, deliver
    from trainwatch.cli.reports.files import writable
    from trainwatch.diagnostics.knowledge import load_knowledge
    from trainwatch.diagnostics.postmortem import explain_logs

    if logs.count("-") > 1:
        raise UsageError("standard input (-) can be given only once")
    targets = ReportTargets(
        json_path=writable(values["json_path"]),
        junit_path=writable(values["junit"]),
        html_path=writable(values["html"]),
        quiet=values["quiet"],
        fail_on=parse_fail_on(values["fail_on"]),
    )
    knowledge = load_knowledge(extra_files=values["signatures"])
    diagnosis = explain_logs(logs, knowledge, stdin=sys.stdin.buffer if "-" in logs else None)
    status = deliver(diagnosis, targets)
    if status:
        raise typer.Exit(status)


explain_command = typer_command(explain, EXPLAIN_OPTIONS, (LOGS,))
