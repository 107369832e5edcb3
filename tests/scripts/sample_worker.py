"""A DataLoader whose Dataset reads image files by index; the file at one index is not an image.

    python sample_worker.py DIR BAD_INDEX {fork,spawn,main}

`main` loads in the main process (num_workers=0); `fork` in two workers; `spawn` in one (a spawned
worker imports torch again, about two seconds of CPU each).
"""

import sys
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

COUNT = 24


class ImageFolder(Dataset):
    def __init__(self, root):
        self.paths = sorted(Path(root).glob("*.png"))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        path = self.paths[index]
        image = Image.open(path).convert("L")
        return torch.tensor(list(image.getdata()), dtype=torch.float32).mean()


def make_files(root: Path, bad: int) -> None:
    root.mkdir(exist_ok=True)
    for i in range(COUNT):
        path = root / f"x_{i:04d}.png"
        if i == bad:
            path.write_bytes(b"this is not an image")
        else:
            Image.new("L", (2, 2), i).save(path)


def main() -> None:
    root, bad, method = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    make_files(root, bad)
    workers = {"main": 0, "fork": 2, "spawn": 1}[method]
    loader = DataLoader(
        ImageFolder(root),
        batch_size=4,
        num_workers=workers,
        multiprocessing_context=None if workers == 0 else method,
    )
    for step, batch in enumerate(loader):
        print(f"step {step} mean {float(batch.mean()):.2f}", flush=True)


if __name__ == "__main__":
    main()
