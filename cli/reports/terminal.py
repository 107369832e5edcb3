"""The terminal report: an `Outline` drawn as rich renderables; printing is the caller's."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.text import Text

from trainwatch.cli.reports.outline import Outline
from trainwatch.diagnostics.verdict import REPORT_BANNER

# A colour per category: red for what broke, yellow for what stopped it from outside, green for
# success.
CATEGORY_STYLES = {
    "completed": "bold green",
    "interrupted": "bold yellow",
    "early-exit": "bold yellow",
    "hang": "bold yellow",
    "unknown": "bold magenta",
}
ROW_STYLES = {"dim": "dim", "strong": "bold"}
CLIP = 300  # characters of one evidence row on a terminal; the JSON report keeps the whole line
# Control characters never reach the terminal from a report: the text comes from the program's
# output and exceptions, and ESC (C0) or CSI U+009B (C1) would be read by the terminal as the
# start of a command (moving the cursor, rewriting the title, hiding lines). Rich drops only a
# few (BEL, BS, VT, FF, CR). Tabs and newlines stay; every other C0, DEL and C1 character goes.
_CONTROLS = {code: None for code in (*range(0x20), *range(0x7F, 0xA0)) if chr(code) not in "\t\n"}


def report(view: Outline) -> RenderableType:
    """The whole report, headline first."""
    parts: list[RenderableType] = [Rule(Text(REPORT_BANNER, style="bold"), style="dim")]
    parts.append(headline(view))
    parts.append(Text(printable(view.summary)))
    if view.policy_note:
        parts.append(Text(printable(view.policy_note), style="dim"))
    for section in view.sections:
        rows: list[Text] = [Text(printable(section.title), style="bold underline")]
        for number, item in enumerate(section.items, 1):
            lead = f"  {number}. " if section.numbered and item.style != "dim" else "  "
            if section.key in ("evidence", "cascade"):
                lead = "  • "
            # trainwatch's own advice is shown whole; what the program wrote is clipped
            said = printable(item.text)
            row = Text(
                lead + (said if section.key == "advice" else _clip(said)),
                style=ROW_STYLES.get(item.style or "", ""),
            )
            if item.source:
                row.append(f"  ({printable(item.source)})", style="dim")
            rows.append(row)
            if item.code:
                rows.append(Text(f"    {printable(item.code)}", style="cyan"))
        parts.append(Group(*rows))
    parts.append(Rule(style="dim"))
    return Group(*parts)


def headline(view: Outline) -> Text:
    """`✗ oom/gpu · 95% sure · exit 1`: the one line `--quiet` prints too."""
    text = Text()
    text.append(
        printable(f"{view.mark} {view.label}"),
        style=CATEGORY_STYLES.get(view.category, "bold red"),
    )
    text.append(f" · {view.confidence}", style="dim")
    if view.exit:
        text.append(printable(f" · {view.exit}"), style="dim")
    return text


def one_line(view: Outline) -> Text:
    """The verdict in one line, for `--quiet` (never wrapped: the caller prints it with soft
    wrapping, so a narrow terminal folds it instead of trainwatch breaking it)."""
    text = Text("trainwatch: ")
    text.append_text(headline(view))
    text.append(printable(f" · {view.summary}"))
    return text


def printable(text: str) -> str:
    """`text` without the control characters a terminal would act on (see _CONTROLS)."""
    return text.translate(_CONTROLS)


def _clip(text: str) -> str:
    return text if len(text) <= CLIP else text[: CLIP - 1] + "…"
