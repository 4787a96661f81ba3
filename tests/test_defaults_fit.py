"""Defaults that fit the data: the batch size follows the training set, and optimizers that
estimate their own step size run at their defaults."""

from __future__ import annotations

import warnings

import pytest

from descentlab.cli import main
from descentlab.experiments.compare import CompareSpec, compare
from descentlab.experiments.compare.choices import parse_optimizer
from descentlab.experiments.compare.running import _resolve
from descentlab.experiments.kinds import kind_of

WINE = """
import torch
from sklearn.datasets import load_wine
from descentlab.problems.problem import Problem

def make_problem():
    x, y = load_wine(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = torch.tensor(x, dtype=torch.float32)[order], torch.tensor(y)[order]
    n = len(y) * 4 // 5
    return Problem(name="wine", model=lambda: torch.nn.Linear(13, 3),
                   data={"x_train": x[:n], "y_train": y[:n], "x_test": x[n:], "y_test": y[n:]})
"""


@pytest.mark.slow
def test_the_wine_data_compare_on_defaults_with_a_batch_that_fits(tmp_path, capsys):
    path = tmp_path / "wine.py"
    path.write_text(WINE)
    argv = ["compare", "--problem", f"{path}:make_problem", "--optimizers", "sgd",
            "--steps", "8", "--budget", "2", "--seeds", "2", "--workers", "1", "--no-report",
            "--runs-dir", str(tmp_path / "runs"), "--no-progress"]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(argv) == 0
    said = [str(w.message) for w in caught if "batch size" in str(w.message)]
    # 178 rows: 142 to train and validate, 113 after the validation split; 113 // 4 = 28
    assert said == [
        "descentlab: batch size 28 (the default min(128, n_train // 4) of 113 training "
        "examples; --batch-size sets another)"
    ]


def test_a_default_comparison_keeps_its_batch_and_its_identity():
    spec = CompareSpec(problem="moons", steps=10)
    auto, *_ = _resolve(spec, None, None, 1, kind_of(spec, None), None)
    given = CompareSpec(problem="moons", steps=10, batch_size=128).plan()
    assert auto.spec.batch_size == 128
    assert auto.run_name == given.run_name and auto.record == given.record


def test_learning_rate_free_optimizers_keep_their_defaults_unless_given_a_range():
    c = parse_optimizer("pytorch_optimizer.Prodigy")
    assert (c.fixed_lr, c.lr_free, c.default_lr()) == (True, True, 1.0)
    assert not parse_optimizer("pytorch_optimizer.Lion").lr_free
    spec = CompareSpec(optimizers=["pytorch_optimizer.DAdaptAdam"],
                       lr_ranges={"pytorch_optimizer.DAdaptAdam": (0.1, 10.0)})  # fmt: skip
    (tuned,) = spec.choices()
    assert (tuned.fixed_lr, tuned.lr_free) == (False, False)


@pytest.mark.slow
def test_the_table_says_a_learning_rate_free_optimizer_ran_at_its_default(tmp_path):
    spec = CompareSpec(problem="moons", problem_options={"n_samples": 200},
                       optimizers=["sgd", "pytorch_optimizer.Prodigy"], steps=10, seeds=2,
                       lrs_per_optimizer=2, landscapes=())  # fmt: skip
    result = compare(spec, tmp_path, workers=1, progress=False)
    row = next(line for line in result.table().splitlines() if "Prodigy" in line)
    assert "1 (default, lr-free)" in row
