"""A loop that deadlocks on its own lock at epoch 2, then is terminated from outside (another
process sends SIGTERM after `sys.argv[1]` seconds), as a user or a scheduler stops a frozen run.
`sys.argv[2]`: seconds of a quiet start-up before the loop (a model built, a library imported)."""

import os
import subprocess
import sys
import threading
import time

lock = threading.Lock()

if __name__ == "__main__":
    subprocess.Popen(["sh", "-c", f"sleep {sys.argv[1]}; kill -TERM {os.getpid()}"])
    if len(sys.argv) > 2:
        print("building the model", flush=True)
        time.sleep(float(sys.argv[2]))
    for epoch in range(1, 4):
        print(f"epoch {epoch}/3 loss {1.0 / epoch:.4f}", flush=True)
        if epoch == 2:
            lock.acquire()
            lock.acquire()  # never returns: the lock is this thread's own
