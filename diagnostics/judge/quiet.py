"""Verdicts for the quiet stops: hangs, early exits, and losses that went NaN, judged from progress
and stall facts.
"""

from __future__ import annotations

from trainwatch.diagnostics.evidence import Evidence, ExceptionChain, LogLine
from trainwatch.diagnostics.read.progress import ProgressFacts, nonfinite_name
from trainwatch.diagnostics.verdict import Alternative, Cited, Verdict
from trainwatch.diagnostics.watch.stall import StallFacts, classify_wait

# Waits that make an interrupted traceback a hang: the process was blocked there when someone
# pressed Ctrl-C.
_BLOCKING = ("dataloader", "collective", "queue", "lock", "join")


def judge_quiet(evidence: Evidence) -> Verdict | None:
    """A verdict when the stop was a quiet one, or None to let the exception and signature rules
    decide.

    Order: a run trainwatch stopped for its NaN loss (`--on-nan stop`) > a stall trainwatch saw
    (even though its own SIGTERM ended the run) > a NaN/Inf loss (crashed or not) > an
    interrupted process whose stacks show a blocked wait > for a run with no crash: the lines
    that explain a quiet stop, then whether the loop finished.
    """
    if evidence.nan_stop is not None:
        return _judge_nan_stop(evidence)
    if evidence.stall is not None:
        return _judge_stall(evidence.stall, evidence.progress)
    progress = evidence.progress
    crashed = _crashed(evidence)
    if progress is not None:
        verdict = _judge_losses(progress, crashed, evidence.exit is not None)
        if verdict is not None:
            return verdict
    verdict = _judge_interrupted_wait(evidence)
    if verdict is not None or crashed or progress is None:
        return verdict
    return _judge_clean_exit(progress, evidence)


def _judge_stall(stall: StallFacts, progress: ProgressFacts | None) -> Verdict:
    wait = stall.main_wait()
    cited = [
        Cited(
            "stall",
            f"no output and no progress for {stall.silent_s:.0f} s, {stall.cpu_seconds:.2f} s of "
            f"CPU used meanwhile",
            "stall detector",
        )
    ]
    cited += [
        Cited(
            "stack",
            f"pid {w.pid} ({w.thread or 'process'}): {w.description} at {w.where}",
            w.source,
        )
        for w in stall.waits[:6]
    ]
    where = f" at {stall.stopped_at}" if stall.stopped_at else ""
    if stall.busy:
        return Verdict(
            "hang",
            "hang/busy-loop",
            0.5,
            f"Possible hang{where}: no output or progress for {stall.silent_s:.0f} s while the "
            f"processes "
            "kept using CPU (a busy loop, or a long computation that prints nothing).",
            evidence=tuple(cited),
            advice=(
                "Look at the stacks below: a loop that never ends, or a step far slower than the "
                "others.",
                "Raise --stall-timeout if this step is legitimately slow.",
            ),
            alternatives=(Alternative("completed", None, 0.2, "It may only be slow."),),
        )
    kind = wait.kind if wait is not None and wait.kind not in ("unknown", "busy") else "no-progress"
    detail = (
        f"; {wait.description} ({wait.where})" if wait is not None and kind != "no-progress" else ""
    )
    action = "trainwatch stopped it" if stall.action == "stopped" else "it was left running"
    return Verdict(
        "hang",
        f"hang/{kind}",
        0.85 if kind != "no-progress" else 0.7,
        f"The run hung{where}: no output, no progress and almost no CPU for {stall.silent_s:.0f} s"
        f"{detail}; {action}.",
        evidence=tuple(cited),
        advice=_HANG_ADVICE.get(kind, _HANG_ADVICE["other"]),
    )


_HANG_ADVICE = {
    "dataloader": (
        "A DataLoader worker is stuck (a lock or queue inside the Dataset, a deadlock after fork): "
        "rerun "
        "with num_workers=0 to see the blocking call in the main process.",
        "Avoid locks, threads and open connections created before the DataLoader forks; try "
        "multiprocessing_context='spawn'.",
    ),
    "lock": (
        "A lock is never released: look for a lock taken before fork, or two locks taken in "
        "opposite orders.",
    ),
    "collective": (
        "A rank is missing from a collective: check that every rank runs the same collectives in "
        "the same "
        "order (no rank-dependent branches around all_reduce/barrier).",
        "Set NCCL_DEBUG=INFO and TORCH_DISTRIBUTED_DEBUG=DETAIL to see which rank is behind.",
    ),
    "other": (
        "Look at where each process waits (below) to find what it waits for.",
        "Raise --stall-timeout if a step can legitimately print nothing for that long.",
    ),
}


def _judge_losses(progress: ProgressFacts, crashed: bool, exit_known: bool) -> Verdict | None:
    nonfinite = progress.first_nonfinite_loss
    message = progress.marker("keras-invalid-loss") or progress.marker("nan-loss")
    if nonfinite is None and message is None:
        return None
    cited = []
    if nonfinite is not None:
        step, value, line = nonfinite
        at = progress.first_nonfinite_at or f"step {step}"
        cited.append(Cited("loss", line.text.strip()[:300], line.where))
        summary = f"The loss became {nonfinite_name(value)} at {at}"
    else:
        assert message is not None
        cited.append(Cited("log", message.text.strip()[:300], message.where))
        summary = "The training reported an invalid (NaN/Inf) loss"
    if progress.diverged:
        summary += ", after growing by orders of magnitude (divergence)"
    if not crashed and exit_known:
        summary += (
            "; the script carried on and exited normally"
            if progress.finished is not False
            else f"; the run then stopped early{_at(progress)} without an error"
        )
    subtype = "numerical/divergence" if progress.diverged else "numerical/nan-loss"
    # After a crash the exception may be the real root (an OOM after a NaN): leave room for a
    # first-hand match.
    confidence = (0.9 if nonfinite is not None else 0.8) - (0.15 if crashed else 0.0)
    return Verdict(
        "numerical",
        subtype,
        confidence,
        summary + ".",
        evidence=tuple(cited) + _progress_cited(progress),
        advice=(
            "Lower the learning rate (or add warm-up), and clip gradients "
            "(torch.nn.utils.clip_grad_norm_).",
            "Check the inputs of the first bad step for NaN/Inf, and the loss for log(0) or "
            "division "
            "by zero; torch.autograd.set_detect_anomaly(True) names the operation that made the "
            "NaN.",
            "With mixed precision, let GradScaler skip the overflowing steps instead of stopping.",
        ),
    )


def _judge_nan_stop(evidence: Evidence) -> Verdict:
    """trainwatch stopped the run itself: the loss is the cause, and the interrupt it sent (and
    the KeyboardInterrupt or SIGTERM that followed) are consequences."""
    stop = evidence.nan_stop
    assert stop is not None
    first = stop.first_at or f"step {stop.first_step}"
    how = f"trainwatch interrupted the run (SIGINT to its process group) {stop.elapsed_s:.1f} s in"
    if "SIGTERM" in stop.signals:
        how += f", terminated it (SIGTERM) {stop.grace_s:g} s later"
    if "SIGKILL" in stop.signals:
        how += ", and killed it (SIGKILL) when that did not end it"
    counted = "one non-finite loss" if stop.after == 1 else f"{stop.after} non-finite losses"
    where = f" at {stop.stopped_at}" if stop.stopped_at and stop.after > 1 else ""
    progress = evidence.progress
    diverged = progress is not None and progress.diverged
    cascade = [
        Cited("exception", f"{c.final.type}: raised by trainwatch's interrupt", c.where)
        for c in _chains(evidence)
        if c.final.short_type in ("KeyboardInterrupt", "SystemExit")
    ][:1]  # the probe's record, else the printed traceback: one is enough
    if evidence.exit is not None and evidence.exit.signal in stop.signals:
        cascade.append(Cited("exit", f"ended by {evidence.exit.signal}, trainwatch's", "waitpid"))
    return Verdict(
        "numerical",
        "numerical/divergence" if diverged else "numerical/nan-loss",
        0.95,
        f"The loss became {nonfinite_name(_first_value(evidence))} at {first}"
        + (", after growing by orders of magnitude" if diverged else "")
        + f"; trainwatch stopped the run after {counted}{where} (--on-nan stop).",
        evidence=(
            Cited("loss", stop.first_line.text.strip()[:300], stop.first_line.where),
            Cited("signal", how, "--on-nan stop"),
        )
        + (_progress_cited(progress) if progress is not None else ()),
        cascade=tuple(cascade),
        advice=(
            "Resume from the last checkpoint saved before the first non-finite step with a lower "
            "learning rate (or warm-up), and clip gradients (torch.nn.utils.clip_grad_norm_).",
            "Check the inputs of the first bad step for NaN/Inf, and the loss for log(0) or "
            "division by zero; torch.autograd.set_detect_anomaly(True) names the operation.",
            "With mixed precision, let GradScaler skip overflowing steps, or use bf16.",
        ),
    )


def _first_value(evidence: Evidence) -> float:
    first = evidence.progress.first_nonfinite_loss if evidence.progress is not None else None
    return first[1] if first is not None else float("nan")


def _judge_interrupted_wait(evidence: Evidence) -> Verdict | None:
    """A KeyboardInterrupt (or SIGTERM traceback) whose stacks sit in a blocking wait: a hang
    someone stopped.
    """
    for chain in _chains(evidence):
        if chain.final.short_type not in ("KeyboardInterrupt", "SystemExit"):
            continue
        kind, where = classify_wait(chain.final.frames)
        if kind in _BLOCKING:
            source = chain.where
            return Verdict(
                "hang",
                f"hang/{kind}",
                0.6,
                f"The run was stopped by hand while it waited ({where}): most likely a hang.",
                evidence=(Cited("exception", f"{chain.final.type} in {where}", source),),
                alternatives=(
                    Alternative(
                        "interrupted",
                        "interrupted/user",
                        0.4,
                        "Someone stopped a run that was only slow.",
                    ),
                ),
                advice=_HANG_ADVICE.get(kind, _HANG_ADVICE["other"]),
            )
    return None


def _judge_clean_exit(progress: ProgressFacts, evidence: Evidence) -> Verdict | None:
    """No crash: the markers that explain a quiet stop, then the loop's completion."""
    cited = _progress_cited(progress)
    data = progress.marker("nan-data")
    if data is not None:
        return Verdict(
            "data",
            "data/nan-input",
            0.8,
            f"The script found NaN/Inf values in its input data and stopped{_at(progress)}.",
            evidence=(_cite(data),) + cited,
            advice=(
                "Find the bad samples (check each file/row for NaN/Inf) and clean or drop them.",
                "Check the preprocessing: a division by a zero standard deviation, log of 0, or a "
                "missing value read as NaN.",
            ),
        )
    if (line := progress.marker("fast-dev-run")) is not None:
        return Verdict(
            "early-exit",
            "early-exit/fast-dev-run",
            0.85,
            "Lightning ran in fast_dev_run mode: one batch of each loop, then a normal exit.",
            evidence=(_cite(line),) + cited,
            advice=(
                "Remove fast_dev_run from the Trainer arguments (or the command line) to train.",
            ),
        )
    if (line := progress.marker("input-exhausted")) is not None:
        return Verdict(
            "early-exit",
            "early-exit/input-exhausted",
            0.8,
            f"The input pipeline ran out of data, so Keras ended training early{_at(progress)}.",
            evidence=(_cite(line),) + cited,
            alternatives=(Alternative("data", None, 0.3, "The dataset is smaller than expected."),),
            advice=(
                "Call .repeat() on the tf.data dataset, or make steps_per_epoch * epochs no larger "
                "than the batches the dataset yields.",
            ),
        )
    if progress.diverged:
        return Verdict(
            "numerical",
            "numerical/divergence",
            0.6,
            "The loss grew by orders of magnitude during training (divergence), though it stayed "
            "finite.",
            evidence=cited,
            alternatives=(Alternative("completed", None, 0.3, "The run ended normally."),),
            advice=("Lower the learning rate, add warm-up, and clip gradients.",),
        )
    for kind, what in (
        ("early-stopping", "early stopping ended it"),
        ("limit-reached", "it reached its limit"),
    ):
        if (line := progress.marker(kind)) is not None:
            return Verdict(
                "completed",
                None,
                0.85,
                f"The run finished normally: {what}{_at(progress)}.",
                evidence=(_cite(line),) + cited,
            )
    if progress.finished is True:
        return Verdict(
            "completed", None, 0.9, f"The run finished normally{_at(progress)}.", evidence=cited
        )
    if progress.finished is not False:
        return None
    status = evidence.exit
    if status is not None and status.code == 0:
        return Verdict(
            "early-exit",
            "early-exit/unfinished",
            0.75,
            f"The run exited with status 0 before its loop finished: it stopped{_at(progress)}.",
            evidence=(Cited("exit", "exit status 0", "waitpid"),) + cited,
            advice=(
                "Look for a `break`, `return` or `sys.exit(0)` in the training loop, or a check "
                "that "
                "ends it (its message is usually the last line before the exit).",
            ),
        )
    log = evidence.log
    if status is None and (
        progress.error_after_progress
        or getattr(log, "notable", ())
        or getattr(log, "exit_hints", ())
    ):
        return None  # a saved log with other signs of trouble: the signatures judge it
    if status is None and progress.lines_after_progress <= 3:
        # A saved log that just stops mid-loop: stuck, cut, or killed without a word: the text
        # cannot tell.
        return Verdict(
            "hang",
            "hang/no-output",
            0.4,
            f"The log ends mid-loop{_at(progress)} with no error: the run was stuck, or the log "
            f"was cut.",
            evidence=cited,
            alternatives=(
                Alternative("interrupted", None, 0.3, "It was stopped without a message."),
                Alternative("early-exit", None, 0.25, "It ended early without a message."),
            ),
        )
    if status is None:
        return Verdict(
            "early-exit",
            "early-exit/unfinished",
            0.5,
            f"The log shows the loop unfinished{_at(progress)} and the script going on to other "
            "output, with no error.",
            evidence=cited,
        )
    return None


def _crashed(evidence: Evidence) -> bool:
    status = evidence.exit
    if status is not None and (status.signal is not None or status.code not in (0, None)):
        return True
    return bool(_chains(evidence)) or bool(getattr(evidence.log, "fatal_errors", ()))


def _chains(evidence: Evidence) -> tuple[ExceptionChain, ...]:
    chains: list[ExceptionChain] = []
    for source in (evidence.probe, evidence.log):
        chains.extend(
            c for c in (getattr(source, "chains", ()) or ()) if isinstance(c, ExceptionChain)
        )
    return tuple(chains)


def _progress_cited(progress: ProgressFacts) -> tuple[Cited, ...]:
    line = progress.last_progress_line
    if line is None or progress.stopped_at is None:
        return ()
    return (
        Cited(
            "progress",
            f"last progress: {progress.stopped_at}"
            + (
                ""
                if progress.finished is None
                else " (finished)"
                if progress.finished
                else " (unfinished)"
            ),
            line.where,
        ),
    )


def _cite(line: LogLine) -> Cited:
    return Cited("log", line.text.strip()[:300], line.where)


def _at(progress: ProgressFacts) -> str:
    return f" at {progress.stopped_at}" if progress.stopped_at else ""
