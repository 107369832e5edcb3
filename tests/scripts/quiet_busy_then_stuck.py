"""A loop that computes silently for a few seconds, then deadlocks on a lock it already holds: a
silence reported busy at first, then a wait that uses no CPU."""

import sys
import threading
import time

print("step 1/10", flush=True)
deadline = time.monotonic() + float(sys.argv[1])
x = 0
while time.monotonic() < deadline:
    x += 1
lock = threading.Lock()
lock.acquire()
lock.acquire()  # never returns
