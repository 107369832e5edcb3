"""What relaying a chatty program's output costs it: the same program bare and under `trainwatch
run`, for three kinds of output, and trainwatch's own peak memory (issue 12, point 3).

    .venv/bin/python bench/relay_speed.py [--megabytes 24] [--pairs 3] [--kinds lines,chunks,bars]

Kinds: `lines` (many short `print` lines), `chunks` (1 MiB writes), `bars` (a `\\r` progress bar
redrawn in place, as tqdm does). Both runs write to a pipe drained by `cat` (what a terminal, a
log collector or `| tee` does); the program times its own writing (interpreter start-up left out),
so the ratio wrapped/bare is how much slower trainwatch makes the program (target: <= 1.1 on all
three). The end-to-end ratio (start to exit, trainwatch's start-up, parsing backlog and report
included) is printed beside it. Pairs alternate bare and wrapped so that drift in the machine's
load hits both alike; the median of each is shown. trainwatch's peak RSS is its VmHWM
(/proc/PID/status), read every 20 ms while it runs; the report's notes say when the parser fell
behind and sampled.
"""

from __future__ import annotations

import argparse
import json
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


def _peak_rss(pid: int, stop: threading.Event, found: list[int]) -> None:
    while not stop.is_set():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    found[0] = max(found[0], int(line.split()[1]) * 1024)
        except (OSError, ValueError):
            pass
        stop.wait(0.02)


def run_once(kind: str, megabytes: float, wrapped: bool, report: str) -> dict:
    """One run of the program, piped into cat: its own writing time, the wall time, trainwatch's
    peak RSS."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        program = [sys.executable, __file__, "--child", kind, str(megabytes), timing.name]
        argv = program
        if wrapped:
            argv = [str(TRAINWATCH), "run", "--quiet", "--json", report, "--", *program]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=24.0, help="output per run (>= 20)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], float(args.child[1]), args.child[2])
        return 0
    if not TRAINWATCH.exists() or shutil.which("cat") is None:
        print("needs the trainwatch command (an installed checkout) and cat", file=sys.stderr)
        return 2
    worst = 0.0
    with tempfile.TemporaryDirectory() as folder:
        report = os.path.join(folder, "report.json")
        for kind in args.kinds.split(","):
            bare, wrapped = [], []
            for _ in range(args.pairs):
                bare.append(run_once(kind, args.megabytes, False, report))
                wrapped.append(run_once(kind, args.megabytes, True, report))
            notes = json.loads(Path(report).read_text()).get("notes", [])
            own = statistics.median(w["own"] for w in wrapped) / statistics.median(
                b["own"] for b in bare
            )
            wall = statistics.median(w["wall"] for w in wrapped) / statistics.median(
                b["wall"] for b in bare
            )
            rss = max(w["rss"] for w in wrapped)
            worst = max(worst, own)
            print(
                f"{kind:6} {args.megabytes:.0f} MB: program's own time bare "
                f"{statistics.median(b['own'] for b in bare):6.2f} s, wrapped "
                f"{statistics.median(w['own'] for w in wrapped):6.2f} s, ratio {own:5.2f}x "
                f"(target <= {TARGET}x {'OK' if own <= TARGET else 'OVER'}); end to end "
                f"{wall:5.2f}x; trainwatch peak RSS {rss / 2**20:.0f} MiB",
                flush=True,
            )
            for note in notes:
                if "parse" in note or "output" in note:
                    print(f"       report note: {note}")
    print(f"worst ratio {worst:.2f}x (target <= {TARGET}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
