"""The report contract: the JSON fields of docs/report.md, and the terminal report rendered at a
fixed width.
"""

from __future__ import annotations

import io
import sys

from rich.console import Console

from trainwatch.diagnostics.evidence import Evidence, ExitStatus
from trainwatch.diagnostics.verdict import (
    SCHEMA,
    Alternative,
    Cited,
    Culprit,
    Diagnosis,
    Verdict,
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


def _diagnosis() -> Diagnosis:
    verdict = Verdict(
        "oom",
        "oom/gpu",
        0.93,
        "CUDA ran out of memory allocating 2.00 GiB.",
        signature="cuda-out-of-memory",
        alternatives=(
            Alternative("code", None, 0.2, "A leak of graph references could grow memory."),
        ),
        evidence=(
            Cited(
                "exception",
                "torch.OutOfMemoryError: CUDA out of memory. [x] Tried 2.00 GiB",
                "line 40",
            ),
        ),
        culprit=Culprit("train.py", 42, "step", "loss = model(x)"),
        advice=("Halve the batch size.",),
    )
    return Diagnosis(
        "0.1.0",
        ("python3", "train.py"),
        None,
        12.5,
        ExitStatus.from_returncode(1),
        verdict,
        Evidence(source="run"),
    )


def _render(renderable) -> str:
    console = Console(file=io.StringIO(), width=100, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.file.getvalue()
