"""A regression group in which one run diverges: its evaluations give no RMSE (non-finite
outputs), the others go on, and every run's records equal the run trained alone."""

from __future__ import annotations

import math

from descentlab.engine.config import RunConfig
from descentlab.engine.multirun import train_many
from descentlab.engine.run import train
from descentlab.store import Store


def _cfg(lr: float, seed: int) -> RunConfig:
    return RunConfig(problem="regression", problem_options={"n_train": 200}, model="mlp",
                     optimizer="sgd", hyper={"lr": lr}, batch_size=32, steps=40, eval_every=5,
                     seed=seed, evaluate_test=False, name=f"r{seed}")  # fmt: skip


def test_a_diverged_regression_run_in_a_group_matches_the_run_alone(tmp_path):
    cfgs = [_cfg(1e-2, 0), _cfg(3e3, 1), _cfg(3e-2, 2)]
    with Store(tmp_path / "many.sqlite") as store:
        many = train_many(cfgs, store, mode="vmap", workers=1, progress=False)
        many_rows = [store.metrics(r.run_id) for r in many]
    with Store(tmp_path / "alone.sqlite") as store:
        alone = [train(c, store, progress=False) for c in cfgs]
        alone_rows = [store.metrics(r.run_id) for r in alone]
    assert (
        [r.status for r in many]
        == [r.status for r in alone]
        == ["completed", "diverged", "completed"]
    )
    for m, a in zip(many_rows, alone_rows, strict=True):
        assert set(m) == set(a) and len(a) >= 3
        for key in a:  # the same steps recorded
            assert list(m[key].steps) == list(a[key].steps), key
    # the runs that finished have their RMSE at every evaluation, equal to the run alone
    for i in (0, 2):
        assert math.isclose(many[i].summary["val/rmse"], alone[i].summary["val/rmse"],
                            rel_tol=1e-5)  # fmt: skip
