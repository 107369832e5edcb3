"""Starting the user's program as a child: its own process group, output relayed byte for byte,
signals forwarded.

The child runs in a process group of its own so that trainwatch can signal the whole tree
(DataLoader workers, torchrun ranks) at once and so that a terminal's Ctrl-C reaches it exactly
once. When trainwatch runs in the foreground of a terminal, the child's group is made the
terminal's foreground group, as a job-control shell does: Ctrl-C, Ctrl-\\ and keyboard input
(pdb) go straight to the child, and trainwatch stays alive to write its report. Each output
stream is a pseudo-terminal in raw mode when trainwatch's own stream is a terminal (the child
sees a terminal, as it would without trainwatch: colours, live tqdm bars, line-buffered prints)
and a pipe otherwise; one for both streams when trainwatch's own two go to one place.
"""

from __future__ import annotations

import os
import select
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from trainwatch.diagnostics.startup import startup_record
from trainwatch.diagnostics.watch.feed import OutputFeed
from trainwatch.diagnostics.watch.guard import (
    Guard,
    adopt_orphans,
    reap_adopted,
    reap_group,
    wait_for_ended_adoptees,
)
from trainwatch.diagnostics.watch.observers import LineObserver
from trainwatch.diagnostics.watch.streams import (
    inherited_descriptors,
    open_stream,
    same_destination,
)

TYPE_CHECKING = False  # not typing's: imported before the program starts (diagnostics/startup.py)
if TYPE_CHECKING:  # the evidence's records are imported once the child has ended
    from trainwatch.diagnostics.evidence import ExitStatus

# Signals sent to trainwatch that it relays to the child's process group (issue 2, point 6).
FORWARDED_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
# The same signal again this soon is one sending, relayed once: `timeout -s INT` and some
# launchers signal trainwatch's pid and then its process group, which it would otherwise relay
# twice to every process of the program (bare, its workers get one). The kernel merges a signal
# that is already pending too, so no program can count on two; a person's Ctrl-C goes to the
# program's group directly (it holds the terminal), not through this relay.
SAME_SENDING_S = 0.5

# One read takes what the pipe holds, up to this; the pipes are widened to it where the kernel
# lets us (F_SETPIPE_SZ, at most /proc/sys/fs/pipe-max-size, 1 MiB by default), so a burst of output
# waits in the pipe rather than stopping the program while the relay is busy.
READ_SIZE = 1 << 20
# While the relay runs, how long another thread of trainwatch (the parsers) may hold the GIL before
# handing it over: the relay needs it back after every read and write (the default is 5 ms).
SWITCH_INTERVAL_S = 0.0001
# After the child exits, how long to keep relaying output from descendants that still hold its
# streams.
DRAIN_QUIET_S = 0.5
DRAIN_MAX_S = 5.0
# In a burst (a read soon after the last one brought less than a pipe's worth), the relay lets the
# output gather for this long before it reads again: one read and one write of a few tens of KiB
# instead of one per 4-8 KiB block a program's buffered prints write, a tenth of the relay's work
# per byte on a chatty program, for at most this much latency.
GATHER_S = 0.001
GATHER_BELOW = 64 << 10
BURST_GAP_S = 0.002
# Longest pause between two checks for the child's exit (see Child._wait_for_exit).
WAIT_POLL_S = 0.05
# After the child exits, how long survivors of its process group get between SIGTERM and SIGKILL.
REAP_GRACE_S = 2.0
# The most the report waits for the parsers (they keep about a second of work at the end; a parser
# stuck on some line must not keep trainwatch from reporting and exiting).
FEED_WAIT_S = 60.0


@startup_record  # made before the program starts (diagnostics/startup.py)
class LaunchRequest:
    """What to start and how to relay it."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    log_path: str | None = None  # also save the combined output here
    # directories the guard removes if trainwatch itself is killed (the probe's, holding the
    # unredacted command line): trainwatch removes them itself when it lives to the end
    cleanup_paths: tuple[str, ...] = ()
    on_warning: Callable[[str], None] | None = None  # told at once when the log cannot be written


@startup_record  # defined in a module imported before the start (diagnostics/startup.py)
class LaunchResult:
    """How the child ended."""

    pid: int
    exit: ExitStatus
    started_at: float  # epoch seconds
    duration_s: float
    bytes_relayed: Mapping[str, int]
    forwarded_signals: tuple[str, ...]
    # pids that outlived the child and were stopped by trainwatch: of its group, or adopted
    reaped: tuple[int, ...]
    # the output on trainwatch's stderr ends in the middle of a line: what trainwatch prints next
    # must start a new one
    ends_mid_line: bool = False
    notes: tuple[str, ...] = ()  # for the report: output not parsed, a log that stopped


class Child:
    """A running child: started by `start`, relayed by a pump thread, ended by `wait`."""

    def __init__(self, request: LaunchRequest, observers: Sequence[LineObserver] = ()) -> None:
        self.request = request
        self.observers = tuple(observers)
        self.feed = OutputFeed(self.observers)
        self.forwarded: list[int] = []  # signal numbers, named in the result
        self._relayed = {"stdout": 0, "stderr": 0}
        self._log = None
        self._logged = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._terminal_fd: int | None = None
        self._watchdog: Guard | None = None
        self._last_output = time.monotonic()
        self._last_byte: dict[int, int] = {}  # sink fd -> the last byte written to it
        self._last_sink = 0  # the sink written to last
        self._notes: list[str] = []
        self._pending_signals: list[int] = []  # forwarded before the child had started
        self._last_forwarded = (0, -SAME_SENDING_S)  # (signal, time.monotonic()) of the latest

    # ---- start -----------------------------------------------------------------------------------

    def start(self) -> Child:
        """Start the child and the relay. Raises OSError when the program cannot be executed."""
        if self.request.log_path:
            self._log = open(self.request.log_path, "wb", buffering=0)
        if same_destination(1, 2):
            # one place for both (a terminal, `> log 2>&1`): one stream, as the program would have
            # without trainwatch; two, read apart, would lose the order of its lines across them
            streams = {"stdout": open_stream(1, READ_SIZE)}
        else:
            streams = {
                name: open_stream(fd, READ_SIZE) for name, fd in (("stdout", 1), ("stderr", 2))
            }
        self.started_at = time.time()
        self._t0 = time.monotonic()
        # Forwarding is in place before the child exists: a Ctrl-C or a scheduler's SIGTERM that
        # comes while the child starts waits for it instead of being lost.
        self._install_forwarding()
        try:
            self._proc = subprocess.Popen(
                list(self.request.argv),
                env=dict(self.request.env),
                stdout=streams["stdout"][1],
                stderr=streams.get("stderr", streams["stdout"])[1],
                pass_fds=inherited_descriptors(),
                process_group=0,
                restore_signals=True,
            )
        except BaseException:
            self._restore_signals()
            raise
        finally:
            for _, child_end in streams.values():
                os.close(child_end)
        self.pid = self._proc.pid
        self._pass_on_ignored()  # after the exec: the program inherited them ignored
        adopt_orphans()
        for signum in self._pending_signals:
            self.relay(signum)
        self._start_watchdog()
        self._take_terminal()
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL_S))
        self._pump = threading.Thread(
            target=self._relay,
            args=({name: ends[0] for name, ends in streams.items()},),
            name="trainwatch-relay",
            daemon=True,
        )
        self._pump.start()
        return self

    @property
    def last_output_at(self) -> float:
        """`time.monotonic()` when the child last wrote anything (its start, before that)."""
        return self._last_output

    def relay(self, signum: int) -> None:
        """Pass on a signal sent to trainwatch as the program would have met it alone: SIGTERM,
        which `kill PID`, `docker stop` and Kubernetes send to one process, to the program's
        own process only (its DataLoader workers, killed directly, would fail the save its
        handler makes); the others, a terminal's to its whole foreground group, to the group."""
        self._send(os.kill if signum == signal.SIGTERM else os.killpg, signum)

    def signal_group(self, signum: int) -> None:
        """Send a signal to the child's whole process group (it may already be gone)."""
        self._send(os.killpg, signum)

    def _send(self, send: Callable[[int, int], None], signum: int) -> None:
        """`os.kill` or `os.killpg` to the child (its pid leads its group): nothing once it is
        gone."""
        if self._proc is None:
            return
        try:
            send(self._proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    # ---- wait ------------------------------------------------------------------------------------

    def wait(self) -> LaunchResult:
        """Wait for the child, drain its output, stop what it left behind, and report how it
        ended.
        """
        assert self._proc is not None
        returncode = self._wait_for_exit()
        duration = time.monotonic() - self._t0
        self._give_back_terminal()
        self._pump.join(DRAIN_MAX_S + 1)
        reaped = self._reap_group()
        self._pump.join(1.0)
        sys.setswitchinterval(self._switch_interval)
        self._restore_signals()
        self._stop_watchdog()
        if self._log is not None:
            self._log.close()
        self.feed.wait(FEED_WAIT_S)
        skipped = self.feed.note()
        from trainwatch.diagnostics.evidence import ExitStatus, signal_name

        return LaunchResult(
            pid=self.pid,
            exit=ExitStatus.from_returncode(returncode),
            started_at=self.started_at,
            duration_s=duration,
            bytes_relayed=dict(self._relayed),
            forwarded_signals=tuple(signal_name(s) for s in self.forwarded),
            reaped=reaped,
            ends_mid_line=self._ends_mid_line(),
            notes=tuple(self._notes)
            + ((skipped,) if skipped else ())
            + ((_left_running(reaped),) if reaped else ()),
        )

    def _wait_for_exit(self) -> int:
        """Wait for the child's exit in a way that a signal to trainwatch always interrupts.

        A signal sent to trainwatch is delivered to whichever of its threads does not block it;
        Python then runs the handler in the main thread at its next bytecode. A main thread
        blocked in waitpid would not wake (the interrupted system call was in another thread),
        and the signal would not be relayed until the child exited on its own. So the main thread
        waits in select() on a pidfd (readable when the child exits) and on the signal wake-up fd
        (written by Python's C-level handler whichever thread caught the signal).
        """
        assert self._proc is not None
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfd (Linux < 5.3): poll, bounded by WAIT_POLL_S
            return self._poll_for_exit()
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        previous = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        # An adopted orphan (guard.adopt_orphans) that ends is trainwatch's zombie until waited
        # for: a program that starts background jobs through a shell (`cmd &`) all run long would
        # fill the process table. SIGCHLD (only for trainwatch's own children, rare) wakes this
        # loop through the wake-up fd, which a handler of Python's own is needed for.
        previous_sigchld = signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
        keep = (self.pid,) + (() if self._watchdog is None else (self._watchdog.pid,))
        try:
            while (returncode := self._proc.poll()) is None:
                ready, _, _ = select.select([pidfd, wake_read], [], [])
                if wake_read in ready and signal.SIGCHLD in _drained(wake_read):
                    wait_for_ended_adoptees(keep)
            return returncode
        finally:
            signal.signal(signal.SIGCHLD, previous_sigchld)
            signal.set_wakeup_fd(previous)
            for fd in (pidfd, wake_read, wake_write):
                os.close(fd)

    def _poll_for_exit(self) -> int:
        assert self._proc is not None
        delay = 0.001
        while (returncode := self._proc.poll()) is None:
            time.sleep(delay)
            delay = min(delay * 2, WAIT_POLL_S)
        return returncode

    # ---- output relay ----------------------------------------------------------------------------

    def _relay(self, read_fds: dict[str, int]) -> None:
        """Move the child's output to our streams as it comes: write first, then count, log and
        queue it for the parsers (watch/feed.py), which never make the relay wait."""
        selector = selectors.DefaultSelector()
        sinks = {"stdout": 1, "stderr": 2}
        for name, fd in read_fds.items():
            selector.register(fd, selectors.EVENT_READ, name)
        open_fds = dict(read_fds)
        exited_at: float | None = None
        while open_fds:
            if exited_at is None and self._proc is not None and self._proc.returncode is not None:
                exited_at = time.monotonic()
            timeout = 0.1 if exited_at is None else DRAIN_QUIET_S
            events = selector.select(timeout)
            if not events and exited_at is not None:
                # the child is gone and nobody wrote for a while: a descendant holds the stream open
                break
            if exited_at is not None and time.monotonic() - exited_at > DRAIN_MAX_S:
                break
            in_burst = False
            for key, _ in events:
                name = key.data
                try:
                    data = os.read(key.fd, READ_SIZE)
                except OSError:  # EIO: every holder of a pseudo-terminal's other end has closed it
                    data = b""
                if not data:
                    selector.unregister(key.fd)
                    os.close(open_fds.pop(name))
                    continue
                now = time.monotonic()
                in_burst = in_burst or (
                    len(data) < GATHER_BELOW and now - self._last_output < BURST_GAP_S
                )
                self._last_output = now
                if not self._write(sinks[name], data):
                    # Our own reader went away (`trainwatch run ... | head`): close the child's end
                    # too, so the child meets the same EPIPE/SIGPIPE it would have met without
                    # trainwatch in between.
                    selector.unregister(key.fd)
                    os.close(open_fds.pop(name))
                    sinks[name] = -1
                self._count_and_log(name, data)
                self.feed.put(name, data)
            if in_burst:
                time.sleep(GATHER_S)
        for fd in open_fds.values():
            selector.unregister(fd)
            os.close(fd)
        self.feed.close()

    def _write(self, fd: int, data: bytes) -> bool:
        if fd < 0:
            return False
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except BrokenPipeError:
                return False
            except OSError:
                return False
            view = view[written:]
        self._last_byte[fd] = data[-1]
        self._last_sink = fd
        return True

    def _ends_mid_line(self) -> bool:
        """Does the output on our stderr end without a newline? When stdout goes to the same place
        (one terminal, one file), whichever stream was written last decides."""
        sink = self._last_sink if same_destination(1, 2) else 2
        last = self._last_byte.get(sink)
        return last is not None and last not in b"\n"

    def _count_and_log(self, name: str, data: bytes) -> None:
        self._relayed[name] += len(data)
        if self._log is not None:
            try:
                self._log.write(data)
                self._logged += len(data)
            except OSError as exc:  # a full disk for the log must not stop the run
                self._log_failed(exc)

    def _log_failed(self, exc: OSError) -> None:
        """Stop writing the log, say so once now and once in the report; the run goes on."""
        log, self._log = self._log, None
        try:
            log.close()
        except OSError:
            pass
        message = (
            f"cannot write the log {self.request.log_path}: {exc.strerror or exc}; it stops after "
            f"{self._logged:,} bytes (the run goes on)"
        )
        self._notes.append(message)
        if self.request.on_warning is not None:
            self.request.on_warning(message)

    # ---- signals and the terminal ----------------------------------------------------------------

    def _install_forwarding(self) -> None:
        self._previous_handlers = {}

        def forward(signum: int, _frame: object) -> None:
            if not self._new_sending(signum):
                return
            # a signal that came after the child had ended (a Ctrl-C while its last output drains)
            # is relayed to what is left of its group, but stopped nothing: it is not recorded
            if self._proc is None or self._proc.returncode is None:
                self.forwarded.append(signum)
            if self._proc is None:  # the child is being started: it gets the signal once it is
                self._pending_signals.append(signum)
            else:
                self.relay(signum)

        self._ignored_on_entry = []
        for signum in FORWARDED_SIGNALS:
            if signal.getsignal(signum) == signal.SIG_IGN:
                # ignored by whoever started trainwatch (`nohup`, a script's `cmd &`): the program
                # inherits that through exec and ignores it as it would alone (`_pass_on_ignored`
                # relays it once the program runs, to whatever of it set a handler of its own)
                self._ignored_on_entry.append(signum)
                continue
            self._previous_handlers[signum] = signal.signal(signum, forward)
        if any(os.isatty(fd) for fd in (0, 1, 2)):
            self._previous_handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, self._resize)

    def _new_sending(self, signum: int) -> bool:
        """Is this signal a new sending, not the same one met twice (SAME_SENDING_S)?"""
        now = time.monotonic()
        previous, at = self._last_forwarded
        if signum == previous and now - at < SAME_SENDING_S:
            return False
        self._last_forwarded = (signum, now)
        return True

    def _pass_on_ignored(self) -> None:
        """Relay the signals trainwatch was started ignoring, now that the program has been
        executed with them ignored: a process of it that set a handler of its own (torchrun, a
        script's SIGINT handler) meets a signal sent to the job as it would alone, in the job's
        process group (a background job's Ctrl-C stopped a bare run at 130; under trainwatch the
        run went on to its end, 0). Not recorded as relayed: a program that goes on ignoring it
        was not stopped by it."""

        def pass_on(signum: int, _frame: object) -> None:
            if self._new_sending(signum):
                self.relay(signum)

        for signum in self._ignored_on_entry:
            self._previous_handlers[signum] = signal.signal(signum, pass_on)

    def _restore_signals(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)

    def _resize(self, signum: int, _frame: object) -> None:
        self.signal_group(signum)

    def _take_terminal(self) -> None:
        """Make the child's group the terminal's foreground group when trainwatch holds the
        foreground.
        """
        try:
            fd = 0
            if not os.isatty(fd) or os.tcgetpgrp(fd) != os.getpgrp():
                return
            # tcsetpgrp from a process that is about to be in the background raises SIGTTOU; ignore
            # it meanwhile.
            old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            try:
                os.tcsetpgrp(fd, self.pid)
                # A child that touched the terminal before the hand-over was stopped by
                # SIGTTIN/SIGTTOU.
                self.signal_group(signal.SIGCONT)
            finally:
                signal.signal(signal.SIGTTOU, old)
            self._terminal_fd = fd
        except OSError:
            self._terminal_fd = None

    def _give_back_terminal(self) -> None:
        if self._terminal_fd is None:
            return
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(self._terminal_fd, os.getpgrp())
        except OSError:
            pass
        finally:
            signal.signal(signal.SIGTTOU, old)

    # ---- no child left behind --------------------------------------------------------------------

    def _start_watchdog(self) -> None:
        self._watchdog = Guard.start(
            self.pid, self.request.cleanup_paths, FORWARDED_SIGNALS + (signal.SIGTSTP,)
        )

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None

    def _reap_group(self) -> tuple[int, ...]:
        guard = () if self._watchdog is None else (self._watchdog.pid,)
        return reap_group(self.pid, REAP_GRACE_S) + reap_adopted(REAP_GRACE_S, keep=guard)


def _drained(fd: int) -> bytes:
    """Everything waiting in a non-blocking pipe (the signal wake-up fd: one byte a signal)."""
    got = b""
    try:
        while chunk := os.read(fd, 512):
            got += chunk
    except BlockingIOError:
        pass
    return got


def _left_running(pids: tuple[int, ...]) -> str:
    """The report's note on the processes the program left running, which trainwatch stopped."""
    shown = ", ".join(map(str, pids[:5])) + (", ..." if len(pids) > 5 else "")
    what = "process" if len(pids) == 1 else "processes"
    return f"stopped {len(pids)} {what} the program left running when it ended (pid {shown})"
