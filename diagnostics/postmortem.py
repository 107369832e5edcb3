"""Saved logs and reports -> `Diagnosis`: the library half of `trainwatch explain` and `trainwatch
merge`.

Several logs are judged as one job: the ranks' and nodes' logs side by side (a directory stands
for the log files in it), the root rank chosen as in a live run (diagnostics/distributed.py) and
named with the file it came from. Per-node JSON reports (`srun trainwatch run --json
report-%N.json`) are re-judged into one job verdict by `merge_reports`.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from itertools import pairwise
from typing import Any, BinaryIO

from trainwatch.diagnostics import __version__
from trainwatch.diagnostics.errors import UsageError
from trainwatch.diagnostics.evidence import CITED_CHARS, Evidence, ExitStatus, LogLine
from trainwatch.diagnostics.judge.classify import classify
from trainwatch.diagnostics.judge.quiet import QUIET_PREFIX
from trainwatch.diagnostics.read import order
from trainwatch.diagnostics.read.capture import ANSI, WRAP_MIN, clean, cut_rests, repeats_one_line
from trainwatch.diagnostics.read.encodings import UTF8_BOM, Utf16AsUtf8, utf16_codec
from trainwatch.diagnostics.read.logparse import LogFacts, LogParser
from trainwatch.diagnostics.read.notebooks import looks_like_notebook, notebook_output
from trainwatch.diagnostics.read.progress import ProgressFacts, ProgressTracker
from trainwatch.diagnostics.read.tracebacks import is_whole_frame
from trainwatch.diagnostics.verdict import (
    Cited,
    Diagnosis,
    Verdict,
    is_report,
    starts_like_report,
)

BINARY_SNIFF = 8192  # bytes looked at to tell a text log from binary data
# Words of an error's own lines and of its traceback's frames: a cut through such a line may hide
# the message a signature reads, or the function a frame names.
ERROR_WORDS = (
    "Error",
    "error",
    "ERROR",
    "Exception",
    "Fatal",
    "FATAL",
    "Traceback",
    "failed",
    "FAILED",
    'File "',
)


def read_log(stream: BinaryIO, knowledge) -> tuple[LogFacts, ProgressFacts]:
    """Parse one binary stream and follow its progress.

    Every line of the tail (the last 2000) is read in order, so where the loop stood when the log
    ends is exact; before the tail, only the lines the parser's pre-filter picks are seen (a big
    log is read at C speed), which is where a first NaN or the losses of a long run come from.
    """
    stream, reordered = _oldest_first(stream)
    opening = stream.opening if isinstance(stream, _HeadFirst) else b""
    early = ProgressTracker()
    parser = LogParser(knowledge, on_candidate=early.feed)
    facts = parser.parse_stream(stream)
    if reordered:
        facts = replace(facts, newest_first=True)
    width, sure = _cut_width(facts, parser.starts_a_record)
    if width is not None and (sure or _cut_may_matter(facts, width)):
        # read it again with its longest lines joined to the next
        # (the whole log is in its tail then, so the progress is read from the tail below alone)
        counted: dict[int, int] = {}  # a reading (by id) -> how much of the knowledge it matches

        def matches(read: LogFacts) -> int:
            if id(read) not in counted:
                counted[id(read)] = _matches(read, knowledge)
            return counted[id(read)]

        again, rejoined = _rejoined(facts, width, knowledge, matches)
        if _better_joined(facts, rejoined, sure, matches):
            parser, facts = again, rejoined
    late = ProgressTracker()
    for line in facts.tail:
        late.feed(_with_its_frames(parser, line))
    start = facts.tail[0].number if facts.tail else 1
    progress = _joined(early.finish(), late.finish(), start)
    flat = progress.flat_loss
    if flat is not None and start > 1 and _moved_before(parser, opening, start, flat[0]):
        # the tail's loss never moved, but the log's first lines show it did: a loop that
        # converged long before its end (a real run's 2500 epochs, flat after 400, read as "did
        # not learn")
        progress = replace(progress, flat_loss=None)
    return facts, progress


# The log's first bytes read again when its tail's loss never moved: where a long run's loss
# moved, if it did (the lines before the tail are read only where the pre-filter picks them).
OPENING_BYTES = 256 << 10


def _moved_before(parser: LogParser, opening: bytes, start: int, flat: float) -> bool:
    """Do the log's first lines, before its tail (line `start` on), print a training loss other
    than the one the tail printed throughout?"""
    lines = opening.decode("utf-8", "replace").split("\n")[:-1]  # the last may be cut
    tracker = ProgressTracker()
    for number, text in enumerate(lines[: start - 1], 1):
        tracker.feed(parser.normalize(LogLine(number, text.rstrip("\r"))))
    return any(value != flat for _, value in tracker.finish().losses)


def _with_its_frames(parser: LogParser, line: LogLine) -> LogLine:
    """A line as the progress tracker reads it: as the parser does (colour and the capture's prefix
    taken off), but with every `\r` frame of a bar kept, as a live run's tracker sees them. The
    parser keeps the last frame, what a terminal shows; a bar erased at its end (tqdm's
    `leave=False`) or followed by a message on its line would leave no frame to count."""
    text = line.text.rstrip("\r\n")
    if "\r" not in text:
        return parser.normalize(line)
    first, _, frames = text.partition("\r")
    head = parser.normalize(replace(line, text=first))
    if "\x1b" in frames:
        frames = ANSI.sub("", frames)
    return replace(head, text=f"{head.text}\r{frames}")


def _reports_note(reports: tuple[tuple[int, int | None], ...]) -> str:
    """What the report says of the trainwatch reports the log held (passed over, not read)."""
    spans = ", ".join(f"{a}-{b}" if b is not None else f"{a} to the log's end" for a, b in reports)
    what = "a trainwatch report" if len(reports) == 1 else f"{len(reports)} trainwatch reports"
    return f"{what} (lines {spans}) passed over: a report quotes the run, and is not its output"


def _oldest_first(stream: BinaryIO) -> tuple[BinaryIO, bool]:
    """The stream in the order its lines were written (read/order.py), and whether it had to be
    turned: a page's copy is small, so a log longer than `order.MAX_BYTES` is read as it stands."""
    head = stream.read(order.MAX_BYTES + 1)
    turned = order.oldest_first(head)
    if turned is None:
        return _HeadFirst(head, stream), False
    return io.BytesIO(turned), True


def _rejoined(
    facts: LogFacts, width: int, knowledge, matches: Callable[[LogFacts], int]
) -> tuple[LogParser, LogFacts]:
    """The log read with its lines of `width` joined to the next. A page that cut at the width
    joins as it is; a paste wrapped at word breaks dropped the space at each break, and no break
    then shows a space: where none does, the reading with a space put back is taken when more of
    the knowledge base matches it."""
    text = "\n".join(line.text for line in facts.tail)
    readings = []
    spaced = any(a[-1:].isspace() or b[:1].isspace() for a, b in _breaks(facts, width))
    for joiner in ("",) if spaced else ("", " "):
        parser = LogParser(knowledge)
        parser.feed_text(text, wrap_width=width, wrap_joiner=joiner)
        readings.append((parser, parser.finish()))
    if len(readings) == 2 and matches(readings[1][1]) > matches(readings[0][1]):
        return readings[1]
    return readings[0]


def _cut_may_matter(facts: LogFacts, width: int) -> bool:
    """Could joining an unsure cut change what the log says? Where the log as it stands showed
    nothing, the joined reading is taken if it finds anything; where it showed something, only a
    cut through an error's own lines (a message cut in two matches nothing, a frame cut in its
    function's name names another) can make more of the knowledge match. A second reading was
    most of the cost of reading a small log, and the longest line of most logs (a progress line,
    a config dump) is not cut at all."""
    if _showed_nothing(facts):
        return True
    return any(
        word in text for pair in _breaks(facts, width) for text in pair for word in ERROR_WORDS
    )


def _breaks(facts: LogFacts, width: int) -> list[tuple[str, str]]:
    """Each line of `width` with the line after it: where the log may have been cut."""
    return [
        (line.text, after.text) for line, after in pairwise(facts.tail) if len(line.text) == width
    ]


def _showed_nothing(facts: LogFacts) -> bool:
    """Did a reading understand nothing: no exception, no notable line?"""
    return not (facts.all_chains or facts.notable)


def _matches(read: LogFacts, knowledge) -> int:
    """How many signatures and phrases a reading of a log matches."""
    if knowledge is None:
        from trainwatch.diagnostics.knowledge import default_knowledge

        knowledge = default_knowledge()
    return len(knowledge.match(read.all_chains, read, {}))


def _better_joined(
    facts: LogFacts, joined: LogFacts, sure: bool, matches: Callable[[LogFacts], int]
) -> bool:
    """Is the reading with the cut lines joined the one to keep? It must have found something;
    then it wins when the cutting is sure, when the log as it stands showed nothing, or when more
    of the knowledge base matches it (a message cut in two matches nothing). "Found" counts what
    the knowledge matched too: a closing words' phrase (`at_end`) reads the last lines whole, and
    one line wrapped in two is neither an exception nor a notable line."""
    if _showed_nothing(joined) and not matches(joined):
        return False
    if sure or (_showed_nothing(facts) and not matches(facts)):
        return True
    return matches(joined) > matches(facts)


def _cut_width(facts: LogFacts, starts_a_record: Callable[[str], bool]) -> tuple[int | None, bool]:
    """The width a short log's lines may have been cut at by the page it was copied from, and
    whether that is sure. (A long log tells its wrapping by the numbers, read/capture.py; a log of a
    few lines cannot, and a message cut in two matches nothing.) The width is the length of its
    longest lines when one of them is followed by more text; it is sure when two or more are, each
    followed by what reads as the rest of a cut line (`capture.cut_rests`); unsure, the joined
    reading is taken only where nothing in the log was understood as it stands. A line that
    starts with the prefix the log's capture writes on its records is a record of its own, never
    the rest of a cut one; nor was a traceback's frame line that ends in a function's name and has
    its indented code below."""
    if facts.lines > len(facts.tail) or facts.lines < 2:
        return None, False
    texts = [line.text for line in facts.tail]
    lengths = [len(text) for text in texts]
    width = max(lengths)
    if width < WRAP_MIN:
        return None, False
    cut = [
        i
        for i, n in enumerate(lengths[:-1])
        if n == width
        and lengths[i + 1] > 0
        and not starts_a_record(texts[i + 1])
        and not (is_whole_frame(texts[i]) and texts[i + 1][:1].isspace())
        and not _drawn_whole(texts[i])
    ]
    if not cut or repeats_one_line(texts, cut):
        return None, False
    return width, len(cut_rests(texts, cut)) >= 2


def _drawn_whole(text: str) -> bool:
    """A line a program drew at its own width, never text cut by a page: a rule (IPython opens a
    traceback with 75 dashes) or IPython's traceback head (`ValueError   Traceback (most recent call
    last)`, padded to the same 75 columns)."""
    text = clean(text).strip()  # a notebook's copy keeps the colour codes
    return len(set(text)) <= 2 or text.endswith("Traceback (most recent call last)")


def _joined(early: ProgressFacts, late: ProgressFacts, start: int) -> ProgressFacts:
    """The tail's reading of the loop, with what the lines before the tail showed first."""
    if start <= 1:
        return late  # the tail is the whole log

    def before(found):
        return found is not None and found[-1].number < start

    first_loss = early.first_nonfinite_loss if before(early.first_nonfinite_loss) else None
    first_metric = early.first_nonfinite_metric if before(early.first_nonfinite_metric) else None
    return replace(
        late,
        losses=tuple(p for p in early.losses if p[0] < (late.losses[0][0] if late.losses else 0))
        + late.losses,
        first_nonfinite_loss=first_loss or late.first_nonfinite_loss,
        first_nonfinite_at=early.first_nonfinite_at if first_loss else late.first_nonfinite_at,
        first_nonfinite_metric=first_metric or late.first_nonfinite_metric,
        diverged=early.diverged or late.diverged,
        loss_count=early.loss_count + late.loss_count,
    )


def explain_logs(paths: Iterable[str], knowledge, stdin: BinaryIO | None = None) -> Diagnosis:
    """Diagnose one or more saved logs of one run (`-` reads `stdin`); raises UsageError for
    unusable input.
    """
    paths = list(paths)
    folders = tuple(p for p in paths if p != "-" and os.path.isdir(p))  # may hold flight recorders
    paths = expand_paths(paths)
    verdict_facts: list[tuple[LogFacts, ProgressFacts | None]] = []
    for path in paths:
        if path == "-":
            if stdin is None:
                raise UsageError("no standard input to read")
            verdict_facts.append(read_log(sniffed(stdin, "standard input"), knowledge))
            continue
        with open_log(path) as fh:
            verdict_facts.append(read_log(fh, knowledge))
    nodes = _rank_nodes(paths, [f for f, _ in verdict_facts])
    facts, progress = _merge(verdict_facts)
    notes = []
    if facts.lines == 0:
        notes.append("the log is empty")
    if facts.reports:
        notes.append(_reports_note(facts.reports))
    if facts.dropped_chains:
        notes.append(f"{facts.dropped_chains} tracebacks in the middle of the log were not kept")
    if facts.newest_first:
        notes.append(
            "the log lists its lines newest first (as a log viewer shows them): it was read in "
            "the order they were written, so the line numbers here count from its last line"
        )
    job_logs = [p for p in paths if _is_hydra_job_log(p)]
    if job_logs:
        notes.append(HYDRA_JOB_LOG_NOTE)
    evidence = Evidence(
        source="log", exit=_said_status(facts), log=facts, progress=progress, notes=tuple(notes)
    )
    verdict = classify(evidence, knowledge)
    if job_logs and len(job_logs) == len(paths):
        verdict = _as_a_job_log_can_tell(verdict)
    from trainwatch.diagnostics.judge.ranks import job_verdict, judge_ranks

    # ranks from `[rankN]:` prefixes, torchrun's table, and the collectives' watchdog lines
    ranks = judge_ranks(evidence, knowledge, nodes=nodes, dump_dirs=folders)
    if ranks is not None and ranks.root_rank is None and not ranks.ranks:
        ranks = None
    if ranks is None and len(paths) > 1:
        verdict, section = _judge_files(paths, verdict_facts, verdict, knowledge)
    else:
        section = None if ranks is None else ranks.to_dict()
        verdict = job_verdict(verdict, ranks)
    return Diagnosis(
        trainwatch_version=__version__,
        command=(),
        started_at=None,
        duration_s=None,
        exit=None,
        verdict=verdict,
        evidence=evidence,
        sources=tuple(paths),
        sections={} if section is None else {"distributed": section},
    )


# Hydra's run folder holds the composed configuration in `.hydra/` beside the job's log file
# (`outputs/<date>/<time>/<job>.log`). Hydra writes a failed job's error to the terminal, never into
# that file, so the file's end cannot tell a crash from a hang or a finish (a real Hydra run's job
# logs, forty-eighth session: crashed jobs read as hangs at 45% with rendezvous advice, and one as
# completed at 75%). A reading from how such a log ends is held to this.
HYDRA_RUN_MARK = os.path.join(".hydra", "hydra.yaml")
JOB_LOG_ENDING_MAX = 0.35
HYDRA_JOB_LOG_NOTE = (
    "the log is a Hydra job's own log (a `.hydra` folder beside it): Hydra writes a failed job's "
    "error to the terminal, not into this file"
)
READ_THE_TERMINAL = (
    "This is Hydra's job log, which never holds the job's error: explain what the terminal (or "
    "the scheduler's stderr file) received, where Hydra printed the failure."
)


def _is_hydra_job_log(path: str) -> bool:
    return path != "-" and os.path.isfile(
        os.path.join(os.path.dirname(os.path.abspath(path)), HYDRA_RUN_MARK)
    )


def _as_a_job_log_can_tell(verdict: Verdict) -> Verdict:
    """A reading of how a Hydra job log ended, no surer than such a log can make it. What the log
    did say (a NaN loss, an error a handler logged, closing words) keeps its reading."""
    if not (verdict.signature or "").startswith(QUIET_PREFIX) or verdict.category == "numerical":
        return verdict
    return replace(
        verdict,
        confidence=min(verdict.confidence, JOB_LOG_ENDING_MAX),
        advice=(READ_THE_TERMINAL, *verdict.advice),
    )


def _said_status(facts: LogFacts) -> ExitStatus | None:
    """How the run ended, where the log's last line is the tool's record of it (an IDE's "Process
    finished with exit code N", script(1)'s trailer); None where the log does not say."""
    said = facts.run_status
    if said is None or said.code is None:
        return None
    number = getattr(signal, said.signal, None) if said.signal is not None else None
    if number is not None:
        return ExitStatus.from_returncode(-int(number))
    return ExitStatus.from_returncode(said.code) if said.code >= 0 else None


LOG_SUFFIXES = (".log", ".txt", ".out", ".err", ".stdout", ".stderr")


# How deep a folder's log files are looked for: torchrun's `--log-dir` keeps each rank's output at
# `<dir>/<run id>/attempt_<n>/<rank>/stderr.log`, three folders down.
FOLDER_DEPTH = 4


def expand_paths(paths: Iterable[str]) -> list[str]:
    """A directory stands for its log files (`*.log`, `*.txt`, `*.out`, `*.err`), in its folders
    too (FOLDER_DEPTH), in path order."""
    out: list[str] = []
    for path in paths:
        if path != "-" and os.path.isdir(path):
            found = sorted(_log_files(path))
            if not found:
                raise UsageError(
                    f"{path}: a directory with no log files (*.log, *.txt, *.out, *.err)"
                )
            out.extend(found)
        else:
            out.append(path)
    return out


def _log_files(folder: str) -> Iterable[str]:
    base = folder.rstrip(os.sep).count(os.sep)
    for root, dirs, files in os.walk(folder):
        if root.rstrip(os.sep).count(os.sep) - base >= FOLDER_DEPTH:
            dirs.clear()
        for name in files:
            if name.endswith(LOG_SUFFIXES) and os.path.isfile(os.path.join(root, name)):
                yield os.path.join(root, name)


# the names launchers give every rank's file alike, and every node's JSON report (`n0/report.json`,
# `n1/report.json`): the folder above names the rank or the node
_STREAM_FILES = ("stdout", "stderr", "out", "err", "log", "report")


def _node_name(path: str) -> str:
    if path == "-":
        return "stdin"
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem in _STREAM_FILES:
        return f"{os.path.basename(os.path.dirname(path))}/{stem}"
    return stem


def _rank_nodes(paths: list[str], facts: list[LogFacts]) -> dict[int, str] | None:
    """The file (node) each rank was seen in, when there are several files."""
    if len(paths) < 2:
        return None
    nodes: dict[int, str] = {}
    for path, fact in zip(paths, facts, strict=True):
        for rank in [c.rank for c in fact.chains] + [f.rank for f in fact.child_failures]:
            if rank is not None:
                nodes.setdefault(rank, _node_name(path))
    return nodes


def _judge_files(paths, parts, verdict, knowledge):
    """Logs without rank prefixes, one per node: judge each, and let the most initiating failure
    speak for the job.
    """
    from trainwatch.diagnostics.judge.ranks import strength_of

    judged = []
    for index, (path, (facts, progress)) in enumerate(zip(paths, parts, strict=True)):
        one = classify(Evidence(source="log", log=facts, progress=progress), knowledge)
        own = bool(facts.chains or facts.fatal_errors)
        judged.append((strength_of(one, None, knowledge, own), index, path, one))
    best = min(judged, key=lambda j: (-j[0], j[1]))
    strength, _, path, one = best
    if strength >= 2 and (one.category, one.subtype) != (verdict.category, verdict.subtype):
        verdict = one
    node = _node_name(path)
    verdict = _replace(
        verdict,
        summary=f"On {node}: {verdict.summary}",
        cascade=(
            verdict.cascade
            + tuple(
                Cited("node", f"{_node_name(p)}: {v.summary}"[:CITED_CHARS], p)
                for s, _, p, v in judged
                if p != path and s > 0
            )
        )[:8],
    )
    section = {
        "launcher": None,
        "world_size": None,
        "root_rank": None,
        "root_node": node,
        "ranks": [],
        "nodes": [
            {"node": _node_name(p), "source": p, "category": v.category, "summary": v.summary}
            for _, _, p, v in judged
        ],
    }
    return verdict, section


def _replace(verdict, **changes):
    from dataclasses import replace

    return replace(verdict, **changes)


@contextlib.contextmanager
def open_log(path: str, logs_only: bool = True) -> Iterator[BinaryIO]:
    """Open a log once and read it once: a pipe (`explain <(kubectl logs ...)`) or a FIFO cannot be
    read twice, so the bytes sniffed to tell text from binary (or, with `logs_only`, a log from a
    JSON report) are served again from memory rather than by reopening. Raises UsageError for what
    cannot be read, with the system's reason (a symbolic link loop is not "no such file")."""
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory, not a log file")
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise _unreadable(path, exc) from None
    with handle:
        yield sniffed(handle, path, logs_only)


def _unreadable(name: str, exc: OSError) -> UsageError:
    """The error for a log the system would not let us read, with its reason."""
    return UsageError(f"{name}: cannot read: {exc.strerror or exc}")


def sniffed(stream: BinaryIO, name: str, logs_only: bool = True) -> BinaryIO:
    """The stream, its first bytes checked: binary data, or (`logs_only`) a trainwatch JSON report
    given where a log is expected, is a UsageError; the bytes read are served again first, as UTF-8
    (read/encodings.py)."""
    try:
        head = stream.read(BINARY_SNIFF)
        codec = utf16_codec(head)
        if codec is not None:  # a Windows tool's UTF-16: read as the text it holds
            stream = Utf16AsUtf8(_HeadFirst(head, stream), codec)
            head = stream.read(BINARY_SNIFF)
    except OSError as exc:
        raise _unreadable(name, exc) from None
    unpack = _decompressor(head)
    if unpack is not None:  # a rotated or archived log (`train.log.1.gz`): read what it holds
        return sniffed(_Decompressed(_HeadFirst(head, stream), unpack, name), name, logs_only)
    # Notepad's and PowerShell's UTF-8 mark: the first line's words start after it
    head = head.removeprefix(UTF8_BOM)
    if _looks_binary(head):
        raise UsageError(f"{name}: looks like binary data, not a text log")
    if looks_like_notebook(head):  # one JSON document: read whole, its cells' output is the log
        try:
            whole = head + stream.read()
        except OSError as exc:
            raise _unreadable(name, exc) from None
        printed = notebook_output(whole)
        return io.BytesIO(printed) if printed is not None else _HeadFirst(whole, io.BytesIO())
    if logs_only and starts_like_report(head):
        shown = name if name != "standard input" else "FILE.json"
        raise UsageError(
            f"{name} is a trainwatch JSON report, not a log: "
            f"show it with `trainwatch report {shown}`"
        )
    return _HeadFirst(head, stream)


# The control bytes text never holds (a log's tabs, line ends, escape sequences and backspaces
# aside); NUL is not among them (below).
_BINARY_BYTES = bytes(b for b in range(1, 32) if b not in b"\t\n\r\x1b\x08\x0b\x0c")
BINARY_SHARE = 0.05  # of the head's bytes: random or packed data has about 11% of them, text none


def _looks_binary(head: bytes) -> bool:
    """Is this the start of binary data (a checkpoint, a pickle, an executable), not of a text log?
    By its control bytes, not by its NULs: a log the machine crashed while writing often ends in a
    block of NULs (its length was written to disk, its last data was not), and it is the log a user
    most needs read."""
    text = head.replace(b"\x00", b"")
    if not text:
        return False
    binary = len(text) - len(text.translate(None, _BINARY_BYTES))
    return binary > BINARY_SHARE * len(text)


def _decompressor(head: bytes) -> Callable[[], Any] | None:
    """What makes a decompressor for a stream that starts with `head` (gzip, bzip2 or xz, the ones
    the standard library reads, by their magic numbers), or None for one that is not compressed."""
    if head.startswith(b"\x1f\x8b"):
        import zlib

        return lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)  # with gzip's header and trailer
    # `BZh`, the block size's digit, then the first block's own magic: a text log may start `BZh`
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        import bz2

        return bz2.BZ2Decompressor
    if head.startswith(b"\xfd7zXZ\x00"):
        import lzma

        return lzma.LZMADecompressor
    return None


class _Decompressed:
    """A compressed log's text, decompressed as it is read. A file cut short (still being written,
    a copy interrupted) ends where its data ends, every line decompressed before the cut kept, as a
    plain log cut short would (the gzip, bz2 and lzma file readers raise EOFError there and give
    nothing of their last read); files written one after the other into one (`gzip -c >>`) are
    read on; data that does not decompress is a UsageError. It has no descriptor of its own: the
    reader that scans a big plain file's second half from its descriptor (read/prefilter.py) must
    not read the compressed bytes."""

    def __init__(self, raw: BinaryIO, new: Callable[[], Any], name: str) -> None:
        self._raw = raw
        self._new = new
        self._unpacker = new()
        self._name = name
        self._out = bytearray()  # decompressed, not read yet (grown in place: a log is big)
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        while not self._ended and (size is None or size < 0 or len(self._out) < size):
            data = self._raw.read(io.DEFAULT_BUFFER_SIZE * 8)
            if not data:
                self._ended = True
                break
            self._out += self._unpacked(data)
        if size is None or size < 0 or size >= len(self._out):
            out = bytes(self._out)
            self._out.clear()
            return out
        out = bytes(self._out[:size])
        del self._out[:size]
        return out

    def _unpacked(self, data: bytes) -> bytes:
        try:
            out = self._unpacker.decompress(data)
            while self._unpacker.eof and self._unpacker.unused_data:  # the next file's start
                rest, self._unpacker = self._unpacker.unused_data, self._new()
                out += self._unpacker.decompress(rest)
        except Exception as exc:  # zlib's, bz2's and lzma's errors share no base but Exception
            raise UsageError(f"{self._name}: cannot decompress: {exc}") from None
        return out

    def fileno(self) -> int:
        raise io.UnsupportedOperation("a decompressed stream has no descriptor")


class _HeadFirst:
    """A binary stream whose first bytes were read already: those first, then the rest."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest
        self.opening = head[:OPENING_BYTES]

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._rest.read(size)
        if size is None or size < 0:
            data, self._head = self._head + self._rest.read(), b""
            return data
        if size <= len(self._head):
            data, self._head = self._head[:size], self._head[size:]
            return data
        # a whole chunk, as a plain file gives: the reader learns the log's capture from its first
        # chunk, and a few lines of head alone are too few to learn it from
        data, self._head = self._head + self._rest.read(size - len(self._head)), b""
        return data

    # A plain file's descriptor and position, for the reader that scans a big file's second half
    # ahead (read/prefilter.py); a pipe raises here as it would unwrapped.
    def fileno(self) -> int:
        return self._rest.fileno()

    def tell(self) -> int:
        return self._rest.tell() - len(self._head)


def _merge(
    parts: list[tuple[LogFacts, ProgressFacts | None]],
) -> tuple[LogFacts, ProgressFacts | None]:
    """Several logs of one run (ranks, stdout and stderr): their facts side by side, the first
    progress found.
    """
    if len(parts) == 1:
        return parts[0]
    from dataclasses import replace

    first = parts[0][0]
    merged = replace(
        first,
        lines=sum(f.lines for f, _ in parts),
        chains=tuple(c for f, _ in parts for c in f.chains),
        notable=tuple(n for f, _ in parts for n in f.notable),
        tail=parts[-1][0].tail,
        exit_hints=tuple(h for f, _ in parts for h in f.exit_hints),
        child_failures=tuple(c for f, _ in parts for c in f.child_failures),
        fatal_errors=tuple(e for f, _ in parts for e in f.fatal_errors),
        dropped_chains=sum(f.dropped_chains for f, _ in parts),
        newest_first=any(f.newest_first for f, _ in parts),
        collective_lines=tuple(c for f, _ in parts for c in f.collective_lines),
    )
    progress = next((p for _, p in parts if p is not None), None)
    return merged, progress


# ---- per-node reports -> the job -----------------------------------------------------------------
def merge_reports(paths: Iterable[str], knowledge=None) -> Diagnosis:
    """Re-judge per-node JSON reports (`trainwatch run --json`) into the job's verdict; raises
    UsageError for unusable input. The root node is the one whose failure looks most initiating
    (as for ranks); its verdict is the job's, the other nodes' failures its cascade.
    """
    import json

    from trainwatch.diagnostics.evidence import ExitStatus
    from trainwatch.diagnostics.judge.ranks import strength_of

    paths = list(paths)
    if not paths:
        raise UsageError("no reports to merge")
    judged = []
    for index, path in enumerate(paths):
        try:
            with open_log(path, logs_only=False) as fh:
                report = json.loads(fh.read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: not a trainwatch JSON report ({exc})") from None
        if not is_report(report):
            raise UsageError(f"{path}: not a trainwatch JSON report (no trainwatch.report schema)")
        verdict = Verdict.from_report(report)
        exit_dict = report.get("exit") if isinstance(report.get("exit"), dict) else None
        exit = (
            None
            if exit_dict is None
            else ExitStatus(
                exit_dict.get("code"), exit_dict.get("signal"), int(exit_dict.get("status") or 0)
            )
        )
        own = report.get("exception") is not None
        judged.append(
            (strength_of(verdict, exit, knowledge, own), index, path, report, verdict, exit)
        )
    strength, _, path, root_report, verdict, exit = min(
        judged, key=lambda j: (-j[0], _failed_at(j[3]), j[1])
    )
    node = _report_node(root_report, path)
    dist = (
        root_report.get("distributed") if isinstance(root_report.get("distributed"), dict) else {}
    )
    where = f"rank {dist['root_rank']} on {node}" if dist.get("root_rank") is not None else node
    cascade = tuple(
        Cited("node", f"{_report_node(r, p)}: {v.category}, {v.summary}"[:CITED_CHARS], p)
        for s, _, p, r, v, _ in judged
        if p != path and s > 0
    )
    verdict = _replace(
        verdict,
        summary=verdict.summary
        if verdict.summary.startswith("On ")
        else f"On {where}: {verdict.summary}",
        cascade=(verdict.cascade + cascade)[:8],
    )
    ranks, nodes = [], []
    for _, _, p, report, v, _ in judged:
        name = _report_node(report, p)
        section = report.get("distributed") if isinstance(report.get("distributed"), dict) else {}
        ranks.extend(
            {**r, "node": r.get("node") or name}
            for r in section.get("ranks") or ()
            if isinstance(r, dict)
        )
        nodes.append(
            {
                "node": name,
                "source": p,
                "category": v.category,
                "summary": v.summary,
                "slurm": section.get("slurm"),
                "root_rank": section.get("root_rank"),
            }
        )
    sizes = [
        s.get("world_size")
        for s in (r.get("distributed") or {} for _, _, _, r, _, _ in judged)
        if isinstance(s, dict) and isinstance(s.get("world_size"), int)
    ]
    section = {
        "launcher": dist.get("launcher"),
        "world_size": max(sizes) if sizes else None,
        "root_rank": dist.get("root_rank"),
        "root_node": node,
        "ranks": ranks,
        "nodes": nodes,
    }
    evidence = Evidence(source="reports", notes=(f"merged from {len(paths)} reports",))
    return Diagnosis(
        trainwatch_version=__version__,
        command=tuple(root_report.get("command") or ()),
        started_at=root_report.get("started_at"),
        duration_s=root_report.get("duration_s"),
        exit=exit,
        verdict=verdict,
        evidence=evidence,
        sources=tuple(paths),
        # the failing node's sample and checkpoints, as its own report gave them
        sections={
            "distributed": section,
            **{k: root_report[k] for k in ("sample", "checkpoints") if root_report.get(k)},
        },
    )


def _report_node(report: dict, path: str) -> str:
    """The node a report came from: SLURM's node name when it was recorded, else the file's name."""
    section = report.get("distributed") if isinstance(report.get("distributed"), dict) else {}
    slurm = section.get("slurm") if isinstance(section.get("slurm"), dict) else {}
    return str(slurm.get("node") or _node_name(path))


def _failed_at(report: dict) -> float:
    """When the run ended (start + duration): between equally initiating failures, the earlier
    one.
    """
    import datetime

    try:
        start = datetime.datetime.fromisoformat(str(report.get("started_at"))).timestamp()
        return start + float(report.get("duration_s") or 0)
    except (TypeError, ValueError):
        return float("inf")
