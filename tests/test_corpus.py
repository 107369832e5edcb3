"""Accuracy of `explain` on the development corpus (../shared/corpus): at least 95%."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


@pytest.mark.skipif(not (CORPUS / "cases.jsonl").is_file(), reason="corpus not present")
def test_corpus_accuracy(capsys):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from accuracy import score
    finally:
        sys.path.pop(0)
    figures = score(CORPUS)
    printed = capsys.readouterr().out
    assert figures["total"] >= 50
    assert figures["accuracy"] >= 0.95, printed
