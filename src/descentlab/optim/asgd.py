r"""Averaged SGD (Polyak & Juditsky, 1992): rule :class:`scale_by_asgd` and optimizer
:class:`ASGD`.
"""

from __future__ import annotations

import torch

from .base import (
    Numbers,
    as_scalar,
    chain,
    lazy_numbers,
    per_step,
    scalar_dtype,
    step_values,
    zeros,
)
from .form import Form, FormRule, add, eq, where
from .hyperspec import Real, declare
from .records import OptimizerRecord, ParityConfig
from .torchapi import Named, Params
from .transforms import add_l2
from .transforms import maximize as _maximize

__all__ = ["ASGD", "scale_by_asgd"]


_SCALAR = Real(0.0, scalar=True)


class scale_by_asgd(FormRule):
    r"""Averaged SGD (Polyak & Juditsky, 1992) as torch's ``ASGD`` runs it: a decaying
    step with a small proportional shrink, and a running average of the iterates.

    .. math::
        p_t = p_{t-1} - \eta_{t-1}(g_t + \lambda p_{t-1}), \quad
        \bar p_t = \bar p_{t-1} + \mu_{t-1}(p_t - \bar p_{t-1}),

        \eta_t = \frac{\eta}{(1 + \lambda \eta t)^{\alpha}}, \quad
        \mu_t = \frac{1}{\max(1,\, t - t_0)}

    with :math:`\eta_0 = \eta` (the group's ``lr``) and :math:`\mu_0 = 1`. The average is
    state ``ax`` (torch's name; it is not written into the parameters); ``eta`` and ``mu``
    are 0-dim tensors in the state, as in torch. The update is final: do not follow this
    rule with :class:`scale_by_lr`.

    Args:
        lr: :math:`\eta \ge 0`.
        lambd: the decay term :math:`\lambda \ge 0`.
        alpha: the power of the step decay.
        t0: the step after which averaging starts.
    """

    name = "scale_by_asgd"
    role = "step size"
    local = False

    def __init__(
        self, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6
    ) -> None:
        super().__init__(lr=lr, lambd=lambd, alpha=alpha, t0=t0)

    def init(self, params):
        return {"ax": zeros(params)}

    checks = declare(lr=_SCALAR, lambd=_SCALAR, alpha=_SCALAR, t0=_SCALAR)

    def form(self, f: Form, hyper) -> None:
        # eta and mu are 0-dim state the prepare reads and moves on (and creates on a first
        # step): coefficients of the per-element update of the parameters and ax
        f.prepare(_advance, fills=("eta", "mu"), needs=("eta", "mu"))
        now = lambda st, i: st["_asgd_now"][i]  # noqa: E731
        shrink = f.coef(
            "shrink", lambda h, t, e: 1 - h["lambd"] * e[0], uses=("lambd",), per_tensor=now
        )
        neg_eta = f.coef("neg_eta", lambda h, t, e: -e[0], per_tensor=now)
        mu = f.coef("mu", lambda h, t, e: e[1], per_tensor=now)
        averaging = f.coef("avg", lambda h, t, e: float(e[1] != 1), per_tensor=now)
        zero = f.coef("zero", lambda h, t: 0.0)
        # torch's p.mul_(1 - lambd * eta).add_(g, alpha=-eta), as its difference from p: exact
        # (Sterbenz) while a step is smaller than the parameter, so p + u is torch's iterate;
        # an unchanged parameter moves by 0 (an infinite one stays: inf - inf would be NaN)
        new = f.let(add(f.p * shrink, f.g, neg_eta))
        u = f.let(where(eq(new, f.p), zero, new - f.p))
        stored = f.let(f.p + u)  # the parameter the optimizer is about to write
        ax = f.state("ax")
        f.assign("ax", where(averaging, ax + (stored - ax) * mu, stored))
        f.out(u)


def _advance(state, params, grads, hyper) -> None:
    """Each tensor's (eta, mu) for this step -- made from the group's lr on its first step,
    as torch makes them -- with the state's eta and mu moved on to the next step's values,
    as torch moves them after its update."""
    lr, lambd = as_scalar(hyper["lr"]), as_scalar(hyper["lambd"])
    alpha, t0 = as_scalar(hyper["alpha"]), as_scalar(hyper["t0"])
    dtype = scalar_dtype()
    etas = lazy_numbers(state, "eta", len(grads), float(lr), dtype)
    mus = lazy_numbers(state, "mu", len(grads), 1.0, dtype)
    steps = step_values(state, len(grads))
    etas, mus = Numbers(etas), Numbers(mus)
    state["_asgd_now"] = list(zip(etas.get(), mus.get(), strict=True))
    # through a tensor of the default dtype, as torch rounds them (also after a state dict
    # load has cast eta and mu to the parameter's dtype)
    via = torch.get_default_dtype()
    etas.set(per_step(steps, lambda t: lr / ((1 + lambd * lr * t) ** alpha)), via)
    mus.set(per_step(steps, lambda t: 1 / max(1, t - t0)), via)


class ASGD(Named):
    r"""Averaged SGD (torch's ``ASGD``): chain ``maximize -> add_l2 -> scale_by_asgd``.

    Steps :math:`p \leftarrow p - \eta_{t-1}(g + \lambda p)` with
    :math:`\eta_t = \eta/(1+\lambda\eta t)^\alpha`, and keeps the average of the iterates
    from step ``t0`` on in state ``ax`` (see :class:`~descentlab.optim.scale_by_asgd`).

    Example:
        >>> import torch
        >>> from descentlab.optim import ASGD
        >>> opt = ASGD(torch.nn.Linear(4, 1).parameters(), lr=0.01, t0=100, fused=False)
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75,
                 t0: float = 1e6, weight_decay: float = 0, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False, capturable: bool = False, *,
                 fused: bool | None = None, monitor: bool = False) -> None:
    # fmt: on
        super().__init__(params, chain(_maximize(), add_l2(), scale_by_asgd()), locals())


#: this module's registered optimizers (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (
    OptimizerRecord(
        name="asgd", display="ASGD", color="#17BECF", family="sgd", adaptive=False, year=1992,
        lr_range=(1e-2, 1.0), demo_lr={}, factory=ASGD,
        reference="Polyak & Juditsky, Acceleration of Stochastic Approximation by Averaging, 1992",
        parity=(
            ParityConfig("asgd", "ASGD", dict(lr=0.05), dict(lr=0.02)),
            ParityConfig(
                "asgd-averaging-wd-maximize",
                "ASGD",
                dict(lr=0.05, lambd=1e-2, alpha=0.6, t0=100, weight_decay=1e-3, maximize=True),
                dict(t0=50, lambd=1e-3),
            ),
        ),
    ),
)
# fmt: on
