"""The JUnit XML report (`--junit FILE`): one test case for the run, which GitLab, Jenkins and
others display.

The run is one test case. It fails when trainwatch exits non-zero (or, for a saved log, when the
run did not complete); the failure's message names the category and the summary, its type is the
category, and its body holds the evidence, the culprit, the advice and the last lines of output.
GitLab reads `file` and `line` on a test case.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET

from trainwatch.diagnostics.redaction import redact_diagnosis

from .ci import failed, output_tail

TAIL_LINES = 60

# XML 1.0 cannot hold most control characters, not even escaped; a program's output may contain any
# byte.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def junit_xml(diagnosis, status: int) -> str:
    """The report as a JUnit XML document (a string, with its declaration)."""
    diagnosis = redact_diagnosis(diagnosis)
    v = diagnosis.verdict
    is_failure = failed(diagnosis, status)
    time = f"{diagnosis.duration_s:.3f}" if diagnosis.duration_s is not None else "0"
    counts = {
        "tests": "1",
        "failures": "1" if is_failure else "0",
        "errors": "0",
        "skipped": "0",
        "time": time,
    }
    suites = ET.Element("testsuites", {"name": "trainwatch", **counts})
    suite = ET.SubElement(suites, "testsuite", {"name": "trainwatch", **counts})
    if diagnosis.started_at:
        suite.set("timestamp", diagnosis.started_at)
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("trainwatch.version", diagnosis.trainwatch_version),
        ("verdict.category", v.category),
        ("verdict.subtype", v.subtype or ""),
        ("verdict.confidence", f"{v.confidence:.2f}"),
        ("exit.status", str(status)),
    ):
        ET.SubElement(props, "property", {"name": name, "value": _clean(value)})
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": "trainwatch." + ("run" if diagnosis.command else "explain"),
            "name": _clean(_case_name(diagnosis)),
            "time": time,
        },
    )
    if v.culprit is not None:
        case.set("file", _clean(v.culprit.file))
        case.set("line", str(v.culprit.line))
    headline = f"{v.subtype or v.category}: {v.summary}"
    if is_failure:
        failure = ET.SubElement(case, "failure", {"message": _clean(headline), "type": v.category})
        failure.text = _clean(_body(diagnosis, status))
    else:
        out = ET.SubElement(case, "system-out")
        out.text = _clean(f"{headline}\n\n{_body(diagnosis, status)}")
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def write_junit(diagnosis, path: str, status: int) -> None:
    """Write the JUnit report atomically; a failure to write is reported on stderr, never raised."""
    from .outputs import write_file

    write_file(path, junit_xml(diagnosis, status), "the JUnit report")


def _case_name(diagnosis) -> str:
    if diagnosis.command:
        name = " ".join(
            os.path.basename(w) if i == 0 else w for i, w in enumerate(diagnosis.command)
        )
        return name[:200]
    return "explain " + " ".join(diagnosis.sources)[:200]


def _body(diagnosis, status: int) -> str:
    """The failure's text: what a reader of the CI page needs without opening anything else."""
    from .render import describe_exit

    v = diagnosis.verdict
    lines = [
        f"{v.subtype or v.category} · {v.confidence:.0%} sure"
        + (f" · {describe_exit(diagnosis)}" if diagnosis.exit is not None else ""),
        v.summary,
    ]
    if diagnosis.exit is not None and status != diagnosis.exit.status:
        lines.append(f"trainwatch exited {status}: --fail-on names this verdict")
    if v.evidence:
        lines += ["", "Evidence:"] + [f"  - {c.text}  ({c.kind} · {c.source})" for c in v.evidence]
    if v.cascade:
        lines += ["", "Consequences (not the cause):"] + [
            f"  - {c.text}  ({c.kind} · {c.source})" for c in v.cascade
        ]
    if v.culprit is not None:
        lines += ["", f"Culprit: {v.culprit.file}:{v.culprit.line} in {v.culprit.function}"]
        if v.culprit.code:
            lines.append(f"    {v.culprit.code}")
    if v.advice:
        lines += ["", "What to do:"] + [f"  {i}. {a}" for i, a in enumerate(v.advice, 1)]
    tail = output_tail(diagnosis, TAIL_LINES)
    if tail:
        lines += ["", "Last lines of output:", tail]
    return "\n".join(lines)


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
