"""The Python API in this process: explain, diagnose, the JSON report's round trip, and watch()."""

from __future__ import annotations

import math
import sys

import pytest

import trainwatch
from trainwatch.diagnostics.errors import UsageError
from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.postmortem import explain_logs

from conftest import CORPUS_LOGS, FIXTURE_LOGS, corpus_diagnosis, through_a_file

KNOWLEDGE = load_knowledge(include_user=False)
ALL_LOGS = sorted(CORPUS_LOGS.glob("*.log"))


# ---- explain ------------------------------------------------------------------------------------
def test_explain_a_path_and_its_text_give_the_command_s_verdict():
    path = FIXTURE_LOGS / "collate_shape_mismatch.log"
    by_command = explain_logs([str(path)], KNOWLEDGE).to_dict()
    by_path = trainwatch.explain(path).to_dict()
    by_text = trainwatch.explain(path.read_text(encoding="utf-8", errors="replace")).to_dict()
    by_bytes = trainwatch.explain(path.read_bytes()).to_dict()
    assert by_path["verdict"] == by_command["verdict"]
    assert by_path["verdict"]["subtype"] == "data/shape-mismatch"
    assert by_text["verdict"] == by_bytes["verdict"] == by_command["verdict"]
    assert by_path["sources"] == [str(path)] and by_text["sources"] == ["-"]


def test_explain_several_logs_of_one_job():
    paths = ALL_LOGS[:2]
    assert trainwatch.explain(paths).sources == tuple(str(p) for p in paths)


def test_explain_a_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        trainwatch.explain(tmp_path / "nope.log")


# ---- diagnose -----------------------------------------------------------------------------------
class Samples:
    def __getitem__(self, index):
        return {"image": [0.0]}["label"]  # a sample without the key the loop wants


def test_diagnose_reads_the_whole_chain_and_the_user_s_frame():
    try:
        try:
            Samples()[3]
        except KeyError as exc:
            raise RuntimeError("could not load batch 3") from exc
    except RuntimeError as exc:
        diagnosis = trainwatch.diagnose(exc)
    v = diagnosis.verdict
    assert [e.type for e in v.exception_chain] == ["KeyError", "RuntimeError"]
    assert v.exception_chain[0].relation == "cause"
    assert v.culprit is not None and v.culprit.function == "__getitem__"
    assert v.culprit.file == __file__ and "label" in (v.culprit.code or "")
    assert v.category == "data"  # a KeyError in __getitem__ is about a sample
    assert diagnosis.evidence.probe is not None and diagnosis.evidence.probe.loaded


def test_import_of_the_package_is_lazy():
    assert set(trainwatch.__all__) <= set(dir(trainwatch))
    with pytest.raises(AttributeError):
        trainwatch.no_such_name  # noqa: B018


# ---- from_dict ----------------------------------------------------------------------------------
def test_a_report_with_every_section_round_trips(capsys):
    with pytest.raises(IndexError), trainwatch.watch(show="never", interval=0.05) as w:
        print("epoch 1/2 step 3/10 loss 0.5")
        [][1]
    report = through_a_file(w.diagnosis.to_dict())
    assert report["memory"] is not None and report["progress"] is not None and report["probe"]
    again = trainwatch.Diagnosis.from_dict(report)
    assert through_a_file(again.to_dict()) == report
    assert again.verdict.exception is not None and again.verdict.exception.type == "IndexError"


def test_from_dict_reads_odd_reports_as_absent_fields():
    odd = trainwatch.Diagnosis.from_dict(
        {"verdict": {"category": "made-up", "confidence": "x"}, "exit": [], "culprit": 3}
    )
    assert odd.verdict.category == "unknown" and odd.exit is None and odd.verdict.culprit is None


# ---- watch --------------------------------------------------------------------------------------
def test_watch_shows_the_report_when_the_block_fails_and_raises_again(capsys):
    with pytest.raises(ZeroDivisionError), trainwatch.watch(interval=0.05) as w:
        for step in range(1, 4):
            print(f"epoch 1/5 step {step}/100 loss {1 / step:.3f}")
        print("partial line without end", file=sys.stderr, end="")
        1 / 0  # noqa: B018
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"epoch 1/5 step {s}/100 loss {1 / s:.3f}" for s in (1, 2, 3)]
    assert err.startswith("partial line without end")  # every byte still reached the stream
    assert "trainwatch report" in err and "ZeroDivisionError" in err
    d = w.diagnosis
    assert d.exit is None and d.verdict.exception.type == "ZeroDivisionError"
    assert d.evidence.progress.stopped_at == "epoch 1/5, step 3/100"
    assert [round(v, 3) for _, v in d.evidence.progress.losses] == [1.0, 0.5, 0.333]
    assert d.evidence.memory.sample_count >= 1 and d.evidence.memory.peak_rss_bytes > 0
    assert sys.stdout is not w._tees and not w._tees  # the streams are the block's again


def test_watch_explicit_progress_finds_a_nan_loss(capsys):
    with trainwatch.watch(interval=0.05) as w:
        for step in range(1, 4):
            w.progress(step=step, steps=50, loss=math.nan if step == 3 else 0.7)
    assert w.diagnosis.verdict.subtype == "numerical/nan-loss"
    out, err = capsys.readouterr()
    assert out == ""  # progress() prints nothing
    assert "numerical/nan-loss" in err  # a quiet failure is a failure: the report is shown


def test_watch_a_clean_block_shows_nothing(capsys):
    with trainwatch.watch(interval=0.05):
        print("step 5/5 loss 0.1")
    assert capsys.readouterr().err == ""


def test_watch_a_clean_block_completes(capsys):
    with trainwatch.watch(show="always", interval=0.05) as w:
        print("epoch 2/2 step 10/10 loss 0.1")
    assert w.diagnosis.exit.status == 0 and w.diagnosis.verdict.category == "completed"
    assert "✓ completed" in capsys.readouterr().err


def test_watch_sys_exit_is_an_exit_status(capsys):
    with pytest.raises(SystemExit), trainwatch.watch(show="never", interval=0.05) as w:
        sys.exit(3)
    assert w.diagnosis.exit.code == 3


def test_render_text_and_html_are_redacted(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef0123456789abcdef")
    try:
        raise ValueError("login failed with key 0123456789abcdef0123456789abcdef")
    except ValueError as exc:
        diagnosis = trainwatch.diagnose(exc)
    for form in ("text", "html"):
        page = trainwatch.render(diagnosis, form)
        assert "ValueError" in page and "0123456789abcdef0123456789abcdef" not in page
    assert trainwatch.render(diagnosis, "html").startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError):
        trainwatch.render(diagnosis, "pdf")


def test_a_tensorboard_event_file_of_its_own_is_read_by_tensorboard_without_torch(tmp_path):
    """`--attach-to tensorboard` writes in trainwatch's own process, which never imports torch: the
    event file is framed and encoded by trainwatch, and TensorBoard's own loader (which checks each
    record's CRC) reads it back."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    from trainwatch.integrations.trackers import TEXT_TAG, report_markdown, to_tensorboard

    torch_before = "torch" in sys.modules
    diagnosis = corpus_diagnosis(CORPUS_LOGS / "T001.log")
    assert to_tensorboard(diagnosis, log_dir=str(tmp_path / "tb"), step=7)
    if not torch_before:
        assert "torch" not in sys.modules
    (path,) = (tmp_path / "tb").iterdir()
    assert path.name.startswith("events.out.tfevents.")
    events = list(EventFileLoader(str(path)).Load())
    assert events[0].file_version == "brain.Event:2"
    (value,) = events[1].summary.value
    assert (value.tag, events[1].step) == (TEXT_TAG + "/text_summary", 7)
    assert value.metadata.plugin_data.plugin_name == "text"
    assert value.tensor.string_val[0].decode() == report_markdown(diagnosis)
