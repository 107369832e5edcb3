"""A small CNN trained on a folder of PNG images, one of which is corrupt: the failure the demo
diagnoses.

It makes its own data set (so it runs anywhere, offline): 96 random 32x32 images in 4 classes,
written as PNG files, plus one file whose bytes are not an image at all, the way a partial
download or a disk error leaves one. Training reads the files in DataLoader worker processes, as
a real image pipeline does, and dies when a worker reaches the bad file.

    python examples/train_cnn.py [--epochs N] [--data DIR] [--clean]
"""

import argparse
import os
import tempfile

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset


class ImageFolder(Dataset):
    """Images named `<class>_<n>.png` in one folder."""

    def __init__(self, root):
        self.paths = sorted(
            os.path.join(root, name) for name in os.listdir(root) if name.endswith(".png")
        )

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        path = self.paths[index]
        image = Image.open(path).convert("RGB")
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        label = int(os.path.basename(path).split("_")[0])
        return pixels, label


def make_dataset(root, corrupt):
    rng = np.random.default_rng(0)
    for n in range(96):
        label = n % 4
        pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
        pixels[..., label % 3] //= 2  # a faint colour cue per class, so there is something to learn
        Image.fromarray(pixels).save(os.path.join(root, f"{label}_{n:03d}.png"))
    if corrupt:
        with open(os.path.join(root, "2_077.png"), "wb") as f:
            f.write(b"<html><body>503 Service Unavailable</body></html>\n")


def build_model():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 8 * 8, 64),
        nn.ReLU(),
        nn.Linear(64, 4),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data", help="folder for the images (default: a temporary one)")
    parser.add_argument("--clean", action="store_true", help="leave out the corrupt file")
    args = parser.parse_args()
    root = args.data or tempfile.mkdtemp(prefix="trainwatch-demo-")
    os.makedirs(root, exist_ok=True)
    make_dataset(root, corrupt=not args.clean)

    torch.manual_seed(0)
    loader = DataLoader(ImageFolder(root), batch_size=8, shuffle=True, num_workers=2)
    model = build_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    batches = len(loader)
    for epoch in range(1, args.epochs + 1):
        for step, (images, labels) in enumerate(loader, 1):
            optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            print(
                f"epoch {epoch}/{args.epochs} step {step}/{batches} loss={loss.item():.4f}",
                flush=True,
            )
    print("Training finished.")


if __name__ == "__main__":
    main()
