"""A comparison on the user's own training code (``compare(objective=fn)``): the protocol a
``Problem`` gets, one call of the function per trial.

- The same model, data and loop written as a ``Problem`` and as an objective function give
  the same tuning choices, the same per-run values bit for bit and the same verdict.
- Pruning's rung runs reach the objective as trials of the rung's length and prune the
  settings the ``Problem`` prunes.
- A comparison killed with ``kill -9`` in the middle of an objective's trial continues it from
  its ``run.checkpoint`` and ends with the uninterrupted table.
- A bad objective -- one that raises, returns something that is not a ``Score``, reports NaN
  or reads the test split while tuning -- is one clear line each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from descentlab.engine.evaluation import evaluate
from descentlab.engine.loop import Batches
from descentlab.experiments.compare import CompareSpec, compare
from descentlab.experiments.objective import Score
from descentlab.problems.problem import Problem


def _data() -> dict[str, np.ndarray]:
    """Two noisy classes in 4 dimensions: 160 training and 60 test examples."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 220)
    x = rng.normal(size=(220, 4)).astype(np.float32) + (2 * y[:, None] - 1) * 0.6
    return {"x_train": x[:160], "y_train": y[:160], "x_test": x[160:], "y_test": y[160:]}


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def _problem() -> Problem:
    return Problem(name="twoclass", model=_model, data=_data(), loss="cross_entropy",
                   metric="accuracy")  # fmt: skip


def engine_loop(run) -> Score:
    """The engine's loop written out: the model seeded as it seeds it, its data order, the
    optimizer stepped with a closure, the validation accuracy at the same steps."""
    torch.manual_seed(run.seed)
    model = _model()
    opt = run.optimizer(model.parameters())
    sched = run.scheduler(opt)
    (x, y), (xe, ye) = run.train, run.eval
    batches = Batches([run.seed], x, y, run.batch_size, False)
    loss_fn = torch.nn.CrossEntropyLoss()
    for step in range(1, run.steps + 1):
        xb, yb, _ = batches.next()

        def closure(xb=xb, yb=yb):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            return loss

        opt.step(closure)
        sched.step()
        if step % run.eval_every == 0 or step == run.steps:
            acc = evaluate(model, xe, ye, loss_fn, classification=True)["accuracy"]
            run.report(step, acc)
    model.eval()
    with torch.no_grad():
        hits = (model(xe).argmax(-1) == ye).double().numpy()
    return Score(acc, maximize=True, name="accuracy", examples=hits if run.split == "test" else None)


SPEC = dict(optimizers=["sgd", "adam"], batch_size=32, steps=40, lrs_per_optimizer=3,
            lr_ranges={"sgd": (0.1, 1.0), "adam": (0.003, 0.1)}, refine=False, seeds=2,
            max_seeds=2, landscapes=())  # fmt: skip


def _values(result) -> list:
    """Each optimizer's tuning scores, chosen setting and test values by seed."""
    return [
        ([c.score for c in r.candidates], r.best_setting, r.final_val_accuracy,
         r.test_accuracy_seeds, {s: e["accuracy"].tolist() for s, e in r.test_examples.items()})
        for r in result.results
    ]  # fmt: skip


def test_a_problem_and_its_loop_as_an_objective_give_the_same_comparison(tmp_path):
    spec = CompareSpec(**SPEC)
    as_problem = compare(spec, tmp_path / "p", workers=1, progress=False, problem=_problem())
    with pytest.warns(RuntimeWarning, match="train one at a time"):
        as_objective = compare(spec, tmp_path / "o", workers=1, progress=False,
                               problem=_problem(), objective=engine_loop)  # fmt: skip
    assert _values(as_objective) == _values(as_problem)
    assert all(r.test_examples for r in as_objective.results)  # paired by example
    same = [(x["result"].label, x["tied"]) for x in as_problem.ranking()]
    assert [(x["result"].label, x["tied"]) for x in as_objective.ranking()] == same
    assert as_objective.recommendation().split("\n")[0] == as_problem.recommendation().split("\n")[0]
