"""Two gloo ranks (under torchrun) whose rank 1 stops calling collectives at step 3: it sleeps, as
a rank stuck in its data loader would, and rank 0 times out in its next all_reduce.

With TORCH_FR_DUMP_TEMP_FILE set, each rank writes PyTorch's flight-recorder trace (recorded when
TORCH_FR_BUFFER_SIZE > 0) to <prefix><rank>, as NCCL does on a timeout: rank 0 when its collective
times out, rank 1 when torchrun stops it.
"""

import datetime
import os
import signal
import time

import torch
import torch.distributed as dist

RANK = int(os.environ["RANK"])
PREFIX = os.environ.get("TORCH_FR_DUMP_TEMP_FILE")


def dump_flight_recorder():
    if PREFIX:
        from torch._C._distributed_c10d import _dump_fr_trace

        with open(f"{PREFIX}{RANK}", "wb") as fh:
            fh.write(_dump_fr_trace())


def stopped(signum, frame):
    dump_flight_recorder()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


signal.signal(signal.SIGTERM, stopped)
dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=1))
grads = torch.ones(4)
for step in range(1, 6):
    if RANK == 1 and step == 3:
        time.sleep(60)  # stuck: never reaches the third all_reduce
    try:
        dist.all_reduce(grads)
    except RuntimeError:
        dump_flight_recorder()
        raise
    print(f"rank {RANK} step {step}/5 loss {1 / step:.3f}", flush=True)
