"""A saved Jupyter notebook (`.ipynb`, Colab's and Kaggle's downloads too) read as the output its
code cells printed, in cell order: what its user saw under the cells when the run died."""

from __future__ import annotations

import json
import re
from typing import Any

# nbformat 4 writes its keys sorted, so `"cells"` opens the file; older notebooks (`"worksheets"`)
# and any other JSON are read as text, as before.
_NOTEBOOK_HEAD = re.compile(rb'^\s*\{\s*"cells"\s*:\s*\[')


def looks_like_notebook(head: bytes) -> bool:
    """Do these first bytes begin a Jupyter notebook?"""
    return _NOTEBOOK_HEAD.match(head) is not None


def notebook_output(data: bytes) -> bytes | None:
    """The text the notebook's code cells printed: their streams (stdout, stderr: a training loop's
    lines, tqdm's bars), their errors' tracebacks as IPython drew them (the colour codes are taken
    off with every log's), and the text of their results. None when the bytes are not a notebook
    after all."""
    try:
        notebook = json.loads(data)
    except ValueError:  # also a UnicodeDecodeError
        return None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        return None
    printed: list[str] = []
    for cell in cells:
        if not (isinstance(cell, dict) and cell.get("cell_type") == "code"):
            continue
        # A stream's text comes in pieces (a `print(..., end="")`, a bar's redraws): a piece goes on
        # with the last one of its stream in its cell; anything else starts on a line of its own.
        going_on = None
        for output in cell.get("outputs") or ():
            text = _output_text(output) if isinstance(output, dict) else None
            if not text:
                continue
            stream = output.get("name") if output.get("output_type") == "stream" else None
            if (
                printed
                and not printed[-1].endswith("\n")
                and (stream is None or stream != going_on)
            ):
                printed.append("\n")
            printed.append(text)
            going_on = stream
    if printed and not printed[-1].endswith("\n"):
        printed.append("\n")
    return "".join(printed).encode("utf-8", errors="replace")


def _output_text(output: dict[str, Any]) -> str | None:
    kind = output.get("output_type")
    if kind == "stream":
        return _text(output.get("text"))
    if kind == "error":
        drawn = output.get("traceback")
        if isinstance(drawn, list) and drawn:
            return "\n".join(str(line) for line in drawn)
        return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    if kind in ("execute_result", "display_data"):
        data = output.get("data")
        return _text(data.get("text/plain")) if isinstance(data, dict) else None
    return None


def _text(value: object) -> str | None:
    """nbformat keeps a multi-line text as a list of lines (each with its newline) or one string."""
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return value if isinstance(value, str) else None
