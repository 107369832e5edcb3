"""`trainwatch merge`: per-node JSON reports -> one job verdict (the root node and rank), printed as
`run` prints.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

HELP = """Merge the JSON reports of one job's nodes into the job's verdict: which node and rank failed first, and why.

\b
  srun trainwatch run --json report-%N.json -- torchrun ... train.py
  trainwatch merge report-*.json

The report goes to stderr; --json writes the merged machine-readable report (- for stdout).
"""


def merge_command(
    reports: Annotated[
        list[str],
        typer.Argument(
            help="JSON reports written by `trainwatch run --json`.",
            metavar="REPORT...",
            show_default=False,
        ),
    ],
    json_path: Annotated[
        Optional[str],
        typer.Option(
            "--json",
            help="Also write the merged JSON report here (- for stdout).",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the one-line verdict.")
    ] = False,
) -> None:
    from trainwatch.diagnostics.knowledge import load_knowledge
    from trainwatch.diagnostics.postmortem import merge_reports

    from .outputs import ReportTargets, deliver, writable

    targets = ReportTargets(json_path=writable(json_path), quiet=quiet)
    diagnosis = merge_reports(reports, load_knowledge())
    deliver(diagnosis, targets)  # the same writers as run and explain: redacted, one exit policy
