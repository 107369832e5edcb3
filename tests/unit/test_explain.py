"""`trainwatch explain` in-process: any bytes on stdin give a verdict or one usage error, never a
crash (the command as a user runs it is in the integration tests)."""

from __future__ import annotations

import codecs
import io
import json
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tqdm import tqdm

from trainwatch.diagnostics.errors import UsageError
from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.postmortem import _cut_width, explain_logs, open_log
from trainwatch.diagnostics.read.logparse import LogParser
from trainwatch.diagnostics.verdict import CATEGORIES

from conftest import FIXTURE_LOGS, ROOT

KNOWLEDGE = load_knowledge(include_user=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000) | st.text(max_size=2000).map(str.encode))
def test_garbage_never_crashes(data):
    # binary data is one usage error, as for a file; anything else gets a verdict
    try:
        diagnosis = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(data))
    except UsageError as exc:
        assert str(exc) == "standard input: looks like binary data, not a text log"
        head = data[:8192].replace(b"\x00", b"")  # control bytes other than a text's own
        assert sum(b < 32 and b not in b"\t\n\r\x1b\x08\x0b\x0c" for b in head) > len(head) / 20
        return
    assert diagnosis.verdict.category in CATEGORIES
    json.dumps(diagnosis.to_dict(), default=str)


def test_an_empty_log_is_said_to_be_empty():
    empty = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(b"")).verdict
    assert empty.category == "unknown" and empty.summary.startswith("The log is empty")
    # a line that says nothing is not an empty log
    said = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(b"hello\n")).verdict
    assert said.category == "unknown" and not said.summary.startswith("The log is empty")


def test_a_log_that_ends_in_nuls_is_read_and_binary_data_is_refused():
    import pickle
    import random

    # a machine that crashed while the log was written leaves NULs where its last data was due
    log = b"epoch 2/10 loss 0.4\nOSError: [Errno 28] No space left on device\n"
    for data in (log + b"\x00" * 4096, b"epoch 1/10\n" + b"\x00" * 3000 + log):
        verdict = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(data)).verdict
        assert verdict.subtype == "library/disk-full", data[:40]
    noise = random.Random(7).randbytes(3000)  # a dozen NULs only: the old rule let it through
    assert noise.count(b"\x00") < 30
    for data in (noise, pickle.dumps({"weights": list(range(2000))})):
        with pytest.raises(UsageError, match="looks like binary data"):
            explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(data))


def test_a_log_copied_newest_first_is_read_in_the_order_it_was_written():
    log = (
        "epoch 3/10 loss 0.41\n"
        "Traceback (most recent call last):\n"
        '  File "/home/user/train.py", line 40, in <module>\n'
        "    loss.backward()\n"
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
    )
    turned = "\n".join(reversed(log.splitlines())) + "\n"
    for text, newest_first in ((log, False), (turned, True)):
        diagnosis = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(text.encode()))
        assert diagnosis.verdict.subtype == "oom/gpu" and diagnosis.verdict.confidence > 0.9
        notes = " ".join(diagnosis.evidence.notes)
        assert ("newest first" in notes) == newest_first
    # no traceback: timestamps going back in time tell it (a viewer's page of a killed run)
    stamped = [f"2024-05-01T10:00:0{n}Z epoch {n}/9 loss 0.{9 - n}" for n in range(6)]
    killed = "\n".join(["2024-05-01T10:00:06Z Killed", *reversed(stamped)]) + "\n"
    diagnosis = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(killed.encode()))
    assert "newest first" in " ".join(diagnosis.evidence.notes)
    assert diagnosis.verdict.category == "oom" and "epoch 5/9" in str(diagnosis.evidence.progress)


def _verdict(text: str):
    return explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(text.encode())).verdict


def test_a_log_that_resumes_and_then_says_nothing_is_an_early_exit_past_the_end():
    text = (
        "Model Initialized, iter:  600000\n"
        "Model moved to cuda\n"
        "Starting training from iteration:600000\n"
    )
    verdict = _verdict(text)
    assert (verdict.category, verdict.subtype) == ("early-exit", "early-exit/resumed-past-end")
    assert verdict.confidence < 0.5  # a saved log: the exit status is not known
    assert verdict.evidence[0].text == "Starting training from iteration:600000"
    assert [a.category for a in verdict.alternatives] == ["hang"]
    restored = "Restored all states from the checkpoint at /ckpt/last.ckpt\n"
    assert _verdict("Using 1 GPU\n" + restored).category == "early-exit"
    numbered = "Building model\nLoaded weights from runs/exp/model_epoch12.pth\n"
    assert _verdict(numbered).subtype == "early-exit/resumed-past-end"
    # a pretrained backbone's name holds digits too, but no step, epoch or iteration number
    backbone = "Building model\nLoaded weights from resnet50.pth\n"
    assert _verdict(backbone).subtype != "early-exit/resumed-past-end"


def test_quiet_endings_are_read_without_colour_codes_or_capture_prefixes():
    lines = ["Model Initialized, iter:  600000", "Starting training from iteration:600000"]
    coloured = "".join(f"\x1b[2m{line}\x1b[0m\n" for line in lines)
    stamped = "".join(f"2024-05-01T10:00:0{n}.000Z {line}\n" for n, line in enumerate(lines))
    for text in (coloured, stamped):
        verdict = _verdict(text)
        assert verdict.subtype == "early-exit/resumed-past-end", text
        assert verdict.evidence[0].text.endswith("Starting training from iteration:600000")
        assert "\x1b" not in verdict.evidence[0].text
    # a last line that says the run is still starting, in colour
    start = "".join(f"\x1b[32m{line}\x1b[0m\n" for line in ("Using 4 GPUs", "Initializing model"))
    assert _verdict(start).category == "hang"


def test_words_of_an_end_right_after_a_resume_are_an_early_exit_past_the_end():
    # a real run's whole output: it resumed at its last epoch and its loop never ran
    resumed = "Loaded checkpoint ckpt05/last.pt, resuming from epoch 10\n"
    verdict = _verdict(resumed + "Training finished.\n")
    assert verdict.subtype == "early-exit/resumed-past-end", verdict
    assert [a.category for a in verdict.alternatives] == ["completed"]
    # with an epoch trained between them, the same words end a run that trained
    trained = resumed + "Epoch 10/10 loss 0.0123\nTraining finished.\n"
    assert _verdict(trained).category == "completed"


def test_the_source_ipython_prints_under_its_last_frame_is_no_closing_line():
    # a real notebook run's end: torch's source shows another error's message as a string
    text = """AssertionError                            Traceback (most recent call last)
Cell In[4], line 1
----> 1 model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).cuda()

File /home/user/venv/lib/python3.11/site-packages/torch/cuda/__init__.py:522, in _lazy_init()
    517     raise RuntimeError(
    518         "Cannot re-initialize CUDA in forked subprocess. To use CUDA with "
    519         "multiprocessing, you must use the 'spawn' start method"
    520     )
    521 if not hasattr(torch._C, "_cuda_getDeviceCount"):
--> 522     raise AssertionError("Torch not compiled with CUDA enabled")

AssertionError: Torch not compiled with CUDA enabled
"""
    verdict = _verdict(text)
    assert verdict.category == "library", verdict
    assert all(a.subtype != "code/config" for a in verdict.alternatives), verdict.alternatives


def test_a_log_that_stops_inside_a_bar_of_its_data_preparation_hung_at_start():
    out = io.StringIO()
    bar = tqdm(total=77976, desc="Running tokenizer on dataset", unit=" examples", file=out)
    bar.refresh()  # it never moved: the log was taken while it stood at 0
    verdict = _verdict("Loading data files\n" + out.getvalue() + "\n")
    assert verdict.subtype == "hang/at-start", verdict


def test_a_peer_s_reset_connection_is_its_failure_not_this_node_s_network():
    # a real two-node job's surviving node: its rank lost its peer, then torchrun lost the store
    text = """[rank1]: Traceback (most recent call last):
[rank1]:   File "/home/user/ddp_train.py", line 21, in <module>
[rank1]:     opt.zero_grad(); loss.backward(); opt.step()
[rank1]: RuntimeError: [/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] \
Read error [127.0.0.1]:4515: Connection reset by peer. This is typically caused by a remote worker \
hanging or bugs in the application. Check the logs of the remote worker before reporting an error.
W1206 11:04:03.461000 29833 torch/distributed/elastic/rendezvous/dynamic_rendezvous.py:1298] The \
node 'localhost_29833_0' has failed to shutdown the rendezvous 'C_kill0' due to an error of type \
RendezvousConnectionError.
""".replace("\\\n", "")
    verdict = _verdict(text)
    assert verdict.subtype == "distributed/peer-failed", verdict


def test_an_error_a_loop_caught_each_epoch_is_no_page_s_fixed_width_wrapping():
    # a real run's log: the same longest line five times, each time followed by the next record
    error = (
        "safetensors._safetensors_rust.SafetensorError: Error while serializing: I/O error: "
        "No space left on device (os error 28)"
    )
    block = (
        "2026-12-06 11:00:03,863 ERROR train: checkpoint save failed, continuing\n"
        "Traceback (most recent call last):\n"
        '  File "/home/user/train.py", line 15, in <module>\n'
        '    save_file(model.state_dict(), f"full03/model_epoch{epoch}.safetensors")\n'
        f"{error}\n"
    )
    text = "".join(
        block + f"2026-12-06 11:00:03,9{n}0 INFO train: epoch {n + 3}/8 loss 0.00{n}5\n"
        for n in range(5)
    )
    verdict = _verdict(text)
    assert verdict.subtype == "library/disk-full" and verdict.evidence[0].text == error


def test_a_thread_that_died_of_its_traceback_did_not_handle_it():
    # a real run's saved log: the checkpoint writer thread died of a full disk, training went on
    text = (
        "epoch 1/10 loss 0.6783\nepoch 2/10 loss 0.6591\n"
        "Exception in thread ckpt-writer:\n"
        "Traceback (most recent call last):\n"
        '  File "/home/user/train.py", line 10, in writer\n'
        '    torch.save(sd, f"small/ckpt_{ep}.pt")\n'
        "RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos 36032 vs 35984\n"
        + "".join(f"epoch {n}/10 loss 0.{70 - n}00\n" for n in range(3, 11))
    )
    assert _verdict(text).subtype == "library/disk-full"
    # the same traceback printed by the program that caught it (no thread died): handled
    handled = text.replace("Exception in thread ckpt-writer:\n", "")
    assert _verdict(handled).category == "completed"


def test_bars_closed_at_0_after_their_loop_set_a_loss_are_a_break_after_one_batch():
    # real tqdm: each epoch's bar drawn at 0 with the loss of the one batch run, then closed
    out = io.StringIO()
    for n, loss in enumerate(("11.2127", "4.7171", "7.2122", "6.7942", "3.8294"), 1):
        bar = tqdm(range(20), desc=f"Epoch {n}/5", file=out, mininterval=0)
        for _ in bar:
            bar.set_postfix(loss=loss)  # the real run's losses, which went up and down
            break
        bar.close()
    verdict = _verdict(out.getvalue() + "Training finished.\n")
    assert verdict.subtype == "early-exit/unfinished", verdict


def test_a_resume_followed_by_steps_or_a_model_load_is_not_a_resume_past_the_end():
    steps = "Resuming from checkpoint /ckpt/epoch=3.ckpt\nepoch 4/10 step 1/50 loss 0.52\n"
    assert _verdict(steps).subtype != "early-exit/resumed-past-end"
    shards = "Loading tokenizer\nLoading model\nLoading checkpoint shards:  50%|#####     | 1/2\n"
    assert _verdict(shards).subtype != "early-exit/resumed-past-end"
    first = "Using 1 GPU\nBuilding model\nStarting training from epoch 0\n"
    assert _verdict(first).subtype != "early-exit/resumed-past-end"


def test_a_log_that_ends_on_a_save_is_an_early_exit_not_a_hang():
    epochs = "".join(f"Epoch {n}/50\n100/100 - loss: 0.{9 - n}1\n" for n in range(1, 9))
    text = epochs + "Epoch 00008: saving model to runs/snapshots/model_08.h5\n"
    verdict = _verdict(text)
    assert (verdict.category, verdict.subtype) == ("early-exit", "early-exit/after-save")
    assert verdict.confidence < 0.5  # a saved log: the exit status is not known
    assert verdict.evidence[0].text == "Epoch 00008: saving model to runs/snapshots/model_08.h5"
    assert [a.category for a in verdict.alternatives] == ["completed", "hang"]
    assert "after the run saved its work" in verdict.summary
    # a save announced with an ellipsis was begun; its end was never printed
    begun = _verdict(epochs + "Saving checkpoint to runs/ckpt_08.pt ...\n")
    assert begun.subtype == "early-exit/after-save"
    assert "after the run began to save its work" in begun.summary
    # a save earlier in the log, then more training that stops: not this rule
    assert _verdict(text + "Epoch 9/50\n").subtype != "early-exit/after-save"
    # the last line loads a model, it saves nothing
    assert _verdict(epochs + "Loading model from runs/model_08.h5\n").subtype != (
        "early-exit/after-save"
    )


def test_a_log_whose_last_line_records_the_exit_status_is_judged_with_it():
    # script(1)'s typescript and an IDE's run console end with the program's status: an early
    # `break` then reads as the early exit it was, not as a log cut mid-loop
    epochs = "".join(f"Epoch {n}/10 step 75/100 loss 0.{9 - n}\n" for n in range(1, 4))
    trailer = 'Script done on 2026-12-06 15:48:34+00:00 [COMMAND_EXIT_CODE="0"]\n'
    verdict = _verdict(epochs + "\n" + trailer)
    assert verdict.category == "early-exit"
    assert [(c.text, c.source) for c in verdict.evidence if c.kind == "exit"] == [
        (trailer.strip(), "line 5")
    ]
    assert _verdict(epochs).category == "hang"  # the same log without the record
    # an IDE's record of a kill: the signal it names is the run's
    ide = "Process finished with exit code 137 (interrupted by signal 9: SIGKILL)"
    killed = _verdict(epochs + "\n" + ide + "\n")
    assert (killed.subtype, killed.evidence[0].text) == ("oom/host", ide)
    # a record with lines after it is one process's end, not the run's
    assert _verdict(epochs + trailer + "Epoch 4/10 step 0/100 loss 0.5\n").category != "early-exit"


def test_a_log_that_ends_on_its_program_s_check_of_a_missing_path_ends_on_that_error():
    # no `Error:` before it: the program's own words that a path it needs is not there
    ended = _verdict("Loading data...\ndataset directory ./data/images not found, exiting\n")
    assert (ended.subtype, ended.evidence[0].text) == (
        "library/missing-path",
        "dataset directory ./data/images not found, exiting",
    )
    # a path it can do without, said before it goes on: no error
    scratch = "Loading data...\ncheckpoint ./ckpt/last.pt not found, training from scratch\n"
    assert _verdict(scratch).category != "library"


def _big_log(tmp_path):
    """A 2 MB training log ending in a CUDA out-of-memory traceback (bench/explain_speed.py's)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from explain_speed import generate

    path = tmp_path / "big.log"
    generate(str(path), 2)
    return path


def test_a_file_is_read_in_whole_chunks_after_its_sniffed_head(tmp_path):
    # The capture (prefixes, a page's fixed-width wrapping) is learned from the first chunk; the
    # 8 KiB sniffed to tell text from binary are too few lines to learn it from: this log's first
    # 8 KiB alone look wrapped at one width, and read as wrapped its traceback went unseen.
    path = _big_log(tmp_path)
    verdict = explain_logs([str(path)], KNOWLEDGE).verdict
    assert (verdict.category, verdict.subtype) == ("oom", "oom/gpu")
    with open_log(str(path)) as stream:
        assert stream.read(1 << 20) == path.read_bytes()[: 1 << 20]


def test_a_compressed_log_is_read_as_the_text_it_holds(tmp_path):
    # rotated and archived logs (`train.log.1.gz`): gzip, bzip2 and xz, by their first bytes
    import bz2
    import gzip
    import lzma

    text = (
        b"epoch 3/10 step 120 loss 0.52\n"
        b"Traceback (most recent call last):\n"
        b'  File "/home/user/train.py", line 40, in <module>\n'
        b"    out = model(batch)\n"
        b"RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x512 and 256x10)\n"
    )
    for name, data in (
        ("a.log.gz", gzip.compress(text)),
        ("a.log.bz2", bz2.compress(text)),
        ("a.xz", lzma.compress(text)),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        diagnosis = explain_logs([str(path)], KNOWLEDGE)
        assert diagnosis.verdict.signature == "shape-mismatch", name
        assert diagnosis.evidence.progress.stopped_at == "epoch 3/10, step 120", name
    # one cut short is read as far as it goes; one that is no such data is a one-line error
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gzip.compress(text * 50)[:200])
    read = explain_logs([str(cut)], KNOWLEDGE)
    assert read.verdict.signature == "shape-mismatch"  # the lines before the cut are all there
    assert read.evidence.progress.stopped_at == "epoch 3/10, step 120"
    # files compressed one after the other into one (`gzip -c >> train.log.gz`) are read on
    appended = tmp_path / "appended.gz"
    appended.write_bytes(gzip.compress(b"epoch 1/10 step 5 loss 0.9\n") + gzip.compress(text))
    with open_log(str(appended)) as stream:
        assert stream.read() == b"epoch 1/10 step 5 loss 0.9\n" + text
    # a text log that only starts with bzip2's letters is text
    plain = tmp_path / "plain.log"
    plain.write_bytes(b"BZh " + text)
    assert explain_logs([str(plain)], KNOWLEDGE).verdict.signature == "shape-mismatch"
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"\x1f\x8b" + b"not gzip data at all" * 10)
    with pytest.raises(UsageError, match="bad.gz: cannot decompress"):
        explain_logs([str(bad)], KNOWLEDGE)


def test_a_log_saved_by_windows_tools_is_read_as_its_text(tmp_path):
    # Notepad and PowerShell's `Out-File -Encoding UTF8` start the file with a UTF-8 mark; Windows
    # PowerShell 5's `>` writes UTF-16 with a mark. The same words, the same verdict and exception.
    text = (
        "step 10 loss 2.31\r\n"
        "Traceback (most recent call last):\r\n"
        '  File "C:\\Users\\user\\train.py", line 40, in <module>\r\n'
        "    out = model(batch)\r\n"
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x512 and 256x10)\r\n"
    )
    plain = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(text.encode()))
    assert plain.verdict.signature == "shape-mismatch"
    for data in (
        codecs.BOM_UTF8 + text.encode(),
        text.encode("utf-16"),  # with its mark, as PowerShell writes it
        text.encode("utf-16-le"),
        text.encode("utf-16-be"),
    ):
        read = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(data))
        assert read.verdict == plain.verdict
        assert read.evidence.log.chains == plain.evidence.log.chains
    # a file bigger than one chunk, read through to its last traceback
    wide = tmp_path / "wide.log"
    wide.write_bytes(_big_log(tmp_path).read_text().encode("utf-16"))
    verdict = explain_logs([str(wide)], KNOWLEDGE).verdict
    assert (verdict.category, verdict.subtype) == ("oom", "oom/gpu")


def test_a_log_indented_by_one_tab_is_read_as_written():
    # One tab before every line is a whole log's indentation, though one character wide: its
    # error line at the top was unseen behind it, and the log read as one that stopped silently.
    text = (
        "RuntimeError: cuda runtime error (10) : invalid device ordinal at /pytorch/Module.cpp:33\n"
        "THCudaCheck FAIL file=/pytorch/Module.cpp line=33 error=10 : invalid device ordinal\n"
        "Traceback (most recent call last):\n"
        '  File "tools/train.py", line 98, in main\n'
        "    torch.cuda.set_device(args.local_rank)\n"
        '  File "/opt/venv/lib/python3.6/site-packages/torch/cuda/__init__.py", line 265, in f\n'
        "    torch._C._cuda_setDevice(device)\n"
    )
    tabbed = "".join("\t" + line for line in text.splitlines(True))
    assert _verdict(tabbed) == _verdict(text)
    assert _verdict(text).category == "code"


def test_a_short_log_cut_at_one_width_is_read_again_with_its_pieces_joined():
    # A few lines copied from a page that wraps: too few to tell the wrapping by their lengths, and
    # the message cut in two matches nothing until the pieces are joined.
    line = (
        "2024-05-01 12:00:00,123 ERROR trainer.py:88 step 7 of epoch 3 failed with: CUDA out of "
        "memory. Tried to allocate 2.00 GiB (GPU 0; 15.78 GiB total capacity)"
    )
    width = line.index("out of memory") + len("out of m")
    cut = "\n".join(line[i : i + width] for i in range(0, len(line), width)) + "\n"
    assert cut.count("\n") == 2
    assert _verdict(cut).signature == _verdict(line + "\n").signature == "cuda-out-of-memory"


def test_a_closing_error_line_cut_in_two_is_read_again_with_its_pieces_joined():
    # A closing-words phrase reads the last lines whole (`at_end`): cut in two, the line is neither
    # an exception nor a notable line, and the joined reading is kept because the knowledge
    # matches it (corpus MP002 at a page's 100 columns had been `unknown`).
    line = (
        "[Errno 2] No such file or directory: '/data/ckpts/qwen-14b-hf-to-megatron-tp2-pp1/"
        "release/mp_rank_00/model_optim_rng.pt'"
    )
    cut = line[:100] + "\n" + line[100:] + "\n"
    assert _verdict(line + "\n").signature == "errno-no-such-file"
    assert _verdict(cut).signature == "errno-no-such-file"


def test_a_message_wrapped_at_word_breaks_is_joined_with_its_spaces():
    # A paste wrapped at word breaks drops the space at each break: joined as a page's cut it reads
    # "sharedmemory", which matches nothing; with the space put back it is the message again.
    message = (
        "RuntimeError: DataLoader worker (pid 47) is killed by signal: Bus error. It is possible "
        "that dataloader's workers are out of shared memory. Please try to raise your shared "
        "memory limit."
    )
    whole = _verdict(message + "\n").signature
    assert whole not in (None, "python-error")
    first = message.index(" error.")
    second = message.index(" memory.")
    wrapped = f"{message[:first]}\n{message[first + 1 : second]}\n{message[second + 1 :]}\n"
    lengths = [len(line) for line in wrapped.splitlines()]
    assert lengths[0] == lengths[1] > lengths[2]  # two breaks at one width: the cutting is sure
    assert _verdict(wrapped).signature == whole
    # a break that kept its space at the joint is a page's cut: joined as it is, still read
    kept = f"{message[: first + 1]}\n{message[first + 1 :]}\n"
    assert _verdict(kept).signature == whole


def _cut_width_of(text: str) -> tuple[int | None, bool]:
    """The cut width read_log finds in a saved log of this text."""
    parser = LogParser(load_knowledge(include_user=False))
    facts = parser.parse_stream(io.BytesIO(text.encode()))
    return _cut_width(facts, parser.starts_a_record)


def test_an_exception_cut_at_one_width_is_read_with_its_pieces_joined():
    # The exception is understood as it stands (a bare ValueError), but its message, cut in the
    # middle of a word, matches nothing that the whole message matches.
    message = (
        "ValueError: Expected input batch_size (64) to match target batch_size (32). Check the "
        "shape of the labels your Dataset returns against the model's output."
    )
    whole = _verdict(message + "\n").signature
    assert whole != "python-error"
    # cut twice, each rest starting mid-text: sure, the joined reading is taken
    twice = "\n".join(message[i : i + 70] for i in range(0, len(message), 70)) + "\n"
    assert _cut_width_of(twice) == (70, True)
    assert _verdict(twice).signature == whole
    # cut once: unsure, the joined reading is taken because more of the knowledge matches it
    once = message[:100] + "\n" + message[100:] + "\n"
    assert _cut_width_of(once) == (100, False)
    assert _verdict(once).signature == whole
    # equal-width lines that start alike are a format (a bar's redraws), not a page's wrapping
    bars = "".join(
        f"Epoch 1: {p:3d}%|{'#' * (p // 10):<10}| {p} of 100 samples done, loss 0.5{p}, lr 0.001\n"
        for p in (10, 20, 30)
    )
    assert len({len(line) for line in bars.splitlines()}) == 1 and len(bars.splitlines()[0]) >= 60
    assert _cut_width_of(bars + "done\n") == (len(bars.splitlines()[0]), False)


def test_a_record_or_a_whole_frame_is_not_the_rest_of_a_cut_line():
    def width(text: str):
        return _cut_width_of(text)[0]

    # the longest frame line, its code indented below it: a traceback, not a page's wrapping
    frame = (
        '  File "/usr/lib/python3.10/site-packages/ignite/engine/engine.py", line 1, in run_once'
    )
    tb = f"Traceback (most recent call last):\n{frame}\n    self._handle(e)\nValueError: bad\n"
    assert width(tb) is None
    # the same line cut in its function's name: the rest starts at the margin
    assert width(tb.replace("run_once\n", "run\n_once\n")) is not None
    # every record starts with the capture's timestamp: the line after the longest is a record
    records = "".join(
        f"2024-05-01T10:00:0{i}Z step {i} {'x' * (40 + 10 * (i == 3))}\n" for i in range(6)
    )
    assert width(records) is None


IPYTHON_TRACEBACK = (
    "-" * 75 + "\n"
    "OutOfMemoryError                          Traceback (most recent call last)\n"
    "Cell In[3], line 5\n"
    "      3 for batch in loader:\n"
    "----> 5     out = model(batch)\n"
    "\n"
    "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
)


def test_ipython_s_rule_and_head_are_drawn_at_their_width_not_cut():
    # both are 75 columns wide, the log's longest lines: a page's wrapping would join them to the
    # next and lose the cell's frame
    text = "epoch 1 loss 2.31\n" + IPYTHON_TRACEBACK
    assert _cut_width_of(text)[0] is None
    culprit = _verdict(text).culprit
    assert (culprit.file, culprit.line, culprit.code) == ("Cell In[3]", 5, "out = model(batch)")


def _notebook(outputs: list[dict]) -> bytes:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Training"]},
        {
            "cell_type": "code",
            "execution_count": 3,
            "metadata": {},
            "outputs": outputs,
            "source": ["for batch in loader:\n", "    out = model(batch)"],
        },
    ]
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(notebook, indent=1).encode()


def test_a_saved_notebook_is_read_as_the_output_of_its_cells():
    drawn = [f"\x1b[0;31m{line}\x1b[0m" for line in IPYTHON_TRACEBACK.rstrip("\n").split("\n")]
    outputs = [
        {"name": "stdout", "output_type": "stream", "text": ["epoch 1 loss 2.31\n", "epoch 2 "]},
        {"name": "stdout", "output_type": "stream", "text": "loss 2.05\n"},
        {"output_type": "error", "ename": "OutOfMemoryError", "evalue": "-", "traceback": drawn},
    ]
    diagnosis = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(_notebook(outputs)))
    verdict = diagnosis.verdict
    assert verdict.subtype == "oom/gpu" and verdict.culprit.file == "Cell In[3]"
    lines = [line.text for line in diagnosis.evidence.log.tail]
    assert "epoch 2 loss 2.05" in lines  # the stream's pieces, joined
    assert diagnosis.evidence.progress.last_loss == 2.05


def test_a_notebook_error_without_its_drawing_is_read_from_its_name_and_value():
    error = {"ename": "ModuleNotFoundError", "evalue": "No module named 'timm'"}
    outputs = [{"output_type": "error", **error}]
    verdict = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(_notebook(outputs))).verdict
    assert verdict.subtype == "library/missing-package"
    assert verdict.exception.type == "ModuleNotFoundError"  # raised, not a line of JSON


def test_json_that_only_starts_like_a_notebook_is_read_as_text():
    cut = _notebook([])[:40] + b"\nRuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
    assert explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(cut)).verdict.category == "oom"


def test_one_text_is_cited_once_when_two_signatures_read_it():
    # a real run's DataLoader worker killed by SIGKILL: a line pattern cites the exception's line
    # where it stands, the exception pattern where its traceback starts; one fact, one citation
    log = "\n".join(
        [
            "batch 2",
            "Traceback (most recent call last):",
            '  File "/home/user/project/train.py", line 9, in <module>',
            "    for i, b in enumerate(DataLoader(D(), batch_size=4, num_workers=2)):",
            '  File "/usr/lib/python3/dist-packages/torch/utils/data/_utils/signal_handling.py",'
            " line 73, in handler",
            "    _error_if_any_worker_fails()",
            "RuntimeError: DataLoader worker (pid 25852) is killed by signal: Killed. ",
        ]
    )
    verdict = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(log.encode())).verdict
    texts = [c.text for c in verdict.evidence]
    assert verdict.category == "oom" and len(texts) == len(set(texts)), verdict.evidence


def test_a_torchrun_log_dir_is_read_down_to_each_rank_s_files(tmp_path):
    # torchrun --log-dir D --redirects 3: D/<run id>/attempt_0/<rank>/{stdout,stderr}.log
    ranks = tmp_path / "logs" / "none_x1y2" / "attempt_0"
    for rank in (0, 1):
        (ranks / str(rank)).mkdir(parents=True)
        (ranks / str(rank) / "stdout.log").write_text("step 0/100 loss 0.7\n")
    (ranks / "0" / "stderr.log").write_text(
        'Traceback (most recent call last):\n  File "/w/train.py", line 9, in <module>\n'
        "    y = model(x)\nRuntimeError: [enforce fail at alloc_cpu.cpp:127] data. "
        "DefaultCPUAllocator: can't allocate memory: you tried to allocate 4294967296 bytes.\n"
    )
    (ranks / "1" / "stderr.log").write_text("")
    verdict = explain_logs([str(tmp_path / "logs")], load_knowledge(include_user=False)).verdict
    assert verdict.category == "oom", verdict
    assert verdict.summary.startswith("On 0/stderr")


def test_a_rank_known_by_its_abort_is_judged_by_the_error_it_logged_without_a_rank_tag():
    # a real torchrun run: the program logs its exception (no `[rank1]:` tag), then the process
    # aborts at teardown; torchrun's table names rank 1's SIGABRT as the first failure
    log = FIXTURE_LOGS / "torchrun_logged_error_then_abort.log"
    verdict = explain_logs([str(log)], KNOWLEDGE).verdict
    assert verdict.subtype == "data/label-out-of-range", verdict
    assert verdict.summary.startswith("Rank 1 failed first: ")


def test_a_collective_mismatch_gloo_stated_is_the_cause_of_the_failure_printed_after_it():
    # a real torchrun run: gloo aborts rank 1 on a message of another size (its line has no rank
    # tag), then rank 0's bincount of the garbage it received asks for 64 GiB: host memory 96%
    log = FIXTURE_LOGS / "torchrun_gather_sizes_differ_then_garbage_allocation.log"
    verdict = explain_logs([str(log)], KNOWLEDGE).verdict
    assert verdict.subtype == "distributed/collective-mismatch", verdict
    assert not verdict.summary.startswith("Rank "), verdict.summary
    assert "oom" in {a.category for a in verdict.alternatives}


def test_a_process_group_that_never_formed_is_the_job_s_failure_not_a_rank_s_unknown_exit():
    # a real torchrun run: world_size=3 with two processes; the ranks' tracebacks carry no rank tag,
    # torchrun's table names rank 1's exit 1 (was "cause not established", 30%)
    log = FIXTURE_LOGS / "torchrun_world_size_larger_than_ranks.log"
    verdict = explain_logs([str(log)], KNOWLEDGE).verdict
    assert verdict.subtype == "distributed/rendezvous", verdict


def test_a_search_whose_every_fit_failed_is_read_by_the_fits_own_error():
    # a real run: scikit-learn's summary ValueError (a plain Python error's words) carries the
    # fits' traceback under it; that error is the cause
    log = FIXTURE_LOGS / "sklearn_all_fits_failed_dtype.log"
    diagnosis = explain_logs([str(log)], KNOWLEDGE)
    assert diagnosis.verdict.category == "code"
    assert diagnosis.verdict.signature != "python-error", diagnosis.verdict
    assert any("All the 4 fits failed" in c.text for c in diagnosis.verdict.cascade)


def test_the_rank_the_launcher_stopped_after_a_collective_timeout_is_the_one_that_never_came():
    # a real torchrun run: rank 1 skips the all_reduce and sleeps; rank 0 times out, torchrun
    # stops rank 1 with SIGTERM. Rank 1 was "stopped by a scheduler's time limit or a person".
    log = FIXTURE_LOGS / "torchrun_rank_skips_collective_timeout.log"
    diagnosis = explain_logs([str(log)], KNOWLEDGE)
    verdict = diagnosis.verdict
    assert verdict.subtype == "distributed/collective-timeout", verdict
    assert verdict.summary.endswith(
        "Rank 1, stopped by the launcher with no error of its own, most likely never reached it."
    )
    ranks = {r["rank"]: r for r in diagnosis.to_dict()["distributed"]["ranks"]}
    assert ranks[1]["subtype"] == "distributed/peer-failed"
    assert "never reached that collective" in ranks[1]["summary"]


def test_a_job_stopped_by_hand_while_a_rank_waited_in_a_collective_is_a_hang_said_whole():
    # a real torchrun run: rank 1 polls forever, rank 0 waits in all_reduce for it, and SIGINT
    # ends the job; the hung rank's reading is a whole sentence, no stall's "Stuck ..."
    log = FIXTURE_LOGS / "torchrun_collective_hang_ctrl_c.log"
    verdict = explain_logs([str(log)], KNOWLEDGE).verdict
    assert verdict.category == "hang", verdict
    assert verdict.summary.startswith("The job hung at rank 0. The run was stopped by hand while")
    # the rank's cited wait is the job's too: listed once; no waitpid saw a saved log's status
    assert len(verdict.evidence) == len(set(verdict.evidence))
    assert all(c.source != "waitpid" for c in verdict.evidence)


def test_files_every_node_names_alike_are_named_by_their_folder():
    # `merge n0/report.json n1/report.json` once named both nodes "report"
    from trainwatch.diagnostics.postmortem import _node_name

    assert _node_name("job/n0/report.json") == "n0/report"
    assert _node_name("logs/rank3/stderr") == "rank3/stderr"
    assert _node_name("node-a.json") == "node-a" and _node_name("-") == "stdin"


# the line under and over 4 times the cap in bytes, and (its frames drawn 12 times over, as a bar
# drawn anew) over the 1 MiB a line is read to at most
@pytest.mark.parametrize(("frames", "copies"), [(300, 1), (3000, 1), (3000, 12)])
def test_a_tqdm_bar_written_to_a_file_keeps_its_last_frames_past_the_line_cap(frames, copies):
    # real tqdm into a file: one line of `\r` frames per epoch, longer than the 8192 characters a
    # line is cut to; its last frames say where the loop ended (a finished run read "loop left
    # early at 660/1000")
    out = io.StringIO()
    for epoch in (1, 2):
        for _ in tqdm(range(frames), desc=f"epoch {epoch}/2", file=out, miniters=1, mininterval=0):
            pass
    first, last, _ = out.getvalue().split("\n")
    text = f"{first}\n{last * copies}\ntraining complete, saved model.pt\n"
    assert max(len(line) for line in text.split("\n")) > (8192 if copies == 1 else 2 << 20)
    diagnosis = explain_logs(["-"], KNOWLEDGE, stdin=io.BytesIO(text.encode()))
    assert diagnosis.verdict.category == "completed", diagnosis.verdict
    assert diagnosis.evidence.progress.stopped_at == f"epoch 2/2, batch {frames}/{frames}"


def test_a_missing_module_whose_package_has_another_name_is_told_that_name():
    # `pip install cv2` finds nothing: the advice names opencv-python
    trace = 'Traceback (most recent call last):\n  File "train.py", line 3, in <module>\n'
    cv2 = _verdict(trace + "    import cv2\nModuleNotFoundError: No module named 'cv2'\n")
    assert cv2.subtype == "library/missing-package"
    assert cv2.advice[0].startswith("Install it: `python -m pip install opencv-python`")
    timm = _verdict(trace + "    import timm\nModuleNotFoundError: No module named 'timm'\n")
    assert not any("Install it:" in a for a in timm.advice)  # named as its module: no extra line


def test_a_traceback_the_loop_went_on_from_is_no_cause_of_the_crash_that_ended_the_log():
    # a caught error printed with traceback.print_exc(), training on, then the real crash (a real
    # run's skipped PIL image, 0.98, outranked the NameError that ended it)
    caught = (
        "could not read sample, skipping\n"
        "Traceback (most recent call last):\n"
        '  File "/home/user/train.py", line 7, in <module>\n'
        "    Image.open(io.BytesIO(data))\n"
        '  File "/usr/lib/python3/dist-packages/PIL/Image.py", line 3730, in open\n'
        "    raise UnidentifiedImageError(msg)\n"
        "PIL.UnidentifiedImageError: cannot identify image file <_io.BytesIO object at 0x7f>\n"
    )
    crash = (
        "Traceback (most recent call last):\n"
        '  File "/home/user/train.py", line 11, in <module>\n'
        "    print(undefined_name)\n"
        "NameError: name 'undefined_name' is not defined\n"
    )
    went_on = _verdict(caught + "epoch 1/3 loss 0.5\nepoch 2/3 loss 0.4\n" + crash)
    assert went_on.category == "code", went_on
    # with no training between the two, the first may well be the cause
    assert _verdict(caught + crash).category == "data"


def test_in_a_run_a_traceback_gone_on_from_counts_only_where_one_stream_orders_it():
    # the same in a live run: its stdout and stderr are numbered apart, so the order of a
    # traceback and the loop's progress is known only within one stream
    from trainwatch.diagnostics.evidence import Evidence, ExitStatus, LogLine
    from trainwatch.diagnostics.judge.classify import classify
    from trainwatch.diagnostics.read.logparse import parse_lines
    from trainwatch.diagnostics.read.progress import ProgressTracker

    caught = [
        "Traceback (most recent call last):",
        '  File "/home/user/train.py", line 7, in <module>',
        "    Image.open(io.BytesIO(data))",
        "PIL.UnidentifiedImageError: cannot identify image file <_io.BytesIO object at 0x7f>",
    ]
    crash = [
        "Traceback (most recent call last):",
        '  File "/home/user/train.py", line 11, in <module>',
        "    print(undefined_name)",
        "NameError: name 'undefined_name' is not defined",
    ]
    epochs = ["epoch 1/3 loss 0.5", "epoch 2/3 loss 0.4"]

    def run(streams: dict[str, list[str]]):
        lines = [
            LogLine(i, text, stream)
            for stream, texts in streams.items()
            for i, text in enumerate(texts, 1)
        ]
        tracker = ProgressTracker()
        for line in lines:
            tracker.feed(line)
        return classify(
            Evidence(
                source="run",
                log=parse_lines(lines),
                exit=ExitStatus.from_returncode(1),
                progress=tracker.finish(),
            )
        )

    assert run({"stdout": caught + epochs + crash}).category == "code"
    # the progress on stdout, both tracebacks on stderr: which came first is not known
    assert run({"stdout": epochs, "stderr": caught + crash}).category == "data"


def test_a_loss_flat_over_the_log_s_tail_but_moving_before_it_is_no_loss_that_never_moved():
    # a real run's 2500 epochs: the loss fell from 18 to 0.00911 by epoch 400, then stayed; the
    # tail (the last 2000 lines, read in full) alone read "did not learn" (forty-fourth session)
    def loss(epoch: int) -> float:
        return max(18.0 * 0.98**epoch, 0.00911)

    def log(epochs: int) -> str:
        return "".join(
            f"epoch {e}/{epochs} train_loss={loss(e):.5f}\n" for e in range(1, epochs + 1)
        )

    assert _verdict(log(2500)).subtype != "completed/loss-never-moved"
    never = "".join(f"epoch {e}/2500 train_loss=0.69315\n" for e in range(1, 2501))
    assert _verdict(never).subtype == "completed/loss-never-moved"


def test_a_log_that_ends_on_its_own_words_of_a_save_is_an_early_exit_after_it():
    # a LoRA run's `break`, then "adapter saved to adapter_out" (BT's real runs: hang/no-output)
    steps = "".join(f"epoch 1/5 step {s}/16 loss 2.{s:02d}\n" for s in range(1, 17))
    assert _verdict(steps + "adapter saved to adapter_out\n").subtype == "early-exit/after-save"
    assert _verdict(steps + "saved to out/weights.safetensors\n").category == "early-exit"
    assert _verdict(steps + "saved to results.csv\n").category == "hang"  # no model's file


def test_a_log_that_ends_on_its_program_s_own_fail_line_is_no_completed_run():
    # a CI job's accuracy gate: `FAIL: ...`, then sys.exit(2) (BU's real runs: completed 0.75)
    text = (
        "".join(f"epoch {e}/3 loss 0.{9 - e} acc 0.2{e}\n" for e in (1, 2, 3))
        + "FAIL: accuracy 0.246 below threshold 0.900\n"
    )
    v = _verdict(text)
    assert v.category != "completed", v
    assert any("FAIL: accuracy 0.246" in c.text for c in v.evidence)


def test_a_traceback_followed_by_another_worker_s_progress_and_unread_crash_stays_the_cause():
    # two workers in one log with no rank tags: worker 1's NameError, worker 0's next step, then
    # worker 0's collective aborted (BX's real runs: the NameError passed over as gone on from)
    text = (
        "[worker 0] step 10/60 loss 2.9647\n"
        "Traceback (most recent call last):\n"
        '  File "/home/user/train.py", line 51, in <module>\n'
        "    log_metrics(step=s, loss=float(loss))\n"
        "NameError: name 'log_metrics' is not defined\n"
        "[worker 0] step 15/60 loss 2.3618\n"
        "Traceback (most recent call last):\n"
        '  File "/home/user/train.py", line 47, in <module>\n'
        "    loss = train_step(dist_it)\n"
        "tensorflow.python.framework.errors_impl.UnavailableError: Graph execution error:\n\n"
        "Collective ops is aborted by: Socket closed\n"
        "\t [[{{node sgd_1/CollectiveReduceV2}}]] [Op:__inference_train_step_328]\n"
    )
    assert _verdict(text).category == "code"


def test_an_error_printed_again_after_progress_is_still_the_error():
    # Ray prints a worker's lines again, deduplicated, later in the log: the same error, a
    # progress line between (BV's real runs: code/error-words 0.50 for a shape mismatch)
    error = "RuntimeError: mat1 and mat2 shapes cannot be multiplied (32x10 and 8x16)\n"
    assert _verdict(error + "epoch 1 loss 0.9294\n" + error).subtype == "code/shape-mismatch"


def test_a_hydra_target_that_leads_nowhere_is_the_config_s_and_its_short_form_is_not_sure():
    # a real Hydra run: `_target_: torch.optim.AdamW_`. Hydra's `_locate` imports the class's path
    # as a module, so the chain holds `No module named 'torch.optim.AdamW_'`: no package is
    # missing and no module of torch moved (was library/version-incompat 98%)
    full = explain_logs([str(FIXTURE_LOGS / "hydra_target_typo_full_error.log")], KNOWLEDGE)
    assert (full.verdict.subtype, full.verdict.signature) == (
        "code/config",
        "hydra-target-not-found",
    )
    # Hydra's short output hides why the target did not load (in public reports mostly an import
    # inside the target's module): named, not sure, and never a hang (was hang/no-output 30%)
    short = explain_logs([str(FIXTURE_LOGS / "hydra_target_typo_short.log")], KNOWLEDGE).verdict
    assert short.signature == "hydra-target-not-loaded" and short.confidence < 0.6, short
    assert any("HYDRA_FULL_ERROR=1" in advice for advice in short.advice)


def test_a_hydra_job_log_s_end_is_not_read_surer_than_such_a_log_can_tell(tmp_path):
    # Hydra writes a failed job's error to the terminal, never into the job's log beside `.hydra/`:
    # a real crashed job's log ends at its last INFO line (was hang/at-start 45%, with rendezvous
    # advice; another, completed 75%)
    text = "[2026-12-07 15:30:46,590][__main__][INFO] - Loading dataset from /data/train.pt\n"
    alone = tmp_path / "alone" / "train.log"
    job = tmp_path / "outputs" / "2026-12-07" / "15-30-45" / "train.log"
    for path in (alone, job):
        path.parent.mkdir(parents=True)
        path.write_text(text)
    (job.parent / ".hydra").mkdir()
    (job.parent / ".hydra" / "hydra.yaml").write_text("hydra:\n  run:\n    dir: outputs\n")
    plain = explain_logs([str(alone)], KNOWLEDGE)
    read = explain_logs([str(job)], KNOWLEDGE)
    assert plain.verdict.category == read.verdict.category == "hang"
    assert plain.verdict.confidence > read.verdict.confidence == 0.35
    assert "terminal" in read.verdict.advice[0]
    assert any("Hydra job" in note for note in read.evidence.notes)
    assert not any("Hydra" in note for note in plain.evidence.notes)
    # what such a log does say keeps its reading: a NaN loss it printed
    job.write_text(text + "".join(f"[x][__main__][INFO] - step {i} loss nan\n" for i in range(4)))
    assert explain_logs([str(job)], KNOWLEDGE).verdict.category == "numerical"


def test_an_indentation_error_is_no_newer_python_s_syntax_whatever_its_line_holds():
    # a real run: the line Python stopped at holds an f-string, which older Pythons refuse; but
    # indentation is read alike by every Python, and this wording is Python 3.10's (was
    # library/version-incompat 60%)
    log = FIXTURE_LOGS / "indentation_error_fstring_line.log"
    verdict = explain_logs([str(log)], KNOWLEDGE).verdict
    assert verdict.subtype == "code/syntax-error", verdict


def _fixture_verdict(name: str):
    return explain_logs([str(FIXTURE_LOGS / name)], KNOWLEDGE).verdict


def test_a_sample_file_missing_below_getitem_is_the_data_s_whatever_its_extension():
    # a real run: the 37th `.pt` sample of a folder whose first 36 had loaded (was the setup's
    # missing path, "check the mount"); torch's NumPy warning above it is no cause
    verdict = _fixture_verdict("missing_sample_in_getitem.log")
    assert verdict.subtype == "data/missing-file", verdict
    assert verdict.alternatives[0].subtype == "library/missing-path"
    assert "list's entries" in verdict.advice[0]


def test_an_own_code_error_in_a_loader_worker_is_code_not_a_bad_sample():
    # `self.augument(x)` in the dataset's own method, a `worker_init_fn`'s error, and shapes that
    # the program's own collate got wrong: none says anything of a sample (real runs, all read
    # data/sample-error)
    for name, subtype in (
        ("getitem_self_typo_in_worker.log", "code/python-error"),
        ("worker_init_fn_error.log", "code/python-error"),
        ("own_collate_shape_error.log", "code/shape-mismatch"),
    ):
        verdict = _fixture_verdict(name)
        assert verdict.subtype == subtype, (name, verdict)


def test_ctrl_c_with_loader_workers_is_an_interruption_not_a_worker_s_join():
    # a worker's exit-time queue join, interrupted by the same Ctrl-C, is no stuck program
    verdict = _fixture_verdict("ctrl_c_with_loader_workers.log")
    assert verdict.subtype == "interrupted/user", verdict


def test_a_running_best_printed_as_inf_is_no_infinite_metric():
    verdict = _fixture_verdict("early_stop_best_never_set.log")
    assert verdict.subtype == "completed/early-stopping", verdict
    assert any("never counted an improvement" in advice for advice in verdict.advice)
    # an infinity the run computed still counts
    assert _verdict("epoch 1 loss 0.5 val_loss=inf\nepoch 2 loss 0.4 val_loss=inf\n").category == (
        "numerical"
    )


def test_a_checkpoint_restored_after_the_loop_reached_its_end_is_no_resumed_run():
    # Lightning's validate(ckpt_path="best") after fit restores the best checkpoint (was
    # early-exit/resumed-past-end 60%)
    verdict = _fixture_verdict("lightning_validate_after_fit.log")
    assert verdict.category == "completed", verdict


def test_a_closing_word_after_the_loop_s_steps_is_the_program_s_end():
    # a real run's `done` after five epochs with no total printed (was hang/no-output 35%)
    verdict = _fixture_verdict("done_after_loop.log")
    assert verdict.subtype == "completed/finished", verdict
    # short of its total, the loop was left early (a debugging `break`)
    early = _verdict("Epoch 1/10 loss=1.0000\nEpoch 2/10 loss=0.5000\ndone\n")
    assert early.subtype == "early-exit/unfinished", early
    # a closing word with no loop step before it says nothing of training (dev S006: a download's
    # `Done!`, then a hang)
    assert _verdict("Downloading data.gz\nProcessing...\nDone!\n").category != "completed"
    # nor does one followed by more of the loop
    assert _verdict("epoch 0 loss 1.0\ndone\nepoch 1 loss 0.9\n").category != "completed"


def test_a_worker_s_death_raised_by_the_signal_handler_says_its_line_is_only_where_it_stood():
    verdict = _fixture_verdict("worker_killed_by_signal.log")
    assert verdict.culprit is not None and verdict.culprit.line == 17, verdict.culprit
    assert "DataLoader worker died" in (verdict.culprit.note or ""), verdict.culprit


def test_an_epoch_printed_as_a_dict_key_is_no_first_step():
    # `{'epoch': 0, 'loss': nan}` prints an epoch's last loss, after its updates: no claim that
    # the loss was undefined before any update (was "from the first value on")
    verdict = _verdict("{'epoch': 0, 'loss': nan}\n{'epoch': 1, 'loss': nan}\n")
    assert verdict.category == "numerical", verdict
    assert "before any update" not in verdict.summary, verdict.summary


def test_a_nan_loss_the_program_caught_at_its_first_step_leads_with_the_first_batch():
    # a real run's own check raised before any optimizer step: the learning rate is no cause (was
    # advice 1, "Lower the learning rate")
    text = (
        "Traceback (most recent call last):\n"
        '  File "/home/user/project/train.py", line 9, in <module>\n'
        '    raise RuntimeError(f"NaN loss detected at epoch 0 batch {i // 10}; aborting")\n'
        "RuntimeError: NaN loss detected at epoch 0 batch 0; aborting\n"
    )
    verdict = _verdict(text)
    assert verdict.subtype == "numerical/nan-loss", verdict
    assert "first batch" in verdict.advice[0], verdict.advice
    assert not any("learning rate" in a.lower() for a in verdict.advice), verdict.advice
    # later in the run, the learning rate stays a suspect
    later = _verdict(text.replace("epoch 0 batch 0", "epoch 3 batch 40"))
    assert "learning rate" in later.advice[0].lower(), later.advice


def test_a_checkpoint_read_as_corrupt_after_its_save_failed_for_room_is_the_disk_s():
    # the program caught each failed save and went on, then loaded the short file (was
    # data/corrupt-file 88%, "download it again")
    verdict = _fixture_verdict("failed_save_then_short_checkpoint.log")
    assert verdict.subtype == "library/disk-full", verdict
    assert verdict.alternatives and verdict.alternatives[0].subtype == "data/corrupt-file"
    # a corrupt file with no failed write before it stays the file's
    lines = FIXTURE_LOGS.joinpath("failed_save_then_short_checkpoint.log").read_text().splitlines()
    alone = "\n".join(line for line in lines if "saving best.pt failed" not in line) + "\n"
    assert _verdict(alone).subtype == "data/corrupt-file"


def test_a_log_level_in_capitals_under_an_exception_is_a_new_record_not_its_message():
    # a real run's shell trap printed its own checklist under the program's IndexError (was
    # oom/gpu 98%: the trap's words were read as the exception's message)
    text = (
        "Traceback (most recent call last):\n"
        '  File "/home/user/project/train.py", line 30, in <module>\n'
        "    out = model(tokens)\n"
        "IndexError: index out of range in self\n"
        "ERROR: job failed (1). Common causes: CUDA out of memory, NCCL timeout, disk full.\n"
    )
    verdict = _verdict(text)
    assert verdict.category == "code", verdict
    assert verdict.exception is not None and "CUDA" not in verdict.exception.message


def test_a_logging_error_block_is_a_traceback_the_program_went_on_from():
    # logging prints `--- Logging error ---` over a message it could not format, and goes on: in a
    # log that crashed later, it is no cause (the crash's own reading stands)
    went_on = FIXTURE_LOGS.joinpath("logging_error_every_epoch.log").read_text()
    crash = (
        "Traceback (most recent call last):\n"
        '  File "/home/user/project/train.py", line 40, in <module>\n'
        "    trainer.fit()\n"
        "RuntimeError: the engine's queue was closed unexpectedly\n"
    )
    verdict = _verdict(went_on + crash)
    assert verdict.category != "code", verdict
    assert verdict.exception is not None and "queue was closed" in verdict.exception.message


def test_a_finite_loss_past_any_real_loss_is_a_blow_up():
    # a real run's stiff ODE in float64: 5.1e+297 at every step, then its closing words (was a
    # hang 35% from the log, completed 80% from the run)
    steps = "".join(f"iter {i:3d} loss 5.102063e+297\n" for i in range(0, 40, 4))
    verdict = _verdict(steps + "finished fitting\n")
    assert verdict.subtype == "numerical/divergence", verdict
    assert "5.1e+297" in verdict.summary
    # a large loss a training does compute stays what it was
    assert _verdict(steps.replace("e+297", "e+04") + "finished fitting\n").category != "numerical"


def test_a_data_error_after_a_fix_that_changed_only_a_copy_is_the_lost_fix():
    # a real run: pandas 3 warned that `df["label"][mask] = 0` set a copy, then the labels the fix
    # was for reached the loss (was data/label-out-of-range 93%, "remap the labels")
    verdict = _fixture_verdict("pandas_chained_assignment_labels.log")
    assert verdict.subtype == "library/pandas-copy-on-write", verdict
    assert any(a.category == "data" for a in verdict.alternatives), verdict.alternatives
    # the warning alone, in a run that then finished, is no failure
    text = FIXTURE_LOGS.joinpath("pandas_chained_assignment_labels.log").read_text()
    warned = text.split("labels after fix-up")[0]
    finished = _verdict(warned + "epoch 1/2 loss 0.9\nepoch 2/2 loss 0.5\ntraining finished\n")
    assert finished.category == "completed", finished


def test_a_message_under_a_banner_is_cited_by_its_text():
    # nltk's LookupError opens with an empty line and a row of asterisks (was cited alone, unknown)
    verdict = _fixture_verdict("nltk_resource_missing.log")
    assert verdict.subtype == "library/missing-resource", verdict
    cited = next(c.text for c in verdict.evidence if c.kind == "exception")
    assert "Resource 'punkt_tab' not found" in cited and "****" not in cited, cited
