"""The per-user registry of live runs: one small JSON file per run in a private directory, written
by the run's trainwatch while it lives, read by `trainwatch ps` and `trainwatch dump`.

Where: `$XDG_RUNTIME_DIR/trainwatch` when that runtime directory is set and ours (systemd's
per-user tmpfs, removed at logout), else `/tmp/trainwatch-$UID`; created with mode 0700 and used
only while it is a real directory (no link), owned by us, that nobody else can enter: a directory
someone else made could feed `dump` a records path of their choosing. Each file is
`<trainwatch pid>.json`, mode 0600, replaced whole (a temporary file, then rename) every REFRESH_S
seconds with the run's status, and removed when the run ends. A file whose trainwatch is gone
(killed with SIGKILL, a crash) is stale: recognised by its pid no longer running with the start
time it recorded (/proc/PID/stat, field 22), ignored, and removed.

Imported in a thread after the child has started: registering costs a run nothing before it.
"""

from __future__ import annotations

import json
import math
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainwatch.diagnostics.watch.sampling import read_stat

SCHEMA = "trainwatch.run/1"
REFRESH_S = 2.0


class RegistryUnavailable(Exception):
    """The registry directory cannot be used safely; the message says why."""


def registry_dir(env: Mapping[str, str] | None = None, uid: int | None = None) -> Path:
    """Where this user's runs register (it may not exist yet)."""
    env = os.environ if env is None else env
    uid = os.getuid() if uid is None else uid
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        try:
            info = os.stat(runtime)
            if stat.S_ISDIR(info.st_mode) and info.st_uid == uid:
                return Path(runtime) / "trainwatch"
        except OSError:
            pass
    return Path("/tmp") / f"trainwatch-{uid}"


def open_registry(env: Mapping[str, str] | None = None, create: bool = True) -> Path:
    """The registry directory, created if asked; RegistryUnavailable when it is not private."""
    path = registry_dir(env)
    if create:
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise RegistryUnavailable(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise RegistryUnavailable(f"{path} does not exist: no run has registered") from None
    except OSError as exc:
        raise RegistryUnavailable(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise RegistryUnavailable(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise RegistryUnavailable(f"{path} belongs to another user")
    if info.st_mode & 0o077:
        try:
            os.chmod(path, 0o700)  # ours, but opened up: close it again
        except OSError as exc:
            raise RegistryUnavailable(f"{path} is open to others: {exc.strerror}") from None
    return path


def start_ticks(pid: int, proc: str = "/proc") -> int | None:
    """The process's start time in clock ticks since boot: with the pid, it names one process."""
    found = read_stat(pid, proc)
    return None if found is None or found.state in ("Z", "X") else found.starttime


@dataclass(frozen=True)
class RunEntry:
    """One live run as its registry file describes it."""

    id: str  # trainwatch's pid, as `ps` shows it and `dump` takes it
    pid: int  # trainwatch's
    start_ticks: int
    child_pid: int
    command: tuple[str, ...]  # redacted
    cwd: str
    host: str
    started_at: float  # epoch seconds
    probe_dir: str | None  # the probe's records directory: `dump` asks the processes there
    status: dict[str, Any]  # what the run knows now (see `Registration`)
    updated_at: float
    path: Path

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path) -> RunEntry:
        return cls(
            id=str(data["pid"]),
            pid=int(data["pid"]),
            start_ticks=int(data["start_ticks"]),
            child_pid=int(data["child_pid"]),
            command=tuple(str(a) for a in data.get("command") or ()),
            cwd=str(data.get("cwd") or ""),
            host=str(data.get("host") or ""),
            started_at=float(data.get("started_at") or 0.0),
            probe_dir=data.get("probe_dir") if isinstance(data.get("probe_dir"), str) else None,
            status=data.get("status") if isinstance(data.get("status"), dict) else {},
            updated_at=float(data.get("updated_at") or 0.0),
            path=path,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pid": self.pid,
            "child_pid": self.child_pid,
            "command": list(self.command),
            "cwd": self.cwd,
            "host": self.host,
            "started_at": self.started_at,
            "running_s": round(max(time.time() - self.started_at, 0.0), 1),
            "probe_dir": self.probe_dir,
            "status": self.status,
            "updated_at": self.updated_at,
        }


def live_runs(directory: Path, proc: str = "/proc") -> list[RunEntry]:
    """The live runs registered in `directory`, oldest first; stale and unreadable files are
    skipped, and stale ones removed."""
    entries = []
    for path in sorted(directory.glob("*.json")):
        try:
            entry = RunEntry.from_dict(json.loads(path.read_text()), path)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being replaced right now, or not ours to read
        if start_ticks(entry.pid, proc) != entry.start_ticks:
            try:
                path.unlink()
            except OSError:
                pass
            continue
        entries.append(entry)
    return sorted(entries, key=lambda e: e.started_at)


def run_of(entries: list[RunEntry], pid: int, proc: str = "/proc") -> RunEntry | None:
    """The run `pid` names: a run's id (trainwatch's pid), or any process of its tree (its
    program, a rank, a DataLoader worker), found by walking up the parents."""
    for entry in entries:
        if entry.pid == pid:
            return entry
    by_child = {e.child_pid: e for e in entries}
    seen: set[int] = set()
    current: int | None = pid
    while current and current > 1 and current not in seen:
        if current in by_child:
            return by_child[current]
        seen.add(current)
        stat = read_stat(current, proc)
        current = None if stat is None else stat.ppid
    return None


class Registration:
    """This run's registry file, refreshed every REFRESH_S seconds by `serve()` until `closed` is
    set, then removed.

    `status()` returns what the run knows now (position, last loss, memory, a stall, a NaN); an
    error in it only skips that refresh.
    """

    def __init__(
        self,
        directory: Path,
        child_pid: int,
        command: tuple[str, ...],
        probe_dir: str | None,
        status: Callable[[], dict[str, Any]],
        closed: threading.Event,
    ) -> None:
        self.pid = os.getpid()
        self.path = directory / f"{self.pid}.json"
        self._status = status
        self._closed = closed
        self._fixed = {
            "schema": SCHEMA,
            "pid": self.pid,
            "start_ticks": start_ticks(self.pid),
            "child_pid": child_pid,
            "command": list(command),
            "cwd": os.getcwd(),
            "host": socket.gethostname(),
            "started_at": time.time(),
            "probe_dir": probe_dir,
        }

    def serve(self) -> None:
        """Write the file now and every REFRESH_S seconds; remove it once `closed` is set."""
        try:
            while True:
                try:
                    self.write()
                except Exception:
                    pass
                if self._closed.wait(REFRESH_S):
                    return
        finally:
            try:
                self.path.unlink()
            except OSError:
                pass

    def write(self) -> None:
        """Replace the file with the run's status now (never a half-written file)."""
        data = {**self._fixed, "status": _plain(self._status()), "updated_at": time.time()}
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        os.replace(temporary, self.path)


def _plain(value: Any) -> Any:
    """JSON-safe: a NaN or infinite loss becomes "nan", "inf", "-inf" (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
