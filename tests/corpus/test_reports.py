"""Every corpus log's report, as `explain` writes it: its JSON round trip and the alternatives it
lists (each log explained once for the whole corpus group, conftest.corpus_diagnosis)."""

from __future__ import annotations

import trainwatch

from conftest import CORPUS_LOGS, ON_EVERY_CORPUS_LOG, corpus_diagnosis, through_a_file

ALL_LOGS = sorted(CORPUS_LOGS.glob("*.log"))



@ON_EVERY_CORPUS_LOG
def test_every_corpus_report_round_trips():
    # one test for all the logs: a thousand parametrized ones cost pytest more than the trips do
    assert len(ALL_LOGS) > 50
    for path in ALL_LOGS:
        report = through_a_file(corpus_diagnosis(path).to_dict())
        again = trainwatch.Diagnosis.from_dict(report)
        assert through_a_file(again.to_dict()) == report, path.name
        assert again.verdict.category == report["verdict"]["category"], path.name
        # one line a reading cites, and another reading cites too, is shown once
        cited = [tuple(c.values()) for c in report["evidence"]]
        assert len(set(cited)) == len(cited), path.name


@ON_EVERY_CORPUS_LOG
def test_no_report_lists_an_alternative_twice_or_at_the_verdicts_own_confidence():
    with_alternatives = 0
    for log in ALL_LOGS:
        v = corpus_diagnosis(log).verdict
        categories = [a.category for a in v.alternatives]
        assert len(categories) == len(set(categories)), (log.name, categories)
        assert v.category not in categories, log.name
        assert all(a.confidence < v.confidence for a in v.alternatives), log.name
        with_alternatives += bool(categories)
    assert with_alternatives > 10  # the check saw alternatives at all
