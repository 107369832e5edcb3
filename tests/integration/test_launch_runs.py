"""`trainwatch run` as a faithful wrapper: output, exit status, signals, process lifetime,
arguments, bad input.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import pty
import random
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import TRAINWATCH, read_report, trainwatch, trainwatch_env


def _wait_for_line(stream, text: bytes, timeout: float = 30) -> bytes:
    """Read from a pipe until `text` shows up; fail after `timeout` seconds."""
    seen = b""
    deadline = time.monotonic() + timeout
    fd = stream.fileno()
    while text not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"never saw {text!r}; got {seen[-500:]!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"stream closed before {text!r}; got {seen[-500:]!r}"
            seen += chunk
    return seen


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def _started(report, *command: str, own_session: bool = False) -> subprocess.Popen:
    """`trainwatch run --json REPORT -- COMMAND`, started in the background with its output piped
    (in a session of its own when a test signals its whole group)."""
    return subprocess.Popen(
        [TRAINWATCH, "run", "--json", str(report), "--", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=trainwatch_env(),
        start_new_session=own_session,
    )


# ---- output --------------------------------------------------------------------------------------


def test_binary_output_passes_through_byte_for_byte(tmp_path, script):
    rng = random.Random(7)
    payload = bytes(rng.randrange(256) for _ in range(200_000))
    # NULs, invalid UTF-8, carriage returns, and one 3 MB line with no newline at all
    payload += b"\x00\xff\xfe\r progress 1/10\r progress 2/10\r\n" + b"x" * 3_000_000 + b"\xc3\x28"
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    result = trainwatch("run", "-q", "--no-probe", script("launch_bytes.py"), str(source))
    assert result.returncode == 0
    assert result.stdout == payload
    stderr = result.stderr
    report_at = stderr.rfind(b"trainwatch: ")
    assert report_at > 0
    # the program's stderr ends mid-line: the report starts on a line of its own
    assert stderr[:report_at] == payload[::-1] + b"\n"


def test_output_is_live_not_buffered_until_exit():
    code = "import time, sys; print('first', flush=True); time.sleep(30); print('second')"
    proc = subprocess.Popen(
        [TRAINWATCH, "run", "-q", "--", sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=trainwatch_env(),
    )
    try:
        started = time.monotonic()
        assert b"first" in _wait_for_line(proc.stdout, b"first", timeout=20)
        assert time.monotonic() - started < 20
        assert proc.poll() is None  # the child still sleeps: the line came live
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_log_file_gets_the_combined_output(tmp_path):
    log = tmp_path / "out.log"
    code = (
        "import sys; sys.stdout.write('to out\\n'); sys.stdout.flush(); sys.stderr.write('to "
        "err\\n')"
    )
    result = trainwatch("run", "-q", "--log", str(log), "--", sys.executable, "-c", code)
    assert result.returncode == 0
    assert result.stdout == b"to out\n"
    assert log.read_bytes() == b"to out\nto err\n"


def test_memory_stays_bounded_whatever_the_child_prints():
    # A fresh parent, so that its RUSAGE_CHILDREN peak covers only trainwatch and the printing
    # child.
    code = "import os\nline = b'y' * 1023 + b'\\n'\nfor _ in range(200_000): os.write(1, line)"
    measure = (
        "import resource, subprocess, sys\n"
        "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
        "total = 0\n"
        "while chunk := p.stdout.read(1 << 20): total += len(chunk)\n"
        "print(p.wait(), total, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            measure,
            TRAINWATCH,
            "run",
            "-q",
            "--no-probe",
            "--",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        env=trainwatch_env(),
        timeout=300,
    )
    status, total, peak_kib = map(int, result.stdout.split())
    assert status == 0
    assert total == 200_000 * 1024
    # trainwatch relayed 200 MB and kept only a bounded tail (its own peak, in KiB, includes the
    # interpreter).
    assert peak_kib < 150 * 1024


# Every code is mapped in-process (tests/unit/test_exitpolicy.py); these run for real: the ends of
# the range, the shell's own codes (126, 127) and the ones that look like signal statuses.
_REAL_CODES = (0, 1, 2, 3, 42, 70, 126, 127, 128, 130, 137, 143, 254, 255)


def test_exit_statuses_round_trip_through_a_real_child():
    def run(code: int) -> tuple[int, int]:
        proc = subprocess.run(
            [TRAINWATCH, "run", "-q", "--no-probe", "--", "sh", "-c", f"exit {code}"],
            capture_output=True,
            env=trainwatch_env(),
            timeout=60,
        )
        return code, proc.returncode

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = dict(pool.map(run, _REAL_CODES))
    wrong = {code: got for code, got in results.items() if got != code}
    assert wrong == {}


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSEGV, signal.SIGTERM, signal.SIGABRT])
def test_death_by_signal_is_trainwatch_s_death_by_that_signal(tmp_path, signum):
    # as without trainwatch: a shell reads 128 + N, and sees a signal death (a loop stops at a
    # Ctrl-C only when its command died of SIGINT); no core file of trainwatch's own
    report = tmp_path / "r.json"
    code = f"import os; os.kill(os.getpid(), {int(signum)})"
    result = trainwatch(
        "run", "--no-probe", "--json", str(report), "--", sys.executable, "-c", code, cwd=tmp_path
    )
    assert result.returncode == -signum
    assert not list(tmp_path.glob("core*"))
    shell = subprocess.run(
        ["sh", "-c", '"$0" run -q --no-probe -- "$1" -c "$2" 2>/dev/null; echo $?', TRAINWATCH,
         sys.executable, code],
        capture_output=True, text=True, env=trainwatch_env(), timeout=60,
    )  # fmt: skip
    assert shell.stdout.strip() == str(128 + signum)
    data = read_report(report)
    assert data["exit"] == {
        "code": None,
        "signal": signal.Signals(signum).name,
        "status": 128 + signum,
    }


def test_a_status_above_128_a_python_program_chose_is_no_signal(tmp_path):
    # papermill exits 138 for a dead kernel: 128 + SIGUSR1 to a shell, a chosen number here
    report = tmp_path / "r.json"
    code = "import sys; print('giving up', flush=True); sys.exit(138)"
    result = trainwatch("run", "--json", str(report), "--", sys.executable, "-c", code)
    assert result.returncode == 138
    verdict = read_report(report)["verdict"]
    assert verdict["category"] != "interrupted" and "SIGUSR1" not in verdict["summary"]
    assert "sys.exit(138)" in verdict["summary"]
    # without the probe nothing says who chose it: read as a shell reports a signal
    bare = trainwatch("run", "--no-probe", "--json", str(report), "--", sys.executable, "-c", code)
    assert bare.returncode == 138 and read_report(report)["verdict"]["category"] == "interrupted"


# ---- signals and lifetime ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signame", ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"]
)
def test_signals_sent_to_trainwatch_reach_the_child_once(tmp_path, script, signame):
    record = tmp_path / "signals.txt"
    report = tmp_path / "r.json"
    proc = subprocess.Popen(
        [TRAINWATCH, "run", "--json", str(report), script("launch_signal_target.py"), str(record)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=trainwatch_env(),
    )
    _wait_for_line(proc.stdout, b"ready")
    signum = getattr(signal, signame)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    lines = record.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(signame), lines
    assert proc.returncode == 100 + signum
    data = read_report(report)  # the report was still written
    assert data["exit"]["code"] == 100 + signum
    assert b"trainwatch report" in err


def test_a_sigterm_to_trainwatch_reaches_the_program_alone_as_kill_pid_would(tmp_path, script):
    # `kill PID`, `docker stop`, Kubernetes: one process gets SIGTERM; the program's helpers (its
    # DataLoader workers) are not signalled, as they would not be without trainwatch
    record = tmp_path / "signals.txt"
    proc = subprocess.Popen(
        [TRAINWATCH, "run", "-q", script("launch_signal_target.py"), str(record), "with-helper"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=trainwatch_env(),
    )
    _wait_for_line(proc.stdout, b"ready")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    lines = record.read_text().splitlines()
    assert lines[0].startswith("SIGTERM") and proc.returncode == 100 + signal.SIGTERM
    # (what is left of the group once the program has ended is stopped: no process left behind)
    assert "helper signalled while the program ran" not in lines, lines


@pytest.mark.parametrize("sender", ["terminal", "timeout"])
def test_ctrl_c_to_the_whole_group_reaches_the_child_once_and_the_report_follows(
    tmp_path, script, sender
):
    record = tmp_path / "signals.txt"
    report = tmp_path / "r.json"
    # A new session makes trainwatch the leader of its own group, like a shell's foreground job.
    proc = subprocess.Popen(
        [TRAINWATCH, "run", "--json", str(report), script("launch_signal_target.py"), str(record)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=trainwatch_env(),
        start_new_session=True,
    )
    _wait_for_line(proc.stdout, b"ready")
    if sender == "timeout":
        # `timeout -s INT` signals trainwatch's pid, then its group: two deliveries of one
        # sending, the second milliseconds later on a loaded machine. Bare, the program's
        # processes meet it once (the group's); relayed twice, a DataLoader worker died in its
        # clean-up (forty-second session's real runs)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does to the foreground group
    _, err = proc.communicate(timeout=60)
    assert record.read_text().count("SIGINT") == 1, record.read_text()
    assert proc.returncode == 100 + signal.SIGINT
    assert read_report(report)["exit"]["status"] == 100 + signal.SIGINT
    assert b"trainwatch report" in err


def test_a_child_killed_by_sigint_is_reported_as_interrupted(tmp_path):
    report = tmp_path / "r.json"
    code = "import time; print('ready', flush=True); time.sleep(60)"
    proc = _started(report, sys.executable, "-c", code, own_session=True)
    _wait_for_line(proc.stdout, b"ready")
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=60)
    # Python re-raises an uncaught KeyboardInterrupt as death by SIGINT
    assert proc.returncode == -signal.SIGINT
    assert read_report(report)["verdict"]["category"] == "interrupted"


def test_a_ctrl_c_that_a_shell_s_trap_turns_into_status_143_is_still_the_ctrl_c(tmp_path):
    # the trap exits 143 whatever came: trainwatch relayed a SIGINT, so no SIGTERM (a scheduler's
    # time limit) is read from the status
    report = tmp_path / "r.json"
    trap = 'trap "echo caught signal, cleaning up; exit 143" INT TERM; echo ready; sleep 60 & wait'
    proc = _started(report, "bash", "-c", trap, own_session=True)
    _wait_for_line(proc.stdout, b"ready")
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    verdict = read_report(report)["verdict"]
    assert verdict["category"] == "interrupted" and verdict["subtype"] != "interrupted/sigterm"
    assert "SIGINT" in verdict["summary"] and "Ctrl-C" in verdict["summary"], verdict


@pytest.mark.parametrize("whole_group", [False, True], ids=["trainwatch", "its-group"])
def test_no_orphans_when_trainwatch_is_sigkilled(tmp_path, script, whole_group):
    # `timeout -k` and job control kill trainwatch's process group, not only trainwatch: its guard
    # is not in that group, and kills the child's own group when trainwatch is gone
    pids_file = tmp_path / "pids"
    proc = subprocess.Popen(
        [TRAINWATCH, "run", "--no-probe", script("launch_family.py"), str(pids_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=trainwatch_env(),
        start_new_session=True,
    )
    _wait_for_line(proc.stdout, b"ready")
    child, grandchild = map(int, pids_file.read_text().split())
    assert _alive(child) and _alive(grandchild)
    if whole_group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while (_alive(child) or _alive(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    assert not _alive(grandchild)


def test_descendants_left_running_after_the_child_exits_are_stopped(tmp_path):
    pid_file = tmp_path / "pid"
    code = (
        f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; "
        f"time.sleep(120)'],"
        f" stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); open({str(pid_file)!r}, "
        f"'w').write(str(p.pid))"
    )
    result = trainwatch("run", "-q", "--no-probe", "--", sys.executable, "-c", code)
    assert result.returncode == 0
    leftover = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(leftover) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(leftover)


def test_a_script_that_puts_its_training_in_the_background_is_an_early_exit(tmp_path):
    # `nohup python train.py &` in the wrapped script: the script ends at once, its training is
    # left running and stopped with it (the script waits only until the program has started)
    report, ready = tmp_path / "report.json", tmp_path / "ready"
    train = tmp_path / "train.py"
    train.write_text(f"import time\nopen({str(ready)!r}, 'w').write('1')\ntime.sleep(120)\n")
    script = tmp_path / "train.sh"
    script.write_text(
        f"nohup {sys.executable} {train} > {tmp_path / 'nohup.out'} 2>&1 &\n"
        f"while [ ! -s {ready} ]; do sleep 0.05; done\necho started\n"
    )
    result = trainwatch("run", "-q", "--json", str(report), "--", "bash", str(script))
    assert result.returncode == 0, result.stderr
    saved = read_report(report)
    verdict = saved["verdict"]
    assert verdict["subtype"] == "early-exit/backgrounded", verdict
    assert "train.py" in verdict["summary"] and "`wait`" in saved["advice"][0]


def test_daemons_that_left_the_process_group_are_stopped_and_named_in_the_report(tmp_path):
    # A daemon started in a session of its own (with a child of its own), and one made by a double
    # fork and setsid: outside the child's process group, re-parented to trainwatch (subreaper).
    pid_file, report = tmp_path / "pids", tmp_path / "report.json"
    sleeper = "import time; time.sleep(120)"
    code = f"""
import os, subprocess, sys
daemon = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', {sleeper!r}]); time.sleep(120)"],
    start_new_session=True)
read, write = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(write, str(os.getpid()).encode())
        {sleeper}
    os._exit(0)
double_forked = os.read(read, 20).decode()
while len(subprocess.run(["pgrep", "-P", str(daemon.pid)], capture_output=True).stdout.split()) < 1:
    pass
grandchild = subprocess.run(["pgrep", "-P", str(daemon.pid)], capture_output=True).stdout.split()[0]
open({str(pid_file)!r}, "w").write(f"{{daemon.pid}} {{grandchild.decode()}} {{double_forked}}")
"""
    result = trainwatch(
        "run", "-q", "--no-probe", "--json", str(report), "--", sys.executable, "-c", code
    )
    assert result.returncode == 0, result.stderr
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 3
    assert not [pid for pid in pids if _alive(pid)]  # stopped before trainwatch exited
    notes = read_report(report)["notes"]
    assert any("stopped 3 processes the program left running" in n for n in notes), notes


def test_background_jobs_that_end_during_the_run_leave_no_zombies_behind():
    # `cmd &` through a shell: the shell ends at once and its job is adopted by trainwatch; when
    # the job ends, trainwatch waits for it while the run goes on (it would be a zombie otherwise)
    code = """
import os, subprocess, time
for _ in range(20):
    subprocess.run("sleep 0.1 &", shell=True)
time.sleep(1.5)
me, zombies = os.getppid(), 0
for entry in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    zombies += int(stat[1]) == me and stat[0] == "Z"
print("zombies of trainwatch:", zombies)
"""
    result = trainwatch("run", "-q", "--no-probe", "--", sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    assert b"zombies of trainwatch: 0" in result.stdout, result.stdout


# ---- arguments -----------------------------------------------------------------------------------


def test_arguments_after_the_script_reach_it_untouched(script):
    result = trainwatch(
        "run", "-q", script("launch_argv.py"), "--json", "x", "--help", "-m", "--", "-q"
    )
    assert result.returncode == 0
    assert json.loads(result.stdout) == ["--json", "x", "--help", "-m", "--", "-q"]


def test_arguments_after_a_module_reach_it_untouched(tmp_path):
    (tmp_path / "argvmod.py").write_text("import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    result = trainwatch("run", "-q", "-m", "argvmod", "--json", "x", "--quiet", cwd=tmp_path)
    assert result.returncode == 0
    assert json.loads(result.stdout) == ["--json", "x", "--quiet"]


def test_arguments_after_double_dash_reach_the_command_untouched():
    code = "import json, sys; print(json.dumps(sys.argv[1:]))"
    result = trainwatch("run", "-q", "--", sys.executable, "-c", code, "--json", "--help", "--")
    assert result.returncode == 0
    assert json.loads(result.stdout) == ["--json", "--help", "--"]


def test_a_script_runs_under_the_python3_first_on_path(tmp_path, script):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    marker = tmp_path / "used"
    fake = fake_bin / "python3"
    fake.write_text(f'#!/bin/sh\necho "$@" > {marker}\nexec {sys.executable} "$@"\n')
    fake.chmod(0o755)
    result = trainwatch(
        "run", "-q", script("launch_argv.py"), "a", env={"PATH": f"{fake_bin}:{os.environ['PATH']}"}
    )
    assert result.returncode == 0
    assert marker.read_text().split()[-1] == "a"


def test_python_option_overrides_the_interpreter(tmp_path, script):
    marker = tmp_path / "used"
    fake = tmp_path / "mypython"
    fake.write_text(f'#!/bin/sh\ntouch {marker}\nexec {sys.executable} "$@"\n')
    fake.chmod(0o755)
    result = trainwatch("run", "-q", "--python", str(fake), script("launch_argv.py"))
    assert result.returncode == 0
    assert marker.exists()


# ---- bad input -----------------------------------------------------------------------------------


def _assert_one_line_error(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("trainwatch: error: ")
    for word in words:
        assert word in lines[0]
    assert b"Traceback" not in result.stderr


def test_missing_script(tmp_path):
    _assert_one_line_error(trainwatch("run", str(tmp_path / "nope.py")), 2, "not found", "nope.py")


def test_a_symbolic_link_loop_is_named_as_such(tmp_path):
    (tmp_path / "a.py").symlink_to(tmp_path / "b.py")
    (tmp_path / "b.py").symlink_to(tmp_path / "a.py")
    for args, code in (((str(tmp_path / "a.py"),), 2), (("--", str(tmp_path / "a.py")), 126)):
        result = trainwatch("run", *args)
        _assert_one_line_error(result, code, "symbolic links")
        assert b"not found" not in result.stderr


def test_directory_as_script(tmp_path):
    _assert_one_line_error(trainwatch("run", str(tmp_path)), 2, "directory")


def test_command_not_found():
    _assert_one_line_error(
        trainwatch("run", "--", "no-such-command-xyz"), 127, "no-such-command-xyz"
    )


def test_command_not_executable(tmp_path):
    target = tmp_path / "tool.sh"
    target.write_text("#!/bin/sh\ntouch launched\n")
    target.chmod(0o644)
    _assert_one_line_error(
        trainwatch("run", "--", str(target), cwd=tmp_path), 126, "not executable"
    )
    assert not (tmp_path / "launched").exists()


def test_unwritable_json_path_launches_nothing(tmp_path):
    marker = tmp_path / "launched"
    code = f"open({str(marker)!r}, 'w')"
    result = trainwatch(
        "run", "--json", str(tmp_path / "missing-dir" / "r.json"), "--", sys.executable, "-c", code
    )
    _assert_one_line_error(result, 2, "cannot write")
    assert not marker.exists()


def test_unknown_option_is_one_line():
    _assert_one_line_error(trainwatch("run", "--no-such-option", "x.py"), 2, "--no-such-option")


def test_a_command_named_where_a_script_goes_is_run_as_that_command(tmp_path):
    # `trainwatch run python train.py`, as people type it: no file `python` here, a command on PATH
    script = tmp_path / "hello.py"
    script.write_text("import sys; print('hello', sys.argv[1:]); sys.exit(3)\n")
    python = os.path.basename(sys.executable)
    result = trainwatch("run", "--quiet", python, str(script), "a", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stdout == b"hello ['a']\n"
    # a `.py` name that is no file stays an error, whatever PATH holds
    _assert_one_line_error(trainwatch("run", "nope.py", cwd=tmp_path), 2, "script not found")


def test_an_executable_file_that_is_no_python_script_is_run_as_a_command(tmp_path):
    # `trainwatch run ./train.sh` and `trainwatch run ~/env/bin/python train.py`: the system runs
    # them by themselves; handed to Python, the shell script would be read as Python source and
    # the interpreter's binary would not compile
    shell = tmp_path / "train.sh"
    shell.write_text('#!/bin/sh\necho "from sh: $1"\nexit 4\n')
    shell.chmod(0o755)
    result = trainwatch("run", "--quiet", str(shell), "a")
    assert (result.returncode, result.stdout) == (4, b"from sh: a\n")
    script = tmp_path / "hello.py"
    script.write_text("import sys; print('hello', sys.argv[1:])\n")
    result = trainwatch("run", "--quiet", sys.executable, str(script), "b")
    assert (result.returncode, result.stdout) == (0, b"hello ['b']\n")


def test_nothing_to_run():
    _assert_one_line_error(trainwatch("run", "--quiet"), 2, "nothing to run")


def test_debug_env_shows_the_traceback(tmp_path):
    result = trainwatch("run", str(tmp_path / "nope.py"), env={"TRAINWATCH_DEBUG": "1"})
    assert result.returncode == 2  # a known error stays one line even in debug mode
    assert b"script not found" in result.stderr


def test_python_dash_m_entry_point_works():
    result = subprocess.run(
        [sys.executable, "-m", "trainwatch.cli", "--version"], capture_output=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout.startswith(b"trainwatch ")


def test_child_sees_a_terminal_when_trainwatch_writes_to_one():
    code = "import sys; print('isatty', sys.stdout.isatty(), sys.stderr.isatty())"
    pid, fd = pty.fork()
    if pid == 0:  # in the child: stdout and stderr are the pseudo-terminal
        os.execve(
            TRAINWATCH,
            [TRAINWATCH, "run", "-q", "--no-probe", "--", sys.executable, "-c", code],
            trainwatch_env(),
        )
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"isatty True True" in out


# trainwatch's real command line in a process of its own, with a bug put into its judge: what a
# bug of trainwatch's own does once the program has ended
_WITH_A_BROKEN_JUDGE = """
import sys
from trainwatch.diagnostics.judge import classify


def broken(*args, **kwargs):
    raise RuntimeError("a bug in the judge")


classify.classify = broken
from trainwatch.cli.app import main

main(sys.argv[1:])
"""


@pytest.mark.parametrize("status", [0, 4])
def test_a_bug_of_trainwatch_s_own_after_the_run_keeps_the_run_s_exit_status(status):
    done = subprocess.run(
        [sys.executable, "-c", _WITH_A_BROKEN_JUDGE, "run", "--no-probe", "--"]
        + [sys.executable, "-c", f"print('trained'); raise SystemExit({status})"],
        capture_output=True,
        timeout=60,
        env=trainwatch_env(),
    )
    assert done.returncode == status and done.stdout == b"trained\n"
    assert done.stderr.decode().splitlines() == [
        "trainwatch: error: internal error: RuntimeError: a bug in the judge (set "
        f"TRAINWATCH_DEBUG=1 for the traceback); the run's own exit status {status} is kept"
    ]


def test_a_ctrl_c_after_the_program_ended_does_not_make_it_interrupted(tmp_path):
    # the program exits 0 at once; a job it left goes on printing, so trainwatch is still
    # relaying its output when the Ctrl-C comes
    report = tmp_path / "r.json"
    job = "(for i in $(seq 30); do echo tick; sleep 0.1; done) & echo done"
    proc = _started(report, "sh", "-c", job)
    time.sleep(1.0)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out.startswith(b"done")
    verdict = read_report(report)["verdict"]
    assert verdict["category"] == "completed", verdict


@pytest.mark.parametrize("closed", [(1,), (2,), (1, 2)])
def test_the_program_s_status_comes_back_with_trainwatch_s_own_outputs_closed(closed):
    def close() -> None:
        for fd in closed:
            os.close(fd)

    result = subprocess.run(
        [TRAINWATCH, "run", "--", "sh", "-c", "echo out; echo err >&2; exit 3"],
        preexec_fn=close,
        env=trainwatch_env(),
        stderr=subprocess.PIPE if 2 not in closed else None,
        timeout=60,
    )
    assert result.returncode == 3
    if 2 not in closed:
        assert b"Traceback" not in result.stderr and b"internal error" not in result.stderr


def test_a_shell_script_is_run_as_itself_or_refused_never_read_as_python(tmp_path):
    script = tmp_path / "train.sh"
    script.write_text("#!/bin/sh\necho hi\nexit 4\n")
    refused = trainwatch("run", str(script))
    assert refused.returncode == 126 and b"chmod +x" in refused.stderr
    assert b"syntax" not in refused.stderr
    script.chmod(0o755)
    here = trainwatch("run", "-q", "train.sh", cwd=tmp_path)  # a file here, named bare
    assert here.returncode == 4 and here.stdout == b"hi\n"


def test_stdout_and_stderr_to_one_file_keep_their_order(tmp_path):
    # `> log 2>&1`: the program writes both streams to one place, and so it does under trainwatch
    code = (
        "import sys\n"
        "for i in range(2000):\n"
        "    (sys.stdout if i % 2 else sys.stderr).write(f'line {i}\\n')\n"
    )
    argv = [sys.executable, "-u", "-c", code]
    bare, wrapped = tmp_path / "bare.txt", tmp_path / "wrapped.txt"
    with bare.open("wb") as out:
        subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=True)
    with wrapped.open("wb") as out:
        subprocess.run(
            [TRAINWATCH, "run", "--no-probe", "-q", "--", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=trainwatch_env(),
            check=True,
        )
    lines = [
        line for line in wrapped.read_bytes().splitlines() if not line.startswith(b"trainwatch")
    ]
    assert lines == bare.read_bytes().splitlines()
