"""`trainwatch explain` as a user runs it: corpus logs, stdin, JSON, and bad input (never a
traceback).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from trainwatch.diagnostics.knowledge import load_knowledge

KNOWLEDGE = load_knowledge(include_user=False)


def explain(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainwatch.cli", "explain", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
    )


def test_stdin_and_json_to_stdout():
    log = (
        b'Traceback (most recent call last):\n  File "/home/u/train.py", line 3, in <module>\n    '
        b"import timm\n"
        b"ModuleNotFoundError: No module named 'timm'\n"
    )
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
    assert (
        result.returncode == 2
        and b"bad.toml" in result.stderr
        and b"Traceback" not in result.stderr
    )
