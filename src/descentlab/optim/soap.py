r"""SOAP (Vyas et al., 2024): Adam in the eigenbasis of Shampoo's preconditioner.

For a matrix gradient :math:`G` SOAP keeps Shampoo's statistics :math:`L, R`, their
eigenbases :math:`Q_L, Q_R`, Adam's first moment :math:`M` (in the parameter's basis) and
second moment :math:`V` (in the eigenbasis). One step (the paper's Algorithm 3, with the
reference implementation's bias correction and decoupled weight decay):

.. math::
    G' = Q_L^\top G Q_R, \quad M \leftarrow \beta_1 M + (1-\beta_1) G, \quad
    V \leftarrow \beta_2 V + (1-\beta_2)\, G' \odot G' \\
    N = Q_L \frac{Q_L^\top M Q_R}{\sqrt V + \epsilon} Q_R^\top, \quad
    W \leftarrow \Big(W - \eta \frac{\sqrt{1-\beta_2^s}}{1-\beta_1^s} N\Big)(1 - \eta\lambda) \\
    L \leftarrow \beta_s L + (1-\beta_s) G G^\top, \quad
    R \leftarrow \beta_s R + (1-\beta_s) G^\top G

(:math:`\beta_s` = ``shampoo_beta``, :math:`\beta_2` when None). Every
``precondition_frequency`` steps the bases are refreshed by one step of power iteration and
a QR decomposition (Algorithm 4): :math:`S = L Q_L`, its columns (and :math:`V`'s matching
rows) sorted by the estimated eigenvalues :math:`\mathrm{diag}(Q_L^\top S)`, descending,
then :math:`Q_L \leftarrow \mathrm{QR}(S)`. A tensor of any order keeps one statistic and
basis per dimension (the products along each dimension).

As the reference implementation (``nikhilvyas/SOAP``): a parameter's first step only
initialises :math:`L, R` from its gradient and takes their eigenbases (``eigh``, descending
eigenvalues), without moving; :math:`s` counts the steps after it. Dimensions longer than
``max_precondition_dim`` keep the identity as their basis, and vectors do unless
``precondition_1d`` (then: Adam in the eigenbasis of the vector's :math:`g g^\top` average);
``merge_dims`` first merges neighbouring dimensions while their product stays <=
``max_precondition_dim``. Runs eagerly; statistics and bases in float64 for float64
parameters, else float32.

Chain: ``maximize -> scale_by_soap -> scale_by_lr`` (the decay inside, in the reference's
order). Verified in float64 against pytorch-optimizer's ``SOAP`` and a loop written from the
paper's Algorithm 3 (``tests/test_shampoo_soap.py``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from . import stacks
from .base import PerTensorRule, arguments, chain
from .hyperspec import SCALAR_BETAS, Flag, Integer, Real, declare
from .records import OptimizerRecord, adam_family
from .torchapi import Named, Params, pair
from .transforms import maximize as _maximize
from .transforms import scale_by_lr

__all__ = ["SOAP", "merge_small_dims", "scale_by_soap"]

#: the hyperparameters' constraints (betas are checked as a pair)


def merge_small_dims(shape: tuple[int, ...], limit: int) -> tuple[int, ...]:
    """Neighbouring dimensions multiplied while the product stays <= ``limit`` (the SOAP
    reference's ``merge_dims``).

    Example:
        >>> merge_small_dims((2, 3, 4), 6), merge_small_dims((2, 3, 4), 100)
        ((6, 4), (24,))
    """
    out: list[int] = []
    current = 1
    for d in shape:
        if current * d > limit:
            if current > 1:
                out.append(current)
                current = d
            else:
                out.append(d)
                current = 1
        else:
            current *= d
    if current > 1 or not out:
        out.append(current)
    return tuple(out)


def _project(x: Tensor, bases: list[Tensor | None], back: bool = False) -> Tensor:
    """Each tensor of the stack ``x`` times each basis (a stack, or None: the identity) along
    its dimension: :math:`Q^\top` (``back``: :math:`Q`)."""
    for q in bases:  # the dimension contracted moves to the end: d dimensions, d turns
        if q is None:
            x = x.movedim(1, -1)
        else:
            rest = x.shape[2:]
            y = x.reshape(x.shape[0], x.shape[1], -1).mT @ (q.mT if back else q)
            x = y.reshape(x.shape[0], *rest, q.shape[-1])
    return x


def _eigenbasis(stat: Tensor) -> Tensor:
    """Eigenvectors of each of the symmetric stack ``stat``, descending eigenvalues (the
    reference's ``eigh`` of ``stat + 1e-30 I``)."""
    eye = torch.eye(stat.shape[-1], dtype=stat.dtype, device=stat.device)
    _, q = torch.linalg.eigh(stat + 1e-30 * eye)
    return torch.flip(q, dims=[-1])


class scale_by_soap(PerTensorRule):
    r"""SOAP's step and decoupled weight decay as a direction for ``scale_by_lr`` (see the
    module notes for the math).

    Args:
        lr: :math:`\eta` (the decay's factor :math:`1 - \eta\lambda`).
        betas: :math:`(\beta_1, \beta_2)`, Adam's, each in [0, 1).
        shampoo_beta: :math:`\beta_s` of the statistics (None: :math:`\beta_2`).
        eps: Adam's :math:`\epsilon`.
        weight_decay: decoupled :math:`\lambda`, applied after the step as the reference.
        precondition_frequency: the bases are refreshed every this many steps.
        max_precondition_dim: longer dimensions keep the identity basis.
        merge_dims: merge small neighbouring dimensions first.
        precondition_1d: vectors get a basis too.
        correct_bias: Adam's bias correction.
    """

    name = "scale_by_soap"
    role = "direction + adaptive rate"
    state_keys = ("exp_avg", "exp_avg_sq", "soap_stats", "soap_bases")
    elementwise = False

    def __init__(
        self,
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        precondition_frequency: int = 10,
        max_precondition_dim: int = 10000,
        merge_dims: bool = False,
        precondition_1d: bool = False,
        correct_bias: bool = True,
    ) -> None:
        args = arguments(locals())
        super().__init__(**{**args, "betas": pair(betas)})
        self.needs_step = True

    # scalars only: a batched value would mean K runs along the leading dimension (the
    # matrices span it)
    checks = declare(
        betas=SCALAR_BETAS,
        lr=Real(0.0, scalar=True),
        shampoo_beta=Real(0.0, 1.0, hi_open=True, none=True),
        eps=Real(0.0),
        weight_decay=Real(0.0, scalar=True),
        precondition_frequency=Integer(1),
        max_precondition_dim=Integer(1),
        merge_dims=Flag(),
        precondition_1d=Flag(),
        correct_bias=Flag(),
    )

    def shape(self, p: Tensor, hyper: Any) -> tuple[int, ...]:
        """The shape whose dimensions get bases (``merge_dims`` applied)."""
        shape = tuple(p.shape) or (1,)
        if hyper["merge_dims"] and p.dim() > 1:
            shape = merge_small_dims(shape, int(hyper["max_precondition_dim"]))
        return shape

    def directions(self, idx, grads, params, state, hyper, t):
        b1, b2 = (float(b) for b in hyper["betas"])
        p = params[idx[0]]
        shape, n = self.shape(p, hyper), len(idx)
        dtype = torch.float64 if p.dtype == torch.float64 else torch.float32
        g = torch.stack([grads[i] for i in idx])  # the set's tensors as one stack
        x = g.to(dtype).reshape(n, *shape)
        if state["soap_bases"][idx[0]] is None:  # the first step: statistics and bases only
            limit = int(hyper["max_precondition_dim"])
            vector = p.dim() <= 1 and not hyper["precondition_1d"]
            for i in idx:
                state["soap_stats"][i] = [None] * len(shape)
                state["soap_bases"][i] = [None] * len(shape)
            for d, size in enumerate(shape):
                if not vector and size <= limit:
                    zeros = lambda size=size: x.new_zeros(n, size, size)  # noqa: E731
                    stacks.stacked(state["soap_stats"], idx, zeros, part=d)
            stats = self._stacks(state, "soap_stats", idx, shape)
            self._accumulate(x, stats, hyper)
            for d, stat in enumerate(stats):
                if stat is not None:
                    stacks.stacked(state["soap_bases"], idx, lambda s=stat: _eigenbasis(s), part=d)
            for key in ("exp_avg", "exp_avg_sq"):
                stacks.stacked(state[key], idx, lambda: torch.zeros_like(g))
            return list(torch.zeros_like(g).unbind(0))
        s = t - 1  # the steps after the first
        stats = self._stacks(state, "soap_stats", idx, shape)
        bases = self._stacks(state, "soap_bases", idx, shape)
        m, v = (stacks.stacked(state[k], idx, torch.empty) for k in ("exp_avg", "exp_avg_sq"))
        projected = _project(x, bases).reshape(g.shape).to(p.dtype)
        # Adam in the eigenbasis, as torch code: M takes the raw gradient (in the parameter's
        # basis), V the projected one's square, where scale_by_adam's form has one g for both;
        # tests/test_forms_everywhere.py checks these lines against that form in float64
        m.lerp_(g, 1 - b1)
        v.lerp_(projected.square(), 1 - b2)
        denom = v.sqrt().add_(float(hyper["eps"]))
        m_rotated = _project(m.to(dtype).reshape(n, *shape), bases).reshape(g.shape).to(p.dtype)
        back = _project((m_rotated / denom).to(dtype).reshape(n, *shape), bases, back=True)
        step = math.sqrt(1 - b2**s) / (1 - b1**s) if hyper["correct_bias"] else 1.0
        lr, wd = float(hyper["lr"]), float(hyper["weight_decay"])
        u = back.reshape(g.shape).to(p.dtype).mul_(step * (1 - lr * wd))
        if wd != 0:
            u.add_(torch.stack([params[i] for i in idx]), alpha=wd)
        self._accumulate(x, stats, hyper)
        if s % int(hyper["precondition_frequency"]) == 0:
            self._refresh(state, idx, stats, bases, v, shape)
        return list(u.unbind(0))

    @staticmethod
    def _stacks(state: Any, key: str, idx: list[int], shape: tuple[int, ...]) -> list:
        """Each dimension's statistics or bases of tensors ``idx``: a stack, or None."""
        first = state[key][idx[0]]
        return [
            None if first[d] is None else stacks.stacked(state[key], idx, torch.empty, part=d)
            for d in range(len(shape))
        ]

    @staticmethod
    def _accumulate(x: Tensor, stats: list[Tensor | None], hyper: Any) -> None:
        """Each statistic's :math:`\\beta_s` average of the gradients' products along its
        dimension (over all the others), for the stack ``x``."""
        beta = hyper["shampoo_beta"]
        beta = float(hyper["betas"][1] if beta is None else beta)
        for k, stat in enumerate(stats):
            if stat is None:
                continue
            xk = x.movedim(k + 1, 1).reshape(x.shape[0], x.shape[k + 1], -1)
            stat.lerp_(xk @ xk.mT, 1 - beta)

    @staticmethod
    def _refresh(
        state: Any,
        idx: list[int],
        stats: list[Tensor | None],
        bases: list[Tensor | None],
        v: Tensor,
        shape: tuple[int, ...],
    ) -> None:
        """One power-iteration step and a QR decomposition per basis (Algorithm 4), ``v``'s
        entries reordered with the eigenvalue estimates."""
        n = v.shape[0]
        sq = v.reshape(n, *shape)
        for k, (stat, q) in enumerate(zip(stats, bases, strict=True)):
            if stat is None or q is None:
                continue
            product = stat @ q
            order = torch.argsort((q * product).sum(dim=-2), dim=-1, descending=True)
            at = [1] * (len(shape) + 1)
            at[0], at[k + 1] = n, shape[k]
            sq = sq.gather(k + 1, order.view(at).expand(sq.shape))
            q.copy_(torch.linalg.qr(product.gather(2, order[:, None, :].expand_as(product)))[0])
        v.copy_(sq.reshape(v.shape))


class SOAP(Named):
    r"""SOAP: chain ``maximize -> scale_by_soap -> scale_by_lr``, the signature of the
    reference implementation (``nikhilvyas/SOAP``; ``max_precond_dim`` spelled out). Runs
    eagerly.

    Args:
        params: parameters or param groups.
        lr, betas, shampoo_beta, eps, weight_decay, precondition_frequency,
        max_precondition_dim, merge_dims, precondition_1d, correct_bias: see
            :class:`scale_by_soap`.
        maximize: ascend instead.

    Example:
        >>> import torch
        >>> from descentlab.optim import SOAP
        >>> opt = SOAP(torch.nn.Linear(4, 3).parameters(), lr=3e-3, fused=False)
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 3e-3,
                 betas: tuple[float, float] = (0.95, 0.95), shampoo_beta: float | None = None,
                 eps: float = 1e-8, weight_decay: float = 0.01,
                 precondition_frequency: int = 10, max_precondition_dim: int = 10000,
                 merge_dims: bool = False, precondition_1d: bool = False,
                 correct_bias: bool = True, *, maximize: bool = False,
                 fused: bool | None = None, monitor: bool = False) -> None:
    # fmt: on
        betas = pair(betas)
        super().__init__(params, chain(_maximize(), scale_by_soap(), scale_by_lr(3e-3)), locals())


#: this module's registered optimizer (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (adam_family(
    name="soap", display="SOAP", color="#C49C94", year=2024, factory=SOAP,
    reference="Vyas et al., SOAP: Improving and Stabilizing Shampoo using Adam, 2024 "
    "(arXiv:2409.11321)",
),)
# fmt: on
