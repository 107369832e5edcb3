"""What the kernel says about memory: the cgroup limit and OOM-kill counter, the kernel log's OOM
kills, /dev/shm.

Sources (all plain reads, none blocks):
- `/proc/<pid>/cgroup` for the process's memory cgroup, `/proc/self/mountinfo` for where that
  hierarchy is mounted (cgroups(7));
- v1: `memory.limit_in_bytes`, `memory.usage_in_bytes`, `memory.oom_control` (`oom_kill N`); v2:
  `memory.max`, `memory.current`, `memory.events` (`oom_kill N`)
  (Documentation/admin-guide/cgroup-v2.rst);
- `/dev/kmsg`, opened non-blocking and read from its end, for "Killed process N (name)"
  (Documentation/ABI/testing/ dev-kmsg): records written while the run lasts, never the whole
  ring buffer.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass

# v1 reports "no limit" as the largest page-aligned signed 64-bit value (9223372036854771712);
# anything this big is no limit at all.
UNLIMITED = 1 << 60


@dataclass(frozen=True)
class CgroupPlace:
    """A process's memory cgroup and the directory that controls it."""

    version: int  # 1 or 2
    path: str  # as /proc/<pid>/cgroup names it: "/process_api/1077..."
    directory: str  # where its files are: "/sys/fs/cgroup/memory/process_api/1077..."
    mount: str  # the hierarchy's mount point, where walking up stops

    def file(self, name: str) -> str:
        return os.path.join(self.directory, name)


@dataclass(frozen=True)
class MemoryLimit:
    """The memory limit that applies, and where it was read."""

    bytes: int
    source: str  # "cgroup v1 /sys/fs/cgroup/memory/.../memory.limit_in_bytes" or "physical RAM"


@dataclass(frozen=True)
class KernelOomKill:
    """One OOM kill the kernel logged."""

    pid: int
    name: str
    line: str  # the "Killed process ..." message as logged
    memcg: str | None = None  # the cgroup the victim was in, from the "oom-kill:" line before it
    # its RSS when killed (anon + file + shmem): the peak the sampler may have missed
    rss_bytes: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "name": self.name,
            "line": self.line,
            "memcg": self.memcg,
            "rss_bytes": self.rss_bytes,
        }


@dataclass(frozen=True)
class ShmUsage:
    """Usage of the shared-memory filesystem DataLoader workers pass batches through."""

    path: str
    used_bytes: int
    total_bytes: int

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "used_bytes": self.used_bytes, "total_bytes": self.total_bytes}


def locate_cgroup(pid: int, proc: str = "/proc") -> CgroupPlace | None:
    """The memory cgroup of `pid`, v1 memory controller first, else the v2 unified hierarchy; None
    if neither.
    """
    try:
        with open(f"{proc}/{pid}/cgroup") as f:
            lines = f.read().splitlines()
        with open(f"{proc}/self/mountinfo") as f:
            mounts = f.read().splitlines()
    except OSError:
        return None
    v1_path = v2_path = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            v2_path = parts[2]
        elif "memory" in parts[1].split(","):
            v1_path = parts[2]
    for version, path in ((1, v1_path), (2, v2_path)):
        if path is None:
            continue
        mount = _find_mount(mounts, version)
        if mount is None:
            continue
        root, point = mount
        directory = _join_under(point, root, path)
        # A v2 hierarchy without the memory controller enabled (the empty `unified` mount beside v1)
        # is no use.
        if (
            version == 2
            and "memory" not in _read_text(os.path.join(point, "cgroup.controllers")).split()
        ):
            continue
        return CgroupPlace(version, path, directory, point)
    return None


def _find_mount(mounts: list[str], version: int) -> tuple[str, str] | None:
    """(root within the hierarchy, mount point) of the memory hierarchy, from mountinfo lines
    (proc(5)).
    """
    for line in mounts:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, extra = left.split(), right.split()
        if len(fields) < 5 or not extra:
            continue
        fstype = extra[0]
        options = extra[2].split(",") if len(extra) > 2 else []
        if (version == 1 and fstype == "cgroup" and "memory" in options) or (
            version == 2 and fstype == "cgroup2"
        ):
            return _unescape(fields[3]), _unescape(fields[4])
    return None


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _join_under(point: str, root: str, path: str) -> str:
    """The directory of cgroup `path` in a hierarchy whose `root` is mounted at `point`."""
    if root != "/" and (path == root or path.startswith(root.rstrip("/") + "/")):
        path = path[len(root) :]
    elif root != "/" and not os.path.isdir(os.path.join(point, path.lstrip("/"))):
        # a cgroup namespace shows "/" for the container's own group, mounted at the point itself
        path = "/"
    return os.path.normpath(os.path.join(point, path.lstrip("/")))


def _read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _read_int(path: str) -> int | None:
    text = _read_text(path).strip()
    if text == "max":
        return UNLIMITED
    try:
        return int(text)
    except ValueError:
        return None


def physical_memory() -> int | None:
    """The machine's RAM in bytes."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return None


def read_limit(place: CgroupPlace | None) -> MemoryLimit | None:
    """The tightest memory limit from the cgroup up to its hierarchy's root, or physical RAM when
    lower or none.
    """
    best: MemoryLimit | None = None
    if place is not None:
        name = "memory.limit_in_bytes" if place.version == 1 else "memory.max"
        directory = place.directory
        while True:
            value = _read_int(os.path.join(directory, name))
            if value is not None and value < UNLIMITED and (best is None or value < best.bytes):
                best = MemoryLimit(
                    value, f"cgroup v{place.version} {os.path.join(directory, name)}"
                )
            if os.path.normpath(directory) == os.path.normpath(place.mount) or directory in (
                "/",
                "",
            ):
                break
            directory = os.path.dirname(directory)
    ram = physical_memory()
    if ram is not None and (best is None or ram < best.bytes):
        best = MemoryLimit(ram, "physical RAM")
    return best


def child_places(place: CgroupPlace, limit: int = 16) -> list[CgroupPlace]:
    """The memory cgroups directly below a cgroup v1 one, at most `limit`: v1 counts an OOM kill
    only where it happened, so a process that moves itself into one of them (a DataLoader worker
    confined to a smaller limit) is killed there, maybe before a sample sees it move. (v2's
    memory.events counts the subtree's kills at the parent too.)"""
    if place.version != 1:
        return []
    try:
        names = sorted(os.listdir(place.directory))
    except OSError:
        return []
    found = []
    for name in names:
        directory = os.path.join(place.directory, name)
        if os.path.isfile(os.path.join(directory, "memory.oom_control")):
            path = place.path.rstrip("/") + "/" + name
            found.append(CgroupPlace(1, path, directory, place.mount))
            if len(found) == limit:
                break
    return found


def read_oom_kills(place: CgroupPlace | None) -> int | None:
    """The cgroup's count of processes the OOM killer killed in it, or None when unreadable."""
    if place is None:
        return None
    name = "memory.oom_control" if place.version == 1 else "memory.events"
    for line in _read_text(place.file(name)).splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def read_usage(place: CgroupPlace | None) -> int | None:
    """The cgroup's memory usage, page cache included."""
    if place is None:
        return None
    return _read_int(
        place.file("memory.usage_in_bytes" if place.version == 1 else "memory.current")
    )


def read_shm(path: str = "/dev/shm") -> ShmUsage | None:
    """How full the shared-memory filesystem is."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    total = st.f_blocks * st.f_frsize
    return ShmUsage(path, (st.f_blocks - st.f_bfree) * st.f_frsize, total) if total else None


# The kernel's words (mm/oom_kill.c): "Out of memory: Killed process 5748 (python3) total-vm:..."
# for the global killer, "Memory cgroup out of memory: Killed process ..." for a cgroup's, and just
# before it "oom-kill:constraint=CONSTRAINT_MEMCG,...,task_memcg=/a/b,task=python3,pid=5748,uid=0".
KILLED_RE = re.compile(r"Killed process (\d+) \((.*?)\)")
OOM_KILL_RE = re.compile(r"oom-kill:.*?task_memcg=([^,]*),task=(.*?),pid=(\d+)")
RSS_RE = re.compile(r"\b(?:anon|file|shmem)-rss:(\d+)kB")


def parse_oom_kills(messages: list[str]) -> list[KernelOomKill]:
    """Find the OOM kills in kernel log messages (without their kmsg/dmesg prefixes)."""
    memcgs: dict[int, str] = {}
    kills = []
    for message in messages:
        match = OOM_KILL_RE.search(message)
        if match:
            memcgs[int(match.group(3))] = match.group(1)
            continue
        match = KILLED_RE.search(message)
        if match and ("out of memory" in message.lower() or "oom" in message.lower()):
            pid = int(match.group(1))
            rss = [int(kb) * 1024 for kb in RSS_RE.findall(message)]
            kills.append(
                KernelOomKill(
                    pid, match.group(2), message.strip(), memcgs.get(pid), sum(rss) if rss else None
                )
            )
    return kills


class KernelLog:
    """New kernel log records since `open()`, read from /dev/kmsg without blocking; keeps only
    OOM-kill lines.
    """

    # bounds one drain; a kill writes ~100 records, a busy kernel a few per second
    MAX_RECORDS_PER_DRAIN = 5000
    MAX_KEPT = 200

    def __init__(self, path: str = "/dev/kmsg") -> None:
        self.path = path
        self._fd: int | None = None
        self._messages: list[str] = []
        self.note: str | None = None
        self.lost = 0  # records the ring buffer overwrote before we read them

    def open(self) -> bool:
        """Start reading at the end of the log; False, with `note` set, when it cannot be read."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(fd, 0, os.SEEK_END)  # kmsg: SEEK_END moves to just after the newest record
        except OSError as exc:
            self.note = f"kernel log not readable ({self.path}: {exc.strerror or exc})"
            return False
        self._fd = fd
        return True

    def drain(self) -> None:
        """Read what was logged since the last drain; never blocks."""
        if self._fd is None:
            return
        for _ in range(self.MAX_RECORDS_PER_DRAIN):
            try:
                record = os.read(self._fd, 8192)  # one read returns one record
            except BlockingIOError:
                return
            except OSError as exc:
                # overwritten under us: the next read resumes at the oldest kept
                if exc.errno == errno.EPIPE:
                    self.lost += 1
                    continue
                if exc.errno == errno.EINTR:
                    continue
                self.note = f"kernel log read failed ({exc.strerror or exc})"
                self.close()
                return
            if not record:
                return
            text = record.decode("utf-8", "replace")
            message = text.split(";", 1)[1] if ";" in text else text
            message = message.split("\n", 1)[0]
            if ("Killed process" in message or "oom-kill:" in message) and len(
                self._messages
            ) < self.MAX_KEPT:
                self._messages.append(message)

    def oom_kills(self) -> list[KernelOomKill]:
        return parse_oom_kills(self._messages)

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
