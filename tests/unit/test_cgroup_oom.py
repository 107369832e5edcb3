"""Real kernel OOM kills in a memory cgroup made for the test, and the limit, counter and kernel-log
readers.

Needs root and a memory controller (cgroup v1 here and on CI); skips with the reason elsewhere.
Every cgroup made is emptied and removed afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainwatch.diagnostics.watch import cgroup
from trainwatch.diagnostics.watch.monitor import Monitor

PYTHON = sys.executable
TRAINWATCH = str(Path(sys.executable).with_name("trainwatch"))
MB = 2**20


@pytest.fixture
def memory_cgroup():
    """Make memory cgroups under our own: `make(limit_bytes, parent=None) -> directory`."""
    if os.geteuid() != 0:
        pytest.skip("creating memory cgroups needs root")
    own = cgroup.locate_cgroup(os.getpid())
    if own is None:
        pytest.skip("no memory cgroup controller is mounted")
    made: list[str] = []

    def make(limit_bytes: int | None, parent: str | None = None) -> str:
        directory = os.path.join(
            parent or own.directory, f"trainwatch-test-{os.getpid()}-{len(made)}"
        )
        try:
            os.mkdir(directory)
        except OSError as exc:
            pytest.skip(f"cannot create a memory cgroup under {own.directory}: {exc.strerror}")
        made.append(directory)
        limit_file = "memory.limit_in_bytes" if own.version == 1 else "memory.max"
        if not os.path.exists(os.path.join(directory, limit_file)):
            pytest.skip(f"the memory controller is not enabled in {directory}")
        if limit_bytes is not None:
            _write(os.path.join(directory, limit_file), limit_bytes)
            # No swap here, but where there is, the kill would come later or never: cap memory+swap
            # too.
            for swap_file, value in (
                ("memory.memsw.limit_in_bytes", limit_bytes),
                ("memory.swap.max", 0),
            ):
                if os.path.exists(os.path.join(directory, swap_file)):
                    _write(os.path.join(directory, swap_file), value)
        return directory

    yield make
    for directory in reversed(made):
        _remove(directory)


def _write(path: str, value: object) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _remove(directory: str) -> None:
    for _ in range(50):
        try:
            with open(os.path.join(directory, "cgroup.procs")) as f:
                for pid in f.read().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


def _enter(directory: str):
    """A preexec_fn that moves the new process into the cgroup before it execs."""
    procs = os.path.join(directory, "cgroup.procs")
    return lambda: _write(procs, os.getpid())


def _run_monitored(argv: list[str], directory: str, timeout: float = 90) -> tuple[int, str, object]:
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_enter(directory)
    )
    monitor = Monitor.start(proc.pid, interval=0.1)
    output, _ = proc.communicate(timeout=timeout)
    return proc.returncode, output.decode("utf-8", "replace"), monitor.stop()


def test_locate_cgroup_follows_proc_and_mountinfo():
    place = cgroup.locate_cgroup(os.getpid())
    if place is None:
        pytest.skip("no memory cgroup controller is mounted")
    with open("/proc/self/cgroup") as f:
        assert place.path in f.read()
    assert os.path.isdir(place.directory)
    assert place.directory.startswith(place.mount)
    assert cgroup.read_usage(place) > 0
    assert cgroup.read_oom_kills(place) is not None


def test_mountinfo_parsing_finds_v1_and_v2_mounts():
    lines = [
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
        "35 31 0:32 /kubepods/pod1 /sys/fs/cgroup/mem\\040ory rw,relatime - cgroup cgroup "
        "rw,memory",
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
    ]
    assert cgroup._find_mount(lines, 1) == ("/kubepods/pod1", "/sys/fs/cgroup/mem ory")
    assert cgroup._find_mount(lines, 2) == ("/", "/sys/fs/cgroup/unified")
    assert (
        cgroup._join_under("/sys/fs/cgroup/memory", "/kubepods/pod1", "/kubepods/pod1/ctr")
        == "/sys/fs/cgroup/memory/ctr"
    )


def test_parse_oom_kills_takes_the_kernels_wording():
    # As this machine's kernel (6.18) logged a cgroup OOM kill.
    messages = [
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
        "oom_memcg=/a/t,task_memcg=/a/t,task=python3,pid=5748,uid=0",
        "Memory cgroup out of memory: Killed process 5748 (python3) total-vm:114244kB, "
        "anon-rss:97152kB, "
        "file-rss:6488kB, shmem-rss:0kB, UID:0 pgtables:252kB oom_score_adj:0",
        "Out of memory: Killed process 77 (pt_data_worker) total-vm:1kB",
        "Killed process 12 (x) by the user",  # not the OOM killer's words
    ]
    kills = cgroup.parse_oom_kills(messages)
    assert [(k.pid, k.name, k.memcg) for k in kills] == [
        (5748, "python3", "/a/t"),
        (77, "pt_data_worker", None),
    ]
    assert kills[0].rss_bytes == (97152 + 6488) * 1024 and kills[1].rss_bytes is None
