"""The one judge of quiet stops: hangs, early exits, finished loops, and values that went NaN.

The rules and their advice are data (knowledge/quiet.toml); this module computes the facts the rules
name from the evidence (a stall, the progress, the exit status, the log's last lines), renders the
first rule that holds, and merges it with what the signatures found (`apply_quiet`).
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainwatch.diagnostics.evidence import (
    CITED_CHARS,
    Evidence,
    ExceptionChain,
    LogLine,
    stopped_from_outside,
)
from trainwatch.diagnostics.judge.stalls import stall_facts
from trainwatch.diagnostics.read.logparse import LogFacts
from trainwatch.diagnostics.read.progress import ProgressFacts, is_setup_bar, nonfinite_name
from trainwatch.diagnostics.verdict import Alternative, Cited, Culprit, Verdict, cited_once
from trainwatch.diagnostics.watch.stall import classify_wait

if TYPE_CHECKING:
    from trainwatch.diagnostics.watch.probe.records import FitStopped, LoaderPasses, ProbeFacts

NAN_KINDS = ("divergence", "nan-loss")  # `numerical/{nan_kind}` of a run stopped at a NaN
RULES_FILE = Path(__file__).resolve().parent.parent / "knowledge" / "quiet.toml"
# Waits that make an interrupted traceback a hang: the process was blocked there when stopped (not
# autograd's backward: a Ctrl-C lands there in a loop that computes, as often as in one that waits).
BLOCKING = (
    "dataloader",
    "rendezvous",
    "collective",
    "pool",
    "queue",
    "event",
    "lock",
    "join",
    "stdin",
)
# Failures that are waits themselves, or leave the run waiting: a rendezvous that never connects
# (an address that does not resolve, a port no one answers) keeps the run waiting, and a stall
# seen then is that wait; DataLoader workers out of file descriptors (`Too many open files`) fail
# to pass their batches, and the main process waits on them for ever.
WAITS_EXPLAINED = ("distributed/rendezvous", "library/too-many-open-files")
EMPTY_DATA = "data/empty-dataset"  # a reading the probe's count of empty passes makes exact
# A check that met NaN in what it was given, read as the data's: after the loop's loss grew by
# orders of magnitude and then turned non-finite, what it was given was the diverged model's output
# (a real run of the fifty-first session gave its predictions to `roc_auc_score`: `Input contains
# NaN.`, read as missing values in the data, 85%). A loss non-finite from its first value, or
# without that growth, leaves the reading to the data (dev HE002: NaN targets).
NAN_INPUT = "data/nan-input"
STARTUP_MAX_LINES = 60
SILENT_MIN_LINES = 3
QUIET_END_LINES = 3  # lines a saved log may print after its last progress and still "end" there
# A finite loss this large is no loss a training computes (float32 overflows at 3.4e38): its
# arithmetic blew up (a real run's stiff ODE printed 5.1e+297 in float64 at every step, then
# "finished fitting", read as completed 80%).
LOSS_OVERFLOWING = 1e30


@dataclass(frozen=True)
class Rule:
    """One quiet-stop rule of knowledge/quiet.toml."""

    id: str
    when: tuple[str, ...]
    category: str
    subtype: str | None
    confidence: float
    summary: str
    advice: tuple[str, ...] | str = ()
    advice_by_wait: bool = False
    alternatives: tuple[tuple[str, str, float, str], ...] = ()


@functools.lru_cache(maxsize=1)
def _rules_file() -> dict[str, Any]:
    with RULES_FILE.open("rb") as fh:
        return tomllib.load(fh)


@functools.lru_cache(maxsize=1)
def line_kinds() -> dict[str, re.Pattern[str]]:
    """The kinds of last line a saved log can stop on (`[lines]` of knowledge/quiet.toml)."""
    return {name: re.compile(pattern) for name, pattern in _rules_file()["lines"].items()}


@functools.lru_cache(maxsize=1)
def rules() -> tuple[tuple[Rule, ...], dict[str, Any]]:
    """The rules in file order, and the shared advice."""
    data = _rules_file()
    out = []
    for table in data["rule"]:
        advice = table.get("advice", ())
        out.append(
            Rule(
                id=table["id"],
                when=tuple(table["when"]),
                category=table["category"],
                subtype=table.get("subtype"),
                confidence=float(table["confidence"]),
                summary=table["summary"],
                advice=advice if isinstance(advice, str) else tuple(advice),
                advice_by_wait=bool(table.get("advice_by_wait", False)),
                alternatives=tuple(tuple(a) for a in table.get("alternatives", ())),
            )
        )
    return tuple(out), data.get("advice", {})


# a quiet verdict's signature: the prefix and its rule's id
QUIET_PREFIX = "quiet:"


def judge_quiet(
    evidence: Evidence,
    quiet: bool = True,
    said_finished: bool = False,
    said_ended: bool = False,
    said_stopped: bool = False,
) -> Verdict | None:
    """The verdict of the first rule whose facts hold, or None. `quiet` says that no signature of a
    failure matched (the facts "quiet" depends on it); `said_finished`, that a phrase of a good
    ending did; `said_ended`, that the knowledge base read the run as completed; `said_stopped`,
    that it read the run as stopped from outside (a `^C`, a stop button)."""
    facts, values, cited, culprits = _facts(evidence, quiet, said_stopped)
    facts["said-finished"] = said_finished
    facts["said-ended"] = said_ended
    rule_list, shared = rules()
    for rule in rule_list:
        if all(facts.get(name, False) for name in rule.when):
            return _render(rule, values, cited, culprits, shared, _cascade(evidence, facts))
    return None


def apply_quiet(
    verdict: Verdict | None, evidence: Evidence, generic: bool = False, explains_wait: bool = False
) -> Verdict | None:
    """Merge the quiet verdict with the knowledge base's one: a stall trainwatch saw always wins
    (its own stop signal is never an alternative); a non-finite value wins over anything but a
    confident failure of another kind (which then keeps it as an alternative); a hang wins over the
    Ctrl-C that ended it; a generic phrase of a good ending (`generic`) gives way to a surer reading
    of the loop; otherwise the quiet verdict decides only when nothing, or nothing explained, was
    found, and its reading of the loop joins the evidence. `explains_wait`: the verdict names why
    the run waited (a process it waited for died), so a stall is its symptom."""
    failing = verdict is not None and verdict.category not in ("completed", "early-exit", "unknown")
    if (
        failing
        and ((generic and verdict.category == "numerical") or verdict.subtype == EMPTY_DATA)
        and _trained_on_nothing(evidence)
    ):
        # a NaN read from the output's words (`loss=nan`, NumPy's `Mean of empty slice`) where no
        # batch was ever given is a mean over no value: the empty loop is what failed, which the
        # probe's count of passes tells exactly (the no-batches rule)
        failing = False
    # the plain words of an end (an early-stopping rule's words mean to stop short of the total)
    said_finished = generic and verdict is not None and verdict.subtype == "completed/finished"
    ended = verdict is not None and verdict.category == "completed"
    stopped = verdict is not None and verdict.category == "interrupted"
    quiet = judge_quiet(
        evidence,
        quiet=not failing,
        said_finished=said_finished,
        said_ended=ended,
        said_stopped=stopped,
    )
    if quiet is None:
        return verdict
    if ended and "said-ended" in _rule_of(quiet).when:
        # a rule that read the run's words of a good end and found them the end of nothing
        return _with_previous(quiet, verdict)
    if evidence.nan_stop is not None:  # trainwatch stopped it: its own interrupt is no cause
        return quiet
    if evidence.stall is not None:
        if verdict is not None and (verdict.subtype in WAITS_EXPLAINED or explains_wait):
            # what the run waited for is named: the stall is its symptom, cited as such
            stalled = tuple(c for c in quiet.evidence if c.kind == "stall")
            return replace(verdict, evidence=cited_once(verdict.evidence, stalled))
        return _with_previous(quiet, verdict, drop_own_stop=evidence.stall.action == "stopped")
    if quiet.category == "numerical":
        if verdict is not None and verdict.category == "numerical":
            return verdict
        diverged_into_it = (
            verdict is not None
            and verdict.subtype == NAN_INPUT
            and evidence.progress is not None
            and evidence.progress.diverged
        )
        if verdict is not None and failing and verdict.confidence >= 0.75 and not diverged_into_it:
            alt = Alternative(
                "numerical", quiet.subtype, min(0.5, verdict.confidence - 0.05), quiet.summary
            )
            return replace(verdict, alternatives=verdict.alternatives + (alt,))
        return _with_previous(quiet, verdict)
    if quiet.category == "hang" and (
        verdict is None or verdict.category in ("interrupted", "unknown")
    ):
        return _with_previous(quiet, verdict)
    if verdict is None or verdict.category == "unknown":
        return _with_previous(quiet, verdict)
    # an early-stopping rule's own words and the probe's sight of its stop say the same: its words
    # stay (below), the probe's line beside them
    same_end = verdict.subtype == quiet.subtype == "completed/early-stopping"
    if not failing and not same_end and any(c.kind == "probe" for c in quiet.evidence):
        # seen from inside the program (the probe), not read from its words: a closing line
        # saying training finished does not outweigh a loop that got no batch
        return _with_previous(quiet, verdict)
    # an early-stopping rule's words mean to stop short of the total: a loop left unfinished is
    # what they said, not a surer reading against them
    on_purpose = verdict.subtype == "completed/early-stopping" and quiet.category == "early-exit"
    if (
        generic
        and not failing
        and quiet.confidence > verdict.confidence
        and not on_purpose
        and not same_end
    ):
        return replace(quiet, evidence=cited_once(quiet.evidence, verdict.evidence))
    if quiet.category == "completed" == verdict.category and _doubts_the_end(quiet):
        # the loop's own record doubts the good end its words claim (a loss that never moved, one
        # that rose after it learned): the finding stands, the words beside it (a real run printed
        # "Training finished" after ten equal losses and was told that nothing failed)
        return replace(quiet, evidence=cited_once(quiet.evidence, verdict.evidence))
    if quiet.category == "completed" == verdict.category and quiet.confidence > verdict.confidence:
        # A closing line ("`max_epochs` reached") and the loop's end seen with exit 0 say the
        # same: as sure as the surer of the two, the closing line's words kept.
        return replace(
            verdict,
            confidence=quiet.confidence,
            evidence=cited_once(verdict.evidence, quiet.evidence),
        )
    context = tuple(c for c in quiet.evidence if c.kind in ("progress", "stall"))
    return replace(verdict, evidence=cited_once(verdict.evidence, context))


def _doubts_the_end(quiet: Verdict) -> bool:
    """Is this a finished loop's verdict that doubts its good end: a rule on the loop's end whose
    alternatives name a failure?"""
    rule = _rule_of(quiet)
    return "finished" in rule.when and any(a[0] != "completed" for a in rule.alternatives)


def _with_previous(
    quiet: Verdict, previous: Verdict | None, drop_own_stop: bool = False
) -> Verdict:
    """The quiet verdict, the signatures' one kept as an alternative when it said something else."""
    if previous is None or previous.category in ("completed", "unknown", quiet.category):
        return quiet
    if drop_own_stop and previous.category == "interrupted":
        return quiet  # trainwatch sent that signal itself
    other = Alternative(
        previous.category,
        previous.subtype,
        min(previous.confidence, quiet.confidence - 0.05),
        previous.summary,
    )
    return replace(
        quiet, alternatives=(other,) + quiet.alternatives, culprit=quiet.culprit or previous.culprit
    )


# ---- facts ---------------------------------------------------------------------------------------
def _facts(evidence: Evidence, quiet: bool, said_stopped: bool = False):
    progress = evidence.progress
    stall = evidence.stall
    status = evidence.exit
    chains = _chains(evidence)
    log = evidence.log
    crashed = bool(
        (status is not None and (status.signal is not None or status.code not in (0, None)))
        or chains
        or (log is not None and log.fatal_errors)
    )
    facts: dict[str, bool] = {
        "crashed": crashed,
        # a status of 0 that a Python process of the run contradicts: it died of an uncaught
        # exception (a pipeline's status is its last command's: `python train.py | tee log`)
        "exit-zero": status is not None and status.code == 0 and not _died_uncaught(chains),
        "saved-log": status is None,
        "quiet": quiet and not crashed and not (log is not None and log.exit_hints),
        # trainwatch relayed a stop to the run (a Ctrl-C, a scheduler's SIGTERM to the job)
        "relayed-interrupt": "SIGINT" in evidence.forwarded_signals,
        "relayed-stop": bool(set(evidence.forwarded_signals) - {"SIGINT"}),
    }
    values: dict[str, str] = {"at": "", "first": "", "ending": "", "action": ""}
    if evidence.forwarded_signals:
        values["signal"] = evidence.forwarded_signals[0]
    cited: list[Cited] = []
    culprits: tuple[Culprit, ...] = ()
    if progress is not None:
        _progress_facts(progress, evidence, facts, values, cited)
    else:
        facts["no-progress"] = True
    facts["no-loss"] = progress is None or progress.loss_count == 0
    if stall is not None:
        signalled = stopped_from_outside(status, evidence.forwarded_signals)
        culprits = stall_facts(stall, facts, values, cited, signalled)
    if evidence.probe is not None and evidence.probe.gradients is not None:
        _gradient_facts(evidence.probe, facts, values, cited)
    if evidence.probe is not None and evidence.probe.loaders is not None:
        _loader_facts(evidence.probe.loaders, facts, values, cited)
        facts["nonfinite-after-empty-pass"] = _nonfinite_after_empty_pass(
            evidence.probe.loaders, progress
        )
    if evidence.probe is not None and evidence.probe.stopped_fits:
        _stopped_fit_facts(evidence.probe.stopped_fits[-1], facts, values, cited)
    if evidence.nan_stop is not None:
        _nan_stop_facts(evidence, facts, values, cited)
    blocked = _blocked_interrupt(chains)
    # A live run's stall watcher looks on all the time: where it saw no silence before the stop,
    # the wait the interrupt broke was the run at work (a main process spends most of its time
    # waiting on its DataLoader's workers), not a hang. A saved log has no clock to tell.
    if blocked is not None and (evidence.source != "run" or stall is not None):
        kind, where, chain = blocked
        facts["blocked-interrupt"] = True
        values.update(wait_kind=kind, where=where)
        cited.insert(0, Cited("exception", f"{chain.final.type} in {where}", chain.where))
    elif said_stopped and log is not None and log.cut_at is not None and not chains:
        # a traceback the stop printed, pasted short: its innermost frames say where it waited
        kind, where = classify_wait(log.cut_frames)
        if kind in BLOCKING:
            facts["blocked-interrupt"] = True
            values.update(wait_kind=kind, where=where)
            cited.insert(0, _cite_line(log.cut_at))
    if facts.get("stall-cut"):
        # the wait a signal broke, named by its traceback, is where the silent run was stuck
        broke = facts.get("blocked-interrupt") and values.get("wait_kind")
        values["cut_wait"] = broke or "no-progress"
        values["found_waiting"] = f", which found it waiting ({values['where']})" if broke else ""
    if status is None and log is not None and not chains:
        _cut_traceback_facts(log, facts, values, cited)
    if (
        status is None
        and progress is None
        or (progress is not None and progress.stopped_at is None)
    ):
        _startup_facts(evidence, facts, values, cited)
    if log is not None and not (log.chains or log.fatal_errors):
        if status is None or status.code == 0:
            facts["resumed-last"] = _resumed_last(evidence, log, values, cited)
        if status is None:
            facts["ends-on-save"] = _saved_last(log, values, cited)
        if status is None or status.code != 0:
            facts["launcher-killed"] = _launcher_killed(log, values, cited)
    if facts.get("unfinished") and log is not None and not chains:
        summary = _trainer_returned(log, cited)
        facts["trainer-returned"] = summary is not None
        passes = evidence.probe.loaders if evidence.probe is not None else None
        facts["trainer-ran-nothing"] = (
            summary is not None
            and bool(line_kinds()["returned-empty"].search(summary.text))
            and not (passes is not None and passes.taken)  # the probe saw batches: it trained
        )
    return facts, values, tuple(cited), culprits


# The counters of a position (`epoch 1/20, step 1/4`): each must be at its first value (0 or 1)
# for a loss printed there to come before any update.
_COUNTER = re.compile(r"\b(epoch|batch|step|iter)\w* (\d+)")


def _at_the_start(where: str | None) -> bool:
    """Was a loss printed at this position printed before any update: at the first step of the
    first epoch, or where no counter says otherwise? A print with an epoch and no step is the
    epoch's summary (`Epoch [1/20], Loss: inf`): an epoch of updates came before it."""
    if where is None:
        return True
    counters = {name: int(value) for name, value in _COUNTER.findall(where)}
    if any(value > 1 for value in counters.values()):
        return False
    return not ("epoch" in counters and len(counters) == 1)


_LEARNING_RATE = re.compile(r"(?i)learning rate")


def with_first_step_advice(verdict: Verdict) -> Verdict:
    """A non-finite loss the program's own check raised at the first step of the first epoch
    (`NaN loss detected at epoch 0 batch 0`): no update came before it, so the learning rate is no
    cause and the first batch's arithmetic and data lead the advice (real runs of the forty-ninth
    session were told to lower the learning rate first)."""
    raised = verdict.exception
    if verdict.subtype != "numerical/nan-loss" or raised is None:
        return verdict
    where = " ".join(f"{name} {n}" for name, n in _COUNTER.findall(raised.message.lower()))
    if not where or not _at_the_start(where):
        return verdict
    first = tuple(rules()[1].get("nonfinite-from-start", ()))
    rest = tuple(a for a in verdict.advice if not _LEARNING_RATE.search(a) and a not in first)
    summary = (
        f"The program's own check found the loss non-finite at the first step ({where}), before "
        "any update: the loss's own arithmetic (a log of 0, a division by zero) or the first "
        "batch's inputs or labels made it, not the learning rate."
    )
    return replace(verdict, summary=summary, advice=first + rest)


def _progress_facts(progress: ProgressFacts, evidence: Evidence, facts, values, cited) -> None:
    status = evidence.exit
    facts["finished"] = progress.finished is True
    facts["unfinished"] = progress.finished is False
    facts["no-progress"] = progress.stopped_at is None
    facts["loop-printed"] = progress.stopped_at is not None
    facts["diverged"] = progress.diverged
    if progress.stopped_at:
        values["at"] = f" at {progress.stopped_at}"
    if progress.loss_rose is not None:
        facts["loss-rose"] = True
        lowest, last = progress.loss_rose
        values.update(
            rose_lowest=f"{lowest:.4g}", rose_last=f"{last:.4g}", rose_times=f"{last / lowest:.0f}"
        )
    last = progress.last_loss
    if last is not None and math.isfinite(last) and abs(last) >= LOSS_OVERFLOWING:
        facts["loss-overflowing"] = True
        values["huge"] = f"{last:.3g}"
    if progress.flat_loss is not None:
        facts["flat-loss"] = True
        flat_value, flat_count = progress.flat_loss
        values.update(flat_value=f"{flat_value:g}", flat_count=str(flat_count))
    if progress.first_nonfinite_loss is not None:
        step, value, line = progress.first_nonfinite_loss
        facts["nonfinite-loss"] = True
        # never one finite loss (`losses` holds the finite ones only), over more than one value: a
        # single value printed, NaN, says nothing of the values before it (a loss printed once,
        # after the loop, by a run whose learning rate was too high)
        facts["nonfinite-from-start"] = (
            not progress.losses
            and progress.nonfinite_count > 1
            and _at_the_start(progress.first_nonfinite_at)
        )
        values["value"] = nonfinite_name(value)
        where = progress.first_nonfinite_at or f"step {step}"
        values["first"] = f" (first seen at {where})"
        cited.append(_cite_line(line, "loss"))
    elif progress.nonfinite_grad_norm is not None:
        value, line = progress.nonfinite_grad_norm
        facts["nonfinite-grad"] = True
        values["value"] = nonfinite_name(value)
        cited.append(_cite_line(line))
    elif progress.first_nonfinite_metric is not None:
        name, value, line = progress.first_nonfinite_metric
        facts["nonfinite-metric"] = True
        # every loss the run printed stayed finite: the metric's own arithmetic went undefined
        facts["finite-losses"] = progress.loss_count > 0 and not progress.diverged
        values.update(metric=name, value=nonfinite_name(value))
        cited.append(_cite_line(line))
    if status is not None and not facts.get("crashed"):
        values["ending"] = (
            "; the script carried on and exited normally"
            if progress.finished is not False
            else f"; the run then stopped early{values['at']} without an error"
        )
    line = progress.last_progress_line
    if line is not None and progress.stopped_at is not None:
        state = {None: "", True: " (finished)", False: " (unfinished)"}[progress.finished]
        cited.append(Cited("progress", f"last progress: {progress.stopped_at}{state}", line.where))
    if status is None and progress.finished is not True and progress.stopped_at is not None:
        ended = progress.lines_after_progress <= QUIET_END_LINES
        clean = not progress.error_after_progress
        # A loop with no total printed cannot be called unfinished: it only ends there.
        facts["ends-mid-loop"] = ended and clean and progress.finished is False
        facts["ends-in-loop"] = ended and clean and progress.finished is None
        facts["went-on"] = not ended and clean and progress.finished is False
        # the loop stopped where an epoch had been trained and validated, the next never begun:
        # the log's last line completes the epoch's steps and reports a validation metric
        position = progress.position
        log = evidence.log
        last = log.ending[-1] if log is not None and log.ending else None
        facts["ends-after-validation"] = (
            facts["ends-mid-loop"]
            and position.step is not None
            and position.step == position.steps
            and last is not None
            and bool(line_kinds()["evaluated"].search(last.text))
        )
        facts["closed-after-loop"] = (
            ended
            and clean
            and last is not None
            and not (log.chains or log.fatal_errors)
            and _closed_after_loop(last, progress, values, cited)
        )


def _rule_of(verdict: Verdict) -> Rule:
    """The rule that gave a quiet verdict (its signature is `quiet:<rule id>`)."""
    rule_id = (verdict.signature or "").removeprefix(QUIET_PREFIX)
    return next(r for r in rules()[0] if r.id == rule_id)


def _trained_on_nothing(evidence: Evidence) -> bool:
    probe = evidence.probe
    return probe is not None and probe.loaders is not None and probe.loaders.gave_nothing


# How long after a DataLoader pass gave no batch the loss printed NaN may be read and still be that
# pass's mean of no losses: the print comes right after the pass, and a loaded machine reads it up
# to a second late (checkpoints.STEP_LAG_S).
EMPTY_PASS_PRINT_LAG_S = 2.0


def _nonfinite_after_empty_pass(passes: LoaderPasses, progress: ProgressFacts | None) -> bool:
    """Was the first non-finite loss printed right after the first DataLoader pass that gave no
    batch, finite losses before it, and most passes empty: the NaN mean of epochs that had no
    batch (a generator used up by the first epoch), not a training that diverged (a real run:
    numerical/nan-loss 90%). An empty validation split beside a training split empties half the
    passes, and a loss that diverged beside it keeps its reading."""
    empty_at = passes.first_empty_at
    if empty_at is None or progress is None or progress.first_nonfinite_loss is None:
        return False
    read_at = progress.first_nonfinite_read_at
    return (
        bool(progress.losses)
        and passes.empty * 2 > passes.ended
        and not progress.diverged
        and read_at is not None
        and 0 <= read_at - empty_at <= EMPTY_PASS_PRINT_LAG_S
    )


def _loader_facts(passes: LoaderPasses, facts, values, cited) -> None:
    """The probe counted the DataLoader's passes: did any of them give a batch, or only some of
    them? And was any batch taken at all from the DataLoaders the run built?"""
    if passes.built and not passes.taken and not passes.ended:
        facts["loaders-unused"] = True
        built = "a DataLoader" if passes.built == 1 else f"{passes.built} DataLoaders"
        values.update(built=built, them="it" if passes.built == 1 else "any of them")
        cited.insert(0, Cited("probe", f"{built} built, 0 batches taken", "probe"))
    facts["no-batches"] = passes.gave_nothing
    facts["some-passes-empty"] = passes.empty > 0 and passes.batches > 0
    if not (facts["no-batches"] or facts["some-passes-empty"]):
        return
    shape = passes.describe()
    values["read"] = f" ({shape})" if shape else ""
    if facts["some-passes-empty"]:
        values.update(empty_passes=str(passes.empty), ended_passes=str(passes.ended))
        said = f"{passes.empty} of {passes.ended} DataLoader passes gave no batch"
    else:
        counted = "its one pass" if passes.ended == 1 else f"any of its {passes.ended} passes"
        values["passes"] = counted
        said = f"{passes.ended} DataLoader pass{'es' if passes.ended > 1 else ''}, 0 batches"
    cited.insert(0, Cited("probe", said + values["read"], "probe"))


def _gradient_facts(probe: ProbeFacts, facts, values, cited) -> None:
    """The probe saw optimizers built, not one gradient computed and no batch taken from a
    DataLoader: the training loop never ran (a loop over `range(1, epochs)` with one epoch). Or
    it read the losses `backward` was called on non-finite, the last of them too: the run ended
    diverged (one non-finite loss, or a few a mixed-precision scaler skipped, is no such end). Or
    every loss was a leaf, computed from no tensor of the model: nothing was trained."""
    counts, passes = probe.gradients, probe.loaders
    if counts is not None and counts.ended_nonfinite and counts.nonfinite_losses > 1:
        facts["nonfinite-at-backward"] = True
        values["nonfinite_steps"] = str(counts.nonfinite_losses)
        values["printed"] = ", though the output printed no loss value" if facts["no-loss"] else ""
        said = f"backward() called on a NaN or Inf loss {counts.nonfinite_losses} times, the last"
        seen = Cited("probe", f"{said} one included", "Tensor.backward")
        # first where the output printed no loss: then it is what the verdict rests on
        cited.insert(0 if facts["no-loss"] else len(cited), seen)
    if counts is not None and counts.losses_detached:
        facts["losses-detached"] = True
        values["backwards"] = str(counts.backwards)
        said = (
            f"backward() called {counts.backwards} times, each on a leaf (a loss with no history)"
        )
        cited.insert(0, Cited("probe", said, "Tensor.backward"))
    if counts is None or not counts.never_stepped or (passes is not None and passes.taken):
        return
    facts["never-stepped"] = True
    built = "an optimizer" if counts.optimizers == 1 else f"{counts.optimizers} optimizers"
    values["optimizers"] = built
    cited.insert(0, Cited("probe", f"{built} built, 0 gradients computed", "probe"))


def _stopped_fit_facts(stopped: FitStopped, facts, values, cited) -> None:
    """The probe saw a framework's training loop return with its stop flag set: a callback ended
    it, and says which one where its `stopped_epoch` does."""
    name = {"keras": "Keras's `fit`", "lightning": "Lightning's `Trainer.fit`"}.get(
        stopped.framework, stopped.framework
    )
    if stopped.epoch is not None and stopped.epochs is not None:
        where = f" after epoch {stopped.epoch} of {stopped.epochs}"
    else:
        where = f" in epoch {stopped.epoch}" if stopped.epoch is not None else ""
    facts["callback-stopped"] = True
    from trainwatch.diagnostics.watch.probe.records import NAN_STOP

    facts["callback-stopped-nan"] = stopped.reason == NAN_STOP
    values.update(loop=name, stopper=stopped.by or "a callback", stopped_where=where)
    said = f"{name} returned{where}, stopped by {stopped.by or 'a callback'}"
    cited.insert(0, Cited("probe", said, "probe"))


def _nan_stop_facts(evidence: Evidence, facts, values, cited) -> None:
    """trainwatch stopped the run for its non-finite loss (`--on-nan stop`)."""
    stop = evidence.nan_stop
    assert stop is not None
    progress = evidence.progress
    diverged = progress is not None and progress.diverged
    first = progress.first_nonfinite_loss if progress is not None else None
    facts["nan-stop"] = True
    how = f"trainwatch interrupted the run (SIGINT to its process group) {stop.elapsed_s:.1f} s in"
    if "SIGTERM" in stop.signals:
        how += f", terminated it (SIGTERM) {stop.grace_s:g} s later"
    if "SIGKILL" in stop.signals:
        how += ", and killed it (SIGKILL) when that did not end it"
    values.update(
        nan_kind=NAN_KINDS[0] if diverged else NAN_KINDS[1],
        value=nonfinite_name(first[1] if first is not None else float("nan")),
        first=stop.first_at or f"step {stop.first_step}",
        grew=", after growing by orders of magnitude" if diverged else "",
        counted="one non-finite loss" if stop.after == 1 else f"{stop.after} non-finite losses",
        stopped=f" at {stop.stopped_at}" if stop.stopped_at and stop.after > 1 else "",
    )
    cited[:] = [
        _cite_line(stop.first_line, "loss"),
        Cited("signal", how, "--on-nan stop"),
    ] + [c for c in cited if c.kind == "progress"]


def _cascade(evidence: Evidence, facts: dict[str, bool]) -> tuple[Cited, ...]:
    """What trainwatch's own stop caused (at a stall, or at a NaN with --on-nan stop): the
    KeyboardInterrupt it raised, the signal that ended the run. Consequences, never the cause."""
    status = evidence.exit
    stall = evidence.stall
    if stall is not None and stall.action == "stopped":
        if status is not None and status.signal in ("SIGTERM", "SIGKILL"):
            return (
                Cited(
                    "exit", f"ended by {status.signal}, trainwatch's stop at the stall", "waitpid"
                ),
            )
        return ()
    if not facts.get("nan-stop") or evidence.nan_stop is None:
        return ()
    cascade = [
        Cited("exception", f"{c.final.type}: raised by trainwatch's interrupt", c.where)
        for c in _chains(evidence)
        if c.final.short_type in ("KeyboardInterrupt", "SystemExit")
    ][:1]  # the probe's record, else the printed traceback: one is enough
    if status is not None and status.signal in evidence.nan_stop.signals:
        cascade.append(Cited("exit", f"ended by {status.signal}, trainwatch's", "waitpid"))
    return tuple(cascade)


def _cut_traceback_facts(log: LogFacts, facts, values, cited) -> None:
    """A saved log that ends inside a traceback, before the exception's line: the run raised, and
    the output was cut. Not where the innermost frames wait (a queue, a lock, a collective): a
    stuck run stopped by hand and pasted short ends so too."""
    frames, at = log.cut_frames, log.cut_at
    if not frames or at is None or classify_wait(frames)[0] in BLOCKING:
        return
    innermost = frames[-1]
    facts["cut-traceback"] = True
    values["cut_at"] = f"{innermost.file}:{innermost.line}, in {innermost.function}"
    cited.append(_cite_line(at))


def _startup_facts(evidence: Evidence, facts, values, cited) -> None:
    """A saved log of start-up lines that stops: no progress, no error, short, ending on a line
    that initialises, waits or connects."""
    log = evidence.log
    if log is None or evidence.exit is not None:
        return
    if log.chains or log.fatal_errors or log.child_failures:
        return
    # the closing lines as the parser reads them (colour, `\r` and the capture's prefix taken off):
    # `log.tail` holds them as written
    last = log.ending[-1] if log.ending else None
    if last is None:
        return
    values["last"] = last.text.strip()[:120]
    cited.append(_cite_line(last))
    # A few lines at least: one line that says nothing is no evidence of anything.
    written = sum(1 for line in log.tail if line.text.strip())
    facts["silent-log"] = not log.notable and written >= SILENT_MIN_LINES
    kinds = line_kinds()
    # read whole: a prefix learnt from a few alike lines may hold the words that say start-up
    # (DeepSpeed's `[utils.py:13:_initialize_parameter_parallel_groups]`)
    # a bar of the work before training (a dataset's map, a download) left where it stood is
    # start-up too
    facts["startup-only"] = (
        bool(kinds["startup"].search(last.whole)) or is_setup_bar(last.text)
    ) and log.lines <= STARTUP_MAX_LINES


def _resumed_last(evidence: Evidence, log: LogFacts, values, cited) -> bool:
    """A saved log whose last words say it resumed from a checkpoint (or from a step or epoch past
    the first), with no training step printed after them."""
    resumed = line_kinds()["resumed"]
    tail = list(log.ending[-QUIET_END_LINES:])
    found = next((line for line in reversed(tail) if resumed.search(line.text)), None)
    if found is None:
        return False
    progress = evidence.progress
    last_step = progress.last_progress_line if progress is not None else None
    if last_step is not None and last_step.number > found.number:
        return False
    if progress is not None and progress.finished:
        # the loop had reached its end before: a checkpoint restored to evaluate or test the
        # trained model (Lightning's `trainer.validate(ckpt_path="best")` after fit, a real run
        # read as a resumed run with nothing left to do)
        return False
    passes = evidence.probe.loaders if evidence.probe is not None else None
    if passes is not None and passes.batches:
        return False  # the probe saw batches given: it trained, printing no step
    values["resumed"] = found.text.strip()[:120]
    _cite_first(cited, found)
    return True


def _launcher_killed(log: LogFacts, values, cited) -> bool:
    """Do the log's last lines show a launcher killing its ranks (DeepSpeed's `Killing subprocess
    N`), which it does when one of them ended?"""
    kind = line_kinds()["launcher-killed"]
    # with its capture's prefix: the launcher's own `[launch.py:315:sigkill_handler] ` is learnt
    # as one when it fills the log's last lines
    found = next(((line, m) for line in log.ending if (m := kind.search(line.whole))), None)
    if found is None:
        return False
    values["launcher"] = found[1].group(0)
    _cite_first(cited, found[0])
    return True


def _trainer_returned(log: LogFacts, cited) -> LogLine | None:
    """The trainer's own end-of-training summary among the log's last lines, if there is one."""
    kind = line_kinds()["returned"]
    said = next((line for line in reversed(log.ending) if kind.search(line.text)), None)
    if said is not None:
        cited.append(_cite_line(said))
    return said


def _saved_last(log: LogFacts, values, cited) -> bool:
    """A saved log whose last line says the run saved its model, weights or a checkpoint."""
    last = log.ending[-1] if log.ending else None
    if last is None or not line_kinds()["saved"].search(last.text):
        return False
    said = last.text.strip()
    values["saved"] = said[:120]
    # "Saving checkpoint to ckpt/epoch2.pt ..." announces a save; its end was never printed
    values["save_said"] = (
        "began to save its work" if said.endswith(("...", "\u2026")) else "saved its work"
    )
    _cite_first(cited, last)
    return True


def _closed_after_loop(last: LogLine, progress: ProgressFacts, values, cited: list[Cited]) -> bool:
    """Is a saved log's last line, which its loop's last step came shortly before, the program's
    own bare closing word (`done`, `Finished.`)? Alone such a word says little (a download's
    `Done!` before training, dev S006, was a hang); after the loop's steps, the code after the
    loop ran."""
    stepped = progress.last_progress_line
    if stepped is None or stepped.number >= last.number:
        return False
    if not line_kinds()["closed"].search(last.text):
        return False
    values["closed"] = last.text.strip()[:60]
    _cite_first(cited, last)
    return True


def _cite_line(line: LogLine, kind: str = "log") -> Cited:
    """A log line as evidence, as written (up to CITED_CHARS), where it stands in the log."""
    return Cited(kind, line.text.strip()[:CITED_CHARS], line.where)


def _cite_first(cited: list[Cited], line: LogLine) -> None:
    """Put this line first among the evidence, unless it is cited already."""
    if not any(c.source == line.where for c in cited):
        cited.insert(0, _cite_line(line))


def _died_uncaught(chains: tuple[ExceptionChain, ...]) -> bool:
    """Did a process the probe watched die of an exception its main thread did not catch (not a
    SystemExit, which is an exit the program chose)?"""
    return any(
        c.origin == "probe" and c.thread is None and c.final.short_type != "SystemExit"
        for c in chains
    )


# multiprocessing's exit-time finalizers in a child process: a Ctrl-C reaches the DataLoader's
# workers too, and one that was leaving joins its queue's feeder thread there (a real run's
# `Process Process-1:` traceback read as the program stuck in a join, while its main process was in
# `loss.backward()`).
EXIT_FINALIZERS = frozenset(("_exit_function", "_run_finalizers"))


def _blocked_interrupt(chains: tuple[ExceptionChain, ...]):
    """(kind, where, chain) of the first interrupted wait of the program's (a launcher's own wait
    for its ranks, mp.spawn's join or torchrun's agent, is none: it waits whatever they do)."""
    for chain in chains:
        if chain.final.short_type not in ("KeyboardInterrupt", "SystemExit"):
            continue
        if any(f.function in EXIT_FINALIZERS for f in chain.final.frames):
            continue  # a child process's exit (a DataLoader worker's queue join), not the stop
        kind, where = classify_wait(chain.final.frames)
        if kind in BLOCKING:
            return kind, where, chain
    return None


def _chains(evidence: Evidence) -> tuple[ExceptionChain, ...]:
    chains: list[ExceptionChain] = []
    if evidence.probe is not None:
        chains.extend(evidence.probe.chains)
    chains.extend(evidence.log_chains)
    return tuple(chains)


# ---- the verdict ---------------------------------------------------------------------------------
def _render(rule: Rule, values, cited, culprits, shared, cascade=()) -> Verdict:
    fill = _Fill(values)
    subtype = rule.subtype.format_map(fill) if rule.subtype else None
    if subtype is not None and subtype.endswith("/"):
        subtype = None
    if rule.advice_by_wait:
        waits = shared.get("wait", {})
        advice = tuple(waits.get(values.get("wait_kind", ""), waits.get("other", ())))
    elif isinstance(rule.advice, str):
        advice = tuple(shared.get(rule.advice, ()))
    else:  # a rule's own advice may name the run's figures, as its summary does (`{silent}`)
        advice = tuple(text.format_map(fill) for text in rule.advice)
    return Verdict(
        rule.category,
        subtype,
        rule.confidence,
        rule.summary.format_map(fill),
        signature=QUIET_PREFIX + rule.id,
        alternatives=tuple(
            Alternative(c, s or None, conf, text) for c, s, conf, text in rule.alternatives
        ),
        evidence=cited_once(cited),
        cascade=tuple(cascade),
        culprit=culprits[0] if culprits else None,
        other_culprits=tuple(culprits[1:]),
        advice=advice,
    )


class _Fill(dict):
    """Template values; a name the facts did not set reads as empty."""

    def __missing__(self, key: str) -> str:
        return ""
