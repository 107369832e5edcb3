"""How a log was captured: the prefix a tool writes before every line (a timestamp, a log level, a
pod, a rank, a worker's pid), colour codes, `\\r` redraws, CRLF and fixed-width wrapping. They are
taken off before anything matches and kept for citing (which rank, which process, when).

The prefixes are learned from the log itself, not from a list of formats:
- by frequency: the longest leading shape that most of the first lines share (every line of a
  `kubectl logs`, Ray, syslog or Docker capture), and
- by anchors: text that stands before a line Python or a framework writes at the start of a line
  (`Traceback (most recent call last):`, a frame's `  File "...`, `SomeError: ...`), for logs
  where only some lines carry a prefix, or too few lines to count.
A shape is a line's leading tokens by kind: numbers, words, spaces and each other character, so
`2024-05-01T12:00:03.118Z ` and `2024-05-01T12:00:04.207Z ` have one shape and `INFO`/`ERROR` fill
the same slot. A shape counts as a prefix only when it looks like metadata (a time, a date, a
bracketed or parenthesised tag, a `|` column, a `name:` label, `key=value`), so ordinary text such
as `Epoch 3/10 ` is never taken off.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

ANSI = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Za-z0-9]"
)
_TOKEN = re.compile(r"\d+|\w+|[ \t]+|.")
# An OS error printed without its type (`print(e)`): its words also end a message (`python: can't
# open file '...': [Errno 2]`), so what is before them is a prefix only where it quotes nothing.
_BARE_ERROR = re.compile(r"\[Errno \d+\] ")
# Lines that a program writes at the start of a line: text before them on the same line was added
# by whatever captured the output.
_ANCHOR = re.compile(
    r"Traceback \(most recent call last\):|(?<=  )File \"|During handling of the above exception|"
    r"The above exception was the direct cause|\b[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)"
    r"(?: \(see above for traceback\))?: |Fatal Python error: |" + _BARE_ERROR.pattern
)
_BOUNDARY = " \t:]|)>"
_BOUNDARY_TOKENS = (":", "]", "|", ">", ")")  # characters that end a tag
# What makes a shape metadata rather than text.
_METADATA = (
    re.compile(r"\d+:\d+"),  # a time
    re.compile(r"\d+[-/]\d+[-/]\d+"),  # a date
    re.compile(r"[\[(<].*[\])>]"),  # a bracketed or parenthesised tag
    re.compile(r"\s\|(?:\s|$)"),  # a column (`trainer-1  | `), not a progress bar's `42%|`
    re.compile(r"^[\w.\-/]+:\s*$|^\w+:[\w.]+:\s*$"),  # a label: `0: `, `node01:`, `INFO:root:`
    re.compile(r"\w=\S"),  # key=value
    re.compile(r"^(?:> ?)+$"),  # a quote's marker: a log pasted into an e-mail or a Markdown quote
    # a Unix time alone, in seconds (logging's `%(created)f`) or milliseconds (log exporters): ten
    # figures from 2017 to 2033, so a step's counter or a metric's value is not one
    re.compile(r"^1[5-9]\d{8}(?:\d{3}|\.\d+)?\s*$"),
)
# A record's level as Python's logging, glog, log4j, loguru and rich write it.
_LEVELS = frozenset(
    word
    for level in (
        "TRACE",
        "DEBUG",
        "INFO",
        "NOTICE",
        "WARN",
        "WARNING",
        "ERROR",
        "CRITICAL",
        "FATAL",
    )
    for word in (level, level.lower(), level.capitalize())
)
_LEVEL_PATTERN = "(?:" + "|".join(sorted(_LEVELS, key=len, reverse=True)) + ")"
_LEVEL_NEXT = re.compile(_LEVEL_PATTERN + r":?[ \t]+(?=\S)")  # a level, then a message
# Words a capture writes after its last tag: a level, the stream a container runtime names, and a
# time's zone.
_CAPTURE_WORDS = (
    _LEVELS
    | {"stdout", "stderr"}
    | {
        # a time's zone, as `%Z` writes it after the time
        "UTC",
        "GMT",
        "CET",
        "CEST",
        "EET",
        "BST",
        "EST",
        "EDT",
        "CST",
        "CDT",
        "PST",
        "PDT",
        "IST",
        "JST",
        "KST",
        "AEST",
    }
)
# A field the training loop prints (`epoch: 0`, `loss=`, a dict's `{'loss': `, `Epoch 0/1 | Batch
# 100/500 | Loss nan |`, the tutorials' `Epoch [1/8] Loss:`): no capture writes one.
_PROGRESS_FIELD = re.compile(
    r"(?i)\b(?:loss|epoch|iter|iteration|step|batch|lr|acc|accuracy)"
    r"(?:['\"]?\s*[:=]|\s+(?:[-+]?\d|nan\b|inf\b)|\s*[\[(#]\s*\d)"
)
# Text that ends with an exception's name (`RuntimeError: `), or starts with one: the same error
# repeated (each worker's, or a retry's) shares its `TypeError: get() ` line after line, and those
# are the message's first words, never a capture's.
_EXCEPTION_LABEL = re.compile(
    r"(?:Error|Exception|Warning|Interrupt|Exit)\W*$"
    r"|^\W*(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Warning|Interrupt|Exit):\s"
)
# A traceback's own words: tracebacks folded onto one line each and repeated (every worker's the
# same) start alike line after line, and are no capture's.
_TRACEBACK_WORDS = re.compile(r'Traceback \(most recent call last\)|\bFile "')
# A progress bar's body: Keras's `1875/1875 [==============================] - ` (every epoch's last
# line in a log written to a file, so half of a Keras log's lines start with it), rich's `━━━`,
# tqdm's blocks, and tqdm's frame however few blocks it has drawn (` 20%|██        | 16/80 [`).
# Brackets and figures as a capture's are, but the loop's own output.
_PROGRESS_BAR = re.compile(
    r"\[[=>.\- ]{5,}\]|━{3,}|[█▏▎▍▌▋▊▉]{3,}|\d%\|[^|]{0,100}\|\s*\d+/\d+\s*\["
)
# An MPI launcher's tag: mpirun's `--tag-output` `[1,0]<stderr>` (the job's number, then the rank)
# and SageMaker's `[1,mpirank:0,algo-1]<stderr>` (the rank and the host). logparse reads it, with
# its colon, on lines where no prefix could be learned.
MPI_RANK_TAG = r"^\[\d+,(?:(\d+)|mpirank:(\d+),[\w.-]+)\]<std(?:out|err)>"
_RANK = (
    re.compile(r"\brank\s*[=:]?\s*(\d+)", re.I),
    re.compile(MPI_RANK_TAG),
    re.compile(r"^(\d+): $"),  # srun --label
    re.compile(r"^\[(?:default|trainer)(\d+)\]:"),  # torchrun --tee with a role
)
_PID = re.compile(r"\bpid[=: ]\s*(\d+)")
# an error's level as a capture writes it: upper case, glog's `E0213 `, or a bracketed tag in title
# case (Omniverse's and Carbonite's `[Error]`)
_ERROR_LEVEL = re.compile(r"\b(ERROR|FATAL|CRITICAL)\b|^([EF])\d{4} |\[(Error|Fatal|Critical)\]")
_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?Z?|\d\d:\d\d:\d\d(?:[.,]\d+)?")
SAMPLE_POINTS = (20, 60, 200)  # lines after which the frequent shapes are learned again
# Two stacked prefixes (a collector's timestamp over a job's tag and uuid) reach 150 columns.
MAX_PREFIX = 200
# A leading part that ends in a name and `:`/`=` (and a space), and the value that follows it (a
# metric's value is at most two spaces away: `loss: 0.5`; a notebook listing's line numbers under a
# logger's `Name: ` are further, `Driver:       1 print(x)`). A name may carry its step as an
# index: `train_batch_loss[ 6590 ]:  nan` (nor is the part up to its `]` a tag).
_METRIC_NAMED = re.compile(r".*[A-Za-z_]\w*(?:\[\s*\d+\s*\])?\s*[:=]\s*$", re.DOTALL)
_METRIC_INDEXED = re.compile(r".*[A-Za-z_]\w*\[\s*\d+\s*\]$", re.DOTALL)
_MARK_NEXT = re.compile(r"\s*[:=]")
_VALUE_NEXT = re.compile(r"[ \t]{0,2}[-+]?(?:\d|(?i:nan|inf)(?![a-z]))")
_METRIC_MARKS = (":", "=")  # what a part that names a metric ends in (_METRIC_NAMED)
# Where a level padded to its column ends: `%(levelname)-8s` and rich's handler pad it to eight
# characters, and one space follows.
LEVEL_COLUMN = 9
MAX_SHAPES = 6
SHORT_LOG_MIN = 2  # lines a log needs before a prefix they share is learned from them
FEW_LINES = 4  # a log of fewer lines learns only a prefix that every one of them starts with
MAX_CANDIDATES = 24  # leading parts tried per line: a stacked prefix has a dozen boundaries
WRAP_MIN = 60  # a narrower fixed width is not a web page's wrapping
_FIGURES = re.compile(r"\d+")
# A single leading space is too often a program's own alignment; a tab is a whole indentation (a
# log pasted into a Markdown list, or indented by a tool), and counts as wide enough.
MIN_INDENT = 2
SAME_START = 8  # leading characters two lines of one format share (a timestamp's date, a tag)
# pytest writes the exception of a failed test with `E` and three spaces before each of its lines
# (its own frames apart, above them), the message's own indentation kept after them: a training
# run's traceback caught in a test's output (a CI job's) reads as one only with them taken off. A
# first marked line must start an exception or a traceback (spaCy's training table heads its epoch
# column `E`); after it, every marked line is taken off.
PYTEST_FAIL_MARK = "E   "
_PYTEST_FAILED = re.compile(
    r"E   \s*(?:Traceback \(most recent call last\):|(?:[A-Za-z_]\w*\.)*[A-Z]\w*"
    r"(?:Error|Exception|Interrupt|Exit)\b)"
)


@dataclass(frozen=True)
class Capture:
    """What the capturing tool wrote before one line: taken off for matching, kept for citing."""

    prefix: str
    rank: int | None = None
    pid: int | None = None
    time: str | None = None
    # an error's level the prefix gave the line (`ERROR`, `FATAL`, `CRITICAL`, glog's `E`/`F`): the
    # line is an error in its program's own words, though its text no longer says so
    level: str | None = None

    @property
    def source(self) -> int | str | None:
        """Who wrote the line, to keep interleaved tracebacks apart: a rank, else a pid."""
        if self.rank is not None:
            return self.rank
        return f"pid {self.pid}" if self.pid is not None else None

    def describe(self) -> str:
        """`rank 1, 12:00:03` for a citation; "" when the prefix says neither."""
        parts = []
        if self.rank is not None:
            parts.append(f"rank {self.rank}")
        elif self.pid is not None:
            parts.append(f"pid {self.pid}")
        if self.time:
            parts.append(self.time)
        return ", ".join(parts)


# A log pasted through a forum, a blog or a word processor gets typographic quotes: Python's
# `'NBMasterBar'` becomes `‘NBMasterBar’`, and what reads exception lines and matches messages knows
# only the plain ones.
_TYPOGRAPHIC_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def clean(text: str) -> str:
    """A line without colour codes, CRLF, the `\\r`-redrawn fragments before its last one,
    typographic quotes, or no-break spaces in its indentation."""
    if not text.isascii():
        text = text.translate(_TYPOGRAPHIC_QUOTES)
        if text.startswith(("\xa0", " \xa0", "\t\xa0")):
            # indentation copied from a page as no-break spaces: a traceback's frames are indented
            body = text.lstrip(" \t\xa0")
            text = text[: len(text) - len(body)].replace("\xa0", " ") + body
    if "\x1b" in text:
        text = ANSI.sub("", text)
    if "\r" in text:
        text = text.rstrip("\r")
        if "\r" in text:
            text = next((seg for seg in reversed(text.split("\r")) if seg.strip()), "")
    if text.endswith("  "):
        # a screen's width of padding (GNU screen's hardcopy, a terminal's copy): one trailing
        # space is kept, as a page cut at a fixed width may have cut just after it
        text = text.rstrip(" ")
    return text


def unmarked(text: str) -> str:
    """A line pasted into Markdown without the marks around it: `` `ValueError: x` ``,
    `**ValueError: x**`, or the opening or closing backtick of inline code that runs over several
    lines. A backtick that quotes a word inside the line (`` `np.inf` is ... ``) stays."""
    if "`" not in text and "**" not in text:
        return text
    body = text.lstrip()
    for mark in ("**", "`"):
        if not body.startswith(mark) or len(body) == len(mark):
            continue
        after = body[len(mark)]
        if not (after.isalpha() or after == "_"):
            return text  # a fence (```), a list item, a rule
        inner = body[len(mark) :].rstrip()
        if inner.endswith(mark):
            inner = inner[: -len(mark)]
        elif mark == "**":
            return text
        if mark == "`" and inner.count("`") % 2:
            return text  # the backtick opened a quoted word, not the line
        return text[: len(text) - len(body)] + inner
    trimmed = text.rstrip()
    if trimmed.endswith("`") and not trimmed.endswith("``") and trimmed.count("`") % 2:
        return trimmed[:-1]  # the close of inline code opened lines above (`KeyError: 'x'` + "`")
    return text


def shape(text: str) -> str:
    """The kinds of a text's tokens, one character a token: `0` a number, `a` a word, ` ` spaces,
    else the character itself (every other token is one character long)."""
    return "".join(map(_kind, _TOKEN.findall(text)))


def _kind(token: str) -> str:
    if token[0].isdigit() and token.isdigit():
        return "0"
    if token[0].isspace():
        return " "
    if token[0] == "_" or token[0].isalnum():
        return "a"
    return token


def looks_like_metadata(prefix: str) -> bool:
    """Does this leading text look like what a capturing tool writes, not like a message?"""
    if _EXCEPTION_LABEL.search(prefix) or _TRACEBACK_WORDS.search(prefix):
        return False  # `RuntimeError: Traceback ...`: an exception's message, not a capture
    if _PROGRESS_FIELD.search(prefix):
        return False  # `<time> Total iter: 30, epoch: 0, loss: [`: the training loop's own words
    if _PROGRESS_BAR.search(prefix):
        return False
    return any(p.search(prefix) for p in _METADATA)


def runs_into_message(prefix: str) -> bool:
    """Does this leading text go on past the capture into the message's first words? After its
    last tag (`]`, `:`, `|`, `>`, `)`), a capture writes only a level, a stream, a one-letter flag,
    numbers, or names it sets apart with punctuation (`- trainer - INFO - `); any other word there
    (`<time> train: Epoch 3 loss `) is the message's: a log whose messages start alike must not
    lose their first words (a traceback's `Traceback` among them)."""
    tokens = _TOKEN.findall(prefix)
    last = max((i for i, t in enumerate(tokens) if t in _BOUNDARY_TOKENS), default=-1)
    tail = tokens[last + 1 :]
    for i, token in enumerate(tail):
        if not (token[0].isalpha() or token[0] == "_") or any(c.isdigit() for c in token):
            continue
        if token in _CAPTURE_WORDS or (len(token) == 1 and token.isupper()):
            continue
        following = next((t for t in tail[i + 1 :] if not t.isspace()), None)
        if following is None or following[0].isalnum() or following[0] == "_":
            return True
    return False


def _pattern(prefix: str) -> re.Pattern[str]:
    """A regex matching every prefix of this one's shape (the trailing spaces kept exactly, so a
    message's own indentation is never eaten)."""
    tokens = _TOKEN.findall(prefix)
    parts = []
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        if last and len(token) > 1 and token.isspace() and i > 0 and tokens[i - 1] in _LEVELS:
            # a level padded to its column: the same width whichever level (`INFO     `,
            # `WARNING  `), and a message's own indentation after it stays the message's
            width = len(tokens[i - 1]) + len(token)
            parts[-1] = (
                "(?:" + "|".join(f"[A-Za-z]{{{n}}} {{{width - n}}}" for n in range(1, width)) + ")"
            )
            break
        if token in _LEVELS:
            # a level matches a level only: after `WARNING:root:` lines, a learnt `\w+:` must not
            # take `UnboundLocalError:` off the exception line the log ends on
            parts.append(_LEVEL_PATTERN)
        elif token.isdigit():
            parts.append(r"\d+")
        elif token[0].isspace():
            parts.append(re.escape(token) if last else r"[ \t]+")
        elif any(c.isdigit() for c in token):
            # a word with figures in it (glog's `I0213`, `node01`, a run's hash): a plain word at
            # that place is a message's first (`Floating point exception` under glog's lines)
            parts.append(r"\w*\d\w*")
        elif token[0] == "_" or token[0].isalnum():
            parts.append(r"\w+")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts))


class CaptureReader:
    """Learns a log's capture prefixes as its lines arrive and takes them off each line."""

    def __init__(self) -> None:
        self._patterns: list[tuple[re.Pattern[str], re.Pattern[str]]] = []
        self._sample: list[str] = []
        # each sampled line's candidate prefixes with their shapes, computed once: the frequent
        # shapes are learned again at each of SAMPLE_POINTS
        self._candidates: list[list[tuple[str, str]]] = []
        self._rejected: set[str] = set()
        self.wrap_width: int | None = None
        # the indentation every sampled line starts with: a log pasted into a Markdown list or
        # code block (no tool writes one, so no shape above learns it)
        self._indent: str | None = None
        # pytest's fail marks seen before an exception: the marked lines after it are taken off too
        self._pytest_marks = False
        # primed with the log's first lines: the lines read after are those same lines, and must
        # not be sampled twice (a short log's first lines counted again tipped its shapes' counts)
        self._sampled_all = False
        # every line starts with its number (`cat -n`, `grep -n`, a viewer's gutter): learnt once
        self._numbered = False

    def prime(self, lines: list[str]) -> None:
        """Learn from the first lines of a log before reading it (a saved log)."""
        for text in lines[: SAMPLE_POINTS[-1]]:
            self._sample.append(clean(text))
        self._sampled_all = True
        self._learn_frequent()
        self._learn_wrap()
        # a traceback's or an exception's line further down may show the prefix (split learns it
        # there): learnt now, it is taken off the lines above it too (a short log's first frames)
        for text in self._sample:
            self._anchored(text)

    def _anchored(self, text: str) -> None:
        """Learn the prefix before a traceback's or an exception's start in this line, if no prefix
        learnt so far takes the line apart."""
        start = self._indented(text)
        found = self._match(text)
        if found is not None and found != start and _LEVEL_NEXT.match(text, found):
            # a learnt time, then a level the log's few lines did not all show (a level alone on
            # an empty message's line loses its padding): the prefix runs on to the error
            found = None
        if (found is None or found == start) and _ANCHOR.search(text, start + 1) is not None:
            self._learn_anchor(text[start:])

    def match(self, text: str) -> tuple[str, Capture] | None:
        """(message, capture) by the prefixes learned so far, learning nothing from this line."""
        found = self._match(text)
        message, capture = (text, None) if found is None else (text[found:], describe(text[:found]))
        if self._pytest_marks and message.startswith(PYTEST_FAIL_MARK):
            return self._without_pytest_mark(message, capture)
        return None if capture is None else (message, capture)

    def split(self, text: str) -> tuple[str, Capture | None]:
        """(the message, what the capture added) for one cleaned line."""
        message, capture = self._split_learned(text)
        if message.startswith(PYTEST_FAIL_MARK) and (
            self._pytest_marks or _PYTEST_FAILED.match(message)
        ):
            self._pytest_marks = True
            return self._without_pytest_mark(message, capture)
        return message, capture

    @staticmethod
    def _without_pytest_mark(message: str, capture: Capture | None) -> tuple[str, Capture]:
        """The message with pytest's fail mark taken off into the capture's prefix."""
        prefix = (capture.prefix if capture is not None else "") + PYTEST_FAIL_MARK
        return message[len(PYTEST_FAIL_MARK) :], describe(prefix)

    def _split_learned(self, text: str) -> tuple[str, Capture | None]:
        """(the message, what the capture added) by the prefixes learned."""
        if not self._sampled_all and len(self._sample) < SAMPLE_POINTS[-1]:
            self._sample.append(text)
            if len(self._sample) in SAMPLE_POINTS:
                self._learn_frequent()
        found = self._match(text)
        if found is None or found == self._indented(text):
            self._anchored(text)
            found = self._match(text)
        if found is None:
            return text, None
        prefix = text[:found]
        return text[found:], describe(prefix)

    def prefixed(self, text: str) -> bool:
        """Does one of the prefixes learnt so far start this line?"""
        start = self._indented(text)
        return any(pattern.match(text, start) for pattern, _ in self._patterns)

    def _indented(self, text: str) -> int:
        """How much of the line is the whole log's indentation (see _common_indent)."""
        indent = self._indent
        return len(indent) if indent is not None and text.startswith(indent) else 0

    def _match(self, text: str) -> int | None:
        start = self._indented(text)
        for pattern, bare in self._patterns:
            m = pattern.match(text, start)
            if m is not None:
                end = m.end()
                # a tag learnt from `[rank0] step 3` lines, on torch's own `[rank1]: Traceback ...`:
                # the colon is the tag's, not the message's first character
                if text[end - 1 : end] == "]" and text.startswith(": ", end):
                    end += 2
                return end
            # the prefix alone: an empty line, its trailing space trimmed
            if bare.match(text, start):
                return len(text)
        return start or None

    def _add(self, prefix: str) -> bool:
        if len(self._patterns) >= MAX_SHAPES:
            return False
        pattern = _pattern(prefix)
        if any(p.pattern == pattern.pattern for p, _ in self._patterns):
            return False
        bare = re.compile(_pattern(prefix.rstrip()).pattern + r"[ \t]*$")
        self._patterns.append((pattern, bare))
        self._patterns.sort(key=lambda pair: -len(pair[0].pattern))  # the longest shape first
        return True

    def _learn_frequent(self) -> None:
        """The longest metadata-like leading shape that most sampled lines share."""
        for text in self._sample[len(self._candidates) :]:
            self._candidates.append(_candidates(text) if text.strip() else [])
        if not self._numbered and (numbered := _line_numbers(self._sample)) is not None:
            self._numbered = True
            self._patterns.append((numbered, re.compile(numbered.pattern + r"[ \t]*$")))
            return
        lines = [t for t in self._sample if t.strip()]
        self._indent = _common_indent(lines) if lines else None
        if len(lines) < SHORT_LOG_MIN:
            return
        counts: Counter[str] = Counter()
        example: dict[str, str] = {}
        numbers: dict[str, list[str]] = {}  # a lone number's prefixes: their numbers, line by line
        for candidates in self._candidates:
            for prefix, key in candidates:
                counts[key] += 1
                example.setdefault(key, prefix)
                if key.count("0") == 1 and "a" not in key:
                    numbers.setdefault(key, []).append(_DIGITS.search(prefix).group(0))
        # a log of a few lines (a one-line error under its two start-up lines) learns a shape every
        # one of its lines starts with; a longer one, one that most of its lines start with
        needed = len(lines) if len(lines) < FEW_LINES else max(3, (len(lines) + 1) // 2)
        frequent = [
            k
            for k, n in counts.items()
            if n >= needed
            and looks_like_metadata(example[k])
            and not runs_into_message(example[k])
            and not _counts(numbers.get(k, ()))
        ]
        if not frequent:
            if (named := _pod_and_container(lines)) is not None:
                self._add(named)
            return
        # The longest of the shapes nearly every line shares: a shape that also swallows the first
        # words of the commonest message ("<time> Epoch 3/10 ") is shared by fewer lines.
        top = max(counts[k] for k in frequent)
        self._add(example[max((k for k in frequent if counts[k] >= 0.8 * top), key=len)])

    def _learn_anchor(self, text: str) -> None:
        """Text before a line that starts a traceback or an exception is a prefix when it looks
        like metadata and other recent lines start with its shape."""
        m = _ANCHOR.search(text, 1)
        if m is None:
            return
        end = m.start()
        if text[end - 2 : end] == "  " and m.group(0).startswith("File"):
            end -= 2  # a frame's own two-space indentation belongs to the message
        for mark in ("**", "`"):  # Markdown around the error belongs to it (unmarked)
            if text.endswith(mark, 0, end):
                end -= len(mark)
                break
        prefix = text[:end]
        if not prefix.strip() or len(prefix) > MAX_PREFIX or prefix[-1] not in _BOUNDARY:
            return
        if _BARE_ERROR.match(m.group(0)) and ("'" in prefix or '"' in prefix):
            return
        key = shape(prefix)
        if key in self._rejected:
            return
        if looks_like_metadata(prefix):
            self._add(prefix)
        elif len(self._rejected) < 256:
            self._rejected.add(key)

    def _learn_wrap(self) -> None:
        """A page that wrapped every line at one width leaves many lines of exactly that length,
        none longer, and most of them followed by the shorter rest of their line (a run of
        same-width lines one after another is a fixed format, such as a progress bar)."""
        sample = self._sample
        # not rules of dashes, nor progress bars: Keras's epoch lines, written to a file, are all
        # one length and each is followed by a shorter `Epoch N/M`
        own = [len(set(t)) > 4 and not _PROGRESS_BAR.search(t) for t in sample]
        lengths = Counter(len(t) for t, counts in zip(sample, own, strict=True) if counts)
        if not lengths:
            return
        width = max(lengths)
        if width < WRAP_MIN or width != max(len(t) for t in sample) or lengths[width] < 5:
            return
        cut = [i for i, t in enumerate(sample[:-1]) if len(t) == width and own[i]]
        if len(cut) < 2 or repeats_one_line(sample, cut):
            return
        rests = [i for i in cut_rests(sample, cut) if len(sample[i + 1]) < width]
        if len(rests) >= 0.5 * len(cut):
            self.wrap_width = width


def repeats_one_line(texts: Sequence[str], cut: Sequence[int]) -> bool:
    """Are the lines at a page's width (`cut`: indices into `texts`) one line printed again and
    again at the log's longest length (an error a loop caught each epoch)? That line each time,
    uncut, not a page's cut through several."""
    return len(cut) > 1 and len({texts[i] for i in cut}) == 1


def cut_rests(texts: Sequence[str], cut: Sequence[int]) -> list[int]:
    """Of the lines at a page's width (`cut`: indices into `texts`), those followed by what reads
    as the rest of a cut line. The rest of a wrapped line starts mid-text: a next line that starts
    as this one does is a line of its own (a timestamped record a character shorter than the last);
    so is one of a kind the log also shows where no line of that width is above it (Keras's `Epoch
    2/6` under each epoch's line of metrics, all of one length, when `Epoch 1/6` opens the log)."""
    after_cut = {i + 1 for i in cut}
    alone = {_shape(t) for i, t in enumerate(texts) if i not in after_cut}
    return [
        i
        for i in cut
        if texts[i + 1][:SAME_START] != texts[i][:SAME_START] and _shape(texts[i + 1]) not in alone
    ]


def _shape(text: str) -> str:
    """A line with its figures masked: the lines of one format (`Epoch 3/6`, `Epoch 4/6`) alike."""
    return _FIGURES.sub("0", text.strip())


# stern (and tailers like it) writes `<pod> <container> ` before each line of a Kubernetes job:
# two bare names, no tag to tell them from a message's first words. What does tell them: the same
# two names on nearly every line, the first a generated pod name (words joined by hyphens, with
# figures: `train-job-7f9c4-0`), the second a container's (a DNS label).
_POD_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")
_CONTAINER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
POD_LINES_SHARE = 0.9  # of the sampled lines that start with the same pod and container
POD_LINES_MIN = 4


def _pod_and_container(lines: list[str]) -> str | None:
    """`<pod> <container> ` when nearly every line starts with the same two such names."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in lines:
        words = line.split(" ", 2)
        if len(words) == 3:
            counts[(words[0], words[1])] += 1
    if not counts:
        return None
    (pod, container), n = counts.most_common(1)[0]
    # a log of fewer lines than POD_LINES_MIN: every one of them
    if n < min(POD_LINES_MIN, len(lines)) or n < POD_LINES_SHARE * len(lines):
        return None
    if not (
        _POD_NAME.fullmatch(pod)
        and any(c.isdigit() for c in pod)
        and _CONTAINER_NAME.fullmatch(container)
    ):
        return None
    return f"{pod} {container} "


# A copy that numbers its lines: `cat -n` and `nl` (the number right-aligned, then a tab), `grep -n`
# (`12:` on a matching line, `13-` on a line of its context), a log viewer's gutter (`12 | `), an
# editor's (`  12  `). Each separator is taken exactly: a message's own indentation follows it.
# An empty line keeps its number, its separator trimmed with the line's trailing space.
_LINE_NUMBER = re.compile(r"[ \t]*(\d+)(?:(\t|:|-| \| |\| | {2})|[ \t:|-]*$)")
NUMBERED_LINES_MIN = 3


def _line_numbers(lines: list[str]) -> re.Pattern[str] | None:
    """The prefix of a copy whose every line starts with its number, one separator throughout (a
    grep's `:` and `-` go together): the numbers climb, nearly always by one. A program's own
    numbered lines (`12: loss 0.5`) leave lines without a number among them, or climb otherwise."""
    if len(lines) < NUMBERED_LINES_MIN:
        return None
    numbers, separators = [], set()
    for text in lines:
        m = _LINE_NUMBER.match(text)
        if m is None:
            if text == "--":  # grep's line between two groups of context
                continue
            return None
        numbers.append(int(m.group(1)))
        if m.group(2) is not None:
            separators.add(m.group(2))
    steps = [b - a for a, b in zip(numbers, numbers[1:], strict=False)]
    if any(step <= 0 for step in steps) or steps.count(1) < 0.8 * len(steps):
        return None
    if not separators or len(separators) > 1 and separators != {":", "-"}:
        return None
    separator = "[:-]" if len(separators) > 1 else re.escape(separators.pop())
    return re.compile(rf"[ \t]*\d+{separator}")


_DIGITS = re.compile(r"\d+")
COUNT_DIGITS_MAX = 8  # a longer number is a time (seconds since 1970 have 10 figures), not a count


def _counts(numbers: Sequence[str]) -> bool:
    """Is a number that starts line after line a count (a step, an iteration: another on every
    line), not a tag (a task's rank under `srun --label` repeats on every line it writes)?"""
    return (
        len(numbers) >= NUMBERED_LINES_MIN
        and len(set(numbers)) == len(numbers)
        and all(len(n) <= COUNT_DIGITS_MAX for n in numbers)
    )


def _common_indent(lines: list[str]) -> str | None:
    """The whitespace that starts every one of these lines, when it is at least MIN_INDENT wide: a
    log whose every line is indented was indented as a whole (one line at the margin says not)."""
    common = lines[0][: len(lines[0]) - len(lines[0].lstrip())]
    for line in lines[1:]:
        while common and not line.startswith(common):
            common = common[:-1]
        if _width(common) < MIN_INDENT:
            return None
    return common if _width(common) >= MIN_INDENT else None


def _width(indent: str) -> int:
    return len(indent.expandtabs(MIN_INDENT))


def _candidates(text: str) -> list[tuple[str, str]]:
    """The line's leading parts that end at a boundary (a space after a tag, a `:`, `]`, `|`),
    each with its shape. A part that ends in a name and `:` or `=` with a value after it
    (`[2]  valid_0's l1: nan`, `train-logloss:-nan`) is a metric, not a capture: lines of metrics
    share their shape, and a prefix learned from them would take the names off their values."""
    out: list[tuple[str, str]] = []
    length = 0
    tokens = _TOKEN.findall(text[: MAX_PREFIX + 1])
    kinds = ""  # the shape so far, a token's kind at a time (every line of a log is cut)
    last_visible = ""
    visible_end = 0  # where the last visible token ends: a metric's value is read from there
    for i, token in enumerate(tokens):
        length += len(token)
        if length > MAX_PREFIX:
            break
        kind = _kind(token)
        kinds += kind
        if kind != " ":
            last_visible, visible_end = token, length
        # the metric's regexes only where the part ends in `:`/`=` (they cost a scan of the part)
        if (
            last_visible in _METRIC_MARKS
            and _VALUE_NEXT.match(text, visible_end)
            and _METRIC_NAMED.match(text, 0, visible_end)
        ):
            continue
        if kind == " ":
            if token[0] not in " \t":
                continue  # another space (a no-break space) is no separator
            # one separator: more spaces are the message's own indentation, but for a level padded
            # to its column (`%(levelname)-8s`, rich's handler: `INFO     Epoch 1`)
            keep = 1
            if len(token) > 1 and i > 0 and tokens[i - 1] in _LEVELS:
                # up to the column's end: spaces past it are a message's own (a frame's `  File`)
                keep = min(len(token), max(1, LEVEL_COLUMN - len(tokens[i - 1])))
            out.append((text[: length - len(token) + keep], kinds))
            if len(out) == MAX_CANDIDATES:
                break
            following = tokens[i + 1 : i + 3]
            if len(token) > 1 and len(following) == 2 and following[0][0].isalpha():
                if following[1][0] in " \t":
                    # an indented message (a traceback's `  File "...`) has begun: a prefix that
                    # ran on into it would have the shape of `<time> Epoch ` and eat `File`
                    # (padding inside a tag goes on: `May  1 `, `INFO     root:`, `x  | `)
                    break
        elif token in _BOUNDARY_TOKENS:
            if (
                token == "]"
                and (mark := _MARK_NEXT.match(text, length))
                and _VALUE_NEXT.match(text, mark.end())
                and _METRIC_INDEXED.match(text, 0, length)
            ):
                continue
            out.append((text[:length], kinds))
            if len(out) == MAX_CANDIDATES:
                break
    return out


def rank_of(tag: re.Match[str]) -> int:
    """The rank a matched rank tag names: the one of its groups that took part."""
    return int(next(group for group in tag.groups() if group is not None))


def describe(prefix: str) -> Capture:
    """The rank, pid and time a prefix holds."""
    rank = pid = None
    for pattern in _RANK:
        m = pattern.search(prefix)
        if m:
            rank = rank_of(m)
            break
    m = _PID.search(prefix)
    if m:
        pid = int(m.group(1))
    t = _TIME.search(prefix)
    level = _ERROR_LEVEL.search(prefix)
    return Capture(
        prefix,
        rank,
        pid,
        t.group(0) if t else None,
        level and (level.group(1) or level.group(2) or level.group(3)),
    )
