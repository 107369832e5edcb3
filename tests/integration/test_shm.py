"""A DataLoader that runs out of shared memory: a real, small /dev/shm in a private mount
namespace.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SCRIPTS, TRAINWATCH, can_mount_private_shm, read_report


def test_dataloader_out_of_shared_memory_is_oom_shm(tmp_path):
    if not can_mount_private_shm():
        pytest.skip("needs root and mount namespaces (unshare -m) to give the run a small /dev/shm")
    report = tmp_path / "r.json"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    # 20 MB of /dev/shm, as a container started without --shm-size has 64 MB: one 64 MB batch cannot
    # pass.
    command = (
        f"mount -t tmpfs -o size=20m tmpfs /dev/shm && exec {TRAINWATCH} run --json {report} "
        f"{SCRIPTS / 'monitor_shm_worker.py'}"
    )
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", command], capture_output=True, timeout=180, env=env
    )
    assert result.returncode != 0
    data = read_report(report)
    assert data["verdict"]["subtype"] == "oom/shm", data["verdict"]
    assert data["memory"]["shm"]["total_bytes"] == 20 * 1024 * 1024
