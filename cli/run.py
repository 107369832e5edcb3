"""`trainwatch run`: options -> a run request -> a live diagnosis -> the reports; exits with the
child's status.

A plain command line is parsed here without typer (importing typer costs ~45 ms before the child
can start); help, mistakes and anything unusual go to the typer command, built from the same
option table (cli/options.py).
"""

from __future__ import annotations

import os
import signal
import time
from collections import namedtuple

from trainwatch.cli.options import (
    COMMAND_MARK,
    NOTIFY_ENV,
    RUN_OPTIONS,
    config_file,
    parse_plain,
    value_flags,
)
from trainwatch.diagnostics.errors import (
    CommandNotExecutable,
    CommandNotFound,
    TrainwatchError,
    UsageError,
    debugging,
    internal_error,
)
from trainwatch.diagnostics.watch import target as targets

TYPE_CHECKING = False  # not typing's (diagnostics/startup.py)
if TYPE_CHECKING:
    from typing import Any

HELP = """Run a training program and say why it stopped.

\b
  trainwatch run [OPTIONS] train.py [ARGS]...      a script, under the python3 first on PATH
  trainwatch run [OPTIONS] -m pkg.train [ARGS]...  a module
  trainwatch run [OPTIONS] -- COMMAND [ARGS]...    any command (torchrun, a shell script, ...)

Everything after the script, the module or `--` goes to the program untouched; trainwatch's own
options come first. A first word that is no file but a command on PATH (`trainwatch run python
train.py`), or an executable file that is no `.py` (`./train.sh`), is run as that command, as
after `--`. The program's output passes through byte for
byte; the report goes to stderr when it ends, and trainwatch exits with the program's status
(killed by signal N, it ends by that signal: a shell reads 128+N).
"""

# The parsed command line: one field per option of the table, plus the program and its arguments.
# A named tuple: it is made before the program starts (diagnostics/startup.py).
RunOptions = namedtuple(
    "RunOptions",
    ["program"] + [o.field for o in RUN_OPTIONS],
    defaults=[()] + [o.default for o in RUN_OPTIONS],
)
RunOptions.__doc__ = "`trainwatch run`'s command line, parsed: the one configuration it works from."
VALUE_OPTIONS = value_flags(RUN_OPTIONS)


def parse_fast(args: list[str]):
    """Run's arguments (after `protect_child_args`) parsed without typer: RunOptions, or None for
    anything but a plain, valid command line (typer then says what is wrong)."""
    parsed = parse_plain(args, RUN_OPTIONS, words_anywhere=False)
    if parsed is None:
        return None
    values, program = parsed
    return RunOptions(program=tuple(program), **values)


def typer_command():
    """The typer command for `run`: its --help, and the parser of record for what `parse_fast`
    declines."""
    import inspect
    from typing import Annotated

    import typer

    from trainwatch.cli.options import typer_command as build

    program = inspect.Parameter(
        "program",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=None,
        annotation=Annotated[
            list[str] | None,
            typer.Argument(
                help="The script and its arguments, or the command after --.", show_default=False
            ),
        ],
    )

    def run_command(program: list[str] | None = None, **values: Any) -> None:
        raise typer.Exit(execute(RunOptions(program=tuple(program or ()), **values)))

    return build(run_command, RUN_OPTIONS, (program,))


def execute(options) -> int:
    """Run the program, print the report, and return the status trainwatch exits with."""
    from trainwatch.cli.reports import ReportTargets
    from trainwatch.cli.reports.files import writable
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
    fail_on: frozenset[str] = frozenset()
    if options.fail_on is not None:
        from trainwatch.cli.exitpolicy import parse_fail_on

        fail_on = parse_fail_on(options.fail_on)
    reports = ReportTargets(
        json_path=writable(options.json_path),
        junit_path=writable(options.junit),
        html_path=writable(options.html),
        quiet=options.quiet,
        fail_on=fail_on,
    )
    env = dict(os.environ)
    on_nan, stop_after = _on_nan(options.on_nan)
    notifier = listener = None
    if _notify_asked(options, env):
        notifier, listener = _notifier(options, env, target.argv, on_nan)
    # (a stall declared while the run goes on is said at once, whatever else is asked)
    if listener is None and (on_nan is not None or options.stall_timeout):
        from trainwatch.cli.console import print_line, print_warning
        from trainwatch.cli.notify.sender import LiveListener

        listener = LiveListener(None, on_nan, print_warning, print_line, options.nan_grace)
    request = RunRequest(
        argv=target.argv,
        env=env,
        log_path=writable(options.log),
        probe=not options.no_probe,
        keep_artifacts=options.keep_artifacts,
        sample_interval=options.interval,
        signature_files=_usable_signature_files(options.signatures),
        stall_timeout=options.stall_timeout,
        on_stall=options.on_stall,
        on_event=listener,
        nan_stop_after=stop_after,
        nan_grace=options.nan_grace,
        on_warning=_warn,
    )
    ended: list[int] = []  # the status the program ended with, once it has

    def on_ended(result) -> None:
        ended.append(result.exit.status)
        # The program has ended: a Ctrl-C from now on would only cost its report and its status
        # (a pipeline acts on it). Ignored by trainwatch; a handler of Python's, not SIG_IGN, so
        # that an --on-exit command started now still stops at a Ctrl-C.
        signal.signal(signal.SIGINT, lambda _signum, _frame: None)
        _new_line(result)

    started = time.time()
    try:
        diagnosis = run_session(request, on_started=_import_reports, on_ended=on_ended)
        from trainwatch.cli.reports import deliver_reports

        delivered = deliver_reports(diagnosis, reports)
    except Exception as exc:
        if ended and not isinstance(exc, TrainwatchError) and not debugging():
            raise _judging_failed(exc, ended[0]) from None
        if not ended and isinstance(exc, PermissionError):
            raise CommandNotExecutable(
                f"permission denied: {exc.filename or target.argv[0]}"
            ) from None
        if not ended and isinstance(exc, FileNotFoundError):
            raise CommandNotFound(f"command not found: {exc.filename or target.argv[0]}") from None
        raise
    if notifier is not None:
        _tell(notifier, delivered, reports.json_path)
    if options.attach_to:
        _attach(diagnosis, options.attach_to, request.env, started)
    killed = diagnosis.exit.signal_number if diagnosis.exit is not None else None
    if killed is not None and delivered.status == 128 + killed:
        # killed by a signal, and no policy set another status: trainwatch ends the same way
        # (app._leave), so that a shell sees a signal death, as without trainwatch, and stops a
        # loop or a script at a Ctrl-C instead of going on to its next command
        return -killed
    return delivered.status


def _judging_failed(exc: Exception, status: int) -> TrainwatchError:
    """A bug of trainwatch's own after the program ended: one line, and the program's own exit
    status, never another (a pipeline acts on it)."""
    return TrainwatchError(
        f"{internal_error(exc)}; the run's own exit status {status} is kept", status
    )


def _attach(diagnosis, target: str, env: dict[str, str], started: float) -> None:
    """Attach the verdict to the program's W&B or TensorBoard run; a failure is one warning line,
    never a different exit status."""
    from trainwatch.cli.console import print_line, print_warning
    from trainwatch.integrations.attach import AttachError, attach

    try:
        where = attach(diagnosis, target, os.getcwd(), env, started)
    except AttachError as exc:
        print_warning(f"--attach-to {target}: {exc}")
        return
    except Exception as exc:  # the tracker's own failure: the report already stands
        print_warning(f"--attach-to {target}: {type(exc).__name__}: {exc}")
        return
    print_line(f"trainwatch: verdict attached to {where}")


def _notify_asked(options, env: dict[str, str]) -> bool:
    """Is any notification or exit command wanted? One stat of the config file and no import:
    a plain run pays nothing for notifications."""
    return bool(
        options.notify
        or options.on_exit
        or options.notify_on
        or options.notify_format
        or env.get(NOTIFY_ENV)
        or os.path.isfile(config_file(env))
    )


def _on_nan(text: str | None) -> tuple[str | None, int | None]:
    """`--on-nan` -> ("stop", N) or ("warn", None); (None, None) when not given."""
    if text is None:
        return None, None
    from trainwatch.diagnostics.watch.alerts import parse_on_nan

    try:
        return parse_on_nan(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _notifier(options, env: dict[str, str], argv: tuple[str, ...], on_nan: str | None):
    """(the notifier, the run's live-event listener), or (None, None) when the settings ask for
    nothing; the command line's mistakes are usage errors, the rest warnings."""
    from trainwatch.cli.console import print_line, print_warning
    from trainwatch.cli.notify.config import load_settings

    settings = load_settings(options, env, print_warning)
    if not settings.active:
        return None, None
    if "stall" in settings.events and not options.stall_timeout and options.notify_on:
        print_warning("--notify-on stall needs --stall-timeout to see a stall; none will be sent")
    from trainwatch.cli.notify.sender import LiveListener, Notifier

    notifier = Notifier(settings, argv, env, print_warning)
    return notifier, LiveListener(notifier, on_nan, print_warning, print_line, options.nan_grace)


def _tell(notifier, delivered, json_path: str | None) -> None:
    """The end's notifications and the --on-exit command, after the reports; neither changes the
    exit status."""
    from trainwatch.cli.console import print_warning

    report = os.path.abspath(json_path) if json_path and json_path != "-" else None
    notifier.post_end(delivered, report)
    if notifier.settings.on_exit:
        from trainwatch.cli.notify.onexit import run_on_exit

        run_on_exit(notifier.settings.on_exit, delivered, report, print_warning)
    notifier.wait()


def _usable_signature_files(extra: tuple[str, ...]) -> tuple[str, ...]:
    """The user's signature files that load, checked before the program starts: a bad one is a
    warning naming its file and line, and the run goes on with the built-in knowledge and the good
    files."""
    from trainwatch.diagnostics.knowledge import user_signature_files

    files = [str(f) for f in user_signature_files()] + list(extra)
    if not files:
        return ()
    from trainwatch.cli.console import print_warning
    from trainwatch.diagnostics.knowledge import SignatureError, load_file

    usable = []
    for path in files:
        try:
            load_file(path)
        except SignatureError as exc:
            print_warning(f"{exc.message}; the run goes on without this file")
            continue
        usable.append(path)
    return tuple(usable)


def _warn(message: str) -> None:
    from trainwatch.cli.console import print_warning

    print_warning(message)


def _new_line(result) -> None:
    """The program's output ended in the middle of a line: the report starts on a line of its
    own."""
    if result.ends_mid_line:
        from trainwatch.cli.console import print_line

        print_line("")


def _import_reports() -> None:
    """Import the report's modules while the child runs: rich and the formats cost tens of
    milliseconds, not worth adding after it ends."""
    from trainwatch.cli import console, exitpolicy  # noqa: F401
    from trainwatch.cli.reports import github, outline, terminal  # noqa: F401


def protect_child_args(args: list[str], value_options: frozenset[str]) -> list[str]:
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
        if token.startswith("-m") and not token.startswith("--") and len(token) > 2:
            return args[: i + 1] + ["--"] + args[i + 1 :]  # `-mpkg.train`
        if token.startswith("--module="):
            return args[: i + 1] + ["--"] + args[i + 1 :]
        if not token.startswith("-") or token == "-":
            return args[:i] + ["--"] + args[i:]
        if token in value_options:
            i += 2
            continue
        i += 1
    return args
