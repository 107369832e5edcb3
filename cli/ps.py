"""`trainwatch ps`: the runs under trainwatch on this machine, for this user, as they are now."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from trainwatch.cli.console import write_out
from trainwatch.cli.options import PS_OPTIONS, typer_command
from trainwatch.diagnostics.units import human_bytes, human_duration

HELP = """List the runs under trainwatch on this machine (yours): their command, pid, time running,
progress, last loss, memory, GPU memory, and what trainwatch sees so far (running, quiet,
stalled, NaN).

\b
  trainwatch ps
  trainwatch ps --json
  trainwatch dump ID       the stacks of every process of a run

The ID is trainwatch's own pid; PID is the program's. A run that has printed nothing for a minute
shows as quiet; --stall-timeout decides when it is stalled.
"""

# A run that printed nothing for this long shows as quiet (before --stall-timeout calls it stuck).
QUIET_S = 60.0
COLUMNS = ("ID", "PID", "TIME", "PROGRESS", "LOSS", "MEMORY", "GPU", "STATE", "COMMAND")


def ps(**values: Any) -> None:
    from trainwatch.diagnostics.watch.registry import RegistryUnavailable, live_runs, open_registry

    try:
        entries = live_runs(open_registry(create=False))
    except RegistryUnavailable:
        entries = []
    if values["json_output"]:
        write_out(json.dumps({"runs": [e.to_dict() for e in entries]}, indent=2) + "\n")
        return
    if not entries:
        write_out("no run under trainwatch (for this user, on this machine)\n")
        return
    write_out(render(entries))


def render(entries, now: float | None = None, width: int | None = None) -> str:
    """The runs as a table: one row each, the command cut to the width."""
    now = time.time() if now is None else now
    rows = [COLUMNS] + [row(e, now) for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    width = width or _width()
    lines = []
    for cells in rows:
        head = "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths, strict=True))
        room = max(width - len(head) - 2, 20)
        command = cells[-1] if len(cells[-1]) <= room else cells[-1][: room - 1] + "…"
        lines.append(f"{head}  {command}".rstrip())
    return "\n".join(lines) + "\n"


def row(entry, now: float) -> tuple[str, ...]:
    status = entry.status
    loss = status.get("last_loss")
    return (
        entry.id,
        str(entry.child_pid),
        human_duration(max(now - entry.started_at, 0.0)),
        status.get("position") or "-",
        "-" if loss is None else (loss if isinstance(loss, str) else f"{loss:.4g}"),
        human_bytes(status["rss_bytes"]) if status.get("rss_bytes") else "-",
        human_bytes(status["gpu_bytes"]) if status.get("gpu_bytes") else "-",
        state(status),
        " ".join(entry.command),
    )


def state(status: dict[str, Any]) -> str:
    """What trainwatch sees so far, in a few words."""
    stall = status.get("stall")
    if status.get("stopping_for_nan"):
        return "stopping: loss NaN"
    # without --stall-timeout the watcher only notes a silence, for the verdict: still quiet here
    if stall and (status.get("stall_timeout_s") or stall.get("action") == "stopped"):
        if stall.get("action") == "stopped":
            return "stalled: stopping"
        return f"stalled {human_duration(stall.get('silent_s'))}" + (
            " (busy)" if stall.get("busy") else ""
        )
    if status.get("first_nonfinite_at"):
        return f"loss NaN since {status['first_nonfinite_at']}"
    silent = status.get("silent_s") or 0.0
    if silent >= QUIET_S:
        return f"quiet {human_duration(silent)}"
    return "running"


def _width() -> int:
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError):
        return 160


ps_command = typer_command(ps, PS_OPTIONS)
