"""A loss taken out of the graph with `.item()` and wrapped back as a new tensor that requires a
gradient, so that `backward()` runs: the gradient stops at that leaf, no weight gets one, and the
printed loss stays where it began (real runs read completed, "loss never moved", or early
stopping). With `--attached` the loss is the model's own: the same loop trains.
"""

import sys

import torch

torch.manual_seed(0)
x = torch.randn(128, 4)
y = (x[:, 0] > 0).long()
model = torch.nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
criterion = torch.nn.CrossEntropyLoss()
for epoch in range(1, 6):
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    if "--attached" not in sys.argv:
        loss = torch.tensor(loss.item(), requires_grad=True)
    loss.backward()
    optimizer.step()
    print(f"Epoch {epoch}/5 - train loss: {loss.item():.4f}", flush=True)
print("training finished", flush=True)
