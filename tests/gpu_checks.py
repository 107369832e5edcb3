"""What a report must hold about a GPU run: checked on real CUDA runs by
tests/integration/test_gpu.py, and on reports built from the same dataclasses by
tests/unit/test_gpu_reports.py (so these checks run on every machine, with or without a GPU)."""

from __future__ import annotations

GIB = 2**30


def check_nvml_sampling(report: dict, at_least: int) -> None:
    """NVML was sampled: the devices, a peak of at least `at_least` bytes, a GPU timeline, and
    our processes' own memory (or the note saying why NVML could not name them)."""
    gpu = report["memory"]["gpu"]
    assert gpu is not None, report["memory"]["notes"]
    assert gpu["devices"] and all(d["name"] and d["total_bytes"] > 0 for d in gpu["devices"])
    assert gpu["peak_used_bytes"] >= at_least, gpu
    assert any(s.get("gpu_used_bytes") for s in report["memory"]["samples"])
    if gpu["per_process"]:
        assert any((p["used_bytes"] or 0) >= at_least for p in gpu["processes"]), gpu
    else:  # a container: NVML names host pids; the report says so rather than guess
        assert any("NVML" in note for note in gpu["notes"]), gpu["notes"]


def check_allocator_figures(report: dict) -> None:
    """The probe recorded torch's allocator at the failure, and the verdict cites it."""
    stats = report["probe"]["torch"]["memory"]
    for name in ("allocated", "reserved", "max_allocated"):
        assert isinstance(stats[name], int) and stats[name] >= 0, stats
    assert stats["reserved"] >= stats["allocated"] >= GIB, stats
    assert any(
        c["kind"] == "probe" and "torch's allocator at the failure" in c["text"]
        for c in report["evidence"]
    ), report["evidence"]


def check_gpu_oom(report: dict) -> None:
    assert report["verdict"]["subtype"] == "oom/gpu", report["verdict"]
    assert report["exit"]["status"] == 1
    check_allocator_figures(report)
    assert any(c["kind"] == "gpu" for c in report["evidence"]), report["evidence"]
