"""Real runs that stop quietly: a hang, early exits, NaN losses, and a clean run that must stay
`completed`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from trainwatch.diagnostics.evidence import Evidence, ExitStatus, LogLine
from trainwatch.diagnostics.judge.classify import classify
from trainwatch.diagnostics.read.logparse import LogParser
from trainwatch.diagnostics.read.progress import ProgressTracker
from trainwatch.diagnostics.watch.probe.parent import ProbeSession
from trainwatch.diagnostics.watch.stall import StallWatcher

from conftest import SCRIPTS


def run_watched(
    name: str,
    *args: str,
    stall_timeout: float | None = None,
    on_stall: str = "auto",
    limit: float = 90,
):
    """Run a script as trainwatch will: own process group, the probe loaded, every output line fed
    to the log parser and the progress tracker, a stall watcher when asked. Returns (verdict,
    evidence, seconds from start to exit).
    """
    probe = ProbeSession.create()
    env = {**os.environ, **probe.env}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPTS / name), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        process_group=0,
    )
    tracker = ProgressTracker()
    parser = LogParser(on_line=tracker.feed)
    watcher = None
    if stall_timeout is not None:
        watcher = StallWatcher(
            proc.pid,
            stall_timeout,
            activity=lambda: tracker.last_output_at,
            on_stall=on_stall,
            stacks=probe.request_stacks,
            position=lambda: tracker.finish().stopped_at,
        ).start()

    def pump() -> None:
        assert proc.stdout is not None
        for number, raw in enumerate(proc.stdout, 1):
            parser.feed(LogLine(number, raw.decode("utf-8", "replace").rstrip("\n"), "stdout"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        returncode = proc.wait(timeout=limit)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    elapsed = time.monotonic() - started
    reader.join(5)
    stall = watcher.close() if watcher is not None else None
    evidence = Evidence(
        source="run",
        exit=ExitStatus.from_returncode(returncode),
        log=parser.finish(),
        progress=tracker.finish(),
        stall=stall,
        probe=probe.collect(),
    )
    probe.cleanup()
    return classify(evidence), evidence, elapsed


def test_tqdm_loop_that_breaks_at_37_is_an_early_exit():
    verdict, evidence, _ = run_watched("quiet_tqdm_break.py")
    assert evidence.exit.code == 0
    assert evidence.progress.stopped_at == "batch 37/100"
    assert evidence.progress.finished is False
    assert verdict.category == "early-exit"
    assert "37/100" in verdict.summary


def test_nan_in_data_then_break_is_data_with_the_early_exit_as_evidence():
    verdict, evidence, _ = run_watched("quiet_nan_data.py")
    assert evidence.exit.code == 0
    assert evidence.progress.finished is False
    assert (verdict.category, verdict.subtype) == ("data", "data/nan-input")
    texts = [c.text for c in verdict.evidence]
    assert any("NaN encountered in data!" in t for t in texts)
    assert any(c.kind == "progress" and "unfinished" in c.text for c in verdict.evidence)


def test_loss_that_goes_nan_with_exit_0_is_numerical_with_the_first_step():
    verdict, evidence, _ = run_watched("quiet_nan_loss.py")
    assert evidence.exit.code == 0
    step, value, line = evidence.progress.first_nonfinite_loss
    assert value != value or value in (float("inf"), float("-inf"))
    assert "loss=" in line.text and step > 0
    assert evidence.progress.diverged  # it grew by orders of magnitude before overflowing
    assert verdict.category == "numerical"
    assert evidence.progress.first_nonfinite_at in verdict.summary
    assert evidence.progress.to_dict()["first_nonfinite_loss"]["step"] == step


def test_clean_run_with_resetting_bar_and_high_loss_stays_completed():
    verdict, evidence, _ = run_watched("quiet_complete.py")
    progress = evidence.progress
    assert evidence.exit.code == 0
    assert progress.finished is True
    assert progress.stopped_at == "epoch 3/3, batch 12/12"  # the validation bar does not count
    assert progress.first_nonfinite_loss is None and not progress.diverged
    assert min(v for _, v in progress.losses) > 1e5  # legitimately high
    assert verdict.category == "completed"


def test_dataloader_worker_blocked_on_a_lock_is_a_hang_stopped_soon_after_the_timeout():
    verdict, evidence, elapsed = run_watched("quiet_dataloader_lock.py", stall_timeout=3, limit=60)
    stall = evidence.stall
    assert stall is not None and stall.action == "stopped" and not stall.busy
    assert evidence.exit.signal in ("SIGTERM", "SIGKILL")
    # import torch ~3 s + 3 s of silence + up to 1 s of polling, 1 s of stacks, then SIGTERM: well
    # under 20 s.
    assert elapsed < 20
    kinds = {w.kind for w in stall.waits}
    assert "dataloader" in kinds  # the main process, waiting for a batch
    assert "lock" in kinds  # a worker, in `with lock:`
    assert verdict.category == "hang" and verdict.subtype == "hang/dataloader"
    assert (
        stall.to_dict()["waits"][0]["pid"] == evidence.probe.processes[0].pid or stall.waits[0].kind
    )


def test_busy_loop_without_output_is_a_possible_hang_and_is_not_killed():
    verdict, evidence, elapsed = run_watched("quiet_busy.py", "5", stall_timeout=2)
    assert evidence.exit.code == 0  # it ran to its end: not stopped
    assert elapsed >= 5
    # the silence ended when it printed again: the busy episode was withdrawn, the run judged on its
    # progress
    assert evidence.stall is None
    assert evidence.progress.stopped_at == "step 2/10"


def test_busy_loop_is_reported_while_it_lasts_and_killed_when_asked():
    verdict, evidence, elapsed = run_watched(
        "quiet_busy.py", "60", stall_timeout=2, on_stall="kill"
    )
    assert evidence.stall is not None and evidence.stall.busy and evidence.stall.action == "stopped"
    assert elapsed < 20
    assert (verdict.category, verdict.subtype) == ("hang", "hang/busy-loop")
