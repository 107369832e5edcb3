"""Where trainwatch's own words go: the stderr console, its colour and width rules, and the report printer."""

from __future__ import annotations

import os
import sys

from rich.console import Console

# In CI logs a report wider than this wraps badly; on a terminal rich uses the real width.
CI_WIDTH = 100


def stderr_console() -> Console:
    """A console on stderr. rich already honours NO_COLOR, FORCE_COLOR and TERM=dumb; off a terminal it
    prints no colour or cursor control, at a fixed width."""
    interactive = sys.stderr.isatty() or bool(os.environ.get("FORCE_COLOR"))
    return Console(stderr=True, width=None if interactive else CI_WIDTH, highlight=False, soft_wrap=False)


def print_report(diagnosis, quiet: bool = False) -> None:
    from .render import one_line, report

    console = stderr_console()
    console.print(one_line(diagnosis) if quiet else report(diagnosis))


def print_error(message: str) -> None:
    """One line on stderr, recognisably trainwatch's own."""
    sys.stderr.write(f"trainwatch: error: {message}\n")
    sys.stderr.flush()
