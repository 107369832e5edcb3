"""A tiny Keras 3 fit on the torch backend that completes, with trainwatch's callback writing its
verdict as a TensorBoard text summary. Argument: the TensorBoard folder."""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

from trainwatch.integrations.keras import TrainwatchCallback

rng = np.random.default_rng(0)
x, y = rng.normal(size=(64, 4)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
callback = TrainwatchCallback(tensorboard_dir=sys.argv[1], trackers=["tensorboard"])
model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
print("verdict", callback.diagnosis.verdict.category, callback.diagnosis.verdict.summary)
