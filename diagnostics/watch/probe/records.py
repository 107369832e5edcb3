"""The probe's records, read back: handshakes, exception chains, fatal signals and torch context as
`ProbeFacts`.

The child side (sitecustomize.py) writes one JSON-lines file per process, `<pid>-<nonce>.jsonl`,
plus the faulthandler file named in its handshake. The format is in docs/probe.md. Reading never
raises on a damaged or partial file: an incomplete last line (a process killed mid-write) is
skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trainwatch.diagnostics.evidence import (
    REMOTE_TRACEBACK,
    UNKNOWN_FUNCTION,
    ExceptionChain,
    Frame,
    RaisedException,
    deepest_user_frame,
)
from trainwatch.diagnostics.read.capture import ANSI
from trainwatch.diagnostics.read.dumps import (
    fatal_signal_name,
    parse_dump,
    parse_spawn_wrapper,
    parse_worker_wrapper,
    split_fatal,
)
from trainwatch.diagnostics.read.frames import ThreadStack, forward_slashes, probe_said_user
from trainwatch.diagnostics.watch.probe.checkpoints import CheckpointFacts, read_checkpoints
from trainwatch.diagnostics.watch.probe.samples import (
    FailedSample,
    NonFiniteRows,
    pick_sample,
    rows_from,
    sample_from,
)

_TRIED = re.compile(r"Tried to allocate (\d+(?:\.\d+)? ?[KMGTP]?i?B)")
# processes listed in the report; a run that forks workers every epoch has hundreds
_MAX_LISTED = 20


@dataclass(frozen=True)
class ProbeProcess:
    """One Python process that loaded the probe, from its handshake."""

    pid: int
    ppid: int
    argv: tuple[str, ...]
    executable: str
    python: str  # "3.11.7"
    started: float  # time.time() when the probe loaded
    # a fork of a probed process (a DataLoader worker under fork), not a fresh interpreter
    forked: bool = False
    rank: int | None = None
    local_rank: int | None = None
    world_size: int | None = None
    main_thread: int | None = None  # the main thread's id, as faulthandler prints it
    # /proc/PID/stat start time: tells this process from a later one with its pid
    start_ticks: int | None = None
    stack_signal: int = 0  # the signal that makes it dump its stacks; 0 when it cannot
    # its standard library and site-packages: code that is not the user's
    library_dirs: tuple[str, ...] = ()
    traceback_file: str | None = None  # its faulthandler file, beside its record file
    exited: bool = False  # it reached normal interpreter shutdown (atexit ran)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "ppid": self.ppid,
            "rank": self.rank,
            "forked": self.forked,
            "python": self.python,
            "executable": self.executable,
            "argv": list(self.argv[:8]),
        }


@dataclass(frozen=True)
class FatalSignal:
    """A fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL) and the Python stacks faulthandler
    left.
    """

    signal: str  # "SIGSEGV"; faulthandler's own words when it is not one of the five
    pid: int
    rank: int | None
    threads: tuple[ThreadStack, ...]  # every thread; `current` marks the one that crashed

    @property
    def frames(self) -> tuple[Frame, ...]:
        """The crashing thread's frames, outermost call first."""
        for thread in self.threads:
            if thread.current:
                return thread.frames
        return self.threads[0].frames if self.threads else ()

    def deepest_user_frame(self) -> Frame | None:
        """The user's line that made the fatal call (the native crash itself has no Python
        frame).
        """
        return deepest_user_frame(self.frames)

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "pid": self.pid,
            "rank": self.rank,
            "frames": [f.to_dict() for f in self.frames[-8:]],
        }


@dataclass(frozen=True)
class ProcessStacks:
    """All threads of one probed process, dumped on request (for a run that looks stuck)."""

    pid: int
    rank: int | None
    threads: tuple[ThreadStack, ...]
    complete: bool = True  # False: the dump had not settled when the request timed out

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "rank": self.rank,
            "complete": self.complete,
            "threads": [t.to_dict() for t in self.threads],
        }


@dataclass(frozen=True)
class WorkerFailure:
    """A DataLoader worker's exception, recovered from the message of the exception torch raised in
    its place.
    """

    worker: int  # the DataLoader worker number ("worker process 0")
    chain: ExceptionChain  # the worker's own chain: the original exception, frames in the Dataset
    carrier: ExceptionChain  # the recorded chain whose message carried it


@dataclass(frozen=True)
class LoaderPasses:
    """The passes over DataLoaders that ended in the run's processes, and the batches they gave."""

    ended: int
    batches: int
    empty: int  # passes that gave no batch at all
    # the first empty pass's dataset: its class name, length (None when it has none), the batch
    # size and drop_last; and when it ended (`at`, the wall clock's seconds)
    first_empty: dict[str, Any] | None = None
    built: int = 0  # DataLoaders built
    taken: int = 0  # batches taken from any of them, in passes that ended or not

    @property
    def first_empty_at(self) -> float | None:
        at = (self.first_empty or {}).get("at")
        return float(at) if isinstance(at, (int, float)) else None

    @property
    def gave_nothing(self) -> bool:
        """Passes ended and not one of them gave a batch: the run trained on nothing."""
        return self.ended > 0 and self.batches == 0

    def describe(self) -> str:
        """`TensorDataset: 3 samples, batch size 8, drop_last=True`, or '' when not known."""
        shape = self.first_empty or {}
        parts = [
            f"{shape['size']} samples" if isinstance(shape.get("size"), int) else "",
            f"batch size {shape['batch_size']}" if shape.get("batch_size") else "",
            "drop_last=True" if shape.get("drop_last") else "",
        ]
        said = ", ".join(p for p in parts if p)
        name = shape.get("dataset")
        return f"{name}: {said}" if name and said else said or (name or "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ended": self.ended,
            "batches": self.batches,
            "empty": self.empty,
            "first_empty": self.first_empty,
            "built": self.built,
            "taken": self.taken,
        }


@dataclass(frozen=True)
class GradientCounts:
    """The optimizers the run's processes built and the gradients they computed (backward calls)."""

    optimizers: int
    backwards: int
    # of the one-element losses in host memory that `backward` was called on: how many were NaN
    # or Inf, and whether the latest of them in some process was
    nonfinite_losses: int = 0
    ended_nonfinite: bool = False
    # of the losses `backward` was called on, the leaves: computed from no tensor of the model
    leaf_losses: int = 0

    @property
    def never_stepped(self) -> bool:
        """An optimizer built and not one gradient computed: the training loop never ran."""
        return self.optimizers > 0 and self.backwards == 0

    @property
    def losses_detached(self) -> bool:
        """An optimizer built and every loss `backward` was called on (more than one) a leaf: no
        gradient reached the model's weights."""
        return self.optimizers > 0 and self.backwards > 1 and self.leaf_losses == self.backwards

    def to_dict(self) -> dict[str, Any]:
        return {
            "optimizers": self.optimizers,
            "backwards": self.backwards,
            "nonfinite_losses": self.nonfinite_losses,
            "ended_nonfinite": self.ended_nonfinite,
            "leaf_losses": self.leaf_losses,
        }


def _gradient_counts(records: list[dict[str, Any]]) -> GradientCounts | None:
    """The `gradients` records of every process, added up."""
    if not records:
        return None
    return GradientCounts(
        optimizers=sum(_count(r.get("optimizers")) for r in records),
        backwards=sum(_count(r.get("backwards")) for r in records),
        nonfinite_losses=sum(_count(r.get("nonfinite_losses")) for r in records),
        ended_nonfinite=any(r.get("last_nonfinite") == 1 for r in records),
        leaf_losses=sum(_count(r.get("leaf_losses")) for r in records),
    )


def _loader_passes(records: list[dict[str, Any]]) -> LoaderPasses | None:
    """The `loader` records of every process, added up."""
    if not records:
        return None
    first = next(
        (r["first_empty"] for r in records if isinstance(r.get("first_empty"), dict)), None
    )
    return LoaderPasses(
        ended=sum(_count(r.get("ended")) for r in records),
        batches=sum(_count(r.get("batches")) for r in records),
        empty=sum(_count(r.get("empty")) for r in records),
        first_empty=first,
        built=sum(_count(r.get("built")) for r in records),
        taken=sum(_count(r.get("taken")) for r in records),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True)
class FitStopped:
    """A framework's training loop (Keras's `fit`, Lightning's `Trainer.fit`) that returned because
    its stop flag was set: a callback ended the training."""

    framework: str  # "keras", "lightning"
    by: str | None  # the callback that stopped it ("EarlyStopping"), where one says so
    epoch: int | None  # epochs run (Keras) or the epoch it was in (Lightning)
    epochs: int | None  # the epochs it was asked for
    # why, where the callback said so in its `stopped_for` (trainwatch's own: NAN_STOP)
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "framework": self.framework,
            "by": self.by,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "reason": self.reason,
        }


# What trainwatch's framework callbacks put in their `stopped_for` when `stop_on_nan` stopped the
# fit (api/integrations): the probe copies any callback's reason into FitStopped.reason.
NAN_STOP = "non-finite loss"


def _fit_stopped(record: dict[str, Any]) -> FitStopped | None:
    framework = record.get("framework")
    if not isinstance(framework, str):
        return None
    by, reason = record.get("by"), record.get("reason")
    return FitStopped(
        framework=framework,
        by=by if isinstance(by, str) else None,
        epoch=_count(record.get("epoch")) or None,
        epochs=_count(record.get("epochs")) or None,
        reason=reason if isinstance(reason, str) else None,
    )


@dataclass(frozen=True)
class ProbeFacts:
    """Everything the probe recorded in a run."""

    processes: tuple[ProbeProcess, ...] = ()
    # uncaught exceptions and non-zero sys.exit calls, oldest first
    chains: tuple[ExceptionChain, ...] = ()
    fatal: tuple[FatalSignal, ...] = ()
    workers: tuple[WorkerFailure, ...] = ()
    # versions, devices, allocator statistics at the first crash
    torch: dict[str, Any] | None = None
    stacks: tuple[ProcessStacks, ...] = ()  # the last stack dump requested
    notes: tuple[str, ...] = field(default=())
    sample: FailedSample | None = None  # what the failure that explains the run was loading
    # the saves the probe watched; None where nothing watched them (the Python API's diagnosis of
    # an exception in its own process): then nothing is said of checkpoints
    checkpoints: CheckpointFacts | None = None
    loaders: LoaderPasses | None = None  # the DataLoader passes that ended (torch programs)
    gradients: GradientCounts | None = None  # optimizers built, backward calls (torch programs)
    # input tensors holding NaN/Inf on the stack of the first non-finite loss's `backward`
    nonfinite_inputs: tuple[NonFiniteRows, ...] = ()
    # training loops that a callback stopped (early stopping), oldest first
    stopped_fits: tuple[FitStopped, ...] = ()

    @property
    def loaded(self) -> bool:
        """Did any process of the run load the probe? (Not under `python -I`, `-E`, `-S`, or no
        Python at all.)
        """
        return bool(self.processes)

    def process(self, pid: int | None) -> ProbeProcess | None:
        for proc in self.processes:
            if proc.pid == pid:
                return proc
        return None

    def failures_not_retried(self) -> tuple[ExceptionChain, ...]:
        """The exceptions (no `sys.exit`) that ended a main thread, less those of an attempt a
        later one retried: a retry loop around the script (a shell's `for bs in 64 32; do python
        train.py --bs $bs && break; done`) starts a fresh Python (no fork of the failed one, nor
        its child) that reaches its normal end without raising (BH's real run, exit 0, was the
        first attempt's failure)."""
        raised = [c for c in self.chains if c.thread is None and c.final.short_type != "SystemExit"]
        failed_pids = {c.pid for c in raised}
        return tuple(c for c in raised if not self._retried(c.pid, failed_pids))

    def _retried(self, pid: int | None, failed_pids: set[int | None]) -> bool:
        failed = next((p for p in self.processes if p.pid == pid), None)
        return failed is not None and any(
            p.started > failed.started
            and p.exited
            and not p.forked
            and p.ppid != failed.pid
            and p.pid not in failed_pids
            for p in self.processes
        )

    def primary_chain(self) -> ExceptionChain | None:
        """The chain that explains the run: a DataLoader worker's original exception over torch's
        wrapper; an exception ending a main thread (the earliest, across ranks) over one ending
        another thread; an uncaught exception over a non-zero sys.exit.
        """
        if self.workers:
            return self.workers[0].chain
        main = [c for c in self.chains if c.thread is None and c.final.type != "SystemExit"]
        if main:
            return main[0]
        threads = [c for c in self.chains if c.thread is not None]
        if threads:
            return threads[0]
        exits = [c for c in self.chains if c.final.type == "SystemExit"]
        return exits[0] if exits else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON report's `probe` section: compact; the chain itself goes in the report's
        `exception`.
        """
        return {
            "loaded": self.loaded,
            "processes_total": len(self.processes),
            "processes": [p.to_dict() for p in self.processes[:_MAX_LISTED]],
            "exceptions": [
                {"pid": c.pid, "rank": c.rank, "thread": c.thread, "type": c.final.type}
                for c in self.chains
            ],
            "dataloader_workers": [
                {"worker": w.worker, "type": w.chain.final.type, "pid": w.carrier.pid}
                for w in self.workers
            ],
            "fatal_signals": [f.to_dict() for f in self.fatal],
            "torch": self.torch,
            "stacks": [s.to_dict() for s in self.stacks],
            "notes": list(self.notes),
            "dataloader_passes": None if self.loaders is None else self.loaders.to_dict(),
            "gradients": None if self.gradients is None else self.gradients.to_dict(),
            "nonfinite_inputs": [r.to_dict() for r in self.nonfinite_inputs],
            "stopped_fits": [f.to_dict() for f in self.stopped_fits],
        }

    def with_nonfinite_since(self, since: float, step: int | None = None) -> ProbeFacts:
        """See CheckpointFacts.with_nonfinite_since."""
        if self.checkpoints is None:
            return self
        return replace(self, checkpoints=self.checkpoints.with_nonfinite_since(since, step))

    def with_span(self, started: float, trained_until: float) -> ProbeFacts:
        """The facts with the run's start and the end of its work, which the lost work is
        measured by."""
        if self.checkpoints is None:
            return self
        return replace(self, checkpoints=self.checkpoints.with_span(started, trained_until))


# Exceptions recorded this long after the program ended still count (a record written as it died)
AFTER_END_S = 1.0


def read_records(
    directory: Path, stacks: tuple[ProcessStacks, ...] = (), ended_at: float | None = None
) -> ProbeFacts:
    """Read every process's records in the probe directory into `ProbeFacts`. `ended_at` (wall
    time): an exception raised later, in a process the program left behind (a daemon whose output
    pipe closed after the run), did not end the run and is left out."""
    processes: list[ProbeProcess] = []
    timed: list[tuple[float, ExceptionChain]] = []
    fatal: list[tuple[float, FatalSignal]] = []
    torch_contexts: list[tuple[float, dict[str, Any]]] = []
    samples: list[tuple[float, FailedSample]] = []
    saves: list[dict[str, Any]] = []
    passes: list[dict[str, Any]] = []
    gradients: list[dict[str, Any]] = []
    nonfinite: list[tuple[float, tuple[NonFiniteRows, ...]]] = []
    stopped_fits: list[tuple[float, FitStopped]] = []
    saves_watched = False
    for path in sorted(Path(directory).glob("*.jsonl")):
        records = read_lines(path)
        hello = next((r for r in records if r.get("kind") == "hello"), None)
        if hello is None:
            continue
        proc = process_from(hello, exited=any(r.get("kind") == "exit" for r in records))
        processes.append(proc)
        # the counts at exit, else the last written on the way (a process that never reached
        # its exit handlers: a notebook kernel its runner shut down, os._exit)
        counted = [r for r in records if r.get("kind") == "gradients"] or [
            r for r in records if r.get("kind") == "gradients-so-far"
        ][-1:]
        gradients.extend(counted)
        for record in records:
            if record.get("kind") == "exception":
                chain = chain_from(record, proc)
                late = ended_at is not None and _number(record.get("time")) > ended_at + AFTER_END_S
                if chain is not None and not late:
                    timed.append((_number(record.get("time")), chain))
                    if isinstance(record.get("torch"), dict):
                        torch_contexts.append(
                            (_number(record.get("time")), _with_tried(record["torch"], chain))
                        )
            elif record.get("kind") == "exit" and isinstance(record.get("sys_exit"), dict):
                timed.append((_number(record.get("time")), exit_chain(record["sys_exit"], proc)))
            elif record.get("kind") == "sample":
                sample = sample_from(record)
                if sample is not None:
                    samples.append((_number(record.get("time")), sample))
            elif record.get("kind") == "checkpoint":
                saves.append(record)
            elif record.get("kind") == "loader":
                passes.append(record)
            elif record.get("kind") == "saves-watched":
                saves_watched = True
            elif record.get("kind") == "fit-stopped":
                stopped = _fit_stopped(record)
                if stopped is not None:
                    stopped_fits.append((_number(record.get("time")), stopped))
            elif record.get("kind") == "nonfinite":
                rows = rows_from(record.get("nonfinite"))
                if rows:
                    nonfinite.append((_number(record.get("time")), rows))
        found = fatal_from(Path(directory), proc)
        if found is not None:
            fatal.append((proc.started, found))
    timed.sort(key=lambda item: item[0])
    chains = tuple(_unwrapped_spawn(chain, processes) for _, chain in timed)
    workers = tuple(w for w in (worker_failure(c, processes) for c in chains) if w is not None)
    torch_contexts.sort(key=lambda item: item[0])
    processes.sort(key=lambda p: p.started)
    facts = ProbeFacts(
        processes=tuple(processes),
        chains=chains,
        fatal=tuple(f for _, f in sorted(fatal, key=lambda i: i[0])),
        workers=workers,
        torch=torch_contexts[0][1] if torch_contexts else None,
        stacks=stacks,
        checkpoints=read_checkpoints(saves, saves_watched),
        loaders=_loader_passes(passes),
        gradients=_gradient_counts(gradients),
        nonfinite_inputs=min(nonfinite, key=lambda item: item[0])[1] if nonfinite else (),
        stopped_fits=tuple(f for _, f in sorted(stopped_fits, key=lambda item: item[0])),
    )
    sample = _primary_sample(facts, samples, {id(chain): time for time, chain in timed})
    return facts if sample is None else _in_the_worker_s_words(replace(facts, sample=sample))


def _primary_sample(
    facts: ProbeFacts, samples: list[tuple[float, FailedSample]], times: dict[int, float]
) -> FailedSample | None:
    """The sample of the failure that explains the run: a DataLoader worker's own record, paired
    with the main process's re-raise by worker number and type; else the failing process's."""
    if not samples:
        return None
    if facts.workers:
        worker = facts.workers[0]
        return pick_sample(
            samples,
            worker.chain.final.type,
            worker=worker.worker,
            before=times.get(id(worker.carrier)),
            message=worker.chain.final.message,
        )
    chain = facts.primary_chain()
    if chain is None:
        return None
    if _reraised_from_a_worker(chain):
        # torch re-raised a worker's exception it could not word (`<exception str() failed>`:
        # no "Caught ... in DataLoader worker process N" to pair by): the first worker's record
        # of that type, before the re-raise
        before = times.get(id(chain))
        for time, sample in sorted(samples, key=lambda item: item[0]):
            same = sample.short_exception == chain.final.short_type
            if sample.worker is not None and same and (before is None or time <= before + 1):
                return sample
    return pick_sample(samples, chain.final.type, pid=chain.pid, before=times.get(id(chain)))


# An exception whose str() raised, in Python's words and the probe's (sitecustomize.py): a worker's
# exception torch re-raised with arguments its class cannot word (soundfile's LibsndfileError wants
# an error code).
UNWORDED = ("<exception str() failed>", "<str() failed>")


def _reraised_from_a_worker(chain: ExceptionChain) -> bool:
    """Was the chain's last exception raised by torch's `ExceptionWrapper.reraise`?"""
    frames = chain.final.frames
    return (
        bool(frames)
        and frames[-1].function == "reraise"
        and forward_slashes(frames[-1].file).endswith("torch/_utils.py")
    )


def _in_the_worker_s_words(facts: ProbeFacts) -> ProbeFacts:
    """A re-raised exception Python could not word takes the message its worker recorded."""
    sample = facts.sample
    if sample is None or sample.worker is None or not sample.message:
        return facts
    chains = []
    for chain in facts.chains:
        final = chain.final
        if final.message in UNWORDED and final.short_type == sample.short_exception:
            worded = replace(final, message=sample.message)
            chain = replace(chain, exceptions=(*chain.exceptions[:-1], worded))
        chains.append(chain)
    return replace(facts, chains=tuple(chains))


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The complete, well-formed JSON objects of one record file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if isinstance(record, dict):
            records.append(record)
    return records


def process_from(hello: dict[str, Any], exited: bool = False) -> ProbeProcess:
    """A `ProbeProcess` from its handshake record."""
    return ProbeProcess(
        pid=int(hello.get("pid") or 0),
        ppid=int(hello.get("ppid") or 0),
        argv=tuple(str(a) for a in hello.get("argv") or ()),
        executable=str(hello.get("executable") or ""),
        python=str(hello.get("version") or ""),
        started=_number(hello.get("time")),
        forked=bool(hello.get("forked")),
        rank=_int(hello.get("rank")),
        local_rank=_int(hello.get("local_rank")),
        world_size=_int(hello.get("world_size")),
        main_thread=_int(hello.get("main_thread")),
        start_ticks=_int(hello.get("start_ticks")),
        stack_signal=_int(hello.get("stack_signal")) or 0,
        library_dirs=tuple(str(d) for d in hello.get("lib") or ()),
        traceback_file=hello.get("traceback_file")
        if isinstance(hello.get("traceback_file"), str)
        else None,
        exited=exited,
    )


def chain_from(record: dict[str, Any], proc: ProbeProcess) -> ExceptionChain | None:
    """An `ExceptionChain` (origin "probe") from an `exception` record."""
    exceptions = tuple(
        _raised(item) for item in record.get("chain") or () if isinstance(item, dict)
    )
    if not exceptions:
        return None
    thread = record.get("thread")
    return ExceptionChain(
        exceptions=exceptions,
        origin="probe",
        pid=proc.pid,
        rank=proc.rank,
        thread=str(thread) if thread is not None else None,
    )


def exit_chain(sys_exit: dict[str, Any], proc: ProbeProcess) -> ExceptionChain:
    """A non-zero `sys.exit(code)`, as a chain whose last exception's frames lead to the call;
    made in an `except` block, the exception it handled comes first, as its context."""
    frames = tuple(_frame(f) for f in sys_exit.get("frames") or () if isinstance(f, dict))
    raised = RaisedException("SystemExit", str(sys_exit.get("code")), frames, None)
    during = [_raised(item) for item in sys_exit.get("during") or () if isinstance(item, dict)]
    if during:
        during[-1] = replace(during[-1], relation="context")
    return ExceptionChain(
        exceptions=(*during, raised), origin="probe", pid=proc.pid, rank=proc.rank
    )


def _library_dirs(chain: ExceptionChain, processes: list[ProbeProcess]) -> tuple[str, ...]:
    """The library folders of the process that recorded `chain` (none where the probe saw none)."""
    return next((p.library_dirs for p in reversed(processes) if p.pid == chain.pid), ())


def _unwrapped_spawn(chain: ExceptionChain, processes: list[ProbeProcess]) -> ExceptionChain:
    """The chain of a spawned process's failure where `torch.multiprocessing.spawn` re-raised it in
    the parent (ProcessRaisedException): the spawned process's own exception and frames, the
    re-raise after them; any other chain as it is."""
    if not chain.final.type.endswith("ProcessRaisedException"):
        return chain
    parsed = parse_spawn_wrapper(chain.final.message, _library_dirs(chain, processes))
    if parsed is None:
        return chain
    _, exceptions = parsed
    carrier = replace(chain.final, message=chain.final.message.strip().splitlines()[0])
    return replace(chain, exceptions=exceptions + (carrier,))


def worker_failure(chain: ExceptionChain, processes: list[ProbeProcess]) -> WorkerFailure | None:
    """The DataLoader worker's own chain when an exception of this chain is torch's re-raise of
    it.
    """
    lib = _library_dirs(chain, processes)
    for raised in chain.exceptions:
        parsed = parse_worker_wrapper(raised.message, lib)
        if parsed is not None:
            worker, exceptions = parsed
            return WorkerFailure(
                worker,
                ExceptionChain(exceptions=exceptions, origin="probe", pid=None, rank=chain.rank),
                chain,
            )
    return None


def fatal_from(directory: Path, proc: ProbeProcess) -> FatalSignal | None:
    """The fatal-signal dump in a process's faulthandler file, if it crashed."""
    if not proc.traceback_file:
        return None
    try:
        text = (directory / proc.traceback_file).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    _, what, dump = split_fatal(text)
    if what is None:
        return None
    threads = parse_dump(dump, proc.library_dirs, proc.main_thread)
    return FatalSignal(fatal_signal_name(what), proc.pid, proc.rank, threads)


def _with_tried(context: dict[str, Any], chain: ExceptionChain) -> dict[str, Any]:
    """Add the size the allocator failed to get ("Tried to allocate 2.00 GiB") to the memory
    statistics.
    """
    found = _TRIED.search(chain.final.message)
    if found is None or not isinstance(context.get("memory"), dict):
        return context
    return {**context, "memory": {**context["memory"], "tried": found.group(1)}}


def _raised(item: dict[str, Any]) -> RaisedException:
    frames = tuple(_frame(f) for f in item.get("frames") or () if isinstance(f, dict))
    relation = item.get("relation") if item.get("relation") in ("cause", "context") else None
    kind, message = str(item.get("type") or "<unknown>"), str(item.get("message") or "")
    if "\x1b" in message:
        # a message written for a terminal (torch.load's weights-only refusal bolds a phrase):
        # read as a log's line is, without its colour codes
        message = ANSI.sub("", message)
    if not frames and kind.endswith(REMOTE_TRACEBACK):
        frames = _remote_frames(message)
    return RaisedException(kind, message, frames, relation)


def _remote_frames(message: str) -> tuple[Frame, ...]:
    """The frames of the worker's traceback a RemoteTraceback carries as text: where the worker's
    code failed, which the main process's frames (`pool.map(...)`) do not show."""
    from trainwatch.diagnostics.read.logparse import parse_text

    chains = parse_text(message).chains
    return chains[-1].final.frames if chains else ()


def _frame(item: dict[str, Any]) -> Frame:
    code = item.get("code")
    file = str(item.get("file") or "?")
    function = str(item.get("function") or UNKNOWN_FUNCTION)
    return Frame(
        file,
        _int(item.get("line")) or 0,
        function,
        str(code) if code else None,
        probe_said_user(file, function, bool(item.get("user"))),
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
