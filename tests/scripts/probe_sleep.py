"""Hangs: the main thread waits forever, a helper thread sleeps; with `fork`, a forked child waits
too. "ready" is printed only once both threads are inside their waits, so a stack dump requested
after it always finds them there (printing it before the wait made the stack test flaky).
"""

import os
import sys
import threading
import time


def helper_sleep():
    time.sleep(60)


def wait_forever():
    threading.Event().wait(60)


def functions_of(frame) -> set[str]:
    names = set()
    while frame is not None:
        names.add(frame.f_code.co_name)
        frame = frame.f_back
    return names


def announce_once_waiting(main_id: int) -> None:
    while True:
        stacks = {ident: functions_of(f) for ident, f in sys._current_frames().items()}
        helper_asleep = any("helper_sleep" in names for names in stacks.values())
        if helper_asleep and "wait_forever" in stacks.get(main_id, ()):
            print("ready", flush=True)
            return
        time.sleep(0.005)


threading.Thread(target=helper_sleep, name="helper", daemon=True).start()
if len(sys.argv) > 1 and sys.argv[1] == "fork":
    pid = os.fork()
    if pid == 0:
        try:
            wait_forever()
        finally:
            os._exit(0)
threading.Thread(
    target=announce_once_waiting, args=(threading.main_thread().ident,), daemon=True
).start()
wait_forever()
