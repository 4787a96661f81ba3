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

from .base import Chain, Rule, State, Workspace, final_lrs
from .differentiable import DifferentiableEmitter
from .form import FormRule

__all__ = ["EagerPath"]


class EagerPath:
    """The eager backend of one optimizer (its workspaces are caches: rebuilt after a copy
    or unpickling)."""

    def __init__(self, rule: Chain, fold_lr: bool, differentiable: bool = False) -> None:
        self.rule = rule
        #: autograd records the step (:mod:`descentlab.optim.differentiable`): the rules
        #: written in the form run on its emitter, the parameters are read through copies, and
        #: scratch memory is never reused (no :class:`Workspace`: autograd may have saved it)
        self.differentiable = differentiable
        self.emitter = DifferentiableEmitter if differentiable else None
        #: a final plain ``scale_by_lr`` is folded into the parameter update (p += -lr * u):
        #: one pass and one temporary fewer per step, as torch's own kernels do
        self.fold_lr = fold_lr
        self.workspaces: dict[int, Workspace] = {}

    def run(
        self,
        gi: int,
        params: list[Tensor],
        grads: list[Tensor],
        state: State,
        hyper: Mapping[str, Any],
        final: bool,
        chunk_elements: int,
    ) -> None:
        """One group's update, chunk by chunk (``final``: the step may take the chain's final
        form, :meth:`~descentlab.optim.Chain.walk`);
        a differentiable step updates the whole group, reading the parameters through copies
        (the in-place update at the end overwrites no tensor autograd saved)."""
        if self.differentiable:
            self.step(params, grads, state, hyper, final, [p.clone() for p in params])
            return
        ws = self.workspaces.setdefault(gi, Workspace())
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
        final: bool = False,
    ) -> None:
        """Update parameters ``a:b`` of the group (their gradients and state)."""
        whole = a == 0 and b == len(params)
        sub: State = state if whole else {k: v[a:b] for k, v in state.items()}
        sub_params, sub_grads = (params, grads) if whole else (params[a:b], grads[a:b])
        ws.reset()
        sub["_workspace"] = ws
        try:
            sub = self.step(sub_params, sub_grads, sub, hyper, final)
        finally:
            sub.pop("_workspace", None)
        if not whole:
            n = len(params)
            for k, values in sub.items():
                state.setdefault(k, [None] * n)[a:b] = values

    def step(
        self,
        params: list[Tensor],
        grads: list[Tensor],
        state: State,
        hyper: Mapping[str, Any],
        final: bool,
        reads: list[Tensor] | None = None,
    ) -> State:
        """The chain's update of ``params``, as :meth:`~descentlab.optim.Chain.walk` says
        (``final``: the walk may end in a final form -- Python hyperparameters only; a plain
        final learning rate is folded in where it is a number). The rules before the
        parameter update read the parameters as ``reads`` (default: ``params``); returns the
        state."""
        reads = params if reads is None else reads
        lr = hyper.get("lr")
        if (
            isinstance(lr, Tensor)
            and lr.ndim == 0
            and not (self.differentiable and lr.requires_grad)
        ):
            lr = lr.item()
        walk = self.rule.walk(hyper, self.fold_lr and isinstance(lr, int | float), final)
        g: list[Tensor] = list(grads)
        body = walk.body[:-1] if walk.end == "final" else walk.body
        for r in body:
            g, state = self._update(r, g, state, reads, hyper)
        if walk.end == "final":
            core = walk.body[-1]
            lrs = final_lrs(walk.lr, walk.decay, params, state, hyper)  # type: ignore[arg-type]
            if self.emitter is not None and isinstance(core, FormRule):
                core.apply_final(g, state, params, hyper, lrs, self.emitter)
            else:
                core.apply_final(g, state, params, hyper, lrs)
            return state
        torch._foreach_add_(params, g, **({"alpha": -lr} if walk.end == "fold" else {}))
        return state

    def _update(self, r: Rule, g, state, params, hyper) -> tuple[list[Tensor], State]:
        if self.emitter is not None and isinstance(r, FormRule):
            return r.update(g, state, params, hyper, self.emitter)
        return r.update(g, state, params, hyper)
