"""`trainwatch dump [RUN]`: the Python stacks of every process of a live run (ranks and DataLoader
workers included), without stopping it; py-spy for a Python process outside trainwatch."""

from __future__ import annotations

import inspect
import json
import time
from typing import Annotated, Any

import typer

from trainwatch.cli.console import write_out
from trainwatch.cli.options import DUMP_OPTIONS, typer_command
from trainwatch.diagnostics.errors import TrainwatchError, UsageError
from trainwatch.diagnostics.units import human_duration

HELP = """Print the Python stacks of every process of a run under trainwatch (its ranks and
DataLoader workers too) without stopping it, with where each thread waits.

\b
  trainwatch dump              the one run under trainwatch
  trainwatch dump 28817        a run by its ID (trainwatch ps), or any pid of its processes
  trainwatch dump 4242         a Python process not under trainwatch: through py-spy

Processes that did not load trainwatch's probe are shown with what the kernel says they wait
for. Exits 1 when no stack could be read.
"""

RUN = inspect.Parameter(
    "run",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=None,
    annotation=Annotated[
        str | None,
        typer.Argument(
            help="A run's ID from trainwatch ps, or a pid of one of its processes, or of any "
            "Python process.",
            metavar="RUN",
            show_default=False,
        ),
    ],
)
EXIT_NOTHING = 1


def dump(run: str | None = None, **values: Any) -> None:
    from trainwatch.diagnostics.watch.dump import dump_run, find_py_spy
    from trainwatch.diagnostics.watch.registry import (
        RegistryUnavailable,
        live_runs,
        open_registry,
        run_of,
    )

    try:
        entries = live_runs(open_registry(create=False))
    except RegistryUnavailable:
        entries = []
    if run is not None and not run.isdigit():
        raise UsageError(f"RUN must be a run's ID or a pid, not {run!r} (see trainwatch ps)")
    if run is None:
        if not entries:
            raise TrainwatchError("no run is under trainwatch (for this user)", EXIT_NOTHING)
        if len(entries) > 1:
            raise UsageError(
                f"{len(entries)} runs are under trainwatch: name one (trainwatch ps lists them)"
            )
        entry = entries[0]
    else:
        entry = run_of(entries, int(run))
        if entry is None:
            raise typer.Exit(_outside(int(run), values["json_output"]))
    dumps = dump_run(entry.child_pid, entry.probe_dir, values["timeout"], find_py_spy())
    if values["json_output"]:
        body = {"run": entry.to_dict(), "processes": [d.to_dict() for d in dumps]}
        write_out(json.dumps(body, indent=2) + "\n")
    else:
        write_out(render(entry, dumps))
    if not any(d.threads or d.text for d in dumps):
        raise typer.Exit(EXIT_NOTHING)


def render(entry, dumps, now: float | None = None) -> str:
    """Each process: a header line, then each thread with where it waits and its frames,
    outermost call first as Python prints a traceback."""
    from trainwatch.diagnostics.watch.stall import classify_wait, describe_wait

    now = time.time() if now is None else now
    status = entry.status
    lines = [
        f"run {entry.id} · {' '.join(entry.command)} · running "
        f"{human_duration(max(now - entry.started_at, 0.0))}"
        + (f" · {status['position']}" if status.get("position") else "")
    ]
    for item in dumps:
        lines.append("")
        who = [f"pid {item.pid}"]
        if item.rank is not None:
            who.append(f"rank {item.rank}")
        if item.dataloader_worker:
            who.append("DataLoader worker")
        elif item.forked:
            who.append("forked")
        lines.append(" · ".join(who + [item.command or "?"]))
        if item.source == "py-spy":
            lines += ["  " + line for line in (item.text or "").rstrip().splitlines()]
            continue
        if item.source == "kernel":
            lines.append(f"  no Python stack: {item.note}; {item.kernel_wait}")
            continue
        if not item.complete:
            lines.append("  (the dump had not settled when it was read: it may be cut short)")
        for thread in sorted(item.threads, key=lambda t: not t.main):
            kind, where = classify_wait(thread.frames)
            name = "main thread" if thread.main else f"thread {thread.thread_id:#x}"
            doing = describe_wait(kind) if kind != "unknown" else "running, or waiting in C code"
            lines.append(f"  {name}: {doing}")
            for frame in thread.frames:
                lines.append(f'    File "{frame.file}", line {frame.line}, in {frame.function}')
                if frame.code:
                    lines.append(f"      {frame.code}")
    return "\n".join(lines) + "\n"


def _outside(pid: int, json_output: bool) -> int:
    """A pid no run under trainwatch owns: py-spy when it is installed, else how to get it."""
    from trainwatch.diagnostics.watch.dump import find_py_spy, py_spy_dump
    from trainwatch.diagnostics.watch.sampling import read_stat

    if read_stat(pid) is None:
        raise TrainwatchError(f"no process {pid} (trainwatch ps lists the runs)", EXIT_NOTHING)
    py_spy = find_py_spy()
    if py_spy is None:
        raise TrainwatchError(
            f"pid {pid} is not part of a run under trainwatch, and py-spy is not installed to "
            f"read it from outside: pip install py-spy, then trainwatch dump {pid}",
            EXIT_NOTHING,
        )
    status, text = py_spy_dump(py_spy, pid)
    if json_output:
        write_out(json.dumps({"run": None, "pid": pid, "py_spy": text, "status": status}) + "\n")
    elif status == 0:
        write_out(text)
    else:
        from trainwatch.cli.console import print_error

        print_error(f"py-spy could not read pid {pid}: {text.strip()}")
    return 0 if status == 0 else EXIT_NOTHING


dump_command = typer_command(dump, DUMP_OPTIONS, (RUN,))
