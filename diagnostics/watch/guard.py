"""No child left behind: the guard process that outlives a killed trainwatch, and the stop of what
the child left in its process group when it ends."""

from __future__ import annotations

import os
import signal
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


def reap_group(pgid: int, grace_s: float) -> tuple[int, ...]:
    """Stop what is left of the child's process group (SIGTERM, then SIGKILL after `grace_s`):
    trainwatch never leaves a process behind. Returns the pids that were left."""
    try:
        os.killpg(pgid, 0)  # cheap test first: scanning /proc costs milliseconds per hundred pids
    except (ProcessLookupError, PermissionError):
        return ()
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
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry))
    return tuple(members)
