"""A PyTorch regression whose learning rate is far too high: the loss overflows to inf, then NaN,
within a few epochs; left alone it would go on for 200 epochs (~20 s).

  --catch          catch KeyboardInterrupt, save a checkpoint beside argv's path, exit 0 (as
                   frameworks do)
  --ignore-sigint  ignore SIGINT, so only a SIGTERM ends it
"""

import argparse
import signal
import sys
import time

import torch

from plain_sgd import SGD

parser = argparse.ArgumentParser()
parser.add_argument("--catch", metavar="CHECKPOINT")
parser.add_argument("--ignore-sigint", action="store_true")
args = parser.parse_args()
if args.ignore_sigint:
    signal.signal(signal.SIGINT, signal.SIG_IGN)

torch.manual_seed(0)
x = torch.randn(256, 8) * 10
y = x @ torch.randn(8, 1) * 10
model = torch.nn.Linear(8, 1)
optimizer = SGD(model.parameters(), lr=0.02)
epochs = 200
try:
    for epoch in range(epochs):
        for step in range(8):
            batch = slice(step * 32, (step + 1) * 32)
            loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            print(
                f"epoch {epoch + 1}/{epochs} step {step + 1}/8 loss={loss.item():.4f}", flush=True
            )
            time.sleep(0.01)
except KeyboardInterrupt:
    if not args.catch:
        raise
    torch.save(model.state_dict(), args.catch)
    print(f"interrupted: checkpoint saved to {args.catch}", flush=True)
    sys.exit(0)
print("Training finished.")
