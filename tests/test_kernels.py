"""The one-call trajectory kernel against the step-by-step path (autograd + optimizer steps).

The reference is ``trajectories.run(..., kernel=False)``: torch evaluates the landscape,
autograd differentiates it, and the optimizer takes one step at a time -- a path checked in
tests/test_trajectories.py against torch.optim and separate runs.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from descentlab import _announce, _native, optim
from descentlab.problems import kernels
from descentlab.problems import landscapes as L
from descentlab.problems import trajectories as T

pytestmark = pytest.mark.skipif(_native.compiler() is None, reason="needs a C++ compiler")


def _starts(f: L.Landscape, k: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lo = torch.tensor([a for a, _ in f.domain], dtype=torch.float64)
    hi = torch.tensor([b for _, b in f.domain], dtype=torch.float64)
    return lo + (hi - lo) * torch.rand(k, f.dim, generator=g, dtype=torch.float64)


def _both(f, optimizer, x0, steps, **kw):
    fast = T.run(f, optimizer, x0, steps, **kw)
    slow = T.run(f, optimizer, x0, steps, kernel=False, **kw)
    assert fast.kernel and not slow.kernel
    return fast, slow


def _assert_same(fast, slow, tol=1e-12):
    torch.testing.assert_close(fast.paths, slow.paths, rtol=tol, atol=tol)
    torch.testing.assert_close(fast.losses, slow.losses, rtol=tol, atol=tol)
    assert torch.equal(fast.diverged_at, slow.diverged_at)
    assert torch.equal(fast.diverged, slow.diverged)


# Small, stable learning rates: sin and cos come from libm in the kernel and from torch's
# vectorized SLEEF in the reference (ulp-level differences that a chaotic run would amplify).
LANDSCAPES = [
    ("parabola", 0.1),
    ("xsinx", 0.05),
    ("cubic", 0.01),
    ("chain_cubic", 0.005),
    ("bowl", 0.05),
    ("cubic2d", 0.01),
    ("ravine", 0.05),
    ("saddle", 0.05),
    ("rosenbrock", 1e-3),
    ("beale", 1e-3),
    ("rastrigin", 1e-3),
    ("himmelblau", 5e-3),
    ("quadratic", 0.1),
]


@pytest.mark.parametrize("name,lr", LANDSCAPES)
def test_every_landscape_adam_float64(float64, name, lr):
    f = L.get(name)
    x0 = _starts(f, 37)  # not a multiple of the block size: a partial block too
    lrs = torch.linspace(lr / 4, lr, 37, dtype=torch.float64)
    fast, slow = _both(f, "adam", x0, 120, lr=lrs)
    _assert_same(fast, slow)


def test_rotated_quadratic_and_rastrigin_in_3d(float64):
    for f in (L.quadratic(kappa=30.0, dim=3, rotate=True), L.rastrigin(dim=3)):
        x0 = _starts(f, 20)
        fast, slow = _both(f, "sgd", x0, 80, lr=1e-3)
        _assert_same(fast, slow)


OPTIMIZERS = [
    ("sgd", 1e-3, {"momentum": 0.9}),
    ("sgd", 1e-3, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("momentum", 1e-3, {"momentum": 0.8}),
    ("nadam", 1e-2, {}),
    ("radam", 1e-2, {}),
    ("rmsprop", 1e-3, {"centered": True, "momentum": 0.5}),
    ("adagrad", 5e-2, {"lr_decay": 0.01}),
    ("adadelta", 1.0, {}),
    ("adamw", 1e-2, {"amsgrad": True}),
]


@pytest.mark.parametrize("name,lr,hyper", OPTIMIZERS)
def test_every_named_optimizer_on_rosenbrock_float64(float64, name, lr, hyper):
    x0 = _starts(L.get("rosenbrock"), 40, seed=1)
    fast, slow = _both("rosenbrock", name, x0, 150, lr=lr, hyper=hyper)
    _assert_same(fast, slow)


def test_lookahead_runs_in_the_kernel(float64):
    """Lookahead's slow-weight sync is element-local in the form: the kernel takes the whole
    chain (it ran step by step before) and agrees with the step-by-step path."""
    x0 = _starts(L.get("rosenbrock"), 40, seed=5)
    fast, slow = _both("rosenbrock", "lookahead", x0, 150, lr=1e-2, hyper={"sync_period": 4})
    _assert_same(fast, slow)


def test_composed_chain_with_per_run_lr_and_momentum(float64):
    rule = optim.chain(
        optim.clip_by_value(5.0), optim.add_l2(1e-3), optim.trace(0.9), optim.scale_by_lr()
    )
    x0 = _starts(L.get("himmelblau"), 1, seed=2).expand(24, 2)
    lr = torch.logspace(-3.5, -2, 6, dtype=torch.float64).repeat_interleave(4)
    mom = torch.tensor([0.0, 0.5, 0.9, 0.99], dtype=torch.float64).repeat(6)
    fast, slow = _both("himmelblau", rule, x0, 200, lr=lr, hyper={"momentum": mom})
    _assert_same(fast, slow)
    # the 24 runs really differ (per-run values reached the kernel)
    assert fast.final_points.unique(dim=0).shape[0] == 24


def test_divergence_and_bound_freeze_runs_like_the_step_by_step_path(float64):
    x0 = _starts(L.get("rosenbrock"), 50, seed=3)
    lr = torch.logspace(-4, -1.5, 50, dtype=torch.float64)  # the large ones blow up
    fast, slow = _both("rosenbrock", "sgd", x0, 100, lr=lr, hyper={"momentum": 0.9}, bound=20.0)
    assert 0 < int(fast.diverged.sum()) < 50
    _assert_same(fast, slow)
    # frozen at the last valid point, loss inf in final_losses
    k = int(torch.nonzero(fast.diverged)[0])
    t = int(fast.diverged_at[k])
    assert torch.equal(fast.paths[k, t:], fast.paths[k, t - 1].expand(fast.steps + 1 - t, 2))
    assert fast.final_losses[k] == math.inf
    # unbounded overflow to inf/NaN is caught too
    fast, slow = _both("cubic", "sgd", torch.tensor([[1.0], [0.3]]), 60, lr=[0.5, 0.01])
    assert fast.diverged.tolist() == [True, False]
    _assert_same(fast, slow)


def test_float32_is_bit_identical():
    x0 = _starts(L.get("rosenbrock"), 70, seed=4).float()
    fast, slow = _both("rosenbrock", "adam", x0, 300, lr=1e-2)
    assert fast.paths.dtype == torch.float32
    assert torch.equal(fast.paths, slow.paths) and torch.equal(fast.losses, slow.losses)


def test_what_the_kernel_does_not_cover_takes_the_step_by_step_path():
    x0 = torch.zeros(3, 2)
    cases = [
        ("noisy_quadratic", "sgd", {}),  # stochastic gradients
        ("rosenbrock", optim.chain(optim.clip_by_global_norm(1.0), optim.scale_by_lr()), {}),
        ("rosenbrock", "nesterov", {"lookahead": True}),
        ("rosenbrock", torch.optim.Adam, {}),
    ]
    for land, opt, hyper in cases:
        tr = T.run(land, opt, x0, 3, lr=0.01, hyper=hyper)
        assert not tr.kernel
        with pytest.raises(ValueError, match="kernel=True"):
            T.run(land, opt, x0, 3, lr=0.01, hyper=hyper, kernel=True)
    assert not T.run("rosenbrock", "sgd", x0, 3, lr=lambda t: 0.01).kernel  # a schedule
    with pytest.raises(ValueError, match="kernel must be"):
        T.run("rosenbrock", "sgd", x0, 3, lr=0.01, kernel="yes")


def test_a_different_function_under_a_registered_name_is_caught(float64, monkeypatch):
    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
    real = L.get("bowl")
    fake = L.Landscape(
        name="bowl",
        formula=real.formula,
        plain=real.plain,
        description=real.description,
        dim=2,
        fn=lambda x: 2 * (x[..., 0] - 2) ** 2 + (x[..., 1] - 2) ** 2,
        points=real.points,
        domain=real.domain,
        start=real.start,
        lr=real.lr,
    )
    with pytest.warns(RuntimeWarning, match="does not match its closed form"):
        tr = T.run(fake, "sgd", torch.zeros(2, 2), 5, lr=0.1)
    assert not tr.kernel
    # and the step-by-step result is the fake function's
    assert tr.losses[0, 0].item() == pytest.approx(12.0)


def test_no_compiler_is_announced_once(monkeypatch):
    monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
    monkeypatch.setattr(_native, "compiler", lambda: None)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        tr = T.run("bowl", "sgd", torch.zeros(2, 2), 5, lr=0.1)
    assert not tr.kernel
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        T.run("bowl", "sgd", torch.zeros(2, 2), 5, lr=0.1)


def test_coefficients_that_ignore_the_step_are_detected():
    assert not kernels._reads_step(lambda h, t, e: -float(h["lr"]))
    assert kernels._reads_step(lambda h, t, e: 1 - float(h["betas"][0]) ** t)

    def inner(h, t, e):
        return (lambda: t)()

    assert kernels._reads_step(inner)


def _registered_instances() -> list[L.Landscape]:
    """Every registered landscape, at its default and at every dimension its factory takes
    (up to the kernels' largest): drawn from the registry, so a new one is checked too."""
    import inspect

    out = []
    for name in L.NAMES:
        dims = [None]
        if "dim" in inspect.signature(L._REGISTRY[name]).parameters:
            dims += list(range(1, kernels._MAX_DIM + 1))
        for d in dims:
            try:
                out.append(L.get(name) if d is None else L.get(name, dim=d))
            except ValueError:
                continue  # a dimension this landscape does not take
    return [f for f in out if not f.stochastic]


INSTANCES = _registered_instances()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("f", INSTANCES, ids=[f"{f.name}-{f.dim}d" for f in INSTANCES])
def test_every_closed_form_is_the_landscapes_autograd_gradient(f, dtype, monkeypatch):
    """The C the trajectory kernel runs against the landscape's own torch function and
    autograd at 256 points of its domain, to a few ulps (libm's sin/cos/pow against torch's
    vectorized ones; the polynomial ones are bitwise); a landscape without a closed form must
    announce that its trajectories run step by step."""
    x = _starts(f, 256).to(dtype)
    got = kernels.closed_form_value_and_grad(f, x)
    if got is None:
        monkeypatch.setattr(_announce, "PROCESS", _announce.Once())
        opt = optim.SGD([torch.zeros(1, f.dim, dtype=dtype, requires_grad=True)], lr=0.1)
        with pytest.warns(RuntimeWarning, match="no closed form .* step by step"):
            assert not kernels.supports(f, opt, dtype)
        return
    want = L.value_and_grad(f, x)
    eps = torch.finfo(dtype).eps
    for k, g, w in zip(("value", "gradient"), got, want, strict=True):
        err = float(((g - w).abs() / w.abs().clamp(min=1)).max())
        assert err <= 8 * eps, f"{f.name} ({f.dim}-D): the kernel's {k} is {err:.3g} off"
