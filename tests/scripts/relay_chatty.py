"""Writes MEGABYTES of numbered lines to stdout as fast as it can, then creates MARKER: a program
far chattier than any parser keeps up with."""

import sys

megabytes, marker = float(sys.argv[1]), sys.argv[2]
out = sys.stdout.buffer
written = step = 0
while written < megabytes * 2**20:
    block = b"".join(b"step %d loss 0.25 lr 0.001\n" % n for n in range(step, step + 1000))
    out.write(block)
    written += len(block)
    step += 1000
out.flush()
open(marker, "w").close()
