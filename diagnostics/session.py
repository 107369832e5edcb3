"""One live run from start to diagnosis: launch the child, collect evidence while it runs, judge it at the end."""

from __future__ import annotations

import dataclasses
import datetime
import threading
from collections.abc import Callable
from dataclasses import dataclass

from . import __version__
from .classify import classify
from .evidence import Evidence, LogLine
from .launch import Child, LaunchRequest
from .verdict import Diagnosis


@dataclass(frozen=True)
class RunRequest:
    """Everything `trainwatch run` was asked to do, parsed and resolved."""

    argv: tuple[str, ...]  # what to execute
    env: dict[str, str]
    log_path: str | None = None
    probe: bool = True
    keep_artifacts: bool = False
    sample_interval: float = 0.5
    signature_files: tuple[str, ...] = ()
    stall_timeout: float | None = None  # seconds without output, progress or CPU before the run counts as stuck
    on_stall: str = "auto"  # "auto": stop an idle stall, only report a busy one; "kill": stop both; "report": neither


class OutputObservers:
    """Hands each line of the child's output to the log parser and the progress tracker.

    stdout and stderr get a log parser each: a program's buffered stdout can land in the middle of a traceback
    that it writes to stderr, and a traceback read across the two streams would be cut in half.
    """

    def __init__(self, knowledge) -> None:
        from .logparse import LogParser
        from .progress import ProgressTracker

        self.parsers = {"stdout": LogParser(knowledge), "stderr": LogParser(knowledge)}
        self.progress = ProgressTracker()
        self._lock = threading.Lock()

    def __call__(self, line: LogLine) -> None:
        self.parsers[line.stream].feed(line)
        with self._lock:  # the stall watcher reads the tracker from its own thread
            self.progress.feed(line)

    def log_facts(self):
        """The facts of both streams as one log: stderr's first, since that is where failures are written."""
        err, out = self.parsers["stderr"].finish(), self.parsers["stdout"].finish()
        merged = {}
        for f in dataclasses.fields(err):
            a, b = getattr(err, f.name), getattr(out, f.name)
            if isinstance(a, tuple):
                merged[f.name] = a + b
            elif f.name == "lines" or f.name == "dropped_chains":
                merged[f.name] = a + b
            else:
                merged[f.name] = a if a is not None else b
        return dataclasses.replace(err, **merged)


def run_session(request: RunRequest, on_started: Callable[[], None] | None = None) -> Diagnosis:
    """Run the child to its end and diagnose it. Raises OSError when it cannot be started.

    `on_started` runs in a background thread once the child runs: the CLI uses it to import its report renderer
    while the child works rather than after it ends.
    """
    from .signatures import load_knowledge

    knowledge = load_knowledge(extra_files=request.signature_files)
    observers = OutputObservers(knowledge)
    env = dict(request.env)
    probe = None
    if request.probe:
        from .probe import ProbeSession

        probe = ProbeSession.create(keep_artifacts=request.keep_artifacts, base_env=env)
        env.update(probe.env)
    child = Child(LaunchRequest(argv=request.argv, env=env, log_path=request.log_path), [observers])
    try:
        child.start()
    except BaseException:
        if probe is not None:
            probe.cleanup()
        raise
    if on_started is not None:
        threading.Thread(target=on_started, name="trainwatch-warmup", daemon=True).start()
    from .monitor import Monitor

    monitor = Monitor.start(child.pid, request.sample_interval)
    watcher = _start_stall_watcher(request, child, observers, probe)
    try:
        result = child.wait()
    finally:
        memory = monitor.stop()
        stall = watcher.close() if watcher is not None else None
    probe_facts = None
    notes: list[str] = []
    if probe is not None:
        probe_facts = probe.collect()
        probe.cleanup()
        if not probe_facts.loaded:
            notes.append("no Python process of the run loaded the probe (not Python, or run with -I/-E/-S); "
                         "the diagnosis rests on outside evidence")
    else:
        notes.append("the probe was off (--no-probe)")
    with observers._lock:
        progress = observers.progress.finish()
    evidence = Evidence(
        source="run",
        command=request.argv,
        exit=result.exit,
        log=observers.log_facts(),
        probe=probe_facts,
        memory=memory,
        progress=progress,
        stall=stall,
        forwarded_signals=result.forwarded_signals,
        notes=tuple(notes) + tuple(getattr(memory, "notes", ()) or ()),
    )
    return Diagnosis(
        trainwatch_version=__version__,
        command=request.argv,
        started_at=_iso(result.started_at),
        duration_s=result.duration_s,
        exit=result.exit,
        verdict=classify(evidence, knowledge),
        evidence=evidence,
    )


def _start_stall_watcher(request: RunRequest, child: Child, observers: OutputObservers, probe):
    """Watch for a run that stopped making progress, when asked to (`--stall-timeout`)."""
    if not request.stall_timeout:
        return None
    from .stall import StallWatcher

    def position() -> str | None:
        with observers._lock:
            return observers.progress.finish().stopped_at

    return StallWatcher(
        child.pid, request.stall_timeout,
        activity=lambda: child.last_output_at,
        on_stall=request.on_stall,
        stacks=probe.request_stacks if probe is not None else None,
        stop=child.signal_group,
        position=position,
    ).start()


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat(timespec="seconds")
