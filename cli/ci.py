"""trainwatch in CI: the exit policy (`--fail-on`), GitHub Actions annotations and the step summary
in Markdown.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

from trainwatch.diagnostics.errors import UsageError
from trainwatch.diagnostics.redaction import redact_diagnosis
from trainwatch.diagnostics.verdict import CATEGORIES

# What trainwatch exits with when the program exited 0 but its verdict is one `--fail-on` names
# (docs/ci.md). 3 is free: 1 and 2 are the usual failure and usage codes, 126/127/70 and 128+N are
# taken (docs/index.md).
EXIT_FAIL_ON = 3
SUMMARY_TAIL_LINES = 30  # lines of the program's output in the step summary
SUMMARY_LIMIT = 900_000  # bytes: GitHub refuses a step summary over 1 MiB


def parse_fail_on(text: str | None) -> frozenset[str]:
    """`"numerical,early-exit"` -> the categories (or `category/subtype`s) that fail a run;
    UsageError if unknown.
    """
    if not text:
        return frozenset()
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    for name in names:
        if name.split("/", 1)[0] not in CATEGORIES:
            raise UsageError(
                f"--fail-on: unknown category {name!r} (one of: {', '.join(CATEGORIES)})"
            )
    return names


def fails_policy(diagnosis, fail_on: frozenset[str]) -> bool:
    """Does the verdict fall under `--fail-on` (by category, or by its exact subtype)?"""
    v = diagnosis.verdict
    return v.category in fail_on or (v.subtype is not None and v.subtype in fail_on)


def final_status(diagnosis, fail_on: frozenset[str] = frozenset()) -> int:
    """What trainwatch exits with: the program's status, or EXIT_FAIL_ON when it exited 0 (or, for a
    saved log, whatever it did) and the verdict is one `--fail-on` names. `explain` otherwise
    exits 0.
    """
    status = (
        diagnosis.exit.status if diagnosis.exit is not None else (0 if not diagnosis.command else 1)
    )
    if status == 0 and fail_on and fails_policy(diagnosis, fail_on):
        return EXIT_FAIL_ON
    return status


def failed(diagnosis, status: int) -> bool:
    """A failure for CI reports: trainwatch exits non-zero, or a saved log shows a run that did not
    complete.
    """
    if status != 0:
        return True
    return diagnosis.exit is None and diagnosis.verdict.category not in ("completed",)


def github_actions(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("GITHUB_ACTIONS") == "true"


def annotation(diagnosis, status: int, env: Mapping[str, str] | None = None) -> str | None:
    """The workflow command for the verdict: `::error file=PATH,line=N,title=...::summary`; None for
    a clean run.

    A failure is an error; a verdict that is not `completed` on a run that still exited 0 is a
    warning. The file is the culprit's path relative to GITHUB_WORKSPACE, left out when the
    culprit lies outside it (GitHub could not link it).
    """
    env = os.environ if env is None else env
    diagnosis = redact_diagnosis(diagnosis, env)
    v = diagnosis.verdict
    if failed(diagnosis, status):
        kind = "error"
    elif v.category != "completed":
        kind = "warning"
    else:
        return None
    props = []
    place = (
        workspace_path(v.culprit.file, env.get("GITHUB_WORKSPACE"))
        if v.culprit is not None
        else None
    )
    if place is not None:
        props += [f"file={_property(place)}", f"line={v.culprit.line}"]
    props.append(
        "title=" + _property(f"trainwatch: {v.subtype or v.category} ({v.confidence:.0%} sure)")
    )
    message = v.summary
    if v.evidence:
        message += "\n" + v.evidence[0].text[:500]
    return f"::{kind} {','.join(props)}::{_data(message)}"


def workspace_path(file: str, workspace: str | None) -> str | None:
    """A culprit's path as GitHub wants it (relative to the checkout), or None when it is
    outside.
    """
    if not os.path.isabs(file):
        return file if not file.startswith("..") and not file.startswith("<") else None
    if not workspace:
        return None
    try:
        rel = os.path.relpath(os.path.realpath(file), os.path.realpath(workspace))
    except ValueError:
        return None
    return None if rel.startswith("..") else rel


def step_summary(diagnosis, status: int) -> str:
    """The Markdown appended to $GITHUB_STEP_SUMMARY: verdict, evidence, culprit, run, advice,
    output tail.
    """
    from .render import describe_exit, human_bytes

    diagnosis = redact_diagnosis(diagnosis)
    v = diagnosis.verdict
    mark = (
        "✅"
        if v.category == "completed" and not failed(diagnosis, status)
        else "❌"
        if failed(diagnosis, status)
        else "⚠️"
    )
    out = [
        f"### {mark} trainwatch: `{v.subtype or v.category}` · {v.confidence:.0%} sure"
        + (f" · {describe_exit(diagnosis)}" if diagnosis.exit is not None else ""),
        "",
    ]
    if diagnosis.command:
        out += [f"Command: {_code(' '.join(diagnosis.command))}", ""]
    elif diagnosis.sources:
        out += [f"Logs: {', '.join(_code(s) for s in diagnosis.sources)}", ""]
    out += [_text(v.summary), ""]
    if status != (diagnosis.exit.status if diagnosis.exit else 0):
        out += [f"trainwatch exits {status}: `--fail-on` names this verdict.", ""]
    if v.evidence:
        out += (
            ["**Evidence**", ""]
            + [f"- {_code(c.text[:400])} ({_text(c.kind)} · {_text(c.source)})" for c in v.evidence]
            + [""]
        )
    if v.cascade:
        out += (
            ["**Consequences (not the cause)**", ""]
            + [f"- {_code(c.text[:400])}" for c in v.cascade]
            + [""]
        )
    if v.culprit is not None:
        out += [
            f"**Culprit** {_code(f'{v.culprit.file}:{v.culprit.line}')} in "
            f"{_code(v.culprit.function)}",
            "",
        ]
        if v.culprit.code:
            out += [_fence(v.culprit.code, "python"), ""]
    facts = diagnosis.evidence
    run = []
    if facts.progress is not None and facts.progress.stopped_at:
        run.append(f"stopped at {_text(facts.progress.stopped_at)}")
    if facts.memory is not None:
        run.append(
            f"memory peak {human_bytes(facts.memory.peak_rss_bytes)} of "
            f"{human_bytes(facts.memory.limit_bytes)}"
        )
        gpu = facts.memory.gpu
        if gpu is not None and gpu.peak_used_bytes:
            run.append(f"GPU peak {human_bytes(gpu.peak_used_bytes)}")
    if diagnosis.duration_s is not None:
        run.append(f"ran {diagnosis.duration_s:.1f} s")
    if run:
        out += ["**Run**: " + " · ".join(run), ""]
    if v.advice:
        out += (
            ["**What to do**", ""] + [f"{i}. {_text(a)}" for i, a in enumerate(v.advice, 1)] + [""]
        )
    tail = output_tail(diagnosis, SUMMARY_TAIL_LINES)
    if tail:
        out += [
            "<details><summary>Last lines of output</summary>",
            "",
            _fence(tail, "text"),
            "",
            "</details>",
            "",
        ]
    text = "\n".join(out) + "\n"
    return (
        text
        if len(text.encode()) <= SUMMARY_LIMIT
        else text.encode()[:SUMMARY_LIMIT].decode(errors="ignore")
    )


def output_tail(diagnosis, lines: int) -> str:
    """The last lines of the program's output (the redacted copy's), as one string."""
    log = diagnosis.evidence.log
    if log is None or not log.tail:
        return ""
    return "\n".join(line.text for line in log.tail[-lines:])


def publish_github(
    diagnosis, status: int, env: Mapping[str, str] | None = None, stream: TextIO | None = None
) -> None:
    """Under GitHub Actions: print the annotation (on stderr, where the runner reads workflow
    commands as on stdout, leaving stdout to the program and `--json -`) and append the summary
    to $GITHUB_STEP_SUMMARY.
    """
    env = os.environ if env is None else env
    if not github_actions(env):
        return
    diagnosis = redact_diagnosis(diagnosis, env)
    stream = sys.stderr if stream is None else stream
    line = annotation(diagnosis, status, env)
    if line is not None:
        stream.write(line + "\n")
        stream.flush()
    path = env.get("GITHUB_STEP_SUMMARY")
    if path:
        try:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(step_summary(diagnosis, status))
        except OSError as exc:
            stream.write(
                f"trainwatch: error: cannot append to GITHUB_STEP_SUMMARY ({path}): "
                f"{exc.strerror}\n"
            )


def _data(text: str) -> str:
    """Escape a workflow command's message (GitHub's toolkit: %, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    """Escape a workflow command's property value: as data, plus `:` and `,`, which separate
    properties.
    """
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _text(text: str) -> str:
    """Plain text for Markdown: HTML-like words (`<module>`) would vanish, and a leading `#` would
    be a heading.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _code(text: str) -> str:
    """Inline code that survives backticks inside it."""
    text = text.replace("\n", " ")
    ticks = "`"
    while ticks in text:
        ticks += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _fence(text: str, lang: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{lang}\n{text}\n{fence}"
