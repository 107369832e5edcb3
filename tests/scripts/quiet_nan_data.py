"""The seed case: a batch with NaN in it, a check that prints and breaks, exit 0 (a data
problem).
"""

import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from plain_sgd import SGD

torch.manual_seed(0)
inputs = torch.randn(160, 4)
inputs[90, 2] = float("nan")  # one bad sample, in the 6th batch of 16
dataset = TensorDataset(inputs, inputs.sum(dim=1, keepdim=True))
model = torch.nn.Linear(4, 1)
optimizer = SGD(model.parameters(), lr=0.01)
for epoch in range(3):
    print(f"Epoch {epoch + 1}/3", flush=True)
    for batch, target in tqdm(DataLoader(dataset, batch_size=16), mininterval=0):
        if torch.isnan(batch).any():
            print("NaN encountered in data!")
            break
        loss = torch.nn.functional.mse_loss(model(batch), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    else:
        continue
    break
print("Training finished.")
