"""The probe's parent side for one run: the private directory, the child's environment, stack
requests, reading.

Stack dumps on request use a real-time signal that the probe registers with
`faulthandler.register` in every process (fresh interpreters and forks alike). The dump is
written by faulthandler's C signal handler, which does not need the GIL, so it works in exactly
the case a hang diagnosis needs most: a main thread stuck in native code that holds the GIL (a
`.item()` waiting on a stuck collective), where a polling thread would never run. The parent
signals only a process whose handshake it holds, whose start time (/proc/PID/stat) still matches,
and whose caught-signal mask (/proc/PID/status SigCgt) shows the handler installed: a real-time
signal's default action is to terminate, so a process that did not install it is never signalled.
The signal interrupts blocking system calls, as any Python signal handler does; that is why it is
sent only on request.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

TYPE_CHECKING = False  # not typing's: imported before the program starts (diagnostics/startup.py)
if TYPE_CHECKING:  # the readers are imported when first used: the run's start-up needs none of them
    from trainwatch.diagnostics.watch.probe.records import ProbeFacts, ProbeProcess, ProcessStacks

CHILD_SOURCE = Path(__file__).with_name("sitecustomize.py")
# the child skips a sitecustomize beside this file (a nested run's outer probe)
MARKER = "trainwatch-probe"
# SIGRTMIN+7 (41 on Linux/glibc): real-time signals are rarely used by programs, and glibc keeps the
# ones below SIGRTMIN for itself. None where the platform has no real-time signals: no stack dumps
# there.
STACK_SIGNAL = signal.SIGRTMIN + 7 if hasattr(signal, "SIGRTMIN") else None
# a dump whose size has not changed for this long is complete (faulthandler writes in microseconds)
_SETTLE_S = 0.03


class ProbeSession:
    """A private probe directory for one run, and the environment that makes the child's Pythons
    load the probe.
    """

    def __init__(
        self, root: Path, keep_artifacts: bool, env: dict[str, str], stack_signal: int | None
    ) -> None:
        self.root = root
        self.site_dir = root / "site"
        self.records_dir = root / "records"
        self.keep_artifacts = keep_artifacts
        self.env = env
        self.stack_signal = stack_signal
        self._stacks: tuple[ProcessStacks, ...] = ()

    @classmethod
    def create(
        cls, keep_artifacts: bool = False, base_env: Mapping[str, str] | None = None
    ) -> ProbeSession:
        """Make the private directory (mode 0700) with a copy of the probe, and the child's extra
        environment.

        `base_env` is the environment the child will otherwise get (default: ours); its
        PYTHONPATH follows the probe's directory, so the user's own entries keep their order.
        """
        root = _private_directory()
        site_dir, records_dir = root / "site", root / "records"
        try:
            site_dir.mkdir(mode=0o700)
            records_dir.mkdir(mode=0o700)
            child = site_dir / "sitecustomize.py"
            child.write_bytes(CHILD_SOURCE.read_bytes())
            # the source's mtime, which the bytecode's header is checked against
            source = CHILD_SOURCE.stat()
            os.utime(child, ns=(source.st_atime_ns, source.st_mtime_ns))
            (site_dir / MARKER).write_text("trainwatch probe directory\n")
        except OSError:
            # a full or read-only temporary directory, a file-size limit: a probe cut short would
            # fail in the child, so there is none (the caller runs the program without it)
            import shutil

            shutil.rmtree(root, ignore_errors=True)
            raise
        _place_bytecode(child)
        base = os.environ if base_env is None else base_env
        user_path = base.get("PYTHONPATH", "")
        # An empty entry would mean the current directory: only join when the user had a PYTHONPATH.
        python_path = str(site_dir) + (os.pathsep + user_path if user_path else "")
        env = {"PYTHONPATH": python_path, "TRAINWATCH_PROBE_DIR": str(records_dir)}
        if STACK_SIGNAL is not None:
            env["TRAINWATCH_PROBE_SIGNAL"] = str(int(STACK_SIGNAL))
        return cls(root, keep_artifacts, env, None if STACK_SIGNAL is None else int(STACK_SIGNAL))

    @classmethod
    def attach(cls, records_dir: Path) -> ProbeSession:
        """The probe directory of a run that another trainwatch watches (`trainwatch dump`): to
        read its handshakes and ask its processes for stacks; never removed from here."""
        return cls(records_dir.parent, keep_artifacts=True, env={}, stack_signal=None)

    def processes(self) -> tuple[ProbeProcess, ...]:
        """The handshakes so far: every process that has loaded the probe (alive or not)."""
        from trainwatch.diagnostics.watch.probe.records import process_from, read_lines

        found = []
        for path in sorted(self.records_dir.glob("*.jsonl")):
            for record in read_lines(path):
                if record.get("kind") == "hello":
                    found.append(process_from(record))
                    break
        return tuple(found)

    def request_stacks(self, timeout: float = 1.0) -> tuple[ProcessStacks, ...]:
        """Ask every live probed process for the stacks of all its threads; return what arrived
        within `timeout`.
        """
        from trainwatch.diagnostics.read.dumps import parse_dump
        from trainwatch.diagnostics.watch.probe.records import ProcessStacks

        targets = []
        for proc in self.processes():
            if not proc.stack_signal or not proc.traceback_file or not _answers(proc):
                continue
            path = self.records_dir / proc.traceback_file
            try:
                start = path.stat().st_size
                os.kill(proc.pid, proc.stack_signal)
            except OSError:  # gone since, or not ours to signal
                continue
            targets.append(
                {
                    "proc": proc,
                    "path": path,
                    "start": start,
                    "size": start,
                    "since": time.monotonic(),
                }
            )
        deadline = time.monotonic() + timeout
        pending = list(targets)
        while pending and time.monotonic() < deadline:
            time.sleep(0.01)
            now = time.monotonic()
            for target in list(pending):
                size = _size(target["path"])
                if size != target["size"]:
                    target["size"], target["since"] = size, now
                elif size > target["start"] and now - target["since"] >= _SETTLE_S:
                    target["done"] = True
                    pending.remove(target)
        stacks = []
        for target in targets:
            proc = target["proc"]
            text = _read_from(target["path"], target["start"])
            threads = parse_dump(text, proc.library_dirs, proc.main_thread)
            if threads or target.get("done"):
                stacks.append(
                    ProcessStacks(proc.pid, proc.rank, threads, complete=bool(target.get("done")))
                )
        self._stacks = tuple(stacks)
        return self._stacks

    def collect(self, ended_at: float | None = None) -> ProbeFacts:
        """Read everything the run's processes recorded (call after the child has ended, at
        `ended_at`, wall time: exceptions raised after it are left out)."""
        from trainwatch.diagnostics.watch.probe.records import read_records

        return read_records(self.records_dir, self._stacks, ended_at=ended_at)

    def cleanup(self) -> None:
        """Remove the directory, unless the artifacts are to be kept (`--keep-artifacts`)."""
        if not self.keep_artifacts:
            import shutil  # not at start-up: it loads bz2 and lzma (docs/architecture.md)

            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ProbeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _private_directory() -> Path:
    """A new directory of mode 0700, ours alone, under the temporary directory: what
    tempfile.mkdtemp makes, without importing tempfile (and shutil, random, hashlib with it)
    before the program starts; mkdtemp itself where none of the usual places will do."""
    for base in (os.environ.get(name) for name in ("TMPDIR", "TEMP", "TMP")):
        if base:
            break
    else:
        base = "/tmp"
    for _ in range(8):
        path = Path(base) / f"trainwatch-probe-{os.urandom(6).hex()}"
        try:
            path.mkdir(mode=0o700)  # fails on anything already there: a planted link included
            return path
        except FileExistsError:
            continue
        except OSError:
            break
    import tempfile

    return Path(tempfile.mkdtemp(prefix="trainwatch-probe-"))


def _bytecode_path(source: Path) -> Path:
    """Where Python looks for the bytecode of `source` (importlib.util.cache_from_source)."""
    return source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"


def _place_bytecode(child: Path) -> None:
    """Give a child of our own Python version the probe already compiled, so it does not compile it
    at start-up: a copy of the bytecode pip compiled when it installed trainwatch, else compiled
    here (a checkout).
    """
    if sys.implementation.cache_tag is None:
        return  # this Python writes no bytecode
    compiled = _bytecode_path(child)
    try:
        installed = _bytecode_path(CHILD_SOURCE).read_bytes()
    except OSError:
        installed = None
    try:
        compiled.parent.mkdir(mode=0o700, exist_ok=True)
        if installed is not None:
            compiled.write_bytes(installed)
            return
    except OSError:
        # a copy cut short (a full disk, `ulimit -f`) would fail the child's import of the probe,
        # out loud in its stderr: none at all lets the child compile the source in memory (and
        # py_compile's one unchecked write would cut its file short the same way)
        with contextlib.suppress(OSError):
            compiled.unlink(missing_ok=True)
        return
    import py_compile

    try:
        py_compile.compile(str(child), cfile=str(compiled), doraise=True)
    except (py_compile.PyCompileError, OSError):
        pass


def _answers(proc: ProbeProcess) -> bool:
    """Is this pid still the process that sent the handshake, alive, with the stack handler
    installed?
    """
    if proc.start_ticks is None or proc.stack_signal <= 0:
        return False
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_bytes()
        fields = stat.rsplit(b")", 1)[1].split()
        if fields[0] in (b"Z", b"X") or int(fields[19]) != proc.start_ticks:
            return False
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (proc.stack_signal - 1) & 1)
    except (OSError, ValueError, IndexError):
        return False
    return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
