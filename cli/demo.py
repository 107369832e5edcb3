"""`trainwatch demo`: a real failing training under `trainwatch run`, from the installed package
alone: a small CNN on generated images, one of them corrupt (trainwatch.demo)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Any

from trainwatch.cli.options import DEMO_OPTIONS, typer_command
from trainwatch.diagnostics.errors import UsageError

HELP = """Watch a real training run fail, and read trainwatch's report of it.

\b
  trainwatch demo
  trainwatch demo --python .venv/bin/python --html demo.html

Trains a small CNN on the CPU for a few seconds, on 96 generated images of which one is corrupt,
under `trainwatch run`: a DataLoader worker meets the bad file and the run dies; the report says
why, and where. It needs PyTorch in the Python it runs under (the python3 first on PATH, or
--python); Pillow is used when it is there. Exits with the training's status (1: it fails on
purpose).
"""

EPOCHS = "2"


def demo(**values: Any) -> int:
    from trainwatch.cli.console import print_line
    from trainwatch.cli.run import RunOptions, execute
    from trainwatch.demo import SCRIPT
    from trainwatch.diagnostics.watch.target import resolve_python

    python = resolve_python(values["python"])
    if not has_torch(python):
        raise UsageError(
            f"the demo trains with PyTorch, which {python} cannot import: install torch there, "
            "or name a Python that has it with --python"
        )
    data = values["data"] or tempfile.mkdtemp(prefix="trainwatch-demo-")
    print_line(
        f"trainwatch demo: a small CNN on 96 generated images in {data}, one of them corrupt, "
        f"trained under `trainwatch run` with {python}; its output, then trainwatch's report:"
    )
    options = RunOptions(
        program=(str(SCRIPT), "--epochs", EPOCHS, "--data", data),
        python=python,
        json_path=values["json_path"],
        html=values["html"],
    )
    status = execute(options)
    print_line(
        f"trainwatch demo: the training failed on purpose (status {status}); the bad image is "
        f"{os.path.join(data, '2_077.png')}"
        if status
        else "trainwatch demo: the training finished (status 0)"
    )
    return status


def has_torch(python: str) -> bool:
    """Can `python` import torch? Asked without importing it (a find_spec takes milliseconds)."""
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"
    try:
        return (
            subprocess.run([python, "-c", probe], timeout=60, capture_output=True).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def _demo_command(**values: Any) -> None:
    import typer

    raise typer.Exit(demo(**values))


demo_command = typer_command(_demo_command, DEMO_OPTIONS)
