"""A tiny Hugging Face Trainer whose samples have different lengths and no padding collator: the
default collator cannot stack them into a batch. Argument: the output folder."""

import sys

import torch
from torch.utils.data import Dataset
from transformers import Trainer, TrainingArguments


class Sentences(Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, index):
        length = 3 + index % 4  # token lists of 3 to 6 ids: a padding collator would even them out
        return {"input_ids": list(range(1, length + 1)), "labels": index % 2}


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.EmbeddingBag(16, 4)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, input_ids, labels=None):
        logits = self.head(self.embed(input_ids))
        return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}


args = TrainingArguments(
    output_dir=sys.argv[1],
    report_to=[],
    num_train_epochs=1,
    per_device_train_batch_size=4,
    save_strategy="no",
    use_cpu=True,
    disable_tqdm=True,
)
Trainer(model=Classifier(), args=args, train_dataset=Sentences()).train()
