"""Capture formats: a log rewritten the way other tools write it (timestamps, rank and worker
prefixes, CRLF, colour, fixed-width wrapping), for the metamorphic checks of the diagnosis.

Each format is a function of (line number, line) -> the line as that tool would have written it;
`rewrite(text, name)` applies one to a whole log. The wording of each prefix follows the tool's own
output (Kubernetes `kubectl logs --prefix`, Ray's worker prefix, torchrun's `--tee`/rank prefix,
`srun -l`, `mpirun --tag-output`, absl/glog, syslog, Docker Compose, Python logging, Docker's
json-file driver).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable


def _clock(n: int) -> tuple[int, int, int]:
    return (n // 3600) % 24, (n // 60) % 60, n % 60


def _iso(n: int, s: str) -> str:
    h, m, sec = _clock(n)
    return f"2024-05-01T{h:02d}:{m:02d}:{sec:02d}.{n * 7919 % 10**6:06d}Z {s}"


def _logging(n: int, s: str) -> str:
    h, m, sec = _clock(n)
    return f"2024-05-01 {h:02d}:{m:02d}:{sec:02d},{n % 1000:03d} - trainer - INFO - {s}"


def _absl(n: int, s: str) -> str:
    h, m, sec = _clock(n)
    return f"I0501 {h:02d}:{m:02d}:{sec:02d}.{n:06d} 48213 train.py:{100 + n % 50}] {s}"


def _syslog(n: int, s: str) -> str:
    h, m, sec = _clock(n)
    return f"May  1 {h:02d}:{m:02d}:{sec:02d} node01 python[48213]: {s}"


def _record(fields: dict, after: str = "") -> str:
    """One JSON record on its line, as log collectors write them (text as it is, not escaped)."""
    return json.dumps(fields, ensure_ascii=False) + after


def _docker_json(n: int, s: str) -> str:
    # Docker's json-file logging driver: one JSON object per line, the line in `log`
    h, m, sec = _clock(n)
    time = f"2024-05-01T{h:02d}:{m:02d}:{sec:02d}.{n * 7919 % 10**9:09d}Z"
    return _record({"log": s + "\n", "stream": "stderr", "time": time})


FORMATS: dict[str, Callable[[int, str], str]] = {
    "iso-timestamp": _iso,
    "python-logging": _logging,
    "kubectl-prefix": lambda n, s: "[pod/train-job-7f9c4-0/trainer] " + s,
    "ray-worker": lambda n, s: "(RayTrainWorker pid=48213, ip=10.0.0.5) " + s,
    "torchrun-rank": lambda n, s: "[rank0]: " + s,
    "srun-label": lambda n, s: "0: " + s,
    "mpirun-tag": lambda n, s: "[1,0]<stderr>:" + s,
    "absl": _absl,
    "syslog": _syslog,
    "compose": lambda n, s: "trainer-1  | " + s,
    "crlf": lambda n, s: s + "\r",
    "ansi-colour": lambda n, s: "\x1b[2m" + s + "\x1b[0m" if s else s,
    "docker-json": _docker_json,
}
WRAP_WIDTH = 100


# How Windows tools save a log's text (`--more` too): the same text, other bytes. Notepad's and
# PowerShell's `Out-File -Encoding UTF8` start with a UTF-8 mark; Windows PowerShell 5's `>` writes
# UTF-16 with a mark.
SAVED_AS: dict[str, Callable[[str], bytes]] = {
    "utf8-bom": lambda text: codecs.BOM_UTF8 + text.encode(),
    "powershell-utf16": lambda text: text.encode("utf-16"),
}


def saved(text: str, name: str) -> bytes:
    """The bytes of the log as the named tool would have saved it."""
    if name in SAVED_AS:
        return SAVED_AS[name](text)
    return rewrite(text, name).encode()


def rewrite(text: str, name: str) -> str:
    """The log as the named tool would have captured it; `a+b`: captured by `a`, then by `b`."""
    if "+" in name:
        for part in name.split("+"):
            text = rewrite(text, part)
        return text
    if name == "newest-first":  # a log viewer's page, copied: the last line first
        return "\n".join(reversed(text.rstrip("\n").split("\n"))) + "\n"
    if name == "csv-download":  # a log explorer's CSV download: a header, then a row a line
        out = io.StringIO()
        rows = csv.writer(out, lineterminator="\n")
        rows.writerow(["@timestamp", "@message"])
        for n, line in enumerate(text.rstrip("\n").split("\n")):
            rows.writerow([_iso(n, "").strip(), line])
        return out.getvalue()
    if name in _ONE_LINE:
        return _tracebacks_as_one_line(text, name)
    if name == "fixed-width-wrap":
        lines = []
        for line in text.split("\n"):
            while len(line) > WRAP_WIDTH:
                lines.append(line[:WRAP_WIDTH])
                line = line[WRAP_WIDTH:]
            lines.append(line)
        return "\n".join(lines)
    fmt = FORMATS.get(name) or MORE_FORMATS[name]
    lines = text.split("\n")
    last = len(lines) - 1
    return "\n".join(fmt(n, line) if n < last or line else line for n, line in enumerate(lines))


_DOUBLE_QUOTED = re.compile(r'"([^"]*)"')
_SINGLE_QUOTED = re.compile(r"'([^']*)'")


def _typographic(line: str) -> str:
    """The line's paired quotes as a typographer sets them: \u201c...\u201d and \u2018...\u2019."""
    line = _DOUBLE_QUOTED.sub("\u201c\\1\u201d", line)
    return _SINGLE_QUOTED.sub("\u2018\\1\u2019", line)


_HEAD = "Traceback (most recent call last):"  # the line Python opens a traceback with
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


def _traceback_end(lines: list[str], head: int) -> int:
    """The index of the exception's line of the traceback whose head is at `head`: the frames and
    their source are indented, the exception's line is not."""
    end = head + 1
    while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
        end += 1
    return end


# Tracebacks on one line each: folded into spaces (a page shows a paste made without a code
# block so), kept as `\n` in one quoted string (a service's error message, a structured logger's
# field), or as rsyslog's `#012` after a syslog prefix (Python's SysLogHandler through rsyslog).
_ONE_LINE = ("folded-tracebacks", "escaped-tracebacks", "rsyslog-tracebacks")


def _tracebacks_as_one_line(text: str, name: str) -> str:
    """Each traceback of the log (its head, its frames and its exception's line) on one line, as
    the named format writes it (see _ONE_LINE)."""
    escaped = name != "folded-tracebacks"
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != _HEAD:
            out.append(lines[i])
            i += 1
            continue
        end = _traceback_end(lines, i)
        # one string holds the whole chain (the causes' tracebacks and the words between them)
        while escaped and end + 4 < len(lines) and lines[end + 2].startswith(_CHAINED):
            if lines[end + 4].strip() != _HEAD:
                break
            end = _traceback_end(lines, end + 4)
        block = lines[i : end + 1]
        if len(block) < 3 or end >= len(lines):  # no frame, or no exception's line after them
            out.append(lines[i])
            i += 1
            continue
        if name == "rsyslog-tracebacks":
            out.append(_syslog(i, "ERROR training failed#012" + "#012".join(block)))
        elif escaped:
            body = "\\n".join(b.replace("\\", "\\\\").replace('"', '\\"') for b in block)
            out.append(f'ERROR job failed: message: "{body}"')
        else:
            out.append(" ".join(b.strip() for b in block if b.strip()))
        i = end + 1
    return "\n".join(out)


NAMES = (*FORMATS, "fixed-width-wrap")
# More of the formats users' tools write, checked by `python bench/accuracy.py --more` (not by the
# test suite, to keep it short): a container runtime's own log files (CRI), GitHub Actions'
# timestamps, loguru's default format, Jenkins' timestamper, logging.basicConfig with a time,
# Markdown indentation and quotes, Hydra's, Hugging Face's and rich's logging, rank tags, a time's
# zone, screen's padding, journald, stern, a Unix time, Determined's trial logs, pdsh's host tag,
# the JSON records of a Kaggle notebook's log and of a cloud logging export, a page's copy
# (indentation trimmed or as no-break spaces), typographic quotes, and line numbers.
MORE_FORMATS: dict[str, Callable[[int, str], str]] = {
    "cri": lambda n, s: (
        f"2024-05-01T10:{n // 60 % 60:02d}:{n % 60:02d}.{n * 7919 % 10**9:09d}Z stderr F {s}"
    ),
    "github-actions": lambda n, s: (
        f"2024-05-01T10:{n // 60 % 60:02d}:{n % 60:02d}.{n * 7919 % 10**7:07d}Z {s}"
    ),
    "loguru": lambda n, s: (
        f"2024-05-01 10:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d} | INFO     | "
        f"__main__:train:{40 + n % 50} - {s}"
    ),
    "jenkins": lambda n, s: f"[2024-05-01T10:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z] {s}",
    "logging-basic": lambda n, s: (
        f"2024-05-01 10:{n // 60 % 60:02d}:{n % 60:02d},{n % 1000:03d} INFO {s}"
    ),
    # a log pasted into a Markdown list item or a quote (an issue, a forum post, a chat message)
    "indented": lambda n, s: "    " + s if s else s,
    "tab-indented": lambda n, s: "\t" + s if s else s,
    "markdown-quote": lambda n, s: "> " + s,
    # Hydra's default job logging, and the logging format of Hugging Face's example scripts
    "hydra": lambda n, s: (
        f"[2024-05-01 10:{n // 60 % 60:02d}:{n % 60:02d},{n % 1000:03d}][__main__][INFO] - {s}"
    ),
    "hf-examples": lambda n, s: (
        f"05/01/2024 10:{n // 60 % 60:02d}:{n % 60:02d} - INFO - __main__ - {s}"
    ),
    # torchrun --tee with its default role; SageMaker's MPI launcher (rank and host in the tag)
    "torchrun-tee": lambda n, s: "[default0]:" + s,
    "sagemaker-mpi": lambda n, s: "[1,mpirank:0,algo-1]<stderr>:" + s,
    # rich's logging handler (and `%(levelname)-8s`): the level padded to its column
    "rich-logging": lambda n, s: f"[05/01/24 10:{n // 60 % 60:02d}:{n % 60:02d}] INFO     {s}",
    # a time with its zone, as `%Z` writes it (Python's logging with a datefmt, `date`)
    "time-zone": lambda n, s: f"2024-05-01 10:{n // 60 % 60:02d}:{n % 60:02d} UTC {s}",
    # GNU screen's hardcopy: every line padded with spaces to the terminal's width
    "screen-padded": lambda n, s: s.ljust(120),
    # journalctl -o short-iso (a systemd service's output)
    "journald": lambda n, s: (
        f"2024-05-01T10:{n // 60 % 60:02d}:{n % 60:02d}+0000 node01 python[48213]: {s}"
    ),
    # stern's default template over a Kubernetes job: the pod's and the container's names
    "stern": lambda n, s: f"train-job-7f9c4-0 trainer {s}",
    # logging's `%(created)f %(message)s`: the Unix time alone
    "logging-created": lambda n, s: f"{1714557600 + n}.{n * 7919 % 10**6:06d} {s}",
    # Determined's trial logs: the time, the container's id, the rank, then `|| `
    "determined": lambda n, s: (
        f"[2024-05-01T10:{n // 60 % 60:02d}:{n % 60:02d}.{n * 7919 % 10**6:06d}Z] 7f2c9a1e "
        f"[rank=0] || {s}"
    ),
    # pdsh (DeepSpeed's multi-node launcher) tags each line with the host it came from
    "pdsh-host": lambda n, s: f"worker-1: {s}",
    # a Kaggle notebook's saved log and a cloud logging export: JSON records, one per line, each
    # followed by the comma of the array they are in, the line under `data` or `textPayload`
    "kaggle-json": lambda n, s: _record(
        {"stream_name": "stderr", "time": round(1.5 + n * 0.01, 3), "data": s + "\n"}, ","
    ),
    "cloud-logging-json": lambda n, s: _record(
        {"textPayload": s, "severity": "ERROR", "timestamp": f"2024-05-01T10:00:{n % 60:02d}Z"},
        ",",
    ),
    # a page's copy: every line's indentation trimmed, or written as no-break spaces
    "trimmed": lambda n, s: s.lstrip(),
    "nbsp-indent": lambda n, s: "\u00a0" * (len(s) - len(s.lstrip(" "))) + s.lstrip(" "),
    # a forum's or an editor's typographic quotes (a paste outside a code block)
    "typographic-quotes": lambda n, s: _typographic(s),
    # copies that number their lines: `cat -n`, `grep -n`, a log viewer's gutter
    "cat-n": lambda n, s: f"{n + 1:6d}\t{s}",
    "grep-n": lambda n, s: f"{n + 1}:{s}",
    "viewer-gutter": lambda n, s: f"{n + 1} | {s}",
}


# Two tools, one over the other (a collector's timestamp over a coloured console, Ray's prefix over
# colour, a logging format under a pod prefix...): `python bench/accuracy.py --more` too.
STACKED = (
    "iso-timestamp+ansi-colour",
    "ansi-colour+iso-timestamp",
    "iso-timestamp+crlf",
    "ray-worker+ansi-colour",
    "python-logging+kubectl-prefix",
    "torchrun-rank+iso-timestamp",
    "compose+ansi-colour",
    "syslog+crlf",
    "iso-timestamp+docker-json",
    "srun-label+python-logging",
    "iso-timestamp+newest-first",
)
# Whole-text rewrites beside the line formats (`--more`): a log viewer's newest-first order, a log
# explorer's CSV download, tracebacks on one line (_ONE_LINE).
WHOLE = ("newest-first", "csv-download", *_ONE_LINE)
