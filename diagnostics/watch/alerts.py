"""What a live run tells while it runs: events (a stall, a loss that went non-finite) handed to
whoever listens (notifications, `--on-nan warn`), and the stop of a run whose loss went NaN
(`--on-nan stop[:N]`).

Imported only when the run was asked for either: a plain `trainwatch run` starts without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainwatch.diagnostics.evidence import LogLine
from trainwatch.diagnostics.read.progress import nonfinite_name


@dataclass(frozen=True)
class LiveEvent:
    """Something worth telling before the run ends."""

    kind: str  # "stall" or "nan"
    summary: str  # one sentence: "The loss became NaN at epoch 3/20, step 5/8."
    elapsed_s: float  # since the run started
    position: str | None = None  # "epoch 3/20, step 5/8"
    line: str | None = None  # the output line that showed it
    stopping: bool = False  # trainwatch stops the run because of it

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "elapsed_s": round(self.elapsed_s, 1),
            "position": self.position,
            "line": self.line,
            "stopping": self.stopping,
        }


EventListener = Callable[[LiveEvent], None]


class LiveAlerts:
    """Turns what the watchers see into `LiveEvent`s for a listener: the first non-finite loss, and
    each stall the stall watcher declares. Called from the relay and stall threads; the listener
    must return at once (notifications post from threads of their own)."""

    def __init__(self, listener: EventListener | None) -> None:
        self.listener = listener
        self.started = time.monotonic()

    def nonfinite(self, count: int, step: int, value: float, line: LogLine, at: str | None) -> None:
        """The progress tracker's `NonFiniteObserver`: one event, for the first."""
        if count == 1:
            self.emit(
                LiveEvent(
                    "nan",
                    f"The loss became {nonfinite_name(value)} at {at or f'step {step}'}.",
                    time.monotonic() - self.started,
                    at,
                    line.text.strip()[:300],
                )
            )

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
