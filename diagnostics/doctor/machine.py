"""The machine's side of `trainwatch doctor`: /dev/shm, free disk, resource limits, memory.

Each check reads through a path it is given (tests pass fake files) and judges with thresholds
written here once.
"""

from __future__ import annotations

import os
import shutil

from trainwatch.diagnostics.doctor import Check
from trainwatch.diagnostics.units import human_bytes
from trainwatch.diagnostics.watch.cgroup import ShmUsage

GIB = 1 << 30
MIB = 1 << 20
# Docker gives a container 64 MiB of /dev/shm: DataLoader workers fail with "bus error" or
# "No space left on device" (torch/utils/data/_utils/worker.py) at their first large batch.
SHM_FAIL_BYTES = 128 * MIB
# What one worker may hold in /dev/shm at once: prefetch_factor (2) batches of a few tens of MiB.
SHM_PER_WORKER_BYTES = 256 * MIB
DISK_FAIL_BYTES = 1 * GIB  # not even one checkpoint of a small model
DISK_WARN_BYTES = 10 * GIB
DISK_WARN_SHARE = 0.05
# Below these soft limits DataLoader workers ("Too many open files": the file_descriptor sharing
# strategy holds one descriptor per shared tensor) and torch's thread pools run out.
NOFILE_WARN = 4096
NPROC_WARN = 4096
MEMORY_WARN_SHARE = 0.8  # of the limit already in use before the run starts


def check_shm(path: str = "/dev/shm", workers: int | None = None) -> Check:
    """/dev/shm's size against the DataLoader workers that pass batches through it."""
    from trainwatch.diagnostics.watch.cgroup import read_shm

    return judge_shm(read_shm(path), workers, path)


def judge_shm(usage: ShmUsage | None, workers: int | None, path: str = "/dev/shm") -> Check:
    if usage is None:
        return Check(
            "shm",
            "warn",
            f"no shared-memory filesystem at {path}",
            "DataLoader workers (num_workers > 0) need /dev/shm: mount a tmpfs there, or use "
            "num_workers=0.",
            {"path": path},
        )
    free = usage.total_bytes - usage.used_bytes
    facts = {"path": path, "total_bytes": usage.total_bytes, "free_bytes": free, "workers": workers}
    size = f"{path} is {human_bytes(usage.total_bytes)} ({human_bytes(free)} free)"
    if free < SHM_FAIL_BYTES and workers != 0:
        return Check(
            "shm",
            "fail",
            f"{size}: too small for DataLoader workers, which pass every batch through it",
            "Start the container with --shm-size=8g (or --ipc=host; in Kubernetes mount an "
            "emptyDir with medium: Memory at /dev/shm), or set num_workers=0.",
            facts,
        )
    if workers and free < workers * SHM_PER_WORKER_BYTES:
        return Check(
            "shm",
            "warn",
            f"{size}: {workers} DataLoader workers may need about "
            f"{human_bytes(workers * SHM_PER_WORKER_BYTES)}",
            "Give /dev/shm more room (--shm-size), or use fewer workers or smaller batches.",
            facts,
        )
    return Check("shm", "pass", size, None, facts)


def check_disk(directory: str) -> Check:
    """Free space (and write permission) where the run writes its checkpoints and logs."""
    place = _existing(directory)
    if not os.path.isdir(place):
        # a file where the directory (or one above it) would be: nothing can be written under it
        return Check(
            "disk",
            "fail",
            f"{place} is a file, not a directory",
            "Name a directory with --output-dir (or move the file away).",
            {"path": directory, "checked": place},
        )
    try:
        usage = shutil.disk_usage(place)
    except OSError as exc:
        return Check(
            "disk",
            "fail",
            f"cannot read {directory}: {exc.strerror or exc}",
            "Create the output directory, or name another with --output-dir.",
            {"path": directory},
        )
    return judge_disk(directory, place, usage.total, usage.free, os.access(place, os.W_OK))


def judge_disk(directory: str, place: str, total: int, free: int, writable: bool) -> Check:
    facts = {
        "path": directory,
        "checked": place,
        "total_bytes": total,
        "free_bytes": free,
        "writable": writable,
    }
    where = (
        place if place == os.path.abspath(directory) else f"{directory} (not there yet; {place})"
    )
    found = f"{human_bytes(free)} free of {human_bytes(total)} at {where}"
    if not writable:
        return Check(
            "disk",
            "fail",
            f"{where} is not writable",
            "Fix the permissions, or name another directory with --output-dir.",
            facts,
        )
    if free < DISK_FAIL_BYTES:
        return Check(
            "disk",
            "fail",
            found,
            "Free some space (old checkpoints, caches) or write elsewhere: a checkpoint that "
            "cannot be saved ends the run.",
            facts,
        )
    if free < DISK_WARN_BYTES or (total and free < DISK_WARN_SHARE * total):
        return Check(
            "disk",
            "warn",
            found,
            "Checkpoints of a long run add up: keep only the last few (save_top_k, "
            "save_total_limit) or free space first.",
            facts,
        )
    return Check("disk", "pass", found, None, facts)


def check_limits(limits_file: str = "/proc/self/limits") -> tuple[Check, ...]:
    """RLIMIT_AS, RLIMIT_NOFILE and RLIMIT_NPROC, as the run will inherit them."""
    try:
        with open(limits_file) as handle:
            text = handle.read()
    except OSError as exc:
        return (
            Check("limits", "skip", f"cannot read {limits_file}: {exc.strerror or exc}", None, {}),
        )
    return judge_limits(parse_limits(text))


def parse_limits(text: str) -> dict[str, tuple[int | None, int | None]]:
    """`/proc/PID/limits` (proc(5)) -> {"Max open files": (soft, hard)}; None is unlimited."""
    limits: dict[str, tuple[int | None, int | None]] = {}
    for line in text.splitlines()[1:]:
        name, values = line[:26].strip(), line[26:].split()
        if not name or len(values) < 2:
            continue
        limits[name] = (_limit(values[0]), _limit(values[1]))
    return limits


def judge_limits(limits: dict[str, tuple[int | None, int | None]]) -> tuple[Check, ...]:
    checks = []
    soft, hard = limits.get("Max address space", (None, None))
    facts = {"soft": soft, "hard": hard}
    if soft is None:
        checks.append(Check("address-space", "pass", "address space unlimited", None, facts))
    else:
        checks.append(
            Check(
                "address-space",
                "warn",
                f"address space limited to {human_bytes(soft)} (ulimit -v)",
                "CUDA reserves tens of GiB of virtual address space when it starts, and "
                "DataLoader workers map files: a finite ulimit -v fails with 'out of memory' "
                "while memory is free. Run `ulimit -v unlimited` (or drop the limit in the job "
                "script) and limit memory with a cgroup instead.",
                facts,
            )
        )
    for name, key, floor, what, why in (
        (
            "open-files",
            "Max open files",
            NOFILE_WARN,
            "open files",
            "DataLoader workers share tensors through file descriptors and fail with 'Too many "
            "open files'",
        ),
        (
            "processes",
            "Max processes",
            NPROC_WARN,
            "processes and threads",
            "every thread of torch's pools and every DataLoader worker counts, and a new one "
            "fails with 'Resource temporarily unavailable'",
        ),
    ):
        soft, hard = limits.get(key, (None, None))
        facts = {"soft": soft, "hard": hard}
        shown = "unlimited" if soft is None else str(soft)
        if soft is None or soft >= floor:
            checks.append(Check(name, "pass", f"{what}: {shown}", None, facts))
            continue
        room = "unlimited" if hard is None else str(hard)
        raise_to = f"raise it up to the hard limit ({room})" if hard is None or hard > soft else ""
        flag = "-n" if name == "open-files" else "-u"
        advice = (
            f"{why}: `ulimit {flag} {min(hard or 65536, 65536)}` before the run"
            + (f" ({raise_to})" if raise_to else "; ask for a higher hard limit")
            + "."
        )
        checks.append(Check(name, "warn", f"{what}: {shown} (soft limit)", advice, facts))
    return tuple(checks)


def check_memory(proc: str = "/proc", pid: int | str = "self") -> Check:
    """The memory limit the run will live under (its cgroup's, or the machine's RAM) and how much
    of it is already in use."""
    from trainwatch.diagnostics.watch import cgroup
    from trainwatch.diagnostics.watch.sampling import read_available

    place = cgroup.locate_cgroup(pid, proc)  # type: ignore[arg-type]
    limit = cgroup.read_limit(place)
    used = cgroup.read_usage(place) if place is not None else None
    available, total = read_available(proc)
    return judge_memory(
        None if limit is None else limit.bytes,
        None if limit is None else limit.source,
        used,
        available,
        total,
    )


def judge_memory(
    limit: int | None,
    source: str | None,
    cgroup_used: int | None,
    available: int | None,
    total: int | None,
) -> Check:
    facts = {
        "limit_bytes": limit,
        "limit_source": source,
        "cgroup_used_bytes": cgroup_used,
        "available_bytes": available,
        "total_bytes": total,
    }
    if limit is None:
        return Check("memory", "skip", "no memory limit or RAM size could be read", None, facts)
    from_cgroup = source is not None and source.startswith("cgroup")
    found = (
        f"limit {human_bytes(limit)} ({source})"
        if from_cgroup
        else f"{human_bytes(limit)} of RAM, no cgroup limit"
    )
    if from_cgroup and cgroup_used is not None and cgroup_used >= MEMORY_WARN_SHARE * limit:
        return Check(
            "memory",
            "warn",
            f"{found}, {human_bytes(cgroup_used)} of it already in use (page cache included)",
            "Other processes in this cgroup (a notebook, an earlier run) hold the memory the run "
            "will need: stop them, or ask the scheduler for more memory.",
            facts,
        )
    if available is not None and total and available < (1 - MEMORY_WARN_SHARE) * total:
        return Check(
            "memory",
            "warn",
            f"{found}; only {human_bytes(available)} of {human_bytes(total)} "
            "available on the machine",
            "Other processes use most of the machine's memory: the run may be OOM-killed.",
            facts,
        )
    if from_cgroup and available is not None:
        found += f"; {human_bytes(available)} available on the machine"
    return Check("memory", "pass", found, None, facts)


def _existing(directory: str) -> str:
    """The directory, or its nearest existing parent (the run may create it)."""
    path = os.path.abspath(directory)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _limit(text: str) -> int | None:
    return None if text == "unlimited" else int(text) if text.isdigit() else None
