"""A small process family for the tree sampler: `monitor_family.py NAME SECONDS`.

The main process renames itself NAME (through /proc/self/comm, so the kernel's comm field holds
it), spins one busy child, and waits SECONDS.
"""

import os
import sys
import time

name, seconds = sys.argv[1], float(sys.argv[2])
with open("/proc/self/comm", "w") as f:
    f.write(name)
busy = os.fork()
if busy == 0:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    os._exit(0)
print(f"busy {busy}", flush=True)
time.sleep(seconds)
os.waitpid(busy, 0)
