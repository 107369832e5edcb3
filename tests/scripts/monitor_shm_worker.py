"""DataLoader workers that hand 16 MB samples to the main process through /dev/shm (for the oom/shm
test).
"""

import torch
from torch.utils.data import DataLoader, Dataset


class Big(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, index):
        # 16 MB: a worker passes it to the main process in shared memory
        return torch.ones(4 * 1024 * 1024)


loader = DataLoader(Big(), batch_size=4, num_workers=2)
for step, batch in enumerate(loader):
    print("step", step, tuple(batch.shape), flush=True)
