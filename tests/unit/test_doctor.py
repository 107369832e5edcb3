"""`trainwatch doctor`'s checks, each pointed at made-up system files, environments and reports."""

from __future__ import annotations

import os

import pytest

from trainwatch.cli.doctor import render, to_dict
from trainwatch.diagnostics.doctor import Check, DoctorRequest, worst
from trainwatch.diagnostics.doctor.distributed import check_distributed
from trainwatch.diagnostics.doctor.machine import (
    check_disk,
    check_limits,
    check_memory,
    check_shm,
    judge_disk,
    judge_shm,
)
from trainwatch.diagnostics.doctor.software import (
    PythonFacts,
    check_cuda,
    check_gpus,
    check_python,
    check_torch,
    visible_devices,
)
from trainwatch.diagnostics.watch.cgroup import ShmUsage
from trainwatch.diagnostics.watch.gpu import DriverFacts, InstalledGpu, _driver_from_file

GIB = 1 << 30
MIB = 1 << 20

LIMITS = """Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max processes             {nproc:<20} 4096                 processes
Max open files            {nofile:<20} 1048576              files
Max address space         {address:<20} unlimited            bytes
"""


def _limits(tmp_path, nproc="unlimited", nofile="1048576", address="unlimited"):
    path = tmp_path / "limits"
    path.write_text(LIMITS.format(nproc=nproc, nofile=nofile, address=address))
    return {c.name: c for c in check_limits(str(path))}


def test_generous_limits_pass(tmp_path):
    checks = _limits(tmp_path)
    assert {n: c.status for n, c in checks.items()} == {
        "address-space": "pass",
        "open-files": "pass",
        "processes": "pass",
    }
    assert checks["open-files"].facts == {"soft": 1048576, "hard": 1048576}


def test_a_low_open_files_limit_warns_with_the_command_that_raises_it(tmp_path):
    checks = _limits(tmp_path, nofile="1024")
    assert checks["open-files"].status == "warn"
    assert "1024" in checks["open-files"].summary
    assert "ulimit -n 65536" in checks["open-files"].advice
    assert "Too many open files" in checks["open-files"].advice


def test_a_finite_address_space_warns_and_a_low_nproc_too(tmp_path):
    checks = _limits(tmp_path, nproc="512", address=str(8 * GIB))
    assert checks["address-space"].status == "warn"
    assert "8.0 GiB" in checks["address-space"].summary
    assert "ulimit -v unlimited" in checks["address-space"].advice
    assert checks["processes"].status == "warn"
    assert "ulimit -u 4096" in checks["processes"].advice


def test_unreadable_limits_are_skipped(tmp_path):
    (only,) = check_limits(str(tmp_path / "missing"))
    assert only.status == "skip"


def test_docker_default_shm_fails_and_names_the_fix():
    check = judge_shm(ShmUsage("/dev/shm", 0, 64 * MIB), workers=None)
    assert check.status == "fail"
    assert "64.0 MiB" in check.summary
    assert "--shm-size" in check.advice and "num_workers=0" in check.advice


def test_small_shm_is_fine_without_workers_and_warns_for_many():
    assert judge_shm(ShmUsage("/dev/shm", 0, 64 * MIB), workers=0).status == "pass"
    many = judge_shm(ShmUsage("/dev/shm", 0, 1 * GIB), workers=16)
    assert many.status == "warn" and "16 DataLoader workers" in many.summary
    assert judge_shm(ShmUsage("/dev/shm", 0, 16 * GIB), workers=16).status == "pass"


def test_shm_reads_a_real_filesystem_and_a_missing_one(tmp_path):
    assert check_shm(str(tmp_path)).facts["total_bytes"] > 0
    missing = check_shm(str(tmp_path / "none"))
    assert missing.status == "warn" and "no shared-memory filesystem" in missing.summary


def test_disk_thresholds():
    assert judge_disk("/ckpt", "/ckpt", 1000 * GIB, 500 * MIB, True).status == "fail"
    assert judge_disk("/ckpt", "/ckpt", 1000 * GIB, 5 * GIB, True).status == "warn"
    assert judge_disk("/ckpt", "/ckpt", 1000 * GIB, 40 * GIB, True).status == "warn"  # 4% free
    assert judge_disk("/ckpt", "/ckpt", 100 * GIB, 40 * GIB, True).status == "pass"
    unwritable = judge_disk("/ckpt", "/ckpt", 100 * GIB, 40 * GIB, False)
    assert unwritable.status == "fail" and "not writable" in unwritable.summary


def test_disk_checks_the_nearest_existing_parent(tmp_path):
    check = check_disk(str(tmp_path / "runs" / "today"))
    assert check.facts["checked"] == str(tmp_path)
    assert "not there yet" in check.summary


def test_an_output_directory_that_is_a_file_fails(tmp_path):
    # `--output-dir model.pt`, or a path under a file: no checkpoint can be written there
    (tmp_path / "model.pt").write_bytes(b"x")
    for directory in (tmp_path / "model.pt", tmp_path / "model.pt" / "runs"):
        check = check_disk(str(directory))
        assert check.status == "fail", check
        assert check.summary == f"{tmp_path / 'model.pt'} is a file, not a directory"


def _fake_cgroup(tmp_path, limit: str, current: str, available_kib: int = 20 * 1024**2):
    proc, mount = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text("0::/job\n")
    (proc / "self" / "mountinfo").write_text(
        f"30 23 0:26 / {mount} rw,nosuid - cgroup2 cgroup2 rw\n"
    )
    (proc / "meminfo").write_text(
        f"MemTotal:       {24 * 1024**2} kB\nMemAvailable:   {available_kib} kB\n"
    )
    (mount / "job").mkdir(parents=True)
    (mount / "cgroup.controllers").write_text("cpu memory pids\n")
    (mount / "job" / "memory.max").write_text(limit)
    (mount / "job" / "memory.current").write_text(current)
    return str(proc)


def test_a_cgroup_limit_nearly_used_up_warns(tmp_path):
    check = check_memory(_fake_cgroup(tmp_path, str(2 * GIB), str(int(1.9 * GIB))))
    assert check.status == "warn"
    assert "limit 2.0 GiB (cgroup v2" in check.summary and "already in use" in check.summary
    assert check.facts["limit_bytes"] == 2 * GIB


def test_a_roomy_cgroup_limit_passes_and_says_where_it_comes_from(tmp_path):
    check = check_memory(_fake_cgroup(tmp_path, str(2 * GIB), str(100 * MIB)))
    assert check.status == "pass"
    assert "memory.max" in check.summary


def test_a_machine_short_of_memory_warns(tmp_path):
    check = check_memory(_fake_cgroup(tmp_path, "max", "0", available_kib=1024**2))
    assert check.status == "warn" and "available on the machine" in check.summary


def _net(tmp_path, *names):
    net = tmp_path / "net"
    net.mkdir()
    for name in names:
        (net / name).mkdir()
    return str(net)


def test_a_clean_environment_passes(tmp_path):
    check = check_distributed({"PATH": ""}, _net(tmp_path, "lo", "eth0"))
    assert check.status == "pass"
    assert check.summary == "no torchrun or NCCL settings in the environment"


def test_bad_port_and_rank_fail_and_leftover_ranks_warn_in_the_same_line(tmp_path):
    env = {"MASTER_PORT": "http", "RANK": "2", "WORLD_SIZE": "2", "PATH": ""}
    check = check_distributed(env, _net(tmp_path, "lo"))
    assert check.status == "fail"
    assert "MASTER_PORT='http' is not a port" in check.summary
    assert "RANK=2 is not below WORLD_SIZE=2" in check.summary
    assert "set in this shell" in check.summary and "unset RANK WORLD_SIZE" in check.advice


def test_rank_variables_inside_torchrun_are_expected(tmp_path):
    env = {"RANK": "0", "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "x", "PATH": ""}
    assert check_distributed(env, _net(tmp_path, "lo")).status == "pass"


@pytest.mark.parametrize(
    ("setting", "ok"),
    [
        ("eth", True),
        ("=eth0", True),
        ("=eth", False),
        ("ib0", False),
        ("^docker,lo", True),
        ("^eth,en", False),
        ("ib,en", True),
    ],
)
def test_nccl_interface_names_follow_nccl_syntax(tmp_path, setting, ok):
    check = check_distributed(
        {"NCCL_SOCKET_IFNAME": setting, "PATH": ""}, _net(tmp_path, "lo", "eth0", "enp5s0")
    )
    assert (check.status == "pass") is ok, check.summary


def test_renamed_nccl_variables_warn(tmp_path):
    check = check_distributed({"NCCL_ASYNC_ERROR_HANDLING": "1", "PATH": ""}, _net(tmp_path))
    assert check.status == "warn" and "TORCH_NCCL_ASYNC_ERROR_HANDLING" in check.advice


def test_torchrun_of_another_python_warns(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    torchrun = bin_dir / "torchrun"
    torchrun.write_text("#!/opt/other-env/bin/python3\nimport sys\n")
    torchrun.chmod(0o755)
    ours = bin_dir / "python3"
    ours.write_text("")
    ours.chmod(0o755)
    env = {"PATH": str(bin_dir)}
    check = check_distributed(env, _net(tmp_path), python=str(ours))
    assert check.status == "warn"
    assert "/opt/other-env/bin/python3" in check.summary
    assert "python -m torch.distributed.run" in check.advice
    torchrun.write_text(f"#!{ours}\n")
    assert check_distributed(env, str(tmp_path / "net"), python=str(ours)).status == "pass"


def _python(**report) -> PythonFacts:
    base = {"python": "3.11.7", "executable": "/env/bin/python", "prefix": "/env"}
    return PythonFacts("python3", {**base, **report})


def _driver(cuda=(12, 4), devices=1, used=0, processes=()) -> DriverFacts:
    gpus = tuple(
        InstalledGpu(i, "NVIDIA H100", f"GPU-{i}abc", 80 * GIB, used, processes)
        for i in range(devices)
    )
    return DriverFacts("550.54.14", cuda, gpus)


def test_python_and_torch_pass_with_their_versions():
    facts = _python(torch="2.4.0+cu124", cuda_build="12.4", cudnn=90100, nccl="2.20.5")
    assert check_python(facts).status == "pass"
    torch = check_torch(facts)
    assert torch.status == "pass"
    assert torch.summary == "torch 2.4.0+cu124, built for CUDA 12.4, cuDNN 90100, NCCL 2.20.5"


def test_a_python_that_does_not_answer_fails_and_torch_is_not_judged():
    facts = PythonFacts("/opt/py", error="cannot start: No such file or directory")
    assert check_python(facts).status == "fail"
    assert check_torch(facts).status == "skip"


def test_an_old_python_warns_that_the_probe_cannot_load():
    assert check_python(_python(python="3.7.9")).status == "warn"


def test_torch_missing_warns_and_torch_broken_fails():
    missing = check_torch(_python(torch_error="ModuleNotFoundError: x", torch_missing=True))
    assert missing.status == "warn" and "not installed" in missing.summary
    broken = check_torch(
        _python(torch_error="OSError: libcudart.so.12: cannot open shared object file")
    )
    assert broken.status == "fail" and "libcudart.so.12" in broken.summary


def test_cuda_build_against_driver():
    cu124 = _python(torch="2.4.0", cuda_build="12.4", cuda_available=True)
    assert check_cuda(cu124, _driver((12, 4))).status == "pass"
    assert check_cuda(cu124, _driver((12, 6))).status == "pass"
    newer_minor = check_cuda(cu124, _driver((12, 2)))
    assert newer_minor.status == "warn" and "minor-version compatibility" in newer_minor.advice
    too_old = check_cuda(_python(torch="2.8", cuda_build="12.8"), _driver((11, 8)))
    assert too_old.status == "fail"
    assert "driver 550.54.14 supports CUDA up to 11.8" in too_old.summary
    assert "too old" in too_old.advice


def test_cuda_unavailable_despite_a_matching_driver_fails_with_torchs_warning():
    facts = _python(
        torch="2.4.0",
        cuda_build="12.4",
        cuda_available=False,
        warnings=["CUDA initialization: The NVIDIA driver on your system is too old"],
    )
    check = check_cuda(facts, _driver((12, 4)))
    assert check.status == "fail" and "NVIDIA driver on your system" in check.summary


def test_cpu_torch_on_a_gpu_machine_warns_and_cuda_torch_without_driver_warns():
    assert check_cuda(_python(torch="2.4.0+cpu"), _driver()).status == "warn"
    assert check_cuda(_python(torch="2.4.0+cpu"), DriverFacts(note="no NVIDIA driver")).status == (
        "skip"
    )
    no_driver = check_cuda(_python(torch="2.4", cuda_build="12.4"), DriverFacts(note="none"))
    assert no_driver.status == "warn" and "CPU only" in no_driver.advice


def test_visible_devices_follow_cuda_visible_devices():
    driver = _driver(devices=3)
    assert [d.index for d in visible_devices(driver, None)[0]] == [0, 1, 2]
    assert [d.index for d in visible_devices(driver, "2,0")[0]] == [2, 0]
    assert [d.index for d in visible_devices(driver, "GPU-1")[0]] == [1]
    chosen, problem = visible_devices(driver, "1,7,0")
    assert [d.index for d in chosen] == [1] and "7 names no device" in problem
    assert visible_devices(driver, "")[1] == "CUDA_VISIBLE_DEVICES is empty: the run sees no GPU"


def test_gpus_in_use_by_another_process_warn_with_its_pid():
    busy = check_gpus(_driver(devices=2, used=30 * GIB, processes=((4242, 30 * GIB),)), {})
    assert busy.status == "warn"
    assert "GPU 0: 30.0 GiB in use by pid 4242" in busy.summary
    free = check_gpus(_driver(devices=2, used=500 * MIB), {"CUDA_VISIBLE_DEVICES": "1"})
    assert free.status == "pass" and free.summary.startswith("1 visible: 1 NVIDIA H100 80.0 GiB")
    assert check_gpus(DriverFacts(note="no NVIDIA driver"), {}).status == "skip"
    assert check_gpus(_driver(), {"CUDA_VISIBLE_DEVICES": "3"}).status == "warn"


def test_the_driver_version_file_names_the_driver_when_nvml_cannot(tmp_path):
    version = tmp_path / "version"
    version.write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n"
    )
    facts = _driver_from_file(str(version), "NVML's library (libnvidia-ml.so) was not found")
    assert facts.driver_version == "550.54.14" and "kernel module is loaded" in facts.note
    assert _driver_from_file(str(tmp_path / "none"), "x").note == "no NVIDIA driver on this machine"


def test_render_shows_a_line_per_check_and_the_advice_under_problems():
    checks = (
        Check("python", "pass", "Python 3.11.7 (/env/bin/python)"),
        Check("cuda", "skip", "no NVIDIA driver on this machine"),
        Check("shm", "fail", "/dev/shm is 64.0 MiB", "Start the container with --shm-size=8g."),
    )
    text = render(DoctorRequest(python="/env/bin/python", env={}), checks, width=100)
    lines = text.splitlines()
    assert lines[1] == "✓ python  Python 3.11.7 (/env/bin/python)"
    assert lines[2] == "– cuda    no NVIDIA driver on this machine"
    assert lines[3] == "✗ shm     /dev/shm is 64.0 MiB"
    assert lines[4] == "          → Start the container with --shm-size=8g."
    assert lines[-1] == "3 checks: 1 pass, 1 not applicable, 0 warnings, 1 failure"
    assert worst(checks) == "fail"
    report = to_dict(DoctorRequest(python="/env/bin/python", env={}), checks)
    assert report["status"] == "fail" and [c["name"] for c in report["checks"]] == [
        "python",
        "cuda",
        "shm",
    ]


def test_a_check_refuses_an_unknown_status():
    with pytest.raises(ValueError):
        Check("x", "ok", "")


def test_limits_file_of_this_process_parses():
    checks = check_limits()
    assert {c.name for c in checks} == {"address-space", "open-files", "processes"}
    assert all(c.status in ("pass", "warn") for c in checks), [c.summary for c in checks]
    assert os.path.exists("/proc/self/limits")
