"""Collective timeouts from saved logs and flight-recorder dumps: the rank that fell behind.

The log lines are PyTorch's own wording: NCCL's watchdog (ProcessGroupNCCL, as the knowledge
base's nccl-watchdog-timeout example and PyTorch's issue reports print it, in the log prefixes of
successive versions), and gloo's debug wrapper lines recorded from real runs of this torch
(TORCH_DISTRIBUTED_DEBUG=DETAIL, tests/scripts/dist_straggler.py's setting).
"""

from __future__ import annotations

import json
import os
import pickle

from trainwatch.diagnostics.evidence import LogLine
from trainwatch.diagnostics.judge.collectives import judge_collectives, read_dump
from trainwatch.diagnostics.knowledge import load_knowledge
from trainwatch.diagnostics.postmortem import explain_logs

from conftest import FIXTURE_LOGS

KNOWLEDGE = load_knowledge(include_user=False)


def watchdog(rank: int, seq: int, op: str = "ALLREDUCE", prefix: str = "[PG 0 Rank {r}]") -> str:
    """The three lines NCCL's watchdog prints for a timed-out collective (PyTorch 2.2-2.4)."""
    head = prefix.format(r=rank)
    return (
        f"[rank{rank}]:[E1202 10:15:01.123456789 ProcessGroupNCCL.cpp:632] {head} Watchdog caught "
        f"collective operation timeout: WorkNCCL(SeqNum={seq}, OpType={op}, NumelIn=1048576, "
        f"NumelOut=1048576, Timeout(ms)=600000) ran for 600043 milliseconds before timing out.\n"
        f"[rank{rank}]:[E1202 10:15:01.124000000 ProcessGroupNCCL.cpp:2271] {head} Timeout at NCCL "
        f"work: {seq}, last enqueued NCCL work: {seq}, last completed NCCL work: {seq - 1}.\n"
        f"[rank{rank}]:[E1202 10:15:01.125000000 ProcessGroupNCCL.cpp:1664] {head} Exception "
        f"(either an error or timeout) detected by watchdog at work: {seq}, last enqueued NCCL "
        f"work: {seq}, last completed NCCL work: {seq - 1}.\n"
    )


TORCHRUN_TABLE = """[W1202 10:15:09.000000000 torch/distributed/elastic/multiprocessing/api.py:897] Sending process 4242 closing signal SIGTERM
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
train.py FAILED
------------------------------------------------------------
Failures:
[1]:
  time      : 2024-12-02_10:15:09
  host      : node0
  rank      : 1 (local_rank: 1)
  exitcode  : -15 (pid: 4242)
  error_file: <N/A>
  traceback : Signal 15 (SIGTERM) received by PID 4242
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2024-12-02_10:15:08
  host      : node0
  rank      : 0 (local_rank: 0)
  exitcode  : -6 (pid: 4241)
  error_file: <N/A>
  traceback : Signal 6 (SIGABRT) received by PID 4241
============================================================
"""


def _lines(text: str) -> list[tuple[int | None, LogLine]]:
    return [(None, LogLine(n, t)) for n, t in enumerate(text.splitlines(), 1)]


def test_the_rank_at_an_older_collective_fell_behind(tmp_path):
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "node0.log").write_text(watchdog(0, 57) + watchdog(1, 55, "BROADCAST"))
    (folder / "node1.log").write_text(watchdog(2, 57) + watchdog(3, 57))
    diagnosis = explain_logs([str(folder)], KNOWLEDGE)
    v, section = diagnosis.verdict, diagnosis.sections["distributed"]
    assert v.subtype == "distributed/collective-timeout"
    assert v.summary.startswith("Collective timeout: Rank 1 fell behind")
    assert "BROADCAST #55" in v.summary and "ranks 0, 2, 3 waited in ALLREDUCE #57" in v.summary
    assert section["root_rank"] == 1 and section["collectives"]["behind"] == [1]
    assert v.evidence[0].kind == "collective" and "SeqNum=55" not in v.evidence[0].text
    assert "last enqueued NCCL work: 55" in v.evidence[0].text  # the rank's own last word


def test_a_rank_that_reported_no_timeout_never_reached_the_collective(tmp_path):
    log = tmp_path / "job.log"
    log.write_text(watchdog(0, 12) + TORCHRUN_TABLE)
    diagnosis = explain_logs([str(log)], KNOWLEDGE)
    collectives = diagnosis.sections["distributed"]["collectives"]
    assert collectives["silent"] == [1] and collectives["behind"] == []
    # rank 0 waited, then NCCL's watchdog aborted it (SIGABRT): the timeout's echo, not a cause
    assert diagnosis.sections["distributed"]["root_rank"] == 1
    assert "Rank 1 reported no collective timeout" in collectives["summary"]
    assert diagnosis.verdict.summary.startswith("Collective timeout: Rank 1 reported no")


def test_every_nccl_prefix_of_pytorch_versions_is_read():
    prefixes = ("[Rank {r}]", "[PG 3 Rank {r}]", "[PG ID 3 PG GUID 3(default_pg) Rank {r}]")
    for prefix in prefixes:
        text = watchdog(0, 9, prefix=prefix).replace("[rank0]:", "")
        text += watchdog(1, 8, prefix=prefix).replace("[rank1]:", "")
        facts = judge_collectives(_lines(text))
        assert facts is not None and facts.behind == (1,), prefix
        assert {p.group for p in facts.positions} == {"3" if "3" in prefix else "0"}


def test_the_knowledge_base_example_line_alone():
    line = (
        "[E ProcessGroupNCCL.cpp:828] [Rank 1] Watchdog caught collective operation timeout: "
        "WorkNCCL(SeqNum=3, OpType=ALLREDUCE, Timeout(ms)=1800000) ran for 1800613 milliseconds "
        "before timing out."
    )
    facts = judge_collectives(_lines(line), world=(0, 1))
    assert facts.front.rank == 1 and facts.front.seq == 3 and facts.silent == (0,)


def test_gloo_debug_wrapper_lines_from_a_real_run():
    barrier = (
        "[rank0]:[E1202 01:28:13.952613495 ProcessGroupGloo.cpp:67] [Rank 0]: Ranks 1 failed to "
        "pass monitoredBarrier in 3000 ms"
    )
    facts = judge_collectives(_lines(barrier))
    assert facts.behind == (1,) and "Rank 1 did not reach the barrier" in facts.summary()
    mismatch = (
        "[rank0]: RuntimeError: Detected mismatch between collectives on ranks. Rank 0 is running "
        "collective: CollectiveFingerPrint(SequenceNumber=3, OpType=ALLREDUCE, TensorShape=[4], "
        "TensorDtypes=Float), but Rank 1 is running collective: CollectiveFingerPrint("
        "SequenceNumber=3, OpType=BROADCAST, TensorShape=[4], TensorDtypes=Float)."
    )
    facts = judge_collectives(_lines(mismatch + "\n" + barrier.replace("Ranks 1", "Ranks 2")))
    assert facts.behind == (2,)
    facts = judge_collectives(_lines(mismatch))
    assert facts.behind == () and [p.rank for p in facts.mismatched] in ([0], [1])
    assert "Ranks called different collectives" in facts.summary()


def test_ranks_in_different_collectives_are_a_mismatch_not_a_timeout():
    # a real torchrun run under TORCH_DISTRIBUTED_DEBUG=DETAIL: each rank's wrapper names both
    # fingerprints at once, with no timeout; rank 1's runs its fields together
    # (`SequenceNumber=20OpType=BARRIER`)
    log = FIXTURE_LOGS / "torchrun_collective_mismatch.log"
    verdict = explain_logs([str(log)], KNOWLEDGE).verdict
    assert verdict.subtype == "distributed/collective-mismatch", verdict
    assert verdict.summary.startswith(
        "Ranks called different collectives: rank 1 called BARRIER #20"
    )


def _entry(seq: int, name: str = "nccl:all_reduce", state: str = "completed") -> dict:
    """One entry as torch's flight recorder writes it (fields of a real gloo dump of this torch)."""
    return {
        "record_id": seq - 1,
        "pg_id": 0,
        "process_group": ("0", "default_pg"),
        "collective_seq_id": seq,
        "p2p_seq_id": 0,
        "op_id": seq,
        "profiling_name": name,
        "time_created_ns": 1796174857814578335 + seq,
        "input_sizes": [[4]],
        "output_sizes": [[4]],
        "state": state,
        "retired": state == "completed",
        "timeout_ms": 600000,
        "is_p2p": False,
        "frames": [
            {
                "name": "all_reduce",
                "filename": "/venv/site-packages/torch/distributed/x.py",
                "line": 1,
            },
            {"name": "train_step", "filename": "/home/me/train.py", "line": 88},
        ],
    }


def _dump(entries: list[dict]) -> dict:
    return {"version": "2.10", "pg_config": {}, "pg_status": {}, "entries": entries}


def test_flight_recorder_dumps_say_which_collective_a_rank_missed(tmp_path):
    (tmp_path / "nccl_trace_rank_0").write_bytes(
        pickle.dumps(_dump([_entry(s) for s in (1, 2, 3)] + [_entry(4, state="started")]))
    )
    (tmp_path / "nccl_trace_rank_1").write_text(json.dumps(_dump([_entry(s) for s in (1, 2, 3)])))
    dumps = [str(tmp_path / f"nccl_trace_rank_{r}") for r in (0, 1)]
    facts = judge_collectives([], dumps)
    assert facts.behind == (1,) and facts.front.seq == 4 and facts.front.op == "nccl:all_reduce"
    assert facts.position(1).where == "/home/me/train.py:88 in train_step"
    assert facts.dumps == tuple(dumps)


def test_a_dump_that_names_a_class_is_never_unpickled(tmp_path):
    evil = tmp_path / "nccl_trace_rank_0"
    evil.write_bytes(pickle.dumps({"entries": [os.getcwd], "version": "2.10"}))
    assert read_dump(str(evil)) is None
    (tmp_path / "fr_trace_1").write_bytes(b"not a pickle at all")
    assert read_dump(str(tmp_path / "fr_trace_1")) is None


def test_explain_reads_dumps_in_the_folder_it_is_given(tmp_path):
    (tmp_path / "rank0.log").write_text(watchdog(0, 4))
    (tmp_path / "rank1.log").write_text("[rank1]: step 3 loss 0.25\n")
    (tmp_path / "nccl_trace_rank_0").write_bytes(
        pickle.dumps(_dump([_entry(s) for s in (1, 2, 3, 4)]))
    )
    (tmp_path / "nccl_trace_rank_1").write_bytes(
        pickle.dumps(_dump([_entry(s) for s in (1, 2, 3)]))
    )
    diagnosis = explain_logs([str(tmp_path)], KNOWLEDGE)
    section = diagnosis.sections["distributed"]
    assert section["collectives"]["behind"] == [1] and section["root_rank"] == 1
    assert len(section["collectives"]["flight_recorder"]) == 2
    assert "train.py:88" in diagnosis.verdict.summary


def test_no_collective_words_no_section(tmp_path):
    log = tmp_path / "plain.log"
    log.write_text("step 1 loss 0.5\nTraceback (most recent call last):\nValueError: x\n")
    assert "distributed" not in explain_logs([str(log)], KNOWLEDGE).sections
