"""The software side of `trainwatch doctor`: the Python a run would use, torch in it, torch's CUDA
build against the driver, and the GPUs the run would see.

The Python is asked about itself in a subprocess (`inspect_python`): trainwatch never imports
torch, and the run may use another interpreter than trainwatch's own. The judging functions take
what it reported (`PythonFacts`) and the driver's facts (watch/gpu.py), so tests pass both made up.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trainwatch.diagnostics.doctor import Check
from trainwatch.diagnostics.units import human_bytes
from trainwatch.diagnostics.watch.gpu import NO_DRIVER, DriverFacts

# Importing torch from a network filesystem can take tens of seconds; longer than this is a hang.
INSPECT_TIMEOUT_S = 120.0
# The probe is written in Python 3.8 syntax (diagnostics/watch/probe/sitecustomize.py).
PROBE_MINIMUM = (3, 8)
# Memory other processes hold on a GPU before it counts as busy: a display's few hundred MiB does
# not.
BUSY_GPU_BYTES = 1 << 30

# Run by the Python under test: old syntax (no f-strings), so that even a Python too old for
# trainwatch's probe can say what it is. Prints one JSON line last.
_INSPECT = r"""
import json, platform, sys, warnings
out = {"python": platform.python_version(), "executable": sys.executable, "prefix": sys.prefix}
try:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import torch
        out["torch"] = torch.__version__
        out["cuda_build"] = torch.version.cuda
        out["hip_build"] = getattr(torch.version, "hip", None)
        if torch.version.cuda or getattr(torch.version, "hip", None):
            out["cuda_available"] = torch.cuda.is_available()
            out["device_count"] = torch.cuda.device_count() if out["cuda_available"] else 0
            try:
                out["nccl"] = ".".join(str(n) for n in torch.cuda.nccl.version())
            except Exception:
                pass
        try:
            out["cudnn"] = torch.backends.cudnn.version()
        except Exception:
            pass
        out["distributed"] = torch.distributed.is_available()
    out["warnings"] = [str(w.message).strip().splitlines()[0] for w in caught][:5]
except ImportError as exc:
    missing = getattr(exc, "name", None)
    out["torch_error"] = type(exc).__name__ + ": " + str(exc)
    out["torch_missing"] = missing == "torch" and "torch" not in sys.modules
except BaseException as exc:
    out["torch_error"] = type(exc).__name__ + ": " + str(exc)
sys.stdout.write("\n" + json.dumps(out) + "\n")
"""


@dataclass(frozen=True)
class PythonFacts:
    """What a Python said about itself and its torch; `error` when it could not say anything."""

    interpreter: str  # as asked for: "python3", ".venv/bin/python"
    report: dict[str, Any] = field(default_factory=dict)  # _INSPECT's JSON
    error: str | None = None  # it did not start, crashed, or hung

    @property
    def version(self) -> tuple[int, ...]:
        return tuple(
            int(p) for p in str(self.report.get("python", "0")).split(".")[:2] if p.isdigit()
        )

    @property
    def torch(self) -> str | None:
        return self.report.get("torch")

    @property
    def cuda_build(self) -> tuple[int, int] | None:
        return _version_pair(self.report.get("cuda_build"))


def inspect_python(
    python: str, env: Mapping[str, str], timeout: float = INSPECT_TIMEOUT_S
) -> PythonFacts:
    """Ask `python` (in the run's environment) for its version and what `import torch` gives."""
    try:
        done = subprocess.run(
            [python, "-c", _INSPECT],
            env=dict(env),
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return PythonFacts(
            python, error=f"did not answer within {timeout:.0f} s (import torch hung?)"
        )
    except OSError as exc:
        return PythonFacts(python, error=f"cannot start: {exc.strerror or exc}")
    lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except ValueError:
        report = None
    if not isinstance(report, dict):
        from trainwatch.diagnostics.evidence import signal_name

        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        how = (
            f"was killed by {signal_name(-done.returncode)}"
            if done.returncode < 0
            else f"exited {done.returncode}"
        )
        return PythonFacts(python, error=f"{how}" + (f": {tail[-1]}" if tail else ""))
    return PythonFacts(python, report)


def check_python(facts: PythonFacts) -> Check:
    """The interpreter `trainwatch run` would start, and whether the probe can load in it."""
    if facts.error is not None:
        return Check(
            "python",
            "fail",
            f"{facts.interpreter} {facts.error}",
            "Name a working interpreter with --python (trainwatch run uses the python3 first on "
            "PATH).",
            {"interpreter": facts.interpreter},
        )
    report = facts.report
    found = f"Python {report.get('python')} ({report.get('executable')})"
    data = {"interpreter": facts.interpreter, **_pick(report, "python", "executable", "prefix")}
    if facts.version < PROBE_MINIMUM:
        return Check(
            "python",
            "warn",
            found,
            "trainwatch's probe needs Python 3.8 or later: runs under this Python are watched "
            "from outside only (no exceptions or stacks from inside).",
            data,
        )
    return Check("python", "pass", found, None, data)


def check_torch(facts: PythonFacts) -> Check:
    """Whether `import torch` works in that Python, and which build it is."""
    report = facts.report
    data = _pick(report, "torch", "cuda_build", "hip_build", "cudnn", "nccl", "torch_error")
    if facts.error is not None:
        return Check("torch", "skip", "not checked: the Python did not answer", None, data)
    if report.get("torch_missing"):
        return Check(
            "torch",
            "warn",
            f"torch is not installed in {report.get('executable')}",
            "Fine for a program without PyTorch; otherwise install torch in this environment, or "
            "point --python at the one that has it.",
            data,
        )
    if report.get("torch_error"):
        return Check(
            "torch",
            "fail",
            f"import torch fails: {report['torch_error'][:300]}",
            "Reinstall torch in this environment (pip install --force-reinstall torch), and check "
            "that PYTHONPATH and LD_LIBRARY_PATH hold no other copy of it or of its libraries.",
            data,
        )
    build = (
        f"built for CUDA {report['cuda_build']}"
        if report.get("cuda_build")
        else f"built for ROCm {report['hip_build']}"
        if report.get("hip_build")
        else "CPU-only build"
    )
    extras = [f"cuDNN {report['cudnn']}" if report.get("cudnn") else "", _nccl(report)]
    summary = f"torch {report.get('torch')}, {build}" + "".join(f", {e}" for e in extras if e)
    if report.get("distributed") is False:
        summary += ", without torch.distributed"
    return Check("torch", "pass", summary, None, data)


def check_cuda(facts: PythonFacts, driver: DriverFacts) -> Check:
    """torch's CUDA build against the newest CUDA the driver supports."""
    build = facts.cuda_build
    data = {
        "cuda_build": facts.report.get("cuda_build"),
        "driver": driver.driver_version,
        "driver_cuda": _dotted(driver.cuda_version),
        "cuda_available": facts.report.get("cuda_available"),
    }
    has_driver = driver.driver_version is not None or driver.devices
    if facts.error is not None or not facts.torch:
        if not has_driver:
            return Check("cuda", "skip", driver.note or NO_DRIVER, None, data)
        return Check(
            "cuda", "skip", f"driver {driver.driver_version}; torch not checked", None, data
        )
    if build is None:
        if driver.devices:
            return Check(
                "cuda",
                "warn",
                f"{len(driver.devices)} GPU(s) here, but torch {facts.torch} is a CPU-only build",
                "Install a CUDA build of torch (pytorch.org's selector names the index URL) to "
                f"use the GPUs; the driver supports CUDA up to {_dotted(driver.cuda_version)}.",
                data,
            )
        return Check("cuda", "skip", f"CPU-only torch; {driver.note or NO_DRIVER}", None, data)
    if not has_driver:
        return Check(
            "cuda",
            "warn",
            f"torch is built for CUDA {_dotted(build)}, but {driver.note or NO_DRIVER}",
            "The run will use the CPU only. On a GPU machine, install the NVIDIA driver (or run "
            "the container with --gpus all).",
            data,
        )
    supported = driver.cuda_version
    found = (
        f"torch built for CUDA {_dotted(build)}; driver {driver.driver_version} supports CUDA up "
        f"to {_dotted(supported)}"
    )
    warnings = [w for w in facts.report.get("warnings") or () if "driver" in w.lower()]
    if supported is not None and build[0] > supported[0]:
        return Check(
            "cuda",
            "fail",
            found,
            f"This driver is too old for torch's CUDA {build[0]}: update the driver, or install a "
            f"torch built for CUDA {supported[0]}.x.",
            data,
        )
    if facts.report.get("cuda_available") is False:
        return Check(
            "cuda",
            "fail",
            found
            + "; but torch.cuda.is_available() is False"
            + (f" ({warnings[0][:200]})" if warnings else ""),
            "Check that the GPUs are visible to this process (CUDA_VISIBLE_DEVICES, the "
            "container's --gpus) and that the driver's user-space libraries match its kernel "
            "module (a driver update needs a reboot).",
            data,
        )
    if supported is not None and build > supported:
        return Check(
            "cuda",
            "warn",
            found,
            "It runs through CUDA's minor-version compatibility, but kernels compiled "
            "just-in-time from PTX can fail: update the driver, or install a torch built for "
            f"CUDA {_dotted(supported)} or older.",
            data,
        )
    return Check("cuda", "pass", found, None, data)


def check_gpus(driver: DriverFacts, env: Mapping[str, str]) -> Check:
    """The GPUs the run would see (CUDA_VISIBLE_DEVICES applied) and the memory other processes
    already hold on them."""
    visible, problem = visible_devices(driver, env.get("CUDA_VISIBLE_DEVICES"))
    data = {
        "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES"),
        "devices": [d.to_dict() for d in visible],
        "all_devices": len(driver.devices),
    }
    if not driver.devices:
        return Check("gpus", "skip", driver.note or "no GPU", None, data)
    if problem is not None or not visible:
        return Check(
            "gpus",
            "warn",
            problem or "CUDA_VISIBLE_DEVICES hides every GPU",
            "Name existing devices in CUDA_VISIBLE_DEVICES (indices 0.."
            f"{len(driver.devices) - 1} or GPU-UUIDs), or unset it.",
            data,
        )
    listed = ", ".join(
        f"{d.index} {d.name} {human_bytes(d.total_bytes)} ({human_bytes(d.used_bytes)} used)"
        for d in visible
    )
    busy = [d for d in visible if d.used_bytes >= BUSY_GPU_BYTES]
    if busy:
        who = "; ".join(
            f"GPU {d.index}: {human_bytes(d.used_bytes)} in use"
            + (
                f" by pid {', '.join(str(p) for p, _ in d.processes[:4])}"
                if d.processes
                else " (processes not visible from here)"
            )
            for d in busy
        )
        return Check(
            "gpus",
            "warn",
            f"{len(visible)} visible: {who}",
            "Another job holds memory on these GPUs: the run may meet CUDA out of memory. Pick "
            "free devices with CUDA_VISIBLE_DEVICES, or wait for it to end (nvidia-smi names it).",
            data,
        )
    return Check("gpus", "pass", f"{len(visible)} visible: {listed}", None, data)


def visible_devices(driver: DriverFacts, setting: str | None) -> tuple[list, str | None]:
    """The devices CUDA_VISIBLE_DEVICES lets a process see, in its order, and what is wrong with
    it. CUDA reads the list up to its first entry that names no device and ignores the rest."""
    devices = list(driver.devices)
    if setting is None:
        return devices, None
    chosen = []
    for entry in (e.strip() for e in setting.split(",")):
        match = None
        if entry.lstrip("-").isdigit():
            match = next((d for d in devices if d.index == int(entry)), None)
        elif entry:
            match = next((d for d in devices if d.uuid.startswith(entry)), None)
        if match is None:
            if not entry and not chosen:
                return [], "CUDA_VISIBLE_DEVICES is empty: the run sees no GPU"
            return chosen, (
                f"CUDA_VISIBLE_DEVICES={setting}: {entry or 'an empty entry'} names no device, so "
                f"CUDA ignores it and everything after it ({len(chosen)} GPU(s) visible)"
            )
        if match not in chosen:
            chosen.append(match)
    return chosen, None


def _version_pair(text: Any) -> tuple[int, int] | None:
    parts = str(text or "").split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1])


def _dotted(version: tuple[int, int] | None) -> str:
    return "?" if version is None else f"{version[0]}.{version[1]}"


def _nccl(report: dict[str, Any]) -> str:
    return f"NCCL {report['nccl']}" if report.get("nccl") else ""


def _pick(report: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: report[k] for k in keys if k in report}
