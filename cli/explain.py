"""`trainwatch explain`: read saved logs -> diagnostics -> the same report `run` prints (and its
JSON).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from trainwatch.diagnostics.errors import UsageError

HELP = """Explain why a training run stopped, from its saved log.

\b
  trainwatch explain crash.log
  trainwatch explain rank0.log rank1.log     several logs of one run
  kubectl logs job/train | trainwatch explain -

The report goes to stderr; --json writes the machine-readable report (- for stdout), --junit and --html the
CI and browser ones. trainwatch explain exits 0, or 3 when --fail-on names the verdict.
"""


def explain_command(
    logs: Annotated[
        list[str],
        typer.Argument(
            help="Log files of one run, or - for standard input.",
            metavar="LOG...",
            show_default=False,
        ),
    ],
    json_path: Annotated[
        Optional[str],
        typer.Option(
            "--json", help="Also write the JSON report here (- for stdout).", show_default=False
        ),
    ] = None,
    signatures: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--signatures", help="An extra signature file (repeatable).", show_default=False
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the one-line verdict.")
    ] = False,
    junit: Annotated[
        Optional[str],
        typer.Option("--junit", help="Also write a JUnit XML report here.", show_default=False),
    ] = None,
    html: Annotated[
        Optional[str],
        typer.Option(
            "--html", help="Also write a self-contained HTML report here.", show_default=False
        ),
    ] = None,
    fail_on: Annotated[
        Optional[str],
        typer.Option(
            "--fail-on",
            metavar="CATEGORY[,CATEGORY...]",
            help="Exit 3 when the verdict is one of these categories (e.g. oom,numerical).",
            show_default=False,
        ),
    ] = None,
) -> None:
    from trainwatch.diagnostics.knowledge import load_knowledge
    from trainwatch.diagnostics.postmortem import explain_logs

    from .ci import parse_fail_on
    from .outputs import ReportTargets, deliver, writable

    if logs.count("-") > 1:
        raise UsageError("standard input (-) can be given only once")
    targets = ReportTargets(
        json_path=writable(json_path),
        junit_path=writable(junit),
        html_path=writable(html),
        quiet=quiet,
        fail_on=parse_fail_on(fail_on),
    )
    knowledge = load_knowledge(extra_files=tuple(signatures or ()))
    diagnosis = explain_logs(logs, knowledge, stdin=sys.stdin.buffer if "-" in logs else None)
    status = deliver(diagnosis, targets)
    if status:
        raise typer.Exit(status)
