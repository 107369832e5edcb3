"""The corpus kept in the repository (corpus/): its split, its honesty, and the accuracy floor."""

from __future__ import annotations

import re
import sys

import pytest

from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.read.logparse import parse_text
from trainwatch.diagnostics.verdict import CATEGORIES

from conftest import CORPUS, ON_EVERY_CORPUS_LOG, ROOT, corpus_diagnosis

sys.path.insert(0, str(ROOT / "bench"))
from accuracy import load_cases, score, split_part

CASES = load_cases(CORPUS)
KNOWLEDGE = load_knowledge(include_user=False)


def test_every_case_is_complete_and_labelled_with_the_fixed_ids():
    assert len(CASES) >= 245
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    for case in CASES:
        assert (CORPUS / "logs" / f"{case['id']}.log").is_file(), case["id"]
        assert case["category"] in CATEGORIES and set(case["also"]) <= set(CATEGORIES)
        assert case["subtype"].startswith(case["category"] + "/"), case["id"]
        assert case["source"] and case["why"] and case["part"] in ("dev", "validation")
    assert len({c["source"] for c in CASES}) == len(CASES), "one case per public report"


def test_the_split_is_the_documented_rule():
    for case in CASES:
        seed = re.fullmatch(r"[AB]\d{3}", case["id"]) is not None
        assert case["part"] == ("dev" if seed else split_part(case["source"])), case["id"]
    validation = [c for c in CASES if c["part"] == "validation"]
    assert len(validation) >= 90


def _error_lines(text: str) -> set[str]:
    """The lines a validation log would give away: its exceptions and the lines worth citing."""
    facts = parse_text(text, KNOWLEDGE)
    found = {
        f"{e.type}: {e.message.splitlines()[0]}"
        for c in facts.chains
        for e in c.exceptions
        if e.message
    }
    found |= {line.text.strip() for line in facts.notable}
    return {line for line in found if len(line) >= 24}


def test_no_signature_or_phrase_was_written_from_a_validation_log():
    # A line of an example equal to a validation log's line, or a pattern holding a whole line of
    # one, would mean the knowledge was written from the validation part.
    written = {
        line.strip()
        for s in KNOWLEDGE.signatures
        for e in s.examples
        for line in e.text.splitlines()
    }
    patterns = [
        p.pattern.replace("\\", "") for s in KNOWLEDGE.signatures for p in (*s.line, *s.message)
    ]
    leaks = []
    for case in CASES:
        if case["part"] != "validation":
            continue
        text = (CORPUS / "logs" / f"{case['id']}.log").read_text(errors="replace")
        for line in _error_lines(text):
            if line in written or any(line in p for p in patterns):
                leaks.append((case["id"], line))
    # A line a development log holds too (an interpreter's or a framework's fixed sentence, such
    # as `ValueError: __len__() should return >= 0`) may have been written from that log: it is
    # no leak. Only a line no development log holds betrays the validation part.
    if leaks:  # (the dev logs are read only then)
        dev_text = "\n".join(
            (CORPUS / "logs" / f"{case['id']}.log").read_text(errors="replace")
            for case in CASES
            if case["part"] == "dev"
        )
        leaks = [(case_id, line) for case_id, line in leaks if line not in dev_text]
    assert leaks == []


@ON_EVERY_CORPUS_LOG
@pytest.mark.parametrize("part, floor", [("dev", 0.6), ("validation", 0.45)])
def test_accuracy_does_not_fall_below_its_floor(capsys, part, floor):
    figures = _figures()
    assert figures[part] >= floor, capsys.readouterr().out


_cache: dict = {}


def _figures() -> dict:
    if "figures" not in _cache:
        _cache["figures"] = score(
            CORPUS, captures=False, explained=lambda path: corpus_diagnosis(path).verdict
        )
    return _cache["figures"]


@ON_EVERY_CORPUS_LOG
def test_the_word_model_is_the_one_the_dev_part_gives_and_never_read_validation():
    # words.json is derived data (bench/words.py): rebuilt from the dev logs here, it must be the
    # table in the tree; validation logs are not read (a changed validation log changes nothing)
    from words import dev_lines, table_text, training_lines

    from trainwatch.diagnostics.knowledge.words import TABLE, count

    pairs = training_lines(CORPUS, diagnose=corpus_diagnosis)
    assert len(dev_lines(CORPUS, diagnose=corpus_diagnosis)) > 300 and len(pairs) > 600
    assert TABLE.read_text(encoding="utf-8") == table_text(count(pairs)), "run bench/words.py"


def test_no_corpus_log_reads_as_newest_first_and_most_turned_over_do():
    # every corpus log was pasted in the order it was written: none may be turned; turned over
    # (a log viewer's page), nearly all whose tracebacks show a head line over a frame are told
    from trainwatch.diagnostics.read.order import newest_first
    from trainwatch.diagnostics.read.tracebacks import TRACEBACK_HEAD

    from conftest import CORPUS_LOGS

    turned = told = 0
    for path in sorted(CORPUS_LOGS.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()
        assert not newest_first(lines), path.name
        heads = [i for i, line in enumerate(lines[:-1]) if line.rstrip().endswith(TRACEBACK_HEAD)]
        if any(lines[i + 1].lstrip().startswith('File "') for i in heads):
            turned += 1
            told += newest_first(lines[::-1])
    assert turned > 300 and told >= 0.97 * turned, (told, turned)
