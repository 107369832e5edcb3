"""Shared test helpers: how to start the real `trainwatch` command and read what it wrote."""

from __future__ import annotations

import fcntl
import functools
import glob
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "scripts"
CORPUS = ROOT / "corpus"  # the labelled failure logs, kept in the repository (corpus/README.md)
CORPUS_LOGS = CORPUS / "logs"
# real logs the tests read by name, apart from the corpus (fixtures/logs/README.md names sources)
FIXTURE_LOGS = Path(__file__).resolve().parent / "fixtures" / "logs"
# The unit tests that read every corpus log's report run in this xdist group, on one worker, so that
# each log is explained once (`corpus_diagnosis`); `make` passes `--dist loadgroup`.
ON_EVERY_CORPUS_LOG = pytest.mark.xdist_group("corpus")


@functools.cache
def corpus_diagnosis(path: Path):
    """`trainwatch explain` of one corpus log with the built-in knowledge, once per test process."""
    from trainwatch.diagnostics.postmortem import explain_logs

    return explain_logs([str(path)], _builtin_knowledge())


@functools.cache
def _builtin_knowledge():
    from trainwatch.diagnostics.knowledge import load_knowledge

    return load_knowledge(include_user=False)


TRAINWATCH = str(Path(sys.executable).with_name("trainwatch"))


def pytest_configure(config) -> None:
    """Run the suite's programs as a terminal's foreground job would be: a shell's `cmd &` starts
    its job with SIGINT and SIGQUIT ignored, every program under it inherits that through exec,
    and trainwatch (rightly) leaves a signal ignored as the program alone would. A suite started
    that way would see the Ctrl-C tests wait out their timeouts: the dispositions are reset here,
    in the controller and in each xdist worker, so that what the tests send arrives."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def trainwatch_env(**extra: str) -> dict[str, str]:
    """The environment the tests start `trainwatch` in: the child scripts run under this venv's
    python, which has torch (trainwatch finds it as `python3` on PATH), and no debug tracebacks."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.pop("TRAINWATCH_DEBUG", None)
    env.update(extra)
    return env


def trainwatch(
    *args: str, timeout: float = 120, env: dict | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """Run the installed `trainwatch` command to its end, capturing bytes."""
    return subprocess.run(
        [TRAINWATCH, *args],
        capture_output=True,
        timeout=timeout,
        env=trainwatch_env(**(env or {})),
        **kwargs,
    )


def needs(*modules: str) -> None:
    """Skip the test where a module its program imports is not installed. Unlike
    `pytest.importorskip` it does not import the module into the test process (Lightning alone
    takes ~5 s of CPU there, for a program that imports it again)."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def can_mount_private_shm() -> bool:
    """Whether a test may mount a tmpfs of its own on /dev/shm here (root, `unshare -m`)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /dev/shm"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def through_a_file(report: dict) -> dict:
    """A JSON report as it is after a trip through a file."""
    return json.loads(json.dumps(report, default=str))


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


# ---- real runs shared by the tests that read them ------------------------------------------------
DEMO = ROOT / "api" / "demo" / "train_cnn.py"
# The runs several test files judge (the golden outputs, the verdicts, the hang's culprits): each
# runs once per test session, not once per test. name -> (trainwatch's options, the program and its
# arguments; {tmp} is the run's own folder).
SHARED_RUNS = {
    "corrupt-image": ((), (str(DEMO), "--epochs", "1", "--data", "{tmp}/images")),
    "completed": ((), (str(SCRIPTS / "quiet_complete.py"),)),
    "nan-loss": ((), (str(SCRIPTS / "quiet_nan_loss.py"),)),
    "early-exit": ((), (str(SCRIPTS / "quiet_tqdm_break.py"),)),
    "dataloader-hang": (("--stall-timeout", "3"), (str(SCRIPTS / "quiet_dataloader_lock.py"),)),
    "no-padding-collator": ((), (str(SCRIPTS / "hf_collate.py"), "{tmp}/out")),
    "ddp-unused-parameters": ((), (str(SCRIPTS / "ddp_unused.py"),)),
    "address-space-limit": ((), (str(SCRIPTS / "big_alloc.py"),)),
}
# Each run's own resource limits; the address-space one as a job script's `ulimit -v` sets it.
SHARED_RUN_LIMITS = {"address-space-limit": 2 * 2**30}
# The terminal the shared runs report to: a fixed width, no colour, not a CI job.
SHARED_RUN_ENV = {"COLUMNS": "100", "NO_COLOR": "1", "GITHUB_ACTIONS": ""}


@dataclass(frozen=True)
class SharedRun:
    """One finished `trainwatch run --json` of a SHARED_RUNS scenario."""

    folder: Path  # the run's own folder ({tmp}), where its report is
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def report(self) -> dict:
        return read_report(self.folder / "report.json")


@pytest.fixture(scope="session")
def shared_run(tmp_path_factory):
    """`shared_run(name)`: the scenario's run, started by whichever test asks first. The folder is
    the session's, above each xdist worker's, and a lock file per scenario makes the other worker
    wait for that run rather than start its own."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent

    def run(name: str) -> SharedRun:
        folder = base / f"shared-{name}"
        with open(base / f"shared-{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (folder / "returncode").exists():
                _start_shared_run(name, folder)
        return SharedRun(
            folder,
            int((folder / "returncode").read_text()),
            (folder / "stdout").read_bytes(),
            (folder / "stderr").read_bytes(),
        )

    return run


def _start_shared_run(name: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    options, program = SHARED_RUNS[name]
    limit = SHARED_RUN_LIMITS.get(name)
    result = trainwatch(
        "run",
        "--json",
        str(folder / "report.json"),
        *options,
        *(arg.replace("{tmp}", str(folder)) for arg in program),
        env=SHARED_RUN_ENV,
        timeout=180,
        preexec_fn=None
        if limit is None
        else lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY)),
    )
    (folder / "stdout").write_bytes(result.stdout)
    (folder / "stderr").write_bytes(result.stderr)
    (folder / "returncode").write_text(str(result.returncode))  # last: the run is complete


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
