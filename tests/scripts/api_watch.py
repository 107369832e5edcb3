"""A real training loop inside `trainwatch.watch()`: a tqdm bar, DataLoader workers, then a shape
error in the model at the third batch of the second epoch."""

import sys

import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

import trainwatch

from plain_sgd import SGD

torch.manual_seed(0)
data = TensorDataset(torch.randn(64, 8), torch.randn(64, 1))
model = torch.nn.Linear(8, 1)
opt = SGD(model.parameters(), lr=0.1)
with trainwatch.watch(interval=0.05) as w:
    for epoch in range(1, 3):
        loader = DataLoader(data, batch_size=8, num_workers=2)
        for step, (x, y) in enumerate(tqdm(loader, desc=f"Epoch {epoch}/2"), 1):
            if epoch == 2 and step == 3:
                x = x[:, :5]  # the bug: a batch cut to the wrong width
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.progress(loss=loss.item())
print("not reached", file=sys.stderr)
