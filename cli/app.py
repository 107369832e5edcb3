"""The trainwatch command: the Typer app, its commands, and main(), where known errors become one
line and a code.

typer is imported only when it is needed (help, other commands, a command line the fast parser
declines): a plain `trainwatch run` should cost its user as little start-up time as possible
(docs/architecture.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from trainwatch.diagnostics import __version__
from trainwatch.diagnostics.errors import EXIT_INTERNAL, EXIT_USAGE, TrainwatchError

HELP = (
    "A diagnostician for deep-learning training runs: runs your training and says why it stopped."
)


def build_app():
    """The Typer app with every command registered."""
    import typer

    from . import run as run_cmd

    app = typer.Typer(
        name="trainwatch",
        help=HELP,
        add_completion=False,
        no_args_is_help=True,
        # never show locals: a training script's locals can hold credentials
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.command(
        "run",
        help=run_cmd.HELP,
        no_args_is_help=True,
        context_settings={"allow_interspersed_args": False, "ignore_unknown_options": False},
    )(run_cmd.typer_command())
    try:
        from . import explain as explain_cmd
    except ImportError:  # explain lands with the classifier
        explain_cmd = None
    if explain_cmd is not None:
        app.command("explain", help=getattr(explain_cmd, "HELP", None))(explain_cmd.explain_command)
    from . import merge as merge_cmd  # distributed (issue 7): per-node reports -> the job's verdict

    app.command("merge", help=merge_cmd.HELP)(merge_cmd.merge_command)

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
        stopped.
        """

    return app


def main(argv: list[str] | None = None) -> None:
    """Entry point: parse, dispatch, and turn every known failure into one line on stderr and an
    exit code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "run":
        from . import run as run_cmd

        args = ["run"] + run_cmd.protect_child_args(args[1:], run_cmd.VALUE_OPTIONS)
        options = run_cmd.parse_fast(args[1:])
        if options is not None:
            _exit_with(lambda: run_cmd.execute(options))

    def through_typer() -> int:
        import typer

        command = typer.main.get_command(build_app())
        code = command.main(args=args, prog_name="trainwatch", standalone_mode=False)
        return code if isinstance(code, int) else 0

    _exit_with(through_typer)


def _exit_with(work: Callable[[], int]) -> None:
    """Run `work` and exit with its status; a known failure becomes one line on stderr and its exit
    code.
    """
    try:
        code = work()
    except TrainwatchError as exc:
        _fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("TRAINWATCH_DEBUG") == "1":
            raise
        if hasattr(exc, "format_message") and hasattr(
            exc, "exit_code"
        ):  # typer's (click's) usage errors
            hint = ""
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                hint = f" (see {ctx.command_path} --help)"
            _fail(exc.format_message() + hint, getattr(exc, "exit_code", EXIT_USAGE) or EXIT_USAGE)
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (set TRAINWATCH_DEBUG=1 for the "
            f"traceback)",
            EXIT_INTERNAL,
        )
    sys.exit(code)


def _fail(message: str, code: int) -> None:
    from .terminal import print_error

    print_error(message.splitlines()[0] if message else "failed")
    sys.exit(code)


if __name__ == "__main__":
    main()
