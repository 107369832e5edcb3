"""Under torchrun --max-restarts: rank 1 raises in its second epoch of the first attempt only (a
flag file beside the script's working directory says it already did), and the restart completes.
No process group: the restart is torchrun's, whatever gloo does with a restarted rendezvous."""

import os
import time

flag = os.path.join(os.getcwd(), "failed-once.flag")
rank = int(os.environ["RANK"])
for epoch in range(1, 4):
    time.sleep(0.2)
    if rank == 1 and epoch == 2 and not os.path.exists(flag):
        open(flag, "w").close()
        raise ValueError("bad value in epoch 2")
    print(f"rank {rank} epoch {epoch}/3 done", flush=True)
print(f"rank {rank} training finished", flush=True)
