"""The compiled MNIST-1D CNN step (descentlab.engine.vcnn): losses and gradients against
torch.autograd on the model, run by run; its use in vectorized groups; what it refuses."""

from __future__ import annotations

import dataclasses
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.func import stack_module_state

from descentlab import _announce, _native
from descentlab.engine import evaluation, vcnn, vectorized
from descentlab.engine.config import RunConfig
from descentlab.engine.multirun import train_many
from descentlab.problems import data
from descentlab.problems.models import MNIST1DCNN, MNIST1DMLP

pytestmark = pytest.mark.skipif(_native.compiler() is None, reason="needs a C++ compiler")


@pytest.fixture(scope="module")
def mnist1d():
    s = data.load("mnist1d")
    return dataclasses.replace(s, x_train=s.x_train[:200], y_train=s.y_train[:200],
                               x_val=s.x_val[:100], y_val=s.y_val[:100])  # fmt: skip


def _group(k, length, outputs, channels, dtype, seed=0):
    torch.manual_seed(seed)
    models = [MNIST1DCNN(length, outputs, channels=channels).to(dtype) for _ in range(k)]
    params, _ = stack_module_state(models)
    return models, params


def _reference(model, x, y, eps):
    """One run's loss and gradients by autograd on the model itself."""
    model.zero_grad()
    loss = F.cross_entropy(model(x), y, label_smoothing=eps)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


# (K, batch, length, outputs, channels, label smoothing, inputs shared by the runs)
SHAPES = [
    (3, 37, 40, 10, 25, 0.0, False),  # a batch that is not a whole number of vectors
    (2, 128, 40, 10, 25, 0.1, True),  # the MNIST-1D CNN's step, one data order, smoothing
    (4, 5, 33, 4, 7, 0.0, False),  # fewer examples than vector lanes, other geometry
    (1, 16, 12, 3, 1, 0.3, False),  # one channel, one run
    (2, 70, 72, 6, 9, 0.0, True),  # longer inputs
    (2, 50, 24, 5, 10, 0.0, False),  # channels in blocks of 5 (with AVX-512), no 4 vectors
]
TOLERANCE = {torch.float64: 1e-12, torch.float32: 2e-5}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(("k", "b", "length", "o", "c", "eps", "shared"), SHAPES)
def test_losses_and_gradients_equal_autograd_run_by_run(dtype, k, b, length, o, c, eps, shared):
    models, params = _group(k, length, o, c, dtype)
    gen = torch.Generator().manual_seed(1)
    shape = (b, length) if shared else (k, b, length)
    x = torch.randn(*shape, generator=gen, dtype=dtype)
    y = torch.randint(0, o, shape[:-1], generator=gen)
    losses, grads = vcnn.CNNKernel(models[0], eps, dtype)(params, x, y, None if shared else 0)
    tol = TOLERANCE[dtype]
    assert losses.shape == (k,) and losses.dtype == dtype
    for i, model in enumerate(models):
        xi, yi = (x, y) if shared else (x[i], y[i])
        ref_loss, ref_grads = _reference(model, xi, yi, eps)
        assert math.isclose(float(losses[i]), float(ref_loss), rel_tol=tol)
        for name, g in ref_grads.items():
            scale = float(g.abs().max())
            err = float((grads[name][i] - g).abs().max())
            assert err <= tol * scale, (name, err, scale)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_a_run_in_a_group_is_the_run_alone_bit_for_bit(dtype):
    # however the kernel blocks channels and vectors, each run's sums are its own, in one order
    models, params = _group(5, 40, 10, 25, dtype)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(5, 128, 40, generator=gen, dtype=dtype)
    y = torch.randint(0, 10, (5, 128), generator=gen)
    kernel = vcnn.CNNKernel(models[0], 0.0, dtype)
    losses, grads = kernel(params, x, y, 0)
    for i in range(5):
        alone = {n: p[i : i + 1] for n, p in params.items()}
        loss_i, grads_i = kernel(alone, x[i : i + 1], y[i : i + 1], 0)
        assert torch.equal(losses[i : i + 1], loss_i)
        for name, g in grads_i.items():
            assert torch.equal(grads[name][i : i + 1], g), name


def test_inputs_with_a_channel_dimension_and_expanded_targets():
    models, params = _group(2, 40, 10, 5, torch.float64)
    x = torch.randn(2, 9, 1, 40, dtype=torch.float64)
    y = torch.randint(0, 10, (9,)).expand(2, 9)  # shared targets, stride 0 over the runs
    losses, grads = vcnn.CNNKernel(models[0], 0.0, torch.float64)(params, x, y, 0)
    for i, model in enumerate(models):
        ref_loss, ref_grads = _reference(model, x[i], y[i], 0.0)
        torch.testing.assert_close(losses[i], ref_loss, rtol=1e-12, atol=0)
        torch.testing.assert_close(grads["conv2.weight"][i], ref_grads["conv2.weight"])


def test_a_non_finite_weight_gives_a_non_finite_loss_as_autograd_does():
    # ReLU keeps NaN (torch.relu(nan) is nan): a diverged run must not look finite
    models, params = _group(2, 40, 10, 5, torch.float64)
    params = {n: p.clone() for n, p in params.items()}
    params["conv1.weight"][1, 0, 0, 2] = float("nan")
    x = torch.randn(2, 8, 40, dtype=torch.float64)
    y = torch.randint(0, 10, (2, 8))
    losses, _ = vcnn.CNNKernel(models[0], 0.0, torch.float64)(params, x, y, 0)
    assert math.isfinite(float(losses[0])) and math.isnan(float(losses[1]))


def test_targets_outside_the_classes_are_refused():
    models, params = _group(1, 40, 10, 3, torch.float64)
    kernel = vcnn.CNNKernel(models[0], 0.0, torch.float64)
    x = torch.randn(4, 40, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"class indices in \[0, 10\), got \[0, 10\]"):
        kernel(params, x, torch.tensor([0, 3, 10, 2]), None)
    with pytest.raises(ValueError, match="input length 30 gives 4 positions"):
        kernel(params, torch.randn(4, 30, dtype=torch.float64), torch.zeros(4).long(), None)


# (runs, examples, length, outputs, channels): chunks of 256 examples, a last partial chunk,
# fewer examples than vector lanes
EVAL_SHAPES = [(3, 1000, 40, 10, 25), (2, 7, 33, 4, 5), (1, 256, 40, 10, 3)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(("k", "n", "length", "o", "c"), EVAL_SHAPES)
def test_evaluation_equals_common_evaluate_run_by_run(dtype, k, n, length, o, c):
    models, params = _group(k, length, o, c, dtype)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(n, length, generator=gen, dtype=dtype)
    y = torch.randint(0, o, (n,), generator=gen)
    got = vcnn.CNNKernel(models[0], 0.0, dtype).evaluate(params, x, y)
    for i, model in enumerate(models):
        ref = evaluation.evaluate(model, x, y, torch.nn.CrossEntropyLoss(), classification=True)
        assert math.isclose(got[i]["loss"], ref["loss"], rel_tol=TOLERANCE[dtype])
        assert got[i]["accuracy"] == ref["accuracy"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: (p["linear.weight"].zero_(), p["linear.bias"].zero_()),  # all logits tied
        lambda p: p["linear.bias"][:, 3].fill_(float("nan")),  # one class's logit NaN
        lambda p: p["linear.bias"].fill_(float("nan")),  # every logit NaN
    ],
    ids=["ties", "one NaN logit", "all NaN"],
)
def test_evaluation_picks_the_class_torch_argmax_picks(tamper):
    models, params = _group(2, 40, 10, 4, torch.float64)
    with torch.no_grad():
        tamper(params)
        for i, model in enumerate(models):
            for name, p in model.named_parameters():
                p.copy_(params[name][i])
    x = torch.randn(50, 40, dtype=torch.float64)
    y = torch.arange(50) % 10
    got = vcnn.CNNKernel(models[0], 0.0, torch.float64).evaluate(params, x, y)
    for i, model in enumerate(models):
        ref = evaluation.evaluate(model, x, y, torch.nn.CrossEntropyLoss(), classification=True)
        assert got[i]["accuracy"] == ref["accuracy"]
        assert got[i]["loss"] == pytest.approx(ref["loss"], rel=1e-12, nan_ok=True)


def _cnn():
    return MNIST1DCNN(40, 10)


@pytest.mark.parametrize(
    ("model", "loss", "options", "dtype", "mix", "expected"),
    [
        (_cnn, "cross_entropy", {}, torch.float32, False, True),
        (_cnn, "cross_entropy", {}, torch.float64, False, True),
        (_cnn, "cross_entropy", {"reduction": "sum"}, torch.float32, False, False),
        (_cnn, "cross_entropy", {}, torch.float32, True, False),  # mixup / cutmix
        (_cnn, "nll", {}, torch.float32, False, False),
        (_cnn, "cross_entropy", {}, torch.float16, False, False),
        (lambda: MNIST1DMLP(40, 10), "cross_entropy", {}, torch.float32, False, False),
    ],
)
def test_which_groups_the_kernel_computes(model, loss, options, dtype, mix, expected):
    m = model().to(dtype)
    assert vcnn.applicable(m, loss, options, dtype, mix=mix) is expected


def test_a_frozen_layer_is_left_to_the_traced_graph():
    m = _cnn()
    m.conv1.weight.requires_grad_(False)
    assert not vcnn.applicable(m, "cross_entropy", {}, torch.float32)


def _configs(n, **kw):
    base = dict(problem="mnist1d", model="cnn", optimizer="adam", batch_size=32, steps=6,
                eval_every=3, evaluate_test=False)  # fmt: skip
    base.update(kw)
    return [RunConfig(**base, hyper={"lr": 1e-3 * (i + 1)}, seed=i, name=f"r{i}") for i in range(n)]


def _finals(results):
    return [torch.cat([p.detach().flatten() for p in r.model.parameters()]) for r in results]


def test_a_vectorized_cnn_group_steps_through_the_kernel(mnist1d, monkeypatch):
    calls = []
    real = vcnn.CNNKernel.__call__

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(vcnn.CNNKernel, "__call__", counted)
    got = train_many(_configs(3), data=mnist1d, mode="vmap", progress=False)
    assert len(calls) >= 6  # every training step (and the set-up's first-batch check)
    monkeypatch.setattr(vectorized, "_KERNEL", False)
    ref = train_many(_configs(3), data=mnist1d, mode="vmap", progress=False)
    for a, b in zip(_finals(got), _finals(ref), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_the_first_batch_check_takes_its_reference_run_by_run_not_through_vmap(
    mnist1d, monkeypatch
):
    """The check's reference is each run's loss and gradients by plain autograd: vmap's
    cross-entropy goes through a decomposition that imports SymPy (about a CPU second in each
    worker process of a comparison), and the kernel is trusted as before."""
    monkeypatch.setattr(vectorized, "_verified", {})
    looped, vmapped = [], []
    real = vectorized.Gradients._looped_losses_and_grads

    def counted(self, *args, **kwargs):
        looped.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(vectorized.Gradients, "_looped_losses_and_grads", counted)
    monkeypatch.setattr(vectorized.Gradients, "_losses_fn", lambda *a, **k: vmapped.append(1))
    with warnings.catch_warnings():  # (the kernel agrees: nothing announced)
        warnings.simplefilter("error", RuntimeWarning)
        train_many(_configs(3), data=mnist1d, mode="vmap", progress=False)
    assert looped == [1] and vmapped == []
    assert all(vectorized._verified.values()) and vectorized._verified


def _disagreeing(monkeypatch):
    monkeypatch.setattr(vectorized, "_verified", {})
    real = vcnn.CNNKernel.__call__

    def wrong(self, *args, **kwargs):
        losses, grads = real(self, *args, **kwargs)
        grads["conv2.bias"] = grads["conv2.bias"] + 1.0
        return losses, grads

    monkeypatch.setattr(vcnn.CNNKernel, "__call__", wrong)


def _no_compiler(monkeypatch):
    monkeypatch.setattr(vcnn, "_library", lambda: "no C++ compiler here")


@pytest.mark.parametrize(
    ("breaks", "announced"),
    [
        (_disagreeing, r"disagreed with autograd \(run by run\)"),
        (_no_compiler, r"unavailable \(no C\+\+ compiler here\)"),
    ],
    ids=["kernel disagrees", "no compiler"],
)
def test_a_kernel_not_used_is_announced_once_and_the_traced_graph_trains(
    mnist1d, monkeypatch, breaks, announced
):
    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
    breaks(monkeypatch)
    with pytest.warns(RuntimeWarning, match=announced) as record:
        got = train_many(_configs(2), data=mnist1d, mode="vmap", progress=False)
        train_many(_configs(2), data=mnist1d, mode="vmap", progress=False)
    assert sum("compiled MNIST-1D CNN step" in str(w.message) for w in record) == 1
    monkeypatch.setattr(vectorized, "_KERNEL", False)
    ref = train_many(_configs(2), data=mnist1d, mode="vmap", progress=False)
    for a, b in zip(_finals(got), _finals(ref), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _has_cpu_flags(*flags: str) -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            line = next((ln for ln in fh if ln.startswith("flags")), "")
    except OSError:
        return False
    return all(f in line.split() for f in flags)


#: instruction sets the kernel is also built for here (``-march``), whatever this CPU is:
#: without AVX-512 its vectors are 32 bytes (AVX) or 16 (SSE), blocks of other sizes
OTHER_BUILDS = {
    "avx2": ("-march=haswell", ("avx2", "fma")),
    "sse2": ("-march=x86-64", ("sse2",)),
}


@pytest.mark.parametrize("build", OTHER_BUILDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_the_kernel_built_for_other_instruction_sets_equals_autograd(build, dtype, monkeypatch):
    march, needs = OTHER_BUILDS[build]
    if not _has_cpu_flags(*needs):
        pytest.skip(f"this CPU cannot run code built with {march}")
    flags = [march if f == "-march=native" else f for f in _native._FLAGS]
    monkeypatch.setattr(_native, "_FLAGS", flags)
    vcnn._library.cache_clear()
    try:
        for k, b, length, o, c, eps, shared in SHAPES:
            models, params = _group(k, length, o, c, dtype)
            gen = torch.Generator().manual_seed(1)
            shape = (b, length) if shared else (k, b, length)
            x = torch.randn(*shape, generator=gen, dtype=dtype)
            y = torch.randint(0, o, shape[:-1], generator=gen)
            losses, grads = vcnn.CNNKernel(models[0], eps, dtype)(
                params, x, y, None if shared else 0
            )
            tol = TOLERANCE[dtype]
            for i, model in enumerate(models):
                xi, yi = (x, y) if shared else (x[i], y[i])
                ref_loss, ref_grads = _reference(model, xi, yi, eps)
                assert math.isclose(float(losses[i]), float(ref_loss), rel_tol=tol)
                for name, g in ref_grads.items():
                    err = float((grads[name][i] - g).abs().max())
                    assert err <= tol * float(g.abs().max()), (build, name, err)
            xe = torch.randn(300, length, generator=gen, dtype=dtype)
            ye = torch.randint(0, o, (300,), generator=gen)
            got = vcnn.CNNKernel(models[0], 0.0, dtype).evaluate(params, xe, ye)
            for i, model in enumerate(models):
                ref = evaluation.evaluate(
                    model, xe, ye, torch.nn.CrossEntropyLoss(), classification=True
                )
                assert math.isclose(got[i]["loss"], ref["loss"], rel_tol=TOLERANCE[dtype])
                assert got[i]["accuracy"] == ref["accuracy"]
    finally:
        vcnn._library.cache_clear()
