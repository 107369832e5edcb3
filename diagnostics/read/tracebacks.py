"""Traceback blocks: Python tracebacks (chained, DataLoader), IPython, rich, faulthandler dumps,
torchrun tables.

A block opens on its head line and is advanced line by line, one block per rank at a time; a
closed block becomes an `ExceptionChain`, a `FatalError` or `ChildFailure`s. The log parser
decides which lines reach it.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from trainwatch.diagnostics.evidence import (
    CITED_CHARS,
    ERROR_LINE,
    UNKNOWN_FUNCTION,
    ExceptionChain,
    Frame,
    LogLine,
    RaisedException,
)
from trainwatch.diagnostics.knowledge.signals import read_exit, signal_from_code
from trainwatch.diagnostics.read.frames import make_frame

# A framework's or tool's own error line, not a Python exception (`Error: ...`, `CUDA Error: ...`,
# `FATAL: ...`, `fatal error: ...`, glog's `Check failed: ...`, C++'s `terminate called after
# throwing an instance of 'T'` and its `what():`, `ninja: build stopped: subcommand failed.`): how
# a log that holds no traceback ends when its program failed. Looked for in its last lines only.
_ERROR_LINE = re.compile(
    # a tag and the program's or logger's names first: `(scheduler +1m) `, `ninja: `, `INFO:tf:`
    r"\s*(?:\([^()]{1,40}\)\s*)?(?:[\w.\-/]+: ?){0,3}"
    r"(?:\[(?P<tag>ERROR|FATAL|CRITICAL|Error|Fatal|Critical|E|F)\]\s*(?P<tagged>.*[A-Za-z]{2}.*)"
    r"|(?P<kind>(?:[A-Za-z]\w*\s){0,2}"
    r"(?:Error|ERROR|FATAL ERROR|FATAL|Fatal error|CRITICAL|PANIC|FAIL)"
    r"|(?:fatal )?error)(?:(?:\s[^:]{0,40})?:|\s+[-|]\s)\s*(?P<message>.*[A-Za-z]{2}.*)"
    r"|(?P<failed>.{0,100}\b(?:failed|FAILED)[.!]?)"
    # a program's own check of a path it needs, the last thing it says before it stops: `dataset
    # directory ./data not found, exiting`, `Could not find the config file configs/a.yaml`
    r"|(?P<missing>(?!.*\b(?:from scratch|default|skipping|ignor|will be|creat|download))"
    r".{0,100}(?:\b(?:not found|does ?n[o']t exist|cannot be found|could not be found)"
    r"|\b(?:[Cc]ould not|[Cc]ann?o?t|[Uu]nable to) find\b.{1,100})"
    r"[.!]?(?:,? (?:exiting|aborting|quitting|abort|stop(?:ping)?)\.*)?)\s*)$"
)
_CHECK_FAILED = re.compile(r"\b(Check failed): ")
# A C++ exception that reached the top: `terminate called after throwing an instance of 'X'` and
# `  what():  message`; or as some libraries print it (CatBoost): `uncaught exception:`, then
# `what() -> "message"` and `type -> X`.
_CPP_THROW = re.compile(
    r"terminate called after throwing an instance of '([^']+)'|^\s*(uncaught exception):\s*$"
)
_CPP_WHAT = re.compile(r"\bwhat\(\)(?::|\s*->)\s*(.+)$")
# ... or as LLVM's libc++ (macOS) prints it, on one line: `libc++abi: terminating due to uncaught
# exception of type std::runtime_error: message` (`libc++abi.dylib: terminating with ...` before).
_LIBCXX_THROW = re.compile(
    r"libc\+\+abi(?:\.dylib)?: terminating (?:due to|with) uncaught exception of type "
    r"([^\s:]+(?:::[^\s:]+)*):\s*(.*\S)"
)
# What a capture may have written before a short log's lines, where too few lines repeated it to
# be learned (read/capture.py): a time, a level tag, a rank; it holds a digit or a bracket.
_PREFIX_LIKE = re.compile(r"[\d\[\]()<>|]")
PREFIX_SKIP = 120  # how far into a line such words are looked past
# A head alone on its line, the error's message on the next: R's (reticulate, the keras and
# tensorflow packages) `Error in py_call_impl(callable, dots$args, dots$keywords) :`, a Python
# exception indented below it; LightGBM's command-line program's `Met Exceptions:` (its main.cpp
# prints it, then the exception's `what()`).
_HEAD_ALONE = re.compile(r"^\s*(?:Error in .+ :|Met Exceptions:)\s*$")
# Lua's standalone interpreter (Torch7's `luajit`, by its path or name) reports an error that
# nothing caught as `<interpreter>: <message>`, its stack traceback below (`_NATIVE_FRAME`).
_LUA_ERROR = re.compile(r"^\s*(?:\S*/)?(?:lua|luajit)(?:\d[\d.]*)?(?:\.exe)?: (?P<message>\S.*)$")
# ... or on the head's own line: `Error in py_call_impl(...) : StopIteration: image file is ...`
# (after what a capture wrote before it, in a log too short to learn that from)
_R_INLINE_HEAD = re.compile(r"(?:^|\s)Error in [^:]+? : (?=\S)")
_CLASS_REPR = re.compile(r"^<class '([\w.]+)'>,?\s*")
CLOSING_LINES = 5  # the last lines a log's closing error is looked for in
# TensorFlow's (and XLA's) status codes, as its report of several errors lists them under
# `N root error(s) found.` (`  (0) Invalid argument: ...`) and as absl prints a status
# (`RESOURCE_EXHAUSTED: ...`): the exception class each one is raised as in Python.
TF_STATUS_CLASSES = {
    "Cancelled": "CancelledError",
    "Unknown": "UnknownError",
    "Invalid argument": "InvalidArgumentError",
    "Deadline exceeded": "DeadlineExceededError",
    "Not found": "NotFoundError",
    "Already exists": "AlreadyExistsError",
    "Permission denied": "PermissionDeniedError",
    "Resource exhausted": "ResourceExhaustedError",
    "Failed precondition": "FailedPreconditionError",
    "Aborted": "AbortedError",
    "Out of range": "OutOfRangeError",
    "Unimplemented": "UnimplementedError",
    "Internal": "InternalError",
    "Unavailable": "UnavailableError",
    "Data loss": "DataLossError",
    "Unauthenticated": "UnauthenticatedError",
}
_TF_STATUS_UPPER = {name.upper().replace(" ", "_"): cls for name, cls in TF_STATUS_CLASSES.items()}
# a mixed-case status name only after its report's `(N)` (as a line's first word it may be prose);
# absl's upper-case one alone
_TF_STATUS_LINE = re.compile(
    r"\s*(?:\(\d+\)\s+(?P<named>"
    + "|".join(map(re.escape, TF_STATUS_CLASSES))
    + r")|(?P<upper>"
    + "|".join(_TF_STATUS_UPPER)
    + r")):\s*(?P<message>\S.*)$"
)
# the graph nodes TensorFlow lists under an error (`\t [[{{node IteratorGetNext}}]]`): the error's
# own lines, not the log going on after it
_TF_NODE_LINE = re.compile(r"^\s*\[\[.*\]\]\s*$")
# TensorFlow's Estimator (and TPUEstimator) logs its loop's failure as `Error recorded from
# training_loop: ...`, then `training_loop marked as finished` and `Reraising captured error`
# before the exception is raised again: the lines after the error, like its node lines, are no
# closing lines of their own. The words after what a capture wrote (glog's `W0702 ... ] `).
_TF_AFTER_ERROR = re.compile(r"(?:^|\s)(?:\w+ marked as finished|Reraising captured error)\s*$")
# A native stack trace printed under a C++ error (glog's `*** Check failure stack trace: ***` and
# its `@ 0x7f... caffe::Net<>::Init()` frames, dmlc's `Stack trace:` and `[bt] (0) ...`, c10's
# `frame #0: ...`, glibc's `libc.so.6(+0x21b97)[0x7f...]`, gdb's `#0 0x... in f ()`), and a JVM's
# or .NET's stack under its exception (`\tat org.apache.spark.ml.Predictor.fit(Predictor.scala:96)`,
# `... 48 more`, `   at Microsoft.ML.Data.EstimatorChain`1.Fit(IDataView input)`): the error's own
# lines, however many, never closing lines of their own.
_NATIVE_FRAME = re.compile(
    r"^\s*(?:@\s+(?:0x[0-9a-f]+|\(nil\))\s|\[bt\]\s*\(\d+\)|frame #\d+:|#\d+\s+0x[0-9a-f]+\s"
    # Lua's (Torch7's luajit): `stack traceback:`, then `\t[C]: in function 'v'`, `\t[C]: at
    # 0x7fa5...`, `\ttrain.lua:55: in main chunk`, `\t.../nn/THNN.lua:110: in function 'f'`, and
    # Torch7's REPL script that ran it, `\t.../trepl/scm-1/bin/th:150: in main chunk`
    r"|stack traceback:\s*$|(?:\[C\]|\S*\.lua|\S*/bin/th):(?:\d+:)? (?:in |at 0x)"
    r"|at [\w.$`<>\[\],]+\(.*\)(?:\s+in\s+\S.*)?\s*$|\.\.\. \d+ more\s*$"
    r"|\S+\.so[.\d]*\([^)]*\)\s*\[0x[0-9a-f]+\]\s*$"
    r"|\*\*\* Check failure stack trace: \*\*\*|Stack trace(?: returned \d+ entries)?:\s*$)",
    re.IGNORECASE,
)

# Tracebacks kept: the first ones (the initiating failure) and the last ones.
CHAINS_FIRST, CHAINS_LAST = 8, 24
MAX_FRAMES = 150
RICH_FOLDS = 4  # the most lines a rich box folds a frame's line over
MAX_MESSAGE_LINES = 12
MAX_TABLE_LINES = 8 * 64  # torchrun's table of up to 64 failed ranks

TRACEBACK_HEAD = "Traceback (most recent call last):"  # the line Python opens a traceback with
_TB_HEAD = re.compile(re.escape(TRACEBACK_HEAD) + r"\s*$")
# Python's words above a traceback it printed and went on from: `Exception ignored in: ...` for an
# exception in a `__del__`, a weakref callback or an atexit callback, raised while the interpreter
# shuts down or collects garbage (`ImportError: sys.meta_path is None, Python is likely shutting
# down`), and the logging module's `--- Logging error ---` above a message it could not format or
# write (a real run of the fiftieth session printed one every epoch and finished; in a crash log
# such a block is no cause of the crash). It ended nothing.
_IGNORED = re.compile(r"^(?:Exception ignored (?:in|on|while)\b|--- Logging error ---\s*$)")
_IPY_HEAD = re.compile(r"^([A-Za-z_][\w.]*)\s{2,}Traceback \(most recent call last\)")
_RICH_HEAD = re.compile(r"^\s*\u256d.*Traceback")
_ORIGINAL = re.compile(r"^\s*Original Traceback \(most recent call last\):")
# The errors Python raises when it cannot compile a file: their place is printed as a frame with no
# function, and no head line above it when it is the script itself
_COMPILE_ERRORS = frozenset(("SyntaxError", "IndentationError", "TabError"))
# (a line wrapped at a fixed width may end after `line N,`: its function on the next line; a
# paste's markup may have eaten the path's opening quote: `File /app/run.py", line 166, in main`)
_FRAME = re.compile(r'^\s*File "?(.+?)", line (\d+)(?:,(?:\s*in (.+?))?)?\s*$')
# The pid torchrun's failure table names: `exitcode  : -15 (pid: 4242)`, `Signal 15 (SIGTERM)
# received by PID 4242`.
PID_NAMED = re.compile(r"(?:\(pid: |received by PID )(\d+)")
# A frame line wrapped at a fixed width (a web UI's log view, a terminal's copy): cut anywhere,
# `  File "/home/user/lib/site-packages/mlagents/trainers/trainer_con` or `...gan.py", li`, the
# rest on the next line; or after `line 175,`, with `in _create_trainer` on the next line.
_WRAPPED_FRAME = re.compile(
    r'^\s*File "(?:[^"]*|[^"]+"(?:,(?: (?:l(?:i(?:n(?:e)?)?)?|line \d+, i(?:n)?))?)?)$'
)
_FUNCTION_BELOW = re.compile(r"^\s*in (\S+)\s*$")
# A traceback copied from a selection that began inside its first frame's path: `nerV2.py", line
# 431, in run_training` (the `  File "` and the path's start left behind).
_CUT_FRAME = re.compile(r'^(\S+\.pyx?)", line (\d+), in (\S+)\s*$')
_CAUSE = "The above exception was the direct cause of the following exception"
_CONTEXT = "During handling of the above exception, another exception occurred"
# `Type: message`; some pastes and reformatters write `Type : message`
_EXC_IN_TB = re.compile(r"^([A-Za-z_][\w.]*)(?: \(see above for traceback\))?(?: ?:\s*(.*))?$")
# A line that starts with a lower-case, undotted name, alone or before `: `: in a traceback it is
# source (`alg: PPO = make(`, `raise`), never an exception's line (`cv2.error` is dotted).
_LOWER_NAME_FIRST = re.compile(r"^[a-z_][a-z0-9_]*(?::\s|$)")
# The name of an exception's class, as a traceback's last line starts with it.
_EXCEPTION_NAME = (
    r"(?:[A-Za-z_]\w*\.)*(?:[A-Za-z_]\w*(?:Error|Exception|Exhausted|Failure|Interrupt|Exit)"
    # exception classes whose names do not say so: Python's, Paddle's, pyarrow's; and the base
    # class itself, which a program's own `raise Exception("...")` throws
    r"|Exception|Stop(?:Async)?Iteration|EnforceNotMet|ArrowInvalid)"
    # any class of a package's errors module (`neptune.exceptions.MissingApiToken`,
    # `gym.error.NameNotFound`, `torch._dynamo.exc.Unsupported`): its name need not end in Error
    r"|(?:[A-Za-z_]\w*\.)+(?:errors?|exceptions?|errors_impl|exc)\.[A-Z]\w*"
)
_EXC_BARE = re.compile(
    rf"^({_EXCEPTION_NAME})"
    # a paste that lost the space after the colon still opens its message with a quote
    r"(?: \(see above for traceback\))? ?:(?: +|(?=['\"]))(.+)$"
    # a traceback cut above its last line: `KeyboardInterrupt` says it all without a message
    r"|^((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Interrupt|Exit)):?\s*$"
    # `ImportError:` alone, its message on the lines below (transformers' and bitsandbytes'
    # multi-line messages start on a line of their own)
    r"|^((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception)):\s*$"
    # the VS Code debugger's `Exception has occurred: XlaRuntimeError`, the message below it
    r"|^Exception has occurred: ((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)\s*$"
)
# What a runtime writes before an exception that nothing caught: .NET's `Unhandled exception. ` (and
# the .NET Framework's `Unhandled Exception: `), the JVM's `Exception in thread "main" `.
_RUNTIME_HEAD = re.compile(r'^(?:Unhandled [Ee]xception[.:] +|Exception in thread "[^"]*" +)')
# A frame's `raise ValueError("...")`: a traceback pasted up to its last frame names its exception
# there (and its message, when the statement holds it as one plain string).
_RAISE = re.compile(
    r"^raise\s+(?P<type>(?:[A-Za-z_]\w*\.)*[A-Z]\w*)"
    # the call may go on past the line (`raise ValueError('...',` or a message split in two)
    r"(?:\(\s*(?P<q>['\"])(?P<message>[^'\"\\{}]*)(?P=q)\s*(?:\)|,|$))?"
)
# An exception written into another's message as Python's repr() writes it, on the line after the
# message's first: Hydra raises `InstantiationException(f"Error in call to target '...':\n{e!r}")`
# from the error of the call it made (a Trainer given an argument the installed release no longer
# takes). Only there: deeper in a message, such a line may belong to what the message quotes (a
# source listing, a log), next to an exception whose own type says more.
_QUOTED_EXCEPTION = re.compile(
    r"[^\n]*\n(?P<type>(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception))"
    r"\((?P<q>['\"])(?P<message>.*)(?P=q)\)$",
    re.MULTILINE,
)
# A caught exception a program printed as Python's repr() writes it, alone on its line (after a
# capture's prefix or a progress bar's frame), or as the one item of a printed tuple or list:
# `ValueError('bad value')`, `(FileNotFoundError(2, 'No such file or directory'),)`. Its
# arguments as written: one quoted string is the message; an OSError's `(errno, 'text')` reads
# `[Errno N] text`, as str() writes it.
_EXC_REPR = re.compile(
    rf"(?P<wrap>[(\[])?(?P<type>{_EXCEPTION_NAME})"
    # what repr() writes inside: nothing, or values (a string, a number, a tuple, a nested repr);
    # not Ray's `RayTaskError(NameError): message`, whose parentheses hold a type's name
    r"\((?P<args>(?:['\"\d(\[{-]|[A-Za-z_][\w.]*\().*)?\)(?(wrap),?[)\]])\s*$"
)
# A line's last word before such a repr when it is source or prose: `raise `, `err = `, `got `
_SOURCE_WORD_LAST = re.compile(r"\b[a-z_][a-z0-9_]*\s*[=(]?\s*$")
_REPR_STRING = re.compile(r"^(?P<q>['\"])(?P<text>.*)(?P=q),?$")
_REPR_ERRNO = re.compile(r"^(?P<errno>\d+), (?P<q>['\"])(?P<text>.*)(?P=q)$")
# Python's escapes in a string as repr() writes it, or as a field stores it: `\n`, `\\`, `\"`
_REPR_ESCAPES = re.compile(r"\\([\\'\"nt])")
_ESCAPED_CHARACTERS = {"n": "\n", "t": "\t"}  # the others stand for themselves
# not CUDA's `device-side assert triggered` seen past a prefix: words, not a Python expression
_ASSERT = re.compile(r"^\s*assert\s+(?!triggered\b|failed\b)\S")
# A log level in capitals opens a record too (`ERROR: job failed`, logging's `WARNING:root:`,
# `[ERROR]`): a real run's shell trap printed `ERROR: ... common causes: CUDA out of memory` under
# an IndexError, read as the exception's message and so as an out-of-memory error.
_NEW_RECORD = re.compile(
    r"^\[?\d{4}[-/]\d\d[-/]\d\d|^\d\d/\d\d/\d{4}|^[IWEF]\d{4} |\d+%\||^\s*\d+/\d+ \[|"
    r"^\s*(?:[Ee]poch|EPOCH|[Ss]tep|[Ii]ter)\b|\b[Ll]oss\b\W{0,3}[:=]?\s*[-\d.na]|"
    r"^\[?(?:ERROR|WARNING|WARN|INFO|DEBUG|CRITICAL|FATAL)(?:\]|:)"
)
# What a tool writes under an uncaught exception, which is not the message's: PyCharm's debugger
# writes `python-BaseException` below every exception it lets through.
_TOOL_AFTER_EXCEPTION = re.compile(r"^python-BaseException\s*$")
# Messages in paragraphs, set apart by blank lines, whose first line only announces the rest:
# Keras 3's call errors (the cause below, then `Arguments received by X.call():` closing it),
# TensorFlow's graph errors (the node's stack of `File` lines, then the cause, then `[[{{node
# ...}}]]`) and its tf.function errors (`in user code:`, the user's frames, then the exception
# raised in them). A blank line ends no such message (a real TF run's dtype error read as its
# header).
# PaddlePaddle's native errors are one too: an empty first line, blank lines and dashes, then
# `C++ Traceback (most recent call last):`, its numbered C++ frames, and `Error Message Summary:`
# over the error itself.
_PARAGRAPHED = re.compile(
    r"^(?:Exception encountered when calling |Graph execution error:|in user code:\s*$"
    r"|C\+\+ Traceback \(most recent call last\):)"
)
_CPP_TRACEBACK = re.compile(r"^C\+\+ Traceback \(most recent call last\):\s*$")
_DASHES = re.compile(r"^-{8,}\s*$")
_CPP_FRAME = re.compile(r"^\s*\d+\s{2,}\S")  # `0   matmul_ad_func(paddle::Tensor const&, ...)`
# Blank and dashed lines held under an empty message while a C++ traceback may follow.
MAX_HELD_UNDER_EMPTY = 4
_PARAGRAPHS_END = re.compile(r"^Arguments received by ")
_GRAPH_NODE = re.compile(r"\[\[\{\{node |\[Op:")
MAX_PARAGRAPHED_LINES = 24  # kept of such a message (its stack's `File` lines are left out)
_SKIP_IN_TB = re.compile(r"^\s*[\^~\s]+$|^\s*\[Previous line repeated|^\s*\.\.\.|^\s*\+[-=]|^\s*\|")
# IPython/Jupyter.
_IPY_CELL = re.compile(r"^Cell In ?\[(\d*)\], line (\d+)")
_IPY_FILE = re.compile(r"^File (.+?):(\d+)(?:, in (.+?))?\s*$")
# Colab links each file: `[/usr/lib/python3/x.py](https://localhost:8080/#) in f(a, b)`.
_IPY_OLD = re.compile(
    r"^\[?(<ipython-input-[^>]+>|[^\s\]]+\.py)(?:\]\(\S*\))? in (<[^>]+>|\S+?)(?:\(.*)?$"
)
# VS Code's notebooks copy an error as JSON: `"name": "ValueError",`, `"message": "...`, then
# `"stack": "` and the IPython traceback (or the start of it).
_JSON_NAME = re.compile(
    r'^\s*"name": "((?:[A-Za-z_]\w*\.)*\w*'
    r'(?:Error|Exception|Interrupt|Exit|Exhausted|Failure))",\s*$'
)
_JSON_MESSAGE = re.compile(r'^\s*"message": "(.*?)(?:",)?\s*$')
_JSON_STACK = re.compile(r'^\s*"stack": "')
_IPY_ARROW = re.compile(r"^-*> ?(\d+)\s?(.*)$")
# A line of the source IPython shows under a frame: its number (after an arrow on the failing one).
_IPY_SOURCE = re.compile(r"^\s*(?:-*>\s*)?\d+(?:\s|$)")
# rich.traceback boxes.
_RICH_FRAME = re.compile(r"^\s*\u2502\s*(.+?):(\d+) in (\S+?)\s*\u2502\s*$")
# the line that raised: `❱ 40 │   │   main()`, or without a guide when it is not indented
# (`❱  9 load(10)`); the guides that draw its indentation are no part of the source
_RICH_CODE = re.compile(r"\u2771\s*(\d+)\s(?:\s*\u2502)*\s*(.*?)\s*\u2502\s*$")
# a box line of the traceback: what it holds between its borders
_RICH_INSIDE = re.compile(r"^\u2502(.*?)\u2502\s*$")
_RICH_SOURCE = re.compile(r"^\s*(?:\u2771\s*)?\d+(?:\s|$)")
# faulthandler.
_FATAL = re.compile(r"^Fatal Python error: (.+)$")
_THREAD = re.compile(
    r"^(Current thread|Thread|Stack) ?(0x[0-9a-fA-F]+)?.*\(most recent call first\):"
)
_FAULT_FRAME = re.compile(r'^\s+File "(.+?)", line (\d+|\?+) in (.+)$')
# torch.distributed.elastic's ChildFailedError table.
_CHILD_START = re.compile(r"^(?:Root Cause \(first observed failure\)|Failures):")
_CHILD_ENTRY = re.compile(r"^\s*\[(\d+)\]:\s*$")
_CHILD_FIELD = re.compile(r"^\s+(time|host|rank|exitcode|error_file|traceback)\s*:\s*(.*)$")


@dataclass(frozen=True)
class ChildFailure:
    """One entry of torchrun's ChildFailedError table."""

    index: int
    rank: int | None
    exitcode: int | None
    signal: str | None
    error_file: str | None  # None when the table says `<N/A>`
    traceback: str | None
    line: LogLine
    pid: int | None = None  # `exitcode  : -15 (pid: 4242)`


@dataclass(frozen=True)
class FatalError:
    """A faulthandler dump: `Fatal Python error: ...` and the crashing thread's frames, outermost
    first.
    """

    message: str
    frames: tuple[Frame, ...]
    line: LogLine


@dataclass
class _Exc:
    type: str
    lines: list[str]
    frames: list[Frame]


@dataclass
class _Block:
    """A traceback (or dump, or table) being read for one rank."""

    kind: str  # "tb", "msg", "after", "ipy", "rich", "rich-end", "fault", "child"
    start: LogLine
    rank: int | str | None  # the writer it belongs to: a rank, "pid N", or None
    frames: list[Frame] = field(default_factory=list)
    done: list[RaisedException] = field(default_factory=list)  # finished exceptions of the chain
    current: _Exc | None = None
    relation: str | None = None  # how the next exception relates to the last finished one
    # a DataLoader wrapper waiting for its worker's exception
    wrapper: RaisedException | None = None
    junk: int = 0
    blanks: int = 0
    ipy_type: str | None = None
    fatal: str = ""
    # (the crashing/current thread?, its id, its frames innermost first), as faulthandler wrote them
    threads: list[tuple[bool, int, list[Frame]]] = field(default_factory=list)
    children: list[dict] = field(default_factory=list)
    # a bare `Name:` line opened it, its message below: a torchrun table there is a table (inside a
    # traceback, the table stays the ChildFailedError's message, as the rank judges read it)
    message_below: bool = False
    frame_indent: int = 0  # how far the last `File "..."` line was indented
    cut_frame: str | None = None  # a frame line a wrap cut in two, waiting for its rest
    headless: bool = False  # an IPython traceback pasted from its first frame on
    # opened on a frame line with no function: the place a SyntaxError names, which Python prints
    # with no head line above it when the script itself does not compile
    compile_site: bool = False
    # a blank line under a message whose last line announced more (`WeightsUnpickler error:`)
    held_blank: bool = False
    paragraph_blanks: int = 0  # blank lines in a row inside a paragraphed message (_PARAGRAPHED)
    # a rich box: the column its border starts at (RichHandler draws it in the message column,
    # after the time and level), and, once closed, its width, at which rich wrapped the message
    box_indent: int = 0
    box_width: int = 0
    rich_pieces: list[str] = field(default_factory=list)  # a frame's line rich folded, so far
    ignored: bool = False  # Python ignored it (a `__del__`'s, an atexit callback's): no failure


class BlockReader:
    """The blocks open per rank, and what the closed ones yielded (bounded: the first and last
    chains).
    """

    def __init__(
        self,
        note: Callable[[LogLine], None] = lambda line: None,
        note_if_matches: Callable[[LogLine], None] = lambda line: None,
        library_dirs: Sequence[str] = (),
    ) -> None:
        self._note = note  # a line worth citing
        self._note_if_matches = note_if_matches  # a line worth citing if a signature matches it
        self.library_dirs = library_dirs  # a process's own library directories (the probe's)
        # Every faulthandler dump closed: (its fatal error or "", its threads).
        self.dumps: list[tuple[str, list[tuple[bool, int, list[Frame]]]]] = []
        self.open: dict[int | None, _Block] = {}
        self.chains_first: list[ExceptionChain] = []
        self.chains_last: deque[ExceptionChain] = deque(maxlen=CHAINS_LAST)
        # the tracebacks Python printed and ignored (`Exception ignored in: ...`)
        self.ignored: list[ExceptionChain] = []
        self.dropped = 0
        self.children: list[ChildFailure] = []
        self.fatals: list[FatalError] = []
        # rank -> the line of a head alone (R's `Error in ... :`)
        self._heads_alone: dict[int | str | None, int] = {}
        # rank -> the line of Python's `Exception ignored in: ...`, which the ignored traceback
        # follows
        self._ignored_at: dict[int | str | None, int] = {}

    def _frame(self, file: str, line: str, function: str) -> Frame:
        number = int(line) if line.isdigit() else 0  # faulthandler writes `???` when it cannot tell
        return make_frame(file, number, function, self.library_dirs)

    def note_ignored(self, line: LogLine, rank: int | str | None) -> None:
        """Python's `Exception ignored in: ...` or logging's `--- Logging error ---` (_IGNORED): the
        traceback on the next line ended nothing."""
        if _IGNORED.match(line.text):
            self._ignored_at[rank] = line.number

    def in_table(self) -> bool:
        """A ChildFailedError table is open: its `[0]:` lines are entries, not rank prefixes."""
        table = self.open.get(None)
        return table is not None and table.kind == "child"

    def advance(self, line: LogLine, rank: int | str | None) -> bool:
        """Feed the line to the rank's open block; False when there is none or the line ends it
        unused.
        """
        block = self.open.get(rank)
        if block is not None and self._ignored_at.get(rank) == line.number:
            self._close(block)  # Python's word for another exception: no line of this one's message
            return False
        return block is not None and self._continue(block, line)

    def start(self, line: LogLine, rank: int | str | None) -> bool:
        """Open a block if the line is the head of one; True when it was."""
        text = line.text
        head = _TB_HEAD.search(text)
        if head and not _ORIGINAL.match(text):
            if text[: head.start()].strip():  # what the head is glued to (a `^C` echo, a bar)
                self._note_if_matches(line)
            ignored = self._ignored_at.pop(rank, None) == line.number - 1
            self.open[rank] = _Block("tb", line, rank, ignored=ignored)
            return True
        m = _IPY_HEAD.match(text)
        if m:
            self.open[rank] = _Block("ipy", line, rank, ipy_type=m.group(1))
            return True
        if _RICH_HEAD.match(text):
            indent = len(text) - len(text.lstrip())
            self.open[rank] = _Block("rich", line, rank, box_indent=indent, blanks=1)
            return True
        m = _FATAL.match(text)
        if m:
            self._note(line)
            self.open[rank] = _Block("fault", line, rank, fatal=m.group(1).strip())
            return True
        m = _THREAD.match(text)
        if m:  # a stack dump asked for (a signal, faulthandler.dump_traceback): no fatal error
            self.open[rank] = _Block("fault", line, rank)
            return self._continue_fault(self.open[rank], line)
        if _CHILD_START.match(text):
            self.open[rank] = _Block("child", line, rank)
            return True
        m = _JSON_NAME.match(text)
        if m:
            self.open[rank] = _Block("json", line, rank, ipy_type=m.group(1))
            return True
        m = _FRAME.match(text)
        # a traceback pasted without its head line: it starts at a frame (its function maybe
        # wrapped onto the next line)
        if m and (m.group(3) or text.rstrip().endswith(",")):
            self.open[rank] = _Block("tb", line, rank)
            return self._continue(self.open[rank], line)
        if m:
            self.open[rank] = _Block("tb", line, rank, compile_site=True)
            return self._continue(self.open[rank], line)
        if _WRAPPED_FRAME.match(text):  # a pasted traceback's first frame, wrapped: its rest below
            self.open[rank] = _Block("tb", line, rank, cut_frame=text)
            return True
        m = _CUT_FRAME.match(text)
        if m:
            block = self.open[rank] = _Block("tb", line, rank)
            block.frames.append(self._frame(m.group(1), m.group(2), m.group(3)))
            return True
        if _headless_ipython(text):
            # an IPython traceback pasted without its head line: it starts at a frame, and is
            # one only if the next line is the frame's source
            self.open[rank] = _Block("ipy", line, rank, headless=True)
            return self._continue_ipy(self.open[rank], line)
        return False

    def start_bare(self, line: LogLine, rank: int | str | None) -> None:
        """A bare `SomeError: message` line (no traceback above it) opens a message-only block."""
        text = line.text
        if self._heads_alone.pop(rank, None) == line.number - 1:
            text = text.strip()  # the exception R's reticulate indents under its own head
        inline = _r_inline_head(text)
        head = None if inline else _RUNTIME_HEAD.match(text)
        if inline or head:
            m = _EXC_BARE.match(text[(inline or head).end() :])
        else:
            m = _after_prefix(_EXC_BARE, text)
        if m:
            below = m.group(4) or m.group(5)
            block = _Block("msg", line, rank, message_below=below is not None)
            block.current = _Exc(m.group(1) or m.group(3) or below, [m.group(2) or ""], [])
            self.open[rank] = block
        elif (printed := _printed_repr(text)) is not None:
            block = _Block("msg", line, rank)
            block.current = _Exc(printed[0], [printed[1]], [])
            self.open[rank] = block
        elif _HEAD_ALONE.match(text):
            self._heads_alone[rank] = line.number

    def close_all(self) -> None:
        """Close the open blocks as they stand (the log ended)."""
        for block in list(self.open.values()):
            self._close(block)

    def _continue(self, b: _Block, line: LogLine) -> bool:
        """Advance the block with this line; False hands the line back to the idle parser."""
        text = line.text
        kind = b.kind
        if kind == "tb":
            if b.cut_frame is not None:
                joined, b.cut_frame = b.cut_frame + text, None
                if _FRAME.match(joined):
                    text = joined
                elif not b.frames and joined.startswith(b.start.text):
                    self._close(b)  # opened on a line that only looked like a cut frame
                    return False
            elif _WRAPPED_FRAME.match(text):
                b.cut_frame = text
                return True
            m = _FUNCTION_BELOW.match(text)
            if m and b.frames and b.frames[-1].function == "?":
                f = b.frames[-1]
                b.frames[-1] = replace(self._frame(f.file, str(f.line), m.group(1)), code=f.code)
                return True
            m = _FRAME.match(text)
            if m:
                if len(b.frames) < MAX_FRAMES:
                    # a paste that lost its line breaks glues the source line to its frame:
                    # a function's name has no space (`<module>`, `forward`), so one ends there
                    function, _, code = (m.group(3) or UNKNOWN_FUNCTION).partition(" ")
                    frame = self._frame(m.group(1), m.group(2), function)
                    if code.strip():
                        frame = replace(frame, code=code.strip()[:CITED_CHARS])
                    b.frames.append(frame)
                b.frame_indent = len(text) - len(text.lstrip())
                return True
            indent = len(text) - len(text.lstrip())
            if (
                indent
                and (indent <= b.frame_indent or (b.frames and b.frames[-1].code is not None))
                and _EXC_BARE.match(text.lstrip())
            ):
                # a code line is indented deeper than its frame: a traceback pasted indented
                # (quoted in an issue, nested in a list) has its exception at the frames' depth;
                # one pasted with its last line indented as source has it under a frame that
                # already shows its source line (a frame shows one)
                text = text.lstrip()
            elif text.startswith((" ", "\t")) or not text:
                if (
                    text.strip()
                    and b.frames
                    and b.frames[-1].code is None
                    and not _SKIP_IN_TB.match(text)
                ):
                    f = b.frames[-1]
                    b.frames[-1] = replace(f, code=text.strip()[:CITED_CHARS])
                return True
            if (
                b.frame_indent == 0
                and b.frames
                and b.frames[-1].code is None
                and _LOWER_NAME_FIRST.match(text)
            ):
                # a traceback pasted without its indentation: the frame's source line, which an
                # annotated assignment (`alg: PPO = make(`) or a bare `raise` would pass for the
                # exception's line; no exception class has a name in lower case alone
                b.frames[-1] = replace(b.frames[-1], code=text.strip()[:CITED_CHARS])
                return True
            m = _EXC_IN_TB.match(text)
            if b.compile_site and not (m and m.group(1) in _COMPILE_ERRORS):
                # not the error its place promised: the first line only looked like a frame
                b.frames.clear()
                self._close(b)
                return False
            if m and not _TB_HEAD.search(text):
                b.current = _Exc(m.group(1), [m.group(2) or ""], b.frames)
                b.frames = []
                b.kind = "msg"
                self._note_if_matches(line)
                return True
            if b.frame_indent == 0 and b.frames and b.frames[-1].code is None and text.strip():
                # without its indentation, whatever follows a frame and is no exception's line is
                # that frame's source (`MODEL_CLASSES = list(MAPPING.keys())`)
                b.frames[-1] = replace(b.frames[-1], code=text.strip()[:CITED_CHARS])
                return True
            b.junk += 1
            if b.junk > 20:
                self._close(b)
                return False
            return True
        if kind == "msg":
            # a DataLoader worker's own traceback inside the wrapper's message
            if _ORIGINAL.match(text):
                b.wrapper = self._freeze(b.current, None)
                b.current, b.frames, b.kind = None, [], "tb"
                return True
            if not "".join(b.current.lines).strip(" -\t"):
                held = self._under_an_empty_message(b, line, text)
                if held is not None:
                    return held
            if not text.strip() and not b.held_blank and b.current.lines[-1].rstrip().endswith(":"):
                # a message that ends announcing what follows goes on past one blank line: torch's
                # weights_only refusal names its cause there (`Unsupported operand 118`)
                b.held_blank = True
                return True
            if b.held_blank and (not text.strip() or _CAUSE in text or _CONTEXT in text):
                self._end_exception(b)
                b.kind, b.blanks, b.held_blank = "after", 1, False
                return self._continue(b, line)
            b.held_blank = False
            if _PARAGRAPHED.match(b.current.lines[0]) and not _TB_HEAD.search(text):
                return self._paragraphed(b, line, text)
            if not text.strip() or _TOOL_AFTER_EXCEPTION.match(text):
                self._end_exception(b)
                b.kind, b.blanks = "after", 0
                return True
            if (
                _TB_HEAD.search(text)
                or _NEW_RECORD.search(text)
                or _IPY_HEAD.match(text)
                or (b.message_below and _CHILD_START.match(text))
                or len(b.current.lines) >= _most_message_lines(b.current.type)
            ):
                self._end_exception(b)
                self._close(b)
                return False
            if b.box_width:
                if not self._rich_message_goes_on(b, text):
                    self._end_exception(b)
                    self._close(b)
                    return False
                self._note_if_matches(line)
                return True
            b.current.lines.append(text)
            self._note_if_matches(line)
            if text.startswith("=") and _table_ends(b.current):
                self._end_exception(b)  # torchrun's table closed: what follows is other output
                b.kind, b.blanks = "after", 0
            return True
        if kind == "after":
            if not text.strip():
                b.blanks += 1
                if b.blanks > 3:
                    self._close(b)
                return True
            if _CAUSE in text or _CONTEXT in text:
                if b.done:
                    d = b.done[-1]
                    b.done[-1] = RaisedException(
                        d.type, d.message, d.frames, "cause" if _CAUSE in text else "context"
                    )
                return True
            if _TB_HEAD.search(text) and b.done and b.done[-1].relation is not None:
                b.kind, b.frames, b.junk = "tb", [], 0
                return True
            m = _IPY_HEAD.match(text)
            if m and b.done and b.done[-1].relation is not None:
                b.kind, b.frames, b.ipy_type = "ipy", [], m.group(1)
                return True
            self._close(b)
            return False
        if kind == "ipy":
            return self._continue_ipy(b, line)
        if kind == "json":
            return self._continue_json(b, line)
        if kind in ("rich", "rich-end"):
            return self._continue_rich(b, line)
        if kind == "fault":
            return self._continue_fault(b, line)
        if kind == "child":
            return self._continue_child(b, line)
        return False

    def _continue_ipy(self, b: _Block, line: LogLine) -> bool:
        text = line.text
        if b.headless and len(b.frames) == 1 and b.frames[0].code is None:
            if not text.strip():
                return True
            if not _IPY_SOURCE.match(text):  # a path-like line that was no frame after all
                self._close(b)
                return False
        m = _IPY_CELL.match(text)
        if m:
            b.frames.append(Frame(f"Cell In[{m.group(1)}]", int(m.group(2)), "<cell>", None, True))
            return True
        m = _IPY_FILE.match(text)
        if m:
            b.frames.append(self._frame(m.group(1), m.group(2), m.group(3) or UNKNOWN_FUNCTION))
            return True
        m = _IPY_OLD.match(text)
        if m:
            b.frames.append(self._frame(m.group(1), "0", m.group(2)))
            return True
        m = _IPY_ARROW.match(text)
        if m and b.frames:
            f = b.frames[-1]
            b.frames[-1] = Frame(
                f.file,
                f.line or int(m.group(1)),
                f.function,
                m.group(2).strip()[:CITED_CHARS],
                f.user,
            )
            return True
        m = _EXC_IN_TB.match(text)
        if m and not text.startswith(" ") and (m.group(2) is not None or m.group(1) == b.ipy_type):
            b.current = _Exc(m.group(1), [m.group(2) or ""], b.frames)
            b.frames, b.kind = [], "msg"
            self._note_if_matches(line)
            return True
        return True

    def _continue_json(self, b: _Block, line: LogLine) -> bool:
        """VS Code's copy of an error: the message, then the stack as IPython printed it."""
        text = line.text
        if _JSON_STACK.match(text):
            b.kind = "ipy"  # the traceback's own last line, when it is there, replaces the message
            return True
        if b.current is None:
            m = _JSON_MESSAGE.match(text)
            if m is None:
                self._close(b)
                return False
            b.current = _Exc(b.ipy_type or "Exception", [m.group(1)], [])
            self._note_if_matches(line)
            return True
        if len(b.current.lines) < MAX_MESSAGE_LINES:
            b.current.lines.append(text.removesuffix('",'))
        return True

    def _under_an_empty_message(self, b: _Block, line: LogLine, text: str) -> bool | None:
        """A line under an exception whose message is still empty: PaddlePaddle's C++ traceback
        opens a paragraphed message (after the blank and dashed lines held above it), and
        another line after held ones is read as a blank line would have left it. None: the usual
        reading (the first line below an empty message may be its message)."""
        if _CPP_TRACEBACK.match(text):
            b.current.lines = [text.strip()]
            return True
        if (not text.strip() or _DASHES.match(text)) and len(
            b.current.lines
        ) < MAX_HELD_UNDER_EMPTY:
            b.current.lines.append(text.strip())
            return True
        if len(b.current.lines) == 1:
            return None
        b.current.lines = [""]
        self._end_exception(b)
        b.kind, b.blanks = "after", 0
        return self._continue(b, line)

    def _paragraphed(self, b: _Block, line: LogLine, text: str) -> bool:
        """A line of a message in paragraphs (_PARAGRAPHED): one blank line goes on, two end it,
        as its closing line does; a stack's `File` lines are passed over."""
        if not text.strip():
            b.paragraph_blanks += 1
            if b.paragraph_blanks >= 2:
                self._end_exception(b)
                b.kind, b.blanks, b.paragraph_blanks = "after", 2, 0
            return True
        b.paragraph_blanks = 0
        if _PARAGRAPHS_END.match(text):
            self._end_exception(b)
            b.kind, b.blanks = "after", 0
            return True
        if (_FRAME.match(text) or _CPP_FRAME.match(text) or _DASHES.match(text)) and (
            b.junk < MAX_PARAGRAPHED_LINES * 4
        ):
            b.junk += 1  # (counted: a message's stack, not the rest of the output)
            return True
        if len(b.current.lines) >= MAX_PARAGRAPHED_LINES:
            # no closing line came: what follows is the program's output, read as such
            self._end_exception(b)
            self._close(b)
            return False
        b.current.lines.append(text)
        self._note_if_matches(line)
        if _GRAPH_NODE.search(text):
            self._end_exception(b)
            b.kind, b.blanks = "after", 0
        return True

    def _continue_rich(self, b: _Block, line: LogLine) -> bool:
        text = _unindented(line.text, b.box_indent)
        if b.kind == "rich":
            if text.lstrip().startswith("\u2570"):
                b.kind = "rich-end"
                b.box_width = len(text.rstrip())
                return True
            inside = _RICH_INSIDE.match(text.lstrip())
            content = inside.group(1).strip() if inside else ""
            if not content:
                b.blanks, b.rich_pieces = 1, []
                return True
            frame = self._rich_frame(b, content)
            if frame is not None:
                b.frames.append(frame)
                return True
            m = _RICH_CODE.search(text)
            if m and b.frames and b.frames[-1].code is None:
                f = b.frames[-1]
                b.frames[-1] = replace(f, code=m.group(2).strip()[:CITED_CHARS])
            b.blanks = 0
            return True
        if not text.strip():
            return True
        m = _EXC_IN_TB.match(text)
        if m:
            b.current = _Exc(m.group(1), [(m.group(2) or "").rstrip()], b.frames)
            b.frames, b.kind = [], "msg"
            self._note_if_matches(line)
            return True
        self._close(b)
        return False

    def _rich_frame(self, b: _Block, content: str) -> Frame | None:
        """The frame a box line names (`path:line in function`), read whole when rich folded a
        long path over up to RICH_FOLDS lines: a frame's line comes after a blank one, and its
        pieces are glued where rich cut a word and spaced where it cut at a space
        (`.../site-packag`, `es/torch/nn/modules/module.py:1778 in`, `_wrapped_call_impl`)."""
        pieces = [*b.rich_pieces, content]
        for joined in _rejoined(pieces):
            m = _RICH_FRAME.match(f"\u2502 {joined} \u2502")
            if m:
                b.rich_pieces, b.blanks = [], 0
                return self._frame(m.group(1), m.group(2), m.group(3))
        if (
            (b.blanks or b.rich_pieces)
            and len(pieces) < RICH_FOLDS
            and not _RICH_SOURCE.match(content)
        ):
            b.rich_pieces = pieces  # a frame's line not yet whole; its rest comes next
        else:
            b.rich_pieces = []
        b.blanks = 0
        return None

    def _rich_message_goes_on(self, b: _Block, text: str) -> bool:
        """Add a line under a rich box's exception to its message, rejoining what rich wrapped at
        the box's width (a line ends short of it only where the message had a line break);
        False when the line is no part of it (it starts left of the box: the next record)."""
        if b.box_indent and text[: b.box_indent].strip():
            return False
        piece = _unindented(text, b.box_indent).rstrip()
        last = b.current.lines[-1]
        shown = len(last) + (len(b.current.type) + 2 if len(b.current.lines) == 1 else 0)
        if last and shown + 1 + len(piece.split(" ", 1)[0]) > b.box_width:
            b.current.lines[-1] = f"{last} {piece.lstrip()}"
        else:
            b.current.lines.append(piece)
        return True

    def _continue_fault(self, b: _Block, line: LogLine) -> bool:
        text = line.text
        m = _THREAD.match(text)
        if m:
            b.threads.append((m.group(1) == "Current thread", int(m.group(2) or "0", 16), []))
            return True
        m = _FAULT_FRAME.match(text)
        if m and b.threads:
            if len(b.threads[-1][2]) < MAX_FRAMES:
                b.threads[-1][2].append(self._frame(m.group(1), m.group(2), m.group(3)))
            return True
        if not text.strip() or text.startswith(" "):
            return True
        self._close(b)
        return False

    def _continue_child(self, b: _Block, line: LogLine) -> bool:
        text = line.text
        m = _CHILD_ENTRY.match(text)
        if m:
            b.children.append({"index": int(m.group(1)), "line": line})
            return True
        m = _CHILD_FIELD.match(text)
        if m and b.children:
            b.children[-1][m.group(1)] = m.group(2).strip()
            return True
        if text.startswith("=") or len(b.children) > 64:
            self._close(b)
            return True
        return True

    # ---- closing blocks --------------------------------------------------------------------------
    def _end_exception(self, b: _Block) -> None:
        if b.current is None:
            return
        exc = self._freeze(b.current, b.relation)
        b.current = None
        if _holds_table(exc.type):
            # inside a traceback the table is the message: its entries are the failures too
            self.children.extend(_child_failure(e) for e in _table_in_message(exc.message, b.start))
            del self.children[:-64]
        quoted = _quoted_exception(exc.message)
        if quoted is not None:  # the error it quotes came first, and caused it
            b.done.append(quoted)
        if b.wrapper is not None:  # worker's exception first: it caused the wrapper's
            b.done.append(RaisedException(exc.type, exc.message, exc.frames, "cause"))
            b.done.append(b.wrapper)
            b.wrapper = None
        else:
            b.done.append(exc)

    def _close(self, b: _Block) -> None:
        self.open.pop(b.rank, None)
        if b.kind == "fault":
            self.dumps.append((b.fatal, b.threads))
            del self.dumps[:-8]
            if not b.fatal:
                return  # a requested dump: stacks, not a failure
            current = next((f for is_current, _, f in b.threads if is_current), None)
            frames = current if current is not None else (b.threads[0][2] if b.threads else [])
            self.fatals.append(FatalError(b.fatal, tuple(reversed(frames)), b.start))
            del self.fatals[:-8]
            return
        if b.kind == "child":
            for entry in b.children:
                self.children.append(_child_failure(entry))
            del self.children[:-64]
            return
        if b.kind == "tb" and b.current is None and b.frames:
            raised = _RAISE.match(b.frames[-1].code or "")
            if raised is not None:  # cut after its last frame: the `raise` names the exception
                b.current = _Exc(raised.group("type"), [raised.group("message") or ""], b.frames)
        if b.kind == "ipy" and b.ipy_type:
            # cut before its last line (a pasted top, a truncated cell): the head named the type
            if b.current is None:
                b.current = _Exc(b.ipy_type, [""], b.frames)
            elif not b.current.frames:
                b.current.frames = b.frames
        self._end_exception(b)
        if b.wrapper is not None:
            b.done.append(b.wrapper)
        if not b.done:
            return
        chain = ExceptionChain(
            tuple(b.done),
            origin="log",
            rank=b.rank if isinstance(b.rank, int) else None,  # a pid keeps blocks apart, no more
            line=b.start.number,
            stream=b.start.stream,
            capture=b.start.capture,
        )
        if b.ignored:
            # read only where nothing else failed (its CUDA error may be all a log shows)
            if len(self.ignored) < CHAINS_FIRST:
                self.ignored.append(chain)
            return
        if len(self.chains_first) < CHAINS_FIRST:
            self.chains_first.append(chain)
        else:
            if len(self.chains_last) == CHAINS_LAST:
                self.dropped += 1
            self.chains_last.append(chain)

    def _freeze(self, exc: _Exc, relation: str | None) -> RaisedException:
        message = "\n".join(exc.lines).strip()
        frames = (
            exc.frames
            if len(exc.frames) <= MAX_FRAMES
            else exc.frames[:10] + exc.frames[-(MAX_FRAMES - 10) :]
        )
        return RaisedException(exc.type, message[:4000], tuple(frames), relation)


def _quoted_exception(message: str) -> RaisedException | None:
    """The exception a message quotes as its repr on its second line, as one raised before it."""
    m = _QUOTED_EXCEPTION.match(message)
    if m is None:
        return None
    return RaisedException(m.group("type"), _unescaped(m.group("message")), (), "cause")


def _rejoined(pieces: list[str]):
    """The ways a line folded into these pieces may have read: each fold glued or spaced."""
    for spaces in itertools.product(("", " "), repeat=len(pieces) - 1):
        yield pieces[0] + "".join(
            gap + piece for gap, piece in zip(spaces, pieces[1:], strict=True)
        )


def _unindented(text: str, indent: int) -> str:
    """The line without the first `indent` columns, when they are blank."""
    return text[indent:] if indent and not text[:indent].strip() else text


def _printed_repr(text: str) -> tuple[str, str] | None:
    """The type and message of an exception printed as its repr (_EXC_REPR), alone on the line but
    for what a capture or a progress bar wrote before it; None for a repr inside a sentence."""
    if not text.rstrip().endswith((")", "]")):  # a repr ends so: most lines are done here
        return None
    for start in (m.start() for m in re.finditer(r"(?:^|(?<=[\s\]|:]))[(\[]?[A-Za-z_]", text)):
        before = text[:start]
        # after a word of source or prose (`raise ValueError(...)`, `got error(...)`): no print
        if before and (not _prefix_like(before) or _SOURCE_WORD_LAST.search(before)):
            continue
        m = _EXC_REPR.match(text, start)
        if m is None:
            continue
        args = (m.group("args") or "").strip()
        quoted = _REPR_STRING.match(args)
        errno = _REPR_ERRNO.match(args)
        if quoted:
            message = _unescaped(quoted.group("text"))
        elif errno:
            message = f"[Errno {errno.group('errno')}] {_unescaped(errno.group('text'))}"
        else:
            message = args
        return m.group("type"), message
    return None


def _unescaped(text: str) -> str:
    """The text an escaped string holds (see _REPR_ESCAPES)."""
    return _REPR_ESCAPES.sub(lambda e: _ESCAPED_CHARACTERS.get(e.group(1), e.group(1)), text)


def _holds_table(exception_type: str) -> bool:
    """Is this the exception whose message is torchrun's failure table (ChildFailedError)?"""
    return exception_type.endswith("ChildFailedError")


def _table_ends(exc: _Exc) -> bool:
    """Is the line just added to a ChildFailedError's message the rule under torchrun's table (a
    rule after the table's sections began)?"""
    return _holds_table(exc.type) and any(
        line.startswith(("Failures:", "Root Cause")) for line in exc.lines
    )


def _most_message_lines(exception_type: str) -> int:
    """How many lines an exception's message may run to: torchrun's table, a ChildFailedError's
    message, has one entry of 7 lines for every failed rank."""
    return MAX_TABLE_LINES if _holds_table(exception_type) else MAX_MESSAGE_LINES


def _table_in_message(message: str, line: LogLine) -> list[dict]:
    """torchrun's failure table as a ChildFailedError's message holds it: its entries, the root
    cause's index 0 and the others' 1, 2 ... (their `[N]:` lines were read as rank tags and taken
    off the message, so an entry starts at its first field or at a field it already has)."""
    entries: list[dict] = []
    section, others = None, 0
    for text in message.splitlines():
        if text.startswith("Root Cause"):
            section = "root"
            continue
        if text.startswith("Failures:"):
            section = "others"
            continue
        m = _CHILD_FIELD.match(text)
        if m is None or section is None:
            continue
        field, value = m.group(1), m.group(2).strip()
        if not entries or entries[-1]["section"] != section or field in entries[-1]:
            others += section == "others"
            index = 0 if section == "root" else others
            entries.append({"index": index, "line": line, "section": section})
        entries[-1][field] = value
    return entries


def _child_failure(entry: dict) -> ChildFailure:
    exitcode = _int(entry.get("exitcode"))
    rank = _int(entry.get("rank"))
    error_file = entry.get("error_file")
    if error_file in (None, "<N/A>", "N/A", ""):
        error_file = None
    tb = entry.get("traceback")
    sig = signal_from_code(exitcode) if exitcode is not None else None
    said = read_exit(tb or "")  # `Signal 9 (SIGKILL) received by PID 4242`
    if said is not None and said.signal:
        sig = said.signal
    pid = PID_NAMED.search(entry.get("exitcode") or "")
    return ChildFailure(
        entry["index"],
        rank,
        exitcode,
        sig,
        error_file,
        tb,
        entry["line"],
        pid=int(pid.group(1)) if pid else None,
    )


def _int(text: str | None) -> int | None:
    m = re.match(r"\s*(-?\d+)", text or "")
    return int(m.group(1)) if m else None


def is_whole_frame(text: str) -> bool:
    """Is the line a traceback frame's whole line, its function's name and all?"""
    m = _FRAME.match(text)
    return m is not None and m.group(3) is not None


def is_frame_line(text: str) -> bool:
    """Is this a traceback's frame line alone (`  File "x.py", line 3, in f`), not one that a
    paste glued to the rest of its traceback (a function's name has no space)?"""
    m = _FRAME.match(text)
    return m is not None and " " not in (m.group(3) or "")


def is_ipython_frame(text: str) -> bool:
    """Is this IPython's line of a frame (`File /x/y.py:522, in f()`), above its numbered source?"""
    return _IPY_FILE.match(text) is not None and ", in " in text


def is_ipython_source(text: str) -> bool:
    """Is this a numbered line of the source IPython shows under a frame (`    518  "text"`)?"""
    return _IPY_SOURCE.match(text) is not None or text.strip().startswith("(...)")


def cut_traceback(tail: Sequence[LogLine]) -> tuple[tuple[Frame, ...], LogLine | None]:
    """The frames a log ends on, each with its source line, with no exception line after them (a
    traceback cut short: a paste, a tail, a buffer never flushed), outermost first, and the
    innermost frame's line; ((), None) when the log does not end so (two frames at least, or one
    under its `Traceback` head). `tail` is read as the parser reads (prefixes off)."""
    lines = [line for line in tail if line.text.strip()]
    start = len(lines)
    while start > 0:
        if is_frame_line(lines[start - 1].text):
            start -= 1
        elif (
            start >= 2
            and is_frame_line(lines[start - 2].text)
            # indented, but for the last line (a capture's prefix may take its indentation off)
            # and a line between two frames (a page's copy that trimmed every line)
            and (
                lines[start - 1].text[:1].isspace()
                or start == len(lines)
                or is_frame_line(lines[start].text)
            )
        ):
            start -= 2  # a frame and its source line
        else:
            break
    frames = _frames_from([line.text for line in lines[start:]])
    innermost = next((line for line in reversed(lines[start:]) if _FRAME.match(line.text)), None)
    headed = start > 0 and bool(_TB_HEAD.search(lines[start - 1].text))
    if len(frames) >= 2 or (frames and headed):
        return frames, innermost
    return (), None


def frames_under(lines: Sequence[LogLine], heading: str, limit: int) -> tuple[Frame, ...]:
    """The frames, each with its source line, that a framework prints under a heading of its own
    (anomaly mode's `Traceback of forward call that caused the error:`, Dynamo's `from user
    code:`), outermost first; () when the lines hold no such heading. `limit`: lines read after
    it."""
    texts = [line.text for line in lines]
    start = next((i for i, text in enumerate(texts) if heading in text), None)
    return () if start is None else _frames_from(texts[start + 1 : start + 1 + limit])


def _frames_from(texts: Sequence[str]) -> tuple[Frame, ...]:
    """Frame lines and the source line under each, until a line that is neither: a caret line or
    a blank one under a frame's source is passed over, and the first other line ends them."""
    frames: list[Frame] = []
    for text in texts:
        m = _FRAME.match(text)
        if m:
            frames.append(make_frame(m.group(1), int(m.group(2)), m.group(3) or UNKNOWN_FUNCTION))
        elif frames and frames[-1].code is None:
            frames[-1] = replace(frames[-1], code=text.strip()[:CITED_CHARS])
        elif text.strip() and not text.startswith("    "):
            break
    return tuple(frames)


def closing_error(ending: Sequence[LogLine]) -> ExceptionChain | None:
    """The error a log without a traceback ends on, in its program's own words, as a one-exception
    chain (origin ERROR_LINE) whose message is the line as written: the last error line of the
    closing lines first, the earlier ones after it, so that what matches messages reads them
    all."""
    found: list[tuple[str, str, LogLine]] = []
    thrown: str | None = None
    raised: str | None = None  # the type of the `raise X(...)` (or `assert ...`) line just above
    statement = ""  # that line, the message of a bare exception line under an `assert`
    head_alone = False
    # the lines TensorFlow wrote under its error, and a native stack trace, are no closing lines
    nodes = 0
    while nodes < len(ending) and (
        _TF_NODE_LINE.match(ending[-1 - nodes].text)
        or _TF_AFTER_ERROR.search(ending[-1 - nodes].text)
        or _NATIVE_FRAME.match(ending[-1 - nodes].text)
    ):
        nodes += 1
    for line in ending[-CLOSING_LINES - nodes :]:
        text = line.text
        # the `raise`/`assert` of the line just above: this line's only (a status line or a node
        # line between them ends it too)
        pending, raised = raised, None
        if found and _TF_NODE_LINE.match(text):
            kind, said, at = found[-1]
            found[-1] = (kind, f"{said}\n{text.strip()}", at)
            continue
        status = _after_prefix(_TF_STATUS_LINE, text)
        if status:
            name = status.group("named")
            kind = TF_STATUS_CLASSES[name] if name else _TF_STATUS_UPPER[status.group("upper")]
            found.append((kind, status.group("message").strip(), line))
            continue
        # `raise Exception(f"...")`, then `Exception: ...`; `assert a == b`, then a bare
        # `AssertionError`: a name that alone would be prose is the exception the line above raised
        said = pending and _after_prefix(
            re.compile(re.escape(pending) + r"(?::\s*(.*)|\s*$)"), text.strip()
        )
        if said:
            found.append((pending, said.group(1) or statement, line))
            continue
        # before the `assert` test: a C++ message may hold the word (`device-side assert triggered`)
        m = _LIBCXX_THROW.search(text)
        if m:
            found.append((m.group(1), m.group(2), line))
            continue
        m = _CPP_THROW.search(text)
        if m:
            thrown = m.group(1) or m.group(2)
            continue
        m = _CPP_WHAT.search(text)
        if m and thrown:
            found.append((thrown, m.group(1).strip(), line))
            continue
        assertion = _after_prefix(_ASSERT, text.strip())
        if assertion:
            raised, statement = "AssertionError", assertion.string.strip()
            continue
        if head_alone and text.strip():  # R's `Error in f(...) :`, its message on the next line
            head_alone = False
            found.append(("Error", text.strip(), line))
            continue
        if _HEAD_ALONE.match(text):
            head_alone = True
            continue
        inline = _r_inline_head(text)
        if inline and not _EXC_BARE.match(text, inline.end()):  # R's own error, on its head's line
            found.append(("Error", text[inline.end() :].strip(), line))
            continue
        m = _after_prefix(_RAISE, text.strip())
        if m and m.group("message"):  # a traceback pasted down to its `raise X("...")` alone
            found.append((m.group("type"), m.group("message"), line))
            continue
        if m:
            raised, statement = m.group("type"), text.strip()
            continue
        m = _CHECK_FAILED.search(text)
        if m:
            found.append((m.group(1), text.strip(), line))
            continue
        m = _after_prefix(_LUA_ERROR, text)
        if m:
            found.append(("Error", m.group("message").strip(), line))
            continue
        if line.capture is not None and line.capture.level and text.strip():
            found.append((line.capture.level, text.strip(), line))  # an ERROR-level record
            continue
        m = _error_line(text)
        if m is None:
            continue
        if m.group("failed") or m.group("missing"):
            found.append(("failure", text.strip(), line))
            continue
        kind = (m.group("kind") or m.group("tag")).strip()
        said = _CLASS_REPR.match((m.group("message") or "").strip())
        if said:  # `Error reported to Coordinator: <class 'X'>, ...`: the exception's own type
            kind = said.group(1)
        # the whole line: what matches messages knows them as `CUDA error: ...`, not `...`
        found.append((kind, text.strip(), line))
    if raised and ending:  # a traceback pasted down to its `raise`/`assert` line, and no further
        found.append((raised, statement, ending[-1]))
    if not found:
        return None
    kind, message, last = found[-1]
    message = "\n".join([message] + [said for _, said, _ in found[:-1] if said != message])
    return ExceptionChain(
        (RaisedException(kind, message[:4000]),),
        origin=ERROR_LINE,
        rank=last.capture.rank if last.capture is not None else None,
        line=last.number,
        stream=last.stream,
        capture=last.capture,
    )


def _error_line(text: str) -> re.Match[str] | None:
    """`_ERROR_LINE` at the line's start, or after words a capture wrote before it."""
    return _after_prefix(_ERROR_LINE, text)


def _after_prefix(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """`pattern` at the line's start, or after words a capture wrote before it (a log too short
    to learn its prefix from keeps it on every line)."""
    m = pattern.match(text)
    if m is not None:
        return m
    if text[:1] == " " and text[1:2].strip():  # a paste that set each line one column in
        m = pattern.match(text[1:])
        if m is not None:
            return m
    for found in re.finditer(r"\s+", text[:PREFIX_SKIP]):
        skipped = text[: found.end()]
        if _prefix_like(skipped):
            m = pattern.match(text[found.end() :])  # a slice: `^` in the pattern holds there
            if m is not None:
                return m
    return None


def _r_inline_head(text: str) -> re.Match[str] | None:
    """R's `Error in f(...) : ` with its message on the same line, at the line's start or after
    what a capture wrote; the words in a sentence of prose are not R's head."""
    inline = _R_INLINE_HEAD.search(text)
    if inline and inline.start() and not _prefix_like(text[: inline.start() + 1]):
        return None
    return inline


def _prefix_like(skipped: str) -> bool:
    """Could these words starting a line be what a capture wrote (see _PREFIX_LIKE)?"""
    return len(skipped) <= PREFIX_SKIP and _PREFIX_LIKE.search(skipped) is not None


def _headless_ipython(text: str) -> bool:
    """Is the line the first frame of an IPython traceback whose head line was not pasted: a cell
    (`Cell In[3], line 5`), a file (`File /x/y.py:12, in f(a)`), or the older `/x/y.py in f(a)`
    with a path that has a folder in it?"""
    if _IPY_CELL.match(text) or _IPY_FILE.match(text):
        return True
    m = _IPY_OLD.match(text)
    return m is not None and (
        m.group(1).startswith("<ipython-input-") or "/" in m.group(1) or "\\" in m.group(1)
    )


# A traceback whose line breaks were lost: pasted into a page that folds a paragraph's lines into
# one (an issue written without a code block), or logged as one record by a tool that replaces them.
# Its frames still read `File "...", line N, in f` one after another, each followed by its source.
_FLAT_FRAME_START = re.compile(r'\s*(?=(?<![\w"])File "[^"\n]*", line \d+)')
_FLAT_FRAME = re.compile(r'(File "[^"\n]*", line \d+(?:, in \S+)?)\s*(.*)$')
# the same pasted without its head: the line starts with a frame that has words after it
_FLAT_HEADLESS = re.compile(r'\s*File "[^"\n]*", line \d+(?:, in \S+)?\s*\S')
_FLAT_CHAIN = re.compile(rf"\s*(?=(?:{re.escape(_CAUSE)}|{re.escape(_CONTEXT)}):)")
# The exception after the last frame's source: a name Python's exceptions have, then `:` or the
# end (a `raise ValueError(` in the source is followed by neither)
_FLAT_EXCEPTION = re.compile(rf"(?<![\w.])(?:{_EXCEPTION_NAME}|Exception)(?=:(?:\s|$)|\s*$)")


# A traceback kept as one escaped string: a service's error message (`message: "...\nTraceback (most
# recent call last):\n  File \"...`), a logger's or a tracker's field printed as it is stored. Its
# line breaks are `\n`; it ends at its string's closing quote.
_ESCAPED_HEAD = TRACEBACK_HEAD + "\\n"
_RSYSLOG_HEAD = TRACEBACK_HEAD + "#012"  # rsyslog's escape of a line feed (octal 012)
_CLOSING_QUOTE = re.compile(r'(?<!\\)"')
_ESCAPED_END = re.compile(r"(?:\\n|\s)+$")


def unflattened(text: str) -> list[str] | None:
    """The lines of a traceback folded into this one line (its breaks lost, escaped as `\\n`, or as
    rsyslog's `#012`), as Python wrote them; None when the line holds no head with a frame after it
    on the same line."""
    head = text.find(TRACEBACK_HEAD)
    if head < 0:
        return None
    if text.startswith(_RSYSLOG_HEAD, head):
        # rsyslog writes a message's line breaks as `#012`: the rest of the line is the traceback
        before = text[:head].removesuffix("#012").rstrip()
        return ([before] if before else []) + text[head:].split("#012")
    if text.startswith(_ESCAPED_HEAD, head):
        closing = _CLOSING_QUOTE.search(text, head)
        body = text[head : closing.start() if closing is not None else len(text)]
        before = _ESCAPED_END.sub("", text[:head])
        return ([before] if before else []) + _unescaped(body).split("\n")
    if _FLAT_FRAME_START.search(text, head) is None:
        return None
    lines = [text[:head].rstrip()] if text[:head].strip() else []
    for part in text[head:].split(TRACEBACK_HEAD)[1:]:
        lines.append(TRACEBACK_HEAD)
        lines += _unfolded(part)
    return lines


def unflattened_headless(text: str) -> list[str] | None:
    """The lines of a traceback pasted without its head line and folded into this one: the line
    starts with a frame and holds another after it, or the exception after the frame's source;
    None otherwise (a frame line as Python writes it holds only its frame)."""
    if _FLAT_HEADLESS.match(text) is None:
        return None
    lines = _unfolded(text)
    if sum(line.startswith("  File ") for line in lines) < 2 and not _FLAT_EXCEPTION.match(
        lines[-1]
    ):
        return None
    return lines


def _unfolded(part: str) -> list[str]:
    """The lines of one folded traceback's body (after its head), as Python wrote them."""
    lines: list[str] = []
    for piece in _FLAT_CHAIN.split(part):
        if piece.startswith((_CAUSE, _CONTEXT)):
            lines += ["", piece.strip(), ""]  # set apart by empty lines, as Python writes it
            continue
        frames = [f for f in _FLAT_FRAME_START.split(piece) if f.strip()]
        for i, frame in enumerate(frames):
            m = _FLAT_FRAME.match(frame)
            if m is None:  # words before the first frame
                lines.append(frame.strip())
                continue
            lines.append("  " + m.group(1))
            source = m.group(2).strip()
            error = _FLAT_EXCEPTION.search(source) if i == len(frames) - 1 else None
            if error is not None:
                if source[: error.start()].strip():
                    lines.append("    " + source[: error.start()].strip())
                lines.append(source[error.start() :].strip())
            elif source:
                lines.append("    " + source)
    return lines
