"""`trainwatch doctor`'s checks of the machine before a run: each a pure function of what it reads
(files under /proc and /sys, the environment, a Python's own report), returning one `Check`.

Every check takes its sources as arguments with the real system's as defaults, so tests point them
at fake files; `run_checks()` runs them all against the real machine, in the order a user reads
them: the Python and torch the run would use, the GPU, then the machine's limits, then the
launcher's environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# A check's outcome, best to worst. "skip": the check does not apply here (no GPU on a CPU machine).
STATUSES = ("pass", "skip", "warn", "fail")


@dataclass(frozen=True)
class Check:
    """One check's result: a line for the user, what to do about it, and the figures behind it."""

    name: str  # stable id: "shm", "cuda", "open-files"
    status: str  # one of STATUSES
    summary: str  # what was found, one line
    advice: str | None = None  # what to do, for a warning or a failure
    facts: dict[str, Any] = field(default_factory=dict)  # the figures, for --json

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "advice": self.advice,
            "facts": self.facts,
        }


@dataclass(frozen=True)
class DoctorRequest:
    """What to check: the Python a run would use, where it writes, how many DataLoader workers."""

    python: str
    output_dir: str = "."
    workers: int | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def run_checks(request: DoctorRequest) -> tuple[Check, ...]:
    """Every check, against this machine."""
    from trainwatch.diagnostics.doctor import distributed, machine, software
    from trainwatch.diagnostics.watch.gpu import read_driver

    python = software.inspect_python(request.python, request.env)
    driver = read_driver()
    return (
        software.check_python(python),
        software.check_torch(python),
        software.check_cuda(python, driver),
        software.check_gpus(driver, request.env),
        machine.check_shm(workers=request.workers),
        machine.check_disk(request.output_dir),
        *machine.check_limits(),
        machine.check_memory(),
        distributed.check_distributed(request.env, python=request.python),
    )


def worst(checks: tuple[Check, ...]) -> str:
    """The worst status among the checks ("pass" for none)."""
    return max((c.status for c in checks), key=STATUSES.index, default="pass")
