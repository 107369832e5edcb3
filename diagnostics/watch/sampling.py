"""The process-tree memory sampler: plain frozen samples of the child's tree read from /proc, and
their timeline.

Why /proc by hand: psutil's recursive `children()` rebuilds the whole process table on every call
(~2 ms a sample on a quiet machine). This kernel has no `/proc/<pid>/task/<tid>/children`
(CONFIG_PROC_CHILDREN is optional), so the tree is found from a listing of /proc, reading
`/proc/<pid>/stat` only for pids not seen before: a process stays in the tree from the moment its
parent was in it until it disappears, so a grandchild orphaned by a shell wrapper (re-parented to
init or a subreaper) keeps being counted. Each sample then reads one `stat` per process of the
tree (ppid, utime/stime, cutime/cstime and RSS are all in it: proc(5)), plus `/proc/meminfo`.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# How many pids the sampler remembers having seen in the tree, for matching the kernel's OOM lines
# to our processes.
SEEN_PIDS_LIMIT = 4096


@dataclass(frozen=True)
class ProcessMemory:
    """One process of the tree at one sample."""

    pid: int
    ppid: int
    name: str  # the kernel's comm (15 characters at most), as `ps` and the kernel OOM lines show it
    rss_bytes: int
    cpu_seconds: float  # utime + stime of all its threads, plus those of the children it has reaped

    def to_dict(self) -> dict[str, object]:
        return {"pid": self.pid, "ppid": self.ppid, "name": self.name, "rss_bytes": self.rss_bytes}


@dataclass(frozen=True)
class Sample:
    """The tree's memory at one moment."""

    time: float  # wall clock, seconds since the epoch
    elapsed: float  # seconds since the sampler started (monotonic)
    processes: tuple[ProcessMemory, ...]  # every live process of the tree, the root first
    tree_rss_bytes: (
        int  # sum of their RSS: pages shared after fork count once per process, so it can overstate
    )
    # the tree's CPU time: for the hang detector, it rises while anything in the tree computes
    cpu_seconds: float
    available_bytes: int | None  # the machine's MemAvailable
    # the run's memory cgroup usage, page cache included (set by Monitor)
    cgroup_usage_bytes: int | None = None
    shm_used_bytes: int | None = None  # /dev/shm in use (set by Monitor)
    # GPU memory used by our processes, or by the devices (set by Monitor)
    gpu_used_bytes: int | None = None
    # the run's own processes' GPU memory (0 before they have a CUDA context); None before the
    # first GPU reading. The report keeps it, not gpu_used_bytes, once NVML named the run's.
    gpu_own_bytes: int | None = None
    # busiest device the run uses, % of time a kernel ran (set by Monitor)
    gpu_utilization_pct: int | None = None
    # The tree's real use: the sum of its processes' PSS (each shared page divided among those
    # that map it), read by Monitor when the sum of RSS nears the limit; None when not read.
    tree_pss_bytes: int | None = None

    def real_use(self) -> tuple[int, str] | None:
        """(bytes, measure): what the tree really holds, or None where this sample cannot say.
        Several processes' RSS summed counts each page they share once per process (a forked
        worker sharing its parent's dataset counts it again), so it is never used for that: only
        their summed PSS is, or the RSS of a lone process."""
        if self.tree_pss_bytes is not None:
            return self.tree_pss_bytes, "PSS"
        if len(self.processes) == 1:
            return self.tree_rss_bytes, "RSS"
        return None

    def top_process(self) -> ProcessMemory | None:
        """The process holding the most RSS at this sample."""
        return max(self.processes, key=lambda p: p.rss_bytes, default=None)

    def to_dict(self) -> dict[str, object]:
        """The compact form the JSON report keeps for each point of the timeline."""
        row: dict[str, object] = {
            "t": round(self.elapsed, 3),
            "rss_bytes": self.tree_rss_bytes,
            "processes": len(self.processes),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "available_bytes": self.available_bytes,
        }
        for key, value in (
            ("pss_bytes", self.tree_pss_bytes),
            ("cgroup_usage_bytes", self.cgroup_usage_bytes),
            ("shm_used_bytes", self.shm_used_bytes),
            ("gpu_used_bytes", self.gpu_used_bytes),
        ):
            if value is not None:
                row[key] = value
        return row


@dataclass(frozen=True)
class _Stat:
    state: str  # "R", "S", "D", "Z" (zombie: exited, not yet reaped) ...
    ppid: int
    name: str
    rss_bytes: int
    cpu_seconds: float
    starttime: (
        int  # clock ticks after boot: tells a reused pid from the process first seen under it
    )
    flags: int = 0  # the kernel's PF_* flags

    @property
    def exiting(self) -> bool:
        """Exited or on its way out (PF_EXITING, set before the task leaves its cgroups:
        kernel/exit.c).
        """
        return self.state in ("Z", "X") or bool(self.flags & 0x4)


def read_stat(pid: int, proc: str = "/proc") -> _Stat | None:
    """Parse `/proc/<pid>/stat`; None when the process is gone or unreadable."""
    try:
        fd = os.open(f"{proc}/{pid}/stat", os.O_RDONLY)
        try:
            raw = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:
        return None
    # comm is in parentheses and may itself hold spaces or ')': the last ')' ends it (proc(5)).
    close = raw.rfind(b")")
    if close < 0:
        return None
    name = raw[raw.find(b"(") + 1 : close].decode("utf-8", "replace")
    fields = raw[close + 2 :].split()
    try:
        # fields[0] is field 3 (state): ppid is field 4, utime..cstime 14..17, starttime 22, rss 24.
        state = fields[0].decode("ascii", "replace")
        ppid = int(fields[1])
        flags = int(fields[6])
        ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        starttime = int(fields[19])
        rss_pages = int(fields[21])
    except (IndexError, ValueError):
        return None
    return _Stat(
        state, ppid, name, max(rss_pages, 0) * PAGE_SIZE, ticks / CLOCK_TICKS, starttime, flags
    )


def read_available(proc: str = "/proc") -> tuple[int | None, int | None]:
    """(MemAvailable, MemTotal) in bytes from `/proc/meminfo`."""
    available = total = None
    try:
        with open(f"{proc}/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemTotal:"):
                    total = int(line.split()[1]) * 1024
                elif line.startswith(b"MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break  # MemAvailable follows MemTotal
    except (OSError, ValueError, IndexError):
        pass
    return available, total


def read_pss(pid: int, proc: str = "/proc") -> int | None:
    """The process's proportional set size, from `/proc/<pid>/smaps_rollup` (Linux 4.14): what it
    holds alone plus its share of what it shares. The kernel walks the page tables to answer, so it
    costs a millisecond or more for a large process: read only when it matters."""
    try:
        with open(f"{proc}/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def tree_pss(processes: tuple[ProcessMemory, ...], proc: str = "/proc") -> int | None:
    """The summed PSS of `processes`; a process gone since holds nothing. None when no process's
    PSS could be read (no smaps_rollup: an old kernel, or not ours to read)."""
    values = [read_pss(p.pid, proc) for p in processes]
    if all(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def read_cmdline(pid: int, proc: str = "/proc", limit: int = 300) -> str | None:
    """The process's command line, arguments joined by spaces and cut at `limit` characters."""
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as f:
            raw = f.read(limit * 4)
    except OSError:
        return None
    text = raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
    return text[:limit] if text else None


class TreeSampler:
    """Samples the memory of a process and of all its descendants; iterate it for one `Sample` per
    `next()`.

    Iteration ends (StopIteration) once the root has exited. The caller paces the calls.
    """

    def __init__(self, root_pid: int, proc: str = "/proc") -> None:
        self.root_pid = root_pid
        self.proc = proc
        self._started = time.monotonic()
        self._known: dict[int, tuple[int, bool]] = {}  # pid -> (starttime, in our tree)
        self._tree: tuple[int, ...] = ()
        self._names: dict[int, str] = {}
        # every pid seen in the tree (bounded), with its name: for OOM line matching
        self.seen: dict[int, str] = {}
        self.root_ended = False  # the root process has exited (a zombie or gone) at the last sample

    def __iter__(self) -> TreeSampler:
        return self

    def __next__(self) -> Sample:
        sample = self.sample()
        if self.root_ended:
            raise StopIteration
        return sample

    def tree_pids(self) -> tuple[int, ...]:
        """The pids of the tree at the last sample, the root first."""
        return self._tree

    def sample(self) -> Sample:
        """Read the tree once."""
        self._refresh_tree()
        processes = []
        self.root_ended = self.root_pid not in self._tree
        for pid in self._tree:
            stat = read_stat(pid, self.proc)
            if stat is None:
                self.root_ended = self.root_ended or pid == self.root_pid
                continue
            if pid == self.root_pid and (stat.state in ("Z", "X") or stat.exiting):
                # Exited, or on its way out with its memory already released: either way it shows no
                # memory, and a sample of it would draw a false drop to zero at the end of the
                # timeline.
                self.root_ended = True
            processes.append(
                ProcessMemory(pid, stat.ppid, stat.name, stat.rss_bytes, stat.cpu_seconds)
            )
            if pid not in self.seen and len(self.seen) < SEEN_PIDS_LIMIT:
                self.seen[pid] = stat.name
        available, _ = read_available(self.proc)
        return Sample(
            time=time.time(),
            elapsed=time.monotonic() - self._started,
            processes=tuple(processes),
            tree_rss_bytes=sum(p.rss_bytes for p in processes),
            cpu_seconds=sum(p.cpu_seconds for p in processes),
            available_bytes=available,
        )

    def _refresh_tree(self) -> None:
        try:
            listing = {int(name) for name in os.listdir(self.proc) if name.isdigit()}
        except OSError:
            listing = set()
        for pid in list(self._known):
            if pid not in listing:
                del self._known[pid]  # gone: if the number comes back, it is another process
        new = [pid for pid in listing if pid not in self._known]
        stats = {pid: read_stat(pid, self.proc) for pid in new}
        ours = {pid for pid, (_, mine) in self._known.items() if mine}
        if self.root_pid in listing and self.root_pid not in ours:
            ours.add(self.root_pid)
        # A new process is ours when its parent is; parents may themselves be new, so settle in
        # rounds, oldest first (pids wrap, start times do not).
        pending = sorted(
            (pid for pid in new if stats[pid] is not None), key=lambda p: stats[p].starttime
        )
        changed = True
        while changed:
            changed = False
            for pid in pending:
                if pid not in ours and stats[pid].ppid in ours:
                    ours.add(pid)
                    changed = True
        for pid in new:
            stat = stats[pid]
            if stat is not None:
                self._known[pid] = (stat.starttime, pid in ours)
        if self.root_pid in self._known:
            self._known[self.root_pid] = (self._known[self.root_pid][0], True)
        tree = sorted(pid for pid, (_, mine) in self._known.items() if mine)
        if self.root_pid in tree:
            tree.remove(self.root_pid)
            tree.insert(0, self.root_pid)
        self._tree = tuple(tree)


class Timeline:
    """A bounded timeline of samples for runs of days: older samples are merged in pairs, each pair
    keeping its larger tree total, so peaks survive; the overall peak and the last few samples
    are kept exactly.
    """

    def __init__(self, capacity: int = 512, tail: int = 8) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self._points: list[Sample] = []
        self._stride = 1  # how many raw samples each kept point stands for
        self._bucket: Sample | None = None
        self._bucket_count = 0
        self.count = 0
        self.peak: Sample | None = None
        self.tail: deque[Sample] = deque(maxlen=tail)

    def add(self, sample: Sample) -> None:
        self.count += 1
        self.tail.append(sample)
        if self.peak is None or sample.tree_rss_bytes > self.peak.tree_rss_bytes:
            self.peak = sample
        self._bucket = _larger(self._bucket, sample)
        self._bucket_count += 1
        if self._bucket_count >= self._stride:
            self._points.append(self._bucket)
            self._bucket, self._bucket_count = None, 0
            if len(self._points) >= self.capacity:
                self._points = [
                    _larger(a, b)
                    for a, b in zip(self._points[::2], self._points[1::2], strict=False)
                ] + ([self._points[-1]] if len(self._points) % 2 else [])
                self._stride *= 2

    def samples(self) -> tuple[Sample, ...]:
        """The kept points, oldest first, with the last raw sample appended so the end is always
        shown.
        """
        points = list(self._points)
        if self._bucket is not None:
            points.append(self._bucket)
        if self.tail and (not points or points[-1] is not self.tail[-1]):
            points.append(self.tail[-1])
        return tuple(points)


def _larger(a: Sample | None, b: Sample) -> Sample:
    return b if a is None or b.tree_rss_bytes >= a.tree_rss_bytes else a


def resample(values: list[int], points: int) -> tuple[int, ...]:
    """Reduce a series to at most `points` values, each the maximum of its stretch, so spikes stay
    visible.
    """
    if points <= 0 or not values:
        return ()
    if len(values) <= points:
        return tuple(values)
    out = []
    for i in range(points):
        lo = i * len(values) // points
        hi = max((i + 1) * len(values) // points, lo + 1)
        out.append(max(values[lo:hi]))
    return tuple(out)
