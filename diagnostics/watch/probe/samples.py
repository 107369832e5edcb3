"""The sample a failure was loading, read back from the probe's `sample` records: `FailedSample`.

The probe writes a `sample` record when a failing stack passed through a Dataset's `__getitem__`,
a collate function, an iterator or a transform (docs/probe.md): the short descriptions of those
calls' arguments, the existing files they named, and for a label out of range or NaN/Inf in a
tensor, the positions in the batch. A DataLoader worker's record is written by the worker itself
(torch sends its exception to the main process only as text) and is paired here with the main
process's re-raise by the worker's number and the exception's type.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
from dataclasses import dataclass
from typing import Any

from trainwatch.diagnostics.read.frames import probe_said_user

_ITEM_FUNCTIONS = ("__getitem__", "__getitems__")
# What a reload command shows where the Dataset's constructor needs the run's arguments: no Python
# that runs as it stands
ARGUMENTS_PLACEHOLDER = "<ARGS>"
_WORKER_WHERE = "in DataLoader worker process "
# How to load a file of a known kind on its own, for when the Dataset cannot be rebuilt in one line.
_FILE_LOADERS = {
    (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"): (
        "from PIL import Image; Image.open({path}).load()"
    ),
    (".npy", ".npz"): "import numpy; numpy.load({path})",
    (".pt", ".pth", ".bin"): "import torch; torch.load({path}, weights_only=True)",
    (".json",): "import json; json.load(open({path}))",
    (".jsonl",): "import json; [json.loads(line) for line in open({path})]",
    (".csv",): "import csv; list(csv.reader(open({path})))",
    (".wav", ".flac", ".ogg"): "import soundfile; soundfile.read({path})",
    (".parquet",): "import pyarrow.parquet; pyarrow.parquet.read_table({path})",
}


@dataclass(frozen=True)
class SampleCall:
    """One data function on the failing stack, with short descriptions of its arguments."""

    function: str  # "__getitem__", "fetch", "collate_fn", "__iter__", ...
    file: str
    line: int
    user: bool
    arguments: tuple[tuple[str, str], ...]  # (name, short repr): ("index", "517")
    owner: str | None = None  # the class of its `self`, qualified: "train.ImageFiles"
    owner_file: str | None = None  # where that class's __init__ is defined
    owner_required: int | None = None  # arguments its constructor needs besides self
    length: int | None = None  # `len()` of its `self` when it is an item lookup (`__getitem__`)

    def describe(self) -> str:
        """`ImageFiles.__getitem__(index=517)`."""
        name = self.function
        if self.owner:
            name = f"{self.owner.rsplit('.', 1)[-1]}.{name}"
        return f"{name}({', '.join(f'{k}={v}' for k, v in self.arguments)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "file": self.file,
            "line": self.line,
            "user": self.user,
            "arguments": dict(self.arguments),
            "owner": self.owner,
        }


@dataclass(frozen=True)
class BadLabels:
    """Class indices outside 0..classes-1 in the batch that failed."""

    classes: int
    positions: tuple[int, ...]  # positions in the batch (first 16)
    values: tuple[int, ...]  # the offending labels (first 8)
    count: int  # positions in all

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> BadLabels:
        """From a record, or from the report's `sample.labels`."""
        return _labels(item)

    def describe(self) -> str:
        """`labels 7, 5 at rows 2, 5 of the batch (the model has 5 classes: 0..4)`."""
        values = ", ".join(str(v) for v in self.values)
        return (
            f"label{'s' if len(self.values) != 1 else ''} {values} at "
            f"{_rows_text(self.positions, self.count)} of the batch (the model has "
            f"{self.classes} classes: 0..{self.classes - 1})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "positions": list(self.positions),
            "values": list(self.values),
            "count": self.count,
        }


@dataclass(frozen=True)
class NonFiniteRows:
    """A tensor on the failing stack holding NaN or Inf, and which batch positions do."""

    name: str  # the local's name: "inputs", "batch"
    function: str  # the function it was a local of
    user: bool
    shape: tuple[int, ...]
    positions: tuple[int, ...]  # along the first dimension (first 16)
    count: int

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> NonFiniteRows:
        """From a record, or from the report's `sample.nonfinite`."""
        return _rows(item)

    def describe(self) -> str:
        """`NaN/Inf in `batch` (8×6, in main): row 3`."""
        shape = "×".join(str(n) for n in self.shape)
        return (
            f"NaN/Inf in `{self.name}` ({shape}, in {self.function}): "
            f"{_rows_text(self.positions, self.count)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "function": self.function,
            "shape": list(self.shape),
            "positions": list(self.positions),
            "count": self.count,
        }


@dataclass(frozen=True)
class FailedSample:
    """What the failing code was loading: the sample's index or key, its file, its batch."""

    pid: int
    worker: int | None  # the DataLoader worker's number, when it failed in one
    exception: str  # the type it raised, qualified
    calls: tuple[SampleCall, ...] = ()  # the data functions on the stack, outermost first
    files: tuple[str, ...] = ()  # existing files their arguments or locals named
    cwd: str | None = None  # the process's working directory
    labels: BadLabels | None = None
    nonfinite: tuple[NonFiniteRows, ...] = ()
    message: str = ""  # the start of the exception's message (the record keeps 500 characters)

    def item_call(self) -> SampleCall | None:
        """The innermost `__getitem__`/`__getitems__`, the user's own first (a Subset's is not)."""
        items = [c for c in self.calls if c.function in _ITEM_FUNCTIONS and c.arguments]
        users = [c for c in items if c.user]
        return (users or items or [None])[-1]

    @property
    def short_exception(self) -> str:
        """The type it raised, unqualified (`UnidentifiedImageError`), as RaisedException's."""
        return self.exception.rsplit(".", 1)[-1]

    @property
    def index(self) -> str | None:
        """The index or key the sample was asked for, as the call got it (`517`, `'cat/12'`)."""
        call = self.item_call()
        return call.arguments[0][1] if call is not None else None

    @property
    def past_the_end(self) -> int | None:
        """The dataset's length when the failing index is its last one and the error an
        IndexError: `__len__` counting more items than the data holds fails exactly there."""
        call = self.item_call()
        if call is None or call.length is None or self.short_exception != "IndexError":
            return None
        index = _int(self.index)
        return call.length if index is not None and index == call.length - 1 else None

    @property
    def batch(self) -> str | None:
        """The batch of dataset indices torch's fetcher was building, when it was on the stack."""
        for call in self.calls:
            if call.function == "fetch" and call.arguments and call.arguments[0][1] != "None":
                return call.arguments[0][1]  # None: an iterable dataset's fetcher, unbatched
        return None

    @property
    def file(self) -> str | None:
        return self.files[0] if self.files else None

    @property
    def identified(self) -> bool:
        """Is the sample itself known (its index, its batch or its file), not only its rows?"""
        return self.index is not None or self.batch is not None or self.file is not None

    def describe(self) -> str:
        """`sample 517: /data/train/x_0517.png`, or what is known of it."""
        head = None
        if self.index is not None:
            head = f"sample {self.index}"
        elif self.batch is not None:
            head = f"batch {self.batch}"
        elif not self.file:
            call = next((c for c in reversed(self.calls) if c.arguments), None)
            head = call.describe() if call is not None else None
        if head and self.file:
            return f"{head}: {self.file}"
        if head or self.file:
            return head or f"file {self.file}"
        if self.labels is not None:
            return self.labels.describe()
        return self.nonfinite[0].describe() if self.nonfinite else "the batch that failed"

    def reload_command(self) -> str | None:
        """A one-line shell command that loads this one sample again, or None.

        Through the Dataset when its class can be imported and built without arguments (and
        its script guards its training behind `if __name__ == "__main__"`); else through the
        file's own loader, for the kinds of file listed above; else through the Dataset, with
        ARGUMENTS_PLACEHOLDER where the arguments the run gave it go.
        """
        call = self.item_call()
        index = self.index
        dataset = None
        if call is not None and call.owner and index is not None and not index.startswith("<"):
            dataset = self._dataset_command(call, index)
            if dataset is not None and call.owner_required == 0:
                return dataset
        return (_file_command(self.file) if self.file else None) or dataset

    def _dataset_command(self, call: SampleCall, index: str) -> str | None:
        module, _, name = call.owner.rpartition(".") if call.owner else ("", "", "")
        if not module or not name.isidentifier():
            return None  # a class defined inside a function cannot be imported
        directory = self.cwd
        if module in ("__main__", "__mp_main__"):  # the script (under spawn: its re-import)
            source = call.owner_file or call.file
            stem = os.path.splitext(os.path.basename(source))[0]
            if not stem.isidentifier() or not _guards_main(source):
                return None  # importing the script would start the training again
            module, directory = stem, os.path.dirname(source)
        if not _literal(index):
            return None  # a batch of indices shown shortened (`[4, 9, ...] (50 items)`)
        # where the class needs arguments, a placeholder that cannot run: `...` ran, and raised
        # a TypeError of its own a user could take for the failure again (BO's real runs)
        args = "" if call.owner_required == 0 else ARGUMENTS_PLACEHOLDER
        get = f"[{index}]" if call.function == "__getitem__" else f".__getitems__({index})"
        code = f"from {module} import {name}; print({name}({args}){get})"
        line = f"python -c {shlex.quote(code)}"
        if directory:
            line = f"cd {shlex.quote(directory)} && {line}"
        if args:
            line += f"  # put in {args} the arguments the run built {name} with"
        return line

    def to_dict(self) -> dict[str, Any]:
        """The JSON report's `sample` section (docs/report.md)."""
        return {
            "summary": self.describe(),
            "index": self.index,
            "file": self.file,
            "batch": self.batch,
            "files": list(self.files),
            "pid": self.pid,
            "worker": self.worker,
            "exception": self.exception,
            "calls": [c.to_dict() for c in self.calls],
            "labels": None if self.labels is None else self.labels.to_dict(),
            "nonfinite": [n.to_dict() for n in self.nonfinite],
            "reload": self.reload_command(),
        }


def sample_from(record: dict[str, Any]) -> FailedSample | None:
    """A `FailedSample` from a `sample` record; None when it names nothing."""
    calls = tuple(_call(c) for c in record.get("calls") or () if isinstance(c, dict))
    where = record.get("where")
    worker = None
    if isinstance(where, str) and where.startswith(_WORKER_WHERE):
        worker = _int(where[len(_WORKER_WHERE) :])
    labels = record.get("labels")
    sample = FailedSample(
        pid=_int(record.get("pid")) or 0,
        worker=worker,
        exception=str(record.get("type") or ""),
        calls=calls,
        files=tuple(str(f) for f in record.get("files") or () if isinstance(f, str)),
        cwd=record.get("cwd") if isinstance(record.get("cwd"), str) else None,
        labels=_labels(labels) if isinstance(labels, dict) else None,
        nonfinite=rows_from(record.get("nonfinite")),
        message=record.get("message") if isinstance(record.get("message"), str) else "",
    )
    if not (sample.calls or sample.files or sample.labels or sample.nonfinite):
        return None
    return sample


def pick_sample(
    samples: list[tuple[float, FailedSample]],
    exception: str | None,
    pid: int | None = None,
    worker: int | None = None,
    before: float | None = None,
    message: str | None = None,
) -> FailedSample | None:
    """The sample recorded for one failure: a worker's by its number, else the process's own, with
    the same exception type, not after `before`; where the failure's `message` is known, one with
    that message. The process's own: the latest. A worker's: the first its present process
    recorded (workers restart every epoch, as new processes): a worker goes on to the batches it
    was given after one fails, and may fail on later ones before the main process re-raises the
    first, the batches being re-raised in order."""
    short = (exception or "").rsplit(".", 1)[-1]
    found: list[FailedSample] = []
    for time, sample in sorted(samples, key=lambda item: item[0]):
        if before is not None and time > before + 1:
            continue
        if worker is not None and sample.worker != worker:
            continue
        if worker is None and (sample.worker is not None or sample.pid != pid):
            continue
        if short and sample.short_exception != short:
            continue
        found.append(sample)
    said = [s for s in found if message and s.message and _same_message(s.message, message)]
    found = said or found
    if not found:
        return None
    if worker is None:
        return found[-1]
    return next(s for s in found if s.pid == found[-1].pid)


MESSAGE_COMPARED = 200  # characters of a message's first line that tell one failure from another


def _same_message(recorded: str, raised: str) -> bool:
    first = recorded.strip().splitlines()[0][:MESSAGE_COMPARED] if recorded.strip() else ""
    return bool(first) and first == raised.strip().splitlines()[0][:MESSAGE_COMPARED]


def _literal(text: str) -> bool:
    """Is the text a Python literal as it stands (an index, a key, a list of indices)?"""
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _file_command(path: str) -> str | None:
    ext = os.path.splitext(path)[1].lower()
    for extensions, code in _FILE_LOADERS.items():
        if ext in extensions:
            return f"python -c {shlex.quote(code.format(path=json.dumps(path)))}"
    return None


def _guards_main(source: str) -> bool:
    """Does a script run its training only under `if __name__ == "__main__":`?"""
    try:
        with open(source, encoding="utf-8", errors="replace") as handle:
            text = handle.read(1 << 20)
    except OSError:
        return False
    return '__name__ == "__main__"' in text or "__name__ == '__main__'" in text


def _rows_text(rows: tuple[int, ...], count: int) -> str:
    """`row 3`, `rows 2, 5`, `rows 0, 1, ... (and 40 more)`."""
    text = ", ".join(str(v) for v in rows)
    more = f" (and {count - len(rows)} more)" if count > len(rows) else ""
    return f"row{'s' if count != 1 else ''} {text}{more}"


def _call(item: dict[str, Any]) -> SampleCall:
    owner = item.get("owner") if isinstance(item.get("owner"), dict) else {}
    name = owner.get("class")
    module = owner.get("module")
    args = item.get("args") if isinstance(item.get("args"), dict) else {}
    function, file = str(item.get("function") or "?"), str(item.get("file") or "?")
    return SampleCall(
        function=function,
        file=file,
        line=_int(item.get("line")) or 0,
        user=probe_said_user(file, function, bool(item.get("user"))),
        arguments=tuple((str(k), str(v)) for k, v in args.items()),
        owner=f"{module}.{name}" if name and module else (str(name) if name else None),
        owner_file=owner.get("file") if isinstance(owner.get("file"), str) else None,
        owner_required=_int(owner.get("required")),
        length=_int(item.get("length")),
    )


def _labels(item: dict[str, Any]) -> BadLabels:
    return BadLabels(
        classes=_int(item.get("classes")) or 0,
        positions=_ints(item.get("positions")),
        values=_ints(item.get("values")),
        count=_int(item.get("count")) or 0,
    )


def rows_from(items: Any) -> tuple[NonFiniteRows, ...]:
    """The `nonfinite` list of a record (a `sample`'s, or a `nonfinite` loss's)."""
    return tuple(_rows(n) for n in items or () if isinstance(n, dict))


def _rows(item: dict[str, Any]) -> NonFiniteRows:
    return NonFiniteRows(
        name=str(item.get("name") or "?"),
        function=str(item.get("function") or "?"),
        user=bool(item.get("user")),
        shape=_ints(item.get("shape")),
        positions=_ints(item.get("positions")),
        count=_int(item.get("count")) or 0,
    )


def _ints(values: Any) -> tuple[int, ...]:
    return tuple(v for v in (_int(x) for x in values or ()) if v is not None)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
