"""A training loop that keeps every step's activations in a list, under an address-space limit it
sets itself (as `ulimit -v` would): memory grows steadily until an allocation fails."""

import resource
import time

with open("/proc/self/statm") as f:
    virtual = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (virtual + 320 * 2**20, resource.RLIM_INFINITY))

kept = []
for step in range(1, 10_000):
    activations = bytearray(4 * 2**20)  # 4 MiB a step, never freed: the leak
    for offset in range(0, len(activations), 4096):
        activations[offset] = 1
    kept.append(activations)
    if step % 10 == 0:
        print(f"step {step} loss={1 / step:.4f}", flush=True)
    time.sleep(0.01)
