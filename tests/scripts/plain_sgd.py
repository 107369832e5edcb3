"""A written-out SGD step for the test programs: `SGD(params, lr)` with `zero_grad`, `step` and
`state_dict`, as torch.optim.SGD without momentum.

Why not torch.optim: building the first optimizer imports torch._dynamo (torch/_compile.py), about
1.2 s on the CI machine, a third of a small test run; the programs stay real training loops (a
forward, a backward, a step) at two thirds of the cost. The demo and the Lightning, Hugging Face and
Keras programs keep their frameworks' optimizers.
"""

import torch


class SGD:
    def __init__(self, params, lr: float) -> None:
        self.params = list(params)
        self.lr = lr

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for param in self.params:
            if param.grad is not None:
                param.add_(param.grad, alpha=-self.lr)

    def state_dict(self) -> dict:
        return {"lr": self.lr}
