"""A DataLoader whose one worker grows its memory on every item: under a memory limit the kernel kills the worker."""

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


if __name__ == "__main__":
    for step, batch in enumerate(DataLoader(Growing(), batch_size=1, num_workers=1)):
        print(f"step {step} batch {batch.sum().item():.0f}", flush=True)
