"""A daemon-style program: closes every descriptor from 3 up, opens two files of its own, writes
them, then crashes with SIGSEGV.
`python probe_closes_fds.py DIR MODE` (MODE: closerange or close)."""

import ctypes
import os
import sys

directory, mode = sys.argv[1], sys.argv[2]
if mode == "closerange":
    os.closerange(3, 4096)
else:
    for fd in range(3, 256):
        try:
            os.close(fd)
        except OSError:
            pass
with (
    open(os.path.join(directory, "checkpoint.bin"), "wb") as ckpt,
    open(os.path.join(directory, "metrics.txt"), "w") as metrics,
):
    ckpt.write(b"\x00CHECKPOINT\x01" * 100)
    ckpt.flush()
    metrics.write("step 1 loss 0.5\n")
    metrics.flush()
    ctypes.string_at(0)  # SIGSEGV while both files are open
