"""Real failing PyTorch training runs under `trainwatch run`: the right category, and the user's
culprit line.
"""

from __future__ import annotations

import shlex
import signal

import pytest

from conftest import read_report, trainwatch

CASES = {
    # mode: (category, words expected in the culprit's source line, or None when no user line
    # applies)
    "labels": ("data", "cross_entropy"),
    "collate": ("data", None),
    "keyerror": ("data", 'record["pixels"]'),
    "record-size": ("data", "flat.view(2, 2)"),  # one record of another size, not the model
    "shape": ("code", "model(x)"),
    "inplace": ("code", "loss.backward()"),
    "inplace-anomaly": ("code", "hidden_out = torch.sigmoid(out)"),  # anomaly mode's line
    "anomaly": (
        "numerical",
        "bad = torch.sqrt(out - 100.0)",
    ),  # the forward line anomaly mode names
    "inf-loss": ("numerical", "raise RuntimeError"),
    "missing-module": ("library", "import torchmetrics_not_installed"),
    "disk-full": ("library", "torch.save"),
    "rlimit": ("oom", "torch.empty(8 << 30"),
}


@pytest.mark.parametrize("mode", sorted(CASES))
def test_real_failure_is_named(tmp_path, script, mode):
    category, culprit_code = CASES[mode]
    report = tmp_path / "r.json"
    result = trainwatch("run", "--json", str(report), script("real_failures.py"), mode, timeout=180)
    assert result.returncode != 0
    data = read_report(report)
    assert data["verdict"]["category"] == category, data["verdict"]
    if culprit_code is None:  # raised inside torch's default_collate: no line of the user's
        return
    assert data["culprit"] is not None, data["verdict"]
    assert culprit_code in (data["culprit"]["code"] or ""), data["culprit"]
    assert data["culprit"]["file"].endswith("real_failures.py")


def test_segfault_reports_the_signal(tmp_path, script):
    report = tmp_path / "r.json"
    result = trainwatch(
        "run", "--json", str(report), script("real_failures.py"), "segfault", timeout=180
    )
    assert result.returncode == -11
    data = read_report(report)
    assert data["exit"]["signal"] == "SIGSEGV"
    assert data["verdict"]["category"] != "completed"
    assert "ctypes.string_at(0)" in data["culprit"]["code"]


def test_corrupt_image_in_a_dataloader_worker_is_data_with_the_getitem_culprit(shared_run):
    run = shared_run("corrupt-image")
    assert run.returncode == 1
    data = run.report
    assert data["verdict"]["category"] == "data"
    assert data["exception"]["type"] == "PIL.UnidentifiedImageError"
    assert data["culprit"]["function"] == "__getitem__"
    assert "Image.open" in data["culprit"]["code"]


def test_a_stuck_dataloader_is_a_hang_and_is_stopped(shared_run):
    run = shared_run("dataloader-hang")
    data = run.report
    assert data["verdict"]["category"] == "hang", data["verdict"]
    assert data["stall"]["action"] == "stopped"
    assert any(w["kind"] == "dataloader" for w in data["stall"]["waits"])
    # stopped by trainwatch's SIGTERM, and trainwatch passes that on
    assert run.returncode == -15


@pytest.mark.parametrize(
    "name, category",
    [("early-exit", "early-exit"), ("nan-loss", "numerical"), ("completed", "completed")],
)
def test_quiet_endings_through_trainwatch_run(shared_run, name, category):
    run = shared_run(name)
    assert run.returncode == 0
    assert run.report["verdict"]["category"] == category


@pytest.mark.parametrize(("options", "status"), [((), 124), (("-s", "KILL"), -9)])
def test_a_run_stopped_by_timeout_is_interrupted_at_its_time_limit(tmp_path, options, status):
    # coreutils' timeout stops the program with SIGTERM and exits 124: the only trace it leaves;
    # told to stop it with SIGKILL, it dies of it (and so does trainwatch): no memory evidence may
    # call that a mystery
    report = tmp_path / "r.json"
    program = "import time\nprint('epoch 1/5', flush=True)\ntime.sleep(60)\n"
    result = trainwatch(
        "run", "--json", str(report), "--", "timeout", *options, "0.5", "python3", "-c", program
    )
    assert result.returncode == status and b"epoch 1/5" in result.stdout
    verdict = read_report(report)["verdict"]
    assert (verdict["category"], verdict["subtype"]) == ("interrupted", "interrupted/time-limit")


def test_a_timeout_inside_the_command_whose_status_it_passes_on_is_the_time_limit(tmp_path):
    # a script's own `timeout 600 python train.py`: trainwatch's sampler saw the `timeout` process,
    # and the command ended with its status for a stop (it was unknown 30%)
    report = tmp_path / "r.json"
    program = "import time\nprint('epoch 1/5', flush=True)\ntime.sleep(60)\n"
    script = f"timeout 1.5 python3 -c {shlex.quote(program)}; exit $?"
    result = trainwatch("run", "--json", str(report), "--", "bash", "-c", script)
    assert result.returncode == 124
    verdict = read_report(report)["verdict"]
    assert verdict["subtype"] == "interrupted/time-limit", verdict
    assert verdict["summary"].startswith("A `timeout` inside the command"), verdict["summary"]
    # the same status from a command that started no `timeout` says nothing of a time limit
    trainwatch("run", "--json", str(report), "--", "bash", "-c", "exit 124")
    assert read_report(report)["verdict"]["subtype"] != "interrupted/time-limit"


def test_a_failed_attempt_a_retry_loop_ran_again_to_its_end_is_handled(tmp_path):
    # a shell's retry loop: the first Python fails, a fresh one trains to its end, exit 0 (it was
    # read as the first attempt's failure)
    (tmp_path / "fail.py").write_text("print('Epoch 1/3 loading', flush=True)\nfloat('n/a')\n")
    (tmp_path / "ok.py").write_text(
        "for e in (1, 2, 3):\n    print(f'Epoch {e}/3 loss={1 / e:.4f}', flush=True)\n"
        "print('training finished')\n"
    )
    report = tmp_path / "r.json"
    retry = "for p in fail.py ok.py; do python3 $p && exit 0; echo retrying >&2; done; exit 1"
    result = trainwatch("run", "--json", str(report), "--", "bash", "-c", retry, cwd=tmp_path)
    assert result.returncode == 0
    verdict = read_report(report)["verdict"]
    assert verdict["category"] == "completed", verdict
    assert "went on: the program handled it" in verdict["summary"]
    assert not any("yet the command exited 0" in n for n in read_report(report)["notes"])
    # a failure no later attempt ran again stays the verdict, whatever the wrapper exits with,
    # and a note says the status hid it
    swallowed = "python3 ok.py; python3 fail.py; exit 0"
    trainwatch("run", "--json", str(report), "--", "bash", "-c", swallowed, cwd=tmp_path)
    saved = read_report(report)
    assert saved["verdict"]["category"] == "data"
    assert any(
        "fail.py) ended on an uncaught ValueError, yet the command exited 0" in n
        for n in saved["notes"]
    )


def _run_written(tmp_path, source: str) -> tuple[int, dict]:
    """`trainwatch run` of a program written for the test (train.py in tmp_path): its exit status
    and its JSON report."""
    train, report = tmp_path / "train.py", tmp_path / "r.json"
    train.write_text(source)
    result = trainwatch("run", "--json", str(report), str(train))
    return result.returncode, read_report(report)


def test_a_module_that_does_not_compile_is_code_with_its_own_line_as_the_culprit(tmp_path):
    # The probe records the place a SyntaxError names (Python's traceback prints it as a frame with
    # no function): the culprit is the broken file's line, not the `import` that compiled it.
    (tmp_path / "model_defs.py").write_text("import math\ndef forward(x:\n    return x\n")
    status, data = _run_written(
        tmp_path, "print('loading the model')\nimport model_defs\nmodel_defs.forward(1)\n"
    )
    assert status == 1
    assert data["verdict"]["subtype"] == "code/syntax-error", data["verdict"]
    culprit = data["culprit"]
    assert culprit["file"].endswith("model_defs.py") and culprit["line"] == 2, culprit
    assert culprit["code"] == "def forward(x:"


@pytest.mark.parametrize("pool", ["multiprocessing.Pool(2)", "ProcessPoolExecutor(2)"])
def test_a_worker_process_s_failure_is_pointed_at_in_the_worker_s_code(tmp_path, pool):
    # A process pool re-raises a worker's exception in the parent with the worker's traceback as
    # the text of a RemoteTraceback: the culprit is the worker's line, not `pool.map(...)`.
    status, data = _run_written(
        tmp_path,
        "import multiprocessing\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "def load(i):\n"
        "    shards = {0: [1, 2], 1: [3, 4]}\n"
        "    return sum(shards[i])\n"
        "if __name__ == '__main__':\n"
        f"    with {pool} as workers:\n"
        "        print(list(workers.map(load, [0, 1, 2])))\n",
    )
    assert status == 1
    culprit = data["culprit"]
    assert (culprit["function"], culprit["line"], culprit["code"]) == (
        "load",
        5,
        "return sum(shards[i])",
    ), culprit


def test_a_forked_worker_s_segfault_is_the_native_crash_its_parent_only_saw_as_a_lost_child(
    tmp_path,
):
    # The parent learns only a status from waitpid and exits 1 with its own words; the probe's
    # faulthandler in the child recorded the SIGSEGV and where it happened.
    status, data = _run_written(
        tmp_path,
        "import os, signal, sys\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.kill(os.getpid(), signal.SIGSEGV)\n"
        "os.waitpid(pid, 0)\n"
        "sys.exit('a worker crashed')\n",
    )
    assert status == 1
    assert data["verdict"]["subtype"] == "library/native-crash", data["verdict"]
    assert any(e["text"].startswith("SIGSEGV in pid ") for e in data["evidence"]), data["evidence"]
    assert data["culprit"]["line"] == 4


def test_a_pool_worker_s_segfault_is_named_when_the_pool_then_waits_for_ever(tmp_path):
    # Pool.map waits for ever for the task whose worker died; the stall watcher stops the run. The
    # worker's crash, recorded by the probe, is why it waited: the verdict, with the hang behind it
    train, report = tmp_path / "train.py", tmp_path / "r.json"
    train.write_text(
        "import ctypes, multiprocessing as mp\n"
        "def parse(n):\n"
        "    if n == 5:\n"
        "        ctypes.string_at(0)\n"
        "    return n\n"
        "if __name__ == '__main__':\n"
        "    print('preprocessing', flush=True)\n"
        "    with mp.Pool(2) as pool:\n"
        "        print(sum(pool.map(parse, range(16))))\n"
    )
    result = trainwatch("run", "--stall-timeout", "2", "--json", str(report), str(train))
    assert result.returncode == -signal.SIGTERM  # trainwatch stopped it: its death is the program's
    data = read_report(report)
    verdict = data["verdict"]
    assert verdict["subtype"] == "library/native-crash", verdict
    assert "died with SIGSEGV at train.py:4 in parse" in verdict["summary"], verdict["summary"]
    assert "until it was stopped" in verdict["summary"]
    assert data["culprit"]["line"] == 4
    assert any(e["kind"] == "stall" for e in data["evidence"]), data["evidence"]


def test_a_module_the_project_has_but_the_script_cannot_import_is_the_path_not_a_package(
    tmp_path,
):
    # `python tools/train.py` from the project's root: Python looks for imports in tools/, so the
    # root's own utils/ is not found, and installing a `utils` package would be the wrong advice
    (tmp_path / "utils").mkdir()
    (tmp_path / "utils" / "__init__.py").write_text("def seed():\n    return 0\n")
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "train.py").write_text("from utils import seed\nprint(seed())\n")
    report = tmp_path / "r.json"
    result = trainwatch("run", "--json", str(report), "tools/train.py", cwd=tmp_path)
    assert result.returncode == 1
    verdict = read_report(report)["verdict"]
    assert verdict["subtype"] == "code/missing-local-module", verdict
    assert str(tmp_path / "utils") in verdict["summary"]
    # a module that is nowhere in the project stays a package to install
    (tmp_path / "tools" / "train.py").write_text("import utils_nowhere_xyz\n")
    trainwatch("run", "--json", str(report), "tools/train.py", cwd=tmp_path)
    assert read_report(report)["verdict"]["subtype"] == "library/missing-package"


def test_a_file_of_the_program_s_named_like_a_package_it_imports_is_named_as_shadowing_it(
    tmp_path,
):
    # a scratch json.py beside the script: the standard library's json is never imported, and
    # the error's words alone read as versions that do not fit
    (tmp_path / "json.py").write_text("x = 1\n")
    (tmp_path / "train.py").write_text("import json\nprint(json.dumps({'epoch': 1}))\n")
    report = tmp_path / "r.json"
    assert trainwatch("run", "--json", str(report), "train.py", cwd=tmp_path).returncode == 1
    verdict = read_report(report)["verdict"]
    assert verdict["subtype"] == "code/module-shadowed", verdict
    assert f"found the program's own {tmp_path / 'json.py'}" in verdict["summary"]


def test_a_call_of_the_program_s_own_function_that_does_not_fit_it_is_the_program_s_mistake(
    tmp_path,
):
    # from its words alone the TypeError reads as code written for another release of a library
    train = tmp_path / "train.py"
    train.write_text(
        "def train_step(model, optimizer, batch):\n    return 0.5\n\n"
        "for epoch in range(2):\n    loss = train_step('model', 'batch')\n"
    )
    report = tmp_path / "r.json"
    assert trainwatch("run", "--json", str(report), str(train)).returncode == 1
    verdict = read_report(report)["verdict"]
    assert verdict["subtype"] == "code/wrong-call-arguments", verdict
    assert "its own function `train_step()` (defined at train.py:1)" in verdict["summary"]
    # the same words for a function it does not define stay the library's reading
    train.write_text("import json\njson.dumps({}, indentation=2)\n")
    assert trainwatch("run", "--json", str(report), str(train)).returncode == 1
    assert read_report(report)["verdict"]["subtype"] == "library/version-incompat"


def test_a_warning_torch_gives_about_the_program_s_line_still_names_that_line(tmp_path, script):
    # the probe counts the DataLoader's batches under its iterator's `__next__`: torch's warning
    # from there (an IterableDataset's length overrun, `stacklevel=2`) names the program's `for`
    # line, as it does without trainwatch (a real run's 60 warnings named the probe's file)
    done = trainwatch("run", "-q", script("iterable_length_overrun.py"))
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    warned = [
        line for line in done.stderr.decode().splitlines() if "UserWarning: Length of" in line
    ]
    assert len(warned) == 2, done.stderr.decode()[-2000:]
    assert all(line.startswith(script("iterable_length_overrun.py") + ":") for line in warned)
    assert b"sum 10.0" in done.stdout
