"""The callbacks with the real frameworks on tiny CPU models: Lightning, Hugging Face's Trainer and
Keras 3 (torch backend), handing the verdict to W&B (offline, read back from the run's record
file) and TensorBoard (read back from the event file). Each is skipped when its framework is not
installed; `import trainwatch` never needs any of them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import SCRIPTS, needs, tensorboard_texts, wandb_summary_and_tags


def run_script(name: str, out: Path, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(out)}
    full.update(KERAS_BACKEND="torch", TOKENIZERS_PARALLELISM="false", **env)
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        env=full,
        cwd=out,
    )


def test_lightning_callback_stops_at_a_nan_and_tells_both_loggers(tmp_path):
    needs("lightning", "wandb", "tensorboard")
    done = run_script("integration_lightning.py", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # 4 + 3: stopped at the NaN
    assert "stopped after step 7 verdict numerical/nan-loss" in done.stdout
    assert "numerical/nan-loss" in done.stderr  # a quiet failure is shown
    text = tensorboard_texts(tmp_path / "tb")["trainwatch/report/text_summary"]
    assert text.startswith("**✗ numerical/nan-loss") and "epoch 2/3, step 3/4" in text
    summary, tags = wandb_summary_and_tags(tmp_path)
    assert summary["trainwatch/category"] == '"numerical"'
    assert summary["trainwatch/subtype"] == '"numerical/nan-loss"'
    assert "trainwatch/numerical" in tags
    files = os.listdir(tmp_path / "wandb" / "latest-run" / "files")
    assert "trainwatch-report.json" in files


def test_hugging_face_callback_judges_the_uncaught_exception(tmp_path):
    needs("transformers", "accelerate", "wandb", "tensorboard")
    done = run_script("integration_huggingface.py", tmp_path)
    assert done.returncode == 1  # the exception still ends the program, as without trainwatch
    report, _, traceback = done.stderr.partition("Traceback (most recent call last)")
    assert "code/shape-mismatch" in report and "integration_huggingface.py:33" in report
    assert "mat1 and mat2 shapes cannot be multiplied" in traceback
    text = tensorboard_texts(tmp_path / "tb")["trainwatch/report/text_summary"]
    assert "code/shape-mismatch" in text
    summary, tags = wandb_summary_and_tags(tmp_path)
    assert summary["trainwatch/category"] == '"code"' and "trainwatch/code" in tags


def test_keras_callback_on_the_torch_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # Keras 3 would otherwise import TensorFlow
    needs("keras", "tensorboard")
    done = run_script("integration_keras.py", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "verdict completed" in done.stdout
    assert done.stderr.count("trainwatch report") == 0  # a run that completed shows nothing
    text = tensorboard_texts(tmp_path)["trainwatch/report/text_summary"]
    assert text.startswith("**✓ completed") and "epoch 2/2" in text


def test_the_callback_modules_are_imported_only_when_asked_for():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, trainwatch, trainwatch.integrations, trainwatch.integrations.trackers\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('lightning', 'transformers', 'keras', 'wandb', 'tensorboard', 'torch')))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
