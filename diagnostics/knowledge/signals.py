"""Signals and exit statuses: the phrasings of knowledge/signals.toml, and the status arithmetic
shells and Python use (128+N, -N)."""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from trainwatch.diagnostics.evidence import signal_name

SIGNALS_FILE = Path(__file__).resolve().parent / "signals.toml"


@dataclass(frozen=True)
class ExitSaid:
    """What one line says about how a process ended."""

    signal: str | None  # "SIGKILL"
    code: int | None  # the exit status, when the line gave one
    # the line is the status of the whole program, as the tool that ran it writes it after its
    # last line (signals.toml's `whole_run`)
    whole_run: bool = False


def signal_from_code(code: int) -> str | None:
    """A shell's `128+N` or Python's `-N` exit status as a signal name, or a Windows crash status as
    the signal it stands for (signals.toml's [windows]); None for a plain code."""
    crash = _table()[2].get(code & 0xFFFFFFFF)
    if crash is not None:
        return crash
    if code < 0:
        return signal_name(-code)
    if 128 < code < 160:
        return signal_name(code - 128)
    return None


@functools.lru_cache(maxsize=1)
def _table() -> tuple[
    tuple[re.Pattern[str], ...], dict[str, str], dict[int, str], frozenset[re.Pattern[str]]
]:
    with SIGNALS_FILE.open("rb") as fh:
        data = tomllib.load(fh)
    # the words whatever their case: bash writes strsignal's "Killed", zsh its own "killed"
    words = {word.casefold(): name for word, name in data["words"].items()}
    windows = {int(status, 16): name for status, name in data["windows"].items()}
    patterns = tuple(re.compile(p["regex"]) for p in data["phrase"])
    whole = frozenset(
        c for c, p in zip(patterns, data["phrase"], strict=True) if p.get("whole_run")
    )
    return patterns, words, windows, whole


def phrases() -> tuple[re.Pattern[str], ...]:
    """The compiled phrasings (their literals join the log parser's pre-filter)."""
    return _table()[0]


def examples() -> tuple[str, ...]:
    """Each phrasing's example line (tests read them)."""
    with SIGNALS_FILE.open("rb") as fh:
        return tuple(p["example"] for p in tomllib.load(fh)["phrase"])


def read_exit(text: str) -> ExitSaid | None:
    """How a line says a process ended, or None when it says nothing of it."""
    patterns, words, _, whole = _table()
    for pattern in patterns:
        m = pattern.search(text)
        if m is None:
            continue
        for key, value in m.groupdict().items():
            if value is None:
                continue
            if key.startswith("name"):
                return ExitSaid(value.removeprefix("Signals."), None)
            if key.startswith("number"):
                return ExitSaid(signal_name(int(value)), None)
            if key.startswith("words"):
                name = words.get(value.casefold())
                return ExitSaid(name, None) if name is not None else None
            if key.startswith("code"):
                code = int(value)
                return ExitSaid(signal_from_code(code), code, pattern in whole)
    return None
