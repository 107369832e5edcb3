"""Log collectors' record formats: a JSON object or a CSV row a line, the program's words in one of
its fields; read first, so that the rest reads the words as the program wrote them."""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass

# Log collectors that keep each line as a JSON object (Docker's json-file driver: `{"log": "...\n",
# "stream": "stderr", "time": ...}`; Kubernetes and cloud loggers' exports, Kaggle's log files) put
# the program's words in one string field, under one of these names.
JSON_TEXT_KEYS = ("log", "message", "msg", "data", "textPayload", "text", "line")
# Where JSON formatters of Python's logging (python-json-logger, structlog, cloud agents) put the
# traceback of `logger.exception(...)`: printed after the message, as logging's own formatter does.
JSON_TRACEBACK_KEYS = ("exc_info", "exception", "exc_text", "stack_trace", "traceback")
JSON_SHARE = 0.8  # of a log's first lines that must be such objects


def json_text_key(lines: list[str]) -> str | None:
    """The field that holds the program's words when the log's first lines are JSON objects that
    all have it (a collector's capture), else None."""
    objects = [line for line in lines if line.strip().lstrip("[,")]
    if not objects or not all(line.strip().lstrip("[,").startswith("{") for line in objects[:2]):
        return None
    keys: Counter[str] = Counter()
    for line in objects:
        record = _json_record(line)
        if record is not None:
            keys.update(k for k in JSON_TEXT_KEYS if isinstance(record.get(k), str))
    best = max(JSON_TEXT_KEYS, key=lambda k: keys[k])
    return best if keys[best] >= JSON_SHARE * len(objects) else None


def json_text(line: str, key: str) -> str | None:
    """The text a collector's JSON record holds under `key`, its line end taken off, and the
    traceback a logging formatter kept beside it; None when the line is not such a record."""
    record = _json_record(line)
    value = record.get(key) if record is not None else None
    if not isinstance(value, str):
        return None
    extra = [record[k] for k in JSON_TRACEBACK_KEYS if isinstance(record.get(k), str) and record[k]]
    ecs = _ecs_error(record)
    if ecs is not None:
        extra.append(ecs)
    return "\n".join(text.removesuffix("\n") for text in (value, *extra))


def _ecs_error(record: dict) -> str | None:
    """The traceback of an Elastic Common Schema record (ecs-logging's formatters): `error` holds
    the frames (`stack_trace`, as traceback.format_tb writes them), the exception's `type` and its
    `message`, nested or in dotted keys (`error.stack_trace`)."""
    error = record.get("error")
    fields = error if isinstance(error, dict) else {}
    stack, kind, message = (
        fields.get(name, record.get(f"error.{name}")) for name in ("stack_trace", "type", "message")
    )
    if not isinstance(stack, str) or not stack.strip():
        return None
    lines = [stack.removesuffix("\n")]
    if not stack.lstrip().startswith("Traceback"):
        lines.insert(0, "Traceback (most recent call last):")
    if isinstance(kind, str) and kind and kind not in stack:
        lines.append(f"{kind}: {message}" if isinstance(message, str) else kind)
    return "\n".join(lines)


def _json_record(line: str) -> dict | None:
    """One line as a JSON object: a record alone on its line, or one of a JSON array written a
    record a line (`[{...}`, `,{...}`, `{...}]`)."""
    import json  # only for a log that looks like JSON records

    text = line.strip().lstrip("[,").rstrip(",]")
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


# Log explorers' CSV downloads (CloudWatch Logs Insights, Kibana, Grafana, Azure Monitor, Datadog):
# a header of column names, then one record a row, the program's words in the column named as a
# JSON collector names its field (matched without case, and without the `@` or `_` of `@message`).
CSV_SHARE = 0.6  # of the rows after the header that must have its columns (a quoted field may
# hold a line end, which leaves the next line short)
_COLUMN_NAME = re.compile(r"[@_]?[A-Za-z][\w. -]{0,40}")
_CSV_TEXT_NAMES = {k.lower() for k in JSON_TEXT_KEYS} | {"content", "body"}


def csv_text_column(lines: list[str]) -> tuple[int, tuple[str, ...]] | None:
    """(the column holding the program's words, the header) when the log's first line is a CSV
    header naming such a column and most rows after it have its columns, else None."""
    said = [line for line in lines if line.strip()]
    if len(said) < 2 or "," not in said[0]:
        return None
    header = _row(said[0])
    if header is None or len(header) < 2 or not all(_COLUMN_NAME.fullmatch(h) for h in header):
        return None
    names = [h.lstrip("@_").lower() for h in header]
    column = next((i for i, n in enumerate(names) if n in _CSV_TEXT_NAMES), None)
    if column is None:
        return None
    rows = [_row(line) for line in said[1:]]
    fitting = sum(1 for row in rows if row is not None and len(row) == len(header))
    return (column, tuple(header)) if fitting >= CSV_SHARE * len(rows) else None


def _row(line: str) -> list[str] | None:
    try:
        return next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return None


@dataclass(frozen=True)
class Collected:
    """Where a collector's records hold the program's words: a JSON field, or a CSV column (whose
    header line reads as an empty line, so that the lines keep their numbers)."""

    key: str | None = None  # the JSON field
    column: tuple[int, tuple[str, ...]] | None = None  # the CSV column, and the header's names

    def text(self, line: str) -> str | None:
        """The words one record holds; None when the line is not such a record."""
        if self.key is not None:
            return json_text(line, self.key)
        assert self.column is not None
        row = _row(line)
        column, header = self.column
        if row is None or len(row) != len(header):
            return None
        if tuple(row) == header:
            return ""
        return row[column].removesuffix("\n")

    def block(self, data: bytes) -> bytes:
        """Whole lines -> the words each record holds, one line each (a record holding several
        lines gives them all); a line that is not such a record stays as it is."""
        out = []
        for raw in data.split(b"\n")[:-1]:
            text = self.text(raw.decode("utf-8", "replace"))
            out.append(raw if text is None else text.encode("utf-8", "surrogatepass"))
        return b"\n".join(out) + b"\n" if out else b""


def collected(lines: list[str]) -> Collected | None:
    """How the log's first lines were collected, when a collector wrote them as records."""
    key = json_text_key(lines)
    if key is not None:
        return Collected(key=key)
    column = csv_text_column(lines)
    return None if column is None else Collected(column=column)
