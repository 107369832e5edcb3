"""Metamorphic: every corpus log re-captured in 14 formats (bench/captures.py) gets the verdict
its original gets (issue 11: at least 98% of all pairs; a format that loses more than 5% of the
corpus is a regression of its own)."""

from __future__ import annotations

import io
import sys
from collections import Counter

from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.postmortem import explain_logs

from conftest import CORPUS, ROOT

sys.path.insert(0, str(ROOT / "bench"))
from accuracy import load_cases
from captures import NAMES, rewrite


def test_every_corpus_log_keeps_its_verdict_in_every_capture_format():
    knowledge = load_knowledge(include_user=False)

    def category(text: str) -> str:
        return explain_logs(["-"], knowledge, stdin=io.BytesIO(text.encode())).verdict.category

    lost: Counter[str] = Counter()
    changed = []
    cases = load_cases(CORPUS)
    for case in cases:
        text = (CORPUS / "logs" / f"{case['id']}.log").read_text(errors="replace")
        original = category(text)
        for name in NAMES:
            got = category(rewrite(text, name))
            if got != original:
                lost[name] += 1
                changed.append(f"{case['id']} {name}: {original} -> {got}")
    pairs = len(cases) * len(NAMES)
    assert (pairs - len(changed)) / pairs >= 0.98, changed
    assert all(n <= 0.05 * len(cases) for n in lost.values()), lost
