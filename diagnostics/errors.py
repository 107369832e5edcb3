"""The errors trainwatch reports to its user as one line and an exit code, never as a traceback."""

from __future__ import annotations

# Exit codes of trainwatch's own failures, documented in docs/index.md. A child's status passes
# through unchanged.
EXIT_USAGE = 2  # bad command line or bad input file, as argparse and click use
EXIT_NOT_EXECUTABLE = 126  # the command exists but cannot be run, as a POSIX shell reports it
EXIT_NOT_FOUND = 127  # the command was not found, as a POSIX shell reports it
EXIT_INTERNAL = 70  # EX_SOFTWARE from sysexits.h: a bug in trainwatch itself


class TrainwatchError(Exception):
    """A failure the user can act on: shown as `trainwatch: error: <message>` with `exit_code`."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class UsageError(TrainwatchError):
    """Bad arguments or bad input: nothing was launched."""

    exit_code = EXIT_USAGE


class CommandNotFound(TrainwatchError):
    """The program to launch does not exist on PATH or at the given path."""

    exit_code = EXIT_NOT_FOUND


class CommandNotExecutable(TrainwatchError):
    """The program exists but is a directory or lacks execute permission."""

    exit_code = EXIT_NOT_EXECUTABLE


def debugging() -> bool:
    """TRAINWATCH_DEBUG=1: a bug of trainwatch's own is shown with its traceback."""
    import os

    return os.environ.get("TRAINWATCH_DEBUG") == "1"


def internal_error(exc: BaseException) -> str:
    """The one line a bug of trainwatch's own is shown as."""
    return f"internal error: {type(exc).__name__}: {exc} (set TRAINWATCH_DEBUG=1 for the traceback)"
