r"""Shampoo (Gupta, Koren & Singer, 2018) with the practical parts of Distributed Shampoo.

For a gradient tensor :math:`G` of order :math:`k` (a matrix: :math:`k = 2`) Shampoo keeps one
statistic per dimension, :math:`L^{(i)} \in \mathbb{R}^{d_i \times d_i}`, and preconditions
each dimension by an inverse root of it (:math:`\times_i`: the product along dimension
:math:`i`):

.. math::
    L^{(i)}_t = \beta_2 L^{(i)}_{t-1} + w_2\, G_{(i)} G_{(i)}^\top, \quad L^{(i)}_0 = \epsilon I,
    \quad w_2 = 1 \text{ if } \beta_2 = 1 \text{ else } 1 - \beta_2 \\
    S_t = G \times_1 (L^{(1)})^{-1/2k} \times_2 \cdots \times_k (L^{(k)})^{-1/2k}

(a matrix: :math:`S = L^{-1/4} G R^{-1/4}`; a vector: full-matrix AdaGrad,
:math:`(\epsilon I + \sum g g^\top)^{-1/2} g`). :math:`\beta_2 = 1` sums the statistics as
the paper's Algorithms 1 and 2 do; :math:`\beta_2 < 1` averages them (Distributed Shampoo).

The practical parts (Anil et al., 2020, "Scalable Second Order Optimization for Deep
Learning"; Shi et al., 2023, "A Distributed Data-Parallel PyTorch Implementation of the
Distributed Shampoo Optimizer"):

- **blocks**: each dimension longer than ``block_size`` is cut into blocks of ``block_size``
  (the last one shorter), and each block of the tensor gets its own statistics, so no matrix
  is larger than ``block_size``; small dimensions are first merged (``merge_dims``: size-1
  dimensions dropped, neighbours multiplied while the product stays <= ``block_size``);
- **roots** every ``precondition_frequency`` steps, by a symmetric eigendecomposition in
  ``root_dtype`` (float64 by default), identity until the first; the statistics'
  eigenvalues are at least :math:`\epsilon \beta_2^t` (the start :math:`\epsilon I`,
  decayed), and those that rounding takes below it are raised to it;
- **grafting** (Agarwal et al., 2020): the step takes the direction of :math:`S` and the norm,
  per parameter, of a simpler method's step :math:`A`: ``"sgd"`` (:math:`g`), ``"adagrad"``
  (:math:`g / (\sqrt{\sum g^2} + \epsilon_g)`), ``"rmsprop"`` (:math:`g / (\sqrt{v} +
  \epsilon_g)`, :math:`v` the :math:`\beta_2`-average of :math:`g^2`), ``"adam"`` (RMSProp's,
  :math:`v` bias-corrected), or ``"none"``: :math:`S \leftarrow S\, \lVert A\rVert /
  (\lVert S\rVert + 10^{-16})`; :math:`A` is the step of the rule's form
  (``scale_by_adagrad``, ``scale_by_rms``, ``scale_by_adam`` at :math:`\beta_1 = 0`);
- **start**: before step ``start_preconditioning_step`` the update is the grafted method's
  own (:math:`A`, with its own momentum); tensors without statistics (vectors when
  ``precondition_1d`` is false) always take it;
- **momentum** :math:`m \leftarrow \beta_1 m + S` (Nesterov: :math:`\beta_1 m + S`
  again), and decoupled weight decay (``add_decayed_weights``).

Chain: ``maximize -> scale_by_shampoo -> add_decayed_weights -> scale_by_lr``. Verified in
float64 against pytorch-optimizer's ``Shampoo`` and ``ScalableShampoo`` (the port of Google's
Distributed Shampoo) and against a loop written from the paper's Algorithms 1 and 2
(``tests/test_shampoo_soap.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from descentlab.constraints import invalid

from . import stacks
from .adam import scale_by_adam
from .adaptive import scale_by_adagrad, scale_by_rms
from .base import PerTensorRule, arguments, chain
from .form import FormRule
from .hyperspec import Choice, Flag, Integer, Pair, Real, Relation, declare
from .records import OptimizerRecord
from .torchapi import Named, Params, pair
from .transforms import add_decayed_weights, scale_by_lr
from .transforms import maximize as _maximize

__all__ = ["BlockLayout", "Shampoo", "inverse_root", "merge_dims", "scale_by_shampoo"]

GRAFTS = ("none", "sgd", "adagrad", "rmsprop", "adam")
ROOT_DTYPES = ("float32", "float64")

#: the hyperparameters' constraints (betas are checked as a pair, the relations below)


def _graft_average_needs_beta2_below_1(hyper: Any) -> None:
    """betas[1] is < 1 where the grafting (rmsprop, adam) averages g^2."""
    b2 = hyper["betas"][1]
    if hyper["grafting"] in ("rmsprop", "adam") and b2 == 1:
        raise invalid(
            "betas[1]", f"< 1 with grafting={hyper['grafting']!r} (its average of g^2)", b2
        )


def merge_dims(shape: tuple[int, ...], limit: int) -> tuple[int, ...]:
    """``shape`` with its size-1 dimensions dropped and neighbours multiplied while the
    product stays <= ``limit`` (Distributed Shampoo's ``merge_small_dims``).

    Example:
        >>> merge_dims((32, 1, 16, 5), 128), merge_dims((1, 1), 8), merge_dims((600, 3), 512)
        ((32, 80), (1,), (600, 3))
    """
    dims = [d for d in shape if d != 1] or [1]
    out = [dims[0]]
    for d in dims[1:]:
        if out[-1] * d <= limit:
            out[-1] *= d
        else:
            out.append(d)
    return tuple(out)


@dataclass(frozen=True)
class BlockLayout:
    """How a tensor is cut into blocks: ``shape`` (its preconditioned shape), per dimension
    the block side ``block`` (``min(block_size, d)``) and the number of blocks ``count``.

    A tensor is zero-padded to whole blocks; a padded row has no gradient, so its statistics
    stay apart from the real rows' (block-diagonal) and the padding changes nothing."""

    shape: tuple[int, ...]
    block: tuple[int, ...]
    count: tuple[int, ...]

    @classmethod
    def of(cls, shape: tuple[int, ...], block_size: int, merge: bool) -> BlockLayout:
        shape = merge_dims(shape, block_size) if merge else (tuple(shape) or (1,))
        block = tuple(min(block_size, d) for d in shape)
        count = tuple(-(-d // b) for d, b in zip(shape, block, strict=True))
        return cls(shape, block, count)

    @property
    def blocks(self) -> int:
        return math.prod(self.count)

    def split(self, x: Tensor) -> Tensor:
        """``x`` (a stack of ``B`` tensors of ``shape``'s size) as their blocks,
        ``(B * blocks, *block)``."""
        k, n = len(self.shape), x.shape[0]
        x = x.reshape(n, *self.shape)
        pad: list[int] = []
        for d, b, c in zip(reversed(self.shape), reversed(self.block), reversed(self.count),
                           strict=True):  # fmt: skip
            pad += [0, b * c - d]
        if any(pad):
            x = F.pad(x, pad)
        x = x.reshape(n, *[m for c, b in zip(self.count, self.block, strict=True) for m in (c, b)])
        x = x.permute([0, *range(1, 2 * k + 1, 2), *range(2, 2 * k + 2, 2)])
        return x.reshape(n * self.blocks, *self.block)

    def merge(self, blocks: Tensor) -> Tensor:
        """The inverse of :meth:`split`: a stack of tensors of ``shape`` (the padding cut off)."""
        k = len(self.shape)
        x = blocks.reshape(-1, *self.count, *self.block)
        x = x.permute([0, *(m for i in range(1, k + 1) for m in (i, k + i))])
        x = x.reshape(x.shape[0], *[c * b for c, b in zip(self.count, self.block, strict=True)])
        return x[(slice(None), *(slice(0, d) for d in self.shape))]


def unfoldings(blocks: Tensor) -> list[Tensor]:
    """Per dimension ``i`` of the blocks ``(N, b_1, ..., b_k)``: ``(N, b_i, rest)``."""
    n = blocks.shape[0]
    return [
        blocks.movedim(1 + i, 1).reshape(n, blocks.shape[1 + i], -1)
        for i in range(blocks.dim() - 1)
    ]


def precondition(blocks: Tensor, mats: list[Tensor]) -> Tensor:
    """``blocks ×_1 M_1 ... ×_k M_k`` for symmetric ``M_i`` of shape ``(N, b_i, b_i)``."""
    x = blocks
    for i, m in enumerate(mats):
        moved = x.movedim(1 + i, -1)
        shape = moved.shape
        x = (moved.reshape(shape[0], -1, shape[-1]) @ m).reshape(shape).movedim(-1, 1 + i)
    return x


def inverse_root(stats: Tensor, exponent: float, floor: float, dtype: torch.dtype) -> Tensor:
    r""":math:`A^{-1/p}` of symmetric matrices ``stats`` (``(..., n, n)``) by a symmetric
    eigendecomposition in ``dtype``, eigenvalues below ``floor`` raised to it; returned in
    ``stats``' dtype.

    Example:
        >>> a = torch.tensor([[4.0, 0.0], [0.0, 16.0]], dtype=torch.float64)
        >>> inverse_root(a, 2, 1e-12, torch.float64).diagonal().tolist()
        [0.5, 0.25]
    """
    lam, q = torch.linalg.eigh(stats.to(dtype))
    lam = lam.clamp(min=floor).pow_(-1.0 / exponent)
    return ((q * lam.unsqueeze(-2)) @ q.mT).to(stats.dtype)


def _state_dtype(p: Tensor) -> torch.dtype:
    """Statistics and roots: float64 for float64 parameters, else float32 (eigh and the
    products need at least float32)."""
    return torch.float64 if p.dtype == torch.float64 else torch.float32


#: each grafting's rule, whose form is its step (run eagerly by ``_graft``): the state entry
#: kept as ``graft_sq`` and the rule's hyperparameters from Shampoo's beta2. Adam's grafting
#: is Adam's form at beta1 = 0 (Shampoo's own momentum follows it, as Distributed Shampoo's).
_GRAFTED: dict[str, tuple[FormRule, str, Any]] = {
    "adagrad": (scale_by_adagrad(), "sum", lambda b2: {}),
    "rmsprop": (scale_by_rms(), "square_avg", lambda b2: {"alpha": b2}),
    "adam": (scale_by_adam(), "exp_avg_sq", lambda b2: {"betas": (0.0, b2)}),
}


class scale_by_shampoo(PerTensorRule):
    r"""Shampoo's direction, grafted and with momentum (see the module notes for the math);
    chain it before ``add_decayed_weights`` and ``scale_by_lr``.

    Args:
        betas: :math:`(\beta_1, \beta_2)`: momentum in [0, 1), the statistics' average in
            [0, 1] (1: the paper's sum).
        epsilon: :math:`\epsilon > 0`, the statistics' start :math:`\epsilon I`.
        block_size: the largest preconditioner side (longer dimensions are cut into blocks).
        precondition_frequency: the roots are recomputed every this many steps.
        start_preconditioning_step: the first step that takes Shampoo's direction (before:
            the grafted method's).
        grafting: ``"none"``, ``"sgd"``, ``"adagrad"``, ``"rmsprop"`` or ``"adam"``.
        graft_eps: :math:`\epsilon_g`, the grafted method's denominator term.
        nesterov: Nesterov momentum.
        merge_dims: merge small dimensions first (a conv kernel ``(o, i, k)`` becomes
            ``(o, i k)`` when ``i k <= block_size``).
        precondition_1d: precondition vectors too (the paper: full-matrix AdaGrad); False:
            they take the grafted method's step.
        root_dtype: ``"float64"`` or ``"float32"``, the eigendecomposition's dtype.
    """

    name = "scale_by_shampoo"
    role = "direction + adaptive rate"
    state_keys = ("shampoo_stats", "shampoo_roots", "shampoo_momentum", "graft_momentum",
                  "graft_sq")  # fmt: skip
    elementwise = False

    def __init__(
        self,
        betas: tuple[float, float] = (0.9, 0.999),
        epsilon: float = 1e-12,
        block_size: int = 512,
        precondition_frequency: int = 10,
        start_preconditioning_step: int = 10,
        grafting: str = "adam",
        graft_eps: float = 1e-8,
        nesterov: bool = False,
        merge_dims: bool = True,
        precondition_1d: bool = True,
        root_dtype: str = "float64",
    ) -> None:
        args = arguments(locals())
        super().__init__(**{**args, "betas": pair(betas)})
        self.needs_step = True

    # scalars only where a batched value would mean K runs along the leading dimension (the
    # matrices span it); beta2 = 1 is the paper's sum
    checks = declare(
        betas=Pair(
            Real(0.0, 1.0, hi_open=True, scalar=True),
            Real(0.0, 1.0, scalar=True),
            "a pair (beta1, beta2)",
        ),
        epsilon=Real(0.0, lo_open=True),
        block_size=Integer(1),
        precondition_frequency=Integer(1),
        start_preconditioning_step=Integer(1),
        grafting=Choice(GRAFTS),
        graft_eps=Real(0.0),
        nesterov=Flag(),
        merge_dims=Flag(),
        precondition_1d=Flag(),
        root_dtype=Choice(ROOT_DTYPES),
        lr=Real(scalar=True),
        weight_decay=Real(scalar=True),
    )
    relations = (Relation(("grafting", "betas"), _graft_average_needs_beta2_below_1),)

    def layout(self, p: Tensor, hyper: Any) -> BlockLayout | None:
        """The parameter's blocks, or None where it keeps no statistics (a vector or scalar
        without ``precondition_1d``)."""
        if p.dim() <= 1 and not hyper["precondition_1d"]:
            return None
        return BlockLayout.of(tuple(p.shape), int(hyper["block_size"]), hyper["merge_dims"])

    def directions(self, idx, grads, params, state, hyper, t):
        b1 = float(hyper["betas"][0])
        g = torch.stack([grads[i] for i in idx])  # the set's tensors as one stack
        graft = self._graft(idx, g, state, hyper, t)
        layout = self.layout(params[idx[0]], hyper)
        if layout is None:
            s = graft.clone()
        else:
            s = self._preconditioned(idx, g, layout, state, hyper, t).to(g.dtype)
            if hyper["grafting"] != "none":
                s.mul_(_norms(graft) / (_norms(s) + 1e-16))
        # both kept, as Distributed Shampoo
        m_s, m_g = (stacks.stacked(state[key], idx, lambda: torch.zeros_like(g))
                    for key in ("shampoo_momentum", "graft_momentum"))  # fmt: skip
        m_s.mul_(b1).add_(s)
        m_g.mul_(b1).add_(graft)
        started = t >= int(hyper["start_preconditioning_step"])
        m, now = (m_s, s) if started else (m_g, graft)
        return list((m.mul(b1).add_(now) if hyper["nesterov"] else m.clone()).unbind(0))

    @staticmethod
    def _graft(idx: list[int], g: Tensor, state: Any, hyper: Any, t: int) -> Tensor:
        """The grafted method's steps (the stack ``g``'s): its rule's form run eagerly, its
        average of g^2 kept in ``graft_sq`` (:data:`_GRAFTED`)."""
        kind = hyper["grafting"]
        if kind in ("none", "sgd"):
            return g
        rule, key, hyper_of = _GRAFTED[kind]
        sq = stacks.stacked(state["graft_sq"], idx, lambda: torch.zeros_like(g))
        h = {**rule.defaults, "eps": hyper["graft_eps"], **hyper_of(hyper["betas"][1])}
        local = {key: [sq], "_step_values": [float(t)]}
        if kind == "adam":  # beta1 = 0: m = lerp(0, g, 1) = g, made afresh (no first moment)
            local["exp_avg"] = [torch.zeros_like(g)]
        u, _ = rule.update([g], local, [g], h)
        return u[0]

    @staticmethod
    def _preconditioned(
        idx: list[int], g: Tensor, layout: BlockLayout, state: Any, hyper: Any, t: int
    ) -> Tensor:
        dtype = _state_dtype(g)
        eps = float(hyper["epsilon"])
        stats_col, roots_col = state["shampoo_stats"], state["shampoo_roots"]
        for i in idx:  # a new tensor's statistics: eps I per block (roots: I)
            if stats_col[i] is None:
                stats_col[i], roots_col[i] = [None] * len(layout.block), [None] * len(layout.block)
        n = len(idx) * layout.blocks
        stats, roots = [], []
        for d, b in enumerate(layout.block):
            eye = lambda b=b: torch.eye(b, dtype=dtype, device=g.device).expand(  # noqa: E731
                len(idx), layout.blocks, b, b
            )
            stat = stacks.stacked(stats_col, idx, lambda eye=eye: eye().mul(eps), part=d)
            root = stacks.stacked(roots_col, idx, lambda eye=eye: eye().contiguous(), part=d)
            stats.append(stat.view(n, b, b))
            roots.append(root.view(n, b, b))
        b2 = float(hyper["betas"][1])
        blocks = layout.split(g.to(dtype))
        for stat, x in zip(stats, unfoldings(blocks), strict=True):
            stat.baddbmm_(x, x.mT, beta=b2, alpha=1.0 if b2 == 1 else 1.0 - b2)
        if t % int(hyper["precondition_frequency"]) == 0:
            root_dtype = getattr(torch, hyper["root_dtype"])
            exponent = 2 * len(layout.shape)
            # eigenvalues are >= eps * beta2^t exactly (the start eps I, decayed): those
            # that rounding took below it are raised to it
            floor = max(eps * b2**t, torch.finfo(root_dtype).tiny)
            for root, stat in zip(roots, stats, strict=True):
                root.copy_(inverse_root(stat, exponent, floor, root_dtype))
        return layout.merge(precondition(blocks, roots)).reshape(g.shape)


def _norms(x: Tensor) -> Tensor:
    """The L2 norm of each tensor of the stack ``x``, shaped to scale it."""
    return torch.linalg.vector_norm(x.reshape(x.shape[0], -1), dim=1).view(-1, *[1] * (x.dim() - 1))


class Shampoo(Named):
    r"""Shampoo: chain ``maximize -> scale_by_shampoo -> add_decayed_weights ->
    scale_by_lr``. Runs eagerly (its step works on whole matrices).

    Args:
        params: parameters or param groups.
        lr: learning rate.
        betas, epsilon, block_size, precondition_frequency, start_preconditioning_step,
        grafting, graft_eps, nesterov, merge_dims, precondition_1d, root_dtype: see
            :class:`scale_by_shampoo`.
        weight_decay: decoupled decay :math:`\lambda` (``p <- p - lr * lambda * p``).
        maximize: ascend instead.

    The paper's Algorithm 1 (and 2, for tensors): ``betas=(0.0, 1.0), grafting="none",
    precondition_frequency=1, start_preconditioning_step=1, merge_dims=False`` and a
    ``block_size`` above every dimension.

    Example:
        >>> import torch
        >>> from descentlab.optim import Shampoo
        >>> net = torch.nn.Linear(4, 3)
        >>> opt = Shampoo(net.parameters(), lr=1e-2, fused=False)
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), epsilon: float = 1e-12,
                 weight_decay: float = 0.0, *, block_size: int = 512,
                 precondition_frequency: int = 10, start_preconditioning_step: int = 10,
                 grafting: str = "adam", graft_eps: float = 1e-8, nesterov: bool = False,
                 merge_dims: bool = True, precondition_1d: bool = True,
                 root_dtype: str = "float64", maximize: bool = False,
                 fused: bool | None = None, monitor: bool = False) -> None:
    # fmt: on
        betas = pair(betas)
        rule = chain(_maximize(), scale_by_shampoo(), add_decayed_weights(0.0), scale_by_lr())
        super().__init__(params, rule, locals())


#: this module's registered optimizer (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (OptimizerRecord(
    name="shampoo", display="Shampoo", color="#6A3D9A", family="adaptive", adaptive=True,
    year=2018, factory=Shampoo, lr_range=(1e-4, 1e-2),
    reference="Gupta, Koren & Singer, Shampoo: Preconditioned Stochastic Tensor Optimization, "
    "ICML 2018 (arXiv:1802.09568); Shi et al., A Distributed Data-Parallel PyTorch "
    "Implementation of the Distributed Shampoo Optimizer, 2023 (arXiv:2309.06497)",
),)
# fmt: on
