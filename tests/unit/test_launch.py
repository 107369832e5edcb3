"""`trainwatch run` as a faithful wrapper: output, exit status, signals, process lifetime,
arguments, bad input.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from conftest import TRAINWATCH


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.pop("TRAINWATCH_DEBUG", None)
    return env


def _wait_for_line(stream, text: bytes, timeout: float = 30) -> bytes:
    """Read from a pipe until `text` shows up; fail after `timeout` seconds."""
    seen = b""
    deadline = time.monotonic() + timeout
    fd = stream.fileno()
    while text not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"never saw {text!r}; got {seen[-500:]!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"stream closed before {text!r}; got {seen[-500:]!r}"
            seen += chunk
    return seen


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


# ---- output --------------------------------------------------------------------------------------


def test_child_sees_a_terminal_when_trainwatch_writes_to_one():
    code = "import sys; print('isatty', sys.stdout.isatty(), sys.stderr.isatty())"
    pid, fd = pty.fork()
    if pid == 0:  # in the child: stdout and stderr are the pseudo-terminal
        os.execve(
            TRAINWATCH,
            [TRAINWATCH, "run", "-q", "--no-probe", "--", sys.executable, "-c", code],
            _env(),
        )
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"isatty True True" in out


# ---- exit status ---------------------------------------------------------------------------------


def _assert_one_line_error(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("trainwatch: error: ")
    for word in words:
        assert word in lines[0]
    assert b"Traceback" not in result.stderr
