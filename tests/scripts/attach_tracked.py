"""A short run logged to W&B (offline) or TensorBoard, as the argument says, that fails at step 3
with a KeyError in its data: `trainwatch run --attach-to ...` then attaches the verdict."""

import sys

tracker = sys.argv[1]
if tracker == "wandb":
    import wandb

    run = wandb.init(project="attach-test", mode="offline")
    log = lambda step, loss: run.log({"loss": loss}, step=step)  # noqa: E731
else:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter("runs/exp1")
    log = lambda step, loss: (writer.add_scalar("loss", loss, step), writer.flush())  # noqa: E731

samples = [{"label": 1}, {"label": 0}, {"labels": 1}]
for step, sample in enumerate(samples, 1):
    loss = 1.0 / step
    log(step, loss)
    print(f"step {step}/10 loss {loss}", flush=True)
    sample["label"]  # the third sample lacks the key
