"""The log parser: tracebacks of every shape, rank prefixes, system lines, bounds, and the two input
paths.
"""

from __future__ import annotations

import io
import re
from bisect import bisect_right

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainwatch.diagnostics.evidence import UNKNOWN_FUNCTION
from trainwatch.diagnostics.read import logparse
from trainwatch.diagnostics.read.frames import is_user_file
from trainwatch.diagnostics.read.logparse import TAIL_LINES, LogParser, parse_text
from trainwatch.diagnostics.read.prefilter import anchor_patterns, word_places
from trainwatch.diagnostics.verdict import REPORT_BANNER

from conftest import FIXTURE_LOGS

CHAINED = """\
Traceback (most recent call last):
  File "/home/u/proj/data.py", line 12, in __getitem__
    return self.rows[key]
KeyError: 'label'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/home/u/proj/train.py", line 40, in <module>
    main()
  File "/venv/lib/site-packages/torch/utils/data/dataloader.py", line 631, in __next__
    data = self._next_data()
RuntimeError: bad sample 7
"""


def test_chained_traceback_with_frames_and_relation():
    facts = parse_text(CHAINED)
    assert len(facts.chains) == 1
    first, final = facts.chains[0].exceptions
    assert (first.type, first.message, first.relation) == ("KeyError", "'label'", "cause")
    assert final.type == "RuntimeError" and final.message == "bad sample 7"
    assert (
        first.frames[0].function == "__getitem__"
        and first.frames[0].code == "return self.rows[key]"
    )
    assert [f.user for f in final.frames] == [True, False]
    assert facts.chains[0].line == 1


def test_during_handling_is_context():
    text = CHAINED.replace(
        "The above exception was the direct cause of the following exception",
        "During handling of the above exception, another exception occurred",
    )
    assert parse_text(text).chains[0].exceptions[0].relation == "context"


DATALOADER = """\
Traceback (most recent call last):
  File "train.py", line 9, in <module>
    for x in loader:
PIL.UnidentifiedImageError: Caught UnidentifiedImageError in DataLoader worker process 2.
Original Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/torch/utils/data/_utils/worker.py", line 287, in _worker_loop
    data = fetcher.fetch(index)
  File "/home/u/ds.py", line 31, in __getitem__
    img = Image.open(path)
PIL.UnidentifiedImageError: cannot identify image file '/data/666.jpg'

Epoch 1: 3%
"""


def test_dataloader_original_traceback_comes_first_in_the_chain():
    chain = parse_text(DATALOADER).chains[0]
    worker, wrapper = chain.exceptions
    assert (
        worker.message == "cannot identify image file '/data/666.jpg'"
        and worker.relation == "cause"
    )
    assert worker.deepest_user_frame().function == "__getitem__"
    assert wrapper.message.startswith(
        "Caught UnidentifiedImageError in DataLoader worker process 2"
    )


@pytest.mark.parametrize(
    ("log", "frames"),
    [("rich_traceback_folded.log", 5), ("rich_handler_traceback.log", 9)],
)
def test_a_rich_traceback_box_is_read_whole_where_rich_folded_it(log, frames):
    """rich draws its traceback in a box as wide as the terminal (80 columns in a file): long
    paths fold over lines, the message wraps at the box's width, and RichHandler draws it all in
    its message column, after the time and level (real runs' output)."""
    (chain,) = parse_text((FIXTURE_LOGS / log).read_text()).chains
    error = chain.final
    assert error.type == "RuntimeError"
    assert error.message == (
        "Expected tensor for argument #1 'indices' to have one of the following scalar types: "
        "Long, Int; but got torch.FloatTensor instead (while checking arguments for embedding)"
    )
    assert len(error.frames) == frames
    assert error.frames[0].code in ("emb(torch.tensor([1.0, 2.0]))", "main()")
    assert [(f.function, f.line) for f in error.frames[-2:]] == [
        ("forward", 189),
        ("embedding", 2615),
    ]
    assert all(f.file.endswith(".py") and "\u2502" not in (f.code or "") for f in error.frames)


def test_an_exception_line_set_one_column_in_is_read():
    # a paste whose lines each start with a space (a copy of a notebook's output), among lines
    # that do not (`--> 136` of IPython's listing): no indentation common to all of them
    text = "--> 136     hidden = hidden[:, validMask, :]\n IndexError: The shape of the mask [98]\n"
    assert parse_text(text).chains[-1].final.type == "IndexError"
    # two columns in, it is a message's own line (test_r_reports_a_python_exception_...)
    assert not parse_text("--> 136     x = y\n  IndexError: a message's line\n").chains


def test_an_exception_printed_as_its_repr_is_read_as_the_error_it_is():
    """A program that catches an error and prints it (`print(e.args)` in a tqdm loop,
    `logger.error(repr(e))`) leaves the exception's repr: alone on its line or after a prefix or a
    bar's frame, it is that error; inside a sentence, or Ray's `RayTaskError(Type)` head, it is
    not."""
    (printed,) = parse_text(
        "0it [00:00, ?it/s](FileNotFoundError(2, 'No such file or directory'),)\n"
    ).chains
    assert (printed.final.type, printed.final.message) == (
        "FileNotFoundError",
        "[Errno 2] No such file or directory",
    )
    (logged,) = parse_text("2024-05-01 10:02:11 ERROR ValueError('bad \\'x\\' column')\n").chains
    assert (logged.final.type, logged.final.message) == ("ValueError", "bad 'x' column")
    assert not parse_text("loading failed: KeyError('label')\n").chains
    ray = "ray.exceptions.RayTaskError(NameError): ray::train() (pid=1, repr=Trainer)\n"
    assert all(
        c.final.type != "ray.exceptions.RayTaskError" or c.final.message.startswith("ray")
        for c in parse_text(ray).chains
    )


def test_an_exception_quoted_in_another_s_message_is_read_as_its_cause():
    """Hydra's InstantiationException quotes the call's error as repr() writes it, escapes and all;
    a repr that is the message's own first line is the message, not a quote."""
    text = (
        "Traceback (most recent call last):\n"
        '  File "/venv/lib/site-packages/hydra/_internal/instantiate/_instantiate2.py", line 92,'
        " in _call_target\n"
        "    raise InstantiationException(msg) from e\n"
        "hydra.errors.InstantiationException: Error in call to target 'proj.data.Loader':\n"
        "ValueError(\"can't read 'x.csv':\\nno such column\")\n"
        "full_key: data\n"
    )
    (chain,) = parse_text(text).chains
    assert [e.type for e in chain.exceptions] == [
        "ValueError",
        "hydra.errors.InstantiationException",
    ]
    assert chain.exceptions[0].message == "can't read 'x.csv':\nno such column"
    assert chain.exceptions[0].relation == "cause"
    alone = parse_text(
        'Traceback (most recent call last):\n  File "a.py", line 1, in <module>\n'
        "RuntimeError: KeyError('label')\n"
    )
    assert [e.type for e in alone.chains[0].exceptions] == ["RuntimeError"]


def test_a_traceback_pasted_from_its_first_frame_keeps_its_frames():
    # Users often copy a traceback without its `Traceback (most recent call last):` line.
    facts = parse_text(CHAINED.split("\n", 1)[1].split("\n\n")[0] + "\n")
    (exc,) = facts.chains[0].exceptions
    assert (exc.type, exc.message) == ("KeyError", "'label'")
    assert [(f.function, f.code) for f in exc.frames] == [("__getitem__", "return self.rows[key]")]


def test_a_frame_whose_paste_lost_its_path_s_opening_quote_is_still_a_frame():
    # markup may eat the quote: `File /app/run.py", line 166, in main`
    text = (
        'File /app/run.py", line 166, in main\n'
        "    else: raise NotImplementedError\n"
        "NotImplementedError\n"
    )
    (exc,) = parse_text(text).chains[0].exceptions
    assert exc.type == "NotImplementedError"
    assert [(f.file, f.line, f.function) for f in exc.frames] == [("/app/run.py", 166, "main")]


def test_the_place_a_script_s_syntax_error_names_is_its_frame_and_a_lone_frame_line_is_not():
    # Python prints a script's own SyntaxError with no head line: its `File ..., line N` (no
    # function) is where the program is to be mended
    syntax = parse_text(
        '  File "/home/u/proj/train.py", line 3\n    print "x"\n          ^\nSyntaxError: bad\n'
    )
    (exc,) = syntax.chains[0].exceptions
    assert exc.type == "SyntaxError"
    assert [(f.file, f.line, f.function, f.code) for f in exc.frames] == [
        ("/home/u/proj/train.py", 3, UNKNOWN_FUNCTION, 'print "x"')
    ]
    # the same line with no exception under it opens nothing, and the lines after it are read
    alone = parse_text('  File "/home/u/proj/train.py", line 3\nKilled\n')
    assert alone.chains == () and any("Killed" in line.text for line in alone.notable)


def test_a_frame_glued_to_its_source_line_keeps_its_function_and_code():
    # a paste that lost its line breaks writes `in train n_epochs = ...` on the frame's line
    glued = (
        "Traceback (most recent call last):\n"
        '  File "/work/train.py", line 158, in train n_epochs = STEPS // len(loader) + 1\n'
        "ZeroDivisionError: integer division or modulo by zero\n"
    )
    (frame,) = parse_text(glued).chains[0].final.frames
    assert (frame.function, frame.code) == ("train", "n_epochs = STEPS // len(loader) + 1")
    whole = parse_text(glued.replace(" n_epochs = STEPS // len(loader) + 1", ""))
    assert [(f.function, f.code) for f in whole.chains[0].final.frames] == [("train", None)]


def test_a_traceback_folded_into_one_line_is_read_as_python_wrote_it():
    # a paste into a page that folds a paragraph's lines (an issue without a code block), chained
    folded = (
        'warning before it. Traceback (most recent call last):   File "/w/feed.py", line 105,'
        " in _next     meta = self._metadata[self._offset] IndexError: list index out of range"
        "  During handling of the above exception, another exception occurred:  Traceback (most"
        ' recent call last):   File "train.py", line 9, in <module>     raise ValueError("no'
        ' rows") ValueError: no rows'
    )
    (chain,) = parse_text(folded + "\n").chains
    first, final = chain.exceptions
    assert (first.type, first.message, first.relation) == (
        "IndexError",
        "list index out of range",
        "context",
    )
    assert [(f.function, f.code) for f in first.frames] == [
        ("_next", "meta = self._metadata[self._offset]")
    ]
    assert (final.type, final.message) == ("ValueError", "no rows")
    assert [f.code for f in final.frames] == ['raise ValueError("no rows")']
    # a head alone, or one with no frame after it on its line, is no folded traceback
    assert parse_text("Traceback (most recent call last): see below\n").chains == ()


def test_a_traceback_folded_into_one_line_without_its_head_is_read_too():
    # the paste started at a frame: its frames, the source and the exception on one line
    folded = (
        '  File "/w/util.py", line 40, in tensor2img     img = np.concatenate(parts) '
        ' File "<__array_function__ internals>", line 6, in concatenate ValueError: all the input'
        " arrays must have same number of dimensions"
    )
    (chain,) = parse_text(folded + "\n").chains
    assert (chain.final.type, chain.final.message) == (
        "ValueError",
        "all the input arrays must have same number of dimensions",
    )
    assert [f.code for f in chain.final.frames][:1] == ["img = np.concatenate(parts)"]
    # a frame line as Python writes it, and one whose source merely names an error, are no fold
    assert parse_text('  File "a.py", line 3, in f\n').chains == ()
    frame = '  File "a.py", line 3, in f    raise_if(ValueError)\n'
    assert all(c.final.type != "ValueError" for c in parse_text(frame).chains)


def test_a_traceback_kept_as_one_escaped_string_is_read_as_python_wrote_it():
    # a service's error message holding the job's traceback as it stores it: `\n` between lines
    escaped = (
        'RuntimeError: Training failed with: message: "The replica exited with status 1. '
        r"\nTraceback (most recent call last):\n  File \"/opt/task.py\", line 36, in <module>\n"
        r"    import db_dtypes\nModuleNotFoundError: No module named \'db_dtypes\'\n\nThe above "
        r"exception was the direct cause of the following exception:\n\nTraceback (most recent "
        r"call last):\n  File \"/opt/task.py\", line 143, in load\n    df = rows.to_dataframe()"
        r'\nValueError: Please install the db-dtypes package" code: 3'
    )
    message, chain = parse_text(escaped + "\n").chains
    assert (
        message.final.message == 'Training failed with: message: "The replica exited with status 1.'
    )
    cause, final = chain.exceptions
    assert (cause.type, cause.message, cause.relation) == (
        "ModuleNotFoundError",
        "No module named 'db_dtypes'",
        "cause",
    )
    assert [(f.file, f.code) for f in cause.frames] == [("/opt/task.py", "import db_dtypes")]
    # the string ends at its closing quote: what follows it is not the message's
    assert (final.type, final.message) == ("ValueError", "Please install the db-dtypes package")


def test_a_log_cut_inside_a_traceback_keeps_its_frames_indented_or_trimmed():
    cut = (
        "epoch 3 step 120\n"
        "Traceback (most recent call last):\n"
        '  File "train.py", line 40, in <module>\n'
        "    main()\n"
        '  File "/srv/fairseq/data.py", line 229, in batches_by_size\n'
        '    "size {} / {}.".format(idx, src.sizes[idx], dst.sizes[idx]))\n'
    )
    trimmed = "\n".join(line.lstrip() for line in cut.split("\n"))
    for text in (cut, trimmed):
        frames = parse_text(text).cut_frames
        assert [(f.function, f.code) for f in frames] == [
            ("<module>", "main()"),
            ("batches_by_size", '"size {} / {}.".format(idx, src.sizes[idx], dst.sizes[idx]))'),
        ], text


def test_a_log_too_short_to_teach_its_prefix_is_read_after_it():
    # Two lines cannot teach the capture learner a timestamp: what starts a line (an exception's
    # name, a `raise`) is looked for after words that look like a capture's.
    stamp = "2024-05-01T00:00:0{}.000000Z "
    vs_code = f"{stamp.format(0)}Exception has occurred: AttributeError\n{stamp.format(1)}bad\n"
    assert parse_text(vs_code).chains[0].final.type == "AttributeError"
    raised = f'{stamp.format(0)}    raise ValueError("Sampling rate is expected to be 8kHz!")\n'
    assert parse_text(raised).closing_error.final.type == "ValueError"
    assert not parse_text("the notes say Exception has occurred: ValueError\n").chains


def test_an_exception_written_with_a_space_before_its_colon_is_read():
    # `Type : message`, as some pastes and reformatters write it, in a traceback and alone
    in_tb = CHAINED.split("\n\n")[0].replace("KeyError: 'label'", "KeyError :  'label'") + "\n"
    assert parse_text(in_tb).chains[0].final.message == "'label'"
    bare = parse_text("TypeError : unsupported operand type(s) for +\n").chains[0].final
    assert (bare.type, bare.message) == ("TypeError", "unsupported operand type(s) for +")
    assert not parse_text("Error : 0.25\n").chains  # a metric named Error is no exception
    # and one that lost the space after its colon, its message opening with a quote
    glued = parse_text("AttributeError:'Wrapper' object has no attribute'cache'\n").chains[0]
    assert (glued.final.type, glued.final.message) == (
        "AttributeError",
        "'Wrapper' object has no attribute'cache'",
    )
    assert not parse_text("ValueError:nan\n").chains  # glued to a word: a metric, not a message


def test_a_class_of_a_package_s_errors_module_is_an_exception_whatever_its_name():
    # `gym.error.NameNotFound`, `neptune.exceptions.MissingApiToken`: no Error suffix, but the
    # module they live in says what they are
    for line in (
        "neptune.exceptions.MissingApiToken: Missing API token.",
        "gym.error.NameNotFound: Environment Foo doesn't exist.",
        "torch._dynamo.exc.Unsupported: call_function BuiltinVariable(open)",
        "paddle.fluid.core_avx.EnforceNotMet: Cannot load cudnn shared library.",
        "pyarrow.lib.ArrowInvalid: JSON parse error: Invalid value. in row 0",
    ):
        final = parse_text(line + "\n").chains[0].final
        assert final.type == line.split(":")[0]
    # a dotted name elsewhere, or a lower-case one, is still prose
    assert not parse_text("config.model.Name: resnet50\n").chains
    assert not parse_text("pkg.errors.count: 3\n").chains


def test_a_traceback_pasted_indented_ends_at_an_exception_as_deep_as_its_frames():
    # code lines sit deeper than their frame; a line at the frames' depth is the exception
    pasted = (
        '      File "/srv/train.py", line 9, in main\n'
        "        trainer.train()\n"
        '      File "/srv/trainer.py", line 20, in train\n'
        "      ValueError: no checkpoint at ./out/checkpoint-10\n"
    )
    chain = parse_text(pasted).chains[0]
    assert chain.final.type == "ValueError"
    assert [f.code for f in chain.final.frames] == ["trainer.train()", None]
    # a deeper line under a frame is its code, even when it reads like an exception
    deeper = '  File "/srv/t.py", line 3, in f\n    KeyError: x\nKeyError: y\n'
    final = parse_text(deeper).chains[0].final
    assert (final.message, final.frames[0].code) == ("y", "KeyError: x")


def test_an_exception_pasted_as_deep_as_source_under_a_frame_with_its_source_is_the_exception():
    # a frame shows one source line: a second line at that depth that reads as an exception is
    # the traceback's last line, indented with the source when it was pasted (UM006)
    pasted = (
        '  File "/usr/lib/python3.10/site-packages/transformers/tokenization_utils_fast.py", '
        "line 818, in train_new_from_iterator\n"
        '    or tokenizer_json["pre_tokenizer"]["type"] == "Sequence"\n'
        "    TypeError: 'NoneType' object is not subscriptable\n"
    )
    final = parse_text(pasted).chains[0].final
    assert (final.type, final.message) == ("TypeError", "'NoneType' object is not subscriptable")
    assert final.frames[0].code == 'or tokenizer_json["pre_tokenizer"]["type"] == "Sequence"'


def test_a_traceback_pasted_without_indentation_keeps_source_that_reads_like_an_exception():
    # at the margin, an annotated assignment and a bare `raise` look like `Type: message`
    pasted = (
        "Traceback (most recent call last):\n"
        'File "/srv/runner.py", line 40, in build\n'
        "alg: PPO = alg_class(\n"
        'File "/srv/train.py", line 12, in main\n'
        "raise\n"
        "TypeError: PPO.__init__() got an unexpected keyword argument 'optimizer'\n"
    )
    final = parse_text(pasted).chains[0].final
    assert final.type == "TypeError"
    assert [f.code for f in final.frames] == ["alg: PPO = alg_class(", "raise"]
    # and any other line after a frame that is no exception's: the frame's source
    constants = pasted.replace("raise\n", "MODEL_CLASSES = list(MAPPING.keys())\n")
    assert parse_text(constants).chains[0].final.frames[-1].code == (
        "MODEL_CLASSES = list(MAPPING.keys())"
    )
    # a dotted name in lower case still names an exception: `cv2.error`
    cv2 = 'Traceback (most recent call last):\nFile "/srv/t.py", line 3, in f\ncv2.error: bad\n'
    assert parse_text(cv2).chains[0].final.type == "cv2.error"


def test_the_closing_lines_start_after_a_headless_traceback_s_last_frame():
    # pasted from its first frame on: the traceback starts at a frame, and its source lines
    # (`use_best_model`) are not the run's closing words
    pasted = (
        'File "/srv/core.py", line 1456, in fit\n'
        "    self._fit(X, y, use_best_model, eval_set)\n"
        '  File "/srv/core.py", line 654, in _fit\n'
        "    self._train(X, params)\n"
        "pkg.TrainError: key not found\n"
        "Saving final model\n"
    )
    assert [line.text for line in parse_text(pasted).ending] == [
        "    self._train(X, params)",
        "pkg.TrainError: key not found",
        "Saving final model",
    ]


def test_python_s_last_line_for_a_raised_exception_is_read_with_or_without_its_raise():
    # `raise Exception("...")` ends in `Exception: ...`, the base class's name alone; pasted
    # under its `raise` or without it, a multi-line message's lines below it belong to it
    pasted = "    raise Exception(f'Sample {i} is empty')\nException: Sample 12 is empty\n"
    alone = "Exception: Reached maximum number of calls.\nThis means the loop returned nothing.\n"
    for text, message in (
        (pasted, "Sample 12 is empty"),
        (alone, "Reached maximum number of calls.\nThis means the loop returned nothing."),
    ):
        (chain,) = parse_text(text).chains
        assert (chain.final.type, chain.final.message) == ("Exception", message)
    # a word that merely starts so is no exception's name
    assert parse_text("Exceptional: results\n").chains == ()


@pytest.mark.parametrize(
    "tag",
    ["[rank{}]: ", "[default{}]:", "[1,{}]<stderr>:", "[1,mpirank:{},algo-1]<stderr>:"],
    ids=["torchrun", "torchrun-tee", "mpirun", "sagemaker-mpi"],
)
def test_rank_prefixes_keep_interleaved_tracebacks_apart(tag):
    text = "\n".join(
        [
            tag.format(1) + "Traceback (most recent call last):",
            tag.format(0) + "Traceback (most recent call last):",
            tag.format(1) + '  File "train.py", line 5, in <module>',
            tag.format(0) + '  File "train.py", line 7, in <module>',
            tag.format(1) + "ValueError: one",
            tag.format(0) + "TypeError: zero",
            "",
        ]
    )
    chains = {c.rank: c for c in parse_text(text).chains}
    assert chains[1].final.type == "ValueError" and chains[1].final.frames[0].line == 5
    assert chains[0].final.type == "TypeError" and chains[0].final.frames[0].line == 7


def test_child_failed_error_table():
    text = """\
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
train.py FAILED
------------------------------------------------------------
Failures:
  <NO_OTHER_FAILURES>
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2024-03-01_10:00:00
  host      : node1
  rank      : 3 (local_rank: 3)
  exitcode  : -9 (pid: 4242)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 4242
============================================================
"""
    facts = parse_text(text)
    (failure,) = facts.child_failures
    assert (failure.rank, failure.exitcode, failure.signal, failure.error_file) == (
        3,
        -9,
        "SIGKILL",
        None,
    )
    assert "SIGKILL" in facts.signals


def test_the_table_a_child_failed_error_holds_as_its_message_names_the_failed_ranks():
    # a real torchrun's traceback: the table is the exception's message, its `[N]:` lines in it
    text = """\
Traceback (most recent call last):
  File "/home/user/venv/bin/torchrun", line 8, in <module>
    sys.exit(main())
  File "/home/user/venv/lib/python3.11/site-packages/torch/distributed/launcher/api.py", \
line 383, in launch_agent
    raise ChildFailedError(
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
======================================================
ddp_train.py FAILED
------------------------------------------------------
Failures:
[1]:
  time      : 2026-12-06_11:04:28
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 31007)  (SIGTERM)
------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-06_11:03:50
  host      : localhost
  rank      : 1 (local_rank: 0)
  exitcode  : -9 (pid: 29449)  (SIGKILL)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 29449
======================================================
"""
    facts = parse_text(text + "srun: error: node01: task 0: Exited with exit code 1\n")
    failures = {f.rank: f for f in facts.child_failures}
    assert (failures[1].index, failures[1].signal, failures[1].pid) == (0, "SIGKILL", 29449)
    assert (failures[0].index, failures[0].signal) == (1, "SIGTERM")
    # the table's closing rule ends the message: the launcher's line after it is its own
    assert "srun" not in facts.chains[-1].final.message


def test_ansi_colours_are_removed():
    facts = parse_text(
        '\x1b[31mTraceback (most recent call last):\x1b[0m\n  File "a.py", line 1, in <module>\n'
        "\x1b[1;31mValueError\x1b[0m: bad\n"
    )
    assert facts.chains[0].final.type == "ValueError" and facts.chains[0].final.message == "bad"


def test_rich_boxed_traceback():
    text = """\
╭─────────────────────────────── Traceback (most recent call last) ────────────────────────────────╮
│ /home/u/proj/train.py:12 in main                                                                 │
│                                                                                                  │
│ ❱ 12 │   loss = model(x).sum()                                                                   │
│ /opt/venv/lib/python3.11/site-packages/torch/nn/modules/module.py:1511 in _call_impl             │
╰──────────────────────────────────────────────────────────────────────────────────────────────────╯
RuntimeError: mat1 and mat2 shapes cannot be multiplied (4x3 and 5x2)
"""
    exc = parse_text(text).chains[0].final
    assert exc.type == "RuntimeError" and exc.message.startswith("mat1 and mat2")
    frame = exc.deepest_user_frame()
    assert (frame.file, frame.line, frame.function, frame.code) == (
        "/home/u/proj/train.py",
        12,
        "main",
        "loss = model(x).sum()",
    )


def test_ipython_traceback():
    text = """\
---------------------------------------------------------------------------
RuntimeError                              Traceback (most recent call last)
Cell In[4], line 2
      1 x = torch.zeros(3)
----> 2 y = x.view(5)

RuntimeError: shape '[5]' is invalid for input of size 3
"""
    exc = parse_text(text).chains[0].final
    assert exc.type == "RuntimeError" and "invalid for input of size 3" in exc.message
    assert (
        exc.frames[0].file == "Cell In[4]"
        and exc.frames[0].code == "y = x.view(5)"
        and exc.frames[0].user
    )


def test_an_ipython_traceback_cut_before_its_last_line_keeps_the_type_its_head_named():
    # Colab links each file; the pasted output stops inside the second traceback
    text = """\
[/usr/lib/python3/dist-packages/torch/utils/data/fetch.py](https://localhost:8080/#) in next(self)
--> 630                 data = self._next_data()

KeyboardInterrupt

During handling of the above exception, another exception occurred:

AttributeError                            Traceback (most recent call last)
[<ipython-input-3-5d1c0e2b9a41>](https://localhost:8080/#) in <cell line: 12>()
     11 import sys
---> 12 trainer.fit(model)
"""
    (chain,) = parse_text(text).chains
    first, final = chain.exceptions
    assert (first.type, first.relation) == ("KeyboardInterrupt", "context")
    assert final.type == "AttributeError" and final.message == ""
    assert (
        final.frames[0].function == "<cell line: 12>"
        and final.frames[0].code == "trainer.fit(model)"
    )
    assert final.frames[0].user  # a notebook's cell is the user's own code


def test_an_ipython_traceback_pasted_from_its_first_frame_has_its_frames():
    # no `Traceback (most recent call last)` head: the paste starts at a library's frame
    text = """\
/usr/local/lib/python3.10/dist-packages/somelib/trainer.py in fit(self, model, epochs)
    120         for epoch in range(epochs):
--> 121             self.callback.on_epoch_begin(epoch)
    122

AttributeError: 'Callback' object has no attribute 'on_epoch_begin'
"""
    (chain,) = parse_text(text).chains
    (frame,) = chain.final.frames
    assert chain.final.type == "AttributeError"
    assert frame.file.endswith("somelib/trainer.py") and frame.function == "fit"
    assert frame.code == "self.callback.on_epoch_begin(epoch)" and not frame.user


def test_a_path_line_not_followed_by_source_opens_no_traceback():
    text = """\
/home/u/run/model.py in place
epoch 3 loss 0.41
ValueError: bad value
"""
    (chain,) = parse_text(text).chains
    assert chain.final.type == "ValueError" and chain.final.frames == ()


def test_vs_code_copies_a_notebook_error_as_json():
    text = """\
{
\t"name": "KeyError",
\t"message": "'image_path'",
\t"stack": "---------------------------------------------------------------------------
KeyError                                  Traceback (most recent call last)
Cell In[7], line 3
      1 ds = load_rows(csv)
----> 3 batch = ds[0]
"""
    exc = parse_text(text).chains[0].final
    assert (exc.type, exc.message) == ("KeyError", "'image_path'")
    assert exc.frames[0].code == "batch = ds[0]"


def test_an_error_level_taken_off_with_a_learned_prefix_still_makes_an_error_line():
    messages = [
        "loading the dataset",
        "12.3M parameters",
        "epoch=1 loss=0.52",
        "saving a checkpoint to /ckpt/1.pt",
        "{'epoch': 2, 'loss': 0.47}",
        "Could not open shard 17 of the dataset",
    ]
    levels = ["INFO"] * 5 + ["ERROR"]
    text = "".join(
        f"2024-05-01 10:00:0{n},123 {level:<8} [train.py:{40 + n}] {message}\n"
        for n, (level, message) in enumerate(zip(levels, messages, strict=True))
    )
    facts = parse_text(text)
    last = facts.ending[-1]
    assert last.text == "Could not open shard 17 of the dataset"  # the prefix was learned
    assert last.capture.level == "ERROR"
    assert facts.closing_error.final.type == "ERROR"
    # the same log with the error's level as INFO ends on no error
    assert parse_text(text.replace("ERROR   ", "INFO    ")).closing_error is None


def test_a_bracketed_error_tag_in_title_case_makes_an_error_line():
    # Omniverse's (Isaac Sim's) log: `[Info]`, `[Warning]`, `[Error]`, each record followed by the
    # line of the source file it came from
    records = [("Info", "[omni.kit] starting"), ("Warning", "[omni.physx] slow step")] * 2
    records.append(("Error", "[omni.physx.plugin] GPU kernel fail to launch!!"))
    text = "".join(
        f"2025-07-03 08:02:3{n} [{25 + n},844ms] [{level}] {message}\n, FILE /src/x.cpp, LINE 9\n"
        for n, (level, message) in enumerate(records)
    )
    closing = parse_text(text).closing_error
    assert closing is not None and "fail to launch" in closing.final.message
    assert parse_text(text.replace("[Error]", "[Info]")).closing_error is None


def test_r_reports_a_python_exception_indented_under_its_own_head():
    text = """\
Epoch 2/10
Error in py_call_impl(callable, call_args$unnamed, call_args$named) :
  ValueError: Shapes (None, 1) and (None, 10) are incompatible
"""
    exc = parse_text(text).chains[0].final
    assert (exc.type, exc.message) == (
        "ValueError",
        "Shapes (None, 1) and (None, 10) are incompatible",
    )
    # an indented line elsewhere is a message's own, not an exception
    assert not parse_text("Epoch 2/10\n  ValueError: x\n").chains
    # the head and the exception on one line; StopIteration is how a generator's end reaches R
    one_line = (
        "Error in py_call_impl(callable, dots$args, dots$keywords) : StopIteration: image file is "
        "truncated (49 bytes not processed)\n"
    )
    exc = parse_text(one_line).chains[0].final
    assert (exc.type, exc.message) == (
        "StopIteration",
        "image file is truncated (49 bytes not processed)",
    )
    assert parse_text("[2024-05-01 12:00:00] " + one_line).chains[0].final.type == "StopIteration"
    assert not parse_text("Error in fit : the loss went up\n").chains
    assert not parse_text("the notes say Error in fit : ValueError: x\n").chains


def test_lightgbm_s_command_line_tool_says_met_exceptions_then_the_error():
    text = "[LightGBM] [Info] Total Bins 255\nMet Exceptions:\nCould not open data/train.svm\n"
    error = parse_text(text).closing_error.final
    assert error.message == "Could not open data/train.svm"
    # the head's line alone is not the error: the log may end on it
    assert parse_text("[LightGBM] [Info] Total Bins 255\nMet Exceptions:\n").closing_error is None


def test_lua_s_interpreter_reports_its_error_above_a_stack_traceback():
    # Torch7 (OT001): `luajit: <message>`, then Lua's stack traceback, the log's last lines
    lua = "/home/user/torch/install/share/lua/5.1/nn"
    text = (
        f"/home/user/torch/install/bin/luajit: {lua}/THNN.lua:110: bad argument #3 to 'v' "
        "(cannot convert 'struct THCudaLongTensor *' to 'struct THCudaTensor *')\n"
        "stack traceback:\n"
        "\t[C]: in function 'v'\n"
        f"\t{lua}/THNN.lua:110: in function 'ClassNLLCriterion_updateOutput'\n"
        "\t...xx/torch/install/share/lua/5.1/nn/ClassNLLCriterion.lua:41: in function 'forward'\n"
        "\ttrain.lua:337: in main chunk\n"
        "\t[C]: in function 'dofile'\n"
        "\t...ser/torch/install/lib/luarocks/rocks/trepl/scm-1/bin/th:150: in main chunk\n"
        "\t[C]: at 0x00406670\n"
    )
    error = parse_text(text).closing_error.final
    assert error.message.startswith(f"{lua}/THNN.lua:110: bad argument #3 to 'v'")
    # a line that names a Lua file is no interpreter's error
    assert parse_text("loading model.lua: 3 layers\n").closing_error is None


def test_a_log_without_a_traceback_ends_on_its_programs_own_error_line():
    bad_alloc = "terminate called after throwing an instance of 'std::bad_alloc'"
    closing = {  # log: (the type it is read as, the line the message starts with)
        "epoch 1\nepoch 2\nFATAL: unable to open shard 17 of the dataset\n": ("FATAL", None),
        "step 10\nnvcc: fatal error: cannot find cuda.h\nBuild aborted\n": (
            "fatal error",
            "nvcc: fatal error: cannot find cuda.h",
        ),
        "loading\n[18:00:01] src/learner.cc:42: Check failed: n > 0\n": ("Check failed", None),
        f"step 3\n{bad_alloc}\n  what():  std::bad_alloc\nAborted\n": (
            "std::bad_alloc",
            "std::bad_alloc",
        ),
        "step 3\nINFO:root:Error reported to Coordinator: <class 'ValueError'>, bad row\n": (
            "ValueError",
            None,
        ),
        "compiling\n[3/5] c++ -c ops.cpp\nmake: build stopped: subcommand failed.\n": (
            "failure",
            None,
        ),
        # ... whose call goes on past the line
        "step 9\n     67         raise ValueError('Dimensions must match!'\n": (
            "ValueError",
            "Dimensions must match!",
        ),
        # ... and as macOS's libc++ prints it, on one line
        "Training\nlibc++abi: terminating due to uncaught exception of type std::runtime_error: "
        "[malloc_or_wait] Unable to allocate 12 bytes.\n": (
            "std::runtime_error",
            "[malloc_or_wait] Unable to allocate 12 bytes.",
        ),
        # a C++ exception as CatBoost prints it
        'fit\nuncaught exception:\n    address -> 0x1070\n    what() -> "options.cpp:39: bad"\n': (
            "uncaught exception",
            '"options.cpp:39: bad"',
        ),
        # the `raise` statement of a traceback pasted without its frames
        'step 9\n    raise ValueError("Sampling rate is expected to be 8kHz!")\n': (
            "ValueError",
            "Sampling rate is expected to be 8kHz!",
        ),
        # R's head, the message on the line below it
        'fitting\nError in lgb.call("LGBM_BoosterCreate_R", ret = handle) : \n  api error: bad\n': (
            "Error",
            "api error: bad",
        ),
        # ... and R's own error on its head's line, R's note on the warnings after it
        "fitting\nError in train.default(x, y, weights = w, ...) : Stopping\nIn addition: There "
        "were 26 warnings (use warnings() to see them)\n": ("Error", "Stopping"),
        # TensorFlow's report of several errors, and the graph nodes it lists under one (more
        # than the closing lines: they are the error's own)
        "".join(f"step {i}\n" for i in range(8))
        + "  (0) Invalid argument: bad shape\n"
        + "".join(f"\t [[{{{{node parser/Gather_{i}}}}}]]\n" for i in range(5)): (
            "InvalidArgumentError",
            "bad shape",
        ),
        # an `assert` statement, then the bare exception it raised: the statement says what failed
        "epoch 2\n    assert cfg.rate == cfg.loss_rate\nAssertionError\n": (
            "AssertionError",
            "assert cfg.rate == cfg.loss_rate",
        ),
        # a traceback pasted down to its `assert` statement, and no further
        'x\n  File "utils.py", line 136, in _check_head\n    assert len(a) == len(b), \\\n': (
            "AssertionError",
            "assert len(a) == len(b), \\",
        ),
        # a status line ends what the `raise` above it was waiting for: the error is the status
        "step 3\n    raise ValueError(msg)\n  (0) Invalid argument: bad shape\n": (
            "InvalidArgumentError",
            "bad shape",
        ),
        # absl's status, as XLA prints it
        "compiling\nRESOURCE_EXHAUSTED: Out of memory allocating 4.00G\n": (
            "ResourceExhaustedError",
            "Out of memory allocating 4.00G",
        ),
        # TensorFlow's Estimator records its loop's error, then says more lines than the closing
        # ones before it raises it again: those lines are the error's own, like its node lines
        "step 40\nERROR:tensorflow:Error recorded from training_loop: shard 7 is unreadable\n"
        "\t [[{{node IteratorGetNext}}]]\n"
        + (
            "INFO:tensorflow:training_loop marked as finished\n"
            "WARNING:tensorflow:Reraising captured error\n"
        )
        * 3: (
            "ERROR",
            "Error recorded from training_loop: shard 7 is unreadable",
        ),
    }
    for text, (kind, first) in closing.items():
        found = parse_text(text).closing_error
        assert found is not None and found.origin == "error-line", text
        assert found.final.type == kind, text
        said = first or text.strip().splitlines()[-1]
        assert found.final.message.splitlines()[0] == said, text
    # logging's `%(levelname)s - %(message)s`: the level, then a dash
    dashed = "epoch 1\n2024-05-01 10:00:07,123 - trainer - ERROR - Could not open shard 17\n"
    assert parse_text(dashed).closing_error.final.type == "ERROR"
    # words about errors that are not the program failing: a metric, advice, a count
    for text in (
        "epoch 9\nValidation Error: 0.0123\n",
        "If error occurs - run again with: --verbose\n",
        "epoch 3\n0 errors, 2 warnings\n",
        "Internal: the loop saves every epoch\n",  # a status name as prose: only after its `(N)`
        "epoch 2\nthe notes say Error in fit : the loss went up\n",  # R's head words in prose
        'Traceback (most recent call last):\n  File "t.py", line 1\nValueError: x\n'
        "Error: see above\n",  # a traceback explains the run: no second reading of its end
    ):
        assert parse_text(text).closing_error is None, text


def test_faulthandler_dump():
    text = """\
Fatal Python error: Segmentation fault

Current thread 0x00007f1e2a (most recent call first):
  File "/opt/venv/lib/python3.11/site-packages/ext/core.py", line 40 in crash
  File "/home/u/train.py", line 8 in step
  File "/home/u/train.py", line 20 in <module>
Segmentation fault (core dumped)
"""
    facts = parse_text(text)
    (fatal,) = facts.fatal_errors
    assert fatal.message == "Segmentation fault"
    assert [f.line for f in fatal.frames] == [20, 8, 40]  # outermost first
    assert "SIGSEGV" in facts.signals


def test_a_faulthandler_dump_alone_names_its_signal():
    # no shell line after it (a log cut there, a launcher that swallowed the shell's words)
    text = """Fatal Python error: Segmentation fault
Current thread (most recent call first):
  Garbage-collecting
  File ".../torch/utils/data/dataloader.py", line 732 in __next__
"""
    facts = parse_text(text)
    assert facts.signals == ("SIGSEGV",)
    assert facts.signal_lines() == (
        ("SIGSEGV", "Fatal Python error: Segmentation fault", "line 1"),
    )
    aborted = parse_text("Fatal Python error: Aborted\n\nThread 0x0001 (most recent call first):\n")
    assert aborted.signals == ("SIGABRT",)
    # faulthandler's other fatal errors are no signal
    assert (
        parse_text("Fatal Python error: init_fs_encoding: failed to get the Python codec\n").signals
        == ()
    )


def test_system_lines_give_exit_hints():
    facts = parse_text("Epoch 3/30\n 9728/54000 [====>...] - loss: 0.34Killed\n")
    assert facts.signals == ("SIGKILL",)
    facts = parse_text(
        "/var/spool/slurm_script: line 28:  8156 Killed                  python3 main.py\n"
    )
    assert facts.signals == ("SIGKILL",)
    facts = parse_text("worker exited with code 137\n")
    assert facts.exit_hints[0].code == 137 and facts.signals == ("SIGKILL",)
    assert parse_text("step 3 loss 0.1\nstep 4 loss 0.09\n").signals == ()
    # macOS's shells: strsignal(3)'s words with the signal's number
    assert parse_text("processed 5642208802 words\nKilled: 9\n").signals == ("SIGKILL",)
    assert parse_text("Abort trap: 6\n").signals == ("SIGABRT",)
    assert parse_text("Segmentation fault: 11 (core dumped)\n").signals == ("SIGSEGV",)


def test_trainwatch_report_in_a_log_is_skipped():
    text = (
        f'step 1\nTraceback (most recent call last):\n  File "a.py", line 1, in '
        f"<module>\nValueError: x\n\n"
        f"──────── {REPORT_BANNER} ────────\nRuntimeError: CUDA out of memory. Tried to allocate 1 "
        f"GiB\n"
    )
    facts = parse_text(text)
    assert facts.reports == ((6, None),)  # a report cut short: nothing after its start is read
    assert [c.final.type for c in facts.chains] == ["ValueError"]
    assert all("CUDA" not in line.text for line in facts.notable + facts.tail)


# A report the program printed itself (trainwatch.watch(), a framework callback), as rich writes
# it: a rule with the banner, the report's lines, a bare rule; the program's output goes on after.
IN_PROGRAM_REPORT = (
    f"{'─' * 30} {REPORT_BANNER} {'─' * 30}\n"
    "✗ oom/host · 96% sure\n"
    "Evidence\n"
    "  • MemoryError: Unable to allocate 4.00 PiB  (exception · probe pid 3651)\n"
    "  loss   ▄▂▃▁█  last 1.471\n"
    "  stopped at epoch 1/3, step 8/8\n"
    f"{'─' * 75}\n"
)


def test_a_report_in_the_middle_of_the_output_is_passed_over_and_reading_goes_on(monkeypatch):
    text = (
        "epoch 1/3 step 8/8 loss 1.4712\n"
        + IN_PROGRAM_REPORT
        + "epoch 2/3 step 1/8 loss nan\n"
        + 'Traceback (most recent call last):\n  File "train.py", line 14, in <module>\n'
        + "    out = head(h)\n"
        + "RuntimeError: mat1 and mat2 shapes cannot be multiplied (32x32 and 24x4)\n"
    )
    lines = text.splitlines()
    facts = parse_text(text)
    assert facts.reports == ((2, 8),)
    assert [c.final.type for c in facts.chains] == ["RuntimeError"]
    assert [line.text for line in facts.tail] == lines[:1] + lines[8:]
    assert all("MemoryError" not in line.text for line in facts.notable)
    fed = LogParser()
    for number, line in enumerate(lines, 1):
        fed.feed(logparse.LogLine(number, line, "stdout"))
    assert fed.finish().reports == facts.reports
    for size in (1, 7, 64):  # the closing rule in another chunk than the banner
        monkeypatch.setattr(logparse, "CHUNK_BYTES", size)
        assert LogParser().parse_stream(io.BytesIO(text.encode())) == facts, size


def test_trainwatch_s_own_github_annotation_after_its_report_is_passed_over(monkeypatch):
    # a CI job's `| tee job.log` holds the report and, after it, trainwatch's `::error` line,
    # whose quoted advice spoke of preemption (BU's real runs: `explain` read interrupted)
    from trainwatch.cli.reports.github import _property
    from trainwatch.diagnostics.verdict import ANNOTATION_TITLE

    title = _property(f"{ANNOTATION_TITLE}interrupted/sigterm (80% sure)")
    annotation = f"::error title={title}::Stopped by SIGTERM: a scheduler's preemption%0A"
    text = "epoch 1/3 step 8/8 loss 1.4712\n" + IN_PROGRAM_REPORT + annotation + "\n"
    facts = parse_text(text)
    assert facts.reports == ((2, 9),)
    assert [line.text for line in facts.tail] == ["epoch 1/3 step 8/8 loss 1.4712"]
    for size in (1, 64):
        monkeypatch.setattr(logparse, "CHUNK_BYTES", size)
        assert LogParser().parse_stream(io.BytesIO(text.encode())) == facts, size
    # the program's own annotation (a test reporter's) is the program's output
    theirs = parse_text("::error file=test_x.py,line=3::assert 0.41 > 0.9\n")
    assert theirs.reports == () and len(theirs.tail) == 1


def test_file_path_and_line_path_agree_and_tail_is_bounded():
    lines = [f"epoch 1 step {i} loss 0.{i % 97:02d}" for i in range(5000)]
    text = "\n".join(lines[:2500]) + "\n" + CHAINED + "\n".join(lines[2500:]) + "\nKilled\n"
    fed = parse_text(text)
    read = LogParser().parse_stream(io.BytesIO(text.encode()))
    assert read.lines == fed.lines == text.count("\n")
    assert (
        [c.final.message for c in read.chains]
        == [c.final.message for c in fed.chains]
        == ["bad sample 7"]
    )
    assert read.chains[0].line == fed.chains[0].line == 2501
    assert read.signals == fed.signals == ("SIGKILL",)
    assert len(read.tail) == TAIL_LINES and read.tail[-1].text == "Killed"
    assert [x.number for x in read.tail] == [x.number for x in fed.tail]


def test_gigantic_line_and_invalid_utf8_are_bounded():
    blob = b"x" * (5 << 20) + b"\xff\xfe\n" + b"ValueError: after the blob\n"
    facts = LogParser().parse_stream(io.BytesIO(blob))
    assert facts.lines == 2
    assert all(len(line.text) <= 8192 for line in facts.tail)
    assert facts.chains[0].final.message == "after the blob"


def test_user_frames():
    assert is_user_file("/home/u/proj/train.py") and is_user_file("train.py")
    assert is_user_file("/home/u/proj/bin/train.py")  # a script of one's own in a bin folder
    assert is_user_file("/tmp/train.py") and is_user_file("/tmp/x/my_model.py")  # one's own in /tmp
    for path in (
        "/opt/conda/lib/python3.9/site-packages/torch/nn/modules/module.py",
        "/usr/lib/python3/dist-packages/numpy/core.py",
        "/usr/lib/python3.11/runpy.py",
        "<frozen runpy>",
        # native frames, as a flight recorder or gdb prints them
        "torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "??",
        # a compiled extension's Cython source, as its traceback names it
        "gold.pyx",
        # a package's command-line entry point as pip writes it (Linux, Windows)
        "/opt/conda/bin/torchrun",
        "C:\\Users\\u\\venv\\Scripts\\accelerate.exe\\__main__.py",
        # code a package wrote to a temporary file and imported (PyG's propagate, torch.compile's)
        "/tmp/torch_geometric.nn.conv.sage_conv_SAGEConv_propagate_icrumdld.py",
        "/tmp/torchinductor_root/ab/cabcdef0123.py",
    ):
        assert not is_user_file(path), path


# ---- the chunk pre-filter ------------------------------------------------------------------------
def test_a_piece_of_a_word_is_not_a_candidate_but_the_word_is():
    # "arning" (of "Warning") sits inside "learning_rate": such lines must stay on the fast path.
    lines = ["{'loss': 0.31, 'learning_rate': 2.9e-05, 'epoch': 1.0}"] * 50
    lines += ["UserWarning: the learning rate scheduler was stepped before the optimizer"]
    lines += ["step 9 lr 0.001 warn", "Epoch 3:  50%|#####     | 5/10 [00:01<00:01, loss=0.2]"]
    seen: list = []
    facts = LogParser(on_candidate=seen.append).parse_stream(
        io.BytesIO(("\n".join(lines) + "\n").encode())
    )
    assert [line.number for line in seen] == [51]
    assert facts.lines == 53


WORDS = (
    "Warning",
    "Traceback",
    "Killed",
    "CUDA out of memory. Tried to allocate",
    "NaN",
    "\u256d",
    "OOM",
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.one_of(
                st.sampled_from(WORDS),
                st.sampled_from(WORDS).map(lambda w: w[1:]),
                st.sampled_from(WORDS).map(lambda w: w[:-1]),
                st.text("ab Wnr\u2500x", max_size=6),
            ),
            max_size=6,
        ).map("".join),
        max_size=30,
    )
)
def test_chunk_filter_finds_exactly_the_lines_holding_a_word(lines):
    filters = tuple((anchor, re.compile(p)) for anchor, p in anchor_patterns(WORDS))
    data = "\n".join(lines).encode()
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A]
    holding = {i for i, line in enumerate(lines) if any(w in line for w in WORDS)}
    # every anchor found by memchr alone, by its regex alone, and by both in turn
    for find_limit in (0, 2, 10_000):
        places = word_places(data, len(data), filters, find_limit)
        assert {bisect_right(starts, at) - 1 for at in places} == holding, find_limit


def test_no_word_of_the_pre_filter_is_in_an_ordinary_training_line():
    # explain reads a big log at C speed because the parser sees only the lines holding one of the
    # pre-filter's words (its keywords and the knowledge's required literals); a word found in
    # every progress or metrics line (a rate such as `it/s`, a `loss=`) would send it every line
    from trainwatch.diagnostics.knowledge import load_knowledge

    knowledge = load_knowledge(include_user=False)
    words = logparse.KEYWORDS + tuple(knowledge.anchors)
    ordinary = [
        "Epoch 3:  45%|####5     | 450/1000 [05:12<06:20,  1.45it/s, loss=0.2311, v_num=3]",
        " 12%|#2        | 120/1000 [00:31<03:48,  3.85s/it]",
        "2024-05-01 12:00:01,123 INFO trainer.py:412 step 1200 loss 2.50000 lr 0.000300 "
        "grad_norm 1.234 tokens/s 10342",
        "{'loss': 0.6132, 'grad_norm': 1.52, 'learning_rate': 2.9e-05, 'epoch': 0.42}",
        "100/100 [==============================] - 5s 50ms/step - loss: 0.3012 - accuracy: 0.91",
        "[99]\tvalidation_0-logloss:0.12338",
        "iter 4200: loss 2.8123, time 41.23ms, mfu 38.12%",
    ]
    held = [(line, w) for line in ordinary for w in words if w in line]
    assert held == []


def test_results_do_not_depend_on_the_chunk_size(monkeypatch):
    text = (
        "step 1 loss 0.5 learning_rate 0.1\n" * 40 + CHAINED + "\n[rank1]: Warning: slow\nKilled\n"
    ) * 3
    whole = LogParser().parse_stream(io.BytesIO(text.encode()))
    for size in (1, 7, 64, 1000):
        monkeypatch.setattr(logparse, "CHUNK_BYTES", size)
        seen: list = []
        facts = LogParser(on_candidate=seen.append).parse_stream(io.BytesIO(text.encode()))
        assert facts == whole, size
        assert [c.final.message for c in facts.chains] == ["bad sample 7"] * 3
        assert {line.text for line in seen} >= {"Killed", "[rank1]: Warning: slow"}


def test_an_exception_name_alone_takes_its_message_from_the_lines_below():
    # transformers and bitsandbytes print `ImportError:` / `RuntimeError:` on a line of its own
    text = (
        "ImportError:\n"
        "LlamaTokenizer requires the SentencePiece library but it was not found in your "
        "environment. Checkout the instructions on the\n"
        "\n"
        "Error:\n"
        "not an exception's name\n"
    )
    (chain,) = parse_text(text).chains
    assert chain.final.type == "ImportError"
    assert chain.final.message.startswith("LlamaTokenizer requires the SentencePiece library")


def test_a_traceback_pasted_up_to_its_raise_takes_the_exception_the_raise_names():
    # a paste that stops at the last frame: its `raise` statement names the exception
    text = """\
Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/torch/cuda/amp/grad_scaler.py", line 212, in _unscale_grads_
    raise ValueError("Attempting to unscale FP16 gradients.")
"""
    (chain,) = parse_text(text).chains
    assert (chain.final.type, chain.final.message) == (
        "ValueError",
        "Attempting to unscale FP16 gradients.",
    )
    assert chain.final.frames[-1].function == "_unscale_grads_"
    # a message built at run time is not guessed; a re-raise of a variable names nothing
    built = text.replace('"Attempting to unscale FP16 gradients."', 'f"bad {x}"')
    assert parse_text(built).chains[0].final.message == ""
    reraised = text.replace('ValueError("Attempting to unscale FP16 gradients.")', "exc")
    assert parse_text(reraised).chains == ()


def test_the_vs_code_debugger_s_exception_takes_its_message_from_the_line_below():
    text = "Exception has occurred: XlaRuntimeError\nINTERNAL: the library was not initialized\n"
    (chain,) = parse_text(text).chains
    assert chain.final.type == "XlaRuntimeError"
    assert chain.final.message == "INTERNAL: the library was not initialized"


def test_the_pycharm_debugger_s_line_under_an_exception_is_not_its_message():
    text = (
        "Traceback (most recent call last):\n"
        '  File "C:\\py\\lib\\multiprocessing\\reduction.py", line 60, in dump\n'
        "    ForkingPickler(file, protocol).dump(obj)\n"
        "TypeError: can't pickle generator objects\n"
        "python-BaseException\n"
        "Traceback (most recent call last):\n"
        '  File "C:\\py\\lib\\multiprocessing\\spawn.py", line 115, in _main\n'
        "    self = reduction.pickle.load(from_parent)\n"
        "EOFError: Ran out of input\n"
        "python-BaseException\n"
    )
    chains = parse_text(text).chains
    assert [(c.final.type, c.final.message) for c in chains] == [
        ("TypeError", "can't pickle generator objects"),
        ("EOFError", "Ran out of input"),
    ]


def test_an_exception_nothing_caught_is_read_after_the_runtime_s_own_words():
    # .NET's `Unhandled exception. ` and the JVM's `Exception in thread "main" ` before the class
    dotnet = (
        "Unhandled exception. System.InvalidOperationException: Sequence contains no elements\n"
    )
    java = 'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space\n'
    assert parse_text(dotnet).chains[0].final.type == "System.InvalidOperationException"
    assert parse_text(java).chains[0].final.message == "Java heap space"
    assert not parse_text("Unhandled exception. See the log above.\n").chains


def test_a_cpp_message_that_says_assert_is_the_cpp_exception_not_an_assert_statement():
    cpp = (
        "terminate called after throwing an instance of 'c10::Error'\n"
        "  what():  CUDA error: device-side assert triggered\n"
        "frame #0: c10::Error::Error(c10::SourceLocation, std::string const&) + 0x33\n"
    )
    error = parse_text(cpp).closing_error.final
    assert (error.type, error.message) == ("c10::Error", "CUDA error: device-side assert triggered")


def test_lines_blank_but_for_a_rank_tag_do_not_push_the_closing_error_out():
    # Hydra's report under torchrun --tee: its blank lines keep the tag, and are blank all the same
    closing = [
        "Error executing job with overrides: ['trainer.devices=2']",
        "Error in call to target 'model.Net':",
        "",
        "full_key: model",
        "",
        "",
        "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.",
    ]
    text = "".join(f"[default0]:{line}\n" for line in ["epoch 1 done"] * 5 + closing)
    facts = parse_text(text)
    assert "" not in {line.text.strip() for line in facts.ending}
    assert facts.closing_error.final.type == "Error"


def test_a_learned_prefix_with_figures_in_a_word_does_not_eat_a_message_s_first_word():
    # glog's `I0213` under a rank tag: learned as `[\w+]:\w+ `, it took `Floating` off the shell's
    # line, and the signal it names was lost
    glog = [
        "I0213 04:00:44.575316 17258 net.cpp:242] This network produces output softmax",
        "I0213 04:00:44.575346 17258 net.cpp:255] Network initialization done.",
        "I0213 04:00:44.575435 17258 solver.cpp:56] Solver scaffolding done.",
        "[416, 416]",  # the program's own print: the glog shape is no longer on most lines
        "I0213 04:00:44.581261 17258 solver.cpp:330] Iteration 0, Testing net (#0)",
        "Floating point exception (core dumped)",
    ]
    facts = parse_text("".join(f"[default0]:{line}\n" for line in glog))
    assert [hint.signal for hint in facts.exit_hints] == ["SIGFPE"]
    assert facts.ending[-1].text == "Floating point exception (core dumped)"


def test_a_signal_named_by_an_exception_s_message_is_how_a_process_ended():
    # a launcher's CalledProcessError is the only line that says its training process was killed
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "/usr/local/bin/accelerate", line 8, in <module>\n'
        "    sys.exit(main())\n"
        "subprocess.CalledProcessError: Command '['/usr/bin/python3', 'train.py']' died with "
        "<Signals.SIGKILL: 9>.\n"
    )
    facts = parse_text(traceback)
    assert facts.signals == ("SIGKILL",)
    ((signal, said, _),) = facts.signal_lines()
    assert said.startswith("subprocess.CalledProcessError: Command")
    assert (
        parse_text(traceback.replace("died with <Signals.SIGKILL: 9>", "returned 1")).signals == ()
    )
    # PaddlePaddle's own handler names the signal a few lines down its FatalError's message
    paddle = (
        "epoch 30/1000 loss 0.9786\n\n\n----------------------\nError Message Summary:\n"
        "----------------------\n"
        "FatalError: `Termination signal` is detected by the operating system.\n"
        '  [TimeInfo: *** Aborted at 1796636782 (unix time) try "date -d @1796636782" ***]\n'
        "  [SignalInfo: *** SIGTERM (@0x27b1) received by PID 10162 (TID 0x7f67a5bbeb80) from "
        "PID 10161 ***]\n"
    )
    assert parse_text(paddle).signals == ("SIGTERM",)


def test_a_traceback_copied_from_inside_its_first_frames_path_keeps_that_frame():
    # the selection began inside the first frame's path: `  File "/home/.../traine` left behind
    text = (
        'nerV2.py", line 431, in run_training\n'
        "    ret = super().run_training()\n"
        '  File "/usr/lib/python3/site-packages/nnunet/network_trainer.py", line 446, in run\n'
        "    l = self.run_iteration(self.tr_gen, True)\n"
        "AttributeError: 'NoneType' object has no attribute 'scale'\n"
    )
    (chain,) = parse_text(text).chains
    frames = chain.final.frames
    assert [(f.file, f.line, f.function) for f in frames][0] == ("nerV2.py", 431, "run_training")
    assert len(frames) == 2 and frames[0].code == "ret = super().run_training()"


def test_a_native_stack_trace_under_a_cpp_error_does_not_push_it_out_of_the_closing_lines():
    # Caffe's glog fatal line, then its 18-frame stack trace (corpus MK002): read as a silent hang
    symbols = ["(unknown)"] * 4 + [
        "caffe::db::LMDB::Open()",
        "caffe::DataLayer<>::DataLayerSetUp()",
        "caffe::BasePrefetchingDataLayer<>::LayerSetUp()",
        "caffe::Net<>::Init()",
        "caffe::Net<>::Net()",
        "caffe::Solver<>::InitTestNets()",
        "caffe::Solver<>::Init()",
        "caffe::Solver<>::Solver()",
        "caffe::GetSolver<>()",
        "train()",
        "main",
        "(unknown)",
    ]
    frames = [f"    @     0x7f906f{7 * i + 0xB6B:06x}  {s}" for i, s in enumerate(symbols)]
    glog = "\n".join(
        [
            "F0706 11:00:31.485407  8842 db_lmdb.hpp:13] Check failed: mdb_status == 0 (2 vs. 0) "
            "No such file or directory",
            "*** Check failure stack trace: ***",
            *frames,
            "    @              (nil)  (unknown)",
        ]
    )
    error = parse_text(glog + "\n").closing_error.final
    assert error.type == "Check failed" and "No such file" in error.message
    # the frames alone, under prose that is no error, still close on nothing
    assert parse_text("Training started\n" + "\n".join(frames) + "\n").closing_error is None


@pytest.mark.parametrize(
    "cut",
    [
        # inside the path, inside `line`, inside `in`, after `line N,`: wherever a width fell
        (
            '  File "/env/site-packages/mlagents/trainers/trainer_con',
            'troller.py", line 175, in _create',
        ),
        (
            '  File "/env/site-packages/mlagents/trainers/trainer_controller.py", li',
            "ne 175, in _create",
        ),
        (
            '  File "/env/site-packages/mlagents/trainers/trainer_controller.py", line 175, i',
            "n _create",
        ),
        (
            '  File "/env/site-packages/mlagents/trainers/trainer_controller.py", line 175, ',
            "in _create",
        ),
    ],
)
@pytest.mark.parametrize("head", ["Traceback (most recent call last):\n", ""])
def test_a_frame_line_wrapped_at_a_fixed_width_is_read_whole(cut, head):
    text = head + "\n".join([*cut, "    trainer = self.trainers[brain_name]", "KeyError: '3DBall'"])
    (chain,) = parse_text(text + "\n").all_chains
    (frame,) = chain.final.frames
    assert frame.file.endswith("trainer_controller.py") and frame.line == 175
    assert frame.function == "_create" and frame.code == "trainer = self.trainers[brain_name]"
    assert not frame.user  # site-packages: a library's frame, as unwrapped


def test_a_line_that_only_looks_like_a_cut_frame_does_not_swallow_the_error_below():
    facts = parse_text('File "/data/train/labels.csv\nFileNotFoundError: [Errno 2] No such file\n')
    assert facts.all_chains[-1].final.type == "FileNotFoundError"


def test_a_jvm_or_dotnet_stack_under_an_error_line_does_not_push_it_out_of_the_closing_lines():
    frames = [f"   at Microsoft.ML.Data.EstimatorChain`1.Fit{i}(IDataView input)" for i in range(8)]
    error = parse_text("\n".join(["ERROR: Schema mismatch for label column", *frames]) + "\n")
    assert "Schema mismatch" in error.closing_error.final.message
    spark = [f"\tat org.apache.spark.ml.Predictor.fit{i}(Predictor.scala:96)" for i in range(8)]
    error = parse_text("\n".join(["ERROR: label column must be numeric", *spark, "\t... 48 more"]))
    assert "must be numeric" in error.closing_error.final.message


def test_the_survivors_torchrun_stopped_itself_are_no_signal_the_run_ended_by():
    # torchrun sends SIGTERM to the ranks still running after one failed, then lists them under
    # Failures: that SIGTERM is its own cleanup, not a stop from outside (a scheduler, a person)
    table = (
        "W1206 04:50:24.165000 13823 torch/distributed/elastic/multiprocessing/api.py:1028] "
        "Sending process {closed} closing signal SIGTERM\n"
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n"
        "============================================================\n"
        "train.py FAILED\n"
        "------------------------------------------------------------\n"
        "Failures:\n"
        "[1]:\n"
        "  time      : 2026-12-06_04:50:24\n"
        "  host      : localhost\n"
        "  rank      : 0 (local_rank: 0)\n"
        "  exitcode  : -15 (pid: 13833)  (SIGTERM)\n"
        "  error_file: <N/A>\n"
        "  traceback : Signal 15 (SIGTERM) received by PID 13833\n"
        "------------------------------------------------------------\n"
        "Root Cause (first observed failure):\n"
        "[0]:\n"
        "  time      : 2026-12-06_04:50:24\n"
        "  host      : localhost\n"
        "  rank      : 1 (local_rank: 1)\n"
        "  exitcode  : 1 (pid: 13834)\n"
        "  error_file: <N/A>\n"
        "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html\n"
        "============================================================\n"
    )
    cleaned = parse_text(table.format(closed=13833))
    assert cleaned.closed_by_launcher == ((13833, "SIGTERM"),)
    assert "SIGTERM" not in cleaned.signals
    # a SIGTERM torchrun did not send (another process was closed): how that rank ended
    assert "SIGTERM" in parse_text(table.format(closed=13999)).signals


def test_a_traceback_python_ignored_at_shutdown_is_no_failure_unless_it_is_all_there_is():
    # a `__del__` that fails as the interpreter shuts down prints `Exception ignored in: ...` and
    # a traceback: it ended nothing, and its ImportError read as a version clash (62%) over the
    # program's own RuntimeError (forty-third session's real runs)
    from conftest import FIXTURE_LOGS

    log = parse_text((FIXTURE_LOGS / "shutdown_del_ignored_exception.log").read_text())
    assert [(c.final.type, c.final.message) for c in log.chains] == [
        ("RuntimeError", "validation score went down three times in a row")
    ]
    # alone, what it says is all the log has (a CUDA error in a cupy module's dealloc)
    alone = parse_text((FIXTURE_LOGS / "cupy_dealloc_ignored_cuda_error.log").read_text())
    assert [c.final.short_type for c in alone.chains] == ["CUDADriverError"]


def test_a_keras_or_tensorflow_message_in_paragraphs_is_read_past_its_blank_lines():
    # Keras 3 and TF set a message's cause apart by blank lines, under a first line that only
    # announces it (BR's real runs: the dtype error read as "Exception encountered when calling")
    keras = (
        'Traceback (most recent call last):\n  File "prog.py", line 9, in call\n'
        "    return x * self.w * pos\n"
        "TypeError: Exception encountered when calling PosScale.call().\n\n"
        "Could not automatically infer the output shape / dtype of 'pos_scale'.\n\n"
        "Input 'y' of 'Mul' Op has type int32 that does not match type float32 of argument 'x'.\n\n"
        "Arguments received by PosScale.call():\n  • args=(1,)\nepoch 2\n"
    )
    message = parse_text(keras).chains[-1].final.message
    assert message.startswith("Exception encountered when calling PosScale.call().")
    assert "Input 'y' of 'Mul' Op has type int32" in message and "Arguments" not in message
    graph = (
        'Traceback (most recent call last):\n  File "prog.py", line 18, in <module>\n'
        "    m.fit(ds, epochs=2, verbose=2)\n"
        "tensorflow.python.framework.errors_impl.InvalidArgumentError: Graph execution error:\n\n"
        "Detected at node IteratorGetNext defined at (most recent call last):\n"
        '  File "prog.py", line 18, in <module>\n\n'
        '  File "/venv/lib/python3.11/site-packages/keras/src/backend/tensorflow/trainer.py", '
        "line 399, in fit\n\n"
        "Field 1 in record is not a valid float: n/a\n"
        "\t [[{{node IteratorGetNext}}]] [Op:__inference_multi_step_on_iterator_812]\n"
        "next line of output\n"
    )
    message = parse_text(graph).chains[-1].final.message
    assert "Field 1 in record is not a valid float: n/a" in message
    assert "trainer.py" not in message and "next line" not in message
    # tf.function's `in user code:`: the user's frames, then the exception raised in them
    traced = (
        "ValueError: in user code:\n\n"
        '    File "/w/train.py", line 12, in train_step  *\n'
        "        state = [tf.Variable(v) for v in weights]\n\n"
        "    ValueError: tf.function only supports singleton tf.Variables created on the first "
        "call.\n"
    )
    message = parse_text(traced).chains[-1].final.message
    assert "ValueError: tf.function only supports singleton tf.Variables" in message
    # with no closing line, the rest of the output is read as output after a bounded message
    endless = (
        "tensorflow.python.framework.errors_impl.InvalidArgumentError: Graph execution error:\n\n"
        + "".join(f"step {i} loss 0.5\n" for i in range(40))
        + "RuntimeError: DataLoader worker (pid 4242) is killed by signal: Killed.\n"
    )
    read = parse_text(endless)
    assert len(read.chains[0].final.message.splitlines()) <= 24
    assert read.chains[-1].final.short_type == "RuntimeError", read.chains
    # any other message still ends at its first blank line
    plain = parse_text("ValueError: bad value\n\nepoch 3 loss 0.1\n").chains[-1].final.message
    assert plain == "bad value"
    # PaddlePaddle's layout: an empty message, its C++ traceback, then the error's summary
    cpp = (
        "matmul_ad_func(paddle::Tensor const&, paddle::Tensor const&, bool, bool)",
        "paddle::experimental::matmul(paddle::Tensor const&, paddle::Tensor const&, bool, bool)",
        "common::enforce::EnforceNotMet::EnforceNotMet(common::ErrorSummary const&, char const*)",
        "common::enforce::GetCurrentTraceBackString[abi:cxx11](bool)",
    )
    paddle = (
        'Traceback (most recent call last):\n  File "/w/train.py", line 16, in forward\n'
        "    return self.fc(x)\nValueError: \n\n--------------------------------------\n"
        "C++ Traceback (most recent call last):\n--------------------------------------\n"
        + "".join(f"{i}   {frame}\n" for i, frame in enumerate(cpp))
        + "\n----------------------\nError Message Summary:\n----------------------\n"
        "InvalidArgumentError: In operator matmul, the [1] dimension of Input(X) must be equal "
        "to the [0] dimension of Input(Y).\n  [operator < linear > error]\n\n\nnext output\n"
    )
    message = parse_text(paddle).chains[-1].final.message
    assert "InvalidArgumentError: In operator matmul" in message and "next output" not in message
    assert "paddle::experimental" not in message
    # an empty message and blank lines with no C++ traceback end as a blank line ends one
    empty = parse_text("ValueError: \n\nepoch 3 loss 0.1\nKeyError: 'x'\n").chains
    assert [c.final.short_type for c in empty] == ["ValueError", "KeyError"]
    assert empty[0].final.message == ""
