"""What the memory monitor adds to an out-of-memory verdict: the process's own address-space limit
when that is what it hit, and memory that grew steadily to the end, which is a leak.

An allocation that fails under RLIMIT_AS (`ulimit -v`) while the machine and the cgroup still have
room is not "the machine ran out": the report names the limit, its value and the pid it bound.
Memory that rose through the whole run until it failed is not one oversized batch: the report
calls it a leak and says where leaks come from.
"""

from __future__ import annotations

from dataclasses import replace

from trainwatch.diagnostics.evidence import Evidence
from trainwatch.diagnostics.units import human_bytes
from trainwatch.diagnostics.verdict import Cited, Verdict

# The timeline is read in this many stretches (each the largest sample of its stretch); the first
# ones are start-up (imports, the model's creation), not training.
STRETCHES = 20
STARTUP_STRETCHES = 2
# Steady growth: rising in most stretches, ending well above where it began and near its top.
RISING_SHARE = 0.7
GROWTH_FACTOR = 1.5
MIN_GROWTH_BYTES = 64 * 2**20
LEAK_ADVICE = (
    "Memory grew steadily through the run: look for what is kept from step to step (losses or "
    "outputs appended to a list while still attached to the graph: keep loss.item() or "
    "tensor.detach().cpu(); a cache or queue that is never emptied)."
)
LIMIT_ADVICE = (
    "Raise or lift the address-space limit (`ulimit -v unlimited` in the shell or job script, or "
    "the scheduler's virtual-memory limit): it counts every mapping, and PyTorch, CUDA and "
    "thread stacks reserve far more address space than they use."
)


def with_memory_facts(verdict: Verdict, evidence: Evidence) -> Verdict:
    """An out-of-memory verdict with the address-space limit it hit and a leak named, when the
    samples show them; any other verdict as it is."""
    if verdict.category != "oom" or evidence.memory is None:
        return verdict
    verdict = _with_address_limit(verdict, evidence)
    return _with_leak(verdict, evidence)


def _with_address_limit(verdict: Verdict, evidence: Evidence) -> Verdict:
    memory = evidence.memory
    limits = getattr(memory, "address_limits", ())  # a stand-in MemoryFacts may not have them
    if verdict.subtype == "oom/gpu" or not limits:
        return verdict
    if memory is None or memory.oom_corroboration():
        return verdict  # the machine or the cgroup did run out: the limit is not the whole story
    pid = _failing_pid(evidence)
    limit = next((a for a in limits if a.pid == pid), limits[0])
    reached = (
        f"; its virtual size reached {human_bytes(limit.peak_virtual_bytes)} at the last sample"
        if limit.peak_virtual_bytes
        else ""
    )
    cited = Cited(
        "limit",
        f"pid {limit.pid} ran under an address-space limit (RLIMIT_AS, ulimit -v) of "
        f"{human_bytes(limit.limit_bytes)}{reached}",
        limit.source,
    )
    summary = (
        f"Host memory allocation failed: pid {limit.pid} hit its own address-space limit "
        f"(RLIMIT_AS, set by `ulimit -v` or setrlimit) of {human_bytes(limit.limit_bytes)}, "
        "while the machine and its memory cgroup still had room."
    )
    return replace(
        verdict,
        summary=summary,
        confidence=max(verdict.confidence, 0.95),
        evidence=verdict.evidence[:1] + (cited,) + verdict.evidence[1:],
        advice=(LIMIT_ADVICE,) + tuple(a for a in verdict.advice if "ulimit" not in a),
    )


def _with_leak(verdict: Verdict, evidence: Evidence) -> Verdict:
    memory = evidence.memory
    if not hasattr(memory, "timeline") or not getattr(memory, "samples", ()):
        return verdict
    if verdict.subtype == "oom/gpu":
        values = list(memory.gpu_timeline(STRETCHES))
        what = "GPU memory"
    else:
        values = list(memory.timeline(STRETCHES))
        what = "memory"
    growth = steady_growth(values)
    if growth is None:
        return verdict
    start, end, rising, stretches = growth
    seconds = memory.samples[-1].elapsed
    cited = Cited(
        "memory",
        f"{what} grew steadily from {human_bytes(start)} to {human_bytes(end)} "
        f"over {seconds:.0f} s "
        f"(higher in {rising} of {stretches} stretches of the run), up to the failure",
        "memory sampler",
    )
    return replace(
        verdict,
        summary=verdict.summary.rstrip()
        + f" {what[0].upper() + what[1:]} grew steadily until then: most likely a leak.",
        evidence=verdict.evidence + (cited,),
        advice=(LEAK_ADVICE,) + verdict.advice,
    )


def steady_growth(values: list[int]) -> tuple[int, int, int, int] | None:
    """(start, end, stretches that rose, stretches compared) when a timeline rose steadily to its
    end after start-up; None otherwise."""
    values = values[STARTUP_STRETCHES:] if len(values) > 2 * STARTUP_STRETCHES else values
    if len(values) < 6:
        return None
    # The last stretches may hold a sample taken after the failure freed its memory.
    start, end = values[0], max(values[-3:])
    rising = sum(1 for a, b in zip(values, values[1:], strict=False) if b > a)
    steps = len(values) - 1
    if (
        rising < RISING_SHARE * steps
        or end < GROWTH_FACTOR * start
        or end - start < MIN_GROWTH_BYTES
        or end < 0.9 * max(values)
    ):
        return None
    return start, end, rising, steps


def _failing_pid(evidence: Evidence) -> int | None:
    """The pid whose exception the probe recorded first, else None (the root's limit is used)."""
    probe = evidence.probe
    if probe is None:
        return None
    chain = probe.primary_chain() or (probe.chains[0] if probe.chains else None)
    return chain.pid if chain is not None else None
