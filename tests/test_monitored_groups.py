"""A monitored trial trains in a vectorized group and records what it records alone.

The reference is the trial run alone (``train`` with the optimizer's own
:class:`~descentlab.optim.Monitor` attached): the ``monitor/*`` metrics the trial layer stores
for it -- update-to-parameter ratio, gradient, update and parameter norms of param group 0 at
every ``every``-th step -- must come out of a vectorized group of three (the monitored run and
two unmonitored seeds) at the same steps, equal to float64 rounding (float32: 1e-5).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from _models import as_float64

from descentlab.engine.config import RunConfig
from descentlab.experiments import execution
from descentlab.experiments.runner import group_trials
from descentlab.experiments.trial import MonitoredOptimizer, Trial, finished_run
from descentlab.problems import data
from descentlab.store import Store

KEYS = ("update_ratio", "grad_norm", "update_norm", "param_norm")


class _Source:
    """A data source holding one split set (the trial layer asks it by data kind); the
    engine's own loop trains on it (no kind: the engine's run)."""

    kind = None

    def __init__(self, splits: data.Splits) -> None:
        self.splits = splits

    def get(self, kind: str) -> data.Splits:
        assert kind == "holdout"
        return self.splits


@pytest.fixture(scope="module")
def moons():
    return data.load("moons", n_samples=240)


def _trials(base: RunConfig, optimizer: str, every: int, lrs=(None, None, None), seeds=(0, 1, 2)):
    """Three curve trials; the first seed's is monitored and placed in the middle (index
    1: the group's records must come from its own slice of the stacked tensors)."""
    out = []
    for seed, lr in zip(seeds, lrs, strict=True):
        hyper = base.hyper if lr is None else {**base.hyper, "lr": lr}
        spec = MonitoredOptimizer(optimizer, every) if seed == seeds[0] else optimizer
        cfg = base.replace(optimizer=spec, seed=seed, hyper=hyper, name=f"curve/{optimizer}")
        out.append(Trial("curve", optimizer, cfg, "holdout", (seed,)))
    return [out[1], out[0], out[2]]


def _monitor_rows(store: Store, run_id: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    got = store.metrics(run_id, split="monitor")
    return {k.split("/", 1)[1]: (s.steps, s.values) for k, s in got.items()}


def _alone_and_grouped(tmp_path, source, trials):
    alone_store = Store(tmp_path / "alone.sqlite")
    alone = execution.execute_group(alone_store, source, [trials[1]])[0]
    group_store = Store(tmp_path / "group.sqlite")
    grouped = execution.execute_group(group_store, source, trials)
    run = group_store.get_run(grouped[1].run_id)
    assert (run.provenance or {}).get("multirun", {}).get("mode") == "vmap"
    return (alone_store, alone), (group_store, grouped)


@pytest.mark.parametrize(
    ("optimizer", "hyper"),
    [("sgd", {"lr": 0.1}), ("momentum", {"lr": 0.05, "momentum": 0.9}), ("adam", {"lr": 1e-2})],
)
def test_a_monitored_trial_records_the_same_statistics_in_a_vectorized_group(
    float64, moons, tmp_path, optimizer, hyper
):
    base = RunConfig(problem="moons", model="mlp", model_options={"hidden": 12},
                     batch_size=32, steps=40, eval_every=10, evaluate_test=False,
                     optimizer=optimizer, hyper=hyper)  # fmt: skip
    # the siblings' learning rates differ: the stacked optimizer's lr is a length-3 tensor
    trials = _trials(base, optimizer, every=3, lrs=(None, hyper["lr"] * 2, hyper["lr"] / 2))
    assert [t.monitored for t in trials] == [False, True, False]
    assert group_trials(trials) == [trials]  # one vectorized pass
    source = _Source(as_float64(moons))
    (alone_store, alone), (group_store, grouped) = _alone_and_grouped(tmp_path, source, trials)
    assert alone.status == grouped[1].status == "completed"
    ref = _monitor_rows(alone_store, alone.run_id)
    got = _monitor_rows(group_store, grouped[1].run_id)
    assert sorted(ref) == sorted(got) == sorted(KEYS)
    for key in KEYS:
        np.testing.assert_array_equal(got[key][0], np.arange(3, 41, 3), err_msg=key)
        np.testing.assert_array_equal(got[key][0], ref[key][0], err_msg=key)
        np.testing.assert_allclose(got[key][1], ref[key][1], rtol=1e-9, atol=0, err_msg=key)
    # the independent check: SGD's update is -lr * g exactly
    if optimizer == "sgd":
        np.testing.assert_allclose(got["update_norm"][1], 0.1 * got["grad_norm"][1], rtol=1e-12)
    np.testing.assert_allclose(
        got["update_ratio"][1], got["update_norm"][1] / got["param_norm"][1], rtol=1e-12
    )
    # the siblings record nothing; the monitored trial counts as finished
    for out in (grouped[0], grouped[2]):
        assert not group_store.metrics(out.run_id, split="monitor")
    assert finished_run(group_store, trials[1]).id == grouped[1].run_id


def test_a_diverging_monitored_trial_stops_recording_where_it_stops_alone(float64, moons, tmp_path):
    base = RunConfig(problem="moons", model="mlp", model_options={"hidden": 12},
                     batch_size=32, steps=40, eval_every=10, evaluate_test=False,
                     optimizer="sgd", hyper={"lr": 1e6})  # fmt: skip
    # seed 1 at lr 1e6 diverges at step 14 (alone); the others finish
    trials = _trials(base, "sgd", every=1, lrs=(None, 0.1, 0.05), seeds=(1, 0, 2))
    source = _Source(as_float64(moons))
    (alone_store, alone), (group_store, grouped) = _alone_and_grouped(tmp_path, source, trials)
    assert alone.status == grouped[1].status == "diverged"
    assert [o.status for o in grouped] == ["completed", "diverged", "completed"]
    ref = _monitor_rows(alone_store, alone.run_id)
    got = _monitor_rows(group_store, grouped[1].run_id)
    np.testing.assert_array_equal(ref["grad_norm"][0], np.arange(1, 14))  # steps 1..13
    for key in KEYS:
        np.testing.assert_array_equal(got[key][0], ref[key][0], err_msg=key)
        np.testing.assert_allclose(got[key][1], ref[key][1], rtol=1e-7, err_msg=key)


def test_a_monitored_cnn_trial_in_float32(tmp_path):
    """The comparison's case: the MNIST-1D CNN in float32 (1e-5 relative)."""
    s = data.load("mnist1d")
    splits = dataclasses.replace(s, x_train=s.x_train[:256], y_train=s.y_train[:256],
                                 x_val=s.x_val[:128], y_val=s.y_val[:128])  # fmt: skip
    base = RunConfig(problem="mnist1d", model="cnn", batch_size=64, steps=12, eval_every=6,
                     evaluate_test=False, optimizer="adam", hyper={"lr": 3e-3})  # fmt: skip
    trials = _trials(base, "adam", every=4)
    (alone_store, alone), (group_store, grouped) = _alone_and_grouped(
        tmp_path, _Source(splits), trials
    )
    ref = _monitor_rows(alone_store, alone.run_id)
    got = _monitor_rows(group_store, grouped[1].run_id)
    for key in KEYS:
        np.testing.assert_array_equal(got[key][0], [4, 8, 12], err_msg=key)
        np.testing.assert_allclose(got[key][1], ref[key][1], rtol=1e-5, err_msg=key)


def test_an_optimizer_without_a_monitor_still_trains_alone():
    base = RunConfig(problem="moons", model="mlp", steps=10, optimizer="sgd", hyper={"lr": 0.1})
    trials = _trials(base, "sgd", every=2)
    wrapped = base.replace(optimizer=MonitoredOptimizer(torch.optim.SGD, 2), name="curve/t")
    torch_trial = Trial("curve", "t", wrapped, "holdout", (0,))
    assert not torch_trial.monitored
    assert group_trials([torch_trial, *trials]) == [[torch_trial], trials]


@pytest.mark.process
def test_the_runner_module_still_imports_without_torch():
    """A worker process imports it before it can die with its parent: it stays light (the
    monitored optimizer, now in the engine, is imported when first asked for)."""
    code = (
        "import sys, descentlab.experiments.runner as t; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "from descentlab.experiments.trial import MonitoredOptimizer; "
        "from descentlab.engine.monitoring import MonitoredOptimizer as M; "
        "assert MonitoredOptimizer is M"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
