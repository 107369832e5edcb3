"""The run registry, `trainwatch ps` and `trainwatch dump`'s text, without a child process: the
private directory's rules, stale entries, which run a pid belongs to, and the tables."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import replace

import pytest

from trainwatch.cli.dump import render as render_dump
from trainwatch.cli.ps import COLUMNS, state
from trainwatch.cli.ps import render as render_ps
from trainwatch.diagnostics.evidence import Frame
from trainwatch.diagnostics.read.frames import ThreadStack
from trainwatch.diagnostics.watch.dump import ProcessDump
from trainwatch.diagnostics.watch.registry import (
    Registration,
    RegistryUnavailable,
    RunEntry,
    live_runs,
    open_registry,
    registry_dir,
    run_of,
    start_ticks,
)


def test_the_registry_lives_in_the_users_runtime_directory_else_in_tmp(tmp_path):
    uid = os.getuid()
    assert registry_dir({"XDG_RUNTIME_DIR": str(tmp_path)}) == tmp_path / "trainwatch"
    assert str(registry_dir({})) == f"/tmp/trainwatch-{uid}"
    assert str(registry_dir({"XDG_RUNTIME_DIR": "relative/dir"})) == f"/tmp/trainwatch-{uid}"
    assert str(registry_dir({"XDG_RUNTIME_DIR": str(tmp_path / "none")})) == (
        f"/tmp/trainwatch-{uid}"
    )


def test_the_directory_is_made_private_and_a_link_is_refused(tmp_path):
    made = open_registry({"XDG_RUNTIME_DIR": str(tmp_path)})
    assert made == tmp_path / "trainwatch" and made.stat().st_mode & 0o777 == 0o700
    made.chmod(0o755)
    open_registry({"XDG_RUNTIME_DIR": str(tmp_path)})
    assert made.stat().st_mode & 0o777 == 0o700
    other = tmp_path / "other"
    other.mkdir()
    (other / "trainwatch").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(RegistryUnavailable, match="not a directory"):
        open_registry({"XDG_RUNTIME_DIR": str(other)})
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    with pytest.raises(RegistryUnavailable, match="no run has registered"):
        open_registry({"XDG_RUNTIME_DIR": str(empty)}, create=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a directory to another user")
def test_a_directory_of_another_user_is_refused(tmp_path):
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    (runtime / "trainwatch").mkdir(mode=0o700)
    os.chown(runtime / "trainwatch", 4242, 4242)
    with pytest.raises(RegistryUnavailable, match="another user"):
        open_registry({"XDG_RUNTIME_DIR": str(runtime)})


def _entry_file(directory, pid: int, ticks: int | None, child: int = 1, **status) -> None:
    data = {
        "schema": "trainwatch.run/1",
        "pid": pid,
        "start_ticks": ticks,
        "child_pid": child,
        "command": ["python3", "train.py"],
        "started_at": time.time() - 90,
        "status": status,
    }
    (directory / f"{pid}.json").write_text(json.dumps(data))


def test_live_entries_are_listed_and_stale_ones_removed(tmp_path):
    me = os.getpid()
    _entry_file(tmp_path, me, start_ticks(me), position="epoch 2/10")
    _entry_file(tmp_path, 1, 12345)  # pid 1 is alive, but did not start then: a reused pid
    _entry_file(tmp_path, 999_999_999, 1)  # gone
    (tmp_path / "broken.json").write_text("{")
    (entry,) = live_runs(tmp_path)
    assert entry.pid == me and entry.status == {"position": "epoch 2/10"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["broken.json", f"{me}.json"])


def test_a_pid_names_its_run_through_its_parents(tmp_path):
    me, parent = os.getpid(), os.getppid()
    entries = [
        RunEntry.from_dict(
            {"pid": 777, "start_ticks": 1, "child_pid": parent, "command": []}, tmp_path
        )
    ]
    assert run_of(entries, 777) is entries[0]  # its ID
    assert run_of(entries, me) is entries[0]  # a descendant of its program
    assert run_of(entries, 1) is None


def test_a_registration_writes_its_status_and_removes_its_file(tmp_path):
    closed = threading.Event()
    calls = []

    def status():
        calls.append(1)
        return {"last_loss": float("nan"), "position": "step 3"}

    registration = Registration(tmp_path, 4242, ("python3", "t.py"), None, status, closed)
    registration.write()
    data = json.loads(registration.path.read_text())
    assert data["status"] == {"last_loss": "nan", "position": "step 3"}  # JSON has no NaN
    assert data["child_pid"] == 4242 and data["pid"] == os.getpid()
    assert registration.path.stat().st_mode & 0o777 == 0o600
    (entry,) = live_runs(tmp_path)
    assert entry.command == ("python3", "t.py")
    closed.set()
    registration.serve()  # one last write, then the file goes
    assert list(tmp_path.iterdir()) == []


def _entry(tmp_path, **status) -> RunEntry:
    return RunEntry.from_dict(
        {
            "pid": 28817,
            "start_ticks": 1,
            "child_pid": 28820,
            "command": ["python3", "train.py", "--lr", "3e-4"],
            "started_at": 1000.0,
            "status": status,
        },
        tmp_path,
    )


def test_ps_shows_a_row_a_run_with_its_state(tmp_path):
    entry = _entry(
        tmp_path,
        position="epoch 3/20, step 40/100",
        last_loss=0.42134,
        rss_bytes=3 << 30,
        gpu_bytes=11 << 30,
    )
    lines = render_ps([entry], now=1000.0 + 7993, width=200).splitlines()
    assert lines[0].split() == list(COLUMNS)
    assert lines[1].split("  ")[0] == "28817"
    for cell in ("2 h 13 min", "epoch 3/20, step 40/100", "0.4213", "3.0 GiB", "11.0 GiB"):
        assert cell in lines[1]
    assert lines[1].endswith("running  python3 train.py --lr 3e-4")
    narrow = render_ps([entry], now=1090.0, width=110).splitlines()[1]
    assert len(narrow) == 110 and narrow.endswith("…")


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ({}, "running"),
        ({"silent_s": 125}, "quiet 2 min 5 s"),
        ({"first_nonfinite_at": "epoch 3/20"}, "loss NaN since epoch 3/20"),
        (
            {"stall_timeout_s": 60, "stall": {"silent_s": 600, "busy": True, "action": "reported"}},
            "stalled 10 min (busy)",
        ),
        # without --stall-timeout the watcher's own note of a silence is no stall yet
        (
            {"silent_s": 45, "stall": {"silent_s": 45, "busy": False, "action": "reported"}},
            "running",
        ),
        ({"stall": {"silent_s": 600, "busy": False, "action": "stopped"}}, "stalled: stopping"),
        ({"stopping_for_nan": True, "first_nonfinite_at": "x"}, "stopping: loss NaN"),
    ],
)
def test_the_state_says_what_trainwatch_sees_so_far(status, words):
    assert state(status) == words


def test_dump_prints_each_thread_with_its_wait_and_frames_outermost_first(tmp_path):
    frames = (
        Frame("train.py", 40, "<module>", "for batch in loader:", True),
        Frame(
            "/usr/lib/python3/site-packages/torch/utils/data/dataloader.py",
            1291,
            "_try_get_data",
            "data = self._data_queue.get(timeout=timeout)",
            False,
        ),
    )
    dumps = (
        ProcessDump(
            28820,
            "python3 train.py",
            "probe",
            rank=0,
            threads=(
                ThreadStack(0x7F01, False, False, (frames[0],)),
                ThreadStack(0x7F00, True, True, frames),
            ),
        ),
        ProcessDump(28830, "sh -c x", "kernel", kernel_wait="kernel: do_wait", note="no probe"),
    )
    worker_loop = Frame(
        "/x/site-packages/torch/utils/data/_utils/worker.py",
        309,
        "_worker_loop",
        "r = q.get()",
        False,
    )
    # a fork is named a DataLoader worker only where its stack runs the worker loop
    worker = ProcessDump(
        28840,
        "python3 train.py",
        "probe",
        forked=True,
        threads=(ThreadStack(0x7F02, True, True, (worker_loop,)),),
    )
    producer = replace(worker, pid=28841, threads=(ThreadStack(0x7F03, True, True, frames),))
    both = render_dump(_entry(tmp_path, position="step 4"), (worker, producer), now=1012.0)
    assert "pid 28840 · DataLoader worker · python3 train.py" in both
    assert "pid 28841 · forked · python3 train.py" in both
    assert worker.to_dict()["dataloader_worker"] and not producer.to_dict()["dataloader_worker"]
    text = render_dump(_entry(tmp_path, position="step 4"), dumps, now=1012.0)
    lines = text.splitlines()
    assert lines[0] == "run 28817 · python3 train.py --lr 3e-4 · running 12 s · step 4"
    assert lines[2] == "pid 28820 · rank 0 · python3 train.py"
    assert lines[3] == "  main thread: waiting for a batch from the DataLoader's workers"
    assert lines[4] == '    File "train.py", line 40, in <module>'
    assert lines[5] == "      for batch in loader:"
    assert "  thread 0x7f01: " in text
    assert lines[-1] == "  no Python stack: no probe; kernel: do_wait"
    as_json = dumps[0].to_dict()
    assert as_json["threads"][1]["wait"]["kind"] == "dataloader"
