"""`trainwatch report`: a saved JSON report -> the same reports again (terminal, HTML, JUnit, the
GitHub step summary), without the run."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from trainwatch.cli.options import REPORT_COMMAND_OPTIONS, typer_command
from trainwatch.diagnostics.errors import EXIT_USAGE, UsageError
from trainwatch.diagnostics.verdict import SCHEMA, is_report

HELP = """Show a saved JSON report again: on the terminal, or as HTML, JUnit or a GitHub step
summary.

\b
  trainwatch run --json report.json train.py      (overnight)
  trainwatch report report.json                   the terminal report, as the run printed it
  trainwatch report report.json --html report.html --junit junit.xml
  trainwatch report report.json --github-summary - >> "$GITHUB_STEP_SUMMARY"

The report is drawn from the JSON alone: the run's output itself is not in it, so the HTML page and
the step summary have no "last lines of output". trainwatch report exits 0, or 3 when --fail-on
names the verdict.
"""

MAX_REPORT_BYTES = 64 * 2**20  # a report holds bounded series: anything larger is not one

REPORT = inspect.Parameter(
    "report",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    annotation=Annotated[
        str,
        typer.Argument(
            help="A JSON report written by `trainwatch run --json` or `explain --json`.",
            metavar="REPORT.json",
            show_default=False,
        ),
    ],
)


def report(report: str, **values: Any) -> None:
    from trainwatch.cli.exitpolicy import EXIT_FAIL_ON, fails_policy, parse_fail_on
    from trainwatch.cli.reports import ReportTargets, deliver_reports
    from trainwatch.cli.reports.files import writable
    from trainwatch.diagnostics.verdict import Diagnosis

    fail_on = parse_fail_on(values["fail_on"])
    outputs = [values["json_path"], values["github_summary"]]
    targets = ReportTargets(
        json_path=writable(values["json_path"]),
        junit_path=writable(values["junit"]),
        html_path=writable(values["html"]),
        github_summary_path=writable(values["github_summary"]),
        quiet=values["quiet"],
        fail_on=fail_on,
        terminal="-" not in outputs,  # stdout is for the report asked for: keep stderr quiet too
    )
    diagnosis = Diagnosis.from_dict(load_report(report))
    if not deliver_reports(diagnosis, targets).written:
        raise typer.Exit(EXIT_USAGE)
    if fail_on and fails_policy(diagnosis, fail_on):
        raise typer.Exit(EXIT_FAIL_ON)


def load_report(path: str) -> dict[str, Any]:
    """The JSON report at `path`; a usage error in one sentence when it is not one."""
    file = Path(path)
    try:
        if file.is_dir():
            raise UsageError(f"{path} is a directory, not a JSON report")
        if file.stat().st_size > MAX_REPORT_BYTES:
            raise UsageError(f"{path} is too large to be a trainwatch JSON report")
        text = file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise UsageError(
            f"{path} is not JSON: `trainwatch report` re-renders a JSON report; for a log, use "
            f"`trainwatch explain {path}`"
        ) from None
    if not is_report(data):
        raise UsageError(f"{path} is JSON but not a trainwatch report (no {SCHEMA} schema)")
    return data


report_command = typer_command(report, REPORT_COMMAND_OPTIONS, (REPORT,))
