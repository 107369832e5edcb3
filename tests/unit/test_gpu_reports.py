"""The GPU paths of a report on a machine without a GPU: the sampler run against a stand-in for
NVML's library (this machine has none), its real dataclasses through the monitor's facts, the
classifier and the JSON report, and the same checks tests/integration/test_gpu.py makes on real
CUDA runs (tests/gpu_checks.py)."""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace

import pytest

from trainwatch.diagnostics.evidence import Evidence, ExitStatus
from trainwatch.diagnostics.judge.classify import classify
from trainwatch.diagnostics.read.logparse import LogParser, parse_text
from trainwatch.diagnostics.read.progress import ProgressTracker
from trainwatch.diagnostics.verdict import Diagnosis
from trainwatch.diagnostics.watch.gpu import GpuSampler
from trainwatch.diagnostics.watch.monitor import MemoryFacts
from trainwatch.diagnostics.watch.probe.records import ProbeFacts
from trainwatch.diagnostics.watch.sampling import ProcessMemory, Sample

from gpu_checks import GIB, check_allocator_figures, check_gpu_oom, check_nvml_sampling

PID = 4242
TOTAL = 80 * GIB


class StandInNvml:
    """The few NVML calls GpuSampler makes, answering as one 80 GiB device on which `PID` holds
    `held` bytes (nvidia-ml-py's names and shapes)."""

    class NVMLError(Exception):
        pass

    def __init__(self, held: int, list_pids: bool = True) -> None:
        self.held = held
        self.list_pids = list_pids

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return b"NVIDIA H200"

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=self.held + 600 * 2**20, total=TOTAL)

    def nvmlDeviceGetUtilizationRates(self, handle):
        return SimpleNamespace(gpu=97)

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        pid = PID if self.list_pids else 1  # a container: NVML names the host's pid
        return [SimpleNamespace(pid=pid, usedGpuMemory=self.held)]


def _gpu_facts(monkeypatch, held: int, list_pids: bool = True):
    monkeypatch.setitem(sys.modules, "pynvml", StandInNvml(held, list_pids))
    sampler = GpuSampler()
    readings = [sampler.read({PID}) for _ in range(3)]
    sampler.close()
    return sampler.facts(), readings


def _memory(gpu, readings) -> MemoryFacts:
    process = ProcessMemory(PID, 1, "python", 2 * GIB, 1.0)
    samples = tuple(
        Sample(
            float(i),
            float(i),
            (process,),
            process.rss_bytes,
            1.0,
            None,
            gpu_used_bytes=reading.used_bytes,
            gpu_utilization_pct=reading.utilization_pct,
        )
        for i, reading in enumerate(readings)
    )
    return MemoryFacts(interval_s=0.5, samples=samples, tail=samples, gpu=gpu, seen_pids=(PID,))


def _report(evidence: Evidence) -> dict:
    verdict = classify(evidence)
    return Diagnosis(
        "t", ("python3", "t.py"), None, 3.0, evidence.exit, verdict, evidence
    ).to_dict()


@pytest.mark.parametrize("list_pids", [True, False])
def test_nvml_sampling_and_per_process_memory(monkeypatch, list_pids):
    gpu, readings = _gpu_facts(monkeypatch, GIB, list_pids)
    assert gpu.per_process is list_pids
    assert readings[0].utilization_pct == 97
    evidence = Evidence(
        source="run", exit=ExitStatus.from_returncode(0), memory=_memory(gpu, readings)
    )
    check_nvml_sampling(_report(evidence), at_least=GIB)
    # the Run section says whose memory its GPU line counts
    from trainwatch.cli.reports.outline import outline

    verdict = classify(evidence)
    view = outline(
        Diagnosis("t", ("python3", "t.py"), None, 3.0, evidence.exit, verdict, evidence), 0
    )
    lines = [i.text for section in view.sections for i in section.items]
    whose = "(the run's processes)" if list_pids else "(whole GPUs)"
    assert any(t.startswith("GPU memory peak") and whose in t for t in lines), lines


def test_a_cuda_out_of_memory_cites_the_allocator_and_the_device(monkeypatch):
    gpu, readings = _gpu_facts(monkeypatch, 79 * GIB)
    log = parse_text(
        "Traceback (most recent call last):\n"
        '  File "/w/gpu_failures.py", line 27, in <module>\n'
        "    more = torch.empty(2 * total, dtype=torch.uint8, device=device)\n"
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 282.00 GiB. GPU 0 has a "
        "total capacity of 139.72 GiB of which 138.1 GiB is free.\n"
    )
    probe = ProbeFacts(
        torch={
            "version": "2.13.0",
            "cuda_initialized": True,
            "memory": {"allocated": GIB, "reserved": 2 * GIB, "max_allocated": GIB},
        }
    )
    evidence = Evidence(
        source="run",
        exit=ExitStatus.from_returncode(1),
        log=log,
        probe=probe,
        memory=_memory(gpu, readings),
    )
    report = _report(evidence)
    check_gpu_oom(report)
    check_allocator_figures(report)
    check_nvml_sampling(report, at_least=GIB)


def test_other_processes_on_the_run_s_gpu_are_named_and_make_the_oom_occupied(monkeypatch):
    class SharedGpu(StandInNvml):
        def nvmlDeviceGetComputeRunningProcesses(self, handle):
            # the run's process, and a stale run holding 70 GiB of the 80
            return [
                SimpleNamespace(pid=PID, usedGpuMemory=self.held),
                SimpleNamespace(pid=999, usedGpuMemory=70 * GIB),
            ]

        def nvmlDeviceGetMemoryInfo(self, handle):
            return SimpleNamespace(used=self.held + 70 * GIB, total=TOTAL)

    monkeypatch.setitem(sys.modules, "pynvml", SharedGpu(9 * GIB))
    sampler = GpuSampler()
    readings = [sampler.read({PID}) for _ in range(3)]
    sampler.close()
    gpu = sampler.facts()
    assert [(p.pid, p.used_bytes) for p in gpu.other_processes] == [(999, 70 * GIB)]
    assert gpu.to_dict()["other_processes"] == [{"pid": 999, "device": 0, "used_bytes": 70 * GIB}]
    # torch's older wording has no figures to tell: NVML's list does
    log = parse_text(
        "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total "
        "capacity; 8.10 GiB already allocated; 1.02 GiB free; 8.50 GiB reserved in total by "
        "PyTorch)\n"
    )
    evidence = Evidence(
        source="run", exit=ExitStatus.from_returncode(1), log=log, memory=_memory(gpu, readings)
    )
    verdict = classify(evidence)
    assert verdict.subtype == "oom/gpu-occupied", verdict.summary
    assert any("pid 999 70.0 GiB on GPU 0" in c.text for c in verdict.evidence), verdict.evidence
    # where NVML cannot name the run's own processes, nobody is called another's
    monkeypatch.setitem(sys.modules, "pynvml", SharedGpu(9 * GIB))
    blind = GpuSampler()
    blind.read({12345})
    blind.close()
    assert blind.facts().other_processes == ()


def test_a_nan_under_autocast_is_numerical():
    tracker = ProgressTracker()
    parser = LogParser(on_line=tracker.feed)
    values = ["41235.5000", "inf", "nan", "nan"]
    parser.feed_text("".join(f"step {i} loss {v}\n" for i, v in enumerate(values)))
    evidence = Evidence(
        source="run",
        exit=ExitStatus.from_returncode(0),
        log=parser.finish(),
        progress=tracker.finish(),
    )
    report = _report(evidence)
    assert report["verdict"]["category"] == "numerical", report["verdict"]
    assert report["progress"]["first_nonfinite_loss"] is not None


def test_a_device_side_assert_is_a_label_out_of_range():
    log = parse_text(
        "/pytorch/aten/src/ATen/native/cuda/Loss.cu:250: nll_loss_forward_reduce_cuda_kernel_2d: "
        "block: [0,0,0], thread: [0,0,0] Assertion `t >= 0 && t < n_classes` failed.\n"
        "Traceback (most recent call last):\n"
        '  File "/w/gpu_failures.py", line 44, in <module>\n'
        '    print(f"loss {loss.item()}", flush=True)\n'
        "RuntimeError: CUDA error: device-side assert triggered\n"
    )
    evidence = Evidence(source="run", exit=ExitStatus.from_returncode(1), log=log)
    assert _report(evidence)["verdict"]["subtype"] == "data/label-out-of-range"


def test_samples_between_two_slow_nvml_readings_carry_the_last_one(monkeypatch):
    """NVML slower than a tenth of the interval is read every few samples (an H200 VM showed
    `ps` flickering to "-" between readings): every sample after the first reading has a figure."""
    import subprocess

    from trainwatch.diagnostics.watch.monitor import Monitor

    class SlowNvml(StandInNvml):
        def nvmlDeviceGetMemoryInfo(self, handle):
            time.sleep(0.03)  # > a tenth of the 0.1 s interval: read every 4th sample or so
            return super().nvmlDeviceGetMemoryInfo(handle)

    monkeypatch.setitem(sys.modules, "pynvml", SlowNvml(GIB))
    child = subprocess.Popen(["sleep", "1.0"])
    monkeypatch.setattr("trainwatch.diagnostics.watch.monitor.GPU_FIRST_READ_S", 0.1, raising=True)
    monitor = Monitor.start(child.pid, interval=0.1)
    child.wait()
    facts = monitor.stop()
    values = [s.gpu_used_bytes for s in facts.samples]
    first = next(i for i, v in enumerate(values) if v is not None)
    assert len(values) - first >= 5, values
    assert all(v is not None for v in values[first:]), values


def test_whole_device_readings_before_the_run_s_cuda_context_are_not_the_run_s(monkeypatch):
    """On an H200 a run that met another process's 136 GiB showed "GPU memory peak 136.4 GiB (the
    run's processes)": NVML lists a process only once it has a CUDA context, and the readings
    before were whole devices'. Once NVML named the run's processes, the report keeps their own."""
    import subprocess

    from trainwatch.diagnostics.watch.monitor import Monitor

    child = subprocess.Popen(["sleep", "1.0"])

    class LateContext(StandInNvml):
        calls = 0

        def nvmlDeviceGetComputeRunningProcesses(self, handle):
            self.calls += 1
            other = [SimpleNamespace(pid=999, usedGpuMemory=70 * GIB)]
            late = [SimpleNamespace(pid=child.pid, usedGpuMemory=self.held)]
            return other + (late if self.calls > 3 else [])

        def nvmlDeviceGetMemoryInfo(self, handle):
            return SimpleNamespace(used=71 * GIB, total=TOTAL)

    monkeypatch.setitem(sys.modules, "pynvml", LateContext(GIB))
    monkeypatch.setattr("trainwatch.diagnostics.watch.monitor.GPU_FIRST_READ_S", 0.1, raising=True)
    monitor = Monitor.start(child.pid, interval=0.1)
    child.wait()
    facts = monitor.stop()
    values = [s.gpu_used_bytes for s in facts.samples if s.gpu_used_bytes is not None]
    assert facts.gpu.per_process and facts.gpu.peak_used_bytes == GIB, facts.gpu
    assert 0 in values and max(values) == GIB, values
    assert max(s.gpu_used_bytes or 0 for s in facts.tail) <= GIB
