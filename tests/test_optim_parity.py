"""Parity with torch.optim: 300 steps of an MLP on digits, two param groups, float64 and
float32. One table drives every configuration torch.optim also implements."""

from __future__ import annotations

import copy

import pytest
import torch
from _models import batches, digits_mlp, max_rel_err, param_groups, train

from descentlab import optim

# (id, torch class, descentlab class, constructor kwargs, overrides for the second group):
# every registered optimizer's torch-parity configurations, from its record
PARITY = [
    (c.id, getattr(torch.optim, c.torch), rec.factory, dict(c.kwargs), dict(c.group2))
    for rec in optim.records()
    for c in rec.parity
]


def test_the_parity_table_covers_every_torch_namesake():
    """The records keep 37 configurations over the 12 torch namesakes (a record that lost its
    configurations would silently drop out of the parity tests)."""
    assert len(PARITY) == 37
    assert len({p[0] for p in PARITY}) == len(PARITY)
    names = {p[1].__name__ for p in PARITY}
    assert names == {
        "SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam", "Adamax",
        "ASGD", "Rprop", "Adafactor",
    }  # fmt: skip


STEPS = 300
TOL = {torch.float64: 1e-6, torch.float32: 1e-5}


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
    assert max_rel_err(ours, ref) <= TOL[dtype]
