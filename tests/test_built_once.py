"""One trial builds its optimizer once and checks its hyperparameters once.

A trial run by the runner (in the main process, one worker) is spied on: the optimizer class is
constructed once, and its ``lr`` passes through the declared constraint once (when the
optimizer is built; a param group with the defaults' values and the first step with the
values already checked are not checked again). A bad value is still refused with its one line.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from descentlab import optim
from descentlab.engine.config import RunConfig
from descentlab.experiments.runner import TrialRunner
from descentlab.experiments.trial import DataSource, Trial
from descentlab.optim import hyperspec
from descentlab.optim.optimizer import Optimizer


def _spied_trial(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, hyper: dict) -> tuple[int, int]:
    """(optimizers built, checks of lr) while one runner trial of SGD trains 5 steps."""
    built, checked = [0], [0]
    real_init, real_check = Optimizer.__init__, hyperspec.Real.check

    def init(self: Any, *args: Any, **kw: Any) -> None:
        built[0] += 1
        real_init(self, *args, **kw)

    def check(self: Any, name: str, value: Any, rule: str) -> None:
        checked[0] += name == "lr"
        real_check(self, name, value, rule)

    monkeypatch.setattr(Optimizer, "__init__", init)
    monkeypatch.setattr(hyperspec.Real, "check", check)
    cfg = RunConfig(problem="moons", model="logistic", optimizer="sgd", hyper=hyper,
                    steps=5, evaluate_test=False, name="tune/sgd")  # fmt: skip
    with TrialRunner(
        tmp_path / "lab.sqlite", DataSource("moons", {"n_samples": 100}), workers=1
    ) as runner:
        runner.submit(Trial("tune", "sgd", cfg, "holdout"))
        assert runner.next_outcome().status == "completed"
    return built[0], checked[0]


@pytest.mark.parametrize("hyper", [{"lr": 0.5}, {"lr": 0.5, "momentum": 0.9}])
def test_a_trial_builds_its_optimizer_once_and_checks_its_lr_once(monkeypatch, tmp_path, hyper):
    assert _spied_trial(monkeypatch, tmp_path, hyper) == (1, 1)


@pytest.mark.parametrize(
    ("groups", "words"),
    [
        ([{"params": [torch.zeros(2)], "lr": -1.0}], r"param group 0: .*lr must be"),
        ([{"params": [torch.zeros(2)]}, {"params": [torch.zeros(2)], "lr": float("nan")}],
         r"param group 1: .*lr must be"),
    ],
)  # fmt: skip
def test_a_group_unlike_the_defaults_is_still_checked_when_added(groups, words):
    with pytest.raises(ValueError, match=words):
        optim.SGD(groups, lr=0.1)


def test_a_value_changed_after_construction_is_checked_at_the_next_step():
    p = torch.zeros(2, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    opt.param_groups[0]["lr"] = -1.0
    p.grad = torch.ones(2)
    with pytest.raises(ValueError, match=r"param group 0: .*lr must be"):
        opt.step()
