"""One live run from start to diagnosis: launch the child, collect evidence while it runs, judge it
at the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from trainwatch.diagnostics import __version__
from trainwatch.diagnostics.startup import startup_record
from trainwatch.diagnostics.watch.child import Child, LaunchRequest, LaunchResult
from trainwatch.diagnostics.watch.observers import OutputObservers

TYPE_CHECKING = False  # not typing's: imported before the program starts (diagnostics/startup.py)
if TYPE_CHECKING:  # imported for real only when the run asked for live events / once it ended
    from trainwatch.diagnostics.evidence import Evidence, ExceptionChain
    from trainwatch.diagnostics.verdict import Diagnosis
    from trainwatch.diagnostics.watch.alerts import LiveAlerts, LiveEvent
    from trainwatch.diagnostics.watch.probe.records import LoaderPasses

# A GPU this busy is computing: a run whose CPU is idle while it waits on the GPU is not stuck.
GPU_BUSY_PCT = 5
# Work beside the run that can wait (the CLI's warm-up importing the report's modules, the entry
# in the registry) waits for a pause in the program's output, at most this long: during a burst of
# output it would take a core and the GIL from the relay.
BACKGROUND_WAITS_S = 1.0
# Threads that died while their process went on, each a note of the report: the first this many
MAX_THREAD_NOTES = 3
# Without --stall-timeout a stall watcher still looks on, acting on nothing and telling no one: a
# run that a signal then ends, after this long without output, progress or CPU, was stuck when it
# was stopped (a user's Ctrl-C at a frozen screen, a scheduler's time limit), and the stacks taken
# then say where. Any other ending forgets the silence (a quiet final save is no hang).
QUIET_END_S = 30.0


@startup_record  # made before the program starts (diagnostics/startup.py)
class RunRequest:
    """Everything `trainwatch run` was asked to do, parsed and resolved."""

    argv: tuple[str, ...]  # what to execute
    env: dict[str, str]
    log_path: str | None = None
    probe: bool = True
    keep_artifacts: bool = False
    sample_interval: float = 0.5
    signature_files: tuple[str, ...] = ()  # the user's signature files, already checked
    # seconds without output, progress or CPU before the run counts as stuck
    stall_timeout: float | None = None
    # "auto": stop an idle stall, only report a busy one; "kill": stop both; "report": neither
    on_stall: str = "auto"
    # without stall_timeout: the silence before a signal's ending that makes it a hang
    quiet_end_s: float = QUIET_END_S
    # told of a stall and of the first non-finite loss as they happen (diagnostics/watch/alerts.py)
    on_event: Callable[[LiveEvent], None] | None = None
    nan_stop_after: int | None = None  # --on-nan stop:N: stop the run at the Nth non-finite loss
    nan_grace: float = 30.0  # seconds between that stop's interrupt and its terminate
    on_warning: Callable[[str], None] | None = None  # told of trouble beside the run (the log)


def run_session(
    request: RunRequest,
    on_started: Callable[[], None] | None = None,
    on_ended: Callable[[LaunchResult], None] | None = None,
) -> Diagnosis:
    """Run the child to its end and diagnose it. Raises OSError when it cannot be started.

    `on_started` runs in a background thread once the child runs (after the judges' own imports):
    the CLI uses it to import its report renderer while the child works rather than after it ends.
    `on_ended` is told how the child ended as soon as its output is drained (the CLI starts a new
    line when it ended mid-line).
    """
    env = dict(request.env)
    probe = None
    probe_off = "the probe was off (--no-probe)"
    if request.probe:
        from trainwatch.diagnostics.watch.probe import ProbeSession

        try:
            probe = ProbeSession.create(keep_artifacts=request.keep_artifacts, base_env=env)
        except OSError as error:
            # the temporary directory is full or read-only: the program runs all the same, watched
            # from outside only (a tool must never be why a training run did not start)
            reason = error.strerror or error
            probe_off = f"the probe was off: its files could not be written ({reason})"
        else:
            env.update(probe.env)
            # distributed (issue 7): torchrun leaves its error files in the probe's directory;
            # imported for torchrun only
            if any("torchrun" in a or "torch.distributed" in a for a in request.argv[:6]):
                from trainwatch.diagnostics.watch.torchrun import elastic_env

                env.update(elastic_env(request.argv, env, probe.root))
    observers = OutputObservers(request.signature_files)
    launch = LaunchRequest(
        argv=request.argv,
        env=env,
        log_path=request.log_path,
        cleanup_paths=() if probe is None or probe.keep_artifacts else (str(probe.root),),
        on_warning=request.on_warning,
    )
    child = Child(launch, [observers])
    observers.clock = lambda: child.feed.arrived_at or time.time()
    alerts = None
    if request.on_event is not None or request.nan_stop_after is not None:
        from trainwatch.diagnostics.watch.alerts import LiveAlerts

        def loop_finished() -> bool:
            progress = observers.live_progress()
            return progress is not None and progress.finished is True

        alerts = LiveAlerts(
            request.on_event,
            request.nan_stop_after,
            child.signal_group,
            request.nan_grace,
            loop_finished,
        )
        observers.on_nonfinite = alerts.nonfinite
    try:
        child.start()
    except BaseException:
        if probe is not None:
            probe.cleanup()
        raise

    def warm_up() -> None:
        child.feed.wait_for_a_pause(time.monotonic() + BACKGROUND_WAITS_S)
        try:
            _import_judges()
            if on_started is not None:
                on_started()
        except Exception:
            # met again on the main thread when it judges, which says it in one line: a thread's
            # traceback here would be trainwatch's own, printed into the run's output
            return

    threading.Thread(target=warm_up, name="trainwatch-warmup", daemon=True).start()
    from trainwatch.diagnostics.watch.monitor import Monitor

    monitor = Monitor.start(child.pid, request.sample_interval)
    watcher = _start_stall_watcher(request, child, monitor, observers, probe, alerts)
    registered = _Registered(request, child, probe, monitor, observers, watcher, alerts)
    result = None
    try:
        result = child.wait()
    finally:
        registered.close()
        memory = monitor.stop()
        from trainwatch.diagnostics.evidence import stopped_from_outside

        signalled = result is not None and stopped_from_outside(
            result.exit, result.forwarded_signals
        )
        stall = watcher.close(signalled) if watcher is not None else None
        nan_stop = alerts.close() if alerts is not None else None
    if not request.stall_timeout and not _stopped_while_stuck(stall, result):
        stall = None
    if on_ended is not None:
        on_ended(result)
    probe_facts = None
    elastic_errors = ()
    notes: list[str] = list(result.notes)
    if alerts is not None:
        notes.extend(alerts.stop_not_sent())
    if probe is not None:
        ended_at = result.started_at + result.duration_s
        probe_facts = probe.collect(ended_at)
        # distributed (issue 7): read before the directory goes
        elastic_errors = _elastic_errors(probe, env)
        probe.cleanup()
        notes.extend(_thread_deaths(probe_facts.chains))
        if result.exit.code == 0:
            notes.extend(_status_hidden(probe_facts))
        notes.extend(_empty_passes(probe_facts.loaders, result.exit.code == 0))
        if not probe_facts.loaded:
            notes.append(
                "no Python process of the run loaded the probe (not Python, or run with -I/-E/-S); "
                "the diagnosis rests on outside evidence"
            )
    else:
        notes.append(probe_off)
    observers.finish()
    progress = observers.progress_facts()
    if probe_facts is not None:
        from trainwatch.diagnostics.judge.recovery import with_training_seen

        # the span measures the work lost since the last checkpoint; an idle silence that lasted
        # to the end (a hang after the final save) trained nothing, nor did what came after the
        # loop reached its total (an export, a final evaluation): the work ends where they began
        ended_at = result.started_at + result.duration_s
        idle_at_end = stall is not None and not stall.busy and stall.silent_since is not None
        worked_until = min(stall.silent_since, ended_at) if idle_at_end else ended_at
        if progress is not None and progress.finished_read_at is not None:
            worked_until = min(worked_until, progress.finished_read_at)
        probe_facts = with_training_seen(
            probe_facts.with_span(result.started_at, worked_until), progress
        )
    if probe_facts is not None and progress is not None and progress.first_nonfinite_read_at:
        # a checkpoint saved after the loss went non-finite is no point to resume from
        first = progress.first_nonfinite_loss
        probe_facts = probe_facts.with_nonfinite_since(
            progress.first_nonfinite_read_at, first[0] if first is not None else None
        )
    from pathlib import Path

    from trainwatch.diagnostics.evidence import Evidence
    from trainwatch.diagnostics.watch.own_functions import own_functions
    from trainwatch.diagnostics.watch.own_modules import own_modules

    evidence = Evidence(
        source="run",
        command=request.argv,
        exit=result.exit,
        log=observers.log_facts(),
        probe=probe_facts,
        memory=memory,
        progress=progress,
        stall=stall,
        nan_stop=nan_stop,
        forwarded_signals=result.forwarded_signals,
        left_running=result.reaped,
        own_modules=own_modules(probe_facts.chains, Path.cwd()) if probe_facts else (),
        own_functions=own_functions(probe_facts.chains) if probe_facts else (),
        notes=tuple(notes) + (memory.notes if memory is not None else ()),
    )
    from trainwatch.diagnostics.judge.classify import classify

    knowledge = _knowledge_for(evidence, observers)
    verdict = classify(evidence, knowledge)
    # distributed (issue 7): each rank's outcome, and the root rank's failure as the job's verdict
    ranks = None
    if _distributed(evidence, request.env):
        from trainwatch.diagnostics.judge.ranks import job_verdict, judge_ranks

        ranks = judge_ranks(
            evidence, knowledge, request.env, elastic_errors, since=result.started_at
        )
        verdict = job_verdict(verdict, ranks)
        from trainwatch.diagnostics.judge.consistency import make_consistent

        verdict = make_consistent(verdict, evidence)  # the job's verdict holds to the facts too
    from trainwatch.diagnostics.verdict import Diagnosis

    return Diagnosis(
        trainwatch_version=__version__,
        command=request.argv,
        started_at=_iso(result.started_at),
        duration_s=result.duration_s,
        exit=result.exit,
        verdict=verdict,
        evidence=evidence,
        sections={} if ranks is None else {"distributed": ranks.to_dict()},
    )


def _distributed(evidence: Evidence, env: dict[str, str]) -> bool:
    """Does the run show ranks, torchrun's failure table, or a SLURM task?
    (diagnostics/distributed.py)
    """
    if any(p.rank is not None for p in (evidence.probe.processes if evidence.probe else ())):
        return True
    if evidence.log is not None and (
        evidence.log.child_failures
        or evidence.log.collective_lines
        or any(c.rank is not None for c in evidence.log.chains)
    ):
        return True
    return "SLURM_JOB_ID" in env or any(
        "torchrun" in a or "torch.distributed" in a for a in evidence.command[:6]
    )


def _elastic_errors(probe, env: dict[str, str]) -> tuple:
    """torchrun's error files of a torchrun run (diagnostics/distributed.py); () for any other
    run.
    """
    if "PET_LOG_DIR" not in env and "TORCHELASTIC_ERROR_FILE" not in env:
        return ()
    from trainwatch.diagnostics.watch.torchrun import read_elastic_errors

    return read_elastic_errors(probe.root, env)


def _knowledge_for(evidence: Evidence, observers: OutputObservers):
    """The knowledge base, or None where there is nothing it could match: a silent run that exited 0
    with no exception recorded needs none, and loading it (~150 ms) would be most of trainwatch's
    cost on a short run.
    """
    probe = evidence.probe
    quiet_probe = probe is None or not (probe.chains or probe.fatal)
    if observers.silent and quiet_probe and evidence.exit is not None and evidence.exit.status == 0:
        return None
    return observers.knowledge()


def _gpu_busy(monitor) -> bool | None:
    """Whether the run's GPU was computing at the last sample; None where NVML gives no figure."""
    sample = monitor.latest()
    if sample is None or sample.gpu_utilization_pct is None:
        return None
    return sample.gpu_utilization_pct >= GPU_BUSY_PCT


def _import_judges() -> None:
    """Import what judging the run needs while the run works: the judges and the probe's record
    readers cost tens of milliseconds, not worth adding after it ends."""
    from trainwatch.diagnostics.judge import classify, culprits, memory, recovery  # noqa: F401
    from trainwatch.diagnostics.read import dumps  # noqa: F401
    from trainwatch.diagnostics.watch.probe import checkpoints, records, samples  # noqa: F401


def _start_stall_watcher(
    request: RunRequest,
    child: Child,
    monitor,
    observers: OutputObservers,
    probe,
    alerts: LiveAlerts | None,
):
    """Watch for a run that stopped making progress: as asked (`--stall-timeout`), else only
    looking on (QUIET_END_S)."""
    from trainwatch.diagnostics.watch.stall import StallWatcher

    asked = bool(request.stall_timeout)
    return StallWatcher(
        child.pid,
        request.stall_timeout if asked else request.quiet_end_s,
        activity=lambda: child.last_output_at,
        on_stall=request.on_stall if asked else "report",
        stacks=probe.request_stacks if probe is not None else None,
        stop=child.signal_group,
        position=observers.current_position,
        gpu_busy=lambda: _gpu_busy(monitor),
        on_declared=None if alerts is None or not asked else alerts.stall,
    ).start()


def _stopped_while_stuck(stall, result: LaunchResult) -> bool:
    """Was a silence the watcher saw on its own (no --stall-timeout) still going when the run was
    stopped from outside: killed by a signal, sent one by trainwatch, or ended with the status a
    time limiter or shell gives a stopped program? A busy silence is work without output, no
    hang."""
    if stall is None or stall.busy:
        return False
    from trainwatch.diagnostics.evidence import stopped_from_outside

    return stopped_from_outside(result.exit, result.forwarded_signals)


class _Registered:
    """The run's entry in the per-user registry (`trainwatch ps`, `dump`), kept by a thread of its
    own from just after the child starts until `close()` (diagnostics/watch/registry.py)."""

    def __init__(
        self, request: RunRequest, child: Child, probe, monitor, observers, watcher, alerts
    ):
        self.ended = threading.Event()
        self._sources = (request, child, probe, monitor, observers, watcher, alerts)
        self._thread = threading.Thread(target=self._serve, name="trainwatch-registry")
        self._thread.daemon = True
        self._thread.start()

    def _serve(self) -> None:
        request, child, probe, *_ = self._sources
        child.feed.wait_for_a_pause(time.monotonic() + BACKGROUND_WAITS_S)
        from trainwatch.diagnostics.redaction import Redactor
        from trainwatch.diagnostics.watch.registry import (
            Registration,
            RegistryUnavailable,
            open_registry,
        )

        try:
            directory = open_registry(request.env)
        except RegistryUnavailable:
            return  # `ps` will not list this run; the run itself is none the worse
        Registration(
            directory,
            child.pid,
            Redactor(request.env).argv(request.argv),
            None if probe is None else str(probe.records_dir),
            self.status,
            self.ended,
        ).serve()

    def status(self) -> dict:
        """What `trainwatch ps` shows of the run now."""
        request, child, _, monitor, observers, watcher, alerts = self._sources
        progress = observers.live_progress()
        sample = monitor.latest()
        stall = watcher.facts if watcher is not None else None
        nonfinite = progress is not None and progress.first_nonfinite_loss is not None
        return {
            "position": None if progress is None else progress.stopped_at,
            "last_loss": observers.last_loss(),
            "first_nonfinite_at": progress.first_nonfinite_at if nonfinite else None,
            "nonfinite_count": 0 if progress is None else progress.nonfinite_count,
            "rss_bytes": None if sample is None else sample.tree_rss_bytes,
            "gpu_bytes": None if sample is None else sample.gpu_used_bytes,
            "processes": len(monitor.tree_pids()),
            "silent_s": round(time.monotonic() - child.last_output_at, 1),
            "stall_timeout_s": request.stall_timeout,
            "stall": None
            if stall is None
            else {"silent_s": round(stall.silent_s, 1), "busy": stall.busy, "action": stall.action},
            "stopping_for_nan": alerts is not None and alerts.stopping,
        }

    def close(self) -> None:
        self.ended.set()
        self._thread.join(3.0)


def _iso(epoch: float) -> str:
    import datetime  # the report's time, not the start's

    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat(timespec="seconds")


def _empty_passes(passes: LoaderPasses | None, exited_0: bool) -> list[str]:
    """A note on the DataLoader passes that gave no batch, where the verdict does not say it (for a
    run that exited 0 the quiet rules do: no batch at all, or an empty split beside batches given,
    judge/quiet.py): in a run that failed (an average over zero batches raises ZeroDivisionError,
    an empty validation split before it)."""
    if passes is None or not passes.empty or exited_0:
        return []
    shape = passes.describe()
    return [
        f"a DataLoader gave no batch in {passes.empty} of its {passes.ended} passes that ended"
        + (f" ({shape})" if shape else "")
    ]


def _status_hidden(probe_facts) -> list[str]:
    """A note for a Python process that failed, no later attempt retrying it, in a run whose
    command exited 0: a wrapper passed on another status, and a pipeline reading only the status
    would call the run a success (real runs: `python train.py | tee log` without pipefail, a
    launcher that swallowed its child's failure, `sys.exit(os.system(...))`)."""
    failed = probe_facts.failures_not_retried()
    if not failed:
        return []
    chain = failed[-1]
    process = next((p for p in probe_facts.processes if p.pid == chain.pid), None)
    command = " ".join(process.argv)[:80] if process is not None and process.argv else "Python"
    return [
        f"pid {chain.pid} ({command}) ended on an uncaught {chain.final.short_type}, yet the "
        "command exited 0: something around it passed on another status (a pipeline without "
        "`set -o pipefail`, `|| true`, a launcher that did not return its child's status)"
    ]


def _thread_deaths(chains: tuple[ExceptionChain, ...]) -> list[str]:
    """A note for each thread the probe saw end on an uncaught exception. It ends the thread, not
    the process: the run may go on, or even end well, without what the thread did (a checkpoint
    uploader, a prefetcher, a metrics logger), and nothing else in the report would say so."""
    from trainwatch.diagnostics.evidence import CITED_CHARS

    notes = []
    for chain in chains:
        if chain.thread is None:
            continue
        exc = chain.final
        said = f"{exc.short_type}: {exc.message.splitlines()[0]}" if exc.message else exc.short_type
        where = f" of pid {chain.pid}" if chain.pid is not None else ""
        notes.append(
            f"thread {chain.thread!r}{where} ended on an uncaught {said}"[:CITED_CHARS]
            + "; the process went on without it"
        )
    return notes[:MAX_THREAD_NOTES]
