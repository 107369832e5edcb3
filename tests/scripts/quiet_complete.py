"""A run that completes: a tqdm bar that resets every epoch, a validation bar, and a loss that is
high by nature.
"""

import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from plain_sgd import SGD

torch.manual_seed(0)
x = torch.randn(256, 4)
# targets in the thousands: MSE ~ 1e7
y = (x @ torch.tensor([[3.0], [-2.0], [1.0], [0.5]])) * 1000 + 5000
train = DataLoader(TensorDataset(x[:192], y[:192]), batch_size=16)
val = DataLoader(TensorDataset(x[192:], y[192:]), batch_size=16)
model = torch.nn.Linear(4, 1)
optimizer = SGD(model.parameters(), lr=1e-3)
epochs = 3
for epoch in range(epochs):
    bar = tqdm(train, desc=f"Epoch {epoch + 1}/{epochs}", mininterval=0)
    for batch, target in bar:
        loss = torch.nn.functional.mse_loss(model(batch), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.1f}")
    with torch.no_grad():
        for batch, target in tqdm(val, desc="Validation", mininterval=0):
            val_loss = torch.nn.functional.mse_loss(model(batch), target)
    print(
        f"epoch {epoch + 1}/{epochs} train_loss={loss.item():.1f} val_loss={val_loss.item():.1f}",
        flush=True,
    )
print("Training finished.")
