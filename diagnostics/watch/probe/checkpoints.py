"""The checkpoints a run wrote, read back from the probe's `checkpoint` records: `CheckpointFacts`.

The probe writes a `begin` record when a save starts (torch.save, Lightning's and Hugging Face's
checkpoint saves, safetensors) and an `end` record, with the size it left on disk, when it returns
(`failed` when it raised); docs/probe.md. Read after the run, each save is checked against the
disk: a save that began and never ended is partial (the run was killed while writing it), one whose
size has changed since is suspect, one that a later save wrote over or that was deleted since
(checkpoint rotation) cannot be resumed from. The latest complete one is where to resume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

MAX_SAVES = 50  # saves kept in the facts: the first and the latest (a run may save thousands)
_MAX_SIZE_ENTRIES = 2000  # as the probe: files summed for a checkpoint directory's size

# What a save's state means, in the report's words.
STATES = {
    "complete": "written completely",
    "partial": "partial (the run ended while writing it)",
    "failed": "failed (the save raised an error)",
    "changed": "changed since (its size on disk differs from what was written)",
    "removed": "removed since (checkpoint rotation, or by hand)",
    "overwritten": "overwritten by a later save to the same path",
    "after-nonfinite": "saved after the loss went non-finite (its weights may hold NaN or Inf)",
}
# The saves the probe sees (sitecustomize's hooks): a run that saved only another way (Orbax, a
# TensorFlow checkpoint, its own file writes) shows none of them.
SEEN_SAVES = "torch.save, Lightning, Hugging Face, safetensors and Keras"

# How each library resumes from its checkpoint, with {path} for the path.
_RESUME = {
    "lightning": "trainer.fit(model, ckpt_path={path})",
    "transformers": "trainer.train(resume_from_checkpoint={path})",
    "torch.save": "checkpoint = torch.load({path}), then load its state into the model and "
    "optimizer",
    "safetensors": "model.load_state_dict(safetensors.torch.load_file({path}))",
    "keras": "model = keras.models.load_model({path}), then model.fit(..., initial_epoch={epochs})",
    "keras-weights": "model.load_weights({path}) on the model built as before, then "
    "model.fit(..., initial_epoch={epochs})",
}
EPOCHS_UNKNOWN = "<the epochs done>"


@dataclass(frozen=True)
class CheckpointSave:
    """One checkpoint save the program made, and what is on disk of it now."""

    path: str
    # "torch.save", "lightning", "transformers", "safetensors", "keras", "keras-weights"
    api: str
    pid: int
    began: float  # time.time() when the save started
    ended: float | None  # when it returned; None when it never did
    size: int | None  # bytes on disk when it returned (None for a file object the program owns)
    size_now: int | None  # bytes on disk when the run was read; None when the path is gone
    state: str  # a key of STATES
    epoch: float | None = None
    step: int | None = None
    error: str | None = None  # the exception type of a failed save

    @property
    def progress(self) -> str | None:
        """`epoch 2, step 30`, when the probe saw either."""
        parts = []
        if self.epoch is not None:
            parts.append(f"epoch {self.epoch:g}")
        if self.step is not None:
            parts.append(f"step {self.step}")
        return ", ".join(parts) or None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "api": self.api,
            "state": self.state,
            "began": self.began,
            "ended": self.ended,
            "size": self.size,
            "size_now": self.size_now,
            "epoch": self.epoch,
            "step": self.step,
            "error": self.error,
        }


# How long after the program printed a line trainwatch may receive it, on a loaded machine: a save
# that says its step, begun this long before, is after the line when its step is the line's or
# later (a fast loop saves many steps in this time, so a save without its step is not judged so)
STEP_LAG_S = 1.0
# Less training than this after the resume point is none (the save and the last output of a loop
# that then sat idle are milliseconds apart, but on a loaded machine trainwatch reads that output
# a little later: 0.113 s in a full test suite's run of a hang right after its save)
NOTHING_LOST_S = 0.25


@dataclass(frozen=True)
class CheckpointFacts:
    """Every checkpoint save of a run (the probe loaded), and the span of the run."""

    saves: tuple[CheckpointSave, ...] = ()  # oldest first; the first and the latest MAX_SAVES
    total: int = 0  # saves in all
    run_started: float | None = None
    # when the run last worked: its end, or where an idle silence that lasted to the end began
    trained_until: float | None = None
    # did the run load a save trainwatch sees (SEEN_SAVES)? No save seen means none made only then
    watched: bool = True
    # was it seen training (a progress line, a loss, a batch taken, a gradient computed)? A run
    # that never was (waiting at a rendezvous, a download) had no training to lose or to save
    trained: bool = True

    @property
    def last(self) -> CheckpointSave | None:
        """The latest save begun, whatever became of it."""
        return self.saves[-1] if self.saves else None

    def resume_point(self) -> CheckpointSave | None:
        """The latest save that is on disk as it was written: where to resume."""
        for save in reversed(self.saves):
            if save.state == "complete":
                return save
        return None

    def unusable(self) -> tuple[CheckpointSave, ...]:
        """Saves after the resume point that cannot be resumed from (partial, failed, changed)."""
        point = self.resume_point()
        return tuple(
            s
            for s in self.saves
            if s.state in ("partial", "failed", "changed", "after-nonfinite")
            and (point is None or s.began > point.began)
        )

    def lost_s(self) -> float | None:
        """Training time since the resume point (since the start when there is none); 0.0 when
        that is less than NOTHING_LOST_S."""
        if self.trained_until is None:
            return None
        point = self.resume_point()
        since = point.ended if point is not None else self.run_started
        if since is None:
            return None
        lost = self.trained_until - since
        return lost if lost >= NOTHING_LOST_S else 0.0

    def with_span(self, started: float, trained_until: float) -> CheckpointFacts:
        return replace(self, run_started=started, trained_until=trained_until)

    def with_nonfinite_since(self, since: float, step: int | None = None) -> CheckpointFacts:
        """The saves begun after the loss first went non-finite (read live at `since`, printed at
        `step` when known) marked as such: not a point to resume from. The line is read a little
        after the program printed it, and a save right after the print may begin first (a real
        run saved step 200 just after printing its NaN loss, and that save was offered to resume
        from): one that began up to STEP_LAG_S before the reading counts as after it when its
        own step is that step or later."""
        return replace(
            self,
            saves=tuple(
                replace(s, state="after-nonfinite")
                if s.state == "complete" and _after(s, since, step)
                else s
                for s in self.saves
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON report's `checkpoints` section (docs/report.md)."""
        point = self.resume_point()
        lost = self.lost_s()
        return {
            "total": self.total,
            "watched": self.watched,
            "trained": self.trained,
            "last": None if self.last is None else self.last.to_dict(),
            "resume_from": None if point is None else point.to_dict(),
            "unusable": [s.to_dict() for s in self.unusable()],
            "lost_s": None if lost is None else round(lost, 3),
            "run_started": self.run_started,
            "saves": [s.to_dict() for s in self.saves[-20:]],
        }


def resume_code(api: str, path: str, epoch: float | None = None) -> str:
    """The call that resumes from a checkpoint written by `api`; `path` is already quoted, `epoch`
    the epochs done when it was written, where the probe saw them."""
    epochs = EPOCHS_UNKNOWN if epoch is None else f"{epoch:g}"
    return _RESUME.get(api, _RESUME["torch.save"]).format(path=path, epochs=epochs)


def describe_duration(seconds: float) -> str:
    """`0.4 s`, `12 s`, `4 min 12 s`, `3 h 05 min`."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def read_checkpoints(records: list[dict[str, Any]], watched: bool = True) -> CheckpointFacts:
    """`CheckpointFacts` from every process's `checkpoint` records, checked against the disk;
    `watched`: did any process load a save the probe wraps?"""
    begun: dict[tuple[int, int], dict[str, Any]] = {}
    done: dict[tuple[int, int], dict[str, Any]] = {}
    for record in records:
        key = (_int(record.get("pid")) or 0, _int(record.get("seq")) or 0)
        if not isinstance(record.get("path"), str):
            continue
        if record.get("state") == "begin":
            begun[key] = record
        elif record.get("state") in ("end", "failed"):
            done[key] = record
    saves = sorted(
        (_save(begin, done.get(key)) for key, begin in begun.items()), key=lambda s: s.began
    )
    latest = {s.path: s for s in saves}  # the last save to each path is what the path holds
    renamed = _renamed(saves)
    checked = [
        renamed[id(s)]
        if id(s) in renamed
        else _checked(s)
        if latest[s.path] is s
        else replace(s, state="overwritten")
        for s in saves
    ]
    kept = checked if len(checked) <= MAX_SAVES else checked[:5] + checked[-(MAX_SAVES - 5) :]
    return CheckpointFacts(saves=tuple(kept), total=len(checked), watched=watched or bool(saves))


# A save to a temporary name renamed when complete (`torch.save(state, "last.pt.tmp")` then
# `os.replace(..., "last.pt")`, the safe way): the name it was renamed to
_TEMP_SUFFIXES = (".tmp", ".temp", ".partial", ".part", ".incomplete", "~")
_TEMP_PREFIXES = ("tmp_", "tmp-", "tmp.", ".tmp_", ".tmp-", ".tmp.")


def _renamed(saves: list[CheckpointSave]) -> dict[int, CheckpointSave]:
    """The saves to a temporary name that are on disk now under the name they were renamed to,
    keyed by id(): of each temporary path, the last save that ended with the size the renamed
    file has (a real run's atomic saves read "no complete checkpoint left")."""
    found: dict[int, CheckpointSave] = {}
    for path in dict.fromkeys(s.path for s in saves):
        final = next((f for f in _renamed_names(path) if os.path.isfile(f)), None)
        if final is None:
            continue
        try:
            stat = os.stat(final)
        except OSError:
            continue
        ended = [
            s
            for s in saves
            if s.path == path
            and s.state == "end"
            and s.size == stat.st_size
            and s.began <= stat.st_mtime + 1
        ]
        if ended:
            last = ended[-1]
            found[id(last)] = replace(last, path=final, size_now=stat.st_size, state="complete")
    return found


def _renamed_names(path: str) -> list[str]:
    """The names a temporary file is renamed to when complete: `last.pt` for `last.pt.tmp`,
    `tmp_last.pt` or `last.tmp.pt`."""
    folder, name = os.path.split(path)
    names = [name[: -len(x)] for x in _TEMP_SUFFIXES if name.endswith(x) and len(name) > len(x)]
    names += [name[len(x) :] for x in _TEMP_PREFIXES if name.startswith(x) and len(name) > len(x)]
    if ".tmp." in name:
        names.append(name.replace(".tmp.", ".", 1))
    return [os.path.join(folder, n) for n in names]


def _after(save: CheckpointSave, since: float, step: int | None) -> bool:
    """Did the save begin after the loss went non-finite (`with_nonfinite_since`)?"""
    if save.began > since:
        return True
    stepped = step is not None and save.step is not None and save.step >= step
    return stepped and save.began > since - STEP_LAG_S


def size_on_disk(path: str) -> int | None:
    """Bytes at `path`: a file's size, or the files of a directory summed (two levels, as the
    probe counts them); None when nothing is there."""
    try:
        if not os.path.isdir(path):
            return os.stat(path).st_size
        total, count, pending = 0, 0, [(path, 0)]
        while pending and count < _MAX_SIZE_ENTRIES:
            where, depth = pending.pop()
            for entry in os.scandir(where):
                count += 1
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
                elif depth < 1 and entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, depth + 1))
        return total
    except OSError:
        return None


def _save(begin: dict[str, Any], end: dict[str, Any] | None) -> CheckpointSave:
    state = "partial" if end is None else ("failed" if end.get("state") == "failed" else "end")
    step = _number(begin.get("step"))
    return CheckpointSave(
        path=begin["path"],
        api=str(begin.get("api") or "?"),
        pid=_int(begin.get("pid")) or 0,
        began=_number(begin.get("time")) or 0.0,
        ended=None if end is None else _number(end.get("time")),
        size=None if end is None else _int(end.get("size")),
        size_now=None,
        state=state,
        epoch=_number(begin.get("epoch")),
        step=None if step is None else int(step),
        error=None if end is None else end.get("error"),
    )


def _checked(save: CheckpointSave) -> CheckpointSave:
    """The save's state once its path is looked at now."""
    now = size_on_disk(save.path)
    state = save.state
    if state == "end":
        if now is None:
            state = "removed"
        elif save.size is not None and now != save.size:
            state = "changed"
        else:
            state = "complete"
    return replace(save, size_now=now, state=state)


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
