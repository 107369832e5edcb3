"""The memory timeline in-process: bounded peaks, resampling that keeps spikes, GPU utilisation
(the sampler on real process trees is in the integration tests)."""

from __future__ import annotations

import sys

from trainwatch.diagnostics.watch.sampling import Sample, Timeline, resample

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


def test_the_headline_peak_is_the_trees_real_use_and_a_summed_rss_says_so():
    from trainwatch.cli.reports.outline import peak_words
    from trainwatch.diagnostics.watch.monitor import MemoryFacts
    from trainwatch.diagnostics.watch.sampling import ProcessMemory

    # a main process and two forked workers sharing its 500 MiB dataset: their RSS sum counts it
    # three times; their PSS counts it once
    procs = tuple(ProcessMemory(pid, 1, "python", 550 * MB, 0.0) for pid in (10, 11, 12))
    summed = Sample(1.0, 1.0, procs, 1650 * MB, 0.0, None)
    measured = Sample(1.0, 1.0, procs, 1650 * MB, 0.0, None, tree_pss_bytes=590 * MB)
    with_pss = MemoryFacts(interval_s=0.5, peak=measured, peak_rss_bytes=1650 * MB)
    assert with_pss.peak_use() == (590 * MB, "PSS")
    without = MemoryFacts(interval_s=0.5, peak=summed, peak_rss_bytes=1650 * MB)
    assert without.peak_use() == (1650 * MB, "summed RSS")
    report = without.to_dict()
    assert report["peak_bytes"] == 1650 * MB and report["peak_measure"] == "summed RSS"
    assert "summed RSS: shared pages counted in each process" in peak_words(report)
    assert "summed" not in peak_words(with_pss.to_dict())
    # a process the kernel killed between two samples: its own RSS from the kernel's line
    killed = MemoryFacts(interval_s=0.5, peak=measured, peak_rss_bytes=2000 * MB)
    assert killed.peak_use() == (2000 * MB, "RSS")
