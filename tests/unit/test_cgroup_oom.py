"""The cgroup and kernel-log readers on sample files: where a process's cgroup is, mount tables of
cgroup v1 and v2, and the kernel's OOM-kill wording (the real kills are in the integration
tests)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from trainwatch.diagnostics.watch import cgroup

PYTHON = sys.executable
TRAINWATCH = str(Path(sys.executable).with_name("trainwatch"))
MB = 2**20


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


def test_the_v1_memory_cgroups_below_the_run_s_are_found_to_watch_from_the_start(tmp_path):
    # a worker that moves itself into a smaller cgroup below the run's is killed there, maybe
    # before a sample sees it move (a flake of the DataLoader-worker test under a loaded machine)
    from trainwatch.diagnostics.watch.cgroup import CgroupPlace, child_places

    run = tmp_path / "run"
    for name, file in (("worker", "memory.oom_control"), ("other", "cpu.shares")):
        (run / name).mkdir(parents=True)
        (run / name / file).write_text("oom_kill 0\n")
    place = CgroupPlace(1, "/run", str(run), str(tmp_path))
    assert [c.path for c in child_places(place)] == ["/run/worker"]
    assert child_places(CgroupPlace(2, "/run", str(run), str(tmp_path))) == []
