"""Every report of one diagnosis, in every format asked for, written once the run is over.

The diagnosis is redacted once, here, before any format sees it (diagnostics/redaction.py); then
one outline (outline.py) is built and each format draws it: the terminal (terminal.py), JSON
(the report contract, `Diagnosis.to_dict()`), JUnit (junit.py), HTML (html.py), and GitHub
Actions' annotation and step summary (github.py). `run`, `explain`, `merge` and `report` all end
here.
"""

from __future__ import annotations

import sys

from trainwatch.cli.reports.files import write_report
from trainwatch.diagnostics.startup import startup_record

TYPE_CHECKING = False  # not typing's: `run` builds its targets before the program starts
if TYPE_CHECKING:  # the rest comes after
    from typing import Any

    from trainwatch.diagnostics.verdict import Diagnosis


@startup_record  # made before `run` starts the program (diagnostics/startup.py)
class ReportTargets:
    """Where the reports of one diagnosis go, and the exit policy."""

    json_path: str | None = None  # "-" for stdout
    junit_path: str | None = None
    html_path: str | None = None
    quiet: bool = False
    fail_on: frozenset[str] = frozenset()
    terminal: bool = True  # the report on stderr (off for `report --json -` alone, say)
    github_summary_path: str | None = None  # the GitHub step summary's Markdown ("-" for stdout)
    # a report that could not be written makes the status 2 (a usage error's: `explain` and
    # `merge`, whose reports are their work; `report`, whose status is its own, reads `written`);
    # `run` passes the program's status on whatever happens
    failed_write_is_usage_error: bool = False


@startup_record  # defined in a module imported before the start (diagnostics/startup.py)
class Delivered:
    """What the reports were made from, for what comes after them (notifications, --on-exit)."""

    diagnosis: Diagnosis  # redacted
    outline: Any  # outline.Outline
    status: int  # what trainwatch exits with
    written: bool = True  # every report file asked for was written


def deliver(diagnosis: Diagnosis, targets: ReportTargets) -> int:
    """Write every report asked for and return the status trainwatch exits with."""
    return deliver_reports(diagnosis, targets).status


def deliver_reports(diagnosis: Diagnosis, targets: ReportTargets) -> Delivered:
    """Write every report asked for; return the redacted diagnosis, its outline and the status."""
    from trainwatch.cli.exitpolicy import EXIT_FAIL_ON, final_status, stopped_for_nan
    from trainwatch.cli.reports.outline import outline
    from trainwatch.diagnostics.errors import EXIT_USAGE
    from trainwatch.diagnostics.redaction import redact_diagnosis

    diagnosis = redact_diagnosis(diagnosis)
    status = final_status(diagnosis, targets.fail_on)
    view = outline(diagnosis, status)
    written = True
    if targets.json_path:
        written &= write_json(diagnosis, targets.json_path)
    if targets.junit_path:
        from trainwatch.cli.reports.junit import junit_xml

        written &= write_report(targets.junit_path, junit_xml(diagnosis, view), "the JUnit report")
    if targets.html_path:
        from trainwatch.cli.reports.html import html_report

        written &= write_report(targets.html_path, html_report(diagnosis, view), "the HTML report")
    if targets.github_summary_path:
        from trainwatch.cli.reports.github import step_summary

        summary = step_summary(diagnosis, view)
        written &= write_text(summary, targets.github_summary_path, "the step summary")
    if not written and targets.failed_write_is_usage_error and status == 0:
        status = EXIT_USAGE
    if any("/" in name for name in targets.fail_on):
        _warn_of_unknown_subtypes(targets.fail_on)
    if targets.terminal:
        print_terminal(view, quiet=targets.quiet)
    if status == EXIT_FAIL_ON and (diagnosis.exit is None or diagnosis.exit.status == 0):
        from trainwatch.cli.console import print_line

        why = "--on-nan stop: the run was stopped" if stopped_for_nan(diagnosis) else "--fail-on"
        print_line(f"trainwatch: {why}: the verdict is {view.label}; exiting {status}")
    from trainwatch.cli.reports.github import publish_github

    publish_github(diagnosis, view, append_summary=not targets.github_summary_path)
    return Delivered(diagnosis, view, status, written)


def _warn_of_unknown_subtypes(fail_on: frozenset[str]) -> None:
    """A `--fail-on` subtype no verdict carries can never fail a run: a typo (`oom/gpuu`) would
    pass every run silently. Said once the knowledge is loaded, after the run, not before it."""
    from trainwatch.cli.console import print_warning
    from trainwatch.diagnostics.judge.subtypes import unknown_subtypes
    from trainwatch.diagnostics.knowledge import default_knowledge

    for sentence in unknown_subtypes(fail_on, default_knowledge()):
        print_warning(f"--fail-on: {sentence}")


def print_terminal(view, quiet: bool = False) -> None:
    """The terminal report on stderr, or its one line for `--quiet`."""
    from trainwatch.cli.console import stderr_console
    from trainwatch.cli.reports.terminal import one_line, report

    console = stderr_console()
    try:
        if quiet:
            console.print(one_line(view), soft_wrap=True)
        else:
            console.print(report(view))
    except (OSError, ValueError):  # stderr closed under us: the exit status still stands
        pass


def write_json(diagnosis: Diagnosis, path: str) -> bool:
    """The JSON report (docs/report.md) to a file (see files.py), or to stdout for `-`; True when
    it was written."""
    import json  # the report's time, not the start's

    text = json.dumps(diagnosis.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"
    return write_text(text, path, "the JSON report")


def write_text(text: str, path: str, what: str) -> bool:
    """A report to a file (see files.py), or to stdout for `-`; True when it was written."""
    if path != "-":
        return write_report(path, text, what)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (OSError, ValueError) as exc:  # a reader that went away: one line
        from trainwatch.cli.console import print_error

        print_error(f"cannot write {what} to stdout: {getattr(exc, 'strerror', None) or exc}")
        return False
    return True
