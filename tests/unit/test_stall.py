"""The stall watcher's reading of a silence, in-process on a clock the test moves (the watcher on
real runs, stopped by real signals, is in tests/integration/test_quiet_runs.py)."""

from __future__ import annotations

import os
import time

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
            position=lambda: None if self.last_output is None else self.position,
        )
        self.position = "step 5/100"
        self.watcher._started = 0.0

    def print_at(self, t: float, position: str | None = None) -> None:
        self.now = self.last_output = t
        self.position = position or self.position

    def poll_at(self, t: float) -> None:
        self.now = t
        self.watcher._check()

    def five_quick_steps_then_quiet_until(self, t: float) -> None:
        """Steps 1-5 printed a tenth of a second apart, then polls every second and no output."""
        for step in range(1, 6):
            self.print_at(step * 0.1, position=f"step {step}/100")
            self.poll_at(step * 0.1 + 0.05)
        for second in range(1, int(t)):
            self.poll_at(float(second))

    def polls_until(self, first: int, t: float) -> None:
        for second in range(first, int(t)):
            self.poll_at(float(second))
        self.now = t


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
    # when it began, on the report's clock: the last output before it, 18.1 s before the stop
    assert facts.silent_since is not None
    assert abs(facts.silent_since - (time.time() - 18.1)) < 1.0


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


def test_a_first_ctrl_c_answered_by_output_that_made_no_progress_ends_no_silence(monkeypatch):
    # stuck at step 5 for 13 s; the first Ctrl-C's handler prints "saving..." and joins the stuck
    # thread; a second Ctrl-C ends the run 10 s later. The silence before that answer stands.
    run = _Run(monkeypatch)
    run.five_quick_steps_then_quiet_until(14)
    run.print_at(13.5)  # "interrupted: waiting for the prefetch thread, then saving"
    run.polls_until(14, 23.5)
    facts = run.watcher.close(signalled=True)
    assert facts is not None and facts.action == "cut" and facts.stopped_at == "step 5/100"
    assert 12.5 <= facts.silent_s <= 13.5


def test_a_silence_ended_by_progress_is_over_whatever_stops_the_run_later(monkeypatch):
    # the same 13 s of quiet ended by the next step: a slow step, and no hang when a signal
    # stops the run 10 s on
    run = _Run(monkeypatch)
    run.five_quick_steps_then_quiet_until(14)
    run.print_at(13.5, position="step 6/100")
    run.polls_until(14, 23.5)
    assert run.watcher.close(signalled=True) is None


def test_a_reported_silence_answered_without_progress_keeps_its_stacks(monkeypatch):
    # silent 35 s, over the 30 s window: reported; the first Ctrl-C's answer comes at 40 s, the
    # second Ctrl-C ends the run at 50 s, long after that answer: the stall reported stands
    run = _Run(monkeypatch)
    run.five_quick_steps_then_quiet_until(40)
    reported = run.watcher.facts
    assert reported is not None and reported.action == "reported"
    run.print_at(40.2)
    run.polls_until(41, 50)
    assert run.watcher.facts is None  # withdrawn while the run went on
    run.now = 50.5
    assert run.watcher.close(signalled=True) is reported
    # not so when a signal did not end the run: it went on and ended by itself
    quiet = _Run(monkeypatch)
    quiet.five_quick_steps_then_quiet_until(40)
    quiet.print_at(40.2)
    quiet.polls_until(41, 50.5)
    assert quiet.watcher.close(signalled=False) is None
