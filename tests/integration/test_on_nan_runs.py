"""`--on-nan` for real: a PyTorch loop and a Lightning run whose loss overflows are stopped (an
interrupt first, a terminate after the grace period), judged `numerical` from the step it started,
and a checkpoint saved on the interrupt survives; `warn` only warns."""

from __future__ import annotations

from conftest import SCRIPTS, needs, read_report, trainwatch

LOOP = str(SCRIPTS / "nan_torch_loop.py")


def stopped_run(tmp_path, *options: str, program: tuple[str, ...] = ()):
    """`trainwatch run --json R OPTIONS nan_torch_loop.py PROGRAM...`: (result, report)."""
    report = tmp_path / "r.json"
    result = trainwatch("run", "--json", str(report), *options, LOOP, *program, timeout=120)
    assert report.exists(), result.stderr.decode(errors="replace")[-3000:]
    return result, read_report(report)


def _epoch(position: str) -> int:
    return int(position.split()[1].split("/")[0].rstrip(","))


def test_a_plain_loop_is_interrupted_at_its_first_non_finite_loss(tmp_path):
    result, report = stopped_run(tmp_path, "--on-nan", "stop")
    stop = report["nan_stop"]
    first = report["progress"]["first_nonfinite_loss"]
    assert stop["signals"] == ["SIGINT"] and stop["after"] == 1
    assert stop["first_at"] == first["at"] == stop["stopped_at"]
    assert first["line"].endswith("loss=inf")
    # of 200 (the first inf comes at epoch 4): stopped, not finished; a loaded machine may let a
    # few epochs pass before the interrupt lands
    assert _epoch(report["progress"]["stopped_at"]) < 50
    assert report["verdict"]["category"] == "numerical"
    assert first["at"] in report["verdict"]["summary"]
    assert "(--on-nan stop)" in report["verdict"]["summary"]
    # Python's KeyboardInterrupt ends a process by SIGINT: the program's own status passes through
    assert report["exit"]["signal"] == "SIGINT" and result.returncode == -2
    assert any("KeyboardInterrupt" in c["text"] for c in report["cascade"])
    stderr = result.stderr.decode()
    assert f"trainwatch: --on-nan stop: The loss became +Inf at {first['at']}." in stderr


def test_a_loop_that_saves_a_checkpoint_on_the_interrupt_keeps_it_and_exits_3(tmp_path):
    checkpoint = tmp_path / "interrupted.pt"
    result, report = stopped_run(tmp_path, "--on-nan", "stop", program=("--catch", str(checkpoint)))
    assert checkpoint.stat().st_size > 0
    assert report["exit"]["code"] == 0
    assert result.returncode == 3  # stopped for NaN: not a success, though the program exited 0
    stderr = result.stderr.decode()
    assert "trainwatch: --on-nan stop: the run was stopped: the verdict is numerical/" in stderr
    assert "exits 3: it stopped the run for a non-finite loss" in stderr


def test_a_loop_that_ignores_the_interrupt_is_terminated_after_the_grace(tmp_path):
    result, report = stopped_run(
        tmp_path, "--on-nan", "stop", "--nan-grace", "1", program=("--ignore-sigint",)
    )
    assert report["nan_stop"]["signals"] == ["SIGINT", "SIGTERM"]
    assert report["exit"]["signal"] == "SIGTERM" and result.returncode == -15
    assert report["verdict"]["category"] == "numerical"


def test_stop_after_three_waits_for_three_non_finite_steps(tmp_path):
    _, report = stopped_run(tmp_path, "--on-nan", "stop:3")
    stop = report["nan_stop"]
    assert stop["after"] == 3
    first_step = int(stop["first_at"].rsplit(" ", 1)[1].split("/")[0])
    stopped_step = int(stop["stopped_at"].rsplit(" ", 1)[1].split("/")[0])
    assert (stopped_step - first_step) % 8 == 2  # the third non-finite step
    assert "after 3 non-finite losses" in report["verdict"]["summary"]
    assert report["progress"]["nonfinite_count"] >= 3


def test_warn_only_warns_and_the_run_goes_on(tmp_path):
    report = tmp_path / "r.json"
    result = trainwatch(
        "run", "--json", str(report), "--on-nan", "warn", str(SCRIPTS / "quiet_nan_loss.py")
    )
    assert result.returncode == 0
    assert b"Training finished." in result.stdout
    warnings = [line for line in result.stderr.decode().splitlines() if "--on-nan warn" in line]
    assert len(warnings) == 1 and warnings[0].startswith("trainwatch: warning: The loss became")
    data = read_report(report)
    assert "nan_stop" not in data and data["verdict"]["category"] == "numerical"


def test_a_lightning_run_is_interrupted_and_saves_its_checkpoint(tmp_path):
    needs("lightning")
    checkpoints = tmp_path / "checkpoints"
    report_path = tmp_path / "l.json"
    result = trainwatch(
        "run",
        "--json",
        str(report_path),
        "--on-nan",
        "stop",
        str(SCRIPTS / "nan_lightning.py"),
        str(checkpoints),
        timeout=120,
    )
    report = read_report(report_path)
    assert (checkpoints / "interrupted.ckpt").exists()  # Lightning's OnExceptionCheckpoint
    stop = report["nan_stop"]
    assert stop["signals"] == ["SIGINT"]
    assert "loss=inf.0]" in stop["first_line"]  # Lightning's padded number
    assert report["verdict"]["category"] == "numerical"
    assert stop["first_at"] in report["verdict"]["summary"]
    assert b"Detected KeyboardInterrupt, attempting graceful shutdown" in result.stderr
    assert result.returncode == report["exit"]["status"] == 1  # Lightning exits 1 after it


def test_a_bad_on_nan_value_is_a_usage_error(tmp_path):
    result = trainwatch("run", "--on-nan", "stop:0", "--", "touch", str(tmp_path / "ran"))
    assert result.returncode == 2
    assert b"--on-nan must be warn, stop or stop:N" in result.stderr
    assert not (tmp_path / "ran").exists()
