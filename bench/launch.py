"""What `trainwatch run` adds to a program's start and end: median of `trainwatch run -- python3 -c
pass` minus the median of `python3 -c pass`, measured alternately in one run. Target: at most 150
ms (issue 2).

    python bench/launch.py [--runs N]
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 150


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    python = shutil.which("python3") or sys.executable
    trainwatch = str(Path(sys.executable).with_name("trainwatch"))
    bare_argv = [python, "-c", "pass"]
    wrapped_argv = [trainwatch, "run", "--", python, "-c", "pass"]
    # An installed trainwatch has its bytecode compiled by pip; a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would otherwise compile every changed module again at every start,
    # and that is not what users pay.
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(root / "cli"), str(root / "diagnostics")],
        check=False,
    )
    for argv in (bare_argv, wrapped_argv):  # warm the page cache
        timed(argv)
    bare, wrapped = [], []
    for _ in range(args.runs):  # alternate, so drift in machine load hits both alike
        bare.append(timed(bare_argv))
        wrapped.append(timed(wrapped_argv))
    added_ms = (statistics.median(wrapped) - statistics.median(bare)) * 1000
    print(f"python3 -c pass:                     median {statistics.median(bare) * 1000:6.1f} ms")
    print(
        f"trainwatch run -- python3 -c pass:   median {statistics.median(wrapped) * 1000:6.1f} ms"
    )
    print(
        f"added by trainwatch:                 {added_ms:6.1f} ms (target <= {TARGET_MS} ms)"
        f"  {'OK' if added_ms <= TARGET_MS else 'OVER'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
