"""Collective timeouts: which rank fell out of step, from every rank's watchdog lines and PyTorch's
flight-recorder dumps.

When one rank stops calling collectives (stuck in its data loader, in a rank-dependent branch,
dead), the others wait in their next collective until the watchdog fires; each then reports the
sequence number of the collective it waits in. The rank that fell behind is the one whose last
collective is older than the others' (or that reports none while they all agree): the report
names it and where it was. Sources, in PyTorch's own words:

- NCCL's watchdog (ProcessGroupNCCL): `[Rank 1] Watchdog caught collective operation timeout:
  WorkNCCL(SeqNum=3, OpType=ALLREDUCE, ...) ran for 1800613 milliseconds before timing out.`,
  `[PG 0 Rank 1] Timeout at NCCL work: 3, last enqueued NCCL work: 3, last completed NCCL work:
  2.` and `... Exception (either an error or timeout) detected by watchdog at work: ...`; the log
  prefix is `[Rank N]`, `[PG P Rank N]` or `[PG ID P PG GUID G(desc) Rank N]` by version.
- c10d's debug wrapper (TORCH_DISTRIBUTED_DEBUG=DETAIL, gloo's monitored barrier): `Ranks 1
  failed to pass monitoredBarrier in 3000 ms`, and `Detected mismatch between collectives on
  ranks. Rank 0 is running collective: CollectiveFingerPrint(SequenceNumber=3, OpType=ALLREDUCE,
  ...), but Rank 1 is running collective: CollectiveFingerPrint(SequenceNumber=3,
  OpType=BROADCAST, ...)`.
- The flight recorder (TORCH_NCCL_TRACE_BUFFER_SIZE or TORCH_FR_BUFFER_SIZE > 0; dumped on a
  timeout with TORCH_NCCL_DUMP_ON_TIMEOUT=1 to `<TORCH_NCCL_DEBUG_INFO_TEMP_FILE><rank>`, by
  default /tmp/nccl_trace_rank_<rank>, and announced as `Finished writing Flight Recorder debug
  info to <file>`): a pickle (or JSON) of the last collectives of each rank, with their sequence
  ids, names, states and Python frames (torch/distributed/flight_recorder reads the same files).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from trainwatch.diagnostics.evidence import LogLine
from trainwatch.diagnostics.read.frames import is_user_file
from trainwatch.diagnostics.verdict import Cited

COLLECTIVE_TIMEOUT = "distributed/collective-timeout"
COLLECTIVE_MISMATCH = "distributed/collective-mismatch"
# distributed failures that are the job's own mistake, not what a rank saw of another's failure
JOB_MISTAKES = (COLLECTIVE_MISMATCH,)

# Literal words the log parser's pre-filter looks for: a line with none of them says nothing here.
COLLECTIVE_WORDS = (
    "WorkNCCL(",
    "NCCL work:",
    "watchdog at work:",
    "monitoredBarrier",
    "CollectiveFingerPrint(",
    "Flight Recorder debug info",
)
# Where NCCL writes its flight-recorder dumps unless told otherwise (ProcessGroupNCCL's default).
DEFAULT_DUMP_PREFIX = "/tmp/nccl_trace_rank_"
DUMP_ENV = ("TORCH_FR_DUMP_TEMP_FILE", "TORCH_NCCL_DEBUG_INFO_TEMP_FILE")
MAX_DUMP_BYTES = 64 << 20  # a dump holds at most the trace buffer (a few thousand entries)

# `[Rank 1]`, `[PG 0 Rank 1]`, `[PG 0 (default_pg) Rank 1]`,
# `[PG ID 0 PG GUID 0(default_pg) Rank 1]`
_PREFIX = re.compile(r"\[(?:PG (?:ID )?(?P<pg>\d+)[^\]\[]*? )?Rank (?P<rank>\d+)\]")
_WORK = re.compile(r"WorkNCCL\((?:SeqNum=(?P<seq>\d+), )?OpType=(?P<op>\w+)")
_RAN_FOR = re.compile(r"ran for (?P<ms>\d+) milliseconds before timing out")
_ENQUEUED = re.compile(
    r"(?:Timeout at NCCL work|detected by watchdog at work): (?P<seq>-?\d+), last enqueued NCCL "
    r"work: (?P<enqueued>-?\d+), last completed NCCL work: (?P<completed>-?\d+)"
)
_BARRIER = re.compile(r"Ranks? (?P<ranks>\d+(?:, ?\d+)*) failed to pass monitoredBarrier")
# (a fingerprint without tensors runs its fields together: `SequenceNumber=20OpType=BARRIER`)
_FINGERPRINT = re.compile(
    r"Rank (?P<rank>\d+) is running collective: CollectiveFingerPrint\(SequenceNumber="
    r"(?P<seq>\d+),? ?OpType=(?P<op>\w+)"
)
_DUMP_WRITTEN = re.compile(r"Finished writing Flight Recorder debug info to (?P<path>\S+)")


@dataclass(frozen=True)
class RankPosition:
    """Where one rank stood in one process group's sequence of collectives."""

    rank: int
    group: str  # the process group's id ("0" for the default group)
    seq: int | None  # the last collective it reached (enqueued, or timed out in)
    op: str | None  # that collective's operation: "ALLREDUCE", "nccl:all_reduce"
    completed: int | None = None  # the last one it completed, when said
    where: str | None = None  # the user's frame that called it (flight recorder)
    source: str = ""  # "line 812", "flight recorder /tmp/nccl_trace_rank_1"
    text: str = ""  # the line or entry it was read from

    def describe(self) -> str:
        what = f"{self.op} #{self.seq}" if self.op else f"collective #{self.seq}"
        return what + (f" at {self.where}" if self.where else "")


@dataclass(frozen=True)
class CollectiveFacts:
    """Each rank's last collective, and the ranks that fell behind or called another one."""

    positions: tuple[RankPosition, ...]
    behind: tuple[int, ...]  # ranks whose last collective is older than the others'
    front: RankPosition | None  # the collective the others wait in
    mismatched: tuple[RankPosition, ...] = ()  # ranks in another operation at the same number
    silent: tuple[int, ...] = ()  # ranks with no collective line while the others agree
    dumps: tuple[str, ...] = ()  # flight-recorder files read

    @property
    def suspects(self) -> tuple[int, ...]:
        """The ranks the others wait for: behind first, then mismatched, then silent."""
        seen: dict[int, None] = {}
        for rank in (*self.behind, *(p.rank for p in self.mismatched), *self.silent):
            seen.setdefault(rank, None)
        return tuple(seen)

    @property
    def waiting(self) -> tuple[int, ...]:
        """The ranks that reported waiting in the front collective."""
        if self.front is None:
            return ()
        suspects = set(self.suspects)
        return tuple(sorted({p.rank for p in self.positions if p.seq == self.front.seq} - suspects))

    def summary(self) -> str | None:
        """One sentence naming the rank(s) out of step, or None when every rank was in step."""
        front = self.front
        if front is None:
            if not self.behind:
                return None
            return (
                f"{_ranks(self.behind).capitalize()} did not reach the barrier the others "
                "waited at."
            )
        waiting = self.waiting
        wait = f"{_ranks(waiting)} waited in {front.describe()}" if waiting else ""
        if self.behind:
            last = [self.position(r) for r in self.behind]
            where = "; ".join(
                f"rank {p.rank}'s last collective was {p.describe()}" for p in last if p is not None
            )
            told = f" ({where})" if where else ""
            return f"{_ranks(self.behind).capitalize()} fell behind{told}" + (
                f" while {wait}." if wait else "."
            )
        if self.mismatched:
            calls = "; ".join(f"rank {p.rank} called {p.op} #{p.seq}" for p in self.mismatched)
            return f"Ranks called different collectives: {calls}, while {wait or 'the others'}."
        if self.silent:
            return (
                f"{_ranks(self.silent).capitalize()} reported no collective timeout: it never "
                f"reached {front.describe()}, where {wait or 'the others waited'}."
            )
        return None

    def position(self, rank: int) -> RankPosition | None:
        return next((p for p in self.positions if p.rank == rank), None)

    def cited(self) -> tuple[Cited, ...]:
        """The evidence: each suspect's last collective, then the one the others wait in."""
        out = [
            Cited("collective", p.text or f"rank {p.rank}: {p.describe()}", p.source)
            for p in (self.position(r) for r in self.suspects)
            if p is not None
        ]
        if self.front is not None and self.front.rank not in self.suspects:
            out.append(
                Cited("collective", self.front.text or self.front.describe(), self.front.source)
            )
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """The report's `distributed.collectives` section (docs/distributed.md)."""
        return {
            "behind": list(self.behind),
            "mismatched": [p.rank for p in self.mismatched],
            "silent": list(self.silent),
            "front": None if self.front is None else _position_dict(self.front),
            "ranks": [_position_dict(p) for p in self.positions],
            "flight_recorder": list(self.dumps),
            "summary": self.summary(),
        }


# ---- reading -------------------------------------------------------------------------------------
def positions_from_lines(lines: Iterable[tuple[int | None, LogLine]]) -> list[RankPosition]:
    """Every position a watchdog or debug-wrapper line states, in log order."""
    out: list[RankPosition] = []
    for prefix_rank, line in lines:
        text = line.text
        for m in _FINGERPRINT.finditer(text):
            out.append(
                RankPosition(
                    int(m["rank"]), "0", int(m["seq"]), m["op"], None, None, line.where, text
                )
            )
        head = _PREFIX.search(text)
        rank = int(head["rank"]) if head else prefix_rank
        if rank is None:
            continue
        group = head["pg"] if head and head["pg"] is not None else "0"
        work, enqueued = _WORK.search(text), _ENQUEUED.search(text)
        if enqueued is not None:
            seq = max(int(enqueued["seq"]), int(enqueued["enqueued"]))
            done = int(enqueued["completed"])
            out.append(RankPosition(rank, group, seq, None, done, None, line.where, text))
        elif work is not None and work["seq"] is not None:
            out.append(
                RankPosition(
                    rank, group, int(work["seq"]), work["op"], None, None, line.where, text
                )
            )
    return out


def barrier_stragglers(lines: Iterable[tuple[int | None, LogLine]]) -> tuple[int, ...]:
    """The ranks a monitored barrier names as not having arrived."""
    found: dict[int, None] = {}
    for _, line in lines:
        m = _BARRIER.search(line.text)
        if m:
            for rank in re.split(r",\s*", m["ranks"]):
                found.setdefault(int(rank), None)
    return tuple(found)


def dump_paths(
    lines: Iterable[tuple[int | None, LogLine]] = (),
    env: dict[str, str] | None = None,
    ranks: Iterable[int] = (),
    directories: Iterable[str] = (),
    since: float | None = None,
) -> list[str]:
    """Flight-recorder files to read: those the log says were written, those at the dump prefix
    the environment names for each rank (written after `since`), and those in the directories."""
    found: dict[str, None] = {}
    for _, line in lines:
        m = _DUMP_WRITTEN.search(line.text)
        if m:
            found.setdefault(m["path"].rstrip(".,;"), None)
    env = env or {}
    prefix = next((env[k] for k in DUMP_ENV if env.get(k)), None)
    if prefix is None and env.get("TORCH_NCCL_DUMP_ON_TIMEOUT", "") not in ("", "0"):
        prefix = DEFAULT_DUMP_PREFIX
    if prefix is not None:
        for rank in ranks:
            found.setdefault(f"{prefix}{rank}", None)
    for directory in directories:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if re.search(r"(?:trace|fr|flight)[\w-]*?_?\d+(?:\.json)?$", name, re.I):
                found.setdefault(os.path.join(directory, name), None)
    paths = []
    for path in found:
        try:
            if os.path.isfile(path) and (since is None or os.path.getmtime(path) >= since):
                paths.append(path)
        except OSError:
            continue
    return paths


def read_dump(path: str) -> dict[str, Any] | None:
    """One flight-recorder dump (pickle or JSON), or None when the file is not one.

    The pickle is read with no class allowed: a dump holds only dicts, lists, strings and numbers,
    and a file found in a log folder must not be able to run code."""
    try:
        if os.path.getsize(path) > MAX_DUMP_BYTES:
            return None
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    dump: Any = None
    if data[:1] in (b"{", b"["):
        try:
            dump = json.loads(data)
        except ValueError:
            return None
    else:
        try:
            dump = _PlainUnpickler(io.BytesIO(data)).load()
        except Exception:  # not a pickle, a cut one, or one that names a class
            return None
    if not isinstance(dump, dict) or not isinstance(dump.get("entries"), list):
        return None
    return dump


def positions_from_dump(path: str, dump: dict[str, Any]) -> list[RankPosition]:
    """Each process group's last collective in one rank's dump."""
    rank = _dump_rank(path, dump)
    if rank is None:
        return []
    last: dict[str, dict[str, Any]] = {}
    for entry in dump["entries"]:
        if not isinstance(entry, dict) or entry.get("is_p2p"):
            continue
        group = entry.get("process_group")
        gid = (
            str(group[0])
            if isinstance(group, (list, tuple)) and group
            else str(entry.get("pg_id", "0"))
        )
        seq = entry.get("collective_seq_id")
        if isinstance(seq, int) and seq > int(last.get(gid, {}).get("collective_seq_id") or 0):
            last[gid] = entry
    out = []
    for gid, entry in last.items():
        name = str(entry.get("profiling_name") or "") or None
        state = entry.get("state")
        text = f"rank {rank}: {name or 'collective'} #{entry['collective_seq_id']}" + (
            f" ({state})" if state else ""
        )
        out.append(
            RankPosition(
                rank,
                gid,
                int(entry["collective_seq_id"]),
                name,
                None,
                _user_frame(entry.get("frames")),
                f"flight recorder {path}",
                text,
            )
        )
    return out


# ---- judging -------------------------------------------------------------------------------------
def judge_collectives(
    lines: Iterable[tuple[int | None, LogLine]],
    dumps: Iterable[str] = (),
    world: Iterable[int] = (),
) -> CollectiveFacts | None:
    """Compare the ranks' last collectives; None when nothing was said about collectives.

    `world` lists the ranks known to exist (from other evidence): one that reported nothing while
    every other agrees is named as silent. Flight-recorder positions win over log lines for a rank
    (they are recorded by the rank itself, up to its last call)."""
    lines = list(lines)
    read = [(p, d) for p, d in ((p, read_dump(p)) for p in dumps) if d is not None]
    from_dumps = [pos for path, dump in read for pos in positions_from_dump(path, dump)]
    from_lines = positions_from_lines(lines)
    barrier = barrier_stragglers(lines)
    if not from_dumps and not from_lines and not barrier:
        return None
    group = _main_group(from_dumps or from_lines)
    latest: dict[int, RankPosition] = {}
    for pos in from_lines:  # in log order: a rank's later line supersedes its earlier ones
        if pos.group == group and pos.seq is not None and pos.seq >= 0:
            latest[pos.rank] = _merged(latest.get(pos.rank), pos)
    for pos in from_dumps:
        if pos.group == group:
            latest[pos.rank] = _merged(latest.get(pos.rank), pos, dump=True)
    positions = tuple(latest[r] for r in sorted(latest))
    front = max(positions, key=lambda p: (p.seq or 0, p.op is not None), default=None)
    behind = [p.rank for p in positions if front is not None and (p.seq or 0) < (front.seq or 0)]
    for rank in barrier:
        if rank not in behind:
            behind.append(rank)
    mismatched = ()
    if front is not None and not behind:
        at_front = [p for p in positions if p.seq == front.seq and p.op]
        # in rank order: on a tie, the lowest rank's operation is the one the others missed
        ops = dict.fromkeys(_op_key(p.op) for p in at_front)
        if len(ops) > 1:
            common = max(ops, key=lambda o: sum(_op_key(p.op) == o for p in at_front))
            mismatched = tuple(p for p in at_front if _op_key(p.op) != common)
            front = next(p for p in at_front if _op_key(p.op) == common)
    silent: tuple[int, ...] = ()
    if front is not None and not behind and not mismatched:
        silent = tuple(sorted(set(world) - set(latest)))
    return CollectiveFacts(
        positions=positions,
        behind=tuple(behind),
        front=front,
        mismatched=mismatched,
        silent=silent,
        dumps=tuple(path for path, _ in read),
    )


def _merged(old: RankPosition | None, new: RankPosition, dump: bool = False) -> RankPosition:
    """A rank's position from two sources: the newer sequence number, the details of either."""
    if old is None:
        return new
    if dump or (new.seq or 0) >= (old.seq or 0):
        base, other = new, old
    else:
        base, other = old, new
    same = base.seq == other.seq
    return RankPosition(
        base.rank,
        base.group,
        base.seq,
        base.op or (other.op if same else None),
        base.completed if base.completed is not None else other.completed,
        base.where or (other.where if same else None),
        base.source,
        base.text,
    )


def _main_group(positions: list[RankPosition]) -> str:
    """The process group most ranks spoke of (the default group, "0", on a tie)."""
    counts: dict[str, int] = {}
    for pos in positions:
        counts[pos.group] = counts.get(pos.group, 0) + 1
    return max(counts, key=lambda g: (counts[g], g == "0"), default="0")


def _op_key(op: str | None) -> str:
    """`nccl:all_reduce`, `ALLREDUCE` and `all_reduce` are one operation."""
    return (op or "").rsplit(":", 1)[-1].replace("_", "").lower()


def _dump_rank(path: str, dump: dict[str, Any]) -> int | None:
    rank = dump.get("rank")
    if isinstance(rank, int):
        return rank
    m = re.search(r"(\d+)(?:\.json)?$", os.path.basename(path))
    return int(m.group(1)) if m else None


def _user_frame(frames: Any) -> str | None:
    """The innermost frame outside torch and the installed packages: the user's call."""
    if not isinstance(frames, list):
        return None
    for frame in frames:
        if not isinstance(frame, dict):
            continue
        name = str(frame.get("filename") or "")
        if name and is_user_file(name, str(frame.get("name") or "<module>")):
            return f"{name}:{frame.get('line')} in {frame.get('name')}"
    return None


def _ranks(ranks: Iterable[int]) -> str:
    ranks = list(ranks)
    names = ", ".join(str(r) for r in ranks)
    return f"rank {names}" if len(ranks) == 1 else f"ranks {names}"


def _position_dict(p: RankPosition) -> dict[str, Any]:
    return {
        "rank": p.rank,
        "group": p.group,
        "seq": p.seq,
        "op": p.op,
        "completed": p.completed,
        "where": p.where,
        "source": p.source,
    }


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain data only: any class or function in the stream is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused {module}.{name} in a flight-recorder dump")
