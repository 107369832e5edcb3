"""A tiny Lightning fit whose loss turns NaN at epoch 2, batch 3, with TensorBoard and W&B
(offline) loggers and trainwatch's callback (which stops the fit at the NaN). Argument: the
output folder."""

import sys

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch.utils.data import DataLoader, TensorDataset

from trainwatch.integrations.lightning import TrainwatchCallback


class Regression(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(4, 1)

    def training_step(self, batch, index):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        if self.current_epoch == 1 and index == 2:
            loss = loss * float("nan")  # the bug: a NaN in the loss
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


out = sys.argv[1]
torch.manual_seed(0)
data = DataLoader(TensorDataset(torch.randn(32, 4), torch.randn(32, 1)), batch_size=8)
callback = TrainwatchCallback(stop_on_nan=True)
trainer = L.Trainer(
    max_epochs=3,
    callbacks=[callback],
    logger=[
        TensorBoardLogger(out, name="tb"),
        WandbLogger(project="t", save_dir=out, offline=True),
    ],
    enable_progress_bar=False,
    enable_model_summary=False,
    enable_checkpointing=False,
)
trainer.fit(Regression(), data)
print("stopped after step", trainer.global_step, "verdict", callback.diagnosis.verdict.subtype)
