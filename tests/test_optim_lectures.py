"""Lecture variants against float64 loops written directly from the lectures' equations,
and theory where it gives a number."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _models import digits_tensors

from descentlab import optim
from descentlab.book import reference as R

STEPS = 200


def _problem(seed: int = 0):
    """Softmax regression on digits in float64: (loss(w) as torch, gradient as numpy)."""
    x, y = digits_tensors()
    x = x[:400]
    y = y[:400]
    rng = np.random.default_rng(seed)
    w0 = rng.normal(scale=0.1, size=(x.shape[1], 10))

    def loss_t(w: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(x @ w, y)

    def grad_np(w: np.ndarray) -> np.ndarray:
        wt = torch.tensor(w, requires_grad=True)
        loss_t(wt).backward()
        return wt.grad.numpy().copy()

    return w0, loss_t, grad_np


def _run(opt_factory, w0, loss_t, steps=STEPS, closure=False, lrs=None):
    w = torch.nn.Parameter(torch.tensor(w0))
    opt = opt_factory([w])
    for t in range(steps):
        if lrs is not None:
            for g in opt.param_groups:
                g["lr"] = lrs[t]

        def clo():
            opt.zero_grad()
            loss = loss_t(w)
            loss.backward()
            return loss

        if closure:
            opt.step(clo)
        else:
            clo()
            opt.step()
    return w.detach().numpy()


# --- reference loops: descentlab.book.reference (float64 NumPy, the lectures' notation), -----
# shared with the lecture book; each returns every iterate, the last is compared here.


VARIANTS = [
    # (id, descentlab factory, reference(w0, grad), needs closure)
    (
        "velocity-momentum",
        lambda p: optim.Momentum(p, lr=0.1, momentum=0.9, form="velocity"),
        lambda w, g: R.velocity(w, g, 0.1, 0.9, STEPS)[-1],
        False,
    ),
    (
        "lookahead-nesterov",
        lambda p: optim.Nesterov(p, lr=0.1, momentum=0.9, lookahead=True),
        lambda w, g: R.lookahead_nesterov(w, g, 0.1, 0.9, STEPS)[-1],
        True,
    ),
    (
        "adagrad-eps-inside",
        lambda p: optim.Adagrad(p, lr=0.1, eps=1e-3, eps_inside_sqrt=True),
        lambda w, g: R.adagrad(w, g, 0.1, 1e-3, STEPS, inside=True)[-1],
        False,
    ),
    (
        "rmsprop-eps-inside",
        lambda p: optim.RMSprop(p, lr=1e-2, alpha=0.9, eps=1e-4, eps_inside_sqrt=True),
        lambda w, g: R.rmsprop(w, g, 1e-2, 0.9, 1e-4, STEPS, inside=True)[-1],
        False,
    ),
    (
        "adam-eps-inside-seed002",
        lambda p: optim.Adam(p, lr=1e-2, eps=1e-6, eps_inside_sqrt=True),
        lambda w, g: R.adam_folded(w, g, 1e-2, 0.9, 0.999, 1e-6, STEPS)[-1],
        False,
    ),
    (
        "adam-no-bias-correction",
        lambda p: optim.Adam(p, lr=1e-2, eps=1e-7, bias_correction=False),
        lambda w, g: R.adam(w, g, 1e-2, 0.9, 0.999, 1e-7, STEPS, bias_correction=False)[-1],
        False,
    ),
    (
        "adadelta-seed002",
        lambda p: optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6),
        lambda w, g: R.adadelta(w, g, 0.9, 1e-6, STEPS)[-1],
        False,
    ),
    (
        "adam-amsgrad",
        lambda p: optim.Adam(p, lr=1e-2, amsgrad=True),
        lambda w, g: R.adam_amsgrad(w, g, 1e-2, 0.9, 0.999, 1e-8, STEPS)[-1],
        False,
    ),
]


@pytest.mark.parametrize(
    ("factory", "reference", "closure"), [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS]
)
def test_variant_matches_lecture_equations(factory, reference, closure):
    w0, loss_t, grad_np = _problem()
    ours = _run(factory, w0, loss_t, closure=closure)
    ref = reference(w0.copy(), grad_np)
    assert np.abs(ref - w0).max() > 1e-2, "reference did not move: vacuous comparison"
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-11)


def test_momentum_forms_equal_at_constant_lr_and_differ_under_step_decay():
    w0, loss_t, grad_np = _problem()
    torch_form = _run(lambda p: optim.Momentum(p, lr=0.1, momentum=0.9), w0, loss_t)
    velocity = _run(lambda p: optim.Momentum(p, lr=0.1, momentum=0.9, form="velocity"), w0, loss_t)
    np.testing.assert_allclose(torch_form, velocity, rtol=1e-9, atol=1e-11)

    lrs = [0.1 if t < STEPS // 2 else 0.01 for t in range(STEPS)]  # step decay at t = 100
    torch_sched = _run(lambda p: optim.Momentum(p, lr=0.1, momentum=0.9), w0, loss_t, lrs=lrs)
    vel_sched = _run(
        lambda p: optim.Momentum(p, lr=0.1, momentum=0.9, form="velocity"), w0, loss_t, lrs=lrs
    )
    np.testing.assert_allclose(
        torch_sched,
        R.cs231n_momentum(w0.copy(), grad_np, 0.1, 0.9, STEPS, lrs=lrs)[-1],
        rtol=1e-9,
        atol=1e-11,
    )
    np.testing.assert_allclose(
        vel_sched,
        R.velocity(w0.copy(), grad_np, 0.1, 0.9, STEPS, lrs=lrs)[-1],
        rtol=1e-9,
        atol=1e-11,
    )
    assert np.abs(torch_sched - vel_sched).max() > 1e-4


def test_change_of_variables_nesterov_tracks_lookahead_point():
    """Seed 003: with x~ = x + a v, the change-of-variables iterates are the lookahead
    method's shifted iterates."""
    w0, loss_t, grad_np = _problem()
    lr, a = 0.1, 0.9
    cov = _run(
        lambda p: optim.Nesterov(p, lr=lr, momentum=a, form="velocity"), w0, loss_t, steps=50
    )
    v = np.zeros_like(w0)
    w = w0.copy()
    for _ in range(50):
        v = a * v - lr * grad_np(w + a * v)
        w = w + v
    np.testing.assert_allclose(cov, w + a * v, rtol=1e-9, atol=1e-11)
    torch_form = _run(lambda p: optim.Nesterov(p, lr=lr, momentum=a), w0, loss_t, steps=50)
    np.testing.assert_allclose(torch_form, cov, rtol=1e-9, atol=1e-11)


def test_adam_first_step_with_and_without_bias_correction():
    """Seed 003: without bias correction the first step is (1-b1)/sqrt(1-b2) times larger."""
    g = torch.tensor([0.3, -2.0, 5e-3], dtype=torch.float64)
    steps = {}
    for bc in (True, False):
        w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        opt = optim.Adam([w], lr=1e-3, eps=0.0, bias_correction=bc)
        w.grad = g.clone()
        opt.step()
        steps[bc] = w.detach()
    np.testing.assert_allclose(steps[True].numpy(), -1e-3 * np.sign(g.numpy()), rtol=1e-12)
    ratio = (1 - 0.9) / math.sqrt(1 - 0.999)
    np.testing.assert_allclose((steps[False] / steps[True]).numpy(), ratio, rtol=1e-12)


def _quadratic(kappa: float, d: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    eig = np.geomspace(1.0, kappa, d)
    return torch.tensor((q * eig) @ q.T), eig


def test_heavy_ball_rate_on_quadratic():
    """Polyak's heavy ball with optimal (lr, momentum) contracts at
    (sqrt(k)-1)/(sqrt(k)+1) per step on a quadratic with condition number k."""
    kappa = 100.0
    A, eig = _quadratic(kappa)
    L, mu = eig.max(), eig.min()
    lr = 4 / (math.sqrt(L) + math.sqrt(mu)) ** 2
    mom = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2
    w = torch.nn.Parameter(torch.ones(A.shape[0], dtype=torch.float64))
    opt = optim.SGD([w], lr=lr, momentum=mom)
    norms = []
    for _ in range(400):
        opt.zero_grad()
        (0.5 * w @ A @ w).backward()
        opt.step()
        norms.append(float(w.detach().norm()))
    t1, t2 = 200, 399
    measured = (norms[t2] / norms[t1]) ** (1 / (t2 - t1))
    theory = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    # Repeated eigenvalue of the iteration matrix: errors decay as t * rate^t.
    theory_with_poly = theory * (t2 / t1) ** (1 / (t2 - t1))
    assert measured == pytest.approx(theory_with_poly, rel=0.01)


def test_gd_rate_on_quadratic():
    """Gradient descent with step 2/(L+mu) contracts at (k-1)/(k+1)."""
    kappa = 100.0
    A, eig = _quadratic(kappa)
    w = torch.nn.Parameter(torch.ones(A.shape[0], dtype=torch.float64))
    opt = optim.SGD([w], lr=2 / (eig.max() + eig.min()))
    norms = []
    for _ in range(300):
        opt.zero_grad()
        (0.5 * w @ A @ w).backward()
        opt.step()
        norms.append(float(w.detach().norm()))
    measured = (norms[-1] / norms[100]) ** (1 / (len(norms) - 1 - 100))
    assert measured == pytest.approx((kappa - 1) / (kappa + 1), rel=0.01)
