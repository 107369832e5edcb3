"""Secrets planted in the command line, the environment and the output never reach any report."""

from __future__ import annotations

from trainwatch.diagnostics.redaction import (
    MASK,
)

from conftest import SCRIPTS, read_report, trainwatch

HF = "hf_PLANTEDabcdefghijklmnopqrstuv"
ENV_SECRET = "wandbsecret0123456789"
SECRETS = (HF, ENV_SECRET, "hunter2hunter2", "AKIAABCDEFGHIJKLMNOP")


def test_no_report_of_a_real_run_holds_a_planted_secret(tmp_path):
    summary = tmp_path / "summary.md"
    env = {
        "CI_TEST_API_TOKEN": ENV_SECRET,
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_WORKSPACE": str(SCRIPTS.parent.parent),
    }
    outputs = {name: tmp_path / name for name in ("r.json", "r.xml", "r.html")}
    result = trainwatch(
        "run",
        "--json",
        str(outputs["r.json"]),
        "--junit",
        str(outputs["r.xml"]),
        "--html",
        str(outputs["r.html"]),
        str(SCRIPTS / "ci_train.py"),
        "crash",
        "--token",
        HF,
        env=env,
    )
    assert result.returncode == 1
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    # the program's own output passes through untouched
    assert HF in stdout and ENV_SECRET in stdout
    report_text = stderr[stderr.index("trainwatch report") :]
    assert "::error " in report_text and "RuntimeError" in report_text
    for path in (*outputs.values(), summary):
        text = path.read_text()
        assert "RuntimeError" in text or "code" in text, path
        for secret in SECRETS:
            assert secret not in text, (path.name, secret)
    for secret in SECRETS:
        assert secret not in report_text, secret
    assert MASK in outputs["r.json"].read_text()
    read_report(outputs["r.json"])  # and it holds to the consistency rule
