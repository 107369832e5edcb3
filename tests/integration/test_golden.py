"""Golden outputs: what a user reads of eight real runs, in every layout (the terminal report at a
fixed width, the JSON report, the HTML page's structure), kept under tests/golden/ so that any
change to it is deliberate.

Each scenario runs once, for real, under `trainwatch run` (conftest.SHARED_RUNS: other tests read
the same runs); its outputs are scrubbed of what
changes from run to run (pids, paths, times, sizes, memory charts) and compared with the files.
To accept a change on purpose, regenerate them and read the diff (tests/golden/README.md):

    TRAINWATCH_GOLDEN=update .venv/bin/python -m pytest tests/integration/test_golden.py
"""

from __future__ import annotations

import json
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import ROOT, SHARED_RUN_ENV, SHARED_RUNS, trainwatch

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("TRAINWATCH_GOLDEN") == "update"
WIDTH = SHARED_RUN_ENV["COLUMNS"]

LAYOUTS = ("terminal.txt", "report.json", "page.txt")


# ---- scrubbing -----------------------------------------------------------------------------------
def scrubber(tmp: Path):
    """A function that rewrites what changes from run to run into stable placeholders."""
    venv = re.escape(str(Path(sys.executable).parent.parent))  # where the tests' Python lives
    replacements = [
        (re.escape(str(tmp)), "<TMP>"),
        (venv, "<VENV>"),
        (re.escape(str(ROOT)), "<ROOT>"),
        (r"/[^\s'\"():]*?/site-packages/", "<SITE>/"),
        (r"/[^\s'\"():]*?/lib/python3\.\d+/", "<STDLIB>/"),
        (r"\bpython3\.\d+/", "python3.X/"),
        (r"\b3\.\d+\.\d+ \(<VENV>", "3.X (<VENV>"),
        (r"\btrainwatch \d+\.\d+\.\d+\S*", "trainwatch <VERSION>"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?", "<DATE>"),
        (r"/tmp/[\w.\-/]+", "<TMP>"),
        (r"\bpids? \d+(?:, \d+)*", "pid <PID>"),
        (r"/proc/\d+/", "/proc/<PID>/"),
        (r"\b0x[0-9a-f]{6,}\b", "0x<TID>"),
        (r"\d+(?:\.\d+)? (?:B|KiB|MiB|GiB|TiB)\b", "<SIZE>"),
        # whether the peak sample caught the DataLoader's workers (a summed RSS, named so) or the
        # main process alone depends on timing: the measure's note is scrubbed (test_monitor.py)
        (r" \(summed RSS: shared pages counted in each process\)", ""),
        (r"(<SIZE>(?: of <SIZE>)?)  [▁▂▃▄▅▆▇█!]+", r"\1  <CHART>"),
        # which of a bar's redraws carry a loss depends on timing: the curve's glyphs, not its end
        (r"(loss   )[▁▂▃▄▅▆▇█]+(!?)  last", r"\1<CHART>\2  last"),
        (r"\b\d+ h \d+ min\b|\b\d+ min \d+ s\b|\b\d+(?:\.\d+)? s\b", "<TIME>"),
        (r"\d+(?:\.\d+)?(?:it/s|s/it)", "<RATE>"),
        (r"\b\d\d:\d\d(?::\d\d)?\b", "<CLOCK>"),
        # which of two streams' lines the parsers read last depends on how the pipes interleave
        (r"\b(?:stdout|stderr) line \d+", "<STREAM> line <N>"),
    ]
    compiled = [(re.compile(pattern), to) for pattern, to in replacements]

    def scrub(text: str) -> str:
        for pattern, to in compiled:
            text = pattern.sub(to, text)
        return text

    return scrub


# Report fields whose values are the run's own measurements: only their shape is kept.
MEASURED = {
    "started_at",
    "duration_s",
    "trainwatch_version",
    "memory",
    "probe",
    "stall",
    "checkpoints",
    "command",
    "sample",
}


def shape(value):
    """A measurement's shape: a section's field names, each field as `<measured>` (what a run of
    a fraction of a second measured at all depends on timing); else the type of its value."""
    if isinstance(value, dict):
        return dict.fromkeys(value, "<measured>")
    return f"<{type(value).__name__}>"


def run_notes(notes: list[str]) -> list[str]:
    """The notes about the run, without those about this machine (no memory cgroup here), which a
    run too short for a sample does not even get."""
    return [n for n in notes if "cgroup" not in n]


def _progress_value(key: str, value):
    if key in ("losses", "sparkline"):
        return "<measured>"
    if key == "last_loss" and isinstance(value, float):
        # to four figures: a float32 sum rounds differently with another CPU's vector width
        # (24523684 on one machine, 24523682 on another)
        return float(f"{value:.4g}")
    return value


def json_layout(report: dict, scrub) -> str:
    """The JSON report with its judgement exact (scrubbed of paths and pids) and its
    measurements as their shape."""
    out = {}
    for key, value in report.items():
        if key in MEASURED:
            out[key] = shape(value)
        elif key == "notes":
            out[key] = run_notes(value)
        elif key == "progress" and isinstance(value, dict):
            out[key] = {k: _progress_value(k, v) for k, v in value.items()}
        else:
            out[key] = value
    text = json.dumps(out, indent=2, ensure_ascii=False, sort_keys=False)
    return scrub(text) + "\n"


class _Structure(HTMLParser):
    """The page as an indented list of its elements (tag.class) and their words; the style sheet
    and each SVG chart as one line (a chart's points are measurements)."""

    VOID = {"meta", "br", "hr", "img", "input", "link"}
    OPAQUE = {"style", "svg"}

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.depth = 0
        self.inside: list[str] = []  # the opaque element being skipped, nested

    def handle_starttag(self, tag, attrs):
        if self.inside:
            if tag == self.inside[0]:
                self.inside.append(tag)
            return
        if tag in self.VOID:
            return
        classes = dict(attrs).get("class")
        self.lines.append("  " * self.depth + tag + (f".{classes}" if classes else ""))
        if tag in self.OPAQUE:
            self.inside.append(tag)
        else:
            self.depth += 1

    def handle_endtag(self, tag):
        if self.inside:
            if tag == self.inside[0]:
                self.inside.pop()
            return
        if tag not in self.VOID:
            self.depth = max(0, self.depth - 1)

    def handle_data(self, data):
        text = " ".join(data.split())
        if text and not self.inside:
            self.lines.append("  " * self.depth + "| " + text)


def page_layout(html: str, scrub) -> str:
    parser = _Structure()
    parser.feed(html)
    return scrub("\n".join(parser.lines)) + "\n"


def normalised(report: dict, scrub) -> dict:
    """The report with its words scrubbed and its measurements set to fixed values, so that the
    terminal lays out the same lines whatever the paths, pids and sizes of this run were."""

    def words(value):
        if isinstance(value, str):
            return scrub(value)
        if isinstance(value, dict):
            return {k: words(v) for k, v in value.items()}
        if isinstance(value, list):
            return [words(v) for v in value]
        return value

    out = words(report)
    out["duration_s"] = 1.0
    # Notes on the machine itself (no memory cgroup here) are not the run's.
    out["notes"] = run_notes(out["notes"])
    memory = out.get("memory")
    if isinstance(memory, dict):
        memory.update(peak_rss_bytes=2**30, limit_bytes=2**34)
        # Whether a run of a fraction of a second got its first sample depends on timing.
        memory["samples"] = [{"t": t, "rss_bytes": 2**30} for t in (0.0, 0.5, 1.0)]
    if isinstance(out.get("sample"), dict):
        out["sample"]["pid"] = 4242
    checkpoints = out.get("checkpoints")
    if isinstance(checkpoints, dict) and checkpoints.get("lost_s") is not None:
        checkpoints["lost_s"] = 1.0
    return out


def drawn_layouts(report: dict, scrub, tmp: Path) -> tuple[str, str]:
    """The terminal report at WIDTH columns and the HTML page's structure, drawn from the run's
    normalised JSON by `trainwatch report` (tests/integration/test_trust_runs.py shows that it
    draws exactly what the run printed; the page has no output tail, which the JSON does not
    keep)."""
    saved, page = tmp / "normalised.json", tmp / "normalised.html"
    saved.write_text(json.dumps(normalised(report, scrub)))
    drawn = trainwatch(
        "report", str(saved), "--html", str(page), env={"COLUMNS": WIDTH, "NO_COLOR": "1"}
    )
    assert drawn.returncode in (0, 3), drawn.stderr
    return scrub(drawn.stderr.decode()), page_layout(page.read_text(), scrub)


# ---- the test ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SHARED_RUNS))
def test_golden_outputs(name, tmp_path, shared_run):
    run = shared_run(name)
    scrub = scrubber(run.folder)
    saved = run.report
    terminal, page = drawn_layouts(saved, scrub, tmp_path)
    outputs = {"terminal.txt": terminal, "report.json": json_layout(saved, scrub), "page.txt": page}
    folder = GOLDEN / name
    if UPDATE:
        folder.mkdir(parents=True, exist_ok=True)
        for layout, text in outputs.items():
            (folder / layout).write_text(text, encoding="utf-8")
        return
    for layout in LAYOUTS:
        expected = (folder / layout).read_text(encoding="utf-8")
        assert outputs[layout] == expected, (
            f"{name}/{layout} differs from tests/golden/{name}/{layout}; if the change is meant, "
            "regenerate with TRAINWATCH_GOLDEN=update (tests/golden/README.md)"
        )


def test_every_scenario_has_its_golden_files():
    kept = {p.name for p in GOLDEN.iterdir() if p.is_dir()}
    assert kept == set(SHARED_RUNS)
    for name in SHARED_RUNS:
        assert {p.name for p in (GOLDEN / name).iterdir()} == set(LAYOUTS)
