"""Real failures on a CUDA device under `trainwatch run`: an out-of-memory (an allocation larger
than the device, and one on a device another process holds), a NaN under autocast,
a device-side assert, and NVML's sampling, per-process memory and the probe's allocator figures
in the report (issue 12, point 8).

Skips, with the reason, on a machine without an NVIDIA driver or without a CUDA build of torch:
the decision costs one stat here, and one `import torch` in a subprocess only where a driver is
loaded. The checks themselves (tests/gpu_checks.py) also run on every machine, on reports built
from the same dataclasses (tests/unit/test_gpu_reports.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import SCRIPTS, read_report, trainwatch
from gpu_checks import GIB, check_allocator_figures, check_gpu_oom, check_nvml_sampling


def _why_no_gpu() -> str | None:
    if not os.path.exists("/proc/driver/nvidia/version"):
        return "no NVIDIA driver on this machine"
    probe = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if probe.stdout.strip() != "True":
        return f"torch sees no CUDA device ({(probe.stdout + probe.stderr).strip()[-200:]})"
    return None


REASON = _why_no_gpu()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def _run(tmp_path, mode: str, *options: str, env: dict | None = None):
    report = tmp_path / f"{mode}.json"
    result = trainwatch(
        "run",
        "--interval",
        "0.2",
        "--json",
        str(report),
        *options,
        str(SCRIPTS / "gpu_failures.py"),
        mode,
        env=env,
        timeout=300,
    )
    return result, read_report(report)


def test_nvml_sampling_and_per_process_memory(tmp_path):
    result, report = _run(tmp_path, "hold")
    assert result.returncode == 0, result.stderr[-3000:]
    check_nvml_sampling(report, at_least=GIB)
    assert report["verdict"]["category"] == "completed"


def test_a_real_cuda_out_of_memory(tmp_path):
    result, report = _run(tmp_path, "oom")
    assert result.returncode == 1, result.stderr[-3000:]
    check_gpu_oom(report)
    check_allocator_figures(report)
    check_nvml_sampling(report, at_least=GIB)
    # it asked for twice the device: a size to look at, not a budget to tune
    assert any(a.startswith("Look at the shape") for a in report["advice"]), report["advice"]


def test_a_gpu_held_by_another_process(tmp_path):
    hog = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "gpu_failures.py"), "hog"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert hog.stdout.readline().startswith("holding"), "the other process took no memory"
        result, report = _run(tmp_path, "ask")
    finally:
        hog.stdin.close()
        hog.wait(timeout=60)
    assert result.returncode == 1, result.stderr[-3000:]
    assert report["verdict"]["subtype"] == "oom/gpu-occupied", report["verdict"]
    assert any("nvidia-smi" in a for a in report["advice"]), report["advice"]
    # three seconds of start-up, no training step: its growth is no leak
    assert "leak" not in report["verdict"]["summary"], report["verdict"]
    if report["memory"]["gpu"]["per_process"]:  # NVML named the run's processes: it names the hog
        assert any(f"pid {hog.pid} " in c["text"] for c in report["evidence"]), report["evidence"]
        # and the run's GPU figures are its own, never the hog's whole-device share
        assert report["memory"]["gpu"]["peak_used_bytes"] < 8 * GIB, report["memory"]["gpu"]
        assert max(s.get("gpu_used_bytes", 0) for s in report["memory"]["samples"]) < 8 * GIB


def test_a_nan_under_autocast(tmp_path):
    result, report = _run(tmp_path, "nan")
    assert result.returncode == 0, result.stderr[-3000:]
    assert report["verdict"]["category"] == "numerical", report["verdict"]
    progress = report["progress"]
    assert progress["first_nonfinite_loss"] is not None, progress


def test_a_device_side_assert(tmp_path):
    result, report = _run(tmp_path, "assert", env={"CUDA_LAUNCH_BLOCKING": "1"})
    assert result.returncode == 1, result.stderr[-3000:]
    assert b"device-side assert" in result.stderr
    assert report["verdict"]["subtype"] == "data/label-out-of-range", report["verdict"]
