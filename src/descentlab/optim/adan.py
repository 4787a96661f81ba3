r"""Adan (Xie et al., 2022): rule :class:`scale_by_adan` and optimizer :class:`Adan` -- the
worked example of a rule written once, in the form (:mod:`descentlab.optim.form`), from which
its eager, fused and GPU backends are derived."""

from __future__ import annotations

from .adam import adam_chain
from .form import Form, FormRule, addcmul, lerp, sqrt, where
from .hyperspec import Items, Real, declare
from .records import OptimizerRecord, adam_family
from .torchapi import Named, Params

__all__ = ["Adan", "scale_by_adan"]

_BETA = Real(0.0, 1.0, hi_open=True, scalar=True)


class scale_by_adan(FormRule):
    r"""Adan (Xie et al., 2022, Algorithm 1): Nesterov momentum estimated from the gradient and
    its change, with the betas written as torch writes them (the weight of the old value).

    .. math::
        d_t = g_t - g_{t-1} \;(d_1 = 0), \quad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) d_t, \\
        n_t = \beta_3 n_{t-1} + (1-\beta_3) (g_t + \beta_2 d_t)^2, \quad
        u = \frac{m_t / (1-\beta_1^t) + \beta_2 v_t / (1-\beta_2^t)}
                 {\sqrt{n_t / (1-\beta_3^t)} + \epsilon}

    Args:
        betas: :math:`(\beta_1, \beta_2, \beta_3)`, each in [0, 1) (the paper's
            :math:`1-\beta_i`: its defaults 0.02, 0.08, 0.01 are 0.98, 0.92, 0.99 here).
        eps: :math:`\epsilon \ge 0`, added to the denominator.
    """

    name = "scale_by_adan"
    role = "direction + adaptive rate"
    checks = declare(
        betas=Items((_BETA, _BETA, _BETA), "three betas (beta1, beta2, beta3)"),
        eps=Real(0.0, scalar=True),
    )
    nonnegative = ("exp_avg_sq",)

    def __init__(
        self, betas: tuple[float, float, float] = (0.98, 0.92, 0.99), eps: float = 1e-8
    ) -> None:
        super().__init__(betas=tuple(betas), eps=eps)

    def form(self, f: Form, hyper) -> None:
        w1 = f.coef("1mb1", lambda h, t: 1 - h["betas"][0], uses=("betas",))
        b2 = f.coef("b2", lambda h, t: h["betas"][1], uses=("betas",))
        w2 = f.coef("1mb2", lambda h, t: 1 - h["betas"][1], uses=("betas",))
        b3 = f.coef("b3", lambda h, t: h["betas"][2], uses=("betas",))
        w3 = f.coef("1mb3", lambda h, t: 1 - h["betas"][2], uses=("betas",))
        eps = f.coef("eps", lambda h, t: h["eps"], uses=("eps",))
        bc1 = f.coef("bc1", lambda h, t: 1 - h["betas"][0] ** t, uses=("betas",))
        bc2 = f.coef(
            "b2bc2", lambda h, t: h["betas"][1] / (1 - h["betas"][1] ** t), uses=("betas",)
        )
        bc3 = f.coef("bc3s", lambda h, t: (1 - h["betas"][2] ** t) ** 0.5, uses=("betas",))
        first = f.first_step("previous_grad")  # 1 at a tensor's first step, when d = 0
        d = f.let(f.g - where(first, f.g, f.state("previous_grad")))
        f.assign("previous_grad", f.g)
        m = f.assign("exp_avg", lerp(f.state("exp_avg"), f.g, w1))
        v = f.assign("exp_avg_diff", lerp(f.state("exp_avg_diff"), d, w2))
        z = f.let(d * b2 + f.g)
        n = f.assign("exp_avg_sq", addcmul(f.state("exp_avg_sq") * b3, z, z, w3))
        den = f.let(sqrt(n) / bc3 + eps)
        f.out((m / den) / bc1 + (v / den) * bc2)


class Adan(Named):
    r"""Adan (Xie et al., 2022): chain ``maximize -> add_l2 -> scale_by_adan ->
    add_decayed_weights -> scale_by_lr``; ``decoupled_weight_decay`` (default True)
    chooses between the two penalties, as in :class:`~descentlab.optim.Adam`.

    Args:
        params: parameters or param groups.
        lr: learning rate (>= 0).
        betas: :math:`(\beta_1, \beta_2, \beta_3)`, the weights of the old values.
        eps: added to the denominator.
        weight_decay: :math:`\lambda \ge 0`.
        decoupled_weight_decay: decay the weights directly (AdamW) rather than add an L2
            gradient.
        maximize: ascend instead.
        fused: backend (None: fused where it can).
    """

    # fmt: off
    def __init__(self, params: Params, lr: float = 1e-3,
                 betas: tuple[float, float, float] = (0.98, 0.92, 0.99), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, decoupled_weight_decay: bool = True,
                 maximize: bool = False, foreach: bool | None = None,
                 fused: bool | None = None, monitor: bool = False) -> None:
    # fmt: on
        super().__init__(params, adam_chain(scale_by_adan()), locals())


#: this module's registered optimizer (see descentlab.optim.records)
# fmt: off
RECORDS: tuple[OptimizerRecord, ...] = (adam_family(
    name="adan", display="Adan", color="#117733", year=2022, factory=Adan,
    reference="Xie et al., Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing "
    "Deep Models, arXiv:2208.06677, 2022 (IEEE TPAMI 2024)",
),)
# fmt: on
