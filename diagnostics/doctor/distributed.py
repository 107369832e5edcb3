"""The launcher's environment for `trainwatch doctor`: torchrun and NCCL settings that break a job
before its first step.

Pure over the environment, the network interfaces' directory (/sys/class/net) and the `torchrun`
script on PATH, so tests pass made-up ones.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

from trainwatch.diagnostics.doctor import Check

# Set by torchrun for each rank: in a plain shell they are left over from another job, and a script
# that calls init_process_group() would wait for peers that never come.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "GROUP_RANK", "LOCAL_WORLD_SIZE")
# Old names torch still reads with a deprecation warning, or no longer reads at all.
RENAMED = {
    "NCCL_ASYNC_ERROR_HANDLING": "TORCH_NCCL_ASYNC_ERROR_HANDLING",
    "NCCL_BLOCKING_WAIT": "TORCH_NCCL_BLOCKING_WAIT",
    "NCCL_DESYNC_DEBUG": "TORCH_NCCL_DESYNC_DEBUG",
}
# Switches that slow collectives down a lot: fine when meant, a surprise when inherited.
SLOWING = {
    "NCCL_P2P_DISABLE": "GPU peer-to-peer off",
    "NCCL_IB_DISABLE": "InfiniBand off",
    "NCCL_SHM_DISABLE": "shared-memory transport off",
}


def check_distributed(
    env: Mapping[str, str], net_dir: str = "/sys/class/net", python: str | None = None
) -> Check:
    """MASTER_ADDR/MASTER_PORT, leftover rank variables, NCCL/Gloo interface names, renamed
    variables, and whether `torchrun` on PATH belongs to the run's Python."""
    failures: list[tuple[str, str]] = []  # (what is wrong, what to do)
    warnings: list[tuple[str, str]] = []
    notes: list[str] = []
    launched = "TORCHELASTIC_RUN_ID" in env or "SLURM_PROCID" in env
    port = env.get("MASTER_PORT")
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        failures.append(
            (f"MASTER_PORT={port!r} is not a port", "Set MASTER_PORT to a free TCP port number.")
        )
    left = [name for name in RANK_VARIABLES if name in env]
    if left and not launched:
        warnings.append(
            (
                f"{', '.join(f'{n}={env[n]}' for n in left)} set in this shell",
                "torchrun sets these for each rank; left over from another job, they make a "
                "plain `python train.py` wait at init_process_group for peers that never come: "
                f"unset {' '.join(left)}.",
            )
        )
    rank, world = env.get("RANK"), env.get("WORLD_SIZE")
    if rank and world and rank.isdigit() and world.isdigit() and int(rank) >= int(world):
        failures.append(
            (f"RANK={rank} is not below WORLD_SIZE={world}", "Fix or unset RANK and WORLD_SIZE.")
        )
    interfaces = _interfaces(net_dir)
    for name in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"):
        value = env.get(name)
        if value is None or interfaces is None:
            continue
        if not _matches_any(value, interfaces):
            failures.append(
                (
                    f"{name}={value} matches no network interface here "
                    f"({', '.join(sorted(interfaces)) or 'none'})",
                    f"Set {name} to an interface this machine has, or unset it.",
                )
            )
        else:
            notes.append(f"{name}={value}")
    for old, new in RENAMED.items():
        if old in env and new not in env:
            warnings.append(
                (f"{old} is deprecated", f"torch reads {new} now: rename the variable.")
            )
    notes += [
        f"{name}={env[name]} ({what})" for name, what in SLOWING.items() if env.get(name) == "1"
    ]
    torchrun = _foreign_torchrun(env, python)
    if torchrun is not None:
        warnings.append(torchrun)
    if "MASTER_ADDR" in env:
        notes.insert(0, f"MASTER_ADDR={env['MASTER_ADDR']}:{port or '?'}")
    facts = {
        "failures": [w for w, _ in failures],
        "warnings": [w for w, _ in warnings],
        "notes": notes,
    }
    found = failures + warnings  # every problem, the failures first
    if found:
        return Check(
            "distributed",
            "fail" if failures else "warn",
            "; ".join(w for w, _ in found),
            " ".join(a for _, a in found),
            facts,
        )
    summary = ", ".join(notes) if notes else "no torchrun or NCCL settings in the environment"
    return Check("distributed", "pass", summary, None, facts)


def _interfaces(net_dir: str) -> set[str] | None:
    try:
        return set(os.listdir(net_dir))
    except OSError:
        return None


def _matches_any(setting: str, interfaces: set[str]) -> bool:
    """NCCL's syntax (NCCL_SOCKET_IFNAME in NCCL's environment docs): a comma list of prefixes,
    `=name` for an exact name, a leading `^` to exclude the listed ones instead."""
    exclude = setting.startswith("^")
    body = setting[1:] if exclude else setting
    exact = body.startswith("=")
    names = [n for n in (body[1:] if exact else body).split(",") if n]

    def listed(interface: str) -> bool:
        return any(interface == n if exact else interface.startswith(n) for n in names)

    usable = [i for i in interfaces if i != "lo" or not exclude]
    return any(listed(i) != exclude for i in usable)


def _foreign_torchrun(env: Mapping[str, str], python: str | None) -> tuple[str, str] | None:
    """`torchrun` on PATH whose script runs another Python than the run's (another venv's)."""
    if python is None:
        return None
    found = shutil.which("torchrun", path=env.get("PATH"))
    if found is None:
        return None
    try:
        with open(found, "rb") as handle:
            first = handle.readline(512).decode("utf-8", "replace")
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    interpreter = first[2:].strip().split()[0] if first[2:].strip() else ""
    ours = shutil.which(python, path=env.get("PATH")) or python
    if not interpreter or _same_file(interpreter, ours):
        return None
    return (
        f"torchrun on PATH ({found}) runs {interpreter}, not {ours}",
        "Launch with `python -m torch.distributed.run` (the same as torchrun, under the Python "
        "you mean), or activate that Python's environment.",
    )


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b) or os.path.realpath(a) == os.path.realpath(b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)
