"""The knowledge base: every signature file loads, follows the schema, and its examples hold."""

from __future__ import annotations

import io
import re

import pytest

from trainwatch.diagnostics.knowledge import (
    BUILTIN_DIR,
    PHRASES_DIR,
    SignatureError,
    load_file,
    load_knowledge,
)
from trainwatch.diagnostics.read.logparse import LogParser
from trainwatch.diagnostics.verdict import CATEGORIES, Cited

KNOWLEDGE = load_knowledge(include_user=False)
SIGNATURES = KNOWLEDGE.signatures


def test_every_file_loads_and_ids_are_unique_kebab_case():
    files = sorted(BUILTIN_DIR.glob("*.toml")) + sorted(PHRASES_DIR.glob("*.toml"))
    assert files, "no signature files"
    ids = [s.id for f in files for s in load_file(f)]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids)
    assert len(SIGNATURES) == len(ids)


@pytest.mark.parametrize("sig", SIGNATURES, ids=lambda s: s.id)
def test_schema(sig):
    assert sig.category in CATEGORIES
    assert sig.subtype is None or sig.subtype.startswith(sig.category + "/")
    assert sig.role in ("root", "cascade")
    assert sig.title and sig.explanation and sig.advice
    assert 0 < sig.confidence <= 1
    assert any(e.match for e in sig.examples), "needs an example that must match"
    assert any(not e.match for e in sig.examples), "needs an example that must not match"


def test_every_line_pattern_gives_the_pre_filter_a_literal():
    # A line the pre-filter does not pick reaches no line pattern, except among the log's last
    # lines (read whole): a pattern without a literal of 3+ characters only works there, so it is
    # kept to the few forms that only mean something at the end.
    from trainwatch.diagnostics.knowledge.matcher import required_literals

    blind = {
        p.pattern
        for s in SIGNATURES
        if not s.at_end  # matched among the last lines only, by design
        for p in s.line
        if required_literals(p.pattern) is None
    }
    assert blind == {r"(?:^|[\s\]])\^C$"}  # a terminal's ^C, alone or after a bar or a prefix


def test_every_built_in_pattern_compiles_and_answers_as_its_regex():
    # The built-in files' patterns are compiled at their first candidate text, not when loaded
    # (knowledge/schema.py SignaturePattern): a bad one must fail here, not in a user's run.
    checked = 0
    for sig in SIGNATURES:
        texts = [line for e in sig.examples for line in e.text.splitlines()]
        for pattern in (*sig.message, *sig.line, *sig.raised_at):
            regex = re.compile(pattern.pattern)
            for text in texts:
                assert bool(pattern.search(text)) == bool(regex.search(text)), (sig.id, text)
                checked += 1
    assert checked > 1000


def _fed_line_by_line(text: str):
    """The log facts of an example, fed to the parser line by line as `trainwatch run` feeds live
    output.
    """
    parser = LogParser(KNOWLEDGE)
    parser.feed_text(text)
    return parser.finish()


@pytest.mark.parametrize("sig", SIGNATURES, ids=lambda s: s.id)
def test_examples_through_the_whole_pipeline(sig):
    for example in sig.examples:
        facts = _fed_line_by_line(example.text)
        signals = {s: Cited("log", s, "example") for s in facts.signals}
        matched = {m.signature.id for m in KNOWLEDGE.match(facts.chains, facts, signals)}
        assert (sig.id in matched) == example.match, (
            f"{sig.id}: example expected "
            f"{'a match' if example.match else 'no match'}:\n{example.text}"
        )


def test_every_signal_phrasing_reads_its_own_example():
    # knowledge/signals.toml: each phrasing's example line is read by that phrasing, to a signal
    from trainwatch.diagnostics.knowledge.signals import examples, phrases, read_exit

    pairs = list(zip(phrases(), examples(), strict=True))
    assert len(pairs) >= 8
    for pattern, example in pairs:
        assert pattern.search(example), (pattern.pattern, example)
        said = read_exit(example)
        assert said is not None and said.signal is not None and said.signal.startswith("SIG")


def test_exit_statuses_name_their_signal_posix_and_windows():
    from trainwatch.diagnostics.knowledge.signals import read_exit, signal_from_code

    assert [signal_from_code(c) for c in (137, -9, 143, 1, 0)] == [
        "SIGKILL",
        "SIGKILL",
        "SIGTERM",
        None,
        None,
    ]
    # a Windows crash status, signed as PyCharm prints it or unsigned as cmd does
    assert signal_from_code(-1073741819) == signal_from_code(3221225477) == "SIGSEGV"
    said = read_exit("Process finished with exit code -1073741819 (0xC0000005)")
    assert said is not None and (said.signal, said.code) == ("SIGSEGV", -1073741819)
    # the shell's word on a progress bar that ends in its own fields; YARN's "Exit code is"
    said = read_exit("Epoch 3:  45%|####5     | 450/1000 [05:12<06:20,  1.45it/s, loss=0.23]Killed")
    assert said is not None and said.signal == "SIGKILL"
    said = read_exit("Container killed on request. Exit code is 137")
    assert said is not None and (said.signal, said.code) == ("SIGKILL", 137)
    # a process that caught SIGTERM did; TensorBoard's server catching it says nothing of the run
    said = read_exit("Trainer caught SIGTERM, saving a checkpoint")
    assert said is not None and said.signal == "SIGTERM"
    assert read_exit("TensorBoard caught SIGTERM; exiting...") is None
    # bash's report of a script's command, `(core dumped)` glued to the signal's words
    said = read_exit(
        "./train.sh: line 24: 22795 Floating point exception(core dumped) python3 x.py"
    )
    assert said is not None and said.signal == "SIGFPE"


def test_user_file_errors_name_file_and_key(tmp_path):
    bad = tmp_path / "mine.toml"
    bad.write_text('[[signature]]\nid = "Bad_Id"\ncategory = "oom"\n')
    with pytest.raises(SignatureError, match=r"mine\.toml.*kebab-case"):
        load_file(bad)
    bad.write_text(
        '[[signature]]\nid = "x"\ncategory = "oom"\ntitle = "t"\nexplanation = "e"\nline = ["("]\n'
    )
    with pytest.raises(SignatureError, match=r"not a valid regex"):
        load_file(bad)
    # module_is_own_file compares the module a message names with the traceback's files: the
    # messages must name it
    bad.write_text(
        '[[signature]]\nid = "x"\ncategory = "code"\ntitle = "t"\nexplanation = "e"\n'
        'exception = ["ImportError"]\nmessage = ["no group"]\nmodule_is_own_file = true\n'
    )
    with pytest.raises(SignatureError, match=r"module_is_own_file.*\(\?P<module>"):
        load_file(bad)
    bad.write_text("[[signature]\n")
    with pytest.raises(SignatureError, match="not valid TOML"):
        load_file(bad)
    bad.write_text(
        '[[signature]]\nid = "x"\ncategory = "oom"\ntitle = "t"\nexplanation = "e"\n'
        'line = ["x"]\nraised_at = ["y"]\n'
    )
    with pytest.raises(SignatureError, match=r"mine\.toml.*`raised_at` needs"):
        load_file(bad)
    # whole_run speaks of lines the run printed: it needs them
    bad.write_text(
        '[[signature]]\nid = "x"\ncategory = "code"\ntitle = "t"\nexplanation = "e"\n'
        'exception = ["ValueError"]\nwhole_run = true\n'
    )
    with pytest.raises(SignatureError, match=r"mine\.toml.*`whole_run` is true or false"):
        load_file(bad)


def test_user_file_adds_a_signature(tmp_path, monkeypatch):
    mine = tmp_path / "team.toml"
    mine.write_text("""[[signature]]
id = "team-quota-exceeded"
category = "library"
subtype = "library/disk-full"
title = "Team quota exceeded"
explanation = "The shared team volume is full."
advice = ["Clean /team/scratch."]
line = ['TEAMFS: quota exceeded']
""")
    monkeypatch.setenv("TRAINWATCH_SIGNATURES", str(tmp_path))
    knowledge = load_knowledge()
    assert knowledge.get("team-quota-exceeded") is not None
    parser = LogParser(knowledge)
    parser.feed_text("step 3 loss 0.2\nTEAMFS: quota exceeded for /team\n")
    facts = parser.finish()
    assert any(
        m.signature.id == "team-quota-exceeded" for m in knowledge.match(facts.chains, facts, {})
    )


@pytest.mark.parametrize("sig", SIGNATURES, ids=lambda s: s.id)
def test_examples_read_as_a_saved_log_match_the_same(sig):
    # The chunk pre-filter of `explain` must let through every line a signature needs.
    for example in sig.examples:
        lines_facts = _fed_line_by_line(example.text)
        facts = LogParser(KNOWLEDGE).parse_stream(io.BytesIO(example.text.encode()))
        assert facts.chains == lines_facts.chains
        assert [x.text for x in facts.notable] == [x.text for x in lines_facts.notable]
        assert facts.signals == lines_facts.signals


def test_sigkill_advice_fits_a_report_from_run_and_from_explain():
    sig = next(s for s in SIGNATURES if s.id == "sigkill-unconfirmed")
    advice = " ".join(sig.advice)
    assert "trainwatch run" in advice and "if it was not" in advice
    assert not advice.lower().startswith("rerun under") and "Rerun under" not in advice


def test_a_home_folder_this_user_may_not_read_gives_no_signature_files_of_its_own(
    monkeypatch, tmp_path
):
    # run as another user with HOME left as it was: listing ~/.config/trainwatch raised EACCES
    # and trainwatch ended with its own internal error, exit 70 (BX's real runs). Root reads
    # every folder, so the refusal is the one stand-in here.
    import pathlib

    import trainwatch.diagnostics.knowledge as knowledge

    class Unreadable(type(pathlib.Path())):
        def is_dir(self):
            raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(knowledge, "USER_DIR", Unreadable("/root/.config/trainwatch/signatures"))
    named = tmp_path / "team.toml"
    monkeypatch.setenv(knowledge.ENV_VAR, str(named))
    assert knowledge.user_signature_files() == (named,)
