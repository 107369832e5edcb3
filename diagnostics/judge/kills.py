"""Kills and memory: a SIGKILL (or a killed DataLoader worker) is out-of-memory only with proof, and
proof of an out-of-memory kill is never contradicted by the verdict.

Proof is what the memory monitor holds (watch/monitor.py `MemoryFacts.oom_corroboration`): the OOM
kill counter of a cgroup of the run went up, the kernel logged an OOM kill of a process of the run
(or of a DataLoader worker an error names), or memory stood at its limit in the last samples.
"""

from __future__ import annotations

import re
from dataclasses import replace

from trainwatch.diagnostics.evidence import Evidence
from trainwatch.diagnostics.verdict import Alternative, Cited, Verdict, cited_once

# `DataLoader worker (pid 4242) is killed by signal`, `DataLoader worker (pid(s) 4242) exited ...`.
WORKER_KILLED = re.compile(r"DataLoader worker \(pid\(?s?\)?:? ?(\d+)\)? (?:is|exited)")
# torch's words for a worker that ended by itself, with a status (a kill is "killed by signal").
WORKER_EXIT_STATUS = re.compile(
    r"DataLoader worker \(pid (\d+)\) exited unexpectedly with exit code (\d+)"
)
# Verdicts that describe what a kill did to the rest of the run, not why: a kill explains them.
ECHOES = ("unknown", "distributed", "interrupted", "hang")


def killed_worker_pids(evidence: Evidence) -> tuple[int, ...]:
    """Pids of DataLoader workers an error says were killed: the kernel's OOM lines name them."""
    texts = []
    log = evidence.log
    if log is not None:
        texts.extend(line.text for line in log.notable)
        texts.extend(e.message for chain in log.chains for e in chain.exceptions)
    if evidence.probe is not None:
        texts.extend(e.message for chain in evidence.probe.chains for e in chain.exceptions)
    return tuple(sorted({int(m.group(1)) for text in texts for m in WORKER_KILLED.finditer(text)}))


def apply_kill_rules(
    verdict: Verdict | None, needs_proof: bool, killed: bool, evidence: Evidence
) -> Verdict | None:
    """Judge a kill by the live memory evidence, when there is any (a saved log has none).

    `needs_proof`: the verdict rests on a signature that claims out-of-memory from a kill alone (a
    bare SIGKILL, a killed DataLoader worker). `killed`: the run (or a rank) died by SIGKILL.
    """
    memory = evidence.memory
    if memory is None:
        return verdict
    proof = memory.oom_corroboration(extra_pids=killed_worker_pids(evidence))
    kill_proof = tuple(c for c in proof if c.kind in ("cgroup", "kernel"))
    if (
        proof
        and (killed or needs_proof)
        and (verdict is None or needs_proof or verdict.category in ("oom",) + ECHOES)
    ):
        return oom_confirmed(verdict, proof)
    if kill_proof and (verdict is None or verdict.category in ECHOES):
        return oom_confirmed(verdict, proof)  # the kernel killed part of the run: that is the cause
    if kill_proof and verdict is not None and verdict.category != "oom":
        # Another failure was named first-hand, but the run also lost a process to the OOM killer:
        # say so, with the proof, rather than leave it out.
        alt = Alternative(
            "oom",
            "oom/host",
            0.5,
            "The kernel's OOM killer killed a process of the "
            "run; the failure above may follow from it.",
        )
        return replace(
            verdict,
            alternatives=(alt,) + verdict.alternatives,
            evidence=verdict.evidence + kill_proof,
        )
    exited = None if proof else _worker_exit_status(evidence)
    if exited is not None and (
        verdict is None or needs_proof or verdict.category in ("oom",) + ECHOES
    ):
        return _worker_exited(verdict, exited)
    if verdict is not None and needs_proof:
        return _unproven(verdict, killed)
    return verdict


def _worker_exit_status(evidence: Evidence) -> Cited | None:
    """The exception that says a DataLoader worker ended by itself with a status, cited."""
    chains = (evidence.probe.chains if evidence.probe is not None else ()) + evidence.log_chains
    for chain in chains:
        for raised in chain.exceptions:
            if WORKER_EXIT_STATUS.search(raised.message):
                return Cited("exception", f"{raised.short_type}: {raised.message}", chain.where)
    return None


def _worker_exited(verdict: Verdict | None, exited: Cited) -> Verdict:
    """A DataLoader worker exited with a status of its own, no signal, and memory showed no
    pressure: no out-of-memory kill (the kernel's kill is a SIGKILL, torch's "killed by signal")."""
    status = WORKER_EXIT_STATUS.search(exited.text)
    code = status.group(2) if status else "?"
    alternatives = (
        ()
        if verdict is None or verdict.category == "unknown"
        else (Alternative(verdict.category, verdict.subtype, 0.3, verdict.summary),)
    )
    return Verdict(
        "unknown",
        None,
        0.4,
        f"A DataLoader worker ended by itself with exit status {code}, not by a signal, and memory "
        "was not at its limit: no out-of-memory kill. Its own error was lost with it (code in the "
        "Dataset or a native library that called exit, an error while the worker started).",
        alternatives=alternatives,
        evidence=cited_once((exited,), verdict.evidence if verdict else ()),
        culprit=verdict.culprit if verdict is not None else None,
        advice=(
            "Rerun with num_workers=0: the worker's code then runs in the main process, and its "
            "error stops the run with a traceback.",
            "Look above in the output for the worker's own last words (a native library's message, "
            "a warning before it left).",
        ),
    )


def oom_confirmed(verdict: Verdict | None, proof: tuple[Cited, ...]) -> Verdict:
    """The out-of-memory verdict the proof makes, keeping what `verdict` knew of the failure (its
    exception, culprit and cascade; its subtype and advice when it already said out-of-memory)."""
    base = verdict if verdict is not None and verdict.category == "oom" else None
    return Verdict(
        "oom",
        base.subtype if base is not None and base.subtype else "oom/host",
        0.97,
        "The run was killed for lack of memory: the memory evidence confirms an out-of-memory "
        "kill.",
        signature=verdict.signature if verdict is not None else None,
        evidence=cited_once(proof, verdict.evidence if verdict else ()),
        cascade=verdict.cascade if verdict is not None else (),
        culprit=verdict.culprit if verdict is not None else None,
        exception=verdict.exception if verdict is not None else None,
        exception_chain=verdict.exception_chain if verdict is not None else (),
        advice=base.advice
        if base is not None and base.advice
        else (
            "Lower the memory the run needs (batch size, num_workers, prefetch_factor, data held "
            "in memory), or raise the limit of its container or job.",
            "Look at the memory chart: a steady climb to the limit is a leak (tensors or "
            "Python objects kept across steps); a jump is one large allocation.",
        ),
    )


def _unproven(verdict: Verdict, killed: bool) -> Verdict:
    """Live evidence was collected and shows no memory pressure: do not claim out-of-memory.
    `killed`: the run itself died of SIGKILL; else only a process of it went away (a worker's
    connection reset, a worker "killed by signal")."""
    elsewhere = (
        "a scheduler, a time or resource limit, `kill -9`, an OOM killer outside this cgroup"
    )
    summary = (
        f"Killed by SIGKILL, but memory was not at its limit and no OOM kill was recorded: the "
        f"kill came from elsewhere ({elsewhere})."
        if killed
        else "A process of the run went away, but memory was not at its limit and no OOM kill "
        f"was recorded: it crashed or exited by itself, or was killed from elsewhere ({elsewhere})."
    )
    return Verdict(
        "unknown",
        None,
        0.4,
        summary,
        alternatives=(Alternative(verdict.category, verdict.subtype, 0.35, verdict.summary),),
        evidence=verdict.evidence,
        culprit=verdict.culprit,
        advice=(
            "Check the scheduler's and the kernel's logs (dmesg, journalctl -k) around the time "
            "of the kill.",
            "Ask whether someone or some watchdog sent kill -9 to the job.",
        ),
    )
