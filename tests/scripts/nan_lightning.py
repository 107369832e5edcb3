"""A Lightning run whose learning rate is far too high: the loss on the progress bar overflows to
inf, then NaN, within a few epochs; left alone it would train 200 epochs (~20 s). Lightning's
OnExceptionCheckpoint saves a checkpoint to argv[1] when the run is interrupted."""

import sys
import time

import lightning as L
import torch
from lightning.pytorch.callbacks import OnExceptionCheckpoint, TQDMProgressBar
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
        self.log("loss", loss, prog_bar=True)
        time.sleep(0.01)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.02)


trainer = L.Trainer(
    max_epochs=200,
    accelerator="cpu",
    logger=False,
    default_root_dir=sys.argv[1],
    enable_model_summary=False,
    callbacks=[
        OnExceptionCheckpoint(dirpath=sys.argv[1], filename="interrupted"),
        # tqdm redraws its bar live into a pipe too (rich's bar draws off a terminal only at the
        # end)
        TQDMProgressBar(refresh_rate=1),
    ],
)
trainer.fit(Regression(), DataLoader(TensorDataset(x, y), batch_size=32))
