"""`trainwatch merge`: per-node JSON reports -> one job verdict (the root node and rank), printed as `run` prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from trainwatch.diagnostics.errors import UsageError

HELP = """Merge the JSON reports of one job's nodes into the job's verdict: which node and rank failed first, and why.

\b
  srun trainwatch run --json report-%N.json -- torchrun ... train.py
  trainwatch merge report-*.json

The report goes to stderr; --json writes the merged machine-readable report (- for stdout).
"""


def merge_command(
    reports: Annotated[list[str], typer.Argument(help="JSON reports written by `trainwatch run --json`.",
                                                 metavar="REPORT...", show_default=False)],
    json_path: Annotated[Optional[str], typer.Option("--json", help="Also write the merged JSON report here "
                                                     "(- for stdout).", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the one-line verdict.")] = False,
) -> None:
    from trainwatch.diagnostics.postmortem import merge_reports
    from trainwatch.diagnostics.signatures import load_knowledge

    diagnosis = merge_reports(reports, load_knowledge())
    from .terminal import print_report

    print_report(diagnosis, quiet=quiet)
    if json_path is not None:
        _write_json(diagnosis, json_path)


def _write_json(diagnosis, path: str) -> None:
    text = json.dumps(diagnosis.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
