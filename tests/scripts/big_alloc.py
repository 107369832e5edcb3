"""One allocation far larger than the address space the shell's `ulimit -v` leaves, made after
the monitor's first samples (every 0.5 s), so the report reads the limit from the process itself."""

import time

print("step 1/3 loss=0.5", flush=True)
time.sleep(1.2)
batch = bytearray(8 * 2**30)
