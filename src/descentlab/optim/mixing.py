"""Whether a chain mixes what must stay apart, decided from what it computes.

Two ways of stepping change which tensors a rule's reductions see: a large group is stepped
in chunks of a few tensors (:attr:`~descentlab.optim.Optimizer.chunk_elements`), and the
vectorized engine steps K runs as one tensor each (a leading run dimension). Both are right
only for a rule whose every tensor's update reads that tensor alone, and each row of it alone
(per element, or a reduction that is the row's). The flags a rule's author sets
(:attr:`~descentlab.optim.Rule.elementwise`, :attr:`~descentlab.optim.Rule.shard_local`)
say so, but a flag left at its default says nothing: a per-tensor clip written in
``update()``, a step size from sums over every parameter left ``elementwise = True``.

So the chain is run, once per chain, on a probe: two small runs with
gradients over six decades (a clip's threshold is crossed) and a zero step, stepped each
alone, as one group, and stacked; a chain whose stacked rows or whole group differ from the
runs alone, bit for bit, mixes them. A rule whose flags already refuse is not probed.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["splits", "stack_runs", "stacks"]

_SCALES = (1.0, 1e-3, 0.0, 1e2, 10.0, 1.0)
_SHAPES = ((6, 5), (37,))

#: per chain: what stacking and splitting answered
_ANSWERS: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def _probe_data(seed: int) -> tuple[list[Tensor], list[list[Tensor]]]:
    g = torch.Generator().manual_seed(seed)
    start = [torch.randn(s, generator=g) for s in _SHAPES]
    drift = [torch.randn(s, generator=g) for s in _SHAPES]
    grads = [[c * (d + 0.5 * torch.randn(d.shape, generator=g)) for d in drift] for c in _SCALES]
    return start, grads


def _steps(like: Any, hyper: Mapping[str, Any], start: list, grads: list) -> list[Tensor]:
    ws = [torch.nn.Parameter(t.clone()) for t in start]
    # a copy: a rule that keeps numbers of its own (it should not) keeps the run's, not the probe's
    opt = like.probe_like(ws, copy.deepcopy(like.rule), hyper)
    for gs in grads:
        for w, x in zip(ws, gs, strict=True):
            w.grad = x.clone()
        opt.step()
    return [w.detach() for w in ws]


def stack_runs(a0: list, ga: list, b0: list, gb: list) -> tuple[list, list]:
    """Two runs' starting tensors and gradients as one run's, each tensor of the two a tensor
    with a leading run dimension (as the vectorized engine stacks them)."""
    start = [torch.stack(x) for x in zip(a0, b0, strict=True)]
    grads = [[torch.stack(x) for x in zip(s, t, strict=True)] for s, t in zip(ga, gb, strict=True)]
    return start, grads


def _same(a: list[Tensor], b: list[Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def _answer(opt: Any, kind: str) -> str:
    """The probe's answer for ``opt``'s chain, once per chain (at the first hyperparameters
    asked with: a scheduled learning rate does not probe again)."""
    memo = _ANSWERS.setdefault(opt.rule, {})
    if kind not in memo:
        hyper = {k: v for k, v in opt.defaults.items() if k not in ("params", "step")}
        memo[kind] = _probe(opt, hyper, kind)
    return memo[kind]


def _probe(like: Any, hyper: Mapping[str, Any], kind: str) -> str:
    """'' where the probe's runs stay apart (or it cannot step the chain), else what mixed.
    ``like``: the optimizer whose chain is probed (it builds the probe's plain eager ones)."""
    (a0, ga), (b0, gb) = _probe_data(1), _probe_data(2)
    try:
        alone = _steps(like, hyper, a0, ga) + _steps(like, hyper, b0, gb)
        if kind == "stack":
            both = _steps(like, hyper, *stack_runs(a0, ga, b0, gb))
            got = [x[0] for x in both] + [x[1] for x in both]
            what = "two runs stacked differ from each run alone"
        else:
            got = _steps(like, hyper, a0 + b0, [s + t for s, t in zip(ga, gb, strict=True)])
            what = "a group stepped whole differs from its tensors stepped apart"
    except Exception:  # a chain the probe cannot step (SAM's closure): its flags decide
        return ""
    return "" if _same(got, alone) else what


def stacks(opt: Any) -> str:
    """'' where K runs of ``opt``'s chain may be stacked (each of their tensors one tensor with
    a leading run dimension) and each run gets what it would alone; else why not, in words
    (the vectorized engine then trains the runs one at a time)."""
    for r in opt.rule.rules:
        if not r.elementwise or not r.steps_shards():
            return f"update rule {r.name!r} reduces over whole tensors, which would mix the runs"
    why = _answer(opt, "stack")
    if why:
        return f"{type(opt).__name__}'s chain mixes the runs: {why} (a probe of its steps)"
    return ""


def splits(opt: Any) -> bool:
    """Whether a group of ``opt`` may be stepped in chunks of its tensors: every rule says it
    reads each tensor alone (:attr:`~descentlab.optim.Rule.elementwise`) and a probe of the
    chain at the optimizer's defaults agrees."""
    if not opt.rule.elementwise:
        return False
    why = _answer(opt, "split")
    if why:
        from descentlab._announce import once

        once(("mixing-split", type(opt).__name__, repr(opt.rule)),
             f"descentlab: {type(opt).__name__}'s chain reads across tensors, though its rules "
             f"say elementwise ({why}, a probe of its steps): its groups are stepped whole, "
             "not in chunks", stacklevel=4)  # fmt: skip
    return not why
