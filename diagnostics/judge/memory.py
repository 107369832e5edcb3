"""What the memory figures add to an out-of-memory verdict: the GPU's budget as torch's message and
the samplers give it, the process's own address-space limit when that is what it hit, and memory
that grew steadily to the end, which is a leak.

A CUDA out-of-memory is three different failures with one message: an allocation larger than the
whole device (a size computed wrong: no tuning helps), a device mostly held by other processes (a
stale run or a neighbour: the batch is not the problem), and a run that filled the device itself
(the signature's advice). torch's message carries the figures that tell them apart.

An allocation that fails under RLIMIT_AS (`ulimit -v`) while the machine and the cgroup still have
room is not "the machine ran out": the report names the limit, its value and the pid it bound.
Memory that rose through the whole run until it failed is not one oversized batch: the report
calls it a leak and says where leaks come from.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from trainwatch.diagnostics.evidence import Evidence, RaisedException
from trainwatch.diagnostics.units import SIZE_PATTERN, human_bytes, parse_bytes
from trainwatch.diagnostics.verdict import Alternative, Cited, Verdict

if TYPE_CHECKING:
    from trainwatch.diagnostics.watch.limits import AddressLimit

# The timeline is read in this many stretches (each the largest sample of its stretch); the first
# ones are start-up (imports, the model's creation), not training.
STRETCHES = 20
STARTUP_STRETCHES = 2
# Steady growth: rising in most stretches, ending well above where it began and near its top.
RISING_SHARE = 0.7
GROWTH_FACTOR = 1.5
MIN_GROWTH_BYTES = 64 * 2**20
# Memory kept from step to step is a leak; a program still starting (imports, its CUDA context,
# the model's creation) grows the same way on the timeline. Without this many training losses
# seen (torchrun's ranks importing torch side by side while one prints its first two), only a run
# at least this long has grown past its start.
UNTRAINED_LEAK_SECONDS = 60.0
LEAK_MIN_LOSSES = 5
# In a live run, the growth read from the first loss printed on (start-up left behind): samples
# enough for the stretches to say it rose steadily.
LEAK_MIN_TRAINING_SAMPLES = 6
# A training loop's memory stays level from its first printed loss on: before an out-of-memory,
# a steady rise over that stretch counts from this factor (a real run of the fiftieth session
# printed its first loss after one slow epoch and had grown 390 -> 499 MiB in its last 7 s, 163 ->
# 390 MiB before: no leak by the whole run's 1.5).
TRAINING_GROWTH_FACTOR = 1.2
LEAK_ADVICE = (
    "Memory grew steadily through the run: look for what is kept from step to step (losses or "
    "outputs appended to a list while still attached to the graph: keep loss.item() or "
    "tensor.detach().cpu(); a cache or queue that is never emptied)."
)
# A finished run is told of its growth only where it is no warm-up: a short run's memory rises
# as its allocator and its DataLoader warm up (a 6 s CNN of the golden tests grew so), a leak
# over a run's length adds up (0.6 -> 2.2 GiB in 60 s, the forty-third session's real run).
FINISHED_LEAK_SECONDS = 30.0
FINISHED_LEAK_BYTES = 512 * 2**20
# A host allocation that failed while the run held under this share of its memory limit failed
# by its own size: one request of an impossible size, not a run that grew too big.
FAR_BELOW_LIMIT = 0.25
# What a program asked the host for, in torch's and NumPy's words.
_HOST_REQUEST = re.compile(
    r"(?:you tried to allocate|Out of memory allocating) (\d+) bytes"
    r"|Unable to allocate " + SIZE_PATTERN + " for an array"
)
# An exception that is an allocation failing (not a process that died: a notebook's dead kernel)
_ALLOCATION_FAILED = re.compile(
    r"MemoryError|OutOfMemory|bad_alloc|[Aa]llocat|ResourceExhausted|out of memory"
)
IMPOSSIBLE_REQUEST_ADVICE = (
    "Check the size the culprit line allocates: one allocation{asked} failed while the run held "
    "{peak} of {limit}. Usual causes: a size read from a corrupt sample's header (see the sample "
    "named), a dimension multiplied in by mistake, a whole dataset taken at once."
)
LIMIT_ADVICE = (
    "Raise or lift the address-space limit (`ulimit -v unlimited` in the shell or job script, or "
    "the scheduler's virtual-memory limit): it counts every mapping, and frameworks' runtimes "
    "(PyTorch, CUDA, XLA, the boosters' thread pools) and thread stacks reserve far more address "
    "space than they use."
)


# torch's CUDA out-of-memory message in its two wordings, torch >= 2.1 first:
#   Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 15.77 GiB of which 1.02 GiB is free.
#   Including non-PyTorch memory, this process has 14.74 GiB memory in use. Of the allocated memory
#   13.18 GiB is allocated by PyTorch, and 438.51 MiB is reserved by PyTorch but unallocated.
#   Tried to allocate 20.00 MiB (GPU 0; 7.79 GiB total capacity; 6.74 GiB already allocated;
#   12.56 MiB free; 6.82 GiB reserved in total by PyTorch)
# torch 2.1 printed "total capacty". Who else holds the device is read from the newer wording only:
# the older one's figures leave gigabytes unaccounted for on a card that nothing else used. Its
# "Process N has X memory in use" is not read: inside a container torch cannot tell its own pid
# from the host's, so that process may be this one.
_TRIED = re.compile(r"Tried to allocate " + SIZE_PATTERN)
_TOTAL = re.compile(r"total capac\w* of " + SIZE_PATTERN + "|" + SIZE_PATTERN + " total capacity")
_FREE = re.compile(r"of which " + SIZE_PATTERN + " is free")
_OWN = re.compile(r"this process has " + SIZE_PATTERN + " memory in use")
_TORCH_HELD = re.compile(
    SIZE_PATTERN + " is allocated by PyTorch|" + SIZE_PATTERN + " is reserved by PyTorch but "
)
# Other processes count as the cause when they hold at least this share of the device, and more
# than the failed request.
OCCUPIED_SHARE = 0.25
# Where torch names only its allocator's figures, the process's own CUDA context and libraries
# (cuBLAS, cuDNN, NCCL) come on top: up to about this much.
CONTEXT_ALLOWANCE = 2**30
BIGGER_THAN_DEVICE_ADVICE = (
    "Look at the shape of the tensor made at the culprit line: one allocation of {tried} is more "
    "than the whole GPU ({total}). A dimension multiplied where it should not be, a whole dataset "
    "or an unbatched input sent at once, or a sequence length far past what was meant are the "
    "usual causes; if the size is right, only a smaller batch or sequence, or splitting the work, "
    "makes it fit."
)
OCCUPIED_ADVICE = (
    "Find what else holds this GPU (`nvidia-smi`, or `fuser -v /dev/nvidia*` inside a container): "
    "a stale run or a notebook kernel still alive, or another user's job. Stop it, or run on a "
    "free GPU (CUDA_VISIBLE_DEVICES); lowering the batch only hides it."
)


# TensorFlow's and XLA's out-of-memory errors read the same on every device; the device is in the
# words: TensorFlow's `.../device:CPU:0 by allocator mklcpu`, XLA's `CpuDevice(id=0)`, torch's
# `DefaultCPUAllocator`. A device named as an accelerator keeps the failure on it.
_NAMES_THE_CPU = re.compile(
    r"device:CPU:\d|\ballocator \(?(?:mkl)?cpu\b|\bCpuDevice\("
    r"|DefaultCPUAllocator|\bcpu_allocator\b"
)
_NAMES_AN_ACCELERATOR = re.compile(
    r"device:(?:GPU|TPU|XLA_GPU):\d|GPU_\d+_bfc|\bCUDA\b|\bcuda\b|\bhbm\b|\bHBM\b|\bTPU\b|\bGPU\b"
)
HOST_ADVICE = (
    "Lower the batch size (or the model's widest layer) until one step fits in the machine's "
    "memory, and load the data lazily instead of whole arrays at once.",
    "Check the limits the run had (`ulimit -v`, the container's or the job's memory limit) "
    "against what one step needs.",
)


def with_memory_facts(verdict: Verdict, evidence: Evidence) -> Verdict:
    """An out-of-memory verdict with the GPU's budget read, the address-space limit it hit and a
    leak named, when the message and the samples show them; a finished run whose memory grew
    steadily to its end with the leak as a warning (a longer run would have run out); any other
    verdict as it is."""
    if verdict.category == "completed":
        return _with_leak(verdict, evidence, finished=True)
    if verdict.category == "hang":
        return _hung_at_the_limit(verdict, evidence) or verdict
    if verdict.category != "oom":
        return verdict
    verdict = _on_the_host(verdict, evidence)
    not_shm = _shared_memory_never_short(verdict, evidence)
    if not_shm is not None:
        return not_shm
    verdict = _with_gpu_budget(_cite_gpu_memory(verdict, evidence), evidence)
    if evidence.memory is None:
        return verdict
    if verdict.subtype == "oom/shm":
        # its limit is the shared-memory filesystem's size, not the RAM or the cgroup's: the
        # run's memory against those says nothing of it
        return _with_shm_size(verdict, evidence)
    limited = _with_address_limit(verdict, evidence)
    if limited is not verdict:
        return _with_leak(limited, evidence)
    one_request = _with_impossible_request(verdict, evidence)
    return one_request if one_request is not verdict else _with_leak(verdict, evidence)


# A bus error read as shared memory run out, where the run's /dev/shm was watched and never filled
# past this share of its size, and that size is room for any batch: the bus error came from
# elsewhere. (A small /dev/shm, Docker's 64 MB, fills between two samples: no such judgement.)
SHM_FULL_SHARE = 0.25
SHM_ROOMY_BYTES = 4 << 30


def _with_shm_size(verdict: Verdict, evidence: Evidence) -> Verdict:
    """A shared-memory verdict with the size of the run's /dev/shm and its highest use cited, when
    the monitor watched it (a container's 64 MB is the usual reason it fills)."""
    memory = evidence.memory
    shm = memory.shm if memory is not None else None
    if shm is None or not shm.total_bytes:
        return verdict
    peak = max(memory.shm_peak_used_bytes or 0, shm.used_bytes)
    # a segment refused at once leaves no use for a sample to see: only the size is said then
    used = f", {human_bytes(peak)} in use at most in the samples" if peak else ""
    cited = Cited(
        "memory", f"{shm.path}: {human_bytes(shm.total_bytes)} in all{used}", "memory sampler"
    )
    return replace(verdict, evidence=verdict.evidence + (cited,))


def _shared_memory_never_short(verdict: Verdict, evidence: Evidence) -> Verdict | None:
    """A shared-memory reading of a bus error in a live run whose /dev/shm was watched and stayed
    mostly free: a memory-mapped file that changed size under its reader (a dataset cache
    rewritten, a file on a network filesystem) is the likelier cause, a native crash the other.
    None where the reading stands."""
    memory = evidence.memory
    if verdict.subtype != "oom/shm" or memory is None:
        return None
    shm, peak = memory.shm, memory.shm_peak_used_bytes
    if shm is None or peak is None:
        return None
    if shm.total_bytes < SHM_ROOMY_BYTES or peak > SHM_FULL_SHARE * shm.total_bytes:
        return None
    watched = (
        f"{shm.path} never ran short: {human_bytes(peak)} of {human_bytes(shm.total_bytes)} at most"
    )
    return replace(
        verdict,
        category="data",
        subtype="data/file-changed",
        confidence=0.5,
        summary=(
            "A process died of a bus error (SIGBUS), but shared memory was not the cause "
            f"({watched}): a file mapped into memory changed size while it was read (a dataset "
            "or cache file rewritten or truncated by another process, a file on a network "
            "filesystem that went away) is the likelier cause; a crash in native code the other."
        ),
        evidence=verdict.evidence + (Cited("memory", watched, "monitor"),),
        alternatives=(
            Alternative("library", "library/native-crash", 0.35, "A crash in native code."),
        ),
        advice=(
            "Check whether a file the data loading maps into memory (a NumPy memmap, an Arrow or "
            "LMDB file, a cache) is rewritten while the run reads it, and write such files to a "
            "new name, then rename them.",
            "If the data files are on a network filesystem, copy them to local disk first.",
        ),
        doc_url=None,
    )


def _on_the_host(verdict: Verdict, evidence: Evidence) -> Verdict:
    """A device out-of-memory reading (TensorFlow's, XLA's) of a failure that was the host's:
    its words name the CPU as the device, or, in a live run under an address-space limit on a
    machine where no GPU was seen, they name no accelerator at all."""
    if verdict.subtype != "oom/gpu":
        return verdict
    exception = verdict.exception
    words = "\n".join([exception.message if exception else ""] + [c.text for c in verdict.evidence])
    if _NAMES_AN_ACCELERATOR.search(words):
        return verdict
    memory = evidence.memory
    no_gpu_seen = memory is not None and (memory.gpu is None or not memory.gpu.devices)
    limited = no_gpu_seen and bool(getattr(memory, "address_limits", ()))
    names_the_cpu = _NAMES_THE_CPU.search(words) is not None
    if not (names_the_cpu or limited):
        return _device_unnamed(verdict, evidence)
    said = (
        "the device it names is the CPU"
        if names_the_cpu
        else "no GPU was seen on this machine and the run had an address-space limit"
    )
    return replace(
        verdict,
        subtype="oom/host",
        summary=(
            f"The framework ran out of memory allocating a tensor on the host, not on a GPU "
            f"({said}): one step needs more of the machine's memory than the run may use."
        ),
        advice=HOST_ADVICE,
        doc_url=None,
    )


def _device_unnamed(verdict: Verdict, evidence: Evidence) -> Verdict:
    """A saved log whose device out-of-memory words (XLA's `RESOURCE_EXHAUSTED: Out of memory
    allocating`) name no device, and whose lines name no GPU or TPU anywhere: it may have been the
    host's (real JAX runs on a CPU), so the reading says so and adds the host's first advice."""
    log = evidence.log
    if evidence.source != "log" or log is None:
        return verdict
    if _NAMES_AN_ACCELERATOR.search("\n".join(line.text for line in (*log.notable, *log.tail))):
        return verdict
    return replace(
        verdict,
        summary=f"{verdict.summary} The log names no device: on a machine without a GPU or TPU "
        "it was the host's memory.",
        advice=verdict.advice + HOST_ADVICE[:1],
    )


def _cite_gpu_memory(verdict: Verdict, evidence: Evidence) -> Verdict:
    """A GPU out-of-memory verdict cites what the memory looked like: torch's allocator at the
    failure (from the probe) and the device's used/total (from NVML), so the report tells a
    too-big batch from a leak or a neighbour's process filling the card."""
    if verdict.subtype != "oom/gpu":
        return verdict
    cited: list[Cited] = []
    torch = evidence.probe.torch if evidence.probe is not None else None
    stats = torch.get("memory") if torch else None
    if isinstance(stats, dict) and stats.get("allocated") is not None:
        parts = [
            f"{name.replace('_', ' ')} {_gib(stats[name])}"
            for name in ("allocated", "reserved", "max_allocated")
            if stats.get(name) is not None
        ]
        if stats.get("tried"):
            parts.append(f"tried to allocate {stats['tried']}")
        cited.append(
            Cited("probe", "torch's allocator at the failure: " + ", ".join(parts), "probe")
        )
    gpu = evidence.memory.gpu if evidence.memory is not None else None
    for device in gpu.peak_devices if gpu is not None else ():
        cited.append(
            Cited(
                "gpu",
                f"GPU {device.index} ({device.name}): {_gib(device.used_bytes)} of "
                f"{_gib(device.total_bytes)} used at its fullest",
                "NVML",
            )
        )
    others = sorted(gpu.other_processes if gpu else (), key=lambda p: -(p.used_bytes or 0))
    if others:
        held = "; ".join(
            f"pid {p.pid} {human_bytes(p.used_bytes)} on GPU {p.device}" for p in others[:3]
        )
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        cited.append(
            Cited(
                "gpu",
                f"processes outside the run on its GPUs, at their fullest: {held}{more}",
                "NVML",
            )
        )
    return replace(verdict, evidence=verdict.evidence + tuple(cited)) if cited else verdict


def _gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"


def _with_gpu_budget(verdict: Verdict, evidence: Evidence) -> Verdict:
    """A CUDA out-of-memory whose own message shows one allocation larger than the whole device,
    or a device mostly held by other processes (by the message's figures, else by NVML's list of
    the processes on the run's GPUs), says so and leads with the advice that fits."""
    if verdict.subtype != "oom/gpu":
        return verdict
    message = verdict.exception.message if verdict.exception is not None else ""
    if not message and verdict.evidence:
        message = verdict.evidence[0].text  # a log that ends on the error line alone
    tried, total, free = _size(_TRIED, message), _size(_TOTAL, message), _size(_FREE, message)
    if tried is not None and total is not None and tried > total:
        shown = {"tried": human_bytes(tried), "total": human_bytes(total)}
        return replace(
            verdict,
            summary=f"CUDA out of memory: one allocation of {shown['tried']} asked for more than "
            f"the whole GPU ({shown['total']}): no memory freed or defragmented can hold it, the "
            "tensor is far larger than this GPU can take.",
            advice=(BIGGER_THAN_DEVICE_ADVICE.format(**shown),)
            + tuple(a for a in verdict.advice if "nvidia-smi" not in a and "fragment" not in a),
        )
    said = _occupied_by_message(message, tried, total, free)
    if said is None:
        said = _occupied_by_nvml(evidence)
    if said is None:
        return verdict
    return replace(
        verdict,
        subtype="oom/gpu-occupied",
        summary=f"CUDA out of memory on a GPU mostly held by other processes: {said}.",
        advice=(OCCUPIED_ADVICE,)
        + tuple(a for a in verdict.advice if "nvidia-smi" not in a and "batch size" not in a),
    )


def _occupied_by_message(
    message: str, tried: int | None, total: int | None, free: int | None
) -> str | None:
    """How much other processes held, in the words of torch's figures; None unless they held
    at least OCCUPIED_SHARE of the device and more than the failed request."""
    if tried is None or total is None or free is None:
        return None
    own, whose = _size(_OWN, message), "this process had"
    if own is None:
        held = [parse_bytes(*_groups(m)) for m in _TORCH_HELD.finditer(message)]
        if not held:
            return None
        own, whose = sum(held), "torch's allocator in this process held"
        others = total - free - own - CONTEXT_ALLOWANCE
    else:
        others = total - free - own
    if others < max(OCCUPIED_SHARE * total, tried):
        return None
    return (
        f"of its {human_bytes(total)}, {whose} {human_bytes(own)}, {human_bytes(free)} was free, "
        f"and about {human_bytes(others)} was in other hands when it asked for "
        f"{human_bytes(tried)}"
    )


def _occupied_by_nvml(evidence: Evidence) -> str | None:
    """The same from NVML's process lists during a run: processes outside the run holding at
    least OCCUPIED_SHARE of a device the run used."""
    gpu = evidence.memory.gpu if evidence.memory is not None else None
    if gpu is None or not gpu.other_processes:
        return None
    ours = {p.device for p in gpu.processes}
    for device in gpu.peak_devices:
        if device.index not in ours:
            continue
        others = sum(p.used_bytes or 0 for p in gpu.other_processes if p.device == device.index)
        if others >= OCCUPIED_SHARE * device.total_bytes:
            return (
                f"NVML saw processes outside the run holding {human_bytes(others)} of GPU "
                f"{device.index}'s {human_bytes(device.total_bytes)}"
            )
    return None


def _size(pattern: re.Pattern[str], text: str) -> int | None:
    found = pattern.search(text)
    return parse_bytes(*_groups(found)) if found else None


def _groups(found: re.Match[str]) -> tuple[str, str]:
    """The number and unit of whichever alternative of a pattern matched."""
    number, unit = (g for g in found.groups() if g is not None)
    return number, unit


def _with_impossible_request(verdict: Verdict, evidence: Evidence) -> Verdict:
    """A host allocation that failed as an exception while the run held far less than its limit
    (or that asked for more than the limit by itself): the size of that one request is wrong."""
    memory, exception = evidence.memory, verdict.exception
    if verdict.subtype == "oom/gpu" or exception is None or memory is None:
        return verdict
    if not _ALLOCATION_FAILED.search(f"{exception.type}: {exception.message}"):
        return verdict
    limit, peak = memory.limit_bytes, memory.peak_rss_bytes
    if not limit or not peak or memory.oom_corroboration():
        return verdict
    asked = _asked_bytes(exception)
    impossible = asked is not None and asked > limit
    if not impossible and peak >= FAR_BELOW_LIMIT * limit:
        return verdict
    if asked is not None and not impossible and asked < FAR_BELOW_LIMIT * limit:
        # a small request refused far below the limit: no size of its own, but a limit this
        # sampler did not see (a rank's own RLIMIT_AS read too late; forty-third session)
        return verdict
    shown = {
        "asked": f" of {human_bytes(asked)}" if asked else "",
        "peak": human_bytes(peak),
        "limit": f"{human_bytes(limit)} ({memory.limit_source or 'its limit'})",
    }
    cited = Cited(
        "memory",
        f"peak memory {human_bytes(peak)} of a {human_bytes(limit)} limit when the allocation"
        f"{shown['asked']} failed",
        "memory sampler",
    )
    said = (
        f" It asked for {human_bytes(asked)} at once, more than the whole {human_bytes(limit)}: "
        "a size computed wrong."
        if impossible
        else " The run held far less than its limit when it failed: one allocation, far larger "
        "than anything before it, failed by itself."
    )
    # an impossible size is no batch too big; a merely large one may be (keep that advice after)
    rest = tuple(a for a in verdict.advice if not (impossible and "batch size" in a))
    return replace(
        verdict,
        summary=verdict.summary.rstrip() + said,
        evidence=verdict.evidence + (cited,),
        advice=(IMPOSSIBLE_REQUEST_ADVICE.format(**shown),) + rest,
    )


def _asked_bytes(exception: RaisedException | None) -> int | None:
    """The bytes one host allocation asked for, where the exception's message says."""
    found = _HOST_REQUEST.search(exception.message) if exception is not None else None
    if found is None:
        return None
    return int(found.group(1)) if found.group(1) else parse_bytes(*found.groups()[1:])


# A process whose virtual size stood this close to its address-space limit when its run hung had
# its allocations failing there.
AT_THE_LIMIT_SHARE = 0.97


def _hung_at_the_limit(verdict: Verdict, evidence: Evidence) -> Verdict | None:
    """A hang with a process at its address-space limit: an allocation that failed inside native
    code (XLA's allocator, a BLAS library's threads) may leave the process waiting forever rather
    than raising (a real JAX run under `ulimit -v`: 6 of 10 tries deadlocked at the limit). The
    memory is the cause, the wait its consequence, kept as the other reading."""
    memory = evidence.memory
    limits = getattr(memory, "address_limits", ())
    at = [
        a
        for a in limits
        if a.peak_virtual_bytes and a.peak_virtual_bytes >= AT_THE_LIMIT_SHARE * a.limit_bytes
    ]
    if not at:
        return None
    limit = at[0]
    cited = _address_limit_cited(limit)
    return replace(
        verdict,
        category="oom",
        subtype="oom/host",
        confidence=0.75,
        summary=(
            f"The run stopped making progress with pid {limit.pid} at its address-space limit "
            f"({human_bytes(limit.limit_bytes)}): an allocation that failed there inside native "
            "code can leave a process waiting forever instead of raising. "
            f"Where it waited: {verdict.summary}"
        ),
        evidence=(cited,) + verdict.evidence,
        advice=(LIMIT_ADVICE,) + verdict.advice,
        alternatives=(
            Alternative("hang", verdict.subtype, 0.5, verdict.summary),
            *verdict.alternatives,
        ),
    )


def _address_limit_cited(limit: AddressLimit) -> Cited:
    """The limit a process ran under, and how close its virtual size came, as evidence."""
    reached = (
        f"; its virtual size reached {human_bytes(limit.peak_virtual_bytes)} at the last sample"
        if limit.peak_virtual_bytes
        else ""
    )
    return Cited(
        "limit",
        f"pid {limit.pid} ran under an address-space limit (RLIMIT_AS, ulimit -v) of "
        f"{human_bytes(limit.limit_bytes)}{reached}",
        limit.source,
    )


def _with_address_limit(verdict: Verdict, evidence: Evidence) -> Verdict:
    memory = evidence.memory
    limits = getattr(memory, "address_limits", ())  # a stand-in MemoryFacts may not have them
    if verdict.subtype == "oom/gpu" or not limits:
        return verdict
    if memory is None or memory.oom_corroboration():
        return verdict  # the machine or the cgroup did run out: the limit is not the whole story
    asked = _asked_bytes(verdict.exception)
    if asked is not None and memory.limit_bytes and asked > memory.limit_bytes:
        # one request bigger than the whole machine (or cgroup): no limit lifted makes it fit
        # (a real JAX run asked for 98 GiB under a 4 GB `ulimit -v` on 23.5 GiB, told to lift it)
        return verdict
    pid = _failing_pid(evidence)
    limit = next((a for a in limits if a.pid == pid), limits[0])
    cited = _address_limit_cited(limit)
    summary = (
        f"Host memory allocation failed: pid {limit.pid} hit its own address-space limit "
        f"(RLIMIT_AS, set by `ulimit -v` or setrlimit) of {human_bytes(limit.limit_bytes)}, "
        "while the machine and its memory cgroup still had room."
    )
    return replace(
        verdict,
        subtype="oom/host",
        summary=summary,
        confidence=max(verdict.confidence, 0.95),
        evidence=verdict.evidence[:1] + (cited,) + verdict.evidence[1:],
        advice=(LIMIT_ADVICE,) + tuple(a for a in verdict.advice if "ulimit" not in a),
    )


def _with_leak(verdict: Verdict, evidence: Evidence, finished: bool = False) -> Verdict:
    """The verdict with the memory's steady growth named, when the samples show it: before an
    out-of-memory, most likely a leak, its advice first; in a run that `finished`, a warning that
    the same run made longer (more epochs, a larger dataset) runs out, its advice last
    (forty-third session's real runs: a validation loop without `no_grad` that kept its graphs,
    0.6 -> 2.2 GiB, exit 0)."""
    found = _steady_growth_cited(verdict, evidence, finished)
    if found is None:
        return verdict
    what, cited = found
    said = (
        " grew steadily to the end, though: unless it was filling a cache that stops growing, "
        "that is a leak, and a longer run runs out of memory."
        if finished
        else " grew steadily until then: most likely a leak."
    )
    return replace(
        verdict,
        summary=verdict.summary.rstrip() + f" {what[0].upper() + what[1:]}{said}",
        evidence=verdict.evidence + (cited,),
        advice=verdict.advice + (LEAK_ADVICE,) if finished else (LEAK_ADVICE,) + verdict.advice,
    )


def _steady_growth_cited(
    verdict: Verdict, evidence: Evidence, finished: bool
) -> tuple[str, Cited] | None:
    """(what grew, its citation) when the run's memory grew steadily after its start-up, up to
    the failure or, in a run that `finished`, to its end (by FINISHED_LEAK_* at least); None
    otherwise."""
    until = "to the end" if finished else "up to the failure"
    memory = evidence.memory
    if not hasattr(memory, "timeline") or not getattr(memory, "samples", ()):
        return None
    seconds = memory.samples[-1].elapsed
    progress = evidence.progress
    trained = progress is not None and progress.loss_count >= LEAK_MIN_LOSSES
    # in a live run, the memory since training began: a start-up's growth (imports, ranks starting
    # side by side) left out, a leak of the first epoch's validation kept
    live = progress is not None and evidence.source == "run"
    since = progress.first_loss_read_at if live else None
    if since is not None:
        training = memory.samples_since(since)
        if len(training) >= LEAK_MIN_TRAINING_SAMPLES:
            seconds, trained = training[-1].elapsed - training[0].elapsed, True
        else:
            since = None
    if not trained and seconds < UNTRAINED_LEAK_SECONDS:
        return None
    if (verdict.subtype or "").startswith("oom/gpu"):
        values = list(memory.gpu_timeline(STRETCHES, since))
        what = "GPU memory"
    else:
        values = list(memory.timeline(STRETCHES, since))
        what = "memory"
    factor = TRAINING_GROWTH_FACTOR if since is not None and not finished else GROWTH_FACTOR
    growth = steady_growth(values, factor)
    if growth is None:
        return None
    start, end, rising, stretches = growth
    if finished and (seconds < FINISHED_LEAK_SECONDS or end - start < FINISHED_LEAK_BYTES):
        return None
    return what, Cited(
        "memory",
        f"{what} grew steadily from {human_bytes(start)} to {human_bytes(end)} "
        f"over {seconds:.0f} s "
        f"(higher in {rising} of {stretches} stretches of the run), {until}",
        "memory sampler",
    )


def steady_growth(
    values: list[int], factor: float = GROWTH_FACTOR
) -> tuple[int, int, int, int] | None:
    """(start, end, stretches that rose, stretches compared) when a timeline rose steadily to its
    end after start-up, ending `factor` times above its start at least; None otherwise."""
    values = values[STARTUP_STRETCHES:] if len(values) > 2 * STARTUP_STRETCHES else values
    if len(values) < 6:
        return None
    # The last stretches may hold a sample taken after the failure freed its memory.
    start, end = values[0], max(values[-3:])
    rising = sum(1 for a, b in zip(values, values[1:], strict=False) if b > a)
    steps = len(values) - 1
    if (
        rising < RISING_SHARE * steps
        or end < factor * start
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
