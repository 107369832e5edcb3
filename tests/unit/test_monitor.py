"""The process-tree sampler and the monitor on real children: trees, orphans, CPU time, kills,
limits, no GPU.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from trainwatch.diagnostics.watch.sampling import Sample, Timeline, TreeSampler, resample

from conftest import SCRIPTS

PYTHON = sys.executable
MB = 2**20


def _sample_at(elapsed: float, rss: int) -> Sample:
    return Sample(
        time=elapsed,
        elapsed=elapsed,
        processes=(),
        tree_rss_bytes=rss,
        cpu_seconds=0.0,
        available_bytes=None,
    )


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


def test_timeline_keeps_peaks_in_bounded_memory():
    timeline = Timeline(capacity=16, tail=4)
    for i in range(10_000):
        timeline.add(_sample_at(i, 5_000 if i == 6_123 else i % 100))
    kept = timeline.samples()
    assert len(kept) <= 16 + 1
    assert timeline.count == 10_000
    assert timeline.peak.tree_rss_bytes == 5_000 and 5_000 in [s.tree_rss_bytes for s in kept]
    assert [s.elapsed for s in kept] == sorted(s.elapsed for s in kept)
    assert kept[-1].elapsed == 9_999 and [s.elapsed for s in timeline.tail] == [
        9_996,
        9_997,
        9_998,
        9_999,
    ]


def test_resample_keeps_spikes():
    values = [1] * 100
    values[57] = 9
    assert resample(values, 10) == (1, 1, 1, 1, 1, 9, 1, 1, 1, 1)
    assert resample([3, 4], 10) == (3, 4)
    assert resample([], 5) == ()


def test_gpu_utilisation_is_the_busiest_device_the_run_uses():
    from trainwatch.diagnostics.watch.gpu import GpuDevice, GpuProcess, GpuReading

    devices = (GpuDevice(0, "A", 1, 10, 90), GpuDevice(1, "B", 1, 10, 3))
    ours_on_1 = GpuReading(devices, (GpuProcess(7, 1, 100),), matched=True)
    assert ours_on_1.utilization_pct == 3  # another job keeps device 0 busy; ours is idle
    unmatched = GpuReading(devices, (), matched=False)
    assert unmatched.utilization_pct == 90  # NVML names no process of ours: every device counts
    assert GpuReading((GpuDevice(0, "A", 1, 10, None),), (), matched=False).utilization_pct is None
