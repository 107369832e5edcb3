"""The child's descriptors: a pipe or a raw pseudo-terminal for each output stream, and the
descriptors trainwatch's caller passed on."""

from __future__ import annotations

import os


def open_stream(our_fd: int, pipe_size: int) -> tuple[int, int]:
    """(our read end, the child's write end): a raw pseudo-terminal when our stream is a terminal,
    else a pipe widened to `pipe_size` where the kernel lets us (F_SETPIPE_SZ, at most
    /proc/sys/fs/pipe-max-size for an unprivileged user), so a burst waits in the pipe rather than
    stopping the program while the relay is busy."""
    if os.isatty(our_fd):
        import pty
        import termios
        import tty

        leader, follower = pty.openpty()
        # no newline translation, no echo: bytes arrive as the child wrote them
        tty.setraw(follower)
        try:
            import fcntl

            size = fcntl.ioctl(our_fd, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(follower, termios.TIOCSWINSZ, size)
        except OSError:
            pass
        return leader, follower
    read_end, write_end = os.pipe()
    try:
        import fcntl

        fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, pipe_size)
    except (OSError, AttributeError):  # refused: the pipe keeps its size
        pass
    return read_end, write_end


def inherited_descriptors() -> tuple[int, ...]:
    """Descriptors above 2 that trainwatch's caller passed on (`7>file`, a CI runner's pipe): the
    program gets them, as it would without trainwatch. They are told apart by being inheritable:
    nothing trainwatch opens is (PEP 446)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return ()
    found = []
    for name in names:
        fd = int(name)
        if fd <= 2:
            continue
        try:
            if os.get_inheritable(fd):
                found.append(fd)
        except OSError:  # the listing's own descriptor, closed by now
            continue
    return tuple(sorted(found))


def same_destination(a: int, b: int) -> bool:
    """Do descriptors `a` and `b` write to the same file or terminal?"""
    try:
        one, two = os.fstat(a), os.fstat(b)
    except OSError:
        return False
    return (one.st_dev, one.st_ino) == (two.st_dev, two.st_ino)
