"""A diagnosis handed to an experiment tracker: Weights & Biases (summary fields, a tag, the report
as a file of the run) and TensorBoard (a text summary in the run's log directory).

W&B is used only when the program already imported it (a run the user or the framework started);
TensorBoard gets the program's own SummaryWriter when it has one, else an event file of its own
(integrations/tfevents.py: no torch, no tensorboard package). Neither tracker is imported by
`import trainwatch`.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainwatch.diagnostics.verdict import Diagnosis

REPORT_FILE = "trainwatch-report.json"
TEXT_TAG = "trainwatch/report"


def summary_fields(diagnosis: Diagnosis) -> dict[str, Any]:
    """The verdict as flat `trainwatch/...` fields: what a run table can show and filter on."""
    v = diagnosis.verdict
    exit = diagnosis.exit
    return {
        "trainwatch/category": v.category,
        "trainwatch/subtype": v.subtype or v.category,
        "trainwatch/confidence": round(v.confidence, 2),
        "trainwatch/summary": v.summary,
        "trainwatch/signature": v.signature or "",
        "trainwatch/exit": None if exit is None else exit.status,
    }


def report_markdown(diagnosis: Diagnosis) -> str:
    """The report as TensorBoard's text plugin shows it: the headline in bold, the rest verbatim."""
    from trainwatch.display import render

    text = render(diagnosis, "text")
    head, _, rest = text.partition("\n")
    return f"**{head}**\n\n```\n{rest.strip()}\n```"


def to_wandb(diagnosis: Diagnosis, run: Any = None) -> bool:
    """Attach the verdict to a W&B run (the active one when `run` is None): summary fields, the tag
    `trainwatch/<category>`, and the JSON report saved as a file of the run. False when there is
    no run. Works offline: nothing here needs the network."""
    if run is None:
        wandb = sys.modules.get("wandb")
        run = getattr(wandb, "run", None) if wandb is not None else None
    if run is None:
        return False
    from trainwatch.diagnostics.redaction import redact_diagnosis

    redacted = redact_diagnosis(diagnosis)
    for key, value in summary_fields(redacted).items():
        run.summary[key] = value
    tag = f"trainwatch/{redacted.verdict.category}"
    if tag not in (run.tags or ()):
        run.tags = (*(run.tags or ()), tag)
    path = os.path.join(run.dir, REPORT_FILE)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(redacted.to_dict(), fh, indent=2, ensure_ascii=False, default=str)
    run.save(path, base_path=run.dir, policy="now")
    return True


def to_tensorboard(
    diagnosis: Diagnosis, log_dir: str | None = None, writer: Any = None, step: int | None = None
) -> bool:
    """Write the report as a text summary (tag `trainwatch/report`): through `writer` (a
    SummaryWriter, or any object with `add_text`), or a new event file in `log_dir`."""
    if writer is None and log_dir is None:
        return False
    text = report_markdown(diagnosis)
    if writer is not None:
        writer.add_text(TEXT_TAG, text, global_step=step)
        if hasattr(writer, "flush"):
            writer.flush()
        return True
    from trainwatch.integrations.tfevents import write_text_event_file

    write_text_event_file(log_dir, TEXT_TAG, text, step=step or 0)
    return True
