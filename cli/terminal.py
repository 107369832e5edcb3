"""Where trainwatch's own words go: the stderr console, its colour and width rules, and the report
printer.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from rich.console import Console

# In CI logs a report wider than this wraps badly; on a terminal rich uses the real width.
CI_WIDTH = 100


def console_settings(env: Mapping[str, str] | None = None, tty: bool | None = None) -> dict:
    """How the report is drawn, from the environment and whether stderr is a terminal.

    - NO_COLOR (any non-empty value, no-color.org) turns every escape sequence off, and wins over
      FORCE_COLOR.
    - FORCE_COLOR (non-empty, not "0") keeps colour off a terminal: CI log viewers (GitHub,
      GitLab) show ANSI colour.
    - TERM=dumb, or stderr not a terminal without FORCE_COLOR: plain text, no colour, no cursor
      control.
    - Width: COLUMNS when set; the terminal's own on a terminal; CI_WIDTH otherwise.
    """
    env = os.environ if env is None else env
    tty = sys.stderr.isatty() if tty is None else tty
    no_color = bool(env.get("NO_COLOR"))
    force = env.get("FORCE_COLOR", "") not in ("", "0", "false")
    dumb = env.get("TERM") == "dumb"
    styled = not no_color and not dumb and (tty or force)
    width = None
    columns = env.get("COLUMNS", "")
    if columns.isdigit() and 20 <= int(columns) <= 1000:
        width = int(columns)
    elif not tty:
        width = CI_WIDTH
    return {
        "force_terminal": styled,
        "no_color": not styled,
        "color_system": "auto" if styled else None,
        "width": width,
        "highlight": False,
        "soft_wrap": False,
        "emoji": False,
    }


def stderr_console() -> Console:
    """A console on stderr, drawn as `console_settings()` says."""
    return Console(stderr=True, **console_settings())


def print_report(diagnosis, quiet: bool = False) -> None:
    """The terminal report (or its one line), redacted like every other report."""
    from trainwatch.diagnostics.redaction import redact_diagnosis

    from .render import one_line, report

    diagnosis = redact_diagnosis(diagnosis)
    console = stderr_console()
    console.print(one_line(diagnosis) if quiet else report(diagnosis))


def print_error(message: str) -> None:
    """One line on stderr, recognisably trainwatch's own."""
    sys.stderr.write(f"trainwatch: error: {message}\n")
    sys.stderr.flush()
