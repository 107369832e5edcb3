"""A regression whose dataset holds one NaN feature (row 45, the 6th batch of 8): no check, so the
loss prints `nan` from that batch on (the weights turn NaN with its step) and the run ends, exit 0.

    python nan_inputs_loop.py [--until-interrupted]
"""

import sys
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from plain_sgd import SGD

torch.manual_seed(0)
features = torch.randn(96, 4)
features[45, 1] = float("nan")
dataset = TensorDataset(features, features.sum(dim=1, keepdim=True))
model = torch.nn.Linear(4, 1)
optimizer = SGD(model.parameters(), lr=0.01)
epochs = 200 if "--until-interrupted" in sys.argv else 2
for epoch in range(epochs):
    for step, (x, y) in enumerate(DataLoader(dataset, batch_size=8)):
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"epoch {epoch + 1}/{epochs} step {step + 1}/12 loss={loss.item():.4f}", flush=True)
        time.sleep(0.01)
print("Training finished.")
