"""`trainwatch doctor` for real: this machine, a Python whose torch is broken, a bad launcher
environment, and a container-sized /dev/shm."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from conftest import TRAINWATCH, can_mount_private_shm, trainwatch

CHECKS = [
    "python",
    "torch",
    "cuda",
    "gpus",
    "shm",
    "disk",
    "address-space",
    "open-files",
    "processes",
    "memory",
    "distributed",
]


def test_doctor_checks_this_machine_and_fails_only_on_failures(tmp_path):
    result = trainwatch(
        "doctor",
        "--json",
        "--python",
        sys.executable,
        "--output-dir",
        str(tmp_path),
        "--workers",
        "2",
    )
    report = json.loads(result.stdout)
    assert report["schema"] == "trainwatch.doctor/1"
    checks = {c["name"]: c for c in report["checks"]}
    assert list(checks) == CHECKS
    assert checks["python"]["status"] == "pass"
    assert checks["python"]["facts"]["python"] == platform.python_version()
    assert checks["torch"]["status"] == "pass" and "torch 2.13.0" in checks["torch"]["summary"]
    assert checks["disk"]["facts"]["checked"] == str(tmp_path)
    assert all(c["status"] in ("pass", "skip", "warn", "fail") for c in report["checks"])
    failed = any(c["status"] == "fail" for c in report["checks"])
    assert result.returncode == (1 if failed else 0), result.stderr
    assert report["status"] == max(
        (c["status"] for c in report["checks"]), key=["pass", "skip", "warn", "fail"].index
    )


def test_a_broken_torch_and_a_bad_port_fail_with_what_to_do(tmp_path):
    fake = tmp_path / "site" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise OSError('libcudart.so.12: cannot open shared object file: No such file or "
        "directory')\n"
    )
    result = trainwatch(
        "doctor",
        "--python",
        sys.executable,
        env={"PYTHONPATH": str(tmp_path / "site"), "MASTER_PORT": "http", "COLUMNS": "200"},
    )
    out = result.stdout.decode()
    assert result.returncode == 1, out
    lines = out.splitlines()
    torch = next(line for line in lines if line.startswith("✗ torch"))
    assert "import torch fails: OSError: libcudart.so.12" in torch
    assert any(line.strip().startswith("→ Reinstall torch") for line in lines)
    assert any(line.startswith("✗ distributed") and "MASTER_PORT='http'" in line for line in lines)
    assert lines[-1].endswith("2 failures")
    assert result.stderr == b""


def test_a_python_that_does_not_exist_is_a_failed_check_not_a_crash(tmp_path):
    result = trainwatch("doctor", "--json", "--python", str(tmp_path / "python9"))
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert result.returncode == 1
    assert checks["python"]["status"] == "fail" and "python9" in checks["python"]["summary"]
    assert checks["torch"]["status"] == "skip"


def test_a_container_sized_dev_shm_fails_the_shm_check():
    if not can_mount_private_shm():
        pytest.skip("needs root and mount namespaces (unshare -m) to give doctor a small /dev/shm")
    command = (
        "mount -t tmpfs -o size=64m tmpfs /dev/shm && "
        f"exec {TRAINWATCH} doctor --json --python {sys.executable}"
    )
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", command], capture_output=True, timeout=120
    )
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["shm"]["status"] == "fail", checks["shm"]
    assert checks["shm"]["facts"]["total_bytes"] == 64 << 20
    assert result.returncode == 1
