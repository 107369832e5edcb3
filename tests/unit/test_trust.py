"""What a report says must be what happened: culprit notes, culprits of a hang, the last loss as
printed, memory limits and leaks, positions never read from paths, section references that match
the layout."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import pytest

import trainwatch
from trainwatch.cli.reports.outline import outline
from trainwatch.diagnostics.evidence import Evidence, ExitStatus, Frame, LogLine
from trainwatch.diagnostics.judge.classify import classify
from trainwatch.diagnostics.judge.memory import steady_growth
from trainwatch.diagnostics.read.progress import ProgressTracker
from trainwatch.diagnostics.verdict import Culprit, Diagnosis, Verdict
from trainwatch.diagnostics.watch.limits import REREAD_EVERY, AddressLimits, read_address_limit
from trainwatch.diagnostics.watch.stall import ProcessWait, StallFacts

from conftest import ROOT

KNOWLEDGE = ROOT / "diagnostics" / "knowledge"
SURFACED = """Traceback (most recent call last):
  File "/home/user/project/train.py", line 88, in <module>
    print(f"loss {loss.item():.3f}")
RuntimeError: CUDA error: device-side assert triggered
CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.
For debugging consider passing CUDA_LAUNCH_BLOCKING=1.
"""
CUDA_OOM = """Traceback (most recent call last):
  File "/home/user/project/train.py", line 60, in <module>
    out = model(batch)
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 15.77 GiB of which 1.2 GiB is free.
"""
IN_COLLATOR = """Traceback (most recent call last):
  File "/home/user/project/train.py", line 30, in <module>
    for batch in loader:
  File "/usr/lib/python3/dist-packages/torch/utils/data/dataloader.py", line 631, in __next__
    data = self._next_data()
  File "/usr/lib/python3/dist-packages/torch/utils/data/_utils/fetch.py", line 57, in fetch
    return self.collate_fn(data)
  File "/usr/lib/python3/dist-packages/torch/utils/data/_utils/collate.py", line 171, in default_collate
    return {key: default_collate([d[key] for d in batch]) for key in elem}
KeyError: 'label'
"""


def track(*lines: str):
    tracker = ProgressTracker()
    for number, text in enumerate(lines, 1):
        tracker.feed(LogLine(number, text))
    return tracker.finish()


# ---- culprits ------------------------------------------------------------------------------------
def test_an_asynchronous_cuda_errors_culprit_is_flagged_as_where_it_surfaced():
    culprit = trainwatch.explain(SURFACED).verdict.culprit
    assert culprit.code.startswith("print(") and culprit.note.startswith("where the error surfaced")
    assert "CUDA_LAUNCH_BLOCKING=1" in culprit.note
    assert trainwatch.explain(CUDA_OOM).verdict.culprit.note is None  # raised where it happened


def test_a_plain_error_raised_inside_a_collate_function_is_about_the_data():
    verdict = trainwatch.explain(IN_COLLATOR).verdict
    assert verdict.category == "data" and "default_collate" in verdict.culprit.note


def test_every_culprit_is_drawn_with_whose_it_is_and_what_to_know():
    verdict = Verdict(
        "hang",
        "hang/dataloader",
        0.85,
        "The run hung.",
        culprit=Culprit("d.py", 18, "__getitem__", "with lock:", "waiting on a lock", "pids 7, 8"),
        other_culprits=(Culprit("t.py", 30, "<module>", "for b in loader:", None, "pid 6"),),
    )
    diagnosis = Diagnosis("0", ("t.py",), None, 1.0, ExitStatus(None, "SIGTERM", 143), verdict,
                          Evidence(source="run"))  # fmt: skip
    rows = outline(diagnosis, 143).section("culprit").items
    assert [r.text for r in rows] == ["d.py:18 in __getitem__", "t.py:30 in <module>"]
    assert rows[0].source == "pids 7, 8; waiting on a lock" and rows[1].source == "pid 6"
    again = Diagnosis.from_dict(diagnosis.to_dict())
    assert again.verdict.culprits == verdict.culprits and again.to_dict() == diagnosis.to_dict()


def _stopped_hang(waits, exit: ExitStatus) -> tuple[Evidence, Verdict]:
    """The evidence of a run trainwatch stopped as stuck with these waits (pid, kind, where,
    frame: each process's main thread), and its verdict."""
    from trainwatch.diagnostics.judge.quiet import judge_quiet

    waits = tuple(
        ProcessWait(pid, None, "main", kind, where, frame) for pid, kind, where, frame in waits
    )
    stall = StallFacts(3.0, 3.2, 0.01, False, "stopped", waits=waits)
    evidence = Evidence(source="run", exit=exit, stall=stall)
    return evidence, judge_quiet(evidence)


def test_workers_out_of_file_descriptors_are_the_cause_of_the_stall_they_leave():
    from trainwatch.diagnostics.read.logparse import parse_text

    # a real run's worker feeder thread, as it printed it; then the main process waited for ever
    log = parse_text(
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.11/multiprocessing/queues.py", line 244, in _feed\n'
        '  File "/usr/lib/python3.11/multiprocessing/resource_sharer.py", line 48, in __init__\n'
        "OSError: [Errno 24] Too many open files\n"
    )
    frame = Frame("/w/train.py", 14, "<module>", "for step, (x, y) in enumerate(dl):", True)
    wait = ProcessWait(6, None, "main", "dataloader", "dataloader.py:1291", frame)
    stall = StallFacts(15.0, 16.0, 0.01, False, "stopped", waits=(wait,))
    evidence = Evidence(source="run", exit=ExitStatus(None, "SIGTERM", 143), stall=stall, log=log)
    verdict = classify(evidence)
    assert verdict.subtype == "library/too-many-open-files", verdict
    assert any(c.kind == "stall" for c in verdict.evidence)  # the stall cited as its symptom


def test_a_shell_that_runs_the_program_and_waits_for_it_is_not_the_hang_s_headline():
    # `trainwatch run -- bash -c "python train.py"`: bash (no probe: its kernel wait channel)
    # waits for its child, whose DataLoader worker blocks in the dataset; the hang was once
    # hang/join, led by bash's `do_wait`
    shell = ProcessWait(5, "bash", None, "join", "kernel: do_wait", source="wchan")
    main_frame = Frame("/w/train.py", 30, "<module>", "for b in loader:", True)
    worker_frame = Frame("/w/train.py", 18, "__getitem__", "open(self.fifo)", True)
    main = ProcessWait(6, None, "main", "dataloader", "dataloader.py:1291", main_frame)
    worker = ProcessWait(7, None, "main", "io", "train.py:18", worker_frame)
    stall = StallFacts(3.0, 3.2, 0.01, False, "stopped", waits=(shell, main, worker))
    verdict = classify(Evidence(source="run", exit=ExitStatus(None, "SIGTERM", 143), stall=stall))
    assert verdict.subtype == "hang/dataloader", verdict
    assert "do_wait" not in verdict.evidence[0].text


def test_a_hang_blames_where_the_workers_block_first_and_keeps_its_own_stop_out():
    main_frame = Frame("/w/train.py", 30, "<module>", "for b in loader:", True)
    worker_frame = Frame("/w/train.py", 18, "__getitem__", "with lock:", True)
    waits = [
        (6, "dataloader", "dataloader.py:1291", main_frame),
        (7, "lock", "train.py:18 in __getitem__", worker_frame),
        (8, "lock", "train.py:18 in __getitem__", worker_frame),
    ]
    evidence, verdict = _stopped_hang(waits, ExitStatus(None, "SIGTERM", 143))
    assert [c.function for c in verdict.culprits] == ["__getitem__", "<module>"]
    assert verdict.culprit.process == "pids 7, 8" and verdict.other_culprits[0].process == "pid 6"
    assert verdict.evidence[0].text.startswith("pid 7 (main): waiting to acquire a lock")
    assert "while pid 7 is waiting to acquire a lock" in verdict.summary
    assert classify(evidence).alternatives == ()


def test_a_launcher_s_loop_is_not_the_blocker_of_its_ranks_hang():
    # torchrun's agent (the root) sleeps between looks at its ranks; rank 0 waits in a collective
    # for rank 1, which sleeps in the user's code: rank 1 holds the job up (a real run's stacks)
    agent = Frame("/venv/lib/site-packages/torch/distributed/elastic/agent/server/api.py", 923,
                  "_invoke_run", "time.sleep(monitor_interval)", False)  # fmt: skip
    waiting = Frame("/w/train.py", 10, "<module>", "dist.all_reduce(t)", True)
    sleeping = Frame("/w/train.py", 9, "<module>", "time.sleep(1)", True)
    waits = [
        (5, "sleep", "server/api.py:923 in _invoke_run", agent),
        (6, "collective", "distributed_c10d.py:3252", waiting),
        (7, "sleep", "train.py:9 in <module>", sleeping),
    ]
    _, verdict = _stopped_hang(waits, ExitStatus(1, None, 1))
    assert [c.line for c in verdict.culprits] == [9, 10, 923], verdict.culprits
    assert verdict.culprit.process == "pid 7"


def test_report_sections_are_never_pointed_at_with_above_or_below():
    """The report's layout is an outline every format draws in its own order: a knowledge text
    names the section ("under Culprit", "in the evidence"), never where it lies."""
    pointing = re.compile(r"(?i)\b(?:culprit|stacks?|frames?)\b[^.]{0,30}\b(?:below|above)\b")
    texts = []
    for path in KNOWLEDGE.rglob("*.toml"):
        data = tomllib.loads(path.read_text())
        for table in data.get("signature", []) + data.get("rule", []):
            texts += [table.get("explanation", ""), table.get("summary", "")]
            texts += list(table.get("advice", [])) if isinstance(table.get("advice"), list) else []
        for advice in (data.get("advice") or {}).values():
            texts += advice if isinstance(advice, list) else sum(advice.values(), [])
    assert len(texts) > 300
    assert [t for t in texts if pointing.search(t)] == []


# ---- progress and losses -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line",
    [
        "/tmp/x/exp-batch16/train.py:12: UserWarning: the scheduler stepped first",
        "Traceback: /home/u/run-batch16.py",
        "saving checkpoint to /ckpt/epoch=3-step=100.ckpt",
    ],
)
def test_a_counter_in_a_files_path_is_not_a_position(line):
    assert track("epoch 1/2 step 3/10", line).stopped_at == "epoch 1/2, step 3/10"


def test_counters_that_are_not_paths_are_still_read():
    assert track("step=12/100 loss=1").stopped_at == "step 12/100"
    assert track(
        "Epoch 3, global step 100: saving model to /x/epoch=3-step=100.ckpt"
    ).stopped_at == ("epoch 3, step 100")


def test_a_metric_wrapped_by_rich_onto_the_next_line_is_read():
    facts = track(
        "Epoch 5/5  ━━━━━━━━━━━━━━━━━ 8/8 0:00:00 • 0:00:00 583.21it/s train_loss_step:  ",
        "                                                              nan               ",
        "                                                              train_loss_epoch: ",
        "                                                              nan               ",
    )
    assert facts.stopped_at == "epoch 5/5, batch 8/8" and facts.finished is True
    assert (
        math.isnan(facts.last_loss) and facts.first_nonfinite_loss[2].text == "train_loss_step: nan"
    )
    assert track("Epoch 1:", "3").stopped_at == "epoch 1"  # a heading then a number: no metric


def test_the_run_section_shows_the_last_loss_printed_nan_included():
    facts = track(*[f"step {i}/9 loss={1 / i:.3f}" for i in range(1, 6)], "step 6/9 loss=nan")
    verdict = Verdict("numerical", "numerical/nan-loss", 0.9, "NaN.")
    diagnosis = Diagnosis(
        "0", (), None, None, None, verdict, Evidence(source="log", progress=facts)
    )
    (row,) = [i for i in outline(diagnosis, 0).section("run").items if i.chart == "loss"]
    assert row.text.endswith("!  last NaN")
    again = outline(Diagnosis.from_dict(diagnosis.to_dict()), 0).section("run").items
    assert [i.text for i in again] == [i.text for i in outline(diagnosis, 0).section("run").items]


# ---- memory --------------------------------------------------------------------------------------
def test_steady_growth_is_a_leak_and_a_plateau_or_a_spike_is_not():
    mib = 2**20
    rising = [50 * mib] * 2 + [(60 + 12 * i) * mib for i in range(18)]
    assert steady_growth(rising) is not None
    assert steady_growth([300 * mib] * 20) is None
    assert steady_growth([50 * mib] * 18 + [900 * mib, 900 * mib]) is None
    after_the_failure = rising[:-1] + [55 * mib]  # a sample after the failure freed it
    assert steady_growth(after_the_failure) is not None


def test_address_limits_are_read_from_proc_limits(tmp_path):
    for pid, soft in ((10, "1073741824"), (11, "unlimited")):
        folder = tmp_path / str(pid)
        folder.mkdir()
        (folder / "limits").write_text(
            "Limit                     Soft Limit           Hard Limit           Units     \n"
            f"Max address space         {soft}           unlimited            bytes     \n"
        )
        (folder / "statm").write_text("1000 200 100 1 0 300 0\n")
    assert read_address_limit(10, str(tmp_path)) == 2**30
    assert read_address_limit(11, str(tmp_path)) is None
    limits = AddressLimits(10, str(tmp_path))
    limits.update((10, 11))
    (found,) = limits.facts()
    assert found.pid == 10 and found.limit_bytes == 2**30 and found.peak_virtual_bytes > 0
    assert found.source == f"{tmp_path}/10/limits"
    # a rank that sets its own limit after it was first seen (torchrun's ranks are not the root):
    # read again while it has none
    (tmp_path / "11" / "limits").write_text(
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max address space         3221225472           unlimited            bytes     \n"
    )
    for _ in range(REREAD_EVERY):
        limits.update((10, 11))
    assert [(a.pid, a.limit_bytes) for a in limits.facts()] == [(10, 2**30), (11, 3 * 2**30)]


def test_the_gpu_sampler_says_nothing_on_a_machine_without_a_driver():
    from trainwatch.diagnostics.watch.gpu import GpuSampler

    if Path("/proc/driver/nvidia").exists():
        pytest.skip("this machine has an NVIDIA driver")
    sampler = GpuSampler()
    assert sampler.read({1}) is None
    assert sampler.facts() is None  # no GPU facts, and no note to say so


# ---- words that add up --------------------------------------------------------------------------
def test_memory_peak_is_shown_only_when_memory_was_sampled():
    verdict = Verdict("completed", None, 0.97, "Done.")
    unsampled = {"peak_rss_bytes": 0, "limit_bytes": 2**34, "samples": []}
    diagnosis = Diagnosis("0", ("t.py",), None, 0.1, ExitStatus(0, None, 0), verdict,
                          Evidence(source="run"), sections={"memory": unsampled})  # fmt: skip
    rows = [i.text for i in outline(diagnosis, 0).section("run").items]
    assert rows == ["ran 0.1 s · exit 0"]


def test_growth_while_a_program_starts_is_no_leak_and_growth_while_it_trains_is():
    """An H200 run that asked for 8 GiB three seconds after it started was called "most likely a
    leak": its memory had grown from 352 to 627 MiB while torch imported and made its context."""
    from trainwatch.diagnostics.judge.memory import with_memory_facts
    from trainwatch.diagnostics.watch.monitor import MemoryFacts
    from trainwatch.diagnostics.watch.sampling import ProcessMemory, Sample

    def grown(seconds: float, mib_a_sample: int = 20) -> MemoryFacts:
        samples = []
        for i in range(20):
            rss = (300 + mib_a_sample * i) * 2**20
            process = ProcessMemory(7, 1, "python", rss, 1.0)
            at = seconds * i / 19
            samples.append(Sample(at, at, (process,), rss, 1.0, None))
        return MemoryFacts(interval_s=0.2, samples=tuple(samples), tail=tuple(samples[-8:]))

    trained = track(*[f"step {step} loss={1 / step:.4f}" for step in range(1, 30)])
    oom = Verdict("oom", "oom/host", 0.9, "Out of memory.")

    def leak(seconds: float, progress) -> bool:
        evidence = Evidence(source="run", memory=grown(seconds), progress=progress)
        return "leak" in with_memory_facts(oom, evidence).summary

    assert not leak(3.0, None)
    assert leak(3.0, trained)
    assert leak(90.0, None)
    # torchrun's two ranks importing torch side by side while one printed its first two losses
    assert not leak(3.0, track("step 0 loss 0.7104", "step 5 loss 0.7004"))
    # in a live run, the memory from the first loss on: growth while training is a leak however
    # few losses were printed, growth that had ended by then is start-up
    from dataclasses import replace

    two = track("step 0 loss 0.7104", "step 5 loss 0.7004")
    assert leak(30.0, replace(two, first_loss_read_at=3.0))  # 17 of 20 samples after it
    # before an out-of-memory, a steady rise from the first loss on counts from 1.2x: a real run
    # printed its first loss late and grew 390 -> 499 MiB after it (1.28x)
    late = Evidence(
        source="run",
        memory=grown(21.0, mib_a_sample=20),
        progress=replace(two, first_loss_read_at=9.0),
    )
    assert "leak" in with_memory_facts(oom, late).summary
    level = Evidence(
        source="run",
        memory=grown(21.0, mib_a_sample=0),
        progress=replace(two, first_loss_read_at=9.0),
    )
    assert "leak" not in with_memory_facts(oom, level).summary
    assert not leak(30.0, replace(two, first_loss_read_at=28.0))  # 2 samples: no telling
    # a run that finished with the same growth finished, and is told of the leak (a validation
    # loop without no_grad that kept its graphs, exit 0; forty-third session's real runs)
    done = Verdict("completed", "completed/finished", 0.97, "The run finished.")
    leaking = Evidence(source="run", memory=grown(90.0, mib_a_sample=40), progress=trained)
    finished = with_memory_facts(done, leaking)
    assert finished.category == "completed" and finished.confidence == 0.97
    assert "grew steadily to the end" in finished.summary
    assert finished.evidence[-1].kind == "memory" and "to the end" in finished.evidence[-1].text
    assert "loss.item()" in finished.advice[-1]
    flat = Evidence(source="run", memory=grown(90.0, mib_a_sample=0), progress=trained)
    assert with_memory_facts(done, flat) == done
    # a short run's warm-up, or growth too small to run out of anything, is not told
    short = Evidence(source="run", memory=grown(10.0, mib_a_sample=40), progress=trained)
    assert with_memory_facts(done, short) == done
    small = Evidence(source="run", memory=grown(90.0), progress=trained)  # 380 MiB
    assert with_memory_facts(done, small) == done


def test_a_host_allocation_failing_far_below_the_limit_is_one_request_of_a_wrong_size():
    from trainwatch.diagnostics.evidence import RaisedException
    from trainwatch.diagnostics.judge.memory import with_memory_facts
    from trainwatch.diagnostics.watch.monitor import MemoryFacts

    def judged(message: str, peak_gib: float) -> Verdict:
        memory = MemoryFacts(
            interval_s=0.5,
            peak_rss_bytes=int(peak_gib * 2**30),
            limit_bytes=24 * 2**30,
            limit_source="physical RAM",
        )
        oom = Verdict(
            "oom",
            "oom/host",
            0.9,
            "Python ran out of memory.",
            exception=RaisedException("MemoryError", message),
            advice=("Lower the batch size; check ulimit -v.",),
        )
        return with_memory_facts(oom, Evidence(source="run", memory=memory))

    bare = judged("", 0.8)  # `bytearray(size)` with a size read from a corrupt header
    assert "failed by itself" in bare.summary and bare.advice[0].startswith("Check the size")
    assert "Lower the batch size; check ulimit -v." in bare.advice  # a large batch may be it
    numpy = judged("Unable to allocate 4.00 PiB for an array with shape (2, 2**50)", 0.8)
    assert "It asked for 4.0 PiB at once" in numpy.summary
    assert not any("batch size" in a for a in numpy.advice)  # no batch is that big
    grown = judged("", 20.0)  # the run had filled the machine: the usual reading stands
    assert grown.summary == "Python ran out of memory."
    # a 4 MiB request refused far below the limit is no request of a wrong size: a limit the
    # sampler did not see refused it (a rank's own RLIMIT_AS; forty-third session's real runs)
    small = judged(
        "DefaultCPUAllocator: can't allocate memory: you tried to allocate 4194304 bytes", 0.8
    )
    assert small.summary == "Python ran out of memory."


def test_a_stall_while_the_master_address_does_not_resolve_is_that_rendezvous():
    # torchrun's ranks retry the store while c10d warns that MASTER_ADDR does not resolve: the
    # stall trainwatch saw is that wait, not a hang in the program
    frame = Frame("/venv/lib/torch/distributed/elastic/agent/server/api.py", 923, "_invoke_run",
                  "time.sleep(monitor_interval)", False)  # fmt: skip
    evidence, _ = _stopped_hang(
        [(6, "sleep", "api.py:923", frame)], ExitStatus(None, "SIGTERM", 143)
    )
    warned = (
        "[W1206 06:16:35.639402765 socket.cpp:764] [c10d] The IPv6 network addresses of "
        "(trainnode-07.cluster.invalid, 29621) cannot be retrieved (gai error: -2 - Name or "
        "service not known).\n"
    ) * 3
    from dataclasses import replace as with_log

    from trainwatch.diagnostics.read.logparse import parse_text

    verdict = classify(with_log(evidence, log=parse_text(warned)))
    assert verdict.subtype == "distributed/rendezvous"
    assert any(c.kind == "stall" for c in verdict.evidence)  # the wait it caused, cited
    assert classify(evidence).category == "hang"  # the same stall alone stays a hang


def test_a_silence_cut_short_by_an_outside_limit_advises_a_stall_timeout_under_that_limit():
    # `timeout -s INT 30` ended a run silent for 25 s: the advice once said "say 60 s", twice the
    # limit that stopped it
    from trainwatch.diagnostics.judge.quiet import judge_quiet

    stall = StallFacts(60.0, 25.0, 0.01, False, "cut")
    verdict = judge_quiet(Evidence(source="run", exit=ExitStatus(None, "SIGINT", 130), stall=stall))
    assert verdict.signature == "quiet:stall-cut-short", verdict
    assert "silent for 25 s" in verdict.advice[0] and "60 s" not in verdict.advice[0]
    assert verdict.subtype == "hang/no-progress"
    # the interrupt's traceback shows the wait it broke: that wait is the subtype, as `explain` of
    # the same output says (it gave hang/lock where `run` said hang/no-progress)
    from trainwatch.diagnostics.evidence import ExceptionChain, RaisedException
    from trainwatch.diagnostics.watch.probe.records import ProbeFacts

    frames = (
        Frame("/u/train.py", 42, "<module>", "with cache_lock:", True),
        Frame("/usr/lib/python3.11/threading.py", 300, "acquire", "", False),
    )
    interrupt = ExceptionChain(
        (RaisedException("KeyboardInterrupt", "", frames),), origin="probe", pid=7
    )
    waited = judge_quiet(
        Evidence(
            source="run",
            exit=ExitStatus(None, "SIGINT", 130),
            stall=stall,
            probe=ProbeFacts(chains=(interrupt,)),
        )
    )
    assert waited.subtype == "hang/lock", waited
    assert "which found it waiting (" in waited.summary
    assert "acquire, called from u/train.py:42 in <module>)" in waited.summary
