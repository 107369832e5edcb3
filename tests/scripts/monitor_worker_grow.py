"""A DataLoader whose one worker hoards memory: a few small items, then one that keeps growing (a
cache that never evicts) until the kernel kills the worker under a memory limit.
"""

import os

import torch
from torch.utils.data import DataLoader, Dataset

KEEP = []
SMALL_ITEMS = 3


class Growing(Dataset):
    def __len__(self):
        return 10_000

    def __getitem__(self, index):
        if index >= SMALL_ITEMS:
            # Grows until killed, while the main process waits for this item doing nothing: it
            # allocates nothing at the limit, so the OOM killer's only candidate is this worker.
            while True:
                chunk = bytearray(20 * 2**20)
                for offset in range(0, len(chunk), 4096):
                    chunk[offset] = 1
                KEEP.append(chunk)
        return torch.tensor([index], dtype=torch.float32)


def prefer_the_worker(_worker_id):
    """Make the worker the OOM killer's only choice: with WORKER_CGROUP set, it moves into that
    cgroup (a smaller limit than its main process's, which the main process is not in); else its
    score makes it the first choice of the shared cgroup's killer (the largest process anyway, but
    the main process, torch's ~300 MB, could be picked when it allocates at the limit)."""
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
    confined = os.environ.get("WORKER_CGROUP")
    if confined:
        with open(os.path.join(confined, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))


if __name__ == "__main__":
    loader = DataLoader(Growing(), batch_size=1, num_workers=1, worker_init_fn=prefer_the_worker)
    for step, batch in enumerate(loader):
        print(f"step {step} batch {batch.sum().item():.0f}", flush=True)
