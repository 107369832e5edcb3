"""`trainwatch explain` as a user runs it: corpus logs, stdin, JSON, and bad input (never a traceback)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainwatch.diagnostics.postmortem import explain_logs
from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.verdict import CATEGORIES

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
KNOWLEDGE = load_knowledge(include_user=False)


def explain(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainwatch.cli", "explain", *args], input=stdin,
                          capture_output=True, timeout=60)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")
def test_corpus_log_report_and_json(tmp_path):
    out = tmp_path / "r.json"
    result = explain(str(CORPUS / "A040.log"), "--json", str(out))
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    assert "trainwatch report" in err and "data/shape-mismatch" in err and "stack expects" in err
    report = json.loads(out.read_text())
    assert report["verdict"]["category"] == "data" and report["sources"] == [str(CORPUS / "A040.log")]
    assert report["evidence"] and report["evidence"][0]["source"].startswith("line ")


def test_stdin_and_json_to_stdout():
    log = (b"Traceback (most recent call last):\n  File \"/home/u/train.py\", line 3, in <module>\n    import timm\n"
           b"ModuleNotFoundError: No module named 'timm'\n")
    result = explain("-", "--json", "-", stdin=log)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"]["subtype"] == "library/missing-package"
    assert report["culprit"]["file"] == "/home/u/train.py" and report["culprit"]["line"] == 3


@pytest.mark.parametrize("make", ["missing", "directory", "binary"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, make):
    target = tmp_path / "x.log"
    if make == "directory":
        target.mkdir()
    elif make == "binary":
        target.write_bytes(b"\x00\x01\x02" * 1000)
    result = explain(str(target))
    err = result.stderr.decode()
    assert result.returncode == 2 and err.startswith("trainwatch: error:") and err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\xfa not utf-8 \xc3\x28\n", b"y" * (3 << 20)])
def test_odd_text_gives_a_valid_unknown_report(tmp_path, content):
    target = tmp_path / "odd.log"
    target.write_bytes(content)
    result = explain(str(target), "--json", "-")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verdict"]["category"] == "unknown"
    assert b"Traceback" not in result.stderr


def test_user_signature_file_option_and_bad_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[signature]]\nid = 3\n")
    log = tmp_path / "a.log"
    log.write_text("all good\n")
    result = explain(str(log), "--signatures", str(bad))
    assert result.returncode == 2 and b"bad.toml" in result.stderr and b"Traceback" not in result.stderr


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000) | st.text(max_size=2000).map(str.encode))
def test_garbage_never_crashes(data):
    diagnosis = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(data))
    assert diagnosis.verdict.category in CATEGORIES
    json.dumps(diagnosis.to_dict(), default=str)
