"""Evaluation in slices sized by the model's activations: a conv net in slices of a few dozen
examples, a small MLP in one pass as before, the same metrics to float rounding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from descentlab.engine import evaluation, splits
from descentlab.problems import models


class _Pair(nn.Module):
    """A model whose layers return tuples (an LSTM's output and state)."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(4, 64, batch_first=True)
        self.head = nn.Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class _NeedsTwo(nn.Module):
    """A model that refuses a batch of one example: the old slices are kept."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] < 2:
            raise RuntimeError("needs two examples")
        return self.lin(x)


def _resnet20() -> nn.Module:
    return models.build("resnet20", input_shape=(1, 32, 32), n_outputs=10)


def _mlp() -> nn.Module:
    return models.build("digits_mlp", input_shape=(40,), n_outputs=10)


@pytest.mark.parametrize(
    ("make", "shape", "n", "expected"),
    [
        (_mlp, (40,), 3000, 4096),  # 128 floats an example: 3,000 in one pass as before
        (_resnet20, (1, 32, 32), 300, 32),  # 16 channels x 32 x 32 floats: 64 KiB
        (_Pair, (12, 4), 500, 682),  # the LSTM's (1, 12, 64) output: 3 KiB
        (_NeedsTwo, (8,), 100, splits.EVAL_CHUNK),
        (_resnet20, (1, 32, 32), evaluation.EVAL_SLICE_MIN, splits.EVAL_CHUNK),  # one slice anyway
    ],
)
def test_slice_size_follows_the_largest_activation(make, shape, n, expected):
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(n, *shape)
    assert evaluation.eval_slice(model, x) == expected
    assert evaluation.eval_slice(model, x) == expected  # measured once, then remembered


@pytest.mark.parametrize(
    ("make", "shape", "n", "classes"),
    [(_resnet20, (1, 32, 32), 150, 10), (_Pair, (12, 4), 5000, 3), (_mlp, (40,), 700, 10)],
)
def test_sliced_evaluation_equals_one_pass(monkeypatch, make, shape, n, classes):
    torch.manual_seed(1)
    model = make()
    x, y = torch.randn(n, *shape), torch.randint(0, classes, (n,))
    loss = nn.CrossEntropyLoss()
    sliced = evaluation.evaluate(model, x, y, loss, classification=True)
    monkeypatch.setattr(evaluation, "eval_slice", lambda model, x: splits.EVAL_CHUNK)
    whole = evaluation.evaluate(model, x, y, loss, classification=True)
    assert sliced["accuracy"] == whole["accuracy"]
    assert sliced["loss"] == pytest.approx(whole["loss"], rel=1e-6)
    assert model.training  # its mode is restored


def test_measuring_the_slice_moves_no_statistic_and_draws_no_random_number():
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.Dropout(0.5)).train()
    stats = model[1].running_mean.clone()
    x = torch.randn(100, 1, 16, 16)
    rng = torch.random.get_rng_state()
    assert evaluation.eval_slice(model, x) > evaluation.EVAL_SLICE_MIN
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert torch.equal(model[1].running_mean, stats) and model.training
