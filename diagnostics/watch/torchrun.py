"""torchrun, SLURM and other launchers, seen from a live run: which launcher a command line uses,
the SLURM task context, and the error files torchrun's `@record` leaves (the environment that
makes it write them where we read).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Launchers recognised on a command line, in the order they are looked for.
LAUNCHERS = (
    ("torchrun", "torchrun"),
    ("torch.distributed.run", "torchrun"),
    ("torch.distributed.launch", "torchrun"),
    ("deepspeed", "deepspeed"),
    ("accelerate", "accelerate"),
    ("srun", "srun"),
    ("mpirun", "mpirun"),
)
SLURM_VARIABLES = {
    "SLURM_JOB_ID": "job_id",
    "SLURM_PROCID": "procid",
    "SLURMD_NODENAME": "node",
    "SLURM_NODEID": "node_id",
    "SLURM_NTASKS": "ntasks",
    "SLURM_JOB_NODELIST": "nodelist",
    "SLURM_RESTART_COUNT": "restart_count",
}
ELASTIC_DIR = "torchelastic"  # inside the probe's private directory


@dataclass(frozen=True)
class ElasticError:
    """One error file torchrun's `@record` wrote (TORCHELASTIC_ERROR_FILE): a rank's, or the agent's
    own.
    """

    path: str
    local_rank: int | None  # None for the agent's file
    message: str  # "ValueError: ..." (the exception line torchrun recorded)
    traceback: str | None  # the formatted Python traceback it recorded
    error_code: int | None = None


# ---- before the run ------------------------------------------------------------------------------
def elastic_env(
    argv: tuple[str, ...], base_env: dict[str, str], probe_root: Path
) -> dict[str, str]:
    """Environment that makes torchrun leave its error files where trainwatch reads them after the
    run.

    torchrun gives each rank TORCHELASTIC_ERROR_FILE=<log dir>/<run>/attempt_N/<local
    rank>/error.json, where `@record` writes the rank's exception; its own `main` is decorated
    too and writes the agent's file to the TORCHELASTIC_ERROR_FILE it was given. PET_LOG_DIR is
    torchrun's `--log-dir` as an environment variable. The user's own settings win. Only for a
    torchrun command line: other programs never see these variables.
    """
    if launcher_of(argv) != "torchrun":
        return {}
    root = probe_root / ELASTIC_DIR
    root.mkdir(mode=0o700, exist_ok=True)
    env = {}
    if "TORCHELASTIC_ERROR_FILE" not in base_env:
        env["TORCHELASTIC_ERROR_FILE"] = str(root / "agent-error.json")
    if "PET_LOG_DIR" not in base_env and not any(
        a.startswith(("--log-dir", "--log_dir")) for a in argv
    ):
        env["PET_LOG_DIR"] = str(root / "logs")
    return env


def launcher_of(argv: tuple[str, ...] | list[str]) -> str | None:
    """The launcher a command line uses (`torchrun`, `deepspeed`, `accelerate`, `srun`, `mpirun`),
    or None.
    """
    for word in argv[:6]:
        base = os.path.basename(word)
        for fragment, name in LAUNCHERS:
            if base == fragment or word == fragment:
                return name
    return None


def slurm_context(env: dict[str, str]) -> dict[str, str] | None:
    """SLURM's job id, task rank and node name, when the run is a SLURM task."""
    found = {key: env[name] for name, key in SLURM_VARIABLES.items() if env.get(name)}
    return found or None


# ---- after the run -------------------------------------------------------------------------------
def read_elastic_errors(probe_root: Path, env: dict[str, str]) -> tuple[ElasticError, ...]:
    """The error files torchrun's `@record` wrote during the run: per rank under the log dir, and
    the agent's.
    """
    root = probe_root / ELASTIC_DIR
    log_dir = Path(env.get("PET_LOG_DIR") or root / "logs")
    found = [
        e
        for e in (
            _read_error(p, _int(p.parent.name))
            for p in sorted(log_dir.glob("*/attempt_*/*/error.json"))
        )
        if e is not None
    ]
    agent = env.get("TORCHELASTIC_ERROR_FILE") or str(root / "agent-error.json")
    error = _read_error(Path(agent), None)
    if error is not None:
        found.append(error)
    return tuple(found)


def _read_error(path: Path, local_rank: int | None) -> ElasticError | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return None
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(message, dict):
        extra = message.get("extraInfo") if isinstance(message.get("extraInfo"), dict) else {}
        return ElasticError(
            str(path),
            local_rank,
            str(message.get("message") or ""),
            extra.get("py_callstack") if isinstance(extra.get("py_callstack"), str) else None,
            _int(message.get("errorCode")),
        )
    if isinstance(message, str):
        return ElasticError(str(path), local_rank, message, None)
    return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
