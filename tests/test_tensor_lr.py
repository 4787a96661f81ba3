"""A one-element tensor learning rate is a scalar, of any dimension, as torch reads it.

torch's generic optimizer tests (``TestOptimRenewed.test_tensor_lr``, ``num_dim`` 0, 1, 2)
build every optimizer with ``torch.tensor(lr).reshape([1] * num_dim)`` and expect the iterates
of the float ``lr``. descentlab's length-K tensor hyperparameters (K problems at once along
each parameter's leading dimension) keep their meaning: a tensor of one element is a scalar.
Driven over the registry and every torch twin (LBFGS too, which is in no lecture).
"""

from __future__ import annotations

import warnings

import pytest
import torch

from descentlab import optim

# every registered optimizer, and every torch.optim name descentlab exports
_CLASSES = {r.factory.__name__: r.factory for r in optim.records()}
for _name in dir(torch.optim):
    if isinstance(getattr(optim, _name, None), type) and _name not in _CLASSES:
        _cls = getattr(torch.optim, _name)
        if (
            isinstance(_cls, type)
            and issubclass(_cls, torch.optim.Optimizer)
            and _name != "Optimizer"
        ):
            _CLASSES[_name] = getattr(optim, _name)
NAMES = sorted(_CLASSES)
_LR = {"LBFGS": 1.0, "Adadelta": 1.0}


def _run(name: str, lr, steps: int = 4) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    w = torch.randn(6, 5, dtype=torch.float64, generator=g).requires_grad_()
    b = torch.randn(6, dtype=torch.float64, generator=g).requires_grad_()
    x = torch.randn(5, dtype=torch.float64, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager-only optimizers say so once
        opt = _CLASSES[name]([w, b], lr=lr)

    def closure():
        opt.zero_grad()
        loss = (w.mv(x) + b).pow(2).sum()
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    return [w.detach(), b.detach()]


@pytest.mark.parametrize("num_dim", [1, 2, 3])
@pytest.mark.parametrize("name", NAMES)
def test_one_element_tensor_lr_of_any_dimension_is_the_float_lr(name, num_dim):
    lr = _LR.get(name, 1e-2)
    want = _run(name, lr)
    got = _run(name, torch.tensor(lr, dtype=torch.float64).reshape([1] * num_dim))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_a_one_element_lr_keeps_the_users_tensor_in_the_group():
    """The group holds the user's tensor (a scheduler's ``fill_`` reaches the step)."""
    w = torch.zeros(3, requires_grad=True)
    lr = torch.tensor([[0.5]])
    opt = optim.SGD([w], lr=lr)
    assert opt.param_groups[0]["lr"] is lr
    w.grad = torch.ones(3)
    lr.fill_(0.25)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.full((3,), -0.25))


@pytest.mark.parametrize("name", ["SGD", "Adam", "Lion"])
def test_a_length_k_lr_still_runs_k_problems(name):
    """lr of length 2 on parameters with 2 rows: each row steps with its own lr."""
    g = torch.Generator().manual_seed(4)
    init = torch.randn(2, 5, dtype=torch.float64, generator=g)
    lrs = [1e-2, 3e-2]
    p = init.clone().requires_grad_()
    opt = _CLASSES[name]([p], lr=torch.tensor(lrs, dtype=torch.float64))
    rows = [init[i].clone().requires_grad_() for i in range(2)]
    solo = [_CLASSES[name]([r], lr=lr) for r, lr in zip(rows, lrs, strict=True)]
    for _ in range(4):
        opt.zero_grad()
        (p**3).sum().backward()
        opt.step()
        for o, r in zip(solo, rows, strict=True):
            o.zero_grad()
            (r**3).sum().backward()
            o.step()
    torch.testing.assert_close(p.detach(), torch.stack([r.detach() for r in rows]))
