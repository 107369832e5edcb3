"""No child left behind: the guard process that outlives a killed trainwatch, and the stop of what
the child left when it ends, in its process group or (adopted) outside it."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterable


class Guard:
    """A tiny forked process that kills the child's process group, and removes `cleanup_paths`
    (the probe's directory, which holds the unredacted command line), when trainwatch dies without
    saying goodbye (SIGKILL). It holds the read end of a pipe whose write end only trainwatch has:
    EOF means trainwatch is gone; a byte means all is well."""

    def __init__(self, pid: int, write_end: int) -> None:
        self.pid = pid
        self._write_end = write_end

    @classmethod
    def start(cls, pgid: int, cleanup_paths: tuple[str, ...], ignored: Iterable[int]) -> Guard:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the guard: no Python cleanup, no threads, only a blocking read
            try:
                # its own process group: a kill sent to trainwatch's group (`timeout -k`'s SIGKILL,
                # a job control's) must not take the guard with it, or the child's group, which is
                # its own, would outlive them both
                os.setpgid(0, 0)
                for signum in ignored:  # signals for the child's group, not for the guard
                    signal.signal(signum, signal.SIG_IGN)
                os.closerange(3, read_end)
                os.closerange(read_end + 1, 65536)
                os.close(0), os.close(1), os.close(2)
                message = os.read(read_end, 1)
                if message != b"x":  # EOF: trainwatch is gone without saying goodbye
                    try:
                        os.killpg(pgid, signal.SIGKILL)
                    except OSError:
                        pass
                    _remove_dirs(cleanup_paths, pgid)
            except BaseException:
                pass
            os._exit(0)
        os.close(read_end)
        return cls(pid, write_end)

    def stop(self) -> None:
        """trainwatch lives to the end: tell the guard, and wait for it to go."""
        try:
            os.write(self._write_end, b"x")
            os.close(self._write_end)
            os.waitpid(self.pid, 0)
        except OSError:
            pass


def _remove_dirs(paths: tuple[str, ...], pgid: int) -> None:
    """The guard's last act: remove `paths`, again once the killed group is gone (a process killed
    mid-write can still create a file in them)."""
    for _ in range(2):
        for path in paths:
            import shutil  # here, not at start-up: it loads bz2 and lzma (docs/architecture.md)

            shutil.rmtree(path, ignore_errors=True)
        for _ in range(20):
            try:
                os.killpg(pgid, 0)
            except OSError:
                break
            time.sleep(0.05)


SETTLE_S = 0.2  # how long what the child left may take to end by itself before it is stopped


def reap_group(pgid: int, grace_s: float) -> tuple[int, ...]:
    """Stop what is left of the child's process group (SIGTERM, then SIGKILL after `grace_s`):
    trainwatch never leaves a process behind. Returns the pids that were left."""
    try:
        os.killpg(pgid, 0)  # cheap test first: scanning /proc costs milliseconds per hundred pids
    except (ProcessLookupError, PermissionError):
        return ()
    survivors = group_members(pgid)
    # what is ending already is no leftover: a DataLoader worker still leaving after the stop
    # signal its group got, on a loaded machine (a golden run's report once said one was "left
    # running")
    deadline = time.monotonic() + SETTLE_S
    while survivors and time.monotonic() < deadline:
        time.sleep(0.02)
        survivors = group_members(pgid)
    if not survivors:
        return ()
    _signal(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and group_members(pgid):
        time.sleep(0.05)
    if group_members(pgid):
        _signal(pgid, signal.SIGKILL)
    return survivors


def _signal(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def group_members(pgid: int) -> tuple[int, ...]:
    """Live (non-zombie) processes whose process group is `pgid`, read from /proc."""
    return tuple(pid for pid, alive, _, group in _processes() if alive and group == pgid)


# <linux/prctl.h>: a process marked so adopts its orphaned descendants in place of init
PR_SET_CHILD_SUBREAPER = 36
# An adopted daemon's own children are adopted in turn when it is stopped: rounds of stopping
ADOPTION_ROUNDS = 3


def adopt_orphans() -> bool:
    """Make trainwatch the subreaper of the run (prctl(2), Linux 3.4 and later): a process of the
    run whose parent ends is then re-parented to trainwatch rather than to init, so one that left
    the child's process group (a daemon started with `setsid` or `start_new_session`) is still
    found when the run ends. The mark counts when a parent dies, not when a process starts, so it
    is set once the child has started, off the path to its first line (ctypes costs ~2 ms)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_adopted(grace_s: float, keep: Iterable[int]) -> tuple[int, ...]:
    """Stop the run's processes that trainwatch adopted (adopt_orphans): SIGTERM, then SIGKILL
    after `grace_s`, then wait for them, so that none is left running or as a zombie; an adopted
    process that already ended is only waited for. Its own children are adopted when it is stopped,
    so this goes round again. `keep`: trainwatch's own children (the guard). Returns the pids that
    were still running."""
    keep = frozenset(keep)
    stopped: list[int] = []
    for _ in range(ADOPTION_ROUNDS):
        adopted = [(pid, alive) for pid, alive in _children() if pid not in keep]
        running = [pid for pid, alive in adopted if alive]
        for pid in running:
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while running and time.monotonic() < deadline:
            running = [pid for pid in running if not _ended(pid)]
            time.sleep(0.05)
        for pid in running:
            _kill(pid, signal.SIGKILL)
        for pid, _ in adopted:
            _wait(pid)
        stopped += [pid for pid, alive in adopted if alive]
        if not adopted:
            break
    return tuple(stopped)


def wait_for_ended_adoptees(keep: Iterable[int]) -> None:
    """Wait for the adopted processes that have ended while the run goes on (zombies until then).
    `keep`: the child, whose status subprocess waits for, and the guard. Any other child of
    trainwatch is taken for an adopted one: trainwatch starts no process of its own while the run
    goes on (a `subprocess.run` in a thread would lose its status here)."""
    keep = frozenset(keep)
    for pid, alive in _children():
        if not alive and pid not in keep:
            _ended(pid)


def _children() -> list[tuple[int, bool]]:
    """trainwatch's child processes, each with whether it is still running (not a zombie)."""
    me = os.getpid()
    return [(pid, alive) for pid, alive, parent, _ in _processes() if parent == me]


def _processes():
    """(pid, running, parent pid, process group) of every process, read from /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # after the name in parentheses: state, ppid, pgrp (proc(5))
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2:
            yield int(entry), fields[0] not in (b"Z", b"X"), int(fields[1]), int(fields[2])


def _ended(pid: int) -> bool:
    """Has this child of trainwatch ended (it is then waited for)?"""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return True


def _wait(pid: int) -> None:
    """Wait for a child of trainwatch that was killed or has ended (bounded: a process in an
    uninterruptible sleep cannot die at once)."""
    for _ in range(40):
        if _ended(pid):
            return
        time.sleep(0.025)


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
