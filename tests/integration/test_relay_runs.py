"""The relay under pressure and at its edges (issue 12): it never waits for the parsers, the
caller's descriptors reach the program, a log that cannot be written is one warning, the report
starts on a line of its own, and a killed trainwatch leaves no probe directory behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from trainwatch.diagnostics.watch.child import Child, LaunchRequest

from conftest import SCRIPTS, TRAINWATCH, read_report, trainwatch, trainwatch_env


def test_the_relay_never_waits_for_the_parsers(tmp_path, capfdbinary):
    """The parsers are stuck (an observer that blocks) while the program writes 8 MB: the program
    still finishes writing, every byte reaches stdout, and the result says what was not parsed."""
    marker = tmp_path / "done"
    finished_while_stuck = threading.Event()
    waited = threading.Event()

    def stuck_parser(line) -> None:
        if waited.is_set():
            return
        waited.set()  # stuck once, on the first line, for as long as the program writes
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if marker.exists():  # the program wrote everything while we sat here
                finished_while_stuck.set()
                return
            time.sleep(0.02)

    argv = (sys.executable, str(SCRIPTS / "relay_chatty.py"), "8", str(marker))
    child = Child(LaunchRequest(argv=argv, env=trainwatch_env()), [stuck_parser]).start()
    result = child.wait()
    captured = capfdbinary.readouterr().out
    assert finished_while_stuck.is_set()
    assert result.exit.status == 0
    assert len(captured) == result.bytes_relayed["stdout"] >= 8 * 2**20
    assert captured.startswith(b"step 0 loss 0.25 lr 0.001\nstep 1 loss")
    assert captured.endswith(b"lr 0.001\n") and captured.count(b"\n") % 1000 == 0
    assert any("not parsed" in note for note in result.notes), result.notes


def test_a_chatty_run_is_reported_with_its_end_and_a_note(tmp_path):
    report = tmp_path / "r.json"
    code = (
        "import sys\n"
        "for i in range(300000): print(f'step {i} loss 0.5')\n"
        "raise ValueError('the end of a chatty run')\n"
    )
    # no probe: the verdict can only come from the output the parsers read
    result = trainwatch(
        "run", "--no-probe", "--json", str(report), "--", sys.executable, "-c", code
    )
    assert result.returncode == 1
    assert result.stdout.count(b"\n") == 300000  # every line relayed
    data = read_report(report)
    # the end is always parsed: the exception that ends the output is the verdict's evidence
    assert data["verdict"]["signature"] == "python-error"
    assert "ValueError: the end of a chatty run" in json.dumps(data["evidence"])


def test_descriptors_the_caller_passed_reach_the_program(tmp_path):
    target = tmp_path / "passed"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
    os.set_inheritable(fd, True)  # as a shell's `7>file` is
    code = f"import os; os.write({fd}, b'passed on')"
    try:
        result = subprocess.run(
            [TRAINWATCH, "run", "-q", "--", sys.executable, "-c", code],
            capture_output=True,
            env=trainwatch_env(),
            pass_fds=(fd,),
            timeout=60,
        )
    finally:
        os.close(fd)
    assert result.returncode == 0, result.stderr
    assert target.read_text() == "passed on"


def test_a_log_on_a_full_disk_is_one_warning_and_a_note(tmp_path):
    report = tmp_path / "r.json"
    code = "import sys\nfor i in range(2000): print('x' * 100)\nsys.exit(3)"
    result = trainwatch(
        "run", "--log", "/dev/full", "--json", str(report), "--", sys.executable, "-c", code
    )
    assert result.returncode == 3  # the program's status, untouched
    assert result.stdout.count(b"\n") == 2000
    warnings = [
        line
        for line in result.stderr.splitlines()
        if line.startswith(b"trainwatch: warning:") and b"cannot write the log" in line
    ]
    assert len(warnings) == 1, result.stderr[-2000:]
    assert b"trainwatch: warning:" in warnings[0] and b"No space left on device" in warnings[0]
    assert any("cannot write the log /dev/full" in n for n in read_report(report)["notes"])


def test_the_report_starts_on_a_new_line_after_an_unterminated_line():
    code = "import sys; sys.stderr.write('no newline at the end'); sys.exit(2)"
    result = trainwatch("run", "--", sys.executable, "-c", code)
    assert result.returncode == 2
    assert b"no newline at the end\n" in result.stderr
    after = result.stderr.split(b"no newline at the end", 1)[1]
    assert after.startswith(b"\n") and not after.startswith(b"\n\n")


def test_a_killed_trainwatch_leaves_no_probe_directory(tmp_path):
    where = tmp_path / "probe-dir"
    code = (
        "import os, time\n"
        f"open({str(where)!r}, 'w').write(os.environ['TRAINWATCH_PROBE_DIR'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [TRAINWATCH, "run", "--", sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=trainwatch_env(),
    )
    assert proc.stdout.readline() == b"ready\n"
    records = Path(where.read_text())
    assert records.is_dir()
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while records.parent.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not records.parent.exists()  # the whole private directory, not only its records


def test_a_closed_stdout_reader_is_not_a_dead_peer_rank(tmp_path):
    """`trainwatch run ... | head -1`: the program's next print fails with EPIPE. That is the reader
    going away, not a distributed job's peer."""
    report = tmp_path / "r.json"
    code = "import itertools\nfor i in itertools.count(): print(i)"
    proc = subprocess.Popen(
        [TRAINWATCH, "run", "--json", str(report), "--", sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=trainwatch_env(),
    )
    assert proc.stdout.readline() == b"0\n"
    proc.stdout.close()  # as head does once it has its line
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err[-2000:]  # Python's own status for an uncaught BrokenPipeError
    verdict = read_report(report)["verdict"]
    assert verdict["category"] != "distributed", verdict
    assert verdict["subtype"] == "interrupted/output-closed", verdict


def _ignoring_interrupt_and_hangup() -> None:
    # as a shell's `cmd &` leaves SIGINT, and `nohup` SIGHUP, for what it starts
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _started_ignoring_interrupt_and_hangup(argv: list[str], **options) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=trainwatch_env(),
        preexec_fn=_ignoring_interrupt_and_hangup,
        **options,
    )


def test_signals_ignored_by_whoever_started_trainwatch_stay_ignored_in_the_program():
    code = (
        "import signal, sys, time\n"
        "print([signal.getsignal(s) == signal.SIG_IGN"
        " for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)], flush=True)\n"
        "sys.stdin.readline()\n"  # until the test has sent its signals
        "print('went on', flush=True)\n"
    )
    argv = [sys.executable, "-c", code]
    runs = {}
    for name, prefix in (("bare", []), ("watched", [TRAINWATCH, "run", "--"])):
        proc = _started_ignoring_interrupt_and_hangup(prefix + argv)
        first = proc.stdout.readline()
        # an interrupt and a hangup sent to the command as a user's shell or terminal would
        for signum in (signal.SIGINT, signal.SIGHUP):
            os.kill(proc.pid, signum)
        time.sleep(0.3)
        out, _ = proc.communicate(b"\n", timeout=60)
        runs[name] = (first, out, proc.returncode)
    assert runs["bare"] == (b"[True, True, False]\n", b"went on\n", 0)
    first, out, status = runs["watched"]
    assert first == b"[True, True, False]\n"
    assert out.startswith(b"went on\n") and status == 0


def test_a_signal_the_job_was_started_ignoring_reaches_a_handler_the_program_set_itself():
    # a background job's Ctrl-C (SIGINT ignored on entry, sent to the job's process group): a
    # launcher that sets its own handler (torchrun) stops at it alone, and must under trainwatch
    # too, where the program runs in a group of its own (a real accelerate run went on to 0)
    code = (
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, lambda *_: sys.exit(130))\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"  # until the signal ends it
        "print('went on', flush=True)\n"
    )
    argv = [sys.executable, "-c", code]
    statuses = {}
    for name, prefix in (("bare", []), ("watched", [TRAINWATCH, "run", "-q", "--"])):
        proc = _started_ignoring_interrupt_and_hangup(prefix + argv, start_new_session=True)
        assert proc.stdout.readline() == b"ready\n"
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=10)  # ended by the signal, or the input below lets it go on
        except subprocess.TimeoutExpired:
            pass
        out, _ = proc.communicate(b"\n", timeout=30)
        statuses[name] = (out, proc.returncode)
    assert statuses["bare"] == (b"", 130)
    assert statuses["watched"] == (b"", 130)
