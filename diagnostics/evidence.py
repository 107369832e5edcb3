"""The facts a diagnosis rests on: exit status, raised exceptions, log lines, and the bundle of all
of them.

Every stage after collection reads an `Evidence`; nothing downstream goes back to the process or
the file. The facts of one source (the probe, the memory sampler, the log parser, the progress
tracker) are defined in the module that collects them and gathered here, so that `run` and
`explain` hand the classifier the same shape.
"""

from __future__ import annotations

import signal as _signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the collecting modules import this one; only type checkers need the reverse
    from trainwatch.diagnostics.read.capture import Capture
    from trainwatch.diagnostics.read.logparse import LogFacts
    from trainwatch.diagnostics.read.progress import ProgressFacts, StallFacts
    from trainwatch.diagnostics.watch.alerts import NanStop
    from trainwatch.diagnostics.watch.monitor import MemoryFacts
    from trainwatch.diagnostics.watch.probe.records import ProbeFacts


@dataclass(frozen=True)
class ExitStatus:
    """How the child ended, and the status trainwatch passes on."""

    code: int | None  # the exit code when it exited on its own
    signal: str | None  # the signal's name ("SIGKILL") when a signal ended it
    # what trainwatch exits with: the code, or 128 + the signal number, as a shell reports it
    status: int

    @classmethod
    def from_returncode(cls, returncode: int) -> ExitStatus:
        """Build from `subprocess`'s convention, where -N means killed by signal N."""
        if returncode < 0:
            number = -returncode
            return cls(code=None, signal=signal_name(number), status=128 + number)
        return cls(code=returncode, signal=None, status=returncode)

    @property
    def signal_number(self) -> int | None:
        if self.signal is None:
            return None
        try:
            return int(getattr(_signal, self.signal))
        except AttributeError:
            return None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "signal": self.signal, "status": self.status}


def ended_by_signal(exit: ExitStatus | None, forwarded: Sequence[str]) -> bool:
    """Did a signal end the run: it was killed by one, or trainwatch relayed one to it while it
    ran (`forwarded`, their names)?"""
    return (exit is not None and exit.signal is not None) or bool(forwarded)


# The statuses a parent passes on for a program stopped from outside: coreutils' timeout(1) exits
# 124 when its limit stopped the program, and a shell exits 128+N for a child that signal N ended
# (SIGHUP, SIGINT, SIGKILL, SIGTERM). A script's `timeout 20 python train.py` that stopped a
# stuck trainer ends with 124, no signal of its own (a real run read as a time limit, not a hang).
REPORTED_STOPS = frozenset({124} | {128 + n for n in (1, 2, 9, 15)})


def stopped_from_outside(exit: ExitStatus | None, forwarded: Sequence[str]) -> bool:
    """Was the run stopped from outside: ended by a signal, or ending with the status a time limiter
    or a shell passes on for a stopped program (REPORTED_STOPS)?"""
    return ended_by_signal(exit, forwarded) or (exit is not None and exit.code in REPORTED_STOPS)


def signal_name(number: int) -> str:
    """`9` -> `"SIGKILL"`; a number with no name on this platform keeps its number (`"SIG64"`)."""
    try:
        return _signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


# The longest text of a log line or a source line kept as evidence: a report cites it whole, and a
# line of megabytes (a progress bar never ended, a dumped tensor) would bury the report
CITED_CHARS = 300

# The type multiprocessing.pool and concurrent.futures give a worker process's exception when they
# re-raise it in the parent: no frames of its own, the worker's traceback as its message
REMOTE_TRACEBACK = "RemoteTraceback"

# A frame's function when its traceback does not name one: the place a SyntaxError names (`File
# "x.py", line 2`, no function), a frame cut short
UNKNOWN_FUNCTION = "?"


@dataclass(frozen=True)
class Frame:
    """One stack frame of a traceback."""

    file: str
    line: int
    function: str
    code: str | None  # the source line, stripped, when known
    user: bool  # the user's own code, as opposed to a library's or the standard library's

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "function": self.function,
            "code": self.code,
            "user": self.user,
        }


def deepest_user_frame(frames: tuple[Frame, ...]) -> Frame | None:
    """The innermost frame of the user's own code: where a failure points, never inside a
    library.
    """
    for frame in reversed(frames):
        if frame.user:
            return frame
    return None


@dataclass(frozen=True)
class RaisedException:
    """One exception of a chain: its qualified type, message and frames (outermost call first)."""

    type: str  # qualified: "PIL.UnidentifiedImageError", "torch.OutOfMemoryError", "RuntimeError"
    message: str
    frames: tuple[Frame, ...] = ()
    # How the *next* exception in the chain relates to this one: "cause" ("The above exception was
    # the direct cause ..."), "context" ("During handling of the above exception ..."), or None for
    # the last one.
    relation: str | None = None

    @property
    def short_type(self) -> str:
        return self.type.rsplit(".", 1)[-1]

    def deepest_user_frame(self) -> Frame | None:
        return deepest_user_frame(self.frames)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "message": self.message,
            "relation": self.relation,
            "frames": [f.to_dict() for f in self.frames],
        }


# The origin of a one-exception chain made of the error line a log without a traceback ends on
# (read/tracebacks.py `closing_error`): cited as a line, weighed as one, never reported as raised.
ERROR_LINE = "error-line"


@dataclass(frozen=True)
class ExceptionChain:
    """An uncaught exception with everything chained to it, first raised first, as Python prints
    them.
    """

    exceptions: tuple[RaisedException, ...]
    # "probe" (recorded inside the process), "log" (a traceback parsed from text), or ERROR_LINE
    origin: str
    pid: int | None = None
    rank: int | None = None  # torchrun/DeepSpeed rank, when known
    thread: str | None = None  # thread name when it was not the main thread
    line: int | None = None  # 1-based line in the log where the traceback starts (log origin)
    # Where those lines are: "log" (a saved file), "stdout" or "stderr" (a live run).
    stream: str = "log"
    capture: Capture | None = None  # what the capturing tool wrote before its first line

    @property
    def is_error_line(self) -> bool:
        """A log's closing error line in its program's own words, not an exception raised."""
        return self.origin == ERROR_LINE

    @property
    def where(self) -> str:
        """Where the report says it was seen: `stderr line 40`, `line 812 (rank 1, 12:00:03)`,
        `probe pid 4242 (thread t1)`."""
        if self.origin == "probe":
            place = f"probe pid {self.pid}" if self.pid is not None else "probe"
            place += f" (thread {self.thread})" if self.thread else ""
        elif self.line:
            place = (
                f"line {self.line}" if self.stream == "log" else f"{self.stream} line {self.line}"
            )
        else:
            place = self.origin
        said = [f"rank {self.rank}"] if self.rank is not None else []
        if self.capture is not None:
            said += [p for p in self.capture.describe().split(", ") if p and p not in said]
        return place + (f" ({', '.join(said)})" if said else "")

    @property
    def final(self) -> RaisedException:
        """The exception that ended the process (printed last)."""
        return self.exceptions[-1]

    @property
    def first(self) -> RaisedException:
        """The exception raised first (printed first): usually the initiating one."""
        return self.exceptions[0]


@dataclass(frozen=True)
class LogLine:
    """One line of the child's output or of a saved log, with where it stands."""

    number: int  # 1-based line number in the log, or in the captured output of a run
    text: str  # without the line ending; once read: colour codes and the capture prefix taken off
    stream: str = "log"  # "stdout", "stderr", or "log" for a saved file
    capture: Capture | None = None  # what the capturing tool wrote before it (rank, pid, time)

    @property
    def whole(self) -> str:
        """The line as it was written, capture prefix included."""
        return self.text if self.capture is None else self.capture.prefix + self.text

    @property
    def where(self) -> str:
        """`line 812`, `stderr line 40`, `line 812 (rank 1, 12:00:03)`."""
        place = (
            f"line {self.number}" if self.stream == "log" else f"{self.stream} line {self.number}"
        )
        said = self.capture.describe() if self.capture is not None else ""
        return f"{place} ({said})" if said else place


@dataclass(frozen=True)
class OwnModule:
    """A module the run could not import that the program has as its own file or package (read at
    the end of a live run: watch/own_modules.py)."""

    name: str  # "utils"
    path: str  # where the program has it: "/proj/utils"
    importer: str  # the folder of the file that imported it: "/proj/tools"
    # the program's file shadows an installed package of that name (a name asked of it is
    # missing), rather than being off the import path
    shadows: bool = False


@dataclass(frozen=True)
class OwnFunction:
    """A function whose call did not fit its signature that the program defines itself (read at
    the end of a live run: watch/own_functions.py)."""

    name: str  # "train_step"
    path: str  # the file that defines it
    line: int  # the line of its `def`


@dataclass(frozen=True)
class Evidence:
    """Everything known about one run, from whichever sources were available."""

    source: str  # "run" (a live run) or "log" (a saved log)
    command: tuple[str, ...] = ()
    exit: ExitStatus | None = None
    log: LogFacts | None = None  # parsed output: the saved log, or the captured tail of a run
    probe: ProbeFacts | None = None  # records from inside the Python processes (run only)
    # process-tree and GPU samples, limits, kill counters (run only)
    memory: MemoryFacts | None = None
    progress: ProgressFacts | None = None  # where the loop was, and the losses seen
    # a run trainwatch stopped, or found stuck, for lack of progress
    stall: StallFacts | None = None
    nan_stop: NanStop | None = None  # trainwatch stopped the run for a non-finite loss (--on-nan)
    forwarded_signals: tuple[str, ...] = ()  # signals trainwatch received and relayed to the child
    # processes that outlived the command, which trainwatch stopped when it ended (run only)
    left_running: tuple[int, ...] = ()
    # modules the run could not import that the program has itself (run only)
    own_modules: tuple[OwnModule, ...] = ()
    # functions whose call did not fit their signature that the program defines (run only)
    own_functions: tuple[OwnFunction, ...] = ()
    # things the report should say about what could not be seen
    notes: tuple[str, ...] = field(default=())

    @property
    def log_chains(self) -> tuple[ExceptionChain, ...]:
        """The log's tracebacks; in a log with none, the error line it ends on, unless the run is
        known to have exited 0 (a program may print an error it recovered from)."""
        log = self.log
        if log is None:
            return ()
        return log.chains if self.exit is not None and self.exit.code == 0 else log.all_chains
