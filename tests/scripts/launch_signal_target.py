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
    if os.path.exists(record + ".helper"):  # the helper was signalled while we still ran
        with open(record, "a") as f:
            f.write("helper signalled while the program ran\n")
    sys.exit(100 + signum)


for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"):
    signal.signal(getattr(signal, name), on_signal)
if sys.argv[2:] == ["with-helper"]:
    # a helper process in the program's group, as a DataLoader worker is: it records a SIGTERM
    import subprocess

    helper = (
        "import signal, sys, time\n"
        "def seen(n, f):\n"
        "    open(sys.argv[1], 'a').write('SIGTERM\\n')\n"
        "signal.signal(signal.SIGTERM, seen)\n"
        "time.sleep(5)\n"
    )
    subprocess.Popen([sys.executable, "-c", helper, record + ".helper"])
    time.sleep(0.5)  # the helper's handler is in place
print("ready", flush=True)
# Short sleeps, not one long one: a signal whose C-level handler runs after the interpreter's last
# check and before the sleep's system call does not interrupt that sleep, so Python would run the
# handler only when a 60 s sleep ended (about one run in 300 on a loaded machine lost its signal).
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.05)
sys.exit(1)
