"""The stall watcher's reading of a silence, in-process on a clock the test moves (the watcher on
real runs, stopped by real signals, is in tests/integration/test_quiet_runs.py)."""

from __future__ import annotations

import os

from trainwatch.diagnostics.watch import stall
from trainwatch.diagnostics.watch.stall import StallWatcher


class _Run:
    """The clock and the output of a pretend run: `print_at` moves the clock to an output's time,
    `poll_at` moves it and lets the watcher look, as its thread would."""

    def __init__(self, monkeypatch):
        self.now = 0.0
        self.last_output: float | None = None
        monkeypatch.setattr(stall.time, "monotonic", lambda: self.now)
        self.watcher = StallWatcher(
            os.getpid(),  # CPU is sampled for real: the test's own, far under the idle share
            30.0,
            activity=lambda: self.last_output,
            on_stall="report",
            position=lambda: None if self.last_output is None else "step 5/100",
        )
        self.watcher._started = 0.0

    def print_at(self, t: float) -> None:
        self.now = self.last_output = t

    def poll_at(self, t: float) -> None:
        self.now = t
        self.watcher._check()


def test_a_silence_ended_by_a_stop_whose_output_came_in_pieces_is_still_the_silence(monkeypatch):
    # a torchrun job stuck in a collective, then SIGINT: the launcher's "Received 2 death signal"
    # line, which a poll sees, then the workers' tracebacks; the 17 s before them are the silence
    run = _Run(monkeypatch)
    for t in (1.0, 1.2, 1.4):  # the loop prints quickly
        run.print_at(t)
        run.poll_at(t + 0.05)
    for t in range(3, 18):
        run.poll_at(float(t))
    run.print_at(18.5)  # the launcher's line
    run.poll_at(18.6)
    run.print_at(19.2)  # the workers' tracebacks
    run.now = 19.5
    facts = run.watcher.close(signalled=True)
    assert facts is not None and not facts.busy
    assert 17.0 <= facts.silent_s <= 17.2 and facts.stopped_at == "step 5/100"


def test_a_stop_s_output_after_a_short_pause_is_no_silence(monkeypatch):
    # the same pieces after 3 s of quiet, in a loop that prints every second: no hang
    run = _Run(monkeypatch)
    for t in range(1, 16):
        run.print_at(float(t))
        run.poll_at(t + 0.05)
    run.print_at(18.0)
    run.poll_at(18.1)
    run.print_at(18.7)
    run.now = 19.0
    assert run.watcher.close(signalled=True) is None
