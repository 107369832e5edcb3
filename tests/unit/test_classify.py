"""The classifier: initiating failure over cascades, kill rules, progress rules, culprit,
fallbacks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from trainwatch.diagnostics.evidence import Evidence, ExitStatus, LogLine
from trainwatch.diagnostics.judge.classify import classify
from trainwatch.diagnostics.read.logparse import parse_text
from trainwatch.diagnostics.read.progress import ProgressTracker
from trainwatch.diagnostics.verdict import Cited


def judge(text: str, exit: ExitStatus | None = None, memory=None, progress=None):
    return classify(
        Evidence(source="log", log=parse_text(text), exit=exit, memory=memory, progress=progress)
    )


def test_cuda_oom_first_hand_is_confident_with_culprit():
    v = judge(
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 42, in step\n    out '
        "= model(x)\n"
        '  File "/opt/venv/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1, in f\n'
        "    return g()\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.\n"
    )
    assert (v.category, v.subtype, v.signature) == ("oom", "oom/gpu", "cuda-out-of-memory")
    assert v.confidence >= 0.9
    assert (v.culprit.file, v.culprit.line, v.culprit.code) == (
        "/home/u/train.py",
        42,
        "out = model(x)",
    )
    assert v.evidence[0].kind == "exception" and "CUDA out of memory" in v.evidence[0].text


def test_worker_exception_wins_over_dataloader_wrapper():
    text = (
        'Traceback (most recent call last):\n  File "train.py", line 9, in <module>\n    for b in '
        "dl:\n"
        "RuntimeError: Caught RuntimeError in DataLoader worker process 0.\n"
        'Original Traceback (most recent call last):\n  File "/home/u/ds.py", line 5, in '
        "__getitem__\n"
        "    return torch.stack(xs)\n"
        "RuntimeError: stack expects each tensor to be equal size, but got [3, 4] at entry 0 and "
        "[3, 5] at "
        "entry 1\n"
    )
    v = judge(text)
    assert v.subtype == "data/shape-mismatch"
    assert any("Caught RuntimeError" in c.text for c in v.cascade)
    assert v.culprit.function == "__getitem__"


def test_key_error_in_getitem_is_data_with_code_alternative():
    v = judge(
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 3, in <module>\n    x '
        "= ds[0]\n"
        '  File "/home/u/ds.py", line 12, in __getitem__\n    return self.rows[i]["label"]\n'
        "KeyError: 'label'\n"
    )
    assert v.category == "data" and [a.category for a in v.alternatives][:1] == ["code"]
    v = judge(
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 3, in main\n    x = '
        "y\n"
        "NameError: name 'y' is not defined\n"
    )
    assert (v.category, v.subtype) == ("code", "code/python-error")


def test_a_plain_error_in_a_function_that_reads_the_data_is_data_first():
    v = judge(
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 30, in <module>\n'
        "    ds = load_dataset(args.path)\n"
        '  File "/home/u/util.py", line 12, in load_dataset\n'
        "    assert all(s == shapes[0] for s in shapes)\n"
        "AssertionError\n"
    )
    assert (v.category, v.subtype) == ("data", "data/sample-error")
    assert [a.category for a in v.alternatives][:1] == ["code"]
    v = judge(  # a detector's targets are built from the labels: a box off the grid is theirs
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 30, in <module>\n'
        "    loss = compute_loss(pred, targets)\n"
        '  File "/home/u/utils/loss.py", line 88, in build_targets\n'
        "    tconf[b, a, gj, gi] = 1\n"
        "IndexError: index 3810 is out of bounds for dimension 2 with size 15\n"
    )
    assert (v.category, v.subtype) == ("data", "data/sample-error")
    v = judge(  # a `data_utils` module holds a project's dataset and collate classes (VITS)
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 30, in <module>\n'
        "    for x, y in loader:\n"
        '  File "/home/u/data_utils.py", line 125, in <listcomp>\n'
        "    torch.LongTensor([x[1].size(1) for x in batch]),\n"
        "IndexError: Dimension out of range (expected to be in range of [-1, 0], but got 1)\n"
    )
    assert (v.category, v.subtype) == ("data", "data/sample-error")
    v = judge(  # the frames of the program's model code are not the data's
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 30, in <module>\n'
        "    model = build_model(cfg)\n"
        '  File "/home/u/model.py", line 12, in build_model\n    return MODELS[cfg.name]\n'
        "KeyError: 'resnet'\n"
    )
    assert (v.category, v.subtype) == ("code", "code/python-error")
    v = judge(  # a call that does not fit its function is no sample's, even in the data folder
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 27, in train\n'
        "    loaders = make_data_loader(cfg)\n"
        '  File "/home/u/data/transforms/build.py", line 17, in build_transforms\n'
        "    T.RandomHorizontalFlip(p=cfg.INPUT.PROB),\n"
        "TypeError: object() takes no parameters\n"
    )
    assert (v.category, v.subtype) == ("code", "code/python-error")
    v = judge(  # nor is a name the data package's own module never defined, met on import
        'Traceback (most recent call last):\n  File "train.py", line 14, in <module>\n'
        "    from util.datasets import get_dataset\n"
        '  File "/home/u/util/datasets/__init__.py", line 21, in <module>\n'
        "    'coco': CocoSegmentation,\n"
        "NameError: name 'CocoSegmentation' is not defined\n"
    )
    assert (v.category, v.subtype) == ("code", "code/python-error")


def test_the_sigterm_spawn_sends_the_other_processes_after_one_failed_is_no_stop_from_outside():
    # a real ddp_spawn run (Lightning, two CPU processes): process 1 raised; spawn terminated
    # process 0, whose Lightning said it received SIGTERM; the cause is process 1's own error, and
    # its KeyError inside Lightning's `__getattr__` was the program's own attribute lookup
    lib = "/env/site-packages"
    v = judge(
        f"W1206 13:50:24.564000 16237 {lib}/torch/multiprocessing/spawn.py:165] Terminating process"
        " 16249 via signal SIGTERM\n"
        "[rank: 0] Received SIGTERM: 15\n"
        "Traceback (most recent call last):\n"
        '  File "/home/u/train.py", line 13, in <module>\n'
        "    trainer.fit(R(), tr, va)\n"
        f'  File "{lib}/torch/multiprocessing/spawn.py", line 211, in join\n'
        "    raise ProcessRaisedException(msg, error_index, failed_process.pid)\n"
        "torch.multiprocessing.spawn.ProcessRaisedException: \n\n"
        "-- Process 1 terminated with the following error:\n"
        "Traceback (most recent call last):\n"
        f'  File "{lib}/lightning/fabric/utilities/data.py", line 488, in __getattr__\n'
        "    return self[key]\n"
        "KeyError: 'warmup'\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
        "Traceback (most recent call last):\n"
        f'  File "{lib}/torch/multiprocessing/spawn.py", line 87, in _wrap\n'
        "    fn(i, *args)\n"
        '  File "/home/u/train.py", line 8, in training_step\n'
        "    scale = min(1.0, self.global_step / self.hparams.warmup)\n"
        f'  File "{lib}/lightning/fabric/utilities/data.py", line 490, in __getattr__\n'
        "    raise AttributeError(f\"'{type(self).__name__}' object has no attribute\")\n"
        "AttributeError: 'AttributeDict' object has no attribute 'warmup'\n"
    )
    assert (v.category, v.subtype) == ("code", "code/python-error"), v
    assert v.culprit is not None and v.culprit.line == 8


def test_an_error_in_the_collate_function_names_the_collation_not_the_script_s_top_level():
    # torch's default_collate meeting a sample the dataset returned as None, under the script's
    # own loop: the summary says where the data was being read, never "in <module>"
    v = judge(
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 9, in <module>\n'
        "    for step, (x, y) in enumerate(loader):\n"
        '  File "/env/site-packages/torch/utils/data/_utils/collate.py", line 207, in collate\n'
        "    if not all(len(elem) == elem_size for elem in it):\n"
        "TypeError: object of type 'NoneType' has no len()\n"
    )
    assert (v.category, v.subtype) == ("data", "data/sample-error")
    assert "(in collate, which puts a batch's samples together)" in v.summary
    assert "<module>" not in v.summary


def test_shapes_that_do_not_fit_while_reading_images_or_in_a_data_module_are_data_first():
    # a code phrase family is as generic as a plain error: where the data is read, a size that
    # does not fit is the sample's first (an image of another size than the others)
    v = judge(
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 30, in <module>\n'
        "    x = read_images(folder)\n"
        '  File "/home/u/io.py", line 12, in read_images\n'
        "    out.append(img.reshape(1, W * H))\n"
        "ValueError: cannot reshape array of size 30000 into shape (1,40000)\n"
    )
    assert (v.category, v.subtype) == ("data", "data/sample-error")
    v = judge(  # Lightning's name for the code that prepares the data
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 30, in <module>\n'
        "    dm = make_data_module(cfg)\n"
        '  File "/home/u/train.py", line 12, in make_data_module\n'
        "    text = rows[0]['text']\n"
        "KeyError: 'text'\n"
    )
    assert (v.category, v.subtype) == ("data", "data/sample-error")
    v = judge(  # the same size error in the model's own code stays the code's
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 30, in <module>\n'
        "    y = model(x)\n"
        '  File "/home/u/model.py", line 12, in forward\n'
        "    return h.reshape(1, W * H)\n"
        "ValueError: cannot reshape array of size 30000 into shape (1,40000)\n"
    )
    assert v.category == "code"


def test_a_code_error_about_an_empty_tensor_is_data_first():
    def slicing_mel_of(frames: int):
        return judge(
            'Traceback (most recent call last):\n  File "/home/u/train.py", line 30, in <module>\n'
            "    loss = model.compute_loss(x, mel)\n"
            '  File "/home/u/model.py", line 82, in compute_loss\n'
            "    ret[i] = mel[i, :, start:end]\n"
            "RuntimeError: The expanded size of the tensor (200) must match the existing size "
            f"({frames}) at non-singleton dimension 1.  Target sizes: [100, 200].  Tensor sizes: "
            f"[100, {frames}]\n"
        )

    # a size of 0 in a shape error: the sample held nothing (an audio clip shorter than a frame)
    v = slicing_mel_of(0)
    assert (v.category, v.subtype) == ("data", "data/empty-sample")
    assert [a.category for a in v.alternatives][:1] == ["code"]
    # the same error between sizes that are not empty stays the code's
    assert slicing_mel_of(10).category == "code"


def test_an_unexplained_error_about_an_empty_tensor_is_data_at_the_word_layer_s_level():
    v = judge(  # no signature knows the reduction's words: the size of 0 still says empty
        'Traceback (most recent call last):\n  File "/home/u/losses.py", line 124, in bce\n'
        "    assert label[label != ignore_index].max() <= 1\n"
        "RuntimeError: max(): Expected reduction dim to be specified for input.numel() == 0. "
        "Specify the reduction dim with the 'dim' argument.\n"
    )
    assert (v.category, v.subtype, v.confidence) == ("data", "data/empty-sample", 0.5)


def test_a_tensor_built_from_a_nested_list_with_an_empty_one_is_an_empty_sample():
    def building(size: int):
        return judge(
            'Traceback (most recent call last):\n  File "seq2seq.py", line 193, in next\n'
            "    inputs = Variable(torch.LongTensor(inputs)).transpose(1, 0).contiguous()\n"
            f"RuntimeError: given sequence has an invalid size of dimension 2: {size}\n"
        )

    assert building(0).subtype == "data/empty-sample"
    assert building(7).subtype != "data/empty-sample"


def test_a_plain_error_under_the_programs_sample_loading_or_data_folder_is_data_first():
    # `__getitem__` a call above the frame that raised (ssd.pytorch's `pull_item`)
    v = judge(
        'Traceback (most recent call last):\n  File "/home/u/proj/voc.py", line 112, in '
        "__getitem__\n    im, gt = self.pull_item(index)\n"
        '  File "/home/u/proj/voc.py", line 131, in pull_item\n'
        "    img, boxes = self.transform(img, target[:, :4])\n"
        "IndexError: too many indices for array\n"
    )
    assert (v.category, v.subtype) == ("data", "data/sample-error")
    # raised in a module of the program's `datasets/` folder (an augmentation reading a sample)
    v = judge(
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 9, in <module>\n'
        "    main()\n"
        '  File "/home/u/pcdet/datasets/augmentor/sampler.py", line 123, in add_boxes\n'
        "    planes = data_dict['road_plane']\n"
        "KeyError: 'road_plane'\n"
    )
    assert (v.category, v.subtype) == ("data", "data/sample-error")
    v = judge(  # a disk mounted as `data` holds whole projects: its name says nothing of the code
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 9, in <module>\n'
        "    main()\n"
        '  File "/media/u/data/TTS/wavegan/models/gan.py", line 145, in forward\n'
        "    assert c.size(-1) == x.size(-1)\n"
        "AssertionError\n"
    )
    assert (v.category, v.subtype) == ("code", "code/python-error")
    v = judge(  # a module of the program's own elsewhere stays its code
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 9, in <module>\n'
        "    main()\n"
        '  File "/home/u/pcdet/models/head.py", line 123, in forward\n'
        "    planes = batch['road_plane']\n"
        "KeyError: 'road_plane'\n"
    )
    assert (v.category, v.subtype) == ("code", "code/python-error")


def test_a_plain_error_with_no_frame_of_the_program_is_the_package_first():
    raised_inside = (
        '  File "/opt/venv/lib/python3.10/site-packages/tool/agent.py", line 9, in run\n'
        "    args = build(command)\n"
        '  File "/opt/venv/lib/python3.10/site-packages/tool/agent.py", line 40, in build\n'
        '    value = command["args"][key]["value"]\n'
        "KeyError: 'value'\n"
    )
    v = judge("Traceback (most recent call last):\n" + raised_inside)
    assert (v.category, v.subtype) == ("library", "library/package-error")
    assert [a.category for a in v.alternatives][:1] == ["code"] and v.confidence <= 0.6
    v = judge(  # a frame of the program's own on the way: its call may be the fault
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 3, in <module>\n'
        "    agent.run(cmd)\n" + raised_inside
    )
    assert (v.category, v.subtype) == ("code", "code/python-error")
    for statement in (
        "from tool.agent import *",
        "import tool.agent as agent",
        "agent = tool.Agent.from_pretrained(args.base_model,",
    ):
        v = judge(  # the program's own frame only imported it or loaded files: the package's
            'Traceback (most recent call last):\n  File "/home/u/train.py", line 3, in <module>\n'
            f"    {statement}\n" + raised_inside
        )
        assert (v.category, v.subtype) == ("library", "library/package-error"), statement
    v = judge(  # raised in a compiled extension (its Cython source) is raised in the package
        "    corpus = GoldCorpus(train_path, dev_path, limit=n_examples)\n"
        '  File "gold.pyx", line 112, in spacy.gold.GoldCorpus.__init__\n'
        "KeyError: 1\n"
    )
    assert (v.category, v.subtype) == ("library", "library/package-error")


def test_peer_cascade_loses_to_the_initiating_crash():
    text = (
        '[rank1]: Traceback (most recent call last):\n[rank1]:   File "train.py", line 5, in '
        "<module>\n"
        "[rank1]: RuntimeError: Expected all tensors to be on the same device, but found at least "
        "two devices\n"
        "[rank0]: RuntimeError: [../third_party/gloo/gloo/transport/tcp/pair.cc:598] Connection "
        "closed by "
        "peer [10.0.0.2]:38317\n"
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n"
    )
    v = judge(text)
    assert v.subtype == "code/device-mismatch"
    assert len(v.cascade) >= 1


def test_label_out_of_range_subtype_from_device_assert():
    v = judge(
        "Loss.cu:242: nll_loss_forward_reduce_cuda_kernel_2d: block: [0,0,0], thread: [5,0,0] "
        "Assertion "
        '`t >= 0 && t < n_classes` failed.\nTraceback (most recent call last):\n  File "t.py", '
        "line 1, in "
        "<module>\nRuntimeError: CUDA error: device-side assert triggered\n"
    )
    assert v.subtype == "data/label-out-of-range"


def test_an_assert_line_that_raised_a_cuda_error_is_not_read_as_the_assert():
    # DETR's box check reads the GPU's result, so a kernel's earlier device-side assert surfaces
    # there: the signature of the AssertionError itself (diverged boxes) must not answer for it
    v = judge(
        "Traceback (most recent call last):\n"
        '  File "/home/u/detr/util/box_ops.py", line 51, in generalized_box_iou\n'
        "    assert (boxes1[:, 2:] >= boxes1[:, :2]).all()\n"
        "RuntimeError: CUDA error: device-side assert triggered\n"
    )
    assert v.signature == "cuda-device-side-assert" and v.category == "data"
    assert all(a.category != "numerical" for a in v.alternatives)


@dataclass(frozen=True)
class Memory:
    """The monitor's MemoryFacts as the classifier reads it: `oom_corroboration()` and samples."""

    corroboration: tuple[Cited, ...] = ()
    samples: tuple = ()  # what a time limiter among the run's processes is looked for in
    tail: tuple = ()

    def oom_corroboration(self, extra_pids=()):
        return self.corroboration

    def to_dict(self):
        return {}


KILLED = ExitStatus.from_returncode(-9)


def test_bare_killed_from_a_log_is_modest_oom():
    v = judge("step 10 loss 0.3\nKilled\n")
    assert (v.category, v.subtype) == ("oom", "oom/host") and 0.45 <= v.confidence <= 0.65


def test_kernel_oom_line_is_confident():
    v = judge("Killed\n[1234.5] Out of memory: Killed process 4242 (python) total-vm:3124kB\n")
    assert v.category == "oom" and v.confidence >= 0.9


def test_sigkill_with_live_evidence_but_no_corroboration_is_not_oom():
    v = judge("step 10 loss 0.3\n", exit=KILLED, memory=Memory())
    assert v.category == "unknown" and any(a.category == "oom" for a in v.alternatives)


def test_a_dead_notebook_kernel_or_ray_worker_is_oom_only_where_memory_says_so():
    # papermill's DeadKernelError after the kernel died of RLIMIT_CPU's SIGXCPU: memory watched,
    # no pressure (BN's real run read oom/host 0.5)
    died = (
        '  File "/venv/lib/python3.11/site-packages/nbclient/client.py", line 1009, in '
        "async_execute_cell\n"
        '    raise DeadKernelError("Kernel died") from None\n'
        "nbclient.exceptions.DeadKernelError: Kernel died\n"
    )
    failed = ExitStatus.from_returncode(1)
    assert judge(died).subtype == "oom/host"  # a saved log: the likeliest reading stands
    watched = judge(died, exit=failed, memory=Memory())
    assert watched.category == "unknown" and watched.alternatives[0].category == "oom"
    counter = Cited("cgroup", "oom_kill 0 -> 1", "memory.events")
    assert judge(died, exit=failed, memory=Memory((counter,))).category == "oom"
    # so is a Ray worker that vanished (BV's real runs: an actor's own `os._exit(1)`)
    vanished = (
        "(raylet) A worker died or was killed while executing a task by an unexpected system "
        "error. To troubleshoot the problem, check the logs for the dead worker.\n"
        "ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.\n"
    )
    assert judge(vanished).subtype == "oom/host"
    assert judge(vanished, exit=failed, memory=Memory()).category == "unknown"


def test_one_request_bigger_than_the_machine_is_no_address_limit_to_lift():
    # a JAX step asked for 98 GiB under `ulimit -v` 4 GB on a 23.5 GiB machine: lifting the limit
    # cannot help (BS's real run was told to); under a limit it would fit in, the limit stands
    from trainwatch.diagnostics.watch.limits import AddressLimit
    from trainwatch.diagnostics.watch.monitor import MemoryFacts

    def under_a_limit(asked: int):
        text = (
            'Traceback (most recent call last):\n  File "/w/train.py", line 30, in <module>\n'
            "    print(float(loss))\n"
            f"jax.errors.JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating {asked} "
            "bytes.\n"
        )
        memory = MemoryFacts(
            interval_s=0.5,
            peak_rss_bytes=300 << 20,
            limit_bytes=int(23.5 * 2**30),
            limit_source="physical RAM",
            address_limits=(AddressLimit(4242, 4 * 10**9, 3 * 10**9, "/proc/4242/limits"),),
        )
        return judge(text, exit=ExitStatus.from_returncode(1), memory=memory)

    huge = under_a_limit(105_600_000_000)
    assert huge.subtype == "oom/host" and "own address-space limit" not in huge.summary, huge
    assert "more than the whole 23.5 GiB" in huge.summary
    assert not huge.advice[0].startswith("Raise or lift the address-space limit")
    fits = under_a_limit(6 * 10**9)
    assert "own address-space limit" in fits.summary, fits


def test_sigkill_with_corroboration_is_confident_oom():
    counter = Cited("cgroup", "oom_kill 0 -> 1", "memory.events")
    v = judge("step 10 loss 0.3\n", exit=KILLED, memory=Memory((counter,)))
    assert (
        (v.category, v.subtype) == ("oom", "oom/host")
        and v.confidence >= 0.95
        and counter in v.evidence
    )


def _progress(text: str):
    tracker = ProgressTracker()
    for i, line in enumerate(text.splitlines(), 1):
        tracker.feed(LogLine(i, line))
    return tracker.finish()


def test_nan_loss_with_exit_zero_is_numerical():
    text = "Epoch 1/3 loss: 0.5\nEpoch 2/3 loss: nan\nEpoch 3/3 loss: nan\n"
    v = judge(text, exit=ExitStatus.from_returncode(0), progress=_progress(text))
    assert v.category == "numerical" and v.evidence[0].kind == "loss"


def test_exit_zero_before_the_loop_ends_is_early_exit():
    text = "Epoch 1/10 loss: 0.5\nEpoch 2/10 loss: 0.4\n"
    v = judge(text, exit=ExitStatus.from_returncode(0), progress=_progress(text))
    assert v.category == "early-exit"
    text = "Epoch 1/2 loss: 0.5\nEpoch 2/2 loss: 0.4\n"
    assert (
        judge(text, exit=ExitStatus.from_returncode(0), progress=_progress(text)).category
        == "completed"
    )


def test_exit_zero_says_where_the_loop_was_last_seen_when_it_printed_no_total():
    text = "epoch 0 loss 0.5\nepoch 1 loss 0.4\nbye\n"
    v = judge(text, exit=ExitStatus.from_returncode(0), progress=_progress(text))
    assert v.category == "completed" and "last seen at epoch 1, with no total" in v.summary
    v = judge("hello\n", exit=ExitStatus.from_returncode(0), progress=_progress("hello\n"))
    assert v.category == "completed" and "printed no progress" in v.summary


def _exited_0_with_loaders(text: str, passes):
    """The verdict of a run that printed `text`, exited 0, and whose probe counted `passes`."""
    from trainwatch.diagnostics.watch.probe.records import ProbeFacts

    return classify(
        Evidence(
            source="run",
            log=parse_text(text),
            exit=ExitStatus.from_returncode(0),
            progress=_progress(text),
            probe=ProbeFacts(loaders=passes),
        )
    )


def test_a_loop_whose_dataloader_gave_no_batch_outweighs_its_closing_words():
    from trainwatch.diagnostics.watch.probe.records import LoaderPasses

    text = "Epoch 1/2\nEpoch 2/2\nTraining finished\n"
    said = judge(text, exit=ExitStatus.from_returncode(0), progress=_progress(text))
    assert said.category == "completed"  # the words alone
    for batches, category in ((0, "early-exit"), (12, "completed")):
        passes = LoaderPasses(ended=2, batches=batches, empty=2 if not batches else 0)
        v = _exited_0_with_loaders(text, passes)
        assert v.category == category, v
    assert v.subtype != "early-exit/no-training-batches"


def test_a_split_whose_passes_gave_no_batch_beside_training_batches_is_an_empty_split():
    from trainwatch.diagnostics.watch.probe.records import LoaderPasses

    # fastai's table as it ends each epoch, its validation split empty (a real run's `None`s)
    text = (
        "epoch     train_loss  valid_loss  accuracy  time\n"
        "0         0.512512    None        None      00:00\n"
        "1         0.427844    None        None      00:00\n"
    )
    v = _exited_0_with_loaders(text, LoaderPasses(ended=4, batches=12, empty=2))
    assert v.subtype == "data/empty-dataset", v
    assert "no batch in 2 of its 4 passes" in v.summary
    assert v.alternatives[0].category == "completed"
    full = _exited_0_with_loaders(text, LoaderPasses(ended=4, batches=14, empty=0))
    assert full.category == "completed", full


def test_dataloaders_built_and_never_used_are_a_loop_that_never_started_unless_a_loss_was_printed():
    from trainwatch.diagnostics.watch.probe.records import LoaderPasses

    unused = LoaderPasses(ended=0, batches=0, empty=0, built=2, taken=0)
    for text, category in (
        ("=> resumed from checkpoint (epoch 12)\nTraining complete.\n", "early-exit"),
        # a loss printed: the loop trained without the loaders (on tensors, a loader for later)
        ("epoch 1 loss 0.52\nepoch 2 loss 0.41\nTraining complete.\n", "completed"),
    ):
        v = _exited_0_with_loaders(text, unused)
        assert v.category == category, v
    summary = _exited_0_with_loaders("starting\n", unused).summary
    assert "built 2 DataLoaders and taken no batch from any of them" in summary


def test_threads_dying_at_once_are_known_in_the_log_by_type_or_by_message():
    # eight threads failing at once interleave their tracebacks on stderr; in 1 run of 12 Python's
    # copy of one came out as `OSErrorOSError: worker 7 failed`, a type the probe never saw: its
    # message still names the death, and the run that exited 0 completed
    from dataclasses import replace

    from trainwatch.diagnostics.watch.probe.records import ProbeFacts

    frame = '  File "/w/probe_thread.py", line 18, in crash\n    raise OSError("worker")\n'
    text = (
        f"Traceback (most recent call last):\n{frame}OSError: worker 3 failed xxxx\n"
        f"Traceback (most recent call last):\n{frame}OSErrorOSError: worker 7 failed xxxx\n"
        "main thread finished\n"
    )
    log = parse_text(text)
    assert {c.final.short_type for c in log.chains} == {"OSError", "OSErrorOSError"}
    seen = log.chains[0]
    died = tuple(
        replace(
            seen,
            thread=f"crasher-{i}",
            exceptions=(replace(seen.final, message=f"worker {i} failed xxxx"),),
        )
        for i in (3, 7)
    )
    run = Evidence(
        source="run", log=log, exit=ExitStatus.from_returncode(0), probe=ProbeFacts(chains=died)
    )
    assert classify(run).category == "completed"


def test_a_traceback_gone_on_from_is_handled_unless_a_tuner_says_its_trial_failed():
    trial = (
        'Traceback (most recent call last):\n  File "/w/tune_run.py", line 14, in trainable\n'
        "    lr = config['lr'] / config['decay_every']\n"
        "TypeError: unsupported operand type(s) for /: 'float' and 'str'\n"
    )
    epochs = "".join(f"lr=0.1 epoch {e}/5 loss 0.{9 - e}\n" for e in range(1, 6))

    def read(ending: str):
        text = trial + epochs + ending
        return judge(text, progress=_progress(text))

    assert read("best lr: 0.1\n").category == "completed"
    failed = read("Number of errored trials: 1\nbest lr: 0.1\n")
    assert (failed.category, failed.subtype) == ("code", "code/python-error")


def test_an_error_line_the_printed_steps_went_on_from_to_their_total_is_handled():
    # a caught allocation failure printed at step 10, then the loop on to step 2000/2000 (forty-
    # fourth session's real runs: `explain` said oom 66%)
    caught = (
        "eval OOM, retrying smaller: [enforce fail at alloc_cpu.cpp:127] err == 0. "
        "DefaultCPUAllocator: can't allocate memory: you tried to allocate 40000000000000 bytes. "
        "Error code 12 (Cannot allocate memory)\n"
    )

    def read(last: int, total: int = 200):
        steps = [f"step {s}/{total} loss {1 / s:.5f}\n" for s in range(1, last + 1)]
        text = "".join(steps[:10]) + caught + "".join(steps[10:]) + "training finished\n"
        return judge(text, progress=_progress(text))

    done = read(200)
    assert done.category == "completed", done
    assert "went on" in done.summary and done.alternatives[0].category == "oom"
    # short of its total, the loop did not show it went on to its end: the error stays the reading
    assert read(150).category == "oom"


def test_a_thread_that_died_of_a_full_disk_leaves_a_completed_run_less_sure():
    from dataclasses import replace

    from trainwatch.diagnostics.watch.probe.records import ProbeFacts

    def finished_with_a_dead_thread(error: str):
        text = (
            'Traceback (most recent call last):\n  File "/w/train.py", line 9, in saver\n'
            f"    torch.save(state, path)\n{error}\n"
            + "".join(f"epoch {e}/3 loss 0.{e}\n" for e in (1, 2, 3))
        )
        log = parse_text(text)
        died = tuple(replace(c, thread="ckpt-writer") for c in log.chains)
        evidence = Evidence(
            source="run",
            log=log,
            exit=ExitStatus.from_returncode(0),
            probe=ProbeFacts(chains=died),
            progress=_progress(text),
        )
        return classify(evidence)

    # torch.save's own words when the disk filled under it (a real run's, writing to /dev/full)
    full = finished_with_a_dead_thread(
        "RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
    )
    assert full.category == "completed" and full.confidence <= 0.75
    assert (full.alternatives[0].category, full.alternatives[0].subtype) == (
        "library",
        "library/disk-full",
    )
    # the program's own mistake in the thread: the run's end stands as it was
    own = finished_with_a_dead_thread("NameError: name 'stat' is not defined")
    assert own.category == "completed" and own.confidence > 0.9
    assert all(a.category != "code" for a in own.alternatives)


def test_fallbacks():
    assert judge("hello\n").category == "unknown"
    assert judge("hello\n", exit=ExitStatus.from_returncode(-15)).category == "interrupted"
    v = judge(
        'Traceback (most recent call last):\n  File "a.py", line 1, in <module>\nFooBarError: odd\n'
    )
    assert v.category == "unknown" and "FooBarError" in v.summary and v.confidence <= 0.35


def test_the_error_line_a_log_ends_on_counts_unless_the_run_exited_0():
    text = "step 1\nstep 2\nFATAL: cannot open shard 17 of the dataset\n"
    saved = judge(text)
    # no signature knows it: unknown, or the category its words lean to (knowledge/words.py)
    assert saved.subtype in (None, f"{saved.category}/error-words"), saved
    assert "ends on an error" in saved.summary and saved.confidence <= 0.5
    assert saved.evidence[0].text == "FATAL: cannot open shard 17 of the dataset"
    assert saved.evidence[0].kind == "log"  # a line of the log, not an exception raised
    assert saved.exception is None and saved.exception_chain == ()
    failed = judge(text, exit=ExitStatus.from_returncode(1))
    assert "ends on an error" in failed.summary
    # a program that printed an error and went on to exit 0: it recovered from it
    ok = judge(text, exit=ExitStatus.from_returncode(0))
    assert ok.category == "completed" and "ends on an error" not in ok.summary
    # matched by what reads messages, it is second-hand: a line's weight, never an exception's
    oom = judge("step 1\nstep 2\nCUDA error: out of memory\n")
    assert oom.category == "oom" and oom.confidence < 0.95 and oom.exception is None


def test_gpu_oom_cites_the_allocator_and_the_device():
    from trainwatch.diagnostics.read.logparse import parse_text
    from trainwatch.diagnostics.watch.gpu import GpuDevice, GpuFacts
    from trainwatch.diagnostics.watch.monitor import MemoryFacts
    from trainwatch.diagnostics.watch.probe.records import ProbeFacts

    log = parse_text(
        "Traceback (most recent call last):\n"
        '  File "/home/user/train.py", line 40, in <module>\n'
        "    out = model(x)\n"
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
        "capacity of "
        "79.10 GiB of which 1.02 GiB is free.\n"
    )
    probe = ProbeFacts(
        torch={
            "version": "2.13.0",
            "memory": {
                "allocated": 70 * 2**30,
                "reserved": 76 * 2**30,
                "max_allocated": 75 * 2**30,
                "tried": "2.00 GiB",
            },
        }
    )
    gpu = GpuFacts(peak_devices=(GpuDevice(0, "NVIDIA H100", 78 * 2**30, 80 * 2**30, 99),))
    evidence = Evidence(
        source="run",
        exit=ExitStatus.from_returncode(1),
        log=log,
        probe=probe,
        memory=MemoryFacts(interval_s=0.5, gpu=gpu),
    )
    verdict = classify(evidence)
    assert verdict.subtype == "oom/gpu"
    texts = [c.text for c in verdict.evidence]
    assert any("allocated 70.00 GiB" in t and "tried to allocate 2.00 GiB" in t for t in texts), (
        texts
    )
    assert any("GPU 0 (NVIDIA H100): 78.00 GiB of 80.00 GiB" in t for t in texts), texts


def _cuda_oom(message: str):
    return judge(
        'Traceback (most recent call last):\n  File "/home/u/train.py", line 9, in <module>\n'
        "    out = model(x)\ntorch.OutOfMemoryError: CUDA out of memory. " + message + "\n"
    )


def test_an_allocation_larger_than_the_whole_gpu_is_a_size_not_a_budget():
    # as a real H200 printed it (tests/scripts/gpu_failures.py oom)
    v = _cuda_oom(
        "Tried to allocate 279.60 GiB. GPU 0 has a total capacity of 139.80 GiB of which 138.20 GiB"
        " is free. Including non-PyTorch memory, this process has 1.60 GiB memory in use."
    )
    assert v.subtype == "oom/gpu" and "279.6 GiB" in v.summary and "139.8 GiB" in v.summary
    assert v.advice[0].startswith("Look at the shape"), v.advice
    assert not any("nvidia-smi" in a for a in v.advice), v.advice
    old = _cuda_oom("Tried to allocate 57.83 GiB (GPU 0; 8.00 GiB total capacity; 1.2 GiB free)")
    assert old.advice[0].startswith("Look at the shape"), old.advice


def test_a_gpu_mostly_held_by_other_processes_is_named():
    v = _cuda_oom(
        "Tried to allocate 290.00 MiB. GPU 0 has a total capacity of 93.00 GiB of which 134.94 MiB "
        "is free. Process 118636 has 71.62 GiB memory in use. Including non-PyTorch memory, this "
        "process has 21.24 GiB memory in use."
    )
    assert (v.category, v.subtype) == ("oom", "oom/gpu-occupied")
    assert "21.2 GiB" in v.summary and "71.6 GiB" in v.summary, v.summary
    assert "nvidia-smi" in v.advice[0] and not any("batch size" in a for a in v.advice)
    # only the allocator's figures: the process's own CUDA context is allowed for
    v = _cuda_oom(
        "Tried to allocate 148.00 MiB. GPU 0 has a total capacity of 31.60 GiB of which 87.44 MiB "
        "is free. Of the allocated memory 594.01 MiB is allocated by PyTorch, and 5.99 MiB is "
        "reserved by PyTorch but unallocated."
    )
    assert v.subtype == "oom/gpu-occupied", v.summary


def test_a_gpu_the_run_filled_itself_keeps_the_batch_advice():
    for message in (
        # the run holds nearly all of it
        "Tried to allocate 1.16 GiB. GPU 0 has a total capacity of 15.77 GiB of which 1012.69 MiB "
        "is free. Including non-PyTorch memory, this process has 14.33 GiB memory in use.",
        # its own context beyond the allocator's figures (3.3 GiB card, 0.9 GiB unaccounted)
        "Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 3.30 GiB of which 1.00 MiB is "
        "free. Of the allocated memory 2.30 GiB is allocated by PyTorch, and 100.00 MiB is "
        "reserved by PyTorch but unallocated.",
        # the older wording leaves memory unaccounted for: never read as other processes
        "Tried to allocate 36.00 MiB (GPU 0; 4.00 GiB total capacity; 2.88 GiB already "
        "allocated; 627.20 KiB free; 2.95 GiB reserved in total by PyTorch)",
    ):
        v = _cuda_oom(message)
        assert v.subtype == "oom/gpu", (message, v.summary)
        assert v.advice[0].startswith("Lower the batch size"), v.advice


def test_the_evidence_keeps_the_lines_a_message_s_first_line_announces():
    head = 'Traceback (most recent call last):\n  File "/w/t.py", line 3, in <module>\n    fit()\n'
    announced = judge(
        head + "RuntimeError: Error(s) in loading state_dict for M:\n"
        "\tsize mismatch for net.0.weight: copying a param with shape torch.Size([32, 20]) from "
        "checkpoint, the shape in current model is torch.Size([64, 20]).\n"
    )
    assert "size mismatch for net.0.weight" in announced.evidence[0].text
    cut = judge(head + "ValueError: the strategies must match, but found\n- Save strategy: epoch\n")
    assert cut.evidence[0].text.endswith("but found - Save strategy: epoch")
    whole = judge(head + "ValueError: a sentence that ends.\nOriginal Traceback follows\n")
    assert whole.evidence[0].text == "ValueError: a sentence that ends."


def test_a_death_by_another_signal_is_no_time_limit_of_the_command_it_ran_under():
    def killed(signum: int, command=("seq", "1", "100")):
        exit = ExitStatus.from_returncode(-signum)
        return classify(Evidence(source="run", command=command, exit=exit))

    piped = killed(13)  # SIGPIPE: `trainwatch run -- seq ... | head`
    assert (piped.category, piped.subtype) == ("interrupted", "interrupted/output-closed")
    assert killed(14).subtype != "interrupted/time-limit"  # SIGALRM
    assert killed(25).subtype == "library/file-size-limit"  # SIGXFSZ
    timed = classify(
        Evidence(source="run", command=("timeout", "5", "x"), exit=ExitStatus.from_returncode(124))
    )
    assert timed.subtype == "interrupted/time-limit"


def test_anomaly_mode_s_forward_line_is_the_culprit_not_the_backward_call():
    text = (
        "/v/torch/autograd/graph.py:979: UserWarning: Error detected in PowBackward0. Traceback of"
        " forward call that caused the error:\n"
        '  File "/w/train.py", line 8, in <module>\n'
        "    d = torch.sqrt(((a - b) ** 2).sum(1))\n"
        '  File "/v/site-packages/torch/_tensor.py", line 39, in wrapped\n'
        "    return f(self, *args, **kwargs)\n"
        " (Triggered internally at /pytorch/torch/csrc/autograd/python_anomaly_mode.cpp:122.)\n"
        "Traceback (most recent call last):\n"
        '  File "/w/train.py", line 10, in <module>\n'
        "    loss.backward()\n"
        "RuntimeError: Function 'PowBackward0' returned nan values in its 0th output.\n"
    )
    verdict = judge(text)
    assert verdict.subtype == "numerical/anomaly-nan-grad"
    assert (verdict.culprit.line, verdict.culprit.code) == (
        8,
        "d = torch.sqrt(((a - b) ** 2).sum(1))",
    )


def test_dynamo_s_user_line_is_the_culprit_of_a_graph_break():
    text = (
        "Traceback (most recent call last):\n"
        '  File "/w/train.py", line 14, in <module>\n'
        "    loss = loss_fn(cm(x), y)\n"
        "torch._dynamo.exc.Unsupported: Tensor.tolist() with non-integer tensor\n"
        "\n"
        "from user code:\n"
        '   File "/w/train.py", line 8, in forward\n'
        "    SCORES.extend(out.detach().squeeze(1).tolist())\n"
    )
    verdict = judge(text)
    assert verdict.subtype == "code/graph-break"
    assert (verdict.culprit.line, verdict.culprit.function) == (8, "forward")


def test_a_lambda_pickling_refusal_is_read_by_where_it_was_raised():
    # the same words from torch.save (a checkpoint holding a lambda) and from a spawned worker's
    # start: each keeps its own advice, the more specific place first
    saved = judge(
        "Traceback (most recent call last):\n"
        '  File "/home/user/train.py", line 40, in <module>\n'
        "    torch.save(state, ckpt_dir)\n"
        '  File "/opt/env/lib/torch/serialization.py", line 1004, in _save\n'
        "    pickler.dump(obj)\n"
        "AttributeError: Can't get local object 'main.<locals>.<lambda>'\n"
    )
    assert saved.signature == "torch-save-unpicklable-object"
    worker = judge(
        "Traceback (most recent call last):\n"
        '  File "/home/user/train.py", line 30, in <module>\n'
        "    for x, y in loader:\n"
        "AttributeError: Can't pickle local object 'main.<locals>.<lambda>'\n"
    )
    assert worker.signature == "spawned-worker-cannot-pickle"


def test_a_failure_before_a_stop_from_outside_is_why_the_run_was_stopped():
    # a real run: DataLoader workers ran out of file descriptors and the loop waited for a batch
    # until a Ctrl-C; the probe's KeyboardInterrupt is as sure of itself as the workers' errors
    from dataclasses import replace

    from trainwatch.diagnostics.watch.probe.records import ProbeFacts

    worker = (
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.11/multiprocessing/queues.py", line 244, in _feed\n'
        "OSError: [Errno 24] Too many open files\n"
    )
    stop = (
        "Traceback (most recent call last):\n"
        '  File "/w/train.py", line 21, in <module>\n'
        "    for step, batch in enumerate(loader):\n"
        "KeyboardInterrupt\n"
    )
    log = parse_text(worker * 3 + stop)
    interrupt = replace(log.chains[-1], origin="probe")
    run = Evidence(
        source="run",
        log=log,
        exit=ExitStatus.from_returncode(-2),
        probe=ProbeFacts(chains=(interrupt,)),
    )
    verdict = classify(run)
    assert verdict.subtype == "library/too-many-open-files", verdict
    # a failure the stop's own shutdown raised comes after it: the stop stays the reading
    assert judge(stop + worker).category == "interrupted"
    assert judge(worker + stop).subtype == "library/too-many-open-files"


def test_a_trainer_that_returned_having_taken_no_batch_ran_no_step_and_stopped_nothing_early():
    # Hugging Face's Trainer resumed from a checkpoint already at its end (a real run): its bar
    # never moved, and its end-of-training summary (whose `train_loss` is no step's) printed at
    # once; the probe saw its DataLoaders built and no batch taken: no early stopping at step 0
    from trainwatch.diagnostics.watch.probe.records import LoaderPasses

    text = (
        "  0%|          | 0/48 [00:00<?, ?it/s]\n"
        "{'train_runtime': '0.0016', 'train_samples_per_second': '0', 'train_steps_per_second':"
        " '0', 'train_loss': '0', 'epoch': '3'}\n"
        "train finished: global_step=48 training_loss=0.0\n"
    )
    unused = LoaderPasses(ended=0, batches=0, empty=0, built=2, taken=0)
    v = _exited_0_with_loaders(text, unused)
    assert v.subtype == "early-exit/no-training-batches", v
    assert v.summary.startswith("The trainer ended its training")
    # its batches taken, the same summary is a callback's stop
    used = LoaderPasses(ended=0, batches=0, empty=0, built=2, taken=20)
    assert _exited_0_with_loaders(text, used).subtype == "completed/early-stopping"
    # its saved log alone: a throughput of 0 samples a second says the same (a real run's summary)
    saved = judge(text, progress=_progress(text))
    assert saved.subtype == "early-exit/no-training-batches", saved
    assert "0 samples a second" in saved.summary
    moving = text.replace("'train_samples_per_second': '0'", "'train_samples_per_second': '4005'")
    assert judge(moving, progress=_progress(moving)).subtype == "completed/early-stopping"


def test_a_launcher_that_killed_its_ranks_after_a_silent_death_is_host_memory_first():
    # DeepSpeed's launcher kills the other ranks when one ends; no rank printed an error (a real
    # report's lines): the one that ended was most often killed for memory
    stamp = "[2023-11-21 20:42:22,682] [INFO] "
    killed = (
        f"{stamp}[comm.py:637:init_distributed] cdb=None\n"
        f"{stamp}[launch.py:315:sigkill_handler] Killing subprocess 156890\n"
        f"{stamp}[launch.py:315:sigkill_handler] Killing subprocess 156891\n"
    )
    verdict = judge(killed)
    assert verdict.subtype == "oom/host", verdict
    assert "(Killing subprocess 156890)" in verdict.summary
    # a rank that raised printed its error first: that error decides
    raised = "[rank1]: KeyError: 'label'\n" + killed
    assert judge(raised).category != "oom"


def test_a_syntax_error_on_a_newer_python_s_syntax_is_the_interpreter_s_age_first():
    def compiled(code: str):
        return judge(f'  File "train.py", line 9\n    {code}\n    ^\nSyntaxError: invalid syntax\n')

    # valid since Python 3.5 and 3.6: the program met an older interpreter (a real report's line)
    older = compiled("net = kw.create_net(*inputs[0].shape, *outputs[0].shape)")
    assert older.subtype == "library/version-incompat", older
    assert compiled('print(f"epoch {epoch}")').subtype == "library/version-incompat"
    assert compiled("best_acc: float = 0.0").subtype == "library/version-incompat"
    # a line no Python accepts is the program's own mistake
    assert compiled("for epoch in range(10)").subtype == "code/syntax-error"
    assert compiled("print model.summary()").subtype == "code/syntax-error"
    assert compiled("else: best_acc = 0.0").subtype == "code/syntax-error"


def test_a_worker_s_segfault_the_probe_recorded_comes_before_the_ctrl_c_that_ended_the_wait():
    # a Pool worker died of SIGSEGV; Pool.map waited on until a Ctrl-C ended the run (exit 130):
    # the stop is the consequence, the crash the cause
    from trainwatch.diagnostics.evidence import Frame
    from trainwatch.diagnostics.read.frames import ThreadStack
    from trainwatch.diagnostics.watch.probe.records import FatalSignal, ProbeFacts

    frames = (
        Frame("/u/prep.py", 8, "parse", "ctypes.string_at(0)", True),
        Frame("/usr/lib/python3.11/ctypes/__init__.py", 519, "string_at", "", False),
    )
    fatal = FatalSignal("SIGSEGV", 4242, None, (ThreadStack(1, True, True, frames),))
    evidence = Evidence(
        source="run", exit=ExitStatus.from_returncode(-2), probe=ProbeFacts(fatal=(fatal,))
    )
    v = classify(evidence)
    assert (v.category, v.subtype) == ("library", "library/native-crash"), v
    assert "Process 4242 of the run died with SIGSEGV at prep.py:8 in parse" in v.summary
    assert "until it was stopped" in v.summary
    assert (v.culprit.file, v.culprit.line) == ("/u/prep.py", 8)
    # the same stop with no crash recorded is the stop
    assert classify(replace(evidence, probe=ProbeFacts())).category == "interrupted"


def test_a_pool_worker_s_error_in_the_data_function_is_read_where_the_worker_raised_it():
    # `Dataset.map(encode, num_proc=2)`: the KeyError in encode comes back through the pool, and
    # the parent's own frames show only its wait for the result; without num_proc the same
    # error is data/sample-error, and so it is with the pool (forty-third session's real runs)
    from conftest import FIXTURE_LOGS

    v = judge((FIXTURE_LOGS / "datasets_map_num_proc_keyerror.log").read_text())
    assert v.subtype == "data/sample-error", v
    assert "(in encode)" in v.summary


def test_a_loop_whose_progress_was_printed_once_at_its_end_went_on_from_nothing():
    # rich's bar off a terminal draws only its last frame, at the end: the warning above it is
    # no failure the run went on from (forty-third session's real runs: `explain` said completed
    # where `run` read the missing monitored key)
    v = judge(
        "/venv/lib/python3.11/site-packages/lightning/pytorch/callbacks/model_checkpoint.py:588: "
        "`ModelCheckpoint(monitor='val_acc')` could not find the monitored key in the returned "
        "metrics: ['train_loss', 'epoch', 'step']. HINT: Did you call `log('val_acc', value)` in "
        "the `LightningModule`?\n"
        "`Trainer.fit` stopped: `max_epochs=3` reached.\n"
        "Epoch 2/2  ━━━━━━━━━━━━━━━━━━━ 8/8 0:00:00 • 0:00:00 44.09it/s train_loss: 0.356\n"
    )
    assert v.category == "code", v


def test_a_traceback_after_fast_dev_run_s_words_is_the_run_s_end():
    # Lightning said it would run one batch, then the script failed after fit: the crash, not a
    # fast_dev_run by design (forty-third session's real runs)
    v = judge(
        "Running in `fast_dev_run` mode: will run the requested loop using 1 batch(es). Logging "
        "and checkpointing is suppressed.\n"
        "`Trainer.fit` stopped: `max_steps=1` reached.\n"
        "Traceback (most recent call last):\n"
        '  File "/work/realrun/BF/min/m02_fastdev_then_crash.py", line 17, in <module>\n'
        '    print({"lr": 0.05}["batch_size"])\n'
        "KeyError: 'batch_size'\n"
    )
    assert v.subtype == "code/python-error", v
    # the words alone are the fast_dev_run they say
    said = (
        "Running in `fast_dev_run` mode: will run the requested loop using 1 batch(es). "
        "Logging and checkpointing is suppressed.\n"
    )
    assert judge(said).subtype == "early-exit/fast-dev-run"


def test_words_of_the_whole_run_are_no_failure_a_finished_loop_went_on_from():
    # Lightning warns once that `training_step` returned None, then skips every step: the loop
    # finishes and nothing was trained (forty-third session's real runs: completed, 97%)
    warned = (
        "/venv/lib/python3.11/site-packages/lightning/pytorch/loops/optimization/automatic.py:134: "
        "`training_step` returned `None`. If this was on purpose, ignore this warning...\n"
    )
    epochs = "".join(f"epoch {e}/5 loss 0.{9 - e}\n" for e in range(1, 6))
    text = "epoch 1/5 loss 0.9\n" + warned + epochs
    v = judge(text, progress=_progress(text))
    assert v.subtype == "code/no-learning", v
    # a word of an incident the run went on from stays handled (a traceback the loop outlived)
    handled = (
        'Traceback (most recent call last):\n  File "/w/train.py", line 14, in step\n'
        "    lr = config['lr'] / config['decay_every']\n"
        "TypeError: unsupported operand type(s) for /: 'float' and 'str'\n"
    )
    text = "epoch 1/5 loss 0.9\n" + handled + epochs
    assert judge(text, progress=_progress(text)).category == "completed"


def test_a_shape_error_naming_the_sizes_a_warning_compared_is_that_warning_s_cause():
    # the tokenizer warned `(92 > 64)`; the model then failed on tensors of 92 and 64: a sequence
    # longer than the model, not a layer of the wrong size (forty-third session's real runs)
    from conftest import FIXTURE_LOGS

    v = judge((FIXTURE_LOGS / "hf_sequence_longer_than_model.log").read_text())
    assert v.subtype == "code/missing-truncation", v
    assert any("truncation=True" in a for a in v.advice)
    # the same shape error with no such warning stays a shape error
    alone = judge(
        "RuntimeError: The expanded size of the tensor (92) must match the existing size (64) at "
        "non-singleton dimension 1.  Target sizes: [1, 92].  Tensor sizes: [1, 64]\n"
    )
    assert alone.subtype == "code/shape-mismatch", alone


def test_string_labels_under_the_tokenizer_s_padding_advice_are_the_labels():
    # a padding collator already pads: the error it wraps (a label still a string) is the cause
    from conftest import FIXTURE_LOGS

    v = judge((FIXTURE_LOGS / "hf_string_labels_padding_collator.log").read_text())
    assert v.subtype == "data/bad-value", v


def test_an_error_line_read_after_the_exception_the_probe_saw_does_not_hide_it():
    # stdout read apart from stderr: a framework's `[ERROR]` line (PaddlePaddle's NaN check) came
    # last in the log, and the exception that ended the run went unreported (a real run)
    from trainwatch.diagnostics.watch.probe.records import ProbeFacts

    raised = parse_text(
        "Traceback (most recent call last):\n"
        '  File "/w/train.py", line 3, in <module>\n'
        "    loss = paddle.log(pred)\n"
        "RuntimeError: (PreconditionNotMet) the check failed on op=log\n"
    ).chains[-1]
    log = parse_text("[PROFILER] [ERROR] in [device=cpu, op=log], numel=64, count=31\n")
    assert Evidence(source="log", log=log).log_chains[-1].is_error_line
    run = Evidence(
        source="run",
        log=log,
        exit=ExitStatus.from_returncode(1),
        probe=ProbeFacts(chains=(replace(raised, origin="probe"),)),
    )
    verdict = classify(run)
    assert verdict.exception is not None and verdict.exception.short_type == "RuntimeError"
    assert verdict.evidence[0].text.startswith("RuntimeError: (PreconditionNotMet)"), verdict
    # read from a log alone, the line the log ends on stays what it ends on
    alone = classify(Evidence(source="log", log=log))
    assert alone.exception is None and alone.evidence[0].text.startswith("[PROFILER] [ERROR]")


def test_closing_words_are_no_other_reading_of_a_run_that_exited_failing():
    # stdout's "Training finished." read after stderr's traceback (two streams): the run failed
    log = parse_text(
        "Traceback (most recent call last):\n"
        '  File "/w/train.py", line 5, in <module>\n'
        '    json.dump({"acc": acc}, f)\n'
        "TypeError: Object of type float32 is not JSON serializable\n"
        "Epoch 3/3 loss=0.3333\nTraining finished.\n"
    )
    failed = classify(Evidence(source="run", log=log, exit=ExitStatus.from_returncode(1)))
    assert failed.category == "code"
    assert "completed" not in {a.category for a in failed.alternatives}, failed.alternatives


def test_a_metric_s_own_label_checks_are_no_data_being_read():
    # f1_score given logits after training (a real run): scikit-learn's `_check_set_wise_labels`
    # is a metric checking its arguments, not code that reads samples
    text = (
        "Traceback (most recent call last):\n"
        '  File "/w/train.py", line 30, in <module>\n'
        "    f1 = f1_score(y_true, logits)\n"
        '  File "/v/site-packages/sklearn/metrics/_classification.py", line 1465, in f1_score\n'
        "    return fbeta_score(\n"
        '  File "/v/site-packages/sklearn/metrics/_classification.py", line 1790, in '
        "_check_set_wise_labels\n"
        "    y_type, y_true, y_pred = _check_targets(y_true, y_pred)\n"
        "ValueError: Classification metrics can't handle a mix of multiclass and "
        "continuous-multioutput targets\n"
    )
    verdict = classify(Evidence(source="log", log=parse_text(text)))
    assert verdict.category == "code", verdict
    # nor is a loss that takes labels (optax's, given one-hot floats: a real JAX run); a library
    # function that says it gets labels reads them (flair's `_get_gold_labels`)
    for function, category in (
        ("softmax_cross_entropy_with_integer_labels", "code"),
        ("_get_gold_labels", "data"),
    ):
        lib = text.replace("_check_set_wise_labels", function)
        assert classify(Evidence(source="log", log=parse_text(lib))).category == category, function


def test_an_unknown_error_raised_while_a_sample_was_read_is_the_sample_first():
    # torch.stft on a clip of 0 frames, in the Dataset's __getitem__ (a real run): no signature
    # knows the words, the place says where to look; the words' code reading stays beside it
    text = (
        "Traceback (most recent call last):\n"
        '  File "/w/train.py", line 40, in <module>\n'
        "    for x, y in loader:\n"
        '  File "/w/train.py", line 22, in __getitem__\n'
        "    spec = torch.stft(wave, n_fft=400, return_complex=True)\n"
        "RuntimeError: Expected 2D or 3D (batch mode) tensor with possibly 0 batch size and other "
        "non-zero dimensions for input, but got: [1, 1, 0]\n"
    )
    verdict = classify(Evidence(source="log", log=parse_text(text)))
    assert (verdict.category, verdict.subtype) == ("data", "data/sample-error"), verdict
    assert "in __getitem__" in verdict.summary
    # the same error raised in the training step is no sample's
    step = text.replace("__getitem__", "training_step").replace("for x, y in loader:", "step()")
    assert classify(Evidence(source="log", log=parse_text(step))).category != "data"


def test_a_hang_at_the_address_space_limit_is_the_memory_first():
    # XLA deadlocked where an allocation failed at `ulimit -v` (a real JAX run): the limit reached
    # is the cause, the wait its consequence; a hang far below its limit stays a hang
    from trainwatch.diagnostics.judge.memory import with_memory_facts
    from trainwatch.diagnostics.verdict import Verdict
    from trainwatch.diagnostics.watch.limits import AddressLimit
    from trainwatch.diagnostics.watch.monitor import MemoryFacts

    def memory(peak: int) -> MemoryFacts:
        return MemoryFacts(
            interval_s=0.5,
            peak_rss_bytes=300 << 20,
            limit_bytes=int(23.5 * 2**30),
            limit_source="physical RAM",
            address_limits=(AddressLimit(4242, 1_500_000_000, peak, "/proc/4242/limits"),),
        )

    hang = Verdict("hang", "hang/lock", 0.85, "The run hung at step 21/1000.")
    at = with_memory_facts(hang, Evidence(source="run", memory=memory(1_499_400_000)))
    assert (at.category, at.subtype) == ("oom", "oom/host"), at
    assert at.alternatives[0].category == "hang" and "step 21/1000" in at.summary
    assert at.advice[0].startswith("Raise or lift the address-space limit")
    below = with_memory_facts(hang, Evidence(source="run", memory=memory(800_000_000)))
    assert below is hang


def test_an_error_raised_below_a_data_loader_s_next_batch_is_read_as_the_data_s():
    # grain runs a record's transforms inside its loader's __next__: the JSONDecodeError of a
    # truncated record surfaced three frames deep in `json` (a real run)
    text = (
        "Traceback (most recent call last):\n"
        '  File "/w/train.py", line 44, in <module>\n'
        "    for batch in loader:\n"
        '  File "/v/site-packages/grain/_src/python/data_loader.py", line 550, in __next__\n'
        "    result_record = next(self._iterator)\n"
        '  File "<dynamic-code>", line 24, in map\n'
        '  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads\n'
        "    return _default_decoder.decode(s)\n"
        '  File "/usr/lib/python3.11/json/decoder.py", line 337, in decode\n'
        "    obj, end = self.raw_decode(s, idx=_w(s, 0).end())\n"
        '  File "/usr/lib/python3.11/json/decoder.py", line 353, in raw_decode\n'
        "    obj, end = self.scan_once(s, idx)\n"
        "json.decoder.JSONDecodeError: Expecting ',' delimiter: line 1 column 38 (char 37)\n"
    )
    assert classify(Evidence(source="log", log=parse_text(text))).category == "data"
    # the same error in the program's own loop, no loader below it, is the code's reading
    own = text.replace("data_loader.py", "trainer.py").replace("in __next__", "in fit")
    assert classify(Evidence(source="log", log=parse_text(own))).category != "data"


def test_a_failure_a_later_start_went_on_from_is_said_so_not_handled():
    # a retry loop (or torchrun's restart) started the program again after it died: the first
    # start's exception ended that process, nothing in it handled it (a real run)
    from trainwatch.diagnostics.watch.probe.records import ProbeFacts, ProbeProcess

    text = (
        "epoch 1/3 loss 0.9\n"
        "Traceback (most recent call last):\n"
        '  File "/w/train.py", line 9, in <module>\n'
        "    raise ValueError('bad value in epoch 2')\n"
        "ValueError: bad value in epoch 2\n"
        "epoch 1/3 loss 0.9\nepoch 2/3 loss 0.7\nepoch 3/3 loss 0.5\n"
    )
    log = parse_text(text)
    argv = ("python", "/w/train.py")
    first = ProbeProcess(11, 1, argv, "/usr/bin/python3", "3.11.7", 1.0, exited=True)
    second = ProbeProcess(12, 1, argv, "/usr/bin/python3", "3.11.7", 5.0, exited=True)
    died = replace(log.chains[0], origin="probe", pid=11)
    evidence = Evidence(
        source="run",
        log=log,
        exit=ExitStatus.from_returncode(0),
        progress=_progress(text),
        probe=ProbeFacts(processes=(first, second), chains=(died,)),
    )
    verdict = classify(evidence)
    assert verdict.category == "completed", verdict
    assert "the program was started 2 times (1 ended on an exception)" in verdict.summary
    assert "the program handled it" not in verdict.summary


def test_a_saved_log_whose_loop_ran_to_its_end_after_a_rank_s_crash_was_restarted():
    # torchrun --max-restarts: rank 1 segfaulted, the agent restarted the job, which finished
    # (a real run's log read "native crash")
    text = (
        "[rank 0] epoch 1/3 loss 4.8\n[rank 1] epoch 1/3 loss 4.8\n"
        "E1207 10:26:09.204000 16112 torch/distributed/elastic/multiprocessing/api.py:1002] "
        "failed (exitcode: -11) local_rank: 1 (pid: 16118) of binary: /usr/bin/python3\n"
        "[rank 0] epoch 1/3 loss 4.8\n[rank 1] epoch 1/3 loss 4.8\n"
        "[rank 0] epoch 2/3 loss 0.19\n[rank 1] epoch 2/3 loss 0.19\n"
        "[rank 0] epoch 3/3 loss 0.09\n[rank 1] epoch 3/3 loss 0.09\n"
    )
    log = parse_text(text)
    evidence = Evidence(source="log", log=log, progress=_progress(text))
    verdict = classify(evidence)
    assert verdict.category == "completed"
    assert "a launcher's restart, most likely" in verdict.summary
    # the same crash after the loop's last progress ended the run
    cut = text.split("[rank 0] epoch 2/3")[0]
    late = cut + text.split("\n")[2] + "\n"
    crashed = Evidence(source="log", log=parse_text(late), progress=_progress(late))
    assert classify(crashed).category != "completed"


def test_xla_s_out_of_memory_in_a_log_that_names_no_device_may_be_the_host_s():
    # a JAX run on the CPU says it in the same words as one on a GPU (real runs): a saved log that
    # names no GPU or TPU anywhere says the host's memory is as likely
    text = (
        "step 30/2000 loss 2.48\n"
        "Traceback (most recent call last):\n"
        '  File "/w/train.py", line 32, in <module>\n'
        "    params, loss = step(params, batch)\n"
        "jax.errors.JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 1024000000 "
        "bytes.\n"
    )
    unnamed = classify(Evidence(source="log", log=parse_text(text)))
    assert unnamed.category == "oom" and "The log names no device" in unnamed.summary
    on_a_gpu = "Using GPU 0: NVIDIA A100-SXM4-40GB\n" + text
    named = classify(Evidence(source="log", log=parse_text(on_a_gpu)))
    assert named.category == "oom" and "names no device" not in named.summary


def test_a_good_end_s_words_in_a_run_that_exited_0_are_as_sure_as_the_exit_alone():
    # a real run's skorch pipeline: exit 0 alone read completed 0.80, with its closing figure 0.57
    text = "      5        0.6924        0.3386  0.0027\ntest R^2: 0.885\n"
    exited = judge(text, exit=ExitStatus.from_returncode(0), progress=_progress(text))
    assert (exited.subtype, exited.confidence) == ("completed/finished", 0.8), exited
    saved = judge(text, progress=_progress(text))  # a saved log: the words alone, less sure
    assert saved.category == "completed" and saved.confidence < 0.8


def test_a_strict_false_load_that_loaded_nothing_is_the_run_s_cause_though_it_exited_0():
    # a real resume: `_IncompatibleKeys` lists every model key missing and its `module.` twin
    # unexpected, then "Resumed from epoch 9", three epochs and exit 0 (was completed 97%)
    from conftest import FIXTURE_LOGS

    text = (FIXTURE_LOGS / "strict_false_prefix_loaded_nothing.log").read_text()
    ran = judge(text, exit=ExitStatus.from_returncode(0), progress=_progress(text))
    saved = judge(text, progress=_progress(text))
    for v in (ran, saved):
        assert (v.subtype, v.signature) == (
            "code/checkpoint-mismatch",
            "nothing-loaded-by-a-prefix",
        )
    # keys a partial load leaves out on purpose (a new head) are no such mismatch
    head = "_IncompatibleKeys(missing_keys=['fc.weight', 'fc.bias'], unexpected_keys=[])\ndone\n"
    assert judge(head, exit=ExitStatus.from_returncode(0)).category == "completed"


def test_a_length_asked_of_a_stream_is_the_program_s_setup_not_a_sample():
    # a real run: `len(loader)` of an IterableDataset without `__len__`, raised in torch's
    # dataloader.py `__len__` (a data module's name, but no sample was read: was data 67%)
    from conftest import FIXTURE_LOGS

    v = judge((FIXTURE_LOGS / "iterable_dataset_len_asked.log").read_text())
    assert v.category == "code", v


def test_a_nan_loss_right_after_most_passes_came_out_empty_is_the_data_that_ran_out():
    # the probe says when the first empty pass ended; the loss line NaN is read just after it
    from trainwatch.diagnostics.watch.probe.records import LoaderPasses, ProbeFacts

    text = "Epoch 1/3 loss: 0.5\nEpoch 2/3 loss: nan\nEpoch 3/3 loss: nan\n"
    read_at = iter(float(t) for t in range(100, 200))
    tracker = ProgressTracker(clock=lambda: next(read_at))
    for i, line in enumerate(text.splitlines(), 1):
        tracker.feed(LogLine(i, line))
    progress = tracker.finish()
    read = progress.first_nonfinite_read_at

    def verdict(ended, empty, empty_at):
        passes = LoaderPasses(ended, 4, empty, first_empty={"dataset": "Stream", "at": empty_at})
        return classify(
            Evidence(
                source="run",
                log=parse_text(text),
                exit=ExitStatus.from_returncode(0),
                progress=progress,
                probe=ProbeFacts(loaders=passes),
            )
        )

    assert verdict(3, 2, read - 0.2).subtype == "data/empty-dataset"
    # an empty validation split beside the training's (half the passes) and a loss that went NaN
    # on its own: still numerical; so is a NaN read long after the first empty pass
    assert verdict(6, 3, read - 0.2).category == "numerical"
    assert verdict(3, 2, read - 30).category == "numerical"
