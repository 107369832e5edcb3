"""A prefetch thread fills a queue until one record lacks the field it reads (a KeyError that ends
the thread); the loop then waits on the queue for a batch that never comes."""

import queue
import threading

batches = queue.Queue(maxsize=4)


def prefetch():
    for i in range(1000):
        record = {"image": [i] * 8, "label": i % 2} if i != 12 else {"img": [i] * 8, "label": 0}
        batches.put((record["image"], record["label"]))


threading.Thread(target=prefetch, name="prefetch", daemon=True).start()
for step in range(200):
    image, label = batches.get()
    print(f"step {step} loss {1.0 / (step + 1):.4f}", flush=True)
