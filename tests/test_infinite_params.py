"""An infinite parameter ends a step as torch's own optimizer leaves it: infinite where torch
keeps it infinite, NaN where torch makes it NaN. (NAdam and RAdam with decoupled weight
decay apply the decay as torch does, ``p.mul_(1 - lr * wd)`` first: added to the update it
made ``inf - inf``.) ASGD has its own test (tests/test_asgd_infinite.py)."""

from __future__ import annotations

import pytest
import torch

from descentlab import optim

DECOUPLED = dict(weight_decay=0.1, decoupled_weight_decay=True)

# (descentlab name, torch class, keyword arguments for both)
CASES = [
    ("nadam", torch.optim.NAdam, {}),
    ("nadam", torch.optim.NAdam, dict(weight_decay=0.1)),
    ("nadam", torch.optim.NAdam, DECOUPLED),
    ("radam", torch.optim.RAdam, {}),
    ("radam", torch.optim.RAdam, dict(weight_decay=0.1)),
    ("radam", torch.optim.RAdam, DECOUPLED),
    ("adamw", torch.optim.AdamW, dict(weight_decay=0.1)),
    ("adam", torch.optim.Adam, dict(weight_decay=0.1)),
    ("adam", torch.optim.Adam, dict(amsgrad=True)),
    ("sgd", torch.optim.SGD, dict(momentum=0.9, weight_decay=0.1)),
    ("rmsprop", torch.optim.RMSprop, dict(centered=True)),
    ("adagrad", torch.optim.Adagrad, {}),
    ("adamax", torch.optim.Adamax, dict(weight_decay=0.1)),
    ("adadelta", torch.optim.Adadelta, {}),
]


@pytest.mark.parametrize("fused", [False, True], ids=["eager", "fused"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(
    ("name", "ref_cls", "kw"), CASES, ids=[f"{c[0]}-{'-'.join(c[2]) or 'plain'}" for c in CASES]
)
def test_infinite_parameters_follow_torch(fused, dtype, name, ref_cls, kw):
    if fused and not optim.fused_available():
        pytest.skip("no compiler for the fused kernels")
    start = torch.tensor([float("inf"), -float("inf"), 1.0, -2.0] * 4, dtype=dtype)
    grad = torch.tensor([0.5, -0.5, 0.5, 0.25] * 4, dtype=dtype)
    ours = torch.nn.Parameter(start.clone())
    ref = torch.nn.Parameter(start.clone())
    mine = optim.get(name)([ours], lr=0.01, fused=fused, **kw)
    theirs = ref_cls([ref], lr=0.01, foreach=False, **kw)
    for _ in range(3):
        for opt, p in ((mine, ours), (theirs, ref)):
            p.grad = grad.clone()
            opt.step()
    got, want = ours.detach(), ref.detach()
    assert torch.equal(torch.isnan(got), torch.isnan(want))
    assert torch.equal(torch.isposinf(got), torch.isposinf(want))
    assert torch.equal(torch.isneginf(got), torch.isneginf(want))
    torch.testing.assert_close(got, want, equal_nan=True, rtol=1e-6, atol=0)
