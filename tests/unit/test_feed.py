"""The output's backlog on its way to the parsers (diagnostics/watch/feed.py): putting never waits,
a backlog over its capacity keeps its start, a sample of its middle and its end, and line numbers
stay right across what was dropped."""

from __future__ import annotations

import threading
import time

from trainwatch.diagnostics.watch import feed as feed_module
from trainwatch.diagnostics.watch.feed import OutputFeed
from trainwatch.diagnostics.watch.observers import LineSplitter


class Recorder:
    """An observer that keeps every line, and can be made to block (a parser far behind)."""

    def __init__(self, blocked: bool = False) -> None:
        self.lines = []
        self.entered = threading.Event()  # the parser has reached its first line
        self.gate = threading.Event()
        if not blocked:
            self.gate.set()

    def __call__(self, line) -> None:
        self.entered.set()
        self.gate.wait(30)
        self.lines.append(line)


def _numbered(first: int, count: int, stream: str = "stdout") -> bytes:
    return b"".join(f"{stream} line {n}\n".encode() for n in range(first, first + count))


def test_everything_is_parsed_when_the_parsers_keep_up():
    seen = Recorder()
    feed = OutputFeed([seen])
    for start in range(1, 1001, 100):
        feed.put("stdout", _numbered(start, 100))
    feed.wait(30)
    assert [line.number for line in seen.lines] == list(range(1, 1001))
    assert feed.skipped_bytes == 0 and feed.note() is None


def test_a_blocked_parser_never_blocks_put_and_the_end_is_kept():
    seen = Recorder(blocked=True)
    feed = OutputFeed([seen], capacity=64 << 10)
    chunk_lines = 200  # "stdout line N\n" is 14-19 bytes: ~3.6 KB a chunk
    chunks = 400
    feed.put("stdout", _numbered(1, chunk_lines))
    assert seen.entered.wait(30)  # the parser took the first chunk, and is stuck in it
    for i in range(1, chunks):  # ~1.4 MB into a 64 KB backlog while the parser is stuck
        feed.put("stdout", _numbered(i * chunk_lines + 1, chunk_lines))
    assert feed.skipped_bytes > 0  # put returned every time: it dropped instead of waiting
    seen.gate.set()
    feed.wait(30)
    numbers = [line.number for line in seen.lines]
    total = chunks * chunk_lines
    # each line is told with its own number, across every gap
    assert all(line.text == f"stdout line {line.number}" for line in seen.lines)
    assert numbers == sorted(numbers)
    assert numbers[-1] == total  # the end is always read
    assert numbers[:chunk_lines] == list(range(1, chunk_lines + 1))  # the start too
    # a sample of the middle: some lines far from both ends were read
    assert any(total * 0.1 < n < total * 0.7 for n in numbers)
    assert 0 < feed.sampled_bytes < feed.skipped_bytes
    note = feed.note()
    assert note is not None and "not parsed" in note and "never held up" in note


def test_gaps_are_told_to_the_right_stream():
    seen = Recorder(blocked=True)
    feed = OutputFeed([seen], capacity=8 << 10)
    errors = 0
    for i in range(60):
        feed.put("stdout", _numbered(i * 50 + 1, 50, "stdout"))
        if i % 10 == 0 or i == 59:
            feed.put("stderr", _numbered(errors + 1, 3, "stderr"))
            errors += 3
    seen.gate.set()
    feed.wait(30)
    for stream in ("stdout", "stderr"):
        lines = [line for line in seen.lines if line.stream == stream]
        assert lines, stream
        assert all(line.text == f"{stream} line {line.number}" for line in lines)
    assert max(line.number for line in seen.lines if line.stream == "stdout") == 3000
    assert max(line.number for line in seen.lines if line.stream == "stderr") == errors


def test_the_backlog_left_at_the_end_is_cut_to_what_the_parsers_read_in_a_second(monkeypatch):
    monkeypatch.setattr(feed_module, "END_MIN_BYTES", 1024)
    seen = Recorder(blocked=True)
    feed = OutputFeed([seen], capacity=1 << 20)
    for i in range(100):
        feed.put("stdout", _numbered(i * 100 + 1, 100))
    feed.close()  # nothing was parsed yet: no measured rate, so only END_MIN_BYTES stay
    seen.gate.set()
    feed.wait(30)
    numbers = [line.number for line in seen.lines]
    assert numbers[-1] == 10_000
    assert len(numbers) < 300  # the first line, then only the last few hundred bytes' lines
    assert feed.note() is not None


class SlowRecorder:
    """An observer that takes a millisecond a line (a parser slower than the output) and notes
    when it read each."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, line) -> None:
        time.sleep(0.001)
        self.times.append(time.monotonic())


def test_while_output_pours_out_the_parsers_wait_for_a_pause_but_still_sample_it():
    seen = SlowRecorder()
    feed = OutputFeed([seen], capacity=8 << 10)
    lines_a_chunk, burst_s = 20, 1.0
    began = time.monotonic()
    chunks = 0
    while time.monotonic() - began < burst_s:  # a chunk every 2 ms, no pause of QUIET_S
        feed.put("stdout", _numbered(chunks * lines_a_chunk + 1, lines_a_chunk))
        chunks += 1
        time.sleep(0.002)
    ended = time.monotonic()
    feed.wait(30)
    during = [t for t in seen.times if t < ended]
    # Left to read as fast as it can, this parser reads a line a millisecond: ~1,500 in the burst.
    # Waiting for a pause, it reads about one chunk each BURST_SLICE_EVERY_S (a chunk is smaller
    # than a slice) once the backlog has overflowed, plus what it read before.
    slices = burst_s / feed_module.BURST_SLICE_EVERY_S + 3
    assert len(during) <= slices * lines_a_chunk
    # ... but a program that never pauses is still sampled while it runs, not only at its end
    assert any(began + burst_s / 2 < t < ended for t in during)
    assert seen.times[-1] > ended  # and the end is read once the output stops


def test_the_splitter_drops_the_fragments_around_a_gap():
    seen = Recorder()
    splitter = LineSplitter("stdout", [seen])
    splitter.feed(b"line 1\nline 2\nhalf of li")
    # dropped: "ne 3\nline 4\nline 5\nline 6 begins" -> 3 newlines
    splitter.feed(b" and ends\nline 7\r50%\rline 7 done\n", skipped_lines=3)
    splitter.close()
    # a `\r` segment is numbered as the line it belongs to
    assert [(line.number, line.text) for line in seen.lines] == [
        (1, "line 1"),
        (2, "line 2"),
        (7, "line 7"),
        (7, "50%"),
        (7, "line 7 done"),
    ]


def test_behind_a_bar_is_read_as_the_terminal_shows_it_and_every_non_finite_redraw_counts():
    seen = Recorder()
    splitter = LineSplitter("stdout", [seen])
    bar = b"step 1\r 10%|#  | 1/10 loss=0.9\r 20%|## | 2/10 loss=nan\r 30%|###| 3/10"
    splitter.feed(bar, behind=True)
    # covered redraws are skipped, but not one with a non-finite number; the last waits for its end
    assert [line.text for line in seen.lines] == [" 20%|## | 2/10 loss=nan"]
    splitter.feed(b" loss=inf\r\r 40%\r", behind=True)
    # the newest complete redraw is read at once (a live bar), even with nothing after it yet
    assert [line.text for line in seen.lines][1:] == [" 30%|###| 3/10 loss=inf", " 40%"]
    splitter.feed(b"\n", behind=True)
    splitter.close()
    assert len(seen.lines) == 3
    # not behind: every redraw is read
    every = Recorder()
    LineSplitter("stdout", [every]).feed(bar + b"\n")
    assert len(every.lines) == 4
    assert all(line.number == 1 for line in seen.lines)
    # a line ended by CRLF is read once, whole
    crlf = Recorder()
    splitter = LineSplitter("stdout", [crlf])
    splitter.feed(b"epoch 1 loss 0.5\r\nepoch 2 loss 0.4\r\n", behind=True)
    assert [(line.number, line.text) for line in crlf.lines] == [
        (1, "epoch 1 loss 0.5"),
        (2, "epoch 2 loss 0.4"),
    ]


def test_a_blank_line_reaches_the_parser_as_it_does_in_a_saved_log():
    # a real run: scikit-learn's warning quoted the fits' traceback, then a blank line and the next
    # warning; without the blank line, a run read that warning into the ValueError's message (and
    # its "non-finite" into a NaN verdict), which explain of the same output did not
    from trainwatch.diagnostics.read.logparse import LogParser

    from conftest import FIXTURE_LOGS

    data = FIXTURE_LOGS.joinpath("gridsearch_fit_failed_then_warning.log").read_bytes()
    parser = LogParser()
    splitter = LineSplitter("stderr", [parser.feed])
    splitter.feed(data)
    splitter.close()
    messages = [e.message for c in parser.finish().chains for e in c.exceptions]
    assert messages == ["dropout probability has to be between 0 and 1, but got 1.5"], messages
    # a bar's redraws and its newline after the last `\r` are no blank line
    seen = Recorder()
    splitter = LineSplitter("stdout", [seen])
    splitter.feed(b"a\n\nb\r\nc\r 50%\r\n")
    splitter.close()
    assert [(line.number, line.text) for line in seen.lines] == [
        (1, "a"),
        (2, ""),
        (3, "b"),
        (4, "c"),
        (4, " 50%"),
    ]
