"""Checkpoints saved by a framework, then the process is killed (SIGKILL).

    python checkpoint_frameworks.py DIR {lightning,transformers,safetensors,keras-weights}

lightning:    3 epochs of 4 steps, ModelCheckpoint after every epoch (keeps them all).
transformers: a tiny BERT trained 6 steps with save_steps=2 and save_total_limit=2 (the oldest
              checkpoint is rotated away).
safetensors:  save_file after every 5 steps, 3 times.
keras-weights: 3 epochs on the torch backend, ModelCheckpoint writing weights after every epoch.
"""

import os
import signal
import sys

import torch


def lightning(out: str) -> None:
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 2)

        def training_step(self, batch, _):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.layer(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = TensorDataset(torch.randn(16, 4), torch.randint(0, 2, (16,)))
    checkpoints = pl.callbacks.ModelCheckpoint(dirpath=out, every_n_epochs=1, save_top_k=-1)
    trainer = pl.Trainer(
        max_epochs=3,
        callbacks=[checkpoints],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Tiny(), DataLoader(data, batch_size=4))


def transformers(out: str) -> None:
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    config = BertConfig(
        vocab_size=32,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        max_position_embeddings=16,
        num_labels=2,
    )
    rows = [
        {"input_ids": torch.randint(0, 32, (8,)), "labels": torch.tensor(i % 2)} for i in range(12)
    ]
    args = TrainingArguments(
        output_dir=out,
        max_steps=6,
        save_steps=2,
        save_total_limit=2,
        per_device_train_batch_size=2,
        report_to=[],
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
    )
    Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=rows).train()


def safetensors(out: str) -> None:
    from safetensors.torch import save_file

    model = torch.nn.Linear(4, 2)
    for step in range(1, 16):
        print(f"step {step}", flush=True)
        if step % 5 == 0:
            save_file(model.state_dict(), os.path.join(out, f"model-{step}.safetensors"))


def keras(out: str) -> None:
    os.environ["KERAS_BACKEND"] = "torch"
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    every_epoch = keras.callbacks.ModelCheckpoint(
        os.path.join(out, "weights-{epoch:02d}.weights.h5"), save_weights_only=True
    )
    x, y = torch.randn(16, 4).numpy(), torch.randn(16, 2).numpy()
    model.fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[every_epoch])


if __name__ == "__main__":
    frameworks = {
        "lightning": lightning,
        "transformers": transformers,
        "safetensors": safetensors,
        "keras-weights": keras,
    }
    frameworks[sys.argv[2]](sys.argv[1])
    os.kill(os.getpid(), signal.SIGKILL)
