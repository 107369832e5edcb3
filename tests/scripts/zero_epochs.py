"""A 1-based epoch loop over hand-sliced tensors, `range(1, EPOCHS)` with EPOCHS = 1: it builds a
torch.optim optimizer, trains zero epochs, says it finished, saves and exits 0. No DataLoader is
built, no loss printed: only the probe's count of gradients shows that nothing trained.
"""

import torch

EPOCHS = 1
inputs, targets = torch.randn(64, 4), torch.randn(64, 1)
model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
print(f"Training for {EPOCHS} epoch(s) on {len(inputs)} samples", flush=True)
for epoch in range(1, EPOCHS):
    for start in range(0, len(inputs), 16):
        optimizer.zero_grad()
        loss = ((model(inputs[start : start + 16]) - targets[start : start + 16]) ** 2).mean()
        loss.backward()
        optimizer.step()
print("Training finished")
