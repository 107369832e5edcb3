"""Text log -> `LogFacts`: tracebacks (chained, DataLoader, IPython, rich, faulthandler), ranks,
system lines.

Streaming and bounded: `LogParser.feed()` takes one line at a time (a live run), `parse_file()`
reads big binary chunks and only hands the detailed parser the lines a cheap literal pre-filter
finds (a saved log of any size).
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import BinaryIO

from trainwatch.diagnostics.evidence import CITED_CHARS, ExceptionChain, Frame, LogLine
from trainwatch.diagnostics.judge.collectives import COLLECTIVE_WORDS
from trainwatch.diagnostics.knowledge.signals import read_exit
from trainwatch.diagnostics.read.capture import (
    MPI_RANK_TAG,
    Capture,
    CaptureReader,
    clean,
    rank_of,
    unmarked,
)
from trainwatch.diagnostics.read.collectors import Collected, collected
from trainwatch.diagnostics.read.dumps import fatal_signal_name
from trainwatch.diagnostics.read.prefilter import (
    AHEAD_MIN_BYTES,
    SecondHalf,
    chunk_filters,
    line_filter,
    word_places,
)
from trainwatch.diagnostics.read.tracebacks import (
    PID_NAMED,
    TRACEBACK_HEAD,
    BlockReader,
    ChildFailure,
    FatalError,
    closing_error,
    cut_traceback,
    is_frame_line,
    is_ipython_frame,
    is_ipython_source,
    unflattened,
    unflattened_headless,
)
from trainwatch.diagnostics.verdict import ANNOTATION_TITLE, REPORT_BANNER

__all__ = [
    "ChildFailure",
    "ExitHint",
    "FatalError",
    "LogFacts",
    "LogParser",
    "parse_file",
    "parse_lines",
    "parse_text",
]

TAIL_LINES = 2000  # the last lines kept verbatim
NOTABLE_FIRST, NOTABLE_LAST = 200, 800
HINTS_KEPT = 64
# torchrun stopping the survivors of a failure: `Sending process 4242 closing signal SIGTERM`
_LAUNCHER_CLOSES = re.compile(r"Sending process (?P<pid>\d+) closing signal (?P<signal>SIG[A-Z]+)")
CLOSED_KEPT = 1024
COLLECTIVE_LINES_KEPT = 1024  # watchdog lines of every rank: the last ones say where each stood
MAX_LINE_CHARS = 8192  # a longer line is cut: nothing a signature needs sits that far in

# trainwatch's terminal report opens with a rule holding REPORT_BANNER and closes with a bare rule
# (cli/reports/terminal.py). One in a log is passed over, not read: it quotes the run (its error,
# its losses). The program's own (`trainwatch.watch()`, a framework callback) stands in the middle
# of its output, so reading goes on after the closing rule.
REPORT_RULE = "\u2500"
_REPORT_CLOSE = re.compile(REPORT_RULE + r"{10,}[ \t\r]*$")
_REPORT_CLOSE_BYTES = re.compile(rb"(?:" + REPORT_RULE.encode() + rb"){10,}[ \t\r]*(?:\n|\Z)")
# trainwatch's GitHub annotation, printed after its report in a CI job's log (cli/reports/github.py;
# a property value has its `:` escaped): quoted words of the verdict (a SIGTERM's "preemption"
# advice), no line of the run
_OWN_ANNOTATION = re.compile(
    r"::(?:error|warning|notice) [^:]*title=" + re.escape(ANNOTATION_TITLE.replace(":", "%3A"))
)
MAX_LINE_BYTES = 1 << 20  # one gigantic line is read up to here, the rest skipped until its newline
SKIPPED_KEPT = MAX_LINE_CHARS * 4  # of the skipped rest, the end is kept: a bar's last frames
CHUNK_BYTES = 1 << 20
TAIL_BYTES = 4 << 20  # the tail is read from the last chunks, kept up to this size
PRIME_LINES = 200  # the first lines a log's capture prefixes are learned from
ENDING_LINES = 25  # the last lines a run's closing words are looked for in
WRAPPED_MAX_BYTES = 16 << 20  # a copy from a page is small; beyond this its rest is not read

# Words one of which every line the detailed parser needs contains. Together with the literals of
# the signature line patterns they form the pre-filter; everything else (progress bars, loss lines)
# is only counted.
KEYWORDS = (
    "Traceback",
    "Error",
    " error",
    "ERROR",
    "Exception",
    "exception",
    "Killed",
    "killed",
    "Fatal",
    "FATAL",
    "fault",
    "Abort",
    "abort",
    "exit",
    "Exit",
    "CANCELLED",
    "Evicted",
    "OOM",
    "oom-kill",
    'File "',
    '", line ',  # a frame whose `File "` a copy cut off (tracebacks._CUT_FRAME)
    # the same with a forum's or an editor's typographic quotes (capture.clean puts back plain ones)
    "File \u201c",
    "\u201d, line ",
    "Cell In",
    # an IPython traceback pasted without its head line starts at a frame (tracebacks.py)
    ".py in ",
    "File /",
    "---->",
    "\u256d",
    "FAILED",
    "Interrupt",
    "signal",
    "Signal",
    "preempt",
    "PREEMPT",
    "terminat",
    "NaN",
    "Root Cause",
    "Failures:",
    "Warning",
    "WARNING",
    # exception classes whose names do not say so (tracebacks.py reads them): Paddle's
    # EnforceNotMet, pyarrow's ArrowInvalid, the classes of torch._dynamo.exc
    "NotMet",
    "ArrowInvalid",
    ".exc.",
    REPORT_BANNER,
    *COLLECTIVE_WORDS,
)

# torchrun `--tee`/`--role` prefixes and rank-tagged lines: `[rank1]:`, `[default0]:`, and an MPI
# launcher's (capture.MPI_RANK_TAG) with its colon: `[1,0]<stderr>:`.
_RANK = re.compile(rf"^\[(?:rank|default|trainer)?(\d+)\]:\s?|{MPI_RANK_TAG}:\s?")


# How many lines of an exception's message may say which signal ended its process.
SIGNAL_MESSAGE_LINES = 4


# How a run ended, as shells, launchers and schedulers print it.
@dataclass(frozen=True)
class ExitHint:
    """A line that says how the process (or one of its ranks) ended: `Killed`, `exit code 137`,
    `Segmentation ...`.
    """

    signal: str | None
    code: int | None
    line: LogLine
    whole_run: bool = False  # the whole program's status, as the tool that ran it writes it


@dataclass(frozen=True)
class LogFacts:
    """What a log shows: its exceptions, the lines that matter, how it ended, and its last lines."""

    lines: int  # lines read (up to trainwatch's own report, if the log holds one)
    # In log order; the first and last ones when there were many.
    chains: tuple[ExceptionChain, ...] = ()
    # Lines a signature or a system pattern matches (bounded, deduplicated).
    notable: tuple[LogLine, ...] = ()
    tail: tuple[LogLine, ...] = ()  # the last lines as written
    # The last non-blank lines, read as the parser reads (prefixes off), after the last traceback:
    # how the run's own output ended.
    ending: tuple[LogLine, ...] = ()
    exit_hints: tuple[ExitHint, ...] = ()
    # A log without a traceback: the error line it ends on, in its program's own words
    # (read/tracebacks.py `closing_error`). Evidence.log_chains adds it where it counts.
    closing_error: ExceptionChain | None = None
    # A log without an exception that ends inside a traceback, cut before its exception's line:
    # that traceback's frames, and the innermost frame's line (read/tracebacks.py `cut_traceback`).
    cut_frames: tuple[Frame, ...] = ()
    cut_at: LogLine | None = None
    child_failures: tuple[ChildFailure, ...] = ()
    fatal_errors: tuple[FatalError, ...] = ()
    dropped_chains: int = 0  # tracebacks seen but not kept (bounded memory)
    newest_first: bool = False  # the log listed its lines newest first, and was read turned back
    # trainwatch's own reports in the output, each passed over: (its first line, its last line,
    # or None where the log ends inside it).
    reports: tuple[tuple[int, int | None], ...] = ()
    # (pid, signal) of each process torchrun stopped as a survivor of another's failure ("Sending
    # process 4242 closing signal SIGTERM"): how those ended is the launcher's doing, not a cause.
    closed_by_launcher: tuple[tuple[int, str], ...] = ()
    # Lines about collectives (NCCL/c10d watchdog, monitoredBarrier, flight-recorder dumps), each
    # with the rank of its capture prefix: read by diagnostics/judge/collectives.py.
    collective_lines: tuple[tuple[int | None, LogLine], ...] = ()

    @property
    def all_chains(self) -> tuple[ExceptionChain, ...]:
        """The tracebacks, and the closing error line of a log that has none."""
        return self.chains if self.closing_error is None else (*self.chains, self.closing_error)

    @property
    def run_status(self) -> ExitHint | None:
        """The whole program's status where the tool that ran it wrote it as the log's last line
        (an IDE's "Process finished with exit code 1", script(1)'s trailer): a saved log that
        says how its run ended is judged as that run."""
        if not self.exit_hints or not self.exit_hints[-1].whole_run:
            return None
        last = max((line.number for line in self.tail if line.text.strip()), default=None)
        return self.exit_hints[-1] if self.exit_hints[-1].line.number == last else None

    @property
    def signals(self) -> tuple[str, ...]:
        """Every signal a line says ended a process, in log order, without repeats."""
        return tuple(dict.fromkeys(signal for signal, _, _ in self.signal_lines()))

    def process_end_lines(self) -> tuple[LogLine, ...]:
        """The lines that say a process of the run ended: by a signal (a shell's or a launcher's
        line), as an entry of torchrun's failure table, or with a fatal error's dump."""
        return (
            *(h.line for h in self.exit_hints if h.signal),
            *(f.line for f in self.child_failures),
            *(f.line for f in self.fatal_errors),
        )

    def without_process_ends_before(self, number: int) -> LogFacts:
        """These facts with only the process ends printed after line `number` (of a saved log,
        one stream in order): a restart went on from the ones before it."""
        return replace(
            self,
            exit_hints=tuple(h for h in self.exit_hints if h.line.number > number),
            child_failures=tuple(f for f in self.child_failures if f.line.number > number),
            fatal_errors=tuple(f for f in self.fatal_errors if f.line.number > number),
        )

    def signal_lines(self) -> tuple[tuple[str, str, str], ...]:
        """(signal, the words that say so, where) for each line that says a signal ended a
        process: the shell's or a launcher's line (`Segmentation fault (core dumped)`, `exit code
        137`) and a faulthandler dump's first line (`Fatal Python error: Segmentation fault`) in
        log order, then torchrun's failure table."""
        said: list[tuple[int, str, LogLine]] = [
            (h.line.number, h.signal, h.line) for h in self.exit_hints if h.signal
        ]
        for fatal in self.fatal_errors:
            signal = fatal_signal_name(fatal.message)
            if signal.startswith("SIG"):
                said.append((fatal.line.number, signal, fatal.line))
        found = [
            (signal, line.text.strip()[:CITED_CHARS], line.where)
            for _, signal, line in sorted(said, key=lambda item: item[0])
        ]
        # an exception whose message says a process it ran ended by a signal: a launcher's
        # CalledProcessError (`died with <Signals.SIGKILL: 9>`), torchrun's SignalException; or
        # that its own process got one, a few lines down (PaddlePaddle's `FatalError:
        # \`Termination signal\` is detected`, then `[SignalInfo: *** SIGTERM ... received by PID`)
        for chain in self.chains:
            for exc in chain.exceptions:
                for said in exc.message.split("\n", SIGNAL_MESSAGE_LINES)[:SIGNAL_MESSAGE_LINES]:
                    ended = read_exit(said)
                    if ended is not None and ended.signal:
                        found.append(
                            (ended.signal, f"{exc.type}: {said.strip()}"[:CITED_CHARS], chain.where)
                        )
                        break
        for failure in self.child_failures:
            if failure.signal and (failure.pid, failure.signal) not in self.closed_by_launcher:
                text = f"rank {failure.rank} exitcode {failure.exitcode}: {failure.traceback or ''}"
                found.append((failure.signal, text.strip(": "), failure.line.where))
        return tuple(found)


class LogParser:
    """Fed lines in order (`feed`) or a whole file (`parse_file`); `finish()` returns the facts so
    far.
    """

    def __init__(
        self,
        knowledge=None,
        on_candidate: Callable[[LogLine], None] | None = None,
        on_line: Callable[[LogLine], None] | None = None,
    ) -> None:
        """`on_candidate` sees the lines a saved log's pre-filter picks, `on_line` every line fed
        one by one; both get them normalized (read/capture.py)."""
        if knowledge is None:
            from trainwatch.diagnostics.knowledge import default_knowledge

            knowledge = default_knowledge()
        self._knowledge = knowledge
        self._words = KEYWORDS + tuple(knowledge.anchors)
        self._on_candidate = on_candidate
        self._on_line = on_line
        self._capture = CaptureReader()
        self._lines = 0
        self._tail: deque[LogLine] = deque(maxlen=TAIL_LINES)
        self._blocks = BlockReader(self._note, self._note_if_matches)
        self._notable_first: list[LogLine] = []
        self._notable_last: deque[LogLine] = deque(maxlen=NOTABLE_LAST)
        self._notable_seen: set[str] = set()
        self._hints: deque[ExitHint] = deque(maxlen=HINTS_KEPT)
        self._collective: deque[tuple[int | None, LogLine]] = deque(maxlen=COLLECTIVE_LINES_KEPT)
        self._reports: list[tuple[int, int | None]] = []  # see LogFacts.reports
        self._closed: dict[tuple[int, str], None] = {}  # see LogFacts.closed_by_launcher
        self._ahead: SecondHalf | None = None
        self.ahead_from = AHEAD_MIN_BYTES  # a file this big has its second half scanned ahead

    @functools.cached_property
    def _prefilter(self) -> re.Pattern[str]:
        """The whole words, for lines fed one by one; built when first used, as the chunk filters
        of parse_stream are (a saved log read in chunks never needs it)."""
        return line_filter(self._knowledge, self._words)

    # ---- input -----------------------------------------------------------------------------------
    @property
    def _in_report(self) -> bool:
        return bool(self._reports) and self._reports[-1][1] is None

    def _open_report(self, number: int) -> None:
        self._reports.append((number, None))
        self._tail = deque((x for x in self._tail if x.number < number), maxlen=TAIL_LINES)

    def _close_report(self, number: int) -> None:
        self._reports[-1] = (self._reports[-1][0], number)

    def _pass_over_annotation(self, number: int) -> None:
        """Pass over trainwatch's own annotation line: with the report just before it, as part of
        it; else on its own."""
        if (
            self._reports
            and self._reports[-1][1] is not None
            and 0 < number - self._reports[-1][1] <= 2
        ):
            self._close_report(number)
        else:
            self._reports.append((number, number))

    def _passed_over(self, number: int) -> bool:
        """Is this line part of a trainwatch report?"""
        return any(a <= number and (b is None or number <= b) for a, b in self._reports)

    def feed(self, line: LogLine) -> None:
        """Take the next line of output (its text without the line ending)."""
        if self._in_report:
            self._lines += 1
            if _REPORT_CLOSE.search(clean(line.text)):
                self._close_report(line.number)
            return
        if len(line.text) > MAX_LINE_CHARS:
            line = LogLine(line.number, clip_line(line.text), line.stream)
        self._lines += 1
        if "::" in line.text and _OWN_ANNOTATION.search(line.text):
            self._pass_over_annotation(line.number)
            return
        self._tail.append(line)
        line = self._normalize(line)
        if self._on_line is not None:
            self._on_line(line)
        if self._blocks.open or self._prefilter.search(line.text):
            self._detail(line)

    def starts_a_record(self, text: str) -> bool:
        """Does the line start with a prefix learnt from this log's capture (a new record)?"""
        return self._capture.prefixed(text)

    def normalize(self, line: LogLine) -> LogLine:
        """A raw line as the parser reads it (colour, `\r` and the learned prefix taken off),
        without learning from it."""
        text = clean(line.text)
        found = self._capture.match(text)
        if found is None:
            return _without_rank(LogLine(line.number, unmarked(text), line.stream))
        message, capture = found
        return _without_rank(LogLine(line.number, unmarked(message), line.stream, capture))

    def _normalize(self, line: LogLine) -> LogLine:
        text = clean(line.text)
        if self._blocks.in_table():  # `[0]:` opens an entry of torchrun's table: not a prefix
            return LogLine(line.number, text, line.stream)
        message, capture = self._capture.split(text)
        return LogLine(line.number, unmarked(message), line.stream, capture)

    def feed_text(
        self,
        text: str,
        stream: str = "log",
        first_number: int = 1,
        wrap_width: int | None = None,
        wrap_joiner: str = "",
    ) -> None:
        """A whole text fed line by line, its capture learned from its first lines first (a
        `wrap_width` given: its lines are taken as cut at that width, joined by `wrap_joiner`)."""
        lines = text.splitlines()
        records = collected(lines[:PRIME_LINES])
        if records is not None:  # a collector's records: the text they hold
            texts = ((records.text(line), line) for line in lines)
            lines = "\n".join(line if text is None else text for text, line in texts).splitlines()
        self._capture.prime(lines[:PRIME_LINES])
        width = wrap_width or self._capture.wrap_width
        for number, raw in unwrap(lines, width, first_number, wrap_joiner):
            self.feed(LogLine(number, raw, stream))

    def parse_stream(self, fh: BinaryIO) -> LogFacts:
        """Read a binary stream in big chunks; only lines the pre-filter picks go through the
        detailed parser.
        """
        try:
            return self._parse_stream(fh)
        finally:
            self._stop_ahead()  # a helper still reading the second half is stopped and reaped

    def _parse_stream(self, fh: BinaryIO) -> LogFacts:
        number = 0
        consumed = 0  # bytes read: a chunk's bytes end there in the file (until a line is skipped)
        origin = 0  # where in the file reading began (known where the second half is read ahead)
        carry = b""
        records: Collected | None = None  # where a collector's records hold the text
        skipping = False  # inside a gigantic line, dropping bytes until its newline
        skipped = b""  # ... the last of them: a line of `\r` frames keeps its last frames
        # the last chunks (first line, bytes, end) for the tail
        recent: deque[tuple[int, bytes, int]] = deque()
        while True:
            data = fh.read(CHUNK_BYTES)
            if not data:
                break
            consumed += len(data)
            if skipping:
                self._stop_ahead()  # the chunks no longer lie where `consumed` says
                nl = data.find(b"\n")
                if nl < 0:
                    skipped = (skipped + data)[-SKIPPED_KEPT:]
                    continue
                skipped = (skipped + data[:nl])[-SKIPPED_KEPT:]
                frame = skipped.find(b"\r")
                carry += skipped[frame:] if frame >= 0 else b""
                data, skipping, skipped = data[nl:], False, b""
            buf = carry + data if carry else data
            cut = buf.rfind(b"\n")
            if cut < 0:
                if len(buf) > MAX_LINE_BYTES:
                    carry, skipping = buf[:MAX_LINE_BYTES], True
                    skipped = buf[MAX_LINE_BYTES:][-SKIPPED_KEPT:]
                else:
                    carry = buf
                continue
            carry = buf[cut + 1 :]
            if number == 0:  # the first chunk: learn the log's capture from its first lines
                head = [_decode(raw) for raw in buf[: min(cut, 1 << 16)].split(b"\n")[:PRIME_LINES]]
                records = collected(head)
            # a collector's records: read as the text they hold
            text = records.block(buf[: cut + 1]) if records is not None else None
            if number == 0:
                if text is not None:
                    head = text.decode("utf-8", "replace").split("\n")[:PRIME_LINES]
                self._capture.prime(head)
                if self._capture.wrap_width:  # a page's fixed-width copy: join, then read it all
                    rest = fh.read(WRAPPED_MAX_BYTES)
                    return self._parse_wrapped(buf[: cut + 1] + carry + rest)
            if text is not None:
                buf, cut = text, len(text) - 1
            elif number == 0:
                self._ahead = SecondHalf.start(fh, self._filters(), CHUNK_BYTES, self.ahead_from)
                if self._ahead is not None:
                    origin = fh.tell() - consumed
            first = number + 1
            # scanned in place: slicing would copy the chunk
            base = None if text is not None else origin + consumed - len(buf)
            number, stop = self._scan(buf, cut + 1, number, base)
            recent.append((first, buf, stop))
            _trim(recent, number)
        if carry:
            carry += b"\n"
            if number == 0:
                records = collected([_decode(carry[:-1])])
            if records is not None:
                carry = records.block(carry)
            if number == 0:
                self._capture.prime(_decode(carry[:-1]).split("\n"))
            first = number + 1
            number, stop = self._scan(carry, len(carry), number, origin + consumed - len(carry) + 1)
            recent.append((first, carry, stop - 1 if stop == len(carry) else stop))
        self._lines = number
        self._tail.clear()
        for first, buf, stop in recent:
            block = buf[:stop]
            for i, raw in enumerate(block.split(b"\n")[: block.count(b"\n") or 1]):
                if first + i <= number and not self._passed_over(first + i):
                    self._tail.append(LogLine(first + i, _decode(raw), "log"))
        return self.finish()

    def _parse_wrapped(self, data: bytes) -> LogFacts:
        """A log copied from a page that wrapped every line at one width (small, by nature): its
        lines joined again and read one by one."""
        lines = data.decode("utf-8", "replace").splitlines()
        for number, raw in unwrap(lines, self._capture.wrap_width, 1):
            self.feed(LogLine(number, raw, "log"))
        return self.finish()

    def parse_file(self, path) -> LogFacts:
        with open(path, "rb") as fh:
            return self.parse_stream(fh)

    def _filters(self):
        """The pre-filter's anchored regexes for this parser's words (built once per knowledge)."""
        return chunk_filters(self._knowledge, self._words)

    def _stop_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead.close()
            self._ahead = None

    def _scan(self, buf: bytes, n: int, number: int, base: int | None = None) -> tuple[int, int]:
        """Parse the lines the pre-filter picks in `buf[:n]` (whole lines, at file offset `base`
        when known); returns the line count and where reading stopped.
        """
        pos = 0
        # Every place a word occurs, found by one literal-prefixed regex per anchor byte (see
        # prefilter), or by the helper that read the file's second half ahead.
        hits = None
        if base is not None and self._ahead is not None:
            hits = self._ahead.places(base, n)
        if hits is None:
            hits = word_places(buf, n, self._filters())
        i = 0
        while pos < n:
            if self._in_report:
                number, pos = self._past_report(buf, pos, n, number)
                continue
            if self._blocks.open:  # inside a traceback every line counts
                start = pos
                end = buf.find(b"\n", pos)
            else:
                i = bisect_left(hits, pos, i)
                if i == len(hits):
                    return number + buf.count(b"\n", pos, n), n
                hit = hits[i]
                start = max(buf.rfind(b"\n", pos, hit) + 1, pos)
                number += buf.count(b"\n", pos, start)
                end = buf.find(b"\n", hit)
            if end < 0 or end > n:
                end = n
            line = self._normalize(LogLine(number + 1, _decode(buf[start:end]), "log"))
            self._detail(line)
            if self._on_candidate is not None and not self._in_report:
                self._on_candidate(line)
            number += 1
            pos = end + 1
        return number, n

    def _past_report(self, buf: bytes, pos: int, n: int, number: int) -> tuple[int, int]:
        """Pass over the rest of a report from `pos`: to just after its closing rule, or to the
        chunk's end where the rule is further on (the report stays open)."""
        close = _REPORT_CLOSE_BYTES.search(buf, pos, n)
        if close is None:
            return number + buf.count(b"\n", pos, n), n
        end = buf.find(b"\n", close.end() - 1, n)
        end = n if end < 0 else end + 1
        number += buf.count(b"\n", pos, end)
        self._close_report(number)
        return number, end

    # ---- the detailed parser ---------------------------------------------------------------------
    def _detail(self, line: LogLine) -> None:
        """Read one normalized line: a traceback's next line, a block's head, a system line."""
        text = line.text
        if REPORT_BANNER in text and (REPORT_RULE in text or text.strip() == REPORT_BANNER):
            self._open_report(line.number)
            return
        if "::" in text and _OWN_ANNOTATION.search(text):
            self._pass_over_annotation(line.number)
            return
        folded = (
            unflattened(text)
            if TRACEBACK_HEAD in text
            else unflattened_headless(text)
            if 'File "' in text and not self._blocks.open
            else None
        )
        if folded is not None:
            for piece in folded:  # a traceback folded into one line: read as Python wrote it
                self._detail(LogLine(line.number, piece, line.stream, line.capture))
            return
        source = line.capture.source if line.capture is not None else None
        if not self._blocks.in_table():  # `[0]:` opens an entry of the table
            line = _without_rank(line)
            if line.capture is not None and line.capture.rank is not None:
                source = line.capture.rank
        if any(word in line.text for word in COLLECTIVE_WORDS):
            self._collective.append((line.capture.rank if line.capture else None, line))
        self._blocks.note_ignored(line, source)
        if self._blocks.advance(line, source) or self._blocks.start(line, source):
            return
        self._system(line)
        self._blocks.start_bare(line, source)
        self._note_if_matches(line)

    # ---- lines that matter -----------------------------------------------------------------------
    def _system(self, line: LogLine) -> None:
        """A line that says how a process ended (knowledge/signals.toml) is an exit hint."""
        said = read_exit(line.text)
        if said is not None and not self._closed_by_launcher(said.signal, line.text):
            self._hints.append(ExitHint(said.signal, said.code, line, said.whole_run))
            self._note(line)
        if "closing signal" in line.text and len(self._closed) < CLOSED_KEPT:
            closed = _LAUNCHER_CLOSES.search(line.text)
            if closed is not None:
                self._closed[(int(closed.group("pid")), closed.group("signal"))] = None

    def _closed_by_launcher(self, signal: str | None, text: str) -> bool:
        """Does the line tell how a process ended that torchrun had itself stopped with that signal
        (its failure table's `exitcode : -15 (pid: 4242)`, `Signal 15 (SIGTERM) received by PID
        4242`)?"""
        if signal is None or not self._closed:
            return False
        pid = PID_NAMED.search(text)
        return pid is not None and (int(pid.group(1)), signal) in self._closed

    def _note_if_matches(self, line: LogLine) -> None:
        # A pattern may need what a prefix took off (`[c10d]` after a glog tag): the whole line too.
        notes = self._knowledge.notes
        if notes(line.text) or (line.capture is not None and notes(line.whole)):
            self._note(line)

    def _note(self, line: LogLine) -> None:
        key = line.text.strip()[:CITED_CHARS]
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
        blocks = self._blocks
        blocks.close_all()
        chains = tuple(blocks.chains_first) + tuple(blocks.chains_last) or tuple(blocks.ignored)
        ending = self._ending(chains)
        for line in ending:  # read whole: a closing `^C` holds no word the pre-filter looks for
            self._note_if_matches(line)
        plain = not (chains or blocks.fatals or blocks.children)
        # read with the prefix off only where a frame is among the last lines as written (the
        # tail's lines are normalised one by one: most logs end otherwise)
        last = [line.text for line in self._tail if line.text.strip()][-2:]
        cut_frames, cut_at = (
            cut_traceback([self.normalize(line) for line in self._tail])
            if plain and any('File "' in clean(text) for text in last)
            else ((), None)
        )
        return LogFacts(
            lines=self._lines,
            chains=chains,
            notable=tuple(self._notable_first) + tuple(self._notable_last),
            tail=tuple(self._tail),
            ending=ending,
            exit_hints=tuple(self._hints),
            closing_error=closing_error(ending) if plain else None,
            cut_frames=cut_frames,
            cut_at=cut_at,
            child_failures=tuple(blocks.children),
            fatal_errors=tuple(blocks.fatals),
            dropped_chains=blocks.dropped,
            reports=tuple(self._reports),
            closed_by_launcher=tuple(self._closed),
            collective_lines=tuple(self._collective),
        )

    def _ending(self, chains: tuple[ExceptionChain, ...]) -> tuple[LogLine, ...]:
        """The log's last lines after its last traceback: after where that traceback starts, and
        after its last frame line (a traceback pasted without its head starts at a frame, and
        its frames' source lines, `use_best_model=...`, are no closing words). The last frame's
        own source line stays: a log cut there is judged by where it was cut."""
        after = max((c.line or 0 for c in chains), default=0)
        lines: list[LogLine] = []
        for line in reversed(self._tail):
            if line.number <= after or len(lines) == ENDING_LINES:
                break
            line = self.normalize(line)
            if is_frame_line(line.text):
                break
            if is_ipython_frame(line.text):
                # the numbered source IPython prints under its last frame is code, not closing
                # words (a library's string of another error's message among them)
                lines = [kept for kept in lines if not is_ipython_source(kept.text)]
                break
            if line.text.strip():  # blank once its prefix is off: a rank tag alone holds no line
                lines.append(line)
        return tuple(reversed(lines))


def _without_rank(line: LogLine) -> LogLine:
    """The line with a launcher's rank tag (`[rank1]:`, `[1,0]<stderr>:`) taken off into its
    capture."""
    m = _RANK.match(line.text)
    if m is None:
        return line
    capture = replace(line.capture or Capture(""), rank=rank_of(m))
    return LogLine(line.number, line.text[m.end() :], line.stream, capture)


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


def _trim(recent: deque[tuple[int, bytes, int]], number: int) -> None:
    """Drop the oldest chunks the tail no longer needs: the rest hold TAIL_LINES lines, or more than
    TAIL_BYTES.
    """
    while len(recent) > 1 and (
        number - recent[1][0] + 1 >= TAIL_LINES
        or sum(len(buf) for _, buf, _ in recent) > TAIL_BYTES
    ):
        recent.popleft()


def unwrap(lines: list[str], width: int | None, first_number: int, joiner: str = ""):
    """(number, line) with the pieces of lines a page wrapped at `width` joined again (by
    `joiner`: nothing where the page cut mid-word, a space where it broke at one and dropped it)."""
    if not width:
        yield from enumerate(lines, first_number)
        return
    pending: list[str] = []
    start = first_number
    for number, line in enumerate(lines, first_number):
        if not pending:
            start = number
        pending.append(line)
        if len(line.rstrip("\r")) != width:
            yield start, joiner.join(pending)
            pending = []
    if pending:
        yield start, joiner.join(pending)


def _decode(raw: bytes) -> str:
    if len(raw) > MAX_LINE_CHARS * 4:
        tail = raw.find(b"\r", len(raw) - MAX_LINE_CHARS * 2)
        raw = raw[: MAX_LINE_CHARS * 2] + (raw[tail:] if tail >= 0 else b"")
    return clip_line(raw.decode("utf-8", "replace")).rstrip("\r")


def clip_line(text: str) -> str:
    """A line cut to MAX_LINE_CHARS; a line of `\r`-drawn frames (a tqdm bar written to a file,
    one line for a whole epoch) keeps its last frames too, from a frame's start: they say where
    the loop ended (a real run's 20 s epochs read "loop left early at 660/1000")."""
    if len(text) <= MAX_LINE_CHARS:
        return text
    tail = text.find("\r", max(MAX_LINE_CHARS, len(text) - MAX_LINE_CHARS))
    return text[:MAX_LINE_CHARS] + (text[tail:] if tail >= 0 else "")
