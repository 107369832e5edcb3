"""Finding the tracker run a program wrote, for `--attach-to`: where W&B and TensorBoard put it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from trainwatch.integrations.attach import (
    AttachError,
    attach,
    tensorboard_dir,
    wandb_run_dir,
)


def _wandb_run(base: Path, name: str, age_s: float = 0.0) -> Path:
    run = base / "wandb" / name
    run.mkdir(parents=True)
    (base / "wandb" / "latest-run").symlink_to(run)
    if age_s:
        old = time.time() - age_s
        os.utime(run, (old, old))
    return run


def test_a_wandb_run_written_below_the_working_directory_is_found(tmp_path: Path) -> None:
    # `wandb.init(dir="progs")` from the folder above: the run is one folder down
    since = time.time()
    run = _wandb_run(tmp_path / "progs", "offline-run-20261207_095304-xr0xpjmo")
    assert wandb_run_dir(str(tmp_path), {}, since) == str(run)
    # an older run in the working directory itself is not this run's
    _wandb_run(tmp_path, "run-20200101_000000-old", age_s=3600)
    assert wandb_run_dir(str(tmp_path), {}, since) == str(run)
    # WANDB_DIR, when set, is where the program's run is
    assert wandb_run_dir(str(tmp_path), {"WANDB_DIR": str(tmp_path / "elsewhere")}, since) is None


def test_the_newest_event_file_of_this_run_names_the_tensorboard_directory(tmp_path: Path) -> None:
    since = time.time()
    deep = tmp_path / "outputs" / "exp3" / "logs"
    deep.mkdir(parents=True)
    (deep / "events.out.tfevents.1.host").write_bytes(b"x")
    assert tensorboard_dir(str(tmp_path), {}, since) == str(deep)
    assert tensorboard_dir(str(tmp_path), {}, since + 60) is None  # written before this run


def test_nothing_found_says_where_it_was_looked_for(tmp_path: Path) -> None:
    from trainwatch.diagnostics.evidence import Evidence
    from trainwatch.diagnostics.verdict import Diagnosis, Verdict

    diagnosis = Diagnosis(
        "0.1.0",
        ("python", "t.py"),
        None,
        1.0,
        None,
        Verdict("unknown", None, 0.2, "?"),
        Evidence("run"),
    )
    for target, words in (("wandb", "WANDB_DIR"), ("tensorboard", "TENSORBOARD_LOGGING_DIR")):
        with pytest.raises(AttachError) as raised:
            attach(diagnosis, target, str(tmp_path), {}, time.time())
        assert str(tmp_path) in str(raised.value) and words in str(raised.value)
