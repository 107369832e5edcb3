"""Small real PyTorch training runs that fail in one named way each: `python real_failures.py
MODE`.
"""

import ctypes
import sys

MODE = sys.argv[1]
if MODE == "missing-module":  # a script's first imports, before torch: it fails at once
    import torchmetrics_not_installed  # noqa: F401

# (after it on purpose)
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from plain_sgd import SGD  # noqa: E402


class Samples(Dataset):
    """Eight random samples; MODE decides what is wrong with them."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        if MODE == "keyerror":
            record = {"image": torch.randn(4)}
            return record["pixels"], 0  # the key the data set was written with is "image"
        size = 4 if (MODE != "collate" or index % 2 == 0) else 5
        if MODE == "record-size":
            # records stored flat and reshaped; the sixth was written one value short
            flat = torch.randn(3 if index == 5 else 4)
            return flat.view(2, 2).flatten(), index % 3
        label = index % 3
        if MODE == "labels":
            label = 7  # the model has 3 classes
        return torch.randn(size), label


def train():
    torch.manual_seed(0)
    workers = 2 if MODE in ("keyerror", "collate") else 0
    loader = DataLoader(Samples(), batch_size=4, num_workers=workers)
    hidden = 6 if MODE == "shape" else 8
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(hidden, 3))
    optimizer = SGD(model.parameters(), lr=0.1)
    for step, (x, y) in enumerate(loader):
        out = model(x)
        loss = nn.functional.cross_entropy(out, y)
        if MODE == "inf-loss":
            loss = loss * float("inf")
            if not torch.isfinite(loss):
                raise RuntimeError(f"Loss is {loss.item()} at step {step}, stopping training")
        if MODE == "anomaly":
            with torch.autograd.detect_anomaly():
                bad = torch.sqrt(out - 100.0).sum()  # sqrt of negatives: NaN in the backward pass
                bad.backward()
        if MODE in ("inplace", "inplace-anomaly"):
            # with anomaly mode on, torch names the forward call whose saved output was changed
            torch.autograd.set_detect_anomaly(MODE == "inplace-anomaly")
            hidden_out = torch.sigmoid(out)
            hidden_out += 1  # sigmoid's backward needs its output unchanged
            loss = hidden_out.sum()
        loss.backward()
        optimizer.step()
        print(f"step {step} loss={loss.item():.4f}", flush=True)
    if MODE == "disk-full":
        torch.save(model.state_dict(), "/dev/full")
    if MODE == "segfault":
        ctypes.string_at(0)


def allocate_under_a_limit():
    """A run under an address-space limit (ulimit -v, a batch system's) that asks for more than it
    allows.
    """
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    activations = torch.empty(8 << 30, dtype=torch.uint8)  # 8 GiB under a 4 GiB limit
    print(activations.shape)


if __name__ == "__main__":
    if MODE == "rlimit":
        allocate_under_a_limit()
    train()
