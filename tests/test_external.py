"""Optimizers from outside descentlab in a comparison (descentlab.experiments.external)."""

from __future__ import annotations

import pickle
import re

import pytest
import pytorch_optimizer
import schedulefree
import torch
from _models import tiny_compare

from descentlab.cli import main
from descentlab.engine.config import RunConfig
from descentlab.engine.run import evaluate, train
from descentlab.experiments.compare import CompareSpec, OptimizerChoice, compare, parse_optimizer
from descentlab.experiments.external import ImportedOptimizer, PythonOptimizer
from descentlab.experiments.trial import MonitoredOptimizer
from descentlab.problems import data as datasets
from descentlab.store import Store

# the coarse grid only: the search has its own tests
TINY = tiny_compare(steps=40, tune_steps=20, lrs_per_optimizer=2, seeds=1, max_extend=0)


def test_import_paths_labels_and_ranges():
    sgd = parse_optimizer("torch.optim.SGD")
    assert (sgd.label, repr(sgd.optimizer), sgd.lr_range) == (
        "torch.SGD",
        "import:torch.optim.SGD",
        (1e-2, 1.0),  # descentlab's SGD range: torch's SGD is the same method
    )
    lion = parse_optimizer("lion=pytorch_optimizer.Lion")
    assert lion.label == "lion" and lion.optimizer.target is pytorch_optimizer.Lion
    colon = parse_optimizer("schedulefree:AdamWScheduleFree")
    assert colon.optimizer.target is schedulefree.AdamWScheduleFree
    cls = parse_optimizer(torch.optim.Adam)
    assert cls.label == "torch.Adam" and isinstance(cls.optimizer, PythonOptimizer)
    # Stored by description and rebuilt from it: the store finds the same trials again.
    for c in (sgd, lion, cls):
        back = OptimizerChoice.from_dict(c.to_dict())
        assert back == c and repr(back.optimizer) == repr(c.optimizer)
    # Worker processes receive an imported optimizer by path, a monitored one too.
    opt = pickle.loads(pickle.dumps(MonitoredOptimizer(lion.optimizer, 5)))
    assert repr(opt) == "monitored(import:pytorch_optimizer.Lion, every=5)"
    assert not opt.can_monitor


@pytest.mark.parametrize(
    ("optimizer", "message"),
    [
        ("nosuchpkg.Opt", "cannot import 'nosuchpkg'"),
        ("torch.optim.NoSuch", "module 'torch.optim' has no attribute 'NoSuch'"),
        ("torch.nn.Linear", "not a torch.optim.Optimizer subclass"),
        ("math.pi", "not an optimizer class or a factory"),
        ("math.sqrt", "takes no 'lr'"),
    ],
)
def test_bad_optimizer_fails_before_training(tmp_path, optimizer, message):
    spec = CompareSpec(**{**TINY, "optimizers": [optimizer]})
    with pytest.raises(ValueError, match=message):
        compare(spec, tmp_path, workers=1, progress=False)
    assert not any(tmp_path.iterdir())  # nothing was written


def test_a_factory_must_return_an_optimizer(tmp_path):
    spec = CompareSpec(**{**TINY, "optimizers": [("f", lambda params, lr: list(params))]})
    with pytest.raises(ValueError, match=re.escape("returned a list, not a torch.optim.Optimizer")):
        spec.validate()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimizer", "nosuchpkg.Opt"], "cannot import 'nosuchpkg'"),
        # pytorch-optimizer's Lion takes **kwargs: an undeclared name is still refused.
        (["--optimizer", "lion=pytorch_optimizer.Lion", "--hyper", "lion.warmup=3"],
         "'lion' (import:pytorch_optimizer.Lion) takes no 'warmup'; its hyperparameters: lr,"),
        (["--optimizer", "sf=schedulefree.AdamWScheduleFree", "--hyper", "sf.betas=3"],
         "'sf' (import:schedulefree.AdamWScheduleFree) fails on a first step with {'betas': 3"),
    ],
)  # fmt: skip
def test_cli_bad_optimizer_is_one_line(tmp_path, capsys, argv, message):
    code = main(["compare", "--runs-dir", str(tmp_path), "--landscapes", "none", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_torch_adam_through_compare_matches_descentlab_adam(tmp_path):
    spec = CompareSpec(**{**TINY, "optimizers": ["adam", torch.optim.Adam]})
    # One trial at a time: torch.optim.Adam cannot share a vectorized pass, and the vmap
    # engine rounds differently from a single run.
    ours, theirs = compare(spec, tmp_path, workers=1, progress=False, vectorize=False).results
    assert theirs.label == "torch.Adam" and ours.choice.lr_range == theirs.choice.lr_range
    # Same grid, same validation scores (descentlab's Adam equals torch's to float32
    # rounding), so the same choice and the same test numbers.
    assert [c.setting for c in ours.candidates] == [c.setting for c in theirs.candidates]
    for a, b in zip(ours.candidates, theirs.candidates, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-6, nan_ok=True)  # NaN: failed
        assert a.failures == b.failures
    assert ours.best == theirs.best
    assert ours.test_accuracy == pytest.approx(theirs.test_accuracy, abs=1e-6, nan_ok=True)
    assert ours.test_loss == pytest.approx(theirs.test_loss, rel=1e-4, nan_ok=True)
    assert ours.final_val_loss == pytest.approx(theirs.final_val_loss, rel=1e-4)


class _LoggedScheduleFree(schedulefree.AdamWScheduleFree):
    """Schedule-Free AdamW that logs its mode changes (module level: picklable)."""

    calls: list[str] = []  # noqa: RUF012
    last: schedulefree.AdamWScheduleFree | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        type(self).last = self

    def train(self):
        type(self).calls.append("train")
        super().train()

    def eval(self):
        type(self).calls.append("eval")
        super().eval()


def test_schedule_free_modes_are_switched_around_evaluation():
    _LoggedScheduleFree.calls = []
    cfg = RunConfig(problem="moons", problem_options={"n_samples": 200}, model="mlp",
                    model_options={"hidden": 8}, optimizer=PythonOptimizer(_LoggedScheduleFree),
                    hyper={"lr": 0.01}, batch_size=16, steps=30, eval_every=10,
                    evaluate_test=False)  # fmt: skip
    # (Schedule-Free's step raises unless train() was called first.)
    result = train(cfg, progress=False)
    calls = _LoggedScheduleFree.calls
    # train before the steps; eval..train around the evaluations at steps 0, 10, 20, 30; the
    # final summary's evaluation leaves it in eval mode.
    assert calls == ["train"] + ["eval", "train"] * 4 + ["eval"]
    splits = datasets.load("moons", n_samples=200)
    loss = torch.nn.CrossEntropyLoss()
    val_eval = evaluate(result.model, splits.x_val, splits.y_val, loss, classification=True)
    assert result.summary["val/loss"] == pytest.approx(val_eval["loss"], rel=1e-6)
    # The train-mode weights (where gradients are taken) give another loss: the summary was
    # computed with the evaluation weights.
    opt = _LoggedScheduleFree.last
    opt.train()
    val_train = evaluate(result.model, splits.x_val, splits.y_val, loss, classification=True)
    assert abs(val_train["loss"] - val_eval["loss"]) > 1e-4
    opt.eval()
    again = evaluate(result.model, splits.x_val, splits.y_val, loss, classification=True)
    assert again["loss"] == pytest.approx(val_eval["loss"], rel=1e-6)


def test_third_party_optimizers_compare_and_resume(tmp_path):
    spec = CompareSpec(**{**TINY, "optimizers": ["lion=pytorch_optimizer.Lion",
                                                 "sf=schedulefree.AdamWScheduleFree"],
                          "lr_ranges": {"lion": (1e-3, 1e-2), "sf": (1e-2, 1e-1)}})  # fmt: skip
    # (Worker processes get them by path: see the pickling check above.)
    first = compare(spec, tmp_path, workers=1, progress=False)
    assert first.complete
    for r in first.results:
        assert r.best is not None and r.test_accuracy[0] > 0.7
        assert all(i is not None for i in r.curve_runs + r.refit_runs)
    n = len(Store(first.store_path).list_runs())
    again = compare(spec, tmp_path, workers=1, progress=False)
    assert len(Store(first.store_path).list_runs()) == n  # every trial found again
    assert again.rows(timings=False) == first.rows(timings=False)


def test_imported_optimizer_equality_is_by_path():
    assert ImportedOptimizer("torch.optim.SGD") == ImportedOptimizer(" torch.optim.SGD ")
    assert ImportedOptimizer("torch.optim.SGD") != ImportedOptimizer("torch.optim.Adam")
