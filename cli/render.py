"""The terminal report: pure functions from a Diagnosis to rich renderables; printing is the
caller's.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.text import Text

from trainwatch.diagnostics.verdict import REPORT_BANNER, Diagnosis

SPARKS = "▁▂▃▄▅▆▇█"

# A colour per category: red for what broke, yellow for what stopped it from outside, green for
# success.
CATEGORY_STYLES = {
    "completed": "bold green",
    "interrupted": "bold yellow",
    "early-exit": "bold yellow",
    "hang": "bold yellow",
    "unknown": "bold magenta",
}


def report(diagnosis: Diagnosis) -> RenderableType:
    """The whole report, headline first."""
    v = diagnosis.verdict
    parts: list[RenderableType] = [Rule(Text(REPORT_BANNER, style="bold"), style="dim")]
    parts.append(headline(diagnosis))
    parts.append(Text(v.summary))
    if v.evidence:
        parts.append(_section("Evidence", [_cited(c) for c in v.evidence]))
    if v.cascade:
        parts.append(_section("Consequences (not the cause)", [_cited(c) for c in v.cascade]))
    if v.culprit is not None:
        culprit = Text(f"  {v.culprit.file}:{v.culprit.line} in {v.culprit.function}", style="bold")
        lines = [culprit]
        if v.culprit.code:
            lines.append(Text(f"    {v.culprit.code}", style="cyan"))
        parts.append(_section("Culprit", lines))
    context = _context_lines(diagnosis)
    if context:
        parts.append(_section("Run", context))
    if v.advice:
        parts.append(
            _section("What to do", [Text(f"  {i}. {a}") for i, a in enumerate(v.advice, 1)])
        )
    if v.doc_url:
        parts.append(Text(f"  See: {v.doc_url}", style="dim"))
    if v.alternatives:
        alts = [
            Text(f"  {a.subtype or a.category} ({a.confidence:.0%}): {a.summary}")
            for a in v.alternatives
        ]
        parts.append(_section("Also possible", alts))
    for note in diagnosis.evidence.notes:
        parts.append(Text(f"  note: {note}", style="dim"))
    parts.append(Rule(style="dim"))
    return Group(*parts)


def headline(diagnosis: Diagnosis) -> Text:
    """`✗ oom/gpu · 95% sure · exit 1`: the one line `--quiet` prints too."""
    v = diagnosis.verdict
    mark = "✓" if v.category == "completed" else "✗"
    style = CATEGORY_STYLES.get(v.category, "bold red")
    text = Text()
    text.append(f"{mark} {v.subtype or v.category}", style=style)
    text.append(f" · {v.confidence:.0%} sure", style="dim")
    if diagnosis.exit is not None:
        text.append(f" · {describe_exit(diagnosis)}", style="dim")
    return text


def one_line(diagnosis: Diagnosis) -> Text:
    """The verdict in one line, for `--quiet`."""
    text = Text("trainwatch: ")
    text.append_text(headline(diagnosis))
    text.append(f" · {diagnosis.verdict.summary}")
    return text


def describe_exit(diagnosis: Diagnosis) -> str:
    status = diagnosis.exit
    if status is None:
        return "exit unknown"
    if status.signal:
        return f"killed by {status.signal} (status {status.status})"
    return f"exit {status.code}"


def sparkline(values: tuple[float, ...] | list[float]) -> str:
    """Values as a row of block characters, scaled between their min and max."""
    finite = [v for v in values if v == v and v not in (float("inf"), float("-inf"))]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    out = []
    for v in values:
        if v != v or v in (float("inf"), float("-inf")):
            out.append("!")  # a NaN or an infinity: the point worth seeing
        else:
            out.append(
                SPARKS[min(len(SPARKS) - 1, int((v - low) / span * (len(SPARKS) - 1) + 0.5))]
            )
    return "".join(out)


def human_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _context_lines(diagnosis: Diagnosis) -> list[Text]:
    """Where the run was, its memory, how long it ran: each line only when known."""
    facts = diagnosis.evidence
    lines: list[Text] = []
    progress = facts.progress
    if progress is not None and getattr(progress, "stopped_at", None):
        lines.append(Text(f"  stopped at {progress.stopped_at}"))
    if progress is not None and hasattr(progress, "sparkline_values"):
        values = progress.sparkline_values(40)
        if values:
            lines.append(Text(f"  loss   {sparkline(values)}  last {values[-1]:.4g}"))
    memory = facts.memory
    if memory is not None:
        peak = getattr(memory, "peak_rss_bytes", None)
        limit = getattr(memory, "limit_bytes", None)
        line = Text(f"  memory peak {human_bytes(peak)} of {human_bytes(limit)}")
        if hasattr(memory, "timeline"):
            line.append(f"  {sparkline(memory.timeline(40))}")
        lines.append(line)
        gpu_values = memory.gpu_timeline(40) if hasattr(memory, "gpu_timeline") else ()
        if gpu_values:
            lines.append(
                Text(f"  GPU memory peak {human_bytes(max(gpu_values))}  {sparkline(gpu_values)}")
            )
    if diagnosis.duration_s is not None:
        lines.append(
            Text(f"  ran {diagnosis.duration_s:.1f} s · {describe_exit(diagnosis)}", style="dim")
        )
    return lines


def _section(title: str, rows: list[Text]) -> Group:
    return Group(Text(title, style="bold underline"), *rows)


def _cited(cited) -> Text:
    text = Text(f"  • {_clip(cited.text)}")
    text.append(f"  ({cited.kind} · {cited.source})", style="dim")
    return text


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
