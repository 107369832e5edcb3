"""The address-space limit of the run's processes (RLIMIT_AS, `ulimit -v`): read from
`/proc/<pid>/limits` while they live, with how close their virtual size came to it.

An allocation refused under RLIMIT_AS looks like any out-of-memory error from inside the process,
while the machine and the cgroup still have plenty: only the process's own limit explains it.
The limit can be inherited (`ulimit -v` in a job script) or set by the program itself
(`resource.setrlimit`), so the root process is read at every sample and every other process
when it is first seen, and again every few samples while it has none (proc(5): `Max address
space`, soft limit first, in bytes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class AddressLimit:
    """One process of the run that ran under a finite address-space limit."""

    pid: int
    limit_bytes: int  # the soft limit: what an allocation fails against
    peak_virtual_bytes: int | None  # its largest virtual size seen (VmSize)
    source: str  # "/proc/4242/limits"

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "limit_bytes": self.limit_bytes,
            "peak_virtual_bytes": self.peak_virtual_bytes,
            "source": self.source,
        }


def read_address_limit(pid: int, proc: str = "/proc") -> int | None:
    """The soft RLIMIT_AS of `pid` in bytes; None when unlimited or unreadable."""
    try:
        with open(f"{proc}/{pid}/limits") as handle:
            for line in handle:
                if line.startswith("Max address space"):
                    soft = line[len("Max address space") :].split()[0]
                    return None if soft == "unlimited" else int(soft)
    except (OSError, ValueError, IndexError):
        return None
    return None


def read_virtual_bytes(pid: int, proc: str = "/proc") -> int | None:
    """The virtual size of `pid` (`/proc/<pid>/statm`'s first field); None when gone."""
    try:
        with open(f"{proc}/{pid}/statm") as handle:
            return int(handle.read().split()[0]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


INHERITED = "inherited: trainwatch's own limit (ulimit -v) when it started the run"


def own_address_limit() -> int | None:
    """trainwatch's own soft RLIMIT_AS, which the run inherits; None when unlimited."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


# A process other than the root may set its own limit after it starts (a torchrun rank calling
# `resource.setrlimit` first thing, forty-third session's real runs: read only when first seen, it
# was missed); one seen without a limit is read again every this many samples.
REREAD_EVERY = 4


class AddressLimits:
    """Follows the address-space limits of a process tree, sample by sample.

    A run that fails before the first sample still had the limit it inherited from trainwatch
    (`ulimit -v` in the job script): that one stands for the root when it was never read."""

    def __init__(self, root: int, proc: str = "/proc", inherited: int | None = None) -> None:
        self.root = root
        self._proc = proc
        self._inherited = inherited
        self._limits: dict[int, int | None] = {}  # pid -> its limit when last read
        self._peaks: dict[int, int] = {}
        self._updates = 0

    def update(self, pids: tuple[int, ...]) -> None:
        """Read the limits of the root and of pids not seen before (again, every REREAD_EVERY
        updates, of those seen without one), and the virtual size of every process that has a
        limit."""
        self._updates += 1
        again = self._updates % REREAD_EVERY == 0
        for pid in pids:
            if pid == self.root or pid not in self._limits or (again and self._limits[pid] is None):
                limit = read_address_limit(pid, self._proc)
                if limit is not None or pid not in self._limits:
                    self._limits[pid] = limit
            if self._limits.get(pid) is not None:
                size = read_virtual_bytes(pid, self._proc)
                if size is not None and size > self._peaks.get(pid, 0):
                    self._peaks[pid] = size

    def facts(self) -> tuple[AddressLimit, ...]:
        """Every process seen with a finite limit, the root first."""
        found = tuple(
            AddressLimit(pid, limit, self._peaks.get(pid), f"{self._proc}/{pid}/limits")
            for pid, limit in sorted(self._limits.items(), key=lambda kv: kv[0] != self.root)
            if limit is not None
        )
        if self.root not in self._limits and self._inherited is not None:
            found = (AddressLimit(self.root, self._inherited, None, INHERITED),) + found
        return found
