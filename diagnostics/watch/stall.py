"""The stall detector: no output, no progress and next to no CPU for too long -> stacks,
`StallFacts`, and a stop.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from trainwatch.diagnostics.evidence import Frame, deepest_user_frame
from trainwatch.diagnostics.read.frames import forward_slashes
from trainwatch.diagnostics.watch.sampling import TreeSampler, read_cmdline, read_stat

if TYPE_CHECKING:  # the records module is the probe's; a stall watcher without it imports nothing
    from trainwatch.diagnostics.watch.probe.records import ProcessStacks

# Below this share of one core, averaged over the silent window, the tree counts as idle. A blocked
# Python process still wakes now and then (the probe's poll thread, DataLoader's watchdog every 5
# s): that stays far below 10%.
IDLE_CPU_SHARE = 0.10
# between SIGTERM and SIGKILL: the verdict must come within a few seconds of the timeout
STOP_GRACE_S = 3.0
# Output that ended a reported silence this short a time before a signal ended the run is the
# stop's own (the KeyboardInterrupt traceback of a Ctrl-C, a launcher's "Received SIGTERM"): the
# silence stands.
STOP_OUTPUT_S = 5.0
ON_STALL = ("auto", "report", "kill")  # auto: stop an idle stall, only report a busy one
# A signal that ends a run silent for less than the timeout (`timeout 20 trainwatch run ...`, a
# scheduler's limit under the watcher's 30 s): the silence still counts where it is at least this
# share of the timeout and this many times the longest gap between the run's outputs before it,
# its CPU idle (a run that printed every second, then nothing for 17 s until the stop, was stuck).
SILENCE_AT_STOP_SHARE = 1 / 3
SILENCE_AT_STOP_GAPS = 4.0

# Where a waiting thread sits, told from its innermost frames: (kind, file fragment, functions or
# None for any), in tiers: the DataLoader, collectives and Pool name a wait better than the queue
# or socket they block in, wherever on the stack; under them, what the program waits for (a queue,
# a future, a thread) better than the lock or condition it blocks in (`queue.get` sits in
# `threading.Condition.wait`).
_WAIT_TIERS = (
    (
        # the multi-process iterator's waits for its workers; the single-process one's `_next_data`
        # runs the Dataset in place (num_workers=0): no worker is waited for
        ("dataloader", "torch/utils/data/dataloader.py", ("_try_get_data", "_get_data")),
        # the process group's start: waiting for the other ranks to join (fewer were started
        # than WORLD_SIZE says, a wrong MASTER_ADDR), before any collective
        (
            "rendezvous",
            "torch/distributed/",
            (
                "init_process_group",
                "rendezvous",
                "_create_c10d_store",
                "_env_rendezvous_handler",
                "_tcp_rendezvous_handler",
                "_store_based_barrier",
                "next_rendezvous",
            ),
        ),
        ("collective", "torch/distributed/", None),
        ("collective", "deepspeed/comm/", None),
        # autograd's engine runs backward in C++: a stack that stops there waits in it, most often
        # (under DDP) in the gradient all-reduce its hooks start, for ranks that do not join
        ("backward", "torch/autograd/", ("_engine_run_backward", "backward", "grad")),
        ("collective", "horovod/", None),
        (
            "pool",
            "multiprocessing/pool.py",
            ("map", "starmap", "get", "wait", "next", "__next__", "join", "apply"),
        ),
    ),
    (
        ("queue", "multiprocessing/queues.py", ("get", "put")),
        ("queue", "multiprocessing/connection.py", None),
        ("queue", "/queue.py", ("get", "put", "join")),
        ("event", "concurrent/futures/_base.py", ("result", "wait", "as_completed", "exception")),
        ("join", "/threading.py", ("join", "_wait_for_tstate_lock")),
        ("join", "multiprocessing/process.py", ("join",)),
        ("join", "multiprocessing/popen_fork.py", ("wait", "poll")),
        ("join", "/subprocess.py", ("wait", "communicate", "_wait", "_try_wait")),
    ),
    (
        ("lock", "multiprocessing/synchronize.py", None),
        # filelock (Hugging Face's cache locks) polls with time.sleep: a lock another process holds
        ("lock", "filelock/", ("acquire", "__enter__")),
        ("event", "/threading.py", ("wait",)),
        ("lock", "/threading.py", ("acquire", "__enter__")),
        ("io", "/selectors.py", ("select",)),
        ("io", "/socket.py", None),
        ("io", "/ssl.py", ("read", "recv", "recv_into")),
        # HTTP clients that call the socket's C methods themselves (a Hub download that stalled:
        # httpcore's `self._sock.recv(...)` read as a queue's `.recv(`, a real run)
        ("io", "httpcore/", None),
        ("io", "urllib3/", None),
        ("io", "/http/client.py", None),
    ),
)
# torchrun's own code lives under torch/distributed too: its agent watching the ranks is in no
# collective.
_LAUNCHER_FRAMES = (
    "torch/distributed/elastic/",
    "torch/distributed/launcher/",
    "distributed/run.py",
)
# A launcher waiting for the processes it started (mp.spawn's join, torchrun's agent between its
# looks at the ranks) waits on whatever they wait on: its own wait (a pipe, a sleep) names no cause.
_LAUNCHER_WAITS = (
    ("torch/multiprocessing/spawn.py", ("join", "start_processes", "spawn")),
    *((fragment, None) for fragment in _LAUNCHER_FRAMES),
)
_WAIT_CODE = (
    ("sleep", re.compile(r"\bsleep\(")),
    # a prompt no one answers: `input()`, a read of stdin
    ("stdin", re.compile(r"\binput\(|\bsys\.stdin\b")),
    ("lock", re.compile(r"(?i)\.acquire\(|\bwith\b[^:]*lock|\.wait\(|\bflock\(|\blockf\(")),
    # a queue's `get()` takes no key: `q.get()`, `q.get(timeout=5)`, `q.get(True)`; a mapping's
    # `d.get(key)` is no wait (a busy loop interrupted there read as one, a real run)
    (
        "queue",
        re.compile(r"\.get\(\s*(?:\)|(?:block|timeout)\s*=|True\b)|\.recv\w*\(|\.read\("),
    ),
    ("join", re.compile(r"\.join\(|\.communicate\(")),
)
# The same from the kernel's side, for processes the probe cannot see (`/proc/<pid>/wchan`,
# proc(5)).
_WCHAN = (
    ("futex", "lock"),
    ("nanosleep", "sleep"),
    ("pipe_read", "queue"),
    ("pipe_write", "queue"),
    ("unix_stream", "queue"),
    ("sk_wait", "io"),
    ("inet", "io"),
    ("tcp", "io"),
    ("poll", "io"),
    ("select", "io"),
    ("do_wait", "join"),
    ("wait_woken", "io"),
    ("wait_for_partner", "io"),  # open() of a FIFO that no process has opened from the other end
)
_WAIT_WORDS = {
    "dataloader": "waiting for a batch from the DataLoader's workers",
    "rendezvous": "waiting for the other ranks to join the process group (rendezvous)",
    "collective": "inside a distributed collective (all-reduce, barrier, broadcast ...)",
    "backward": (
        "inside the backward pass, in C++ (under DDP: its gradient all-reduce, waiting for the "
        "other ranks)"
    ),
    "pool": "waiting for the results of a multiprocessing Pool's workers",
    "queue": "waiting on a queue or pipe",
    "lock": "waiting to acquire a lock",
    "event": "waiting on an event or a future (another thread's or process's work)",
    "stdin": "waiting for input on stdin (a prompt no one answers)",
    "join": "waiting for another thread or process to end",
    "launcher": "a launcher waiting for the processes it started (mp.spawn, torchrun)",
    "sleep": "sleeping (time.sleep)",
    "io": "waiting on a socket or file descriptor",
    "busy": "running (using CPU)",
    "import": "importing a module (running its code)",
    "unknown": "state not known",
}
WAIT_KINDS = tuple(_WAIT_WORDS)  # what `hang/<kind>` a stalled wait may be


@dataclass(frozen=True)
class ProcessWait:
    """Where one thread of one process of the tree was waiting when the stall was declared."""

    pid: int
    command: str | None
    thread: str | None  # "main", a thread id, or None when only the kernel's view was available
    kind: str  # a key of _WAIT_WORDS
    # "queue.py:171 in get, called from train.py:40 in <module>" or "kernel: futex_wait_queue"
    where: str
    # Where it blocks: the deepest frame of the user's own code on that stack, else the innermost
    # (a library's) frame.
    frame: Frame | None = None
    source: str = "probe"  # "probe" (Python stack) or "wchan" (the kernel's wait channel)

    @property
    def description(self) -> str:
        return describe_wait(self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "command": self.command,
            "thread": self.thread,
            "kind": self.kind,
            "description": self.description,
            "where": self.where,
            "source": self.source,
            "frame": None if self.frame is None else self.frame.to_dict(),
        }


@dataclass(frozen=True)
class StallFacts:
    """A run that went silent: for how long, how much CPU it used meanwhile, where it waited, what
    was done.
    """

    timeout_s: float
    silent_s: float  # no output and no progress for this long when the stall was declared
    cpu_seconds: float  # CPU time the whole tree used during that silence
    busy: bool  # it used CPU all along: a possible busy loop, not a blocked wait
    # "stopped" (SIGTERM sent), "reported" (left running), "cut" (still silent, under the timeout,
    # when a signal from elsewhere ended the run: no stacks were taken)
    action: str
    escalated: bool = False  # SIGTERM was not enough: SIGKILL followed after the grace period
    stopped_at: str | None = None  # the progress position when it went silent
    silent_since: float | None = None  # epoch seconds: when the silence began
    waits: tuple[ProcessWait, ...] = ()
    notes: tuple[str, ...] = ()

    def main_wait(self) -> ProcessWait | None:
        """The wait that best explains the stall: the root process's main thread when its wait is
        known (the waits are sorted so), else the first known wait anywhere.
        """
        known = [w for w in self.waits if w.kind not in ("unknown", "busy")]
        # a process the probe cannot see that waits for its children (a shell running the
        # program, `bash -c "python train.py"`; a launcher) explains nothing its children's own
        # waits do not: they come first
        seen = [w for w in known if not (w.source == "wchan" and w.kind == "join")]
        known = seen or known
        return known[0] if known else (self.waits[0] if self.waits else None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report's `stall` section."""
        return {
            "timeout_s": self.timeout_s,
            "silent_s": round(self.silent_s, 1),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "busy": self.busy,
            "action": self.action,
            "escalated": self.escalated,
            "stopped_at": self.stopped_at,
            "silent_since": self.silent_since,
            "waits": [w.to_dict() for w in self.waits],
            "notes": list(self.notes),
        }


def _epoch(monotonic: float) -> float:
    """A `time.monotonic()` reading as epoch seconds (the report's clock)."""
    return time.time() - (time.monotonic() - monotonic)


def classify_wait(frames: Sequence[Frame]) -> tuple[str, str]:
    """(kind, where) for one stack, outermost call first: the innermost frame that names a known
    wait of the highest tier decides (_WAIT_TIERS).
    """
    if not frames:
        return "unknown", "no Python frames"
    if any(frame.file.startswith("<frozen importlib") for frame in frames):
        # a module being imported runs its body: the path of a file under torch/distributed/ that
        # `import torch` loads is no collective it waits in
        return "import", _where(frames[-1], frames)
    for number, tier in enumerate(_WAIT_TIERS):
        # below the first tier, a launcher's own wait is no queue or sleep of the user's
        # (_LAUNCHER_WAITS); a rendezvous or a collective of the first tier is
        if number == 1:
            for frame in reversed(frames):
                path = forward_slashes(frame.file)
                if any(
                    fragment in path and (functions is None or frame.function in functions)
                    for fragment, functions in _LAUNCHER_WAITS
                ):
                    return "launcher", _where(frame, frames)
        for frame in reversed(frames):
            path = forward_slashes(frame.file)
            for kind, fragment, functions in tier:
                if (
                    fragment in path
                    and (functions is None or frame.function in functions)
                    and not (kind == "collective" and any(f in path for f in _LAUNCHER_FRAMES))
                ):
                    return kind, _where(frame, frames)
    innermost = frames[-1]
    code = innermost.code or ""
    # Blocking calls in C leave the innermost Python frame at the line that calls them.
    for kind, pattern in _WAIT_CODE:
        if pattern.search(code):
            return kind, _where(innermost, frames)
    return "unknown", _where(innermost, frames)


def describe_wait(kind: str) -> str:
    """A wait's kind in words: "dataloader" -> "waiting for a batch from the DataLoader's ..."."""
    return _WAIT_WORDS.get(kind, kind)


def wait_from_wchan(pid: int, proc: str = "/proc") -> tuple[str, str] | None:
    """(kind, "kernel: <wchan>") from the kernel's wait channel; None when running or unreadable."""
    try:
        with open(f"{proc}/{pid}/wchan") as handle:
            wchan = handle.read().strip()
    except OSError:
        return None
    if not wchan or wchan == "0":
        return None
    for fragment, kind in _WCHAN:
        if fragment in wchan:
            return kind, f"kernel: {wchan}"
    return "unknown", f"kernel: {wchan}"


def _where(frame: Frame, frames: Sequence[Frame]) -> str:
    text = f"{short_path(frame.file)}:{frame.line} in {frame.function}"
    user = deepest_user_frame(frames)
    if user is not None and user is not frame:
        text += f", called from {short_path(user.file)}:{user.line} in {user.function}"
    return text


def short_path(path: str) -> str:
    """A path's last two parts: `data/dataloader.py`."""
    parts = forward_slashes(path).split("/")
    return "/".join(parts[-2:]) if len(parts) > 1 else path


StacksReader = Callable[[], Sequence["ProcessStacks"]]


class StallWatcher:
    """A daemon thread that declares a stall once output, progress and CPU have all been still for
    `timeout` s.

    `activity()` returns the monotonic time of the last output or progress (the
    `ProgressTracker`'s `last_output_at`/`last_progress_at`, or launch's relay); `stacks()`
    returns the probe's stacks (objects with `pid` and `threads`, each thread with `frames` of
    `evidence.Frame`); `stop(signum)` signals the child's process group (launch's
    `Child.signal_group`). Without `stop` it signals the process group of `pid` itself.
    `on_declared(facts)` hears of each stall as it is declared, before the run is stopped.
    """

    def __init__(
        self,
        pid: int,
        timeout: float,
        *,
        activity: Callable[[], float | None],
        on_stall: str = "auto",
        stacks: StacksReader | None = None,
        stop: Callable[[int], None] | None = None,
        position: Callable[[], str | None] | None = None,
        gpu_busy: Callable[[], bool | None] | None = None,
        on_declared: Callable[[StallFacts], None] | None = None,
        grace: float = STOP_GRACE_S,
        interval: float | None = None,
    ) -> None:
        if on_stall not in ON_STALL:
            raise ValueError(f"on_stall must be one of {ON_STALL}, not {on_stall!r}")
        self.pid, self.timeout, self.on_stall = pid, float(timeout), on_stall
        self._activity, self._stacks, self._stop_child = activity, stacks, stop
        self._position, self._gpu_busy, self._grace = position, gpu_busy, grace
        self._on_declared = on_declared  # told of each stall as it is declared (notifications)
        self._interval = (
            interval if interval is not None else max(0.05, min(1.0, self.timeout / 10))
        )
        self._sampler = TreeSampler(pid)
        self._cpu: dict[int, float] = {}  # pid -> last CPU seconds seen, for per-process increments
        # (monotonic time, CPU seconds used since start)
        self._history: list[tuple[float, float]] = []
        self._used = 0.0
        self._facts: StallFacts | None = None
        self._episode: float | None = None  # the activity time of the silence already reported
        # a reported silence that output ended, and when (monotonic): kept for `close`, which
        # restores it when that output was the stop's own (a traceback printed as Ctrl-C ends it,
        # or the answer to a first Ctrl-C that did not end the run, after which the loop never
        # moved again)
        self._withdrawn: tuple[StallFacts, float] | None = None
        # the run's own rhythm: the last activity seen, the gap that led to it, the longest before;
        # once its loop shows progress, the gaps within the loop only (a quiet start-up, a model
        # built or a library imported for seconds, is no measure of how often the loop prints)
        self._seen: float | None = None
        self._last_gap = 0.0
        self._longest_gap = 0.0
        self._seen_in_loop = False
        # the latest outputs the polls saw: (when, the gap before it, the longest gap before that,
        # the progress position after it, and whether it moved the position); a stop's output may
        # come in several pieces (a launcher's line, then each worker's traceback), and the silence
        # it ended is the gap before the first of them
        self._recent: deque[tuple[float, float, float, str | None, bool]] = deque(maxlen=8)
        self._seen_position: str | None = None  # the progress position at the latest output
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trainwatch-stall", daemon=True)
        self._started = time.monotonic()

    def start(self) -> StallWatcher:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def close(self, signalled: bool = False) -> StallFacts | None:
        """Stop watching (the child has ended; `signalled`: a signal ended it, or trainwatch relayed
        one to it) and return the stall, if one was declared. Output that came back after a
        reported silence withdraws it (it was slow, not stuck), unless a signal ended the run:
        output that comes only as a stop ends the run (a launcher's `Received 15 death signal,
        shutting down`) is that stop's, and the stall stands."""
        self._done.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(self._grace + 2)
        withdrawn = self._withdrawn
        if (
            self._facts is None
            and withdrawn is not None
            and signalled
            and (
                time.monotonic() - withdrawn[1] <= STOP_OUTPUT_S
                or self._still_at(withdrawn[0].stopped_at)
            )
        ):
            # the output that ended the silence was the stop's, or it made no progress and a
            # signal then ended the run: a first Ctrl-C's answer ("saving...") that hung again
            self._facts = withdrawn[0]
        if self._facts is None and signalled:
            self._facts = self._silence_at_stop()
        facts = self._facts
        if (
            facts is not None
            and facts.action == "reported"
            and not signalled
            and (self._activity() or 0.0) > (self._episode or 0.0)
        ):
            self._facts = None
        return self._facts

    @property
    def facts(self) -> StallFacts | None:
        return self._facts

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            try:
                if self._check():
                    return
            except Exception:
                return

    def _silence_at_stop(self) -> StallFacts | None:
        """The silence a signal ended, shorter than the timeout (SILENCE_AT_STOP_SHARE): long for
        this run and idle, else None. Output within STOP_OUTPUT_S of the end may be the stop's
        own (a launcher's "Received SIGTERM"): then the silence it ended counts too."""
        now = time.monotonic()
        last = self._activity()
        if last is None:
            return None  # nothing printed at all: the start-up's silence is another story
        # (the silence's start, its end, the longest gap of the run's rhythm before it)
        spans = [(last, now, max(self._longest_gap, self._last_gap))]
        if now - last <= STOP_OUTPUT_S and self._seen is not None:
            # outputs the polls saw this close to the end may be the stop's: the gaps they ended
            # are no rhythm
            spans.extend(
                (t - gap, t, longest)
                for t, gap, longest, _, _ in self._recent
                if now - t <= STOP_OUTPUT_S
            )
            if last != self._seen:  # an output no poll saw: the silence before it
                spans.append((self._seen, last, max(self._longest_gap, self._last_gap)))
        # output after which the loop never moved again (the answer to a first Ctrl-C that did
        # not end the run) ended no wait: the silence before it counts too, where its CPU is known
        known_since = self._history[0][0] if self._history else now
        spans.extend(
            (t - gap, t, longest)
            for t, gap, longest, position, moved in self._recent
            if not moved and self._still_at(position) and t - gap >= known_since
        )
        for began, ended, longest in spans:
            silent = ended - began
            if silent < max(SILENCE_AT_STOP_SHARE * self.timeout, SILENCE_AT_STOP_GAPS * longest):
                continue
            used = self._cpu_at(ended) - self._cpu_at(began)
            if used > IDLE_CPU_SHARE * silent or (self._gpu_busy and self._gpu_busy()):
                continue
            return StallFacts(
                timeout_s=self.timeout,
                silent_s=silent,
                cpu_seconds=max(used, 0.0),
                busy=False,
                action="cut",
                stopped_at=self._position() if self._position else None,
                silent_since=_epoch(began),
            )
        return None

    def _still_at(self, position: str | None) -> bool:
        """Is the loop where it was at `position` (a progress position seen, not None)?"""
        return (
            position is not None and self._position is not None and (self._position() == position)
        )

    def _check(self) -> bool:
        """One poll; True when the watcher has nothing more to do (it stopped the run)."""
        now = time.monotonic()
        self._sample_cpu(now)
        activity = self._activity()
        if activity is not None and activity != self._seen:
            in_loop = self._position is not None and self._position() is not None
            if in_loop and not self._seen_in_loop:
                self._longest_gap = self._last_gap = 0.0  # the rhythm starts again in the loop
            elif self._seen is not None:
                self._longest_gap = max(self._longest_gap, self._last_gap)
                self._last_gap = activity - self._seen
            self._seen = activity
            self._seen_in_loop = in_loop
            position = self._position() if self._position else None
            moved, self._seen_position = position != self._seen_position, position
            self._recent.append((activity, self._last_gap, self._longest_gap, position, moved))
        last = max(self._started, activity or 0.0)
        silent = now - last
        if silent < self.timeout:
            if (
                self._facts is not None
                and self._facts.action == "reported"
                and self._episode != last
            ):
                # activity came back: the silence reported before was not a hang, unless that
                # activity is the run's answer to the signal that ends it (see `close`)
                self._withdrawn = (self._facts, now)
                self._facts = None
            return False
        used = self._used - self._cpu_at(now - self.timeout)
        busy = used > IDLE_CPU_SHARE * self.timeout or bool(self._gpu_busy and self._gpu_busy())
        if self._episode == last:
            # this silence is already reported; one reported busy is judged again once its CPU
            # stops (a start-up's imports counted in its first window, a busy phase that then
            # deadlocks): it is then a silent wait, which auto stops
            reported = self._facts
            if busy or reported is None or not reported.busy or reported.action != "reported":
                return False
        stop = self.on_stall == "kill" or (self.on_stall == "auto" and not busy)
        self._episode = last
        self._withdrawn = None
        self._facts = StallFacts(
            timeout_s=self.timeout,
            silent_s=silent,
            cpu_seconds=max(used, 0.0),
            busy=busy,
            action="stopped" if stop else "reported",
            stopped_at=self._position() if self._position else None,
            silent_since=_epoch(last),
            waits=self._waits(busy),
            notes=self._notes(busy),
        )
        if self._on_declared is not None:
            try:
                self._on_declared(self._facts)
            except Exception:
                pass
        if stop:
            self._stop()
            return True
        return False

    def _sample_cpu(self, now: float) -> None:
        try:
            sample = self._sampler.sample()
        except Exception:
            return
        for process in sample.processes:
            before = self._cpu.get(process.pid)
            if before is not None and process.cpu_seconds > before:
                self._used += process.cpu_seconds - before
            self._cpu[process.pid] = process.cpu_seconds
        self._history.append((now, self._used))
        horizon = now - self.timeout - 2 * self._interval
        while len(self._history) > 2 and self._history[1][0] < horizon:
            self._history.pop(0)

    def _cpu_at(self, moment: float) -> float:
        """CPU used up to `moment`: the last sample taken at or before it (the earliest one if
        none).
        """
        value = self._history[0][1] if self._history else 0.0
        for taken, used in self._history:
            if taken > moment:
                break
            value = used
        return value

    def _waits(self, busy: bool) -> tuple[ProcessWait, ...]:
        waits: list[ProcessWait] = []
        seen: set[int] = set()
        if self._stacks is not None:
            try:
                stacks = self._stacks() or ()
            except Exception:
                stacks = ()
            for process in stacks:
                pid = process.pid
                for thread in process.threads:
                    frames = thread.frames
                    kind, where = classify_wait(frames)
                    main = thread.main
                    if kind == "unknown" and busy:
                        kind = "busy"
                    elif kind == "unknown" and main and pid:
                        # A blocking call in C leaves no Python frame to tell it by: the kernel's
                        # wait channel still says what the main thread waits on (a futex: a lock).
                        found = wait_from_wchan(pid)
                        if found is not None and found[0] != "unknown":
                            kind = found[0]
                    frame = deepest_user_frame(frames)
                    if frame is None and frames:
                        frame = frames[-1]
                    name = "main" if main else hex(thread.thread_id)
                    waits.append(
                        ProcessWait(
                            pid,
                            read_cmdline(pid),
                            name,
                            kind,
                            where,
                            frame,
                            "probe",
                        )
                    )
                seen.add(pid)
        for pid in self._sampler.tree_pids() or (self.pid,):
            if pid in seen:
                continue
            stat = read_stat(pid)
            if stat is None or stat.state == "Z":
                continue
            found = wait_from_wchan(pid)
            kind, where = (
                found
                if found
                else ("busy" if stat.state == "R" else "unknown", f"state {stat.state}")
            )
            waits.append(ProcessWait(pid, read_cmdline(pid), None, kind, where, None, "wchan"))
        # The root process first, then the waits that name a known place.
        waits.sort(
            key=lambda w: (
                w.pid != self.pid,
                w.thread not in ("main", None),
                w.kind in ("unknown", "busy"),
            )
        )
        return tuple(waits[:32])

    def _notes(self, busy: bool) -> tuple[str, ...]:
        notes = []
        if self._stacks is None:
            notes.append(
                "Python stacks were not available (probe not loaded); waits come from the kernel."
            )
        if busy:
            notes.append(
                "The processes kept using CPU: a busy loop or a long computation that prints "
                "nothing."
            )
        return tuple(notes)

    def _stop(self) -> None:
        """SIGTERM to the group, then SIGKILL if anything of it is still alive after the grace
        period.
        """
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        while time.monotonic() < deadline:
            if self._done.wait(0.1) or not _alive(self.pid):
                return
        if _alive(self.pid):
            self._signal(signal.SIGKILL)
            if self._facts is not None:
                self._facts = replace(self._facts, escalated=True)

    def _signal(self, signum: int) -> None:
        if self._stop_child is not None:
            self._stop_child(signum)
            return
        try:
            group = os.getpgid(self.pid)
            # never signal our own group: the child shares it, so only its tree
            if group == os.getpgrp():
                for pid in self._sampler.tree_pids() or (self.pid,):
                    os.kill(pid, signum)
            else:
                os.killpg(group, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _alive(pid: int) -> bool:
    stat = read_stat(pid)
    return stat is not None and stat.state != "Z"
