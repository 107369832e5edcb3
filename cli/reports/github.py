"""GitHub Actions: the workflow-command annotation on the culprit line, and the job's step summary
in Markdown."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TextIO

from trainwatch.cli.reports.outline import Outline
from trainwatch.diagnostics.verdict import ANNOTATION_TITLE, Diagnosis

SUMMARY_TAIL_LINES = 30  # lines of the program's output in the step summary
SUMMARY_LIMIT = 900_000  # bytes: GitHub refuses a step summary over 1 MiB


def github_actions(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("GITHUB_ACTIONS") == "true"


def annotation(
    diagnosis: Diagnosis, view: Outline, env: Mapping[str, str] | None = None
) -> str | None:
    """The workflow command for the verdict: `::error file=PATH,line=N,title=...::summary`; None
    for a clean run.

    A failure is an error; a verdict that is not `completed` on a run that still exited 0 is a
    warning. The file is the culprit's path relative to GITHUB_WORKSPACE, left out when the culprit
    lies outside it (GitHub could not link it).
    """
    env = os.environ if env is None else env
    v = diagnosis.verdict
    if view.tone == "bad":
        kind = "error"
    elif v.category != "completed":
        kind = "warning"
    else:
        return None
    props = []
    place = None
    if v.culprit is not None:
        place = workspace_path(v.culprit.file, env.get("GITHUB_WORKSPACE"))
    if place is not None and v.culprit is not None:
        props += [f"file={_property(place)}", f"line={v.culprit.line}"]
    props.append("title=" + _property(f"{ANNOTATION_TITLE}{view.label} ({view.confidence})"))
    message = v.summary
    if v.evidence:
        message += "\n" + v.evidence[0].text[:500]
    return f"::{kind} {','.join(props)}::{_data(message)}"


def workspace_path(file: str, workspace: str | None) -> str | None:
    """A culprit's path as GitHub wants it (relative to the checkout), or None when it is
    outside."""
    if not os.path.isabs(file):
        return file if not file.startswith("..") and not file.startswith("<") else None
    if not workspace:
        return None
    try:
        rel = os.path.relpath(os.path.realpath(file), os.path.realpath(workspace))
    except ValueError:
        return None
    return None if rel.startswith("..") else rel


def step_summary(diagnosis: Diagnosis, view: Outline) -> str:
    """The Markdown appended to $GITHUB_STEP_SUMMARY: the outline's sections, then the output
    tail."""
    mark = {"ok": "✅", "bad": "❌"}.get(view.tone, "⚠️")
    head = f"### {mark} trainwatch: `{view.label}` · {view.confidence}"
    out = [head + (f" · {view.exit}" if view.exit else ""), ""]
    if diagnosis.command:
        out += [f"Command: {_code(' '.join(diagnosis.command))}", ""]
    elif diagnosis.sources:
        out += [f"Logs: {', '.join(_code(s) for s in diagnosis.sources)}", ""]
    out += [_text(view.summary), ""]
    if view.policy_note:
        out += [_text(view.policy_note), ""]
    for section in view.sections:
        out += [f"**{section.title}**", ""]
        for number, item in enumerate(section.items, 1):
            if section.key in ("evidence", "cascade"):
                out.append(
                    f"- {_code(item.text[:400])}"
                    + (f" ({_text(item.source)})" if item.source else "")
                )
            elif section.key == "culprit":
                out.append(_code(item.text))
                if item.code:
                    out += ["", _fence(item.code, "python")]
            elif section.numbered and item.style != "dim":
                out.append(f"{number}. {_text(item.text)}")
            else:
                out.append(f"- {_text(item.text)}")
        out.append("")
    tail = output_tail(diagnosis, SUMMARY_TAIL_LINES)
    if tail:
        out += ["<details><summary>Last lines of output</summary>", "", _fence(tail, "text"), ""]
        out += ["</details>", ""]
    text = "\n".join(out) + "\n"
    if len(text.encode()) <= SUMMARY_LIMIT:
        return text
    return text.encode()[:SUMMARY_LIMIT].decode(errors="ignore")


def output_tail(diagnosis: Diagnosis, lines: int) -> str:
    """The last lines of the program's output (the redacted copy's), as one string, without the
    colour codes a terminal would have drawn (a `FORCE_COLOR` job's escapes were left raw in the
    step summary and as U+FFFD in the JUnit XML)."""
    from trainwatch.diagnostics.read.capture import ANSI

    log = diagnosis.evidence.log
    if log is None or not log.tail:
        return ""
    return "\n".join(ANSI.sub("", line.text) for line in log.tail[-lines:])


def publish_github(
    diagnosis: Diagnosis,
    view: Outline,
    env: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
    append_summary: bool = True,
) -> None:
    """Under GitHub Actions: print the annotation (on stderr, where the runner reads workflow
    commands as on stdout, leaving stdout to the program and `--json -`) and append the summary to
    $GITHUB_STEP_SUMMARY, unless `append_summary` is off (the command was told where to write the
    summary: `--github-summary - >> "$GITHUB_STEP_SUMMARY"` wrote it twice)."""
    from trainwatch.cli.console import print_error, print_line

    env = os.environ if env is None else env
    if not github_actions(env):
        return
    line = annotation(diagnosis, view, env)
    if line is not None:
        if stream is None:
            print_line(line)
        else:
            stream.write(line + "\n")
            stream.flush()
    path = env.get("GITHUB_STEP_SUMMARY")
    if path and append_summary:
        try:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(step_summary(diagnosis, view))
        except OSError as exc:
            print_error(f"cannot append to GITHUB_STEP_SUMMARY ({path}): {exc.strerror or exc}")


def _data(text: str) -> str:
    """Escape a workflow command's message (GitHub's toolkit: %, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    """Escape a workflow command's property value: as data, plus `:` and `,`, which separate
    properties."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _text(text: str) -> str:
    """Plain text for Markdown: HTML-like words (`<module>`) would vanish, and a leading `#` would
    be a heading."""
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
