"""The report contract: the JSON fields of docs/report.md, and the terminal report rendered at a
fixed width.
"""

from __future__ import annotations

import io

from rich.console import Console

from trainwatch.cli.reports.outline import outline, sparkline
from trainwatch.cli.reports.terminal import one_line, report
from trainwatch.diagnostics.evidence import Evidence, ExitStatus
from trainwatch.diagnostics.verdict import (
    CATEGORIES,
    Alternative,
    Cited,
    Culprit,
    Diagnosis,
    Verdict,
)

REQUIRED = {
    "schema",
    "trainwatch_version",
    "command",
    "started_at",
    "duration_s",
    "exit",
    "verdict",
    "evidence",
    "culprit",
    "exception",
    "memory",
    "advice",
}


def _diagnosis() -> Diagnosis:
    verdict = Verdict(
        "oom",
        "oom/gpu",
        0.93,
        "CUDA ran out of memory allocating 2.00 GiB.",
        signature="cuda-out-of-memory",
        alternatives=(
            Alternative("code", None, 0.2, "A leak of graph references could grow memory."),
        ),
        evidence=(
            Cited(
                "exception",
                "torch.OutOfMemoryError: CUDA out of memory. [x] Tried 2.00 GiB",
                "line 40",
            ),
        ),
        culprit=Culprit("train.py", 42, "step", "loss = model(x)"),
        advice=("Halve the batch size.",),
    )
    return Diagnosis(
        "0.1.0",
        ("python3", "train.py"),
        None,
        12.5,
        ExitStatus.from_returncode(1),
        verdict,
        Evidence(source="run"),
    )


def _render(renderable) -> str:
    console = Console(file=io.StringIO(), width=100, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.file.getvalue()


def test_terminal_report_shows_verdict_evidence_culprit_advice_and_alternatives():
    text = _render(report(outline(_diagnosis(), 1)))
    lines = text.splitlines()
    assert "trainwatch report" in lines[0]
    assert lines[1].startswith("✗ oom/gpu · 93% sure · exit 1")
    assert "CUDA ran out of memory allocating 2.00 GiB." in text
    assert "[x] Tried 2.00 GiB" in text  # user text is shown literally, never read as markup
    assert "train.py:42 in step" in text and "loss = model(x)" in text
    assert "1. Halve the batch size." in text
    assert "code (20%)" in text
    assert all(len(line) <= 100 for line in lines)


def test_a_stderr_that_cannot_encode_the_glyphs_gets_them_in_ascii(monkeypatch):
    # LC_ALL=C with PYTHONUTF8=0: stderr is ASCII, and Python would write `\u2717` in their place
    from trainwatch.cli.reports import print_terminal

    raw = io.BytesIO()
    ascii_stderr = io.TextIOWrapper(raw, encoding="ascii", errors="backslashreplace")
    monkeypatch.setattr("sys.stderr", ascii_stderr)
    print_terminal(outline(_diagnosis(), 1))
    ascii_stderr.flush()
    text = raw.getvalue().decode("ascii")
    assert "x oom/gpu - 93% sure - exit 1" in text
    assert "\\u" not in text and "\\x" not in text
    assert "  * " in text  # the evidence's bullets


def test_advice_is_shown_whole_and_the_program_s_words_are_clipped():
    from dataclasses import replace

    base = _diagnosis()
    advice = "Start every rank " + "and check it " * 30 + "or unset those variables."
    said = "RuntimeError: " + "x" * 400
    verdict = replace(
        base.verdict, advice=(advice,), evidence=(Cited("exception", said, "line 1"),)
    )
    text = _render(report(outline(replace(base, verdict=verdict), 1)))
    flat = " ".join(text.split())
    assert "or unset those variables." in flat
    assert "x" * 400 not in flat and "…" in flat


def test_quiet_line_is_one_line():
    text = _render(one_line(outline(_diagnosis(), 1)))
    assert text.count("\n") == 1
    assert text.startswith("trainwatch: ✗ oom/gpu")


def test_no_control_character_from_the_program_reaches_the_terminal():
    """The program's words are shown, never obeyed: ESC, CSI (U+009B, a C1 control), NUL and DEL
    are dropped from every row, the summary and the quiet line; tabs and text stay."""
    from dataclasses import replace

    hostile = "boom\x9b2J\x1b]0;owned\x07 \x00\x7fend\x85"
    base = _diagnosis()
    verdict = replace(
        base.verdict,
        summary=f"Summary {hostile}",
        evidence=(Cited("exception", f"RuntimeError: {hostile}", f"line 4 {hostile}"),),
        culprit=Culprit("train.py", 42, "step", f"x = {hostile}"),
    )
    view = outline(replace(base, verdict=verdict), 1)
    for text in (_render(report(view)), _render(one_line(view))):
        assert not any(0x80 <= ord(c) < 0xA0 or (ord(c) < 0x20 and c not in "\n") for c in text)
        assert "\x7f" not in text
        assert "boom2J]0;owned end" in text


def test_a_saved_report_renders_the_duration_the_run_printed():
    """A run of 1.1501 s printed "ran 1.2 s" while its JSON kept 1.15 (which reads 1.1 s), so
    `trainwatch report` of the saved JSON told another time; the duration is now kept as saved."""
    from dataclasses import replace

    ran = replace(_diagnosis(), duration_s=1.1501)
    saved = Diagnosis.from_dict(ran.to_dict())
    assert saved.duration_s == ran.duration_s
    assert "ran 1.1 s" in _render(report(outline(saved, 1)))
    assert _render(report(outline(saved, 1))) == _render(report(outline(ran, 1)))


def test_sparkline_marks_non_finite_values():
    assert sparkline([1, 2, 3, float("nan")]) == "▁▅█!"
    assert sparkline([]) == ""


def test_verdict_refuses_unknown_categories():
    import pytest

    assert "early-exit" in CATEGORIES
    with pytest.raises(ValueError):
        Verdict("memory", None, 0.5, "x")
    with pytest.raises(ValueError):
        Verdict("oom", "gpu", 0.5, "x")


def test_a_hand_edited_report_s_numbers_of_the_wrong_type_are_read_as_absent_in_every_format():
    # (`"big"` for a byte count or a checkpoint count once ended `trainwatch report` with its own
    # TypeError, exit 70)
    from trainwatch.cli.reports.github import step_summary
    from trainwatch.cli.reports.html import html_report
    from trainwatch.cli.reports.junit import junit_xml

    edited = {
        "verdict": {"category": "oom", "subtype": "oom/host", "confidence": 0.9, "summary": "OOM"},
        "exit": {"code": 137, "signal": "SIGKILL", "status": 137},
        "duration_s": 12.0,
        "memory": {"peak_bytes": "big", "limit_bytes": "8G", "memory_total_bytes": [],
                   "samples": [{"t": "x", "rss_bytes": "y"}, {"t": 1.0, "rss_bytes": 2**20}]},
        "progress": {"losses": "x", "last_loss": "low", "stopped_at": "epoch 2/9"},
        "checkpoints": {"total": "many", "lost_s": "nan", "resume_from": {"path": "c.pt",
                        "ended": "late"}, "run_started": "long"},
    }  # fmt: skip
    diagnosis = Diagnosis.from_dict(edited)
    view = outline(diagnosis, 137)
    texts = [
        _render(report(view)),
        html_report(diagnosis, view),
        junit_xml(diagnosis, view),
        step_summary(diagnosis, view),
    ]
    assert all("oom/host" in text for text in texts)
    assert "? of ?" in texts[0] and "c.pt" in texts[0]  # the peak and limit: absent, not invented


def test_the_output_s_colour_codes_stay_out_of_the_junit_and_step_summary_tails():
    # a FORCE_COLOR job's escapes were raw in the step summary and U+FFFD in the JUnit XML (BU)
    import io

    from trainwatch.cli.reports.github import step_summary
    from trainwatch.cli.reports.junit import junit_xml
    from trainwatch.diagnostics.knowledge import load_knowledge
    from trainwatch.diagnostics.postmortem import explain_logs

    coloured = b"\x1b[32mepoch 1/3 loss 0.51\x1b[0m\n\x1b[1;31mValueError: bad label -1\x1b[0m\n"
    diagnosis = explain_logs(["-"], load_knowledge(include_user=False), stdin=io.BytesIO(coloured))
    view = outline(diagnosis, 1)
    for text in (junit_xml(diagnosis, view), step_summary(diagnosis, view)):
        assert "epoch 1/3 loss 0.51" in text
        assert "\x1b" not in text and "\ufffd" not in text and "[0m" not in text
