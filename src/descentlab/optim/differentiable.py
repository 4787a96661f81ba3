"""``differentiable=True``: a step that autograd records, so its result can be differentiated
with respect to the parameters before the step, the gradients, the state and tensor
hyperparameters that require grad (torch's ``differentiable`` flag, for meta-learning).

The step runs the eager backend's math with gradients enabled, in the same operations and
order, so its values equal ``fused=False``'s bit for bit; only where autograd needs it does it
work differently:

- the parameters are read through copies, and updated in place only at the end (no saved
  tensor is ever overwritten);
- a rule written in the form (:class:`~descentlab.optim.form.FormRule`) is evaluated by
  :class:`DifferentiableEmitter`: a new state tensor replaces the old one instead of being
  copied into it (the state tensors given keep their values; the new ones carry the graph),
  and a state number a coefficient reads (NAdam's ``mu_product``) stays a tensor;
- scratch memory is never reused (no :class:`~descentlab.optim.base.Workspace`).

What cannot be differentiated through is refused before the step changes anything, with the
reason: ``fused=True`` (compiled code; torch refuses it too), low-bit state (``state_dtype``),
a rule whose own code is not traced (:func:`check_traceable`). A parameter that is a leaf
requiring grad cannot be updated in place under autograd (torch raises the same
``RuntimeError``): differentiate through a non-leaf copy, as torch's own tests do.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import Chain
from .eager_emitter import EagerEmitter, _batched_apply, _number, _Scalars
from .form import FormRule, _plain

__all__ = ["DifferentiableEmitter", "check_traceable", "refuse_leaf_params"]


def _keep(v: Any) -> Any:
    """A hyperparameter as the differentiable step reads it: a tensor that requires grad
    stays a tensor (a plain 0-dim tensor becomes a number, as in the eager step)."""
    if isinstance(v, tuple):
        return tuple(_keep(x) for x in v)
    return v if isinstance(v, Tensor) and v.requires_grad else _plain(v)


def _value(v: Any) -> Any:
    """A coefficient's value: a tensor where it depends on something that requires grad."""
    return v if isinstance(v, Tensor) and v.requires_grad else _number(v)


class DifferentiableEmitter(EagerEmitter):
    """The form over a param group's tensors, recorded by autograd: the eager emitter's
    kernels, with new state tensors assigned instead of copied into the old ones."""

    def __init__(self, *args: Any) -> None:  # (the eager emitter's arguments)
        super().__init__(*args)
        self._hyper = {k: _keep(v) for k, v in self.given.items()}

    number = staticmethod(_value)

    @staticmethod
    def state_number(x: Tensor) -> Any:
        """A state number (NAdam's ``mu_product``): kept a tensor where it requires grad."""
        return x if x.requires_grad else float(x)

    def _last(self, x: Any) -> bool:
        return False  # no value is overwritten in place: autograd may have saved it

    def _foreach(self, name: str, x: list[Tensor], *rest: Any, **kw: Any) -> list[Tensor]:
        # new tensors, never the optimizer's scratch memory (out= kernels are not recorded)
        return list(getattr(torch, f"_foreach_{name}")(x, *rest, **kw))

    def apply(self, op: str, a: list[Any], alpha: Any) -> list[Tensor]:
        if any(_traced(x) for x in (*a, alpha) if isinstance(x, _Scalars)):
            return _batched_apply(op, a, alpha)
        return super().apply(op, a, alpha)

    def scale(self, key: str, factor: Any) -> None:
        values = self.state[key]
        values[:] = [x * f for x, f in zip(values, self.coef(factor), strict=True)]

    def update_param(self, op: str, args: list[Any], alpha: Any) -> list[Tensor]:
        if alpha is not None and _traced(alpha):
            new = _batched_apply(op, [self.params, *args[1:]], alpha)
            for p, v in zip(self.params, new, strict=True):
                p.copy_(v)
            return self.params
        return super().update_param(op, args, alpha)

    def materialize(self, value: Any) -> Any:
        # a state entry assigned later gets new tensors: a named value keeps the old ones
        if any(value is v for v in self.state.values()):
            return list(value)
        return value

    def assign(self, key: str, value: list[Tensor], expr: Any) -> list[Tensor]:
        values = self.state[key]
        if value is not values:
            values[:] = list(value)  # later reads of the entry see the new tensors
        return values


def _traced(x: _Scalars) -> bool:
    return any(isinstance(v, Tensor) and v.requires_grad for v in x)


def check_traceable(rule: Chain, owner: str) -> None:
    """Refuse, at construction, a chain with a rule whose own update is not traced by
    autograd (its state or its update computed without the graph)."""
    for r in rule.rules:
        if not isinstance(r, FormRule) and not getattr(r, "differentiable", False):
            raise ValueError(
                f"{owner}: differentiable=True: {r.name} has no differentiable step (its "
                "update is not written in the form that autograd traces here); use "
                "differentiable=False"
            )
        if isinstance(r, FormRule) and r.state_format is not None:
            raise ValueError(
                f"{owner}: differentiable=True does not support low-bit state "
                f"(state_dtype={r.state_format.tag!r}); use state_dtype=None"
            )


def refuse_leaf_params(owner: str, gi: int, params: list[Tensor]) -> None:
    """A parameter that is a leaf requiring grad cannot be updated in place while autograd
    records: torch's error, raised before the step changes anything."""
    for j, p in enumerate(params):
        if p.is_leaf and p.requires_grad:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation. "
                f"({owner}(differentiable=True): parameter {j} of param group {gi} is a leaf "
                "that requires grad; step a non-leaf copy of it, e.g. p.clone())"
            )
