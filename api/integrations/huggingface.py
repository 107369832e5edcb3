"""trainwatch as a Hugging Face `TrainerCallback`: `Trainer(..., callbacks=[TrainwatchCallback()])`.

Importing this module imports transformers; nothing else in trainwatch does. The verdict goes to
the W&B run the Trainer's WandbCallback started and, when TensorBoard is in `report_to`, to the
Trainer's logging directory.
"""

from __future__ import annotations

import math
import os
from typing import Any

from transformers import TrainerCallback

from trainwatch.integrations.training import ObservedCallback, TrainingObserver


class TrainwatchCallback(ObservedCallback, TrainerCallback):
    """Diagnoses training on a non-finite logged loss, at its end, or when an exception ends the
    program (the Trainer has no exception hook: an exception you catch yourself is judged with
    `callback.observer.fail(exc)`). Options are `TrainingObserver`'s."""

    def __init__(self, **options: Any) -> None:
        self.observer = TrainingObserver(**options)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        report_to = (
            args.report_to if isinstance(args.report_to, (list, tuple)) else [args.report_to]
        )
        if self.observer.tensorboard_dir is None and "tensorboard" in report_to:
            self.observer.tensorboard_dir = _tensorboard_dir(args)
        epochs = math.ceil(args.num_train_epochs) if args.max_steps <= 0 else None
        self.observer.begin(epochs=epochs, uncaught=True)
        self.observer.steps = state.max_steps or None

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any
    ) -> None:
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        self.observer.step(
            step=state.global_step,
            loss=float(loss),
            stop=lambda: setattr(control, "should_training_stop", True),
        )

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.observer.end()


def _tensorboard_dir(args: Any) -> str:
    """Where the Trainer's TensorBoard logs go: `logging_dir` (transformers 4), else
    TENSORBOARD_LOGGING_DIR, else a run of its own beside the Trainer's under `output_dir/runs`."""
    return (
        getattr(args, "logging_dir", None)
        or os.environ.get("TENSORBOARD_LOGGING_DIR")
        or os.path.join(args.output_dir, "runs", "trainwatch")
    )
