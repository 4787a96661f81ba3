"""The wrappers' base optimizer takes fixed and tuned hyperparameters in a comparison
(``--hyper sam.momentum=0.9``, ``--tune sam.momentum=...``): accepted before any training when
the base optimizer takes them, refused before any training (naming them) when it does not."""

from __future__ import annotations

import pytest
import torch

from descentlab.engine import optimizing
from descentlab.experiments.compare import CompareSpec, compare
from descentlab.experiments.compare.choices import OptimizerChoice, accepts, has_hyper
from descentlab.store import Store, store_path_of


def _spec(choice: OptimizerChoice, **kw):
    return CompareSpec(
        problem="moons", problem_options={"n_samples": 120}, model="mlp", optimizers=[choice],
        steps=60, lrs_per_optimizer=2, refine=False, seeds=1, batch_size=32,
        target_accuracy=None, landscapes=(), **kw,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [("sam", "momentum", 0.9), ("lookahead", "momentum", 0.5), ("lookahead", "eps", 1e-6)],
)
def test_make_optimizer_passes_base_hyperparameters(name, key, value):
    p = [torch.nn.Parameter(torch.zeros(3))]
    base = {"base": "sgd"} if key == "momentum" else {}  # Lookahead's default base is Adam
    opt = optimizing.make_optimizer(name, p, {"lr": 0.1, key: value, **base})
    assert opt.param_groups[0][key] == value


@pytest.mark.parametrize("name", ["sam", "lookahead"])
def test_make_optimizer_refuses_what_neither_wrapper_nor_base_takes(name):
    p = [torch.nn.Parameter(torch.zeros(3))]
    with pytest.raises(ValueError, match=r"momentu\b.*" + name):
        optimizing.make_optimizer(name, p, {"lr": 0.1, "momentu": 0.9})
    assert p[0].grad is None and torch.equal(p[0], torch.zeros(3))


def test_compare_runs_a_wrapper_with_a_fixed_base_hyperparameter(tmp_path):
    choice = OptimizerChoice("sam", "sam", hyper={"momentum": 0.9}, lr_range=(0.05, 0.5))
    result = compare(_spec(choice), tmp_path, workers=1, progress=False)
    (r,) = result.results
    assert result.complete and r.curve_runs and all(i is not None for i in r.curve_runs)
    with Store(store_path_of(result.run_dir)) as store:
        configs = [store.get_run(i).config for i in r.curve_runs + r.refit_runs]
    assert all(c["hyper"]["momentum"] == 0.9 for c in configs)


def test_a_wrapper_has_its_base_optimizers_hyperparameters():
    plain = OptimizerChoice("sam", "sam")  # base SGD: takes momentum, has none (0)
    heavy = OptimizerChoice("samm", "sam", hyper={"base": "momentum"})
    assert accepts(plain, "momentum") and accepts(heavy, "momentum")
    assert not has_hyper(plain, "momentum") and has_hyper(heavy, "momentum")
    assert not accepts(plain, "momentu")
    assert has_hyper(OptimizerChoice("la", "lookahead", hyper={"base": "adam"}), "betas")


def test_a_misspelt_base_hyperparameter_is_refused_before_any_training(tmp_path):
    choice = OptimizerChoice("sam", "sam", hyper={"momentu": 0.9})
    with pytest.raises(ValueError, match="momentu"):
        compare(_spec(choice), tmp_path, workers=1, progress=False)
    assert not any(tmp_path.iterdir())
