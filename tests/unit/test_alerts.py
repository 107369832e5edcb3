"""Live alerts without a child: events from the progress tracker and the stall watcher, the
`--on-nan stop` sequence against a recording signaller, and the verdict and exit status of a run
trainwatch stopped."""

from __future__ import annotations

import signal
import threading

import pytest

from trainwatch.cli.exitpolicy import EXIT_FAIL_ON, final_status, policy_note
from trainwatch.diagnostics.evidence import (
    Evidence,
    ExceptionChain,
    ExitStatus,
    LogLine,
    RaisedException,
)
from trainwatch.diagnostics.judge.classify import classify
from trainwatch.diagnostics.read.progress import ProgressTracker
from trainwatch.diagnostics.verdict import Diagnosis
from trainwatch.diagnostics.watch.alerts import LiveAlerts, parse_on_nan


def test_on_nan_values():
    assert parse_on_nan("warn") == ("warn", None)
    assert parse_on_nan("stop") == ("stop", 1)
    assert parse_on_nan("stop:5") == ("stop", 5)
    for bad in ("stop:0", "stop:x", "warn:2", "kill", ""):
        with pytest.raises(ValueError, match="--on-nan must be"):
            parse_on_nan(bad)


class Recorder:
    def __init__(self) -> None:
        self.signals: list[int] = []
        self.changed = threading.Condition()

    def __call__(self, signum: int) -> None:
        with self.changed:
            self.signals.append(signum)
            self.changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self.changed:
            self.changed.wait_for(lambda: len(self.signals) >= count, timeout=10)


def _feed(tracker: ProgressTracker, lines: list[str]) -> None:
    for number, text in enumerate(lines, 1):
        tracker.feed(LogLine(number, text))


def test_the_first_non_finite_loss_is_one_event_and_no_stop_without_the_option():
    events, recorder = [], Recorder()
    alerts = LiveAlerts(events.append, None, recorder)
    tracker = ProgressTracker(alerts.nonfinite)
    _feed(tracker, ["epoch 1/5 step 1/4 loss=0.3", "epoch 1/5 step 2/4 loss=nan"] * 3)
    assert [(e.kind, e.stopping) for e in events] == [("nan", False)]
    assert events[0].summary == "The loss became NaN at epoch 1/5, step 2/4."
    assert alerts.close() is None and recorder.signals == []


def test_stop_after_two_interrupts_at_the_second_and_says_where_it_began():
    events, recorder = [], Recorder()
    alerts = LiveAlerts(events.append, 2, recorder, grace=30, settle=0.01)
    tracker = ProgressTracker(alerts.nonfinite)
    _feed(tracker, ["step 1/9 loss=1.0", "step 2/9 loss=inf", "step 3/9 loss=nan"])
    recorder.wait_for(1)
    assert recorder.signals == [signal.SIGINT]
    assert [e.stopping for e in events] == [False, True]
    assert events[1].summary == "The loss was not finite 2 times since step 2/9 (now at step 3/9)."
    stop = alerts.close()
    assert (stop.after, stop.first_step, stop.first_at, stop.stopped_at) == (
        2,
        2,
        "step 2/9",
        "step 3/9",
    )
    assert stop.signals == ("SIGINT",) and stop.first_line.text == "step 2/9 loss=inf"


def test_a_loss_first_printed_after_the_loop_reached_its_count_is_no_stop():
    # Lightning's bar off a terminal prints its loss once, after `max_epochs` was reached: an
    # interrupt then would only cut the program's saving short. One bar per epoch with no total
    # of epochs is between two epochs at a bar's end: that stop stands.
    from trainwatch.cli.notify.sender import LiveListener

    events, recorder, said = [], Recorder(), []
    alerts = LiveAlerts(events.append, 1, recorder)
    _feed(ProgressTracker(alerts.nonfinite), ["epoch 15/15 step 8/8", "train_loss: nan"])
    assert recorder.signals == [] and alerts.close() is None
    assert [(e.stopping, e.spared) for e in events] == [(False, True)]
    LiveListener(None, "stop", said.append, said.append, 30.0)(events[0])
    assert said == [
        "The loss became NaN at epoch 15/15, step 8/8. The training loop had already finished: "
        "the run is not interrupted (--on-nan stop)."
    ]
    bars, recorder = [], Recorder()
    alerts = LiveAlerts(bars.append, 1, recorder, grace=30, settle=0.01)
    _feed(ProgressTracker(alerts.nonfinite), ["100%|██████████| 8/8 [00:01<00:00]", "loss: nan"])
    recorder.wait_for(1)
    assert recorder.signals == [signal.SIGINT] and bars[0].stopping
    alerts.close()


def test_a_stop_waits_for_the_output_printed_with_the_loss_and_spares_a_loop_it_shows_ended():
    # a fast loop printed its 40 steps and "Training finished." in one burst: the Nth non-finite
    # loss was read at step 12/40, the lines after it show the loop's end (a real JAX run's
    # interrupt landed in its shutdown and made a status of 0 one of 130)
    events, recorder = [], Recorder()
    tracker: ProgressTracker
    alerts = LiveAlerts(
        events.append, 2, recorder, settle=0.05, loop_finished=lambda: tracker.finish().finished
    )
    tracker = ProgressTracker(alerts.nonfinite)
    _feed(tracker, [f"step {s}/40 | loss {'inf' if s >= 10 else 1.0}" for s in range(2, 41, 2)])
    alerts._stopper.join(5)  # the settle's end: the program goes on to its shutdown meanwhile
    assert alerts.close() is None and recorder.signals == []
    assert [(e.stopping, e.spared) for e in events] == [(False, False), (False, True)]
    # the same loop still short of its end is interrupted
    events, recorder = [], Recorder()
    alerts = LiveAlerts(
        events.append, 2, recorder, settle=0.05, loop_finished=lambda: tracker.finish().finished
    )
    tracker = ProgressTracker(alerts.nonfinite)
    _feed(tracker, [f"step {s}/40 | loss {'inf' if s >= 10 else 1.0}" for s in range(2, 21, 2)])
    recorder.wait_for(1)
    assert recorder.signals == [signal.SIGINT] and alerts.close().signals == ("SIGINT",)


def test_a_run_that_ended_before_its_stop_went_out_is_told_nothing_was_stopped():
    # the run saved its NaN weights and exited within the settle time (a real run): the report
    # must not leave `--on-nan stop` thought to have acted
    recorder = Recorder()
    alerts = LiveAlerts(None, 1, recorder, settle=5.0)
    _feed(ProgressTracker(alerts.nonfinite), ["step 3/24 loss nan"])
    assert alerts.close() is None and recorder.signals == []
    (note,) = alerts.stop_not_sent()
    assert note.startswith("--on-nan stop: the run ended ") and "nothing was stopped" in note
    # a stop that went out says nothing of the kind
    sent = LiveAlerts(None, 1, recorder, settle=0.01, grace=30)
    _feed(ProgressTracker(sent.nonfinite), ["step 3/24 loss nan"])
    recorder.wait_for(1)
    sent.close()
    assert sent.stop_not_sent() == ()


def test_a_run_that_does_not_end_is_terminated_after_the_grace():
    recorder = Recorder()
    alerts = LiveAlerts(None, 1, recorder, grace=0.05, settle=0.01)
    alerts.nonfinite(1, 7, float("nan"), LogLine(3, "loss: nan"), None)
    recorder.wait_for(2)
    stop = alerts.close()
    assert recorder.signals[:2] == [signal.SIGINT, signal.SIGTERM]
    assert stop.signals[:2] == ("SIGINT", "SIGTERM")
    assert stop.to_dict()["grace_s"] == 0.05


def _stopped_evidence(exit_code: int | None, signal_name: str | None = None) -> Evidence:
    recorder = Recorder()
    alerts = LiveAlerts(None, 1, recorder, settle=0.01)
    tracker = ProgressTracker(alerts.nonfinite)
    _feed(tracker, ["epoch 1/9 loss=0.5", "epoch 2/9 loss=nan"])
    recorder.wait_for(1)
    interrupt = ExceptionChain(
        (RaisedException("KeyboardInterrupt", "", ()),), origin="probe", pid=42
    )
    status = (
        ExitStatus.from_returncode(-signal.SIGINT)
        if signal_name
        else ExitStatus.from_returncode(exit_code)
    )
    from trainwatch.diagnostics.watch.probe.records import ProbeFacts

    return Evidence(
        source="run",
        exit=status,
        progress=tracker.finish(),
        probe=ProbeFacts(chains=(interrupt,)),
        nan_stop=alerts.close(),
    )


def test_a_run_trainwatch_stopped_is_numerical_and_its_interrupt_a_consequence():
    evidence = _stopped_evidence(None, "SIGINT")
    verdict = classify(evidence)
    assert (verdict.category, verdict.subtype) == ("numerical", "numerical/nan-loss")
    assert verdict.confidence == 0.95
    assert verdict.summary.startswith(
        "The loss was printed as NaN (first seen at epoch 2/9); trainwatch stopped the run"
    )
    assert [c.kind for c in verdict.evidence][:2] == ["loss", "signal"]
    cascade = [c.text for c in verdict.cascade]
    assert "KeyboardInterrupt: raised by trainwatch's interrupt" in cascade
    assert "ended by SIGINT, trainwatch's" in cascade
    assert not any(a.category == "interrupted" for a in verdict.alternatives)


def test_a_stopped_run_whose_program_exited_0_makes_trainwatch_exit_3():
    evidence = _stopped_evidence(0)
    diagnosis = Diagnosis("0", ("python3",), None, 1.0, evidence.exit, classify(evidence), evidence)
    assert final_status(diagnosis) == EXIT_FAIL_ON
    assert policy_note(diagnosis, EXIT_FAIL_ON).startswith("trainwatch exits 3: it stopped the run")
    interrupted = _stopped_evidence(None, "SIGINT")
    diagnosis = Diagnosis(
        "0", ("python3",), None, 1.0, interrupted.exit, classify(interrupted), interrupted
    )
    assert final_status(diagnosis) == 130 and policy_note(diagnosis, 130) is None
