"""`trainwatch run`: options -> a run request -> a live diagnosis -> the report; exits with the
child's status.
"""

# No `from __future__ import annotations` here: typer reads the annotations of the command that
# `typer_command()` defines, and they must be real objects there, where typer is imported.
import math
import os
from dataclasses import dataclass
from pathlib import Path

from trainwatch.diagnostics.errors import CommandNotExecutable, CommandNotFound, UsageError
from trainwatch.diagnostics.watch import target as targets

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
ON_STALL = ("auto", "kill", "report")


@dataclass(frozen=True)
class RunOptions:
    """`trainwatch run`'s command line, parsed: the one configuration object the command works
    from.
    """

    program: tuple[str, ...] = ()
    module: str | None = None
    python: str | None = None
    json_path: str | None = None
    log: str | None = None
    no_probe: bool = False
    keep_artifacts: bool = False
    interval: float = 0.5
    signatures: tuple[str, ...] = ()
    stall_timeout: float | None = None
    on_stall: str = "auto"
    quiet: bool = False
    junit: str | None = None
    html: str | None = None
    fail_on: str | None = (
        None  # "numerical,early-exit": parsed by cli/ci.py once the options are read
    )
    as_command: bool = False


# How run's options are spelled, for the fast parser: field and kind ("flag", "off", "value",
# "values", "number"). tests/test_cli_parsing.py checks this table against the typer command, so the
# two cannot drift apart.
OPTION_SPELLINGS = {
    "-m": ("module", "value"),
    "--module": ("module", "value"),
    "--python": ("python", "value"),
    "--json": ("json_path", "value"),
    "--log": ("log", "value"),
    "--no-probe": ("no_probe", "flag"),
    "--keep-artifacts": ("keep_artifacts", "flag"),
    "--no-keep-artifacts": ("keep_artifacts", "off"),
    "--interval": ("interval", "number"),
    "--signatures": ("signatures", "values"),
    "--stall-timeout": ("stall_timeout", "number"),
    "--on-stall": ("on_stall", "value"),
    "--quiet": ("quiet", "flag"),
    "-q": ("quiet", "flag"),
    "--junit": ("junit", "value"),
    "--html": ("html", "value"),
    "--fail-on": ("fail_on", "value"),
    COMMAND_MARK: ("as_command", "flag"),
}
MINIMUMS = {"interval": 0.05, "stall_timeout": 0.1}
VALUE_OPTIONS = frozenset(
    name for name, (_, kind) in OPTION_SPELLINGS.items() if kind in ("value", "values", "number")
)


def parse_fast(args: list[str]) -> RunOptions | None:
    """Parse run's arguments (after `protect_child_args`) without typer, which costs ~45 ms to
    import.

    Returns None for anything but a plain, valid command line (help, an unknown option, a bad
    value): typer then parses it again and says what is wrong, in its own words.
    """
    values: dict = {}
    program: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            program = args[i + 1 :]
            break
        name, eq, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        spec = OPTION_SPELLINGS.get(name)
        if spec is None:
            return None
        field, kind = spec
        if kind in ("flag", "off"):
            if eq:
                return None
            values[field] = kind == "flag"
            i += 1
            continue
        if eq:
            value, i = inline, i + 1
        elif i + 1 < len(args):
            value, i = args[i + 1], i + 2
        else:
            return None
        if kind == "number":
            try:
                number = float(value)
            except ValueError:
                return None
            if not math.isfinite(number) or number < MINIMUMS[field]:
                return None
            values[field] = number
        elif kind == "values":
            values[field] = values.get(field, ()) + (value,)
        else:
            values[field] = value
    return RunOptions(program=tuple(program), **values)


def typer_command():
    """The typer command for `run`: its --help, and the parser of record for what `parse_fast`
    declines.
    """
    from typing import Annotated, Optional

    import typer

    def run_command(
        program: Annotated[
            Optional[list[str]],
            typer.Argument(
                help="The script and its arguments, or the command after --.", show_default=False
            ),
        ] = None,
        module: Annotated[
            Optional[str],
            typer.Option(
                "-m", "--module", help="Run a module, as `python -m MODULE`.", show_default=False
            ),
        ] = None,
        python: Annotated[
            Optional[str],
            typer.Option(
                help="Interpreter for a script or module [default: python3 on PATH].",
                show_default=False,
            ),
        ] = None,
        json_path: Annotated[
            Optional[Path],
            typer.Option(
                "--json", help="Also write the JSON report here (- for stdout).", show_default=False
            ),
        ] = None,
        log: Annotated[
            Optional[Path],
            typer.Option(help="Also save the program's combined output here.", show_default=False),
        ] = None,
        no_probe: Annotated[
            bool, typer.Option("--no-probe", help="Do not load the probe into Python processes.")
        ] = False,
        keep_artifacts: Annotated[
            bool, typer.Option(help="Keep the probe's record files after the report.")
        ] = False,
        interval: Annotated[
            float, typer.Option(help="Seconds between memory samples.", min=0.05)
        ] = 0.5,
        signatures: Annotated[
            Optional[list[Path]],
            typer.Option(
                "--signatures", help="An extra signature file (repeatable).", show_default=False
            ),
        ] = None,
        stall_timeout: Annotated[
            Optional[float],
            typer.Option(
                help="Call the run stuck after this many seconds without output, progress or CPU "
                "use (off by default).",
                min=0.1,
                show_default=False,
            ),
        ] = None,
        on_stall: Annotated[
            str,
            typer.Option(
                help="What to do with a stuck run: auto (stop it when idle, only report a busy "
                "loop), kill, or report."
            ),
        ] = "auto",
        quiet: Annotated[
            bool, typer.Option("--quiet", "-q", help="Print only the one-line verdict.")
        ] = False,
        junit: Annotated[
            Optional[Path],
            typer.Option(
                "--junit",
                help="Also write a JUnit XML report here (GitLab, Jenkins, ...).",
                show_default=False,
            ),
        ] = None,
        html: Annotated[
            Optional[Path],
            typer.Option(
                "--html",
                help="Also write a self-contained HTML report with charts here.",
                show_default=False,
            ),
        ] = None,
        fail_on: Annotated[
            Optional[str],
            typer.Option(
                "--fail-on",
                metavar="CATEGORY[,CATEGORY...]",
                help="Exit 3 when the program exited 0 but the verdict is one of these categories "
                "(e.g. numerical).",
                show_default=False,
            ),
        ] = None,
        as_command: Annotated[bool, typer.Option(COMMAND_MARK, hidden=True)] = False,
    ) -> None:
        options = RunOptions(
            program=tuple(program or ()),
            module=module,
            python=python,
            json_path=None if json_path is None else str(json_path),
            log=None if log is None else str(log),
            no_probe=no_probe,
            keep_artifacts=keep_artifacts,
            interval=interval,
            signatures=tuple(str(p) for p in signatures or ()),
            stall_timeout=stall_timeout,
            on_stall=on_stall,
            quiet=quiet,
            junit=None if junit is None else str(junit),
            html=None if html is None else str(html),
            fail_on=fail_on,
            as_command=as_command,
        )
        raise typer.Exit(execute(options))

    return run_command


def execute(options: RunOptions) -> int:
    """Run the program, print the report, and return the status trainwatch exits with."""
    from trainwatch.diagnostics.live import RunRequest, run_session

    args = options.program
    if options.module is not None:
        target = targets.resolve_module(options.module, args, options.python)
    elif options.as_command:
        target = targets.resolve_command(args)
    elif args:
        target = targets.resolve_script(args[0], args[1:], options.python)
    else:
        raise UsageError(
            "nothing to run: give a script, -m MODULE, or -- COMMAND (see trainwatch run --help)"
        )
    if options.on_stall not in ON_STALL:
        raise UsageError(f"--on-stall must be auto, kill or report, not {options.on_stall!r}")
    from .outputs import ReportTargets, writable

    fail_on: frozenset[str] = frozenset()
    if (
        options.fail_on
    ):  # cli/ci.py (and its regexes) only when asked: this runs before the child starts
        from .ci import parse_fail_on

        fail_on = parse_fail_on(options.fail_on)
    reports = ReportTargets(
        json_path=writable(options.json_path),
        junit_path=writable(options.junit),
        html_path=writable(options.html),
        quiet=options.quiet,
        fail_on=fail_on,
    )
    log_path = writable(options.log)
    request = RunRequest(
        argv=target.argv,
        env=dict(os.environ),
        log_path=log_path,
        probe=not options.no_probe,
        keep_artifacts=options.keep_artifacts,
        sample_interval=options.interval,
        signature_files=options.signatures,
        stall_timeout=options.stall_timeout,
        on_stall=options.on_stall,
    )
    try:
        diagnosis = run_session(request, on_started=_import_renderer)
    except PermissionError as exc:
        raise CommandNotExecutable(f"permission denied: {exc.filename or target.argv[0]}") from None
    except FileNotFoundError as exc:
        raise CommandNotFound(f"command not found: {exc.filename or target.argv[0]}") from None
    from .outputs import deliver

    return deliver(diagnosis, reports)


def _import_renderer() -> None:
    """Import the report's modules while the child runs: rich costs ~35 ms, not worth adding after
    it ends.
    """
    from . import render, terminal  # noqa: F401


def protect_child_args(args: list[str], value_options: set[str]) -> list[str]:
    """Insert `--` where the child's arguments begin, so none of them is taken for one of
    trainwatch's options.

    `args` is the command line after `run`. `value_options` are trainwatch's options that take a
    value. `train.py --json x --help` -> `-- train.py --json x --help`; `-m pkg --lr 3` -> `-m
    pkg -- --lr 3`; `-- torchrun ...` -> `--as-command -- torchrun ...`.
    """
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            return args[:i] + [COMMAND_MARK] + args[i:]
        if token in ("-m", "--module"):
            return args[: i + 2] + ["--"] + args[i + 2 :]
        if (
            token.startswith("-m") and not token.startswith("--") and len(token) > 2
        ):  # `-mpkg.train`
            return args[: i + 1] + ["--"] + args[i + 1 :]
        if token.startswith("--module="):
            return args[: i + 1] + ["--"] + args[i + 1 :]
        if not token.startswith("-") or token == "-":
            return args[:i] + ["--"] + args[i:]
        if token in value_options:
            i += 2
            continue
        i += 1
    return args
