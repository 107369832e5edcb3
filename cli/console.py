"""Where trainwatch's own words go: the stderr console, its colour and width rules, error lines."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from typing import Any

# In CI logs a report wider than this wraps badly; on a terminal rich uses the real width.
CI_WIDTH = 100


def console_settings(
    env: Mapping[str, str] | None = None, tty: bool | None = None
) -> dict[str, Any]:
    """How the report is drawn, from the environment and whether stderr is a terminal.

    - NO_COLOR (any non-empty value, no-color.org) turns every escape sequence off, and wins over
      FORCE_COLOR.
    - FORCE_COLOR (non-empty, not "0") keeps colour off a terminal: CI log viewers (GitHub, GitLab)
      show ANSI colour.
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


# trainwatch's own marks, and what each becomes on a stream that cannot encode them (a C locale
# with PYTHONUTF8=0, a Latin-1 console): Python would write `\u2717` escapes in their place.
_MARKS_IN_ASCII = {
    "✗": "x",
    "✓": "+",
    "·": "-",
    "•": "*",
    "–": "-",
    "—": "-",
    "…": "...",
    "→": "->",
    "─": "-",
}
_SPARKS_IN_ASCII = "_.,-=+*#"  # a sparkline's eight heights (outline.SPARKS), low to high


def encodes_glyphs(stream: Any) -> bool:
    """Can `stream` encode trainwatch's glyphs (a UTF-8 terminal or file)?"""
    try:
        "".join(_MARKS_IN_ASCII).encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


@functools.cache
def _in_ascii() -> dict[int, str]:
    """The translation table of every glyph (built only where a stream needs it)."""
    from trainwatch.cli.reports.outline import SPARKS

    return str.maketrans({**_MARKS_IN_ASCII, **dict(zip(SPARKS, _SPARKS_IN_ASCII, strict=True))})


def for_stream(text: str, stream: Any) -> str:
    """`text` as `stream` can show it: its glyphs in ASCII where the stream cannot encode them."""
    return text if encodes_glyphs(stream) else text.translate(_in_ascii())


class _GlyphsInAscii:
    """A text stream that writes trainwatch's glyphs in ASCII (for rich, which writes to it)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(text.translate(_in_ascii()))

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, flush: the stream's own
        return getattr(self._stream, name)


def stderr_console():
    """A rich console on stderr, drawn as `console_settings()` says."""
    from rich.console import Console

    class _OnStderr(Console):
        def on_broken_pipe(self) -> None:
            # rich's own answer to a reader gone away (a CI job's `| tee` killed with the step)
            # sends stdout to /dev/null and raises SystemExit(1): trainwatch would then end with
            # 1, not the program's status, and skip the step summary and `--on-exit`. The writer
            # treats it as the OSError it is.
            self.quiet = True
            raise BrokenPipeError("the reader of stderr went away")

    if encodes_glyphs(sys.stderr):
        return _OnStderr(stderr=True, **console_settings())
    return _OnStderr(file=_GlyphsInAscii(sys.stderr), **console_settings())


def write_out(text: str) -> bool:
    """Write a command's output to stdout (glyphs as it can show them); False when the reader went
    away (a closed pipe), which is no error of the command's."""
    try:
        sys.stdout.write(for_stream(text, sys.stdout))
        sys.stdout.flush()
    except (OSError, ValueError):
        return False
    return True


def print_error(message: str) -> None:
    """One line on stderr, recognisably trainwatch's own."""
    print_line(f"trainwatch: error: {message}")


def print_warning(message: str) -> None:
    """One line on stderr for something that went wrong beside the run, never with it."""
    print_line(f"trainwatch: warning: {message}")


def print_line(text: str) -> None:
    """Write one of trainwatch's own lines to stderr; a closed stderr is not worth a traceback."""
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
