"""A training loop that saves a checkpoint every 10 steps with torch.save, then is killed.

    python checkpoint_run.py DIR {killed,mid-save,none,hang,nan,missed}

killed:   saves at steps 10, 20 and 30, trains on for at least 0.5 s, then is killed (SIGKILL).
mid-save: saves at steps 10 and 20; the save at step 30 is killed while it writes its file.
none:     saves nothing, and is killed after step 30.
hang:     saves at steps 10, 20 and 30, then waits forever on a lock it holds.
nan:      saves at steps 10, 20 and 30, its weights gone NaN from step 15 on; exits 0.
missed:   saves each checkpoint in a folder of its own and makes only the first: the saves at
          steps 20 and 30 fail, are caught and warned of; it finishes its 30 steps, exits 0.
"""

import os
import signal
import sys
import threading
import time

import torch

from plain_sgd import SGD


class KilledWhilePickled:
    """Pickling this kills the process: a save cut off midway, as by a preemption or an OOM kill."""

    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(30)


def step(model, optimizer) -> float:
    x, y = torch.randn(32, 8), torch.randint(0, 2, (32,))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def main() -> None:
    out, mode = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 2)
    optimizer = SGD(model.parameters(), lr=0.1)
    for n in range(1, 31):
        if mode == "nan" and n == 15:
            with torch.no_grad():
                model.weight[0, 0] = float("nan")  # as a blown-up update leaves it
        loss = step(model, optimizer)
        where = f"step {n}/30" if mode == "missed" else f"epoch 1/3 step {n}/100"
        print(f"{where} loss {loss:.4f}", flush=True)
        if mode == "nan" and n == 15:
            time.sleep(0.5)  # a step's time: the line is read before the next save begins
        if n % 10 == 0 and mode != "none":
            state = {"epoch": 1, "step": n, "model": model.state_dict()}
            state["optimizer"] = optimizer.state_dict()
            if mode == "mid-save" and n == 30:
                state["cut"] = KilledWhilePickled()
            if mode != "missed":
                torch.save(state, os.path.join(out, f"ckpt_step{n}.pt"))
                continue
            if n == 10:
                os.mkdir(os.path.join(out, "step10"))
            try:
                torch.save(state, os.path.join(out, f"step{n}", "model.pt"))
            except RuntimeError as e:  # the folder was never made
                print(f"WARNING: could not save checkpoint: {e}", flush=True)
    if mode in ("nan", "missed"):
        return
    if mode == "hang":
        lock = threading.Lock()
        lock.acquire()
        lock.acquire()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # work that no checkpoint holds
        step(model, optimizer)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main()
