"""The third layer of knowledge: the category an unknown error's words lean to
(knowledge/words.py)."""

from __future__ import annotations

import io

from trainwatch.diagnostics.judge.classify import WORDS_LEAN_FROM, words_confidence
from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.knowledge.words import LEANS_FROM, WordModel, count, model, tokens
from trainwatch.diagnostics.postmortem import explain_logs


def test_words_are_lower_cased_class_names_split_and_numbers_and_short_words_left_out():
    assert tokens("ModuleNotFoundError: No module named 'x_y' at 0x7f 12 ab") == {
        "module",
        "found",
        "error",
        "named",
    }


def test_a_model_leans_where_its_cases_hold_the_words_and_not_on_words_it_never_saw():
    lines = [("bad label in the annotation file", "data")] * 6
    lines += [("version of the package is too old", "library")] * 6
    lines += [("only once here", "code")]
    table = count(lines)
    assert "once" not in table["holding"]["code"]  # one case's own word is not kept
    words = WordModel.from_table(table)
    leaning = words.lean("FooError: the annotation file holds a bad label")
    assert leaning is not None and leaning.category == "data" and leaning.share >= LEANS_FROM
    assert set(leaning.words) <= {"annotation", "file", "bad", "label", "holds"}
    assert words.lean("nothing it has seen") is None
    # words shared evenly by two categories lean to neither
    even = WordModel.from_table(count([("same words", "data"), ("same words", "code")] * 3))
    assert even.lean("same words") is None


def test_an_error_no_signature_knows_is_judged_by_its_words_under_the_phrases_confidence():
    log = (
        b'Traceback (most recent call last):\n  File "/work/train.py", line 3, in <module>\n'
        b"    run()\nQuuxError: CUDA device memory exhausted while allocating the activations\n"
    )
    verdict = explain_logs(["-"], load_knowledge(include_user=False), stdin=io.BytesIO(log)).verdict
    assert model() is not None
    assert verdict.subtype == f"{verdict.category}/error-words" and verdict.category == "oom"
    assert 0.3 < verdict.confidence <= 0.5 and verdict.advice
    assert "QuuxError" in verdict.evidence[0].text


def test_a_weak_leaning_is_said_as_a_guess_at_the_level_of_unknown():
    # "same words": 3 data cases, 4 code (one of them also "other thing"), 2 library
    lines = [("same words", "data")] * 3 + [("same words", "code")] * 4
    lines += [("other thing", "code"), ("other thing", "library"), ("other thing", "library")]
    leaning = WordModel.from_table(count(lines)).lean("same words")
    assert leaning is not None and LEANS_FROM <= leaning.share < WORDS_LEAN_FROM
    assert words_confidence(leaning.share) == 0.3
    assert words_confidence(WORDS_LEAN_FROM) == 0.4 and words_confidence(0.95) == 0.5
