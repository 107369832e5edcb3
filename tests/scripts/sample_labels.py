"""A classifier of 5 classes fed labels 0..7: the third batch holds labels 7 and 5 at positions 2
and 5 (`labels`), or NaN in the inputs at position 3 of its fourth batch (`nan`).

    python sample_labels.py {labels,nan}
"""

import sys

import torch
from torch.utils.data import DataLoader, TensorDataset

from plain_sgd import SGD


def main() -> None:
    mode = sys.argv[1]
    torch.manual_seed(0)
    inputs = torch.randn(64, 6)
    labels = torch.randint(0, 5, (64,))
    if mode == "labels":
        labels[16 + 2], labels[16 + 5] = 7, 5
    else:
        inputs[24 + 3, 1] = float("nan")
    model = torch.nn.Linear(6, 5)
    optimizer = SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(inputs, labels), batch_size=8)
    for step, (batch, target) in enumerate(loader):
        if torch.isnan(batch).any():
            raise ValueError(f"NaN in the input batch at step {step}")
        loss = torch.nn.functional.cross_entropy(model(batch), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"step {step} loss {loss.item():.4f}", flush=True)


if __name__ == "__main__":
    main()
