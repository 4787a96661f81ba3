r"""SAM, sharpness-aware minimization (Foret et al., 2021): descend from the worst nearby point.

The sharp-minima lecture's answer: minimize :math:`\max_{\lVert\epsilon\rVert \le \rho}
L(w + \epsilon)` instead of :math:`L(w)`. To first order the inner maximum is at
:math:`\hat\epsilon = \rho\, g / \lVert g \rVert`, so each step takes two gradients:

.. math::
    g = \nabla L(w), \qquad \hat\epsilon = \rho\,\frac{g}{\lVert g\rVert_2}, \qquad
    w \leftarrow w - \eta\,\mathrm{base}\big(\nabla L(w + \hat\epsilon)\big)

with the norm over *all* parameters (every param group) and any base optimizer. ASAM
(Kwon et al., 2021, ``adaptive=True``) scales the ascent by the weights:
:math:`\hat\epsilon = \rho\, |w|^2 g / \lVert |w|\, g\rVert`. SAM needs ``step(closure)``.

Optax's ``optax.contrib.sam(base, chain(normalize(), sgd(rho)), sync_period=2,
opaque_mode=True)``, matched to 1e-10 in float64 (``tests/test_optax_reference.py``).
Conventions: no epsilon in the norm (Optax's; the reference PyTorch code adds 1e-12): a zero
gradient gives no ascent step; the loss returned by ``step`` is the loss at ``w``. In a
batched landscape run (K runs as one (K, d) parameter) the norm spans all K runs, as
``clip_by_global_norm``'s does.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import Rule, as_scalar, bcast
from .compiled import closure_step
from .hyperspec import NONNEG, Flag, declare
from .lookahead import Wrapped
from .records import OptimizerRecord

__all__ = ["SAM", "sam_ascent"]


class sam_ascent(Rule):
    r"""SAM's ascent step, :math:`\hat\epsilon = \rho\, g / \lVert g\rVert` (ASAM:
    :math:`\rho\,|w|^2 g / \lVert |w| g\rVert`), computed by :meth:`ascent` over every
    parameter; as a link of the chain it passes the update through unchanged.

    Args:
        rho: neighbourhood radius :math:`\rho \ge 0`.
        adaptive: ASAM's scale-invariant neighbourhood.
    """

    name = "sam_ascent"
    role = "wrapper (gradient point, averaging)"
    #: the gradient is taken at another point than the parameters: needs ``step(closure)``
    lookahead = True
    kernel_passes = True
    shard_local = True  # passes the update through; its ascent's norm spans the shards

    def __init__(self, rho: float = 0.05, adaptive: bool = False) -> None:
        super().__init__(rho=rho, adaptive=adaptive)

    checks = declare(rho=NONNEG, adaptive=Flag())

    def update(self, grads, state, params, hyper):
        return grads, state

    def passes_through(self, hyper) -> bool:
        return True

    @staticmethod
    def ascent(groups: list[tuple[list[torch.Tensor], dict[str, Any]]]) -> list[torch.Tensor]:
        """The ascent steps of every parameter with a gradient, over all ``(params, hyper)``
        groups together (one norm); each group's ``rho`` and ``adaptive`` apply to its own."""
        scaled = []
        for params, hyper in groups:
            for p in params:
                g = p.grad
                scaled.append(g * p.abs() if hyper["adaptive"] else g)
        if not scaled:
            return []
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s) for s in scaled]))
        out, k = [], 0
        for params, hyper in groups:
            for p in params:
                e = scaled[k] * p.abs() if hyper["adaptive"] else scaled[k].clone()
                k += 1
                if norm > 0:
                    e.mul_(bcast(as_scalar(hyper["rho"]), e) / norm)
                else:
                    e.zero_()
                out.append(e)
        return out


class SAM(Wrapped):
    r"""Sharpness-aware minimization around a named optimizer:
    ``chain(sam_ascent(), <base's rules>)``; ``step(closure)`` evaluates the gradient at
    ``w``, moves to ``w + eps``, evaluates it there, moves back and lets the base step.

    Args:
        params: parameters or param groups.
        base: the base optimizer, a registry name (``"sgd"``, ``"adam"``...) or a class.
        rho: neighbourhood radius (the paper's 0.05).
        adaptive: ASAM (Kwon et al., 2021).
        lr: the base's learning rate (None: the base's default).
        fused: backend of the base step.
        base_kwargs: the base optimizer's hyperparameters (``lr``, ``momentum``, ...).

    Example:
        >>> import torch
        >>> from descentlab.optim import SAM
        >>> w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
        >>> opt = SAM([w], base="sgd", lr=0.1, rho=0.5, fused=False)
        >>> def closure():
        ...     opt.zero_grad(); loss = (w * w).sum(); loss.backward(); return loss
        >>> opt.step(closure).item()  # the loss at w; the step used the gradient at 1.1 w
        25.0
        >>> [round(v, 4) for v in w.detach().tolist()]
        [2.34, 3.12]
    """

    def __init__(
        self,
        params: Any,
        base: Any = "sgd",
        rho: float = 0.05,
        adaptive: bool = False,
        lr: float | None = None,
        *,
        fused: bool | None = None,
        monitor: bool = False,
        **base_kwargs: Any,
    ) -> None:
        extra, rules = dict(rho=rho, adaptive=adaptive), ((sam_ascent(),), ())
        super().__init__(params, base, lr, base_kwargs, extra, rules, fused=fused, monitor=monitor)
        self._lookahead = False  # step() below takes both gradients itself

    @closure_step("SAM evaluates the gradient at a second point and needs step(closure), got None")
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        """One SAM step; ``closure`` re-evaluates the model (zeroing gradients first) and
        returns the loss. Returns the loss at the current point."""
        with torch.enable_grad():
            loss = closure()
        groups = [([p for p in g["params"] if p.grad is not None], g) for g in self.param_groups]
        params = [p for ps, _ in groups for p in ps]
        with torch.no_grad():
            shifts = sam_ascent.ascent(groups)
            saved = [p.detach().clone() for p in params]
            torch._foreach_add_(params, shifts)
        try:
            with torch.enable_grad():
                closure()
        finally:
            with torch.no_grad():
                for p, original in zip(params, saved, strict=True):
                    p.copy_(original)
        super().step()
        return loss


#: this module's registered optimizer (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (OptimizerRecord(
    name="sam", display="SAM", color="#999933", family="sgd", adaptive=False,
    year=2021, factory=SAM, lr_range=(1e-2, 1.0), demo_lr={"ravine": 0.1, "saddle": 0.56},
    reference="Foret, Kleiner, Mobahi & Neyshabur, Sharpness-Aware Minimization for Efficiently "
    "Improving Generalization, ICLR 2021 (arXiv:2010.01412)",
),)
# fmt: on
