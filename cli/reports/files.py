"""Report files written so that they can never hurt: checked before the run, replaced atomically
when they are regular files, written in place when they are not, and never through a planted link.

- A regular file (or a new path) is replaced by renaming a temporary file over it. The temporary
  file has an unpredictable name, is created with O_CREAT|O_EXCL|O_NOFOLLOW in the target's own
  directory (so nobody can plant a link at its name first), and takes the target's mode and owner.
- Anything else at the path (a character device such as /dev/null, a FIFO, a socket) is opened
  and written in place: renaming over it would replace a device node with a file.
- `/dev/stdout`, `/dev/stderr` and `/dev/fd/N` are trainwatch's own descriptors: written to
  directly, never resolved to the file a shell redirected them to.
- A symbolic link is written through: its target is what gets replaced or written.
A failure is one line on stderr and never changes trainwatch's exit status: the run's own status
matters more than a report that could not be saved.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from trainwatch.diagnostics.errors import UsageError

_OWN_FD = re.compile(r"^/(?:dev/fd|proc/self/fd)/(\d+)$")
_STD_NAMES = {"/dev/stdout": 1, "/dev/stderr": 2}


def writable(name: str | None) -> str | None:
    """Check an output path before anything runs: a report that cannot be written is a usage
    error, found before a long training run rather than after it."""
    if name is None or name == "-" or own_descriptor(name) is not None:
        return name
    path = Path(name)
    try:
        info = os.stat(path)  # follows links: a loop or a dangling link says so here
    except FileNotFoundError:
        info = None
        if path.is_symlink():
            target = Path(os.path.realpath(path))
            if not target.parent.is_dir():
                message = f"cannot write {path}: it links to {target}, in no directory"
                raise UsageError(message) from None
            path = target
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise UsageError(f"cannot write {path}: it is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if info is None and not parent.is_dir():
        raise UsageError(f"cannot write {path}: no directory {parent}")
    if info is not None and not os.access(path, os.W_OK):
        raise UsageError(f"cannot write {path}: permission denied")
    if info is None and not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write {path}: permission denied")
    return name


def own_descriptor(name: str) -> int | None:
    """The descriptor a path names when it is one of trainwatch's own (`/dev/stdout`,
    `/dev/fd/3`)."""
    if name in _STD_NAMES:
        return _STD_NAMES[name]
    found = _OWN_FD.match(name)
    return int(found.group(1)) if found else None


def write_report(path: str, text: str, what: str) -> bool:
    """Write one report file as the module docstring says; True when it was written."""
    from trainwatch.cli.console import print_error

    data = text.encode("utf-8")
    try:
        fd = own_descriptor(path)
        if fd is not None:
            _write_all(fd, data)
            return True
        target = os.path.realpath(path)
        try:
            info = os.stat(target)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISREG(info.st_mode):
            _write_in_place(target, data)
        else:
            _replace(target, data, info)
        return True
    except OSError as exc:
        print_error(f"cannot write {what} to {path}: {exc.strerror or exc}")
        return False


def _write_in_place(target: str, data: bytes) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def random_suffix() -> str:
    """The random part of a temporary file's name: 64 bits, not guessable by another user."""
    return os.urandom(8).hex()


def _replace(target: str, data: bytes, info: os.stat_result | None) -> None:
    directory, name = os.path.split(target)
    for _ in range(16):  # a name taken by chance (or by someone guessing) is retried, never opened
        tmp = os.path.join(directory, f".{name}.{random_suffix()}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, 0o666)  # the umask applies, as for any new file
            break
        except FileExistsError:
            continue
    else:
        raise OSError(errno.EEXIST, "no free temporary name")
    try:
        try:
            if info is not None:  # the file it replaces keeps its mode (and owner, when we may)
                os.fchmod(fd, stat.S_IMODE(info.st_mode))
                if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                    try:
                        os.fchown(fd, info.st_uid, info.st_gid)
                    except PermissionError:
                        pass
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
