"""The child's output, read as it streams: bytes cut into lines, handed to the log parsers and the
progress tracker.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

TYPE_CHECKING = False  # not typing's: imported before the program starts (diagnostics/startup.py)
if TYPE_CHECKING:  # the relay starts before the evidence's records exist; lines come after
    from trainwatch.diagnostics.evidence import LogLine

# A line longer than this is cut for diagnosis (never for pass-through): one gigantic line must not
# cost memory.
MAX_LINE_CHARS = 8192

LineObserver = Callable[["LogLine"], None]
_LINE_END = re.compile(rb"[\r\n]")
_NONFINITE = re.compile(rb"(?i)nan|inf")


class LineSplitter:
    """Cuts a byte stream into lines for the observers; `\\r` ends a segment too, so progress bars
    are seen live.
    """

    def __init__(self, stream: str, observers: Sequence[LineObserver]) -> None:
        # Made in the parsing thread at the stream's first output (watch/feed.py), so the
        # evidence's records are imported there, once the program runs, and not before it starts.
        from trainwatch.diagnostics.evidence import LogLine

        self._line = LogLine
        self.stream = stream
        self.observers = observers
        self.number = 0
        self._pending = bytearray()
        self._redrawn = False  # the line so far ended in a `\r`: a bar's redraws

    def feed(self, data: bytes, skipped_lines: int | None = None, behind: bool = False) -> None:
        """Take the next bytes of the stream. `skipped_lines` (watch/feed.py): bytes holding that
        many newlines were dropped just before these, so the partial line held and the first
        fragment of `data` belong to lines whose other part is gone: both are dropped, and the
        line count moves on by what was skipped. `behind`: the parsers are behind the program
        (watch/feed.py is dropping output), and a `\r` redraw that the next one, already here,
        covers is skipped unless it holds a non-finite number."""
        if not self.observers:
            return
        if skipped_lines is not None:
            self._pending.clear()
            self.number += skipped_lines
            ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
            if not ends:
                return
            end = min(ends)
            if data[end] == 10:  # b"\n"
                self.number += 1
            data = data[end + 1 :]
        self._pending += data
        start = 0
        buf = self._pending
        found = _LINE_END.search(buf)
        while found is not None:
            end = found.start()
            after = _LINE_END.search(buf, end + 1)
            newline = buf[end] == 10  # b"\n"
            # A redraw that the next one, already here, covers is one the terminal hardly showed:
            # when behind, it is read only if it holds a non-finite number (a NaN loss on a bar
            # still counts once per redraw). tqdm at full speed writes a few hundred thousand of
            # them a minute; reading each, the parsers fell further behind.
            overwritten = (
                behind
                and not newline
                and after is not None
                and buf[end + 1 : after.start()].strip()
                and _NONFINITE.search(buf, start, end) is None
            )
            if not overwritten:
                self._emit(bytes(buf[start:end]), newline=newline)
            start = end + 1
            found = after
        del buf[:start]
        # a gigantic line: keep its head for diagnosis, drop the rest
        if len(buf) > MAX_LINE_CHARS * 4:
            del buf[MAX_LINE_CHARS:]

    def close(self) -> None:
        if self._pending:
            self._emit(bytes(self._pending), newline=True)
            self._pending.clear()

    def _emit(self, raw: bytes, newline: bool) -> None:
        # A blank line is a line the parser reads, as explain reads it in a saved log: it ends an
        # exception's message (a real run's sklearn warning, printed below the traceback it
        # quotes, was read into the message without it). A blank `\r` redraw is no line, nor is
        # the nothing between a bar's last `\r` and its newline.
        redrawn, self._redrawn = self._redrawn, not newline
        if not raw.strip() and (not newline or redrawn):
            if newline:
                self.number += 1
            return
        if newline:
            self.number += 1
        text = raw[:MAX_LINE_CHARS].decode("utf-8", "replace")
        line = self._line(number=self.number + (0 if newline else 1), text=text, stream=self.stream)
        for observe in self.observers:
            try:
                observe(line)
            except Exception:  # an observer's bug must never stop the relay of the child's output
                pass


class OutputObservers:
    """Hands each line of the child's output to the log parser and the progress tracker.

    Lines arrive in the parsing thread of watch/feed.py, never in the relay's: the knowledge base
    and the parsers (a few hundred milliseconds to build) are built there at the first line (a
    silent run never pays for them) while the output keeps flowing. stdout and stderr get a log
    parser each: a program's buffered stdout can land in the middle of a traceback that it writes
    to stderr, and a traceback read across the two streams would be cut in half.
    """

    def __init__(self, signature_files: tuple[str, ...], on_nonfinite=None) -> None:
        self.lock = threading.Lock()  # the parsing thread feeds, the stall watcher reads progress
        self.signature_files = signature_files
        self.on_nonfinite = on_nonfinite  # the progress tracker's NonFiniteObserver
        self.clock: Callable[[], float] = time.time  # when the line being read was printed
        self._seen = False
        self._ready = False
        self._failure: BaseException | None = None
        self._knowledge = None
        # the last lines of both streams in the order they came (each parser keeps its own
        # stream's tail): a report's last lines of output read as the terminal showed them
        self._arrived: deque[tuple[str, int]] = deque()

    def __call__(self, line: LogLine) -> None:
        if not self._ready:
            self._seen = True
            if self._failure is not None:
                return
            self._build()
            if not self._ready:
                return
        with self.lock:
            self._arrived.append((line.stream, line.number))
            self.parsers[line.stream].feed(line)

    def _build(self) -> None:
        try:
            from trainwatch.diagnostics.read.logparse import TAIL_LINES, LogParser
            from trainwatch.diagnostics.read.progress import ProgressTracker

            knowledge = self.knowledge()
            progress = ProgressTracker(self.on_nonfinite, clock=self.clock)
            # Each parser hands the tracker its lines as it reads them: prefixes and colour off.
            parsers = {
                "stdout": LogParser(knowledge, on_line=progress.feed),
                "stderr": LogParser(knowledge, on_line=progress.feed),
            }
            with self.lock:
                self.parsers, self.progress = parsers, progress
                self._arrived = deque(maxlen=2 * TAIL_LINES)  # both streams' tails
                self._ready = True
        except BaseException as exc:  # reported by finish()
            self._failure = exc

    def knowledge(self):
        """The knowledge base, loaded on first use (the built-in signatures, the user's, and
        --signatures).
        """
        if self._knowledge is None:
            from trainwatch.diagnostics.knowledge import load_knowledge

            # The user's files were checked before the program started (cli/run.py): they are the
            # extra files here, and the user folder is not read a second time.
            self._knowledge = load_knowledge(extra_files=self.signature_files, include_user=False)
        return self._knowledge

    def finish(self) -> None:
        """Raise what building the parsers raised (call once the feed has been waited for)."""
        if self._failure is not None:
            raise self._failure

    @property
    def silent(self) -> bool:
        """The child printed no line at all."""
        return not self._seen

    def progress_facts(self):
        """Where the loop was; None when the child printed nothing."""
        if self.silent:
            return None
        with self.lock:
            return self.progress.finish()

    def live_progress(self):
        """The progress facts so far, while the run goes on; None before the parsers are built."""
        with self.lock:
            return self.progress.finish() if self._ready else None

    def current_position(self) -> str | None:
        with self.lock:
            return self.progress.finish().stopped_at if self._ready else None

    def last_loss(self) -> float | None:
        """The last loss value the output showed (NaN included); None before any."""
        return self.progress.last_loss if self._ready else None

    def log_facts(self):
        """The facts of both streams as one log: stderr's first, since that is where failures are
        written.
        """
        if self.silent:
            return None
        import dataclasses

        err, out = self.parsers["stderr"].finish(), self.parsers["stdout"].finish()
        merged = {}
        for f in dataclasses.fields(err):
            a, b = getattr(err, f.name), getattr(out, f.name)
            if isinstance(a, tuple):
                merged[f.name] = a + b
            elif f.name == "lines" or f.name == "dropped_chains":
                merged[f.name] = a + b
            else:
                merged[f.name] = a if a is not None else b
        # the two streams' last lines interleaved as they came (a line before the ones recorded
        # first)
        place = {key: i for i, key in enumerate(self._arrived)}
        merged["tail"] = tuple(
            sorted(merged["tail"], key=lambda line: place.get((line.stream, line.number), -1))
        )
        return dataclasses.replace(err, **merged)
