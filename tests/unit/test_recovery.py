"""The sample and the checkpoints, read from records and judged: states on disk, pairing, wording,
the resume advice, and the report sections every format shows."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from trainwatch.cli.reports.junit import junit_xml
from trainwatch.cli.reports.outline import outline
from trainwatch.diagnostics.evidence import Evidence, ExitStatus, LogLine, RaisedException
from trainwatch.diagnostics.judge.recovery import (
    with_nonfinite_inputs,
    with_resume_advice,
    with_sample,
    with_training_done,
    with_training_seen,
)
from trainwatch.diagnostics.read.progress import ProgressTracker
from trainwatch.diagnostics.verdict import Diagnosis, Verdict
from trainwatch.diagnostics.watch.probe.checkpoints import describe_duration, read_checkpoints
from trainwatch.diagnostics.watch.probe.records import ProbeFacts, ProbeProcess, read_records
from trainwatch.diagnostics.watch.probe.samples import (
    FailedSample,
    NonFiniteRows,
    SampleCall,
    pick_sample,
)


def save(pid: int, seq: int, path: Path, began: float, ended: float | None, **extra) -> list:
    begin = {"kind": "checkpoint", "pid": pid, "seq": seq, "state": "begin", "time": began}
    begin.update(path=str(path), api="torch.save", **extra)
    if ended is None:
        return [begin]
    size = path.stat().st_size if path.exists() else 0
    return [begin, {**begin, "state": "end", "time": ended, "size": size}]


def test_each_save_is_checked_against_the_disk(tmp_path: Path) -> None:
    for name in ("a.pt", "b.pt", "c.pt", "d.pt"):
        (tmp_path / name).write_bytes(b"x" * 10)
    records = (
        save(1, 1, tmp_path / "a.pt", 1.0, 1.5, step=10)  # complete
        + save(1, 2, tmp_path / "b.pt", 2.0, 2.5, step=20)  # written over by seq 4
        + save(1, 3, tmp_path / "c.pt", 3.0, 3.5, step=30)  # grows after the save
        + save(1, 4, tmp_path / "b.pt", 4.0, 4.5, step=40)  # then deleted
        + save(1, 5, tmp_path / "d.pt", 5.0, None, epoch=2)  # never finished
    )
    (tmp_path / "c.pt").write_bytes(b"x" * 11)
    (tmp_path / "b.pt").unlink()
    facts = read_checkpoints(records).with_span(0.0, 6.0)
    assert [(Path(s.path).name, s.state) for s in facts.saves] == [
        ("a.pt", "complete"),
        ("b.pt", "overwritten"),
        ("c.pt", "changed"),
        ("b.pt", "removed"),
        ("d.pt", "partial"),
    ]
    point = facts.resume_point()
    assert point is not None and point.step == 10 and point.progress == "step 10"
    assert [Path(s.path).name for s in facts.unusable()] == ["c.pt", "d.pt"]
    assert facts.lost_s() == pytest.approx(4.5)
    assert facts.last is not None and facts.last.progress == "epoch 2"
    summary = facts.to_dict()
    assert summary["resume_from"]["path"] == str(tmp_path / "a.pt") and summary["total"] == 5


def test_a_save_to_a_temporary_name_renamed_when_complete_is_found_under_its_new_name(
    tmp_path: Path,
) -> None:
    # `torch.save(state, "model.pt.tmp")` then `os.replace(..., "model.pt")`; the third save was
    # killed while it wrote its temporary file (a real run read "starts again from scratch")
    tmp, final = tmp_path / "model.pt.tmp", tmp_path / "model.pt"
    tmp.write_bytes(b"x" * 10)
    records = save(1, 1, tmp, 1.0, 1.5, step=8)
    tmp.write_bytes(b"y" * 12)
    records += save(1, 2, tmp, 2.0, 2.5, step=16)
    tmp.replace(final)
    tmp.write_bytes(b"z" * 5)
    records += save(1, 3, tmp, 3.0, None, step=24)
    facts = read_checkpoints(records).with_span(0.0, 4.0)
    assert [(Path(s.path).name, s.state) for s in facts.saves] == [
        ("model.pt.tmp", "overwritten"),
        ("model.pt", "complete"),
        ("model.pt.tmp", "partial"),
    ]
    point = facts.resume_point()
    assert point is not None and point.path == str(final) and point.step == 16
    # a file of that name whose size no save left is not the save's
    final.write_bytes(b"w" * 99)
    assert read_checkpoints(records).resume_point() is None


def test_saves_after_the_first_non_finite_loss_are_no_point_to_resume_from(tmp_path: Path) -> None:
    # the NaN loss of step 20 was printed at 10.0 and read at 10.5; step 20's save began at 10.1,
    # before the reading (a real run was told to resume from it); step 15's, 0.5 s earlier, stands
    for name in ("s15.pt", "s20.pt", "s25.pt"):
        (tmp_path / name).write_bytes(b"x")
    records = (
        save(1, 1, tmp_path / "s15.pt", 9.6, 9.7, step=15)
        + save(1, 2, tmp_path / "s20.pt", 10.1, 10.2, step=20)
        + save(1, 3, tmp_path / "s25.pt", 10.6, 10.7, step=25)
    )
    facts = read_checkpoints(records).with_nonfinite_since(10.5, step=20)
    assert [s.state for s in facts.saves] == ["complete", "after-nonfinite", "after-nonfinite"]
    assert facts.resume_point().step == 15
    # without the step, only a save begun after the reading (a fast loop saves many steps a second)
    timed = read_checkpoints(records).with_nonfinite_since(10.5)
    assert [s.state for s in timed.saves] == ["complete", "complete", "after-nonfinite"]


def test_no_save_loses_the_whole_run() -> None:
    facts = read_checkpoints([]).with_span(100.0, 160.0)
    assert facts.total == 0 and facts.resume_point() is None and facts.lost_s() == 60.0


def test_a_failed_save_is_not_resumed_from(tmp_path: Path) -> None:
    records = save(1, 1, tmp_path / "a.pt", 1.0, None)
    records.append({**records[0], "state": "failed", "time": 1.2, "error": "OSError"})
    facts = read_checkpoints(records)
    assert facts.saves[0].state == "failed" and facts.saves[0].error == "OSError"
    assert facts.resume_point() is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.42, "0.4 s"), (12.4, "12 s"), (252, "4 min 12 s"), (3 * 3600 + 5 * 60, "3 h 05 min")],
)
def test_durations_read_as_a_person_says_them(seconds: float, text: str) -> None:
    assert describe_duration(seconds) == text


def _record(path: Path, *lines: dict) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _main_raised(folder: Path, kind: str, message: str, frames: list | None = None) -> None:
    """The main process's records (pid 1): its hello, and the exception that ended it."""
    chain = [{"type": kind, "message": message, "frames": frames or []}]
    _record(
        folder / "1-aa.jsonl",
        {"kind": "hello", "pid": 1, "ppid": 0, "time": 1},
        {"kind": "exception", "pid": 1, "time": 9, "chain": chain},
    )


def test_a_workers_sample_is_paired_with_the_main_processs_reraise(tmp_path: Path) -> None:
    wrapped = (
        "Caught ValueError in DataLoader worker process 1.\nOriginal Traceback (most recent "
        'call last):\n  File "/u/train.py", line 9, in __getitem__\n    raise ValueError(i)\n'
        "ValueError: 517\n"
    )
    _main_raised(tmp_path, "ValueError", wrapped)
    for pid, worker, index in ((2, 0, "12"), (3, 1, "517")):
        call = {"function": "__getitem__", "file": "/u/train.py", "line": 9, "user": True}
        _record(
            tmp_path / f"{pid}-bb.jsonl",
            {"kind": "hello", "pid": pid, "ppid": 1, "time": 2},
            {
                "kind": "sample",
                "pid": pid,
                "time": 8,
                "where": f"in DataLoader worker process {worker}",
                "type": "ValueError",
                "calls": [{**call, "args": {"i": index}}],
                "files": [f"/data/x_{index}.png"],
            },
        )
    facts = read_records(tmp_path)
    assert facts.sample is not None and facts.sample.worker == 1
    assert facts.sample.describe() == "sample 517: /data/x_517.png"


def test_a_worker_s_exception_torch_could_not_word_takes_the_worker_s_sample_and_words(
    tmp_path: Path,
) -> None:
    # soundfile's LibsndfileError re-raised by torch with no "Caught ... in DataLoader worker"
    # to pair by: its str() fails in the main process (a real run)
    site = "/v/site-packages/torch"
    frames = [
        {"file": "/u/train.py", "line": 15, "function": "<module>", "user": True},
        {"file": f"{site}/utils/data/dataloader.py", "line": 1567, "function": "_process_data"},
        {"file": f"{site}/_utils.py", "line": 794, "function": "reraise"},
    ]
    _main_raised(tmp_path, "soundfile.LibsndfileError", "<str() failed>", frames)
    words = "Error opening '/data/c10.wav': Format not recognised."
    call = {"function": "__getitem__", "file": "/u/train.py", "line": 9, "user": True}
    _record(
        tmp_path / "2-bb.jsonl",
        {"kind": "hello", "pid": 2, "ppid": 1, "time": 2},
        {
            "kind": "sample",
            "pid": 2,
            "time": 8,
            "where": "in DataLoader worker process 0",
            "type": "soundfile.LibsndfileError",
            "message": words,
            "calls": [{**call, "args": {"i": "10"}}],
            "files": ["/data/c10.wav"],
        },
    )
    facts = read_records(tmp_path)
    assert facts.sample is not None and facts.sample.describe() == "sample 10: /data/c10.wav"
    assert facts.chains[0].final.message == words


def test_pick_sample_wants_the_same_type_and_not_a_later_one() -> None:
    call = SampleCall("__getitem__", "/u/t.py", 3, True, (("i", "4"),))
    early = FailedSample(pid=7, worker=None, exception="KeyError", calls=(call,))
    other = FailedSample(pid=7, worker=None, exception="ValueError", calls=(call,))
    samples = [(1.0, early), (2.0, other), (50.0, early)]
    assert pick_sample(samples, "builtins.KeyError", pid=7, before=10.0) is early
    assert pick_sample(samples, "IndexError", pid=7) is None
    assert pick_sample(samples, "KeyError", pid=8) is None


def test_a_worker_s_later_failure_does_not_hide_the_one_the_main_process_raised() -> None:
    # a DataLoader worker goes on to its next batch after one fails, and may fail there too
    # before the main process re-raises the first (a real run: entries 5 and 2 of two batches)
    def failed(batch: str, entry: int) -> FailedSample:
        call = SampleCall("collate", "/t/collate.py", 155, False, (("batch", batch),))
        message = (
            "stack expects each tensor to be equal size, but got [3, 32, 32] at entry 0 and "
            f"[3, 48, 40] at entry {entry}"
        )
        return FailedSample(9, 0, "RuntimeError", (call,), message=message)

    first, later = failed("[32..39]", 5), failed("[48..55]", 2)
    samples = [(1.0, first), (1.2, later)]
    raised = first.message + "\n"
    assert pick_sample(samples, "RuntimeError", worker=0, message=raised) is first
    # no message to tell them apart: the first, as the batches are re-raised in order (a real run:
    # samples 40 and 104 of one worker, both out of memory with one message)
    assert pick_sample(samples, "RuntimeError", worker=0) is first
    assert pick_sample(samples, "RuntimeError", worker=0, message=later.message) is later
    # the worker's process of an earlier epoch (another pid) failed first, and was passed over
    restarted = replace(later, pid=10)
    assert pick_sample([*samples, (5.0, restarted)], "RuntimeError", worker=0) is restarted


def test_reload_command_by_dataset_or_by_file(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text('class Images: ...\nif __name__ == "__main__":\n    pass\n')
    call = SampleCall(
        "__getitem__", str(script), 3, True, (("index", "517"),), "__main__.Images", str(script), 0
    )
    sample = FailedSample(pid=1, worker=0, exception="OSError", calls=(call,))
    assert sample.reload_command() == (
        f"cd {tmp_path} && python -c 'from train import Images; print(Images()[517])'"
    )
    # needs arguments: the file's own loader is the runnable command
    needs = replace(call, owner_required=2)
    with_file = FailedSample(1, 0, "OSError", (needs,), ("/d/it's.png",))
    assert with_file.reload_command() == (
        "python -c 'from PIL import Image; Image.open(\"/d/it'\"'\"'s.png\").load()'"
    )
    # a batch of indices shown shortened is no Python to run (a real run's Subset)
    batch = replace(
        call, function="__getitems__", arguments=(("indices", "[4, 9, ...] (50 items)"),)
    )
    assert FailedSample(1, 0, "IndexError", (batch,)).reload_command() is None
    # needs arguments and no file: the Dataset, with a placeholder that cannot run as it stands
    # (`...` ran, and raised a TypeError of its own: BO's real runs)
    placeholder = FailedSample(1, 0, "OSError", (needs,)).reload_command()
    assert "print(Images(<ARGS>)[517])'  # put in <ARGS> the arguments" in placeholder
    whole = replace(batch, arguments=(("indices", "[4, 9]"),))
    assert (
        "Images().__getitems__([4, 9])"
        in FailedSample(1, 0, "IndexError", (whole,)).reload_command()
    )
    # no guard against import: importing the script would train again
    script.write_text("class Images: ...\ntrain()\n")
    assert sample.reload_command() is None


def _verdict(category: str, subtype: str | None, exception: str | None = None) -> Verdict:
    raised = RaisedException(exception, "boom") if exception else None
    return Verdict(
        category,
        subtype,
        0.9,
        "It stopped.",
        exception=raised,
        exception_chain=(raised,) if raised else (),
        advice=("Do the usual.",),
    )


def _probe(checkpoints, sample=None) -> ProbeFacts:
    """What the probe of one process recorded."""
    process = ProbeProcess(7, 1, ("python", "t.py"), "/usr/bin/python3", "3.11.7", 0.0)
    return ProbeFacts(processes=(process,), checkpoints=checkpoints, sample=sample)


def test_resume_advice_only_for_stopped_killed_or_hung_runs(tmp_path: Path) -> None:
    (tmp_path / "a.pt").write_bytes(b"x")
    facts = read_checkpoints(save(1, 1, tmp_path / "a.pt", 1.0, 1.5, step=10)).with_span(0, 4)
    probe = _probe(facts)
    term = Evidence("run", exit=ExitStatus.from_returncode(-15), probe=probe)
    advised = with_resume_advice(_verdict("interrupted", "interrupted/sigterm"), term)
    assert advised.advice[0] == (
        f"Resume from {tmp_path / 'a.pt'} (step 10), written completely, 2.5 s of training "
        f'before the run ended: checkpoint = torch.load("{tmp_path / "a.pt"}"), then load its '
        "state into the model and optimizer"
    )
    hung = Evidence("run", exit=ExitStatus.from_returncode(0), probe=probe)
    assert with_resume_advice(_verdict("hang", "hang/lock"), hung).advice[0].startswith("Resume")
    crashed = Evidence("run", exit=ExitStatus.from_returncode(1), probe=probe)
    assert with_resume_advice(_verdict("data", None), crashed).advice == ("Do the usual.",)


def test_the_sample_joins_only_the_verdict_of_its_own_exception() -> None:
    call = SampleCall("__getitem__", "/u/t.py", 3, True, (("i", "4"),))
    sample = FailedSample(7, None, "PIL.UnidentifiedImageError", (call,), ("/d/x.png",))
    evidence = Evidence("run", probe=_probe(read_checkpoints([]), sample))
    joined = with_sample(_verdict("data", None, "PIL.UnidentifiedImageError"), evidence)
    assert joined.sample is sample
    assert joined.summary == "It stopped. It failed on sample 4: /d/x.png."
    assert joined.advice[0].startswith("Load that one sample again, to see the error in seconds:")
    other = with_sample(_verdict("code", None, "NameError"), evidence)
    assert other.sample is None and other.summary == "It stopped."


def test_an_index_error_on_the_last_index_the_dataset_counts_points_at_its_len() -> None:
    def advice(index: str, exception: str = "IndexError") -> tuple[str, ...]:
        call = SampleCall("__getitem__", "/u/t.py", 10, True, (("i", index),), length=101)
        sample = FailedSample(7, None, exception, (call,))
        evidence = Evidence("run", probe=_probe(read_checkpoints([]), sample))
        return with_sample(_verdict("data", "data/sample-error", exception), evidence).advice

    assert advice("100")[0].startswith("It failed on index 100, the last of the 101 items")
    assert "__len__" not in " ".join(advice("57"))  # a bad sample in the middle: that sample
    assert "__len__" not in " ".join(advice("100", "KeyError"))


def test_a_loss_gone_nan_on_a_batch_holding_nan_is_the_data(tmp_path: Path) -> None:
    rows = [
        {
            "name": "features",
            "function": "<module>",
            "shape": [96, 4],
            "positions": [45],
            "count": 1,
        },
        {"name": "x", "function": "<module>", "shape": [8, 4], "positions": [5], "count": 1},
    ]
    _record(
        tmp_path / "7-aa.jsonl",
        {"kind": "hello", "pid": 7, "ppid": 1, "time": 1},
        {"kind": "nonfinite", "pid": 7, "time": 5, "loss": "nan", "nonfinite": rows[1:]},
        {"kind": "nonfinite", "pid": 7, "time": 3, "loss": "inf", "nonfinite": rows},
    )
    facts = read_records(tmp_path)
    assert [r.name for r in facts.nonfinite_inputs] == ["features", "x"]  # the earliest record
    assert facts.to_dict()["nonfinite_inputs"][1]["positions"] == [5]
    evidence = Evidence("run", exit=ExitStatus.from_returncode(0), probe=facts)
    judged = with_nonfinite_inputs(_verdict("numerical", "numerical/nan-loss"), evidence)
    assert (judged.category, judged.subtype) == ("data", "data/nan-input")
    assert judged.summary == (
        "The loss turned non-finite on a batch that already held NaN or Inf: "
        "NaN/Inf in `x` (8×4, in <module>): row 5."
    )
    assert judged.alternatives[0].category == "numerical"
    assert judged.evidence[0].text == (
        "at the first non-finite loss's backward(): NaN/Inf in `x` (8×4, in <module>): row 5"
    )
    # only a numerical verdict: a crash of its own keeps its cause
    assert with_nonfinite_inputs(_verdict("code", None, "NameError"), evidence).category == "code"
    # a loss that diverged on finite inputs wrote no record
    plain = Evidence("run", probe=_probe(read_checkpoints([])))
    assert with_nonfinite_inputs(_verdict("numerical", None), plain).category == "numerical"


def test_the_program_s_own_nan_loss_check_on_inputs_holding_nan_is_the_data() -> None:
    # `raise RuntimeError("Loss is nan")` before any backward(): the probe's sample of the
    # exception found the rows
    rows = (NonFiniteRows("X", "<module>", True, (100, 3), (57,), 1),)
    sample = FailedSample(7, None, "RuntimeError", nonfinite=rows)
    evidence = Evidence("run", probe=_probe(read_checkpoints([]), sample))
    judged = with_sample(_verdict("numerical", "numerical/nan-loss", "RuntimeError"), evidence)
    assert (judged.category, judged.subtype, judged.confidence) == ("data", "data/nan-input", 0.8)
    assert "row 57" in judged.summary
    # the reading it replaces stays, below it
    assert judged.alternatives[0].category == "numerical"
    assert judged.alternatives[0].confidence < judged.confidence
    # a model's outputs under torch.no_grad() (no grad_fn either): named so, or NaN in every row
    for name, shape, count in (("logits", (8, 2), 2), ("h", (8, 2), 8)):
        outputs = (NonFiniteRows(name, "<module>", True, shape, (0, 1), count),)
        evidence = Evidence(
            "run", probe=_probe(read_checkpoints([]), replace(sample, nonfinite=outputs))
        )
        kept = with_sample(_verdict("numerical", "numerical/nan", "RuntimeError"), evidence)
        assert kept.category == "numerical", name


def test_no_training_lost_by_a_run_never_seen_training_or_one_that_left_its_loop() -> None:
    # no checkpoint, and no progress line, loss or batch taken: waiting at a rendezvous is no
    # training that a checkpoint could have kept; nor is an early exit's end a loss
    facts = read_checkpoints([]).with_span(0.0, 13.0)
    probe = with_training_seen(_probe(facts), None)
    assert probe.checkpoints.trained is False
    evidence = Evidence("run", exit=ExitStatus.from_returncode(-15), probe=probe)
    stuck = Diagnosis(
        "0.1.0", ("python", "t.py"), None, 13.0, evidence.exit, _verdict("hang", None), evidence
    )
    assert "Work lost" not in outline(stuck, 1).text()
    assert with_resume_advice(stuck.verdict, evidence).advice == ("Do the usual.",)
    tracker = ProgressTracker()
    tracker.feed(LogLine(1, "step 3/10 loss 0.5"))
    progress = tracker.finish()
    trained = replace(evidence, progress=progress, probe=with_training_seen(probe, progress))
    stopped = replace(stuck, evidence=trained)
    assert "no checkpoint seen: all 13 s of training lost" in outline(stopped, 1).text()
    advice = with_resume_advice(stuck.verdict, trained).advice
    assert advice[0].startswith("No checkpoint save was seen")
    left = replace(stopped, verdict=_verdict("early-exit", None))
    assert "Work lost" not in outline(left, 1).text()
    # a batch the probe saw taken, or a gradient computed, is training too
    from trainwatch.diagnostics.watch.probe.records import GradientCounts

    counted = replace(probe, gradients=GradientCounts(optimizers=1, backwards=4))
    assert with_training_seen(counted, None).checkpoints.trained is True


def test_a_run_that_loaded_no_save_trainwatch_sees_is_not_told_none_was_made(
    tmp_path: Path,
) -> None:
    # an XGBoost or a PaddlePaddle run saves its own way: that no torch/Keras/... save was seen
    # says nothing of what it saved, so nothing is said lost and the advice says what is watched
    _record(tmp_path / "7-aa.jsonl", {"kind": "hello", "pid": 7, "ppid": 1, "time": 1})
    unwatched = read_records(tmp_path).checkpoints
    assert unwatched is not None and unwatched.watched is False
    _record(
        tmp_path / "8-bb.jsonl",
        {"kind": "hello", "pid": 8, "ppid": 7, "time": 2},
        {"kind": "saves-watched", "pid": 8, "api": "torch.save"},
    )
    assert read_records(tmp_path).checkpoints.watched is True
    facts = unwatched.with_span(0.0, 13.0)
    evidence = Evidence("run", exit=ExitStatus.from_returncode(-2), probe=_probe(facts))
    advised = with_resume_advice(_verdict("interrupted", "interrupted/user"), evidence)
    assert advised.advice[0].startswith("trainwatch sees checkpoint saves made with torch.save")
    assert "this run used none of them" in advised.advice[0]
    tracker = ProgressTracker()
    tracker.feed(LogLine(1, "step 3/10 loss 0.5"))
    stopped = Diagnosis(
        "0.1.0",
        ("python", "t.py"),
        None,
        13.0,
        evidence.exit,
        advised,
        replace(evidence, progress=tracker.finish()),
    )
    assert "Work lost" not in outline(stopped, 1).text()
    watched = replace(
        stopped, evidence=replace(stopped.evidence, probe=_probe(replace(facts, watched=True)))
    )
    assert "no checkpoint seen: all 13 s of training lost" in outline(watched, 1).text()


def test_a_run_that_sat_idle_after_its_last_save_lost_no_training(tmp_path: Path) -> None:
    # trained 3 s, saved, then waited 27 s for a flag (a hang after the work): the span the work
    # is measured by ends where the silence began, not at the signal that ended the wait
    (tmp_path / "m.pt").write_bytes(b"x")
    facts = read_checkpoints(save(1, 1, tmp_path / "m.pt", 2.9, 3.0)).with_span(0.0, 3.05)
    evidence = Evidence("run", exit=ExitStatus.from_returncode(-2), probe=_probe(facts))
    stuck = Diagnosis(
        "0.1.0", ("python", "t.py"), None, 30.0, evidence.exit, _verdict("hang", None), evidence
    )
    text = outline(stuck, 1).text()
    assert "no training lost since: the run made no progress after it" in text
    assert "of training lost" not in text
    advice = with_resume_advice(_verdict("hang", None), evidence).advice
    assert any("written completely, and nothing trained after it" in a for a in advice), advice
    # the same save 27 s before a run that kept training: those 27 s are lost
    worked = read_checkpoints(save(1, 1, tmp_path / "m.pt", 2.9, 3.0)).with_span(0.0, 30.0)
    busy = replace(stuck, evidence=replace(evidence, probe=_probe(worked)))
    assert "27 s of training lost since" in outline(busy, 1).text()


def test_every_format_shows_the_sample_and_the_work_lost(tmp_path: Path) -> None:
    (tmp_path / "a.pt").write_bytes(b"x")
    facts = read_checkpoints(
        save(1, 1, tmp_path / "a.pt", 10.0, 11.0, epoch=1, step=30)
        + save(1, 2, tmp_path / "b.pt", 12.0, None)
    ).with_span(0.0, 71.0)
    call = SampleCall("__getitem__", "/u/t.py", 3, True, (("i", "517"),), "t.Images")
    sample = FailedSample(7, 1, "OSError", (call,), ("/d/x.png",))
    verdict = _verdict("data", None, "OSError")
    evidence = Evidence("run", exit=ExitStatus.from_returncode(1), probe=_probe(facts, sample))
    verdict = with_sample(verdict, evidence)
    diagnosis = Diagnosis("0.1.0", ("python", "t.py"), None, 71.0, evidence.exit, verdict, evidence)
    text = outline(diagnosis, 1).text()
    assert "Sample that failed:\n  - sample 517: /d/x.png  (probe pid 7 · DataLoader worker 1)" in (
        text
    )
    assert "  - in Images.__getitem__(i=517)  (/u/t.py:3)" in text
    assert f"Work lost:\n  - last complete checkpoint: {tmp_path / 'a.pt'} (epoch 1, step 30)" in (
        text
    )
    assert "  - 1 min 0 s of training lost since" in text
    assert f"  - {tmp_path / 'b.pt'}: partial (the run ended while writing it)" in text
    assert "sample 517: /d/x.png" in junit_xml(diagnosis, outline(diagnosis, 1))
    report = diagnosis.to_dict()
    assert report["sample"]["summary"] == "sample 517: /d/x.png"
    assert report["checkpoints"]["lost_s"] == 60.0
    done = Diagnosis("0.1.0", (), None, 71.0, evidence.exit, _verdict("completed", None), evidence)
    assert outline(done, 0).section("checkpoints") is None


def test_an_exception_raised_well_after_the_program_ended_is_left_out(tmp_path: Path) -> None:
    # a daemon the program left behind hit a closed output pipe seconds after the program ended
    def raised(time: float) -> dict:
        return {
            "kind": "exception",
            "pid": 2,
            "time": time,
            "chain": [{"type": "BrokenPipeError", "message": "[Errno 32] Broken pipe"}],
        }

    _record(tmp_path / "2-aa.jsonl", {"kind": "hello", "pid": 2, "ppid": 1, "time": 1}, raised(106))
    assert read_records(tmp_path, ended_at=100.0).chains == ()
    assert len(read_records(tmp_path, ended_at=105.5).chains) == 1  # as it died: it counts
    assert len(read_records(tmp_path).chains) == 1


def test_a_failure_after_the_loop_reached_its_total_says_training_had_finished() -> None:
    tracker = ProgressTracker()
    for epoch in (1, 2, 3):
        tracker.feed(LogLine(epoch, f"Epoch {epoch}/3 loss={1 / epoch:.3f}"))
    done = tracker.finish()
    failed = Evidence("run", exit=ExitStatus.from_returncode(1), progress=done)
    said = with_training_done(_verdict("code", None, "TypeError"), failed).summary
    assert said == (
        "It stopped. Training itself had finished (the output reached epoch 3/3): it stopped "
        "in what came after the loop."
    )
    # a loop cut short, or a run that ended well, says nothing of the kind
    short = ProgressTracker()
    short.feed(LogLine(1, "Epoch 1/3 loss=1.0"))
    cut = replace(failed, progress=short.finish())
    assert with_training_done(_verdict("code", None, "TypeError"), cut).summary == "It stopped."
    # the last epoch at its total but its steps short of theirs: it failed inside that epoch
    inside = ProgressTracker()
    inside.feed(LogLine(1, "Epoch 1/1"))
    inside.feed(LogLine(2, "step 11/13 loss=0.5"))
    facts = inside.finish()
    assert facts.finished is True and not facts.ran_to_its_end and facts.finished_read_at is None
    cut = replace(failed, progress=facts)
    assert with_training_done(_verdict("data", None, "OSError"), cut).summary == "It stopped."
    ended = replace(failed, exit=ExitStatus.from_returncode(0))
    assert with_training_done(_verdict("code", None, "TypeError"), ended).summary == "It stopped."
