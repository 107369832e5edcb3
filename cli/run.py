"""`trainwatch run`: options -> a run request -> a live diagnosis -> the report; exits with the child's status."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from trainwatch.diagnostics import command as targets
from trainwatch.diagnostics.errors import CommandNotExecutable, CommandNotFound, UsageError

HELP = """Run a training program and say why it stopped.

\b
  trainwatch run [OPTIONS] train.py [ARGS]...      a script, under the python3 first on PATH
  trainwatch run [OPTIONS] -m pkg.train [ARGS]...  a module
  trainwatch run [OPTIONS] -- COMMAND [ARGS]...    any command (torchrun, a shell script, ...)

Everything after the script, the module or `--` goes to the program untouched. trainwatch's options come first.
The program's output passes through byte for byte; the report goes to stderr when it ends, and trainwatch exits
with the program's status (128+N when signal N killed it).
"""

# Marks, for the callback, that the user wrote `--` (a command) rather than a script. Inserted by
# `protect_child_args`; hidden from --help.
COMMAND_MARK = "--as-command"


def run_command(
    ctx: typer.Context,
    program: Annotated[Optional[list[str]], typer.Argument(help="The script and its arguments, or the command after --.",
                                                           show_default=False)] = None,
    module: Annotated[Optional[str], typer.Option("-m", "--module", help="Run a module, as `python -m MODULE`.",
                                                  show_default=False)] = None,
    python: Annotated[Optional[str], typer.Option(help="Interpreter for a script or module [default: python3 on PATH].",
                                                  show_default=False)] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the JSON report here (- for stdout).",
                                                      show_default=False)] = None,
    log: Annotated[Optional[Path], typer.Option(help="Also save the program's combined output here.",
                                                show_default=False)] = None,
    no_probe: Annotated[bool, typer.Option("--no-probe", help="Do not load the probe into Python processes.")] = False,
    keep_artifacts: Annotated[bool, typer.Option(help="Keep the probe's record files after the report.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between memory samples.", min=0.05)] = 0.5,
    signatures: Annotated[Optional[list[Path]], typer.Option("--signatures", help="An extra signature file (repeatable).",
                                                             show_default=False)] = None,
    stall_timeout: Annotated[Optional[float], typer.Option(
        help="Call the run stuck after this many seconds without output, progress or CPU use (off by default).",
        min=0.1, show_default=False)] = None,
    on_stall: Annotated[str, typer.Option(
        help="What to do with a stuck run: auto (stop it when idle, only report a busy loop), kill, or report.")
    ] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the one-line verdict.")] = False,
    as_command: Annotated[bool, typer.Option(COMMAND_MARK, hidden=True)] = False,
) -> None:
    from trainwatch.diagnostics.session import RunRequest, run_session

    args = tuple(program or ())
    if module is not None:
        target = targets.resolve_module(module, args, python)
    elif as_command:
        target = targets.resolve_command(args)
    elif args:
        target = targets.resolve_script(args[0], args[1:], python)
    else:
        raise UsageError("nothing to run: give a script, -m MODULE, or -- COMMAND (see trainwatch run --help)")
    if on_stall not in ("auto", "kill", "report"):
        raise UsageError(f"--on-stall must be auto, kill or report, not {on_stall!r}")
    json_out = _writable(json_path)
    log_path = _writable(log)
    request = RunRequest(
        argv=target.argv,
        env=dict(os.environ),
        log_path=log_path,
        probe=not no_probe,
        keep_artifacts=keep_artifacts,
        sample_interval=interval,
        signature_files=tuple(str(p) for p in signatures or ()),
        stall_timeout=stall_timeout,
        on_stall=on_stall,
    )
    try:
        diagnosis = run_session(request, on_started=_import_renderer)
    except PermissionError as exc:
        raise CommandNotExecutable(f"permission denied: {exc.filename or target.argv[0]}") from None
    except FileNotFoundError as exc:
        raise CommandNotFound(f"command not found: {exc.filename or target.argv[0]}") from None
    _write_json(diagnosis, json_out)
    from .terminal import print_report

    print_report(diagnosis, quiet=quiet)
    raise typer.Exit(diagnosis.exit.status if diagnosis.exit else 1)


def _import_renderer() -> None:
    """Import the report's modules while the child runs: rich costs ~35 ms, not worth adding after it ends."""
    from . import render, terminal  # noqa: F401


def protect_child_args(args: list[str], value_options: set[str]) -> list[str]:
    """Insert `--` where the child's arguments begin, so none of them is taken for one of trainwatch's options.

    `args` is the command line after `run`. `value_options` are trainwatch's options that take a value.
    `train.py --json x --help` -> `-- train.py --json x --help`; `-m pkg --lr 3` -> `-m pkg -- --lr 3`;
    `-- torchrun ...` -> `--as-command -- torchrun ...`.
    """
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            return args[:i] + [COMMAND_MARK] + args[i:]
        if token in ("-m", "--module"):
            return args[: i + 2] + ["--"] + args[i + 2:]
        if token.startswith("-m") and not token.startswith("--") and len(token) > 2:  # `-mpkg.train`
            return args[: i + 1] + ["--"] + args[i + 1:]
        if token.startswith("--module="):
            return args[: i + 1] + ["--"] + args[i + 1:]
        if not token.startswith("-") or token == "-":
            return args[:i] + ["--"] + args[i:]
        if token in value_options:
            i += 2
            continue
        i += 1
    return args


def _writable(path: Path | None) -> str | None:
    """Check an output path before anything is launched: a report that cannot be written is a usage error."""
    if path is None or str(path) == "-":
        return None if path is None else "-"
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: no directory {parent}")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {path}: permission denied")
    return str(path)


def _write_json(diagnosis, path: str | None) -> None:
    if path is None:
        return
    text = json.dumps(diagnosis.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        print(f"trainwatch: error: cannot write the JSON report to {path}: {exc.strerror}", file=sys.stderr)
