"""Real failures on a CUDA device, for tests/integration/test_gpu.py: `gpu_failures.py MODE`.

hold    hold 1 GiB on the device for 3 s, then exit 0 (NVML sampling, per-process memory)
oom     hold 1 GiB for 2 s (sampled), then ask for twice the device: torch.OutOfMemoryError
nan     a loop under autocast (float16) whose loss overflows to inf, then NaN, printed each step
assert  a cross-entropy whose label is out of range: a device-side assert
hog     hold all but 4 GiB of the device's free memory until stdin closes (another process)
ask     ask for 8 GiB at once: torch.OutOfMemoryError while `hog` holds the device
"""

import sys
import time

import torch

GIB = 2**30
mode = sys.argv[1]
device = torch.device("cuda")

if mode in ("hold", "oom"):
    held = torch.ones(GIB // 4, dtype=torch.float32, device=device)  # 1 GiB, touched
    torch.cuda.synchronize()
    print(f"holding {held.numel() * 4 / GIB:.1f} GiB", flush=True)
    time.sleep(3 if mode == "hold" else 2)
    if mode == "oom":
        total = torch.cuda.get_device_properties(device).total_memory
        more = torch.empty(2 * total, dtype=torch.uint8, device=device)
elif mode == "nan":
    torch.manual_seed(0)
    model = torch.nn.Linear(16, 1).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e4)  # far too high: diverges at once
    x = torch.randn(64, 16, device=device) * 100
    y = torch.randn(64, 1, device=device) * 100
    for step in range(50):
        with torch.autocast("cuda", dtype=torch.float16):
            loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.float().backward()
        optimizer.step()
        print(f"step {step} loss {loss.item():.4f}", flush=True)
elif mode == "assert":
    logits = torch.randn(8, 10, device=device)
    labels = torch.full((8,), 12, dtype=torch.long, device=device)  # 10 classes: 12 is no class
    loss = torch.nn.functional.cross_entropy(logits, labels)
    print(f"loss {loss.item()}", flush=True)  # the assert surfaces at the first synchronisation
elif mode == "hog":
    free, _ = torch.cuda.mem_get_info(device)
    held = torch.empty(free - 4 * GIB, dtype=torch.uint8, device=device)
    torch.cuda.synchronize()
    print(f"holding {held.numel() / GIB:.1f} GiB", flush=True)
    sys.stdin.read()
elif mode == "ask":
    more = torch.empty(8 * GIB, dtype=torch.uint8, device=device)
else:
    sys.exit(f"unknown mode {mode}")
