"""The HTML report: self-contained, rendered by a real headless Chromium, with the verdict and SVG
charts.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from trainwatch.cli.reports.html import html_report, loss_chart, memory_chart
from trainwatch.cli.reports.outline import outline
from trainwatch.cli.reports.svgchart import nice_ticks
from trainwatch.diagnostics.evidence import Evidence, ExitStatus
from trainwatch.diagnostics.verdict import Cited, Diagnosis, Verdict
from trainwatch.diagnostics.watch.gpu import GpuDevice, GpuFacts
from trainwatch.diagnostics.watch.monitor import MemoryFacts
from trainwatch.diagnostics.watch.sampling import Sample

from conftest import SCRIPTS, trainwatch

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
GIB = 2**30


def _chromium(tmp_path, page, *mode: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1200,1600",
            *mode,
            page.as_uri(),
        ],
        capture_output=True,
        timeout=90,
        cwd=tmp_path,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_a_real_runs_page_renders_in_chromium_with_verdict_and_charts(tmp_path):
    page = tmp_path / "report.html"
    result = trainwatch(
        "run", "-q", "--interval", "0.05", "--html", str(page), str(SCRIPTS / "ci_train.py"), "nan"
    )
    assert result.returncode == 0
    dom = _chromium(tmp_path, page, "--dump-dom").stdout.decode()
    verdict = re.search(r'<header class="warn" id="verdict"><h1>✗ ([^<]+)</h1>', dom)
    assert verdict and verdict.group(1) == "numerical/nan-loss"
    # the summary the terminal printed is the page's summary too
    summary = result.stderr.decode().rsplit(" · ", 1)[-1].strip()
    assert summary.startswith("The loss") and summary in dom
    charts = re.findall(r'<svg [^>]*aria-label="([^"]+)"', dom)
    assert charts == ["Memory over time", "Loss over time"]
    # the RSS and loss lines, the NaN mark
    assert dom.count('class="series"') >= 2 and 'class="mark"' in dom
    _chromium(tmp_path, page, "--screenshot=shot.png")
    shot = tmp_path / "shot.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def _memory(gpu: bool) -> MemoryFacts:
    samples = tuple(
        Sample(
            time=1000.0 + t,
            elapsed=t * 0.5,
            processes=(),
            tree_rss_bytes=(1 + t) * GIB // 4,
            cpu_seconds=t,
            available_bytes=None,
            gpu_used_bytes=(t * GIB) if gpu else None,
        )
        for t in range(12)
    )
    facts = (
        GpuFacts(
            devices=(GpuDevice(0, "Test GPU", 11 * GIB, 16 * GIB, 90),), peak_used_bytes=11 * GIB
        )
        if gpu
        else None
    )
    return MemoryFacts(
        interval_s=0.5,
        sample_count=12,
        samples=samples,
        peak_rss_bytes=3 * GIB,
        limit_bytes=4 * GIB,
        limit_source="cgroup",
        gpu=facts,
    )


def test_memory_chart_draws_rss_gpu_and_their_limits():
    svg = memory_chart(_memory(gpu=True).to_dict())
    assert svg.count('class="series"') == 4  # RSS, GPU, the memory limit, the GPU's size
    assert (
        "memory limit 4.0 GiB" in svg
        and "GPU size 16.0 GiB" in svg
        and 'stroke-dasharray="6 4"' in svg
    )
    only_rss = memory_chart(_memory(gpu=False).to_dict())
    assert only_rss.count('class="series"') == 2 and "GPU" not in only_rss
    assert memory_chart(None) == ""


def test_a_page_is_self_contained_and_escapes_what_it_shows():
    verdict = Verdict(
        category="oom",
        subtype="oom/host",
        confidence=0.9,
        summary="<script>alert(1)</script> died",
        evidence=(Cited("memory", "at the limit & beyond", "samples"),),
    )
    diagnosis = Diagnosis(
        trainwatch_version="0",
        command=("python3", "train.py"),
        started_at=None,
        duration_s=6.0,
        exit=ExitStatus(None, "SIGKILL", 137),
        verdict=verdict,
        evidence=Evidence(source="run", memory=_memory(gpu=True)),
    )
    page = html_report(diagnosis, outline(diagnosis, 137))
    assert (
        "<script>" not in page and "&lt;script&gt;" in page and "at the limit &amp; beyond" in page
    )
    assert "default-src 'none'" in page
    assert not re.search(r"(?:src|href)=|@import|url\(", page)  # nothing to fetch
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)
    assert "<svg" in page and "killed by SIGKILL" in page


def test_loss_chart_and_ticks():
    from trainwatch.diagnostics.read.progress import ProgressFacts, ProgressPosition

    progress = ProgressFacts(
        stopped_at=None,
        position=ProgressPosition(),
        finished=None,
        losses=tuple((s, 10.0**-s) for s in range(6)),
    )
    svg = loss_chart(progress.to_dict())
    assert 'class="series"' in svg and "(log scale)" in svg  # five decades: a log axis
    assert loss_chart(None) == ""
    assert nice_ticks(0, 10) == [0, 2.5, 5, 7.5, 10]
