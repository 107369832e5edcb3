"""The JUnit XML report (`--junit FILE`): one test case for the run, which GitLab, Jenkins and
others display.

The run is one test case. It fails when trainwatch exits non-zero (or, for a saved log, when the
run did not complete); the failure's message names the category and the summary, its type is the
category, and its body holds the outline as text and the last lines of output. GitLab reads `file`
and `line` on a test case.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET

from trainwatch.cli.reports.github import output_tail
from trainwatch.cli.reports.outline import Outline
from trainwatch.diagnostics.verdict import Diagnosis

TAIL_LINES = 60

# XML 1.0 cannot hold most control characters, not even escaped; a program's output may contain any
# byte.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def junit_xml(diagnosis: Diagnosis, view: Outline) -> str:
    """The report as a JUnit XML document (a string, with its declaration)."""
    v = diagnosis.verdict
    is_failure = view.tone == "bad"
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
        ("exit.status", str(view.status)),
    ):
        ET.SubElement(props, "property", {"name": name, "value": _clean(value)})
    kind = "run" if diagnosis.command else "explain"
    case = ET.SubElement(
        suite,
        "testcase",
        {"classname": f"trainwatch.{kind}", "name": _clean(_case_name(diagnosis)), "time": time},
    )
    if v.culprit is not None:
        case.set("file", _clean(v.culprit.file))
        case.set("line", str(v.culprit.line))
    headline = f"{view.label}: {view.summary}"
    body = view.text()
    tail = output_tail(diagnosis, TAIL_LINES)
    if tail:
        body += "\n\nLast lines of output:\n" + tail
    if is_failure:
        failure = ET.SubElement(case, "failure", {"message": _clean(headline), "type": v.category})
        failure.text = _clean(body)
    else:
        out = ET.SubElement(case, "system-out")
        out.text = _clean(f"{headline}\n\n{body}")
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def _case_name(diagnosis: Diagnosis) -> str:
    if diagnosis.command:
        words = (os.path.basename(w) if i == 0 else w for i, w in enumerate(diagnosis.command))
        return " ".join(words)[:200]
    return "explain " + " ".join(diagnosis.sources)[:200]


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
