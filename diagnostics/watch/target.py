"""Which program `trainwatch run` starts: a script, a module or a command, resolved as a shell would
resolve it.
"""

from __future__ import annotations

import errno
import os

from trainwatch.diagnostics.errors import CommandNotExecutable, CommandNotFound, UsageError
from trainwatch.diagnostics.startup import startup_record


@startup_record  # made before the program starts (diagnostics/startup.py)
class Target:
    """The argv to execute, and whether it is a Python program started by us (so the probe surely
    applies).
    """

    argv: tuple[str, ...]
    python: bool


def resolve_python(python: str | None) -> str:
    """The interpreter a user gets by typing `python3` in this shell, or the one `--python`
    names.
    """
    if python is None:
        found = on_path("python3") or on_path("python")
        if found is None:
            raise CommandNotFound("no python3 on PATH; name an interpreter with --python")
        return found
    return resolve_executable(python)


def resolve_script(script: str, args: tuple[str, ...], python: str | None) -> Target:
    """`trainwatch run train.py ARGS`: the script under the user's Python. A name that is no file
    here but a command on PATH (`trainwatch run python train.py`, `trainwatch run torchrun ...`,
    as people type it) is run as that command, as `--` would; so is a file the system runs by
    itself (`trainwatch run ./train.sh`, `trainwatch run ~/env/bin/python train.py`)."""
    missing = _unusable(script)
    if missing is not None and missing.errno == errno.ENOENT and _a_command(script):
        return resolve_command((script, *args))
    if missing is None and _runs_by_itself(script):
        # a file here, named bare (`trainwatch run train.sh`): the file, not a command on PATH
        return resolve_command((script if "/" in script else f"./{script}", *args))
    interpreter = None if missing is not None else _foreign_interpreter(script)
    if interpreter is not None:
        raise CommandNotExecutable(
            f"{script} is not executable and is no Python script (its first line names "
            f"{interpreter}): `chmod +x {script}`, or `trainwatch run -- {interpreter} {script}`"
        )
    if missing is not None:
        raise UsageError(
            f"script not found: {script}"
            if missing.errno == errno.ENOENT
            else f"cannot use the script {script}: {missing.strerror}"
        )
    if os.path.isdir(script) and not os.path.exists(os.path.join(script, "__main__.py")):
        raise UsageError(f"{script} is a directory, not a script (no __main__.py in it)")
    if not os.access(script, os.R_OK):
        raise UsageError(f"script not readable: {script}")
    return Target((resolve_python(python), script, *args), python=True)


# What starts a file the kernel executes: a compiled program (ELF), or a script naming its
# interpreter (`#!`)
_EXECUTABLE_STARTS = (b"\x7fELF", b"#!")


def _runs_by_itself(path: str) -> bool:
    """An executable file, not a `.py` one, that the kernel runs by itself: a program or a script
    with its own interpreter line. Handed to Python, a binary fails to compile and a shell script
    is read as Python."""
    return os.access(path, os.X_OK) and _first_line(path).startswith(_EXECUTABLE_STARTS)


def _first_line(path: str) -> bytes:
    """The start of a file that is no `.py` one nor a directory (b"" for those, or unreadable)."""
    if path.endswith(".py") or os.path.isdir(path):
        return b""
    try:
        with open(path, "rb") as f:
            return f.readline(200)
    except OSError:
        return b""


def _foreign_interpreter(path: str) -> str | None:
    """The interpreter a script's `#!` line names when it is not Python (`#!/bin/bash` ->
    `bash`): such a file handed to Python is read as Python, and fails as a syntax error."""
    first = _first_line(path)
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if not words:
        return None
    name = os.path.basename(
        words[1] if os.path.basename(words[0]) == "env" and len(words) > 1 else words[0]
    )
    return None if name.startswith("python") else name


def _a_command(name: str) -> bool:
    """A bare name (no slash, not a `.py` file's) that PATH finds."""
    return "/" not in name and not name.endswith(".py") and on_path(name) is not None


def resolve_module(module: str, args: tuple[str, ...], python: str | None) -> Target:
    """`trainwatch run -m pkg.train ARGS`."""
    if not module or module.startswith("-"):
        raise UsageError("-m needs a module name")
    return Target((resolve_python(python), "-m", module, *args), python=True)


def resolve_command(argv: tuple[str, ...]) -> Target:
    """`trainwatch run -- CMD ARGS`: CMD looked up on PATH unless it contains a slash, as execvp
    does.
    """
    if not argv:
        raise UsageError("nothing to run after --")
    # fail early, with a shell's exit code; the child still gets argv[0] as typed
    resolve_executable(argv[0])
    return Target(tuple(argv), python=os.path.basename(argv[0]).startswith("python"))


def resolve_executable(program: str) -> str:
    if "/" in program:
        missing = _unusable(program)
        if missing is not None and missing.errno == errno.ENOENT:
            raise CommandNotFound(f"command not found: {program}")
        if missing is not None:  # a loop of symbolic links, a parent we may not search: as a shell
            raise CommandNotExecutable(f"{program}: {missing.strerror}")
        if os.path.isdir(program):
            raise CommandNotExecutable(f"{program} is a directory")
        if not os.access(program, os.X_OK):
            raise CommandNotExecutable(f"permission denied: {program} is not executable")
        return program
    found = on_path(program)
    if found is None:
        raise CommandNotFound(f"command not found: {program}")
    return found


def on_path(program: str) -> str | None:
    """The first executable file named `program` in PATH's directories, as shutil.which finds it:
    importing shutil loads the compression modules (bz2, lzma), milliseconds of start-up before
    the program runs (docs/architecture.md)."""
    path = os.environ.get("PATH")
    if path is None:
        try:
            path = os.confstr("CS_PATH") or os.defpath
        except (AttributeError, ValueError):
            path = os.defpath
    seen = set()
    for directory in path.split(os.pathsep):
        if directory in seen:
            continue
        seen.add(directory)
        candidate = os.path.join(directory, program)
        if (
            os.path.exists(candidate)
            and os.access(candidate, os.X_OK)
            and not os.path.isdir(candidate)
        ):
            return candidate
    return None


def _unusable(path: str) -> OSError | None:
    """Why `path` cannot be reached (its OSError: no such file, a symbolic link loop, a directory
    we may not search), or None when it can: `os.path.exists` says False to all of them alike."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc
    return None
