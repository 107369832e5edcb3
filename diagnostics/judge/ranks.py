"""Distributed runs: each rank's outcome, the root rank (the initiating failure), and the report's
`distributed` section.

Ranks are known from the probe's handshakes (RANK/LOCAL_RANK/WORLD_SIZE in each process's
environment), from the `[rankN]:` prefixes of a log, from torchrun's ChildFailedError table and
from torchrun's per-rank error files. The root rank is the one whose failure started it all: a
rank's own exception or fatal signal beats a SIGKILL without a message, which beats the cascade
the other ranks see (a peer's "connection closed", a collective's timeout, torchrun's
ChildFailedError), which beats the SIGTERM torchrun sends the survivors. Equals are ordered by
time. For a run that hung, the root rank is the one that is *not* waiting in a collective: the
others wait for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trainwatch.diagnostics.evidence import CITED_CHARS, Evidence, ExceptionChain, ExitStatus
from trainwatch.diagnostics.judge.collectives import (
    COLLECTIVE_MISMATCH,
    COLLECTIVE_TIMEOUT,
    JOB_MISTAKES,
    CollectiveFacts,
    dump_paths,
    judge_collectives,
)
from trainwatch.diagnostics.verdict import Alternative, Cited, Verdict, cited_once
from trainwatch.diagnostics.watch.torchrun import ElasticError, launcher_of, slurm_context

if TYPE_CHECKING:
    from trainwatch.diagnostics.read.tracebacks import ChildFailure
    from trainwatch.diagnostics.watch.probe.records import FatalSignal, ProbeProcess

STUCK = "Stuck "  # how a rank's own stall starts its summary: the job's sentence reads on from it
# Categories that describe the job's reaction to a failure rather than a failure of its own.
_ECHO_CATEGORIES = ("distributed", "interrupted", "hang", "completed", "early-exit")
_LAUNCHER_SIGNALS = (
    "SIGTERM",
    "SIGINT",
    "SIGHUP",
)  # what torchrun sends the survivors ("closing signal SIGTERM")


@dataclass(frozen=True)
class RankOutcome:
    """How one rank ended and what its own evidence says."""

    rank: int
    pid: int | None
    exit: ExitStatus | None  # None when nothing says (killed without a table, or still running)
    verdict: Verdict
    strength: int  # 3 its own failure, 2 killed without a message, 1 a cascade, 0 stopped or fine
    order: float  # when it failed, relative to the others (smaller is earlier); inf when unknown
    local_rank: int | None = None
    node: str | None = None
    error_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        exit = None if self.exit is None else (self.exit.signal or f"exit {self.exit.code}")
        return {
            "rank": self.rank,
            "pid": self.pid,
            "exit": exit,
            "category": self.verdict.category,
            "subtype": self.verdict.subtype,
            "summary": self.verdict.summary,
            "local_rank": self.local_rank,
            "node": self.node,
            "error_file": self.error_file,
        }


@dataclass(frozen=True)
class DistributedFacts:
    """A distributed run: its launcher, size, ranks, and which one failed first."""

    launcher: str | None
    world_size: int | None
    root_rank: int | None
    ranks: tuple[RankOutcome, ...] = ()
    slurm: dict[str, str] | None = None
    notes: tuple[str, ...] = field(default=())
    collectives: CollectiveFacts | None = None  # each rank's last collective, who fell behind

    @property
    def root(self) -> RankOutcome | None:
        return next((r for r in self.ranks if r.rank == self.root_rank), None)

    def to_dict(self) -> dict[str, Any]:
        """The report's `distributed` section (docs/distributed.md)."""
        root = self.root
        out = {
            "launcher": self.launcher,
            "world_size": self.world_size,
            "root_rank": self.root_rank,
            "root_node": None if root is None else root.node,
            "ranks": [r.to_dict() for r in self.ranks],
            "notes": list(self.notes),
        }
        if self.slurm:
            out["slurm"] = dict(self.slurm)
        if self.collectives is not None:
            out["collectives"] = self.collectives.to_dict()
        return out


def judge_ranks(
    evidence: Evidence,
    knowledge,
    env: dict[str, str] | None = None,
    errors: tuple[ElasticError, ...] = (),
    nodes: dict[int, str] | None = None,
    dump_dirs: tuple[str, ...] = (),
    since: float | None = None,
) -> DistributedFacts | None:
    """Each rank's outcome and the root rank; None when the run shows no ranks at all.

    `nodes` names the node (or log file) each rank was seen on, for logs of several nodes.
    Flight-recorder dumps are looked for where the log says they were written, at the prefix `env`
    names (written after `since`), and in `dump_dirs` (diagnostics/judge/collectives.py).
    """
    seen = RanksSeen.of(evidence, errors)
    launcher = launcher_of(evidence.command) or ("torchrun" if seen.failures else None)
    slurm = slurm_context(env or {})
    collectives = _collectives(evidence, seen.ranks, env, dump_dirs, since)
    ranks = sorted(
        set(seen.ranks) | {p.rank for p in (collectives.positions if collectives else ())}
    )
    if not ranks:
        if launcher is None and slurm is None:
            return None
        return DistributedFacts(launcher, None, None, slurm=slurm)
    outcomes = [_judge_rank(rank, seen, evidence, knowledge, nodes) for rank in ranks]
    root = _straggler(collectives, outcomes) or _choose_root(outcomes, evidence)
    failed = next((o for o in outcomes if o.rank == root), None)
    return DistributedFacts(
        launcher or ("torchrun" if seen.processes else None),
        seen.world_size(ranks),
        root,
        tuple(_stopped_for(o, failed) for o in outcomes),
        slurm=slurm,
        notes=seen.notes(),
        collectives=collectives,
    )


@dataclass(frozen=True)
class RanksSeen:
    """What the evidence says rank by rank: processes, torchrun's table, tracebacks, error files."""

    processes: tuple[ProbeProcess, ...]  # the probe's processes that have a rank (forks excluded)
    by_rank: dict[int, ProbeProcess]  # each rank's own process: the first started with that rank
    failures: dict[int, ChildFailure]  # torchrun's failure table, by rank
    log_chains: tuple[ExceptionChain, ...]  # the log's tracebacks that carry a rank
    probe_chains: tuple[ExceptionChain, ...]
    fatal: tuple[FatalSignal, ...]  # the probe's fatal signals
    errors_by_local: dict[int, ElasticError]  # torchrun's error files, by local rank

    @classmethod
    def of(cls, evidence: Evidence, errors: tuple[ElasticError, ...]) -> RanksSeen:
        probe, log = evidence.probe, evidence.log
        processes = tuple(
            p
            for p in (probe.processes if probe is not None else ())
            if p.rank is not None and not p.forked
        )
        by_rank: dict[int, ProbeProcess] = {}
        for proc in sorted(processes, key=lambda p: p.started):
            by_rank.setdefault(proc.rank, proc)
        failures = {
            f.rank: f for f in (log.child_failures if log is not None else ()) if f.rank is not None
        }
        return cls(
            processes=processes,
            by_rank=by_rank,
            failures=failures,
            log_chains=tuple(
                c for c in (log.chains if log is not None else ()) if c.rank is not None
            ),
            probe_chains=probe.chains if probe is not None else (),
            fatal=probe.fatal if probe is not None else (),
            errors_by_local={e.local_rank: e for e in errors if e.local_rank is not None},
        )

    @property
    def ranks(self) -> list[int]:
        return sorted(set(self.by_rank) | set(self.failures) | {c.rank for c in self.log_chains})

    def chains_of(self, rank: int) -> tuple[ExceptionChain, ...]:
        """The rank's own exceptions: the probe's records, else the log's tracebacks, else the
        traceback in its torchrun error file."""
        chains = tuple(c for c in self.probe_chains if c.rank == rank) or tuple(
            c for c in self.log_chains if c.rank == rank
        )
        error = self.error_of(rank)
        if not chains and error is not None and error.traceback:
            chains = _chains_from_text(error.traceback, rank)
        return chains

    def error_of(self, rank: int) -> ElasticError | None:
        proc = self.by_rank.get(rank)
        return self.errors_by_local.get(proc.local_rank if proc is not None else rank)

    def world_size(self, ranks: list[int]) -> int:
        declared = next((p.world_size for p in self.processes if p.world_size), None)
        return declared or max(len(ranks), max(ranks) + 1)

    def notes(self) -> tuple[str, ...]:
        if self.failures and any(f.error_file is None for f in self.failures.values()):
            return (
                "torchrun's table says error_file: <N/A> (the script has no @record); each rank's "
                "outcome here comes from trainwatch's probe and the log",
            )
        return ()


def _judge_rank(
    rank: int, seen: RanksSeen, evidence: Evidence, knowledge, nodes: dict[int, str] | None
) -> RankOutcome:
    """One rank's outcome, from its own evidence only."""
    from trainwatch.diagnostics.judge.classify import classify

    proc = seen.by_rank.get(rank)
    failure = seen.failures.get(rank)
    pid = proc.pid if proc is not None else None
    chains = seen.chains_of(rank)
    own_fatal = tuple(f for f in seen.fatal if f.rank == rank)
    exit = _rank_exit(failure, proc, chains, own_fatal)
    verdict = classify(_rank_evidence(evidence, exit, chains, own_fatal, proc), knowledge)
    strength = _strength(verdict, exit, knowledge, bool(chains or own_fatal))
    wait = _main_wait(evidence.stall, pid)
    if wait is not None and strength == 0:
        verdict = _hang_verdict(wait)  # a hung rank: where it waits says more than its exit
    error = seen.error_of(rank)
    return RankOutcome(
        rank,
        pid,
        exit,
        verdict,
        strength,
        _order(chains, list(seen.probe_chains), list(seen.log_chains), failure),
        local_rank=proc.local_rank if proc is not None else None,
        node=(nodes or {}).get(rank),
        error_file=error.path if error is not None else None,
    )


def _stopped_for(outcome: RankOutcome, failed: RankOutcome | None) -> RankOutcome:
    """A rank that shows nothing of its own, or only the launcher's SIGTERM, while another rank
    failed first (its own error, or killed), was stopped because of that failure: whether it had
    time to print its peer's lost connection before torchrun's SIGTERM is a race, and its outcome
    must not depend on it. `failed` is the root rank's outcome."""
    if (
        failed is None
        or outcome.rank == failed.rank
        or (failed.strength < 2 and failed.verdict.subtype not in _PEER_GONE)
        or outcome.strength > 0
        or outcome.verdict.category not in ("unknown", "interrupted")
        or (outcome.exit is not None and outcome.exit.signal not in _LAUNCHER_SIGNALS)
    ):
        return outcome
    if failed.strength < 2:
        # the root only lost this peer (a collective that timed out): this rank, which printed
        # nothing of its own until the launcher stopped it, is the one it waited for
        # (forty-third session's real runs: a rank that skipped an all_reduce read as stopped by
        # "a scheduler or a person")
        summary = (
            f"Stopped by the launcher after rank {failed.rank}'s wait for its peers ended "
            f"({failed.verdict.subtype}); this rank printed no error of its own: most likely it "
            "is the one that never reached that collective."
        )
        advice = (
            f"Look at what this rank did instead of the collective rank {failed.rank} waited in: "
            "a branch on the rank, a condition only some ranks meet, a step far slower here."
        )
    else:
        summary = (
            f"Stopped after rank {failed.rank} failed: the launcher ends the other ranks when one "
            "fails."
        )
        advice = f"Look at rank {failed.rank}: its failure is the cause."
    verdict = Verdict(
        "distributed",
        "distributed/peer-failed",
        0.6,
        summary,
        evidence=outcome.verdict.evidence,
        advice=(advice,),
    )
    return dataclasses.replace(outcome, verdict=verdict, strength=1)


def _straggler(collectives: CollectiveFacts | None, outcomes: list[RankOutcome]) -> int | None:
    """The rank the others waited for in a collective, unless another rank failed on its own (a
    crash or a kill would be the cause, and the timeouts its cascade). A rank that reported
    waiting in the collective and then died is no such rank: NCCL's watchdog aborts (SIGABRT) the
    process whose collective timed out."""
    if collectives is None or not collectives.suspects:
        return None
    waiting = set(collectives.waiting)
    suspects = set(collectives.suspects)
    if any(o.strength >= 2 and o.rank not in waiting | suspects for o in outcomes):
        return None
    return collectives.suspects[0]


def _hang_verdict(wait) -> Verdict:
    return Verdict(
        "hang",
        f"hang/{wait.kind}" if wait.kind not in ("unknown", "busy") else None,
        0.7,
        f"{STUCK}{wait.description} at {wait.where}.",
        evidence=(Cited("stack", f"{wait.description} at {wait.where}", wait.source),),
    )


def _collectives(
    evidence: Evidence,
    ranks: list[int],
    env: dict[str, str] | None,
    dump_dirs: tuple[str, ...],
    since: float | None,
) -> CollectiveFacts | None:
    """Each rank's last collective, from the watchdog lines and the flight-recorder dumps."""
    lines = evidence.log.collective_lines if evidence.log is not None else ()
    dumps = dump_paths(lines, env, ranks, dump_dirs, since)
    if not lines and not dumps:
        return None
    return judge_collectives(lines, dumps, world=ranks)


def job_verdict(verdict: Verdict, facts: DistributedFacts | None) -> Verdict:
    """The job's verdict: the root rank's failure, with the other ranks' failures as its cascade."""
    if facts is None or facts.root is None or len(facts.ranks) < 2:
        return verdict  # one rank is no job of several: its verdict is the run's
    if verdict.category == "completed":
        # the run reached its end after a rank's failure: a launcher's restart went on from it
        # (torchrun --max-restarts, a real run), the failure is among the ranks' outcomes
        return verdict
    root = facts.root
    chosen = verdict
    # The root rank's own exception says less than the whole log when nothing explains it and the
    # lines around it name a failure of its own (an allocator's out-of-memory line); an echo (a
    # peer's SIGTERM, a timeout) never outweighs the root rank.
    # A distributed reading that is no peer's loss (the process group never formed: no rank got
    # far enough to fail on its own; a port taken) names the job's failure; a root rank known only
    # by torchrun's table (exit 1, its traceback untagged) says less (a real run's world_size=3 on
    # two processes read "cause not established").
    echo = verdict.category in _ECHO_CATEGORIES and (
        verdict.category != "distributed" or verdict.subtype in _PEER_GONE
    )
    informative = root.verdict.category != "unknown" or echo or verdict.category == "unknown"
    # A mistake of the job's own that a rank's crash only shows (gloo aborts the rank that received
    # a collective of another size): the whole log names it, the rank's signal does not.
    names_cause = verdict.subtype in JOB_MISTAKES and (
        verdict.confidence > root.verdict.confidence or _said_before(verdict, root.verdict)
    )
    # A root rank known only by its signal (torchrun's table: SIGABRT, no traceback of its own)
    # while the log holds a failure of its own kind, surer, printed without a rank's tag (a logger's
    # record of the exception, then a teardown abort, `terminate called without an active
    # exception`): that failure is the rank's cause, the signal its end.
    untagged_cause = (
        root.strength == 2
        and verdict.category not in (*_ECHO_CATEGORIES, "unknown")
        and verdict.confidence > root.verdict.confidence
    )
    if (
        root.strength >= 2
        and informative
        and not names_cause
        and not untagged_cause
        and (verdict.category != root.verdict.category or verdict.subtype != root.verdict.subtype)
    ):
        # The whole-run verdict named an echo (or another rank's failure); the root rank's own
        # failure wins.
        chosen = dataclasses.replace(
            root.verdict,
            evidence=cited_once(
                root.verdict.evidence, (c for c in verdict.evidence if c.kind == "exit")
            ),
        )
    cascade = tuple(
        Cited(
            "rank",
            f"rank {r.rank}: {_exit_words(r.exit)}, {r.verdict.summary}"[:CITED_CHARS],
            f"pid {r.pid}" if r.pid else "log",
        )
        for r in facts.ranks
        if r.rank != root.rank and (r.strength > 0 or r.exit is not None)
    )
    left = _left_early(root, facts.ranks)
    if left:
        return _uneven_work(chosen, root, left, cascade)
    summary = chosen.summary
    collectives = facts.collectives
    told = None if collectives is None else collectives.summary()
    if told and root.strength < 2 and root.rank in collectives.suspects:
        # Every rank's failure is a timeout or a stop from outside: the one the others waited for
        # in a collective is the cause, and what it was doing is the clue.
        # (ranks in different operations at one number called different collectives: c10d's
        # debug wrapper says so at once, with no timeout)
        subtype = COLLECTIVE_MISMATCH if collectives.mismatched else COLLECTIVE_TIMEOUT
        if chosen.subtype != subtype:
            chosen = Verdict("distributed", subtype, 0.75, "", advice=chosen.advice)
        chosen = dataclasses.replace(chosen, evidence=collectives.cited() + chosen.evidence)
        summary = told if collectives.mismatched else f"Collective timeout: {told}"
    elif chosen.category == "hang" and root.verdict.category == "hang":
        # The whole-run stall names the first process's wait (often torchrun's own); the root rank's
        # says why.
        waiting = [
            r.rank
            for r in facts.ranks
            if r.rank != root.rank and r.verdict.subtype == "hang/collective"
        ]
        others = ""
        if waiting:
            names = ", ".join(map(str, waiting))
            others = (
                f"; rank {names} waits for it in a collective"
                if len(waiting) == 1
                else f"; ranks {names} wait for it in a collective"
            )
        said = root.verdict.summary.rstrip(".")
        # the rank's stall ("Stuck waiting ... at ...") reads on after "rank N is"; another
        # reading's whole sentence ("The run was stopped by hand while it waited ...") stays whole
        if said.startswith(STUCK):
            summary = f"The job hung: rank {root.rank} is {said[len(STUCK) :]}{others}."
        else:
            summary = f"The job hung at rank {root.rank}. {said}{others}."
        chosen = dataclasses.replace(
            chosen, evidence=cited_once(root.verdict.evidence, chosen.evidence)
        )
    elif not summary.startswith("Rank ") and not names_cause:
        # (a mistake of the whole job is no rank's failure: which rank met it first says nothing)
        summary = f"Rank {root.rank} failed first: {summary}"
        if told:
            chosen = dataclasses.replace(chosen, evidence=chosen.evidence + collectives.cited())
        absent = _never_reached(root, facts.ranks)
        if absent and not told:
            names = ", ".join(map(str, absent))
            summary += (
                f" Rank {names}, stopped by the launcher with no error of its own, most likely "
                "never reached it."
                if len(absent) == 1
                else f" Ranks {names}, stopped by the launcher with no error of their own, most "
                "likely never reached it."
            )
    return dataclasses.replace(chosen, summary=summary, cascade=(chosen.cascade + cascade)[:8])


def _said_before(cause: Verdict, failure: Verdict) -> bool:
    """Was the job's mistake printed before the rank's failure, on the same stream? A rank that
    received a collective of another size than it sent can fail on what it received before gloo's
    abort of its peer reaches the launcher (a real run: an all_gather of 51 and 50 predictions, then
    a 64 GiB allocation for a bincount of the garbage): what followed the mistake is its
    consequence, however sure its own reading."""
    said, failed = _first_lines(cause.evidence), _first_lines(failure.evidence)
    return any(stream in failed and line < failed[stream] for stream, line in said.items())


def _first_lines(evidence: tuple[Cited, ...]) -> dict[str, int]:
    """The first line each stream's evidence cites (an exit status is no line of the log)."""
    first: dict[str, int] = {}
    for cited in evidence:
        if cited.kind != "exit" and (place := cited.place) is not None:
            stream, line = place
            first[stream] = min(line, first.get(stream, line))
    return first


# The root rank's failures that say only that a peer stopped answering: lost, closed, timed out.
_PEER_GONE = (
    "distributed/peer-failed",
    "distributed/connection-lost",
    "distributed/barrier-timeout",
    COLLECTIVE_TIMEOUT,
)


def _never_reached(root: RankOutcome, ranks: tuple[RankOutcome, ...]) -> tuple[int, ...]:
    """The ranks the launcher stopped, with nothing of their own, after the root rank only lost
    its peers (`_stopped_for`): the ones it waited for."""
    if root.strength >= 2 or root.verdict.subtype not in _PEER_GONE:
        return ()
    return tuple(
        r.rank
        for r in ranks
        if r.rank != root.rank and r.verdict.subtype == "distributed/peer-failed"
    )


def _left_early(root: RankOutcome, ranks: tuple[RankOutcome, ...]) -> tuple[int, ...]:
    """The ranks that ended well (status 0, nothing of their own) while the root rank lost its
    peers: they left the collectives the root still waited in."""
    if root.verdict.subtype not in _PEER_GONE:
        return ()
    return tuple(
        r.rank
        for r in ranks
        if r.rank != root.rank and r.exit is not None and r.exit.code == 0 and r.strength == 0
    )


def _uneven_work(
    chosen: Verdict, root: RankOutcome, left: tuple[int, ...], cascade: tuple[Cited, ...]
) -> Verdict:
    """The job's verdict when ranks that finished cleanly left the others waiting for them."""
    names = ", ".join(map(str, left))
    rank_words = f"Rank {names}" if len(left) == 1 else f"Ranks {names}"
    return Verdict(
        "distributed",
        "distributed/uneven-work",
        0.7,
        f"{rank_words} finished its work and exited with status 0 while rank {root.rank} still "
        "expected it in a collective, which then failed: the ranks had unequal work (an uneven "
        "split of the data, a loop bound or an early stop that differs between ranks).",
        evidence=chosen.evidence,
        culprit=chosen.culprit,
        exception=chosen.exception,
        exception_chain=chosen.exception_chain,
        alternatives=(Alternative(chosen.category, chosen.subtype, 0.4, chosen.summary),),
        advice=(
            "Give every rank the same number of steps: a DistributedSampler (it pads the last "
            "shard; or drop_last=True), a fixed max_steps, or an early stop decided together "
            "(all-reduce the stop flag).",
            "For inputs that are uneven by nature, wrap the loop in "
            "`torch.distributed.algorithms.Join` (DDP's `join()`), which lets the ranks that "
            "finish first shadow the others' collectives.",
        ),
        cascade=(chosen.cascade + cascade)[:8],
    )


# ---- per-rank evidence ---------------------------------------------------------------------------
def _rank_evidence(evidence: Evidence, exit: ExitStatus | None, chains, fatal, proc) -> Evidence:
    from trainwatch.diagnostics.read.logparse import LogFacts

    probe = evidence.probe
    if probe is not None:
        probe = dataclasses.replace(
            probe,
            processes=(proc,) if proc is not None else (),
            chains=tuple(c for c in chains if c.origin == "probe"),
            fatal=fatal,
            workers=tuple(w for w in probe.workers if w.carrier in chains),
            stacks=(),
        )
    log_chains = tuple(c for c in chains if c.origin != "probe")
    return Evidence(
        source=evidence.source,
        command=evidence.command,
        exit=exit,
        log=LogFacts(lines=0, chains=log_chains),
        probe=probe,
        memory=evidence.memory,
    )


def _rank_exit(failure, proc, chains: tuple[ExceptionChain, ...], fatal) -> ExitStatus | None:
    """How the rank ended: torchrun's table when it has one, else what the probe saw."""
    if failure is not None and failure.exitcode is not None:
        return ExitStatus.from_returncode(failure.exitcode)
    if fatal:
        import signal as _signal

        number = getattr(_signal, fatal[0].signal, None)
        return ExitStatus.from_returncode(-int(number)) if number else None
    exits = [c for c in chains if c.final.type == "SystemExit"]
    if exits:
        try:
            return ExitStatus.from_returncode(int(exits[0].final.message))
        except ValueError:
            return ExitStatus.from_returncode(1)
    if any(c.thread is None for c in chains):
        # an uncaught exception in the main thread: Python exits with 1
        return ExitStatus.from_returncode(1)
    if proc is not None and proc.exited:
        return ExitStatus.from_returncode(0)
    return None


def strength_of(verdict: Verdict, exit: ExitStatus | None, knowledge, own_evidence: bool) -> int:
    """How much a failure looks initiating: 3 its own failure, 2 killed without a message, 1 a
    cascade (a peer's closed connection, a timeout, ChildFailedError), 0 stopped from outside or
    no failure.
    """
    return _strength(verdict, exit, knowledge, own_evidence)


def _strength(verdict: Verdict, exit: ExitStatus | None, knowledge, own_evidence: bool) -> int:
    signature = (
        knowledge.get(verdict.signature) if knowledge is not None and verdict.signature else None
    )
    if signature is not None and signature.role == "cascade":
        return 1
    if verdict.category in ("completed", "early-exit"):
        return 0
    if verdict.category == "interrupted" or (
        exit is not None and exit.signal in _LAUNCHER_SIGNALS and not own_evidence
    ):
        return 0
    if verdict.category in _ECHO_CATEGORIES:
        return 1
    if own_evidence and verdict.category != "unknown":
        return 3
    if exit is not None and (exit.signal is not None or exit.code not in (0, None)):
        return 2
    return 1 if own_evidence else 0


def _order(chains, probe_chains, log_chains, failure) -> float:
    """When the rank failed, relative to the others: the probe records in time order, the log in
    line order.
    """
    for chain in chains:
        if chain in probe_chains:
            return float(probe_chains.index(chain))
        if chain.line is not None:
            return 1000.0 + chain.line
    if failure is not None:  # torchrun lists the first observed failure as its root cause, index 0
        return 1_000_000.0 + failure.index
    return float("inf")


def _choose_root(outcomes: list[RankOutcome], evidence: Evidence) -> int | None:
    failed = [o for o in outcomes if o.strength > 0]
    if failed:
        return min(failed, key=lambda o: (-o.strength, o.order, o.rank)).rank
    stall = evidence.stall
    if stall is None:
        return None
    # A hang: the rank waiting somewhere other than a collective (or the group's rendezvous, where
    # every rank waits for the missing ones, or a backward pass, whose DDP all-reduce waits for the
    # ranks that do not reach theirs) is the one the others wait for.
    pid_rank = {o.pid: o.rank for o in outcomes if o.pid is not None}
    waits = {}
    for wait in stall.waits:
        if wait.pid in pid_rank and wait.thread in ("main", None):
            waits.setdefault(pid_rank[wait.pid], wait)
    stragglers = sorted(
        r for r, w in waits.items() if w.kind not in ("collective", "rendezvous", "backward")
    )
    if stragglers:
        return stragglers[0]
    sites: dict[str, list[int]] = {}
    for (
        rank,
        wait,
    ) in waits.items():  # every rank in a collective: the one at a call site the others are not at
        sites.setdefault(wait.where, []).append(rank)
    if len(sites) > 1:
        return min(min(sites.values(), key=len))
    return None


def _main_wait(stall, pid: int | None):
    """Where a rank's main thread waited when the stall was declared."""
    if stall is None or pid is None:
        return None
    return next((w for w in stall.waits if w.pid == pid and w.thread in ("main", None)), None)


def _chains_from_text(text: str, rank: int) -> tuple[ExceptionChain, ...]:
    from trainwatch.diagnostics.read.logparse import parse_text

    return tuple(dataclasses.replace(c, rank=rank) for c in parse_text(text).chains)


def _exit_words(exit: ExitStatus | None) -> str:
    if exit is None:
        return "exit unknown"
    return f"killed by {exit.signal}" if exit.signal else f"exit {exit.code}"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
