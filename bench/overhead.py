"""What watching costs: a CPU training loop's throughput bare and watched, and the memory sampler's
own CPU time.

    .venv/bin/python bench/overhead.py [--pairs 5] [--seconds 6] [--interval 0.5]

Runs the same loop bare and watched, alternating (bare, watched, bare, watched, ...) so that
drift in the machine's load hits both alike, and prints the median of the per-pair ratios
(target: >= 0.99). "Watched" is `trainwatch run -- python bench/overhead.py --child ...` when the
command exists, and also, always, the loop with a `Monitor` sampling it from this process (the
sampler alone). The loop times itself, so interpreter and torch start-up are left out. Then the
sampler's CPU time per sample, start-up excluded, and `Monitor.start`'s latency.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAINWATCH = Path(sys.executable).with_name("trainwatch")
THREADS = 1  # torch threads in the loop; --threads sets it


def child(seconds: float, threads: int) -> None:
    """A small MLP trained on random data for about `seconds`; prints its steps per second."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(128, 256), torch.randint(0, 10, (128,))
    for _ in range(20):  # warm-up: first steps allocate
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        steps += 1
    print(f"THROUGHPUT {steps / (time.perf_counter() - start):.3f}", flush=True)


def _throughput(output: str) -> float:
    for line in output.splitlines():
        if line.startswith("THROUGHPUT "):
            return float(line.split()[1])
    raise RuntimeError(f"the loop printed no throughput:\n{output[-2000:]}")


def run_bare(seconds: float) -> float:
    argv = [sys.executable, __file__, "--child", str(seconds), "--threads", str(THREADS)]
    return _throughput(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


def run_monitored(seconds: float, interval: float) -> tuple[float, object]:
    from trainwatch.diagnostics.watch.monitor import Monitor

    argv = [sys.executable, __file__, "--child", str(seconds), "--threads", str(THREADS)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    monitor = Monitor.start(proc.pid, interval)
    output = proc.communicate()[0]
    return _throughput(output), monitor.stop()


def run_trainwatch(seconds: float, interval: float) -> float:
    argv = [
        str(TRAINWATCH),
        "run",
        "--interval",
        str(interval),
        "--quiet",
        "--",
        sys.executable,
        __file__,
        "--child",
        str(seconds),
        "--threads",
        str(THREADS),
    ]
    return _throughput(subprocess.run(argv, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each timed loop")
    parser.add_argument(
        "--interval", type=float, default=0.5, help="seconds between memory samples"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads in the loop (1 keeps a shared machine's noise down; use all cores to "
        "see the sampler compete for them)",
    )
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.threads)
        return
    global THREADS
    THREADS = args.threads

    from trainwatch.diagnostics.watch.monitor import Monitor

    use_cli = TRAINWATCH.exists() and (ROOT / "cli" / "run.py").exists()
    ratios_monitor, ratios_cli, per_sample = [], [], []
    for pair in range(args.pairs):
        bare = run_bare(args.seconds)
        watched, facts = run_monitored(args.seconds, args.interval)
        ratios_monitor.append(watched / bare)
        if facts.cpu_ms_per_sample() is not None:
            per_sample.append(facts.cpu_ms_per_sample())
        line = (
            f"pair {pair + 1}: bare {bare:8.1f} steps/s   monitor {watched:8.1f} "
            f"({watched / bare:.3f})"
        )
        if use_cli:
            bare2 = run_bare(args.seconds)
            cli = run_trainwatch(args.seconds, args.interval)
            ratios_cli.append(cli / bare2)
            line += f"   bare {bare2:8.1f}   trainwatch run {cli:8.1f} ({cli / bare2:.3f})"
        print(line, flush=True)

    print(
        f"median throughput ratio, Monitor sampling every {args.interval} s: "
        f"{statistics.median(ratios_monitor):.3f}"
    )
    if ratios_cli:
        print(f"median throughput ratio, trainwatch run: {statistics.median(ratios_cli):.3f}")
    else:
        print("trainwatch run: not measured (the command is not installed)")
    if per_sample:
        ms = statistics.median(per_sample)
        print(
            f"sampler CPU per sample (tree of 1 process): {ms:.3f} ms = "
            f"{ms / (10 * args.interval):.3f}% of one core "
            f"at a {args.interval} s interval"
        )

    # Start latency: what the launcher pays before the child is free to run.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    latencies = []
    for _ in range(20):
        start = time.perf_counter()
        monitor = Monitor.start(sleeper.pid, args.interval)
        latencies.append((time.perf_counter() - start) * 1000)
        monitor.stop()
    sleeper.kill()
    sleeper.wait()
    print(
        f"Monitor.start latency: median {statistics.median(latencies):.3f} ms, max "
        f"{max(latencies):.3f} ms"
    )


if __name__ == "__main__":
    main()
