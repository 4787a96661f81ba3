"""Your own training loop as what ``descentlab compare --objective`` compares optimizers on.

The loop, the model, the data and their split are this file's: a network predicting the
diabetes data's disease progression (``diabetes.csv``) from 10 measurements, trained on
mini-batches of 32 and scored by its mean squared error. descentlab calls ``train(run)`` once
per trial with the trial's optimizer, schedule, steps and seed, and the split to score:
``"val"``, or ``"test"`` in the refit runs (which train on training + validation rows).

    descentlab compare --objective examples/objective_loop.py:train --optimizers sgd,adam \\
        --steps 100 --seeds 3
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from descentlab import Score

HERE = Path(__file__).resolve().parent


def _splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Training, validation and test rows (60/20/20, a fixed shuffle), standardized with the
    training rows' means and deviations."""
    table = np.loadtxt(HERE / "diabetes.csv", delimiter=",", skiprows=1, dtype=np.float32)
    table = table[np.random.default_rng(0).permutation(len(table))]
    x, y = torch.from_numpy(table[:, :-1]), torch.from_numpy(table[:, -1:])
    a, b = int(0.6 * len(x)), int(0.8 * len(x))
    mx, sx, my, sy = x[:a].mean(0), x[:a].std(0), y[:a].mean(0), y[:a].std(0)
    x, y = (x - mx) / sx, (y - my) / sy
    return {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:])}


def train(run) -> Score:
    data = _splits()
    x, y = data["train"]
    if run.split == "test":  # a refit run: train on the training and validation rows
        x, y = torch.cat([x, data["val"][0]]), torch.cat([y, data["val"][1]])
    x_eval, y_eval = data[run.split]
    torch.manual_seed(run.seed)
    model = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 1))
    optimizer = run.optimizer(model.parameters())  # the trial's, with its hyperparameters
    schedule = run.scheduler(optimizer)
    order = torch.Generator().manual_seed(run.seed)
    start, saved = 0, run.restore()
    if saved is not None:  # a stopped comparison continues this trial where it was
        start, state = saved
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        order.set_state(state["order"])
    for step in range(start + 1, run.steps + 1):
        rows = torch.randint(len(x), (32,), generator=order)
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x[rows]), y[rows]).backward()
        optimizer.step()
        schedule.step()
        if step % run.eval_every == 0:
            with torch.no_grad():
                run.report(step, nn.functional.mse_loss(model(x_eval), y_eval).item())
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "schedule": schedule.state_dict(), "order": order.get_state()}  # fmt: skip
        run.checkpoint(step, state)  # written when due (the comparison's --checkpoint-every)
    with torch.no_grad():
        errors = ((model(x_eval) - y_eval) ** 2).squeeze(1)
    # each test row's squared error: the verdict pairs the optimizers by seed and by row
    return Score(errors.mean().item(), maximize=False, name="mse",
                 examples=errors.numpy() if run.split == "test" else None)  # fmt: skip
