"""What recording checkpoint saves costs: a loop that trains and saves, bare and under the probe.

    .venv/bin/python bench/checkpoint_overhead.py [--pairs 5] [--seconds 4] [--every 20]

The child trains a small MLP and calls torch.save on its state every `--every` steps, for
`--seconds`; it prints its steps per second and the median time of one torch.save. It runs bare
(no probe) and probed (the probe's environment, so torch.save is the probe's wrapper: two records
and a stat per save), alternating so that drift in the machine's load hits both alike. Prints the
median ratio of throughputs (target: >= 0.99) and of save times. Also the wrapper's own cost per
call, measured in this process against a save to an in-memory buffer (a save the probe does not
record, so only the wrapping is timed) and to a file (recorded).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(seconds: float, every: int, directory: str) -> None:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(128, 256), torch.randint(0, 10, (128,))
    saves = []
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        steps += 1
        if steps % every == 0:
            began = time.perf_counter()
            state = {"step": steps, "model": model.state_dict()}
            torch.save(state, os.path.join(directory, f"ckpt-{steps % 3}.pt"))
            saves.append(time.perf_counter() - began)
    rate = steps / (time.perf_counter() - start)
    print(f"RESULT {rate:.3f} {statistics.median(saves) * 1000:.3f}", flush=True)


def _run(seconds: float, every: int, env: dict[str, str]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        argv = [sys.executable, __file__, "--child", str(seconds), "--every", str(every)]
        done = subprocess.run(
            [*argv, "--dir", directory], env=env, capture_output=True, text=True, check=True
        )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            rate, save_ms = line.split()[1:]
            return float(rate), float(save_ms)
    raise RuntimeError(f"the loop printed no result:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def wrapper_cost(calls: int = 2000) -> tuple[float, float]:
    """Microseconds the wrapper adds to one torch.save: to a buffer (not recorded), to a file."""
    import importlib.util

    import torch

    from trainwatch.diagnostics.watch.probe import ProbeSession

    session = ProbeSession.create()
    os.environ["TRAINWATCH_PROBE_DIR"] = str(session.records_dir)
    try:
        # the probe installed in this process too, under a name of its own, writing its records
        spec = importlib.util.spec_from_file_location(
            "_trainwatch_bench_probe", session.site_dir / "sitecustomize.py"
        )
        probe = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(probe)
        bare = torch.save
        wrapped = probe._make_save(bare, "torch.save", probe._torch_save_target)
        tensor = {"w": torch.zeros(4)}
        results = []
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "x.pt")
            for target in (lambda: io.BytesIO(), lambda: path):
                times = {bare: [], wrapped: []}
                for _ in range(calls):
                    for save in (bare, wrapped):
                        began = time.perf_counter()
                        save(tensor, target())
                        times[save].append(time.perf_counter() - began)
                extra = statistics.median(times[wrapped]) - statistics.median(times[bare])
                results.append(extra * 1e6)
        return results[0], results[1]
    finally:
        os.environ.pop("TRAINWATCH_PROBE_DIR", None)
        session.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--every", type=int, default=20, help="steps between two saves")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.every, args.dir)
        return

    from trainwatch.diagnostics.watch.probe import ProbeSession

    bare_env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINWATCH_PROBE")}
    ratios, save_ratios = [], []
    for pair in range(args.pairs):
        bare_rate, bare_save = _run(args.seconds, args.every, bare_env)
        with ProbeSession.create(base_env=bare_env) as session:
            rate, save = _run(args.seconds, args.every, {**bare_env, **session.env})
            saves = session.collect().checkpoints.total
        ratios.append(rate / bare_rate)
        save_ratios.append(save / bare_save)
        print(
            f"pair {pair + 1}: bare {bare_rate:7.1f} steps/s, save {bare_save:6.2f} ms   "
            f"probed {rate:7.1f} steps/s, save {save:6.2f} ms ({saves} saves recorded)   "
            f"ratio {rate / bare_rate:.3f}",
            flush=True,
        )
    print(f"median throughput ratio, saves recorded / bare: {statistics.median(ratios):.3f}")
    print(f"median torch.save time ratio, recorded / bare: {statistics.median(save_ratios):.3f}")
    buffer_us, file_us = wrapper_cost()
    print(
        f"the wrapper's own cost per torch.save: {buffer_us:.1f} µs to a buffer (not recorded), "
        f"{file_us:.1f} µs to a file (two records and a stat)"
    )


if __name__ == "__main__":
    main()
