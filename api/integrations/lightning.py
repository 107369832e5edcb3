"""trainwatch as a Lightning callback: `Trainer(callbacks=[TrainwatchCallback()])`.

Importing this module imports Lightning (`lightning`, or the older `pytorch_lightning`); nothing
else in trainwatch does. The verdict goes to the trainer's W&B and TensorBoard loggers.
"""

from __future__ import annotations

from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # Lightning before 2.0 ships as pytorch_lightning
    from pytorch_lightning.callbacks import Callback

from trainwatch.integrations.training import ObservedCallback, TrainingObserver


class TrainwatchCallback(ObservedCallback, Callback):
    """Diagnoses the fit on an exception, a non-finite loss, or its end, and hands the verdict to
    the trainer's loggers (W&B: summary fields, a tag, the report file; TensorBoard: a text
    summary). Options are `TrainingObserver`'s: trackers, show, stop_on_nan, tensorboard_dir."""

    def __init__(self, **options: Any) -> None:
        self.observer = TrainingObserver(**options)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        for logger in getattr(trainer, "loggers", None) or ():
            kind = type(logger).__name__
            if kind == "WandbLogger":
                self.observer.wandb_run = logger.experiment
            elif kind == "TensorBoardLogger":
                self.observer.tensorboard_writer = logger.experiment
        epochs = trainer.max_epochs if (trainer.max_epochs or -1) > 0 else None
        self.observer.begin(epochs=epochs)

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        batches = trainer.num_training_batches
        self.observer.steps = int(batches) if isinstance(batches, int) else None
        self.observer.step(
            step=batch_idx + 1,
            epoch=trainer.current_epoch + 1,
            loss=_loss(outputs),
            stop=lambda: setattr(trainer, "should_stop", True),
        )

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.observer.fail(exception)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self.observer.end()


def _loss(outputs: Any) -> float | None:
    """The training loss of a step: the tensor `training_step` returned, or its "loss"."""
    value = outputs.get("loss") if isinstance(outputs, dict) else outputs
    try:
        return float(value.detach()) if hasattr(value, "detach") else float(value)
    except (TypeError, ValueError, RuntimeError):  # None, or a tensor of more than one value
        return None


__all__ = ["TrainwatchCallback"]
