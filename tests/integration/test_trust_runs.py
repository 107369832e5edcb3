"""Reports a user trusts at first sight: real runs whose report once said something other than
what happened (a framework's collator called the program's logic, a NaN missed, a DDP error
unknown, a position read from a file name, a hang blaming itself, limits and leaks unnamed)."""

from __future__ import annotations

import json
import re
import shutil

from conftest import SCRIPTS, read_report, trainwatch

BANNER = "trainwatch report"


def report_text(stderr: bytes) -> str:
    """The terminal report at the end of trainwatch's stderr, from its banner on."""
    text = stderr.decode()
    return text[text.rfind("\n", 0, text.rindex(BANNER)) + 1 :]


def test_a_trainer_without_a_padding_collator_is_data_raised_in_the_collator(shared_run):
    run = shared_run("no-padding-collator")
    assert run.returncode == 1
    data = run.report
    assert data["verdict"]["category"] == "data", data["verdict"]
    assert data["verdict"]["subtype"] == "data/shape-mismatch"
    assert any("DataCollatorWithPadding" in a for a in data["advice"])
    # the culprit is the user's call, flagged as the place the framework's collator ran from
    assert data["culprit"]["file"].endswith("hf_collate.py")
    assert "data collator" in data["culprit"]["note"]
    assert "torch_default_data_collator" in data["culprit"]["note"]


def test_lightning_train_loss_step_nan_is_read_and_the_last_loss_is_nan(tmp_path):
    report = tmp_path / "r.json"
    result = trainwatch(
        "run",
        "--json",
        str(report),
        str(SCRIPTS / "lightning_nan_step.py"),
        str(tmp_path / "out"),
    )
    assert result.returncode == 0
    data = read_report(report)
    assert data["verdict"]["category"] == "numerical", data["verdict"]
    assert data["progress"]["first_nonfinite_loss"]["line"].count("train_loss_step=") >= 1
    assert data["progress"]["last_loss"] == "nan"
    # the last loss printed is NaN, and the report says so (not the last finite value)
    assert re.search(r"loss .*!  last NaN", report_text(result.stderr))


def test_lightning_rich_bar_wrapped_off_a_terminal_is_read(tmp_path):
    report = tmp_path / "r.json"
    result = trainwatch(
        "run",
        "--json",
        str(report),
        str(SCRIPTS / "lightning_nan_step.py"),
        str(tmp_path / "out"),
        "rich",
    )
    assert result.returncode == 0
    # rich wraps the metrics column at 80 columns: `train_loss_step:` ends a line, `nan` is next
    assert re.search(rb"train_loss_step: *\n *nan", result.stdout)
    data = read_report(report)
    assert data["progress"]["finished"] is True
    assert data["verdict"]["category"] == "numerical", data["verdict"]
    assert data["progress"]["last_loss"] == "nan"


def test_ddp_unused_parameters_in_plain_torch_words_is_known(shared_run):
    run = shared_run("ddp-unused-parameters")
    assert run.returncode == 1
    data = run.report
    assert data["verdict"]["signature"] == "ddp-unused-parameters", data["verdict"]
    assert data["verdict"]["subtype"] == "code/unused-parameters"
    assert any("find_unused_parameters=True" in a for a in data["advice"])


def test_a_counter_in_the_scripts_path_is_not_the_position(tmp_path):
    folder = tmp_path / "exp-batch16"
    folder.mkdir()
    script = folder / "train.py"
    script.write_text(
        "import warnings\n"
        "print('epoch 1/2 step 3/10 loss=0.5', flush=True)\n"
        "warnings.warn('lr scheduler stepped before the optimizer')\n"
        "raise RuntimeError('boom')\n"
    )
    report = tmp_path / "r.json"
    result = trainwatch("run", "--json", str(report), str(script))
    assert result.returncode == 1
    assert b"exp-batch16/train.py:3: UserWarning" in result.stderr  # the line that misled
    data = read_report(report)
    assert data["progress"]["stopped_at"] == "epoch 1/2, step 3/10"
    assert "batch 16" not in report_text(result.stderr)


def test_a_hang_names_where_every_stuck_process_blocks_and_not_its_own_stop(shared_run):
    result = shared_run("dataloader-hang")
    assert result.returncode == -15
    data = result.report
    assert data["verdict"]["category"] == "hang"
    culprits = data["culprits"]
    # the workers' blocking line first, every worker named; then where the main process waits
    assert culprits[0]["function"] == "__getitem__" and culprits[0] == data["culprit"]
    assert culprits[0]["process"].startswith("pids ") and "lock" in culprits[0]["note"]
    assert culprits[1]["function"] == "<module>" and "DataLoader" in culprits[1]["note"]
    assert len(culprits[0]["process"].split(",")) == 2  # both DataLoader workers, named once
    # that wait is the first evidence, before the silence itself
    assert data["evidence"][0]["kind"] == "stack" and "__getitem__" in data["evidence"][0]["text"]
    assert data["evidence"][1]["kind"] == "stall"
    # trainwatch's own SIGTERM is a consequence, never an alternative cause
    assert all(a["category"] != "interrupted" for a in data["verdict"]["alternatives"])
    assert any("trainwatch's stop" in c["text"] for c in data["cascade"])
    text = report_text(result.stderr)
    assert "culprit frame below" not in text and "stacks below" not in text


def test_a_clean_cpu_run_is_near_certain_with_no_gpu_note_and_quiet_is_one_line(shared_run):
    result = shared_run("completed")
    assert result.returncode == 0
    data = result.report
    assert data["verdict"]["category"] == "completed" and data["verdict"]["confidence"] >= 0.95
    assert not any(n.startswith("GPU") for n in data["notes"])
    text = report_text(result.stderr)
    assert "GPU" not in text and "memory peak" in text and "97% sure" in text
    # -q: one line, however narrow the terminal (a narrow one folds it; trainwatch never breaks it)
    quiet = trainwatch("run", "-q", str(SCRIPTS / "quiet_complete.py"), env={"COLUMNS": "40"})
    lines = [line for line in quiet.stderr.decode().splitlines() if line.startswith("trainwatch:")]
    assert len(lines) == 1 and len(lines[0]) > 40 and "completed" in lines[0]
    assert quiet.stderr.decode().endswith(lines[0] + "\n")


def test_an_allocation_under_its_own_rlimit_as_names_the_limit_and_the_leak(tmp_path):
    report = tmp_path / "r.json"
    result = trainwatch(
        "run", "--interval", "0.05", "--json", str(report), str(SCRIPTS / "leak_rlimit.py")
    )
    assert result.returncode == 1
    data = read_report(report)
    v = data["verdict"]
    assert v["subtype"] == "oom/host", v
    limit = data["memory"]["address_limits"][0]
    assert limit["pid"] == data["probe"]["processes"][0]["pid"]
    assert "RLIMIT_AS" in v["summary"] and "own address-space limit" in v["summary"]
    assert any(e["kind"] == "limit" and e["source"].endswith("/limits") for e in data["evidence"])
    assert "leak" in v["summary"]
    assert any(e["kind"] == "memory" and "grew steadily" in e["text"] for e in data["evidence"])


def test_report_re_renders_a_saved_report_as_the_run_printed_it(tmp_path):
    saved = tmp_path / "r.json"
    run = trainwatch(
        "run", "--interval", "0.05", "--json", str(saved), str(SCRIPTS / "leak_rlimit.py")
    )
    again = trainwatch("report", str(saved))
    assert again.returncode == 0 and again.stdout == b""
    assert again.stderr.decode() == report_text(run.stderr)
    html, junit = tmp_path / "r.html", tmp_path / "r.xml"
    both = trainwatch("report", str(saved), "--html", str(html), "--junit", str(junit))
    assert both.returncode == 0
    assert "oom/host" in html.read_text() and "<svg" in html.read_text()
    assert 'type="oom/host"' in junit.read_text() or "oom/host" in junit.read_text()
    summary = trainwatch("report", str(saved), "--github-summary", "-")
    assert summary.stdout.decode().startswith("### ❌ trainwatch: `oom/host`")
    assert summary.stderr == b""
    # in a GitHub job, the documented `--github-summary - >> "$GITHUB_STEP_SUMMARY"`: once only
    # (BU's real runs: the command appended it itself too)
    step = tmp_path / "step.md"
    in_a_job = trainwatch(
        "report",
        str(saved),
        "--github-summary",
        "-",
        env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step)},
    )
    assert in_a_job.stdout.decode().count("### ❌ trainwatch") == 1 and not step.exists()
    failing = trainwatch("report", "-q", "--fail-on", "oom", str(saved))
    assert failing.returncode == 3
    # explain reads logs: a JSON report is named as one, in one line, exit 2
    explained = trainwatch("explain", str(saved))
    assert explained.returncode == 2
    assert explained.stderr.decode().count("\n") == 1
    assert "trainwatch report" in explained.stderr.decode()
    # report reads reports: anything else is one line, exit 2
    for other in (SCRIPTS / "leak_rlimit.py", tmp_path / "missing.json"):
        wrong = trainwatch("report", str(other))
        assert wrong.returncode == 2 and wrong.stderr.decode().count("\n") == 1
    (tmp_path / "x.json").write_text(json.dumps({"a": 1}))
    assert trainwatch("report", str(tmp_path / "x.json")).returncode == 2


def test_the_demo_runs_from_the_package_and_fails_as_it_should(tmp_path):
    report = tmp_path / "r.json"
    result = trainwatch("demo", "--json", str(report), "--data", str(tmp_path / "images"))
    assert result.returncode == 1
    data = read_report(report)
    assert data["verdict"]["subtype"] == "data/corrupt-file", data["verdict"]
    assert data["culprit"]["function"] == "__getitem__"
    assert data["command"][1].endswith("demo/train_cnn.py")  # the package's script
    assert "2_077.png" in result.stderr.decode().splitlines()[-1]
    no_torch = tmp_path / "python3"
    no_torch.write_text(
        f'#!/bin/sh\nexec {shutil.which("python3") or "/usr/bin/python3"} -S "$@"\n'
    )
    no_torch.chmod(0o755)
    refused = trainwatch("demo", "--python", str(no_torch))
    assert refused.returncode == 2 and b"PyTorch" in refused.stderr


def test_first_use_help_reads_at_any_width_and_bare_trainwatch_succeeds():
    bare = trainwatch()
    assert bare.returncode == 0 and b"error" not in bare.stderr
    for command in ("run", "explain", "report", "demo"):
        assert f"\n  {command} ".encode() in bare.stdout
    for env in ({}, {"COLUMNS": "40"}):  # off a terminal: laid out at 100 columns, never squeezed
        text = trainwatch("run", "--help", env=env).stdout.decode()
        lines = text.splitlines()
        assert max(len(line) for line in lines) <= 100
        for flag in ("--stall-timeout", "--on-stall", "--fail-on", "--notify-format"):
            assert re.search(rf"^\s+{flag}\b", text, re.M), flag  # an option's name is never cut
        assert sum(1 for line in lines if len(line.split()) == 1) < 10  # no word-a-line column
        # every option says its values: --fail-on its categories, a choice its choices
        assert "Categories: data, oom, numerical" in " ".join(text.split())
        assert "One of: auto, kill, report." in " ".join(text.split())
