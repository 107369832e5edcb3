"""A loop that computes forever and prints nothing after its first step: a possible hang that uses
CPU.
"""

import sys
import time

print("step 1/10", flush=True)
deadline = time.monotonic() + float(sys.argv[1])
x = 0
while time.monotonic() < deadline:
    x += 1
print("step 2/10", flush=True)
