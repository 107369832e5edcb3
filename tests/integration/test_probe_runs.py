"""The probe: real Python children run with and without it; what it records and what it must leave
unchanged.
"""

from __future__ import annotations

import ast
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainwatch.diagnostics.watch.probe import ProbeFacts, ProbeSession

from conftest import ROOT, SCRIPTS, needs, read_report, trainwatch

PROBE_SOURCE = ROOT / "diagnostics" / "watch" / "probe" / "sitecustomize.py"


def plain_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TRAINWATCH_PROBE") and k != "PYTHONPATH"
    }
    env.update(extra or {})
    return env


def run_probed(
    args: list[str], base_env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], ProbeFacts]:
    env = plain_env(base_env)
    session = ProbeSession.create(base_env=env)
    try:
        done = subprocess.run(
            args, env={**env, **session.env}, capture_output=True, text=True, timeout=timeout
        )
        return done, session.collect()
    finally:
        session.cleanup()


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(SCRIPTS / name), *args]


def test_chained_exception_with_cause_and_context() -> None:
    done, facts = run_probed(script("probe_chained.py"))
    assert done.returncode == 1
    assert facts.loaded and len(facts.processes) == 1 and facts.processes[0].pid > 0
    chain = facts.primary_chain()
    assert chain is not None and chain.origin == "probe" and chain.thread is None
    assert [(e.type, e.relation) for e in chain.exceptions] == [
        ("KeyError", "context"),
        ("ValueError", "cause"),
        ("RuntimeError", None),
    ]
    assert chain.final.message == "cannot start training"
    deepest = chain.first.deepest_user_frame()
    assert (
        deepest is not None
        and deepest.function == "load"
        and deepest.code == 'return table["weights"]'
    )
    assert all(f.user for f in chain.first.frames)
    # the normal traceback still prints
    assert "The above exception was the direct cause" in done.stderr


def test_suppressed_context_is_left_out() -> None:
    _, facts = run_probed(script("probe_chained.py", "suppress"))
    chain = facts.primary_chain()
    assert chain is not None
    assert [e.type for e in chain.exceptions] == ["ValueError", "RuntimeError"]


def test_exception_recorded_when_the_program_replaced_excepthook() -> None:
    code = (
        "import sys\nsys.excepthook = lambda *a: print('custom hook', file=sys.stderr)\nraise "
        "TimeoutError('slow')"
    )
    done, facts = run_probed([sys.executable, "-c", code])
    assert done.returncode == 1 and done.stderr == "custom hook\n"
    chain = facts.primary_chain()
    assert (
        chain is not None and chain.final.type == "TimeoutError" and chain.final.message == "slow"
    )
    assert len(facts.chains) == 1


def test_exception_in_a_thread() -> None:
    done, facts = run_probed(script("probe_thread.py"))
    assert done.returncode == 0 and "main thread finished" in done.stdout
    assert "Exception in thread loader-thread" in done.stderr
    chain = facts.primary_chain()
    assert chain is not None and chain.thread == "loader-thread"
    assert chain.final.type == "ZeroDivisionError"
    assert chain.final.deepest_user_frame().code == "return 1 / n"


def test_a_thread_that_died_while_the_run_went_on_is_a_note_of_the_report(tmp_path) -> None:
    # the run ends well (exit 0): it completed, and the note says which thread of it died
    report = tmp_path / "r.json"
    done = trainwatch("run", "--json", str(report), "--", *script("probe_thread.py"))
    assert done.returncode == 0
    verdict = read_report(report)["verdict"]
    assert verdict["category"] == "completed" and "A thread of it ended" in verdict["summary"]
    notes = read_report(report)["notes"]
    said = [n for n in notes if n.startswith("thread 'loader-thread' of pid ")]
    assert said and said[0].endswith(
        "ended on an uncaught ZeroDivisionError: division by zero; the process went on without it"
    ), notes
    report_many = tmp_path / "many.json"
    trainwatch("run", "--json", str(report_many), "--", *script("probe_thread.py", "many"))
    assert read_report(report_many)["verdict"]["category"] == "completed"
    crashed = [n for n in read_report(report_many)["notes"] if n.startswith("thread 'crasher-")]
    assert len(crashed) == 3  # the first three: a note each, not a page of them


def test_many_threads_failing_at_once_leave_complete_records() -> None:
    _, facts = run_probed(script("probe_thread.py", "many"))
    assert sorted(c.thread for c in facts.chains) == sorted(f"crasher-{i}" for i in range(8))
    assert all(c.final.type == "OSError" and len(c.final.message) > 5000 for c in facts.chains)


def _python_with_monitoring() -> str | None:
    """A Python 3.12 or later on this machine (sys.monitoring), this one first; None if none."""
    if sys.version_info >= (3, 12):
        return sys.executable
    names = ("python3.14", "python3.13", "python3.12")
    on_path = [shutil.which(name) for name in names]
    # pyenv's shims answer only for the versions selected; its installs answer for themselves
    installed = sorted(Path.home().glob(".pyenv/versions/3.1[2-9]*/bin/python3"), reverse=True)
    for found in [*filter(None, on_path), *map(str, installed)]:
        if found:
            try:
                done = subprocess.run(
                    [found, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
            except (OSError, subprocess.SubprocessError):
                continue
            if done.stdout.strip() == "True":
                return found
    return None


MONITORING_PYTHON = _python_with_monitoring()


@pytest.mark.parametrize("how", ["call", "raise", "handled", "builtin", "raised"])
def test_system_exit_with_status_3(how: str, tmp_path) -> None:
    python = sys.executable
    if how == "raised":  # only sys.monitoring (Python 3.12) sees a SystemExit raised as such
        python = MONITORING_PYTHON or pytest.skip("no Python 3.12 or later on this machine")
    args = [python, str(SCRIPTS / "probe_exit.py"), *([] if how == "call" else [how])]
    done, facts = run_probed(args)
    assert done.returncode == 3 and done.stdout == "config invalid\n" and done.stderr == ""
    # Python shut down normally: a SystemExit, not a signal or os._exit
    assert facts.processes[0].exited
    seen = how in ("call", "handled", "builtin", "raised") or sys.version_info >= (3, 12)
    if seen:
        chain = facts.primary_chain()
        assert chain is not None and chain.final.type == "SystemExit" and chain.final.message == "3"
        called = {"builtin": "exit(3)", "raised": "raise SystemExit(3)"}.get(how, "sys.exit(3)")
        assert chain.final.deepest_user_frame().code.startswith(called)
        # made while handling an exception: that exception is the exit's context, as Python's
        # own "During handling of the above exception" would show it
        handled = [(e.type, e.relation) for e in chain.exceptions[:-1]]
        caught = how in ("handled", "builtin", "raised")
        assert handled == ([("MemoryError", "context")] if caught else [])
    # before Python 3.12 a bare raise SystemExit is seen only as a normal shutdown; the status
    # comes from waitpid
    else:
        assert facts.chains == ()
    if how in ("handled", "raised"):  # the verdict rests on it: the program hid an out-of-memory
        report = tmp_path / "r.json"
        run = trainwatch("run", "-q", "--json", str(report), "--", *args)
        assert run.returncode == 3 and read_report(report)["verdict"]["category"] == "oom"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_dataloader_worker_exception(method: str) -> None:
    done, facts = run_probed(script("probe_dataloader.py", method))
    assert done.returncode == 1
    assert "Caught UnidentifiedImageError in DataLoader worker process" in done.stderr
    workers = [p for p in facts.processes if p.pid != facts.processes[0].pid]
    assert len(workers) >= 2  # the workers loaded (spawn) or inherited (fork) the probe
    assert all(p.forked for p in workers) == (method == "fork")
    chain = facts.primary_chain()
    assert chain is not None and chain.final.type == "PIL.UnidentifiedImageError"
    assert chain.final.message.startswith("cannot identify image file")
    culprit = chain.final.deepest_user_frame()
    assert culprit is not None and culprit.function == "__getitem__"
    assert culprit.code == "image = Image.open(io.BytesIO(self.blobs[index]))"
    assert not chain.final.frames[-1].user  # the innermost frame is PIL's, and marked so
    assert facts.workers[0].carrier.pid == facts.processes[0].pid
    assert facts.torch is not None and facts.torch["version"].startswith("2.")
    # the sample: index 5 of the 8 the dataset counts (its own `__len__`, asked in the worker)
    item = facts.sample.item_call()
    assert (facts.sample.index, item.length) == ("5", 8) and facts.sample.past_the_end is None


def test_segfault_leaves_a_python_traceback() -> None:
    done, facts = run_probed(script("probe_segfault.py"))
    assert done.returncode == -11
    assert done.stderr == ""  # faulthandler wrote to the probe's file, not to the child's stderr
    assert len(facts.fatal) == 1 and facts.fatal[0].signal == "SIGSEGV"
    culprit = facts.fatal[0].deepest_user_frame()
    assert culprit is not None and culprit.function == "read_pointer"
    assert culprit.code == "return ctypes.string_at(address)"
    assert facts.fatal[0].frames[-1].function == "string_at" and not facts.fatal[0].frames[-1].user
    assert facts.to_dict()["fatal_signals"][0]["signal"] == "SIGSEGV"


@pytest.mark.parametrize("flag", ["-I", "-E", "-S"])
def test_probe_absent_under_isolation_flags(flag: str) -> None:
    done, facts = run_probed([sys.executable, flag, str(SCRIPTS / "probe_chained.py")])
    assert done.returncode == 1 and "RuntimeError: cannot start training" in done.stderr
    assert not facts.loaded and facts.chains == () and facts.primary_chain() is None
    assert facts.to_dict()["loaded"] is False


def test_users_own_sitecustomize_still_runs(tmp_path: Path) -> None:
    user_site = tmp_path / "usersite"
    user_site.mkdir()
    (user_site / "sitecustomize.py").write_text(
        "import builtins\nbuiltins.USER_SITECUSTOMIZE_RAN = True\n"
    )
    done, facts = run_probed(script("probe_site.py"), base_env={"PYTHONPATH": str(user_site)})
    assert f"sitecustomize {user_site / 'sitecustomize.py'}" in done.stdout
    assert "user-site-ran True" in done.stdout
    assert facts.loaded and facts.primary_chain().final.type == "LookupError"


def test_failing_user_sitecustomize_is_reported_as_without_the_probe(tmp_path: Path) -> None:
    user_site = tmp_path / "usersite"
    user_site.mkdir()
    (user_site / "sitecustomize.py").write_text("raise ArithmeticError('broken site')\n")
    args = [sys.executable, "-c", "print('still runs')"]
    bare = subprocess.run(
        args, env=plain_env({"PYTHONPATH": str(user_site)}), capture_output=True, text=True
    )
    done, facts = run_probed(args, base_env={"PYTHONPATH": str(user_site)})
    assert "Error in sitecustomize" in bare.stderr
    assert (done.stdout, done.stderr, done.returncode) == (
        bare.stdout,
        bare.stderr,
        bare.returncode,
    )
    assert facts.loaded


@pytest.mark.skipif(
    not Path("/usr/lib/python3/dist-packages").is_dir(), reason="needs Debian's python3"
)
def test_second_interpreter_in_a_venv_without_trainwatch(tmp_path: Path) -> None:
    system_python = shutil.which("python3", path="/usr/bin") or sys.executable
    venv = tmp_path / "othervenv"
    subprocess.run(
        [system_python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = str(venv / "bin" / "python")
    bare = subprocess.run(
        [python, str(SCRIPTS / "probe_site.py")], env=plain_env(), capture_output=True, text=True
    )
    done, facts = run_probed([python, str(SCRIPTS / "probe_site.py")])
    assert "trainwatch-importable False" in done.stdout
    # the same sitecustomize (Debian's) loaded
    assert done.stdout.splitlines()[0] == bare.stdout.splitlines()[0]
    if list(Path("/usr/lib").glob("python3.*/sitecustomize.py")):
        assert done.stdout.startswith("sitecustomize /usr/lib/python3.")
    assert (done.stderr, done.returncode) == (bare.stderr, bare.returncode)
    assert facts.loaded and facts.processes[0].executable == python
    chain = facts.primary_chain()
    assert chain is not None and chain.final.type == "LookupError"
    assert chain.final.frames[-1].user and chain.final.frames[-1].file.endswith("probe_site.py")


def test_stack_dump_on_request_from_a_sleeping_child_and_its_fork() -> None:
    session = ProbeSession.create(base_env=plain_env())
    child = subprocess.Popen(
        script("probe_sleep.py", "fork"),
        env={**plain_env(), **session.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 10
        while len(session.processes()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        stacks = session.request_stacks(timeout=1.0)
        assert sorted(s.pid for s in stacks) == sorted(p.pid for p in session.processes())
        assert len(stacks) == 2 and all(s.complete for s in stacks)
        parent = next(s for s in stacks if s.pid == child.pid)
        main = next(t for t in parent.threads if t.main)
        assert [f.function for f in main.frames if f.user] == ["<module>", "wait_forever"]
        assert any(f.function == "helper_sleep" for t in parent.threads for f in t.frames)
        assert session.collect().stacks == stacks
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the forked grandchild too: it holds the pipes open
        child.communicate(timeout=30)
        session.cleanup()
    assert not session.root.exists()
    assert child.returncode == -9  # the stack requests did not end it


@pytest.mark.parametrize(
    "name,args",
    [
        ("probe_chained.py", []),
        ("probe_thread.py", []),
        ("probe_exit.py", []),
        ("probe_exit.py", ["printed"]),  # the wrapper's frame is in no traceback it prints
        ("probe_stack.py", []),  # nor in a stack it prints
        ("probe_segfault.py", []),
        # a tracker's excepthook that prints the exception itself and chains only to a hook that
        # is not Python's own (wandb's), or that chains to whatever it found
        ("probe_own_hook.py", ["polite"]),
        ("probe_own_hook.py", ["chained"]),
        ("probe_own_hook.py", ["handled"]),
    ],
)
def test_output_and_status_identical_with_and_without_probe(name: str, args: list[str]) -> None:
    bare = subprocess.run(
        script(name, *args), env=plain_env(), capture_output=True, text=True, timeout=60
    )
    done, facts = run_probed(script(name, *args))
    assert facts.loaded
    assert (done.returncode, done.stdout, done.stderr) == (
        bare.returncode,
        bare.stdout,
        bare.stderr,
    )


def test_an_exception_a_tracker_s_hook_printed_is_recorded_once_and_a_handled_one_not() -> None:
    for style in ("polite", "chained"):
        done, facts = run_probed(script("probe_own_hook.py", style))
        assert done.returncode == 1 and done.stderr.count("Traceback (most recent call") == 1
        assert [c.final.short_type for c in facts.chains] == ["ValueError"], style
    done, facts = run_probed(script("probe_own_hook.py", "handled"))
    assert done.returncode == 0 and "KeyError" in done.stderr
    assert facts.chains == (), facts.chains


def test_keras_filters_the_probe_s_save_wrapper_as_its_own_frame() -> None:
    # Keras keeps the innermost of its frames when it would keep none; the probe's wrapper of
    # `Model.save` (a frame between Keras's) must not take that place from the frame that raised
    needs("keras")
    args = script("keras_save_fails.py")
    env = plain_env({"KERAS_BACKEND": "torch"})
    bare = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    done, facts = run_probed(args, {"KERAS_BACKEND": "torch"})
    assert facts.loaded and bare.returncode == 1
    assert "saving_lib.py" in bare.stderr
    assert (done.returncode, done.stderr) == (bare.returncode, bare.stderr)


def test_nested_run_skips_the_outer_probe() -> None:
    outer = ProbeSession.create(base_env=plain_env())
    try:
        done, facts = run_probed(
            script("probe_chained.py"), base_env={"PYTHONPATH": outer.env["PYTHONPATH"]}
        )
        assert done.returncode == 1
        # hooked once, by the inner probe
        assert len(facts.processes) == 1 and len(facts.chains) == 1
        assert not outer.collect().loaded
    finally:
        outer.cleanup()


def test_broken_probe_directory_changes_nothing(tmp_path: Path) -> None:
    session = ProbeSession.create()
    try:
        env = {**plain_env(), **session.env, "TRAINWATCH_PROBE_DIR": str(tmp_path / "missing")}
        done = subprocess.run(
            script("probe_chained.py"), env=env, capture_output=True, text=True, timeout=60
        )
        bare = subprocess.run(
            script("probe_chained.py"), env=plain_env(), capture_output=True, text=True
        )
        assert (done.returncode, done.stdout, done.stderr) == (
            bare.returncode,
            bare.stdout,
            bare.stderr,
        )
    finally:
        session.cleanup()


def test_keep_artifacts_and_file_layout() -> None:
    session = ProbeSession.create(keep_artifacts=True)
    try:
        assert (session.root.stat().st_mode & 0o777) == 0o700
        assert session.env["PYTHONPATH"].split(os.pathsep)[0] == str(session.site_dir)
        subprocess.run(
            [sys.executable, "-c", "pass"], env={**plain_env(), **session.env}, check=True
        )
        names = sorted(p.suffix for p in session.records_dir.iterdir())
        assert names == [
            ".jsonl",
            ".txt",
        ]  # one record file (no leftover .tmp) and one faulthandler file
        session.cleanup()
        assert session.root.exists()
    finally:
        shutil.rmtree(session.root, ignore_errors=True)


@pytest.mark.parametrize("mode", ["closerange", "close"])
def test_a_program_that_closes_our_descriptors_keeps_its_files_byte_for_byte(tmp_path, mode):
    done, facts = run_probed(script("probe_closes_fds.py", str(tmp_path), mode))
    assert done.returncode == -11
    assert (tmp_path / "checkpoint.bin").read_bytes() == b"\x00CHECKPOINT\x01" * 100
    assert (tmp_path / "metrics.txt").read_text() == "step 1 loss 0.5\n"
    # The probe's own records survived too: the crash was recorded in its file, not the program's.
    assert facts.loaded and facts.fatal and facts.fatal[0].signal == "SIGSEGV"
    assert any(f.function == "<module>" for f in facts.fatal[0].frames)


def test_sample_arguments_are_short_and_never_secret_or_tensor_contents() -> None:
    done, facts = run_probed(script("sample_args.py", "key"))
    assert done.returncode == 1
    sample = facts.sample
    assert sample is not None and sample.exception == "KeyError" and sample.worker is None
    call = sample.item_call()
    assert call is not None and call.owner == "__main__.Records" and call.owner_required == 0
    # the token's parameter is left out by its name; the tensor is described by its shape only
    assert dict(call.arguments) == {"key": "'cat/12'", "weights": "<Tensor [3, 2] torch.float32>"}
    assert sample.describe() == "sample 'cat/12'"


def test_an_iterable_datasets_position_is_recorded_from_its_generator() -> None:
    done, facts = run_probed(script("sample_args.py", "stream"))
    assert done.returncode == 1
    sample = facts.sample
    assert sample is not None and sample.index is None
    (call,) = [c for c in sample.calls if c.function == "__iter__"]
    assert dict(call.arguments) == {"shard": "'shard-1.txt'", "line_no": "2"}
    assert sample.describe() == "Shards.__iter__(shard='shard-1.txt', line_no=2)"


def test_a_collate_failure_names_the_batch_of_indices() -> None:
    done, facts = run_probed(script("sample_args.py", "collate"))
    assert done.returncode == 1
    # the error passed through the probe's wrapper of the DataLoader's `__next__`: its traceback
    # prints as it does without the probe
    bare = subprocess.run(
        script("sample_args.py", "collate"), env=plain_env(), capture_output=True, text=True
    )
    assert "in __next__" in bare.stderr and done.stderr == bare.stderr
    sample = facts.sample
    assert sample is not None and sample.batch == "[0, 1, 2, 3]"
    assert [c.function for c in sample.calls] == ["fetch", "collate"]
    assert sample.describe() == "batch [0, 1, 2, 3]"


def test_output_and_status_identical_with_and_without_the_save_hooks(tmp_path: Path) -> None:
    bare_dir, probed_dir = tmp_path / "bare", tmp_path / "probed"
    bare_dir.mkdir()
    probed_dir.mkdir()
    bare = subprocess.run(
        script("checkpoint_run.py", str(bare_dir), "killed"),
        env=plain_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    done, facts = run_probed(script("checkpoint_run.py", str(probed_dir), "killed"))
    assert facts.checkpoints.total == 3
    assert (done.returncode, done.stdout, done.stderr) == (
        bare.returncode,
        bare.stdout,
        bare.stderr,
    )
    for name in ("ckpt_step10.pt", "ckpt_step20.pt", "ckpt_step30.pt"):
        assert (probed_dir / name).stat().st_size == (bare_dir / name).stat().st_size


def test_a_librarys_key_lookup_is_no_sample_and_a_cython_frame_is_not_the_programs() -> None:
    # a mapping's `__getitem__` in a library takes a key (pandas' DataFrame a column), not a
    # sample; a frame of a Cython source (printed with its relative path) is an installed package's
    code = (
        "from collections import UserDict\n"
        "source = 'def get_item(d, k):\\n    return d[k]\\n'\n"
        "exec(compile(source, 'pkg/_libs/helper.pxi', 'exec'))\n"
        "get_item(UserDict(lr=0.1), 'batch_size')\n"
    )
    done, facts = run_probed([sys.executable, "-c", code])
    assert done.returncode == 1
    assert facts.sample is None
    chain = facts.primary_chain()
    assert chain is not None and chain.final.type == "KeyError"
    frames = chain.final.frames
    assert [(f.function, f.user) for f in frames] == [
        ("<module>", True),
        ("get_item", False),
        ("__getitem__", False),
    ]
    # an array library's `Dataset` (h5py's) is sliced, not asked for a sample (a real run's HDF5
    # read was named "the sample that failed")
    h5 = (
        "source = 'class Dataset:\\n    def __getitem__(self, k):\\n        raise OSError(k)\\n'\n"
        "space = {'__name__': 'h5py._hl.dataset'}\n"
        "import sysconfig\n"
        "where = sysconfig.get_paths()['purelib'] + '/h5py/_hl/dataset.py'\n"
        "exec(compile(source, where, 'exec'), space)\n"
        "space['Dataset']()[0:8]\n"
    )
    done, facts = run_probed([sys.executable, "-c", h5])
    assert done.returncode == 1 and "OSError" in done.stderr
    assert facts.sample is None


@pytest.mark.parametrize("cut", ["source", "bytecode"])
def test_a_file_size_limit_never_stops_the_program_nor_speaks_in_its_output(
    tmp_path: Path, cut: str
) -> None:
    # `ulimit -f`: under half the probe's size its source cannot be written, just over it its
    # bytecode copy (larger than the source) is cut short; either way the program runs, its stderr
    # holds only its own words, and no piece of the probe's files or of the knowledge cache is
    # left behind
    import resource

    from trainwatch.diagnostics.watch import probe

    source = (Path(probe.__file__).parent / "sitecustomize.py").stat().st_size
    limit = source // 2 if cut == "source" else source + 1024

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    script = "import sys; print('epoch 1/1'); sys.exit('cannot open shard 3')"
    temp, cache, compiled = tmp_path / "tmp", tmp_path / "cache", tmp_path / "pyc"
    temp.mkdir()
    env = {
        "TMPDIR": str(temp),
        "XDG_CACHE_HOME": str(cache),  # the cache's 1 MB: never whole
        # every module compiled afresh, where bytecode would be written: trainwatch's own are not,
        # or a large one is written cut short and breaks every later start
        "PYTHONPYCACHEPREFIX": str(compiled),
        "PYTHONDONTWRITEBYTECODE": "",
    }
    # (the program compiles as it always did: Python's own bytecode under the limit is not ours)
    program = ["env", "-u", "PYTHONPYCACHEPREFIX", sys.executable, "-c", script]
    ran = trainwatch(
        "run", "--json", str(tmp_path / "r.json"), "--", *program, env=env, preexec_fn=limited
    )
    assert ran.returncode == 1 and ran.stdout == b"epoch 1/1\n"
    assert ran.stderr.startswith(b"cannot open shard 3\n"), ran.stderr[:300]
    # (once, under a loaded suite, the report was missing: trainwatch's own words say why)
    assert (tmp_path / "r.json").exists(), ran.stderr[-3000:]
    notes = read_report(tmp_path / "r.json")["notes"]
    off = [n for n in notes if n.startswith("the probe was off")]
    assert off == (
        ["the probe was off: its files could not be written (File too large)"]
        if cut == "source"
        else []
    )
    assert list(temp.iterdir()) == []
    assert not [p.name for p in cache.rglob("*") if p.name.startswith(".knowledge-")]
    own = [p for p in compiled.rglob("*.pyc") if {"cli", "diagnostics"} & set(p.parts)]
    assert [p.name for p in own if not _loads(p)] == []
    assert len(own) <= 3  # the few modules compiled before trainwatch read its limit


def _loads(path: Path) -> bool:
    """Is this bytecode file whole (its code object, after the 16-byte header, unmarshals)?"""
    import marshal

    try:
        marshal.loads(path.read_bytes()[16:])
    except (EOFError, ValueError):
        return False
    return True


def test_a_worker_that_exits_by_itself_is_no_out_of_memory_kill(tmp_path: Path) -> None:
    # torch says "exited unexpectedly with exit code 3": a status, not a signal, and memory stays
    # low; which of its exceptions the main process prints first varies from run to run (a reset
    # connection, the worker's status), and none may be read as a SIGKILL or an OOM kill
    report = tmp_path / "r.json"
    run = trainwatch("run", "-q", "--json", str(report), str(SCRIPTS / "worker_exits.py"))
    assert run.returncode == 1
    saved = read_report(report)
    verdict = saved["verdict"]
    assert verdict["category"] == "unknown" and "SIGKILL" not in verdict["summary"], verdict
    if any("exit code 3" in c["text"] for c in saved["evidence"]):  # torch named the status
        assert "exit status 3, not by a signal" in verdict["summary"]
        assert "exited unexpectedly with exit code 3" in saved["evidence"][0]["text"]
        assert saved["advice"][0].startswith("Rerun with num_workers=0")
    else:  # only the reset connection: a process went away, no kill claimed
        assert verdict["summary"].startswith("A process of the run went away")


@pytest.mark.parametrize("error", ["AttributeError", "ImportError"])
def test_a_failed_import_of_a_module_the_probe_hooks_prints_the_same_traceback(tmp_path, error):
    # a local file shadows what torch imports (a scratch numpy.py): the module's body raises while
    # the probe's wrapper of its loader runs; Python trims its own import frames either way
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        f"import math\nraise {error}(\"module 'numpy' has no attribute 'ndarray'\")\n"
    )
    (tmp_path / "train.py").write_text("import torch\n")
    args = [sys.executable, str(tmp_path / "train.py")]
    bare = subprocess.run(args, env=plain_env(), capture_output=True, text=True, timeout=60)
    done, facts = run_probed(args)
    assert "<frozen importlib" not in bare.stderr
    assert (done.returncode, done.stderr) == (bare.returncode, bare.stderr)
    assert facts.primary_chain().final.short_type == error


def test_the_probe_s_frames_in_a_program_s_tracebacks_are_marked_hidden(tmp_path):
    # IPython (a notebook's traceback) and pytest leave out frames that set `__tracebackhide__`;
    # the probe's wrappers of the DataLoader iterators' `_next_data`, Tensor.backward and
    # torch.save sit in such tracebacks (a real notebook run showed the DataLoader wrapper's
    # frame and source)
    program = tmp_path / "train.py"
    program.write_text(
        "import torch\n"
        "from torch.utils.data import DataLoader, Dataset\n"
        "class D(Dataset):\n"
        "    def __len__(self): return 2\n"
        "    def __getitem__(self, i): raise KeyError(i)\n"
        "def probe_frames(error):\n"
        "    tb, found = error.__traceback__, []\n"
        "    while tb is not None:\n"
        "        if 'sitecustomize' in tb.tb_frame.f_code.co_filename:\n"
        "            found.append((tb.tb_frame.f_code.co_name,\n"
        "                          bool(tb.tb_frame.f_locals.get('__tracebackhide__'))))\n"
        "        tb = tb.tb_next\n"
        "    return found\n"
        "w = torch.ones(2, requires_grad=True)\n"
        "loss = (w * 2).sum()\n"
        "loss.backward()\n"
        "for failing in (lambda: next(iter(DataLoader(D()))), loss.backward,\n"
        "                lambda: torch.save({}, '/nonexistent/x.pt')):\n"
        "    try:\n"
        "        failing()\n"
        "    except Exception as error:\n"
        "        print(probe_frames(error))\n"
    )
    done, _ = run_probed([sys.executable, str(program)])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    seen = [ast.literal_eval(line) for line in lines]
    assert [name for frames in seen for name, _ in frames] == ["_next_data", "backward", "save"]
    assert all(hidden for frames in seen for _, hidden in frames)
