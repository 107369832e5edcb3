"""The live memory monitor of a run: samples the child's tree in a daemon thread and sums it up as
`MemoryFacts`.

`Monitor.start()` only creates the thread: the imports, the first /proc scan, the cgroup lookup
and NVML all happen inside it, so starting costs the run nothing. `stop()` (after the child has
ended) reads the OOM-kill counters and the kernel log once more. Nothing here ever raises into
the run; what could not be seen becomes a note.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

# imported for real in the sampler thread and in stop(), never at trainwatch start-up
if TYPE_CHECKING:
    from trainwatch.diagnostics.verdict import Cited
    from trainwatch.diagnostics.watch.cgroup import CgroupPlace, KernelOomKill, ShmUsage
    from trainwatch.diagnostics.watch.gpu import GpuFacts
    from trainwatch.diagnostics.watch.limits import AddressLimit
    from trainwatch.diagnostics.watch.sampling import Sample

# Memory counts as "at its limit" when a sample of the last few is within this fraction of it.
AT_LIMIT_FRACTION = 0.95
# How many of the last samples that check looks at (1.5 s at the default interval).
AT_LIMIT_SAMPLES = 3
# Re-read a process's cgroup during its first samples: a wrapper may move itself (`echo $$ >
# cgroup.procs; exec`), a worker may confine itself to a smaller limit right after it starts.
ROOT_CGROUP_RECHECKS = 10
CGROUP_RECHECKS = 3
PIDS_TRACKED = 4096  # pids whose command line and cgroup checks are remembered


@dataclass(frozen=True)
class CgroupCounter:
    """The OOM-kill counter of one memory cgroup the run's processes were in, before and after the
    run.
    """

    path: str  # "/process_api/abc"
    file: str  # the file it was read from
    before: int | None
    after: int | None

    @property
    def delta(self) -> int:
        return (
            (self.after or 0) - (self.before or 0)
            if self.before is not None and self.after is not None
            else 0
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "file": self.file,
            "before": self.before,
            "after": self.after,
            "delta": self.delta,
        }


@dataclass(frozen=True)
class TopProcess:
    """The process that held the most memory at the tree's peak."""

    pid: int
    name: str
    cmdline: str | None
    rss_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "name": self.name,
            "cmdline": self.cmdline,
            "rss_bytes": self.rss_bytes,
        }


@dataclass(frozen=True)
class MemoryFacts:
    """What the memory monitor saw over a run: the evidence behind any out-of-memory verdict."""

    interval_s: float
    sample_count: int = 0
    samples: tuple[Sample, ...] = ()  # the bounded timeline, oldest first
    # the last samples taken while the root was alive, exactly as read
    tail: tuple[Sample, ...] = ()
    peak: Sample | None = None  # the sample with the largest tree total
    peak_rss_bytes: int = 0
    top_process: TopProcess | None = None
    limit_bytes: int | None = None
    # "cgroup v1 /sys/fs/cgroup/memory/.../memory.limit_in_bytes", "physical RAM"
    limit_source: str | None = None
    memory_total_bytes: int | None = None  # the machine's RAM
    cgroup: str | None = None  # the root process's memory cgroup
    # the root's cgroup first, then any other the tree was in
    counters: tuple[CgroupCounter, ...] = ()
    # every OOM kill the kernel logged during the run
    kernel_oom_kills: tuple[KernelOomKill, ...] = ()
    kernel_log: str = "not read"  # "/dev/kmsg", or why it could not be read
    shm: ShmUsage | None = None  # at the end
    shm_peak_used_bytes: int | None = None
    gpu: GpuFacts | None = None
    # The run's processes that had a finite address-space limit (RLIMIT_AS, `ulimit -v`).
    address_limits: tuple[AddressLimit, ...] = ()
    seen_pids: tuple[int, ...] = ()  # every pid the tree had (bounded)
    sampler_cpu_seconds: float = 0.0  # the sampler thread's own CPU time, all samples together
    # of which the start: imports, the first /proc scan, cgroup lookup, NVML start
    setup_cpu_seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def oom_kill_before(self) -> int | None:
        return self.counters[0].before if self.counters else None

    @property
    def oom_kill_after(self) -> int | None:
        return self.counters[0].after if self.counters else None

    @property
    def kernel_oom_lines(self) -> tuple[str, ...]:
        """The kernel's OOM-kill lines that name one of the run's processes."""
        return tuple(k.line for k in self.our_kernel_kills())

    def our_kernel_kills(
        self, extra_pids: tuple[int, ...] | list[int] = ()
    ) -> tuple[KernelOomKill, ...]:
        """Kernel OOM kills of the run's processes: pids the sampler saw, or `extra_pids` (from the
        log, e.g. a DataLoader worker that lived too briefly to be sampled), or any victim in the
        run's own cgroup.
        """
        pids = set(self.seen_pids) | set(extra_pids)
        return tuple(
            k
            for k in self.kernel_oom_kills
            if k.pid in pids or (self.cgroup is not None and k.memcg == self.cgroup)
        )

    def oom_corroboration(self, extra_pids: tuple[int, ...] | list[int] = ()) -> tuple[Cited, ...]:
        """The evidence that memory ran out, strongest first; empty when there is none.

        Counts: the OOM-kill counter of a cgroup of the run went up; the kernel logged an OOM
        kill of one of the run's processes (or of `extra_pids`); the tree's real use (its summed
        PSS, or a lone process's RSS: `last_use`) was within 5% of the limit in the last samples,
        or the machine had under 5% of its memory available then. A SIGKILL with none of these
        is not called out-of-memory.
        """
        from trainwatch.diagnostics.verdict import Cited

        cited = [
            Cited(
                "cgroup",
                f"oom_kill {c.before} -> {c.after} in memory cgroup {c.path}: the kernel's OOM "
                f"killer killed {c.delta} process(es) there during the run",
                c.file,
            )
            for c in self.counters
            if c.delta > 0
        ]
        pids = set(self.seen_pids) | set(extra_pids)
        for kill in self.our_kernel_kills(extra_pids):
            whose = "a process of the run" if kill.pid in pids else "a process in the run's cgroup"
            cited.append(Cited("kernel", kill.line, f"kernel log ({self.kernel_log}): {whose}"))
        cited.extend(self._at_limit())
        return tuple(cited)

    def _at_limit(self) -> list[Cited]:
        from trainwatch.diagnostics.verdict import Cited

        last = self.tail[-AT_LIMIT_SAMPLES:]
        if not last:
            return []
        out = []
        top = self.last_use()
        if self.limit_bytes and top is not None:
            use, measure, sample = top
            if use >= AT_LIMIT_FRACTION * self.limit_bytes:
                out.append(
                    Cited(
                        "memory",
                        f"tree {measure} {_mib(use)} of a {_mib(self.limit_bytes)} limit "
                        f"({use / self.limit_bytes:.0%}) at {sample.elapsed:.1f} s, in the last "
                        "samples",
                        f"memory sampler ({MEASURES[measure]})",
                    )
                )
        if self.memory_total_bytes:
            low = min(
                (s for s in last if s.available_bytes is not None),
                key=lambda s: s.available_bytes or 0,
                default=None,
            )
            if (
                low is not None
                and low.available_bytes < (1 - AT_LIMIT_FRACTION) * self.memory_total_bytes
            ):
                out.append(
                    Cited(
                        "memory",
                        f"the machine had {_mib(low.available_bytes)} of "
                        f"{_mib(self.memory_total_bytes)} available at {low.elapsed:.1f} s, "
                        "in the last samples",
                        "/proc/meminfo",
                    )
                )
        return out

    def last_use(self) -> tuple[int, str, Sample] | None:
        """The most the tree really held in the last samples: (bytes, measure, sample), the measure
        "PSS" or a lone process's "RSS" (Sample.real_use); None when none of them can say."""
        found = [
            (use[0], use[1], s)
            for s in self.tail[-AT_LIMIT_SAMPLES:]
            if (use := s.real_use()) is not None
        ]
        return max(found, key=lambda f: f[0], default=None)

    def peak_use(self) -> tuple[int, str]:
        """(bytes, measure) of the run's memory at its peak, as the report's headline shows it:
        the peak sample's real use (summed PSS, or a lone process's RSS), else its summed RSS,
        named so (shared pages counted once per process: a forked worker's copy of its parent's
        dataset counts again); a process the kernel killed between two samples counts by the
        kernel's RSS for it when that is more."""
        measured = None if self.peak is None else self.peak.real_use()
        if measured is None:
            summed = 0 if self.peak is None else self.peak.tree_rss_bytes
            several = self.peak is not None and len(self.peak.processes) > 1
            measured = (summed, "summed RSS" if several else "RSS")
        if self.peak_rss_bytes > (0 if self.peak is None else self.peak.tree_rss_bytes):
            return self.peak_rss_bytes, "RSS"  # the kernel's figure for a process it killed
        return measured

    def limit_check(self) -> dict[str, Any]:
        """How "memory at its limit" was judged, for the JSON report: the measure and its value."""
        top = self.last_use()
        return {
            "measure": None if top is None else top[1],
            "bytes": None if top is None else top[0],
            "limit_bytes": self.limit_bytes,
            "about": "the tree's real use in the last samples: its summed PSS (read when the "
            "summed RSS nears the limit), or the RSS of a lone process; the summed RSS of several "
            "processes counts shared pages once per process and is never used",
        }

    def cpu_ms_per_sample(self) -> float | None:
        """The sampler's steady-state CPU cost of one sample, start-up excluded."""
        if self.sample_count < 2:
            return None
        return round(
            1000 * (self.sampler_cpu_seconds - self.setup_cpu_seconds) / (self.sample_count - 1), 4
        )

    def samples_since(self, since: float | None) -> tuple[Sample, ...]:
        """The samples taken at or after `since` (wall clock; None: all of them)."""
        if since is None:
            return self.samples
        return tuple(s for s in self.samples if s.time >= since)

    def timeline(self, points: int = 40, since: float | None = None) -> tuple[int, ...]:
        """The tree's RSS over the run (from `since` on) in at most `points` values (each the
        maximum of its stretch).
        """
        from trainwatch.diagnostics.watch.sampling import resample

        return resample([s.tree_rss_bytes for s in self.samples_since(since)], points)

    def gpu_timeline(self, points: int = 40, since: float | None = None) -> tuple[int, ...]:
        """GPU memory used over the run, like `timeline()`; empty when no GPU was sampled."""
        from trainwatch.diagnostics.watch.sampling import resample

        values = [s.gpu_used_bytes for s in self.samples_since(since)]
        if not any(v is not None for v in values):
            return ()
        return resample([v or 0 for v in values], points)

    def to_dict(self, max_samples: int = 200) -> dict[str, Any]:
        """The JSON report's `memory` section."""
        from trainwatch.diagnostics.watch.sampling import resample

        samples = list(self.samples)
        if len(samples) > max_samples:  # keep the largest of each stretch, as the timeline does
            keep = set(resample(list(range(len(samples))), max_samples)) | {len(samples) - 1}
            samples = [s for i, s in enumerate(samples) if i in keep]
        peak_bytes, peak_measure = self.peak_use()
        return {
            "peak_rss_bytes": self.peak_rss_bytes,
            "peak_bytes": peak_bytes,
            "peak_measure": peak_measure,
            "limit_bytes": self.limit_bytes,
            "limit_source": self.limit_source,
            "memory_total_bytes": self.memory_total_bytes,
            "cgroup": self.cgroup,
            "top_process": None if self.top_process is None else self.top_process.to_dict(),
            "peak": None
            if self.peak is None
            else {
                "t": round(self.peak.elapsed, 3),
                "rss_bytes": self.peak.tree_rss_bytes,
                "processes": [
                    p.to_dict()
                    for p in sorted(self.peak.processes, key=lambda p: -p.rss_bytes)[:16]
                ],
            },
            "oom_kill": {
                "before": self.oom_kill_before,
                "after": self.oom_kill_after,
                "delta": self.counters[0].delta if self.counters else None,
                "cgroups": [c.to_dict() for c in self.counters],
            },
            "limit_check": self.limit_check(),
            "kernel_oom_kills": [k.to_dict() for k in self.our_kernel_kills()],
            "kernel_log": self.kernel_log,
            "shm": None
            if self.shm is None
            else {**self.shm.to_dict(), "peak_used_bytes": self.shm_peak_used_bytes},
            "gpu": None if self.gpu is None else self.gpu.to_dict(),
            "address_limits": [a.to_dict() for a in self.address_limits],
            "sampling": {
                "interval_s": self.interval_s,
                "count": self.sample_count,
                "sampler_cpu_seconds": round(self.sampler_cpu_seconds, 4),
                "setup_cpu_seconds": round(self.setup_cpu_seconds, 4),
                "cpu_ms_per_sample": self.cpu_ms_per_sample(),
            },
            "samples": [s.to_dict() for s in samples],
            "notes": list(self.notes),
        }


MEASURES = {
    "PSS": "PSS from /proc/PID/smaps_rollup, summed over the tree",
    "RSS": "the RSS of the run's only process",
}


def _mib(value: int | None) -> str:
    return "?" if value is None else f"{value / 2**20:,.0f} MiB"


# NVML costs ~50 ms to import and start: a run shorter than this has no GPU timeline worth that
# delay.
GPU_FIRST_READ_S = 1.0


class Monitor:
    """Samples a child's process tree every `interval` seconds until `stop()`."""

    def __init__(
        self,
        pid: int,
        interval: float = 0.5,
        *,
        gpu: bool = True,
        proc: str = "/proc",
        kmsg: str = "/dev/kmsg",
        shm: str = "/dev/shm",
        capacity: int = 512,
    ) -> None:
        self.pid = pid
        self.interval = interval
        self._options = {"gpu": gpu, "proc": proc, "kmsg": kmsg, "shm": shm, "capacity": capacity}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trainwatch-monitor", daemon=True)
        self._latest: Sample | None = None
        self._tree: tuple[int, ...] = (pid,)
        self._notes: list[str] = []
        self._state: dict[str, Any] = {}

    @classmethod
    def start(cls, pid: int, interval: float = 0.5, **options: Any) -> Monitor:
        """Start monitoring `pid` and its descendants; returns at once."""
        monitor = cls(pid, interval, **options)
        monitor._thread.start()
        return monitor

    def latest(self) -> Sample | None:
        """The last sample taken, or None before the first."""
        return self._latest

    def tree_pids(self) -> tuple[int, ...]:
        """The pids of the tree at the last sample, the root first."""
        return self._tree

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Wait until the first sample and the "before" counters are in (tests use it; the run does
        not).
        """
        return self._ready.wait(timeout)

    def _run(self) -> None:
        try:
            self._sample_until_stopped()
        except Exception as exc:
            self._notes.append(f"memory sampling stopped early ({type(exc).__name__}: {exc})")
        finally:
            self._ready.set()

    def _sample_until_stopped(self) -> None:
        from trainwatch.diagnostics.watch import cgroup
        from trainwatch.diagnostics.watch.gpu import GpuSampler
        from trainwatch.diagnostics.watch.limits import AddressLimits, own_address_limit
        from trainwatch.diagnostics.watch.sampling import (
            Timeline,
            TreeSampler,
            read_available,
            read_cmdline,
            read_stat,
            tree_pss,
        )

        opts = self._options
        state = self._state
        started = time.thread_time()
        sampler = TreeSampler(self.pid, opts["proc"])
        kernel = cgroup.KernelLog(opts["kmsg"])
        kernel.open()
        timeline = Timeline(opts["capacity"])
        gpu = GpuSampler() if opts["gpu"] else None
        limits = AddressLimits(self.pid, opts["proc"], inherited=own_address_limit())
        # cgroup path -> (place, oom_kill before)
        watched: dict[str, tuple[CgroupPlace, int | None]] = {}
        cmdlines: dict[int, str | None] = {}
        checks: dict[int, int] = {}  # pid -> samples its cgroup was read at
        state.update(
            sampler=sampler,
            kernel=kernel,
            timeline=timeline,
            gpu=gpu,
            watched=watched,
            cmdlines=cmdlines,
            limits=limits,
            root_cgroup=None,
            limit=cgroup.read_limit(None),
            shm_peak=None,
            cpu=0.0,
            setup_cpu=0.0,
        )
        _, state["memory_total"] = read_available(opts["proc"])
        gpu_every, count = 1, 0
        # NVML is read every `gpu_every` samples; the samples between carry the last reading, so
        # that `ps` and the timeline never show the GPU empty between two readings.
        gpu_used = gpu_own = gpu_busy = None
        begun = time.monotonic()
        while True:
            sample = sampler.sample()
            if sampler.root_ended:
                # a zombie root holds no memory: that sample would only hide the end of the run
                break
            count += 1
            for pid in sampler.tree_pids():
                done = checks.get(pid, 0)
                if done < (ROOT_CGROUP_RECHECKS if pid == self.pid else CGROUP_RECHECKS):
                    if len(checks) >= PIDS_TRACKED and pid not in checks:
                        continue
                    checks[pid] = done + 1
                    # read again during the same first samples: a child caught between fork and
                    # exec shows its parent's command line, or none while exec runs
                    cmdlines[pid] = read_cmdline(pid, opts["proc"]) or cmdlines.get(pid)
                    place = cgroup.locate_cgroup(pid, opts["proc"])
                    stat = read_stat(pid, opts["proc"])
                    if stat is None or stat.exiting:
                        # a task on its way out shows the root cgroup (cgroup_exit): not where it
                        # ran
                        continue
                    if place is not None and place.path not in watched:
                        watched[place.path] = (place, cgroup.read_oom_kills(place))
                    if pid == self.pid and place is not None and place != state["root_cgroup"]:
                        state["root_cgroup"] = place
                        state["limit"] = cgroup.read_limit(place)
                        for child in cgroup.child_places(place):
                            if child.path not in watched:
                                watched[child.path] = (child, cgroup.read_oom_kills(child))
            shm = cgroup.read_shm(opts["shm"])
            if shm is not None and (
                state["shm_peak"] is None or shm.used_bytes > state["shm_peak"]
            ):
                state["shm_peak"] = shm.used_bytes
            if (
                gpu is not None
                and count % gpu_every == 0
                and time.monotonic() - begun >= GPU_FIRST_READ_S
            ):
                before = time.monotonic()
                reading = gpu.read(set(sampler.seen) | set(sampler.tree_pids()))
                # NVML calls can take milliseconds: never let them take more than a tenth of the
                # interval.
                gpu_every = max(
                    1, min(20, int((time.monotonic() - before) * 10 / self.interval) + 1)
                )
                gpu_used = None if reading is None else reading.used_bytes
                gpu_busy = None if reading is None else reading.utilization_pct
                gpu_own = None if reading is None else reading.own_bytes
            limit = state["limit"]
            pss = None
            if (
                limit is not None
                and len(sample.processes) > 1
                and sample.tree_rss_bytes >= AT_LIMIT_FRACTION * limit.bytes
            ):
                # the RSS sum says "at the limit", but it counts shared pages once per process:
                # their PSS says what the tree really holds (PSS <= RSS, so below, it never can)
                pss = tree_pss(sample.processes, opts["proc"])
            sample = replace(
                sample,
                tree_pss_bytes=pss,
                cgroup_usage_bytes=cgroup.read_usage(state["root_cgroup"]),
                shm_used_bytes=None if shm is None else shm.used_bytes,
                gpu_used_bytes=gpu_used,
                gpu_own_bytes=gpu_own,
                gpu_utilization_pct=gpu_busy,
            )
            kernel.drain()
            limits.update(sampler.tree_pids())
            timeline.add(sample)
            self._latest = sample
            self._tree = sampler.tree_pids()
            state["cpu"] = time.thread_time() - started
            if count == 1:
                state["setup_cpu"] = state["cpu"]
            self._ready.set()
            if self._stop.wait(self.interval):
                break

    def stop(self, timeout: float = 2.0) -> MemoryFacts:
        """End sampling and sum up; call it after the child has ended. Never raises."""
        self._stop.set()
        self._thread.join(timeout)
        try:
            return self._facts(finished=not self._thread.is_alive())
        except Exception as exc:
            return MemoryFacts(
                interval_s=self.interval,
                notes=(f"memory facts unavailable ({type(exc).__name__}: {exc})",),
            )

    def _facts(self, finished: bool) -> MemoryFacts:
        from trainwatch.diagnostics.watch import cgroup

        state = self._state
        notes = list(self._notes)
        if not finished:
            notes.append("the memory sampler did not stop in time; its last readings are used")
        if "timeline" not in state:
            return MemoryFacts(
                interval_s=self.interval, notes=tuple(notes + ["memory was not sampled"])
            )
        timeline, kernel, sampler = state["timeline"], state["kernel"], state["sampler"]
        if finished:
            # the kernel logs an OOM kill before the victim dies, so it is there by now
            kernel.drain()
            kernel.close()
        counters = []
        root = state["root_cgroup"]
        for path, (place, before) in sorted(
            state["watched"].items(), key=lambda kv: root is None or kv[0] != root.path
        ):
            file = place.file("memory.oom_control" if place.version == 1 else "memory.events")
            counters.append(CgroupCounter(path, file, before, cgroup.read_oom_kills(place)))
        limit = cgroup.read_limit(root)
        peak = timeline.peak
        peak_rss = 0 if peak is None else peak.tree_rss_bytes
        kills = tuple(kernel.oom_kills())
        seen = set(sampler.seen)
        for kill in kills:
            # A process that grows fast dies between two samples: the kernel's figure for it is the
            # better peak.
            if kill.pid in seen and kill.rss_bytes and kill.rss_bytes > peak_rss:
                peak_rss = kill.rss_bytes
                notes.append(
                    f"peak memory from the kernel's OOM report of pid {kill.pid}: it grew past the "
                    f"last "
                    f"sample before it was killed"
                )
        top = None if peak is None else peak.top_process()
        gpu_facts = None
        if state["gpu"] is not None and finished:
            gpu_facts = state["gpu"].facts()
            state["gpu"].close()
        if gpu_facts is not None:
            notes.extend(gpu_facts.notes)
        if kernel.note:
            notes.append(kernel.note)
        if root is None:
            notes.append("no memory cgroup found for the run; the limit is the machine's RAM")
        samples, tail = timeline.samples(), tuple(timeline.tail)
        if gpu_facts is not None and gpu_facts.per_process:
            # NVML named the run's processes: the readings taken before they had a CUDA context
            # were whole devices' (another user's memory included), and the run held none of it
            samples, tail = (
                tuple(replace(s, gpu_used_bytes=s.gpu_own_bytes) for s in points)
                for points in (samples, tail)
            )
        return MemoryFacts(
            interval_s=self.interval,
            sample_count=timeline.count,
            samples=samples,
            tail=tail,
            peak=peak,
            peak_rss_bytes=peak_rss,
            top_process=None
            if top is None
            else TopProcess(top.pid, top.name, state["cmdlines"].get(top.pid), top.rss_bytes),
            limit_bytes=None if limit is None else limit.bytes,
            limit_source=None if limit is None else limit.source,
            memory_total_bytes=state["memory_total"],
            cgroup=None if root is None else root.path,
            counters=tuple(counters),
            kernel_oom_kills=kills,
            kernel_log=kernel.note or kernel.path,
            shm=cgroup.read_shm(self._options["shm"]),
            shm_peak_used_bytes=state["shm_peak"],
            gpu=gpu_facts,
            address_limits=state["limits"].facts(),
            seen_pids=tuple(sampler.seen),
            sampler_cpu_seconds=state["cpu"],
            setup_cpu_seconds=state["setup_cpu"],
            notes=tuple(notes),
        )
