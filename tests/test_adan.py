"""Adan (Xie et al., 2022) against a float64 loop written from the paper's Algorithm 1 and
against pytorch_optimizer's Adan, on both CPU backends; the generic checks of a rule written
in the form (fused against eager, the float64 evaluation of the form...) come from the
registry (tests/test_form.py and the others)."""

from __future__ import annotations

import math

import pytest
import torch

from descentlab import optim

STEPS = 40


def _paper(x0, grads, lr, betas, eps, wd):
    """Algorithm 1 of Xie et al. (2022) with the paper's weights of the new values
    beta_i' = 1 - beta_i, the decoupled decay of AdamW, and bias corrections as in the authors'
    code: m, v, n start at 0 and the first gradient difference is 0."""
    b1, b2, b3 = (1 - b for b in betas)  # the paper's
    x = x0.clone()
    m = torch.zeros_like(x)
    v = torch.zeros_like(x)
    n = torch.zeros_like(x)
    prev = None
    for k, g in enumerate(grads, start=1):
        diff = torch.zeros_like(g) if prev is None else g - prev
        m = (1 - b1) * m + b1 * g
        v = (1 - b2) * v + b2 * diff
        n = (1 - b3) * n + b3 * (g + (1 - b2) * diff) ** 2
        mhat = m / (1 - (1 - b1) ** k)
        vhat = v / (1 - (1 - b2) ** k)
        nhat = n / (1 - (1 - b3) ** k)
        eta = lr / (nhat.sqrt() + eps)
        x = x * (1 - lr * wd) - eta * (mhat + (1 - b2) * vhat)
        prev = g
    return x


def _grads(n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g, dtype=torch.float64) for _ in range(STEPS)]


def _run(opt_factory, x0, grads):
    p = torch.nn.Parameter(x0.clone())
    opt = opt_factory([p])
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach()


@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_adan_is_the_papers_algorithm(fused, wd):
    if fused and not optim.fused_available():
        pytest.skip("no C++ compiler")
    x0 = torch.randn(257, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = _grads(257)
    kw = dict(lr=3e-2, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=wd)
    ours = _run(lambda ps: optim.Adan(ps, **kw, fused=fused), x0, grads)
    want = _paper(x0, grads, kw["lr"], kw["betas"], kw["eps"], wd)
    torch.testing.assert_close(ours, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
def test_adan_matches_pytorch_optimizer(fused):
    po = pytest.importorskip("pytorch_optimizer")
    if fused and not optim.fused_available():
        pytest.skip("no C++ compiler")
    x0 = torch.randn(300, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    grads = _grads(300, seed=3)
    kw = dict(lr=1e-2, betas=(0.9, 0.9, 0.995), eps=1e-6, weight_decay=0.1)
    ours = _run(lambda ps: optim.Adan(ps, **kw, fused=fused), x0, grads)
    theirs = _run(lambda ps: po.Adan(ps, **kw, weight_decouple=True), x0, grads)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)


def test_adan_refuses_bad_betas_naming_them():
    p = [torch.nn.Parameter(torch.zeros(3))]
    with pytest.raises(ValueError, match=r"betas\[2\] must be a number in \[0\.0, 1\.0\)"):
        optim.Adan(p, betas=(0.9, 0.9, 1.0))
    with pytest.raises((ValueError, TypeError), match="three betas"):
        optim.Adan(p, betas=(0.9, 0.9))
    assert math.isclose(optim.Adan(p).param_groups[0]["betas"][2], 0.99)
