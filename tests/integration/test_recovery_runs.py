"""The morning after, from real runs: the sample that broke the run, the work lost, where to
resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SCRIPTS, needs, read_report, trainwatch


def run_report(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess, dict]:
    report = tmp_path / "report.json"
    # a wide terminal: the report's rows are checked whole, not as rich folds them
    done = trainwatch(
        "run", "--json", str(report), "--", sys.executable, *argv, env={"COLUMNS": "400"}
    )
    return done, read_report(report)


def checkpoint_run(
    tmp_path: Path, script: str, mode: str
) -> tuple[Path, subprocess.CompletedProcess, dict]:
    """A checkpointing script run under trainwatch in `mode`, its saves under `tmp_path/ckpt`:
    (that folder, the run, its report)."""
    out = tmp_path / "ckpt"
    out.mkdir()
    done, report = run_report(tmp_path, str(SCRIPTS / script), str(out), mode)
    return out, done, report


def shell(command: str) -> subprocess.CompletedProcess:
    """A command from the advice, run as a user would paste it (this venv's python first)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize("method", ["main", "fork", "spawn"])
def test_the_failing_sample_is_named_with_its_file(tmp_path: Path, method: str) -> None:
    images = tmp_path / "images"
    done, report = run_report(
        tmp_path, str(SCRIPTS / "sample_worker.py"), str(images), "17", method
    )
    assert done.returncode == 1
    bad = str(images / "x_0017.png")
    sample = report["sample"]
    assert sample["index"] == "17" and sample["file"] == bad
    assert sample["batch"] == "[16, 17, 18, 19]"
    assert (sample["worker"] is None) == (method == "main")
    assert sample["exception"] == "PIL.UnidentifiedImageError"
    assert sample["calls"][-1]["owner"] == (
        "__main__.ImageFolder" if method != "spawn" else "__mp_main__.ImageFolder"
    )
    assert sample["calls"][-1]["arguments"] == {"index": "17"}
    assert f"It failed on sample 17: {bad}." in report["verdict"]["summary"]
    terminal = done.stderr.decode()
    assert "Sample that failed" in terminal and f"sample 17: {bad}" in terminal
    # ImageFolder needs its root: the command loads the file through its own loader instead
    reload = sample["reload"]
    assert report["advice"][0].endswith(reload) and bad in reload
    again = shell(reload)
    assert again.returncode == 1 and "UnidentifiedImageError" in again.stderr


def test_the_reload_command_rebuilds_the_dataset_when_it_needs_no_arguments(
    tmp_path: Path,
) -> None:
    done, report = run_report(tmp_path, str(SCRIPTS / "probe_dataloader.py"), "fork")
    assert done.returncode == 1
    sample = report["sample"]
    assert sample["index"] == "5" and sample["worker"] is not None and sample["file"] is None
    assert sample["reload"] == (
        f"cd {SCRIPTS} && python -c 'from probe_dataloader import ImageFiles; "
        "print(ImageFiles()[5])'"
    )
    again = shell(sample["reload"])
    assert again.returncode == 1
    assert "UnidentifiedImageError: cannot identify image file" in again.stderr


def test_labels_out_of_range_are_named_by_their_rows_in_the_batch(tmp_path: Path) -> None:
    done, report = run_report(tmp_path, str(SCRIPTS / "sample_labels.py"), "labels")
    assert done.returncode == 1
    assert report["verdict"]["subtype"] == "data/label-out-of-range"
    labels = report["sample"]["labels"]
    assert labels == {"classes": 5, "positions": [2, 5], "values": [7, 5], "count": 2}
    assert "labels 7, 5 at rows 2, 5 of the batch (the model has 5 classes: 0..4)" in (
        done.stderr.decode()
    )


def test_nan_inputs_are_named_by_their_rows(tmp_path: Path) -> None:
    done, report = run_report(tmp_path, str(SCRIPTS / "sample_labels.py"), "nan")
    assert done.returncode == 1
    assert report["verdict"]["subtype"] == "data/nan-input"
    rows = {r["name"]: r for r in report["sample"]["nonfinite"]}
    assert rows["batch"]["positions"] == [3] and rows["batch"]["shape"] == [8, 6]
    assert rows["inputs"]["positions"] == [27]  # the whole dataset's tensor: the sample's row
    assert "NaN/Inf in `batch` (8×6, in main): row 3" in report["verdict"]["summary"]


def test_three_checkpoints_then_killed(tmp_path: Path) -> None:
    out, done, report = checkpoint_run(tmp_path, "checkpoint_run.py", "killed")
    assert done.returncode == -9
    checkpoints = report["checkpoints"]
    third = str(out / "ckpt_step30.pt")
    assert checkpoints["total"] == 3 and checkpoints["unusable"] == []
    point = checkpoints["resume_from"]
    assert point["path"] == third and point["step"] == 30 and point["epoch"] == 1
    assert point["state"] == "complete" and point["size"] == (out / "ckpt_step30.pt").stat().st_size
    # the script trains on for at least 0.5 s after its last save, within a run of duration_s
    assert 0.5 <= checkpoints["lost_s"] < report["duration_s"]
    assert report["advice"][0].startswith(f"Resume from {third} (epoch 1, step 30), written")
    terminal = done.stderr.decode()
    assert f"last complete checkpoint: {third} (epoch 1, step 30)" in terminal
    assert "of training lost since" in terminal and "3 checkpoint saves in all" in terminal


def test_a_checkpoint_cut_off_by_a_kill_is_flagged_and_the_one_before_named(
    tmp_path: Path,
) -> None:
    out, done, report = checkpoint_run(tmp_path, "checkpoint_run.py", "mid-save")
    assert done.returncode == -9
    checkpoints = report["checkpoints"]
    partial = str(out / "ckpt_step30.pt")
    assert checkpoints["last"]["path"] == partial and checkpoints["last"]["state"] == "partial"
    assert [s["path"] for s in checkpoints["unusable"]] == [partial]
    assert checkpoints["resume_from"]["path"] == str(out / "ckpt_step20.pt")
    assert report["advice"][0] == (
        f"Do not resume from {partial}: partial (the run ended while writing it)."
    )
    assert report["advice"][1].startswith(
        f"Resume from {out / 'ckpt_step20.pt'} (epoch 1, step 20)"
    )
    assert f"{partial}: partial (the run ended while writing it)" in done.stderr.decode()


def test_the_checkpoints_saved_after_the_loss_went_non_finite_are_not_resumed_from(
    tmp_path: Path,
) -> None:
    out, done, report = checkpoint_run(tmp_path, "checkpoint_run.py", "nan")
    assert done.returncode == 0 and report["verdict"]["category"] == "numerical"
    checkpoints = report["checkpoints"]
    after = [str(out / "ckpt_step20.pt"), str(out / "ckpt_step30.pt")]
    assert checkpoints["resume_from"]["path"] == str(out / "ckpt_step10.pt")
    assert [s["path"] for s in checkpoints["unusable"]] == after
    # the blow-up's fix first (resuming as it was meets it again), then where to resume
    do_not, resume = report["advice"][-3:-1], report["advice"][-1]
    assert do_not[0].startswith(f"Do not resume from {after[0]}: saved after the loss")
    assert resume.startswith(f"Resume from {out / 'ckpt_step10.pt'} (epoch 1, step")


def test_a_finished_run_whose_last_saves_failed_says_its_model_is_not_on_disk(
    tmp_path: Path,
) -> None:
    out, done, report = checkpoint_run(tmp_path, "checkpoint_run.py", "missed")
    assert done.returncode == 0 and b"could not save checkpoint" in done.stdout
    verdict = report["verdict"]
    assert verdict["category"] == "completed" and verdict["confidence"] <= 0.6
    assert "2 of its 3 checkpoint saves failed (RuntimeError)" in verdict["summary"]
    assert f"the last complete one is {out / 'step10' / 'model.pt'}" in verdict["summary"]
    assert verdict["alternatives"][0]["category"] == "library"


def test_a_run_that_wrote_no_checkpoint_says_so(tmp_path: Path) -> None:
    out, done, report = checkpoint_run(tmp_path, "checkpoint_run.py", "none")
    assert done.returncode == -9
    checkpoints = report["checkpoints"]
    assert checkpoints["total"] == 0 and checkpoints["resume_from"] is None
    assert checkpoints["lost_s"] == pytest.approx(report["duration_s"], abs=0.01)
    assert "no checkpoint seen: all" in done.stderr.decode()
    assert report["advice"][0].startswith("No checkpoint save was seen (trainwatch sees torch.save")


@pytest.mark.parametrize(
    ("framework", "module", "last", "resume"),
    [
        ("lightning", "lightning", "epoch=2-step=12.ckpt", "trainer.fit(model, ckpt_path="),
        ("transformers", "transformers", "checkpoint-6", "trainer.train(resume_from_checkpoint="),
        ("safetensors", "safetensors", "model-15.safetensors", "safetensors.torch.load_file("),
        ("keras-weights", "keras", "weights-03.weights.h5", "model.load_weights("),
    ],
)
def test_framework_checkpoints_are_recorded_once_each(
    tmp_path: Path, framework: str, module: str, last: str, resume: str
) -> None:
    needs(module)
    out, done, report = checkpoint_run(tmp_path, "checkpoint_frameworks.py", framework)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    checkpoints = report["checkpoints"]
    # a framework's own torch.save and safetensors calls inside its save are part of that save
    assert checkpoints["total"] == 3
    assert {s["api"] for s in checkpoints["saves"]} == {framework}
    point = checkpoints["resume_from"]
    assert point["path"] == str(out / last) and point["size"] == point["size_now"] > 0
    assert report["advice"][0].startswith(f"Resume from {out / last}")
    assert f'{resume}"{out / last}"' in report["advice"][0]
    if framework == "lightning":
        assert (point["epoch"], point["step"]) == (2, 12)
    if framework == "keras-weights":
        # ModelCheckpoint's epoch: the fit resumes after the 3 epochs done
        assert point["epoch"] == 3 and "initial_epoch=3)" in report["advice"][0]
    if framework == "transformers":
        assert point["step"] == 6
        # save_total_limit=2 rotated the first checkpoint away
        states = {Path(s["path"]).name: s["state"] for s in checkpoints["saves"]}
        assert states == {
            "checkpoint-2": "removed",
            "checkpoint-4": "complete",
            "checkpoint-6": "complete",
        }


def test_a_hung_run_is_told_where_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    out.mkdir()
    report_path = tmp_path / "report.json"
    done = trainwatch(
        "run",
        "--stall-timeout",
        "2",
        "--json",
        str(report_path),
        "--",
        sys.executable,
        str(SCRIPTS / "checkpoint_run.py"),
        str(out),
        "hang",
        env={"COLUMNS": "400"},
    )
    report = read_report(report_path)
    assert done.returncode in (-15, -9) and report["verdict"]["category"] == "hang"
    third = out / "ckpt_step30.pt"
    assert report["checkpoints"]["resume_from"]["path"] == str(third)
    assert report["advice"][0].startswith(f"Resume from {third} (epoch 1, step 30), written")
    # it hung right after that save: the silence trained nothing, so no training is lost (the
    # span of the run, hang included, was over the stall timeout)
    assert report["checkpoints"]["lost_s"] < 0.1 and report["duration_s"] >= 2
    assert "written completely, and nothing trained after it" in report["advice"][0]
