"""A Keras 3 fit (torch backend) whose ModelCheckpoint saves where no file can be written (procfs
takes no new file): the save raises inside Keras, under Keras's own traceback filtering, which
prints the frame that raised."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
checkpoint = keras.callbacks.ModelCheckpoint("/proc/best.keras")
model.fit(np.zeros((8, 4)), np.zeros((8, 1)), epochs=1, verbose=0, callbacks=[checkpoint])
