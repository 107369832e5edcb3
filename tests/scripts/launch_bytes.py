"""Writes the bytes of a file to stdout and the reversed bytes to stderr, in uneven chunks,
interleaved.
"""

import os
import sys

data = open(sys.argv[1], "rb").read()
rev = data[::-1]
i = 0
step = 1
while i < len(data):
    os.write(1, data[i : i + step])
    os.write(2, rev[i : i + step])
    i += step
    step = step * 3 % 65521 + 1
