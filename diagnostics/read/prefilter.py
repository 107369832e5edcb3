"""The literal pre-filter: which lines of a log can hold a word the detailed parser needs, found at
C speed.

The words are the parser's keywords plus the literals every signature line pattern requires. A
line holding none of them is only counted; that is what lets `explain` read a big log at 100 MB/s
and more.
"""

from __future__ import annotations

import os
import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

# Printable bytes by how often they occur in training logs, most common first (measured on real
# logs). The chunk pre-filter is a regex, and a regex costs an attempt at every position holding one
# of its first bytes.
_COMMON = (
    b" 012s3:.o54,nrte7/lpi6=98a_|mc-huv]['E<%gdykFINO{}fb\")w(*xTACR"
    b"DPSGUBLjMz>\\WHqVXK$JY?!+#Z`;Q^~@&"
)
_BYTE_RANK = {b: i for i, b in enumerate(_COMMON)}
# UTF-8 lead bytes: box drawing and block characters (tqdm bars, rich panels) start with 0xe2
_LEAD_RANK = 30
# the shortest tail of a word an anchor byte may start (a shorter one is tried too often)
MIN_PIECE = 4
# Bytes from this rank on are rare in training logs: a chunk usually holds none or a few, which
# `bytes.find` (memchr, ~40 times faster than a regex's scan) finds; a common byte is in every
# chunk and costs its regex's whole scan. The anchors are chosen to be rare where a word allows.
RARE_FROM = 58
RARE_COST = 0.5  # what a rare anchor costs next to a common one
# Occurrences of an anchor tried one by one (find, then match) before its regex scans the rest.
FIND_LIMIT = 64


def line_filter(knowledge, words: Iterable[str]) -> re.Pattern[str]:
    """One regex that finds any of the words in a decoded line (for lines fed one by one)."""
    return _cached(knowledge, "words", words, lambda w: re.compile(_source("trie", w, trie)))


def chunk_filters(knowledge, words: Iterable[str]) -> tuple[tuple[bytes, re.Pattern[bytes]], ...]:
    """(anchor byte, regex) pairs whose matches, over a block of raw bytes, are exactly the places
    one of the words occurs (`word_places`)."""

    def sources(w: list[str]) -> list[list[str]]:  # JSON-able: bytes as latin-1 text
        return [[a.decode("latin-1"), p.decode("latin-1")] for a, p in anchor_patterns(w)]

    return _cached(
        knowledge,
        "anchors",
        words,
        lambda w: tuple(
            (a.encode("latin-1"), re.compile(p.encode("latin-1")))
            for a, p in _source("anchors", w, sources)
        ),
    )


def _source(kind: str, words: list[str], build: Callable[[list[str]], Any]) -> Any:
    """A filter's regex source, from the knowledge cache when it holds it (building one costs tens
    of ms; knowledge/derived.py)."""
    from trainwatch.diagnostics.knowledge.derived import flush, remembered, words_key

    source = remembered(f"prefilter-{kind}", words_key(words), lambda: build(words))
    flush()
    return source


def word_places(
    buf: bytes,
    n: int,
    filters: tuple[tuple[bytes, re.Pattern[bytes]], ...],
    find_limit: int = FIND_LIMIT,
) -> list[int]:
    """Every place in `buf[:n]` where one of the words starts, sorted.

    An anchor byte absent from the chunk costs one `find`; a rare one is tried where `find` puts
    it; only an anchor met more than `find_limit` times has its regex scan the rest of the chunk.
    """
    places: set[int] = set()
    for anchor, pattern in filters:
        at = buf.find(anchor, 0, n)
        tried = 0
        while at >= 0 and tried < find_limit:
            found = pattern.match(buf, at, n)
            if found is not None:
                places.add(at)
            tried += 1
            at = buf.find(anchor, at + 1, n)
        if at >= 0:
            places.update(m.start() for m in pattern.finditer(buf, at, n))
    return sorted(places)


def _cached(knowledge, kind: str, words: Iterable[str], build: Callable):
    """Built once per Knowledge (building one costs tens of ms, and a live run has two parsers)."""
    cache = knowledge.__dict__.setdefault("_prefilters", {})
    if kind not in cache:
        cache[kind] = build(sorted(set(words)))
    return cache[kind]


def _rank(b: int) -> int:
    """How common a byte is: lower is more common."""
    return _BYTE_RANK.get(b, _LEAD_RANK if b >= 0xC0 else 99)


_CHAR_RANK = {chr(b): _rank(b) for b in range(0x80)}  # a character outside ASCII: _LEAD_RANK


def rarities(text: str) -> list[int]:
    """How rare each character of `text` is in training logs: higher is rarer."""
    table = _CHAR_RANK
    return [table.get(char, _LEAD_RANK) for char in text]


def _cost(b: int) -> float:
    """What an anchor byte costs a chunk: a common one its regex's whole scan, a rare one little."""
    return 1.0 if _rank(b) < RARE_FROM else RARE_COST


def anchor_patterns(words: Iterable[str]) -> list[tuple[bytes, bytes]]:
    """(anchor byte, byte pattern) pairs, each pattern starting with its anchor byte, that together
    match every occurrence of every word.

    Python's `re` scans fast for a pattern with a literal first byte (a tight loop over the
    buffer) and slowly for one that starts with a set of bytes (a charset test at every
    position). So instead of one regex over all words, the words are covered by a small set of
    anchor bytes, chosen greedily (the ones most words share, weighed by what they cost: a rare byte
    is found by memchr, see `word_places`), and each word
    is matched from its anchor byte on: the rest of the word, then a lookbehind for the part
    before the anchor. A match is therefore a whole word: a common piece such as "arning" (of
    "Warning") inside "learning_rate" fails in C, and no line needs a second check in Python.
    """
    raw = sorted({w.encode() for w in words if w}, key=len)
    kept: list[bytes] = []
    # a line holding a longer word holds the shorter word inside it: the longer is not needed
    for word in raw:
        if not any(k in word for k in kept):
            kept.append(word)

    def starts(word: bytes) -> dict[int, int]:  # anchor byte -> where it starts a long enough tail
        # a rare byte may start any tail: memchr finds it, and it is tried only where it stands
        out: dict[int, int] = {}
        for i in range(len(word)):
            if len(word) < MIN_PIECE or len(word) - i >= MIN_PIECE or _rank(word[i]) >= RARE_FROM:
                out.setdefault(word[i], i)
        return out

    chosen: set[int] = set()
    uncovered = set(kept)
    while uncovered:
        counts: dict[int, int] = {}
        for word in uncovered:
            for b in starts(word):
                counts[b] = counts.get(b, 0) + 1
        best = max(counts, key=lambda b: (counts[b] / _cost(b), _rank(b)))
        chosen.add(best)
        uncovered = {w for w in uncovered if best not in starts(w)}

    def options(word: bytes, anchors: set[int]) -> dict[int, int]:
        found = {b: i for b, i in starts(word).items() if b in anchors}
        # else any chosen common byte of the word: that byte's scan is paid anyway, and a short
        # tail is only one more branch tried where the byte stands
        return found or {b: word.index(b) for b in set(word) if b in anchors and _cost(b) == 1.0}

    # The greedy choice keeps common anchors that a few words alone need: drop each one whose
    # words can all start at another chosen byte, the one with the fewest words first.
    for b in sorted(chosen, key=lambda b: sum(b in starts(w) for w in kept)):
        if _cost(b) == 1.0 and all(options(w, chosen - {b}) for w in kept):
            chosen.discard(b)
    groups: dict[int, list[tuple[bytes, bytes]]] = {}
    for word in kept:
        where = options(word, chosen)
        anchor = max(where, key=_rank)
        i = where[anchor]
        groups.setdefault(anchor, []).append((word[i:], word))
    return [(bytes([b]), _anchored_trie(entries)) for b, entries in sorted(groups.items())]


def _anchored_trie(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A trie over the words' tails; where a tail ends, a lookbehind checks the whole word (unless
    the tail is the whole word).
    """
    root: dict = {}
    for tail, word in entries:
        node = root
        for ch in tail:
            node = node.setdefault(ch, {})
        node.setdefault(None, set()).add(b"" if tail == word else word)

    def emit(node: dict) -> bytes:
        ends = node.get(None, set())
        if b"" in ends:  # a whole word ends here: nothing longer needs trying
            return b""
        alts = [b"(?<=" + re.escape(w) + b")" for w in sorted(ends)]
        alts += [
            re.escape(bytes([k])) + emit(v)
            for k, v in sorted((k, v) for k, v in node.items() if k is not None)
        ]
        return alts[0] if len(alts) == 1 else b"(?:" + b"|".join(alts) + b")"

    return emit(root)


def trie(words: list[str]) -> str:
    """One regex for many literals, factored by their common prefixes: far faster than a flat
    alternation, which `re` tries word by word at every position.
    """
    root: dict = {}
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[None] = {}

    def emit(node: dict) -> str:
        alts = [
            re.escape(k) + emit(v)
            for k, v in sorted((k, v) for k, v in node.items() if k is not None)
        ]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return "(?:" + body + ")?" if None in node else body

    return emit(root)


# A saved log this big has the word places of its second half found by a forked process while the
# parser reads the first half: the regex scans hold the GIL, so a thread would not run beside it,
# and on a machine with two cores or more they were two thirds of reading a big log.
AHEAD_MIN_BYTES = 64 << 20


class SecondHalf:
    """The word places (absolute file offsets) of a regular file's second half, from its first
    line boundary past the middle to its end, found by a forked child (`start`) and read back when
    the parser gets there (`places`). Every failure falls back to the parser's own scan."""

    def __init__(self, fd: int, size: int, filters, chunk_bytes: int) -> None:
        self._fd = fd
        self._size = size
        self._filters = filters
        self._chunk = chunk_bytes
        self.middle = size  # where the child's places begin (the end until it is started)
        self._pid: int | None = None
        self._out = None
        self._found: array | None = None

    @classmethod
    def start(cls, fh, filters, chunk_bytes: int, min_bytes: int = AHEAD_MIN_BYTES):
        """The helper for `fh`, started; None where it would not pay or is not safe: not a big
        regular file, one core, or threads in this process (forking copies none of them)."""
        import stat
        import threading

        try:
            fd = fh.fileno()
            info = os.fstat(fd)
        except (AttributeError, OSError, ValueError):
            return None
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_size < min_bytes
            or not hasattr(os, "fork")
            or (os.cpu_count() or 1) < 2
            or threading.active_count() > 1
        ):
            return None
        ahead = cls(fd, info.st_size, filters, chunk_bytes)
        return ahead if ahead._fork() else None

    def _fork(self) -> bool:
        half = self._size // 2
        nl = os.pread(self._fd, self._chunk, half).find(b"\n")
        if nl < 0:
            return False
        import tempfile  # here: a live run never reads a big file, and tempfile costs 10 ms

        try:
            self._out = tempfile.TemporaryFile()
            pid = os.fork()
        except OSError:  # no temporary folder to write to, or no process to spare: read it alone
            if self._out is not None:
                self._out.close()
                self._out = None
            return False
        self.middle = half + nl + 1
        if pid == 0:  # the child: scan, write the places, and leave without Python's clean-up
            code = 1
            try:
                self._scan_into(self._out)
                code = 0
            finally:
                os._exit(code)
        self._pid = pid
        return True

    def _scan_into(self, out) -> None:
        found = array("q")
        at, carry = self.middle, b""
        while at < self._size:
            data = os.pread(self._fd, self._chunk, at)
            if not data:
                break
            base = at - len(carry)
            buf = carry + data if carry else data
            at += len(data)
            cut = buf.rfind(b"\n") + 1 if at < self._size else len(buf)
            found.extend(base + p for p in word_places(buf, cut, self._filters))
            carry = buf[cut:]
        out.write(found.tobytes())
        out.flush()

    def places(self, base: int, n: int) -> list[int] | None:
        """The places in the file's bytes `[base, base + n)`, as offsets from `base`; None when
        that range starts before the middle or runs past the end the helper read to (a log still
        being written grows: the parser scans those itself), or the helper failed."""
        if base < self.middle or base + n > self._size:
            return None
        if self._found is None and not self._collect():
            self.middle = self._size  # the parser reads on without it
            return None
        found = self._found
        lo = bisect_left(found, base)
        hi = bisect_left(found, base + n, lo)
        return [p - base for p in found[lo:hi]]

    def _collect(self) -> bool:
        pid, self._pid = self._pid, None
        if pid is None:
            return False
        _, status = os.waitpid(pid, 0)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return False
        self._out.seek(0)
        self._found = array("q")
        self._found.frombytes(self._out.read())
        return True

    def close(self) -> None:
        """Stop the child if it still runs (the parser stopped early) and reap it."""
        if self._pid is not None:
            import signal

            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self._pid, 0)
            self._pid = None
        if self._out is not None:
            self._out.close()
            self._out = None
