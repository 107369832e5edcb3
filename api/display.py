"""Showing a `Diagnosis` from Python: the command's report, rich on a terminal, HTML in Jupyter.

The report is the one cli/reports draws (redacted once, one outline, every format); nothing here
decides what a report says, only where it goes.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from trainwatch.cli.reports.outline import Outline
    from trainwatch.diagnostics.verdict import Diagnosis


def render(diagnosis: Diagnosis, format: Literal["text", "html"] = "text") -> str:
    """The report as a string: plain text (no colour, no layout), or a whole HTML page."""
    redacted, view = _outline(diagnosis)
    if format == "html":
        from trainwatch.cli.reports.html import html_report

        return html_report(redacted, view)
    if format == "text":
        return view.text()
    raise ValueError(f"format must be 'text' or 'html', not {format!r}")


def show(diagnosis: Diagnosis) -> None:
    """Show the report where the user is looking: as HTML in a Jupyter notebook, else the
    terminal report on stderr (the one `trainwatch run` prints)."""
    display = _notebook_display()
    if display is not None:
        display(_Html(render(diagnosis, "html")))
        return
    from trainwatch.cli.reports import print_terminal

    print_terminal(_outline(diagnosis)[1])


def in_notebook() -> bool:
    """Is this a Jupyter kernel (a shell that shows HTML), rather than a terminal or IPython's
    console?"""
    return _notebook_display() is not None


def _outline(diagnosis: Diagnosis) -> tuple[Diagnosis, Outline]:
    from trainwatch.cli.exitpolicy import final_status
    from trainwatch.cli.reports.outline import outline
    from trainwatch.diagnostics.redaction import redact_diagnosis

    redacted = redact_diagnosis(diagnosis)
    return redacted, outline(redacted, final_status(redacted))


def _notebook_display():
    """IPython's `display`, when this runs in a Jupyter kernel; IPython is never imported here, only
    found when the kernel already loaded it."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return None
    from IPython.display import display

    return display


class _Html:
    """What IPython's `display` shows as HTML (its rich-display protocol), without importing it.

    The page goes in a frame of its own: its style sheet would otherwise restyle the notebook."""

    HEIGHT_PX = 640

    def __init__(self, page: str) -> None:
        self.page = page

    def _repr_html_(self) -> str:
        from html import escape

        return (
            f'<iframe srcdoc="{escape(self.page, quote=True)}" title="trainwatch report" '
            f'style="width:100%;height:{self.HEIGHT_PX}px;border:1px solid #d0d7de"></iframe>'
        )
