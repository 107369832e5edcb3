"""What `trainwatch run` adds to a program's start and end, for a program that runs one second.

Measured in one run, wrapped and bare alternately (so a drift in machine load hits both alike),
medians of N each:
- before: from the moment the command is started to the moment the program's first line reaches
  the reader (what a user waits for), wrapped minus bare;
- after: from the program's last act (it prints the monotonic clock, then returns) to the moment
  its launcher is reaped (the shell prompt comes back), wrapped minus bare; the program's own
  interpreter shutdown is in both.
Targets (issue 14): at most 60 ms each.

    python bench/launch.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 60
PROGRAM = (
    "import time\n"
    "print('first line', flush=True)\n"
    "time.sleep(1.0)\n"
    "print('exit at', time.monotonic(), flush=True)\n"
)


def timed(argv: list[str]) -> tuple[float, float]:
    """(seconds to the first line, seconds from the program's last act to the launcher's exit)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    first_at = time.monotonic()
    rest = proc.stdout.read()
    proc.wait()
    reaped_at = time.monotonic()
    if not first.startswith(b"first line") or b"exit at" not in rest:
        raise SystemExit(f"unexpected output from {argv[0]}: {first!r} {rest!r}")
    program_exit = float(rest.split(b"exit at", 1)[1].split()[0])
    return first_at - started, reaped_at - program_exit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    python = sys.executable  # the same interpreter both ways (a pyenv shim would add its own start)
    trainwatch = str(Path(sys.executable).with_name("trainwatch"))
    bare_argv = [python, "-c", PROGRAM]
    wrapped_argv = [trainwatch, "run", "--", python, "-c", PROGRAM]
    # An installed trainwatch has its bytecode compiled by pip; a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would otherwise compile every changed module again at every start,
    # and that is not what users pay.
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            *(str(root / d) for d in ("cli", "diagnostics")),
        ],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    os.environ.pop("TRAINWATCH_DEBUG", None)
    for argv in (bare_argv, wrapped_argv):  # warm the page cache
        timed(argv)
    bare, wrapped = [], []
    for _ in range(args.runs):
        bare.append(timed(bare_argv))
        wrapped.append(timed(wrapped_argv))

    def median_ms(runs: list[tuple[float, float]], which: int) -> float:
        return statistics.median(run[which] for run in runs) * 1000

    print(f"a program that runs 1 s, {args.runs} runs each, medians:")
    print(f"{'':24}{'bare':>10}{'wrapped':>10}{'added':>10}  target")
    failed = False
    for which, name in ((0, "start to first line"), (1, "exit to prompt")):
        b, w = median_ms(bare, which), median_ms(wrapped, which)
        added = w - b
        failed |= added > TARGET_MS
        verdict = "OK" if added <= TARGET_MS else "OVER"
        print(f"{name:24}{b:8.1f}ms{w:8.1f}ms{added:8.1f}ms  <= {TARGET_MS} ms {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
