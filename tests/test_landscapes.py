"""Analytic landscapes: lecture derivatives, known critical points, autograd vs references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch

from descentlab.problems import landscapes as L

# Outcomes computed from training or iterating in float arithmetic: `make test` runs them
# again under ATEN_CPU_CAPABILITY=default and =avx2 (pytest -m arith).
pytestmark = pytest.mark.arith

# Every landscape in the registry plus non-default parametrisations.
CASES = [(name, {}) for name in L.NAMES] + [
    ("quadratic", {"kappa": 100.0, "dim": 5, "rotate": True}),
    ("rosenbrock", {"dim": 4}),
    ("rastrigin", {"dim": 3}),
    ("noisy_quadratic", {"h": 2.0, "sigma": 0.5, "dim": 3}),
]
CASE_IDS = [f"{n}{'-' + '-'.join(f'{k}{v}' for k, v in p.items()) if p else ''}" for n, p in CASES]

# The lectures' worked derivatives (seed 001), written independently of the landscapes.
DERIVATIVES = [
    ("cubic", lambda x: 9 * x[..., :1] ** 2 - 2),  # d/dx 3x^3 - 2x + 1
    ("chain_cubic", lambda x: 6 * (2 * x[..., :1] - 1) ** 2),  # chain rule on (2x - 1)^3
    ("parabola", lambda x: 2 * x[..., :1] - 4),  # d/dx x^2 - 4x + 6
    ("xsinx", lambda x: torch.sin(x) + x * torch.cos(x)),  # product rule
    (
        "cubic2d",  # partials of 3xy^2 + 4x^3 - 5y^2 + 1
        lambda p: torch.stack(
            [3 * p[..., 1] ** 2 + 12 * p[..., 0] ** 2, 6 * p[..., 0] * p[..., 1] - 10 * p[..., 1]],
            -1,
        ),
    ),
    ("bowl", lambda p: torch.stack([6 * (p[..., 0] - 2), 2 * (p[..., 1] - 2)], -1)),
]


def _random_points(f: L.Landscape, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lo = torch.tensor([a for a, _ in f.domain], dtype=torch.float64)
    hi = torch.tensor([b for _, b in f.domain], dtype=torch.float64)
    return lo + (hi - lo) * torch.rand(n, f.dim, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(("name", "derivative"), DERIVATIVES, ids=[d[0] for d in DERIVATIVES])
def test_lecture_derivatives(name, derivative):
    f = L.get(name)
    x = _random_points(f, 64)
    expected = derivative(x)
    torch.testing.assert_close(L.grad(f, x), expected, rtol=1e-12, atol=1e-12)
    # The definition as a limit agrees as well (central differences, ~10 digits).
    torch.testing.assert_close(L.finite_difference_grad(f, x), expected, rtol=1e-7, atol=1e-7)


def test_lecture_derivative_values_at_worked_points():
    # Hand-computed: f'(1) = 9 - 2 = 7; f_x(1, 2) = 12 + 12 = 24, f_y(1, 2) = 12 - 20 = -8;
    # d/dx (2x-1)^3 at x = 1 is 6 * 1 = 6.
    assert L.grad(L.get("cubic"), torch.tensor([1.0])).item() == 7.0
    assert L.grad(L.get("cubic2d"), torch.tensor([1.0, 2.0])).tolist() == [24.0, -8.0]
    assert L.grad(L.get("chain_cubic"), torch.tensor([1.0])).item() == 6.0


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_critical_points_value_gradient_and_curvature(name, params):
    f = L.get(name, **params)
    assert f.points, "every landscape documents at least one critical point"
    for p in f.points:
        x = torch.tensor(p.x, dtype=torch.float64)
        assert f(x).item() == pytest.approx(p.value, abs=1e-9), p
        assert L.grad(f, x).abs().max().item() < 1e-7, p
        eig = torch.linalg.eigvalsh(L.hessian(f, x))
        if p.is_minimum:
            assert eig.min() > 1e-6, (p, eig)
        elif p.kind == "saddle":
            assert eig.min() < -1e-6 < 1e-6 < eig.max(), (p, eig)
        elif p.kind == "local maximum":
            assert eig.max() < -1e-6, (p, eig)
        else:  # inflection / degenerate: singular Hessian, and not a minimum
            assert eig.abs().min() < 1e-9, (p, eig)
    g = f.global_minimum
    if g is not None:
        # No sampled point of the domain is below the global minimum.
        assert f(_random_points(f, 4096)).min().item() >= g.value - 1e-9


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_minima_agree_with_scipy(name, params):
    f = L.get(name, **params)
    for p in f.minima:
        x0 = np.asarray(p.x) + 0.05 * np.linspace(1.0, -1.0, f.dim)

        def fun(v):
            return f(torch.as_tensor(v, dtype=torch.float64)).item()

        # scipy's BFGS with its own finite-difference gradient: independent of our autograd.
        res = scipy.optimize.minimize(fun, x0, method="BFGS", options={"gtol": 1e-9})
        np.testing.assert_allclose(res.x, p.x, atol=2e-4)
        assert res.fun == pytest.approx(p.value, abs=1e-7)


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_autograd_matches_finite_differences(name, params):
    f = L.get(name, **params)
    x = _random_points(f, 32, seed=1)
    assert L.gradient_error(f, x) < 1e-6


def test_finite_difference_against_closed_form():
    # exp has itself as derivative: an independent check of the FD formula and its step.
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)[:, None]
    fd = L.finite_difference_grad(lambda v: torch.exp(v[..., 0]), x)
    torch.testing.assert_close(fd, torch.exp(x), rtol=1e-9, atol=0.0)


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_batched_evaluation_matches_rows(name, params):
    f = L.get(name, **params)
    x = _random_points(f, 6, seed=2)
    batched = f(x)
    assert batched.shape == (6,)
    rows = torch.stack([f(x[k]) for k in range(6)])
    torch.testing.assert_close(batched, rows, rtol=0, atol=0)
    assert f(x.reshape(2, 3, f.dim)).shape == (2, 3)
    assert f(x.float()).dtype == torch.float32


def test_quadratic_condition_number_and_rotation():
    f = L.get("quadratic", kappa=100.0, dim=4, L=2.0, rotate=True)
    H = L.hessian(f, torch.zeros(4, dtype=torch.float64))
    eig = torch.linalg.eigvalsh(H)
    assert eig.max().item() == pytest.approx(2.0, rel=1e-12)
    assert (eig.max() / eig.min()).item() == pytest.approx(100.0, rel=1e-10)
    assert f.params["mu"] == pytest.approx(0.02)
    assert f.lr == pytest.approx(2 / (2.0 + 0.02))
    assert H[0, 1].abs() > 1e-3  # rotated: not axis-aligned


def test_noisy_quadratic_gradient_noise_has_stated_variance():
    f = L.get("noisy_quadratic", h=2.0, sigma=0.5, dim=3)
    gen = torch.Generator().manual_seed(0)
    x = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64).expand(200_000, 3).contiguous()
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(f.sample(x, generator=gen).sum(), x)
    noise = g - 2.0 * x.detach()
    assert noise.mean(0).abs().max().item() < 5 * 0.5 / math.sqrt(200_000)
    torch.testing.assert_close(
        noise.var(0), torch.full((3,), 0.25, dtype=torch.float64), rtol=0.02, atol=0
    )
    # Deterministic landscapes: sample is f itself.
    r = L.get("rosenbrock")
    p = torch.tensor([[0.3, 0.2]])
    assert torch.equal(r.sample(p), r(p))


def test_sgd_stationary_loss_closed_form_against_recursion():
    # Iterate the second-moment recursion v <- (1 - lr h)^2 v + lr^2 sigma^2 to its fixed point.
    lr, h, sigma, dim = 0.3, 1.5, 0.7, 4
    v = 0.0
    for _ in range(2000):
        v = (1 - lr * h) ** 2 * v + lr**2 * sigma**2
    expected = 0.5 * h * v * dim
    assert L.sgd_stationary_loss(lr, h=h, sigma=sigma, dim=dim) == pytest.approx(expected)
    with pytest.raises(ValueError, match="lr \\* h must be < 2"):
        L.sgd_stationary_loss(1.5, h=1.5)


def test_unknown_name_lists_valid_names():
    with pytest.raises(KeyError) as err:
        L.get("banana")
    msg = str(err.value)
    assert "banana" in msg
    assert all(n in msg for n in L.NAMES)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("quadratic", {"kappa": 0.5}, "kappa must be a finite number >= 1, got 0.5"),
        ("quadratic", {"kappa": 10.0, "dim": 1}, "kappa must be 1 when dim == 1"),
        ("quadratic", {"dim": 0}, "dim must be an integer >= 1, got 0"),
        ("rosenbrock", {"dim": 1}, "dim must be an integer >= 2, got 1"),
        ("noisy_quadratic", {"sigma": -1.0}, "sigma must be a finite number > 0, got -1.0"),
        ("noisy_quadratic", {"h": float("nan")}, "h must be a finite number > 0"),
        ("bowl", {"kappa": 3}, "bad parameters"),
    ],
)
def test_bad_parameters(name, params, match):
    with pytest.raises(ValueError, match=match):
        L.get(name, **params)


def test_wrong_input_dimension_is_a_clear_error():
    f = L.get("himmelblau")
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 2\).*got \(4, 3\)"):
        f(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="floating-point"):
        f(torch.zeros(4, 2, dtype=torch.long))


def test_listing_names_every_landscape():
    text = L.listing()
    for name in L.NAMES:
        assert name in text
        assert L.get(name).plain in text
