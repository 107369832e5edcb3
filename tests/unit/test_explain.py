"""`trainwatch explain` as a user runs it: corpus logs, stdin, JSON, and bad input (never a
traceback).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainwatch.diagnostics.errors import UsageError
from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.postmortem import explain_logs
from trainwatch.diagnostics.verdict import CATEGORIES

from conftest import FIXTURE_LOGS

KNOWLEDGE = load_knowledge(include_user=False)


def explain(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainwatch.cli", "explain", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
    )


def test_corpus_log_report_and_json(tmp_path):
    out = tmp_path / "r.json"
    result = explain(str(FIXTURE_LOGS / "collate_shape_mismatch.log"), "--json", str(out))
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    assert "trainwatch report" in err and "data/shape-mismatch" in err and "stack expects" in err
    report = json.loads(out.read_text())
    assert report["verdict"]["category"] == "data" and report["sources"] == [
        str(FIXTURE_LOGS / "collate_shape_mismatch.log")
    ]
    assert report["evidence"] and report["evidence"][0]["source"].startswith("line ")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000) | st.text(max_size=2000).map(str.encode))
def test_garbage_never_crashes(data):
    # binary data is one usage error, as for a file; anything else gets a verdict
    try:
        diagnosis = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(data))
    except UsageError as exc:
        assert str(exc) == "standard input: looks like binary data, not a text log"
        assert data.count(b"\x00") > len(data[:8192]) // 100
        return
    assert diagnosis.verdict.category in CATEGORIES
    json.dumps(diagnosis.to_dict(), default=str)
