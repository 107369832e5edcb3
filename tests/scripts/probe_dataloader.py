"""A real DataLoader (num_workers=2) whose Dataset hits an undecodable image in __getitem__."""

import io
import sys

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset


class ImageFiles(Dataset):
    def __init__(self):
        png = io.BytesIO()
        Image.new("RGB", (4, 4)).save(png, format="PNG")
        self.blobs = [png.getvalue()] * 8
        self.blobs[5] = b"this is not an image"

    def __len__(self):
        return len(self.blobs)

    def __getitem__(self, index):
        image = Image.open(io.BytesIO(self.blobs[index]))
        return torch.tensor(list(image.getdata()), dtype=torch.float32).mean()


def train(method):
    loader = DataLoader(ImageFiles(), batch_size=1, num_workers=2, multiprocessing_context=method)
    for step, batch in enumerate(loader):
        print("step", step, float(batch), flush=True)


if __name__ == "__main__":
    train(sys.argv[1])
