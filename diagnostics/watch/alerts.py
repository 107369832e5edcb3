"""What a live run tells while it runs, and what it does about a loss gone NaN: events (a stall, a
non-finite loss) for whoever listens (notifications, `--on-nan warn`), and the stop of the run
after N non-finite losses (`--on-nan stop[:N]`).

The stop is gentle first: SIGINT to the child's process group, which Python turns into a
KeyboardInterrupt that frameworks catch to save a checkpoint (Lightning, Hugging Face's Trainer,
most hand-written loops with a `try`); if the run has not ended `grace` seconds later, SIGTERM;
if it still has not, SIGKILL after STOP_GRACE_S more. Imported only when the run asked for live
events or `--on-nan`: a plain `trainwatch run` starts without it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from trainwatch.diagnostics.evidence import CITED_CHARS, LogLine, signal_name
from trainwatch.diagnostics.read.progress import nonfinite_name

NAN_GRACE_S = 30.0  # between the interrupt and the terminate (--nan-grace)
STOP_GRACE_S = 3.0  # between the terminate and the kill
# between the Nth non-finite loss read and the interrupt: a fast loop prints all its steps at once,
# and the lines after that loss may show the loop already at its end (a real JAX run's 40 steps and
# "Training finished." came in one burst; its SIGINT landed in the interpreter's shutdown, 130)
STOP_SETTLE_S = 0.5


@dataclass(frozen=True)
class LiveEvent:
    """Something worth telling before the run ends."""

    kind: str  # "stall" or "nan"
    summary: str  # one sentence: "The loss became NaN at epoch 3/20, step 5/8."
    elapsed_s: float  # since the run started
    position: str | None = None  # "epoch 3/20, step 5/8"
    line: str | None = None  # the output line that showed it
    stopping: bool = False  # trainwatch stops the run because of it
    # the stop was due, but the training loop had already finished (a loss printed once, after
    # it): interrupting would only cut the program's saving and teardown short
    spared: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "elapsed_s": round(self.elapsed_s, 1),
            "position": self.position,
            "line": self.line,
            "stopping": self.stopping,
        }


@dataclass(frozen=True)
class NanStop:
    """trainwatch stopped the run because its loss was not finite (`--on-nan stop`)."""

    after: int  # the number of non-finite losses it waited for
    first_step: int  # the global step of the first non-finite loss
    first_at: str | None  # the position text then: "epoch 3/20, step 5/8"
    first_line: LogLine  # the line that showed it
    stopped_at: str | None  # the position text when the interrupt went out
    elapsed_s: float  # when the interrupt went out, since the start
    grace_s: float
    signals: tuple[str, ...]  # "SIGINT", then "SIGTERM" and "SIGKILL" if it came to them

    def to_dict(self) -> dict[str, Any]:
        """The JSON report's `nan_stop` section (docs/report.md)."""
        return {
            "after": self.after,
            "first_step": self.first_step,
            "first_at": self.first_at,
            "first_line": self.first_line.text[:CITED_CHARS],
            "first_source": self.first_line.where,
            "stopped_at": self.stopped_at,
            "elapsed_s": round(self.elapsed_s, 1),
            "grace_s": self.grace_s,
            "signals": list(self.signals),
        }


def parse_on_nan(text: str) -> tuple[str, int | None]:
    """`--on-nan`: "warn" -> ("warn", None); "stop" -> ("stop", 1); "stop:5" -> ("stop", 5);
    ValueError with a sentence otherwise."""
    action, _, count = text.partition(":")
    if action == "warn" and not count:
        return "warn", None
    if action == "stop" and (not count or (count.isdigit() and int(count) >= 1)):
        return "stop", int(count or 1)
    raise ValueError(f"--on-nan must be warn, stop or stop:N with N at least 1, not {text!r}")


EventListener = Callable[[LiveEvent], None]


class LiveAlerts:
    """Turns what the watchers see into `LiveEvent`s for a listener, and stops the run when its
    loss has been non-finite `stop_after` times. Called from the relay and stall threads; the
    listener must return at once (notifications post from threads of their own)."""

    def __init__(
        self,
        listener: EventListener | None,
        stop_after: int | None = None,
        signal_run: Callable[[int], None] | None = None,
        grace: float = NAN_GRACE_S,
        loop_finished: Callable[[], bool] = lambda: False,
        settle: float = STOP_SETTLE_S,
    ) -> None:
        self.listener = listener
        self.stop_after = stop_after
        self._signal_run = signal_run
        self.grace = grace
        self._loop_finished = loop_finished  # has the output read so far shown the loop's end?
        self._settle = settle
        self.started = time.monotonic()
        self._first: tuple[int, str | None, LogLine] | None = None
        self._stop: dict[str, Any] | None = None
        self._ended = threading.Event()
        self._stopper: threading.Thread | None = None
        self._closed_at: float | None = None

    def nonfinite(
        self,
        count: int,
        step: int,
        value: float,
        line: LogLine,
        at: str | None,
        finished: bool = False,
    ) -> None:
        """The progress tracker's `NonFiniteObserver`: an event for the first, a stop at the Nth
        (none once the loop has finished)."""
        if self._first is None:
            self._first = (step, at, line)
        due = self.stop_after is not None and count == self.stop_after
        if count != 1 and not due:
            return
        first_step, first_at, _ = self._first
        summary = f"The loss became {nonfinite_name(value)} at {first_at or f'step {first_step}'}."
        if due and count > 1:
            summary = (
                f"The loss was not finite {count} times "
                f"since {first_at or f'step {first_step}'}"
                f" (now at {at or f'step {step}'})."
            )
        event = LiveEvent(
            "nan",
            summary,
            time.monotonic() - self.started,
            at,
            line.text.strip()[:CITED_CHARS],
            spared=due and finished,
        )
        if due and not finished:
            self._begin_stop(count, event)  # the event goes out with the interrupt, or spared
        else:
            self.emit(event)

    def stall(self, facts: Any) -> None:
        """The stall watcher's `on_declared`: the run went still (diagnostics/watch/stall.py)."""
        where = f" at {facts.stopped_at}" if facts.stopped_at else ""
        wait = facts.main_wait()
        waiting = (
            f"; {wait.description} ({wait.where})"
            if wait is not None and wait.kind not in ("unknown", "busy")
            else ""
        )
        what = "still using CPU" if facts.busy else "almost no CPU"
        action = "trainwatch is stopping it" if facts.action == "stopped" else "it is left running"
        self.emit(
            LiveEvent(
                "stall",
                f"No output and no progress for {facts.silent_s:.0f} s{where}, {what}"
                f"{waiting}; {action}.",
                time.monotonic() - self.started,
                facts.stopped_at,
                stopping=facts.action == "stopped",
            )
        )

    def emit(self, event: LiveEvent) -> None:
        if self.listener is None:
            return
        try:
            self.listener(event)
        except Exception:  # a listener's bug must never reach the run
            pass

    @property
    def stopping(self) -> bool:
        """Has trainwatch begun to stop the run for its loss?"""
        return self._stop is not None

    def _begin_stop(self, count: int, event: LiveEvent) -> None:
        self._stop = {
            "after": count,
            "stopped_at": event.position,
            "elapsed_s": time.monotonic() - self.started,
            "signals": [],
        }
        self._stopper = threading.Thread(
            target=self._stop_run, args=(event,), name="trainwatch-nan-stop"
        )
        self._stopper.daemon = True
        self._stopper.start()

    def _stop_run(self, event: LiveEvent) -> None:
        """Interrupt the run once the output printed with that loss has been read, unless it
        showed the loop's end (then the event says the run was spared); then escalate."""
        if self._ended.wait(self._settle):
            return
        if self._loop_finished():
            self._stop = None
            self.emit(replace(event, spared=True))
            return
        self.emit(replace(event, stopping=True))
        self._send(signal.SIGINT)
        for signum, wait in ((signal.SIGTERM, self.grace), (signal.SIGKILL, STOP_GRACE_S)):
            if self._ended.wait(wait):
                return
            self._send(signum)

    def _send(self, signum: int) -> None:
        assert self._stop is not None
        self._stop["signals"].append(signal_name(signum))
        if self._signal_run is not None:
            self._signal_run(signum)

    def stop_not_sent(self) -> tuple[str, ...]:
        """After `close`: a note when a stop was due but the run ended before its interrupt went
        out (the output's settle time had not passed: a real run saved its NaN weights and exited
        within it), so that `--on-nan stop` is not thought to have acted."""
        if self._stop is None or self._stop["signals"] or self._closed_at is None:
            return ()
        after = self._closed_at - self.started - self._stop["elapsed_s"]
        return (
            f"--on-nan stop: the run ended {after:.1f} s after its loss was non-finite, before "
            f"trainwatch's interrupt went out (it waits {self._settle:g} s for the output printed "
            "with that loss); nothing was stopped",
        )

    def close(self) -> NanStop | None:
        """The run has ended: stop escalating, and say whether (and how) it was stopped."""
        self._closed_at = time.monotonic()
        self._ended.set()
        if self._stopper is not None:
            self._stopper.join(1.0)
        if self._stop is None or self._first is None or not self._stop["signals"]:
            return None  # no stop, or the run ended before the interrupt went out
        step, at, line = self._first
        return NanStop(
            after=self._stop["after"],
            first_step=step,
            first_at=at,
            first_line=line,
            stopped_at=self._stop["stopped_at"],
            elapsed_s=self._stop["elapsed_s"],
            grace_s=self.grace,
            signals=tuple(self._stop["signals"]),
        )
