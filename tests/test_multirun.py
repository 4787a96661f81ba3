"""Tests for descentlab.engine.multirun: many runs at once equal the same runs one by one.

The reference for every vectorized run is :func:`descentlab.engine.run.train` with the same
config: final parameters (and batch-norm buffers), every metric at every evaluation, statuses,
step counts and messages must agree to float64 rounding.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch
from _models import as_float64
from torch.fx.experimental.proxy_tensor import make_fx

from descentlab import _announce, optim
from descentlab.engine import multirun, vectorized
from descentlab.engine.config import RunConfig
from descentlab.engine.multirun import VectorizeError, expand_configs, plan, train_many
from descentlab.engine.run import train
from descentlab.engine.timing import MEASURED_METRICS, MEASURED_SUMMARY
from descentlab.engine.vconv import Conv1dAsMatmul, vmap_friendly
from descentlab.problems import data
from descentlab.store import Store


@pytest.fixture(scope="module")
def moons():
    return data.load("moons", n_samples=240)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


@pytest.fixture(scope="module")
def mnist1d():
    s = data.load("mnist1d")
    return dataclasses.replace(
        s,
        x_train=s.x_train[:400],
        y_train=s.y_train[:400],
        x_val=s.x_val[:200],
        y_val=s.y_val[:200],
    )


def assert_same_run(got, ref, *, rtol=1e-9, atol=1e-11):
    """A vectorized run equals the single run: status, steps, messages, weights, metrics."""
    assert (got.status, got.steps, got.message) == (ref.status, ref.steps, ref.message)
    assert got.epochs == pytest.approx(ref.epochs, abs=1e-12)
    sg, sr = got.model.state_dict(), ref.model.state_dict()
    assert list(sg) == list(sr)
    for name in sr:
        a, b = sg[name].double(), sr[name].double()
        scale = float(b.abs().max()) if b.numel() else 0.0
        assert torch.allclose(a, b, rtol=rtol, atol=atol * max(1.0, scale)), name
    assert list(got.metrics) == list(ref.metrics)
    for key, series in ref.metrics.items():
        mine = got.metrics[key]
        np.testing.assert_array_equal(mine.steps, series.steps, err_msg=key)
        if key not in MEASURED_METRICS:
            np.testing.assert_allclose(
                mine.values, series.values, rtol=rtol, atol=atol, err_msg=key
            )
    assert set(got.summary) == set(ref.summary)
    for key, value in ref.summary.items():
        if key not in MEASURED_SUMMARY:
            assert got.summary[key] == pytest.approx(value, rel=rtol, abs=atol), key


# --------------------------------------------------------------------------------------------
# K vectorized runs == K sequential runs (float64)

MOONS_MLP = {
    "model": "mlp",
    "model_options": {"hidden": 12},
    "batch_size": 32,
    "steps": 40,
    "eval_every": 10,
}
DIGITS_MLP = {"model": "digits_mlp", "model_options": {"hidden": [16]}, "batch_size": 64}

# name, problem, shared fields, per-run overrides
CASES = [
    (
        "adam: per-run seeds and lrs, test split at the end",
        "moons",
        {**MOONS_MLP, "optimizer": "adam"},
        [{"seed": s, "hyper": {"lr": lr}} for s in (0, 1) for lr in (1e-2, 3e-2)],
    ),
    (
        "momentum with a cosine schedule: per-run lrs scheduled from their own base",
        "moons",
        {**MOONS_MLP, "optimizer": "momentum", "hyper": {"momentum": 0.9},
         "schedule": {"lr": "cosine"}},
        [{"seed": 0, "hyper": {"lr": 0.05}}, {"seed": 1, "hyper": {"lr": 0.2}}],
    ),
    (
        "per-run plateau schedules and early stopping with restored best weights",
        "moons",
        {**MOONS_MLP, "optimizer": "sgd", "batch_size": 16, "steps": 150, "eval_every": 10,
         "schedule": {"lr": "reduce_on_plateau(patience=1, factor=0.5)"},
         "early_stopping": {"patience": 2}},
        [{"seed": s, "hyper": {"lr": lr}} for s, lr in ((0, 0.3), (1, 1.0), (2, 0.3))],
    ),
    (
        "batch norm (stacked running statistics), per-run weight decay, epochs, drop_last",
        "digits",
        {**DIGITS_MLP, "model_options": {"hidden": [16], "batch_norm": True},
         "optimizer": "adamw", "epochs": 2, "drop_last": True},
        [{"seed": 0, "hyper": {"lr": 1e-2, "weight_decay": 0.0}},
         {"seed": 1, "hyper": {"lr": 3e-3, "weight_decay": 0.1}}],
    ),
    (
        "augmentation, input noise, mixup, weight noise, label smoothing, per-run betas",
        "digits",
        {**DIGITS_MLP, "optimizer": "adam", "steps": 30, "augment": True, "input_noise": 0.05,
         "mixup_alpha": 0.4, "weight_noise": 0.01, "label_smoothing": 0.1},
        [{"seed": 0, "hyper": {"lr": 1e-2, "betas": (0.9, 0.99)}},
         {"seed": 1, "hyper": {"lr": 1e-2, "betas": (0.8, 0.99)}}],
    ),
    (
        "full-batch gradient descent with cutmix (logistic regression)",
        "digits",
        {"model": "logistic", "optimizer": "rmsprop", "batch_size": None, "steps": 20,
         "cutmix_alpha": 1.0},
        [{"seed": 0, "hyper": {"lr": 1e-2}}, {"seed": 1, "hyper": {"lr": 3e-2}}],
    ),
    (
        "MNIST-1D CNN: Conv1d computed as products over its windows",
        "mnist1d",
        {"model": "cnn", "optimizer": "adam", "batch_size": 50, "steps": 30, "eval_every": 10},
        [{"seed": 0, "hyper": {"lr": 1e-2}}, {"seed": 1, "hyper": {"lr": 3e-3}}],
    ),
    (
        "MNIST-1D CNN, one data order: the first layer's windows shared by the runs",
        "mnist1d",
        {"model": "cnn", "optimizer": "adam", "batch_size": 50, "steps": 30, "eval_every": 10,
         "seed": 2},
        [{"hyper": {"lr": 1e-2}}, {"hyper": {"lr": 3e-3}}, {"hyper": {"lr": 1e-3}}],
    ),
    (
        "several optimizers in one pass, each with its own rule, lrs and schedule state",
        "mnist1d",
        {"model": "cnn", "batch_size": 50, "steps": 30, "eval_every": 10,
         "schedule": {"lr": "reduce_on_plateau(patience=0, factor=0.5)"}},
        [{"optimizer": "sgd", "hyper": {"lr": 0.1}, "seed": 1},
         {"optimizer": "adam", "hyper": {"lr": 1e-2}, "seed": 1},
         {"optimizer": "momentum", "hyper": {"lr": 0.05, "momentum": 0.9}, "seed": 0},
         {"optimizer": "adam", "hyper": {"lr": 3e-3}, "seed": 2},
         {"optimizer": "sgd", "hyper": {"lr": 0.3}, "seed": 0}],
    ),
    (
        "MNIST-1D CNN with label smoothing, input noise and weight noise",
        "mnist1d",
        {"model": "cnn", "optimizer": "sgd", "batch_size": 40, "steps": 20, "eval_every": 10,
         "label_smoothing": 0.1, "input_noise": 0.05, "weight_noise": 0.01},
        [{"seed": 0, "hyper": {"lr": 0.1}}, {"seed": 1, "hyper": {"lr": 0.05}}],
    ),
    (
        "one seed, several lrs: one shared data order (unbatched inputs)",
        "moons",
        {"model": "linear", "optimizer": "adagrad", "batch_size": 20, "steps": 40},
        [{"seed": 3, "hyper": {"lr": lr}} for lr in (0.01, 0.1, 0.5)],
    ),
]  # fmt: skip


# Every case on the traced path (the default: the MNIST-1D CNN's cases on the compiled kernel
# of descentlab.engine.vcnn), two on the eager fallback, and the CNN's on the traced graph.
CNN_CASES = [i for i, case in enumerate(CASES) if case[2].get("model") == "cnn"]
PARAMS = (
    [pytest.param(*case, True, True, id=case[0]) for case in CASES]
    + [pytest.param(*CASES[i], False, True, id=f"eager: {CASES[i][0]}") for i in (0, 4)]
    + [pytest.param(*CASES[i], True, False, id=f"graph: {CASES[i][0]}") for i in CNN_CASES]
)


@pytest.mark.parametrize(("name", "problem", "shared", "runs", "trace", "kernel"), PARAMS)
def test_vectorized_runs_equal_sequential_runs(
    float64, moons, digits, mnist1d, monkeypatch, name, problem, shared, runs, trace, kernel
):
    monkeypatch.setattr(vectorized, "_TRACE", trace)
    monkeypatch.setattr(vectorized, "_KERNEL", kernel)
    monkeypatch.setattr(vectorized, "_TRACE_AFTER", 1)  # short runs traced too
    splits = as_float64({"moons": moons, "digits": digits, "mnist1d": mnist1d}[problem])
    base = RunConfig(problem=problem, **shared)
    got = train_many(base, overrides=runs, mode="vmap", data=splits, progress=False)
    refs = [train(c, data=splits, progress=False) for c in expand_configs(base, runs)]
    assert len(got) == len(refs)
    for g, r in zip(got, refs, strict=True):
        assert_same_run(g, r)
    assert got[0].model is not got[1].model


def test_a_step_that_cannot_be_traced_is_announced_once_and_gives_the_same_runs(
    float64, moons, monkeypatch
):
    def refuse(fn, *args, **kwargs):
        raise RuntimeError("not traceable here")

    monkeypatch.setattr(vectorized, "make_fx", refuse)
    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
    monkeypatch.setattr(vectorized, "_GRAPHS", type(vectorized._GRAPHS)())  # none traced yet
    _name, problem, shared, runs = CASES[0]
    splits = as_float64(moons)
    base = RunConfig(problem=problem, **shared)
    with pytest.warns(RuntimeWarning, match="could not be traced") as record:
        got = train_many(base, overrides=runs, mode="vmap", data=splits, progress=False)
    assert sum("could not be traced" in str(w.message) for w in record) == 1
    refs = [train(c, data=splits, progress=False) for c in expand_configs(base, runs)]
    for g, r in zip(got, refs, strict=True):
        assert_same_run(g, r)


# kernel, stride, padding, dilation, bias, input shape
CONV1D = [
    (5, 2, 1, 1, True, (7, 1, 40)),  # the MNIST-1D CNN's first layer
    (3, 2, 1, 1, True, (7, 25, 19)),  # and its second
    (1, 1, 0, 1, False, (4, 3, 10)),
    (3, 1, 2, 2, True, (4, 3, 11)),
    (4, 3, 0, 1, False, (2, 5, 17)),
    (3, 2, 1, 1, True, (3, 12)),  # unbatched input (C, L)
    (2, 3, 0, 1, True, (3, 2, 11)),  # stride > kernel: positions read by no window
    (2, 1, 3, 1, True, (2, 3, 4)),  # padding wider than the kernel: windows in the padding
    (3, 2, 2, 2, True, (3, 2, 9)),  # dilation with stride 2
    (3, 4, 1, 3, True, (2, 2, 13)),  # dilation and stride 4: phases with no tap
]


@pytest.mark.parametrize(("k", "s", "p", "d", "bias", "shape"), CONV1D)
def test_conv1d_as_a_product_equals_nn_conv1d(k, s, p, d, bias, shape):
    """Output, input gradient and parameter gradients; and under vmap with per-run weights,
    the batched layer equals each run's own nn.Conv1d."""
    c_in = shape[-2]
    g = torch.Generator().manual_seed(0)
    ref = torch.nn.Conv1d(c_in, 6, k, stride=s, padding=p, dilation=d, bias=bias).double()
    mine = vmap_friendly(copy.deepcopy(ref))
    assert type(mine) is Conv1dAsMatmul
    x = torch.randn(shape, dtype=torch.float64, generator=g, requires_grad=True)
    out_ref = ref(x)
    out = mine(x)
    assert out.shape == out_ref.shape
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    w = torch.randn(out.shape, dtype=torch.float64, generator=g)
    grads_ref = torch.autograd.grad((out_ref * w).sum(), [x, *ref.parameters()])
    grads = torch.autograd.grad((out * w).sum(), [x, *mine.parameters()])
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # vmap over K=3 runs with their own weights and inputs
    runs = [copy.deepcopy(ref) for _ in range(3)]
    for r in runs:
        with torch.no_grad():
            for t in r.parameters():
                t.copy_(torch.randn(t.shape, dtype=t.dtype, generator=g))
    params, _ = torch.func.stack_module_state(runs)
    base = vmap_friendly(copy.deepcopy(ref).to("meta"))

    def loss(prm, xb, wb):
        return (torch.func.functional_call(base, prm, (xb,)) * wb).sum()

    # each run's own input, or one input shared by the runs (one data order): outputs, and
    # under vmap(grad) -- the vectorized engine's step -- every run's gradients, also when
    # traced into a graph of ATen operations as the engine replays it
    for shared in (False, True):
        xs = torch.randn(shape if shared else (3, *shape), dtype=torch.float64, generator=g)
        ws = torch.randn(3, *out.shape, dtype=torch.float64, generator=g)
        dims = (0, None if shared else 0, 0)
        batched = torch.func.vmap(
            lambda prm, xb: torch.func.functional_call(base, prm, (xb,)), in_dims=dims[:2]
        )(params, xs)
        step = torch.func.vmap(torch.func.grad_and_value(loss, argnums=(0, 1)), in_dims=dims)
        traced = make_fx(step)(params, xs, ws)
        for fn in (step, traced):
            (g_params, g_x), values = fn(params, xs, ws)
            for i, r in enumerate(runs):
                xi = (xs if shared else xs[i]).clone().requires_grad_(True)
                out_i = r(xi)
                torch.testing.assert_close(batched[i], out_i, rtol=1e-12, atol=1e-12)
                value = (out_i * ws[i]).sum()
                grads_i = torch.autograd.grad(value, [xi, *r.parameters()])
                torch.testing.assert_close(values[i], value, rtol=1e-12, atol=1e-12)
                torch.testing.assert_close(g_x[i], grads_i[0], rtol=1e-12, atol=1e-12)
                for (name, _), ref_g in zip(r.named_parameters(), grads_i[1:], strict=True):
                    torch.testing.assert_close(g_params[name][i], ref_g, rtol=1e-12, atol=1e-12)


def test_only_plain_conv1d_layers_become_products():
    model = torch.nn.Sequential(
        torch.nn.Conv1d(2, 4, 3),
        torch.nn.Conv1d(4, 4, 3, groups=2),
        torch.nn.Conv1d(4, 4, 3, padding="same"),
        torch.nn.Conv1d(4, 4, 3, padding=1, padding_mode="circular"),
        torch.nn.Conv2d(4, 4, 3),
    )
    kinds = [type(m).__name__ for m in vmap_friendly(model)]
    assert kinds == ["Conv1dAsMatmul", "Conv1d", "Conv1d", "Conv1d", "Conv2d"]


# --------------------------------------------------------------------------------------------
# divergence: frozen per run


@pytest.mark.parametrize(
    ("optimizer", "hyper"),
    [
        ("sgd", {}),
        # velocity-form momentum keeps moving with a zero gradient (v <- a v): masking the
        # learning rate alone would not freeze it
        ("momentum", {"momentum": 0.9, "form": "velocity"}),
    ],
)
def test_a_diverging_run_is_frozen_while_the_others_finish(float64, moons, optimizer, hyper):
    splits = as_float64(moons)
    base = RunConfig(problem="moons", **{**MOONS_MLP, "steps": 80, "eval_every": 10},
                     optimizer=optimizer, hyper=hyper)  # fmt: skip
    runs = [{"seed": 0, "hyper": {"lr": 0.05}}, {"seed": 1, "hyper": {"lr": 1e6}},
            {"seed": 2, "hyper": {"lr": 0.1}}]  # fmt: skip
    got = train_many(base, overrides=runs, mode="vmap", data=splits, progress=False)
    refs = [train(c, data=splits, progress=False) for c in expand_configs(base, runs)]
    assert [g.status for g in got] == ["completed", "diverged", "completed"]
    bad = got[1]
    assert bad.steps < 80 and bad.message.startswith("non-finite training loss")
    assert math.isnan(bad.metrics["train/objective"].values[-1]) or math.isinf(
        bad.metrics["train/objective"].values[-1]
    )
    assert bad.metrics["val/loss"].steps[-1] < bad.steps  # no evaluation after it froze
    assert all(torch.isfinite(t).all() for t in bad.model.state_dict().values())
    # Exploding weights amplify rounding: compare the diverged run's weights relatively.
    for g, r in zip(got, refs, strict=True):
        assert_same_run(g, r, rtol=1e-7)


# --------------------------------------------------------------------------------------------
# store, processes, planning


def test_vectorized_runs_are_recorded_like_single_runs(tmp_path, moons):
    store = Store(tmp_path / "lab.sqlite")
    base = RunConfig(problem="moons", optimizer="sgd", hyper={"lr": 0.1}, **MOONS_MLP)
    got = train_many(base, store, overrides=[{"seed": 0}, {"seed": 1, "name": "second"}],
                     data=moons, progress=False)  # fmt: skip
    assert [r.run_id for r in got] == [1, 2]
    for r in got:
        rec = store.get_run(r.run_id)
        assert rec.status == "completed" and rec.config == r.config.to_dict()
        assert rec.provenance["multirun"]["mode"] == "vmap"
        assert rec.summary["val/loss"] == pytest.approx(r.summary["val/loss"])
        stored = store.metrics(r.run_id)
        for key in ("train/loss", "val/accuracy", "test/accuracy"):
            np.testing.assert_allclose(stored[key].values, r.metrics[key].values)
    assert store.get_run(2).name == "second"


@pytest.mark.process
def test_processes_equal_sequential_runs_bit_for_bit_in_submission_order(tmp_path, moons):
    # One worker keeps the test cheap (a spawned interpreter imports torch); two processes
    # writing one store at once are tested in test_store.
    store = Store(tmp_path / "lab.sqlite")
    base = RunConfig(problem="moons", problem_options={"n_samples": 240}, model="linear",
                     optimizer="sgd", batch_size=16, steps=20, eval_every=5)  # fmt: skip
    runs = [{"seed": 2, "hyper": {"lr": 0.3}}, {"seed": 0, "hyper": {"lr": 0.1}}]
    got = train_many(base, store, overrides=runs, mode="processes", workers=1, progress=False)
    refs = [train(c, progress=False) for c in expand_configs(base, runs)]
    for g, r in zip(got, refs, strict=True):
        assert g.config.seed == r.config.seed
        for a, b in zip(g.model.state_dict().values(), r.model.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        np.testing.assert_array_equal(g.metrics["val/loss"].values, r.metrics["val/loss"].values)
        assert store.get_run(g.run_id).status == "completed"
        assert store.get_run(g.run_id).seed == g.config.seed
    assert len(store.list_runs()) == 2


def test_auto_plans_vmap_for_dense_models_and_processes_for_convolutions(monkeypatch, moons):
    base = RunConfig(problem="moons", model="mlp", steps=5)
    seeds = [{"seed": s} for s in range(3)]
    assert plan(base, overrides=seeds, workers=2) == [("vmap", [0, 1, 2])]
    mixed = [*expand_configs(base, seeds[:2]), base.replace(model="linear", seed=5)]
    assert plan(mixed, workers=2) == [("vmap", [0, 1]), ("sequential", [2])]
    cnn = RunConfig(problem="mnist1d", model="cnn", steps=5)
    assert plan(cnn, overrides=seeds, workers=2) == [("vmap", [0, 1, 2])]  # Conv1d as products
    conv2d = RunConfig(problem="digits", model="digits_cnn", steps=5)
    assert plan(conv2d, overrides=seeds, workers=2) == [("processes", [0, 1, 2])]
    assert plan(conv2d, overrides=seeds, workers=1) == [("vmap", [0, 1, 2])]  # no parallelism
    # workers=None: processes only when cores are idle; on a busy machine it vectorizes
    monkeypatch.setattr(multirun, "_idle_cores", lambda: 2.0)
    assert plan(conv2d, overrides=seeds) == [("processes", [0, 1, 2])]
    assert plan(cnn, overrides=seeds) == [("vmap", [0, 1, 2])]
    monkeypatch.setattr(multirun, "_idle_cores", lambda: 0.3)
    assert plan(conv2d, overrides=seeds) == [("vmap", [0, 1, 2])]
    gru = cnn.replace(model="gru")
    assert plan(gru, overrides=seeds) == [("sequential", [0, 1, 2])]
    # several optimizers of one model: one pass (each steps its own slice)
    optimizers = [{"optimizer": o, "seed": 0} for o in ("sgd", "adam", "sgd", "rmsprop")]
    assert plan(cnn, overrides=optimizers, workers=2) == [("vmap", [0, 1, 2, 3])]
    factory = [*expand_configs(cnn, optimizers[:2]), cnn.replace(optimizer=torch.optim.SGD)]
    assert plan(factory, workers=1) == [("vmap", [0, 1]), ("sequential", [2])]
    checkpointed = base.replace(checkpoint_every=2)
    assert plan(checkpointed, overrides=seeds, workers=1) == [("sequential", [0, 1, 2])]
    assert plan(base, overrides=seeds, mode="processes") == [("processes", [0, 1, 2])]


def test_an_unmarked_test_trains_several_runs_without_processes_however_idle_the_machine():
    """The suite's tests not marked ``process`` see no idle core (tests/conftest.py): the
    library's choice of worker processes does not depend on what else the machine runs. The
    measure itself stays reachable for its own tests."""
    assert multirun._idle_cores() == 0.0 and not multirun._use_processes(2, False)
    assert multirun._use_processes(2, True)  # asked for: the guard refuses the start instead
    assert multirun._idle_cores.__wrapped__ is not multirun._idle_cores


@pytest.mark.parametrize(
    ("samples", "loadavg", "expected"),
    [
        ([(100, 1000), (190, 1100)], 1.9, 1.8),  # 90 % idle now: a lagging load is ignored
        ([(100, 1000), (110, 1100)], 0.0, 0.2),  # 10 % idle now, however idle a minute ago
        ([(100, 1000), (100, 1000)], 0.5, 1.5),  # no time passed: the load average decides
        ([None], 0.5, 1.5),  # no /proc/stat
        ([None], 3.0, 0.0),  # overloaded: never negative
    ],
)
def test_idle_cores_sample_the_cpu_now_and_fall_back_to_the_load_average(
    monkeypatch, samples, loadavg, expected
):
    it = iter(samples)
    monkeypatch.setattr(multirun, "_cpu_times", lambda: next(it))
    monkeypatch.setattr(multirun, "default_workers", lambda n: 2)
    monkeypatch.setattr(multirun.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(multirun.os, "getloadavg", lambda: (loadavg, 0.0, 0.0))
    measure = getattr(multirun._idle_cores, "__wrapped__", multirun._idle_cores)  # conftest.py
    assert measure(window=0.0) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("setting", "idle", "expected"),
    [(1, 2.0, 1), (2, 2.0, 2), (2, 1.2, 1), (2, 0.2, 1), (4, 2.6, 3)],
)
def test_vectorized_groups_use_threads_only_on_idle_cores(monkeypatch, setting, idle, expected):
    monkeypatch.setattr(multirun, "_idle_cores", lambda: idle)
    monkeypatch.setattr(torch, "get_num_threads", lambda: setting)
    assert multirun._vmap_threads() == expected


def test_train_many_restores_the_thread_setting(monkeypatch, moons):
    seen = []
    real_run = vectorized.Loop.run

    def run(self, **kwargs):
        seen.append(torch.get_num_threads())
        return real_run(self, **kwargs)

    monkeypatch.setattr(vectorized.Loop, "run", run)
    monkeypatch.setattr(multirun, "_vmap_threads", lambda: 2)
    base = RunConfig(problem="moons", **{**MOONS_MLP, "steps": 3})
    before = torch.get_num_threads()
    train_many(base, overrides=[{"seed": 0}, {"seed": 1}], mode="vmap", data=moons, progress=False)
    assert seen == [2] and torch.get_num_threads() == before


def test_cpu_times_reads_proc_stat():
    times = multirun._cpu_times()
    if times is None:
        pytest.skip("no /proc/stat on this platform")
    idle, total = times
    assert 0 <= idle <= total and total > 0


def test_auto_falls_back_when_set_up_finds_vmap_cannot_run(tmp_path, moons):
    # NAdam's rule refuses batched betas: found by the trial step, before anything is stored.
    store = Store(tmp_path / "lab.sqlite")
    base = RunConfig(problem="moons", optimizer="nadam", **{**MOONS_MLP, "steps": 10})
    runs = [{"seed": 0, "hyper": {"betas": (0.9, 0.999)}},
            {"seed": 1, "hyper": {"betas": (0.8, 0.999)}}]  # fmt: skip
    assert plan(base, overrides=runs, workers=1, data=moons) == [("vmap", [0, 1])]
    with pytest.raises(VectorizeError, match=r"cannot be trained under torch\.func\.vmap"):
        train_many(base, store, overrides=runs, mode="vmap", data=moons, progress=False)
    assert store.list_runs() == []
    got = train_many(base, store, overrides=runs, workers=1, data=moons, progress=False)
    refs = [train(c, data=moons, progress=False) for c in expand_configs(base, runs)]
    for g, r in zip(got, refs, strict=True):
        for a, b in zip(g.model.state_dict().values(), r.model.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    assert [r.id for r in store.list_runs()] == [g.run_id for g in got]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"model": "gru"}, "aten::gru"),
        ({"optimizer": optim.chain(optim.clip_by_global_norm(1.0), optim.scale_by_lr(0.1))},
         "clip_by_global_norm"),
        ({"optimizer": torch.optim.SGD, "hyper": {"lr": 0.1}}, "factory"),
        ({"checkpoint_every": 5}, "checkpoint"),
    ],
)  # fmt: skip
def test_what_cannot_be_vectorized_says_why(changes, match):
    base = RunConfig(
        problem="moons",
        problem_options={"n_samples": 100},
        model="mlp",
        model_options={"hidden": 4},
        batch_size=10,
        steps=2,
        evaluate_test=False,
    )
    base = base.replace(**changes)
    with pytest.raises(VectorizeError, match=match):
        train_many(base, overrides=[{"seed": 0}, {"seed": 1}], mode="vmap", progress=False)


def test_dropout_draws_its_own_masks_per_run_and_repeats_exactly(digits):
    base = RunConfig(problem="digits", model="digits_mlp", optimizer="adam", batch_size=64,
                     model_options={"hidden": [16], "dropout": 0.5}, steps=15,
                     evaluate_test=False)  # fmt: skip
    twins = [{"seed": 0}, {"seed": 0}]
    a = train_many(base, overrides=twins, mode="vmap", data=digits, progress=False)
    b = train_many(base, overrides=twins, mode="vmap", data=digits, progress=False)
    wa = [r.model.state_dict()["1.weight"] for r in a]
    assert not torch.equal(wa[0], wa[1])  # same seed, different dropout masks
    assert torch.equal(wa[0], b[0].model.state_dict()["1.weight"])  # deterministic
    assert all(r.status == "completed" for r in a)


def test_training_many_does_not_touch_the_callers_global_rng(moons):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    base = RunConfig(problem="moons", optimizer="sgd", hyper={"lr": 0.1}, **MOONS_MLP)
    train_many(base, overrides=[{"seed": 0}, {"seed": 1}], data=moons, progress=False)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------------------------
# configs and bad input


def test_overrides_merge_dict_fields_and_replace_the_rest():
    base = RunConfig(problem="moons", hyper={"lr": 0.1, "momentum": 0.9},
                     model_options={"hidden": 8}, steps=10)  # fmt: skip
    a, b = expand_configs(base, [{"hyper": {"lr": 0.3}, "seed": 4}, {"steps": 20}])
    assert a.hyper == {"lr": 0.3, "momentum": 0.9} and a.seed == 4 and a.steps == 10
    assert b.hyper == base.hyper and b.steps == 20 and b.model_options == {"hidden": 8}
    assert base.hyper == {"lr": 0.1, "momentum": 0.9}  # the base is not modified


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"overrides": [{"seed": 0}, {"optimizer": "adamm"}]}, KeyError, "valid names: sgd"),
        ({"overrides": [{"model": "resnet"}]}, KeyError, "unknown model 'resnet'"),
        ({"overrides": [{"sead": 1}]}, ValueError, "unknown RunConfig field"),
        ({"overrides": [{"steps": 0}]}, ValueError, "steps must be a positive integer, got 0"),
        ({"overrides": [{"seed": 0}], "mode": "gpu"}, ValueError, "mode must be one of"),
        ({"overrides": [{"seed": 0}], "workers": 0}, ValueError, "workers must be a positive"),
    ],
)
def test_bad_input_fails_before_any_run_starts(tmp_path, kwargs, exc, match):
    store = Store(tmp_path / "lab.sqlite")
    base = RunConfig(problem="moons", problem_options={"n_samples": 100}, model="mlp", steps=3)
    with pytest.raises(exc, match=match):
        train_many(base, store, progress=False, **kwargs)
    assert store.list_runs() == []
