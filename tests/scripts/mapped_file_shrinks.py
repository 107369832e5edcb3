"""A training loop that reads its samples from a memory-mapped file another job then cuts short: a
real SIGBUS (the page it reads is past the file's new end), with /dev/shm untouched.

    python mapped_file_shrinks.py PATH
"""

import mmap
import os
import sys
import time

path = sys.argv[1]
with open(path, "wb") as f:
    f.write(b"\0" * (1 << 20))
with open(path, "r+b") as f:
    samples = mmap.mmap(f.fileno(), 0)
print("epoch 1 step 1/10 loss 0.5312", flush=True)
time.sleep(1.0)  # a step's time: the run is watched (and its /dev/shm read) before the fault
os.truncate(path, 4096)  # the cache rewritten, shorter, while the run still maps it
print(samples[(1 << 20) - 1])  # a page past the new end
