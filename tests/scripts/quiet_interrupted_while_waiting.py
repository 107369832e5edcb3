"""A run that waits for a batch that never comes (its producer is gone) until Ctrl-C: the
interrupt's traceback is printed, then its shutdown takes a moment, as a DataLoader's does."""

import queue
import time
import traceback

print("waiting for the first batch", flush=True)
try:
    queue.Queue().get()  # a wait that never ends: the producer is gone
except KeyboardInterrupt:
    traceback.print_exc()  # what Ctrl-C prints, then a shutdown that takes a moment (workers)
    time.sleep(1)
    raise
