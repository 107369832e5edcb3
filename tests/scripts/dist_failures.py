"""A two-rank gloo job on the CPU whose rank 1 fails in the way argv[1] names: raise, oom, kill,
hang, leave (it ends cleanly a step before rank 0), mismatch (its all-reduce is of another
size), ok.
"""

import os
import resource
import sys
import threading

import torch
import torch.distributed as dist

mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
dist.init_process_group("gloo")
rank = dist.get_rank()
t = torch.ones(4)
dist.all_reduce(t)
print(f"rank {rank}: step 1 all-reduced {t[0].item():.0f}", flush=True)
if rank == 1:
    if mode == "raise":
        raise ValueError("rank 1 found a bad batch size: 0")
    if mode == "oom":
        # Cap this rank's address space a little above what it uses, then ask for far more.
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + (256 << 20), hard))
        big = torch.empty(4 << 30, dtype=torch.uint8)  # 4 GiB
        big.fill_(1)
    if mode == "kill":
        os.kill(os.getpid(), 9)
    if mode == "hang":
        threading.Event().wait()  # stuck outside any collective: rank 0 waits for it in all_reduce
    if mode == "mismatch":
        t = torch.ones(145)  # rank 0 reduces 4 values: gloo receives a message of another size
    if mode == "leave":
        print("rank 1: out of batches, done", flush=True)
        sys.exit(0)  # uneven work: rank 0 all-reduces once more, alone
dist.all_reduce(t)
print(f"rank {rank}: step 2 all-reduced {t[0].item():.0f}", flush=True)
dist.destroy_process_group()
