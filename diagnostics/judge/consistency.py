"""The last word on every verdict: nothing it says may contradict a fact the report holds.

The facts are the memory evidence a live run collects (judge/kills.py and watch/monitor.py say how
each is proven): an OOM-kill counter of the run's cgroup that moved, the kernel's OOM-kill line
naming a process of the run, and the run's real memory use at its limit. The rule, in one place:

1. The summary never denies a fact: "no OOM kill was recorded" while a counter moved or the kernel
   named a process of the run, "memory was not at its limit" while any of the three holds.
2. A kill the kernel made for lack of memory is never left unexplained: a verdict that says the
   cause is unknown, or that only describes what the kill did to the rest of the run (a peer that
   lost its connection, an interrupted or hung run), becomes the out-of-memory verdict.
3. A verdict that names another failure first-hand keeps it, but cites the kill (and offers
   out-of-memory as its first alternative): the report never leaves out what the kernel did.

`make_consistent` applies the rule (classify() calls it last; a distributed job's verdict goes
through it again). `contradictions` states it as a check, and `report_contradictions` checks a
saved JSON report by it: the tests hold every real run's report to the same rule.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from trainwatch.diagnostics.evidence import Evidence
from trainwatch.diagnostics.judge.kills import ECHOES, killed_worker_pids, oom_confirmed
from trainwatch.diagnostics.verdict import Alternative, Cited, Verdict, cited_once

# What a summary says when it denies a kill, or denies that memory ran short.
DENIES_KILL = re.compile(
    r"\bno (?:OOM|out[- ]of[- ]memory) kill|\bnot (?:killed|an OOM kill)[^.]*memory", re.I
)
DENIES_PRESSURE = re.compile(
    r"\bmemory was not at its limit|\bnot at (?:its|the) (?:memory )?limit|\bno memory pressure",
    re.I,
)
KILL_KINDS = ("cgroup", "kernel")


def memory_facts(evidence: Evidence) -> tuple[Cited, ...]:
    """The facts of a live run the rule holds verdicts to; () for a saved log (it has none)."""
    if evidence.memory is None:
        return ()
    return evidence.memory.oom_corroboration(extra_pids=killed_worker_pids(evidence))


def contradictions(verdict: Verdict, facts: tuple[Cited, ...]) -> tuple[str, ...]:
    """What in `verdict` a fact denies, one sentence each; () when it is consistent."""
    kills = [f for f in facts if f.kind in KILL_KINDS]
    found = []
    if kills and DENIES_KILL.search(verdict.summary):
        found.append(f"the summary denies an OOM kill, but the report holds: {kills[0].text}")
    if facts and DENIES_PRESSURE.search(verdict.summary):
        found.append(f"the summary denies memory pressure, but the report holds: {facts[0].text}")
    if kills and verdict.category in ECHOES:
        found.append(
            f"the verdict is {verdict.category}, but the kernel killed a process of the run for "
            f"lack of memory: {kills[0].text}"
        )
    cited = {c.text for c in verdict.evidence}
    if kills and verdict.category != "oom" and not any(k.text in cited for k in kills):
        found.append(f"the verdict does not cite the OOM kill: {kills[0].text}")
    return tuple(found)


def make_consistent(verdict: Verdict, evidence: Evidence) -> Verdict:
    """`verdict`, changed only where a fact of `evidence` contradicts it (the module's rule)."""
    facts = memory_facts(evidence)
    if not facts or not contradictions(verdict, facts):
        return verdict
    kills = tuple(f for f in facts if f.kind in KILL_KINDS)
    denies = DENIES_KILL.search(verdict.summary) or DENIES_PRESSURE.search(verdict.summary)
    if denies or (kills and verdict.category in ECHOES):
        # The facts explain the run: out-of-memory, with what the verdict said as an alternative
        # (unless all it said was the opposite of the facts).
        base = _without_denial(verdict) if denies else verdict
        confirmed = oom_confirmed(base, facts)
        kept = () if denies or base.category == "oom" else (_as_alternative(verdict),)
        return replace(confirmed, alternatives=kept + base.alternatives)
    # Another failure was named first-hand: it stands, with the kill cited beside it and offered
    # as the alternative it may be (first: a reader should not miss it).
    alternatives = tuple(a for a in verdict.alternatives if a.category != "oom")
    oom = Alternative(
        "oom",
        "oom/host",
        max(0.05, min(0.5, round(verdict.confidence - 0.05, 2))),
        "The kernel's OOM killer killed a process of the run; the failure above may follow "
        "from it.",
    )
    evidence = cited_once(verdict.evidence, kills)
    return replace(verdict, evidence=evidence, alternatives=(oom,) + alternatives)


def report_contradictions(report: dict[str, Any]) -> tuple[str, ...]:
    """The rule applied to a saved JSON report (docs/report.md): its verdict against the memory
    facts it holds."""
    return contradictions(Verdict.from_report(report), _report_facts(report.get("memory")))


def _report_facts(memory: Any) -> tuple[Cited, ...]:
    """The facts of a JSON report's `memory` section, worded as the live evidence words them."""
    if not isinstance(memory, dict):
        return ()
    facts = []
    for counter in (memory.get("oom_kill") or {}).get("cgroups") or ():
        if isinstance(counter, dict) and (counter.get("delta") or 0) > 0:
            facts.append(
                Cited(
                    "cgroup",
                    f"oom_kill {counter.get('before')} -> {counter.get('after')} in memory "
                    f"cgroup {counter.get('path')}",
                    str(counter.get("file")),
                )
            )
    for kill in memory.get("kernel_oom_kills") or ():
        if isinstance(kill, dict) and kill.get("line"):
            facts.append(Cited("kernel", str(kill["line"]), "kernel log"))
    check = memory.get("limit_check") or {}
    used, limit = check.get("bytes"), check.get("limit_bytes")
    if isinstance(used, int) and isinstance(limit, int) and limit and used >= 0.95 * limit:
        facts.append(
            Cited("memory", f"tree {check.get('measure')} {used} of a {limit} limit", "memory")
        )
    return tuple(facts)


def _as_alternative(verdict: Verdict) -> Alternative:
    return Alternative(
        verdict.category, verdict.subtype, min(verdict.confidence, 0.5), verdict.summary
    )


def _without_denial(verdict: Verdict) -> Verdict:
    """A verdict whose summary denied the facts keeps only what the facts leave standing: the
    alternative it had set aside (judge/kills.py keeps the signature's own claim there)."""
    oom = next((a for a in verdict.alternatives if a.category == "oom"), None)
    if oom is None:
        return replace(verdict, alternatives=())
    return Verdict(
        "oom",
        oom.subtype,
        oom.confidence,
        oom.summary,
        signature=verdict.signature,
        evidence=verdict.evidence,
        cascade=verdict.cascade,
        culprit=verdict.culprit,
        alternatives=tuple(a for a in verdict.alternatives if a is not oom),
    )
