"""A Lightning module whose optimizer ``descentlab compare --lightning`` chooses.

A small network tells two interleaved spirals apart (2,000 points generated here with a fixed
seed: 1,200 for training, 400 for validation, 400 for the test); the module logs its
validation accuracy as ``val_acc``. descentlab supplies ``configure_optimizers`` (the
trial's optimizer and schedule) and trains it with a ``lightning.Trainer`` of the trial's
length.

    descentlab compare --lightning examples/lightning_module.py:make --metric val_acc \\
        --optimizers sgd,adam --steps 100 --lr-trials 3 --no-refine --seeds 2
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def _spirals(n: int = 2000) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 2, (n,), generator=g)
    t = 3.0 * torch.rand(n, generator=g) + 0.5
    angle = t * 3.1416 + label * 3.1416
    x = torch.stack([t * torch.cos(angle), t * torch.sin(angle)], 1)
    return TensorDataset(x + 0.15 * torch.randn(n, 2, generator=g), label)


class Spirals(L.LightningModule):
    """Trained on the training points (``split="val"``: validated on the validation ones) or
    on both (``split="test"``, the refit runs: validated on the test points)."""

    def __init__(self, split: str) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                                 nn.Linear(64, 2))  # fmt: skip
        data = _spirals()
        parts = torch.utils.data.random_split(
            data, [1200, 400, 400], generator=torch.Generator().manual_seed(1)
        )
        self.train_data = parts[0] if split == "val" else parts[0] + parts[1]
        self.eval_data = parts[1] if split == "val" else parts[2]

    def training_step(self, batch, i):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_acc", (self.net(x).argmax(-1) == y).float().mean())

    def train_dataloader(self):
        return DataLoader(self.train_data, batch_size=64, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.eval_data, batch_size=400)


def make(split: str) -> Spirals:
    return Spirals(split)
