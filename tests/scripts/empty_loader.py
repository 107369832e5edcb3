"""A training loop over a DataLoader that gives no batch: three samples, batches of eight,
drop_last. It prints its epochs and says it finished, exit 0; with `average`, it then divides by
the loader's length, zero, and fails as such scripts do; with `mean`, it prints the NumPy mean of
its (no) losses, NaN under NumPy's warning, and exits 0; with `resumed`, it resumes at its last
epoch's end and its loop never starts (no pass over the loader at all).
"""

import sys

import torch
from torch.utils.data import DataLoader, TensorDataset

from plain_sgd import SGD

loader = DataLoader(
    TensorDataset(torch.randn(3, 4), torch.randn(3, 1)), batch_size=8, drop_last=True
)
model = torch.nn.Linear(4, 1)
optimizer = SGD(model.parameters(), lr=0.1)
mode = sys.argv[1] if len(sys.argv) > 1 else ""
start = 3 if mode == "resumed" else 0
if start:
    print(f"=> resumed from checkpoint (epoch {start})", flush=True)
for epoch in range(start, 3):
    print(f"Epoch {epoch + 1}/3", flush=True)
    losses = []
    for x, y in loader:
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    if mode == "average":
        print(f"mean loss {sum(losses) / len(loader):.4f}")
    elif mode == "mean":
        import numpy

        print(f"train_loss={numpy.mean(losses):.4f}", flush=True)
print("Training finished")
