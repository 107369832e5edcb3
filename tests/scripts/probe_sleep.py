"""Hangs: the main thread waits forever, a helper thread sleeps; with `fork`, a forked child waits
too.
"""

import os
import sys
import threading
import time


def helper_sleep():
    time.sleep(60)


def wait_forever():
    threading.Event().wait(60)


threading.Thread(target=helper_sleep, name="helper", daemon=True).start()
if len(sys.argv) > 1 and sys.argv[1] == "fork":
    pid = os.fork()
    if pid == 0:
        try:
            wait_forever()
        finally:
            os._exit(0)
print("ready", flush=True)
wait_forever()
