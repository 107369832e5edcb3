"""Prints `step N/8 loss=...` lines; the loss is NaN from step NAN_FROM on (argv[1], 0: never);
with argv[2] == "fail" it then raises. No torch: a notification test needs only the output."""

import sys
import time

nan_from = int(sys.argv[1]) if len(sys.argv) > 1 else 0
for step in range(1, 9):
    loss = float("nan") if nan_from and step >= nan_from else 1.0 / step
    print(f"step {step}/8 loss={loss:.4f}", flush=True)
    time.sleep(0.05)
if len(sys.argv) > 2 and sys.argv[2] == "fail":
    raise ValueError("the batch had no labels")
print("done", flush=True)
