"""Grow memory in touched chunks until killed or a cap: `monitor_grow.py [STEP_MB] [CAP_MB]
[SLEEP_AT_CAP_S]`.
"""

import sys
import time

step_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 10
cap_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
chunks = []
while len(chunks) * step_mb < cap_mb:
    # zero-filled by calloc: touch every page so it is really resident
    chunk = bytearray(step_mb * 2**20)
    for offset in range(0, len(chunk), 4096):
        chunk[offset] = 1
    chunks.append(chunk)
    print(f"allocated {len(chunks) * step_mb} MB", flush=True)
    time.sleep(0.05)
print("reached the cap", flush=True)
time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0)
