"""The trainwatch command: the Typer app, its commands, and main(), where known errors become one
line and an exit code.

typer is imported only when it is needed (help, other commands, a command line the fast parser
declines): a plain `trainwatch run` should cost its user as little start-up time as possible
(docs/architecture.md).
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable

from trainwatch.diagnostics import __version__
from trainwatch.diagnostics.errors import (
    EXIT_INTERNAL,
    EXIT_USAGE,
    TrainwatchError,
    debugging,
    internal_error,
)

TYPE_CHECKING = False  # not typing's: this module starts every command (diagnostics/startup.py)
if TYPE_CHECKING:
    from typing import NoReturn

HELP = (
    "A diagnostician for deep-learning training runs: runs your training and says why it stopped."
)
# Help is laid out for this width when stdout is not a terminal (a pipe, a file, CI). Help is plain
# text (no rich panels): rich's option table squeezed to a word a line at 80 columns.
HELP_WIDTH = 100


def build_app():
    """The Typer app with every command registered."""
    import typer

    from trainwatch.cli import demo as demo_cmd
    from trainwatch.cli import doctor as doctor_cmd
    from trainwatch.cli import dump as dump_cmd
    from trainwatch.cli import explain as explain_cmd
    from trainwatch.cli import merge as merge_cmd
    from trainwatch.cli import ps as ps_cmd
    from trainwatch.cli import report as report_cmd
    from trainwatch.cli import run as run_cmd

    app = typer.Typer(
        name="trainwatch",
        help=HELP,
        add_completion=False,
        no_args_is_help=True,
        rich_markup_mode=None,  # plain help: readable at any width, on a terminal or not
        pretty_exceptions_enable=False,  # never show locals: a script's locals can hold credentials
        context_settings={
            "help_option_names": ["-h", "--help"],
            "max_content_width": HELP_WIDTH,
            # Off a terminal there is no width to ask for: lay help out at HELP_WIDTH, not 80.
            **({} if sys.stdout.isatty() else {"terminal_width": HELP_WIDTH}),
        },
    )
    app.command(
        "run",
        help=run_cmd.HELP,
        no_args_is_help=True,
        context_settings={"allow_interspersed_args": False, "ignore_unknown_options": False},
    )(run_cmd.typer_command())
    app.command("explain", help=explain_cmd.HELP)(explain_cmd.typer_command())
    app.command("report", help=report_cmd.HELP)(report_cmd.report_command)
    app.command("merge", help=merge_cmd.HELP)(merge_cmd.merge_command)
    app.command("demo", help=demo_cmd.HELP)(demo_cmd.demo_command)
    app.command("doctor", help=doctor_cmd.HELP)(doctor_cmd.doctor_command)
    app.command("ps", help=ps_cmd.HELP)(ps_cmd.ps_command)
    app.command("dump", help=dump_cmd.HELP)(dump_cmd.dump_command)

    def version(value: bool) -> None:
        if value:
            print(f"trainwatch {__version__}")
            raise typer.Exit(0)

    @app.callback()
    def _global(
        show_version: bool = typer.Option(
            False, "--version", callback=version, is_eager=True, help="Print the version."
        ),
    ) -> None:
        """A diagnostician for deep-learning training runs: runs your training and says why it
        stopped."""

    return app


def main(argv: list[str] | None = None) -> None:
    """Entry point: parse, dispatch, and turn every known failure into one line on stderr and an
    exit code."""
    try:
        _dispatch(argv)
    except KeyboardInterrupt:
        # a Ctrl-C while trainwatch reads its command line, before any program started: a real
        # run's first 30-50 ms printed trainwatch's own traceback
        _fail("interrupted", 130)


def _dispatch(argv: list[str] | None) -> None:
    _open_standard_outputs()
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "run":
        from trainwatch.cli import run as run_cmd

        args = ["run"] + run_cmd.protect_child_args(args[1:], run_cmd.VALUE_OPTIONS)
        options = run_cmd.parse_fast(args[1:])
        if options is not None:
            _exit_with(lambda: run_cmd.execute(options))
    if args and args[0] == "explain":
        from trainwatch.cli import explain as explain_cmd

        parsed = explain_cmd.parse_fast(args[1:])
        if parsed is not None:
            _exit_with(lambda: explain_cmd.execute(*parsed))

    def through_typer() -> int:
        import typer

        command = typer.main.get_command(build_app())
        if not args:  # bare `trainwatch`: the help, and success
            with typer.Context(command, info_name="trainwatch", **command.context_settings) as ctx:
                print(command.get_help(ctx))
            return 0
        code = command.main(args=args, prog_name="trainwatch", standalone_mode=False)
        return code if isinstance(code, int) else 0

    _exit_with(through_typer)


def _open_standard_outputs() -> None:
    """Started with stdout or stderr closed (`>&-`, a launcher that closes them): point the closed
    one at /dev/null, so that the reports and the relay of the program's output write nowhere
    rather than fail, and the program's exit status still comes back."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_WRONLY)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        setattr(sys, name, open(fd, "w", closefd=False))


def _exit_with(work: Callable[[], int]) -> None:
    """Run `work` and exit with its status; a known failure becomes one line on stderr and its exit
    code."""
    try:
        code = work()
    except TrainwatchError as exc:
        _fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        if debugging():
            raise
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # click's usage errors
            hint = ""
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                hint = f" (see {ctx.command_path} --help)"
            message = exc.format_message() or "bad command line"
            _fail(message + hint, getattr(exc, "exit_code", EXIT_USAGE) or EXIT_USAGE)
        _fail(internal_error(exc), EXIT_INTERNAL)
    _leave(code)


def _leave(code: int) -> NoReturn:
    """Exit at once with `code`: flush our own streams and skip the interpreter's teardown.

    Freeing every object of a run (the knowledge base's compiled patterns, rich, the judges) took
    35-40 ms after the program had already ended, between its last line and the shell's prompt.
    Nothing of trainwatch needs the teardown: reports and logs are written and closed before this,
    notifications are waited for, and every thread still running is a daemon. What a library
    registered to run at exit (wandb's teardown after `--attach-to`, logging's flush) still runs.
    """
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_functions is None:  # not CPython: the ordinary exit
        sys.exit(128 - code if code < 0 else code)
    run_exit_functions()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, a stream already closed
            pass
    if code < 0:
        _die_of(-code)
    os._exit(code)


def _die_of(signum: int) -> None:
    """End trainwatch by the signal that ended the program (`run` returns -N for it): its parent
    sees the same death (a shell's `$?` is 128+N either way; a shell loop stops at a Ctrl-C only
    when its command died of SIGINT). Without a core file of trainwatch's own; the fall-back, if
    the signal does not end it, is 128+N."""
    import resource
    import signal

    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if signum not in (signal.SIGKILL, signal.SIGSTOP):  # their handling is the kernel's alone
            signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
        os.kill(os.getpid(), signum)
    except (OSError, ValueError):
        pass
    os._exit(128 + signum)


def _fail(message: str, code: int) -> None:
    from trainwatch.cli.console import print_error

    print_error(message.splitlines()[0] if message else "failed")
    sys.exit(code)


if __name__ == "__main__":
    main()
