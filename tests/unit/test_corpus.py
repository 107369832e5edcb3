"""Accuracy of `explain` on the corpus kept in the repository (corpus/): at least 95%."""

from __future__ import annotations

import sys

from conftest import CORPUS, ROOT


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
