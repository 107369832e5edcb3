"""A DataLoader whose one worker grows its memory on every item: under a memory limit the kernel
kills the worker.
"""

import torch
from torch.utils.data import DataLoader, Dataset

KEEP = []


class Growing(Dataset):
    def __len__(self):
        return 10_000

    def __getitem__(self, index):
        chunk = bytearray(20 * 2**20)
        for offset in range(0, len(chunk), 4096):
            chunk[offset] = 1
        KEEP.append(chunk)  # a leak in the worker, as a cache that never evicts
        return torch.tensor([index], dtype=torch.float32)


def prefer_the_worker(_worker_id):
    """Make the worker the OOM killer's first choice. The worker is the largest process anyway, but
    the main process (torch's ~300 MB) is close enough early on that the kernel sometimes picks
    it, and the test is about a killed worker.
    """
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")


if __name__ == "__main__":
    loader = DataLoader(Growing(), batch_size=1, num_workers=1, worker_init_fn=prefer_the_worker)
    for step, batch in enumerate(loader):
        print(f"step {step} batch {batch.sum().item():.0f}", flush=True)
