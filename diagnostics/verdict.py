"""The verdict and the diagnosis: what every renderer reads, and `to_dict()`, the versioned JSON
report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trainwatch.diagnostics.categories import CATEGORIES
from trainwatch.diagnostics.evidence import Evidence, ExitStatus, Frame, RaisedException

if TYPE_CHECKING:  # the probe's readers are imported only by a run that has records
    from trainwatch.diagnostics.watch.probe.samples import FailedSample

SCHEMA_FAMILY = "trainwatch.report/"  # every version of the JSON report's schema starts so
SCHEMA = SCHEMA_FAMILY + "1"


def is_report(data: Any) -> bool:
    """Is this parsed JSON a trainwatch report (of any version)?"""
    return isinstance(data, dict) and str(data.get("schema", "")).startswith(SCHEMA_FAMILY)


def starts_like_report(head: bytes) -> bool:
    """Do these first bytes of a file begin a trainwatch JSON report (its schema comes first)?"""
    return head.lstrip().startswith(b"{") and SCHEMA_FAMILY.encode() in head


# The first line of every terminal report: lets the log parser skip a report saved inside a log.
REPORT_BANNER = "trainwatch report"
# How the title of trainwatch's GitHub annotation (`::error ...,title=<this>...::`) starts: the
# log parser passes over that line too, printed after the report in a CI job's log.
ANNOTATION_TITLE = "trainwatch: "


@dataclass(frozen=True)
class Cited:
    """One piece of evidence a verdict rests on, with where it came from."""

    # "exit", "exception", "log", "probe", "memory", "cgroup", "kernel", "progress", "loss",
    # "signal", ...
    kind: str
    text: str  # the line, record or counter, as seen
    source: str  # where: "line 812", "stderr line 40", "probe pid 4242", "memory.events", "waitpid"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "source": self.source}

    @property
    def place(self) -> tuple[str, int] | None:
        """(stream, line number) where a line was cited from: ("log", 812) for "line 812 (rank 0)",
        ("stderr", 40) for "stderr line 40"; None for what no line holds (a record, a counter).
        Two places compare only on one stream."""
        m = _LINE_SOURCE.search(self.source)
        return None if m is None else (m.group(1) or "log", int(m.group(2)))


_LINE_SOURCE = re.compile(r"(?:\b(stdout|stderr) )?\bline (\d+)")


def cited_once(*readings: Iterable[Cited]) -> tuple[Cited, ...]:
    """The readings' evidence in order, a line two of them cite shown once (a trainer's summary
    line is a closing line to one and the end's proof to the other; a rank's wait is the job's)."""
    return tuple(dict.fromkeys(cited for reading in readings for cited in reading))


@dataclass(frozen=True)
class Alternative:
    """Another category that fits the evidence, less well."""

    category: str
    subtype: str | None
    confidence: float
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "subtype": self.subtype,
            "confidence": round(self.confidence, 2),
            "summary": self.summary,
        }


@dataclass(frozen=True)
class Culprit:
    """The frame that the failure points at: the user's own when there is one."""

    file: str
    line: int
    function: str
    code: str | None
    # What a reader must know about this frame: "where the error surfaced, not where it began".
    note: str | None = None
    process: str | None = None  # whose frame, when several processes are named: "pids 41, 42"

    @classmethod
    def from_frame(
        cls, frame: Frame, note: str | None = None, process: str | None = None
    ) -> Culprit:
        return cls(frame.file, frame.line, frame.function, frame.code, note, process)

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> Culprit:
        def text(key: str) -> str | None:
            return item.get(key) if isinstance(item.get(key), str) else None

        return cls(
            str(item.get("file")),
            int(_float(item.get("line"))),
            str(item.get("function")),
            text("code"),
            text("note"),
            text("process"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "function": self.function,
            "code": self.code,
            "note": self.note,
            "process": self.process,
        }


@dataclass(frozen=True)
class Verdict:
    """Why the run stopped, how sure we are, on what evidence, and what to do."""

    category: str  # one of CATEGORIES
    subtype: str | None  # "category/subtype", e.g. "oom/gpu"
    confidence: float  # 0..1: near 1 only when the evidence is first-hand and corroborated
    summary: str  # one sentence
    signature: str | None = None  # the knowledge-base id that matched, if any
    alternatives: tuple[Alternative, ...] = ()
    evidence: tuple[Cited, ...] = ()  # what the verdict rests on, strongest first
    cascade: tuple[Cited, ...] = ()  # failures recognised as consequences of the root cause
    culprit: Culprit | None = None
    # Further culprits, after `culprit`: the blocking frame of every other stuck process of a hang.
    other_culprits: tuple[Culprit, ...] = ()
    exception: RaisedException | None = None  # the initiating exception
    exception_chain: tuple[RaisedException, ...] = ()  # its whole chain, first raised first
    advice: tuple[str, ...] = ()
    doc_url: str | None = None
    sample: FailedSample | None = None  # what the failing code was loading (the probe saw it)

    @property
    def culprits(self) -> tuple[Culprit, ...]:
        """Every culprit, the main one first."""
        return (() if self.culprit is None else (self.culprit,)) + self.other_culprits

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")
        if self.subtype is not None and not self.subtype.startswith(self.category + "/"):
            raise ValueError(f"subtype {self.subtype!r} is not under {self.category!r}")

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> Verdict:
        """A JSON report's verdict as a `Verdict` again: its evidence, cascade, culprit, exception
        and advice included. A field of the wrong shape is read as absent, and an unknown
        category as "unknown", so that any report (an older one, one edited by hand) reads."""
        v = _mapping(report.get("verdict"))
        culprit = _mapping(report.get("culprit"))
        category = v.get("category") if v.get("category") in CATEGORIES else "unknown"
        subtype = v.get("subtype")
        if not (isinstance(subtype, str) and subtype.startswith(category + "/")):
            subtype = None
        exception = _mapping(report.get("exception"))
        return cls(
            category,
            subtype,
            _float(v.get("confidence")),
            str(v.get("summary") or ""),
            signature=v.get("signature") if isinstance(v.get("signature"), str) else None,
            alternatives=tuple(
                Alternative(
                    a["category"],
                    a.get("subtype") if isinstance(a.get("subtype"), str) else None,
                    _float(a.get("confidence")),
                    str(a.get("summary") or ""),
                )
                for a in _items(v.get("alternatives"))
                if a.get("category") in CATEGORIES
            ),
            evidence=_cited(report.get("evidence")),
            cascade=_cited(report.get("cascade")),
            culprit=Culprit.from_dict(culprit) if culprit else None,
            other_culprits=tuple(Culprit.from_dict(c) for c in _items(report.get("culprits"))[1:])
            if culprit
            else (),
            exception=None if not exception else _raised(exception),
            exception_chain=tuple(_raised(e) for e in _items(exception.get("chain"))),
            advice=tuple(str(a) for a in report.get("advice") or () if a is not None),
            doc_url=report.get("doc_url") if isinstance(report.get("doc_url"), str) else None,
        )

    def exception_dict(self) -> dict[str, Any] | None:
        if self.exception is None:
            return None
        return {
            "type": self.exception.type,
            "message": self.exception.message,
            "chain": [
                {"type": e.type, "message": e.message, "relation": e.relation}
                for e in self.exception_chain
            ],
        }


@dataclass(frozen=True)
class Diagnosis:
    """A verdict with the run it judges: the one object every renderer and the JSON report take."""

    trainwatch_version: str
    command: tuple[str, ...]
    started_at: str | None  # ISO 8601, UTC; None when a saved log does not say
    duration_s: float | None
    exit: ExitStatus | None
    verdict: Verdict
    evidence: Evidence
    sources: tuple[str, ...] = ()  # log files a verdict was drawn from (explain)
    # extra report sections: "probe", "distributed", ...
    sections: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The duration is kept to the millisecond, as the JSON report keeps it, so that every
        # renderer of this run and `trainwatch report` of its saved JSON print the same "ran N s"
        # (1.1501 s reads 1.2 s, and 1.15 reads 1.1 s).
        if self.duration_s is not None:
            object.__setattr__(self, "duration_s", round(self.duration_s, 3))

    @classmethod
    def from_dict(cls, report: dict[str, Any]) -> Diagnosis:
        """A diagnosis again from its JSON report (`to_dict()`), so that `from_dict(r).to_dict()`
        is `r`. The verdict, exit status, run and notes are rebuilt as objects; the sections whose
        raw facts the report does not keep (memory samples, progress, probe, stall, distributed,
        ...) are kept as the report has them, in `sections`."""
        exit = _mapping(report.get("exit"))
        evidence = Evidence(
            source="report",
            command=tuple(str(a) for a in report.get("command") or ()),
            notes=tuple(str(n) for n in report.get("notes") or ()),
        )
        duration = report.get("duration_s")
        return cls(
            trainwatch_version=str(report.get("trainwatch_version") or ""),
            command=evidence.command,
            started_at=report.get("started_at")
            if isinstance(report.get("started_at"), str)
            else None,
            duration_s=None if not isinstance(duration, (int, float)) else float(duration),
            exit=None
            if not exit
            else ExitStatus(
                exit.get("code") if isinstance(exit.get("code"), int) else None,
                exit.get("signal") if isinstance(exit.get("signal"), str) else None,
                int(_float(exit.get("status"))),
            ),
            verdict=Verdict.from_report(report),
            evidence=evidence,
            sources=tuple(str(s) for s in report.get("sources") or ()),
            sections={
                k: v
                for k, v in report.items()
                if k not in _REBUILT and not (k in _FACT_SECTIONS and v is None)
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable report, documented field by field in docs/report.md."""
        v = self.verdict
        facts = self.evidence
        report: dict[str, Any] = {
            "schema": SCHEMA,
            "trainwatch_version": self.trainwatch_version,
            "command": list(self.command),
            "sources": list(self.sources),
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "exit": None if self.exit is None else self.exit.to_dict(),
            "verdict": {
                "category": v.category,
                "subtype": v.subtype,
                "confidence": round(v.confidence, 2),
                "summary": v.summary,
                "signature": v.signature,
                "alternatives": [a.to_dict() for a in v.alternatives],
            },
            "evidence": [c.to_dict() for c in v.evidence],
            "cascade": [c.to_dict() for c in v.cascade],
            "culprit": None if v.culprit is None else v.culprit.to_dict(),
            "culprits": [c.to_dict() for c in v.culprits],
            "exception": v.exception_dict(),
            "sample": None if v.sample is None else v.sample.to_dict(),
            "memory": None if facts.memory is None else facts.memory.to_dict(),
            "progress": None if facts.progress is None else facts.progress.to_dict(),
            "advice": list(v.advice),
            "doc_url": v.doc_url,
            "notes": list(facts.notes),
        }
        if facts.probe is not None:
            report["probe"] = facts.probe.to_dict()
            if facts.probe.loaded and facts.probe.checkpoints is not None:
                report["checkpoints"] = facts.probe.checkpoints.to_dict()
        if facts.stall is not None:
            report["stall"] = facts.stall.to_dict()
        if facts.nan_stop is not None:
            report["nan_stop"] = facts.nan_stop.to_dict()
        report.update(self.sections)
        return report


# The report's fields that `Diagnosis.from_dict` rebuilds as objects; every other one is kept as is.
_REBUILT = frozenset(
    (
        "schema",
        "trainwatch_version",
        "command",
        "sources",
        "started_at",
        "duration_s",
        "exit",
        "verdict",
        "evidence",
        "cascade",
        "culprit",
        "culprits",
        "exception",
        "advice",
        "doc_url",
        "notes",
    )
)
# Sections drawn from the evidence's facts; `to_dict()` writes null for those a run did not have.
_FACT_SECTIONS = frozenset(("memory", "progress"))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _float(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _cited(items: Any) -> tuple[Cited, ...]:
    return tuple(
        Cited(str(c.get("kind", "")), str(c.get("text", "")), str(c.get("source", "")))
        for c in _items(items)
    )


def _raised(item: dict[str, Any]) -> RaisedException:
    relation = item.get("relation") if item.get("relation") in ("cause", "context") else None
    return RaisedException(
        str(item.get("type") or "<unknown>"), str(item.get("message") or ""), relation=relation
    )
