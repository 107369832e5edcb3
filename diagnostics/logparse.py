"""Text log -> `LogFacts`: tracebacks (chained, DataLoader, IPython, rich, faulthandler), ranks, system lines.

Streaming and bounded: `LogParser.feed()` takes one line at a time (a live run), `parse_file()` reads big binary
chunks and only hands the detailed parser the lines a cheap literal pre-filter finds (a saved log of any size).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from .evidence import ExceptionChain, Frame, LogLine, RaisedException, signal_name
from .verdict import REPORT_BANNER

TAIL_LINES = 2000  # the last lines kept verbatim
CHAINS_FIRST, CHAINS_LAST = 8, 24  # tracebacks kept: the first ones (the initiating failure) and the last ones
NOTABLE_FIRST, NOTABLE_LAST = 200, 800
HINTS_KEPT = 64
MAX_FRAMES = 150
MAX_MESSAGE_LINES = 12
MAX_LINE_CHARS = 8192  # a longer line is cut: nothing a signature needs sits that far in
MAX_LINE_BYTES = 1 << 20  # one gigantic line is read up to here, the rest skipped until its newline
CHUNK_BYTES = 1 << 20

# Words one of which every line the detailed parser needs contains. Together with the literals of the signature
# line patterns they form the pre-filter; everything else (progress bars, loss lines) is only counted.
KEYWORDS = (
    "Traceback", "Error", " error", "ERROR", "Exception", "exception", "Killed", "killed", "Fatal", "FATAL",
    "fault", "Abort", "abort", "exit", "Exit", "CANCELLED", "Evicted", "OOM", "oom-kill", 'File "', "Cell In",
    "---->", "\u256d", "FAILED", "Interrupt", "signal", "Signal", "preempt", "PREEMPT", "terminat", "NaN",
    "Root Cause", "Failures:", "Warning", "WARNING", REPORT_BANNER,
)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Za-z0-9]")
# torchrun `--tee`/`--role` prefixes and rank-tagged lines: `[rank1]:`, `[default0]:`, `[1,0]<stderr>:` (mpirun).
_RANK = re.compile(r"^\[(?:rank|default|trainer)?(\d+)\]:\s?|^\[(\d+),\d+\]<std(?:out|err)>:\s?")
_TB_HEAD = re.compile(r"Traceback \(most recent call last\):\s*$")
_IPY_HEAD = re.compile(r"^([A-Za-z_][\w.]*)\s{2,}Traceback \(most recent call last\)")
_RICH_HEAD = re.compile(r"^\s*\u256d.*Traceback")
_ORIGINAL = re.compile(r"^\s*Original Traceback \(most recent call last\):")
_FRAME = re.compile(r'^\s*File "(.+?)", line (\d+)(?:, in (.+?))?\s*$')
_CAUSE = "The above exception was the direct cause of the following exception"
_CONTEXT = "During handling of the above exception, another exception occurred"
_EXC_IN_TB = re.compile(r"^([A-Za-z_][\w.]*)(?: \(see above for traceback\))?(?::\s?(.*))?$")
_EXC_BARE = re.compile(r"^((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exhausted|Failure|Interrupt|Exit))"
                       r"(?: \(see above for traceback\))?: (.+)$")
_NEW_RECORD = re.compile(r"^\[?\d{4}[-/]\d\d[-/]\d\d|^\d\d/\d\d/\d{4}|^[IWEF]\d{4} |\d+%\||^\s*\d+/\d+ \[|"
                         r"^\s*(?:[Ee]poch|EPOCH|[Ss]tep|[Ii]ter)\b|\b[Ll]oss\b\W{0,3}[:=]?\s*[-\d.na]")
_SKIP_IN_TB = re.compile(r"^\s*[\^~\s]+$|^\s*\[Previous line repeated|^\s*\.\.\.|^\s*\+[-=]|^\s*\|")
# IPython/Jupyter.
_IPY_CELL = re.compile(r"^Cell In ?\[(\d*)\], line (\d+)")
_IPY_FILE = re.compile(r"^File (.+?):(\d+)(?:, in (.+?))?\s*$")
_IPY_OLD = re.compile(r"^(<ipython-input-[^>]+>|\S+\.py) in (\S+?)(?:\(.*)?$")
_IPY_ARROW = re.compile(r"^-*> ?(\d+)\s?(.*)$")
# rich.traceback boxes.
_RICH_FRAME = re.compile(r"^\s*\u2502\s*(.+?):(\d+) in (\S+?)\s*\u2502\s*$")
_RICH_CODE = re.compile(r"\u2771\s*(\d+)\s*\u2502\s?(.*?)\s*\u2502\s*$")
# faulthandler.
_FATAL = re.compile(r"^Fatal Python error: (.+)$")
_THREAD = re.compile(r"^(Current thread|Thread|Stack) ?(?:0x[0-9a-fA-F]+)?.*\(most recent call first\):")
_FAULT_FRAME = re.compile(r'^\s+File "(.+?)", line (\d+) in (.+)$')
# torch.distributed.elastic's ChildFailedError table.
_CHILD_START = re.compile(r"^(?:Root Cause \(first observed failure\)|Failures):")
_CHILD_ENTRY = re.compile(r"^\s*\[(\d+)\]:\s*$")
_CHILD_FIELD = re.compile(r"^\s+(time|host|rank|exitcode|error_file|traceback)\s*:\s*(.*)$")
# How a run ended, as shells, launchers and schedulers print it.
_SIGNAL_HINTS = (
    (re.compile(r"(?:^|\s|\d)Killed(?:\s*$|\s{2,}\S)"), "SIGKILL"),
    (re.compile(r"Segmentation fault"), "SIGSEGV"),
    (re.compile(r"(?:^|\s)Bus error(?: \(core dumped\))?\s*$|(?:^|\s)Bus error\s{2,}\S"), "SIGBUS"),
    (re.compile(r"(?:^|\s)Aborted(?: \(core dumped\))?(?:\s*$|\s{2,}\S)"), "SIGABRT"),
    (re.compile(r"Floating point exception"), "SIGFPE"),
)
_NAMED_SIGNAL = re.compile(r"[Ss]ignal \d+ \((SIG[A-Z0-9]+)\)|<Signals\.(SIG[A-Z0-9]+): \d+>")
_EXIT_CODE = re.compile(r"\bexit(?:ed)?(?: with)? (?:code|status)[ :=]+(-?\d+)|\bexitcode\s*:\s*(-?\d+)|"
                        r"non-zero exit status (-?\d+)|\bExit ?code:? (-?\d+)", re.IGNORECASE)
_NOT_USER = re.compile(r"site-packages|dist-packages|[/\\]lib[/\\]python\d(?:\.\d+)?[/\\]|[/\\]Lib[/\\]|^<frozen|"
                       r"^<string>|[/\\]torch[/\\](?:csrc|_C|lib)[/\\]|^\$PYTHON|^~?/?\.?local/lib/")


def is_user_file(path: str) -> bool:
    """A frame is the user's unless it lies in an installed package, the standard library, or frozen code."""
    return _NOT_USER.search(path) is None


@dataclass(frozen=True)
class ExitHint:
    """A line that says how the process (or one of its ranks) ended: `Killed`, `exit code 137`, `Segmentation ...`."""

    signal: str | None
    code: int | None
    line: LogLine


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


@dataclass(frozen=True)
class FatalError:
    """A faulthandler dump: `Fatal Python error: ...` and the crashing thread's frames, outermost first."""

    message: str
    frames: tuple[Frame, ...]
    line: LogLine


@dataclass(frozen=True)
class LogFacts:
    """What a log shows: its exceptions, the lines that matter, how it ended, and its last lines."""

    lines: int  # lines read (up to trainwatch's own report, if the log holds one)
    chains: tuple[ExceptionChain, ...] = ()  # in log order; the first and last ones when there were many
    notable: tuple[LogLine, ...] = ()  # lines a signature or a system pattern matches (bounded, deduplicated)
    tail: tuple[LogLine, ...] = ()
    exit_hints: tuple[ExitHint, ...] = ()
    child_failures: tuple[ChildFailure, ...] = ()
    fatal_errors: tuple[FatalError, ...] = ()
    dropped_chains: int = 0  # tracebacks seen but not kept (bounded memory)
    report_at: int | None = None  # the line where a trainwatch report began; nothing after it was read

    @property
    def signals(self) -> tuple[str, ...]:
        """Every signal a line says ended a process, in log order, without repeats."""
        seen: dict[str, None] = {}
        for hint in self.exit_hints:
            if hint.signal:
                seen.setdefault(hint.signal, None)
        for failure in self.child_failures:
            if failure.signal:
                seen.setdefault(failure.signal, None)
        return tuple(seen)


def signal_from_code(code: int) -> str | None:
    """A shell's `128+N` or Python's `-N` exit status as a signal name; None for a plain exit code."""
    if code < 0:
        return signal_name(-code)
    if 128 < code < 160:
        return signal_name(code - 128)
    return None


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
    rank: int | None
    frames: list[Frame] = field(default_factory=list)
    done: list[RaisedException] = field(default_factory=list)  # finished exceptions of the chain
    current: _Exc | None = None
    relation: str | None = None  # how the next exception relates to the last finished one
    wrapper: RaisedException | None = None  # a DataLoader wrapper waiting for its worker's exception
    junk: int = 0
    blanks: int = 0
    ipy_type: str | None = None
    fatal: str = ""
    threads: list[tuple[bool, list[Frame]]] = field(default_factory=list)
    children: list[dict] = field(default_factory=list)


class LogParser:
    """Fed lines in order (`feed`) or a whole file (`parse_file`); `finish()` returns the facts so far."""

    def __init__(self, knowledge=None, on_candidate: Callable[[LogLine], None] | None = None) -> None:
        if knowledge is None:
            from .signatures import default_knowledge

            knowledge = default_knowledge()
        self._line_patterns = knowledge.line_patterns
        self._knowledge = knowledge
        # The whole words, for lines fed one by one; the chunk filters of parse_stream are built when first used.
        self._prefilter = _filter(knowledge, "words", lambda words: re.compile(_trie(words)))
        self._on_candidate = on_candidate
        self._lines = 0
        self._tail: deque[LogLine] = deque(maxlen=TAIL_LINES)
        self._blocks: dict[int | None, _Block] = {}
        self._chains_first: list[ExceptionChain] = []
        self._chains_last: deque[ExceptionChain] = deque(maxlen=CHAINS_LAST)
        self._dropped = 0
        self._notable_first: list[LogLine] = []
        self._notable_last: deque[LogLine] = deque(maxlen=NOTABLE_LAST)
        self._notable_seen: set[str] = set()
        self._hints: deque[ExitHint] = deque(maxlen=HINTS_KEPT)
        self._children: list[ChildFailure] = []
        self._fatals: list[FatalError] = []
        self._report_at: int | None = None

    # ---- input ---------------------------------------------------------------------------------------------
    def feed(self, line: LogLine) -> None:
        """Take the next line of output (its text without the line ending)."""
        if self._report_at is not None:
            return
        if len(line.text) > MAX_LINE_CHARS:
            line = LogLine(line.number, line.text[:MAX_LINE_CHARS], line.stream)
        self._lines += 1
        self._tail.append(line)
        if self._blocks or self._prefilter.search(line.text):
            self._detail(line)

    def feed_text(self, text: str, stream: str = "log", first_number: int = 1) -> None:
        for i, raw in enumerate(text.splitlines()):
            self.feed(LogLine(first_number + i, raw, stream))

    def parse_stream(self, fh: BinaryIO) -> LogFacts:
        """Read a binary stream in big chunks; only lines the pre-filter picks go through the detailed parser."""
        number = 0
        carry = b""
        skipping = False  # inside a gigantic line, dropping bytes until its newline
        recent: deque[tuple[int, bytes]] = deque(maxlen=3)
        while self._report_at is None:
            data = fh.read(CHUNK_BYTES)
            if not data:
                break
            if skipping:
                nl = data.find(b"\n")
                if nl < 0:
                    continue
                data, skipping = data[nl:], False
            buf = carry + data
            cut = buf.rfind(b"\n")
            if cut < 0:
                if len(buf) > MAX_LINE_BYTES:
                    carry, skipping = buf[:MAX_LINE_BYTES], True
                else:
                    carry = buf
                continue
            block, carry = buf[: cut + 1], buf[cut + 1:]
            first = number + 1
            number, stop = self._scan(block, number)
            recent.append((first, block[:stop]))
        if carry and self._report_at is None:
            first = number + 1
            number, stop = self._scan(carry + b"\n", number)
            recent.append((first, carry[:stop]))
        self._lines = number
        self._tail.clear()
        for first, block in recent:
            for i, raw in enumerate(block.split(b"\n")[: block.count(b"\n") or 1]):
                if first + i <= number:
                    self._tail.append(LogLine(first + i, _decode(raw), "log"))
        return self.finish()

    def parse_file(self, path) -> LogFacts:
        with open(path, "rb") as fh:
            return self.parse_stream(fh)

    def _scan(self, buf: bytes, number: int) -> tuple[int, int]:
        """Run the pre-filter over a block of whole lines; returns the line count and where reading stopped."""
        pos, n = 0, len(buf)
        # Every place a piece occurs, found by one literal-prefixed regex per first byte (see _anchor_groups).
        anchors = _filter(self._knowledge, "anchors",
                          lambda words: tuple(re.compile(_trie(group)) for group in _anchor_groups(words)))
        words_bytes = _filter(self._knowledge, "words-bytes", lambda words: re.compile(_trie([w.encode() for w in words])))
        hits = sorted({m.start() for pattern in anchors for m in pattern.finditer(buf)})
        while pos < n:
            if self._blocks:
                end = buf.find(b"\n", pos)
                start = pos
            else:
                i = bisect_left(hits, pos)
                if i == len(hits):
                    number += buf.count(b"\n", pos, n)
                    return number, n
                hit = hits[i]
                start = buf.rfind(b"\n", pos, hit) + 1 or pos
                start = max(start, pos)
                number += buf.count(b"\n", pos, start)
                end = buf.find(b"\n", hit)
            if end < 0:
                end = n
            if not self._blocks and words_bytes.search(buf, start, end) is None:
                number += 1  # the piece matched, the whole word did not: an ordinary line
                pos = end + 1
                continue
            line = LogLine(number + 1, _decode(buf[start:end]), "log")
            self._detail(line)
            if self._report_at is not None:
                return number, start
            if self._on_candidate is not None:
                self._on_candidate(line)
            number += 1
            pos = end + 1
        return number, n

    # ---- the detailed parser -------------------------------------------------------------------------------
    def _detail(self, line: LogLine) -> None:
        text = line.text
        if "\x1b" in text:
            text = _ANSI.sub("", text)
        if "\r" in text:
            text = text.rstrip("\r")
            text = next((seg for seg in reversed(text.split("\r")) if seg.strip()), "")
        if REPORT_BANNER in text and ("\u2500" in text or text.strip() == REPORT_BANNER):
            self._report_at = line.number
            self._tail = deque((x for x in self._tail if x.number < line.number), maxlen=TAIL_LINES)
            return
        rank = None
        m = _RANK.match(text)
        table = self._blocks.get(None)
        if m and not (table is not None and table.kind == "child"):  # `[0]:` opens an entry of the table
            rank = int(m.group(1) or m.group(2))
            text = text[m.end():]
        clean = LogLine(line.number, text, line.stream)
        block = self._blocks.get(rank)
        if block is not None and self._continue(block, clean):
            return
        self._idle(clean, rank)

    def _idle(self, line: LogLine, rank: int | None) -> None:
        text = line.text
        if _TB_HEAD.search(text) and not _ORIGINAL.match(text):
            self._blocks[rank] = _Block("tb", line, rank)
            return
        m = _IPY_HEAD.match(text)
        if m:
            self._blocks[rank] = _Block("ipy", line, rank, ipy_type=m.group(1))
            return
        if _RICH_HEAD.match(text):
            self._blocks[rank] = _Block("rich", line, rank)
            return
        m = _FATAL.match(text)
        if m:
            self._note(line)
            self._blocks[rank] = _Block("fault", line, rank, fatal=m.group(1).strip())
            return
        if _CHILD_START.match(text):
            self._blocks[rank] = _Block("child", line, rank)
            return
        self._system(line)
        m = _EXC_BARE.match(text)
        if m:
            block = _Block("msg", line, rank)
            block.current = _Exc(m.group(1), [m.group(2)], [])
            self._blocks[rank] = block
        if any(p.search(text) for p in self._line_patterns):
            self._note(line)

    def _continue(self, b: _Block, line: LogLine) -> bool:
        """Advance the block with this line; False hands the line back to the idle parser."""
        text = line.text
        kind = b.kind
        if kind == "tb":
            m = _FRAME.match(text)
            if m:
                if len(b.frames) < MAX_FRAMES:
                    b.frames.append(_frame(m.group(1), m.group(2), m.group(3) or "?"))
                return True
            if text.startswith((" ", "\t")) or not text:
                if text.strip() and b.frames and b.frames[-1].code is None and not _SKIP_IN_TB.match(text):
                    f = b.frames[-1]
                    b.frames[-1] = Frame(f.file, f.line, f.function, text.strip()[:300], f.user)
                return True
            m = _EXC_IN_TB.match(text)
            if m and not _TB_HEAD.search(text):
                b.current = _Exc(m.group(1), [m.group(2) or ""], b.frames)
                b.frames = []
                b.kind = "msg"
                self._note_if_matches(line)
                return True
            b.junk += 1
            if b.junk > 20:
                self._close(b)
                return False
            return True
        if kind == "msg":
            if _ORIGINAL.match(text):  # a DataLoader worker's own traceback inside the wrapper's message
                b.wrapper = self._freeze(b.current, None)
                b.current, b.frames, b.kind = None, [], "tb"
                return True
            if not text.strip():
                self._end_exception(b)
                b.kind, b.blanks = "after", 0
                return True
            if (_TB_HEAD.search(text) or _NEW_RECORD.search(text) or _IPY_HEAD.match(text)
                    or len(b.current.lines) >= MAX_MESSAGE_LINES):
                self._end_exception(b)
                self._close(b)
                return False
            b.current.lines.append(text)
            self._note_if_matches(line)
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
                    b.done[-1] = RaisedException(d.type, d.message, d.frames, "cause" if _CAUSE in text else
                                                 "context")
                return True
            if _TB_HEAD.search(text) and b.done and b.done[-1].relation is not None:
                b.kind, b.frames, b.junk = "tb", [], 0
                return True
            self._close(b)
            return False
        if kind == "ipy":
            return self._continue_ipy(b, line)
        if kind in ("rich", "rich-end"):
            return self._continue_rich(b, line)
        if kind == "fault":
            return self._continue_fault(b, line)
        if kind == "child":
            return self._continue_child(b, line)
        return False

    def _continue_ipy(self, b: _Block, line: LogLine) -> bool:
        text = line.text
        m = _IPY_CELL.match(text)
        if m:
            b.frames.append(Frame(f"Cell In[{m.group(1)}]", int(m.group(2)), "<cell>", None, True))
            return True
        m = _IPY_FILE.match(text)
        if m:
            b.frames.append(_frame(m.group(1), m.group(2), m.group(3) or "?"))
            return True
        m = _IPY_OLD.match(text)
        if m:
            b.frames.append(_frame(m.group(1), "0", m.group(2)))
            return True
        m = _IPY_ARROW.match(text)
        if m and b.frames:
            f = b.frames[-1]
            b.frames[-1] = Frame(f.file, f.line or int(m.group(1)), f.function, m.group(2).strip()[:300], f.user)
            return True
        m = _EXC_IN_TB.match(text)
        if m and not text.startswith(" ") and (m.group(2) is not None or m.group(1) == b.ipy_type):
            b.current = _Exc(m.group(1), [m.group(2) or ""], b.frames)
            b.frames, b.kind = [], "msg"
            self._note_if_matches(line)
            return True
        return True

    def _continue_rich(self, b: _Block, line: LogLine) -> bool:
        text = line.text
        if b.kind == "rich":
            if text.lstrip().startswith("\u2570"):
                b.kind = "rich-end"
                return True
            m = _RICH_FRAME.match(text)
            if m:
                b.frames.append(_frame(m.group(1), m.group(2), m.group(3)))
                return True
            m = _RICH_CODE.search(text)
            if m and b.frames and b.frames[-1].code is None:
                f = b.frames[-1]
                b.frames[-1] = Frame(f.file, f.line, f.function, m.group(2).strip()[:300], f.user)
            return True
        if not text.strip():
            return True
        m = _EXC_IN_TB.match(text)
        if m:
            b.current = _Exc(m.group(1), [m.group(2) or ""], b.frames)
            b.frames, b.kind = [], "msg"
            self._note_if_matches(line)
            return True
        self._close(b)
        return False

    def _continue_fault(self, b: _Block, line: LogLine) -> bool:
        text = line.text
        m = _THREAD.match(text)
        if m:
            b.threads.append((m.group(1) == "Current thread", []))
            return True
        m = _FAULT_FRAME.match(text)
        if m and b.threads:
            if len(b.threads[-1][1]) < MAX_FRAMES:
                b.threads[-1][1].append(_frame(m.group(1), m.group(2), m.group(3)))
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

    # ---- closing blocks ------------------------------------------------------------------------------------
    def _end_exception(self, b: _Block) -> None:
        if b.current is None:
            return
        exc = self._freeze(b.current, b.relation)
        b.current = None
        if b.wrapper is not None:  # worker's exception first: it caused the wrapper's
            b.done.append(RaisedException(exc.type, exc.message, exc.frames, "cause"))
            b.done.append(b.wrapper)
            b.wrapper = None
        else:
            b.done.append(exc)

    def _close(self, b: _Block) -> None:
        self._blocks.pop(b.rank, None)
        if b.kind == "fault":
            current = next((f for is_current, f in b.threads if is_current), None)
            frames = current if current is not None else (b.threads[0][1] if b.threads else [])
            self._fatals.append(FatalError(b.fatal, tuple(reversed(frames)), b.start))
            del self._fatals[:-8]
            return
        if b.kind == "child":
            for entry in b.children:
                self._children.append(_child_failure(entry))
            del self._children[:-64]
            return
        self._end_exception(b)
        if b.wrapper is not None:
            b.done.append(b.wrapper)
        if not b.done:
            return
        chain = ExceptionChain(tuple(b.done), origin="log", rank=b.rank, line=b.start.number)
        if len(self._chains_first) < CHAINS_FIRST:
            self._chains_first.append(chain)
        else:
            if len(self._chains_last) == CHAINS_LAST:
                self._dropped += 1
            self._chains_last.append(chain)

    def _freeze(self, exc: _Exc, relation: str | None) -> RaisedException:
        message = "\n".join(exc.lines).strip()
        frames = exc.frames if len(exc.frames) <= MAX_FRAMES else exc.frames[:10] + exc.frames[-(MAX_FRAMES - 10):]
        return RaisedException(exc.type, message[:4000], tuple(frames), relation)

    # ---- lines that matter ---------------------------------------------------------------------------------
    def _system(self, line: LogLine) -> None:
        text = line.text
        hit = None
        for pattern, sig in _SIGNAL_HINTS:
            if pattern.search(text):
                hit = ExitHint(sig, None, line)
                break
        if hit is None:
            m = _NAMED_SIGNAL.search(text)
            if m:
                hit = ExitHint(m.group(1) or m.group(2), None, line)
        if hit is None:
            m = _EXIT_CODE.search(text)
            if m:
                code = int(next(g for g in m.groups() if g is not None))
                hit = ExitHint(signal_from_code(code), code, line)
        if hit is not None:
            self._hints.append(hit)
            self._note(line)

    def _note_if_matches(self, line: LogLine) -> None:
        if any(p.search(line.text) for p in self._line_patterns):
            self._note(line)

    def _note(self, line: LogLine) -> None:
        key = line.text.strip()[:300]
        if key in self._notable_seen:
            return
        if len(self._notable_seen) < 8192:
            self._notable_seen.add(key)
        if len(self._notable_first) < NOTABLE_FIRST:
            self._notable_first.append(line)
        else:
            self._notable_last.append(line)

    def finish(self) -> LogFacts:
        """The facts so far; open tracebacks are closed as they stand."""
        for block in list(self._blocks.values()):
            self._close(block)
        return LogFacts(
            lines=self._lines,
            chains=tuple(self._chains_first) + tuple(self._chains_last),
            notable=tuple(self._notable_first) + tuple(self._notable_last),
            tail=tuple(self._tail),
            exit_hints=tuple(self._hints),
            child_failures=tuple(self._children),
            fatal_errors=tuple(self._fatals),
            dropped_chains=self._dropped,
            report_at=self._report_at,
        )


def parse_text(text: str, knowledge=None) -> LogFacts:
    """Parse a whole log held in memory."""
    parser = LogParser(knowledge)
    parser.feed_text(text)
    return parser.finish()


def parse_lines(lines: Iterable[LogLine], knowledge=None) -> LogFacts:
    parser = LogParser(knowledge)
    for line in lines:
        parser.feed(line)
    return parser.finish()


def parse_file(path, knowledge=None) -> LogFacts:
    """Parse a saved log of any size in bounded memory."""
    return LogParser(knowledge).parse_file(path)


def _frame(file: str, line: str, function: str) -> Frame:
    file = file.strip()
    return Frame(file, int(line), function.strip(), None, is_user_file(file))


def _child_failure(entry: dict) -> ChildFailure:
    exitcode = _int(entry.get("exitcode"))
    rank = _int(entry.get("rank"))
    error_file = entry.get("error_file")
    if error_file in (None, "<N/A>", "N/A", ""):
        error_file = None
    tb = entry.get("traceback")
    sig = signal_from_code(exitcode) if exitcode is not None else None
    m = _NAMED_SIGNAL.search(tb or "")
    if m:
        sig = m.group(1) or m.group(2)
    return ChildFailure(entry["index"], rank, exitcode, sig, error_file, tb, entry["line"])


def _int(text: str | None) -> int | None:
    m = re.match(r"\s*(-?\d+)", text or "")
    return int(m.group(1)) if m else None


def _decode(raw: bytes) -> str:
    if len(raw) > MAX_LINE_CHARS * 4:
        raw = raw[: MAX_LINE_CHARS * 4]
    return raw.decode("utf-8", "replace")[:MAX_LINE_CHARS].rstrip("\r")


# Printable bytes by how often they occur in training logs, most common first (measured on real logs). The
# chunk pre-filter is a regex, and a regex costs an attempt at every position holding one of its first bytes.
_COMMON = (b" 012s3:.o54,nrte7/lpi6=98a_|mc-huv][\'E<%gdykFINO{}fb\")w(*xTACRDPSGUBLjMz>\\WHqVXK$JY?!+#Z`;Q^~@&")
_BYTE_RANK = {b: i for i, b in enumerate(_COMMON)}


def _filter(knowledge, kind: str, build: Callable):
    """A pre-filter built from the knowledge base's words, once per Knowledge (building one costs ~100 ms)."""
    cache = knowledge.__dict__.setdefault("_logparse_filters", {})
    if kind not in cache:
        cache[kind] = build(sorted(set(KEYWORDS) | set(knowledge.anchors)))
    return cache[kind]


def _anchor_groups(words: Iterable[str]) -> list[list[bytes]]:
    """Pieces of the words, grouped by their first byte, so that few distinct first bytes cover every word.

    Python's `re` scans fast for a pattern with a literal first byte (a tight loop over the buffer) and slowly
    for one that starts with a set of bytes (a charset test at every position). So instead of one regex over all
    words, the words are covered by a small set of first bytes, chosen greedily, and each group becomes one
    regex with a literal prefix: about ten fast passes beat one slow one. Every line holding a word holds its
    piece, so nothing is missed; a line holding only a piece is checked against the whole words afterwards.
    """
    raw = sorted({w.encode() for w in words if w})

    def starts(word: bytes) -> set[int]:  # first bytes a piece of at least 4 bytes (or the whole word) can have
        return {word[i] for i in range(len(word)) if len(word) - i >= min(4, len(word))}

    chosen: set[int] = set()
    uncovered = set(raw)
    while uncovered:
        counts: dict[int, int] = {}
        for word in uncovered:
            for b in starts(word):
                counts[b] = counts.get(b, 0) + 1
        best = max(counts, key=lambda b: (counts[b], _BYTE_RANK.get(b, 99)))
        chosen.add(best)
        uncovered = {w for w in uncovered if best not in starts(w)}
    groups: dict[int, set[bytes]] = {}
    for word in raw:
        options = [i for i in range(len(word)) if word[i] in chosen and len(word) - i >= min(4, len(word))]
        start = max(options, key=lambda i: (_BYTE_RANK.get(word[i], 99), -i))
        groups.setdefault(word[start], set()).add(word[start:start + 12])
    out = []
    for pieces in groups.values():
        kept: list[bytes] = []
        for piece in sorted(pieces, key=len):
            if not any(k in piece for k in kept):
                kept.append(piece)
        out.append(kept)
    return out


def _trie(words):
    """One regex for many literals (all str or all bytes), factored by their common prefixes: far faster than a
    flat alternation, which `re` tries word by word at every position."""
    root: dict = {}
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[None] = {}
    text = bool(words) and isinstance(words[0], str)
    piece = (lambda k: re.escape(k)) if text else (lambda k: re.escape(bytes([k])))
    empty, join, group, close = ("", "|", "(?:", ")") if text else (b"", b"|", b"(?:", b")")

    def emit(node: dict):
        alts = [piece(k) + emit(v) for k, v in sorted((k, v) for k, v in node.items() if k is not None)]
        if not alts:
            return empty
        body = alts[0] if len(alts) == 1 else group + join.join(alts) + close
        return group + body + close + ("?" if text else b"?") if None in node else body

    return emit(root)
