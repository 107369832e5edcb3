"""The probe without running it: its environment, its records read back, its child side's Python 3.8
standard-library-only source, and the traceback texts it sends."""

from __future__ import annotations

import ast
import json
import os
import shutil
import sys
from pathlib import Path

from trainwatch.diagnostics.read.dumps import (
    parse_dump,
    parse_spawn_wrapper,
    parse_traceback_text,
    parse_worker_wrapper,
)
from trainwatch.diagnostics.watch.probe import ProbeSession
from trainwatch.diagnostics.watch.probe.records import read_records

from conftest import ROOT

PROBE_SOURCE = ROOT / "diagnostics" / "watch" / "probe" / "sitecustomize.py"


def plain_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TRAINWATCH_PROBE") and k != "PYTHONPATH"
    }
    env.update(extra or {})
    return env


def test_user_pythonpath_follows_the_probe() -> None:
    session = ProbeSession.create(base_env={"PYTHONPATH": "/a:/b"})
    try:
        assert session.env["PYTHONPATH"] == f"{session.site_dir}:/a:/b"
        assert ProbeSession.create.__doc__
    finally:
        session.cleanup()


def test_partial_last_line_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "1-ab.jsonl").write_text(
        '{"kind":"hello","pid":1,"ppid":0,"time":1}\n{"kind":"excep'
    )
    facts = read_records(tmp_path)
    assert facts.loaded and facts.processes[0].pid == 1 and facts.chains == ()


def test_dataloader_passes_add_up_across_processes_and_survive_odd_values(tmp_path: Path) -> None:
    empty = {"dataset": "Frames", "size": 0, "batch_size": 4, "drop_last": False}
    for pid, record in (
        (1, {"ended": 2, "batches": 0, "empty": 2, "first_empty": empty}),
        (2, {"ended": 3, "batches": 30, "empty": True, "first_empty": "odd"}),
    ):
        (tmp_path / f"{pid}-ab.jsonl").write_text(
            f'{{"kind":"hello","pid":{pid},"ppid":0,"time":{pid}}}\n'
            + json.dumps({"kind": "loader", "pid": pid, **record})
            + "\n"
        )
    passes = read_records(tmp_path).loaders
    assert passes is not None and (passes.ended, passes.batches, passes.empty) == (5, 30, 2)
    assert passes.describe() == "Frames: 0 samples, batch size 4"
    assert read_records(tmp_path / "none").loaders is None


def test_gradient_counts_add_up_across_processes_and_say_when_nothing_was_computed(
    tmp_path: Path,
) -> None:
    for pid, record in ((1, {"optimizers": 1, "backwards": 0}), (2, {"backwards": "odd"})):
        (tmp_path / f"{pid}-ab.jsonl").write_text(
            f'{{"kind":"hello","pid":{pid},"ppid":0,"time":{pid}}}\n'
            + json.dumps({"kind": "gradients", "pid": pid, **record})
            + "\n"
        )
    counts = read_records(tmp_path).gradients
    assert counts is not None and (counts.optimizers, counts.backwards) == (1, 0)
    assert counts.never_stepped
    (tmp_path / "3-ab.jsonl").write_text(
        '{"kind":"hello","pid":3,"ppid":0,"time":3}\n{"kind":"gradients","pid":3,"backwards":40}\n'
    )
    assert not read_records(tmp_path).gradients.never_stepped
    assert read_records(tmp_path / "none").gradients is None


def test_child_side_imports_only_the_standard_library_in_python38_syntax() -> None:
    tree = ast.parse(PROBE_SOURCE.read_text(), feature_version=(3, 8))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0
            names.add(node.module.split(".")[0])
    assert names and names <= set(sys.stdlib_module_names)


def test_the_probe_never_swallows_a_keyboard_interrupt_or_an_exit() -> None:
    # its code runs in the program's threads: a handler of BaseException that does not raise again
    # would eat a Ctrl-C (or a signal handler's sys.exit) that lands inside it
    tree = ast.parse(PROBE_SOURCE.read_text())
    swallowing = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.ExceptHandler)
        and (
            node.type is None
            or (isinstance(node.type, ast.Name) and node.type.id == "BaseException")
        )
        and node.name is None
    ]
    assert swallowing == []

    # a Ctrl-C is let go only where the process already ends: in the hook of the exception that
    # ends it and at shutdown (where Python's own C hook and exit would not see it either)
    def own_nodes(function):  # its body's nodes, not those of the functions defined in it
        for child in ast.iter_child_nodes(function):
            if not isinstance(child, ast.FunctionDef):
                yield child
                yield from own_nodes(child)

    letting_go = {
        function.name
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef)
        for node in own_nodes(function)
        if isinstance(node, ast.ExceptHandler)
        and isinstance(node.type, ast.Name)
        and node.type.id == "KeyboardInterrupt"
    }
    assert letting_go == {"excepthook", "_at_exit"}


def test_a_second_ctrl_c_while_the_program_dies_prints_its_error_not_the_probe_s(
    monkeypatch,
) -> None:
    # `timeout -s INT` and a double Ctrl-C send two: the second lands in the probe's hook while the
    # first's KeyboardInterrupt is recorded, or in its exit record
    from trainwatch.diagnostics.watch.probe import sitecustomize as probe

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(probe, "_record_exception", interrupted)
    monkeypatch.setattr(probe, "_write", interrupted)
    monkeypatch.setitem(probe._passes, "built", 1)
    printed = []
    hook = probe._make_excepthook(lambda *args: printed.append(args))
    error = KeyboardInterrupt()
    hook(KeyboardInterrupt, error, None)
    probe._at_exit()  # does not raise
    assert printed == [(KeyboardInterrupt, error, None)]  # Python's hook still prints it


def test_torch_save_of_a_data_sample_is_no_checkpoint() -> None:
    # a dataset cached with torch.save is no checkpoint to resume from; a model, its state_dict
    # or a dict holding one (or a trainer's epoch and step) is (torch itself is not imported here:
    # the test reads what the probe looks at, the objects' keys and attributes)
    from trainwatch.diagnostics.watch.probe import sitecustomize as probe

    class Module:
        def state_dict(self):
            return {}

        def parameters(self):
            return iter(())

    tensor = object()
    saved = {
        "module": Module(),
        "state_dict": {"fc.weight": tensor, "fc.bias": tensor},
        "linear's": {"weight": tensor, "bias": tensor},
        "trainer's": {"epoch": 3, "model": {}, "optimizer": {}},
        "lightning's": {"state_dict": {}, "global_step": 12},
    }
    data = {"sample": {"x": tensor, "y": 1}, "tensor": tensor, "batch": [tensor, tensor]}
    assert {name for name, obj in saved.items() if probe._holds_training_state(obj)} == set(saved)
    assert not [name for name, obj in data.items() if probe._holds_training_state(obj)]
    assert probe._torch_save_target(({"x": tensor}, "/tmp/sample_0.pt"), {}) == (None, {})


def test_the_file_a_loader_under_getitem_was_given_inline_is_the_sample_s(tmp_path) -> None:
    # `np.load(self.files[idx])`: the path is no local of `__getitem__`, but the loader's argument
    # (BO's real run: a truncated .npy was "sample 37", no file); PIL opens its argument into a
    # file object, and an image read from a file fails later in its own `load(self)`
    from trainwatch.diagnostics.watch.probe import sitecustomize as probe

    path = tmp_path / "x_3.npy"
    path.write_bytes(b"\x93NUMPY cut short")

    def load_array(file, allow_pickle=False):
        raise ValueError("cannot reshape array of size 0 into shape (32,32)")

    def open_image(fp, mode="r"):
        fp = open(fp, "rb")  # as PIL does: the argument becomes the open file
        try:
            raise OSError("cannot identify image file")
        finally:
            fp.close()

    class Image:
        filename = str(path)

        def load(self):
            raise OSError("image file is truncated")

    class Files:
        def __init__(self, load, name):
            self.files, self.load = [name], load

        def __getitem__(self, idx):
            return self.load(self.files[idx])

    def failed(load, name=str(path)):
        try:
            Files(load, name)[0]
        except Exception as e:
            return probe._calls([e])[1]

    assert failed(load_array) == [str(path)]
    assert failed(open_image) == [str(path)]
    assert failed(lambda _: Image().load()) == [str(path)]
    assert failed(load_array, str(tmp_path / "gone.npy")) == []  # no file of that name


def test_a_part_of_a_traceback_the_program_prints_leaves_the_probe_s_frames_out() -> None:
    # Hydra prints its job's part of the traceback (`tb.tb_next...`), not the exception's own: the
    # probe's wrapper frame stayed in it (BW's real runs: two lines of sitecustomize.py)
    import traceback

    from trainwatch.diagnostics.watch.probe import sitecustomize as probe

    def save(obj, path):
        raise ValueError("batch_size should be a positive integer value, but got batch_size=0")

    wrapped = probe._make_save(save, "torch.save", lambda args, kwargs: (None, {}))

    def job():
        wrapped({}, "x.pt")

    # TracebackException as the probe hooks it in the program (not in this test process)
    hooked_init = probe._make_traceback_init(traceback.TracebackException.__init__)
    try:
        job()
    except ValueError as e:
        part = e.__traceback__.tb_next  # from the job's frame on, as Hydra slices it
        printed = traceback.TracebackException.__new__(traceback.TracebackException)
        hooked_init(printed, type(e), e, part)
    files = [frame.filename for frame in printed.stack]
    assert probe._OWN_FILE not in files and files[0] == __file__ and len(files) == 2


def test_parse_chained_traceback_text() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/home/u/train.py", line 3, in load\n'
        "    x = table[key]\n"
        "        ~~~~~^^^^^\n"
        "KeyError: 'w'\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.11/json/decoder.py", line 9, in decode\n'
        "    raise ValueError(msg)\n"
        "ValueError: line one\nline two\n"
    )
    chain = parse_traceback_text(text, ["/usr/lib/python3.11"])
    assert [(e.type, e.relation) for e in chain] == [("KeyError", "context"), ("ValueError", None)]
    assert chain[0].frames[0].code == "x = table[key]" and chain[0].frames[0].user
    assert not chain[1].frames[0].user and chain[1].message == "line one\nline two"
    assert (
        parse_worker_wrapper("Caught KeyError in DataLoader worker process 3.\nOriginal " + text)[0]
        == 3
    )
    assert parse_worker_wrapper("an ordinary message") is None
    # torch.multiprocessing.spawn's re-raise of a spawned process's failure in the parent
    index, spawned = parse_spawn_wrapper(
        "\n\n-- Process 1 terminated with the following error:\n" + text
    )
    assert index == 1 and [e.type for e in spawned] == ["KeyError", "ValueError"]
    assert parse_spawn_wrapper("-- Process 1 terminated with exit code 1") is None


def test_parse_faulthandler_dump() -> None:
    text = (
        "Thread 0x00007f0000000001 (most recent call first):\n"
        '  File "/site-packages/torch/x.py", line 7 in wait\n\n'
        "Current thread 0x00007f0000000002 (most recent call first):\n"
        '  File "/home/u/train.py", line 9 in step\n'
        '  File "/home/u/train.py", line 20 in <module>\n'
    )
    threads = parse_dump(text, (), main_thread=0x7F0000000002)
    assert [(t.current, t.main, len(t.frames)) for t in threads] == [
        (False, False, 1),
        (True, True, 2),
    ]
    assert [f.line for f in threads[1].frames] == [20, 9] and not threads[0].frames[0].user


def test_probe_bytecode_is_compiled_when_no_installed_copy_exists(tmp_path, monkeypatch):
    # A fresh checkout (or PYTHONDONTWRITEBYTECODE) has no __pycache__ beside the probe: it is
    # compiled instead.
    import importlib.util

    from trainwatch.diagnostics.watch.probe import parent as probe_session

    source = tmp_path / "pkg" / "sitecustomize.py"
    source.parent.mkdir()
    shutil.copy2(probe_session.CHILD_SOURCE, source)
    monkeypatch.setattr(probe_session, "CHILD_SOURCE", source)
    session = probe_session.ProbeSession.create()
    try:
        child = session.root / "site" / "sitecustomize.py"
        assert Path(importlib.util.cache_from_source(str(child))).is_file()
    finally:
        session.cleanup()


def test_a_recorded_message_written_for_a_terminal_is_read_without_its_colour_codes(
    tmp_path: Path,
) -> None:
    # torch.load's weights-only refusal bolds a phrase: the signatures match the words, and the
    # report cites them, without the escape codes
    message = (
        "Weights only load failed. This file can still be loaded, to do so you have two options, "
        "\x1b[1mdo those steps only if you trust the source of the checkpoint\x1b[0m."
    )
    (tmp_path / "2-aa.jsonl").write_text(
        '{"kind":"hello","pid":2,"ppid":1,"time":1}\n'
        + json.dumps(
            {
                "kind": "exception",
                "pid": 2,
                "time": 2,
                "chain": [{"type": "_pickle.UnpicklingError", "message": message}],
            }
        )
        + "\n"
    )
    (chain,) = read_records(tmp_path).chains
    assert "\x1b" not in chain.final.message
    assert "two options, do those steps only if you trust the source" in chain.final.message


def test_a_function_transform_of_jax_or_flax_is_no_sample_transform() -> None:
    # Flax's `nnx.value_and_grad` lives in flax/nnx/transforms/: it transforms functions, and a
    # real run's model error was told "the sample that failed: GradFn.__call__(pure_args=...)"
    from types import SimpleNamespace

    from trainwatch.diagnostics.watch.probe import sitecustomize as probe

    def code(name: str, file: str) -> SimpleNamespace:
        return SimpleNamespace(co_name=name, co_filename=file)

    site = "/v/lib/python3.11/site-packages"
    assert not probe._is_data_code(code("__call__", f"{site}/flax/nnx/transforms/autodiff.py"))
    assert probe._is_data_code(code("__call__", f"{site}/torchvision/transforms/transforms.py"))
    assert probe._is_data_code(code("forward", "/home/u/proj/transforms.py"))
