"""Records every signal it receives in a file, then exits with 100 + the signal number (for the
forwarding tests).
"""

import os
import signal
import sys
import time

record = sys.argv[1]


def on_signal(signum, _frame):
    with open(record, "a") as f:
        f.write(f"{signal.Signals(signum).name} pgid={os.getpgrp()}\n")
    time.sleep(0.3)  # let a duplicate delivery, if any, arrive before we exit
    sys.exit(100 + signum)


for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"):
    signal.signal(getattr(signal, name), on_signal)
print("ready", flush=True)
time.sleep(60)
sys.exit(1)
