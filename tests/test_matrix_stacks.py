"""Muon, Shampoo, SOAP and Adafactor step a param group's matrices of one shape together
(:mod:`descentlab.optim.stacks`): one batched product per Newton-Schulz iteration, batched
roots and bases, elementwise updates over the stack, state kept as the rows of stacks. The
operations a step runs are counted (the non-view aten operations, which a GPU launches as
kernels) for 20 matrices of one shape; and a matrix's step does not depend on which others
share its stack (what lets a sharded group's owners step parts of it, bit for bit)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from descentlab import optim

#: operations that make no kernel (views; a reshape's view)
_VIEWS = {torch.ops.aten._unsafe_view.default, torch.ops.aten.detach.default}


class _Ops(TorchDispatchMode):
    """Counts the aten operations that reach the backends, views left out."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view and func not in _VIEWS:
            self.count += 1
        return func(*args, **(kwargs or {}))


def _ops_per_step(name: str, steps: int = 12, **kwargs) -> list[int]:
    """The operations of each step after the first (which makes the state) of ``name`` on
    20 matrices 64 x 64."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(64, 64, generator=gen)) for _ in range(20)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = optim.get(name)(params, **kwargs)
    out = []
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(64, 64, generator=gen)
        count = _Ops()
        with count:
            opt.step()
        out.append(count.count)
    return out[1:]


# (optimizer, settings, most operations a step may take for the 20 matrices)
BUDGETS = [
    ("muon", {}, 30),
    ("shampoo", dict(precondition_frequency=1, start_preconditioning_step=1), 50),  # roots
    ("shampoo", {}, 50),
    ("soap", {}, 50),  # a refresh of the bases at step 11
    ("adafactor", {}, 5),  # the C++ kernel: one call for the group
]


@pytest.mark.parametrize(
    ("name", "kwargs", "budget"), BUDGETS, ids=[f"{b[0]}-{b[2]}" for b in BUDGETS]
)
def test_same_shape_matrices_step_in_a_few_kernels(name, kwargs, budget):
    """(Before: Muon 460 operations a step, Shampoo 541 (861 at root steps), SOAP 361.)"""
    assert max(_ops_per_step(name, **kwargs)) <= budget


def _run(name: str, parts: list[list[int]], shapes: list, steps: int = 12, **kwargs) -> list:
    """The iterates of ``name`` on tensors of ``shapes``, stepped by one optimizer per part
    (the same gradients)."""
    gen = torch.Generator().manual_seed(1)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    grads = [[torch.randn(s, generator=gen) for s in shapes] for _ in range(steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opts = [optim.get(name)([params[i] for i in part], **kwargs) for part in parts]
    out = []
    for t in range(steps):
        for p, g in zip(params, grads[t], strict=True):
            p.grad = g.clone()
        for opt in opts:
            opt.step()
        out.append([p.detach().clone() for p in params])
    return out


SPLITS = [
    ("muon", {}),
    ("shampoo", dict(precondition_frequency=1, start_preconditioning_step=1)),
    ("shampoo", {}),
    ("soap", dict(precondition_frequency=2)),
]


@pytest.mark.parametrize(("name", "kwargs"), SPLITS, ids=[f"{n}-{len(k)}" for n, k in SPLITS])
def test_a_matrix_steps_alike_whatever_shares_its_stack(name, kwargs):
    """Six 16 x 16 matrices and six vectors stepped by one optimizer, and in parts of two or
    more of each shape (as a sharded group's owners take them): the same iterates, bit for bit
    (a stack of one takes another bfloat16 kernel: owners never make one where the group has
    more)."""
    shapes = [(16, 16)] * 6 + [(16,)] * 6
    whole = _run(name, [list(range(12))], shapes, **kwargs)
    parts = _run(name, [[0, 1, 6, 7], [2, 3, 8, 9, 10, 11], [4, 5]], shapes, **kwargs)
    for t, (a, b) in enumerate(zip(whole, parts, strict=True)):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)), f"step {t + 1}"
