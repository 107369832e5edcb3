"""Forks CHILDREN processes that share one large array with their parent (copy-on-write, never
written), holds them a while, then is killed with `kill -9` from outside the memory story:
`monitor_shared_fork.py MB CHILDREN HOLD_S`. The summed RSS of the tree counts the array once per
process; the tree really holds it once."""

import os
import signal
import sys
import time

megabytes, children, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
shared = b"\x01" * (megabytes * 2**20)  # written once, here: every page resident
pids = []
for _ in range(children):
    pid = os.fork()
    if pid == 0:
        total = 0
        for offset in range(0, len(shared), 4096):  # read every page: mapped in this process too
            total += shared[offset]
        time.sleep(hold + 30)
        os._exit(0)
    pids.append(pid)
print(f"forked {children} children sharing {megabytes} MB", flush=True)
time.sleep(hold)
os.kill(os.getpid(), signal.SIGKILL)  # a kill -9 that has nothing to do with memory
