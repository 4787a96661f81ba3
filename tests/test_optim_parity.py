"""Parity with torch.optim: 300 steps of an MLP on digits, two param groups, float64 and
float32. One table drives every configuration torch.optim also implements."""

from __future__ import annotations

import copy

import pytest
import torch
from _models import batches, digits_mlp, param_groups, train

from descentlab import optim

# (id, torch class, descentlab class, constructor kwargs, overrides for the second group)
PARITY = [
    ("sgd", torch.optim.SGD, optim.SGD, dict(lr=0.1), dict(lr=0.05)),
    ("sgd-momentum", torch.optim.SGD, optim.SGD, dict(lr=0.05, momentum=0.9), dict(momentum=0.5)),
    (
        "sgd-dampening",
        torch.optim.SGD,
        optim.SGD,
        dict(lr=0.05, momentum=0.9, dampening=0.3),
        dict(lr=0.1),
    ),
    (
        "sgd-nesterov",
        torch.optim.SGD,
        optim.SGD,
        dict(lr=0.05, momentum=0.9, nesterov=True),
        dict(lr=0.02),
    ),
    (
        "sgd-weight-decay",
        torch.optim.SGD,
        optim.SGD,
        dict(lr=0.05, momentum=0.9, weight_decay=1e-2),
        dict(weight_decay=0.0),
    ),
    (
        "sgd-maximize",
        torch.optim.SGD,
        optim.SGD,
        dict(lr=0.05, momentum=0.8, maximize=True),
        dict(lr=0.1),
    ),
    ("adagrad", torch.optim.Adagrad, optim.Adagrad, dict(lr=0.05), dict(lr=0.02)),
    (
        "adagrad-decay-init",
        torch.optim.Adagrad,
        optim.Adagrad,
        dict(lr=0.05, lr_decay=1e-2, initial_accumulator_value=0.1, weight_decay=1e-3),
        dict(lr_decay=0.0),
    ),
    (
        "adagrad-maximize",
        torch.optim.Adagrad,
        optim.Adagrad,
        dict(lr=0.05, maximize=True, eps=1e-6),
        dict(),
    ),
    ("adadelta", torch.optim.Adadelta, optim.Adadelta, dict(), dict(rho=0.95)),
    (
        "adadelta-wd",
        torch.optim.Adadelta,
        optim.Adadelta,
        dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=1e-2),
        dict(lr=1.0),
    ),
    ("rmsprop", torch.optim.RMSprop, optim.RMSprop, dict(lr=1e-3), dict(alpha=0.9)),
    (
        "rmsprop-centered",
        torch.optim.RMSprop,
        optim.RMSprop,
        dict(lr=1e-3, centered=True),
        dict(lr=5e-4),
    ),
    (
        "rmsprop-momentum",
        torch.optim.RMSprop,
        optim.RMSprop,
        dict(lr=1e-3, momentum=0.9),
        dict(momentum=0.5),
    ),
    (
        "rmsprop-centered-momentum-wd",
        torch.optim.RMSprop,
        optim.RMSprop,
        dict(lr=5e-4, momentum=0.9, centered=True, weight_decay=1e-3),
        dict(),
    ),
    ("adam", torch.optim.Adam, optim.Adam, dict(lr=1e-2), dict(betas=(0.8, 0.99))),
    ("adam-amsgrad", torch.optim.Adam, optim.Adam, dict(lr=1e-2, amsgrad=True), dict(lr=3e-3)),
    (
        "adam-weight-decay",
        torch.optim.Adam,
        optim.Adam,
        dict(lr=1e-2, weight_decay=1e-2),
        dict(eps=1e-6),
    ),
    ("adam-maximize", torch.optim.Adam, optim.Adam, dict(lr=1e-2, maximize=True), dict()),
    (
        "adam-decoupled",
        torch.optim.Adam,
        optim.Adam,
        dict(lr=1e-2, weight_decay=1e-1, decoupled_weight_decay=True),
        dict(lr=5e-3),
    ),
    ("adamw", torch.optim.AdamW, optim.AdamW, dict(lr=1e-2), dict(weight_decay=0.1)),
    (
        "adamw-amsgrad",
        torch.optim.AdamW,
        optim.AdamW,
        dict(lr=1e-2, amsgrad=True, weight_decay=0.05),
        dict(),
    ),
    ("nadam", torch.optim.NAdam, optim.NAdam, dict(lr=1e-2), dict(momentum_decay=8e-3)),
    ("nadam-wd", torch.optim.NAdam, optim.NAdam, dict(lr=1e-2, weight_decay=1e-2), dict()),
    (
        "nadam-decoupled",
        torch.optim.NAdam,
        optim.NAdam,
        dict(lr=1e-2, weight_decay=1e-1, decoupled_weight_decay=True),
        dict(),
    ),
    ("radam", torch.optim.RAdam, optim.RAdam, dict(lr=1e-2), dict(betas=(0.9, 0.99))),
    ("radam-wd", torch.optim.RAdam, optim.RAdam, dict(lr=1e-2, weight_decay=1e-2), dict()),
    (
        "radam-decoupled",
        torch.optim.RAdam,
        optim.RAdam,
        dict(lr=1e-2, weight_decay=1e-1, decoupled_weight_decay=True),
        dict(),
    ),
    ("adamax", torch.optim.Adamax, optim.Adamax, dict(lr=1e-2), dict(betas=(0.8, 0.99))),
    (
        "adamax-wd-maximize",
        torch.optim.Adamax,
        optim.Adamax,
        dict(lr=5e-3, weight_decay=1e-2, maximize=True, eps=1e-6),
        dict(lr=1e-2),
    ),
    ("asgd", torch.optim.ASGD, optim.ASGD, dict(lr=0.05), dict(lr=0.02)),
    (
        "asgd-averaging-wd-maximize",
        torch.optim.ASGD,
        optim.ASGD,
        dict(lr=0.05, lambd=1e-2, alpha=0.6, t0=100, weight_decay=1e-3, maximize=True),
        dict(t0=50, lambd=1e-3),
    ),
    ("rprop", torch.optim.Rprop, optim.Rprop, dict(lr=1e-3), dict(lr=5e-4)),
    (
        "rprop-etas-sizes",
        torch.optim.Rprop,
        optim.Rprop,
        dict(lr=1e-3, etas=(0.3, 1.5), step_sizes=(1e-5, 1e-2), maximize=True),
        dict(etas=(0.6, 1.1)),
    ),
]

STEPS = 300
TOL = {torch.float64: 1e-6, torch.float32: 1e-5}


def _max_rel_err(a: torch.nn.Module, b: torch.nn.Module) -> float:
    worst = 0.0
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        scale = pb.detach().abs().max().clamp_min(1e-12)
        worst = max(worst, float((pa.detach() - pb.detach()).abs().max() / scale))
    return worst


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(
    ("torch_cls", "our_cls", "kwargs", "group2"),
    [p[1:] for p in PARITY],
    ids=[p[0] for p in PARITY],
)
def test_matches_torch_optim(torch_cls, our_cls, kwargs, group2, dtype):
    ref = digits_mlp(dtype)
    ours = copy.deepcopy(ref)
    idx = batches(STEPS)
    sign = -1.0 if kwargs.get("maximize") else 1.0
    train(ref, torch_cls(param_groups(ref, group2), foreach=False, **kwargs), idx, dtype, sign)
    train(ours, our_cls(param_groups(ours, group2), **kwargs), idx, dtype, sign)
    moved = max(
        float((p - q).detach().abs().max())
        for p, q in zip(ref.parameters(), digits_mlp(dtype).parameters(), strict=True)
    )
    assert moved > 1e-3, "the reference did not train: the comparison would be vacuous"
    assert _max_rel_err(ours, ref) <= TOL[dtype]
