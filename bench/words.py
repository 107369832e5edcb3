"""Build the word model of the third layer of knowledge (diagnostics/knowledge/words.json) from
the development part of the corpus (every dev case's final error line, as the verdict cites it,
with its category) and from the knowledge base's own examples (the error line of every example a
signature or phrase family must match, with its category). The validation part is never read (its
lines are in no example: tests/corpus/test_corpus.py).

Usage: python bench/words.py [CORPUS_DIR] [--check] (`--check`: exit 1 when the table in the tree
is not the one the corpus gives; tests/corpus/test_corpus.py checks the same).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from trainwatch.diagnostics.judge.classify import chains_of
from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.knowledge.words import TABLE, count, error_line
from trainwatch.diagnostics.postmortem import explain_logs
from trainwatch.diagnostics.read.logparse import LogParser

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import DEFAULT_CORPUS, load_cases


def dev_lines(corpus: Path, diagnose=None) -> list[tuple[str, str]]:
    """(error line, category) of every dev case that ends on an error. `diagnose` gives a log's
    Diagnosis where the caller has it already (the unit tests read every log once)."""
    if diagnose is None:
        knowledge = load_knowledge(include_user=False)

        def diagnose(path: Path):
            return explain_logs([str(path)], knowledge)

    pairs = []
    for case in load_cases(corpus):
        if case["part"] != "dev":
            continue
        line = error_line(chains_of(diagnose(corpus / "logs" / f"{case['id']}.log").evidence))
        if line:
            pairs.append((line, case["category"]))
    return pairs


def example_lines(knowledge) -> list[tuple[str, str]]:
    """(error line, category) of every example the knowledge base must match that ends on an
    error: framework wording the dev logs may not hold (five-fold on the dev part: 281 of 396
    lines that are no example right with them, 258 of 384 without)."""
    pairs = []
    for signature in knowledge.signatures:
        if signature.raised_in or signature.raised_at:
            continue  # its category is the place's where the words were raised, not the words'
        for example in signature.examples:
            if not example.match:
                continue
            facts = LogParser(knowledge).parse_stream(io.BytesIO(example.text.encode()))
            line = error_line(facts.all_chains)
            if line:
                pairs.append((line, signature.category))
    return pairs


def training_lines(corpus: Path, diagnose=None) -> list[tuple[str, str]]:
    return dev_lines(corpus, diagnose) + example_lines(load_knowledge(include_user=False))


def table_text(table: dict) -> str:
    return json.dumps(table, indent=1, sort_keys=True) + "\n"


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    corpus = Path(args[0]) if args else DEFAULT_CORPUS
    text = table_text(count(training_lines(corpus)))
    if "--check" in sys.argv:
        same = TABLE.exists() and TABLE.read_text(encoding="utf-8") == text
        print("words.json is up to date" if same else "words.json differs: run bench/words.py")
        return 0 if same else 1
    TABLE.write_text(text, encoding="utf-8")
    table = json.loads(text)
    print(f"wrote {TABLE} ({sum(table['cases'].values())} error lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
