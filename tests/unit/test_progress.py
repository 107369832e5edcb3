"""Progress and loss tracking on real output formats, the wait classifier, and the quiet-stop
verdicts.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import replace

import pytest
from tqdm import tqdm

from trainwatch.diagnostics.evidence import Evidence, ExitStatus, Frame, LogLine
from trainwatch.diagnostics.judge.classify import classify
from trainwatch.diagnostics.judge.quiet import judge_quiet
from trainwatch.diagnostics.read.logparse import parse_text
from trainwatch.diagnostics.read.progress import LOSS_SAMPLES, ProgressTracker
from trainwatch.diagnostics.watch.stall import classify_wait

from conftest import FIXTURE_LOGS


def track(text: str):
    tracker = ProgressTracker()
    for number, line in enumerate(text.split("\n"), 1):
        tracker.feed(LogLine(number, line))
    return tracker.finish()


def tqdm_output(loops) -> str:
    """What real tqdm writes (to a pipe: `\\r`-separated updates), for a list of (desc, total,
    stop_at).
    """
    out = io.StringIO()
    for desc, total, stop in loops:
        bar = tqdm(range(total), desc=desc, file=out, mininterval=0, ascii=False)
        for i in bar:
            if i == stop:
                break
        bar.close()
    return out.getvalue()


def fixture(name: str) -> str:
    return (FIXTURE_LOGS / name).read_text(errors="replace")


# ---- progress ------------------------------------------------------------------------------------


def test_the_last_epoch_s_header_alone_does_not_say_the_loop_ended():
    # Keras prints `Epoch 3/3` as the epoch starts: where the earlier epochs counted after their
    # headers and this one did not, it never ran; its bar at 100/100 says it ended
    bar = "100/100 [==============================] - 5s 50ms/step - loss: 0.4"
    started = "Epoch 1/3\n" + bar + "\nEpoch 2/3\n" + bar + "\nEpoch 3/3\n"
    assert track(started).finished is False
    assert track(started + bar + "\n").finished is True
    # Keras's one line an epoch ends with under verbose=2 counts the epoch too
    assert track(started + "100/100 - 4s - 2ms/step - loss: 0.3\n").finished is True
    # headers alone all along: a header may as well close its epoch
    assert track("Epoch 1/3\nEpoch 2/3\nEpoch 3/3\n").finished is None
    # steps counted before the first header: a loop that names each epoch as it ends
    steps = "".join(f"step {n}/2\n" for n in (1, 2))
    ended = steps + "Epoch 1/3\n" + steps + "Epoch 2/3\n" + steps + "Epoch 3/3\n"
    assert track(ended).finished is True
    # a line that says more than the epoch (its loss) is the epoch's own report
    assert track("Epoch 1/3, loss 0.5\nEpoch 2/3, loss 0.4\nEpoch 3/3, loss 0.3\n").finished


def test_real_tqdm_break_at_37():
    facts = track(tqdm_output([(None, 100, 37)]))
    assert facts.stopped_at == "batch 37/100"
    assert facts.finished is False
    assert facts.position.step == 37 and facts.position.steps == 100


def test_real_tqdm_bar_that_resets_every_epoch_is_finished():
    facts = track(tqdm_output([(None, 16, None)] * 4))
    assert facts.finished is True and facts.stopped_at == "batch 16/16"


def test_real_tqdm_epoch_in_description():
    done = track(tqdm_output([(f"Epoch {e}/3", 16, None) for e in (1, 2, 3)]))
    assert done.stopped_at == "epoch 3/3, batch 16/16" and done.finished is True
    broke = track(tqdm_output([("Epoch 1/10", 16, None), ("Epoch 2/10", 16, 9)]))
    assert broke.stopped_at == "epoch 2/10, batch 9/16" and broke.finished is False


def test_bars_of_the_work_before_training_are_not_the_training_loop():
    # a label scan, a dataset map and checkpoint shards, each run to its end by real tqdm: the
    # training loop has not started, so nothing has finished
    before = track(
        tqdm_output(
            [
                ("train: Scanning 'data/train/labels' images and labels", 30, None),
                ("Map (num_proc=4)", 50, None),
                ("Loading checkpoint shards", 3, None),
            ]
        )
    )
    assert before.finished is not True and before.stopped_at is None, before
    # ... and the training bar after them is read as ever
    after = track(tqdm_output([("Map", 50, None), ("Epoch 1/2", 16, 9)]))
    assert after.stopped_at == "epoch 1/2, batch 9/16" and after.finished is False
    # ... nor are bars whose rate counts notebook cells or dataset examples, whatever their name
    out = io.StringIO()
    for desc, unit in (("Executing", "cell"), ("Casting the dataset", " examples")):
        for _ in tqdm(range(5), desc=desc, unit=unit, file=out, mininterval=0):
            pass
    assert track(out.getvalue()).stopped_at is None, out.getvalue()
    slow = "Executing:  60%|██████    | 3/5 [00:40<00:26, 13.37s/cell]\n"  # tqdm's slow rate
    assert track(slow).stopped_at is None


def test_real_nested_bars_outer_unfinished_even_though_inner_completed():
    out = io.StringIO()
    for epoch in tqdm(range(10), desc="Epochs", file=out, mininterval=0):
        for _ in tqdm(range(8), desc="train", file=out, mininterval=0, leave=False):
            pass
        if epoch == 2:
            break
    facts = track(out.getvalue())
    assert facts.position.epoch == 2 and facts.position.epochs == 10
    assert facts.finished is False


def test_validation_bar_does_not_move_training_position():
    facts = track(tqdm_output([("Epoch 1/2", 20, None), ("Validation", 5, 2)]))
    assert facts.stopped_at == "epoch 1/2, batch 20/20"


def test_keras_epochs_and_step_lines_from_a_real_log():
    facts = track(fixture("keras_input_exhausted.log"))  # Keras stopped at epoch 11/50
    assert facts.position.epoch == 11 and facts.position.epochs == 50
    assert facts.finished is False
    assert facts.losses and all(0.5 < v < 1.0 for _, v in facts.losses)


def test_keras_glued_epoch_is_not_read_as_a_new_epoch():
    facts = track(fixture("keras_glued_epoch_then_nan.log"))  # "loss: 0.2462Epoch 1/1000"
    assert facts.position.epoch == 318 and facts.position.epochs == 1000
    step, value, line = facts.first_nonfinite_loss
    assert math.isnan(value) and "loss: nan" in line.text
    assert facts.first_nonfinite_at == "epoch 309/1000, batch 99/100"


def test_lightning_bar_and_fast_dev_run():
    facts = track(fixture("lightning_fast_dev_run.log"))
    assert facts.stopped_at == "epoch 0, batch 2/2"
    assert [v for _, v in facts.losses][-1] == pytest.approx(7.57)


def test_step_and_iter_lines_and_zero_based_epochs():
    facts = track(
        "\n".join(
            f"epoch {e}/5 step {s} loss: {1 / (e + s + 1):.4f}" for e in range(5) for s in range(3)
        )
    )
    assert facts.finished is True  # 0-based: "epoch 4/5" is the last one
    facts = track(
        "\n".join(f"[epoch {e}][iter {i}/100] loss: 0.5" for e in (1, 2) for i in (0, 50))
    )
    assert facts.stopped_at == "epoch 2, iter 50/100"


def test_config_lines_are_not_progress():
    facts = track(
        "Number of epochs: 200\nbatch_size: 32\n$ python train.py --epochs 400\nClass items per "
        "Epoch:2975"
    )
    assert facts.stopped_at is None and facts.finished is None
    # a program's options as argparse or a dataclass prints them: settings, not a position
    options = track(
        "Namespace(name='gan', epoch=200, batch_size=5, n_epochs=100, step=3)\n"
        "TrainingArguments(output_dir='out', num_train_epochs=3, logging_steps=10)"
    )
    assert options.stopped_at is None and options.finished is None
    assert track("epoch=2 step=40 loss=0.5").stopped_at is not None  # a loop's own line still is


def test_hf_trainer_dicts_and_other_loss_formats():
    facts = track(
        "\n".join(
            [
                "{'loss': 1.25, 'learning_rate': 4.9e-05, 'epoch': 0.5}",
                "step 10 train_loss: 0.75",
                "Epoch 1 | Loss = 0.5 | val_loss: 9.0",
                "loss=tensor(0.25, grad_fn=<MseLossBackward0>)",
            ]
        )
    )
    assert [v for _, v in facts.losses] == [
        1.25,
        0.75,
        0.5,
        0.25,
    ]  # the validation loss is not the curve
    assert facts.first_nonfinite_loss is None
    # a loss's terms and their total, as older YOLO ports print them: the total is the curve
    terms = track(
        "\n".join(
            f"[Epoch 0/3, Batch {i}/9] [Losses: x 0.{i}, y 0.3, cls 0.2, total {i}.5]"
            for i in (1, 2, 3)
        )
    )
    assert [v for _, v in terms.losses] == [1.5, 2.5, 3.5] and terms.last_loss == 3.5


@pytest.mark.parametrize(
    "line",
    [
        "loss: nan",
        "train_loss: inf",
        "'loss': nan,",
        "loss=-inf",
        "Loss is NaN",
        "loss = tensor(nan, grad_fn=<AddBackward0>)",
        "step 3 | loss NaN",
        "[Epoch 0/30, Batch 3/90] [Losses: x nan, y 0.31, conf 0.75, cls nan, total nan]",
        "Epoch: 0003 cost= nan",  # TensorFlow 1 tutorials' `cost`
        "iter: 003, cost: -nan",
        "Loss at step 300 : nan",  # the step between the name and its value
        "train_loss[ 30 ]:  nan",
    ],
)
def test_non_finite_loss_formats(line):
    facts = track(f"step 1 loss: 0.5\nstep 2 loss: 0.4\n{line}")
    assert facts.first_nonfinite_loss is not None and not math.isfinite(
        facts.first_nonfinite_loss[1]
    )


def test_a_time_s_or_a_reader_s_cost_is_no_loss():
    facts = track("time cost: 46.9\nreader_cost: 0.00012\ndata cost 0.3\nbatch 2 time cost: 45.1")
    assert facts.loss_count == 0


def test_words_that_look_like_nan_or_inf_are_not_losses():
    facts = track(
        "INFO loss information follows\nloss scale: 65536.0 (infinite checks off)\nmaintenance done"
    )
    assert facts.first_nonfinite_loss is None and facts.first_nonfinite_metric is None


def test_divergence_and_legitimately_high_loss():
    rising = track(
        "\n".join(f"step {i} loss={2.0 * 10 ** (i / 2):.3f}" for i in range(8))
        + "\nstep 8 loss=nan"
    )
    assert rising.diverged
    high = track("\n".join(f"step {i} loss={1e7 / (i + 1):.1f}" for i in range(50)))
    assert not high.diverged
    tiny = track(
        "\n".join(f"step {i} loss={v}" for i, v in enumerate([2.0, 0.01, 1e-6, 1e-3, 5e-3]))
    )
    assert not tiny.diverged  # 1000x its minimum, but far below where it started


def test_losses_are_bounded_and_sparkline_is_short():
    facts = track("\n".join(f"step {i} loss={1 + 1 / (i + 1):.5f}" for i in range(20000)))
    assert facts.loss_count == 20000
    assert len(facts.losses) < 2 * LOSS_SAMPLES
    spark = facts.sparkline_values(40)
    assert len(spark) == 40 and spark[0] > spark[-1]
    assert json.dumps(facts.to_dict())


def test_a_nan_among_a_tqdm_bar_s_values_is_seen_whatever_its_name():
    bar = "Epoch 41/250: 100%|█████| 9375/9375 [07:11<00:00, 21.73it/s, DR=713, DF={}, G=0.4]"
    name, value, _ = track(bar.format("nan")).first_nonfinite_metric
    assert name == "DF" and math.isnan(value)
    assert track(bar.format("0.2")).first_nonfinite_metric is None
    # an infinity there may be a best value not yet set; before the rate, a name is the bar's own
    assert track(bar.replace("DR=713", "best=inf").format("0.2")).first_nonfinite_metric is None
    assert track("G=nan 37%|███▋ | 37/100 [00:01<00:02, 30.1it/s]").first_nonfinite_metric is None


def test_any_metric_printed_as_nan_is_seen_and_the_last_loss_is_the_last_printed():
    facts = track("epoch 1 loss 0.5 val/acc: 0.71\nepoch 2 loss 0.4 val/acc: nan")
    name, value, _ = facts.first_nonfinite_metric
    assert name == "val/acc" and math.isnan(value)
    facts = track("[10]\teval-rmse:0.51\ttrain-rmse:0.49\n[11]\teval-rmse:nan\ttrain-rmse:nan")
    assert facts.first_nonfinite_metric[0] == "eval-rmse"
    facts = track("step 1 train_loss_step=0.52\nstep 2 train_loss_step=nan train_loss_epoch=0.6")
    assert math.isnan(facts.first_nonfinite_loss[1]) and math.isnan(facts.last_loss)
    assert facts.epoch_losses and facts.epoch_losses[-1][1] == pytest.approx(0.6)
    assert [v for _, v in facts.losses] == [0.52]  # the epoch mean is not a step of the curve


def test_a_metric_filed_under_a_loss_group_is_not_a_loss():
    # tensorpack's monitor prints every scalar of a summary group; only the group's losses are
    # losses (a count of 33 after losses of 0.1 read as a loss had been called a divergence)
    facts = track(
        "[0119 15:39:22 @monitor.py:474] fastrcnn_losses/box_loss: 0.12002\n"
        "[0119 15:39:22 @monitor.py:474] fastrcnn_losses/label_metrics/accuracy: 0.95489\n"
        "[0119 15:39:22 @monitor.py:474] fastrcnn_losses/num_fg_label: 33.171\n"
        "[0119 15:39:22 @monitor.py:474] losses/total: 0.31"
    )
    assert [v for _, v in facts.losses] == [0.12002, 0.31]
    facts = track("fastrcnn_losses/label_metrics/accuracy: nan")
    assert facts.first_nonfinite_loss is None
    assert facts.first_nonfinite_metric[0] == "fastrcnn_losses/label_metrics/accuracy"


def test_a_status_table_s_cells_are_read_under_their_column_names():
    header = "| Trial name | status | iter | total time (s) | loss | episode_reward_mean |"
    rule = "|------------+--------+------+----------------+------+---------------------|"
    rows = [
        "| trial_0001 | RUNNING | 1 | 0.18 | 0.7 | 12.5 |",
        "| trial_0001 | RUNNING | 2 | 0.3 | 0.6 | nan |",
    ]
    facts = track("\n".join([header, rule, *rows]))
    name, value, cited = facts.first_nonfinite_metric
    assert name == "episode_reward_mean" and math.isnan(value)
    assert cited.text == rows[1]  # the row as the log holds it
    assert [v for _, v in facts.losses] == [0.7, 0.6]
    facts = track("\n".join([header, rule, "| trial_0001 | RUNNING | 2 | 0.3 | nan | 3.0 |"]))
    assert math.isnan(facts.first_nonfinite_loss[1]) and facts.first_nonfinite_metric is None
    # a row whose cells do not line up with the header, or with no header above it, names nothing
    assert track("| a | nan |").first_nonfinite_metric is None
    assert track(header + "\n| trial_0001 | nan |").first_nonfinite_metric is None


def test_a_table_laid_out_with_spaces_is_read_under_its_header_s_names():
    # fastai's results as each epoch ends (a real run: NaN from the first epoch, read completed)
    header = "epoch     train_loss  valid_loss  accuracy  time    "
    rows = [
        "0         1.250000    1.100000    0.400000  00:01     ",
        "1         nan         nan         0.500000  00:01     ",
    ]
    facts = track("\n".join([header, *rows]))
    assert [v for _, v in facts.losses] == [1.25]  # the training loss; valid_loss is an eval's
    assert math.isnan(facts.first_nonfinite_loss[1])
    assert facts.first_nonfinite_loss[2].text.strip() == rows[1].strip()  # the row as printed
    # rows of another width, or with no header naming a loss above them, name nothing
    assert track(header + "\n1  nan  00:01").first_nonfinite_loss is None
    assert track("epoch     accuracy  time\n1         nan       00:01").first_nonfinite_loss is None


def test_skorch_s_right_aligned_table_and_a_metric_s_abbreviation_are_read():
    # skorch prints its epochs as a table whose rows start with spaces (a real run's NaN losses
    # read completed); a hand-written loop's `train mse inf`
    skorch = (
        "  epoch    train_loss    valid_acc    valid_loss     dur\n"
        "-------  ------------  -----------  ------------  ------\n"
        "      1           nan       0.4750           nan  0.0772\n"
    )
    assert math.isnan(track(skorch).first_nonfinite_loss[1])
    facts = track("epoch 09 | train mse 7.6591e+35\nepoch 10 | train mse inf")
    assert facts.first_nonfinite_metric[0] == "mse"


def test_fastprogress_s_comment_is_read_as_the_smoothed_training_loss():
    # fastai's bar: the loss after the clock, unnamed (a real run grew to 1e34 before its
    # TerminateOnNaNCallback stopped it, read as a `break`)
    bars = "\r".join(
        f"Epoch {e}/10 : |{'#' * 4}{'-' * 12}| 28.57% [2/7 00:00<00:00... {v}]"
        for e, v in (
            (1, "2.3000"),
            (2, "4633104000.0000"),
            (3, "3457059283792969923225614041.0000"),
        )
    )
    facts = track(bars + "\rEpoch 4/10 : |----| 28.57% [2/7 00:00<00:00... nan]")
    assert [v for _, v in facts.losses][0] == 2.3 and facts.diverged
    assert math.isnan(facts.first_nonfinite_loss[1])
    # a count and a clock with no comment after them hold no loss
    assert not track("Epoch 1/10 : |####| 14.29% [1/7 00:00<00:00]").losses


def test_a_warning_s_source_file_and_line_number_is_no_loss():
    # torch's warning names loss.py and its line: a real run's curve started at "630"
    facts = track(
        "/venv/lib/python3.11/site-packages/torch/nn/modules/loss.py:630: UserWarning: Using a "
        "target size (torch.Size([64])) that is different to the input size\n"
        "Epoch 1/4 loss=1.5364\nEpoch 2/4 loss=1.4266"
    )
    assert [v for _, v in facts.losses] == [1.5364, 1.4266]


def test_rich_progress_bars_are_read():
    facts = track("Epoch 9/9  ━━━━━━━━━━━━━━━━━━━━━━━━ 40/40 0:00:05 • 0:00:00 7.12it/s v_num: 0")
    assert facts.position.step == 40 and facts.position.steps == 40 and facts.finished is True
    facts = track("Epoch 3/9  ━━━━━━━━━━━━╸━━━━━━━━━━━ 32/40 0:00:04 • 0:00:01 7.31it/s")
    assert facts.stopped_at == "epoch 3/9, batch 32/40" and facts.finished is False
    # drawn before its first step, the bar still blank: not the last epoch's end
    facts = track("Epoch 1/1                                   0/8 0:00:00 • -:--:-- 0.00it/s")
    assert facts.stopped_at == "epoch 1/1, batch 0/8" and facts.finished is False


def test_a_path_in_a_traceback_is_not_a_position():
    facts = track('step 3/10\n  File "/home/user/batch16/train.py", line 40, in <module>')
    assert facts.stopped_at == "step 3/10"


def test_last_progress_time_moves_only_with_progress():
    tracker = ProgressTracker()
    tracker.feed(LogLine(1, "step 1/10"))
    first = tracker.last_progress_at
    time.sleep(0.01)
    tracker.feed(LogLine(2, "some other line"))
    assert tracker.last_progress_at == first and tracker.last_output_at > first
    tracker.feed(LogLine(3, "step 2/10"))
    assert tracker.last_progress_at > first


# ---- waits ---------------------------------------------------------------------------------------


def frame(file, function, code=None, user=False):
    return Frame(file, 1, function, code, user)


def test_a_filelock_that_polls_with_sleep_is_a_lock():
    # filelock's acquire loops on time.sleep while another process holds the lock file (the
    # Hugging Face cache): the wait is the lock's, not a sleep of the program's
    stack = [
        frame("train.py", "<module>", "with FileLock('cache.lock'):", True),
        frame("/x/site-packages/filelock/_api.py", "__enter__"),
        frame("/x/site-packages/filelock/_api.py", "acquire", "time.sleep(poll_interval)"),
    ]
    kind, where = classify_wait(stack)
    assert kind == "lock" and "train.py" in where


def test_classify_wait_prefers_the_dataloader_over_the_queue_it_blocks_in():
    stack = [
        frame("train.py", "<module>", "for batch in loader:", True),
        frame("/x/site-packages/torch/utils/data/dataloader.py", "_try_get_data"),
        frame("/usr/lib/python3.11/multiprocessing/queues.py", "get"),
        frame("/usr/lib/python3.11/selectors.py", "select"),
    ]
    kind, where = classify_wait(stack)
    assert kind == "dataloader" and "train.py" in where


@pytest.mark.parametrize(
    "frames, kind",
    [
        ([frame("t.py", "f", "time.sleep(30)", True)], "sleep"),
        ([frame("ds.py", "__getitem__", "with lock:", True)], "lock"),
        ([frame("/usr/lib/python3.11/threading.py", "acquire")], "lock"),
        # an Event or Condition wait is a wait for another's work, not a lock held
        ([frame("/usr/lib/python3.11/threading.py", "wait")], "event"),
        (
            [
                frame("cb.py", "on_train_start", "token = future.result()", True),
                frame("/usr/lib/python3.11/concurrent/futures/_base.py", "result"),
                frame("/usr/lib/python3.11/threading.py", "wait"),
            ],
            "event",
        ),
        # queue.get blocks in a Condition's wait: the queue names it
        (
            [
                frame("t.py", "<module>", "xs = q.get()", True),
                frame("/usr/lib/python3.11/queue.py", "get"),
                frame("/usr/lib/python3.11/threading.py", "wait"),
            ],
            "queue",
        ),
        ([frame("t.py", "<module>", 'ok = input("Overwrite? [y/N] ")', True)], "stdin"),
        # the process group's start waits for ranks that never join (a stale WORLD_SIZE), before
        # any collective (a real run: the HF Trainer's arguments under plain python)
        (
            [
                frame("t.py", "<module>", "args = TrainingArguments(output_dir=out)", True),
                frame(
                    "/x/site-packages/torch/distributed/distributed_c10d.py", "init_process_group"
                ),
                frame("/x/site-packages/torch/distributed/rendezvous.py", "_create_c10d_store"),
            ],
            "rendezvous",
        ),
        ([frame("t.py", "train", "fcntl.flock(handle, fcntl.LOCK_EX)", True)], "lock"),
        # num_workers=0: the single-process iterator runs the Dataset in place, no worker waited for
        (
            [
                frame("t.py", "<module>", "for batch in loader:", True),
                frame("/x/site-packages/torch/utils/data/dataloader.py", "__next__"),
                frame("/x/site-packages/torch/utils/data/dataloader.py", "_next_data"),
                frame("/x/site-packages/torch/utils/data/_utils/fetch.py", "fetch"),
                frame("ds.py", "__getitem__", "while not ready(index):", True),
            ],
            "unknown",
        ),
        (
            [frame("/x/site-packages/torch/distributed/distributed_c10d.py", "all_reduce")],
            "collective",
        ),
        ([frame("/usr/lib/python3.11/threading.py", "join")], "join"),
        # DDP's backward waits in C++ for its gradient all-reduce (a real torchrun job whose other
        # rank polled forever): the backward pass, not a lock
        (
            [
                frame("t.py", "train", "loss.backward()", True),
                frame("/x/site-packages/torch/_tensor.py", "backward"),
                frame("/x/site-packages/torch/autograd/__init__.py", "backward"),
                frame("/x/site-packages/torch/autograd/graph.py", "_engine_run_backward"),
            ],
            "backward",
        ),
        # pool.map whose task a dead worker took: waits in its result's event, not on a lock
        (
            [
                frame("t.py", "<module>", "out = pool.map(augment, range(16))", True),
                frame("/usr/lib/python3.11/multiprocessing/pool.py", "map"),
                frame("/usr/lib/python3.11/multiprocessing/pool.py", "get"),
                frame("/usr/lib/python3.11/multiprocessing/pool.py", "wait"),
                frame("/usr/lib/python3.11/threading.py", "wait"),
            ],
            "pool",
        ),
        ([frame("t.py", "f", "x = x + 1", True)], "unknown"),
        # a mapping's get is no queue's: a busy loop interrupted there
        ([frame("t.py", "step", "state = self.state.get(p)", True)], "unknown"),
        ([frame("t.py", "<module>", "item = q.get(timeout=5)", True)], "queue"),
        # a download whose server never answers: the HTTP client reads the socket in C
        (
            [
                frame("t.py", "<module>", "cfg = AutoConfig.from_pretrained(name)", True),
                frame("/x/site-packages/httpcore/_sync/http11.py", "_receive_event"),
                frame(
                    "/x/site-packages/httpcore/_backends/sync.py",
                    "read",
                    "return self._sock.recv(max_bytes)",
                ),
            ],
            "io",
        ),
        # `import torch` interrupted while it loads a module under torch/distributed/
        (
            [
                frame("t.py", "<module>", "import torch", True),
                frame("<frozen importlib._bootstrap>", "_find_and_load"),
                frame(
                    "/x/site-packages/torch/distributed/tensor/_ops/_pointwise_ops.py", "<module>"
                ),
            ],
            "import",
        ),
    ],
)
def test_classify_wait_kinds(frames, kind):
    assert classify_wait(frames)[0] == kind


def facts_of(text: str) -> Evidence:
    from trainwatch.diagnostics.read.logparse import LogParser

    tracker, parser = ProgressTracker(), LogParser()
    for number, line_text in enumerate(text.splitlines(), 1):
        line = LogLine(number, line_text)
        tracker.feed(line)
        parser.feed(line)
    return Evidence(source="log", log=parser.finish(), progress=tracker.finish())


def test_interleaved_writers_are_curves_of_their_own_and_a_deduplicated_log_has_no_end():
    # Ray Tune's trials print side by side, each after its own "(trainable pid=N)" prefix: one
    # trial's loss at 1.9 after another's reached 4e-05 is no divergence
    from trainwatch.diagnostics.read.logparse import LogParser

    def tracked(text):
        tracker = ProgressTracker()
        parser = LogParser(on_line=tracker.feed)
        parser.feed_text(text)  # the capture prefix learned from the first lines, as explain does
        parser.finish()
        return tracker.finish()

    rows = []
    for epoch in range(1, 6):
        rows.append(f"(trainable pid=8502) lr=0.1 epoch {epoch}/5 loss {10.0**-epoch:.6f}")
        rows.append(f"(trainable pid=8421) lr=0.01 epoch {epoch}/5 loss {2.0 - epoch / 50:.4f}")
    interleaved = tracked("\n".join(rows) + "\n")
    assert not interleaved.diverged and interleaved.finished is True
    # Ray's deduplication shows one of the repeated lines and a count: the loops' ends are unknown
    deduplicated = tracked(
        "\n".join(rows[:2])
        + "\n(trainable pid=8502) lr=0.1 epoch 1/5 loss 0.1000 [repeated 8x across cluster]\n"
    )
    assert deduplicated.finished is None
    # ... printed late, often at the end: a copy of an earlier line, no position or loss of now
    # (BV's real runs: "stopped at epoch 1" after epoch 7)
    late = tracked(
        "\n".join(f"(trainable pid=25635) epoch {e}/8 loss {100.0 - e}" for e in range(8))
        + "\n(trainable pid=25635) epoch 1/8 loss 99.0 [repeated 2x across cluster]\ndone\n"
    )
    assert late.stopped_at == "epoch 7/8" and late.last_loss == 93.0


@pytest.mark.parametrize(
    "name, category, subtype",
    [
        ("lightning_fast_dev_run.log", "early-exit", "early-exit/fast-dev-run"),
        ("keras_input_exhausted.log", "early-exit", "early-exit/input-exhausted"),
        # NaN, then early stopping ended it "normally": the NaN is the cause
        ("keras_glued_epoch_then_nan.log", "numerical", "numerical/nan-loss"),
    ],
)
def test_quiet_stops_of_real_logs_are_judged_by_their_kind(name, category, subtype):
    verdict = classify(facts_of(fixture(name)))
    assert (verdict.category, verdict.subtype) == (category, subtype)
    assert verdict.evidence


def test_a_loss_never_finite_is_undefined_from_the_start_only_when_printed_more_than_once():
    def judged(text):
        return judge_quiet(Evidence(source="log", progress=track(text)))

    steady = judged("step 1 loss: nan\nstep 2 loss: nan\nstep 3 loss: nan")
    assert steady.signature == "quiet:nonfinite-loss-from-start"
    # one value, printed after the loop: nothing says the values before it were NaN too
    once = judged("training done\nfinal loss: nan\nsaving model")
    assert once.category == "numerical" and once.signature == "quiet:nonfinite-loss"
    assert "from the first value" not in once.summary


def test_exit_zero_unfinished_is_early_exit_and_finished_is_near_certain_completed():
    def judge(text):
        return judge_quiet(
            Evidence(source="run", exit=ExitStatus.from_returncode(0), progress=track(text))
        )

    assert judge("Epoch 3/10\n12/100 [==>....] - loss: 0.5").category == "early-exit"
    done = judge("Epoch 10/10\n100/100 [==========] - loss: 0.5")
    assert done.category == "completed" and done.confidence >= 0.95
    assert judge("hello") is None  # nothing to go on: the classifier's exit-status rule decides


def test_a_run_that_stops_cleanly_on_a_relayed_signal_is_interrupted_not_an_early_exit():
    def judge(*relayed):
        evidence = Evidence(
            source="run",
            exit=ExitStatus.from_returncode(0),
            progress=track("epoch 3/300 loss 0.5\ngraceful stop at epoch 3, checkpoint saved"),
            forwarded_signals=relayed,
        )
        return judge_quiet(evidence)

    assert judge().category == "early-exit"
    interrupted = judge("SIGINT")
    assert (interrupted.category, interrupted.subtype) == ("interrupted", "interrupted/user")
    stopped = judge("SIGTERM")
    assert (stopped.category, stopped.subtype) == ("interrupted", "interrupted/sigterm")
    assert "SIGTERM" in stopped.summary and "epoch 3/300" in stopped.summary


def test_a_saved_log_that_says_finished_after_its_loop_stopped_short_is_an_early_exit():
    # the closing line ran after the loop, so the loop was left early (a real run's `break`);
    # an early-stopping rule's words stop short of the total on purpose
    def verdict(text):
        return classify(Evidence(source="log", log=parse_text(text), progress=track(text)))

    epochs = "".join(f"Epoch {e}/10 - loss: 1.{e}\n" for e in (1, 2, 3))
    left = verdict(epochs + "Training complete.\n")
    assert (left.category, left.subtype) == ("early-exit", "early-exit/unfinished")
    stopped = verdict(epochs + "Epoch 3: early stopping\n")
    assert (stopped.category, stopped.subtype) == ("completed", "completed/early-stopping")
    whole = "".join(f"Epoch {e}/3 - loss: 1.{e}\n" for e in (1, 2, 3)) + "Training complete.\n"
    assert verdict(whole).category == "completed"


def test_messages_tell_data_from_loss():
    def category(text: str) -> str:
        return classify(Evidence(source="log", log=parse_text(text), progress=track(text))).category

    assert category("NaN encountered in data!") == "data"
    assert category("batch 12 contains NaN values") == "data"
    assert category("NaN loss in batch 5, stopping") == "numerical"
    assert category("Batch 12: Invalid loss, terminating training") == "numerical"


def test_losses_cite_their_own_segment_of_a_bar_line():
    bars = "".join(f"\r {i}%|#    | {i}/100 [00:00<00:00, 99it/s]" for i in range(60))
    facts = track(bars + "NaN encountered in data!\r" + bars + " loss=nan")
    assert len(facts.first_nonfinite_loss[2].text) < 100


def test_lightning_pads_a_non_finite_loss_on_its_bar():
    # Lightning's TQDMProgressBar pads every float to a fixed width: `nan` is shown as `nan.0`.
    bar = (
        "Epoch 4:  12%|█▎        | 1/8 [00:00<00:00, 74.92it/s, loss=inf.0]\r"
        "Epoch 4:  25%|██▌       | 2/8 [00:00<00:00, 74.74it/s, loss=nan.000]"
    )
    facts = track(bar)
    step, value, line = facts.first_nonfinite_loss
    assert value == float("inf") and "1/8" in line.text
    assert facts.first_nonfinite_at == "epoch 4, batch 1/8"
    assert facts.nonfinite_count == 2


def test_non_finite_losses_are_counted_once_per_step_and_line():
    seen = []
    tracker = ProgressTracker(lambda *args: seen.append(args[:3]))
    lines = [
        "step 1/9 loss=0.5",
        "step 2/9 loss=nan",
        "step 2/9 loss=nan\rstep 2/9 loss=nan",  # a bar redrawn at the same step
        "step 3/9 loss=nan",
    ]
    for number, text in enumerate(lines, 1):
        tracker.feed(LogLine(number, text))
    assert [count for count, _, _ in seen] == [1, 2, 3]
    assert [step for _, step, _ in seen] == [2, 2, 3]
    assert tracker.finish().nonfinite_count == 3
    assert math.isnan(tracker.last_loss)


def test_torchruns_agent_sleeping_between_checks_is_not_in_a_collective():
    site = "/env/lib/python3.11/site-packages/torch/distributed"
    frames = (
        Frame(f"{site}/run.py", 892, "main", "run(args)", False),
        Frame(f"{site}/launcher/api.py", 374, "launch_agent", "result = agent.run()", False),
        Frame(
            f"{site}/elastic/agent/server/api.py",
            923,
            "_invoke_run",
            "time.sleep(monitor_interval)",
            False,
        ),
    )
    # the agent waits on its ranks: what they wait on is the stall's kind, not its sleep
    assert classify_wait(frames)[0] == "launcher"
    rank = (Frame(f"{site}/distributed_c10d.py", 4800, "barrier", "work.wait()", False),)
    assert classify_wait(rank)[0] == "collective"
    # mp.spawn's parent joins its ranks through a pipe; a rank's own stack starts in spawn's
    # `_wrap`, which is no launcher's wait
    spawn = "/env/lib/python3.11/site-packages/torch/multiprocessing/spawn.py"
    parent = (
        Frame("/u/prog.py", 27, "<module>", "mp.spawn(main, nprocs=2)", True),
        Frame(spawn, 340, "spawn", "return start_processes(fn, args, nprocs, join, daemon)", False),
        Frame(spawn, 296, "start_processes", "while not context.join():", False),
        Frame(spawn, 160, "join", "ready = multiprocessing.connection.wait(", False),
        Frame("/usr/lib/python3.11/multiprocessing/connection.py", 947, "wait", "", False),
    )
    assert classify_wait(parent)[0] == "launcher"
    child = (
        Frame(spawn, 90, "_wrap", "fn(i, *args)", False),
        Frame("/u/prog.py", 16, "main", "with lock:", True),
        Frame("/usr/lib/python3.11/threading.py", 300, "acquire", "", False),
    )
    assert classify_wait(child)[0] == "lock"


@pytest.mark.parametrize(
    ("lines", "nonfinite", "metric"),
    [
        # PaddlePaddle prints a loss as a one-element list
        (["Total iter: 10, epoch: 0, batch: 10, loss: [nan]"], 1, None),
        # glibc prints a negative NaN as -nan (cxxnet's evaluation)
        (
            ["round        1:[    2466] 23366 sec elapsed[2]  train-logloss:-nan\ttrain-rmse:5.79"],
            1,
            None,
        ),
        # GluonCV's and LightGBM's metric names
        (
            ["[Epoch 0] Training cost: 548.135802, CrossEntropy=12.186622, SmoothL1=nan"],
            0,
            "SmoothL1",
        ),
        (["[2]     valid_0's l1: nan"], 0, "l1"),
        # an epoch's average: NaN there was NaN in its steps
        (["Epoch 0 complete! Average Training loss: nan"], 1, None),
        # rows of a step and a value, nothing else: a series that goes NaN (one row alone is not)
        (["100 2.64", "110 2.59", "120 2.73", "130 nan"], 0, "value"),
        (["4 files", "130 nan"], 0, None),
        # non-finite from the first row on: a series of them, each at a later step
        (["0: inf  nan", "10: nan nan", "20: nan nan", "30: nan nan"], 0, "value"),
        (["0: nan", "10: nan", "20: nan"], 0, None),
        (["7 nan", "3 nan", "5 nan", "1 nan"], 0, None),
        # several unnamed columns after a counter's word: one of them goes NaN
        ([f"batch: {n} 0.64 0.62 0.72" for n in range(3)] + ["batch: 3 nan 0.65 0.72"], 0, "value"),
        # a finite row after a word that is not a counter is no series
        ([f"lr {n} 0.1 0.2" for n in range(3)] + ["lr 3 nan 0.2"], 0, None),
        # lists under a padded table's header (DeepXDE's losses by term), an empty list at the end
        (
            [f"{n}000     [2.39e-03, 1.75e-05]    [2.39e-03, 1.75e-05]    []" for n in (1, 2, 3)]
            + ["4000     [nan, nan]                   [nan, nan]                   []"],
            0,
            "value",
        ),
        (["4000     [nan, 0.5]    [1.0, 2.0]    ['a']"], 0, None),
        # a scalar tensor printed as it is, and a step in brackets: a series gone NaN
        ([f"step {n} tensor(nan, grad_fn=<MulBackward0>)" for n in range(4)], 0, "value"),
        ([f"[{n}] nan" for n in range(4)], 0, "value"),
        ([f"[{n}] tensor(0.25, device='cuda:0')" for n in range(4)], 0, None),
    ],
)
def test_non_finite_losses_and_metrics_in_other_frameworks_words(lines, nonfinite, metric):
    tracker = ProgressTracker()
    for n, text in enumerate(lines, 1):
        tracker.feed(LogLine(number=n, text=text, stream="stdout"))
    facts = tracker.finish()
    assert facts.nonfinite_count == nonfinite
    found = facts.first_nonfinite_metric
    assert (found[0] if found else None) == metric


def test_a_log_that_ends_on_a_validated_epoch_was_most_often_stopped_early_on_purpose():
    # Keras' EarlyStopping without `verbose` ends fit() after an epoch's validation, silently
    epochs = "".join(
        f"Epoch {n}/200\n"
        f"450/450 [==============================] - 0s 813us/step - loss: 0.75{n} - acc: 0.54"
        f" - val_loss: 0.80{n} - val_acc: 0.44\n"
        for n in range(1, 9)
    )
    verdict = classify(facts_of(epochs))
    assert (verdict.category, verdict.subtype) == ("completed", "completed/early-stopping")
    assert "epoch 8/200" in verdict.summary
    # the next epoch begun, or an epoch's bar cut before its end: the loop was still running
    begun = classify(facts_of(epochs + "Epoch 9/200\n"))
    cut = classify(facts_of(epochs.replace("450/450 [=====", "448/450 [=====")))
    assert begun.category == cut.category == "hang"


def test_a_log_cut_inside_a_traceback_says_so_unless_its_frames_wait():
    cut = (
        "Epoch 1/10\n"
        "Traceback (most recent call last):\n"
        '  File "/home/u/train.py", line 30, in <module>\n'
        "    trainer.fit(model)\n"
        '  File "/opt/venv/lib/python3.11/site-packages/lightning/trainer.py", line 624, in fit\n'
        "    self._run(model)\n"
    )
    verdict = classify(facts_of(cut))
    assert (verdict.category, verdict.confidence) == ("unknown", 0.3)
    assert "before the exception's own line" in verdict.summary
    assert any(c.text.startswith('File "/opt/venv/lib/python3.11/') for c in verdict.evidence)
    # the same under a capture's prefix, which takes the last source line's indentation with it
    stamped = "".join(
        f"2024-05-01T00:00:0{i}Z {line.strip() if i == 5 else line}\n"
        for i, line in enumerate(cut.splitlines())
    )
    stamped_verdict = classify(facts_of(stamped))
    assert stamped_verdict.category == "unknown"
    assert "before the exception's own line" in stamped_verdict.summary
    # a stuck run stopped by hand and pasted short: its innermost frame waits on a queue
    waiting = (
        "^CTraceback (most recent call last):\n"
        '  File "train.py", line 225, in test\n'
        "    for i, data in enumerate(dataloader, 0):\n"
        '  File "/opt/lib/python2.7/multiprocessing/queues.py", line 378, in get\n'
        "    return recv()\n"
        '  File "/opt/lib/site-packages/torch/multiprocessing/queue.py", line 21, in recv\n'
        "    buf = self.recv_bytes()\n"
    )
    waited = classify(facts_of(waiting))
    assert (waited.category, waited.subtype) == ("hang", "hang/queue")
    # the `^C` echo glued to the head of the traceback it caused names the stop where the frames
    # do not wait (the run finished its work, then lingered, and was stopped)
    stopped_at_work = "done training in 162.1 seconds\n^C" + cut.split("\n", 1)[1]
    assert classify(facts_of(stopped_at_work)).subtype == "interrupted/user"
    # the same stop in a live run whose stall watcher saw no silence: a Ctrl-C at a working run
    # (its main process waits on the DataLoader's workers most of the time), not a hang
    stopped = waiting + "KeyboardInterrupt\n"
    assert classify(facts_of(stopped)).category == "hang"  # a saved log: no clock to tell
    live = replace(facts_of(stopped), source="run", exit=ExitStatus.from_returncode(-2))
    assert classify(live).category == "interrupted"


def test_a_loop_that_prints_every_nth_step_finished_when_its_next_print_would_fall_past_the_end():
    def finished(steps):
        return track("".join(f"step {n}/400 loss 0.5\n" for n in steps)).finished

    assert finished(range(0, 400, 8))  # 0 .. 392: steps 0-399, the next print would be 400
    assert not finished(range(8, 400, 8))  # 8 .. 392 counted from 1: step 400 was still to print
    assert not finished([0, 8, 16, 24, 380, 392])  # no steady stride: it stopped short
    assert not finished(range(0, 390, 8))  # 0 .. 384 is a print short


def test_keras_early_stopping_in_a_run_that_exited_0_is_completed_not_an_early_exit():
    epochs = "".join(
        f"Epoch {n}/100\n15/15 - 1s - 37ms/step - loss: 0.4{n} - val_loss: 0.4{9 - n}\n"
        for n in (1, 2, 3, 4)
    )
    text = (
        epochs
        + "Epoch 4: early stopping\nRestoring model weights from the end of the best epoch: 1.\n"
    )
    facts = facts_of(text)
    assert facts.progress.stopped_at.startswith("epoch 4/100")  # the best epoch is no position
    run = replace(facts, source="run", exit=ExitStatus.from_returncode(0))
    verdict = classify(run)
    assert (verdict.category, verdict.subtype) == ("completed", "completed/early-stopping")


def test_a_metric_gone_nan_beside_finite_losses_is_the_metric_s_own_division():
    def judge(text, status=0):
        exit = None if status is None else ExitStatus.from_returncode(status)
        source = "log" if status is None else "run"
        return judge_quiet(Evidence(source=source, exit=exit, progress=track(text)))

    healthy = "".join(
        f"Epoch {e}/3 - train_loss: 0.4{e} - val_loss: 0.5{e} - val_f1: nan\n" for e in (1, 2, 3)
    )
    # a run that exited 0 at its loop's end completed; the metric is named, not the training
    finished = judge(healthy)
    assert finished.subtype == "completed/finished" and "stayed finite" in finished.summary
    assert finished.alternatives[0].subtype == "numerical/nan-metric"
    # a saved log has no exit status: the metric's reading stands
    metric = judge(healthy, status=None)
    assert metric.subtype == "numerical/nan-metric" and "stayed finite" in metric.summary
    assert not any("learning rate" in a for a in metric.advice)
    assert any("zero_division" in a for a in metric.advice + finished.advice)
    diverging = healthy.replace("train_loss: 0.43", "train_loss: nan")
    assert judge(diverging).subtype == "numerical/nan-loss"
    # the learning rate is named where the loss went NaN after finite steps, not where it was
    # never finite from the first step on: then the loss's own arithmetic (a log of 0) or the
    # inputs made it
    assert any("learning rate" in a for a in judge(diverging).advice)
    undefined = judge("".join(f"step {s}/3 - train_loss: nan\n" for s in (1, 2, 3)))
    assert undefined.subtype == "numerical/nan-loss" and "before any update" in undefined.summary
    assert not any("learning rate" in a for a in undefined.advice)
    # an epoch's summary printed NaN from the first epoch on came after that epoch's updates: a
    # learning rate far too high makes it as well (forty-third session's real runs)
    epochs = judge("".join(f"Epoch {e}/3 - train_loss: nan - val_loss: nan\n" for e in (1, 2, 3)))
    assert epochs.subtype == "numerical/nan-loss" and "before any update" not in epochs.summary
    assert any("learning rate" in a for a in epochs.advice)


def test_gradient_norms_non_finite_to_the_end_are_a_numerical_failure_whatever_the_loss_says():
    # Hugging Face's Trainer logs a non-finite loss as the mean of the finite ones before it
    # (logging_nan_inf_filter): here as '0', while the gradient norm tells the truth
    def hf(norms):
        rows = "".join(
            f"{{'loss': '{'2.3' if n == '3.1' else '0'}', 'grad_norm': '{n}', "
            f"'learning_rate': '5e-05', 'epoch': '{i / 8}'}}\n"
            for i, n in enumerate(norms, 1)
        )
        return judge_quiet(
            Evidence(source="run", exit=ExitStatus.from_returncode(0), progress=track(rows))
        )

    blown = hf(["3.1", "3.1", "inf", "nan", "nan", "nan"])
    assert blown.subtype == "numerical/nan-grad" and "logging_nan_inf_filter" in blown.summary
    assert "'grad_norm': 'inf'" in blown.evidence[0].text  # where they first went non-finite
    # a mixed-precision loss scaler skipping a few overflowing steps, then going on: the norms
    # did not stay non-finite (what the first one printed means is the metric rule's to say)
    assert hf(["inf", "inf", "3.1", "3.1", "3.1"]).subtype != "numerical/nan-grad"
    assert track("step 9 gnorm=nan\nstep 10 gnorm=nan\n").nonfinite_grad_norm is not None
    assert track("step 9 gnorm=nan\n").nonfinite_grad_norm is None  # one alone: a skipped step
    # a research loop's own print, the value after a space: the weights went NaN, the loss did not
    spaced = "step 30 loss 6.2478 grad_norm nan\nstep 35 loss 6.4441 grad_norm nan\n"
    assert track(spaced).nonfinite_grad_norm is not None


def test_a_traceback_s_source_lines_are_code_not_the_loop_s_position():
    text = (
        "step 10 loss 0.61\nstep 20 loss 0.52\n"
        "Traceback (most recent call last):\n"
        '  File "train.py", line 10, in <module>\n'
        "    fit(model, steps=5000)\n"
        '  File "train.py", line 6, in fit\n'
        "    for epoch in range(epochs): run_epoch(step=3)\n"
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (32x8 and 16x32)\n"
    )
    assert track(text).stopped_at == "step 20"
    # nor is the exception's own line, whatever counters its message names
    said = "epoch 3/5 step 3/10 loss nan\nRuntimeError: loss is nan at step 23\n"
    assert track(said).stopped_at == "epoch 3/5, step 3/10"
    # prefixed as torchrun tees it, the same
    ranked = "".join(f"[rank0]: {line}\n" for line in text.splitlines())
    from trainwatch.diagnostics.postmortem import read_log

    assert read_log(io.BytesIO(ranked.encode()), None)[1].stopped_at == "step 20"


def test_an_inner_bar_a_fast_loop_cleared_at_0_is_no_unfinished_epoch():
    # tqdm draws at most every 0.1 s: a fast inner loop (`leave=False`) is drawn at 0/20, then
    # cleared; the outer bar's 4/4 and exit 0 are the run's end (as real tqdm wrote it)
    epoch = (
        "\r\nepochs:   0%|          | 0/4 [00:00<?, ?it/s]"
        "\r\ntrain:   0%|          | 0/20 [00:00<?, ?it/s]\x1b[A"
        "\r\n                                             \x1b[A"
        "\r                                             \r\nepoch {n}: loss 0.0001\n"
    )
    text = "".join(epoch.format(n=n) for n in range(4))
    text += "epochs: 100%|██████████| 4/4 [00:00<00:00, 117.65it/s]\nfinal eval mse: 3.5e-06\n"
    facts = track(text)
    assert facts.finished is True and facts.stopped_at == "epoch 4/4"
    # the same inner bar drawn part-way, then erased: its last frame is no end (tqdm draws at
    # most every 0.1 s, and erases a `leave=False` bar however its loop ended)
    part_way = text.replace("0/20 [", "7/20 [")
    assert track(part_way).finished is True
    # drawn part-way and left drawn: a loop that did not reach its end
    assert track(part_way.replace(" " * 45, "")).finished is False


def test_the_loss_of_a_run_s_summary_is_its_mean_not_a_step_s():
    # the Hugging Face Trainer's end-of-training summary of a resumed run that trained nothing
    summary = (
        "{'train_runtime': '0.0001', 'train_samples_per_second': '0', "
        "'train_steps_per_second': '0', 'train_loss': '0', 'epoch': '2'}\n"
    )
    facts = track(summary)
    assert facts.loss_count == 0 and facts.epoch_losses == ((0, 0.0),), facts
    assert track("step 3 train_loss 0.52\n").loss_count == 1


def test_a_trainer_that_returned_before_its_planned_steps_was_stopped_by_a_callback():
    # Hugging Face's EarlyStoppingCallback prints nothing: the bar stops at 56/240, then the
    # Trainer's own end-of-training summary (transformers 5 quotes its numbers)
    bar = " 23%|██▎       | 56/240 [00:00<00:01, 126.73it/s]\n"
    summary = (
        "{'train_runtime': '0.4475', 'train_samples_per_second': '4005', "
        "'train_steps_per_second': '125.1', 'train_loss': '0.8056', 'epoch': '7'}\n"
    )

    def judged(text):
        return judge_quiet(
            Evidence(
                source="run",
                exit=ExitStatus.from_returncode(0),
                progress=track(text),
                log=parse_text(text),
            )
        )

    stopped = judged(bar + summary)
    assert stopped.subtype == "completed/early-stopping" and stopped.confidence == 0.6
    assert stopped.alternatives[0].category == "early-exit"
    assert judged(bar).category == "early-exit"  # no summary: the loop was left


def test_a_loss_that_never_moved_makes_a_finished_run_doubtful():
    def judged(losses):
        text = "".join(f"Epoch [{e}/8] Loss: {v}\n" for e, v in enumerate(losses, 1))
        return classify(Evidence(source="log", log=parse_text(text), progress=track(text)))

    never = judged(["7.7019"] * 8)  # no optimizer.step(): the same loss every epoch
    assert (never.subtype, never.confidence) == ("completed/loss-never-moved", 0.5)
    assert never.alternatives[0].category == "code"
    # 0 throughout is a run that converged before its first print as well: not a flat loss
    assert judged(["0.0000"] * 8).subtype != "completed/loss-never-moved"
    learnt = judged(["0.9", "0.5", "0.2", "0.0000", "0.0000", "0.0000", "0.0000", "0.0000"])
    assert learnt.subtype != "completed/loss-never-moved"  # converged to 0: it did learn
    assert judged(["0.9", "0.8", "0.7", "0.6", "0.5", "0.4", "0.3", "0.2"]).confidence > 0.5
    came_down = judged(["0.9", "0.5"] + ["0.1234"] * 6)  # it fell to a value and stayed: converged
    assert came_down.subtype != "completed/loss-never-moved"
    # the program's own words of a good end do not hide it (a real run: "Training finished")
    said = "".join(f"Epoch [{e}/8] Loss: 7.7019\n" for e in range(1, 9)) + "Training finished\n"
    finished = classify(Evidence(source="log", log=parse_text(said), progress=track(said)))
    assert finished.subtype == "completed/loss-never-moved", finished
    assert any(c.text == "Training finished" for c in finished.evidence)


def test_a_bar_erased_at_its_end_is_no_loop_left_short():
    # real tqdm with `leave=False`: it draws every 32nd item and erases the bar at its end (its
    # width of spaces), so the last frame drawn, 288/300, is not where the loop stopped
    out = io.StringIO()
    for epoch in range(1, 4):
        for _ in tqdm(
            range(300), desc=f"epoch {epoch}", leave=False, file=out, miniters=32, mininterval=0
        ):
            pass
        tqdm.write(f"epoch {epoch}: loss=0.{9 - epoch}", file=out)
    out.write("done: saved final.pt\n")
    text = out.getvalue()
    assert "288/300" in text and "300/300" not in text
    assert track(text).finished is None  # a live run's reading: no end seen, none missed
    run = replace(facts_of(text), source="run", exit=ExitStatus.from_returncode(0))
    assert classify(run).category == "completed"
    # the same bar left drawn at 288/300 (no erasing frame): its loop was left short
    kept = text.replace(" " * 20, "")
    assert track(kept).finished is False
    # a saved log: the parser keeps a line's last frame, the tracker counts them all
    from trainwatch.diagnostics.knowledge import load_knowledge
    from trainwatch.diagnostics.postmortem import explain_logs

    knowledge = load_knowledge(include_user=False)
    saved = explain_logs(["-"], knowledge, stdin=io.BytesIO(text.encode()))
    assert saved.evidence.progress.stopped_at == "epoch 3, batch 288/300"
    # under an outer bar of the epochs, which tqdm leaves drawn at its end: the loop finished
    out = io.StringIO()
    for _ in tqdm(range(3), desc="epochs", file=out, mininterval=0):
        for _ in tqdm(range(300), leave=False, file=out, miniters=32, mininterval=0):
            pass
    nested = explain_logs(["-"], knowledge, stdin=io.BytesIO(out.getvalue().encode()))
    assert nested.evidence.progress.finished is True
    assert nested.verdict.category == "completed", nested.verdict


def test_a_line_naming_where_the_best_result_was_is_no_position():
    # a patience loop's summary after it stopped at epoch 4 (a real run)
    epochs = "".join(f"Epoch {n}/100 train_loss=0.6{9 - n} val_loss=0.7{n}\n" for n in (1, 2, 3, 4))
    ended = epochs + "Best val_loss=0.7149 at epoch 1; weights in best.pt\n"
    assert track(ended).stopped_at == "epoch 4/100"
    # the loop's own line that carries a best so far is one
    assert track(epochs + "Epoch 5/100 best_acc=0.91\n").stopped_at == "epoch 5/100"


def test_a_finished_run_whose_loss_ended_far_above_its_lowest_is_finished_less_surely():
    # no zero_grad: the loss fell from 5.8 to 3.3, then rose to 21, and the run exited 0 (real
    # run of the forty-third session); a loss that came down and stayed is finished as ever
    def judged(losses):
        text = "".join(f"Epoch {e}/{len(losses)} loss {v}\n" for e, v in enumerate(losses, 1))
        return judge_quiet(
            Evidence(source="run", exit=ExitStatus.from_returncode(0), progress=track(text))
        )

    rose = judged([5.8, 4.1, 3.3, 6.0, 11.5, 21.0])
    assert (rose.category, rose.confidence) == ("completed", 0.7)
    assert "ended at 21, 6 times its lowest (3.3)" in rose.summary
    assert rose.alternatives[0].subtype == "numerical/divergence"
    assert any("zero_grad" in a for a in rose.advice)
    fell = judged([5.8, 4.1, 3.3, 3.0, 2.9, 2.8])
    assert (fell.category, fell.confidence) == ("completed", 0.97)
    # up from a loss that started low and stayed under 3 times its lowest: no such note
    assert judged([1.0, 0.8, 0.9, 1.2, 1.5, 1.9]).confidence == 0.97


def test_a_checkpoint_loaded_from_a_position_is_not_where_the_loop_stands():
    # the counters of a load or a resume are the checkpoint's (a real run failed loading its
    # weights and read "stopped at epoch 20")
    loaded = track("loading pretrained weights from epoch 20\n")
    assert loaded is None or loaded.stopped_at is None
    trained = "Epoch 3/10 loss 0.52\nRestored checkpoint at step 3000 for evaluation\n"
    assert track(trained).stopped_at == "epoch 3/10"
    # the loop's own lines after a resume are read as ever
    assert track("Resuming from epoch 12\nEpoch 13/20 loss 0.4\n").stopped_at == "epoch 13/20"


def test_a_name_no_metric_word_knows_counts_once_printed_nan_on_three_lines():
    # real runs: a hand-written `rmsle: nan` every epoch, and `val_macro_recall nan` written with
    # a space alone, were read as a run that finished well
    lines = "".join(f"epoch {e}/9 rmsle: nan\n" for e in range(1, 4))
    name, value, cited = track(lines).first_nonfinite_metric
    assert (name, cited.text) == ("rmsle", "epoch 1/9 rmsle: nan")  # where it was first NaN
    assert track("epoch 1/9 rmsle: nan\nepoch 2/9 rmsle: nan\n").first_nonfinite_metric is None
    spaced = "".join(f"epoch {e} train_loss 0.{9 - e} val_macro_recall nan\n" for e in (1, 2))
    assert track(spaced).first_nonfinite_metric[0] == "val_macro_recall"  # `recall`: known
    # an Inf alone, however often, is a setting's (LightGBM's `best gain: -inf`), and prose
    # before `nan` is no name
    gain = "[LightGBM] [Warning] No further splits with positive gain, best gain: -inf\n" * 5
    assert track(gain) is None or track(gain).first_nonfinite_metric is None
    prose = "the check found it is not nan\n" * 4
    assert track(prose) is None or track(prose).first_nonfinite_metric is None


def test_a_line_that_lists_settings_is_no_position():
    # a real run's `Config: lr=0.05 epochs=20 batch=32` read as "stopped at batch 32"
    settings = track("Config: lr=0.05 epochs=20 batch=32\n")
    assert settings is None or settings.stopped_at is None
    assert track("Config: lr=0.05\nEpoch 3/10 batch 32/100 loss 0.5\n").stopped_at == (
        "epoch 3/10, batch 32/100"
    )


def test_when_the_loop_reached_its_total_is_kept_for_the_work_lost_after_it():
    # a final evaluation or export after the last epoch is no training a checkpoint could keep
    now = [100.0]
    tracker = ProgressTracker(clock=lambda: now[0])
    for epoch, at in ((1, 101.0), (2, 105.0), (3, 109.0)):
        now[0] = at
        tracker.feed(LogLine(epoch, f"Epoch {epoch}/3 loss={1 / epoch:.3f}"))
    now[0] = 140.0
    tracker.feed(LogLine(4, "evaluating on the test set"))
    assert tracker.finish().finished_read_at == 109.0
    unfinished = ProgressTracker(clock=lambda: now[0])
    unfinished.feed(LogLine(1, "Epoch 1/3 loss=1.0"))
    assert unfinished.finish().finished_read_at is None


def test_a_plural_count_without_a_total_is_no_position():
    # a header's `scheduler steps 500` (a real run) counts steps, it is no step reached
    for text, said in (
        ("scheduler steps 500", None),
        ("steps 3/10 loss 0.4", "step 3/10"),
        ("step 5 loss 0.3", "step 5"),
    ):
        tracker = ProgressTracker()
        tracker.feed(LogLine(1, text))
        assert tracker.finish().stopped_at == said, text


def test_a_ranking_metric_at_a_cut_off_is_a_metric_whose_nan_is_seen():
    # recommenders and retrieval write a metric at a cut-off `recall@10`, `ndcg@5`: a real run's
    # `recall@5=nan` every epoch (users with no positives) was read as a clean finish
    verdict = classify(facts_of(fixture("recall_at_k_nan.log")))
    assert verdict.subtype == "numerical/nan-metric", verdict
    spaced = track("epoch 1 loss 0.52 ndcg@10 nan\nepoch 2 loss 0.50 ndcg@10 nan\n")
    assert spaced.first_nonfinite_metric is not None
    assert spaced.first_nonfinite_metric[0] == "ndcg@10"
