"""The one outline of every report: which sections, in which order, with which titles and units.

Each format (terminal, JUnit, HTML, GitHub step summary) walks the same `Outline`, so a section
added or renamed here appears everywhere at once; a format only decides how a section looks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trainwatch.diagnostics.evidence import UNKNOWN_FUNCTION
from trainwatch.diagnostics.units import human_bytes
from trainwatch.diagnostics.verdict import Diagnosis

__all__ = [
    "Item",
    "Outline",
    "Section",
    "describe_exit",
    "human_bytes",
    "number",
    "outline",
    "sparkline",
]

SPARKS = "▁▂▃▄▅▆▇█"
ITEM_FUNCTIONS = ("__getitem__", "__getitems__")  # the call that names the sample
SPARK_POINTS = 40


@dataclass(frozen=True)
class Item:
    """One row of a section: a line of evidence, an advice, a fact about the run."""

    text: str
    source: str | None = None  # where the evidence was seen: "exception · line 40"
    code: str | None = None  # a source line shown under the row (the culprit's)
    style: str | None = None  # a hint for formats that style rows: "dim", "strong"
    chart: str | None = None  # "loss", "memory", "gpu": a row that is a chart drawn in text
    link: bool = False  # the row is a link (the advice's documentation): left out of notifications


@dataclass(frozen=True)
class Section:
    """A titled part of the report."""

    key: str  # stable: "evidence", "culprit", "cascade", "run", "advice", "alternatives", "notes"
    title: str
    items: tuple[Item, ...]
    numbered: bool = False  # advice is a list of steps


@dataclass(frozen=True)
class Outline:
    """A report before it is drawn: the headline, then the sections, each only when it has rows."""

    label: str  # "oom/gpu", or the category when there is no subtype
    category: str
    tone: str  # "bad" (it failed), "warn" (it ended but not as it should), "ok"
    confidence: str  # "95% sure"
    exit: str | None  # "exit 1", "killed by SIGKILL (status 137)"; None for a saved log
    summary: str
    status: int  # what trainwatch exits with
    policy_note: str | None  # why trainwatch's status differs from the program's (--fail-on)
    sections: tuple[Section, ...]

    @property
    def mark(self) -> str:
        return "✓" if self.tone == "ok" else "✗"

    @property
    def headline(self) -> str:
        """`✗ oom/gpu · 95% sure · exit 1`."""
        parts = [f"{self.mark} {self.label}", self.confidence] + ([self.exit] if self.exit else [])
        return " · ".join(parts)

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)

    def text(
        self,
        sections: tuple[str, ...] | None = None,
        per_section: int | None = None,
        headline: bool = True,
    ) -> str:
        """The report as plain text (JUnit bodies, notifications): no colour, no layout.

        `sections` keeps only those keys (in the outline's order), `per_section` the first rows
        of each; a notification asks for both, and gets no links (the advice's "See:" row). A
        notification shows the headline as its title, so it leaves it out here."""
        lines = ([self.headline] if headline else []) + [self.summary]
        if self.policy_note:
            lines.append(self.policy_note)
        for section in self.sections:
            if sections is not None and section.key not in sections:
                continue
            items = section.items
            if sections is not None:
                items = tuple(i for i in items if not i.link)
            lines += ["", f"{section.title}:"]
            for number, item in enumerate(items[:per_section], 1):
                lead = f"  {number}. " if section.numbered and item.style != "dim" else "  - "
                lines.append(lead + item.text + (f"  ({item.source})" if item.source else ""))
                if item.code:
                    lines.append(f"      {item.code}")
        return "\n".join(lines)


# Section titles, written once for every format.
TITLES = {
    "evidence": "Evidence",
    "culprit": "Culprit",
    "sample": "Sample that failed",
    "cascade": "Consequences (not the cause)",
    "run": "Run",
    "checkpoints": "Work lost",
    "advice": "What to do",
    "alternatives": "Also possible",
    "notes": "Notes",
}


def outline(diagnosis: Diagnosis, status: int) -> Outline:
    """The report of a (redacted) diagnosis, for trainwatch exiting with `status`."""
    from trainwatch.cli.exitpolicy import failed, policy_note

    v = diagnosis.verdict
    tone = "bad" if failed(diagnosis, status) else ("ok" if v.category == "completed" else "warn")
    policy = policy_note(diagnosis, status)
    # The facts sections are read from the JSON report, so that a saved report (`trainwatch
    # report`) draws exactly what the run drew.
    saved = diagnosis.to_dict()
    sections = [
        Section("evidence", TITLES["evidence"], tuple(_cited(c) for c in v.evidence)),
        Section("culprit", TITLES["culprit"], _culprit(diagnosis)),
        Section("sample", TITLES["sample"], _sample(saved.get("sample"))),
        Section("cascade", TITLES["cascade"], tuple(_cited(c) for c in v.cascade)),
        Section("run", TITLES["run"], _run(diagnosis, saved)),
        Section("checkpoints", TITLES["checkpoints"], _checkpoints(diagnosis, saved)),
        Section("advice", TITLES["advice"], _advice(diagnosis), numbered=True),
        Section("alternatives", TITLES["alternatives"], _alternatives(diagnosis)),
        Section(
            "notes", TITLES["notes"], tuple(Item(n, style="dim") for n in diagnosis.evidence.notes)
        ),
    ]
    return Outline(
        label=v.subtype or v.category,
        category=v.category,
        tone=tone,
        confidence=f"{v.confidence:.0%} sure",
        exit=describe_exit(diagnosis) if diagnosis.exit is not None else None,
        summary=v.summary,
        status=status,
        policy_note=policy,
        sections=tuple(s for s in sections if s.items),
    )


def _cited(cited) -> Item:
    return Item(cited.text, source=f"{cited.kind} · {cited.source}")


def _culprit(diagnosis: Diagnosis) -> tuple[Item, ...]:
    """Each culprit frame, the main one first; whose it is and what to know of it beside it."""
    items = []
    for c in diagnosis.verdict.culprits:
        said = "; ".join(part for part in (c.process, c.note) if part)
        items.append(
            Item(
                f"{c.file}:{c.line}"
                + ("" if c.function == UNKNOWN_FUNCTION else f" in {c.function}"),
                source=said or None,
                code=c.code,
                style="strong",
            )
        )
    return tuple(items)


def _sample(sample: dict | None) -> tuple[Item, ...]:
    """What the failing code was loading (the report's `sample`): the sample, the call that asked
    for it, bad rows."""
    if not isinstance(sample, dict):
        return ()
    where = f"probe pid {sample.get('pid')}"
    if sample.get("worker") is not None:
        where += f" · DataLoader worker {sample['worker']}"
    identified = any(sample.get(k) is not None for k in ("index", "batch", "file"))
    items = [Item(str(sample.get("summary")), source=where, style="strong")] if identified else []
    calls = [c for c in sample.get("calls") or () if isinstance(c, dict)]
    call = _item_call(calls) or next((c for c in reversed(calls) if c.get("arguments")), None)
    if call is not None:
        items.append(Item(f"in {_describe_call(call)}", source=f"{call['file']}:{call['line']}"))
    if sample.get("batch") is not None and sample.get("index") is not None:
        items.append(Item(f"in the batch of samples {sample['batch']}", style="dim"))
    from trainwatch.diagnostics.watch.probe.samples import BadLabels, NonFiniteRows

    rows = []
    if isinstance(sample.get("labels"), dict):
        rows.append(BadLabels.from_dict(sample["labels"]).describe())
    rows += [NonFiniteRows.from_dict(n).describe() for n in sample.get("nonfinite") or ()]
    for text in rows:
        items.append(Item(text, source=None if items else where, style=None if items else "strong"))
    return tuple(items)


def _item_call(calls: list[dict]) -> dict | None:
    """The innermost `__getitem__`/`__getitems__` with arguments, the user's own first."""
    items = [c for c in calls if c.get("function") in ITEM_FUNCTIONS and c.get("arguments")]
    users = [c for c in items if c.get("user")]
    return (users or items or [None])[-1]


def _describe_call(call: dict) -> str:
    """`ImageFiles.__getitem__(index=517)`."""
    name = str(call.get("function"))
    if call.get("owner"):
        name = f"{str(call['owner']).rsplit('.', 1)[-1]}.{name}"
    arguments = call.get("arguments") if isinstance(call.get("arguments"), dict) else {}
    return f"{name}({', '.join(f'{k}={v}' for k, v in arguments.items())})"


def _checkpoints(diagnosis: Diagnosis, saved: dict) -> tuple[Item, ...]:
    """For a run that did not complete: the last checkpoint, when and where it was, the training
    time lost since, and the saves that cannot be resumed from (the report's `checkpoints`)."""
    facts = saved.get("checkpoints")
    # a run that ended on its own (done, or left its loop early) lost nothing; nor did one that
    # was never seen training (no progress line, no loss, no batch taken): it had nothing to lose
    if not isinstance(facts, dict) or diagnosis.verdict.category in ("completed", "early-exit"):
        return ()
    if not isinstance(facts.get("resume_from"), dict) and facts.get("trained") is False:
        return ()
    if not facts.get("total") and facts.get("watched") is False:
        return ()  # the run used no save the probe sees: what it saved, and so lost, is unknown
    from trainwatch.diagnostics.watch.probe.checkpoints import (
        STATES,
        describe_duration,
    )

    lost = _duration(facts.get("lost_s"))  # (numbers of a hand-edited report may be anything)
    point = facts.get("resume_from")
    if not isinstance(point, dict):
        said = "no checkpoint seen" if not facts.get("total") else "no complete checkpoint left"
        tail = f": all {describe_duration(lost)} of training lost" if lost is not None else ""
        items = [Item(said + tail, style="strong")]
    else:
        progress = _save_progress(point)
        progress = f" ({progress})" if progress else ""
        when = ""
        started, ended = _duration(facts.get("run_started")), _duration(point.get("ended"))
        if started is not None and ended is not None:
            when = f", written {describe_duration(ended - started)} into the run"
        items = [Item(f"last complete checkpoint: {point.get('path')}{progress}{when}")]
        if lost == 0:  # (lost_s says none below NOTHING_LOST_S)
            items.append(Item("no training lost since: the run made no progress after it"))
        elif lost is not None:
            items.append(Item(f"{describe_duration(lost)} of training lost since", style="strong"))
    items.extend(
        Item(
            f"{save.get('path')}: {STATES.get(save.get('state'), save.get('state'))}",
            style="strong",
        )
        for save in facts.get("unusable") or ()
        if isinstance(save, dict)
    )
    if (total := number(facts.get("total")) or 0) > 1:
        items.append(Item(f"{total:g} checkpoint saves in all", style="dim"))
    return tuple(items)


def _save_progress(save: dict) -> str | None:
    """`epoch 2, step 30`, when the probe saw either."""
    parts = []
    if save.get("epoch") is not None:
        parts.append(f"epoch {save['epoch']:g}")
    if save.get("step") is not None:
        parts.append(f"step {save['step']}")
    return ", ".join(parts) or None


def _advice(diagnosis: Diagnosis) -> tuple[Item, ...]:
    v = diagnosis.verdict
    items = tuple(Item(a) for a in v.advice)
    if v.doc_url:
        items += (Item(f"See: {v.doc_url}", style="dim", link=True),)
    return items


def _alternatives(diagnosis: Diagnosis) -> tuple[Item, ...]:
    return tuple(
        Item(f"{a.subtype or a.category} ({a.confidence:.0%}): {a.summary}")
        for a in diagnosis.verdict.alternatives
    )


def peak_words(memory: dict) -> str:
    """`590.2 MiB of 700.0 MiB`: the run's memory at its peak as the report's `memory` holds it
    (its real use; a summed RSS of several processes says so), and the limit."""
    peak = memory.get("peak_bytes", memory.get("peak_rss_bytes"))
    measure = memory.get("peak_measure")
    named = " (summed RSS: shared pages counted in each process)" if measure == "summed RSS" else ""
    return f"{human_bytes(peak)} of {human_bytes(memory.get('limit_bytes'))}{named}"


def _run(diagnosis: Diagnosis, saved: dict) -> tuple[Item, ...]:
    """Where the run was, its losses, its memory, how long it ran: each row only when known (read
    from the report's `progress` and `memory`)."""
    items: list[Item] = []
    progress = saved.get("progress") if isinstance(saved.get("progress"), dict) else {}
    if progress.get("stopped_at"):
        items.append(Item(f"stopped at {progress['stopped_at']}"))
    sparkline_values = progress.get("sparkline")
    values = [
        v for v in map(number, sparkline_values if isinstance(sparkline_values, list) else ())
        if v is not None
    ]  # fmt: skip
    last = number(progress.get("last_loss"))
    if last is not None and not math.isfinite(last):
        values.append(last)  # the last loss printed was NaN/Inf: the chart ends on its mark
    if values:
        shown = f"{last:.4g}" if last is not None and math.isfinite(last) else None
        if last is not None and not math.isfinite(last):
            shown = "NaN" if last != last else ("+Inf" if last > 0 else "-Inf")
        shown = shown or f"{values[-1]:.4g}"
        items.append(Item(f"loss   {sparkline(values)}  last {shown}", chart="loss"))
    memory = saved.get("memory") if isinstance(saved.get("memory"), dict) else {}
    samples = [m for m in memory.get("samples") or () if isinstance(m, dict)]
    if samples:
        from trainwatch.diagnostics.watch.sampling import resample

        line = f"memory peak {peak_words(memory)}"
        timeline = resample([number(m.get("rss_bytes")) or 0 for m in samples], SPARK_POINTS)
        items.append(Item(f"{line}  {sparkline(timeline)}", chart="memory"))
        gpu = [number(m.get("gpu_used_bytes")) for m in samples]
        if any(g is not None for g in gpu):
            gpu_values = resample([g or 0 for g in gpu], SPARK_POINTS)
            facts = memory.get("gpu") if isinstance(memory.get("gpu"), dict) else {}
            # NVML names the run's own processes, or (in a container) only whole devices: the
            # device figure among the evidence includes the driver's share and other users'
            whose = "the run's processes" if facts.get("per_process") else "whole GPUs"
            items.append(
                Item(
                    f"GPU memory peak {human_bytes(max(gpu_values))} ({whose})  "
                    f"{sparkline(gpu_values)}",
                    chart="gpu",
                )
            )
    if diagnosis.duration_s is not None:
        items.append(
            Item(f"ran {diagnosis.duration_s:.1f} s · {describe_exit(diagnosis)}", style="dim")
        )
    return tuple(items)


def number(value) -> float | None:
    """A number of the JSON report: a float, or a non-finite one written as its name ("nan");
    None for anything else (a hand-edited report's `"big"`), which every format reads as absent."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _duration(value) -> float | None:
    """A time of the JSON report (seconds): a finite number, else absent (`"nan"` is no time)."""
    seconds = number(value)
    return seconds if seconds is not None and math.isfinite(seconds) else None


def describe_exit(diagnosis: Diagnosis) -> str:
    """`exit 1`, `killed by SIGKILL (status 137)`, or `exit unknown`."""
    status = diagnosis.exit
    if status is None:
        return "exit unknown"
    if status.signal:
        return f"killed by {status.signal} (status {status.status})"
    return f"exit {status.code}"


def sparkline(values) -> str:
    """Values as a row of block characters between their min and max; `!` marks NaN and infinity."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "!" * len(values)
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    return "".join(
        SPARKS[min(len(SPARKS) - 1, int((v - low) / span * (len(SPARKS) - 1) + 0.5))]
        if math.isfinite(v)
        else "!"
        for v in values
    )
