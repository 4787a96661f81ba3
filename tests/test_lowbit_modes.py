"""Low-bit optimizer state gives the same result however the runs are trained: alone, in a
vectorized pass (where low-bit runs are trained alone, announced), in worker processes, or
as Ray tasks.

The reference is :func:`descentlab.engine.run.train` of each config: every final weight and
metric must be equal bit for bit, for every state dtype. The model is an MLP whose first layer
(64 x 64 = 4096 weights) reaches int8's minimum size, so int8 state is actually used.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from descentlab import _announce, optim
from descentlab.engine import multirun
from descentlab.engine.config import RunConfig
from descentlab.engine.multirun import plan, train_many
from descentlab.engine.run import train
from descentlab.problems import data

DTYPES = (None, "int8", "bfloat16")


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def _base(state_dtype: str | None) -> RunConfig:
    hyper = {"lr": 3e-3} if state_dtype is None else {"lr": 3e-3, "state_dtype": state_dtype}
    return RunConfig(problem="digits", model="mlp", model_options={"hidden": 64},
                     optimizer="adamw", hyper=hyper, batch_size=32, steps=30, eval_every=10,
                     evaluate_test=False)  # fmt: skip


SEEDS = [{"seed": s} for s in (0, 1, 2)]


def _same(got, ref, exact: bool = True) -> None:
    """Bit for bit; or (``exact=False``: a float32 run of a vectorized pass, whose batched
    products sum in another order) to float32 rounding."""
    assert (got.status, got.steps) == (ref.status, ref.steps)
    sg, sr = got.model.state_dict(), ref.model.state_dict()
    for name in sr:
        if exact:
            assert torch.equal(sg[name], sr[name]), name
        else:
            torch.testing.assert_close(sg[name], sr[name], rtol=1e-4, atol=1e-5)
    for key, series in ref.metrics.items():
        if key.startswith(("train/", "val/")):
            want = series.values.tolist()
            assert got.metrics[key].values.tolist() == (
                want if exact else pytest.approx(want, rel=1e-4, abs=1e-5)
            ), key


def test_int8_state_is_used_by_this_model(digits):
    model = train(_base("int8").replace(steps=1), data=digits, progress=False).model
    opt = optim.AdamW(model.parameters(), lr=1e-3, state_dtype="int8")
    model(digits.x_train[:4]).sum().backward()
    opt.step()
    stored = [st["exp_avg"].dtype for st in opt.state.values()]
    assert torch.uint8 in stored


@pytest.mark.process  # (the stacked pass may start its compile workers)
@pytest.mark.parametrize("state_dtype", DTYPES)
def test_same_result_alone_and_stacked(digits, state_dtype):
    base = _base(state_dtype)
    alone = [train(base.replace(**o), data=digits, progress=False) for o in SEEDS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the low-bit "trained alone" note
        stacked = train_many(base, overrides=SEEDS, data=digits, progress=False)
    for got, ref in zip(stacked, alone, strict=True):
        _same(got, ref, exact=state_dtype is not None)  # low-bit runs are trained alone


@pytest.mark.process
@pytest.mark.slow  # a worker process imports torch: 15-25 s on a busy 2-core machine
def test_same_result_in_a_worker_process_for_every_state_dtype(digits):
    configs = [_base(dtype) for dtype in DTYPES]
    alone = [train(c, data=digits, progress=False) for c in configs]
    # one worker trains the three (a spawned interpreter imports torch: one start, not three)
    procs = train_many(configs, mode="processes", workers=1, data=digits, progress=False)
    for got, ref in zip(procs, alone, strict=True):
        _same(got, ref)


@pytest.mark.process
@pytest.mark.slow  # Ray's start and its one worker importing torch: 15-30 s on a busy machine
def test_same_result_as_ray_tasks_for_every_state_dtype(digits):
    from descentlab.experiments import ray_runner, runners
    from descentlab.experiments.runner import BackendUnavailable

    try:  # sets the loopback and no-usage-stats switches before Ray is first imported
        ray = ray_runner._import_ray()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    configs = [_base(dtype) for dtype in DTYPES]
    alone = [train(c, data=digits, progress=False) for c in configs]
    # one local instance of one CPU (one worker process, reused by the three tasks), bound
    # to 127.0.0.1, no dashboard; train_all joins it rather than starting its own
    assert not ray.is_initialized()
    ray.init(address="local", _node_ip_address="127.0.0.1", num_cpus=1,
             include_dashboard=False, log_to_driver=False, configure_logging=False)  # fmt: skip
    try:
        tasks = runners.train_all(configs, data=digits, backend="ray", threads=1)
    finally:
        ray.shutdown()
    for got, ref in zip(tasks, alone, strict=True):
        _same(got, ref)


@pytest.mark.parametrize("state_dtype", ["int8", "bfloat16"])
def test_low_bit_runs_are_not_stacked_and_that_is_announced_once(state_dtype, monkeypatch):
    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
    base = _base(state_dtype)
    with pytest.warns(RuntimeWarning, match=f"state_dtype={state_dtype!r}.*trained alone"):
        assert plan(base, overrides=SEEDS, workers=1) == [("sequential", [0, 1, 2])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not a second time
        plan(base, overrides=SEEDS, workers=1)
    assert multirun.group_of(base) is None
    assert plan(_base(None), overrides=SEEDS, workers=1) == [("vmap", [0, 1, 2])]


def test_int8_state_that_changes_nothing_is_announced_once(monkeypatch, digits):

    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
    # a run whose model has no tensor of 4096 elements: int8 state stores nothing
    small = _base("int8").replace(model_options={"hidden": 16}, steps=2)
    with pytest.warns(RuntimeWarning, match=r"state_dtype='int8'\) changes nothing.*4096"):
        train(small, data=digits, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(small.replace(seed=1), data=digits, progress=False)  # once
        train(_base("int8").replace(steps=2), data=digits, progress=False)  # int8 is used
        train(small.replace(hyper={"state_dtype": "bfloat16"}), data=digits, progress=False)
        # an optimizer made outside a run (a hyperparameter check's dummy) says nothing
        optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1e-3, state_dtype="int8")
