"""The verdict and the diagnosis: what every renderer reads, and `to_dict()`, the versioned JSON
report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainwatch.diagnostics.evidence import Evidence, ExitStatus, Frame, RaisedException

SCHEMA = "trainwatch.report/1"

# The failure categories of ../shared/corpus/LABELS.md, in its order. Reports use exactly these ids.
CATEGORIES = (
    "data",
    "oom",
    "numerical",
    "code",
    "library",
    "distributed",
    "hardware",
    "interrupted",
    "hang",
    "early-exit",
    "completed",
    "unknown",
)

# The first line of every terminal report: lets the log parser skip a report saved inside a log.
REPORT_BANNER = "trainwatch report"


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
    """The user's own frame that the failure points at."""

    file: str
    line: int
    function: str
    code: str | None

    @classmethod
    def from_frame(cls, frame: Frame) -> Culprit:
        return cls(file=frame.file, line=frame.line, function=frame.function, code=frame.code)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "function": self.function, "code": self.code}


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
    exception: RaisedException | None = None  # the initiating exception
    exception_chain: tuple[RaisedException, ...] = ()  # its whole chain, first raised first
    advice: tuple[str, ...] = ()
    doc_url: str | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")
        if self.subtype is not None and not self.subtype.startswith(self.category + "/"):
            raise ValueError(f"subtype {self.subtype!r} is not under {self.category!r}")

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
    sections: dict[str, Any] = field(
        default_factory=dict
    )  # extra report sections: "probe", "distributed", ...

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
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
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
            "exception": v.exception_dict(),
            "memory": None if facts.memory is None else facts.memory.to_dict(),
            "progress": None if facts.progress is None else facts.progress.to_dict(),
            "advice": list(v.advice),
            "doc_url": v.doc_url,
            "notes": list(facts.notes),
        }
        if facts.probe is not None:
            report["probe"] = facts.probe.to_dict()
        if facts.stall is not None:
            report["stall"] = facts.stall.to_dict()
        if facts.nan_stop is not None:
            report["nan_stop"] = facts.nan_stop.to_dict()
        report.update(self.sections)
        return report
