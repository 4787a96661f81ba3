"""How an :class:`~descentlab.optim.Optimizer` runs its eager backend: each rule's
``torch._foreach_*`` kernels over cache-sized chunks of a param group, with scratch memory
reused from step to step, and the parameter update in torch's operation order where the
chain allows it (:meth:`~descentlab.optim.Chain.final_plan`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from .base import Chain, Rule, State, Workspace, chain, step_values

__all__ = ["EagerPath"]


class EagerPath:
    """The eager backend of one optimizer (its workspaces are caches: rebuilt after a copy
    or unpickling)."""

    def __init__(self, rule: Chain, fold_lr: bool, differentiable: bool = False) -> None:
        self.rule = rule
        #: autograd records the step: scratch memory is never reused (see :class:`Workspace`)
        self.differentiable = differentiable
        #: a final plain ``scale_by_lr`` is folded into the parameter update (p += -lr * u):
        #: one pass and one temporary fewer per step, as torch's own kernels do
        self.fold_lr = fold_lr
        self.inner: Chain | None = (
            chain(*rule.rules[:-1]) if fold_lr and len(rule.rules) > 1 else None
        )
        self.workspaces: dict[int, Workspace] = {}

    def run(
        self,
        gi: int,
        params: list[Tensor],
        grads: list[Tensor],
        state: State,
        hyper: Mapping[str, Any],
        final: tuple[int, Rule | None] | None,
        chunk_elements: int,
    ) -> None:
        """One group's update, chunk by chunk (``final``: the chain's final plan, or None)."""
        ws = self.workspaces.setdefault(gi, Workspace(fresh=self.differentiable))
        for a, b in self.chunks(params, chunk_elements):
            self.update_chunk(params, grads, state, hyper, ws, a, b, final)

    def chunks(self, params: list[Tensor], size_limit: int) -> list[tuple[int, int]]:
        """Bounds of consecutive parameters of about ``size_limit`` elements each (the whole
        group where the chain is not elementwise)."""
        if not self.rule.elementwise:
            return [(0, len(params))]
        bounds, start, size = [], 0, 0
        for i, p in enumerate(params):
            n = p.numel()
            if size and size + n > size_limit:
                bounds.append((start, i))
                start, size = i, 0
            size += n
        bounds.append((start, len(params)))
        return bounds

    def update_chunk(
        self,
        params: list[Tensor],
        grads: list[Tensor],
        state: State,
        hyper: Mapping[str, Any],
        ws: Workspace,
        a: int,
        b: int,
        final: tuple[int, Rule | None] | None = None,
    ) -> None:
        """Update parameters ``a:b`` of the group (their gradients and state)."""
        whole = a == 0 and b == len(params)
        sub: State = state if whole else {k: v[a:b] for k, v in state.items()}
        sub_params, sub_grads = (params, grads) if whole else (params[a:b], grads[a:b])
        ws.reset()
        sub["_workspace"] = ws
        lr = hyper.get("lr")
        if isinstance(lr, Tensor) and lr.ndim == 0:
            lr = lr.item()
        try:
            if final is not None:
                self.final_update(sub_params, sub_grads, sub, hyper, final)
            elif self.fold_lr and isinstance(lr, int | float):
                directions, sub = (
                    self.inner.update(list(sub_grads), sub, sub_params, hyper)
                    if self.inner is not None
                    else (sub_grads, sub)
                )
                torch._foreach_add_(sub_params, directions, alpha=-lr)
            else:
                updates, sub = self.rule.update(list(sub_grads), sub, sub_params, hyper)
                torch._foreach_add_(sub_params, updates)
        finally:
            sub.pop("_workspace", None)
        if not whole:
            n = len(params)
            for k, values in sub.items():
                state.setdefault(k, [None] * n)[a:b] = values

    def final_update(
        self,
        params: list[Tensor],
        grads: list[Tensor],
        state: State,
        hyper: Mapping[str, Any],
        final: tuple[int, Rule | None],
    ) -> None:
        """The eager step of :meth:`Chain.final_plan`'s chains (Python hyperparameters only)."""
        k, decay = final
        rules = self.rule.rules
        g: list[Tensor] = list(grads)
        for r in rules[:k]:
            g, state = r.update(g, state, params, hyper)
        lr_rule = rules[-1]
        if "lr_decay" in lr_rule.defaults:
            lrs = [lr_rule.step_lr(hyper, t) for t in step_values(state, len(params))]
        else:
            lrs = [lr_rule.step_lr(hyper, 0)] * len(params)
        if decay is not None and hyper["weight_decay"] != 0:
            torch._foreach_mul_(params, 1 - hyper["lr"] * hyper["weight_decay"])
        rules[k].apply_final(g, state, params, hyper, lrs)
