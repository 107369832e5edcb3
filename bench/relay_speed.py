"""What relaying a chatty program's output costs it: the same program bare and under `trainwatch
run`, for three kinds of output, and trainwatch's own peak memory (issue 12, point 3).

    .venv/bin/python bench/relay_speed.py [--megabytes 24] [--pairs 5] [--kinds lines,chunks,bars]

Kinds: `lines` (many short `print` lines), `chunks` (1 MiB writes), `bars` (a `\\r` progress bar
redrawn in place, as tqdm does), each at least --megabytes and grown until the bare program writes
for MIN_SECONDS (24 MB of 1 MiB chunks take ~30 ms, too short to time). All runs write to a pipe
drained by `cat` (what a terminal, a log collector or `| tee` does); the program times its own
writing (interpreter start-up left out), so the ratio wrapped/bare is how much slower trainwatch
makes the program (target: <= 1.1 on all three). Beside it, the same ratio for a plain relay (a
loop that copies the program's pipe to ours and does nothing else; `--plain-relay`): what any
wrapper that sees the output costs on this machine, the floor for trainwatch. The end-to-end ratio
(start to exit, trainwatch's start-up, parsing backlog and report included) is printed beside it.
Rounds alternate bare, plain and wrapped so that drift in the machine's load hits all alike; the
median of each is shown. trainwatch's peak RSS is its VmHWM (/proc/PID/status), read every 20 ms
while it runs; the report's notes say when the parser fell behind and sampled.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET = 1.1
# A program that writes for less than this is timed by the scheduler's noise rather than the relay
# (24 MB of 1 MiB chunks take ~30 ms): each kind's output is grown until the bare program writes
# for this long (never below --megabytes, never above MAX_MEGABYTES).
MIN_SECONDS = 1.0
MAX_MEGABYTES = 2048.0
TRAINWATCH = Path(sys.executable).with_name("trainwatch")
KINDS = ("lines", "chunks", "bars")


def child(kind: str, megabytes: float, timing_file: str) -> None:
    """Write `megabytes` of output of one kind to stdout; record how long the writing took."""
    total = int(megabytes * 2**20)
    written = 0
    start = time.perf_counter()
    if kind == "lines":
        step = 0
        while written < total:
            line = f"step {step} loss {1.0 / (step + 1):.6f} lr 0.001"
            print(line)
            written += len(line) + 1
            step += 1
    elif kind == "chunks":
        chunk = (b"x" * 1023 + b"\n") * 1024
        out = sys.stdout.buffer
        while written < total:
            out.write(chunk)
            written += len(chunk)
    else:
        step, width = 0, 40
        while written < total:
            done = step % 1000
            bar = "#" * (done * width // 1000)
            text = f"\r{done / 10:5.1f}%|{bar:<{width}}| {done}/1000 [00:01<00:02, 812.3it/s]"
            sys.stdout.write(text)
            written += len(text)
            step += 1
        sys.stdout.write("\n")
    sys.stdout.flush()
    Path(timing_file).write_text(str(time.perf_counter() - start))


def plain_relay(argv: list[str]) -> int:
    """The reference: the least a relay can do. Start `argv` with its stdout on a pipe widened as
    trainwatch widens its own, copy what comes to our stdout, nothing else."""
    import fcntl

    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass
    proc = subprocess.Popen(argv, stdout=write_end)
    os.close(write_end)
    while data := os.read(read_end, 1 << 20):
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]
    return proc.wait()


def _peak_rss(pid: int, stop: threading.Event, found: list[int]) -> None:
    while not stop.is_set():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    found[0] = max(found[0], int(line.split()[1]) * 1024)
        except (OSError, ValueError):
            pass
        stop.wait(0.02)


def run_once(kind: str, megabytes: float, way: str, report: str) -> dict:
    """One run of the program, piped into cat, `way` "bare", under a "plain" relay or "wrapped" by
    trainwatch: its own writing time, the wall time, trainwatch's peak RSS."""
    wrapped = way == "wrapped"
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        program = [sys.executable, __file__, "--child", kind, str(megabytes), timing.name]
        argv = program
        if wrapped:
            argv = [str(TRAINWATCH), "run", "--quiet", "--json", report, "--", *program]
        elif way == "plain":
            argv = [sys.executable, __file__, "--plain-relay", *program]
        cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        # prints block-buffered, as a program's stdout into a pipe is unless told otherwise (an
        # unbuffered one makes a system call per print, and is slow enough to hide any relay)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=cat.stdin, stderr=subprocess.DEVNULL, env=env)
        cat.stdin.close()
        stop, peak = threading.Event(), [0]
        sampler = threading.Thread(target=_peak_rss, args=(proc.pid, stop, peak), daemon=True)
        if wrapped:
            sampler.start()
        proc.wait()
        wall = time.perf_counter() - start
        stop.set()
        cat.wait()
        if wrapped:
            sampler.join()
        own = float(Path(timing.name).read_text() or "nan")
    return {"own": own, "wall": wall, "rss": peak[0]}


def sized(kind: str, megabytes: float, report: str) -> float:
    """The output size at which the bare program writes for at least MIN_SECONDS."""
    own = run_once(kind, megabytes, "bare", report)["own"]
    if own >= MIN_SECONDS:
        return megabytes
    return min(MAX_MEGABYTES, megabytes * math.ceil(MIN_SECONDS / max(own, 1e-3)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=24.0, help="output per run (>= 20)")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--plain-relay", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], float(args.child[1]), args.child[2])
        return 0
    if args.plain_relay:
        return plain_relay(args.plain_relay)
    if not TRAINWATCH.exists() or shutil.which("cat") is None:
        print("needs the trainwatch command (an installed checkout) and cat", file=sys.stderr)
        return 2
    worst = 0.0
    with tempfile.TemporaryDirectory() as folder:
        report = os.path.join(folder, "report.json")
        for kind in args.kinds.split(","):
            bare, plain, wrapped = [], [], []
            megabytes = sized(kind, args.megabytes, report)
            for _ in range(args.pairs):
                bare.append(run_once(kind, megabytes, "bare", report))
                plain.append(run_once(kind, megabytes, "plain", report))
                wrapped.append(run_once(kind, megabytes, "wrapped", report))
            notes = json.loads(Path(report).read_text()).get("notes", [])
            bare_own = statistics.median(b["own"] for b in bare)
            own = statistics.median(w["own"] for w in wrapped) / bare_own
            reference = statistics.median(p["own"] for p in plain) / bare_own
            wall = statistics.median(w["wall"] for w in wrapped) / statistics.median(
                b["wall"] for b in bare
            )
            rss = max(w["rss"] for w in wrapped)
            worst = max(worst, own)
            print(
                f"{kind:6} {megabytes:.0f} MB: program's own time bare "
                f"{statistics.median(b['own'] for b in bare):6.2f} s, wrapped "
                f"{statistics.median(w['own'] for w in wrapped):6.2f} s, ratio {own:5.2f}x "
                f"(target <= {TARGET}x {'OK' if own <= TARGET else 'OVER'}); a plain relay "
                f"{reference:5.2f}x; end to end {wall:5.2f}x; trainwatch peak RSS "
                f"{rss / 2**20:.0f} MiB",
                flush=True,
            )
            for note in notes:
                if "parse" in note or "output" in note:
                    print(f"       report note: {note}")
    print(f"worst ratio {worst:.2f}x (target <= {TARGET}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
