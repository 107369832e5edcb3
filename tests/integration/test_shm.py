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


def run_with_own_shm(tmp_path, size: str, *script: str) -> tuple[int, dict]:
    """A script under `trainwatch run` with a /dev/shm of `size` of its own (a tmpfs in a private
    mount namespace): its exit status and its report."""
    if not can_mount_private_shm():
        pytest.skip("needs root and mount namespaces (unshare -m) to give the run its own /dev/shm")
    report = tmp_path / "r.json"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    command = (
        f"mount -t tmpfs -o size={size} tmpfs /dev/shm && exec {TRAINWATCH} run --json {report} "
        + " ".join(script)
    )
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", command], capture_output=True, timeout=180, env=env
    )
    return result.returncode, read_report(report)


def test_dataloader_out_of_shared_memory_is_oom_shm(tmp_path):
    # 20 MB of /dev/shm, as a container started without --shm-size has 64 MB: one 64 MB batch cannot
    # pass.
    status, data = run_with_own_shm(tmp_path, "20m", str(SCRIPTS / "monitor_shm_worker.py"))
    assert status != 0
    assert data["verdict"]["subtype"] == "oom/shm", data["verdict"]
    assert data["memory"]["shm"]["total_bytes"] == 20 * 1024 * 1024
    # its limit is /dev/shm's size, cited; the RAM the run held is no measure of it
    assert any(c["text"].startswith("/dev/shm: 20.0 MiB in all") for c in data["evidence"])
    assert "far larger than anything before it" not in data["verdict"]["summary"]
    assert not any("corrupt sample" in a for a in data["advice"])


def test_a_bus_error_while_shared_memory_stayed_free_is_no_shared_memory_failure(tmp_path):
    # a roomy /dev/shm (tmpfs takes no memory until written): the run never uses it
    script = (str(SCRIPTS / "mapped_file_shrinks.py"), str(tmp_path / "samples.bin"))
    status, data = run_with_own_shm(tmp_path, "8g", *script)
    assert status == -7  # SIGBUS
    verdict = data["verdict"]
    assert verdict["subtype"] == "data/file-changed", verdict
    assert "never ran short" in verdict["summary"]
