"""A small CNN trained on a folder of PNG images, one of which is corrupt: the failure the demo
diagnoses.

It makes its own data set (so it runs anywhere, offline): 96 random 32x32 images in 4 classes,
written as PNG files, plus one file whose bytes are not an image at all, the way a partial
download or a disk error leaves one. Training reads the files in DataLoader worker processes, as
a real image pipeline does, and dies when a worker reaches the bad file.

It needs PyTorch; it reads the images with Pillow when Pillow is installed, else with the few
lines of PNG decoding below (the standard library's zlib), so `trainwatch demo` runs wherever
torch does.

    python train_cnn.py [--epochs N] [--data DIR] [--clean]
"""

import argparse
import os
import random
import struct
import tempfile
import zlib

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

try:
    from PIL import Image
except ImportError:  # the standard library's PNG reading below does
    Image = None

SIZE = 32
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
        pixels = Image.open(path).convert("RGB").tobytes() if Image else read_png(path)
        image = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).float() / 255.0
        label = int(os.path.basename(path).split("_")[0])
        return image.view(SIZE, SIZE, 3).permute(2, 0, 1), label


def read_png(path):
    """The RGB bytes of a PNG written by `write_png` (8-bit RGB, no filter): enough for the demo."""
    with open(path, "rb") as handle:
        data = handle.read()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"cannot identify image file {path!r}: not a PNG image")
    chunks, pos = [], len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            chunks.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    stride = 1 + 3 * SIZE
    return b"".join(raw[row * stride + 1 : (row + 1) * stride] for row in range(SIZE))


def write_png(path, pixels):
    """32x32 RGB bytes as a PNG file (each row unfiltered)."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(b"\x00" + pixels[r * 3 * SIZE : (r + 1) * 3 * SIZE] for r in range(SIZE))
    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 2, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(
            PNG_SIGNATURE
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b"")
        )


def make_dataset(root, corrupt):
    rng = random.Random(0)
    for n in range(96):
        label = n % 4
        pixels = bytearray(rng.randrange(256) for _ in range(SIZE * SIZE * 3))
        # a faint colour cue per class: something to learn
        for i in range(label % 3, len(pixels), 3):
            pixels[i] //= 2
        write_png(os.path.join(root, f"{label}_{n:03d}.png"), bytes(pixels))
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
