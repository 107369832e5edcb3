"""Metamorphic: every corpus log re-captured in eight of the 14 formats of bench/captures.py gets
the verdict its original gets (issue 11: at least eight formats a log, 98% of all pairs). The
formats a log gets turn with its place in the corpus, so each format meets 8/14 of the logs;
`bench/accuracy.py` re-captures every log in all 14 (and `--more`: 15 more). Each format is held to
98% on its own, which holds the whole to it too. The originals' verdicts are the corpus tests'
reading of every corpus log: in their xdist group, on one worker, each log is explained once."""

from __future__ import annotations

import functools
import io
import sys

import pytest

from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.postmortem import explain_logs

from conftest import CORPUS, CORPUS_LOGS, ON_EVERY_CORPUS_LOG, ROOT, corpus_diagnosis

sys.path.insert(0, str(ROOT / "bench"))
from accuracy import load_cases
from captures import NAMES, rewrite


@functools.cache
def _knowledge():
    return load_knowledge(include_user=False)


def _category(text: str) -> str:
    return explain_logs(["-"], _knowledge(), stdin=io.BytesIO(text.encode())).verdict.category


@functools.cache
def _originals() -> tuple[tuple[str, str, str], ...]:
    """Each case's id, log text and verdict as it was captured (the unit tests' reading, where
    this worker made it)."""
    out = []
    for case in load_cases(CORPUS):
        path = CORPUS_LOGS / f"{case['id']}.log"
        text = path.read_text(errors="replace")
        out.append((case["id"], text, corpus_diagnosis(path).verdict.category))
    return tuple(out)


FORMATS_PER_LOG = 8


def _meets(log_index: int, format_index: int) -> bool:
    """Does this log get this format? Each log gets FORMATS_PER_LOG formats in a row, from its own
    place on."""
    return (format_index - log_index) % len(NAMES) < FORMATS_PER_LOG


@ON_EVERY_CORPUS_LOG
def test_every_log_gets_eight_formats_and_every_format_its_share_of_the_logs():
    count = len(_originals())
    for i in range(count):
        assert sum(_meets(i, f) for f in range(len(NAMES))) == FORMATS_PER_LOG
    for f in range(len(NAMES)):
        assert sum(_meets(i, f) for i in range(count)) >= count // len(NAMES) * FORMATS_PER_LOG


@ON_EVERY_CORPUS_LOG
@pytest.mark.parametrize("name", NAMES)
def test_every_corpus_log_keeps_its_verdict_in_this_capture_format(name):
    place = NAMES.index(name)
    originals = [o for i, o in enumerate(_originals()) if _meets(i, place)]
    changed = [
        f"{case_id} {name}: {original} -> {got}"
        for case_id, text, original in originals
        if (got := _category(rewrite(text, name))) != original
    ]
    assert len(changed) <= 0.02 * len(originals), changed
