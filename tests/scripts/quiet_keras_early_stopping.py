"""A Keras 3 fit (torch backend, `verbose=2`) that EarlyStopping ends after its third of 50
epochs, silently (its default `verbose=0`; the first argument 1 has it say so): no loss may
improve by `min_delta`, so it stops when its patience of 2 runs out. The program then goes on and
exits 0."""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

rng = np.random.default_rng(0)
x, y = rng.normal(size=(64, 4)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
verbose = int(sys.argv[1]) if len(sys.argv) > 1 else 0
stop = keras.callbacks.EarlyStopping(monitor="loss", patience=2, min_delta=1e9, verbose=verbose)
history = model.fit(x, y, epochs=50, batch_size=16, verbose=2, callbacks=[stop])
print(f"trained {len(history.epoch)} epochs, last loss {history.history['loss'][-1]:.4f}")
