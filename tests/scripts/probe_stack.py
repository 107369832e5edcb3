"""Prints the stack from inside a dataset's `__getitem__`, which the DataLoader's `__next__` (a
function the probe wraps) calls in the main process: a stack the program prints itself
(`traceback.format_stack`, as autograd's anomaly mode records a forward call) shows no probe frame.
"""

import traceback

import torch
from torch.utils.data import DataLoader, Dataset


class Stacked(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        print("".join(traceback.format_stack(limit=4)), flush=True)
        traceback.print_stack()
        return torch.zeros(1)


for _ in DataLoader(Stacked(), batch_size=1):
    pass
