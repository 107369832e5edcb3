"""A small stand-in training loop for the CI-report tests: grows its memory, prints losses, leaks
planted secrets.

Usage: ci_train.py MODE [--token VALUE] where MODE is `nan` (the loss turns NaN, the script still
exits 0), `crash` (a user function raises, exit 1) or `ok` (finishes cleanly). It prints the
token it was given, the value of $CI_TEST_API_TOKEN, a password and an AWS key, the way careless
training scripts do.
"""

import os
import sys
import time

mode = sys.argv[1]
token = sys.argv[sys.argv.index("--token") + 1] if "--token" in sys.argv else "none"
wandb = os.environ.get("CI_TEST_API_TOKEN", "")
print(f"config: token={token} password=hunter2hunter2 wandb={wandb}", flush=True)
print("aws: AKIAABCDEFGHIJKLMNOP", flush=True)
held = []


def load_batch(step):
    if mode == "crash" and step == 6:
        raise RuntimeError(f"could not fetch shard with Authorization: Bearer {token}")
    held.append(bytearray(4 << 20))  # memory that grows, for the chart


epochs, steps = 2, 6
for epoch in range(epochs):
    for step in range(steps):
        global_step = epoch * steps + step
        load_batch(global_step)
        loss = 2.0 / (global_step + 1)
        if mode == "nan" and global_step >= 8:
            loss = float("nan")
        print(f"epoch {epoch + 1}/{epochs} step {step + 1}/{steps} loss={loss:.4f}", flush=True)
        time.sleep(0.06)
print("Training finished.", flush=True)
