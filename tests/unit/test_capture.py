"""Capture formats: prefixes learned from the log itself, taken off for matching, kept for
citing."""

from __future__ import annotations

import functools
import io
import json
import sys

import pytest

from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.postmortem import explain_logs
from trainwatch.diagnostics.read import capture, collectors
from trainwatch.diagnostics.read.capture import CaptureReader, clean, looks_like_metadata
from trainwatch.diagnostics.read.logparse import LogParser, parse_text

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from captures import MORE_FORMATS, NAMES, rewrite

LOG = """\
Epoch 1/10
step 10 loss 2.3012
step 20 loss 2.1177
Traceback (most recent call last):
  File "/home/user/train.py", line 41, in <module>
    main()
  File "/home/user/train.py", line 37, in main
    loss = model(batch)
RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/home/user/train.py", line 43, in <module>
    save()
OSError: [Errno 28] No space left on device: '/ckpt/last.pt'
"""


@functools.cache
def _knowledge():
    return load_knowledge(include_user=False)


def _chains(text: str):
    return [
        [(e.type, e.message, e.relation) for e in c.exceptions] for c in parse_text(text).chains
    ]


@pytest.mark.parametrize("name", [*NAMES, *MORE_FORMATS])
def test_every_capture_format_gives_the_same_chains(name):
    assert _chains(rewrite(LOG, name)) == _chains(LOG)


def test_a_prefix_is_kept_for_citing():
    facts = parse_text(rewrite(LOG, "torchrun-rank"))
    assert facts.chains[0].rank == 0
    text = rewrite(
        "step 1\nstep 2\nstep 3\nstep 4\n"
        "RuntimeError: CUDA out of memory. Tried to allocate 2 GiB\n",
        "iso-timestamp",
    )
    facts = parse_text(text)
    assert facts.notable and facts.notable[0].text.startswith("RuntimeError")
    assert "(2024-05-01T00:00:04" in facts.notable[0].where
    assert "(2024-05-01T00:00:04" in facts.chains[0].where


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("crlf", "fixed-width-wrap")])
def test_a_prefix_over_a_long_prefix_is_learned_whole(name):
    # a collector's prefix over a job system's own (a task path, a pid, a run uuid): ~150 columns
    job = "2024-02-11 14:22:05.310 [42/train/9 (pid 5150)] [7f3e2a10-9c4b-4d2e-8a6f-0b1c2d3e4f50] "
    logged = "".join(job + line + "\n" for line in LOG.splitlines())
    assert _chains(rewrite(logged, name)) == _chains(LOG)


def test_an_indented_traceback_gives_no_word_to_the_prefix():
    # Most lines of a short faulthandler dump are indented frames: `<time>   File ` must not be
    # learned as `<time> <word> `, which would eat `Fatal` and `Current` from the other lines.
    dump = (
        "Fatal Python error: Segmentation fault\nCurrent thread (most recent call first):\n"
        + "".join(f'  File "/home/user/train.py", line {n} in step\n' for n in (3, 5, 8, 13))
    )
    facts = parse_text(rewrite(dump, "iso-timestamp"))
    assert facts.notable[0].text == "Fatal Python error: Segmentation fault"
    assert facts.signals == ("SIGSEGV",)


def test_ordinary_text_is_never_taken_for_a_prefix():
    reader = CaptureReader()
    lines = [f"Epoch {i}/10 loss 0.{i}" for i in range(1, 10)] + ["RuntimeError: Traceback (x)"]
    reader.prime(lines)
    assert reader.split("Epoch 3/10 loss 0.3") == ("Epoch 3/10 loss 0.3", None)
    assert not looks_like_metadata("RuntimeError: ")
    assert not looks_like_metadata("Caught ")
    assert not looks_like_metadata("{'loss': ")
    assert looks_like_metadata("(pid=4242) ") and looks_like_metadata("0: ")
    assert not looks_like_metadata("Epoch 3/3:  42%|")  # a tqdm bar's description
    # the same error repeated: its first words are shared, and are still the message's
    assert not looks_like_metadata("TypeError: get() ")
    repeated = "TypeError: get() got an unexpected keyword argument 'version'\n" * 3
    assert parse_text(repeated).chains[-1].final.message.startswith("get() got")


def test_a_training_loop_s_columns_are_never_a_prefix():
    # `|` columns look like a capture's, but `Epoch 0/1`, `Batch 100/500`, `Loss nan` are the
    # loop's own fields: taking them off would hide the loss
    lines = [f"Epoch 0/1 | Batch {n}/500 | Train Loss nan | Learning Rate 0.1" for n in range(9)]
    reader = CaptureReader()
    reader.prime(lines)
    assert reader.split(lines[3]) == (lines[3], None)
    assert not looks_like_metadata("Epoch 0/1 | Batch 0/500 | ")
    # the tutorials' `Epoch [1/8] Loss: 7.70`: the bracket holds the loop's count, not a tag
    bracketed = [f"Epoch [{n}/8] Loss: 7.7019" for n in range(1, 9)]
    reader = CaptureReader()
    reader.prime(bracketed)
    assert reader.split(bracketed[3]) == (bracketed[3], None)
    # a Trainer's dict of metrics under a timestamp: the time is the prefix, `{'loss': ` is not
    dicts = [f"2024-05-01T10:00:0{n}Z {{'loss': 5.{n}, 'epoch': 0.09}}" for n in range(9)]
    reader = CaptureReader()
    reader.prime(dicts)
    assert reader.split(dicts[2])[0] == "{'loss': 5.2, 'epoch': 0.09}"
    assert looks_like_metadata("trainer-1  | ")


def test_keras_epoch_lines_written_to_a_file_are_neither_a_prefix_nor_wrapped_lines():
    # Keras writes each epoch's bar once when its output is not a terminal: every other line, all
    # of one length, each followed by a shorter `Epoch N/M`
    bar = "1875/1875 [==============================] - 4s 2ms/step - loss: 0.2961 - accuracy: 0.91"
    lines = [line for n in range(1, 11) for line in (f"Epoch {n}/10", bar)]
    reader = CaptureReader()
    reader.prime(lines)
    assert reader.split(bar) == (bar, None)
    assert reader.wrap_width is None
    assert not looks_like_metadata("1875/1875 [==============================] - ")
    log = io.BytesIO(("\n".join(lines) + "\n").encode())
    progress = explain_logs(["-"], load_knowledge(include_user=False), stdin=log).evidence.progress
    assert progress.stopped_at == "epoch 10/10, batch 1875/1875" and progress.finished is True


def test_a_tqdm_frame_glued_to_the_traceback_after_it_is_no_prefix_of_the_frames_before_it():
    # Ctrl-C at a bar whose last frame repeats the position: Python's traceback head follows on the
    # frame's line; taken for a capture's prefix, every frame of that shape lost its position
    frame = "\r 20%|██        | 16/80 [00:{:02d}<00:06,  8.00it/s]"
    text = (
        "\r 10%|█         | 8/80 [00:01<00:08,  8.00it/s]\n"
        + frame.format(2)
        + "\n"
        + frame.format(19)
        + "Traceback (most recent call last):\n"
        '  File "train.py", line 34, in <module>\n'
        "    trainer.train()\n"
        "KeyboardInterrupt\n"
    )
    assert not looks_like_metadata(frame.format(19).lstrip("\r"))
    log = io.BytesIO(text.encode())
    progress = explain_logs(["-"], load_knowledge(include_user=False), stdin=log).evidence.progress
    assert progress.stopped_at == "batch 16/80"


def test_keras_verbose_2_lines_of_one_length_under_each_epoch_line_are_not_cut_lines():
    # `verbose=2` with validation metrics: every epoch's line of metrics is one length, the longest,
    # and each but the last is followed by the next `Epoch N/M`, a line the log opens with too
    lines = [
        line
        for n in range(1, 7)
        for line in (
            f"Epoch {n}/6",
            f"38/38 - 0s - 3ms/step - accuracy: 0.1{n} - loss: 2.{n} - val_accuracy: 0.1 - "
            "val_loss: 2.3",
        )
    ] + ["test accuracy: 0.15"]
    reader = CaptureReader()
    reader.prime(lines)
    assert reader.wrap_width is None
    log = io.BytesIO(("\n".join(lines) + "\n").encode())
    progress = explain_logs(["-"], load_knowledge(include_user=False), stdin=log).evidence.progress
    assert progress.stopped_at == "epoch 6/6, batch 38/38" and progress.finished is True


def test_torch_s_rank_tag_with_its_colon_after_a_program_s_own_rank_tag_is_one_prefix():
    # the program prints `[rank0] step 3/8` (the tag learnt as the capture's), torch's own lines
    # say `[rank1]: Traceback ...`: the colon goes with the tag, and the traceback is rank 1's
    steps = [f"[rank{r}] step {i}/8 loss 0.{i:02d}" for i in range(8) for r in (0, 1)]
    frames = [
        f'[rank1]:   File "/env/site-packages/PIL/ImageFile.py", line {n}, in _open\n'
        "[rank1]:     self._open()"
        for n in range(100, 112)
    ]
    traceback = [
        "[rank1]: Traceback (most recent call last):",
        '[rank1]:   File "/srv/train.py", line 27, in <module>',
        "[rank1]:     x = load(f)",
        *frames,
        "[rank1]: OSError: Truncated File Read",
    ]
    launcher = [f"launcher line {n}" for n in range(40)]  # torchrun's table and its traceback
    chains = parse_text("\n".join(steps + traceback + launcher) + "\n").chains
    assert [(c.rank, c.final.type, c.final.message) for c in chains] == [
        (1, "OSError", "Truncated File Read")
    ]


def test_a_log_indented_or_quoted_as_a_whole_is_read_as_written():
    # pasted into a Markdown list, a code block or a quote: the indentation or the `> ` every line
    # carries is taken off, a traceback's own indentation is kept
    for name in ("indented", "tab-indented", "markdown-quote"):
        assert _chains(rewrite(LOG, name)) == _chains(LOG), name
    reader = CaptureReader()
    reader.prime(["    step 1", "      detail", "step 2", "    step 3"])  # one line at the margin
    assert reader.split("    step 3") == ("    step 3", None)


def test_interleaved_workers_keep_their_tracebacks_apart():
    text = (
        "(pid=11) Traceback (most recent call last):\n"
        "(pid=22) Traceback (most recent call last):\n"
        '(pid=11)   File "a.py", line 1, in <module>\n'
        '(pid=22)   File "b.py", line 2, in <module>\n'
        "(pid=11) ValueError: first\n"
        "(pid=22) KeyError: 'second'\n"
    )
    chains = parse_text(text).chains
    assert sorted((c.final.type, c.final.frames[0].file) for c in chains) == [
        ("KeyError", "b.py"),
        ("ValueError", "a.py"),
    ]


def test_clean_takes_off_colour_crlf_and_redrawn_fragments():
    assert clean("\x1b[31mError\x1b[0m\r") == "Error"
    assert clean(" 50%|#####     |\r100%|##########|\rTraceback (most recent call last):") == (
        "Traceback (most recent call last):"
    )
    # a forum's typographic quotes become the ones Python printed; other characters stay
    pasted = "AttributeError: \u2018Bar\u2019 object has no attribute \u201cout\u201d \u2588"
    assert clean(pasted) == "AttributeError: 'Bar' object has no attribute \"out\" \u2588"
    # a page's indentation as no-break spaces is indentation; one inside the line stays
    assert (
        clean('\u00a0\u00a0File "t.py", line 3, in f\u00a0x')
        == '  File "t.py", line 3, in f\u00a0x'
    )


@pytest.mark.parametrize(
    "pasted",
    [
        "`ValueError: too many values to unpack (expected 2)`",
        "**ValueError: too many values to unpack (expected 2)**",
        "`ValueError: too many values to unpack (expected 2)",  # inline code over several lines
        "ValueError: too many values to unpack (expected 2)`",  # and its last line
    ],
)
def test_a_line_pasted_in_markdown_marks_is_read_without_them(pasted):
    (chain,) = parse_text(f"Epoch 1/3\n{pasted}\n").chains
    assert (chain.final.type, chain.final.message) == (
        "ValueError",
        "too many values to unpack (expected 2)",
    )


@pytest.mark.parametrize("mark", ["`", "**"])
def test_markdown_marks_after_a_capture_prefix_stay_with_the_error(mark):
    # one line, so no prefix is learnt from repetition: the error's own start finds it, and the
    # mark that opens the pasted error is the error's, not the prefix's
    line = (
        f"2024-05-01T12:00:03.118Z {mark}ValueError: too many values to unpack (expected 2){mark}"
    )
    (chain,) = parse_text(line + "\n").chains
    assert (chain.final.type, chain.final.message) == (
        "ValueError",
        "too many values to unpack (expected 2)",
    )


def test_bold_marks_come_off_a_line_that_quotes_c_style():
    # glibc's assert quotes its expression `like this', an odd count of backticks: the line's
    # closing `**` is what says the marks wrap it
    line = (
        "darknet: ./src/parser.c:351: parse_region: Assertion `l.outputs == params.inputs' failed."
    )
    assert capture.unmarked(f"**{line}**") == line


@pytest.mark.parametrize(
    "line",
    [
        "`np.inf` is the name to use now",
        "```python",
        "** Epoch 3 **",
        "- `--lr` 0.1",
        "use `--lr`",
        "```",
    ],
)
def test_markdown_marks_inside_a_line_stay(line):
    assert capture.unmarked(line) == line


def test_a_pod_and_container_name_on_every_line_is_a_prefix():
    # stern: two bare names, told apart from a message's first words by being the same on nearly
    # every line, and by the generated pod name first
    log = [
        "Epoch 1/3",
        "step 10 loss 0.52",
        "Traceback (most recent call last):",
        '  File "train.py", line 9, in <module>',
        "    loss = model(x)",
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (4x8 and 16x2)",
    ]
    facts = parse_text("".join(f"train-job-7f9c4-0 trainer {line}\n" for line in log))
    (chain,) = facts.chains
    assert chain.final.type == "RuntimeError" and chain.final.frames[0].file == "train.py"
    # the same two words on every line, but no generated pod name: a message's own words
    plain = parse_text("".join(f"Epoch done {i}: loss 0.5\n" for i in range(8)))
    assert all(line.text.startswith("Epoch done") for line in plain.ending)
    # a log of three lines: the names on every one of them
    reader = CaptureReader()
    reader.prime([f"train-job-7f9c4-0 trainer {line}" for line in log[3:]])
    assert reader.split(f"train-job-7f9c4-0 trainer {log[-1]}")[0] == log[-1]


@pytest.mark.parametrize("name", [*NAMES, *MORE_FORMATS])
def test_every_capture_format_gives_the_same_chains_read_as_a_saved_log(name):
    # read in chunks, where a pre-filter picks the lines worth parsing (typographic quotes once
    # hid every frame's `File "` from it)
    def chains(text: str):
        facts = LogParser(_knowledge()).parse_stream(io.BytesIO(text.encode()))
        return [[(e.type, e.message, len(e.frames)) for e in c.exceptions] for c in facts.chains]

    # and pasted from its first frame, without the head that opens a traceback for every line
    headless = LOG.split("Traceback (most recent call last):\n", 1)[1]
    for text in (LOG, headless):
        assert chains(rewrite(text, name)) == chains(text)


@pytest.mark.parametrize("name", ["folded-tracebacks", "escaped-tracebacks", "rsyslog-tracebacks"])
def test_tracebacks_on_one_line_give_the_same_chains(name):
    assert _chains(rewrite(LOG, name)) == _chains(LOG)


def test_a_copy_numbers_every_line_and_a_program_s_own_numbers_are_not_its():
    numbered = capture._line_numbers(["     7\tstep 1", "     8\t", "     9\tTraceback"])
    assert numbered is not None and numbered.match("    10\t  File").end() == 7
    # grep -n: `:` on a matching line, `-` on its context, `--` between groups
    grep = ["12:Error", "13-  File", "14-    x()", "15-KeyError", "--", "40:Error", "41-  File"]
    assert capture._line_numbers([*grep, "42-    x()", "43-KeyError"])
    # a program's own: a line without a number among them, or numbers that climb by more than one
    assert capture._line_numbers(["starting", "1: loss 0.5", "2: loss 0.4", "3: loss 0.3"]) is None
    assert capture._line_numbers(["10:  loss 0.5", "20:  loss 0.4", "30:  loss 0.3"]) is None


def test_a_unix_time_alone_is_a_prefix_and_a_counter_is_not():
    timed = parse_text("".join(f"{1714557600 + i}.250000 step {i} loss 0.5\n" for i in range(6)))
    assert all(line.text.startswith("step ") for line in timed.ending)
    counted = parse_text("".join(f"{1000000 + i} samples seen, loss 0.5\n" for i in range(6)))
    assert all(line.text[0].isdigit() for line in counted.ending)


def test_a_step_that_starts_every_line_is_the_message_s_not_a_task_s_label():
    steps = parse_text("".join(f"{10 * i}: nan    nan\n" for i in range(6)))
    assert [line.text for line in steps.ending][:2] == ["0: nan    nan", "10: nan    nan"]
    # srun --label: the task's number repeats on every line it writes
    labelled = parse_text("".join(f"{i % 2}: step {i} loss 0.5\n" for i in range(6)))
    assert all(line.text.startswith("step ") for line in labelled.ending)
    whole_seconds = parse_text("".join(f"{1714557600 + i} step {i} loss 0.5\n" for i in range(6)))
    assert all(line.text.startswith("step ") for line in whole_seconds.ending)


def test_fixed_width_wrapping_is_learned_from_the_rests_of_cut_lines():
    lines = [
        f"step {i}: RuntimeError: " + " ".join(f"word{j}" for j in range(12 + i)) for i in range(9)
    ]
    wrapped = [piece for line in lines for piece in (line[:80], line[80:])]
    reader = CaptureReader()
    reader.prime(wrapped)
    assert reader.wrap_width == 80
    # records of one format, the longest followed by one a character shorter: not a page's wrapping
    records = [
        f"2024-05-01 12:00:{s:02d},123 INFO trainer.py:412 step {s} loss 2.5 tokens/s "
        f"{9000 + 997 * s % 3000}"
        for s in range(10, 60)
    ]
    reader = CaptureReader()
    reader.prime(records)
    assert reader.wrap_width is None


def test_a_kaggle_log_file_is_read_as_the_text_its_records_hold():
    # Kaggle writes a JSON array, one record a line, the text in `data`
    records = [
        ("stdout", "Epoch 1/3\n"),
        ("stderr", "Traceback (most recent call last):\n"),
        ("stderr", '  File "/kaggle/working/train.py", line 12, in <module>\n'),
        ("stderr", "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\n"),
    ]
    lines = [
        json.dumps({"stream_name": stream, "time": 1.5 + n, "data": data})
        for n, (stream, data) in enumerate(records)
    ]
    text = "[" + "\n,".join(lines) + "]\n"
    for facts in (parse_text(text), LogParser().parse_stream(io.BytesIO(text.encode()))):
        (chain,) = facts.chains
        assert chain.final.type == "RuntimeError" and chain.final.frames[0].line == 12
    # a log that only prints a JSON line or two is read as it stands
    plain = 'Epoch 1/3\n{"message": "checkpoint saved", "step": 100}\nValueError: bad row 7\n'
    assert collectors.json_text_key(plain.splitlines()) is None
    assert parse_text(plain).chains[0].final.message == "bad row 7"


def test_a_log_explorer_s_csv_download_is_read_as_the_words_of_its_message_column():
    import csv

    log = [
        "message",  # a line of the program's that reads like the header's column: kept
        "epoch 3, step 120: loss=0.41",
        "Traceback (most recent call last):",
        '  File "/home/user/train.py", line 12, in <module>',
        '    batch = next(it)  # "prefetch", 2 workers',
        "RuntimeError: DataLoader worker (pid 4242) is killed by signal: Killed.",
    ]
    out = io.StringIO()
    rows = csv.writer(out, lineterminator="\n")
    rows.writerow(["@timestamp", "@message"])
    rows.writerows([f"2024-05-01 10:00:0{n}.000", line] for n, line in enumerate(log))
    download = out.getvalue()
    assert '""prefetch""' in download  # the quotes doubled, the commas inside quotes
    for facts in (parse_text(download), LogParser().parse_stream(io.BytesIO(download.encode()))):
        (chain,) = facts.chains
        assert chain.final.type == "RuntimeError" and chain.final.frames[0].line == 12
        assert chain.line == 4  # the header is line 1, read as an empty line
        assert facts.tail[1].text == "message"
    # newest first, as Logs Insights sorts it by default: the header stays first
    lines = download.splitlines()
    turned = "\n".join([lines[0], *lines[:0:-1]]) + "\n"
    diagnosis = explain_logs(
        ["-"], load_knowledge(include_user=False), stdin=io.BytesIO(turned.encode())
    )
    assert diagnosis.verdict.category == "oom"
    # a program that prints a table of its metrics as CSV is not a download: no words column
    metrics = "epoch,loss,accuracy\n1,0.9,0.51\n2,0.7,0.63\n3,0.6,0.70\n"
    assert collectors.collected(metrics.splitlines()) is None
    assert parse_text(metrics).tail[0].text == "epoch,loss,accuracy"


def test_a_short_log_s_first_lines_are_sampled_once():
    # primed with its first lines, a short log fed line by line sampled them again: its `INFO:`
    # lines, and a `D:` path, counted twice made `\w+:` a capture prefix, and the exception line
    # lost its type to it (a corpus log, read through a CSV download or the wrapped re-reading)
    facts = parse_text((ROOT / "corpus" / "logs" / "ER009.log").read_text())
    (chain,) = facts.chains
    assert chain.final.type == "AttributeError"


def test_a_json_formatter_s_traceback_field_is_read_after_its_message():
    tb = (
        "Traceback (most recent call last):\n"
        '  File "train.py", line 8, in <module>\n'
        "KeyError: 'label'"
    )
    lines = [
        json.dumps({"levelname": "INFO", "message": "epoch 1 done"}),
        json.dumps({"levelname": "ERROR", "message": "training failed", "exc_info": tb}),
    ]
    (chain,) = parse_text("\n".join(lines) + "\n").chains
    assert (chain.final.type, chain.final.message) == ("KeyError", "'label'")
    # Elastic's schema (ecs-logging): the frames alone in `error.stack_trace`, the type and the
    # message beside them, nested or in dotted keys
    frames = '  File "train.py", line 8, in <module>\n    y = row["label"]\n'
    error = {"type": "KeyError", "message": "'label'", "stack_trace": frames}
    dotted = {f"error.{k}": v for k, v in error.items()}
    for record in ({"error": error}, dotted):
        ecs = json.dumps({"log.level": "error", "message": "training failed", **record})
        (chain,) = parse_text("\n".join([lines[0], lines[0], ecs]) + "\n").chains
        assert (chain.final.type, chain.final.message) == ("KeyError", "'label'")
        assert [f.code for f in chain.final.frames] == ['y = row["label"]']


@pytest.mark.parametrize("lines", [8, 12, 20])
def test_messages_that_start_alike_keep_their_first_words(lines):
    # Every progress line's message starts `Epoch N loss`: a prefix shape that ran on into those
    # words would be shared by nearly every line, and would eat `Traceback` from the traceback's
    # head.
    progress = [
        f"2024-05-01 10:00:{n:02d},123 INFO train: Epoch {n} loss 0.{50 - n}" for n in range(lines)
    ]
    tb = [
        "Traceback (most recent call last):",
        '  File "train.py", line 9, in <module>',
        "    loss.backward()",
        "RuntimeError: CUDA out of memory. Tried to allocate 2 GiB",
    ]
    text = "\n".join(progress + [f"2024-05-01 10:00:30,123 ERROR train: {t}" for t in tb]) + "\n"
    facts = parse_text(text)
    (chain,) = facts.chains
    assert chain.final.type == "RuntimeError" and chain.final.frames[0].line == 9
    assert facts.tail[0].text.endswith("Epoch 0 loss 0.50")
    parser = LogParser()
    parser.feed_text(text)
    assert parser.normalize(facts.tail[0]).text == "Epoch 0 loss 0.50"
    # a capture's own words after its last tag stay a prefix: a level, a stream, a flag
    assert not capture.runs_into_message("2024-05-01T10:00:00.123456789Z stderr F ")
    assert not capture.runs_into_message("2024-05-01 10:00:00,000 - trainer - INFO - ")
    assert capture.runs_into_message("2024-05-01 10:00:03,123 INFO train: Epoch ")


def test_lines_of_metrics_keep_their_names():
    # Evaluation lines share their shape up to the value: a prefix learned from them would take the
    # metric's name off its value (LightGBM's, as a user posted them), while a logger's own prefix
    # before a training loop's fields is still learned (PaddlePaddle's).
    lightgbm = [f"[{i}]     valid_0's l1: {v}" for i, v in enumerate(["inf"] + ["nan"] * 5, 1)]
    reader = CaptureReader()
    reader.prime(lightgbm)
    assert all("l1: " in reader.split(line)[0] for line in lightgbm)
    # a name that carries its step as an index: neither the part up to `]` nor `]: ` is a tag
    indexed = [f"train_loss[ {n} ]:  {v}" for n, v in ((10, 1.57), (20, 2.03), (30, "nan"))]
    reader = CaptureReader()
    reader.prime(indexed)
    assert [reader.split(line)[0] for line in indexed] == indexed
    paddle = [
        f"2022-12-08 17:57:{32 + i}.672-INFO: Total iter: {n}, epoch: 0, batch: {n}, loss: [nan]"
        for i, n in enumerate((10, 20, 30, 40, 50))
    ]
    reader = CaptureReader()
    reader.prime(paddle)
    message, found = reader.split(paddle[-1])
    assert message.startswith("Total iter: 50") and found is not None
    # a notebook's listing under a logger's name: its line numbers are not the name's values
    listing = ["Traceback (most recent call last)", "Cell In[8], line 5"]
    listing += [f"      {n} x = f({n})" for n in range(1, 6)] + [
        "----> 6 fit(x)",
        "ValueError: bad",
    ]
    driver = [f"24/05/01 10:00:{i:02d} INFO Driver: {line}" for i, line in enumerate(listing)]
    reader = CaptureReader()
    reader.prime(driver)
    assert [reader.split(line)[0] for line in driver] == listing


def test_a_level_padded_to_its_column_is_the_capture_s_and_indentation_after_it_the_message_s():
    # rich's handler and `%(levelname)-8s` pad the level to eight characters: the padding was left
    # on every message as indentation (`    Epoch 1`), and hid a notebook's error from the reader
    lines = ["Epoch 1/10", '  File "/home/user/train.py", line 41, in <module>', "ValueError: bad"]
    levels = ["INFO", "WARNING", "ERROR"]
    text = "".join(
        f"[05/01/24 10:00:0{n}] {level:<8} {line}\n"
        for n, (level, line) in enumerate(zip(levels * 2, lines * 2, strict=True))
    )
    reader = CaptureReader()
    reader.prime(text.splitlines())
    assert [reader.split(line)[0] for line in text.splitlines()] == lines * 2


def test_a_screen_s_padding_after_each_line_is_no_part_of_it():
    # GNU screen's hardcopy pads every line to the terminal's width: `KeyboardInterrupt` and a
    # bare exception name were no longer lines of their own
    interrupted = (
        "Traceback (most recent call last):\n"
        '  File "/home/user/train.py", line 314, in <module>\n'
        "    batch = next(loader)\n"
        "KeyboardInterrupt\n"
    )
    padded = "".join(line.ljust(120) + "\n" for line in interrupted.splitlines())
    (chain,) = parse_text(padded).chains
    assert chain.final.type == "KeyboardInterrupt"
    assert clean("Epoch 1 " + " " * 40) == "Epoch 1" and clean("cut at a word ") == "cut at a word "


def test_a_level_learnt_in_a_prefix_never_takes_an_exception_s_name():
    # Python logging's default `LEVEL:logger:` on every line, then the exception the log ends on
    lines = [
        "WARNING:root:Loading failed (id=2); Retry 0 with exception: Cannot sample 8 frames",
        "WARNING:root:Loading failed (id=1); Retry 1 with exception: Cannot sample 8 frames",
        "WARNING:root:Loading failed (id=0); Retry 2 with exception: Cannot sample 8 frames",
        "",
        "UnboundLocalError: cannot access local variable 'frames' where it is not associated",
    ]
    reader = CaptureReader()
    reader.prime(lines)
    assert reader.split(clean(lines[0]))[0].startswith("root:Loading failed")
    assert reader.split(clean(lines[-1]))[0] == lines[-1]


def test_a_log_of_a_few_lines_learns_the_prefix_every_line_has():
    # an error under a start-up line, each behind an uptime counter: a shape that every line
    # starts with is the capture's (four lines had been needed before any was learnt)
    lines = ["[    3.137000] Train Epoch 6:  81%", "[    3.274000] ERROR: InterruptException:"]
    reader = CaptureReader()
    reader.prime(lines)
    message, found = reader.split(lines[1])
    assert message == "ERROR: InterruptException:" and found.prefix == "[    3.274000] "
    reader = CaptureReader()
    reader.prime(lines[:1])  # one line alone says nothing of a capture
    assert reader.split(lines[0]) == (lines[0], None)


def test_start_up_words_a_few_lines_shared_still_say_start_up():
    # two alike lines share their words too: read whole, the last one still says start-up
    from trainwatch.diagnostics.knowledge import load_knowledge
    from trainwatch.diagnostics.postmortem import explain_logs

    text = "| distributed init (rank 0): env://\n| distributed init (rank 1): env://\n"
    verdict = explain_logs(
        ["-"], load_knowledge(include_user=False), stdin=io.BytesIO(text.encode())
    ).verdict
    assert verdict.subtype == "hang/at-start"


def test_a_level_column_after_a_learnt_time_is_the_prefix_s_where_an_error_follows():
    # rich's handler over a few lines: the level padded to its column, one message empty (its
    # line trimmed to `INFO`), so the time alone is what every line shares; the error's line
    # shows the whole prefix, and the error is read without `INFO` before it
    text = (
        "[05/01/24 10:00:00] INFO     ValueError: You can't train a model that has been loaded "
        "in 8-bit precision on multiple devices\n"
        "[05/01/24 10:00:01] INFO     \n"
        "[05/01/24 10:00:02] INFO     Loading the model\n"
    )
    facts = parse_text(text)
    assert [(e.type, e.message[:20]) for c in facts.chains for e in c.exceptions] == [
        ("ValueError", "You can't train a mo")
    ]


def test_pytest_s_fail_marks_come_off_an_exception_and_the_lines_after_it():
    """pytest writes a failed test's exception with `E   ` before each line; a traceback caught in
    a test's output reads as one. spaCy's `E    #` table head, with no exception, keeps its E."""
    marked = (
        "E   Traceback (most recent call last):\n"
        'E     File "/venv/lib/python3.11/site-packages/pkg/reader.py", line 9, in read\n'
        "E       meta = piece.get_metadata(fs.open)\n"
        "E   TypeError: get_metadata() takes 1 positional argument but 2 were given\n"
    )
    (chain,) = parse_text(marked).chains
    (error,) = chain.exceptions
    assert error.type == "TypeError" and error.message.startswith("get_metadata() takes 1")
    assert [f.function for f in error.frames] == ["read"]
    table = "E    #       LOSS TOK2VEC  LOSS TAGGER  SCORE\n---  ------  ------------  -----\n"
    reader = CaptureReader()
    assert [reader.split(line) for line in table.splitlines()][0] == (table.splitlines()[0], None)
    # the reading that learns nothing (a log's last lines, read again for its progress) agrees
    reader = CaptureReader()
    assert reader.match("E   x = 1") is None
    reader.split("E   Traceback (most recent call last):")
    message, capture = reader.match('E     File "a.py", line 1, in <module>')
    assert message == '  File "a.py", line 1, in <module>' and capture.prefix == "E   "


def test_an_os_error_printed_bare_shows_the_prefix_before_it():
    # `print(e)` of an OSError behind a logging format: one line is enough
    for message in ("[Errno 2] No such file or directory: './train_data/train_rec_gt.txt'",):
        line = f"2024-05-01 00:00:00,000 - trainer - INFO - {message}"
        reader = CaptureReader()
        reader.prime([line])
        assert reader.split(line)[0] == message
    # the same words ending a message that quotes a path: the quoted text is no capture's
    line = (
        "[1,0]<stderr>:python: can't open file '/var/mnist.py': [Errno 2] No such file or directory"
    )
    reader = CaptureReader()
    reader.prime([line])
    assert reader.split(line)[0].endswith(
        "python: can't open file '/var/mnist.py': [Errno 2] No such file or directory"
    )
