"""`trainwatch explain`: read saved logs -> diagnostics -> the same report `run` prints (and its
JSON).

A plain command line is parsed without typer, as `run`'s is (cli/options.py); help, mistakes and
anything unusual go to the typer command, built from the same option table.
"""

from __future__ import annotations

import sys
from typing import Any

from trainwatch.cli.options import EXPLAIN_OPTIONS, parse_plain
from trainwatch.diagnostics.errors import UsageError

HELP = """Explain why a training run stopped, from its saved log.

\b
  trainwatch explain crash.log
  trainwatch explain rank0.log rank1.log     several logs of one run (or a folder of them)
  trainwatch explain train.ipynb             a saved notebook: what its cells printed
  kubectl logs job/train | trainwatch explain -

The report goes to stderr; --json writes the machine-readable report (- for stdout), --junit and
--html the CI and browser ones. A saved JSON report is re-rendered with `trainwatch report`.
trainwatch explain exits 0, or 3 when --fail-on names the verdict.
"""


def parse_fast(args: list[str]) -> tuple[list[str], dict[str, Any]] | None:
    """(the logs, the options' values) of a plain command line, or None (typer parses it then)."""
    parsed = parse_plain(args, EXPLAIN_OPTIONS, words_anywhere=True)
    if parsed is None or not parsed[1]:
        return None
    values, logs = parsed
    return logs, values


def execute(logs: list[str], values: dict[str, Any]) -> int:
    """Explain the logs, deliver the reports, and return the status trainwatch exits with."""
    from trainwatch.cli.exitpolicy import parse_fail_on
    from trainwatch.cli.reports import ReportTargets, deliver
    from trainwatch.cli.reports.files import writable
    from trainwatch.diagnostics.knowledge import load_knowledge
    from trainwatch.diagnostics.postmortem import explain_logs

    if logs.count("-") > 1:
        raise UsageError("standard input (-) can be given only once")
    if "-" in logs and sys.stdin is None:
        raise UsageError("standard input is closed: pipe a log into `explain -`, or name a file")
    targets = ReportTargets(
        json_path=writable(values["json_path"]),
        junit_path=writable(values["junit"]),
        html_path=writable(values["html"]),
        quiet=values["quiet"],
        fail_on=parse_fail_on(values["fail_on"]),
        failed_write_is_usage_error=True,
    )
    knowledge = load_knowledge(extra_files=values["signatures"])
    diagnosis = explain_logs(logs, knowledge, stdin=sys.stdin.buffer if "-" in logs else None)
    return deliver(diagnosis, targets)


def typer_command():
    """The typer command for `explain`: its --help, and the parser of record for what `parse_fast`
    declines."""
    import typer

    from trainwatch.cli.options import typer_command as build
    from trainwatch.cli.options import typer_words

    logs = typer_words(
        "logs", "Log files of one run, a folder of them, or - for standard input.", "LOG..."
    )

    def explain(logs: list[str], **values: Any) -> None:
        status = execute(logs, values)
        if status:
            raise typer.Exit(status)

    return build(explain, EXPLAIN_OPTIONS, (logs,))
