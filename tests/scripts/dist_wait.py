"""Two gloo ranks that stay alive until a file appears (argv[1]): rank 0 trains (prints a step and
a loss every 0.1 s), rank 1 waits for it in a barrier, inside a collective."""

import os
import sys
import time

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
stop = sys.argv[1]
if dist.get_rank() == 0:
    step = 0
    while not os.path.exists(stop):
        step += 1
        print(f"step {step} loss={1.0 / step:.4f}", flush=True)
        time.sleep(0.1)
dist.barrier()
dist.all_reduce(torch.ones(1))
dist.destroy_process_group()
