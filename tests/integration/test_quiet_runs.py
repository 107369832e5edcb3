"""Real runs that stop quietly: a hang, early exits, NaN losses, and a clean run that must stay
`completed`. Some are watched here as trainwatch watches them (the probe, the parsers and the stall
watcher, in this process); the rest are read from the shared `trainwatch run`s
(conftest.SHARED_RUNS).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from trainwatch.diagnostics.evidence import Evidence, ExitStatus, LogLine
from trainwatch.diagnostics.judge.classify import classify
from trainwatch.diagnostics.read.logparse import LogParser
from trainwatch.diagnostics.read.progress import ProgressTracker
from trainwatch.diagnostics.watch.probe.parent import ProbeSession
from trainwatch.diagnostics.watch.stall import StallWatcher

from conftest import SCRIPTS, TRAINWATCH, needs, read_report, trainwatch, trainwatch_env


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
    stall = watcher.close(signalled=returncode < 0) if watcher is not None else None
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


def explained_category(tmp_path, output: bytes) -> str:
    """The category `trainwatch explain` gives this output saved to a file (no exit status)."""
    saved = tmp_path / "out.log"
    saved.write_bytes(output)
    explained = trainwatch("explain", "--json", "-", "-q", str(saved))
    return json.loads(explained.stdout)["verdict"]["category"]


def run_script(tmp_path, name, *args):
    """Run one of tests/scripts under trainwatch with a JSON report: the result and the report,
    whose exit status is the command's."""
    path = tmp_path / "r.json"
    ran = trainwatch("run", "--json", str(path), str(SCRIPTS / name), *args)
    report = read_report(path)
    assert ran.returncode == report["exit"]["code"]
    return ran, report


def test_tqdm_loop_that_breaks_at_37_is_an_early_exit(shared_run):
    report = shared_run("early-exit").report
    progress = report["progress"]
    assert report["exit"]["code"] == 0
    assert progress["stopped_at"] == "batch 37/100"
    assert progress["finished"] is False
    assert report["verdict"]["category"] == "early-exit"
    assert "37/100" in report["verdict"]["summary"]


def test_a_keras_run_that_leaves_as_its_last_epoch_begins_is_an_early_exit(tmp_path):
    # Keras prints `Epoch 3/3` as the last epoch starts; the process leaves there with status 0
    needs("keras")
    left, report = run_script(tmp_path, "quiet_keras_last_epoch.py")
    assert left.returncode == 0
    assert left.stdout.rstrip().endswith(b"Epoch 3/3")
    assert report["progress"]["finished"] is False
    assert report["verdict"]["category"] == "early-exit"


@pytest.mark.parametrize("verbose", [0, 1])
def test_a_keras_run_its_early_stopping_ended_is_completed_not_an_early_exit(tmp_path, verbose):
    # EarlyStopping says nothing by default; the probe sees `fit` return with stop_training set.
    # With verbose=1 its own words are cited and kept, the probe's reading beside them.
    needs("keras")
    path = tmp_path / "r.json"
    script = str(SCRIPTS / "quiet_keras_early_stopping.py")
    ran = trainwatch("run", "--json", str(path), script, str(verbose))
    report = read_report(path)
    assert ran.returncode == report["exit"]["code"] == 0
    assert b"Epoch 3/50" in ran.stdout and b"Epoch 4/50" not in ran.stdout
    assert report["progress"]["finished"] is False
    verdict = report["verdict"]
    assert (verdict["category"], verdict["subtype"]) == ("completed", "completed/early-stopping")
    probe_said = "Keras's `fit` returned after epoch 3 of 50, stopped by EarlyStopping"
    assert any(c["text"] == probe_said for c in report["evidence"])
    said_itself = any("Epoch 3: early stopping" in c["text"] for c in report["evidence"])
    assert said_itself is bool(verbose)
    assert any("verbose=1" in a for a in report["advice"]) is not bool(verbose)
    assert report["probe"]["stopped_fits"] == [
        {"framework": "keras", "by": "EarlyStopping", "epoch": 3, "epochs": 50, "reason": None}
    ]


def test_a_run_that_handled_a_logged_traceback_and_finished_is_completed(tmp_path):
    ran, report = run_script(tmp_path, "handled_traceback_then_finished.py")
    assert ran.returncode == 0
    assert b"ModuleNotFoundError: No module named 'trainwatch_no_such_fused_kernel'" in (
        ran.stdout + ran.stderr
    )
    verdict = report["verdict"]
    assert verdict["category"] == "completed"
    assert "printed a traceback on the way" in verdict["summary"]
    assert any(c["text"].startswith("handled: ModuleNotFoundError") for c in report["evidence"])
    assert verdict["alternatives"][0]["category"] == "library"
    # its saved output: the traceback stands before the loop's last epoch of three
    bare = subprocess.run(
        [sys.executable, str(SCRIPTS / "handled_traceback_then_finished.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=True,
    )
    assert explained_category(tmp_path, bare.stdout) == "completed"
    # cut after the traceback, before the loop's end, the same log is the missing package
    assert explained_category(tmp_path, bare.stdout.split(b"Epoch 2/3")[0]) == "library"


def test_a_run_that_printed_a_failure_it_went_on_from_and_finished_is_completed(tmp_path):
    # an allocation refused, its message printed (no traceback), the loop run to its end
    ran, report = run_script(tmp_path, "handled_traceback_then_finished.py", "line")
    assert ran.returncode == 0 and b"Unable to allocate" in ran.stdout + ran.stderr
    verdict = report["verdict"]
    assert verdict["category"] == "completed", verdict
    assert "printed a failure's words on the way" in verdict["summary"]
    assert any(c["text"].startswith("handled: ") for c in report["evidence"])
    assert verdict["alternatives"][0]["category"] == "oom"


def test_a_finished_run_with_an_undefined_metric_is_completed_and_says_so(tmp_path):
    # every loss finite, the loop at its end, exit 0: the NaN F1 is the metric's own division
    ran, report = run_script(tmp_path, "finished_with_nan_metric.py")
    assert ran.returncode == 0
    verdict = report["verdict"]
    assert (verdict["category"], verdict["subtype"]) == ("completed", "completed/finished")
    assert "the metric val_f1 was printed as NaN" in verdict["summary"]
    assert verdict["alternatives"][0]["subtype"] == "numerical/nan-metric"
    # the same output read back from a file has no exit status: the metric's reading stands
    assert explained_category(tmp_path, ran.stdout) == "numerical"


def test_nan_in_data_then_break_is_data_with_the_early_exit_as_evidence(tmp_path):
    result, report = run_script(tmp_path, "quiet_nan_data.py")
    assert result.returncode == 0
    assert report["progress"]["finished"] is False
    verdict = report["verdict"]
    assert (verdict["category"], verdict["subtype"]) == ("data", "data/nan-input")
    assert any("NaN encountered in data!" in c["text"] for c in report["evidence"])
    assert any(c["kind"] == "progress" and "unfinished" in c["text"] for c in report["evidence"])


def test_a_loss_gone_nan_on_nan_inputs_is_data_named_by_the_batch_rows(tmp_path):
    result, report = run_script(tmp_path, "nan_inputs_loop.py")
    assert result.returncode == 0
    verdict = report["verdict"]
    assert (verdict["category"], verdict["subtype"]) == ("data", "data/nan-input")
    # the batch of the first NaN loss (the 6th, row 5), found on the stack of its backward()
    assert "NaN/Inf in `x` (8×4, in <module>): row 5" in verdict["summary"]
    assert {r["name"] for r in report["probe"]["nonfinite_inputs"]} == {"features", "x", "y"}
    assert verdict["alternatives"][0]["category"] == "numerical"


def test_nan_class_weights_held_by_the_loss_are_no_bad_input(tmp_path):
    # the NaN tensor is a local of the loop, but the loss module holds it as its `weight` buffer
    result, report = run_script(tmp_path, "class_weight_nan_loop.py")
    assert result.returncode == 0
    assert not report["probe"].get("nonfinite_inputs")
    assert report["verdict"]["subtype"] == "numerical/nan-loss", report["verdict"]


def test_a_nan_loss_only_a_tracker_took_is_read_at_backward(tmp_path):
    # the output prints no loss at all and says it finished: the probe read the NaN loss at each
    # backward(), the last one included
    result, report = run_script(tmp_path, "class_weight_nan_loop.py", "--tracked")
    assert result.returncode == 0
    gradients = report["probe"]["gradients"]
    assert gradients["nonfinite_losses"] == 5 and gradients["ended_nonfinite"], gradients
    verdict = report["verdict"]
    assert verdict["subtype"] == "numerical/nan-loss", verdict
    assert "printed no loss value" in verdict["summary"]
    # a process that never reaches its exit handlers told the probe on the way
    result, report = run_script(tmp_path, "class_weight_nan_loop.py", "--tracked", "--os-exit")
    assert result.returncode == 0
    assert report["probe"]["gradients"]["ended_nonfinite"], report["probe"]["gradients"]
    assert report["verdict"]["subtype"] == "numerical/nan-loss", report["verdict"]


def test_a_loss_wrapped_back_from_its_value_trains_nothing(tmp_path):
    # every backward() ran on a leaf made from `loss.item()`: no weight got a gradient (real runs
    # read completed or early stopping, 50-80%)
    result, report = run_script(tmp_path, "rewrapped_loss_loop.py")
    assert result.returncode == 0
    gradients = report["probe"]["gradients"]
    assert gradients["backwards"] == 5 and gradients["leaf_losses"] == 5, gradients
    verdict = report["verdict"]
    assert verdict["subtype"] == "code/no-learning", verdict
    assert "leaf" in verdict["summary"], verdict["summary"]
    # the model's own loss: the same loop trained, and no leaf was counted
    result, report = run_script(tmp_path, "rewrapped_loss_loop.py", "--attached")
    assert result.returncode == 0
    assert report["probe"]["gradients"]["leaf_losses"] == 0, report["probe"]["gradients"]
    assert report["verdict"]["category"] == "completed", report["verdict"]


def test_a_loop_that_never_computed_a_gradient_trained_nothing(tmp_path):
    # the loop ran four epochs, printing a loss that nothing was trained from
    result, report = run_script(tmp_path, "detached_loss_loop.py")
    assert result.returncode == 0
    verdict = report["verdict"]
    assert verdict["subtype"] == "code/no-learning", verdict
    assert "at epoch 4/50" in verdict["summary"]


def test_a_target_computed_from_a_diverging_network_is_no_bad_input(tmp_path):
    # a real run's DQN: the probe finds the detached target non-finite at the first Inf loss, but
    # the loss had grown by orders of magnitude before: the network blew up, not the data
    result, report = run_script(tmp_path, "diverged_target_loop.py")
    assert result.returncode == 0
    assert report["probe"]["nonfinite_inputs"]  # what the probe saw is still reported
    assert report["verdict"]["subtype"] == "numerical/divergence", report["verdict"]


def test_loss_that_goes_nan_with_exit_0_is_numerical_with_the_first_step(shared_run):
    report = shared_run("nan-loss").report
    progress = report["progress"]
    assert report["exit"]["code"] == 0
    first = progress["first_nonfinite_loss"]
    assert first["value"] in ("nan", "inf", "-inf")
    assert "loss=" in first["line"] and first["step"] > 0
    assert progress["diverged"]  # it grew by orders of magnitude before overflowing
    assert report["verdict"]["category"] == "numerical"
    assert report["probe"]["nonfinite_inputs"] == []  # its inputs were finite
    assert first["at"] in report["verdict"]["summary"]


def test_clean_run_with_resetting_bar_and_high_loss_stays_completed(shared_run):
    report = shared_run("completed").report
    progress = report["progress"]
    assert report["exit"]["code"] == 0
    assert progress["finished"] is True
    assert progress["stopped_at"] == "epoch 3/3, batch 12/12"  # the validation bar does not count
    assert progress["first_nonfinite_loss"] is None and not progress["diverged"]
    assert min(value for _, value in progress["losses"]) > 1e5  # legitimately high
    assert report["verdict"]["category"] == "completed"


def test_dataloader_worker_blocked_on_a_lock_is_a_hang_stopped_soon_after_the_timeout(shared_run):
    report = shared_run("dataloader-hang").report
    stall = report["stall"]
    assert stall["action"] == "stopped" and not stall["busy"]
    assert report["exit"]["signal"] in ("SIGTERM", "SIGKILL")
    # import torch ~3 s + 3 s of silence + up to 1 s of polling, 1 s of stacks, then SIGTERM: well
    # under 20 s.
    assert report["duration_s"] < 20
    kinds = {w["kind"] for w in stall["waits"]}
    assert "dataloader" in kinds  # the main process, waiting for a batch
    assert "lock" in kinds  # a worker, in `with lock:`
    assert (report["verdict"]["category"], report["verdict"]["subtype"]) == (
        "hang",
        "hang/dataloader",
    )
    assert stall["waits"][0]["pid"] == report["probe"]["processes"][0]["pid"]


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


def test_a_busy_silence_that_then_stops_using_cpu_is_judged_again_and_stopped():
    # reported busy while it computes; once its CPU stops, auto stops the wait it became
    verdict, evidence, elapsed = run_watched(
        "quiet_busy_then_stuck.py", "4", stall_timeout=2, limit=40
    )
    assert evidence.stall is not None and evidence.stall.action == "stopped"
    assert not evidence.stall.busy
    assert elapsed < 30
    assert verdict.category == "hang" and verdict.subtype != "hang/busy-loop"


def test_a_busy_loop_reported_then_stopped_by_a_signal_stays_a_hang(tmp_path):
    # torchrun's agent prints "Received 15 death signal, shutting down workers" as a SIGTERM ends
    # the job: that is the stop's output, not the run coming back to life (it had made the report
    # `interrupted/sigterm`, the busy loop and its stacks lost)

    report = tmp_path / "r.json"
    wrapper = (
        f"trap 'echo Received 15 death signal, shutting down workers; kill $p; exit 143' TERM; "
        f"{sys.executable} {SCRIPTS / 'quiet_busy.py'} 60 & p=$!; wait"
    )
    run = subprocess.Popen(
        [
            TRAINWATCH,
            "run",
            "--stall-timeout",
            "2",
            "--json",
            str(report),
            "--",
            "bash",
            "-c",
            wrapper,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=trainwatch_env(),
    )
    time.sleep(6)  # the busy episode reported (auto: a busy loop is only reported)
    run.send_signal(15)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 143
    # said as it was declared, while the run went on
    said = err.split(b"trainwatch report")[0]
    assert b"still using CPU" in said and b"it is left running." in said
    saved = read_report(report)
    assert saved["stall"]["busy"] and saved["verdict"]["subtype"] == "hang/busy-loop", saved[
        "verdict"
    ]


def test_a_silence_reported_then_ended_by_ctrl_c_stays_a_hang_despite_the_interrupt_s_output(
    tmp_path,
):
    # the KeyboardInterrupt traceback is output after the silence: it is the stop's, not the run
    # coming back to life
    report = tmp_path / "r.json"
    run = subprocess.Popen(
        [
            TRAINWATCH,
            "run",
            "--stall-timeout",
            "2",
            "--on-stall",
            "report",
            "--json",
            str(report),
            str(SCRIPTS / "quiet_interrupted_while_waiting.py"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=trainwatch_env(),
        start_new_session=True,
    )
    time.sleep(5)  # the silence reported (report: never stopped by trainwatch)
    os.killpg(run.pid, signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == -2
    said = err.split(b"trainwatch report")[0]
    assert b"trainwatch: No output and no progress for " in said
    assert b"almost no CPU" in said and b"it is left running." in said
    saved = read_report(report)
    assert saved["verdict"]["category"] == "hang", saved["verdict"]
    assert saved["stall"] is not None and not saved["stall"]["busy"]
    assert saved["verdict"]["alternatives"][0]["category"] == "interrupted"


def test_a_hang_waiting_for_a_thread_that_died_is_that_thread_s_error(tmp_path):
    path = tmp_path / "r.json"
    script = str(SCRIPTS / "hang_after_thread_died.py")
    ran = trainwatch("run", "--stall-timeout", "2", "--json", str(path), script)
    report = read_report(path)
    assert 128 - ran.returncode == report["exit"]["status"] == 143  # stopped at the stall
    verdict = report["verdict"]
    assert verdict["category"] == "code", verdict
    assert "thread of the run ('prefetch') ended on an uncaught KeyError" in verdict["summary"]
    assert any(c["text"] == "KeyError: 'image'" for c in report["evidence"])
    assert verdict["alternatives"][0]["category"] == "hang"


def test_a_program_that_ends_on_its_own_error_line_is_judged_by_it(tmp_path):
    # no Python, no traceback: the last words on stderr are the program's own error line
    script = 'echo "step 1"; echo "step 2"; echo "FATAL: cannot open shard 17 of the dataset" >&2'
    path = tmp_path / "r.json"
    failed = trainwatch("run", "--json", str(path), "--", "bash", "-c", script + "; exit 3")
    assert failed.returncode == 3
    report = read_report(path)
    # no signature knows it: unknown, or the category its words lean to (knowledge/words.py)
    verdict = report["verdict"]
    assert verdict["subtype"] in (None, f"{verdict['category']}/error-words"), verdict
    assert report["evidence"][0] == {
        "kind": "log",
        "text": "FATAL: cannot open shard 17 of the dataset",
        "source": "stderr line 1",
    }
    # the same words, then exit 0: the program went on from them
    ok = trainwatch("run", "--json", str(path), "--", "bash", "-c", script + "; exit 0")
    assert ok.returncode == 0
    assert read_report(path)["verdict"]["category"] == "completed"


def test_a_lightning_fit_that_trains_nothing_is_an_early_exit_despite_its_sanity_check(tmp_path):
    # limit_train_batches=0: Lightning prints nothing of it, and its sanity check takes two
    # validation batches before the fit ends; those are no training batches
    needs("lightning")
    path = tmp_path / "r.json"
    done = trainwatch(
        "run", "--json", str(path), str(SCRIPTS / "lightning_no_training.py"), str(tmp_path)
    )
    assert done.returncode == 0 and b"global_step=0" in done.stdout
    report = read_report(path)
    assert report["verdict"]["subtype"] == "early-exit/no-training-batches", report["verdict"]
    passes = report["probe"]["dataloader_passes"]
    assert (passes["built"], passes["taken"], passes["ended"]) == (2, 0, 0)


def test_a_fit_trainwatch_s_own_callback_stopped_at_a_nan_is_numerical_not_early_stopping(tmp_path):
    # TrainwatchCallback(stop_on_nan=True) sets the trainer's stop flag at the first NaN loss, with
    # no bar to print it: read as EarlyStopping's, the run was once "completed/early-stopping"
    needs("lightning")
    done, report = run_script(tmp_path, "lightning_nan_step.py", str(tmp_path), "callback")
    assert done.returncode == 0 and b"nan" not in done.stdout.lower()
    verdict = report["verdict"]
    assert verdict["subtype"] == "numerical/nan-loss", verdict
    assert verdict["signature"] == "quiet:callback-stopped-nan"
    (stopped,) = report["probe"]["stopped_fits"]
    assert (stopped["by"], stopped["reason"]) == ("TrainwatchCallback", "non-finite loss")


def test_a_loop_whose_dataloader_gives_no_batch_is_an_early_exit_counted_by_the_probe(tmp_path):
    # it prints its epochs and "Training finished" and exits 0: only the probe's count of the
    # DataLoader's passes shows that it trained on nothing
    path = tmp_path / "r.json"
    done = trainwatch("run", "--json", str(path), str(SCRIPTS / "empty_loader.py"))
    assert done.returncode == 0 and b"Training finished" in done.stdout
    report = read_report(path)
    verdict = report["verdict"]
    assert verdict["subtype"] == "early-exit/no-training-batches", verdict
    assert "no batch in any of its 3 passes" in verdict["summary"]
    assert "TensorDataset: 3 samples, batch size 8, drop_last=True" in verdict["summary"]
    passes = report["probe"]["dataloader_passes"]
    ended_at = passes["first_empty"].pop("at")
    assert 0 < time.time() - ended_at < 120  # when the first empty pass ended (wall clock)
    assert passes == {
        "ended": 3,
        "batches": 0,
        "empty": 3,
        "first_empty": {"dataset": "TensorDataset", "size": 3, "batch_size": 8, "drop_last": True},
        "built": 1,
        "taken": 0,
    }
    # the NumPy mean of no loss is NaN, under its warning: an empty loop, not a divergence
    mean = trainwatch("run", "--json", str(path), str(SCRIPTS / "empty_loader.py"), "mean")
    assert mean.returncode == 0 and b"train_loss=nan" in mean.stdout
    assert b"Mean of empty slice" in mean.stderr
    assert read_report(path)["verdict"]["subtype"] == "early-exit/no-training-batches"
    # averaged over the loader's length, the same loop fails: the note says why it was zero
    failed = trainwatch("run", "--json", str(path), str(SCRIPTS / "empty_loader.py"), "average")
    assert failed.returncode == 1
    report = read_report(path)
    assert report["verdict"]["category"] != "early-exit"
    assert "a DataLoader gave no batch in 1 of its 1 passes that ended" in " ".join(report["notes"])
    # resumed at its end, the loop never starts: no pass ended, and no batch was taken at all
    resumed = trainwatch("run", "--json", str(path), str(SCRIPTS / "empty_loader.py"), "resumed")
    assert resumed.returncode == 0 and b"Training finished" in resumed.stdout
    report = read_report(path)
    verdict = report["verdict"]
    assert verdict["subtype"] == "early-exit/no-training-batches", verdict
    assert "having built a DataLoader and taken no batch from it" in verdict["summary"]
    assert report["probe"]["dataloader_passes"]["ended"] == 0


def test_a_loop_that_never_computed_a_gradient_is_an_early_exit_counted_by_the_probe(tmp_path):
    # no DataLoader, no loss printed, "Training finished" and exit 0: only the probe's count of the
    # optimizers built and the gradients computed shows that nothing trained
    path = tmp_path / "r.json"
    done = trainwatch("run", "--json", str(path), str(SCRIPTS / "zero_epochs.py"))
    assert done.returncode == 0 and b"Training finished" in done.stdout
    report = read_report(path)
    verdict = report["verdict"]
    assert verdict["subtype"] == "early-exit/no-training-steps", verdict
    assert "having built an optimizer and computed no gradient" in verdict["summary"]
    assert report["probe"]["gradients"] == {
        "optimizers": 1,
        "backwards": 0,
        "nonfinite_losses": 0,
        "ended_nonfinite": False,
        "leaf_losses": 0,
    }


def test_a_run_terminated_after_a_silence_without_cpu_is_a_hang_and_says_where_it_waited(capfd):
    # no --stall-timeout: the watcher only looks on, and the silence counts because a signal
    # ended the run while it lasted
    from trainwatch.diagnostics.live import RunRequest, run_session

    script = SCRIPTS / "lock_then_terminated.py"
    stuck = run_session(
        RunRequest(argv=(sys.executable, str(script), "4"), env=dict(os.environ), quiet_end_s=1.5)
    )
    assert stuck.exit.signal == "SIGTERM"
    assert stuck.verdict.category == "hang", stuck.verdict
    assert "a signal ended it later" in stuck.verdict.summary
    assert stuck.verdict.culprit is not None and stuck.verdict.culprit.line == 22
    # the same run with the silence shorter than the watcher's window: stopped from outside
    short = run_session(RunRequest(argv=(sys.executable, str(script), "1"), env=dict(os.environ)))
    assert short.verdict.category == "interrupted", short.verdict
    # ... unless the silence, under the window, is long for a run that had printed at once and
    # idle: stuck when it was stopped (`timeout 20` before the watcher's own 30 s)
    cut = run_session(
        RunRequest(argv=(sys.executable, str(script), "3"), env=dict(os.environ), quiet_end_s=6)
    )
    assert cut.verdict.category == "hang", cut.verdict
    assert "before a signal ended it" in cut.verdict.summary
    assert cut.verdict.alternatives[0].category == "interrupted"
    assert "epoch 2/3" in capfd.readouterr().out
    # a quiet start-up longer than the silence is no measure of the loop's rhythm
    slow_start = run_session(
        RunRequest(
            argv=(sys.executable, str(script), "4.5", "1.5"), env=dict(os.environ), quiet_end_s=6
        )
    )
    assert slow_start.verdict.category == "hang", slow_start.verdict


def test_a_stuck_run_that_timeout_stopped_is_a_hang_though_no_signal_ended_trainwatch_s_child():
    # `timeout 4 python ...`: the child trainwatch started exits 124, killed by no signal; the
    # silence before it still counts (a real shell-wrapped run read as a time limit to lengthen)
    from trainwatch.diagnostics.live import RunRequest, run_session

    code = "print('epoch 1/3 loss 0.5', flush=True); import time; time.sleep(60)"
    stuck = run_session(
        RunRequest(
            argv=("timeout", "4", sys.executable, "-c", code), env=dict(os.environ), quiet_end_s=6
        )
    )
    assert stuck.exit.code == 124 and stuck.exit.signal is None
    assert stuck.verdict.category == "hang", stuck.verdict
    assert stuck.verdict.alternatives[0].category == "interrupted", stuck.verdict


def test_an_exit_0_that_skipped_python_s_shutdown_is_not_called_completed(tmp_path):
    # os._exit(0): no at-exit handler ran, and what the program had not flushed is gone
    verdicts = {}
    for name, code in (("cut", "import os; os._exit(0)"), ("whole", "import os")):
        report = tmp_path / f"{name}.json"
        result = trainwatch("run", "--json", str(report), "--", sys.executable, "-c", code)
        assert result.returncode == 0
        verdicts[name] = read_report(report)["verdict"]
    assert verdicts["cut"]["subtype"] == "early-exit/skipped-shutdown"
    assert verdicts["cut"]["alternatives"][0]["category"] == "completed"
    assert verdicts["whole"]["category"] == "completed"


def test_a_program_that_exits_itself_with_a_status_names_the_line_and_no_category(tmp_path):
    report = tmp_path / "r.json"
    code = "import sys\nfor e in (1, 2):\n    print(f'epoch {e}/5', flush=True)\nsys.exit(3)\n"
    result = trainwatch("run", "--json", str(report), "--", sys.executable, "-c", code)
    assert result.returncode == 3
    data = read_report(report)
    assert data["verdict"]["category"] == "unknown" and "sys.exit(3)" in data["verdict"]["summary"]
    assert data["culprit"]["line"] == 4
    assert "reason it did not say" in data["verdict"]["summary"]  # the last line was progress
    # a program that printed its reason before it exited gave one (forty-third session's real
    # runs: "did not say" contradicted its last stderr line)
    said = code.replace(
        "sys.exit(3)", "print('accuracy target unreachable', file=sys.stderr)\nsys.exit(3)"
    )
    result = trainwatch("run", "--json", str(report), "--", sys.executable, "-c", said)
    verdict = read_report(report)["verdict"]
    assert result.returncode == 3 and "did not say" not in verdict["summary"]
    assert 'after its last words, "accuracy target unreachable"' in verdict["summary"]


def test_a_pipeline_s_status_0_does_not_hide_the_python_process_that_died_in_it(tmp_path):
    # `python train.py | tee log` exits with tee's 0; the probe saw Python die of its error (one no
    # signature knows): the run failed of it, no early exit of a loop that left at epoch 3
    program = tmp_path / "train.py"
    program.write_text(
        "for epoch in range(1, 6):\n"
        "    print(f'epoch {epoch}/5 loss {1.0 / epoch:.3f}', flush=True)\n"
        "    if epoch == 3:\n"
        "        raise LookupError('shard 7 of 12 has no header')\n"
    )
    report = tmp_path / "r.json"
    pipeline = f"{sys.executable} {program} 2>&1 | tee {tmp_path / 'log'}"
    ran = trainwatch("run", "--json", str(report), "--", "bash", "-c", pipeline)
    assert ran.returncode == 0 and b"epoch 3/5" in ran.stdout
    saved = read_report(report)
    assert saved["verdict"]["category"] != "early-exit", saved["verdict"]
    assert saved["evidence"][0]["text"] == "LookupError: shard 7 of 12 has no header"
    # the same loop leaving by itself at epoch 3: an early exit still
    program.write_text(program.read_text().replace("raise LookupError(", "break  # ("))
    trainwatch("run", "--json", str(report), "--", "bash", "-c", pipeline)
    assert read_report(report)["verdict"]["subtype"] == "early-exit/unfinished"


def test_a_nan_loss_printed_right_after_a_pass_that_gave_no_batch_is_its_empty_mean(tmp_path):
    # a real run's generator, used up by the first epoch: the next epochs print the mean of no
    # losses, NaN, right after their empty passes (was numerical/nan-loss 90% with learning-rate
    # advice); the probe says when the first empty pass ended
    path = tmp_path / "r.json"
    done = trainwatch("run", "--json", str(path), str(SCRIPTS / "exhausted_stream.py"))
    assert done.returncode == 0 and b"train_loss: nan (0 batches)" in done.stdout
    report = read_report(path)
    assert report["verdict"]["subtype"] == "data/empty-dataset", report["verdict"]
    assert "2 of its 3 passes gave none" in report["verdict"]["summary"]
    assert not any("learning rate" in advice for advice in report["advice"])
