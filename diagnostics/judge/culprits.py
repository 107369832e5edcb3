"""What a reader must know about a verdict's culprit frame: that a CUDA error only surfaced there,
that the error was raised inside the data collator the culprit line ran, or that a signal handler
raised it where the program happened to be.

The culprit is the user's deepest frame on the failing stack (judge/classify.py). Three failures
make that line mislead without a word beside it: CUDA reports a kernel's error at a later call
(`loss.item()`), not at the kernel; a collator raises inside the framework, far below the
user's `trainer.train()`; and torch's signal handler raises a worker's death wherever the main
process stood.
"""

from __future__ import annotations

import re
from dataclasses import replace

from trainwatch.diagnostics.evidence import Frame, RaisedException, deepest_user_frame
from trainwatch.diagnostics.read.tracebacks import frames_under
from trainwatch.diagnostics.verdict import Culprit, Verdict
from trainwatch.diagnostics.watch.stall import short_path

# An error that CUDA reported asynchronously: the kernel at fault ran before the line it surfaced at
# (PyTorch's own message says so: "CUDA kernel errors might be asynchronously reported at some
# other API call"). An out-of-memory error is raised at the allocation itself.
ASYNC_CUDA = re.compile(
    r"asynchronously reported|device-side assert|illegal memory access|misaligned address|"
    r"CUDA error: (?!out of memory)|CUBLAS_STATUS_(?!ALLOC)|CUDNN_STATUS_(?!ALLOC)|"
    r"unspecified launch failure"
)
ASYNC_NOTE = (
    "where the error surfaced: CUDA reports a kernel's error at a later call, so the kernel at "
    "fault may have run on an earlier line (rerun with CUDA_LAUNCH_BLOCKING=1 to stop at it)"
)
# Frames a framework prints to name the user's line that matters, apart from the traceback of the
# call that raised (by the verdict's subtype): anomaly mode (`set_detect_anomaly(True)`, Lightning's
# `detect_anomaly`) names the forward call whose backward made the NaN (`UserWarning: Error detected
# in PowBackward0. Traceback of forward call that caused the error:`), or whose saved output an
# in-place operation changed, above the traceback that `backward()` raised; Dynamo names the line
# it could not trace after `from user code:`, under the exception its compiled call raised.
NAMED_FRAMES = (
    (
        "numerical/anomaly",
        "Traceback of forward call that caused the error:",
        "the forward line whose backward made the NaN (anomaly mode's trace)",
    ),
    (
        "code/inplace-autograd",
        "Traceback of forward call that caused the error:",
        "the forward operation whose saved result was changed in place before backward (anomaly "
        "mode's trace)",
    ),
    (
        "code/graph-break",
        "from user code:",
        "the line torch.compile could not trace (Dynamo's `from user code:`)",
    ),
)
NAMED_FRAMES_MAX = 80  # lines read after the heading: the frames and their code


def with_named_culprit(verdict: Verdict, lines) -> Verdict:
    """The verdict with the user's line the framework named for it (NAMED_FRAMES) as its culprit:
    where the error was raised (`backward()`, the compiled model's call) says less. `lines`: the
    log's lines."""
    subtype = verdict.subtype or ""
    named = next((n for n in NAMED_FRAMES if subtype.startswith(n[0])), None)
    if named is None:
        return verdict
    _, heading, note = named
    frame = deepest_user_frame(frames_under(lines, heading, NAMED_FRAMES_MAX))
    return verdict if frame is None else replace(verdict, culprit=Culprit.from_frame(frame, note))


# A collate function, by its name: torch's default_collate, a Dataset's collate_fn, Hugging Face's
# data collators (`torch_default_data_collator`, `DataCollatorWithPadding.__call__`).
COLLATE_FUNCTION = re.compile(r"(?i)collat")
COLLATE_FILE = re.compile(r"(?i)collat")


# torch's SIGCHLD handler (torch/utils/data/_utils/signal_handling.py) raises `DataLoader worker
# (pid N) is killed by signal` wherever the main process was when a worker died: that line is a
# moment, not the cause (real runs of the forty-ninth session named `loss.backward()`, a loss call
# and the loop's `for`, run to run).
SIGNAL_HANDLER_FILE = re.compile(r"signal_handling\.py$")
SIGNAL_NOTE = (
    "where the main process happened to be when a DataLoader worker died (torch's signal handler "
    "raised here): the worker, not this line, is where to look"
)


def annotate_culprit(verdict: Verdict) -> Verdict:
    """The verdict with a note on its culprit where the culprit line alone would mislead."""
    culprit = verdict.culprit
    if culprit is None or culprit.note is not None:
        return verdict
    chain = verdict.exception_chain or ((verdict.exception,) if verdict.exception else ())
    note = None
    if any(ASYNC_CUDA.search(e.message) for e in chain):
        note = ASYNC_NOTE
    elif any(SIGNAL_HANDLER_FILE.search(f.file) for e in chain for f in e.frames[-3:]):
        note = SIGNAL_NOTE
    else:
        frame = collate_frame(chain)
        if frame is not None and not frame.user and frame.function != culprit.function:
            note = (
                f"the error was raised inside the data collator this line ran "
                f"({short_path(frame.file)}:{frame.line} in {frame.function})"
            )
    return replace(verdict, culprit=replace(culprit, note=note)) if note else verdict


def collate_frame(chain: tuple[RaisedException, ...]) -> Frame | None:
    """The innermost frame of a collate function on the failing stack, if any."""
    for exc in chain:  # the first raised is the initiating one
        for frame in reversed(exc.frames):
            if COLLATE_FUNCTION.search(frame.function) or (
                frame.function == "__call__" and COLLATE_FILE.search(frame.file)
            ):
                return frame
    return None
