"""`trainwatch doctor`: check the machine before a run, one line per check and what to do; exits
1 only when a check failed."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
from typing import Any

import typer

from trainwatch.cli.console import write_out
from trainwatch.cli.options import DOCTOR_OPTIONS, typer_command
from trainwatch.diagnostics.doctor import Check, DoctorRequest, run_checks, worst

HELP = """Check this machine before a run: the Python and torch the run would use, torch's CUDA
build against the driver, the GPUs and who already uses them, /dev/shm for DataLoader workers,
free disk where the run writes, resource limits, the memory limit, torchrun and NCCL settings.

\b
  trainwatch doctor
  trainwatch doctor --python .venv/bin/python --output-dir /checkpoints --workers 8
  trainwatch doctor --json | jq '.checks[] | select(.status != "pass")'

Each check prints one line: ✓ pass, – does not apply here, ! warning, ✗ failure, with what to do
under a warning or a failure. Exits 1 when a check failed, 0 otherwise (warnings included).
"""

MARKS = {"pass": "✓", "skip": "–", "warn": "!", "fail": "✗"}
SCHEMA = "trainwatch.doctor/1"
EXIT_FAILED = 1


def doctor(**values: Any) -> None:
    from trainwatch.diagnostics.watch.target import resolve_python

    python = values["python"]
    try:
        interpreter = resolve_python(python)
    except Exception:  # checked, and reported as the Python check's failure
        interpreter = python or "python3"
    request = DoctorRequest(
        python=interpreter,
        output_dir=values["output_dir"] or ".",
        workers=values["workers"],
        env=dict(os.environ),
    )
    checks = run_checks(request)
    if values["json_output"]:
        write_out(json.dumps(to_dict(request, checks), indent=2) + "\n")
    else:
        write_out(render(request, checks))
    if worst(checks) == "fail":
        raise typer.Exit(EXIT_FAILED)


def to_dict(request: DoctorRequest, checks: tuple[Check, ...]) -> dict[str, Any]:
    """The JSON `trainwatch doctor --json` prints (docs/live.md)."""
    return {
        "schema": SCHEMA,
        "host": socket.gethostname(),
        "python": request.python,
        "output_dir": request.output_dir,
        "workers": request.workers,
        "status": worst(checks),
        "checks": [c.to_dict() for c in checks],
    }


def render(request: DoctorRequest, checks: tuple[Check, ...], width: int | None = None) -> str:
    """The checks as text lines: mark, name, what was found; the advice indented under it."""
    from trainwatch.cli.console import console_settings

    if width is None:
        width = console_settings(tty=sys.stdout.isatty()).get("width") or _terminal_width()
    name_width = max(len(c.name) for c in checks) + 2
    indent = " " * (2 + name_width)
    lines = [f"trainwatch doctor · {socket.gethostname()} · for runs under {request.python}"]
    for check in checks:
        head = f"{MARKS[check.status]} {check.name.ljust(name_width)}"
        lines += textwrap.wrap(
            check.summary, width, initial_indent=head, subsequent_indent=indent
        ) or [head]
        if check.advice and check.status in ("warn", "fail"):
            lines += textwrap.wrap(
                check.advice, width, initial_indent=indent + "→ ", subsequent_indent=indent + "  "
            )
    counts = {s: sum(c.status == s for c in checks) for s in MARKS}
    tally = [f"{counts['pass']} pass"]
    if counts["skip"]:
        tally.append(f"{counts['skip']} not applicable")
    tally.append(_plural(counts["warn"], "warning"))
    tally.append(_plural(counts["fail"], "failure"))
    lines.append(f"{len(checks)} checks: {', '.join(tally)}")
    return "\n".join(lines) + "\n"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _terminal_width() -> int:
    try:
        return max(60, min(os.get_terminal_size(1).columns, 120))
    except OSError:
        return 100


doctor_command = typer_command(doctor, DOCTOR_OPTIONS)
