"""`trainwatch explain` as a user runs it: corpus logs, stdin, JSON, and bad input (never a
traceback).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from trainwatch.diagnostics.knowledge import load_knowledge

from conftest import FIXTURE_LOGS, TRAINWATCH, assert_consistent, needs, trainwatch

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
    report = assert_consistent(json.loads(result.stdout))
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


@pytest.mark.parametrize(
    "content",
    [b"", b"\xff\xfe\xfa not utf-8 \xc3\x28\n", b"y" * (3 << 20)],
    # short ids: pytest < 9.2 names a bytes parameter by its whole value, and the test's name
    # (PYTEST_CURRENT_TEST) goes into the environment of the command the test runs
    ids=["empty", "invalid-utf8", "one-3-MiB-line"],
)
def test_odd_text_gives_a_valid_unknown_report(tmp_path, content):
    target = tmp_path / "odd.log"
    target.write_bytes(content)
    result = explain(str(target), "--json", "-")
    assert result.returncode == 0, result.stderr
    assert assert_consistent(json.loads(result.stdout))["verdict"]["category"] == "unknown"
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


# A traceback in the first 8 KiB, then 40 KB of progress lines: a reader that sniffs the head and
# then reopens a pipe loses the traceback.
HEAD_FAILURE_LOG = (
    "Traceback (most recent call last):\n"
    '  File "/home/u/train.py", line 3, in <module>\n'
    "    import timm\n"
    "ModuleNotFoundError: No module named 'timm'\n"
) + "".join(f"epoch 0 step {i} loss 0.5\n" for i in range(2000))


def test_a_process_substitution_is_read_once_from_its_first_byte(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(HEAD_FAILURE_LOG)
    result = subprocess.run(
        ["bash", "-c", f'{sys.executable} -m trainwatch.cli explain --json - <(cat "{log}")'],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = assert_consistent(json.loads(result.stdout))
    assert report["verdict"]["subtype"] == "library/missing-package", report["verdict"]


def test_a_fifo_is_read_once_and_does_not_hang(tmp_path):
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainwatch.cli", "explain", "--json", "-", str(fifo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with open(fifo, "w") as writer:  # one writer, once, as `mkfifo p; cmd > p &` gives
        writer.write(HEAD_FAILURE_LOG)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["verdict"]["subtype"] == "library/missing-package"


def test_a_symbolic_link_loop_is_named_as_such(tmp_path):
    (tmp_path / "a.log").symlink_to(tmp_path / "b.log")
    (tmp_path / "b.log").symlink_to(tmp_path / "a.log")
    result = explain(str(tmp_path / "a.log"))
    err = result.stderr.decode()
    assert result.returncode == 2 and err.count("\n") == 1
    assert "symbolic links" in err and "no such file" not in err


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


# ---- a big log's second half, scanned ahead by a forked helper -----------------------------------
def _big_log(path, lines: int, banner_at: int | None = None) -> None:
    with open(path, "w") as fh:
        for i in range(lines):
            if i == banner_at:
                fh.write("─" * 20 + " trainwatch report " + "─" * 20 + "\n")
            if i % 997 == 0:
                fh.write(f"WARNING: step {i} grad norm clipped (Error budget {i})\n")
            elif i % 4999 == 0:
                fh.write(f'Traceback (most recent call last):\n  File "t.py", line {i}\n')
                fh.write(f"ValueError: bad value at {i}\n")
            else:
                fh.write(f"epoch 1 step {i}/90000 loss {1 / (1 + i):.5f} lr 0.0003\n")
        fh.write("Killed\n")


# Run in a fresh process: the helper is never forked while other threads run, and a test worker may
# hold some that earlier tests left.
_AHEAD_CHECK = """
import sys
import psutil
from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.read.logparse import CHUNK_BYTES, LogParser
from trainwatch.diagnostics.read.prefilter import SecondHalf, word_places

path, banner = sys.argv[1], sys.argv[2] == "banner"
knowledge = load_knowledge(include_user=False)


def read(ahead_from):
    parser = LogParser(knowledge)
    parser.ahead_from = ahead_from
    with open(path, "rb") as fh:
        facts = parser.parse_stream(fh)
    return (
        facts.lines,
        [(n.number, n.text) for n in facts.notable],
        [(c.final.type, c.final.message) for c in facts.all_chains],
        [(t.number, t.text) for t in facts.tail],
        facts.exit_hints,
        facts.reports,
    )


ahead = read(1 << 20)
assert psutil.Process().children() == [], "a helper was left behind"
if banner:
    # a report trainwatch printed and never closed: passed over from its banner to the end
    (start, end), = ahead[5]
    assert start < 21_000 and end is None, ahead[5]
    assert all(n < start for n, _ in ahead[1]) and all(n < start for n, _ in ahead[3])
    print("passed over", start)
    sys.exit(0)
alone = read(1 << 40)
assert ahead == alone, "the readings differ"
assert len(alone[2]) > 10 and alone[4]  # tracebacks in both halves, and the kill at the end
filters = LogParser(knowledge)._filters()
data = open(path, "rb").read()
with open(path, "rb") as fh:
    helper = SecondHalf.start(fh, filters, CHUNK_BYTES, min_bytes=1 << 20)
    assert helper is not None and 0 < helper.middle < len(data)
    try:
        rest = data[helper.middle :]
        assert helper.places(helper.middle, len(rest)) == word_places(rest, len(rest), filters)
        assert helper.places(0, 10) is None  # the first half is the parser's
        # past the end it read to (a log still being written): the parser's too
        assert helper.places(len(data) - 10, 20) is None
    finally:
        helper.close()
assert psutil.Process().children() == []
print("same", alone[0])
"""


def _check_ahead(path, mode: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _AHEAD_CHECK, str(path), mode],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout.decode()


def test_a_big_log_read_with_its_second_half_scanned_ahead_gives_the_same_facts(tmp_path):
    from trainwatch.diagnostics.read.logparse import CHUNK_BYTES

    path = tmp_path / "big.log"
    _big_log(path, 90_000)  # about 4 MB: four chunks, the helper takes the last two
    assert path.stat().st_size > 3 * CHUNK_BYTES
    assert _check_ahead(path, "whole").startswith("same 9")


def test_a_big_log_with_an_unclosed_report_in_its_first_half_leaves_no_helper_behind(tmp_path):
    path = tmp_path / "big.log"
    _big_log(path, 90_000, banner_at=20_000)
    assert _check_ahead(path, "banner").startswith("passed over 2")


def test_a_notebook_saved_after_its_run_died_is_explained_from_its_cells(tmp_path):
    # a real kernel runs the cells and draws the traceback, as Jupyter saves it for the user
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    needs("ipykernel")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Training"),
        nbformat.v4.new_code_cell(
            "rows = [{'image': f'img_{i}.png', 'label': i % 3} for i in range(8)]"
        ),
        nbformat.v4.new_code_cell(
            "def load(row):\n"
            "    return row['image'], row['lable']\n"
            "for epoch in range(1, 4):\n"
            "    print(f'epoch {epoch}/3 loss {2.5 / epoch:.3f}')\n"
            "for row in rows:\n"
            "    load(row)"
        ),
    ]
    client = nbclient.NotebookClient(notebook, timeout=60, kernel_name="python3", allow_errors=True)
    client.execute()
    saved = tmp_path / "train.ipynb"
    nbformat.write(notebook, saved)
    result = explain(str(saved), "--json", "-")
    assert result.returncode == 0, result.stderr
    report = assert_consistent(json.loads(result.stdout))
    assert report["exception"]["type"] == "KeyError" and report["exception"]["message"] == "'lable'"
    assert report["culprit"]["code"] == "return row['image'], row['lable']"
    assert report["progress"]["last_loss"] == 0.833


def test_explain_says_so_when_it_cannot_read_stdin_or_write_its_report(tmp_path):
    closed = subprocess.run(
        [TRAINWATCH, "explain", "-"], preexec_fn=lambda: os.close(0), capture_output=True
    )
    assert closed.returncode == 2 and b"standard input is closed" in closed.stderr
    full = trainwatch("explain", "-q", "--json", "/dev/full", "-", input=b"Killed\n")
    assert full.returncode == 2 and b"cannot write the JSON report" in full.stderr
