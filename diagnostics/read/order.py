"""Logs copied newest first (the order log viewers show by default): told by their tracebacks, their
timestamps or their loop's counts, and put back in the order they were written."""

from __future__ import annotations

import re
from itertools import pairwise

from trainwatch.diagnostics.read.collectors import csv_text_column
from trainwatch.diagnostics.read.tracebacks import TRACEBACK_HEAD

# Kibana, Grafana's Loki, CloudWatch Logs Insights and Datadog list a job's lines newest first; a
# user who copies them from the page pastes a traceback upside down: its exception first, its
# `Traceback (most recent call last):` last. Read as it stands, 1 in 8 corpus logs of four lines or
# more got another verdict.
_FRAME = re.compile(r'File ""?[^"]+""?, line \d+')  # a CSV download doubles the quotes
# the exception line that ends a traceback: `ValueError: ...`, `torch.OutOfMemoryError: ...`
_RAISED = re.compile(r"(?:^|\s)[\w.]*(?:Error|Exception|Interrupt|Exit)\b:? ")
# a date and time at a line's start (after a capture's bracket or a level at most): sortable as text
_STAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?")
STAMP_WITHIN = 40  # characters from a line's start a timestamp may begin at
# an epoch, step or iteration number: `Epoch 3/10`, `step=1200`, `[iter 40]`
_COUNTER = re.compile(r"(?i)\b(?:epoch|step|iter(?:ation)?)\b\s*[:=#]?\s*\[?(\d+)")
# A traceback's head line below its frames is sure; its exception line above them may be a paste of
# pieces in an odd order: it takes two of those to turn a log.
HEAD_VOTES = 2
TRACEBACK_VOTES = 2
# steps going back (in time, or in the loop's count), at least, and three times as many as forward
STEPS_MIN = 4
PRIME_LINES = 50  # lines a CSV header's columns are checked against
# A log longer than this is a file a program wrote, never a page's copy: read as it stands.
MAX_BYTES = 4 << 20


def newest_first(lines: list[str]) -> bool:
    """Were these lines written newest first? Tracebacks vote first: each head line by what stands
    next to it (its first frame comes after it, as Python prints it, or before it, upside down),
    each exception line by where its last frame is (above it, with its source line between, or
    below it). Without a traceback, the timestamps at the lines' starts decide, then the epoch,
    step or iteration numbers, where most go back."""
    said = [line for line in lines if line.strip()]
    votes = 0
    for i, line in enumerate(said):
        before = said[i - 1] if i > 0 else ""
        after = said[i + 1] if i + 1 < len(said) else ""
        if line.rstrip().endswith(TRACEBACK_HEAD):
            votes += (
                -HEAD_VOTES if _FRAME.search(after) else HEAD_VOTES if _FRAME.search(before) else 0
            )
        elif _RAISED.search(line):
            below = said[i + 2] if i + 2 < len(said) else ""
            above = said[i - 2] if i > 1 else ""
            if _FRAME.search(above) and _source_of(above, before):
                votes -= 1
            elif _FRAME.search(below) and _source_of(below, after):
                votes += 1
    if votes >= TRACEBACK_VOTES or votes < 0:
        return votes > 0
    found = (_STAMP.search(line[: STAMP_WITHIN + 30]) for line in said)
    stamps = [m.group(0) for m in found if m is not None and m.start() <= STAMP_WITHIN]
    counted = (m.group(1) for m in map(_COUNTER.search, said) if m is not None)
    for values in (stamps, [int(v) for v in counted]):
        back = sum(1 for a, b in pairwise(values) if b < a)
        forward = sum(1 for a, b in pairwise(values) if b > a)
        if back >= STEPS_MIN and back >= 3 * forward:
            return True
        if forward >= STEPS_MIN and forward >= 3 * back:
            return False
    return False


def _source_of(frame: str, line: str) -> bool:
    """Is `line` the source line Python prints under this frame line: after the same capture
    prefix, indented further than the frame?"""
    at = frame.find('File "')
    prefix = frame[:at].rstrip()
    if not line.startswith(prefix) or _FRAME.search(line) or TRACEBACK_HEAD in line:
        return False
    rest = line[len(prefix) :]
    body = rest.lstrip()
    return bool(body) and len(rest) - len(body) > at - len(prefix)


def oldest_first(data: bytes) -> bytes | None:
    """The log's bytes in the order they were written, or None when they already are (or the log
    is too long to be a page's copy)."""
    if len(data) > MAX_BYTES:
        return None
    text = data.decode("utf-8", "replace")
    lines = text.splitlines()
    if not newest_first(lines):
        return None
    # a CSV download's header names the columns of the rows below it: it stays first
    first = lines[:1] if csv_text_column(lines[:PRIME_LINES]) is not None else []
    turned = first + lines[len(first) :][::-1]
    return "\n".join(turned).encode("utf-8", "surrogateescape") + b"\n"
