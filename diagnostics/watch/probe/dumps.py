"""Tracebacks the probe receives as text: faulthandler dumps, and the worker traceback torch
forwards in a message.

Two texts need parsing on the parent side. faulthandler (fatal signals, requested stack dumps)
writes from a signal
handler without the GIL, so it can only write text; and torch's DataLoader sends a failed worker's
exception to the
main process as a formatted traceback inside the message of the exception it re-raises there
(`ExceptionWrapper`
in torch/_utils.py). Reading that message works the same under fork, spawn and forkserver, whether
or not the
worker loaded the probe, and touches nothing inside torch.
"""

from __future__ import annotations

import linecache
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainwatch.diagnostics.evidence import Frame, RaisedException

# faulthandler's own words for the signals it handles (Modules/faulthandler.c,
# `faulthandler_handlers`).
FATAL_SIGNALS = {
    "Segmentation fault": "SIGSEGV",
    "Bus error": "SIGBUS",
    "Floating point exception": "SIGFPE",
    "Aborted": "SIGABRT",
    "Illegal instruction": "SIGILL",
}

_FATAL = re.compile(r"^Fatal Python error: (?P<what>.+)$", re.M)
_THREAD = re.compile(
    r"^(?P<current>Current thread|Thread) (?P<id>0x[0-9a-fA-F]+) \(most recent call first\):$"
)
_DUMP_FRAME = re.compile(r'^  File "(?P<file>.*)", line (?P<line>\d+|\?+) in (?P<function>.*)$')

# torch/_utils.py ExceptionWrapper.reraise: f"Caught {type.__name__} {where}.\nOriginal {formatted
# traceback}".
WORKER_WRAPPER = re.compile(
    r"^Caught (?P<type>\S+) in DataLoader worker process (?P<worker>\d+)\.\n"
    r"Original (?P<tb>Traceback \(most recent call last\):\n.*)",
    re.S,
)
_TB_HEADER = "Traceback (most recent call last):"
_TB_FRAME = re.compile(r'^  File "(?P<file>.*)", line (?P<line>\d+), in (?P<function>.*)$')
_CARETS = re.compile(r"^\s*[\^~]+\s*$")  # 3.11's position markers under a source line
_SEPARATORS = {
    "The above exception was the direct cause of the following exception:": "cause",
    "During handling of the above exception, another exception occurred:": "context",
}


@dataclass(frozen=True)
class ThreadStack:
    """One thread's stack as faulthandler dumped it, outermost call first."""

    thread_id: int
    current: bool  # the thread that ran the signal handler: the crashing one, for a fatal signal
    main: bool  # the process's main thread (known from the handshake)
    frames: tuple[Frame, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "thread_id": hex(self.thread_id),
            "current": self.current,
            "main": self.main,
            "frames": [f.to_dict() for f in self.frames],
        }


def is_user_path(path: str, library_dirs: Sequence[str]) -> bool:
    """Is a traceback's file the user's own code, rather than the standard library's or an installed
    package's?"""
    if path.startswith("<"):
        return path in (
            "<string>",
            "<stdin>",
        )  # `python -c` and piped code are the user's; <frozen ...> is not
    normal = os.path.normpath(path)
    parts = normal.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    if "trainwatch-probe-" in normal and os.path.basename(normal) == "sitecustomize.py":
        return False
    for lib in library_dirs:
        lib = os.path.normpath(lib)
        if normal == lib or normal.startswith(lib + os.sep):
            return False
    return True


def _source_line(path: str, line: int) -> str | None:
    """The source line, read now: faulthandler cannot read files from a signal handler."""
    if line <= 0 or path.startswith("<"):
        return None
    try:
        return linecache.getline(path, line).strip() or None
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def parse_dump(
    text: str, library_dirs: Sequence[str] = (), main_thread: int | None = None
) -> tuple[ThreadStack, ...]:
    """Parse faulthandler's "Thread 0x... (most recent call first):" blocks into stacks, outermost
    call first."""
    threads: list[ThreadStack] = []
    current: dict[str, Any] | None = None

    def close() -> None:
        if current is not None:
            frames = tuple(reversed(current["frames"]))
            threads.append(
                ThreadStack(current["id"], current["current"], current["id"] == main_thread, frames)
            )

    for raw in text.splitlines():
        header = _THREAD.match(raw)
        if header:
            close()
            current = {
                "id": int(header["id"], 16),
                "current": header["current"] == "Current thread",
                "frames": [],
            }
            continue
        frame = _DUMP_FRAME.match(raw)
        if frame and current is not None:
            path = frame["file"]
            line = int(frame["line"]) if frame["line"].isdigit() else 0
            current["frames"].append(
                Frame(
                    path,
                    line,
                    frame["function"],
                    _source_line(path, line),
                    is_user_path(path, library_dirs),
                )
            )
    close()
    return tuple(threads)


def split_fatal(text: str) -> tuple[str, str | None, str]:
    """Split a process's faulthandler file into (stack dumps before, fatal description or None,
    fatal dump)."""
    matches = list(_FATAL.finditer(text))
    found = matches[-1] if matches else None
    if found is None:
        return text, None, ""
    return text[: found.start()], found["what"].strip(), text[found.end() :]


def fatal_signal_name(description: str) -> str:
    """faulthandler's description ("Segmentation fault") as a signal name ("SIGSEGV"); unknown ones
    are kept."""
    return FATAL_SIGNALS.get(description, description)


def parse_traceback_text(
    text: str, library_dirs: Sequence[str] = ()
) -> tuple[RaisedException, ...]:
    """Parse Python's printed traceback (with its chain) into exceptions, first raised first.

    Handles the "direct cause" and "During handling" separators and 3.11's caret lines. An exception
    line that
    spans several lines (a multi-line message) keeps its continuation lines up to the next
    separator.
    """
    chain: list[dict[str, Any]] = []
    entry: dict[str, Any] | None = None
    state = "idle"  # idle -> frames -> message
    for raw in text.splitlines():
        if raw.startswith(_TB_HEADER) or raw.endswith(_TB_HEADER):
            entry = {"frames": [], "type": None, "message": [], "relation": None}
            chain.append(entry)
            state = "frames"
            continue
        stripped = raw.strip()
        if stripped in _SEPARATORS:
            if chain:
                chain[-1]["relation"] = _SEPARATORS[stripped]
            state = "idle"
            continue
        if entry is None or state == "idle":
            continue
        if state == "frames":
            frame = _TB_FRAME.match(raw)
            if frame:
                entry["frames"].append([frame["file"], int(frame["line"]), frame["function"], None])
            elif raw.startswith("    ") and entry["frames"]:
                if not _CARETS.match(raw) and entry["frames"][-1][3] is None:
                    entry["frames"][-1][3] = stripped or None
            elif raw.startswith("  ") and not raw.startswith("  File"):
                continue  # "  [Previous line repeated 996 more times]"
            elif raw:
                kind, sep, message = raw.partition(": ")
                entry["type"] = kind.strip()
                entry["message"] = [message] if sep else []
                state = "message"
            continue
        entry["message"].append(raw)
    out = []
    for item in chain:
        if item["type"] is None:
            continue
        frames = tuple(
            Frame(f, n, fn, code, is_user_path(f, library_dirs))
            for f, n, fn, code in item["frames"]
        )
        message = "\n".join(item["message"]).rstrip()
        out.append(RaisedException(item["type"], message, frames, item["relation"]))
    if out:  # the last one relates to nothing after it
        last = out[-1]
        out[-1] = RaisedException(last.type, last.message, last.frames, None)
    return tuple(out)


def parse_worker_wrapper(
    message: str, library_dirs: Sequence[str] = ()
) -> tuple[int, tuple[RaisedException, ...]] | None:
    """(worker number, the worker's original chain) from a DataLoader re-raise message, or None if
    it is not one."""
    found = WORKER_WRAPPER.match(message)
    if found is None:
        return None
    chain = parse_traceback_text(found["tb"], library_dirs)
    if not chain:
        return None
    return int(found["worker"]), chain
