"""What a stall seen by `--stall-timeout` tells the quiet judge: its facts and values for the rules
of knowledge/quiet.toml, the culprit of every stuck process, and its evidence, the wait that holds
the run up first.

A stuck run is several stuck processes: the main one waiting for a batch, its DataLoader workers
blocked on a lock in the Dataset. The report names where each of them blocks (its deepest frame of
the user's code, else the library frame it sits in), the same frame once for all the pids there,
and puts first the one that holds the others up.
"""

from __future__ import annotations

from trainwatch.diagnostics.verdict import Cited, Culprit
from trainwatch.diagnostics.watch.stall import ProcessWait, StallFacts, short_path


def stall_facts(
    stall: StallFacts, facts, values, cited, signalled: bool = False
) -> tuple[Culprit, ...]:
    """The stall's facts; its culprits (where each stuck process blocks, the one that holds the
    others up first); its evidence, that wait first. `signalled`: a signal ended the run."""
    facts["stall"] = True
    facts["stall-cut"] = stall.action == "cut"
    facts["busy"] = stall.busy
    facts["idle"] = not stall.busy
    wait = stall.main_wait()
    stuck = _stuck_waits(stall)
    first = _blocker(wait, stuck)
    if wait is not None and wait.kind == "launcher" and first is not None:
        # a launcher waits on what its processes wait on: the one that holds the others up
        # names the stall
        wait = first
    values["silent"] = f"{stall.silent_s:.0f} s"
    values["cpu"] = f"{stall.cpu_seconds:.2f} s"
    if stall.action == "stopped":
        values["action"] = "trainwatch stopped it"
    elif signalled:
        values["action"] = "a signal ended it later"
    else:
        values["action"] = "it was left running"
    if stall.stopped_at:
        values["at"] = f" at {stall.stopped_at}"
    if wait is not None and wait.kind not in ("unknown", "busy"):
        facts["wait-known"] = True
        values["wait_kind"] = wait.kind
        values["wait"] = f"; {wait.description} ({wait.where})"
        if first is not None and first is not wait and first.frame is not None:
            frame = first.frame
            values["wait"] += (
                f", while pid {first.pid} is {first.description} at "
                f"{short_path(frame.file)}:{frame.line} in {frame.function}"
            )
    silence = Cited(
        "stall",
        f"no output and no progress for {stall.silent_s:.0f} s, {stall.cpu_seconds:.2f} s of CPU "
        "used meanwhile",
        "stall detector",
    )
    # The wait that holds the run up first, then the silence, then every other process's wait.
    ordered = ([first] if first is not None else []) + [w for w in stall.waits if w is not first]
    stacks = [
        Cited(
            "stack",
            f"pid {w.pid} ({w.thread or 'process'}): {w.description} at {w.where}",
            w.source,
        )
        for w in ordered[:6]
    ]
    cited[:0] = stacks[:1] + [silence] + stacks[1:]
    return _culprits(first, stuck)


def _stuck_waits(stall: StallFacts) -> list[ProcessWait]:
    """One wait per process, with the frame it blocks in: its main thread's, else its first
    thread's that names a known wait."""
    by_pid: dict[int, ProcessWait] = {}
    for w in stall.waits:
        if w.frame is None:
            continue
        held = by_pid.get(w.pid)
        if held is None or (w.thread == "main" and held.thread != "main"):
            by_pid[w.pid] = w
    return list(by_pid.values())


# What a process waits on when it waits for another process of the run: a batch from the
# DataLoader's workers, a queue, a child, its peers in a collective.
_WAITS_FOR_OTHERS = (
    "dataloader",
    "queue",
    "event",
    "join",
    "rendezvous",
    "collective",
    "launcher",
)


def _blocker(wait: ProcessWait | None, stuck: list[ProcessWait]) -> ProcessWait | None:
    """The wait that holds the run up: the main one, unless it only waits for other processes of
    the tree (a batch from the DataLoader's workers, a queue, a child), or waits outside the
    user's code (a launcher's loop: torchrun's agent sleeps between looks at its ranks), and one
    of them is stuck in the user's own code."""
    if wait is None:
        return wait
    outside = wait.frame is not None and not wait.frame.user
    if wait.kind not in _WAITS_FOR_OTHERS and not outside:
        return wait
    others = [w for w in stuck if w.pid != wait.pid and w.frame is not None and w.frame.user]
    # one that waits for no other process (sleeping, busy, reading a file) before one that waits
    # for its peers in a collective or for its workers
    others.sort(key=lambda w: w.kind in _WAITS_FOR_OTHERS)
    return others[0] if others else wait


def _culprits(first: ProcessWait | None, stuck: list[ProcessWait]) -> tuple[Culprit, ...]:
    """Where every stuck process blocks, the same frame named once for all the pids there."""
    # the blocker first, then the waits in the user's code, then the others (a launcher's loop)
    others = sorted((w for w in stuck if w is not first), key=lambda w: not w.frame.user)
    order = ([first] if first is not None and first.frame is not None else []) + others
    groups: dict[tuple[str, int, str], list[ProcessWait]] = {}
    for w in order:
        assert w.frame is not None
        groups.setdefault((w.frame.file, w.frame.line, w.frame.function), []).append(w)
    culprits = []
    for waits in groups.values():
        pids = sorted({w.pid for w in waits})
        whose = f"pid {pids[0]}" if len(pids) == 1 else "pids " + ", ".join(map(str, pids))
        frame = waits[0].frame
        assert frame is not None
        note = waits[0].description if waits[0].kind != "unknown" else "blocked here"
        culprits.append(Culprit.from_frame(frame, note=note, process=whose))
    return tuple(culprits)
