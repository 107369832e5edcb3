"""Failures inside data code whose arguments must be recorded briefly and safely.

    python sample_args.py {key,stream,collate}

key:     a Dataset indexed by a string key fails; its other parameters hold a token and a tensor.
stream:  an IterableDataset's generator fails on its 3rd line of its 2nd shard.
collate: a collate function fails on a batch of 4 samples.
"""

import sys

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset


class Records(Dataset):
    def __len__(self):
        return 1

    # the instance under another name than `self`: it is still the owner, not the sample
    def __getitem__(records, key, api_token="hf_" + "a1" * 20, weights=torch.ones(3, 2)):
        return {"cat/11": 1}[key]


class Shards(IterableDataset):
    def __iter__(self):
        for shard in ("shard-0.txt", "shard-1.txt"):
            for line_no in range(5):
                if shard == "shard-1.txt" and line_no == 2:
                    raise ValueError("malformed line")
                yield torch.tensor(line_no)


def collate(samples):
    raise RuntimeError("samples of unequal length")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "key":
        Records()["cat/12"]
    elif mode == "stream":
        for _ in DataLoader(Shards(), batch_size=None):
            pass
    else:
        for _ in DataLoader(list(range(12)), batch_size=4, collate_fn=collate):
            pass
