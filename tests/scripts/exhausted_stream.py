"""An IterableDataset handed one generator: the first epoch uses it up, so the next two give no
batch, and the script prints the mean of their no losses, NaN, as such loops do; exit 0."""

import torch
from torch.utils.data import DataLoader, IterableDataset

from plain_sgd import SGD


def records():
    for _ in range(64):
        x = torch.randn(4)
        yield x, x.sum(0, keepdim=True)


class Stream(IterableDataset):
    def __init__(self, generator):
        self.generator = generator

    def __iter__(self):
        return self.generator  # the same generator every epoch: empty after the first


model = torch.nn.Linear(4, 1)
optimizer = SGD(model.parameters(), lr=0.01)
loader = DataLoader(Stream(records()), batch_size=16)
for epoch in range(3):
    losses = []
    for x, y in loader:
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    mean = torch.tensor(losses).mean().item()
    print(f"Epoch {epoch + 1}/3 - train_loss: {mean:.4f} ({len(losses)} batches)", flush=True)
