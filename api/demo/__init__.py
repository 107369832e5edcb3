"""The demo `trainwatch demo` runs: a small CNN on generated images, one of them corrupt.

`train_cnn.py` is a script the user's own Python runs (under `trainwatch run`), not a module
trainwatch imports: it needs PyTorch, uses Pillow when it is there, and nothing of trainwatch.
It ships in the wheel so that the demo needs no source tree.
"""

from __future__ import annotations

from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "train_cnn.py"
