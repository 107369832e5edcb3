"""`trainwatch merge`: per-node JSON reports -> one job verdict (the root node and rank), printed as
`run` prints."""

from __future__ import annotations

from typing import Any

from trainwatch.cli.options import MERGE_OPTIONS, typer_command, typer_words

HELP = """Merge the JSON reports of one job's nodes into the job's verdict: which node and rank
failed first, and why.

\b
  srun trainwatch run --json report-%N.json -- torchrun ... train.py
  trainwatch merge report-*.json

The report goes to stderr; --json writes the merged machine-readable report (- for stdout).
"""

REPORTS = typer_words("reports", "JSON reports written by `trainwatch run --json`.", "REPORT...")


def merge(reports: list[str], **values: Any) -> None:
    from trainwatch.cli.reports import ReportTargets, deliver
    from trainwatch.cli.reports.files import writable
    from trainwatch.diagnostics.knowledge import load_knowledge
    from trainwatch.diagnostics.postmortem import merge_reports

    targets = ReportTargets(
        json_path=writable(values["json_path"]),
        quiet=values["quiet"],
        failed_write_is_usage_error=True,
    )
    diagnosis = merge_reports(reports, load_knowledge())
    deliver(diagnosis, targets)  # the same writers as run and explain: redacted, one exit policy


merge_command = typer_command(merge, MERGE_OPTIONS, (REPORTS,))
