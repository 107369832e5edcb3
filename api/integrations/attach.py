"""`trainwatch run --attach-to wandb|tensorboard`: the verdict attached to the run the program
logged, after the program ended.

The program's run is found from what it left: W&B's `wandb/latest-run` (under WANDB_DIR, else the
working directory or a folder below it, as `wandb.init(dir=...)` puts it) when it was written
during this run, resumed by its id (offline when the run was offline, so nothing goes to the
network that the program did not send); TensorBoard's log directory (TENSORBOARD_LOGGING_DIR, else
the directory of the newest event file written during this run under the working directory),
where a text summary is added as a new event file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainwatch.diagnostics.verdict import Diagnosis

TARGETS = ("wandb", "tensorboard")
SEARCH_DEPTH = 4  # folders below the working directory searched for event files
SKIPPED = (".git", ".venv", "venv", "node_modules", "__pycache__", "wandb")


class AttachError(Exception):
    """The verdict could not be attached; the message says why, in one sentence."""


def attach(
    diagnosis: Diagnosis,
    target: str,
    cwd: str,
    env: Mapping[str, str],
    since: float,
) -> str:
    """Attach the verdict to the program's `target` run; returns where it went. Raises
    AttachError when there is no such run or its library is missing."""
    if target == "wandb":
        return _to_wandb(diagnosis, cwd, env, since)
    if target == "tensorboard":
        return _to_tensorboard(diagnosis, cwd, env, since)
    raise AttachError(f"unknown target {target!r}: choose from {', '.join(TARGETS)}")


def wandb_run_dir(cwd: str, env: Mapping[str, str], since: float) -> str | None:
    """The W&B run directory the program wrote during this run, if any: under WANDB_DIR when it
    is set, else the newest under the working directory or a folder below it."""
    named = env.get("WANDB_DIR")
    bases = [named] if named else [cwd, *_folders_below(cwd, wanted="wandb")]
    newest: tuple[float, str] | None = None
    for base in bases:
        for root in (os.path.join(base, "wandb"), base):
            latest = os.path.join(root, "latest-run")
            if os.path.islink(latest) or os.path.isdir(latest):
                path = os.path.realpath(latest)
                if os.path.isdir(path):
                    mtime = os.path.getmtime(path)
                    if mtime >= since - 1 and (newest is None or mtime > newest[0]):
                        newest = (mtime, path)
    return None if newest is None else newest[1]


def tensorboard_dir(cwd: str, env: Mapping[str, str], since: float) -> str | None:
    """The TensorBoard log directory the program wrote during this run, if any."""
    named = env.get("TENSORBOARD_LOGGING_DIR")
    if named:
        return named
    newest: tuple[float, str] | None = None
    for folder in (cwd, *_folders_below(cwd)):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name.startswith("events.out.tfevents.") and not name.endswith(".trainwatch"):
                mtime = os.path.getmtime(os.path.join(folder, name))
                if mtime >= since - 1 and (newest is None or mtime > newest[0]):
                    newest = (mtime, folder)
    return None if newest is None else newest[1]


def _folders_below(cwd: str, wanted: str | None = None) -> list[str]:
    """The folders below the working directory, SEARCH_DEPTH deep, less those never searched;
    with `wanted`, the parents of the folders of that name (a W&B `dir=`)."""
    found = []
    base_depth = cwd.rstrip(os.sep).count(os.sep)
    for folder, dirs, _ in os.walk(cwd):
        if wanted is not None and wanted in dirs and folder != cwd:
            found.append(folder)
        dirs[:] = [d for d in dirs if d not in SKIPPED and not d.startswith(".")]
        if folder.count(os.sep) - base_depth >= SEARCH_DEPTH:
            dirs[:] = []
        if wanted is None and folder != cwd:
            found.append(folder)
    return found


def _to_wandb(diagnosis: Diagnosis, cwd: str, env: Mapping[str, str], since: float) -> str:
    run_dir = wandb_run_dir(cwd, env, since)
    if run_dir is None:
        where = env.get("WANDB_DIR") or f"{cwd} and {SEARCH_DEPTH} folders below it"
        raise AttachError(
            f"no W&B run was written during this run (no wandb/latest-run in {where}; "
            "set WANDB_DIR to the folder the program gives wandb.init(dir=...))"
        )
    name = os.path.basename(run_dir)  # run-20240101_120000-<id> or offline-run-...-<id>
    run_id = name.rsplit("-", 1)[-1]
    try:
        import wandb
    except ImportError:
        raise AttachError("the wandb package is not installed beside trainwatch") from None
    from trainwatch.integrations.trackers import to_wandb

    offline = name.startswith("offline-") or env.get("WANDB_MODE") in ("offline", "disabled")
    settings = wandb.Settings(silent=True, console="off")
    run = wandb.init(
        id=run_id,
        resume="allow",
        mode="offline" if offline else "online",
        dir=os.path.dirname(os.path.dirname(run_dir)),
        project=env.get("WANDB_PROJECT"),
        entity=env.get("WANDB_ENTITY"),
        settings=settings,
    )
    try:
        to_wandb(diagnosis, run)
    finally:
        run.finish()
    return f"W&B run {run_id}" + (" (offline: `wandb sync` sends it)" if offline else "")


def _to_tensorboard(diagnosis: Diagnosis, cwd: str, env: Mapping[str, str], since: float) -> str:
    log_dir = tensorboard_dir(cwd, env, since)
    if log_dir is None:
        raise AttachError(
            f"no TensorBoard event file was written during this run in {cwd} or "
            f"{SEARCH_DEPTH} folders below it (set TENSORBOARD_LOGGING_DIR to the log directory)"
        )
    from trainwatch.integrations.trackers import to_tensorboard

    try:
        to_tensorboard(diagnosis, log_dir=log_dir)
    except OSError as exc:
        raise AttachError(
            f"cannot write TensorBoard events in {log_dir} ({exc.strerror})"
        ) from None
    return f"TensorBoard {log_dir}"
