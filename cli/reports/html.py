"""The HTML report (`--html FILE`): one self-contained page (no script, no network) with inline SVG
charts.

The page holds the verdict, its evidence, the culprit with its source around it, the advice, the
environment, a chart of memory (the process tree's RSS and GPU memory, against their limits) and
one of the loss, and the last lines of output. A Content-Security-Policy forbids every fetch, so
the page cannot reach out even by mistake.
"""

from __future__ import annotations

import math
import os
from html import escape

from trainwatch.cli.reports.github import output_tail
from trainwatch.cli.reports.outline import Item, Outline, Section, human_bytes, number, peak_words
from trainwatch.cli.reports.svgchart import Series, line_chart
from trainwatch.diagnostics.redaction import redact_text
from trainwatch.diagnostics.verdict import Diagnosis

SOURCE_CONTEXT = 5  # lines shown on each side of the culprit's line
TAIL_LINES = 80
CHART_POINTS = 600  # at most this many points per series: the charts stay small in any run

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;
  background:#f6f7f9;color:#1d2329}
main{max-width:1080px;margin:0 auto;padding:24px}
header{border-radius:10px;padding:18px 22px;color:#fff;background:#b3261e}
header.bad{background:#b3261e} header.warn{background:#a15c00} header.ok{background:#1e7b34}
header h1{margin:0 0 4px;font-size:24px} header .meta{opacity:.9}
section{background:#fff;border:1px solid #dde1e6;border-radius:10px;padding:14px 20px;margin:16px 0}
h2{font-size:17px;margin:0 0 10px}
code,pre{font:13px/1.4 ui-monospace,'DejaVu Sans Mono',monospace}
pre{background:#f1f3f5;padding:10px;border-radius:6px;overflow-x:auto;white-space:pre-wrap;
  word-break:break-all}
.src{background:#f1f3f5;border-radius:6px;padding:6px 0;overflow-x:auto}
.src div{white-space:pre;font:13px/1.45 ui-monospace,'DejaVu Sans Mono',monospace;padding:0 10px}
.src .hit{background:#ffd8d6;font-weight:bold}
.src .no{color:#7a828a;display:inline-block;width:4.5em}
.dim{color:#5f6a74} ul{padding-left:20px} li{margin:3px 0}
table{border-collapse:collapse} td{padding:3px 14px 3px 0;vertical-align:top}
td:first-child{color:#5f6a74}
.charts{display:flex;flex-wrap:wrap;gap:16px} .charts figure{margin:0;flex:1 1 480px}
figcaption{font-weight:600;margin-bottom:6px}
"""


def html_report(diagnosis: Diagnosis, view: Outline) -> str:
    """The whole page as a string."""
    meta = [view.confidence] + ([view.exit] if view.exit else [])
    if view.policy_note:
        meta.append(view.policy_note)
    if diagnosis.duration_s is not None:
        meta.append(f"ran {diagnosis.duration_s:.1f} s")
    parts = [
        f'<header class="{view.tone}" id="verdict"><h1>{view.mark} {escape(view.label)}</h1>'
        f'<div class="summary">{escape(view.summary)}</div><div '
        f'class="meta">{escape(" · ".join(meta))}</div></header>'
    ]
    saved = diagnosis.to_dict()  # the facts as the report keeps them: a saved report draws the same
    for section in view.sections:
        parts.append(_section(section.title, _body(section, diagnosis, saved)))
    parts.append(_section("Environment", _environment(diagnosis, saved, view.status)))
    tail = output_tail(diagnosis, TAIL_LINES)
    if tail:
        parts.append(_section("Last lines of output", f"<pre>{escape(tail)}</pre>"))
    title = f"trainwatch: {view.label}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src '
        "'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body><main>\n"
        + "\n".join(parts)
        + f'\n<p class="dim">trainwatch '
        f"{escape(diagnosis.trainwatch_version)}</p></main></body></html>\n"
    )


def _body(section: Section, diagnosis: Diagnosis, saved: dict) -> str:
    """One section of the outline as HTML: its rows, or for the run its charts and rows."""
    if section.key == "culprit" and diagnosis.verdict.culprits:
        return "".join(_culprit(c) for c in diagnosis.verdict.culprits)
    rows = [item for item in section.items if item.chart is None]
    html = ""
    if section.key == "run":
        charts = [
            c for c in (memory_chart(saved.get("memory")), loss_chart(saved.get("progress"))) if c
        ]
        if charts:
            html += '<div class="charts">' + "".join(charts) + "</div>"
    if section.key in ("evidence", "cascade"):
        return html + _cited_list(rows)
    tag = "ol" if section.numbered else "ul"
    listed = [i for i in rows if not (section.numbered and i.style == "dim")]
    after = [i for i in rows if section.numbered and i.style == "dim"]
    if listed:
        html += f"<{tag}>" + "".join(f"<li>{escape(i.text)}</li>" for i in listed) + f"</{tag}>"
    html += "".join(f'<p class="dim">{escape(i.text)}</p>' for i in after)
    return html


def memory_chart(memory: dict | None) -> str:
    """The tree's RSS and the GPU memory over the run (the report's `memory`), with the memory
    limit and the GPUs' size; "" without data."""
    samples = [m for m in (memory or {}).get("samples") or () if isinstance(m, dict)]
    if memory is None or len(samples) < 2:
        return ""
    xs = [number(m.get("t")) or 0.0 for m in samples]
    rss = [number(m.get("rss_bytes")) or 0.0 for m in samples]
    gpu = [number(m.get("gpu_used_bytes")) for m in samples]
    has_gpu = any(g is not None for g in gpu)
    gpu = [g or 0.0 for g in gpu]
    series = [Series("process tree RSS", "#1f6feb", list(zip(xs, rss, strict=False)))]
    if has_gpu:
        series.append(Series("GPU memory used", "#8250df", list(zip(xs, gpu, strict=False))))
    peak = max(max(rss), max(gpu) if has_gpu else 0)
    limits = []
    if limit := number(memory.get("limit_bytes")):
        limits.append(("memory limit", limit, "#b3261e"))
    gpu_total = _gpu_total(memory)
    if has_gpu and gpu_total:
        limits.append(("GPU size", gpu_total, "#a15c00"))
    off_chart = []
    for label, value, colour in limits:
        # A limit far above the run's peak would flatten the lines to nothing: name it instead of
        # drawing it.
        if value <= 4 * max(peak, 1):
            series.append(
                Series(
                    f"{label} {human_bytes(value)}",
                    colour,
                    [(xs[0], value), (xs[-1], value)],
                    dashed=True,
                )
            )
        else:
            off_chart.append(f"{label} {human_bytes(value)} (off the chart)")
    svg = line_chart(series, x_label="seconds", y_format=human_bytes, title="Memory over time")
    caption = "Memory" + (
        f' <span class="dim">· {escape(", ".join(off_chart))}</span>' if off_chart else ""
    )
    return f"<figure><figcaption>{caption}</figcaption>{svg}</figure>"


def loss_chart(progress: dict | None) -> str:
    """The training loss by step (the report's `progress`); NaN and infinite values are red marks
    along the top; "" without losses."""
    if not progress:
        return ""
    first = progress.get("first_nonfinite_loss")
    first = first if isinstance(first, dict) else None
    losses = [
        (int(s), v)
        for pair in progress.get("losses") or ()
        if isinstance(pair, list | tuple) and len(pair) == 2
        and (s := number(pair[0])) is not None and math.isfinite(s)
        and (v := number(pair[1])) is not None
    ]  # fmt: skip
    if not (losses or first):
        return ""
    if len(losses) > CHART_POINTS:
        step = len(losses) / CHART_POINTS
        losses = [losses[int(i * step)] for i in range(CHART_POINTS)] + [losses[-1]]
    finite = [(s, v) for s, v in losses if math.isfinite(v)]
    bad = [s for s, v in losses if not math.isfinite(v)]
    if first is not None and first.get("step") not in bad:
        bad.insert(0, first.get("step"))  # the tracker keeps NaN out of the series: where it began
    positive = [v for _, v in finite if v > 0]
    log_scale = (
        len(positive) == len(finite) and len(finite) > 1 and max(positive) / min(positive) > 100
    )
    series = [Series("training loss", "#1e7b34", finite)] if finite else []
    svg = line_chart(
        series,
        x_label="step",
        y_format=lambda y: f"{y:.3g}",
        title="Loss over time",
        log_y=log_scale,
        marks=bad,
        mark_label="NaN/Inf",
    )
    caption = "Loss" + (" (log scale)" if log_scale else "")
    if bad:
        caption += f' <span class="dim">· first non-finite value at step {bad[0]}</span>'
    return f"<figure><figcaption>{caption}</figcaption>{svg}</figure>"


def _gpu_total(memory: dict) -> float | None:
    gpu = memory.get("gpu")
    if not isinstance(gpu, dict):
        return None
    devices = gpu.get("peak_devices") or gpu.get("devices") or ()
    return sum(number(d.get("total_bytes")) or 0 for d in devices if isinstance(d, dict)) or None


def _section(title: str, body: str) -> str:
    return f"<section><h2>{escape(title)}</h2>{body}</section>"


def _cited_list(items: list[Item]) -> str:
    return (
        "<ul>"
        + "".join(
            f"<li><code>{escape(i.text[:2000])}</code>"
            + (f' <span class="dim">({escape(i.source)})</span>' if i.source else "")
            + "</li>"
            for i in items
        )
        + "</ul>"
    )


def _culprit(culprit) -> str:
    said = "; ".join(part for part in (culprit.process, culprit.note) if part)
    head = (
        f"<p><code>{escape(culprit.file)}:{culprit.line}</code> in "
        f"<code>{escape(culprit.function)}</code>"
        + (f' <span class="dim">({escape(said)})</span>' if said else "")
        + "</p>"
    )
    lines = _source_lines(culprit.file, culprit.line)
    if lines:
        rows = "".join(
            f'<div class="{"hit" if n == culprit.line else ""}"><span class="no">{n}</span>'
            f"{escape(text)}</div>"
            for n, text in lines
        )
        return head + f'<div class="src">{rows}</div>'
    if culprit.code:
        return head + f"<pre>{escape(culprit.code)}</pre>"
    return head


def _source_lines(path: str, line: int) -> list[tuple[int, str]]:
    """The culprit's line and its neighbours from the file, redacted; [] when the file cannot be
    read.
    """
    try:
        if os.path.getsize(path) > 5_000_000:
            return []
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read().splitlines()
    except (OSError, ValueError):
        return []
    if not 1 <= line <= len(text):
        return []
    lo, hi = max(1, line - SOURCE_CONTEXT), min(len(text), line + SOURCE_CONTEXT)
    return [(n, redact_text(text[n - 1].rstrip())) for n in range(lo, hi + 1)]


def _environment(diagnosis, saved: dict, status: int) -> str:
    """What ran, where and with what (from the report's sections): never the environment
    variables themselves."""
    rows = []
    if diagnosis.command:
        rows.append(("command", " ".join(diagnosis.command)))
    if diagnosis.sources:
        rows.append(("logs", ", ".join(diagnosis.sources)))
    if diagnosis.started_at:
        rows.append(("started", diagnosis.started_at))
    rows.append(("trainwatch exit status", str(status)))
    progress = saved.get("progress") if isinstance(saved.get("progress"), dict) else {}
    if progress.get("stopped_at"):
        rows.append(("stopped at", str(progress["stopped_at"])))
    probe = saved.get("probe") if isinstance(saved.get("probe"), dict) else {}
    processes = [p for p in probe.get("processes") or () if isinstance(p, dict)]
    if processes:
        first = processes[0]
        where = f" ({first['executable']})" if first.get("executable") else ""
        rows.append(("python", f"{first.get('python')}{where}"))
        rows.append(("python processes", str(len(processes))))
    torch = probe.get("torch")
    if isinstance(torch, dict):
        rows.append(
            (
                "torch",
                " · ".join(
                    f"{k} {torch[k]}"
                    for k in ("version", "cuda", "cudnn", "hip")
                    if torch.get(k) is not None
                ),
            )
        )
        if torch.get("devices"):
            rows.append(("devices", ", ".join(map(str, torch["devices"]))))
    memory = saved.get("memory") if isinstance(saved.get("memory"), dict) else None
    if memory is not None:
        rows.append(
            (
                "memory peak",
                peak_words(memory)
                + (f" ({memory['limit_source']})" if memory.get("limit_source") else ""),
            )
        )
        if memory.get("memory_total_bytes"):
            rows.append(("machine memory", human_bytes(memory["memory_total_bytes"])))
        gpu = memory.get("gpu") if isinstance(memory.get("gpu"), dict) else {}
        for d in gpu.get("peak_devices") or gpu.get("devices") or ():
            rows.append(
                (
                    f"GPU {d.get('index')}",
                    f"{d.get('name')}: peak {human_bytes(d.get('used_bytes'))} of "
                    f"{human_bytes(d.get('total_bytes'))}",
                )
            )
    return (
        "<table>"
        + "".join(
            f"<tr><td>{escape(k)}</td><td><code>{escape(val)}</code></td></tr>" for k, val in rows
        )
        + "</table>"
    )
