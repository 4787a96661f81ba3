"""A problem of your own for `descentlab compare`: your model, your CSV file.

diabetes.csv holds the diabetes data of Efron et al., "Least angle regression" (2004), as
scikit-learn ships it: 442 patients, 10 baseline measurements (age, sex, body-mass index,
blood pressure, six blood serum values) and, in the last column, a measure of disease
progression one year later.

    descentlab compare --problem examples/diabetes.py:make_problem --optimizers sgd,adam

The function returns a descentlab Problem: a model factory, the data splits, a loss and a
metric. Options become keyword arguments: --problem-option hidden=64.
"""

from pathlib import Path

import numpy as np
import torch
from torch import nn

from descentlab.problems.problem import Problem

HERE = Path(__file__).parent


class ProgressionNet(nn.Module):
    """A small MLP: 10 measurements -> predicted progression (standardized)."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_problem(csv: str = str(HERE / "diabetes.csv"), hidden: int = 32) -> Problem:
    table = np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.float32)
    x, y = table[:, :-1], table[:, -1:]
    # A fixed test split: the last 20% of the rows (the file's order is arbitrary).
    n_test = len(table) // 5
    x_train, y_train, x_test, y_test = x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:]
    # Standardize with the training rows' statistics only.
    mx, sx = x_train.mean(0), x_train.std(0)
    my, sy = y_train.mean(0), y_train.std(0)
    return Problem(
        name="diabetes",
        model=lambda: ProgressionNet(hidden),
        data={
            "x_train": (x_train - mx) / sx,
            "y_train": (y_train - my) / sy,
            "x_test": (x_test - mx) / sx,
            "y_test": (y_test - my) / sy,
        },
        loss="mse",
        metric="rmse",  # in standard deviations of the progression measure
    )
