"""A Lightning run whose learning rate is far too high, logging its loss per step and per epoch on
the progress bar (`train_loss_step=nan`, `train_loss_epoch`). Argument: the output folder; a second
argument `rich` draws Lightning's rich bar instead of its tqdm one, `callback` draws no bar (no loss
is printed) and stops the fit with trainwatch's own callback at the first non-finite loss."""

import sys

import lightning as L
import torch
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
x = torch.randn(256, 8) * 10
y = x @ torch.randn(8, 1) * 10


class Regression(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(8, 1)

    def training_step(self, batch, batch_idx):
        inputs, targets = batch
        loss = torch.nn.functional.mse_loss(self.layer(inputs), targets)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


mode = sys.argv[2] if sys.argv[2:] else "tqdm"
if mode == "callback":
    from trainwatch.integrations.lightning import TrainwatchCallback

    callbacks = [TrainwatchCallback(stop_on_nan=True, trackers=(), show="never")]
else:
    callbacks = [RichProgressBar() if mode == "rich" else TQDMProgressBar(refresh_rate=1)]
trainer = L.Trainer(
    max_epochs=6,
    accelerator="cpu",
    logger=False,
    default_root_dir=sys.argv[1],
    enable_checkpointing=False,
    enable_model_summary=False,
    enable_progress_bar=mode != "callback",
    callbacks=callbacks,
)
trainer.fit(Regression(), DataLoader(TensorDataset(x, y), batch_size=32))
