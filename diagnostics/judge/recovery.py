"""The morning after: the sample the failure was loading, and the checkpoint to resume from, put
into the verdict (its `sample`, its summary and its advice).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import TYPE_CHECKING

from trainwatch.diagnostics.evidence import Evidence
from trainwatch.diagnostics.judge.classify import GENERIC_CODE_SUBTYPE
from trainwatch.diagnostics.verdict import Alternative, Cited, Verdict

if TYPE_CHECKING:
    from trainwatch.diagnostics.read.progress import ProgressFacts
    from trainwatch.diagnostics.watch.probe.records import ProbeFacts

# Verdicts of a run stopped from outside or stuck, which resuming from a checkpoint answers.
RESUMABLE = ("interrupted", "hang", "oom")
# A run stopped from outside, stuck, or killed for no known reason resumes as it was: where to
# resume comes first. Any other failure would recur: its fix comes first.
RESUME_FIRST = ("interrupted", "hang", "unknown")
NAN_INPUT_SUBTYPE = "data/nan-input"


def with_sample(verdict: Verdict, evidence: Evidence) -> Verdict:
    """Attach the probe's sample when it belongs to the verdict's exception: named in the summary,
    shown in the report, and a command to load it again in the advice."""
    sample = evidence.probe.sample if evidence.probe is not None else None
    if sample is None:
        return verdict
    types = {e.type.rsplit(".", 1)[-1] for e in verdict.exception_chain}
    if verdict.exception is not None:
        types.add(verdict.exception.short_type)
    if sample.short_exception not in types:
        return verdict
    verdict = _nonfinite_inputs(verdict, sample)
    summary = verdict.summary
    if sample.identified or sample.labels is not None:
        summary = f"{summary.rstrip()} It failed on {sample.describe()}."
    advice = verdict.advice
    command = sample.reload_command()
    if command:
        advice = (f"Load that one sample again, to see the error in seconds: {command}",) + advice
    length = sample.past_the_end
    if length is not None:
        advice = (
            f"It failed on index {length - 1}, the last of the {length} items the Dataset's "
            "`__len__` says it has: a `__len__` that counts more items than the data holds "
            "fails exactly there. Make it return the number of items "
            "`__getitem__` reads (`len(self.items)`).",
        ) + advice
    return replace(verdict, sample=sample, summary=summary, advice=advice)


def _nonfinite_inputs(verdict: Verdict, sample) -> Verdict:
    """A plain error about NaN/Inf (the program's own check) raised while the user's tensors held
    NaN/Inf is a data problem, not a bug: say so, with the rows."""
    rows = [r for r in sample.nonfinite if r.user]
    if not rows:
        return verdict
    batch = _batch(rows)
    if verdict.subtype == NAN_INPUT_SUBTYPE:  # the log said so already; the probe saw the rows
        return replace(
            verdict,
            confidence=max(verdict.confidence, NAN_INPUT_CONFIDENCE),
            summary=f"{verdict.summary.rstrip()} {batch}.",
        )
    if verdict.category == "numerical":
        # the program's own check of its loss (`raise RuntimeError("Loss is nan")`) stopped it
        # before any backward(): the inputs it was computed from held NaN already (a real run's
        # missing feature value was read as a divergence, with learning-rate advice). Under
        # `torch.no_grad()` a model's outputs have no grad_fn either: a tensor named as one, or
        # NaN in every row (a diverged model's, where bad samples are a few rows), stays numerical
        # (a real run's NaN logits at sampling were called bad data)
        inputs = [r for r in rows if not _MODEL_OUTPUT.search(r.name) and r.count < r.shape[0]]
        if not inputs:
            return verdict
        return _nan_input(
            verdict,
            f"The loss went non-finite on inputs that already held NaN or Inf: {_batch(inputs)}.",
        )
    if verdict.subtype not in (GENERIC_CODE_SUBTYPE, None):
        return verdict
    if verdict.category not in ("code", "unknown"):
        return verdict
    return _nan_input(verdict, f"The input data holds NaN or Inf values: {batch}.")


def with_nonfinite_inputs(verdict: Verdict, evidence: Evidence) -> Verdict:
    """A loss gone NaN or Inf on a batch that already held NaN or Inf (the probe searched the
    stack of the first such loss's `backward`): the data is the cause, not the arithmetic, unless
    the loss had been diverging before."""
    rows = evidence.probe.nonfinite_inputs if evidence.probe is not None else ()
    if not rows or verdict.category != "numerical":
        return verdict
    if evidence.progress is not None and evidence.progress.diverged:
        # the printed loss grew by orders of magnitude first: tensors computed from the model on
        # the way (a Q-learning target, detached, from a network blowing up) overflowed with it
        # (a real run's DQN read as bad data, 80%)
        return verdict
    batch = _batch(rows)
    judged = _nan_input(
        verdict, f"The loss turned non-finite on a batch that already held NaN or Inf: {batch}."
    )
    seen = Cited("probe", f"at the first non-finite loss's backward(): {batch}", "Tensor.backward")
    return replace(judged, evidence=(seen,) + judged.evidence)


def _batch(rows) -> str:
    """Of the tensors holding NaN/Inf, the batch's (the shortest first dimension, rather than the
    dataset's): "NaN/Inf in `x` (8×4, in main): row 5; NaN/Inf in `y` (8×1, in main): row 5"."""
    size = min(r.shape[0] for r in rows)
    return "; ".join(r.describe() for r in rows if r.shape[0] == size)


# The names of a model's outputs, which under torch.no_grad() look like inputs to the probe's scan
_MODEL_OUTPUT = re.compile(r"(?i)logit|prob|pred|output|^out\b|^y_?hat|score")
# The reading the rows of NaN input replace stays an alternative, below the data verdict
NAN_INPUT_CONFIDENCE = 0.8
REPLACED_BY_NAN_INPUT = 0.5


def _nan_input(verdict: Verdict, summary: str) -> Verdict:
    other = Alternative(
        verdict.category,
        verdict.subtype,
        min(verdict.confidence, REPLACED_BY_NAN_INPUT),
        verdict.summary,
    )
    return replace(
        verdict,
        category="data",
        subtype=NAN_INPUT_SUBTYPE,
        confidence=NAN_INPUT_CONFIDENCE,
        summary=summary,
        alternatives=(other,) + verdict.alternatives,
        signature=None,
        advice=(
            "Check those rows' source samples for missing or infinite values, and the "
            "preprocessing for a division by zero (a normalisation by a zero std) or log(0).",
            "Drop or repair such samples when the dataset is built: torch.isfinite(x).all() "
            "per sample finds them.",
        ),
        doc_url=None,
    )


# A run that finished while its last checkpoint save failed (a full disk, a quota, a folder gone)
# and went on: the training completed, but what it trained is not on disk. Less surely well, and
# the failed save the alternative.
FAILED_SAVE_COMPLETED = 0.6
FAILED_SAVE_ALTERNATIVE = 0.5


def with_failed_saves(verdict: Verdict, evidence: Evidence) -> Verdict:
    """A completed run whose latest checkpoint save failed, as the probe saw (the program caught
    the error and went on): said in the summary, with where the last complete checkpoint is."""
    probe = evidence.probe
    facts = probe.checkpoints if probe is not None else None
    last = facts.last if facts is not None else None
    if verdict.category != "completed" or last is None or last.state != "failed":
        return verdict
    failed = [s for s in facts.saves if s.state == "failed"]
    point = facts.resume_point()
    kept = (
        f"the last complete one is {point.path}"
        + (f" ({point.progress})" if point.progress else "")
        if point is not None
        else "none was written completely"
    )
    error = last.error or "an error"
    said = (
        f" But {len(failed)} of its {facts.total} checkpoint saves failed ({error}), the last of "
        f"them {last.path}: the program went on without them, so the model as trained is not on "
        f"disk; {kept}."
    )
    alt = Alternative(
        "library",
        None,
        FAILED_SAVE_ALTERNATIVE,
        "Its checkpoint saves failed: most often a full disk or quota, or a folder that is "
        "read-only or gone.",
    )
    return replace(
        verdict,
        summary=verdict.summary + said,
        confidence=min(verdict.confidence, FAILED_SAVE_COMPLETED),
        alternatives=(alt,) + verdict.alternatives,
        advice=(
            "Find why the saves failed (the warnings the program printed; `df -h` and the "
            "folder's permissions) and save the model again before relying on it.",
        )
        + verdict.advice,
    )


def with_training_done(verdict: Verdict, evidence: Evidence) -> Verdict:
    """A failure after the training loop reached its total (an export, the final save, a metric,
    an upload) says so: the training itself finished, and what failed came after it (real runs:
    every report of such a failure read as one of training)."""
    progress = evidence.progress
    if progress is None or not progress.ran_to_its_end or not progress.stopped_at:
        return verdict
    if verdict.category in ("completed", "early-exit"):
        return verdict
    status = evidence.exit
    failed = status.status != 0 if status is not None else verdict.exception is not None
    if not failed:
        return verdict
    return replace(
        verdict,
        summary=f"{verdict.summary} Training itself had finished (the output reached "
        f"{progress.stopped_at}): it stopped in what came after the loop.",
    )


def with_training_seen(probe: ProbeFacts, progress: ProgressFacts | None) -> ProbeFacts:
    """The probe's checkpoint facts, told whether the run was seen training: a progress line, a
    loss, a batch the probe saw taken, or a gradient it saw computed. A run never seen so (waiting
    at a rendezvous, stuck in a download) had no training to save, and lost none."""
    if probe.checkpoints is None:
        return probe
    loaders, gradients = probe.loaders, probe.gradients
    trained = (
        bool(progress is not None and (progress.stopped_at or progress.loss_count))
        or bool(loaders is not None and loaders.taken)
        or bool(gradients is not None and gradients.backwards)
    )
    return replace(probe, checkpoints=replace(probe.checkpoints, trained=trained))


def with_resume_advice(verdict: Verdict, evidence: Evidence) -> Verdict:
    """For a run interrupted, preempted, killed or hung: the checkpoint to resume from (the latest
    written completely), the ones not to (partial, changed), or that there is none."""
    probe = evidence.probe
    if probe is None or not probe.loaded or probe.checkpoints is None:
        return verdict  # no probe watched the saves: nothing is known of them
    killed = evidence.exit is not None and evidence.exit.signal is not None
    # a run gone non-finite resumes from before it: said where the checkpoints tell which
    numerical = verdict.category == "numerical"
    if verdict.category not in RESUMABLE and not killed and not numerical:
        return verdict
    from trainwatch.diagnostics.watch.probe.checkpoints import (
        SEEN_SAVES,
        STATES,
        describe_duration,
        resume_code,
    )

    facts = probe.checkpoints
    point, unusable = facts.resume_point(), facts.unusable()
    if numerical and not killed and point is None and not unusable:
        return verdict  # no checkpoint to name: the category's advice says what to do
    lines = []
    for save in unusable[-2:]:
        lines.append(f"Do not resume from {save.path}: {STATES[save.state]}.")
    if point is not None:
        progress = f" ({point.progress})" if point.progress else ""
        lost = facts.lost_s()
        since = ""
        if lost is not None:
            since = (
                ", and nothing trained after it"
                if lost == 0
                else f", {describe_duration(lost)} of training before the run ended"
            )
        lines.append(
            f"Resume from {point.path}{progress}, written completely{since}: "
            f"{resume_code(point.api, json.dumps(point.path), point.epoch)}"
        )
    elif facts.total:
        lines.append(
            "No complete checkpoint is left to resume from: the run starts again from scratch."
        )
    elif not facts.trained:
        pass  # never seen training: no training to save, none lost (a rendezvous, a download)
    elif not facts.watched:
        lines.append(
            f"trainwatch sees checkpoint saves made with {SEEN_SAVES}, and this run used none of "
            "them: if it saved its own way (a booster's save_model, a checkpoint callback, "
            "orbax), resume from the latest save it wrote."
        )
    else:
        lines.append(
            f"No checkpoint save was seen (trainwatch sees {SEEN_SAVES} saves): unless the run "
            "saved another way, a restart begins from scratch. Save one every few minutes of "
            "training (torch.save, ModelCheckpoint, save_steps)."
        )
    if verdict.category in RESUME_FIRST:
        return replace(verdict, advice=tuple(lines) + verdict.advice)
    # a failure the run would meet again on resuming (a leak, an oversized batch, a blow-up):
    # its fix first, then where to resume once it is fixed
    return replace(verdict, advice=verdict.advice + tuple(lines))
