"""Shared test helpers: how to start the real `trainwatch` command and read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "scripts"
CORPUS = ROOT / "corpus"  # the labelled failure logs, kept in the repository (corpus/README.md)
CORPUS_LOGS = CORPUS / "logs"
TRAINWATCH = str(Path(sys.executable).with_name("trainwatch"))


def trainwatch(
    *args: str, timeout: float = 120, env: dict | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """Run the installed `trainwatch` command to its end, capturing bytes."""
    full_env = dict(os.environ)
    # The child scripts run under this venv's python, which has torch; trainwatch finds it as
    # `python3` on PATH.
    full_env["PATH"] = f"{Path(sys.executable).parent}:{full_env.get('PATH', '')}"
    full_env.pop("TRAINWATCH_DEBUG", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [TRAINWATCH, *args], capture_output=True, timeout=timeout, env=full_env, **kwargs
    )


def read_report(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture
def script():
    """Path of a helper script in tests/scripts."""

    def find(name: str) -> str:
        return str(SCRIPTS / name)

    return find
