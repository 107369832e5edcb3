"""The wait classifier on a real sleeping process (the kernel's wait channel)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from trainwatch.diagnostics.watch.stall import wait_from_wchan


def test_wchan_of_a_sleeping_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)
        found = wait_from_wchan(child.pid)
        assert found is not None and found[0] == "sleep" and found[1].startswith("kernel: ")
    finally:
        child.kill()
        child.wait()


# ---- verdicts from saved logs --------------------------------------------------------------------


def test_wchan_of_a_process_opening_a_fifo_no_one_writes(tmp_path):
    # open() of a FIFO blocks in the kernel until a writer opens the other end: a wait on a file,
    # not "state not known"
    fifo = tmp_path / "data.fifo"
    os.mkfifo(fifo)
    child = subprocess.Popen([sys.executable, "-c", f"open({str(fifo)!r}).read()"])
    try:
        time.sleep(0.5)
        found = wait_from_wchan(child.pid)
        assert found is not None and found[0] == "io", found
    finally:
        child.kill()
        child.wait()
