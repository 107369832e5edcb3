"""Inverse-frequency class weights for three classes when the labels hold two: 1 / 0 = inf, and the
normalised weights are [a, b, nan]. `CrossEntropyLoss(weight=w)` then gives a NaN loss at every
step and the loop goes on to its end, exit 0. The NaN tensor `w` is a local of the loop, but the
loss module holds it: no batch of data was bad (a real tabular run, read as NaN inputs).
With `--tracked` the losses go to a list, as to a tracker, and the output prints none (real runs
whose tracker took the NaN were read as completed). With `--os-exit` it leaves by os._exit(0), as a
notebook kernel its runner shuts down does: no exit handler runs.
"""

import sys

import torch

tracked = "--tracked" in sys.argv
history = []

torch.manual_seed(0)
x = torch.randn(64, 2)
y = (torch.rand(64) < 0.2).long()  # classes 0 and 1 only
w = 1.0 / torch.bincount(y, minlength=3).float()
w = w / w.sum()
print("class weights:", w.tolist(), flush=True)
model = torch.nn.Linear(2, 3)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = torch.nn.CrossEntropyLoss(weight=w)
for epoch in range(1, 6):
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
    if tracked:
        history.append(loss.item())
        print(f"Epoch {epoch}/5 done", flush=True)
    else:
        print(f"Epoch {epoch}/5 loss={loss.item():.4f}", flush=True)
print("finished training", flush=True)
if "--os-exit" in sys.argv:
    import os

    os._exit(0)
