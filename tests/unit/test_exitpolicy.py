"""The exit policy: every status a program can end with passes through unchanged, and only
`--fail-on` or `--on-nan stop` turn a 0 into 3."""

from __future__ import annotations

import signal

import pytest

from trainwatch.cli.exitpolicy import EXIT_FAIL_ON, final_status, parse_fail_on, policy_note
from trainwatch.diagnostics.errors import UsageError
from trainwatch.diagnostics.evidence import Evidence, ExitStatus
from trainwatch.diagnostics.judge.classify import classify
from trainwatch.diagnostics.verdict import Diagnosis


def _diagnosis(returncode: int) -> Diagnosis:
    exit = ExitStatus.from_returncode(returncode)
    evidence = Evidence(source="run", command=("prog",), exit=exit)
    return Diagnosis("0", ("prog",), None, 1.0, exit, classify(evidence), evidence)


def test_every_exit_code_passes_through():
    wrong = {code: final_status(_diagnosis(code)) for code in range(256)}
    assert {code: got for code, got in wrong.items() if got != code} == {}


def test_every_signal_becomes_128_plus_its_number():
    for number in sorted({int(s) for s in signal.Signals}):
        diagnosis = _diagnosis(-number)
        assert final_status(diagnosis) == 128 + number, number
        assert policy_note(diagnosis, 128 + number) is None


def test_fail_on_turns_only_a_zero_into_3():
    clean = _diagnosis(0)
    category = clean.verdict.category
    assert final_status(clean, parse_fail_on(category)) == EXIT_FAIL_ON
    assert final_status(clean, parse_fail_on("hang" if category != "hang" else "data")) == 0
    assert final_status(_diagnosis(1), parse_fail_on(category)) == 1


def test_a_saved_report_of_a_run_stopped_for_nan_fails_as_the_run_did():
    # `trainwatch report` of the JSON of an `--on-nan stop` run whose program then exited 0: the
    # run exited 3, and so must its re-rendered CI reports (they once passed)
    report = _diagnosis(0).to_dict()
    assert final_status(Diagnosis.from_dict(report)) == 0
    report["nan_stop"] = {"after": 1, "first_step": 7, "signals": ["SIGINT"]}
    again = Diagnosis.from_dict(report)
    assert final_status(again) == EXIT_FAIL_ON
    assert "--on-nan stop" in (policy_note(again, EXIT_FAIL_ON) or "")


def test_fail_on_rejects_an_unknown_category():
    with pytest.raises(UsageError, match="unknown category 'nope'"):
        parse_fail_on("data,nope")


def test_fail_on_refuses_an_empty_list_and_a_subtype_not_written_as_reports_write_it():
    import pytest

    from trainwatch.diagnostics.errors import UsageError

    assert parse_fail_on("numerical/nan-loss, hang") == {"numerical/nan-loss", "hang"}
    for bad in ("", " , ", "numerical/NaN loss", "numerical/", "nonsense"):
        with pytest.raises(UsageError):
            parse_fail_on(bad)
