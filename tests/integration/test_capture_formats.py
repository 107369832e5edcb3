"""Metamorphic: every corpus log re-captured in 14 formats (bench/captures.py) gets the verdict
its original gets (issue 11: at least 98% of all pairs). Each format is held to 98% on its own,
which holds the whole to it too, and lets the formats run on separate test workers."""

from __future__ import annotations

import functools
import io
import sys

import pytest

from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.postmortem import explain_logs

from conftest import CORPUS, ROOT

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
    """Each case's id, log text and verdict as it was captured."""
    out = []
    for case in load_cases(CORPUS):
        text = (CORPUS / "logs" / f"{case['id']}.log").read_text(errors="replace")
        out.append((case["id"], text, _category(text)))
    return tuple(out)


@pytest.mark.parametrize("name", NAMES)
def test_every_corpus_log_keeps_its_verdict_in_this_capture_format(name):
    originals = _originals()
    changed = [
        f"{case_id} {name}: {original} -> {got}"
        for case_id, text, original in originals
        if (got := _category(rewrite(text, name))) != original
    ]
    assert len(changed) <= 0.02 * len(originals), changed
