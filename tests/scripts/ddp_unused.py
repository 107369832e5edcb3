"""DistributedDataParallel over a model with a branch the forward pass never uses: the reducer
waits for that parameter's gradient, and the second iteration raises. One process (gloo)."""

import os
import tempfile

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from plain_sgd import SGD


class TwoHeads(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(4, 4)
        self.unused_head = torch.nn.Linear(4, 2)  # never called in forward

    def forward(self, x):
        return self.body(x)


torch.manual_seed(0)
store = os.path.join(tempfile.mkdtemp(), "store")
dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
model = DistributedDataParallel(TwoHeads())
optimizer = SGD(model.parameters(), lr=0.1)
for step in range(3):
    loss = model(torch.randn(8, 4)).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(f"step {step} loss={loss.item():.4f}", flush=True)
dist.destroy_process_group()
