"""A loss of detached features through a frozen head: `loss.requires_grad` is False, so the loop's
guard skips every `backward()`; the loss never moves and a hand-written early stop ends the run
at epoch 4/50, exit 0 (a real run, read as a loop that never ran).
"""

import sys

import torch

torch.manual_seed(0)
backbone, head = torch.nn.Linear(8, 8), torch.nn.Linear(8, 2)
head.requires_grad_(False)
optimizer = torch.optim.Adam(backbone.parameters(), 1e-3)
x, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
best, bad = float("inf"), 0
for epoch in range(1, 51):
    loss = torch.nn.functional.cross_entropy(head(backbone(x).detach()), y)
    if loss.requires_grad:
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"Epoch {epoch}/50 val_loss={loss.item():.5f}", flush=True)
    if loss.item() < best - 1e-4:
        best, bad = loss.item(), 0
    else:
        bad += 1
        if bad >= 3:
            print(f"Early stopping at epoch {epoch}: val_loss did not improve for 3 epochs")
            sys.exit(0)
