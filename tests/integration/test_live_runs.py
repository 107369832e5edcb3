"""`trainwatch ps` and `trainwatch dump` against real runs: a plain script, a torchrun job of two
CPU ranks, a run whose trainwatch was killed (its entry is stale), and a Python process outside
trainwatch (py-spy, or the hint)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SCRIPTS, TRAINWATCH, trainwatch

# torchrun's script beside this Python; its module where the environment lends torch from elsewhere
TORCHRUN = (
    [str(Path(sys.executable).with_name("torchrun"))]
    if Path(sys.executable).with_name("torchrun").exists()
    else [sys.executable, "-m", "torch.distributed.run"]
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveRun:
    """`trainwatch run ARGS` in the background, with its own registry directory."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.runtime = tmp_path / "runtime"
        self.runtime.mkdir(mode=0o700)
        self.env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(self.runtime),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            "OMP_NUM_THREADS": "1",
        }
        self.report = tmp_path / "report.json"
        self.proc = subprocess.Popen(
            [TRAINWATCH, "run", "--json", str(self.report), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def tw(self, *args: str) -> subprocess.CompletedProcess:
        return trainwatch(*args, env={"XDG_RUNTIME_DIR": str(self.runtime)}, timeout=60)

    def runs(self) -> list[dict]:
        return json.loads(self.tw("ps", "--json").stdout)["runs"]

    def wait_for(self, ready, what: str, limit: float = 60.0):
        """Poll `ready()` until it returns something true; fail the test after `limit` s."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()[-3000:]
            found = ready()
            if found:
                return found
            time.sleep(0.3)
        pytest.fail(f"no {what} within {limit:.0f} s")

    def finish(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def _threads(process: dict) -> str:
    return json.dumps(process["threads"])


def test_a_torchrun_job_lists_once_and_dumps_every_rank(tmp_path):
    stop = tmp_path / "stop"
    run = LiveRun(
        tmp_path,
        "--",
        *TORCHRUN,
        "--nproc_per_node",
        "2",
        "--master-port",
        str(free_port()),
        str(SCRIPTS / "dist_wait.py"),
        str(stop),
    )
    try:
        (entry,) = run.wait_for(
            lambda: [r for r in run.runs() if r["status"].get("position")], "progress in ps"
        )
        assert entry["child_pid"] != entry["pid"] and entry["pid"] == run.proc.pid
        assert entry["status"]["position"].startswith("step ")
        assert entry["status"]["processes"] >= 3  # torchrun's agent and two ranks
        assert "torch" in " ".join(entry["command"])
        text = run.tw("ps").stdout.decode()
        assert text.splitlines()[0].split()[:3] == ["ID", "PID", "TIME"]
        assert str(run.proc.pid) in text and "running" in text

        def ranks():
            result = run.tw("dump", entry["id"], "--json")
            data = json.loads(result.stdout)
            by_rank = {p["rank"]: p for p in data["processes"] if p["source"] == "probe"}
            return data if {0, 1} <= set(by_rank) else None

        data = run.wait_for(ranks, "stacks from both ranks")
        processes = data["processes"]
        rank = {p["rank"]: p for p in processes if p["rank"] is not None}
        assert "dist_wait.py" in _threads(rank[0])
        waits = [t["wait"]["kind"] for t in rank[1]["threads"] if t["main"]]
        assert waits == ["collective"]  # rank 1 sits in its barrier
        agent = processes[0]
        assert agent["pid"] == entry["child_pid"] and "torch" in (agent["command"] or "")
        # any pid of the job names the run; the text shows each rank's main thread
        text = run.tw("dump", str(rank[1]["pid"])).stdout.decode()
        assert f"pid {rank[1]['pid']} · rank 1" in text
        assert "main thread: inside a distributed collective" in text
    finally:
        stop.touch()
    assert run.finish() == 0
    assert list((run.runtime / "trainwatch").iterdir()) == []  # removed at exit


def test_a_dataloader_run_dumps_its_workers_and_its_entry_goes_stale_when_killed(tmp_path):
    run = LiveRun(tmp_path, str(SCRIPTS / "quiet_dataloader_lock.py"))
    try:
        (entry,) = run.wait_for(
            lambda: [r for r in run.runs() if r["status"].get("position")], "the run in ps"
        )

        def workers():
            data = json.loads(run.tw("dump", "--json").stdout)  # the only run: no RUN needed
            forked = [p for p in data["processes"] if p["forked"]]
            return data if len(forked) == 2 else None

        data = run.wait_for(workers, "stacks from both DataLoader workers")
        main = data["processes"][0]
        assert main["pid"] == entry["child_pid"]
        (thread,) = [t for t in main["threads"] if t["main"]]
        assert thread["wait"]["kind"] == "dataloader"
        # trainwatch dies without cleaning up: its guard kills the program, the entry stays
        registered = run.runtime / "trainwatch" / f"{entry['id']}.json"
        assert registered.exists() and oct(registered.stat().st_mode & 0o777) == "0o600"
        os.kill(run.proc.pid, signal.SIGKILL)
        run.finish()
        assert registered.exists()
        assert run.runs() == []  # stale: ignored
        assert not registered.exists()  # and removed
    finally:
        if run.proc.poll() is None:
            run.proc.kill()


def test_a_python_process_outside_trainwatch_goes_to_py_spy_or_gets_the_hint(tmp_path):
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time\ndef napping():\n    time.sleep(60)\nnapping()"]
    )
    try:
        env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
        hint = subprocess.run(
            [TRAINWATCH, "dump", str(sleeper.pid)], env=env, capture_output=True, timeout=60
        )
        assert hint.returncode == 1 and hint.stdout == b""
        (line,) = hint.stderr.decode().splitlines()
        assert line.startswith(f"trainwatch: error: pid {sleeper.pid} is not part of a run")
        assert "pip install py-spy" in line
        if shutil.which("py-spy", path=str(Path(sys.executable).parent)) is None:
            pytest.skip("py-spy is not installed beside this Python")
        time.sleep(0.5)  # let the interpreter reach the sleep
        spied = trainwatch("dump", str(sleeper.pid), env={"XDG_RUNTIME_DIR": str(tmp_path)})
        assert spied.returncode == 0, spied.stderr
        assert b"napping" in spied.stdout
    finally:
        sleeper.kill()
        sleeper.wait()


def test_dump_without_any_run_and_with_a_bad_run_says_so(tmp_path):
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    nothing = trainwatch("dump", env=env)
    assert nothing.returncode == 1
    assert nothing.stderr == b"trainwatch: error: no run is under trainwatch (for this user)\n"
    bad = trainwatch("dump", "train.py", env=env)
    assert bad.returncode == 2 and b"RUN must be a run's ID or a pid" in bad.stderr
    listed = trainwatch("ps", env=env)
    assert listed.returncode == 0 and b"no run under trainwatch" in listed.stdout
