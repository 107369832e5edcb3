"""trainwatch in CI: GitHub annotations and step summaries, JUnit XML, --fail-on exit codes, colour
and width.
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from trainwatch.cli.console import CI_WIDTH
from trainwatch.cli.exitpolicy import EXIT_FAIL_ON, parse_fail_on

from conftest import FIXTURE_LOGS, ROOT, SCRIPTS, TRAINWATCH, trainwatch, trainwatch_env

CI_TRAIN = str(SCRIPTS / "ci_train.py")
GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(ROOT)}
NO_CI = {"GITHUB_ACTIONS": "", "NO_COLOR": "", "FORCE_COLOR": "", "COLUMNS": ""}


def test_github_annotation_points_at_the_culprit_and_the_summary_is_appended(tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = trainwatch(
        "run", CI_TRAIN, "crash", env={**GITHUB, "GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 1, lines
    source = Path(CI_TRAIN).read_text().splitlines()
    raise_line = next(i for i, line in enumerate(source, 1) if "raise RuntimeError" in line)
    assert errors[0].startswith(
        f"::error file=tests/scripts/ci_train.py,line={raise_line},title=trainwatch%3A "
    )
    assert "RuntimeError" in errors[0].split("::", 2)[2]
    text = summary.read_text()
    assert text.startswith("earlier step\n### ❌ trainwatch: `")  # appended, not overwritten
    assert "**Evidence**" in text and "RuntimeError" in text and "memory peak" in text
    assert "<details><summary>Last lines of output</summary>" in text
    # in the order they were written: the losses (stdout), then the traceback (stderr)
    tail = text.split("<details><summary>Last lines of output</summary>", 1)[1]
    assert tail.index("step 6/6 loss=") < tail.index("RuntimeError: could not fetch shard"), tail


def test_a_reader_of_stderr_gone_away_changes_no_status_and_skips_no_summary(tmp_path):
    # a CI cancel that signals the whole step kills `| tee` too: rich's answer to the broken pipe
    # was SystemExit(1), so the job read 1 and lost its step summary (BU's real runs)
    summary = tmp_path / "summary.md"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the report is written
    try:
        done = subprocess.run(
            [TRAINWATCH, "run", "--", "sh", "-c", "sleep 0.5; echo 'fatal: bad shard'; exit 2"],
            stdout=subprocess.DEVNULL,
            stderr=write_end,
            env=trainwatch_env(**GITHUB, GITHUB_STEP_SUMMARY=str(summary)),
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 2
    assert "trainwatch" in summary.read_text()


def test_nothing_for_github_outside_github_actions(tmp_path):
    summary = tmp_path / "summary.md"
    result = trainwatch(
        "run", CI_TRAIN, "crash", env={**NO_CI, "GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert result.returncode == 1
    assert b"::error" not in result.stderr and not summary.exists()


def test_a_clean_run_gets_no_annotation_and_a_passing_test_case(tmp_path):
    junit = tmp_path / "r.xml"
    summary = tmp_path / "summary.md"
    result = trainwatch(
        "run",
        "--junit",
        str(junit),
        CI_TRAIN,
        "ok",
        env={**GITHUB, "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.returncode == 0
    assert b"::error" not in result.stderr and b"::warning" not in result.stderr
    assert "✅ trainwatch: `completed`" in summary.read_text()
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "0" and suite.find(".//failure") is None
    assert suite.find(".//testcase/system-out") is not None


def test_fail_on_turns_a_quiet_nan_into_exit_3_and_junit_failure(tmp_path):
    junit = tmp_path / "r.xml"
    plain = trainwatch("run", "-q", CI_TRAIN, "nan", env={**GITHUB, "GITHUB_STEP_SUMMARY": ""})
    assert plain.returncode == 0
    assert b"::warning " in plain.stderr  # not a failure without --fail-on, but worth a look
    guarded = trainwatch(
        "run",
        "-q",
        "--fail-on",
        "early-exit,numerical",
        "--junit",
        str(junit),
        CI_TRAIN,
        "nan",
        env=NO_CI,
    )
    assert guarded.returncode == EXIT_FAIL_ON
    assert b"--fail-on: the verdict is numerical/nan-loss; exiting 3" in guarded.stderr
    failure = ET.parse(junit).getroot().find(".//testcase/failure")
    assert failure.get("type") == "numerical"
    assert failure.get("message").startswith("numerical/nan-loss: The loss was printed as NaN")
    assert "Evidence:" in failure.text and "loss=nan" in failure.text  # evidence and output tail
    assert "Last lines of output:" in failure.text and "Training finished." in failure.text
    other = trainwatch("run", "-q", "--fail-on", "oom", CI_TRAIN, "nan", env=NO_CI)
    assert other.returncode == 0
    # a subtype no verdict carries never fails a run: a typo is said, with the nearest subtypes
    typo = trainwatch("run", "-q", "--fail-on", "numerical/nan-losss", CI_TRAIN, "nan", env=NO_CI)
    assert typo.returncode == 0
    assert (
        b"trainwatch: warning: --fail-on: numerical/nan-losss is no subtype trainwatch gives "
        b"(did you mean numerical/nan-loss" in typo.stderr
    )


def test_fail_on_never_hides_the_programs_own_failure():
    result = trainwatch("run", "-q", "--fail-on", "code,unknown", CI_TRAIN, "crash", env=NO_CI)
    assert result.returncode == 1


def test_a_bad_fail_on_is_a_usage_error_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"
    result = trainwatch("run", "--fail-on", "nan", "--", "touch", str(marker), env=NO_CI)
    assert result.returncode == 2 and not marker.exists()
    assert b"unknown category 'nan'" in result.stderr
    assert parse_fail_on("oom, numerical/nan-loss") == frozenset({"oom", "numerical/nan-loss"})


def test_explain_fail_on_and_junit_for_a_saved_log(tmp_path):
    junit = tmp_path / "e.xml"
    log = str(FIXTURE_LOGS / "collate_shape_mismatch.log")
    assert trainwatch("explain", "-q", log, env=NO_CI).returncode == 0
    result = trainwatch("explain", "-q", "--fail-on", "data", "--junit", str(junit), log, env=NO_CI)
    assert result.returncode == EXIT_FAIL_ON
    case = ET.parse(junit).getroot().find(".//testcase")
    assert case.get("classname") == "trainwatch.explain"
    assert case.find("failure").get("message").startswith("data/")


def test_real_report_colour_follows_force_color_and_no_color():
    log = str(FIXTURE_LOGS / "collate_shape_mismatch.log")
    plain = trainwatch("explain", log, env=NO_CI).stderr
    forced = trainwatch("explain", log, env={**NO_CI, "FORCE_COLOR": "1"}).stderr
    vetoed = trainwatch("explain", log, env={**NO_CI, "FORCE_COLOR": "1", "NO_COLOR": "1"}).stderr
    assert b"\x1b[" not in plain and b"\x1b[" not in vetoed
    assert b"\x1b[" in forced
    narrow = trainwatch("explain", log, env={**NO_CI, "COLUMNS": "60"}).stderr.decode()
    assert max(len(line) for line in narrow.splitlines()) <= 60
    wide = plain.decode()
    assert max(len(line) for line in wide.splitlines()) <= CI_WIDTH
