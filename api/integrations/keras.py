"""trainwatch as a Keras callback: `model.fit(..., callbacks=[TrainwatchCallback()])`.

Importing this module imports Keras (Keras 3 runs on the torch backend with KERAS_BACKEND=torch);
nothing else in trainwatch does. The verdict goes to the active W&B run and, with
`tensorboard_dir`, to a text summary there (the TensorBoard callback's log_dir, say).
"""

from __future__ import annotations

from typing import Any

import keras

from trainwatch.integrations.training import ObservedCallback, TrainingObserver


class TrainwatchCallback(ObservedCallback, keras.callbacks.Callback):
    """Diagnoses `fit` on a non-finite batch loss, at its end, or when an exception ends the
    program (an exception you catch yourself: `callback.observer.fail(exc)`). Options are
    `TrainingObserver`'s."""

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.observer = TrainingObserver(**options)
        self._epoch = 1

    def on_train_begin(self, logs: dict | None = None) -> None:
        params = self.params or {}
        self.observer.begin(epochs=params.get("epochs"), uncaught=True)
        self.observer.steps = params.get("steps")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        self.observer.step(
            step=batch + 1,
            epoch=self._epoch,
            loss=None if loss is None else float(loss),
            stop=lambda: setattr(self.model, "stop_training", True),
        )

    def on_train_end(self, logs: dict | None = None) -> None:
        self.observer.end()
