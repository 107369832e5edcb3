"""Tracebacks the probe receives as text, read by the one traceback parser (read/tracebacks.py):
faulthandler's dumps, and the traceback torch forwards from a DataLoader worker or a spawned
process.

faulthandler (fatal signals, requested stack dumps) writes from a signal handler without the GIL,
so it can only write text; torch's DataLoader sends a failed worker's exception to the main process
as a formatted traceback inside the message of the exception it re-raises there (`ExceptionWrapper`
in torch/_utils.py). Reading that message works the same under fork, spawn and forkserver, whether
or not the worker loaded the probe, and touches nothing inside torch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from trainwatch.diagnostics.evidence import LogLine, RaisedException
from trainwatch.diagnostics.read.frames import ThreadStack, source_line
from trainwatch.diagnostics.read.tracebacks import BlockReader

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
# torch/_utils.py ExceptionWrapper.reraise: f"Caught {type.__name__} {where}.\nOriginal {formatted
# traceback}".
WORKER_WRAPPER = re.compile(
    r"^Caught (?P<type>\S+) in DataLoader worker process (?P<worker>\d+)\.\n"
    r"Original (?P<tb>Traceback \(most recent call last\):\n.*)",
    re.S,
)


def _read(text: str, library_dirs: Sequence[str]) -> BlockReader:
    reader = BlockReader(library_dirs=library_dirs)
    for number, raw in enumerate(text.splitlines(), 1):
        line = LogLine(number, raw)
        if not reader.advance(line, None):
            reader.start(line, None)
    reader.close_all()
    return reader


def parse_dump(
    text: str, library_dirs: Sequence[str] = (), main_thread: int | None = None
) -> tuple[ThreadStack, ...]:
    """faulthandler's "Thread 0x... (most recent call first):" blocks as stacks, outermost call
    first, each frame with its source line read now."""
    stacks = []
    for _, threads in _read(text, library_dirs).dumps:
        for current, thread_id, frames in threads:
            outermost_first = tuple(
                replace(f, code=source_line(f.file, f.line)) for f in reversed(frames)
            )
            stacks.append(
                ThreadStack(thread_id, current, thread_id == main_thread, outermost_first)
            )
    return tuple(stacks)


def split_fatal(text: str) -> tuple[str, str | None, str]:
    """Split a process's faulthandler file into (stack dumps before, fatal description or None,
    fatal dump)."""
    matches = list(_FATAL.finditer(text))
    if not matches:
        return text, None, ""
    found = matches[-1]
    return text[: found.start()], found["what"].strip(), text[found.end() :]


def fatal_signal_name(description: str) -> str:
    """faulthandler's description ("Segmentation fault") as a signal name ("SIGSEGV"); unknown ones
    are kept."""
    return FATAL_SIGNALS.get(description, description)


def parse_traceback_text(
    text: str, library_dirs: Sequence[str] = ()
) -> tuple[RaisedException, ...]:
    """Python's printed traceback (with its chain) as exceptions, first raised first."""
    reader = _read(text, library_dirs)
    chains = list(reader.chains_first) + list(reader.chains_last)
    return chains[0].exceptions if chains else ()


# torch.multiprocessing.spawn's ProcessRaisedException (torch/multiprocessing/spawn.py): "\n\n--
# Process 1 terminated with the following error:\n" and the spawned process's formatted traceback.
SPAWN_WRAPPER = re.compile(
    r"^\s*-- Process (?P<process>\d+) terminated with the following error:\n"
    r"(?P<tb>Traceback \(most recent call last\):\n.*)",
    re.S,
)


def parse_spawn_wrapper(
    message: str, library_dirs: Sequence[str] = ()
) -> tuple[int, tuple[RaisedException, ...]] | None:
    """(process index, the spawned process's own chain) from the message of the exception
    `torch.multiprocessing.spawn` raises in the parent for a process that failed, or None."""
    return _wrapped(SPAWN_WRAPPER, "process", message, library_dirs)


def parse_worker_wrapper(
    message: str, library_dirs: Sequence[str] = ()
) -> tuple[int, tuple[RaisedException, ...]] | None:
    """(worker number, the worker's original chain) from a DataLoader re-raise message, or None if
    it is not one."""
    return _wrapped(WORKER_WRAPPER, "worker", message, library_dirs)


def _wrapped(
    pattern: re.Pattern[str], number: str, message: str, library_dirs: Sequence[str]
) -> tuple[int, tuple[RaisedException, ...]] | None:
    """(the number `pattern` names in its group `number`, the chain of its `tb` group) from a
    re-raise's message, or None when it is not one or holds no traceback."""
    found = pattern.match(message)
    if found is None:
        return None
    chain = parse_traceback_text(found["tb"], library_dirs)
    return (int(found[number]), chain) if chain else None
