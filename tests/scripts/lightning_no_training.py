"""A Lightning fit left with `limit_train_batches=0` (a debugging setting): it trains nothing and
prints nothing about it, though its sanity check takes two validation batches first; then the
program saves the untrained model and exits 0. Argument: the output folder."""

import sys

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
x = torch.randn(128, 8)
y = (x[:, :4].sum(1) > 0).long()


class Classifier(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(8, 2)

    def training_step(self, batch, batch_idx):
        inputs, targets = batch
        return torch.nn.functional.cross_entropy(self.layer(inputs), targets)

    def validation_step(self, batch, batch_idx):
        inputs, targets = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.layer(inputs), targets))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


trainer = L.Trainer(
    max_epochs=3,
    accelerator="cpu",
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    default_root_dir=sys.argv[1],
    limit_train_batches=0,
)
model = Classifier()
train = DataLoader(TensorDataset(x[:96], y[:96]), batch_size=16, shuffle=True)
val = DataLoader(TensorDataset(x[96:], y[96:]), batch_size=16)
trainer.fit(model, train, val)
torch.save(model.state_dict(), f"{sys.argv[1]}/model.pt")
print(f"saved the model at global_step={trainer.global_step}")
