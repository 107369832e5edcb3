"""`trainwatch explain`: read saved logs -> diagnostics -> the same report `run` prints (and its JSON)."""

from __future__ import annotations

import json
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

The report goes to stderr; --json writes the machine-readable report (- for stdout).
"""


def explain_command(
    logs: Annotated[list[str], typer.Argument(help="Log files of one run, or - for standard input.",
                                              metavar="LOG...", show_default=False)],
    json_path: Annotated[Optional[str], typer.Option("--json", help="Also write the JSON report here (- for stdout).",
                                                     show_default=False)] = None,
    signatures: Annotated[Optional[list[Path]], typer.Option("--signatures",
                                                             help="An extra signature file (repeatable).",
                                                             show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the one-line verdict.")] = False,
) -> None:
    from trainwatch.diagnostics.postmortem import explain_logs
    from trainwatch.diagnostics.signatures import load_knowledge

    if logs.count("-") > 1:
        raise UsageError("standard input (-) can be given only once")
    knowledge = load_knowledge(extra_files=tuple(signatures or ()))
    diagnosis = explain_logs(logs, knowledge, stdin=sys.stdin.buffer if "-" in logs else None)
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
