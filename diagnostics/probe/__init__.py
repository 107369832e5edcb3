"""The probe: evidence from inside the child's Python processes (parent side here, child side in sitecustomize.py)."""

from .records import FatalSignal, ProbeFacts, ProbeProcess, ProcessStacks, WorkerFailure
from .session import ProbeSession
from .tracebacks import ThreadStack

__all__ = ["FatalSignal", "ProbeFacts", "ProbeProcess", "ProbeSession", "ProcessStacks", "ThreadStack",
           "WorkerFailure"]
