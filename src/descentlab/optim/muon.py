r"""Muon (Jordan et al., 2024): momentum orthogonalized by Newton-Schulz, for matrices.

For a 2-D parameter (a weight matrix) the momentum is replaced by the nearest
semi-orthogonal matrix :math:`UV^\top` of its SVD :math:`USV^\top` -- steepest descent under
the spectral norm -- computed without an SVD by a quintic Newton-Schulz iteration:

.. math::
    B_t = \mu B_{t-1} + (1-\mu) g_t, \quad
    \tilde B_t = (1-\mu) g_t + \mu B_t \text{ (Nesterov) or } B_t, \\
    X_0 = \tilde B_t / \max(\lVert \tilde B_t\rVert_F, \epsilon), \quad
    X_{k+1} = a X_k + (b A_k + c A_k^2) X_k,\; A_k = X_k X_k^\top, \\
    p \leftarrow p(1 - \eta\lambda) - \eta\, s\, X_K, \quad
    s = \sqrt{\max(1, A/B)} \text{ (``original``) or } 0.2\sqrt{\max(A, B)}
    \text{ (``match_rms_adamw``)}

on the (wide) orientation of the matrix, (A, B) its shape. Every other parameter (biases,
gains, embeddings of other ranks) takes an AdamW step with its own ``adamw_*``
hyperparameters, as Optax's ``optax.contrib.muon`` partitions them.

``torch.optim.Muon`` (2-D parameters only): its signature, defaults and operation order,
including the iteration in bfloat16 (``ns_dtype=torch.bfloat16``; ``None`` iterates in the
parameter's dtype), matched to 1e-6 relative over 300 steps (``tests/test_modern_optim.py``).
Optax's Muon to 1e-10 in float64 with ``nesterov=False`` and ``eps=0``
(``tests/test_optax_reference.py``). Conventions of Optax that differ: the momentum is
bias-corrected (with Nesterov the gradient and momentum then mix with other weights); ``eps``
is added to the norm rather than clamping it; the shape scaling reads JAX's (in, out) layout
(torch's (out, in) transposed); its AdamW fallback follows ``nesterov`` (NAdam-like when true).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from . import stacks
from .adam import scale_by_adam
from .base import HyperparameterTypeError, Rule, arguments, chain, is_batched, step_values
from .hyperspec import Choice, Flag, Integer, Items, Pair, Real, Relation, declare
from .records import OptimizerRecord
from .torchapi import Named, Params, pair
from .transforms import scale_by_lr

__all__ = ["Muon", "newton_schulz", "scale_by_muon"]

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(
    m: Tensor,
    coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    steps: int = 5,
    eps: float = 1e-7,
    dtype: torch.dtype | None = torch.bfloat16,
) -> Tensor:
    r"""An approximately semi-orthogonal matrix near :math:`UV^\top` (:math:`m = USV^\top`):
    ``steps`` quintic Newton-Schulz iterations on the wide orientation of ``m``, normalized
    by its Frobenius norm, computed in ``dtype`` (None: ``m``'s own). A stack of matrices
    ``(B, rows, cols)`` is iterated at once: one batched product each time.

    Example:
        >>> import torch
        >>> m = torch.tensor([[3.0, 0.0], [0.0, 0.5]], dtype=torch.float64)
        >>> x = newton_schulz(m, dtype=None)  # singular values pushed into ~[0.7, 1.2]
        >>> [round(v, 2) for v in torch.linalg.svdvals(x).tolist()]
        [1.04, 0.71]
    """
    a, b, c = coefficients
    x = m.to(dtype or m.dtype, copy=True)
    tall = m.size(-2) > m.size(-1)
    if tall:
        x = x.mT
    if x.dim() == 2:
        x.div_(x.norm().clamp(min=eps))
        product = torch.addmm
    else:
        x.div_(torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True).clamp(min=eps))
        product = torch.baddbmm
    for _ in range(steps):
        gram = x @ x.mT
        poly = product(gram, gram, gram, beta=b, alpha=c)
        x = product(x, poly, x, beta=a)
    return x.mT if tall else x


def _shape_scale(fn: str | None, shape: torch.Size) -> float:
    rows, cols = shape[0], shape[1]
    if fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1, rows / cols))


_DTYPES = ("bfloat16", "float16", "float32", "float64")


def _dtype_name(value: Any) -> Any:
    """``ns_dtype`` as a param-group value: a dtype's name (a plain string), or None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, torch.dtype) and value.is_floating_point:
        return str(value).removeprefix("torch.")
    raise HyperparameterTypeError(
        f"ns_dtype must be a floating torch.dtype (or its name) or None, got {value!r}"
    )


_BETA = Real(0.0, 1.0, hi_open=True)


def _adamw_lr_needs_lr(hyper: Any) -> None:
    """lr is > 0 where adamw_lr is set: the fallback's rate is relative to it."""
    lr, adamw_lr = hyper["lr"], hyper["adamw_lr"]
    if not is_batched(lr) and lr == 0 and adamw_lr not in (None, 0):
        raise ValueError(
            f"lr must be > 0 when adamw_lr is set (the fallback's rate is relative to it), "
            f"got lr=0 and adamw_lr={adamw_lr!r}"
        )


class scale_by_muon(Rule):
    r"""Muon's direction for 2-D tensors and AdamW's for the others, each with its own
    learning rate and decoupled weight decay; chain it before ``scale_by_lr(lr)``. It
    updates the parameters itself in torch's operation order (``has_final``: ``p.mul_(1 -
    lr * wd)``, then ``p.add_(O, alpha=-lr * s)``; AdamW's ``p.addcdiv_``), so float32 runs
    round as torch's do -- through a bfloat16 iteration, where one ulp of difference would
    grow. The AdamW fallback is :class:`~descentlab.optim.scale_by_adam`'s form, run eagerly
    over the group's other tensors at once (its final form, after the decoupled decay). See
    the module notes for the math."""

    name = "scale_by_muon"
    role = "direction + adaptive rate"
    state_keys = ("momentum_buffer", "exp_avg", "exp_avg_sq")
    elementwise = False
    has_final = True
    tensorwise = True

    def __init__(
        self,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        ns_dtype: str | None = "bfloat16",
        adamw_lr: float | None = None,
        adamw_betas: tuple[float, float] = (0.9, 0.999),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 0.0,
    ) -> None:
        args = arguments(locals())
        args.update(ns_coefficients=pair(ns_coefficients), adamw_betas=pair(adamw_betas))
        super().__init__(**args)
        self.needs_step = True

    def init(self, params):
        bufs: list[Tensor | None] = [None] * len(params)
        for idx in _matrices(params):  # each set of one shape: the rows of one stack
            p = params[idx[0]]
            stack = torch.zeros((len(idx), *p.shape), dtype=p.dtype, device=p.device)
            for i, row in zip(idx, stack.unbind(0), strict=True):
                bufs[i] = row
        others = lambda: [None if p.dim() == 2 else torch.zeros_like(p) for p in params]  # noqa: E731
        return {"momentum_buffer": bufs, "exp_avg": others(), "exp_avg_sq": others()}

    # torch's words where torch refuses the same value (torch.optim.Muon's own checks);
    # batched values are refused (Newton-Schulz runs per matrix)
    checks = declare(
        lr=Real(0.0, scalar=True, torch="Learning rate should be >= 0 but is: {value}"),
        weight_decay=Real(0.0, scalar=True, torch="weight decay should be >= 0 but is: {value}"),
        momentum=Real(0.0, 1.0, hi_open=True, scalar=True),
        nesterov=Flag(),
        ns_coefficients=Items((Real(), Real(), Real()), "a tuple of three numbers (a, b, c)"),
        eps=Real(0.0, scalar=True),
        ns_steps=Integer(0, 99),
        adjust_lr_fn=Choice(
            ("original", "match_rms_adamw"),
            none=True,
            torch="Adjust learning rate function {value} is not supported",
        ),
        ns_dtype=Choice(_DTYPES, none=True),
        adamw_lr=Real(0.0, scalar=True, none=True),
        adamw_betas=Pair(_BETA, _BETA, "a pair (beta1, beta2)", scalar=True),
        adamw_eps=Real(0.0, scalar=True),
        adamw_weight_decay=Real(0.0, scalar=True),
    )
    relations = (Relation(("lr", "adamw_lr"), _adamw_lr_needs_lr),)
    complex_params = False  # as torch's: Newton-Schulz on real matrices

    def update(self, grads, state, params, hyper):
        """The direction ``u`` with ``-lr * u`` the step (the optimizer's general path)."""
        out: list[Tensor | None] = [None] * len(params)
        lr = float(hyper["lr"])
        for idx, x in self._orthogonalized(grads, state, params, hyper):
            p = params[idx[0]]
            u = x.to(p.dtype).mul_(_shape_scale(hyper["adjust_lr_fn"], p.shape))
            u.add_(torch.stack([params[i] for i in idx]), alpha=float(hyper["weight_decay"]))
            for i, row in zip(idx, u.unbind(0), strict=True):
                out[i] = row
        rest = _Fallback(grads, state, params, hyper)
        if rest.index:  # Adam's update (m / d) / bc1, at the fallback's rate, and its decay
            u, _ = _ADAM.update(rest.grads, rest.state, rest.params, rest.hyper)
            alr = _adamw_lr(hyper)
            torch._foreach_mul_(u, alr / lr if lr else 0.0)
            wd = alr * float(hyper["adamw_weight_decay"]) / lr if lr else 0.0
            torch._foreach_add_(u, rest.params, alpha=wd)
            for i, ui in zip(rest.index, u, strict=True):
                out[i] = ui
        return out, state

    def apply_final(self, grads, state, params, hyper, lrs):
        lr = float(hyper["lr"])
        for idx, x in self._orthogonalized(grads, state, params, hyper):
            ps = [params[i] for i in idx]
            torch._foreach_mul_(ps, 1 - lr * float(hyper["weight_decay"]))
            scale = _shape_scale(hyper["adjust_lr_fn"], ps[0].shape)
            torch._foreach_add_(ps, list(x.to(ps[0].dtype).unbind(0)), alpha=-lr * scale)
        rest = _Fallback(grads, state, params, hyper)
        if rest.index:  # AdamW: the decay, then Adam's final form (torch's p.addcdiv_)
            alr, wd = _adamw_lr(hyper), float(hyper["adamw_weight_decay"])
            if wd != 0:
                torch._foreach_mul_(rest.params, 1 - alr * wd)
            _ADAM.apply_final(rest.grads, rest.state, rest.params, rest.hyper,
                              [alr] * len(rest.index))  # fmt: skip

    @staticmethod
    def _orthogonalized(
        grads: list[Tensor], state: Any, params: list[Tensor], hyper: Any
    ) -> Iterator[tuple[list[int], Tensor]]:
        """Each set of same-shape matrices (their positions) with its momentum updated and
        its directions orthogonalized, one stack (:mod:`~descentlab.optim.stacks`)."""
        mu = float(hyper["momentum"])
        dtype = hyper["ns_dtype"]
        for idx in _matrices(params):
            col = state["momentum_buffer"]  # (looked up here: a group without matrices has none)
            g = torch.stack([grads[i] for i in idx])
            buf = stacks.stacked(col, idx, lambda g=g: torch.zeros_like(g))
            buf.lerp_(g, 1 - mu)
            direction = g.lerp_(buf, mu) if hyper["nesterov"] else buf
            yield (
                idx,
                newton_schulz(
                    direction,
                    tuple(hyper["ns_coefficients"]),
                    hyper["ns_steps"],
                    float(hyper["eps"]),
                    None if dtype is None else getattr(torch, dtype),
                ),
            )


def _matrices(params: list[Tensor]) -> list[list[int]]:
    """The positions of the 2-D tensors of each shape (dtype, device)."""
    return [idx for idx in stacks.sets(params) if params[idx[0]].dim() == 2]


#: the fallback's math: Adam's form (:class:`~descentlab.optim.scale_by_adam`), run eagerly
#: (its ``update``, or its final form) over the tensors that are not matrices, at once
_ADAM = scale_by_adam()


class _Fallback:
    """The tensors of a group that take the AdamW fallback (those that are not matrices):
    their indices, parameters, gradients and state, and Adam's hyperparameters from the
    group's ``adamw_*`` ones."""

    def __init__(self, grads: list[Tensor], state: Any, params: list[Tensor], hyper: Any):
        self.index = [i for i, p in enumerate(params) if p.dim() != 2]
        if not self.index:
            return
        pick = lambda xs: [xs[i] for i in self.index]  # noqa: E731
        self.params, self.grads = pick(params), pick(grads)
        self.state = {k: pick(state[k]) for k in ("exp_avg", "exp_avg_sq")}
        self.state["_step_values"] = pick(step_values(state, len(params)))
        if "_workspace" in state:
            self.state["_workspace"] = state["_workspace"]
        self.hyper = {**_ADAM.defaults, "betas": hyper["adamw_betas"], "eps": hyper["adamw_eps"]}


def _adamw_lr(hyper: Any) -> float:
    return float(hyper["lr"] if hyper["adamw_lr"] is None else hyper["adamw_lr"])


class Muon(Named):
    r"""Muon with ``torch.optim.Muon``'s signature, plus an AdamW step for parameters that
    are not matrices (torch's refuses them) and the iteration's dtype. Runs eagerly.

    Args:
        params: parameters or param groups (any ranks: 2-D ones take Muon's step).
        lr, weight_decay, momentum, nesterov, ns_coefficients, eps, ns_steps,
        adjust_lr_fn: as ``torch.optim.Muon``.
        ns_dtype: the Newton-Schulz iteration's dtype (torch's bfloat16; None: the
            parameter's).
        adamw_lr: the fallback's learning rate (None: ``lr``).
        adamw_betas, adamw_eps, adamw_weight_decay: the fallback's AdamW hyperparameters.

    Example:
        >>> import torch
        >>> from descentlab.optim import Muon
        >>> net = torch.nn.Linear(4, 3)  # weight (3, 4): Muon; bias (3,): AdamW
        >>> opt = Muon(net.parameters(), lr=0.02, adamw_lr=3e-4, fused=False)
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-3, weight_decay: float = 0.1,
                 momentum: float = 0.95, nesterov: bool = True,
                 ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                 eps: float = 1e-7, ns_steps: int = 5, adjust_lr_fn: str | None = None, *,
                 ns_dtype: torch.dtype | str | None = torch.bfloat16,
                 adamw_lr: float | None = None, adamw_betas: tuple[float, float] = (0.9, 0.999),
                 adamw_eps: float = 1e-8, adamw_weight_decay: float = 0.0,
                 fused: bool | None = None, monitor: bool = False) -> None:
    # fmt: on
        ns_dtype = _dtype_name(ns_dtype)
        ns_coefficients, adamw_betas = pair(ns_coefficients), pair(adamw_betas)
        rule = chain(scale_by_muon(), scale_by_lr())
        super().__init__(params, rule, locals())


#: this module's registered optimizer (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (OptimizerRecord(
    name="muon", display="Muon", color="#FF9896", family="momentum", adaptive=True,
    year=2024, factory=Muon, lr_range=(1e-3, 1e-1), demo_lr={"ravine": 0.1, "saddle": 0.1},
    reference="Jordan et al., Muon: An optimizer for hidden layers in neural networks, 2024 "
    "(kellerjordan.github.io/posts/muon); Liu et al., Muon is Scalable for LLM Training, "
    "arXiv:2502.16982",
),)
# fmt: on
