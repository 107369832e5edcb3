"""A DataLoader whose workers block on a lock that was held when they forked: the run hangs without
a word.
"""

import threading

import torch
from torch.utils.data import DataLoader, Dataset

lock = threading.Lock()


class LockedDataset(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, index):
        # each forked worker has its own copy of the lock, taken, and nobody to release it
        with lock:
            return torch.tensor([float(index)])


if __name__ == "__main__":
    lock.acquire()
    loader = DataLoader(
        LockedDataset(), batch_size=4, num_workers=2, multiprocessing_context="fork"
    )
    print("epoch 1/3", flush=True)
    for step, batch in enumerate(loader):
        print(f"step {step}", flush=True)
