"""The report contract: the JSON fields of docs/report.md, and the terminal report rendered at a
fixed width.
"""

from __future__ import annotations

import sys

from trainwatch.diagnostics.verdict import (
    SCHEMA,
)

from conftest import read_report, trainwatch

REQUIRED = {
    "schema",
    "trainwatch_version",
    "command",
    "started_at",
    "duration_s",
    "exit",
    "verdict",
    "evidence",
    "culprit",
    "exception",
    "memory",
    "advice",
}


def test_json_report_has_the_documented_fields(tmp_path):
    out = tmp_path / "r.json"
    result = trainwatch("run", "-q", "--json", str(out), "--", sys.executable, "-c", "print('hi')")
    assert result.returncode == 0
    data = read_report(out)
    assert REQUIRED <= set(data)
    assert data["schema"] == SCHEMA
    assert data["command"][-2:] == ["-c", "print('hi')"]
    assert data["exit"] == {"code": 0, "signal": None, "status": 0}
    assert data["verdict"]["category"] == "completed"
    assert 0 <= data["verdict"]["confidence"] <= 1
    assert set(data["verdict"]) >= {
        "category",
        "subtype",
        "confidence",
        "summary",
        "signature",
        "alternatives",
    }
    assert data["duration_s"] >= 0
    assert data["started_at"].endswith("+00:00")


def test_json_to_stdout_comes_after_the_childs_output():
    result = trainwatch(
        "run", "-q", "--json", "-", "--", sys.executable, "-c", "print('child line')"
    )
    assert result.returncode == 0
    text = result.stdout.decode()
    assert text.startswith("child line\n")
    assert '"schema": "trainwatch.report/1"' in text[len("child line\n") :]
