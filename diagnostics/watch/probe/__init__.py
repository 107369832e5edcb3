"""The probe: evidence from inside the child's Python processes (parent side here, child side in
sitecustomize.py).

Names are loaded on first use (PEP 562): `trainwatch run` needs ProbeSession before the child
starts, and the record readers only after it ends.
"""

import importlib

_HOMES = {
    "ProbeSession": ".parent",
    "CheckpointFacts": ".checkpoints",
    "CheckpointSave": ".checkpoints",
    "FailedSample": ".samples",
    "FatalSignal": ".records",
    "ProbeFacts": ".records",
    "ProbeProcess": ".records",
    "ProcessStacks": ".records",
    "WorkerFailure": ".records",
    # ThreadStack lives with the frames every stack reader shares (read/frames.py)
    "ThreadStack": "trainwatch.diagnostics.read.frames",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home = _HOMES[name]
    module = importlib.import_module(home, __name__ if home.startswith(".") else None)
    return getattr(module, name)
