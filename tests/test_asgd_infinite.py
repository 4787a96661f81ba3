"""ASGD keeps an infinite parameter infinite, as torch's ASGD does (its update's difference
form ``new - p`` would make it NaN); NaN gradients still give NaN."""

from __future__ import annotations

import pytest
import torch

from descentlab import optim


@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("wd", [0.0, 0.1], ids=["no-decay", "decay"])
def test_asgd_infinite_parameters_follow_torch(fused, dtype, wd):
    if fused and not optim.fused_available():
        pytest.skip("no compiler for the fused kernels")
    start = torch.tensor([float("inf"), 1.0, -float("inf"), 2.0] * 5, dtype=dtype)
    ours = torch.nn.Parameter(start.clone())
    ref = torch.nn.Parameter(start.clone())
    kw = dict(lr=0.05, lambd=1e-2, t0=2, weight_decay=wd)
    mine = optim.ASGD([ours], fused=fused, **kw)
    theirs = torch.optim.ASGD([ref], foreach=False, **kw)
    grad = torch.tensor([0.5, 0.5, 0.5, float("nan")] * 5, dtype=dtype)
    for _ in range(4):
        for opt, p in ((mine, ours), (theirs, ref)):
            p.grad = grad.clone()
            opt.step()
    torch.testing.assert_close(ours.detach(), ref.detach(), equal_nan=True, rtol=0, atol=0)
    assert torch.isnan(ours[3])
    # without decay the infinite entries stay infinite (with it, torch's g + wd p is
    # infinite too and its step makes them NaN: followed above)
    assert bool(torch.isinf(ours[0])) is (wd == 0)
