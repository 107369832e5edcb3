"""GPU memory through NVML: the only module that imports pynvml, and only from the sampler thread,
on first use.

No driver (NVMLError_LibraryNotFound, the normal case on CPU machines) or no device gives one
note and nothing else. Any later NVML error is noted once and sampling goes on without it: the
run must never break or wait because of it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GpuDevice:
    """One device at one reading."""

    index: int
    name: str
    used_bytes: int
    total_bytes: int
    # percent of the last sample period a kernel ran (nvmlDeviceGetUtilizationRates)
    utilization_pct: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "used_bytes": self.used_bytes,
            "total_bytes": self.total_bytes,
            "utilization_pct": self.utilization_pct,
        }


@dataclass(frozen=True)
class GpuProcess:
    """GPU memory one process holds on one device."""

    pid: int
    device: int
    used_bytes: int | None  # None where the driver does not say (some Windows/WDDM and MIG set-ups)

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "device": self.device, "used_bytes": self.used_bytes}


@dataclass(frozen=True)
class GpuReading:
    """All devices at one moment, and our processes on them."""

    devices: tuple[GpuDevice, ...]
    processes: tuple[GpuProcess, ...]  # only the run's own pids
    matched: bool  # some process of the run was found in NVML's lists
    others: tuple[GpuProcess, ...] = ()  # every other process NVML lists on the devices

    @property
    def utilization_pct(self) -> int | None:
        """The busiest device the run uses (every device when NVML does not name our processes)."""
        ours = (
            {p.device for p in self.processes} if self.matched else {d.index for d in self.devices}
        )
        rates = [
            d.utilization_pct
            for d in self.devices
            if d.index in ours and d.utilization_pct is not None
        ]
        return max(rates) if rates else None

    @property
    def used_bytes(self) -> int:
        """What the run uses: its processes' memory when NVML names them, else every device's used
        memory.
        """
        if self.matched:
            return self.own_bytes
        return sum(d.used_bytes for d in self.devices)

    @property
    def own_bytes(self) -> int:
        """The run's processes' memory alone: 0 before any of them has made its CUDA context."""
        return sum(p.used_bytes or 0 for p in self.processes)


@dataclass(frozen=True)
class GpuFacts:
    """What the GPU sampling found over a run."""

    # at the last reading: used/total at the moment the run ended
    devices: tuple[GpuDevice, ...] = ()
    peak_devices: tuple[GpuDevice, ...] = ()  # each device at its own highest used memory
    processes: tuple[GpuProcess, ...] = ()  # each of our processes at its highest
    peak_used_bytes: int | None = None
    per_process: bool = False  # the figures are our processes' own (True) or whole devices' (False)
    notes: tuple[str, ...] = ()
    # Processes outside the run on the same devices, each at its highest: only where NVML named
    # the run's own (elsewhere, in a container, the run's processes would be among them).
    other_processes: tuple[GpuProcess, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "devices": [d.to_dict() for d in self.devices],
            "peak_devices": [d.to_dict() for d in self.peak_devices],
            "processes": [p.to_dict() for p in self.processes],
            "other_processes": [p.to_dict() for p in self.other_processes],
            "peak_used_bytes": self.peak_used_bytes,
            "per_process": self.per_process,
            "notes": list(self.notes),
        }


NO_DRIVER = "no NVIDIA driver on this machine"


@dataclass(frozen=True)
class InstalledGpu:
    """One device as `trainwatch doctor` sees it before a run: its memory, and who uses it now."""

    index: int
    name: str
    uuid: str  # "GPU-5e6f...": CUDA_VISIBLE_DEVICES may name devices by it
    total_bytes: int
    used_bytes: int
    processes: tuple[tuple[int, int | None], ...] = ()  # (pid, bytes) of each process on it

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "uuid": self.uuid,
            "total_bytes": self.total_bytes,
            "used_bytes": self.used_bytes,
            "processes": [{"pid": p, "used_bytes": b} for p, b in self.processes],
        }


@dataclass(frozen=True)
class DriverFacts:
    """The NVIDIA driver and its devices, read once; `note` says why a part is unknown."""

    driver_version: str | None = None  # "550.54.14"
    cuda_version: tuple[int, int] | None = None  # the newest CUDA the driver supports: (12, 4)
    devices: tuple[InstalledGpu, ...] = ()
    note: str | None = None  # "no NVIDIA driver on this machine", ...

    def to_dict(self) -> dict[str, Any]:
        return {
            "driver_version": self.driver_version,
            "cuda_version": None
            if self.cuda_version is None
            else ".".join(map(str, self.cuda_version)),
            "devices": [d.to_dict() for d in self.devices],
            "note": self.note,
        }


def read_driver(version_file: str = "/proc/driver/nvidia/version") -> DriverFacts:
    """The driver, the CUDA version it supports, and every device with its memory in use and the
    processes holding it (NVML); never raises. Without NVML's library, the kernel module's version
    file still names the driver."""
    try:
        import pynvml
    except ImportError:
        return _driver_from_file(version_file, "nvidia-ml-py is not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        if type(exc).__name__ == "NVMLError_LibraryNotFound":
            return _driver_from_file(version_file, "NVML's library (libnvidia-ml.so) was not found")
        return _driver_from_file(version_file, f"NVML: {exc}")
    try:
        version = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = int(pynvml.nvmlSystemGetCudaDriverVersion_v2())
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            processes: dict[int, int | None] = {}
            for lister in (
                pynvml.nvmlDeviceGetComputeRunningProcesses,
                pynvml.nvmlDeviceGetGraphicsRunningProcesses,
            ):
                try:
                    for entry in lister(handle):
                        used = entry.usedGpuMemory
                        processes[int(entry.pid)] = None if used is None else int(used)
                except pynvml.NVMLError:
                    pass
            devices.append(
                InstalledGpu(
                    index,
                    _text(pynvml.nvmlDeviceGetName(handle)),
                    _text(pynvml.nvmlDeviceGetUUID(handle)),
                    int(memory.total),
                    int(memory.used),
                    tuple(sorted(processes.items())),
                )
            )
        return DriverFacts(version, (cuda // 1000, cuda % 1000 // 10), tuple(devices))
    except pynvml.NVMLError as exc:
        return DriverFacts(note=f"NVML: {exc}")
    finally:
        _shutdown(pynvml)


def _driver_from_file(path: str, problem: str) -> DriverFacts:
    """When NVML cannot be used: the driver's version from its kernel module's file ("NVRM
    version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  ..."), or no driver at all."""
    try:
        with open(path) as handle:
            first = handle.readline()
    except OSError:
        return DriverFacts(note=NO_DRIVER)
    words = first.split("Kernel Module", 1)[-1].split()
    version = words[0] if words and words[0][:1].isdigit() else None
    return DriverFacts(
        driver_version=version, note=f"{problem}, though the driver's kernel module is loaded"
    )


class GpuSampler:
    """Reads NVML on demand; `read()` returns None whenever there is nothing to say."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._names: list[str] = []
        self._disabled = False
        self._process_lists = True
        self._notes: list[str] = []
        self._last: GpuReading | None = None
        self._peak_devices: dict[int, GpuDevice] = {}
        self._peak_processes: dict[tuple[int, int], GpuProcess] = {}
        self._peak_others: dict[tuple[int, int], GpuProcess] = {}
        self._peak_used: int | None = None
        self._peak_own = 0
        self._ever_matched = False
        self._unmatched_seen = False

    def _note(self, text: str) -> None:
        if text not in self._notes:
            self._notes.append(text)

    def _start(self) -> bool:
        try:
            import pynvml
        except ImportError:
            self._note("GPU: not sampled (nvidia-ml-py is not installed)")
            return False
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            # No driver: a CPU machine, where a note on every report would say nothing new.
            if type(exc).__name__ != "NVMLError_LibraryNotFound":
                self._note(f"GPU: not sampled (NVML: {exc})")
            return False
        try:
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._names = [_text(pynvml.nvmlDeviceGetName(h)) for h in self._handles]
        except pynvml.NVMLError as exc:
            self._note(f"GPU: not sampled (NVML: {exc})")
            _shutdown(pynvml)
            return False
        if not self._handles:
            self._note("GPU: none seen (the NVIDIA driver reports no device)")
            _shutdown(pynvml)
            return False
        self._nvml = pynvml
        return True

    def read(self, pids: Collection[int]) -> GpuReading | None:
        """One reading of every device and of our `pids` on them; never raises."""
        if self._disabled:
            return None
        if self._nvml is None and not self._start():
            self._disabled = True
            return None
        try:
            reading = self._read(pids)
        except Exception as exc:
            self._note(f"GPU: sampling stopped after an NVML error ({type(exc).__name__}: {exc})")
            self.close()
            self._disabled = True
            return None
        self._remember(reading)
        return reading

    def _read(self, pids: Collection[int]) -> GpuReading:
        nvml = self._nvml
        devices, ours, others, listed_any = [], [], [], False
        for index, handle in enumerate(self._handles):
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                utilization: int | None = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except nvml.NVMLError:
                utilization = None
            devices.append(
                GpuDevice(
                    index, self._names[index], int(memory.used), int(memory.total), utilization
                )
            )
            if not self._process_lists:
                continue
            try:
                listed = list(nvml.nvmlDeviceGetComputeRunningProcesses(handle))
            except nvml.NVMLError as exc:
                self._note(f"GPU: per-process memory unavailable ({exc}); device figures used")
                self._process_lists = False
                continue
            listed_any = listed_any or bool(listed)
            for entry in listed:
                used = entry.usedGpuMemory
                process = GpuProcess(int(entry.pid), index, None if used is None else int(used))
                (ours if entry.pid in pids else others).append(process)
        if listed_any and not ours:
            self._unmatched_seen = True
        return GpuReading(tuple(devices), tuple(ours), matched=bool(ours), others=tuple(others))

    def _remember(self, reading: GpuReading) -> None:
        self._last = reading
        self._ever_matched = self._ever_matched or reading.matched
        for device in reading.devices:
            best = self._peak_devices.get(device.index)
            if best is None or device.used_bytes > best.used_bytes:
                self._peak_devices[device.index] = device
        for peaks, processes in (
            (self._peak_processes, reading.processes),
            (self._peak_others, reading.others if reading.matched else ()),
        ):
            for process in processes:
                key = (process.pid, process.device)
                best = peaks.get(key)
                if best is None or (process.used_bytes or 0) > (best.used_bytes or 0):
                    peaks[key] = process
        if self._peak_used is None or reading.used_bytes > self._peak_used:
            self._peak_used = reading.used_bytes
        self._peak_own = max(self._peak_own, reading.own_bytes)

    def facts(self) -> GpuFacts | None:
        """The summary for the report: None when NVML was never tried; notes only when there was no
        GPU.
        """
        notes = list(self._notes)
        if self._last is None:
            return GpuFacts(notes=tuple(notes)) if notes else None
        # a pid of the run read before the sampler knew it was the run's is not another's
        ours = {pid for pid, _ in self._peak_processes}
        if self._unmatched_seen and not self._ever_matched:
            notes.append(
                "GPU: no process of the run appears in NVML's process list (inside a container "
                "NVML "
                "names host PIDs); the figures are whole devices', other users' memory included"
            )
        return GpuFacts(
            devices=self._last.devices,
            peak_devices=tuple(self._peak_devices[i] for i in sorted(self._peak_devices)),
            processes=tuple(self._peak_processes[k] for k in sorted(self._peak_processes)),
            # once NVML named the run's processes, the readings before (whole devices, taken
            # while the run had no CUDA context yet) are not the run's
            peak_used_bytes=self._peak_own if self._ever_matched else self._peak_used,
            per_process=self._ever_matched,
            notes=tuple(notes),
            other_processes=tuple(
                self._peak_others[k] for k in sorted(self._peak_others) if k[0] not in ours
            )
            if self._ever_matched
            else (),
        )

    def close(self) -> None:
        if self._nvml is not None:
            _shutdown(self._nvml)
            self._nvml = None


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:
        pass


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
