"""Report files that can never hurt (cli/reports/files.py, issue 12 point 1), on real runs: a
device or a FIFO at the path is written in place, a link is written through, a regular file is
replaced whole with its mode kept, a planted link at a temporary name is never followed, and a
report that cannot be written is one line that leaves the program's exit status alone."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from trainwatch.cli.reports import files

from conftest import TRAINWATCH, read_report, trainwatch

EXIT_3 = ("--", sys.executable, "-c", "import sys; sys.exit(3)")


def _report_lines(stderr: bytes) -> list[bytes]:
    return [line for line in stderr.splitlines() if line.startswith(b"trainwatch: error:")]


def test_a_device_at_the_path_stays_a_device(tmp_path):
    """As root, `--json /dev/null` once replaced the device node with a file. A private null
    device stands in for /dev/null here, so a regression cannot break the machine's."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root (and only root could replace /dev/null)")
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError as exc:
        pytest.skip(f"cannot make a device node here: {exc.strerror}")
    result = trainwatch("run", "-q", "--json", str(null), "--junit", str(null), *EXIT_3)
    assert result.returncode == 3, result.stderr
    info = os.stat(null)
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]  # no temporary file left


def test_a_fifo_at_the_path_is_written_in_place(tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = trainwatch("run", "-q", "--json", str(fifo), *EXIT_3)
    reader.join(30)
    assert result.returncode == 3, result.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(received[0])["exit"]["status"] == 3


def test_dev_stdout_is_our_own_stdout_never_the_file_behind_it(tmp_path):
    out = tmp_path / "out.txt"
    with open(out, "wb") as handle:
        before = os.fstat(handle.fileno()).st_ino
        result = subprocess.run(
            [TRAINWATCH, "run", "-q", "--junit", "/dev/stdout", *EXIT_3],
            stdout=handle,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    assert result.returncode == 3, result.stderr
    assert os.stat(out).st_ino == before  # the same file, written through the descriptor
    assert out.read_text().lstrip().startswith("<?xml")


def test_a_link_is_written_through_and_a_file_keeps_its_mode(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    dangling = tmp_path / "new-link.json"
    dangling.symlink_to(tmp_path / "created.json")
    result = trainwatch("run", "-q", "--json", str(link), "--html", str(dangling), *EXIT_3)
    assert result.returncode == 3, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert read_report(target)["exit"]["status"] == 3
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert dangling.is_symlink() and (tmp_path / "created.json").read_text().startswith("<!")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "created.json",
        "link.json",
        "new-link.json",
        "real.json",
    ]


def test_a_report_that_cannot_be_written_is_one_line_and_the_status_stays(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    # the program removes the report's folder while it runs: the write fails at the end
    code = f"import shutil, sys; shutil.rmtree({str(folder)!r}); sys.exit(3)"
    result = trainwatch(
        "run", "-q", "--json", str(folder / "r.json"), "--", sys.executable, "-c", code
    )
    assert result.returncode == 3
    (line,) = _report_lines(result.stderr)
    assert b"cannot write the JSON report" in line and b"No such file or directory" in line
    assert b"Traceback" not in result.stderr


def test_json_to_a_stdout_that_fails_is_one_line_and_the_status_stays():
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [TRAINWATCH, "run", "-q", "--json", "-", *EXIT_3],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    assert result.returncode == 3
    (line,) = _report_lines(result.stderr)
    assert b"cannot write the JSON report to stdout" in line


def test_a_link_planted_at_the_temporary_name_is_never_followed(tmp_path, monkeypatch):
    """The temporary file's name is random, and it is opened O_EXCL|O_NOFOLLOW: a link planted at
    the name it draws is neither followed nor reused; another name is drawn."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    target = tmp_path / "report.json"
    drawn = iter(["planted", "fresh"])
    monkeypatch.setattr(files, "random_suffix", lambda: next(drawn))
    (tmp_path / ".report.json.planted.tmp").symlink_to(victim)
    assert files.write_report(str(target), '{"ok": true}\n', "the JSON report")
    assert victim.read_text() == "precious"
    assert json.loads(target.read_text()) == {"ok": True}
    assert not (tmp_path / ".report.json.fresh.tmp").exists()
    assert Path(tmp_path / ".report.json.planted.tmp").is_symlink()  # left as it was found


GOOD_SIGNATURE = '''
[[signature]]
id = "team-frobnicator-jam"
category = "library"
subtype = "library/frobnicator"
title = "The frobnicator jammed"
explanation = "Our in-house frobnicator jammed."
advice = ["Unjam it."]
confidence = 0.9
message = ["frobnicator jammed"]

[[signature.example]]
match = true
text = """
RuntimeError: frobnicator jammed
"""

[[signature.example]]
match = false
text = """
RuntimeError: all fine
"""
'''


def test_bad_signature_files_are_warnings_and_the_run_is_unchanged(tmp_path):
    """A bad file in each place trainwatch reads them from (the user's folder,
    TRAINWATCH_SIGNATURES, --signatures) is found before the program starts: one warning naming
    the file and the line, and the run's report and status are what they would have been; the
    good file still works."""
    home = tmp_path / "home"
    folder = home / ".config" / "trainwatch" / "signatures"
    folder.mkdir(parents=True)
    (folder / "broken.toml").write_text('[[signature]]\nid = "x"\n  oops = = 3\n')
    from_env = tmp_path / "schema.toml"
    from_env.write_text('[[signature]]\nid = "x"\ncategory = "oom"\ntitle = "t"\n')
    good = tmp_path / "good.toml"
    good.write_text(GOOD_SIGNATURE)
    code = "raise RuntimeError('frobnicator jammed')"
    reports = {name: tmp_path / f"{name}.json" for name in ("plain", "bad")}
    plain = trainwatch(
        "run", "--json", str(reports["plain"]), "--signatures", str(good), "--",
        sys.executable, "-c", code,
        env={"HOME": str(tmp_path / "empty-home")},
    )  # fmt: skip
    bad = trainwatch(
        "run", "--json", str(reports["bad"]), "--signatures", str(good), "--",
        sys.executable, "-c", code,
        env={"HOME": str(home), "TRAINWATCH_SIGNATURES": str(from_env)},
    )  # fmt: skip
    assert plain.returncode == bad.returncode == 1, bad.stderr[-2000:]
    warnings = [w for w in bad.stderr.splitlines() if w.startswith(b"trainwatch: warning:")]
    assert len(warnings) == 2, warnings
    assert any(b"broken.toml" in w and b"line 3" in w for w in warnings), warnings
    assert any(b"schema.toml" in w and b"line" in w for w in warnings), warnings
    assert all(b"the run goes on" in w for w in warnings)
    before, after = read_report(reports["plain"]), read_report(reports["bad"])
    assert after["verdict"] == before["verdict"]
    assert after["verdict"]["signature"] == "team-frobnicator-jam"
    assert after["exit"] == before["exit"]
