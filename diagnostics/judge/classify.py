"""Evidence -> verdict: the root cause, its cascades, how sure we are, and the alternatives."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from trainwatch.diagnostics.evidence import Evidence, ExceptionChain, Frame, RaisedException

if TYPE_CHECKING:  # imported where used: a run with nothing to match never loads the knowledge base
    from trainwatch.diagnostics.knowledge import Knowledge, Match
from trainwatch.diagnostics.verdict import Alternative, Cited, Culprit, Verdict

# Signals a person or a scheduler sends on purpose to stop a run.
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
# A line is second-hand next to the exception object itself; a cascade points elsewhere by
# definition.
LINE_WEIGHT = 0.92
CASCADE_WEIGHT = 0.5
# Functions whose plain Python errors are usually about a sample, not the program (docs/explain.md).
DATA_FUNCTIONS = (
    "__getitem__",
    "__getitems__",
    "collate_fn",
    "collate",
    "default_collate",
    "load_sample",
    "load_image",
    "_load_image",
    "read_image",
    "parse_example",
    "__next__",
    "__iter__",
)
GENERIC_CODE_SUBTYPE = "code/python-error"


def classify(evidence: Evidence, signatures: Knowledge | None = None) -> Verdict:
    """Judge the evidence against the knowledge base; the strongest initiating failure wins."""
    log = evidence.log
    chains = _probe_chains(evidence) + tuple(log.chains if log is not None else ())
    lines = log.notable if log is not None else ()
    signals = _signals(evidence)
    matches = []
    if chains or lines or signals:
        if signatures is None:
            from trainwatch.diagnostics.knowledge import default_knowledge

            signatures = default_knowledge()
        matches = signatures.match(chains, lines, signals)
    ranked = sorted(matches, key=_rank, reverse=True)
    # A line saying training ended well (max_epochs reached, early stopping) does not explain a run
    # that then
    # failed: with a known non-zero exit, such signatures step aside.
    failed = evidence.exit is not None and (
        evidence.exit.code != 0 or evidence.exit.signal is not None
    )
    roots = [
        m
        for m in ranked
        if m.signature.role == "root"
        and not (failed and m.signature.category in ("completed", "early-exit"))
    ]
    cascades = [m for m in ranked if m.signature.role == "cascade"]
    exit_cited = _exit_cited(evidence)

    verdict = _from_match(roots[0], ranked, cascades, chains, evidence) if roots else None
    verdict = _apply_kill_rules(verdict, roots[0] if roots else None, evidence)
    verdict = _apply_progress(verdict, evidence)
    verdict = _apply_quiet(verdict, evidence)
    verdict = _apply_gpu_memory(verdict, evidence)
    if (
        verdict is None and cascades
    ):  # only consequences seen: name them, say the cause is elsewhere
        verdict = _from_match(cascades[0], ranked, cascades[1:], chains, evidence)
    if verdict is None:
        verdict = _fallback(evidence, chains, exit_cited)
    if exit_cited is not None and all(c.kind != "exit" for c in verdict.evidence):
        verdict = _replace(verdict, evidence=verdict.evidence + (exit_cited,))
    return verdict


def _apply_gpu_memory(verdict: Verdict | None, evidence: Evidence) -> Verdict | None:
    """A GPU out-of-memory verdict cites what the memory looked like: torch's allocator at the
    failure (from the probe) and the device's used/total (from NVML), so the report tells a
    too-big batch from a leak or a neighbour's process filling the card.
    """
    if verdict is None or verdict.subtype != "oom/gpu":
        return verdict
    cited: list[Cited] = []
    torch = getattr(evidence.probe, "torch", None) or {}
    stats = torch.get("memory") if isinstance(torch, dict) else None
    if isinstance(stats, dict) and stats.get("allocated") is not None:
        parts = [
            f"{name.replace('_', ' ')} {_gib(stats.get(name))}"
            for name in ("allocated", "reserved", "max_allocated")
            if stats.get(name) is not None
        ]
        if stats.get("tried"):
            parts.append(f"tried to allocate {stats['tried']}")
        cited.append(
            Cited("probe", "torch's allocator at the failure: " + ", ".join(parts), "probe")
        )
    gpu = getattr(evidence.memory, "gpu", None)
    for device in getattr(gpu, "peak_devices", None) or ():
        cited.append(
            Cited(
                "gpu",
                f"GPU {device.index} ({device.name}): {_gib(device.used_bytes)} of "
                f"{_gib(device.total_bytes)} used at its fullest",
                "NVML",
            )
        )
    if not cited:
        return verdict
    return _replace(verdict, evidence=verdict.evidence + tuple(cited))


def _gib(value) -> str:
    return f"{value / 2**30:.2f} GiB" if isinstance(value, (int, float)) else str(value)


def _probe_chains(evidence: Evidence) -> tuple[ExceptionChain, ...]:
    """The probe's exception chains, the one that explains the run first (a DataLoader worker's
    original exception before the main process's re-raise of it): recorded inside the processes,
    they are first-hand where the log is a copy, so they come before the log's.
    """
    probe = evidence.probe
    chains = tuple(getattr(probe, "chains", None) or ())
    primary = (
        probe.primary_chain() if probe is not None and hasattr(probe, "primary_chain") else None
    )
    if primary is None:
        return chains
    return (primary,) + tuple(c for c in chains if c is not primary)


def _apply_quiet(verdict: Verdict | None, evidence: Evidence) -> Verdict | None:
    """The quiet stops (diagnostics/quiet.py): a stall trainwatch saw, a NaN loss, a loop that ended
    early.

    A stall wins over the SIGTERM that trainwatch's own stall watcher sent; otherwise the quiet
    verdict replaces only a verdict that says nothing went wrong, or one it is surer than.
    """
    from trainwatch.diagnostics.judge.quiet import judge_quiet

    quiet = judge_quiet(evidence)
    if quiet is None:
        return verdict
    if evidence.nan_stop is not None:  # trainwatch stopped it: its own interrupt is no cause
        return quiet
    if (
        evidence.stall is not None
        or verdict is None
        or verdict.category in ("completed", "early-exit", "unknown")
        or (quiet.category == "hang" and verdict.category == "interrupted")
        or quiet.confidence > verdict.confidence
    ):
        if (
            verdict is not None
            and verdict.category != quiet.category
            and verdict.category != "completed"
        ):
            other = Alternative(
                verdict.category, verdict.subtype, verdict.confidence, verdict.summary
            )
            quiet = _replace(quiet, alternatives=(other,) + quiet.alternatives)
        return quiet
    return verdict


WORKER_KILLED = re.compile(r"DataLoader worker \(pid\(?s?\)?:? ?(\d+)\)? (?:is|exited)")


def _killed_worker_pids(evidence: Evidence) -> tuple[int, ...]:
    """Pids of DataLoader workers an error says were killed: the kernel's OOM lines name them, not
    the run.
    """
    texts = [line.text for line in (evidence.log.notable if evidence.log is not None else ())]
    for chain in tuple(evidence.log.chains if evidence.log is not None else ()) + tuple(
        getattr(evidence.probe, "chains", None) or ()
    ):
        texts.extend(e.message for e in chain.exceptions)
    return tuple(sorted({int(m.group(1)) for text in texts for m in WORKER_KILLED.finditer(text)}))


# ---- ranking -------------------------------------------------------------------------------------
def _score(m: Match) -> float:
    score = m.signature.confidence
    if m.via == "line":
        score *= LINE_WEIGHT
    if m.signature.role == "cascade":
        score *= CASCADE_WEIGHT
    return score


def _rank(m: Match) -> tuple:
    # Roots over cascades; then how sure a match makes us; then the author's priority; then what
    # came first (the first-raised exception of a chain, the earliest line): the initiating failure
    # precedes its echoes.
    return (
        m.signature.role == "root",
        round(_score(m), 2),
        m.signature.priority,
        -m.order,
        -m.depth,
    )


def _signals(evidence: Evidence) -> dict[str, Cited]:
    signals: dict[str, Cited] = {}
    status = evidence.exit
    if status is not None:
        name = status.signal
        if name is None and status.code not in (None, 0):
            from trainwatch.diagnostics.read.logparse import signal_from_code

            name = signal_from_code(status.code)
        if name:
            signals[name] = Cited("exit", _describe_exit(status.code, status.signal), "waitpid")
    log = evidence.log
    if log is not None:
        for hint in log.exit_hints:
            if hint.signal:
                signals.setdefault(
                    hint.signal, Cited("log", hint.line.text.strip()[:300], hint.line.where)
                )
        for failure in log.child_failures:
            if failure.signal:
                said = f"rank {failure.rank} exitcode {failure.exitcode}: {failure.traceback or ''}"
                text = said.strip(": ")
                signals.setdefault(failure.signal, Cited("log", text, failure.line.where))
    return signals


# ---- building the verdict ------------------------------------------------------------------------
def _from_match(
    best: Match, ranked: list[Match], cascades: list[Match], chains, evidence: Evidence
) -> Verdict:
    sig = best.signature
    category, subtype = sig.category, sig.subtype
    confidence = _score(best)
    chain = best.chain
    exception = best.exception or (chain.first if chain else None)
    culprit = _culprit(best, chains, evidence)
    alternatives: list[Alternative] = []
    summary = _summary(sig.title, sig.explanation)
    if subtype == GENERIC_CODE_SUBTYPE and _in_data_code(best, culprit):
        # A plain Python error while loading a sample: usually the sample (a missing key, a bad
        # row).
        alternatives.append(Alternative("code", subtype, confidence * 0.8, summary))
        category, subtype = "data", "data/sample-error"
        summary = (
            f"{exception.short_type if exception else 'An error'} raised while loading a sample "
            f"(in {culprit.function if culprit else 'the dataset'}): most likely a bad or "
            f"unexpected "
            f"sample, possibly a bug in the dataset code."
        )
        confidence = min(confidence, 0.7)
    evidence_cited = list(best.cited)
    for m in ranked:  # corroborating matches of the same category strengthen and are shown
        if m is not best and m.signature.category == category and m.signature.role == "root":
            evidence_cited.extend(c for c in m.cited if c not in evidence_cited)
            confidence = min(0.98, confidence + 0.03)
    seen = {category}
    for m in ranked:
        c = m.signature.category
        if m.signature.role == "root" and c not in seen and len(alternatives) < 3:
            seen.add(c)
            alternatives.append(
                Alternative(
                    c,
                    m.signature.subtype,
                    _score(m),
                    _summary(m.signature.title, m.signature.explanation),
                )
            )
    return Verdict(
        category=category,
        subtype=subtype,
        confidence=round(confidence, 3),
        summary=summary,
        signature=sig.id,
        alternatives=tuple(alternatives),
        evidence=tuple(evidence_cited[:8]),
        cascade=tuple(c for m in cascades if m is not best for c in m.cited)[:6],
        culprit=culprit,
        exception=exception,
        exception_chain=chain.exceptions if chain else (),
        advice=sig.advice,
        doc_url=sig.doc,
    )


def _apply_kill_rules(
    verdict: Verdict | None, best: Match | None, evidence: Evidence
) -> Verdict | None:
    """A SIGKILL is out-of-memory only with corroboration when live memory evidence exists (issue 4,
    point 4).
    """
    memory = evidence.memory
    corroboration: tuple[Cited, ...] = ()
    if memory is not None and callable(getattr(memory, "oom_corroboration", None)):
        corroboration = tuple(memory.oom_corroboration(extra_pids=_killed_worker_pids(evidence)))
    killed = "SIGKILL" in _signals(evidence)
    if (
        corroboration
        and killed
        and (
            verdict is None
            or verdict.category in ("unknown", "oom")
            or (best is not None and best.signature.needs_corroboration)
        )
    ):
        base = verdict or Verdict("oom", "oom/host", 0.95, "")
        return _replace(
            base,
            category="oom",
            subtype=base.subtype if base.category == "oom" else "oom/host",
            confidence=0.97,
            summary="The run was killed for lack of memory: the memory evidence "
            "confirms an out-of-memory kill.",
            evidence=corroboration + base.evidence,
        )
    if verdict is None or best is None or not best.signature.needs_corroboration or memory is None:
        return verdict
    # Live evidence was collected and shows no memory pressure: do not claim OOM.
    return Verdict(
        "unknown",
        None,
        0.4,
        "Killed by SIGKILL, but memory was not at its limit and no OOM kill was recorded: the kill "
        "came from "
        "elsewhere (a scheduler, a time or resource limit, `kill -9`, an OOM killer outside this "
        "cgroup).",
        alternatives=(Alternative(verdict.category, verdict.subtype, 0.35, verdict.summary),),
        evidence=verdict.evidence,
        culprit=verdict.culprit,
        advice=(
            "Check the scheduler's and the kernel's logs (dmesg, journalctl -k) around the time of "
            "the kill.",
            "Ask whether someone or some watchdog sent kill -9 to the job.",
        ),
    )


def _apply_progress(verdict: Verdict | None, evidence: Evidence) -> Verdict | None:
    """Losses that turned NaN/Inf, and runs that stopped early with status 0 (guards: progress may
    be absent).
    """
    progress = evidence.progress
    if progress is None:
        return verdict
    nonfinite = getattr(progress, "first_nonfinite_loss", None)
    strong = (
        verdict is not None
        and verdict.category not in ("completed", "early-exit", "unknown")
        and verdict.confidence >= 0.75
    )
    if nonfinite is not None:
        step, value, line = nonfinite
        cited = Cited("loss", line.text.strip()[:300], line.where)
        if strong and verdict.category != "numerical":
            alt = Alternative(
                "numerical", "numerical/nan-loss", 0.5, f"The loss became {value} at step {step}."
            )
            return _replace(verdict, alternatives=verdict.alternatives + (alt,))
        if verdict is None or verdict.category != "numerical":
            return Verdict(
                "numerical",
                "numerical/nan-loss",
                0.85,
                f"The loss became {value} (first at step {step}): the training diverged "
                f"numerically.",
                evidence=(cited,) + (verdict.evidence if verdict else ()),
                alternatives=(
                    (
                        Alternative(
                            verdict.category,
                            verdict.subtype,
                            verdict.confidence * 0.8,
                            verdict.summary,
                        ),
                    )
                    if verdict
                    else ()
                ),
                culprit=verdict.culprit if verdict else None,
                advice=(
                    "Lower the learning rate or add warm-up; clip gradients (clip_grad_norm_).",
                    "Check the inputs and labels for NaN/Inf and the loss for log(0) or division "
                    "by zero.",
                    "With fp16, use a GradScaler or switch to bf16.",
                    "Run with torch.autograd.set_detect_anomaly(True) to find the first bad "
                    "operation.",
                ),
            )
        return verdict
    if verdict is not None:
        return verdict
    markers = dict(getattr(progress, "markers", ()) or ())
    exit_ok = evidence.exit is None or evidence.exit.code == 0
    if markers.get("nan-data") is not None:
        line = markers["nan-data"]
        return Verdict(
            "data",
            "data/nan-input",
            0.6,
            "The program reported NaN/Inf values in its input data.",
            evidence=(Cited("log", line.text.strip()[:300], line.where),),
        )
    if getattr(progress, "diverged", False):
        return Verdict(
            "numerical",
            "numerical/divergence",
            0.6,
            "The loss grew by orders of magnitude: the training diverged.",
            advice=("Lower the learning rate, add warm-up or gradient clipping.",),
        )
    if markers.get("fast-dev-run") is not None:  # a debugging run, cut short by design
        line = markers["fast-dev-run"]
        return Verdict(
            "early-exit",
            "early-exit/fast-dev-run",
            0.7,
            "The run used fast_dev_run: it ran only a few batches by design.",
            evidence=(Cited("log", line.text.strip()[:300], line.where),),
            advice=("Remove fast_dev_run (Lightning) to train for real.",),
        )
    if exit_ok and getattr(progress, "finished", None) is False:
        where = getattr(progress, "stopped_at", None)
        if (
            markers.get("early-stopping") is not None
        ):  # an early-stopping callback ended it as designed
            line = markers["early-stopping"]
            return Verdict(
                "completed",
                "completed/early-stopping",
                0.75,
                f"Early stopping ended the run{f' at {where}' if where else ''}: the monitored "
                f"metric "
                "stopped improving, so training stopped as configured.",
                alternatives=(
                    Alternative(
                        "early-exit",
                        "early-exit/early-stopping",
                        0.4,
                        "The loop ended before its planned length.",
                    ),
                ),
                evidence=(Cited("log", line.text.strip()[:300], line.where),),
                advice=(
                    "If it stopped too soon, raise the patience or check the monitored metric "
                    "and its mode (min/max).",
                ),
            )
        for kind, subtype in (
            ("input-exhausted", "early-exit/input-exhausted"),
            ("fast-dev-run", "early-exit/fast-dev-run"),
        ):
            if markers.get(kind) is not None:
                line = markers[kind]
                return Verdict(
                    "early-exit",
                    subtype,
                    0.7,
                    f"The loop stopped before its end{f' at {where}' if where else ''}.",
                    evidence=(Cited("log", line.text.strip()[:300], line.where),),
                )
        if evidence.exit is not None:
            return Verdict(
                "early-exit",
                None,
                0.6,
                "Exited with status 0 before the loop finished"
                + (f" (at {where})." if where else "."),
                advice=(
                    "Look for a `break`, `sys.exit(0)` or an early-stopping condition in the loop.",
                ),
            )
    return verdict


def _fallback(
    evidence: Evidence, chains: tuple[ExceptionChain, ...], exit_cited: Cited | None
) -> Verdict:
    """No signature fits: say what is known, from the exception or the exit status."""
    status = evidence.exit
    cited = (exit_cited,) if exit_cited else ()
    if status is not None and status.signal in STOP_SIGNALS:
        return Verdict(
            "interrupted",
            f"interrupted/{status.signal.lower()}",
            0.9,
            f"The run was stopped by {status.signal}.",
            evidence=cited,
        )
    if chains:
        chain = chains[-1]
        exc = chain.final
        frame = exc.deepest_user_frame() or _deepest_user(chain.exceptions)
        where = f" at {frame.file}:{frame.line}" if frame else ""
        text = f"{exc.type}: {exc.message}".strip(": ").splitlines()[0][:300]
        return Verdict(
            "unknown",
            None,
            0.3,
            f"The run raised {exc.short_type}{where}, which no known signature explains.",
            evidence=(Cited("exception", text, chain.where),) + cited,
            culprit=Culprit.from_frame(frame) if frame else None,
            exception=chain.first,
            exception_chain=chain.exceptions,
        )
    if status is None:
        return Verdict(
            "unknown", None, 0.2, "The log shows no error and does not say how the run ended."
        )
    if status.code == 0:
        progress = evidence.progress
        finished = getattr(progress, "finished", None) if progress is not None else None
        return Verdict(
            "completed",
            None,
            0.9 if finished else 0.6,
            "The run exited with status 0.",
            evidence=cited,
        )
    if status.signal is not None:
        return Verdict(
            "unknown",
            None,
            0.3,
            f"Killed by {status.signal}; cause not established.",
            evidence=cited,
        )
    return Verdict(
        "unknown",
        None,
        0.3,
        f"Exited with status {status.code}; cause not established.",
        evidence=cited,
    )


# ---- helpers -------------------------------------------------------------------------------------
def _culprit(best: Match, chains, evidence: Evidence) -> Culprit | None:
    frame = None
    if best.exception is not None:
        frame = best.exception.deepest_user_frame()
        if frame is None and best.chain is not None:
            frame = _deepest_user(best.chain.exceptions)
    elif chains:
        frame = _deepest_user(chains[-1].exceptions)
    if (
        frame is None
    ):  # a fatal signal recorded by the probe: the user's line that made the native call
        for fatal in getattr(evidence.probe, "fatal", None) or ():
            frame = fatal.deepest_user_frame() or frame
    if frame is None and evidence.log is not None:
        for fatal in evidence.log.fatal_errors:
            frame = next((f for f in reversed(fatal.frames) if f.user), None) or frame
    return Culprit.from_frame(frame) if frame else None


def _deepest_user(exceptions: tuple[RaisedException, ...]) -> Frame | None:
    for exc in (
        exceptions
    ):  # the first raised is the initiating one: its frames point closest to the cause
        frame = exc.deepest_user_frame()
        if frame is not None:
            return frame
    return None


def _in_data_code(best: Match, culprit: Culprit | None) -> bool:
    if culprit is not None and culprit.function in DATA_FUNCTIONS:
        return True
    chain = best.chain
    if chain is None:
        return False
    # The error was raised inside a DataLoader worker (its wrapper says so).
    return any("DataLoader worker" in e.message for e in chain.exceptions)


def _summary(title: str, explanation: str) -> str:
    first = explanation.split(". ")[0].rstrip(".")
    return f"{title}: {first}." if first else f"{title}."


def _exit_cited(evidence: Evidence) -> Cited | None:
    status = evidence.exit
    if status is None:
        return None
    return Cited("exit", _describe_exit(status.code, status.signal), "waitpid")


def _describe_exit(code: int | None, signal: str | None) -> str:
    return f"killed by {signal}" if signal else f"exit status {code}"


def _replace(verdict: Verdict, **changes) -> Verdict:
    from dataclasses import replace

    return replace(verdict, **changes)
