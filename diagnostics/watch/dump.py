"""The stacks of a live run's processes, on request (`trainwatch dump`), without stopping it.

Every process of the run that loaded the probe answers through the probe's stack signal
(faulthandler writes the dump from a C signal handler, so a rank stuck in a collective with the
GIL held still answers; diagnostics/watch/probe/parent.py). The rest of the run's process tree (a
shell wrapper, a process started with `python -I`) is described by the kernel's wait channel, or
by py-spy when it is installed and the process is Python. A Python process that is not part of a
run under trainwatch can only be read from outside: py-spy again, or a hint of how to get it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainwatch.diagnostics.read.frames import ThreadStack, forward_slashes
from trainwatch.diagnostics.watch.sampling import TreeSampler, read_cmdline, read_stat
from trainwatch.diagnostics.watch.stall import classify_wait, describe_wait, wait_from_wchan

STACKS_TIMEOUT_S = 2.0  # how long the probed processes get to answer
PY_SPY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ProcessDump:
    """One process of the run: its Python threads, or what the kernel says it waits for."""

    pid: int
    command: str | None
    source: str  # "probe", "py-spy", or "kernel" (no Python stack)
    rank: int | None = None
    forked: bool = False  # a fork of a probed process (a DataLoader worker under fork)
    threads: tuple[ThreadStack, ...] = ()
    complete: bool = True  # the probe's dump had settled when it was read
    kernel_wait: str | None = None  # "kernel: do_wait", "state R"
    text: str | None = None  # py-spy's own output
    note: str | None = None  # why there is no Python stack

    @property
    def dataloader_worker(self) -> bool:
        """Is it a DataLoader's worker (its stack runs the worker loop)? A forked process may be
        any `multiprocessing.Process` too."""
        return any(
            "torch/utils/data/_utils/worker.py" in forward_slashes(frame.file)
            for thread in self.threads
            for frame in thread.frames
        )

    def to_dict(self) -> dict[str, Any]:
        threads = []
        for thread in self.threads:
            kind, where = classify_wait(thread.frames)
            threads.append(
                {
                    **thread.to_dict(),
                    "wait": {"kind": kind, "description": describe_wait(kind), "where": where},
                }
            )
        return {
            "pid": self.pid,
            "command": self.command,
            "source": self.source,
            "rank": self.rank,
            "forked": self.forked,
            "dataloader_worker": self.dataloader_worker,
            "complete": self.complete,
            "threads": threads,
            "kernel_wait": self.kernel_wait,
            "text": self.text,
            "note": self.note,
        }


def dump_run(
    child_pid: int,
    probe_dir: str | None,
    timeout: float = STACKS_TIMEOUT_S,
    py_spy: str | None = None,
    proc: str = "/proc",
) -> tuple[ProcessDump, ...]:
    """Every process of the run whose root is `child_pid`, the root first."""
    from trainwatch.diagnostics.watch.probe.parent import ProbeSession

    session = ProbeSession.attach(Path(probe_dir)) if probe_dir else None
    stacks = session.request_stacks(timeout) if session is not None else ()
    probed = {p.pid: p for p in session.processes()} if session is not None else {}
    sampler = TreeSampler(child_pid, proc)
    sampler.sample()
    tree = list(sampler.tree_pids())
    by_pid: dict[int, ProcessDump] = {}
    for answer in stacks:
        hello = probed.get(answer.pid)
        by_pid[answer.pid] = ProcessDump(
            answer.pid,
            read_cmdline(answer.pid, proc),
            "probe",
            rank=answer.rank,
            forked=bool(hello and hello.forked),
            threads=answer.threads,
            complete=answer.complete,
        )
    for pid in tree:
        if pid in by_pid:
            continue
        stat = read_stat(pid, proc)
        if stat is None or stat.state in ("Z", "X"):
            continue
        command = read_cmdline(pid, proc)
        if pid in probed:
            note = f"the probe is loaded but did not answer within {timeout:g} s"
        elif probe_dir is None:
            note = "the probe was off (--no-probe)"
        else:
            note = "no probe in this process (not Python, or Python run with -I, -E or -S)"
        if py_spy is not None and _looks_python(command, stat.name):
            status, text = py_spy_dump(py_spy, pid)
            if status == 0:
                by_pid[pid] = ProcessDump(pid, command, "py-spy", text=text)
                continue
        found = wait_from_wchan(pid, proc)
        where = found[1] if found else ("running" if stat.state == "R" else f"state {stat.state}")
        by_pid[pid] = ProcessDump(pid, command, "kernel", kernel_wait=where, note=note)
    order = {pid: n for n, pid in enumerate(tree)}
    return tuple(sorted(by_pid.values(), key=lambda d: (order.get(d.pid, len(order)), d.pid)))


def find_py_spy() -> str | None:
    """py-spy on PATH (`pip install py-spy` puts it beside the Python that installed it)."""
    return shutil.which("py-spy")


def py_spy_dump(py_spy: str, pid: int, timeout: float = PY_SPY_TIMEOUT_S) -> tuple[int, str]:
    """(py-spy's status, its output) for `py-spy dump --pid PID`."""
    try:
        done = subprocess.run(
            [py_spy, "dump", "--pid", str(pid)],
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return 124, f"py-spy did not answer within {timeout:g} s"
    except OSError as exc:
        return 127, f"cannot run py-spy: {exc.strerror or exc}"
    text = (done.stdout or done.stderr).decode("utf-8", "replace")
    if done.returncode != 0:
        first = done.stderr.decode("utf-8", "replace").strip().splitlines()
        text = first[0] if first else text
    return done.returncode, text


def _looks_python(command: str | None, name: str) -> bool:
    return "python" in name or bool(command and "python" in command.split(" ", 1)[0])
