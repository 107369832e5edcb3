"""A regression with a far too high learning rate: the loss grows, overflows to inf, then turns NaN;
the script exits 0.
"""

import torch

from plain_sgd import SGD

torch.manual_seed(0)
x = torch.randn(256, 8) * 10
y = x @ torch.randn(8, 1) * 10
model = torch.nn.Linear(8, 1)
optimizer = SGD(model.parameters(), lr=0.02)
epochs = 20
for epoch in range(epochs):
    for step in range(8):
        batch = slice(step * 32, (step + 1) * 32)
        loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"epoch {epoch + 1}/{epochs} step {step + 1}/8 loss={loss.item():.4f}", flush=True)
print("Training finished.")
