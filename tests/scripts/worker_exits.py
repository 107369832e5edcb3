"""A real DataLoader (num_workers=2) one of whose workers ends by itself with status 3 at sample 40
(`os._exit`, as a native library's exit() does): no signal, no memory pressure, its error lost."""

import os

import torch
from torch.utils.data import DataLoader, Dataset


class Samples(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, index):
        if index == 40:
            os._exit(3)
        return torch.zeros(4)


if __name__ == "__main__":
    for step, batch in enumerate(DataLoader(Samples(), batch_size=4, num_workers=2)):
        print(f"step {step}/16", flush=True)
