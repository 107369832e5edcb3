"""What `trainwatch run` imports before the child starts: the live features (notifications,
--on-nan, the run registry) add nothing to a plain run, and little to a run that asks for them."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import SCRIPTS

LIVE_MODULES = (
    "trainwatch.cli.notify",
    "trainwatch.diagnostics.watch.alerts",
    "trainwatch.diagnostics.watch.registry",
    "urllib.request",
    "http.client",
)


def modules_at_child_start(tmp_path, *args: str) -> set[str]:
    out = tmp_path / "modules.txt"
    env = {
        **os.environ,
        "MODULES_OUT": str(out),
        "XDG_CONFIG_HOME": str(tmp_path),
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}",
    }
    env.pop("TRAINWATCH_NOTIFY", None)
    subprocess.run(
        [sys.executable, str(SCRIPTS / "startup_modules.py"), "run", *args],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return set(out.read_text().split())


def test_a_plain_run_imports_no_live_feature(tmp_path):
    modules = modules_at_child_start(tmp_path, "--", sys.executable, "-c", "pass")
    assert "trainwatch.diagnostics.watch.child" in modules  # the recording works
    assert not [m for m in modules if m.startswith(LIVE_MODULES)]


def test_nothing_heavy_of_the_standard_library_is_loaded_before_the_program_starts(tmp_path):
    # shutil loads the compression modules, tempfile shutil and random; the report's modules wait
    # for the program to run; records made before the start are named tuples, not dataclasses
    # (inspect with them), and typing stays out (docs/architecture.md, start-up)
    modules = modules_at_child_start(tmp_path, "--", sys.executable, "-c", "pass")
    assert "trainwatch.diagnostics.watch.probe.parent" in modules  # the probe's directory is made
    heavy = {"shutil", "tempfile", "random", "json", "datetime", "bz2", "lzma", "rich", "typer"}
    heavy |= {"dataclasses", "inspect", "typing", "trainwatch.diagnostics.evidence"}
    assert not heavy & modules


def test_notifications_read_their_settings_but_post_from_threads(tmp_path):
    modules = modules_at_child_start(
        tmp_path, "--notify", "http://127.0.0.1:9/x", "--", sys.executable, "-c", "pass"
    )
    assert "trainwatch.cli.notify.config" in modules
    assert "urllib.request" not in modules and "http.client" not in modules


def test_on_nan_brings_its_watcher_but_no_network_code(tmp_path):
    modules = modules_at_child_start(
        tmp_path, "--on-nan", "stop:2", "--", sys.executable, "-c", "pass"
    )
    assert "trainwatch.diagnostics.watch.alerts" in modules
    assert "urllib.request" not in modules and "http.client" not in modules


def test_a_plain_explain_imports_neither_typer_nor_click(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("epoch 1 loss 0.52\nepoch 2 loss 0.47\n")
    out = tmp_path / "modules.txt"
    # trainwatch leaves with os._exit after the exit functions: one of them records the modules
    code = (
        "import atexit, sys\n"
        "from trainwatch.cli.app import main\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(chr(10).join(sys.modules)))\n"
        f"main(['explain', '-q', {str(log)!r}])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 0 and result.stderr.startswith(b"trainwatch: "), result.stderr
    modules = set(out.read_text().split())
    assert "trainwatch.diagnostics.postmortem" in modules  # the recording works
    assert "typer" not in modules and "click" not in modules
