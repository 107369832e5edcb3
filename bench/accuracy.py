"""Score `trainwatch explain` on the corpus: overall, per category, and the confusion pairs.

Usage: python bench/accuracy.py [CORPUS_DIR] [-v]. A case is right when the verdict's category is
the case's
label or one of its `also` alternates (../shared/corpus/LABELS.md).
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.postmortem import explain_logs

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def score(corpus: Path, verbose: bool = False) -> dict:
    """Explain every case; returns the figures (also printed)."""
    knowledge = load_knowledge(include_user=False)
    cases = [
        json.loads(line)
        for line in (corpus / "cases.jsonl").read_text().splitlines()
        if line.strip()
    ]
    per = collections.defaultdict(lambda: [0, 0])
    confusion: collections.Counter = collections.Counter()
    right = 0
    for case in cases:
        diagnosis = explain_logs([str(corpus / "logs" / f"{case['id']}.log")], knowledge)
        got = diagnosis.verdict.category
        ok = got == case["category"] or got in case.get("also", [])
        right += ok
        per[case["category"]][0] += ok
        per[case["category"]][1] += 1
        if not ok:
            confusion[(case["category"], got)] += 1
        if verbose or not ok:
            mark = "ok " if ok else "BAD"
            print(
                f"{mark} {case['id']}: want {case['subtype']} got "
                f"{diagnosis.verdict.subtype or got} "
                f"({diagnosis.verdict.confidence:.2f}, {diagnosis.verdict.signature})"
            )
    total = len(cases)
    print(f"\naccuracy {right}/{total} = {right / total:.1%}")
    for category, (ok, n) in sorted(per.items()):
        print(f"  {category:<12} {ok}/{n}")
    if confusion:
        print("confusions (label -> verdict):")
        for (want, got), n in confusion.most_common():
            print(f"  {want} -> {got}: {n}")
    return {"accuracy": right / total if total else 0.0, "right": right, "total": total}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    score(Path(args[0]) if args else DEFAULT_CORPUS, verbose="-v" in sys.argv)
