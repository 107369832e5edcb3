"""Shared test helpers: how to start the real `trainwatch` command and read what it wrote."""

from __future__ import annotations

import glob
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "scripts"
CORPUS = ROOT / "corpus"  # the labelled failure logs, kept in the repository (corpus/README.md)
CORPUS_LOGS = CORPUS / "logs"
# real logs the tests read by name, apart from the corpus (fixtures/logs/README.md names sources)
FIXTURE_LOGS = Path(__file__).resolve().parent / "fixtures" / "logs"
TRAINWATCH = str(Path(sys.executable).with_name("trainwatch"))


def trainwatch(
    *args: str, timeout: float = 120, env: dict | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """Run the installed `trainwatch` command to its end, capturing bytes."""
    full_env = dict(os.environ)
    # The child scripts run under this venv's python, which has torch; trainwatch finds it as
    # `python3` on PATH.
    full_env["PATH"] = f"{Path(sys.executable).parent}:{full_env.get('PATH', '')}"
    full_env.pop("TRAINWATCH_DEBUG", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [TRAINWATCH, *args], capture_output=True, timeout=timeout, env=full_env, **kwargs
    )


def read_report(path: Path) -> dict:
    """A JSON report trainwatch wrote, held to the consistency rule on the way."""
    return assert_consistent(json.loads(path.read_text()))


def assert_consistent(report: dict) -> dict:
    """Fail when the report's verdict says anything its own facts deny (an OOM-kill counter that
    moved, the kernel's line naming a process of the run, memory at its limit): the rule of
    diagnostics/judge/consistency.py, which every real run's report is held to."""
    from trainwatch.diagnostics.judge.consistency import report_contradictions

    found = report_contradictions(report)
    assert not found, f"the report contradicts itself: {found}"
    return report


@pytest.fixture
def script():
    """Path of a helper script in tests/scripts."""

    def find(name: str) -> str:
        return str(SCRIPTS / name)

    return find


# ---- trackers' files read back (tests of trainwatch.integrations and --attach-to) ---------------
def tensorboard_texts(folder: Path) -> dict[str, str]:
    """Every text summary in the event files under `folder`, by tag."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    texts = {}
    for path in glob.glob(str(folder / "**" / "events.out.tfevents.*"), recursive=True):
        for event in EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "text":
                    texts[value.tag] = value.tensor.string_val[0].decode()
    return texts


def wandb_records(folder: Path) -> list:
    """The records of the latest offline W&B run under `folder` (its .wandb file is a LevelDB-style
    log of protobuf `Record`s after a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2

    (path,) = glob.glob(str(folder / "wandb" / "latest-run" / "*.wandb"))
    data = Path(path).read_bytes()
    block, pos, chunks, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        chunks = chunk if kind in (1, 2) else chunks + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            records.append(record)
    return records


def wandb_summary_and_tags(folder: Path) -> tuple[dict[str, str], set[str]]:
    summary, tags = {}, set()
    for record in wandb_records(folder):
        kind = record.WhichOneof("record_type")
        if kind == "summary":
            summary.update({u.key: u.value_json for u in record.summary.update if u.key})
        elif kind == "run":
            tags.update(record.run.tags)
    return summary, tags
