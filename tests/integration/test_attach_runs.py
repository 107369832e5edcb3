"""`trainwatch run --attach-to wandb|tensorboard`: the verdict attached to the run the program
logged (W&B offline, read back from its record file; TensorBoard read back from the event file)."""

from __future__ import annotations

import os
import re

from conftest import SCRIPTS, needs, tensorboard_texts, trainwatch, wandb_summary_and_tags

SCRIPT = str(SCRIPTS / "attach_tracked.py")


def _run(tmp_path, tracker: str, *options: str):
    env = {"WANDB_SILENT": "true", "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)}
    return trainwatch(
        "run", "--attach-to", tracker, *options, SCRIPT, tracker, env=env, cwd=tmp_path
    )


def test_the_verdict_joins_the_same_wandb_run(tmp_path):
    needs("wandb")
    done = _run(tmp_path, "wandb")
    assert done.returncode == 1  # the program's status, whatever the attaching did
    err = done.stderr.decode()
    assert "trainwatch: verdict attached to W&B run" in err, err[-2000:]
    runs = sorted(os.listdir(tmp_path / "wandb"))
    # `offline-run-<date>_<time>-<id>`; a resumption in the same second as the run it resumes
    # gets a `-1` after the id (the folder's name is taken)
    ids = {m.group(1) for name in runs if (m := re.match(r"offline-run-\d+_\d+-(\w+)", name))}
    assert len(ids) == 1  # the program's run and its resumption: one run id
    summary, tags = wandb_summary_and_tags(tmp_path)  # the latest: the resumption
    assert summary["trainwatch/category"] in ('"data"', '"code"')
    assert "trainwatch/" + summary["trainwatch/category"].strip('"') in tags
    assert "trainwatch-report.json" in os.listdir(tmp_path / "wandb" / "latest-run" / "files")


def test_the_verdict_is_a_text_summary_beside_the_program_s_events(tmp_path):
    needs("tensorboard")
    done = _run(tmp_path, "tensorboard")
    assert done.returncode == 1
    err = done.stderr.decode()
    assert f"verdict attached to TensorBoard {tmp_path / 'runs' / 'exp1'}" in err, err[-2000:]
    text = tensorboard_texts(tmp_path / "runs" / "exp1")["trainwatch/report/text_summary"]
    assert "KeyError" in text and text.startswith("**✗")


def test_nothing_to_attach_to_is_one_warning_and_the_program_s_status(tmp_path):
    script = tmp_path / "plain.py"
    script.write_text("raise SystemExit(4)\n")
    done = trainwatch("run", "--attach-to", "tensorboard", str(script), cwd=tmp_path)
    assert done.returncode == 4
    assert (
        "trainwatch: warning: --attach-to tensorboard: no TensorBoard event file was written"
        in done.stderr.decode()
    )
