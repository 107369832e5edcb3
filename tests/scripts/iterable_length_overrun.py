"""An IterableDataset whose `__len__` says 3 and that yields 5 samples, its DataLoader's length
asked first: torch's `__next__` warns at the 4th and 5th sample about the line that asked for them
(`stacklevel=2`), the `for` below. Prints the batches' sum and exits 0."""

import torch
from torch.utils.data import DataLoader, IterableDataset


class Stream(IterableDataset):
    def __iter__(self):
        return iter(torch.arange(5.0))

    def __len__(self):
        return 3


loader = DataLoader(Stream(), batch_size=None)
print(f"{len(loader)} batches expected", flush=True)
total = 0.0
for batch in loader:  # the line torch's warnings name
    total += float(batch)
print(f"sum {total}", flush=True)
