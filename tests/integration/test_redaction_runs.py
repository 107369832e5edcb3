"""Secrets planted in the command line, the environment and the output never reach any report."""

from __future__ import annotations

from trainwatch.diagnostics.evidence import Evidence, ExitStatus
from trainwatch.diagnostics.redaction import (
    MASK,
)
from trainwatch.diagnostics.verdict import Cited, Culprit, Diagnosis, Verdict

from conftest import SCRIPTS, read_report, trainwatch

HF = "hf_PLANTEDabcdefghijklmnopqrstuv"
ENV_SECRET = "wandbsecret0123456789"
SECRETS = (HF, ENV_SECRET, "hunter2hunter2", "AKIAABCDEFGHIJKLMNOP")


def _diagnosis() -> Diagnosis:
    verdict = Verdict(
        category="code",
        subtype=None,
        confidence=0.8,
        summary=f"failed with key {HF}",
        evidence=(Cited("exception", "RuntimeError: password=hunter2hunter2", "probe pid 1"),),
        culprit=Culprit("train.py", 3, "main", f"login('{ENV_SECRET}')"),
        advice=("rotate",),
    )
    return Diagnosis(
        trainwatch_version="0",
        command=("python3", "train.py", "--token", "plain-token-value"),
        started_at=None,
        duration_s=1.0,
        exit=ExitStatus(1, None, 1),
        verdict=verdict,
        evidence=Evidence(source="run", notes=(f"seen {ENV_SECRET}",)),
        sections={"extra": {"argv": ["--api-key", "zzzzzzzzzz"]}},
    )


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
