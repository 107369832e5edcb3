"""The process-tree sampler and the monitor on real children: trees, orphans, CPU time, kills,
limits, no GPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainwatch.diagnostics.watch.monitor import GPU_FIRST_READ_S, Monitor
from trainwatch.diagnostics.watch.sampling import TreeSampler

from conftest import SCRIPTS

PYTHON = sys.executable
MB = 2**20


def _read_line(proc: subprocess.Popen, prefix: str) -> str:
    for raw in proc.stdout:
        line = raw.decode().strip()
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line starting with {prefix!r}")


@pytest.fixture
def family():
    """monitor_family.py running, renamed "odd) na(me", with a busy child: (process, busy child
    pid).
    """
    proc = subprocess.Popen(
        [PYTHON, str(SCRIPTS / "monitor_family.py"), "odd) na(me", "3"], stdout=subprocess.PIPE
    )
    busy = int(_read_line(proc, "busy").split()[1])
    yield proc, busy
    for pid in (busy, proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def test_orphan_stays_in_tree_once_seen():
    # The child forks a grandchild, which is sampled, and then the child exits: the orphan is still
    # ours.
    code = (
        "import os, time, sys\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    if os.fork() == 0:\n"
        "        b = bytearray(20 * 2**20)\n"
        "        for i in range(0, len(b), 4096): b[i] = 1\n"
        "        time.sleep(3); os._exit(0)\n"
        "    sys.stdin.readline(); os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "time.sleep(3)\n"
    )
    proc = subprocess.Popen([PYTHON, "-c", code], stdin=subprocess.PIPE)
    try:
        sampler = TreeSampler(proc.pid)
        deadline = time.monotonic() + 10
        while len(sampler.sample().processes) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        members = set(sampler.tree_pids())
        assert len(members) == 3
        proc.stdin.write(b"\n")
        proc.stdin.flush()  # the middle process exits: the grandchild is re-parented
        while len(sampler.sample().processes) != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        after = sampler.sample()
        assert len(after.processes) == 2
        orphan = next(p for p in after.processes if p.pid != proc.pid)
        assert orphan.pid in members and orphan.rss_bytes > 15 * MB
    finally:
        proc.kill()
        proc.wait()


def test_shell_wrapper_grandchild_is_the_top_process():
    grow = f"{PYTHON} {SCRIPTS / 'monitor_grow.py'} 10 60 1.0; true"
    proc = subprocess.Popen(["sh", "-c", grow], stdout=subprocess.DEVNULL)
    monitor = Monitor.start(proc.pid, interval=0.1)
    proc.wait(timeout=60)
    facts = monitor.stop()
    assert proc.returncode == 0
    assert facts.peak_rss_bytes >= 60 * MB
    assert facts.top_process is not None and facts.top_process.name.startswith("python")
    assert "monitor_grow.py" in facts.top_process.cmdline
    assert len(facts.peak.processes) == 2  # the shell and its python child
    assert not facts.oom_corroboration()
    assert len(facts.timeline(10)) <= 10 and max(facts.timeline(10)) == facts.peak_rss_bytes


def test_kill_9_from_outside_is_not_corroborated():
    proc = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(60)"])
    monitor = Monitor.start(proc.pid, interval=0.1)
    assert monitor.wait_ready()
    assert monitor.tree_pids() == (proc.pid,) and monitor.latest() is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    facts = monitor.stop()
    assert proc.returncode == -signal.SIGKILL
    assert facts.oom_corroboration() == ()
    assert all(c.delta == 0 for c in facts.counters)
    assert proc.pid not in {k.pid for k in facts.kernel_oom_kills}
    assert facts.limit_bytes and facts.limit_source


@pytest.mark.parametrize(
    "mode, message",
    [
        ("python", "MemoryError"),
        pytest.param("torch", "DefaultCPUAllocator: can't allocate memory"),
    ],
)
def test_rlimit_allocation_failure_is_an_exception_not_a_kill(mode, message):
    proc = subprocess.Popen(
        [PYTHON, str(SCRIPTS / "monitor_rlimit.py"), mode], stderr=subprocess.PIPE
    )
    monitor = Monitor.start(proc.pid, interval=0.1)
    stderr = proc.communicate(timeout=60)[1].decode()
    facts = monitor.stop()
    assert proc.returncode == 1
    assert message in stderr
    assert facts.oom_corroboration() == ()


def test_a_short_run_never_pays_for_nvml():
    proc = subprocess.Popen([PYTHON, "-c", "pass"])
    monitor = Monitor.start(proc.pid, interval=0.05)
    proc.wait()
    facts = monitor.stop()
    assert facts.gpu is None


def test_without_a_gpu_driver_there_is_no_gpu_section_and_no_note():
    import pynvml

    try:
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        pytest.skip("an NVIDIA driver is present on this machine")
    except Exception as exc:
        if type(exc).__name__ != "NVMLError_LibraryNotFound":
            pytest.skip(f"NVML answers otherwise here: {exc}")
    # NVML is first tried once the run is GPU_FIRST_READ_S old: a shorter run gets no GPU section at
    # all. Without a driver a longer one gets none either: a note on every CPU report says nothing.
    proc = subprocess.Popen([PYTHON, "-c", f"import time; time.sleep({GPU_FIRST_READ_S + 0.5})"])
    monitor = Monitor.start(proc.pid, interval=0.1)
    proc.wait()
    facts = monitor.stop()
    assert facts.gpu is None
    assert not any(note.startswith("GPU") for note in facts.notes)
    assert facts.gpu_timeline() == ()
    assert all(s.gpu_used_bytes is None for s in facts.samples)
    assert json.dumps(facts.to_dict())


def test_monitor_of_a_process_that_is_already_gone():
    proc = subprocess.Popen(["true"])
    proc.wait()
    facts = Monitor.start(proc.pid, interval=0.1).stop()
    assert facts.sample_count == 0 and facts.peak is None
    assert facts.oom_corroboration() == () and facts.timeline() == ()
    assert json.dumps(facts.to_dict())


def test_report_is_bounded_and_json(tmp_path):
    shm_file = Path("/dev/shm") / f"trainwatch-test-{os.getpid()}"
    proc = subprocess.Popen(
        [PYTHON, str(SCRIPTS / "monitor_grow.py"), "5", "40", "0.5"], stdout=subprocess.DEVNULL
    )
    monitor = Monitor.start(proc.pid, interval=0.05, capacity=8)
    try:
        if shm_file.parent.is_dir():
            with open(shm_file, "wb") as f:  # written, not sparse: tmpfs counts the pages
                f.write(b"\1" * (64 * MB))
        proc.wait(timeout=60)
        facts = monitor.stop()
    finally:
        shm_file.unlink(missing_ok=True)
    assert facts.sample_count > len(facts.samples)
    assert len(facts.samples) <= 8 + 2
    # the peak survives merging
    assert max(s.tree_rss_bytes for s in facts.samples) == facts.peak_rss_bytes
    report = json.loads(json.dumps(facts.to_dict(max_samples=4)))
    assert len(report["samples"]) <= 5
    assert report["peak_rss_bytes"] >= 40 * MB and report["top_process"]["pid"] == proc.pid
    assert report["sampling"]["count"] == facts.sample_count
    if shm_file.parent.is_dir():
        assert report["shm"]["peak_used_bytes"] >= 64 * MB


def test_tree_reads_odd_names_and_cpu_time(family):
    proc, busy = family
    sampler = TreeSampler(proc.pid)
    first = sampler.sample()
    by_pid = {p.pid: p for p in first.processes}
    assert set(by_pid) == {proc.pid, busy}
    assert by_pid[proc.pid].name == "odd) na(me"  # the comm field with ')' and spaces parsed whole
    assert by_pid[busy].ppid == proc.pid
    assert sampler.tree_pids()[0] == proc.pid
    time.sleep(0.3)
    second = sampler.sample()
    assert second.cpu_seconds > first.cpu_seconds  # the busy child spins
    assert second.tree_rss_bytes == sum(p.rss_bytes for p in second.processes)
