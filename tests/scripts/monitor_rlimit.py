"""Fail an allocation under RLIMIT_AS: `monitor_rlimit.py python` (MemoryError) or
`monitor_rlimit.py torch`.
"""

import resource
import sys

if sys.argv[1] == "torch":
    import torch
with open("/proc/self/statm") as f:
    virtual = int(f.read().split()[0]) * resource.getpagesize()
# Leave 256 MiB of address space above what is mapped now, then ask for 4 GiB.
resource.setrlimit(resource.RLIMIT_AS, (virtual + 256 * 2**20, resource.RLIM_INFINITY))
if sys.argv[1] == "torch":
    torch.empty(4 * 2**30, dtype=torch.uint8)
else:
    bytearray(4 * 2**30)
