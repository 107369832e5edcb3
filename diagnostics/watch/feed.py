"""The output's way to the parsers: a bounded backlog that the writer hands chunks to without ever
waiting, and the thread that cuts them into lines for the observers.

The relay (watch/child.py) writes each chunk to its destination first and only then puts it here;
putting never blocks and never parses. Parsing runs in a thread of its own, as fast as it can.
When a program writes faster than the parsers read (800,000 `print` lines, a `\\r` bar redrawn at
full speed), the backlog degrades rather than grow or slow the program: it drops its oldest chunks
but keeps one in SAMPLE_EVERY, so the parsers read the head of the output, a sample of its middle
and the whole of its end. Line numbers stay right (the newlines of dropped chunks are counted),
and `note()` says what was skipped, for the report. When the run ends, what the parsers could not
read within END_BUDGET_S is dropped the same way, oldest first, so a backlog never holds up the
report by more than that.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Sequence

from trainwatch.diagnostics.watch.observers import LineObserver, LineSplitter

CAPACITY = 1 << 20  # bytes waiting for the parsers before the oldest are dropped
SAMPLE_EVERY = 8  # of the chunks dropped from the middle, one in this many is read all the same
END_BUDGET_S = 1.0  # at the end, keep only what the parsers read in this long (measured) ...
END_MIN_BYTES = 64 << 10  # ... and never less than this: the last lines name the failure
# The parsing thread's niceness: on a machine with few cores, the program's own threads come first.
PARSER_NICENESS = 5
# While the backlog is dropping output (and until BEHIND_S after), the parsers read in slices of
# SLICE_BYTES and, before each, wait for a pause in the program's output (no chunk for QUIET_S):
# they are behind anyway, and every moment they hold the GIL and a core is one the relay and the
# program wait for (on two cores the program, its reader and the relay already fill both). A
# program that never pauses still has a slice read every BURST_SLICE_EVERY_S, so its output is
# still sampled while it runs (a NaN stop needs that), not only at its end.
BEHIND_S = 1.0
SLICE_BYTES = 16 << 10
QUIET_S = 0.02
BURST_SLICE_EVERY_S = 0.25


class _Chunk:
    __slots__ = ("stream", "data", "skipped_lines", "sampled", "arrived")

    def __init__(self, stream: str, data: bytes) -> None:
        self.stream = stream
        self.data = data
        self.arrived = time.time()
        # None, or how many lines were dropped just before this chunk of its stream
        self.skipped_lines: int | None = None
        self.sampled = False  # kept from a stretch that was otherwise dropped


class OutputFeed:
    """Chunks of output in, lines to `observers` out, in a thread of its own; `put` never waits."""

    def __init__(self, observers: Sequence[LineObserver], capacity: int = CAPACITY) -> None:
        self.observers = tuple(observers)
        self.capacity = capacity
        self.total_bytes = 0  # everything put
        self.skipped_bytes = 0  # dropped unread
        self.sampled_bytes = 0  # read from a stretch that was otherwise dropped
        self._chunks: collections.deque[_Chunk] = collections.deque()
        self._size = 0
        self._dropped = 0  # chunks considered for dropping so far, for the sampling count
        self._sample_every = SAMPLE_EVERY
        self._owed: dict[str, int] = {}  # stream -> dropped lines to tell its next chunk
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._parsed_bytes = 0
        self._parse_seconds = 0.0
        self._dropped_at = -BEHIND_S  # time.monotonic() of the last drop
        self._ending = threading.Event()  # set by close(): the parsers stop pausing
        self._put_at = 0.0  # time.monotonic() of the last chunk put
        self._sliced_at = 0.0  # ... and of the end of the last slice read
        # time.time() when the chunk being read came: the parsers run behind the output, and
        # what they read happened then (a checkpoint saved after a NaN loss was printed)
        self.arrived_at: float | None = None

    # ---- the writer's side -----------------------------------------------------------------------
    def put(self, stream: str, data: bytes) -> None:
        """Queue a chunk for the parsers; returns at once, whatever the backlog."""
        if not self.observers or not data:
            return
        with self._cond:
            if self._closed:
                return
            chunk = _Chunk(stream, data)
            owed = self._owed.pop(stream, None)
            if owed is not None:
                chunk.skipped_lines = owed
            self._chunks.append(chunk)
            self._size += len(data)
            self._put_at = time.monotonic()
            self.total_bytes += len(data)
            if self._size > self.capacity:
                self._thin(self.capacity // 2, sample=True)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._parse, name="trainwatch-parser", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        """No more output: keep what the parsers can read within END_BUDGET_S, drop the rest."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._ending.set()
            rate = self._parsed_bytes / self._parse_seconds if self._parse_seconds > 0.05 else 0
            keep = max(END_MIN_BYTES, int(rate * END_BUDGET_S))
            if self._size > keep:
                self._thin(keep, sample=False)
            self._cond.notify()

    def wait(self, timeout: float | None = None) -> None:
        """Close, then wait until the parsers have read what is kept."""
        self.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def note(self) -> str | None:
        """What the report says when part of the output was not parsed; None when all of it was."""
        if not self.skipped_bytes:
            return None
        return (
            f"the program wrote faster than trainwatch could parse: {_mb(self.skipped_bytes)} of "
            f"its {_mb(self.total_bytes)} of output were relayed but not parsed (the parsers read "
            "its start, a sample of its middle and its end); parsing never held up its output"
        )

    # ---- dropping --------------------------------------------------------------------------------
    def _thin(self, target: int, sample: bool) -> None:
        """Drop the oldest chunks until about `target` bytes wait (the newest chunk always stays);
        with `sample`, one dropped chunk in `_sample_every` is kept instead. When the sample
        outgrows a quarter of the capacity, every other one of it goes and the sampling rate halves
        (as the memory timeline does), so it stays spread evenly over the whole stretch. One pass
        over the backlog; called with the lock held."""
        chunks = list(self._chunks)
        start, size = len(chunks) - 1, len(chunks[-1].data)  # the tail: the newest that fit
        while start > 0 and size + len(chunks[start - 1].data) <= target:
            start -= 1
            size += len(chunks[start].data)
        older, tail = chunks[:start], chunks[start:]
        if not older:
            return
        self._dropped_at = time.monotonic()
        halve = sum(len(c.data) for c in older if c.sampled) > self.capacity // 4
        if halve:
            self._sample_every *= 2
        kept: list[_Chunk] = []
        gaps: dict[str, int] = {}  # stream -> lines dropped since its last kept chunk
        parity = 0
        for chunk in older:
            if chunk.sampled:
                parity += 1
                keep = sample and (not halve or parity % 2 == 1)  # the oldest stays
            else:
                self._dropped += 1
                keep = sample and self._dropped % self._sample_every == 0
                if keep:
                    chunk.sampled = True
                    self.sampled_bytes += len(chunk.data)
            if keep:
                if chunk.stream in gaps:
                    chunk.skipped_lines = (chunk.skipped_lines or 0) + gaps.pop(chunk.stream)
                kept.append(chunk)
                continue
            if chunk.sampled:
                self.sampled_bytes -= len(chunk.data)
            self.skipped_bytes += len(chunk.data)
            lines = (chunk.skipped_lines or 0) + _newlines(chunk.data)
            gaps[chunk.stream] = gaps.get(chunk.stream, 0) + lines
        for stream, lines in gaps.items():  # told to the next chunk of that stream, here or later
            after = next((c for c in tail if c.stream == stream), None)
            if after is None:
                self._owed[stream] = self._owed.get(stream, 0) + lines
            else:
                after.skipped_lines = (after.skipped_lines or 0) + lines
        self._chunks = collections.deque(kept + tail)
        self._size = sum(len(c.data) for c in self._chunks)

    # ---- the parsers' side ----------------------------------------------------------------------
    def _parse(self) -> None:
        try:  # Linux sets the niceness of one thread by its id (setpriority(2), NOTES)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PARSER_NICENESS)
        except (OSError, AttributeError):
            pass
        # The first line builds the parsers (imports, the knowledge base: tens of milliseconds of
        # the GIL and a core), so when output starts with a burst, that waits for a pause too.
        self._sliced_at = time.monotonic()
        self._wait_for_a_pause()
        splitters: dict[str, LineSplitter] = {}
        while True:
            with self._cond:
                while not self._chunks and not self._closed:
                    self._cond.wait()
                if not self._chunks:
                    break
                chunk = self._chunks.popleft()
                self._size -= len(chunk.data)
            splitter = splitters.get(chunk.stream)
            if splitter is None:
                splitter = splitters[chunk.stream] = LineSplitter(chunk.stream, self.observers)
            skipped = chunk.skipped_lines
            for start in range(0, len(chunk.data), SLICE_BYTES):
                piece = chunk.data[start : start + SLICE_BYTES]
                behind = time.monotonic() - self._dropped_at < BEHIND_S
                if behind:
                    self._wait_for_a_pause()
                began = time.monotonic()
                self.arrived_at = chunk.arrived
                splitter.feed(piece, skipped_lines=skipped, behind=behind)
                skipped = None
                self._parse_seconds += time.monotonic() - began
                self._parsed_bytes += len(piece)
                self._sliced_at = time.monotonic()
        for splitter in splitters.values():
            splitter.close()

    def _wait_for_a_pause(self) -> None:
        """Wait for a pause in the program's output, at most until BURST_SLICE_EVERY_S has passed
        since the last slice was read."""
        self.wait_for_a_pause(self._sliced_at + BURST_SLICE_EVERY_S)

    def wait_for_a_pause(self, deadline: float) -> None:
        """Wait until the program has written something and then paused for QUIET_S, or until
        time.monotonic() reaches `deadline`, or until the output ends. Background work that can
        wait calls this first, so that it runs after the program's first line has gone out and
        between bursts of output, not during them."""
        while not self._ending.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            if not self._put_at:  # nothing written yet
                self._ending.wait(min(QUIET_S, deadline - now))
                continue
            quiet_for = now - self._put_at
            if quiet_for >= QUIET_S:
                return
            self._ending.wait(min(QUIET_S - quiet_for, deadline - now))


def _newlines(data: bytes) -> int:
    """How many newlines `data` holds. bytes.count of one byte walks it a byte at a time (0.55 ms
    a MiB here); replace() finds them with memchr, six times faster, and this runs on the relay's
    thread for every chunk dropped."""
    return len(data) - len(data.replace(b"\n", b""))


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"
