"""The consistency rule (judge/consistency.py) and the memory measure behind an out-of-memory claim
(watch/monitor.py, watch/sampling.py), with the monitor's real dataclasses."""

from __future__ import annotations

import os

from trainwatch.diagnostics.evidence import Evidence, ExitStatus
from trainwatch.diagnostics.judge.classify import classify
from trainwatch.diagnostics.judge.consistency import (
    contradictions,
    make_consistent,
    memory_facts,
    report_contradictions,
)
from trainwatch.diagnostics.read.logparse import parse_text
from trainwatch.diagnostics.verdict import Diagnosis, Verdict
from trainwatch.diagnostics.watch.cgroup import KernelOomKill
from trainwatch.diagnostics.watch.monitor import CgroupCounter, MemoryFacts
from trainwatch.diagnostics.watch.sampling import ProcessMemory, Sample, read_pss, tree_pss

MB = 2**20
WORKER = 4242
WORKER_LOG = (
    "step 23 batch 23\n"
    "Traceback (most recent call last):\n"
    '  File "/home/u/train.py", line 34, in <module>\n'
    "    for step, batch in enumerate(loader):\n"
    '  File "/opt/venv/lib/python3.11/site-packages/torch/utils/data/dataloader.py", line 1304, '
    "in _try_get_data\n"
    "    raise RuntimeError(\n"
    f"RuntimeError: DataLoader worker (pid(s) {WORKER}) exited unexpectedly\n"
)
KERNEL_LINE = (
    f"Memory cgroup out of memory: Killed process {WORKER} (pt_data_worker) total-vm:1318028kB, "
    "anon-rss:673420kB, file-rss:21988kB, shmem-rss:0kB, UID:0 pgtables:1608kB oom_score_adj:1000"
)


def _sample(t: float, rss: tuple[int, ...], pss: int | None = None) -> Sample:
    processes = tuple(ProcessMemory(100 + i, 1, "python", r, 0.0) for i, r in enumerate(rss))
    return Sample(t, t, processes, sum(rss), 0.0, None, tree_pss_bytes=pss)


def _memory(counter_after: int = 0, kills=(), samples=(), limit=700 * MB) -> MemoryFacts:
    return MemoryFacts(
        interval_s=0.5,
        samples=tuple(samples),
        tail=tuple(samples),
        limit_bytes=limit,
        limit_source="cgroup v1 /sys/fs/cgroup/memory/job/memory.limit_in_bytes",
        cgroup="/job",
        counters=(
            CgroupCounter("/job", "/sys/fs/cgroup/memory/job/memory.oom_control", 0, 1)
            if counter_after
            else CgroupCounter("/job", "f", 0, 0),
        ),
        kernel_oom_kills=tuple(kills),
        kernel_log="/dev/kmsg",
        seen_pids=(WORKER - 1,),
    )


def _evidence(memory: MemoryFacts, text: str = WORKER_LOG, code: int = 1) -> Evidence:
    return Evidence(
        source="run", exit=ExitStatus.from_returncode(code), log=parse_text(text), memory=memory
    )


def test_the_issue_case_a_worker_oom_kill_is_never_called_unknown():
    """The counter moved, the kernel named the worker; the main process raised its DataLoader
    error and exited 1: the verdict is out-of-memory, and contradicts nothing."""
    memory = _memory(1, [KernelOomKill(WORKER, "pt_data_worker", KERNEL_LINE, "/job", 700 * MB)])
    evidence = _evidence(memory)
    verdict = classify(evidence)
    assert verdict.category == "oom", verdict
    assert any(c.kind == "cgroup" for c in verdict.evidence)
    assert any(
        c.kind == "kernel" and f"Killed process {WORKER}" in c.text for c in verdict.evidence
    )
    assert contradictions(verdict, memory_facts(evidence)) == ()
    report = Diagnosis("t", (), None, None, evidence.exit, verdict, evidence).to_dict()
    assert report_contradictions(report) == ()


def test_a_summary_that_denies_the_facts_is_replaced():
    memory = _memory(1)
    evidence = _evidence(memory, "step 3\n", -9)
    denial = Verdict(
        "unknown",
        None,
        0.4,
        "Killed by SIGKILL, but memory was not at its limit and no OOM kill was recorded.",
    )
    found = contradictions(denial, memory_facts(evidence))
    assert any("denies an OOM kill" in f for f in found)
    assert any("denies memory pressure" in f for f in found)
    fixed = make_consistent(denial, evidence)
    assert fixed.category == "oom" and fixed.confidence >= 0.9
    assert "not at its limit" not in fixed.summary
    assert contradictions(fixed, memory_facts(evidence)) == ()


def test_an_echo_of_the_kill_becomes_the_kill_and_stays_as_an_alternative():
    evidence = _evidence(_memory(1), "step 3\n")
    echo = Verdict("distributed", "distributed/peer-failed", 0.7, "A peer rank went away.")
    fixed = make_consistent(echo, evidence)
    assert fixed.category == "oom"
    assert fixed.alternatives[0].category == "distributed"


def test_a_first_hand_failure_stands_but_cites_the_kill():
    evidence = _evidence(_memory(1), "step 3\n")
    code = Verdict("code", "code/python-error", 0.85, "An error in the program's own code.")
    assert contradictions(code, memory_facts(evidence))  # silent about the kill
    fixed = make_consistent(code, evidence)
    assert fixed.category == "code"
    assert any(c.kind == "cgroup" for c in fixed.evidence)
    assert fixed.alternatives[0].category == "oom"
    assert fixed.alternatives[0].confidence < fixed.confidence
    assert contradictions(fixed, memory_facts(evidence)) == ()


def test_without_facts_nothing_changes():
    evidence = _evidence(_memory(0), "step 3\n", -9)
    verdict = Verdict("unknown", None, 0.4, "Killed by SIGKILL; no OOM kill was recorded.")
    assert make_consistent(verdict, evidence) is verdict
    log_only = Evidence(source="log", log=parse_text("Killed\n"))
    assert memory_facts(log_only) == ()


def test_summed_rss_of_processes_sharing_pages_is_never_a_claim():
    # 8 forked processes each mapping the same 100 MB: 800 MB summed against a 600 MB limit
    shared = _sample(1.0, (100 * MB,) * 8)
    memory = _memory(samples=[shared], limit=600 * MB)
    assert memory.last_use() is None
    assert memory.oom_corroboration() == ()
    assert memory.limit_check()["measure"] is None
    # the same tree with its PSS read: 120 MB really held
    measured = _sample(1.0, (100 * MB,) * 8, pss=120 * MB)
    memory = _memory(samples=[measured], limit=600 * MB)
    assert memory.last_use()[:2] == (120 * MB, "PSS")
    assert memory.oom_corroboration() == ()
    assert memory.to_dict()["limit_check"]["measure"] == "PSS"


def test_real_use_at_the_limit_is_a_claim_that_names_its_measure():
    full = _memory(samples=[_sample(2.0, (300 * MB,) * 3, pss=590 * MB)], limit=600 * MB)
    (cited,) = full.oom_corroboration()
    assert cited.kind == "memory" and cited.text.startswith("tree PSS 590 MiB of a 600 MiB limit")
    assert "smaps_rollup" in cited.source
    lone = _memory(samples=[_sample(2.0, (598 * MB,))], limit=600 * MB)
    (cited,) = lone.oom_corroboration()
    assert cited.text.startswith("tree RSS 598 MiB") and "only process" in cited.source


def test_pss_is_read_from_smaps_rollup():
    mine = read_pss(os.getpid())
    assert mine is not None and mine > 1 * MB
    me = ProcessMemory(os.getpid(), os.getppid(), "python", 0, 0.0)
    gone = ProcessMemory(2**22 + 1, 1, "gone", 0, 0.0)  # above pid_max: never a process
    assert tree_pss((me, gone)) == read_pss(os.getpid()) or tree_pss((me, gone)) > 1 * MB
    assert tree_pss((gone,)) is None
