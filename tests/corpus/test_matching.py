"""The matcher's shortcuts against the long way round, on every line and every log of the corpus:
the literal index (Knowledge.notes) and the signature gates (Knowledge.match) must find exactly what
trying every pattern and every signature finds."""

from __future__ import annotations

import io
import re

import pytest

from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.knowledge.matcher import match_all
from trainwatch.diagnostics.read.logparse import LogParser
from trainwatch.diagnostics.verdict import Cited

from conftest import CORPUS_LOGS, ON_EVERY_CORPUS_LOG, corpus_diagnosis

KNOWLEDGE = load_knowledge(include_user=False)
SIGNATURES = KNOWLEDGE.signatures


def test_the_literal_index_notes_what_trying_every_pattern_notes():
    # Knowledge.notes tries a line only against the patterns whose required literal it holds: it
    # must answer as trying every line pattern would, on every line of the corpus and the examples.
    # (the regexes themselves, compiled here: a signature's own patterns skip by literal too)
    patterns = [re.compile(p.pattern) for s in SIGNATURES if not s.at_end for p in s.line]
    lines = {line for s in SIGNATURES for e in s.examples for line in e.text.splitlines()}
    for log in sorted(CORPUS_LOGS.glob("*.log")):
        lines.update(log.read_text(errors="replace").splitlines())  # each distinct line once
    noted = {line for line in lines if KNOWLEDGE.notes(line)}
    differ = [line for line in lines if (line in noted) != any(p.search(line) for p in patterns)]
    assert len(noted) > 500 and differ == []


GATE_SLICES = 4


@ON_EVERY_CORPUS_LOG
@pytest.mark.parametrize("part", range(GATE_SLICES))
def test_the_gates_pass_over_only_signatures_that_cannot_match(part):
    # Knowledge.match tries only the signatures whose literals' pieces the evidence holds
    # (matcher.SignatureGates): it must find what trying every signature finds, on the facts read
    # from every example and every corpus log (the facts `explain` read from it, once for every
    # test of the corpus group; in slices, as trying every signature on all of them is long).
    examples = [e.text for s in SIGNATURES for e in s.examples]
    logs = sorted(CORPUS_LOGS.glob("*.log"))
    read = [
        (text, LogParser(KNOWLEDGE).parse_stream(io.BytesIO(text.encode())))
        for text in examples[part::GATE_SLICES]
    ] + [(log.name, corpus_diagnosis(log).evidence.log) for log in logs[part::GATE_SLICES]]
    found = 0
    for what, facts in read:
        signals = {s: Cited("log", s, "example") for s in facts.signals}
        gated = KNOWLEDGE.match(facts.all_chains, facts, signals)
        every = match_all(SIGNATURES, facts.all_chains, facts.notable, facts.ending, signals)
        assert [m.signature.id for m in gated] == [m.signature.id for m in every], what[:300]
        found += len(gated)
    assert found > 1000 // GATE_SLICES
