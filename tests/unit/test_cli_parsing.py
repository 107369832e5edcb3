"""`trainwatch run`'s fast parser agrees with its typer command, and both keep the child's arguments
intact.
"""

from __future__ import annotations

import typer

from trainwatch.cli import run as run_cmd
from trainwatch.cli.app import build_app
from trainwatch.cli.options import RUN_OPTIONS, spellings

from conftest import ROOT


def _run_params():
    command = typer.main.get_command(build_app())
    return command.commands["run"].params


def test_the_typer_command_is_built_from_the_option_table():
    table = spellings(RUN_OPTIONS)
    spelled = set(table)
    declared = set()
    for param in _run_params():
        if param.param_type_name != "option":
            continue
        declared.update(param.opts)
        declared.update(param.secondary_opts)
        for name in param.opts:
            option, _ = table[name]
            assert option.field == param.name, name
            assert (not option.takes_value) == param.is_flag, name
            assert (option.kind == "values") == param.multiple, name
    assert spelled == declared


def test_the_docs_hold_the_generated_option_tables():
    from trainwatch.cli.options import DOC_TABLES, docs_block

    text = (ROOT / "docs" / "index.md").read_text()
    for command in DOC_TABLES:
        assert docs_block(command) in text, (
            f"python -m trainwatch.cli.options regenerates {command}"
        )


def test_numbers_must_be_finite_on_both_parsers():
    assert run_cmd.parse_fast(["--stall-timeout", "nan", "--", "x"]) is None
    assert run_cmd.parse_fast(["--stall-timeout", "inf", "--", "x"]) is None


def test_fast_parser_reads_a_plain_command_line():
    args = run_cmd.protect_child_args(
        [
            "--json",
            "r.json",
            "--interval=0.2",
            "-q",
            "--signatures",
            "a.toml",
            "--signatures",
            "b.toml",
            "train.py",
            "--json",
            "x",
            "--help",
        ],
        run_cmd.VALUE_OPTIONS,
    )
    options = run_cmd.parse_fast(args)
    assert options == run_cmd.RunOptions(
        program=("train.py", "--json", "x", "--help"),
        json_path="r.json",
        interval=0.2,
        quiet=True,
        signatures=("a.toml", "b.toml"),
    )


def test_fast_parser_hands_help_and_mistakes_to_typer():
    for args in (
        ["--help", "train.py"],
        ["--interval", "0.001", "--", "x"],
        ["--interval", "nan", "--", "x"],
        ["--no-such-option", "--", "x"],
        ["--json"],
        ["-qm", "pkg"],
    ):
        assert run_cmd.parse_fast(args) is None, args


def test_module_and_command_forms():
    module = run_cmd.parse_fast(
        run_cmd.protect_child_args(["-m", "pkg.train", "--lr", "3"], run_cmd.VALUE_OPTIONS)
    )
    assert module == run_cmd.RunOptions(program=("--lr", "3"), module="pkg.train")
    command = run_cmd.parse_fast(
        run_cmd.protect_child_args(["--", "torchrun", "-q"], run_cmd.VALUE_OPTIONS)
    )
    assert command == run_cmd.RunOptions(program=("torchrun", "-q"), as_command=True)


def test_explain_reads_a_plain_command_line_without_typer():
    from trainwatch.cli import explain as explain_cmd

    logs, values = explain_cmd.parse_fast(
        ["rank0.log", "-q", "--json=r.json", "rank1.log", "--signatures", "a.toml", "-"]
    )
    assert logs == ["rank0.log", "rank1.log", "-"]
    assert values["quiet"] is True and values["json_path"] == "r.json"
    assert values["signatures"] == ("a.toml",) and values["html"] is None
    logs, _ = explain_cmd.parse_fast(["--", "-q.log"])
    assert logs == ["-q.log"]  # after `--` a word is a log, even one that starts with a dash
    # help, a mistake, or no log at all: typer parses it and says what is wrong
    for args in (["--help"], ["x.log", "--no-such-option"], ["-q"], ["x.log", "--json"]):
        assert explain_cmd.parse_fast(args) is None, args


def test_the_explain_command_is_built_from_the_option_table():
    from trainwatch.cli.options import EXPLAIN_OPTIONS

    command = typer.main.get_command(build_app())
    declared = set()
    for param in command.commands["explain"].params:
        if param.param_type_name == "option":
            declared.update(param.opts)
            declared.update(param.secondary_opts)
    assert set(spellings(EXPLAIN_OPTIONS)) == declared
