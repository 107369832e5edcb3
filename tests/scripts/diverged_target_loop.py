"""A Q-learning loop whose targets come from its own network, detached (a real run's DQN): rewards
that grow every step blow the weights up, the targets computed from them turn NaN with the loss,
and the run goes on to its end, exit 0. No input of its own holds NaN.

    python diverged_target_loop.py
"""

import torch

torch.manual_seed(0)
q = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
optimizer = torch.optim.SGD(q.parameters(), lr=0.1)
for step in range(40):
    s, s2 = torch.randn(32, 4), torch.randn(32, 4)
    a = torch.randint(0, 2, (32,))
    r = torch.full((32,), 1.2**step)  # reward shaping that grows with time
    q_sa = q(s).gather(1, a[:, None]).squeeze(1)
    target = r + 0.99 * q(s2).max(1).values.detach()
    loss = ((q_sa - target) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(f"step {step + 1}/40 loss {loss.item():.4g}", flush=True)
print("training done")
