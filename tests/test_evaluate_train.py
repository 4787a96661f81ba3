"""``RunConfig(evaluate_train=False)``: evaluations measure the validation split only (a
comparison's pruning rung runs, scored on validation, skip the training split's cost)."""

from __future__ import annotations

import pytest

from descentlab.engine import evaluation
from descentlab.engine.config import RunConfig
from descentlab.engine.multirun import train_many
from descentlab.engine.run import train

BASE = RunConfig(problem="moons", problem_options={"n_samples": 200}, model="mlp",
                 model_options={"hidden": 8}, optimizer="adam", batch_size=32, steps=12,
                 eval_every=6, evaluate_test=False)  # fmt: skip


def _count_train_evaluations(monkeypatch):
    sizes = []
    real = evaluation.evaluate

    def counted(model, x, y, *args, **kwargs):
        sizes.append(len(x))
        return real(model, x, y, *args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate", counted)
    return sizes


@pytest.mark.parametrize("mode", ["alone", "vmap"])
def test_validation_only_evaluations_measure_no_training_split(mode, monkeypatch):
    sizes = _count_train_evaluations(monkeypatch)
    cfg = BASE.replace(evaluate_train=False)
    if mode == "alone":
        runs = [train(cfg, progress=False)]
    else:
        runs = train_many(cfg, overrides=[{"seed": s} for s in range(3)], mode="vmap",
                          progress=False)  # fmt: skip
    n_train = 160  # 200 examples less the validation fifth
    assert sizes and n_train not in sizes  # the training split is never evaluated
    for r in runs:
        assert r.status == "completed"
        names = set(r.metrics)
        assert "val/loss" in names and "val/accuracy" in names
        assert not {"train/loss", "train/accuracy"} & names
        assert "val/accuracy" in r.summary and "train/loss" not in r.summary
    # the same run evaluating both splits has the same validation numbers
    both = train(BASE.replace(seed=runs[0].config.seed), progress=False)
    assert both.summary["val/loss"] == pytest.approx(runs[0].summary["val/loss"], rel=1e-5)
    assert "train/loss" in both.summary


def test_evaluate_train_is_left_out_of_records_at_its_default():
    # runs recorded before the field existed are found again by their configs
    assert "evaluate_train" not in BASE.to_dict()
    assert BASE.replace(evaluate_train=False).to_dict()["evaluate_train"] is False


def test_a_schedule_watching_a_training_metric_needs_the_training_split():
    cfg = BASE.replace(evaluate_train=False,
                       schedule={"lr": "reduce_on_plateau(monitor='train/loss')"})  # fmt: skip
    with pytest.raises(ValueError, match="evaluate_train=False leaves no train/ metric"):
        cfg.validate()
