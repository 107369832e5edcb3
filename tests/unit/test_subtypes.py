"""The subtypes a verdict can carry: every one the code writes is known, and a `--fail-on` subtype
no verdict carries is named with the nearest ones."""

from __future__ import annotations

import re

from trainwatch.diagnostics.judge.subtypes import JUDGED, known_subtypes, unknown_subtypes
from trainwatch.diagnostics.knowledge import load_knowledge

from conftest import ROOT

_LITERAL = re.compile(
    r'"((?:data|oom|numerical|code|library|distributed|hardware|interrupted|hang|early-exit'
    r'|completed|unknown)/[a-z0-9-]+)"'
)


def _written_in_code() -> set[str]:
    found = set()
    for folder in ("diagnostics", "cli"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name != "subtypes.py":
                found.update(_LITERAL.findall(path.read_text()))
    return found


def test_every_subtype_the_code_writes_is_known_and_the_judged_list_has_no_stale_entry():
    known = known_subtypes(load_knowledge(include_user=False))
    written = _written_in_code()
    assert written - known == set()
    assert set(JUDGED) - written == set(), "listed in JUDGED, written nowhere"


def test_templated_signal_and_word_layer_subtypes_are_known():
    known = known_subtypes(load_knowledge(include_user=False))
    for name in (
        "hang/lock",  # a stalled wait's kind
        "hang/no-progress",
        "numerical/divergence",  # a NaN stop's kind
        "interrupted/sigterm",
        "data/error-words",
        "oom/gpu",
    ):
        assert name in known, name


def test_a_subtype_no_verdict_carries_is_named_with_the_nearest():
    knowledge = load_knowledge(include_user=False)
    said = unknown_subtypes(
        frozenset({"oom/gpuu", "numerical/nan-losss", "hang", "oom/gpu"}), knowledge
    )
    assert len(said) == 2
    assert (
        said[0].startswith("numerical/nan-losss is no subtype") and "numerical/nan-loss" in said[0]
    )
    assert said[1].startswith("oom/gpuu is no subtype") and "did you mean oom/gpu" in said[1]
