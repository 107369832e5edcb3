"""A tiny Hugging Face Trainer run whose model raises at its third step (an uncaught exception),
reporting to TensorBoard and W&B (offline), with trainwatch's callback. Argument: the output
folder."""

import os
import sys

import torch
from torch.utils.data import Dataset
from transformers import Trainer, TrainingArguments

from trainwatch.integrations.huggingface import TrainwatchCallback


class Pairs(Dataset):
    def __len__(self):
        return 32

    def __getitem__(self, index):
        return {"x": torch.randn(4), "labels": torch.randn(1)}


class Regression(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(4, 1)
        self.calls = 0

    def forward(self, x, labels=None):
        self.calls += 1
        if self.calls == 3:
            x = x[:, :3]  # the bug: a batch cut to the wrong width
        prediction = self.net(x)
        return {"loss": torch.nn.functional.mse_loss(prediction, labels), "logits": prediction}


out = sys.argv[1]
os.environ["TENSORBOARD_LOGGING_DIR"] = f"{out}/tb"
args = TrainingArguments(
    output_dir=out,
    report_to=["tensorboard", "wandb"],
    num_train_epochs=2,
    per_device_train_batch_size=8,
    logging_steps=1,
    save_strategy="no",
    use_cpu=True,
    disable_tqdm=True,
)
Trainer(
    model=Regression(), args=args, train_dataset=Pairs(), callbacks=[TrainwatchCallback()]
).train()
