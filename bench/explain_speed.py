"""How fast `trainwatch explain` reads a big log: generates ~200 MB, explains it, prints MB/s and
peak RSS.

Usage: python bench/explain_speed.py [MEGABYTES] [RUNS]. Targets (issue 11): >= 150 MB/s, peak RSS
<= 100 MB, and the right verdict (the log ends in a CUDA out-of-memory). The explain runs as a
child process (the real CLI), so its RSS is measured alone, start-up included; it runs RUNS times
(default 3) on the same file and the median speed is printed last (the machine may be shared).
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

TRACEBACK = """Traceback (most recent call last):
  File "/home/user/project/train.py", line 212, in <module>
    main()
  File "/home/user/project/train.py", line 180, in main
    loss = criterion(model(x), y)
  File "/opt/venv/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1511, in _call_impl
    return forward_call(*args, **kwargs)
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a \
total capacity of 79.15 GiB
"""


def generate(path: str, megabytes: int, seed: int = 0) -> int:
    """A realistic training log: tqdm bars, logging lines with losses, a warning now and then, one
    traceback.
    """
    rng = random.Random(seed)
    target = megabytes * 1_000_000
    written = 0
    step = 0
    with open(path, "w", encoding="utf-8") as fh:
        while written < target:
            block = []
            for _ in range(2000):
                step += 1
                epoch, i = divmod(step, 5000)
                loss = 2.5 / (1 + step / 20000) + rng.random() * 0.05
                kind = step % 10
                if kind < 6:
                    block.append(
                        f"Epoch {epoch}:  {i * 100 // 5000:3d}%|{'█' * (i * 20 // 5000):<20}| "
                        f"{i}/5000 "
                        f"[{i // 60:02d}:{i % 60:02d}<12:00, 7.{kind}1it/s, loss={loss:.4f}, "
                        f"v_num=3]"
                    )
                elif kind < 9:
                    block.append(
                        f"2024-05-01 12:{step // 3600 % 60:02d}:{step % 60:02d},123 INFO "
                        f"trainer.py:412 "
                        f"step {step} loss {loss:.5f} lr {3e-4 * (1 - step / 1e7):.6f} "
                        f"grad_norm {rng.random() * 2:.3f} tokens/s {rng.randint(9000, 12000)}"
                    )
                else:
                    block.append(
                        f"{{'loss': {loss:.4f}, 'learning_rate': 2.9e-05, "
                        f"'epoch': {step / 5000:.2f}}}"
                    )
            text = "\n".join(block) + "\n"
            fh.write(text)
            written += len(text.encode())
        fh.write(TRACEBACK)
    return os.path.getsize(path)


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    speeds = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.log")
        size = generate(path, megabytes)
        for _ in range(runs):
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "trainwatch.cli", "explain", path, "--json", "-", "-q"],
                capture_output=True,
                text=True,
            )
            elapsed = time.perf_counter() - start
            if result.returncode != 0:
                sys.exit(f"explain failed ({result.returncode}): {result.stderr.strip()[-500:]}")
            speeds.append(size / 1e6 / elapsed)
            print(f"size {size / 1e6:.0f} MB  time {elapsed:.2f} s  speed {speeds[-1]:.0f} MB/s")
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest of the runs
    verdict = json.loads(result.stdout)["verdict"]
    print(f"verdict {verdict['subtype']} (the log ends in a CUDA out-of-memory traceback)")
    if verdict["subtype"] != "oom/gpu":  # fast but wrong is no figure
        sys.exit("explain got the verdict wrong: the speed above does not count")
    print(
        f"median speed {statistics.median(speeds):.0f} MB/s over {runs} runs  peak RSS "
        f"{peak_kib / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
